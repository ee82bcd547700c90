/*
 * test_proc_warm — warm children of process actors: children a runtime
 * forks, starts and links ahead of time, so that spawning a process actor
 * skips that work.
 *
 * Checks: a spawn takes a child that existed before the spawn call; a warm
 * child that dies while idle is replaced, is never handed out dead (also
 * when the spawn comes before the runtime has reaped it) and causes no
 * dead letter and no node event; stopping the runtime leaves no warm child
 * behind; with the pool off no child waits; bad option values are refused.
 */
#include "check.h"
#include "proc_test.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    (void)state;
    if (tr_msg_is(m, "pid")) {
        tr_msg *r;
        CHECK_OK(tr_msg_new(&r, ctx, "pid"));
        CHECK_OK(tr_pack_int(r, getpid()));
        return tr_reply(ctx, m, r);
    }
    if (tr_msg_is(m, "stop"))
        tr_stop_self(ctx, NULL);
    return 0;
}

static const tr_behaviour worker_beh = {"worker", 0, NULL, worker_handle, NULL, NULL};

/* ---- helpers -------------------------------------------------------------- */

/* The live (not zombie) children of parent, into out (room for cap);
 * returns how many. */
static int children_of(int parent, int *out, int cap)
{
    int n = 0;
    DIR *d = opendir("/proc");
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < cap) {
        int pid = atoi(e->d_name);
        int ppid;
        char st;
        if (pid > 0 && proc_stat(pid, &ppid, &st) && ppid == parent && st != 'Z')
            out[n++] = pid;
    }
    closedir(d);
    return n;
}

/* The fork server: this process's one child. */
static int fork_server(void)
{
    int kids[4];
    CHECK(children_of(getpid(), kids, 4) == 1);
    return kids[0];
}

/* True once every thread of pid has exited (so its descriptors are
 * closed), reaped or not. A zombie leader alone is not enough: the other
 * threads of a killed process may still be on their way out. */
static bool ended(int pid)
{
    int ppid;
    char st;
    if (!proc_stat(pid, &ppid, &st))
        return true;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    return st == 'Z' && count_entries(path) <= 1;
}

/* The live children of parent, as children_of, once each of them has
 * started its runtime (it runs several threads): by then the runtime has
 * the child in its pool, for it records the child as soon as the fork
 * server answers. */
static int started_children_of(int parent, int *out, int cap)
{
    int n = children_of(parent, out, cap);
    for (int i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task", out[i]);
        if (count_entries(path) < 4)
            return -1;
    }
    return n;
}

static bool has(const int *set, int n, int pid)
{
    for (int i = 0; i < n; i++)
        if (set[i] == pid)
            return true;
    return false;
}

static tr_runtime *start(uint32_t warm, tr_ctx **ctx)
{
    tr_runtime_opts o = TR_RUNTIME_OPTS_INIT;
    o.workers = 2;
    o.proc_warm = warm;
    tr_runtime *rt;
    CHECK_OK(tr_runtime_start(&rt, &o));
    CHECK_OK(tr_attach(ctx, rt));
    return rt;
}

static tr_ref spawn_proc(tr_ctx *ctx)
{
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_PROCESS;
    tr_ref r;
    CHECK_OK(tr_spawn(&r, ctx, &worker_beh, NULL, &o));
    return r;
}

/* Asks to for its pid; *node (may be NULL) receives the node it answered
 * from. */
static int call_pid_node(tr_ctx *ctx, tr_ref to, uint64_t *node)
{
    tr_msg *req, *rep = NULL;
    CHECK_OK(tr_msg_new(&req, ctx, "pid"));
    CHECK_OK(tr_call(ctx, to, req, TEST_WAIT_MS, &rep));
    int64_t v;
    CHECK_OK(tr_msg_int(rep, &v));
    if (node != NULL)
        *node = tr_msg_from(rep).node;
    tr_msg_free(rep);
    return (int)v;
}

static int call_pid(tr_ctx *ctx, tr_ref to) { return call_pid_node(ctx, to, NULL); }

/* Receives n node events with tag and checks that each names one of the
 * nodes in nodes[0..n), each once. */
static void expect_node_events(tr_ctx *ctx, const char *tag, const uint64_t *nodes, int n)
{
    bool seen[16] = {false};
    CHECK(n <= 16);
    for (int k = 0; k < n; k++) {
        tr_msg *m = test_recv(ctx, tag);
        tr_node_info ni;
        CHECK_OK(tr_msg_node_info(m, &ni));
        tr_msg_free(m);
        int at = -1;
        for (int i = 0; i < n; i++)
            if (nodes[i] == ni.node && !seen[i])
                at = i;
        CHECK(at >= 0);
        seen[at] = true;
    }
}

/* Asks r to stop and waits for its normal end. */
static void stop_proc(tr_ctx *ctx, tr_ref r)
{
    tr_monitor_id id;
    CHECK_OK(tr_monitor(ctx, r, &id));
    CHECK_OK(tr_send_tag(ctx, r, "stop"));
    tr_msg *m = test_recv(ctx, TR_TAG_DOWN);
    tr_reason why;
    CHECK_OK(tr_msg_down_info(m, NULL, NULL, &why));
    tr_msg_free(m);
    CHECK(why.kind == TR_EXIT_NORMAL);
}

/* Spawns a first process actor (which sets process actors up, and so the
 * pool), ends it and waits until exactly `want` warm children exist,
 * whose pids go to out. */
static void settle(tr_ctx *ctx, int fs, int want, int *out)
{
    tr_ref r = spawn_proc(ctx);
    int pid = call_pid(ctx, r);
    stop_proc(ctx, r);
    WAIT_UNTIL(pid_gone(pid));
    WAIT_UNTIL(started_children_of(fs, out, 16) == want);
}

/* ---- scenarios ------------------------------------------------------------ */

/* The spawn's process existed before the spawn call; a new one replaces it. */
static void test_spawn_takes_warm(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = start(2, &ctx);
    int fs = fork_server();
    int warm[16];
    settle(ctx, fs, 2, warm);
    for (int round = 0; round < 3; round++) {
        tr_ref r = spawn_proc(ctx);
        int pid = call_pid(ctx, r);
        CHECK(has(warm, 2, pid));
        stop_proc(ctx, r);
        WAIT_UNTIL(pid_gone(pid));
        /* Refilled: two warm children again, one of them new. */
        int now[16];
        WAIT_UNTIL(started_children_of(fs, now, 16) == 2);
        CHECK(!has(now, 2, pid));
        memcpy(warm, now, sizeof now);
    }
    test_finish(rt, ctx);
}

/* A warm child killed while idle: no dead letter, no node event, a
 * replacement is forked, and a spawn never gets the dead one — also when
 * it comes while the dead child is not yet reaped. Node monitors hear of
 * exactly the nodes actors ran on, each up once and down once. */
static void test_idle_death(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = start(1, &ctx);
    int fs = fork_server();
    int warm[16];
    settle(ctx, fs, 1, warm);
    /* Its node's events are over once the node is forgotten. */
    size_t n;
    WAIT_UNTIL(tr_nodes(rt, NULL, 0, &n) == TR_OK && n == 0);
    CHECK_OK(tr_monitor_nodes(ctx, true));
    uint64_t dead_letters = test_counters(rt).dead_letters;
    uint64_t used[6];

    /* Killed and reaped; the pool forks another. */
    CHECK(kill(warm[0], SIGKILL) == 0);
    WAIT_UNTIL(pid_gone(warm[0]));
    int now[16];
    WAIT_UNTIL(started_children_of(fs, now, 16) == 1 && now[0] != warm[0]);
    tr_ref r = spawn_proc(ctx);
    CHECK(call_pid_node(ctx, r, &used[0]) == now[0]);
    stop_proc(ctx, r);
    WAIT_UNTIL(pid_gone(now[0]));
    WAIT_UNTIL(started_children_of(fs, warm, 16) == 1);

    /* Killed, and spawned from as soon as it has ended (its sockets are
     * closed), before anyone may have reaped it. */
    for (int round = 0; round < 5; round++) {
        int victim = warm[0];
        CHECK(kill(victim, SIGKILL) == 0);
        WAIT_UNTIL(ended(victim));
        r = spawn_proc(ctx);
        int pid = call_pid_node(ctx, r, &used[1 + round]); /* a dead one: TR_EEXITED */
        CHECK(pid != victim);
        stop_proc(ctx, r);
        WAIT_UNTIL(pid_gone(pid) && pid_gone(victim));
        WAIT_UNTIL(started_children_of(fs, warm, 16) == 1);
    }
    CHECK(test_counters(rt).dead_letters == dead_letters);
    expect_node_events(ctx, TR_TAG_NODEUP, used, 6);
    expect_node_events(ctx, TR_TAG_NODEDOWN, used, 6);
    test_recv_none(ctx, TR_TAG_NODEUP, 50); /* none for the warm children */
    test_recv_none(ctx, TR_TAG_NODEDOWN, 0);
    WAIT_UNTIL(tr_nodes(rt, NULL, 0, &n) == TR_OK && n == 0);
    test_finish(rt, ctx);
}

/* Stopping the runtime kills and reaps its warm children. */
static void test_stop_leaves_none(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = start(3, &ctx);
    int fs = fork_server();
    int warm[16];
    settle(ctx, fs, 3, warm);
    test_finish(rt, ctx);
    for (int i = 0; i < 3; i++)
        CHECK(pid_gone(warm[i]));
    CHECK(children_of(fs, warm, 16) == 0);
    CHECK(waitpid(-1, NULL, WNOHANG) == 0); /* the fork server is still ours, alive */
}

/* With the pool off, no child waits, and spawning still works. */
static void test_off(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = start(TR_PROC_WARM_OFF, &ctx);
    int fs = fork_server();
    int kids[16];
    settle(ctx, fs, 0, kids);
    test_recv_none(ctx, TR_TAG_DOWN, 100);
    CHECK(children_of(fs, kids, 16) == 0);
    test_finish(rt, ctx);

    tr_runtime_opts o = TR_RUNTIME_OPTS_INIT;
    o.proc_warm = 65;
    tr_runtime *bad = NULL;
    CHECK_ERR(tr_runtime_start(&bad, &o), TR_EINVAL);
    CHECK(bad == NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* The fork server comes with the first runtime; keep one alive so all
     * scenarios share it. */
    tr_runtime *keep;
    CHECK_OK(tr_runtime_start(&keep, NULL));
    fprintf(stderr, "-- %s\n", "test_spawn_takes_warm");
    test_spawn_takes_warm();
    fprintf(stderr, "-- %s\n", "test_idle_death");
    test_idle_death();
    fprintf(stderr, "-- %s\n", "test_stop_leaves_none");
    test_stop_leaves_none();
    fprintf(stderr, "-- %s\n", "test_off");
    test_off();
    tr_runtime_free(keep);
    printf("proc_warm: ok\n");
    return 0;
}
