// bench.hpp — what every CAF benchmark program shares: the actor system
// configuration (2 scheduler threads, to match the 2 cores), argument
// parsing, a monotonic clock, resident memory and the RESULT line.
#ifndef CAF_BENCH_HPP
#define CAF_BENCH_HPP

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace bench {

// Event-based actors on a scheduler with 2 worker threads (CAF's default
// would be max(cores, 4)).
struct config : caf::actor_system_config {
    config() { set("scheduler.max-threads", 2); }
};

inline double now()
{
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// Resident set size in bytes, from /proc/self/statm.
inline long rss_bytes()
{
    long total = 0, resident = -1;
    FILE *f = std::fopen("/proc/self/statm", "r");
    if (f == nullptr)
        return -1;
    if (std::fscanf(f, "%ld %ld", &total, &resident) != 2)
        resident = -1;
    std::fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

inline long arg(int argc, char **argv, int idx, long def)
{
    if (idx >= argc)
        return def;
    char *end;
    long v = std::strtol(argv[idx], &end, 10);
    if (*end != '\0' || v < 1) {
        std::fprintf(stderr, "%s: argument %d must be a positive integer\n", argv[0], idx);
        std::exit(2);
    }
    return v;
}

// Reports a wrong result and exits at once (may run on a scheduler thread).
[[noreturn]] inline void fail(const std::string &what)
{
    std::fprintf(stderr, "caf bench: wrong result: %s\n", what.c_str());
    std::fflush(stdout);
    _exit(1);
}

inline void result(const char *workload, long n, double seconds, const char *metric, double value,
                   const std::string &extra = "")
{
    std::printf("RESULT impl=caf workload=%s n=%ld seconds=%.6f metric=%s value=%.6g%s%s "
                "check=ok\n",
                workload, n, seconds, metric, value, extra.empty() ? "" : " ", extra.c_str());
    std::fflush(stdout);
}

// Actors pinged at a time by spawnmem's liveness check.
constexpr long wave = 1000;
// How long a waiting main thread gives the actors before giving up.
constexpr auto patience = std::chrono::seconds(600);

} // namespace bench

using go_atom = caf::atom_constant<caf::atom("go")>;
using more_atom = caf::atom_constant<caf::atom("more")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using get_atom_t = caf::atom_constant<caf::atom("get")>;
using sum_atom = caf::atom_constant<caf::atom("sum")>;
using ball_atom = caf::atom_constant<caf::atom("ball")>;
using play_atom = caf::atom_constant<caf::atom("play")>;
using token_atom = caf::atom_constant<caf::atom("token")>;
using next_atom = caf::atom_constant<caf::atom("next")>;
using linked_atom = caf::atom_constant<caf::atom("linked")>;
using expect_atom = caf::atom_constant<caf::atom("expect")>;
using ping_atom_t = caf::atom_constant<caf::atom("ping")>;
using pong_atom_t = caf::atom_constant<caf::atom("pong")>;

#endif // CAF_BENCH_HPP
