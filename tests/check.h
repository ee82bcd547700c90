/*
 * check.h — the small shared harness of troupe's tests.
 *
 * Each test is a standalone program: it checks what troupe.h promises and
 * exits non-zero at the first broken promise, naming the file, the line and
 * the expression. Helpers here start a runtime with the main thread
 * attached, wait for messages that must come (with generous time limits:
 * tests assert behaviour, never speed), and give stress tests a seeded
 * xorshift generator that prints its seed and honours `--seed N`.
 */
#ifndef TROUPE_TEST_CHECK_H
#define TROUPE_TEST_CHECK_H

#include "troupe.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Sanitizers slow everything down several times: stress loops scale down. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif
#ifndef TEST_SANITIZED
#define TEST_SANITIZED 0
#endif

/* How long a test waits for a message that must come. Only a broken
 * runtime ever waits this long, so it can be generous. */
#define TEST_WAIT_MS 10000

/* _Exit, not exit: other threads are still running and a leak report on
 * the way out would bury the message that matters. */
#define TEST_FAIL(...)                                  \
    do {                                                \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                   \
        fputc('\n', stderr);                            \
        fflush(stderr);                                 \
        fflush(stdout);                                 \
        _Exit(1);                                       \
    } while (0)

#define CHECK(cond)                               \
    do {                                          \
        if (!(cond))                              \
            TEST_FAIL("CHECK failed: %s", #cond); \
    } while (0)

/* expr must return TR_OK. */
#define CHECK_OK(expr)                                                                 \
    do {                                                                               \
        tr_err check_e_ = (expr);                                                      \
        if (check_e_ != TR_OK)                                                         \
            TEST_FAIL("%s returned %s, expected TR_OK", #expr, tr_err_name(check_e_)); \
    } while (0)

/* expr must return the error want. */
#define CHECK_ERR(expr, want)                                                      \
    do {                                                                           \
        tr_err check_e_ = (expr);                                                  \
        tr_err check_w_ = (want);                                                  \
        if (check_e_ != check_w_)                                                  \
            TEST_FAIL("%s returned %s, expected %s", #expr, tr_err_name(check_e_), \
                      tr_err_name(check_w_));                                      \
    } while (0)

/* Polls cond (every millisecond) until it holds; fails after TEST_WAIT_MS.
 * For values that settle asynchronously, such as counters: each thread
 * counts its own work, possibly just after the effect a test observed (a
 * timer's tick may arrive before timers_fired moves), so a test waits for
 * a counter to reach the value it must reach. */
#define WAIT_UNTIL(cond)                                       \
    do {                                                       \
        int64_t wait_deadline_ = test_now_ms() + TEST_WAIT_MS; \
        while (!(cond)) {                                      \
            if (test_now_ms() > wait_deadline_)                \
                TEST_FAIL("never became true: %s", #cond);     \
            test_sleep_ms(1);                                  \
        }                                                      \
    } while (0)

static inline int64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* True when TR_TEST_QUICK is set: stress tests run a smaller count. */
static inline int test_quick(void) { return getenv("TR_TEST_QUICK") != NULL; }

/* n, made smaller under sanitizers or TR_TEST_QUICK. */
static inline uint32_t test_scale(uint32_t n)
{
    if (test_quick())
        n /= 10;
    if (TEST_SANITIZED)
        n /= 2;
    return n ? n : 1;
}

/* ------------------------------------------------------------------------ */
/* Seeded xorshift64* generator                                              */
/* ------------------------------------------------------------------------ */

typedef struct test_rng {
    uint64_t s;
} test_rng;

/* The seed from `--seed N` (or `--seed=N`), else from the clock; printed
 * so a failing run can be repeated. */
static inline uint64_t test_seed(int argc, char **argv)
{
    uint64_t seed = 0;
    int given = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 0);
            given = 1;
        } else if (strncmp(argv[i], "--seed=", 7) == 0) {
            seed = strtoull(argv[i] + 7, NULL, 0);
            given = 1;
        }
    }
    if (!given) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed =
            ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    }
    printf("seed: %" PRIu64 " (repeat with --seed %" PRIu64 ")\n", seed, seed);
    fflush(stdout);
    return seed;
}

static inline void test_rng_init(test_rng *r, uint64_t seed)
{
    /* splitmix64 step so that nearby seeds give unrelated streams and the
     * state is never zero. */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    r->s = z ? z : 0x2545F4914F6CDD1Dull;
}

static inline uint64_t test_rng_next(test_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform enough in [0, n) for tests; n > 0. */
static inline uint32_t test_rng_below(test_rng *r, uint32_t n)
{
    return (uint32_t)((test_rng_next(r) >> 32) % n);
}

/* ------------------------------------------------------------------------ */
/* Runtime and messages                                                      */
/* ------------------------------------------------------------------------ */

/* Starts a runtime with `workers` workers and attaches the calling thread;
 * *ctx receives its context. */
static inline tr_runtime *test_start(uint32_t workers, tr_ctx **ctx)
{
    tr_runtime_opts opts = TR_RUNTIME_OPTS_INIT;
    opts.workers = workers;
    tr_runtime *rt = NULL;
    CHECK_OK(tr_runtime_start(&rt, &opts));
    CHECK(rt != NULL);
    CHECK_OK(tr_attach(ctx, rt));
    return rt;
}

/* Detaches ctx (may be NULL), stops rt draining and frees it. */
static inline void test_finish(tr_runtime *rt, tr_ctx *ctx)
{
    if (ctx)
        tr_detach(ctx);
    CHECK_OK(tr_runtime_stop(rt, TR_STOP_DRAIN));
    tr_runtime_free(rt);
}

static inline tr_counters test_counters(tr_runtime *rt)
{
    tr_counters c;
    memset(&c, 0, sizeof c);
    CHECK_OK(tr_runtime_counters(&c, rt));
    return c;
}

/* Receives the first message tagged tag (NULL = any) that passes match
 * (NULL = any) and must come; fails naming the caller's line otherwise.
 * The caller owns the result. */
#define test_recv_match(ctx, tag, match, udata) \
    test_recv_at(__FILE__, __LINE__, (ctx), (tag), (match), (udata))
#define test_recv(ctx, tag) test_recv_at(__FILE__, __LINE__, (ctx), (tag), NULL, NULL)
/* Receives a message tagged tag that must come and returns its integer
 * payload; the message is freed. */
#define test_recv_int(ctx, tag) test_recv_int_at(__FILE__, __LINE__, (ctx), (tag))
/* Checks that no message tagged tag (NULL = any) arrives within ms. */
#define test_recv_none(ctx, tag, ms) test_recv_none_at(__FILE__, __LINE__, (ctx), (tag), (ms))

static inline tr_msg *test_recv_at(const char *file, int line, tr_ctx *ctx, const char *tag,
                                   tr_match_fn match, void *udata)
{
    tr_msg *m = NULL;
    tr_err e = tr_receive(ctx, tag, match, udata, TEST_WAIT_MS, &m);
    if (e != TR_OK || m == NULL) {
        fprintf(stderr, "%s:%d: waiting for a '%s' message: %s\n", file, line, tag ? tag : "(any)",
                tr_err_name(e));
        fflush(stdout);
        _Exit(1);
    }
    return m;
}

static inline int64_t test_recv_int_at(const char *file, int line, tr_ctx *ctx, const char *tag)
{
    tr_msg *m = test_recv_at(file, line, ctx, tag, NULL, NULL);
    int64_t v = 0;
    tr_err e = tr_msg_int(m, &v);
    if (e != TR_OK) {
        fprintf(stderr, "%s:%d: '%s' message without an integer: %s\n", file, line, tr_msg_tag(m),
                tr_err_name(e));
        _Exit(1);
    }
    tr_msg_free(m);
    return v;
}

static inline void test_recv_none_at(const char *file, int line, tr_ctx *ctx, const char *tag,
                                     int32_t ms)
{
    tr_msg *m = NULL;
    tr_err e = tr_receive(ctx, tag, NULL, NULL, ms, &m);
    if (e != TR_ETIMEDOUT) {
        if (e == TR_OK)
            fprintf(stderr, "%s:%d: unexpected '%s' message\n", file, line, tr_msg_tag(m));
        else
            fprintf(stderr, "%s:%d: tr_receive returned %s, expected TR_ETIMEDOUT\n", file, line,
                    tr_err_name(e));
        fflush(stdout);
        _Exit(1);
    }
}

/* A new message with tag and an array of n integers as payload. */
static inline tr_msg *test_msg_ints(tr_ctx *ctx, const char *tag, uint32_t n, const int64_t *vals)
{
    tr_msg *m = NULL;
    CHECK_OK(tr_msg_new(&m, ctx, tag));
    CHECK_OK(tr_pack_array(m, n));
    for (uint32_t i = 0; i < n; i++)
        CHECK_OK(tr_pack_int(m, vals[i]));
    return m;
}

/* Reads a payload that is an array of exactly n integers into vals. */
static inline void test_read_ints(const tr_msg *m, uint32_t n, int64_t *vals)
{
    tr_cursor c;
    uint32_t got = 0;
    tr_cursor_init(&c, m);
    CHECK_OK(tr_cursor_array(&c, &got));
    CHECK(got == n);
    for (uint32_t i = 0; i < n; i++)
        CHECK_OK(tr_cursor_int(&c, &vals[i]));
    CHECK(tr_cursor_done(&c));
}

/* Sends tag with an array of integers; the message must be accepted. */
static inline void test_send_ints(tr_ctx *ctx, tr_ref to, const char *tag, uint32_t n,
                                  const int64_t *vals)
{
    CHECK_OK(tr_send(ctx, to, test_msg_ints(ctx, tag, n, vals)));
}

/* A message with tag whose payload is the reference r. */
static inline tr_msg *test_msg_ref(tr_ctx *ctx, const char *tag, tr_ref r)
{
    tr_msg *m = NULL;
    CHECK_OK(tr_msg_new(&m, ctx, tag));
    CHECK_OK(tr_pack_ref(m, r));
    return m;
}

static inline tr_ref test_read_ref(const tr_msg *m)
{
    tr_cursor c;
    tr_ref r = TR_REF_NIL;
    tr_cursor_init(&c, m);
    CHECK_OK(tr_cursor_ref(&c, &r));
    return r;
}

/* Match for tr_receive: a DOWN message about the actor *udata (a tr_ref). */
static inline bool test_match_down_of(const tr_msg *m, void *udata)
{
    tr_ref who;
    tr_monitor_id id;
    tr_reason why;
    if (!tr_msg_is(m, TR_TAG_DOWN) || tr_msg_down_info(m, &who, &id, &why) != TR_OK)
        return false;
    return tr_ref_eq(who, *(const tr_ref *)udata);
}

/* Waits for the DOWN about who and returns its reason. */
#define test_wait_down(ctx, who) test_wait_down_at(__FILE__, __LINE__, (ctx), (who))

static inline tr_reason test_wait_down_at(const char *file, int line, tr_ctx *ctx, tr_ref who)
{
    tr_msg *m = test_recv_at(file, line, ctx, TR_TAG_DOWN, test_match_down_of, &who);
    tr_ref from;
    tr_monitor_id id;
    tr_reason why;
    CHECK_OK(tr_msg_down_info(m, &from, &id, &why));
    CHECK(tr_ref_eq(from, who));
    tr_msg_free(m);
    return why;
}

#endif /* TROUPE_TEST_CHECK_H */
