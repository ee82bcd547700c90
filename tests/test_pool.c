/*
 * test_pool.c — worker pools (actors/troupe_pool.h): jobs spread over the
 * workers, one job per worker at a time, the bounded queue, pooled,
 * thread and process workers, crashed workers (error returns, SIGKILL,
 * SIGSEGV) failing only their own job, deadlines, stop with queued work, a
 * pool under a supervisor, the supervisor giving up, a pooled client, and
 * bad specs. The stress with random crashes is test_pool_stress.c.
 */
#include "test_pool.h"

#include <pthread.h>

/* ---- tests ---------------------------------------------------------------- */

/* 40 jobs over 4 workers of kind: every worker is used, no worker is
 * handed a second job while it holds one, every answer is right. */
static void test_spread(tr_runtime *rt, tr_ctx *ctx, tr_actor_kind kind)
{
    enum {
        N = 4,
        JOBS = 40
    };
    reset_shared();
    tr_ref pool = pool_new(ctx, kind, N, JOBS + 3);
    static result rs[JOBS];
    for (int i = 0; i < JOBS; i++)
        request(ctx, pool, job(ctx, "work", 5, i), TEST_WAIT_MS, &rs[i]);
    for (int i = 0; i < 3; i++) /* plain sends are jobs too */
        CHECK_OK(tr_send(ctx, pool, job(ctx, "work", 0, i)));
    pump(ctx, rs, JOBS);
    int64_t seen[N];
    int nseen = 0;
    for (int i = 0; i < JOBS; i++) {
        CHECK_ERR(rs[i].status, TR_OK);
        CHECK(rs[i].v == 2 * i);
        int k = 0;
        while (k < nseen && seen[k] != rs[i].worker)
            k++;
        CHECK(k < N); /* never more than N workers */
        if (k == nseen)
            seen[nseen++] = rs[i].worker;
    }
    CHECK(nseen == N);
    CHECK(atomic_load(&sh->max_active) <= N);
    CHECK(atomic_load(&sh->second_job) == 0);
    WAIT_UNTIL(atomic_load(&sh->plain) == 3);
    tr_pool_stats st;
    WAIT_UNTIL((st = stats(ctx, pool)).completed == JOBS + 3);
    CHECK(st.submitted == JOBS + 3 && st.failed == 0 && st.refused == 0 && st.busy == 0);
    CHECK(st.workers == N && st.size == N && st.restarts == 0);
    check_sums(&st);
    stop_pool(ctx, pool);
    WAIT_UNTIL(test_counters(rt).live_actors == 0);
}

/* Two busy thread workers, a queue of 3: the next request is refused at
 * once with TR_EFULL, a plain send is dropped, both counted; the queued
 * ones run once the workers are free. */
static void test_queue_full(tr_ctx *ctx)
{
    reset_shared();
    tr_ref pool = pool_new(ctx, TR_THREAD, 2, 3);
    wait_workers(ctx, pool, 2);
    result rs[5];
    request(ctx, pool, job(ctx, "hold", 0, 1), TEST_WAIT_MS, &rs[0]);
    request(ctx, pool, job(ctx, "hold", 0, 2), TEST_WAIT_MS, &rs[1]);
    WAIT_UNTIL(atomic_load(&sh->holding) == 2);
    for (int i = 2; i < 5; i++)
        request(ctx, pool, job(ctx, "work", 0, i), TEST_WAIT_MS, &rs[i]);
    CHECK_ERR(call(ctx, pool, job(ctx, "work", 0, 9), TEST_WAIT_MS, NULL), TR_EFULL);
    CHECK_OK(tr_send(ctx, pool, job(ctx, "work", 0, 10)));
    tr_pool_stats st = stats(ctx, pool);
    CHECK(st.busy == 2 && st.queued == 3 && st.refused == 2 && st.submitted == 7);
    check_sums(&st);
    atomic_store(&sh->release, 1);
    pump(ctx, rs, 5);
    for (int i = 0; i < 5; i++)
        CHECK_ERR(rs[i].status, TR_OK);
    WAIT_UNTIL((st = stats(ctx, pool)).completed == 5);
    CHECK(st.refused == 2 && st.queued == 0 && st.busy == 0);
    CHECK(atomic_load(&sh->plain) == 0); /* the refused plain job never ran */
    /* A tag of the pool's own is refused too. */
    CHECK_ERR(call(ctx, pool, job(ctx, "tr.pool.x", 0, 0), TEST_WAIT_MS, NULL), TR_EINVAL);
    stop_pool(ctx, pool);
}

/* The worker that takes "how" fails; only its request fails (TR_EEXITED),
 * queued and concurrent jobs complete, the worker is replaced. */
static void test_crash(tr_ctx *ctx, tr_actor_kind kind, const char *how)
{
    enum {
        N = 3,
        JOBS = 12
    };
    reset_shared();
    tr_ref pool = pool_new(ctx, kind, N, 64);
    wait_workers(ctx, pool, N);
    result rs[JOBS], bad;
    for (int i = 0; i < JOBS / 2; i++)
        request(ctx, pool, job(ctx, "work", 10, i), TEST_WAIT_MS, &rs[i]);
    request(ctx, pool, job(ctx, how, 0, 0), TEST_WAIT_MS, &bad);
    for (int i = JOBS / 2; i < JOBS; i++)
        request(ctx, pool, job(ctx, "work", 10, i), TEST_WAIT_MS, &rs[i]);
    pump(ctx, &bad, 1);
    CHECK_ERR(bad.status, TR_EEXITED);
    pump(ctx, rs, JOBS);
    for (int i = 0; i < JOBS; i++) {
        CHECK_ERR(rs[i].status, TR_OK);
        CHECK(rs[i].v == 2 * i);
    }
    tr_pool_stats st;
    WAIT_UNTIL((st = stats(ctx, pool)).workers == N && st.restarts == 1 && st.busy == 0);
    CHECK(st.completed == JOBS && st.failed == 1);
    check_sums(&st);
    stop_pool(ctx, pool);
}

/* A process worker killed from outside with SIGKILL while it holds a job. */
static void test_sigkill(tr_ctx *ctx)
{
    reset_shared();
    atomic_store(&sh->hold_pid, 0);
    tr_ref pool = pool_new(ctx, TR_PROCESS, 2, 16);
    wait_workers(ctx, pool, 2);
    result held, rs[6];
    request(ctx, pool, job(ctx, "hold", 0, 1), TEST_WAIT_MS, &held);
    WAIT_UNTIL(atomic_load(&sh->holding) == 1);
    int pid = atomic_load(&sh->hold_pid);
    for (int i = 0; i < 6; i++)
        request(ctx, pool, job(ctx, "work", 2, i), TEST_WAIT_MS, &rs[i]);
    CHECK(pid > 0 && kill(pid, SIGKILL) == 0);
    pump(ctx, &held, 1);
    CHECK_ERR(held.status, TR_EEXITED);
    pump(ctx, rs, 6);
    for (int i = 0; i < 6; i++)
        CHECK_ERR(rs[i].status, TR_OK);
    tr_pool_stats st;
    WAIT_UNTIL((st = stats(ctx, pool)).workers == 2 && st.restarts == 1 && st.busy == 0);
    CHECK(st.failed == 1 && st.completed == 6);
    atomic_store(&sh->holding, 0);
    stop_pool(ctx, pool);
}

/* Deadlines: a request that expires in the queue is never delivered; one
 * that expires while a worker has it is counted as timed out. */
static void test_deadlines(tr_runtime *rt, tr_ctx *ctx)
{
    reset_shared();
    tr_ref pool = pool_new(ctx, TR_THREAD, 1, 8);
    wait_workers(ctx, pool, 1);
    result held;
    request(ctx, pool, job(ctx, "hold", 0, 1), TEST_WAIT_MS, &held);
    WAIT_UNTIL(atomic_load(&sh->holding) == 1);
    CHECK_ERR(call(ctx, pool, job(ctx, "count", 0, 0), 50, NULL), TR_ETIMEDOUT);
    atomic_store(&sh->release, 1);
    pump(ctx, &held, 1);
    CHECK_ERR(held.status, TR_OK);
    CHECK_OK(call(ctx, pool, job(ctx, "work", 0, 1), TEST_WAIT_MS, NULL));
    CHECK(atomic_load(&sh->counted) == 0); /* FIFO: it would have run first */
    tr_pool_stats st;
    WAIT_UNTIL((st = stats(ctx, pool)).busy == 0);
    CHECK(st.expired == 1 && st.completed == 2);

    /* Held past its deadline: the caller gets TR_ETIMEDOUT, the late
     * answer is discarded, the worker is free again afterwards. */
    atomic_store(&sh->release, 0);
    uint64_t late = test_counters(rt).late_replies;
    CHECK_ERR(call(ctx, pool, job(ctx, "hold", 0, 2), 50, NULL), TR_ETIMEDOUT);
    atomic_store(&sh->release, 1);
    WAIT_UNTIL(stats(ctx, pool).timed_out == 1);
    WAIT_UNTIL(test_counters(rt).late_replies > late); /* the worker's answer, dropped */
    CHECK_OK(call(ctx, pool, job(ctx, "count", 0, 0), TEST_WAIT_MS, NULL));
    st = stats(ctx, pool);
    check_sums(&st);
    stop_pool(ctx, pool);
}

/* Stop with work queued: queued requests get TR_ECANCELED at once, the
 * jobs workers hold finish and are answered, then the pool and its
 * workers are gone and later sends find nobody. */
static void test_stop(tr_runtime *rt, tr_ctx *ctx)
{
    reset_shared();
    tr_ref pool = pool_new(ctx, TR_THREAD, 2, 8);
    wait_workers(ctx, pool, 2);
    result rs[5], stopped;
    request(ctx, pool, job(ctx, "hold", 0, 1), TEST_WAIT_MS, &rs[0]);
    request(ctx, pool, job(ctx, "hold", 0, 2), TEST_WAIT_MS, &rs[1]);
    WAIT_UNTIL(atomic_load(&sh->holding) == 2);
    for (int i = 2; i < 5; i++)
        request(ctx, pool, job(ctx, "work", 0, i), TEST_WAIT_MS, &rs[i]);
    tr_msg *stop;
    CHECK_OK(tr_pool_msg_stop(&stop, ctx));
    memset(&stopped, 0, sizeof stopped);
    CHECK_OK(tr_request(ctx, pool, stop, TEST_WAIT_MS, on_result, &stopped));
    pump(ctx, rs + 2, 3);
    for (int i = 2; i < 5; i++)
        CHECK_ERR(rs[i].status, TR_ECANCELED);
    CHECK(!stopped.done); /* the workers are still finishing their jobs */
    CHECK_ERR(call(ctx, pool, job(ctx, "work", 0, 0), TEST_WAIT_MS, NULL), TR_ECANCELED);
    atomic_store(&sh->release, 1);
    pump(ctx, rs, 2);
    CHECK_ERR(rs[0].status, TR_OK);
    CHECK_ERR(rs[1].status, TR_OK);
    pump(ctx, &stopped, 1);
    CHECK_ERR(stopped.status, TR_OK);
    WAIT_UNTIL(test_counters(rt).live_actors == 0);
    CHECK_ERR(call(ctx, pool, job(ctx, "work", 0, 0), TEST_WAIT_MS, NULL), TR_ENOACTOR);
    CHECK_ERR(tr_pool_stop(ctx, pool, TEST_WAIT_MS), TR_ENOACTOR);
}

/* A pool as a supervisor child: it serves, a killed pool is restarted,
 * stopping the supervisor stops the pool and its workers. */
static void test_under_supervisor(tr_runtime *rt, tr_ctx *ctx)
{
    reset_shared();
    static tr_pool_spec ps = TR_POOL_SPEC_INIT;
    ps.behaviour = &job_beh;
    ps.spawn.kind = TR_THREAD;
    ps.workers = 2;
    tr_sup_child_spec kid;
    tr_pool_child_spec(&kid, "pool", &ps);
    tr_sup_spec spec = TR_SUP_SPEC_INIT;
    spec.children = &kid;
    spec.nchildren = 1;
    tr_ref sup;
    CHECK_OK(tr_sup_start(&sup, ctx, &spec, NULL));
    tr_sup_child_info *info;
    uint32_t n;
    tr_ref pool = TR_REF_NIL;
    for (int round = 0; round < 2; round++) {
        tr_ref old = pool;
        do {
            CHECK_OK(tr_sup_which_children(&info, &n, ctx, sup, TEST_WAIT_MS));
            CHECK(n == 1 && info[0].type == TR_SUP_SUPERVISOR);
            pool = info[0].ref;
            tr_sup_children_free(info);
        } while (tr_ref_is_nil(pool) || tr_ref_eq(pool, old));
        int64_t v = 0;
        CHECK_OK(call(ctx, pool, job(ctx, "work", 0, 21), TEST_WAIT_MS, &v));
        CHECK(v == 42);
        if (round == 0) {
            tr_reason kill = tr_reason_make(TR_EXIT_KILLED, 0, "test");
            CHECK_OK(tr_exit(ctx, pool, &kill));
        }
    }
    tr_monitor_id mon;
    CHECK_OK(tr_monitor(ctx, sup, &mon));
    tr_reason down = tr_reason_make(TR_EXIT_SHUTDOWN, 0, "test");
    CHECK_OK(tr_exit(ctx, sup, &down));
    tr_msg_free(test_recv(ctx, TR_TAG_DOWN));
    WAIT_UNTIL(test_counters(rt).live_actors == 0);
}

/* Workers failing faster than max_restarts allows: the supervisor gives
 * up, queued requests are answered TR_EEXITED and the pool exits with the
 * supervisor's reason. */
static void test_gives_up(tr_ctx *ctx)
{
    reset_shared();
    tr_pool_spec spec = TR_POOL_SPEC_INIT;
    spec.behaviour = &job_beh;
    spec.spawn.kind = TR_THREAD;
    spec.max_restarts = 1;
    spec.period_ms = 60000;
    tr_ref pool;
    CHECK_OK(tr_pool_start(&pool, ctx, &spec, NULL));
    tr_monitor_id mon;
    CHECK_OK(tr_monitor(ctx, pool, &mon));
    wait_workers(ctx, pool, 1);
    result rs[5];
    request(ctx, pool, job(ctx, "hold", 0, 1), TEST_WAIT_MS, &rs[0]);
    WAIT_UNTIL(atomic_load(&sh->holding) == 1);
    request(ctx, pool, job(ctx, "crash", 0, 0), TEST_WAIT_MS, &rs[1]);
    request(ctx, pool, job(ctx, "crash", 0, 0), TEST_WAIT_MS, &rs[2]);
    request(ctx, pool, job(ctx, "work", 0, 3), TEST_WAIT_MS, &rs[3]);
    request(ctx, pool, job(ctx, "work", 0, 4), TEST_WAIT_MS, &rs[4]);
    atomic_store(&sh->release, 1);
    pump(ctx, rs, 5);
    CHECK_ERR(rs[0].status, TR_OK);
    for (int i = 1; i < 5; i++)
        CHECK_ERR(rs[i].status, TR_EEXITED);
    tr_msg *down = test_recv(ctx, TR_TAG_DOWN);
    tr_ref who;
    tr_monitor_id id;
    tr_reason why;
    CHECK_OK(tr_msg_down_info(down, &who, &id, &why));
    tr_msg_free(down);
    CHECK(tr_ref_eq(who, pool) && id == mon);
    CHECK(why.kind == TR_EXIT_ERROR && why.code == TR_SUP_EXIT_MAX_RESTARTS);
    WAIT_UNTIL(test_counters(tr_ctx_runtime(ctx)).live_actors == 0);
}

/* A pooled client: asks for stats with the builder, reads the answer in
 * its continuation and tells the test how many workers are up. */
typedef struct asker {
    tr_ref test;
} asker;

static int asker_got(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    (void)udata;
    asker *a = state;
    tr_pool_stats st;
    if (status != TR_OK || tr_pool_reply_stats(&st, reply) != TR_OK)
        return tr_send_int(ctx, a->test, "workers", -1);
    return tr_send_int(ctx, a->test, "workers", st.workers);
}

static int asker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    asker *a = state;
    tr_ref pool;
    tr_msg *req;
    a->test = tr_msg_from(m);
    if (tr_msg_ref(m, &pool) != TR_OK || tr_pool_msg_stats(&req, ctx) != TR_OK)
        return 1;
    /* The blocking helpers refuse a pooled caller (and leak nothing). */
    tr_pool_stats none;
    if (tr_pool_stats_get(&none, ctx, pool, 10) != TR_EWOULDBLOCK ||
        tr_pool_stop(ctx, pool, 10) != TR_EWOULDBLOCK) {
        tr_msg_free(req);
        return 1;
    }
    if (tr_request(ctx, pool, req, TEST_WAIT_MS, asker_got, NULL) != TR_OK) {
        tr_msg_free(req);
        return 1;
    }
    return 0;
}

static const tr_behaviour asker_beh = {"asker", sizeof(asker), NULL, asker_handle, NULL, NULL};

static void test_pooled_client(tr_ctx *ctx)
{
    tr_ref pool = pool_new(ctx, TR_POOLED, 3, 8);
    wait_workers(ctx, pool, 3);
    tr_ref a;
    CHECK_OK(tr_spawn(&a, ctx, &asker_beh, NULL, NULL));
    tr_msg *m;
    CHECK_OK(tr_msg_new(&m, ctx, "ask"));
    CHECK_OK(tr_pack_ref(m, pool));
    CHECK_OK(tr_send(ctx, a, m));
    CHECK(test_recv_int(ctx, "workers") == 3);
    CHECK_OK(tr_exit(ctx, a, &(tr_reason){TR_EXIT_SHUTDOWN, 0, ""}));
    CHECK_ERR(tr_pool_reply_stats(NULL, NULL), TR_EINVAL);
    stop_pool(ctx, pool);
}

/* A runtime stop goes through the pool's ordered stop while its clients
 * still live: a thread-actor client's queued requests are answered
 * TR_ECANCELED, the job a worker holds runs to its end and is answered,
 * and no actor is left behind. */
static atomic_int client_queued, client_ok, client_canceled, client_other;

static int stop_client_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    (void)ctx;
    return args != NULL ? tr_msg_ref(args, state) : TR_EINVAL;
}

static int stop_client_run(tr_ctx *ctx, void *state)
{
    tr_ref pool = *(tr_ref *)state;
    result rs[4];
    request(ctx, pool, job(ctx, "hold", 0, 1), TEST_WAIT_MS, &rs[0]);
    while (atomic_load(&sh->holding) == 0)
        test_sleep_ms(1);
    for (int i = 1; i < 4; i++)
        request(ctx, pool, job(ctx, "work", 0, i), TEST_WAIT_MS, &rs[i]);
    atomic_store(&client_queued, 1);
    tr_msg *m;
    while (tr_receive(ctx, "never", NULL, NULL, TR_FOREVER, &m) != TR_ESTOPPED) {
    }
    for (int i = 0; i < 4; i++) {
        if (rs[i].done && rs[i].status == TR_OK)
            atomic_fetch_add(&client_ok, 1);
        else if (rs[i].done && rs[i].status == TR_ECANCELED)
            atomic_fetch_add(&client_canceled, 1);
        else
            atomic_fetch_add(&client_other, 1);
    }
    return 0;
}

static const tr_behaviour stop_client_beh = {"stop_client", sizeof(tr_ref), stop_client_init,
                                             NULL,          NULL,           stop_client_run};

static void *release_later(void *arg)
{
    (void)arg;
    test_sleep_ms(50);
    atomic_store(&sh->release, 1);
    return NULL;
}

static void test_runtime_stop(void)
{
    reset_shared();
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    tr_ref pool = pool_new(ctx, TR_THREAD, 1, 8);
    wait_workers(ctx, pool, 1);
    tr_msg *args;
    CHECK_OK(tr_msg_new(&args, ctx, "args"));
    CHECK_OK(tr_pack_ref(args, pool));
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_THREAD;
    tr_ref client;
    CHECK_OK(tr_spawn(&client, ctx, &stop_client_beh, args, &o));
    WAIT_UNTIL(atomic_load(&client_queued) == 1);
    tr_detach(ctx);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, release_later, NULL) == 0);
    CHECK_OK(tr_runtime_stop(rt, TR_STOP_DRAIN));
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(atomic_load(&client_ok) == 1);
    CHECK(atomic_load(&client_canceled) == 3);
    CHECK(atomic_load(&client_other) == 0);
    tr_counters c = test_counters(rt);
    CHECK(c.live_actors == 0 && c.exited == c.spawned);
    tr_runtime_free(rt);
}

/* Specs that cannot work are refused before anything starts. */
static void test_bad_specs(tr_ctx *ctx)
{
    tr_ref pool;
    tr_pool_spec ok = TR_POOL_SPEC_INIT;
    ok.behaviour = &job_beh;
    tr_pool_spec s = ok;
    CHECK_ERR(tr_pool_start(NULL, ctx, &s, NULL), TR_EINVAL);
    CHECK_ERR(tr_pool_start(&pool, ctx, NULL, NULL), TR_EINVAL);
    s.workers = 0;
    CHECK_ERR(tr_pool_start(&pool, ctx, &s, NULL), TR_EINVAL);
    s = ok;
    s.spawn.mailbox_limit = 4;
    CHECK_ERR(tr_pool_start(&pool, ctx, &s, NULL), TR_EINVAL);
    s = ok;
    s.spawn.name = "w";
    CHECK_ERR(tr_pool_start(&pool, ctx, &s, NULL), TR_EINVAL);
    static const tr_behaviour no_handle = {"x", 0, NULL, NULL, NULL, NULL};
    s = ok;
    s.behaviour = &no_handle;
    CHECK_ERR(tr_pool_start(&pool, ctx, &s, NULL), TR_EINVAL);
    s = ok;
    static const uint8_t junk[] = {0x92, 0x01}; /* an array missing a value */
    s.args = junk;
    s.args_len = sizeof junk;
    CHECK_ERR(tr_pool_start(&pool, ctx, &s, NULL), TR_EBADMSG);
    /* A process behaviour must be part of the program image. */
    tr_behaviour *heap = malloc(sizeof *heap);
    CHECK(heap != NULL);
    *heap = job_beh;
    CHECK_OK(tr_behaviour_check(&job_beh, TR_PROCESS));
    CHECK_OK(tr_behaviour_check(heap, TR_THREAD));
    CHECK_ERR(tr_behaviour_check(heap, TR_PROCESS), TR_EINVAL);
    CHECK_ERR(tr_behaviour_check(&no_handle, TR_POOLED), TR_EINVAL);
    CHECK_ERR(tr_behaviour_check(NULL, TR_POOLED), TR_EINVAL);
    s = ok;
    s.behaviour = heap;
    s.spawn.kind = TR_PROCESS;
    CHECK_ERR(tr_pool_start(&pool, ctx, &s, NULL), TR_EINVAL);
    free(heap);
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_THREAD;
    CHECK_ERR(tr_pool_start(&pool, ctx, &ok, &o), TR_EINVAL);
    o.kind = TR_POOLED;
    o.mailbox_limit = 10;
    CHECK_ERR(tr_pool_start(&pool, ctx, &ok, &o), TR_EINVAL);
}

int main(void)
{
    test_pool_setup();
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);

    fprintf(stderr, "-- spread pooled\n");
    test_spread(rt, ctx, TR_POOLED);
    fprintf(stderr, "-- spread thread\n");
    test_spread(rt, ctx, TR_THREAD);
    fprintf(stderr, "-- spread process\n");
    test_spread(rt, ctx, TR_PROCESS);
    fprintf(stderr, "-- queue_full\n");
    test_queue_full(ctx);
    fprintf(stderr, "-- crash pooled / thread / process segv\n");
    test_crash(ctx, TR_POOLED, "crash");
    test_crash(ctx, TR_THREAD, "crash");
    test_crash(ctx, TR_PROCESS, "crash");
    test_crash(ctx, TR_PROCESS, "segv");
    fprintf(stderr, "-- sigkill\n");
    test_sigkill(ctx);
    fprintf(stderr, "-- deadlines\n");
    test_deadlines(rt, ctx);
    fprintf(stderr, "-- stop\n");
    test_stop(rt, ctx);
    fprintf(stderr, "-- under_supervisor\n");
    test_under_supervisor(rt, ctx);
    fprintf(stderr, "-- pooled_client\n");
    test_pooled_client(ctx);
    fprintf(stderr, "-- gives_up\n");
    test_gives_up(ctx);
    fprintf(stderr, "-- bad_specs\n");
    test_bad_specs(ctx);

    test_finish(rt, ctx);
    fprintf(stderr, "-- runtime_stop\n");
    test_runtime_stop();
    munmap(sh, sizeof *sh);
    printf("ok\n");
    return 0;
}
