/*
 * counter.c — many workers count into one total, without a lock.
 *
 * Python lesson: Effective Python item 54, "Use Lock to prevent data races
 * in threads". `counter.count += 1` from several threads is a read, an add
 * and a write; two threads can interleave them and lose an update, so the
 * book wraps the increment in a threading.Lock.
 *
 * troupe idiom: give the count to one actor and send it messages. The
 * runtime runs an actor's handler for one message at a time and never runs
 * the same actor on two threads at once, so the counter's `total += n` is
 * never interleaved with another update: its mailbox serialises them. No
 * lock, no atomic, and the state is plain memory only the counter touches.
 * Pooled workers and thread workers send "add" the same way; the sender's
 * kind is invisible to the counter. main reads the result with tr_call.
 */
#include <troupe.h>

#include <stdio.h>

enum {
    POOLED_WORKERS = 8,
    THREAD_WORKERS = 4,
    ADDS_PER_WORKER = 5000
};
#define WORKERS (POOLED_WORKERS + THREAD_WORKERS)

/* Every message here that carries data carries [ref, int]. */
static tr_err new_ref_int(tr_msg **out, tr_ctx *ctx, const char *tag, tr_ref ref, int64_t v)
{
    tr_err err;

    *out = NULL;
    if ((err = tr_msg_new(out, ctx, tag)) == TR_OK && (err = tr_pack_array(*out, 2)) == TR_OK &&
        (err = tr_pack_ref(*out, ref)) == TR_OK && (err = tr_pack_int(*out, v)) == TR_OK)
        return TR_OK;
    tr_msg_free(*out);
    *out = NULL;
    return err;
}

static tr_err read_ref_int(const tr_msg *m, tr_ref *ref, int64_t *v)
{
    tr_cursor c;
    uint32_t n;
    tr_err err;

    tr_cursor_init(&c, m);
    if ((err = tr_cursor_array(&c, &n)) != TR_OK || (err = tr_cursor_ref(&c, ref)) != TR_OK)
        return err;
    return tr_cursor_int(&c, v);
}

/* ---- the counter: owns the total ---------------------------------------- */

typedef struct counter_state {
    int64_t total;    /* the shared number, touched only by this actor */
    int64_t finished; /* workers that said they are done */
    int64_t workers;  /* how many to wait for */
    tr_ref notify;    /* told "all-in" once every worker finished (main) */
} counter_state;

static int counter_init(tr_ctx *ctx, void *state, const tr_msg *args) /* [notify, workers] */
{
    counter_state *s = state;
    return read_ref_int(args, &s->notify, &s->workers);
}

static int counter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    counter_state *s = state;
    int64_t n;

    if (tr_msg_is(m, "add") && tr_msg_int(m, &n) == TR_OK) {
        s->total += n; /* no lock: see the comment at the top */
    } else if (tr_msg_is(m, "finished")) {
        /* FIFO per sender: this worker's adds all came before this. */
        if (++s->finished == s->workers)
            return tr_send_tag(ctx, s->notify, "all-in");
    } else if (tr_msg_is(m, "get") && tr_msg_is_request(m)) {
        tr_msg *reply = NULL;
        tr_err err = tr_msg_new(&reply, ctx, "total");
        if (err == TR_OK && (err = tr_pack_int(reply, s->total)) == TR_OK)
            err = tr_reply(ctx, m, reply); /* consumes reply, even past the deadline */
        else
            tr_msg_free(reply);
        return err == TR_ETIMEDOUT ? TR_OK : err; /* a caller that gave up is no failure */
    }
    return TR_OK;
}

static const tr_behaviour counter_behaviour = {.name = "counter",
                                               .state_size = sizeof(counter_state),
                                               .init = counter_init,
                                               .handle = counter_handle};

/* ---- the workers: "go" [counter, step] ---------------------------------- */

/* Sends ADDS_PER_WORKER increments of step, then "finished". */
static tr_err add_many(tr_ctx *ctx, const tr_msg *go)
{
    tr_ref counter;
    int64_t step;
    tr_err err = read_ref_int(go, &counter, &step);

    for (int i = 0; i < ADDS_PER_WORKER && err == TR_OK; i++)
        err = tr_send_int(ctx, counter, "add", step);
    return err == TR_OK ? tr_send_tag(ctx, counter, "finished") : err;
}

/* A pooled worker does its part in one turn, then exits normally. */
static int pooled_worker_handle(tr_ctx *ctx, void *state, const tr_msg *go)
{
    tr_reason normal = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
    tr_stop_self(ctx, &normal);
    return add_many(ctx, go);
}

/* A thread worker has its own OS thread, so it may block in tr_receive. */
static int thread_worker_run(tr_ctx *ctx, void *state)
{
    tr_msg *go = NULL;
    tr_err err = tr_receive(ctx, "go", NULL, NULL, TR_FOREVER, &go);

    if (err == TR_OK)
        err = add_many(ctx, go);
    tr_msg_free(go);
    return err; /* 0: a normal exit */
}

static const tr_behaviour pooled_worker = {.name = "pooled-worker", .handle = pooled_worker_handle};
static const tr_behaviour thread_worker = {.name = "thread-worker", .run = thread_worker_run};

/* ---- main ------------------------------------------------------------------ */

static bool failed(tr_err err, const char *what)
{
    if (err != TR_OK)
        fprintf(stderr, "counter: %s: %s (%s)\n", what, tr_err_name(err), tr_strerror(err));
    return err != TR_OK;
}

int main(void)
{
    tr_runtime *rt = NULL;
    tr_ctx *ctx = NULL;
    tr_msg *m = NULL, *all_in = NULL, *reply = NULL;
    tr_ref counter, worker;
    int64_t expected = 0, total = -1;
    int rc = 1;

    if (failed(tr_runtime_start(&rt, NULL), "start runtime") ||
        failed(tr_attach(&ctx, rt), "attach main") ||
        failed(new_ref_int(&m, ctx, "args", tr_self(ctx), WORKERS), "new args") ||
        failed(tr_spawn(&counter, ctx, &counter_behaviour, m, NULL), "spawn counter"))
        goto out;
    m = NULL;

    /* Worker i adds i+1 each time, so a lost or doubled update shows. */
    tr_spawn_opts thread_opts = TR_SPAWN_OPTS_INIT;
    thread_opts.kind = TR_THREAD;
    for (int i = 0; i < WORKERS; i++) {
        bool pooled = i < POOLED_WORKERS;
        if (failed(tr_spawn(&worker, ctx, pooled ? &pooled_worker : &thread_worker, NULL,
                            pooled ? NULL : &thread_opts),
                   "spawn worker") ||
            failed(new_ref_int(&m, ctx, "go", counter, i + 1), "new go") ||
            failed(tr_send(ctx, worker, m), "send go"))
            goto out;
        m = NULL;
        expected += (int64_t)(i + 1) * ADDS_PER_WORKER;
    }

    /* Wait until the counter has heard "finished" from everyone, then ask. */
    if (failed(tr_receive(ctx, "all-in", NULL, NULL, 30000, &all_in), "wait for all-in") ||
        failed(tr_msg_new(&m, ctx, "get"), "new get"))
        goto out;
    tr_err err = tr_call(ctx, counter, m, 5000, &reply); /* takes m */
    m = NULL;
    if (failed(err, "call get") || failed(tr_msg_int(reply, &total), "read total"))
        goto out;

    printf("counter: %d workers (%d pooled, %d thread actors) sent %d adds each\n", WORKERS,
           POOLED_WORKERS, THREAD_WORKERS, ADDS_PER_WORKER);
    printf("counter: total %lld, expected %lld: %s\n", (long long)total, (long long)expected,
           total == expected ? "no update lost, no lock taken" : "MISMATCH");
    rc = total == expected ? 0 : 1;

out:
    tr_msg_free(m);
    tr_msg_free(all_in);
    tr_msg_free(reply);
    if (ctx != NULL)
        tr_detach(ctx);
    tr_runtime_free(rt);
    return rc;
}
