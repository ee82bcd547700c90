/*
 * nodelink.h — the node-link layer's own structures, shared by its three files:
 *
 *   link.c       peers and sessions: numbering, acknowledging, resending,
 *                delivering, node-down, binding a connection to a peer
 *   link_conn.c  one connection: framing, the writer, the handshake
 *   link_node.c  a runtime's links: listen, connect, TLS, the ticker
 *                (heartbeats, detection, redials, reaping), drain and stop
 *
 * Objects. A peer is another node, by node id: its session (sequence
 * numbers, unacknowledged frames) outlives connections. An lconn is one
 * connection (conn.h) and its handshake; once the handshake completes it is
 * bound to its peer, which has at most one bound connection. A target is a
 * URL this node dials (tr_connect): it redials with backoff while the node
 * it reached is not connected.
 *
 * Locks, always taken in this order: links.mu (targets, connections,
 * listeners) → peer.rx_mu (serialises what arrives from a peer: delivery,
 * session resets, node-down) → peer.mu (the session) → lconn.mu (the
 * writer and the state) → links.tick_mu (a leaf: wakes the ticker). Code
 * holding a peer.mu never takes an rx_mu or links.mu, and delivery (under
 * rx_mu) may send, which takes any peer's mu. Peers are never freed before
 * the runtime, so a peer pointer stays valid; the peer list is prepend-only
 * and read without a lock.
 */
#ifndef TROUPE_LINK_H
#define TROUPE_LINK_H

#include "conn.h"
#include "internal.h"
#include "wire.h"

#define LINK_WBUF_MAX (256u << 10)      /* bytes gathered into one send */
#define LINK_RBUF_MIN (64u << 10)       /* a connection's first receive buffer */
#define LINK_HANDSHAKES_MAX 256         /* connections in their handshake at once */
#define LINK_BACKOFF_MIN_NS 10000000ull /* first redial after a loss: 10 ms */
#define LINK_BACKOFF_MAX_NS 1000000000ull
#define LINK_WRITE_GRACE_NS 200000000ull /* reading goes on this long after a send failed */

/* A DATA frame kept until the peer acknowledges its last envelope. It owns
 * the storage its builder wrote it into (a wire_buf's, taken over). */
struct lframe {
    struct lframe *next;
    uint64_t seq_last;    /* number of its last envelope */
    uint8_t *storage;     /* owned (malloc'd) */
    const uint8_t *bytes; /* within storage: the length prefix, then the frame */
    size_t len;           /* bytes, prefix included */
};

enum lconn_state {
    LC_HELLO_WAIT,   /* accepted: waiting for HELLO */
    LC_WELCOME_WAIT, /* dialled: HELLO sent, waiting for WELCOME */
    LC_AUTH_WAIT,    /* accepted: WELCOME sent, waiting for AUTH */
    LC_UP,           /* bound to its peer */
    LC_REFUSING,     /* BYE queued; closes once written (or at the handshake timeout) */
    LC_DEAD,         /* closed; reaped by the ticker */
};

struct target;
struct peer;

struct lconn {
    struct lconn *next; /* links.conns (links.mu) */
    struct links *L;
    conn *io;
    struct target *target;       /* the target that dialled it; NULL if accepted (links.mu) */
    bool dialled;                /* immutable */
    uint64_t started;            /* monotonic ns; immutable */
    _Atomic(struct peer *) peer; /* set once, when bound (release; pairs with acquire loads) */
    _Atomic bool up;             /* bound at some point (relaxed: a hint for tr_connect) */
    _Atomic bool dead;           /* closed (relaxed: a hint; state is the truth) */
    bool counted;                /* counted in links.handshaking (links.mu) */

    /* Handshake results; written by the receive completion only. */
    uint8_t nonce_dialler[WIRE_NONCE_LEN], nonce_listener[WIRE_NONCE_LEN];
    uint64_t hs_node; /* the peer's node id */
    char hs_name[WIRE_NAME_MAX + 1];
    uint64_t hs_peer_session; /* the peer's session toward us */
    uint64_t hs_my_session;   /* the session we named (listener: in WELCOME) */

    /* Reader: the receive completion only. */
    uint8_t *rbuf;
    size_t rcap, rpos, rlen; /* bytes [rpos, rlen) received, not yet framed */
    size_t rmax;             /* largest frame accepted now */

    pthread_mutex_t mu;
    enum lconn_state state; /* mu */
    tr_err fail_reason;     /* why it ended or was refused (mu) */
    bool was_up;            /* reached LC_UP (mu) */
    uint8_t *wbuf;          /* the send in flight (mu) */
    size_t wcap, wlen, woff;
    bool sending;
    uint64_t write_failed_at; /* monotonic ns when a send failed; 0 = none (mu) */
    uint8_t *pend;            /* framed frames waiting to go before anything else (mu) */
    size_t pend_len, pend_cap;
    bool bye_queued; /* nothing more after what is pending, then close (mu) */
    bool stop_bye;   /* that BYE says the node stops (counted in links.byes_out) (mu) */
};

/*
 * Peers are never freed while the runtime lives, so lock-free finders may
 * walk the list at any time. A peer whose node ended for good (a process
 * actor's child) is retired — node 0 — and reused for the next new node
 * once no connection refers to it; so whoever found a peer by node checks,
 * under its mu, that the node is still the one it looked for.
 */
struct peer {
    struct peer *next; /* immutable once published */
    struct links *L;
    _Atomic uint64_t node;      /* 0 = retired; changed under links.mu, rx_mu and mu */
    _Atomic uint32_t conn_refs; /* connections bound to it and not yet freed */

    pthread_mutex_t rx_mu; /* serialises arrivals, resets and node-down */
    tr_ctx ctx;            /* delivers its envelopes and node-down signals (rx_mu) */

    pthread_mutex_t mu; /* everything below */
    char name[WIRE_NAME_MAX + 1];
    struct lconn *conn;          /* the bound connection, if any */
    bool up;                     /* a session is live: sends accepted, links across hold */
    bool closing;                /* BYE queued: no more data frames */
    uint64_t my_session;         /* ours toward it; new after we declare it down */
    uint64_t peer_session;       /* its own toward us, as last seen; 0 = none */
    _Atomic uint64_t last_heard; /* monotonic ns of the last frame from it (relaxed) */
    uint64_t last_sent;          /* monotonic ns of our last send to it */
    wire_buf obuf;               /* the open DATA frame */
    wire_data open;
    bool open_active;
    struct lframe *unacked, *unacked_tail; /* oldest first */
    struct lframe *next_send;              /* first not yet written to the bound connection */
    uint64_t next_seq;                     /* number of the next envelope */
    uint64_t acked_seq;                    /* highest of ours it acknowledged */
    uint64_t recv_seq;                     /* highest received in order (also rx_mu to write) */
    bool ack_due, hb_due, hb_echo;
    uint64_t hb_nonce;
    wire_buf cbuf; /* control frames being encoded */
    idmap touched; /* local actors linked to or monitoring its actors */
};

struct target {
    struct target *next; /* links.targets (links.mu); all fields links.mu */
    struct links *L;     /* immutable */
    char url[WIRE_URL_MAX + 1];
    conn_dialer *dialer;
    bool dialing;        /* an attempt is in flight */
    bool removed;        /* given up (tr_connect timed out); freed by whoever removed it */
    bool ever_up;        /* reached a node once: it stays and redials */
    uint32_t waiters;    /* tr_connect calls waiting on it */
    struct lconn *conn;  /* its connection, handshaking or up; NULL between */
    uint64_t node;       /* the node it reached last */
    uint64_t redial_at;  /* monotonic ns of the next attempt */
    uint64_t backoff_ns; /* pause after the next failure */
    tr_err last_err;     /* why the last attempt failed */
};

struct link_listener {
    struct link_listener *next;
    conn_listener *l;
};

struct links {
    tr_runtime *rt;
    pthread_mutex_t mu;
    pthread_cond_t cv;            /* a handshake completed (tr_connect waits; links.mu) */
    _Atomic(struct peer *) peers; /* prepend-only (release store under mu; acquire loads) */
    struct target *targets;
    struct lconn *conns;
    struct link_listener *listeners;
    uint32_t handshaking;       /* connections not yet up (mu) */
    char url[WIRE_URL_MAX + 1]; /* first listen URL, or "-" (mu) */
    conn_tls *tls;              /* mu */
    uint64_t fresh_session;     /* ours toward a node we never had a session with (immutable):
                                   the same in every handshake until one completes */
    char *secret;               /* immutable; NULL = none */
    size_t secret_len;
    size_t max_frame;
    uint64_t detect_ns, heartbeat_ns, drain_ns; /* immutable */

    bool started; /* the ticker runs (mu) */
    pthread_t ticker;
    pthread_mutex_t tick_mu; /* a leaf lock */
    pthread_cond_t tick_cv;
    bool tick_kick;            /* tick_mu */
    _Atomic bool leaving;      /* stopping: no new connections or sessions (release/acquire) */
    _Atomic bool closing;      /* the ticker ends; everything closes (release/acquire) */
    _Atomic uint32_t byes_out; /* BYEs queued at stop and not yet written */
    bool closed;               /* tr__links_close finished (only the stopping thread) */

    _Atomic uint64_t refused, bad_frames, dead_letters; /* atomic adds from any thread */
};

/* ---- link.c ---- */
/* The peer with node id node, or NULL. No lock needed. */
struct peer *tr__peer_find(struct links *L, uint64_t node);
/* Makes and publishes a peer for node (links.mu held). NULL: no memory. */
struct peer *tr__peer_new(struct links *L, uint64_t node, uint64_t my_session);
void tr__peer_free(struct peer *p);
/* Binds c, whose handshake just completed, to its peer; for a dialled c it
 * also queues AUTH. Called from c's receive completion, no lock held.
 * False when c was closed instead (a duplicate, a session that changed
 * meanwhile, or the runtime stopping). */
bool tr__peer_bind(struct lconn *c);
/* Handles a DATA, ACK, HEARTBEAT or BYE frame from c, which is up. False
 * when c was closed. Receive completion only. */
bool tr__peer_frame(struct lconn *c, const wire_frame *f);
/* Adds to c's send what its peer has to say: acks, heartbeats, data frames.
 * p->mu and c->mu held. */
void tr__peer_fill(struct peer *p, struct lconn *c);
/* Adds only the ack, if one is due (before a BYE). Same locks. */
void tr__peer_fill_ack(struct peer *p, struct lconn *c);
/* Declares p down (rx_mu and mu held): its session ends, and its connection
 * closes for why. Returns the local actors to tell, for tr__peer_tell
 * (rx_mu still held). */
idmap tr__peer_down(struct peer *p, tr_err why);
/* Sends MK_NODEDOWN to every actor in touched (p->rx_mu held) and frees it. */
void tr__peer_tell(struct peer *p, idmap *touched);

/* ---- link_conn.c ---- */
/* Wraps io (owned from now) in a new connection and starts reading (links.mu
 * held). t: the target that dialled it, NULL if accepted. NULL: no memory
 * (io is freed). */
struct lconn *tr__lconn_new(struct links *L, conn *io, struct target *t);
/* Frees a reaped connection: io first (waits for its completions). */
void tr__lconn_free(struct lconn *c);
/* Starts the next send if none is in flight (c->mu held, and p->mu when c
 * is bound to p; p may be NULL). */
void tr__lconn_pump(struct lconn *c, struct peer *p);
/* Appends a length-prefixed frame to what c sends next (c->mu held). False:
 * no memory. */
bool tr__lconn_queue(struct lconn *c, const wire_buf *frame);
/* Closes c for reason (no lock held, or links.mu only): unbinds it,
 * counts it as refused if it never came up, and wakes the ticker to reap
 * it. Idempotent. */
void tr__lconn_fail(struct lconn *c, tr_err reason);
/* The same with p->mu held, c being bound to p (or having been). */
void tr__lconn_fail_locked(struct lconn *c, struct peer *p, tr_err reason);
/* Queues BYE(reason) and closes c once it is written (c->mu held, and
 * p->mu when bound to p). */
void tr__lconn_bye(struct lconn *c, struct peer *p, tr_err reason);
/* Queues the dialler's AUTH naming session (c->mu held). False: no memory
 * or no SHA-256. */
bool tr__lconn_queue_auth(struct lconn *c, uint64_t session);
/* Appends len bytes to the send being gathered (c->mu held, not sending).
 * False: no memory. */
bool tr__lconn_put(struct lconn *c, const uint8_t *bytes, size_t len);
/* Appends the frame in b with its length prefix, likewise. */
bool tr__lconn_put_frame(struct lconn *c, const wire_buf *b);

/* ---- link_node.c ---- */
/* Wakes the ticker (any lock may be held). */
void tr__links_kick(struct links *L);

#endif /* TROUPE_LINK_H */
