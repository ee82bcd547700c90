/*
 * test_msg — message building: the integer shortcut writes exactly what
 * msgpack-c writes, tags are checked, payloads grow past the inline bytes,
 * and a continuation cannot nest a receive or a call inside the one it runs
 * in.
 */
#include "check.h"

#include <string.h>

/* Encodes v with msgpack-c and with tr_pack_int; the bytes must agree. */
static void same_encoding(int64_t v)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    CHECK(msgpack_pack_int64(&pk, v) == 0);

    tr_msg *m = NULL;
    CHECK_OK(tr_msg_new(&m, NULL, "n"));
    CHECK_OK(tr_pack_int(m, v));
    size_t len = 0;
    const uint8_t *p = tr_msg_payload(m, &len);
    if (len != sb.size || memcmp(p, sb.data, len) != 0)
        TEST_FAIL("tr_pack_int(%lld) differs from msgpack-c", (long long)v);
    int64_t back = 0;
    CHECK_OK(tr_msg_int(m, &back));
    CHECK(back == v);
    tr_msg_free(m);
    msgpack_sbuffer_destroy(&sb);
}

static void integers(void)
{
    static const int64_t edges[] = {
        0,         1,  127, 128, 255,  256,  65535,  65536,  4294967295LL,  4294967296LL,
        INT64_MAX, -1, -32, -33, -128, -129, -32768, -32769, -2147483648LL, -2147483649LL,
        INT64_MIN};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        same_encoding(edges[i]);
    for (int64_t v = -70000; v <= 70000; v += 7)
        same_encoding(v);
}

static void tags_and_growth(void)
{
    tr_msg *m = NULL;
    CHECK_ERR(tr_msg_new(&m, NULL, ""), TR_EINVAL);
    CHECK_ERR(tr_msg_new(&m, NULL, "a-tag-of-twenty-four-ch"), TR_OK); /* 23 bytes */
    CHECK(strcmp(tr_msg_tag(m), "a-tag-of-twenty-four-ch") == 0);
    tr_msg_free(m);
    CHECK_ERR(tr_msg_new(&m, NULL, "a-tag-of-twenty-four-chr"), TR_ETOOBIG);

    /* Many values: the payload leaves the inline bytes and grows. */
    CHECK_OK(tr_msg_new(&m, NULL, "big"));
    CHECK_OK(tr_pack_array(m, 1000));
    for (int i = 0; i < 1000; i++)
        CHECK_OK(tr_pack_int(m, i * 1000));
    CHECK_OK(tr_msg_validate(m));
    tr_cursor c;
    uint32_t n = 0;
    tr_cursor_init(&c, m);
    CHECK_OK(tr_cursor_array(&c, &n));
    CHECK(n == 1000);
    for (int i = 0; i < 1000; i++) {
        int64_t v;
        CHECK_OK(tr_cursor_int(&c, &v));
        CHECK(v == i * 1000);
    }
    CHECK(tr_cursor_done(&c));
    tr_msg_free(m);
}

/* A thread actor whose continuation tries to receive and to call. */
static tr_ref g_main;

static int nested_cont(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    tr_msg *m = NULL, *req = NULL, *rep = NULL;
    int64_t r[2];
    r[0] = tr_receive(ctx, NULL, NULL, NULL, 0, &m);
    CHECK_OK(tr_msg_new(&req, ctx, "echo"));
    r[1] = tr_call(ctx, g_main, req, 100, &rep);
    test_send_ints(ctx, g_main, "nested", 2, r);
    return 0;
}

static int nester_run(tr_ctx *ctx, void *state)
{
    tr_msg *req = NULL, *m = NULL;
    CHECK_OK(tr_msg_new(&req, ctx, "echo"));
    CHECK_OK(tr_request(ctx, g_main, req, TEST_WAIT_MS, nested_cont, NULL));
    /* The reply arrives while this receive waits; the continuation runs
     * inside it. The receive ends when the runtime stops. */
    CHECK_ERR(tr_receive(ctx, "never", NULL, NULL, TR_FOREVER, &m), TR_ESTOPPED);
    return 0;
}

static const tr_behaviour nester_b = {"nester", 0, NULL, NULL, NULL, nester_run};

static void no_nesting(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    g_main = tr_self(ctx);
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_THREAD;
    tr_ref n;
    CHECK_OK(tr_spawn(&n, ctx, &nester_b, NULL, &o));
    tr_msg *req = test_recv(ctx, "echo");
    CHECK(tr_msg_is_request(req));
    tr_msg *rep = NULL;
    CHECK_OK(tr_msg_new(&rep, ctx, "echoed"));
    CHECK_OK(tr_reply(ctx, req, rep));
    tr_msg_free(req);
    tr_msg *got = test_recv(ctx, "nested");
    int64_t r[2];
    test_read_ints(got, 2, r);
    tr_msg_free(got);
    CHECK(r[0] == TR_EBUSY && r[1] == TR_EBUSY);
    test_finish(rt, ctx);
}

int main(void)
{
    integers();
    tags_and_growth();
    no_nesting();
    printf("ok\n");
    return 0;
}
