/*
 * pool_exec.c — worker pools: a thread pool for blocking I/O and a process
 * pool for CPU work, where one job crashes its worker.
 *
 * Python lessons: concurrent.futures' ThreadPoolExecutor and
 * ProcessPoolExecutor (and multiprocessing.Pool). Submit jobs to a fixed
 * set of workers, collect the results as they come; in a process pool a
 * worker that dies breaks the pool (BrokenProcessPool) and every pending
 * future fails with it.
 *
 * troupe idiom: a pool is one reference (tr_pool_start). A job is a
 * message; sent as a request, its answer comes back through tr_request's
 * continuation (or tr_call), like a future. The workers are supervised:
 * a worker that dies — here by SIGSEGV in a process worker — is replaced,
 * the one job it held fails with TR_EEXITED, and every other job still
 * completes, queued ones included. The pool keeps serving.
 */
#include <troupe_pool.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum {
    IO_WORKERS = 4,
    IO_JOBS = 16,
    IO_NAP_MS = 10,
    CPU_WORKERS = 2,
    CPU_JOBS = 8,
    CPU_SPAN = 200000,
    CRASH_JOB = 3 /* this CPU job crashes its worker */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the workers ----------------------------------------------------------- */

/* "io" [dir, n]: writes n lines to a file of its own, naps as a slow
 * device would, reads the file back and answers with the bytes read. */
static int io_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    (void)state;
    tr_cursor c;
    uint32_t fields;
    const char *dir;
    size_t dlen;
    int64_t n;
    tr_cursor_init(&c, m);
    if (tr_cursor_array(&c, &fields) != TR_OK || tr_cursor_str(&c, &dir, &dlen) != TR_OK ||
        tr_cursor_int(&c, &n) != TR_OK)
        return (void)tr_reply_error(ctx, m, TR_EBADMSG), 0;
    char path[300];
    snprintf(path, sizeof path, "%.*s/job-%lld.txt", (int)dlen, dir, (long long)n);
    FILE *f = fopen(path, "w+");
    if (f == NULL)
        return (void)tr_reply_error(ctx, m, TR_ESYS), 0;
    for (int64_t i = 0; i < n; i++)
        fprintf(f, "line %lld of job %lld\n", (long long)i, (long long)n);
    struct timespec nap = {0, IO_NAP_MS * 1000000L};
    nanosleep(&nap, NULL); /* blocking is fine: a thread worker has its own thread */
    rewind(f);
    int64_t bytes = 0;
    while (fgetc(f) != EOF)
        bytes++;
    fclose(f);
    remove(path);
    tr_msg *r;
    if (tr_msg_new(&r, ctx, "io.done") != TR_OK)
        return TR_ENOMEM;
    tr_pack_int(r, bytes);
    (void)tr_reply(ctx, m, r); /* a caller that gave up is no failure */
    return 0;
}

static const tr_behaviour io_worker = {"io", 0, NULL, io_handle, NULL, NULL};

static int64_t primes_in(int64_t lo, int64_t hi)
{
    int64_t count = 0;
    for (int64_t k = lo < 2 ? 2 : lo; k < hi; k++) {
        int prime = 1;
        for (int64_t d = 2; d * d <= k && prime; d++)
            prime = k % d != 0;
        count += prime;
    }
    return count;
}

/* "primes" [lo, hi, crash]: counts primes in [lo, hi); crash != 0 makes
 * the process die by SIGSEGV first, as a bug in native code would. */
static int cpu_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    (void)state;
    tr_cursor c;
    uint32_t fields;
    int64_t lo, hi;
    bool crash;
    tr_cursor_init(&c, m);
    if (tr_cursor_array(&c, &fields) != TR_OK || tr_cursor_int(&c, &lo) != TR_OK ||
        tr_cursor_int(&c, &hi) != TR_OK || tr_cursor_bool(&c, &crash) != TR_OK)
        return (void)tr_reply_error(ctx, m, TR_EBADMSG), 0;
    if (crash) {
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
    }
    tr_msg *r;
    if (tr_msg_new(&r, ctx, "primes.done") != TR_OK)
        return TR_ENOMEM;
    tr_pack_int(r, primes_in(lo, hi));
    (void)tr_reply(ctx, m, r);
    return 0;
}

static const tr_behaviour cpu_worker = {"primes", 0, NULL, cpu_handle, NULL, NULL};

/* ---- the client ------------------------------------------------------------- */

typedef struct result {
    int done;
    tr_err status;
    int64_t value;
} result;

static int on_result(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    (void)ctx;
    (void)state;
    result *r = udata;
    r->status = status;
    if (reply != NULL && tr_msg_int(reply, &r->value) != TR_OK)
        r->status = TR_EBADMSG;
    r->done = 1;
    return 0;
}

/* Lets continuations run (inside tr_receive) until every result is in. */
static void wait_all(tr_ctx *ctx, result *rs, int n)
{
    for (int i = 0; i < n; i++)
        while (!rs[i].done) {
            tr_msg *m;
            if (tr_receive(ctx, "none", NULL, NULL, 10, &m) == TR_OK)
                tr_msg_free(m);
        }
}

static tr_ref start_pool(tr_ctx *ctx, const tr_behaviour *b, tr_actor_kind kind, uint32_t n)
{
    tr_pool_spec spec = TR_POOL_SPEC_INIT;
    spec.behaviour = b;
    spec.spawn.kind = kind;
    spec.workers = n;
    tr_ref pool = TR_REF_NIL;
    tr_err err = tr_pool_start(&pool, ctx, &spec, NULL);
    if (err != TR_OK) {
        fprintf(stderr, "tr_pool_start: %s\n", tr_strerror(err));
        exit(1);
    }
    return pool;
}

static int run_io(tr_ctx *ctx, const char *dir)
{
    tr_ref pool = start_pool(ctx, &io_worker, TR_THREAD, IO_WORKERS);
    result rs[IO_JOBS] = {{0}};
    double t0 = now_ms();
    for (int i = 0; i < IO_JOBS; i++) {
        tr_msg *m;
        tr_msg_new(&m, ctx, "io");
        tr_pack_array(m, 2);
        tr_pack_str(m, dir);
        tr_pack_int(m, 100 + i);
        if (tr_request(ctx, pool, m, 10000, on_result, &rs[i]) != TR_OK)
            return 1;
    }
    wait_all(ctx, rs, IO_JOBS);
    int bad = 0;
    for (int i = 0; i < IO_JOBS; i++)
        bad += rs[i].status != TR_OK || rs[i].value <= 0;
    printf("thread pool: %d blocking I/O jobs (%d ms nap each) on %d workers in %.0f ms, "
           "%d failed\n",
           IO_JOBS, IO_NAP_MS, IO_WORKERS, now_ms() - t0, bad);
    tr_pool_stop(ctx, pool, 10000);
    return bad != 0;
}

static int run_cpu(tr_ctx *ctx)
{
    tr_ref pool = start_pool(ctx, &cpu_worker, TR_PROCESS, CPU_WORKERS);
    result rs[CPU_JOBS] = {{0}};
    for (int i = 0; i < CPU_JOBS; i++) {
        tr_msg *m;
        tr_msg_new(&m, ctx, "primes");
        tr_pack_array(m, 3);
        tr_pack_int(m, (int64_t)i * CPU_SPAN);
        tr_pack_int(m, (int64_t)(i + 1) * CPU_SPAN);
        tr_pack_bool(m, i == CRASH_JOB);
        if (tr_request(ctx, pool, m, 30000, on_result, &rs[i]) != TR_OK)
            return 1;
    }
    wait_all(ctx, rs, CPU_JOBS);
    int wrong = 0;
    for (int i = 0; i < CPU_JOBS; i++) {
        if (i == CRASH_JOB) {
            printf("  job %d: %s (its worker died by SIGSEGV)\n", i, tr_err_name(rs[i].status));
            wrong += rs[i].status != TR_EEXITED;
            continue;
        }
        int64_t want = primes_in((int64_t)i * CPU_SPAN, (int64_t)(i + 1) * CPU_SPAN);
        printf("  job %d: %lld primes in [%d, %d)\n", i, (long long)rs[i].value, i * CPU_SPAN,
               (i + 1) * CPU_SPAN);
        wrong += rs[i].status != TR_OK || rs[i].value != want;
    }
    tr_pool_stats st;
    if (tr_pool_stats_get(&st, ctx, pool, 10000) != TR_OK)
        return 1;
    printf("process pool: %llu completed, %llu failed, %llu worker replaced, %u of %u up\n",
           (unsigned long long)st.completed, (unsigned long long)st.failed,
           (unsigned long long)st.restarts, st.workers, st.size);
    tr_pool_stop(ctx, pool, 10000);
    return wrong != 0 || st.failed != 1 || st.completed != CPU_JOBS - 1;
}

int main(void)
{
    /* The crash below is on purpose: leave no core file behind. */
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    char dir[] = "/tmp/troupe-pool-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    tr_runtime *rt;
    tr_ctx *ctx;
    if (tr_runtime_start(&rt, NULL) != TR_OK || tr_attach(&ctx, rt) != TR_OK)
        return 1;
    int failed = run_io(ctx, dir) | run_cpu(ctx);
    tr_detach(ctx);
    tr_runtime_free(rt);
    rmdir(dir);
    printf(failed ? "FAILED\n" : "ok\n");
    return failed;
}
