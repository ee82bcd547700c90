/*
 * troupe.h — the one public header of troupe, an actor runtime for C.
 *
 * A user writes an actor as a behaviour (a few callbacks and a state block),
 * spawns it on a runtime as a pooled actor (run by the worker pool, one
 * message at a time) or as a thread actor (its own OS thread, may block),
 * and talks to it only by sending messages: a short tag plus a msgpack
 * payload. Actors are addressed by references, which are plain values.
 *
 * Conventions used by every declaration below:
 *  - Functions that can fail return tr_err (TR_OK == 0); results come back
 *    through a leading out-parameter. tr_strerror() names every code.
 *  - "Consumes m on TR_OK" means the runtime owns the message once the call
 *    succeeds; on any error the caller still owns it and must free or reuse it.
 *  - Nothing here aborts for a mistake a caller can make: such mistakes
 *    return an error code.
 *  - A tr_ctx is the calling actor's (or attached thread's) context. It is
 *    only valid on the thread that was handed it, for as long as it was
 *    handed: inside a callback for pooled actors, for the whole run of a
 *    thread actor, between tr_attach and tr_detach for a plain thread.
 */
#ifndef TROUPE_H
#define TROUPE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Everything declared here is exported; the library hides the rest. */
#pragma GCC visibility push(default)

#define TR_VERSION_MAJOR 0
#define TR_VERSION_MINOR 1

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* The one error enum. Values are stable: they travel in reply frames. */
typedef enum tr_err {
    TR_OK = 0,
    TR_EINVAL = 1,      /* an argument is invalid (NULL, out of range, ...) */
    TR_ENOMEM = 2,      /* out of memory */
    TR_ESTOPPED = 3,    /* the runtime is stopping or stopped */
    TR_ENOACTOR = 4,    /* no such actor: it exited or never existed */
    TR_EFULL = 5,       /* the receiver's bounded mailbox is full */
    TR_ETIMEDOUT = 6,   /* a deadline passed */
    TR_EWOULDBLOCK = 7, /* a blocking call was made where blocking is not allowed */
    TR_EWRONGKIND = 8,  /* the operation does not apply to this kind of actor */
    TR_EBADMSG = 9,     /* a payload is not one well-formed msgpack object */
    TR_ETYPE = 10,      /* a payload value has another type than asked for */
    TR_ENOTFOUND = 11,  /* a field, name, timer or monitor does not exist */
    TR_EEXIST = 12,     /* the name is already registered */
    TR_ERANGE = 13,     /* a value does not fit the requested C type */
    TR_ENOROUTE = 14,   /* the reference names a node this runtime has no link to */
    TR_ETOOBIG = 15,    /* a message or tag is larger than allowed */
    TR_ESYS = 16,       /* the operating system refused (threads, memory maps) */
    TR_EBUSY = 17,      /* the object is still in use */
    TR_ECANCELED = 18,  /* the operation was cancelled (e.g. by shutdown) */
    TR_EEXITED = 19,    /* the callee exited before it replied */
    TR_ENOTSUP = 20,    /* not supported by this build or this peer */
    TR_EAUTH = 21,      /* a peer's credentials (shared secret, certificate) were refused */
    TR_ERR_COUNT_ = 22
} tr_err;

/* Returns a short, static English description of err; never NULL. */
const char *tr_strerror(tr_err err);
/* Returns the enum name of err ("TR_EFULL"); never NULL. */
const char *tr_err_name(tr_err err);

/* ------------------------------------------------------------------------ */
/* References                                                                */
/* ------------------------------------------------------------------------ */

/*
 * An actor reference: a value naming one incarnation of one actor on one
 * node. Copy it freely, store it, send it. Using a reference whose actor
 * has exited is always safe: a send becomes a counted dead letter.
 * node == 0 means "no actor" (TR_REF_NIL).
 */
typedef struct tr_ref {
    uint64_t node;        /* id of the runtime (node) the actor lives on */
    uint32_t id;          /* slot of the actor within its node */
    uint32_t incarnation; /* which life of that slot; changes on every spawn */
} tr_ref;

#define TR_REF_NIL ((tr_ref){0, 0, 0})

/* True when a and b name the same actor incarnation. */
static inline bool tr_ref_eq(tr_ref a, tr_ref b)
{
    return a.node == b.node && a.id == b.id && a.incarnation == b.incarnation;
}
/* True for TR_REF_NIL. */
static inline bool tr_ref_is_nil(tr_ref r) { return r.node == 0; }

/* ------------------------------------------------------------------------ */
/* Opaque handles                                                            */
/* ------------------------------------------------------------------------ */

typedef struct tr_runtime tr_runtime; /* one node: scheduler, actors, names, timers */
typedef struct tr_ctx tr_ctx;         /* the calling actor's or attached thread's context */
typedef struct tr_msg tr_msg;         /* one message: tag + msgpack payload + envelope */

/* ------------------------------------------------------------------------ */
/* Runtime                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct tr_runtime_opts {
    uint32_t workers;        /* worker threads; 0 = number of online cores */
    const char *node_name;   /* copied; NULL = "troupe" */
    uint32_t batch;          /* most messages a pooled actor handles per turn; 0 = 4096. A turn
                                also ends after 1024 sends or ~200 us, whichever is first */
    uint32_t spin_us;        /* how long an idle worker spins before parking; 0 = 50 */
    uint32_t max_frame;      /* largest frame a node link sends or accepts; 0 = 4 MiB */
    uint32_t link_detect_ms; /* silence after which a linked node is declared down; 0 = 2000 */
    uint32_t link_drain_ms;  /* stop waits this long at most for peers to acknowledge what
                                was sent to them; 0 = 1000 */
    const char *secret;      /* shared secret every linked node must prove it knows
                                (copied; NULL = none, and peers must have none either) */
} tr_runtime_opts;

#define TR_RUNTIME_OPTS_INIT         \
    {                                \
        0, NULL, 0, 0, 0, 0, 0, NULL \
    }

/* Starts a runtime: its worker threads and timer thread. opts may be NULL
 * for defaults. The caller owns *out and releases it with tr_runtime_free. */
tr_err tr_runtime_start(tr_runtime **out, const tr_runtime_opts *opts);

typedef enum tr_stop_mode {
    TR_STOP_DRAIN = 0,  /* each actor handles what is already queued, then stops */
    TR_STOP_DISCARD = 1 /* each actor stops at its next message; the rest are dead letters */
} tr_stop_mode;

/*
 * Stops every actor — children before parents (an actor's children are the
 * actors it spawned), so a parent's terminate sees its children gone — joins
 * thread actors and worker threads, and makes later spawns and sends fail
 * with TR_ESTOPPED. A thread actor learns of the stop from tr_receive or
 * tr_call (TR_ESTOPPED) and must then return from run; one blocked
 * elsewhere holds the stop up until it gets there. Blocks until done.
 * Blocking receives and calls on attached threads return TR_ESTOPPED.
 * Counters stay readable. Must not be called from an actor of this runtime
 * (TR_EWOULDBLOCK). Idempotent.
 */
tr_err tr_runtime_stop(tr_runtime *rt, tr_stop_mode mode);

/* Stops the runtime if it is running (draining) and frees everything it
 * owns, including contexts of threads that did not detach. rt is invalid
 * afterwards. Must not be called from one of its actors. NULL is a no-op. */
void tr_runtime_free(tr_runtime *rt);

/* This runtime's node id (the node field of its references). */
uint64_t tr_runtime_node(const tr_runtime *rt);
/* This runtime's node name; owned by the runtime. */
const char *tr_runtime_name(const tr_runtime *rt);
/* Number of worker threads. */
uint32_t tr_runtime_workers(const tr_runtime *rt);

/*
 * Per-runtime counters, summed over all threads at the time of the call.
 * Each thread counts its own work, so a counter may trail by a moment the
 * effect it counts (a timer's message can arrive before timers_fired
 * moves). Attached threads are not actors: they count in neither spawned,
 * exited nor live_actors.
 */
typedef struct tr_counters {
    uint64_t spawned;           /* actors started (all kinds) */
    uint64_t exited;            /* actors whose terminate has run */
    uint64_t sent;              /* messages accepted by send (user and system) */
    uint64_t delivered;         /* messages handed to a live actor */
    uint64_t dead_letters;      /* messages that reached no live actor, incl. drops */
    uint64_t dropped_overflow;  /* dead letters caused by a full mailbox's policy */
    uint64_t rejected_full;     /* sends refused with TR_EFULL */
    uint64_t late_replies;      /* replies that arrived after their deadline or for nobody */
    uint64_t timers_fired;      /* timer messages sent */
    uint64_t max_mailbox_depth; /* highest queue length seen (senders sample it every
                                   eighth message; a thread actor's count includes the
                                   messages its selective receives passed over) */
    uint64_t live_actors;       /* actors currently alive */
    uint64_t link_refused;      /* node-link connections refused, by this node or by the
                                   other: wrong secret or certificate, bad handshake,
                                   handshake timeout, a connection to itself, too many
                                   handshakes at once */
    uint64_t bad_frames;        /* node-link frames refused (malformed, oversize length prefix,
                                   out of place); each closes its connection */
} tr_counters;

/* Fills *out with the runtime's counters. Safe from any thread. */
tr_err tr_runtime_counters(tr_counters *out, tr_runtime *rt);

/* ------------------------------------------------------------------------ */
/* Messages: building                                                        */
/* ------------------------------------------------------------------------ */

/* Longest tag, in bytes, not counting the terminating NUL. */
#define TR_TAG_MAX 23
/* Largest payload a message may carry, in bytes. */
#define TR_PAYLOAD_MAX (64u * 1024u * 1024u)

/*
 * Creates an empty message with the given tag (copied; 1..TR_TAG_MAX bytes).
 * The caller owns *out until a send consumes it; free it with tr_msg_free.
 * Small payloads live inside the message itself; larger ones grow a buffer.
 * ctx may be NULL (then the message is allocated without the context's cache).
 */
tr_err tr_msg_new(tr_msg **out, tr_ctx *ctx, const char *tag);

/* Frees a message the caller owns (built and not sent, or received by a
 * thread actor). NULL is a no-op. */
void tr_msg_free(tr_msg *m);

/*
 * Initialises *pk so that msgpack_pack_* calls append to m's payload.
 * This is the raw msgpack-c builder: anything msgpack-c can pack goes.
 * If memory runs out, the message remembers it and sending it fails with
 * TR_ENOMEM. The payload should be exactly one msgpack object (an array or
 * map when there are several values); tr_msg_validate checks that.
 */
void tr_msg_packer(tr_msg *m, msgpack_packer *pk);

/* Shortcuts that append one value to m's payload. */
tr_err tr_pack_int(tr_msg *m, int64_t v);
tr_err tr_pack_uint(tr_msg *m, uint64_t v);
tr_err tr_pack_double(tr_msg *m, double v);
tr_err tr_pack_bool(tr_msg *m, bool v);
tr_err tr_pack_nil(tr_msg *m);
tr_err tr_pack_str(tr_msg *m, const char *s);              /* NUL-terminated, copied */
tr_err tr_pack_strn(tr_msg *m, const char *s, size_t len); /* copied */
tr_err tr_pack_bin(tr_msg *m, const void *p, size_t len);  /* copied */
tr_err tr_pack_array(tr_msg *m, uint32_t n);               /* n values follow */
tr_err tr_pack_map(tr_msg *m, uint32_t n);                 /* n key/value pairs follow */
tr_err tr_pack_ref(tr_msg *m, tr_ref r);                   /* as [node, id, incarnation] */

/* Replaces m's payload with a copy of bytes, which must be exactly one
 * well-formed msgpack object (else TR_EBADMSG and m is unchanged). */
tr_err tr_msg_set_payload(tr_msg *m, const void *bytes, size_t len);

/* ------------------------------------------------------------------------ */
/* Messages: reading                                                         */
/* ------------------------------------------------------------------------ */

/* The tag; owned by m. */
const char *tr_msg_tag(const tr_msg *m);
/* True when m's tag equals tag. */
bool tr_msg_is(const tr_msg *m, const char *tag);
/* The sender's reference (TR_REF_NIL for timers and the runtime itself). */
tr_ref tr_msg_from(const tr_msg *m);
/* The raw payload bytes, owned by m; *len receives the length (0 = none). */
const uint8_t *tr_msg_payload(const tr_msg *m, size_t *len);
/* True when m is a request (it expects a tr_reply). */
bool tr_msg_is_request(const tr_msg *m);
/* True when m is a request whose deadline has passed: the caller has given
 * up, so a callee may skip it. */
bool tr_msg_expired(const tr_msg *m);

/* Deepest nesting of arrays and maps a payload may have (a scalar is 0). */
#define TR_PAYLOAD_DEPTH_MAX 64

/* Checks that m's payload is exactly one well-formed msgpack object with
 * nesting at most TR_PAYLOAD_DEPTH_MAX (an empty payload is also accepted). */
tr_err tr_msg_validate(const tr_msg *m);
/* The same check over any buffer. */
tr_err tr_validate(const void *bytes, size_t len);

/* Reads a payload that is exactly one integer, without a generic unpack. */
tr_err tr_msg_int(const tr_msg *m, int64_t *out);

/*
 * A cursor reads a payload value by value, checking each type, without
 * allocating. Strings and binaries point into the message: they live as
 * long as the message does.
 */
typedef struct tr_cursor {
    const uint8_t *pos;
    const uint8_t *end;
} tr_cursor;

void tr_cursor_init(tr_cursor *c, const tr_msg *m);
void tr_cursor_init_bytes(tr_cursor *c, const void *bytes, size_t len);
bool tr_cursor_done(const tr_cursor *c);
tr_err tr_cursor_int(tr_cursor *c, int64_t *out);   /* any msgpack integer fitting int64 */
tr_err tr_cursor_uint(tr_cursor *c, uint64_t *out); /* non-negative integers */
tr_err tr_cursor_double(tr_cursor *c, double *out); /* float32/64 (and integers) */
tr_err tr_cursor_bool(tr_cursor *c, bool *out);
tr_err tr_cursor_nil(tr_cursor *c);
tr_err tr_cursor_str(tr_cursor *c, const char **s, size_t *len); /* not NUL-terminated */
tr_err tr_cursor_bin(tr_cursor *c, const uint8_t **p, size_t *len);
tr_err tr_cursor_array(tr_cursor *c, uint32_t *n); /* header; then read n values */
tr_err tr_cursor_map(tr_cursor *c, uint32_t *n);   /* header; then n key/value pairs */
tr_err tr_cursor_ref(tr_cursor *c, tr_ref *out);   /* as written by tr_pack_ref */
tr_err tr_cursor_skip(tr_cursor *c);               /* skips one whole value */

/*
 * A reader unpacks a whole payload into msgpack-c objects, after
 * validating it, for callers that want random access. msgpack-c's unpacker
 * stops at 32 levels of nesting, so deeper (valid) payloads give
 * TR_ENOTSUP here; the cursor reads them. Fill it with
 * tr_reader_init and release it with tr_reader_fini. root and every object
 * under it live until tr_reader_fini; str/bin data point into the message.
 */
typedef struct tr_reader {
    msgpack_zone zone;
    msgpack_object root;
} tr_reader;

tr_err tr_reader_init(tr_reader *r, const tr_msg *m);
tr_err tr_reader_init_bytes(tr_reader *r, const void *bytes, size_t len);
void tr_reader_fini(tr_reader *r);

/* Checked accessors over msgpack_object. */
tr_err tr_obj_int(const msgpack_object *o, int64_t *out);
tr_err tr_obj_uint(const msgpack_object *o, uint64_t *out);
tr_err tr_obj_double(const msgpack_object *o, double *out);
tr_err tr_obj_bool(const msgpack_object *o, bool *out);
tr_err tr_obj_str(const msgpack_object *o, const char **s, size_t *len);
tr_err tr_obj_bin(const msgpack_object *o, const uint8_t **p, size_t *len);
/* Number of elements of an array, or of pairs of a map. */
tr_err tr_obj_len(const msgpack_object *o, uint32_t *out);
/* Element idx of an array (TR_ENOTFOUND past the end). */
tr_err tr_obj_at(const msgpack_object *o, uint32_t idx, const msgpack_object **out);
/* Value for string key in a map (TR_ENOTFOUND when absent). */
tr_err tr_obj_get(const msgpack_object *o, const char *key, const msgpack_object **out);
tr_err tr_obj_ref(const msgpack_object *o, tr_ref *out);

/* ------------------------------------------------------------------------ */
/* Exit reasons                                                              */
/* ------------------------------------------------------------------------ */

typedef enum tr_exit_kind {
    TR_EXIT_NORMAL = 0,       /* finished its work */
    TR_EXIT_SHUTDOWN = 1,     /* stopped by its supervisor or the runtime */
    TR_EXIT_ERROR = 2,        /* the actor failed; code is its error value */
    TR_EXIT_KILLED = 3,       /* killed by an untrappable exit signal */
    TR_EXIT_NOPROC = 4,       /* the actor did not exist when linked/monitored */
    TR_EXIT_NOCONNECTION = 5, /* the link to its node was lost */
    TR_EXIT_SIGNAL = 6,       /* a process actor killed by signal code */
    TR_EXIT_CODE = 7          /* a process actor exited with status code */
} tr_exit_kind;

#define TR_REASON_TEXT_MAX 63

typedef struct tr_reason {
    tr_exit_kind kind;
    int32_t code;                      /* error value, signal or exit status */
    char text[TR_REASON_TEXT_MAX + 1]; /* optional human-readable detail */
} tr_reason;

/* Builds a reason; text may be NULL and is truncated to TR_REASON_TEXT_MAX. */
tr_reason tr_reason_make(tr_exit_kind kind, int32_t code, const char *text);
/* True for NORMAL and SHUTDOWN: a clean end, as a supervisor sees it. (Only
 * NORMAL is ignored by linked actors that do not trap exits; SHUTDOWN takes
 * them down, as in Erlang.) */
bool tr_reason_is_normal(const tr_reason *r);
/* Name of a kind ("normal", "error", ...). */
const char *tr_exit_kind_name(tr_exit_kind kind);

/* ------------------------------------------------------------------------ */
/* Behaviours and spawning                                                   */
/* ------------------------------------------------------------------------ */

/*
 * A behaviour: what an actor does. Callbacks get the actor's context and
 * its state block (state_size bytes, zeroed, owned by the runtime, freed
 * after terminate). A callback returning non-zero makes the actor exit
 * with reason {TR_EXIT_ERROR, that value}. The behaviour struct must
 * outlive every actor spawned from it (a static const is typical).
 */
typedef struct tr_behaviour {
    const char *name;  /* for logs and tools; may be NULL */
    size_t state_size; /* bytes of private state; may be 0 (state is NULL) */

    /* Runs first, in the actor's own context. args is the spawn argument
     * message (may be NULL); it is freed after init returns. May be NULL. */
    int (*init)(tr_ctx *ctx, void *state, const tr_msg *args);

    /* Handles one message; m is freed after it returns. Required for pooled
     * actors; for thread actors it is used only when run is NULL. */
    int (*handle)(tr_ctx *ctx, void *state, const tr_msg *m);

    /* Runs exactly once, last, with the exit reason. May be NULL. */
    void (*terminate)(tr_ctx *ctx, void *state, const tr_reason *why);

    /* Thread actors only: the actor's own loop, which typically calls
     * tr_receive until it returns TR_ESTOPPED. Returning 0 is a normal exit.
     * NULL = a loop that passes every message to handle. */
    int (*run)(tr_ctx *ctx, void *state);
} tr_behaviour;

typedef enum tr_actor_kind {
    TR_POOLED = 0, /* run by the worker pool; handlers must not block */
    TR_THREAD = 1  /* its own OS thread; may block, may tr_receive/tr_call */
} tr_actor_kind;

typedef enum tr_overflow {
    TR_OVERFLOW_REJECT = 0,      /* send fails with TR_EFULL; the sender keeps the message */
    TR_OVERFLOW_DROP_NEWEST = 1, /* the new message is dropped (counted) and send returns TR_OK */
    TR_OVERFLOW_DROP_OLDEST = 2  /* the oldest queued messages are dropped (counted); the
                                    dropping happens as the receiver reads, so a receiver
                                    that does not run holds more than the limit */
} tr_overflow;

typedef struct tr_spawn_opts {
    tr_actor_kind kind;     /* TR_POOLED by default */
    uint32_t mailbox_limit; /* user messages queued at most; 0 = unbounded (default) */
    tr_overflow overflow;   /* what a full bounded mailbox does */
    bool link;              /* link the new actor to the spawner before it runs */
    bool trap_exit;         /* start with exits trapped */
    const char *name;       /* register this name for the actor before it runs; may be NULL */
} tr_spawn_opts;

#define TR_SPAWN_OPTS_INIT                                   \
    {                                                        \
        TR_POOLED, 0, TR_OVERFLOW_REJECT, false, false, NULL \
    }

/*
 * Spawns an actor running b. args (may be NULL) is consumed on TR_OK and
 * handed to init. opts may be NULL for defaults. *out receives the new
 * reference. The spawner becomes the actor's parent for shutdown order.
 * init runs later, in the new actor: an actor whose init fails may be gone
 * before a monitor set up after tr_spawn reaches it (that monitor then
 * reports TR_EXIT_NOPROC); opts.link links before the actor runs, so the
 * spawner sees the real reason.
 * Errors: TR_EINVAL (NULL ctx/behaviour, pooled without handle, bad
 * options), TR_ESTOPPED, TR_EEXIST (name taken; nothing was spawned),
 * TR_ENOMEM, TR_ESYS (thread creation failed).
 */
tr_err tr_spawn(tr_ref *out, tr_ctx *ctx, const tr_behaviour *b, tr_msg *args,
                const tr_spawn_opts *opts);

/* ------------------------------------------------------------------------ */
/* Contexts                                                                  */
/* ------------------------------------------------------------------------ */

/* The calling actor's reference. */
tr_ref tr_self(const tr_ctx *ctx);
/* The runtime the context belongs to. */
tr_runtime *tr_ctx_runtime(const tr_ctx *ctx);
/* Kind of the calling actor; attached threads report TR_THREAD. */
tr_actor_kind tr_ctx_kind(const tr_ctx *ctx);

/*
 * Makes the calling plain thread (e.g. main) an actor-like participant: it
 * gets a reference and a mailbox, can spawn, send, receive and call.
 * *out is valid on this thread until tr_detach. Errors: TR_ESTOPPED,
 * TR_ENOMEM, TR_EINVAL.
 */
tr_err tr_attach(tr_ctx **out, tr_runtime *rt);
/* Gives the context back: its links and monitors fire with reason normal,
 * queued messages become dead letters. ctx is invalid afterwards. */
void tr_detach(tr_ctx *ctx);

/* ------------------------------------------------------------------------ */
/* Sending                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * Sends m to the actor to. Consumes m on TR_OK. FIFO per sender/receiver
 * pair. Errors: TR_EINVAL, TR_ENOACTOR (the receiver is known to have
 * exited; counted as a dead letter), TR_EFULL (bounded mailbox with the
 * reject policy), TR_ENOMEM (the message's payload ran out of memory),
 * TR_ENOROUTE (no link to the reference's node), TR_ESTOPPED.
 * A receiver that exits after the send accepted the message turns it into a
 * counted dead letter.
 */
tr_err tr_send(tr_ctx *ctx, tr_ref to, tr_msg *m);

/* Shortcuts: build and send in one call. Nothing to free on error. */
tr_err tr_send_tag(tr_ctx *ctx, tr_ref to, const char *tag);            /* empty payload */
tr_err tr_send_int(tr_ctx *ctx, tr_ref to, const char *tag, int64_t v); /* one integer */
tr_err tr_send_str(tr_ctx *ctx, tr_ref to, const char *tag, const char *s);

/* ------------------------------------------------------------------------ */
/* Receiving (thread actors and attached threads)                            */
/* ------------------------------------------------------------------------ */

/* A selective-receive predicate: true to take m. Must not keep m. */
typedef bool (*tr_match_fn)(const tr_msg *m, void *udata);

#define TR_FOREVER (-1)

/*
 * Waits for the first queued message that matches: its tag equals tag
 * (NULL = any tag) and match (NULL = always) returns true. Messages that do
 * not match stay queued in their order for later receives. timeout_ms: 0
 * polls, TR_FOREVER waits without limit. On TR_OK the caller owns *out
 * (tr_msg_free). Exit signals, monitors, replies and stop requests are
 * handled while waiting. Errors: TR_ETIMEDOUT, TR_ESTOPPED (the actor was
 * told to stop or killed: return from run), TR_EWRONGKIND (pooled actor),
 * TR_EBUSY (called from a request continuation, which itself runs inside a
 * receive or call). After a drain-mode stop, receives still hand out what
 * was queued before the stop, then return TR_ESTOPPED.
 */
tr_err tr_receive(tr_ctx *ctx, const char *tag, tr_match_fn match, void *udata, int32_t timeout_ms,
                  tr_msg **out);

/* ------------------------------------------------------------------------ */
/* Request / reply                                                           */
/* ------------------------------------------------------------------------ */

/*
 * The continuation of an asynchronous request. status is TR_OK with the
 * reply, or, with reply NULL: TR_ETIMEDOUT, TR_ENOACTOR (callee dead, or
 * died with the request queued), TR_EEXITED (callee exited while handling
 * it), or the error the callee replied with. reply is freed after the continuation returns. A
 * continuation returning non-zero makes the actor exit like a handler.
 */
typedef int (*tr_reply_fn)(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status,
                           void *udata);

/*
 * Sends req as a request with a deadline timeout_ms from now and returns
 * at once. Exactly one call of on_reply follows, on this actor, in its own
 * turn: the reply, or a timeout. A reply after the deadline is discarded
 * (counted as a late reply). Consumes req on TR_OK. Pooled actors, thread
 * actors (continuations run inside tr_receive) and attached threads.
 */
tr_err tr_request(tr_ctx *ctx, tr_ref to, tr_msg *req, uint32_t timeout_ms, tr_reply_fn on_reply,
                  void *udata);

/*
 * Sends req and blocks for the reply, at most timeout_ms. Thread actors and
 * attached threads only: from a pooled actor it returns TR_EWOULDBLOCK and
 * sends nothing. Once its arguments are valid (all results but TR_EINVAL,
 * TR_EWOULDBLOCK and TR_EWRONGKIND) the call takes req, sent or not, so an
 * error replied by the callee never leaves the caller guessing who owns it.
 * On TR_OK the caller owns *reply. Errors: TR_ETIMEDOUT, TR_ENOACTOR (the
 * callee was dead, or died with the request still queued), TR_EEXITED (a
 * pooled callee exited while handling it), TR_EFULL, TR_ENOROUTE,
 * TR_ESTOPPED, TR_EBUSY (from a request continuation; req not taken), or
 * the status the callee replied with (tr_reply_error).
 */
tr_err tr_call(tr_ctx *ctx, tr_ref to, tr_msg *req, uint32_t timeout_ms, tr_msg **reply);

/* Replies to request with reply, which is consumed in every case but
 * TR_EINVAL. A pooled actor that exits while handling a request it has not
 * answered answers it with TR_EEXITED, so its caller does not wait. If the request's deadline has
 * passed the reply is discarded, counted as late, and TR_ETIMEDOUT returned; TR_ENOACTOR if the
 * requester is gone. TR_EINVAL if request is not a request. */
tr_err tr_reply(tr_ctx *ctx, const tr_msg *request, tr_msg *reply);
/* Replies with an error status and no payload. */
tr_err tr_reply_error(tr_ctx *ctx, const tr_msg *request, tr_err status);

/* A request's return address: what is needed to answer it after its
 * message is gone (a server that answers once other work is done). */
typedef struct tr_reply_to {
    tr_ref to;         /* the requester */
    uint64_t corr;     /* which of its requests */
    uint64_t deadline; /* monotonic ns after which the answer is discarded */
} tr_reply_to;

/* Fills *out with request's return address. TR_EINVAL if not a request. */
tr_err tr_msg_reply_to(tr_reply_to *out, const tr_msg *request);
/* Answers through a saved return address, like tr_reply. */
tr_err tr_reply_to_send(tr_ctx *ctx, const tr_reply_to *to, tr_msg *reply);
/* Answers through a saved return address with an error status. */
tr_err tr_reply_to_error(tr_ctx *ctx, const tr_reply_to *to, tr_err status);

/* ------------------------------------------------------------------------ */
/* Timers                                                                    */
/* ------------------------------------------------------------------------ */

typedef uint64_t tr_timer_id;

/* Sends m to `to` after delay_ms. Consumes m on TR_OK. Timer messages
 * travel in the control lane: bounded mailboxes never drop them. */
tr_err tr_send_after(tr_ctx *ctx, tr_ref to, tr_msg *m, uint32_t delay_ms, tr_timer_id *id);
/* Sends a copy of m to `to` every period_ms (>0) until cancelled or the
 * receiver exits. Consumes m on TR_OK. */
tr_err tr_send_interval(tr_ctx *ctx, tr_ref to, tr_msg *m, uint32_t period_ms, tr_timer_id *id);
/* Cancels a timer. TR_ENOTFOUND if it already fired (one-shot) or is unknown. */
tr_err tr_timer_cancel(tr_ctx *ctx, tr_timer_id id);

/* ------------------------------------------------------------------------ */
/* Node links                                                                */
/* ------------------------------------------------------------------------ */

/*
 * Runtimes ("nodes") in one process, on one host or on several talk over
 * one connection per pair of nodes (nng byte streams for ipc://, tcp:// and
 * tls+tcp://; an in-process pipe for inproc://): a reference whose node is
 * another runtime's is sent over the link to it, with the same guarantees
 * (FIFO per sender/receiver pair; nothing lost or duplicated while both
 * ends live, also across a reconnect). Requests, replies with deadlines,
 * links and monitors work across nodes. The dialling side reconnects by
 * itself; a node that stays silent past the detection time
 * (tr_runtime_opts.link_detect_ms) is declared down: every link and
 * monitor across fires with TR_EXIT_NOCONNECTION, what it had not
 * acknowledged is counted as dead letters, and sends to it fail with
 * TR_ENOROUTE until it is connected again. A node that stops first waits
 * (at most link_drain_ms) until its peers acknowledged everything it sent,
 * then says goodbye, so links and monitors across fire at once.
 * Not yet: remote spawn and names.
 */

/* Listens for other nodes at url: inproc://NAME, ipc://PATH,
 * tcp://HOST:PORT or tls+tcp://HOST:PORT (after tr_runtime_set_tls). May be
 * called for several URLs. Errors: TR_EINVAL (bad URL; tls+tcp:// without
 * TLS set), TR_ETOOBIG (URL over 255 bytes), TR_EBUSY (address in use),
 * TR_ESTOPPED, TR_ENOMEM, TR_ESYS. */
tr_err tr_listen(tr_runtime *rt, const char *url);

/* Connects to the node listening at url and waits, at most timeout_ms, for
 * the handshake; *node receives its node id (the node field of references
 * to its actors). rt need not listen anywhere. The link reconnects by
 * itself if the connection breaks; calling again for a URL already
 * connected waits until that link is up. When no handshake completes in
 * time the attempt is abandoned and the last reason returned: TR_ENOROUTE
 * (nobody accepted), TR_EAUTH (credentials refused, either way),
 * TR_EBADMSG (the peer does not speak the protocol), TR_ETIMEDOUT. Other
 * errors: TR_EINVAL, TR_ETOOBIG, TR_ESTOPPED, TR_ENOMEM. */
tr_err tr_connect(tr_runtime *rt, const char *url, uint32_t timeout_ms, uint64_t *node);

typedef enum tr_tls_auth {
    TR_TLS_AUTH_REQUIRED = 0, /* the peer must present a certificate signed by the CA */
    TR_TLS_AUTH_OPTIONAL = 1, /* a certificate it presents must check out; none is fine */
    TR_TLS_AUTH_NONE = 2      /* certificates are not checked (encryption only) */
} tr_tls_auth;

/* A node's TLS identity for tls+tcp://, used both when it listens and when
 * it dials. nng 1.5.2 cannot report the peer certificate's name, so mutual
 * authentication means "signed by one of these CAs"; a shared secret
 * (tr_runtime_opts.secret) can be added on top. */
typedef struct tr_tls_opts {
    const char *cert_file;    /* PEM certificate of this node (chain allowed) */
    const char *key_file;     /* PEM private key of that certificate; may be cert_file */
    const char *key_password; /* for an encrypted key; NULL = none */
    const char *ca_file;      /* PEM certificates of the CAs peers' certificates must chain
                                 to; NULL only with TR_TLS_AUTH_NONE */
    const char *server_name;  /* name a listener's certificate must carry when this node
                                 dials; NULL = not checked */
    tr_tls_auth auth;         /* how peers' certificates are checked, both directions */
} tr_tls_opts;

#define TR_TLS_OPTS_INIT                                   \
    {                                                      \
        NULL, NULL, NULL, NULL, NULL, TR_TLS_AUTH_REQUIRED \
    }

/* Gives rt its TLS identity; the files are read and checked now and the
 * result applies to tls+tcp:// listeners and connections made afterwards.
 * May be called again to replace it. Errors: TR_EINVAL (missing field,
 * unparsable PEM, key not matching), TR_ENOTFOUND (a file cannot be
 * read), TR_ETOOBIG (a file over 1 MiB), TR_ESTOPPED, TR_ENOMEM,
 * TR_ENOTSUP (nng built without TLS). */
tr_err tr_runtime_set_tls(tr_runtime *rt, const tr_tls_opts *o);

/* ------------------------------------------------------------------------ */
/* Names                                                                     */
/* ------------------------------------------------------------------------ */

#define TR_NAME_MAX 63

/* Registers name (copied, 1..TR_NAME_MAX bytes) for the local actor ref.
 * The name is released when that actor exits. Errors: TR_EEXIST,
 * TR_ENOACTOR, TR_EINVAL, TR_ETOOBIG. */
tr_err tr_register(tr_ctx *ctx, const char *name, tr_ref ref);
/* Releases name. TR_ENOTFOUND if not registered. */
tr_err tr_unregister(tr_ctx *ctx, const char *name);
/* Looks name up. TR_ENOTFOUND if not registered. Safe from any thread. */
tr_err tr_whereis(tr_ref *out, tr_runtime *rt, const char *name);

/* ------------------------------------------------------------------------ */
/* Links, monitors, exits                                                    */
/* ------------------------------------------------------------------------ */

/* Tags of the messages the runtime delivers. */
#define TR_TAG_EXIT "tr.exit" /* an exit signal turned message (trap_exit on) */
#define TR_TAG_DOWN "tr.down" /* a monitor fired */

/* Links the caller and other both ways. If other is already dead the caller
 * receives an exit signal with reason TR_EXIT_NOPROC. */
tr_err tr_link(tr_ctx *ctx, tr_ref other);
/* Removes the link both ways; no exit signal flows afterwards. */
tr_err tr_unlink(tr_ctx *ctx, tr_ref other);

typedef uint64_t tr_monitor_id;

/* Monitors target: exactly one TR_TAG_DOWN message follows when it exits
 * (reason TR_EXIT_NOPROC if it is already gone), unless demonitored. */
tr_err tr_monitor(tr_ctx *ctx, tr_ref target, tr_monitor_id *id);
/* Stops a monitor; no DOWN for it is delivered afterwards. */
tr_err tr_demonitor(tr_ctx *ctx, tr_monitor_id id);

/* Turns exit signals from linked actors into TR_TAG_EXIT messages
 * (except TR_EXIT_KILLED from tr_exit, which cannot be trapped). */
void tr_trap_exit(tr_ctx *ctx, bool on);

/*
 * Sends an exit signal to target. A target that traps exits receives it as
 * a TR_TAG_EXIT message from the caller; otherwise it exits with why,
 * unless why is TR_EXIT_NORMAL (ignored). Kind TR_EXIT_KILLED cannot be
 * trapped. Errors: TR_ENOACTOR, TR_EINVAL.
 */
tr_err tr_exit(tr_ctx *ctx, tr_ref target, const tr_reason *why);

/* Makes the calling actor exit with why once the current callback returns
 * (a thread actor's next tr_receive returns TR_ESTOPPED). */
void tr_stop_self(tr_ctx *ctx, const tr_reason *why);

/* Decodes a TR_TAG_EXIT message: who exited and why. */
tr_err tr_msg_exit_info(const tr_msg *m, tr_ref *from, tr_reason *why);
/* Decodes a TR_TAG_DOWN message: who exited, which monitor, and why. */
tr_err tr_msg_down_info(const tr_msg *m, tr_ref *who, tr_monitor_id *id, tr_reason *why);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_H */
