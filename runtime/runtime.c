/*
 * runtime.c — a runtime's life: start, ordered stop, free, and counters.
 *
 * Everything a runtime owns hangs off its handle; several runtimes can live
 * in one process. Stop first hands each trap_stop actor (a supervisor) the
 * stop of its subtree, shallowest first, then goes by spawn depth, deepest
 * first, so an actor's children have terminated before it is told to stop. This file must not
 * run actors itself.
 */
#include "mailbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

static uint64_t node_id_new(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
        id = tr__now_ns() ^ ((uint64_t)getpid() << 32);
    return id != 0 ? id : 1;
}

tr_err tr_runtime_start(tr_runtime **out, const tr_runtime_opts *opts)
{
    return tr__runtime_start_as(out, opts, 0);
}

tr_err tr__runtime_start_as(tr_runtime **out, const tr_runtime_opts *opts, uint64_t node)
{
    static const tr_runtime_opts defaults = TR_RUNTIME_OPTS_INIT;
    const tr_runtime_opts *o = opts != NULL ? opts : &defaults;
    if (out == NULL || o->workers > 1024 || (o->proc_warm > 64 && o->proc_warm != TR_PROC_WARM_OFF))
        return TR_EINVAL;
    if (o->node_name != NULL && strlen(o->node_name) >= sizeof((tr_runtime *)0)->name)
        return TR_ETOOBIG;
    /* The fork server, while this may still be the process's only thread. */
    tr__procs_boot();
    tr_runtime *rt = calloc(1, sizeof *rt);
    if (rt == NULL)
        return TR_ENOMEM;
    rt->node = node != 0 ? node : node_id_new();
    snprintf(rt->name, sizeof rt->name, "%s", o->node_name != NULL ? o->node_name : "troupe");
    rt->batch = o->batch != 0 ? o->batch : 4096;
    rt->spin_ns = (o->spin_us != 0 ? o->spin_us : 10) * 1000u;
    rt->max_frame = o->max_frame != 0 ? o->max_frame : 4u << 20;
    rt->proc_warm = o->proc_warm == TR_PROC_WARM_OFF ? 0 : o->proc_warm != 0 ? o->proc_warm : 1;
    atomic_store(&rt->next_corr, 1);
    pthread_mutex_init(&rt->table_lock, NULL);
    pthread_mutex_init(&rt->stop_lock, NULL);
    pthread_cond_init(&rt->stop_cv, NULL);
    pthread_mutex_init(&rt->ctx_lock, NULL);
    pthread_mutex_init(&rt->pool_lock, NULL);
    rt->stop_ctx.rt = rt;
    rt->stop_ctx.type = CTX_TIMER;

    uint32_t workers = o->workers;
    if (workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        workers = n > 0 ? (uint32_t)n : 1;
    }
    tr_err err = tr__links_init(rt, o);
    if (err == TR_OK)
        err = tr__names_init(rt);
    if (err == TR_OK)
        err = tr__timers_start(rt);
    if (err == TR_OK)
        err = tr__sched_start(rt, workers);
    if (err == TR_OK)
        err = tr__watchdog_start(rt, o->watchdog_ms);
    if (err != TR_OK) {
        atomic_store(&rt->stopping, true);
        atomic_store(&rt->stopped, true);
        rt->stop_done = true;
        tr_runtime_free(rt);
        return err;
    }
    *out = rt;
    return TR_OK;
}

/* Sends STOP to every live actor at depth d (all depths when d < 0). */
static void stop_depth(tr_runtime *rt, int d, tr_stop_mode mode)
{
    uint32_t n = atomic_load_explicit(&rt->nslots, memory_order_acquire);
    for (uint32_t id = 0; id < n; id++) {
        tr_actor *a = tr__actor_lookup(rt, id);
        uint32_t inc = atomic_load_explicit(&a->incarnation, memory_order_acquire);
        if ((inc & 1) == 0 || atomic_load_explicit(&a->depth, memory_order_relaxed) != d)
            continue;
        if (mode == TR_STOP_DISCARD)
            atomic_store_explicit(&a->discard, 1, memory_order_relaxed);
        tr_ref ref = {rt->node, id, inc};
        tr__signal(&rt->stop_ctx, ref, TR_REF_NIL, MK_STOP, MF_SYSTEM, 0, NULL);
    }
}

/* Waits until *live (a per-depth count) is zero. */
static void wait_zero(tr_runtime *rt, _Atomic uint64_t *live)
{
    pthread_mutex_lock(&rt->stop_lock);
    /* acquire: pairs with slot_count_exit's acq_rel decrement. */
    while (atomic_load_explicit(live, memory_order_acquire) != 0)
        pthread_cond_wait(&rt->stop_cv, &rt->stop_lock);
    pthread_mutex_unlock(&rt->stop_lock);
}

/* Sends a shutdown exit signal to every live trap_stop actor at depth d. */
static void shutdown_trap_stop(tr_runtime *rt, int d)
{
    tr_reason why = tr_reason_make(TR_EXIT_SHUTDOWN, 0, NULL);
    uint32_t n = atomic_load_explicit(&rt->nslots, memory_order_acquire);
    for (uint32_t id = 0; id < n; id++) {
        tr_actor *a = tr__actor_lookup(rt, id);
        uint32_t inc = atomic_load_explicit(&a->incarnation, memory_order_acquire);
        if ((inc & 1) == 0 || !atomic_load_explicit(&a->trap_stop, memory_order_relaxed) ||
            atomic_load_explicit(&a->depth, memory_order_relaxed) != d)
            continue;
        tr_ref ref = {rt->node, id, inc};
        tr__signal(&rt->stop_ctx, ref, TR_REF_NIL, MK_EXIT, 0, 0, &why);
    }
}

tr_err tr_runtime_stop(tr_runtime *rt, tr_stop_mode mode)
{
    if (rt == NULL || (mode != TR_STOP_DRAIN && mode != TR_STOP_DISCARD))
        return TR_EINVAL;
    if (tr__on_runtime_thread(rt))
        return TR_EWOULDBLOCK;
    bool already = atomic_exchange_explicit(&rt->stopping, true, memory_order_seq_cst);
    if (already) {
        pthread_mutex_lock(&rt->stop_lock);
        while (!rt->stop_done)
            pthread_cond_wait(&rt->stop_cv, &rt->stop_lock);
        pthread_mutex_unlock(&rt->stop_lock);
        return TR_OK;
    }
    /* Spawns that got a slot before `stopping` was set finish first, so
     * every actor the waves look for has its INIT queued. */
    pthread_mutex_lock(&rt->stop_lock);
    while (atomic_load_explicit(&rt->spawning, memory_order_acquire) != 0)
        pthread_cond_wait(&rt->stop_cv, &rt->stop_lock);
    pthread_mutex_unlock(&rt->stop_lock);
    int maxd = (int)atomic_load_explicit(&rt->max_depth, memory_order_relaxed);
    /* Actors that own the stop of their subtree (supervisors) go first,
     * shallowest first, each told by an exit signal and waited for: they
     * stop their children in their own order and time. */
    for (int d = 1; d <= maxd; d++) {
        if (atomic_load_explicit(&rt->live_trap_stop[d], memory_order_acquire) == 0)
            continue;
        shutdown_trap_stop(rt, d);
        wait_zero(rt, &rt->live_trap_stop[d]);
    }
    for (int d = maxd; d >= 1; d--) {
        stop_depth(rt, d, mode);
        wait_zero(rt, &rt->live_at_depth[d]);
    }
    /* Attached threads are the user's: tell them, do not wait for them. */
    stop_depth(rt, 0, mode);
    tr__procs_stop(rt);
    tr__watchdog_stop(rt);
    tr__timers_stop(rt);
    tr__links_close(rt);
    atomic_store_explicit(&rt->stopped, true, memory_order_release);
    tr__sched_stop(rt);
    tr__threads_join_all(rt);
    pthread_mutex_lock(&rt->stop_lock);
    rt->stop_done = true;
    pthread_cond_broadcast(&rt->stop_cv);
    pthread_mutex_unlock(&rt->stop_lock);
    return TR_OK;
}

/* Frees what is still queued in a slot (after every thread is gone). */
static void slot_free_leftovers(tr_actor *a)
{
    mbox_node *n = a->tail;
    while (n != NULL) {
        mbox_node *next = atomic_load_explicit(&n->next, memory_order_relaxed);
        if (n != &a->stub) {
            tr_msg *m = (tr_msg *)n;
            m->flags &= (uint8_t) ~(MF_QHELD | MF_QDEAD); /* a held tail goes too */
            tr__msg_release(NULL, m);
        }
        n = next;
    }
    a->tail = &a->stub;
    a->held = false;
    tr__pending_fail_all(NULL, a);
    tr__ext_free(a);
    free(a->state);
    a->state = NULL;
}

void tr_runtime_free(tr_runtime *rt)
{
    if (rt == NULL)
        return;
    if (!rt->stop_done)
        tr_runtime_stop(rt, TR_STOP_DRAIN);
    tr__timers_free(rt);
    tr__watchdog_free(rt);
    tr__procs_free(rt);
    tr__links_free(rt);
    tr__remote_free(rt); /* hook (remote.c): after the link threads that report node events */
    uint32_t n = atomic_load_explicit(&rt->nslots, memory_order_relaxed);
    for (uint32_t id = 0; id < n; id++)
        slot_free_leftovers(tr__actor_lookup(rt, id));
    for (uint32_t c = 0; c < TABLE_MAX_CHUNKS; c++) {
        tr_actor *chunk = atomic_load_explicit(&rt->chunks[c], memory_order_relaxed);
        if (chunk != NULL)
            munmap(chunk, TABLE_CHUNK_BYTES);
    }
    tr__threads_free(rt);
    tr__sched_free(rt);
    tr__names_free(rt);
    tr__msg_cache_drain(rt, &rt->stop_ctx.cache);
    tr__msg_pool_free(rt);
    free(atomic_load_explicit(&rt->ports, memory_order_relaxed));
    pthread_mutex_destroy(&rt->table_lock);
    pthread_mutex_destroy(&rt->stop_lock);
    pthread_cond_destroy(&rt->stop_cv);
    pthread_mutex_destroy(&rt->ctx_lock);
    pthread_mutex_destroy(&rt->pool_lock);
    free(rt);
}

uint64_t tr_runtime_node(const tr_runtime *rt) { return rt != NULL ? rt->node : 0; }
const char *tr_runtime_name(const tr_runtime *rt) { return rt != NULL ? rt->name : ""; }
uint32_t tr_runtime_workers(const tr_runtime *rt) { return rt != NULL ? tr__sched_workers(rt) : 0; }

void tr__counters_fold(ctr_set *into, const ctr_set *from)
{
#define FOLD(f)                                                                     \
    atomic_store_explicit(&into->f,                                                 \
                          atomic_load_explicit(&into->f, memory_order_relaxed) +    \
                              atomic_load_explicit(&from->f, memory_order_relaxed), \
                          memory_order_relaxed)
    FOLD(spawned);
    FOLD(exited);
    FOLD(sent);
    FOLD(delivered);
    FOLD(dead_letters);
    FOLD(dropped_overflow);
    FOLD(rejected_full);
    FOLD(late_replies);
    FOLD(timers_fired);
    FOLD(link_refused);
    FOLD(bad_frames);
#undef FOLD
    ctr_max(&into->max_depth, atomic_load_explicit(&from->max_depth, memory_order_relaxed));
}

tr_err tr_runtime_counters(tr_counters *out, tr_runtime *rt)
{
    if (out == NULL || rt == NULL)
        return TR_EINVAL;
    ctr_set sum;
    memset(&sum, 0, sizeof sum);
    tr__sched_counters(rt, &sum);
    tr__threads_counters(rt, &sum);
    tr__timers_counters(rt, &sum);
    tr__links_counters(rt, &sum);
    tr__procs_counters(rt, &sum);
    uint64_t overruns = tr__watchdog_counters(rt, &sum);
    tr__counters_fold(&sum, &rt->stop_ctx.ctr);
    out->spawned = atomic_load(&sum.spawned);
    out->exited = atomic_load(&sum.exited);
    out->sent = atomic_load(&sum.sent);
    out->delivered = atomic_load(&sum.delivered);
    out->dead_letters = atomic_load(&sum.dead_letters);
    out->dropped_overflow = atomic_load(&sum.dropped_overflow);
    out->rejected_full = atomic_load(&sum.rejected_full);
    out->late_replies = atomic_load(&sum.late_replies);
    out->timers_fired = atomic_load(&sum.timers_fired);
    out->max_mailbox_depth = atomic_load(&sum.max_depth);
    out->live_actors = atomic_load(&rt->live);
    out->overruns = overruns;
    out->link_refused = atomic_load(&sum.link_refused);
    out->bad_frames = atomic_load(&sum.bad_frames);
    return TR_OK;
}
