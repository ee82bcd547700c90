/*
 * pingpong.c — two pooled actors bounce a ball back and forth N times.
 *
 * Python lesson: Effective Python item 55, "Use Queue to coordinate work
 * between threads". Two Python threads handing a value back and forth
 * through a pair of Queues pay for a lock and a thread wake-up on every
 * hand-off, so the hand-off, not the work, sets the pace.
 *
 * troupe idiom: the two players are pooled actors. A hand-off is a send to
 * the other actor's mailbox; no thread is created or blocked per player, and
 * the worker pool runs whichever player has mail. main is an attached
 * thread: it starts the game with one message and waits for the result
 * with tr_receive.
 *
 * Usage: pingpong [round-trips]   (default 100000)
 */
#include <troupe.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ping keeps score; pong only sends the ball back, one higher. */
typedef struct ping_state {
    tr_ref pong;      /* the other player, from the spawn arguments */
    tr_ref report_to; /* who asked for the game (main) */
    int64_t rounds;   /* round trips to play */
} ping_state;

static int ping_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    ping_state *s = state;
    tr_cursor c;

    tr_cursor_init(&c, args);
    return tr_cursor_ref(&c, &s->pong); /* non-zero: the actor exits */
}

static int ping_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    ping_state *s = state;
    int64_t n;
    tr_err err = tr_msg_int(m, &n);

    if (err != TR_OK)
        return err;
    if (tr_msg_is(m, "play")) { /* from main: play n round trips */
        s->report_to = tr_msg_from(m);
        s->rounds = n;
        return tr_send_int(ctx, s->pong, "ball", 0);
    }
    if (tr_msg_is(m, "ball")) { /* back from pong: n round trips so far */
        if (n < s->rounds)
            return tr_send_int(ctx, s->pong, "ball", n);
        return tr_send_int(ctx, s->report_to, "done", n);
    }
    return TR_OK;
}

static int pong_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    int64_t n;
    tr_err err = tr_msg_int(m, &n);

    if (err != TR_OK)
        return err;
    return tr_send_int(ctx, tr_msg_from(m), "ball", n + 1);
}

static const tr_behaviour ping_behaviour = {
    .name = "ping", .state_size = sizeof(ping_state), .init = ping_init, .handle = ping_handle};
static const tr_behaviour pong_behaviour = {.name = "pong", .handle = pong_handle};

/* Prints what failed and returns true when err is an error. */
static bool failed(tr_err err, const char *what)
{
    if (err != TR_OK)
        fprintf(stderr, "pingpong: %s: %s (%s)\n", what, tr_err_name(err), tr_strerror(err));
    return err != TR_OK;
}

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
    long rounds = 100000;
    tr_runtime *rt = NULL;
    tr_ctx *ctx = NULL;
    tr_msg *args = NULL, *done = NULL;
    tr_ref ping, pong;
    struct timespec t0, t1;
    int64_t played = 0;
    int rc = 1;

    if (argc > 1) {
        char *end;
        rounds = strtol(argv[1], &end, 10);
        if (*end != '\0' || rounds < 1) {
            fprintf(stderr, "usage: %s [round-trips >= 1]\n", argv[0]);
            return 2;
        }
    }

    if (failed(tr_runtime_start(&rt, NULL), "start runtime") ||
        failed(tr_attach(&ctx, rt), "attach main"))
        goto out;

    /* Spawn pong first so ping can be told where it is. */
    if (failed(tr_spawn(&pong, ctx, &pong_behaviour, NULL, NULL), "spawn pong") ||
        failed(tr_msg_new(&args, ctx, "args"), "new args") ||
        failed(tr_pack_ref(args, pong), "pack pong"))
        goto out;
    if (failed(tr_spawn(&ping, ctx, &ping_behaviour, args, NULL), "spawn ping"))
        goto out;
    args = NULL; /* the spawn consumed it */

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (failed(tr_send_int(ctx, ping, "play", rounds), "send play") ||
        failed(tr_receive(ctx, "done", NULL, NULL, 60000, &done), "wait for done") ||
        failed(tr_msg_int(done, &played), "read done"))
        goto out;
    clock_gettime(CLOCK_MONOTONIC, &t1);

    double secs = seconds_between(&t0, &t1);
    printf("pingpong: %lld round trip%s between two pooled actors on %u worker thread(s)\n",
           (long long)played, played == 1 ? "" : "s", tr_runtime_workers(rt));
    printf("pingpong: %.3f ms in all, %.0f ns per round trip (two messages each)\n", secs * 1e3,
           secs * 1e9 / (double)played);

    if (played != rounds) {
        fprintf(stderr, "pingpong: expected %ld round trips, got %lld\n", rounds,
                (long long)played);
        goto out;
    }
    rc = 0;

out:
    tr_msg_free(args);
    tr_msg_free(done);
    if (ctx != NULL)
        tr_detach(ctx);
    tr_runtime_free(rt);
    return rc;
}
