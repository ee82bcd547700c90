/*
 * port_io.c — a port's helper thread: the only code that touches the
 * command's pipes and its process. It reads stdout (and stderr when asked),
 * cuts lines or frames into messages for the owner, writes what the actor
 * queued to stdin, reaps the command, and ends or kills it.
 *
 * The helper never sends to the owner itself (the owner must see the
 * port's reference as sender): it puts messages in the port's bounded
 * ring and "kicks" the actor with a message. It reads only while the ring
 * has room, which is what bounds a port's memory. It must not call into
 * the actor's state outside the port's mutex, and must not block anywhere
 * but in poll (and, when killing, in the bounded wait for the command).
 */
#define _GNU_SOURCE
#include "port.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void tr__port_wake(struct port *p)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: a wake is pending. */
    ssize_t n = write(p->wakefd, &one, sizeof one);
    (void)n;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* ---- the command's process ---------------------------------------------- */

/* Reaps the command if it has exited; true once it is reaped. */
static bool try_reap(struct port *p)
{
    if (p->reaped)
        return true;
    int status;
    pid_t r;
    while ((r = waitpid(p->cfg.pid, &status, WNOHANG)) < 0 && errno == EINTR) {
    }
    if (r == p->cfg.pid) {
        p->reaped = true;
        p->status_known = true;
        p->status = status;
    } else if (r < 0) {
        /* ECHILD: someone else in this process reaped it. It is gone, but
         * its status is lost. */
        p->reaped = true;
        p->status_known = false;
    }
    return p->reaped;
}

/* Waits for the command to exit until deadline (monotonic ms; 0 = none). */
static void wait_reap(struct port *p, uint64_t deadline)
{
    while (!try_reap(p)) {
        uint64_t now = now_ms();
        if (deadline != 0 && now >= deadline)
            return;
        int timeout = deadline == 0 ? -1 : (int)(deadline - now);
        if (p->pidfd >= 0) {
            struct pollfd pf = {.fd = p->pidfd, .events = POLLIN};
            poll(&pf, 1, timeout);
        } else {
            /* No pidfd (kernel before 5.3): look again every 10 ms. */
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

/* Signals the command's process group, or the command alone if it left
 * the group. Only called before the command is reaped, so its pid (and
 * thus its group id) cannot have been reused. */
static void signal_command(struct port *p, int sig)
{
    if (kill(-p->cfg.pid, sig) < 0)
        kill(p->cfg.pid, sig);
}

void tr__port_kill_reap(struct port *p)
{
    /* A command still running when the port decided to end it counts as
     * killed, even if closing its stdin below makes it exit by itself. */
    bool running = !try_reap(p);
    /* Closing our ends first means the command cannot block on a pipe
     * while it handles SIGTERM. */
    close_fd(&p->in_fd);
    close_fd(&p->sout.fd);
    close_fd(&p->serr.fd);
    if (running) {
        port_count(&p->cfg.ctr->killed, 1);
        signal_command(p, SIGTERM);
        wait_reap(p, now_ms() + p->cfg.grace_ms);
        if (!p->reaped) {
            signal_command(p, SIGKILL);
            wait_reap(p, 0);
        }
    }
    close_fd(&p->pidfd);
}

static tr_reason exit_reason(const struct port *p)
{
    char text[TR_REASON_TEXT_MAX + 1];
    if (!p->status_known)
        return tr_reason_make(TR_EXIT_ERROR, TR_ESYS, "the command's exit status was lost");
    if (WIFEXITED(p->status)) {
        int code = WEXITSTATUS(p->status);
        if (code == 0)
            return tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
        snprintf(text, sizeof text, "exit status %d", code);
        return tr_reason_make(TR_EXIT_CODE, code, text);
    }
    if (WIFSIGNALED(p->status)) {
        int sig = WTERMSIG(p->status);
        snprintf(text, sizeof text, "killed by signal %d", sig);
        return tr_reason_make(TR_EXIT_SIGNAL, sig, text);
    }
    return tr_reason_make(TR_EXIT_ERROR, TR_ESYS, "unexpected wait status");
}

/* ---- talking to the actor ------------------------------------------------ */

/* Sends the actor a kick unless one is on its way. Called with mu held;
 * returns true when the caller must send it (after unlocking). */
static bool kick_needed(struct port *p)
{
    if (p->kick_pending || p->ioctx == NULL)
        return false;
    p->kick_pending = true;
    return true;
}

static void kick_send(struct port *p)
{
    tr_msg *k;
    if (tr_msg_new(&k, p->ioctx, PORT_TAG_KICK) != TR_OK)
        goto failed;
    /* A bounded mailbox could refuse a plain send; timer messages travel
     * in the control lane, which is never refused. */
    tr_err err = p->cfg.bounded ? tr_send_after(p->ioctx, p->self, k, 0, NULL)
                                : tr_send(p->ioctx, p->self, k);
    if (err == TR_OK)
        return;
    tr_msg_free(k);
failed:
    /* The actor is gone or the runtime is stopping (its exit will stop us),
     * or memory ran out: let the next event try again. */
    pthread_mutex_lock(&p->mu);
    p->kick_pending = false;
    pthread_mutex_unlock(&p->mu);
}

/* Output cut from the streams in one round, pushed to the ring at once. */
struct batch {
    tr_msg *m[PORT_OUT_MSGS];
    uint32_t n, room;
    size_t bytes, room_bytes;
    bool failed;
    tr_reason fail;
};

static bool batch_has_room(const struct batch *b)
{
    return !b->failed && b->n < b->room && b->bytes < b->room_bytes;
}

static void batch_fail(struct batch *b, tr_exit_kind kind, tr_err code, const char *text)
{
    if (!b->failed) {
        b->failed = true;
        b->fail = tr_reason_make(kind, code, text);
    }
}

static void batch_begin(struct port *p, struct batch *b)
{
    pthread_mutex_lock(&p->mu);
    b->room = PORT_OUT_MSGS - p->out_n;
    b->room_bytes = p->out_bytes < PORT_OUT_BYTES ? PORT_OUT_BYTES - p->out_bytes : 0;
    pthread_mutex_unlock(&p->mu);
    b->n = 0;
    b->bytes = 0;
}

/* Moves the batch to the ring. Returns false, and marks the helper
 * paused, when the ring is full: the actor wakes it once it has taken what
 * is there. */
static bool batch_push(struct port *p, struct batch *b)
{
    bool kick = false;
    pthread_mutex_lock(&p->mu);
    for (uint32_t i = 0; i < b->n; i++)
        p->out[(p->out_head + p->out_n++) % PORT_OUT_MSGS] = b->m[i];
    p->out_bytes += b->bytes;
    bool room = p->out_n < PORT_OUT_MSGS && p->out_bytes < PORT_OUT_BYTES;
    if (!room)
        p->out_paused = true;
    if (b->n > 0)
        kick = kick_needed(p);
    pthread_mutex_unlock(&p->mu);
    b->n = 0;
    b->bytes = 0;
    if (kick)
        kick_send(p);
    return room;
}

static void emit(struct batch *b, const char *tag, const uint8_t *bytes, size_t len, bool frame)
{
    tr_msg *m;
    tr_err err = tr_msg_new(&m, NULL, tag);
    if (err == TR_OK) {
        err = frame ? tr_msg_set_payload(m, bytes, len) : tr_pack_strn(m, (const char *)bytes, len);
        if (err != TR_OK)
            tr_msg_free(m);
    }
    if (err == TR_EBADMSG) {
        batch_fail(b, TR_EXIT_ERROR, TR_EBADMSG, "invalid frame from the command");
        return;
    }
    if (err != TR_OK) {
        batch_fail(b, TR_EXIT_ERROR, err, "cannot build output message");
        return;
    }
    b->m[b->n++] = m;
    b->bytes += len + PORT_MSG_OVERHEAD;
}

/* ---- cutting streams into messages --------------------------------------- */

/* Cuts what the stream buffer holds into messages while the batch has room. */
static void stream_cut(struct port *p, struct port_stream *s, struct batch *b)
{
    size_t off = 0;
    while (batch_has_room(b)) {
        size_t n = 0, used = 0;
        tr_err err = TR_OK;
        const char *why = NULL;
        const uint8_t *at = s->buf + off;
        port_cut cut = s->frames
                           ? tr__port_cut_frame(at, s->len - off, s->eof, p->cfg.max_msg, &n, &used,
                                                &err, &why)
                           : tr__port_cut_line(at, s->len - off, s->eof, p->cfg.max_msg, &n, &used);
        if (cut == PORT_CUT_MORE)
            break;
        if (cut == PORT_CUT_BAD) {
            port_count(&p->cfg.ctr->bad_frames, 1);
            batch_fail(b, TR_EXIT_ERROR, err, why);
            break;
        }
        if (cut == PORT_CUT_FRAME) {
            emit(b, s->tag_line, at + 4, n, true);
            if (b->failed && b->fail.code == TR_EBADMSG)
                port_count(&p->cfg.ctr->bad_frames, 1); /* not one msgpack object */
        } else {
            emit(b, cut == PORT_CUT_PART ? s->tag_part : s->tag_line, at, n, false);
            if (cut == PORT_CUT_PART)
                port_count(&p->cfg.ctr->parts, 1);
        }
        if (b->failed)
            break;
        off += used;
    }
    if (off > 0) {
        memmove(s->buf, s->buf + off, s->len - off);
        s->len -= off;
    }
}

static void stream_mark_eof(struct port_stream *s)
{
    s->eof = true;
    close_fd(&s->fd);
}

/* Cuts what is buffered, then reads and cuts until the pipe is empty, the
 * stream ends, or the batch is full. */
static void stream_pump(struct port *p, struct port_stream *s, struct batch *b)
{
    if (s->buf == NULL)
        return; /* not a stream of this port */
    for (;;) {
        stream_cut(p, s, b);
        if (!batch_has_room(b) || s->eof)
            return;
        ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len);
        if (n > 0) {
            s->len += (size_t)n;
        } else if (n == 0) {
            stream_mark_eof(s);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            /* After the command exited its output is complete in the pipe:
             * an empty pipe is the end, even if a background child of the
             * command still holds the write end. */
            if (p->reaped)
                stream_mark_eof(s);
            else
                return;
        } else if (errno != EINTR) {
            stream_mark_eof(s); /* a pipe read does not fail; treat it as the end */
        }
    }
}

static bool stream_done(const struct port_stream *s)
{
    return s->buf == NULL || (s->eof && s->len == 0);
}

static bool stream_init(struct port_stream *s, int fd, bool frames, uint32_t max_msg,
                        const char *tag_line, const char *tag_part)
{
    s->fd = fd;
    s->eof = false;
    s->frames = frames;
    s->len = 0;
    s->tag_line = tag_line;
    s->tag_part = tag_part;
    if (fd < 0) {
        s->buf = NULL;
        s->cap = 0;
        return true;
    }
    /* Lines: room for max_msg bytes and the '\n' that ends them. */
    s->cap = (size_t)max_msg + (frames ? 4 : 1);
    s->buf = malloc(s->cap);
    return s->buf != NULL;
}

/* ---- stdin --------------------------------------------------------------- */

/* Discards what waits for stdin and refuses more. Called with mu held. */
static void stdin_shut(struct port *p)
{
    size_t lost = p->wlen - p->woff;
    if (lost > 0)
        port_count(&p->cfg.ctr->in_bytes_lost, lost);
    p->woff = p->wlen = 0;
    p->stdin_closed = true;
    close_fd(&p->in_fd);
}

/* A write to a pipe nobody reads raises SIGPIPE in the writing thread; the
 * helper blocks it (see port.c), so it stays pending: take it back. */
static void sigpipe_clear(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) == SIGPIPE) {
    }
}

/* Writes what it can without blocking. Returns true when the actor must
 * be kicked (it waits for room, or stdin closed under it). */
static bool stdin_pump(struct port *p)
{
    bool sigpipe = false;
    pthread_mutex_lock(&p->mu);
    while (p->in_fd >= 0 && p->woff < p->wlen) {
        ssize_t n = write(p->in_fd, p->wbuf + p->woff, p->wlen - p->woff);
        if (n > 0) {
            p->woff += (size_t)n;
        } else if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else if (errno != EINTR) {
            sigpipe = errno == EPIPE;
            stdin_shut(p); /* the command closed stdin (or exited) */
        }
    }
    if (p->woff == p->wlen)
        p->woff = p->wlen = 0;
    if (p->in_fd >= 0 && p->eof_requested && p->wlen == 0)
        stdin_shut(p);
    bool kick = false;
    if (p->write_waiting && (p->stdin_closed || p->wlen - p->woff < PORT_WRITE_HIGH)) {
        p->write_waiting = false;
        kick = kick_needed(p);
    }
    pthread_mutex_unlock(&p->mu);
    if (sigpipe)
        sigpipe_clear();
    return kick;
}

/* ---- the loop ------------------------------------------------------------ */

/* Publishes the port's exit reason for the actor, which exits with it once
 * it has delivered the output before it. */
static void finish(struct port *p, const tr_reason *why)
{
    pthread_mutex_lock(&p->mu);
    stdin_shut(p);
    p->ended = true;
    p->end_reason = *why;
    bool kick = kick_needed(p);
    pthread_mutex_unlock(&p->mu);
    if (kick)
        kick_send(p);
}

static void drain_wakefd(struct port *p)
{
    uint64_t v;
    ssize_t n = read(p->wakefd, &v, sizeof v);
    (void)n; /* EAGAIN: nothing pending */
}

static void io_loop(struct port *p)
{
    struct batch *b = malloc(sizeof *b);
    bool frames = p->cfg.framing == TR_PORT_FRAMES;
    if (b == NULL ||
        !stream_init(&p->sout, p->cfg.out_fd, frames, p->cfg.max_msg,
                     frames ? TR_PORT_TAG_FRAME : TR_PORT_TAG_LINE, TR_PORT_TAG_PART) ||
        !stream_init(&p->serr, p->cfg.err_fd, false, p->cfg.max_msg, TR_PORT_TAG_ERR,
                     TR_PORT_TAG_ERRPART)) {
        tr__port_kill_reap(p);
        tr_reason why = tr_reason_make(TR_EXIT_ERROR, TR_ENOMEM, "no memory for the port");
        finish(p, &why);
        free(b);
        return;
    }
    b->failed = false;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop) {
            tr__port_kill_reap(p);
            break;
        }

        try_reap(p);
        batch_begin(p, b);
        stream_pump(p, &p->sout, b);
        stream_pump(p, &p->serr, b);
        bool room = batch_push(p, b);
        if (stdin_pump(p))
            kick_send(p);

        if (b->failed) {
            /* A bad frame (or no memory): the output before it is in the
             * ring; the command goes. */
            tr__port_kill_reap(p);
            finish(p, &b->fail);
            break;
        }
        if (p->reaped && stream_done(&p->sout) && stream_done(&p->serr)) {
            tr_reason why = exit_reason(p);
            close_fd(&p->pidfd);
            finish(p, &why);
            break;
        }

        struct pollfd pf[5];
        nfds_t n = 0;
        pf[n++] = (struct pollfd){.fd = p->wakefd, .events = POLLIN};
        if (!p->reaped && p->pidfd >= 0)
            pf[n++] = (struct pollfd){.fd = p->pidfd, .events = POLLIN};
        if (room && p->sout.fd >= 0)
            pf[n++] = (struct pollfd){.fd = p->sout.fd, .events = POLLIN};
        if (room && p->serr.fd >= 0)
            pf[n++] = (struct pollfd){.fd = p->serr.fd, .events = POLLIN};
        pthread_mutex_lock(&p->mu);
        if (p->in_fd >= 0 && p->woff < p->wlen)
            pf[n++] = (struct pollfd){.fd = p->in_fd, .events = POLLOUT};
        pthread_mutex_unlock(&p->mu);
        /* Without a pidfd the command's exit is noticed by looking. */
        int timeout = !p->reaped && p->pidfd < 0 ? 20 : -1;
        /* A stream that already ended may still hold buffered output the
         * ring had no room for: the actor's wake brings the helper back. */
        if (poll(pf, n, timeout) > 0 && (pf[0].revents & POLLIN))
            drain_wakefd(p);
    }
    free(b);
}

void *tr__port_io_main(void *arg)
{
    struct port *p = arg;
    tr_ctx *ioctx = NULL;
    tr_err err = tr_attach(&ioctx, p->rt);
    pthread_mutex_lock(&p->mu);
    p->ioctx = err == TR_OK ? ioctx : NULL;
    p->io_state = err == TR_OK ? 1 : -1;
    p->io_err = err;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    /* Without a context the actor's init fails and stops us at once; the
     * loop still ends the command. */
    io_loop(p);
    close_fd(&p->in_fd);
    close_fd(&p->sout.fd);
    close_fd(&p->serr.fd);
    close_fd(&p->pidfd);
    free(p->sout.buf);
    free(p->serr.buf);
    p->sout.buf = p->serr.buf = NULL;
    if (ioctx != NULL)
        tr_detach(ioctx);
    return NULL;
}
