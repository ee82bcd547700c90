/*
 * fuzz_wire.c — libFuzzer target for the node-to-node frame decoder
 * (runtime/wire.c).
 *
 * Every input is decoded as one frame and, when it decodes, all of its
 * envelopes are walked. Besides any crash or sanitizer report, the target
 * aborts when a promise of wire.h breaks: only the documented errors come
 * back, a refused frame leaves nothing decoded, a DATA frame yields exactly
 * its count of envelopes with consecutive sequence numbers, and a decoded
 * frame re-encodes (never longer, since the encoder writes shortest forms)
 * to bytes that decode to the same fields and re-encode to themselves. (The
 * re-encoding may differ from an input of the same length: msgpack has
 * equally long forms of one integer, such as int64 and uint64.) The input
 * is also read as a stream of length-prefixed frames (tr__wire_split).
 */
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reports a broken promise and stops, so libFuzzer saves the input. */
#define FUZZ_ASSERT(cond)                                                         \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "fuzz_wire: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                              \
        }                                                                         \
    } while (0)

static bool fuzz_bytes_eq(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool fuzz_hello_eq(const wire_hello *a, const wire_hello *b)
{
    return a->node_id == b->node_id && fuzz_bytes_eq(a->name, a->name_len, b->name, b->name_len) &&
           a->features == b->features &&
           fuzz_bytes_eq(a->auth, a->auth_len, b->auth, b->auth_len) && a->session == b->session &&
           fuzz_bytes_eq(a->url, a->url_len, b->url, b->url_len);
}

static bool fuzz_env_eq(const wire_env *a, const wire_env *b)
{
    return a->kind == b->kind && a->flags == b->flags && tr_ref_eq(a->to, b->to) &&
           tr_ref_eq(a->from, b->from) && a->corr == b->corr && a->deadline_ms == b->deadline_ms &&
           a->status == b->status && fuzz_bytes_eq(a->tag, a->tag_len, b->tag, b->tag_len) &&
           fuzz_bytes_eq(a->payload, a->payload_len, b->payload, b->payload_len);
}

/* Walks f's envelopes into envs (room for f->count), checking the count
 * and the sequence numbers. */
static void fuzz_walk(const wire_frame *f, wire_env *envs)
{
    wire_env_iter it;
    wire_env e;
    uint64_t seq;
    uint32_t n = 0;
    tr_err err;

    tr__wire_env_iter_init(&it, f);
    while ((err = tr__wire_env_next(&it, &e, &seq)) == TR_OK) {
        FUZZ_ASSERT(n < f->count);
        FUZZ_ASSERT(seq == f->seq + n);
        FUZZ_ASSERT(e.tag_len >= 1 && e.tag_len <= TR_TAG_MAX);
        FUZZ_ASSERT(tr_validate(e.payload, e.payload_len) == TR_OK);
        envs[n++] = e;
    }
    FUZZ_ASSERT(err == TR_ENOTFOUND);
    FUZZ_ASSERT(n == (f->kind == WIRE_DATA ? f->count : 0));
}

/* Encodes f into b with max_frame as the limit. */
static tr_err fuzz_encode(wire_buf *b, const wire_frame *f, const wire_env *envs, size_t max_frame)
{
    switch (f->kind) {
    case WIRE_HELLO:
    case WIRE_WELCOME:
        return tr__wire_encode_hello(b, f->kind, &f->hello, max_frame);
    case WIRE_DATA:
        return tr__wire_encode_data(b, f->seq, f->ack, envs, f->count, max_frame);
    case WIRE_ACK:
        return tr__wire_encode_ack(b, f->ack, max_frame);
    case WIRE_HEARTBEAT:
        return tr__wire_encode_heartbeat(b, f->nonce, f->echo, max_frame);
    case WIRE_BYE:
        return tr__wire_encode_bye(b, f->reason, max_frame);
    case WIRE_AUTH:
        return tr__wire_encode_auth(b, &f->auth, max_frame);
    }
    FUZZ_ASSERT(!"decoded a frame of an unknown kind");
    return TR_EINVAL;
}

static void fuzz_same(const wire_frame *f, const wire_env *fe, const wire_frame *g,
                      const wire_env *ge)
{
    FUZZ_ASSERT(g->kind == f->kind && g->seq == f->seq && g->ack == f->ack &&
                g->count == f->count && g->nonce == f->nonce && g->echo == f->echo &&
                g->reason == f->reason && fuzz_hello_eq(&f->hello, &g->hello) &&
                g->auth.session == f->auth.session &&
                fuzz_bytes_eq(g->auth.proof, g->auth.proof_len, f->auth.proof, f->auth.proof_len));
    for (uint32_t i = 0; f->kind == WIRE_DATA && i < f->count; i++)
        FUZZ_ASSERT(fuzz_env_eq(&fe[i], &ge[i]));
}

/*
 * The input as a byte stream, the way a node reads a connection: cut into
 * length-prefixed frames with tr__wire_split, each decoded. The splitter
 * must report only what it promises: a whole frame within the bytes, more
 * to wait for, or a refused prefix that ends the stream.
 */
static void fuzz_stream(const uint8_t *data, size_t size)
{
    const size_t max_frame = 4096;
    size_t pos = 0;
    for (;;) {
        size_t flen = 0;
        tr_err err = tr__wire_split(data + pos, size - pos, max_frame, &flen);
        if (err == TR_ENOTFOUND) {
            FUZZ_ASSERT(flen == 0 ? size - pos < WIRE_PREFIX_LEN
                                  : flen <= max_frame && size - pos - WIRE_PREFIX_LEN < flen);
            return;
        }
        FUZZ_ASSERT(err == TR_OK || err == TR_EBADMSG || err == TR_ETOOBIG);
        if (err != TR_OK)
            return;
        FUZZ_ASSERT(flen >= 1 && flen <= max_frame && WIRE_PREFIX_LEN + flen <= size - pos);
        wire_frame f;
        err = tr__wire_decode(&f, data + pos + WIRE_PREFIX_LEN, flen, max_frame);
        FUZZ_ASSERT(err == TR_OK || err == TR_EBADMSG || err == TR_ENOTSUP);
        pos += WIRE_PREFIX_LEN + flen;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static wire_env envs1[WIRE_ENVELOPES_MAX], envs2[WIRE_ENVELOPES_MAX];
    wire_frame f, g;
    wire_buf b1, b2;
    const uint8_t *p1, *p2;
    uint8_t *copy;
    size_t l1, l2;
    tr_err err;

    fuzz_stream(data, size);

    /* A limit below the input's size is refused before anything is read. */
    if (size > 0)
        FUZZ_ASSERT(tr__wire_decode(&f, data, size, size - 1) == TR_ETOOBIG);

    err = tr__wire_decode(&f, data, size, size);
    FUZZ_ASSERT(err == TR_OK || err == TR_EBADMSG || err == TR_ENOTSUP);
    if (err != TR_OK) {
        FUZZ_ASSERT(f.kind == 0 && f.count == 0);
        return 0;
    }
    fuzz_walk(&f, envs1);
    if (f.kind == WIRE_HELLO || f.kind == WIRE_WELCOME)
        FUZZ_ASSERT(f.hello.url_len >= 1 && f.hello.url_len <= WIRE_URL_MAX &&
                    memchr(f.hello.url, '\0', f.hello.url_len) == NULL);

    /* Round trip: encode what was decoded, decode that, compare. */
    tr__wire_buf_init(&b1);
    tr__wire_buf_init(&b2);
    err = fuzz_encode(&b1, &f, envs1, size);
    FUZZ_ASSERT(err == TR_OK);
    p1 = tr__wire_buf_frame(&b1, &l1);
    FUZZ_ASSERT(p1 != NULL && l1 <= size);
    /* An exact-size copy, so a read past its end is caught. */
    copy = malloc(l1);
    FUZZ_ASSERT(copy != NULL);
    memcpy(copy, p1, l1);
    FUZZ_ASSERT(tr__wire_decode(&g, copy, l1, l1) == TR_OK);
    fuzz_walk(&g, envs2);
    fuzz_same(&f, envs1, &g, envs2);

    /* The shortest encoding is a fixed point. */
    FUZZ_ASSERT(fuzz_encode(&b2, &g, envs2, l1) == TR_OK);
    p2 = tr__wire_buf_frame(&b2, &l2);
    FUZZ_ASSERT(fuzz_bytes_eq(copy, l1, p2, l2));

    free(copy);
    tr__wire_buf_fini(&b1);
    tr__wire_buf_fini(&b2);
    return 0;
}
