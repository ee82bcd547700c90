/*
 * msg.c — message nodes: allocation through per-thread caches, the payload
 * builder over msgpack_packer, and the envelope accessors.
 *
 * A node is one fixed-size block with a small inline payload; bigger
 * payloads grow a heap buffer the node owns. Nodes are recycled through the
 * context's cache and a per-runtime pool of batches, so the steady-state
 * send path does not call malloc. This file must not touch mailboxes or
 * actors.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_MAX 256  /* nodes a context keeps before giving a batch back */
#define CACHE_BATCH 64 /* nodes moved between a cache and the pool at once */
#define POOL_MAX 4096  /* batches the pool keeps (32 MiB of nodes); beyond that nodes are freed */

uint64_t tr__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void msg_reset(tr_msg *m)
{
    atomic_store_explicit(&m->link.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&m->link.seq, 0, memory_order_relaxed);
    m->target_inc = 0;
    m->kind = MK_USER;
    m->flags = 0;
    m->status = 0;
    m->from = TR_REF_NIL;
    m->corr = 0;
    m->deadline = 0;
    m->data = m->inline_buf;
    m->len = 0;
    m->cap = MSG_INLINE;
    m->tag[0] = '\0';
}

/* Takes one batch from the pool into c; false if the pool is empty. */
static bool msg_cache_refill(tr_runtime *rt, msg_cache *c)
{
    pthread_mutex_lock(&rt->pool_lock);
    tr_msg *batch = rt->pool_batches;
    if (batch != NULL) {
        rt->pool_batches = (tr_msg *)(uintptr_t)batch->corr;
        rt->pool_nbatches--;
    }
    pthread_mutex_unlock(&rt->pool_lock);
    if (batch == NULL)
        return false;
    c->free = batch;
    c->n = CACHE_BATCH;
    return true;
}

tr_msg *tr__msg_alloc(tr_ctx *ctx)
{
    tr_msg *m = NULL;
    if (ctx != NULL) {
        msg_cache *c = &ctx->cache;
        if (c->free != NULL || msg_cache_refill(ctx->rt, c)) {
            m = c->free;
            c->free = (tr_msg *)atomic_load_explicit(&m->link.next, memory_order_relaxed);
            c->n--;
        }
    }
    if (m == NULL) {
        m = malloc(sizeof *m);
        if (m == NULL)
            return NULL;
    }
    msg_reset(m);
    return m;
}

/* Moves CACHE_BATCH nodes from c to the pool, or frees them if it is full. */
static void msg_cache_spill(tr_runtime *rt, msg_cache *c)
{
    tr_msg *batch = c->free, *last = batch;
    for (uint32_t i = 1; i < CACHE_BATCH; i++)
        last = (tr_msg *)atomic_load_explicit(&last->link.next, memory_order_relaxed);
    c->free = (tr_msg *)atomic_load_explicit(&last->link.next, memory_order_relaxed);
    c->n -= CACHE_BATCH;
    atomic_store_explicit(&last->link.next, NULL, memory_order_relaxed);

    pthread_mutex_lock(&rt->pool_lock);
    if (rt->pool_nbatches < POOL_MAX) {
        batch->corr = (uint64_t)(uintptr_t)rt->pool_batches;
        rt->pool_batches = batch;
        rt->pool_nbatches++;
        batch = NULL;
    }
    pthread_mutex_unlock(&rt->pool_lock);
    while (batch != NULL) {
        tr_msg *next = (tr_msg *)atomic_load_explicit(&batch->link.next, memory_order_relaxed);
        free(batch);
        batch = next;
    }
}

void tr__msg_release(tr_ctx *ctx, tr_msg *m)
{
    if (m == NULL)
        return;
    if (m->flags & MF_QHELD) {
        /* The mailbox still links through it: it frees it when it lets go. */
        m->flags |= MF_QDEAD;
        return;
    }
    if (m->flags & MF_HEAPBUF)
        free(m->data);
    if (ctx == NULL) {
        free(m);
        return;
    }
    msg_cache *c = &ctx->cache;
    atomic_store_explicit(&m->link.next, (mbox_node *)c->free, memory_order_relaxed);
    c->free = m;
    if (++c->n > CACHE_MAX)
        msg_cache_spill(ctx->rt, c);
}

void tr__msg_dispose_released(tr_ctx *ctx, mbox_node *node)
{
    if (node == NULL)
        return;
    tr_msg *m = (tr_msg *)node;
    bool dead = (m->flags & MF_QDEAD) != 0;
    m->flags &= (uint8_t) ~(MF_QHELD | MF_QDEAD);
    if (dead)
        tr__msg_release(ctx, m);
}

void tr__msg_cache_drain(tr_runtime *rt, msg_cache *c)
{
    (void)rt;
    while (c->free != NULL) {
        tr_msg *next = (tr_msg *)atomic_load_explicit(&c->free->link.next, memory_order_relaxed);
        free(c->free);
        c->free = next;
    }
    c->n = 0;
}

void tr__msg_pool_free(tr_runtime *rt)
{
    while (rt->pool_batches != NULL) {
        tr_msg *batch = rt->pool_batches;
        rt->pool_batches = (tr_msg *)(uintptr_t)batch->corr;
        while (batch != NULL) {
            tr_msg *next = (tr_msg *)atomic_load_explicit(&batch->link.next, memory_order_relaxed);
            free(batch);
            batch = next;
        }
    }
    rt->pool_nbatches = 0;
}

tr_err tr__msg_set_tag(tr_msg *m, const char *tag)
{
    /* Tags are a few bytes: a plain loop beats strnlen + memcpy calls. */
    size_t i = 0;
    while (i <= TR_TAG_MAX && (m->tag[i] = tag[i]) != '\0')
        i++;
    if (i == 0)
        return TR_EINVAL;
    if (i > TR_TAG_MAX) {
        m->tag[0] = '\0';
        return TR_ETOOBIG;
    }
    return TR_OK;
}

tr_err tr_msg_new(tr_msg **out, tr_ctx *ctx, const char *tag)
{
    if (out == NULL || tag == NULL)
        return TR_EINVAL;
    tr_msg *m = tr__msg_alloc(ctx);
    if (m == NULL)
        return TR_ENOMEM;
    tr_err err = tr__msg_set_tag(m, tag);
    if (err != TR_OK) {
        tr__msg_release(ctx, m);
        return err;
    }
    *out = m;
    return TR_OK;
}

void tr_msg_free(tr_msg *m) { tr__msg_release(NULL, m); }

/* ---- payload building ---------------------------------------------------- */

tr_err tr__msg_reserve(tr_msg *m, size_t extra)
{
    if (extra <= (size_t)(m->cap - m->len))
        return TR_OK;
    size_t need = (size_t)m->len + extra;
    if (need > TR_PAYLOAD_MAX) {
        m->flags |= MF_NOMEM;
        return TR_ETOOBIG;
    }
    size_t cap = (size_t)m->cap * 2;
    if (cap < 256)
        cap = 256;
    if (cap < need)
        cap = need;
    if (cap > TR_PAYLOAD_MAX)
        cap = TR_PAYLOAD_MAX;
    uint8_t *buf;
    if (m->flags & MF_HEAPBUF) {
        buf = realloc(m->data, cap);
    } else {
        buf = malloc(cap);
        if (buf != NULL)
            memcpy(buf, m->data, m->len);
    }
    if (buf == NULL) {
        m->flags |= MF_NOMEM;
        return TR_ENOMEM;
    }
    m->data = buf;
    m->cap = (uint32_t)cap;
    m->flags |= MF_HEAPBUF;
    return TR_OK;
}

/* msgpack_packer write callback: appends to the message's payload. */
static int msg_write(void *data, const char *buf, size_t len)
{
    tr_msg *m = data;
    if (m->flags & MF_NOMEM)
        return -1;
    if (tr__msg_reserve(m, len) != TR_OK)
        return -1;
    memcpy(m->data + m->len, buf, len);
    m->len += (uint32_t)len;
    return 0;
}

void tr_msg_packer(tr_msg *m, msgpack_packer *pk) { msgpack_packer_init(pk, m, msg_write); }

/* Runs one msgpack_pack_* call against m and maps its result. */
#define PACK_WITH(m, call)                        \
    do {                                          \
        if ((m) == NULL)                          \
            return TR_EINVAL;                     \
        msgpack_packer pk;                        \
        msgpack_packer_init(&pk, (m), msg_write); \
        if ((call) != 0)                          \
            return TR_ENOMEM;                     \
        return TR_OK;                             \
    } while (0)

/* Appends the shortest msgpack encoding of an integer, as msgpack-c does,
 * without going through the packer's write callback. */
static tr_err msg_put_int(tr_msg *m, int64_t v)
{
    if (m == NULL)
        return TR_EINVAL;
    if ((m->flags & MF_NOMEM) || tr__msg_reserve(m, 9) != TR_OK)
        return TR_ENOMEM;
    uint8_t *p = m->data + m->len;
    uint64_t u = (uint64_t)v;
    int n;
    if (v >= -32 && v <= 127) {
        p[0] = (uint8_t)v;
        n = 1;
    } else if (v >= 0) {
        int w = u <= 0xff ? 1 : u <= 0xffff ? 2 : u <= 0xffffffffu ? 4 : 8;
        p[0] = (uint8_t)(w == 1 ? 0xcc : w == 2 ? 0xcd : w == 4 ? 0xce : 0xcf);
        for (int i = 0; i < w; i++)
            p[1 + i] = (uint8_t)(u >> (8 * (w - 1 - i)));
        n = 1 + w;
    } else {
        int w = v >= INT8_MIN ? 1 : v >= INT16_MIN ? 2 : v >= INT32_MIN ? 4 : 8;
        p[0] = (uint8_t)(w == 1 ? 0xd0 : w == 2 ? 0xd1 : w == 4 ? 0xd2 : 0xd3);
        for (int i = 0; i < w; i++)
            p[1 + i] = (uint8_t)(u >> (8 * (w - 1 - i)));
        n = 1 + w;
    }
    m->len += (uint32_t)n;
    return TR_OK;
}

tr_err tr_pack_int(tr_msg *m, int64_t v) { return msg_put_int(m, v); }

tr_err tr_pack_uint(tr_msg *m, uint64_t v) { PACK_WITH(m, msgpack_pack_uint64(&pk, v)); }
tr_err tr_pack_double(tr_msg *m, double v) { PACK_WITH(m, msgpack_pack_double(&pk, v)); }
tr_err tr_pack_nil(tr_msg *m) { PACK_WITH(m, msgpack_pack_nil(&pk)); }
tr_err tr_pack_array(tr_msg *m, uint32_t n) { PACK_WITH(m, msgpack_pack_array(&pk, n)); }
tr_err tr_pack_map(tr_msg *m, uint32_t n) { PACK_WITH(m, msgpack_pack_map(&pk, n)); }

tr_err tr_pack_bool(tr_msg *m, bool v)
{
    PACK_WITH(m, v ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
}

tr_err tr_pack_strn(tr_msg *m, const char *s, size_t len)
{
    if (s == NULL && len != 0)
        return TR_EINVAL;
    if (len > TR_PAYLOAD_MAX)
        return TR_ETOOBIG;
    PACK_WITH(m, msgpack_pack_str_with_body(&pk, s, len));
}

tr_err tr_pack_str(tr_msg *m, const char *s)
{
    if (s == NULL)
        return TR_EINVAL;
    return tr_pack_strn(m, s, strlen(s));
}

tr_err tr_pack_bin(tr_msg *m, const void *p, size_t len)
{
    if (p == NULL && len != 0)
        return TR_EINVAL;
    if (len > TR_PAYLOAD_MAX)
        return TR_ETOOBIG;
    PACK_WITH(m, msgpack_pack_bin_with_body(&pk, p, len));
}

tr_err tr_pack_ref(tr_msg *m, tr_ref r)
{
    PACK_WITH(m, msgpack_pack_array(&pk, 3) || msgpack_pack_uint64(&pk, r.node) ||
                     msgpack_pack_uint32(&pk, r.id) || msgpack_pack_uint32(&pk, r.incarnation));
}

tr_err tr_msg_set_payload(tr_msg *m, const void *bytes, size_t len)
{
    if (m == NULL || (bytes == NULL && len != 0))
        return TR_EINVAL;
    if (len > TR_PAYLOAD_MAX)
        return TR_ETOOBIG;
    tr_err err = tr_validate(bytes, len);
    if (err != TR_OK)
        return err;
    uint32_t old_len = m->len;
    m->len = 0;
    err = tr__msg_reserve(m, len);
    if (err != TR_OK) {
        m->len = old_len;
        m->flags &= (uint8_t)~MF_NOMEM;
        return err;
    }
    if (len != 0)
        memcpy(m->data, bytes, len);
    m->len = (uint32_t)len;
    return TR_OK;
}

tr_err tr__pack_reason(tr_msg *m, const tr_reason *why)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, m, msg_write);
    size_t tlen = strnlen(why->text, TR_REASON_TEXT_MAX);
    if (msgpack_pack_array(&pk, 3) || msgpack_pack_int32(&pk, (int32_t)why->kind) ||
        msgpack_pack_int32(&pk, why->code) || msgpack_pack_str_with_body(&pk, why->text, tlen))
        return TR_ENOMEM;
    return TR_OK;
}

tr_err tr__unpack_reason(const uint8_t *p, size_t len, tr_reason *why)
{
    tr_cursor c;
    uint32_t n;
    int64_t kind, code;
    const char *text;
    size_t tlen;
    tr_cursor_init_bytes(&c, p, len);
    tr_err err = tr_cursor_array(&c, &n);
    if (err != TR_OK)
        return err;
    if (n != 3)
        return TR_EBADMSG;
    if ((err = tr_cursor_int(&c, &kind)) != TR_OK || (err = tr_cursor_int(&c, &code)) != TR_OK ||
        (err = tr_cursor_str(&c, &text, &tlen)) != TR_OK)
        return err;
    if (kind < 0 || kind > TR_EXIT_CODE || code < INT32_MIN || code > INT32_MAX)
        return TR_ERANGE;
    memset(why, 0, sizeof *why);
    why->kind = (tr_exit_kind)kind;
    why->code = (int32_t)code;
    if (tlen > TR_REASON_TEXT_MAX)
        tlen = TR_REASON_TEXT_MAX;
    memcpy(why->text, text, tlen);
    return TR_OK;
}

/* ---- envelope accessors -------------------------------------------------- */

const char *tr_msg_tag(const tr_msg *m) { return m != NULL ? m->tag : ""; }

bool tr_msg_is(const tr_msg *m, const char *tag)
{
    return m != NULL && tag != NULL && strcmp(m->tag, tag) == 0;
}

tr_ref tr_msg_from(const tr_msg *m) { return m != NULL ? m->from : TR_REF_NIL; }

const uint8_t *tr_msg_payload(const tr_msg *m, size_t *len)
{
    if (m == NULL) {
        if (len != NULL)
            *len = 0;
        return NULL;
    }
    if (len != NULL)
        *len = m->len;
    return m->data;
}

bool tr_msg_is_request(const tr_msg *m)
{
    return m != NULL && m->kind == MK_USER && (m->flags & MF_REQUEST) != 0;
}

bool tr_msg_expired(const tr_msg *m)
{
    return tr_msg_is_request(m) && m->deadline != 0 && tr__now_ns() > m->deadline;
}
