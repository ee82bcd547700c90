/*
 * link.c — peers and their sessions (see link.h): what makes a node link
 * lose, duplicate and reorder nothing while both nodes live.
 *
 * A send to an actor on another node becomes an envelope in the peer's
 * open DATA frame; while the connection is busy the next frame fills up,
 * so a busy link batches. Envelopes are numbered per session; the peer
 * acknowledges them cumulatively, and frames stay here until acknowledged:
 * a connection that breaks loses what it held, so when the next one is
 * bound everything unacknowledged is written again and the receiver drops
 * what it already has.
 *
 * A session is named by both sides (my_session, peer_session), exchanged
 * in the handshake. A peer that comes back naming another session
 * restarted, or declared us down: what was in flight to it is counted as
 * dead letters, every local actor linked to or monitoring its actors gets
 * MK_NODEDOWN, and numbering starts again from 1. Declaring a peer down
 * (silence past the detection time, or its BYE) does the same and starts a
 * new session of ours, so the peer resets too when it is back.
 *
 * This file must not run actor code: it hands inbound messages to
 * mailboxes (tr__deliver_inbound), from the receiving connection's thread.
 */
#include "nodelink.h"

#include "auth.h"

#include <stdlib.h>
#include <string.h>

/* ---- peers ---------------------------------------------------------------- */

struct peer *tr__peer_find(struct links *L, uint64_t node)
{
    if (node == 0)
        return NULL; /* retired peers are nobody's */
    /* acquire: pairs with the release store in tr__peer_new; next is
     * immutable once published (node is checked again under mu). */
    for (struct peer *p = atomic_load_explicit(&L->peers, memory_order_acquire); p != NULL;
         p = p->next)
        if (atomic_load_explicit(&p->node, memory_order_acquire) == node)
            return p;
    return NULL;
}

/* Gives a retired peer that no connection refers to to node. links.mu
 * held. */
static struct peer *peer_reuse(struct links *L, uint64_t node, uint64_t my_session)
{
    for (struct peer *p = atomic_load_explicit(&L->peers, memory_order_acquire); p != NULL;
         p = p->next) {
        if (atomic_load_explicit(&p->node, memory_order_relaxed) != 0 ||
            atomic_load_explicit(&p->conn_refs, memory_order_acquire) != 0)
            continue;
        pthread_mutex_lock(&p->rx_mu);
        pthread_mutex_lock(&p->mu);
        p->name[0] = '\0';
        p->my_session = my_session;
        p->peer_session = 0;
        p->last_sent = 0;
        p->hb_nonce = 0;
        atomic_store_explicit(&p->last_heard, tr__now_ns(), memory_order_relaxed);
        atomic_store_explicit(&p->node, node, memory_order_release);
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_unlock(&p->rx_mu);
        return p;
    }
    return NULL;
}

struct peer *tr__peer_new(struct links *L, uint64_t node, uint64_t my_session)
{
    struct peer *p = peer_reuse(L, node, my_session);
    if (p != NULL)
        return p;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->L = L;
    atomic_store_explicit(&p->node, node, memory_order_relaxed);
    pthread_mutex_init(&p->rx_mu, NULL);
    pthread_mutex_init(&p->mu, NULL);
    p->ctx.rt = L->rt;
    p->ctx.type = CTX_TIMER;
    tr__wire_buf_init(&p->obuf);
    tr__wire_buf_init(&p->cbuf);
    p->next_seq = 1;
    p->my_session = my_session;
    atomic_store_explicit(&p->last_heard, tr__now_ns(), memory_order_relaxed);
    p->next = atomic_load_explicit(&L->peers, memory_order_relaxed);
    atomic_store_explicit(&L->peers, p, memory_order_release);
    return p;
}

static void frames_free(struct lframe *f)
{
    while (f != NULL) {
        struct lframe *next = f->next;
        free(f->storage);
        free(f);
        f = next;
    }
}

void tr__peer_free(struct peer *p)
{
    frames_free(p->unacked);
    tr__wire_buf_fini(&p->obuf);
    tr__wire_buf_fini(&p->cbuf);
    idmap_free(&p->touched);
    tr__msg_cache_drain(p->L->rt, &p->ctx.cache);
    pthread_mutex_destroy(&p->rx_mu);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Remembers that local actor r linked to or monitors something on p's node,
 * so it hears if the node goes. p->mu held. */
static void peer_touch(struct peer *p, tr_ref r)
{
    uint64_t key = ((uint64_t)r.id << 32) | r.incarnation; /* never 0: live incarnations are odd */
    idmap_take(&p->touched, key);
    idmap_put(&p->touched, key, (void *)(uintptr_t)1);
}

/* ---- sessions ------------------------------------------------------------- */

/* Moves the open DATA frame to the unacknowledged list. p->mu held. Without
 * memory the frame stays open (and keeps growing); nothing is lost. */
static void peer_close_frame(struct peer *p)
{
    if (!p->open_active)
        return;
    struct lframe *f = malloc(sizeof *f);
    if (f == NULL)
        return;
    p->open_active = false;
    if (tr__wire_data_finish(&p->open) != TR_OK) {
        free(f);
        return;
    }
    size_t len;
    const uint8_t *frame = tr__wire_buf_frame(&p->obuf, &len);
    /* The builder left room for the prefix in front of the frame. */
    uint8_t *at = (uint8_t *)(uintptr_t)frame - WIRE_PREFIX_LEN;
    tr__wire_prefix_put(at, (uint32_t)len);
    f->next = NULL;
    f->seq_last = p->next_seq - 1;
    f->storage = p->obuf.data;
    f->bytes = at;
    f->len = len + WIRE_PREFIX_LEN;
    tr__wire_buf_init(&p->obuf); /* the storage is the frame's now */
    if (p->unacked_tail != NULL)
        p->unacked_tail->next = f;
    else
        p->unacked = f;
    p->unacked_tail = f;
    if (p->next_send == NULL)
        p->next_send = f;
}

/* Drops the frames the peer acknowledged with ack. p->mu held. */
static void peer_acked(struct peer *p, uint64_t ack)
{
    if (ack > p->acked_seq)
        p->acked_seq = ack;
    while (p->unacked != NULL && p->unacked->seq_last <= ack) {
        struct lframe *f = p->unacked;
        p->unacked = f->next;
        if (p->unacked == NULL)
            p->unacked_tail = NULL;
        if (p->next_send == f)
            p->next_send = f->next;
        free(f->storage);
        free(f);
    }
}

/* Ends p's session: what was not acknowledged becomes dead letters and
 * numbering restarts. Hands back the actors to tell. rx_mu and mu held. */
static idmap peer_reset(struct peer *p)
{
    uint64_t lost = p->next_seq - 1 - p->acked_seq;
    frames_free(p->unacked);
    p->unacked = p->unacked_tail = p->next_send = NULL;
    p->open_active = false;
    p->next_seq = 1;
    p->acked_seq = 0;
    p->recv_seq = 0;
    p->ack_due = p->hb_due = p->hb_echo = false;
    atomic_fetch_add_explicit(&p->L->dead_letters, lost, memory_order_relaxed);
    idmap touched = p->touched;
    memset(&p->touched, 0, sizeof p->touched);
    return touched;
}

idmap tr__peer_down(struct peer *p, tr_err why)
{
    idmap touched = peer_reset(p);
    p->up = false;
    p->closing = false;
    p->peer_session = 0;
    /* A new session of ours: when the peer is back, it resets too. */
    p->my_session = tr__auth_random64();
    if (p->conn != NULL)
        tr__lconn_fail_locked(p->conn, p, why);
    return touched;
}

void tr__peer_tell(struct peer *p, idmap *touched)
{
    tr_runtime *rt = p->L->rt;
    for (uint32_t i = 0; i < touched->cap; i++) {
        uint64_t key = touched->tab[i].id;
        if (key == 0)
            continue;
        tr_ref r = {rt->node, (uint32_t)(key >> 32), (uint32_t)key};
        tr__signal(&p->ctx, r, TR_REF_NIL, MK_NODEDOWN, MF_SYSTEM, p->node, NULL);
    }
    idmap_free(touched);
}

/* The node that dialled c: this one, or its peer. */
static uint64_t dialler_of(const struct lconn *c, const struct peer *p)
{
    return c->dialled ? p->L->rt->node : p->node;
}

bool tr__peer_bind(struct lconn *c)
{
    struct links *L = c->L;
    pthread_mutex_lock(&L->mu);
    struct peer *p = NULL;
    if (!atomic_load_explicit(&L->leaving, memory_order_acquire)) {
        p = tr__peer_find(L, c->hs_node);
        if (p == NULL)
            p = tr__peer_new(L, c->hs_node, c->dialled ? L->fresh_session : c->hs_my_session);
    }
    if (p == NULL) {
        pthread_mutex_unlock(&L->mu);
        tr__lconn_fail(c, TR_ESTOPPED);
        return false;
    }
    pthread_mutex_lock(&p->rx_mu);
    pthread_mutex_lock(&p->mu);
    tr_err refuse = TR_OK;
    struct lconn *old = p->conn;
    if (!c->dialled && p->my_session != c->hs_my_session) {
        /* Our session changed since WELCOME named it: the dialler would
         * not know to reset. Let it dial again. */
        refuse = TR_ECANCELED;
    } else if (old != NULL && old->dialled != c->dialled && dialler_of(old, p) < dialler_of(c, p)) {
        /* Both nodes dialled each other: both keep the connection the
         * node with the smaller id dialled. */
        refuse = TR_EEXIST;
    }
    if (refuse != TR_OK) {
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_unlock(&p->rx_mu);
        pthread_mutex_unlock(&L->mu);
        tr__lconn_fail(c, refuse);
        return false;
    }
    if (old != NULL) /* a newer connection the same way: the old one is stale */
        tr__lconn_fail_locked(old, p, TR_EEXIST);

    idmap tell = {0};
    bool was_up = p->up, restarted = false;
    if (p->peer_session != 0 && p->peer_session != c->hs_peer_session) {
        tell = peer_reset(p); /* it restarted or declared us down */
        restarted = true;
    }
    p->peer_session = c->hs_peer_session;
    p->up = true;
    p->closing = false;
    snprintf(p->name, sizeof p->name, "%s", c->hs_name);
    p->conn = c;
    /* The reference is dropped when c is freed (tr__lconn_free). */
    atomic_fetch_add_explicit(&p->conn_refs, 1, memory_order_relaxed);
    /* release: pairs with the acquire loads of c->peer. */
    atomic_store_explicit(&c->peer, p, memory_order_release);
    atomic_store_explicit(&p->last_heard, tr__now_ns(), memory_order_relaxed);
    p->next_send = p->unacked; /* the old connection may have lost any of them */
    p->ack_due = true;
    pthread_mutex_lock(&c->mu);
    bool ok = c->state != LC_DEAD && (!c->dialled || tr__lconn_queue_auth(c, p->my_session));
    if (ok) {
        c->state = LC_UP;
        c->was_up = true;
        atomic_store_explicit(&c->up, true, memory_order_relaxed);
        tr__lconn_pump(c, p);
    }
    pthread_mutex_unlock(&c->mu);
    if (!ok)
        tr__lconn_fail_locked(c, p, TR_ENOMEM);
    char name[WIRE_NAME_MAX + 1];
    memcpy(name, p->name, sizeof name);
    pthread_mutex_unlock(&p->mu);
    if (tell.cap != 0)
        tr__peer_tell(p, &tell);
    /* Hook (remote.c): node monitors hear of a restart, and of the node
     * coming up (first time, or back after it was declared down). */
    if (ok && was_up && restarted)
        tr__node_event(&p->ctx, p->node, name, false);
    if (ok && (!was_up || restarted))
        tr__node_event(&p->ctx, p->node, name, true);
    pthread_mutex_unlock(&p->rx_mu);
    if (ok) {
        if (c->counted) {
            c->counted = false;
            L->handshaking--;
        }
        struct target *t = c->target;
        if (t != NULL) {
            t->node = p->node;
            t->ever_up = true;
            t->backoff_ns = LINK_BACKOFF_MIN_NS;
            t->last_err = TR_OK;
        }
        pthread_cond_broadcast(&L->cv);
        c->rmax = L->max_frame; /* the reader's own field: we are the reader */
    }
    pthread_mutex_unlock(&L->mu);
    return ok;
}

/* ---- sending -------------------------------------------------------------- */

static uint8_t env_kind(uint8_t kind)
{
    switch (kind) {
    case MK_LINK:
        return WIRE_ENV_LINK;
    case MK_UNLINK:
        return WIRE_ENV_UNLINK;
    case MK_EXIT:
        return WIRE_ENV_EXIT;
    case MK_MONITOR:
        return WIRE_ENV_MONITOR;
    case MK_DEMONITOR:
        return WIRE_ENV_DEMONITOR;
    case MK_DOWN:
        return WIRE_ENV_DOWN;
    case MK_STOP:
        return WIRE_ENV_STOP;
    case MK_REPLY:
        return WIRE_ENV_REPLY;
    default:
        return WIRE_ENV_USER;
    }
}

tr_err tr__link_send(tr_ctx *ctx, tr_ref to, tr_msg *m)
{
    struct links *L = ctx->rt->links;
    if (L == NULL)
        return TR_ENOROUTE;
    if (m->kind == MK_INIT || m->kind == MK_REQ_TIMEOUT || m->kind == MK_NODEDOWN)
        return TR_EINVAL;
    uint32_t deadline_ms = 0;
    if ((m->flags & MF_REQUEST) && m->deadline != 0) {
        uint64_t now = tr__now_ns();
        if (now >= m->deadline)
            return TR_ETIMEDOUT;
        uint64_t left = (m->deadline - now + 999999) / 1000000;
        deadline_ms = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
    }
    wire_env e = {env_kind(m->kind),
                  (uint32_t)(((m->flags & MF_REQUEST) && m->kind == MK_USER ? WIRE_EF_REQUEST : 0) |
                             (m->flags & MF_LINKEXIT ? WIRE_EF_LINKEXIT : 0) |
                             (m->flags & MF_SYSTEM ? WIRE_EF_CONTROL : 0)),
                  to,
                  m->from,
                  m->corr,
                  deadline_ms,
                  m->status,
                  m->tag[0] != '\0' ? m->tag : "tr.sys", /* signals have no tag of their own */
                  m->tag[0] != '\0' ? strlen(m->tag) : 6,
                  m->data,
                  m->len};
    if (e.kind == WIRE_ENV_EXIT || e.kind == WIRE_ENV_DOWN)
        e.flags &= ~(uint32_t)WIRE_EF_REQUEST;
    struct peer *p = tr__peer_find(L, to.node);
    if (p == NULL)
        return TR_ENOROUTE;
    pthread_mutex_lock(&p->mu);
    if (!p->up || p->closing || atomic_load_explicit(&p->node, memory_order_relaxed) != to.node) {
        pthread_mutex_unlock(&p->mu);
        return TR_ENOROUTE;
    }
    tr_err err = TR_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!p->open_active) {
            /* The frame carries our ack too, but it may wait behind others:
             * an ACK still due goes out on its own, first. */
            err = tr__wire_data_begin(&p->open, &p->obuf, p->next_seq, p->recv_seq, L->max_frame);
            if (err != TR_OK)
                break;
            p->open_active = true;
        }
        err = tr__wire_data_add(&p->open, &e);
        if (err != TR_ETOOBIG || p->open.count == 0)
            break;
        peer_close_frame(p); /* full: start another */
        if (p->open_active) {
            err = TR_ENOMEM; /* it could not be closed */
            break;
        }
    }
    if (err == TR_OK) {
        p->next_seq++;
        if ((m->kind == MK_LINK || m->kind == MK_MONITOR) && m->from.node == ctx->rt->node)
            peer_touch(p, m->from);
        struct lconn *c = p->conn;
        if (c != NULL) {
            pthread_mutex_lock(&c->mu);
            tr__lconn_pump(c, p);
            pthread_mutex_unlock(&c->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (err == TR_OK)
        tr__msg_release(ctx, m);
    return err;
}

void tr__link_forget(tr_runtime *rt, uint64_t node)
{
    struct links *L = rt->links;
    if (L == NULL)
        return;
    pthread_mutex_lock(&L->mu);
    struct peer *p = tr__peer_find(L, node);
    if (p == NULL) {
        pthread_mutex_unlock(&L->mu);
        tr__node_forget(rt, node);
        return;
    }
    pthread_mutex_lock(&p->rx_mu);
    pthread_mutex_lock(&p->mu);
    bool was_up = p->up;
    char name[WIRE_NAME_MAX + 1];
    memcpy(name, p->name, sizeof name);
    idmap tell = was_up ? tr__peer_down(p, TR_ESTOPPED) : (idmap){0};
    pthread_mutex_unlock(&p->mu);
    if (tell.cap != 0)
        tr__peer_tell(p, &tell);
    if (was_up)
        tr__node_event(&p->ctx, node, name, false);
    /* Retire it: the session's buffers go now, the record when reused
     * (rx_mu and links.mu, held throughout, keep it ours until then). */
    pthread_mutex_lock(&p->mu);
    tr__wire_buf_fini(&p->obuf);
    tr__wire_buf_init(&p->obuf);
    tr__wire_buf_fini(&p->cbuf);
    tr__wire_buf_init(&p->cbuf);
    atomic_store_explicit(&p->node, 0, memory_order_release);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->rx_mu);
    pthread_mutex_unlock(&L->mu);
    tr__node_forget(rt, node);
}

bool tr__link_known(tr_runtime *rt, uint64_t node)
{
    struct links *L = rt->links;
    struct peer *p = L != NULL ? tr__peer_find(L, node) : NULL;
    if (p == NULL)
        return false;
    pthread_mutex_lock(&p->mu);
    bool up = p->up && atomic_load_explicit(&p->node, memory_order_relaxed) == node;
    pthread_mutex_unlock(&p->mu);
    return up;
}

void tr__peer_fill_ack(struct peer *p, struct lconn *c)
{
    if (p->ack_due && tr__wire_encode_ack(&p->cbuf, p->recv_seq, p->L->max_frame) == TR_OK &&
        tr__lconn_put_frame(c, &p->cbuf))
        p->ack_due = false;
}

void tr__peer_fill(struct peer *p, struct lconn *c)
{
    size_t max = p->L->max_frame;
    if (p->hb_echo && tr__wire_encode_heartbeat(&p->cbuf, p->hb_nonce, true, max) == TR_OK &&
        tr__lconn_put_frame(c, &p->cbuf))
        p->hb_echo = false;
    if (p->hb_due && tr__wire_encode_heartbeat(&p->cbuf, p->hb_nonce, false, max) == TR_OK &&
        tr__lconn_put_frame(c, &p->cbuf))
        p->hb_due = false;
    tr__peer_fill_ack(p, c);
    for (;;) {
        if (p->next_send == NULL) {
            peer_close_frame(p);
            if (p->next_send == NULL)
                break;
        }
        struct lframe *f = p->next_send;
        if (c->wlen != 0 && c->wlen + f->len > LINK_WBUF_MAX)
            break;
        if (!tr__lconn_put(c, f->bytes, f->len))
            break;
        p->next_send = f->next;
    }
}

/* ---- receiving ------------------------------------------------------------ */

static uint8_t msg_kind(uint32_t kind)
{
    static const uint8_t map[] = {
        [WIRE_ENV_USER] = MK_USER,       [WIRE_ENV_LINK] = MK_LINK,
        [WIRE_ENV_UNLINK] = MK_UNLINK,   [WIRE_ENV_EXIT] = MK_EXIT,
        [WIRE_ENV_MONITOR] = MK_MONITOR, [WIRE_ENV_DEMONITOR] = MK_DEMONITOR,
        [WIRE_ENV_DOWN] = MK_DOWN,       [WIRE_ENV_STOP] = MK_STOP,
        [WIRE_ENV_REPLY] = MK_REPLY,
    };
    return map[kind];
}

/* Turns an envelope into a local message and hands it on. rx_mu held. */
static void peer_deliver(struct peer *p, const wire_env *e)
{
    tr_ctx *ctx = &p->ctx;
    if (e->to.node != p->L->rt->node) {
        ctr_add(&ctx->ctr.dead_letters, 1); /* not for us: no forwarding */
        return;
    }
    tr_msg *m = tr__msg_alloc(ctx);
    if (m == NULL || (e->payload_len != 0 && tr__msg_reserve(m, e->payload_len) != TR_OK)) {
        tr__msg_release(ctx, m);
        ctr_add(&ctx->ctr.dead_letters, 1);
        return;
    }
    memcpy(m->tag, e->tag, e->tag_len);
    m->tag[e->tag_len] = '\0';
    if (e->payload_len != 0)
        memcpy(m->data, e->payload, e->payload_len);
    m->len = (uint32_t)e->payload_len;
    m->kind = msg_kind(e->kind);
    m->flags = (uint8_t)((m->flags & MF_HEAPBUF) | (e->flags & WIRE_EF_REQUEST ? MF_REQUEST : 0) |
                         (e->flags & WIRE_EF_LINKEXIT ? MF_LINKEXIT : 0) |
                         (e->flags & WIRE_EF_CONTROL ? MF_SYSTEM : 0));
    m->from = e->from;
    m->corr = e->corr;
    m->status = (int16_t)e->status;
    m->deadline = e->deadline_ms != 0 ? tr__now_ns() + (uint64_t)e->deadline_ms * 1000000u : 0;
    if (m->kind == MK_LINK || m->kind == MK_MONITOR) {
        pthread_mutex_lock(&p->mu);
        peer_touch(p, e->to); /* it must hear if the linker's node goes */
        pthread_mutex_unlock(&p->mu);
    }
    tr__deliver_inbound(ctx, e->to, m);
}

/* An acknowledgement from c: false when it acknowledges what was never
 * sent (a protocol error). p->mu held. */
static bool peer_ack(struct peer *p, struct lconn *c, uint64_t ack)
{
    if (p->conn != c)
        return true; /* from a connection being replaced: the next one says it again */
    if (ack >= p->next_seq)
        return false;
    peer_acked(p, ack);
    return true;
}

static bool peer_data(struct peer *p, struct lconn *c, const wire_frame *f)
{
    pthread_mutex_lock(&p->rx_mu);
    pthread_mutex_lock(&p->mu);
    bool current = p->conn == c && !p->closing;
    uint64_t recv = p->recv_seq;
    pthread_mutex_unlock(&p->mu);
    if (!current) {
        /* c was replaced or the peer declared down: its frames no longer
         * count (the session moved on). Or we said BYE: the peer counts
         * what we did not acknowledge as lost, so it is not delivered. */
        pthread_mutex_unlock(&p->rx_mu);
        return true;
    }
    wire_env_iter it;
    wire_env e;
    uint64_t seq;
    tr__wire_env_iter_init(&it, f);
    while (tr__wire_env_next(&it, &e, &seq) == TR_OK) {
        if (seq <= recv)
            continue; /* a duplicate from a resend */
        if (seq != recv + 1)
            break; /* a gap: wait for the resend */
        peer_deliver(p, &e);
        recv = seq;
    }
    pthread_mutex_lock(&p->mu);
    p->recv_seq = recv; /* delivered, whatever happened to c meanwhile */
    bool ok = peer_ack(p, c, f->ack);
    if (ok && p->conn == c) {
        p->ack_due = true;
        pthread_mutex_lock(&c->mu);
        tr__lconn_pump(c, p);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->rx_mu);
    return ok;
}

bool tr__peer_frame(struct lconn *c, const wire_frame *f)
{
    struct peer *p = atomic_load_explicit(&c->peer, memory_order_acquire);
    atomic_store_explicit(&p->last_heard, tr__now_ns(), memory_order_relaxed);
    bool ok = true;
    switch (f->kind) {
    case WIRE_DATA:
        ok = peer_data(p, c, f);
        break;
    case WIRE_ACK:
        pthread_mutex_lock(&p->mu);
        ok = peer_ack(p, c, f->ack);
        pthread_mutex_unlock(&p->mu);
        break;
    case WIRE_HEARTBEAT:
        if (f->echo)
            break;
        pthread_mutex_lock(&p->mu);
        if (p->conn == c) {
            p->hb_echo = true;
            p->hb_nonce = f->nonce;
            pthread_mutex_lock(&c->mu);
            tr__lconn_pump(c, p);
            pthread_mutex_unlock(&c->mu);
        }
        pthread_mutex_unlock(&p->mu);
        break;
    case WIRE_BYE:
        if (f->reason != 0 && f->reason != TR_ESTOPPED) {
            /* Only this connection ends; the peer dials again or waits. */
            tr__lconn_fail(c, TR_ECANCELED);
            return false;
        }
        /* The node leaves: links and monitors across fire now. */
        pthread_mutex_lock(&p->rx_mu);
        pthread_mutex_lock(&p->mu);
        idmap tell = {0};
        bool went_down = p->conn == c && p->up;
        char name[WIRE_NAME_MAX + 1];
        memcpy(name, p->name, sizeof name);
        if (p->conn == c)
            tell = tr__peer_down(p, TR_ESTOPPED);
        pthread_mutex_unlock(&p->mu);
        tr__peer_tell(p, &tell);
        if (went_down) /* hook (remote.c): node monitors */
            tr__node_event(&p->ctx, p->node, name, false);
        pthread_mutex_unlock(&p->rx_mu);
        tr__lconn_fail(c, TR_ESTOPPED);
        return false;
    default:
        break;
    }
    if (!ok) {
        atomic_fetch_add_explicit(&c->L->bad_frames, 1, memory_order_relaxed);
        tr__lconn_fail(c, TR_EBADMSG);
    }
    return ok;
}
