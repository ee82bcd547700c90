/*
 * xpingpong.c — pingpong across an OS process boundary: a pooled "ping"
 * actor in this process bounces one integer N round trips with a "pong"
 * actor in another process. Transport (xbench.h): proc = pong is a
 * process actor of this runtime (messages go through its stand-in, the
 * replies straight back over the child's link); ipc, tcp = pong is a
 * pooled actor on a second node in a forked process. main (attached)
 * starts the game and waits for "done"; setting up the other process is
 * not timed. Usage: troupe_xpingpong proc|ipc|tcp N
 */
#include "xbench.h"

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

/* Runs in the other process. Answers the readiness request "hello". */
static int pong_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    if (tr_msg_is_request(m)) {
        tr_msg *r;
        tr_err err = tr_msg_new(&r, ctx, "hello");
        if (err == TR_OK && (err = tr_reply(ctx, m, r)) != TR_OK)
            tr_msg_free(r);
        return err;
    }
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
    enum xmode mode = xbench_mode(argc, argv, 1);
    long n = bench_arg(argc, argv, 2, 20000);
    char url_a[160], url_b[160];
    xnode node = {0};
    if (mode != XMODE_PROC) {
        xbench_url(url_a, sizeof url_a, mode, getpid(), 'a');
        xbench_url(url_b, sizeof url_b, mode, getpid(), 'b');
        node = xbench_node_b(url_b, &pong_beh);
    }
    tr_runtime *rt;
    tr_ctx *ctx = bench_start(&rt);
    tr_ref ping, pong;
    if (mode == XMODE_PROC) {
        pong = xbench_proc_actor(ctx, &pong_beh);
    } else {
        xbench_connect(rt, url_a, url_b, &node);
        pong = node.actor;
    }
    tr_msg *args;
    bench_check(tr_msg_new(&args, ctx, "args"), "new args");
    bench_check(tr_pack_ref(args, pong), "pack args");
    bench_check(tr_spawn(&ping, ctx, &ping_beh, args, NULL), "spawn ping");

    double t0 = bench_now();
    bench_check(tr_send_int(ctx, ping, "play", n), "send play");
    int64_t played = bench_wait_int(ctx, "done");
    double secs = bench_now() - t0;

    if (played != n)
        bench_fail("xpingpong: %lld round trips, expected %ld", (long long)played, n);
    char extra[64];
    snprintf(extra, sizeof extra, "transport=%s", xbench_mode_name(mode));
    bench_result("xpingpong", n, secs, "us_per_rt", secs * 1e6 / (double)n, extra);
    bench_stop(rt, ctx);
    if (mode != XMODE_PROC)
        xbench_node_b_end(&node);
    return 0;
}
