/*
 * test_bounded — bounded mailboxes and their overflow policies.
 *
 * The receiver is a thread actor that first waits, selectively, for a "go"
 * that comes from a timer (timers travel in the control lane, so a full
 * mailbox still takes it). Until then it receives nothing, so its mailbox
 * fills deterministically. Afterwards it forwards everything to main.
 *
 * reject: TR_EFULL, the sender keeps its message, rejected_full counts it.
 * drop newest: sends succeed, the excess is counted, the first N arrive.
 * drop oldest: sends succeed, the excess is counted, the last N arrive.
 * System signals (DOWN, EXIT, timers) still arrive when the mailbox is full.
 */
#include "check.h"

static tr_ref g_main;

/* Forwards "m" as "seen" <v>, an exit message as "seen_exit", a DOWN as
 * "seen_down", "end" as "seen_end". Links to and monitors its args ref
 * first when given one, trapping exits. */
static int gate_run(tr_ctx *ctx, void *state)
{
    tr_msg *m = NULL;
    tr_err e;
    CHECK_OK(tr_receive(ctx, "go", NULL, NULL, TR_FOREVER, &m));
    tr_msg_free(m);
    while ((e = tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &m)) == TR_OK) {
        if (tr_msg_is(m, "m")) {
            int64_t v = -1;
            CHECK_OK(tr_msg_int(m, &v));
            CHECK_OK(tr_send_int(ctx, g_main, "seen", v));
        } else if (tr_msg_is(m, TR_TAG_EXIT)) {
            CHECK_OK(tr_send_tag(ctx, g_main, "seen_exit"));
        } else if (tr_msg_is(m, TR_TAG_DOWN)) {
            CHECK_OK(tr_send_tag(ctx, g_main, "seen_down"));
        } else if (tr_msg_is(m, "end")) {
            CHECK_OK(tr_send_tag(ctx, g_main, "seen_end"));
        }
        tr_msg_free(m);
    }
    CHECK_ERR(e, TR_ESTOPPED);
    return 0;
}

static int gate_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    if (args) {
        tr_ref victim = test_read_ref(args);
        tr_monitor_id mon;
        CHECK_OK(tr_link(ctx, victim));
        CHECK_OK(tr_monitor(ctx, victim, &mon));
    }
    return 0;
}

static const tr_behaviour gate_b = {"gate", 0, gate_init, NULL, NULL, gate_run};

/* The pooled twin of the gate (no "go": it is held back another way). */
static int pgate_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    if (tr_msg_is(m, "m")) {
        int64_t v = -1;
        CHECK_OK(tr_msg_int(m, &v));
        CHECK_OK(tr_send_int(ctx, g_main, "seen", v));
    } else if (tr_msg_is(m, "end")) {
        CHECK_OK(tr_send_tag(ctx, g_main, "seen_end"));
    }
    return 0;
}

static const tr_behaviour pgate_b = {"pgate", 0, NULL, pgate_handle, NULL, NULL};

/* Holds the only worker of a one-worker runtime until released, so that
 * a pooled actor's mailbox fills while it cannot run. Test-only: real
 * handlers must not block. */
static atomic_int g_blocking, g_release;

static int blocker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    int64_t deadline = test_now_ms() + TEST_WAIT_MS;
    atomic_store(&g_blocking, 1);
    while (!atomic_load(&g_release) && test_now_ms() < deadline)
        test_sleep_ms(1);
    atomic_store(&g_blocking, 0);
    return 0;
}

static const tr_behaviour blocker_b = {"blocker", 0, NULL, blocker_handle, NULL, NULL};

/* "fail" makes it exit with an error. */
static int victim_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    return tr_msg_is(m, "fail") ? 13 : 0;
}

static const tr_behaviour victim_b = {"victim", 0, NULL, victim_handle, NULL, NULL};

static tr_ref spawn_gate(tr_ctx *ctx, uint32_t limit, tr_overflow policy, tr_msg *args)
{
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_THREAD;
    o.mailbox_limit = limit;
    o.overflow = policy;
    o.trap_exit = true;
    tr_ref r;
    CHECK_OK(tr_spawn(&r, ctx, &gate_b, args, &o));
    return r;
}

static void open_gate(tr_ctx *ctx, tr_ref gate)
{
    tr_msg *go = NULL;
    tr_timer_id id;
    CHECK_OK(tr_msg_new(&go, ctx, "go"));
    CHECK_OK(tr_send_after(ctx, gate, go, 1, &id));
}

/* The gate has forwarded exactly want[0..n) and then "end". */
static void expect_seen(tr_ctx *ctx, tr_ref gate, const int64_t *want, int n)
{
    for (int i = 0; i < n; i++) {
        tr_msg *m = test_recv(ctx, NULL);
        int64_t v = -1;
        if (!tr_msg_is(m, "seen"))
            TEST_FAIL("got '%s', expected seen %" PRId64, tr_msg_tag(m), want[i]);
        CHECK_OK(tr_msg_int(m, &v));
        if (v != want[i])
            TEST_FAIL("seen %" PRId64 ", expected %" PRId64, v, want[i]);
        tr_msg_free(m);
    }
    CHECK_OK(tr_send_tag(ctx, gate, "end")); /* the mailbox has room again */
    tr_msg *m = test_recv(ctx, NULL);
    if (!tr_msg_is(m, "seen_end"))
        TEST_FAIL("got '%s' after the expected messages", tr_msg_tag(m));
    tr_msg_free(m);
}

static void reject(tr_ctx *ctx, tr_runtime *rt)
{
    tr_ref gate = spawn_gate(ctx, 4, TR_OVERFLOW_REJECT, NULL);
    for (int i = 0; i < 4; i++)
        CHECK_OK(tr_send_int(ctx, gate, "m", i));
    tr_counters c0 = test_counters(rt);
    tr_msg *kept = NULL;
    CHECK_OK(tr_msg_new(&kept, ctx, "m"));
    CHECK_OK(tr_pack_int(kept, 4));
    CHECK_ERR(tr_send(ctx, gate, kept), TR_EFULL);
    CHECK(tr_msg_is(kept, "m")); /* the sender keeps it */
    CHECK_ERR(tr_send_int(ctx, gate, "m", 99), TR_EFULL);
    tr_counters c1 = test_counters(rt);
    CHECK(c1.rejected_full == c0.rejected_full + 2);
    CHECK(c1.dropped_overflow == c0.dropped_overflow);
    open_gate(ctx, gate);
    int64_t want[] = {0, 1, 2, 3};
    expect_seen(ctx, gate, want, 4);
    CHECK_OK(tr_send(ctx, gate, kept)); /* and may send it again */
    int64_t want2[] = {4};
    expect_seen(ctx, gate, want2, 1);
}

static void drop(tr_ctx *ctx, tr_runtime *rt, tr_overflow policy)
{
    tr_ref gate = spawn_gate(ctx, 4, policy, NULL);
    tr_counters c0 = test_counters(rt);
    for (int i = 0; i < 10; i++)
        CHECK_OK(tr_send_int(ctx, gate, "m", i));
    open_gate(ctx, gate);
    int64_t newest_dropped[] = {0, 1, 2, 3}, oldest_dropped[] = {6, 7, 8, 9};
    expect_seen(ctx, gate, policy == TR_OVERFLOW_DROP_NEWEST ? newest_dropped : oldest_dropped, 4);
    /* Read once everything has settled: a policy may drop at either end. */
    WAIT_UNTIL(test_counters(rt).dropped_overflow == c0.dropped_overflow + 6);
    tr_counters c1 = test_counters(rt);
    CHECK(c1.dead_letters >= c0.dead_letters + 6);
    CHECK(c1.rejected_full == c0.rejected_full);
}

static void signals_when_full(tr_ctx *ctx, tr_overflow policy)
{
    tr_ref victim;
    tr_monitor_id mon;
    CHECK_OK(tr_spawn(&victim, ctx, &victim_b, NULL, NULL));
    CHECK_OK(tr_monitor(ctx, victim, &mon));
    tr_ref gate = spawn_gate(ctx, 2, policy, test_msg_ref(ctx, "args", victim));
    CHECK_OK(tr_send_int(ctx, gate, "m", 0));
    CHECK_OK(tr_send_int(ctx, gate, "m", 1));
    if (policy == TR_OVERFLOW_REJECT)
        CHECK_ERR(tr_send_int(ctx, gate, "m", 2), TR_EFULL);
    CHECK_OK(tr_send_tag(ctx, victim, "fail"));
    (void)test_wait_down(ctx, victim);
    open_gate(ctx, gate); /* a timer, into the full mailbox */

    int seen_m = 0, seen_exit = 0, seen_down = 0;
    for (int i = 0; i < 4; i++) {
        tr_msg *m = test_recv(ctx, NULL);
        if (tr_msg_is(m, "seen"))
            seen_m++;
        else if (tr_msg_is(m, "seen_exit"))
            seen_exit++;
        else if (tr_msg_is(m, "seen_down"))
            seen_down++;
        else
            TEST_FAIL("unexpected '%s'", tr_msg_tag(m));
        tr_msg_free(m);
    }
    CHECK(seen_m == 2 && seen_exit == 1 && seen_down == 1);
    CHECK_OK(tr_send_tag(ctx, gate, "end"));
    tr_msg_free(test_recv(ctx, "seen_end"));
}

static void pooled_policies(void)
{
    static const int64_t all[] = {0, 1, 2, 3}, last[] = {6, 7, 8, 9};
    tr_ctx *ctx;
    tr_runtime *rt = test_start(1, &ctx);
    g_main = tr_self(ctx);
    tr_ref blocker;
    CHECK_OK(tr_spawn(&blocker, ctx, &blocker_b, NULL, NULL));
    for (int p = TR_OVERFLOW_REJECT; p <= TR_OVERFLOW_DROP_OLDEST; p++) {
        tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
        tr_ref gate;
        o.mailbox_limit = 4;
        o.overflow = (tr_overflow)p;
        CHECK_OK(tr_spawn(&gate, ctx, &pgate_b, NULL, &o));
        atomic_store(&g_release, 0);
        CHECK_OK(tr_send_tag(ctx, blocker, "block"));
        WAIT_UNTIL(atomic_load(&g_blocking) == 1);
        tr_counters c0 = test_counters(rt);
        for (int i = 0; i < 10; i++) {
            tr_err e = tr_send_int(ctx, gate, "m", i);
            if (p == TR_OVERFLOW_REJECT && i >= 4)
                CHECK_ERR(e, TR_EFULL);
            else
                CHECK_OK(e);
        }
        atomic_store(&g_release, 1);
        expect_seen(ctx, gate, p == TR_OVERFLOW_DROP_OLDEST ? last : all, 4);
        if (p == TR_OVERFLOW_REJECT) {
            CHECK(test_counters(rt).rejected_full == c0.rejected_full + 6);
        } else {
            WAIT_UNTIL(test_counters(rt).dropped_overflow == c0.dropped_overflow + 6);
            CHECK(test_counters(rt).dead_letters >= c0.dead_letters + 6);
        }
        WAIT_UNTIL(atomic_load(&g_blocking) == 0);
    }
    test_finish(rt, ctx);
}

int main(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    g_main = tr_self(ctx);
    printf("reject\n");
    reject(ctx, rt);
    printf("drop newest\n");
    drop(ctx, rt, TR_OVERFLOW_DROP_NEWEST);
    printf("drop oldest\n");
    drop(ctx, rt, TR_OVERFLOW_DROP_OLDEST);
    printf("signals, reject\n");
    signals_when_full(ctx, TR_OVERFLOW_REJECT);
    printf("signals, drop oldest\n");
    signals_when_full(ctx, TR_OVERFLOW_DROP_OLDEST);
    test_finish(rt, ctx);
    printf("pooled receivers\n");
    pooled_policies();
    printf("ok\n");
    return 0;
}
