/*
 * sup_engine.c — a supervisor's restart engine: what happens when a child
 * exits, which children a strategy restarts, backoff and intensity, and
 * stopping children one at a time in reverse start order.
 *
 * The engine is a set of per-child marks moved on by tr__sup_step:
 *  - a child to be stopped carries `after` (what to do once it is gone);
 *    the step stops the last such child in start order, one at a time
 *    (all at once for a dynamic supervisor), and waits for its EXIT; a
 *    kill timer sends TR_EXIT_KILLED when its shutdown time is up;
 *  - a child to be started is RESTARTING; once no stop is under way the
 *    step starts the ready ones in start order (for one_for_all and
 *    rest_for_one a child still backing off holds back those after it).
 * A failure merges into whatever is under way: more children get marked,
 * and the order rules still hold. The supervisor links to its children
 * and traps exits, so each incarnation ends with exactly one EXIT.
 *
 * This file must not decode requests or reply to them (sup.c does).
 */
#include "sup_actor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t tr__sup_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- records ------------------------------------------------------------- */

sup_child *tr__sup_find_ref(sup_state *s, tr_ref ref, uint32_t *idx)
{
    if (tr_ref_is_nil(ref))
        return NULL;
    for (uint32_t i = 0; i < s->nkids; i++) {
        if (tr_ref_eq(s->kids[i]->ref, ref)) {
            if (idx != NULL)
                *idx = i;
            return s->kids[i];
        }
    }
    return NULL;
}

sup_child *tr__sup_find_id(sup_state *s, const char *id, uint32_t *idx)
{
    for (uint32_t i = 0; i < s->nkids; i++) {
        if (strcmp(s->kids[i]->spec.id, id) == 0) {
            if (idx != NULL)
                *idx = i;
            return s->kids[i];
        }
    }
    return NULL;
}

static sup_child *find_uid(sup_state *s, uint64_t uid)
{
    for (uint32_t i = 0; i < s->nkids; i++)
        if (s->kids[i]->uid == uid)
            return s->kids[i];
    return NULL;
}

tr_err tr__sup_add(sup_state *s, sup_childspec *spec, bool dynamic, sup_child **out)
{
    if (s->nkids == s->capkids) {
        uint32_t ncap = s->capkids != 0 ? s->capkids * 2 : 8;
        sup_child **k = realloc(s->kids, ncap * sizeof *k);
        if (k == NULL)
            return TR_ENOMEM;
        s->kids = k;
        s->capkids = ncap;
    }
    sup_child *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TR_ENOMEM;
    c->spec = *spec;
    if (spec->spawn.name != NULL)
        c->spec.spawn.name = c->spec.name_buf;
    memset(spec, 0, sizeof *spec); /* the record owns the args now */
    c->uid = ++s->next_uid;
    c->dynamic = dynamic;
    c->state = TR_SUP_CHILD_STOPPED;
    c->ref = TR_REF_NIL;
    s->kids[s->nkids++] = c;
    *out = c;
    return TR_OK;
}

void tr__sup_cancel_timer(tr_ctx *ctx, sup_child *c)
{
    if (c->timer_set)
        (void)tr_timer_cancel(ctx, c->timer); /* TR_ENOTFOUND: already fired, ignored */
    c->timer_set = false;
}

static void cancel_kill(tr_ctx *ctx, sup_child *c)
{
    if (c->kill_set)
        (void)tr_timer_cancel(ctx, c->kill_timer);
    c->kill_set = false;
}

void tr__sup_child_free(tr_ctx *ctx, sup_child *c)
{
    tr__sup_cancel_timer(ctx, c);
    cancel_kill(ctx, c);
    if (c->waiter_set)
        (void)tr_reply_to_error(ctx, &c->waiter, TR_ECANCELED);
    tr__sup_childspec_fini(&c->spec);
    free(c);
}

void tr__sup_remove(tr_ctx *ctx, sup_state *s, uint32_t idx)
{
    sup_child *c = s->kids[idx];
    memmove(&s->kids[idx], &s->kids[idx + 1], (s->nkids - idx - 1) * sizeof *s->kids);
    s->nkids--;
    tr__sup_child_free(ctx, c);
}

/* ---- events --------------------------------------------------------------- */

void tr__sup_emit(tr_ctx *ctx, sup_state *s, tr_sup_event_kind kind, const char *id, tr_ref child,
                  const tr_reason *why, uint32_t restarts, uint32_t delay_ms)
{
    if (tr_ref_is_nil(s->events))
        return;
    tr_msg *m;
    if (tr_msg_new(&m, ctx, TR_SUP_TAG_EVENT) != TR_OK)
        return;
    tr_err err;
    if ((err = tr_pack_array(m, 6)) == TR_OK && (err = tr_pack_uint(m, kind)) == TR_OK &&
        (err = tr_pack_str(m, id)) == TR_OK)
        err = tr_ref_is_nil(child) ? tr_pack_nil(m) : tr_pack_ref(m, child);
    if (err == TR_OK)
        err = why != NULL ? tr__sup_pack_reason(m, why) : tr_pack_nil(m);
    if (err == TR_OK && (err = tr_pack_uint(m, restarts)) == TR_OK)
        err = tr_pack_uint(m, delay_ms);
    /* An observer that is gone or full costs the supervisor nothing. */
    if (err != TR_OK || tr_send(ctx, s->events, m) != TR_OK)
        tr_msg_free(m);
}

/* ---- starting ------------------------------------------------------------- */

static tr_err spawn_child(tr_ctx *ctx, sup_child *c, tr_ref *out)
{
    const sup_childspec *cs = &c->spec;
    tr_err err;
    if (cs->start != NULL) {
        tr_ref r = TR_REF_NIL;
        err = cs->start(&r, ctx, cs->start_arg);
        if (err != TR_OK)
            return err;
        if (tr_ref_is_nil(r))
            return TR_EINVAL;
        /* A dead r answers with an EXIT (noproc), handled as its exit. */
        if ((err = tr_link(ctx, r)) != TR_OK) {
            tr_reason kill = tr_reason_make(TR_EXIT_KILLED, 0, "supervisor could not link");
            (void)tr_exit(ctx, r, &kill);
            return err;
        }
        *out = r;
        return TR_OK;
    }
    tr_msg *args = NULL;
    if (cs->args_len != 0) {
        if ((err = tr_msg_new(&args, ctx, SUP_TAG_ARGS)) != TR_OK)
            return err;
        if ((err = tr_msg_set_payload(args, cs->args, cs->args_len)) != TR_OK) {
            tr_msg_free(args);
            return err;
        }
    }
    tr_spawn_opts o = cs->spawn;
    o.link = true;
    if (cs->is_sup)
        o.trap_stop = true;
    err = tr_spawn(out, ctx, cs->is_sup ? &tr__sup_behaviour : cs->behaviour, args, &o);
    if (err != TR_OK)
        tr_msg_free(args);
    return err;
}

tr_err tr__sup_start(tr_ctx *ctx, sup_state *s, sup_child *c)
{
    tr_ref r;
    tr_err err = spawn_child(ctx, c, &r);
    if (err != TR_OK)
        return err;
    if (c->ever_started && c->restarts < UINT32_MAX)
        c->restarts++;
    c->ever_started = true;
    c->state = TR_SUP_CHILD_RUNNING;
    c->ref = r;
    c->ready = false;
    c->counts = false;
    c->delay_ms = 0;
    c->started_ns = tr__sup_now_ns();
    tr__sup_emit(ctx, s, TR_SUP_EV_STARTED, c->spec.id, r, NULL, c->restarts, 0);
    return TR_OK;
}

/* ---- backoff and intensity ------------------------------------------------ */

/* A uniform double in [0, 1) from the supervisor's xorshift64* state. */
static double rng_unit(sup_state *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

/* The delay before c's next restart; counts one more restart in a row. */
static uint32_t backoff_delay(sup_state *s, sup_child *c)
{
    const tr_sup_backoff *bo = &c->spec.backoff;
    if (bo->min_ms == 0)
        return 0;
    double d = (double)bo->min_ms * pow(bo->factor, (double)c->fails);
    if (!(d <= (double)bo->max_ms)) /* also an overflow to infinity */
        d = bo->max_ms;
    if (c->fails < UINT32_MAX)
        c->fails++;
    d -= d * bo->jitter * rng_unit(s);
    uint32_t ms = (uint32_t)d;
    return ms != 0 ? ms : 1;
}

static void arm_timer(tr_ctx *ctx, sup_state *s, sup_child *c, uint32_t delay_ms)
{
    tr_msg *m;
    c->timer_set = false;
    if (tr_msg_new(&m, ctx, SUP_TAG_BACKOFF) == TR_OK) {
        if (tr_pack_array(m, 2) == TR_OK && tr_pack_uint(m, s->secret) == TR_OK &&
            tr_pack_uint(m, c->uid) == TR_OK &&
            tr_send_after(ctx, tr_self(ctx), m, delay_ms, &c->timer) == TR_OK) {
            c->timer_set = true;
            return;
        }
        tr_msg_free(m);
    }
    /* No timer (out of memory, or the runtime is stopping): go ahead now;
     * the intensity still bounds what follows. */
    c->ready = true;
}

/* Marks c to be started again, after its backoff when it has one. */
static void plan_restart(tr_ctx *ctx, sup_state *s, sup_child *c, bool counts)
{
    c->state = TR_SUP_CHILD_RESTARTING;
    c->counts = counts;
    c->ready = false;
    c->delay_ms = 0;
    uint64_t up_ns = tr__sup_now_ns() - c->started_ns;
    uint32_t reset_ms =
        c->spec.backoff.reset_ms != 0 ? c->spec.backoff.reset_ms : c->spec.backoff.max_ms;
    if (c->ever_started && up_ns >= (uint64_t)reset_ms * 1000000u)
        c->fails = 0; /* it stayed up long enough: start the backoff over */
    uint32_t delay = backoff_delay(s, c);
    if (delay == 0) {
        c->ready = true;
        return;
    }
    c->delay_ms = delay;
    tr__sup_emit(ctx, s, TR_SUP_EV_DELAYED, c->spec.id, TR_REF_NIL, NULL, c->restarts, delay);
    arm_timer(ctx, s, c, delay);
}

/* Records one restart now; true when that makes more than intensity
 * restarts within the period. The history is a ring of the restart times
 * still inside the period, oldest at hist_head: it never holds more than
 * intensity + 1 of them, and pruning is O(1) per restart. */
static bool intensity_exceeded(sup_state *s)
{
    uint64_t now = tr__sup_now_ns();
    uint64_t window = (uint64_t)s->period_ms * 1000000u;
    while (s->nhist != 0 && now - s->hist[s->hist_head] >= window) {
        s->hist_head = (s->hist_head + 1) % s->caphist;
        s->nhist--;
    }
    if (s->nhist == s->caphist) {
        uint32_t ncap = s->caphist != 0 ? s->caphist * 2 : 8;
        uint64_t *h = ncap > s->caphist ? malloc((size_t)ncap * sizeof *h) : NULL;
        if (h == NULL)
            return true; /* cannot count: the safe answer is to give up */
        for (uint32_t i = 0; i < s->nhist; i++)
            h[i] = s->hist[(s->hist_head + i) % s->caphist];
        free(s->hist);
        s->hist = h;
        s->hist_head = 0;
        s->caphist = ncap;
    }
    s->hist[(s->hist_head + s->nhist) % s->caphist] = now;
    s->nhist++;
    return s->nhist > s->intensity;
}

/* Takes back the restart intensity_exceeded just recorded. */
static void intensity_forget_last(sup_state *s)
{
    if (s->nhist != 0)
        s->nhist--;
}

static void give_up(tr_ctx *ctx, sup_state *s)
{
    tr_reason why =
        tr_reason_make(TR_EXIT_ERROR, TR_SUP_EXIT_MAX_RESTARTS, "reached max restart intensity");
    tr__sup_emit(ctx, s, TR_SUP_EV_GAVE_UP, "", TR_REF_NIL, &why, 0, 0);
    tr__sup_shutdown(ctx, s, &why);
}

/* ---- exits ----------------------------------------------------------------- */

/* What a group restart does with a running sibling. */
static void mark_sibling(sup_child *k)
{
    if (k->state != TR_SUP_CHILD_RUNNING || k->after != THEN_NONE)
        return; /* not running, or already going (a terminate keeps its plan) */
    k->after = k->spec.restart == TR_SUP_TEMPORARY ? THEN_REMOVE : THEN_RESTART;
}

/* Child idx exited on its own: restart it (and its group), or not. */
static void child_failed(tr_ctx *ctx, sup_state *s, uint32_t idx, const tr_reason *why)
{
    sup_child *c = s->kids[idx];
    if (c->spec.restart == TR_SUP_TEMPORARY ||
        (c->spec.restart == TR_SUP_TRANSIENT && tr_reason_is_normal(why))) {
        if (c->spec.restart == TR_SUP_TEMPORARY || c->dynamic)
            tr__sup_remove(ctx, s, idx);
        else
            c->state = TR_SUP_CHILD_STOPPED;
        return;
    }
    plan_restart(ctx, s, c, true);
    if (s->strategy == TR_SUP_ONE_FOR_ALL) {
        for (uint32_t j = 0; j < s->nkids; j++)
            mark_sibling(s->kids[j]);
    } else if (s->strategy == TR_SUP_REST_FOR_ONE) {
        for (uint32_t j = idx + 1; j < s->nkids; j++)
            mark_sibling(s->kids[j]);
    }
}

/* The stop asked for c (at idx) is over: carry out its plan. */
static void stop_finished(tr_ctx *ctx, sup_state *s, uint32_t idx)
{
    sup_child *c = s->kids[idx];
    sup_then then = c->after;
    c->after = THEN_NONE;
    if (c->waiter_set) {
        c->waiter_set = false;
        tr_msg *done;
        if (tr_msg_new(&done, ctx, SUP_TAG_DONE) == TR_OK)
            (void)tr_reply_to_send(ctx, &c->waiter, done); /* consumed in every case */
    }
    switch (then) {
    case THEN_RESTART:
        c->state = TR_SUP_CHILD_RESTARTING;
        c->ready = true; /* siblings restart without a backoff of their own */
        c->counts = false;
        c->delay_ms = 0;
        break;
    case THEN_REMOVE:
        tr__sup_remove(ctx, s, idx);
        break;
    default:
        c->state = TR_SUP_CHILD_STOPPED;
        break;
    }
}

void tr__sup_exit_signal(tr_ctx *ctx, sup_state *s, tr_ref from, const tr_reason *why)
{
    uint32_t idx;
    sup_child *c = tr__sup_find_ref(s, from, &idx);
    if (c == NULL) {
        /* Not a child: the parent (or someone linked, or tr_exit) wants
         * the tree gone. A NORMAL exit would not stop a non-trapping
         * actor either. */
        if (why->kind != TR_EXIT_NORMAL)
            tr__sup_shutdown(ctx, s, why);
        tr__sup_step(ctx, s);
        return;
    }
    c->ref = TR_REF_NIL;
    c->exited = true;
    c->last_exit = *why;
    if (c->after != THEN_NONE) {
        bool asked = c->stopping;
        if (c->stopping) {
            c->stopping = false;
            s->nstopping--;
            cancel_kill(ctx, c);
        }
        tr__sup_emit(ctx, s, asked ? TR_SUP_EV_STOPPED : TR_SUP_EV_EXITED, c->spec.id, from, why,
                     c->restarts, 0);
        stop_finished(ctx, s, idx);
    } else {
        tr__sup_emit(ctx, s, TR_SUP_EV_EXITED, c->spec.id, from, why, c->restarts, 0);
        if (s->exiting)
            c->state = TR_SUP_CHILD_STOPPED;
        else
            child_failed(ctx, s, idx, why);
    }
    tr__sup_step(ctx, s);
}

void tr__sup_shutdown(tr_ctx *ctx, sup_state *s, const tr_reason *why)
{
    if (!s->exiting) {
        s->exiting = true;
        s->exit_reason = *why;
    }
    for (uint32_t i = 0; i < s->nkids; i++) {
        sup_child *c = s->kids[i];
        if (c->state == TR_SUP_CHILD_RUNNING) {
            if (c->after != THEN_REMOVE)
                c->after = THEN_STOP;
        } else if (c->state == TR_SUP_CHILD_RESTARTING) {
            tr__sup_cancel_timer(ctx, c);
            c->state = TR_SUP_CHILD_STOPPED;
        }
    }
}

/* ---- timers --------------------------------------------------------------- */

void tr__sup_backoff_over(tr_ctx *ctx, sup_state *s, uint64_t uid)
{
    sup_child *c = find_uid(s, uid);
    if (c == NULL || !c->timer_set || c->state != TR_SUP_CHILD_RESTARTING)
        return; /* cancelled meanwhile */
    c->timer_set = false;
    c->ready = true;
    tr__sup_step(ctx, s);
}

void tr__sup_kill_due(tr_ctx *ctx, sup_state *s, uint64_t uid, uint64_t token)
{
    sup_child *c = find_uid(s, uid);
    if (c == NULL || !c->stopping || c->stop_token != token)
        return; /* it exited in time */
    c->kill_set = false;
    tr_reason kill = tr_reason_make(TR_EXIT_KILLED, 0, "shutdown timeout");
    (void)tr_exit(ctx, c->ref, &kill);
}

/* ---- stepping ------------------------------------------------------------- */

/* Sends c the stop signal and arms its kill timer. */
static void begin_stop(tr_ctx *ctx, sup_state *s, sup_child *c)
{
    c->stopping = true;
    c->stop_token = ++s->next_token;
    s->nstopping++;
    uint32_t t = c->spec.shutdown_ms;
    tr_reason why = t == TR_SUP_SHUTDOWN_BRUTAL
                        ? tr_reason_make(TR_EXIT_KILLED, 0, "brutal kill")
                        : tr_reason_make(TR_EXIT_SHUTDOWN, 0, "stopped by its supervisor");
    /* TR_ENOACTOR: it is gone already and its EXIT is on the way. */
    (void)tr_exit(ctx, c->ref, &why);
    if (t == TR_SUP_SHUTDOWN_BRUTAL || t == TR_SUP_SHUTDOWN_INFINITY)
        return;
    tr_msg *m;
    if (tr_msg_new(&m, ctx, SUP_TAG_KILL) == TR_OK) {
        if (tr_pack_array(m, 3) == TR_OK && tr_pack_uint(m, s->secret) == TR_OK &&
            tr_pack_uint(m, c->uid) == TR_OK && tr_pack_uint(m, c->stop_token) == TR_OK &&
            tr_send_after(ctx, tr_self(ctx), m, t, &c->kill_timer) == TR_OK) {
            c->kill_set = true;
            return;
        }
        tr_msg_free(m);
    }
    /* No timer to wait with: do not wait. */
    tr_reason kill = tr_reason_make(TR_EXIT_KILLED, 0, "shutdown timer unavailable");
    (void)tr_exit(ctx, c->ref, &kill);
}

bool tr__sup_busy(const sup_state *s)
{
    if (s->nstopping != 0)
        return true;
    for (uint32_t i = 0; i < s->nkids; i++)
        if (s->kids[i]->after != THEN_NONE)
            return true;
    return false;
}

/* Starts the next stops; true while a stop is under way. */
static bool stop_next(tr_ctx *ctx, sup_state *s)
{
    bool together = s->strategy == TR_SUP_SIMPLE_ONE_FOR_ONE;
    if (s->nstopping != 0 && !together)
        return true;
    for (uint32_t i = s->nkids; i-- > 0;) {
        sup_child *c = s->kids[i];
        if (c->after == THEN_NONE || c->stopping)
            continue;
        if (c->state != TR_SUP_CHILD_RUNNING) {
            stop_finished(ctx, s, i); /* nothing left to stop */
            continue;
        }
        begin_stop(ctx, s, c);
        if (!together)
            return true;
    }
    return s->nstopping != 0;
}

/* Starts the children that wait for a restart, in start order. */
static void restart_ready(tr_ctx *ctx, sup_state *s)
{
    bool ordered = s->strategy == TR_SUP_ONE_FOR_ALL || s->strategy == TR_SUP_REST_FOR_ONE;
    for (uint32_t i = 0; i < s->nkids && !s->exiting; i++) {
        sup_child *c = s->kids[i];
        if (c->state != TR_SUP_CHILD_RESTARTING)
            continue;
        if (s->rt_stopping) {
            tr__sup_cancel_timer(ctx, c);
            c->state = TR_SUP_CHILD_STOPPED;
            continue;
        }
        if (!c->ready) {
            if (ordered)
                return; /* those after it start after it */
            continue;
        }
        bool counted = c->counts;
        if (counted && intensity_exceeded(s)) {
            give_up(ctx, s);
            return;
        }
        tr_err err = tr__sup_start(ctx, s, c);
        if (err == TR_OK)
            continue;
        if (err == TR_ESTOPPED) {
            /* The runtime is stopping: it stops us next; no more restarts. */
            if (counted)
                intensity_forget_last(s);
            s->rt_stopping = true;
            c->state = TR_SUP_CHILD_STOPPED;
            continue;
        }
        tr_reason why = tr_reason_make(TR_EXIT_ERROR, (int32_t)err, tr_err_name(err));
        tr__sup_emit(ctx, s, TR_SUP_EV_START_FAILED, c->spec.id, TR_REF_NIL, &why, c->restarts, 0);
        /* Try again (after the backoff, if any); each try counts. */
        plan_restart(ctx, s, c, true);
        if (c->ready) {
            c->ready = false;
            arm_timer(ctx, s, c, 0); /* through the mailbox, not a tight loop */
        }
        if (ordered)
            return;
    }
}

void tr__sup_step(tr_ctx *ctx, sup_state *s)
{
    for (;;) {
        if (stop_next(ctx, s))
            return;
        if (s->exiting) {
            if (!s->exit_sent) {
                s->exit_sent = true;
                tr_stop_self(ctx, &s->exit_reason);
            }
            return;
        }
        restart_ready(ctx, s);
        if (s->exiting || tr__sup_busy(s))
            continue;
        if (s->dq_head == NULL)
            return;
        tr__sup_run_deferred(ctx, s);
    }
}
