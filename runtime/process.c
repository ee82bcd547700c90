/*
 * process.c — process actors: the stand-in actor that represents a child
 * process in its parent runtime, spawning one, and the child's side.
 *
 * A process actor is a local pooled actor (the stand-in, behaviour
 * tr__proxy_beh) plus a child process forked by the fork server. The child
 * starts a runtime of its own, links to the parent node over ipc://,
 * spawns the user's behaviour there and tells the stand-in its reference
 * ("tr.proc.ready"). The stand-in forwards every message it gets to that
 * reference with the original sender, request id and deadline, so replies
 * go straight back to the caller; it holds messages that come before the
 * child is ready. It monitors the child actor, remembers the reason it
 * exited with, and exits itself only once the fork server reports the
 * process reaped — so when a monitor of a process actor fires, the
 * process is gone. Requests it forwarded and that no reply has passed
 * back through the link for are answered with TR_EEXITED when the process
 * ends, so no caller waits for a dead process.
 *
 * The stand-in traps exits: an exit signal to it is passed on to the child
 * actor (which decides, by its own trap_exit), and a stop (runtime
 * shutdown) sends the child a shutdown exit signal and waits up to the
 * spawn's shutdown_ms before the process is killed. Only an untrappable
 * kill ends the stand-in at once; the process is killed with it.
 *
 * Warm children. A child forked for the runtime's pool (tr__proc_warm_fork,
 * called by the reaper) gets only what its runtime needs: its node, the
 * parent's URL and limits. It starts its runtime, links to the parent,
 * says so with one byte on its socket pair and waits there for its job: a
 * struct child_args like a cold child's, sent once the stand-in exists
 * (tr__procsrv_bind). From then on it is exactly a cold child that has
 * already done the slow part. A spawn with no warm child left forks one
 * cold, as before.
 */
#define _GNU_SOURCE
#include "process.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROC_READY_TAG "tr.proc.ready"
#define PROC_OVERRUN_TAG "tr.proc.overrun"
#define PROC_EXIT_SETUP 125 /* the child could not start its runtime or link */
#define PROC_SHUTDOWN_MS 5000u
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

/* What the stand-in's init gets. */
struct proxy_init {
    struct procs *P;
    uint64_t child_node;
    uint32_t shutdown_ms;
};

/* A request the stand-in passed on and no reply has come back for. */
struct fwd_req {
    tr_ref from;
    uint64_t corr, deadline;
};

struct proxy {
    struct procs *P;
    uint64_t child_node;
    uint32_t shutdown_ms;
    tr_ref remote; /* the child actor, once ready */
    tr_monitor_id mon;
    bool ready, exited, registered, stopping;
    bool pend_exit; /* an exit signal waits for the child to be ready */
    tr_ref pend_exit_from;
    tr_reason pend_exit_why;
    bool reason_set; /* the child actor's own exit reason came */
    tr_reason reason;
    tr_msg *pend_head, *pend_tail; /* copies held until ready */
    idmap reqs;                    /* corr → struct fwd_req (P->mu) */
    uint32_t puts_since_sweep;
};

/* ---- request tracking ---------------------------------------------------- */

void tr__proxy_reply_seen(struct proxy *s, uint64_t corr) { free(idmap_take(&s->reqs, corr)); }

uint64_t tr__proxy_node(const struct proxy *s) { return s->child_node; }

/* P->mu held: drops entries whose caller stopped waiting. */
static void reqs_sweep(struct proxy *s)
{
    uint64_t now = tr__now_ns();
    for (uint32_t i = 0; i < s->reqs.cap;) {
        struct fwd_req *r = s->reqs.tab[i].val;
        if (s->reqs.tab[i].id != 0 && r->deadline != 0 && r->deadline <= now) {
            free(idmap_take(&s->reqs, s->reqs.tab[i].id));
            continue; /* the deletion shifted another entry into slot i */
        }
        i++;
    }
}

static void reqs_track(struct proxy *s, const tr_msg *m)
{
    struct fwd_req *r = malloc(sizeof *r);
    if (r == NULL)
        return; /* untracked: the caller's own deadline still ends its wait */
    *r = (struct fwd_req){m->from, m->corr, m->deadline};
    pthread_mutex_lock(&s->P->mu);
    if (++s->puts_since_sweep >= 1024) {
        s->puts_since_sweep = 0;
        reqs_sweep(s);
    }
    struct fwd_req *old = idmap_take(&s->reqs, m->corr);
    free(old);
    if (!idmap_put(&s->reqs, m->corr, r))
        free(r);
    pthread_mutex_unlock(&s->P->mu);
}

static void reqs_forget(struct proxy *s, uint64_t corr)
{
    pthread_mutex_lock(&s->P->mu);
    free(idmap_take(&s->reqs, corr));
    pthread_mutex_unlock(&s->P->mu);
}

/* Answers every tracked request with status and forgets them all. */
static void reqs_fail_all(tr_ctx *ctx, struct proxy *s, tr_err status)
{
    pthread_mutex_lock(&s->P->mu);
    idmap reqs = s->reqs;
    memset(&s->reqs, 0, sizeof s->reqs);
    pthread_mutex_unlock(&s->P->mu);
    for (uint32_t i = 0; i < reqs.cap; i++) {
        struct fwd_req *r = reqs.tab[i].val;
        if (reqs.tab[i].id == 0)
            continue;
        tr_reply_to to = {r->from, r->corr, r->deadline};
        tr_reply_to_error(ctx, &to, status);
        free(r);
    }
    idmap_free(&reqs);
}

/* ---- forwarding ---------------------------------------------------------- */

static tr_msg *msg_copy(tr_ctx *ctx, const tr_msg *m)
{
    tr_msg *c = tr__msg_alloc(ctx);
    if (c == NULL)
        return NULL;
    if (m->len != 0 && tr__msg_reserve(c, m->len) != TR_OK) {
        tr__msg_release(ctx, c);
        return NULL;
    }
    memcpy(c->tag, m->tag, sizeof c->tag);
    if (m->len != 0)
        memcpy(c->data, m->data, m->len);
    c->len = m->len;
    c->kind = MK_USER;
    c->flags = (uint8_t)((c->flags & MF_HEAPBUF) | (m->flags & MF_REQUEST));
    c->from = m->from;
    c->corr = m->corr;
    c->deadline = m->deadline;
    return c;
}

/* A message that cannot reach the process: requests are answered. */
static void undeliverable(tr_ctx *ctx, const tr_msg *m, tr_err status)
{
    if (m->flags & MF_REQUEST) {
        tr_reply_to to = {m->from, m->corr, m->deadline};
        tr_reply_to_error(ctx, &to, status);
    }
    ctr_add(&ctx->ctr.dead_letters, 1);
}

/* Passes c (a copy, consumed) on to the child actor. */
static void forward(tr_ctx *ctx, struct proxy *s, tr_msg *c)
{
    bool req = (c->flags & MF_REQUEST) != 0;
    if (req)
        reqs_track(s, c);
    tr__send_flush(ctx); /* the stand-in's own sends keep their order */
    tr_err err = tr__link_send(ctx, s->remote, c);
    if (err == TR_OK) {
        ctr_add(&ctx->ctr.sent, 1);
        return;
    }
    if (req)
        reqs_forget(s, c->corr);
    if (err != TR_ETIMEDOUT) /* past its deadline: the caller already gave up */
        undeliverable(ctx, c, TR_EEXITED);
    tr__msg_release(ctx, c);
}

static void pending_drop(tr_ctx *ctx, struct proxy *s)
{
    while (s->pend_head != NULL) {
        tr_msg *m = s->pend_head;
        s->pend_head = (tr_msg *)atomic_load_explicit(&m->link.next, memory_order_relaxed);
        undeliverable(ctx, m, TR_EEXITED);
        tr__msg_release(ctx, m);
    }
    s->pend_tail = NULL;
}

/* ---- the stand-in -------------------------------------------------------- */

static void proxy_register(struct proxy *s, bool on)
{
    struct procs *P = s->P;
    pthread_mutex_lock(&P->mu);
    if (on && P->nproxies == P->capproxies) {
        uint32_t cap = P->capproxies != 0 ? P->capproxies * 2 : 16;
        struct proxy **n = realloc(P->proxies, cap * sizeof *n);
        if (n != NULL) {
            P->proxies = n;
            P->capproxies = cap;
        }
    }
    if (on && P->nproxies < P->capproxies) {
        P->proxies[P->nproxies++] = s;
        s->registered = true;
    } else if (!on && s->registered) {
        for (uint32_t i = 0; i < P->nproxies; i++)
            if (P->proxies[i] == s) {
                P->proxies[i] = P->proxies[--P->nproxies];
                break;
            }
        s->registered = false;
    }
    pthread_mutex_unlock(&P->mu);
}

static int proxy_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    (void)ctx;
    struct proxy *s = state;
    struct proxy_init pi;
    memcpy(&pi, args->data, sizeof pi);
    s->P = pi.P;
    s->child_node = pi.child_node;
    s->shutdown_ms = pi.shutdown_ms;
    proxy_register(s, true);
    return 0;
}

/* The reason a process ended with, from its wait status. */
static tr_reason status_reason(const struct proxy *s, uint64_t st)
{
    if (st & PROC_STATUS_FORKFAIL)
        return tr_reason_make(TR_EXIT_ERROR, (int32_t)(uint32_t)st, "could not fork the process");
    if (!(st & PROC_STATUS_KNOWN))
        return tr_reason_make(TR_EXIT_NOCONNECTION, 0, "the fork server is gone");
    int status = (int)(uint32_t)st;
    if (WIFSIGNALED(status)) {
        char text[TR_REASON_TEXT_MAX + 1];
        snprintf(text, sizeof text, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
        return tr_reason_make(TR_EXIT_SIGNAL, WTERMSIG(status), text);
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    if (code == PROC_EXIT_SETUP && !s->ready)
        return tr_reason_make(TR_EXIT_CODE, code, "could not start or link to its parent");
    if (code != 0)
        return tr_reason_make(TR_EXIT_CODE, code, "exited with a non-zero status");
    return tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
}

static void pass_exit(tr_ctx *ctx, struct proxy *s, tr_ref from, const tr_reason *why);

static void on_ready(tr_ctx *ctx, struct proxy *s, const tr_msg *m)
{
    tr_cursor c;
    tr_ref r;
    tr_cursor_init(&c, m);
    if (s->ready || m->from.node != s->child_node || tr_cursor_ref(&c, &r) != TR_OK ||
        r.node != s->child_node) {
        ctr_add(&ctx->ctr.dead_letters, 1);
        return;
    }
    s->remote = r;
    s->ready = true;
    tr_monitor(ctx, r, &s->mon);
    while (s->pend_head != NULL) {
        tr_msg *p = s->pend_head;
        s->pend_head = (tr_msg *)atomic_load_explicit(&p->link.next, memory_order_relaxed);
        forward(ctx, s, p);
    }
    s->pend_tail = NULL;
    if (s->pend_exit) {
        s->pend_exit = false;
        pass_exit(ctx, s, s->pend_exit_from, &s->pend_exit_why);
    }
    if (s->stopping) { /* a stop came first: pass it on now */
        tr_reason why = tr_reason_make(TR_EXIT_SHUTDOWN, 0, "runtime stopping");
        tr__signal(ctx, r, tr_self(ctx), MK_EXIT, MF_SYSTEM, 0, &why);
    }
}

/* Passes an exit signal on to the child actor, which decides by its own
 * trap_exit; one that comes before the child is ready waits for it. */
static void pass_exit(tr_ctx *ctx, struct proxy *s, tr_ref from, const tr_reason *why)
{
    if (!s->ready) {
        if (why->kind == TR_EXIT_NORMAL)
            return; /* a child that does not trap would ignore it */
        s->pend_exit = true;
        s->pend_exit_from = from;
        s->pend_exit_why = *why;
        return;
    }
    tr__signal(ctx, s->remote, from, MK_EXIT, MF_SYSTEM, 0, why);
}

/* A stop: the child actor is asked to shut down, the process is killed if
 * it has not ended by the deadline. */
static void ask_stop(tr_ctx *ctx, struct proxy *s, const tr_reason *why)
{
    s->stopping = true;
    if (s->ready)
        tr__signal(ctx, s->remote, tr_self(ctx), MK_EXIT, MF_SYSTEM, 0, why);
    tr__procsrv_kill(tr_self(ctx), SIGKILL, tr__now_ns() + (uint64_t)s->shutdown_ms * 1000000u);
}

static int proxy_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    struct proxy *s = state;
    if (m->kind == MK_PROCEXIT) {
        s->exited = true;
        tr_reason why = s->reason_set ? s->reason : status_reason(s, m->corr);
        reqs_fail_all(ctx, s, TR_EEXITED);
        pending_drop(ctx, s);
        tr_stop_self(ctx, &why);
        return 0;
    }
    if (m->kind == MK_STOP) {
        tr_reason why = tr_reason_make(TR_EXIT_SHUTDOWN, 0, "runtime stopping");
        ask_stop(ctx, s, &why);
        return 0;
    }
    if (m->kind == MK_DOWN) {
        tr_ref who;
        tr_monitor_id id;
        tr_reason why;
        if (tr_msg_down_info(m, &who, &id, &why) != TR_OK || !s->ready || id != s->mon)
            return 0;
        s->reason = why;
        s->reason_set = true;
        /* The child actor is gone; its process follows (or is made to). */
        uint64_t wait_ms = why.kind == TR_EXIT_NOCONNECTION ? 0 : PROC_TEARDOWN_MS;
        if (wait_ms == 0)
            tr__procsrv_kill(tr_self(ctx), SIGKILL, 0);
        else
            tr__procsrv_kill(tr_self(ctx), SIGKILL, tr__now_ns() + wait_ms * 1000000u);
        return 0;
    }
    if (m->kind == MK_EXIT) {
        tr_ref from;
        tr_reason why;
        if (tr_msg_exit_info(m, &from, &why) == TR_OK)
            pass_exit(ctx, s, from, &why);
        return 0;
    }
    if (tr_msg_is(m, PROC_READY_TAG) && m->from.node == s->child_node) {
        on_ready(ctx, s, m);
        return 0;
    }
    if (tr_msg_is(m, PROC_OVERRUN_TAG) && m->from.node == s->child_node) {
        /* The child's watchdog saw its actor run long: report it here. */
        tr_overrun o;
        tr_msg *copy = msg_copy(ctx, m);
        if (copy != NULL && tr__msg_set_tag(copy, TR_TAG_OVERRUN) == TR_OK &&
            tr_msg_overrun_info(copy, &o) == TR_OK)
            tr__watchdog_report(ctx, tr_self(ctx), TR_PROCESS, o.elapsed_ms, o.name);
        tr__msg_release(ctx, copy);
        return 0;
    }
    if (s->exited || s->reason_set) {
        undeliverable(ctx, m, TR_EEXITED);
        return 0;
    }
    tr_msg *c = msg_copy(ctx, m);
    if (c == NULL) {
        undeliverable(ctx, m, TR_ENOMEM);
        return 0;
    }
    if (m->flags & MF_REQUEST)
        ctx->cur_req = NULL; /* the child answers it */
    if (!s->ready) {
        atomic_store_explicit(&c->link.next, NULL, memory_order_relaxed);
        if (s->pend_tail != NULL)
            atomic_store_explicit(&s->pend_tail->link.next, &c->link, memory_order_relaxed);
        else
            s->pend_head = c;
        s->pend_tail = c;
        return 0;
    }
    forward(ctx, s, c);
    return 0;
}

static void proxy_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    struct proxy *s = state;
    proxy_register(s, false);
    reqs_fail_all(ctx, s, TR_EEXITED);
    pending_drop(ctx, s);
    if (s->exited)
        return;
    /* Killed (or failed) before its process ended: the process goes too. */
    if (s->ready && why->kind != TR_EXIT_KILLED) {
        tr_exit(ctx, s->remote, why);
        tr__procsrv_kill(tr_self(ctx), SIGKILL, tr__now_ns() + (uint64_t)s->shutdown_ms * 1000000u);
    } else {
        tr__procsrv_kill(tr_self(ctx), SIGKILL, 0);
    }
}

const tr_behaviour tr__proxy_beh = {"process",    sizeof(struct proxy), proxy_init,
                                    proxy_handle, proxy_terminate,      NULL};

/* ---- the child ----------------------------------------------------------- */

static uint64_t child_node_new(void);

/* Runs the actor in the child's runtime until it has exited. */
static int child_run(tr_runtime *rt, const struct child_args *ca, const tr_behaviour *b)
{
    uint64_t parent;
    if (tr_connect(rt, ca->parent_url, PROC_CONNECT_MS, &parent) != TR_OK)
        return PROC_EXIT_SETUP;
    tr_ctx *ctx;
    if (tr_attach(&ctx, rt) != TR_OK)
        return PROC_EXIT_SETUP;
    tr_msg *args = NULL;
    if (ca->args_len != 0 && (tr_msg_new(&args, ctx, ca->args_tag) != TR_OK ||
                              tr_msg_set_payload(args, ca->args, ca->args_len) != TR_OK)) {
        tr_msg_free(args);
        tr_detach(ctx);
        return PROC_EXIT_SETUP;
    }
    tr_spawn_opts so = TR_SPAWN_OPTS_INIT;
    so.kind = ca->thread ? TR_THREAD : TR_POOLED;
    so.mailbox_limit = ca->mailbox_limit;
    so.overflow = (tr_overflow)ca->overflow;
    so.trap_exit = ca->trap_exit != 0;
    tr_ref actor;
    tr_monitor_id mon_actor = 0, mon_proxy = 0;
    if (tr_spawn(&actor, ctx, b, args, &so) != TR_OK) {
        tr_msg_free(args);
        tr_detach(ctx);
        return PROC_EXIT_SETUP;
    }
    tr_msg *ready = NULL;
    if (tr_monitor(ctx, actor, &mon_actor) != TR_OK ||
        tr_monitor(ctx, ca->proxy, &mon_proxy) != TR_OK ||
        tr_msg_new(&ready, ctx, PROC_READY_TAG) != TR_OK || tr_pack_ref(ready, actor) != TR_OK ||
        tr_send(ctx, ca->proxy, ready) != TR_OK) {
        tr_msg_free(ready);
        tr_exit(ctx, actor, &(tr_reason){TR_EXIT_KILLED, 0, "could not reach its parent"});
    }
    /* Wait for the actor's end; if the stand-in goes first (killed, or the
     * parent is unreachable), end the actor and wait a little for it. The
     * watchdog's reports go to the stand-in, which reports them as itself. */
    tr_watchdog_subscribe(ctx, true);
    int32_t timeout = TR_FOREVER;
    for (;;) {
        tr_msg *m;
        if (tr_receive(ctx, NULL, NULL, NULL, timeout, &m) != TR_OK)
            break;
        if (tr_msg_is(m, TR_TAG_OVERRUN)) {
            size_t len;
            const uint8_t *p = tr_msg_payload(m, &len);
            tr_msg *fwd;
            if (tr_msg_new(&fwd, ctx, PROC_OVERRUN_TAG) == TR_OK &&
                (tr_msg_set_payload(fwd, p, len) != TR_OK || tr_send(ctx, ca->proxy, fwd) != TR_OK))
                tr_msg_free(fwd);
            tr_msg_free(m);
            continue;
        }
        if (m->kind != MK_DOWN) {
            tr_msg_free(m);
            continue;
        }
        tr_ref who;
        tr_monitor_id id;
        tr_reason why;
        tr_err err = tr_msg_down_info(m, &who, &id, &why);
        tr_msg_free(m);
        if (err != TR_OK)
            continue;
        if (id == mon_actor)
            break;
        if (id == mon_proxy && timeout == TR_FOREVER) {
            tr_exit(ctx, actor, &(tr_reason){TR_EXIT_KILLED, 0, "its parent is gone"});
            timeout = (int32_t)PROC_TEARDOWN_MS;
        }
    }
    tr_detach(ctx);
    return 0;
}

/* A child's arguments hold together: len bytes at ca. */
static bool child_args_ok(const struct child_args *ca, size_t len)
{
    return ca != NULL && len >= sizeof *ca && ca->args_len <= len - sizeof *ca;
}

/* A warm child: links to its parent, says so on fd and waits there for
 * its job, which it returns (malloc'd), or NULL when the runtime dropped
 * it (the socket closed) or sent something unusable. */
static struct child_args *warm_wait(tr_runtime *rt, const struct child_args *boot, int fd)
{
    uint64_t parent;
    if (fd < 0 || tr_connect(rt, boot->parent_url, PROC_CONNECT_MS, &parent) != TR_OK)
        return NULL;
    /* The runtime may have sent the job and closed its end already (it
     * takes a child that is still linking): then this send fails, and
     * the job still waits to be read. */
    if (send(fd, "L", 1, MSG_NOSIGNAL) != 1 && errno != EPIPE)
        return NULL;
    struct child_args *job = malloc(FORKSRV_ARG_MAX);
    if (job == NULL)
        return NULL;
    /* ECONNRESET: the runtime closed its end before it read our byte;
     * the error is reported once, ahead of the job queued before it. */
    ssize_t n;
    int resets = 0;
    do {
        n = recv(fd, job, FORKSRV_ARG_MAX, MSG_TRUNC);
    } while (n < 0 && (errno == EINTR || (errno == ECONNRESET && resets++ == 0)));
    if (n <= 0 || n > (ssize_t)FORKSRV_ARG_MAX || !child_args_ok(job, (size_t)n) || job->warm ||
        job->child_node != boot->child_node) {
        free(job);
        return NULL;
    }
    return job;
}

static void child_main(const void *arg, size_t len, int fd)
{
    const struct child_args *ca = arg;
    tr__procsrv_child_reset();
    if (!child_args_ok(ca, len))
        _exit(PROC_EXIT_SETUP);
    tr_runtime_opts o = TR_RUNTIME_OPTS_INIT;
    o.workers = 1;
    o.spin_us = 1;
    o.node_name = ca->node_name;
    o.max_frame = ca->max_frame;
    o.watchdog_ms = ca->watchdog_ms;
    tr_runtime *rt;
    if (tr__runtime_start_as(&rt, &o, ca->child_node) != TR_OK)
        _exit(PROC_EXIT_SETUP);
    struct child_args *job = NULL;
    if (ca->warm) {
        job = warm_wait(rt, ca, fd);
        if (fd >= 0)
            close(fd);
        if (job == NULL) { /* never an actor: nobody waits for this exit */
            tr_runtime_free(rt);
            _exit(0);
        }
        ca = job;
    }
    tr_behaviour b = {ca->beh_name, ca->state_size, ca->init, ca->handle, ca->terminate, ca->run};
    int code = child_run(rt, ca, &b);
    /* Stopping drains the link: the parent hears the actor's DOWN before
     * it sees this process end. */
    tr_runtime_free(rt);
    free(job);
    if (code != 0)
        _exit(code);
}

tr_err tr__proc_warm_fork(struct procs *P)
{
    tr_runtime *rt = P->rt;
    struct child_args *ca = calloc(1, sizeof *ca);
    if (ca == NULL)
        return TR_ENOMEM;
    ca->warm = 1;
    ca->child_node = child_node_new();
    ca->max_frame = (uint32_t)rt->max_frame;
    ca->watchdog_ms = tr__watchdog_budget_ms(rt);
    snprintf(ca->parent_url, sizeof ca->parent_url, "%s", P->url);
    snprintf(ca->node_name, sizeof ca->node_name, "%.30s/process", rt->name);
    tr_err err = tr__procsrv_spawn_warm(P, ca->child_node, child_main, ca, sizeof *ca);
    free(ca);
    return err;
}

/* ---- spawning ------------------------------------------------------------ */

struct proc_go {
    tr_ctx *ctx; /* the spawner's */
    struct procs *P;
    struct child_args *ca;
    size_t ca_len;
    int warm_pid; /* a warm child taken for this spawn, or 0 */
};

/* Forks the child once the stand-in is live with its INIT queued: what the
 * child sends it arrives after INIT. A fork that fails then ends the
 * stand-in with the error as its reason. */
static void proc_after_go(tr_ref ref, void *arg)
{
    struct proc_go *g = arg;
    g->ca->proxy = ref;
    if (g->warm_pid != 0) {
        tr__procsrv_bind(g->P, g->warm_pid, ref, g->ca, g->ca_len);
        g->warm_pid = 0;
        return;
    }
    int pid;
    tr_err err =
        tr__procsrv_spawn(g->P, ref, g->ca->child_node, child_main, g->ca, g->ca_len, &pid);
    if (err != TR_OK)
        tr__signal(g->ctx, ref, TR_REF_NIL, MK_PROCEXIT, MF_SYSTEM,
                   PROC_STATUS_FORKFAIL | (uint32_t)err, NULL);
}

static bool beh_in_image(const tr_behaviour *b)
{
    return tr__procsrv_in_image(b, false) &&
           (b->init == NULL || tr__procsrv_in_image((const void *)(uintptr_t)b->init, true)) &&
           (b->handle == NULL || tr__procsrv_in_image((const void *)(uintptr_t)b->handle, true)) &&
           (b->terminate == NULL ||
            tr__procsrv_in_image((const void *)(uintptr_t)b->terminate, true)) &&
           (b->run == NULL || tr__procsrv_in_image((const void *)(uintptr_t)b->run, true));
}

static uint64_t child_node_new(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
        id = tr__now_ns() ^ ((uint64_t)getpid() << 40);
    return id != 0 ? id : 1;
}

tr_err tr__proc_spawn(tr_ref *out, tr_ctx *ctx, const tr_behaviour *b, tr_msg *args,
                      const tr_spawn_opts *o)
{
    tr_runtime *rt = ctx->rt;
    if (!beh_in_image(b))
        return TR_EINVAL;
    size_t alen = args != NULL ? args->len : 0;
    if (sizeof(struct child_args) + alen > FORKSRV_ARG_MAX)
        return TR_ETOOBIG;
    if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
        return TR_ESTOPPED;
    struct procs *P;
    tr_err err = tr__procs_get(rt, &P);
    if (err != TR_OK)
        return err;

    size_t ca_len = sizeof(struct child_args) + alen;
    struct child_args *ca = calloc(1, ca_len);
    tr_msg *pinit = tr__msg_alloc(ctx);
    if (ca == NULL || pinit == NULL || tr__msg_reserve(pinit, sizeof(struct proxy_init)) != TR_OK) {
        free(ca);
        tr__msg_release(ctx, pinit);
        return TR_ENOMEM;
    }
    /* A warm child's node is the one it linked with. */
    int warm_pid = 0;
    if (!tr__procsrv_take_warm(P, &ca->child_node, &warm_pid))
        ca->child_node = child_node_new();
    ca->max_frame = (uint32_t)rt->max_frame;
    ca->watchdog_ms = tr__watchdog_budget_ms(rt);
    ca->mailbox_limit = o->mailbox_limit;
    ca->overflow = (uint8_t)o->overflow;
    ca->trap_exit = o->trap_exit;
    ca->thread = b->run != NULL;
    ca->state_size = (uint32_t)b->state_size;
    ca->init = b->init;
    ca->handle = b->handle;
    ca->terminate = b->terminate;
    ca->run = b->run;
    snprintf(ca->parent_url, sizeof ca->parent_url, "%s", P->url);
    snprintf(ca->beh_name, sizeof ca->beh_name, "%s", b->name != NULL ? b->name : "process");
    snprintf(ca->node_name, sizeof ca->node_name, "%.30s/%.30s", rt->name, ca->beh_name);
    if (args != NULL) {
        snprintf(ca->args_tag, sizeof ca->args_tag, "%s", args->tag);
        ca->args_len = (uint32_t)alen;
        memcpy(ca->args, args->data, alen);
    }
    struct proxy_init pi = {P, ca->child_node,
                            o->shutdown_ms != 0 ? o->shutdown_ms : PROC_SHUTDOWN_MS};
    memcpy(pinit->data, &pi, sizeof pi);
    pinit->len = sizeof pi;

    tr_spawn_opts po = *o;
    po.kind = TR_POOLED;
    po.trap_exit = true;
    struct proc_go g = {ctx, P, ca, ca_len, warm_pid};
    err = tr__spawn_with(out, ctx, &tr__proxy_beh, pinit, &po, proc_after_go, &g);
    free(ca);
    if (g.warm_pid != 0) /* not bound: the spawn failed */
        tr__procsrv_untake(P, g.warm_pid);
    if (err != TR_OK) {
        tr__msg_release(ctx, pinit);
        return err;
    }
    tr__msg_release(ctx, args);
    return TR_OK;
}
