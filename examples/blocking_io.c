/*
 * blocking_io.c — thread actors block on files and sleeps while a pooled
 * actor keeps answering.
 *
 * Python lessons: Effective Python item 53, "Use threads for blocking I/O,
 * avoid for parallelism", and item 63, "Avoid blocking the asyncio event
 * loop to maximise responsiveness". Blocking calls belong on threads of
 * their own; one blocking call inside the event loop stalls everything
 * the loop runs.
 *
 * troupe idiom: the worker pool is the event loop, so pooled handlers never
 * block. Code that must block — file reads and writes, sleeps, a legacy
 * library — runs in thread actors (spawn option kind = TR_THREAD): each has
 * its own OS thread, and the sender cannot tell the difference. Here four
 * readers write a file, nap, and read it back, while main keeps calling a
 * pooled "echo" actor on a runtime with a single worker thread. The pings
 * keep being answered because no blocking call ever occupies that worker.
 */
#include <troupe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    READERS = 4,
    LINES = 200,
    NAPS = 3,
    NAP_MS = 20,
    TEXT_MAX = 8192
};

/* The text reader `index` writes and must read back; returns its length. */
static size_t expected_text(char *buf, int index)
{
    size_t len = 0;
    for (int line = 0; line < LINES; line++)
        len += (size_t)snprintf(buf + len, TEXT_MAX - len, "reader %d, line %d\n", index, line);
    return len;
}

/* ---- a reader: a thread actor, allowed to block ------------------------- */

typedef struct reader {
    char path[256];
    int index;
    tr_ref report_to;
} reader;

static int reader_init(tr_ctx *ctx, void *state, const tr_msg *args) /* [dir, index, ref] */
{
    reader *r = state;
    const char *dir;
    size_t len;
    int64_t index;
    uint32_t n;
    tr_cursor c;
    tr_err err;

    tr_cursor_init(&c, args);
    if ((err = tr_cursor_array(&c, &n)) != TR_OK ||
        (err = tr_cursor_str(&c, &dir, &len)) != TR_OK ||
        (err = tr_cursor_int(&c, &index)) != TR_OK ||
        (err = tr_cursor_ref(&c, &r->report_to)) != TR_OK)
        return err;
    r->index = (int)index; /* dir points into args, which is freed after init: copy */
    snprintf(r->path, sizeof r->path, "%.*s/part-%d.txt", (int)len, dir, r->index);
    return TR_OK;
}

static int reader_run(tr_ctx *ctx, void *state)
{
    reader *r = state;
    char want[TEXT_MAX], got[TEXT_MAX];
    size_t len = expected_text(want, r->index), got_len = 0;
    FILE *f;

    if ((f = fopen(r->path, "w")) == NULL)
        return TR_ESYS;
    fwrite(want, 1, len, f);
    if (fclose(f) != 0)
        return TR_ESYS;
    for (int i = 0; i < NAPS; i++) /* a slow disk or network, simulated */
        nanosleep(&(struct timespec){0, NAP_MS * 1000000L}, NULL);
    if ((f = fopen(r->path, "r")) == NULL)
        return TR_ESYS;
    got_len = fread(got, 1, sizeof got, f);
    fclose(f);

    tr_msg *m = NULL;
    tr_err err = tr_msg_new(&m, ctx, "read");
    if (err == TR_OK && (err = tr_pack_array(m, 2)) == TR_OK &&
        (err = tr_pack_int(m, r->index)) == TR_OK &&
        (err = tr_pack_strn(m, got, got_len)) == TR_OK &&
        (err = tr_send(ctx, r->report_to, m)) == TR_OK)
        return 0;
    tr_msg_free(m);
    return err;
}

static const tr_behaviour reader_behaviour = {
    .name = "reader", .state_size = sizeof(reader), .init = reader_init, .run = reader_run};

/* ---- echo: a pooled actor that answers every ping --------------------------- */

static int echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    tr_msg *pong = NULL;
    tr_err err = tr_msg_new(&pong, ctx, "pong");

    if (err == TR_OK)
        err = tr_reply(ctx, m, pong);         /* consumes pong, even past the deadline */
    return err == TR_ETIMEDOUT ? TR_OK : err; /* a caller that gave up is no failure */
}

static const tr_behaviour echo_behaviour = {.name = "echo", .handle = echo_handle};

/* ---- main ------------------------------------------------------------------ */

static bool failed(tr_err err, const char *what)
{
    if (err != TR_OK)
        fprintf(stderr, "blocking_io: %s: %s (%s)\n", what, tr_err_name(err), tr_strerror(err));
    return err != TR_OK;
}

int main(void)
{
    tr_runtime_opts opts = TR_RUNTIME_OPTS_INIT;
    tr_runtime *rt = NULL;
    tr_ctx *ctx = NULL;
    tr_msg *m = NULL;
    tr_ref echo, r;
    char dir[200], path[256], want[TEXT_MAX];
    const char *tmp = getenv("TMPDIR");
    int reports = 0, good = 0, pings = 0, rc = 1;

    snprintf(dir, sizeof dir, "%s/troupe-blocking-XXXXXX", tmp != NULL && *tmp ? tmp : P_tmpdir);
    if (mkdtemp(dir) == NULL) {
        perror("blocking_io: mkdtemp");
        return 1;
    }
    opts.workers = 1; /* one worker: a single blocking handler would stall everything */
    if (failed(tr_runtime_start(&rt, &opts), "start runtime") ||
        failed(tr_attach(&ctx, rt), "attach main") ||
        failed(tr_spawn(&echo, ctx, &echo_behaviour, NULL, NULL), "spawn echo"))
        goto out;

    tr_spawn_opts thread = TR_SPAWN_OPTS_INIT;
    thread.kind = TR_THREAD;
    for (int i = 0; i < READERS; i++) {
        if (failed(tr_msg_new(&m, ctx, "args"), "new args") ||
            failed(tr_pack_array(m, 3), "pack") || failed(tr_pack_str(m, dir), "pack") ||
            failed(tr_pack_int(m, i), "pack") || failed(tr_pack_ref(m, tr_self(ctx)), "pack") ||
            failed(tr_spawn(&r, ctx, &reader_behaviour, m, &thread), "spawn reader"))
            goto out;
        m = NULL;
    }

    /* Ping echo until every reader has reported; wait up to 1 ms for a report in between. */
    for (int round = 0; reports < READERS; round++) {
        tr_msg *ping = NULL, *pong = NULL;
        if (round == 10000) { /* each round waits >= 1 ms: 10 s is plenty */
            fprintf(stderr, "blocking_io: only %d of %d readers reported\n", reports, READERS);
            goto out;
        }
        tr_err err = tr_msg_new(&ping, ctx, "ping");
        if (err == TR_OK && (err = tr_call(ctx, echo, ping, 1000, &pong)) == TR_OK)
            pings++; /* tr_call took ping, whatever it returned */
        tr_msg_free(pong);
        if (failed(err, "ping echo"))
            goto out;

        err = tr_receive(ctx, "read", NULL, NULL, 1, &m);
        if (err == TR_ETIMEDOUT)
            continue;
        if (failed(err, "wait for reader"))
            goto out;
        const char *got;
        size_t len, want_len;
        int64_t index;
        uint32_t n;
        tr_cursor c;
        tr_cursor_init(&c, m);
        if (failed(tr_cursor_array(&c, &n), "read report") ||
            failed(tr_cursor_int(&c, &index), "read index") ||
            failed(tr_cursor_str(&c, &got, &len), "read text"))
            goto out;
        want_len = expected_text(want, (int)index);
        good += len == want_len && memcmp(got, want, len) == 0;
        reports++;
        tr_msg_free(m);
        m = NULL;
    }

    printf("blocking_io: %d thread actors each wrote a file, slept %d ms, read it back: "
           "%d of %d intact\n",
           READERS, NAPS * NAP_MS, good, READERS);
    printf("blocking_io: meanwhile a pooled actor on %u worker thread answered %d pings\n",
           tr_runtime_workers(rt), pings);
    rc = good == READERS && pings > 0 ? 0 : 1;

out:
    tr_msg_free(m);
    if (ctx != NULL)
        tr_detach(ctx);
    tr_runtime_free(rt); /* joins the reader threads before we remove their files */
    for (int i = 0; i < READERS; i++) {
        snprintf(path, sizeof path, "%s/part-%d.txt", dir, i);
        unlink(path);
    }
    rmdir(dir);
    return rc;
}
