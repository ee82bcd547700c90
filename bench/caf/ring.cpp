// ring.cpp — R actors in a ring pass one token M hops. The token carries
// the hops left; the actor that receives it at 0 reports its index to main,
// which checks it. Setup is not timed. Usage: caf_ring R M
#include "bench.hpp"

#include <vector>

using namespace caf;

namespace {

struct node_state {
    actor next;
    actor report_to;
    int64_t index = 0;
};

behavior node(stateful_actor<node_state> *self)
{
    return {
        [=](token_atom, int64_t left) {
            auto &s = self->state;
            if (left == 0)
                self->send(s.report_to, done_atom::value, s.index);
            else
                self->send(s.next, token_atom::value, left - 1);
        },
        [=](next_atom, actor next, actor report_to, int64_t index) {
            auto &s = self->state;
            s.next = std::move(next);
            s.report_to = std::move(report_to);
            s.index = index;
            self->send(s.report_to, linked_atom::value);
        },
    };
}

} // namespace

int main(int argc, char **argv)
{
    long r = bench::arg(argc, argv, 1, 1000);
    long hops = bench::arg(argc, argv, 2, 5000000);
    bench::config cfg;
    actor_system sys{cfg};
    scoped_actor self{sys};
    std::vector<actor> nodes;
    for (long i = 0; i < r; ++i)
        nodes.push_back(sys.spawn(node));
    for (long i = 0; i < r; ++i)
        self->send(nodes[i], next_atom::value, nodes[(i + 1) % r], actor_cast<actor>(self),
                   int64_t{i});
    for (long i = 0; i < r; ++i)
        self->receive([](linked_atom) {},
                      after(bench::patience) >> [&] { bench::fail("ring: setup timed out"); });

    int64_t last = -1;
    double t0 = bench::now();
    self->send(nodes[0], token_atom::value, int64_t{hops});
    self->receive([&](done_atom, int64_t idx) { last = idx; },
                  after(bench::patience) >> [&] { bench::fail("ring: timed out"); });
    double secs = bench::now() - t0;

    if (last != hops % r)
        bench::fail("ring: token ended at node " + std::to_string(last));
    bench::result("ring", hops, secs, "hops_per_s", double(hops) / secs, "r=" + std::to_string(r));
    for (auto &a : nodes)
        anon_send_exit(a, exit_reason::user_shutdown);
    return 0;
}
