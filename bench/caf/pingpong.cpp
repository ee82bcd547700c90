// pingpong.cpp — two event-based actors bounce one integer N round trips.
// main (a scoped actor) starts the game and waits for "done"; the clock
// covers the first send to the last reply. Usage: caf_pingpong N
#include "bench.hpp"

using namespace caf;

namespace {

behavior pong(event_based_actor *self)
{
    return {
        [=](ball_atom, int64_t n) {
            self->send(actor_cast<actor>(self->current_sender()), ball_atom::value, n + 1);
        },
    };
}

struct ping_state {
    actor pong;
    actor report_to;
    int64_t rounds = 0;
};

behavior ping(stateful_actor<ping_state> *self, actor pong_actor)
{
    self->state.pong = pong_actor;
    return {
        [=](ball_atom, int64_t n) {
            auto &s = self->state;
            if (n < s.rounds)
                self->send(s.pong, ball_atom::value, n);
            else
                self->send(s.report_to, done_atom::value, n);
        },
        [=](play_atom, int64_t n) {
            auto &s = self->state;
            s.report_to = actor_cast<actor>(self->current_sender());
            s.rounds = n;
            self->send(s.pong, ball_atom::value, int64_t{0});
        },
    };
}

} // namespace

int main(int argc, char **argv)
{
    long n = bench::arg(argc, argv, 1, 2000000);
    bench::config cfg;
    actor_system sys{cfg};
    auto pong_actor = sys.spawn(pong);
    auto ping_actor = sys.spawn(ping, pong_actor);
    scoped_actor self{sys};

    int64_t played = -1;
    double t0 = bench::now();
    self->send(ping_actor, play_atom::value, int64_t{n});
    self->receive([&](done_atom, int64_t v) { played = v; },
                  after(bench::patience) >> [&] { bench::fail("pingpong: timed out"); });
    double secs = bench::now() - t0;

    if (played != n)
        bench::fail("pingpong: " + std::to_string(played) + " round trips");
    bench::result("pingpong", n, secs, "ns_per_rt", secs * 1e9 / double(n));
    anon_send_exit(ping_actor, exit_reason::user_shutdown);
    anon_send_exit(pong_actor, exit_reason::user_shutdown);
    return 0;
}
