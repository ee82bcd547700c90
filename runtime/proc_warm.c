/*
 * proc_warm.c — a runtime's warm children: the pool of children forked,
 * started and linked ahead of any spawn (see procsrv.c's header for the
 * whole picture). Taking one for a spawn, binding it to its stand-in with
 * its job, putting it back, forking a replacement (on the reaper), and
 * holding back node events about a warm child's node until it is bound.
 *
 * Everything here works under the process-wide lock (tr__procsrv.lock),
 * except forking a replacement, which only the reaper does. It must not
 * block a worker: a spawn's take and bind are a few system calls on a
 * socket pair, never a fork.
 */
#define _GNU_SOURCE
#include "procsrv.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct procsrv_state *const G = &tr__procsrv;

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
bool tr__procwarm_unhide(struct procs *P, uint64_t node, char name[TR_NODE_NAME_MAX + 1])
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

/* G->lock held: a warm child's socket says whether it linked (true once
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

/* G->lock held: a warm child of P ended idle. One that never linked makes
 * the next refill wait, longer each time in a row. */
void tr__procwarm_lost(struct procs *P, struct child *c)
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

/* G->lock held: a runtime that wants a warm child now, or NULL; lowers
 * *next to the earliest time a refill waits for. */
struct procs *tr__procwarm_due(uint64_t now, uint64_t *next)
{
    for (struct procs *P = G->procs; P != NULL; P = P->next) {
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

tr_err tr__procsrv_spawn_warm(struct procs *P, uint64_t node, forksrv_entry_fn entry,
                              const void *arg, size_t len)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0)
        return TR_ESYS;
    hidden_add(P, node);
    pthread_mutex_lock(&G->lock);
    struct forksrv *fs = G->fs;
    tr_err err = fs == NULL ? TR_ENOTSUP : P->closing ? TR_ESTOPPED : TR_OK;
    pthread_mutex_unlock(&G->lock);
    /* Without G->lock: only the reaper forks warm children and only the
     * reaper reads exits, so none can be read before its child is in the
     * table; meanwhile a spawn can bind, a stand-in set a kill. */
    int pid;
    if (err == TR_OK)
        err = tr__forksrv_spawn_fd(fs, entry, arg, len, sp[1], &pid);
    close(sp[1]); /* the child has its own copy */
    if (err == TR_OK) {
        pthread_mutex_lock(&G->lock);
        err = tr__procsrv_kids_reserve();
        if (err == TR_OK) {
            G->kids[G->nkids++] = (struct child){.pid = pid,
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
        pthread_mutex_unlock(&G->lock);
    }
    if (err != TR_OK) {
        char name[TR_NODE_NAME_MAX + 1];
        close(sp[0]);
        tr__procwarm_unhide(P, node, name);
    }
    return err;
}

bool tr__procsrv_take_warm(struct procs *P, uint64_t *node, int *pid)
{
    pthread_mutex_lock(&G->lock);
    ptrdiff_t best = -1;
    for (size_t i = 0; i < G->nkids && P->nwarm > 0; i++) {
        struct child *c = &G->kids[i];
        if (c->P != P || c->state != KID_WARM || !warm_probe(c))
            continue; /* a dead one is the reaper's to report */
        if (best < 0 || (c->linked && !G->kids[best].linked))
            best = (ptrdiff_t)i;
        if (c->linked)
            break;
    }
    if (best >= 0) {
        struct child *c = &G->kids[best];
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
        tr__procsrv_wake();
    }
    pthread_mutex_unlock(&G->lock);
    return best >= 0;
}

void tr__procsrv_bind(struct procs *P, int pid, tr_ref proxy, const void *job, size_t len)
{
    pthread_mutex_lock(&G->lock);
    ptrdiff_t i = tr__procsrv_kid_find(pid);
    assert(i >= 0 && G->kids[i].P == P);
    struct child *c = &G->kids[i];
    if (c->state == KID_ENDED) {
        /* It died after it was taken: the stand-in hears it as its end. */
        uint64_t status = c->status;
        close(c->fd);
        G->kids[i] = G->kids[--G->nkids];
        tr__signal(&P->ctx, proxy, TR_REF_NIL, MK_PROCEXIT, MF_SYSTEM, status, NULL);
    } else {
        c->state = KID_BOUND;
        c->proxy = proxy;
        /* Its node becomes an actor's: node monitors hear it come up now
         * (or when it links, if it has not yet). */
        char name[TR_NODE_NAME_MAX + 1];
        if (tr__procwarm_unhide(P, c->node, name))
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
        if (n != (ssize_t)len && G->fs != NULL)
            tr__forksrv_kill(G->fs, pid, SIGKILL);
    }
    pthread_mutex_unlock(&G->lock);
}

void tr__procsrv_untake(struct procs *P, int pid)
{
    pthread_mutex_lock(&G->lock);
    ptrdiff_t i = tr__procsrv_kid_find(pid);
    assert(i >= 0 && G->kids[i].P == P);
    if (G->kids[i].state == KID_ENDED) {
        close(G->kids[i].fd);
        G->kids[i] = G->kids[--G->nkids];
        tr__procsrv_wake();
    } else {
        G->kids[i].state = KID_WARM;
        P->nwarm++;
    }
    pthread_mutex_unlock(&G->lock);
}
