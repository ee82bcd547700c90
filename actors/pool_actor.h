/*
 * pool_actor.h — a pool's state, shared by the actor (pool.c: callbacks,
 * supervisor events, stop, stats) and its dispatcher (pool_dispatch.c:
 * the queue, handing jobs to workers, tracking what each worker holds).
 *
 * All of it belongs to one pooled actor and is touched only from its
 * callbacks and request continuations, so nothing here is locked.
 */
#ifndef TROUPE_POOL_ACTOR_H
#define TROUPE_POOL_ACTOR_H

#include "pool_internal.h"

/* A job waiting for a worker. */
typedef struct pool_job {
    tr_msg *msg;    /* the copy a worker will get (owned) */
    tr_reply_to to; /* the client's return address (requests) */
    bool is_req;
} pool_job;

/* How a job ended, for the counters. */
typedef enum pool_outcome {
    OUT_NONE = 0,
    OUT_COMPLETED,
    OUT_FAILED,
    OUT_TIMED_OUT,
    OUT_CANCELED,
    OUT_REFUSED,
    OUT_EXPIRED
} pool_outcome;

/*
 * A job a worker holds. Its request continuations (the job's, the
 * probe's) point at it, so it lives until both have run, or until the pool
 * exits (then they never run); the slot is given back earlier, once the
 * worker is known to be done or dead.
 */
typedef struct pool_ticket {
    struct pool_ticket *prev, *next; /* the pool's list of live tickets */
    uint32_t slot;                   /* the worker's slot */
    tr_ref worker;                   /* the incarnation that got the job */
    tr_reply_to to;                  /* the client's return address (requests) */
    bool is_req;
    uint8_t conts;        /* continuations still to come */
    bool job_back;        /* request: its answer or failure came back */
    bool probe_back;      /* the probe came back (or could not be sent) */
    bool dead;            /* the probe said the worker is gone */
    bool answered;        /* the client has its answer, or is past caring */
    bool released;        /* the slot was given back and the outcome counted */
    pool_outcome outcome; /* requests: decided when answered */
} pool_ticket;

/* One worker place: the supervisor child "w<index>". */
typedef struct pool_slot {
    tr_ref ref;          /* the live incarnation, TR_REF_NIL while down */
    pool_ticket *ticket; /* the job it holds, or NULL */
    bool in_idle;        /* its index is in the idle ring */
    bool ever_started;
} pool_slot;

typedef struct pool_state {
    /* The spec, as decoded from the spawn arguments. */
    const tr_behaviour *behaviour;
    uint8_t *args; /* owned; NULL when none */
    size_t args_len;
    tr_actor_kind kind;
    bool trap_exit;
    uint32_t proc_shutdown_ms;
    uint32_t nworkers, queue_max, max_restarts, period_ms, shutdown_ms;

    tr_ref sup;  /* the workers' supervisor */
    bool sup_up; /* its EXIT has not come yet */

    pool_slot *slots; /* nworkers */
    uint32_t *idle;   /* ring of idle slot indices, capacity nworkers */
    uint32_t idle_head, idle_len;

    pool_job *q; /* ring of waiting jobs, grows up to queue_max */
    uint32_t q_head, q_len, q_cap;

    pool_ticket *tickets; /* live tickets */
    tr_pool_stats st;     /* counters; the gauges are filled in on demand */

    bool stopping;
    tr_reason stop_reason; /* what the pool exits with once its workers are gone */
    tr_err final_status;   /* what clients still waiting are told when it exits */
    tr_reply_to *waiters;  /* stop requests to answer once stopped */
    uint32_t nwaiters, capwaiters;
} pool_state;

/* A job arrived (any message that is not the pool's own): hands it to an
 * idle worker, queues it, or refuses it. */
void tr__pool_submit(tr_ctx *ctx, pool_state *s, const tr_msg *m);
/* Hands queued jobs to idle workers while both last. */
void tr__pool_dispatch(tr_ctx *ctx, pool_state *s);
/* The supervisor reports slot's worker up as ref, or down (ref: the
 * incarnation that went). */
void tr__pool_slot_up(pool_state *s, uint32_t slot, tr_ref ref);
void tr__pool_slot_down(pool_state *s, uint32_t slot, tr_ref ref);
/* Answers every queued request with status, counting each job as
 * outcome, and empties the queue. */
void tr__pool_drop_queue(tr_ctx *ctx, pool_state *s, tr_err status, pool_outcome outcome);
/* Drops expired requests from the queue (counted). */
void tr__pool_purge_expired(pool_state *s);
/* The pool is exiting: answers what workers hold and clients still wait
 * for with status, and frees every ticket. */
void tr__pool_drop_tickets(tr_ctx *ctx, pool_state *s, tr_err status);
/* Jobs workers hold now. */
uint32_t tr__pool_busy(const pool_state *s);

#endif /* TROUPE_POOL_ACTOR_H */
