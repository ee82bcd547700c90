/*
 * test_shutdown — tr_runtime_stop and tr_runtime_free.
 *
 * DRAIN handles everything queued before terminate; DISCARD runs terminate
 * and turns the rest into dead letters; children terminate before their
 * parents; thread actors and blocked attached threads are released and
 * joined; a stopped runtime refuses work with TR_ESTOPPED; stop is
 * idempotent and refused from inside an actor; several runtimes live and
 * stop independently in one process.
 */
#include "check.h"

#include <pthread.h>

#define TREE 15 /* a binary tree of actors, heap-numbered: children of i are 2i+1, 2i+2 */

static struct {
    tr_ref main;
    atomic_int terminated; /* counter actors' terminate calls */
    atomic_llong handled;  /* messages the counter handled */
    tr_exit_kind reason;   /* what the counter's terminate saw */
    atomic_int order_seq;
    atomic_int order[TREE]; /* when node i terminated (1-based), 0 = not yet */
    atomic_int tree_terms[TREE];
    atomic_int early_parents;   /* a parent terminated before one of its children */
    atomic_int run_returned;    /* the thread actor left its loop */
    atomic_int receive_stopped; /* a blocked attached thread got TR_ESTOPPED */
} g;

/* ---- a counting actor ------------------------------------------------------ */

static int counter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    if (tr_msg_is(m, "stop_rt")) { /* not allowed from an actor */
        CHECK_OK(tr_send_int(ctx, g.main, "stop_rt",
                             tr_runtime_stop(tr_ctx_runtime(ctx), TR_STOP_DRAIN)));
        return 0;
    }
    volatile uint64_t x = 0; /* a little work so that messages pile up */
    for (int i = 0; i < 200; i++)
        x = x + (uint64_t)i;
    (void)x;
    (*(int64_t *)state)++;
    return 0;
}

static void counter_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    atomic_store(&g.handled, *(int64_t *)state);
    g.reason = why->kind;
    atomic_fetch_add(&g.terminated, 1);
}

static const tr_behaviour counter_b = {"counter",      sizeof(int64_t),   NULL,
                                       counter_handle, counter_terminate, NULL};

/* DRAIN: a pooled counter, or a thread actor running the same handler in
 * the runtime's own loop (run == NULL), handles all it was sent. */
static void drain(tr_actor_kind kind)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(1, &ctx);
    tr_ref c;
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    int64_t k = test_scale(20000);
    o.kind = kind;
    atomic_store(&g.terminated, 0);
    CHECK_OK(tr_spawn(&c, ctx, &counter_b, NULL, &o));
    for (int64_t i = 0; i < k; i++)
        CHECK_OK(tr_send_tag(ctx, c, "n"));
    tr_detach(ctx);
    CHECK_OK(tr_runtime_stop(rt, TR_STOP_DRAIN));
    CHECK(atomic_load(&g.terminated) == 1);
    if (atomic_load(&g.handled) != k)
        TEST_FAIL("DRAIN, %s actor: %lld of %" PRId64 " queued messages handled",
                  kind == TR_THREAD ? "thread" : "pooled", (long long)atomic_load(&g.handled), k);
    CHECK(g.reason == TR_EXIT_SHUTDOWN);
    tr_counters cs = test_counters(rt);
    CHECK(cs.dead_letters == 0);
    CHECK(cs.live_actors == 0);
    tr_ctx *late = NULL;
    CHECK_ERR(tr_attach(&late, rt), TR_ESTOPPED);
    CHECK_OK(tr_runtime_stop(rt, TR_STOP_DRAIN)); /* idempotent */
    tr_runtime_free(rt);
}

static void discard(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(1, &ctx);
    g.main = tr_self(ctx);
    tr_ref c;
    int64_t k = test_scale(20000);
    atomic_store(&g.terminated, 0);
    CHECK_OK(tr_spawn(&c, ctx, &counter_b, NULL, NULL));
    CHECK_OK(tr_send_tag(ctx, c, "stop_rt"));
    CHECK(test_recv_int(ctx, "stop_rt") == TR_EWOULDBLOCK);
    tr_counters c0 = test_counters(rt);
    for (int64_t i = 0; i < k; i++)
        CHECK_OK(tr_send_tag(ctx, c, "n"));
    CHECK_OK(tr_runtime_stop(rt, TR_STOP_DISCARD));
    CHECK(atomic_load(&g.terminated) == 1);
    int64_t handled = atomic_load(&g.handled);
    tr_counters c1 = test_counters(rt);
    printf("discard: %" PRId64 " of %" PRId64 " handled\n", handled, k);
    CHECK(handled <= k);
    CHECK((int64_t)(c1.dead_letters - c0.dead_letters) >= k - handled);
    CHECK(c1.live_actors <= 1); /* at most main, still attached */

    /* A stopped runtime refuses everything; the attached thread still
     * holds a valid context until it detaches. */
    tr_msg *m = NULL;
    tr_ref r;
    CHECK_OK(tr_msg_new(&m, ctx, "late"));
    CHECK_ERR(tr_spawn(&r, ctx, &counter_b, m, NULL), TR_ESTOPPED);
    CHECK_ERR(tr_send(ctx, c, m), TR_ESTOPPED);
    CHECK_ERR(tr_send(ctx, tr_self(ctx), m), TR_ESTOPPED);
    CHECK(tr_msg_is(m, "late")); /* refused sends leave m with its sender */
    tr_msg *reply = NULL;
    CHECK_ERR(tr_call(ctx, c, m, 100, &reply), TR_ESTOPPED); /* a call takes m */
    CHECK_ERR(tr_send_int(ctx, c, "late", 1), TR_ESTOPPED);
    CHECK_ERR(tr_receive(ctx, NULL, NULL, NULL, 100, &m), TR_ESTOPPED);
    CHECK_OK(tr_runtime_stop(rt, TR_STOP_DISCARD));
    CHECK_OK(tr_runtime_stop(rt, TR_STOP_DRAIN));
    tr_detach(ctx);
    tr_runtime_free(rt);
}

/* ---- a tree of actors, children before parents --------------------------- */

static const tr_behaviour tree_pooled_b, tree_thread_b;

static int tree_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    int64_t idx;
    CHECK_OK(tr_msg_int(args, &idx));
    *(int64_t *)state = idx;
    for (int64_t ch = 2 * idx + 1; ch <= 2 * idx + 2 && ch < TREE; ch++) {
        tr_msg *a = NULL;
        tr_ref r;
        tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
        o.kind = ch >= TREE / 2 ? TR_THREAD : TR_POOLED; /* leaves are threads */
        CHECK_OK(tr_msg_new(&a, ctx, "args"));
        CHECK_OK(tr_pack_int(a, ch));
        CHECK_OK(tr_spawn(&r, ctx, o.kind == TR_THREAD ? &tree_thread_b : &tree_pooled_b, a, &o));
    }
    CHECK_OK(tr_send_int(ctx, g.main, "up", idx));
    return 0;
}

static int tree_handle(tr_ctx *ctx, void *state, const tr_msg *m) { return 0; }

static void tree_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    int64_t idx = *(int64_t *)state;
    for (int64_t ch = 2 * idx + 1; ch <= 2 * idx + 2 && ch < TREE; ch++)
        if (atomic_load(&g.order[ch]) == 0)
            atomic_fetch_add(&g.early_parents, 1);
    atomic_store(&g.order[idx], atomic_fetch_add(&g.order_seq, 1) + 1);
    atomic_fetch_add(&g.tree_terms[idx], 1);
}

static const tr_behaviour tree_pooled_b = {"tree",      sizeof(int64_t), tree_init,
                                           tree_handle, tree_terminate,  NULL};
static const tr_behaviour tree_thread_b = {"tree_leaf", sizeof(int64_t), tree_init,
                                           tree_handle, tree_terminate,  NULL};

static int looper_run(tr_ctx *ctx, void *state)
{
    tr_msg *m = NULL;
    tr_err e;
    CHECK_OK(tr_send_tag(ctx, g.main, "looping"));
    while ((e = tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &m)) == TR_OK)
        tr_msg_free(m);
    CHECK_ERR(e, TR_ESTOPPED);
    atomic_store(&g.run_returned, 1);
    return 0;
}

static const tr_behaviour looper_b = {"looper", 0, NULL, NULL, NULL, looper_run};

static void *blocked_receiver(void *p)
{
    tr_ctx *ctx = NULL;
    tr_msg *m = NULL;
    CHECK_OK(tr_attach(&ctx, p));
    CHECK_OK(tr_send_tag(ctx, g.main, "blocking"));
    CHECK_ERR(tr_receive(ctx, "never", NULL, NULL, TR_FOREVER, &m), TR_ESTOPPED);
    atomic_store(&g.receive_stopped, 1);
    tr_detach(ctx);
    return NULL;
}

static void tree(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    g.main = tr_self(ctx);
    tr_msg *a = NULL;
    tr_ref root, looper;
    CHECK_OK(tr_msg_new(&a, ctx, "args"));
    CHECK_OK(tr_pack_int(a, 0));
    CHECK_OK(tr_spawn(&root, ctx, &tree_pooled_b, a, NULL));
    for (int i = 0; i < TREE; i++)
        tr_msg_free(test_recv(ctx, "up"));
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_THREAD;
    CHECK_OK(tr_spawn(&looper, ctx, &looper_b, NULL, &o));
    tr_msg_free(test_recv(ctx, "looping"));
    pthread_t th;
    CHECK(pthread_create(&th, NULL, blocked_receiver, rt) == 0);
    tr_msg_free(test_recv(ctx, "blocking"));

    CHECK_OK(tr_runtime_stop(rt, TR_STOP_DRAIN));
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(atomic_load(&g.receive_stopped) == 1);
    CHECK(atomic_load(&g.run_returned) == 1);
    for (int i = 0; i < TREE; i++) {
        CHECK(atomic_load(&g.tree_terms[i]) == 1);
        if (i > 0 && atomic_load(&g.order[i]) > atomic_load(&g.order[(i - 1) / 2]))
            TEST_FAIL("tree node %d terminated after its parent %d", i, (i - 1) / 2);
    }
    CHECK(atomic_load(&g.early_parents) == 0);
    CHECK(test_counters(rt).live_actors <= 1); /* main may count until freed */
    tr_runtime_free(rt);                       /* main never detached: free releases its context */
}

/* ---- several runtimes ------------------------------------------------------ */

static int echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    tr_msg *r = NULL;
    CHECK_OK(tr_msg_new(&r, ctx, "pong"));
    CHECK_OK(tr_reply(ctx, m, r));
    return 0;
}

static const tr_behaviour echo_b = {"echo", 0, NULL, echo_handle, NULL, NULL};

static void calls(tr_ctx *ctx, tr_ref echo, int n)
{
    for (int i = 0; i < n; i++) {
        tr_msg *q = NULL, *r = NULL;
        CHECK_OK(tr_msg_new(&q, ctx, "ping"));
        CHECK_OK(tr_call(ctx, echo, q, TEST_WAIT_MS, &r));
        CHECK(tr_msg_is(r, "pong"));
        tr_msg_free(r);
    }
}

static void *own_runtime(void *p)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(1, &ctx);
    tr_ref echo;
    CHECK_OK(tr_spawn(&echo, ctx, &echo_b, NULL, NULL));
    calls(ctx, echo, 200);
    *(uint64_t *)p = tr_runtime_node(rt);
    test_finish(rt, ctx);
    return NULL;
}

static void several(void)
{
    /* Three threads, each starting, using and stopping its own runtime. */
    pthread_t th[3];
    uint64_t nodes[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++)
        CHECK(pthread_create(&th[i], NULL, own_runtime, &nodes[i]) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(pthread_join(th[i], NULL) == 0);

    /* Two at once from one thread: stopping one leaves the other working. */
    tr_runtime_opts oa = TR_RUNTIME_OPTS_INIT, ob = TR_RUNTIME_OPTS_INIT;
    oa.workers = 1;
    oa.node_name = "alpha";
    ob.workers = 2;
    ob.node_name = "beta";
    tr_runtime *ra = NULL, *rb = NULL;
    CHECK_OK(tr_runtime_start(&ra, &oa));
    CHECK_OK(tr_runtime_start(&rb, &ob));
    CHECK(strcmp(tr_runtime_name(ra), "alpha") == 0);
    CHECK(strcmp(tr_runtime_name(rb), "beta") == 0);
    CHECK(tr_runtime_workers(ra) == 1 && tr_runtime_workers(rb) == 2);
    CHECK(tr_runtime_node(ra) != 0 && tr_runtime_node(rb) != 0);
    CHECK(tr_runtime_node(ra) != tr_runtime_node(rb));
    for (int i = 0; i < 3; i++)
        CHECK(nodes[i] != 0 && nodes[i] != tr_runtime_node(ra) && nodes[i] != tr_runtime_node(rb));
    tr_ctx *cb;
    tr_ref echo_a, echo_b_ref;
    CHECK_OK(tr_attach(&cb, rb));
    CHECK_OK(tr_spawn(&echo_b_ref, cb, &echo_b, NULL, NULL));
    {
        tr_ctx *ca;
        CHECK_OK(tr_attach(&ca, ra));
        CHECK_OK(tr_spawn(&echo_a, ca, &echo_b, NULL, NULL));
        calls(ca, echo_a, 10);
        tr_detach(ca);
    }
    CHECK_OK(tr_runtime_stop(ra, TR_STOP_DRAIN));
    tr_runtime_free(ra);
    calls(cb, echo_b_ref, 10);
    tr_detach(cb);
    tr_runtime_free(rb); /* free stops a running runtime */
    tr_runtime_free(NULL);
}

int main(void)
{
    drain(TR_POOLED);
    drain(TR_THREAD);
    discard();
    tree();
    several();
    printf("ok\n");
    return 0;
}
