/*
 * pool_worker.c — the wrapper every pool worker runs: it hosts the user's
 * behaviour (its own state block, init, handle, terminate) and answers the
 * pool's probes, which the user's handle never sees.
 *
 * The wrapper is a static behaviour of this library, so it may run in a
 * process worker; the user's behaviour reaches it as a pointer that
 * tr_pool_start checked with tr_behaviour_check. It must not interpret
 * jobs: everything but a probe goes to the user's handle untouched.
 */
#include "pool_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct worker_state {
    const tr_behaviour *user; /* NULL until init decoded it */
    void *ustate;             /* the user's state block (user->state_size bytes) */
} worker_state;

tr_err tr__pool_pack_worker_args(tr_msg *m, const tr_behaviour *b, const void *args,
                                 size_t args_len)
{
    tr_err err;
    if ((err = tr_pack_array(m, POOL_WORKER_FIELDS)) != TR_OK ||
        (err = tr_pack_str(m, POOL_WORKER_MAGIC)) != TR_OK ||
        (err = tr_pack_uint(m, (uint64_t)(uintptr_t)b)) != TR_OK)
        return err;
    return args != NULL ? tr_pack_bin(m, args, args_len) : tr_pack_nil(m);
}

/* Reads the spawn arguments: the user's behaviour and its args message
 * (*uargs NULL when there are none; the caller owns it). */
static tr_err read_args(tr_ctx *ctx, const tr_msg *args, const tr_behaviour **user, tr_msg **uargs)
{
    tr_cursor c;
    *uargs = NULL;
    tr_err err = tr__pool_read_head(&c, args, POOL_WORKER_FIELDS, POOL_WORKER_MAGIC, user);
    if (err != TR_OK)
        return err;
    if (tr_cursor_nil(&c) == TR_OK)
        return TR_OK;
    const uint8_t *bytes;
    size_t len;
    if (tr_cursor_bin(&c, &bytes, &len) != TR_OK)
        return TR_EBADMSG;
    tr_msg *m;
    err = tr_msg_new(&m, ctx, POOL_TAG_USER_ARGS);
    if (err != TR_OK)
        return err;
    if ((err = tr_msg_set_payload(m, bytes, len)) != TR_OK) {
        tr_msg_free(m);
        return err;
    }
    *uargs = m;
    return TR_OK;
}

static int worker_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    worker_state *w = state;
    const tr_behaviour *user;
    tr_msg *uargs;
    tr_err err = read_args(ctx, args, &user, &uargs);
    if (err != TR_OK)
        return (int)err;
    if (user->state_size != 0 && (w->ustate = calloc(1, user->state_size)) == NULL) {
        tr_msg_free(uargs);
        return TR_ENOMEM;
    }
    /* From here on terminate owes the user its terminate, as the runtime
     * would: terminate runs even after a failed init. */
    w->user = user;
    int rc = user->init != NULL ? user->init(ctx, w->ustate, uargs) : 0;
    tr_msg_free(uargs);
    return rc;
}

static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    worker_state *w = state;
    if (tr_msg_is(m, POOL_TAG_PROBE)) {
        /* Everything the pool sent before this probe has been handled. A
         * pool that gave up on it (or a stray probe) costs nothing. */
        if (tr_msg_is_request(m)) {
            tr_msg *ok;
            if (tr_msg_new(&ok, ctx, POOL_TAG_PROBE_OK) == TR_OK)
                (void)tr_reply(ctx, m, ok);
            else /* any answer but a death says "done" */
                (void)tr_reply_error(ctx, m, TR_ENOMEM);
        }
        return 0;
    }
    return w->user->handle(ctx, w->ustate, m);
}

static void worker_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    worker_state *w = state;
    if (w->user != NULL && w->user->terminate != NULL)
        w->user->terminate(ctx, w->ustate, why);
    free(w->ustate);
    w->ustate = NULL;
}

const tr_behaviour tr__pool_worker_behaviour = {
    .name = "pool.worker",
    .state_size = sizeof(worker_state),
    .init = worker_init,
    .handle = worker_handle,
    .terminate = worker_terminate,
};
