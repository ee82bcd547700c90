/*
 * conn_inproc.c — node-link connections between runtimes of one process
 * (inproc://NAME), since nng 1.5.2 has no inproc byte stream (see conn.h).
 *
 * A connection is a pipe: two ends sharing one lock and two bounded byte
 * queues, one per direction. A send copies what fits into the queue
 * toward the other end (it waits only while that queue is full); a receive
 * takes what is queued (it waits only while the queue is empty). Every
 * completion is handed to an nng aio of the end and finished there, so it
 * runs on one of nng's threads, never inline in the caller, as conn.h
 * promises. Listeners are found by name in one registry per process: like
 * nng's own inproc transport, the name space is the process.
 */
#include "conn.h"

#include <nng/nng.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define INPROC_QUEUE_MAX (256u << 10) /* bytes buffered per direction */
#define INPROC_NAME_MAX 255

typedef struct byteq {
    uint8_t *data; /* INPROC_QUEUE_MAX bytes, a ring */
    size_t head, len;
} byteq;

struct inproc_pipe;

typedef struct inproc_end {
    conn base;
    struct inproc_pipe *pipe;
    int side;
    nng_aio *send_note, *recv_note; /* finish here to run a completion */
    /* pipe->mu: the operations waiting, and each one's result for its note */
    const uint8_t *send_buf;
    size_t send_len, send_n;
    bool send_wait;
    tr_err send_err;
    uint8_t *recv_buf;
    size_t recv_cap, recv_n;
    bool recv_wait;
    tr_err recv_err;
} inproc_end;

typedef struct inproc_pipe {
    pthread_mutex_t mu;
    byteq q[2];                       /* q[i]: bytes on their way to end i */
    bool closed[2];                   /* end i was closed */
    inproc_end *end[2];               /* NULL once that end is being freed */
    int ends;                         /* ends not yet freed */
    struct inproc_pipe *next_pending; /* the listener's queue (inproc_mu) */
} inproc_pipe;

typedef struct inproc_listener {
    conn_listener base;
    struct inproc_listener *next; /* registry (inproc_mu) */
    char name[INPROC_NAME_MAX + 1];
    conn_accept_fn fn;
    void *arg;
    nng_aio *note;
    inproc_pipe *pending, *pending_tail; /* accepted, not yet handed to fn (inproc_mu) */
    bool note_busy;                      /* note is on its way (inproc_mu) */
} inproc_listener;

typedef struct inproc_dialer {
    conn_dialer base;
    char name[INPROC_NAME_MAX + 1];
    conn_dial_fn fn;
    void *arg;
    nng_aio *note;
    tr_err result; /* the attempt's result and connection, for the note */
    conn *c;
} inproc_dialer;

/* The registry of listeners by name; the only process-wide state, as inproc
 * names are process-wide. Also guards listeners' pending queues. */
static pthread_mutex_t inproc_mu = PTHREAD_MUTEX_INITIALIZER;
static inproc_listener *inproc_listeners;

/* Runs the callback of note on an nng thread. */
static void note_fire(nng_aio *note)
{
    if (nng_aio_begin(note))
        nng_aio_finish(note, 0);
}

/* ---- byte queues ---------------------------------------------------------- */

static size_t byteq_put(byteq *q, const uint8_t *src, size_t len)
{
    size_t n = INPROC_QUEUE_MAX - q->len < len ? INPROC_QUEUE_MAX - q->len : len;
    size_t tail = (q->head + q->len) % INPROC_QUEUE_MAX;
    size_t first = INPROC_QUEUE_MAX - tail < n ? INPROC_QUEUE_MAX - tail : n;
    memcpy(q->data + tail, src, first);
    memcpy(q->data, src + first, n - first);
    q->len += n;
    return n;
}

static size_t byteq_get(byteq *q, uint8_t *dst, size_t cap)
{
    size_t n = q->len < cap ? q->len : cap;
    size_t first = INPROC_QUEUE_MAX - q->head < n ? INPROC_QUEUE_MAX - q->head : n;
    memcpy(dst, q->data + q->head, first);
    memcpy(dst + first, q->data, n - first);
    q->head = (q->head + n) % INPROC_QUEUE_MAX;
    q->len -= n;
    return n;
}

/* ---- moving bytes (pipe->mu held) ----------------------------------------- */

static void end_try_recv(inproc_pipe *p, inproc_end *e);

static void end_finish_send(inproc_end *e, tr_err err, size_t n)
{
    e->send_wait = false;
    e->send_err = err;
    e->send_n = n;
    note_fire(e->send_note);
}

static void end_finish_recv(inproc_end *e, tr_err err, size_t n)
{
    e->recv_wait = false;
    e->recv_err = err;
    e->recv_n = n;
    note_fire(e->recv_note);
}

/* Completes e's waiting send if it can go now. */
static void end_try_send(inproc_pipe *p, inproc_end *e)
{
    if (e == NULL || !e->send_wait)
        return;
    int to = 1 - e->side;
    if (p->closed[e->side] || p->closed[to]) {
        end_finish_send(e, p->closed[e->side] ? TR_ECANCELED : TR_ESYS, 0);
        return;
    }
    size_t n = byteq_put(&p->q[to], e->send_buf, e->send_len);
    if (n == 0)
        return; /* full: wait for the reader */
    end_finish_send(e, TR_OK, n);
    end_try_recv(p, p->end[to]);
}

/* Completes e's waiting receive if bytes are there (or never will be). */
static void end_try_recv(inproc_pipe *p, inproc_end *e)
{
    if (e == NULL || !e->recv_wait)
        return;
    if (p->closed[e->side]) {
        end_finish_recv(e, TR_ECANCELED, 0);
        return;
    }
    byteq *q = &p->q[e->side];
    if (q->len == 0) {
        if (p->closed[1 - e->side])
            end_finish_recv(e, TR_ESYS, 0); /* the other end is gone: end of stream */
        return;
    }
    end_finish_recv(e, TR_OK, byteq_get(q, e->recv_buf, e->recv_cap));
    end_try_send(p, p->end[1 - e->side]); /* room again */
}

/* ---- connection operations ----------------------------------------------- */

static void end_send_note(void *arg)
{
    inproc_end *e = arg;
    if (nng_aio_result(e->send_note) != 0)
        return; /* the end is being freed */
    pthread_mutex_lock(&e->pipe->mu);
    tr_err err = e->send_err;
    size_t n = e->send_n;
    pthread_mutex_unlock(&e->pipe->mu);
    e->base.on_sent(e->base.arg, err, n);
}

static void end_recv_note(void *arg)
{
    inproc_end *e = arg;
    if (nng_aio_result(e->recv_note) != 0)
        return;
    pthread_mutex_lock(&e->pipe->mu);
    tr_err err = e->recv_err;
    size_t n = e->recv_n;
    pthread_mutex_unlock(&e->pipe->mu);
    e->base.on_recv(e->base.arg, err, n);
}

static void ip_send(conn *base, const void *buf, size_t len)
{
    inproc_end *e = (inproc_end *)base;
    inproc_pipe *p = e->pipe;
    pthread_mutex_lock(&p->mu);
    e->send_buf = buf;
    e->send_len = len;
    e->send_wait = true;
    end_try_send(p, e);
    pthread_mutex_unlock(&p->mu);
}

static void ip_recv(conn *base, void *buf, size_t cap)
{
    inproc_end *e = (inproc_end *)base;
    inproc_pipe *p = e->pipe;
    pthread_mutex_lock(&p->mu);
    e->recv_buf = buf;
    e->recv_cap = cap;
    e->recv_wait = true;
    end_try_recv(p, e);
    pthread_mutex_unlock(&p->mu);
}

static void ip_close(conn *base)
{
    inproc_end *e = (inproc_end *)base;
    inproc_pipe *p = e->pipe;
    pthread_mutex_lock(&p->mu);
    if (!p->closed[e->side]) {
        p->closed[e->side] = true;
        for (int i = 0; i < 2; i++) {
            end_try_send(p, p->end[i]);
            end_try_recv(p, p->end[i]);
        }
    }
    pthread_mutex_unlock(&p->mu);
}

static void pipe_release(inproc_pipe *p)
{
    pthread_mutex_lock(&p->mu);
    bool last = --p->ends == 0;
    pthread_mutex_unlock(&p->mu);
    if (!last)
        return;
    free(p->q[0].data);
    free(p->q[1].data);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static void ip_free(conn *base)
{
    inproc_end *e = (inproc_end *)base;
    inproc_pipe *p = e->pipe;
    /* Unpublish first: once the other end cannot finish our notes, stopping
     * them waits for the last completion. */
    pthread_mutex_lock(&p->mu);
    p->end[e->side] = NULL;
    pthread_mutex_unlock(&p->mu);
    nng_aio_stop(e->send_note);
    nng_aio_stop(e->recv_note);
    nng_aio_free(e->send_note);
    nng_aio_free(e->recv_note);
    free(e);
    pipe_release(p);
}

static const conn_ops inproc_conn_ops = {ip_send, ip_recv, ip_close, ip_free};

/* A new pipe with both ends. */
static inproc_pipe *pipe_new(void)
{
    inproc_pipe *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->q[0].data = malloc(INPROC_QUEUE_MAX);
    p->q[1].data = malloc(INPROC_QUEUE_MAX);
    bool ok = p->q[0].data != NULL && p->q[1].data != NULL;
    for (int i = 0; i < 2 && ok; i++) {
        inproc_end *e = calloc(1, sizeof *e);
        if (e == NULL) {
            ok = false;
            break;
        }
        p->end[i] = e;
        e->base.ops = &inproc_conn_ops;
        e->pipe = p;
        e->side = i;
        ok = nng_aio_alloc(&e->send_note, end_send_note, e) == 0 &&
             nng_aio_alloc(&e->recv_note, end_recv_note, e) == 0;
    }
    if (ok) {
        pthread_mutex_init(&p->mu, NULL);
        p->ends = 2;
        return p;
    }
    for (int i = 0; i < 2; i++) {
        if (p->end[i] != NULL) {
            nng_aio_free(p->end[i]->send_note);
            nng_aio_free(p->end[i]->recv_note);
            free(p->end[i]);
        }
    }
    free(p->q[0].data);
    free(p->q[1].data);
    free(p);
    return NULL;
}

/* ---- listening ------------------------------------------------------------ */

static tr_err inproc_name(char *out, const char *url)
{
    const char *name = url + strlen("inproc://");
    size_t n = strlen(name);
    if (n == 0)
        return TR_EINVAL;
    if (n > INPROC_NAME_MAX)
        return TR_ETOOBIG;
    memcpy(out, name, n + 1);
    return TR_OK;
}

/* Hands queued connections to the listener's fn. */
static void il_note(void *arg)
{
    inproc_listener *l = arg;
    if (nng_aio_result(l->note) != 0)
        return;
    for (;;) {
        pthread_mutex_lock(&inproc_mu);
        inproc_pipe *p = l->pending;
        if (p == NULL) {
            l->note_busy = false;
            pthread_mutex_unlock(&inproc_mu);
            return;
        }
        l->pending = p->next_pending;
        if (l->pending == NULL)
            l->pending_tail = NULL;
        pthread_mutex_unlock(&inproc_mu);
        l->fn(l->arg, &p->end[1]->base);
    }
}

tr_err tr__conn_inproc_listen(conn_listener **out, const char *url, conn_accept_fn fn, void *arg)
{
    inproc_listener *l = calloc(1, sizeof *l);
    if (l == NULL)
        return TR_ENOMEM;
    tr_err err = inproc_name(l->name, url);
    if (err == TR_OK && nng_aio_alloc(&l->note, il_note, l) != 0)
        err = TR_ENOMEM;
    if (err != TR_OK) {
        free(l);
        return err;
    }
    l->base.inproc = true;
    l->fn = fn;
    l->arg = arg;
    pthread_mutex_lock(&inproc_mu);
    for (inproc_listener *o = inproc_listeners; o != NULL; o = o->next)
        if (strcmp(o->name, l->name) == 0)
            err = TR_EBUSY;
    if (err == TR_OK) {
        l->next = inproc_listeners;
        inproc_listeners = l;
    }
    pthread_mutex_unlock(&inproc_mu);
    if (err != TR_OK) {
        nng_aio_free(l->note);
        free(l);
        return err;
    }
    *out = &l->base;
    return TR_OK;
}

void tr__conn_inproc_listener_free(conn_listener *base)
{
    inproc_listener *l = (inproc_listener *)base;
    pthread_mutex_lock(&inproc_mu);
    for (inproc_listener **pp = &inproc_listeners; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    inproc_pipe *pending = l->pending;
    l->pending = l->pending_tail = NULL;
    pthread_mutex_unlock(&inproc_mu);
    nng_aio_stop(l->note);
    nng_aio_free(l->note);
    while (pending != NULL) { /* dialled but never accepted: the dialler sees them end */
        inproc_pipe *next = pending->next_pending;
        tr__conn_free(&pending->end[1]->base);
        pending = next;
    }
    free(l);
}

/* ---- dialling ------------------------------------------------------------- */

static void id_note(void *arg)
{
    inproc_dialer *d = arg;
    tr_err err = nng_aio_result(d->note) != 0 ? TR_ECANCELED : d->result;
    conn *c = d->c;
    d->c = NULL;
    if (err != TR_OK && c != NULL) {
        tr__conn_free(c);
        c = NULL;
    }
    d->fn(d->arg, err, c);
}

tr_err tr__conn_inproc_dialer_new(conn_dialer **out, const char *url, conn_dial_fn fn, void *arg)
{
    inproc_dialer *d = calloc(1, sizeof *d);
    if (d == NULL)
        return TR_ENOMEM;
    tr_err err = inproc_name(d->name, url);
    if (err == TR_OK && nng_aio_alloc(&d->note, id_note, d) != 0)
        err = TR_ENOMEM;
    if (err != TR_OK) {
        free(d);
        return err;
    }
    d->base.inproc = true;
    d->fn = fn;
    d->arg = arg;
    *out = &d->base;
    return TR_OK;
}

void tr__conn_inproc_dial(conn_dialer *base)
{
    inproc_dialer *d = (inproc_dialer *)base;
    d->result = TR_ENOROUTE;
    d->c = NULL;
    pthread_mutex_lock(&inproc_mu);
    inproc_listener *l = inproc_listeners;
    while (l != NULL && strcmp(l->name, d->name) != 0)
        l = l->next;
    if (l != NULL) {
        inproc_pipe *p = pipe_new();
        if (p == NULL) {
            d->result = TR_ENOMEM;
        } else {
            /* End 0 is the dialler's, end 1 the listener's. */
            d->result = TR_OK;
            d->c = &p->end[0]->base;
            if (l->pending_tail != NULL)
                l->pending_tail->next_pending = p;
            else
                l->pending = p;
            l->pending_tail = p;
            if (!l->note_busy) {
                l->note_busy = true;
                note_fire(l->note);
            }
        }
    }
    pthread_mutex_unlock(&inproc_mu);
    note_fire(d->note);
}

void tr__conn_inproc_dialer_free(conn_dialer *base)
{
    inproc_dialer *d = (inproc_dialer *)base;
    nng_aio_stop(d->note);
    if (d->c != NULL) /* a result its note never delivered */
        tr__conn_free(d->c);
    nng_aio_free(d->note);
    free(d);
}
