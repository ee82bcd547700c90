/*
 * procsrv.h — what procsrv.c (the fork server's client side, the reaper,
 * each runtime's set-up) and proc_warm.c (the warm children) share: the
 * process-wide table of children and its lock. Private to those files.
 */
#ifndef TROUPE_PROCSRV_H
#define TROUPE_PROCSRV_H

#include "process.h"

struct image_seg {
    uintptr_t lo, hi;
    bool exec;
};

/* Where a child is in its life. */
enum kid_state {
    KID_BOUND, /* the process of stand-in `proxy` */
    KID_WARM,  /* in the pool, waiting for an assignment */
    KID_TAKEN, /* taken from the pool by a spawn that has not bound it yet */
    KID_ENDED, /* taken, then reaped before it was bound: status waits */
};

struct child {
    int pid;
    struct procs *P;
    tr_ref proxy;
    uint64_t node;    /* the child's node */
    uint64_t kill_at; /* monotonic ns; 0 = none */
    uint64_t status;  /* KID_ENDED: as MK_PROCEXIT carries it */
    int fd;           /* warm or taken: our end of its socket pair; else -1 */
    uint8_t state;    /* enum kid_state */
    bool linked;      /* warm: it said it is linked */
};

/* How long after a take its replacement is forked. */
#define WARM_REFILL_DELAY_NS 5000000ull /* 5 ms */
/* Backoff of refills after warm children that died before linking. */
#define WARM_BACKOFF_MIN_NS 10000000ull   /* 10 ms */
#define WARM_BACKOFF_MAX_NS 5000000000ull /* 5 s */

/* The process-wide state of process actors (procsrv.c defines it). */
struct procsrv_state {
    pthread_mutex_t lock;
    bool booted;        /* boot ran (in this process or the one it was forked from) */
    struct forksrv *fs; /* NULL: no process actors here */
    struct image_seg *segs;
    size_t nsegs;
    struct child *kids; /* live children of every runtime */
    size_t nkids, capkids;
    uint32_t users;      /* runtimes with a procs set-up */
    struct procs *procs; /* every runtime's set-up (P->next) */
    pthread_t reaper;
    bool reaper_on;
    bool reaper_stop;
    int wake; /* eventfd: the reaper has refills to do (or must stop); -1 = none yet */
};
extern struct procsrv_state tr__procsrv;

/* procsrv.c, all with tr__procsrv.lock held: */
/* Index of pid in the table, or -1. */
ptrdiff_t tr__procsrv_kid_find(int pid);
/* Room for one more child in the table (TR_ENOMEM). */
tr_err tr__procsrv_kids_reserve(void);
/* Wakes the reaper (a refill is due, or it must stop). */
void tr__procsrv_wake(void);

/* proc_warm.c, all with tr__procsrv.lock held: */
/* Warm child *c of P ended before it was taken: closes its socket and
 * backs refills off if it never linked. */
void tr__procwarm_lost(struct procs *P, struct child *c);
/* A runtime that wants a warm child forked now, or NULL; lowers *next to
 * the earliest time a refill waits for. */
struct procs *tr__procwarm_due(uint64_t now, uint64_t *next);
/* Stops holding back node events about node; true (its name in name)
 * when the link said "up" meanwhile. Takes P->mu. */
bool tr__procwarm_unhide(struct procs *P, uint64_t node, char name[TR_NODE_NAME_MAX + 1]);

#endif /* TROUPE_PROCSRV_H */
