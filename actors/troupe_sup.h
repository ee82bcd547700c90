/*
 * troupe_sup.h — supervisors for troupe, built only on troupe.h.
 *
 * A supervisor is a pooled actor that starts child actors from child specs
 * (plain data), links to each of them with exits trapped, and restarts the
 * ones that fail according to a strategy, the way an Erlang/OTP supervisor
 * does: one_for_one, one_for_all, rest_for_one, or a dynamic set of
 * identical children started on demand (simple_one_for_one). More than
 * `intensity` restarts within `period_ms` make it give up: it stops its
 * children in reverse start order and exits with reason
 * {TR_EXIT_ERROR, TR_SUP_EXIT_MAX_RESTARTS}, so its own supervisor (or
 * whoever links to or monitors it) decides. Children start in order and
 * stop in reverse order; a stop is an exit signal TR_EXIT_SHUTDOWN, then,
 * if the child has not exited within its shutdown time, TR_EXIT_KILLED.
 * A child may be a pooled, thread or process actor, a nested supervisor,
 * or anything a start function returns a reference for (a port, say).
 *
 * Beyond OTP, a child may back off between restarts (exponential, bounded,
 * with jitter), and a supervisor can report what it does as event
 * messages to an actor of your choice.
 *
 * Control is by request/reply: each operation has a blocking helper for
 * thread actors and attached threads (tr_call underneath, with a timeout)
 * and a message builder plus a reply decoder for pooled actors, which send
 * the request with tr_request and read the answer in the continuation.
 * Errors are tr_err codes: TR_EEXIST (duplicate child id), TR_ENOTFOUND
 * (no such child), TR_EBUSY (the child is running or restarting),
 * TR_EWRONGKIND (an id operation on a dynamic supervisor or the reverse),
 * TR_EINVAL / TR_ETOOBIG (a bad spec), TR_ECANCELED (the supervisor
 * stopped before it could answer), plus whatever tr_call or tr_spawn return.
 *
 * Specs hold pointers (behaviours, start functions and their arguments):
 * they are meaningful inside this process only, and what they point to
 * must outlive every supervisor that uses them.
 */
#ifndef TROUPE_SUP_H
#define TROUPE_SUP_H

#include <troupe.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* ------------------------------------------------------------------------ */
/* Child specs                                                               */
/* ------------------------------------------------------------------------ */

/* Longest child id, in bytes, without the terminating NUL. */
#define TR_SUP_ID_MAX 63
/* Deepest nesting of supervisor specs inside one tr_sup_spec. Deeper trees
 * are built at run time with tr_sup_start_child. */
#define TR_SUP_DEPTH_MAX 16

/* When a child that exited is started again. */
typedef enum tr_sup_restart {
    TR_SUP_PERMANENT = 0, /* always */
    TR_SUP_TRANSIENT = 1, /* only after an abnormal exit (not NORMAL or SHUTDOWN) */
    TR_SUP_TEMPORARY = 2  /* never; its spec is forgotten once it exits */
} tr_sup_restart;

typedef enum tr_sup_child_type {
    TR_SUP_WORKER = 0,
    TR_SUP_SUPERVISOR = 1 /* a supervisor; its default shutdown waits without limit */
} tr_sup_child_type;

/* Shutdown values besides a time in milliseconds. */
#define TR_SUP_SHUTDOWN_BRUTAL UINT32_MAX          /* TR_EXIT_KILLED at once */
#define TR_SUP_SHUTDOWN_INFINITY (UINT32_MAX - 1u) /* wait for the exit without limit */
/* Shutdown of a worker whose spec says 0. */
#define TR_SUP_SHUTDOWN_DEFAULT_MS 5000u

/*
 * Exponential backoff between restarts of one child. The n-th restart in a
 * row (n = 0, 1, ...) waits d = min(max_ms, min_ms * factor^n), shortened
 * by a random part of at most jitter * d; a child that stayed up at least
 * reset_ms starts over at n = 0. While it waits the child is listed as
 * restarting. min_ms == 0 restarts at once (plain OTP behaviour). Restarts
 * count towards the intensity when they happen, so a backoff spreads them
 * out and may keep a failing child below the intensity.
 */
typedef struct tr_sup_backoff {
    uint32_t min_ms;   /* first delay; 0 = no backoff */
    uint32_t max_ms;   /* largest delay; >= min_ms when min_ms > 0 */
    double factor;     /* growth per restart in a row; >= 1 */
    double jitter;     /* 0..1: a delay is drawn from [d * (1 - jitter), d] */
    uint32_t reset_ms; /* up this long = a fresh start; 0 = max_ms */
} tr_sup_backoff;

/*
 * Starts something the supervisor then treats as a child: it must put the
 * reference of a live local actor in *out (a port, an actor spawned with
 * options a spec cannot express, ...). It runs inside the supervisor, a
 * pooled actor, so it must not block; spawn with opts.link = true so the
 * supervisor learns the real reason if the actor dies at once (the
 * supervisor links to *out itself too). arg is the spec's start_arg.
 */
typedef tr_err (*tr_sup_start_fn)(tr_ref *out, tr_ctx *ctx, const void *arg);

struct tr_sup_spec;

/*
 * One child. Exactly one of behaviour, start and sup says how to start it.
 * Everything is copied when the spec is handed over, except what the
 * pointers point to.
 */
typedef struct tr_sup_child_spec {
    const char *id; /* unique within its supervisor, 1..TR_SUP_ID_MAX bytes */

    const tr_behaviour *behaviour; /* spawn this, with args and spawn */
    const void *args;              /* one msgpack object handed to init, or NULL */
    size_t args_len;               /* bytes at args */
    tr_spawn_opts spawn;           /* kind, mailbox, trap_exit, name; link is implied. A
                                      named child's name follows every new incarnation.
                                      A process child's spawn.shutdown_ms 0 takes the
                                      spec's shutdown */

    tr_sup_start_fn start; /* or: call this with start_arg */
    const void *start_arg;

    const struct tr_sup_spec *sup; /* or: a nested supervisor (type is then SUPERVISOR) */

    tr_sup_restart restart;
    uint32_t shutdown_ms; /* ms, TR_SUP_SHUTDOWN_BRUTAL or _INFINITY; 0 = the default
                             (TR_SUP_SHUTDOWN_DEFAULT_MS for workers, infinity for
                             supervisors) */
    tr_sup_child_type type;
    tr_sup_backoff backoff;
    bool kill_on_overrun; /* a process or thread child the runtime's watchdog reports
                             (tr_runtime_opts.watchdog_ms) is killed, reason
                             {TR_EXIT_KILLED, TR_SUP_KILL_OVERRUN}, and restarted by its
                             restart type. A process dies at once; a thread actor blocked
                             outside tr_receive takes the kill when it gets back there
                             (a thread cannot be stopped safely from outside). Pooled
                             children are only reported by the watchdog. */
} tr_sup_child_spec;

#define TR_SUP_CHILD_SPEC_INIT                                                          \
    {                                                                                   \
        NULL, NULL, NULL, 0, TR_SPAWN_OPTS_INIT, NULL, NULL, NULL, TR_SUP_PERMANENT, 0, \
            TR_SUP_WORKER, {0, 0, 2.0, 0.0, 0}, false                                   \
    }

typedef enum tr_sup_strategy {
    TR_SUP_ONE_FOR_ONE = 0,       /* restart the child that failed */
    TR_SUP_ONE_FOR_ALL = 1,       /* stop all others (reverse order), restart all in order */
    TR_SUP_REST_FOR_ONE = 2,      /* the same for the failed child and those after it */
    TR_SUP_SIMPLE_ONE_FOR_ONE = 3 /* one template; identical children started on demand */
} tr_sup_strategy;

/* A whole supervisor: its flags and its children in start order. */
typedef struct tr_sup_spec {
    tr_sup_strategy strategy;
    uint32_t intensity;                /* at most this many restarts ... */
    uint32_t period_ms;                /* ... within this many ms (> 0), else give up */
    const tr_sup_child_spec *children; /* simple_one_for_one: exactly one, the template,
                                          which is not started and may not have a name */
    uint32_t nchildren;
    tr_ref events; /* receives TR_SUP_TAG_EVENT messages; TR_REF_NIL = none */
} tr_sup_spec;

#define TR_SUP_SPEC_INIT                                  \
    {                                                     \
        TR_SUP_ONE_FOR_ONE, 1, 5000, NULL, 0, { 0, 0, 0 } \
    }

/* Reason codes (with kind TR_EXIT_ERROR) of a supervisor's own exit. */
#define TR_SUP_EXIT_MAX_RESTARTS 0x5350 /* more than intensity restarts within period */
#define TR_SUP_EXIT_START_FAILED 0x5351 /* a child of the initial spec did not start */
/* Reason code (with kind TR_EXIT_KILLED) of a child killed for overrunning. */
#define TR_SUP_KILL_OVERRUN 0x5352

/* ------------------------------------------------------------------------ */
/* Starting a supervisor                                                     */
/* ------------------------------------------------------------------------ */

/*
 * Spawns a supervisor for spec (validated and copied here; errors come back
 * before anything is spawned) and returns at once; *out receives its
 * reference. It then starts the children in order; if one fails to start,
 * it stops those already started (reverse order) and exits with
 * {TR_EXIT_ERROR, TR_SUP_EXIT_START_FAILED}, the text naming the child and
 * the error. opts may be NULL; it must be a pooled spawn (link and name
 * are honoured; exits are always trapped). Any thread or actor context.
 * An exit signal from anyone but its children (its parent's link firing,
 * tr_exit) stops it with that reason, its children first; NORMAL ones are
 * ignored. Errors: TR_EINVAL (NULL argument, bad field, non-pooled opts),
 * TR_ETOOBIG (an id longer than TR_SUP_ID_MAX, nesting deeper than
 * TR_SUP_DEPTH_MAX), TR_EEXIST (two children with one id), and tr_spawn's.
 */
tr_err tr_sup_start(tr_ref *out, tr_ctx *ctx, const tr_sup_spec *spec, const tr_spawn_opts *opts);

/* ------------------------------------------------------------------------ */
/* Control (blocking helpers: thread actors and attached threads)            */
/* ------------------------------------------------------------------------ */

/*
 * Each blocks at most timeout_ms for the supervisor's answer (tr_call, so a
 * pooled caller gets TR_EWOULDBLOCK) and returns the supervisor's status or
 * tr_call's error. A supervisor busy stopping children answers a request
 * that changes children once it is done.
 */

/* Adds spec as the last child and starts it; *out (may be NULL) receives
 * its reference. TR_EEXIST: the id is taken; TR_EWRONGKIND: a dynamic
 * supervisor; a failed start returns tr_spawn's error and adds nothing. */
tr_err tr_sup_start_child(tr_ref *out, tr_ctx *ctx, tr_ref sup, const tr_sup_child_spec *spec,
                          uint32_t timeout_ms);

/* Dynamic supervisors: starts a child from the template with args (one
 * msgpack object, copied; NULL = the template's args). TR_EWRONGKIND on
 * other strategies. */
tr_err tr_sup_start_dynamic(tr_ref *out, tr_ctx *ctx, tr_ref sup, const void *args, size_t args_len,
                            uint32_t timeout_ms);

/* Stops child id (its shutdown procedure) and keeps its spec as stopped; a
 * temporary child's spec is dropped. A child waiting for a restart is just
 * marked stopped. Answers once the child is gone. TR_ENOTFOUND,
 * TR_EWRONGKIND (dynamic supervisor). */
tr_err tr_sup_terminate_child(tr_ctx *ctx, tr_ref sup, const char *id, uint32_t timeout_ms);

/* Dynamic supervisors: stops the running child child and forgets it.
 * TR_ENOTFOUND, TR_EWRONGKIND (other strategies). */
tr_err tr_sup_terminate_dynamic(tr_ctx *ctx, tr_ref sup, tr_ref child, uint32_t timeout_ms);

/* Starts a stopped child again; *out (may be NULL) receives the reference.
 * TR_ENOTFOUND, TR_EBUSY (running or restarting), TR_EWRONGKIND, or the
 * start's error (the child stays stopped). */
tr_err tr_sup_restart_child(tr_ref *out, tr_ctx *ctx, tr_ref sup, const char *id,
                            uint32_t timeout_ms);

/* Forgets a stopped child's spec. TR_ENOTFOUND, TR_EBUSY, TR_EWRONGKIND. */
tr_err tr_sup_delete_child(tr_ctx *ctx, tr_ref sup, const char *id, uint32_t timeout_ms);

typedef enum tr_sup_child_state {
    TR_SUP_CHILD_RUNNING = 0,    /* ref is the live incarnation */
    TR_SUP_CHILD_RESTARTING = 1, /* exited; waits for its restart (backoff, or its turn) */
    TR_SUP_CHILD_STOPPED = 2     /* terminated, or a transient child that ended normally */
} tr_sup_child_state;

/* One child as a supervisor lists it. */
typedef struct tr_sup_child_info {
    char id[TR_SUP_ID_MAX + 1];
    tr_ref ref; /* the current incarnation; TR_REF_NIL unless running */
    tr_sup_child_state state;
    tr_sup_child_type type;
    tr_actor_kind kind;     /* as the spec says (a start function's child: its spawn.kind) */
    tr_sup_restart restart; /* as the spec says */
    uint32_t restarts;      /* times it was started again after its first start */
    uint32_t delay_ms;      /* restarting: the backoff delay it waits, else 0 */
    bool exited;            /* last_exit holds the reason its last incarnation ended */
    tr_reason last_exit;
} tr_sup_child_info;

/* Lists the children in start order. On TR_OK the caller owns *out (free
 * it with tr_sup_children_free; NULL when *n is 0). */
tr_err tr_sup_which_children(tr_sup_child_info **out, uint32_t *n, tr_ctx *ctx, tr_ref sup,
                             uint32_t timeout_ms);
/* Frees a listing. NULL is a no-op. */
void tr_sup_children_free(tr_sup_child_info *children);

/* ------------------------------------------------------------------------ */
/* Control (asynchronous: pooled actors)                                     */
/* ------------------------------------------------------------------------ */

/*
 * Builders of the same requests: send *out (owned by the caller until a
 * send consumes it) with tr_request (or tr_call) to the supervisor. A
 * start or restart reply carries the new reference (tr_sup_reply_ref), a
 * listing reply the children (tr_sup_reply_children); the others carry
 * nothing. Errors come back as the request's status.
 */
tr_err tr_sup_msg_start_child(tr_msg **out, tr_ctx *ctx, const tr_sup_child_spec *spec);
tr_err tr_sup_msg_start_dynamic(tr_msg **out, tr_ctx *ctx, const void *args, size_t args_len);
tr_err tr_sup_msg_terminate_child(tr_msg **out, tr_ctx *ctx, const char *id);
tr_err tr_sup_msg_terminate_dynamic(tr_msg **out, tr_ctx *ctx, tr_ref child);
tr_err tr_sup_msg_restart_child(tr_msg **out, tr_ctx *ctx, const char *id);
tr_err tr_sup_msg_delete_child(tr_msg **out, tr_ctx *ctx, const char *id);
tr_err tr_sup_msg_which_children(tr_msg **out, tr_ctx *ctx);

/* Reads the reference from a start or restart reply. */
tr_err tr_sup_reply_ref(tr_ref *out, const tr_msg *reply);
/* Reads a listing reply; the caller owns *out (tr_sup_children_free). */
tr_err tr_sup_reply_children(tr_sup_child_info **out, uint32_t *n, const tr_msg *reply);

/* ------------------------------------------------------------------------ */
/* Events                                                                    */
/* ------------------------------------------------------------------------ */

/* Tag of the event messages a supervisor sends to its spec's events actor,
 * in the order things happen. */
#define TR_SUP_TAG_EVENT "tr.sup.event"

typedef enum tr_sup_event_kind {
    TR_SUP_EV_STARTED = 0,      /* child started; child = the new incarnation */
    TR_SUP_EV_EXITED = 1,       /* child exited on its own with reason */
    TR_SUP_EV_DELAYED = 2,      /* its restart waits delay_ms (backoff) */
    TR_SUP_EV_START_FAILED = 3, /* a (re)start failed; reason.code is the tr_err */
    TR_SUP_EV_STOPPED = 4,      /* the supervisor stopped child; reason is how it ended */
    TR_SUP_EV_GAVE_UP = 5       /* intensity exceeded: stopping everything, then exiting */
} tr_sup_event_kind;

typedef struct tr_sup_event {
    tr_sup_event_kind kind;
    char id[TR_SUP_ID_MAX + 1]; /* the child's id ("" for GAVE_UP) */
    tr_ref sup;                 /* the supervisor */
    tr_ref child;               /* the incarnation concerned (TR_REF_NIL if none) */
    tr_reason reason;           /* EXITED, STOPPED, START_FAILED, GAVE_UP */
    uint32_t restarts;          /* the child's restart count at that moment */
    uint32_t delay_ms;          /* DELAYED: the delay drawn */
} tr_sup_event;

/* Decodes a TR_SUP_TAG_EVENT message. TR_ETYPE for another tag,
 * TR_EBADMSG for a malformed one. */
tr_err tr_sup_event_info(tr_sup_event *out, const tr_msg *m);

/* Names of the enums ("one_for_all", "restarting", "delayed", ...). */
const char *tr_sup_strategy_name(tr_sup_strategy s);
const char *tr_sup_child_state_name(tr_sup_child_state s);
const char *tr_sup_event_name(tr_sup_event_kind k);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_SUP_H */
