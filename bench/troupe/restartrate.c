/*
 * restartrate.c — how many restarts per second a supervisor sustains. A
 * one_for_one supervisor (troupe_sup.h; intensity UINT32_MAX within 1 s,
 * so it never gives up) has one permanent pooled child whose init counts
 * its start and then fails, so every incarnation exits abnormally as soon
 * as it starts and the supervisor starts the next one at once (no
 * backoff). The start that makes N + 1 (the first start plus N restarts)
 * sends "done" to main. Timed from tr_sup_start to that message; the
 * rate is N / time. A second figure is the rate over the first BURST
 * restarts (start BURST + 1 sends "burst"): an OTP supervisor walks the
 * list of its restarts within the period on every restart, so its rate
 * falls as that list grows; the burst shows it before the list is long.
 * The Erlang peer's child does the same: it counts its start and stops
 * at once.
 * Checks: the supervisor (monitored) is still alive; after it stopped the child
 * (untimed) it lists at least N restarts and the child's last exit is its
 * init's error; the starts counted by the child agree with the
 * supervisor's restart count. Usage: troupe_restartrate N
 */
#include "bench.h"

#include <stdatomic.h>
#include <troupe_sup.h>

static atomic_long starts; /* incarnations whose init ran */
static long target;        /* the start that reports: N + 1 */
#define BURST 2000         /* the burst figure's restarts (N must be larger) */
static tr_ref main_ref;    /* written before the supervisor starts */

static int crasher_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    long start = atomic_fetch_add(&starts, 1) + 1;
    if (start == BURST + 1)
        bench_check(tr_send_tag(ctx, main_ref, "burst"), "report the burst");
    if (start == target)
        bench_check(tr_send_tag(ctx, main_ref, "done"), "report done");
    return 5; /* fail at once: {TR_EXIT_ERROR, 5} */
}

static int crasher_handle(tr_ctx *ctx, void *state, const tr_msg *m) { return TR_OK; }

static const tr_behaviour crasher_beh = {
    .name = "crasher", .init = crasher_init, .handle = crasher_handle};

static bool tag_or_down(const tr_msg *m, void *tag)
{
    return tr_msg_is(m, tag) || tr_msg_is(m, TR_TAG_DOWN);
}

/* Waits for tag from the child; a DOWN of the monitored supervisor (it
 * gave up) fails the run. */
static void await(tr_ctx *ctx, const char *tag)
{
    tr_msg *m;
    bench_check(tr_receive(ctx, NULL, tag_or_down, (void *)tag, 600000, &m), tag);
    if (tr_msg_is(m, TR_TAG_DOWN)) {
        tr_reason why;
        bench_check(tr_msg_down_info(m, NULL, NULL, &why), "read DOWN");
        bench_fail("restartrate: the supervisor exited: %s %d %s", tr_exit_kind_name(why.kind),
                   why.code, why.text);
    }
    tr_msg_free(m);
}

int main(int argc, char **argv)
{
    long n = bench_arg(argc, argv, 1, 50000);
    if (n <= BURST)
        bench_fail("restartrate: N must be larger than %d", BURST);
    tr_runtime *rt;
    tr_ctx *ctx = bench_start(&rt);
    target = n + 1;
    main_ref = tr_self(ctx);

    tr_sup_child_spec kid = TR_SUP_CHILD_SPEC_INIT;
    kid.id = "crasher";
    kid.behaviour = &crasher_beh;
    kid.restart = TR_SUP_PERMANENT;
    tr_sup_spec spec = TR_SUP_SPEC_INIT;
    spec.strategy = TR_SUP_ONE_FOR_ONE;
    spec.intensity = UINT32_MAX;
    spec.period_ms = 1000;
    spec.children = &kid;
    spec.nchildren = 1;

    tr_ref sup;
    tr_monitor_id mon;
    double t0 = bench_now();
    bench_check(tr_sup_start(&sup, ctx, &spec, NULL), "start the supervisor");
    bench_check(tr_monitor(ctx, sup, &mon), "monitor the supervisor");
    await(ctx, "burst");
    double burst_secs = bench_now() - t0;
    await(ctx, "done");
    double secs = bench_now() - t0;

    /* Untimed: stop the child, then compare the counts. */
    bench_check(tr_sup_terminate_child(ctx, sup, "crasher", 30000), "stop the child");
    tr_sup_child_info *info;
    uint32_t nk;
    bench_check(tr_sup_which_children(&info, &nk, ctx, sup, 30000), "list the children");
    if (nk != 1 || info[0].state != TR_SUP_CHILD_STOPPED || info[0].restarts < (uint32_t)n)
        bench_fail("restartrate: %u children, %u restarts (expected at least %ld)", nk,
                   nk ? info[0].restarts : 0, n);
    long restarts = (long)info[0].restarts, counted = atomic_load(&starts);
    /* Every incarnation's init ran, except perhaps the last one's if the
     * stop reached it first. */
    if (counted != restarts + 1 && counted != restarts)
        bench_fail("restartrate: %ld starts counted, %ld restarts listed", counted, restarts);
    if (info[0].last_exit.kind != TR_EXIT_ERROR || info[0].last_exit.code != 5) {
        if (!(counted == restarts && info[0].last_exit.kind == TR_EXIT_SHUTDOWN))
            bench_fail("restartrate: last exit %s %d", tr_exit_kind_name(info[0].last_exit.kind),
                       info[0].last_exit.code);
    }
    tr_sup_children_free(info);

    tr_msg *down;
    tr_reason shut = tr_reason_make(TR_EXIT_SHUTDOWN, 0, NULL);
    bench_check(tr_exit(ctx, sup, &shut), "stop the supervisor");
    bench_check(tr_receive(ctx, TR_TAG_DOWN, NULL, NULL, 30000, &down), "supervisor DOWN");
    tr_reason why;
    bench_check(tr_msg_down_info(down, NULL, NULL, &why), "read DOWN");
    tr_msg_free(down);
    if (why.kind != TR_EXIT_SHUTDOWN) /* it gave up, or failed, before we stopped it */
        bench_fail("restartrate: the supervisor ended with %s %d %s", tr_exit_kind_name(why.kind),
                   why.code, why.text);

    char extra[64];
    snprintf(extra, sizeof extra, "metric2=burst_restarts_per_s value2=%.6g",
             (double)BURST / burst_secs);
    bench_result("restartrate", n, secs, "restarts_per_s", (double)n / secs, extra);
    bench_stop(rt, ctx);
    return 0;
}
