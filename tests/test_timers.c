/*
 * test_timers — tr_send_after, tr_send_interval and tr_timer_cancel:
 * timers fire in deadline order and not before their delay, intervals tick
 * until cancelled or until their receiver exits, cancelling what already
 * fired says TR_ENOTFOUND, and timer messages reach a full bounded
 * mailbox (they travel in the control lane).
 */
#include "check.h"

static tr_ref g_main;

static tr_msg *tagged_int(tr_ctx *ctx, const char *tag, int64_t v)
{
    tr_msg *m = NULL;
    CHECK_OK(tr_msg_new(&m, ctx, tag));
    CHECK_OK(tr_pack_int(m, v));
    return m;
}

static void order_and_delay(tr_ctx *ctx, tr_runtime *rt)
{
    tr_timer_id a, b;
    uint64_t fired0 = test_counters(rt).timers_fired;
    int64_t t0 = test_now_ms();
    CHECK_OK(tr_send_after(ctx, tr_self(ctx), tagged_int(ctx, "late", 300), 300, &a));
    CHECK_OK(tr_send_after(ctx, tr_self(ctx), tagged_int(ctx, "early", 50), 50, &b));
    CHECK(a != b);

    tr_msg *m = test_recv(ctx, NULL);
    int64_t arrived = test_now_ms() - t0;
    CHECK(tr_msg_is(m, "early"));
    CHECK(tr_ref_is_nil(tr_msg_from(m)));
    CHECK(arrived >= 50 - 5); /* never before its delay (5 ms for clock grain) */
    tr_msg_free(m);
    m = test_recv(ctx, NULL);
    arrived = test_now_ms() - t0;
    CHECK(tr_msg_is(m, "late"));
    CHECK(arrived >= 300 - 5);
    int64_t v = 0;
    CHECK_OK(tr_msg_int(m, &v));
    CHECK(v == 300);
    tr_msg_free(m);
    WAIT_UNTIL(test_counters(rt).timers_fired >= fired0 + 2);

    /* Both fired: cancelling either is too late. */
    CHECK_ERR(tr_timer_cancel(ctx, a), TR_ENOTFOUND);
    CHECK_ERR(tr_timer_cancel(ctx, b), TR_ENOTFOUND);
}

static void cancel_before_firing(tr_ctx *ctx)
{
    tr_timer_id id;
    CHECK_OK(tr_send_after(ctx, tr_self(ctx), tagged_int(ctx, "never", 1), 300, &id));
    CHECK_OK(tr_timer_cancel(ctx, id));
    CHECK_ERR(tr_timer_cancel(ctx, id), TR_ENOTFOUND);
    test_recv_none(ctx, "never", 600);
}

static void interval_until_cancel(tr_ctx *ctx)
{
    tr_timer_id id;
    CHECK_OK(tr_send_interval(ctx, tr_self(ctx), tagged_int(ctx, "tick", 77), 20, &id));
    for (int i = 0; i < 5; i++) {
        tr_msg *m = test_recv(ctx, "tick");
        int64_t v = 0;
        CHECK_OK(tr_msg_int(m, &v)); /* every tick is a copy of the message */
        CHECK(v == 77);
        CHECK(tr_ref_is_nil(tr_msg_from(m)));
        tr_msg_free(m);
    }
    CHECK_OK(tr_timer_cancel(ctx, id));
    /* A tick already on its way may still land; after a quiet spell, none. */
    int stragglers = 0;
    tr_msg *m = NULL;
    while (tr_receive(ctx, "tick", NULL, NULL, 150, &m) == TR_OK) {
        tr_msg_free(m);
        if (++stragglers > 3)
            TEST_FAIL("an interval kept ticking after tr_timer_cancel returned TR_OK");
    }
    test_recv_none(ctx, "tick", 300);
    CHECK_ERR(tr_timer_cancel(ctx, id), TR_ENOTFOUND);
}

/* Exits normally at its third tick. */
static int ticked_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    int *n = state;
    if (tr_msg_is(m, "tick") && ++*n == 3) {
        tr_reason why = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
        tr_stop_self(ctx, &why);
    }
    return 0;
}

static const tr_behaviour ticked_b = {"ticked", sizeof(int), NULL, ticked_handle, NULL, NULL};

static void interval_stops_with_receiver(tr_ctx *ctx, tr_runtime *rt)
{
    tr_ref a;
    tr_monitor_id mon;
    tr_timer_id id;
    CHECK_OK(tr_spawn(&a, ctx, &ticked_b, NULL, NULL));
    CHECK_OK(tr_monitor(ctx, a, &mon));
    CHECK_OK(tr_send_interval(ctx, a, tagged_int(ctx, "tick", 1), 10, &id));
    tr_reason why = test_wait_down(ctx, a);
    CHECK(why.kind == TR_EXIT_NORMAL);
    test_sleep_ms(100);
    uint64_t f0 = test_counters(rt).timers_fired;
    test_sleep_ms(300); /* 30 periods */
    uint64_t f1 = test_counters(rt).timers_fired;
    if (f1 > f0 + 1)
        TEST_FAIL("an interval to an exited actor kept firing (%" PRIu64 " more)", f1 - f0);
}

/* A thread actor with a bounded mailbox full of user messages: it first
 * waits for timer messages only, then counts the user messages. */
static int gate_run(tr_ctx *ctx, void *state)
{
    tr_msg *m = NULL;
    CHECK_OK(tr_receive(ctx, "t1", NULL, NULL, TR_FOREVER, &m));
    tr_msg_free(m);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(tr_receive(ctx, "t2", NULL, NULL, TR_FOREVER, &m));
        tr_msg_free(m);
    }
    CHECK_OK(tr_send_tag(ctx, g_main, "gotticks"));
    int64_t users = 0;
    for (;;) {
        tr_err e = tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &m);
        if (e == TR_ESTOPPED)
            return 0;
        CHECK_OK(e);
        if (tr_msg_is(m, "u") && ++users == 2)
            CHECK_OK(tr_send_int(ctx, g_main, "drained", users));
        tr_msg_free(m);
    }
}

static const tr_behaviour gate_b = {"gate", 0, NULL, NULL, NULL, gate_run};

static void timers_into_full_mailbox(tr_ctx *ctx)
{
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_THREAD;
    o.mailbox_limit = 2;
    o.overflow = TR_OVERFLOW_REJECT;
    tr_ref g;
    tr_timer_id t1, t2;
    CHECK_OK(tr_spawn(&g, ctx, &gate_b, NULL, &o));
    CHECK_OK(tr_send_int(ctx, g, "u", 1));
    CHECK_OK(tr_send_int(ctx, g, "u", 2));
    CHECK_ERR(tr_send_int(ctx, g, "u", 3), TR_EFULL);
    CHECK_OK(tr_send_after(ctx, g, tagged_int(ctx, "t1", 0), 10, &t1));
    CHECK_OK(tr_send_interval(ctx, g, tagged_int(ctx, "t2", 0), 10, &t2));
    tr_msg_free(test_recv(ctx, "gotticks"));
    CHECK_OK(tr_timer_cancel(ctx, t2));
    CHECK(test_recv_int(ctx, "drained") == 2);
}

int main(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    g_main = tr_self(ctx);
    order_and_delay(ctx, rt);
    cancel_before_firing(ctx);
    interval_until_cancel(ctx);
    interval_stops_with_receiver(ctx, rt);
    timers_into_full_mailbox(ctx);
    CHECK_ERR(tr_timer_cancel(ctx, (tr_timer_id)0xdeadbeefull), TR_ENOTFOUND);
    test_finish(rt, ctx);
    printf("ok\n");
    return 0;
}
