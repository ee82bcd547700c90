/*
 * reader.c — reading message payloads: the validator, the cursor, the
 * reader (a msgpack-c object tree) and the checked msgpack_object accessors.
 *
 * This file owns every function of troupe.h's "Messages: reading" section
 * that looks inside a payload: tr_validate, tr_msg_validate, tr_msg_int,
 * tr_cursor_*, tr_reader_* and tr_obj_*. It reaches a message only through
 * tr_msg_payload() and must not look inside struct tr_msg, allocate while
 * validating or cursoring, or trust a single byte of a payload: peers may be
 * hostile, so every count and length is checked against the bytes that are
 * really there before it is used, nesting is bounded, and nothing is ever
 * read outside [pos, end).
 */
#include "troupe.h"

#include <stdint.h>
#include <string.h>

/*
 * Deepest nesting of arrays and maps a payload may have. A scalar has depth
 * 0, [1] has depth 1, [[]] depth 2; so 64 nested arrays around an integer are
 * accepted and 65 are not. Empty containers count: they are containers.
 */
#define READER_DEPTH_MAX TR_PAYLOAD_DEPTH_MAX

/*
 * msgpack-c's unpacker keeps open containers in a fixed stack of
 * MSGPACK_EMBED_STACK_SIZE (32) entries and fails with
 * MSGPACK_UNPACK_NOMEM_ERROR when a container starts at a deeper level; the
 * size is compiled into libmsgpackc, so it cannot be raised from here.
 * tr_reader_init refuses such payloads with TR_ENOTSUP before unpacking, so
 * a real out-of-memory is never confused with this limit.
 */
#define READER_UNPACK_DEPTH_MAX 32

/* Smallest zone chunk: keeps a zone that must grow (it should not, the
 * chunk is sized from the payload) from doubling up from a few bytes. */
#define READER_ZONE_CHUNK_MIN 64

/* What a successful scan learnt about the value, for sizing the reader. */
typedef struct reader_shape {
    size_t objects; /* msgpack_object slots below the root: one per element, two per map pair */
    unsigned depth; /* deepest container nesting, as READER_DEPTH_MAX counts it */
} reader_shape;

/* An integer as the encoding holds it; when negative, (int64_t)bits < 0. */
typedef struct reader_int {
    uint64_t bits;
    bool negative;
} reader_int;

/* The length-prefixed families the cursor reads headers of. */
typedef enum reader_family {
    READER_STR,
    READER_BIN,
    READER_ARRAY,
    READER_MAP
} reader_family;

/* ------------------------------------------------------------------------ */
/* Big-endian loads. Written as shifts so they work on any host and any    */
/* alignment; compilers turn them into one load and a byte swap.           */
/* ------------------------------------------------------------------------ */

static inline uint16_t reader_be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t reader_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t reader_be64(const uint8_t *p)
{
    return (uint64_t)reader_be32(p) << 32 | reader_be32(p + 4);
}

/* Loads a 1-, 2- or 4-byte length or count field. */
static inline uint32_t reader_be_len(const uint8_t *p, unsigned width)
{
    return width == 1 ? p[0] : width == 2 ? reader_be16(p) : reader_be32(p);
}

/* ------------------------------------------------------------------------ */
/* The scanner: one value, checked, without allocating                      */
/* ------------------------------------------------------------------------ */

/*
 * Scans exactly one msgpack value at p, which has avail readable bytes, and
 * stores how many bytes it spans in *used.
 *
 * The scan keeps one number, slack: the bytes not yet spoken for. Every
 * value still to be read (the pending ones) needs at least one byte, so
 * slack = remaining bytes - pending values, and it never goes negative:
 * a container's count and a string's length are accepted only if they fit
 * in slack, and are subtracted from it at once. This checks every count
 * against the bytes that remain before anything else happens, bounds all
 * arithmetic by avail (a map of n pairs takes 2n from slack, n < 2^32, in
 * 64-bit arithmetic), and makes every read in bounds without a separate
 * end-of-buffer test: a type byte is only read while a value is pending,
 * and a length field only after its width was taken from slack.
 *
 * Containers are not recursed into: saved[] keeps, per open container, how
 * many values its parent still had, which bounds the depth and the stack.
 *
 * Inlined into each caller so that tr_validate, which ignores the shape,
 * keeps a tight loop.
 */
static inline __attribute__((always_inline)) tr_err reader_scan(const uint8_t *p, size_t avail,
                                                                size_t *used, reader_shape *shape)
{
    uint64_t saved[READER_DEPTH_MAX];
    uint64_t left = 1; /* values still to read in the innermost open container */
    unsigned depth = 0, deepest = 0;
    size_t slack, objects = 0;

    if (avail == 0)
        return TR_EBADMSG;
    slack = avail - 1;

    for (;;) {
        const uint8_t type = *p++;
        uint64_t skip = 0;  /* bytes a scalar occupies after its header */
        uint64_t items = 0; /* values a container holds */
        unsigned width = 0; /* bytes of a length or count field */
        unsigned extra = 0; /* the type byte of an ext, after its length */

        left--;
        switch (type) {
        case 0x00 ... 0x7f: /* positive fixint */
        case 0xc0:          /* nil */
        case 0xc2:          /* false */
        case 0xc3:          /* true */
        case 0xe0 ... 0xff: /* negative fixint */
            goto scalar;
        case 0x80 ... 0x8f: /* fixmap */
            items = 2u * (type & 0x0fu);
            goto container;
        case 0x90 ... 0x9f: /* fixarray */
            items = type & 0x0fu;
            goto container;
        case 0xa0 ... 0xbf: /* fixstr */
            skip = type & 0x1fu;
            goto scalar;
        case 0xcc: /* uint8 */
        case 0xd0: /* int8 */
            skip = 1;
            goto scalar;
        case 0xcd: /* uint16 */
        case 0xd1: /* int16 */
            skip = 2;
            goto scalar;
        case 0xca: /* float32 */
        case 0xce: /* uint32 */
        case 0xd2: /* int32 */
            skip = 4;
            goto scalar;
        case 0xcb: /* float64 */
        case 0xcf: /* uint64 */
        case 0xd3: /* int64 */
            skip = 8;
            goto scalar;
        case 0xd4: /* fixext1..fixext16: a type byte and 1..16 data bytes */
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
            skip = 1u + (1u << (type - 0xd4));
            goto scalar;
        case 0xc4: /* bin8 */
        case 0xd9: /* str8 */
            width = 1;
            goto sized;
        case 0xc5: /* bin16 */
        case 0xda: /* str16 */
            width = 2;
            goto sized;
        case 0xc6: /* bin32 */
        case 0xdb: /* str32 */
            width = 4;
            goto sized;
        case 0xc7: /* ext8, ext16, ext32: length, type byte, data */
        case 0xc8:
        case 0xc9:
            width = 1u << (type - 0xc7);
            extra = 1;
            goto sized;
        case 0xdc: /* array16 */
        case 0xdd: /* array32 */
            width = type == 0xdc ? 2 : 4;
            if (width > slack)
                return TR_EBADMSG;
            items = reader_be_len(p, width);
            p += width;
            slack -= width;
            goto container;
        case 0xde: /* map16 */
        case 0xdf: /* map32 */
            width = type == 0xde ? 2 : 4;
            if (width > slack)
                return TR_EBADMSG;
            items = 2u * (uint64_t)reader_be_len(p, width);
            p += width;
            slack -= width;
            goto container;
        default: /* 0xc1 is never used */
            return TR_EBADMSG;
        }

sized:
        if (width > slack)
            return TR_EBADMSG;
        skip = (uint64_t)reader_be_len(p, width) + extra;
        p += width;
        slack -= width;
        /* Once its length is known, a sized value is skipped like any scalar. */
scalar:
        if (skip > slack)
            return TR_EBADMSG;
        p += skip;
        slack -= (size_t)skip;
        goto next;

container:
        if (depth == READER_DEPTH_MAX || items > slack)
            return TR_EBADMSG;
        slack -= (size_t)items;
        objects += (size_t)items;
        if (depth + 1 > deepest)
            deepest = depth + 1;
        if (items != 0) {
            saved[depth++] = left;
            left = items;
            continue;
        }
        /* An empty container is finished as soon as it is opened. */

next:
        while (left == 0) {
            if (depth == 0) {
                *used = avail - slack;
                shape->objects = objects;
                shape->depth = deepest;
                return TR_OK;
            }
            left = saved[--depth];
        }
    }
}

tr_err tr_validate(const void *bytes, size_t len)
{
    reader_shape shape;
    size_t used;
    tr_err err;

    /* An empty buffer is "no payload", which every message may have; a NULL
     * pointer with it is how an empty payload is commonly passed. */
    if (len == 0)
        return TR_OK;
    if (bytes == NULL)
        return TR_EINVAL;
    err = reader_scan(bytes, len, &used, &shape);
    if (err != TR_OK)
        return err;
    return used == len ? TR_OK : TR_EBADMSG;
}

tr_err tr_msg_validate(const tr_msg *m)
{
    const uint8_t *payload;
    size_t len = 0;

    if (m == NULL)
        return TR_EINVAL;
    payload = tr_msg_payload(m, &len);
    if (len != 0 && payload == NULL)
        return TR_EBADMSG;
    return tr_validate(payload, len);
}

/* ------------------------------------------------------------------------ */
/* Decoding one value's header straight from the bytes                      */
/* ------------------------------------------------------------------------ */

/* The error for a type byte that is not what the caller asked for: a wrong
 * type, unless the byte is the one msgpack never uses. */
static inline tr_err reader_mismatch(uint8_t type) { return type == 0xc1 ? TR_EBADMSG : TR_ETYPE; }

/* Decodes the integer at [p, end) into *out and its encoded size into
 * *size. Returns TR_ETYPE for another type, TR_EBADMSG when truncated. */
static tr_err reader_peek_int(const uint8_t *p, const uint8_t *end, reader_int *out, size_t *size)
{
    size_t avail, width;
    uint8_t type;
    int64_t s;

    if (p == NULL || p >= end)
        return TR_EBADMSG;
    avail = (size_t)(end - p);
    type = p[0];
    if (type <= 0x7f) {
        out->bits = type;
        out->negative = false;
        *size = 1;
        return TR_OK;
    }
    if (type >= 0xe0) {
        out->bits = (uint64_t)(int64_t)(int8_t)type;
        out->negative = true;
        *size = 1;
        return TR_OK;
    }
    if (type < 0xcc || type > 0xd3)
        return reader_mismatch(type);

    /* 0xcc..0xcf are uint8..uint64, 0xd0..0xd3 int8..int64. */
    width = (size_t)1 << ((type - 0xcc) & 3);
    if (avail < 1 + width)
        return TR_EBADMSG;
    if (type <= 0xcf) {
        out->bits = width == 8 ? reader_be64(p + 1) : reader_be_len(p + 1, (unsigned)width);
        out->negative = false;
    } else {
        switch (width) {
        case 1:
            s = (int8_t)p[1];
            break;
        case 2:
            s = (int16_t)reader_be16(p + 1);
            break;
        case 4:
            s = (int32_t)reader_be32(p + 1);
            break;
        default:
            s = (int64_t)reader_be64(p + 1);
            break;
        }
        out->bits = (uint64_t)s;
        out->negative = s < 0;
    }
    *size = 1 + width;
    return TR_OK;
}

static inline tr_err reader_int_to_i64(reader_int v, int64_t *out)
{
    if (!v.negative && v.bits > (uint64_t)INT64_MAX)
        return TR_ERANGE;
    *out = (int64_t)v.bits;
    return TR_OK;
}

static inline tr_err reader_int_to_u64(reader_int v, uint64_t *out)
{
    if (v.negative)
        return TR_ERANGE;
    *out = v.bits;
    return TR_OK;
}

/*
 * Decodes the header of a str, bin, array or map at the cursor: *hdr gets
 * the header's size and *n the length or count. Checks that the body fits
 * in what follows (for a container: at least one byte per value), so a
 * caller never sees a count the bytes cannot hold.
 */
static tr_err reader_peek_header(const tr_cursor *c, reader_family family, size_t *hdr, uint32_t *n)
{
    const uint8_t *p = c->pos;
    size_t avail;
    unsigned width = 0;
    uint64_t need;
    uint32_t count;
    uint8_t type;

    if (p == NULL || p >= c->end)
        return TR_EBADMSG;
    avail = (size_t)(c->end - p);
    type = p[0];

    switch (family) {
    case READER_STR:
        if (type >= 0xa0 && type <= 0xbf)
            goto fixed;
        width = type == 0xd9 ? 1 : type == 0xda ? 2 : type == 0xdb ? 4 : 0;
        break;
    case READER_BIN:
        width = type == 0xc4 ? 1 : type == 0xc5 ? 2 : type == 0xc6 ? 4 : 0;
        break;
    case READER_ARRAY:
        if (type >= 0x90 && type <= 0x9f)
            goto fixed;
        width = type == 0xdc ? 2 : type == 0xdd ? 4 : 0;
        break;
    case READER_MAP:
        if (type >= 0x80 && type <= 0x8f)
            goto fixed;
        width = type == 0xde ? 2 : type == 0xdf ? 4 : 0;
        break;
    }
    if (width == 0)
        return reader_mismatch(type);
    if (avail < 1 + (size_t)width)
        return TR_EBADMSG;
    count = reader_be_len(p + 1, width);
    *hdr = 1 + width;
    goto check;

fixed:
    count = type & (family == READER_STR ? 0x1fu : 0x0fu);
    *hdr = 1;

check:
    need = family == READER_MAP ? 2 * (uint64_t)count : count;
    if (need > avail - *hdr)
        return TR_EBADMSG;
    *n = count;
    return TR_OK;
}

/* Stores a decoded reference after checking id and incarnation fit. */
static tr_err reader_make_ref(uint64_t node, uint64_t id, uint64_t incarnation, tr_ref *out)
{
    if (id > UINT32_MAX || incarnation > UINT32_MAX)
        return TR_ERANGE;
    out->node = node;
    out->id = (uint32_t)id;
    out->incarnation = (uint32_t)incarnation;
    return TR_OK;
}

tr_err tr_msg_int(const tr_msg *m, int64_t *out)
{
    const uint8_t *payload;
    size_t len = 0, size;
    reader_int v;
    tr_err err;

    if (m == NULL || out == NULL)
        return TR_EINVAL;
    payload = tr_msg_payload(m, &len);
    if (len == 0 || payload == NULL)
        return TR_EBADMSG;
    err = reader_peek_int(payload, payload + len, &v, &size);
    if (err != TR_OK)
        return err;
    if (size != len)
        return TR_EBADMSG;
    return reader_int_to_i64(v, out);
}

/* ------------------------------------------------------------------------ */
/* Cursor. Every function advances the cursor only when it returns TR_OK,   */
/* so a caller can retry a value as another type after TR_ETYPE/TR_ERANGE.  */
/* ------------------------------------------------------------------------ */

void tr_cursor_init(tr_cursor *c, const tr_msg *m)
{
    const uint8_t *payload = NULL;
    size_t len = 0;

    if (c == NULL)
        return;
    if (m != NULL)
        payload = tr_msg_payload(m, &len);
    tr_cursor_init_bytes(c, payload, len);
}

void tr_cursor_init_bytes(tr_cursor *c, const void *bytes, size_t len)
{
    if (c == NULL)
        return;
    /* A NULL buffer reads as empty, whatever length came with it; the
     * end is set apart because even NULL + 0 is undefined in C. */
    c->pos = bytes;
    c->end = bytes == NULL ? NULL : c->pos + len;
}

bool tr_cursor_done(const tr_cursor *c) { return c == NULL || c->pos == NULL || c->pos >= c->end; }

tr_err tr_cursor_int(tr_cursor *c, int64_t *out)
{
    reader_int v;
    size_t size;
    tr_err err;

    if (c == NULL || out == NULL)
        return TR_EINVAL;
    err = reader_peek_int(c->pos, c->end, &v, &size);
    if (err == TR_OK)
        err = reader_int_to_i64(v, out);
    if (err == TR_OK)
        c->pos += size;
    return err;
}

tr_err tr_cursor_uint(tr_cursor *c, uint64_t *out)
{
    reader_int v;
    size_t size;
    tr_err err;

    if (c == NULL || out == NULL)
        return TR_EINVAL;
    err = reader_peek_int(c->pos, c->end, &v, &size);
    if (err == TR_OK)
        err = reader_int_to_u64(v, out);
    if (err == TR_OK)
        c->pos += size;
    return err;
}

tr_err tr_cursor_double(tr_cursor *c, double *out)
{
    const uint8_t *p;
    reader_int v;
    size_t avail, size;
    uint32_t bits32;
    uint64_t bits64;
    float f;
    tr_err err;

    if (c == NULL || out == NULL)
        return TR_EINVAL;
    p = c->pos;
    if (p == NULL || p >= c->end)
        return TR_EBADMSG;
    avail = (size_t)(c->end - p);

    if (p[0] == 0xca) {
        if (avail < 5)
            return TR_EBADMSG;
        bits32 = reader_be32(p + 1);
        memcpy(&f, &bits32, sizeof f);
        *out = f;
        c->pos += 5;
        return TR_OK;
    }
    if (p[0] == 0xcb) {
        if (avail < 9)
            return TR_EBADMSG;
        bits64 = reader_be64(p + 1);
        memcpy(out, &bits64, sizeof *out);
        c->pos += 9;
        return TR_OK;
    }
    /* Integers widen to double, rounding to nearest when beyond 2^53. */
    err = reader_peek_int(p, c->end, &v, &size);
    if (err != TR_OK)
        return err;
    *out = v.negative ? (double)(int64_t)v.bits : (double)v.bits;
    c->pos += size;
    return TR_OK;
}

tr_err tr_cursor_bool(tr_cursor *c, bool *out)
{
    if (c == NULL || out == NULL)
        return TR_EINVAL;
    if (c->pos == NULL || c->pos >= c->end)
        return TR_EBADMSG;
    if (c->pos[0] != 0xc2 && c->pos[0] != 0xc3)
        return reader_mismatch(c->pos[0]);
    *out = c->pos[0] == 0xc3;
    c->pos++;
    return TR_OK;
}

tr_err tr_cursor_nil(tr_cursor *c)
{
    if (c == NULL)
        return TR_EINVAL;
    if (c->pos == NULL || c->pos >= c->end)
        return TR_EBADMSG;
    if (c->pos[0] != 0xc0)
        return reader_mismatch(c->pos[0]);
    c->pos++;
    return TR_OK;
}

tr_err tr_cursor_str(tr_cursor *c, const char **s, size_t *len)
{
    size_t hdr;
    uint32_t n;
    tr_err err;

    if (c == NULL || s == NULL || len == NULL)
        return TR_EINVAL;
    err = reader_peek_header(c, READER_STR, &hdr, &n);
    if (err != TR_OK)
        return err;
    *s = (const char *)c->pos + hdr;
    *len = n;
    c->pos += hdr + n;
    return TR_OK;
}

tr_err tr_cursor_bin(tr_cursor *c, const uint8_t **p, size_t *len)
{
    size_t hdr;
    uint32_t n;
    tr_err err;

    if (c == NULL || p == NULL || len == NULL)
        return TR_EINVAL;
    err = reader_peek_header(c, READER_BIN, &hdr, &n);
    if (err != TR_OK)
        return err;
    *p = c->pos + hdr;
    *len = n;
    c->pos += hdr + n;
    return TR_OK;
}

tr_err tr_cursor_array(tr_cursor *c, uint32_t *n)
{
    size_t hdr;
    tr_err err;

    if (c == NULL || n == NULL)
        return TR_EINVAL;
    err = reader_peek_header(c, READER_ARRAY, &hdr, n);
    if (err == TR_OK)
        c->pos += hdr;
    return err;
}

tr_err tr_cursor_map(tr_cursor *c, uint32_t *n)
{
    size_t hdr;
    tr_err err;

    if (c == NULL || n == NULL)
        return TR_EINVAL;
    err = reader_peek_header(c, READER_MAP, &hdr, n);
    if (err == TR_OK)
        c->pos += hdr;
    return err;
}

tr_err tr_cursor_ref(tr_cursor *c, tr_ref *out)
{
    tr_cursor at;
    uint64_t node, id, incarnation;
    uint32_t n;
    tr_err err;

    if (c == NULL || out == NULL)
        return TR_EINVAL;
    /* Read through a copy so that any failure leaves *c where it was. */
    at = *c;
    err = tr_cursor_array(&at, &n);
    if (err != TR_OK)
        return err;
    if (n != 3)
        return TR_ETYPE;
    if ((err = tr_cursor_uint(&at, &node)) != TR_OK || (err = tr_cursor_uint(&at, &id)) != TR_OK ||
        (err = tr_cursor_uint(&at, &incarnation)) != TR_OK)
        return err;
    err = reader_make_ref(node, id, incarnation, out);
    if (err == TR_OK)
        *c = at;
    return err;
}

tr_err tr_cursor_skip(tr_cursor *c)
{
    reader_shape shape;
    size_t used;
    tr_err err;

    if (c == NULL)
        return TR_EINVAL;
    if (c->pos == NULL || c->pos >= c->end)
        return TR_EBADMSG;
    err = reader_scan(c->pos, (size_t)(c->end - c->pos), &used, &shape);
    if (err == TR_OK)
        c->pos += used;
    return err;
}

/* ------------------------------------------------------------------------ */
/* Reader: a msgpack-c object tree over a validated payload                 */
/* ------------------------------------------------------------------------ */

/* Puts r in the state tr_reader_fini expects of a reader without a zone:
 * a zeroed zone (no chunk list) and a nil root. */
static void reader_clear(tr_reader *r)
{
    memset(r, 0, sizeof *r);
    r->root.type = MSGPACK_OBJECT_NIL;
}

tr_err tr_reader_init(tr_reader *r, const tr_msg *m)
{
    const uint8_t *payload;
    size_t len = 0;

    if (r == NULL)
        return TR_EINVAL;
    if (m == NULL) {
        reader_clear(r);
        return TR_EINVAL;
    }
    payload = tr_msg_payload(m, &len);
    if (len != 0 && payload == NULL) {
        reader_clear(r);
        return TR_EBADMSG;
    }
    return tr_reader_init_bytes(r, payload, len);
}

tr_err tr_reader_init_bytes(tr_reader *r, const void *bytes, size_t len)
{
    reader_shape shape;
    size_t used, chunk, off = 0;
    msgpack_unpack_return ret;
    tr_err err;

    if (r == NULL)
        return TR_EINVAL;
    /* From here on every return leaves r fini-able: either a zeroed zone
     * or one that msgpack_zone_init set up. */
    reader_clear(r);
    if (len == 0)
        return TR_OK;
    if (bytes == NULL)
        return TR_EINVAL;

    /* msgpack_unpack reserves memory from declared counts before it checks
     * the bytes exist, so nothing reaches it unscanned. */
    err = reader_scan(bytes, len, &used, &shape);
    if (err != TR_OK)
        return err;
    if (used != len)
        return TR_EBADMSG;
    if (shape.depth > READER_UNPACK_DEPTH_MAX)
        return TR_ENOTSUP;

    /* The tree needs exactly shape.objects objects (a map pair is two), and
     * msgpack-c's allocations keep 8-byte alignment, so one chunk of that
     * size holds it all with one malloc. objects <= len, so the product can
     * only overflow for absurd lengths; refuse those as memory we lack. */
    if (shape.objects > SIZE_MAX / sizeof(msgpack_object))
        return TR_ENOMEM;
    chunk = shape.objects * sizeof(msgpack_object);
    if (chunk < READER_ZONE_CHUNK_MIN)
        chunk = READER_ZONE_CHUNK_MIN;
    if (!msgpack_zone_init(&r->zone, chunk)) {
        /* A failed init may have written some fields; forget them. */
        reader_clear(r);
        return TR_ENOMEM;
    }

    ret = msgpack_unpack(bytes, len, &off, &r->zone, &r->root);
    if (ret == MSGPACK_UNPACK_SUCCESS && off == len)
        return TR_OK;
    msgpack_zone_destroy(&r->zone);
    reader_clear(r);
    /* The scan accepted the payload, so only memory can fail here; anything
     * else would be a disagreement with msgpack-c, reported as bad input. */
    return ret == MSGPACK_UNPACK_NOMEM_ERROR ? TR_ENOMEM : TR_EBADMSG;
}

void tr_reader_fini(tr_reader *r)
{
    if (r == NULL)
        return;
    /* msgpack_zone_destroy walks the chunk list without a NULL check, so a
     * reader that never got a zone (empty payload, failed init, a second
     * fini) is recognised by its empty chunk list and left alone. */
    if (r->zone.chunk_list.head != NULL)
        msgpack_zone_destroy(&r->zone);
    reader_clear(r);
}

/* ------------------------------------------------------------------------ */
/* Checked accessors over msgpack_object                                    */
/* ------------------------------------------------------------------------ */

/* Views an integer object as the encoding-neutral reader_int. */
static tr_err reader_obj_as_int(const msgpack_object *o, reader_int *v)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        v->bits = o->via.u64;
        v->negative = false;
        return TR_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        v->bits = (uint64_t)o->via.i64;
        v->negative = o->via.i64 < 0;
        return TR_OK;
    default:
        return TR_ETYPE;
    }
}

tr_err tr_obj_int(const msgpack_object *o, int64_t *out)
{
    reader_int v;
    tr_err err;

    if (o == NULL || out == NULL)
        return TR_EINVAL;
    err = reader_obj_as_int(o, &v);
    return err != TR_OK ? err : reader_int_to_i64(v, out);
}

tr_err tr_obj_uint(const msgpack_object *o, uint64_t *out)
{
    reader_int v;
    tr_err err;

    if (o == NULL || out == NULL)
        return TR_EINVAL;
    err = reader_obj_as_int(o, &v);
    return err != TR_OK ? err : reader_int_to_u64(v, out);
}

tr_err tr_obj_double(const msgpack_object *o, double *out)
{
    if (o == NULL || out == NULL)
        return TR_EINVAL;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = o->via.f64;
        return TR_OK;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double)o->via.u64;
        return TR_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double)o->via.i64;
        return TR_OK;
    default:
        return TR_ETYPE;
    }
}

tr_err tr_obj_bool(const msgpack_object *o, bool *out)
{
    if (o == NULL || out == NULL)
        return TR_EINVAL;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return TR_ETYPE;
    *out = o->via.boolean;
    return TR_OK;
}

tr_err tr_obj_str(const msgpack_object *o, const char **s, size_t *len)
{
    if (o == NULL || s == NULL || len == NULL)
        return TR_EINVAL;
    if (o->type != MSGPACK_OBJECT_STR)
        return TR_ETYPE;
    *s = o->via.str.ptr;
    *len = o->via.str.size;
    return TR_OK;
}

tr_err tr_obj_bin(const msgpack_object *o, const uint8_t **p, size_t *len)
{
    if (o == NULL || p == NULL || len == NULL)
        return TR_EINVAL;
    if (o->type != MSGPACK_OBJECT_BIN)
        return TR_ETYPE;
    *p = (const uint8_t *)o->via.bin.ptr;
    *len = o->via.bin.size;
    return TR_OK;
}

tr_err tr_obj_len(const msgpack_object *o, uint32_t *out)
{
    if (o == NULL || out == NULL)
        return TR_EINVAL;
    if (o->type == MSGPACK_OBJECT_ARRAY)
        *out = o->via.array.size;
    else if (o->type == MSGPACK_OBJECT_MAP)
        *out = o->via.map.size;
    else
        return TR_ETYPE;
    return TR_OK;
}

tr_err tr_obj_at(const msgpack_object *o, uint32_t idx, const msgpack_object **out)
{
    if (o == NULL || out == NULL)
        return TR_EINVAL;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return TR_ETYPE;
    if (idx >= o->via.array.size)
        return TR_ENOTFOUND;
    *out = &o->via.array.ptr[idx];
    return TR_OK;
}

tr_err tr_obj_get(const msgpack_object *o, const char *key, const msgpack_object **out)
{
    const msgpack_object_kv *kv;
    size_t key_len;
    uint32_t i;

    if (o == NULL || key == NULL || out == NULL)
        return TR_EINVAL;
    if (o->type != MSGPACK_OBJECT_MAP)
        return TR_ETYPE;
    /* Keys are compared by length and bytes: a msgpack str may hold NULs
     * and is not terminated, so strcmp would read past it. The first
     * matching key wins; keys of other types are passed over. */
    key_len = strlen(key);
    for (i = 0; i < o->via.map.size; i++) {
        kv = &o->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == key_len &&
            (key_len == 0 || memcmp(kv->key.via.str.ptr, key, key_len) == 0)) {
            *out = &kv->val;
            return TR_OK;
        }
    }
    return TR_ENOTFOUND;
}

tr_err tr_obj_ref(const msgpack_object *o, tr_ref *out)
{
    uint64_t node, id, incarnation;
    tr_err err;

    if (o == NULL || out == NULL)
        return TR_EINVAL;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3)
        return TR_ETYPE;
    if ((err = tr_obj_uint(&o->via.array.ptr[0], &node)) != TR_OK ||
        (err = tr_obj_uint(&o->via.array.ptr[1], &id)) != TR_OK ||
        (err = tr_obj_uint(&o->via.array.ptr[2], &incarnation)) != TR_OK)
        return err;
    return reader_make_ref(node, id, incarnation, out);
}
