/*
 * test_pool.h — what the worker-pool tests share: a job behaviour that
 * reports through memory shared with process workers, and helpers to
 * start pools, send jobs and wait for their answers.
 *
 * Jobs: "work" [sleep_ms, v] answers [2v, worker]; "hold" v waits until
 * released, then answers [v, worker]; "count" answers [0, worker];
 * "crash" fails (error 7); "segv" raises SIGSEGV. A worker names itself by
 * its process and actor, so every incarnation has its own name.
 */
#ifndef TROUPE_TEST_POOL_H
#define TROUPE_TEST_POOL_H

#include "check.h"
#include "troupe_pool.h"

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

/* Set by test_pool_setup (each test program has its own copy). */
static shared *sh;

/* Never takes anything; notes whether a job waits behind the current one. */
static inline bool job_queued(const tr_msg *m, void *udata)
{
    if (!tr_msg_is(m, "tr.pool.probe"))
        *(bool *)udata = true;
    return false;
}

static inline void check_alone(tr_ctx *ctx)
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
static inline int64_t worker_id(tr_ctx *ctx)
{
    tr_ref me = tr_self(ctx);
    return ((int64_t)getpid() << 32) | ((int64_t)(me.id & 0xffff) << 16) |
           (me.incarnation & 0xffff);
}

static inline void reply_pair(tr_ctx *ctx, const tr_msg *m, int64_t a, int64_t b)
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
static inline int job_handle(tr_ctx *ctx, void *state, const tr_msg *m)
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

static inline tr_ref pool_new(tr_ctx *ctx, tr_actor_kind kind, uint32_t workers, uint32_t queue_max)
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

static inline tr_pool_stats stats(tr_ctx *ctx, tr_ref pool)
{
    tr_pool_stats st;
    CHECK_OK(tr_pool_stats_get(&st, ctx, pool, TEST_WAIT_MS));
    return st;
}

static inline void wait_workers(tr_ctx *ctx, tr_ref pool, uint32_t n)
{
    WAIT_UNTIL(stats(ctx, pool).workers == n);
}

/* The six end states plus what is still open equal what was submitted. */
static inline void check_sums(const tr_pool_stats *st)
{
    CHECK(st->submitted == st->completed + st->failed + st->refused + st->expired + st->timed_out +
                               st->canceled + st->queued + st->busy);
}

static inline tr_msg *job(tr_ctx *ctx, const char *tag, int64_t ms, int64_t v)
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

static inline int on_result(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status,
                            void *udata)
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

static inline void request(tr_ctx *ctx, tr_ref pool, tr_msg *m, uint32_t timeout_ms, result *r)
{
    memset(r, 0, sizeof *r);
    CHECK_OK(tr_request(ctx, pool, m, timeout_ms, on_result, r));
}

/* Runs continuations until every one of rs[0..n) is done. */
static inline void pump(tr_ctx *ctx, result *rs, size_t n)
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

static inline tr_err call(tr_ctx *ctx, tr_ref pool, tr_msg *m, uint32_t timeout_ms, int64_t *v)
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

static inline void reset_shared(void)
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
static inline void stop_pool(tr_ctx *ctx, tr_ref pool)
{
    CHECK_OK(tr_pool_stop(ctx, pool, TEST_WAIT_MS));
    tr_pool_stats st;
    WAIT_UNTIL(tr_pool_stats_get(&st, ctx, pool, 100) == TR_ENOACTOR);
    WAIT_UNTIL(test_counters(tr_ctx_runtime(ctx)).live_actors == 0);
}

/* Call first, before any runtime starts: no core files from crashing
 * workers, and the shared mapping the fork server's children inherit. */
static inline void test_pool_setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
}

#endif /* TROUPE_TEST_POOL_H */
