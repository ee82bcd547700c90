/*
 * forksrv.c — the fork server (see forksrv.h): the server process's loop,
 * the children it forks, and the calls a runtime makes to it.
 *
 * This file owns the server process and its children's first moments. It
 * must not use nng, start threads in the server, or let the server or a
 * child run anything the parent registered (atexit handlers, stdio buffers
 * from before start-up): both leave only through _exit.
 *
 * Two channels. The client and the server share two SOCK_SEQPACKET
 * socketpairs, so every message arrives whole and alone:
 *   - the request socket carries requests (spawn, kill) to the server and
 *     exactly one reply per request back. A client mutex is held from
 *     sending a request until its reply is read, so one request is in
 *     flight and the reply read is always its own (a sequence number
 *     checks it);
 *   - the event socket carries only exit events (pid + raw wait status),
 *     server to client. Its client end is the event fd the runtime polls,
 *     and any thread may read it: a seqpacket recv takes one whole event.
 * Replies and events never share a socket, so neither side has to queue
 * the one while waiting for the other, and a thread waiting for a reply
 * never consumes an event meant for the poller (or the reverse).
 *
 * Reaping. The server is single-threaded and sleeps in poll() on the
 * request socket, a signalfd and — while it holds events the client has
 * not taken yet — the event socket for writing. SIGCHLD and SIGTERM are
 * blocked and read from the signalfd, so no handler runs and no signal
 * interrupts the loop half-way. Signals coalesce, so on any SIGCHLD the
 * server calls waitpid(-1, WNOHANG) until no child is left to reap; each
 * reaped child becomes an event. Events are sent without blocking: when
 * the client does not read them, they wait in a queue in the server,
 * whose room (one slot per live child) is reserved before each fork, so
 * reaping never allocates and never fails, and a slow reader never stops
 * the server from answering requests.
 *
 * Shutdown. The server stops when the request or event socket reports
 * end-of-file or an error (the client closed it, or the client process
 * died), or when its parent has died: PR_SET_PDEATHSIG delivers SIGTERM
 * then. The parent-death signal also fires when merely the thread that
 * forked the server exits, so on SIGTERM the server checks getppid() and
 * stays while its parent lives. Stopping, it closes its sockets, sends
 * SIGKILL to every child not yet reaped, waits for each, and exits.
 * Each child asks for SIGKILL as its own parent-death signal, so even a
 * server killed outright leaves no child behind.
 *
 * Passing a descriptor. A spawn request may carry one descriptor as
 * SCM_RIGHTS ancillary data; the server hands it to the child as entry's
 * fd (and closes its own copy), and closes any more it receives. It
 * arrives close-on-exec: a child that execs and wants to keep it clears
 * the flag. tr__forksrv_spawn_fd sends one; tr__forksrv_spawn does not,
 * and its children get -1.
 */
#include "forksrv.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Protocol                                                                  */
/* ------------------------------------------------------------------------ */

/* Request kinds. */
enum forksrv_op {
    FORKSRV_SPAWN = 1, /* fork a child running entry(arg, len, fd) */
    FORKSRV_KILL = 2,  /* send sig to child pid */
};

/* A request: this header, then (spawn only) len argument bytes, in one
 * seqpacket message. Both ends are the same program image, so the entry
 * pointer travels as it is. */
struct forksrv_req {
    uint32_t op;            /* enum forksrv_op */
    uint32_t seq;           /* echoed in the reply */
    forksrv_entry_fn entry; /* spawn: what the child runs */
    int32_t pid;            /* kill: the child */
    int32_t sig;            /* kill: the signal */
    uint32_t len;           /* spawn: argument bytes after the header */
    uint32_t reserved;      /* zero */
};

/* The argument follows the header in a malloc'd buffer; a header of whole
 * max_align_t units keeps it aligned for any type. */
_Static_assert(sizeof(struct forksrv_req) % _Alignof(max_align_t) == 0,
               "the spawn argument must stay aligned");

/* The answer to one request. */
struct forksrv_reply {
    uint32_t seq; /* the request's */
    int32_t err;  /* tr_err */
    int32_t pid;  /* spawn: the child's pid when err is TR_OK */
    int32_t reserved;
};

/* One child's exit, on the event socket. */
struct forksrv_event {
    int32_t pid;
    int32_t status; /* raw waitpid status */
};

/* Largest request: header plus the largest argument. */
#define FORKSRV_REQ_MAX (sizeof(struct forksrv_req) + FORKSRV_ARG_MAX)
/* Descriptors the server accepts with one request (it keeps the first). */
#define FORKSRV_FDS_MAX 4

/* ------------------------------------------------------------------------ */
/* The server process                                                        */
/* ------------------------------------------------------------------------ */

/* Signals whose disposition the server changes, restored in each child:
 * SIGCHLD and SIGTERM go to default (blocked, read from the signalfd; an
 * ignored signal would never reach it), and the terminal's and a broken
 * pipe's signals are ignored, so that a Ctrl-C meant for the program does
 * not take the server away from a parent that handles it. */
static const int forksrv_sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGPIPE};
#define FORKSRV_NSIGS (sizeof forksrv_sigs / sizeof forksrv_sigs[0])

/* The server's state; lives on the server's stack. */
struct forksrv_server {
    int req;      /* requests in, replies out */
    int evt;      /* exit events out */
    int sigfd;    /* SIGCHLD and SIGTERM */
    pid_t parent; /* the process that started the server */
    pid_t self;   /* the server's pid, which children check */
    sigset_t child_mask;
    struct sigaction child_act[FORKSRV_NSIGS];
    pid_t *kids; /* children not yet reaped */
    size_t nkids, kids_cap;
    struct forksrv_event *evq; /* reaped, not yet sent: [evq_head, evq_tail) */
    size_t evq_head, evq_tail, evq_cap;
    unsigned char *buf; /* one request, FORKSRV_REQ_MAX bytes */
};

/* Kills every child not yet reaped, waits for each and exits. The sockets
 * close first, so a client reading events learns at once. */
static _Noreturn void forksrv_shutdown(struct forksrv_server *s)
{
    close(s->req);
    close(s->evt);
    for (size_t i = 0; i < s->nkids; i++)
        kill(s->kids[i], SIGKILL);
    for (size_t i = 0; i < s->nkids; i++) {
        while (waitpid(s->kids[i], NULL, 0) < 0 && errno == EINTR) {
        }
    }
    _exit(0);
}

/* Makes room for one more child and for its exit event, so that neither
 * the fork's bookkeeping nor reaping needs memory later. Keeps the
 * invariant evq_tail + nkids <= evq_cap. Returns false when out of memory. */
static bool forksrv_reserve(struct forksrv_server *s)
{
    if (s->nkids == s->kids_cap) {
        size_t cap = s->kids_cap ? 2 * s->kids_cap : 16;
        pid_t *kids = realloc(s->kids, cap * sizeof *kids);
        if (kids == NULL)
            return false;
        s->kids = kids;
        s->kids_cap = cap;
    }
    size_t queued = s->evq_tail - s->evq_head;
    if (s->evq_head > 0) {
        memmove(s->evq, s->evq + s->evq_head, queued * sizeof *s->evq);
        s->evq_head = 0;
        s->evq_tail = queued;
    }
    size_t need = queued + s->nkids + 1;
    if (need > s->evq_cap) {
        size_t cap = s->evq_cap ? 2 * s->evq_cap : 16;
        if (cap < need)
            cap = need;
        struct forksrv_event *evq = realloc(s->evq, cap * sizeof *evq);
        if (evq == NULL)
            return false;
        s->evq = evq;
        s->evq_cap = cap;
    }
    return true;
}

/* Index of pid among the live children, or -1. */
static ptrdiff_t forksrv_find(const struct forksrv_server *s, pid_t pid)
{
    for (size_t i = 0; i < s->nkids; i++) {
        if (s->kids[i] == pid)
            return (ptrdiff_t)i;
    }
    return -1;
}

/* Reaps every child that has ended and queues its exit event. */
static void forksrv_reap(struct forksrv_server *s)
{
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            return;
        ptrdiff_t i = forksrv_find(s, pid);
        if (i < 0)
            continue; /* not forked by this loop; cannot happen */
        s->kids[i] = s->kids[--s->nkids];
        /* forksrv_reserve left a slot for every live child. */
        assert(s->evq_tail < s->evq_cap);
        s->evq[s->evq_tail++] = (struct forksrv_event){.pid = pid, .status = status};
    }
}

/* Reads the pending signals and reaps. Returns false when the server must
 * stop: SIGTERM came and the parent is gone. */
static bool forksrv_on_signals(struct forksrv_server *s)
{
    bool term = false;
    struct signalfd_siginfo si[16];
    for (;;) {
        ssize_t n = read(s->sigfd, si, sizeof si);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < (ssize_t)sizeof si[0])
            break;
        for (size_t i = 0; i < (size_t)n / sizeof si[0]; i++) {
            if (si[i].ssi_signo == SIGTERM)
                term = true;
        }
    }
    forksrv_reap(s);
    return !(term && getppid() != s->parent);
}

/* Sends queued events until the socket is full. Returns false when the
 * client has gone. */
static bool forksrv_flush(struct forksrv_server *s)
{
    while (s->evq_head < s->evq_tail) {
        ssize_t n = send(s->evt, &s->evq[s->evq_head], sizeof *s->evq, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n != (ssize_t)sizeof *s->evq)
            return false;
        s->evq_head++;
    }
    s->evq_head = s->evq_tail = 0;
    return true;
}

/* The child's side of a spawn: drops the server's descriptors and signal
 * set-up, asks to die with the server, runs entry and exits. */
static _Noreturn void forksrv_child(struct forksrv_server *s, const struct forksrv_req *req, int fd)
{
    close(s->req);
    close(s->evt);
    close(s->sigfd);
    for (size_t i = 0; i < FORKSRV_NSIGS; i++)
        sigaction(forksrv_sigs[i], &s->child_act[i], NULL);
    sigprocmask(SIG_SETMASK, &s->child_mask, NULL);
    /* A server that died before the prctl took effect is caught by the
     * getppid check, and the child ends as if the signal had come. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        _exit(127);
    if (getppid() != s->self)
        kill(getpid(), SIGKILL);
    const void *arg = req->len > 0 ? s->buf + sizeof *req : NULL;
    req->entry(arg, req->len, fd);
    fflush(NULL);
    _exit(0);
}

/* Serves a spawn request whose header is *req and whose argument follows
 * it in s->buf; fills rep. */
static void forksrv_spawn_child(struct forksrv_server *s, const struct forksrv_req *req, int fd,
                                struct forksrv_reply *rep)
{
    if (!forksrv_reserve(s)) {
        rep->err = TR_ENOMEM;
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        rep->err = TR_ESYS;
        return;
    }
    if (pid == 0)
        forksrv_child(s, req, fd);
    s->kids[s->nkids++] = pid;
    rep->pid = pid;
}

/* Serves a kill request: only live children of this server. */
static tr_err forksrv_signal_child(struct forksrv_server *s, int32_t pid, int32_t sig)
{
    if (sig < 0 || sig >= NSIG)
        return TR_EINVAL;
    if (pid <= 0 || forksrv_find(s, pid) < 0)
        return TR_ENOACTOR;
    return kill(pid, sig) == 0 ? TR_OK : TR_ESYS;
}

/* Takes the descriptors passed with a request: returns the first (or -1)
 * and closes the others. */
static int forksrv_take_fds(struct msghdr *mh)
{
    int keep = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
            if (keep < 0)
                keep = fd;
            else
                close(fd);
        }
    }
    return keep;
}

/* Reads one request and answers it. Returns false when the client has
 * gone. */
static bool forksrv_serve_request(struct forksrv_server *s)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(FORKSRV_FDS_MAX * sizeof(int))];
    } ctl;
    struct iovec iov = {.iov_base = s->buf, .iov_len = FORKSRV_REQ_MAX};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t n = recvmsg(s->req, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0)
        return false; /* end-of-file: the client closed */
    int fd = forksrv_take_fds(&mh);

    struct forksrv_req req;
    struct forksrv_reply rep = {.err = TR_OK};
    if ((size_t)n < sizeof req) {
        rep.err = TR_EINVAL;
    } else {
        memcpy(&req, s->buf, sizeof req);
        rep.seq = req.seq;
        if (mh.msg_flags & MSG_TRUNC)
            rep.err = TR_ETOOBIG;
        else if (req.op == FORKSRV_SPAWN && req.entry != NULL && req.len <= FORKSRV_ARG_MAX &&
                 req.len == (size_t)n - sizeof req)
            forksrv_spawn_child(s, &req, fd, &rep);
        else if (req.op == FORKSRV_KILL)
            rep.err = forksrv_signal_child(s, req.pid, req.sig);
        else
            rep.err = TR_EINVAL;
    }
    if (fd >= 0)
        close(fd);

    for (;;) {
        ssize_t w = send(s->req, &rep, sizeof rep, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        return w == (ssize_t)sizeof rep;
    }
}

/* The server process: sets up its signals and serves until it must stop.
 * req and evt are its ends of the two sockets; parent started it. */
static _Noreturn void forksrv_serve(int req, int evt, pid_t parent)
{
    struct forksrv_server s = {.req = req, .evt = evt, .sigfd = -1, .parent = parent};
    s.self = getpid();

    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGCHLD);
    sigaddset(&blocked, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &blocked, &s.child_mask) != 0)
        _exit(1);
    for (size_t i = 0; i < FORKSRV_NSIGS; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = i < 2 ? SIG_DFL : SIG_IGN; /* SIGCHLD, SIGTERM first */
        if (sigaction(forksrv_sigs[i], &sa, &s.child_act[i]) != 0)
            _exit(1);
    }
    s.sigfd = signalfd(-1, &blocked, SFD_NONBLOCK | SFD_CLOEXEC);
    s.buf = malloc(FORKSRV_REQ_MAX);
    if (s.sigfd < 0 || s.buf == NULL)
        _exit(1);
    /* A parent that died before the prctl took effect is caught by the
     * getppid check; one that dies later sends SIGTERM. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        _exit(1);

    for (;;) {
        struct pollfd p[3] = {
            {.fd = s.req, .events = POLLIN},
            {.fd = s.sigfd, .events = POLLIN},
            {.fd = s.evt, .events = s.evq_head < s.evq_tail ? POLLOUT : 0},
        };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            forksrv_shutdown(&s);
        }
        if ((p[1].revents & POLLIN) && !forksrv_on_signals(&s))
            forksrv_shutdown(&s);
        if ((p[2].revents & (POLLHUP | POLLERR)) || !forksrv_flush(&s))
            forksrv_shutdown(&s);
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !forksrv_serve_request(&s))
            forksrv_shutdown(&s);
    }
}

/* ------------------------------------------------------------------------ */
/* The client                                                                */
/* ------------------------------------------------------------------------ */

struct forksrv {
    int req;              /* request socket; used under lock */
    int evt;              /* event socket; any thread may read it */
    pid_t pid;            /* the server */
    pthread_mutex_t lock; /* held from sending a request to reading its reply */
    uint32_t seq;         /* number of the last request; under lock */
    bool gone;            /* under lock: the request socket closed or broke */
};

tr_err tr__forksrv_start(struct forksrv **out)
{
    if (out == NULL)
        return TR_EINVAL;
    *out = NULL;
    struct forksrv *fs = calloc(1, sizeof *fs);
    if (fs == NULL)
        return TR_ENOMEM;
    int rq[2] = {-1, -1}, ev[2] = {-1, -1};
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rq) != 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ev) != 0)
        goto fail;
    if (pthread_mutex_init(&fs->lock, NULL) != 0)
        goto fail;
    /* Buffered output would otherwise be written again by every child
     * that flushes. */
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        pthread_mutex_destroy(&fs->lock);
        goto fail;
    }
    if (pid == 0) {
        close(rq[0]);
        close(ev[0]);
        forksrv_serve(rq[1], ev[1], parent);
    }
    close(rq[1]);
    close(ev[1]);
    fs->req = rq[0];
    fs->evt = ev[0];
    fs->pid = pid;
    *out = fs;
    return TR_OK;

fail:
    for (int i = 0; i < 2; i++) {
        if (rq[i] >= 0)
            close(rq[i]);
        if (ev[i] >= 0)
            close(ev[i]);
    }
    free(fs);
    return TR_ESYS;
}

/* Sends req (with len argument bytes) and reads its reply into *rep.
 * Returns the transport's error, or TR_OK with the server's in rep->err. */
static tr_err forksrv_call(struct forksrv *fs, struct forksrv_req *req, const void *arg, size_t len,
                           int fd, struct forksrv_reply *rep)
{
    tr_err e = TR_OK;
    pthread_mutex_lock(&fs->lock);
    if (fs->gone) {
        e = TR_ESTOPPED;
        goto out;
    }
    req->seq = ++fs->seq;
    req->len = (uint32_t)len;
    struct iovec iov[2] = {{.iov_base = req, .iov_len = sizeof *req},
                           {.iov_base = (void *)arg, .iov_len = len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    if (fd >= 0) {
        memset(&ctl, 0, sizeof ctl);
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do {
        n = sendmsg(fs->req, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EMSGSIZE) {
            e = TR_ETOOBIG; /* the socket's buffer is smaller than the request */
        } else {
            fs->gone = errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN;
            e = fs->gone ? TR_ESTOPPED : TR_ESYS;
        }
        goto out;
    }
    do {
        n = recv(fs->req, rep, sizeof *rep, MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
        fs->gone = true;
        e = TR_ESTOPPED;
    } else if (n != (ssize_t)sizeof *rep || rep->seq != req->seq || rep->err < 0 ||
               rep->err >= TR_ERR_COUNT_) {
        /* A reply went missing or is garbled: no later reply can be
         * trusted to answer its request. */
        fs->gone = true;
        e = TR_ESYS;
    }
out:
    pthread_mutex_unlock(&fs->lock);
    return e;
}

tr_err tr__forksrv_spawn(struct forksrv *fs, forksrv_entry_fn entry, const void *arg, size_t len,
                         int *pid_out)
{
    return tr__forksrv_spawn_fd(fs, entry, arg, len, -1, pid_out);
}

tr_err tr__forksrv_spawn_fd(struct forksrv *fs, forksrv_entry_fn entry, const void *arg, size_t len,
                            int fd, int *pid_out)
{
    if (fs == NULL || entry == NULL || pid_out == NULL || (arg == NULL && len > 0) || fd < -1)
        return TR_EINVAL;
    if (len > FORKSRV_ARG_MAX)
        return TR_ETOOBIG;
    struct forksrv_req req = {.op = FORKSRV_SPAWN, .entry = entry};
    struct forksrv_reply rep;
    tr_err e = forksrv_call(fs, &req, arg, len, fd, &rep);
    if (e != TR_OK)
        return e;
    if (rep.err != TR_OK)
        return (tr_err)rep.err;
    if (rep.pid <= 0)
        return TR_ESYS;
    *pid_out = rep.pid;
    return TR_OK;
}

tr_err tr__forksrv_kill(struct forksrv *fs, int pid, int sig)
{
    if (fs == NULL || sig < 0 || sig >= NSIG)
        return TR_EINVAL;
    if (pid <= 0)
        return TR_ENOACTOR; /* never a child; kill() would read it as a group */
    struct forksrv_req req = {.op = FORKSRV_KILL, .pid = pid, .sig = sig};
    struct forksrv_reply rep;
    tr_err e = forksrv_call(fs, &req, NULL, 0, -1, &rep);
    return e != TR_OK ? e : (tr_err)rep.err;
}

int tr__forksrv_event_fd(struct forksrv *fs) { return fs != NULL ? fs->evt : -1; }

int tr__forksrv_pid(struct forksrv *fs) { return fs != NULL ? fs->pid : -1; }

static int64_t forksrv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

tr_err tr__forksrv_next_exit(struct forksrv *fs, int *pid, int *status, int timeout_ms)
{
    if (fs == NULL || pid == NULL || status == NULL)
        return TR_EINVAL;
    int64_t deadline = forksrv_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        struct forksrv_event ev;
        /* Non-blocking, so that a thread that lost the race for an event
         * to another reader goes back to waiting with its own deadline. */
        ssize_t n = recv(fs->evt, &ev, sizeof ev, MSG_DONTWAIT | MSG_TRUNC);
        if (n == (ssize_t)sizeof ev && ev.pid > 0) {
            *pid = ev.pid;
            *status = ev.status;
            return TR_OK;
        }
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return TR_ESTOPPED;
        if (n > 0 || (n < 0 && errno == EINTR))
            continue; /* a malformed event is dropped */
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return TR_ESYS;
        int wait_ms = -1;
        if (timeout_ms >= 0) {
            int64_t left = deadline - forksrv_now_ms();
            if (left <= 0)
                return TR_ETIMEDOUT;
            wait_ms = left > INT32_MAX ? INT32_MAX : (int)left;
        }
        struct pollfd p = {.fd = fs->evt, .events = POLLIN};
        if (poll(&p, 1, wait_ms) < 0 && errno != EINTR)
            return TR_ESYS;
    }
}

void tr__forksrv_stop(struct forksrv *fs)
{
    if (fs == NULL)
        return;
    /* shutdown, not only close: a fork server started later by this
     * process, and its children, hold copies of these descriptors, and
     * close alone would not end the connection while they do. */
    shutdown(fs->req, SHUT_RDWR);
    shutdown(fs->evt, SHUT_RDWR);
    close(fs->req);
    close(fs->evt);
    /* ECHILD: someone else reaped it (or SIGCHLD is ignored); it is gone. */
    while (waitpid(fs->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    pthread_mutex_destroy(&fs->lock);
    free(fs);
}
