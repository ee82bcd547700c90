/*
 * wire.h — the node-to-node frame codec: encoding and decoding the frames
 * two linked runtimes exchange (HELLO, WELCOME, DATA, ACK, HEARTBEAT, BYE,
 * AUTH), and the length prefix that carries them over a byte stream.
 *
 * The format, its versioning rules, its limits and its test vectors are in
 * runtime/WIRE.md; this header is the C view of it. The codec is pure: it
 * does no I/O, keeps no state between calls and knows nothing of actors,
 * mailboxes or nng. The link layer (sequence numbers, acknowledgements,
 * resending) is built on top of it.
 *
 * Decoding assumes a hostile peer. A frame is refused when it is longer
 * than the caller's limit, is not exactly one well-formed msgpack object,
 * or has any field of the wrong type or out of range; no count in a frame
 * is trusted, and decoding never allocates. Decoded strings and binaries
 * point into the frame bytes: the caller keeps those alive while it uses
 * them.
 */
#ifndef TROUPE_WIRE_H
#define TROUPE_WIRE_H

#include "troupe.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The protocol version this codec writes and the only one it reads. */
#define WIRE_VERSION 1
/* Longest node name in HELLO/WELCOME, in bytes (at least 1). */
#define WIRE_NAME_MAX 63
/* Longest auth field in HELLO/WELCOME, in bytes (may be 0). */
#define WIRE_AUTH_MAX 64
/* Bytes of a handshake nonce, and of an HMAC-SHA256 proof. */
#define WIRE_NONCE_LEN 32
#define WIRE_PROOF_LEN 32
/* Longest listen URL in HELLO/WELCOME, in bytes (at least 1). */
#define WIRE_URL_MAX 255
/* Most envelopes one DATA frame may carry (at least 1). */
#define WIRE_ENVELOPES_MAX 4096
/* Bytes of the length prefix in front of every frame on a stream. */
#define WIRE_PREFIX_LEN 4
/* Largest frame accepted before a connection's handshake is complete: an
 * unauthenticated peer cannot make a node buffer more. */
#define WIRE_HANDSHAKE_FRAME_MAX 1024

/* Frame kinds: the second element of every frame. 0 is never used. */
enum wire_kind {
    WIRE_HELLO = 1,     /* the dialler introduces itself */
    WIRE_WELCOME = 2,   /* the listener's answer to HELLO */
    WIRE_DATA = 3,      /* numbered envelopes */
    WIRE_ACK = 4,       /* a cumulative acknowledgement alone */
    WIRE_HEARTBEAT = 5, /* liveness probe or its echo */
    WIRE_BYE = 6,       /* orderly close */
    WIRE_AUTH = 7,      /* the dialler's proof and session, completing the handshake */
};

/* Envelope kinds. The numbers are the wire's, independent of the runtime's
 * own message kinds, and never change meaning. */
enum wire_env_kind {
    WIRE_ENV_USER = 0,      /* a user message; a request when WIRE_EF_REQUEST is set */
    WIRE_ENV_LINK = 1,      /* from asks to be linked to `to` */
    WIRE_ENV_UNLINK = 2,    /* from removes its link */
    WIRE_ENV_EXIT = 3,      /* exit signal from `from`; payload is an encoded reason */
    WIRE_ENV_MONITOR = 4,   /* from monitors `to` with id corr */
    WIRE_ENV_DEMONITOR = 5, /* from drops monitor corr */
    WIRE_ENV_DOWN = 6,      /* monitor corr fired; payload is an encoded reason */
    WIRE_ENV_STOP = 7,      /* stop request (reason shutdown) */
    WIRE_ENV_REPLY = 8,     /* reply to request corr; status holds an error, if any */
};
#define WIRE_ENV_KIND_MAX WIRE_ENV_REPLY

/* Envelope flag bits. A bit not listed here makes the envelope invalid. */
enum wire_env_flags {
    WIRE_EF_REQUEST = 1,  /* USER only: expects a REPLY with the same corr */
    WIRE_EF_LINKEXIT = 2, /* EXIT only: caused by a linked actor's exit */
    WIRE_EF_CONTROL = 4,  /* deliver in the control lane (bounded mailboxes never drop it) */
};
#define WIRE_EF_ALL (WIRE_EF_REQUEST | WIRE_EF_LINKEXIT | WIRE_EF_CONTROL)

/* HELLO and WELCOME. When decoded, name, auth and url point into the frame. */
typedef struct wire_hello {
    uint64_t node_id;    /* the sender's node id; never 0 */
    const char *name;    /* node name, name_len bytes, not NUL-terminated, no NUL inside */
    size_t name_len;     /* 1..WIRE_NAME_MAX */
    uint64_t features;   /* protocol feature bits the sender supports */
    const uint8_t *auth; /* HELLO: the dialler's nonce; WELCOME: nonce then proof (WIRE.md);
                            may be NULL when auth_len is 0 */
    size_t auth_len;     /* 0..WIRE_AUTH_MAX */
    /* WELCOME: the listener's session toward the dialler (never 0 once a
     * node sends it); HELLO: 0, the dialler names its session in AUTH. */
    uint64_t session;
    /* The sender's first listen URL ("tcp://127.0.0.1:5555", "inproc://a"),
     * or "-" for a node that listens nowhere; informational. url_len bytes,
     * not NUL-terminated, no NUL inside. */
    const char *url;
    size_t url_len; /* 1..WIRE_URL_MAX */
} wire_hello;

/* AUTH. When decoded, proof points into the frame. */
typedef struct wire_auth {
    uint64_t session;     /* the dialler's session toward the listener; never 0 */
    const uint8_t *proof; /* HMAC (WIRE.md); may be NULL when proof_len is 0 */
    size_t proof_len;     /* 0 (no shared secret) or WIRE_PROOF_LEN */
} wire_auth;

/* One envelope of a DATA frame. When decoded, tag and payload point into
 * the frame. */
typedef struct wire_env {
    uint32_t kind;          /* enum wire_env_kind */
    uint32_t flags;         /* enum wire_env_flags */
    tr_ref to;              /* the receiver; never nil */
    tr_ref from;            /* the sender; nil for the runtime itself and timers */
    uint64_t corr;          /* request/reply correlation or monitor id; 0 = none */
    uint32_t deadline_ms;   /* requests only: ms left until the deadline; 0 = none */
    int32_t status;         /* REPLY: a tr_err of an error reply; else 0 by convention */
    const char *tag;        /* tag_len bytes, not NUL-terminated, no NUL inside */
    size_t tag_len;         /* 1..TR_TAG_MAX */
    const uint8_t *payload; /* one msgpack object, or none; may be NULL when payload_len is 0 */
    size_t payload_len;     /* 0..TR_PAYLOAD_MAX */
} wire_env;

/*
 * A decoded frame. kind says which fields hold data; the others are zero.
 * DATA's envelopes are not copied out: read them with a wire_env_iter.
 */
typedef struct wire_frame {
    uint32_t kind;    /* enum wire_kind */
    wire_hello hello; /* HELLO, WELCOME */
    uint64_t seq;     /* DATA: link sequence number of the first envelope (>= 1) */
    uint64_t ack;     /* DATA, ACK: highest sequence number received in order (0 = none) */
    uint32_t count;   /* DATA: number of envelopes, 1..WIRE_ENVELOPES_MAX */
    uint64_t nonce;   /* HEARTBEAT */
    bool echo;        /* HEARTBEAT: true when answering a probe with its nonce */
    int32_t reason;   /* BYE: 0 for a plain close, else a tr_err saying why */
    wire_auth auth;   /* AUTH */
    /* DATA: the envelopes' bytes within the frame; for wire_env_iter only. */
    const uint8_t *env_pos;
    const uint8_t *env_end;
} wire_frame;

/*
 * Decodes one frame of len bytes into *out. Refuses, before looking at
 * anything else, a frame longer than max_frame (TR_ETOOBIG). Then:
 * TR_EBADMSG for anything malformed (not one msgpack object, a field of
 * the wrong type or out of range, a wrong element count, a bad envelope),
 * TR_ENOTSUP for a well-formed frame of another version or an unknown
 * kind (the caller counts it and drops it), TR_EINVAL for NULL arguments.
 * A DATA frame is checked whole, every envelope included, so a frame is
 * either accepted entirely or not at all. Does not allocate. On success
 * *out points into bytes, which the caller keeps alive and unchanged while
 * it uses *out; on failure *out is zeroed.
 */
tr_err tr__wire_decode(wire_frame *out, const void *bytes, size_t len, size_t max_frame);

/* Walks the envelopes of a decoded DATA frame, one at a time. */
typedef struct wire_env_iter {
    tr_cursor cur;
    uint32_t left; /* envelopes not yet returned */
    uint64_t seq;  /* sequence number of the next envelope */
} wire_env_iter;

/* Starts a walk over f's envelopes (none unless f is a decoded DATA frame). */
void tr__wire_env_iter_init(wire_env_iter *it, const wire_frame *f);

/* Stores the next envelope in *out and, when seq is not NULL, its link
 * sequence number in *seq. Returns TR_ENOTFOUND after the last one.
 * TR_EBADMSG only if the frame bytes changed since they were decoded. */
tr_err tr__wire_env_next(wire_env_iter *it, wire_env *out, uint64_t *seq);

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * A growable byte buffer holding one encoded frame. It owns its storage
 * (malloc'd); every encode call replaces what it held. The frame is at
 * tr__wire_buf_frame(); it need not start at the storage's first byte.
 */
typedef struct wire_buf {
    uint8_t *data;    /* storage, owned; NULL until the first encode */
    size_t len;       /* bytes used, frame included */
    size_t cap;       /* bytes allocated */
    size_t start;     /* where the frame starts within data */
    size_t frame_len; /* the frame's length; 0 = no frame */
    bool nomem;       /* a write failed for lack of memory */
} wire_buf;

/* Makes b empty; it owns nothing yet. */
void tr__wire_buf_init(wire_buf *b);
/* Frees b's storage; b may be reused after tr__wire_buf_init. */
void tr__wire_buf_fini(wire_buf *b);
/* The last frame encoded into b and its length; owned by b, valid until the
 * next encode or fini. NULL with *len = 0 when there is none. */
const uint8_t *tr__wire_buf_frame(const wire_buf *b, size_t *len);

/* Encodes a HELLO or WELCOME (kind) frame. TR_EINVAL for another kind or a
 * field out of range, TR_ETOOBIG if the frame would exceed max_frame,
 * TR_ENOMEM. On any error b holds no frame. */
tr_err tr__wire_encode_hello(wire_buf *b, uint32_t kind, const wire_hello *h, size_t max_frame);
/* Encodes an ACK frame. Errors as above. */
tr_err tr__wire_encode_ack(wire_buf *b, uint64_t ack, size_t max_frame);
/* Encodes a HEARTBEAT frame. Errors as above. */
tr_err tr__wire_encode_heartbeat(wire_buf *b, uint64_t nonce, bool echo, size_t max_frame);
/* Encodes a BYE frame. Errors as above. */
tr_err tr__wire_encode_bye(wire_buf *b, int32_t reason, size_t max_frame);
/* Encodes an AUTH frame (session != 0, proof_len 0 or WIRE_PROOF_LEN).
 * Errors as above. */
tr_err tr__wire_encode_auth(wire_buf *b, const wire_auth *a, size_t max_frame);

/* ------------------------------------------------------------------------ */
/* Framing on a byte stream                                                  */
/* ------------------------------------------------------------------------ */

/* Writes the length prefix of a frame of len bytes (big-endian uint32). */
static inline void tr__wire_prefix_put(uint8_t out[WIRE_PREFIX_LEN], uint32_t len)
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
}

/*
 * Finds the first frame in the len bytes at bytes, which are what a stream
 * delivered so far. TR_OK: a whole frame is there, *frame_len bytes after
 * the prefix (the next one starts WIRE_PREFIX_LEN + *frame_len bytes in).
 * TR_ENOTFOUND: not yet; *frame_len is the length once the prefix is
 * complete, else 0. Refused before any frame byte is awaited: a prefix of 0
 * (TR_EBADMSG) or over max_frame (TR_ETOOBIG); the stream cannot be read
 * any further. Does not look at the frame's contents.
 */
tr_err tr__wire_split(const uint8_t *bytes, size_t len, size_t max_frame, size_t *frame_len);

/*
 * Builds a DATA frame envelope by envelope, so a sender can fill a frame up
 * to its limit: begin, add until add says TR_ETOOBIG (that envelope did not
 * fit; it goes first into the next frame), then finish. An envelope that
 * does not fit into an empty frame never will. The builder writes into b;
 * b must not be used otherwise until finish or abandonment.
 */
typedef struct wire_data {
    wire_buf *buf;
    size_t max_frame;
    uint64_t seq;
    uint64_t ack;
    uint32_t count; /* envelopes added */
} wire_data;

/* Starts a DATA frame whose first envelope has link sequence number seq
 * (>= 1) and that acknowledges ack. TR_EINVAL, TR_ENOMEM. */
tr_err tr__wire_data_begin(wire_data *d, wire_buf *b, uint64_t seq, uint64_t ack, size_t max_frame);
/* Appends a copy of *e. TR_EINVAL when a field is out of range (the
 * payload must pass tr_validate), TR_ETOOBIG when the frame would exceed its
 * max_frame or WIRE_ENVELOPES_MAX envelopes, TR_ENOMEM. On error the frame
 * is as it was before the call. */
tr_err tr__wire_data_add(wire_data *d, const wire_env *e);
/* Completes the frame; it is then at tr__wire_buf_frame(b), with at least
 * WIRE_PREFIX_LEN bytes of b's storage in front of it, so a caller can write
 * the stream's length prefix in place. TR_EINVAL when no envelope was
 * added. */
tr_err tr__wire_data_finish(wire_data *d);

/* Encodes a DATA frame of the n envelopes at envs in one call. Errors as
 * tr__wire_data_add, and TR_EINVAL for n == 0; on error b holds no frame. */
tr_err tr__wire_encode_data(wire_buf *b, uint64_t seq, uint64_t ack, const wire_env *envs,
                            uint32_t n, size_t max_frame);

#endif /* TROUPE_WIRE_H */
