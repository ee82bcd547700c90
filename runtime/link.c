/*
 * link.c — links between runtimes ("nodes") over nng: inproc://, ipc://
 * and tcp://, one link layer for all of them.
 *
 * Each node has one PULL socket, listening on every URL it was given, and
 * one PUSH socket per peer, dialled at the peer's advertised URL. A send to
 * an actor on another node becomes an envelope in the peer's open DATA
 * frame; while a frame is on its way the next one fills up, so a busy link
 * batches. Envelopes are numbered per link; the peer acknowledges them
 * cumulatively, and frames stay here until acknowledged, because nng frees
 * what a broken connection held: after a reconnect everything unacknowledged
 * is sent again and the receiver drops what it already has. Frames are
 * decoded as hostile input (wire.c).
 *
 * A ticker thread sends heartbeats on quiet links and declares a peer down
 * when nothing was heard from it for the detection time: every local actor
 * that linked to or monitored one of its actors gets MK_NODEDOWN (its links
 * and monitors fire with TR_EXIT_NOCONNECTION), and sends to it fail with
 * TR_ENOROUTE until it is heard again (heartbeats go on, so each side can
 * hear the other). Each runtime names its session in
 * HELLO: a peer that comes back with the same session only lost its
 * connection, and what it had not acknowledged is sent again; one that
 * comes back with a new session restarted, so what was in flight is
 * counted as dead letters and numbering starts again from 1. This file
 * must not run actor code: it hands inbound messages to mailboxes.
 */
#include "internal.h"
#include "wire.h"

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINK_PIPES_MAX 256
#define LINK_HEARTBEAT_NS 200000000ull /* a quiet link sends a heartbeat this often */
#define LINK_DETECT_NS 2000000000ull   /* silence after which a peer is down */

struct frame {
    struct frame *next;
    uint64_t seq_last; /* sequence number of its last envelope */
    size_t len;
    uint8_t bytes[];
};

struct peer {
    struct peer *next;
    struct links *L;
    uint64_t node; /* 0 until the handshake names it (L->mu) */
    char url[WIRE_URL_MAX + 1];
    char name[WIRE_NAME_MAX + 1];
    uint64_t peer_session;       /* the peer's session, from its HELLO (L->mu) */
    bool welcomed;               /* handshake done (L->mu) */
    bool down;                   /* declared down; back at its next HELLO (L->mu) */
    bool forgotten;              /* closed for good (tr__link_forget) (L->mu) */
    _Atomic uint64_t last_heard; /* monotonic ns of the last frame from it */
    nng_socket push;
    nng_aio *send_aio;
    nng_aio *kick_aio; /* runs peer_kick outside nng's pipe callbacks */
    bool kick_pending; /* kick_aio is busy (mu) */

    pthread_mutex_t mu; /* everything below */
    wire_buf obuf;      /* the open DATA frame */
    wire_data open;
    bool open_active;
    struct frame *unacked, *unacked_tail; /* sent or waiting, oldest first */
    struct frame *next_send;              /* first frame not yet handed to nng */
    struct frame *inflight;               /* the data frame send_aio carries, if any */
    uint64_t rewinds;                     /* reconnects seen (each rewinds next_send) */
    uint64_t inflight_rewinds;            /* rewinds when inflight was handed over */
    bool sending;                         /* send_aio busy */
    bool hello_due;                       /* send HELLO (or WELCOME) before anything else */
    uint32_t hello_kind;
    bool ack_due;         /* the peer should hear our recv_seq */
    bool hb_due, hb_echo; /* a heartbeat (or its echo) to send */
    uint64_t hb_nonce;
    wire_buf cbuf;      /* control frames (HELLO, ACK, HEARTBEAT) */
    uint64_t next_seq;  /* number of the next envelope we send */
    uint64_t acked_seq; /* highest of ours the peer acknowledged */
    uint64_t recv_seq;  /* highest envelope received in order */
    uint64_t session;   /* ours toward this peer, sent in HELLO */
    uint64_t last_sent; /* monotonic ns of our last frame to it */
    idmap touched;      /* local actors linked to or monitoring its actors */
    uint64_t touched_n;
};

struct links {
    tr_runtime *rt;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a handshake completed; the ticker's sleep */
    bool open;         /* PULL socket exists */
    _Atomic bool closing;
    nng_socket pull;
    nng_aio *recv_aio;
    char url[WIRE_URL_MAX + 1]; /* the first URL we listen on: advertised */
    uint64_t session_seed;
    pthread_t ticker;
    bool ticker_running;
    size_t max_frame;
    struct peer *peers;
    struct {
        uint32_t pipe;
        struct peer *peer;
    } pipes[LINK_PIPES_MAX]; /* which peer sent on which inbound pipe */
    tr_ctx ctx;              /* the receive callback's context */
    tr_ctx tick_ctx;         /* the ticker's context */
};

/* ---- sending ------------------------------------------------------------- */

/* Hands a frame to nng; f is the data frame it is, NULL for control. */
static void peer_start_send(struct peer *p, struct frame *f, const uint8_t *bytes, size_t len)
{
    nng_msg *msg;
    if (nng_msg_alloc(&msg, len) != 0) {
        p->sending = false;
        return;
    }
    memcpy(nng_msg_body(msg), bytes, len);
    p->sending = true;
    p->inflight = f;
    p->inflight_rewinds = p->rewinds;
    p->last_sent = tr__now_ns();
    nng_aio_set_msg(p->send_aio, msg);
    nng_send_aio(p->push, p->send_aio);
}

/* Moves the open DATA frame to the unacknowledged list. p->mu held. */
static void peer_close_frame(struct peer *p)
{
    if (!p->open_active)
        return;
    p->open_active = false;
    if (tr__wire_data_finish(&p->open) != TR_OK)
        return;
    size_t len;
    const uint8_t *bytes = tr__wire_buf_frame(&p->obuf, &len);
    struct frame *f = malloc(sizeof *f + len);
    if (f == NULL)
        return; /* envelopes lost for lack of memory: the peer sees a gap */
    f->next = NULL;
    f->seq_last = p->next_seq - 1;
    f->len = len;
    memcpy(f->bytes, bytes, len);
    if (p->unacked_tail != NULL)
        p->unacked_tail->next = f;
    else
        p->unacked = f;
    p->unacked_tail = f;
    if (p->next_send == NULL)
        p->next_send = f;
}

/* Starts the next send if none is in flight. p->mu held. */
static void peer_kick(struct peer *p)
{
    if (p->sending || atomic_load_explicit(&p->L->closing, memory_order_acquire))
        return;
    if (p->hello_due) {
        struct links *L = p->L;
        wire_hello h = {L->rt->node, L->rt->name, strlen(L->rt->name), 0, NULL, 0,
                        p->session,  L->url,      strlen(L->url)};
        p->hello_due = false;
        if (tr__wire_encode_hello(&p->cbuf, p->hello_kind, &h, L->max_frame) == TR_OK) {
            size_t len;
            const uint8_t *b = tr__wire_buf_frame(&p->cbuf, &len);
            peer_start_send(p, NULL, b, len);
            return;
        }
    }
    if (p->next_send == NULL)
        peer_close_frame(p);
    if (p->next_send != NULL) {
        peer_start_send(p, p->next_send, p->next_send->bytes, p->next_send->len);
        return;
    }
    if (p->hb_due) {
        p->hb_due = false;
        if (tr__wire_encode_heartbeat(&p->cbuf, p->hb_nonce, p->hb_echo, p->L->max_frame) ==
            TR_OK) {
            size_t len;
            const uint8_t *b = tr__wire_buf_frame(&p->cbuf, &len);
            peer_start_send(p, NULL, b, len);
            return;
        }
    }
    if (p->ack_due) {
        p->ack_due = false;
        if (tr__wire_encode_ack(&p->cbuf, p->recv_seq, p->L->max_frame) == TR_OK) {
            size_t len;
            const uint8_t *b = tr__wire_buf_frame(&p->cbuf, &len);
            peer_start_send(p, NULL, b, len);
        }
    }
}

static void peer_send_done(void *arg)
{
    struct peer *p = arg;
    int rv = nng_aio_result(p->send_aio);
    pthread_mutex_lock(&p->mu);
    if (rv != 0)
        nng_msg_free(nng_aio_get_msg(p->send_aio));
    /* Move past the frame just sent, unless a reconnect rewound the queue
     * meanwhile (then it goes again, and the peer drops the duplicate). */
    if (rv == 0 && p->inflight != NULL && p->inflight_rewinds == p->rewinds)
        p->next_send = p->inflight->next;
    p->inflight = NULL;
    p->sending = false;
    if (rv != NNG_ECLOSED)
        peer_kick(p);
    pthread_mutex_unlock(&p->mu);
}

/* A new connection to the peer: it may have lost what the old one held, so
 * introduce ourselves on it and send everything unacknowledged again. */
static void peer_pipe_added(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    (void)pipe;
    (void)ev;
    struct peer *p = arg;
    pthread_mutex_lock(&p->mu);
    p->hello_due = true;
    p->next_send = p->unacked;
    p->rewinds++;
    /* Sending from inside a pipe callback can trip nng; do it from a task.
     * An aio takes one operation at a time: start it only when idle. */
    bool start = !p->kick_pending;
    p->kick_pending = true;
    pthread_mutex_unlock(&p->mu);
    if (start)
        nng_sleep_aio(0, p->kick_aio);
}

static void peer_kick_later(void *arg)
{
    struct peer *p = arg;
    int rv = nng_aio_result(p->kick_aio);
    pthread_mutex_lock(&p->mu);
    p->kick_pending = false;
    if (rv == 0)
        peer_kick(p);
    pthread_mutex_unlock(&p->mu);
}

/* Drops frames the peer has acknowledged. p->mu held. */
static void peer_acked(struct peer *p, uint64_t ack)
{
    if (ack > p->acked_seq && ack < p->next_seq)
        p->acked_seq = ack;
    while (p->unacked != NULL && p->unacked->seq_last <= ack && p->unacked != p->next_send &&
           p->unacked != p->inflight) {
        struct frame *f = p->unacked;
        p->unacked = f->next;
        if (p->unacked == NULL)
            p->unacked_tail = NULL;
        free(f);
    }
}

static struct peer *peer_new(struct links *L, const char *url, uint32_t hello_kind)
{
    struct peer *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->L = L;
    snprintf(p->url, sizeof p->url, "%s", url);
    pthread_mutex_init(&p->mu, NULL);
    tr__wire_buf_init(&p->obuf);
    tr__wire_buf_init(&p->cbuf);
    p->next_seq = 1;
    p->hello_kind = hello_kind;
    p->hello_due = true; /* the first frame on every connection introduces us */
    p->session = L->session_seed++;
    atomic_store_explicit(&p->last_heard, tr__now_ns(), memory_order_relaxed);
    if (nng_push0_open(&p->push) != 0)
        goto fail_mutex;
    if (nng_aio_alloc(&p->send_aio, peer_send_done, p) != 0)
        goto fail_socket;
    if (nng_aio_alloc(&p->kick_aio, peer_kick_later, p) != 0) {
        nng_aio_free(p->send_aio);
        goto fail_socket;
    }
    nng_socket_set_ms(p->push, NNG_OPT_RECONNMINT, 10);
    nng_socket_set_ms(p->push, NNG_OPT_RECONNMAXT, 1000);
    nng_pipe_notify(p->push, NNG_PIPE_EV_ADD_POST, peer_pipe_added, p);
    if (nng_dial(p->push, url, NULL, NNG_FLAG_NONBLOCK) != 0)
        goto fail_aio;
    return p;
fail_aio:
    nng_aio_free(p->kick_aio);
    nng_aio_free(p->send_aio);
fail_socket:
    nng_close(p->push);
fail_mutex:
    pthread_mutex_destroy(&p->mu);
    free(p);
    return NULL;
}

static void peer_free(struct peer *p)
{
    nng_aio_stop(p->kick_aio);
    nng_aio_stop(p->send_aio);
    nng_close(p->push);
    nng_aio_free(p->kick_aio);
    nng_aio_free(p->send_aio);
    while (p->unacked != NULL) {
        struct frame *f = p->unacked;
        p->unacked = f->next;
        free(f);
    }
    tr__wire_buf_fini(&p->obuf);
    tr__wire_buf_fini(&p->cbuf);
    idmap_free(&p->touched);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Remembers that local actor r linked to or monitors something on p's
 * node, so it hears if the node goes. p->mu held. */
static void peer_touch(struct peer *p, tr_ref r)
{
    uint64_t key = ((uint64_t)r.id << 32) | r.incarnation;
    if (idmap_take(&p->touched, key) == NULL)
        p->touched_n++;
    if (!idmap_put(&p->touched, key, (void *)(uintptr_t)1))
        p->touched_n--;
}

/* Starts a new session with p: what was in flight is lost (counted as dead
 * letters) and numbering restarts. Hands back the actors to tell, which the
 * caller signals once it holds no lock. p->mu held. */
static idmap peer_reset(struct peer *p, tr_ctx *ctx)
{
    uint64_t lost = p->next_seq - 1 - p->acked_seq;
    p->open_active = false;
    while (p->unacked != NULL) {
        struct frame *f = p->unacked;
        p->unacked = f->next;
        free(f);
    }
    p->unacked_tail = p->next_send = p->inflight = NULL;
    p->next_seq = 1;
    p->acked_seq = 0;
    p->recv_seq = 0;
    p->hello_due = true;
    ctr_add(&ctx->ctr.dead_letters, lost);
    idmap touched = p->touched;
    memset(&p->touched, 0, sizeof p->touched);
    p->touched_n = 0;
    return touched;
}

/* Tells every actor in touched that node's link was lost. */
static void tell_node_down(tr_ctx *ctx, tr_runtime *rt, idmap *touched, uint64_t node)
{
    for (uint32_t i = 0; i < touched->cap; i++) {
        uint64_t key = touched->tab[i].id;
        if (key == 0)
            continue;
        tr_ref r = {rt->node, (uint32_t)(key >> 32), (uint32_t)key};
        tr__signal(ctx, r, TR_REF_NIL, MK_NODEDOWN, MF_SYSTEM, node, NULL);
    }
    idmap_free(touched);
}

/* L->mu held. */
static struct peer *peer_by_node(struct links *L, uint64_t node)
{
    for (struct peer *p = L->peers; p != NULL; p = p->next)
        if (p->node == node && p->welcomed && !p->down)
            return p;
    return NULL;
}

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
    if (m->kind == MK_INIT || m->kind == MK_REQ_TIMEOUT)
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
    pthread_mutex_lock(&L->mu);
    struct peer *p = peer_by_node(L, to.node);
    pthread_mutex_unlock(&L->mu);
    if (p == NULL)
        return TR_ENOROUTE;
    pthread_mutex_lock(&p->mu);
    tr_err err = TR_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!p->open_active) {
            err = tr__wire_data_begin(&p->open, &p->obuf, p->next_seq, p->recv_seq, L->max_frame);
            if (err != TR_OK)
                break;
            p->open_active = true;
            p->ack_due = false; /* the frame carries our ack */
        }
        err = tr__wire_data_add(&p->open, &e);
        if (err != TR_ETOOBIG || p->open.count == 0)
            break;
        peer_close_frame(p); /* full: start another */
    }
    if (err == TR_OK) {
        p->next_seq++;
        if ((m->kind == MK_LINK || m->kind == MK_MONITOR) && m->from.node == ctx->rt->node)
            peer_touch(p, m->from);
        peer_kick(p);
    }
    pthread_mutex_unlock(&p->mu);
    if (err == TR_OK)
        tr__msg_release(ctx, m);
    return err;
}

bool tr__link_known(tr_runtime *rt, uint64_t node)
{
    struct links *L = rt->links;
    if (L == NULL)
        return false;
    pthread_mutex_lock(&L->mu);
    bool known = peer_by_node(L, node) != NULL;
    pthread_mutex_unlock(&L->mu);
    return known;
}

/* ---- receiving ----------------------------------------------------------- */

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

/* Turns an envelope into a local message and hands it on. */
static void link_deliver(struct links *L, struct peer *p, const wire_env *e)
{
    tr_ctx *ctx = &L->ctx;
    if (e->to.node != L->rt->node) {
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

static void link_data(struct links *L, struct peer *p, const wire_frame *f)
{
    wire_env_iter it;
    wire_env e;
    uint64_t seq;
    tr__wire_env_iter_init(&it, f);
    uint64_t recv = p->recv_seq; /* only this callback writes it */
    while (tr__wire_env_next(&it, &e, &seq) == TR_OK) {
        if (seq <= recv)
            continue; /* a duplicate from a resend */
        if (seq != recv + 1)
            break; /* a gap: wait for the resend */
        link_deliver(L, p, &e);
        recv = seq;
    }
    pthread_mutex_lock(&p->mu);
    p->recv_seq = recv;
    peer_acked(p, f->ack);
    p->ack_due = true;
    peer_kick(p);
    pthread_mutex_unlock(&p->mu);
}

/* L->mu held: the peer that sent on pipe id, if known. */
static struct peer *peer_by_pipe(struct links *L, uint32_t id)
{
    for (int i = 0; i < LINK_PIPES_MAX; i++)
        if (L->pipes[i].pipe == id)
            return L->pipes[i].peer;
    return NULL;
}

static void pipe_bind(struct links *L, uint32_t id, struct peer *p)
{
    int free_slot = -1;
    for (int i = 0; i < LINK_PIPES_MAX; i++) {
        if (L->pipes[i].pipe == id) {
            L->pipes[i].peer = p;
            return;
        }
        if (L->pipes[i].pipe == 0 && free_slot < 0)
            free_slot = i;
    }
    if (free_slot >= 0) {
        L->pipes[free_slot].pipe = id;
        L->pipes[free_slot].peer = p;
    }
}

static void pull_pipe_removed(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    (void)ev;
    struct links *L = arg;
    pthread_mutex_lock(&L->mu);
    for (int i = 0; i < LINK_PIPES_MAX; i++)
        if (L->pipes[i].pipe == (uint32_t)nng_pipe_id(pipe))
            L->pipes[i].pipe = 0;
    pthread_mutex_unlock(&L->mu);
}

/* HELLO: a node introduces itself (again, on a new connection). Answers
 * with WELCOME over our own connection to it, opened at its URL. */
static void link_hello(struct links *L, uint32_t pipe, const wire_frame *f)
{
    const wire_hello *h = &f->hello;
    char url[WIRE_URL_MAX + 1];
    memcpy(url, h->url, h->url_len);
    url[h->url_len] = '\0';
    pthread_mutex_lock(&L->mu);
    struct peer *p = NULL;
    for (struct peer *q = L->peers; q != NULL; q = q->next)
        if (q->node == h->node_id || (q->node == 0 && strcmp(q->url, url) == 0))
            p = q;
    bool answer = f->kind == WIRE_HELLO;
    if (p == NULL && answer && !atomic_load_explicit(&L->closing, memory_order_relaxed)) {
        p = peer_new(L, url, WIRE_WELCOME);
        if (p != NULL) {
            p->next = L->peers;
            L->peers = p;
        }
    }
    if (p == NULL && !answer) {
        /* A WELCOME for a connect we started: match it by the URL dialled,
         * else take the oldest connect still waiting. */
        for (struct peer *q = L->peers; q != NULL; q = q->next)
            if (q->node == 0)
                p = q;
    }
    idmap tell = {0};
    uint64_t tell_node = 0;
    if (p != NULL) {
        bool was_up = p->welcomed && !p->down; /* for the node-event hooks below */
        pthread_mutex_lock(&p->mu);
        if (p->welcomed && p->peer_session != h->incarnation) {
            /* The peer restarted: what was in flight to it is lost, and
             * anyone linked to its old actors hears so (unless its going
             * down was noticed already). */
            tell = peer_reset(p, &L->ctx);
            tell_node = p->node;
        }
        p->down = false;
        atomic_store_explicit(&p->last_heard, tr__now_ns(), memory_order_relaxed);
        peer_kick(p);
        pthread_mutex_unlock(&p->mu);
        /* Hook (remote.c): a restarted peer's old session is down... */
        if (was_up && tell_node != 0)
            tr__node_event(&L->ctx, p->node, p->name, false);
        p->node = h->node_id;
        p->peer_session = h->incarnation;
        memcpy(p->name, h->name, h->name_len);
        p->name[h->name_len] = '\0';
        p->welcomed = true;
        /* ...and it is up, as is a peer first welcomed or back from down. */
        if (!was_up || tell_node != 0)
            tr__node_event(&L->ctx, p->node, p->name, true);
        pipe_bind(L, pipe, p);
        pthread_cond_broadcast(&L->cv);
    }
    pthread_mutex_unlock(&L->mu);
    if (tell_node != 0)
        tell_node_down(&L->ctx, L->rt, &tell, tell_node);
}

static void link_recv_done(void *arg)
{
    struct links *L = arg;
    if (nng_aio_result(L->recv_aio) != 0) {
        if (!atomic_load_explicit(&L->closing, memory_order_acquire))
            nng_recv_aio(L->pull, L->recv_aio);
        return;
    }
    nng_msg *msg = nng_aio_get_msg(L->recv_aio);
    uint32_t pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg));
    wire_frame f;
    tr_err err = tr__wire_decode(&f, nng_msg_body(msg), nng_msg_len(msg), L->max_frame);
    if (err != TR_OK) {
        ctr_add(&L->ctx.ctr.dead_letters, 1); /* a bad frame: counted and dropped */
    } else if (f.kind == WIRE_HELLO || f.kind == WIRE_WELCOME) {
        link_hello(L, pipe, &f);
    } else {
        pthread_mutex_lock(&L->mu);
        struct peer *p = peer_by_pipe(L, pipe);
        if (p != NULL && p->down) {
            p->down = false;                                 /* heard again: the link is back */
            tr__node_event(&L->ctx, p->node, p->name, true); /* hook (remote.c) */
        }
        pthread_mutex_unlock(&L->mu);
        /* Frames from a connection that has not introduced itself are
         * dropped unacknowledged: they come again after the HELLO. */
        if (p != NULL)
            atomic_store_explicit(&p->last_heard, tr__now_ns(), memory_order_relaxed);
        if (p != NULL && f.kind == WIRE_DATA) {
            link_data(L, p, &f);
        } else if (p != NULL && f.kind == WIRE_ACK) {
            pthread_mutex_lock(&p->mu);
            peer_acked(p, f.ack);
            pthread_mutex_unlock(&p->mu);
        } else if (p != NULL && f.kind == WIRE_HEARTBEAT && !f.echo) {
            pthread_mutex_lock(&p->mu);
            p->hb_due = true;
            p->hb_echo = true;
            p->hb_nonce = f.nonce;
            peer_kick(p);
            pthread_mutex_unlock(&p->mu);
        }
    }
    nng_msg_free(msg);
    if (!atomic_load_explicit(&L->closing, memory_order_acquire))
        nng_recv_aio(L->pull, L->recv_aio);
}

/* Closes the link to a node that is gone for good (a process actor's
 * ended child): no reconnects, no heartbeats, its frames freed. */
void tr__link_forget(tr_runtime *rt, uint64_t node)
{
    struct links *L = rt->links;
    if (L == NULL)
        return;
    pthread_mutex_lock(&L->mu);
    struct peer *p = NULL;
    for (struct peer *q = L->peers; q != NULL; q = q->next)
        if (q->node == node && q->welcomed && !q->forgotten)
            p = q;
    if (p != NULL) {
        p->forgotten = true;
        p->down = true;
    }
    pthread_mutex_unlock(&L->mu);
    if (p == NULL)
        return;
    nng_close(p->push);
    nng_aio_stop(p->kick_aio);
    nng_aio_stop(p->send_aio);
    pthread_mutex_lock(&p->mu);
    while (p->unacked != NULL) {
        struct frame *f = p->unacked;
        p->unacked = f->next;
        free(f);
    }
    p->unacked_tail = p->next_send = p->inflight = NULL;
    p->open_active = false;
    idmap_free(&p->touched);
    p->touched_n = 0;
    pthread_mutex_unlock(&p->mu);
}

/* ---- liveness ------------------------------------------------------------ */

/* Every heartbeat period: a heartbeat on each quiet link, and a peer that
 * stayed silent past the detection time is declared down. */
static void *link_ticker(void *arg)
{
    struct links *L = arg;
    pthread_mutex_lock(&L->mu);
    while (!atomic_load_explicit(&L->closing, memory_order_acquire)) {
        uint64_t now = tr__now_ns();
        struct timespec ts = {(time_t)((now + LINK_HEARTBEAT_NS) / 1000000000u),
                              (long)((now + LINK_HEARTBEAT_NS) % 1000000000u)};
        pthread_cond_timedwait(&L->cv, &L->mu, &ts);
        if (atomic_load_explicit(&L->closing, memory_order_acquire))
            break;
        now = tr__now_ns();
        for (struct peer *p = L->peers; p != NULL; p = p->next) {
            if (!p->welcomed || p->forgotten)
                continue;
            uint64_t heard = atomic_load_explicit(&p->last_heard, memory_order_relaxed);
            pthread_mutex_lock(&p->mu);
            if (!p->down && now - heard > LINK_DETECT_NS) {
                p->down = true;
                idmap tell = p->touched;
                memset(&p->touched, 0, sizeof p->touched);
                p->touched_n = 0;
                pthread_mutex_unlock(&p->mu);
                /* Signals only push to mailboxes; no lock of ours is taken
                 * below, so holding L->mu here is safe. */
                tell_node_down(&L->tick_ctx, L->rt, &tell, p->node);
                tr__node_event(&L->tick_ctx, p->node, p->name, false); /* hook (remote.c) */
                continue;
            }
            if (now - p->last_sent >= LINK_HEARTBEAT_NS && !p->sending) {
                p->hb_due = true;
                p->hb_echo = false;
                p->hb_nonce = now;
                peer_kick(p);
            }
            pthread_mutex_unlock(&p->mu);
        }
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

/* ---- set-up and teardown ------------------------------------------------- */

static tr_err link_errno(int rv)
{
    switch (rv) {
    case NNG_ENOMEM:
        return TR_ENOMEM;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
        return TR_EINVAL;
    case NNG_EADDRINUSE:
        return TR_EBUSY;
    case NNG_ETIMEDOUT:
        return TR_ETIMEDOUT;
    default:
        return TR_ESYS;
    }
}

/* Opens the node's PULL socket on first use. L->mu held. */
static tr_err links_open(struct links *L)
{
    if (L->open)
        return TR_OK;
    int rv = nng_pull0_open(&L->pull);
    if (rv != 0)
        return link_errno(rv);
    nng_socket_set_size(L->pull, NNG_OPT_RECVMAXSZ, L->max_frame);
    nng_pipe_notify(L->pull, NNG_PIPE_EV_REM_POST, pull_pipe_removed, L);
    if ((rv = nng_aio_alloc(&L->recv_aio, link_recv_done, L)) != 0) {
        nng_close(L->pull);
        return link_errno(rv);
    }
    L->open = true;
    nng_recv_aio(L->pull, L->recv_aio);
    if (pthread_create(&L->ticker, NULL, link_ticker, L) == 0)
        L->ticker_running = true;
    return TR_OK;
}

static struct links *links_get(tr_runtime *rt)
{
    pthread_mutex_lock(&rt->ctx_lock);
    if (rt->links == NULL) {
        struct links *L = calloc(1, sizeof *L);
        if (L != NULL) {
            L->rt = rt;
            pthread_mutex_init(&L->mu, NULL);
            pthread_condattr_t ca;
            pthread_condattr_init(&ca);
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
            pthread_cond_init(&L->cv, &ca);
            pthread_condattr_destroy(&ca);
            L->ctx.rt = rt;
            L->ctx.type = CTX_TIMER;
            L->max_frame = rt->max_frame;
            L->tick_ctx.rt = rt;
            L->tick_ctx.type = CTX_TIMER;
            /* Sessions differ between runs, so a restarted node is new. */
            L->session_seed = (rt->node ^ tr__now_ns()) | 1;
            rt->links = L;
        }
    }
    pthread_mutex_unlock(&rt->ctx_lock);
    return rt->links;
}

static tr_err url_check(const char *url)
{
    if (url == NULL)
        return TR_EINVAL;
    size_t n = strnlen(url, WIRE_URL_MAX + 1);
    if (n == 0 || n > WIRE_URL_MAX)
        return n == 0 ? TR_EINVAL : TR_ETOOBIG;
    return TR_OK;
}

tr_err tr_listen(tr_runtime *rt, const char *url)
{
    if (rt == NULL)
        return TR_EINVAL;
    tr_err err = url_check(url);
    if (err != TR_OK)
        return err;
    if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
        return TR_ESTOPPED;
    struct links *L = links_get(rt);
    if (L == NULL)
        return TR_ENOMEM;
    pthread_mutex_lock(&L->mu);
    err = links_open(L);
    if (err == TR_OK) {
        int rv = nng_listen(L->pull, url, NULL, 0);
        if (rv != 0)
            err = link_errno(rv);
        else if (L->url[0] == '\0')
            snprintf(L->url, sizeof L->url, "%s", url);
    }
    pthread_mutex_unlock(&L->mu);
    return err;
}

tr_err tr_connect(tr_runtime *rt, const char *url, uint32_t timeout_ms, uint64_t *node)
{
    if (rt == NULL || node == NULL)
        return TR_EINVAL;
    tr_err err = url_check(url);
    if (err != TR_OK)
        return err;
    if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
        return TR_ESTOPPED;
    struct links *L = rt->links;
    if (L == NULL || L->url[0] == '\0')
        return TR_EINVAL; /* listen first, so the peer can answer */
    pthread_mutex_lock(&L->mu);
    struct peer *p = NULL;
    for (struct peer *q = L->peers; q != NULL; q = q->next)
        if (strcmp(q->url, url) == 0)
            p = q;
    if (p == NULL) {
        p = peer_new(L, url, WIRE_HELLO);
        if (p == NULL) {
            pthread_mutex_unlock(&L->mu);
            return TR_ESYS;
        }
        p->next = L->peers;
        L->peers = p;
    }
    uint64_t deadline = tr__now_ns() + (uint64_t)timeout_ms * 1000000u;
    struct timespec ts = {(time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u)};
    while (!p->welcomed && !atomic_load_explicit(&L->closing, memory_order_relaxed)) {
        if (pthread_cond_timedwait(&L->cv, &L->mu, &ts) == ETIMEDOUT)
            break;
    }
    err = p->welcomed                                               ? TR_OK
          : atomic_load_explicit(&L->closing, memory_order_relaxed) ? TR_ESTOPPED
                                                                    : TR_ETIMEDOUT;
    if (err == TR_OK)
        *node = p->node;
    pthread_mutex_unlock(&L->mu);
    return err;
}

/* True when every live peer has acknowledged all we sent it. */
static bool links_drained(struct links *L)
{
    bool done = true;
    pthread_mutex_lock(&L->mu);
    for (struct peer *p = L->peers; p != NULL && done; p = p->next) {
        if (!p->welcomed || p->down || p->forgotten)
            continue;
        pthread_mutex_lock(&p->mu);
        if (p->open_active || p->unacked != NULL) {
            done = false;
            peer_kick(p);
        }
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&L->mu);
    return done;
}

void tr__links_close(tr_runtime *rt)
{
    struct links *L = rt->links;
    if (L == NULL)
        return;
    /* What was sent reaches live peers before the links close (up to a
     * second): a process actor's last DOWN, a final reply. */
    uint64_t until = tr__now_ns() + 1000000000ull;
    while (L->open && !links_drained(L) && tr__now_ns() < until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&L->mu);
    atomic_store_explicit(&L->closing, true, memory_order_release);
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    for (struct peer *p = L->peers; p != NULL; p = p->next) {
        nng_aio_stop(p->kick_aio);
        nng_aio_stop(p->send_aio);
    }
    if (L->open) {
        nng_aio_stop(L->recv_aio);
        nng_close(L->pull);
    }
    if (L->ticker_running) {
        pthread_join(L->ticker, NULL);
        L->ticker_running = false;
    }
}

void tr__links_free(tr_runtime *rt)
{
    struct links *L = rt->links;
    if (L == NULL)
        return;
    tr__links_close(rt);
    while (L->peers != NULL) {
        struct peer *p = L->peers;
        L->peers = p->next;
        peer_free(p);
    }
    if (L->open)
        nng_aio_free(L->recv_aio);
    tr__msg_cache_drain(rt, &L->ctx.cache);
    tr__msg_cache_drain(rt, &L->tick_ctx.cache);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->cv);
    free(L);
    rt->links = NULL;
}

void tr__links_counters(tr_runtime *rt, ctr_set *sum)
{
    if (rt->links != NULL) {
        tr__counters_fold(sum, &rt->links->ctx.ctr);
        tr__counters_fold(sum, &rt->links->tick_ctx.ctr);
    }
}
