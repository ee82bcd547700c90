// skynet.cpp — a tree of actors with N leaves (N a power of 10), 10
// children per node. A leaf sends its number to its parent and quits; an
// inner node spawns 10 children, sums their replies, sends the sum up and
// quits. The clock covers spawning the root to main receiving the total.
// Usage: caf_skynet N
#include "bench.hpp"

using namespace caf;

namespace {

struct sky_state {
    actor parent;
    int64_t sum = 0;
    int replies = 0;
};

behavior skynet(stateful_actor<sky_state> *self, actor parent, int64_t num, int64_t size)
{
    if (size == 1) {
        self->send(parent, num);
        self->quit();
        return {};
    }
    self->state.parent = std::move(parent);
    int64_t sub = size / 10;
    for (int64_t i = 0; i < 10; ++i)
        self->spawn(skynet, actor_cast<actor>(self), num + i * sub, sub);
    return {
        [=](int64_t v) {
            auto &s = self->state;
            s.sum += v;
            if (++s.replies == 10) {
                self->send(s.parent, s.sum);
                self->quit();
            }
        },
    };
}

} // namespace

int main(int argc, char **argv)
{
    long n = bench::arg(argc, argv, 1, 1000000);
    for (long k = n; k > 1; k /= 10)
        if (k % 10 != 0) {
            std::fprintf(stderr, "skynet: N must be a power of 10\n");
            return 2;
        }
    bench::config cfg;
    actor_system sys{cfg};
    scoped_actor self{sys};

    int64_t sum = -1;
    double t0 = bench::now();
    sys.spawn(skynet, actor_cast<actor>(self), int64_t{0}, int64_t{n});
    self->receive([&](int64_t v) { sum = v; },
                  after(bench::patience) >> [&] { bench::fail("skynet: timed out"); });
    double secs = bench::now() - t0;

    int64_t want = int64_t{n} * (int64_t{n} - 1) / 2;
    if (sum != want)
        bench::fail("skynet: sum " + std::to_string(sum) + ", expected " + std::to_string(want));
    bench::result("skynet", n, secs, "seconds", secs);
    return 0;
}
