/*
 * test_port — ports: external commands run as actors.
 *
 * Echo through `cat` in lines and frames framing; exit codes and signals
 * as exit reasons (seen by monitors and by links); killing a port ends
 * and reaps its command, also one that ignores SIGTERM; a missing command
 * or directory; stdin EOF; long lines in pieces; stderr as messages; bad
 * frames; environment and working directory; a port follows its owner; a
 * flooding command loses no line while its owner's bounded mailbox keeps
 * the output bounded; a hundred ports leave no process and no descriptor
 * behind. Every scenario ends by checking that this process has no child
 * left (zombie or not) and no more pipes, eventfds or pidfds than before.
 *
 * Run with --child-fds, the test is its own child: it prints how many
 * descriptors above 2 it inherited.
 */
#include "check.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>

/* ---- the process's children and descriptors ------------------------------ */

/* The first runtime forks the fork server of process actors, a child that
 * lives as long as this process: it is not a port's. */
static int g_base_children;

/* Children of this process that are not reaped yet (running or zombies),
 * over every thread (a child belongs to the thread that started it), not
 * counting the fork server. */
static int children_raw(void);
static int children_count(void) { return children_raw() - g_base_children; }

static int children_raw(void)
{
    DIR *d = opendir("/proc/self/task");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue; /* the thread just exited */
        long pid;
        while (fscanf(f, "%ld", &pid) == 1)
            n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

/* Descriptors of the kinds a port opens: pipes, eventfds, pidfds. */
static int port_fds_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
            continue;
        char path[300], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strncmp(target, "pipe:", 5) == 0 || strncmp(target, "anon_inode:", 11) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Every command ended and was reaped, and every descriptor is closed:
 * both hold once a port's exit has been reported. */
static void check_clean(int fds_before)
{
    CHECK(children_count() == 0);
    int fds = port_fds_count();
    if (fds != fds_before)
        TEST_FAIL("%d pipe/eventfd/pidfd descriptors open, %d before", fds, fds_before);
}

/* ---- helpers ------------------------------------------------------------- */

static tr_port_counters port_counters(tr_runtime *rt)
{
    tr_port_counters c;
    CHECK_OK(tr_runtime_port_counters(&c, rt));
    return c;
}

/* Receives a message tagged tag from port and checks its str payload. */
static void expect_str(tr_ctx *ctx, tr_ref port, const char *tag, const char *want)
{
    tr_msg *m = test_recv(ctx, tag);
    const char *s;
    size_t len;
    tr_cursor c;
    CHECK(tr_ref_eq(tr_msg_from(m), port));
    tr_cursor_init(&c, m);
    CHECK_OK(tr_cursor_str(&c, &s, &len));
    CHECK(tr_cursor_done(&c));
    if (len != strlen(want) || memcmp(s, want, len) != 0)
        TEST_FAIL("%s: got '%.*s', want '%s'", tag, (int)len, s, want);
    tr_msg_free(m);
}

static void send_str(tr_ctx *ctx, tr_ref port, const char *s)
{
    CHECK_OK(tr_send_str(ctx, port, "write", s));
}

static bool match_exit_of(const tr_msg *m, void *udata)
{
    tr_ref from;
    tr_reason why;
    return tr_msg_exit_info(m, &from, &why) == TR_OK && tr_ref_eq(from, *(tr_ref *)udata);
}

/* Waits for the exit message of a linked port (main traps exits). */
static tr_reason wait_exit(tr_ctx *ctx, tr_ref port)
{
    tr_msg *m = test_recv_match(ctx, TR_TAG_EXIT, match_exit_of, &port);
    tr_ref from;
    tr_reason why;
    CHECK_OK(tr_msg_exit_info(m, &from, &why));
    tr_msg_free(m);
    return why;
}

static void check_reason(tr_reason why, tr_exit_kind kind, int32_t code)
{
    if (why.kind != kind || why.code != code)
        TEST_FAIL("exit reason %s/%d (%s), want %s/%d", tr_exit_kind_name(why.kind), why.code,
                  why.text, tr_exit_kind_name(kind), code);
}

/* Spawns argv as a linked port of main (which traps exits). */
static tr_ref spawn_linked(tr_ctx *ctx, const char *const *argv, tr_port_opts *o)
{
    tr_port_opts local = TR_PORT_OPTS_INIT;
    if (o == NULL)
        o = &local;
    o->spawn.link = true;
    tr_ref port;
    CHECK_OK(tr_port_spawn(&port, ctx, argv, o));
    return port;
}

static tr_runtime *start(tr_ctx **ctx, int *fds)
{
    *fds = port_fds_count();
    tr_runtime *rt = test_start(2, ctx);
    tr_trap_exit(*ctx, true);
    return rt;
}

static void finish(tr_runtime *rt, tr_ctx *ctx, int fds)
{
    test_finish(rt, ctx);
    check_clean(fds);
}

/* ---- scenarios ----------------------------------------------------------- */

static void test_lines_echo(void)
{
    tr_ctx *ctx;
    int fds;
    tr_runtime *rt = start(&ctx, &fds);
    const char *argv[] = {"cat", NULL};
    tr_ref port;
    tr_monitor_id mon;
    CHECK_OK(tr_port_spawn(&port, ctx, argv, NULL));
    CHECK_OK(tr_monitor(ctx, port, &mon));
    send_str(ctx, port, "hello\n");
    send_str(ctx, port, "two\nlines\n");
    CHECK_OK(tr_send_str(ctx, port, "any tag", "")); /* nothing written */
    expect_str(ctx, port, TR_PORT_TAG_LINE, "hello");
    expect_str(ctx, port, TR_PORT_TAG_LINE, "two");
    expect_str(ctx, port, TR_PORT_TAG_LINE, "lines");

    /* A bin payload is written raw too; a write sent as a request is
     * answered once accepted; a payload that is no str or bin is refused. */
    tr_msg *m, *reply = NULL;
    CHECK_OK(tr_msg_new(&m, ctx, "write"));
    CHECK_OK(tr_pack_bin(m, "bin\n", 4));
    CHECK_OK(tr_call(ctx, port, m, TEST_WAIT_MS, &reply));
    CHECK(tr_msg_is(reply, TR_PORT_TAG_OK));
    tr_msg_free(reply);
    expect_str(ctx, port, TR_PORT_TAG_LINE, "bin");
    CHECK_OK(tr_msg_new(&m, ctx, "write"));
    CHECK_OK(tr_pack_int(m, 42));
    CHECK_ERR(tr_call(ctx, port, m, TEST_WAIT_MS, &reply), TR_ETYPE);
    CHECK(port_counters(rt).in_refused == 1);

    /* A last line without '\n' arrives at end of file. */
    send_str(ctx, port, "no newline");
    CHECK_OK(tr_send_tag(ctx, port, TR_PORT_TAG_EOF));
    expect_str(ctx, port, TR_PORT_TAG_LINE, "no newline");
    check_reason(test_wait_down(ctx, port), TR_EXIT_NORMAL, 0);

    tr_port_counters c = port_counters(rt);
    CHECK(c.spawned == 1 && c.exited == 1 && c.killed == 0);
    CHECK(c.out_msgs == 5 && c.out_dropped == 0);
    CHECK(c.in_msgs == 5 && c.in_bytes_lost == 0);
    finish(rt, ctx, fds);
}

static void test_frames_echo(void)
{
    tr_ctx *ctx;
    int fds;
    tr_runtime *rt = start(&ctx, &fds);
    const char *argv[] = {"cat", NULL};
    tr_port_opts o = TR_PORT_OPTS_INIT;
    o.framing = TR_PORT_FRAMES;
    tr_ref port = spawn_linked(ctx, argv, &o);

    enum {
        N = 50
    };
    for (int i = 0; i < N; i++) {
        tr_msg *m;
        CHECK_OK(tr_msg_new(&m, ctx, "frame"));
        CHECK_OK(tr_pack_array(m, 3));
        CHECK_OK(tr_pack_int(m, i));
        CHECK_OK(tr_pack_str(m, "two"));
        CHECK_OK(tr_pack_map(m, 1));
        CHECK_OK(tr_pack_str(m, "k"));
        CHECK_OK(tr_pack_bin(m, "\0\n\xff", 3));
        if (i % 10 == 0) {
            tr_msg *reply;
            CHECK_OK(tr_call(ctx, port, m, TEST_WAIT_MS, &reply));
            tr_msg_free(reply);
        } else {
            CHECK_OK(tr_send(ctx, port, m));
        }
    }
    for (int i = 0; i < N; i++) {
        tr_msg *m = test_recv(ctx, TR_PORT_TAG_FRAME);
        CHECK(tr_ref_eq(tr_msg_from(m), port));
        tr_cursor c;
        uint32_t n;
        int64_t v;
        const char *s;
        const uint8_t *b;
        size_t len;
        tr_cursor_init(&c, m);
        CHECK_OK(tr_cursor_array(&c, &n));
        CHECK(n == 3);
        CHECK_OK(tr_cursor_int(&c, &v));
        CHECK(v == i);
        CHECK_OK(tr_cursor_str(&c, &s, &len));
        CHECK(len == 3 && memcmp(s, "two", 3) == 0);
        CHECK_OK(tr_cursor_map(&c, &n));
        CHECK(n == 1);
        CHECK_OK(tr_cursor_str(&c, &s, &len));
        CHECK_OK(tr_cursor_bin(&c, &b, &len));
        CHECK(len == 3 && memcmp(b, "\0\n\xff", 3) == 0);
        CHECK(tr_cursor_done(&c));
        tr_msg_free(m);
    }
    /* An empty payload is no frame. */
    tr_msg *m, *reply;
    CHECK_OK(tr_msg_new(&m, ctx, "frame"));
    CHECK_ERR(tr_call(ctx, port, m, TEST_WAIT_MS, &reply), TR_EBADMSG);
    /* EOF sent as a request is answered. */
    CHECK_OK(tr_msg_new(&m, ctx, TR_PORT_TAG_EOF));
    CHECK_OK(tr_call(ctx, port, m, TEST_WAIT_MS, &reply));
    tr_msg_free(reply);
    check_reason(wait_exit(ctx, port), TR_EXIT_NORMAL, 0);
    CHECK(port_counters(rt).out_msgs == N);
    CHECK(port_counters(rt).in_refused == 1);
    finish(rt, ctx, fds);
}

/* The command waits for one line, then does what sh -c says. */
static tr_reason run_after_line(tr_ctx *ctx, const char *script)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    tr_ref port;
    tr_monitor_id mon;
    CHECK_OK(tr_port_spawn(&port, ctx, argv, NULL));
    CHECK_OK(tr_monitor(ctx, port, &mon)); /* the port lives until it gets the line */
    send_str(ctx, port, "go\n");
    return test_wait_down(ctx, port);
}

static void test_exit_reasons(void)
{
    tr_ctx *ctx;
    int fds;
    tr_runtime *rt = start(&ctx, &fds);
    check_reason(run_after_line(ctx, "read x; exit 3"), TR_EXIT_CODE, 3);
    check_reason(run_after_line(ctx, "read x; kill -9 $$"), TR_EXIT_SIGNAL, SIGKILL);
    check_reason(run_after_line(ctx, "read x; kill -TERM $$"), TR_EXIT_SIGNAL, SIGTERM);
    check_reason(run_after_line(ctx, "read x; exit 0"), TR_EXIT_NORMAL, 0);

    /* The same through a link, for commands that exit at once. */
    const char *exit3[] = {"sh", "-c", "exit 3", NULL};
    check_reason(wait_exit(ctx, spawn_linked(ctx, exit3, NULL)), TR_EXIT_CODE, 3);
    const char *kill9[] = {"sh", "-c", "kill -9 $$", NULL};
    check_reason(wait_exit(ctx, spawn_linked(ctx, kill9, NULL)), TR_EXIT_SIGNAL, SIGKILL);
    const char *truth[] = {"true", NULL};
    check_reason(wait_exit(ctx, spawn_linked(ctx, truth, NULL)), TR_EXIT_NORMAL, 0);
    CHECK(port_counters(rt).killed == 0);
    finish(rt, ctx, fds);
}

static void test_kill(void)
{
    tr_ctx *ctx;
    int fds;
    tr_runtime *rt = start(&ctx, &fds);
    /* A command that waits on stdin forever. */
    const char *argv[] = {"cat", NULL};
    tr_ref port;
    tr_monitor_id mon;
    CHECK_OK(tr_port_spawn(&port, ctx, argv, NULL));
    CHECK_OK(tr_monitor(ctx, port, &mon));
    send_str(ctx, port, "alive\n");
    expect_str(ctx, port, TR_PORT_TAG_LINE, "alive");
    CHECK(children_count() == 1);
    tr_reason why = tr_reason_make(TR_EXIT_ERROR, 77, "test kills it");
    CHECK_OK(tr_exit(ctx, port, &why));
    check_reason(test_wait_down(ctx, port), TR_EXIT_ERROR, 77);
    check_clean(fds); /* reaped before the DOWN went out */

    /* A command (and its child) that ignore SIGTERM get SIGKILL after the
     * grace period; a background child in the group goes too. */
    const char *stubborn[] = {"sh", "-c", "trap '' TERM; sleep 1000 & echo ready; wait", NULL};
    tr_port_opts o = TR_PORT_OPTS_INIT;
    o.kill_grace_ms = 100;
    CHECK_OK(tr_port_spawn(&port, ctx, stubborn, &o));
    CHECK_OK(tr_monitor(ctx, port, &mon));
    expect_str(ctx, port, TR_PORT_TAG_LINE, "ready");
    why = tr_reason_make(TR_EXIT_KILLED, 0, NULL);
    CHECK_OK(tr_exit(ctx, port, &why));
    check_reason(test_wait_down(ctx, port), TR_EXIT_KILLED, 0);
    CHECK(port_counters(rt).killed == 2);

    /* Runtime stop ends live ports and their commands. */
    CHECK_OK(tr_port_spawn(&port, ctx, argv, NULL));
    finish(rt, ctx, fds);
}

static void test_missing(void)
{
    tr_ctx *ctx;
    int fds;
    tr_runtime *rt = start(&ctx, &fds);
    tr_ref port;
    const char *abs[] = {"/nonexistent/troupe-no-such-command", NULL};
    CHECK_ERR(tr_port_spawn(&port, ctx, abs, NULL), TR_ENOTFOUND);
    const char *path[] = {"troupe-no-such-command", NULL};
    CHECK_ERR(tr_port_spawn(&port, ctx, path, NULL), TR_ENOTFOUND);
    const char *truth[] = {"true", NULL};
    tr_port_opts o = TR_PORT_OPTS_INIT;
    o.dir = "/nonexistent/troupe-dir";
    CHECK_ERR(tr_port_spawn(&port, ctx, truth, &o), TR_ENOTFOUND);
    const char *notexec[] = {"/dev/null", NULL};
    CHECK_ERR(tr_port_spawn(&port, ctx, notexec, NULL), TR_ESYS);
    /* Caller mistakes are not counted. */
    const char *empty[] = {NULL};
    CHECK_ERR(tr_port_spawn(&port, ctx, empty, NULL), TR_EINVAL);
    CHECK_ERR(tr_port_spawn(&port, ctx, NULL, NULL), TR_EINVAL);
    o = (tr_port_opts)TR_PORT_OPTS_INIT;
    o.spawn.trap_exit = true;
    CHECK_ERR(tr_port_spawn(&port, ctx, truth, &o), TR_EINVAL);
    tr_port_counters c = port_counters(rt);
    CHECK(c.spawn_failed == 4 && c.spawned == 0);
    check_clean(fds);
    finish(rt, ctx, fds);
}

static void test_stdin_eof(void)
{
    tr_ctx *ctx;
    int fds;
    tr_runtime *rt = start(&ctx, &fds);
    const char *argv[] = {"wc", "-l", NULL};
    tr_ref port = spawn_linked(ctx, argv, NULL);
    for (int i = 0; i < 1000; i++)
        send_str(ctx, port, "a line\n");
    CHECK_OK(tr_send_tag(ctx, port, TR_PORT_TAG_EOF));
    expect_str(ctx, port, TR_PORT_TAG_LINE, "1000");
    check_reason(wait_exit(ctx, port), TR_EXIT_NORMAL, 0);

    /* A command that reads only part of its input. */
    const char *head[] = {"head", "-c", "1", NULL};
    port = spawn_linked(ctx, head, NULL);
    send_str(ctx, port, "xy\n");
    expect_str(ctx, port, TR_PORT_TAG_LINE, "x");
    check_reason(wait_exit(ctx, port), TR_EXIT_NORMAL, 0);

    /* Writes after EOF are refused, and counted, while the command lives. */
    const char *after[] = {"sh", "-c", "cat >/dev/null; echo closed; exec sleep 1000", NULL};
    port = spawn_linked(ctx, after, NULL);
    send_str(ctx, port, "read and dropped\n");
    CHECK_OK(tr_send_tag(ctx, port, TR_PORT_TAG_EOF));
    expect_str(ctx, port, TR_PORT_TAG_LINE, "closed");
    tr_msg *m, *reply;
    CHECK_OK(tr_msg_new(&m, ctx, "write"));
    CHECK_OK(tr_pack_str(m, "too late\n"));
    CHECK_ERR(tr_call(ctx, port, m, TEST_WAIT_MS, &reply), TR_ECANCELED);
    send_str(ctx, port, "also too late\n");
    /* A second EOF is harmless; as a request it also tells us the port
     * handled the send before it. */
    CHECK_OK(tr_msg_new(&m, ctx, TR_PORT_TAG_EOF));
    CHECK_OK(tr_call(ctx, port, m, TEST_WAIT_MS, &reply));
    tr_msg_free(reply);
    CHECK(port_counters(rt).in_refused == 2);
    tr_reason why = tr_reason_make(TR_EXIT_SHUTDOWN, 0, NULL);
    CHECK_OK(tr_exit(ctx, port, &why));
    check_reason(wait_exit(ctx, port), TR_EXIT_SHUTDOWN, 0);
    CHECK(port_counters(rt).killed == 1);
    finish(rt, ctx, fds);
}

static void test_long_lines(void)
{
    tr_ctx *ctx;
    int fds;
    tr_runtime *rt = start(&ctx, &fds);
    const char *argv[] = {"cat", NULL};
    tr_port_opts o = TR_PORT_OPTS_INIT;
    o.max_msg = 16;
    tr_ref port = spawn_linked(ctx, argv, &o);
    send_str(ctx, port, "0123456789abcdef\n"); /* exactly max_msg: one line */
    send_str(ctx, port, "0123456789abcdefghijklmnopqrstuvwxyz-end\n");
    send_str(ctx, port, "0123456789ABCDEF0123456789abcdef\n"); /* twice max_msg */
    CHECK_OK(tr_send_tag(ctx, port, TR_PORT_TAG_EOF));
    expect_str(ctx, port, TR_PORT_TAG_LINE, "0123456789abcdef");
    expect_str(ctx, port, TR_PORT_TAG_PART, "0123456789abcdef");
    expect_str(ctx, port, TR_PORT_TAG_PART, "ghijklmnopqrstuv");
    expect_str(ctx, port, TR_PORT_TAG_LINE, "wxyz-end");
    expect_str(ctx, port, TR_PORT_TAG_PART, "0123456789ABCDEF");
    expect_str(ctx, port, TR_PORT_TAG_LINE, "0123456789abcdef"); /* the last piece ends it */
    check_reason(wait_exit(ctx, port), TR_EXIT_NORMAL, 0);
    CHECK(port_counters(rt).parts == 3);
    finish(rt, ctx, fds);
}

static void test_stderr_env_dir(void)
{
    tr_ctx *ctx;
    int fds;
    tr_runtime *rt = start(&ctx, &fds);
    const char *argv[] = {"sh", "-c", "echo \"$TROUPE_PORT_TEST\"; pwd; echo oops >&2", NULL};
    const char *env[] = {"TROUPE_PORT_TEST=from env", NULL};
    tr_port_opts o = TR_PORT_OPTS_INIT;
    o.err = TR_PORT_STDERR_MESSAGES;
    o.env = env;
    o.dir = "/";
    tr_ref port = spawn_linked(ctx, argv, &o);
    expect_str(ctx, port, TR_PORT_TAG_LINE, "from env");
    expect_str(ctx, port, TR_PORT_TAG_LINE, "/");
    expect_str(ctx, port, TR_PORT_TAG_ERR, "oops");
    check_reason(wait_exit(ctx, port), TR_EXIT_NORMAL, 0);

    /* Discarded stderr sends nothing. */
    const char *noisy[] = {"sh", "-c", "echo gone >&2; echo kept", NULL};
    o = (tr_port_opts)TR_PORT_OPTS_INIT;
    o.err = TR_PORT_STDERR_DISCARD;
    port = spawn_linked(ctx, noisy, &o);
    expect_str(ctx, port, TR_PORT_TAG_LINE, "kept");
    check_reason(wait_exit(ctx, port), TR_EXIT_NORMAL, 0);
    test_recv_none(ctx, TR_PORT_TAG_ERR, 20);
    finish(rt, ctx, fds);
}

/* The child gets descriptors 0, 1 and 2 only, even when this process holds
 * one that is not close-on-exec. */
static void test_child_fds(const char *self_exe)
{
    tr_ctx *ctx;
    int fds;
    int leaky = open("/dev/null", O_RDONLY); /* deliberately inheritable */
    CHECK(leaky >= 0);
    tr_runtime *rt = start(&ctx, &fds);
    const char *argv[] = {self_exe, "--child-fds", NULL};
    tr_port_opts o = TR_PORT_OPTS_INIT;
    o.err = TR_PORT_STDERR_MESSAGES;
    tr_ref port = spawn_linked(ctx, argv, &o);
    expect_str(ctx, port, TR_PORT_TAG_LINE, "inherited above 2: 0");
    check_reason(wait_exit(ctx, port), TR_EXIT_NORMAL, 0);
    finish(rt, ctx, fds);
    close(leaky);
}

static void test_bad_frames(void)
{
    tr_ctx *ctx;
    int fds;
    tr_runtime *rt = start(&ctx, &fds);
    tr_port_opts o = TR_PORT_OPTS_INIT;
    o.framing = TR_PORT_FRAMES;
    o.max_msg = 8;
    /* A good frame (the integer 1), then a byte msgpack never uses. */
    const char *bad[] = {"sh", "-c", "printf '\\000\\000\\000\\001\\001\\000\\000\\000\\001\\301'",
                         NULL};
    tr_ref port = spawn_linked(ctx, bad, &o);
    tr_msg *m = test_recv(ctx, TR_PORT_TAG_FRAME);
    int64_t v;
    CHECK_OK(tr_msg_int(m, &v));
    CHECK(v == 1);
    tr_msg_free(m);
    check_reason(wait_exit(ctx, port), TR_EXIT_ERROR, TR_EBADMSG);
    /* Two objects in one frame. */
    const char *two[] = {"sh", "-c", "printf '\\000\\000\\000\\002\\001\\002'", NULL};
    check_reason(wait_exit(ctx, spawn_linked(ctx, two, &o)), TR_EXIT_ERROR, TR_EBADMSG);
    /* Cut short at end of output. */
    const char *cut[] = {"sh", "-c", "printf '\\000\\000\\000\\005ab'", NULL};
    check_reason(wait_exit(ctx, spawn_linked(ctx, cut, &o)), TR_EXIT_ERROR, TR_EBADMSG);
    /* Longer than max_msg: the command is killed without being read. */
    const char *big[] = {"sh", "-c", "printf '\\177\\377\\377\\377'; exec cat", NULL};
    check_reason(wait_exit(ctx, spawn_linked(ctx, big, &o)), TR_EXIT_ERROR, TR_ETOOBIG);
    tr_port_counters c = port_counters(rt);
    CHECK(c.bad_frames == 4 && c.out_msgs == 1);
    finish(rt, ctx, fds);
}

/* ---- a port follows its owner -------------------------------------------- */

static int owner_run(tr_ctx *ctx, void *state)
{
    const char *argv[] = {"cat", NULL};
    tr_ref port, main_ref;
    tr_msg *m;
    CHECK_OK(tr_receive(ctx, "main", NULL, NULL, TEST_WAIT_MS, &m));
    main_ref = test_read_ref(m);
    tr_msg_free(m);
    CHECK_OK(tr_port_spawn(&port, ctx, argv, NULL));
    CHECK_OK(tr_send(ctx, main_ref, test_msg_ref(ctx, "port", port)));
    CHECK_OK(tr_receive(ctx, "quit", NULL, NULL, TEST_WAIT_MS, &m));
    tr_msg_free(m);
    return 0;
}

static const tr_behaviour owner_b = {.name = "owner", .run = owner_run};

static void test_owner_exit(void)
{
    tr_ctx *ctx;
    int fds;
    tr_runtime *rt = start(&ctx, &fds);
    tr_spawn_opts so = TR_SPAWN_OPTS_INIT;
    so.kind = TR_THREAD;
    tr_ref owner;
    CHECK_OK(tr_spawn(&owner, ctx, &owner_b, NULL, &so));
    CHECK_OK(tr_send(ctx, owner, test_msg_ref(ctx, "main", tr_self(ctx))));
    tr_msg *m = test_recv(ctx, "port");
    tr_ref port = test_read_ref(m);
    tr_msg_free(m);
    tr_monitor_id mon;
    CHECK_OK(tr_monitor(ctx, port, &mon));
    CHECK(children_count() == 1);
    CHECK_OK(tr_send_tag(ctx, owner, "quit"));
    check_reason(test_wait_down(ctx, port), TR_EXIT_SHUTDOWN, 0);
    check_clean(fds);
    CHECK(port_counters(rt).killed == 1);
    finish(rt, ctx, fds);
}

/* ---- flooding ------------------------------------------------------------ */

enum {
    FLOOD_LIMIT = 64
};

typedef struct flood_owner {
    tr_ref main;
    int64_t count;
} flood_owner;

/* Spawns `seq 1 n`, reads nothing until the port had to wait for room in
 * this actor's bounded mailbox, then takes every line. */
static int flood_run(tr_ctx *ctx, void *state)
{
    flood_owner *f = state;
    tr_msg *m;
    CHECK_OK(tr_receive(ctx, "start", NULL, NULL, TEST_WAIT_MS, &m));
    int64_t n;
    tr_cursor c;
    uint32_t len;
    tr_cursor_init(&c, m);
    CHECK_OK(tr_cursor_array(&c, &len));
    CHECK_OK(tr_cursor_ref(&c, &f->main));
    CHECK_OK(tr_cursor_int(&c, &n));
    tr_msg_free(m);

    char count[32];
    snprintf(count, sizeof count, "%" PRId64, n);
    const char *argv[] = {"seq", "1", count, NULL};
    tr_ref port;
    tr_monitor_id mon;
    CHECK_OK(tr_port_spawn(&port, ctx, argv, NULL));
    CHECK_OK(tr_monitor(ctx, port, &mon)); /* cannot end before we read */
    tr_runtime *rt = tr_ctx_runtime(ctx);
    WAIT_UNTIL(port_counters(rt).owner_full > 0);

    for (;;) {
        CHECK_OK(tr_receive(ctx, NULL, NULL, NULL, TEST_WAIT_MS, &m));
        if (tr_msg_is(m, TR_TAG_DOWN)) {
            tr_ref who;
            tr_monitor_id id;
            tr_reason why;
            CHECK_OK(tr_msg_down_info(m, &who, &id, &why));
            CHECK(tr_ref_eq(who, port) && why.kind == TR_EXIT_NORMAL);
            tr_msg_free(m);
            break;
        }
        CHECK(tr_msg_is(m, TR_PORT_TAG_LINE));
        const char *s;
        size_t slen;
        tr_cursor_init(&c, m);
        CHECK_OK(tr_cursor_str(&c, &s, &slen));
        char want[32];
        int wlen = snprintf(want, sizeof want, "%" PRId64, f->count + 1);
        if ((size_t)wlen != slen || memcmp(s, want, slen) != 0)
            TEST_FAIL("line %" PRId64 " is '%.*s'", f->count + 1, (int)slen, s);
        f->count++;
        tr_msg_free(m);
    }
    CHECK_OK(tr_send_int(ctx, f->main, "count", f->count));
    return 0;
}

static const tr_behaviour flood_b = {
    .name = "flood", .state_size = sizeof(flood_owner), .run = flood_run};

static void test_flood(void)
{
    tr_ctx *ctx;
    int fds;
    tr_runtime *rt = start(&ctx, &fds);
    int64_t n = (int64_t)test_scale(100000);
    tr_spawn_opts so = TR_SPAWN_OPTS_INIT;
    so.kind = TR_THREAD;
    so.mailbox_limit = FLOOD_LIMIT;
    so.overflow = TR_OVERFLOW_REJECT;
    tr_ref owner;
    CHECK_OK(tr_spawn(&owner, ctx, &flood_b, NULL, &so));
    tr_msg *m;
    CHECK_OK(tr_msg_new(&m, ctx, "start"));
    CHECK_OK(tr_pack_array(m, 2));
    CHECK_OK(tr_pack_ref(m, tr_self(ctx)));
    CHECK_OK(tr_pack_int(m, n));
    CHECK_OK(tr_send(ctx, owner, m));
    CHECK(test_recv_int(ctx, "count") == n);

    tr_counters rc = test_counters(rt);
    tr_port_counters c = port_counters(rt);
    printf("flood: %" PRId64 " lines, deepest mailbox %" PRIu64 ", owner full %" PRIu64 " times\n",
           n, rc.max_mailbox_depth, c.owner_full);
    /* Nothing lost, and nothing piled up: the owner never held more than
     * its limit (plus the control messages that bypass it), and the port
     * itself holds at most PORT_OUT_MSGS by design. */
    CHECK(c.out_msgs == (uint64_t)n && c.out_dropped == 0);
    CHECK(c.owner_full >= 1);
    CHECK(rc.max_mailbox_depth <= FLOOD_LIMIT + 16);
    finish(rt, ctx, fds);
}

/* ---- input backpressure -------------------------------------------------- */

/* A port with a bounded mailbox: while its command does not read, writes
 * pile up to the port's high-water mark, then in its mailbox up to the
 * limit, then senders get TR_EFULL. Nothing is lost once the command reads.
 * The port's kicks to itself go through timers here (control lane). */
static void test_input_backpressure(void)
{
    tr_ctx *ctx;
    int fds;
    tr_runtime *rt = start(&ctx, &fds);
    const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    char dir[512], go[600], script[800];
    snprintf(dir, sizeof dir, "%s/troupe-port-XXXXXX", tmp);
    CHECK(mkdtemp(dir) != NULL);
    snprintf(go, sizeof go, "%s/go", dir);
    /* The command reads nothing until the file "go" exists. */
    snprintf(script, sizeof script,
             "while [ ! -e '%s' ]; do sleep 0.01; done; echo reading; exec cat", go);
    const char *argv[] = {"sh", "-c", script, NULL};
    tr_port_opts o = TR_PORT_OPTS_INIT;
    o.spawn.mailbox_limit = 4;
    o.spawn.overflow = TR_OVERFLOW_REJECT;
    tr_ref port = spawn_linked(ctx, argv, &o);

    enum {
        LINE = 4096,
        LINES = 400
    }; /* 1.6 MB, far over what pipe and port hold */
    char *line = malloc(LINE + 1);
    CHECK(line != NULL);
    memset(line, 'x', LINE - 1);
    line[LINE - 1] = '\n';
    line[LINE] = '\0';
    int sent = 0, full = 0;
    while (sent < LINES) {
        tr_msg *m;
        CHECK_OK(tr_msg_new(&m, ctx, "write"));
        CHECK_OK(tr_pack_str(m, line));
        tr_err err = tr_send(ctx, port, m);
        if (err == TR_OK) {
            sent++;
            continue;
        }
        CHECK(err == TR_EFULL);
        tr_msg_free(m);
        if (full++ == 0) {
            FILE *f = fopen(go, "w"); /* now let the command read */
            CHECK(f != NULL);
            fclose(f);
        }
        test_sleep_ms(1);
    }
    CHECK(full > 0);
    tr_err err;
    while ((err = tr_send_tag(ctx, port, TR_PORT_TAG_EOF)) == TR_EFULL)
        test_sleep_ms(1);
    CHECK_OK(err);
    expect_str(ctx, port, TR_PORT_TAG_LINE, "reading");
    for (int i = 0; i < LINES; i++) {
        line[LINE - 1] = '\0';
        expect_str(ctx, port, TR_PORT_TAG_LINE, line);
    }
    check_reason(wait_exit(ctx, port), TR_EXIT_NORMAL, 0);
    tr_port_counters c = port_counters(rt);
    CHECK(c.in_msgs == LINES && c.in_refused == 0 && c.in_bytes_lost == 0);
    free(line);
    unlink(go);
    rmdir(dir);
    finish(rt, ctx, fds);
}

/* ---- many ports ---------------------------------------------------------- */

static void test_many(void)
{
    tr_ctx *ctx;
    int fds;
    tr_runtime *rt = start(&ctx, &fds);
    enum {
        PORTS = 100
    };
    tr_ref ports[PORTS];
    const char *argv[] = {"head", "-n", "1", NULL};
    for (int i = 0; i < PORTS; i++) {
        tr_monitor_id mon;
        CHECK_OK(tr_port_spawn(&ports[i], ctx, argv, NULL));
        CHECK_OK(tr_monitor(ctx, ports[i], &mon));
    }
    CHECK(children_count() == PORTS);
    for (int i = 0; i < PORTS; i++) {
        char line[32];
        snprintf(line, sizeof line, "port %d\n", i);
        send_str(ctx, ports[i], line);
    }
    int downs = 0, lines = 0;
    while (downs < PORTS) {
        tr_msg *m = test_recv(ctx, NULL);
        if (tr_msg_is(m, TR_TAG_DOWN)) {
            tr_ref who;
            tr_monitor_id id;
            tr_reason why;
            CHECK_OK(tr_msg_down_info(m, &who, &id, &why));
            check_reason(why, TR_EXIT_NORMAL, 0);
            downs++;
        } else {
            CHECK(tr_msg_is(m, TR_PORT_TAG_LINE));
            lines++;
        }
        tr_msg_free(m);
    }
    CHECK(lines == PORTS); /* each port's line came before its DOWN */
    check_clean(fds);
    tr_port_counters c = port_counters(rt);
    CHECK(c.spawned == PORTS && c.exited == PORTS && c.killed == 0);
    finish(rt, ctx, fds);
}

/* ---- the test as its own child ------------------------------------------- */

static int child_fds(void)
{
    int n = 0;
    for (int fd = 3; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    printf("inherited above 2: %d\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child-fds") == 0)
        return child_fds();
    char self_exe[4096];
    ssize_t len = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    CHECK(len > 0);
    self_exe[len] = '\0';

    tr_runtime *boot;
    CHECK_OK(tr_runtime_start(&boot, NULL));
    tr_runtime_free(boot);
    g_base_children = children_raw();
    CHECK(g_base_children <= 1);

    test_lines_echo();
    test_frames_echo();
    test_exit_reasons();
    test_kill();
    test_missing();
    test_stdin_eof();
    test_long_lines();
    test_stderr_env_dir();
    test_child_fds(self_exe);
    test_bad_frames();
    test_owner_exit();
    test_flood();
    test_input_backpressure();
    test_many();
    printf("port: all checks passed\n");
    return 0;
}
