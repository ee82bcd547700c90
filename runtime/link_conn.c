/*
 * link_conn.c — one node-link connection (see link.h): the length-prefixed
 * framing on its byte stream, its writer, and its handshake.
 *
 * Reading: the receive completion appends what arrived to the connection's
 * buffer, cuts whole frames off it (tr__wire_split), decodes each as
 * hostile input and dispatches it by the connection's state. A length
 * prefix of 0 or over the limit (a small one until the handshake is done,
 * the runtime's max_frame after), a frame that does not decode, or one out
 * of place is counted in bad_frames and ends the connection.
 *
 * Writing: one send at a time; what is waiting (handshake frames, then the
 * peer's acks, heartbeats and data frames) is gathered into one buffer and
 * written with one send, so a busy link writes large batches.
 *
 * Handshake (WIRE.md): the dialler sends HELLO with a nonce; the listener
 * answers WELCOME with its nonce, its session and its proof; the dialler
 * checks it and answers AUTH with its session and proof. Either side that
 * finds the other's proof wrong answers BYE(TR_EAUTH) and closes. This file
 * must not deliver messages: peers (link.c) do.
 */
#include "auth.h"
#include "nodelink.h"

#include <stdlib.h>
#include <string.h>

/* ---- sending -------------------------------------------------------------- */

bool tr__lconn_put(struct lconn *c, const uint8_t *bytes, size_t len)
{
    if (c->wcap - c->wlen < len) {
        size_t cap = c->wlen + len < LINK_WBUF_MAX ? LINK_WBUF_MAX : c->wlen + len;
        uint8_t *w = realloc(c->wbuf, cap);
        if (w == NULL)
            return false;
        c->wbuf = w;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, bytes, len);
    c->wlen += len;
    return true;
}

bool tr__lconn_put_frame(struct lconn *c, const wire_buf *b)
{
    size_t len;
    const uint8_t *frame = tr__wire_buf_frame(b, &len);
    uint8_t prefix[WIRE_PREFIX_LEN];
    if (frame == NULL)
        return false;
    tr__wire_prefix_put(prefix, (uint32_t)len);
    size_t before = c->wlen;
    if (tr__lconn_put(c, prefix, sizeof prefix) && tr__lconn_put(c, frame, len))
        return true;
    c->wlen = before;
    return false;
}

bool tr__lconn_queue(struct lconn *c, const wire_buf *b)
{
    size_t len;
    const uint8_t *frame = tr__wire_buf_frame(b, &len);
    if (frame == NULL)
        return false;
    if (c->pend_cap - c->pend_len < WIRE_PREFIX_LEN + len) {
        size_t cap = c->pend_len + WIRE_PREFIX_LEN + len + 256;
        uint8_t *q = realloc(c->pend, cap);
        if (q == NULL)
            return false;
        c->pend = q;
        c->pend_cap = cap;
    }
    tr__wire_prefix_put(c->pend + c->pend_len, (uint32_t)len);
    memcpy(c->pend + c->pend_len + WIRE_PREFIX_LEN, frame, len);
    c->pend_len += WIRE_PREFIX_LEN + len;
    return true;
}

void tr__lconn_pump(struct lconn *c, struct peer *p)
{
    if (c->sending || c->state == LC_DEAD || c->write_failed_at != 0)
        return;
    c->wlen = c->woff = 0;
    /* The last ACK goes before a BYE: what the peer sent us and we
     * delivered must not count as lost on its side. */
    if (c->bye_queued && c->state == LC_UP && p != NULL)
        tr__peer_fill_ack(p, c);
    if (c->pend_len != 0 && tr__lconn_put(c, c->pend, c->pend_len))
        c->pend_len = 0;
    if (!c->bye_queued && c->state == LC_UP && p != NULL)
        tr__peer_fill(p, c);
    if (c->wlen == 0)
        return;
    c->sending = true;
    if (p != NULL)
        p->last_sent = tr__now_ns();
    tr__conn_send(c->io, c->wbuf, c->wlen);
}

/* Locks c->mu, and first its peer's mu if c is bound; returns the peer. */
static struct peer *lconn_lock(struct lconn *c)
{
    for (;;) {
        /* acquire: pairs with the release store in tr__peer_bind. */
        struct peer *p = atomic_load_explicit(&c->peer, memory_order_acquire);
        if (p != NULL) {
            pthread_mutex_lock(&p->mu);
            pthread_mutex_lock(&c->mu);
            return p;
        }
        pthread_mutex_lock(&c->mu);
        if (atomic_load_explicit(&c->peer, memory_order_acquire) == NULL)
            return NULL;
        pthread_mutex_unlock(&c->mu); /* bound meanwhile: take the locks in order */
    }
}

static void lconn_unlock(struct lconn *c, struct peer *p)
{
    pthread_mutex_unlock(&c->mu);
    if (p != NULL)
        pthread_mutex_unlock(&p->mu);
}

static void lconn_on_sent(void *arg, tr_err err, size_t n)
{
    struct lconn *c = arg;
    struct peer *p = lconn_lock(c);
    if (err != TR_OK) {
        /* Writing failed, typically because the peer closed. What it sent
         * before (its last ACK, its BYE) may still wait to be read: the
         * reader ends the connection at the end of the stream, or the
         * ticker does after a grace period. */
        c->sending = false;
        if (c->write_failed_at == 0)
            c->write_failed_at = tr__now_ns();
        if (c->fail_reason == TR_OK)
            c->fail_reason = err;
        lconn_unlock(c, p);
        tr__links_kick(c->L);
        return;
    }
    c->woff += n;
    if (c->woff < c->wlen && c->state != LC_DEAD) {
        tr__conn_send(c->io, c->wbuf + c->woff, c->wlen - c->woff);
        lconn_unlock(c, p);
        return;
    }
    c->sending = false;
    c->wlen = c->woff = 0;
    /* A queued BYE is written once nothing is pending: close now. */
    bool close_now = c->bye_queued && c->pend_len == 0 && c->state != LC_DEAD;
    tr_err why = c->fail_reason != TR_OK ? c->fail_reason : TR_ESTOPPED;
    if (!close_now)
        tr__lconn_pump(c, p);
    pthread_mutex_unlock(&c->mu);
    if (close_now)
        tr__lconn_fail_locked(c, p, why);
    if (p != NULL)
        pthread_mutex_unlock(&p->mu);
}

void tr__lconn_bye(struct lconn *c, struct peer *p, tr_err reason)
{
    if (c->bye_queued || c->state == LC_DEAD)
        return;
    wire_buf b;
    tr__wire_buf_init(&b);
    /* Without memory the BYE is skipped; the close still happens (at the
     * handshake timeout, or when the runtime stops). */
    if (tr__wire_encode_bye(&b, (int32_t)reason, c->L->max_frame) == TR_OK)
        tr__lconn_queue(c, &b);
    tr__wire_buf_fini(&b);
    c->bye_queued = true;
    if (c->fail_reason == TR_OK)
        c->fail_reason = reason;
    if (c->state != LC_UP)
        c->state = LC_REFUSING;
    tr__lconn_pump(c, p);
}

/* ---- closing -------------------------------------------------------------- */

/* True when a connection that ends for reason before its handshake
 * completed was refused (by either side), rather than cut or given up. */
static bool refusal(tr_err reason)
{
    return reason == TR_EAUTH || reason == TR_EBADMSG || reason == TR_EINVAL ||
           reason == TR_ETIMEDOUT || reason == TR_ENOTSUP || reason == TR_ENOMEM;
}

void tr__lconn_fail_locked(struct lconn *c, struct peer *p, tr_err reason)
{
    struct links *L = c->L;
    if (p != NULL && p->conn == c)
        p->conn = NULL; /* the session goes on; the next connection resends */
    pthread_mutex_lock(&c->mu);
    if (c->state == LC_DEAD) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->state = LC_DEAD;
    if (c->fail_reason == TR_OK)
        c->fail_reason = reason;
    bool was_up = c->was_up, stop_bye = c->stop_bye;
    reason = c->fail_reason;
    atomic_store_explicit(&c->dead, true, memory_order_relaxed);
    tr__conn_close(c->io);
    pthread_mutex_unlock(&c->mu);
    if (!was_up && refusal(reason) && !atomic_load_explicit(&L->closing, memory_order_acquire)) {
        atomic_fetch_add_explicit(&L->refused, 1, memory_order_relaxed);
    }
    if (stop_bye)
        atomic_fetch_sub_explicit(&L->byes_out, 1, memory_order_release);
    tr__links_kick(L);
}

void tr__lconn_fail(struct lconn *c, tr_err reason)
{
    struct peer *p = atomic_load_explicit(&c->peer, memory_order_acquire);
    if (p != NULL)
        pthread_mutex_lock(&p->mu);
    tr__lconn_fail_locked(c, p, reason);
    if (p != NULL)
        pthread_mutex_unlock(&p->mu);
}

/* Refuses c during its handshake: BYE(reason), then close. Returns false
 * (the connection is over) for the callers' convenience. */
static bool lconn_refuse(struct lconn *c, tr_err reason)
{
    struct peer *p = lconn_lock(c);
    if (c->state == LC_UP) {
        /* A bound connection that misbehaves is closed at once: its peer
         * reconnects and resends. */
        pthread_mutex_unlock(&c->mu);
        tr__lconn_fail_locked(c, p, reason);
        if (p != NULL)
            pthread_mutex_unlock(&p->mu);
        return false;
    }
    tr__lconn_bye(c, p, reason);
    lconn_unlock(c, p);
    return false;
}

/* A frame that breaks the protocol: counted, and the connection ends. */
static bool lconn_bad(struct lconn *c)
{
    atomic_fetch_add_explicit(&c->L->bad_frames, 1, memory_order_relaxed);
    return lconn_refuse(c, TR_EBADMSG);
}

/* ---- handshake ------------------------------------------------------------ */

static bool secret_proof(struct lconn *c, enum auth_role role, uint64_t session,
                         uint8_t out[WIRE_PROOF_LEN])
{
    struct links *L = c->L;
    uint64_t dialler = c->dialled ? L->rt->node : c->hs_node;
    uint64_t listener = c->dialled ? c->hs_node : L->rt->node;
    return tr__auth_proof(out, L->secret, L->secret_len, role, c->nonce_dialler, c->nonce_listener,
                          dialler, listener, session) == TR_OK;
}

/* True when proof (proof_len bytes) is what role must send, given this
 * node's secret: a valid HMAC with a secret, nothing without one. */
static bool proof_ok(struct lconn *c, enum auth_role role, uint64_t session, const uint8_t *proof,
                     size_t proof_len)
{
    if (c->L->secret == NULL)
        return proof_len == 0;
    uint8_t want[WIRE_PROOF_LEN];
    return proof_len == WIRE_PROOF_LEN && secret_proof(c, role, session, want) &&
           tr__auth_equal(want, proof, WIRE_PROOF_LEN);
}

bool tr__lconn_queue_auth(struct lconn *c, uint64_t session)
{
    uint8_t proof[WIRE_PROOF_LEN];
    wire_auth a = {session, proof, c->L->secret != NULL ? WIRE_PROOF_LEN : 0};
    if (a.proof_len != 0 && !secret_proof(c, AUTH_DIALLER, session, proof))
        return false;
    wire_buf b;
    tr__wire_buf_init(&b);
    bool ok = tr__wire_encode_auth(&b, &a, c->L->max_frame) == TR_OK && tr__lconn_queue(c, &b);
    tr__wire_buf_fini(&b);
    return ok;
}

/* Encodes our HELLO or WELCOME (kind) into b. */
static tr_err hello_encode(struct lconn *c, wire_buf *b, uint32_t kind, const uint8_t *auth,
                           size_t auth_len, uint64_t session)
{
    struct links *L = c->L;
    tr_runtime *rt = L->rt;
    char url[WIRE_URL_MAX + 1];
    pthread_mutex_lock(&L->mu);
    memcpy(url, L->url, sizeof url);
    pthread_mutex_unlock(&L->mu);
    wire_hello h = {rt->node, rt->name, strlen(rt->name), 0, auth, auth_len,
                    session,  url,      strlen(url)};
    return tr__wire_encode_hello(b, kind, &h, L->max_frame);
}

/* Listener: HELLO arrived. Answer WELCOME with our nonce and proof. */
static bool hs_hello(struct lconn *c, const wire_hello *h)
{
    struct links *L = c->L;
    if (h->auth_len != WIRE_NONCE_LEN)
        return lconn_bad(c);
    if (h->node_id == L->rt->node)
        return lconn_refuse(c, TR_EINVAL); /* a connection to itself */
    memcpy(c->nonce_dialler, h->auth, WIRE_NONCE_LEN);
    c->hs_node = h->node_id;
    memcpy(c->hs_name, h->name, h->name_len);
    c->hs_name[h->name_len] = '\0';
    tr__auth_random(c->nonce_listener, WIRE_NONCE_LEN);
    /* Name the session we have with that node; the AUTH must find it
     * unchanged (tr__peer_bind checks). */
    struct peer *p = tr__peer_find(L, h->node_id);
    uint64_t session = 0;
    if (p != NULL) {
        pthread_mutex_lock(&p->mu);
        if (atomic_load_explicit(&p->node, memory_order_relaxed) == h->node_id)
            session = p->my_session; /* else retired and reused meanwhile */
        pthread_mutex_unlock(&p->mu);
    }
    /* A node we never had a session with gets the same fresh one in
     * every handshake: should this one die after WELCOME, the dialler
     * (which has bound already) must not see our session change. */
    c->hs_my_session = session != 0 ? session : L->fresh_session;

    uint8_t auth[WIRE_NONCE_LEN + WIRE_PROOF_LEN];
    size_t auth_len = WIRE_NONCE_LEN;
    memcpy(auth, c->nonce_listener, WIRE_NONCE_LEN);
    if (L->secret != NULL) {
        if (!secret_proof(c, AUTH_LISTENER, c->hs_my_session, auth + WIRE_NONCE_LEN))
            return lconn_refuse(c, TR_ENOMEM);
        auth_len += WIRE_PROOF_LEN;
    }
    wire_buf b;
    tr__wire_buf_init(&b);
    bool ok = hello_encode(c, &b, WIRE_WELCOME, auth, auth_len, c->hs_my_session) == TR_OK;
    pthread_mutex_lock(&c->mu);
    ok = ok && c->state == LC_HELLO_WAIT && tr__lconn_queue(c, &b);
    if (ok) {
        c->state = LC_AUTH_WAIT;
        tr__lconn_pump(c, NULL);
    }
    pthread_mutex_unlock(&c->mu);
    tr__wire_buf_fini(&b);
    if (!ok)
        tr__lconn_fail(c, TR_ENOMEM);
    return ok;
}

/* Dialler: WELCOME arrived. Check the listener's proof, then bind (which
 * sends our AUTH). */
static bool hs_welcome(struct lconn *c, const wire_hello *h)
{
    struct links *L = c->L;
    if (h->auth_len < WIRE_NONCE_LEN || h->session == 0)
        return lconn_bad(c);
    if (h->node_id == L->rt->node)
        return lconn_refuse(c, TR_EINVAL);
    memcpy(c->nonce_listener, h->auth, WIRE_NONCE_LEN);
    c->hs_node = h->node_id;
    if (!proof_ok(c, AUTH_LISTENER, h->session, h->auth + WIRE_NONCE_LEN,
                  h->auth_len - WIRE_NONCE_LEN))
        return lconn_refuse(c, TR_EAUTH);
    memcpy(c->hs_name, h->name, h->name_len);
    c->hs_name[h->name_len] = '\0';
    c->hs_peer_session = h->session;
    return tr__peer_bind(c);
}

/* Listener: AUTH arrived. Check the dialler's proof, then bind. */
static bool hs_auth(struct lconn *c, const wire_auth *a)
{
    if (!proof_ok(c, AUTH_DIALLER, a->session, a->proof, a->proof_len))
        return lconn_refuse(c, TR_EAUTH);
    c->hs_peer_session = a->session;
    return tr__peer_bind(c);
}

/* The other side refused us during the handshake (BYE). */
static bool hs_refused(struct lconn *c, int32_t reason)
{
    tr_err why = reason > 0 && reason < TR_ERR_COUNT_ ? (tr_err)reason : TR_ENOTSUP;
    tr__lconn_fail(c, why);
    return false;
}

/* ---- receiving ------------------------------------------------------------ */

/* Handles one frame; false when the connection is over. */
static bool lconn_frame(struct lconn *c, const uint8_t *bytes, size_t len)
{
    wire_frame f;
    if (tr__wire_decode(&f, bytes, len, c->rmax) != TR_OK)
        return lconn_bad(c);
    pthread_mutex_lock(&c->mu);
    enum lconn_state s = c->state;
    pthread_mutex_unlock(&c->mu);
    switch (s) {
    case LC_HELLO_WAIT:
        return f.kind == WIRE_HELLO ? hs_hello(c, &f.hello) : lconn_bad(c);
    case LC_WELCOME_WAIT:
        if (f.kind == WIRE_BYE)
            return hs_refused(c, f.reason);
        return f.kind == WIRE_WELCOME ? hs_welcome(c, &f.hello) : lconn_bad(c);
    case LC_AUTH_WAIT:
        if (f.kind == WIRE_BYE)
            return hs_refused(c, f.reason);
        return f.kind == WIRE_AUTH ? hs_auth(c, &f.auth) : lconn_bad(c);
    case LC_UP:
        if (f.kind == WIRE_DATA || f.kind == WIRE_ACK || f.kind == WIRE_HEARTBEAT ||
            f.kind == WIRE_BYE)
            return tr__peer_frame(c, &f);
        return lconn_bad(c);
    default:
        return false; /* refusing or closed: the rest is not read */
    }
}

static void lconn_on_recv(void *arg, tr_err err, size_t n)
{
    struct lconn *c = arg;
    if (err != TR_OK) {
        tr__lconn_fail(c, err);
        return;
    }
    c->rlen += n;
    size_t need;
    for (;;) {
        size_t flen;
        tr_err r = tr__wire_split(c->rbuf + c->rpos, c->rlen - c->rpos, c->rmax, &flen);
        if (r == TR_ENOTFOUND) {
            need = WIRE_PREFIX_LEN + flen;
            break;
        }
        if (r != TR_OK) {
            lconn_bad(c); /* a length prefix of 0 or over the limit */
            return;
        }
        size_t at = c->rpos + WIRE_PREFIX_LEN;
        c->rpos = at + flen;
        if (!lconn_frame(c, c->rbuf + at, flen))
            return;
    }
    /* Make room for at least the rest of the frame begun, at the front. */
    if (c->rpos == c->rlen)
        c->rpos = c->rlen = 0;
    if (c->rcap - c->rpos < need || c->rcap == c->rlen) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    if (c->rcap < need) {
        size_t cap = need < 2 * c->rcap ? 2 * c->rcap : need;
        uint8_t *r = realloc(c->rbuf, cap);
        if (r == NULL) {
            tr__lconn_fail(c, TR_ENOMEM);
            return;
        }
        c->rbuf = r;
        c->rcap = cap;
    }
    tr__conn_recv(c->io, c->rbuf + c->rlen, c->rcap - c->rlen);
}

/* ---- life ----------------------------------------------------------------- */

struct lconn *tr__lconn_new(struct links *L, conn *io, struct target *t)
{
    struct lconn *c = calloc(1, sizeof *c);
    if (c != NULL && (c->rbuf = malloc(LINK_RBUF_MIN)) == NULL) {
        free(c);
        c = NULL;
    }
    if (c == NULL) {
        tr__conn_free(io);
        return NULL;
    }
    c->L = L;
    c->io = io;
    c->target = t;
    c->dialled = t != NULL;
    c->started = tr__now_ns();
    c->rcap = LINK_RBUF_MIN;
    c->rmax = WIRE_HANDSHAKE_FRAME_MAX;
    pthread_mutex_init(&c->mu, NULL);
    c->state = t != NULL ? LC_WELCOME_WAIT : LC_HELLO_WAIT;
    c->next = L->conns;
    L->conns = c;
    L->handshaking++;
    c->counted = true;
    tr__conn_start(io, lconn_on_sent, lconn_on_recv, c);
    if (t != NULL) {
        tr__auth_random(c->nonce_dialler, WIRE_NONCE_LEN);
        tr_runtime *rt = L->rt;
        /* links.mu is held: read the URL directly. */
        wire_hello h = {rt->node, rt->name, strlen(rt->name), 0, c->nonce_dialler, WIRE_NONCE_LEN,
                        0,        L->url,   strlen(L->url)};
        wire_buf b;
        tr__wire_buf_init(&b);
        pthread_mutex_lock(&c->mu);
        if (tr__wire_encode_hello(&b, WIRE_HELLO, &h, L->max_frame) != TR_OK ||
            !tr__lconn_queue(c, &b))
            c->state = LC_REFUSING; /* no memory: the handshake timeout ends it */
        tr__lconn_pump(c, NULL);
        pthread_mutex_unlock(&c->mu);
        tr__wire_buf_fini(&b);
    }
    tr__conn_recv(io, c->rbuf, c->rcap);
    return c;
}

void tr__lconn_free(struct lconn *c)
{
    tr__conn_free(c->io); /* waits for its callbacks: nothing of c runs after */
    struct peer *p = atomic_load_explicit(&c->peer, memory_order_acquire);
    if (p != NULL) /* release: pairs with peer_reuse's acquire load */
        atomic_fetch_sub_explicit(&p->conn_refs, 1, memory_order_release);
    free(c->rbuf);
    free(c->wbuf);
    free(c->pend);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
