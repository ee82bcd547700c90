/*
 * fuzz_validate.c — libFuzzer target for the payload validator and the
 * readers behind it (runtime/reader.c).
 *
 * Every input runs through tr_validate, a cursor skip, a cursor walk with
 * the typed getters, and the reader. Besides any crash or sanitizer report,
 * the target aborts when the paths disagree: the validator and the getter
 * walk are independent decoders of the same grammar, so "valid" must mean
 * "one walk uses every byte", a valid payload must skip in one step and
 * unpack (or be refused as too deep for msgpack-c), and an invalid one must
 * never unpack.
 */
#include "troupe.h"

#include <stdio.h>
#include <stdlib.h>

/* The reader's documented nesting limit (troupe.h: "at most 64 deep"). */
#define FUZZ_DEPTH_MAX 64

/* Reports a disagreement and stops, so libFuzzer saves the input. */
#define FUZZ_ASSERT(cond)                                                             \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz_validate: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/*
 * Reads one value with the cursor's typed getters, descending into
 * containers at most FUZZ_DEPTH_MAX deep, and returns the first error.
 * A getter that fails must leave the cursor where it was.
 */
static tr_err fuzz_walk(tr_cursor *c, unsigned depth)
{
    const uint8_t *const before = c->pos;
    const char *s;
    const uint8_t *p;
    size_t len;
    int64_t i;
    uint64_t u;
    double d;
    bool b;
    uint32_t n;
    tr_ref ref;
    tr_err err;

    /* A reference is an array too: try it first, and fall back. */
    err = tr_cursor_ref(c, &ref);
    if (err == TR_OK)
        return depth < FUZZ_DEPTH_MAX ? TR_OK : TR_EBADMSG;
    FUZZ_ASSERT(c->pos == before);

    err = tr_cursor_array(c, &n);
    if (err == TR_OK) {
        if (depth == FUZZ_DEPTH_MAX)
            return TR_EBADMSG;
        while (n-- > 0)
            if ((err = fuzz_walk(c, depth + 1)) != TR_OK)
                return err;
        return TR_OK;
    }
    FUZZ_ASSERT(c->pos == before);
    if (err != TR_ETYPE)
        return err;

    err = tr_cursor_map(c, &n);
    if (err == TR_OK) {
        if (depth == FUZZ_DEPTH_MAX)
            return TR_EBADMSG;
        while (n-- > 0)
            if ((err = fuzz_walk(c, depth + 1)) != TR_OK ||
                (err = fuzz_walk(c, depth + 1)) != TR_OK)
                return err;
        return TR_OK;
    }
    FUZZ_ASSERT(c->pos == before);
    if (err != TR_ETYPE)
        return err;

    err = tr_cursor_int(c, &i);
    if (err == TR_ERANGE)
        err = tr_cursor_uint(c, &u);
    if (err != TR_ETYPE)
        return err;
    FUZZ_ASSERT(c->pos == before);
    if ((err = tr_cursor_double(c, &d)) != TR_ETYPE)
        return err;
    if ((err = tr_cursor_bool(c, &b)) != TR_ETYPE)
        return err;
    if ((err = tr_cursor_nil(c)) != TR_ETYPE)
        return err;
    if ((err = tr_cursor_str(c, &s, &len)) != TR_ETYPE) {
        FUZZ_ASSERT(err != TR_OK || (const uint8_t *)s + len <= c->end);
        return err;
    }
    if ((err = tr_cursor_bin(c, &p, &len)) != TR_ETYPE) {
        FUZZ_ASSERT(err != TR_OK || p + len <= c->end);
        return err;
    }
    FUZZ_ASSERT(c->pos == before);
    /* Only ext types are left. */
    return tr_cursor_skip(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const tr_err verdict = tr_validate(data, size);
    tr_cursor c;
    tr_reader r;
    tr_err err;

    FUZZ_ASSERT(verdict == TR_OK || verdict == TR_EBADMSG);

    /* A skip reads one value: on a valid payload, all of it. */
    tr_cursor_init_bytes(&c, data, size);
    err = tr_cursor_skip(&c);
    if (size == 0)
        FUZZ_ASSERT(err == TR_EBADMSG);
    else if (verdict == TR_OK)
        FUZZ_ASSERT(err == TR_OK && tr_cursor_done(&c));
    else
        FUZZ_ASSERT(err == TR_EBADMSG || (err == TR_OK && !tr_cursor_done(&c)));

    /* Then skip value after value until the bytes end or one is bad. */
    while (err == TR_OK && !tr_cursor_done(&c))
        err = tr_cursor_skip(&c);

    if (size != 0) {
        tr_cursor_init_bytes(&c, data, size);
        err = fuzz_walk(&c, 0);
        FUZZ_ASSERT((err == TR_OK && tr_cursor_done(&c)) == (verdict == TR_OK));
    }

    err = tr_reader_init_bytes(&r, data, size);
    if (verdict == TR_OK)
        FUZZ_ASSERT(err == TR_OK || err == TR_ENOTSUP);
    else
        FUZZ_ASSERT(err == TR_EBADMSG);
    tr_reader_fini(&r);
    return 0;
}
