/*
 * request.c — request/reply: asynchronous requests with continuations,
 * blocking calls for threads, replies, deadlines and late replies.
 *
 * A request carries a correlation id and a deadline. The requester keeps a
 * short list of open requests (consumer-owned) and a timer per request that
 * delivers MK_REQ_TIMEOUT; whichever of reply and timeout comes first ends
 * the request, the other is dropped. A reply after the deadline is never
 * delivered. This file must not block a worker.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct pending {
    uint64_t deadline;
    tr_reply_fn fn;
    void *udata;
    tr_timer_id timer;
};

static struct pending *pending_take(tr_actor *a, uint64_t corr)
{
    return a->ext != NULL ? idmap_take(&a->ext->pending, corr) : NULL;
}

static void run_continuation(tr_ctx *ctx, tr_actor *a, struct pending *p, const tr_msg *reply,
                             tr_err status)
{
    int rc = p->fn(ctx, a->state, reply, status, p->udata);
    free(p);
    if (rc != 0 && !ctx->exiting) {
        ctx->exiting = true;
        ctx->exit_reason = tr_reason_make(TR_EXIT_ERROR, rc, "request continuation failed");
    }
}

tr_msg *tr__process_reply(tr_ctx *ctx, tr_actor *a, tr_msg *m)
{
    if (m->kind == MK_REQ_TIMEOUT) {
        struct pending *p = pending_take(a, m->corr);
        tr__msg_release(ctx, m);
        if (p != NULL)
            run_continuation(ctx, a, p, NULL, TR_ETIMEDOUT);
        return NULL;
    }
    /* MK_REPLY: late ones are dropped whoever was waiting. */
    if (m->deadline != 0 && tr__now_ns() > m->deadline) {
        ctr_add(&ctx->ctr.late_replies, 1);
        tr__msg_release(ctx, m);
        return NULL;
    }
    if (tr__thread_take_reply(ctx, m)) {
        ctr_add(&ctx->ctr.delivered, 1);
        return NULL;
    }
    struct pending *p = pending_take(a, m->corr);
    if (p == NULL) {
        ctr_add(&ctx->ctr.late_replies, 1);
        tr__msg_release(ctx, m);
        return NULL;
    }
    tr__timer_cancel(ctx->rt, p->timer);
    ctr_add(&ctx->ctr.delivered, 1);
    tr_err status = (tr_err)m->status;
    run_continuation(ctx, a, p, status == TR_OK ? m : NULL, status);
    tr__msg_release(ctx, m);
    return NULL;
}

void tr__pending_fail_all(tr_ctx *ctx, tr_actor *a)
{
    if (a->ext == NULL)
        return;
    idmap *map = &a->ext->pending;
    for (uint32_t i = 0; i < map->cap; i++) {
        struct pending *p = map->tab[i].val;
        if (map->tab[i].id == 0)
            continue;
        if (ctx != NULL)
            tr__timer_cancel(ctx->rt, p->timer);
        free(p);
    }
    idmap_free(map);
}

static uint64_t deadline_in(uint32_t timeout_ms)
{
    return tr__now_ns() + (uint64_t)timeout_ms * 1000000u;
}

tr_err tr_request(tr_ctx *ctx, tr_ref to, tr_msg *req, uint32_t timeout_ms,
                  tr_reply_fn on_reply, void *udata)
{
    if (ctx == NULL || req == NULL || on_reply == NULL || ctx->actor == NULL ||
        ctx->type == CTX_TIMER)
        return TR_EINVAL;
    if (req->flags & MF_NOMEM)
        return TR_ENOMEM;
    tr_runtime *rt = ctx->rt;
    struct actor_ext *e = tr__ext(ctx->actor);
    struct pending *p = malloc(sizeof *p);
    tr_msg *tmo = tr__msg_alloc(ctx);
    if (e == NULL || p == NULL || tmo == NULL) {
        free(p);
        tr__msg_release(ctx, tmo);
        return TR_ENOMEM;
    }
    uint64_t corr = atomic_fetch_add_explicit(&rt->next_corr, 1, memory_order_relaxed);
    p->deadline = deadline_in(timeout_ms);
    p->fn = on_reply;
    p->udata = udata;
    tmo->kind = MK_REQ_TIMEOUT;
    tmo->corr = corr;
    memcpy(tmo->tag, "tr.timeout", sizeof "tr.timeout");
    tr_err err = tr__timer_add(rt, tr_self(ctx), tmo, p->deadline, 0, &p->timer);
    if (err != TR_OK) {
        free(p);
        tr__msg_release(ctx, tmo);
        return err;
    }
    if (!idmap_put(&e->pending, corr, p)) {
        tr__timer_cancel(rt, p->timer);
        free(p);
        return TR_ENOMEM;
    }
    err = tr__send_user(ctx, to, req, MF_REQUEST, corr, p->deadline);
    if (err != TR_OK) {
        idmap_take(&e->pending, corr);
        tr__timer_cancel(rt, p->timer);
        free(p);
    }
    return err;
}

tr_err tr_call(tr_ctx *ctx, tr_ref to, tr_msg *req, uint32_t timeout_ms, tr_msg **reply)
{
    if (ctx == NULL || req == NULL || reply == NULL || tr_ref_is_nil(to))
        return TR_EINVAL;
    if (ctx->type == CTX_WORKER)
        return TR_EWOULDBLOCK;
    if (ctx->type == CTX_TIMER)
        return TR_EWRONGKIND;
    tr_err err = TR_OK;
    if (ctx->thr->stopped || ctx->exiting)
        err = TR_ESTOPPED;
    else if (req->flags & MF_NOMEM)
        err = TR_ENOMEM;
    uint64_t corr = atomic_fetch_add_explicit(&ctx->rt->next_corr, 1, memory_order_relaxed);
    uint64_t deadline = deadline_in(timeout_ms);
    if (err == TR_OK)
        err = tr__send_user(ctx, to, req, MF_REQUEST, corr, deadline);
    if (err != TR_OK) {
        tr__msg_release(ctx, req); /* a call always takes its request */
        return err;
    }
    *reply = NULL;
    return tr__thread_wait_reply(ctx, corr, deadline, reply);
}

/* Sends reply to a return address; consumes reply in every case. */
static tr_err reply_send(tr_ctx *ctx, const tr_reply_to *to, tr_msg *reply, tr_err status)
{
    if (to->deadline != 0 && tr__now_ns() > to->deadline) {
        ctr_add(&ctx->ctr.late_replies, 1);
        tr__msg_release(ctx, reply);
        return TR_ETIMEDOUT;
    }
    reply->kind = MK_REPLY;
    reply->flags &= MF_HEAPBUF;
    reply->status = (int16_t)status;
    reply->corr = to->corr;
    reply->deadline = to->deadline;
    reply->from = tr_self(ctx);
    return tr__send_system(ctx, to->to, reply);
}

tr_err tr_msg_reply_to(tr_reply_to *out, const tr_msg *request)
{
    if (out == NULL || !tr_msg_is_request(request))
        return TR_EINVAL;
    out->to = request->from;
    out->corr = request->corr;
    out->deadline = request->deadline;
    return TR_OK;
}

/* Answers request, noting that the handler's exit no longer owes it one. */
static tr_err reply_request(tr_ctx *ctx, const tr_msg *request, tr_msg *reply, tr_err status)
{
    tr_reply_to to = {request->from, request->corr, request->deadline};
    if (request == ctx->cur_req)
        ctx->cur_req = NULL;
    return reply_send(ctx, &to, reply, status);
}

static tr_msg *error_reply(tr_ctx *ctx, const char *tag)
{
    tr_msg *r = tr__msg_alloc(ctx);
    if (r != NULL)
        tr__msg_set_tag(r, tag); /* a valid tag: copied from a message or a literal */
    return r;
}

static bool status_ok(tr_err status)
{
    return status != TR_OK && (unsigned)status < TR_ERR_COUNT_;
}

tr_err tr_reply(tr_ctx *ctx, const tr_msg *request, tr_msg *reply)
{
    if (ctx == NULL || request == NULL || reply == NULL || !tr_msg_is_request(request))
        return TR_EINVAL;
    if (reply->flags & MF_NOMEM) {
        tr__msg_release(ctx, reply);
        return TR_ENOMEM;
    }
    return reply_request(ctx, request, reply, TR_OK);
}

tr_err tr_reply_error(tr_ctx *ctx, const tr_msg *request, tr_err status)
{
    if (ctx == NULL || !tr_msg_is_request(request) || !status_ok(status))
        return TR_EINVAL;
    tr_msg *r = error_reply(ctx, request->tag);
    if (r == NULL)
        return TR_ENOMEM;
    return reply_request(ctx, request, r, status);
}

tr_err tr_reply_to_send(tr_ctx *ctx, const tr_reply_to *to, tr_msg *reply)
{
    if (ctx == NULL || to == NULL || reply == NULL || to->corr == 0)
        return TR_EINVAL;
    if (reply->flags & MF_NOMEM) {
        tr__msg_release(ctx, reply);
        return TR_ENOMEM;
    }
    return reply_send(ctx, to, reply, TR_OK);
}

tr_err tr_reply_to_error(tr_ctx *ctx, const tr_reply_to *to, tr_err status)
{
    if (ctx == NULL || to == NULL || to->corr == 0 || !status_ok(status))
        return TR_EINVAL;
    tr_msg *r = error_reply(ctx, "tr.error");
    if (r == NULL)
        return TR_ENOMEM;
    return reply_send(ctx, to, r, status);
}
