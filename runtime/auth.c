/*
 * auth.c — handshake proofs and random numbers (see auth.h). Pure apart
 * from reading the system's random source; uses mbed TLS's crypto library
 * (which nng's TLS already pulls in) for HMAC-SHA256. Depends on nothing
 * else of the runtime, so tests can compile it in.
 */
#include "auth.h"

#include <mbedtls/md.h>

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* The labels, fixed by WIRE.md. */
static const char *const auth_labels[] = {"troupe-v1 listener", "troupe-v1 dialler"};

void tr__auth_random(void *out, size_t n)
{
    uint8_t *p = out;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got > 0) {
            p += got;
            n -= (size_t)got;
            continue;
        }
        /* No random source (a very old kernel): a clock-seeded mix is all
         * that is left; sessions stay distinct, nonces become guessable. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t x = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
                     ((uint64_t)getpid() << 32) ^ (uintptr_t)p;
        for (; n > 0; n--, p++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *p = (uint8_t)x;
        }
    }
}

uint64_t tr__auth_random64(void)
{
    uint64_t v = 0;
    while (v == 0)
        tr__auth_random(&v, sizeof v);
    return v;
}

static void put_u64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

tr_err tr__auth_proof(uint8_t out[WIRE_PROOF_LEN], const void *secret, size_t secret_len,
                      enum auth_role role, const uint8_t nonce_dialler[WIRE_NONCE_LEN],
                      const uint8_t nonce_listener[WIRE_NONCE_LEN], uint64_t dialler,
                      uint64_t listener, uint64_t session)
{
    const mbedtls_md_info_t *sha256 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (sha256 == NULL)
        return TR_ENOTSUP;
    const char *label = auth_labels[role == AUTH_DIALLER];
    size_t label_len = strlen(label) + 1; /* the NUL ends the label */
    uint8_t ids[24];
    put_u64(ids, dialler);
    put_u64(ids + 8, listener);
    put_u64(ids + 16, session);

    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    int rv = mbedtls_md_setup(&md, sha256, 1);
    if (rv == 0)
        rv = mbedtls_md_hmac_starts(&md, secret, secret_len);
    if (rv == 0)
        rv = mbedtls_md_hmac_update(&md, (const unsigned char *)label, label_len);
    if (rv == 0)
        rv = mbedtls_md_hmac_update(&md, nonce_dialler, WIRE_NONCE_LEN);
    if (rv == 0)
        rv = mbedtls_md_hmac_update(&md, nonce_listener, WIRE_NONCE_LEN);
    if (rv == 0)
        rv = mbedtls_md_hmac_update(&md, ids, sizeof ids);
    if (rv == 0)
        rv = mbedtls_md_hmac_finish(&md, out);
    mbedtls_md_free(&md);
    return rv == 0 ? TR_OK : TR_ENOMEM;
}

bool tr__auth_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}
