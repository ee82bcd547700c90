/*
 * fanin.c — P producer actors each send the integers 1..N/P to one sink
 * actor, which counts and sums them and reports to main when all N have
 * arrived. Producers send in slices of SLICE and post themselves "more"
 * between slices (as in counting.c). Usage: troupe_fanin P N
 */
#include "bench.h"

#define SLICE 1000

typedef struct sink_state {
    tr_ref report_to;
    int64_t expect, count, sum;
} sink_state;

static int sink_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    sink_state *s = state;
    int64_t v;
    tr_err err = tr_msg_int(m, &v);
    if (err != TR_OK)
        return err;
    if (tr_msg_is(m, "n")) {
        s->sum += v;
        if (++s->count == s->expect)
            return tr_send_int(ctx, s->report_to, "sum", s->sum);
        return TR_OK;
    }
    if (tr_msg_is(m, "expect")) {
        s->report_to = tr_msg_from(m);
        s->expect = v;
    }
    return TR_OK;
}

typedef struct producer_state {
    tr_ref sink;
    int64_t next, last;
} producer_state;

static int producer_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    producer_state *s = state;
    tr_cursor c;
    tr_cursor_init(&c, args);
    return tr_cursor_ref(&c, &s->sink);
}

static int producer_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    producer_state *s = state;
    tr_err err;
    if (tr_msg_is(m, "go")) {
        if ((err = tr_msg_int(m, &s->last)) != TR_OK)
            return err;
        s->next = 1;
    }
    int64_t stop = s->next + SLICE - 1 < s->last ? s->next + SLICE - 1 : s->last;
    for (; s->next <= stop; s->next++)
        if ((err = tr_send_int(ctx, s->sink, "n", s->next)) != TR_OK)
            return err;
    if (s->next <= s->last)
        return tr_send_tag(ctx, tr_self(ctx), "more");
    return TR_OK;
}

static const tr_behaviour sink_beh = {
    .name = "sink", .state_size = sizeof(sink_state), .handle = sink_handle};
static const tr_behaviour producer_beh = {.name = "producer",
                                          .state_size = sizeof(producer_state),
                                          .init = producer_init,
                                          .handle = producer_handle};

int main(int argc, char **argv)
{
    long p = bench_arg(argc, argv, 1, 4);
    long n = bench_arg(argc, argv, 2, 4000000);
    int64_t each = n / p, total = each * p;
    tr_runtime *rt;
    tr_ctx *ctx = bench_start(&rt);
    tr_ref sink, *producers = calloc((size_t)p, sizeof *producers);

    if (producers == NULL)
        bench_check(TR_ENOMEM, "allocate");
    bench_check(tr_spawn(&sink, ctx, &sink_beh, NULL, NULL), "spawn sink");
    for (long i = 0; i < p; i++) {
        tr_msg *args;
        bench_check(tr_msg_new(&args, ctx, "args"), "new args");
        bench_check(tr_pack_ref(args, sink), "pack args");
        bench_check(tr_spawn(&producers[i], ctx, &producer_beh, args, NULL), "spawn producer");
    }
    bench_check(tr_send_int(ctx, sink, "expect", total), "send expect");

    double t0 = bench_now();
    for (long i = 0; i < p; i++)
        bench_check(tr_send_int(ctx, producers[i], "go", each), "send go");
    int64_t sum = bench_wait_int(ctx, "sum");
    double secs = bench_now() - t0;

    int64_t want = p * (each * (each + 1) / 2);
    if (sum != want)
        bench_fail("fanin: sum %lld, expected %lld", (long long)sum, (long long)want);
    char extra[32];
    snprintf(extra, sizeof extra, "p=%ld", p);
    bench_result("fanin", total, secs, "msgs_per_s", (double)total / secs, extra);
    free(producers);
    bench_stop(rt, ctx);
    return 0;
}
