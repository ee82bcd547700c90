/*
 * actor.c — the actor table, spawning, sending, the consumer's dispatch of
 * each popped message, and exit.
 *
 * Slots are handed out from a table of chunks and never freed while the
 * runtime lives; a slot's incarnation (odd = alive) tells senders whether
 * their reference is current. This file owns the life cycle of an
 * incarnation; scheduling lives in sched.c, links and monitors in
 * exitsig.c, requests in request.c.
 */
#include "mailbox.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- table --------------------------------------------------------------- */

tr_actor *tr__actor_lookup(tr_runtime *rt, uint32_t id)
{
    /* acquire: pairs with the release store of nslots in slot_init_fresh, so
     * a slot below nslots is fully initialised. */
    if (id >= atomic_load_explicit(&rt->nslots, memory_order_acquire))
        return NULL;
    tr_actor *chunk =
        atomic_load_explicit(&rt->chunks[id >> TABLE_CHUNK_BITS], memory_order_acquire);
    return &chunk[id & (TABLE_CHUNK - 1)];
}

tr_ref tr__actor_ref(tr_runtime *rt, tr_actor *a)
{
    tr_ref r = {rt->node, a->id, atomic_load_explicit(&a->incarnation, memory_order_relaxed)};
    return r;
}

/* Table lock held: makes slot number rt->nslots usable. */
static tr_actor *slot_init_fresh(tr_runtime *rt)
{
    uint32_t id = atomic_load_explicit(&rt->nslots, memory_order_relaxed);
    if (id >= TABLE_MAX_CHUNKS * TABLE_CHUNK)
        return NULL;
    uint32_t ci = id >> TABLE_CHUNK_BITS;
    tr_actor *chunk = atomic_load_explicit(&rt->chunks[ci], memory_order_relaxed);
    if (chunk == NULL) {
        /* The first chunk's pages are touched only as slots are handed out,
         * so a small runtime stays small; later chunks are populated in one
         * go, which costs far less than a page fault per 21 slots. */
        int flags = MAP_PRIVATE | MAP_ANONYMOUS | (ci != 0 ? MAP_POPULATE : 0);
        void *p = mmap(NULL, TABLE_CHUNK_BYTES, PROT_READ | PROT_WRITE, flags, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        chunk = p;
        atomic_store_explicit(&rt->chunks[ci], chunk, memory_order_release);
    }
    tr_actor *a = &chunk[id & (TABLE_CHUNK - 1)];
    memset(a, 0, sizeof *a);
    a->id = id;
    mbox_init(a);
    /* release: pairs with the acquire in tr__actor_lookup. */
    atomic_store_explicit(&rt->nslots, id + 1, memory_order_release);
    return a;
}

/* Table lock held: moves up to SLOT_BATCH free slots (or fresh ones) into
 * the context's cache. */
static void slot_refill(tr_runtime *rt, tr_ctx *ctx)
{
    for (uint32_t i = 0; i < SLOT_BATCH; i++) {
        tr_actor *a = rt->free_slots;
        if (a != NULL)
            rt->free_slots = a->free_next;
        else if ((a = slot_init_fresh(rt)) == NULL)
            return;
        a->free_next = ctx->slots;
        ctx->slots = a;
        ctx->nslots++;
    }
}

tr_err tr__slot_alloc(tr_runtime *rt, tr_ctx *ctx, tr_actor **out, uint16_t depth)
{
    if (depth >= MAX_DEPTH)
        depth = MAX_DEPTH - 1;
    /* seq_cst pair with tr_runtime_stop: it sets stopping then waits for
     * spawning to drain; we count ourselves in then look at stopping. */
    atomic_fetch_add_explicit(&rt->spawning, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&rt->stopping, memory_order_seq_cst)) {
        tr__spawn_done(rt);
        return TR_ESTOPPED;
    }
    if (ctx->slots == NULL) {
        /* Slots come and go in batches, so spawn and exit rarely take the
         * table lock. */
        pthread_mutex_lock(&rt->table_lock);
        slot_refill(rt, ctx);
        pthread_mutex_unlock(&rt->table_lock);
        if (ctx->slots == NULL) {
            tr__spawn_done(rt);
            return TR_ENOMEM;
        }
    }
    tr_actor *a = ctx->slots;
    ctx->slots = a->free_next;
    ctx->nslots--;
    /* The new incarnation is odd (alive). Senders learn it only from the
     * reference spawn returns, which is published after the INIT push. */
    uint32_t inc = atomic_load_explicit(&a->incarnation, memory_order_relaxed) + 1;
    atomic_store_explicit(&a->incarnation, inc, memory_order_release);
    atomic_store_explicit(&a->depth, depth, memory_order_relaxed);
    atomic_store_explicit(&a->discard, 0, memory_order_relaxed);
    atomic_store_explicit(&a->has_names, 0, memory_order_relaxed);
    atomic_store_explicit(&a->trap_stop, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&rt->live_at_depth[depth], 1, memory_order_relaxed);
    if (depth != 0) /* depth 0 is an attached thread, not an actor */
        atomic_fetch_add_explicit(&rt->live, 1, memory_order_relaxed);
    if (depth > atomic_load_explicit(&rt->max_depth, memory_order_relaxed))
        atomic_fetch_max_u32(&rt->max_depth, depth);
    *out = a;
    return TR_OK;
}

/* Ends the incarnation's accounting: it is dead from now on. */
static void slot_mark_dead(tr_runtime *rt, tr_actor *a)
{
    /* seq_cst: orders against tr__names_register's seq_cst check of the
     * incarnation and its has_names store (see slot_release_names). */
    atomic_fetch_add_explicit(&a->incarnation, 1, memory_order_seq_cst);
}

static void slot_count_exit(tr_runtime *rt, tr_actor *a)
{
    uint16_t depth = atomic_load_explicit(&a->depth, memory_order_relaxed);
    if (depth != 0)
        atomic_fetch_sub_explicit(&rt->live, 1, memory_order_relaxed);
    /* acq_rel: the stopper waiting for this depth to empty must see the
     * exit's effects once it reads zero. */
    bool last_trap =
        atomic_load_explicit(&a->trap_stop, memory_order_relaxed) &&
        atomic_fetch_sub_explicit(&rt->live_trap_stop[depth], 1, memory_order_acq_rel) == 1;
    bool last = atomic_fetch_sub_explicit(&rt->live_at_depth[depth], 1, memory_order_acq_rel) == 1;
    if ((last || last_trap) && atomic_load_explicit(&rt->stopping, memory_order_seq_cst)) {
        pthread_mutex_lock(&rt->stop_lock);
        pthread_cond_broadcast(&rt->stop_cv);
        pthread_mutex_unlock(&rt->stop_lock);
    }
}

void tr__spawn_done(tr_runtime *rt)
{
    /* acq_rel: the stopper that reads zero sees the INIT pushes before it. */
    if (atomic_fetch_sub_explicit(&rt->spawning, 1, memory_order_seq_cst) == 1 &&
        atomic_load_explicit(&rt->stopping, memory_order_seq_cst)) {
        pthread_mutex_lock(&rt->stop_lock);
        pthread_cond_broadcast(&rt->stop_cv);
        pthread_mutex_unlock(&rt->stop_lock);
    }
}

void tr__slot_publish_free(tr_runtime *rt, tr_ctx *ctx, tr_actor *a)
{
    a->free_next = ctx->slots;
    ctx->slots = a;
    if (++ctx->nslots < 2 * SLOT_BATCH)
        return;
    /* Give a batch back, so slots freed on one thread serve spawns on
     * another. */
    tr_actor *first = ctx->slots, *last = first;
    for (uint32_t i = 1; i < SLOT_BATCH; i++)
        last = last->free_next;
    ctx->slots = last->free_next;
    ctx->nslots -= SLOT_BATCH;
    pthread_mutex_lock(&rt->table_lock);
    last->free_next = rt->free_slots;
    rt->free_slots = first;
    pthread_mutex_unlock(&rt->table_lock);
}

/* ---- delivery ------------------------------------------------------------ */

void tr__send_flush(tr_ctx *ctx)
{
    if (ctx->sbuf_n == 0)
        return;
    tr_actor *a = ctx->sbuf_to;
    tr_msg *first = ctx->sbuf_first, *last = ctx->sbuf_last;
    ctx->sbuf_n = 0;
    ctx->sbuf_to = NULL;
    ctx->sbuf_first = ctx->sbuf_last = NULL;
    uint32_t depth;
    if (mbox_push_chain(a, &first->link, &last->link, &depth))
        tr__schedule(ctx, a);
    ctr_max(&ctx->ctr.max_depth, depth);
}

/* Workers batch the user messages a handler sends to one receiver: up to
 * SEND_CHAIN of them go in with a single exchange, and the receiver finds
 * them in a row. They are pushed before any other push from the worker and
 * when the handler returns, so no order a sender can observe changes. */
#define SEND_CHAIN 32

static void send_buffered(tr_ctx *ctx, tr_actor *a, tr_msg *m)
{
    if (ctx->sbuf_n != 0 && ctx->sbuf_to != a)
        tr__send_flush(ctx);
    atomic_store_explicit(&m->link.next, NULL, memory_order_relaxed);
    if (ctx->sbuf_n == 0)
        ctx->sbuf_first = m;
    else
        atomic_store_explicit(&ctx->sbuf_last->link.next, &m->link, memory_order_relaxed);
    ctx->sbuf_last = m;
    ctx->sbuf_to = a;
    if (++ctx->sbuf_n == SEND_CHAIN)
        tr__send_flush(ctx);
}

void tr__deliver(tr_ctx *ctx, tr_actor *a, tr_msg *m)
{
    uint32_t depth;
    tr__send_flush(ctx);
    if (mbox_push(a, &m->link, &depth))
        tr__schedule(ctx, a);
    ctr_max(&ctx->ctr.max_depth, depth);
}

/* Resolves a reference to a live local slot. */
static tr_err send_resolve(tr_runtime *rt, tr_ref to, tr_actor **out)
{
    if (to.node != rt->node)
        return to.node == 0 ? TR_EINVAL : TR_ENOROUTE;
    tr_actor *a = tr__actor_lookup(rt, to.id);
    if (a == NULL)
        return TR_ENOACTOR;
    /* acquire: pairs with the release store in tr__slot_alloc. */
    if (atomic_load_explicit(&a->incarnation, memory_order_acquire) != to.incarnation ||
        (to.incarnation & 1) == 0)
        return TR_ENOACTOR;
    *out = a;
    return TR_OK;
}

static tr_ref ctx_self(const tr_ctx *ctx)
{
    return ctx->actor != NULL ? tr__actor_ref(ctx->rt, ctx->actor) : TR_REF_NIL;
}

static bool ref_remote(const tr_runtime *rt, tr_ref to)
{
    return to.node != rt->node && to.node != 0;
}

tr_err tr__send_system(tr_ctx *ctx, tr_ref to, tr_msg *m)
{
    tr_actor *a;
    if (ref_remote(ctx->rt, to)) {
        m->flags |= MF_SYSTEM;
        tr_err err = tr__link_send(ctx, to, m);
        if (err != TR_OK)
            tr__msg_release(ctx, m);
        else
            ctr_add(&ctx->ctr.sent, 1);
        return err;
    }
    tr_err err = send_resolve(ctx->rt, to, &a);
    if (err != TR_OK) {
        tr__msg_release(ctx, m);
        return err;
    }
    m->target_inc = to.incarnation;
    m->flags |= MF_SYSTEM;
    tr__deliver(ctx, a, m);
    ctr_add(&ctx->ctr.sent, 1);
    return TR_OK;
}

tr_err tr__signal(tr_ctx *ctx, tr_ref to, tr_ref from, uint8_t kind, uint8_t flags, uint64_t corr,
                  const tr_reason *why)
{
    tr_msg *m = tr__msg_alloc(ctx);
    if (m == NULL)
        return TR_ENOMEM;
    m->kind = kind;
    m->flags = flags;
    m->from = from;
    m->corr = corr;
    if (why != NULL && tr__pack_reason(m, why) != TR_OK) {
        tr__msg_release(ctx, m);
        return TR_ENOMEM;
    }
    return tr__send_system(ctx, to, m);
}

tr_err tr_send(tr_ctx *ctx, tr_ref to, tr_msg *m) { return tr__send_user(ctx, to, m, 0, 0, 0); }

tr_err tr__send_user(tr_ctx *ctx, tr_ref to, tr_msg *m, uint8_t flags, uint64_t corr,
                     uint64_t deadline)
{
    if (ctx == NULL || m == NULL)
        return TR_EINVAL;
    if (m->flags & MF_NOMEM)
        return TR_ENOMEM;
    tr_runtime *rt = ctx->rt;
    if (atomic_load_explicit(&rt->stopped, memory_order_relaxed))
        return TR_ESTOPPED;
    /* A received message may be sent on: it becomes a plain user message. */
    m->kind = MK_USER;
    m->flags = (uint8_t)((m->flags & MF_HEAPBUF) | flags);
    m->corr = corr;
    m->deadline = deadline;
    m->status = 0;
    m->from = ctx_self(ctx);
    if (ref_remote(rt, to)) {
        tr__send_flush(ctx); /* keep this sender's order across both paths */
        tr_err err = tr__link_send(ctx, to, m);
        if (err == TR_OK)
            ctr_add(&ctx->ctr.sent, 1);
        return err;
    }
    tr_actor *a;
    tr_err err = send_resolve(rt, to, &a);
    if (err != TR_OK) {
        if (err == TR_ENOACTOR)
            ctr_add(&ctx->ctr.dead_letters, 1);
        return err;
    }
    m->target_inc = to.incarnation;

    uint32_t limit = atomic_load_explicit(&a->limit, memory_order_relaxed);
    if (limit != 0) {
        /* Claim a place first so concurrent senders cannot overshoot; the
         * consumer gives it back when the message leaves (tr__uncount). */
        uint64_t before = atomic_fetch_add_explicit(&a->pushed, 1, memory_order_relaxed);
        uint64_t popped = atomic_load_explicit(&a->popped_pub, memory_order_relaxed);
        uint8_t overflow = atomic_load_explicit(&a->overflow, memory_order_relaxed);
        if (before - popped >= limit && overflow != TR_OVERFLOW_DROP_OLDEST) {
            atomic_fetch_sub_explicit(&a->pushed, 1, memory_order_relaxed);
            if (overflow == TR_OVERFLOW_REJECT) {
                ctr_add(&ctx->ctr.rejected_full, 1);
                return TR_EFULL;
            }
            ctr_add(&ctx->ctr.dropped_overflow, 1);
            ctr_add(&ctx->ctr.dead_letters, 1);
            tr__msg_release(ctx, m);
            return TR_OK;
        }
        m->flags |= MF_COUNTED;
    }
    ctr_add(&ctx->ctr.sent, 1);
    if (ctx->type == CTX_WORKER)
        send_buffered(ctx, a, m);
    else
        tr__deliver(ctx, a, m);
    return TR_OK;
}

tr_err tr_send_tag(tr_ctx *ctx, tr_ref to, const char *tag)
{
    tr_msg *m;
    tr_err err = tr_msg_new(&m, ctx, tag);
    if (err != TR_OK)
        return err;
    err = tr_send(ctx, to, m);
    if (err != TR_OK)
        tr__msg_release(ctx, m);
    return err;
}

tr_err tr_send_int(tr_ctx *ctx, tr_ref to, const char *tag, int64_t v)
{
    tr_msg *m;
    tr_err err = tr_msg_new(&m, ctx, tag);
    if (err != TR_OK)
        return err;
    if ((err = tr_pack_int(m, v)) == TR_OK)
        err = tr_send(ctx, to, m);
    if (err != TR_OK)
        tr__msg_release(ctx, m);
    return err;
}

tr_err tr_send_str(tr_ctx *ctx, tr_ref to, const char *tag, const char *s)
{
    tr_msg *m;
    if (s == NULL)
        return TR_EINVAL;
    tr_err err = tr_msg_new(&m, ctx, tag);
    if (err != TR_OK)
        return err;
    if ((err = tr_pack_str(m, s)) == TR_OK)
        err = tr_send(ctx, to, m);
    if (err != TR_OK)
        tr__msg_release(ctx, m);
    return err;
}

/* ---- dead letters -------------------------------------------------------- */

static void dead_letter_ref(tr_ctx *ctx, tr_ref dead, tr_msg *m);

void tr__dead_letter(tr_ctx *ctx, tr_actor *a, tr_msg *m)
{
    tr_ref dead = {ctx->rt->node, a->id, m->target_inc};
    dead_letter_ref(ctx, dead, m);
}

void tr__deliver_inbound(tr_ctx *ctx, tr_ref to, tr_msg *m)
{
    tr_actor *a;
    /* Hook (remote.c): the node kernel's well-known address. */
    if (to.id == TR_KERNEL_ID && to.incarnation == 0)
        to = tr__kernel_resolve(ctx, to);
    if (m->kind == MK_REPLY && atomic_load_explicit(&ctx->rt->procs, memory_order_relaxed) != NULL)
        tr__procs_reply_seen(ctx->rt, m->from.node, m->corr);
    if (send_resolve(ctx->rt, to, &a) != TR_OK) {
        dead_letter_ref(ctx, to, m);
        return;
    }
    m->target_inc = to.incarnation;
    uint32_t limit = atomic_load_explicit(&a->limit, memory_order_relaxed);
    if (limit != 0 && m->kind == MK_USER && !(m->flags & MF_SYSTEM)) {
        /* A remote sender cannot be refused: a full mailbox drops it. */
        uint64_t before = atomic_fetch_add_explicit(&a->pushed, 1, memory_order_relaxed);
        uint64_t popped = atomic_load_explicit(&a->popped_pub, memory_order_relaxed);
        if (before - popped >= limit &&
            atomic_load_explicit(&a->overflow, memory_order_relaxed) != TR_OVERFLOW_DROP_OLDEST) {
            atomic_fetch_sub_explicit(&a->pushed, 1, memory_order_relaxed);
            ctr_add(&ctx->ctr.dropped_overflow, 1);
            dead_letter_ref(ctx, to, m);
            return;
        }
        m->flags |= MF_COUNTED;
    }
    tr__deliver(ctx, a, m);
}

static void dead_letter_ref(tr_ctx *ctx, tr_ref dead, tr_msg *m)
{
    tr_reason noproc = tr_reason_make(TR_EXIT_NOPROC, 0, NULL);
    switch (m->kind) {
    case MK_LINK:
        /* The linker must learn its peer is gone, as if it had exited. */
        tr__signal(ctx, m->from, dead, MK_EXIT, MF_LINKEXIT, 0, &noproc);
        break;
    case MK_MONITOR:
        tr__signal(ctx, m->from, dead, MK_DOWN, 0, m->corr, &noproc);
        break;
    case MK_USER:
        ctr_add(&ctx->ctr.dead_letters, 1);
        if (m->flags & MF_REQUEST) {
            /* Answer for the dead so a caller fails fast instead of waiting. */
            tr_msg *r = tr__msg_alloc(ctx);
            if (r != NULL) {
                memcpy(r->tag, m->tag, sizeof r->tag);
                r->kind = MK_REPLY;
                r->status = TR_ENOACTOR;
                r->corr = m->corr;
                r->deadline = m->deadline;
                r->from = dead;
                tr__send_system(ctx, m->from, r);
            }
        }
        break;
    case MK_REPLY:
        ctr_add(&ctx->ctr.late_replies, 1);
        break;
    default:
        break;
    }
    tr__msg_release(ctx, m);
}

/* ---- the consumer's dispatch --------------------------------------------- */

/* Starts a pooled incarnation from its INIT message (consumed). */
static void actor_start(tr_ctx *ctx, tr_actor *a, tr_msg *m)
{
    struct init_info info;
    memcpy(&info, m->data, sizeof info);
    a->live_inc = m->target_inc;
    a->beh = info.beh;
    a->trap_exit = info.trap_exit != 0;
    a->ext = NULL;
    a->state = NULL;
    tr_ref spawner = m->from;
    tr__msg_release(ctx, m);

    if (info.link_from)
        tr__links_add(a, spawner);
    if (a->beh->state_size != 0) {
        a->state = calloc(1, a->beh->state_size);
        if (a->state == NULL) {
            tr__msg_release(ctx, info.args);
            ctx->exiting = true;
            ctx->exit_reason = tr_reason_make(TR_EXIT_ERROR, TR_ENOMEM, "state allocation failed");
            return;
        }
    }
    if (a->beh->init != NULL) {
        int rc = a->beh->init(ctx, a->state, info.args);
        if (rc != 0 && !ctx->exiting) {
            ctx->exiting = true;
            ctx->exit_reason = tr_reason_make(TR_EXIT_ERROR, rc, "init failed");
        }
    }
    tr__msg_release(ctx, info.args);
}

tr_msg *tr__process(tr_ctx *ctx, tr_actor *a, tr_msg *m)
{
    if (m->kind == MK_INIT) {
        /* An INIT whose incarnation already ended (a thread that exited
         * before it read its mailbox) marks nothing any more. */
        if (m->target_inc != atomic_load_explicit(&a->incarnation, memory_order_acquire)) {
            tr__msg_release(ctx, m);
            return NULL;
        }
        if (ctx->type == CTX_WORKER &&
            atomic_load_explicit(&a->kind, memory_order_relaxed) == TR_THREAD) {
            /* The slot's next life is a thread actor: its thread takes the
             * consumer role from here on. */
            tr__msg_release(ctx, m);
            ctx->handoff = true;
            tr__schedule(ctx, a);
            return NULL;
        }
        if (ctx->type == CTX_WORKER) {
            actor_start(ctx, a, m);
        } else {
            /* Thread actors start from their record; INIT only marks the
             * boundary between the slot's previous life and this one. */
            tr__msg_release(ctx, m);
        }
        return NULL;
    }
    if (a->live_inc == 0 || m->target_inc != a->live_inc) {
        tr__dead_letter(ctx, a, m);
        return NULL;
    }
    switch (m->kind) {
    case MK_USER:
        if (atomic_load_explicit(&a->discard, memory_order_relaxed)) {
            tr__dead_letter(ctx, a, m); /* shutdown discards what is queued */
            return NULL;
        }
        ctr_add(&ctx->ctr.delivered, 1);
        return m;
    case MK_REPLY:
    case MK_REQ_TIMEOUT:
        return tr__process_reply(ctx, a, m);
    case MK_PROCEXIT:
        if (a->beh == &tr__proxy_beh)
            return m;
        tr__dead_letter(ctx, a, m);
        return NULL;
    case MK_STOP:
        if (a->beh == &tr__proxy_beh && !ctx->exiting)
            return m; /* a process actor's stand-in stops its process first */
        tr__msg_release(ctx, m);
        if (!ctx->exiting) {
            ctx->exiting = true;
            ctx->exit_reason = tr_reason_make(TR_EXIT_SHUTDOWN, 0, "runtime stopping");
        }
        return NULL;
    default:
        return tr__process_signal(ctx, a, m);
    }
}

bool tr__overflowed(tr_actor *a, const tr_msg *m)
{
    if (!(m->flags & MF_COUNTED) ||
        atomic_load_explicit(&a->overflow, memory_order_relaxed) != TR_OVERFLOW_DROP_OLDEST)
        return false;
    uint32_t limit = atomic_load_explicit(&a->limit, memory_order_relaxed);
    return atomic_load_explicit(&a->pushed, memory_order_relaxed) - a->popped > limit;
}

void tr__uncount(tr_actor *a, const tr_msg *m)
{
    if (m->flags & MF_COUNTED)
        tr__uncount_one(a);
}

void tr__uncount_one(tr_actor *a)
{
    a->popped++;
    /* relaxed: bounded senders read it as an estimate that only lags. */
    atomic_store_explicit(&a->popped_pub, a->popped, memory_order_relaxed);
}

/* ---- exit ---------------------------------------------------------------- */

void tr__finish_exit(tr_ctx *ctx)
{
    tr_runtime *rt = ctx->rt;
    tr_actor *a = ctx->actor;
    tr_reason why = ctx->exit_reason;
    tr_ref self = tr__actor_ref(rt, a);

    if (a->beh != NULL && a->beh->terminate != NULL)
        a->beh->terminate(ctx, a->state, &why);

    /* Dead from here: new sends fail fast, queued ones become dead letters. */
    slot_mark_dead(rt, a);
    a->live_inc = 0;
    /* seq_cst: pairs with tr__names_register (see there). */
    if (atomic_load_explicit(&a->has_names, memory_order_seq_cst))
        tr__names_release_all(rt, self);
    tr__pending_fail_all(ctx, a);
    tr__exit_propagate(ctx, a, self, &why);
    tr__ext_free(a);
    free(a->state);
    a->state = NULL;
    a->beh = NULL;
    ctx->exiting = false;
    /* Depth 0: an attached thread or the node kernel, not a user's actor. */
    if (atomic_load_explicit(&a->depth, memory_order_relaxed) != 0)
        ctr_add(&ctx->ctr.exited, 1);
    slot_count_exit(rt, a);
    /* A worker keeps the consumer role of the dead slot (it drains it as
     * dead letters), so the slot can be reused at once; a thread hands the
     * role over first and frees the slot itself. */
    if (ctx->type == CTX_WORKER)
        tr__slot_publish_free(rt, ctx, a);
}

/* ---- spawning ------------------------------------------------------------ */

/*
 * Starts a pooled actor without an init callback where it stands: when the
 * slot's mailbox is idle nobody consumes it, so the spawner can take the
 * consumer role (clear the idle mark), set the incarnation up, and give the
 * role back — no INIT message, no scheduling, no wake-up. False when the
 * slot is busy (a worker still drains its previous life), or on failure.
 */
static bool spawn_in_place(tr_ctx *ctx, tr_actor *a, const struct init_info *info, tr_ref ref)
{
    mbox_node *h = atomic_load_explicit(&a->head, memory_order_acquire);
    if (((uintptr_t)h & MBOX_IDLE) == 0)
        return false;
    void *state = NULL;
    if (info->beh->state_size != 0 && (state = calloc(1, info->beh->state_size)) == NULL)
        return false;
    /* acquire: pairs with the previous consumer's release in mbox_mark_idle. */
    if (!atomic_compare_exchange_strong_explicit(&a->head, &h,
                                                 (mbox_node *)((uintptr_t)h & ~MBOX_IDLE),
                                                 memory_order_acquire, memory_order_relaxed)) {
        free(state);
        return false;
    }
    a->live_inc = ref.incarnation;
    a->beh = info->beh;
    a->trap_exit = info->trap_exit != 0;
    a->ext = NULL;
    a->state = state;
    if (info->link_from)
        tr__links_add(a, tr_self(ctx));
    tr__msg_release(ctx, info->args); /* nobody to hand them to */
    mbox_node *released;
    if (!mbox_mark_idle(a, &released)) /* stale senders got in: run them off */
        tr__schedule(ctx, a);
    tr__msg_dispose_released(ctx, released);
    return true;
}

/* What tr_spawn hands to its point of no return. */
struct spawn_go {
    tr_ctx *ctx;
    tr_actor *a;
    tr_ref ref;
    const tr_spawn_opts *o;
    struct init_info info;
    tr_msg *init;
};

/*
 * Makes the new incarnation live: creates the thread of a thread actor and
 * pushes INIT (or starts an init-less pooled actor in place). Runs with the
 * registry locked for a named spawn, so the name appears only once this has
 * succeeded. Everything that can fail happens before `kind` changes, so a
 * sender that races with a failed spawn schedules nothing.
 */
static tr_err spawn_go(void *arg)
{
    struct spawn_go *g = arg;
    tr_ctx *ctx = g->ctx;
    tr_actor *a = g->a;
    if (g->o->kind == TR_THREAD) {
        struct thread_actor *thr;
        tr_err err = tr__thread_spawn(ctx, a, &g->info, &thr);
        if (err != TR_OK)
            return err;
        /* release: pairs with tr__schedule's acquire loads of kind and thr. */
        atomic_store_explicit(&a->thr, thr, memory_order_release);
        atomic_store_explicit(&a->kind, TR_THREAD, memory_order_release);
    } else {
        atomic_store_explicit(&a->kind, TR_POOLED, memory_order_release);
        if (g->info.beh->init == NULL && spawn_in_place(ctx, a, &g->info, g->ref)) {
            tr__msg_release(ctx, g->init);
            return TR_OK;
        }
    }
    tr_msg *init = g->init;
    init->kind = MK_INIT;
    init->flags = MF_SYSTEM;
    init->from = ctx_self(ctx);
    init->target_inc = g->ref.incarnation;
    memcpy(init->data, &g->info, sizeof g->info);
    init->len = sizeof g->info;
    tr__deliver(ctx, a, init);
    return TR_OK;
}

static tr_err spawn_check(tr_ctx *ctx, const tr_behaviour *b, const tr_spawn_opts *o)
{
    if (ctx == NULL || b == NULL)
        return TR_EINVAL;
    if (o->kind != TR_POOLED && o->kind != TR_THREAD && o->kind != TR_PROCESS)
        return TR_EINVAL;
    if (o->kind == TR_PROCESS && b->handle == NULL && b->run == NULL)
        return TR_EINVAL;
    if (o->kind == TR_POOLED && b->handle == NULL)
        return TR_EINVAL;
    if (o->kind == TR_THREAD && b->handle == NULL && b->run == NULL)
        return TR_EINVAL;
    if ((unsigned)o->overflow > TR_OVERFLOW_DROP_OLDEST)
        return TR_EINVAL;
    if (o->name != NULL) {
        size_t n = strnlen(o->name, TR_NAME_MAX + 1);
        if (n == 0)
            return TR_EINVAL;
        if (n > TR_NAME_MAX)
            return TR_ETOOBIG;
    }
    return TR_OK;
}

tr_err tr_spawn(tr_ref *out, tr_ctx *ctx, const tr_behaviour *b, tr_msg *args,
                const tr_spawn_opts *opts)
{
    static const tr_spawn_opts defaults = TR_SPAWN_OPTS_INIT;
    const tr_spawn_opts *o = opts != NULL ? opts : &defaults;
    if (out == NULL)
        return TR_EINVAL;
    tr_err err = spawn_check(ctx, b, o);
    if (err != TR_OK)
        return err;
    if (args != NULL && (args->flags & MF_NOMEM))
        return TR_ENOMEM;
    if (o->link && ctx->actor == NULL)
        return TR_EINVAL;
    if (o->kind == TR_PROCESS)
        return tr__proc_spawn(out, ctx, b, args, o);
    return tr__spawn_with(out, ctx, b, args, o, NULL, NULL);
}

tr_err tr__spawn_with(tr_ref *out, tr_ctx *ctx, const tr_behaviour *b, tr_msg *args,
                      const tr_spawn_opts *o, void (*after_go)(tr_ref ref, void *arg), void *arg)
{
    tr_err err;

    tr_runtime *rt = ctx->rt;
    uint16_t depth = 1;
    if (ctx->actor != NULL && ctx->type != CTX_ATTACHED)
        depth = (uint16_t)(atomic_load_explicit(&ctx->actor->depth, memory_order_relaxed) + 1);

    tr_msg *init = tr__msg_alloc(ctx);
    if (init == NULL)
        return TR_ENOMEM;
    tr_actor *a;
    err = tr__slot_alloc(rt, ctx, &a, depth);
    if (err != TR_OK) {
        tr__msg_release(ctx, init);
        return err;
    }
    tr_ref ref = tr__actor_ref(rt, a);

    atomic_store_explicit(&a->limit, o->mailbox_limit, memory_order_relaxed);
    atomic_store_explicit(&a->overflow, (uint8_t)o->overflow, memory_order_relaxed);
    if (o->trap_stop) {
        atomic_store_explicit(&a->trap_stop, 1, memory_order_relaxed);
        uint16_t d = atomic_load_explicit(&a->depth, memory_order_relaxed); /* clamped */
        atomic_fetch_add_explicit(&rt->live_trap_stop[d], 1, memory_order_relaxed);
    }
    struct spawn_go g = {ctx, a, ref, o, {b, args, o->trap_exit, o->link}, init};
    if (o->link)
        tr__links_add(ctx->actor, ref);
    err = o->name != NULL ? tr__names_register(rt, o->name, ref, a, spawn_go, &g) : spawn_go(&g);
    if (err != TR_OK) {
        if (o->link)
            tr__links_remove(ctx->actor, ref);
        /* Nothing saw this incarnation: retire it quietly. */
        tr__msg_release(ctx, init);
        slot_mark_dead(rt, a);
        slot_count_exit(rt, a);
        tr__slot_publish_free(rt, ctx, a);
    } else {
        ctr_add(&ctx->ctr.spawned, 1);
        *out = ref;
        if (after_go != NULL)
            after_go(ref, arg); /* its first message is queued: others go after it */
    }
    tr__spawn_done(rt);
    return err;
}

/* ---- context accessors --------------------------------------------------- */

tr_ref tr_self(const tr_ctx *ctx) { return ctx != NULL ? ctx_self(ctx) : TR_REF_NIL; }

tr_runtime *tr_ctx_runtime(const tr_ctx *ctx) { return ctx != NULL ? ctx->rt : NULL; }

tr_actor_kind tr_ctx_kind(const tr_ctx *ctx)
{
    return (ctx != NULL && ctx->type == CTX_WORKER) ? TR_POOLED : TR_THREAD;
}

void tr_stop_self(tr_ctx *ctx, const tr_reason *why)
{
    if (ctx == NULL || ctx->actor == NULL || ctx->exiting)
        return;
    ctx->exiting = true;
    ctx->exit_reason = why != NULL ? *why : tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
}
