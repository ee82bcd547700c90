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
 */
#define _GNU_SOURCE
#include "process.h"

#include <errno.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct image_seg {
    uintptr_t lo, hi;
    bool exec;
};

struct child {
    int pid;
    struct procs *P;
    tr_ref proxy;
    uint64_t node;    /* the child's node */
    uint64_t kill_at; /* monotonic ns; 0 = none */
};

static struct {
    pthread_mutex_t lock;
    bool booted;        /* boot ran (in this process or the one it was forked from) */
    struct forksrv *fs; /* NULL: no process actors here */
    struct image_seg *segs;
    size_t nsegs;
    struct child *kids; /* live children of every runtime */
    size_t nkids, capkids;
    uint32_t users; /* runtimes with a procs set-up */
    pthread_t reaper;
    bool reaper_on;
    bool reaper_stop;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

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

/* ---- the reaper ---------------------------------------------------------- */

static ptrdiff_t kid_find(int pid)
{
    for (size_t i = 0; i < g.nkids; i++)
        if (g.kids[i].pid == pid)
            return (ptrdiff_t)i;
    return -1;
}

/* g.lock held: tells the stand-in and forgets the child. */
static void kid_ended(size_t i, uint64_t status)
{
    struct child c = g.kids[i];
    g.kids[i] = g.kids[--g.nkids];
    /* The stand-in hears how the process ended before its link is closed
     * (which would tell it "no connection"). */
    tr__signal(&c.P->ctx, c.proxy, TR_REF_NIL, MK_PROCEXIT, MF_SYSTEM, status, NULL);
    tr__link_forget(c.P->rt, c.node);
    c.P->nlive--;
    pthread_cond_broadcast(&c.P->reaped);
}

static void *reaper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g.lock);
    while (!g.reaper_stop) {
        uint64_t now = tr__now_ns();
        uint64_t next = now + 100000000ull; /* look at the stop flag this often */
        for (size_t i = 0; i < g.nkids; i++) {
            if (g.kids[i].kill_at == 0)
                continue;
            if (g.kids[i].kill_at <= now) {
                g.kids[i].kill_at = 0;
                tr__forksrv_kill(g.fs, g.kids[i].pid, SIGKILL);
            } else if (g.kids[i].kill_at < next) {
                next = g.kids[i].kill_at;
            }
        }
        struct forksrv *fs = g.fs;
        pthread_mutex_unlock(&g.lock);
        int pid, status;
        int wait_ms = (int)((next - now) / 1000000u) + 1;
        tr_err err = tr__forksrv_next_exit(fs, &pid, &status, wait_ms);
        pthread_mutex_lock(&g.lock);
        if (err == TR_OK) {
            ptrdiff_t i = kid_find(pid);
            if (i >= 0)
                kid_ended((size_t)i, PROC_STATUS_KNOWN | (uint32_t)status);
        } else if (err == TR_ESTOPPED) {
            /* The fork server died and took its children with it. */
            while (g.nkids > 0)
                kid_ended(g.nkids - 1, 0);
            g.fs = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&g.lock);
    return NULL;
}

/* ---- per runtime --------------------------------------------------------- */

static tr_err procs_make(tr_runtime *rt, struct procs **out)
{
    struct procs *P = calloc(1, sizeof *P);
    if (P == NULL)
        return TR_ENOMEM;
    P->rt = rt;
    P->ctx.rt = rt;
    P->ctx.type = CTX_TIMER;
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
        pthread_cond_destroy(&P->reaped);
        pthread_mutex_destroy(&P->mu);
        free(P);
        return err;
    }
    *out = P;
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
            if (!g.reaper_on) {
                g.reaper_stop = false;
                if (pthread_create(&g.reaper, NULL, reaper_main, NULL) == 0)
                    g.reaper_on = true;
                else
                    err = TR_ESYS;
            }
            if (err == TR_OK) {
                g.users++;
                atomic_store_explicit(&rt->procs, P, memory_order_release);
            } else {
                /* undo the directory; the listener goes with the runtime */
                char path[PROC_PATH_MAX + 16];
                snprintf(path, sizeof path, "%s/node.sock", P->dir);
                unlink(path);
                rmdir(P->dir);
                pthread_cond_destroy(&P->reaped);
                pthread_mutex_destroy(&P->mu);
                free(P);
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
    tr_err err = TR_OK;
    if (g.fs == NULL) {
        err = TR_ENOTSUP;
    } else if (g.nkids == g.capkids) {
        size_t cap = g.capkids != 0 ? g.capkids * 2 : 64;
        struct child *n = realloc(g.kids, cap * sizeof *n);
        if (n == NULL)
            err = TR_ENOMEM;
        else {
            g.kids = n;
            g.capkids = cap;
        }
    }
    /* The lock stays held across the fork so that the reaper cannot see
     * the exit before the child is in the table. */
    if (err == TR_OK)
        err = tr__forksrv_spawn(g.fs, entry, arg, len, pid);
    if (err == TR_OK) {
        g.kids[g.nkids++] = (struct child){*pid, P, proxy, node, 0};
        P->nlive++;
    }
    pthread_mutex_unlock(&g.lock);
    return err;
}

void tr__procsrv_kill(tr_ref proxy, int sig, uint64_t at_ns)
{
    pthread_mutex_lock(&g.lock);
    ptrdiff_t i = -1;
    for (size_t k = 0; k < g.nkids && i < 0; k++)
        if (tr_ref_eq(g.kids[k].proxy, proxy))
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
    /* Every stand-in has ended; what is still running is killed. */
    for (size_t i = 0; i < g.nkids; i++)
        if (g.kids[i].P == P && g.fs != NULL)
            tr__forksrv_kill(g.fs, g.kids[i].pid, SIGKILL);
    while (P->nlive > 0 && g.reaper_on)
        pthread_cond_wait(&P->reaped, &g.lock);
    pthread_mutex_unlock(&g.lock);
}

void tr__procs_free(tr_runtime *rt)
{
    struct procs *P = atomic_load_explicit(&rt->procs, memory_order_acquire);
    if (P == NULL)
        return;
    tr__procs_stop(rt);
    pthread_mutex_lock(&g.lock);
    bool join = --g.users == 0 && g.reaper_on;
    if (join) {
        g.reaper_stop = true;
        g.reaper_on = false;
    }
    pthread_mutex_unlock(&g.lock);
    if (join)
        pthread_join(g.reaper, NULL);
    char path[PROC_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/node.sock", P->dir);
    unlink(path);
    rmdir(P->dir);
    tr__msg_cache_drain(rt, &P->ctx.cache);
    free(P->proxies);
    pthread_cond_destroy(&P->reaped);
    pthread_mutex_destroy(&P->mu);
    free(P);
    atomic_store_explicit(&rt->procs, NULL, memory_order_release);
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
