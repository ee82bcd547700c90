/*
 * primes.c — counting primes on every core with process actors.
 *
 * Python lesson: Effective Python items 64 and 74 ("Consider
 * concurrent.futures for true parallelism"; ProcessPoolExecutor). CPU-bound
 * Python threads take turns on one interpreter lock, so the book moves the
 * work into child processes; the price is pickling every argument and
 * result through a pipe, and a pool that breaks for good when one child
 * dies.
 *
 * troupe idiom: the same behaviour runs as a process actor by changing one
 * spawn option (kind = TR_PROCESS). A pooled dealer actor splits
 * [2, LIMIT) into chunks and keeps each worker busy with one "count"
 * request at a time; answers come back to a continuation on the dealer. The
 * job runs once with one process actor and once with one per core; main
 * checks both totals against a sieve and prints the times and the
 * speed-up. A worker that died would fail its request with a clear error
 * (TR_EEXITED) instead of hanging the pool.
 *
 * Usage: primes [LIMIT]   (default 6,000,000)
 */
#include <troupe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    CHUNKS = 48,
    MAX_WORKERS = 64
};

/* Trial division: deliberately plain CPU work. */
static int is_prime(int64_t n)
{
    if (n < 2)
        return 0;
    if (n % 2 == 0)
        return n == 2;
    for (int64_t d = 3; d * d <= n; d += 2)
        if (n % d == 0)
            return 0;
    return 1;
}

/* ---- the worker: answers "count" [lo, hi) with the number of primes ---- */

static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    (void)state;
    tr_cursor c;
    uint32_t n = 0;
    int64_t lo, hi;
    tr_cursor_init(&c, m);
    if (tr_cursor_array(&c, &n) != TR_OK || n != 2 || tr_cursor_int(&c, &lo) != TR_OK ||
        tr_cursor_int(&c, &hi) != TR_OK)
        return tr_reply_error(ctx, m, TR_EBADMSG);
    int64_t count = 0;
    for (int64_t i = lo; i < hi; i++)
        count += is_prime(i);
    tr_msg *r;
    tr_err err = tr_msg_new(&r, ctx, "count");
    if (err == TR_OK && (err = tr_pack_int(r, count)) != TR_OK)
        tr_msg_free(r);
    return err == TR_OK ? tr_reply(ctx, m, r) : tr_reply_error(ctx, m, err);
}

static const tr_behaviour worker = {"primes-worker", 0, NULL, worker_handle, NULL, NULL};

/* ---- the dealer: keeps every worker busy with one request ------------ */

typedef struct dealer {
    tr_ref main;
    tr_ref workers[MAX_WORKERS];
    int nworkers, next, done;
    int64_t limit, total;
    double t0;
} dealer;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int on_count(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata);

/* Asks worker i for the next chunk of [2, limit). */
static tr_err deal(tr_ctx *ctx, dealer *d, int i)
{
    int64_t span = (d->limit - 2 + CHUNKS - 1) / CHUNKS;
    int64_t lo = 2 + span * d->next, hi = lo + span < d->limit ? lo + span : d->limit;
    d->next++;
    tr_msg *m;
    tr_err err = tr_msg_new(&m, ctx, "count");
    if (err == TR_OK && (err = tr_pack_array(m, 2)) == TR_OK && (err = tr_pack_int(m, lo)) == TR_OK)
        err = tr_pack_int(m, hi);
    if (err == TR_OK)
        err = tr_request(ctx, d->workers[i], m, 60000, on_count, (void *)(intptr_t)i);
    if (err != TR_OK)
        tr_msg_free(m);
    return err;
}

/* Tells main the total (or the error) and ends the workers and itself. */
static int finish(tr_ctx *ctx, dealer *d, tr_err status)
{
    tr_msg *m;
    tr_err err = tr_msg_new(&m, ctx, "total");
    if (err == TR_OK && (err = tr_pack_array(m, 3)) == TR_OK &&
        (err = tr_pack_int(m, status)) == TR_OK && (err = tr_pack_int(m, d->total)) == TR_OK)
        err = tr_pack_double(m, now_s() - d->t0);
    if (err == TR_OK)
        err = tr_send(ctx, d->main, m);
    if (err != TR_OK)
        tr_msg_free(m);
    tr_stop_self(ctx, NULL); /* the workers are linked: they stop with it */
    return 0;
}

static int on_count(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    dealer *d = state;
    int64_t v = 0;
    if (status == TR_OK)
        status = tr_msg_int(reply, &v);
    if (status != TR_OK) /* e.g. TR_EEXITED: a worker died with our request */
        return finish(ctx, d, status);
    d->total += v;
    if (++d->done == CHUNKS)
        return finish(ctx, d, TR_OK);
    if (d->next < CHUNKS)
        return deal(ctx, d, (int)(intptr_t)udata);
    return 0;
}

/* args: [main, nworkers, limit] */
static int dealer_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    dealer *d = state;
    tr_cursor c;
    uint32_t n;
    int64_t nw;
    tr_cursor_init(&c, args);
    if (tr_cursor_array(&c, &n) != TR_OK || n != 3 || tr_cursor_ref(&c, &d->main) != TR_OK ||
        tr_cursor_int(&c, &nw) != TR_OK || tr_cursor_int(&c, &d->limit) != TR_OK || nw < 1 ||
        nw > MAX_WORKERS)
        return TR_EBADMSG;
    d->nworkers = (int)nw;
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_PROCESS; /* the one line that makes this a process pool */
    o.link = true;
    for (int i = 0; i < d->nworkers; i++) {
        tr_err err = tr_spawn(&d->workers[i], ctx, &worker, NULL, &o);
        if (err != TR_OK)
            return finish(ctx, d, err);
    }
    d->t0 = now_s();
    for (int i = 0; i < d->nworkers && d->next < CHUNKS; i++) {
        tr_err err = deal(ctx, d, i);
        if (err != TR_OK)
            return finish(ctx, d, err);
    }
    return 0;
}

static int dealer_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    return 0;
}

static const tr_behaviour dealer_beh = {"primes-dealer", sizeof(dealer), dealer_init,
                                        dealer_handle,   NULL,           NULL};

/* Runs the job on `nworkers` process actors; returns the count, or -1. */
static int64_t run(tr_ctx *ctx, int nworkers, int64_t limit, double *seconds)
{
    tr_msg *args;
    tr_ref d;
    tr_err err = tr_msg_new(&args, ctx, "args");
    if (err == TR_OK && (err = tr_pack_array(args, 3)) == TR_OK &&
        (err = tr_pack_ref(args, tr_self(ctx))) == TR_OK &&
        (err = tr_pack_int(args, nworkers)) == TR_OK && (err = tr_pack_int(args, limit)) == TR_OK)
        err = tr_spawn(&d, ctx, &dealer_beh, args, NULL);
    if (err != TR_OK) {
        tr_msg_free(args);
        fprintf(stderr, "spawn: %s\n", tr_strerror(err));
        return -1;
    }
    tr_msg *m;
    if ((err = tr_receive(ctx, "total", NULL, NULL, 120000, &m)) != TR_OK) {
        fprintf(stderr, "waiting: %s\n", tr_strerror(err));
        return -1;
    }
    tr_cursor c;
    uint32_t n;
    int64_t status = TR_EBADMSG, total = -1;
    tr_cursor_init(&c, m);
    if (tr_cursor_array(&c, &n) == TR_OK && n == 3 && tr_cursor_int(&c, &status) == TR_OK &&
        tr_cursor_int(&c, &total) == TR_OK)
        tr_cursor_double(&c, seconds);
    tr_msg_free(m);
    if (status != TR_OK) {
        fprintf(stderr, "pool failed: %s\n", tr_strerror((tr_err)status));
        return -1;
    }
    return total;
}

/* The reference answer: a sieve. */
static int64_t sieve(int64_t limit)
{
    char *composite = calloc((size_t)limit, 1);
    if (composite == NULL)
        return -1;
    int64_t n = 0;
    for (int64_t i = 2; i < limit; i++) {
        if (composite[i])
            continue;
        n++;
        for (int64_t j = i * i; j < limit; j += i)
            composite[j] = 1;
    }
    free(composite);
    return n;
}

int main(int argc, char **argv)
{
    int64_t limit = argc > 1 ? atoll(argv[1]) : 6000000;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nworkers = cores > 1 ? (int)(cores < MAX_WORKERS ? cores : MAX_WORKERS) : 2;
    if (limit < 3) {
        fprintf(stderr, "usage: primes [LIMIT >= 3]\n");
        return 2;
    }

    tr_runtime *rt;
    tr_ctx *ctx;
    tr_err err = tr_runtime_start(&rt, NULL);
    if (err != TR_OK || (err = tr_attach(&ctx, rt)) != TR_OK) {
        fprintf(stderr, "start: %s\n", tr_strerror(err));
        return 1;
    }
    double t1 = 0, tn = 0;
    int64_t one = run(ctx, 1, limit, &t1);
    int64_t many = run(ctx, nworkers, limit, &tn);
    int64_t want = sieve(limit);
    tr_detach(ctx);
    tr_runtime_free(rt);

    printf("primes below %lld: %lld\n", (long long)limit, (long long)many);
    printf("1 process actor:   %.3f s\n", t1);
    printf("%d process actors: %.3f s  (speed-up %.2fx on %ld cores)\n", nworkers, tn, t1 / tn,
           cores);
    if (one != want || many != want) {
        fprintf(stderr, "wrong count: %lld and %lld, expected %lld\n", (long long)one,
                (long long)many, (long long)want);
        return 1;
    }
    return 0;
}
