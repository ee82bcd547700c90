/*
 * nngbench.h — what the raw nng baseline programs share: the clock, the
 * transport argument, the RESULT line, and a second process that listens
 * and tells its parent where (the programs fork before nng is touched:
 * nng refuses to run in a forked child of a process that used it).
 * Header-only so each program stays one .c file.
 */
#ifndef NNG_BENCH_H
#define NNG_BENCH_H

#include <nng/nng.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NB_MSG_SIZE 64 /* bytes per message: a 64-bit value, then padding */

static inline double nb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void nb_die(const char *what, int rv)
{
    fprintf(stderr, "nng bench: %s: %s\n", what, rv != 0 ? nng_strerror(rv) : "failed");
    fflush(stdout);
    _exit(1);
}

/* The transport: "tcp", or "ipc" ("proc" is taken as ipc: a process
 * actor's link is an ipc:// one). */
static inline bool nb_tcp(int argc, char **argv)
{
    const char *s = argc > 1 ? argv[1] : "ipc";
    if (strcmp(s, "tcp") == 0)
        return true;
    if (strcmp(s, "ipc") == 0 || strcmp(s, "proc") == 0)
        return false;
    fprintf(stderr, "%s: transport must be proc, ipc or tcp, got '%s'\n", argv[0], s);
    exit(2);
}

static inline long nb_arg(int argc, char **argv, int idx, long def)
{
    if (idx >= argc)
        return def;
    char *end;
    long v = strtol(argv[idx], &end, 10);
    if (*end != '\0' || v < 1) {
        fprintf(stderr, "%s: argument %d must be a positive integer\n", argv[0], idx);
        exit(2);
    }
    return v;
}

static inline void nb_result(const char *workload, long n, double seconds, const char *metric,
                             double value, const char *transport)
{
    printf("RESULT impl=nng workload=%s n=%ld seconds=%.6f metric=%s value=%.6g "
           "transport=%s check=ok\n",
           workload, n, seconds, metric, value, transport);
    fflush(stdout);
}

static inline void nb_write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        ssize_t w = write(fd, c, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(1);
        c += w;
        len -= (size_t)w;
    }
}

static inline bool nb_read_all(int fd, void *p, size_t len)
{
    char *c = p;
    while (len > 0) {
        ssize_t r = read(fd, c, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        c += r;
        len -= (size_t)r;
    }
    return true;
}

/* The listening side's address: a tcp port chosen by the kernel, or an
 * ipc path named after the parent's pid. */
static inline void nb_listen_url(char *buf, size_t len, bool tcp)
{
    if (tcp) {
        snprintf(buf, len, "tcp://127.0.0.1:0");
    } else {
        const char *dir = getenv("TMPDIR");
        snprintf(buf, len, "ipc://%s/nng-xbench-%ld.sock", dir && *dir ? dir : "/tmp",
                 (long)getppid());
    }
}

/* The address to dial, once the listener is up (port 0 resolved). */
static inline void nb_bound_url(char *buf, size_t len, bool tcp, nng_listener l)
{
    if (!tcp) {
        nb_listen_url(buf, len, false);
        return;
    }
    int port = 0;
    int rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
    if (rv != 0)
        nb_die("bound port", rv);
    snprintf(buf, len, "tcp://127.0.0.1:%d", port);
}

/* A value in a message body: 64-bit, at the start. */
static inline uint64_t nb_get(nng_msg *m)
{
    uint64_t v = 0;
    if (nng_msg_len(m) >= sizeof v)
        memcpy(&v, nng_msg_body(m), sizeof v);
    return v;
}

static inline void nb_put(nng_msg *m, uint64_t v) { memcpy(nng_msg_body(m), &v, sizeof v); }

/* A one-shot flag a callback raises and main waits for. */
typedef struct nb_done {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int err;
} nb_done;

#define NB_DONE_INIT                                                  \
    {                                                                 \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0 \
    }

static inline void nb_done_set(nb_done *d, int err)
{
    pthread_mutex_lock(&d->mu);
    if (!d->done) {
        d->done = true;
        d->err = err;
    }
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static inline int nb_done_wait(nb_done *d)
{
    pthread_mutex_lock(&d->mu);
    while (!d->done)
        pthread_cond_wait(&d->cv, &d->mu);
    int err = d->err;
    pthread_mutex_unlock(&d->mu);
    return err;
}

/* Waits for the child and checks its exit status. */
static inline void nb_child_end(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "nng bench: the other process ended with status %#x\n", status);
        _exit(1);
    }
}

#endif /* NNG_BENCH_H */
