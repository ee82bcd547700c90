/*
 * test_thread_actor — thread actors and attached threads: blocking,
 * selective receive; messaging between pooled and thread actors; what a
 * pooled actor may not do.
 */
#include "check.h"

static tr_ref g_main;

static bool match_int(const tr_msg *m, void *udata)
{
    int64_t v;
    return tr_msg_int(m, &v) == TR_OK && v == *(const int64_t *)udata;
}

static bool match_int_above(const tr_msg *m, void *udata)
{
    int64_t v;
    return tr_msg_int(m, &v) == TR_OK && v > *(const int64_t *)udata;
}

/* Receives a message that must come, checks tag and integer payload. */
static void expect(tr_ctx *ctx, const char *rtag, tr_match_fn f, int64_t arg, const char *want_tag,
                   int64_t want)
{
    tr_msg *m = test_recv_match(ctx, rtag, f, f ? &arg : NULL);
    int64_t v = 0;
    if (!tr_msg_is(m, want_tag))
        TEST_FAIL("got tag '%s', expected '%s'", tr_msg_tag(m), want_tag);
    CHECK_OK(tr_msg_int(m, &v));
    if (v != want)
        TEST_FAIL("got %s %" PRId64 ", expected %" PRId64, want_tag, v, want);
    tr_msg_free(m);
}

/* ---- 1. selective receive on an attached thread ------------------------ */

static void selective_on_main(tr_ctx *ctx)
{
    static const char *tags[] = {"x", "y", "x", "z", "y", "x"};
    for (int i = 0; i < 6; i++)
        CHECK_OK(tr_send_int(ctx, tr_self(ctx), tags[i], i + 1));

    expect(ctx, "z", NULL, 0, "z", 4);            /* by tag, past three others */
    expect(ctx, NULL, match_int, 5, "y", 5);      /* by predicate */
    expect(ctx, "x", match_int_above, 1, "x", 3); /* by tag and predicate */
    expect(ctx, "y", NULL, 0, "y", 2);
    expect(ctx, NULL, NULL, 0, "x", 1); /* the rest, in their order */
    expect(ctx, NULL, NULL, 0, "x", 6);

    tr_msg *m = NULL;
    CHECK_ERR(tr_receive(ctx, NULL, NULL, NULL, 0, &m), TR_ETIMEDOUT); /* 0 polls */
    CHECK_ERR(tr_receive(ctx, NULL, NULL, NULL, 30, &m), TR_ETIMEDOUT);
    /* A queued message that does not match stays queued through a timeout. */
    CHECK_OK(tr_send_int(ctx, tr_self(ctx), "w", 7));
    CHECK_ERR(tr_receive(ctx, "nothing", NULL, NULL, 30, &m), TR_ETIMEDOUT);
    expect(ctx, NULL, NULL, 0, "w", 7);
}

/* ---- 2. selective receive in a thread actor ----------------------------- */

/* Forwards every queued message's integer to main as "seen", then says
 * "polled_empty" once a poll finds nothing. */
static void forward_queued(tr_ctx *ctx)
{
    for (;;) {
        tr_msg *m = NULL;
        tr_err e = tr_receive(ctx, NULL, NULL, NULL, 0, &m);
        if (e == TR_ETIMEDOUT)
            break;
        CHECK_OK(e);
        int64_t v = -1;
        CHECK_OK(tr_msg_int(m, &v));
        CHECK_OK(tr_send_int(ctx, g_main, "seen", v));
        tr_msg_free(m);
    }
    CHECK_OK(tr_send_tag(ctx, g_main, "polled_empty"));
}

static int selective_run(tr_ctx *ctx, void *state)
{
    tr_msg *m = NULL;
    CHECK(tr_ctx_kind(ctx) == TR_THREAD);
    CHECK_OK(tr_receive(ctx, "go", NULL, NULL, TR_FOREVER, &m)); /* queued behind data */
    tr_msg_free(m);
    forward_queued(ctx);

    int64_t want = 99;
    CHECK_OK(tr_receive(ctx, NULL, match_int, &want, TR_FOREVER, &m));
    tr_msg_free(m);
    CHECK_OK(tr_send_int(ctx, g_main, "got99", 99));
    forward_queued(ctx);

    CHECK_OK(tr_send_int(ctx, g_main, "timeout", tr_receive(ctx, NULL, NULL, NULL, 30, &m)));
    for (;;) {
        tr_err e = tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &m);
        if (e == TR_ESTOPPED)
            return 0;
        CHECK_OK(e);
        tr_msg_free(m);
    }
}

static const tr_behaviour selective_b = {"selective", 0, NULL, NULL, NULL, selective_run};

static void selective_in_thread_actor(tr_ctx *ctx)
{
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_THREAD;
    tr_ref a;
    CHECK_OK(tr_spawn(&a, ctx, &selective_b, NULL, &o));
    for (int i = 1; i <= 5; i++)
        CHECK_OK(tr_send_int(ctx, a, "data", i));
    CHECK_OK(tr_send_tag(ctx, a, "go"));
    for (int i = 1; i <= 5; i++)
        expect(ctx, NULL, NULL, 0, "seen", i);
    tr_msg_free(test_recv(ctx, "polled_empty"));

    for (int i = 10; i < 15; i++)
        CHECK_OK(tr_send_int(ctx, a, "data", i));
    CHECK_OK(tr_send_int(ctx, a, "data", 99));
    expect(ctx, NULL, NULL, 0, "got99", 99);
    for (int i = 10; i < 15; i++)
        expect(ctx, NULL, NULL, 0, "seen", i);
    tr_msg_free(test_recv(ctx, "polled_empty"));
    expect(ctx, NULL, NULL, 0, "timeout", TR_ETIMEDOUT);
}

/* ---- 3. pooled <-> thread ------------------------------------------------ */

static int pinger_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    CHECK(tr_ctx_kind(ctx) == TR_POOLED);
    if (tr_msg_is(m, "start")) {
        CHECK_OK(tr_send_int(ctx, test_read_ref(m), "ping", 0));
    } else if (tr_msg_is(m, "pong")) {
        int64_t v = 0;
        CHECK_OK(tr_msg_int(m, &v));
        if (v >= 100)
            CHECK_OK(tr_send_int(ctx, g_main, "pingdone", v));
        else
            CHECK_OK(tr_send_int(ctx, tr_msg_from(m), "ping", v));
    }
    return 0;
}

static int ponger_run(tr_ctx *ctx, void *state)
{
    for (;;) {
        tr_msg *m = NULL;
        tr_err e = tr_receive(ctx, "ping", NULL, NULL, TR_FOREVER, &m);
        if (e == TR_ESTOPPED)
            return 0;
        CHECK_OK(e);
        int64_t v = 0;
        CHECK_OK(tr_msg_int(m, &v));
        CHECK_OK(tr_send_int(ctx, tr_msg_from(m), "pong", v + 1));
        tr_msg_free(m);
    }
}

static const tr_behaviour pinger_b = {"pinger", 0, NULL, pinger_handle, NULL, NULL};
static const tr_behaviour ponger_b = {"ponger", 0, NULL, NULL, NULL, ponger_run};

/* ---- 4. a thread actor without run uses handle -------------------------- */

static int thread_echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    int64_t v = 0;
    CHECK(tr_ctx_kind(ctx) == TR_THREAD);
    CHECK_OK(tr_msg_int(m, &v));
    CHECK_OK(tr_send_int(ctx, tr_msg_from(m), "echoed", v * 10));
    return 0;
}

static const tr_behaviour thread_echo_b = {"thread_echo", 0, NULL, thread_echo_handle, NULL, NULL};

/* ---- 5. blocking calls from a pooled actor ------------------------------ */

static int misuser_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    tr_msg *got = NULL, *req = NULL, *rep = NULL;
    int64_t r[3];
    r[0] = tr_receive(ctx, NULL, NULL, NULL, 0, &got);
    CHECK_OK(tr_msg_new(&req, ctx, "shouldnt"));
    r[1] = tr_call(ctx, g_main, req, 100, &rep);
    r[2] = tr_ctx_kind(ctx);
    test_send_ints(ctx, g_main, "tried", 3, r);
    return 0;
}

static const tr_behaviour misuser_b = {"misuser", 0, NULL, misuser_handle, NULL, NULL};

/* ---- 6. payloads of every size travel intact ---------------------------- */

/* Pooled and thread relays: copy the payload into a new message to the
 * reference stored in state (the next hop). */
static int relay_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    *(tr_ref *)state = test_read_ref(args);
    return 0;
}

static int relay_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    size_t len = 0;
    const uint8_t *p = tr_msg_payload(m, &len);
    tr_msg *copy = NULL;
    CHECK_OK(tr_msg_new(&copy, ctx, tr_msg_tag(m)));
    if (len > 0)
        CHECK_OK(tr_msg_set_payload(copy, p, len));
    CHECK_OK(tr_send(ctx, *(tr_ref *)state, copy));
    return 0;
}

static const tr_behaviour relay_b = {"relay", sizeof(tr_ref), relay_init, relay_handle, NULL, NULL};

static void payload_sizes(tr_ctx *ctx)
{
    static const size_t sizes[] = {0, 1, 30, 35, 36, 37, 40, 64, 100, 4096, 70000, 1u << 20};
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    tr_ref back, there;
    o.kind = TR_THREAD; /* main -> pooled relay -> thread relay -> main */
    CHECK_OK(tr_spawn(&back, ctx, &relay_b, test_msg_ref(ctx, "args", g_main), &o));
    CHECK_OK(tr_spawn(&there, ctx, &relay_b, test_msg_ref(ctx, "args", back), NULL));
    uint8_t *buf = malloc(sizes[11]);
    CHECK(buf != NULL);
    for (size_t i = 0; i < sizes[11]; i++)
        buf[i] = (uint8_t)(i * 7 + (i >> 8));
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        tr_msg *m = NULL;
        CHECK_OK(tr_msg_new(&m, ctx, "blob"));
        if (sizes[k] > 0)
            CHECK_OK(tr_pack_bin(m, buf, sizes[k]));
        CHECK_OK(tr_send(ctx, there, m));
        m = test_recv(ctx, "blob");
        CHECK(tr_ref_eq(tr_msg_from(m), back));
        tr_cursor c;
        const uint8_t *p = NULL;
        size_t len = 0;
        tr_cursor_init(&c, m);
        if (sizes[k] == 0) {
            CHECK(tr_cursor_done(&c));
        } else {
            CHECK_OK(tr_cursor_bin(&c, &p, &len));
            CHECK(len == sizes[k] && memcmp(p, buf, len) == 0);
            CHECK(tr_cursor_done(&c));
        }
        tr_msg_free(m);
    }
    free(buf);
}

/* ---- 7. how thread actors end ------------------------------------------- */

/* "stopself": tr_stop_self(error 5), then the next receive must say
 * TR_ESTOPPED and run returns 0; "fail": run returns 9. */
static int ender_run(tr_ctx *ctx, void *state)
{
    tr_msg *m = NULL;
    CHECK_OK(tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &m));
    bool stop = tr_msg_is(m, "stopself");
    tr_msg_free(m);
    if (!stop)
        return 9;
    tr_reason why = tr_reason_make(TR_EXIT_ERROR, 5, "stopped itself");
    tr_stop_self(ctx, &why);
    CHECK_ERR(tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &m), TR_ESTOPPED);
    return 0;
}

static const tr_behaviour ender_b = {"ender", 0, NULL, NULL, NULL, ender_run};

static int failing_init(tr_ctx *ctx, void *state, const tr_msg *args) { return 3; }

static const tr_behaviour bad_init_b = {"bad_init",         0,    failing_init,
                                        thread_echo_handle, NULL, NULL};

static void endings(tr_ctx *ctx)
{
    static const char *cmds[] = {"stopself", "fail"};
    static const int32_t codes[] = {5, 9};
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_THREAD;
    for (int i = 0; i < 2; i++) {
        tr_ref a;
        tr_monitor_id mon;
        CHECK_OK(tr_spawn(&a, ctx, &ender_b, NULL, &o));
        CHECK_OK(tr_monitor(ctx, a, &mon));
        CHECK_OK(tr_send_tag(ctx, a, cmds[i]));
        tr_reason why = test_wait_down(ctx, a);
        CHECK(why.kind == TR_EXIT_ERROR && why.code == codes[i]);
    }
    /* init failing, pooled and thread: the actor exits with its value. A
     * monitor could come too late (NOPROC); a link made at spawn cannot. */
    tr_trap_exit(ctx, true);
    o.link = true;
    for (int k = 0; k < 2; k++) {
        tr_ref a, from;
        tr_reason why;
        o.kind = k ? TR_THREAD : TR_POOLED;
        CHECK_OK(tr_spawn(&a, ctx, &bad_init_b, NULL, &o));
        tr_msg *m = test_recv(ctx, TR_TAG_EXIT);
        CHECK_OK(tr_msg_exit_info(m, &from, &why));
        tr_msg_free(m);
        CHECK(tr_ref_eq(from, a));
        CHECK(why.kind == TR_EXIT_ERROR && why.code == 3);
    }
    tr_trap_exit(ctx, false);
}

int main(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    g_main = tr_self(ctx);
    CHECK(tr_ctx_kind(ctx) == TR_THREAD);

    selective_on_main(ctx);
    selective_in_thread_actor(ctx);

    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_THREAD;
    tr_ref pinger, ponger, techo, misuser;
    CHECK_OK(tr_spawn(&pinger, ctx, &pinger_b, NULL, NULL));
    CHECK_OK(tr_spawn(&ponger, ctx, &ponger_b, NULL, &o));
    CHECK_OK(tr_send(ctx, pinger, test_msg_ref(ctx, "start", ponger)));
    expect(ctx, "pingdone", NULL, 0, "pingdone", 100);

    CHECK_OK(tr_spawn(&techo, ctx, &thread_echo_b, NULL, &o));
    for (int i = 1; i <= 3; i++)
        CHECK_OK(tr_send_int(ctx, techo, "n", i));
    for (int i = 1; i <= 3; i++)
        expect(ctx, "echoed", NULL, 0, "echoed", i * 10);

    CHECK_OK(tr_spawn(&misuser, ctx, &misuser_b, NULL, NULL));
    CHECK_OK(tr_send_tag(ctx, misuser, "try"));
    tr_msg *m = test_recv(ctx, "tried");
    int64_t r[3];
    test_read_ints(m, 3, r);
    tr_msg_free(m);
    CHECK_ERR((tr_err)r[0], TR_EWRONGKIND);
    CHECK_ERR((tr_err)r[1], TR_EWOULDBLOCK);
    CHECK(r[2] == TR_POOLED);
    /* tr_call sent nothing: had it, it would have come before "tried". */
    test_recv_none(ctx, "shouldnt", 0);

    endings(ctx);
    payload_sizes(ctx);

    test_finish(rt, ctx); /* thread actors leave their loops and are joined */
    printf("ok\n");
    return 0;
}
