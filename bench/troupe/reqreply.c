/*
 * reqreply.c — C client actors each keep one request in flight against one
 * server actor, N requests in all. A client sends an integer with
 * tr_request (deadline 60 s); the server replies with it plus one; the
 * continuation checks the answer and sends the next request. Each client
 * reports its count to main when done. Usage: troupe_reqreply C N
 */
#include "bench.h"

static int server_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    int64_t v;
    tr_msg *r;
    tr_err err = tr_msg_int(m, &v);
    if (err != TR_OK)
        return err;
    if ((err = tr_msg_new(&r, ctx, "re")) != TR_OK)
        return err;
    if ((err = tr_pack_int(r, v + 1)) != TR_OK || (err = tr_reply(ctx, m, r)) != TR_OK)
        tr_msg_free(r);
    return err;
}

typedef struct client_state {
    tr_ref server;
    tr_ref report_to;
    int64_t done, todo;
} client_state;

static int client_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    client_state *s = state;
    tr_cursor c;
    tr_cursor_init(&c, args);
    return tr_cursor_ref(&c, &s->server);
}

static int on_reply(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata);

static tr_err send_request(tr_ctx *ctx, client_state *s)
{
    tr_msg *req;
    tr_err err = tr_msg_new(&req, ctx, "req");
    if (err != TR_OK)
        return err;
    if ((err = tr_pack_int(req, s->done)) != TR_OK ||
        (err = tr_request(ctx, s->server, req, 60000, on_reply, NULL)) != TR_OK)
        tr_msg_free(req);
    return err;
}

static int on_reply(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    client_state *s = state;
    int64_t v;
    if (status != TR_OK)
        bench_check(status, "request");
    bench_check(tr_msg_int(reply, &v), "read reply");
    if (v != s->done + 1)
        bench_fail("reqreply: answer %lld to %lld", (long long)v, (long long)s->done);
    if (++s->done < s->todo)
        return send_request(ctx, s);
    return tr_send_int(ctx, s->report_to, "done", s->done);
}

static int client_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    client_state *s = state;
    if (!tr_msg_is(m, "go"))
        return TR_OK;
    tr_err err = tr_msg_int(m, &s->todo);
    if (err != TR_OK)
        return err;
    s->report_to = tr_msg_from(m);
    return send_request(ctx, s);
}

static const tr_behaviour server_beh = {.name = "server", .handle = server_handle};
static const tr_behaviour client_beh = {.name = "client",
                                        .state_size = sizeof(client_state),
                                        .init = client_init,
                                        .handle = client_handle};

int main(int argc, char **argv)
{
    long clients = bench_arg(argc, argv, 1, 100);
    long n = bench_arg(argc, argv, 2, 1000000);
    int64_t each = n / clients, total = each * clients;
    tr_runtime *rt;
    tr_ctx *ctx = bench_start(&rt);
    tr_ref server, *cl = calloc((size_t)clients, sizeof *cl);

    if (cl == NULL)
        bench_check(TR_ENOMEM, "allocate");
    bench_check(tr_spawn(&server, ctx, &server_beh, NULL, NULL), "spawn server");
    for (long i = 0; i < clients; i++) {
        tr_msg *args;
        bench_check(tr_msg_new(&args, ctx, "args"), "new args");
        bench_check(tr_pack_ref(args, server), "pack args");
        bench_check(tr_spawn(&cl[i], ctx, &client_beh, args, NULL), "spawn client");
    }

    double t0 = bench_now();
    for (long i = 0; i < clients; i++)
        bench_check(tr_send_int(ctx, cl[i], "go", each), "send go");
    int64_t answered = 0;
    for (long i = 0; i < clients; i++)
        answered += bench_wait_int(ctx, "done");
    double secs = bench_now() - t0;

    if (answered != total)
        bench_fail("reqreply: %lld answers, expected %lld", (long long)answered, (long long)total);
    char extra[32];
    snprintf(extra, sizeof extra, "c=%ld", clients);
    bench_result("reqreply", total, secs, "reqs_per_s", (double)total / secs, extra);
    free(cl);
    bench_stop(rt, ctx);
    return 0;
}
