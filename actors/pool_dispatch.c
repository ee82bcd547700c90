/*
 * pool_dispatch.c — a pool's dispatcher: the bounded queue of waiting
 * jobs, the ring of idle workers, handing a job to a worker (the job, then
 * a probe right behind it), and settling what a worker held once its
 * answer and its probe are back.
 *
 * Invariants: a slot holds at most one ticket; a slot is in the idle ring
 * only while it has a live worker and no ticket (checked again when taken,
 * since a worker may go down while listed); every request the pool took
 * is answered exactly once, by the worker (relayed), by the pool with an
 * error, or by the runtime's deadline. This file must not decide about
 * stopping or the supervisor (pool.c does).
 */
#include "pool_actor.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The probe never times out in practice: a worker stuck in a job keeps
 * its slot, as in any executor. */
#define PROBE_TIMEOUT_MS UINT32_MAX

/* The runtime's deadlines are CLOCK_MONOTONIC nanoseconds (tr_reply_to). */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void count(pool_state *s, pool_outcome o)
{
    switch (o) {
    case OUT_COMPLETED:
        s->st.completed++;
        break;
    case OUT_FAILED:
        s->st.failed++;
        break;
    case OUT_TIMED_OUT:
        s->st.timed_out++;
        break;
    case OUT_REFUSED:
        s->st.refused++;
        break;
    case OUT_EXPIRED:
        s->st.expired++;
        break;
    case OUT_CANCELED:
    case OUT_NONE:
        s->st.canceled++;
        break;
    }
}

/* ---- messages --------------------------------------------------------------- */

/* A new message with tag and src's payload bytes, copied as they are:
 * the worker (or client) gets exactly what was sent. */
static tr_err msg_copy(tr_msg **out, tr_ctx *ctx, const char *tag, const tr_msg *src)
{
    tr_msg *c;
    tr_err err = tr_msg_new(&c, ctx, tag);
    if (err != TR_OK)
        return err;
    size_t len;
    const uint8_t *bytes = tr_msg_payload(src, &len);
    if (len != 0) {
        msgpack_packer pk;
        tr_msg_packer(c, &pk);
        if (pk.callback(pk.data, (const char *)bytes, len) != 0) {
            tr_msg_free(c);
            return TR_ENOMEM;
        }
    }
    *out = c;
    return TR_OK;
}

/* A client that gave up or is gone is nobody's failure. */
static void answer_error(tr_ctx *ctx, const tr_reply_to *to, tr_err status)
{
    (void)tr_reply_to_error(ctx, to, status);
}

/* Answers what a worker held with status: the job ends as o, or as timed
 * out if the client's deadline passed first (it got TR_ETIMEDOUT). */
static pool_outcome answer_held(tr_ctx *ctx, const tr_reply_to *to, tr_err status, pool_outcome o)
{
    return tr_reply_to_error(ctx, to, status) == TR_ETIMEDOUT ? OUT_TIMED_OUT : o;
}

/* A job that cannot be handed over: the client learns why. */
static void job_fail(tr_ctx *ctx, pool_state *s, pool_job *j, tr_err status, pool_outcome o)
{
    if (j->is_req)
        answer_error(ctx, &j->to, status);
    tr_msg_free(j->msg);
    j->msg = NULL;
    count(s, o);
}

/* ---- the idle ring -------------------------------------------------------- */

static void idle_push(pool_state *s, uint32_t slot)
{
    pool_slot *sl = &s->slots[slot];
    if (sl->in_idle || sl->ticket != NULL || tr_ref_is_nil(sl->ref))
        return;
    sl->in_idle = true;
    s->idle[(s->idle_head + s->idle_len) % s->nworkers] = slot;
    s->idle_len++;
}

/* Takes the longest-idle slot that still has a live worker and no job. */
static bool idle_take(pool_state *s, uint32_t *slot)
{
    while (s->idle_len > 0) {
        uint32_t i = s->idle[s->idle_head];
        s->idle_head = (s->idle_head + 1) % s->nworkers;
        s->idle_len--;
        pool_slot *sl = &s->slots[i];
        sl->in_idle = false;
        if (!tr_ref_is_nil(sl->ref) && sl->ticket == NULL) {
            *slot = i;
            return true;
        }
    }
    return false;
}

/* ---- the queue ------------------------------------------------------------ */

static pool_job *q_at(pool_state *s, uint32_t i) { return &s->q[(s->q_head + i) % s->q_cap]; }

/* Room for one more job at the back; the caller keeps the queue within
 * queue_max. (A job put back at the front reuses the place it just left.) */
static bool q_reserve(pool_state *s)
{
    if (s->q_len < s->q_cap)
        return true;
    if (s->q_cap > UINT32_MAX / 2)
        return false;
    uint32_t cap = s->q_cap != 0 ? s->q_cap * 2 : 16;
    pool_job *n = malloc((size_t)cap * sizeof *n);
    if (n == NULL)
        return false;
    for (uint32_t i = 0; i < s->q_len; i++)
        n[i] = *q_at(s, i);
    free(s->q);
    s->q = n;
    s->q_cap = cap;
    s->q_head = 0;
    return true;
}

static void q_pop(pool_state *s, pool_job *out)
{
    *out = s->q[s->q_head];
    s->q_head = (s->q_head + 1) % s->q_cap;
    s->q_len--;
}

/* Puts back a job just popped, so there is room. */
static void q_unpop(pool_state *s, const pool_job *j)
{
    s->q_head = (s->q_head + s->q_cap - 1) % s->q_cap;
    s->q[s->q_head] = *j;
    s->q_len++;
}

void tr__pool_purge_expired(pool_state *s)
{
    uint64_t now = now_ns();
    uint32_t kept = 0;
    for (uint32_t i = 0; i < s->q_len; i++) {
        pool_job *j = q_at(s, i);
        if (j->is_req && j->to.deadline <= now) {
            /* Its caller already got TR_ETIMEDOUT from its own runtime. */
            tr_msg_free(j->msg);
            s->st.expired++;
        } else {
            *q_at(s, kept++) = *j;
        }
    }
    s->q_len = kept;
}

void tr__pool_drop_queue(tr_ctx *ctx, pool_state *s, tr_err status, pool_outcome outcome)
{
    tr__pool_purge_expired(s);
    pool_job j;
    while (s->q_len > 0) {
        q_pop(s, &j);
        job_fail(ctx, s, &j, status, outcome);
    }
}

/* ---- tickets -------------------------------------------------------------- */

static void ticket_link(pool_state *s, pool_ticket *t)
{
    t->prev = NULL;
    t->next = s->tickets;
    if (s->tickets != NULL)
        s->tickets->prev = t;
    s->tickets = t;
}

static void ticket_free(pool_state *s, pool_ticket *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        s->tickets = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    free(t);
}

/*
 * Gives the slot back once the worker is known to be done with the job —
 * the probe came back and, for a request, so did the answer — or known to
 * be dead (then a request not yet answered fails now: a thread worker
 * that failed in handle never answers it). Frees the ticket once no
 * continuation points at it any more.
 */
static void ticket_settle(tr_ctx *ctx, pool_state *s, pool_ticket *t)
{
    if (!t->released && t->probe_back && (t->dead || !t->is_req || t->job_back)) {
        if (t->is_req && !t->answered) {
            t->outcome = answer_held(ctx, &t->to, TR_EEXITED, OUT_FAILED);
            t->answered = true;
        }
        if (!t->is_req)
            t->outcome = t->dead ? OUT_FAILED : OUT_COMPLETED;
        count(s, t->outcome);
        t->released = true;
        pool_slot *sl = &s->slots[t->slot];
        sl->ticket = NULL;
        if (t->dead && tr_ref_eq(sl->ref, t->worker))
            sl->ref = TR_REF_NIL; /* its replacement arrives as a STARTED event */
        idle_push(s, t->slot);
    }
    if (t->released && t->conts == 0)
        ticket_free(s, t);
}

/* The worker's answer to a request job: relayed to the client. */
static int job_back(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    pool_state *s = state;
    pool_ticket *t = udata;
    t->conts--;
    t->job_back = true;
    if (!t->answered) {
        t->answered = true;
        t->outcome = OUT_COMPLETED;
        if (status == TR_OK) {
            tr_msg *copy;
            tr_err err = msg_copy(&copy, ctx, tr_msg_tag(reply), reply);
            if (err == TR_OK)
                err = tr_reply_to_send(ctx, &t->to, copy);
            else
                err = tr_reply_to_error(ctx, &t->to, err);
            /* Our deadline is the client's rounded up to a millisecond:
             * an answer in that gap reaches us but not the client. */
            if (err == TR_ETIMEDOUT)
                t->outcome = OUT_TIMED_OUT;
        } else if (status == TR_ETIMEDOUT) {
            t->outcome = OUT_TIMED_OUT; /* the client gave up at the same moment */
        } else if (status == TR_EEXITED || status == TR_ENOACTOR) {
            /* The runtime's word that the worker went before answering. */
            t->outcome = answer_held(ctx, &t->to, TR_EEXITED, OUT_FAILED);
        } else {
            t->outcome = answer_held(ctx, &t->to, status, OUT_COMPLETED); /* its own error */
        }
    }
    ticket_settle(ctx, s, t);
    tr__pool_dispatch(ctx, s);
    return 0;
}

/* The probe's answer: the worker finished the job, or it is gone. */
static int probe_back(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    (void)reply;
    pool_state *s = state;
    pool_ticket *t = udata;
    t->conts--;
    t->probe_back = true;
    t->dead = status == TR_EEXITED || status == TR_ENOACTOR;
    ticket_settle(ctx, s, t);
    tr__pool_dispatch(ctx, s);
    return 0;
}

/* ---- handing over ---------------------------------------------------------- */

/*
 * Sends j to slot's worker, then the probe. On TR_OK the job's message is
 * the runtime's and the slot holds a ticket; otherwise the caller still
 * owns j (TR_ENOACTOR: the worker is gone, try another).
 */
static tr_err job_send(tr_ctx *ctx, pool_state *s, uint32_t slot, pool_job *j)
{
    pool_slot *sl = &s->slots[slot];
    pool_ticket *t = calloc(1, sizeof *t);
    if (t == NULL)
        return TR_ENOMEM;
    t->slot = slot;
    t->worker = sl->ref;
    t->to = j->to;
    t->is_req = j->is_req;
    tr_err err;
    if (j->is_req) {
        /* The caller's deadline, rounded up: the runtime drops an answer
         * relayed after the caller's own deadline. */
        uint64_t now = now_ns();
        uint64_t left = j->to.deadline > now ? (j->to.deadline - now + 999999u) / 1000000u : 1;
        uint32_t ms = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
        err = tr_request(ctx, sl->ref, j->msg, ms, job_back, t);
    } else {
        err = tr_send(ctx, sl->ref, j->msg);
    }
    if (err != TR_OK) {
        free(t);
        return err;
    }
    j->msg = NULL;
    t->conts = j->is_req ? 1 : 0;
    ticket_link(s, t);
    sl->ticket = t;

    tr_msg *probe;
    if ((err = tr_msg_new(&probe, ctx, POOL_TAG_PROBE)) == TR_OK &&
        (err = tr_request(ctx, sl->ref, probe, PROBE_TIMEOUT_MS, probe_back, t)) != TR_OK)
        tr_msg_free(probe);
    if (err == TR_OK) {
        t->conts++;
    } else {
        /* Gone already: the probe's answer is known. Out of memory: the
         * slot comes back with the job's answer (a plain job's at once). */
        t->probe_back = true;
        t->dead = err == TR_ENOACTOR;
        ticket_settle(ctx, s, t);
    }
    return TR_OK;
}

/* Hands j to an idle worker. True when it was handed over or failed for
 * good (answered, counted); false when no worker is idle (j untouched). */
static bool job_place(tr_ctx *ctx, pool_state *s, pool_job *j)
{
    uint32_t slot;
    while (idle_take(s, &slot)) {
        tr_err err = job_send(ctx, s, slot, j);
        if (err == TR_OK)
            return true;
        if (err == TR_ENOACTOR) {
            s->slots[slot].ref = TR_REF_NIL; /* went down; the supervisor says more */
            continue;
        }
        idle_push(s, slot);
        job_fail(ctx, s, j, err, OUT_FAILED);
        return true;
    }
    return false;
}

void tr__pool_dispatch(tr_ctx *ctx, pool_state *s)
{
    uint64_t now = now_ns();
    while (s->q_len > 0 && s->idle_len > 0) {
        pool_job j;
        q_pop(s, &j);
        if (j.is_req && j.to.deadline <= now) {
            tr_msg_free(j.msg);
            s->st.expired++;
            continue;
        }
        if (!job_place(ctx, s, &j)) {
            q_unpop(s, &j);
            return;
        }
    }
}

void tr__pool_submit(tr_ctx *ctx, pool_state *s, const tr_msg *m)
{
    s->st.submitted++;
    pool_job j = {NULL, {TR_REF_NIL, 0, 0}, tr_msg_is_request(m)};
    if (j.is_req)
        (void)tr_msg_reply_to(&j.to, m);
    tr_err refuse = TR_OK;
    if (s->stopping)
        refuse = TR_ECANCELED;
    else if (strncmp(tr_msg_tag(m), POOL_TAG_PREFIX, strlen(POOL_TAG_PREFIX)) == 0)
        refuse = TR_EINVAL;
    else if (j.is_req && tr_msg_expired(m)) {
        s->st.expired++;
        return;
    } else
        refuse = msg_copy(&j.msg, ctx, tr_msg_tag(m), m);
    if (refuse != TR_OK) {
        job_fail(ctx, s, &j, refuse, OUT_REFUSED);
        return;
    }
    /* Jobs already waiting go first. */
    if (s->q_len == 0 && job_place(ctx, s, &j))
        return;
    if (s->q_len >= s->queue_max)
        tr__pool_purge_expired(s);
    if (s->q_len >= s->queue_max || !q_reserve(s)) {
        job_fail(ctx, s, &j, s->q_len >= s->queue_max ? TR_EFULL : TR_ENOMEM, OUT_REFUSED);
        return;
    }
    *q_at(s, s->q_len) = j;
    s->q_len++;
    tr__pool_dispatch(ctx, s);
}

/* ---- worker membership ---------------------------------------------------- */

void tr__pool_slot_up(pool_state *s, uint32_t slot, tr_ref ref)
{
    pool_slot *sl = &s->slots[slot];
    if (sl->ever_started)
        s->st.restarts++;
    sl->ever_started = true;
    sl->ref = ref;
    idle_push(s, slot); /* unless the old incarnation's job is still settling */
}

void tr__pool_slot_down(pool_state *s, uint32_t slot, tr_ref ref)
{
    pool_slot *sl = &s->slots[slot];
    if (tr_ref_eq(sl->ref, ref))
        sl->ref = TR_REF_NIL;
}

uint32_t tr__pool_busy(const pool_state *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->nworkers; i++)
        n += s->slots[i].ticket != NULL;
    return n;
}

void tr__pool_drop_tickets(tr_ctx *ctx, pool_state *s, tr_err status)
{
    while (s->tickets != NULL) {
        pool_ticket *t = s->tickets;
        if (!t->released) {
            if (t->is_req && !t->answered) {
                answer_error(ctx, &t->to, status);
                t->outcome = status == TR_ECANCELED ? OUT_CANCELED : OUT_FAILED;
            } else if (!t->is_req) {
                t->outcome = OUT_CANCELED;
            }
            count(s, t->outcome);
            s->slots[t->slot].ticket = NULL;
        }
        ticket_free(s, t);
    }
}
