/*
 * test_links — links, trapped exits, tr_exit, monitors, and terminate
 * running exactly once per actor.
 *
 * Each scenario drives "puppets": pooled actors that carry out commands
 * from main (link, unlink, trap, fail, stop, spawn-linked) and forward the
 * exit messages they trap. Main watches them with monitors.
 */
#include "check.h"

#include <pthread.h>

#define MAXP 64

static struct {
    tr_ref main;
    int next;                    /* puppets handed an index so far (main only) */
    atomic_int terminated[MAXP]; /* terminate calls per puppet */
    tr_reason reason[MAXP];      /* the reason terminate saw */
} g;

typedef struct puppet {
    int64_t idx;
} puppet;

static int puppet_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    CHECK(args != NULL);
    CHECK_OK(tr_msg_int(args, &((puppet *)state)->idx));
    return 0;
}

static void puppet_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    puppet *p = state;
    g.reason[p->idx] = *why;
    atomic_fetch_add(&g.terminated[p->idx], 1);
}

static tr_msg *idx_args(tr_ctx *ctx, int64_t idx)
{
    tr_msg *m = NULL;
    CHECK(idx < MAXP);
    CHECK_OK(tr_msg_new(&m, ctx, "args"));
    CHECK_OK(tr_pack_int(m, idx));
    return m;
}

static tr_msg *ref_kind_code(tr_ctx *ctx, const char *tag, tr_ref r, int64_t a, int64_t b)
{
    tr_msg *m = NULL;
    CHECK_OK(tr_msg_new(&m, ctx, tag));
    CHECK_OK(tr_pack_array(m, 3));
    CHECK_OK(tr_pack_ref(m, r));
    CHECK_OK(tr_pack_int(m, a));
    CHECK_OK(tr_pack_int(m, b));
    return m;
}

static void read_ref_kind_code(const tr_msg *m, tr_ref *r, int64_t *a, int64_t *b)
{
    tr_cursor c;
    uint32_t n;
    tr_cursor_init(&c, m);
    CHECK_OK(tr_cursor_array(&c, &n));
    CHECK(n == 3);
    CHECK_OK(tr_cursor_ref(&c, r));
    CHECK_OK(tr_cursor_int(&c, a));
    CHECK_OK(tr_cursor_int(&c, b));
}

static const tr_behaviour puppet_b;

/* Commands are [ref, a, b]; most answer "r" with an error code. */
static int puppet_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    tr_ref r = TR_REF_NIL;
    int64_t a = 0, b = 0;
    if (tr_msg_is(m, TR_TAG_EXIT)) {
        tr_reason why;
        CHECK_OK(tr_msg_exit_info(m, &r, &why));
        CHECK_OK(tr_send(ctx, g.main, ref_kind_code(ctx, "got_exit", r, why.kind, why.code)));
        return 0;
    }
    if (tr_msg_is(m, TR_TAG_DOWN)) {
        tr_reason why;
        tr_monitor_id id;
        CHECK_OK(tr_msg_down_info(m, &r, &id, &why));
        CHECK_OK(tr_send(ctx, g.main, ref_kind_code(ctx, "got_down", r, why.kind, why.code)));
        return 0;
    }
    read_ref_kind_code(m, &r, &a, &b);
    int64_t result = 0;
    if (tr_msg_is(m, "link")) {
        result = tr_link(ctx, r);
    } else if (tr_msg_is(m, "unlink")) {
        result = tr_unlink(ctx, r);
    } else if (tr_msg_is(m, "monitor")) {
        tr_monitor_id id;
        result = tr_monitor(ctx, r, &id);
    } else if (tr_msg_is(m, "trap")) {
        tr_trap_exit(ctx, a != 0);
    } else if (tr_msg_is(m, "fail")) {
        return (int)a;
    } else if (tr_msg_is(m, "stop")) {
        tr_reason why = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
        tr_stop_self(ctx, &why);
        return 0;
    } else if (tr_msg_is(m, "spawnlink")) {
        tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
        tr_ref child;
        o.link = true;
        CHECK_OK(tr_spawn(&child, ctx, &puppet_b, idx_args(ctx, a), &o));
        CHECK_OK(tr_send(ctx, g.main, ref_kind_code(ctx, "child", child, 0, 0)));
        return 0;
    } /* "ping" answers 0 */
    CHECK_OK(tr_send_int(ctx, g.main, "r", result));
    return 0;
}

static const tr_behaviour puppet_b = {"puppet",      sizeof(puppet),   puppet_init,
                                      puppet_handle, puppet_terminate, NULL};

static tr_ref spawn_puppet(tr_ctx *ctx, bool trap)
{
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    tr_ref r;
    o.trap_exit = trap;
    CHECK_OK(tr_spawn(&r, ctx, &puppet_b, idx_args(ctx, g.next++), &o));
    return r;
}

/* Sends a command; for commands that answer, returns the answer. */
static void cmd_noreply(tr_ctx *ctx, tr_ref p, const char *tag, tr_ref r, int64_t a)
{
    CHECK_OK(tr_send(ctx, p, ref_kind_code(ctx, tag, r, a, 0)));
}

static tr_err cmd(tr_ctx *ctx, tr_ref p, const char *tag, tr_ref r, int64_t a)
{
    cmd_noreply(ctx, p, tag, r, a);
    return (tr_err)test_recv_int(ctx, "r");
}

static tr_ref monitored(tr_ctx *ctx, tr_ref r)
{
    tr_monitor_id id;
    CHECK_OK(tr_monitor(ctx, r, &id));
    return r;
}

static void expect_down(tr_ctx *ctx, tr_ref who, tr_exit_kind kind, int32_t code)
{
    tr_reason why = test_wait_down(ctx, who);
    if (why.kind != kind || why.code != code)
        TEST_FAIL("DOWN reason %s/%d, expected %s/%d", tr_exit_kind_name(why.kind), why.code,
                  tr_exit_kind_name(kind), code);
}

static void expect_alive(tr_ctx *ctx, tr_ref p) { CHECK_OK(cmd(ctx, p, "ping", p, 0)); }

/* Waits for an exit message about `from`, forwarded by a puppet (or, with
 * tag TR_TAG_EXIT, received by main itself). */
static void expect_exit_msg(tr_ctx *ctx, const char *tag, tr_ref from, tr_exit_kind kind,
                            int32_t code)
{
    tr_msg *m = test_recv(ctx, tag);
    tr_ref who;
    int64_t k, c;
    if (strcmp(tag, TR_TAG_EXIT) == 0) {
        tr_reason why;
        CHECK_OK(tr_msg_exit_info(m, &who, &why));
        k = why.kind;
        c = why.code;
    } else {
        read_ref_kind_code(m, &who, &k, &c);
    }
    tr_msg_free(m);
    CHECK(tr_ref_eq(who, from));
    if (k != kind || c != code)
        TEST_FAIL("exit message %s/%d, expected %s/%d", tr_exit_kind_name((tr_exit_kind)k), (int)c,
                  tr_exit_kind_name(kind), code);
}

static void links(tr_ctx *ctx)
{
    tr_reason r;
    /* An abnormal exit takes a linked actor down with the same reason. */
    tr_ref a = monitored(ctx, spawn_puppet(ctx, false));
    tr_ref b = monitored(ctx, spawn_puppet(ctx, false));
    CHECK_OK(cmd(ctx, a, "link", b, 0));
    cmd_noreply(ctx, b, "fail", b, 42);
    expect_down(ctx, b, TR_EXIT_ERROR, 42);
    expect_down(ctx, a, TR_EXIT_ERROR, 42);

    /* A trapping actor gets an exit message instead, and lives. */
    a = spawn_puppet(ctx, false);
    CHECK_OK(cmd(ctx, a, "trap", a, 1));
    b = monitored(ctx, spawn_puppet(ctx, false));
    CHECK_OK(cmd(ctx, a, "link", b, 0));
    cmd_noreply(ctx, b, "fail", b, 7);
    expect_exit_msg(ctx, "got_exit", b, TR_EXIT_ERROR, 7);
    expect_down(ctx, b, TR_EXIT_ERROR, 7);
    expect_alive(ctx, a);
    tr_ref t = spawn_puppet(ctx, true); /* trap_exit given at spawn */
    b = spawn_puppet(ctx, false);
    CHECK_OK(cmd(ctx, t, "link", b, 0));
    cmd_noreply(ctx, b, "fail", b, 8);
    expect_exit_msg(ctx, "got_exit", b, TR_EXIT_ERROR, 8);
    expect_alive(ctx, t);

    /* A normal exit does not take linked actors down. */
    a = spawn_puppet(ctx, false);
    b = monitored(ctx, spawn_puppet(ctx, false));
    CHECK_OK(cmd(ctx, a, "link", b, 0));
    cmd_noreply(ctx, b, "stop", b, 0);
    expect_down(ctx, b, TR_EXIT_NORMAL, 0);
    expect_alive(ctx, a);

    /* tr_exit: normal is ignored, an error is trapped or kills, killed
     * always kills. */
    tr_ref c = monitored(ctx, spawn_puppet(ctx, false));
    r = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
    CHECK_OK(tr_exit(ctx, c, &r));
    expect_alive(ctx, c);
    r = tr_reason_make(TR_EXIT_ERROR, 4, "told to");
    CHECK_OK(tr_exit(ctx, c, &r));
    expect_down(ctx, c, TR_EXIT_ERROR, 4);
    a = monitored(ctx, spawn_puppet(ctx, true));
    r = tr_reason_make(TR_EXIT_ERROR, 3, NULL);
    CHECK_OK(tr_exit(ctx, a, &r));
    expect_exit_msg(ctx, "got_exit", g.main, TR_EXIT_ERROR, 3);
    expect_alive(ctx, a);
    r = tr_reason_make(TR_EXIT_KILLED, 0, NULL);
    CHECK_OK(tr_exit(ctx, a, &r));
    expect_down(ctx, a, TR_EXIT_KILLED, 0);
    CHECK_ERR(tr_exit(ctx, a, &r), TR_ENOACTOR);

    /* Unlink, from either end, stops propagation both ways. */
    a = spawn_puppet(ctx, false);
    b = monitored(ctx, spawn_puppet(ctx, false));
    CHECK_OK(cmd(ctx, a, "link", b, 0));
    CHECK_OK(cmd(ctx, a, "unlink", b, 0));
    cmd_noreply(ctx, b, "fail", b, 5);
    expect_down(ctx, b, TR_EXIT_ERROR, 5);
    expect_alive(ctx, a);
    b = spawn_puppet(ctx, false);
    CHECK_OK(cmd(ctx, b, "link", a, 0));
    CHECK_OK(cmd(ctx, a, "unlink", b, 0));
    monitored(ctx, a);
    cmd_noreply(ctx, a, "fail", a, 6);
    expect_down(ctx, a, TR_EXIT_ERROR, 6);
    expect_alive(ctx, b);

    /* Linking to a dead actor: an exit signal with reason NOPROC. */
    tr_ref d = monitored(ctx, spawn_puppet(ctx, false));
    cmd_noreply(ctx, d, "stop", d, 0);
    expect_down(ctx, d, TR_EXIT_NORMAL, 0);
    t = spawn_puppet(ctx, true);
    tr_err e = cmd(ctx, t, "link", d, 0);
    CHECK(e == TR_OK || e == TR_ENOACTOR);
    expect_exit_msg(ctx, "got_exit", d, TR_EXIT_NOPROC, 0);
    a = monitored(ctx, spawn_puppet(ctx, false));
    e = cmd(ctx, a, "link", d, 0);
    CHECK(e == TR_OK || e == TR_ENOACTOR);
    expect_down(ctx, a, TR_EXIT_NOPROC, 0);

    /* spawn opts link: from main (trapping) and from a puppet. */
    tr_trap_exit(ctx, true);
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.link = true;
    CHECK_OK(tr_spawn(&c, ctx, &puppet_b, idx_args(ctx, g.next++), &o));
    cmd_noreply(ctx, c, "fail", c, 9);
    expect_exit_msg(ctx, TR_TAG_EXIT, c, TR_EXIT_ERROR, 9);
    tr_trap_exit(ctx, false);
    tr_ref p = monitored(ctx, spawn_puppet(ctx, false));
    cmd_noreply(ctx, p, "spawnlink", p, g.next++);
    tr_msg *m = test_recv(ctx, "child");
    int64_t unused;
    read_ref_kind_code(m, &c, &unused, &unused);
    tr_msg_free(m);
    monitored(ctx, c);
    cmd_noreply(ctx, c, "fail", c, 11);
    expect_down(ctx, c, TR_EXIT_ERROR, 11);
    expect_down(ctx, p, TR_EXIT_ERROR, 11);
}

/* A thread actor that only waits; it returns 0 when told to stop. */
static int sleeper_run(tr_ctx *ctx, void *state)
{
    tr_msg *m = NULL;
    tr_err e;
    while ((e = tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &m)) == TR_OK)
        tr_msg_free(m);
    CHECK_ERR(e, TR_ESTOPPED);
    return 0;
}

static const tr_behaviour sleeper_b = {"sleeper", 0, NULL, NULL, NULL, sleeper_run};

/* Attaches, says hello to main, detaches when main says bye. */
static void *visitor_main(void *rt)
{
    tr_ctx *ctx;
    tr_msg *m = NULL;
    CHECK_OK(tr_attach(&ctx, rt));
    CHECK_OK(tr_send_tag(ctx, g.main, "hello"));
    CHECK_OK(tr_receive(ctx, "bye", NULL, NULL, TEST_WAIT_MS, &m));
    tr_msg_free(m);
    tr_detach(ctx);
    return NULL;
}

static void across_kinds(tr_ctx *ctx)
{
    /* A thread actor taken down by a link exits with the link's reason,
     * although its run returns 0. */
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    tr_ref t, p;
    o.kind = TR_THREAD;
    CHECK_OK(tr_spawn(&t, ctx, &sleeper_b, NULL, &o));
    monitored(ctx, t);
    p = spawn_puppet(ctx, false);
    CHECK_OK(cmd(ctx, p, "link", t, 0));
    cmd_noreply(ctx, p, "fail", p, 21);
    expect_down(ctx, t, TR_EXIT_ERROR, 21);

    /* A pooled actor's monitor of a thread actor. */
    CHECK_OK(tr_spawn(&t, ctx, &sleeper_b, NULL, &o));
    p = spawn_puppet(ctx, false);
    CHECK_OK(cmd(ctx, p, "monitor", t, 0));
    tr_reason r = tr_reason_make(TR_EXIT_ERROR, 22, NULL);
    CHECK_OK(tr_exit(ctx, t, &r));
    expect_exit_msg(ctx, "got_down", t, TR_EXIT_ERROR, 22);

    /* A detaching thread's monitors fire with reason normal. */
    pthread_t th;
    CHECK(pthread_create(&th, NULL, visitor_main, tr_ctx_runtime(ctx)) == 0);
    tr_msg *m = test_recv(ctx, "hello");
    tr_ref visitor = tr_msg_from(m);
    tr_msg_free(m);
    CHECK(!tr_ref_is_nil(visitor));
    monitored(ctx, visitor);
    CHECK_OK(cmd(ctx, p, "monitor", visitor, 0));
    CHECK_OK(tr_send_tag(ctx, visitor, "bye"));
    expect_down(ctx, visitor, TR_EXIT_NORMAL, 0);
    expect_exit_msg(ctx, "got_down", visitor, TR_EXIT_NORMAL, 0);
    CHECK(pthread_join(th, NULL) == 0);
}

static void monitors(tr_ctx *ctx)
{
    /* Exactly one DOWN per monitor, with the reason. */
    tr_ref x = spawn_puppet(ctx, false);
    tr_monitor_id m1, m2, m3, got[2];
    CHECK_OK(tr_monitor(ctx, x, &m1));
    CHECK_OK(tr_monitor(ctx, x, &m2));
    CHECK(m1 != m2);
    cmd_noreply(ctx, x, "fail", x, 5);
    for (int i = 0; i < 2; i++) {
        tr_msg *m = test_recv(ctx, TR_TAG_DOWN);
        tr_ref who;
        tr_reason why;
        CHECK_OK(tr_msg_down_info(m, &who, &got[i], &why));
        CHECK(tr_ref_eq(who, x));
        CHECK(why.kind == TR_EXIT_ERROR && why.code == 5);
        tr_msg_free(m);
    }
    CHECK((got[0] == m1 && got[1] == m2) || (got[0] == m2 && got[1] == m1));
    test_recv_none(ctx, TR_TAG_DOWN, 200);

    /* Monitoring what is already gone: DOWN with NOPROC. */
    CHECK_OK(tr_monitor(ctx, x, &m3));
    tr_msg *m = test_recv(ctx, TR_TAG_DOWN);
    tr_ref who;
    tr_monitor_id id;
    tr_reason why;
    CHECK_OK(tr_msg_down_info(m, &who, &id, &why));
    tr_msg_free(m);
    CHECK(tr_ref_eq(who, x) && id == m3 && why.kind == TR_EXIT_NOPROC);

    /* Demonitor: no DOWN for that monitor. */
    tr_ref y = spawn_puppet(ctx, false);
    CHECK_OK(tr_monitor(ctx, y, &m1));
    CHECK_OK(tr_monitor(ctx, y, &m2));
    CHECK_OK(tr_demonitor(ctx, m1));
    CHECK_ERR(tr_demonitor(ctx, m1), TR_ENOTFOUND);
    cmd_noreply(ctx, y, "fail", y, 1);
    m = test_recv(ctx, TR_TAG_DOWN);
    CHECK_OK(tr_msg_down_info(m, &who, &id, &why));
    tr_msg_free(m);
    CHECK(id == m2);
    test_recv_none(ctx, TR_TAG_DOWN, 200);
}

int main(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    g.main = tr_self(ctx);
    links(ctx);
    across_kinds(ctx);
    monitors(ctx);
    test_finish(rt, ctx); /* the live puppets terminate at the stop */

    for (int i = 0; i < g.next; i++)
        if (atomic_load(&g.terminated[i]) != 1)
            TEST_FAIL("puppet %d: terminate ran %d times", i, atomic_load(&g.terminated[i]));
    CHECK(g.reason[0].kind == TR_EXIT_ERROR && g.reason[0].code == 42); /* a of the first */
    CHECK(g.reason[1].kind == TR_EXIT_ERROR && g.reason[1].code == 42); /* b of the first */
    printf("ok\n");
    return 0;
}
