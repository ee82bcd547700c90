/*
 * test_sched_fairness — the scheduler shares workers and never runs one
 * actor on two threads at once.
 *
 * 1. A pooled actor that keeps sending itself messages does not starve the
 *    others: while it floods, requests to another pooled actor complete,
 *    with one worker and with two.
 * 2. One actor never runs concurrently with itself: several pooled actors,
 *    each fed by several threads on a runtime with more workers than
 *    cores, detect any overlap of their handlers with an atomic flag, and
 *    their plain (non-atomic) state counts every message exactly once.
 */
#include "check.h"

#include <pthread.h>

static tr_ref g_main;

/* ---- 1. flooding -------------------------------------------------------- */

typedef struct flooder {
    int64_t handled;
    bool stopping;
} flooder;

static int flooder_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    flooder *f = state;
    if (tr_msg_is(m, "stop")) {
        f->stopping = true;
        CHECK_OK(tr_send_int(ctx, g_main, "stopped", f->handled));
    } else if (tr_msg_is(m, "flood")) {
        f->handled++;
        if (!f->stopping)
            CHECK_OK(tr_send_tag(ctx, tr_self(ctx), "flood"));
    }
    return 0;
}

static const tr_behaviour flooder_b = {"flooder", sizeof(flooder), NULL, flooder_handle, NULL,
                                       NULL};

static int echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    int64_t v = 0;
    tr_msg *r = NULL;
    CHECK(tr_msg_is_request(m));
    CHECK_OK(tr_msg_int(m, &v));
    CHECK_OK(tr_msg_new(&r, ctx, "echo"));
    CHECK_OK(tr_pack_int(r, v + 1));
    CHECK_OK(tr_reply(ctx, m, r));
    return 0;
}

static const tr_behaviour echo_b = {"echo", 0, NULL, echo_handle, NULL, NULL};

static void flood_while_calling(uint32_t workers)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(workers, &ctx);
    g_main = tr_self(ctx);
    tr_ref flood, echo;
    CHECK_OK(tr_spawn(&flood, ctx, &flooder_b, NULL, NULL));
    CHECK_OK(tr_spawn(&echo, ctx, &echo_b, NULL, NULL));

    /* Several floods in flight: the flooder always has work queued. */
    for (int i = 0; i < 8; i++)
        CHECK_OK(tr_send_tag(ctx, flood, "flood"));

    for (int64_t i = 0; i < 50; i++) {
        tr_msg *req = NULL, *rep = NULL;
        int64_t v = 0;
        CHECK_OK(tr_msg_new(&req, ctx, "req"));
        CHECK_OK(tr_pack_int(req, i));
        CHECK_OK(tr_call(ctx, echo, req, TEST_WAIT_MS, &rep));
        CHECK_OK(tr_msg_int(rep, &v));
        CHECK(v == i + 1);
        tr_msg_free(rep);
    }

    CHECK_OK(tr_send_tag(ctx, flood, "stop"));
    int64_t handled = test_recv_int(ctx, "stopped");
    CHECK(handled >= 8); /* FIFO: the first floods came before stop */
    printf("workers=%u: 50 calls done while the flooder handled %" PRId64 " messages\n", workers,
           handled);
    test_finish(rt, ctx);
}

/* ---- 2. no actor runs concurrently with itself -------------------------- */

#define NACTORS 4
#define NSENDERS 3

static atomic_int g_inside[NACTORS];
static atomic_int g_overlaps;
static uint32_t g_per_sender;

typedef struct serial {
    int64_t idx;
    uint64_t count;   /* plain, on purpose: the runtime's exclusion protects it */
    uint64_t scratch; /* some non-atomic work inside the handler */
} serial;

static int serial_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    CHECK(args != NULL);
    CHECK_OK(tr_msg_int(args, &((serial *)state)->idx));
    return 0;
}

static int serial_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    serial *s = state;
    if (atomic_exchange(&g_inside[s->idx], 1) != 0)
        atomic_fetch_add(&g_overlaps, 1);
    uint64_t before = s->count;
    for (int i = 0; i < 50; i++)
        s->scratch = s->scratch * 31 + (uint64_t)i;
    s->count = before + 1;
    if (s->count == (uint64_t)NSENDERS * g_per_sender)
        CHECK_OK(tr_send_int(ctx, g_main, "counted", (int64_t)s->count));
    atomic_store(&g_inside[s->idx], 0);
    return 0;
}

static const tr_behaviour serial_b = {"serial",      sizeof(serial), serial_init,
                                      serial_handle, NULL,           NULL};

typedef struct sender_arg {
    tr_runtime *rt;
    tr_ref *targets;
    uint64_t seed;
} sender_arg;

static void *sender_main(void *p)
{
    sender_arg *a = p;
    tr_ctx *ctx;
    test_rng rng;
    uint32_t left[NACTORS];
    test_rng_init(&rng, a->seed);
    CHECK_OK(tr_attach(&ctx, a->rt));
    for (int i = 0; i < NACTORS; i++)
        left[i] = g_per_sender;
    /* Random order across actors, so that turns of one actor are woken by
     * different threads and land on different workers. */
    for (uint32_t sent = 0; sent < NACTORS * g_per_sender;) {
        uint32_t t = test_rng_below(&rng, NACTORS);
        if (left[t] == 0)
            continue;
        left[t]--;
        sent++;
        CHECK_OK(tr_send_tag(ctx, a->targets[t], "n"));
    }
    tr_detach(ctx);
    return NULL;
}

static void no_self_concurrency(uint64_t seed)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(4, &ctx);
    g_main = tr_self(ctx);
    g_per_sender = test_scale(20000);
    tr_ref targets[NACTORS];
    for (int64_t i = 0; i < NACTORS; i++) {
        tr_msg *args = NULL;
        CHECK_OK(tr_msg_new(&args, ctx, "args"));
        CHECK_OK(tr_pack_int(args, i));
        CHECK_OK(tr_spawn(&targets[i], ctx, &serial_b, args, NULL));
    }
    pthread_t th[NSENDERS];
    sender_arg args[NSENDERS];
    for (int i = 0; i < NSENDERS; i++) {
        args[i] = (sender_arg){rt, targets, seed + (uint64_t)i};
        CHECK(pthread_create(&th[i], NULL, sender_main, &args[i]) == 0);
    }
    for (int i = 0; i < NACTORS; i++)
        CHECK(test_recv_int(ctx, "counted") == (int64_t)NSENDERS * g_per_sender);
    for (int i = 0; i < NSENDERS; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    CHECK(atomic_load(&g_overlaps) == 0);
    test_finish(rt, ctx);
}

int main(int argc, char **argv)
{
    uint64_t seed = test_seed(argc, argv);
    flood_while_calling(1);
    flood_while_calling(2);
    no_self_concurrency(seed);
    printf("ok\n");
    return 0;
}
