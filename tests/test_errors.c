/*
 * test_errors — every misuse troupe.h names returns its documented error,
 * leaves the caller's objects as they were, and leaks nothing (this test
 * runs under ASan's leak checker in CI).
 */
#include "check.h"

static int noop_handle(tr_ctx *ctx, void *state, const tr_msg *m) { return 0; }
static int noop_run(tr_ctx *ctx, void *state) { return 0; }

static const tr_behaviour ok_b = {"ok", 0, NULL, noop_handle, NULL, NULL};
static const tr_behaviour no_handle_b = {"no_handle", 0, NULL, NULL, NULL, NULL};
static const tr_behaviour run_only_b = {"run_only", 0, NULL, NULL, NULL, noop_run};

static void error_names(void)
{
    for (int i = 0; i < TR_ERR_COUNT_; i++) {
        const char *s = tr_strerror((tr_err)i), *n = tr_err_name((tr_err)i);
        CHECK(s != NULL && s[0] != '\0');
        CHECK(n != NULL && strncmp(n, "TR_", 3) == 0);
        for (int j = 0; j < i; j++)
            if (strcmp(n, tr_err_name((tr_err)j)) == 0)
                TEST_FAIL("codes %d and %d share the name %s", j, i, n);
    }
    CHECK(strcmp(tr_err_name(TR_OK), "TR_OK") == 0);
    CHECK(strcmp(tr_err_name(TR_EFULL), "TR_EFULL") == 0);
    CHECK(strcmp(tr_err_name(TR_ENOTSUP), "TR_ENOTSUP") == 0);
    CHECK(tr_strerror((tr_err)999) != NULL && tr_err_name((tr_err)999) != NULL);
    CHECK(tr_strerror((tr_err)-1) != NULL && tr_err_name((tr_err)-1) != NULL);

    for (int k = TR_EXIT_NORMAL; k <= TR_EXIT_CODE; k++)
        CHECK(tr_exit_kind_name((tr_exit_kind)k) != NULL);
    CHECK(strcmp(tr_exit_kind_name(TR_EXIT_NORMAL), "normal") == 0);
    CHECK(strcmp(tr_exit_kind_name(TR_EXIT_ERROR), "error") == 0);
    CHECK(tr_exit_kind_name((tr_exit_kind)99) != NULL);

    char longtext[200];
    memset(longtext, 'r', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    tr_reason r = tr_reason_make(TR_EXIT_ERROR, 7, longtext);
    CHECK(r.kind == TR_EXIT_ERROR && r.code == 7 && strlen(r.text) == TR_REASON_TEXT_MAX);
    r = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
    CHECK(r.text[0] == '\0');
    CHECK(tr_reason_is_normal(&r));
    r.kind = TR_EXIT_SHUTDOWN;
    CHECK(tr_reason_is_normal(&r));
    r.kind = TR_EXIT_ERROR;
    CHECK(!tr_reason_is_normal(&r));
    r.kind = TR_EXIT_KILLED;
    CHECK(!tr_reason_is_normal(&r));
}

static void messages(tr_ctx *ctx)
{
    tr_msg *m = NULL;
    char tag[TR_TAG_MAX + 2];
    memset(tag, 't', sizeof tag);
    tag[TR_TAG_MAX] = '\0';
    CHECK_OK(tr_msg_new(&m, ctx, tag)); /* the longest tag */
    CHECK(strcmp(tr_msg_tag(m), tag) == 0);
    tr_msg_free(m);
    tag[TR_TAG_MAX] = 't';
    tag[TR_TAG_MAX + 1] = '\0';
    CHECK_ERR(tr_msg_new(&m, ctx, tag), TR_ETOOBIG);
    CHECK_ERR(tr_msg_new(&m, ctx, ""), TR_EINVAL);
    CHECK_ERR(tr_msg_new(&m, ctx, NULL), TR_EINVAL);
    CHECK_ERR(tr_msg_new(NULL, ctx, "x"), TR_EINVAL);
    CHECK_OK(tr_msg_new(&m, NULL, "noctx")); /* ctx may be NULL */
    tr_msg_free(m);
    tr_msg_free(NULL);

    /* Malformed payloads: refused, and the message keeps its payload. */
    static const uint8_t truncated[] = {0x92, 0x01}; /* array of 2, one given */
    static const uint8_t two[] = {0x01, 0x02};       /* two objects */
    static const uint8_t reserved[] = {0xc1};        /* never used */
    static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t short_str[] = {0xa5, 'a', 'b'};         /* str of 5, 2 given */
    static const uint8_t good[] = {0x93, 0x01, 0xa1, 'x', 0xc3}; /* [1, "x", true] */
    uint8_t deep[200];
    memset(deep, 0x91, sizeof deep - 1); /* 199 nested arrays of one */
    deep[sizeof deep - 1] = 0x00;
    const struct {
        const uint8_t *p;
        size_t n;
    } bad[] = {{truncated, sizeof truncated}, {two, sizeof two},
               {reserved, sizeof reserved},   {huge_map, sizeof huge_map},
               {short_str, sizeof short_str}, {deep, sizeof deep}};
    CHECK_OK(tr_msg_new(&m, ctx, "p"));
    CHECK_OK(tr_pack_int(m, 5));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_ERR(tr_msg_set_payload(m, bad[i].p, bad[i].n), TR_EBADMSG);
        CHECK_ERR(tr_validate(bad[i].p, bad[i].n), TR_EBADMSG);
        int64_t v = 0;
        CHECK_OK(tr_msg_int(m, &v));
        CHECK(v == 5);
    }
    CHECK_OK(tr_validate(good, sizeof good));
    /* Nesting: TR_PAYLOAD_DEPTH_MAX arrays around a scalar pass, one more
     * fails (deep[] holds 0x91 bytes, then a 0). */
    CHECK_OK(tr_validate(deep + sizeof deep - 1 - TR_PAYLOAD_DEPTH_MAX, TR_PAYLOAD_DEPTH_MAX + 1));
    CHECK_ERR(tr_validate(deep + sizeof deep - 2 - TR_PAYLOAD_DEPTH_MAX, TR_PAYLOAD_DEPTH_MAX + 2),
              TR_EBADMSG);
    CHECK_OK(tr_msg_set_payload(m, good, sizeof good));
    size_t len = 0;
    const uint8_t *p = tr_msg_payload(m, &len);
    CHECK(len == sizeof good && memcmp(p, good, len) == 0);
    CHECK_OK(tr_msg_validate(m));
    int64_t v;
    CHECK_ERR(tr_msg_int(m, &v), TR_ETYPE); /* an array is no integer */
    tr_msg_free(m);

    /* Reading the wrong type, or a value that does not fit. */
    CHECK_OK(tr_msg_new(&m, ctx, "s"));
    CHECK_OK(tr_pack_str(m, "seven"));
    CHECK_ERR(tr_msg_int(m, &v), TR_ETYPE);
    tr_cursor c;
    tr_cursor_init(&c, m);
    CHECK_ERR(tr_cursor_int(&c, &v), TR_ETYPE);
    tr_msg_free(m);
    CHECK_OK(tr_msg_new(&m, ctx, "u"));
    CHECK_OK(tr_pack_uint(m, UINT64_MAX));
    CHECK_ERR(tr_msg_int(m, &v), TR_ERANGE);
    tr_msg_free(m);

    /* A payload over TR_PAYLOAD_MAX is refused, when packed or when sent. */
    uint8_t *big = calloc(1, (size_t)TR_PAYLOAD_MAX + 1);
    CHECK(big != NULL);
    CHECK_OK(tr_msg_new(&m, ctx, "big"));
    tr_err pe = tr_pack_bin(m, big, (size_t)TR_PAYLOAD_MAX + 1);
    free(big);
    if (pe == TR_OK)
        CHECK_ERR(tr_send(ctx, tr_self(ctx), m), TR_ETOOBIG);
    else
        CHECK(pe == TR_ETOOBIG || pe == TR_ENOMEM);
    tr_msg_free(m);

    /* Neither an exit nor a DOWN message. */
    tr_ref who;
    tr_reason why;
    tr_monitor_id mid;
    CHECK_OK(tr_msg_new(&m, ctx, "plain"));
    CHECK(tr_msg_exit_info(m, &who, &why) != TR_OK);
    CHECK(tr_msg_down_info(m, &who, &mid, &why) != TR_OK);
    CHECK(!tr_msg_is_request(m));

    /* A reply to something that is no request. */
    tr_msg *reply = NULL;
    CHECK_OK(tr_msg_new(&reply, ctx, "reply"));
    CHECK_ERR(tr_reply(ctx, m, reply), TR_EINVAL);
    CHECK(tr_msg_is(reply, "reply")); /* still ours */
    tr_msg_free(reply);
    CHECK_ERR(tr_reply_error(ctx, m, TR_ENOTSUP), TR_EINVAL);
    tr_msg_free(m);
}

static void spawning_and_sending(tr_ctx *ctx, tr_runtime *rt)
{
    tr_ref r;
    tr_msg *args = NULL;
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    tr_counters c0 = test_counters(rt);
    CHECK_OK(tr_msg_new(&args, ctx, "args"));
    CHECK_OK(tr_pack_int(args, 1));
    CHECK_ERR(tr_spawn(&r, ctx, NULL, args, NULL), TR_EINVAL);
    CHECK_ERR(tr_spawn(&r, ctx, &no_handle_b, args, NULL), TR_EINVAL);
    CHECK_ERR(tr_spawn(&r, NULL, &ok_b, args, NULL), TR_EINVAL);
    CHECK_ERR(tr_spawn(NULL, ctx, &ok_b, args, NULL), TR_EINVAL);
    o.kind = TR_THREAD;
    CHECK_ERR(tr_spawn(&r, ctx, &no_handle_b, args, &o), TR_EINVAL); /* neither run nor handle */
    o.kind = (tr_actor_kind)42;
    CHECK_ERR(tr_spawn(&r, ctx, &ok_b, args, &o), TR_EINVAL);
    o.kind = TR_POOLED;
    o.mailbox_limit = 4;
    o.overflow = (tr_overflow)42;
    CHECK_ERR(tr_spawn(&r, ctx, &ok_b, args, &o), TR_EINVAL);
    CHECK(tr_msg_is(args, "args")); /* never consumed by a failed spawn */
    CHECK(test_counters(rt).spawned == c0.spawned);
    o.kind = TR_THREAD;
    o.overflow = TR_OVERFLOW_REJECT;
    CHECK_OK(tr_spawn(&r, ctx, &run_only_b, args, &o)); /* run without handle is fine */

    tr_msg *m = NULL;
    CHECK_OK(tr_msg_new(&m, ctx, "m"));
    CHECK_ERR(tr_send(NULL, tr_self(ctx), m), TR_EINVAL);
    CHECK_ERR(tr_send(ctx, tr_self(ctx), NULL), TR_EINVAL);
    CHECK(tr_send(ctx, TR_REF_NIL, m) != TR_OK);
    CHECK_ERR(tr_send_tag(ctx, tr_self(ctx), ""), TR_EINVAL);
    CHECK_ERR(tr_send_int(ctx, tr_self(ctx), NULL, 1), TR_EINVAL);
    CHECK_ERR(tr_send_str(ctx, tr_self(ctx), "s", NULL), TR_EINVAL);
    CHECK_ERR(tr_send_tag(ctx, tr_self(ctx), "a-tag-that-is-far-too-long-to-fit"), TR_ETOOBIG);

    /* Receiving and calling. */
    tr_msg *got = NULL;
    CHECK_ERR(tr_receive(ctx, NULL, NULL, NULL, 0, NULL), TR_EINVAL);
    CHECK_ERR(tr_receive(NULL, NULL, NULL, NULL, 0, &got), TR_EINVAL);
    tr_msg *taken = NULL;
    CHECK_OK(tr_msg_new(&taken, ctx, "taken"));
    CHECK_ERR(tr_call(ctx, tr_self(ctx), taken, 100, NULL), TR_EINVAL); /* takes it all the same */
    CHECK_ERR(tr_call(ctx, tr_self(ctx), NULL, 100, &got), TR_EINVAL);
    CHECK_ERR(tr_request(ctx, tr_self(ctx), m, 100, NULL, NULL), TR_EINVAL);

    /* Timers. */
    tr_timer_id t;
    CHECK_ERR(tr_send_interval(ctx, tr_self(ctx), m, 0, &t), TR_EINVAL);
    CHECK_ERR(tr_send_after(ctx, tr_self(ctx), NULL, 10, &t), TR_EINVAL);
    CHECK_ERR(tr_send_after(NULL, tr_self(ctx), m, 10, &t), TR_EINVAL);
    CHECK_ERR(tr_timer_cancel(ctx, (tr_timer_id)123456789), TR_ENOTFOUND);
    CHECK(tr_msg_is(m, "m"));
    tr_msg_free(m);

    /* Links, monitors, exits, names. */
    CHECK_ERR(tr_demonitor(ctx, (tr_monitor_id)987654321), TR_ENOTFOUND);
    CHECK_ERR(tr_exit(ctx, r, NULL), TR_EINVAL);
    tr_monitor_id mid;
    CHECK(tr_monitor(ctx, TR_REF_NIL, &mid) != TR_OK);
    CHECK(tr_link(ctx, TR_REF_NIL) != TR_OK);
    CHECK_ERR(tr_register(ctx, NULL, r), TR_EINVAL);
    CHECK_ERR(tr_unregister(ctx, "never-registered"), TR_ENOTFOUND);
    CHECK_ERR(tr_whereis(&r, rt, NULL), TR_EINVAL);
    CHECK_ERR(tr_whereis(NULL, rt, "x"), TR_EINVAL);
    CHECK_ERR(tr_whereis(&r, NULL, "x"), TR_EINVAL);
}

static void runtime_level(tr_runtime *rt)
{
    tr_counters c;
    CHECK_ERR(tr_runtime_counters(NULL, rt), TR_EINVAL);
    CHECK_ERR(tr_runtime_counters(&c, NULL), TR_EINVAL);
    CHECK_ERR(tr_runtime_start(NULL, NULL), TR_EINVAL);
    tr_ctx *ctx = NULL;
    CHECK_ERR(tr_attach(NULL, rt), TR_EINVAL);
    CHECK_ERR(tr_attach(&ctx, NULL), TR_EINVAL);
    CHECK_ERR(tr_runtime_stop(NULL, TR_STOP_DRAIN), TR_EINVAL);
    tr_runtime_free(NULL);
}

int main(void)
{
    error_names();
    tr_ctx *ctx;
    tr_runtime *rt = test_start(1, &ctx);
    messages(ctx);
    spawning_and_sending(ctx, rt);
    runtime_level(rt);
    test_recv_none(ctx, NULL, 0); /* no failed send left anything behind */
    test_finish(rt, ctx);
    printf("ok\n");
    return 0;
}
