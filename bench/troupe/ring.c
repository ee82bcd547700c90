/*
 * ring.c — R actors in a ring pass one token M hops. The token carries
 * the hops left; the actor that receives it at 0 reports its index to
 * main, which checks it. Setup
 * (spawning and linking the ring) is not timed. Usage: troupe_ring R M
 */
#include "bench.h"

typedef struct node_state {
    tr_ref next;
    tr_ref report_to;
    int64_t index;
} node_state;

static int node_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    node_state *s = state;
    if (tr_msg_is(m, "token")) {
        int64_t left;
        tr_err err = tr_msg_int(m, &left);
        if (err != TR_OK)
            return err;
        if (left == 0)
            return tr_send_int(ctx, s->report_to, "done", s->index);
        return tr_send_int(ctx, s->next, "token", left - 1);
    }
    if (tr_msg_is(m, "next")) { /* [next ref, report_to ref, own index] */
        tr_cursor c;
        uint32_t len;
        tr_cursor_init(&c, m);
        tr_err err = tr_cursor_array(&c, &len);
        if (err == TR_OK)
            err = tr_cursor_ref(&c, &s->next);
        if (err == TR_OK)
            err = tr_cursor_ref(&c, &s->report_to);
        if (err == TR_OK)
            err = tr_cursor_int(&c, &s->index);
        if (err != TR_OK)
            return err;
        return tr_send_tag(ctx, s->report_to, "linked");
    }
    return TR_OK;
}

static const tr_behaviour node_beh = {
    .name = "ring-node", .state_size = sizeof(node_state), .handle = node_handle};

int main(int argc, char **argv)
{
    long r = bench_arg(argc, argv, 1, 1000);
    long hops = bench_arg(argc, argv, 2, 5000000);
    tr_runtime *rt;
    tr_ctx *ctx = bench_start(&rt);
    tr_ref *nodes = calloc((size_t)r, sizeof *nodes);

    if (nodes == NULL)
        bench_check(TR_ENOMEM, "allocate");
    for (long i = 0; i < r; i++)
        bench_check(tr_spawn(&nodes[i], ctx, &node_beh, NULL, NULL), "spawn node");
    for (long i = 0; i < r; i++) {
        tr_msg *m;
        bench_check(tr_msg_new(&m, ctx, "next"), "new next");
        bench_check(tr_pack_array(m, 3), "pack");
        bench_check(tr_pack_ref(m, nodes[(i + 1) % r]), "pack");
        bench_check(tr_pack_ref(m, tr_self(ctx)), "pack");
        bench_check(tr_pack_int(m, i), "pack");
        bench_check(tr_send(ctx, nodes[i], m), "send next");
    }
    for (long i = 0; i < r; i++) {
        tr_msg *m;
        bench_check(tr_receive(ctx, "linked", NULL, NULL, 600000, &m), "wait linked");
        tr_msg_free(m);
    }

    double t0 = bench_now();
    bench_check(tr_send_int(ctx, nodes[0], "token", hops), "send token");
    int64_t last = bench_wait_int(ctx, "done");
    double secs = bench_now() - t0;

    if (last != hops % r) /* the token ends hops places after node 0 */
        bench_fail("ring: token ended at node %lld, expected %ld", (long long)last, hops % r);

    char extra[32];
    snprintf(extra, sizeof extra, "r=%ld", r);
    bench_result("ring", hops, secs, "hops_per_s", (double)hops / secs, extra);
    free(nodes);
    bench_stop(rt, ctx);
    return 0;
}
