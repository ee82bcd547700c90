/*
 * thread_actor.c — thread actors, attached threads, and blocking receive.
 *
 * A thread actor's thread is its slot's consumer. The consumer role moves
 * by the mailbox's idle mark: a thread that finds nothing to do marks the
 * mailbox idle and sleeps; the sender that finds it idle wakes the thread,
 * handing the role back. A thread that times out reclaims the role by
 * clearing the mark itself; if a sender cleared it first, the thread waits
 * for that sender's wake. So every wake is consumed and the role never has
 * two holders — which is what lets the thread give the slot to the worker
 * pool when it exits. This file must not run pooled actors.
 */
#include "mailbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- waking and waiting -------------------------------------------------- */

void tr__thread_wake(struct thread_actor *t)
{
    /* seq_cst pair with thr_sleep: either the sleeper sees signalled or we
     * see sleeping and signal under its lock. */
    atomic_store_explicit(&t->signalled, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&t->sleeping, memory_order_seq_cst)) {
        pthread_mutex_lock(&t->mu);
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
    }
}

static void deadline_to_timespec(uint64_t deadline_ns, struct timespec *ts)
{
    /* cv uses CLOCK_MONOTONIC (set in thr_record_new). */
    ts->tv_sec = (time_t)(deadline_ns / 1000000000u);
    ts->tv_nsec = (long)(deadline_ns % 1000000000u);
}

/* Waits for a wake; deadline 0 = none. Returns false on timeout. */
static bool thr_sleep(struct thread_actor *t, uint64_t deadline, uint32_t spin_ns)
{
    uint64_t spin_until = tr__now_ns() + spin_ns;
    if (deadline != 0 && spin_until > deadline)
        spin_until = deadline;
    while (tr__now_ns() < spin_until) {
        if (atomic_exchange_explicit(&t->signalled, 0, memory_order_acquire))
            return true;
    }
    bool woke = true;
    pthread_mutex_lock(&t->mu);
    atomic_store_explicit(&t->sleeping, 1, memory_order_seq_cst);
    while (!atomic_load_explicit(&t->signalled, memory_order_seq_cst)) {
        if (deadline == 0) {
            pthread_cond_wait(&t->cv, &t->mu);
        } else {
            struct timespec ts;
            deadline_to_timespec(deadline, &ts);
            if (pthread_cond_timedwait(&t->cv, &t->mu, &ts) == ETIMEDOUT &&
                !atomic_load_explicit(&t->signalled, memory_order_seq_cst)) {
                woke = false;
                break;
            }
        }
    }
    atomic_store_explicit(&t->sleeping, 0, memory_order_relaxed);
    if (woke)
        atomic_store_explicit(&t->signalled, 0, memory_order_relaxed);
    pthread_mutex_unlock(&t->mu);
    return woke;
}

/* Clears the idle mark we set; false when a sender cleared it first (its
 * wake is on the way and must be consumed). */
static bool thr_reclaim(tr_actor *a)
{
    mbox_node *h = atomic_load_explicit(&a->head, memory_order_acquire);
    if (((uintptr_t)h & MBOX_IDLE) == 0)
        return false;
    return atomic_compare_exchange_strong_explicit(&a->head, &h,
                                                   (mbox_node *)((uintptr_t)h & ~MBOX_IDLE),
                                                   memory_order_acquire, memory_order_relaxed);
}

/* Holding the role with nothing to pop: waits for messages until deadline
 * (0 = none). Returns with the role held; false on timeout. */
static bool thr_idle_wait(tr_ctx *ctx, uint64_t deadline)
{
    struct thread_actor *t = ctx->thr;
    tr_actor *a = ctx->actor;
    mbox_node *released;
    bool idle = mbox_mark_idle(a, &released);
    tr__msg_dispose_released(ctx, released);
    if (!idle)
        return true;
    for (;;) {
        if (thr_sleep(t, deadline, ctx->rt->spin_ns))
            return true;
        if (thr_reclaim(a))
            return false;
        deadline = 0; /* a sender is handing the role back: wait for it */
    }
}

/* ---- the save queue and pumping ------------------------------------------ */

static void save_append(struct thread_actor *t, tr_msg *m)
{
    atomic_store_explicit(&m->link.next, NULL, memory_order_relaxed);
    if (t->save_tail != NULL)
        atomic_store_explicit(&t->save_tail->link.next, &m->link, memory_order_relaxed);
    else
        t->save_head = m;
    t->save_tail = m;
}

static tr_msg *save_next(tr_msg *m)
{
    return (tr_msg *)atomic_load_explicit(&m->link.next, memory_order_relaxed);
}

static void save_unlink(struct thread_actor *t, tr_msg *prev, tr_msg *m)
{
    tr_msg *next = save_next(m);
    if (prev != NULL)
        atomic_store_explicit(&prev->link.next, next != NULL ? &next->link : NULL,
                              memory_order_relaxed);
    else
        t->save_head = next;
    if (t->save_tail == m)
        t->save_tail = prev;
    atomic_store_explicit(&m->link.next, NULL, memory_order_relaxed);
}

/* Pops and processes everything queued; user messages go to the save
 * queue. Stops early when the actor is told to exit. */
/* The oldest counted (bounded, user) message in the save queue, or NULL. */
static tr_msg *save_oldest_counted(struct thread_actor *t, tr_msg **prev_out)
{
    tr_msg *prev = NULL;
    for (tr_msg *m = t->save_head; m != NULL; prev = m, m = save_next(m)) {
        if (m->flags & MF_COUNTED) {
            *prev_out = prev;
            return m;
        }
    }
    return NULL;
}

/* Pops and processes everything queued; user messages go to the save
 * queue. Stops early when the actor is told to exit. After a drain-mode
 * STOP, what was queued before it is still handed out, later user messages
 * are dead letters, and replies and signals are still processed. */
static void thr_pump(tr_ctx *ctx)
{
    struct thread_actor *t = ctx->thr;
    tr_actor *a = ctx->actor;
    mbox_node *node, *released;
    while (!ctx->exiting) {
        node = mbox_pop_owned(a, &released);
        tr__msg_dispose_released(ctx, released);
        if (node == NULL)
            break;
        tr_msg *m = (tr_msg *)node;
        if (m->kind == MK_STOP && m->target_inc == a->live_inc &&
            !atomic_load_explicit(&a->discard, memory_order_relaxed)) {
            tr__msg_release(ctx, m);
            t->stop_pending = true;
            continue;
        }
        if (t->stop_pending && m->kind == MK_USER) {
            tr__uncount(a, m);
            tr__dead_letter(ctx, a, m);
            continue;
        }
        bool counted = (m->flags & MF_COUNTED) != 0;
        bool over = tr__overflowed(a, m);
        tr_msg *user = tr__process(ctx, a, m);
        if (user == NULL) {
            if (counted)
                tr__uncount_one(a);
            continue;
        }
        if (over) {
            /* Drop-oldest: the oldest unreceived message goes, which is in
             * the save queue if any counted one waits there. */
            tr_msg *prev = NULL, *old = save_oldest_counted(t, &prev);
            if (old != NULL) {
                save_unlink(t, prev, old);
                t->nsaved--;
                t->save_dropped++; /* a receive scanning the queue restarts */
            } else {
                old = user;
                user = NULL;
            }
            tr__uncount(a, old);
            ctr_add(&ctx->ctr.dropped_overflow, 1);
            tr__dead_letter(ctx, a, old);
        }
        if (user != NULL) {
            save_append(t, user); /* a counted message stays counted until received */
            ctr_max(&ctx->ctr.max_depth, ++t->nsaved);
        }
    }
    if (ctx->exiting)
        t->stopped = true;
}

/* A drain-mode STOP was seen and nothing queued before it matches: the
 * actor stops now. */
static tr_err thr_stop_now(tr_ctx *ctx)
{
    struct thread_actor *t = ctx->thr;
    if (!ctx->exiting) {
        ctx->exiting = true;
        ctx->exit_reason = tr_reason_make(TR_EXIT_SHUTDOWN, 0, "runtime stopping");
    }
    t->stopped = true;
    return TR_ESTOPPED;
}

/* A message leaves the save queue for the user: it no longer counts. */
static void thr_took(tr_actor *a, const tr_msg *m) { tr__uncount(a, m); }

static bool thr_matches(const tr_msg *m, const char *tag, tr_match_fn match, void *udata)
{
    if (tag != NULL && strcmp(m->tag, tag) != 0)
        return false;
    return match == NULL || match(m, udata);
}

static uint64_t deadline_after(int32_t timeout_ms)
{
    if (timeout_ms < 0)
        return 0;
    return tr__now_ns() + (uint64_t)timeout_ms * 1000000u;
}

static tr_err thr_receive(tr_ctx *ctx, const char *tag, tr_match_fn match, void *udata,
                          int32_t timeout_ms, tr_msg **out);

tr_err tr_receive(tr_ctx *ctx, const char *tag, tr_match_fn match, void *udata, int32_t timeout_ms,
                  tr_msg **out)
{
    if (ctx == NULL || out == NULL)
        return TR_EINVAL;
    if (ctx->type != CTX_THREAD && ctx->type != CTX_ATTACHED)
        return TR_EWRONGKIND;
    struct thread_actor *t = ctx->thr;
    if (t->stopped || ctx->exiting)
        return TR_ESTOPPED;
    /* A continuation runs inside a receive or call; a receive from there
     * would pull the save queue from under the one it interrupted. */
    if (t->busy)
        return TR_EBUSY;
    t->busy = true;
    bool watched = atomic_load_explicit(&t->wd.inc, memory_order_relaxed) != 0;
    if (watched)
        atomic_store_explicit(&t->wd.inc, 0, memory_order_relaxed);
    tr_err err = thr_receive(ctx, tag, match, udata, timeout_ms, out);
    if (watched)
        wd_enter(&t->wd, atomic_load_explicit(&t->wd.id, memory_order_relaxed),
                 ctx->actor->live_inc, atomic_load_explicit(&t->wd.name, memory_order_relaxed));
    wd_tick(&t->wd);
    t->busy = false;
    return err;
}

static tr_err thr_receive(tr_ctx *ctx, const char *tag, tr_match_fn match, void *udata,
                          int32_t timeout_ms, tr_msg **out)
{
    struct thread_actor *t = ctx->thr;
    uint64_t deadline = deadline_after(timeout_ms);
    tr_msg *prev = NULL, *m = t->save_head;
    uint64_t dropped = t->save_dropped;
    for (;;) {
        for (; m != NULL; prev = m, m = save_next(m)) {
            if (thr_matches(m, tag, match, udata)) {
                save_unlink(t, prev, m);
                t->nsaved--;
                thr_took(ctx->actor, m);
                *out = m;
                return TR_OK;
            }
        }
        thr_pump(ctx);
        if (t->stopped)
            return TR_ESTOPPED;
        if (t->stop_pending && (prev != NULL ? save_next(prev) : t->save_head) == NULL &&
            t->save_dropped == dropped)
            return thr_stop_now(ctx);
        /* Resume the scan where it ended (earlier entries did not match),
         * unless the pump dropped an old entry, which may have been prev. */
        if (t->save_dropped != dropped) {
            dropped = t->save_dropped;
            prev = NULL;
        }
        m = prev != NULL ? save_next(prev) : t->save_head;
        if (m != NULL)
            continue;
        if (timeout_ms == 0 || (deadline != 0 && tr__now_ns() >= deadline))
            return TR_ETIMEDOUT;
        if (!thr_idle_wait(ctx, deadline)) {
            thr_pump(ctx);
            if (t->save_dropped != dropped)
                prev = NULL;
            m = prev != NULL ? save_next(prev) : t->save_head;
            if (m == NULL)
                return t->stopped        ? TR_ESTOPPED
                       : t->stop_pending ? thr_stop_now(ctx)
                                         : TR_ETIMEDOUT;
        }
    }
}

tr_err tr__thread_wait_reply(tr_ctx *ctx, uint64_t corr, uint64_t deadline, tr_msg **reply)
{
    struct thread_actor *t = ctx->thr;
    t->call_corr = corr;
    t->call_reply = NULL;
    t->busy = true;
    uint32_t watched = atomic_load_explicit(&t->wd.inc, memory_order_relaxed);
    atomic_store_explicit(&t->wd.inc, 0, memory_order_relaxed);
    tr_err err = TR_OK;
    for (;;) {
        thr_pump(ctx);
        if (t->call_reply != NULL)
            break;
        if (t->stopped) {
            err = TR_ESTOPPED;
            break;
        }
        if (tr__now_ns() >= deadline || !thr_idle_wait(ctx, deadline)) {
            thr_pump(ctx);
            if (t->call_reply == NULL)
                err = TR_ETIMEDOUT;
            break;
        }
    }
    t->call_corr = 0;
    t->busy = false;
    wd_tick(&t->wd);
    atomic_store_explicit(&t->wd.inc, watched, memory_order_relaxed);
    if (t->call_reply != NULL) {
        tr_msg *r = t->call_reply;
        t->call_reply = NULL;
        err = r->status != TR_OK ? (tr_err)r->status : TR_OK;
        if (err != TR_OK)
            tr__msg_release(ctx, r);
        else
            *reply = r;
    }
    return err;
}

bool tr__thread_take_reply(tr_ctx *ctx, tr_msg *m)
{
    if (ctx->type != CTX_THREAD && ctx->type != CTX_ATTACHED)
        return false;
    struct thread_actor *t = ctx->thr;
    if (t->call_corr == 0 || t->call_corr != m->corr || t->call_reply != NULL)
        return false;
    t->call_reply = m;
    return true;
}

/* ---- records ------------------------------------------------------------- */

static struct thread_actor *thr_record_new(tr_runtime *rt)
{
    struct thread_actor *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    t->ctx.rt = rt;
    t->ctx.thr = t;
    t->joined = true;
    return t;
}

/* Takes a finished record for reuse, or makes one. */
static struct thread_actor *thr_record_get(tr_runtime *rt, uint8_t type)
{
    struct thread_actor *t = NULL;
    bool join = false;
    pthread_mutex_lock(&rt->ctx_lock);
    for (struct thread_actor *r = rt->thr_all; r != NULL; r = r->all_next) {
        if (atomic_load_explicit(&r->done, memory_order_acquire)) {
            t = r;
            atomic_store_explicit(&t->done, false, memory_order_relaxed);
            join = t->has_thread && !t->joined;
            t->joined = true;
            break;
        }
    }
    pthread_mutex_unlock(&rt->ctx_lock);
    if (t != NULL) {
        if (join)
            pthread_join(t->thread, NULL);
    } else {
        t = thr_record_new(rt);
        if (t == NULL)
            return NULL;
        pthread_mutex_lock(&rt->ctx_lock);
        t->all_next = rt->thr_all;
        rt->thr_all = t;
        pthread_mutex_unlock(&rt->ctx_lock);
    }
    t->ctx.type = type;
    t->ctx.exiting = false;
    t->ctx.actor = NULL;
    t->ctx.cur_req = NULL;
    t->has_thread = false;
    t->stopped = false;
    t->stop_pending = false;
    t->busy = false;
    t->save_head = t->save_tail = NULL;
    t->nsaved = 0;
    t->call_corr = 0;
    t->call_reply = NULL;
    t->init.args = NULL;
    atomic_store_explicit(&t->signalled, 0, memory_order_relaxed);
    return t;
}

/* Makes the calling record the consumer of its slot: waits for the grant
 * that the INIT push (or the worker that popped INIT) sends. */
static void thr_wait_role(struct thread_actor *t)
{
    while (!thr_sleep(t, 0, t->ctx.rt->spin_ns)) {
    }
}

/* Leaves the slot: unreceived messages become dead letters, the consumer
 * role goes to the pool, the slot and the record become reusable. */
static void thr_leave(struct thread_actor *t)
{
    tr_ctx *ctx = &t->ctx;
    tr_actor *a = ctx->actor;
    while (t->save_head != NULL) {
        tr_msg *m = t->save_head;
        t->save_head = save_next(m);
        thr_took(a, m);
        tr__dead_letter(ctx, a, m); /* live_inc is 0 now: answered as dead */
    }
    t->save_tail = NULL;
    t->nsaved = 0;
    /* release: a sender that finds the mailbox idle after mark_idle below
     * reads kind POOLED and schedules the slot on the pool. */
    atomic_store_explicit(&a->kind, TR_POOLED, memory_order_release);
    mbox_node *node, *released;
    for (;;) {
        /* Turn what is queued into dead letters here, while we hold the
         * role: at shutdown no worker may be left to do it. */
        while ((node = mbox_pop_owned(a, &released)) != NULL) {
            tr__msg_dispose_released(ctx, released);
            tr__process(ctx, a, (tr_msg *)node);
        }
        tr__msg_dispose_released(ctx, released);
        bool idle = mbox_mark_idle(a, &released);
        tr__msg_dispose_released(ctx, released);
        if (idle)
            break;
        if (!atomic_load_explicit(&ctx->rt->stopped, memory_order_acquire)) {
            tr__sched_inject(ctx->rt, a);
            break;
        }
    }
    ctx->actor = NULL;
    tr__slot_publish_free(ctx->rt, ctx, a);
    atomic_store_explicit(&t->done, true, memory_order_release);
}

/* ---- thread actors ------------------------------------------------------- */

static int thr_default_loop(tr_ctx *ctx, void *state)
{
    const tr_behaviour *b = ctx->actor->beh;
    tr_msg *m;
    while (tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &m) == TR_OK) {
        int rc = b->handle(ctx, state, m);
        tr__msg_release(ctx, m);
        if (rc != 0)
            return rc;
        if (ctx->exiting)
            break;
    }
    return 0;
}

static void *thr_main(void *arg)
{
    struct thread_actor *t = arg;
    tr_ctx *ctx = &t->ctx;
    tr__set_runtime_thread(ctx->rt);
    thr_wait_role(t);
    tr_actor *a = ctx->actor;
    const tr_behaviour *b = t->init.beh;
    a->live_inc = atomic_load_explicit(&a->incarnation, memory_order_relaxed);
    a->beh = b;
    a->trap_exit = t->init.trap_exit != 0;
    a->ext = NULL;
    a->state = NULL;
    if (t->init.link_from)
        tr__links_add(a, t->spawner);

    int rc = 0;
    wd_enter(&t->wd, a->id, a->live_inc, b->name);
    if (b->state_size != 0 && (a->state = calloc(1, b->state_size)) == NULL) {
        ctx->exiting = true;
        ctx->exit_reason = tr_reason_make(TR_EXIT_ERROR, TR_ENOMEM, "state allocation failed");
    }
    if (!ctx->exiting && b->init != NULL)
        rc = b->init(ctx, a->state, t->init.args);
    tr__msg_release(ctx, t->init.args);
    t->init.args = NULL;
    if (rc == 0 && !ctx->exiting)
        rc = b->run != NULL ? b->run(ctx, a->state) : thr_default_loop(ctx, a->state);
    if (!ctx->exiting) {
        ctx->exit_reason = rc != 0 ? tr_reason_make(TR_EXIT_ERROR, rc, NULL)
                                   : tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
        ctx->exiting = true;
    }
    wd_leave(&t->wd);
    tr__finish_exit(ctx);
    thr_leave(t);
    return NULL;
}

tr_err tr__thread_spawn(tr_ctx *ctx, tr_actor *a, const struct init_info *info,
                        struct thread_actor **out)
{
    tr_runtime *rt = ctx->rt;
    struct thread_actor *t = thr_record_get(rt, CTX_THREAD);
    if (t == NULL)
        return TR_ENOMEM;
    t->ctx.actor = a;
    t->init = *info;
    t->spawner = tr_self(ctx);
    if (pthread_create(&t->thread, NULL, thr_main, t) != 0) {
        t->init.args = NULL; /* still the caller's */
        atomic_store_explicit(&t->done, true, memory_order_release);
        return TR_ESYS;
    }
    pthread_mutex_lock(&rt->ctx_lock);
    t->has_thread = true;
    t->joined = false;
    pthread_mutex_unlock(&rt->ctx_lock);
    *out = t;
    return TR_OK;
}

void tr__threads_join_all(tr_runtime *rt)
{
    for (;;) {
        /* Claim one thread to join under the lock, so a record being reused
         * by thr_record_get is never joined twice. */
        struct thread_actor *claim = NULL;
        pthread_mutex_lock(&rt->ctx_lock);
        for (struct thread_actor *t = rt->thr_all; t != NULL && claim == NULL; t = t->all_next) {
            if (t->has_thread && !t->joined) {
                t->joined = true;
                claim = t;
            }
        }
        pthread_mutex_unlock(&rt->ctx_lock);
        if (claim == NULL)
            return;
        pthread_join(claim->thread, NULL);
    }
}

void tr__threads_counters(tr_runtime *rt, ctr_set *sum)
{
    pthread_mutex_lock(&rt->ctx_lock);
    for (struct thread_actor *t = rt->thr_all; t != NULL; t = t->all_next)
        tr__counters_fold(sum, &t->ctx.ctr);
    pthread_mutex_unlock(&rt->ctx_lock);
}

void tr__threads_free(tr_runtime *rt)
{
    struct thread_actor *t = rt->thr_all;
    while (t != NULL) {
        struct thread_actor *next = t->all_next;
        while (t->save_head != NULL) {
            tr_msg *m = t->save_head;
            t->save_head = save_next(m);
            tr__msg_release(NULL, m);
        }
        tr__msg_release(NULL, t->init.args);
        tr__msg_cache_drain(rt, &t->ctx.cache);
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        free(t);
        t = next;
    }
    rt->thr_all = NULL;
}

/* ---- attached threads ---------------------------------------------------- */

tr_err tr_attach(tr_ctx **out, tr_runtime *rt)
{
    /* A worker or thread actor of rt already has a context. */
    if (out == NULL || rt == NULL || tr__on_runtime_thread(rt))
        return TR_EINVAL;
    struct thread_actor *t = thr_record_get(rt, CTX_ATTACHED);
    if (t == NULL)
        return TR_ENOMEM;
    tr_ctx *ctx = &t->ctx;
    tr_msg *init = tr__msg_alloc(ctx);
    tr_actor *a;
    tr_err err = init == NULL ? TR_ENOMEM : tr__slot_alloc(rt, ctx, &a, 0);
    if (err != TR_OK) {
        tr__msg_release(ctx, init);
        atomic_store_explicit(&t->done, true, memory_order_release);
        return err;
    }
    ctx->actor = a;
    atomic_store_explicit(&a->limit, 0, memory_order_relaxed);
    atomic_store_explicit(&a->overflow, TR_OVERFLOW_REJECT, memory_order_relaxed);
    atomic_store_explicit(&a->thr, t, memory_order_release);
    atomic_store_explicit(&a->kind, TR_THREAD, memory_order_release);
    uint32_t inc = atomic_load_explicit(&a->incarnation, memory_order_relaxed);
    init->kind = MK_INIT;
    init->flags = MF_SYSTEM;
    init->target_inc = inc;
    /* The push either finds the slot idle and wakes us, or a worker that is
     * draining the slot's previous life pops INIT and wakes us. */
    tr__deliver(ctx, a, init);
    tr__spawn_done(rt);
    thr_wait_role(t);
    a->live_inc = inc;
    a->beh = NULL;
    a->state = NULL;
    a->ext = NULL;
    a->trap_exit = false;
    *out = ctx;
    return TR_OK;
}

void tr_detach(tr_ctx *ctx)
{
    if (ctx == NULL || ctx->type != CTX_ATTACHED || ctx->actor == NULL)
        return;
    ctx->exiting = true;
    ctx->exit_reason = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
    tr__finish_exit(ctx);
    thr_leave(ctx->thr);
}
