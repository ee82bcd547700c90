/*
 * forksrv.h — the fork server: a small single-threaded helper process that
 * forks process actors on a runtime's behalf, reaps them and reports how
 * each one ended.
 *
 * Why it exists: a forked child of a multi-threaded process may only call
 * async-signal-safe functions until it execs, and nng aborts in a child of
 * a process that has used it. So a runtime forks this server at start-up,
 * while the process is still single-threaded and has not touched nng; every
 * later child is forked by the server, a single-threaded process, and may
 * therefore start threads, allocate and use nng freely.
 *
 * A child is a fork of the same program image, so it runs a function named
 * by its pointer. It sees the program as it was when the server was
 * started, not as it is when it is spawned: heap state, file descriptors
 * and signal handlers are those of the start-up moment.
 *
 * Lifetime: the server lives until the caller's end of its sockets closes
 * (tr__forksrv_stop, or the calling process dying), then kills (SIGKILL)
 * and reaps every child still alive and exits. Children die (SIGKILL) if
 * the server itself is killed, so none outlives it.
 *
 * All functions but start and stop are thread-safe. None aborts on
 * anything the server or a child can do.
 */
#ifndef TROUPE_FORKSRV_H
#define TROUPE_FORKSRV_H

#include "troupe.h"

#include <stddef.h>

/* Largest argument tr__forksrv_spawn copies to a child, in bytes. */
#define FORKSRV_ARG_MAX (64u * 1024u)

/* What a spawned child runs. arg is the child's copy of the spawn argument
 * (NULL when len is 0; aligned for any type), owned by the child and valid
 * for its whole life. fd is the descriptor passed to tr__forksrv_spawn_fd
 * (the child's own copy, close-on-exec), or -1. When entry returns, the child flushes stdio and
 * exits with status 0. A child that cannot set itself up exits with 127 before entry runs. */
typedef void (*forksrv_entry_fn)(const void *arg, size_t len, int fd);

struct forksrv;

/* Forks the fork server and returns its handle in *out, owned by the
 * caller until tr__forksrv_stop. Must be called while the process has one
 * thread and before it uses nng; flushes stdio first so that no child
 * inherits buffered output. The server, and through it every child, keeps
 * every descriptor the process has open at this moment (close-on-exec
 * does not apply: nothing execs), so start it before opening others. Errors: TR_EINVAL (NULL out),
 * TR_ENOMEM, TR_ESYS (socketpair or fork failed). Not thread-safe. */
tr_err tr__forksrv_start(struct forksrv **out);

/* Asks the server to fork a child that runs entry(copy of arg, len, -1)
 * and stores the child's pid in *pid_out. Copies len bytes of arg (the
 * caller keeps arg). Blocks until the server answers; requests from
 * several threads are served one at a time. The child's exit is reported
 * later by tr__forksrv_next_exit — possibly before this call has returned
 * to its caller in another thread, so a caller that maps pids to actors
 * should hold its own lock across this call and the mapping, and take it
 * before looking up a pid from an exit event. Errors: TR_EINVAL (NULL fs,
 * entry or pid_out, NULL arg with len > 0), TR_ETOOBIG (len over
 * FORKSRV_ARG_MAX), TR_ENOMEM (the server is out of memory), TR_ESYS
 * (fork failed), TR_ESTOPPED (the server is gone). */
tr_err tr__forksrv_spawn(struct forksrv *fs, forksrv_entry_fn entry, const void *arg, size_t len,
                         int *pid_out);

/* The same, and hands the child a copy of descriptor fd (its entry's fd
 * argument; -1 = none, as tr__forksrv_spawn). The caller keeps fd and
 * closes it when it likes; no other child gets a copy. Errors: those of
 * tr__forksrv_spawn, and TR_EINVAL for fd < -1. */
tr_err tr__forksrv_spawn_fd(struct forksrv *fs, forksrv_entry_fn entry, const void *arg, size_t len,
                            int fd, int *pid_out);

/* A descriptor that polls readable (POLLIN) while exit events wait to be
 * read with tr__forksrv_next_exit, and also once the server is gone (then
 * next_exit returns TR_ESTOPPED: stop polling it). Owned by fs; do not
 * read or close it. */
int tr__forksrv_event_fd(struct forksrv *fs);

/* The next child exit: its pid and raw wait status (test it with
 * WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG). Each child spawned is
 * reported exactly once, after the server has reaped it. Waits up to
 * timeout_ms (0 = do not wait, negative = no limit). Several threads may
 * call it; each event goes to one of them. Errors: TR_EINVAL (NULL
 * argument), TR_ETIMEDOUT (no event in time), TR_ESTOPPED (the server is
 * gone and every event it sent has been read), TR_ESYS. */
tr_err tr__forksrv_next_exit(struct forksrv *fs, int *pid, int *status, int timeout_ms);

/* Asks the server to send signal sig (1 ..< NSIG, or 0 to probe) to its
 * child pid. Blocks until the server answers. Errors: TR_EINVAL (NULL fs,
 * bad sig), TR_ENOACTOR (pid is not a child of the server that it has not
 * yet reported as exited), TR_ESYS (kill failed), TR_ESTOPPED (the server
 * is gone). A child that has exited but is not yet reaped still counts as
 * the server's child: signalling it does nothing and returns TR_OK. */
tr_err tr__forksrv_kill(struct forksrv *fs, int pid, int sig);

/* The server's process id, for diagnostics and tests. */
int tr__forksrv_pid(struct forksrv *fs);

/* Closes the connection to the server, which kills and reaps its
 * children and exits; waits for it to exit (blocks), then frees fs.
 * Events not yet read are discarded. No other call on fs may be running
 * or follow. NULL is ignored. */
void tr__forksrv_stop(struct forksrv *fs);

#endif /* TROUPE_FORKSRV_H */
