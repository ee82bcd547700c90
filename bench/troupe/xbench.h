/*
 * xbench.h — what the cross-process troupe benchmarks share on top of
 * bench.h: the transport argument (proc, ipc or tcp), a second node in a
 * forked OS process, and percentiles.
 *
 * "proc": the remote actor is a process actor (TR_PROCESS) of the one
 * runtime; it links back to its parent over ipc:// by itself.
 * "ipc", "tcp": the program forks itself before any runtime starts; the
 * child is node B (its own runtime, listening), which spawns the remote
 * actor as a pooled actor and passes its reference up a pipe; the parent
 * is node A, which listens too (so B can answer) and connects to B.
 */
#ifndef TROUPE_XBENCH_H
#define TROUPE_XBENCH_H

#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

enum xmode {
    XMODE_PROC,
    XMODE_IPC,
    XMODE_TCP
};

static inline enum xmode xbench_mode(int argc, char **argv, int idx)
{
    const char *s = idx < argc ? argv[idx] : "proc";
    if (strcmp(s, "proc") == 0)
        return XMODE_PROC;
    if (strcmp(s, "ipc") == 0)
        return XMODE_IPC;
    if (strcmp(s, "tcp") == 0)
        return XMODE_TCP;
    fprintf(stderr, "%s: transport must be proc, ipc or tcp, got '%s'\n", argv[0], s);
    exit(2);
}

static inline const char *xbench_mode_name(enum xmode m)
{
    return m == XMODE_PROC ? "proc" : m == XMODE_IPC ? "ipc" : "tcp";
}

/* URL of node `which` ('a' or 'b') of this run. TCP ports come from the
 * parent's pid so that concurrent runs rarely collide. */
static inline void xbench_url(char *buf, size_t len, enum xmode m, pid_t parent, char which)
{
    if (m == XMODE_TCP) {
        int port = 20000 + (int)(parent % 20000) * 2 + (which == 'b');
        snprintf(buf, len, "tcp://127.0.0.1:%d", port);
    } else {
        const char *dir = getenv("TMPDIR");
        snprintf(buf, len, "ipc://%s/troupe-xbench-%ld-%c.sock", dir && *dir ? dir : "/tmp",
                 (long)parent, which);
    }
}

static inline void xbench_write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        ssize_t w = write(fd, c, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(1);
        c += w;
        len -= (size_t)w;
    }
}

static inline bool xbench_read_all(int fd, void *p, size_t len)
{
    char *c = p;
    while (len > 0) {
        ssize_t r = read(fd, c, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        c += r;
        len -= (size_t)r;
    }
    return true;
}

/* A second node in a child process. */
typedef struct xnode {
    pid_t pid;
    int down_fd; /* a byte on it tells node B to stop (the runtime's fork
                    server holds a copy, so closing it alone is not seen) */
    tr_ref actor;
} xnode;

/*
 * Forks node B, which listens at url_b, spawns b (pooled) and hands its
 * reference back. Must be called before this process starts a runtime.
 * Exits the program when node B cannot be set up.
 */
static inline xnode xbench_node_b(const char *url_b, const tr_behaviour *b)
{
    int up[2], down[2];
    if (pipe(up) != 0 || pipe(down) != 0) {
        perror("pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        tr_runtime *rt;
        tr_ctx *ctx = bench_start(&rt);
        tr_ref actor;
        bench_check(tr_listen(rt, url_b), "node B listen");
        bench_check(tr_spawn(&actor, ctx, b, NULL, NULL), "node B spawn");
        xbench_write_all(up[1], &actor, sizeof actor);
        char c;
        while (read(down[0], &c, 1) < 0 && errno == EINTR)
            ;
        bench_stop(rt, ctx);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    xnode n = {pid, down[1], TR_REF_NIL};
    if (!xbench_read_all(up[0], &n.actor, sizeof n.actor)) {
        fprintf(stderr, "troupe bench: node B did not start\n");
        waitpid(pid, NULL, 0);
        exit(1);
    }
    close(up[0]);
    return n;
}

/* Node A's side: listen at url_a, connect to url_b, check the node id. */
static inline void xbench_connect(tr_runtime *rt, const char *url_a, const char *url_b,
                                  const xnode *n)
{
    uint64_t node = 0;
    bench_check(tr_listen(rt, url_a), "node A listen");
    bench_check(tr_connect(rt, url_b, 10000, &node), "node A connect");
    if (node != n->actor.node)
        bench_fail("connected to node %llx, expected %llx", (unsigned long long)node,
                   (unsigned long long)n->actor.node);
}

/* Stops node B and checks that it ended cleanly. */
static inline void xbench_node_b_end(xnode *n)
{
    int status = 0;
    xbench_write_all(n->down_fd, "x", 1);
    close(n->down_fd);
    while (waitpid(n->pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_fail("node B ended with status %#x", status);
}

/* Spawns b as a process actor and waits (untimed) until it answers a
 * request "hello", so the timed part starts with the child ready. */
static inline tr_ref xbench_proc_actor(tr_ctx *ctx, const tr_behaviour *b)
{
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_PROCESS;
    tr_ref r;
    tr_msg *hello, *reply = NULL;
    bench_check(tr_spawn(&r, ctx, b, NULL, &o), "spawn process actor");
    bench_check(tr_msg_new(&hello, ctx, "hello"), "new hello");
    bench_check(tr_call(ctx, r, hello, 30000, &reply), "hello to the process actor");
    tr_msg_free(reply);
    return r;
}

static int xbench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of v[0..n), nearest rank; sorts v. */
static inline double xbench_percentile(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, xbench_cmp_double);
    size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

/* Answers request m with a message tag whose payload is this process's
 * pid (what the cross-process rows' children say). */
static inline tr_err xbench_reply_pid(tr_ctx *ctx, const tr_msg *m, const char *tag)
{
    tr_msg *r;
    tr_err err = tr_msg_new(&r, ctx, tag);
    if (err == TR_OK)
        err = tr_pack_int(r, getpid());
    if (err == TR_OK && (err = tr_reply(ctx, m, r)) != TR_OK)
        tr_msg_free(r);
    return err;
}

#endif /* TROUPE_XBENCH_H */
