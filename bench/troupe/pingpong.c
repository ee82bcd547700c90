/*
 * pingpong.c — two pooled actors bounce one integer N round trips.
 * main (attached) starts the game and waits for "done"; the clock covers
 * the first send to the last reply. Usage: troupe_pingpong N
 */
#include "bench.h"

typedef struct ping_state {
    tr_ref pong;
    tr_ref report_to;
    int64_t rounds;
} ping_state;

static int ping_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    ping_state *s = state;
    tr_cursor c;
    tr_cursor_init(&c, args);
    return tr_cursor_ref(&c, &s->pong);
}

static int ping_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    ping_state *s = state;
    int64_t n;
    tr_err err = tr_msg_int(m, &n);
    if (err != TR_OK)
        return err;
    if (tr_msg_is(m, "ball")) { /* n round trips done so far */
        if (n < s->rounds)
            return tr_send_int(ctx, s->pong, "ball", n);
        return tr_send_int(ctx, s->report_to, "done", n);
    }
    if (tr_msg_is(m, "play")) {
        s->report_to = tr_msg_from(m);
        s->rounds = n;
        return tr_send_int(ctx, s->pong, "ball", 0);
    }
    return TR_OK;
}

static int pong_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    int64_t n;
    tr_err err = tr_msg_int(m, &n);
    if (err != TR_OK)
        return err;
    return tr_send_int(ctx, tr_msg_from(m), "ball", n + 1);
}

static const tr_behaviour ping_beh = {
    .name = "ping", .state_size = sizeof(ping_state), .init = ping_init, .handle = ping_handle};
static const tr_behaviour pong_beh = {.name = "pong", .handle = pong_handle};

int main(int argc, char **argv)
{
    long n = bench_arg(argc, argv, 1, 2000000);
    tr_runtime *rt;
    tr_ctx *ctx = bench_start(&rt);
    tr_ref ping, pong;
    tr_msg *args;

    bench_check(tr_spawn(&pong, ctx, &pong_beh, NULL, NULL), "spawn pong");
    bench_check(tr_msg_new(&args, ctx, "args"), "new args");
    bench_check(tr_pack_ref(args, pong), "pack args");
    bench_check(tr_spawn(&ping, ctx, &ping_beh, args, NULL), "spawn ping");

    double t0 = bench_now();
    bench_check(tr_send_int(ctx, ping, "play", n), "send play");
    int64_t played = bench_wait_int(ctx, "done");
    double secs = bench_now() - t0;

    if (played != n)
        bench_fail("pingpong: %lld round trips, expected %ld", (long long)played, n);
    bench_result("pingpong", n, secs, "ns_per_rt", secs * 1e9 / (double)n, "");
    bench_stop(rt, ctx);
    return 0;
}
