/*
 * wire.c — the node-to-node frame codec (see wire.h and WIRE.md).
 *
 * This file owns the byte layout of frames and nothing else: it must not
 * do I/O, keep state between calls, or know about actors, mailboxes or the
 * link layer. Decoding trusts no byte of its input: the frame's length is
 * checked against the caller's limit first, then tr_validate proves it is
 * exactly one msgpack object whose every count and length fits in the
 * bytes that are there, with bounded nesting; only then does a cursor read
 * the fields, each checked for type and range. Nothing is allocated while
 * decoding, so a frame that declares billions of envelopes costs nothing.
 *
 * Encoding computes each frame's exact size before writing it, so a frame
 * over the limit is refused without writing it, and the buffer grows once.
 * The sizes below follow msgpack-c's packer, which always picks the
 * shortest encoding; an assert checks that they agree.
 */
#include "wire.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Longest DATA header before the envelopes: fixarray(5), version, kind,
 * seq and ack as uint64, and an array16 header for up to 4096 envelopes.
 * The builder leaves this much room in front and fills it in at the end. */
#define WIRE_DATA_HDR_MAX (1 + 1 + 1 + 9 + 9 + 3)
/* Room left in front of a DATA frame's envelopes: the longest header, and
 * a stream's length prefix before it (wire.h promises that room). */
#define WIRE_DATA_FRONT (WIRE_PREFIX_LEN + WIRE_DATA_HDR_MAX)

/* Elements of each frame kind's top-level array, and of an envelope. */
#define WIRE_HELLO_FIELDS 8
#define WIRE_DATA_FIELDS 5
#define WIRE_ACK_FIELDS 3
#define WIRE_HEARTBEAT_FIELDS 4
#define WIRE_BYE_FIELDS 3
#define WIRE_AUTH_FIELDS 4
#define WIRE_ENV_FIELDS 9

/* Smallest storage a buffer starts with. */
#define WIRE_BUF_MIN 256

/* ------------------------------------------------------------------------ */
/* Encoded sizes (msgpack-c's shortest forms)                                */
/* ------------------------------------------------------------------------ */

static size_t wire_uint_size(uint64_t v)
{
    return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : v <= UINT32_MAX ? 5 : 9;
}

static size_t wire_int_size(int32_t v)
{
    if (v >= 0)
        return wire_uint_size((uint64_t)v);
    return v >= -32 ? 1 : v >= -128 ? 2 : v >= -32768 ? 3 : 5;
}

static size_t wire_str_size(size_t n) { return (n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5) + n; }

static size_t wire_bin_size(size_t n) { return (n < 256 ? 2 : n < 65536 ? 3 : 5) + n; }

static size_t wire_array_hdr_size(uint32_t n) { return n < 16 ? 1 : n < 65536 ? 3 : 5; }

static size_t wire_ref_size(tr_ref r)
{
    return 1 + wire_uint_size(r.node) + wire_uint_size(r.id) + wire_uint_size(r.incarnation);
}

static size_t wire_env_size(const wire_env *e)
{
    return 1 + wire_uint_size(e->kind) + wire_uint_size(e->flags) + wire_ref_size(e->to) +
           wire_ref_size(e->from) + wire_uint_size(e->corr) + wire_uint_size(e->deadline_ms) +
           wire_int_size(e->status) + wire_str_size(e->tag_len) + wire_bin_size(e->payload_len);
}

static size_t wire_data_hdr_size(uint64_t seq, uint64_t ack, uint32_t count)
{
    return 1 + 1 + 1 + wire_uint_size(seq) + wire_uint_size(ack) + wire_array_hdr_size(count);
}

/* ------------------------------------------------------------------------ */
/* Field rules shared by the encoder and the decoder                         */
/* ------------------------------------------------------------------------ */

/* A name, tag or URL: min..max bytes, none of them NUL (the runtime keeps them
 * as C strings, where a NUL would silently cut them short). */
static bool wire_text_ok(const char *s, size_t len, size_t min, size_t max)
{
    if (len < min || len > max || (s == NULL && len != 0))
        return false;
    return len == 0 || memchr(s, '\0', len) == NULL;
}

static bool wire_hello_ok(const wire_hello *h)
{
    return h->node_id != 0 && wire_text_ok(h->name, h->name_len, 1, WIRE_NAME_MAX) &&
           h->auth_len <= WIRE_AUTH_MAX && (h->auth != NULL || h->auth_len == 0) &&
           wire_text_ok(h->url, h->url_len, 1, WIRE_URL_MAX);
}

/*
 * Everything an envelope's fields must satisfy, apart from the payload
 * being valid msgpack (checked separately, as it costs a pass over it).
 * Kind-specific rules keep meaningless combinations off the wire: only a
 * user message can be a request, only a request has a deadline, only an
 * exit signal can come from a link.
 */
static bool wire_env_ok(const wire_env *e)
{
    if (e->kind > WIRE_ENV_KIND_MAX || (e->flags & ~(uint32_t)WIRE_EF_ALL) != 0)
        return false;
    if ((e->flags & WIRE_EF_REQUEST) && e->kind != WIRE_ENV_USER)
        return false;
    if ((e->flags & WIRE_EF_LINKEXIT) && e->kind != WIRE_ENV_EXIT)
        return false;
    if (e->deadline_ms != 0 && !(e->flags & WIRE_EF_REQUEST))
        return false;
    if (tr_ref_is_nil(e->to))
        return false;
    if (!wire_text_ok(e->tag, e->tag_len, 1, TR_TAG_MAX))
        return false;
    return e->payload_len <= TR_PAYLOAD_MAX && (e->payload != NULL || e->payload_len == 0);
}

/* ------------------------------------------------------------------------ */
/* Buffers                                                                   */
/* ------------------------------------------------------------------------ */

void tr__wire_buf_init(wire_buf *b) { memset(b, 0, sizeof *b); }

void tr__wire_buf_fini(wire_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

const uint8_t *tr__wire_buf_frame(const wire_buf *b, size_t *len)
{
    if (b == NULL || b->data == NULL || b->frame_len == 0) {
        if (len != NULL)
            *len = 0;
        return NULL;
    }
    if (len != NULL)
        *len = b->frame_len;
    return b->data + b->start;
}

/* Makes room for extra more bytes after b->len. */
static bool wire_buf_reserve(wire_buf *b, size_t extra)
{
    size_t need, cap;
    uint8_t *data;

    if (extra <= b->cap - b->len)
        return true;
    if (extra > SIZE_MAX - b->len)
        return false;
    need = b->len + extra;
    cap = b->cap < WIRE_BUF_MIN ? WIRE_BUF_MIN : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    data = realloc(b->data, cap);
    if (data == NULL)
        return false;
    b->data = data;
    b->cap = cap;
    return true;
}

/* msgpack_packer's write callback: appends to a wire_buf. */
static int wire_buf_write(void *data, const char *bytes, size_t len)
{
    wire_buf *b = data;

    if (len == 0)
        return 0;
    if (!wire_buf_reserve(b, len)) {
        b->nomem = true;
        return -1;
    }
    memcpy(b->data + b->len, bytes, len);
    b->len += len;
    return 0;
}

/* Drops whatever b held and makes room for a frame of size bytes. */
static tr_err wire_buf_start(wire_buf *b, size_t size, size_t max_frame)
{
    b->len = 0;
    b->start = 0;
    b->frame_len = 0;
    b->nomem = false;
    if (size > max_frame)
        return TR_ETOOBIG;
    return wire_buf_reserve(b, size) ? TR_OK : TR_ENOMEM;
}

/* Marks the bytes written since start as the frame, after checking that
 * the packer wrote exactly the size computed up front. */
static tr_err wire_buf_seal(wire_buf *b, size_t size)
{
    if (b->nomem) {
        b->len = b->frame_len = 0;
        return TR_ENOMEM;
    }
    assert(b->len - b->start == size);
    b->frame_len = size;
    return TR_OK;
}

/* A packer writing into a fixed array (the DATA header), which is sized
 * for the longest header, so it cannot overflow. */
typedef struct wire_fixed {
    uint8_t bytes[WIRE_DATA_HDR_MAX];
    size_t len;
} wire_fixed;

static int wire_fixed_write(void *data, const char *bytes, size_t len)
{
    wire_fixed *f = data;

    if (len > sizeof f->bytes - f->len)
        return -1;
    memcpy(f->bytes + f->len, bytes, len);
    f->len += len;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */
/* ------------------------------------------------------------------------ */

/* The packer calls below cannot fail once the buffer holds the frame's
 * size; a failure would still be caught by wire_buf_seal through nomem. */

static void wire_pack_ref(msgpack_packer *pk, tr_ref r)
{
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, r.node);
    msgpack_pack_uint64(pk, r.id);
    msgpack_pack_uint64(pk, r.incarnation);
}

static void wire_pack_head(msgpack_packer *pk, uint32_t fields, uint32_t kind)
{
    msgpack_pack_array(pk, fields);
    msgpack_pack_uint64(pk, WIRE_VERSION);
    msgpack_pack_uint64(pk, kind);
}

tr_err tr__wire_encode_hello(wire_buf *b, uint32_t kind, const wire_hello *h, size_t max_frame)
{
    msgpack_packer pk;
    size_t size;
    tr_err err;

    if (b == NULL)
        return TR_EINVAL;
    if (h == NULL || (kind != WIRE_HELLO && kind != WIRE_WELCOME) || !wire_hello_ok(h)) {
        b->len = b->start = b->frame_len = 0;
        return TR_EINVAL;
    }
    size = 1 + 1 + 1 + wire_uint_size(h->node_id) + wire_str_size(h->name_len) +
           wire_uint_size(h->features) + wire_bin_size(h->auth_len) + wire_uint_size(h->session) +
           wire_str_size(h->url_len);
    if ((err = wire_buf_start(b, size, max_frame)) != TR_OK)
        return err;
    msgpack_packer_init(&pk, b, wire_buf_write);
    wire_pack_head(&pk, WIRE_HELLO_FIELDS, kind);
    msgpack_pack_uint64(&pk, h->node_id);
    msgpack_pack_str(&pk, h->name_len);
    msgpack_pack_str_body(&pk, h->name, h->name_len);
    msgpack_pack_uint64(&pk, h->features);
    msgpack_pack_bin(&pk, h->auth_len);
    msgpack_pack_bin_body(&pk, h->auth, h->auth_len);
    msgpack_pack_uint64(&pk, h->session);
    msgpack_pack_str(&pk, h->url_len);
    msgpack_pack_str_body(&pk, h->url, h->url_len);
    return wire_buf_seal(b, size);
}

tr_err tr__wire_encode_ack(wire_buf *b, uint64_t ack, size_t max_frame)
{
    msgpack_packer pk;
    size_t size = 1 + 1 + 1 + wire_uint_size(ack);
    tr_err err;

    if (b == NULL)
        return TR_EINVAL;
    if ((err = wire_buf_start(b, size, max_frame)) != TR_OK)
        return err;
    msgpack_packer_init(&pk, b, wire_buf_write);
    wire_pack_head(&pk, WIRE_ACK_FIELDS, WIRE_ACK);
    msgpack_pack_uint64(&pk, ack);
    return wire_buf_seal(b, size);
}

tr_err tr__wire_encode_heartbeat(wire_buf *b, uint64_t nonce, bool echo, size_t max_frame)
{
    msgpack_packer pk;
    size_t size = 1 + 1 + 1 + wire_uint_size(nonce) + 1;
    tr_err err;

    if (b == NULL)
        return TR_EINVAL;
    if ((err = wire_buf_start(b, size, max_frame)) != TR_OK)
        return err;
    msgpack_packer_init(&pk, b, wire_buf_write);
    wire_pack_head(&pk, WIRE_HEARTBEAT_FIELDS, WIRE_HEARTBEAT);
    msgpack_pack_uint64(&pk, nonce);
    if (echo)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    return wire_buf_seal(b, size);
}

tr_err tr__wire_encode_bye(wire_buf *b, int32_t reason, size_t max_frame)
{
    msgpack_packer pk;
    size_t size = 1 + 1 + 1 + wire_int_size(reason);
    tr_err err;

    if (b == NULL)
        return TR_EINVAL;
    if ((err = wire_buf_start(b, size, max_frame)) != TR_OK)
        return err;
    msgpack_packer_init(&pk, b, wire_buf_write);
    wire_pack_head(&pk, WIRE_BYE_FIELDS, WIRE_BYE);
    msgpack_pack_int32(&pk, reason);
    return wire_buf_seal(b, size);
}

static bool wire_auth_ok(const wire_auth *a)
{
    return a->session != 0 && (a->proof_len == 0 || a->proof_len == WIRE_PROOF_LEN) &&
           (a->proof != NULL || a->proof_len == 0);
}

tr_err tr__wire_encode_auth(wire_buf *b, const wire_auth *a, size_t max_frame)
{
    msgpack_packer pk;
    size_t size;
    tr_err err;

    if (b == NULL)
        return TR_EINVAL;
    if (a == NULL || !wire_auth_ok(a)) {
        b->len = b->start = b->frame_len = 0;
        return TR_EINVAL;
    }
    size = 1 + 1 + 1 + wire_uint_size(a->session) + wire_bin_size(a->proof_len);
    if ((err = wire_buf_start(b, size, max_frame)) != TR_OK)
        return err;
    msgpack_packer_init(&pk, b, wire_buf_write);
    wire_pack_head(&pk, WIRE_AUTH_FIELDS, WIRE_AUTH);
    msgpack_pack_uint64(&pk, a->session);
    msgpack_pack_bin(&pk, a->proof_len);
    msgpack_pack_bin_body(&pk, a->proof, a->proof_len);
    return wire_buf_seal(b, size);
}

tr_err tr__wire_data_begin(wire_data *d, wire_buf *b, uint64_t seq, uint64_t ack, size_t max_frame)
{
    if (d == NULL || b == NULL)
        return TR_EINVAL;
    memset(d, 0, sizeof *d);
    b->len = b->start = b->frame_len = 0;
    b->nomem = false;
    if (seq == 0)
        return TR_EINVAL;
    /* Room for the longest header; finish writes the real one just in
     * front of the first envelope. */
    if (!wire_buf_reserve(b, WIRE_DATA_FRONT))
        return TR_ENOMEM;
    b->len = WIRE_DATA_FRONT;
    d->buf = b;
    d->max_frame = max_frame;
    d->seq = seq;
    d->ack = ack;
    return TR_OK;
}

tr_err tr__wire_data_add(wire_data *d, const wire_env *e)
{
    msgpack_packer pk;
    wire_buf *b;
    size_t size, hdr, body, before;

    if (d == NULL || d->buf == NULL || e == NULL)
        return TR_EINVAL;
    b = d->buf;
    if (!wire_env_ok(e) || tr_validate(e->payload, e->payload_len) != TR_OK)
        return TR_EINVAL;
    /* The new envelope's sequence number, seq + count, must not wrap. */
    if (d->count > UINT64_MAX - d->seq)
        return TR_EINVAL;
    if (d->count >= WIRE_ENVELOPES_MAX)
        return TR_ETOOBIG;
    size = wire_env_size(e);
    hdr = wire_data_hdr_size(d->seq, d->ack, d->count + 1);
    body = b->len - WIRE_DATA_FRONT;
    if (hdr > d->max_frame || body > d->max_frame - hdr || size > d->max_frame - hdr - body)
        return TR_ETOOBIG;
    if (!wire_buf_reserve(b, size))
        return TR_ENOMEM;

    before = b->len;
    msgpack_packer_init(&pk, b, wire_buf_write);
    msgpack_pack_array(&pk, WIRE_ENV_FIELDS);
    msgpack_pack_uint64(&pk, e->kind);
    msgpack_pack_uint64(&pk, e->flags);
    wire_pack_ref(&pk, e->to);
    wire_pack_ref(&pk, e->from);
    msgpack_pack_uint64(&pk, e->corr);
    msgpack_pack_uint64(&pk, e->deadline_ms);
    msgpack_pack_int32(&pk, e->status);
    msgpack_pack_str(&pk, e->tag_len);
    msgpack_pack_str_body(&pk, e->tag, e->tag_len);
    msgpack_pack_bin(&pk, e->payload_len);
    msgpack_pack_bin_body(&pk, e->payload, e->payload_len);
    if (b->nomem) {
        b->len = before;
        b->nomem = false;
        return TR_ENOMEM;
    }
    assert(b->len - before == size);
    d->count++;
    return TR_OK;
}

tr_err tr__wire_data_finish(wire_data *d)
{
    msgpack_packer pk;
    wire_fixed hdr;
    wire_buf *b;

    if (d == NULL || d->buf == NULL || d->count == 0)
        return TR_EINVAL;
    b = d->buf;
    hdr.len = 0;
    msgpack_packer_init(&pk, &hdr, wire_fixed_write);
    wire_pack_head(&pk, WIRE_DATA_FIELDS, WIRE_DATA);
    msgpack_pack_uint64(&pk, d->seq);
    msgpack_pack_uint64(&pk, d->ack);
    msgpack_pack_array(&pk, d->count);
    assert(hdr.len == wire_data_hdr_size(d->seq, d->ack, d->count));
    b->start = WIRE_DATA_FRONT - hdr.len;
    memcpy(b->data + b->start, hdr.bytes, hdr.len);
    b->frame_len = b->len - b->start;
    d->buf = NULL;
    return TR_OK;
}

tr_err tr__wire_encode_data(wire_buf *b, uint64_t seq, uint64_t ack, const wire_env *envs,
                            uint32_t n, size_t max_frame)
{
    wire_data d;
    tr_err err;

    if (b == NULL || (envs == NULL && n != 0))
        return TR_EINVAL;
    if ((err = tr__wire_data_begin(&d, b, seq, ack, max_frame)) != TR_OK)
        return err;
    if (n == 0)
        err = TR_EINVAL;
    for (uint32_t i = 0; i < n && err == TR_OK; i++)
        err = tr__wire_data_add(&d, &envs[i]);
    if (err == TR_OK)
        err = tr__wire_data_finish(&d);
    if (err != TR_OK)
        b->len = b->start = b->frame_len = 0;
    return err;
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                  */
/* ------------------------------------------------------------------------ */

/* Field readers: any failure of the cursor (wrong type, out of range,
 * truncated) is a malformed frame. */

static bool wire_read_uint(tr_cursor *c, uint64_t *out) { return tr_cursor_uint(c, out) == TR_OK; }

static bool wire_read_u32(tr_cursor *c, uint32_t *out)
{
    uint64_t v;

    if (!wire_read_uint(c, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool wire_read_i32(tr_cursor *c, int32_t *out)
{
    int64_t v;

    if (tr_cursor_int(c, &v) != TR_OK || v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

static bool wire_read_array(tr_cursor *c, uint32_t want)
{
    uint32_t n;

    return tr_cursor_array(c, &n) == TR_OK && n == want;
}

/*
 * Reads one envelope at c into *e. check_payload also proves the payload
 * is valid msgpack; the iterator skips that pass over a frame that
 * tr__wire_decode already checked whole.
 */
static tr_err wire_read_env(tr_cursor *c, wire_env *e, bool check_payload)
{
    const char *tag;
    const uint8_t *payload;

    memset(e, 0, sizeof *e);
    if (!wire_read_array(c, WIRE_ENV_FIELDS) || !wire_read_u32(c, &e->kind) ||
        !wire_read_u32(c, &e->flags) || tr_cursor_ref(c, &e->to) != TR_OK ||
        tr_cursor_ref(c, &e->from) != TR_OK || !wire_read_uint(c, &e->corr) ||
        !wire_read_u32(c, &e->deadline_ms) || !wire_read_i32(c, &e->status) ||
        tr_cursor_str(c, &tag, &e->tag_len) != TR_OK ||
        tr_cursor_bin(c, &payload, &e->payload_len) != TR_OK)
        return TR_EBADMSG;
    e->tag = tag;
    e->payload = e->payload_len != 0 ? payload : NULL;
    if (!wire_env_ok(e))
        return TR_EBADMSG;
    if (check_payload && tr_validate(e->payload, e->payload_len) != TR_OK)
        return TR_EBADMSG;
    return TR_OK;
}

static tr_err wire_read_hello(tr_cursor *c, wire_hello *h)
{
    const uint8_t *auth;

    if (!wire_read_uint(c, &h->node_id) || tr_cursor_str(c, &h->name, &h->name_len) != TR_OK ||
        !wire_read_uint(c, &h->features) || tr_cursor_bin(c, &auth, &h->auth_len) != TR_OK ||
        !wire_read_uint(c, &h->session) || tr_cursor_str(c, &h->url, &h->url_len) != TR_OK)
        return TR_EBADMSG;
    h->auth = h->auth_len != 0 ? auth : NULL;
    return wire_hello_ok(h) ? TR_OK : TR_EBADMSG;
}

static tr_err wire_read_data(tr_cursor *c, wire_frame *f)
{
    wire_env e;
    tr_err err;

    if (!wire_read_uint(c, &f->seq) || !wire_read_uint(c, &f->ack) ||
        tr_cursor_array(c, &f->count) != TR_OK)
        return TR_EBADMSG;
    if (f->seq == 0 || f->count == 0 || f->count > WIRE_ENVELOPES_MAX ||
        f->count - 1 > UINT64_MAX - f->seq)
        return TR_EBADMSG;
    f->env_pos = c->pos;
    f->env_end = c->end;
    /* Check every envelope now, so the frame is taken or refused whole:
     * the link layer acknowledges frames, not parts of them. */
    for (uint32_t i = 0; i < f->count; i++)
        if ((err = wire_read_env(c, &e, true)) != TR_OK)
            return err;
    return TR_OK;
}

/* Reads the fields after version and kind, for a frame of n elements. */
static tr_err wire_read_body(tr_cursor *c, wire_frame *f, uint32_t n)
{
    switch (f->kind) {
    case WIRE_HELLO:
    case WIRE_WELCOME:
        if (n != WIRE_HELLO_FIELDS)
            return TR_EBADMSG;
        return wire_read_hello(c, &f->hello);
    case WIRE_DATA:
        if (n != WIRE_DATA_FIELDS)
            return TR_EBADMSG;
        return wire_read_data(c, f);
    case WIRE_ACK:
        if (n != WIRE_ACK_FIELDS || !wire_read_uint(c, &f->ack))
            return TR_EBADMSG;
        return TR_OK;
    case WIRE_HEARTBEAT:
        if (n != WIRE_HEARTBEAT_FIELDS || !wire_read_uint(c, &f->nonce) ||
            tr_cursor_bool(c, &f->echo) != TR_OK)
            return TR_EBADMSG;
        return TR_OK;
    case WIRE_BYE:
        if (n != WIRE_BYE_FIELDS || !wire_read_i32(c, &f->reason))
            return TR_EBADMSG;
        return TR_OK;
    case WIRE_AUTH: {
        const uint8_t *proof;
        if (n != WIRE_AUTH_FIELDS || !wire_read_uint(c, &f->auth.session) ||
            tr_cursor_bin(c, &proof, &f->auth.proof_len) != TR_OK)
            return TR_EBADMSG;
        f->auth.proof = f->auth.proof_len != 0 ? proof : NULL;
        return wire_auth_ok(&f->auth) ? TR_OK : TR_EBADMSG;
    }
    default:
        return TR_ENOTSUP;
    }
}

tr_err tr__wire_decode(wire_frame *out, const void *bytes, size_t len, size_t max_frame)
{
    tr_cursor c;
    uint64_t version, kind;
    uint32_t n;
    tr_err err;

    if (out == NULL)
        return TR_EINVAL;
    memset(out, 0, sizeof *out);
    if (bytes == NULL && len != 0)
        return TR_EINVAL;
    if (len > max_frame)
        return TR_ETOOBIG;
    if (len == 0 || tr_validate(bytes, len) != TR_OK)
        return TR_EBADMSG;

    tr_cursor_init_bytes(&c, bytes, len);
    if (tr_cursor_array(&c, &n) != TR_OK || n < 2 || !wire_read_uint(&c, &version) ||
        !wire_read_uint(&c, &kind))
        return TR_EBADMSG;
    /* The version is looked at before anything else it might change. */
    if (version != WIRE_VERSION)
        return TR_ENOTSUP;
    if (kind > UINT32_MAX)
        return TR_ENOTSUP;
    out->kind = (uint32_t)kind;
    err = wire_read_body(&c, out, n);
    /* tr_validate proved the frame is one object, so reading its n
     * elements reaches the end; the check keeps that a local fact. */
    if (err == TR_OK && !tr_cursor_done(&c))
        err = TR_EBADMSG;
    if (err != TR_OK)
        memset(out, 0, sizeof *out);
    return err;
}

tr_err tr__wire_split(const uint8_t *bytes, size_t len, size_t max_frame, size_t *frame_len)
{
    if (frame_len == NULL || (bytes == NULL && len != 0))
        return TR_EINVAL;
    *frame_len = 0;
    if (len < WIRE_PREFIX_LEN)
        return TR_ENOTFOUND;
    uint32_t n = (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 | (uint32_t)bytes[2] << 8 |
                 (uint32_t)bytes[3];
    if (n == 0)
        return TR_EBADMSG;
    if (n > max_frame)
        return TR_ETOOBIG;
    *frame_len = n;
    return len - WIRE_PREFIX_LEN >= n ? TR_OK : TR_ENOTFOUND;
}

void tr__wire_env_iter_init(wire_env_iter *it, const wire_frame *f)
{
    memset(it, 0, sizeof *it);
    if (f == NULL || f->kind != WIRE_DATA || f->env_pos == NULL)
        return;
    tr_cursor_init_bytes(&it->cur, f->env_pos, (size_t)(f->env_end - f->env_pos));
    it->left = f->count;
    it->seq = f->seq;
}

tr_err tr__wire_env_next(wire_env_iter *it, wire_env *out, uint64_t *seq)
{
    tr_err err;

    if (it == NULL || out == NULL)
        return TR_EINVAL;
    if (it->left == 0)
        return TR_ENOTFOUND;
    err = wire_read_env(&it->cur, out, false);
    if (err != TR_OK) {
        it->left = 0;
        return err;
    }
    if (seq != NULL)
        *seq = it->seq;
    it->seq++;
    it->left--;
    return TR_OK;
}
