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
 * A spawn takes a warm child (procsrv.c) when one is left and hands it
 * the same job a cold child gets, once the stand-in exists; else it forks
 * a cold one. The child's side is in proc_child.c.
 */
#define _GNU_SOURCE
#include "process.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROC_SHUTDOWN_MS 5000u

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
    tr_err err = tr__procsrv_spawn(g->P, ref, g->ca->child_node, tr__proc_child_main, g->ca,
                                   g->ca_len, &pid);
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

tr_err tr_behaviour_check(const tr_behaviour *b, tr_actor_kind kind)
{
    if (b == NULL)
        return TR_EINVAL;
    switch (kind) {
    case TR_POOLED:
        return b->handle != NULL ? TR_OK : TR_EINVAL;
    case TR_THREAD:
        return b->handle != NULL || b->run != NULL ? TR_OK : TR_EINVAL;
    case TR_PROCESS:
        return (b->handle != NULL || b->run != NULL) && beh_in_image(b) ? TR_OK : TR_EINVAL;
    }
    return TR_EINVAL;
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
        ca->child_node = tr__proc_node_new();
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
