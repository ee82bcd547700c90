/*
 * test_pool_stress.c — worker pools under load: several client threads
 * issue many requests to pooled, thread and process pools while random
 * jobs crash their workers. Every request must be answered — its result,
 * TR_EEXITED for exactly the crashing jobs, or TR_EFULL — none may hang,
 * and the pool's counts must agree with what the clients saw. Prints its
 * seed; --seed N repeats a run.
 */
#include "test_pool.h"

#include <pthread.h>

/* ---- stress --------------------------------------------------------------- */

typedef struct client {
    tr_runtime *rt;
    tr_ref pool;
    uint64_t seed;
    int jobs, crash_pct;
    const char *crash_tag;
    int ok, exited, full, crashes_sent, wrong;
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    tr_ctx *ctx;
    CHECK_OK(tr_attach(&ctx, c->rt));
    test_rng rng;
    test_rng_init(&rng, c->seed);
    for (int i = 0; i < c->jobs; i++) {
        bool crash = (int)test_rng_below(&rng, 100) < c->crash_pct;
        tr_msg *m = crash ? job(ctx, c->crash_tag, 0, i)
                          : job(ctx, "work", (int64_t)test_rng_below(&rng, 2), i);
        c->crashes_sent += crash;
        int64_t v = -1;
        tr_err err = call(ctx, c->pool, m, TEST_WAIT_MS, &v);
        if (err == TR_OK && !crash && v == 2 * i)
            c->ok++;
        else if (err == TR_EEXITED && crash)
            c->exited++;
        else if (err == TR_EFULL)
            c->full++;
        else
            c->wrong++;
    }
    tr_detach(ctx);
    return NULL;
}

/* Several client threads, random crashes: every request is answered with
 * its result, TR_EEXITED (exactly the crashing ones) or TR_EFULL, and the
 * pool's counts agree with what the clients saw. */
static void test_stress(tr_runtime *rt, tr_ctx *ctx, tr_actor_kind kind, const char *crash_tag,
                        int jobs, uint64_t seed)
{
    enum {
        CLIENTS = 4
    };
    reset_shared();
    tr_ref pool = pool_new(ctx, kind, 3, 2);
    client cs[CLIENTS];
    pthread_t th[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cs[i] = (client){rt, pool, seed + (uint64_t)i, jobs, 8, crash_tag, 0, 0, 0, 0, 0};
        CHECK(pthread_create(&th[i], NULL, client_main, &cs[i]) == 0);
    }
    int ok = 0, exited = 0, full = 0, crashes = 0;
    for (int i = 0; i < CLIENTS; i++) {
        CHECK(pthread_join(th[i], NULL) == 0);
        CHECK(cs[i].wrong == 0);
        CHECK(cs[i].ok + cs[i].exited + cs[i].full == jobs);
        ok += cs[i].ok;
        exited += cs[i].exited;
        full += cs[i].full;
        crashes += cs[i].crashes_sent;
    }
    tr_pool_stats st;
    WAIT_UNTIL((st = stats(ctx, pool)).busy == 0 && st.workers == 3);
    printf("stress %s/%s: %d ok, %d crashed, %d refused, %" PRIu64 " restarts\n",
           kind == TR_PROCESS  ? "process"
           : kind == TR_THREAD ? "thread"
                               : "pooled",
           crash_tag, ok, exited, full, st.restarts);
    CHECK(st.submitted == (uint64_t)(CLIENTS * jobs));
    CHECK(st.completed == (uint64_t)ok && st.failed == (uint64_t)exited);
    CHECK(st.refused == (uint64_t)full && st.queued == 0);
    CHECK(st.restarts == st.failed);
    CHECK(exited <= crashes);
    check_sums(&st);
    CHECK(atomic_load(&sh->second_job) == 0);
    stop_pool(ctx, pool);
}

int main(int argc, char **argv)
{
    test_pool_setup();
    uint64_t seed = test_seed(argc, argv);
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    int jobs = (int)test_scale(200);
    test_stress(rt, ctx, TR_POOLED, "crash", jobs, seed);
    test_stress(rt, ctx, TR_THREAD, "crash", jobs, seed + 100);
    test_stress(rt, ctx, TR_PROCESS, "segv", jobs / 5 + 1, seed + 200);
    test_finish(rt, ctx);
    munmap(sh, sizeof *sh);
    printf("ok\n");
    return 0;
}
