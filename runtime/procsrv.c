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
 * one lock, G->lock. The reaper runs while at least one runtime has process
 * actors set up.
 *
 * Warm children (proc_warm.c). Starting a child's runtime and linking it back costs
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
#include "procsrv.h"

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

struct procsrv_state tr__procsrv = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = -1};
static struct procsrv_state *const G = &tr__procsrv;

/* ---- the program image --------------------------------------------------- */

static int seg_collect(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        struct image_seg *n = realloc(G->segs, (G->nsegs + 1) * sizeof *n);
        if (n == NULL)
            return 1;
        G->segs = n;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        G->segs[G->nsegs++] = (struct image_seg){lo, lo + ph->p_memsz, (ph->p_flags & PF_X) != 0};
    }
    return 0;
}

bool tr__procsrv_in_image(const void *p, bool exec)
{
    uintptr_t a = (uintptr_t)p;
    for (size_t i = 0; i < G->nsegs; i++)
        if (a >= G->segs[i].lo && a < G->segs[i].hi && (!exec || G->segs[i].exec))
            return true;
    return false;
}

/* ---- boot and exit ------------------------------------------------------- */

static void procsrv_atexit(void)
{
    pthread_mutex_lock(&G->lock);
    struct forksrv *fs = G->users == 0 ? G->fs : NULL;
    if (fs != NULL)
        G->fs = NULL;
    pthread_mutex_unlock(&G->lock);
    tr__forksrv_stop(fs);
    if (fs != NULL) {
        free(G->segs);
        G->segs = NULL;
        G->nsegs = 0;
        free(G->kids);
        G->kids = NULL;
        G->capkids = 0;
        if (G->wake >= 0)
            close(G->wake);
        G->wake = -1;
    }
}

void tr__procs_boot(void)
{
    pthread_mutex_lock(&G->lock);
    if (!G->booted) {
        G->booted = true;
        /* The segments first: children inherit the list. */
        dl_iterate_phdr(seg_collect, NULL);
        if (tr__forksrv_start(&G->fs) != TR_OK)
            G->fs = NULL;
        else
            atexit(procsrv_atexit);
    }
    pthread_mutex_unlock(&G->lock);
}

void tr__procsrv_child_reset(void)
{
    /* The fork server was forked with G->lock held (by tr__procs_boot):
     * this single-threaded child makes it usable again. It has no fork
     * server of its own (G->fs is NULL in its copy). */
    pthread_mutex_init(&G->lock, NULL);
}

/* ---- the reaper ---------------------------------------------------------- */

ptrdiff_t tr__procsrv_kid_find(int pid)
{
    for (size_t i = 0; i < G->nkids; i++)
        if (G->kids[i].pid == pid)
            return (ptrdiff_t)i;
    return -1;
}

/* G->lock held: room for one more child in G->kids. */
tr_err tr__procsrv_kids_reserve(void)
{
    if (G->nkids < G->capkids)
        return TR_OK;
    size_t cap = G->capkids != 0 ? G->capkids * 2 : 64;
    struct child *n = realloc(G->kids, cap * sizeof *n);
    if (n == NULL)
        return TR_ENOMEM;
    G->kids = n;
    G->capkids = cap;
    return TR_OK;
}

/* Wakes the reaper. G->lock held (G->wake is set under it). */
void tr__procsrv_wake(void)
{
    uint64_t one = 1;
    if (G->wake >= 0 && write(G->wake, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is full, so a wake-up is pending anyway. */
    }
}

/* G->lock held: the process of G->kids[i] ended with status: tells its
 * stand-in (or the pool, or keeps it for the spawn that took it) and
 * forgets the child, or marks it ended. */
static void kid_ended(size_t i, uint64_t status)
{
    struct child c = G->kids[i];
    if (c.state == KID_TAKEN) {
        G->kids[i].state = KID_ENDED;
        G->kids[i].status = status;
    } else {
        G->kids[i] = G->kids[--G->nkids];
    }
    /* The stand-in hears how the process ended before its link is closed
     * (which would tell it "no connection"). */
    if (c.state == KID_BOUND)
        tr__signal(&c.P->ctx, c.proxy, TR_REF_NIL, MK_PROCEXIT, MF_SYSTEM, status, NULL);
    else if (c.state == KID_WARM)
        tr__procwarm_lost(c.P, &c);
    tr__link_forget(c.P->rt, c.node);
    char name[TR_NODE_NAME_MAX + 1];
    tr__procwarm_unhide(c.P, c.node, name); /* a warm child's node: never shown */
    c.P->nlive--;
    pthread_cond_broadcast(&c.P->reaped);
    if (c.state == KID_WARM)
        tr__procsrv_wake();
}

/* G->lock held: reads every exit the fork server has reported. False when
 * the fork server is gone (every child went with it). */
static bool reaper_collect(struct forksrv *fs)
{
    for (;;) {
        int pid, status;
        tr_err err = tr__forksrv_next_exit(fs, &pid, &status, 0);
        if (err == TR_OK) {
            ptrdiff_t i = tr__procsrv_kid_find(pid);
            if (i >= 0 && G->kids[i].state != KID_ENDED)
                kid_ended((size_t)i, PROC_STATUS_KNOWN | (uint32_t)status);
            continue;
        }
        if (err != TR_ESTOPPED)
            return true;
        /* Downwards: kid_ended moves the last entry into slot i. */
        for (size_t i = G->nkids; i-- > 0;)
            if (G->kids[i].state != KID_ENDED)
                kid_ended(i, 0);
        G->fs = NULL;
        return false;
    }
}

static void *reaper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&G->lock);
    while (!G->reaper_stop) {
        uint64_t now = tr__now_ns();
        uint64_t next = now + 100000000ull; /* look at the stop flag this often */
        for (size_t i = 0; i < G->nkids; i++) {
            if (G->kids[i].kill_at == 0 || G->kids[i].state != KID_BOUND)
                continue;
            if (G->kids[i].kill_at <= now) {
                G->kids[i].kill_at = 0;
                tr__forksrv_kill(G->fs, G->kids[i].pid, SIGKILL);
            } else if (G->kids[i].kill_at < next) {
                next = G->kids[i].kill_at;
            }
        }
        struct procs *P = tr__procwarm_due(now, &next);
        if (P != NULL) {
            /* Forking blocks on the fork server: without G->lock, while
             * P->refilling keeps P's stop waiting. */
            P->refilling = true;
            pthread_mutex_unlock(&G->lock);
            tr_err err = tr__proc_warm_fork(P);
            pthread_mutex_lock(&G->lock);
            P->refilling = false;
            if (err != TR_OK) {
                uint32_t shift = P->warm_fails < 16 ? P->warm_fails : 16;
                uint64_t wait = WARM_BACKOFF_MIN_NS << shift;
                P->warm_after =
                    tr__now_ns() + (wait < WARM_BACKOFF_MAX_NS ? wait : WARM_BACKOFF_MAX_NS);
                P->warm_fails++;
            }
            pthread_cond_broadcast(&P->reaped);
            if (!reaper_collect(G->fs))
                break;
            continue;
        }
        struct forksrv *fs = G->fs;
        pthread_mutex_unlock(&G->lock);
        struct pollfd p[2] = {{.fd = tr__forksrv_event_fd(fs), .events = POLLIN},
                              {.fd = G->wake, .events = POLLIN}};
        int wait_ms = (int)((next - now) / 1000000u) + 1;
        if (poll(p, 2, wait_ms) > 0 && (p[1].revents & POLLIN)) {
            uint64_t v;
            if (read(G->wake, &v, sizeof v) < 0) {
                /* EAGAIN: another read took it; nothing to do. */
            }
        }
        pthread_mutex_lock(&G->lock);
        if (!reaper_collect(fs))
            break;
    }
    pthread_mutex_unlock(&G->lock);
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

/* G->lock held: starts the reaper; its wake-up descriptor, made once,
 * lives as long as the fork server. */
static tr_err reaper_start(void)
{
    if (G->reaper_on)
        return TR_OK;
    if (G->wake < 0 && (G->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return TR_ESYS;
    G->reaper_stop = false;
    if (pthread_create(&G->reaper, NULL, reaper_main, NULL) != 0)
        return TR_ESYS;
    G->reaper_on = true;
    return TR_OK;
}

tr_err tr__procs_get(tr_runtime *rt, struct procs **out)
{
    pthread_mutex_lock(&G->lock);
    tr_err err = TR_OK;
    struct procs *P = atomic_load_explicit(&rt->procs, memory_order_acquire);
    if (G->fs == NULL) {
        err = TR_ENOTSUP;
    } else if (P == NULL) {
        err = procs_make(rt, &P);
        if (err == TR_OK) {
            err = reaper_start();
            if (err == TR_OK) {
                G->users++;
                P->next = G->procs;
                G->procs = P;
                atomic_store_explicit(&rt->procs, P, memory_order_release);
                if (P->warm_want > 0)
                    tr__procsrv_wake(); /* fill the pool */
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
    pthread_mutex_unlock(&G->lock);
    *out = P;
    return err;
}

tr_err tr__procsrv_spawn(struct procs *P, tr_ref proxy, uint64_t node, forksrv_entry_fn entry,
                         const void *arg, size_t len, int *pid)
{
    pthread_mutex_lock(&G->lock);
    tr_err err = G->fs == NULL ? TR_ENOTSUP : tr__procsrv_kids_reserve();
    /* The lock stays held across the fork so that the reaper cannot see
     * the exit before the child is in the table. */
    if (err == TR_OK)
        err = tr__forksrv_spawn(G->fs, entry, arg, len, pid);
    if (err == TR_OK) {
        G->kids[G->nkids++] =
            (struct child){.pid = *pid, .P = P, .proxy = proxy, .node = node, .fd = -1};
        P->nlive++;
    }
    pthread_mutex_unlock(&G->lock);
    return err;
}

void tr__procsrv_kill(tr_ref proxy, int sig, uint64_t at_ns)
{
    pthread_mutex_lock(&G->lock);
    ptrdiff_t i = -1;
    for (size_t k = 0; k < G->nkids && i < 0; k++)
        if (G->kids[k].state == KID_BOUND && tr_ref_eq(G->kids[k].proxy, proxy))
            i = (ptrdiff_t)k;
    if (i >= 0 && G->fs != NULL) {
        if (at_ns == 0)
            tr__forksrv_kill(G->fs, G->kids[i].pid, sig);
        else if (G->kids[i].kill_at == 0 || at_ns < G->kids[i].kill_at)
            G->kids[i].kill_at = at_ns;
    }
    pthread_mutex_unlock(&G->lock);
}

void tr__procs_stop(tr_runtime *rt)
{
    struct procs *P = atomic_load_explicit(&rt->procs, memory_order_acquire);
    if (P == NULL)
        return;
    pthread_mutex_lock(&G->lock);
    /* No more warm children, and none half-forked. */
    P->closing = true;
    while (P->refilling)
        pthread_cond_wait(&P->reaped, &G->lock);
    /* Every stand-in has ended; what is still running (warm children
     * among it) is killed. */
    for (size_t i = 0; i < G->nkids; i++)
        if (G->kids[i].P == P && G->kids[i].state != KID_ENDED && G->fs != NULL)
            tr__forksrv_kill(G->fs, G->kids[i].pid, SIGKILL);
    while (P->nlive > 0 && G->reaper_on)
        pthread_cond_wait(&P->reaped, &G->lock);
    /* Without a reaper (the fork server died), nothing reports these. */
    for (size_t i = G->nkids; i-- > 0;)
        if (G->kids[i].P == P) {
            if (G->kids[i].fd >= 0)
                close(G->kids[i].fd);
            G->kids[i] = G->kids[--G->nkids];
        }
    pthread_mutex_unlock(&G->lock);
}

void tr__procs_free(tr_runtime *rt)
{
    struct procs *P = atomic_load_explicit(&rt->procs, memory_order_acquire);
    if (P == NULL)
        return;
    tr__procs_stop(rt);
    pthread_mutex_lock(&G->lock);
    for (struct procs **pp = &G->procs; *pp != NULL; pp = &(*pp)->next)
        if (*pp == P) {
            *pp = P->next;
            break;
        }
    bool join = --G->users == 0 && G->reaper_on;
    if (join) {
        G->reaper_stop = true;
        G->reaper_on = false;
        tr__procsrv_wake();
    }
    pthread_mutex_unlock(&G->lock);
    if (join)
        pthread_join(G->reaper, NULL);
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
