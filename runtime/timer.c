/*
 * timer.c — one timer thread per runtime: a binary heap ordered by due time
 * and an id table for cancellation, both under one mutex.
 *
 * Timer messages travel in the control lane (bounded mailboxes never drop
 * them). A periodic timer sends a copy of its template each period and
 * stops by itself when its receiver is gone. Request deadlines use the same
 * service. This file must not run actor code: it only sends.
 */
#include "idmap.h"
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct timer {
    uint64_t at;     /* due, monotonic ns */
    uint64_t period; /* 0 = one-shot */
    uint64_t id;
    tr_ref to;
    tr_msg *msg;  /* sent as is (one-shot) or copied (periodic) */
    uint32_t idx; /* position in the heap */
};

struct timers {
    tr_runtime *rt;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct timer **heap; /* mu */
    uint32_t n, cap;
    idmap map; /* id -> timer, mu */
    uint64_t next_id;
    bool exit;
    tr_ctx ctx; /* the timer thread's context (CTX_TIMER) */
};

/* ---- heap ---------------------------------------------------------------- */

static void heap_set(struct timers *ts, uint32_t i, struct timer *t)
{
    ts->heap[i] = t;
    t->idx = i;
}

static void heap_up(struct timers *ts, uint32_t i)
{
    struct timer *t = ts->heap[i];
    while (i > 0 && ts->heap[(i - 1) / 2]->at > t->at) {
        heap_set(ts, i, ts->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(ts, i, t);
}

static void heap_down(struct timers *ts, uint32_t i)
{
    struct timer *t = ts->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= ts->n)
            break;
        if (c + 1 < ts->n && ts->heap[c + 1]->at < ts->heap[c]->at)
            c++;
        if (ts->heap[c]->at >= t->at)
            break;
        heap_set(ts, i, ts->heap[c]);
        i = c;
    }
    heap_set(ts, i, t);
}

static bool heap_push(struct timers *ts, struct timer *t)
{
    if (ts->n == ts->cap) {
        uint32_t ncap = ts->cap ? ts->cap * 2 : 64;
        struct timer **nh = realloc(ts->heap, ncap * sizeof *nh);
        if (nh == NULL)
            return false;
        ts->heap = nh;
        ts->cap = ncap;
    }
    heap_set(ts, ts->n++, t);
    heap_up(ts, t->idx);
    return true;
}

static void heap_remove(struct timers *ts, struct timer *t)
{
    uint32_t i = t->idx;
    struct timer *last = ts->heap[--ts->n];
    if (last == t)
        return;
    heap_set(ts, i, last);
    heap_up(ts, i);
    heap_down(ts, last->idx);
}

/* ---- the timer thread ---------------------------------------------------- */

static tr_msg *timer_copy(tr_ctx *ctx, const tr_msg *src)
{
    tr_msg *m = tr__msg_alloc(ctx);
    if (m == NULL)
        return NULL;
    m->kind = src->kind;
    m->corr = src->corr;
    memcpy(m->tag, src->tag, sizeof m->tag);
    if (src->len != 0 && tr__msg_reserve(m, src->len) != TR_OK) {
        tr__msg_release(ctx, m);
        return NULL;
    }
    memcpy(m->data, src->data, src->len);
    m->len = src->len;
    return m;
}

static void *timer_main(void *arg)
{
    struct timers *ts = arg;
    pthread_mutex_lock(&ts->mu);
    while (!ts->exit) {
        if (ts->n == 0) {
            pthread_cond_wait(&ts->cv, &ts->mu);
            continue;
        }
        struct timer *t = ts->heap[0];
        uint64_t now = tr__now_ns();
        if (t->at > now) {
            struct timespec abs = {(time_t)(t->at / 1000000000u), (long)(t->at % 1000000000u)};
            pthread_cond_timedwait(&ts->cv, &ts->mu, &abs);
            continue;
        }
        tr_msg *m;
        uint64_t id = t->id;
        tr_ref to = t->to;
        if (t->period == 0) {
            heap_remove(ts, t);
            idmap_take(&ts->map, t->id);
            m = t->msg;
            free(t);
        } else {
            m = timer_copy(&ts->ctx, t->msg);
            t->at += t->period;
            if (t->at <= now)
                t->at = now + t->period;
            heap_down(ts, 0);
        }
        pthread_mutex_unlock(&ts->mu);
        if (m != NULL) {
            tr_err err = tr__send_system(&ts->ctx, to, m);
            if (err == TR_OK)
                ctr_add(&ts->ctx.ctr.timers_fired, 1);
            else if (err == TR_ENOACTOR)
                tr__timer_cancel(ts->rt, id); /* receiver gone: stop repeating */
        }
        pthread_mutex_lock(&ts->mu);
    }
    pthread_mutex_unlock(&ts->mu);
    return NULL;
}

tr_err tr__timers_start(tr_runtime *rt)
{
    struct timers *ts = calloc(1, sizeof *ts);
    if (ts == NULL)
        return TR_ENOMEM;
    ts->rt = rt;
    ts->next_id = 1;
    ts->ctx.rt = rt;
    ts->ctx.type = CTX_TIMER;
    pthread_mutex_init(&ts->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ts->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&ts->thread, NULL, timer_main, ts) != 0) {
        pthread_mutex_destroy(&ts->mu);
        pthread_cond_destroy(&ts->cv);
        free(ts);
        return TR_ESYS;
    }
    rt->timers = ts;
    return TR_OK;
}

void tr__timers_stop(tr_runtime *rt)
{
    struct timers *ts = rt->timers;
    if (ts == NULL)
        return;
    pthread_mutex_lock(&ts->mu);
    bool running = !ts->exit;
    ts->exit = true;
    pthread_cond_signal(&ts->cv);
    pthread_mutex_unlock(&ts->mu);
    if (running)
        pthread_join(ts->thread, NULL);
}

void tr__timers_free(tr_runtime *rt)
{
    struct timers *ts = rt->timers;
    if (ts == NULL)
        return;
    for (uint32_t i = 0; i < ts->n; i++) {
        tr__msg_release(NULL, ts->heap[i]->msg);
        free(ts->heap[i]);
    }
    free(ts->heap);
    idmap_free(&ts->map);
    tr__msg_cache_drain(rt, &ts->ctx.cache);
    pthread_mutex_destroy(&ts->mu);
    pthread_cond_destroy(&ts->cv);
    free(ts);
    rt->timers = NULL;
}

void tr__timers_counters(tr_runtime *rt, ctr_set *sum)
{
    if (rt->timers != NULL)
        tr__counters_fold(sum, &rt->timers->ctx.ctr);
}

tr_err tr__timer_add(tr_runtime *rt, tr_ref to, tr_msg *m, uint64_t at_ns, uint64_t period_ns,
                     tr_timer_id *id)
{
    struct timers *ts = rt->timers;
    struct timer *t = malloc(sizeof *t);
    if (t == NULL)
        return TR_ENOMEM;
    t->at = at_ns;
    t->period = period_ns;
    t->to = to;
    t->msg = m;
    pthread_mutex_lock(&ts->mu);
    if (ts->exit) {
        pthread_mutex_unlock(&ts->mu);
        free(t);
        return TR_ESTOPPED;
    }
    t->id = ts->next_id++;
    if (!idmap_put(&ts->map, t->id, t)) {
        pthread_mutex_unlock(&ts->mu);
        free(t);
        return TR_ENOMEM;
    }
    if (!heap_push(ts, t)) {
        idmap_take(&ts->map, t->id);
        pthread_mutex_unlock(&ts->mu);
        free(t);
        return TR_ENOMEM;
    }
    if (t->idx == 0)
        pthread_cond_signal(&ts->cv);
    if (id != NULL)
        *id = t->id;
    pthread_mutex_unlock(&ts->mu);
    return TR_OK;
}

tr_err tr__timer_cancel(tr_runtime *rt, tr_timer_id id)
{
    struct timers *ts = rt->timers;
    pthread_mutex_lock(&ts->mu);
    struct timer *t = idmap_take(&ts->map, id);
    if (t != NULL)
        heap_remove(ts, t);
    pthread_mutex_unlock(&ts->mu);
    if (t == NULL)
        return TR_ENOTFOUND;
    tr__msg_release(NULL, t->msg);
    free(t);
    return TR_OK;
}

/* ---- public API ---------------------------------------------------------- */

static tr_err timer_start(tr_ctx *ctx, tr_ref to, tr_msg *m, uint32_t delay_ms, uint32_t period_ms,
                          tr_timer_id *id)
{
    if (ctx == NULL || m == NULL)
        return TR_EINVAL;
    if (m->flags & MF_NOMEM)
        return TR_ENOMEM;
    if (atomic_load_explicit(&ctx->rt->stopped, memory_order_relaxed))
        return TR_ESTOPPED;
    if (to.node != ctx->rt->node)
        return to.node == 0 ? TR_EINVAL : TR_ENOROUTE;
    tr_actor *a = tr__actor_lookup(ctx->rt, to.id);
    if (a == NULL || atomic_load_explicit(&a->incarnation, memory_order_acquire) != to.incarnation)
        return TR_ENOACTOR;
    m->kind = MK_USER;
    m->flags &= MF_HEAPBUF;
    m->corr = 0;
    m->deadline = 0;
    m->from = TR_REF_NIL;
    uint64_t first = period_ms != 0 ? period_ms : delay_ms;
    return tr__timer_add(ctx->rt, to, m, tr__now_ns() + first * 1000000ull,
                         (uint64_t)period_ms * 1000000ull, id);
}

tr_err tr_send_after(tr_ctx *ctx, tr_ref to, tr_msg *m, uint32_t delay_ms, tr_timer_id *id)
{
    return timer_start(ctx, to, m, delay_ms, 0, id);
}

tr_err tr_send_interval(tr_ctx *ctx, tr_ref to, tr_msg *m, uint32_t period_ms, tr_timer_id *id)
{
    if (period_ms == 0)
        return TR_EINVAL;
    return timer_start(ctx, to, m, 0, period_ms, id);
}

tr_err tr_timer_cancel(tr_ctx *ctx, tr_timer_id id)
{
    if (ctx == NULL)
        return TR_EINVAL;
    return tr__timer_cancel(ctx->rt, id);
}
