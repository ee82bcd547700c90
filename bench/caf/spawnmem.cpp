// spawnmem.cpp — main spawns K idle event-based actors. The spawn loop is
// timed (spawns/s). Then, untimed, main pings every actor and waits for
// every pong, so each actor has really started and handled a message, and
// reads resident memory again: the growth over K is bytes per actor.
// Teardown is not measured. Usage: caf_spawnmem K
#include "bench.hpp"

#include <vector>

using namespace caf;

namespace {

behavior idle(event_based_actor *self)
{
    return {
        [=](ping_atom_t) {
            self->send(actor_cast<actor>(self->current_sender()), pong_atom_t::value);
        },
    };
}

} // namespace

int main(int argc, char **argv)
{
    long k = bench::arg(argc, argv, 1, 200000);
    bench::config cfg;
    actor_system sys{cfg};
    scoped_actor self{sys};
    std::vector<actor> actors;
    actors.reserve(size_t(k));
    long rss0 = bench::rss_bytes();

    double t0 = bench::now();
    for (long i = 0; i < k; ++i)
        actors.push_back(sys.spawn(idle));
    double secs = bench::now() - t0;

    // Ping in waves, so the messages in flight stay few and do not count
    // as per-actor memory.
    for (long w = 0; w < k; w += bench::wave) {
        long end = w + bench::wave < k ? w + bench::wave : k;
        for (long i = w; i < end; ++i)
            self->send(actors[size_t(i)], ping_atom_t::value);
        for (long i = w; i < end; ++i)
            self->receive([](pong_atom_t) {},
                          after(bench::patience) >> [&] { bench::fail("spawnmem: timed out"); });
    }
    long rss1 = bench::rss_bytes();

    char extra[96];
    std::snprintf(extra, sizeof extra, "metric2=spawns_per_s value2=%.6g", double(k) / secs);
    bench::result("spawnmem", k, secs, "bytes_per_actor", double(rss1 - rss0) / double(k), extra);
    std::fflush(stdout);
    _exit(0); // teardown of K idle actors is not part of the benchmark
}
