// counting.cpp — one producer actor sends the integers 1..N to one counter
// actor, then asks for the sum with a request; the counter replies with it.
// The producer sends in slices of `slice` messages and sends itself `more`
// between slices (as the troupe program does). main times from "go" to the
// reported sum. Usage: caf_counting N
#include "bench.hpp"

using namespace caf;

namespace {

constexpr int64_t slice = 1000;

struct counter_state {
    int64_t sum = 0;
};

behavior counter(stateful_actor<counter_state> *self)
{
    return {
        [=](int64_t v) { self->state.sum += v; },
        [=](get_atom_t) { return self->state.sum; },
    };
}

struct producer_state {
    actor counter;
    actor report_to;
    int64_t next = 1, last = 0;
};

void send_slice(stateful_actor<producer_state> *self)
{
    auto &s = self->state;
    int64_t stop = std::min(s.next + slice - 1, s.last);
    for (; s.next <= stop; ++s.next)
        self->send(s.counter, s.next);
    if (s.next <= s.last) {
        self->send(self, more_atom::value);
        return;
    }
    self->request(s.counter, bench::patience, get_atom_t::value).then([=](int64_t sum) {
        self->send(self->state.report_to, sum_atom::value, sum);
    });
}

behavior producer(stateful_actor<producer_state> *self, actor counter_actor)
{
    self->state.counter = counter_actor;
    return {
        [=](go_atom, int64_t n) {
            self->state.report_to = actor_cast<actor>(self->current_sender());
            self->state.last = n;
            send_slice(self);
        },
        [=](more_atom) { send_slice(self); },
    };
}

} // namespace

int main(int argc, char **argv)
{
    long n = bench::arg(argc, argv, 1, 5000000);
    bench::config cfg;
    actor_system sys{cfg};
    auto counter_actor = sys.spawn(counter);
    auto producer_actor = sys.spawn(producer, counter_actor);
    scoped_actor self{sys};

    int64_t sum = -1;
    double t0 = bench::now();
    self->send(producer_actor, go_atom::value, int64_t{n});
    self->receive([&](sum_atom, int64_t v) { sum = v; },
                  after(bench::patience) >> [&] { bench::fail("counting: timed out"); });
    double secs = bench::now() - t0;

    int64_t want = int64_t{n} * (int64_t{n} + 1) / 2;
    if (sum != want)
        bench::fail("counting: sum " + std::to_string(sum) + ", expected " + std::to_string(want));
    bench::result("counting", n, secs, "msgs_per_s", double(n) / secs);
    anon_send_exit(producer_actor, exit_reason::user_shutdown);
    anon_send_exit(counter_actor, exit_reason::user_shutdown);
    return 0;
}
