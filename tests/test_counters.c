/*
 * test_counters — tr_runtime_counters moves as documented in a simple,
 * fully known scenario: spawns, exits, sends, deliveries, dead letters,
 * timers, live actors and the mailbox high-water mark.
 */
#include "check.h"

#include <pthread.h>

static tr_ref g_main;
static atomic_int g_terminated;

/* Counts "n"; at ten it tells main. "stop" exits normally. */
static int counting_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    if (tr_msg_is(m, "stop")) {
        tr_reason why = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
        tr_stop_self(ctx, &why);
    } else if (++*(int *)state == 10) {
        CHECK_OK(tr_send_tag(ctx, g_main, "ten"));
    }
    return 0;
}

static void counting_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    atomic_fetch_add(&g_terminated, 1);
}

static const tr_behaviour counting_b = {"counting",      sizeof(int),        NULL,
                                        counting_handle, counting_terminate, NULL};

/* Receives nothing until "go", then reports how many messages it got. */
static int hoarder_run(tr_ctx *ctx, void *state)
{
    tr_msg *m = NULL;
    CHECK_OK(tr_receive(ctx, "go", NULL, NULL, TR_FOREVER, &m));
    tr_msg_free(m);
    int64_t n = 0;
    while (tr_receive(ctx, "x", NULL, NULL, 0, &m) == TR_OK) {
        tr_msg_free(m);
        n++;
    }
    CHECK_OK(tr_send_int(ctx, g_main, "hoarded", n));
    return 0; /* a normal exit */
}

static const tr_behaviour hoarder_b = {"hoarder", 0, NULL, NULL, counting_terminate, hoarder_run};

/* Attaches, says hello, takes only "last", detaches with the rest queued. */
static void *leaver_main(void *rt)
{
    tr_ctx *ctx;
    tr_msg *m = NULL;
    CHECK_OK(tr_attach(&ctx, rt));
    CHECK_OK(tr_send_tag(ctx, g_main, "hello"));
    CHECK_OK(tr_receive(ctx, "last", NULL, NULL, TEST_WAIT_MS, &m));
    tr_msg_free(m);
    tr_detach(ctx);
    return NULL;
}

int main(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(1, &ctx);
    g_main = tr_self(ctx);
    tr_counters c0 = test_counters(rt);
    CHECK(c0.dead_letters == 0 && c0.rejected_full == 0 && c0.dropped_overflow == 0);
    CHECK(c0.late_replies == 0 && c0.timers_fired == 0);
    CHECK(c0.exited == 0);

    /* Three actors: spawned and live move by three. */
    tr_ref a[3];
    tr_monitor_id mon[3];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(tr_spawn(&a[i], ctx, &counting_b, NULL, NULL));
        CHECK_OK(tr_monitor(ctx, a[i], &mon[i]));
    }
    tr_counters c1 = test_counters(rt);
    CHECK(c1.spawned == c0.spawned + 3);
    CHECK(c1.live_actors == c0.live_actors + 3);
    CHECK(c1.exited == c0.exited);

    /* Ten messages to one of them, one back. */
    for (int i = 0; i < 10; i++)
        CHECK_OK(tr_send_int(ctx, a[0], "n", i));
    tr_msg_free(test_recv(ctx, "ten"));
    WAIT_UNTIL(test_counters(rt).sent >= c1.sent + 11);
    WAIT_UNTIL(test_counters(rt).delivered >= c1.delivered + 10);
    tr_counters c2 = test_counters(rt);
    CHECK(c2.sent >= c2.delivered);
    CHECK(c2.dead_letters == c0.dead_letters);

    /* They exit: exited catches up with spawned, live goes back. */
    for (int i = 0; i < 3; i++)
        CHECK_OK(tr_send_tag(ctx, a[i], "stop"));
    for (int i = 0; i < 3; i++)
        CHECK(test_wait_down(ctx, a[i]).kind == TR_EXIT_NORMAL);
    WAIT_UNTIL(test_counters(rt).exited == c0.exited + 3);
    CHECK(atomic_load(&g_terminated) == 3);
    WAIT_UNTIL(test_counters(rt).live_actors == c0.live_actors);
    tr_counters c3 = test_counters(rt);
    CHECK(c3.spawned == c0.spawned + 3);

    /* A send to one of them is a dead letter. */
    CHECK_ERR(tr_send_tag(ctx, a[1], "late"), TR_ENOACTOR);
    CHECK(test_counters(rt).dead_letters == c3.dead_letters + 1);

    /* A timer counts when it fires. */
    tr_msg *t = NULL;
    tr_timer_id tid;
    CHECK_OK(tr_msg_new(&t, ctx, "tick"));
    CHECK_OK(tr_send_after(ctx, tr_self(ctx), t, 1, &tid));
    tr_msg_free(test_recv(ctx, "tick"));
    WAIT_UNTIL(test_counters(rt).timers_fired == c3.timers_fired + 1);

    /* A mailbox 50 deep raises the high-water mark to at least 50. */
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_THREAD;
    tr_ref h;
    tr_monitor_id hm;
    CHECK_OK(tr_spawn(&h, ctx, &hoarder_b, NULL, &o));
    CHECK_OK(tr_monitor(ctx, h, &hm));
    for (int i = 0; i < 50; i++)
        CHECK_OK(tr_send_int(ctx, h, "x", i));
    CHECK_OK(tr_send_tag(ctx, h, "go"));
    CHECK(test_recv_int(ctx, "hoarded") == 50);
    WAIT_UNTIL(test_counters(rt).max_mailbox_depth >= 50);
    CHECK(test_wait_down(ctx, h).kind == TR_EXIT_NORMAL);
    WAIT_UNTIL(test_counters(rt).exited == c0.exited + 4);

    /* A detaching thread's queued messages become dead letters. */
    pthread_t th;
    tr_counters c5 = test_counters(rt);
    CHECK(pthread_create(&th, NULL, leaver_main, rt) == 0);
    tr_msg *hello = test_recv(ctx, "hello");
    tr_ref leaver = tr_msg_from(hello);
    tr_msg_free(hello);
    for (int i = 0; i < 5; i++)
        CHECK_OK(tr_send_int(ctx, leaver, "left", i));
    CHECK_OK(tr_send_tag(ctx, leaver, "last"));
    CHECK(pthread_join(th, NULL) == 0);
    WAIT_UNTIL(test_counters(rt).dead_letters == c5.dead_letters + 5);

    /* After the stop, counters stay readable and add up. */
    tr_detach(ctx);
    CHECK_OK(tr_runtime_stop(rt, TR_STOP_DRAIN));
    tr_counters c4 = test_counters(rt);
    CHECK(c4.live_actors == 0);
    CHECK(c4.spawned == c4.exited);
    CHECK(c4.spawned >= c0.spawned + 4);
    CHECK(c4.sent >= c4.delivered);
    CHECK(c4.rejected_full == 0 && c4.dropped_overflow == 0 && c4.late_replies == 0);
    tr_runtime_free(rt);
    printf("ok\n");
    return 0;
}
