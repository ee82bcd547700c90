/*
 * test_process — process actors: a behaviour spawned with kind TR_PROCESS
 * runs in a forked child with its own runtime, and the parent talks to it
 * through an ordinary reference.
 *
 * Checks: it runs in another process; order and request/reply across;
 * exit reasons (normal, its own error, exit code, signal, kill -9 from
 * outside, untrappable kill); a request in flight when the process dies is
 * answered with TR_EEXITED; links; names; a thread behaviour; stop of a
 * child that ignores shutdown; many children leave no zombie, no
 * descriptor and no file behind; bad spawns are refused.
 */
#include "check.h"
#include "proc_test.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---- the behaviour the children run -------------------------------------- */

typedef struct worker {
    int64_t next;  /* next number expected on "n" */
    bool in_order; /* every "n" came in order */
    tr_reply_to held;
} worker;

static int worker_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    (void)ctx;
    worker *w = state;
    w->in_order = true;
    if (args != NULL)
        CHECK_OK(tr_msg_int(args, &w->next)); /* the first number to expect */
    return 0;
}

static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    worker *w = state;
    if (tr_msg_is(m, "pid")) {
        tr_msg *r;
        CHECK_OK(tr_msg_new(&r, ctx, "pid"));
        CHECK_OK(tr_pack_int(r, getpid()));
        return tr_reply(ctx, m, r);
    }
    if (tr_msg_is(m, "n")) {
        int64_t v;
        CHECK_OK(tr_msg_int(m, &v));
        if (v != w->next)
            w->in_order = false;
        w->next = v + 1;
        return 0;
    }
    if (tr_msg_is(m, "count")) {
        tr_msg *r;
        CHECK_OK(tr_msg_new(&r, ctx, "count"));
        CHECK_OK(tr_pack_array(r, 2));
        CHECK_OK(tr_pack_int(r, w->next));
        CHECK_OK(tr_pack_bool(r, w->in_order));
        return tr_reply(ctx, m, r);
    }
    if (tr_msg_is(m, "echo")) /* to the sender, by plain send */
        return tr_send_int(ctx, tr_msg_from(m), "echoed", getpid());
    if (tr_msg_is(m, "fail"))
        return 7;
    if (tr_msg_is(m, "stop")) {
        tr_stop_self(ctx, NULL);
        return 0;
    }
    if (tr_msg_is(m, "exit3"))
        _exit(3);
    if (tr_msg_is(m, "segv")) {
        signal(SIGSEGV, SIG_DFL); /* past any sanitizer's handler */
        raise(SIGSEGV);
    }
    if (tr_msg_is(m, "hold")) { /* a request never answered; then "die" */
        CHECK_OK(tr_msg_reply_to(&w->held, m));
        return 0;
    }
    if (tr_msg_is(m, "die"))
        _exit(9);
    if (tr_msg_is(m, "trap")) {
        tr_trap_exit(ctx, true);
        return 0;
    }
    return 0;
}

static const tr_behaviour worker_beh = {"worker",      sizeof(worker), worker_init,
                                        worker_handle, NULL,           NULL};

/* A thread behaviour: answers "pid" requests with its own loop. */
static int looper_run(tr_ctx *ctx, void *state)
{
    (void)state;
    for (;;) {
        tr_msg *m;
        tr_err e = tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &m);
        if (e != TR_OK)
            return 0;
        if (tr_msg_is(m, "pid")) {
            tr_msg *r;
            CHECK_OK(tr_msg_new(&r, ctx, "pid"));
            CHECK_OK(tr_pack_int(r, getpid()));
            CHECK_OK(tr_reply(ctx, m, r));
        }
        bool quit = tr_msg_is(m, "quit");
        tr_msg_free(m);
        if (quit)
            return 0;
    }
}

static const tr_behaviour looper_beh = {"looper", 0, NULL, NULL, NULL, looper_run};

/* ---- helpers -------------------------------------------------------------- */

static tr_ref spawn_proc(tr_ctx *ctx, const tr_behaviour *b, tr_msg *args, bool link)
{
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_PROCESS;
    o.link = link;
    tr_ref r;
    CHECK_OK(tr_spawn(&r, ctx, b, args, &o));
    return r;
}

static int64_t call_int(tr_ctx *ctx, tr_ref to, const char *tag)
{
    tr_msg *req, *rep = NULL;
    CHECK_OK(tr_msg_new(&req, ctx, tag));
    CHECK_OK(tr_call(ctx, to, req, TEST_WAIT_MS, &rep));
    int64_t v;
    CHECK_OK(tr_msg_int(rep, &v));
    tr_msg_free(rep);
    return v;
}

/* Monitors r, sends tag (if any) and returns the reason it exits with. */
static tr_reason exit_after(tr_ctx *ctx, tr_ref r, const char *tag)
{
    tr_monitor_id id;
    CHECK_OK(tr_monitor(ctx, r, &id));
    if (tag != NULL)
        CHECK_OK(tr_send_tag(ctx, r, tag));
    tr_msg *m = test_recv(ctx, TR_TAG_DOWN);
    tr_ref who;
    tr_monitor_id got;
    tr_reason why;
    CHECK_OK(tr_msg_down_info(m, &who, &got, &why));
    CHECK(got == id && tr_ref_eq(who, r));
    tr_msg_free(m);
    return why;
}

/* ---- scenarios ------------------------------------------------------------ */

static void test_runs_elsewhere_in_order(tr_ctx *ctx)
{
    tr_msg *args;
    CHECK_OK(tr_msg_new(&args, ctx, "start"));
    CHECK_OK(tr_pack_int(args, 100));
    tr_ref p = spawn_proc(ctx, &worker_beh, args, false);
    int64_t pid = call_int(ctx, p, "pid");
    CHECK(pid != getpid() && pid > 0);
    uint32_t n = test_scale(20000);
    for (uint32_t i = 0; i < n; i++)
        CHECK_OK(tr_send_int(ctx, p, "n", 100 + (int64_t)i));
    tr_msg *req, *rep = NULL;
    CHECK_OK(tr_msg_new(&req, ctx, "count"));
    CHECK_OK(tr_call(ctx, p, req, TEST_WAIT_MS, &rep));
    tr_cursor c;
    uint32_t len;
    int64_t next;
    bool in_order;
    tr_cursor_init(&c, rep);
    CHECK_OK(tr_cursor_array(&c, &len));
    CHECK_OK(tr_cursor_int(&c, &next));
    CHECK_OK(tr_cursor_bool(&c, &in_order));
    tr_msg_free(rep);
    CHECK(next == 100 + (int64_t)n && in_order);
    /* A plain send back comes from the child's own reference. */
    CHECK_OK(tr_send_tag(ctx, p, "echo"));
    tr_msg *m = test_recv(ctx, "echoed");
    CHECK(tr_msg_from(m).node != tr_self(ctx).node);
    tr_msg_free(m);
    tr_reason why = exit_after(ctx, p, "stop");
    CHECK(why.kind == TR_EXIT_NORMAL);
    CHECK(pid_gone((int)pid));
}

static void test_exit_reasons(tr_ctx *ctx)
{
    tr_ref p = spawn_proc(ctx, &worker_beh, NULL, false);
    tr_reason why = exit_after(ctx, p, "fail");
    CHECK(why.kind == TR_EXIT_ERROR && why.code == 7);

    p = spawn_proc(ctx, &worker_beh, NULL, false);
    why = exit_after(ctx, p, "exit3");
    CHECK(why.kind == TR_EXIT_CODE && why.code == 3);

    p = spawn_proc(ctx, &worker_beh, NULL, false);
    why = exit_after(ctx, p, "segv");
    CHECK(why.kind == TR_EXIT_SIGNAL && why.code == SIGSEGV);

    /* kill -9 from outside: the monitor sees the signal. */
    p = spawn_proc(ctx, &worker_beh, NULL, false);
    int pid = (int)call_int(ctx, p, "pid");
    tr_monitor_id id;
    CHECK_OK(tr_monitor(ctx, p, &id));
    CHECK(kill(pid, SIGKILL) == 0);
    tr_msg *m = test_recv(ctx, TR_TAG_DOWN);
    CHECK_OK(tr_msg_down_info(m, NULL, NULL, &why));
    tr_msg_free(m);
    CHECK(why.kind == TR_EXIT_SIGNAL && why.code == SIGKILL);
    CHECK(pid_gone(pid));

    /* An untrappable kill of the stand-in kills the process too. */
    p = spawn_proc(ctx, &worker_beh, NULL, false);
    pid = (int)call_int(ctx, p, "pid");
    CHECK_OK(tr_monitor(ctx, p, &id));
    tr_reason kill_why = tr_reason_make(TR_EXIT_KILLED, 0, "test");
    CHECK_OK(tr_exit(ctx, p, &kill_why));
    m = test_recv(ctx, TR_TAG_DOWN);
    CHECK_OK(tr_msg_down_info(m, NULL, NULL, &why));
    tr_msg_free(m);
    CHECK(why.kind == TR_EXIT_KILLED);
    WAIT_UNTIL(pid_gone(pid));

    /* A trappable exit signal goes to the child actor, which decides. */
    p = spawn_proc(ctx, &worker_beh, NULL, false);
    CHECK_OK(tr_monitor(ctx, p, &id));
    tr_reason err_why = tr_reason_make(TR_EXIT_ERROR, 42, "told to");
    CHECK_OK(tr_exit(ctx, p, &err_why));
    m = test_recv(ctx, TR_TAG_DOWN);
    CHECK_OK(tr_msg_down_info(m, NULL, NULL, &why));
    tr_msg_free(m);
    CHECK(why.kind == TR_EXIT_ERROR && why.code == 42);
}

static void test_request_in_flight(tr_ctx *ctx)
{
    tr_ref p = spawn_proc(ctx, &worker_beh, NULL, false);
    CHECK_OK(tr_send_tag(ctx, p, "die")); /* queued behind nothing: dies soon */
    /* A request after it can only fail; it must not hang. */
    tr_msg *req, *rep = NULL;
    CHECK_OK(tr_msg_new(&req, ctx, "hold"));
    tr_err e = tr_call(ctx, p, req, TR_FOREVER, &rep);
    CHECK(e == TR_EEXITED || e == TR_ENOACTOR);

    /* Held by a live child, then the child dies. */
    p = spawn_proc(ctx, &worker_beh, NULL, false);
    (void)call_int(ctx, p, "pid");
    CHECK_OK(tr_msg_new(&req, ctx, "hold"));
    tr_msg *die;
    CHECK_OK(tr_msg_new(&die, ctx, "die"));
    CHECK_OK(tr_send_after(ctx, p, die, 50, NULL));
    CHECK_ERR(tr_call(ctx, p, req, TR_FOREVER, &rep), TR_EEXITED);
}

/* A pooled actor linked to a process actor that crashes gets the exit. */
static tr_ref g_main;

static int linker_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    (void)state;
    (void)args;
    tr_trap_exit(ctx, true);
    tr_ref p = spawn_proc(ctx, &worker_beh, NULL, true);
    return tr_send_tag(ctx, p, "fail");
}

static int linker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    (void)state;
    tr_reason why;
    if (tr_msg_is(m, TR_TAG_EXIT) && tr_msg_exit_info(m, NULL, &why) == TR_OK)
        return tr_send_int(ctx, g_main, "linked-exit", why.kind * 1000 + why.code);
    return 0;
}

static const tr_behaviour linker_beh = {"linker", 0, linker_init, linker_handle, NULL, NULL};

static void test_links_and_names(tr_ctx *ctx)
{
    g_main = tr_self(ctx);
    tr_ref l;
    CHECK_OK(tr_spawn(&l, ctx, &linker_beh, NULL, NULL));
    CHECK(test_recv_int(ctx, "linked-exit") == TR_EXIT_ERROR * 1000 + 7);
    CHECK_OK(tr_exit(ctx, l, &(tr_reason){TR_EXIT_KILLED, 0, ""}));

    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_PROCESS;
    o.name = "proc-worker";
    tr_ref p, found;
    CHECK_OK(tr_spawn(&p, ctx, &worker_beh, NULL, &o));
    CHECK_OK(tr_whereis(&found, tr_ctx_runtime(ctx), "proc-worker"));
    CHECK(tr_ref_eq(found, p));
    CHECK(call_int(ctx, found, "pid") != getpid());
    CHECK(exit_after(ctx, p, "stop").kind == TR_EXIT_NORMAL);
    CHECK_ERR(tr_whereis(&found, tr_ctx_runtime(ctx), "proc-worker"), TR_ENOTFOUND);
}

static void test_thread_behaviour(tr_ctx *ctx)
{
    tr_ref p = spawn_proc(ctx, &looper_beh, NULL, false);
    CHECK(call_int(ctx, p, "pid") != getpid());
    CHECK(exit_after(ctx, p, "quit").kind == TR_EXIT_NORMAL);
}

static void test_bad_spawns(tr_ctx *ctx)
{
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_PROCESS;
    tr_ref r;
    /* A behaviour on the heap does not exist in the child. */
    tr_behaviour *heap = malloc(sizeof *heap);
    CHECK(heap != NULL);
    *heap = worker_beh;
    CHECK_ERR(tr_spawn(&r, ctx, heap, NULL, &o), TR_EINVAL);
    free(heap);
    tr_behaviour none = {"none", 0, NULL, NULL, NULL, NULL};
    CHECK_ERR(tr_spawn(&r, ctx, &none, NULL, &o), TR_EINVAL);
    tr_msg *big;
    CHECK_OK(tr_msg_new(&big, ctx, "big"));
    static uint8_t blob[70000];
    CHECK_OK(tr_pack_bin(big, blob, sizeof blob));
    CHECK_ERR(tr_spawn(&r, ctx, &worker_beh, big, &o), TR_ETOOBIG);
    tr_msg_free(big);
}

/* Many children spawned and ended: nothing left behind (main checks that
 * the runtime's stop leaves no descriptor either). */
static void test_many(tr_ctx *ctx, const char *tmpdir)
{
    /* Each child is a whole runtime; under a sanitizer a heavy one. */
    uint32_t n = TEST_SANITIZED ? 40 : test_scale(1000);
    int fds = count_fds();
    tr_ref *ps = calloc(n, sizeof *ps);
    tr_monitor_id *ids = calloc(n, sizeof *ids);
    CHECK(ps != NULL && ids != NULL);
    /* In waves of up to 100 live children. */
    for (uint32_t base = 0; base < n; base += 100) {
        uint32_t end = base + 100 < n ? base + 100 : n;
        for (uint32_t i = base; i < end; i++) {
            ps[i] = spawn_proc(ctx, &worker_beh, NULL, false);
            CHECK_OK(tr_monitor(ctx, ps[i], &ids[i]));
            CHECK_OK(tr_send_tag(ctx, ps[i], i % 2 ? "stop" : "fail"));
        }
        for (uint32_t i = base; i < end; i++) {
            tr_msg *m = test_recv(ctx, TR_TAG_DOWN);
            tr_reason why;
            CHECK_OK(tr_msg_down_info(m, NULL, NULL, &why));
            CHECK(why.kind == TR_EXIT_NORMAL || (why.kind == TR_EXIT_ERROR && why.code == 7));
            tr_msg_free(m);
        }
    }
    free(ps);
    free(ids);
    /* No zombie: the fork server reaped them (we have no children but it). */
    CHECK(waitpid(-1, NULL, WNOHANG) == 0);
    /* Give or take the runtime's warm child (one by default), which may
     * have been on its way when the count was taken: its socket pair end
     * and its link. */
    WAIT_UNTIL(count_fds() <= fds + 2);
    /* Only the runtime's own directory remains, holding its socket. */
    CHECK(count_entries(tmpdir) == 1);
}

/* A child that traps exits and ignores the stop is killed after its
 * shutdown time, and the runtime's stop returns. */
static void test_stop_kills(const char *tmpdir)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_PROCESS;
    o.shutdown_ms = 200;
    o.trap_exit = true;
    tr_ref stubborn, polite;
    CHECK_OK(tr_spawn(&stubborn, ctx, &worker_beh, NULL, &o));
    o.trap_exit = false;
    CHECK_OK(tr_spawn(&polite, ctx, &worker_beh, NULL, &o));
    int p1 = (int)call_int(ctx, stubborn, "pid");
    int p2 = (int)call_int(ctx, polite, "pid");
    test_finish(rt, ctx);
    CHECK(pid_gone(p1) && pid_gone(p2));
    CHECK(count_entries(tmpdir) == 0); /* the runtime's directory is gone */
}

/* Monitor ids are only unique within one runtime: a fresh runtime's
 * watchers (each child's runtime monitors its stand-in) share ids with
 * ours, and a demonitor must take out only its own watcher. */
static void test_fresh_monitors(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    tr_ref r[2];
    tr_monitor_id id[2];
    for (int i = 0; i < 2; i++)
        r[i] = spawn_proc(ctx, &worker_beh, NULL, false);
    for (int i = 0; i < 2; i++) /* the first monitors of this runtime */
        CHECK_OK(tr_monitor(ctx, r[i], &id[i]));
    for (int i = 0; i < 2; i++)
        CHECK(call_int(ctx, r[i], "pid") > 0);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(tr_exit(ctx, r[i], &(tr_reason){TR_EXIT_SHUTDOWN, 0, ""}));
        tr_msg *m = test_recv(ctx, TR_TAG_DOWN); /* each DOWN arrives */
        tr_ref who;
        tr_monitor_id got;
        tr_reason why;
        CHECK_OK(tr_msg_down_info(m, &who, &got, &why));
        CHECK(got == id[i] && tr_ref_eq(who, r[i]));
        tr_msg_free(m);
    }
    test_finish(rt, ctx);
}

int main(void)
{
    /* A private temporary directory, so the test can see what is left. */
    char tmpdir[] = "/tmp/troupe-test-XXXXXX";
    CHECK(mkdtemp(tmpdir) != NULL);
    setenv("TMPDIR", tmpdir, 1);
    signal(SIGPIPE, SIG_IGN);

    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    fprintf(stderr, "-- %s\n", "test_runs_elsewhere_in_order");
    test_runs_elsewhere_in_order(ctx);
    fprintf(stderr, "-- %s\n", "test_exit_reasons");
    test_exit_reasons(ctx);
    fprintf(stderr, "-- %s\n", "test_request_in_flight");
    test_request_in_flight(ctx);
    fprintf(stderr, "-- %s\n", "test_links_and_names");
    test_links_and_names(ctx);
    fprintf(stderr, "-- %s\n", "test_thread_behaviour");
    test_thread_behaviour(ctx);
    fprintf(stderr, "-- %s\n", "test_bad_spawns");
    test_bad_spawns(ctx);
    fprintf(stderr, "-- %s\n", "test_many");
    test_many(ctx, tmpdir);
    test_finish(rt, ctx);
    CHECK(count_entries(tmpdir) == 0);
    /* What a runtime with process actors (and warm children) leaves open
     * once it has stopped: the fork server's sockets, nothing of its own. */
    int fds = count_fds();

    fprintf(stderr, "-- %s\n", "test_fresh_monitors");
    test_fresh_monitors();
    CHECK(count_fds() == fds);
    fprintf(stderr, "-- %s\n", "test_stop_kills");
    test_stop_kills(tmpdir);
    CHECK(count_fds() == fds);
    CHECK(rmdir(tmpdir) == 0);
    printf("process: ok\n");
    return 0;
}
