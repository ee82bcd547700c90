/*
 * procsrv.c — the process-wide side of process actors: one fork server per
 * process, forked by the first tr_runtime_start while the process is still
 * single-threaded and has not touched nng; one reaper thread that turns
 * child exits into MK_PROCEXIT messages for the stand-ins, and kills
 * children whose stop deadline passed; and each runtime's private
 * directory and ipc:// listener that its children connect to.
 *
 * Several runtimes in a process share the fork server (it can only be
 * forked once, early), so exits are routed by pid through a table under
 * one lock, g.lock. The reaper runs while at least one runtime has process
 * actors set up.
 *
 * Warm children. Starting a child's runtime and linking it back costs
 * milliseconds, so each runtime keeps up to warm_want children forked
 * ahead: started, linked, and waiting on a private socket pair for their
 * assignment (what the actor is). A spawn takes one (tr__procsrv_take_warm)
 * and hands it the job over that socket once the stand-in exists
 * (tr__procsrv_bind); until then the child is the pool's and its exit is
 * nobody's business but the pool's. The reaper forks replacements, off
 * any worker, a few milliseconds after a take (measured: a replacement
 * starting at once slowed the restart that took the child by about a
 * third on two cores); a warm child that dies before it linked makes the next
 * refill wait (backing off), so a child that cannot start does not make
 * the reaper fork in a loop. A warm child's node is kept out of node
 * monitors until it is bound (tr__procs_node_hidden): then its "up" is
 * passed on, so node events look as for a child forked for its spawn,
 * and a warm child that never gets an actor is nobody's node event.
 */
#define _GNU_SOURCE
#include "process.h"

#include <assert.h>
#include <errno.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

static struct {
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
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = -1};

/* ---- the program image --------------------------------------------------- */

static int seg_collect(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        struct image_seg *n = realloc(g.segs, (g.nsegs + 1) * sizeof *n);
        if (n == NULL)
            return 1;
        g.segs = n;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        g.segs[g.nsegs++] = (struct image_seg){lo, lo + ph->p_memsz, (ph->p_flags & PF_X) != 0};
    }
    return 0;
}

bool tr__procsrv_in_image(const void *p, bool exec)
{
    uintptr_t a = (uintptr_t)p;
    for (size_t i = 0; i < g.nsegs; i++)
        if (a >= g.segs[i].lo && a < g.segs[i].hi && (!exec || g.segs[i].exec))
            return true;
    return false;
}

/* ---- boot and exit ------------------------------------------------------- */

static void procsrv_atexit(void)
{
    pthread_mutex_lock(&g.lock);
    struct forksrv *fs = g.users == 0 ? g.fs : NULL;
    if (fs != NULL)
        g.fs = NULL;
    pthread_mutex_unlock(&g.lock);
    tr__forksrv_stop(fs);
    if (fs != NULL) {
        free(g.segs);
        g.segs = NULL;
        g.nsegs = 0;
        free(g.kids);
        g.kids = NULL;
        g.capkids = 0;
        if (g.wake >= 0)
            close(g.wake);
        g.wake = -1;
    }
}

void tr__procs_boot(void)
{
    pthread_mutex_lock(&g.lock);
    if (!g.booted) {
        g.booted = true;
        /* The segments first: children inherit the list. */
        dl_iterate_phdr(seg_collect, NULL);
        if (tr__forksrv_start(&g.fs) != TR_OK)
            g.fs = NULL;
        else
            atexit(procsrv_atexit);
    }
    pthread_mutex_unlock(&g.lock);
}

void tr__procsrv_child_reset(void)
{
    /* The fork server was forked with g.lock held (by tr__procs_boot):
     * this single-threaded child makes it usable again. It has no fork
     * server of its own (g.fs is NULL in its copy). */
    pthread_mutex_init(&g.lock, NULL);
}

/* ---- hidden nodes -------------------------------------------------------- */

static void hidden_add(struct procs *P, uint64_t node)
{
    pthread_mutex_lock(&P->mu);
    if (P->nhidden == P->caphidden) {
        uint32_t cap = P->caphidden != 0 ? P->caphidden * 2 : 8;
        struct hidden_node *n = realloc(P->hidden, cap * sizeof *n);
        if (n != NULL) {
            P->hidden = n;
            P->caphidden = cap;
        }
    }
    /* Without memory the warm child's node shows in node monitors early;
     * nothing else fails. */
    if (P->nhidden < P->caphidden)
        P->hidden[P->nhidden++] = (struct hidden_node){.node = node};
    pthread_mutex_unlock(&P->mu);
}

/* Stops hiding node. True (with its name in name) when the link said it
 * is up meanwhile: the caller passes that on. */
static bool hidden_del(struct procs *P, uint64_t node, char name[TR_NODE_NAME_MAX + 1])
{
    bool up = false;
    pthread_mutex_lock(&P->mu);
    for (uint32_t i = 0; i < P->nhidden; i++)
        if (P->hidden[i].node == node) {
            up = P->hidden[i].up_held;
            memcpy(name, P->hidden[i].name, TR_NODE_NAME_MAX + 1);
            P->hidden[i] = P->hidden[--P->nhidden];
            break;
        }
    pthread_mutex_unlock(&P->mu);
    return up;
}

bool tr__procs_node_hidden(tr_runtime *rt, uint64_t node, const char *name, bool up)
{
    struct procs *P = atomic_load_explicit(&rt->procs, memory_order_acquire);
    if (P == NULL)
        return false;
    bool found = false;
    pthread_mutex_lock(&P->mu);
    for (uint32_t i = 0; i < P->nhidden && !found; i++) {
        struct hidden_node *h = &P->hidden[i];
        if (h->node != node)
            continue;
        found = true;
        h->up_held = up;
        snprintf(h->name, sizeof h->name, "%s", name != NULL ? name : "");
    }
    pthread_mutex_unlock(&P->mu);
    return found;
}

/* ---- the reaper ---------------------------------------------------------- */

static ptrdiff_t kid_find(int pid)
{
    for (size_t i = 0; i < g.nkids; i++)
        if (g.kids[i].pid == pid)
            return (ptrdiff_t)i;
    return -1;
}

/* g.lock held: room for one more child in g.kids. */
static tr_err kids_reserve(void)
{
    if (g.nkids < g.capkids)
        return TR_OK;
    size_t cap = g.capkids != 0 ? g.capkids * 2 : 64;
    struct child *n = realloc(g.kids, cap * sizeof *n);
    if (n == NULL)
        return TR_ENOMEM;
    g.kids = n;
    g.capkids = cap;
    return TR_OK;
}

/* Wakes the reaper. g.lock held (g.wake is set under it). */
static void reaper_wake(void)
{
    uint64_t one = 1;
    if (g.wake >= 0 && write(g.wake, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is full, so a wake-up is pending anyway. */
    }
}

/* g.lock held: a warm child's socket says whether it linked (true once
 * its byte came) and whether it is still alive (false: its end closed). */
static bool warm_probe(struct child *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0)
        return true;
    if (!c->linked && (p.revents & POLLIN)) {
        char b;
        if (recv(c->fd, &b, 1, MSG_DONTWAIT) == 1)
            c->linked = true;
    }
    return (p.revents & (POLLHUP | POLLERR)) == 0;
}

/* g.lock held: a warm child of P ended idle. One that never linked makes
 * the next refill wait, longer each time in a row. */
static void warm_lost(struct procs *P, struct child *c)
{
    warm_probe(c);
    close(c->fd);
    P->nwarm--;
    if (c->linked) {
        P->warm_fails = 0;
    } else {
        uint32_t shift = P->warm_fails < 16 ? P->warm_fails : 16;
        uint64_t wait = WARM_BACKOFF_MIN_NS << shift;
        P->warm_after = tr__now_ns() + (wait < WARM_BACKOFF_MAX_NS ? wait : WARM_BACKOFF_MAX_NS);
        P->warm_fails++;
    }
}

/* g.lock held: the process of g.kids[i] ended with status: tells its
 * stand-in (or the pool, or keeps it for the spawn that took it) and
 * forgets the child, or marks it ended. */
static void kid_ended(size_t i, uint64_t status)
{
    struct child c = g.kids[i];
    if (c.state == KID_TAKEN) {
        g.kids[i].state = KID_ENDED;
        g.kids[i].status = status;
    } else {
        g.kids[i] = g.kids[--g.nkids];
    }
    /* The stand-in hears how the process ended before its link is closed
     * (which would tell it "no connection"). */
    if (c.state == KID_BOUND)
        tr__signal(&c.P->ctx, c.proxy, TR_REF_NIL, MK_PROCEXIT, MF_SYSTEM, status, NULL);
    else if (c.state == KID_WARM)
        warm_lost(c.P, &c);
    tr__link_forget(c.P->rt, c.node);
    char name[TR_NODE_NAME_MAX + 1];
    hidden_del(c.P, c.node, name); /* a warm child's node: never shown */
    c.P->nlive--;
    pthread_cond_broadcast(&c.P->reaped);
    if (c.state == KID_WARM)
        reaper_wake();
}

/* g.lock held: a runtime that wants a warm child now, or NULL; lowers
 * *next to the earliest time a refill waits for. */
static struct procs *warm_due(uint64_t now, uint64_t *next)
{
    for (struct procs *P = g.procs; P != NULL; P = P->next) {
        if (P->closing || P->nwarm >= P->warm_want ||
            atomic_load_explicit(&P->rt->stopping, memory_order_acquire))
            continue;
        if (P->warm_after <= now)
            return P;
        if (P->warm_after < *next)
            *next = P->warm_after;
    }
    return NULL;
}

/* g.lock held: reads every exit the fork server has reported. False when
 * the fork server is gone (every child went with it). */
static bool reaper_collect(struct forksrv *fs)
{
    for (;;) {
        int pid, status;
        tr_err err = tr__forksrv_next_exit(fs, &pid, &status, 0);
        if (err == TR_OK) {
            ptrdiff_t i = kid_find(pid);
            if (i >= 0 && g.kids[i].state != KID_ENDED)
                kid_ended((size_t)i, PROC_STATUS_KNOWN | (uint32_t)status);
            continue;
        }
        if (err != TR_ESTOPPED)
            return true;
        /* Downwards: kid_ended moves the last entry into slot i. */
        for (size_t i = g.nkids; i-- > 0;)
            if (g.kids[i].state != KID_ENDED)
                kid_ended(i, 0);
        g.fs = NULL;
        return false;
    }
}

static void *reaper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g.lock);
    while (!g.reaper_stop) {
        uint64_t now = tr__now_ns();
        uint64_t next = now + 100000000ull; /* look at the stop flag this often */
        for (size_t i = 0; i < g.nkids; i++) {
            if (g.kids[i].kill_at == 0 || g.kids[i].state != KID_BOUND)
                continue;
            if (g.kids[i].kill_at <= now) {
                g.kids[i].kill_at = 0;
                tr__forksrv_kill(g.fs, g.kids[i].pid, SIGKILL);
            } else if (g.kids[i].kill_at < next) {
                next = g.kids[i].kill_at;
            }
        }
        struct procs *P = warm_due(now, &next);
        if (P != NULL) {
            /* Forking blocks on the fork server: without g.lock, while
             * P->refilling keeps P's stop waiting. */
            P->refilling = true;
            pthread_mutex_unlock(&g.lock);
            tr_err err = tr__proc_warm_fork(P);
            pthread_mutex_lock(&g.lock);
            P->refilling = false;
            if (err != TR_OK) {
                uint32_t shift = P->warm_fails < 16 ? P->warm_fails : 16;
                uint64_t wait = WARM_BACKOFF_MIN_NS << shift;
                P->warm_after =
                    tr__now_ns() + (wait < WARM_BACKOFF_MAX_NS ? wait : WARM_BACKOFF_MAX_NS);
                P->warm_fails++;
            }
            pthread_cond_broadcast(&P->reaped);
            if (!reaper_collect(g.fs))
                break;
            continue;
        }
        struct forksrv *fs = g.fs;
        pthread_mutex_unlock(&g.lock);
        struct pollfd p[2] = {{.fd = tr__forksrv_event_fd(fs), .events = POLLIN},
                              {.fd = g.wake, .events = POLLIN}};
        int wait_ms = (int)((next - now) / 1000000u) + 1;
        if (poll(p, 2, wait_ms) > 0 && (p[1].revents & POLLIN)) {
            uint64_t v;
            if (read(g.wake, &v, sizeof v) < 0) {
                /* EAGAIN: another read took it; nothing to do. */
            }
        }
        pthread_mutex_lock(&g.lock);
        if (!reaper_collect(fs))
            break;
    }
    pthread_mutex_unlock(&g.lock);
    return NULL;
}

/* ---- per runtime --------------------------------------------------------- */

static void procs_destroy(struct procs *P)
{
    pthread_cond_destroy(&P->reaped);
    pthread_mutex_destroy(&P->mu);
    free(P->hidden);
    free(P);
}

static tr_err procs_make(tr_runtime *rt, struct procs **out)
{
    struct procs *P = calloc(1, sizeof *P);
    if (P == NULL)
        return TR_ENOMEM;
    P->rt = rt;
    P->ctx.rt = rt;
    P->ctx.type = CTX_TIMER;
    P->warm_want = rt->proc_warm;
    pthread_cond_init(&P->reaped, NULL);
    pthread_mutex_init(&P->mu, NULL);
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0' || strlen(tmp) > 40)
        tmp = "/tmp";
    snprintf(P->dir, sizeof P->dir, "%s/troupe-XXXXXX", tmp);
    tr_err err = TR_OK;
    if (mkdtemp(P->dir) == NULL) {
        err = TR_ESYS;
    } else {
        snprintf(P->url, sizeof P->url, "ipc://%s/node.sock", P->dir);
        err = tr_listen(rt, P->url);
        if (err != TR_OK)
            rmdir(P->dir);
    }
    if (err != TR_OK) {
        procs_destroy(P);
        return err;
    }
    *out = P;
    return TR_OK;
}

/* g.lock held: starts the reaper; its wake-up descriptor, made once,
 * lives as long as the fork server. */
static tr_err reaper_start(void)
{
    if (g.reaper_on)
        return TR_OK;
    if (g.wake < 0 && (g.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return TR_ESYS;
    g.reaper_stop = false;
    if (pthread_create(&g.reaper, NULL, reaper_main, NULL) != 0)
        return TR_ESYS;
    g.reaper_on = true;
    return TR_OK;
}

tr_err tr__procs_get(tr_runtime *rt, struct procs **out)
{
    pthread_mutex_lock(&g.lock);
    tr_err err = TR_OK;
    struct procs *P = atomic_load_explicit(&rt->procs, memory_order_acquire);
    if (g.fs == NULL) {
        err = TR_ENOTSUP;
    } else if (P == NULL) {
        err = procs_make(rt, &P);
        if (err == TR_OK) {
            err = reaper_start();
            if (err == TR_OK) {
                g.users++;
                P->next = g.procs;
                g.procs = P;
                atomic_store_explicit(&rt->procs, P, memory_order_release);
                if (P->warm_want > 0)
                    reaper_wake(); /* fill the pool */
            } else {
                /* undo the directory; the listener goes with the runtime */
                char path[PROC_PATH_MAX + 16];
                snprintf(path, sizeof path, "%s/node.sock", P->dir);
                unlink(path);
                rmdir(P->dir);
                procs_destroy(P);
                P = NULL;
            }
        }
    }
    pthread_mutex_unlock(&g.lock);
    *out = P;
    return err;
}

tr_err tr__procsrv_spawn(struct procs *P, tr_ref proxy, uint64_t node, forksrv_entry_fn entry,
                         const void *arg, size_t len, int *pid)
{
    pthread_mutex_lock(&g.lock);
    tr_err err = g.fs == NULL ? TR_ENOTSUP : kids_reserve();
    /* The lock stays held across the fork so that the reaper cannot see
     * the exit before the child is in the table. */
    if (err == TR_OK)
        err = tr__forksrv_spawn(g.fs, entry, arg, len, pid);
    if (err == TR_OK) {
        g.kids[g.nkids++] =
            (struct child){.pid = *pid, .P = P, .proxy = proxy, .node = node, .fd = -1};
        P->nlive++;
    }
    pthread_mutex_unlock(&g.lock);
    return err;
}

tr_err tr__procsrv_spawn_warm(struct procs *P, uint64_t node, forksrv_entry_fn entry,
                              const void *arg, size_t len)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0)
        return TR_ESYS;
    hidden_add(P, node);
    pthread_mutex_lock(&g.lock);
    struct forksrv *fs = g.fs;
    tr_err err = fs == NULL ? TR_ENOTSUP : P->closing ? TR_ESTOPPED : TR_OK;
    pthread_mutex_unlock(&g.lock);
    /* Without g.lock: only the reaper forks warm children and only the
     * reaper reads exits, so none can be read before its child is in the
     * table; meanwhile a spawn can bind, a stand-in set a kill. */
    int pid;
    if (err == TR_OK)
        err = tr__forksrv_spawn_fd(fs, entry, arg, len, sp[1], &pid);
    close(sp[1]); /* the child has its own copy */
    if (err == TR_OK) {
        pthread_mutex_lock(&g.lock);
        err = kids_reserve();
        if (err == TR_OK) {
            g.kids[g.nkids++] = (struct child){.pid = pid,
                                               .P = P,
                                               .proxy = TR_REF_NIL,
                                               .node = node,
                                               .fd = sp[0],
                                               .state = KID_WARM};
            P->nwarm++;
            P->nlive++;
        } else {
            tr__forksrv_kill(fs, pid, SIGKILL); /* unknown to the table: its exit is ignored */
        }
        pthread_mutex_unlock(&g.lock);
    }
    if (err != TR_OK) {
        char name[TR_NODE_NAME_MAX + 1];
        close(sp[0]);
        hidden_del(P, node, name);
    }
    return err;
}

bool tr__procsrv_take_warm(struct procs *P, uint64_t *node, int *pid)
{
    pthread_mutex_lock(&g.lock);
    ptrdiff_t best = -1;
    for (size_t i = 0; i < g.nkids && P->nwarm > 0; i++) {
        struct child *c = &g.kids[i];
        if (c->P != P || c->state != KID_WARM || !warm_probe(c))
            continue; /* a dead one is the reaper's to report */
        if (best < 0 || (c->linked && !g.kids[best].linked))
            best = (ptrdiff_t)i;
        if (c->linked)
            break;
    }
    if (best >= 0) {
        struct child *c = &g.kids[best];
        if (c->linked)
            P->warm_fails = 0;
        c->state = KID_TAKEN;
        P->nwarm--;
        *node = c->node;
        *pid = c->pid;
        /* Its replacement, a little later: forking it and starting its
         * runtime would take the cores from the spawn that took this one. */
        uint64_t after = tr__now_ns() + WARM_REFILL_DELAY_NS;
        if (P->warm_after < after)
            P->warm_after = after;
        reaper_wake();
    }
    pthread_mutex_unlock(&g.lock);
    return best >= 0;
}

void tr__procsrv_bind(struct procs *P, int pid, tr_ref proxy, const void *job, size_t len)
{
    pthread_mutex_lock(&g.lock);
    ptrdiff_t i = kid_find(pid);
    assert(i >= 0 && g.kids[i].P == P);
    struct child *c = &g.kids[i];
    if (c->state == KID_ENDED) {
        /* It died after it was taken: the stand-in hears it as its end. */
        uint64_t status = c->status;
        close(c->fd);
        g.kids[i] = g.kids[--g.nkids];
        tr__signal(&P->ctx, proxy, TR_REF_NIL, MK_PROCEXIT, MF_SYSTEM, status, NULL);
    } else {
        c->state = KID_BOUND;
        c->proxy = proxy;
        /* Its node becomes an actor's: node monitors hear it come up now
         * (or when it links, if it has not yet). */
        char name[TR_NODE_NAME_MAX + 1];
        if (hidden_del(P, c->node, name))
            tr__node_event(&P->ctx, c->node, name, true);
        ssize_t n;
        do {
            n = send(c->fd, job, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        warm_probe(c); /* takes its byte: closing over unread data resets */
        close(c->fd);
        c->fd = -1;
        /* A child that cannot read its job is ended; its exit, whenever
         * the fork server reports it, goes to the stand-in. */
        if (n != (ssize_t)len && g.fs != NULL)
            tr__forksrv_kill(g.fs, pid, SIGKILL);
    }
    pthread_mutex_unlock(&g.lock);
}

void tr__procsrv_untake(struct procs *P, int pid)
{
    pthread_mutex_lock(&g.lock);
    ptrdiff_t i = kid_find(pid);
    assert(i >= 0 && g.kids[i].P == P);
    if (g.kids[i].state == KID_ENDED) {
        close(g.kids[i].fd);
        g.kids[i] = g.kids[--g.nkids];
        reaper_wake();
    } else {
        g.kids[i].state = KID_WARM;
        P->nwarm++;
    }
    pthread_mutex_unlock(&g.lock);
}

void tr__procsrv_kill(tr_ref proxy, int sig, uint64_t at_ns)
{
    pthread_mutex_lock(&g.lock);
    ptrdiff_t i = -1;
    for (size_t k = 0; k < g.nkids && i < 0; k++)
        if (g.kids[k].state == KID_BOUND && tr_ref_eq(g.kids[k].proxy, proxy))
            i = (ptrdiff_t)k;
    if (i >= 0 && g.fs != NULL) {
        if (at_ns == 0)
            tr__forksrv_kill(g.fs, g.kids[i].pid, sig);
        else if (g.kids[i].kill_at == 0 || at_ns < g.kids[i].kill_at)
            g.kids[i].kill_at = at_ns;
    }
    pthread_mutex_unlock(&g.lock);
}

void tr__procs_stop(tr_runtime *rt)
{
    struct procs *P = atomic_load_explicit(&rt->procs, memory_order_acquire);
    if (P == NULL)
        return;
    pthread_mutex_lock(&g.lock);
    /* No more warm children, and none half-forked. */
    P->closing = true;
    while (P->refilling)
        pthread_cond_wait(&P->reaped, &g.lock);
    /* Every stand-in has ended; what is still running (warm children
     * among it) is killed. */
    for (size_t i = 0; i < g.nkids; i++)
        if (g.kids[i].P == P && g.kids[i].state != KID_ENDED && g.fs != NULL)
            tr__forksrv_kill(g.fs, g.kids[i].pid, SIGKILL);
    while (P->nlive > 0 && g.reaper_on)
        pthread_cond_wait(&P->reaped, &g.lock);
    /* Without a reaper (the fork server died), nothing reports these. */
    for (size_t i = g.nkids; i-- > 0;)
        if (g.kids[i].P == P) {
            if (g.kids[i].fd >= 0)
                close(g.kids[i].fd);
            g.kids[i] = g.kids[--g.nkids];
        }
    pthread_mutex_unlock(&g.lock);
}

void tr__procs_free(tr_runtime *rt)
{
    struct procs *P = atomic_load_explicit(&rt->procs, memory_order_acquire);
    if (P == NULL)
        return;
    tr__procs_stop(rt);
    pthread_mutex_lock(&g.lock);
    for (struct procs **pp = &g.procs; *pp != NULL; pp = &(*pp)->next)
        if (*pp == P) {
            *pp = P->next;
            break;
        }
    bool join = --g.users == 0 && g.reaper_on;
    if (join) {
        g.reaper_stop = true;
        g.reaper_on = false;
        reaper_wake();
    }
    pthread_mutex_unlock(&g.lock);
    if (join)
        pthread_join(g.reaper, NULL);
    char path[PROC_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/node.sock", P->dir);
    unlink(path);
    rmdir(P->dir);
    atomic_store_explicit(&rt->procs, NULL, memory_order_release);
    tr__msg_cache_drain(rt, &P->ctx.cache);
    free(P->proxies);
    procs_destroy(P);
}

void tr__procs_counters(tr_runtime *rt, ctr_set *sum)
{
    struct procs *P = atomic_load_explicit(&rt->procs, memory_order_acquire);
    if (P != NULL)
        tr__counters_fold(sum, &P->ctx.ctr);
}

void tr__procs_reply_seen(tr_runtime *rt, uint64_t from_node, uint64_t corr)
{
    struct procs *P = atomic_load_explicit(&rt->procs, memory_order_acquire);
    if (P == NULL)
        return;
    pthread_mutex_lock(&P->mu);
    for (uint32_t i = 0; i < P->nproxies; i++)
        if (tr__proxy_node(P->proxies[i]) == from_node) {
            tr__proxy_reply_seen(P->proxies[i], corr);
            break;
        }
    pthread_mutex_unlock(&P->mu);
}
