/*
 * test_conformance — the same checks against every placement of an actor:
 * pooled and thread actors in this runtime, a process actor, and an actor
 * on a peer node linked over inproc://, ipc://, tcp:// and tls+tcp://
 * (mutual TLS).
 *
 * Usage: test_conformance PATH-OF-make_test_certs.sh
 *
 * What a user relies on wherever the actor lives: per-sender order,
 * request/reply with the payload intact, deadlines, monitors and links
 * with the actor's own exit reason, names, and a normal stop.
 */
#include "check.h"
#include "link_test.h"

#include <pthread.h>
#include <signal.h>

/* ---- the server every placement runs -------------------------------------- */

typedef struct server {
    int64_t next;
    bool in_order;
} server;

static int server_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    (void)ctx;
    (void)args;
    ((server *)state)->in_order = true;
    return 0;
}

static int server_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    server *s = state;
    if (tr_msg_is(m, "n")) {
        int64_t v;
        if (tr_msg_int(m, &v) != TR_OK || v != s->next)
            s->in_order = false;
        s->next = v + 1;
        return 0;
    }
    if (tr_msg_is(m, "get")) {
        int64_t vals[2] = {s->next, s->in_order};
        return tr_reply(ctx, m, test_msg_ints(ctx, "got", 2, vals));
    }
    if (tr_msg_is(m, "echo")) {
        size_t len;
        const uint8_t *p = tr_msg_payload(m, &len);
        tr_msg *r;
        CHECK_OK(tr_msg_new(&r, ctx, "echo"));
        CHECK_OK(tr_msg_set_payload(r, p, len));
        return tr_reply(ctx, m, r);
    }
    if (tr_msg_is(m, "hold"))
        return 0; /* never answered */
    if (tr_msg_is(m, "crash"))
        return 9;
    if (tr_msg_is(m, "stop"))
        tr_stop_self(ctx, NULL);
    return 0;
}

static const tr_behaviour server_beh = {"server",      sizeof(server), server_init,
                                        server_handle, NULL,           NULL};

/* ---- placements ------------------------------------------------------------ */

enum place {
    P_POOLED,
    P_THREAD,
    P_PROCESS,
    P_INPROC,
    P_IPC,
    P_TCP,
    P_TLS,
    P_COUNT
};
static const char *place_name[] = {"pooled", "thread", "process", "inproc", "ipc", "tcp", "tls"};

static tr_runtime *peer; /* the peer node of the current node placement */

struct remote_spawn {
    tr_runtime *rt;
    const char *name;
    tr_ref out;
};

/* Spawns a server on the peer node from a thread attached to it. */
static void *spawn_on_peer(void *arg)
{
    struct remote_spawn *r = arg;
    tr_ctx *ctx;
    CHECK_OK(tr_attach(&ctx, r->rt));
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.name = r->name;
    CHECK_OK(tr_spawn(&r->out, ctx, &server_beh, NULL, &o));
    tr_detach(ctx);
    return NULL;
}

/* A new server placed as p, registered as name (on its own node). */
static tr_ref place_server(tr_ctx *ctx, enum place p, const char *name)
{
    if (p >= P_INPROC) {
        struct remote_spawn r = {peer, name, TR_REF_NIL};
        pthread_t t;
        CHECK(pthread_create(&t, NULL, spawn_on_peer, &r) == 0);
        CHECK(pthread_join(t, NULL) == 0);
        return r.out;
    }
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = p == P_POOLED ? TR_POOLED : p == P_THREAD ? TR_THREAD : TR_PROCESS;
    o.name = name;
    tr_ref r;
    CHECK_OK(tr_spawn(&r, ctx, &server_beh, NULL, &o));
    return r;
}

static tr_runtime *name_node(tr_ctx *ctx, enum place p)
{
    return p >= P_INPROC ? peer : tr_ctx_runtime(ctx);
}

/* ---- a linked watcher: forwards the exit it traps to main ------------------ */

static tr_ref g_main;

static int watcher_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    (void)state;
    if (tr_msg_is(m, "watch")) {
        tr_cursor c;
        tr_ref target;
        tr_cursor_init(&c, m);
        CHECK_OK(tr_cursor_ref(&c, &target));
        tr_trap_exit(ctx, true);
        CHECK_OK(tr_link(ctx, target));
        return tr_send_tag(ctx, target, "crash");
    }
    tr_reason why;
    if (tr_msg_is(m, TR_TAG_EXIT) && tr_msg_exit_info(m, NULL, &why) == TR_OK) {
        tr_stop_self(ctx, NULL);
        return tr_send_int(ctx, g_main, "watched", why.kind * 100 + why.code);
    }
    return 0;
}

static const tr_behaviour watcher_beh = {"watcher", 0, NULL, watcher_handle, NULL, NULL};

/* ---- the checks ------------------------------------------------------------- */

static tr_reason down_reason(tr_ctx *ctx, tr_ref r, tr_monitor_id id)
{
    tr_msg *m = test_recv(ctx, TR_TAG_DOWN);
    tr_ref who;
    tr_monitor_id got;
    tr_reason why;
    CHECK_OK(tr_msg_down_info(m, &who, &got, &why));
    CHECK(got == id && tr_ref_eq(who, r));
    tr_msg_free(m);
    return why;
}

static void conformance(tr_ctx *ctx, enum place p)
{
    fprintf(stderr, "-- %s\n", place_name[p]);
    tr_ref s = place_server(ctx, p, "conf-server");

    /* Order: one sender's messages arrive in the order sent. */
    uint32_t n = test_scale(5000);
    for (uint32_t i = 0; i < n; i++)
        CHECK_OK(tr_send_int(ctx, s, "n", i));
    tr_msg *req, *rep = NULL;
    CHECK_OK(tr_msg_new(&req, ctx, "get"));
    CHECK_OK(tr_call(ctx, s, req, TEST_WAIT_MS, &rep));
    int64_t got[2];
    test_read_ints(rep, 2, got);
    tr_msg_free(rep);
    CHECK(got[0] == n && got[1] == 1);

    /* Request/reply: the payload comes back byte for byte. */
    CHECK_OK(tr_msg_new(&req, ctx, "echo"));
    CHECK_OK(tr_pack_array(req, 3));
    CHECK_OK(tr_pack_str(req, "héllo"));
    CHECK_OK(tr_pack_int(req, -123456789012));
    CHECK_OK(tr_pack_double(req, 2.5));
    size_t sent_len;
    uint8_t sent[64];
    const uint8_t *sp = tr_msg_payload(req, &sent_len);
    CHECK(sent_len <= sizeof sent);
    memcpy(sent, sp, sent_len);
    CHECK_OK(tr_call(ctx, s, req, TEST_WAIT_MS, &rep));
    size_t back_len;
    const uint8_t *back = tr_msg_payload(rep, &back_len);
    CHECK(back_len == sent_len && memcmp(back, sent, sent_len) == 0);
    tr_msg_free(rep);

    /* Deadlines: a request nobody answers times out. */
    CHECK_OK(tr_msg_new(&req, ctx, "hold"));
    CHECK_ERR(tr_call(ctx, s, req, 200, &rep), TR_ETIMEDOUT);

    /* Names: the name given at spawn finds the actor on its node. */
    tr_ref found;
    CHECK_OK(tr_whereis(&found, name_node(ctx, p), "conf-server"));
    CHECK(tr_ref_eq(found, s));

    /* Monitors: DOWN carries the actor's own reason. */
    tr_monitor_id id;
    CHECK_OK(tr_monitor(ctx, s, &id));
    CHECK_OK(tr_send_tag(ctx, s, "crash"));
    tr_reason why = down_reason(ctx, s, id);
    CHECK(why.kind == TR_EXIT_ERROR && why.code == 9);
    CHECK_ERR(tr_whereis(&found, name_node(ctx, p), "conf-server"), TR_ENOTFOUND);

    /* Links: a linked actor that traps exits gets the reason. */
    tr_ref s2 = place_server(ctx, p, NULL), w;
    CHECK_OK(tr_spawn(&w, ctx, &watcher_beh, NULL, NULL));
    CHECK_OK(tr_send(ctx, w, test_msg_ref(ctx, "watch", s2)));
    CHECK(test_recv_int(ctx, "watched") == TR_EXIT_ERROR * 100 + 9);

    /* A normal stop is seen as normal. */
    tr_ref s3 = place_server(ctx, p, NULL);
    CHECK_OK(tr_monitor(ctx, s3, &id));
    CHECK_OK(tr_send_tag(ctx, s3, "stop"));
    why = down_reason(ctx, s3, id);
    CHECK(why.kind == TR_EXIT_NORMAL);
}

int main(int argc, char **argv)
{
    test_certs certs;
    test_certs_make(&certs, argc > 1 ? argv[1] : NULL);
    signal(SIGPIPE, SIG_IGN);
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    g_main = tr_self(ctx);
    for (enum place p = P_POOLED; p <= P_PROCESS; p++)
        conformance(ctx, p);

    for (enum place p = P_INPROC; p < P_COUNT; p++) {
        char url[128];
        if (p == P_INPROC)
            snprintf(url, sizeof url, "inproc://conf-%d", (int)getpid());
        else if (p == P_IPC)
            snprintf(url, sizeof url, "ipc:///tmp/troupe-conf-%d.sock", (int)getpid());
        else
            snprintf(url, sizeof url, "%s://127.0.0.1:%d", p == P_TLS ? "tls+tcp" : "tcp",
                     test_free_port());
        tr_runtime_opts o = TR_RUNTIME_OPTS_INIT;
        o.workers = 1;
        o.node_name = "peer";
        CHECK_OK(tr_runtime_start(&peer, &o));
        if (p == P_TLS) {
            test_set_tls(peer, &certs, false);
            test_set_tls(rt, &certs, false);
        }
        CHECK_OK(tr_listen(peer, url));
        uint64_t node; /* this node dials: it knows the link is up on return */
        CHECK_OK(tr_connect(rt, url, TEST_WAIT_MS, &node));
        CHECK(node == tr_runtime_node(peer));
        conformance(ctx, p);
        CHECK_OK(tr_runtime_stop(peer, TR_STOP_DRAIN));
        tr_runtime_free(peer);
        peer = NULL;
        test_url_cleanup(url);
    }
    test_finish(rt, ctx);
    test_certs_remove(&certs);
    printf("conformance: ok\n");
    return 0;
}
