/*
 * xrestart.c — a supervised process actor's restart: main (attached)
 * starts a one_for_one supervisor (actors/troupe_sup.h) whose one
 * permanent child is a process actor, and asks the supervisor for its
 * events. Each round asks the child for its pid (untimed), then times
 * from kill(pid, SIGKILL) until the supervisor's replacement has answered
 * a request: main waits for the STARTED event of the new incarnation and
 * calls it. Between rounds main waits GAP ms (untimed; default 50), as
 * crashes are spaced in real life, which gives the runtime time to have a
 * warm child ready (tr_runtime_opts.proc_warm); GAP 0 measures restarts
 * back to back. WARM sets proc_warm (a number, or "off"; default: the
 * runtime's default). Checks that each replacement runs in a new process
 * and that each crash was seen as SIGKILL. Reports the median and p99 in
 * microseconds.
 * Usage: troupe_xrestart K [GAP_MS [WARM]]
 */
#include "xbench.h"

#include <sys/resource.h>
#include <time.h>
#include <troupe_sup.h>

/* Runs in the child: answers every request with its pid. */
static int child_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    (void)state;
    return tr_msg_is_request(m) ? xbench_reply_pid(ctx, m, "pid") : TR_OK;
}

static const tr_behaviour child_beh = {.name = "restarted", .handle = child_handle};

/* Asks ref for its pid. */
static int64_t ask_pid(tr_ctx *ctx, tr_ref ref)
{
    tr_msg *ask, *reply = NULL;
    int64_t pid = 0;
    bench_check(tr_msg_new(&ask, ctx, "pid"), "new pid request");
    bench_check(tr_call(ctx, ref, ask, 30000, &reply), "request to the child");
    bench_check(tr_msg_int(reply, &pid), "read the child's pid");
    tr_msg_free(reply);
    if (pid == getpid() || pid <= 0)
        bench_fail("xrestart: the child answered from pid %lld", (long long)pid);
    return pid;
}

/* Waits for the supervisor's next event of kind `want` and returns it. */
static tr_sup_event next_event(tr_ctx *ctx, tr_sup_event_kind want)
{
    for (;;) {
        tr_msg *m;
        tr_sup_event ev;
        bench_check(tr_receive(ctx, TR_SUP_TAG_EVENT, NULL, NULL, 30000, &m), "wait for event");
        bench_check(tr_sup_event_info(&ev, m), "read event");
        tr_msg_free(m);
        if (ev.kind == want)
            return ev;
        if (ev.kind != TR_SUP_EV_EXITED && ev.kind != TR_SUP_EV_STARTED)
            bench_fail("xrestart: unexpected supervisor event %s (%s)", tr_sup_event_name(ev.kind),
                       ev.reason.text);
    }
}

int main(int argc, char **argv)
{
    long k = bench_arg(argc, argv, 1, 100);
    long gap_ms = argc > 2 ? strtol(argv[2], NULL, 10) : 50;
    tr_runtime_opts ro = TR_RUNTIME_OPTS_INIT;
    if (argc > 3)
        ro.proc_warm =
            strcmp(argv[3], "off") == 0 ? TR_PROC_WARM_OFF : (uint32_t)strtoul(argv[3], NULL, 10);
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);

    tr_runtime *rt;
    tr_ctx *ctx;
    bench_check(tr_runtime_start(&rt, &ro), "start runtime");
    bench_check(tr_attach(&ctx, rt), "attach main");

    tr_sup_child_spec child = TR_SUP_CHILD_SPEC_INIT;
    child.id = "worker";
    child.behaviour = &child_beh;
    child.spawn.kind = TR_PROCESS;
    child.shutdown_ms = 1000;
    tr_sup_spec spec = TR_SUP_SPEC_INIT;
    spec.intensity = (uint32_t)k + 10;
    spec.period_ms = 3600000;
    spec.children = &child;
    spec.nchildren = 1;
    spec.events = tr_self(ctx);
    tr_ref sup;
    bench_check(tr_sup_start(&sup, ctx, &spec, NULL), "start supervisor");
    tr_ref cur = next_event(ctx, TR_SUP_EV_STARTED).child;

    double *lat = calloc((size_t)k, sizeof *lat);
    if (lat == NULL)
        bench_fail("out of memory");
    double total = 0;
    for (long i = 0; i < k; i++) {
        if (gap_ms > 0)
            nanosleep(&(struct timespec){gap_ms / 1000, (gap_ms % 1000) * 1000000L}, NULL);
        int64_t pid = ask_pid(ctx, cur);
        double t0 = bench_now();
        if (kill((pid_t)pid, SIGKILL) != 0)
            bench_fail("kill %lld: %s", (long long)pid, strerror(errno));
        tr_sup_event ev = next_event(ctx, TR_SUP_EV_EXITED);
        if (!tr_ref_eq(ev.child, cur) || ev.reason.kind != TR_EXIT_SIGNAL ||
            ev.reason.code != SIGKILL)
            bench_fail("xrestart: round %ld: the child ended with %s (%d) %s", i,
                       tr_exit_kind_name(ev.reason.kind), ev.reason.code, ev.reason.text);
        cur = next_event(ctx, TR_SUP_EV_STARTED).child;
        int64_t npid = ask_pid(ctx, cur);
        double t1 = bench_now();
        if (npid == pid)
            bench_fail("xrestart: round %ld: the replacement answered from the old process", i);
        lat[i] = (t1 - t0) * 1e6;
        total += t1 - t0;
    }
    double p50 = xbench_percentile(lat, (size_t)k, 50);
    double p99 = xbench_percentile(lat, (size_t)k, 99);
    char extra[128];
    snprintf(extra, sizeof extra, "metric2=p99_us value2=%.6g gap_ms=%ld warm=%s", p99, gap_ms,
             argc > 3 ? argv[3] : "default");
    bench_result("xrestart", k, total, "p50_us", p50, extra);
    free(lat);
    tr_exit(ctx, sup, &(tr_reason){TR_EXIT_SHUTDOWN, 0, "done"});
    bench_stop(rt, ctx);
    return 0;
}
