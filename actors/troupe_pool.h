/*
 * troupe_pool.h — worker pools for troupe, built only on troupe.h and
 * troupe_sup.h: troupe's ThreadPoolExecutor / ProcessPoolExecutor.
 *
 * A pool is N identical workers — pooled, thread or process actors
 * running one behaviour — behind ONE reference. A client sends a job to
 * that reference: a request (tr_request, tr_call) or a plain send (fire
 * and forget). The pool hands each job to an idle worker, whose handle
 * gets it as an ordinary message and answers a request with tr_reply as
 * usual; the caller gets that answer. When every worker is busy, jobs wait
 * in the pool's queue, in arrival order, up to a bound; past it a request
 * is answered at once with TR_EFULL (a plain send is dropped) and counted
 * as refused.
 *
 * How the pool knows a worker is done. Each worker runs the user's
 * behaviour inside a small wrapper. The pool sends a job, then right
 * behind it a probe request that the wrapper answers itself (the user's
 * handle never sees it). Messages from the pool reach a worker in order
 * and a worker handles one message at a time, so the probe's answer means
 * "handle returned from the job"; and the runtime answers every request
 * exactly once, so a worker that dies — an error return, tr_stop_self, a
 * process killed by SIGKILL or SIGSEGV — turns the probe into an error
 * within moments, even where the job itself would only time out (a thread
 * actor that fails in handle leaves its request unanswered). A request job
 * goes to the worker as the pool's own request, with the caller's
 * remaining deadline, and the worker's answer passes back through the
 * pool, which relays it to the caller. A worker is busy until both its
 * probe has come back and, for a request, its answer: a worker that
 * answers later (from a saved tr_reply_to) stays busy until it does. So a
 * worker never holds more than one job, a reply never reaches a caller
 * after its deadline (the runtime discards it), and no job waits behind a
 * dead worker. The price is two extra messages per job and one copy of
 * each job and each answer; a job's payload reaches the worker unchanged.
 * And a worker is free again only once its probe is back, a moment after
 * its answer went out: a client that sends its next job as soon as it has
 * an answer may find that worker still busy, so leave room in the queue.
 * The counters move at that moment too.
 *
 * What a worker sees. A job's tag and payload are the client's; its
 * sender (tr_msg_from) is the pool and, for a request, its deadline is the
 * client's. Put what the worker must know about the client in the payload.
 * The behaviour needs a handle (run is not used) and is spawned with the
 * spec's args, exactly as a supervisor child would be.
 *
 * Failures. Workers are children of a one_for_one supervisor the pool
 * owns; a worker that exits for any reason is replaced (restart intensity
 * from the spec). The job a dead worker held fails at once: a request is
 * answered TR_EEXITED and counted as failed; queued jobs are not lost,
 * they go to the next idle worker (the replacement or another). A request
 * whose deadline passes while queued is dropped, never delivered (its
 * caller already got TR_ETIMEDOUT from the runtime), and counted as
 * expired. If the workers fail faster than the intensity allows, the
 * supervisor gives up: the pool answers every waiting request with
 * TR_EEXITED and exits with the supervisor's reason.
 *
 * Stopping. tr_pool_stop (or an exit signal, e.g. from a parent
 * supervisor, or a runtime stop: the pool traps both, and a runtime stop
 * reaches it while its clients still run) answers every queued request with
 * TR_ECANCELED, refuses new jobs with TR_ECANCELED, stops the workers
 * through the supervisor's ordered shutdown (each worker first finishes
 * the job it holds), and then exits. A pool is a fine supervisor child:
 * tr_pool_child_spec fills in a child spec.
 *
 * Tags starting with "tr.pool." are the pool's own (its control requests);
 * a job must not use them. Specs hold pointers (the behaviour): they are
 * meaningful inside this process only, and the behaviour must outlive the
 * pool.
 */
#ifndef TROUPE_POOL_H
#define TROUPE_POOL_H

#include <troupe_sup.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* Most workers one pool may have. */
#define TR_POOL_WORKERS_MAX 4096u

/* A pool's shape. Everything is copied when the pool starts, except the
 * behaviour, which must outlive it. */
typedef struct tr_pool_spec {
    const tr_behaviour *behaviour; /* what each worker runs: handle required, run NULL */
    const void *args;              /* one msgpack object handed to each worker's init, or NULL */
    size_t args_len;               /* bytes at args */
    tr_spawn_opts spawn;           /* kind (pooled, thread or process), trap_exit and
                                      shutdown_ms apply to each worker; name, link and
                                      mailbox_limit must be unset (a worker never holds
                                      more than one job) */
    uint32_t workers;              /* N, 1..TR_POOL_WORKERS_MAX */
    uint32_t queue_max;            /* jobs that may wait for a worker; 0 = none (a job that
                                      finds every worker busy is refused) */
    uint32_t max_restarts;         /* the workers' supervisor gives up after more than this
                                      many restarts ... ; 0 = 10 per worker */
    uint32_t period_ms;            /* ... within this many ms; 0 = 1000 */
    uint32_t shutdown_ms;          /* how long a stop waits for each worker before it is
                                      killed: as a supervisor child spec's (0 = 5000) */
} tr_pool_spec;

#define TR_POOL_SPEC_INIT                                   \
    {                                                       \
        NULL, NULL, 0, TR_SPAWN_OPTS_INIT, 1, 1024, 0, 0, 0 \
    }

/*
 * Spawns a pool for spec (checked and copied here: errors come back before
 * anything is spawned) and returns at once; *out receives the reference
 * clients send jobs to. The pool then starts its supervisor and the
 * workers; jobs that arrive before the workers are up wait in the queue.
 * opts may be NULL; it must be a pooled spawn without a mailbox limit
 * (queue_max is the bound; link and name are honoured; exits and runtime
 * stops are always trapped, so a runtime stop also goes through the
 * pool's ordered stop). Any thread or actor context; it does not
 * block. Errors: TR_EINVAL (NULL argument, bad field, a behaviour that
 * cannot be spawned as spec.spawn.kind — tr_behaviour_check —, non-pooled
 * opts), TR_ETOOBIG (args too large), TR_EBADMSG (args is not one msgpack
 * object), and tr_spawn's.
 */
tr_err tr_pool_start(tr_ref *out, tr_ctx *ctx, const tr_pool_spec *spec, const tr_spawn_opts *opts);

/* A tr_sup_start_fn that starts the pool described by pool_spec (a
 * const tr_pool_spec *, which must outlive the supervisor) linked to the
 * calling supervisor. */
tr_err tr_pool_start_link(tr_ref *out, tr_ctx *ctx, const void *pool_spec);

/* Fills *out with a child spec that starts the pool described by spec
 * (which must outlive the supervisor) under id: a permanent child of type
 * supervisor, so its parent waits for its ordered shutdown. Change
 * restart or shutdown_ms after the call if needed. */
void tr_pool_child_spec(tr_sup_child_spec *out, const char *id, const tr_pool_spec *spec);

/* ------------------------------------------------------------------------ */
/* Control                                                                   */
/* ------------------------------------------------------------------------ */

/* A pool's numbers at one moment. Every job the pool accepted or refused
 * is counted once in submitted and, when it is over, once in exactly one of
 * completed, failed, refused, expired, timed_out and canceled; until then
 * it is queued or busy. So submitted = the six + queued + busy. */
typedef struct tr_pool_stats {
    uint32_t size;      /* workers the pool should have (spec.workers) */
    uint32_t workers;   /* workers up now */
    uint32_t busy;      /* jobs a worker holds now */
    uint32_t queued;    /* jobs waiting for a worker now */
    uint32_t queue_max; /* the queue's bound */
    uint64_t submitted; /* jobs sent to the pool */
    uint64_t completed; /* jobs a worker finished (its answer, ok or error, was relayed) */
    uint64_t failed;    /* jobs whose worker exited before it answered (TR_EEXITED) */
    uint64_t refused;   /* jobs refused at once: queue full (TR_EFULL) or stopping
                           (TR_ECANCELED), or a tag of the pool's own (TR_EINVAL) */
    uint64_t expired;   /* requests whose deadline passed while they were queued */
    uint64_t timed_out; /* requests whose deadline passed while a worker had them */
    uint64_t canceled;  /* jobs dropped by a stop (queued requests got TR_ECANCELED) */
    uint64_t restarts;  /* workers that were replaced */
} tr_pool_stats;

/* Blocking helpers for thread actors and attached threads (tr_call
 * underneath; a pooled caller gets TR_EWOULDBLOCK). */

/* Reads the pool's stats. */
tr_err tr_pool_stats_get(tr_pool_stats *out, tr_ctx *ctx, tr_ref pool, uint32_t timeout_ms);

/* Stops the pool as described above and returns once its workers are
 * gone (the pool itself exits right after answering). TR_ENOACTOR if it
 * had already exited; TR_ETIMEDOUT if the stop takes longer than
 * timeout_ms (it goes on regardless). */
tr_err tr_pool_stop(tr_ctx *ctx, tr_ref pool, uint32_t timeout_ms);

/* Builders of the same requests for pooled actors: send *out (owned by the
 * caller until a send consumes it) with tr_request. A stats reply is read
 * with tr_pool_reply_stats; a stop reply carries nothing. */
tr_err tr_pool_msg_stats(tr_msg **out, tr_ctx *ctx);
tr_err tr_pool_msg_stop(tr_msg **out, tr_ctx *ctx);
tr_err tr_pool_reply_stats(tr_pool_stats *out, const tr_msg *reply);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_POOL_H */
