/*
 * test_sup.h — what the supervisor tests share: a worker behaviour that
 * reports to the test thread, spec helpers, and readers for the events a
 * supervisor sends.
 *
 * A worker's spawn arguments are [test ref, tag]. It sends "up" (its tag)
 * from init and "bye" (its tag) from terminate (unless killed), answers "ping" with its
 * tag and "pid" with its process id, fails on "crash" (reason error 7),
 * ends normally on "stop", raises SIGSEGV on "segv", sleeps 600 ms in its
 * handler on "nap" and never returns from it on "hang". A worker whose tag
 * is negative fails its init (reason error 5), so it never stays up.
 */
#ifndef TROUPE_TEST_SUP_H
#define TROUPE_TEST_SUP_H

#include "check.h"
#include "troupe_sup.h"

#include <errno.h>
#include <signal.h>

/* ---- the worker ----------------------------------------------------------- */

typedef struct worker {
    tr_ref test;
    int64_t tag;
} worker;

static int worker_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    worker *w = state;
    tr_cursor c;
    uint32_t n;
    if (args == NULL)
        return TR_EBADMSG;
    tr_cursor_init(&c, args);
    if (tr_cursor_array(&c, &n) != TR_OK || n != 2 || tr_cursor_ref(&c, &w->test) != TR_OK ||
        tr_cursor_int(&c, &w->tag) != TR_OK)
        return TR_EBADMSG;
    if (w->tag < 0)
        return 5;
    return tr_send_int(ctx, w->test, "up", w->tag);
}

static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    worker *w = state;
    if (tr_msg_is(m, "crash"))
        return 7;
    if (tr_msg_is(m, "stop")) {
        tr_stop_self(ctx, NULL);
        return 0;
    }
    if (tr_msg_is(m, "nap") || tr_msg_is(m, "hang")) {
        do
            test_sleep_ms(600);
        while (tr_msg_is(m, "hang"));
        return 0;
    }
    if (tr_msg_is(m, "segv")) {
        signal(SIGSEGV, SIG_DFL); /* past any sanitizer's handler */
        raise(SIGSEGV);
    }
    if (tr_msg_is(m, "ping") || tr_msg_is(m, "pid")) {
        tr_msg *r;
        CHECK_OK(tr_msg_new(&r, ctx, tr_msg_tag(m)));
        CHECK_OK(tr_pack_int(r, tr_msg_is(m, "pid") ? (int64_t)getpid() : w->tag));
        (void)tr_reply(ctx, m, r);
    }
    return 0; /* anything else, a trapped exit included, is ignored */
}

/* Says goodbye unless killed (a killed actor is gone without a word, as
 * one in a SIGKILLed process is). */
static void worker_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    worker *w = state;
    if (!tr_ref_is_nil(w->test) && why->kind != TR_EXIT_KILLED)
        (void)tr_send_int(ctx, w->test, "bye", w->tag);
}

static const tr_behaviour worker_beh = {"worker",      sizeof(worker),   worker_init,
                                        worker_handle, worker_terminate, NULL};

/* ---- specs ---------------------------------------------------------------- */

/* Encoded worker arguments [test, tag]; static storage, one per slot. */
typedef struct wargs {
    uint8_t bytes[64];
    size_t len;
} wargs;

static inline void wargs_make(wargs *a, tr_ctx *ctx, int64_t tag)
{
    tr_msg *m;
    CHECK_OK(tr_msg_new(&m, ctx, "args"));
    CHECK_OK(tr_pack_array(m, 2));
    CHECK_OK(tr_pack_ref(m, tr_self(ctx)));
    CHECK_OK(tr_pack_int(m, tag));
    size_t len;
    const uint8_t *p = tr_msg_payload(m, &len);
    CHECK(len <= sizeof a->bytes);
    memcpy(a->bytes, p, len);
    a->len = len;
    tr_msg_free(m);
}

/* A worker child spec of kind kind whose arguments are a. */
static inline tr_sup_child_spec worker_spec(const char *id, const wargs *a, tr_actor_kind kind)
{
    tr_sup_child_spec s = TR_SUP_CHILD_SPEC_INIT;
    s.id = id;
    s.behaviour = &worker_beh;
    s.args = a->bytes;
    s.args_len = a->len;
    s.spawn.kind = kind;
    return s;
}

/* ---- events --------------------------------------------------------------- */

/* Receives the next event (from any supervisor). */
#define ev_next(ctx) ev_next_at(__FILE__, __LINE__, (ctx))

static inline tr_sup_event ev_next_at(const char *file, int line, tr_ctx *ctx)
{
    tr_msg *m = test_recv_at(file, line, ctx, TR_SUP_TAG_EVENT, NULL, NULL);
    tr_sup_event ev;
    CHECK_OK(tr_sup_event_info(&ev, m));
    tr_msg_free(m);
    return ev;
}

/* Receives the next event and checks its kind and child id. */
#define ev_expect(ctx, kind, id) ev_expect_at(__FILE__, __LINE__, (ctx), (kind), (id))

static inline tr_sup_event ev_expect_at(const char *file, int line, tr_ctx *ctx,
                                        tr_sup_event_kind kind, const char *id)
{
    tr_sup_event ev = ev_next_at(file, line, ctx);
    if (ev.kind != kind || strcmp(ev.id, id) != 0) {
        fprintf(stderr, "%s:%d: event %s '%s' (reason %s %d %s), expected %s '%s'\n", file, line,
                tr_sup_event_name(ev.kind), ev.id, tr_exit_kind_name(ev.reason.kind),
                ev.reason.code, ev.reason.text, tr_sup_event_name(kind), id);
        fflush(stdout);
        _Exit(1);
    }
    return ev;
}

static bool match_any(const tr_msg *m, void *udata)
{
    (void)m;
    (void)udata;
    return true;
}

/* Checks that no event is queued now. A supervisor sends its events before
 * it answers a request, so after a call to it returned, everything it did
 * before is in the mailbox. */
static inline void ev_none_queued(tr_ctx *ctx)
{
    tr_msg *m = NULL;
    tr_err e = tr_receive(ctx, TR_SUP_TAG_EVENT, match_any, NULL, 0, &m);
    if (e == TR_OK) {
        tr_sup_event ev;
        CHECK_OK(tr_sup_event_info(&ev, m));
        TEST_FAIL("unexpected event %s '%s'", tr_sup_event_name(ev.kind), ev.id);
    }
    CHECK(e == TR_ETIMEDOUT);
}

/* ---- listings ------------------------------------------------------------- */

typedef struct listing {
    tr_sup_child_info *c;
    uint32_t n;
} listing;

static inline listing list_children(tr_ctx *ctx, tr_ref sup)
{
    listing l = {NULL, 0};
    CHECK_OK(tr_sup_which_children(&l.c, &l.n, ctx, sup, TEST_WAIT_MS));
    return l;
}

static inline const tr_sup_child_info *listing_find(const listing *l, const char *id)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (strcmp(l->c[i].id, id) == 0)
            return &l->c[i];
    TEST_FAIL("child '%s' not listed", id);
}

static inline tr_ref child_ref(tr_ctx *ctx, tr_ref sup, const char *id)
{
    listing l = list_children(ctx, sup);
    tr_ref r = listing_find(&l, id)->ref;
    tr_sup_children_free(l.c);
    return r;
}

/* ---- misc ----------------------------------------------------------------- */

static inline int64_t call_int(tr_ctx *ctx, tr_ref to, const char *tag)
{
    tr_msg *req, *rep = NULL;
    CHECK_OK(tr_msg_new(&req, ctx, tag));
    CHECK_OK(tr_call(ctx, to, req, TEST_WAIT_MS, &rep));
    int64_t v;
    CHECK_OK(tr_msg_int(rep, &v));
    tr_msg_free(rep);
    return v;
}

static inline bool pid_gone(int pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

/* Monitors sup, and returns the monitor so the test can wait for it. */
static inline tr_monitor_id watch(tr_ctx *ctx, tr_ref r)
{
    tr_monitor_id id;
    CHECK_OK(tr_monitor(ctx, r, &id));
    return id;
}

/* Drops every queued message with tag (after a test, before the next). */
static inline void drain(tr_ctx *ctx, const char *tag)
{
    tr_msg *m;
    while (tr_receive(ctx, tag, NULL, NULL, 0, &m) == TR_OK)
        tr_msg_free(m);
}

#endif /* TROUPE_TEST_SUP_H */
