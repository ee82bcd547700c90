/*
 * internal.h — structures and functions shared by the runtime's files.
 * Nothing here is part of the public API; users include troupe.h only.
 *
 * Ownership model in one paragraph: an actor lives in a slot of its
 * runtime's actor table. Slots are never freed while the runtime lives
 * (type-stable memory), so a sender holding a stale reference only ever
 * touches a valid slot, compares the incarnation, and at worst pushes a
 * message that the slot's consumer turns into a dead letter. Each slot has
 * one consumer at a time — a worker running it, its thread, or the thread
 * that attached it — and every field below marked "consumer" is touched by
 * that consumer only.
 */
#ifndef TROUPE_INTERNAL_H
#define TROUPE_INTERNAL_H

#include "idmap.h"
#include "troupe.h"

#include <pthread.h>
#include <stdatomic.h>

#define TR_CACHELINE 64
#define TR_ALIGNED __attribute__((aligned(TR_CACHELINE)))

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */
/* ------------------------------------------------------------------------ */

/* What a queued message means to the consumer. */
enum msg_kind {
    MK_USER = 0,    /* a user message (a request when MF_REQUEST is set) */
    MK_INIT,        /* first message of a new incarnation: payload is struct init_info */
    MK_LINK,        /* from asks to be linked */
    MK_UNLINK,      /* from removes its link */
    MK_EXIT,        /* exit signal from `from`; payload is an encoded reason */
    MK_MONITOR,     /* from monitors us with id corr */
    MK_DEMONITOR,   /* from drops monitor corr */
    MK_DOWN,        /* monitor corr fired; payload is an encoded reason */
    MK_STOP,        /* the runtime stops this actor (reason shutdown) */
    MK_REPLY,       /* reply to request corr; status holds an error, if any */
    MK_REQ_TIMEOUT, /* request corr reached its deadline */
    MK_NODEDOWN,    /* the link to node corr was lost: links and monitors across fire */
    MK_PROCEXIT,    /* to a process actor's stand-in: its process ended; status in corr */
};

enum msg_flags {
    MF_SYSTEM = 1,   /* control lane: bounded mailboxes never refuse or drop it */
    MF_REQUEST = 2,  /* a user message that expects a reply */
    MF_LINKEXIT = 4, /* an MK_EXIT caused by a linked actor's exit (not tr_exit) */
    MF_NOMEM = 8,    /* the builder ran out of memory: the message cannot be sent */
    MF_HEAPBUF = 16, /* data points to a malloc'd buffer owned by the message */
    MF_COUNTED = 32, /* counted in a bounded mailbox's `pushed` */
    MF_QHELD = 64,   /* still the mailbox's tail: freeing it is deferred */
    MF_QDEAD = 128,  /* released while held: free it when the mailbox lets go */
};

/* The mailbox link; first member of every queued node (messages and stubs). */
typedef struct mbox_node {
    _Atomic(struct mbox_node *) next;
    _Atomic uint32_t seq; /* position in its mailbox, set by the pusher */
} mbox_node;

#define MSG_SIZE 128
#define MSG_HEADER_SIZE 96
#define MSG_INLINE (MSG_SIZE - MSG_HEADER_SIZE)

struct tr_msg {
    mbox_node link;      /* mailbox link; must stay first */
    uint32_t target_inc; /* incarnation of the receiver it was sent to */
    uint8_t kind;        /* enum msg_kind */
    uint8_t flags;       /* enum msg_flags */
    int16_t status;      /* MK_REPLY: tr_err of an error reply */
    tr_ref from;         /* sender */
    uint64_t corr;       /* request/reply correlation, monitor id */
    uint64_t deadline;   /* requests: monotonic ns after which nobody waits; 0 = none */
    uint8_t *data;       /* payload: inline_buf or a heap buffer (MF_HEAPBUF) */
    uint32_t len;        /* payload bytes used */
    uint32_t cap;        /* payload bytes available at data */
    char tag[TR_TAG_MAX + 1];
    uint8_t inline_buf[MSG_INLINE];
};

_Static_assert(sizeof(struct tr_msg) == MSG_SIZE, "message node size");

/* Payload of MK_INIT. */
struct init_info {
    const tr_behaviour *beh;
    tr_msg *args; /* may be NULL; owned by the INIT message until init ran */
    uint8_t trap_exit;
    uint8_t link_from; /* link to the INIT's sender (the spawner) */
};

/* ------------------------------------------------------------------------ */
/* Counters                                                                  */
/* ------------------------------------------------------------------------ */

/* Per-thread counters: written only by their thread (relaxed load + store,
 * no locked instruction), read by tr_runtime_counters from any thread. */
typedef struct ctr_set {
    _Atomic uint64_t spawned, exited, sent, delivered, dead_letters, dropped_overflow,
        rejected_full, late_replies, timers_fired, max_depth, link_refused, bad_frames;
} ctr_set;

static inline void ctr_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void atomic_fetch_max_u32(_Atomic uint32_t *p, uint32_t v)
{
    uint32_t cur = atomic_load_explicit(p, memory_order_relaxed);
    while (cur < v && !atomic_compare_exchange_weak_explicit(p, &cur, v, memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
}

static inline void ctr_max(_Atomic uint64_t *c, uint64_t v)
{
    if (v > atomic_load_explicit(c, memory_order_relaxed))
        atomic_store_explicit(c, v, memory_order_relaxed);
}

/* ------------------------------------------------------------------------ */
/* Contexts                                                                  */
/* ------------------------------------------------------------------------ */

enum ctx_type {
    CTX_WORKER,
    CTX_THREAD,
    CTX_ATTACHED,
    CTX_TIMER
};

/* A per-thread cache of free message nodes. */
typedef struct msg_cache {
    tr_msg *free;
    uint32_t n;
} msg_cache;

typedef struct tr_actor tr_actor;
struct worker;
struct thread_actor;

struct tr_ctx {
    tr_runtime *rt;
    uint8_t type;          /* enum ctx_type */
    bool exiting;          /* the current actor decided to exit */
    bool handoff;          /* a worker gave the slot's consumer role to a thread */
    const tr_msg *cur_req; /* the request being handled and not yet answered */
    /* Workers: user messages sent while handling the current message to
     * one receiver, pushed as one chain (tr__send_flush). */
    tr_actor *sbuf_to;
    tr_msg *sbuf_first, *sbuf_last;
    uint32_t sbuf_n;
    tr_actor *slots; /* free slots this thread spawns into next */
    uint32_t nslots;
    tr_reason exit_reason;    /* why, when exiting */
    tr_actor *actor;          /* the actor being run (workers) or owned (threads) */
    struct worker *worker;    /* CTX_WORKER */
    struct thread_actor *thr; /* CTX_THREAD / CTX_ATTACHED */
    msg_cache cache;
    ctr_set ctr;
    struct tr_ctx *all_next; /* runtime's list of non-worker contexts */
};

/* What the watchdog sees of a worker or thread actor: written by its
 * thread with relaxed stores (no locked instruction), read by the
 * watchdog. inc is 0 while no user code runs there. */
struct wd_probe {
    _Atomic uint64_t progress; /* moves whenever user code returns to the runtime */
    _Atomic uint32_t id, inc;  /* the actor running user code */
    _Atomic(const char *) name;
    uint64_t seen, since; /* the watchdog's own: last progress and when it moved */
    bool reported;
};

static inline void wd_enter(struct wd_probe *p, uint32_t id, uint32_t inc, const char *name)
{
    atomic_store_explicit(&p->id, id, memory_order_relaxed);
    atomic_store_explicit(&p->name, name, memory_order_relaxed);
    atomic_store_explicit(&p->inc, inc, memory_order_relaxed);
}

static inline void wd_tick(struct wd_probe *p)
{
    atomic_store_explicit(&p->progress,
                          atomic_load_explicit(&p->progress, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline void wd_leave(struct wd_probe *p)
{
    atomic_store_explicit(&p->inc, 0, memory_order_relaxed);
    wd_tick(p);
}

/* ------------------------------------------------------------------------ */
/* Actors                                                                    */
/* ------------------------------------------------------------------------ */

/* Links, monitors and pending requests; allocated on first use. Consumer. */
struct mon_entry {
    tr_ref ref;
    uint64_t id;
};
struct actor_ext {
    tr_ref *links;
    uint32_t nlinks, caplinks;
    struct mon_entry *watchers; /* who monitors this actor */
    uint32_t nwatchers, capwatchers;
    struct mon_entry *monitors; /* whom this actor monitors */
    uint32_t nmonitors, capmonitors;
    idmap pending;           /* open asynchronous requests by correlation id */
    uint64_t sweep_at;       /* when the armed deadline timer is due; 0 = none */
    tr_timer_id sweep_timer; /* that timer */
};

struct tr_actor {
    /* Producer line: touched by every sender. */
    _Atomic(mbox_node *) head;          /* mailbox producer end; bit 0 set = idle */
    _Atomic uint32_t incarnation;       /* odd = alive; senders compare their ref's */
    _Atomic uint32_t limit;             /* mailbox bound, 0 = none */
    _Atomic uint64_t pushed;            /* bounded mailboxes: user messages admitted */
    _Atomic uint8_t kind;               /* TR_POOLED / TR_THREAD: how to schedule */
    _Atomic uint8_t overflow;           /* enum tr_overflow */
    _Atomic uint8_t discard;            /* shutdown asked to discard queued messages */
    _Atomic uint8_t has_names;          /* the registry may hold names for this actor */
    _Atomic uint16_t depth;             /* spawn depth, for shutdown order */
    _Atomic uint8_t trap_stop;          /* a runtime stop reaches it as an exit signal */
    _Atomic(struct thread_actor *) thr; /* the thread to wake, for TR_THREAD */

    /* Consumer line. */
    mbox_node *tail TR_ALIGNED;    /* consumer end of the mailbox */
    mbox_node stub;                /* stands in for the tail while idle */
    bool held;                     /* tail is a handed-out node kept as the link */
    _Atomic uint32_t consumed_seq; /* seq of the last message handed out */
    uint64_t popped;               /* bounded mailboxes: counted messages gone */
    _Atomic uint64_t popped_pub;   /* popped, published for bounded senders */
    uint32_t live_inc;             /* incarnation being served; 0 = none */
    uint32_t id;                   /* slot index (constant) */
    bool trap_exit;
    const tr_behaviour *beh;
    void *state;
    struct actor_ext *ext;
    tr_actor *sched_next; /* global run queue link */
    tr_actor *free_next;  /* free-slot list link (table lock) */
};

/* A thread actor's or attached thread's record. Records are kept until the
 * runtime is freed and reused for later thread actors, so a sender that
 * raced an exit at worst wakes a record that is idle or serves another
 * actor (a spurious wake-up it tolerates). */
struct thread_actor {
    tr_ctx ctx; /* the thread's context; ctx.thr points here */
    pthread_t thread;
    bool has_thread;   /* false for attached threads */
    bool joined;       /* thread joined (or never started) */
    _Atomic bool done; /* the thread left the actor; record reusable */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic int signalled; /* a pusher made us runnable since we last woke */
    _Atomic int sleeping;  /* we are (about to be) waiting on cv */
    struct init_info init; /* what to run (thread actors) */
    tr_ref spawner;
    tr_msg *save_head, *save_tail; /* popped user messages not yet received */
    uint64_t nsaved;               /* entries in the save queue */
    uint64_t save_dropped;         /* drop-oldest evictions from the save queue */
    bool stopped;                  /* receives return TR_ESTOPPED from now on */
    bool stop_pending;             /* drain-mode STOP seen: stop once the save queue has no match */
    bool busy;                     /* inside tr_receive or tr_call: continuations may run */
    uint64_t call_corr;            /* the blocking call in progress, 0 = none */
    tr_msg *call_reply;            /* its reply once it came */
    struct thread_actor *all_next; /* runtime's list of records (ctx_lock) */
    struct wd_probe wd;            /* user code outside receive/call */
};

/* ------------------------------------------------------------------------ */
/* Runtime                                                                   */
/* ------------------------------------------------------------------------ */

#define TABLE_CHUNK_BITS 12
#define TABLE_CHUNK (1u << TABLE_CHUNK_BITS)
#define TABLE_CHUNK_BYTES (sizeof(tr_actor) * TABLE_CHUNK)
#define TABLE_MAX_CHUNKS 16384 /* 64M actors per runtime */
#define MAX_DEPTH 1024         /* deeper actors stop together with depth 1023 */
#define SLOT_BATCH 32          /* slots moved between a context and the table at once */

struct timers;
struct names;
struct sched;
struct links;
struct procs;
struct watchdog;
struct port_ctrs;
struct remote;

struct tr_runtime {
    uint64_t node;
    char name[64];
    uint32_t batch;
    uint32_t spin_ns;

    /* Actor table. chunks[] entries are published with release stores. */
    _Atomic(tr_actor *) chunks[TABLE_MAX_CHUNKS];
    pthread_mutex_t table_lock;
    tr_actor *free_slots;    /* table_lock */
    _Atomic uint32_t nslots; /* slots initialised so far (written under table_lock) */
    _Atomic bool stopping;   /* no spawns once set (see tr__slot_alloc) */
    _Atomic bool stopped;    /* workers gone: sends fail with TR_ESTOPPED */
    _Atomic uint64_t live_at_depth[MAX_DEPTH];
    _Atomic uint64_t live_trap_stop[MAX_DEPTH]; /* live trap_stop actors by depth */
    _Atomic uint32_t max_depth;
    _Atomic uint64_t live;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cv; /* signalled when a depth's live count reaches 0 */

    _Atomic uint64_t next_corr; /* request correlation and monitor ids */

    struct sched *sched;
    struct timers *timers;
    struct names *names;
    struct links *links;           /* node links (link_node.c); made at start, idle until used */
    size_t max_frame;              /* largest link frame sent or accepted */
    _Atomic(struct procs *) procs; /* process actors; NULL until the first is spawned */
    uint32_t proc_warm;            /* warm process children to keep (process.h) */
    struct watchdog *watchdog;     /* NULL when off */
    _Atomic(struct port_ctrs *) ports; /* port counters; NULL until the first port */

    /* remote.c: behaviours, the node kernel, node events; made on first use. */
    _Atomic(struct remote *) remote;

    /* Non-worker contexts (thread actors, attached threads, timer) and the
     * thread actor records, reusable once their thread finished. */
    pthread_mutex_t ctx_lock;
    tr_ctx *ctx_list;             /* ctx_lock */
    struct thread_actor *thr_all; /* ctx_lock: every record ever made */
    ctr_set retired;              /* counters of contexts that ended */

    tr_ctx stop_ctx;           /* used by the thread running tr_runtime_stop */
    bool stop_done;            /* stop_lock: tr_runtime_stop finished */
    _Atomic uint32_t spawning; /* spawns between slot allocation and set-up */

    /* Message node pool shared by the per-thread caches. */
    pthread_mutex_t pool_lock;
    tr_msg *pool_batches; /* batches chained through ->corr */
    uint32_t pool_nbatches;
};

/* ------------------------------------------------------------------------ */
/* Functions shared across files                                             */
/* ------------------------------------------------------------------------ */

/* Monotonic clock in nanoseconds. */
uint64_t tr__now_ns(void);

/* msg.c: node allocation through a context's cache (ctx may be NULL). */
tr_msg *tr__msg_alloc(tr_ctx *ctx);
void tr__msg_release(tr_ctx *ctx, tr_msg *m);
tr_err tr__msg_reserve(tr_msg *m, size_t extra);
/* Frees a node the mailbox stopped holding, if its owner released it. */
void tr__msg_dispose_released(tr_ctx *ctx, mbox_node *node);
void tr__msg_cache_drain(tr_runtime *rt, msg_cache *c);
void tr__msg_pool_free(tr_runtime *rt);
tr_err tr__msg_set_tag(tr_msg *m, const char *tag);
/* Encodes / decodes a reason as a msgpack [kind, code, text] payload. */
tr_err tr__pack_reason(tr_msg *m, const tr_reason *why);
tr_err tr__unpack_reason(const uint8_t *p, size_t len, tr_reason *why);

/* actor.c */
tr_actor *tr__actor_lookup(tr_runtime *rt, uint32_t id);
tr_ref tr__actor_ref(tr_runtime *rt, tr_actor *a);
/* Pushes m (consumed always) to a, scheduling a if it was idle. Pushes
 * the context's buffered sends first, so a sender's messages keep their
 * order. */
void tr__deliver(tr_ctx *ctx, tr_actor *a, tr_msg *m);
/* Pushes the user messages a worker buffered while handling a message. */
void tr__send_flush(tr_ctx *ctx);
/* Sends a user message with request fields; consumes m on TR_OK only. */
tr_err tr__send_user(tr_ctx *ctx, tr_ref to, tr_msg *m, uint8_t flags, uint64_t corr,
                     uint64_t deadline);
/* Delivers a message that came in over a link to local actor `to`: as a
 * local send would, or as a dead letter. Consumes m. */
void tr__deliver_inbound(tr_ctx *ctx, tr_ref to, tr_msg *m);
/* Sends a runtime-made message: resolves, counts, consumes m on every
 * result. Returns TR_ENOACTOR for a dead or unknown receiver. */
tr_err tr__send_system(tr_ctx *ctx, tr_ref to, tr_msg *m);
/* Builds and sends a system message of kind with an optional reason. */
tr_err tr__signal(tr_ctx *ctx, tr_ref to, tr_ref from, uint8_t kind, uint8_t flags, uint64_t corr,
                  const tr_reason *why);
/* Handles one popped message for the slot's consumer. Returns the message
 * to hand to user code (a user message, or a trapped EXIT / DOWN) or NULL
 * when the runtime consumed it. */
tr_msg *tr__process(tr_ctx *ctx, tr_actor *a, tr_msg *m);
/* True when m, a counted message at the head of a drop-oldest mailbox, is
 * older than the newest `limit` messages and must go. Consumer only. */
bool tr__overflowed(tr_actor *a, const tr_msg *m);
/* Records that a counted message left a bounded mailbox (received or
 * disposed). Consumer only. */
void tr__uncount(tr_actor *a, const tr_msg *m);
void tr__uncount_one(tr_actor *a);
/* Runs terminate and all exit duties of ctx->actor with ctx->exit_reason. */
void tr__finish_exit(tr_ctx *ctx);
/* Allocates a slot for a new incarnation (table lock). A successful call
 * counts a spawn in flight, which tr__spawn_done ends once the incarnation
 * is set up or undone: shutdown waits for spawns in flight. */
tr_err tr__slot_alloc(tr_runtime *rt, tr_ctx *ctx, tr_actor **out, uint16_t depth);
void tr__spawn_done(tr_runtime *rt);
/* Returns a dead slot for reuse, through ctx's cache. */
void tr__slot_publish_free(tr_runtime *rt, tr_ctx *ctx, tr_actor *a);
/* Counts and disposes of a message that reached no live actor, answering
 * links, monitors and requests on the dead actor's behalf. */
void tr__dead_letter(tr_ctx *ctx, tr_actor *a, tr_msg *m);
void tr__counters_fold(ctr_set *into, const ctr_set *from);

/* exitsig.c */
struct actor_ext *tr__ext(tr_actor *a);
void tr__ext_free(tr_actor *a);
void tr__links_add(tr_actor *a, tr_ref r);
bool tr__links_remove(tr_actor *a, tr_ref r);
/* Processes MK_LINK / UNLINK / EXIT / MONITOR / DEMONITOR / DOWN. */
tr_msg *tr__process_signal(tr_ctx *ctx, tr_actor *a, tr_msg *m);
/* Sends exit signals and DOWNs for ctx->actor, which is exiting. */
void tr__exit_propagate(tr_ctx *ctx, tr_actor *a, tr_ref self, const tr_reason *why);

/* request.c */
tr_msg *tr__process_reply(tr_ctx *ctx, tr_actor *a, tr_msg *m);
void tr__pending_fail_all(tr_ctx *ctx, tr_actor *a);

/* sched.c */
tr_err tr__sched_start(tr_runtime *rt, uint32_t workers);
void tr__sched_stop(tr_runtime *rt);
void tr__sched_free(tr_runtime *rt);
/* Makes a (which was idle) runnable: a worker queue or its thread. */
void tr__schedule(tr_ctx *ctx, tr_actor *a);
uint32_t tr__sched_workers(const tr_runtime *rt);
/* Gives a slot's consumer role to the pool (global queue). */
void tr__sched_inject(tr_runtime *rt, tr_actor *a);
void tr__sched_counters(tr_runtime *rt, ctr_set *sum);
/* True when the calling thread runs actors of rt (a worker or a thread
 * actor), where waiting for rt's shutdown would wait for itself. */
bool tr__on_runtime_thread(const tr_runtime *rt);
/* Marks the calling thread as one of rt's actor threads. */
void tr__set_runtime_thread(tr_runtime *rt);

/* thread_actor.c */
void tr__thread_wake(struct thread_actor *t);
/* Starts the thread of a new thread actor for slot a; it waits for the
 * consumer role. Does not publish it in a->thr. */
tr_err tr__thread_spawn(tr_ctx *ctx, tr_actor *a, const struct init_info *info,
                        struct thread_actor **out);
void tr__threads_join_all(tr_runtime *rt);
void tr__threads_free(tr_runtime *rt);
void tr__threads_counters(tr_runtime *rt, ctr_set *sum);
/* Blocking-call support for thread contexts (request.c). */
tr_err tr__thread_wait_reply(tr_ctx *ctx, uint64_t corr, uint64_t deadline, tr_msg **reply);
bool tr__thread_take_reply(tr_ctx *ctx, tr_msg *m);

/* timer.c */
tr_err tr__timers_start(tr_runtime *rt);
void tr__timers_stop(tr_runtime *rt);
void tr__timers_free(tr_runtime *rt);
void tr__timers_counters(tr_runtime *rt, ctr_set *sum);
/* Schedules m to `to` at monotonic time at_ns, repeating every period_ns
 * if non-zero. Consumes m on TR_OK. */
tr_err tr__timer_add(tr_runtime *rt, tr_ref to, tr_msg *m, uint64_t at_ns, uint64_t period_ns,
                     tr_timer_id *id);
tr_err tr__timer_cancel(tr_runtime *rt, tr_timer_id id);

/* link.c, link_node.c */
/* Makes rt's (idle) node links from the options: no thread, no nng. */
tr_err tr__links_init(tr_runtime *rt, const tr_runtime_opts *o);
/* Sends m to an actor on another node. Consumes m on TR_OK. TR_ENOROUTE
 * when the node is unknown or down. */
tr_err tr__link_send(tr_ctx *ctx, tr_ref to, tr_msg *m);
/* True when this runtime has a live link (session) to node. */
bool tr__link_known(tr_runtime *rt, uint64_t node);
/* Closes the link to node for good (it will not come back): its peer is
 * retired for reuse and the node leaves tr_nodes. */
void tr__link_forget(tr_runtime *rt, uint64_t node);
/* remote.c: drops node from tr_nodes and its per-node subscriptions. */
void tr__node_forget(tr_runtime *rt, uint64_t node);
/* Drains (waits up to the drain time for peers to acknowledge what was
 * sent), says BYE, closes every connection and waits for their callbacks.
 * Blocking; called once actors are stopped. */
void tr__links_close(tr_runtime *rt);
void tr__links_free(tr_runtime *rt);
void tr__links_counters(tr_runtime *rt, ctr_set *sum);

/* process.c / procsrv.c (see process.h) */
/* The stand-in behaviour of process actors: actor.c routes STOP and
 * PROCEXIT to its handler. */
extern const tr_behaviour tr__proxy_beh;
tr_err tr__proc_spawn(tr_ref *out, tr_ctx *ctx, const tr_behaviour *b, tr_msg *args,
                      const tr_spawn_opts *o);
/* Forks the process-wide fork server on the first call (tr_runtime_start). */
void tr__procs_boot(void);
/* Stops: kills and reaps the processes still running for rt. */
void tr__procs_stop(tr_runtime *rt);
void tr__procs_free(tr_runtime *rt);
void tr__procs_counters(tr_runtime *rt, ctr_set *sum);
/* True when node is a warm process child of rt that no actor runs in yet:
 * node monitors do not hear of it (an "up" is held until it is bound). */
bool tr__procs_node_hidden(tr_runtime *rt, uint64_t node, const char *name, bool up);
/* A reply from node `from_node` to request corr passed through the link:
 * the stand-in of a process actor on that node stops tracking it. */
void tr__procs_reply_seen(tr_runtime *rt, uint64_t from_node, uint64_t corr);

/* Spawns like tr_spawn; after_go (may be NULL) runs once the actor is live
 * and its INIT queued, so whatever it starts reaches the actor after INIT. */
tr_err tr__spawn_with(tr_ref *out, tr_ctx *ctx, const tr_behaviour *b, tr_msg *args,
                      const tr_spawn_opts *o, void (*after_go)(tr_ref ref, void *arg), void *arg);
/* runtime.c: starts a runtime with a given node id (0 = a random one). */
tr_err tr__runtime_start_as(tr_runtime **out, const tr_runtime_opts *opts, uint64_t node);

/* watchdog.c */
tr_err tr__watchdog_start(tr_runtime *rt, uint32_t budget_ms);
void tr__watchdog_stop(tr_runtime *rt);
void tr__watchdog_free(tr_runtime *rt);
/* The budget, or TR_WATCHDOG_OFF. */
uint32_t tr__watchdog_budget_ms(const tr_runtime *rt);
/* Folds the watchdog's counters into sum; returns the overruns. */
uint64_t tr__watchdog_counters(tr_runtime *rt, ctr_set *sum);
/* Reports an overrun to the subscribers (any thread; ctx sends). */
void tr__watchdog_report(tr_ctx *ctx, tr_ref who, tr_actor_kind kind, uint32_t ms,
                         const char *name);
/* sched.c: calls fn for each worker's probe. */
void tr__sched_probes(tr_runtime *rt, void (*fn)(void *arg, struct wd_probe *p), void *arg);

/* names.c */
tr_err tr__names_init(tr_runtime *rt);
void tr__names_free(tr_runtime *rt);
/* Registers name for ref, checking ref's slot is alive. then (may be NULL)
 * runs first, with the registry locked, so a lookup cannot see the name
 * before then has run; if then fails the name is not registered. */
tr_err tr__names_register(tr_runtime *rt, const char *name, tr_ref ref, tr_actor *a,
                          tr_err (*then)(void *arg), void *arg);
void tr__names_release_all(tr_runtime *rt, tr_ref ref);

/* remote.c */
/* Slot id of the node kernel's well-known reference {node, TR_KERNEL_ID,
 * 0}; incarnation 0 is never alive, so no actor has it. */
#define TR_KERNEL_ID 0u
/* Hook in tr__deliver_inbound: the real reference of this node's kernel,
 * started if need be, for a message to the well-known one; `to` unchanged
 * when the kernel cannot start (the message then becomes a dead letter).
 * Takes a mutex and may push the kernel's INIT; runs no actor code. */
tr_ref tr__kernel_resolve(tr_ctx *ctx, tr_ref to);
/* Hook for the link layer: node (named name) came up (first welcome, or
 * heard again after it was declared down) or went down (declared down, or
 * found restarted: down for the old session, then up). Records it and
 * pushes TR_TAG_NODEUP / TR_TAG_NODEDOWN to subscribers through ctx, the
 * calling link thread's context. Only pushes messages; never blocks or
 * runs actor code. Calls for one node must not overlap. */
void tr__node_event(tr_ctx *ctx, uint64_t node, const char *name, bool up);
/* Frees what remote.c holds; after the link layer is gone. */
void tr__remote_free(tr_runtime *rt);

#endif /* TROUPE_INTERNAL_H */
