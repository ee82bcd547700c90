/*
 * counting.c — one producer actor sends the integers 1..N to one counter
 * actor, then asks for the sum with a request; the counter replies with
 * it. The producer sends in slices of SLICE messages and posts itself a
 * "more" message between slices, so it never holds a worker for long (the
 * CAF program does the same; Erlang preempts on its own). main (attached)
 * times from "go" to the reported sum. Usage: troupe_counting N
 */
#include "bench.h"

#define SLICE 1000

typedef struct counter_state {
    int64_t sum;
} counter_state;

static int counter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    counter_state *s = state;
    if (tr_msg_is_request(m)) { /* "get": the producer is done */
        tr_msg *r;
        tr_err err = tr_msg_new(&r, ctx, "sum");
        if (err == TR_OK)
            err = tr_pack_int(r, s->sum);
        if (err == TR_OK && (err = tr_reply(ctx, m, r)) != TR_OK)
            tr_msg_free(r);
        return err;
    }
    int64_t v;
    tr_err err = tr_msg_int(m, &v);
    if (err != TR_OK)
        return err;
    s->sum += v;
    return TR_OK;
}

typedef struct producer_state {
    tr_ref counter;
    tr_ref report_to;
    int64_t next, last;
} producer_state;

static int producer_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    producer_state *s = state;
    tr_cursor c;
    tr_cursor_init(&c, args);
    return tr_cursor_ref(&c, &s->counter);
}

static int got_sum(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    producer_state *s = state;
    int64_t sum;
    if (status != TR_OK)
        return status;
    tr_err err = tr_msg_int(reply, &sum);
    if (err != TR_OK)
        return err;
    return tr_send_int(ctx, s->report_to, "sum", sum);
}

static int producer_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    producer_state *s = state;
    tr_err err;
    if (tr_msg_is(m, "go")) {
        int64_t n;
        if ((err = tr_msg_int(m, &n)) != TR_OK)
            return err;
        s->report_to = tr_msg_from(m);
        s->next = 1;
        s->last = n;
    }
    int64_t stop = s->next + SLICE - 1 < s->last ? s->next + SLICE - 1 : s->last;
    for (; s->next <= stop; s->next++)
        if ((err = tr_send_int(ctx, s->counter, "n", s->next)) != TR_OK)
            return err;
    if (s->next <= s->last)
        return tr_send_tag(ctx, tr_self(ctx), "more");
    tr_msg *get;
    if ((err = tr_msg_new(&get, ctx, "get")) != TR_OK)
        return err;
    if ((err = tr_request(ctx, s->counter, get, 600000, got_sum, NULL)) != TR_OK)
        tr_msg_free(get);
    return err;
}

static const tr_behaviour counter_beh = {
    .name = "counter", .state_size = sizeof(counter_state), .handle = counter_handle};
static const tr_behaviour producer_beh = {.name = "producer",
                                          .state_size = sizeof(producer_state),
                                          .init = producer_init,
                                          .handle = producer_handle};

int main(int argc, char **argv)
{
    long n = bench_arg(argc, argv, 1, 5000000);
    tr_runtime *rt;
    tr_ctx *ctx = bench_start(&rt);
    tr_ref counter, producer;
    tr_msg *args;

    bench_check(tr_spawn(&counter, ctx, &counter_beh, NULL, NULL), "spawn counter");
    bench_check(tr_msg_new(&args, ctx, "args"), "new args");
    bench_check(tr_pack_ref(args, counter), "pack args");
    bench_check(tr_spawn(&producer, ctx, &producer_beh, args, NULL), "spawn producer");

    double t0 = bench_now();
    bench_check(tr_send_int(ctx, producer, "go", n), "send go");
    int64_t sum = bench_wait_int(ctx, "sum");
    double secs = bench_now() - t0;

    int64_t want = (int64_t)n * ((int64_t)n + 1) / 2;
    if (sum != want)
        bench_fail("counting: sum %lld, expected %lld", (long long)sum, (long long)want);
    bench_result("counting", n, secs, "msgs_per_s", (double)n / secs, "");
    bench_stop(rt, ctx);
    return 0;
}
