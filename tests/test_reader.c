/*
 * test_reader.c — checks runtime/reader.c: the payload validator, the
 * cursor, the reader and the msgpack_object accessors.
 *
 * Values are encoded with msgpack-c's own packer and read back through the
 * bytes-based entry points, so this test needs no message module. Hostile
 * input (truncations at every offset, huge declared counts, deep nesting,
 * trailing bytes, random garbage) must give an error, never a crash; each
 * buffer under test lives in its own exact-size allocation so that a
 * sanitizer catches any read past its end.
 *
 * The random part prints its seed and takes --seed N to replay a failure.
 *
 * Built with -DTEST_READER_MSG (and the message module linked in), it also
 * checks the tr_msg-based entry points over messages made with tr_msg_new.
 */
#include "troupe.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned long test_failures;

/* Records a failed check with its place and text and carries on, so one
 * run reports every broken behaviour rather than the first. */
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            test_failures++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* Like CHECK for an error code, printing what came back. */
#define CHECK_ERR(expr, want)                                                                    \
    do {                                                                                         \
        tr_err check_got_ = (expr);                                                              \
        if (check_got_ != (want)) {                                                              \
            test_failures++;                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s returned %d, expected %s (%d)\n", __FILE__, \
                    __LINE__, #expr, (int)check_got_, #want, (int)(want));                       \
        }                                                                                        \
    } while (0)

/* Deepest nesting the reader documents (troupe.h: "at most 64 deep"). */
#define TEST_DEPTH_MAX 64
/* Deepest nesting msgpack-c's unpacker can build; deeper gives TR_ENOTSUP. */
#define TEST_UNPACK_DEPTH_MAX 32

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct test_buf {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} test_buf;

static void buf_init(test_buf *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void buf_clear(test_buf *b) { msgpack_sbuffer_clear(&b->sb); }

static void buf_fini(test_buf *b) { msgpack_sbuffer_destroy(&b->sb); }

static const uint8_t *buf_data(const test_buf *b) { return (const uint8_t *)b->sb.data; }

/* A heap copy of exactly len bytes (NULL for 0), so that reading one byte
 * past the end is an out-of-bounds read a sanitizer reports. */
static uint8_t *dup_exact(const void *p, size_t len)
{
    uint8_t *copy;

    if (len == 0)
        return NULL;
    copy = malloc(len);
    if (copy == NULL) {
        perror("malloc");
        exit(2);
    }
    memcpy(copy, p, len);
    return copy;
}

/*
 * Reads one value with the cursor's typed getters, descending into arrays
 * and maps, and returns the first error. It mirrors the validator's grammar
 * with independent code (the getters, not the scanner), so for any buffer
 * "validates" must equal "one walk succeeds and uses every byte". Every
 * failed getter must leave the cursor where it was.
 */
static tr_err walk_value(tr_cursor *c, unsigned depth)
{
    const uint8_t *const before = c->pos;
    const char *s;
    const uint8_t *p;
    size_t len;
    int64_t i;
    uint64_t u;
    double d;
    bool b;
    uint32_t n, k;
    tr_err err;

    err = tr_cursor_array(c, &n);
    CHECK(err == TR_OK || c->pos == before);
    if (err == TR_OK) {
        if (depth == TEST_DEPTH_MAX)
            return TR_EBADMSG;
        for (k = 0; k < n; k++) {
            err = walk_value(c, depth + 1);
            if (err != TR_OK)
                return err;
        }
        return TR_OK;
    }
    if (err != TR_ETYPE)
        return err;

    err = tr_cursor_map(c, &n);
    CHECK(err == TR_OK || c->pos == before);
    if (err == TR_OK) {
        if (depth == TEST_DEPTH_MAX)
            return TR_EBADMSG;
        for (k = 0; k < n; k++) {
            if ((err = walk_value(c, depth + 1)) != TR_OK ||
                (err = walk_value(c, depth + 1)) != TR_OK)
                return err;
        }
        return TR_OK;
    }
    if (err != TR_ETYPE)
        return err;

    err = tr_cursor_int(c, &i);
    CHECK(err == TR_OK || c->pos == before);
    if (err == TR_OK)
        return TR_OK;
    if (err == TR_ERANGE) {
        /* Only a uint64 above INT64_MAX is out of int64's range. */
        CHECK_ERR(tr_cursor_uint(c, &u), TR_OK);
        CHECK(u > (uint64_t)INT64_MAX);
        return TR_OK;
    }
    if (err != TR_ETYPE)
        return err;

    err = tr_cursor_double(c, &d);
    CHECK(err == TR_OK || c->pos == before);
    if (err != TR_ETYPE)
        return err;
    err = tr_cursor_bool(c, &b);
    CHECK(err == TR_OK || c->pos == before);
    if (err != TR_ETYPE)
        return err;
    err = tr_cursor_nil(c);
    CHECK(err == TR_OK || c->pos == before);
    if (err != TR_ETYPE)
        return err;
    err = tr_cursor_str(c, &s, &len);
    CHECK(err == TR_OK || c->pos == before);
    if (err == TR_OK)
        CHECK((const uint8_t *)s + len <= c->end);
    if (err != TR_ETYPE)
        return err;
    err = tr_cursor_bin(c, &p, &len);
    CHECK(err == TR_OK || c->pos == before);
    if (err == TR_OK)
        CHECK(p + len <= c->end);
    if (err != TR_ETYPE)
        return err;

    /* Only ext types are left, which only skip reads. */
    err = tr_cursor_skip(c);
    CHECK(err == TR_OK || c->pos == before);
    return err;
}

/* Walks one value of the whole buffer: TR_OK only if it uses every byte. */
static tr_err walk_buffer(const uint8_t *bytes, size_t len)
{
    tr_cursor c;
    tr_err err;

    tr_cursor_init_bytes(&c, bytes, len);
    err = walk_value(&c, 0);
    if (err == TR_OK && !tr_cursor_done(&c))
        err = TR_EBADMSG;
    return err;
}

/*
 * Runs every reading path over one buffer and checks they agree: the
 * validator, a cursor skip, a cursor walk and the reader. For an empty
 * buffer the validator and reader accept and the cursor is done.
 * Returns the validator's verdict.
 */
static tr_err check_all_paths(const uint8_t *src, size_t len)
{
    uint8_t *bytes = dup_exact(src, len);
    tr_err verdict, err;
    tr_cursor c;
    tr_reader r;

    verdict = tr_validate(bytes, len);
    CHECK(verdict == TR_OK || verdict == TR_EBADMSG);

    tr_cursor_init_bytes(&c, bytes, len);
    err = tr_cursor_skip(&c);
    if (len == 0) {
        CHECK_ERR(err, TR_EBADMSG);
    } else if (verdict == TR_OK) {
        CHECK_ERR(err, TR_OK);
        CHECK(tr_cursor_done(&c));
    } else {
        /* A skip reads one value, so it may succeed with bytes left over. */
        CHECK(err == TR_EBADMSG || (err == TR_OK && !tr_cursor_done(&c)));
    }

    if (len != 0) {
        err = walk_buffer(bytes, len);
        CHECK((err == TR_OK) == (verdict == TR_OK));
        if ((err == TR_OK) != (verdict == TR_OK))
            fprintf(stderr, "  walk %d, validate %d, len %zu\n", (int)err, (int)verdict, len);
    }

    memset(&r, 0xa5, sizeof r);
    err = tr_reader_init_bytes(&r, bytes, len);
    if (verdict == TR_OK)
        CHECK(err == TR_OK || err == TR_ENOTSUP);
    else
        CHECK_ERR(err, TR_EBADMSG);
    if (len == 0)
        CHECK(err == TR_OK && r.root.type == MSGPACK_OBJECT_NIL);
    tr_reader_fini(&r);
    tr_reader_fini(&r);

    free(bytes);
    return verdict;
}

/* ------------------------------------------------------------------------ */
/* NULL arguments                                                            */
/* ------------------------------------------------------------------------ */

static void test_null_arguments(void)
{
    static const uint8_t one[] = {0x01};
    const msgpack_object *po;
    msgpack_object o;
    tr_cursor c;
    tr_reader r;
    const char *s;
    const uint8_t *p;
    size_t len;
    int64_t i;
    uint64_t u;
    double d;
    bool b;
    uint32_t n;
    tr_ref ref;

    CHECK_ERR(tr_validate(NULL, 1), TR_EINVAL);
    CHECK_ERR(tr_validate(NULL, 0), TR_OK);
    CHECK_ERR(tr_msg_validate(NULL), TR_EINVAL);
    CHECK_ERR(tr_msg_int(NULL, &i), TR_EINVAL);

    tr_cursor_init(NULL, NULL);
    tr_cursor_init_bytes(NULL, one, 1);
    tr_cursor_init(&c, NULL);
    CHECK(tr_cursor_done(&c));
    CHECK(tr_cursor_done(NULL));
    tr_cursor_init_bytes(&c, NULL, 5);
    CHECK(tr_cursor_done(&c));
    CHECK_ERR(tr_cursor_int(&c, &i), TR_EBADMSG);
    CHECK_ERR(tr_cursor_skip(&c), TR_EBADMSG);

    tr_cursor_init_bytes(&c, one, 1);
    CHECK_ERR(tr_cursor_int(NULL, &i), TR_EINVAL);
    CHECK_ERR(tr_cursor_int(&c, NULL), TR_EINVAL);
    CHECK_ERR(tr_cursor_uint(NULL, &u), TR_EINVAL);
    CHECK_ERR(tr_cursor_uint(&c, NULL), TR_EINVAL);
    CHECK_ERR(tr_cursor_double(NULL, &d), TR_EINVAL);
    CHECK_ERR(tr_cursor_double(&c, NULL), TR_EINVAL);
    CHECK_ERR(tr_cursor_bool(NULL, &b), TR_EINVAL);
    CHECK_ERR(tr_cursor_bool(&c, NULL), TR_EINVAL);
    CHECK_ERR(tr_cursor_nil(NULL), TR_EINVAL);
    CHECK_ERR(tr_cursor_str(NULL, &s, &len), TR_EINVAL);
    CHECK_ERR(tr_cursor_str(&c, NULL, &len), TR_EINVAL);
    CHECK_ERR(tr_cursor_str(&c, &s, NULL), TR_EINVAL);
    CHECK_ERR(tr_cursor_bin(NULL, &p, &len), TR_EINVAL);
    CHECK_ERR(tr_cursor_bin(&c, NULL, &len), TR_EINVAL);
    CHECK_ERR(tr_cursor_bin(&c, &p, NULL), TR_EINVAL);
    CHECK_ERR(tr_cursor_array(NULL, &n), TR_EINVAL);
    CHECK_ERR(tr_cursor_array(&c, NULL), TR_EINVAL);
    CHECK_ERR(tr_cursor_map(NULL, &n), TR_EINVAL);
    CHECK_ERR(tr_cursor_map(&c, NULL), TR_EINVAL);
    CHECK_ERR(tr_cursor_ref(NULL, &ref), TR_EINVAL);
    CHECK_ERR(tr_cursor_ref(&c, NULL), TR_EINVAL);
    CHECK_ERR(tr_cursor_skip(NULL), TR_EINVAL);
    CHECK(c.pos == one);

    CHECK_ERR(tr_reader_init(NULL, NULL), TR_EINVAL);
    CHECK_ERR(tr_reader_init(&r, NULL), TR_EINVAL);
    tr_reader_fini(&r);
    CHECK_ERR(tr_reader_init_bytes(NULL, one, 1), TR_EINVAL);
    CHECK_ERR(tr_reader_init_bytes(&r, NULL, 1), TR_EINVAL);
    tr_reader_fini(&r);
    tr_reader_fini(NULL);

    o.type = MSGPACK_OBJECT_NIL;
    CHECK_ERR(tr_obj_int(NULL, &i), TR_EINVAL);
    CHECK_ERR(tr_obj_int(&o, NULL), TR_EINVAL);
    CHECK_ERR(tr_obj_uint(NULL, &u), TR_EINVAL);
    CHECK_ERR(tr_obj_uint(&o, NULL), TR_EINVAL);
    CHECK_ERR(tr_obj_double(NULL, &d), TR_EINVAL);
    CHECK_ERR(tr_obj_double(&o, NULL), TR_EINVAL);
    CHECK_ERR(tr_obj_bool(NULL, &b), TR_EINVAL);
    CHECK_ERR(tr_obj_bool(&o, NULL), TR_EINVAL);
    CHECK_ERR(tr_obj_str(NULL, &s, &len), TR_EINVAL);
    CHECK_ERR(tr_obj_str(&o, NULL, &len), TR_EINVAL);
    CHECK_ERR(tr_obj_str(&o, &s, NULL), TR_EINVAL);
    CHECK_ERR(tr_obj_bin(NULL, &p, &len), TR_EINVAL);
    CHECK_ERR(tr_obj_bin(&o, NULL, &len), TR_EINVAL);
    CHECK_ERR(tr_obj_bin(&o, &p, NULL), TR_EINVAL);
    CHECK_ERR(tr_obj_len(NULL, &n), TR_EINVAL);
    CHECK_ERR(tr_obj_len(&o, NULL), TR_EINVAL);
    CHECK_ERR(tr_obj_at(NULL, 0, &po), TR_EINVAL);
    CHECK_ERR(tr_obj_at(&o, 0, NULL), TR_EINVAL);
    CHECK_ERR(tr_obj_get(NULL, "k", &po), TR_EINVAL);
    CHECK_ERR(tr_obj_get(&o, NULL, &po), TR_EINVAL);
    CHECK_ERR(tr_obj_get(&o, "k", NULL), TR_EINVAL);
    CHECK_ERR(tr_obj_ref(NULL, &ref), TR_EINVAL);
    CHECK_ERR(tr_obj_ref(&o, NULL), TR_EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Integers                                                                  */
/* ------------------------------------------------------------------------ */

/* Checks every reading path over one encoded integer whose value is either
 * the signed sv (negative == true) or the unsigned uv. */
static void check_int_bytes(const uint8_t *src, size_t len, bool negative, int64_t sv, uint64_t uv)
{
    uint8_t *bytes = dup_exact(src, len);
    const bool fits_i64 = negative || uv <= (uint64_t)INT64_MAX;
    const double want_d = negative ? (double)sv : (double)uv;
    tr_cursor c;
    tr_reader r;
    int64_t i = 0;
    uint64_t u = 0;
    double d = 0;

    CHECK_ERR(tr_validate(bytes, len), TR_OK);

    tr_cursor_init_bytes(&c, bytes, len);
    if (fits_i64) {
        CHECK_ERR(tr_cursor_int(&c, &i), TR_OK);
        CHECK(i == (negative ? sv : (int64_t)uv));
        CHECK(tr_cursor_done(&c));
    } else {
        CHECK_ERR(tr_cursor_int(&c, &i), TR_ERANGE);
        CHECK(c.pos == bytes);
    }

    tr_cursor_init_bytes(&c, bytes, len);
    if (negative) {
        CHECK_ERR(tr_cursor_uint(&c, &u), TR_ERANGE);
        CHECK(c.pos == bytes);
    } else {
        CHECK_ERR(tr_cursor_uint(&c, &u), TR_OK);
        CHECK(u == uv);
        CHECK(tr_cursor_done(&c));
    }

    tr_cursor_init_bytes(&c, bytes, len);
    CHECK_ERR(tr_cursor_double(&c, &d), TR_OK);
    CHECK(d == want_d);
    CHECK(tr_cursor_done(&c));

    /* Every shorter prefix is truncated. */
    for (size_t cut = 1; cut < len; cut++) {
        tr_cursor_init_bytes(&c, bytes, cut);
        CHECK_ERR(tr_cursor_int(&c, &i), TR_EBADMSG);
        CHECK_ERR(tr_cursor_uint(&c, &u), TR_EBADMSG);
        CHECK_ERR(tr_cursor_double(&c, &d), TR_EBADMSG);
        CHECK_ERR(tr_validate(bytes, cut), TR_EBADMSG);
        CHECK(c.pos == bytes);
    }

    CHECK_ERR(tr_reader_init_bytes(&r, bytes, len), TR_OK);
    if (fits_i64) {
        CHECK_ERR(tr_obj_int(&r.root, &i), TR_OK);
        CHECK(i == (negative ? sv : (int64_t)uv));
    } else {
        CHECK_ERR(tr_obj_int(&r.root, &i), TR_ERANGE);
    }
    if (negative) {
        CHECK_ERR(tr_obj_uint(&r.root, &u), TR_ERANGE);
    } else {
        CHECK_ERR(tr_obj_uint(&r.root, &u), TR_OK);
        CHECK(u == uv);
    }
    CHECK_ERR(tr_obj_double(&r.root, &d), TR_OK);
    CHECK(d == want_d);
    tr_reader_fini(&r);

    free(bytes);
}

/* Encodes a signed value in its shortest form and in every wider fixed
 * form it fits, then checks each encoding. */
static void check_signed(int64_t v)
{
    test_buf b;

    buf_init(&b);
    msgpack_pack_int64(&b.pk, v);
    check_int_bytes(buf_data(&b), b.sb.size, v < 0, v, (uint64_t)v);

    if (v >= INT8_MIN && v <= INT8_MAX) {
        buf_clear(&b);
        msgpack_pack_fix_int8(&b.pk, (int8_t)v);
        CHECK(b.sb.size == 2 && buf_data(&b)[0] == 0xd0);
        check_int_bytes(buf_data(&b), b.sb.size, v < 0, v, (uint64_t)v);
    }
    if (v >= INT16_MIN && v <= INT16_MAX) {
        buf_clear(&b);
        msgpack_pack_fix_int16(&b.pk, (int16_t)v);
        CHECK(b.sb.size == 3 && buf_data(&b)[0] == 0xd1);
        check_int_bytes(buf_data(&b), b.sb.size, v < 0, v, (uint64_t)v);
    }
    if (v >= INT32_MIN && v <= INT32_MAX) {
        buf_clear(&b);
        msgpack_pack_fix_int32(&b.pk, (int32_t)v);
        CHECK(b.sb.size == 5 && buf_data(&b)[0] == 0xd2);
        check_int_bytes(buf_data(&b), b.sb.size, v < 0, v, (uint64_t)v);
    }
    buf_clear(&b);
    msgpack_pack_fix_int64(&b.pk, v);
    CHECK(b.sb.size == 9 && buf_data(&b)[0] == 0xd3);
    check_int_bytes(buf_data(&b), b.sb.size, v < 0, v, (uint64_t)v);
    buf_fini(&b);
}

/* Encodes an unsigned value in its shortest form and every fixed form it
 * fits, then checks each encoding. */
static void check_unsigned(uint64_t v)
{
    test_buf b;

    buf_init(&b);
    msgpack_pack_uint64(&b.pk, v);
    check_int_bytes(buf_data(&b), b.sb.size, false, 0, v);

    if (v <= UINT8_MAX) {
        buf_clear(&b);
        msgpack_pack_fix_uint8(&b.pk, (uint8_t)v);
        CHECK(b.sb.size == 2 && buf_data(&b)[0] == 0xcc);
        check_int_bytes(buf_data(&b), b.sb.size, false, 0, v);
    }
    if (v <= UINT16_MAX) {
        buf_clear(&b);
        msgpack_pack_fix_uint16(&b.pk, (uint16_t)v);
        CHECK(b.sb.size == 3 && buf_data(&b)[0] == 0xcd);
        check_int_bytes(buf_data(&b), b.sb.size, false, 0, v);
    }
    if (v <= UINT32_MAX) {
        buf_clear(&b);
        msgpack_pack_fix_uint32(&b.pk, (uint32_t)v);
        CHECK(b.sb.size == 5 && buf_data(&b)[0] == 0xce);
        check_int_bytes(buf_data(&b), b.sb.size, false, 0, v);
    }
    buf_clear(&b);
    msgpack_pack_fix_uint64(&b.pk, v);
    CHECK(b.sb.size == 9 && buf_data(&b)[0] == 0xcf);
    check_int_bytes(buf_data(&b), b.sb.size, false, 0, v);
    buf_fini(&b);
}

static void test_integers(void)
{
    static const int64_t signed_values[] = {
        0,     1,     31,         127,        128,        255,        256,       32767, 32768,
        65535, 65536, 2147483647, 2147483648, 4294967295, 4294967296, INT64_MAX, -1,    -31,
        -32,   -33,   -127,       -128,       -129,       -32767,     -32768,    -32769};
    static const int64_t signed_edges[] = {INT32_MIN + 1LL, INT32_MIN, (int64_t)INT32_MIN - 1,
                                           INT64_MIN + 1, INT64_MIN};
    static const uint64_t unsigned_values[] = {0,   1,     127,   128,         255,
                                               256, 65535, 65536, 4294967295u, 4294967296u};
    static const uint64_t unsigned_edges[] = {(uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1,
                                              UINT64_MAX - 1, UINT64_MAX};
    /* Hand-made encodings the packer never emits: fixints at the edges. */
    static const uint8_t fix_pos_max[] = {0x7f};
    static const uint8_t fix_neg_min[] = {0xe0};
    static const uint8_t fix_neg_max[] = {0xff};

    for (size_t k = 0; k < sizeof signed_values / sizeof signed_values[0]; k++)
        check_signed(signed_values[k]);
    for (size_t k = 0; k < sizeof signed_edges / sizeof signed_edges[0]; k++)
        check_signed(signed_edges[k]);
    for (size_t k = 0; k < sizeof unsigned_values / sizeof unsigned_values[0]; k++)
        check_unsigned(unsigned_values[k]);
    for (size_t k = 0; k < sizeof unsigned_edges / sizeof unsigned_edges[0]; k++)
        check_unsigned(unsigned_edges[k]);
    check_int_bytes(fix_pos_max, 1, false, 0, 127);
    check_int_bytes(fix_neg_min, 1, true, -32, 0);
    check_int_bytes(fix_neg_max, 1, true, -1, 0);
}

/* ------------------------------------------------------------------------ */
/* Floats, nil, bool                                                         */
/* ------------------------------------------------------------------------ */

static void test_floats_nil_bool(void)
{
    test_buf b;
    tr_cursor c;
    tr_reader r;
    uint8_t *bytes;
    double d;
    int64_t i;
    bool flag;

    buf_init(&b);
    msgpack_pack_array(&b.pk, 7);
    msgpack_pack_float(&b.pk, 1.5f);
    msgpack_pack_double(&b.pk, -2.25);
    msgpack_pack_double(&b.pk, INFINITY);
    msgpack_pack_double(&b.pk, NAN);
    msgpack_pack_nil(&b.pk);
    msgpack_pack_true(&b.pk);
    msgpack_pack_false(&b.pk);
    bytes = dup_exact(buf_data(&b), b.sb.size);
    CHECK(bytes[1] == 0xca && bytes[6] == 0xcb);
    CHECK_ERR(tr_validate(bytes, b.sb.size), TR_OK);

    tr_cursor_init_bytes(&c, bytes, b.sb.size);
    CHECK_ERR(tr_cursor_skip(&c), TR_OK);
    CHECK(tr_cursor_done(&c));

    tr_cursor_init_bytes(&c, bytes + 1, b.sb.size - 1);
    CHECK_ERR(tr_cursor_int(&c, &i), TR_ETYPE);
    CHECK_ERR(tr_cursor_double(&c, &d), TR_OK);
    CHECK(d == 1.5);
    CHECK_ERR(tr_cursor_double(&c, &d), TR_OK);
    CHECK(d == -2.25);
    CHECK_ERR(tr_cursor_double(&c, &d), TR_OK);
    CHECK(isinf(d) && d > 0);
    CHECK_ERR(tr_cursor_double(&c, &d), TR_OK);
    CHECK(isnan(d));
    CHECK_ERR(tr_cursor_bool(&c, &flag), TR_ETYPE);
    CHECK_ERR(tr_cursor_nil(&c), TR_OK);
    CHECK_ERR(tr_cursor_nil(&c), TR_ETYPE);
    CHECK_ERR(tr_cursor_bool(&c, &flag), TR_OK);
    CHECK(flag);
    CHECK_ERR(tr_cursor_bool(&c, &flag), TR_OK);
    CHECK(!flag);
    CHECK(tr_cursor_done(&c));
    CHECK_ERR(tr_cursor_bool(&c, &flag), TR_EBADMSG);
    CHECK_ERR(tr_cursor_nil(&c), TR_EBADMSG);

    /* Truncated floats. */
    tr_cursor_init_bytes(&c, bytes + 1, 4);
    CHECK_ERR(tr_cursor_double(&c, &d), TR_EBADMSG);
    tr_cursor_init_bytes(&c, bytes + 6, 8);
    CHECK_ERR(tr_cursor_double(&c, &d), TR_EBADMSG);
    CHECK(c.pos == bytes + 6);

    CHECK_ERR(tr_reader_init_bytes(&r, bytes, b.sb.size), TR_OK);
    {
        const msgpack_object *o;
        CHECK_ERR(tr_obj_at(&r.root, 0, &o), TR_OK);
        CHECK(o->type == MSGPACK_OBJECT_FLOAT32);
        CHECK_ERR(tr_obj_double(o, &d), TR_OK);
        CHECK(d == 1.5);
        CHECK_ERR(tr_obj_int(o, &i), TR_ETYPE);
        CHECK_ERR(tr_obj_at(&r.root, 1, &o), TR_OK);
        CHECK_ERR(tr_obj_double(o, &d), TR_OK);
        CHECK(d == -2.25);
        CHECK_ERR(tr_obj_bool(o, &flag), TR_ETYPE);
        CHECK_ERR(tr_obj_at(&r.root, 4, &o), TR_OK);
        CHECK(o->type == MSGPACK_OBJECT_NIL);
        CHECK_ERR(tr_obj_bool(o, &flag), TR_ETYPE);
        CHECK_ERR(tr_obj_at(&r.root, 5, &o), TR_OK);
        CHECK_ERR(tr_obj_bool(o, &flag), TR_OK);
        CHECK(flag);
        CHECK_ERR(tr_obj_at(&r.root, 6, &o), TR_OK);
        CHECK_ERR(tr_obj_bool(o, &flag), TR_OK);
        CHECK(!flag);
        CHECK_ERR(tr_obj_at(&r.root, 7, &o), TR_ENOTFOUND);
    }
    tr_reader_fini(&r);
    free(bytes);
    buf_fini(&b);
}

/* ------------------------------------------------------------------------ */
/* Strings, binaries, ext                                                    */
/* ------------------------------------------------------------------------ */

static void test_str_bin(void)
{
    static const size_t lengths[] = {0, 1, 31, 32, 255, 256, 65535, 65536, 70000};
    static const uint8_t str_types[] = {0xa0, 0xa1, 0xbf, 0xd9, 0xd9, 0xda, 0xda, 0xdb, 0xdb};
    static const uint8_t bin_types[] = {0xc4, 0xc4, 0xc4, 0xc4, 0xc4, 0xc5, 0xc5, 0xc6, 0xc6};
    char *text = malloc(70000);
    test_buf b;

    if (text == NULL)
        exit(2);
    for (size_t k = 0; k < 70000; k++)
        text[k] = (char)('a' + k % 26);
    text[3] = '\0'; /* a str may hold NUL bytes */
    buf_init(&b);

    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        const size_t n = lengths[k];
        const char *s;
        const uint8_t *p;
        size_t len;
        uint8_t *bytes;
        tr_cursor c;
        tr_reader r;

        /* str */
        buf_clear(&b);
        msgpack_pack_str(&b.pk, n);
        msgpack_pack_str_body(&b.pk, text, n);
        bytes = dup_exact(buf_data(&b), b.sb.size);
        CHECK(bytes[0] == str_types[k]);
        CHECK_ERR(tr_validate(bytes, b.sb.size), TR_OK);
        tr_cursor_init_bytes(&c, bytes, b.sb.size);
        CHECK_ERR(tr_cursor_bin(&c, &p, &len), TR_ETYPE);
        CHECK_ERR(tr_cursor_str(&c, &s, &len), TR_OK);
        CHECK(len == n && (n == 0 || memcmp(s, text, n) == 0));
        CHECK((const uint8_t *)s + len == bytes + b.sb.size);
        CHECK(tr_cursor_done(&c));
        /* Cutting the last body byte, or the header, is a truncation. */
        tr_cursor_init_bytes(&c, bytes, b.sb.size - 1);
        CHECK_ERR(tr_cursor_str(&c, &s, &len), TR_EBADMSG);
        CHECK(c.pos == bytes);
        CHECK_ERR(tr_validate(bytes, b.sb.size - 1), b.sb.size == 1 ? TR_OK : TR_EBADMSG);
        CHECK_ERR(tr_reader_init_bytes(&r, bytes, b.sb.size), TR_OK);
        CHECK_ERR(tr_obj_str(&r.root, &s, &len), TR_OK);
        CHECK(len == n && (n == 0 || memcmp(s, text, n) == 0));
        /* str data points into the buffer, not into a copy. */
        CHECK(n == 0 || (const uint8_t *)s + len == bytes + b.sb.size);
        CHECK_ERR(tr_obj_bin(&r.root, &p, &len), TR_ETYPE);
        tr_reader_fini(&r);
        free(bytes);

        /* bin */
        buf_clear(&b);
        msgpack_pack_bin(&b.pk, n);
        msgpack_pack_bin_body(&b.pk, text, n);
        bytes = dup_exact(buf_data(&b), b.sb.size);
        CHECK(bytes[0] == bin_types[k]);
        CHECK_ERR(tr_validate(bytes, b.sb.size), TR_OK);
        tr_cursor_init_bytes(&c, bytes, b.sb.size);
        CHECK_ERR(tr_cursor_str(&c, &s, &len), TR_ETYPE);
        CHECK_ERR(tr_cursor_bin(&c, &p, &len), TR_OK);
        CHECK(len == n && (n == 0 || memcmp(p, text, n) == 0));
        CHECK(tr_cursor_done(&c));
        tr_cursor_init_bytes(&c, bytes, b.sb.size - 1);
        CHECK_ERR(tr_cursor_bin(&c, &p, &len), TR_EBADMSG);
        CHECK_ERR(tr_validate(bytes, b.sb.size - 1), TR_EBADMSG);
        CHECK_ERR(tr_reader_init_bytes(&r, bytes, b.sb.size), TR_OK);
        CHECK_ERR(tr_obj_bin(&r.root, &p, &len), TR_OK);
        CHECK(len == n && (n == 0 || memcmp(p, text, n) == 0));
        CHECK_ERR(tr_obj_str(&r.root, &s, &len), TR_ETYPE);
        tr_reader_fini(&r);
        free(bytes);
    }
    buf_fini(&b);
    free(text);
}

static void test_ext(void)
{
    /* fixext1/2/4/8/16, then ext8, ext16, ext32. */
    static const size_t lengths[] = {1, 2, 4, 8, 16, 0, 3, 255, 256, 65535, 65536};
    static const uint8_t types[] = {0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xc7,
                                    0xc7, 0xc7, 0xc8, 0xc8, 0xc9};
    uint8_t *data = calloc(1, 65536);
    test_buf b;

    if (data == NULL)
        exit(2);
    buf_init(&b);
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        const msgpack_object *o;
        const char *s;
        size_t len;
        uint8_t *bytes;
        int64_t i;
        uint32_t n;
        tr_cursor c;
        tr_reader r;

        buf_clear(&b);
        msgpack_pack_array(&b.pk, 2);
        msgpack_pack_ext_with_body(&b.pk, data, lengths[k], 7);
        msgpack_pack_int(&b.pk, 5);
        bytes = dup_exact(buf_data(&b), b.sb.size);
        CHECK(bytes[1] == types[k]);
        CHECK(check_all_paths(bytes, b.sb.size) == TR_OK);
        CHECK_ERR(tr_validate(bytes, b.sb.size - 2), TR_EBADMSG);

        tr_cursor_init_bytes(&c, bytes, b.sb.size);
        CHECK_ERR(tr_cursor_array(&c, &n), TR_OK);
        CHECK(n == 2);
        CHECK_ERR(tr_cursor_int(&c, &i), TR_ETYPE);
        CHECK_ERR(tr_cursor_str(&c, &s, &len), TR_ETYPE);
        CHECK_ERR(tr_cursor_map(&c, &n), TR_ETYPE);
        CHECK_ERR(tr_cursor_skip(&c), TR_OK);
        CHECK_ERR(tr_cursor_int(&c, &i), TR_OK);
        CHECK(i == 5 && tr_cursor_done(&c));

        CHECK_ERR(tr_reader_init_bytes(&r, bytes, b.sb.size), TR_OK);
        CHECK_ERR(tr_obj_at(&r.root, 0, &o), TR_OK);
        CHECK(o->type == MSGPACK_OBJECT_EXT && o->via.ext.type == 7 &&
              o->via.ext.size == lengths[k]);
        CHECK_ERR(tr_obj_int(o, &i), TR_ETYPE);
        CHECK_ERR(tr_obj_len(o, &n), TR_ETYPE);
        tr_reader_fini(&r);
        free(bytes);
    }
    buf_fini(&b);
    free(data);
}

/* ------------------------------------------------------------------------ */
/* Arrays and maps                                                           */
/* ------------------------------------------------------------------------ */

static void test_arrays(void)
{
    static const uint32_t counts[] = {0, 1, 15, 16, 65535, 65536, 100000};
    static const uint8_t types[] = {0x90, 0x91, 0x9f, 0xdc, 0xdc, 0xdd, 0xdd};
    test_buf b;

    buf_init(&b);
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        const uint32_t count = counts[k];
        const msgpack_object *o;
        uint8_t *bytes;
        uint32_t n;
        int64_t i;
        tr_cursor c;
        tr_reader r;
        bool all_ok = true;

        buf_clear(&b);
        msgpack_pack_array(&b.pk, count);
        for (uint32_t e = 0; e < count; e++)
            msgpack_pack_int64(&b.pk, (int64_t)(e % 200) - 100);
        bytes = dup_exact(buf_data(&b), b.sb.size);
        CHECK(bytes[0] == types[k]);
        CHECK(check_all_paths(bytes, b.sb.size) == TR_OK);

        tr_cursor_init_bytes(&c, bytes, b.sb.size);
        CHECK_ERR(tr_cursor_map(&c, &n), TR_ETYPE);
        CHECK_ERR(tr_cursor_array(&c, &n), TR_OK);
        CHECK(n == count);
        for (uint32_t e = 0; e < n; e++)
            all_ok &= tr_cursor_int(&c, &i) == TR_OK && i == (int64_t)(e % 200) - 100;
        CHECK(all_ok);
        CHECK(tr_cursor_done(&c));

        CHECK_ERR(tr_reader_init_bytes(&r, bytes, b.sb.size), TR_OK);
        CHECK_ERR(tr_obj_len(&r.root, &n), TR_OK);
        CHECK(n == count);
        all_ok = true;
        for (uint32_t e = 0; e < n; e++)
            all_ok &= tr_obj_at(&r.root, e, &o) == TR_OK && tr_obj_int(o, &i) == TR_OK &&
                      i == (int64_t)(e % 200) - 100;
        CHECK(all_ok);
        CHECK_ERR(tr_obj_at(&r.root, count, &o), TR_ENOTFOUND);
        CHECK_ERR(tr_obj_at(&r.root, UINT32_MAX, &o), TR_ENOTFOUND);
        CHECK_ERR(tr_obj_get(&r.root, "k", &o), TR_ETYPE);
        tr_reader_fini(&r);
        free(bytes);
    }
    buf_fini(&b);
}

static void test_maps(void)
{
    static const uint32_t counts[] = {0, 1, 15, 16, 65535, 65536};
    static const uint8_t types[] = {0x80, 0x81, 0x8f, 0xde, 0xde, 0xdf};
    test_buf b;

    buf_init(&b);
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        const uint32_t count = counts[k];
        const msgpack_object *o;
        const char *s;
        char key[16];
        size_t len;
        uint8_t *bytes;
        uint32_t n;
        int64_t i;
        tr_cursor c;
        tr_reader r;
        bool all_ok = true;

        buf_clear(&b);
        msgpack_pack_map(&b.pk, count);
        for (uint32_t e = 0; e < count; e++) {
            len = (size_t)snprintf(key, sizeof key, "k%" PRIu32, e);
            msgpack_pack_str_with_body(&b.pk, key, len);
            msgpack_pack_uint32(&b.pk, e);
        }
        bytes = dup_exact(buf_data(&b), b.sb.size);
        CHECK(bytes[0] == types[k]);
        CHECK(check_all_paths(bytes, b.sb.size) == TR_OK);

        tr_cursor_init_bytes(&c, bytes, b.sb.size);
        CHECK_ERR(tr_cursor_array(&c, &n), TR_ETYPE);
        CHECK_ERR(tr_cursor_map(&c, &n), TR_OK);
        CHECK(n == count);
        for (uint32_t e = 0; e < n; e++) {
            all_ok &= tr_cursor_str(&c, &s, &len) == TR_OK && len >= 2 && s[0] == 'k';
            all_ok &= tr_cursor_int(&c, &i) == TR_OK && i == (int64_t)e;
        }
        CHECK(all_ok);
        CHECK(tr_cursor_done(&c));

        CHECK_ERR(tr_reader_init_bytes(&r, bytes, b.sb.size), TR_OK);
        CHECK_ERR(tr_obj_len(&r.root, &n), TR_OK);
        CHECK(n == count);
        CHECK_ERR(tr_obj_at(&r.root, 0, &o), TR_ETYPE);
        CHECK_ERR(tr_obj_get(&r.root, "missing", &o), TR_ENOTFOUND);
        CHECK_ERR(tr_obj_get(&r.root, "", &o), TR_ENOTFOUND);
        if (count > 0) {
            snprintf(key, sizeof key, "k%" PRIu32, count - 1);
            CHECK_ERR(tr_obj_get(&r.root, key, &o), TR_OK);
            CHECK(tr_obj_int(o, &i) == TR_OK && i == (int64_t)count - 1);
            CHECK_ERR(tr_obj_get(&r.root, "k0", &o), TR_OK);
            CHECK(tr_obj_int(o, &i) == TR_OK && i == 0);
            /* A prefix of a key, or a key with more after it, is another key. */
            CHECK_ERR(tr_obj_get(&r.root, "k", &o), TR_ENOTFOUND);
        }
        if (count > 10) {
            CHECK_ERR(tr_obj_get(&r.root, "k1", &o), TR_OK);
            CHECK(tr_obj_int(o, &i) == TR_OK && i == 1);
            CHECK_ERR(tr_obj_get(&r.root, "k10", &o), TR_OK);
            CHECK(tr_obj_int(o, &i) == TR_OK && i == 10);
        }
        tr_reader_fini(&r);
        free(bytes);
    }

    /* Keys of other types are passed over; str keys may contain NUL. */
    {
        const msgpack_object *o;
        uint8_t *bytes;
        int64_t i;
        tr_reader r;

        buf_clear(&b);
        msgpack_pack_map(&b.pk, 4);
        msgpack_pack_int(&b.pk, 1);
        msgpack_pack_int(&b.pk, 10);
        msgpack_pack_bin_with_body(&b.pk, "id", 2);
        msgpack_pack_int(&b.pk, 20);
        msgpack_pack_str_with_body(&b.pk, "id\0x", 4);
        msgpack_pack_int(&b.pk, 30);
        msgpack_pack_str_with_body(&b.pk, "id", 2);
        msgpack_pack_int(&b.pk, 40);
        bytes = dup_exact(buf_data(&b), b.sb.size);
        CHECK_ERR(tr_reader_init_bytes(&r, bytes, b.sb.size), TR_OK);
        CHECK_ERR(tr_obj_get(&r.root, "id", &o), TR_OK);
        CHECK(tr_obj_int(o, &i) == TR_OK && i == 40);
        tr_reader_fini(&r);
        free(bytes);
    }
    buf_fini(&b);
}

/* ------------------------------------------------------------------------ */
/* References                                                                */
/* ------------------------------------------------------------------------ */

/* Packs [node, id, incarnation] as tr_pack_ref would; a negative node is
 * packed as a signed integer, to test that it is refused. */
static void pack_ref_parts(test_buf *b, int64_t node, uint64_t id, uint64_t incarnation)
{
    msgpack_pack_array(&b->pk, 3);
    if (node < 0)
        msgpack_pack_int64(&b->pk, node);
    else
        msgpack_pack_uint64(&b->pk, (uint64_t)node);
    msgpack_pack_uint64(&b->pk, id);
    msgpack_pack_uint64(&b->pk, incarnation);
}

/* Checks the cursor and the reader both give want_err (and *want when it
 * is TR_OK) for the bytes in b. */
static void check_ref_bytes(const test_buf *b, tr_err want_err, tr_ref want)
{
    uint8_t *bytes = dup_exact(buf_data(b), b->sb.size);
    tr_cursor c;
    tr_reader r;
    tr_ref got = TR_REF_NIL;

    tr_cursor_init_bytes(&c, bytes, b->sb.size);
    CHECK_ERR(tr_cursor_ref(&c, &got), want_err);
    if (want_err == TR_OK) {
        CHECK(tr_ref_eq(got, want));
        CHECK(tr_cursor_done(&c));
    } else {
        CHECK(c.pos == bytes);
    }
    if (tr_validate(bytes, b->sb.size) == TR_OK) {
        CHECK_ERR(tr_reader_init_bytes(&r, bytes, b->sb.size), TR_OK);
        got = TR_REF_NIL;
        CHECK_ERR(tr_obj_ref(&r.root, &got), want_err);
        if (want_err == TR_OK)
            CHECK(tr_ref_eq(got, want));
        tr_reader_fini(&r);
    }
    free(bytes);
}

static void test_refs(void)
{
    const tr_ref plain = {42, 7, 3};
    const tr_ref widest = {UINT64_MAX, UINT32_MAX, UINT32_MAX};
    test_buf b;

    buf_init(&b);
    pack_ref_parts(&b, 42, 7, 3);
    check_ref_bytes(&b, TR_OK, plain);

    buf_clear(&b);
    msgpack_pack_array(&b.pk, 3);
    msgpack_pack_uint64(&b.pk, UINT64_MAX);
    msgpack_pack_uint64(&b.pk, UINT32_MAX);
    msgpack_pack_uint64(&b.pk, UINT32_MAX);
    check_ref_bytes(&b, TR_OK, widest);

    /* Ids and incarnations are uint32; nodes are never negative. */
    buf_clear(&b);
    pack_ref_parts(&b, 1, (uint64_t)UINT32_MAX + 1, 0);
    check_ref_bytes(&b, TR_ERANGE, plain);
    buf_clear(&b);
    pack_ref_parts(&b, 1, 0, (uint64_t)UINT32_MAX + 1);
    check_ref_bytes(&b, TR_ERANGE, plain);
    buf_clear(&b);
    pack_ref_parts(&b, -1, 0, 0);
    check_ref_bytes(&b, TR_ERANGE, plain);

    /* A signed encoding of a non-negative value is still a uint. */
    buf_clear(&b);
    msgpack_pack_array(&b.pk, 3);
    msgpack_pack_fix_int64(&b.pk, 42);
    msgpack_pack_fix_int8(&b.pk, 7);
    msgpack_pack_fix_int32(&b.pk, 3);
    check_ref_bytes(&b, TR_OK, plain);

    /* Wrong shapes. */
    buf_clear(&b);
    msgpack_pack_array(&b.pk, 2);
    msgpack_pack_uint64(&b.pk, 1);
    msgpack_pack_uint64(&b.pk, 2);
    check_ref_bytes(&b, TR_ETYPE, plain);
    buf_clear(&b);
    msgpack_pack_array(&b.pk, 4);
    for (int k = 0; k < 4; k++)
        msgpack_pack_uint64(&b.pk, 1);
    check_ref_bytes(&b, TR_ETYPE, plain);
    buf_clear(&b);
    msgpack_pack_array(&b.pk, 3);
    msgpack_pack_uint64(&b.pk, 1);
    msgpack_pack_str_with_body(&b.pk, "x", 1);
    msgpack_pack_uint64(&b.pk, 1);
    check_ref_bytes(&b, TR_ETYPE, plain);
    buf_clear(&b);
    msgpack_pack_map(&b.pk, 0);
    check_ref_bytes(&b, TR_ETYPE, plain);
    buf_clear(&b);
    msgpack_pack_uint64(&b.pk, 1);
    check_ref_bytes(&b, TR_ETYPE, plain);

    /* Truncated: every prefix of a good reference fails without moving. */
    buf_clear(&b);
    pack_ref_parts(&b, 1LL << 40, 70000, 300);
    for (size_t cut = 0; cut < b.sb.size; cut++) {
        uint8_t *bytes = dup_exact(buf_data(&b), cut);
        tr_cursor c;
        tr_ref got;

        tr_cursor_init_bytes(&c, bytes, cut);
        CHECK_ERR(tr_cursor_ref(&c, &got), TR_EBADMSG);
        CHECK(c.pos == bytes);
        free(bytes);
    }
    buf_fini(&b);
}

/* ------------------------------------------------------------------------ */
/* Wrong types leave the cursor where it was                                 */
/* ------------------------------------------------------------------------ */

static void test_wrong_types(void)
{
    enum {
        NIL,
        BOOL,
        UINT,
        NEG,
        FLT,
        STR,
        BIN,
        ARR,
        MAP,
        EXT,
        KINDS
    };
    test_buf b;

    buf_init(&b);
    for (int kind = 0; kind < KINDS; kind++) {
        const char *s;
        const uint8_t *p;
        size_t len;
        int64_t i;
        uint64_t u;
        double d;
        bool flag;
        uint32_t n;
        tr_ref ref;
        uint8_t *bytes;
        tr_cursor c;

        buf_clear(&b);
        switch (kind) {
        case NIL:
            msgpack_pack_nil(&b.pk);
            break;
        case BOOL:
            msgpack_pack_true(&b.pk);
            break;
        case UINT:
            msgpack_pack_uint64(&b.pk, 300);
            break;
        case NEG:
            msgpack_pack_int64(&b.pk, -300);
            break;
        case FLT:
            msgpack_pack_double(&b.pk, 0.5);
            break;
        case STR:
            msgpack_pack_str_with_body(&b.pk, "abc", 3);
            break;
        case BIN:
            msgpack_pack_bin_with_body(&b.pk, "abc", 3);
            break;
        case ARR:
            msgpack_pack_array(&b.pk, 1);
            msgpack_pack_nil(&b.pk);
            break;
        case MAP:
            msgpack_pack_map(&b.pk, 1);
            msgpack_pack_nil(&b.pk);
            msgpack_pack_nil(&b.pk);
            break;
        default:
            msgpack_pack_ext_with_body(&b.pk, "abcd", 4, 1);
            break;
        }
        bytes = dup_exact(buf_data(&b), b.sb.size);
        tr_cursor_init_bytes(&c, bytes, b.sb.size);

        CHECK_ERR(tr_cursor_int(&c, &i), kind == UINT || kind == NEG ? TR_OK : TR_ETYPE);
        c.pos = bytes;
        CHECK_ERR(tr_cursor_uint(&c, &u), kind == UINT  ? TR_OK
                                          : kind == NEG ? TR_ERANGE
                                                        : TR_ETYPE);
        c.pos = bytes;
        CHECK_ERR(tr_cursor_double(&c, &d),
                  kind == UINT || kind == NEG || kind == FLT ? TR_OK : TR_ETYPE);
        c.pos = bytes;
        CHECK_ERR(tr_cursor_bool(&c, &flag), kind == BOOL ? TR_OK : TR_ETYPE);
        c.pos = bytes;
        CHECK_ERR(tr_cursor_nil(&c), kind == NIL ? TR_OK : TR_ETYPE);
        c.pos = bytes;
        CHECK_ERR(tr_cursor_str(&c, &s, &len), kind == STR ? TR_OK : TR_ETYPE);
        c.pos = bytes;
        CHECK_ERR(tr_cursor_bin(&c, &p, &len), kind == BIN ? TR_OK : TR_ETYPE);
        c.pos = bytes;
        CHECK_ERR(tr_cursor_array(&c, &n), kind == ARR ? TR_OK : TR_ETYPE);
        c.pos = bytes;
        CHECK_ERR(tr_cursor_map(&c, &n), kind == MAP ? TR_OK : TR_ETYPE);
        c.pos = bytes;
        /* A one-element array is a reference of the wrong shape. */
        CHECK_ERR(tr_cursor_ref(&c, &ref), TR_ETYPE);
        CHECK(c.pos == bytes);
        CHECK_ERR(tr_cursor_skip(&c), TR_OK);
        CHECK(tr_cursor_done(&c));
        free(bytes);
    }
    buf_fini(&b);

    /* 0xc1 is never used: malformed, not merely another type. */
    {
        static const uint8_t never_used[] = {0xc1};
        tr_cursor c;
        int64_t i;
        uint32_t n;

        tr_cursor_init_bytes(&c, never_used, 1);
        CHECK_ERR(tr_cursor_int(&c, &i), TR_EBADMSG);
        CHECK_ERR(tr_cursor_array(&c, &n), TR_EBADMSG);
        CHECK_ERR(tr_cursor_nil(&c), TR_EBADMSG);
        CHECK_ERR(tr_cursor_skip(&c), TR_EBADMSG);
        CHECK_ERR(tr_validate(never_used, 1), TR_EBADMSG);
    }
}

/* ------------------------------------------------------------------------ */
/* Hostile input                                                             */
/* ------------------------------------------------------------------------ */

/* A nested object with every kind of value in it. */
static void pack_sample(test_buf *b)
{
    static const char long_text[300] = "a string long enough for str16";
    const uint8_t blob[3] = {0, 1, 2};

    msgpack_pack_map(&b->pk, 10);
    msgpack_pack_str_with_body(&b->pk, "name", 4);
    msgpack_pack_str_with_body(&b->pk, "troupe", 6);
    msgpack_pack_str_with_body(&b->pk, "ints", 4);
    msgpack_pack_array(&b->pk, 9);
    msgpack_pack_int64(&b->pk, 0);
    msgpack_pack_int64(&b->pk, -1);
    msgpack_pack_int64(&b->pk, 200);
    msgpack_pack_int64(&b->pk, -200);
    msgpack_pack_int64(&b->pk, 70000);
    msgpack_pack_int64(&b->pk, -70000);
    msgpack_pack_int64(&b->pk, 1LL << 40);
    msgpack_pack_int64(&b->pk, -(1LL << 40));
    msgpack_pack_uint64(&b->pk, UINT64_MAX);
    msgpack_pack_str_with_body(&b->pk, "f", 1);
    msgpack_pack_float(&b->pk, 1.5f);
    msgpack_pack_str_with_body(&b->pk, "d", 1);
    msgpack_pack_double(&b->pk, 2.5);
    msgpack_pack_str_with_body(&b->pk, "bin", 3);
    msgpack_pack_bin_with_body(&b->pk, blob, sizeof blob);
    msgpack_pack_str_with_body(&b->pk, "nested", 6);
    msgpack_pack_array(&b->pk, 3);
    msgpack_pack_array(&b->pk, 1);
    msgpack_pack_map(&b->pk, 0);
    msgpack_pack_array(&b->pk, 3);
    msgpack_pack_nil(&b->pk);
    msgpack_pack_true(&b->pk);
    msgpack_pack_false(&b->pk);
    msgpack_pack_map(&b->pk, 1);
    msgpack_pack_str_with_body(&b->pk, "x", 1);
    msgpack_pack_ext_with_body(&b->pk, blob, 2, 5);
    msgpack_pack_str_with_body(&b->pk, "ref", 3);
    pack_ref_parts(b, 1, 2, 3);
    msgpack_pack_str_with_body(&b->pk, "s8", 2);
    msgpack_pack_str_with_body(&b->pk, long_text, 40);
    msgpack_pack_str_with_body(&b->pk, "s16", 3);
    msgpack_pack_str_with_body(&b->pk, long_text, sizeof long_text);
    msgpack_pack_str_with_body(&b->pk, "e", 1);
    msgpack_pack_ext_with_body(&b->pk, long_text, 20, -3);
}

static void test_truncations(void)
{
    const msgpack_object *o;
    const char *s;
    size_t len;
    tr_ref ref;
    test_buf b;
    tr_reader r;

    buf_init(&b);
    pack_sample(&b);
    CHECK(check_all_paths(buf_data(&b), b.sb.size) == TR_OK);

    /* The whole sample reads back. */
    CHECK_ERR(tr_reader_init_bytes(&r, buf_data(&b), b.sb.size), TR_OK);
    CHECK_ERR(tr_obj_get(&r.root, "name", &o), TR_OK);
    CHECK(tr_obj_str(o, &s, &len) == TR_OK && len == 6 && memcmp(s, "troupe", 6) == 0);
    CHECK_ERR(tr_obj_get(&r.root, "ref", &o), TR_OK);
    CHECK(tr_obj_ref(o, &ref) == TR_OK && ref.node == 1 && ref.id == 2 && ref.incarnation == 3);
    tr_reader_fini(&r);

    /* Every proper prefix is rejected by every path (the empty one is "no
     * payload", which check_all_paths expects to be accepted). */
    for (size_t cut = 0; cut < b.sb.size; cut++) {
        tr_err verdict = check_all_paths(buf_data(&b), cut);
        CHECK(verdict == (cut == 0 ? TR_OK : TR_EBADMSG));
        if (verdict != (cut == 0 ? TR_OK : TR_EBADMSG))
            fprintf(stderr, "  prefix of %zu bytes\n", cut);
    }
    /* So is the sample with any one byte removed from the middle, or with
     * any byte replaced by 0xc1 (never used), or with a byte appended. */
    for (size_t gap = 0; gap < b.sb.size; gap++) {
        uint8_t *holed = dup_exact(buf_data(&b), b.sb.size);
        memmove(holed + gap, holed + gap + 1, b.sb.size - gap - 1);
        check_all_paths(holed, b.sb.size - 1);
        memcpy(holed, buf_data(&b), b.sb.size);
        holed[gap] = 0xc1;
        check_all_paths(holed, b.sb.size);
        free(holed);
    }
    buf_fini(&b);
}

static void test_huge_counts(void)
{
    /* Each declares far more than the bytes that follow. */
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a', 0x01};
    static const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02};
    static const uint8_t map16[] = {0xde, 0xff, 0xff, 0x01, 0x01};
    static const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    static const uint8_t bin32[] = {0xc6, 0xff, 0xff, 0xff, 0xff, 'a'};
    static const uint8_t ext32[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'};
    /* A map of 3 pairs needs 6 bytes; 5 follow (more than 3, fewer than 6). */
    static const uint8_t map_half[] = {0x83, 0x01, 0x01, 0x01, 0x01, 0x01};
    /* Counts that each fit what remains but not together: an array of 4
     * holding an array that claims the remaining bytes for itself. */
    static const uint8_t nested[] = {0x94, 0xdc, 0x00, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01};
    /* A count that exactly matches the bytes is fine. */
    static const uint8_t exact[] = {0xdc, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04};
    /* Headers cut inside their count or length field. */
    static const uint8_t cut_count[] = {0xdd, 0x00, 0x00};
    static const uint8_t cut_length[] = {0xda, 0x00};
    static const struct {
        const uint8_t *bytes;
        size_t len;
    } bad[] = {{map32, sizeof map32},         {array32, sizeof array32},
               {map16, sizeof map16},         {str32, sizeof str32},
               {bin32, sizeof bin32},         {ext32, sizeof ext32},
               {map_half, sizeof map_half},   {nested, sizeof nested},
               {cut_count, sizeof cut_count}, {cut_length, sizeof cut_length}};

    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        uint8_t *bytes = dup_exact(bad[k].bytes, bad[k].len);
        tr_cursor c;
        tr_reader r;
        uint32_t n;

        CHECK_ERR(tr_validate(bytes, bad[k].len), TR_EBADMSG);
        CHECK(check_all_paths(bytes, bad[k].len) == TR_EBADMSG);
        /* The reader refuses before msgpack-c reserves anything: it never
         * even created a zone. */
        CHECK_ERR(tr_reader_init_bytes(&r, bytes, bad[k].len), TR_EBADMSG);
        CHECK(r.zone.chunk_list.head == NULL);
        tr_reader_fini(&r);
        tr_cursor_init_bytes(&c, bytes, bad[k].len);
        if (k < 3 || k == 6) {
            /* The cursor will not hand out a count the bytes cannot hold. */
            CHECK_ERR(k == 1 ? tr_cursor_array(&c, &n) : tr_cursor_map(&c, &n), TR_EBADMSG);
            CHECK(c.pos == bytes);
        }
        CHECK_ERR(tr_cursor_skip(&c), TR_EBADMSG);
        free(bytes);
    }
    CHECK(check_all_paths(exact, sizeof exact) == TR_OK);
}

/* Builds depth nested arrays (or maps with key 0) around a leaf: an
 * integer, or an empty array when empty_leaf. */
static void pack_nest(test_buf *b, unsigned depth, bool maps, bool empty_leaf)
{
    unsigned containers = empty_leaf ? depth - 1 : depth;

    for (unsigned k = 0; k < containers; k++) {
        if (maps) {
            msgpack_pack_map(&b->pk, 1);
            msgpack_pack_int(&b->pk, 0);
        } else {
            msgpack_pack_array(&b->pk, 1);
        }
    }
    if (empty_leaf)
        msgpack_pack_array(&b->pk, 0);
    else
        msgpack_pack_int(&b->pk, 1);
}

static void test_depth(void)
{
    test_buf b;

    buf_init(&b);
    for (int shape = 0; shape < 4; shape++) {
        const bool maps = shape & 1, empty_leaf = shape & 2;

        for (unsigned depth = 1; depth <= TEST_DEPTH_MAX + 2; depth++) {
            const tr_err want = depth <= TEST_DEPTH_MAX ? TR_OK : TR_EBADMSG;
            uint8_t *bytes;
            tr_reader r;
            tr_err err;

            buf_clear(&b);
            pack_nest(&b, depth, maps, empty_leaf);
            bytes = dup_exact(buf_data(&b), b.sb.size);
            CHECK_ERR(tr_validate(bytes, b.sb.size), want);
            CHECK(check_all_paths(bytes, b.sb.size) == want);

            err = tr_reader_init_bytes(&r, bytes, b.sb.size);
            if (depth <= TEST_UNPACK_DEPTH_MAX)
                CHECK_ERR(err, TR_OK);
            else if (depth <= TEST_DEPTH_MAX)
                CHECK_ERR(err, TR_ENOTSUP);
            else
                CHECK_ERR(err, TR_EBADMSG);
            if (err == TR_OK && !maps) {
                /* Walk down to the leaf through the object tree. */
                const msgpack_object *o = &r.root;
                unsigned levels = empty_leaf ? depth - 1 : depth;
                int64_t leaf;
                uint32_t n;

                for (unsigned k = 0; k < levels; k++)
                    CHECK(tr_obj_at(o, 0, &o) == TR_OK);
                if (empty_leaf)
                    CHECK(tr_obj_len(o, &n) == TR_OK && n == 0);
                else
                    CHECK(tr_obj_int(o, &leaf) == TR_OK && leaf == 1);
            }
            tr_reader_fini(&r);
            free(bytes);
        }
    }

    /* Depth 64 with siblings at every level is still depth 64. */
    buf_clear(&b);
    for (unsigned k = 0; k < TEST_DEPTH_MAX; k++) {
        msgpack_pack_array(&b.pk, 2);
        msgpack_pack_int(&b.pk, (int)k);
    }
    msgpack_pack_nil(&b.pk);
    CHECK(check_all_paths(buf_data(&b), b.sb.size) == TR_OK);

    /* A hundred thousand levels: rejected at once, and no deep recursion. */
    {
        const size_t n = 100000;
        uint8_t *deep = malloc(n);

        if (deep == NULL)
            exit(2);
        memset(deep, 0x91, n - 1);
        deep[n - 1] = 0x01;
        CHECK_ERR(tr_validate(deep, n), TR_EBADMSG);
        {
            tr_cursor c;
            tr_reader r;

            tr_cursor_init_bytes(&c, deep, n);
            CHECK_ERR(tr_cursor_skip(&c), TR_EBADMSG);
            CHECK_ERR(tr_reader_init_bytes(&r, deep, n), TR_EBADMSG);
            tr_reader_fini(&r);
        }
        free(deep);
    }
    buf_fini(&b);
}

static void test_trailing(void)
{
    static const uint8_t two_ints[] = {0x01, 0x02};
    static const uint8_t array_then_nil[] = {0x91, 0x01, 0xc0};
    static const uint8_t map_then_zero[] = {0x81, 0xa1, 'k', 0x01, 0x00};
    tr_cursor c;
    int64_t i;

    CHECK_ERR(tr_validate(two_ints, sizeof two_ints), TR_EBADMSG);
    CHECK(check_all_paths(two_ints, sizeof two_ints) == TR_EBADMSG);
    CHECK(check_all_paths(array_then_nil, sizeof array_then_nil) == TR_EBADMSG);
    CHECK(check_all_paths(map_then_zero, sizeof map_then_zero) == TR_EBADMSG);
    CHECK_ERR(tr_validate(two_ints, 1), TR_OK);

    /* The cursor reads value by value; trailing values are just more of them. */
    tr_cursor_init_bytes(&c, two_ints, sizeof two_ints);
    CHECK(tr_cursor_int(&c, &i) == TR_OK && i == 1 && !tr_cursor_done(&c));
    CHECK(tr_cursor_int(&c, &i) == TR_OK && i == 2 && tr_cursor_done(&c));
}

static void test_empty_payload(void)
{
    tr_cursor c;
    tr_reader r;
    int64_t i;
    uint32_t n;

    CHECK_ERR(tr_validate("", 0), TR_OK);
    tr_cursor_init_bytes(&c, "", 0);
    CHECK(tr_cursor_done(&c));
    CHECK_ERR(tr_cursor_int(&c, &i), TR_EBADMSG);
    CHECK_ERR(tr_cursor_array(&c, &n), TR_EBADMSG);
    CHECK_ERR(tr_cursor_skip(&c), TR_EBADMSG);
    CHECK_ERR(tr_reader_init_bytes(&r, "", 0), TR_OK);
    CHECK(r.root.type == MSGPACK_OBJECT_NIL);
    CHECK_ERR(tr_obj_int(&r.root, &i), TR_ETYPE);
    tr_reader_fini(&r);
    CHECK_ERR(tr_reader_init_bytes(&r, NULL, 0), TR_OK);
    CHECK(r.root.type == MSGPACK_OBJECT_NIL);
    tr_reader_fini(&r);
}

static void test_fini_after_failure(void)
{
    static const uint8_t garbage[] = {0x92, 0xc1, 0x01};
    static const uint8_t good[] = {0x92, 0x01, 0xa1, 'x'};
    tr_reader r;

    /* A reader full of junk: init must not trust what was in it. */
    memset(&r, 0xa5, sizeof r);
    CHECK_ERR(tr_reader_init_bytes(&r, garbage, sizeof garbage), TR_EBADMSG);
    tr_reader_fini(&r);
    tr_reader_fini(&r);

    memset(&r, 0xa5, sizeof r);
    CHECK_ERR(tr_reader_init_bytes(&r, NULL, 3), TR_EINVAL);
    tr_reader_fini(&r);

    memset(&r, 0xa5, sizeof r);
    CHECK_ERR(tr_reader_init(&r, NULL), TR_EINVAL);
    tr_reader_fini(&r);

    /* Success, fini, then a failed init on the same reader, then fini. */
    CHECK_ERR(tr_reader_init_bytes(&r, good, sizeof good), TR_OK);
    tr_reader_fini(&r);
    CHECK(r.root.type == MSGPACK_OBJECT_NIL);
    CHECK_ERR(tr_reader_init_bytes(&r, garbage, sizeof garbage), TR_EBADMSG);
    CHECK(r.root.type == MSGPACK_OBJECT_NIL);
    tr_reader_fini(&r);
}

/* ------------------------------------------------------------------------ */
/* Random input                                                              */
/* ------------------------------------------------------------------------ */

static uint64_t rng_state;

/* xorshift64: small, seedable, good enough to spread bytes around. */
static uint64_t rng_next(void)
{
    uint64_t x = rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static uint64_t rng_below(uint64_t n) { return n == 0 ? 0 : rng_next() % n; }

/* A random byte, biased towards type bytes and small lengths so that the
 * garbage is often almost msgpack. */
static uint8_t rng_byte(void)
{
    static const uint8_t interesting[] = {
        0x00, 0x01, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x91, 0x9f, 0xa0, 0xa1, 0xbf,
        0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb,
        0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7,
        0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff, 0x02, 0x03};

    if (rng_below(3) == 0)
        return (uint8_t)rng_next();
    return interesting[rng_below(sizeof interesting)];
}

/* Packs a random well-formed value at most depth_left containers deep. */
static void pack_random(test_buf *b, unsigned depth_left)
{
    static const char text[] = "the quick brown fox jumps over the lazy dog";
    uint32_t n;

    switch (rng_below(depth_left > 0 ? 12 : 10)) {
    case 0:
        msgpack_pack_nil(&b->pk);
        break;
    case 1:
        msgpack_pack_true(&b->pk);
        break;
    case 2:
        msgpack_pack_int64(&b->pk, (int64_t)rng_next() >> rng_below(64));
        break;
    case 3:
        msgpack_pack_uint64(&b->pk, rng_next() >> rng_below(64));
        break;
    case 4:
        msgpack_pack_double(&b->pk, (double)(int64_t)rng_next() / 7.0);
        break;
    case 5:
        msgpack_pack_float(&b->pk, (float)rng_below(1000) / 8.0f);
        break;
    case 6:
        msgpack_pack_str_with_body(&b->pk, text, rng_below(sizeof text));
        break;
    case 7:
        msgpack_pack_bin_with_body(&b->pk, text, rng_below(sizeof text));
        break;
    case 8:
        msgpack_pack_ext_with_body(&b->pk, text, rng_below(20), (int8_t)rng_below(100));
        break;
    case 9:
        pack_ref_parts(b, (int64_t)rng_below(1000), rng_below(1u << 20), rng_below(100));
        break;
    case 10:
        n = (uint32_t)rng_below(6);
        msgpack_pack_array(&b->pk, n);
        while (n--)
            pack_random(b, depth_left - 1);
        break;
    default:
        n = (uint32_t)rng_below(5);
        msgpack_pack_map(&b->pk, n);
        while (n--) {
            pack_random(b, depth_left - 1);
            pack_random(b, depth_left - 1);
        }
        break;
    }
}

static void test_random(uint64_t seed)
{
    uint8_t scratch[96];
    test_buf b;
    unsigned long accepted = 0;

    rng_state = seed;
    buf_init(&b);
    for (int round = 0; round < 200000; round++) {
        size_t len;

        switch (rng_below(4)) {
        case 0: /* Garbage. */
            len = rng_below(sizeof scratch);
            for (size_t k = 0; k < len; k++)
                scratch[k] = rng_byte();
            if (check_all_paths(scratch, len) == TR_OK)
                accepted++;
            break;
        case 1: /* A well-formed random value: every path must accept it. */
            buf_clear(&b);
            pack_random(&b, (unsigned)rng_below(8));
            CHECK(check_all_paths(buf_data(&b), b.sb.size) == TR_OK);
            break;
        default: /* A well-formed value with a few bytes changed or cut. */
            buf_clear(&b);
            pack_random(&b, (unsigned)rng_below(6));
            len = b.sb.size < sizeof scratch ? b.sb.size : sizeof scratch;
            memcpy(scratch, buf_data(&b), len);
            for (uint64_t k = rng_below(4); k > 0 && len > 0; k--)
                scratch[rng_below(len)] = rng_byte();
            if (rng_below(2) == 0)
                len = rng_below(len + 1);
            if (check_all_paths(scratch, len) == TR_OK)
                accepted++;
            break;
        }
        if (test_failures > 50) {
            fprintf(stderr, "test_reader: too many failures, stopping (seed %" PRIu64 ")\n", seed);
            break;
        }
    }
    buf_fini(&b);
    printf("test_reader: random: %lu of the damaged or garbage buffers were valid msgpack\n",
           accepted);
}

/* ------------------------------------------------------------------------ */
/* Message-based entry points (needs the message module)                     */
/* ------------------------------------------------------------------------ */

#ifdef TEST_READER_MSG
/* Makes a message whose payload is exactly the given raw bytes: the str
 * body packer appends bytes verbatim, so any payload can be built. */
static tr_msg *msg_with_bytes(const void *bytes, size_t len)
{
    msgpack_packer pk;
    tr_msg *m = NULL;

    if (tr_msg_new(&m, NULL, "t") != TR_OK) {
        fprintf(stderr, "tr_msg_new failed\n");
        exit(2);
    }
    tr_msg_packer(m, &pk);
    if (len > 0)
        msgpack_pack_str_body(&pk, bytes, len);
    return m;
}

static void test_messages(void)
{
    static const uint8_t one_int[] = {0xd1, 0xff, 0x38}; /* int16 -200 */
    static const uint8_t big[] = {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t trailing[] = {0x05, 0x06};
    static const uint8_t cut[] = {0xce, 0x00, 0x01};
    static const uint8_t text[] = {0xa2, 'h', 'i'};
    static const uint8_t bad[] = {0x92, 0x01};
    tr_msg *m;
    tr_cursor c;
    tr_reader r;
    int64_t i;

    m = msg_with_bytes(NULL, 0);
    CHECK_ERR(tr_msg_validate(m), TR_OK);
    CHECK_ERR(tr_msg_int(m, &i), TR_EBADMSG);
    CHECK_ERR(tr_msg_int(m, NULL), TR_EINVAL);
    tr_cursor_init(&c, m);
    CHECK(tr_cursor_done(&c));
    CHECK_ERR(tr_reader_init(&r, m), TR_OK);
    CHECK(r.root.type == MSGPACK_OBJECT_NIL);
    tr_reader_fini(&r);
    tr_msg_free(m);

    m = msg_with_bytes(one_int, sizeof one_int);
    CHECK_ERR(tr_msg_validate(m), TR_OK);
    CHECK(tr_msg_int(m, &i) == TR_OK && i == -200);
    tr_cursor_init(&c, m);
    CHECK(tr_cursor_int(&c, &i) == TR_OK && i == -200 && tr_cursor_done(&c));
    CHECK_ERR(tr_reader_init(&r, m), TR_OK);
    CHECK(tr_obj_int(&r.root, &i) == TR_OK && i == -200);
    tr_reader_fini(&r);
    tr_msg_free(m);

    m = msg_with_bytes(big, sizeof big);
    CHECK_ERR(tr_msg_int(m, &i), TR_ERANGE);
    tr_msg_free(m);

    m = msg_with_bytes(trailing, sizeof trailing);
    CHECK_ERR(tr_msg_validate(m), TR_EBADMSG);
    CHECK_ERR(tr_msg_int(m, &i), TR_EBADMSG);
    tr_msg_free(m);

    m = msg_with_bytes(cut, sizeof cut);
    CHECK_ERR(tr_msg_int(m, &i), TR_EBADMSG);
    tr_msg_free(m);

    m = msg_with_bytes(text, sizeof text);
    CHECK_ERR(tr_msg_validate(m), TR_OK);
    CHECK_ERR(tr_msg_int(m, &i), TR_ETYPE);
    tr_msg_free(m);

    m = msg_with_bytes(bad, sizeof bad);
    CHECK_ERR(tr_msg_validate(m), TR_EBADMSG);
    CHECK_ERR(tr_reader_init(&r, m), TR_EBADMSG);
    tr_reader_fini(&r);
    tr_msg_free(m);
}
#endif

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    uint64_t seed = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();

    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--seed") == 0 && k + 1 < argc) {
            seed = strtoull(argv[++k], NULL, 0);
        } else {
            fprintf(stderr, "usage: %s [--seed N]\n", argv[0]);
            return 2;
        }
    }
    /* xorshift never leaves zero, so zero is not a usable seed. */
    if (seed == 0)
        seed = 1;
    printf("test_reader: seed %" PRIu64 " (rerun with --seed %" PRIu64 ")\n", seed, seed);

    test_null_arguments();
    test_integers();
    test_floats_nil_bool();
    test_str_bin();
    test_ext();
    test_arrays();
    test_maps();
    test_refs();
    test_wrong_types();
    test_truncations();
    test_huge_counts();
    test_depth();
    test_trailing();
    test_empty_payload();
    test_fini_after_failure();
#ifdef TEST_READER_MSG
    test_messages();
#endif
    test_random(seed);

    if (test_failures != 0) {
        fprintf(stderr, "test_reader: %lu check(s) failed (seed %" PRIu64 ")\n", test_failures,
                seed);
        return 1;
    }
    printf("test_reader: all checks passed\n");
    return 0;
}
