/*
 * remote.c — messages between two nodes in two processes over a node link.
 *
 * The program forks before it starts any runtime (nng must not be used
 * before a fork). The child is the server node: it listens at URL, spawns
 * a "pong" actor (answers every "ball" with the number plus one) and a
 * "counter" actor (counts "n" messages and reports the count on "last"),
 * and writes their references to a pipe. The parent is the client node: it
 * connects to URL and runs the workload with a pooled actor of its own.
 *
 *   pingpong  one integer bounces N round trips; prints ns per round trip
 *   counting  N integers one way, then one reply; prints messages per second
 *
 * Usage: troupe_remote URL pingpong|counting N
 * URL is ipc://PATH or tcp://HOST:PORT (inproc:// cannot cross processes).
 * Each node runs one worker thread, so the two processes share the two cores.
 */
#include "bench.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

/* ---- server node ---------------------------------------------------------- */

static int pong_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    int64_t n;
    tr_err err = tr_msg_int(m, &n);
    if (err != TR_OK)
        return err;
    return tr_send_int(ctx, tr_msg_from(m), "ball", n + 1);
}

typedef struct counter_state {
    int64_t count;
} counter_state;

static int counter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    counter_state *s = state;
    s->count++;
    if (tr_msg_is(m, "last"))
        return tr_send_int(ctx, tr_msg_from(m), "count", s->count);
    return TR_OK;
}

static const tr_behaviour pong_beh = {.name = "pong", .handle = pong_handle};
static const tr_behaviour counter_beh = {
    .name = "counter", .state_size = sizeof(counter_state), .handle = counter_handle};

static tr_runtime *start_node(const char *name)
{
    tr_runtime_opts o = TR_RUNTIME_OPTS_INIT;
    o.workers = 1;
    o.node_name = name;
    tr_runtime *rt;
    bench_check(tr_runtime_start(&rt, &o), "start runtime");
    return rt;
}

/* Runs the server node until its parent closes the control pipe. */
static void server(const char *url, int ref_fd, int quit_fd)
{
    tr_runtime *rt = start_node("server");
    bench_check(tr_listen(rt, url), "listen");
    tr_ctx *ctx;
    bench_check(tr_attach(&ctx, rt), "attach");
    tr_ref refs[2];
    bench_check(tr_spawn(&refs[0], ctx, &pong_beh, NULL, NULL), "spawn pong");
    bench_check(tr_spawn(&refs[1], ctx, &counter_beh, NULL, NULL), "spawn counter");
    if (write(ref_fd, refs, sizeof refs) != (ssize_t)sizeof refs)
        _exit(1);
    char c;
    while (read(quit_fd, &c, 1) > 0) {
    }
    tr_detach(ctx);
    tr_runtime_free(rt);
    _exit(0);
}

/* ---- client node ---------------------------------------------------------- */

typedef struct ping_state {
    tr_ref peer;
    tr_ref report_to;
    int64_t rounds;
} ping_state;

static int ping_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    ping_state *s = state;
    int64_t n;
    tr_err err = tr_msg_int(m, &n);
    if (err != TR_OK)
        return err;
    if (tr_msg_is(m, "play")) {
        s->report_to = tr_msg_from(m);
        s->rounds = n;
        return tr_send_int(ctx, s->peer, "ball", 0);
    }
    if (n < s->rounds)
        return tr_send_int(ctx, s->peer, "ball", n);
    return tr_send_int(ctx, s->report_to, "done", n);
}

static int ping_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    ping_state *s = state;
    tr_cursor c;
    tr_cursor_init(&c, args);
    return tr_cursor_ref(&c, &s->peer);
}

static const tr_behaviour ping_beh = {
    .name = "ping", .state_size = sizeof(ping_state), .init = ping_init, .handle = ping_handle};

static void pingpong(tr_ctx *ctx, tr_ref pong, long n)
{
    tr_msg *args;
    bench_check(tr_msg_new(&args, ctx, "args"), "args");
    bench_check(tr_pack_ref(args, pong), "args");
    tr_ref ping;
    bench_check(tr_spawn(&ping, ctx, &ping_beh, args, NULL), "spawn ping");
    double t0 = bench_now();
    bench_check(tr_send_int(ctx, ping, "play", n), "play");
    int64_t got = bench_wait_int(ctx, "done");
    double dt = bench_now() - t0;
    if (got != n)
        bench_fail("pingpong: %lld round trips, expected %ld", (long long)got, n);
    bench_result("remote_pingpong", n, dt, "ns_per_roundtrip", dt * 1e9 / (double)n, "");
}

static void counting(tr_ctx *ctx, tr_ref counter, long n)
{
    double t0 = bench_now();
    for (long i = 0; i < n - 1; i++) {
        tr_err err;
        while ((err = tr_send_int(ctx, counter, "n", i)) == TR_ENOMEM)
            usleep(100);
        bench_check(err, "send");
    }
    bench_check(tr_send_int(ctx, counter, "last", n - 1), "send last");
    int64_t got = bench_wait_int(ctx, "count");
    double dt = bench_now() - t0;
    if (got != n)
        bench_fail("counting: %lld arrived, expected %ld", (long long)got, n);
    bench_result("remote_counting", n, dt, "msgs_per_s", (double)n / dt, "");
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[2], "pingpong") != 0 && strcmp(argv[2], "counting") != 0)) {
        fprintf(stderr, "usage: %s URL pingpong|counting [N]\n", argv[0]);
        return 2;
    }
    const char *url = argv[1];
    bool is_ping = strcmp(argv[2], "pingpong") == 0;
    long n = bench_arg(argc, argv, 3, is_ping ? 20000 : 1000000);
    int refs_pipe[2], quit_pipe[2];
    if (pipe(refs_pipe) != 0 || pipe(quit_pipe) != 0)
        return 1;
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        close(refs_pipe[0]);
        close(quit_pipe[1]);
        server(url, refs_pipe[1], quit_pipe[0]);
    }
    close(refs_pipe[1]);
    close(quit_pipe[0]);
    tr_ref refs[2];
    if (read(refs_pipe[0], refs, sizeof refs) != (ssize_t)sizeof refs) {
        fprintf(stderr, "troupe_remote: the server node did not start\n");
        return 1;
    }

    tr_runtime *rt = start_node("client");
    /* Older link layers answered over a connection of their own, so the
     * client listens too; the address is the server's with a suffix. */
    char back[300];
    if (strncmp(url, "tcp://", 6) == 0) {
        const char *colon = strrchr(url, ':');
        snprintf(back, sizeof back, "%.*s:%d", (int)(colon - url), url, atoi(colon + 1) + 1);
    } else {
        snprintf(back, sizeof back, "%s.back", url);
    }
    bench_check(tr_listen(rt, back), "listen");
    uint64_t node;
    bench_check(tr_connect(rt, url, 10000, &node), "connect");
    tr_ctx *ctx;
    bench_check(tr_attach(&ctx, rt), "attach");
    if (is_ping)
        pingpong(ctx, refs[0], n);
    else
        counting(ctx, refs[1], n);
    tr_detach(ctx);
    tr_runtime_free(rt);
    close(quit_pipe[1]);
    int status;
    waitpid(child, &status, 0);
    if (strncmp(back, "ipc://", 6) == 0)
        unlink(back + 6);
    return 0;
}
