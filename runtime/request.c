/*
 * request.c — request/reply: asynchronous requests with continuations,
 * blocking calls for threads, replies, deadlines and late replies.
 *
 * A request carries a correlation id and a deadline. The requester keeps
 * its open requests in a map by correlation id (consumer-owned) and one
 * timer, due at the earliest open deadline, that delivers MK_REQ_TIMEOUT:
 * it fails what has expired and re-arms for the next deadline. So a reply
 * costs no timer operation, and an actor with a steady stream of requests
 * arms about one timer per timeout period. Whichever of reply and deadline
 * comes first ends a request; a reply after the deadline is never
 * delivered. This file must not block a worker.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct pending {
    uint64_t deadline;
    tr_reply_fn fn;
    void *udata;
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

/* Arms the deadline timer of a for `deadline` if nothing earlier is armed. */
static tr_err sweep_arm(tr_ctx *ctx, tr_actor *a, uint64_t deadline)
{
    struct actor_ext *e = a->ext;
    if (e->sweep_at != 0 && e->sweep_at <= deadline)
        return TR_OK;
    tr_msg *tmo = tr__msg_alloc(ctx);
    if (tmo == NULL)
        return TR_ENOMEM;
    tmo->kind = MK_REQ_TIMEOUT;
    tr__msg_set_tag(tmo, "tr.timeout");
    tr_timer_id id;
    tr_err err = tr__timer_add(ctx->rt, tr__actor_ref(ctx->rt, a), tmo, deadline, 0, &id);
    if (err != TR_OK) {
        tr__msg_release(ctx, tmo);
        return err;
    }
    if (e->sweep_at != 0)
        tr__timer_cancel(ctx->rt, e->sweep_timer); /* a later one: no longer needed */
    e->sweep_at = deadline;
    e->sweep_timer = id;
    return TR_OK;
}

/* Takes the open requests whose deadline has passed out of the map (at
 * most cap of them, into out); *next receives the earliest deadline left. */
static uint32_t sweep_take(struct actor_ext *e, uint64_t now, struct pending **out, uint32_t cap,
                           uint64_t *next)
{
    uint32_t n = 0;
    *next = 0;
    for (uint32_t i = 0; i < e->pending.cap;) {
        struct pending *p = e->pending.tab[i].val;
        if (e->pending.tab[i].id == 0) {
            i++;
        } else if (p->deadline <= now && n < cap) {
            out[n++] = idmap_take(&e->pending, e->pending.tab[i].id);
            /* re-examine i: the take may have moved a later entry here */
        } else {
            if (p->deadline > now && (*next == 0 || p->deadline < *next))
                *next = p->deadline;
            i++;
        }
    }
    return n;
}

/* The deadline timer fired: fails every expired request, re-arms for the
 * earliest one left. Continuations run after the map is settled, since
 * they may open new requests. */
static void sweep_run(tr_ctx *ctx, tr_actor *a)
{
    struct actor_ext *e = a->ext;
    if (e == NULL)
        return;
    uint64_t now = tr__now_ns();
    if (e->sweep_at != 0 && e->sweep_at <= now)
        e->sweep_at = 0; /* the armed timer is the one that fired */
    for (;;) {
        struct pending *expired[32];
        uint64_t next;
        uint32_t n = sweep_take(e, now, expired, 32, &next);
        if (n < 32 && next != 0)
            sweep_arm(ctx, a, next);
        for (uint32_t i = 0; i < n; i++)
            run_continuation(ctx, a, expired[i], NULL, TR_ETIMEDOUT);
        if (n < 32 || ctx->exiting)
            return;
    }
}

tr_msg *tr__process_reply(tr_ctx *ctx, tr_actor *a, tr_msg *m)
{
    if (m->kind == MK_REQ_TIMEOUT) {
        tr__msg_release(ctx, m);
        sweep_run(ctx, a);
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
    ctr_add(&ctx->ctr.delivered, 1);
    tr_err status = (tr_err)m->status;
    run_continuation(ctx, a, p, status == TR_OK ? m : NULL, status);
    tr__msg_release(ctx, m);
    return NULL;
}

void tr__pending_fail_all(tr_ctx *ctx, tr_actor *a)
{
    struct actor_ext *e = a->ext;
    if (e == NULL)
        return;
    if (e->sweep_at != 0 && ctx != NULL)
        tr__timer_cancel(ctx->rt, e->sweep_timer);
    e->sweep_at = 0;
    for (uint32_t i = 0; i < e->pending.cap; i++)
        if (e->pending.tab[i].id != 0)
            free(e->pending.tab[i].val);
    idmap_free(&e->pending);
}

static uint64_t deadline_in(uint32_t timeout_ms)
{
    return tr__now_ns() + (uint64_t)timeout_ms * 1000000u;
}

tr_err tr_request(tr_ctx *ctx, tr_ref to, tr_msg *req, uint32_t timeout_ms, tr_reply_fn on_reply,
                  void *udata)
{
    if (ctx == NULL || req == NULL || on_reply == NULL || ctx->actor == NULL ||
        ctx->type == CTX_TIMER)
        return TR_EINVAL;
    if (req->flags & MF_NOMEM)
        return TR_ENOMEM;
    tr_runtime *rt = ctx->rt;
    struct actor_ext *e = tr__ext(ctx->actor);
    struct pending *p = malloc(sizeof *p);
    if (e == NULL || p == NULL) {
        free(p);
        return TR_ENOMEM;
    }
    uint64_t corr = atomic_fetch_add_explicit(&rt->next_corr, 1, memory_order_relaxed);
    p->deadline = deadline_in(timeout_ms);
    p->fn = on_reply;
    p->udata = udata;
    tr_err err = sweep_arm(ctx, ctx->actor, p->deadline);
    if (err != TR_OK || !idmap_put(&e->pending, corr, p)) {
        free(p);
        return err != TR_OK ? err : TR_ENOMEM;
    }
    err = tr__send_user(ctx, to, req, MF_REQUEST, corr, p->deadline);
    if (err != TR_OK) {
        idmap_take(&e->pending, corr);
        free(p); /* an armed timer with nothing to expire just re-arms or stops */
    }
    return err;
}

tr_err tr_call(tr_ctx *ctx, tr_ref to, tr_msg *req, uint32_t timeout_ms, tr_msg **reply)
{
    if (req == NULL)
        return TR_EINVAL;
    tr_err err = TR_OK;
    if (ctx == NULL || reply == NULL || tr_ref_is_nil(to))
        err = TR_EINVAL;
    else if (ctx->type == CTX_WORKER)
        err = TR_EWOULDBLOCK;
    else if (ctx->type == CTX_TIMER)
        err = TR_EWRONGKIND;
    else if (ctx->thr->busy)
        err = TR_EBUSY; /* from a continuation inside a receive or call */
    else if (ctx->thr->stopped || ctx->exiting)
        err = TR_ESTOPPED;
    else if (req->flags & MF_NOMEM)
        err = TR_ENOMEM;
    uint64_t corr = 0, deadline = 0;
    if (err == TR_OK) {
        corr = atomic_fetch_add_explicit(&ctx->rt->next_corr, 1, memory_order_relaxed);
        deadline = deadline_in(timeout_ms);
        err = tr__send_user(ctx, to, req, MF_REQUEST, corr, deadline);
    }
    if (err != TR_OK) {
        /* A call always takes its request: the caller never has to tell a
         * local refusal from the same code replied by the callee. */
        tr__msg_release(ctx, req);
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

static bool status_ok(tr_err status) { return status != TR_OK && (unsigned)status < TR_ERR_COUNT_; }

tr_err tr_reply(tr_ctx *ctx, const tr_msg *request, tr_msg *reply)
{
    tr_reply_to to;
    if (ctx == NULL || reply == NULL || tr_msg_reply_to(&to, request) != TR_OK)
        return TR_EINVAL;
    if (request == ctx->cur_req)
        ctx->cur_req = NULL; /* answered: an exit now owes the caller nothing */
    return tr_reply_to_send(ctx, &to, reply);
}

tr_err tr_reply_error(tr_ctx *ctx, const tr_msg *request, tr_err status)
{
    tr_reply_to to;
    if (ctx == NULL || tr_msg_reply_to(&to, request) != TR_OK)
        return TR_EINVAL;
    tr_err err = tr_reply_to_error(ctx, &to, status);
    if (err != TR_EINVAL && request == ctx->cur_req)
        ctx->cur_req = NULL;
    return err;
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
    tr_msg *r = tr__msg_alloc(ctx);
    if (r == NULL)
        return TR_ENOMEM;
    tr__msg_set_tag(r, "tr.error");
    return reply_send(ctx, to, r, status);
}
