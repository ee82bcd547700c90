/*
 * pipeline.c — download → resize → upload, three stages with bounded mailboxes.
 *
 * Python lesson: Effective Python item 55, "Use Queue to coordinate work
 * between threads". The book's pipeline is threads joined by Queues; it
 * needs Queue(maxsize) so a fast stage cannot run away from a slow one, and
 * a sentinel object pushed through every queue so the threads know to quit.
 *
 * troupe idiom: each stage is a pooled actor whose mailbox is bounded
 * (mailbox_limit) with the reject policy: a send to a full stage fails with
 * TR_EFULL and the sender keeps its message. main, the source, backs off and
 * retries. A stage cannot sleep — a pooled handler must not block — so it
 * keeps what the next stage had no room for in a "held" list, oldest first,
 * and retries on a 1 ms timer tick (timer messages use the control lane, so
 * a full mailbox never drops them). Unlike a blocked Queue.put, a stage
 * keeps taking items meanwhile, so work waits in the held list of the stage
 * before a slow one; a bound that must hold end to end needs credits (each
 * stage acknowledges items to the one before it). For data where only the
 * newest matters (sensor readings, video frames) TR_OVERFLOW_DROP_OLDEST
 * makes the bound throw stale items away instead and nobody waits; this
 * example must deliver every item, so it rejects.
 *
 * Shutdown needs no sentinel in the data: the upload stage knows the batch
 * size and reports; main then calls tr_runtime_stop(TR_STOP_DRAIN), which
 * stops every stage after it handled what was already queued.
 */
#include <troupe.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

enum {
    ITEMS = 2000,
    LIMIT = 8,
    SIDE = 32,
    HALF = SIDE / 2
};
typedef enum stage_kind {
    DOWNLOAD,
    RESIZE,
    UPLOAD
} stage_kind;

/* ---- the simulated work, also used by main to compute the expected result */

static void download(int64_t id, uint8_t img[SIDE * SIDE]) /* the slow stage */
{
    uint32_t x = (uint32_t)id * 2654435761u + 1u;
    for (int pass = 0; pass < 8; pass++)
        for (int i = 0; i < SIDE * SIDE; i++)
            img[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 24);
}

static void resize(const uint8_t *big, uint8_t small[HALF * HALF])
{
    for (int y = 0; y < HALF; y++)
        for (int x = 0; x < HALF; x++) {
            const uint8_t *p = big + 2 * y * SIDE + 2 * x;
            small[y * HALF + x] = (uint8_t)((p[0] + p[1] + p[SIDE] + p[SIDE + 1]) / 4);
        }
}

static uint64_t upload(uint64_t sum, const uint8_t *small, size_t len) /* FNV-1a */
{
    for (size_t i = 0; i < len; i++)
        sum = (sum ^ small[i]) * 1099511628211u;
    return sum;
}

/* ---- a stage ---------------------------------------------------------------- */

typedef struct stage {
    stage_kind kind;
    tr_ref next;         /* the next stage; for upload, whom to report to */
    int64_t items;       /* upload: how many items the batch has */
    tr_msg *held[ITEMS]; /* built items the next stage had no room for, oldest first */
    size_t held_len;
    bool retry_armed;  /* a "retry" tick is on its way */
    int64_t next_id;   /* upload: the id it expects next */
    uint64_t checksum; /* upload: over every image, in arrival order */
} stage;

/* Sends held items in order until done or the next stage is full. */
static tr_err stage_flush(tr_ctx *ctx, stage *s)
{
    size_t sent = 0;
    tr_err err = TR_OK;
    tr_msg *tick = NULL;

    while (sent < s->held_len && (err = tr_send(ctx, s->next, s->held[sent])) == TR_OK)
        sent++;
    s->held_len -= sent;
    memmove(s->held, s->held + sent, s->held_len * sizeof *s->held);
    if (err != TR_EFULL || s->retry_armed)
        return err == TR_EFULL ? TR_OK : err;
    if ((err = tr_msg_new(&tick, ctx, "retry")) != TR_OK)
        return err;
    if ((err = tr_send_after(ctx, tr_self(ctx), tick, 1, NULL)) != TR_OK) {
        tr_msg_free(tick);
        return err;
    }
    s->retry_armed = true;
    return TR_OK;
}

/* Builds the item [id, image] and queues it behind anything held. */
static tr_err stage_forward(tr_ctx *ctx, stage *s, int64_t id, const uint8_t *img, size_t len)
{
    tr_msg *m = NULL;
    tr_err err = tr_msg_new(&m, ctx, "item");

    if (err == TR_OK && (err = tr_pack_array(m, 2)) == TR_OK && (err = tr_pack_int(m, id)) == TR_OK)
        err = tr_pack_bin(m, img, len);
    if (err == TR_OK && s->held_len == ITEMS) /* cannot happen: a batch is ITEMS items */
        err = TR_EFULL;
    if (err != TR_OK) {
        tr_msg_free(m);
        return err;
    }
    s->held[s->held_len++] = m;
    return stage_flush(ctx, s);
}

static int stage_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    stage *s = state;
    tr_cursor c;
    uint32_t n;
    int64_t kind;
    tr_err err;

    tr_cursor_init(&c, args);
    if ((err = tr_cursor_array(&c, &n)) != TR_OK || (err = tr_cursor_int(&c, &kind)) != TR_OK ||
        (err = tr_cursor_ref(&c, &s->next)) != TR_OK)
        return err;
    s->kind = (stage_kind)kind;
    return tr_cursor_int(&c, &s->items);
}

static int stage_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    stage *s = state;
    uint8_t big[SIDE * SIDE], small[HALF * HALF];
    const uint8_t *img = NULL;
    size_t len = 0;
    int64_t id;
    uint32_t n;
    tr_cursor c;
    tr_err err;

    if (tr_msg_is(m, "retry")) {
        s->retry_armed = false;
        return stage_flush(ctx, s);
    }
    if (s->kind == DOWNLOAD) { /* from main: just an id */
        if ((err = tr_msg_int(m, &id)) != TR_OK)
            return err;
        download(id, big);
        return stage_forward(ctx, s, id, big, sizeof big);
    }
    tr_cursor_init(&c, m); /* from a stage: [id, image] */
    if ((err = tr_cursor_array(&c, &n)) != TR_OK || (err = tr_cursor_int(&c, &id)) != TR_OK ||
        (err = tr_cursor_bin(&c, &img, &len)) != TR_OK)
        return err;
    if (s->kind == RESIZE) {
        if (len != sizeof big)
            return TR_EBADMSG;
        resize(img, small);
        return stage_forward(ctx, s, id, small, sizeof small);
    }
    if (id != s->next_id++) /* upload: must arrive in order */
        return tr_send_int(ctx, s->next, "out-of-order", id);
    s->checksum = upload(s->checksum, img, len);
    if (s->next_id < s->items)
        return TR_OK;
    tr_msg *report = NULL;
    if ((err = tr_msg_new(&report, ctx, "report")) == TR_OK &&
        (err = tr_pack_array(report, 2)) == TR_OK &&
        (err = tr_pack_int(report, s->next_id)) == TR_OK &&
        (err = tr_pack_uint(report, s->checksum)) == TR_OK &&
        (err = tr_send(ctx, s->next, report)) == TR_OK)
        return TR_OK;
    tr_msg_free(report);
    return err;
}

static void stage_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    stage *s = state;
    for (size_t i = 0; i < s->held_len; i++) /* only after a failure or a forced stop */
        tr_msg_free(s->held[i]);
}

static const tr_behaviour stage_behaviour = {.name = "stage",
                                             .state_size = sizeof(stage),
                                             .init = stage_init,
                                             .handle = stage_handle,
                                             .terminate = stage_terminate};

/* ---- main: the source ---------------------------------------------------- */

static bool failed(tr_err err, const char *what)
{
    if (err != TR_OK)
        fprintf(stderr, "pipeline: %s: %s (%s)\n", what, tr_err_name(err), tr_strerror(err));
    return err != TR_OK;
}

/* Spawns one stage with a bounded, rejecting mailbox. */
static tr_err spawn_stage(tr_ref *out, tr_ctx *ctx, stage_kind kind, tr_ref next, const char *name)
{
    tr_spawn_opts opts = TR_SPAWN_OPTS_INIT;
    tr_msg *args = NULL;
    tr_err err = tr_msg_new(&args, ctx, "args");

    opts.mailbox_limit = LIMIT;
    opts.overflow = TR_OVERFLOW_REJECT;
    opts.name = name;
    if (err == TR_OK && (err = tr_pack_array(args, 3)) == TR_OK &&
        (err = tr_pack_int(args, kind)) == TR_OK && (err = tr_pack_ref(args, next)) == TR_OK &&
        (err = tr_pack_int(args, ITEMS)) == TR_OK &&
        (err = tr_spawn(out, ctx, &stage_behaviour, args, &opts)) == TR_OK)
        return TR_OK;
    tr_msg_free(args);
    return err;
}

int main(void)
{
    tr_runtime *rt = NULL;
    tr_ctx *ctx = NULL;
    tr_msg *report = NULL;
    tr_ref up, mid, down;
    tr_counters k;
    uint8_t big[SIDE * SIDE], small[HALF * HALF];
    uint64_t expected = 0, checksum = 0;
    int64_t arrived = 0, backoffs = 0;
    int rc = 1;
    tr_err err;

    for (int64_t id = 0; id < ITEMS; id++) {
        download(id, big);
        resize(big, small);
        expected = upload(expected, small, sizeof small);
    }

    /* Spawn back to front so each stage is told where to send. */
    if (failed(tr_runtime_start(&rt, NULL), "start runtime") ||
        failed(tr_attach(&ctx, rt), "attach main") ||
        failed(spawn_stage(&up, ctx, UPLOAD, tr_self(ctx), "upload"), "spawn upload") ||
        failed(spawn_stage(&mid, ctx, RESIZE, up, "resize"), "spawn resize") ||
        failed(spawn_stage(&down, ctx, DOWNLOAD, mid, "download"), "spawn download"))
        goto out;

    for (int64_t id = 0; id < ITEMS; id++) {
        while ((err = tr_send_int(ctx, down, "item", id)) == TR_EFULL) {
            backoffs++; /* download is full: wait a little, like a blocked put */
            nanosleep(&(struct timespec){0, 20000}, NULL);
        }
        if (failed(err, "send item"))
            goto out;
    }

    tr_cursor c;
    uint32_t n;
    if (failed(tr_receive(ctx, NULL, NULL, NULL, 30000, &report), "wait for report"))
        goto out;
    if (!tr_msg_is(report, "report")) {
        fprintf(stderr, "pipeline: upload saw an item out of order\n");
        goto out;
    }
    tr_cursor_init(&c, report);
    if (failed(tr_cursor_array(&c, &n), "read report") ||
        failed(tr_cursor_int(&c, &arrived), "read count") ||
        failed(tr_cursor_uint(&c, &checksum), "read checksum") ||
        failed(tr_runtime_stop(rt, TR_STOP_DRAIN), "stop") ||
        failed(tr_runtime_counters(&k, rt), "counters"))
        goto out;

    printf("pipeline: %lld of %d items went download -> resize -> upload, in order\n",
           (long long)arrived, ITEMS);
    printf("pipeline: mailboxes bounded at %d; %llu sends met a full mailbox "
           "(%lld of them main's, which backed off)\n",
           LIMIT, (unsigned long long)k.rejected_full, (long long)backoffs);
    printf("pipeline: checksum %016llx, expected %016llx\n", (unsigned long long)checksum,
           (unsigned long long)expected);
    rc = arrived == ITEMS && checksum == expected ? 0 : 1;

out:
    tr_msg_free(report);
    if (ctx != NULL)
        tr_detach(ctx);
    tr_runtime_free(rt);
    return rc;
}
