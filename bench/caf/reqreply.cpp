// reqreply.cpp — C client actors each keep one request in flight against
// one server actor, N requests in all. A client sends an integer with
// request() (timeout 60 s); the server's handler returns it plus one (the
// response); the continuation checks it and sends the next request. Each
// client reports its count to main when done. Usage: caf_reqreply C N
#include "bench.hpp"

#include <vector>

using namespace caf;

namespace {

behavior server(event_based_actor *)
{
    return {
        [](int64_t v) { return v + 1; },
    };
}

struct client_state {
    actor server;
    actor report_to;
    int64_t done = 0, todo = 0;
};

void send_request(stateful_actor<client_state> *self)
{
    int64_t sent = self->state.done;
    self->request(self->state.server, std::chrono::seconds(60), sent)
        .then(
            [=](int64_t v) {
                auto &s = self->state;
                if (v != sent + 1)
                    bench::fail("reqreply: answer " + std::to_string(v) + " to " +
                                std::to_string(sent));
                if (++s.done < s.todo)
                    send_request(self);
                else
                    self->send(s.report_to, done_atom::value, s.done);
            },
            [=](error &err) { bench::fail("reqreply: " + to_string(err)); });
}

behavior client(stateful_actor<client_state> *self, actor server_actor)
{
    self->state.server = server_actor;
    return {
        [=](go_atom, int64_t todo) {
            self->state.report_to = actor_cast<actor>(self->current_sender());
            self->state.todo = todo;
            send_request(self);
        },
    };
}

} // namespace

int main(int argc, char **argv)
{
    long clients = bench::arg(argc, argv, 1, 100);
    long n = bench::arg(argc, argv, 2, 1000000);
    int64_t each = n / clients, total = each * clients;
    bench::config cfg;
    actor_system sys{cfg};
    scoped_actor self{sys};
    auto server_actor = sys.spawn(server);
    std::vector<actor> cl;
    for (long i = 0; i < clients; ++i)
        cl.push_back(sys.spawn(client, server_actor));

    int64_t answered = 0;
    double t0 = bench::now();
    for (auto &a : cl)
        self->send(a, go_atom::value, each);
    for (long i = 0; i < clients; ++i)
        self->receive([&](done_atom, int64_t v) { answered += v; },
                      after(bench::patience) >> [&] { bench::fail("reqreply: timed out"); });
    double secs = bench::now() - t0;

    if (answered != total)
        bench::fail("reqreply: " + std::to_string(answered) + " answers");
    bench::result("reqreply", total, secs, "reqs_per_s", double(total) / secs,
                  "c=" + std::to_string(clients));
    for (auto &a : cl)
        anon_send_exit(a, exit_reason::user_shutdown);
    anon_send_exit(server_actor, exit_reason::user_shutdown);
    return 0;
}
