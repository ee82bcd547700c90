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
    uint32_t spin_us;        /* how long an idle worker spins before parking; 0 = 10 */
    uint32_t max_frame;      /* largest frame a node link sends or accepts; 0 = 4 MiB */
    uint32_t link_detect_ms; /* silence after which a linked node is declared down; 0 = 2000 */
    uint32_t link_drain_ms;  /* stop waits this long at most for peers to acknowledge what
                                was sent to them; 0 = 1000 */
    const char *secret;      /* shared secret every linked node must prove it knows
                                (copied; NULL = none, and peers must have none either) */
    uint32_t watchdog_ms;    /* a handler call, or a thread actor's stretch outside tr_receive,
                                that runs longer is reported (tr_watchdog_subscribe); 0 = 1000,
                                TR_WATCHDOG_OFF = never */
    uint32_t proc_warm;      /* process actors: children kept started and linked ahead, so a
                                spawn (a supervisor's restart) skips the fork and the child's
                                start-up; refilled in the background once the first process
                                actor is spawned; 0 = 1, TR_PROC_WARM_OFF = none, at most 64 */
} tr_runtime_opts;

#define TR_WATCHDOG_OFF UINT32_MAX
#define TR_PROC_WARM_OFF UINT32_MAX

#define TR_RUNTIME_OPTS_INIT               \
    {                                      \
        0, NULL, 0, 0, 0, 0, 0, NULL, 0, 0 \
    }

/* Starts a runtime: its worker threads and timer thread. opts may be NULL
 * for defaults. The caller owns *out and releases it with tr_runtime_free. */
tr_err tr_runtime_start(tr_runtime **out, const tr_runtime_opts *opts);

typedef enum tr_stop_mode {
    TR_STOP_DRAIN = 0,  /* each actor handles what is already queued, then stops */
    TR_STOP_DISCARD = 1 /* each actor stops at its next message; the rest are dead letters */
} tr_stop_mode;

/*
 * Stops every actor. First each actor spawned with opts.trap_stop (a
 * supervisor, say), shallowest first, gets an exit signal TR_EXIT_SHUTDOWN
 * from no one (TR_REF_NIL) and the stop waits until it has exited, so it
 * stops its own children in its own order and time; it must exit once it
 * has. Then the rest go children before parents (an actor's children are
 * the actors it spawned), so a parent's terminate sees its children gone — joins
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
    uint64_t overruns;          /* handlers and thread actors reported by the watchdog */
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
    TR_THREAD = 1, /* its own OS thread; may block, may tr_receive/tr_call */
    TR_PROCESS = 2 /* a forked child process running its own runtime (see below) */
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
    uint32_t shutdown_ms;   /* process actors: how long a stop waits for the process to end
                               before it is killed with SIGKILL; 0 = 5000 */
    bool trap_stop;         /* a runtime stop reaches this actor first, as an exit signal
                               TR_EXIT_SHUTDOWN, and leaves its subtree to it (see
                               tr_runtime_stop); supervisors set it */
} tr_spawn_opts;

#define TR_SPAWN_OPTS_INIT                                             \
    {                                                                  \
        TR_POOLED, 0, TR_OVERFLOW_REJECT, false, false, NULL, 0, false \
    }

/*
 * Spawns an actor running b. args (may be NULL) is consumed on TR_OK and
 * handed to init. opts may be NULL for defaults. *out receives the new
 * reference. The spawner becomes the actor's parent for shutdown order.
 * init runs later, in the new actor: an actor whose init fails may be gone
 * before a monitor set up after tr_spawn reaches it (that monitor then
 * reports TR_EXIT_NOPROC); opts.link links before the actor runs, so the
 * spawner sees the real reason.
 *
 * Process actors (kind TR_PROCESS): the runtime's fork server forks a
 * child process, which starts a runtime of its own (one worker), links to
 * this node over ipc:// and runs b there — as a thread actor when b has a
 * run loop, else pooled. *out is a local reference that stands for the
 * process: sends, requests, links, monitors, names and exit signals work
 * on it as on any actor, and it exits when the process has ended, with
 * the child actor's own reason, TR_EXIT_SIGNAL (code = signal),
 * TR_EXIT_CODE (code = exit status of a process that died without
 * reporting a reason) or TR_EXIT_NOCONNECTION (the link to it was lost;
 * the process is then killed). Inside the child, tr_self is the actor's
 * reference on the child's node, and the messages it sends come from
 * that reference; replies reach the caller either way. Requests in flight
 * when the process dies are answered with TR_EEXITED. Stopping it (a
 * runtime stop, or an exit signal) sends the child actor the exit signal
 * and waits up to opts.shutdown_ms for the process before killing it.
 * The child is a fork of the program as it was when the first runtime
 * started: b and its callbacks must be part of the program image then
 * (static data and code, not heap memory or a library loaded later), and
 * args travels as its payload bytes (at most 60 KiB). A process actor
 * cannot itself spawn process actors.
 *
 * Errors: TR_EINVAL (NULL ctx/behaviour, pooled without handle, bad
 * options, a process behaviour outside the program image), TR_ESTOPPED,
 * TR_EEXIST (name taken; nothing was spawned), TR_ENOMEM, TR_ESYS (thread
 * creation or fork failed), TR_ETOOBIG (process args too large),
 * TR_ENOTSUP (process actors are not available: no fork server, or called
 * inside a process actor).
 */
tr_err tr_spawn(tr_ref *out, tr_ctx *ctx, const tr_behaviour *b, tr_msg *args,
                const tr_spawn_opts *opts);

/*
 * Checks, without spawning anything, that b could be spawned as kind:
 * the callbacks that kind needs are there and, for TR_PROCESS, b and its
 * callbacks are part of the program image the fork server copies. For
 * libraries that run a user's behaviour inside one of their own (a worker
 * pool's workers do), so a bad behaviour is refused before anything
 * starts. Safe from any thread. Errors: TR_EINVAL (NULL b, unknown kind,
 * missing callback, a process behaviour outside the program image).
 */
tr_err tr_behaviour_check(const tr_behaviour *b, tr_actor_kind kind);

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
 * sends nothing. The call takes req whatever it returns, sent or not (a
 * NULL req is TR_EINVAL), so an error replied by the callee never leaves
 * the caller guessing who owns it. On TR_OK the caller owns *reply.
 * Errors: TR_EINVAL, TR_EWRONGKIND (a timer context), TR_ETIMEDOUT,
 * TR_ENOACTOR (the callee was dead, or died with the request still
 * queued), TR_EEXITED (a pooled callee exited while handling it), TR_EFULL,
 * TR_ENOROUTE, TR_ESTOPPED, TR_EBUSY (from a request continuation), or the
 * status the callee replied with (tr_reply_error).
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
/* Ports                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * A port runs an external command as an actor. Its stdout becomes
 * messages to an owner, messages sent to it are written to its stdin, and
 * the command's exit becomes its exit reason: exit 0 is TR_EXIT_NORMAL,
 * exit N is TR_EXIT_CODE with code N, death by signal S is TR_EXIT_SIGNAL
 * with code S. Links and monitors work on a port like on any actor.
 * A port is a thread actor with one helper thread that owns the pipes, so
 * no pooled worker ever blocks on the command.
 *
 * Output. In TR_PORT_LINES framing each line of stdout (without its '\n')
 * reaches the owner as a TR_PORT_TAG_LINE message whose payload is one
 * msgpack str. A line longer than max_msg bytes arrives in pieces: full
 * pieces of max_msg bytes tagged TR_PORT_TAG_PART, then the rest tagged
 * TR_PORT_TAG_LINE, so nothing is lost. A last line without '\n' is
 * delivered at end of file. In TR_PORT_FRAMES framing stdout is a stream
 * of frames, each a 4-byte big-endian length and then exactly that many
 * bytes holding one msgpack object, delivered as the payload of a
 * TR_PORT_TAG_FRAME message. A frame that is empty, malformed or cut
 * short ends the port with {TR_EXIT_ERROR, TR_EBADMSG}; one longer than
 * max_msg with {TR_EXIT_ERROR, TR_ETOOBIG} (the command is killed).
 * All output is delivered, in order, before the port's exit signals and
 * DOWN messages. What the command writes after its own exit (through a
 * background child that kept the pipe) is not read.
 *
 * Input. Any other message sent to the port is written to stdin: in lines
 * framing its payload must be one str or bin, written raw (add the '\n'
 * yourself); in frames framing its payload (one msgpack object) is written
 * as a frame. TR_PORT_TAG_EOF closes stdin once everything before it is
 * written. A message sent as a request (tr_call, tr_request) is answered
 * with an empty TR_PORT_TAG_OK reply once the port has accepted its bytes,
 * or with an error: TR_ETYPE or TR_EBADMSG (wrong payload), TR_ECANCELED
 * (stdin is already closed), TR_ENOMEM. Refused plain sends are counted.
 *
 * Backpressure. Output: a port holds at most 256 messages (or 1 MiB)
 * read but not yet accepted by the owner; then it stops reading and the
 * command blocks on its full pipe. An owner with a bounded mailbox and
 * TR_OVERFLOW_REJECT thus bounds a flooding command's memory: while the
 * owner is full the port reads nothing and retries the send every 1 to
 * 16 ms (no sender is told when a mailbox has room); each such pause is
 * counted in owner_full. An owner with an unbounded mailbox accepts all output as fast
 * as it comes; drop policies drop it (counted by the runtime). Input: once
 * 64 KiB wait for the command's stdin, the port stops taking messages
 * other than its own, so they wait in its mailbox, which spawn.mailbox_limit
 * may bound (senders then get TR_EFULL).
 *
 * Ending. When the port exits for any other reason than its command's
 * exit (tr_exit, runtime stop, its owner's exit, a bad frame), it closes
 * the pipes, sends SIGTERM to the command's process group (each command
 * runs in a group of its own), SIGKILL after kill_grace_ms, and reaps it
 * before its own exit is reported; output not yet delivered is dropped and
 * counted. When the owner exits, the port exits with TR_EXIT_SHUTDOWN.
 */

/* Tags of the messages a port sends to its owner. */
#define TR_PORT_TAG_LINE "port.line"       /* one line of stdout (str, no '\n') */
#define TR_PORT_TAG_PART "port.part"       /* a max_msg piece of a longer stdout line */
#define TR_PORT_TAG_FRAME "port.frame"     /* one frame of stdout (its msgpack object) */
#define TR_PORT_TAG_ERR "port.err"         /* one line of stderr (TR_PORT_STDERR_MESSAGES) */
#define TR_PORT_TAG_ERRPART "port.errpart" /* a max_msg piece of a longer stderr line */
/* Tags a port understands. */
#define TR_PORT_TAG_EOF "port.eof" /* close the command's stdin */
#define TR_PORT_TAG_OK "port.ok"   /* the reply to a write or EOF sent as a request */

typedef enum tr_port_framing {
    TR_PORT_LINES = 0, /* stdout lines; stdin written raw */
    TR_PORT_FRAMES = 1 /* length-prefixed msgpack frames both ways */
} tr_port_framing;

typedef enum tr_port_stderr {
    TR_PORT_STDERR_INHERIT = 0, /* the command writes to this process's stderr */
    TR_PORT_STDERR_DISCARD = 1, /* to /dev/null */
    TR_PORT_STDERR_MESSAGES = 2 /* as TR_PORT_TAG_ERR lines to the owner */
} tr_port_stderr;

typedef struct tr_port_opts {
    tr_port_framing framing;
    tr_port_stderr err;
    tr_ref owner;           /* who gets the output; TR_REF_NIL (node 0) = the spawner */
    const char *const *env; /* "NAME=value" list ending in NULL; NULL = this process's */
    const char *dir;        /* working directory; NULL = this process's */
    uint32_t max_msg;       /* longest line piece or frame in bytes; 0 = 64 KiB */
    uint32_t kill_grace_ms; /* SIGTERM to SIGKILL when the port is killed; 0 = 2000 */
    tr_spawn_opts spawn;    /* mailbox_limit, overflow, link, name as for any actor;
                               kind is ignored (a port is a thread actor) and
                               trap_exit must be false */
} tr_port_opts;

#define TR_PORT_OPTS_INIT                                                                      \
    {                                                                                          \
        TR_PORT_LINES, TR_PORT_STDERR_INHERIT, {0, 0, 0}, NULL, NULL, 0, 0, TR_SPAWN_OPTS_INIT \
    }

/*
 * Starts argv[0] with arguments argv (NULL-terminated; argv[0] without a
 * '/' is looked up in this process's PATH) as a port; *out receives the
 * port's reference. opts may be NULL for defaults. The command gets only
 * stdin, stdout and stderr (every other descriptor is closed), default
 * signal handling and an empty signal mask. argv, env and dir are only
 * read during the call. Blocks only while the command is started.
 * Errors: TR_EINVAL (NULL or empty argv, bad options), TR_ENOTFOUND (the
 * command or the working directory does not exist), TR_ETOOBIG (arguments
 * too long), TR_ESYS (the OS refused: not executable, no pipes, no
 * processes), TR_ENOMEM, and tr_spawn's errors (TR_ESTOPPED, TR_EEXIST).
 * Every failure after the arguments were checked is counted in
 * spawn_failed and leaves no process or descriptor behind.
 */
tr_err tr_port_spawn(tr_ref *out, tr_ctx *ctx, const char *const *argv, const tr_port_opts *opts);

/* Counts of a runtime's ports; each only grows. */
typedef struct tr_port_counters {
    uint64_t spawned;       /* ports started */
    uint64_t spawn_failed;  /* tr_port_spawn calls that failed after their arguments were checked */
    uint64_t exited;        /* ports that ended, for any reason */
    uint64_t killed;        /* commands a port had to signal to end them */
    uint64_t out_msgs;      /* output messages the owners accepted */
    uint64_t out_dropped;   /* output messages dropped: the port was killed or its owner gone */
    uint64_t parts;         /* pieces of long lines sent as TR_PORT_TAG_PART / _ERRPART */
    uint64_t bad_frames;    /* invalid or oversize frames (each ended its port) */
    uint64_t owner_full;    /* times a port paused because its owner's mailbox was full */
    uint64_t in_msgs;       /* messages accepted for stdin */
    uint64_t in_refused;    /* messages not written: wrong payload, stdin closed, no memory */
    uint64_t in_bytes_lost; /* accepted bytes never written: the command closed stdin or ended */
} tr_port_counters;

/* Fills *out with rt's port counters (zeros before its first port). Safe
 * from any thread, also after the runtime stopped. */
tr_err tr_runtime_port_counters(tr_port_counters *out, tr_runtime *rt);

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
/* Remote spawn, names and node monitors                                     */
/* ------------------------------------------------------------------------ */

/*
 * Every runtime serves other nodes through a system actor, its node
 * kernel: it spawns behaviours registered by name, looks names up and
 * forwards sends to names. The kernel starts on first need, at spawn depth
 * 0 like an attached thread: it counts in none of spawned, exited and
 * live_actors, and a runtime stops it after every actor it spawned.
 * Behaviours and names travel as strings, so the same program need not run
 * on both nodes, only register the same names.
 */

/* Registers b under name (copied, 1..TR_NAME_MAX bytes) so that any node
 * linked to rt, and rt itself, can spawn it by name. b must outlive rt (a
 * static const is typical). Safe from any thread. Errors: TR_EINVAL (NULL,
 * empty name, b has neither handle nor run), TR_ETOOBIG (name too long),
 * TR_EEXIST (name taken), TR_ENOMEM. */
tr_err tr_register_behaviour(tr_runtime *rt, const char *name, const tr_behaviour *b);
/* Removes name: later spawns by it fail with TR_ENOTFOUND; actors already
 * spawned from it run on. TR_ENOTFOUND if not registered. */
tr_err tr_unregister_behaviour(tr_runtime *rt, const char *name);

/*
 * Spawns the behaviour registered as behaviour on node (which may be this
 * runtime's own) and waits, at most timeout_ms, for its reference. args (may
 * be NULL) is copied to the new actor's init (with its tag; an empty payload
 * reaches init as NULL) and consumed on TR_OK. opts (NULL for defaults)
 * apply there: kind, mailbox limit and overflow, trap_exit, and name, which
 * is registered on that node. opts.link links the caller and the new actor
 * before its init runs, so a child that fails at once still signals the
 * caller with its real reason; the link fires with TR_EXIT_NOCONNECTION if
 * the node goes down. The caller's side of the link is made by the child's
 * LINK signal, which precedes everything else the child sends the caller
 * (an unlink issued before it arrives finds no link yet). The new actor's
 * parent, for shutdown order, is that node's kernel. A request that reaches
 * the kernel after its deadline spawns nothing. Thread actors and attached
 * threads only: a pooled actor gets TR_EWOULDBLOCK (use
 * tr_spawn_remote_async).
 * Errors: TR_EINVAL (NULL, node 0, bad options), TR_ETOOBIG (a name too
 * long), TR_EBADMSG (args is not one msgpack object), TR_ENOMEM,
 * TR_EWOULDBLOCK, TR_EBUSY (from a request continuation), TR_ENOROUTE (no
 * link to node), TR_ETIMEDOUT, TR_ESTOPPED (this runtime or that node is
 * stopping), TR_ENOACTOR (that node's kernel is gone: it is stopping),
 * TR_ENOTFOUND (no behaviour of that name there), or what tr_spawn returned
 * there (TR_EEXIST for a taken name, TR_EINVAL, TR_ESYS, ...).
 */
tr_err tr_spawn_remote(tr_ref *out, tr_ctx *ctx, uint64_t node, const char *behaviour, tr_msg *args,
                       const tr_spawn_opts *opts, uint32_t timeout_ms);

/*
 * The same without waiting, for any actor: sends the spawn request and
 * returns; exactly one call of on_reply follows, on this actor, as for
 * tr_request. On success its reply's payload is the new reference (read it
 * with tr_msg_ref); otherwise status is one of the errors above. args is
 * consumed on TR_OK. Errors returned at once: as tr_spawn_remote's before
 * anything is sent, and tr_request's.
 */
tr_err tr_spawn_remote_async(tr_ctx *ctx, uint64_t node, const char *behaviour, tr_msg *args,
                             const tr_spawn_opts *opts, uint32_t timeout_ms, tr_reply_fn on_reply,
                             void *udata);

/* Reads a payload that is exactly one reference (as tr_pack_ref writes it),
 * such as the reply of tr_spawn_remote_async or tr_whereis_remote_async. */
tr_err tr_msg_ref(const tr_msg *m, tr_ref *out);

/* Looks name up in node's registry (which may be this runtime's own) and
 * waits, at most timeout_ms, for the answer. Thread actors and attached
 * threads only (TR_EWOULDBLOCK from a pooled actor). Errors: TR_ENOTFOUND
 * (not registered there), TR_EINVAL, TR_ETOOBIG, TR_ENOROUTE, TR_ETIMEDOUT,
 * TR_ESTOPPED, TR_ENOACTOR (that node is stopping), TR_EBUSY, TR_ENOMEM. */
tr_err tr_whereis_remote(tr_ref *out, tr_ctx *ctx, uint64_t node, const char *name,
                         uint32_t timeout_ms);
/* The same without waiting, for any actor: on_reply follows as for
 * tr_request, its reply's payload the reference (tr_msg_ref) or status
 * TR_ENOTFOUND and the other errors above. */
tr_err tr_whereis_remote_async(tr_ctx *ctx, uint64_t node, const char *name, uint32_t timeout_ms,
                               tr_reply_fn on_reply, void *udata);

/* Sends m to the actor registered as name on node, without waiting: that
 * node's kernel resolves the name when m arrives and passes m on with the
 * caller as its sender. Consumes m on TR_OK. Sends to one name keep their
 * order; a name that is not registered there when m arrives makes m a
 * dead letter there (the caller is not told). On this runtime's own node
 * the name is resolved at once, as tr_whereis then tr_send. Errors:
 * TR_EINVAL, TR_ETOOBIG, TR_ENOMEM, TR_ENOROUTE, TR_ESTOPPED, and on the
 * own node TR_ENOTFOUND and those of tr_send. */
tr_err tr_send_named(tr_ctx *ctx, uint64_t node, const char *name, tr_msg *m);

/* The reference of node's kernel (this runtime's own is started if need
 * be), for tools that speak to it directly; its request tags and payloads
 * are described in runtime/remote.c. Errors: TR_EINVAL, TR_ENOROUTE (no
 * link to node), TR_ESTOPPED, TR_ENOMEM. */
tr_err tr_node_kernel(tr_ref *out, tr_ctx *ctx, uint64_t node);

/* Tags of node monitor messages. They travel in the control lane. */
#define TR_TAG_NODEUP "tr.nodeup" /* a node was linked, or heard again after it was down */
#define TR_TAG_NODEDOWN                                                  \
    "tr.nodedown" /* a node was declared down (silent past the detection \
                     time) or came back as a new session (restarted) */

#define TR_NODE_NAME_MAX 63

/* A node as this runtime knows it. */
typedef struct tr_node_info {
    uint64_t node;                   /* its id (the node field of its references) */
    char name[TR_NODE_NAME_MAX + 1]; /* the name it gave, NUL-terminated */
    bool up;                         /* linked now (false: declared down) */
} tr_node_info;

/* Subscribes the caller to TR_TAG_NODEUP / TR_TAG_NODEDOWN messages about
 * every node (on) or ends that (off). Subscribing twice is subscribing
 * once; the subscription ends when the caller exits. Events about one node
 * arrive in the order they happened. Errors: TR_EINVAL, TR_ENOMEM. */
tr_err tr_monitor_nodes(tr_ctx *ctx, bool on);
/* The same for one node. A new subscription to a node that is not up now
 * receives a TR_TAG_NODEDOWN about it at once. An actor subscribed both
 * ways gets each event twice. Errors: TR_EINVAL (node 0), TR_ENOMEM. */
tr_err tr_monitor_node(tr_ctx *ctx, uint64_t node, bool on);

/* Decodes a TR_TAG_NODEUP or TR_TAG_NODEDOWN message. Errors: TR_EINVAL,
 * TR_ETYPE (another tag), TR_EBADMSG (malformed payload). */
tr_err tr_msg_node_info(const tr_msg *m, tr_node_info *out);

/* Lists the nodes this runtime has been linked to, up or down, into out
 * (room for cap entries; out may be NULL when cap is 0); *n receives how
 * many there are, which may exceed cap. A process actor's node is listed
 * while its process lives: once the process is reaped (after its
 * TR_TAG_NODEDOWN) the node is forgotten, and subscriptions to that one
 * node end. Safe from any thread. Errors: TR_EINVAL. */
tr_err tr_nodes(tr_runtime *rt, tr_node_info *out, size_t cap, size_t *n);

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

/* ------------------------------------------------------------------------ */
/* Watchdog                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * A runtime's watchdog looks at every worker and thread actor a few times
 * per budget (tr_runtime_opts.watchdog_ms). A pooled actor whose handler
 * call, or a thread actor that has been outside tr_receive / tr_call, for
 * longer than the budget is reported once per stretch: each subscriber gets
 * a TR_TAG_OVERRUN message (without subscribers, one line goes to stderr)
 * and the overruns counter moves. A process actor's overruns are reported
 * by its stand-in, as that reference. What to do is the subscriber's
 * choice: a supervisor can kill a process actor (tr_exit with
 * TR_EXIT_KILLED ends the process at once); a thread or pooled actor
 * cannot be stopped inside user code — the exit takes effect when it
 * returns to the runtime — and meanwhile the other workers go on serving
 * the rest of the pool (they steal the stuck worker's queued actors).
 */
#define TR_TAG_OVERRUN "tr.overrun"

typedef struct tr_overrun {
    tr_ref who;                 /* the actor (a process actor's stand-in) */
    tr_actor_kind kind;         /* pooled, thread or process */
    uint32_t elapsed_ms;        /* how long it had been running when reported */
    char name[TR_NAME_MAX + 1]; /* its behaviour's name ("" if none) */
} tr_overrun;

/* Subscribes (on) or unsubscribes the caller to overrun reports. */
tr_err tr_watchdog_subscribe(tr_ctx *ctx, bool on);
/* Decodes a TR_TAG_OVERRUN message. */
tr_err tr_msg_overrun_info(const tr_msg *m, tr_overrun *out);

/* Decodes a TR_TAG_EXIT message: who exited and why. */
tr_err tr_msg_exit_info(const tr_msg *m, tr_ref *from, tr_reason *why);
/* Decodes a TR_TAG_DOWN message: who exited, which monitor, and why. */
tr_err tr_msg_down_info(const tr_msg *m, tr_ref *who, tr_monitor_id *id, tr_reason *why);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_H */
