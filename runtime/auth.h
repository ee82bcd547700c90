/*
 * auth.h — the proof of a shared secret in the node-link handshake
 * (WIRE.md, "Handshake"), and the random numbers it and sessions need.
 *
 * Each side proves it knows the secret with an HMAC-SHA256 over both
 * sides' fresh nonces, both node ids and the prover's session, under a
 * label naming its role, so a proof can neither be replayed on another
 * connection nor reflected back. The secret itself never leaves the node.
 */
#ifndef TROUPE_AUTH_H
#define TROUPE_AUTH_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which side a proof speaks for (part of what is signed). */
enum auth_role {
    AUTH_LISTENER = 0, /* sent in WELCOME */
    AUTH_DIALLER = 1,  /* sent in AUTH */
};

/* Fills out with n unpredictable bytes (getrandom). */
void tr__auth_random(void *out, size_t n);

/* A random uint64 that is never 0 (sessions). */
uint64_t tr__auth_random64(void);

/*
 * Computes the proof of role into out: HMAC-SHA256 keyed with the secret
 * (secret_len bytes) over the label, the dialler's and the listener's
 * nonces, the dialler's and the listener's node ids and the prover's
 * session (WIRE.md gives the exact bytes). TR_ENOTSUP if the crypto
 * library lacks SHA-256, TR_ENOMEM.
 */
tr_err tr__auth_proof(uint8_t out[WIRE_PROOF_LEN], const void *secret, size_t secret_len,
                      enum auth_role role, const uint8_t nonce_dialler[WIRE_NONCE_LEN],
                      const uint8_t nonce_listener[WIRE_NONCE_LEN], uint64_t dialler,
                      uint64_t listener, uint64_t session);

/* Compares n bytes in time that does not depend on where they differ. */
bool tr__auth_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif /* TROUPE_AUTH_H */
