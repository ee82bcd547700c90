/*
 * restart.c — crash of a supervised, named child to its replacement
 * answering a request. A one_for_one supervisor (troupe_sup.h; intensity
 * K + 1 within 1 s, so it never gives up here) has one permanent worker
 * child registered by name. K times, one restart at a time:
 *   pooled: main looks the name up and sends the child "crash" (a plain
 *           message); its handler returns an error, so it exits
 *           abnormally and the supervisor starts a new incarnation;
 *   proc:   the child is a process actor (TR_PROCESS); main sends its OS
 *           process SIGKILL with kill(), the process actor's stand-in
 *           exits with TR_EXIT_SIGNAL, and the supervisor starts a new
 *           process actor (through the runtime's fork server).
 * Timed from just before the lookup and crash message (pooled) or the
 * kill() (proc) to the first answer from the replacement: main looks the
 * name up with tr_whereis and sends "ping" with tr_call; while the name is
 * unregistered or the call reaches the dying incarnation (TR_ENOACTOR,
 * TR_EEXITED) it yields the CPU and tries again, as the Erlang peer
 * retries gen_server:call on the name. main is an attached thread, as in
 * the other latency rows: a pooled driver that polls the name by sending
 * itself messages kept its worker busy while the supervisor, woken on that
 * worker, waited behind it (measured: ~78 µs per restart, against ~6-65
 * µs here).
 * Checks: every answer comes from a new incarnation (pooled: the child's
 * start number, counted in init, is the expected one; proc: the answer's
 * OS pid is new), and the supervisor counted exactly K restarts. Core
 * dumps are off (RLIMIT_CORE 0). Reports the median and p99, in µs
 * (pooled) or ms (proc).
 * Usage: troupe_restart pooled|proc K
 */
#include "xbench.h"

#include <sched.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <troupe_sup.h>

#define CHILD_NAME "restart-worker"

/* Starts of the pooled child so far (each process child counts in its own
 * copy of the program, so proc children check their pid instead). */
static atomic_long worker_starts;

typedef struct worker {
    int64_t start; /* which start of the child this incarnation is, from 1 */
} worker;

static int worker_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    worker *w = state;
    w->start = atomic_fetch_add(&worker_starts, 1) + 1;
    return TR_OK;
}

static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    worker *w = state;
    if (tr_msg_is(m, "crash"))
        return 7; /* an abnormal exit: {TR_EXIT_ERROR, 7} */
    if (!tr_msg_is_request(m))
        return TR_OK;
    tr_msg *r; /* "ping": [start, pid] */
    tr_err err = tr_msg_new(&r, ctx, "pong");
    if (err != TR_OK)
        return err;
    if ((err = tr_pack_array(r, 2)) != TR_OK || (err = tr_pack_int(r, w->start)) != TR_OK ||
        (err = tr_pack_int(r, getpid())) != TR_OK) {
        tr_msg_free(r);
        return err;
    }
    (void)tr_reply(ctx, m, r); /* consumed; a caller that gave up is no failure */
    return TR_OK;
}

static const tr_behaviour worker_beh = {
    .name = "worker", .state_size = sizeof(worker), .init = worker_init, .handle = worker_handle};

typedef struct answer {
    int64_t start, pid;
} answer;

/*
 * Looks CHILD_NAME up and asks it "ping" until an incarnation answers;
 * *found receives the reference that answered. While the name is
 * unregistered or the call reaches the dying incarnation it yields the
 * CPU and tries again. Fails the run after 10 s.
 */
static answer ping_by_name(tr_ctx *ctx, tr_runtime *rt, tr_ref *found)
{
    double give_up = bench_now() + 10.0;
    for (;;) {
        tr_ref r;
        tr_err err = tr_whereis(&r, rt, CHILD_NAME);
        if (err == TR_OK) {
            tr_msg *ping, *reply = NULL;
            bench_check(tr_msg_new(&ping, ctx, "ping"), "new ping");
            err = tr_call(ctx, r, ping, 5000, &reply);
            if (err == TR_OK) {
                answer a;
                tr_cursor c;
                uint32_t n;
                tr_cursor_init(&c, reply);
                if (tr_cursor_array(&c, &n) != TR_OK || n != 2 ||
                    tr_cursor_int(&c, &a.start) != TR_OK || tr_cursor_int(&c, &a.pid) != TR_OK)
                    bench_fail("restart: malformed answer");
                tr_msg_free(reply);
                *found = r;
                return a;
            }
            if (err != TR_ENOACTOR && err != TR_EEXITED)
                bench_check(err, "ping the child");
        } else if (err != TR_ENOTFOUND) {
            bench_check(err, "look the child up");
        }
        if (bench_now() > give_up)
            bench_fail("restart: no incarnation answered within 10 s (last: %s)", tr_err_name(err));
        sched_yield();
    }
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "pooled";
    bool proc = strcmp(mode, "proc") == 0;
    if (!proc && strcmp(mode, "pooled") != 0) {
        fprintf(stderr, "%s: first argument must be pooled or proc\n", argv[0]);
        return 2;
    }
    long k = bench_arg(argc, argv, 2, proc ? 100 : 2000);
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);

    tr_runtime *rt;
    tr_ctx *ctx = bench_start(&rt);
    double *lat = calloc((size_t)k, sizeof *lat);
    if (lat == NULL)
        bench_fail("out of memory");

    tr_sup_child_spec kid = TR_SUP_CHILD_SPEC_INIT;
    kid.id = "worker";
    kid.behaviour = &worker_beh;
    kid.spawn.kind = proc ? TR_PROCESS : TR_POOLED;
    kid.spawn.name = CHILD_NAME;
    kid.restart = TR_SUP_PERMANENT;
    tr_sup_spec spec = TR_SUP_SPEC_INIT;
    spec.strategy = TR_SUP_ONE_FOR_ONE;
    spec.intensity = (uint32_t)k + 1;
    spec.period_ms = 1000;
    spec.children = &kid;
    spec.nchildren = 1;
    tr_ref sup, cur;
    bench_check(tr_sup_start(&sup, ctx, &spec, NULL), "start the supervisor");
    answer prev = ping_by_name(ctx, rt, &cur); /* untimed: the first start */
    if (!proc && prev.start != 1)
        bench_fail("restart: first answer from start %lld", (long long)prev.start);

    double total = 0;
    for (long i = 0; i < k; i++) {
        double t0 = bench_now();
        if (proc) {
            if (kill((pid_t)prev.pid, SIGKILL) != 0)
                bench_fail("kill %lld: %s", (long long)prev.pid, strerror(errno));
        } else {
            tr_ref r;
            bench_check(tr_whereis(&r, rt, CHILD_NAME), "look the child up");
            bench_check(tr_send_tag(ctx, r, "crash"), "send crash");
        }
        tr_ref now_ref;
        answer a = ping_by_name(ctx, rt, &now_ref);
        double t1 = bench_now();
        if (tr_ref_eq(now_ref, cur))
            bench_fail("restart %ld: the old incarnation answered", i);
        if (proc ? (a.pid == prev.pid || a.pid == getpid() || a.pid <= 0)
                 : a.start != prev.start + 1)
            bench_fail("restart %ld: answer from start %lld pid %lld after start %lld pid %lld", i,
                       (long long)a.start, (long long)a.pid, (long long)prev.start,
                       (long long)prev.pid);
        prev = a;
        cur = now_ref;
        lat[i] = (t1 - t0) * (proc ? 1e3 : 1e6);
        total += t1 - t0;
    }

    /* Untimed: the supervisor's own count, then stop it. */
    tr_sup_child_info *info;
    uint32_t n;
    bench_check(tr_sup_which_children(&info, &n, ctx, sup, 10000), "list the children");
    if (n != 1 || info[0].state != TR_SUP_CHILD_RUNNING || info[0].restarts != (uint32_t)k ||
        !tr_ref_eq(info[0].ref, cur))
        bench_fail("restart: the supervisor lists %u children, %u restarts (expected %ld)", n,
                   n ? info[0].restarts : 0, k);
    tr_sup_children_free(info);
    tr_monitor_id mon;
    tr_msg *down;
    tr_reason shut = tr_reason_make(TR_EXIT_SHUTDOWN, 0, NULL);
    bench_check(tr_monitor(ctx, sup, &mon), "monitor the supervisor");
    bench_check(tr_exit(ctx, sup, &shut), "stop the supervisor");
    bench_check(tr_receive(ctx, TR_TAG_DOWN, NULL, NULL, 30000, &down), "supervisor DOWN");
    tr_msg_free(down);

    double p50 = xbench_percentile(lat, (size_t)k, 50);
    double p99 = xbench_percentile(lat, (size_t)k, 99);
    char extra[96];
    snprintf(extra, sizeof extra, "metric2=%s value2=%.6g child=%s", proc ? "p99_ms" : "p99_us",
             p99, mode);
    bench_result("restart", k, total, proc ? "p50_ms" : "p50_us", p50, extra);
    free(lat);
    bench_stop(rt, ctx);
    return 0;
}
