/*
 * test_watchdog — handlers and thread actors that run past the budget are
 * reported, with the actor's reference, kind and name; the rest of the
 * pool keeps serving meanwhile; a process actor's overrun is reported as
 * its stand-in and killing it ends the process; steady short work is never
 * reported.
 */
#include "check.h"

#include <signal.h>

#define BUDGET_MS 100

static void sleep_ms(int ms) { test_sleep_ms(ms); }

/* A pooled or process actor: "block" sleeps in the handler; "ping" answers. */
static int sleeper_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    (void)state;
    if (tr_msg_is(m, "block")) {
        sleep_ms(4 * BUDGET_MS);
        return 0;
    }
    if (tr_msg_is(m, "forever")) {
        for (;;)
            sleep_ms(1000);
    }
    if (tr_msg_is(m, "ping")) {
        tr_msg *r;
        CHECK_OK(tr_msg_new(&r, ctx, "pong"));
        return tr_reply(ctx, m, r);
    }
    return 0;
}

static const tr_behaviour sleeper = {"sleeper", 0, NULL, sleeper_handle, NULL, NULL};

/* A thread actor that blocks outside tr_receive when told. */
static int blocker_run(tr_ctx *ctx, void *state)
{
    (void)state;
    tr_msg *m;
    while (tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &m) == TR_OK) {
        bool block = tr_msg_is(m, "block");
        tr_msg_free(m);
        if (block)
            sleep_ms(4 * BUDGET_MS);
    }
    return 0;
}

static const tr_behaviour blocker = {"blocker", 0, NULL, NULL, NULL, blocker_run};

/* A thread actor that blocks before it ever reaches tr_receive. */
static int early_run(tr_ctx *ctx, void *state)
{
    (void)state;
    sleep_ms(4 * BUDGET_MS);
    tr_msg *m;
    while (tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &m) == TR_OK)
        tr_msg_free(m);
    return 0;
}

static const tr_behaviour early = {"early", 0, NULL, NULL, NULL, early_run};

static tr_overrun recv_overrun(tr_ctx *ctx)
{
    tr_msg *m = test_recv(ctx, TR_TAG_OVERRUN);
    tr_overrun o;
    CHECK_OK(tr_msg_overrun_info(m, &o));
    tr_msg_free(m);
    return o;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    tr_runtime_opts opts = TR_RUNTIME_OPTS_INIT;
    opts.workers = 2;
    opts.watchdog_ms = BUDGET_MS;
    tr_runtime *rt;
    tr_ctx *ctx;
    CHECK_OK(tr_runtime_start(&rt, &opts));
    CHECK_OK(tr_attach(&ctx, rt));
    CHECK_OK(tr_watchdog_subscribe(ctx, true));

    /* Steady short work for several budgets: never reported. */
    tr_ref busy;
    CHECK_OK(tr_spawn(&busy, ctx, &sleeper, NULL, NULL));
    int64_t until = test_now_ms() + 3 * BUDGET_MS;
    while (test_now_ms() < until) {
        tr_msg *req, *rep;
        CHECK_OK(tr_msg_new(&req, ctx, "ping"));
        CHECK_OK(tr_call(ctx, busy, req, TEST_WAIT_MS, &rep));
        tr_msg_free(rep);
    }
    test_recv_none(ctx, TR_TAG_OVERRUN, BUDGET_MS);

    /* A pooled handler that blocks is reported; the other worker serves. */
    tr_ref slow;
    CHECK_OK(tr_spawn(&slow, ctx, &sleeper, NULL, NULL));
    CHECK_OK(tr_send_tag(ctx, slow, "block"));
    tr_overrun o = recv_overrun(ctx);
    CHECK(tr_ref_eq(o.who, slow) && o.kind == TR_POOLED && strcmp(o.name, "sleeper") == 0);
    CHECK(o.elapsed_ms >= BUDGET_MS);
    tr_msg *req, *rep;
    CHECK_OK(tr_msg_new(&req, ctx, "ping"));
    CHECK_OK(tr_call(ctx, busy, req, TEST_WAIT_MS, &rep)); /* while slow still blocks */
    tr_msg_free(rep);
    WAIT_UNTIL(test_counters(rt).overruns >= 1);

    /* A thread actor outside tr_receive is reported. */
    tr_spawn_opts to = TR_SPAWN_OPTS_INIT;
    to.kind = TR_THREAD;
    tr_ref th;
    CHECK_OK(tr_spawn(&th, ctx, &blocker, NULL, &to));
    CHECK_OK(tr_send_tag(ctx, th, "block"));
    o = recv_overrun(ctx);
    CHECK(tr_ref_eq(o.who, th) && o.kind == TR_THREAD && strcmp(o.name, "blocker") == 0);

    /* One blocked from its start: the time reported is the time it ran
     * (well under 2 s), not the time since the clock began. */
    CHECK_OK(tr_spawn(&th, ctx, &early, NULL, &to));
    o = recv_overrun(ctx);
    CHECK(tr_ref_eq(o.who, th) && strcmp(o.name, "early") == 0);
    CHECK(o.elapsed_ms >= BUDGET_MS && o.elapsed_ms < 20 * BUDGET_MS);

    /* A process actor's overrun comes from its stand-in; killing it ends
     * the process at once. */
    tr_spawn_opts po = TR_SPAWN_OPTS_INIT;
    po.kind = TR_PROCESS;
    tr_ref proc;
    CHECK_OK(tr_spawn(&proc, ctx, &sleeper, NULL, &po));
    CHECK_OK(tr_send_tag(ctx, proc, "forever"));
    o = recv_overrun(ctx);
    CHECK(tr_ref_eq(o.who, proc) && o.kind == TR_PROCESS && strcmp(o.name, "sleeper") == 0);
    tr_monitor_id id;
    CHECK_OK(tr_monitor(ctx, proc, &id));
    CHECK_OK(tr_exit(ctx, proc, &(tr_reason){TR_EXIT_KILLED, 0, "overran"}));
    tr_msg *down = test_recv(ctx, TR_TAG_DOWN);
    tr_reason why;
    CHECK_OK(tr_msg_down_info(down, NULL, NULL, &why));
    tr_msg_free(down);
    CHECK(why.kind == TR_EXIT_KILLED);

    /* Unsubscribed: no more messages (the report goes to stderr). */
    CHECK_OK(tr_watchdog_subscribe(ctx, false));
    CHECK_OK(tr_send_tag(ctx, slow, "block"));
    test_recv_none(ctx, TR_TAG_OVERRUN, 3 * BUDGET_MS);
    WAIT_UNTIL(test_counters(rt).overruns >= 5);

    /* Bad calls. */
    CHECK_ERR(tr_watchdog_subscribe(NULL, true), TR_EINVAL);
    CHECK_ERR(tr_msg_overrun_info(NULL, &o), TR_EINVAL);
    CHECK_OK(tr_msg_new(&req, ctx, "other"));
    CHECK_ERR(tr_msg_overrun_info(req, &o), TR_ETYPE);
    tr_msg_free(req);

    test_finish(rt, ctx);
    printf("watchdog: ok\n");
    return 0;
}
