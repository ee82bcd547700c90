/*
 * port.h — what the two halves of a port share: port.c (tr_port_spawn and
 * the port actor, which owns the mailbox side) and port_io.c (the helper
 * thread, which owns the command's pipes and reaps it). Not public.
 *
 * Ports use only troupe's public API; nothing here reaches into the
 * runtime's internals.
 */
#ifndef TROUPE_PORT_H
#define TROUPE_PORT_H

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

/* The message the helper thread sends the actor to say "look at the shared
 * state". Anyone may send it; it only makes the actor look. */
#define PORT_TAG_KICK "port.$kick"

/* Output read but not yet accepted by the owner, at most. */
#define PORT_OUT_MSGS 256u
#define PORT_OUT_BYTES (1u << 20)
/* Bytes of a message's payload plus what a message costs besides. */
#define PORT_MSG_OVERHEAD 128u
/* Bytes waiting for stdin above which the actor takes no more input. */
#define PORT_WRITE_HIGH (64u * 1024u)

/* Per-runtime counters; every field is bumped with a relaxed fetch_add. */
struct port_ctrs {
    _Atomic uint64_t spawned, spawn_failed, exited, killed, out_msgs, out_dropped, parts,
        bad_frames, owner_full, in_msgs, in_refused, in_bytes_lost;
};

static inline void port_count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* What tr_port_spawn hands the new actor: the started command. */
struct port_start {
    pid_t pid;
    int pidfd;                 /* -1 when the kernel has no pidfd_open */
    int in_fd, out_fd, err_fd; /* our ends; err_fd is -1 unless stderr is messages */
    tr_ref owner;
    tr_port_framing framing;
    uint32_t max_msg;
    uint32_t grace_ms;
    bool bounded; /* the port's mailbox is bounded: kicks go through a timer */
    struct port_ctrs *ctr;
};

/* One output stream of the command (stdout or stderr). Helper thread only. */
struct port_stream {
    int fd;   /* our read end; -1 once closed */
    bool eof; /* read end reached (or the command exited and the pipe ran dry) */
    bool frames;
    uint8_t *buf;
    size_t len, cap;
    const char *tag_line, *tag_part;
};

/* A port: the port actor's state block. */
struct port {
    /* Set by the actor's init before the helper starts; read-only after
     * (the descriptors in cfg move to in_fd, pidfd, sout and serr). */
    struct port_start cfg;
    tr_runtime *rt;
    tr_ref self;
    bool inited; /* mu, cv and wakefd exist */
    int wakefd;  /* eventfd: the actor wakes the helper's poll */

    /* Shared by the actor and the helper, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* the helper's start-up handshake */
    int io_state;               /* 0 starting, 1 running, -1 could not attach */
    tr_err io_err;              /* why it could not */
    tr_msg *out[PORT_OUT_MSGS]; /* ring of output for the owner */
    uint32_t out_head, out_n;
    size_t out_bytes;
    bool out_paused;   /* the helper stopped reading: wake it after taking */
    bool kick_pending; /* a kick is on its way to the actor */
    bool ended;        /* the helper is done; end_reason is the port's exit */
    tr_reason end_reason;
    uint8_t *wbuf; /* bytes for stdin: wbuf[woff..wlen) */
    size_t woff, wlen, wcap;
    bool eof_requested;
    bool stdin_closed;  /* no more writes: closed by EOF, by the command, or its end */
    bool write_waiting; /* the actor is waiting for wbuf to drain below the mark */
    bool stop;          /* the actor is exiting: kill the command and finish */

    pthread_t io;
    bool io_running; /* io was started and must be joined */

    /* Helper thread only (or the actor when no helper ever ran). */
    tr_ctx *ioctx; /* its attached context, for kicks; NULL if attaching failed */
    int in_fd;     /* our end of stdin; -1 once closed */
    int pidfd;
    struct port_stream sout, serr;
    bool reaped;
    bool status_known;
    int status;

    /* Actor only. */
    tr_monitor_id owner_mon;
    tr_msg *held[PORT_OUT_MSGS]; /* taken from out, not yet accepted by the owner */
    uint32_t held_pos, held_n;
    uint32_t full_tries; /* sends refused by a full owner in a row */
};

/* port_frame.c: what the front of an output buffer holds. */
typedef enum port_cut {
    PORT_CUT_MORE,  /* nothing complete: read more */
    PORT_CUT_LINE,  /* a line of *n bytes at buf (its '\n', if any, is not counted) */
    PORT_CUT_PART,  /* the first max bytes of a longer line */
    PORT_CUT_FRAME, /* a frame whose *n payload bytes start at buf + 4 */
    PORT_CUT_BAD    /* the stream is broken: *err and *why say how */
} port_cut;

/* Lines: looks at buf[0..len); eof says no more bytes will come. On LINE
 * and PART, *used bytes are consumed. */
port_cut tr__port_cut_line(const uint8_t *buf, size_t len, bool eof, uint32_t max, size_t *n,
                           size_t *used);
/* Frames (4-byte big-endian length, then that many bytes, 1..max): as
 * above; the payload is not checked to be msgpack here. */
port_cut tr__port_cut_frame(const uint8_t *buf, size_t len, bool eof, uint32_t max, size_t *n,
                            size_t *used, tr_err *err, const char **why);

/* port_io.c: the helper thread's body; arg is the struct port. */
void *tr__port_io_main(void *arg);
/* Wakes the helper's poll. Any thread. */
void tr__port_wake(struct port *p);
/* Closes the command's pipes, ends it (SIGTERM, then SIGKILL after the
 * grace period) unless it was reaped, and reaps it. For the helper, or for
 * the actor when no helper ever ran. Counts a kill. */
void tr__port_kill_reap(struct port *p);

#endif /* TROUPE_PORT_H */
