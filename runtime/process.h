/*
 * process.h — process actors, shared by procsrv.c (the process-wide fork
 * server, its reaper and each runtime's set-up for children), proc_warm.c
 * (each runtime's warm children), process.c (the stand-in actor and
 * spawning) and proc_child.c (the child's side).
 */
#ifndef TROUPE_PROCESS_H
#define TROUPE_PROCESS_H

#include "forksrv.h"
#include "internal.h"

#include <limits.h>

/* Room for a socket path (sockaddr_un's sun_path is 108 bytes). */
#define PROC_PATH_MAX 100

/* The node of a warm child not yet bound to a stand-in: node events about
 * it are held back; an "up" is passed on once it is bound. */
struct hidden_node {
    uint64_t node;
    bool up_held; /* the link said "up" while hidden */
    char name[TR_NODE_NAME_MAX + 1];
};

#define PROC_READY_TAG "tr.proc.ready"
#define PROC_OVERRUN_TAG "tr.proc.overrun"
#define PROC_EXIT_SETUP 125    /* the child could not start its runtime or link */
#define PROC_TEARDOWN_MS 2000u /* a child whose actor ended gets this long to exit */
#define PROC_CONNECT_MS 10000u

/* What the child gets from its parent (followed by the args payload). */
struct child_args {
    uint64_t child_node;
    tr_ref proxy;
    uint32_t max_frame;
    uint32_t watchdog_ms;
    uint32_t mailbox_limit;
    uint32_t state_size;
    uint32_t args_len;
    uint8_t overflow, trap_exit, thread;
    uint8_t warm; /* a warm child's start-up: its job comes on its socket */
    int (*init)(tr_ctx *, void *, const tr_msg *);
    int (*handle)(tr_ctx *, void *, const tr_msg *);
    void (*terminate)(tr_ctx *, void *, const tr_reason *);
    int (*run)(tr_ctx *, void *);
    char parent_url[PROC_PATH_MAX + 16];
    char node_name[64];
    char beh_name[TR_NAME_MAX + 1];
    char args_tag[TR_TAG_MAX + 1];
    _Alignas(max_align_t) uint8_t args[];
};

/* A runtime's process-actor set-up, made on its first process spawn. */
struct procs {
    tr_runtime *rt;
    tr_ctx ctx;                   /* the reaper's context for this runtime (g lock) */
    char dir[PROC_PATH_MAX];      /* private directory for the ipc sockets */
    char url[PROC_PATH_MAX + 16]; /* ipc:// URL children connect to */
    uint32_t nlive;               /* processes forked and not yet reaped (g lock) */
    pthread_cond_t reaped;        /* nlive went down (g lock) */
    pthread_mutex_t mu;           /* stand-ins[] and their request tables */
    struct proxy **proxies;       /* stand-ins whose process links to us (mu) */
    uint32_t nproxies, capproxies;
    struct hidden_node *hidden; /* warm children's nodes, kept from node monitors (mu) */
    uint32_t nhidden, caphidden;

    /* Warm children: forked ahead, linked, waiting for an actor (g lock). */
    struct procs *next;  /* every runtime's set-up, for the reaper's refills */
    uint32_t warm_want;  /* how many to keep */
    uint32_t nwarm;      /* forked for the pool and not taken yet */
    uint32_t warm_fails; /* warm children in a row that died before linking */
    uint64_t warm_after; /* monotonic ns: no refill before then */
    bool closing;        /* the runtime stops: no more refills */
    bool refilling;      /* the reaper is forking one for this runtime */
};

/* procsrv.c */

/* True when p lies in a segment of the program image as it was when the
 * fork server started (exec: in executable code). */
bool tr__procsrv_in_image(const void *p, bool exec);
/* The runtime's set-up, made on first use (TR_ENOTSUP without a fork
 * server). */
tr_err tr__procs_get(tr_runtime *rt, struct procs **out);
/* Forks a child running entry(arg, len) for the stand-in `proxy`, whose
 * node will be `node` (its link is closed once it ended); its exit
 * is reported to proxy as MK_PROCEXIT with the raw wait status in corr's
 * low 32 bits (PROC_STATUS_UNKNOWN when the fork server died first). */
tr_err tr__procsrv_spawn(struct procs *P, tr_ref proxy, uint64_t node, forksrv_entry_fn entry,
                         const void *arg, size_t len, int *pid);
/* proc_warm.c (the warm children) */

/* Forks a warm child running entry(arg, len, fd) whose node will be
 * `node`; fd is the child's end of a socket pair whose other end the
 * runtime keeps: the child writes one byte on it once linked, then waits
 * on it for its assignment (a struct child_args). Called by the reaper. */
tr_err tr__procsrv_spawn_warm(struct procs *P, uint64_t node, forksrv_entry_fn entry,
                              const void *arg, size_t len);
/* Takes a live warm child of P, linked if one is, out of the pool; the
 * reaper forks its replacement. False when none is left. */
bool tr__procsrv_take_warm(struct procs *P, uint64_t *node, int *pid);
/* Gives taken warm child pid its assignment (len bytes at job) and the
 * stand-in `proxy` whose process it now is: its exit goes to proxy from
 * now on (at once, when it ended after it was taken). */
void tr__procsrv_bind(struct procs *P, int pid, tr_ref proxy, const void *job, size_t len);
/* Puts taken warm child pid back into the pool (its spawn failed). */
void tr__procsrv_untake(struct procs *P, int pid);
/* In a newly forked child: makes the process-wide state usable. */
void tr__procsrv_child_reset(void);
/* Sends sig to the child of stand-in proxy now (at_ns == 0), or SIGKILL at
 * monotonic time at_ns unless it has ended by then. */
void tr__procsrv_kill(tr_ref proxy, int sig, uint64_t at_ns);

#define PROC_STATUS_KNOWN (1ull << 32)
#define PROC_STATUS_FORKFAIL (1ull << 33) /* low bits: the tr_err */

/* proc_child.c: what a forked child runs (a forksrv_entry_fn; arg is a
 * struct child_args); forks one warm child for P (the reaper calls it);
 * a fresh node id for a child. */
void tr__proc_child_main(const void *arg, size_t len, int fd);
tr_err tr__proc_warm_fork(struct procs *P);
uint64_t tr__proc_node_new(void);

/* process.c: the stand-in's request tracking, under P->mu. */
void tr__proxy_reply_seen(struct proxy *s, uint64_t corr);
uint64_t tr__proxy_node(const struct proxy *s);

#endif /* TROUPE_PROCESS_H */
