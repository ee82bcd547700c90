/*
 * test_stale_ref — references outlive their actors safely.
 *
 * A send to an exited actor returns TR_ENOACTOR and counts a dead letter;
 * a reference of an earlier incarnation of a slot never reaches the actor
 * that lives in that slot now (stress: slots are recycled while another
 * thread keeps sending to random old references); nil, made-up and
 * foreign-node references give errors.
 */
#include "check.h"

#include <pthread.h>

static tr_ref g_main;
static atomic_int g_misdelivered;
static atomic_int g_good;

/* Each life knows its round; every message carries the round it was meant
 * for. A mismatch means an old reference reached a new incarnation. */
typedef struct life {
    int64_t round;
} life;

static int life_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    CHECK(args != NULL);
    CHECK_OK(tr_msg_int(args, &((life *)state)->round));
    return 0;
}

static int life_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    life *l = state;
    if (tr_msg_is(m, "stop")) {
        tr_reason why = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
        tr_stop_self(ctx, &why);
        return 0;
    }
    int64_t meant = -1;
    CHECK_OK(tr_msg_int(m, &meant));
    if (meant != l->round) {
        fprintf(stderr, "round %" PRId64 " received a message meant for round %" PRId64 "\n",
                l->round, meant);
        atomic_fetch_add(&g_misdelivered, 1);
    } else if (tr_msg_is(m, "mine")) {
        atomic_fetch_add(&g_good, 1);
    }
    return 0;
}

static const tr_behaviour life_b = {"life", sizeof(life), life_init, life_handle, NULL, NULL};

/* ---- shared list of references, published to the spraying thread -------- */

#define MAX_ROUNDS 2000
static tr_ref g_refs[MAX_ROUNDS];
static atomic_int g_published; /* release by main / acquire by the sprayer */
static atomic_int g_done;

typedef struct sprayer {
    tr_runtime *rt;
    uint64_t seed;
    uint64_t accepted, refused;
} sprayer;

static void *sprayer_main(void *p)
{
    sprayer *s = p;
    tr_ctx *ctx;
    test_rng rng;
    test_rng_init(&rng, s->seed);
    CHECK_OK(tr_attach(&ctx, s->rt));
    while (!atomic_load(&g_done)) {
        int n = atomic_load_explicit(&g_published, memory_order_acquire);
        if (n == 0)
            continue;
        int i = (int)test_rng_below(&rng, (uint32_t)n);
        tr_err e = tr_send_int(ctx, g_refs[i], "spray", i);
        if (e == TR_OK)
            s->accepted++;
        else if (e == TR_ENOACTOR)
            s->refused++;
        else
            TEST_FAIL("send to an old reference returned %s", tr_err_name(e));
    }
    tr_detach(ctx);
    return NULL;
}

static void recycled_slots(tr_ctx *ctx, tr_runtime *rt, uint64_t seed)
{
    int rounds = (int)test_scale(MAX_ROUNDS);
    sprayer s = {rt, seed, 0, 0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, sprayer_main, &s) == 0);
    int reused = 0;
    for (int i = 0; i < rounds; i++) {
        tr_msg *args = NULL;
        tr_monitor_id mon;
        CHECK_OK(tr_msg_new(&args, ctx, "args"));
        CHECK_OK(tr_pack_int(args, i));
        tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
        o.kind = i % 3 == 2 ? TR_THREAD : TR_POOLED; /* slots pass between kinds */
        CHECK_OK(tr_spawn(&g_refs[i], ctx, &life_b, args, &o));
        for (int j = 0; j < i; j++) {
            CHECK(!tr_ref_eq(g_refs[j], g_refs[i]));
            if (g_refs[j].id == g_refs[i].id)
                reused++;
        }
        atomic_store_explicit(&g_published, i + 1, memory_order_release);
        /* Old references must all be refused now: their actors are gone. */
        for (int j = i > 20 ? i - 20 : 0; j < i; j++)
            CHECK_ERR(tr_send_int(ctx, g_refs[j], "old", j), TR_ENOACTOR);
        CHECK_OK(tr_send_int(ctx, g_refs[i], "mine", i));
        CHECK_OK(tr_monitor(ctx, g_refs[i], &mon));
        CHECK_OK(tr_send_tag(ctx, g_refs[i], "stop"));
        (void)test_wait_down(ctx, g_refs[i]);
    }
    atomic_store(&g_done, 1);
    CHECK(pthread_join(th, NULL) == 0);
    printf("%d lives, %d pairs of lives shared a slot; sprayer: %" PRIu64 " accepted, %" PRIu64
           " refused\n",
           rounds, reused, s.accepted, s.refused);
    CHECK(atomic_load(&g_misdelivered) == 0);
    CHECK(atomic_load(&g_good) == rounds); /* each life got its own message */
}

static void dead_and_bogus(tr_ctx *ctx, tr_runtime *rt)
{
    tr_msg *args = NULL, *m = NULL;
    tr_ref a;
    tr_monitor_id mon;
    CHECK_OK(tr_msg_new(&args, ctx, "args"));
    CHECK_OK(tr_pack_int(args, -1));
    CHECK_OK(tr_spawn(&a, ctx, &life_b, args, NULL));
    CHECK_OK(tr_monitor(ctx, a, &mon));
    CHECK_OK(tr_send_tag(ctx, a, "stop"));
    (void)test_wait_down(ctx, a);

    /* A dead actor: TR_ENOACTOR, one dead letter, the sender keeps m. */
    tr_counters c0 = test_counters(rt);
    CHECK_OK(tr_msg_new(&m, ctx, "late"));
    CHECK_OK(tr_pack_int(m, -1));
    CHECK_ERR(tr_send(ctx, a, m), TR_ENOACTOR);
    CHECK(tr_msg_is(m, "late")); /* still ours, still intact */
    tr_counters c1 = test_counters(rt);
    CHECK(c1.dead_letters == c0.dead_letters + 1);
    CHECK_ERR(tr_send_int(ctx, a, "late", -1), TR_ENOACTOR);
    CHECK(test_counters(rt).dead_letters == c0.dead_letters + 2);

    /* Nil, made-up and foreign references. */
    CHECK(tr_send(ctx, TR_REF_NIL, m) != TR_OK);
    tr_ref made_up = {tr_runtime_node(rt), 0x7ffffff0u, 12345u};
    CHECK_ERR(tr_send(ctx, made_up, m), TR_ENOACTOR);
    tr_ref stale = a;
    stale.incarnation += 1000; /* a life of a's slot that never happened */
    CHECK_ERR(tr_send(ctx, stale, m), TR_ENOACTOR);
    tr_ref foreign = a;
    foreign.node = tr_runtime_node(rt) + 0x1000;
    CHECK_ERR(tr_send(ctx, foreign, m), TR_ENOROUTE);
    tr_msg_free(m);
    tr_reason r = tr_reason_make(TR_EXIT_ERROR, 1, NULL);
    CHECK_ERR(tr_exit(ctx, a, &r), TR_ENOACTOR);
    CHECK_ERR(tr_exit(ctx, made_up, &r), TR_ENOACTOR);
}

int main(int argc, char **argv)
{
    uint64_t seed = test_seed(argc, argv);
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    g_main = tr_self(ctx);
    CHECK(tr_runtime_node(rt) != 0);
    CHECK(tr_self(ctx).node == tr_runtime_node(rt));
    dead_and_bogus(ctx, rt);
    recycled_slots(ctx, rt, seed);
    test_finish(rt, ctx);
    printf("ok\n");
    return 0;
}
