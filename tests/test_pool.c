/*
 * test_pool.c — worker pools (actors/troupe_pool.h): jobs spread over the
 * workers, one job per worker at a time, the bounded queue, pooled,
 * thread and process workers, crashed workers (error returns, SIGKILL,
 * SIGSEGV) failing only their own job, deadlines, stop with queued work, a
 * pool under a supervisor, bad specs, and a seeded stress with random
 * crashes where every request is answered and the counts add up.
 *
 * Workers report through a shared anonymous mapping made before the first
 * runtime starts, so process workers (forks of the fork server) see it too.
 */
#include "check.h"
#include "troupe_pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>

/* ---- the test worker ------------------------------------------------------ */

typedef struct shared {
    atomic_int active, max_active; /* "work" jobs running now / at most */
    atomic_int release;            /* "hold" jobs wait until this is set */
    atomic_int holding;            /* workers in a "hold" now */
    atomic_int hold_pid;           /* process of the last worker that began a hold */
    atomic_int counted;            /* "count" jobs handled */
    atomic_int plain;              /* plain "work" jobs handled */
    atomic_int second_job;         /* a thread worker found a job queued behind its own */
} shared;

static shared *sh;

/* Never takes anything; notes whether a job waits behind the current one. */
static bool job_queued(const tr_msg *m, void *udata)
{
    if (!tr_msg_is(m, "tr.pool.probe"))
        *(bool *)udata = true;
    return false;
}

static void check_alone(tr_ctx *ctx)
{
    if (tr_ctx_kind(ctx) != TR_THREAD)
        return;
    bool seen = false;
    tr_msg *m;
    if (tr_receive(ctx, NULL, job_queued, &seen, 0, &m) == TR_OK)
        tr_msg_free(m);
    if (seen)
        atomic_fetch_add(&sh->second_job, 1);
}

/* Names the worker incarnation: its process and, within it, its actor. */
static int64_t worker_id(tr_ctx *ctx)
{
    tr_ref me = tr_self(ctx);
    return ((int64_t)getpid() << 32) | ((int64_t)(me.id & 0xffff) << 16) |
           (me.incarnation & 0xffff);
}

static void reply_pair(tr_ctx *ctx, const tr_msg *m, int64_t a, int64_t b)
{
    if (!tr_msg_is_request(m))
        return;
    tr_msg *r;
    if (tr_msg_new(&r, ctx, "result") != TR_OK)
        return;
    if (tr_pack_array(r, 2) != TR_OK || tr_pack_int(r, a) != TR_OK || tr_pack_int(r, b) != TR_OK) {
        tr_msg_free(r);
        return;
    }
    (void)tr_reply(ctx, m, r);
}

/* "work" [sleep_ms, v] -> [2v, worker]; "hold" v -> [v, worker] once
 * released; "count" -> [0, worker]; "crash" fails; "segv" raises SIGSEGV. */
static int job_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    (void)state;
    if (tr_msg_is(m, "work")) {
        tr_cursor c;
        uint32_t n;
        int64_t ms = 0, v = 0;
        tr_cursor_init(&c, m);
        if (tr_cursor_array(&c, &n) != TR_OK || n != 2 || tr_cursor_int(&c, &ms) != TR_OK ||
            tr_cursor_int(&c, &v) != TR_OK)
            return TR_EBADMSG;
        int now = atomic_fetch_add(&sh->active, 1) + 1;
        int max = atomic_load(&sh->max_active);
        while (now > max && !atomic_compare_exchange_weak(&sh->max_active, &max, now)) {
        }
        if (ms > 0)
            test_sleep_ms((int)ms);
        check_alone(ctx);
        atomic_fetch_sub(&sh->active, 1);
        if (!tr_msg_is_request(m))
            atomic_fetch_add(&sh->plain, 1);
        reply_pair(ctx, m, 2 * v, worker_id(ctx));
    } else if (tr_msg_is(m, "hold")) {
        int64_t v = 0;
        (void)tr_msg_int(m, &v);
        atomic_store(&sh->hold_pid, (int)getpid());
        atomic_fetch_add(&sh->holding, 1);
        while (!atomic_load(&sh->release))
            test_sleep_ms(1);
        atomic_fetch_sub(&sh->holding, 1);
        reply_pair(ctx, m, v, worker_id(ctx));
    } else if (tr_msg_is(m, "count")) {
        atomic_fetch_add(&sh->counted, 1);
        reply_pair(ctx, m, 0, worker_id(ctx));
    } else if (tr_msg_is(m, "crash")) {
        return 7;
    } else if (tr_msg_is(m, "segv")) {
        signal(SIGSEGV, SIG_DFL); /* past any sanitizer's handler */
        raise(SIGSEGV);
    }
    return 0;
}

static const tr_behaviour job_beh = {"job", 0, NULL, job_handle, NULL, NULL};

/* ---- helpers -------------------------------------------------------------- */

static tr_ref pool_new(tr_ctx *ctx, tr_actor_kind kind, uint32_t workers, uint32_t queue_max)
{
    tr_pool_spec spec = TR_POOL_SPEC_INIT;
    spec.behaviour = &job_beh;
    spec.spawn.kind = kind;
    spec.workers = workers;
    spec.queue_max = queue_max;
    spec.max_restarts = 1000;
    tr_ref pool;
    CHECK_OK(tr_pool_start(&pool, ctx, &spec, NULL));
    return pool;
}

static tr_pool_stats stats(tr_ctx *ctx, tr_ref pool)
{
    tr_pool_stats st;
    CHECK_OK(tr_pool_stats_get(&st, ctx, pool, TEST_WAIT_MS));
    return st;
}

static void wait_workers(tr_ctx *ctx, tr_ref pool, uint32_t n)
{
    WAIT_UNTIL(stats(ctx, pool).workers == n);
}

/* The six end states plus what is still open equal what was submitted. */
static void check_sums(const tr_pool_stats *st)
{
    CHECK(st->submitted == st->completed + st->failed + st->refused + st->expired + st->timed_out +
                               st->canceled + st->queued + st->busy);
}

static tr_msg *job(tr_ctx *ctx, const char *tag, int64_t ms, int64_t v)
{
    tr_msg *m;
    CHECK_OK(tr_msg_new(&m, ctx, tag));
    if (strcmp(tag, "work") == 0) {
        CHECK_OK(tr_pack_array(m, 2));
        CHECK_OK(tr_pack_int(m, ms));
    }
    CHECK_OK(tr_pack_int(m, v));
    return m;
}

/* One asynchronous request's outcome. */
typedef struct result {
    bool done;
    tr_err status;
    int64_t v, worker;
} result;

static int on_result(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    (void)ctx;
    (void)state;
    result *r = udata;
    r->status = status;
    if (reply != NULL && !tr_msg_is(reply, "tr.pool.done")) { /* a stop's answer is empty */
        tr_cursor c;
        uint32_t n;
        tr_cursor_init(&c, reply);
        CHECK(tr_msg_is(reply, "result"));
        CHECK_OK(tr_cursor_array(&c, &n));
        CHECK_OK(tr_cursor_int(&c, &r->v));
        CHECK_OK(tr_cursor_int(&c, &r->worker));
    }
    r->done = true;
    return 0;
}

static void request(tr_ctx *ctx, tr_ref pool, tr_msg *m, uint32_t timeout_ms, result *r)
{
    memset(r, 0, sizeof *r);
    CHECK_OK(tr_request(ctx, pool, m, timeout_ms, on_result, r));
}

/* Runs continuations until every one of rs[0..n) is done. */
static void pump(tr_ctx *ctx, result *rs, size_t n)
{
    int64_t deadline = test_now_ms() + 3 * TEST_WAIT_MS;
    for (size_t i = 0; i < n; i++) {
        while (!rs[i].done) {
            CHECK(test_now_ms() < deadline);
            tr_msg *m;
            if (tr_receive(ctx, "never", NULL, NULL, 5, &m) == TR_OK)
                tr_msg_free(m);
        }
    }
}

static tr_err call(tr_ctx *ctx, tr_ref pool, tr_msg *m, uint32_t timeout_ms, int64_t *v)
{
    tr_msg *reply;
    tr_err err = tr_call(ctx, pool, m, timeout_ms, &reply);
    if (err == TR_OK) {
        result r = {0};
        on_result(ctx, NULL, reply, TR_OK, &r);
        tr_msg_free(reply);
        if (v != NULL)
            *v = r.v;
    }
    return err;
}

static void reset_shared(void)
{
    atomic_store(&sh->active, 0);
    atomic_store(&sh->max_active, 0);
    atomic_store(&sh->release, 0);
    atomic_store(&sh->holding, 0);
    atomic_store(&sh->counted, 0);
    atomic_store(&sh->plain, 0);
}

/* Stops pool: afterwards neither it nor any worker is left (the tests
 * run no other actors). */
static void stop_pool(tr_ctx *ctx, tr_ref pool)
{
    CHECK_OK(tr_pool_stop(ctx, pool, TEST_WAIT_MS));
    tr_pool_stats st;
    WAIT_UNTIL(tr_pool_stats_get(&st, ctx, pool, 100) == TR_ENOACTOR);
    WAIT_UNTIL(test_counters(tr_ctx_runtime(ctx)).live_actors == 0);
}

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
    signal(SIGPIPE, SIG_IGN);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core); /* crashing workers leave no core files */
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    uint64_t seed = test_seed(argc, argv);
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    int jobs = (int)test_scale(200);

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
    fprintf(stderr, "-- gives_up\n");
    test_gives_up(ctx);
    fprintf(stderr, "-- bad_specs\n");
    test_bad_specs(ctx);
    fprintf(stderr, "-- stress\n");
    test_stress(rt, ctx, TR_POOLED, "crash", jobs, seed);
    test_stress(rt, ctx, TR_THREAD, "crash", jobs, seed + 100);
    test_stress(rt, ctx, TR_PROCESS, "segv", jobs / 5 + 1, seed + 200);

    test_finish(rt, ctx);
    munmap(sh, sizeof *sh);
    printf("ok\n");
    return 0;
}
