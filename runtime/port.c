/*
 * port.c — ports: an external command run as an actor (see "Ports" in
 * troupe.h). This file owns tr_port_spawn (starting the command with
 * posix_spawn), the port actor (a thread actor: it takes the mailbox,
 * queues bytes for stdin, hands output to the owner, exits with the
 * command's reason) and the port counters. The pipes and the command's
 * process belong to the helper thread in port_io.c; this file touches
 * them only when no helper ever ran.
 *
 * Built on the public API, but for the port counters, which hang off the
 * runtime (rt->ports) and are freed with it.
 */
#define _GNU_SOURCE
#include "port.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- counters ------------------------------------------------------------ */

/* The counters of rt, made on first use when create is set; freed with
 * the runtime. */
static struct port_ctrs *ctrs_for(tr_runtime *rt, bool create)
{
    struct port_ctrs *c = atomic_load_explicit(&rt->ports, memory_order_acquire);
    if (c != NULL || !create)
        return c;
    struct port_ctrs *fresh = calloc(1, sizeof *fresh);
    if (fresh == NULL)
        return NULL;
    /* acq_rel: publishes the zeroed block; a loser takes the winner's. */
    if (!atomic_compare_exchange_strong_explicit(&rt->ports, &c, fresh, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        free(fresh);
        return c;
    }
    return fresh;
}

tr_err tr_runtime_port_counters(tr_port_counters *out, tr_runtime *rt)
{
    if (out == NULL || rt == NULL)
        return TR_EINVAL;
    memset(out, 0, sizeof *out);
    struct port_ctrs *c = ctrs_for(rt, false);
    if (c == NULL)
        return TR_OK;
#define READ(f) out->f = atomic_load_explicit(&c->f, memory_order_relaxed)
    READ(spawned);
    READ(spawn_failed);
    READ(exited);
    READ(killed);
    READ(out_msgs);
    READ(out_dropped);
    READ(parts);
    READ(bad_frames);
    READ(owner_full);
    READ(in_msgs);
    READ(in_refused);
    READ(in_bytes_lost);
#undef READ
    return TR_OK;
}

/* ---- starting the command ------------------------------------------------ */

static tr_err err_from_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return TR_ENOTFOUND;
    case E2BIG:
    case ENAMETOOLONG:
        return TR_ETOOBIG;
    case ENOMEM:
        return TR_ENOMEM;
    default:
        return TR_ESYS;
    }
}

/* A close-on-exec pipe whose ends are both above 2, so that a dup2 onto
 * 0, 1 or 2 in the child never meets its own source (a dup2 onto itself
 * would keep close-on-exec set). */
static tr_err pipe_above_stdio(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return err_from_errno(errno);
    for (int i = 0; i < 2; i++) {
        if (fds[i] <= 2) {
            int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
            int e = errno;
            close(fds[i]);
            fds[i] = moved;
            if (moved < 0) {
                close(fds[1 - i]);
                return err_from_errno(e);
            }
        }
    }
    return TR_OK;
}

static void close_pair(int fds[2])
{
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

/* Starts the command; on TR_OK st holds its pid and our ends of its pipes
 * (non-blocking, close-on-exec). */
static tr_err command_start(struct port_start *st, const char *const *argv, const tr_port_opts *o)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    tr_err e = pipe_above_stdio(in);
    if (e == TR_OK)
        e = pipe_above_stdio(out);
    if (e == TR_OK && o->err == TR_PORT_STDERR_MESSAGES)
        e = pipe_above_stdio(err);
    if (e != TR_OK) {
        close_pair(in);
        close_pair(out);
        close_pair(err);
        return e;
    }

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc == 0 && (rc = posix_spawnattr_init(&at)) != 0)
        posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        close_pair(in);
        close_pair(out);
        close_pair(err);
        return err_from_errno(rc);
    }
    /* dup2 clears close-on-exec on the copy; everything from 3 up is then
     * closed, whatever other threads opened without close-on-exec. */
    rc = posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    if (rc == 0 && o->err == TR_PORT_STDERR_MESSAGES)
        rc = posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    if (rc == 0 && o->err == TR_PORT_STDERR_DISCARD)
        rc = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (rc == 0 && o->dir != NULL)
        rc = posix_spawn_file_actions_addchdir_np(&fa, o->dir);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    /* Default dispositions for every signal (an ignored SIGPIPE would
     * survive exec), an empty mask, and a process group of its own so a
     * kill reaches what the command started. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&at, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&at, &all);
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(&at, 0);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                               POSIX_SPAWN_SETPGROUP);
    pid_t pid = -1;
    if (rc == 0)
        rc = posix_spawnp(&pid, argv[0], &fa, &at, (char *const *)argv,
                          o->env != NULL ? (char *const *)o->env : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(in[0]);
    close(out[1]);
    if (err[1] >= 0)
        close(err[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        if (err[0] >= 0)
            close(err[0]);
        return err_from_errno(rc);
    }
    st->pid = pid;
    st->in_fd = in[1];
    st->out_fd = out[0];
    st->err_fd = err[0];
    fcntl(st->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(st->out_fd, F_SETFL, O_NONBLOCK);
    if (st->err_fd >= 0)
        fcntl(st->err_fd, F_SETFL, O_NONBLOCK);
    /* pidfds are close-on-exec. Without one the helper polls for the exit. */
    st->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (st->pidfd < 0)
        st->pidfd = -1;
    return TR_OK;
}

/* Ends a command whose port never started: kill, reap, close. */
static void command_abandon(struct port_start *st)
{
    kill(-st->pid, SIGKILL);
    kill(st->pid, SIGKILL);
    while (waitpid(st->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    close(st->in_fd);
    close(st->out_fd);
    if (st->err_fd >= 0)
        close(st->err_fd);
    if (st->pidfd >= 0)
        close(st->pidfd);
}

/* ---- the port actor ------------------------------------------------------ */

static void port_take_start(struct port *p, const tr_msg *args)
{
    tr_cursor c;
    const uint8_t *bytes;
    size_t len;
    struct port_start *st = NULL;
    tr_cursor_init(&c, args);
    /* tr_port_spawn always sends this; anything else is a caller who
     * spawned port_behaviour by hand, which troupe.h does not offer. */
    if (tr_cursor_bin(&c, &bytes, &len) == TR_OK && len == sizeof st)
        memcpy(&st, bytes, sizeof st);
    if (st == NULL)
        return;
    p->cfg = *st;
    free(st);
    p->in_fd = p->cfg.in_fd;
    p->pidfd = p->cfg.pidfd;
    p->sout.fd = p->cfg.out_fd;
    p->serr.fd = p->cfg.err_fd;
}

static int port_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    struct port *p = state;
    p->in_fd = p->pidfd = p->sout.fd = p->serr.fd = p->wakefd = -1;
    port_take_start(p, args);
    if (p->cfg.ctr == NULL)
        return TR_EINVAL;
    p->rt = tr_ctx_runtime(ctx);
    p->self = tr_self(ctx);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->inited = true;
    p->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->wakefd < 0)
        return TR_ESYS;

    /* The helper writes to stdin: a command that closed it would raise
     * SIGPIPE, which would end the whole process. The helper inherits a
     * mask that blocks it and takes the pending signal back. */
    sigset_t pipe_only, old;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    int rc = pthread_create(&p->io, NULL, tr__port_io_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return TR_ESYS;
    p->io_running = true;

    pthread_mutex_lock(&p->mu);
    while (p->io_state == 0)
        pthread_cond_wait(&p->cv, &p->mu);
    tr_err err = p->io_state < 0 ? p->io_err : TR_OK;
    pthread_mutex_unlock(&p->mu);
    if (err != TR_OK)
        return err;
    /* The port follows its owner: when the owner exits, the command goes. */
    return tr_monitor(ctx, p->cfg.owner, &p->owner_mon);
}

static void port_set_quit(tr_ctx *ctx, tr_exit_kind kind, int32_t code, const char *text)
{
    tr_reason why = tr_reason_make(kind, code, text);
    tr_stop_self(ctx, &why);
}

/* Hands output to the owner. Returns false when the port must exit (it
 * then called tr_stop_self); sets *timeout to a retry delay while the
 * owner's mailbox is full. */
static bool port_deliver(tr_ctx *ctx, struct port *p, int32_t *timeout)
{
    for (;;) {
        if (p->held_pos == p->held_n) {
            bool wake, ended;
            tr_reason why;
            pthread_mutex_lock(&p->mu);
            p->held_pos = 0;
            p->held_n = p->out_n;
            for (uint32_t i = 0; i < p->out_n; i++)
                p->held[i] = p->out[(p->out_head + i) % PORT_OUT_MSGS];
            p->out_head = (p->out_head + p->out_n) % PORT_OUT_MSGS;
            p->out_n = 0;
            p->out_bytes = 0;
            wake = p->out_paused;
            p->out_paused = false;
            ended = p->ended;
            why = p->end_reason;
            pthread_mutex_unlock(&p->mu);
            if (wake)
                tr__port_wake(p);
            if (p->held_n == 0) {
                if (ended) {
                    tr_stop_self(ctx, &why);
                    return false;
                }
                return true;
            }
        }
        while (p->held_pos < p->held_n) {
            tr_err err = tr_send(ctx, p->cfg.owner, p->held[p->held_pos]);
            if (err == TR_EFULL) {
                /* Nothing tells a sender when a bounded mailbox has room:
                 * look again every millisecond for a while (an owner that
                 * is reading makes room quickly), then less often. */
                if (p->full_tries == 0)
                    port_count(&p->cfg.ctr->owner_full, 1);
                p->full_tries++;
                *timeout = p->full_tries <= 8 ? 1 : p->full_tries <= 16 ? 4 : 16;
                return true;
            }
            if (err != TR_OK) {
                if (err == TR_ENOACTOR)
                    port_set_quit(ctx, TR_EXIT_SHUTDOWN, 0, "port owner exited");
                else if (err == TR_ESTOPPED)
                    port_set_quit(ctx, TR_EXIT_SHUTDOWN, 0, "runtime stopping");
                else
                    port_set_quit(ctx, TR_EXIT_ERROR, err, "cannot deliver port output");
                return false;
            }
            p->held[p->held_pos++] = NULL;
            p->full_tries = 0;
            port_count(&p->cfg.ctr->out_msgs, 1);
        }
    }
}

/* The bytes a write message puts on stdin, and the frame header if any. */
static tr_err write_bytes(const struct port *p, const tr_msg *m, const uint8_t **bytes, size_t *len,
                          uint8_t header[4], size_t *hlen)
{
    *hlen = 0;
    if (p->cfg.framing == TR_PORT_FRAMES) {
        *bytes = tr_msg_payload(m, len);
        if (*len == 0)
            return TR_EBADMSG;
        tr_err err = tr_msg_validate(m);
        if (err != TR_OK)
            return err;
        header[0] = (uint8_t)(*len >> 24);
        header[1] = (uint8_t)(*len >> 16);
        header[2] = (uint8_t)(*len >> 8);
        header[3] = (uint8_t)*len;
        *hlen = 4;
        return TR_OK;
    }
    tr_cursor c;
    tr_cursor_init(&c, m);
    tr_err err = tr_cursor_str(&c, (const char **)bytes, len);
    if (err == TR_ETYPE) {
        tr_cursor_init(&c, m);
        err = tr_cursor_bin(&c, bytes, len);
    }
    if (err == TR_OK && !tr_cursor_done(&c))
        err = TR_ETYPE;
    return err == TR_OK ? TR_OK : TR_ETYPE;
}

/* Queues m's bytes for stdin (mu held). */
static tr_err wbuf_append(struct port *p, const uint8_t *h, size_t hlen, const uint8_t *bytes,
                          size_t len)
{
    if (p->eof_requested || p->stdin_closed)
        return TR_ECANCELED;
    if (p->woff > 0) {
        memmove(p->wbuf, p->wbuf + p->woff, p->wlen - p->woff);
        p->wlen -= p->woff;
        p->woff = 0;
    }
    size_t need = p->wlen + hlen + len;
    if (need > p->wcap) {
        size_t cap = p->wcap != 0 ? p->wcap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = realloc(p->wbuf, cap);
        if (nb == NULL)
            return TR_ENOMEM;
        p->wbuf = nb;
        p->wcap = cap;
    }
    memcpy(p->wbuf + p->wlen, h, hlen);
    memcpy(p->wbuf + p->wlen + hlen, bytes, len);
    p->wlen += hlen + len;
    return TR_OK;
}

static void port_answer(tr_ctx *ctx, const tr_msg *m, tr_err err)
{
    if (!tr_msg_is_request(m))
        return;
    tr_msg *r;
    if (err == TR_OK && tr_msg_new(&r, ctx, TR_PORT_TAG_OK) == TR_OK) {
        tr_reply(ctx, m, r); /* a caller that gave up is counted by the runtime */
        return;
    }
    tr_reply_error(ctx, m, err != TR_OK ? err : TR_ENOMEM);
}

static void port_write(tr_ctx *ctx, struct port *p, const tr_msg *m)
{
    const uint8_t *bytes = NULL;
    size_t len = 0, hlen = 0;
    uint8_t header[4];
    tr_err err = write_bytes(p, m, &bytes, &len, header, &hlen);
    bool wake = false;
    if (err == TR_OK) {
        pthread_mutex_lock(&p->mu);
        wake = p->wlen == p->woff;
        err = wbuf_append(p, header, hlen, bytes, len);
        pthread_mutex_unlock(&p->mu);
    }
    if (err == TR_OK) {
        port_count(&p->cfg.ctr->in_msgs, 1);
        if (wake)
            tr__port_wake(p);
    } else {
        port_count(&p->cfg.ctr->in_refused, 1);
    }
    port_answer(ctx, m, err);
}

/* Handles one message; returns false when the port must exit. */
static bool port_handle(tr_ctx *ctx, struct port *p, const tr_msg *m)
{
    if (tr_msg_is(m, PORT_TAG_KICK)) {
        pthread_mutex_lock(&p->mu);
        p->kick_pending = false;
        pthread_mutex_unlock(&p->mu);
        return true;
    }
    if (tr_msg_is(m, TR_TAG_DOWN)) {
        tr_ref who;
        tr_monitor_id id;
        tr_reason why;
        if (tr_msg_down_info(m, &who, &id, &why) == TR_OK && id == p->owner_mon) {
            port_set_quit(ctx, TR_EXIT_SHUTDOWN, 0, "port owner exited");
            return false;
        }
        return true;
    }
    if (tr_msg_is(m, TR_PORT_TAG_EOF)) {
        pthread_mutex_lock(&p->mu);
        bool wake = !p->eof_requested && !p->stdin_closed;
        p->eof_requested = true;
        pthread_mutex_unlock(&p->mu);
        if (wake)
            tr__port_wake(p);
        port_answer(ctx, m, TR_OK);
        return true;
    }
    port_write(ctx, p, m);
    return true;
}

/* While stdin has a backlog the port takes only its own messages. */
static bool port_match_control(const tr_msg *m, void *udata)
{
    return tr_msg_is(m, PORT_TAG_KICK) || tr_msg_is(m, TR_TAG_DOWN);
}

static bool port_input_full(struct port *p)
{
    pthread_mutex_lock(&p->mu);
    bool full = !p->stdin_closed && p->wlen - p->woff >= PORT_WRITE_HIGH;
    if (full)
        p->write_waiting = true;
    pthread_mutex_unlock(&p->mu);
    return full;
}

static int port_run(tr_ctx *ctx, void *state)
{
    struct port *p = state;
    for (;;) {
        int32_t timeout = TR_FOREVER;
        if (!port_deliver(ctx, p, &timeout))
            return 0;
        tr_msg *m;
        tr_err err = tr_receive(ctx, NULL, port_input_full(p) ? port_match_control : NULL, NULL,
                                timeout, &m);
        if (err == TR_ETIMEDOUT)
            continue;
        if (err != TR_OK)
            return err == TR_ESTOPPED ? 0 : err; /* told to exit: the reason is set */
        bool more = port_handle(ctx, p, m);
        tr_msg_free(m);
        if (!more)
            return 0;
    }
}

static void port_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    struct port *p = state;
    if (p == NULL || p->cfg.ctr == NULL)
        return;
    if (p->io_running) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_mutex_unlock(&p->mu);
        tr__port_wake(p);
        pthread_join(p->io, NULL);
    } else {
        tr__port_kill_reap(p);
    }
    /* Output never delivered: what the actor held and what is still in
     * the ring. */
    uint64_t dropped = 0;
    for (uint32_t i = p->held_pos; i < p->held_n; i++, dropped++)
        tr_msg_free(p->held[i]);
    for (uint32_t i = 0; i < p->out_n; i++, dropped++)
        tr_msg_free(p->out[(p->out_head + i) % PORT_OUT_MSGS]);
    if (dropped > 0)
        port_count(&p->cfg.ctr->out_dropped, dropped);
    if (p->wlen > p->woff)
        port_count(&p->cfg.ctr->in_bytes_lost, p->wlen - p->woff);
    free(p->wbuf);
    if (p->wakefd >= 0)
        close(p->wakefd);
    if (p->inited) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    port_count(&p->cfg.ctr->exited, 1);
}

static const tr_behaviour port_behaviour = {
    .name = "port",
    .state_size = sizeof(struct port),
    .init = port_init,
    .run = port_run,
    .terminate = port_terminate,
};

/* ---- spawning ------------------------------------------------------------ */

tr_err tr_port_spawn(tr_ref *out, tr_ctx *ctx, const char *const *argv, const tr_port_opts *opts)
{
    static const tr_port_opts defaults = TR_PORT_OPTS_INIT;
    const tr_port_opts *o = opts != NULL ? opts : &defaults;
    if (out == NULL || ctx == NULL || argv == NULL || argv[0] == NULL || argv[0][0] == '\0')
        return TR_EINVAL;
    if ((unsigned)o->framing > TR_PORT_FRAMES || (unsigned)o->err > TR_PORT_STDERR_MESSAGES ||
        o->max_msg > TR_PAYLOAD_MAX || o->spawn.trap_exit)
        return TR_EINVAL;
    struct port_ctrs *ctr = ctrs_for(tr_ctx_runtime(ctx), true);
    if (ctr == NULL)
        return TR_ENOMEM;

    struct port_start *st = calloc(1, sizeof *st);
    tr_msg *args = NULL;
    tr_err err = st == NULL ? TR_ENOMEM : tr_msg_new(&args, ctx, "port.start");
    if (err == TR_OK)
        err = tr_pack_bin(args, &st, sizeof st);
    if (err == TR_OK)
        err = command_start(st, argv, o);
    if (err != TR_OK) {
        tr_msg_free(args);
        free(st);
        port_count(&ctr->spawn_failed, 1);
        return err;
    }
    st->owner = tr_ref_is_nil(o->owner) ? tr_self(ctx) : o->owner;
    st->framing = o->framing;
    st->max_msg = o->max_msg != 0 ? o->max_msg : 64u * 1024u;
    st->grace_ms = o->kill_grace_ms != 0 ? o->kill_grace_ms : 2000u;
    st->bounded = o->spawn.mailbox_limit != 0;
    st->ctr = ctr;

    tr_spawn_opts so = o->spawn;
    so.kind = TR_THREAD;
    tr_ref ref;
    err = tr_spawn(&ref, ctx, &port_behaviour, args, &so);
    if (err != TR_OK) {
        tr_msg_free(args);
        command_abandon(st);
        free(st);
        port_count(&ctr->spawn_failed, 1);
        return err;
    }
    port_count(&ctr->spawned, 1);
    *out = ref;
    return TR_OK;
}
