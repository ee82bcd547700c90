/*
 * proc_child.c — the child's side of a process actor: starting its
 * runtime, linking to its parent, running the actor and reporting it
 * ready; and a warm child's start-up, which does the first two ahead of
 * time and then waits for its job.
 *
 * Everything here runs in a process forked by the fork server (except
 * tr__proc_warm_fork and tr__proc_node_new, which the parent calls). It
 * must not touch the parent's state: the child has a copy of the program
 * as it was when the fork server started, and leaves only through _exit.
 *
 * Warm children. A child forked for a runtime's pool gets only what its
 * runtime needs: its node, the parent's URL and limits. It starts its
 * runtime, links to the parent, says so with one byte on its socket pair
 * and waits there for its job, a struct child_args like a cold child's,
 * sent once the stand-in exists (tr__procsrv_bind). From then on it is a
 * cold child that has already done the slow part. If the runtime drops it
 * (the socket closes), it exits quietly.
 */
#define _GNU_SOURCE
#include "process.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

uint64_t tr__proc_node_new(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
        id = tr__now_ns() ^ ((uint64_t)getpid() << 40);
    return id != 0 ? id : 1;
}

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

void tr__proc_child_main(const void *arg, size_t len, int fd)
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
    ca->child_node = tr__proc_node_new();
    ca->max_frame = (uint32_t)rt->max_frame;
    ca->watchdog_ms = tr__watchdog_budget_ms(rt);
    snprintf(ca->parent_url, sizeof ca->parent_url, "%s", P->url);
    snprintf(ca->node_name, sizeof ca->node_name, "%.30s/process", rt->name);
    tr_err err = tr__procsrv_spawn_warm(P, ca->child_node, tr__proc_child_main, ca, sizeof *ca);
    free(ca);
    return err;
}
