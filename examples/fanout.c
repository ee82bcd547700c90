/*
 * fanout.c — 10,000 Game of Life cells per generation on 8 pooled actors.
 *
 * Python lesson: Effective Python item 57, "Avoid creating new Thread
 * instances for on-demand fan-out". The book steps a Game of Life grid by
 * starting a thread per cell: thousands of threads per generation, each
 * with its own stack and start-up cost, and nothing bounds how many exist.
 *
 * troupe idiom: a fixed set of pooled actors does the work, and the
 * runtime's few worker threads run them. A dispatcher actor fans each cell
 * out round-robin as a tr_request, keeping a window of requests in flight,
 * and gathers the answers in the continuation, which runs on the dispatcher
 * itself, one at a time, so the grid it fills needs no lock. When a
 * generation is complete it sends the grid to main, which checks every cell
 * against a plain sequential step.
 */
#include <troupe.h>

#include <stdio.h>
#include <string.h>

enum {
    SIDE = 100,
    CELLS = SIDE * SIDE,
    ACTORS = 8,
    WINDOW = 8 * ACTORS, /* tasks in flight at once */
    GENERATIONS = 3
};

/* The 3x3 neighbourhood of cell i on a torus, as 9 bits (bit 4 = the cell). */
static int64_t neighbourhood(const uint8_t *grid, int i)
{
    int64_t bits = 0;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            int y = (i / SIDE + dy + SIDE) % SIDE, x = (i % SIDE + dx + SIDE) % SIDE;
            bits = bits << 1 | grid[y * SIDE + x];
        }
    return bits;
}

/* Conway's rule: the task each worker performs. */
static int step_cell(int64_t bits)
{
    int alive = (int)(bits >> 4 & 1), around = __builtin_popcountll(bits) - alive;
    return around == 3 || (alive && around == 2);
}

/* ---- a worker: answers "cell" requests --------------------------------- */

static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    int64_t bits;
    tr_msg *reply = NULL;
    tr_err err = tr_msg_int(m, &bits);

    if (err != TR_OK)
        return tr_reply_error(ctx, m, err) == TR_OK ? TR_OK : err;
    if ((err = tr_msg_new(&reply, ctx, "alive")) == TR_OK &&
        (err = tr_pack_int(reply, step_cell(bits))) == TR_OK)
        err = tr_reply(ctx, m, reply); /* consumes reply, even past the deadline */
    else
        tr_msg_free(reply);
    return err == TR_ETIMEDOUT ? TR_OK : err; /* a caller that gave up is no failure */
}

static const tr_behaviour worker_behaviour = {.name = "life-worker", .handle = worker_handle};

/* ---- the dispatcher: fans out a generation, gathers it ---------------------- */

typedef struct dispatcher {
    tr_ref workers[ACTORS];
    tr_ref main;         /* who gets each generation */
    uint8_t grid[CELLS]; /* the generation being computed from */
    uint8_t next[CELLS]; /* filled in by the continuations */
    int sent, answered;  /* tasks of the current generation */
    int generation;      /* generations done */
} dispatcher;

static int on_cell(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata);

/* Sends the next cell's task as a request to a worker, round-robin. */
static tr_err send_task(tr_ctx *ctx, dispatcher *d)
{
    int i = d->sent;
    tr_msg *task = NULL;
    tr_err err = tr_msg_new(&task, ctx, "cell");

    if (err == TR_OK && (err = tr_pack_int(task, neighbourhood(d->grid, i))) == TR_OK)
        err = tr_request(ctx, d->workers[i % ACTORS], task, 30000, on_cell, (void *)(uintptr_t)i);
    if (err != TR_OK) {
        tr_msg_free(task);
        return err;
    }
    d->sent++;
    return TR_OK;
}

/* Starts a generation with WINDOW tasks in flight: enough to keep every
 * worker busy without queueing the whole generation at once. */
static tr_err start_generation(tr_ctx *ctx, dispatcher *d)
{
    tr_err err = TR_OK;

    d->sent = d->answered = 0;
    for (int i = 0; i < WINDOW && err == TR_OK; i++)
        err = send_task(ctx, d);
    return err;
}

/* One answer came back; udata is the cell's index. Each answer sends the
 * next task, and the last answer of a generation reports it to main. */
static int on_cell(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    dispatcher *d = state;
    int64_t alive;
    tr_msg *gen = NULL;
    tr_err err;

    if (status != TR_OK || (status = tr_msg_int(reply, &alive)) != TR_OK)
        return status; /* a lost task: the dispatcher exits and main notices */
    d->next[(uintptr_t)udata] = (uint8_t)alive;
    d->answered++;
    if (d->sent < CELLS)
        return send_task(ctx, d);
    if (d->answered < CELLS)
        return TR_OK;
    memcpy(d->grid, d->next, CELLS);
    d->generation++;
    if ((err = tr_msg_new(&gen, ctx, "generation")) != TR_OK)
        return err;
    if ((err = tr_pack_bin(gen, d->grid, CELLS)) != TR_OK ||
        (err = tr_send(ctx, d->main, gen)) != TR_OK) {
        tr_msg_free(gen);
        return err;
    }
    return d->generation < GENERATIONS ? start_generation(ctx, d) : TR_OK;
}

/* "start" carries the first grid; the workers are the dispatcher's children. */
static int dispatcher_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    dispatcher *d = state;
    const uint8_t *grid;
    size_t len;
    tr_cursor c;
    tr_err err;

    tr_cursor_init(&c, m);
    if (!tr_msg_is(m, "start") || (err = tr_cursor_bin(&c, &grid, &len)) != TR_OK || len != CELLS)
        return TR_EBADMSG;
    memcpy(d->grid, grid, CELLS);
    d->main = tr_msg_from(m);
    for (int w = 0; w < ACTORS; w++)
        if ((err = tr_spawn(&d->workers[w], ctx, &worker_behaviour, NULL, NULL)) != TR_OK)
            return err;
    return start_generation(ctx, d);
}

static const tr_behaviour dispatcher_behaviour = {
    .name = "dispatcher", .state_size = sizeof(dispatcher), .handle = dispatcher_handle};

/* ---- main ------------------------------------------------------------------ */

static bool failed(tr_err err, const char *what)
{
    if (err != TR_OK)
        fprintf(stderr, "fanout: %s: %s (%s)\n", what, tr_err_name(err), tr_strerror(err));
    return err != TR_OK;
}

int main(void)
{
    static uint8_t grid[CELLS], expect[CELLS];
    tr_runtime *rt = NULL;
    tr_ctx *ctx = NULL;
    tr_msg *m = NULL;
    tr_ref dispatcher_ref;
    int wrong = 0, rc = 1;

    uint32_t seed = 12345; /* a fixed random soup, about one cell in four alive */
    for (int i = 0; i < CELLS; i++) {
        seed = seed * 1103515245u + 12345u;
        grid[i] = (seed >> 16 & 3) == 0;
    }

    if (failed(tr_runtime_start(&rt, NULL), "start runtime") ||
        failed(tr_attach(&ctx, rt), "attach main") ||
        failed(tr_spawn(&dispatcher_ref, ctx, &dispatcher_behaviour, NULL, NULL), "spawn") ||
        failed(tr_msg_new(&m, ctx, "start"), "new start") ||
        failed(tr_pack_bin(m, grid, CELLS), "pack grid") ||
        failed(tr_send(ctx, dispatcher_ref, m), "send start"))
        goto out;
    m = NULL;

    int alive = 0;
    for (int g = 0; g < GENERATIONS; g++) {
        const uint8_t *got;
        size_t len = 0;
        tr_cursor c;

        for (int i = 0; i < CELLS; i++) /* the sequential answer */
            expect[i] = (uint8_t)step_cell(neighbourhood(grid, i));
        memcpy(grid, expect, CELLS);
        if (failed(tr_receive(ctx, "generation", NULL, NULL, 30000, &m), "wait for generation"))
            goto out;
        tr_cursor_init(&c, m);
        if (failed(tr_cursor_bin(&c, &got, &len), "read generation") || len != CELLS)
            goto out;
        alive = 0;
        for (int i = 0; i < CELLS; i++) {
            wrong += got[i] != expect[i];
            alive += got[i];
        }
        tr_msg_free(m);
        m = NULL;
    }

    printf("fanout: %d generations x %d cells = %d tasks, %d wrong\n", GENERATIONS, CELLS,
           GENERATIONS * CELLS, wrong);
    printf("fanout: done by %d pooled actors on %u worker threads "
           "(a thread per task would have started %d threads)\n",
           ACTORS, tr_runtime_workers(rt), GENERATIONS * CELLS);
    printf("fanout: %d cells alive after generation %d\n", alive, GENERATIONS);
    rc = wrong == 0 ? 0 : 1;

out:
    tr_msg_free(m);
    if (ctx != NULL)
        tr_detach(ctx);
    tr_runtime_free(rt);
    return rc;
}
