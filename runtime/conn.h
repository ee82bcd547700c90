/*
 * conn.h — the byte streams node links run over, behind one small
 * interface with two implementations: nng's streams (ipc://, tcp://,
 * tls+tcp://; conn_nng.c) and an in-process pipe (inproc://;
 * conn_inproc.c), since nng 1.5.2 has no inproc stream transport.
 *
 * A connection carries bytes both ways, in order, with at most one send and
 * one receive outstanding. Completions are called on another thread than
 * the one that started the operation (never inline), so a caller may hold
 * its own locks while it starts one. Nothing here knows about frames,
 * peers or actors: the link layer (link.c) puts its framing on top.
 */
#ifndef TROUPE_CONN_H
#define TROUPE_CONN_H

#include "troupe.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct conn conn;

/* A send or receive finished: err is TR_OK with n >= 1 bytes moved (a send
 * may move fewer bytes than asked; send the rest), or an error, after which
 * the connection carries nothing more: TR_ECANCELED when it was closed
 * here, TR_EAUTH when TLS refused the peer, TR_ESYS otherwise (reset, end
 * of stream). */
typedef void (*conn_done_fn)(void *arg, tr_err err, size_t n);

typedef struct conn_ops {
    void (*send)(conn *c, const void *buf, size_t len); /* buf stays valid until on_sent */
    void (*recv)(conn *c, void *buf, size_t cap);       /* cap >= 1 */
    void (*close)(conn *c);                             /* non-blocking; ends pending ops */
    void (*free)(conn *c); /* after close; waits for running completions; not from one */
} conn_ops;

struct conn {
    const conn_ops *ops;
    conn_done_fn on_sent, on_recv; /* set with tr__conn_start before the first operation */
    void *arg;
};

/* Names the completions of c; call once, before the first send or recv. */
static inline void tr__conn_start(conn *c, conn_done_fn on_sent, conn_done_fn on_recv, void *arg)
{
    c->on_sent = on_sent;
    c->on_recv = on_recv;
    c->arg = arg;
}

static inline void tr__conn_send(conn *c, const void *buf, size_t len)
{
    c->ops->send(c, buf, len);
}
static inline void tr__conn_recv(conn *c, void *buf, size_t cap) { c->ops->recv(c, buf, cap); }
static inline void tr__conn_close(conn *c) { c->ops->close(c); }
/* Closes (if not yet) and frees c. Blocks until no completion of c runs;
 * must not be called from one of c's completions. */
static inline void tr__conn_free(conn *c)
{
    c->ops->close(c);
    c->ops->free(c);
}

/* ------------------------------------------------------------------------ */
/* TLS material                                                              */
/* ------------------------------------------------------------------------ */

/* A node's certificate, key and trusted CAs, read from files once
 * (conn_nng.c). Immutable once made; shared by listeners and dialers. */
typedef struct conn_tls conn_tls;

/* Reads and checks o's files. TR_EINVAL (missing field, unparsable PEM or a
 * key that does not match), TR_ENOTFOUND (a file cannot be read),
 * TR_ETOOBIG (a file over 1 MiB), TR_ENOMEM, TR_ENOTSUP (no TLS in nng). */
tr_err tr__conn_tls_new(conn_tls **out, const tr_tls_opts *o);
void tr__conn_tls_free(conn_tls *t);

/* ------------------------------------------------------------------------ */
/* Listening and dialling                                                    */
/* ------------------------------------------------------------------------ */

/* A new connection came in; the callee owns c. Runs on an nng thread. */
typedef void (*conn_accept_fn)(void *arg, conn *c);

/* One dial attempt finished: c (owned by the callee) on TR_OK; else NULL
 * and TR_ENOROUTE (nobody listens there, refused or unreachable),
 * TR_ETIMEDOUT, TR_ECANCELED (the dialler is being freed), TR_ENOMEM,
 * TR_ESYS. */
typedef void (*conn_dial_fn)(void *arg, tr_err err, conn *c);

/* The first member of each implementation's listener and dialler. */
typedef struct conn_listener {
    bool inproc;
} conn_listener;
typedef struct conn_dialer {
    bool inproc;
} conn_dialer;

/* The two implementations (same contracts as the dispatchers below). */
tr_err tr__conn_nng_listen(conn_listener **out, const char *url, const conn_tls *tls,
                           conn_accept_fn fn, void *arg);
void tr__conn_nng_listener_free(conn_listener *l);
tr_err tr__conn_nng_dialer_new(conn_dialer **out, const char *url, const conn_tls *tls,
                               conn_dial_fn fn, void *arg);
void tr__conn_nng_dial(conn_dialer *d);
void tr__conn_nng_dialer_free(conn_dialer *d);
tr_err tr__conn_inproc_listen(conn_listener **out, const char *url, conn_accept_fn fn, void *arg);
void tr__conn_inproc_listener_free(conn_listener *l);
tr_err tr__conn_inproc_dialer_new(conn_dialer **out, const char *url, conn_dial_fn fn, void *arg);
void tr__conn_inproc_dial(conn_dialer *d);
void tr__conn_inproc_dialer_free(conn_dialer *d);

static inline bool tr__conn_is_inproc(const char *url) { return strncmp(url, "inproc://", 9) == 0; }

/*
 * Listens at url and calls fn for every connection accepted, until freed.
 * tls is needed for tls+tcp:// (else TR_EINVAL) and ignored otherwise.
 * Errors: TR_EINVAL (bad or unknown URL), TR_EBUSY (address in use),
 * TR_ENOMEM, TR_ESYS.
 */
static inline tr_err tr__conn_listen(conn_listener **out, const char *url, const conn_tls *tls,
                                     conn_accept_fn fn, void *arg)
{
    if (tr__conn_is_inproc(url))
        return tr__conn_inproc_listen(out, url, fn, arg);
    return tr__conn_nng_listen(out, url, tls, fn, arg);
}

/* Stops accepting and frees l; blocks until fn no longer runs (so not from
 * fn). Connections already handed out stay open. */
static inline void tr__conn_listener_free(conn_listener *l)
{
    if (l->inproc)
        tr__conn_inproc_listener_free(l);
    else
        tr__conn_nng_listener_free(l);
}

/* Makes a dialler for url (nothing is dialled yet). Errors as for listen. */
static inline tr_err tr__conn_dialer_new(conn_dialer **out, const char *url, const conn_tls *tls,
                                         conn_dial_fn fn, void *arg)
{
    if (tr__conn_is_inproc(url))
        return tr__conn_inproc_dialer_new(out, url, fn, arg);
    return tr__conn_nng_dialer_new(out, url, tls, fn, arg);
}

/* Starts one attempt; fn is called once with its result, never inline. At
 * most one attempt at a time. */
static inline void tr__conn_dial(conn_dialer *d)
{
    if (d->inproc)
        tr__conn_inproc_dial(d);
    else
        tr__conn_nng_dial(d);
}

/* Ends an attempt in progress (fn gets TR_ECANCELED) and frees d; blocks
 * until fn no longer runs (so not from fn). */
static inline void tr__conn_dialer_free(conn_dialer *d)
{
    if (d->inproc)
        tr__conn_inproc_dialer_free(d);
    else
        tr__conn_nng_dialer_free(d);
}

#endif /* TROUPE_CONN_H */
