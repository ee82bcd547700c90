/*
 * conn_nng.c — node-link connections over nng's byte streams: ipc://,
 * tcp:// and tls+tcp:// (see conn.h), and the TLS material they use.
 *
 * Each connection is an nng_stream with one aio for sends and one for
 * receives; their callbacks, which nng runs on its own threads, turn into
 * the conn's completions. Listeners accept continuously; a failed accept
 * (out of file descriptors, say) is retried after a short pause rather
 * than ending the listener. This file must not know about frames or peers.
 */
#include "conn.h"

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_PEM_MAX (1u << 20)   /* largest certificate or key file read */
#define CONN_DIAL_TIMEOUT_MS 5000 /* one dial attempt at most */
#define CONN_ACCEPT_RETRY_MS 20   /* pause after a failed accept */

struct conn_tls {
    char *cert, *key, *ca; /* PEM text, NUL-terminated */
    char *password;        /* NULL = none */
    char *server_name;     /* NULL = not checked */
    nng_tls_auth_mode auth;
};

typedef struct nngs_conn {
    conn base;
    nng_stream *stream;
    nng_aio *send_aio, *recv_aio;
} nngs_conn;

typedef struct nngs_listener {
    conn_listener base;
    nng_stream_listener *l;
    nng_aio *aio;
    bool pausing; /* aio is sleeping after a failed accept (only its callback) */
    conn_accept_fn fn;
    void *arg;
} nngs_listener;

typedef struct nngs_dialer {
    conn_dialer base;
    nng_stream_dialer *d;
    nng_aio *aio;
    conn_dial_fn fn;
    void *arg;
} nngs_dialer;

static tr_err nng_err(int rv)
{
    switch (rv) {
    case 0:
        return TR_OK;
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
    case NNG_ECLOSED:
    case NNG_ECANCELED:
        return TR_ECANCELED;
    case NNG_ECONNREFUSED:
    case NNG_EUNREACHABLE:
    case NNG_ENOENT:
        return TR_ENOROUTE;
    case NNG_EPEERAUTH:
    case NNG_ECRYPTO:
        return TR_EAUTH;
    default:
        return TR_ESYS;
    }
}

/* ---- TLS material --------------------------------------------------------- */

/* Reads a whole PEM file into a NUL-terminated string. */
static tr_err pem_read(char **out, const char *path)
{
    *out = NULL;
    if (path == NULL)
        return TR_EINVAL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return TR_ENOTFOUND;
    char *buf = malloc(CONN_PEM_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        return TR_ENOMEM;
    }
    size_t n = fread(buf, 1, CONN_PEM_MAX + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad || n > CONN_PEM_MAX || n == 0) {
        free(buf);
        return bad ? TR_ENOTFOUND : n == 0 ? TR_EINVAL : TR_ETOOBIG;
    }
    buf[n] = '\0';
    *out = buf;
    return TR_OK;
}

static char *str_dup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* Builds an nng TLS configuration for one side from t. */
static tr_err tls_config(nng_tls_config **out, const conn_tls *t, nng_tls_mode mode)
{
    nng_tls_config *cfg;
    int rv = nng_tls_config_alloc(&cfg, mode);
    if (rv != 0)
        return rv == NNG_ENOTSUP ? TR_ENOTSUP : nng_err(rv);
    rv = nng_tls_config_auth_mode(cfg, t->auth);
    if (rv == 0 && t->ca != NULL)
        rv = nng_tls_config_ca_chain(cfg, t->ca, NULL);
    if (rv == 0)
        rv = nng_tls_config_own_cert(cfg, t->cert, t->key, t->password);
    if (rv == 0 && mode == NNG_TLS_MODE_CLIENT && t->server_name != NULL)
        rv = nng_tls_config_server_name(cfg, t->server_name);
    if (rv == 0)
        rv = nng_tls_config_version(cfg, NNG_TLS_1_2, NNG_TLS_1_2);
    if (rv != 0) {
        nng_tls_config_free(cfg);
        return rv == NNG_ENOMEM ? TR_ENOMEM : TR_EINVAL;
    }
    *out = cfg;
    return TR_OK;
}

/* True when t's key is the private half of its certificate's public key;
 * nng would only find out at the first handshake. */
static bool tls_key_matches(const conn_tls *t)
{
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&key);
    const char *pw = t->password != NULL ? t->password : "";
    bool ok =
        mbedtls_x509_crt_parse(&crt, (const unsigned char *)t->cert, strlen(t->cert) + 1) == 0 &&
        mbedtls_pk_parse_key(&key, (const unsigned char *)t->key, strlen(t->key) + 1,
                             (const unsigned char *)pw, strlen(pw)) == 0 &&
        mbedtls_pk_check_pair(&crt.pk, &key) == 0;
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&crt);
    return ok;
}

void tr__conn_tls_free(conn_tls *t)
{
    if (t == NULL)
        return;
    free(t->cert);
    free(t->key);
    free(t->ca);
    free(t->password);
    free(t->server_name);
    free(t);
}

tr_err tr__conn_tls_new(conn_tls **out, const tr_tls_opts *o)
{
    if (out == NULL || o == NULL || o->cert_file == NULL || o->key_file == NULL ||
        (o->ca_file == NULL && o->auth != TR_TLS_AUTH_NONE) || (unsigned)o->auth > 2)
        return TR_EINVAL;
    conn_tls *t = calloc(1, sizeof *t);
    if (t == NULL)
        return TR_ENOMEM;
    static const nng_tls_auth_mode modes[] = {NNG_TLS_AUTH_MODE_REQUIRED,
                                              NNG_TLS_AUTH_MODE_OPTIONAL, NNG_TLS_AUTH_MODE_NONE};
    t->auth = modes[o->auth];
    tr_err err = pem_read(&t->cert, o->cert_file);
    if (err == TR_OK)
        err = pem_read(&t->key, o->key_file);
    if (err == TR_OK && o->ca_file != NULL)
        err = pem_read(&t->ca, o->ca_file);
    if (err == TR_OK &&
        ((o->key_password != NULL && (t->password = str_dup(o->key_password)) == NULL) ||
         (o->server_name != NULL && (t->server_name = str_dup(o->server_name)) == NULL)))
        err = TR_ENOMEM;
    /* Parse everything now, so a bad file is reported here and not at the
     * first connection. */
    if (err == TR_OK && !tls_key_matches(t))
        err = TR_EINVAL;
    for (int mode = NNG_TLS_MODE_CLIENT; err == TR_OK && mode <= NNG_TLS_MODE_SERVER; mode++) {
        nng_tls_config *cfg;
        err = tls_config(&cfg, t, (nng_tls_mode)mode);
        if (err == TR_OK)
            nng_tls_config_free(cfg);
    }
    if (err != TR_OK) {
        tr__conn_tls_free(t);
        return err;
    }
    *out = t;
    return TR_OK;
}

static bool url_is_tls(const char *url) { return strncmp(url, "tls+", 4) == 0; }

/* ---- connections ---------------------------------------------------------- */

static void nc_send_done(void *arg)
{
    nngs_conn *c = arg;
    int rv = nng_aio_result(c->send_aio);
    c->base.on_sent(c->base.arg, nng_err(rv), rv == 0 ? nng_aio_count(c->send_aio) : 0);
}

static void nc_recv_done(void *arg)
{
    nngs_conn *c = arg;
    int rv = nng_aio_result(c->recv_aio);
    size_t n = rv == 0 ? nng_aio_count(c->recv_aio) : 0;
    /* A zero-byte read is the end of the stream. */
    c->base.on_recv(c->base.arg, rv != 0 ? nng_err(rv) : n == 0 ? TR_ESYS : TR_OK, n);
}

static void nc_send(conn *base, const void *buf, size_t len)
{
    nngs_conn *c = (nngs_conn *)base;
    nng_iov iov = {(void *)(uintptr_t)buf, len};
    nng_aio_set_iov(c->send_aio, 1, &iov); /* one element: cannot fail */
    nng_stream_send(c->stream, c->send_aio);
}

static void nc_recv(conn *base, void *buf, size_t cap)
{
    nngs_conn *c = (nngs_conn *)base;
    nng_iov iov = {buf, cap};
    nng_aio_set_iov(c->recv_aio, 1, &iov);
    nng_stream_recv(c->stream, c->recv_aio);
}

static void nc_close(conn *base) { nng_stream_close(((nngs_conn *)base)->stream); }

static void nc_free(conn *base)
{
    nngs_conn *c = (nngs_conn *)base;
    nng_aio_stop(c->send_aio);
    nng_aio_stop(c->recv_aio);
    nng_stream_free(c->stream);
    nng_aio_free(c->send_aio);
    nng_aio_free(c->recv_aio);
    free(c);
}

static const conn_ops nng_conn_ops = {nc_send, nc_recv, nc_close, nc_free};

/* Wraps a stream nng handed over; frees it on failure. */
static tr_err nc_wrap(conn **out, nng_stream *s)
{
    nngs_conn *c = calloc(1, sizeof *c);
    if (c == NULL || nng_aio_alloc(&c->send_aio, nc_send_done, c) != 0) {
        free(c);
        nng_stream_free(s);
        return TR_ENOMEM;
    }
    if (nng_aio_alloc(&c->recv_aio, nc_recv_done, c) != 0) {
        nng_aio_free(c->send_aio);
        free(c);
        nng_stream_free(s);
        return TR_ENOMEM;
    }
    c->base.ops = &nng_conn_ops;
    c->stream = s;
    *out = &c->base;
    return TR_OK;
}

/* ---- listening ------------------------------------------------------------ */

static void nl_accept_done(void *arg)
{
    nngs_listener *l = arg;
    int rv = nng_aio_result(l->aio);
    if (l->pausing) { /* the pause after a failed accept ended */
        l->pausing = false;
        if (rv == 0)
            nng_stream_listener_accept(l->l, l->aio);
        return;
    }
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
        return;
    if (rv != 0) {
        l->pausing = true;
        nng_sleep_aio(CONN_ACCEPT_RETRY_MS, l->aio);
        return;
    }
    conn *c;
    if (nc_wrap(&c, nng_aio_get_output(l->aio, 0)) == TR_OK)
        l->fn(l->arg, c);
    nng_stream_listener_accept(l->l, l->aio);
}

tr_err tr__conn_nng_listen(conn_listener **out, const char *url, const conn_tls *tls,
                           conn_accept_fn fn, void *arg)
{
    if (url_is_tls(url) && tls == NULL)
        return TR_EINVAL;
    nngs_listener *l = calloc(1, sizeof *l);
    if (l == NULL)
        return TR_ENOMEM;
    l->fn = fn;
    l->arg = arg;
    int rv = nng_stream_listener_alloc(&l->l, url);
    if (rv != 0) {
        free(l);
        return nng_err(rv);
    }
    tr_err err = TR_OK;
    if (url_is_tls(url)) {
        nng_tls_config *cfg;
        err = tls_config(&cfg, tls, NNG_TLS_MODE_SERVER);
        if (err == TR_OK) {
            /* The listener holds its own reference to cfg. */
            err = nng_err(nng_stream_listener_set_ptr(l->l, NNG_OPT_TLS_CONFIG, cfg));
            nng_tls_config_free(cfg);
        }
    }
    /* Small frames must not wait for Nagle's algorithm (nng's SP transports
     * set this themselves; its streams default to off). Not for ipc://. */
    nng_stream_listener_set_bool(l->l, NNG_OPT_TCP_NODELAY, true);
    if (err == TR_OK)
        err = nng_err(nng_aio_alloc(&l->aio, nl_accept_done, l));
    if (err == TR_OK && (err = nng_err(nng_stream_listener_listen(l->l))) != TR_OK)
        nng_aio_free(l->aio);
    if (err != TR_OK) {
        nng_stream_listener_free(l->l);
        free(l);
        return err;
    }
    nng_stream_listener_accept(l->l, l->aio);
    *out = &l->base;
    return TR_OK;
}

void tr__conn_nng_listener_free(conn_listener *base)
{
    nngs_listener *l = (nngs_listener *)base;
    nng_stream_listener_close(l->l);
    nng_aio_stop(l->aio);
    nng_stream_listener_free(l->l);
    nng_aio_free(l->aio);
    free(l);
}

/* ---- dialling ------------------------------------------------------------- */

static void nd_dial_done(void *arg)
{
    nngs_dialer *d = arg;
    int rv = nng_aio_result(d->aio);
    if (rv != 0) {
        d->fn(d->arg, nng_err(rv), NULL);
        return;
    }
    conn *c = NULL;
    tr_err err = nc_wrap(&c, nng_aio_get_output(d->aio, 0));
    d->fn(d->arg, err, c);
}

tr_err tr__conn_nng_dialer_new(conn_dialer **out, const char *url, const conn_tls *tls,
                               conn_dial_fn fn, void *arg)
{
    if (url_is_tls(url) && tls == NULL)
        return TR_EINVAL;
    nngs_dialer *d = calloc(1, sizeof *d);
    if (d == NULL)
        return TR_ENOMEM;
    d->fn = fn;
    d->arg = arg;
    int rv = nng_stream_dialer_alloc(&d->d, url);
    if (rv != 0) {
        free(d);
        return nng_err(rv);
    }
    tr_err err = TR_OK;
    if (url_is_tls(url)) {
        nng_tls_config *cfg;
        err = tls_config(&cfg, tls, NNG_TLS_MODE_CLIENT);
        if (err == TR_OK) {
            err = nng_err(nng_stream_dialer_set_ptr(d->d, NNG_OPT_TLS_CONFIG, cfg));
            nng_tls_config_free(cfg);
        }
    }
    nng_stream_dialer_set_bool(d->d, NNG_OPT_TCP_NODELAY, true); /* as for listeners */
    if (err == TR_OK)
        err = nng_err(nng_aio_alloc(&d->aio, nd_dial_done, d));
    if (err != TR_OK) {
        nng_stream_dialer_free(d->d);
        free(d);
        return err;
    }
    nng_aio_set_timeout(d->aio, CONN_DIAL_TIMEOUT_MS);
    *out = &d->base;
    return TR_OK;
}

void tr__conn_nng_dial(conn_dialer *base)
{
    nngs_dialer *d = (nngs_dialer *)base;
    nng_stream_dialer_dial(d->d, d->aio);
}

void tr__conn_nng_dialer_free(conn_dialer *base)
{
    nngs_dialer *d = (nngs_dialer *)base;
    nng_stream_dialer_close(d->d);
    nng_aio_stop(d->aio);
    nng_stream_dialer_free(d->d);
    nng_aio_free(d->aio);
    free(d);
}
