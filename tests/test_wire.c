/*
 * test_wire.c — checks runtime/wire.c, the node-to-node frame codec.
 *
 * Every frame kind goes through encode → decode with its fields compared,
 * including the extremes of every range; the test vectors of runtime/WIRE.md
 * decode to what the document says; and hostile input — truncation at every
 * offset, random garbage and random mutations of valid frames, a DATA frame
 * declaring 2^32-1 envelopes, frames over the size limit, out-of-range
 * fields — gives an error, never a crash. Each buffer under test lives in
 * its own exact-size allocation so that a sanitizer catches any read past
 * its end.
 *
 * The random part prints its seed and takes --seed N to replay a failure.
 */
#include "auth.h"
#include "check.h"
#include "wire.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>

/* A generous frame limit for tests that are not about the limit. */
#define TEST_MAX_FRAME (1u << 20)

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* A heap copy of exactly len bytes (NULL for 0), so that reading one byte
 * past the end is an out-of-bounds read a sanitizer reports. */
static uint8_t *dup_exact(const void *p, size_t len)
{
    uint8_t *copy;

    if (len == 0)
        return NULL;
    copy = malloc(len);
    CHECK(copy != NULL);
    memcpy(copy, p, len);
    return copy;
}

/* Parses hex digits, skipping white space, into an exact-size allocation.
 * *len receives the byte count. */
static uint8_t *from_hex(const char *hex, size_t *len)
{
    uint8_t tmp[8192];
    size_t n = 0;
    int hi = -1;

    for (const char *p = hex; *p; p++) {
        int v;
        if (isspace((unsigned char)*p))
            continue;
        CHECK(isxdigit((unsigned char)*p));
        v = isdigit((unsigned char)*p) ? *p - '0' : tolower((unsigned char)*p) - 'a' + 10;
        if (hi < 0) {
            hi = v;
        } else {
            CHECK(n < sizeof tmp);
            tmp[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    CHECK(hi < 0);
    *len = n;
    return dup_exact(tmp, n);
}

/* Decodes bytes (copied to an exact-size buffer) and, when that succeeds,
 * walks every envelope, which must all come out. */
static tr_err decode_copy(const void *bytes, size_t len, size_t max_frame, wire_frame *f)
{
    uint8_t *copy = dup_exact(bytes, len);
    wire_frame local;
    tr_err err;

    if (f == NULL)
        f = &local;
    err = tr__wire_decode(f, copy, len, max_frame);
    if (err == TR_OK && f->kind == WIRE_DATA) {
        wire_env_iter it;
        wire_env e;
        uint64_t seq, want = f->seq;
        uint32_t got = 0;
        tr__wire_env_iter_init(&it, f);
        while (tr__wire_env_next(&it, &e, &seq) == TR_OK) {
            CHECK(seq == want);
            want++;
            got++;
        }
        CHECK(got == f->count);
    }
    free(copy);
    if (err != TR_OK)
        CHECK(f->kind == 0 && f->count == 0);
    return err;
}

static bool text_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool hello_eq(const wire_hello *a, const wire_hello *b)
{
    return a->node_id == b->node_id && text_eq(a->name, a->name_len, b->name, b->name_len) &&
           a->features == b->features && bytes_eq(a->auth, a->auth_len, b->auth, b->auth_len) &&
           a->session == b->session && text_eq(a->url, a->url_len, b->url, b->url_len);
}

static bool env_eq(const wire_env *a, const wire_env *b)
{
    return a->kind == b->kind && a->flags == b->flags && tr_ref_eq(a->to, b->to) &&
           tr_ref_eq(a->from, b->from) && a->corr == b->corr && a->deadline_ms == b->deadline_ms &&
           a->status == b->status && text_eq(a->tag, a->tag_len, b->tag, b->tag_len) &&
           bytes_eq(a->payload, a->payload_len, b->payload, b->payload_len);
}

/* The frame b holds, copied to an exact-size buffer; *len gets its size. */
static uint8_t *frame_copy(const wire_buf *b, size_t *len)
{
    const uint8_t *p = tr__wire_buf_frame(b, len);
    CHECK(p != NULL && *len > 0);
    return dup_exact(p, *len);
}

/* Decodes the DATA frame in b and checks it carries exactly envs[0..n). */
static void check_data_frame(const wire_buf *b, uint64_t seq, uint64_t ack, const wire_env *envs,
                             uint32_t n)
{
    size_t len;
    uint8_t *bytes = frame_copy(b, &len);
    wire_frame f;
    wire_env_iter it;
    wire_env e;
    uint64_t s;

    CHECK_OK(tr__wire_decode(&f, bytes, len, len));
    CHECK(f.kind == WIRE_DATA && f.seq == seq && f.ack == ack && f.count == n);
    tr__wire_env_iter_init(&it, &f);
    for (uint32_t i = 0; i < n; i++) {
        CHECK_OK(tr__wire_env_next(&it, &e, &s));
        CHECK(s == seq + i);
        CHECK(env_eq(&e, &envs[i]));
    }
    CHECK_ERR(tr__wire_env_next(&it, &e, &s), TR_ENOTFOUND);
    free(bytes);
}

static const uint8_t payload_pair[] = {0x92, 0x01, 0xa2, 'h', 'i'}; /* [1, "hi"] */

/* A valid request envelope to vary from. */
static wire_env sample_env(void)
{
    wire_env e = {.kind = WIRE_ENV_USER,
                  .flags = WIRE_EF_REQUEST,
                  .to = {2, 5, 1},
                  .from = {0x1122334455667788ull, 3, 2},
                  .corr = 42,
                  .deadline_ms = 1500,
                  .status = 0,
                  .tag = "ping",
                  .tag_len = 4,
                  .payload = payload_pair,
                  .payload_len = sizeof payload_pair};
    return e;
}

/* ------------------------------------------------------------------------ */
/* Test vectors. These MUST be kept in sync with the "Test vectors" section */
/* of runtime/WIRE.md: same names, same bytes, same expected results.       */
/* ------------------------------------------------------------------------ */

static const uint8_t vec_auth[] = {1, 2, 3, 4, 5, 6, 7, 8};

static void vec_check_hello(const wire_frame *f)
{
    wire_hello want = {0x1122334455667788ull,  "alpha", 5, 3, vec_auth, 8, 7,
                       "tcp://127.0.0.1:5555", 20};
    CHECK(f->kind == WIRE_HELLO);
    CHECK(hello_eq(&f->hello, &want));
}

static void vec_check_welcome(const wire_frame *f)
{
    wire_hello want = {2, "beta", 4, 1, NULL, 0, 1700000000, "ipc:///tmp/x.sock", 17};
    CHECK(f->kind == WIRE_WELCOME);
    CHECK(hello_eq(&f->hello, &want));
    CHECK(f->hello.auth == NULL);
}

static void vec_check_data1(const wire_frame *f)
{
    wire_env want = sample_env(), e;
    wire_env_iter it;
    uint64_t seq;

    CHECK(f->kind == WIRE_DATA && f->seq == 1 && f->ack == 0 && f->count == 1);
    tr__wire_env_iter_init(&it, f);
    CHECK_OK(tr__wire_env_next(&it, &e, &seq));
    CHECK(seq == 1 && env_eq(&e, &want));
    CHECK_ERR(tr__wire_env_next(&it, &e, &seq), TR_ENOTFOUND);
}

static void vec_check_data2(const wire_frame *f)
{
    wire_env want0 = sample_env();
    wire_env want1 = {.kind = WIRE_ENV_REPLY,
                      .flags = 0,
                      .to = {0x1122334455667788ull, 3, 2},
                      .from = {2, 5, 1},
                      .corr = 42,
                      .deadline_ms = 0,
                      .status = TR_ENOACTOR,
                      .tag = "tr.reply",
                      .tag_len = 8,
                      .payload = NULL,
                      .payload_len = 0};
    wire_env e;
    wire_env_iter it;
    uint64_t seq;

    CHECK(f->kind == WIRE_DATA && f->seq == 100 && f->ack == 57 && f->count == 2);
    tr__wire_env_iter_init(&it, f);
    CHECK_OK(tr__wire_env_next(&it, &e, &seq));
    CHECK(seq == 100 && env_eq(&e, &want0));
    CHECK_OK(tr__wire_env_next(&it, &e, &seq));
    CHECK(seq == 101 && env_eq(&e, &want1));
    CHECK(e.payload == NULL);
    CHECK_ERR(tr__wire_env_next(&it, &e, &seq), TR_ENOTFOUND);
}

static void vec_check_ack(const wire_frame *f) { CHECK(f->kind == WIRE_ACK && f->ack == 300); }

static void vec_check_heartbeat(const wire_frame *f)
{
    CHECK(f->kind == WIRE_HEARTBEAT && f->nonce == 0xdeadbeef && !f->echo);
}

static void vec_check_heartbeat_echo(const wire_frame *f)
{
    CHECK(f->kind == WIRE_HEARTBEAT && f->nonce == 0xdeadbeef && f->echo);
}

static void vec_check_bye(const wire_frame *f) { CHECK(f->kind == WIRE_BYE && f->reason == 0); }

static void vec_check_bye_stopped(const wire_frame *f)
{
    CHECK(f->kind == WIRE_BYE && f->reason == TR_ESTOPPED);
}

/* The dialler's proof of the PROOF-dialler vector below. */
static const uint8_t vec_proof_dialler[WIRE_PROOF_LEN] = {
    0x48, 0x8f, 0x05, 0x26, 0xfb, 0x52, 0x71, 0x4d, 0x45, 0xf1, 0xb5, 0x74, 0xb3, 0x3b, 0xcf, 0xa8,
    0x54, 0x3d, 0x2e, 0xc3, 0x22, 0xca, 0x98, 0x08, 0xb8, 0x3c, 0x30, 0xb7, 0x8f, 0xed, 0x3a, 0x84};
static const uint8_t vec_proof_listener[WIRE_PROOF_LEN] = {
    0x9c, 0x91, 0x0d, 0xa0, 0xf8, 0x36, 0x1a, 0x7f, 0x9c, 0xc7, 0x0f, 0xf9, 0x19, 0x69, 0x4d, 0xf5,
    0xb9, 0x7f, 0x84, 0x44, 0x79, 0x51, 0x10, 0xf3, 0x66, 0x3b, 0x21, 0x31, 0xd1, 0xbb, 0x56, 0x6a};

static void vec_check_auth(const wire_frame *f)
{
    CHECK(f->kind == WIRE_AUTH && f->auth.session == 0x1234);
    CHECK(bytes_eq(f->auth.proof, f->auth.proof_len, vec_proof_dialler, WIRE_PROOF_LEN));
}

static void vec_check_auth_no_secret(const wire_frame *f)
{
    CHECK(f->kind == WIRE_AUTH && f->auth.session == 5 && f->auth.proof_len == 0);
    CHECK(f->auth.proof == NULL);
}

typedef struct test_vector {
    const char *name;
    const char *hex;
    size_t max_frame; /* 0 = TEST_MAX_FRAME */
    tr_err want;
    bool canonical;                     /* valid and written exactly so by the encoder */
    void (*check)(const wire_frame *f); /* for valid vectors: the decoded meaning */
} test_vector;

static const test_vector vectors[] = {
    /* Valid frames. */
    {"HELLO",
     "98 01 01 cf 11 22 33 44 55 66 77 88 a5 61 6c 70 68 61 03 c4 08 01 02 03 "
     "04 05 06 07 08 07 b4 74 63 70 3a 2f 2f 31 32 37 2e 30 2e 30 2e 31 3a 35 "
     "35 35 35",
     0, TR_OK, true, vec_check_hello},
    {"WELCOME",
     "98 01 02 02 a4 62 65 74 61 01 c4 00 ce 65 53 f1 00 b1 69 70 63 3a 2f 2f "
     "2f 74 6d 70 2f 78 2e 73 6f 63 6b",
     0, TR_OK, true, vec_check_welcome},
    {"DATA-1",
     "95 01 03 01 00 91 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69",
     0, TR_OK, true, vec_check_data1},
    {"DATA-2",
     "95 01 03 64 39 92 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69 99 08 00 93 cf 11 "
     "22 33 44 55 66 77 88 03 02 93 02 05 01 2a 00 04 a8 74 72 2e 72 65 70 6c "
     "79 c4 00",
     0, TR_OK, true, vec_check_data2},
    {"ACK", "93 01 04 cd 01 2c", 0, TR_OK, true, vec_check_ack},
    {"ACK-long-int", "93 01 04 cf 00 00 00 00 00 00 01 2c", 0, TR_OK, false, vec_check_ack},
    {"HEARTBEAT", "94 01 05 ce de ad be ef c2", 0, TR_OK, true, vec_check_heartbeat},
    {"HEARTBEAT-echo", "94 01 05 ce de ad be ef c3", 0, TR_OK, true, vec_check_heartbeat_echo},
    {"BYE", "93 01 06 00", 0, TR_OK, true, vec_check_bye},
    {"BYE-stopped", "93 01 06 03", 0, TR_OK, true, vec_check_bye_stopped},
    {"AUTH",
     "94 01 07 cd 12 34 c4 20 48 8f 05 26 fb 52 71 4d 45 f1 b5 74 b3 3b cf a8 54 3d "
     "2e c3 22 ca 98 08 b8 3c 30 b7 8f ed 3a 84",
     0, TR_OK, true, vec_check_auth},
    {"AUTH-no-secret", "94 01 07 05 c4 00", 0, TR_OK, true, vec_check_auth_no_secret},

    /* Invalid frames. */
    {"empty", "", 0, TR_EBADMSG, false, NULL},
    {"not-an-array", "c0", 0, TR_EBADMSG, false, NULL},
    {"one-element", "91 01", 0, TR_EBADMSG, false, NULL},
    {"version-not-uint", "93 a1 31 04 00", 0, TR_EBADMSG, false, NULL},
    {"version-2", "93 02 04 cd 01 2c", 0, TR_ENOTSUP, false, NULL},
    {"version-0", "93 00 04 cd 01 2c", 0, TR_ENOTSUP, false, NULL},
    {"unknown-kind", "93 01 09 00", 0, TR_ENOTSUP, false, NULL},
    {"kind-0", "92 01 00", 0, TR_ENOTSUP, false, NULL},
    {"truncated", "95 01 03 01 00 91 99 00 01 93 02 05 01", 0, TR_EBADMSG, false, NULL},
    {"trailing-garbage", "93 01 04 cd 01 2c c0", 0, TR_EBADMSG, false, NULL},
    {"too-big", "93 01 04 cd 01 2c", 5, TR_ETOOBIG, false, NULL},
    {"ack-extra-field", "94 01 04 cd 01 2c 00", 0, TR_EBADMSG, false, NULL},
    {"ack-negative", "93 01 04 ff", 0, TR_EBADMSG, false, NULL},
    {"heartbeat-echo-not-bool", "94 01 05 01 01", 0, TR_EBADMSG, false, NULL},
    {"bye-reason-too-big", "93 01 06 ce 80 00 00 00", 0, TR_EBADMSG, false, NULL},
    {"hello-node-0",
     "98 01 01 00 a5 61 6c 70 68 61 03 c4 00 07 aa 69 6e 70 72 6f 63 3a 2f 2f "
     "61",
     0, TR_EBADMSG, false, NULL},
    {"hello-name-empty", "98 01 01 02 a0 03 c4 00 07 aa 69 6e 70 72 6f 63 3a 2f 2f 61", 0,
     TR_EBADMSG, false, NULL},
    {"hello-name-64",
     "98 01 01 02 d9 40 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 "
     "61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 "
     "61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 03 c4 "
     "00 07 aa 69 6e 70 72 6f 63 3a 2f 2f 61",
     0, TR_EBADMSG, false, NULL},
    {"hello-auth-65",
     "98 01 01 02 a1 61 03 c4 41 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
     "00 00 07 aa 69 6e 70 72 6f 63 3a 2f 2f 61",
     0, TR_EBADMSG, false, NULL},
    {"hello-url-missing", "97 01 01 02 a1 61 03 c4 00 07", 0, TR_EBADMSG, false, NULL},
    {"hello-url-empty", "98 01 01 02 a1 61 03 c4 00 07 a0", 0, TR_EBADMSG, false, NULL},
    {"hello-url-256",
     "98 01 01 02 a1 61 03 c4 00 07 da 01 00 75 75 75 75 75 75 75 75 75 75 75 "
     "75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 "
     "75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 "
     "75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 "
     "75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 "
     "75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 "
     "75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 "
     "75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 "
     "75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 "
     "75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 "
     "75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 75 "
     "75 75 75 75 75",
     0, TR_EBADMSG, false, NULL},
    {"hello-url-nul", "98 01 01 02 a1 61 03 c4 00 07 ab 69 6e 70 72 6f 63 3a 2f 2f 00 61", 0,
     TR_EBADMSG, false, NULL},

    /* Invalid DATA frames and envelopes. */
    {"data-count-2^32-1", "95 01 03 01 00 dd ff ff ff ff", 0, TR_EBADMSG, false, NULL},
    {"data-count-short",
     "95 01 03 01 00 92 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"data-no-envelopes", "95 01 03 01 00 90", 0, TR_EBADMSG, false, NULL},
    {"data-seq-0",
     "95 01 03 00 00 91 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"data-seq-wraps",
     "95 01 03 cf ff ff ff ff ff ff ff ff 00 92 99 00 01 93 02 05 01 93 cf 11 "
     "22 33 44 55 66 77 88 03 02 2a cd 05 dc 00 a4 70 69 6e 67 c4 05 92 01 a2 "
     "68 69 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 02 2a cd 05 "
     "dc 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-10-fields",
     "95 01 03 01 00 91 9a 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69 00",
     0, TR_EBADMSG, false, NULL},
    {"env-kind-9",
     "95 01 03 01 00 91 99 09 00 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a 00 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-flag-unknown",
     "95 01 03 01 00 91 99 00 09 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-deadline-no-request",
     "95 01 03 01 00 91 99 00 00 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-request-not-user",
     "95 01 03 01 00 91 99 08 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-to-nil",
     "95 01 03 01 00 91 99 00 01 93 00 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-ref-id-2^32",
     "95 01 03 01 00 91 99 00 01 93 02 cf 00 00 00 01 00 00 00 00 01 93 cf 11 "
     "22 33 44 55 66 77 88 03 02 2a cd 05 dc 00 a4 70 69 6e 67 c4 05 92 01 a2 "
     "68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-ref-2-elements",
     "95 01 03 01 00 91 99 00 01 92 02 05 93 cf 11 22 33 44 55 66 77 88 03 02 "
     "2a cd 05 dc 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-deadline-2^32",
     "95 01 03 01 00 91 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cf 00 00 00 01 00 00 00 00 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-status-2^31",
     "95 01 03 01 00 91 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc ce 80 00 00 00 a4 70 69 6e 67 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-tag-empty",
     "95 01 03 01 00 91 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a0 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-tag-24",
     "95 01 03 01 00 91 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 b8 78 78 78 78 78 78 78 78 78 78 78 78 78 78 78 78 78 "
     "78 78 78 78 78 78 78 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-tag-nul",
     "95 01 03 01 00 91 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 00 6e 67 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-tag-bin",
     "95 01 03 01 00 91 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 c4 04 70 69 6e 67 c4 05 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"env-payload-invalid",
     "95 01 03 01 00 91 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 69 6e 67 c4 01 c1",
     0, TR_EBADMSG, false, NULL},
    {"env-payload-two-objects",
     "95 01 03 01 00 91 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 69 6e 67 c4 02 01 02",
     0, TR_EBADMSG, false, NULL},
    {"env-payload-truncated",
     "95 01 03 01 00 91 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 69 6e 67 c4 02 92 01",
     0, TR_EBADMSG, false, NULL},
    {"env-payload-str",
     "95 01 03 01 00 91 99 00 01 93 02 05 01 93 cf 11 22 33 44 55 66 77 88 03 "
     "02 2a cd 05 dc 00 a4 70 69 6e 67 a5 92 01 a2 68 69",
     0, TR_EBADMSG, false, NULL},
    {"auth-session-0", "94 01 07 00 c4 00", 0, TR_EBADMSG, false, NULL},
    {"auth-proof-31",
     "94 01 07 05 c4 1f 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
     "00 00 00 00 00 00 00 00 00",
     0, TR_EBADMSG, false, NULL},
    {"auth-3-elements", "93 01 07 05", 0, TR_EBADMSG, false, NULL},
};

/* ------------------------------------------------------------------------ */
/* Stream framing vectors (WIRE.md, "Framing vectors")                       */
/* ------------------------------------------------------------------------ */

typedef struct split_vector {
    const char *name;
    const char *hex;
    size_t max_frame; /* 0 = TEST_MAX_FRAME */
    tr_err want;
    size_t frame_len; /* what tr__wire_split reports */
} split_vector;

static const split_vector split_vectors[] = {
    {"framed-ACK", "00 00 00 06 93 01 04 cd 01 2c", 0, TR_OK, 6},
    {"framed-ACK-and-more", "00 00 00 06 93 01 04 cd 01 2c 00 00", 0, TR_OK, 6},
    {"prefix-short", "00 00", 0, TR_ENOTFOUND, 0},
    {"frame-short", "00 00 00 06 93 01", 0, TR_ENOTFOUND, 6},
    {"prefix-0", "00 00 00 00", 0, TR_EBADMSG, 0},
    {"prefix-over-max", "00 00 04 01", 1024, TR_ETOOBIG, 0},
    {"prefix-2^32-1", "ff ff ff ff", 0, TR_ETOOBIG, 0},
};

static void test_framing(void)
{
    for (size_t i = 0; i < sizeof split_vectors / sizeof split_vectors[0]; i++) {
        const split_vector *v = &split_vectors[i];
        size_t len, flen = 99;
        uint8_t *bytes = from_hex(v->hex, &len);
        tr_err err =
            tr__wire_split(bytes, len, v->max_frame ? v->max_frame : TEST_MAX_FRAME, &flen);
        if (err != v->want || flen != v->frame_len)
            TEST_FAIL("framing vector %s: %s with length %zu, expected %s with %zu", v->name,
                      tr_err_name(err), flen, tr_err_name(v->want), v->frame_len);
        if (err == TR_OK) { /* the frame inside decodes */
            wire_frame f;
            CHECK_OK(tr__wire_decode(&f, bytes + WIRE_PREFIX_LEN, flen, TEST_MAX_FRAME));
        }
        free(bytes);
    }
    /* The prefix the link layer writes reads back. */
    uint8_t prefix[WIRE_PREFIX_LEN];
    size_t flen;
    tr__wire_prefix_put(prefix, 0x01020304);
    CHECK(prefix[0] == 1 && prefix[1] == 2 && prefix[2] == 3 && prefix[3] == 4);
    CHECK_ERR(tr__wire_split(prefix, sizeof prefix, 0x01020304, &flen), TR_ENOTFOUND);
    CHECK(flen == 0x01020304);
    /* A DATA frame's builder leaves room for the prefix in front of it. */
    wire_buf b;
    wire_env e = sample_env();
    tr__wire_buf_init(&b);
    CHECK_OK(tr__wire_encode_data(&b, 1, 0, &e, 1, TEST_MAX_FRAME));
    CHECK(b.start >= WIRE_PREFIX_LEN);
    tr__wire_buf_fini(&b);
    printf("framing: %zu vectors\n", sizeof split_vectors / sizeof split_vectors[0]);
}

/* The handshake proofs (WIRE.md, "Proof vectors"): nonces 00..1f (dialler)
 * and 80..9f (listener), dialler node 1, listener node 2, secret "secret". */
static void test_proofs(void)
{
    uint8_t nd[WIRE_NONCE_LEN], nl[WIRE_NONCE_LEN], out[WIRE_PROOF_LEN];
    for (int i = 0; i < WIRE_NONCE_LEN; i++) {
        nd[i] = (uint8_t)i;
        nl[i] = (uint8_t)(0x80 + i);
    }
    CHECK_OK(tr__auth_proof(out, "secret", 6, AUTH_DIALLER, nd, nl, 1, 2, 0x1234));
    CHECK(tr__auth_equal(out, vec_proof_dialler, WIRE_PROOF_LEN));
    CHECK_OK(tr__auth_proof(out, "secret", 6, AUTH_LISTENER, nd, nl, 1, 2, 0x99));
    CHECK(tr__auth_equal(out, vec_proof_listener, WIRE_PROOF_LEN));
    /* Any change makes another proof: role, secret, nonce, ids, session. */
    CHECK_OK(tr__auth_proof(out, "secret", 6, AUTH_LISTENER, nd, nl, 1, 2, 0x1234));
    CHECK(!tr__auth_equal(out, vec_proof_dialler, WIRE_PROOF_LEN));
    CHECK_OK(tr__auth_proof(out, "secreT", 6, AUTH_DIALLER, nd, nl, 1, 2, 0x1234));
    CHECK(!tr__auth_equal(out, vec_proof_dialler, WIRE_PROOF_LEN));
    nd[31] ^= 1;
    CHECK_OK(tr__auth_proof(out, "secret", 6, AUTH_DIALLER, nd, nl, 1, 2, 0x1234));
    CHECK(!tr__auth_equal(out, vec_proof_dialler, WIRE_PROOF_LEN));
    nd[31] ^= 1;
    CHECK_OK(tr__auth_proof(out, "secret", 6, AUTH_DIALLER, nd, nl, 2, 1, 0x1234));
    CHECK(!tr__auth_equal(out, vec_proof_dialler, WIRE_PROOF_LEN));
    CHECK_OK(tr__auth_proof(out, "secret", 6, AUTH_DIALLER, nd, nl, 1, 2, 0x1235));
    CHECK(!tr__auth_equal(out, vec_proof_dialler, WIRE_PROOF_LEN));
    CHECK(tr__auth_random64() != 0);
    printf("proofs: as documented\n");
}

/* The valid vectors come first; the random test mutates them. */
#define TEST_VALID_VECTORS 12

/* Re-encodes a decoded frame into b. */
static tr_err reencode(wire_buf *b, const wire_frame *f, size_t max_frame)
{
    wire_env envs[8];
    wire_env_iter it;
    uint32_t n = 0;

    switch (f->kind) {
    case WIRE_HELLO:
    case WIRE_WELCOME:
        return tr__wire_encode_hello(b, f->kind, &f->hello, max_frame);
    case WIRE_DATA:
        CHECK(f->count <= 8);
        tr__wire_env_iter_init(&it, f);
        while (n < 8 && tr__wire_env_next(&it, &envs[n], NULL) == TR_OK)
            n++;
        return tr__wire_encode_data(b, f->seq, f->ack, envs, n, max_frame);
    case WIRE_ACK:
        return tr__wire_encode_ack(b, f->ack, max_frame);
    case WIRE_HEARTBEAT:
        return tr__wire_encode_heartbeat(b, f->nonce, f->echo, max_frame);
    case WIRE_BYE:
        return tr__wire_encode_bye(b, f->reason, max_frame);
    case WIRE_AUTH:
        return tr__wire_encode_auth(b, &f->auth, max_frame);
    }
    return TR_EINVAL;
}

static void test_vectors(void)
{
    wire_buf b;

    tr__wire_buf_init(&b);
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const test_vector *v = &vectors[i];
        size_t len, max = v->max_frame ? v->max_frame : TEST_MAX_FRAME;
        uint8_t *bytes = from_hex(v->hex, &len);
        wire_frame f;
        tr_err err = tr__wire_decode(&f, bytes, len, max);

        CHECK((v->want == TR_OK) == (i < TEST_VALID_VECTORS));

        if (err != v->want)
            TEST_FAIL("vector %s: decode returned %s, expected %s", v->name, tr_err_name(err),
                      tr_err_name(v->want));
        if (err == TR_OK) {
            const uint8_t *again;
            size_t again_len;
            CHECK(v->check != NULL);
            v->check(&f);
            /* The encoder writes each field's shortest form, so a canonical
             * vector re-encodes to itself. */
            CHECK_OK(reencode(&b, &f, max));
            again = tr__wire_buf_frame(&b, &again_len);
            if (v->canonical && !bytes_eq(again, again_len, bytes, len))
                TEST_FAIL("vector %s does not re-encode to the same bytes", v->name);
        } else {
            CHECK(f.kind == 0);
        }
        free(bytes);
    }
    tr__wire_buf_fini(&b);
    printf("vectors: %zu decoded as documented\n", sizeof vectors / sizeof vectors[0]);
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                               */
/* ------------------------------------------------------------------------ */

static void roundtrip_hello(uint32_t kind, const wire_hello *h)
{
    wire_buf b;
    wire_frame f;
    size_t len;
    uint8_t *bytes;

    tr__wire_buf_init(&b);
    CHECK_OK(tr__wire_encode_hello(&b, kind, h, TEST_MAX_FRAME));
    bytes = frame_copy(&b, &len);
    CHECK_OK(tr__wire_decode(&f, bytes, len, len));
    CHECK(f.kind == kind);
    CHECK(hello_eq(&f.hello, h));
    /* Exactly as long as it needs to be: one byte less is refused. */
    CHECK_ERR(tr__wire_encode_hello(&b, kind, h, len - 1), TR_ETOOBIG);
    CHECK(tr__wire_buf_frame(&b, NULL) == NULL);
    free(bytes);
    tr__wire_buf_fini(&b);
}

static void test_roundtrip_control(void)
{
    static const uint64_t u64s[] = {0,          1,          127,        128,
                                    255,        256,        65535,      65536,
                                    UINT32_MAX, 1ull << 32, UINT64_MAX, 0x8000000000000000ull};
    static const int32_t i32s[] = {0,    1,    -1,    -32,    -33,    127,       128,
                                   -128, -129, 32767, -32768, -32769, INT32_MAX, INT32_MIN};
    static const char *const urls[] = {"tcp://127.0.0.1:5555", "ipc:///tmp/x.sock", "inproc://a",
                                       "tls+tcp://[::1]:65535", "x"};
    char name[WIRE_NAME_MAX];
    uint8_t auth[WIRE_AUTH_MAX];
    char url[WIRE_URL_MAX];
    wire_buf b;
    wire_frame f;
    size_t len;
    uint8_t *bytes;

    memset(name, 'n', sizeof name);
    memset(url, 'u', sizeof url);
    for (size_t i = 0; i < sizeof auth; i++)
        auth[i] = (uint8_t)(i * 7);

    for (size_t i = 0; i < sizeof u64s / sizeof u64s[0]; i++) {
        uint64_t v = u64s[i];
        const char *u = urls[i % (sizeof urls / sizeof urls[0])];
        wire_hello h = {v ? v : 1, name, 1 + i % WIRE_NAME_MAX,
                        v,         auth, i % (WIRE_AUTH_MAX + 1),
                        v,         u,    strlen(u)};
        roundtrip_hello(WIRE_HELLO, &h);
        roundtrip_hello(WIRE_WELCOME, &h);
    }
    {
        wire_hello h = {UINT64_MAX,    name,       WIRE_NAME_MAX, UINT64_MAX,  auth,
                        WIRE_AUTH_MAX, UINT64_MAX, url,           WIRE_URL_MAX};
        roundtrip_hello(WIRE_HELLO, &h);
        h.auth = NULL;
        h.auth_len = 0;
        roundtrip_hello(WIRE_WELCOME, &h);
    }
    /* Every url length, across the str header sizes (fixstr up to 31,
     * str8 above). */
    for (size_t n = 1; n <= WIRE_URL_MAX; n++) {
        wire_hello h = {7, "n", 1, 0, NULL, 0, 1, url, n};
        roundtrip_hello(n % 2 ? WIRE_HELLO : WIRE_WELCOME, &h);
    }

    tr__wire_buf_init(&b);
    for (size_t i = 0; i < sizeof u64s / sizeof u64s[0]; i++) {
        CHECK_OK(tr__wire_encode_ack(&b, u64s[i], TEST_MAX_FRAME));
        bytes = frame_copy(&b, &len);
        CHECK_OK(tr__wire_decode(&f, bytes, len, TEST_MAX_FRAME));
        CHECK(f.kind == WIRE_ACK && f.ack == u64s[i]);
        CHECK_ERR(tr__wire_encode_ack(&b, u64s[i], len - 1), TR_ETOOBIG);
        free(bytes);

        for (int echo = 0; echo < 2; echo++) {
            CHECK_OK(tr__wire_encode_heartbeat(&b, u64s[i], echo, TEST_MAX_FRAME));
            bytes = frame_copy(&b, &len);
            CHECK_OK(tr__wire_decode(&f, bytes, len, TEST_MAX_FRAME));
            CHECK(f.kind == WIRE_HEARTBEAT && f.nonce == u64s[i] && f.echo == (echo != 0));
            CHECK_ERR(tr__wire_encode_heartbeat(&b, u64s[i], echo, len - 1), TR_ETOOBIG);
            free(bytes);
        }
    }
    for (size_t i = 0; i < sizeof i32s / sizeof i32s[0]; i++) {
        CHECK_OK(tr__wire_encode_bye(&b, i32s[i], TEST_MAX_FRAME));
        bytes = frame_copy(&b, &len);
        CHECK_OK(tr__wire_decode(&f, bytes, len, TEST_MAX_FRAME));
        CHECK(f.kind == WIRE_BYE && f.reason == i32s[i]);
        CHECK_ERR(tr__wire_encode_bye(&b, i32s[i], len - 1), TR_ETOOBIG);
        free(bytes);
    }
    tr__wire_buf_fini(&b);
}

static void test_roundtrip_data(void)
{
    enum {
        N = 12
    };
    char tag_max[TR_TAG_MAX];
    wire_env envs[N];
    wire_buf b;
    msgpack_sbuffer big;
    msgpack_packer pk;
    uint8_t *blob;
    const size_t blob_len = 70000;

    memset(tag_max, 't', sizeof tag_max);
    /* A payload bigger than 64 KiB (bin32 header), which is one str. */
    blob = calloc(1, blob_len);
    CHECK(blob != NULL);
    msgpack_sbuffer_init(&big);
    msgpack_packer_init(&pk, &big, msgpack_sbuffer_write);
    msgpack_pack_str(&pk, blob_len);
    msgpack_pack_str_body(&pk, blob, blob_len);
    free(blob);

    /* Every envelope kind, with each field at an edge of its range. */
    for (uint32_t i = 0; i < N; i++) {
        wire_env e = sample_env();
        e.kind = i % (WIRE_ENV_KIND_MAX + 1);
        e.flags = e.kind == WIRE_ENV_USER   ? WIRE_EF_REQUEST
                  : e.kind == WIRE_ENV_EXIT ? WIRE_EF_LINKEXIT | WIRE_EF_CONTROL
                  : e.kind == WIRE_ENV_DOWN ? WIRE_EF_CONTROL
                                            : 0;
        e.deadline_ms = (e.flags & WIRE_EF_REQUEST) ? (i == 0 ? UINT32_MAX : i) : 0;
        e.to =
            (tr_ref){i == 1 ? UINT64_MAX : i + 1, i == 2 ? UINT32_MAX : i, i == 3 ? UINT32_MAX : 0};
        e.from = i == 4 ? TR_REF_NIL : (tr_ref){UINT64_MAX - i, UINT32_MAX - i, i};
        e.corr = i == 5 ? UINT64_MAX : i;
        e.status = i == 6 ? INT32_MIN : i == 7 ? INT32_MAX : -(int32_t)i;
        e.tag = tag_max;
        e.tag_len = 1 + i % TR_TAG_MAX;
        if (i == 8) {
            e.payload = NULL;
            e.payload_len = 0;
        } else if (i == 9) {
            e.payload = (const uint8_t *)big.data;
            e.payload_len = big.size;
        }
        envs[i] = e;
    }
    envs[10].tag_len = TR_TAG_MAX;

    tr__wire_buf_init(&b);
    for (uint32_t n = 1; n <= N; n++) {
        CHECK_OK(tr__wire_encode_data(&b, 1, 0, envs, n, TEST_MAX_FRAME));
        check_data_frame(&b, 1, 0, envs, n);
        CHECK_OK(
            tr__wire_encode_data(&b, UINT64_MAX - (n - 1), UINT64_MAX, envs, n, TEST_MAX_FRAME));
        check_data_frame(&b, UINT64_MAX - (n - 1), UINT64_MAX, envs, n);
    }
    tr__wire_buf_fini(&b);
    msgpack_sbuffer_destroy(&big);
}

/* The builder fills a frame up to its limit, refuses the envelope that does
 * not fit without damaging the frame, and stops at WIRE_ENVELOPES_MAX. */
static void test_builder_limits(void)
{
    wire_env e = sample_env();
    wire_buf b;
    wire_data d;
    size_t len;
    uint32_t n = 0;
    tr_err err;
    const size_t max = 1000;
    wire_env *envs;

    tr__wire_buf_init(&b);
    CHECK_OK(tr__wire_data_begin(&d, &b, 7, 3, max));
    while ((err = tr__wire_data_add(&d, &e)) == TR_OK)
        n++;
    CHECK_ERR(err, TR_ETOOBIG);
    CHECK(n > 10);
    CHECK_OK(tr__wire_data_finish(&d));
    CHECK(tr__wire_buf_frame(&b, &len) != NULL && len <= max);
    /* One more envelope would not have fitted. */
    CHECK(len + 36 > max);
    envs = calloc(WIRE_ENVELOPES_MAX + 1, sizeof *envs);
    CHECK(envs != NULL);
    for (uint32_t i = 0; i <= WIRE_ENVELOPES_MAX; i++)
        envs[i] = e;
    check_data_frame(&b, 7, 3, envs, n);
    CHECK_ERR(tr__wire_encode_data(&b, 7, 3, envs, n + 1, max), TR_ETOOBIG);
    CHECK(tr__wire_buf_frame(&b, NULL) == NULL);

    /* The envelope count limit. */
    CHECK_OK(tr__wire_encode_data(&b, 1, 0, envs, WIRE_ENVELOPES_MAX, SIZE_MAX));
    check_data_frame(&b, 1, 0, envs, WIRE_ENVELOPES_MAX);
    CHECK_ERR(tr__wire_encode_data(&b, 1, 0, envs, WIRE_ENVELOPES_MAX + 1, SIZE_MAX), TR_ETOOBIG);

    /* A frame of 4097 envelopes built by hand is refused. */
    {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        const uint8_t *one;
        size_t one_len, env_len;
        CHECK_OK(tr__wire_encode_data(&b, 1, 0, envs, 1, SIZE_MAX));
        one = tr__wire_buf_frame(&b, &one_len);
        env_len = one_len - 6; /* 95 01 03 01 00 91 */
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 5);
        msgpack_pack_uint64(&pk, 1);
        msgpack_pack_uint64(&pk, WIRE_DATA);
        msgpack_pack_uint64(&pk, 1);
        msgpack_pack_uint64(&pk, 0);
        msgpack_pack_array(&pk, WIRE_ENVELOPES_MAX + 1);
        for (uint32_t i = 0; i <= WIRE_ENVELOPES_MAX; i++)
            msgpack_sbuffer_write(&sb, (const char *)one + 6, env_len);
        CHECK_ERR(decode_copy(sb.data, sb.size, SIZE_MAX, NULL), TR_EBADMSG);
        msgpack_sbuffer_destroy(&sb);
    }

    /* An envelope that could never fit, and finish without envelopes. */
    CHECK_OK(tr__wire_data_begin(&d, &b, 1, 0, 40));
    CHECK_ERR(tr__wire_data_add(&d, &e), TR_ETOOBIG);
    CHECK_ERR(tr__wire_data_finish(&d), TR_EINVAL);
    free(envs);
    tr__wire_buf_fini(&b);
}

/* ------------------------------------------------------------------------ */
/* Hostile input                                                             */
/* ------------------------------------------------------------------------ */

/* Every proper prefix of a valid DATA frame is refused. */
static void test_truncation(void)
{
    const test_vector *v = NULL;
    size_t len;
    uint8_t *bytes;

    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
        if (strcmp(vectors[i].name, "DATA-2") == 0)
            v = &vectors[i];
    CHECK(v != NULL);
    bytes = from_hex(v->hex, &len);
    CHECK_OK(decode_copy(bytes, len, TEST_MAX_FRAME, NULL));
    for (size_t cut = 0; cut < len; cut++)
        CHECK_ERR(decode_copy(bytes, cut, TEST_MAX_FRAME, NULL), TR_EBADMSG);
    free(bytes);
}

/* A DATA frame that declares 2^32-1 envelopes in ten bytes is refused at
 * once, as is one that declares more envelopes than it has. */
static void test_huge_count(void)
{
    static const uint8_t huge[] = {0x95, 0x01, 0x03, 0x01, 0x00, 0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t huge_ack[] = {0x95, 0x01, 0x03, 0x01, 0x00, 0xdd, 0xff,
                                       0xff, 0xff, 0xff, 0x99, 0x00, 0x00};
    static const uint8_t huge_frame[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x03};

    for (int i = 0; i < 1000; i++) {
        CHECK_ERR(decode_copy(huge, sizeof huge, TEST_MAX_FRAME, NULL), TR_EBADMSG);
        CHECK_ERR(decode_copy(huge_ack, sizeof huge_ack, TEST_MAX_FRAME, NULL), TR_EBADMSG);
        CHECK_ERR(decode_copy(huge_frame, sizeof huge_frame, TEST_MAX_FRAME, NULL), TR_EBADMSG);
    }
}

/* A frame over the limit is refused before a byte of it is read: here a
 * buffer of garbage far larger than the limit. */
static void test_too_big(void)
{
    const size_t len = 2 * TEST_MAX_FRAME;
    uint8_t *junk = malloc(len);
    wire_frame f;

    CHECK(junk != NULL);
    memset(junk, 0xc1, len);
    CHECK_ERR(tr__wire_decode(&f, junk, len, TEST_MAX_FRAME), TR_ETOOBIG);
    CHECK_ERR(tr__wire_decode(&f, junk, len, len - 1), TR_ETOOBIG);
    CHECK_ERR(tr__wire_decode(&f, junk, len, len), TR_EBADMSG);
    free(junk);
    CHECK_ERR(tr__wire_decode(NULL, "", 0, 1), TR_EINVAL);
    CHECK_ERR(tr__wire_decode(&f, NULL, 3, 10), TR_EINVAL);
}

/* The encoder refuses every out-of-range field with TR_EINVAL and leaves
 * no frame behind. */
static void test_encode_ranges(void)
{
    static const uint8_t bad_payload[] = {0xc1};
    static const uint8_t two_objects[] = {0x01, 0x02};
    char long_name[WIRE_NAME_MAX + 1];
    uint8_t long_auth[WIRE_AUTH_MAX + 1];
    char long_url[WIRE_URL_MAX + 1];
    wire_hello h = {1, "n", 1, 0, NULL, 0, 0, "inproc://a", 10}, bad;
    wire_env e, base = sample_env();
    wire_buf b;
    wire_data d;

    memset(long_name, 'x', sizeof long_name);
    memset(long_auth, 0, sizeof long_auth);
    memset(long_url, 'u', sizeof long_url);
    tr__wire_buf_init(&b);

    CHECK_OK(tr__wire_encode_hello(&b, WIRE_HELLO, &h, TEST_MAX_FRAME));
    CHECK_ERR(tr__wire_encode_hello(&b, WIRE_DATA, &h, TEST_MAX_FRAME), TR_EINVAL);
    CHECK(tr__wire_buf_frame(&b, NULL) == NULL);
    bad = h, bad.node_id = 0;
    CHECK_ERR(tr__wire_encode_hello(&b, WIRE_HELLO, &bad, TEST_MAX_FRAME), TR_EINVAL);
    bad = h, bad.name_len = 0;
    CHECK_ERR(tr__wire_encode_hello(&b, WIRE_HELLO, &bad, TEST_MAX_FRAME), TR_EINVAL);
    bad = h, bad.name = long_name, bad.name_len = sizeof long_name;
    CHECK_ERR(tr__wire_encode_hello(&b, WIRE_HELLO, &bad, TEST_MAX_FRAME), TR_EINVAL);
    bad = h, bad.name = "a\0b", bad.name_len = 3;
    CHECK_ERR(tr__wire_encode_hello(&b, WIRE_HELLO, &bad, TEST_MAX_FRAME), TR_EINVAL);
    bad = h, bad.name = NULL;
    CHECK_ERR(tr__wire_encode_hello(&b, WIRE_HELLO, &bad, TEST_MAX_FRAME), TR_EINVAL);
    bad = h, bad.auth = long_auth, bad.auth_len = sizeof long_auth;
    CHECK_ERR(tr__wire_encode_hello(&b, WIRE_HELLO, &bad, TEST_MAX_FRAME), TR_EINVAL);
    bad = h, bad.auth_len = 4;
    CHECK_ERR(tr__wire_encode_hello(&b, WIRE_HELLO, &bad, TEST_MAX_FRAME), TR_EINVAL);
    bad = h, bad.url_len = 0;
    CHECK_ERR(tr__wire_encode_hello(&b, WIRE_HELLO, &bad, TEST_MAX_FRAME), TR_EINVAL);
    bad = h, bad.url = NULL, bad.url_len = 0;
    CHECK_ERR(tr__wire_encode_hello(&b, WIRE_WELCOME, &bad, TEST_MAX_FRAME), TR_EINVAL);
    bad = h, bad.url = long_url, bad.url_len = sizeof long_url;
    CHECK_ERR(tr__wire_encode_hello(&b, WIRE_HELLO, &bad, TEST_MAX_FRAME), TR_EINVAL);
    bad = h, bad.url = long_url, bad.url_len = WIRE_URL_MAX;
    CHECK_OK(tr__wire_encode_hello(&b, WIRE_HELLO, &bad, TEST_MAX_FRAME));
    bad = h, bad.url = "inproc://\0a", bad.url_len = 11;
    CHECK_ERR(tr__wire_encode_hello(&b, WIRE_HELLO, &bad, TEST_MAX_FRAME), TR_EINVAL);
    bad = h, bad.url = NULL;
    CHECK_ERR(tr__wire_encode_hello(&b, WIRE_WELCOME, &bad, TEST_MAX_FRAME), TR_EINVAL);
    CHECK(tr__wire_buf_frame(&b, NULL) == NULL);

#define BAD_ENV(change)                                                              \
    do {                                                                             \
        e = base;                                                                    \
        change;                                                                      \
        CHECK_ERR(tr__wire_encode_data(&b, 1, 0, &e, 1, TEST_MAX_FRAME), TR_EINVAL); \
        CHECK(tr__wire_buf_frame(&b, NULL) == NULL);                                 \
    } while (0)

    BAD_ENV(e.kind = WIRE_ENV_KIND_MAX + 1);
    BAD_ENV(e.flags = 8);
    BAD_ENV(e.flags = 0);             /* a deadline without a request */
    BAD_ENV(e.kind = WIRE_ENV_REPLY); /* a request that is not a user message */
    BAD_ENV((e.flags = WIRE_EF_REQUEST | WIRE_EF_LINKEXIT)); /* a link exit that is not an exit */
    BAD_ENV(e.to = TR_REF_NIL);
    BAD_ENV(e.tag_len = 0);
    BAD_ENV((e.tag = "0123456789abcdef01234567", e.tag_len = TR_TAG_MAX + 1));
    BAD_ENV((e.tag = "a\0b", e.tag_len = 3));
    BAD_ENV(e.tag = NULL);
    BAD_ENV((e.payload = bad_payload, e.payload_len = sizeof bad_payload));
    BAD_ENV((e.payload = two_objects, e.payload_len = sizeof two_objects));
    BAD_ENV(e.payload = NULL);
    /* Never read: the length is refused first. */
    BAD_ENV(e.payload_len = (size_t)TR_PAYLOAD_MAX + 1);
#undef BAD_ENV

    /* Sequence numbers start at 1 and never wrap within a frame. */
    CHECK_ERR(tr__wire_encode_data(&b, 0, 0, &base, 1, TEST_MAX_FRAME), TR_EINVAL);
    CHECK_OK(tr__wire_data_begin(&d, &b, UINT64_MAX, 0, TEST_MAX_FRAME));
    CHECK_OK(tr__wire_data_add(&d, &base));
    CHECK_ERR(tr__wire_data_add(&d, &base), TR_EINVAL);
    CHECK_OK(tr__wire_data_finish(&d));
    check_data_frame(&b, UINT64_MAX, 0, &base, 1);
    CHECK_ERR(tr__wire_encode_data(&b, 1, 0, NULL, 0, TEST_MAX_FRAME), TR_EINVAL);
    tr__wire_buf_fini(&b);
}

/* Re-encodes a frame that decoded and checks the round trip: the canonical
 * re-encoding is never longer, decodes to the same fields, and re-encodes
 * to itself. */
static void check_reencode(const uint8_t *bytes, size_t len)
{
    wire_frame f, g;
    wire_buf b1, b2;
    uint8_t *c1;
    size_t l1, l2;
    const uint8_t *p2;

    if (tr__wire_decode(&f, bytes, len, len) != TR_OK || (f.kind == WIRE_DATA && f.count > 8))
        return;
    tr__wire_buf_init(&b1);
    tr__wire_buf_init(&b2);
    CHECK_OK(reencode(&b1, &f, len));
    c1 = frame_copy(&b1, &l1);
    CHECK(l1 <= len);
    CHECK_OK(tr__wire_decode(&g, c1, l1, l1));
    CHECK(g.kind == f.kind && g.seq == f.seq && g.ack == f.ack && g.count == f.count &&
          g.nonce == f.nonce && g.echo == f.echo && g.reason == f.reason);
    if (f.kind == WIRE_HELLO || f.kind == WIRE_WELCOME)
        CHECK(hello_eq(&f.hello, &g.hello));
    if (f.kind == WIRE_DATA) {
        wire_env_iter a, z;
        wire_env ea, ez;
        tr__wire_env_iter_init(&a, &f);
        tr__wire_env_iter_init(&z, &g);
        while (tr__wire_env_next(&a, &ea, NULL) == TR_OK) {
            CHECK_OK(tr__wire_env_next(&z, &ez, NULL));
            CHECK(env_eq(&ea, &ez));
        }
        CHECK_ERR(tr__wire_env_next(&z, &ez, NULL), TR_ENOTFOUND);
    }
    CHECK_OK(reencode(&b2, &g, l1));
    p2 = tr__wire_buf_frame(&b2, &l2);
    CHECK(bytes_eq(c1, l1, p2, l2));
    free(c1);
    tr__wire_buf_fini(&b1);
    tr__wire_buf_fini(&b2);
}

/* Random bytes, and valid frames with random bytes changed, cut or added:
 * each decodes or is refused with a decoding error, never anything else. */
static void test_random(uint64_t seed)
{
    const uint32_t rounds = test_scale(200000);
    test_rng rng;
    uint8_t buf[512];
    uint32_t accepted = 0;

    test_rng_init(&rng, seed);
    for (uint32_t r = 0; r < rounds; r++) {
        size_t len;
        tr_err err;

        if (r % 2 == 0) {
            len = test_rng_below(&rng, 64);
            for (size_t i = 0; i < len; i++) {
                uint8_t x = (uint8_t)test_rng_next(&rng);
                /* Lean towards bytes the grammar uses: small integers and
                 * short arrays, so some garbage gets past the header. */
                buf[i] = test_rng_below(&rng, 2) ? x : (uint8_t)(x % 8 | (x & 8 ? 0x90 : 0));
            }
            if (len >= 2 && test_rng_below(&rng, 2)) {
                buf[0] = (uint8_t)(0x92 + test_rng_below(&rng, 7));
                buf[1] = 0x01;
            }
        } else {
            const test_vector *v = &vectors[test_rng_below(&rng, TEST_VALID_VECTORS)];
            uint8_t *valid = from_hex(v->hex, &len);
            uint32_t changes = 1 + test_rng_below(&rng, 3);
            memcpy(buf, valid, len);
            free(valid);
            while (changes-- > 0) {
                switch (test_rng_below(&rng, 4)) {
                case 0:
                case 1:
                    buf[test_rng_below(&rng, (uint32_t)len)] = (uint8_t)test_rng_next(&rng);
                    break;
                case 2:
                    len = test_rng_below(&rng, (uint32_t)len) + 1;
                    break;
                default:
                    if (len < sizeof buf)
                        buf[len++] = (uint8_t)test_rng_next(&rng);
                    break;
                }
            }
        }
        err = decode_copy(buf, len, TEST_MAX_FRAME, NULL);
        if (err != TR_OK && err != TR_EBADMSG && err != TR_ENOTSUP)
            TEST_FAIL("round %" PRIu32 ": decode returned %s", r, tr_err_name(err));
        if (err == TR_OK) {
            accepted++;
            uint8_t *copy = dup_exact(buf, len);
            check_reencode(copy, len);
            free(copy);
        }
    }
    printf("random: %" PRIu32 " inputs, %" PRIu32 " decoded\n", rounds, accepted);
}

int main(int argc, char **argv)
{
    uint64_t seed = test_seed(argc, argv);

    test_vectors();
    test_framing();
    test_proofs();
    test_roundtrip_control();
    test_roundtrip_data();
    test_builder_limits();
    test_truncation();
    test_huge_count();
    test_too_big();
    test_encode_ranges();
    test_random(seed);
    printf("wire: all checks passed\n");
    return 0;
}
