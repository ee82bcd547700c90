/*
 * pool_api.c — the client side of worker pools: checking a spec and
 * starting a pool, a child spec for supervisors, the control requests,
 * the blocking helpers and the stats decoder.
 *
 * Everything here runs in the caller's context and talks to a pool only
 * through messages; it must not touch a pool's state.
 */
#include "pool_internal.h"

#include <string.h>

/* A process actor's spawn arguments travel in at most 60 KiB; the
 * worker's own fields take a few dozen bytes of that. */
#define PROCESS_ARGS_MAX (60u * 1024u - 128u)

/* Defaults of the workers' supervisor. */
#define RESTARTS_PER_WORKER 10u
#define PERIOD_DEFAULT_MS 1000u

/* ---- starting ------------------------------------------------------------ */

static tr_err check_spec(const tr_pool_spec *spec)
{
    const tr_behaviour *b = spec->behaviour;
    if (b == NULL || b->handle == NULL || b->run != NULL)
        return TR_EINVAL;
    const tr_spawn_opts *o = &spec->spawn;
    if (o->kind != TR_POOLED && o->kind != TR_THREAD && o->kind != TR_PROCESS)
        return TR_EINVAL;
    if (o->name != NULL || o->link || o->mailbox_limit != 0)
        return TR_EINVAL;
    if (spec->workers == 0 || spec->workers > TR_POOL_WORKERS_MAX)
        return TR_EINVAL;
    if ((spec->args == NULL) != (spec->args_len == 0))
        return TR_EINVAL;
    if (spec->args_len > TR_PAYLOAD_MAX / 2 ||
        (o->kind == TR_PROCESS && spec->args_len > PROCESS_ARGS_MAX))
        return TR_ETOOBIG;
    /* The supervisor's spec carries the args once per worker. */
    if ((uint64_t)(spec->args_len + 256u) * spec->workers > TR_PAYLOAD_MAX)
        return TR_ETOOBIG;
    if (spec->args != NULL && tr_validate(spec->args, spec->args_len) != TR_OK)
        return TR_EBADMSG;
    return tr_behaviour_check(b, o->kind);
}

static tr_err pack_spec(tr_msg *m, const tr_pool_spec *spec)
{
    uint32_t restarts = spec->max_restarts;
    if (restarts == 0)
        restarts = spec->workers > UINT32_MAX / RESTARTS_PER_WORKER
                       ? UINT32_MAX
                       : spec->workers * RESTARTS_PER_WORKER;
    const uint64_t nums[] = {
        spec->spawn.kind, spec->spawn.shutdown_ms,
        spec->workers,    spec->queue_max,
        restarts,         spec->period_ms != 0 ? spec->period_ms : PERIOD_DEFAULT_MS,
        spec->shutdown_ms};
    tr_err err;
    if ((err = tr_pack_array(m, POOL_ARGS_FIELDS)) != TR_OK ||
        (err = tr_pack_str(m, POOL_ARGS_MAGIC)) != TR_OK ||
        (err = tr_pack_uint(m, (uint64_t)(uintptr_t)spec->behaviour)) != TR_OK)
        return err;
    err = spec->args != NULL ? tr_pack_bin(m, spec->args, spec->args_len) : tr_pack_nil(m);
    if (err != TR_OK || (err = tr_pack_uint(m, nums[0])) != TR_OK ||
        (err = tr_pack_bool(m, spec->spawn.trap_exit)) != TR_OK)
        return err;
    for (size_t i = 1; err == TR_OK && i < sizeof nums / sizeof nums[0]; i++)
        err = tr_pack_uint(m, nums[i]);
    return err;
}

tr_err tr_pool_start(tr_ref *out, tr_ctx *ctx, const tr_pool_spec *spec, const tr_spawn_opts *opts)
{
    if (out == NULL || ctx == NULL || spec == NULL)
        return TR_EINVAL;
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    if (opts != NULL) {
        /* A bounded mailbox could refuse the supervisor's events, and the
         * pool would never learn where a worker is: queue_max bounds it. */
        if (opts->kind != TR_POOLED || opts->mailbox_limit != 0)
            return TR_EINVAL;
        o = *opts;
    }
    o.trap_exit = true;
    o.trap_stop = true; /* a runtime stop goes through its ordered stop */
    tr_err err = check_spec(spec);
    if (err != TR_OK)
        return err;
    tr_msg *args;
    if ((err = tr_msg_new(&args, ctx, POOL_TAG_ARGS)) != TR_OK)
        return err;
    if ((err = pack_spec(args, spec)) == TR_OK)
        err = tr_spawn(out, ctx, &tr__pool_behaviour, args, &o);
    if (err != TR_OK)
        tr_msg_free(args);
    return err;
}

tr_err tr_pool_start_link(tr_ref *out, tr_ctx *ctx, const void *pool_spec)
{
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.link = true;
    return tr_pool_start(out, ctx, pool_spec, &o);
}

void tr_pool_child_spec(tr_sup_child_spec *out, const char *id, const tr_pool_spec *spec)
{
    static const tr_sup_child_spec init = TR_SUP_CHILD_SPEC_INIT;
    if (out == NULL)
        return;
    *out = init;
    out->id = id;
    out->start = tr_pool_start_link;
    out->start_arg = spec;
    out->restart = TR_SUP_PERMANENT;
    out->type = TR_SUP_SUPERVISOR;
}

/* ---- control -------------------------------------------------------------- */

tr_err tr_pool_msg_stats(tr_msg **out, tr_ctx *ctx)
{
    return out != NULL ? tr_msg_new(out, ctx, POOL_TAG_STATS) : TR_EINVAL;
}

tr_err tr_pool_msg_stop(tr_msg **out, tr_ctx *ctx)
{
    return out != NULL ? tr_msg_new(out, ctx, POOL_TAG_STOP) : TR_EINVAL;
}

tr_err tr_pool_reply_stats(tr_pool_stats *out, const tr_msg *reply)
{
    if (out == NULL || reply == NULL)
        return TR_EINVAL;
    if (!tr_msg_is(reply, POOL_TAG_STATS_REPLY))
        return TR_ETYPE;
    tr_cursor c;
    uint32_t n;
    uint64_t v[POOL_STATS_FIELDS];
    tr_cursor_init(&c, reply);
    if (tr_cursor_array(&c, &n) != TR_OK || n != POOL_STATS_FIELDS)
        return TR_EBADMSG;
    for (uint32_t i = 0; i < POOL_STATS_FIELDS; i++)
        if (tr_cursor_uint(&c, &v[i]) != TR_OK || (i < 5 && v[i] > UINT32_MAX))
            return TR_EBADMSG;
    *out = (tr_pool_stats){
        (uint32_t)v[0], (uint32_t)v[1], (uint32_t)v[2], (uint32_t)v[3], (uint32_t)v[4], v[5], v[6],
        v[7],           v[8],           v[9],           v[10],          v[11],          v[12]};
    return TR_OK;
}

tr_err tr_pool_stats_get(tr_pool_stats *out, tr_ctx *ctx, tr_ref pool, uint32_t timeout_ms)
{
    if (out == NULL || ctx == NULL)
        return TR_EINVAL;
    tr_msg *req, *reply;
    tr_err err = tr_pool_msg_stats(&req, ctx);
    if (err != TR_OK)
        return err;
    if ((err = tr_call(ctx, pool, req, timeout_ms, &reply)) != TR_OK)
        return err; /* the call took req */
    err = tr_pool_reply_stats(out, reply);
    tr_msg_free(reply);
    return err;
}

tr_err tr_pool_stop(tr_ctx *ctx, tr_ref pool, uint32_t timeout_ms)
{
    if (ctx == NULL)
        return TR_EINVAL;
    tr_msg *req, *reply;
    tr_err err = tr_pool_msg_stop(&req, ctx);
    if (err != TR_OK)
        return err;
    if ((err = tr_call(ctx, pool, req, timeout_ms, &reply)) != TR_OK)
        return err; /* the call took req */
    tr_msg_free(reply);
    return TR_OK;
}
