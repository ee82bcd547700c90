/*
 * xspawn.c — process-actor spawn latency: main (attached) spawns a
 * process actor (TR_PROCESS) and times from tr_spawn to the first reply
 * from the child (a tr_call "hello" made right after the spawn), K times
 * one after another. Between spawns, untimed, the child is told to stop
 * and main waits for its DOWN, so one child lives at a time. Reports the
 * median and p99 in microseconds; checks that every spawn answered and
 * every child ended normally. Usage: troupe_xspawn K
 */
#include "xbench.h"

/* Runs in the child: answers "hello" with its pid, stops on "quit". */
static int child_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    if (tr_msg_is_request(m))
        return xbench_reply_pid(ctx, m, "hello");
    if (tr_msg_is(m, "quit")) {
        tr_reason why = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
        tr_stop_self(ctx, &why);
    }
    return TR_OK;
}

static const tr_behaviour child_beh = {.name = "spawned", .handle = child_handle};

int main(int argc, char **argv)
{
    long k = bench_arg(argc, argv, 1, 200);
    tr_runtime *rt;
    tr_ctx *ctx = bench_start(&rt);
    double *lat = calloc((size_t)k, sizeof *lat);
    if (lat == NULL)
        bench_fail("out of memory");
    double total = 0;
    for (long i = 0; i < k; i++) {
        tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
        o.kind = TR_PROCESS;
        tr_ref r;
        tr_msg *hello, *reply = NULL;
        tr_monitor_id mon;
        int64_t pid = 0;

        bench_check(tr_msg_new(&hello, ctx, "hello"), "new hello");
        double t0 = bench_now();
        bench_check(tr_spawn(&r, ctx, &child_beh, NULL, &o), "spawn process actor");
        bench_check(tr_call(ctx, r, hello, 30000, &reply), "first request to the child");
        double t1 = bench_now();
        lat[i] = (t1 - t0) * 1e6;
        total += t1 - t0;

        bench_check(tr_msg_int(reply, &pid), "read the child's pid");
        tr_msg_free(reply);
        if (pid == getpid() || pid <= 0)
            bench_fail("xspawn: the child answered from pid %lld", (long long)pid);
        bench_check(tr_monitor(ctx, r, &mon), "monitor the child");
        bench_check(tr_send_tag(ctx, r, "quit"), "send quit");
        tr_msg *down;
        tr_ref who;
        tr_monitor_id id;
        tr_reason why;
        bench_check(tr_receive(ctx, TR_TAG_DOWN, NULL, NULL, 30000, &down), "wait for DOWN");
        bench_check(tr_msg_down_info(down, &who, &id, &why), "read DOWN");
        tr_msg_free(down);
        if (id != mon || !tr_ref_eq(who, r) || why.kind != TR_EXIT_NORMAL)
            bench_fail("xspawn: child %ld ended with %s (%d) %s", i, tr_exit_kind_name(why.kind),
                       why.code, why.text);
    }
    double p50 = xbench_percentile(lat, (size_t)k, 50);
    double p99 = xbench_percentile(lat, (size_t)k, 99);
    char extra[96];
    snprintf(extra, sizeof extra, "metric2=p99_us value2=%.6g", p99);
    bench_result("xspawn", k, total, "p50_us", p50, extra);
    free(lat);
    bench_stop(rt, ctx);
    return 0;
}
