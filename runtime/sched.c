/*
 * sched.c — the worker pool that runs pooled actors.
 *
 * Each worker has a private "run next" slot, a bounded local run queue that
 * other workers may steal from, and shares one global queue with everyone
 * (fed by threads that are not workers, and by full local queues). An actor
 * a send just woke runs next on the sender's worker, which keeps request/
 * reply pairs on one core and hot in cache; a second wake in the same turn
 * moves the first one to the stealable queue. A turn handles at most
 * `batch` messages and then yields. Idle workers spin a little, then park.
 * This file must not interpret messages beyond handing them to tr__process.
 */
#include "mailbox.h"

#include <stdlib.h>
#include <string.h>

#define RQ_SIZE 256           /* local run queue capacity (power of two) */
#define GLOBAL_EVERY 61       /* turns between forced looks at the global queue */
#define NEXT_STREAK 64        /* run-next hand-offs before the local queue is served */
#define STEAL_DELAY_NS 200000 /* a lone queued actor is left to its worker this long */

struct sched;

struct worker {
    tr_ctx ctx; /* ctx.actor is the actor being run */
    struct sched *s;
    pthread_t thread;
    uint32_t index;
    uint32_t ticks;
    uint32_t next_streak; /* turns run in a row from run_next */
    uint64_t rng;
    tr_actor *run_next; /* private: runs before anything else */
    struct wd_probe wd; /* handler calls, for the watchdog */
    /* Local run queue: the owner pushes at tail; the owner and thieves take
     * from head with a CAS. */
    _Atomic uint32_t rq_head TR_ALIGNED;
    _Atomic uint32_t rq_tail;
    _Atomic uint64_t rq_since; /* when the local queue last went from empty to one */
    _Atomic(tr_actor *) rq[RQ_SIZE];
} TR_ALIGNED;

struct sched {
    tr_runtime *rt;
    uint32_t n;              /* running workers */
    uint32_t nworkers_total; /* workers made (their counters outlive them) */
    struct worker *w;
    pthread_mutex_t gq_lock;
    tr_actor *gq_head, *gq_tail; /* gq_lock */
    _Atomic uint32_t gq_len;
    pthread_mutex_t park_lock;
    pthread_cond_t park_cv;
    _Atomic uint32_t nparked;
    _Atomic uint32_t nspinning; /* idle workers spinning now */
    _Atomic bool exit;
};

static __thread tr_runtime *tls_runtime;

bool tr__on_runtime_thread(const tr_runtime *rt) { return tls_runtime == rt; }
void tr__set_runtime_thread(tr_runtime *rt) { tls_runtime = rt; }

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ---- queues -------------------------------------------------------------- */

static bool rq_push(struct worker *w, tr_actor *a)
{
    uint32_t t = atomic_load_explicit(&w->rq_tail, memory_order_relaxed);
    /* acquire: pairs with the CAS in rq_take, so the slot we overwrite has
     * been read by whoever took it. */
    uint32_t h = atomic_load_explicit(&w->rq_head, memory_order_acquire);
    if (t - h >= RQ_SIZE)
        return false;
    atomic_store_explicit(&w->rq[t % RQ_SIZE], a, memory_order_relaxed);
    if (t == h)
        atomic_store_explicit(&w->rq_since, tr__now_ns(), memory_order_relaxed);
    /* release: publishes the slot to rq_take's acquire load of tail. */
    atomic_store_explicit(&w->rq_tail, t + 1, memory_order_release);
    return true;
}

/* Takes the oldest entry of w's local queue; owner or thief. */
static tr_actor *rq_take(struct worker *w)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&w->rq_head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&w->rq_tail, memory_order_acquire);
        if (t == h)
            return NULL;
        tr_actor *a = atomic_load_explicit(&w->rq[h % RQ_SIZE], memory_order_relaxed);
        /* acq_rel: success claims entry h; pairs with rq_push's acquire of head. */
        if (atomic_compare_exchange_weak_explicit(&w->rq_head, &h, h + 1, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return a;
    }
}

static bool rq_nonempty(struct worker *w)
{
    return atomic_load_explicit(&w->rq_tail, memory_order_acquire) !=
           atomic_load_explicit(&w->rq_head, memory_order_acquire);
}

static void gq_push(struct sched *s, tr_actor *a)
{
    a->sched_next = NULL;
    pthread_mutex_lock(&s->gq_lock);
    if (s->gq_tail != NULL)
        s->gq_tail->sched_next = a;
    else
        s->gq_head = a;
    s->gq_tail = a;
    atomic_fetch_add_explicit(&s->gq_len, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->gq_lock);
}

static tr_actor *gq_pop(struct sched *s)
{
    if (atomic_load_explicit(&s->gq_len, memory_order_relaxed) == 0)
        return NULL;
    pthread_mutex_lock(&s->gq_lock);
    tr_actor *a = s->gq_head;
    if (a != NULL) {
        s->gq_head = a->sched_next;
        if (s->gq_head == NULL)
            s->gq_tail = NULL;
        atomic_fetch_sub_explicit(&s->gq_len, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->gq_lock);
    return a;
}

/* ---- parking ------------------------------------------------------------- */

static bool sched_has_work(struct sched *s)
{
    if (atomic_load_explicit(&s->gq_len, memory_order_seq_cst) != 0)
        return true;
    for (uint32_t i = 0; i < s->n; i++)
        if (rq_nonempty(&s->w[i]))
            return true;
    return false;
}

/* After making work visible: wakes a parked worker if there is one. */
static void sched_wake(struct sched *s)
{
    /* seq_cst fence: with the one in worker_park this is a Dekker pair —
     * either the parker sees our work or we see its nparked count. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->nparked, memory_order_relaxed) != 0) {
        pthread_mutex_lock(&s->park_lock);
        pthread_cond_signal(&s->park_cv);
        pthread_mutex_unlock(&s->park_lock);
    }
}

static void worker_park(struct sched *s)
{
    pthread_mutex_lock(&s->park_lock);
    atomic_fetch_add_explicit(&s->nparked, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (!sched_has_work(s) && !atomic_load_explicit(&s->exit, memory_order_relaxed))
        pthread_cond_wait(&s->park_cv, &s->park_lock);
    atomic_fetch_sub_explicit(&s->nparked, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->park_lock);
}

/* ---- scheduling ---------------------------------------------------------- */

static void push_local(struct worker *w, tr_actor *a)
{
    if (!rq_push(w, a))
        gq_push(w->s, a);
    sched_wake(w->s);
}

void tr__schedule(tr_ctx *ctx, tr_actor *a)
{
    /* acquire: pairs with the release store of kind in tr_spawn / thread exit. */
    if (atomic_load_explicit(&a->kind, memory_order_acquire) == TR_THREAD) {
        tr__thread_wake(atomic_load_explicit(&a->thr, memory_order_acquire));
        return;
    }
    if (ctx != NULL && ctx->type == CTX_WORKER) {
        struct worker *w = ctx->worker;
        if (w->run_next != NULL)
            push_local(w, w->run_next);
        w->run_next = a;
        return;
    }
    tr__sched_inject(ctx->rt, a);
}

void tr__sched_inject(tr_runtime *rt, tr_actor *a)
{
    gq_push(rt->sched, a);
    sched_wake(rt->sched);
}

/*
 * Takes work from another worker. A worker with a single actor queued is
 * usually about to run it (a producer it just yielded, say, whose consumer
 * it is running now): moving it to another core costs more in cache misses
 * than it gains, so a lone actor is only taken once it has waited
 * STEAL_DELAY_NS.
 */
static tr_actor *steal(struct worker *w)
{
    struct sched *s = w->s;
    if (s->n < 2)
        return NULL;
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    uint32_t start = (uint32_t)(w->rng % s->n);
    uint64_t now = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        struct worker *v = &s->w[(start + i) % s->n];
        if (v == w)
            continue;
        uint32_t len = atomic_load_explicit(&v->rq_tail, memory_order_acquire) -
                       atomic_load_explicit(&v->rq_head, memory_order_acquire);
        if (len == 0)
            continue;
        if (len == 1) {
            if (now == 0)
                now = tr__now_ns();
            if (now - atomic_load_explicit(&v->rq_since, memory_order_relaxed) < STEAL_DELAY_NS)
                continue;
        }
        tr_actor *a = rq_take(v);
        if (a != NULL)
            return a;
    }
    return NULL;
}

static tr_actor *find_work(struct worker *w)
{
    tr_actor *a;
    if (++w->ticks % GLOBAL_EVERY == 0 && (a = gq_pop(w->s)) != NULL)
        return a;
    if ((a = w->run_next) != NULL) {
        w->run_next = NULL;
        /* A pair that keeps waking each other would run forever from this
         * slot; after NEXT_STREAK hand-offs the local queue goes first. */
        if (++w->next_streak < NEXT_STREAK || !rq_nonempty(w))
            return a;
        push_local(w, a);
    }
    w->next_streak = 0;
    if ((a = rq_take(w)) != NULL)
        return a;
    if ((a = gq_pop(w->s)) != NULL)
        return a;
    return steal(w);
}

/*
 * Runs one turn of a, then marks it idle or requeues it. A turn ends after
 * `batch` messages, after SEND_BUDGET messages sent, or after TURN_NS
 * (checked every 32 messages), whichever comes first. Charging sends is the
 * backpressure: an actor that sends a thousand messages per handler call
 * yields after about one call, while the actor draining them keeps its
 * worker for up to a whole batch, so producers cannot outrun a consumer
 * just by doing more per call. The time limit keeps slow handlers from
 * holding a worker.
 */
#define SEND_BUDGET 1024
#define TURN_NS 200000

static void run_actor(struct worker *w, tr_actor *a)
{
    tr_ctx *ctx = &w->ctx;
    uint64_t batch = ctx->rt->batch;
    uint64_t sent_limit = atomic_load_explicit(&ctx->ctr.sent, memory_order_relaxed) + SEND_BUDGET;
    uint64_t t0 = 0;
    ctx->actor = a;
    ctx->handoff = false;
    mbox_node *released;
    bool producer = false;
    wd_enter(&w->wd, a->id, atomic_load_explicit(&a->incarnation, memory_order_relaxed),
             a->beh != NULL ? a->beh->name : NULL);

    for (uint64_t n = 0; n < batch; n++) {
        if (atomic_load_explicit(&ctx->ctr.sent, memory_order_relaxed) >= sent_limit) {
            producer = true;
            break;
        }
        if ((n & 31) == 31) {
            uint64_t now = tr__now_ns();
            if (t0 == 0)
                t0 = now;
            else if (now - t0 > TURN_NS)
                break;
        }
        mbox_node *node = mbox_pop(a, &released);
        tr__msg_dispose_released(ctx, released);
        if (node == NULL)
            break;
        tr_msg *m = (tr_msg *)node;
        if (a->held)
            m->flags |= MF_QHELD;
        if (tr__overflowed(a, m)) {
            tr__uncount(a, m);
            ctr_add(&ctx->ctr.dropped_overflow, 1);
            tr__dead_letter(ctx, a, m);
            continue;
        }
        tr__uncount(a, m);
        m = tr__process(ctx, a, m);
        wd_tick(&w->wd);
        if (ctx->handoff) {
            ctx->actor = NULL;
            wd_leave(&w->wd);
            return;
        }
        if (m != NULL) {
            ctx->cur_req = (m->flags & MF_REQUEST) ? m : NULL;
            int rc = a->beh->handle(ctx, a->state, m);
            if (rc != 0 && !ctx->exiting) {
                ctx->exiting = true;
                ctx->exit_reason = tr_reason_make(TR_EXIT_ERROR, rc, NULL);
            }
            if (ctx->cur_req != NULL && ctx->exiting) /* the caller must not wait */
                tr_reply_error(ctx, ctx->cur_req, TR_EEXITED);
            ctx->cur_req = NULL;
            tr__msg_release(ctx, m);
        }
        tr__send_flush(ctx);
        if (ctx->exiting)
            tr__finish_exit(ctx);
    }
    ctx->actor = NULL;
    wd_leave(&w->wd);
    bool idle = mbox_mark_idle(a, &released);
    tr__msg_dispose_released(ctx, released);
    if (idle)
        return;
    /* A consumer that still has a backlog runs again next, ahead of the
     * producers feeding it (the run-next streak limit still lets the local
     * queue in); a producer goes to the back. */
    if (!producer && w->run_next == NULL)
        w->run_next = a;
    else
        push_local(w, a);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct sched *s = w->s;
    tr__set_runtime_thread(s->rt);
    uint64_t spin_ns = s->rt->spin_ns;
    for (;;) {
        tr_actor *a = find_work(w);
        /* At most half the workers (at least one) spin while idle: the
         * rest of the cores stay free for the threads that bring work in
         * (node links, thread actors), which a spinning pool would hold
         * off for the whole spin. */
        if (a == NULL &&
            atomic_fetch_add_explicit(&s->nspinning, 1, memory_order_relaxed) < (s->n + 1) / 2) {
            uint64_t until = tr__now_ns() + spin_ns;
            do {
                for (int i = 0; i < 64; i++)
                    cpu_relax();
                a = find_work(w);
            } while (a == NULL && tr__now_ns() < until);
            atomic_fetch_sub_explicit(&s->nspinning, 1, memory_order_relaxed);
        } else if (a == NULL) {
            atomic_fetch_sub_explicit(&s->nspinning, 1, memory_order_relaxed);
            a = find_work(w);
        }
        if (a == NULL) {
            if (atomic_load_explicit(&s->exit, memory_order_acquire))
                break;
            worker_park(s);
            continue;
        }
        run_actor(w, a);
    }
    return NULL;
}

/* ---- life cycle ---------------------------------------------------------- */

tr_err tr__sched_start(tr_runtime *rt, uint32_t workers)
{
    struct sched *s = calloc(1, sizeof *s);
    if (s == NULL)
        return TR_ENOMEM;
    s->w = aligned_alloc(TR_CACHELINE, sizeof(struct worker) * workers);
    if (s->w == NULL) {
        free(s);
        return TR_ENOMEM;
    }
    memset(s->w, 0, sizeof(struct worker) * workers);
    s->rt = rt;
    s->n = workers;
    s->nworkers_total = workers;
    pthread_mutex_init(&s->gq_lock, NULL);
    pthread_mutex_init(&s->park_lock, NULL);
    pthread_cond_init(&s->park_cv, NULL);
    rt->sched = s;
    for (uint32_t i = 0; i < workers; i++) {
        struct worker *w = &s->w[i];
        w->s = s;
        w->index = i;
        w->rng = 0x9E3779B97F4A7C15ull * (i + 1);
        w->ctx.rt = rt;
        w->ctx.type = CTX_WORKER;
        w->ctx.worker = w;
    }
    for (uint32_t i = 0; i < workers; i++) {
        if (pthread_create(&s->w[i].thread, NULL, worker_main, &s->w[i]) != 0) {
            atomic_store(&s->exit, true);
            pthread_mutex_lock(&s->park_lock);
            pthread_cond_broadcast(&s->park_cv);
            pthread_mutex_unlock(&s->park_lock);
            for (uint32_t j = 0; j < i; j++)
                pthread_join(s->w[j].thread, NULL);
            s->n = 0;
            return TR_ESYS;
        }
    }
    return TR_OK;
}

void tr__sched_stop(tr_runtime *rt)
{
    struct sched *s = rt->sched;
    if (s == NULL || s->n == 0)
        return;
    atomic_store_explicit(&s->exit, true, memory_order_release);
    pthread_mutex_lock(&s->park_lock);
    pthread_cond_broadcast(&s->park_cv);
    pthread_mutex_unlock(&s->park_lock);
    for (uint32_t i = 0; i < s->n; i++)
        pthread_join(s->w[i].thread, NULL);
    s->n = 0;
}

void tr__sched_counters(tr_runtime *rt, ctr_set *sum)
{
    struct sched *s = rt->sched;
    if (s == NULL)
        return;
    uint32_t total = tr__sched_workers(rt);
    for (uint32_t i = 0; i < total; i++)
        tr__counters_fold(sum, &s->w[i].ctx.ctr);
}

void tr__sched_probes(tr_runtime *rt, void (*fn)(void *arg, struct wd_probe *p), void *arg)
{
    struct sched *s = rt->sched;
    for (uint32_t i = 0; s != NULL && i < s->nworkers_total; i++)
        fn(arg, &s->w[i].wd);
}

uint32_t tr__sched_workers(const tr_runtime *rt)
{
    return rt->sched != NULL ? rt->sched->nworkers_total : 0;
}

void tr__sched_free(tr_runtime *rt)
{
    struct sched *s = rt->sched;
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < s->nworkers_total; i++)
        tr__msg_cache_drain(rt, &s->w[i].ctx.cache);
    pthread_mutex_destroy(&s->gq_lock);
    pthread_mutex_destroy(&s->park_lock);
    pthread_cond_destroy(&s->park_cv);
    free(s->w);
    free(s);
    rt->sched = NULL;
}
