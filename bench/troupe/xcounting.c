/*
 * xcounting.c — counting across an OS process boundary: a pooled producer
 * in this process sends the integers 1..N to a counter actor in another
 * process, then asks for the sum with a request; checked against
 * N(N+1)/2. Transport as in xpingpong.c (xbench.h): proc = the counter is
 * a process actor; ipc, tcp = it is a pooled actor on a second node. The
 * producer sends in slices of SLICE messages, as counting.c does. main
 * (attached) times from "go" to the reported sum.
 * Usage: troupe_xcounting proc|ipc|tcp N
 */
#include "xbench.h"

#define SLICE 1000

typedef struct counter_state {
    int64_t sum;
    int64_t count;
} counter_state;

/* Runs in the other process. Requests: "hello" (readiness) and "get". */
static int counter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    counter_state *s = state;
    if (tr_msg_is_request(m)) {
        tr_msg *r;
        tr_err err = tr_msg_new(&r, ctx, tr_msg_is(m, "get") ? "sum" : "hello");
        if (err == TR_OK && tr_msg_is(m, "get")) {
            err = tr_pack_array(r, 2);
            if (err == TR_OK)
                err = tr_pack_int(r, s->sum);
            if (err == TR_OK)
                err = tr_pack_int(r, s->count);
        }
        if (err == TR_OK && (err = tr_reply(ctx, m, r)) != TR_OK)
            tr_msg_free(r);
        return err;
    }
    int64_t v;
    tr_err err = tr_msg_int(m, &v);
    if (err != TR_OK)
        return err;
    s->sum += v;
    s->count++;
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
    int64_t sum, count;
    uint32_t len;
    tr_cursor c;
    if (status != TR_OK)
        return status;
    tr_cursor_init(&c, reply);
    tr_err err = tr_cursor_array(&c, &len);
    if (err == TR_OK && len != 2)
        err = TR_ETYPE;
    if (err == TR_OK)
        err = tr_cursor_int(&c, &sum);
    if (err == TR_OK)
        err = tr_cursor_int(&c, &count);
    if (err != TR_OK)
        return err;
    if (count != s->last)
        bench_fail("xcounting: the counter got %lld messages, expected %lld", (long long)count,
                   (long long)s->last);
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
    enum xmode mode = xbench_mode(argc, argv, 1);
    long n = bench_arg(argc, argv, 2, 1000000);
    char url_a[160], url_b[160];
    xnode node = {0};
    if (mode != XMODE_PROC) {
        xbench_url(url_a, sizeof url_a, mode, getpid(), 'a');
        xbench_url(url_b, sizeof url_b, mode, getpid(), 'b');
        node = xbench_node_b(url_b, &counter_beh);
    }
    tr_runtime *rt;
    tr_ctx *ctx = bench_start(&rt);
    tr_ref counter, producer;
    if (mode == XMODE_PROC) {
        counter = xbench_proc_actor(ctx, &counter_beh);
    } else {
        xbench_connect(rt, url_a, url_b, &node);
        counter = node.actor;
    }
    tr_msg *args;
    bench_check(tr_msg_new(&args, ctx, "args"), "new args");
    bench_check(tr_pack_ref(args, counter), "pack args");
    bench_check(tr_spawn(&producer, ctx, &producer_beh, args, NULL), "spawn producer");

    double t0 = bench_now();
    bench_check(tr_send_int(ctx, producer, "go", n), "send go");
    int64_t sum = bench_wait_int(ctx, "sum");
    double secs = bench_now() - t0;

    int64_t want = (int64_t)n * ((int64_t)n + 1) / 2;
    if (sum != want)
        bench_fail("xcounting: sum %lld, expected %lld", (long long)sum, (long long)want);
    char extra[64];
    snprintf(extra, sizeof extra, "transport=%s", xbench_mode_name(mode));
    bench_result("xcounting", n, secs, "msgs_per_s", (double)n / secs, extra);
    bench_stop(rt, ctx);
    if (mode != XMODE_PROC)
        xbench_node_b_end(&node);
    return 0;
}
