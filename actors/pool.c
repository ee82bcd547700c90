/*
 * pool.c — the pool actor: its callbacks, its supervisor's events, the
 * stats and stop requests, and its ordered stop.
 *
 * A pool is a pooled actor that traps exits. Its init decodes its spec and
 * starts a one_for_one supervisor (linked, events to the pool) with one
 * child per worker, "w0" .. "w<N-1>", each running the worker wrapper. The
 * supervisor's STARTED events tell the pool where each worker is, its
 * EXITED / STOPPED events that one went. Its handler sorts each message
 * into an exit signal, a supervisor event, a control request, or a job for
 * the dispatcher (pool_dispatch.c).
 *
 * Stopping: queued requests are answered TR_ECANCELED, the supervisor is
 * sent an exit signal (it stops the workers in reverse order, each after
 * its current job), and when its EXIT arrives the pool answers the stop
 * requests and exits. This file must not hand out jobs (pool_dispatch.c
 * does).
 */
#include "pool_actor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for a child id: "w" and the slot number. */
#define SLOT_ID_MAX 12

/* ---- spawn arguments ------------------------------------------------------ */

static tr_err read_u32(tr_cursor *c, uint32_t *out)
{
    uint64_t v;
    tr_err err = tr_cursor_uint(c, &v);
    if (err == TR_OK && v > UINT32_MAX)
        err = TR_ERANGE;
    if (err == TR_OK)
        *out = (uint32_t)v;
    return err;
}

/* Decodes the spawn arguments pool_api.c packed (already checked there;
 * read defensively all the same). */
static tr_err read_config(pool_state *s, const tr_msg *args)
{
    tr_cursor c;
    uint32_t kind;
    tr_err err = tr__pool_read_head(&c, args, POOL_ARGS_FIELDS, POOL_ARGS_MAGIC, &s->behaviour);
    if (err != TR_OK)
        return err;
    if (tr_cursor_nil(&c) != TR_OK) {
        const uint8_t *bytes;
        if (tr_cursor_bin(&c, &bytes, &s->args_len) != TR_OK || s->args_len == 0)
            return TR_EBADMSG;
        if ((s->args = malloc(s->args_len)) == NULL)
            return TR_ENOMEM;
        memcpy(s->args, bytes, s->args_len);
    }
    if (read_u32(&c, &kind) != TR_OK || kind > TR_PROCESS ||
        tr_cursor_bool(&c, &s->trap_exit) != TR_OK || read_u32(&c, &s->proc_shutdown_ms) != TR_OK ||
        read_u32(&c, &s->nworkers) != TR_OK || read_u32(&c, &s->queue_max) != TR_OK ||
        read_u32(&c, &s->max_restarts) != TR_OK || read_u32(&c, &s->period_ms) != TR_OK ||
        read_u32(&c, &s->shutdown_ms) != TR_OK)
        return TR_EBADMSG;
    s->kind = (tr_actor_kind)kind;
    if (s->nworkers == 0 || s->nworkers > TR_POOL_WORKERS_MAX || s->period_ms == 0)
        return TR_EBADMSG;
    return TR_OK;
}

/* ---- the supervisor ------------------------------------------------------- */

/* Starts the workers' supervisor: N identical children, events to us. */
static tr_err start_supervisor(tr_ctx *ctx, pool_state *s)
{
    tr_msg *wargs;
    tr_err err = tr_msg_new(&wargs, ctx, POOL_TAG_ARGS);
    if (err != TR_OK)
        return err;
    if ((err = tr__pool_pack_worker_args(wargs, s->behaviour, s->args, s->args_len)) != TR_OK) {
        tr_msg_free(wargs);
        return err;
    }
    size_t wlen;
    const uint8_t *wbytes = tr_msg_payload(wargs, &wlen);
    tr_sup_child_spec *kids = calloc(s->nworkers, sizeof *kids);
    char(*ids)[SLOT_ID_MAX] = calloc(s->nworkers, sizeof *ids);
    if (kids == NULL || ids == NULL) {
        free(kids);
        free(ids);
        tr_msg_free(wargs);
        return TR_ENOMEM;
    }
    static const tr_sup_child_spec tmpl = TR_SUP_CHILD_SPEC_INIT;
    for (uint32_t i = 0; i < s->nworkers; i++) {
        snprintf(ids[i], sizeof ids[i], "w%u", (unsigned)i);
        kids[i] = tmpl;
        kids[i].id = ids[i];
        kids[i].behaviour = &tr__pool_worker_behaviour;
        kids[i].args = wbytes;
        kids[i].args_len = wlen;
        kids[i].spawn.kind = s->kind;
        kids[i].spawn.trap_exit = s->trap_exit;
        kids[i].spawn.shutdown_ms = s->proc_shutdown_ms;
        kids[i].restart = TR_SUP_PERMANENT;
        kids[i].shutdown_ms = s->shutdown_ms;
    }
    tr_sup_spec spec = TR_SUP_SPEC_INIT;
    spec.strategy = TR_SUP_ONE_FOR_ONE;
    spec.intensity = s->max_restarts;
    spec.period_ms = s->period_ms;
    spec.children = kids;
    spec.nchildren = s->nworkers;
    spec.events = tr_self(ctx);
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.link = true;
    err = tr_sup_start(&s->sup, ctx, &spec, &o);
    free(kids);
    free(ids);
    tr_msg_free(wargs);
    s->sup_up = err == TR_OK;
    return err;
}

/* A supervisor event: where a worker is now. */
static void on_event(pool_state *s, const tr_msg *m)
{
    tr_sup_event ev;
    if (tr_sup_event_info(&ev, m) != TR_OK || ev.id[0] != 'w')
        return;
    char *end;
    unsigned long slot = strtoul(ev.id + 1, &end, 10);
    if (*end != '\0' || end == ev.id + 1 || slot >= s->nworkers)
        return;
    if (ev.kind == TR_SUP_EV_STARTED)
        tr__pool_slot_up(s, (uint32_t)slot, ev.child);
    else if (ev.kind == TR_SUP_EV_EXITED || ev.kind == TR_SUP_EV_STOPPED)
        tr__pool_slot_down(s, (uint32_t)slot, ev.child);
}

/* ---- stopping ------------------------------------------------------------- */

/* The workers are gone: answers the stop requests and exits. */
static void stop_finish(tr_ctx *ctx, pool_state *s)
{
    for (uint32_t i = 0; i < s->nwaiters; i++) {
        tr_msg *done;
        if (tr_msg_new(&done, ctx, POOL_TAG_DONE) == TR_OK)
            (void)tr_reply_to_send(ctx, &s->waiters[i], done);
    }
    s->nwaiters = 0;
    tr_stop_self(ctx, &s->stop_reason);
}

static void stop_begin(tr_ctx *ctx, pool_state *s, const tr_reason *why)
{
    if (s->stopping)
        return;
    s->stopping = true;
    s->stop_reason = *why;
    tr__pool_drop_queue(ctx, s, TR_ECANCELED, OUT_CANCELED);
    tr_reason shutdown = tr_reason_make(TR_EXIT_SHUTDOWN, 0, "pool stopping");
    if (!s->sup_up || tr_exit(ctx, s->sup, &shutdown) != TR_OK) {
        s->sup_up = false;
        stop_finish(ctx, s);
    }
}

static void on_stop_request(tr_ctx *ctx, pool_state *s, const tr_msg *m)
{
    if (tr_msg_is_request(m)) {
        if (s->nwaiters == s->capwaiters) {
            uint32_t cap = s->capwaiters != 0 ? s->capwaiters * 2 : 4;
            tr_reply_to *n = realloc(s->waiters, cap * sizeof *n);
            if (n == NULL) {
                (void)tr_reply_error(ctx, m, TR_ENOMEM);
                return;
            }
            s->waiters = n;
            s->capwaiters = cap;
        }
        (void)tr_msg_reply_to(&s->waiters[s->nwaiters++], m);
    }
    tr_reason why = tr_reason_make(TR_EXIT_SHUTDOWN, 0, "pool stopped");
    stop_begin(ctx, s, &why);
}

/* A trapped exit signal: the supervisor ended, or someone wants us gone. */
static void on_exit_signal(tr_ctx *ctx, pool_state *s, const tr_msg *m)
{
    tr_ref from;
    tr_reason why;
    if (tr_msg_exit_info(m, &from, &why) != TR_OK)
        return;
    if (s->sup_up && tr_ref_eq(from, s->sup)) {
        s->sup_up = false;
        if (s->stopping) {
            stop_finish(ctx, s);
            return;
        }
        /* It gave up (workers failing too fast) or was killed: nothing is
         * left to serve the queue. */
        s->final_status = TR_EEXITED;
        tr__pool_drop_queue(ctx, s, TR_EEXITED, OUT_FAILED);
        s->stopping = true;
        s->stop_reason = why;
        stop_finish(ctx, s);
        return;
    }
    if (why.kind != TR_EXIT_NORMAL)
        stop_begin(ctx, s, &why);
}

/* ---- stats ---------------------------------------------------------------- */

static void answer_stats(tr_ctx *ctx, pool_state *s, const tr_msg *m)
{
    tr__pool_purge_expired(s);
    tr_pool_stats *st = &s->st;
    st->size = s->nworkers;
    st->queue_max = s->queue_max;
    st->queued = s->q_len;
    st->busy = tr__pool_busy(s);
    st->workers = 0;
    for (uint32_t i = 0; i < s->nworkers; i++)
        st->workers += !tr_ref_is_nil(s->slots[i].ref);
    const uint64_t fields[POOL_STATS_FIELDS] = {
        st->size,      st->workers,   st->busy,    st->queued,  st->queue_max,
        st->submitted, st->completed, st->failed,  st->refused, st->expired,
        st->timed_out, st->canceled,  st->restarts};
    tr_msg *r;
    tr_err err = tr_msg_new(&r, ctx, POOL_TAG_STATS_REPLY);
    if (err == TR_OK)
        err = tr_pack_array(r, POOL_STATS_FIELDS);
    for (uint32_t i = 0; err == TR_OK && i < POOL_STATS_FIELDS; i++)
        err = tr_pack_uint(r, fields[i]);
    if (err != TR_OK) {
        tr_msg_free(r);
        (void)tr_reply_error(ctx, m, err);
        return;
    }
    (void)tr_reply(ctx, m, r);
}

/* ---- callbacks ------------------------------------------------------------ */

static int pool_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    pool_state *s = state;
    s->final_status = TR_ECANCELED;
    tr_err err = read_config(s, args);
    if (err != TR_OK)
        return (int)err;
    s->slots = calloc(s->nworkers, sizeof *s->slots);
    s->idle = calloc(s->nworkers, sizeof *s->idle);
    if (s->slots == NULL || s->idle == NULL)
        return TR_ENOMEM;
    return (int)start_supervisor(ctx, s);
}

static int pool_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    pool_state *s = state;
    if (tr_msg_is(m, TR_TAG_EXIT))
        on_exit_signal(ctx, s, m);
    else if (tr_msg_is(m, TR_SUP_TAG_EVENT) && tr_ref_eq(tr_msg_from(m), s->sup))
        on_event(s, m);
    else if (tr_msg_is(m, POOL_TAG_STATS) && tr_msg_is_request(m))
        answer_stats(ctx, s, m);
    else if (tr_msg_is(m, POOL_TAG_STOP))
        on_stop_request(ctx, s, m);
    else
        tr__pool_submit(ctx, s, m);
    tr__pool_dispatch(ctx, s);
    return 0;
}

static void pool_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    (void)why;
    pool_state *s = state;
    /* Whatever still waits learns the pool is gone. A supervisor still up
     * (the pool was killed) gets the pool's exit signal through the link
     * and stops the workers itself. */
    tr__pool_drop_queue(ctx, s, s->final_status, OUT_CANCELED);
    if (s->slots != NULL)
        tr__pool_drop_tickets(ctx, s, s->final_status);
    for (uint32_t i = 0; i < s->nwaiters; i++) {
        tr_msg *done;
        if (tr_msg_new(&done, ctx, POOL_TAG_DONE) == TR_OK)
            (void)tr_reply_to_send(ctx, &s->waiters[i], done);
    }
    free(s->waiters);
    free(s->q);
    free(s->idle);
    free(s->slots);
    free(s->args);
}

const tr_behaviour tr__pool_behaviour = {
    .name = "pool",
    .state_size = sizeof(pool_state),
    .init = pool_init,
    .handle = pool_handle,
    .terminate = pool_terminate,
};
