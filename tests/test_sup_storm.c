/*
 * test_sup_storm — supervisors under restart storms.
 *
 * A pooled child that fails in init, restarted without backoff, must be
 * restarted over and over without loss or leak; a named child crashed
 * from outside again and again must be found by its name every time; a
 * process child that fails in init, with a backoff, must not be forked
 * more often than its backoff allows (a restart storm is not a fork
 * storm). The program prints what it measured (restarts per second,
 * microseconds per crash-to-restarted round trip) for the record; no
 * check depends on speed.
 */
#include "test_sup.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t restarts_of(tr_ctx *ctx, tr_ref sup, const char *id)
{
    listing l = list_children(ctx, sup);
    uint32_t r = listing_find(&l, id)->restarts;
    tr_sup_children_free(l.c);
    return r;
}

static tr_ref start_one(tr_ctx *ctx, const tr_sup_child_spec *kid, bool events)
{
    tr_sup_spec s = TR_SUP_SPEC_INIT;
    s.intensity = UINT32_MAX;
    s.period_ms = 1000;
    s.children = kid;
    s.nchildren = 1;
    if (events)
        s.events = tr_self(ctx);
    tr_ref sup;
    CHECK_OK(tr_sup_start(&sup, ctx, &s, NULL));
    return sup;
}

static void stop_one(tr_ctx *ctx, tr_ref sup)
{
    (void)watch(ctx, sup);
    tr_reason shut = tr_reason_make(TR_EXIT_SHUTDOWN, 0, NULL);
    CHECK_OK(tr_exit(ctx, sup, &shut));
    CHECK(test_wait_down(ctx, sup).kind == TR_EXIT_SHUTDOWN);
    drain(ctx, TR_SUP_TAG_EVENT);
    drain(ctx, "up");
    drain(ctx, "bye");
}

/* A child that dies in init, restarted as fast as the supervisor can. */
static void test_pooled_storm(tr_ctx *ctx, tr_runtime *rt)
{
    uint32_t n = TEST_SANITIZED ? 20000 : test_scale(200000);
    wargs fail;
    wargs_make(&fail, ctx, -1);
    tr_sup_child_spec kid = worker_spec("storm", &fail, TR_POOLED);
    uint64_t live_before = test_counters(rt).live_actors;
    double t0 = now_s();
    tr_ref sup = start_one(ctx, &kid, false);
    WAIT_UNTIL(restarts_of(ctx, sup, "storm") >= n);
    double t1 = now_s();
    uint32_t done = restarts_of(ctx, sup, "storm");
    CHECK_OK(tr_sup_terminate_child(ctx, sup, "storm", TEST_WAIT_MS));
    listing l = list_children(ctx, sup);
    CHECK(l.n == 1 && l.c[0].state == TR_SUP_CHILD_STOPPED && l.c[0].restarts >= n);
    CHECK(l.c[0].last_exit.kind == TR_EXIT_ERROR && l.c[0].last_exit.code == 5);
    tr_sup_children_free(l.c);
    stop_one(ctx, sup);
    /* Every incarnation ended: nothing leaked. */
    WAIT_UNTIL(test_counters(rt).live_actors == live_before);
    printf("pooled restart storm: %u restarts in %.3f s = %.0f restarts/s\n", done, t1 - t0,
           (double)done / (t1 - t0));
}

/* Crash a named child from outside and find it again, many times. */
static void test_named_round_trips(tr_ctx *ctx, tr_runtime *rt)
{
    uint32_t n = test_scale(2000);
    wargs a;
    wargs_make(&a, ctx, 3);
    tr_sup_child_spec kid = worker_spec("named", &a, TR_POOLED);
    kid.spawn.name = "storm-named";
    tr_ref sup = start_one(ctx, &kid, true);
    ev_expect(ctx, TR_SUP_EV_STARTED, "named");
    tr_ref prev = TR_REF_NIL;
    double t0 = now_s();
    for (uint32_t i = 0; i < n; i++) {
        tr_ref r;
        CHECK_OK(tr_whereis(&r, rt, "storm-named"));
        CHECK(!tr_ref_eq(r, prev));
        CHECK_OK(tr_send_tag(ctx, r, "crash"));
        ev_expect(ctx, TR_SUP_EV_EXITED, "named");
        tr_sup_event ev = ev_expect(ctx, TR_SUP_EV_STARTED, "named");
        CHECK(ev.restarts == i + 1);
        prev = r;
    }
    double t1 = now_s();
    tr_ref last;
    CHECK_OK(tr_whereis(&last, rt, "storm-named"));
    CHECK(call_int(ctx, last, "ping") == 3);
    stop_one(ctx, sup);
    printf("crash -> restarted -> reported round trip: %.1f us (%u rounds)\n", (t1 - t0) * 1e6 / n,
           n);
}

/* A process child failing in init with a 20 ms backoff: at most one fork
 * per 20 ms, however fast it fails. */
static void test_process_backoff(tr_ctx *ctx)
{
    wargs fail;
    wargs_make(&fail, ctx, -1);
    tr_sup_child_spec kid = worker_spec("forky", &fail, TR_PROCESS);
    kid.backoff = (tr_sup_backoff){20, 20, 1.0, 0.0, 0};
    double t0 = now_s();
    tr_ref sup = start_one(ctx, &kid, false);
    WAIT_UNTIL(restarts_of(ctx, sup, "forky") >= 5);
    uint32_t r = restarts_of(ctx, sup, "forky");
    double t1 = now_s();
    CHECK_OK(tr_sup_terminate_child(ctx, sup, "forky", TEST_WAIT_MS));
    stop_one(ctx, sup);
    /* Each restart waited 20 ms after the previous exit: r restarts took
     * at least 20 * r ms, all of it inside [t0, t1]. However slow the
     * machine, the count cannot beat that bound. */
    double bound = (t1 - t0) * 1000.0 / 20.0;
    CHECK((double)r <= bound);
    printf("process child failing in init, 20 ms backoff: %u forks in %.3f s (bound %.0f)\n", r,
           t1 - t0, bound);
}

int main(void)
{
    char tmpdir[] = "/tmp/troupe-sup-storm-XXXXXX";
    CHECK(mkdtemp(tmpdir) != NULL);
    setenv("TMPDIR", tmpdir, 1);
    signal(SIGPIPE, SIG_IGN);
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    fprintf(stderr, "-- pooled_storm\n");
    test_pooled_storm(ctx, rt);
    fprintf(stderr, "-- named_round_trips\n");
    test_named_round_trips(ctx, rt);
    fprintf(stderr, "-- process_backoff\n");
    test_process_backoff(ctx);
    test_finish(rt, ctx);
    CHECK(rmdir(tmpdir) == 0);
    printf("sup_storm: ok\n");
    return 0;
}
