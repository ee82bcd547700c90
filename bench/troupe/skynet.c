/*
 * skynet.c — a tree of actors with N leaves (N a power of 10), 10 children
 * per node. Each actor is spawned with [parent, number, size]; a leaf
 * (size 1) sends its number to its parent and exits; an inner node spawns
 * 10 children, sums their 10 replies, sends the sum up and exits. The clock
 * covers spawning the root to main receiving the total, so it includes all
 * 1.11 N spawns and exits. Usage: troupe_skynet N
 */
#include "bench.h"

typedef struct sky_state {
    tr_ref parent;
    int64_t sum;
    int64_t replies;
} sky_state;

static const tr_behaviour sky_beh;

static tr_err spawn_node(tr_ctx *ctx, tr_ref parent, int64_t num, int64_t size)
{
    tr_msg *args;
    tr_ref child;
    tr_err err = tr_msg_new(&args, ctx, "args");
    if (err != TR_OK)
        return err;
    if ((err = tr_pack_array(args, 3)) != TR_OK || (err = tr_pack_ref(args, parent)) != TR_OK ||
        (err = tr_pack_int(args, num)) != TR_OK || (err = tr_pack_int(args, size)) != TR_OK ||
        (err = tr_spawn(&child, ctx, &sky_beh, args, NULL)) != TR_OK)
        tr_msg_free(args);
    return err;
}

static int sky_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    sky_state *s = state;
    int64_t num, size;
    uint32_t len;
    tr_cursor c;
    tr_cursor_init(&c, args);
    tr_err err = tr_cursor_array(&c, &len);
    if (err == TR_OK)
        err = tr_cursor_ref(&c, &s->parent);
    if (err == TR_OK)
        err = tr_cursor_int(&c, &num);
    if (err == TR_OK)
        err = tr_cursor_int(&c, &size);
    if (err != TR_OK)
        return err;
    if (size == 1) {
        tr_reason normal = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
        tr_stop_self(ctx, &normal);
        return tr_send_int(ctx, s->parent, "n", num);
    }
    int64_t sub = size / 10;
    tr_ref self = tr_self(ctx);
    for (int64_t i = 0; i < 10; i++)
        if ((err = spawn_node(ctx, self, num + i * sub, sub)) != TR_OK)
            return err;
    return TR_OK;
}

static int sky_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    sky_state *s = state;
    int64_t v;
    tr_err err = tr_msg_int(m, &v);
    if (err != TR_OK)
        return err;
    s->sum += v;
    if (++s->replies < 10)
        return TR_OK;
    tr_reason normal = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
    tr_stop_self(ctx, &normal);
    return tr_send_int(ctx, s->parent, "n", s->sum);
}

static const tr_behaviour sky_beh = {
    .name = "skynet", .state_size = sizeof(sky_state), .init = sky_init, .handle = sky_handle};

int main(int argc, char **argv)
{
    long n = bench_arg(argc, argv, 1, 1000000);
    for (long k = n; k > 1; k /= 10)
        if (k % 10 != 0) {
            fprintf(stderr, "skynet: N must be a power of 10\n");
            return 2;
        }
    tr_runtime *rt;
    tr_ctx *ctx = bench_start(&rt);

    double t0 = bench_now();
    bench_check(spawn_node(ctx, tr_self(ctx), 0, n), "spawn root");
    int64_t sum = bench_wait_int(ctx, "n");
    double secs = bench_now() - t0;

    int64_t want = (int64_t)n * ((int64_t)n - 1) / 2;
    if (sum != want)
        bench_fail("skynet: sum %lld, expected %lld", (long long)sum, (long long)want);
    bench_result("skynet", n, secs, "seconds", secs, "");
    bench_stop(rt, ctx);
    return 0;
}
