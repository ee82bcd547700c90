// fanin.cpp — P producer actors each send the integers 1..N/P to one sink
// actor, which counts and sums them and reports to main when all N have
// arrived. Producers send in slices, as in counting.cpp.
// Usage: caf_fanin P N
#include "bench.hpp"

#include <vector>

using namespace caf;

namespace {

constexpr int64_t slice = 1000;

struct sink_state {
    actor report_to;
    int64_t expect = 0, count = 0, sum = 0;
};

behavior sink(stateful_actor<sink_state> *self)
{
    return {
        [=](int64_t v) {
            auto &s = self->state;
            s.sum += v;
            if (++s.count == s.expect)
                self->send(s.report_to, sum_atom::value, s.sum);
        },
        [=](expect_atom, int64_t total) {
            self->state.report_to = actor_cast<actor>(self->current_sender());
            self->state.expect = total;
        },
    };
}

struct producer_state {
    actor sink;
    int64_t next = 1, last = 0;
};

void send_slice(stateful_actor<producer_state> *self)
{
    auto &s = self->state;
    int64_t stop = std::min(s.next + slice - 1, s.last);
    for (; s.next <= stop; ++s.next)
        self->send(s.sink, s.next);
    if (s.next <= s.last)
        self->send(self, more_atom::value);
}

behavior producer(stateful_actor<producer_state> *self, actor sink_actor)
{
    self->state.sink = sink_actor;
    return {
        [=](go_atom, int64_t each) {
            self->state.last = each;
            send_slice(self);
        },
        [=](more_atom) { send_slice(self); },
    };
}

} // namespace

int main(int argc, char **argv)
{
    long p = bench::arg(argc, argv, 1, 4);
    long n = bench::arg(argc, argv, 2, 4000000);
    int64_t each = n / p, total = each * p;
    bench::config cfg;
    actor_system sys{cfg};
    scoped_actor self{sys};
    auto sink_actor = sys.spawn(sink);
    std::vector<actor> producers;
    for (long i = 0; i < p; ++i)
        producers.push_back(sys.spawn(producer, sink_actor));
    self->send(sink_actor, expect_atom::value, total);

    int64_t sum = -1;
    double t0 = bench::now();
    for (auto &a : producers)
        self->send(a, go_atom::value, each);
    self->receive([&](sum_atom, int64_t v) { sum = v; },
                  after(bench::patience) >> [&] { bench::fail("fanin: timed out"); });
    double secs = bench::now() - t0;

    int64_t want = p * (each * (each + 1) / 2);
    if (sum != want)
        bench::fail("fanin: sum " + std::to_string(sum) + ", expected " + std::to_string(want));
    bench::result("fanin", total, secs, "msgs_per_s", double(total) / secs,
                  "p=" + std::to_string(p));
    for (auto &a : producers)
        anon_send_exit(a, exit_reason::user_shutdown);
    anon_send_exit(sink_actor, exit_reason::user_shutdown);
    return 0;
}
