/*
 * test_request — request/reply: tr_call and tr_request, deadlines, late
 * replies that must never answer a later request, error replies, and
 * requests to actors that are gone.
 */
#include "check.h"

static tr_ref g_main;
static atomic_int g_continuations;

/* Request kinds, by tag. */
static const char *const kinds[] = {"req", "fail", "ignore", "slow", "fast", "hold", "quit"};
enum {
    K_REQ,
    K_FAIL,
    K_IGNORE,
    K_SLOW,
    K_FAST,
    K_HOLD,
    K_QUIT
};

static tr_msg *new_request(tr_ctx *ctx, int kind, int64_t v)
{
    tr_msg *m = NULL;
    CHECK_OK(tr_msg_new(&m, ctx, kinds[kind]));
    CHECK_OK(tr_pack_int(m, v));
    return m;
}

static tr_err reply_int(tr_ctx *ctx, const tr_msg *req, int64_t v)
{
    tr_msg *r = NULL;
    CHECK_OK(tr_msg_new(&r, ctx, "answer"));
    CHECK_OK(tr_pack_int(r, v));
    return tr_reply(ctx, req, r); /* consumed whatever it returns but TR_EINVAL */
}

/* ---- servers ------------------------------------------------------------- */

/* Pooled: "req" v -> v + 1, "fail" -> TR_ENOTSUP, "ignore" -> nothing,
 * "quit" -> exits without a reply. */
static int echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    int64_t v = 0;
    CHECK(tr_msg_is_request(m));
    CHECK_OK(tr_msg_int(m, &v));
    if (tr_msg_is(m, "req")) {
        CHECK_OK(reply_int(ctx, m, v + 1));
    } else if (tr_msg_is(m, "fail")) {
        CHECK_OK(tr_reply_error(ctx, m, TR_ENOTSUP));
    } else if (tr_msg_is(m, "quit")) {
        tr_reason why = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
        tr_stop_self(ctx, &why);
    }
    return 0;
}

static const tr_behaviour echo_b = {"echo", 0, NULL, echo_handle, NULL, NULL};

/* Thread actor: "fast" v -> v at once; "slow" v -> waits until the
 * request's deadline has passed, then replies v anyway and reports what
 * tr_reply said to main as "replied"; "hold" v -> says "holding" to main,
 * waits for "now", replies and reports likewise. */
static int slow_run(tr_ctx *ctx, void *state)
{
    for (;;) {
        tr_msg *req = NULL, *wake = NULL;
        int64_t v = 0;
        tr_err e = tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &req);
        if (e == TR_ESTOPPED)
            return 0;
        CHECK_OK(e);
        CHECK(tr_msg_is_request(req));
        CHECK_OK(tr_msg_int(req, &v));
        if (tr_msg_is(req, "slow")) {
            /* The caller gave up 100 ms after sending; a timer to self
             * lets time pass until the deadline is behind us. */
            while (!tr_msg_expired(req)) {
                tr_msg *t = NULL;
                CHECK_OK(tr_msg_new(&t, ctx, "wake"));
                tr_timer_id tid;
                CHECK_OK(tr_send_after(ctx, tr_self(ctx), t, 50, &tid));
                CHECK_OK(tr_receive(ctx, "wake", NULL, NULL, TEST_WAIT_MS, &wake));
                tr_msg_free(wake);
            }
            CHECK_OK(tr_send_int(ctx, g_main, "replied", reply_int(ctx, req, v)));
        } else if (tr_msg_is(req, "hold")) {
            CHECK_OK(tr_send_tag(ctx, g_main, "holding"));
            CHECK_OK(tr_receive(ctx, "now", NULL, NULL, TR_FOREVER, &wake));
            tr_msg_free(wake);
            CHECK_OK(tr_send_int(ctx, g_main, "replied", reply_int(ctx, req, v)));
        } else {
            CHECK(!tr_msg_expired(req));
            CHECK_OK(reply_int(ctx, req, v));
        }
        tr_msg_free(req);
    }
}

static const tr_behaviour slow_b = {"slow", 0, NULL, NULL, NULL, slow_run};

/* ---- a pooled client ------------------------------------------------------ */

#define CLIENT_MAGIC 0x5eedf00du

typedef struct client {
    uint32_t magic;
} client;

static int client_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    ((client *)state)->magic = CLIENT_MAGIC;
    return 0;
}

/* Reports [status, value] to main; value is -1 without a reply. */
static int client_on_reply(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status,
                           void *udata)
{
    CHECK(((client *)state)->magic == CLIENT_MAGIC);
    CHECK(udata == &g_continuations);
    atomic_fetch_add(&g_continuations, 1);
    int64_t r[2] = {status, -1};
    if (status == TR_OK) {
        CHECK(reply != NULL);
        CHECK_OK(tr_msg_int(reply, &r[1]));
    } else {
        CHECK(reply == NULL);
    }
    test_send_ints(ctx, g_main, "result", 2, r);
    return r[1] == 778 ? 77 : 0; /* a failing continuation fails the actor */
}

/* "go" [server, kind, value, timeout_ms] sends one request. */
static int client_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    tr_cursor c;
    uint32_t n;
    tr_ref server;
    int64_t kind, v, timeout;
    tr_cursor_init(&c, m);
    CHECK_OK(tr_cursor_array(&c, &n));
    CHECK(n == 4);
    CHECK_OK(tr_cursor_ref(&c, &server));
    CHECK_OK(tr_cursor_int(&c, &kind));
    CHECK_OK(tr_cursor_int(&c, &v));
    CHECK_OK(tr_cursor_int(&c, &timeout));
    tr_msg *req = new_request(ctx, (int)kind, v);
    tr_err e = tr_request(ctx, server, req, (uint32_t)timeout, client_on_reply, &g_continuations);
    if (e != TR_OK) {
        /* Refused at once (e.g. a known-dead server): no continuation. */
        tr_msg_free(req);
        int64_t r[2] = {e, -2};
        test_send_ints(ctx, g_main, "result", 2, r);
    }
    return 0;
}

static const tr_behaviour client_b = {"client",      sizeof(client), client_init,
                                      client_handle, NULL,           NULL};

/* ---- requests from a thread actor and from an attached thread ------------ */

typedef struct waiter {
    int done;
    int64_t value;
    void *state_seen;
} waiter;

static int waiter_on_reply(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status,
                           void *udata)
{
    waiter *w = udata;
    CHECK_OK(status);
    CHECK_OK(tr_msg_int(reply, &w->value));
    w->state_seen = state;
    w->done++;
    return 0;
}

/* Sends a request with a continuation, then receives (nothing) until the
 * continuation has run inside tr_receive; returns the reply's value. */
static int64_t request_and_wait(tr_ctx *ctx, tr_ref server, int64_t v, waiter *w)
{
    tr_msg *none = NULL;
    int64_t deadline = test_now_ms() + TEST_WAIT_MS;
    CHECK_OK(tr_request(ctx, server, new_request(ctx, K_REQ, v), TEST_WAIT_MS, waiter_on_reply, w));
    while (w->done == 0) {
        CHECK_ERR(tr_receive(ctx, "never", NULL, NULL, 20, &none), TR_ETIMEDOUT);
        CHECK(test_now_ms() < deadline);
    }
    CHECK(w->done == 1);
    return w->value;
}

static tr_err call_int(tr_ctx *ctx, tr_ref server, int kind, int64_t v, uint32_t timeout,
                       int64_t *out);

/* A thread actor: one tr_call and one tr_request to the server in its
 * args, then it reports [call result, request result] as "tclient". */
static int tclient_run(tr_ctx *ctx, void *state)
{
    tr_msg *m = NULL;
    waiter w = {0, 0, NULL};
    int64_t r[2];
    CHECK_OK(tr_receive(ctx, "server", NULL, NULL, TR_FOREVER, &m));
    tr_ref server = test_read_ref(m);
    tr_msg_free(m);
    CHECK_OK(call_int(ctx, server, K_REQ, 10, TEST_WAIT_MS, &r[0]));
    r[1] = request_and_wait(ctx, server, 20, &w);
    CHECK(w.state_seen == state); /* the continuation runs on this actor */
    test_send_ints(ctx, g_main, "tclient", 2, r);
    return 0;
}

static const tr_behaviour tclient_b = {"tclient", sizeof(int), NULL, NULL, NULL, tclient_run};

/* Has the client request kind/v from server; returns [status, value]. */
static void client_ask(tr_ctx *ctx, tr_ref cl, tr_ref server, int kind, int64_t v, int64_t timeout,
                       int64_t *status, int64_t *value)
{
    tr_msg *m = NULL;
    CHECK_OK(tr_msg_new(&m, ctx, "go"));
    CHECK_OK(tr_pack_array(m, 4));
    CHECK_OK(tr_pack_ref(m, server));
    CHECK_OK(tr_pack_int(m, kind));
    CHECK_OK(tr_pack_int(m, v));
    CHECK_OK(tr_pack_int(m, timeout));
    CHECK_OK(tr_send(ctx, cl, m));
    m = test_recv(ctx, "result");
    int64_t r[2];
    test_read_ints(m, 2, r);
    tr_msg_free(m);
    *status = r[0];
    *value = r[1];
}

static tr_err call_int(tr_ctx *ctx, tr_ref server, int kind, int64_t v, uint32_t timeout,
                       int64_t *out)
{ /* tr_call with an integer request; *out gets the integer reply */
    tr_msg *rep = NULL;
    tr_err e = tr_call(ctx, server, new_request(ctx, kind, v), timeout, &rep);
    if (e == TR_OK) {
        CHECK(rep != NULL);
        CHECK_OK(tr_msg_int(rep, out));
        tr_msg_free(rep);
    }
    return e;
}

int main(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    g_main = tr_self(ctx);
    tr_spawn_opts th = TR_SPAWN_OPTS_INIT;
    th.kind = TR_THREAD;
    tr_ref echo, slow, cl;
    CHECK_OK(tr_spawn(&echo, ctx, &echo_b, NULL, NULL));
    CHECK_OK(tr_spawn(&slow, ctx, &slow_b, NULL, &th));
    CHECK_OK(tr_spawn(&cl, ctx, &client_b, NULL, NULL));
    int64_t v = 0, st = 0;
    int conts = 0;

    /* tr_call from an attached thread. */
    for (int64_t i = 0; i < 5; i++) {
        CHECK_OK(call_int(ctx, echo, K_REQ, i * 7, TEST_WAIT_MS, &v));
        CHECK(v == i * 7 + 1);
    }
    /* A plain message is no request. */
    CHECK_OK(tr_send_int(ctx, tr_self(ctx), "plain", 1));
    tr_msg *plain = test_recv(ctx, "plain");
    CHECK(!tr_msg_is_request(plain));
    CHECK(!tr_msg_expired(plain));
    tr_msg_free(plain);

    /* tr_request from a pooled actor, continuation with the reply. */
    client_ask(ctx, cl, echo, K_REQ, 41, TEST_WAIT_MS, &st, &v);
    CHECK_ERR((tr_err)st, TR_OK);
    CHECK(v == 42);
    CHECK(atomic_load(&g_continuations) == ++conts);

    /* No reply at all: the deadline fires the continuation exactly once. */
    client_ask(ctx, cl, echo, K_IGNORE, 1, 100, &st, &v);
    CHECK_ERR((tr_err)st, TR_ETIMEDOUT);
    test_recv_none(ctx, "result", 300);
    CHECK(atomic_load(&g_continuations) == ++conts);
    CHECK_ERR(call_int(ctx, echo, K_IGNORE, 1, 100, &v), TR_ETIMEDOUT);

    /* Error replies propagate, to tr_call and to a continuation. */
    CHECK_ERR(call_int(ctx, echo, K_FAIL, 1, TEST_WAIT_MS, &v), TR_ENOTSUP);
    client_ask(ctx, cl, echo, K_FAIL, 1, TEST_WAIT_MS, &st, &v);
    CHECK_ERR((tr_err)st, TR_ENOTSUP);
    CHECK(atomic_load(&g_continuations) == ++conts);

    /* A late reply is discarded, counted, and never answers the next call. */
    uint64_t late0 = test_counters(rt).late_replies;
    CHECK_ERR(call_int(ctx, slow, K_SLOW, 1, 100, &v), TR_ETIMEDOUT);
    CHECK(test_recv_int(ctx, "replied") == TR_ETIMEDOUT);
    CHECK_OK(call_int(ctx, slow, K_FAST, 2, TEST_WAIT_MS, &v));
    CHECK(v == 2);
    test_recv_none(ctx, NULL, 0); /* the late reply was not queued either */
    WAIT_UNTIL(test_counters(rt).late_replies >= late0 + 1);

    /* The same through a pooled client's continuation. */
    client_ask(ctx, cl, slow, K_SLOW, 3, 100, &st, &v);
    CHECK_ERR((tr_err)st, TR_ETIMEDOUT);
    CHECK(test_recv_int(ctx, "replied") == TR_ETIMEDOUT);
    client_ask(ctx, cl, slow, K_FAST, 4, TEST_WAIT_MS, &st, &v);
    CHECK_ERR((tr_err)st, TR_OK);
    CHECK(v == 4);
    conts += 2;
    test_recv_none(ctx, "result", 100);
    CHECK(atomic_load(&g_continuations) == conts);
    WAIT_UNTIL(test_counters(rt).late_replies >= late0 + 2);

    /* A thread actor calls and requests; main requests with a continuation,
     * which runs inside its tr_receive. */
    tr_ref tc;
    CHECK_OK(tr_spawn(&tc, ctx, &tclient_b, NULL, &th));
    CHECK_OK(tr_send(ctx, tc, test_msg_ref(ctx, "server", echo)));
    tr_msg *tm = test_recv(ctx, "tclient");
    int64_t tr2[2];
    test_read_ints(tm, 2, tr2);
    tr_msg_free(tm);
    CHECK(tr2[0] == 11 && tr2[1] == 21);
    waiter w = {0, 0, NULL};
    CHECK(request_and_wait(ctx, echo, 30, &w) == 31);

    /* A continuation returning non-zero makes its actor exit with it. */
    tr_ref doomed;
    tr_monitor_id dmon;
    CHECK_OK(tr_spawn(&doomed, ctx, &client_b, NULL, NULL));
    CHECK_OK(tr_monitor(ctx, doomed, &dmon));
    client_ask(ctx, doomed, echo, K_REQ, 777, TEST_WAIT_MS, &st, &v);
    CHECK(st == TR_OK && v == 778);
    CHECK(atomic_load(&g_continuations) == ++conts);
    tr_reason dwhy = test_wait_down(ctx, doomed);
    CHECK(dwhy.kind == TR_EXIT_ERROR && dwhy.code == 77);

    /* The callee exits without replying: the caller learns it is gone
     * (TR_ENOACTOR, "dead before or after the send"; TR_EEXITED names the
     * same event) instead of waiting for its deadline. */
    tr_ref quitter;
    CHECK_OK(tr_spawn(&quitter, ctx, &echo_b, NULL, NULL));
    tr_err qe = call_int(ctx, quitter, K_QUIT, 1, 3000, &v);
    if (qe != TR_ENOACTOR && qe != TR_EEXITED)
        TEST_FAIL("call to a callee that exited without replying: %s", tr_err_name(qe));
    CHECK_OK(tr_spawn(&quitter, ctx, &echo_b, NULL, NULL));
    client_ask(ctx, cl, quitter, K_QUIT, 1, 3000, &st, &v);
    if (st != TR_ENOACTOR && st != TR_EEXITED)
        TEST_FAIL("request to a callee that exited without replying: %s", tr_err_name((tr_err)st));
    CHECK(atomic_load(&g_continuations) == ++conts);

    /* The requester is gone when the reply is made: TR_ENOACTOR for the
     * callee, and no continuation anywhere. */
    tr_ref gone;
    tr_monitor_id gmon;
    CHECK_OK(tr_spawn(&gone, ctx, &client_b, NULL, NULL));
    CHECK_OK(tr_monitor(ctx, gone, &gmon));
    {
        tr_msg *go = NULL;
        CHECK_OK(tr_msg_new(&go, ctx, "go"));
        CHECK_OK(tr_pack_array(go, 4));
        CHECK_OK(tr_pack_ref(go, slow));
        CHECK_OK(tr_pack_int(go, K_HOLD));
        CHECK_OK(tr_pack_int(go, 5));
        CHECK_OK(tr_pack_int(go, TEST_WAIT_MS));
        CHECK_OK(tr_send(ctx, gone, go));
    }
    tr_msg_free(test_recv(ctx, "holding"));
    tr_reason killed = tr_reason_make(TR_EXIT_KILLED, 0, NULL);
    CHECK_OK(tr_exit(ctx, gone, &killed));
    CHECK(test_wait_down(ctx, gone).kind == TR_EXIT_KILLED);
    CHECK_OK(tr_send_tag(ctx, slow, "now"));
    CHECK(test_recv_int(ctx, "replied") == TR_ENOACTOR);
    test_recv_none(ctx, "result", 100);
    CHECK(atomic_load(&g_continuations) == conts);

    /* Requests to an actor that is gone. */
    tr_ref dead;
    tr_reason kill = tr_reason_make(TR_EXIT_ERROR, 1, "test");
    CHECK_OK(tr_spawn(&dead, ctx, &echo_b, NULL, NULL));
    tr_monitor_id mon;
    CHECK_OK(tr_monitor(ctx, dead, &mon));
    CHECK_OK(tr_exit(ctx, dead, &kill));
    (void)test_wait_down(ctx, dead);
    tr_msg *req = new_request(ctx, K_REQ, 1);
    tr_msg *rep = NULL;
    CHECK_ERR(tr_call(ctx, dead, req, TEST_WAIT_MS, &rep), TR_ENOACTOR); /* takes req */
    client_ask(ctx, cl, dead, K_REQ, 1, TEST_WAIT_MS, &st, &v);
    CHECK_ERR((tr_err)st, TR_ENOACTOR);
    if (v != -2) /* accepted, then answered by the continuation */
        CHECK(atomic_load(&g_continuations) == ++conts);
    test_recv_none(ctx, "result", 100);
    CHECK(atomic_load(&g_continuations) == conts);

    test_finish(rt, ctx);
    printf("ok\n");
    return 0;
}
