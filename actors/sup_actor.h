/*
 * sup_actor.h — a supervisor's state, shared by the actor (sup.c: its
 * callbacks and control requests) and its restart engine (sup_engine.c:
 * exits, restarts, backoff, intensity and ordered stops).
 *
 * All of it belongs to one pooled actor and is touched only from its
 * callbacks, so nothing here is locked or atomic.
 */
#ifndef TROUPE_SUP_ACTOR_H
#define TROUPE_SUP_ACTOR_H

#include "sup_internal.h"

/* Timer messages a supervisor sends itself. They carry its secret, so a
 * message from anyone else with the same tag is ignored. */
#define SUP_TAG_BACKOFF "tr.sup.backoff" /* [secret, uid]: a restart may go ahead */
#define SUP_TAG_KILL "tr.sup.kill"       /* [secret, uid, token]: shutdown time is up */

/* What happens to a child once the stop the supervisor asked for is over. */
typedef enum sup_then {
    THEN_NONE = 0, /* not being stopped */
    THEN_RESTART,  /* part of a group restart: start again in order */
    THEN_STOP,     /* keep the spec, listed as stopped */
    THEN_REMOVE    /* forget it (temporary or dynamic child) */
} sup_then;

typedef struct sup_child {
    sup_childspec spec;
    uint64_t uid; /* names this record in timer messages */
    bool dynamic; /* started from a simple_one_for_one template */
    tr_sup_child_state state;
    tr_ref ref; /* the live incarnation, TR_REF_NIL otherwise */

    /* Restarting. */
    bool ready;        /* its backoff (if any) is over */
    bool counts;       /* this restart counts towards the intensity */
    bool timer_set;    /* a backoff or retry timer is armed */
    tr_timer_id timer; /* that timer */
    uint32_t delay_ms; /* the delay it waits, for listings */
    uint32_t fails;    /* restarts in a row, for the backoff */
    uint64_t started_ns;
    bool ever_started;
    uint32_t restarts;

    /* Stopping. */
    sup_then after;         /* THEN_NONE unless a stop is wanted */
    bool stopping;          /* the exit signal went out; its EXIT is awaited */
    uint64_t stop_token;    /* tells this stop's kill timer from an older one */
    bool kill_set;          /* the kill timer is armed */
    tr_timer_id kill_timer; /* that timer */
    bool waiter_set;        /* a terminate request waits for this stop */
    tr_reply_to waiter;

    bool exited;
    tr_reason last_exit;
} sup_child;

/* A control request kept until the supervisor is done stopping children. */
typedef struct sup_deferred {
    struct sup_deferred *next;
    char tag[TR_TAG_MAX + 1];
    tr_reply_to to;
    size_t len;
    uint8_t bytes[];
} sup_deferred;

typedef struct sup_state {
    tr_sup_strategy strategy;
    uint32_t intensity;
    uint32_t period_ms;
    tr_ref events;

    sup_child **kids; /* in start order */
    uint32_t nkids, capkids;
    sup_childspec tmpl; /* simple_one_for_one: the template */
    bool has_tmpl;

    uint64_t *hist; /* ring of recent restart times (ns), oldest at hist_head */
    uint32_t hist_head, nhist, caphist;

    uint64_t next_uid, next_token, secret, rng;
    uint32_t nstopping; /* children whose stop is under way */

    bool exiting;     /* stopping every child, then exiting with exit_reason */
    bool exit_sent;   /* tr_stop_self was called */
    bool rt_stopping; /* a spawn said the runtime is stopping: no more restarts */
    bool watching;    /* subscribed to the watchdog's overrun reports */
    tr_reason exit_reason;

    sup_deferred *dq_head, *dq_tail;
} sup_state;

/* Monotonic time in ns. */
uint64_t tr__sup_now_ns(void);

/* Finds a child; *idx (may be NULL) receives its position. NULL if none. */
sup_child *tr__sup_find_ref(sup_state *s, tr_ref ref, uint32_t *idx);
sup_child *tr__sup_find_id(sup_state *s, const char *id, uint32_t *idx);

/* Appends a new record that takes spec over (*spec is left empty). */
tr_err tr__sup_add(sup_state *s, sup_childspec *spec, bool dynamic, sup_child **out);
/* Removes and frees the record at idx, cancelling its timers. */
void tr__sup_remove(tr_ctx *ctx, sup_state *s, uint32_t idx);
/* Frees the record at idx after the supervisor's last callback. */
void tr__sup_child_free(tr_ctx *ctx, sup_child *c);

/* Starts c now; on TR_OK it is running and STARTED was reported. */
tr_err tr__sup_start(tr_ctx *ctx, sup_state *s, sup_child *c);
/* Cancels c's backoff or retry timer, if armed. */
void tr__sup_cancel_timer(tr_ctx *ctx, sup_child *c);

/* A linked actor exited (a TR_TAG_EXIT message). */
void tr__sup_exit_signal(tr_ctx *ctx, sup_state *s, tr_ref from, const tr_reason *why);
/* Stops every child (reverse order), then exits with why (first one wins). */
void tr__sup_shutdown(tr_ctx *ctx, sup_state *s, const tr_reason *why);
/* Timer messages. */
void tr__sup_backoff_over(tr_ctx *ctx, sup_state *s, uint64_t uid);
void tr__sup_kill_due(tr_ctx *ctx, sup_state *s, uint64_t uid, uint64_t token);

/* Moves the supervisor on: next stop, exit, restarts, deferred requests.
 * Call at the end of every callback that changed something. */
void tr__sup_step(tr_ctx *ctx, sup_state *s);
/* True while some child is being or waiting to be stopped. */
bool tr__sup_busy(const sup_state *s);
/* Runs the oldest deferred request (sup.c). */
void tr__sup_run_deferred(tr_ctx *ctx, sup_state *s);

/* Reports an event to the spec's events actor, if any. */
void tr__sup_emit(tr_ctx *ctx, sup_state *s, tr_sup_event_kind kind, const char *id, tr_ref child,
                  const tr_reason *why, uint32_t restarts, uint32_t delay_ms);

#endif /* TROUPE_SUP_ACTOR_H */
