/*
 * test_link — two runtimes in one process linked over inproc://, ipc:// and
 * tcp://: sends in both directions keep their order and lose nothing,
 * requests get replies across the link, a request to a dead remote actor
 * fails fast, a remote monitor fires, and a bad address is refused.
 */
#include "check.h"

#include <string.h>
#include <unistd.h>

/* On node B: forwards "n" to the ref in its args, replies to requests with
 * v + 1, and stops on "stop". */
typedef struct echo_state {
    tr_ref sink;
} echo_state;

static int echo_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    echo_state *s = state;
    s->sink = test_read_ref(args);
    return 0;
}

static int echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    echo_state *s = state;
    int64_t v = 0;
    if (tr_msg_is(m, "stop")) {
        tr_reason why = tr_reason_make(TR_EXIT_ERROR, 42, "told to");
        tr_stop_self(ctx, &why);
        return 0;
    }
    if (tr_msg_is_request(m)) {
        CHECK_OK(tr_msg_int(m, &v));
        tr_msg *r = NULL;
        CHECK_OK(tr_msg_new(&r, ctx, "plus1"));
        CHECK_OK(tr_pack_int(r, v + 1));
        CHECK_OK(tr_reply(ctx, m, r));
        return 0;
    }
    CHECK_OK(tr_msg_int(m, &v));
    return tr_send_int(ctx, s->sink, "n", v);
}

static const tr_behaviour echo_b = {"echo", sizeof(echo_state), echo_init, echo_handle, NULL, NULL};

static void one_transport(const char *url_a, const char *url_b)
{
    printf("link over %s\n", url_a);
    tr_runtime_opts oa = TR_RUNTIME_OPTS_INIT, ob = TR_RUNTIME_OPTS_INIT;
    oa.node_name = "a";
    ob.node_name = "b";
    tr_runtime *ra, *rb;
    CHECK_OK(tr_runtime_start(&ra, &oa));
    CHECK_OK(tr_runtime_start(&rb, &ob));
    CHECK_OK(tr_listen(ra, url_a));
    CHECK_OK(tr_listen(rb, url_b));
    uint64_t node_b = 0;
    CHECK_OK(tr_connect(ra, url_b, TEST_WAIT_MS, &node_b));
    CHECK(node_b == tr_runtime_node(rb));

    tr_ctx *ca, *cb;
    CHECK_OK(tr_attach(&ca, ra));
    CHECK_OK(tr_attach(&cb, rb));

    /* An echo actor on B that sends back to main on A. */
    tr_ref echo;
    CHECK_OK(tr_spawn(&echo, cb, &echo_b, test_msg_ref(cb, "args", tr_self(ca)), NULL));
    CHECK(echo.node == node_b);

    /* A → B → A, in order, nothing lost. */
    const int n = (int)test_scale(20000);
    for (int i = 0; i < n; i++)
        CHECK_OK(tr_send_int(ca, echo, "n", i));
    for (int i = 0; i < n; i++)
        CHECK(test_recv_int(ca, "n") == i);

    /* A request across the link, and its reply. */
    tr_msg *req = NULL, *rep = NULL;
    CHECK_OK(tr_msg_new(&req, ca, "ask"));
    CHECK_OK(tr_pack_int(req, 41));
    CHECK_OK(tr_call(ca, echo, req, TEST_WAIT_MS, &rep));
    int64_t v = 0;
    CHECK_OK(tr_msg_int(rep, &v));
    CHECK(v == 42);
    CHECK(tr_ref_eq(tr_msg_from(rep), echo));
    tr_msg_free(rep);

    /* A monitor across the link fires with the remote reason. */
    tr_monitor_id mon;
    CHECK_OK(tr_monitor(ca, echo, &mon));
    CHECK_OK(tr_send_tag(ca, echo, "stop"));
    tr_reason why = test_wait_down(ca, echo);
    CHECK(why.kind == TR_EXIT_ERROR && why.code == 42);

    /* A request to the dead actor is answered for it: no deadline wait. */
    CHECK_OK(tr_msg_new(&req, ca, "ask"));
    CHECK_OK(tr_pack_int(req, 1));
    CHECK_ERR(tr_call(ca, echo, req, TEST_WAIT_MS, &rep), TR_ENOACTOR);

    /* A node nobody linked to is no route. */
    tr_ref nowhere = {node_b ^ 0x5555, 1, 1};
    CHECK_ERR(tr_send_tag(ca, nowhere, "x"), TR_ENOROUTE);

    tr_detach(ca);
    tr_detach(cb);
    tr_runtime_free(ra);
    tr_runtime_free(rb);
}

int main(void)
{
    char a[128], b[128];
    int pid = (int)getpid();

    snprintf(a, sizeof a, "inproc://troupe-test-%d-a", pid);
    snprintf(b, sizeof b, "inproc://troupe-test-%d-b", pid);
    one_transport(a, b);

    snprintf(a, sizeof a, "ipc:///tmp/troupe-test-%d-a.sock", pid);
    snprintf(b, sizeof b, "ipc:///tmp/troupe-test-%d-b.sock", pid);
    one_transport(a, b);
    unlink(a + strlen("ipc://"));
    unlink(b + strlen("ipc://"));

    int port = 20000 + pid % 20000;
    snprintf(a, sizeof a, "tcp://127.0.0.1:%d", port);
    snprintf(b, sizeof b, "tcp://127.0.0.1:%d", port + 1);
    one_transport(a, b);

    /* Bad input is refused, not crashed on. */
    tr_runtime *rt;
    uint64_t node;
    CHECK_OK(tr_runtime_start(&rt, NULL));
    CHECK_ERR(tr_listen(rt, "nonsense://x"), TR_EINVAL);
    CHECK_ERR(tr_listen(rt, NULL), TR_EINVAL);
    CHECK_ERR(tr_connect(rt, "inproc://nobody-listens", 10, &node), TR_ENOROUTE);
    tr_runtime_free(rt);
    printf("ok\n");
    return 0;
}
