/*
 * link_node.c — a runtime's node links as a whole (see link.h): the public
 * calls (tr_listen, tr_connect, tr_runtime_set_tls), the ticker thread,
 * and the orderly stop.
 *
 * The ticker wakes every quarter heartbeat period and whenever a
 * connection ends. It sends a heartbeat on each quiet link, declares a
 * peer down when nothing was heard from it for the detection time, closes
 * connections whose handshake takes longer than that, reaps closed
 * connections (their completions are waited for outside every lock), and
 * redials targets with backoff (10 ms doubling to 1 s; not while the node
 * a target reached is connected some other way).
 *
 * Stopping drains: the links wait, up to the drain time, until every
 * connected peer acknowledged everything sent to it, then say BYE, wait
 * briefly for the BYEs to be written, and close everything. Nothing here
 * runs actor code.
 */
#include "nodelink.h"

#include "auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINK_DETECT_DEFAULT_MS 2000
#define LINK_DRAIN_DEFAULT_MS 1000
#define LINK_HANDSHAKE_MIN_NS 1000000000ull /* a handshake may always take 1 s */
#define LINK_BYE_GRACE_NS 200000000ull      /* BYEs may take this long after the drain */

static struct timespec ts_at(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    return ts;
}

static void cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

void tr__links_kick(struct links *L)
{
    pthread_mutex_lock(&L->tick_mu);
    L->tick_kick = true;
    pthread_cond_signal(&L->tick_cv);
    pthread_mutex_unlock(&L->tick_mu);
}

/* ---- the ticker ----------------------------------------------------------- */

/* Heartbeats and node-down, for every peer. links.mu held. */
static void tick_peers(struct links *L, uint64_t now)
{
    for (struct peer *p = atomic_load_explicit(&L->peers, memory_order_acquire); p != NULL;
         p = p->next) {
        pthread_mutex_lock(&p->rx_mu);
        pthread_mutex_lock(&p->mu);
        idmap tell = {0};
        bool went_down = false;
        char name[WIRE_NAME_MAX + 1];
        uint64_t heard = atomic_load_explicit(&p->last_heard, memory_order_relaxed);
        if (p->up && now > heard && now - heard > L->detect_ns) {
            went_down = true;
            memcpy(name, p->name, sizeof name);
            tell = tr__peer_down(p, TR_ETIMEDOUT);
        } else if (p->up && p->conn != NULL && now > p->last_sent &&
                   now - p->last_sent >= L->heartbeat_ns) {
            p->hb_due = true;
            p->hb_nonce = now;
            pthread_mutex_lock(&p->conn->mu);
            tr__lconn_pump(p->conn, p);
            pthread_mutex_unlock(&p->conn->mu);
        }
        pthread_mutex_unlock(&p->mu);
        if (tell.cap != 0)
            tr__peer_tell(p, &tell);
        if (went_down) /* hook (remote.c): node monitors */
            tr__node_event(&p->ctx, p->node, name, false);
        pthread_mutex_unlock(&p->rx_mu);
    }
}

/* Handshake timeouts, and unlinks closed connections into *reap, telling
 * their targets. links.mu held. */
static void tick_conns(struct links *L, uint64_t now, struct lconn **reap)
{
    uint64_t hs_timeout =
        L->detect_ns > LINK_HANDSHAKE_MIN_NS ? L->detect_ns : LINK_HANDSHAKE_MIN_NS;
    for (struct lconn **pp = &L->conns; *pp != NULL;) {
        struct lconn *c = *pp;
        pthread_mutex_lock(&c->mu);
        enum lconn_state s = c->state;
        tr_err why = c->fail_reason;
        uint64_t write_failed = c->write_failed_at;
        pthread_mutex_unlock(&c->mu);
        if (s != LC_DEAD && write_failed != 0 && now > write_failed &&
            now - write_failed > LINK_WRITE_GRACE_NS) {
            tr__lconn_fail(c, why);
            s = LC_DEAD;
        }
        /* now was read before links.mu: a connection may be younger. */
        if (s != LC_DEAD && s != LC_UP && now > c->started && now - c->started > hs_timeout) {
            tr__lconn_fail(c, TR_ETIMEDOUT); /* not bound: no peer lock needed */
            s = LC_DEAD;
            why = TR_ETIMEDOUT;
        }
        if (s != LC_DEAD) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        if (c->counted) {
            c->counted = false;
            L->handshaking--;
        }
        struct target *t = c->target;
        if (t != NULL && t->conn == c) {
            t->conn = NULL;
            if (why != TR_OK && why != TR_ECANCELED && why != TR_ESTOPPED && why != TR_EEXIST)
                t->last_err = why;
            t->redial_at = now + t->backoff_ns;
            t->backoff_ns = min_u64(2 * t->backoff_ns, LINK_BACKOFF_MAX_NS);
            pthread_cond_broadcast(&L->cv); /* tr_connect may stop waiting */
        }
        c->next = *reap;
        *reap = c;
    }
}

/* Starts the dials that are due; returns the earliest one still to come.
 * links.mu held. */
static uint64_t tick_targets(struct links *L, uint64_t now, uint64_t next)
{
    for (struct target *t = L->targets; t != NULL; t = t->next) {
        if (t->dialing || t->conn != NULL || t->dialer == NULL ||
            atomic_load_explicit(&L->leaving, memory_order_acquire))
            continue;
        struct peer *q = t->node != 0 ? tr__peer_find(L, t->node) : NULL;
        if (q != NULL) {
            pthread_mutex_lock(&q->mu);
            bool elsewhere = q->conn != NULL;
            pthread_mutex_unlock(&q->mu);
            if (elsewhere)
                continue; /* connected another way; dial when that ends */
        }
        if (now >= t->redial_at) {
            t->dialing = true;
            tr__conn_dial(t->dialer);
        } else {
            next = min_u64(next, t->redial_at);
        }
    }
    return next;
}

/* One pass; returns when the next one is due. */
static uint64_t link_tick(struct links *L)
{
    uint64_t now = tr__now_ns();
    uint64_t next = now + L->heartbeat_ns / 4 + 1;
    struct lconn *reap = NULL;
    pthread_mutex_lock(&L->mu);
    tick_peers(L, now);
    tick_conns(L, now, &reap);
    next = tick_targets(L, now, next);
    pthread_mutex_unlock(&L->mu);
    while (reap != NULL) { /* waits for their completions: no lock held */
        struct lconn *c = reap;
        reap = c->next;
        tr__lconn_free(c);
    }
    return next;
}

static void *link_ticker(void *arg)
{
    struct links *L = arg;
    uint64_t next = tr__now_ns();
    pthread_mutex_lock(&L->tick_mu);
    while (!atomic_load_explicit(&L->closing, memory_order_acquire)) {
        if (!L->tick_kick) {
            struct timespec ts = ts_at(next);
            pthread_cond_timedwait(&L->tick_cv, &L->tick_mu, &ts);
        }
        L->tick_kick = false;
        pthread_mutex_unlock(&L->tick_mu);
        if (!atomic_load_explicit(&L->closing, memory_order_acquire))
            next = link_tick(L);
        pthread_mutex_lock(&L->tick_mu);
    }
    pthread_mutex_unlock(&L->tick_mu);
    return NULL;
}

/* Starts the ticker on first use. links.mu held. */
static tr_err links_start(struct links *L)
{
    if (atomic_load_explicit(&L->leaving, memory_order_acquire))
        return TR_ESTOPPED;
    if (L->started)
        return TR_OK;
    if (pthread_create(&L->ticker, NULL, link_ticker, L) != 0)
        return TR_ESYS;
    L->started = true;
    return TR_OK;
}

/* ---- listening and dialling ------------------------------------------------ */

static void link_accepted(void *arg, conn *io)
{
    struct links *L = arg;
    pthread_mutex_lock(&L->mu);
    bool closing = atomic_load_explicit(&L->leaving, memory_order_acquire);
    if (closing || L->handshaking >= LINK_HANDSHAKES_MAX) {
        pthread_mutex_unlock(&L->mu);
        if (!closing) /* too many at once: refused, and counted */
            atomic_fetch_add_explicit(&L->refused, 1, memory_order_relaxed);
        tr__conn_free(io);
        return;
    }
    tr__lconn_new(L, io, NULL);
    pthread_mutex_unlock(&L->mu);
}

static void target_dialled(void *arg, tr_err err, conn *io)
{
    struct target *t = arg;
    struct links *L = t->L;
    pthread_mutex_lock(&L->mu);
    t->dialing = false;
    bool usable =
        err == TR_OK && !t->removed && !atomic_load_explicit(&L->leaving, memory_order_acquire);
    if (usable) {
        t->conn = tr__lconn_new(L, io, t);
        io = NULL;
        if (t->conn == NULL)
            err = TR_ENOMEM;
    }
    if (t->conn == NULL && !t->removed) {
        if (err != TR_OK && err != TR_ECANCELED)
            t->last_err = err;
        t->redial_at = tr__now_ns() + t->backoff_ns;
        t->backoff_ns = min_u64(2 * t->backoff_ns, LINK_BACKOFF_MAX_NS);
    }
    pthread_mutex_unlock(&L->mu);
    if (io != NULL)
        tr__conn_free(io);
    tr__links_kick(L);
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
    struct links *L = rt->links;
    struct link_listener *ent = calloc(1, sizeof *ent);
    if (ent == NULL)
        return TR_ENOMEM;
    pthread_mutex_lock(&L->mu);
    err = links_start(L);
    if (err == TR_OK)
        err = tr__conn_listen(&ent->l, url, L->tls, link_accepted, L);
    if (err == TR_OK) {
        ent->next = L->listeners;
        L->listeners = ent;
        if (strcmp(L->url, "-") == 0)
            snprintf(L->url, sizeof L->url, "%s", url);
    }
    pthread_mutex_unlock(&L->mu);
    if (err != TR_OK)
        free(ent);
    return err;
}

/* True when t's connection completed its handshake and is open. */
static bool target_up(const struct target *t)
{
    return t->conn != NULL && atomic_load_explicit(&t->conn->up, memory_order_relaxed) &&
           !atomic_load_explicit(&t->conn->dead, memory_order_relaxed);
}

/* Errors after which dialling again is pointless until something changes. */
static bool final_err(tr_err err)
{
    return err == TR_EAUTH || err == TR_EBADMSG || err == TR_EINVAL;
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
    pthread_mutex_lock(&L->mu);
    if ((err = links_start(L)) != TR_OK) {
        pthread_mutex_unlock(&L->mu);
        return err;
    }
    struct target *t = L->targets;
    while (t != NULL && strcmp(t->url, url) != 0)
        t = t->next;
    if (t == NULL) {
        t = calloc(1, sizeof *t);
        err =
            t == NULL ? TR_ENOMEM : tr__conn_dialer_new(&t->dialer, url, L->tls, target_dialled, t);
        if (err != TR_OK) {
            pthread_mutex_unlock(&L->mu);
            free(t);
            return err;
        }
        t->L = L;
        snprintf(t->url, sizeof t->url, "%s", url);
        t->backoff_ns = LINK_BACKOFF_MIN_NS;
        t->next = L->targets;
        L->targets = t;
        t->dialing = true;
        tr__conn_dial(t->dialer);
    }
    t->waiters++;
    struct timespec deadline = ts_at(tr__now_ns() + (uint64_t)timeout_ms * 1000000u);
    while (!target_up(t) && !atomic_load_explicit(&L->closing, memory_order_acquire) &&
           !final_err(t->last_err)) {
        if (pthread_cond_timedwait(&L->cv, &L->mu, &deadline) == ETIMEDOUT)
            break;
    }
    t->waiters--;
    struct target *give_up = NULL;
    if (target_up(t)) {
        *node = t->node;
        err = TR_OK;
    } else {
        err = atomic_load_explicit(&L->closing, memory_order_acquire) ? TR_ESTOPPED
              : t->last_err != TR_OK                                  ? t->last_err
                                                                      : TR_ETIMEDOUT;
        if (!t->ever_up && t->waiters == 0) {
            /* Nobody wants it any more: stop dialling. */
            for (struct target **pp = &L->targets; *pp != NULL; pp = &(*pp)->next) {
                if (*pp == t) {
                    *pp = t->next;
                    break;
                }
            }
            t->removed = true;
            if (t->conn != NULL) {
                t->conn->target = NULL;
                tr__lconn_fail(t->conn, TR_ECANCELED);
                t->conn = NULL;
            }
            give_up = t;
        }
    }
    pthread_mutex_unlock(&L->mu);
    if (give_up != NULL) {
        tr__conn_dialer_free(give_up->dialer); /* waits for a dial in progress */
        free(give_up);
    }
    return err;
}

tr_err tr_runtime_set_tls(tr_runtime *rt, const tr_tls_opts *o)
{
    if (rt == NULL || o == NULL)
        return TR_EINVAL;
    if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
        return TR_ESTOPPED;
    conn_tls *tls;
    tr_err err = tr__conn_tls_new(&tls, o);
    if (err != TR_OK)
        return err;
    struct links *L = rt->links;
    pthread_mutex_lock(&L->mu);
    conn_tls *old = L->tls;
    L->tls = tls;
    pthread_mutex_unlock(&L->mu);
    tr__conn_tls_free(old);
    return TR_OK;
}

/* ---- life ----------------------------------------------------------------- */

tr_err tr__links_init(tr_runtime *rt, const tr_runtime_opts *o)
{
    struct links *L = calloc(1, sizeof *L);
    if (L == NULL)
        return TR_ENOMEM;
    if (o->secret != NULL) {
        L->secret_len = strlen(o->secret);
        if (L->secret_len == 0 || (L->secret = malloc(L->secret_len + 1)) == NULL) {
            tr_err err = L->secret_len == 0 ? TR_EINVAL : TR_ENOMEM;
            free(L);
            return err;
        }
        memcpy(L->secret, o->secret, L->secret_len + 1);
    }
    L->rt = rt;
    L->fresh_session = tr__auth_random64();
    pthread_mutex_init(&L->mu, NULL);
    cond_init_monotonic(&L->cv);
    pthread_mutex_init(&L->tick_mu, NULL);
    cond_init_monotonic(&L->tick_cv);
    snprintf(L->url, sizeof L->url, "-");
    L->max_frame = rt->max_frame;
    uint64_t detect_ms = o->link_detect_ms != 0 ? o->link_detect_ms : LINK_DETECT_DEFAULT_MS;
    uint64_t drain_ms = o->link_drain_ms != 0 ? o->link_drain_ms : LINK_DRAIN_DEFAULT_MS;
    L->detect_ns = detect_ms * 1000000u;
    L->heartbeat_ns = L->detect_ns / 10 > 1000000u ? L->detect_ns / 10 : 1000000u;
    L->drain_ns = drain_ms * 1000000u;
    rt->links = L;
    return TR_OK;
}

/* True while a connected peer has not acknowledged all we sent it. */
static bool links_unacked(struct links *L)
{
    bool pending = false;
    for (struct peer *p = atomic_load_explicit(&L->peers, memory_order_acquire); p != NULL;
         p = p->next) {
        pthread_mutex_lock(&p->mu);
        if (p->up && p->conn != NULL && p->acked_seq + 1 < p->next_seq)
            pending = true;
        pthread_mutex_unlock(&p->mu);
    }
    return pending;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Drain, then BYE to every connected peer. */
static void links_say_bye(struct links *L)
{
    atomic_store_explicit(&L->leaving, true, memory_order_release);
    uint64_t deadline = tr__now_ns() + L->drain_ns;
    while (links_unacked(L) && tr__now_ns() < deadline)
        sleep_ms(1);
    pthread_mutex_lock(&L->mu);
    for (struct peer *p = atomic_load_explicit(&L->peers, memory_order_acquire); p != NULL;
         p = p->next) {
        /* rx_mu: no delivery is half done, so the ack sent before the BYE
         * covers everything delivered, and nothing is delivered after. */
        pthread_mutex_lock(&p->rx_mu);
        pthread_mutex_lock(&p->mu);
        struct lconn *c = p->conn;
        if (c != NULL) {
            p->closing = true;
            pthread_mutex_lock(&c->mu);
            if (!c->bye_queued && c->state == LC_UP) {
                c->stop_bye = true;
                atomic_fetch_add_explicit(&L->byes_out, 1, memory_order_relaxed);
                tr__lconn_bye(c, p, TR_ESTOPPED);
            }
            pthread_mutex_unlock(&c->mu);
        }
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_unlock(&p->rx_mu);
    }
    pthread_mutex_unlock(&L->mu);
    /* acquire: pairs with the release decrement when a BYE was written. */
    while (atomic_load_explicit(&L->byes_out, memory_order_acquire) != 0 &&
           tr__now_ns() < deadline + LINK_BYE_GRACE_NS)
        sleep_ms(1);
}

void tr__links_close(tr_runtime *rt)
{
    struct links *L = rt->links;
    if (L == NULL || L->closed)
        return;
    pthread_mutex_lock(&L->mu);
    bool started = L->started;
    pthread_mutex_unlock(&L->mu);
    if (started)
        links_say_bye(L);

    pthread_mutex_lock(&L->mu);
    atomic_store_explicit(&L->leaving, true, memory_order_release);
    atomic_store_explicit(&L->closing, true, memory_order_release);
    pthread_cond_broadcast(&L->cv);
    struct link_listener *listeners = L->listeners;
    L->listeners = NULL;
    pthread_mutex_unlock(&L->mu);
    tr__links_kick(L);
    if (started)
        pthread_join(L->ticker, NULL);

    /* No lock held: each free waits for its callbacks, which take links.mu. */
    while (listeners != NULL) {
        struct link_listener *ent = listeners;
        listeners = ent->next;
        tr__conn_listener_free(ent->l);
        free(ent);
    }
    for (;;) {
        pthread_mutex_lock(&L->mu);
        struct target *t = L->targets;
        while (t != NULL && t->dialer == NULL)
            t = t->next;
        conn_dialer *d = t != NULL ? t->dialer : NULL;
        if (t != NULL)
            t->dialer = NULL;
        pthread_mutex_unlock(&L->mu);
        if (d == NULL)
            break;
        tr__conn_dialer_free(d);
    }
    pthread_mutex_lock(&L->mu);
    for (struct lconn *c = L->conns; c != NULL; c = c->next)
        tr__lconn_fail(c, TR_ESTOPPED);
    struct lconn *conns = L->conns;
    L->conns = NULL;
    for (struct target *t = L->targets; t != NULL; t = t->next)
        t->conn = NULL;
    pthread_mutex_unlock(&L->mu);
    while (conns != NULL) {
        struct lconn *c = conns;
        conns = c->next;
        tr__lconn_free(c);
    }
    /* Sessions end with the node: what peers did not acknowledge (the
     * drain ran out of time, or a peer was unreachable) is a dead letter. */
    for (struct peer *p = atomic_load_explicit(&L->peers, memory_order_acquire); p != NULL;
         p = p->next) {
        pthread_mutex_lock(&p->rx_mu);
        pthread_mutex_lock(&p->mu);
        idmap tell = tr__peer_down(p, TR_ESTOPPED);
        pthread_mutex_unlock(&p->mu);
        idmap_free(&tell); /* the local actors are gone */
        pthread_mutex_unlock(&p->rx_mu);
    }
    L->closed = true;
}

void tr__links_free(tr_runtime *rt)
{
    struct links *L = rt->links;
    if (L == NULL)
        return;
    tr__links_close(rt);
    struct peer *p = atomic_load_explicit(&L->peers, memory_order_acquire);
    while (p != NULL) {
        struct peer *next = p->next;
        tr__peer_free(p);
        p = next;
    }
    while (L->targets != NULL) {
        struct target *t = L->targets;
        L->targets = t->next;
        free(t);
    }
    tr__conn_tls_free(L->tls);
    free(L->secret);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->cv);
    pthread_mutex_destroy(&L->tick_mu);
    pthread_cond_destroy(&L->tick_cv);
    free(L);
    rt->links = NULL;
}

void tr__links_counters(tr_runtime *rt, ctr_set *sum)
{
    struct links *L = rt->links;
    if (L == NULL)
        return;
    for (struct peer *p = atomic_load_explicit(&L->peers, memory_order_acquire); p != NULL;
         p = p->next)
        tr__counters_fold(sum, &p->ctx.ctr);
    ctr_add(&sum->dead_letters, atomic_load_explicit(&L->dead_letters, memory_order_relaxed));
    ctr_add(&sum->link_refused, atomic_load_explicit(&L->refused, memory_order_relaxed));
    ctr_add(&sum->bad_frames, atomic_load_explicit(&L->bad_frames, memory_order_relaxed));
}
