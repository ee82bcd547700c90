/*
 * watchdog.c — reports handlers and thread actors that run too long.
 *
 * Workers and thread actors publish a probe (struct wd_probe): which actor
 * runs user code there, and a progress count that moves every time user
 * code hands control back to the runtime. The watchdog thread looks at
 * every probe four times per budget; a probe whose actor is set and whose
 * progress has not moved for longer than the budget is reported once per
 * stretch. Reports go to subscribers as TR_TAG_OVERRUN messages (or to
 * stderr when nobody subscribed). This file never runs actor code and
 * never touches an actor's own fields: it reads probes only.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct watchdog {
    tr_runtime *rt;
    uint64_t budget_ns;
    pthread_t thread;
    pthread_mutex_t mu; /* everything below */
    pthread_cond_t cv;
    bool stop;
    tr_ref *subs;
    uint32_t nsubs, capsubs;
    tr_ctx ctx; /* the watchdog thread's sends */
    _Atomic uint64_t overruns;
};

/* ---- reporting ----------------------------------------------------------- */

void tr__watchdog_report(tr_ctx *ctx, tr_ref who, tr_actor_kind kind, uint32_t ms, const char *name)
{
    struct watchdog *W = ctx->rt->watchdog;
    if (W == NULL)
        return;
    atomic_fetch_add_explicit(&W->overruns, 1, memory_order_relaxed);
    pthread_mutex_lock(&W->mu);
    uint32_t told = 0;
    for (uint32_t i = 0; i < W->nsubs;) {
        tr_msg *m = tr__msg_alloc(ctx);
        tr_err err = m != NULL ? TR_OK : TR_ENOMEM;
        if (err == TR_OK)
            err = tr__msg_set_tag(m, TR_TAG_OVERRUN);
        if (err == TR_OK && (err = tr_pack_array(m, 4)) == TR_OK &&
            (err = tr_pack_ref(m, who)) == TR_OK && (err = tr_pack_int(m, kind)) == TR_OK &&
            (err = tr_pack_uint(m, ms)) == TR_OK)
            err = tr_pack_str(m, name != NULL ? name : "");
        if (err != TR_OK) {
            tr__msg_release(ctx, m);
            break;
        }
        if (tr__send_system(ctx, W->subs[i], m) == TR_ENOACTOR) {
            W->subs[i] = W->subs[--W->nsubs]; /* a subscriber that is gone */
            continue;
        }
        told++;
        i++;
    }
    pthread_mutex_unlock(&W->mu);
    if (told == 0)
        fprintf(stderr,
                "troupe: %s actor %s <%u.%u> has run for %u ms without returning to the "
                "runtime\n",
                kind == TR_POOLED   ? "pooled"
                : kind == TR_THREAD ? "thread"
                                    : "process",
                name != NULL && name[0] != '\0' ? name : "(unnamed)", who.id, who.incarnation, ms);
}

tr_err tr_watchdog_subscribe(tr_ctx *ctx, bool on)
{
    if (ctx == NULL || ctx->actor == NULL)
        return TR_EINVAL;
    struct watchdog *W = ctx->rt->watchdog;
    if (W == NULL)
        return TR_ENOTSUP;
    tr_ref self = tr_self(ctx);
    tr_err err = TR_OK;
    pthread_mutex_lock(&W->mu);
    uint32_t i = 0;
    while (i < W->nsubs && !tr_ref_eq(W->subs[i], self))
        i++;
    if (!on && i < W->nsubs) {
        W->subs[i] = W->subs[--W->nsubs];
    } else if (on && i == W->nsubs) {
        if (W->nsubs == W->capsubs) {
            uint32_t cap = W->capsubs != 0 ? W->capsubs * 2 : 4;
            tr_ref *n = realloc(W->subs, cap * sizeof *n);
            if (n == NULL)
                err = TR_ENOMEM;
            else {
                W->subs = n;
                W->capsubs = cap;
            }
        }
        if (err == TR_OK)
            W->subs[W->nsubs++] = self;
    }
    pthread_mutex_unlock(&W->mu);
    return err;
}

tr_err tr_msg_overrun_info(const tr_msg *m, tr_overrun *out)
{
    if (m == NULL || out == NULL)
        return TR_EINVAL;
    if (!tr_msg_is(m, TR_TAG_OVERRUN))
        return TR_ETYPE;
    tr_cursor c;
    uint32_t n;
    int64_t kind;
    uint64_t ms;
    const char *name;
    size_t len;
    tr_cursor_init(&c, m);
    tr_err err = tr_cursor_array(&c, &n);
    if (err == TR_OK && n != 4)
        err = TR_EBADMSG;
    if (err == TR_OK)
        err = tr_cursor_ref(&c, &out->who);
    if (err == TR_OK)
        err = tr_cursor_int(&c, &kind);
    if (err == TR_OK)
        err = tr_cursor_uint(&c, &ms);
    if (err == TR_OK)
        err = tr_cursor_str(&c, &name, &len);
    if (err != TR_OK)
        return err;
    if (kind < TR_POOLED || kind > TR_PROCESS || ms > UINT32_MAX)
        return TR_ERANGE;
    out->kind = (tr_actor_kind)kind;
    out->elapsed_ms = (uint32_t)ms;
    if (len > TR_NAME_MAX)
        len = TR_NAME_MAX;
    memcpy(out->name, name, len);
    out->name[len] = '\0';
    return TR_OK;
}

/* ---- watching ------------------------------------------------------------ */

struct scan {
    struct watchdog *W;
    uint64_t now;
    tr_actor_kind kind;
};

static void probe_check(void *arg, struct wd_probe *p)
{
    struct scan *sc = arg;
    uint32_t inc = atomic_load_explicit(&p->inc, memory_order_relaxed);
    uint64_t progress = atomic_load_explicit(&p->progress, memory_order_relaxed);
    /* since == 0: never looked at; its busy time starts now, not at boot. */
    if (inc == 0 || progress != p->seen || p->since == 0) {
        p->seen = progress;
        p->since = sc->now;
        p->reported = false;
        return;
    }
    uint64_t ran = sc->now - p->since;
    if (p->reported || ran < sc->W->budget_ns)
        return;
    p->reported = true;
    tr_runtime *rt = sc->W->rt;
    tr_ref who = {rt->node, atomic_load_explicit(&p->id, memory_order_relaxed), inc};
    tr__watchdog_report(&sc->W->ctx, who, sc->kind, (uint32_t)(ran / 1000000u),
                        atomic_load_explicit(&p->name, memory_order_relaxed));
}

static void *watchdog_main(void *arg)
{
    struct watchdog *W = arg;
    tr_runtime *rt = W->rt;
    uint64_t period = W->budget_ns / 4;
    pthread_mutex_lock(&W->mu);
    while (!W->stop) {
        uint64_t at = tr__now_ns() + period;
        struct timespec ts = {(time_t)(at / 1000000000u), (long)(at % 1000000000u)};
        pthread_cond_timedwait(&W->cv, &W->mu, &ts);
        if (W->stop)
            break;
        pthread_mutex_unlock(&W->mu);
        struct scan sc = {W, tr__now_ns(), TR_POOLED};
        tr__sched_probes(rt, probe_check, &sc);
        sc.kind = TR_THREAD;
        pthread_mutex_lock(&rt->ctx_lock);
        for (struct thread_actor *t = rt->thr_all; t != NULL; t = t->all_next)
            probe_check(&sc, &t->wd);
        pthread_mutex_unlock(&rt->ctx_lock);
        pthread_mutex_lock(&W->mu);
    }
    pthread_mutex_unlock(&W->mu);
    return NULL;
}

/* ---- life cycle ---------------------------------------------------------- */

tr_err tr__watchdog_start(tr_runtime *rt, uint32_t budget_ms)
{
    if (budget_ms == TR_WATCHDOG_OFF)
        return TR_OK;
    struct watchdog *W = calloc(1, sizeof *W);
    if (W == NULL)
        return TR_ENOMEM;
    W->rt = rt;
    W->budget_ns = (uint64_t)(budget_ms != 0 ? budget_ms : 1000) * 1000000u;
    W->ctx.rt = rt;
    W->ctx.type = CTX_TIMER;
    pthread_mutex_init(&W->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&W->cv, &ca);
    pthread_condattr_destroy(&ca);
    rt->watchdog = W;
    if (pthread_create(&W->thread, NULL, watchdog_main, W) != 0) {
        rt->watchdog = NULL;
        pthread_mutex_destroy(&W->mu);
        pthread_cond_destroy(&W->cv);
        free(W);
        return TR_ESYS;
    }
    return TR_OK;
}

void tr__watchdog_stop(tr_runtime *rt)
{
    struct watchdog *W = rt->watchdog;
    if (W == NULL || W->stop)
        return;
    pthread_mutex_lock(&W->mu);
    W->stop = true;
    pthread_cond_broadcast(&W->cv);
    pthread_mutex_unlock(&W->mu);
    pthread_join(W->thread, NULL);
}

uint64_t tr__watchdog_counters(tr_runtime *rt, ctr_set *sum)
{
    struct watchdog *W = rt->watchdog;
    if (W == NULL)
        return 0;
    tr__counters_fold(sum, &W->ctx.ctr);
    return atomic_load_explicit(&W->overruns, memory_order_relaxed);
}

uint32_t tr__watchdog_budget_ms(const tr_runtime *rt)
{
    const struct watchdog *W = rt->watchdog;
    return W != NULL ? (uint32_t)(W->budget_ns / 1000000u) : TR_WATCHDOG_OFF;
}

void tr__watchdog_free(tr_runtime *rt)
{
    struct watchdog *W = rt->watchdog;
    if (W == NULL)
        return;
    tr__watchdog_stop(rt);
    tr__msg_cache_drain(rt, &W->ctx.cache);
    free(W->subs);
    pthread_mutex_destroy(&W->mu);
    pthread_cond_destroy(&W->cv);
    free(W);
    rt->watchdog = NULL;
}
