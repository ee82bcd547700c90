/*
 * bench.h — what every troupe benchmark program shares: argument parsing,
 * a monotonic clock, resident memory, and the one RESULT line the table
 * script reads. Header-only so each workload stays one .c file.
 */
#ifndef TROUPE_BENCH_H
#define TROUPE_BENCH_H

#include <troupe.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Seconds on the monotonic clock. */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident set size of this process in bytes, from /proc/self/statm. */
static inline long bench_rss_bytes(void)
{
    long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2)
        pages_resident = -1;
    fclose(f);
    return pages_resident < 0 ? -1 : pages_resident * sysconf(_SC_PAGESIZE);
}

/* Argument idx as a positive integer, or def when absent; exits on junk. */
static inline long bench_arg(int argc, char **argv, int idx, long def)
{
    if (idx >= argc)
        return def;
    char *end;
    long v = strtol(argv[idx], &end, 10);
    if (*end != '\0' || v < 1) {
        fprintf(stderr, "%s: argument %d must be a positive integer, got '%s'\n", argv[0], idx,
                argv[idx]);
        exit(2);
    }
    return v;
}

/* Prints what failed and exits non-zero when err is an error. */
static inline void bench_check(tr_err err, const char *what)
{
    if (err != TR_OK) {
        fprintf(stderr, "troupe bench: %s: %s (%s)\n", what, tr_err_name(err), tr_strerror(err));
        fflush(stdout);
        _exit(1);
    }
}

/* Exits non-zero with a message when a result is wrong. Uses _exit: it may
 * be called on a worker thread while the runtime runs. */
static inline void bench_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "troupe bench: wrong result: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stdout);
    _exit(1);
}

/* Prints the machine-readable line. extra is appended as is ("" for none;
 * e.g. "metric2=spawns_per_s value2=1e6"). */
static inline void bench_result(const char *workload, long n, double seconds, const char *metric,
                                double value, const char *extra)
{
    printf("RESULT impl=troupe workload=%s n=%ld seconds=%.6f metric=%s value=%.6g%s%s "
           "check=ok\n",
           workload, n, seconds, metric, value, extra[0] ? " " : "", extra);
    fflush(stdout);
}

/* Starts a runtime with its defaults and attaches the calling thread. */
static inline tr_ctx *bench_start(tr_runtime **rt)
{
    tr_ctx *ctx = NULL;
    bench_check(tr_runtime_start(rt, NULL), "start runtime");
    bench_check(tr_attach(&ctx, *rt), "attach main");
    return ctx;
}

/* Waits (on the attached main thread) for one message with tag and
 * returns its integer payload. */
static inline int64_t bench_wait_int(tr_ctx *ctx, const char *tag)
{
    tr_msg *m = NULL;
    int64_t v = 0;
    bench_check(tr_receive(ctx, tag, NULL, NULL, 600000, &m), "wait for result");
    bench_check(tr_msg_int(m, &v), "read result");
    tr_msg_free(m);
    return v;
}

/* Detaches main and frees the runtime (never timed). */
static inline void bench_stop(tr_runtime *rt, tr_ctx *ctx)
{
    tr_detach(ctx);
    tr_runtime_free(rt);
}

#endif /* TROUPE_BENCH_H */
