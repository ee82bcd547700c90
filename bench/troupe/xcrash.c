/*
 * xcrash.c — crash-to-DOWN latency of a process actor. main (attached)
 * spawns a process actor, monitors it and asks it for its pid (untimed),
 * then:
 *   kill: sends the child SIGKILL and times from kill() to the DOWN;
 *   segv: sends it "crash"; the child writes the time into a page shared
 *         with this process (mapped before the runtime, and so its fork
 *         server, started) and raises SIGSEGV; timed from that stamp to
 *         the DOWN.
 * K times, one child at a time. Checks that every DOWN names the child and
 * the signal. Core dumps are switched off (RLIMIT_CORE 0), so the time is
 * not the dumper's. Reports the median and p99 in microseconds.
 * Usage: troupe_xcrash kill|segv K
 */
#include "xbench.h"

#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>

static _Atomic(double) *crash_stamp; /* shared with the children */

static int child_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    if (tr_msg_is_request(m)) /* "pid" */
        return xbench_reply_pid(ctx, m, "pid");
    if (tr_msg_is(m, "crash")) {
        atomic_store(crash_stamp, bench_now());
        raise(SIGSEGV);
    }
    return TR_OK;
}

static const tr_behaviour child_beh = {.name = "crasher", .handle = child_handle};

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "kill";
    bool segv = strcmp(how, "segv") == 0;
    if (!segv && strcmp(how, "kill") != 0) {
        fprintf(stderr, "%s: first argument must be kill or segv\n", argv[0]);
        return 2;
    }
    long k = bench_arg(argc, argv, 2, 100);
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    crash_stamp =
        mmap(NULL, sizeof *crash_stamp, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (crash_stamp == MAP_FAILED)
        bench_fail("mmap failed");

    tr_runtime *rt;
    tr_ctx *ctx = bench_start(&rt);
    double *lat = calloc((size_t)k, sizeof *lat);
    if (lat == NULL)
        bench_fail("out of memory");
    int sig = segv ? SIGSEGV : SIGKILL;
    double total = 0;
    for (long i = 0; i < k; i++) {
        tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
        o.kind = TR_PROCESS;
        tr_ref r;
        tr_msg *ask, *reply = NULL;
        tr_monitor_id mon;
        int64_t pid = 0;

        bench_check(tr_spawn(&r, ctx, &child_beh, NULL, &o), "spawn process actor");
        bench_check(tr_monitor(ctx, r, &mon), "monitor the child");
        bench_check(tr_msg_new(&ask, ctx, "pid"), "new pid request");
        tr_err err = tr_call(ctx, r, ask, 30000, &reply);
        if (err != TR_OK) { /* say how the child ended, if it did */
            tr_msg *down;
            tr_reason why = {0};
            if (tr_receive(ctx, TR_TAG_DOWN, NULL, NULL, 5000, &down) == TR_OK) {
                tr_msg_down_info(down, NULL, NULL, &why);
                tr_msg_free(down);
            }
            bench_fail("xcrash: child %ld did not answer (%s); it ended with %s (%d) %s", i,
                       tr_err_name(err), tr_exit_kind_name(why.kind), why.code, why.text);
        }
        bench_check(tr_msg_int(reply, &pid), "read the child's pid");
        tr_msg_free(reply);
        if (pid == getpid() || pid <= 0)
            bench_fail("xcrash: the child answered from pid %lld", (long long)pid);

        double t0;
        atomic_store(crash_stamp, 0.0);
        if (segv) {
            bench_check(tr_send_tag(ctx, r, "crash"), "send crash");
        } else {
            t0 = bench_now();
            if (kill((pid_t)pid, SIGKILL) != 0)
                bench_fail("kill %lld: %s", (long long)pid, strerror(errno));
        }
        tr_msg *down;
        tr_ref who;
        tr_monitor_id id;
        tr_reason why;
        bench_check(tr_receive(ctx, TR_TAG_DOWN, NULL, NULL, 30000, &down), "wait for DOWN");
        double t1 = bench_now();
        if (segv)
            t0 = atomic_load(crash_stamp);
        bench_check(tr_msg_down_info(down, &who, &id, &why), "read DOWN");
        tr_msg_free(down);
        if (id != mon || !tr_ref_eq(who, r) || why.kind != TR_EXIT_SIGNAL || why.code != sig)
            bench_fail("xcrash: child %ld ended with %s (%d) %s, expected signal %d", i,
                       tr_exit_kind_name(why.kind), why.code, why.text, sig);
        if (t0 <= 0 || t1 < t0)
            bench_fail("xcrash: no crash time stamp from child %ld", i);
        lat[i] = (t1 - t0) * 1e6;
        total += t1 - t0;
    }
    double p50 = xbench_percentile(lat, (size_t)k, 50);
    double p99 = xbench_percentile(lat, (size_t)k, 99);
    char extra[96];
    snprintf(extra, sizeof extra, "metric2=p99_us value2=%.6g signal=%s", p99, how);
    bench_result("xcrash", k, total, "p50_us", p50, extra);
    free(lat);
    bench_stop(rt, ctx);
    return 0;
}
