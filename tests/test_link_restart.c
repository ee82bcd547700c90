/*
 * test_link_restart — a node stopped and started again at the same address
 * while another sends to it: nothing is lost or duplicated while both
 * live, and what could not be delivered is counted, never dropped silently.
 *
 * Node A sends numbers as fast as it can to a counter on node B. Midway,
 * another thread stops B. The counter checks every number it gets is the
 * next one, and on its way out reports how many it got. A keeps sending
 * until a send says TR_ENOROUTE (B's goodbye arrived). Then every number A
 * handed to its link is accounted for exactly once: received by the
 * counter, a dead letter on B (it reached B after the counter stopped), or
 * a dead letter on A (B never acknowledged it) — over-counted on both
 * sides only if the connection breaks during B's stop. A new B starts at the same
 * URL (a new node); A's link finds it by itself, and a fresh counter there
 * gets a new run of numbers from 0, all of them, in order. Three rounds,
 * over ipc:// and tcp://.
 * Usage: test_link_restart [--seed N]
 */
#include "link_test.h"

#include <pthread.h>

typedef struct counter {
    int64_t next;
    tr_ref report;
} counter;

static int counter_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    counter *c = state;
    c->report = test_read_ref(args);
    return 0;
}

static int counter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    counter *c = state;
    int64_t v;
    CHECK_OK(tr_msg_int(m, &v));
    if (v != c->next)
        TEST_FAIL("got %lld, expected %lld: lost, duplicated or reordered", (long long)v,
                  (long long)c->next);
    c->next++;
    if (tr_msg_is(m, "last"))
        return tr_send_int(ctx, c->report, "count", c->next);
    return 0;
}

/* On the way out (B stopping): how many arrived. */
static void counter_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    counter *c = state;
    tr_send_int(ctx, c->report, "final", c->next);
}

static const tr_behaviour counter_b = {"counter",      sizeof(counter),   counter_init,
                                       counter_handle, counter_terminate, NULL};

typedef struct stopper {
    tr_runtime *rt;
    _Atomic int go;
    pthread_t thread;
} stopper;

static void *stop_main(void *arg)
{
    stopper *s = arg;
    while (!atomic_load(&s->go))
        test_sleep_ms(1);
    CHECK_OK(tr_runtime_stop(s->rt, TR_STOP_DRAIN));
    return NULL;
}

static tr_runtime *start_b(const char *url)
{
    tr_runtime_opts o = TR_RUNTIME_OPTS_INIT;
    o.node_name = "b";
    tr_runtime *rb;
    CHECK_OK(tr_runtime_start(&rb, &o));
    CHECK_OK(tr_listen(rb, url));
    return rb;
}

static tr_ref spawn_counter(tr_runtime *rb, tr_ref report)
{
    tr_ctx *cb;
    CHECK_OK(tr_attach(&cb, rb));
    tr_ref c;
    CHECK_OK(tr_spawn(&c, cb, &counter_b, test_msg_ref(cb, "args", report), NULL));
    tr_detach(cb);
    return c;
}

static void rounds(enum test_transport t, test_rng *rng)
{
    char url[128];
    test_url(url, sizeof url, t, 5);
    printf("restarts over %s\n", test_transport_names[t]);
    tr_runtime_opts oa = TR_RUNTIME_OPTS_INIT;
    oa.node_name = "a";
    tr_runtime *ra;
    CHECK_OK(tr_runtime_start(&ra, &oa));
    tr_ctx *ca;
    CHECK_OK(tr_attach(&ca, ra));
    tr_runtime *rb = start_b(url);

    for (int round = 0; round < 3; round++) {
        uint64_t node_b;
        CHECK_OK(tr_connect(ra, url, TEST_WAIT_MS, &node_b));
        CHECK(node_b == tr_runtime_node(rb));
        tr_ref c = spawn_counter(rb, tr_self(ca));

        /* A new B: a run from 0 arrives whole and in order. */
        const int n = (int)test_scale(20000);
        for (int i = 0; i < n - 1; i++)
            CHECK_OK(tr_send_int(ca, c, "n", i));
        CHECK_OK(tr_send_int(ca, c, "last", n - 1));
        CHECK(test_recv_int(ca, "count") == n);

        /* Stop B under load. */
        tr_counters a0 = test_counters(ra);
        stopper s = {rb, 0, 0};
        CHECK(pthread_create(&s.thread, NULL, stop_main, &s) == 0);
        int64_t stop_at = n + 1000 + test_rng_below(rng, 20000), sent = n;
        tr_err err;
        while ((err = tr_send_int(ca, c, "n", sent)) == TR_OK) {
            if (++sent == stop_at)
                atomic_store(&s.go, 1);
            if (sent % 1000 == 0)
                test_sleep_ms(1);
        }
        CHECK_ERR(err, TR_ENOROUTE);
        atomic_store(&s.go, 1);
        CHECK(pthread_join(s.thread, NULL) == 0);
        int64_t got = test_recv_int(ca, "final");
        tr_counters a1 = test_counters(ra), b = test_counters(rb);
        int64_t lost_a = (int64_t)(a1.dead_letters - a0.dead_letters);
        printf("round %d: %lld sent, %lld received, %llu dead on B, %lld dead on A\n", round,
               (long long)sent, (long long)got, (unsigned long long)b.dead_letters,
               (long long)lost_a);
        CHECK(got >= n && got <= sent);
        /* Every number is accounted for: received, or a dead letter on B,
         * or not acknowledged by B (a dead letter on A). Once, as a rule;
         * but if the connection breaks while B stops, what B took in after
         * its last acknowledgement that reached A is counted on both sides
         * (A cannot know B got it): over-counted, never lost. */
        int64_t on_b = got + (int64_t)b.dead_letters;
        CHECK(on_b <= sent && sent <= on_b + lost_a);
        if (sent != on_b + lost_a)
            printf("round %d: %lld counted on both sides (the connection broke during the stop)\n",
                   round, (long long)(on_b + lost_a - sent));
        tr_runtime_free(rb);
        rb = start_b(url);
    }
    tr_detach(ca);
    tr_runtime_free(ra);
    tr_runtime_free(rb);
    test_url_cleanup(url);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_rng rng;
    test_rng_init(&rng, test_seed(argc, argv));
    rounds(T_IPC, &rng);
    rounds(T_TCP, &rng);
    printf("ok\n");
    return 0;
}
