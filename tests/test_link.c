/*
 * test_link — the node-link conformance suite, run over inproc://, ipc://,
 * tcp:// and tls+tcp://. Two runtimes in one process: A only dials, B
 * listens. Sends in both directions keep their order and lose nothing,
 * requests get replies across the link, a request to a dead remote actor
 * fails fast, a remote monitor fires with the remote reason, a node nobody
 * linked to is no route. Then B stops: what its actors said on the way out
 * (a DOWN with reason shutdown) reaches A (B drained before closing), and
 * its BYE fires A's links and monitors across at once (A's detection time
 * is a minute, longer than any wait here), after which sends are no route.
 * Usage: test_link PATH-OF-make_test_certs.sh
 */
#include "link_test.h"

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

/* B's attached main thread, watched from A: it never exits, so only the
 * link going away fires what A set up on it. */
static void check_stop(tr_runtime *rb, tr_ctx *ca, tr_ctx *cb)
{
    tr_ref victim, b_main = tr_self(cb);
    CHECK_OK(tr_spawn(&victim, cb, &echo_b, test_msg_ref(cb, "args", tr_self(ca)), NULL));
    tr_monitor_id mon_victim, mon_main;
    CHECK_OK(tr_monitor(ca, victim, &mon_victim));
    CHECK_OK(tr_monitor(ca, b_main, &mon_main));
    tr_trap_exit(ca, true);
    CHECK_OK(tr_link(ca, b_main));
    /* A round trip, so B has processed the monitors and the link. */
    tr_msg *req = NULL, *rep = NULL;
    CHECK_OK(tr_msg_new(&req, ca, "ask"));
    CHECK_OK(tr_pack_int(req, 1));
    CHECK_OK(tr_call(ca, victim, req, TEST_WAIT_MS, &rep));
    tr_msg_free(rep);

    CHECK_OK(tr_runtime_stop(rb, TR_STOP_DRAIN));
    /* B drained before it said goodbye: the victim's DOWN carries its real
     * reason (shutdown). Had B closed with it unwritten, the goodbye would
     * have fired this monitor with noconnection instead. */
    tr_msg *m = NULL;
    CHECK_OK(tr_receive(ca, TR_TAG_DOWN, test_match_down_of, &victim, TEST_WAIT_MS, &m));
    tr_ref who;
    tr_monitor_id id;
    tr_reason why;
    CHECK_OK(tr_msg_down_info(m, &who, &id, &why));
    CHECK(id == mon_victim && why.kind == TR_EXIT_SHUTDOWN);
    tr_msg_free(m);
    /* B's BYE: the monitor and the link on its main thread fire. */
    why = test_wait_down(ca, b_main);
    CHECK(why.kind == TR_EXIT_NOCONNECTION);
    m = test_recv(ca, TR_TAG_EXIT);
    tr_ref from;
    CHECK_OK(tr_msg_exit_info(m, &from, &why));
    CHECK(tr_ref_eq(from, b_main) && why.kind == TR_EXIT_NOCONNECTION);
    tr_msg_free(m);
    tr_trap_exit(ca, false);
    CHECK_ERR(tr_send_tag(ca, victim, "x"), TR_ENOROUTE);
    CHECK_ERR(tr_link(ca, b_main), TR_ENOROUTE);
}

static void one_transport(enum test_transport t, test_certs *certs)
{
    char url_b[128];
    test_url(url_b, sizeof url_b, t, 1);
    printf("link over %s (%s)\n", test_transport_names[t], url_b);
    tr_runtime_opts oa = TR_RUNTIME_OPTS_INIT, ob = TR_RUNTIME_OPTS_INIT;
    oa.node_name = "a";
    oa.link_detect_ms = 60000; /* only B's goodbye can fire A's monitors in time */
    ob.node_name = "b";
    tr_runtime *ra, *rb;
    CHECK_OK(tr_runtime_start(&ra, &oa));
    CHECK_OK(tr_runtime_start(&rb, &ob));
    if (t == T_TLS) {
        test_set_tls(ra, certs, false);
        test_set_tls(rb, certs, false);
    }
    CHECK_OK(tr_listen(rb, url_b)); /* A listens nowhere: it only dials */
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

    check_stop(rb, ca, cb);
    tr_counters c = test_counters(ra);
    if (c.bad_frames != 0 || c.link_refused != 0)
        TEST_FAIL("bad frames %llu, refused %llu", (unsigned long long)c.bad_frames,
                  (unsigned long long)c.link_refused);

    tr_detach(ca);
    tr_detach(cb);
    tr_runtime_free(ra);
    tr_runtime_free(rb);
    test_url_cleanup(url_b);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_certs certs;
    test_certs_make(&certs, argc > 1 ? argv[1] : NULL);
    for (int t = 0; t < T_COUNT; t++)
        one_transport((enum test_transport)t, &certs);

    /* Bad input is refused, not crashed on. */
    tr_runtime *rt;
    uint64_t node;
    CHECK_OK(tr_runtime_start(&rt, NULL));
    CHECK_ERR(tr_listen(rt, "nonsense://x"), TR_EINVAL);
    CHECK_ERR(tr_listen(rt, NULL), TR_EINVAL);
    CHECK_ERR(tr_listen(rt, "tls+tcp://127.0.0.1:1"), TR_EINVAL); /* no TLS identity */
    CHECK_ERR(tr_connect(rt, "inproc://nobody-listens", 500, &node), TR_ENOROUTE);
    tr_tls_opts o = TR_TLS_OPTS_INIT;
    CHECK_ERR(tr_runtime_set_tls(rt, &o), TR_EINVAL);
    o.cert_file = test_cert(&certs, 0, "no-such-file.pem");
    o.key_file = test_cert(&certs, 1, "node.key");
    o.ca_file = test_cert(&certs, 2, "ca.pem");
    CHECK_ERR(tr_runtime_set_tls(rt, &o), TR_ENOTFOUND);
    o.cert_file = test_cert(&certs, 0, "ca.key"); /* a key is not a certificate */
    CHECK_ERR(tr_runtime_set_tls(rt, &o), TR_EINVAL);
    o.cert_file = test_cert(&certs, 0, "node.pem");
    o.key_file = test_cert(&certs, 1, "rogue.key"); /* not this certificate's key */
    CHECK_ERR(tr_runtime_set_tls(rt, &o), TR_EINVAL);
    tr_runtime_free(rt);
    test_certs_remove(&certs);
    printf("ok\n");
    return 0;
}
