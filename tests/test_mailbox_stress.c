/*
 * test_mailbox_stress — many producers into one mailbox.
 *
 * Six producers (two thread actors, two attached plain threads, two pooled
 * actors sending in chunks, one chunk per turn) each send a numbered
 * stream [producer, seq] to one pooled actor and one thread actor at the
 * same time. Each receiver checks that every stream arrives
 * whole, without duplicates and in order (FIFO per sender/receiver pair),
 * and the runtime's counters agree: nothing became a dead letter.
 */
#include "check.h"

#include <pthread.h>

#define NPROD 6

static tr_ref g_main;
static uint32_t g_count; /* messages per producer per receiver */

/* ---- receivers ---------------------------------------------------------- */

typedef struct sink {
    int64_t next[NPROD];
    uint64_t got;
} sink;

/* Checks one [producer, seq] message against the expected next seq; true
 * when the sink has everything. */
static bool sink_take(sink *s, const tr_msg *m)
{
    int64_t v[2];
    CHECK(tr_msg_is(m, "p"));
    test_read_ints(m, 2, v);
    CHECK(v[0] >= 0 && v[0] < NPROD);
    if (v[1] != s->next[v[0]])
        TEST_FAIL("producer %" PRId64 ": got seq %" PRId64 ", expected %" PRId64, v[0], v[1],
                  s->next[v[0]]);
    s->next[v[0]]++;
    s->got++;
    return s->got == (uint64_t)NPROD * g_count;
}

static int pooled_sink_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    if (sink_take(state, m))
        CHECK_OK(tr_send_int(ctx, g_main, "done", (int64_t)((sink *)state)->got));
    return 0;
}

static int thread_sink_run(tr_ctx *ctx, void *state)
{
    sink *s = state;
    for (;;) {
        tr_msg *m = NULL;
        tr_err e = tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &m);
        if (e == TR_ESTOPPED)
            return 0;
        CHECK_OK(e);
        bool full = sink_take(s, m);
        tr_msg_free(m);
        if (full) {
            CHECK_OK(tr_send_int(ctx, g_main, "done", (int64_t)s->got));
            return 0;
        }
    }
}

static const tr_behaviour pooled_sink = {"pooled_sink",      sizeof(sink), NULL,
                                         pooled_sink_handle, NULL,         NULL};
static const tr_behaviour thread_sink = {"thread_sink", sizeof(sink), NULL,
                                         NULL,          NULL,         thread_sink_run};

/* ---- producers ---------------------------------------------------------- */

/* Sends the stream of producer pid to a and b, interleaved. */
static void produce(tr_ctx *ctx, int64_t pid, tr_ref a, tr_ref b)
{
    for (uint32_t i = 0; i < g_count; i++) {
        int64_t v[2] = {pid, (int64_t)i};
        test_send_ints(ctx, a, "p", 2, v);
        test_send_ints(ctx, b, "p", 2, v);
    }
}

typedef struct producer_state {
    int64_t pid;
    tr_ref a, b;
} producer_state;

static int producer_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    producer_state *p = state;
    tr_cursor c;
    uint32_t n;
    CHECK(args != NULL);
    tr_cursor_init(&c, args);
    CHECK_OK(tr_cursor_array(&c, &n));
    CHECK(n == 3);
    CHECK_OK(tr_cursor_int(&c, &p->pid));
    CHECK_OK(tr_cursor_ref(&c, &p->a));
    CHECK_OK(tr_cursor_ref(&c, &p->b));
    return 0;
}

static int producer_run(tr_ctx *ctx, void *state)
{
    producer_state *p = state;
    produce(ctx, p->pid, p->a, p->b);
    return 0;
}

static const tr_behaviour producer = {
    "producer", sizeof(producer_state), producer_init, NULL, NULL, producer_run};

/* Pooled: each "more" sends the next chunk of the stream, then asks itself
 * for more, so the stream spans many turns (and workers). */
typedef struct pooled_producer {
    producer_state p;
    uint32_t next;
} pooled_producer;

static int pooled_producer_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    pooled_producer *pp = state;
    for (int n = 0; n < 500 && pp->next < g_count; n++, pp->next++) {
        int64_t v[2] = {pp->p.pid, (int64_t)pp->next};
        test_send_ints(ctx, pp->p.a, "p", 2, v);
        test_send_ints(ctx, pp->p.b, "p", 2, v);
    }
    if (pp->next < g_count)
        CHECK_OK(tr_send_tag(ctx, tr_self(ctx), "more"));
    return 0;
}

static const tr_behaviour pooled_producer_b = {
    "pooled_producer", sizeof(pooled_producer), producer_init, pooled_producer_handle, NULL, NULL};

typedef struct plain_producer {
    tr_runtime *rt;
    int64_t pid;
    tr_ref a, b;
} plain_producer;

static void *plain_producer_main(void *arg)
{
    plain_producer *p = arg;
    tr_ctx *ctx = NULL;
    CHECK_OK(tr_attach(&ctx, p->rt));
    produce(ctx, p->pid, p->a, p->b);
    tr_detach(ctx);
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    g_count = test_scale(100000);
    printf("%d producers x %u messages x 2 receivers\n", NPROD, g_count);

    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    g_main = tr_self(ctx);

    tr_spawn_opts thread_opts = TR_SPAWN_OPTS_INIT;
    thread_opts.kind = TR_THREAD;
    tr_ref a, b;
    CHECK_OK(tr_spawn(&a, ctx, &pooled_sink, NULL, NULL));
    CHECK_OK(tr_spawn(&b, ctx, &thread_sink, NULL, &thread_opts));

    /* Producers 0 and 1 are thread actors, 2 and 3 attached threads, 4
     * and 5 pooled actors. */
    for (int64_t pid = 0; pid < NPROD; pid++) {
        if (pid == 2 || pid == 3)
            continue;
        tr_msg *args = NULL;
        tr_ref r;
        CHECK_OK(tr_msg_new(&args, ctx, "args"));
        CHECK_OK(tr_pack_array(args, 3));
        CHECK_OK(tr_pack_int(args, pid));
        CHECK_OK(tr_pack_ref(args, a));
        CHECK_OK(tr_pack_ref(args, b));
        if (pid < 2) {
            CHECK_OK(tr_spawn(&r, ctx, &producer, args, &thread_opts));
        } else {
            CHECK_OK(tr_spawn(&r, ctx, &pooled_producer_b, args, NULL));
            CHECK_OK(tr_send_tag(ctx, r, "more"));
        }
    }
    pthread_t threads[2];
    plain_producer plain[2];
    for (int i = 0; i < 2; i++) {
        plain[i] = (plain_producer){rt, 2 + i, a, b};
        CHECK(pthread_create(&threads[i], NULL, plain_producer_main, &plain[i]) == 0);
    }

    uint64_t total = (uint64_t)NPROD * g_count;
    CHECK((uint64_t)test_recv_int(ctx, "done") == total);
    CHECK((uint64_t)test_recv_int(ctx, "done") == total);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(threads[i], NULL) == 0);

    WAIT_UNTIL(test_counters(rt).sent >= 2 * total + 2);
    WAIT_UNTIL(test_counters(rt).delivered >= 2 * total);
    tr_counters c = test_counters(rt);
    CHECK(c.sent >= c.delivered);
    CHECK(c.dead_letters == 0);
    CHECK(c.dropped_overflow == 0);
    CHECK(c.rejected_full == 0);
    CHECK(c.max_mailbox_depth >= 1);

    tr_detach(ctx);
    CHECK_OK(tr_runtime_stop(rt, TR_STOP_DRAIN));
    c = test_counters(rt);
    CHECK(c.dead_letters == 0);
    CHECK(c.sent >= c.delivered);
    CHECK(c.live_actors == 0);
    tr_runtime_free(rt);
    printf("ok\n");
    return 0;
}
