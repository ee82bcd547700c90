/*
 * test_remote — remote spawn by name, names across nodes and node
 * monitors, between runtimes in one process linked over inproc:// and
 * tcp://.
 *
 * Spawning: a behaviour registered on B is spawned from A by name, pooled
 * and as a thread; the child runs, answers a request and exits. An unknown
 * name, an unlinked node, an expired deadline and a taken name each give
 * their error. With link, a child that fails in init signals its spawner
 * with the real reason (trapped, or taking a non-trapping spawner down).
 * A pooled actor spawns and looks up through continuations. The node
 * kernel counts in no counter. Names: lookups across the link before and
 * after the actor exits, and sends to a name. Bad input: hand-made kernel
 * requests with garbage are refused with a clear error and the kernel goes
 * on serving. Node monitors: up on connect, down when the peer stops, up
 * again for a restarted peer, per-node subscriptions, and the node list.
 */
#include "check.h"

#include <string.h>
#include <unistd.h>

/* ---- behaviours registered on the serving node --------------------------- */

/* Replies to requests with base + v (base from args "base", else 0),
 * answers "ping" with "pong" carrying base, and exits on "stop". */
static int adder_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    int64_t *base = state;
    if (args != NULL) {
        CHECK(tr_msg_is(args, "base"));
        CHECK_OK(tr_msg_int(args, base));
    }
    return 0;
}

static int adder_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    int64_t base = *(int64_t *)state, v = 0;
    if (tr_msg_is(m, "stop")) {
        tr_reason why = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
        tr_stop_self(ctx, &why);
    } else if (tr_msg_is(m, "ping")) {
        CHECK_OK(tr_send_int(ctx, tr_msg_from(m), "pong", base));
    } else if (tr_msg_is_request(m)) {
        CHECK_OK(tr_msg_int(m, &v));
        tr_msg *r = NULL;
        CHECK_OK(tr_msg_new(&r, ctx, "sum"));
        CHECK_OK(tr_pack_int(r, base + v));
        CHECK_OK(tr_reply(ctx, m, r));
    }
    return 0;
}

static const tr_behaviour adder_b = {"adder", sizeof(int64_t), adder_init, adder_handle, NULL,
                                     NULL};

/* Fails in init, before it handles anything. */
static int crasher_init(tr_ctx *ctx, void *state, const tr_msg *args) { return 7; }
static int crasher_handle(tr_ctx *ctx, void *state, const tr_msg *m) { return 0; }
static const tr_behaviour crasher_b = {"crasher", 0, crasher_init, crasher_handle, NULL, NULL};

/* ---- actors on the asking node ------------------------------------------- */

/* Args of the asking actors: [node, main's reference]. */
typedef struct asker_state {
    uint64_t node;
    tr_ref main;
    tr_ref child;
} asker_state;

static tr_msg *asker_args(tr_ctx *ctx, uint64_t node, tr_ref main_ref)
{
    tr_msg *m = NULL;
    CHECK_OK(tr_msg_new(&m, ctx, "args"));
    CHECK_OK(tr_pack_array(m, 2));
    CHECK_OK(tr_pack_uint(m, node));
    CHECK_OK(tr_pack_ref(m, main_ref));
    return m;
}

static int asker_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    asker_state *s = state;
    tr_cursor c;
    uint32_t n = 0;
    tr_cursor_init(&c, args);
    CHECK_OK(tr_cursor_array(&c, &n));
    CHECK(n == 2);
    CHECK_OK(tr_cursor_uint(&c, &s->node));
    CHECK_OK(tr_cursor_ref(&c, &s->main));
    return 0;
}

/* A thread actor that spawns a crasher linked to itself without trapping
 * exits: the crash takes it down with the crasher's reason. */
static int linker_run(tr_ctx *ctx, void *state)
{
    asker_state *s = state;
    tr_ref child;
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.link = true;
    CHECK_OK(tr_spawn_remote(&child, ctx, s->node, "crasher", NULL, &o, TEST_WAIT_MS));
    CHECK_OK(tr_send_tag(ctx, s->main, "spawned"));
    tr_msg *m;
    while (tr_receive(ctx, NULL, NULL, NULL, TR_FOREVER, &m) == TR_OK)
        tr_msg_free(m);
    return 0;
}

static const tr_behaviour linker_b = {"linker", sizeof(asker_state), asker_init, NULL,
                                      NULL,     linker_run};

/* A pooled actor: on "go" it checks that the blocking forms refuse, then
 * spawns and looks up through continuations and reports to main. */
static int on_added(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    asker_state *s = state;
    int64_t v = 0;
    CHECK_OK(status);
    CHECK_OK(tr_msg_int(reply, &v));
    CHECK_OK(tr_send_tag(ctx, s->child, "stop"));
    return tr_send_int(ctx, s->main, "result", v);
}

static int on_spawned(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    asker_state *s = state;
    CHECK_OK(status);
    CHECK_OK(tr_msg_ref(reply, &s->child));
    CHECK(s->child.node == s->node);
    tr_msg *req = NULL;
    CHECK_OK(tr_msg_new(&req, ctx, "add"));
    CHECK_OK(tr_pack_int(req, 1));
    return tr_request(ctx, s->child, req, TEST_WAIT_MS, on_added, NULL);
}

static int on_status(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    asker_state *s = state;
    CHECK(reply == NULL);
    return tr_send_int(ctx, s->main, (const char *)udata, status);
}

/* The linked crasher was spawned; its exit signal may come before this. */
static int on_linked(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    tr_ref r;
    CHECK_OK(status);
    CHECK_OK(tr_msg_ref(reply, &r));
    return 0;
}

static int on_found(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    asker_state *s = state;
    tr_ref r;
    CHECK_OK(status);
    CHECK_OK(tr_msg_ref(reply, &r));
    return tr_send(ctx, s->main, test_msg_ref(ctx, "found", r));
}

static int asker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    asker_state *s = state;
    if (tr_msg_is(m, TR_TAG_EXIT)) {
        tr_ref from;
        tr_reason why;
        CHECK_OK(tr_msg_exit_info(m, &from, &why));
        CHECK(from.node == s->node);
        return tr_send_int(ctx, s->main, "crashed", why.code);
    }
    if (!tr_msg_is(m, "go"))
        return 0;
    tr_ref r;
    CHECK_ERR(tr_spawn_remote(&r, ctx, s->node, "adder", NULL, NULL, TEST_WAIT_MS), TR_EWOULDBLOCK);
    CHECK_ERR(tr_whereis_remote(&r, ctx, s->node, "svc", TEST_WAIT_MS), TR_EWOULDBLOCK);
    tr_msg *args = NULL;
    CHECK_OK(tr_msg_new(&args, ctx, "base"));
    CHECK_OK(tr_pack_int(args, 5));
    CHECK_OK(
        tr_spawn_remote_async(ctx, s->node, "adder", args, NULL, TEST_WAIT_MS, on_spawned, NULL));
    CHECK_OK(tr_spawn_remote_async(ctx, s->node, "nosuch", NULL, NULL, TEST_WAIT_MS, on_status,
                                   "nosuch"));
    CHECK_OK(tr_whereis_remote_async(ctx, s->node, "svc", TEST_WAIT_MS, on_found, NULL));
    CHECK_OK(tr_whereis_remote_async(ctx, s->node, "nobody", TEST_WAIT_MS, on_status, "nobody"));
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.link = true;
    return tr_spawn_remote_async(ctx, s->node, "crasher", NULL, &o, TEST_WAIT_MS, on_linked, NULL);
}

static const tr_behaviour asker_b = {"asker", sizeof(asker_state), asker_init, asker_handle, NULL,
                                     NULL};

/* Subscribes to node events in init (and says so), then tells main about
 * each event. */
static int watcher_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    *(tr_ref *)state = test_read_ref(args);
    CHECK_OK(tr_monitor_nodes(ctx, true));
    return tr_send_tag(ctx, *(tr_ref *)state, "watching");
}

static int watcher_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    tr_node_info ni;
    CHECK_OK(tr_msg_node_info(m, &ni));
    int64_t v[2] = {ni.up, (int64_t)ni.node};
    test_send_ints(ctx, *(tr_ref *)state, "seen", 2, v);
    return 0;
}

static const tr_behaviour watcher_b = {"watcher",      sizeof(tr_ref), watcher_init,
                                       watcher_handle, NULL,           NULL};

/* ---- helpers ------------------------------------------------------------- */

typedef struct pair {
    tr_runtime *ra, *rb;
    tr_ctx *ca, *cb;
    uint64_t node_a, node_b;
} pair;

static tr_runtime *node_start(const char *name, const char *url)
{
    tr_runtime_opts o = TR_RUNTIME_OPTS_INIT;
    o.node_name = name;
    o.workers = 2;
    tr_runtime *rt = NULL;
    CHECK_OK(tr_runtime_start(&rt, &o));
    CHECK_OK(tr_register_behaviour(rt, "adder", &adder_b));
    CHECK_OK(tr_register_behaviour(rt, "crasher", &crasher_b));
    CHECK_OK(tr_listen(rt, url));
    return rt;
}

static void pair_start(pair *p, const char *url_a, const char *url_b)
{
    p->ra = node_start("a", url_a);
    p->rb = node_start("b", url_b);
    p->node_a = tr_runtime_node(p->ra);
    CHECK_OK(tr_connect(p->ra, url_b, TEST_WAIT_MS, &p->node_b));
    CHECK(p->node_b == tr_runtime_node(p->rb));
    CHECK_OK(tr_attach(&p->ca, p->ra));
    CHECK_OK(tr_attach(&p->cb, p->rb));
}

static void pair_finish(pair *p)
{
    tr_detach(p->ca);
    tr_detach(p->cb);
    tr_runtime_free(p->ra);
    tr_runtime_free(p->rb);
}

static int64_t call_int(tr_ctx *ctx, tr_ref to, int64_t v)
{
    tr_msg *req = NULL, *rep = NULL;
    CHECK_OK(tr_msg_new(&req, ctx, "add"));
    CHECK_OK(tr_pack_int(req, v));
    CHECK_OK(tr_call(ctx, to, req, TEST_WAIT_MS, &rep));
    int64_t got = 0;
    CHECK_OK(tr_msg_int(rep, &got));
    tr_msg_free(rep);
    return got;
}

static tr_msg *int_msg(tr_ctx *ctx, const char *tag, int64_t v)
{
    tr_msg *m = NULL;
    CHECK_OK(tr_msg_new(&m, ctx, tag));
    CHECK_OK(tr_pack_int(m, v));
    return m;
}

/* Waits for a trapped exit signal from who and returns its reason. */
static tr_reason wait_exit(tr_ctx *ctx, tr_ref who)
{
    tr_msg *m = test_recv(ctx, TR_TAG_EXIT);
    tr_ref from;
    tr_reason why;
    CHECK_OK(tr_msg_exit_info(m, &from, &why));
    CHECK(tr_ref_eq(from, who));
    tr_msg_free(m);
    return why;
}

/* Stops who (an adder) and waits until it is gone. */
static void adder_stop(tr_ctx *ctx, tr_ref who)
{
    tr_monitor_id mon;
    CHECK_OK(tr_monitor(ctx, who, &mon));
    CHECK_OK(tr_send_tag(ctx, who, "stop"));
    tr_reason why = test_wait_down(ctx, who);
    CHECK(why.kind == TR_EXIT_NORMAL);
}

/* ---- remote spawn -------------------------------------------------------- */

static void test_spawn(const char *url_a, const char *url_b)
{
    printf("remote spawn over %s\n", url_a);
    pair p;
    pair_start(&p, url_a, url_b);
    tr_ctx *ca = p.ca;
    tr_counters b0 = test_counters(p.rb);

    /* Pooled and thread children run, answer a request and exit. */
    for (int kind = TR_POOLED; kind <= TR_THREAD; kind++) {
        tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
        o.kind = (tr_actor_kind)kind;
        tr_ref child;
        CHECK_OK(tr_spawn_remote(&child, ca, p.node_b, "adder", int_msg(ca, "base", 100), &o,
                                 TEST_WAIT_MS));
        CHECK(child.node == p.node_b);
        CHECK(call_int(ca, child, 1) == 101);
        adder_stop(ca, child);
    }
    /* Without args, init sees NULL. */
    tr_ref child;
    CHECK_OK(tr_spawn_remote(&child, ca, p.node_b, "adder", NULL, NULL, TEST_WAIT_MS));
    CHECK(call_int(ca, child, 1) == 1);
    adder_stop(ca, child);

    /* The same on the caller's own node. */
    CHECK_OK(tr_register_behaviour(p.ra, "adder2", &adder_b));
    CHECK_OK(tr_spawn_remote(&child, ca, p.node_a, "adder2", int_msg(ca, "base", 7), NULL,
                             TEST_WAIT_MS));
    CHECK(child.node == p.node_a);
    CHECK(call_int(ca, child, 1) == 8);
    adder_stop(ca, child);

    /* Errors, each leaving args with the caller. */
    tr_msg *args = int_msg(ca, "base", 1);
    CHECK_ERR(tr_spawn_remote(&child, ca, p.node_b, "nosuch", args, NULL, TEST_WAIT_MS),
              TR_ENOTFOUND);
    CHECK_ERR(tr_spawn_remote(&child, ca, p.node_b ^ 0x5555, "adder", args, NULL, TEST_WAIT_MS),
              TR_ENOROUTE);
    CHECK_ERR(tr_spawn_remote(&child, ca, p.node_b, "adder", args, NULL, 0), TR_ETIMEDOUT);
    CHECK_ERR(tr_spawn_remote_async(ca, p.node_b, "adder", args, NULL, 0, on_status, "x"),
              TR_ETIMEDOUT);
    CHECK_ERR(tr_spawn_remote(&child, ca, 0, "adder", args, NULL, TEST_WAIT_MS), TR_EINVAL);
    tr_msg_free(args);

    /* Linked children that fail in init: the spawner hears the real
     * reason, pooled and thread alike. */
    tr_trap_exit(ca, true);
    for (int kind = TR_POOLED; kind <= TR_THREAD; kind++) {
        tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
        o.kind = (tr_actor_kind)kind;
        o.link = true;
        CHECK_OK(tr_spawn_remote(&child, ca, p.node_b, "crasher", NULL, &o, TEST_WAIT_MS));
        tr_reason why = wait_exit(ca, child);
        CHECK(why.kind == TR_EXIT_ERROR && why.code == 7);
    }
    /* A spawner that does not trap exits goes down with its child. */
    tr_ref linker;
    tr_spawn_opts lo = TR_SPAWN_OPTS_INIT;
    lo.kind = TR_THREAD;
    lo.link = true;
    CHECK_OK(tr_spawn(&linker, ca, &linker_b, asker_args(ca, p.node_b, tr_self(ca)), &lo));
    tr_msg_free(test_recv(ca, "spawned"));
    tr_reason why = wait_exit(ca, linker);
    CHECK(why.kind == TR_EXIT_ERROR && why.code == 7);
    tr_trap_exit(ca, false);

    /* A pooled actor spawns and looks up without blocking. */
    tr_ref svc;
    tr_spawn_opts so = TR_SPAWN_OPTS_INIT;
    so.name = "svc";
    CHECK_OK(tr_spawn_remote(&svc, ca, p.node_b, "adder", NULL, &so, TEST_WAIT_MS));
    tr_ref asker;
    tr_spawn_opts ao = TR_SPAWN_OPTS_INIT;
    ao.trap_exit = true;
    CHECK_OK(tr_spawn(&asker, ca, &asker_b, asker_args(ca, p.node_b, tr_self(ca)), &ao));
    CHECK_OK(tr_send_tag(ca, asker, "go"));
    CHECK(test_recv_int(ca, "result") == 6);
    CHECK(test_recv_int(ca, "nosuch") == TR_ENOTFOUND);
    CHECK(test_recv_int(ca, "nobody") == TR_ENOTFOUND);
    tr_msg *found = test_recv(ca, "found");
    CHECK(tr_ref_eq(test_read_ref(found), svc));
    tr_msg_free(found);
    CHECK(test_recv_int(ca, "crashed") == 7);
    adder_stop(ca, svc);

    /* The kernel is no user actor: B counts only the children. */
    WAIT_UNTIL(test_counters(p.rb).live_actors == b0.live_actors);
    /* (A child may exit before its spawner counts it.) */
    WAIT_UNTIL(test_counters(p.rb).spawned == b0.spawned + 9);
    WAIT_UNTIL(test_counters(p.rb).exited == b0.exited + 9);
    pair_finish(&p);
}

/* ---- names across nodes -------------------------------------------------- */

static void test_names(const char *url_a, const char *url_b)
{
    printf("remote names over %s\n", url_a);
    pair p;
    pair_start(&p, url_a, url_b);
    tr_ctx *ca = p.ca;

    tr_ref svc, r;
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.name = "svc";
    CHECK_OK(
        tr_spawn_remote(&svc, ca, p.node_b, "adder", int_msg(ca, "base", 3), &o, TEST_WAIT_MS));
    CHECK_OK(tr_whereis(&r, p.rb, "svc"));
    CHECK(tr_ref_eq(r, svc));
    CHECK_OK(tr_whereis_remote(&r, ca, p.node_b, "svc", TEST_WAIT_MS));
    CHECK(tr_ref_eq(r, svc));
    CHECK_ERR(tr_whereis_remote(&r, ca, p.node_b, "nobody", TEST_WAIT_MS), TR_ENOTFOUND);
    CHECK_ERR(tr_whereis_remote(&r, ca, p.node_b ^ 0x5555, "svc", TEST_WAIT_MS), TR_ENOROUTE);
    CHECK_ERR(tr_whereis_remote(&r, ca, p.node_b, "svc", 0), TR_ETIMEDOUT);

    /* A taken name spawns nothing. */
    tr_counters b0 = test_counters(p.rb);
    CHECK_ERR(tr_spawn_remote(&r, ca, p.node_b, "adder", NULL, &o, TEST_WAIT_MS), TR_EEXIST);
    CHECK(test_counters(p.rb).spawned == b0.spawned);

    /* Sends to a name keep the sender and their order. */
    for (int i = 0; i < 3; i++)
        CHECK_OK(tr_send_named(ca, p.node_b, "svc", int_msg(ca, "ping", i)));
    for (int i = 0; i < 3; i++) {
        tr_msg *m = test_recv(ca, "pong");
        CHECK(tr_ref_eq(tr_msg_from(m), svc));
        tr_msg_free(m);
    }
    /* One to nobody there is a dead letter there. */
    tr_msg *m = int_msg(ca, "ping", 0);
    CHECK_OK(tr_send_named(ca, p.node_b, "nobody", m));
    WAIT_UNTIL(test_counters(p.rb).dead_letters > b0.dead_letters);
    m = int_msg(ca, "ping", 0);
    CHECK_ERR(tr_send_named(ca, p.node_b ^ 0x5555, "svc", m), TR_ENOROUTE);
    char longname[TR_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_ERR(tr_send_named(ca, p.node_b, longname, m), TR_ETOOBIG);
    CHECK_ERR(tr_whereis_remote(&r, ca, p.node_b, longname, TEST_WAIT_MS), TR_ETOOBIG);

    /* On the own node, names resolve at once. */
    tr_ref here;
    tr_spawn_opts ho = TR_SPAWN_OPTS_INIT;
    ho.name = "here";
    CHECK_OK(tr_spawn(&here, ca, &adder_b, NULL, &ho));
    CHECK_OK(tr_whereis_remote(&r, ca, p.node_a, "here", TEST_WAIT_MS));
    CHECK(tr_ref_eq(r, here));
    CHECK_OK(tr_send_named(ca, p.node_a, "here", m));
    tr_msg *pong = test_recv(ca, "pong");
    CHECK(tr_ref_eq(tr_msg_from(pong), here));
    tr_msg_free(pong);
    m = int_msg(ca, "ping", 0);
    CHECK_ERR(tr_send_named(ca, p.node_a, "nobody", m), TR_ENOTFOUND);
    tr_msg_free(m);
    adder_stop(ca, here);

    /* Once the actor exited, its name is gone there too. */
    adder_stop(ca, svc);
    CHECK_ERR(tr_whereis_remote(&r, ca, p.node_b, "svc", TEST_WAIT_MS), TR_ENOTFOUND);
    pair_finish(&p);
}

/* ---- bad input ----------------------------------------------------------- */

/* A hand-made "tr.spawn" request: [behaviour, args, kind, limit, overflow,
 * link, trap, name] with the given behaviour name, raw args bytes (NULL =
 * nil) and kind. */
static tr_msg *raw_spawn(tr_ctx *ctx, const char *beh, const char *args_tag, const void *args,
                         size_t args_len, uint64_t kind)
{
    tr_msg *m = NULL;
    CHECK_OK(tr_msg_new(&m, ctx, "tr.spawn"));
    CHECK_OK(tr_pack_array(m, 8));
    CHECK_OK(tr_pack_str(m, beh));
    if (args_tag == NULL) {
        CHECK_OK(tr_pack_nil(m));
    } else {
        CHECK_OK(tr_pack_array(m, 2));
        CHECK_OK(tr_pack_str(m, args_tag));
        CHECK_OK(tr_pack_bin(m, args, args_len));
    }
    CHECK_OK(tr_pack_uint(m, kind));
    CHECK_OK(tr_pack_uint(m, 0));
    CHECK_OK(tr_pack_uint(m, 0));
    CHECK_OK(tr_pack_bool(m, false));
    CHECK_OK(tr_pack_bool(m, false));
    CHECK_OK(tr_pack_nil(m));
    return m;
}

static tr_err ask_kernel(tr_ctx *ctx, tr_ref kernel, tr_msg *req)
{
    tr_msg *rep = NULL;
    tr_err err = tr_call(ctx, kernel, req, TEST_WAIT_MS, &rep);
    tr_msg_free(rep);
    return err;
}

static void test_bad_input(const char *url_a, const char *url_b)
{
    printf("bad input over %s\n", url_a);
    pair p;
    pair_start(&p, url_a, url_b);
    tr_ctx *ca = p.ca;
    tr_ref k, r;
    CHECK_OK(tr_node_kernel(&k, ca, p.node_b));
    CHECK(k.node == p.node_b);
    CHECK_ERR(tr_node_kernel(&k, ca, p.node_b ^ 0x5555), TR_ENOROUTE);
    tr_counters b0 = test_counters(p.rb);

    char longname[100];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    static const uint8_t garbage[] = {0xc1, 0x93, 0x01};
    static const uint8_t one_int[] = {0x05};

    /* Requests a hostile or broken peer could send, straight to B's kernel. */
    CHECK_ERR(ask_kernel(ca, k, int_msg(ca, "tr.spawn", 5)), TR_EBADMSG);
    tr_msg *m = NULL;
    CHECK_OK(tr_msg_new(&m, ca, "tr.spawn"));
    CHECK_ERR(ask_kernel(ca, k, m), TR_EBADMSG); /* empty */
    CHECK_ERR(ask_kernel(ca, k, raw_spawn(ca, longname, NULL, NULL, 0, TR_POOLED)), TR_ETOOBIG);
    CHECK_ERR(ask_kernel(ca, k, raw_spawn(ca, "", NULL, NULL, 0, TR_POOLED)), TR_EINVAL);
    CHECK_ERR(ask_kernel(ca, k, raw_spawn(ca, "adder", "base", garbage, sizeof garbage, TR_POOLED)),
              TR_EBADMSG);
    CHECK_ERR(ask_kernel(ca, k, raw_spawn(ca, "adder", longname, one_int, 1, TR_POOLED)),
              TR_ETOOBIG);
    CHECK_ERR(ask_kernel(ca, k, raw_spawn(ca, "adder", NULL, NULL, 0, 9)), TR_EINVAL);
    CHECK_ERR(ask_kernel(ca, k, raw_spawn(ca, "nosuch", NULL, NULL, 0, TR_POOLED)), TR_ENOTFOUND);
    CHECK_ERR(ask_kernel(ca, k, int_msg(ca, "tr.whereis", 5)), TR_EBADMSG);
    CHECK_OK(tr_msg_new(&m, ca, "tr.whereis"));
    CHECK_OK(tr_pack_str(m, longname));
    CHECK_ERR(ask_kernel(ca, k, m), TR_ETOOBIG);
    CHECK_ERR(ask_kernel(ca, k, int_msg(ca, "tr.bogus", 1)), TR_ENOTSUP);
    /* Plain messages with garbage are counted dead letters there. */
    CHECK_OK(tr_send_int(ca, k, "tr.send", 5));
    CHECK_OK(tr_send_int(ca, k, "whatever", 5));
    WAIT_UNTIL(test_counters(p.rb).dead_letters >= b0.dead_letters + 2);
    CHECK(test_counters(p.rb).spawned == b0.spawned);

    /* ... and the kernel still serves. */
    CHECK_ERR(ask_kernel(ca, k, raw_spawn(ca, "adder", "base", one_int, 1, TR_POOLED)), TR_OK);
    CHECK(test_counters(p.rb).spawned == b0.spawned + 1);
    tr_ref svc;
    CHECK_OK(tr_spawn_remote(&svc, ca, p.node_b, "adder", NULL, NULL, TEST_WAIT_MS));
    adder_stop(ca, svc);

    /* The caller's side refuses bad arguments before sending anything. */
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    CHECK_ERR(tr_spawn_remote(&r, ca, p.node_b, longname, NULL, NULL, TEST_WAIT_MS), TR_ETOOBIG);
    CHECK_ERR(tr_spawn_remote(&r, ca, p.node_b, "", NULL, NULL, TEST_WAIT_MS), TR_EINVAL);
    CHECK_ERR(tr_spawn_remote(&r, ca, p.node_b, NULL, NULL, NULL, TEST_WAIT_MS), TR_EINVAL);
    o.name = longname;
    CHECK_ERR(tr_spawn_remote(&r, ca, p.node_b, "adder", NULL, &o, TEST_WAIT_MS), TR_ETOOBIG);
    o.name = NULL;
    o.kind = (tr_actor_kind)5;
    CHECK_ERR(tr_spawn_remote(&r, ca, p.node_b, "adder", NULL, &o, TEST_WAIT_MS), TR_EINVAL);
    o.kind = TR_POOLED;
    o.overflow = (tr_overflow)9;
    CHECK_ERR(tr_spawn_remote(&r, ca, p.node_b, "adder", NULL, &o, TEST_WAIT_MS), TR_EINVAL);
    tr_msg *two = int_msg(ca, "base", 1);
    CHECK_OK(tr_pack_int(two, 2)); /* two objects: not one payload */
    CHECK_ERR(tr_spawn_remote(&r, ca, p.node_b, "adder", two, NULL, TEST_WAIT_MS), TR_EBADMSG);
    tr_msg_free(two);
    CHECK_ERR(tr_spawn_remote(NULL, ca, p.node_b, "adder", NULL, NULL, TEST_WAIT_MS), TR_EINVAL);
    CHECK_ERR(tr_spawn_remote_async(ca, p.node_b, "adder", NULL, NULL, TEST_WAIT_MS, NULL, NULL),
              TR_EINVAL);

    /* Registry misuse. */
    CHECK_ERR(tr_register_behaviour(p.rb, "adder", &crasher_b), TR_EEXIST);
    CHECK_ERR(tr_register_behaviour(p.rb, longname, &adder_b), TR_ETOOBIG);
    CHECK_ERR(tr_register_behaviour(p.rb, "x", NULL), TR_EINVAL);
    CHECK_ERR(tr_register_behaviour(p.rb, "", &adder_b), TR_EINVAL);
    CHECK_ERR(tr_unregister_behaviour(p.rb, "nosuch"), TR_ENOTFOUND);
    CHECK_OK(tr_unregister_behaviour(p.rb, "crasher"));
    CHECK_ERR(tr_spawn_remote(&r, ca, p.node_b, "crasher", NULL, NULL, TEST_WAIT_MS), TR_ENOTFOUND);
    CHECK_OK(tr_register_behaviour(p.rb, "crasher", &crasher_b)); /* the name is free again */

    /* Decoders refuse what they are not for. */
    tr_node_info ni;
    m = int_msg(ca, "x", 1);
    CHECK_ERR(tr_msg_node_info(m, &ni), TR_ETYPE);
    CHECK_ERR(tr_msg_ref(m, &r), TR_ETYPE);
    tr_msg_free(m);
    m = int_msg(ca, TR_TAG_NODEUP, 1);
    CHECK_ERR(tr_msg_node_info(m, &ni), TR_EBADMSG);
    tr_msg_free(m);
    pair_finish(&p);
}

/* ---- node monitors ------------------------------------------------------- */

/* Receives a node event with tag about node and checks it. */
static void expect_node(tr_ctx *ctx, const char *tag, uint64_t node, const char *name)
{
    tr_msg *m = test_recv(ctx, tag);
    tr_node_info ni;
    CHECK_OK(tr_msg_node_info(m, &ni));
    CHECK(ni.node == node);
    CHECK(ni.up == (strcmp(tag, TR_TAG_NODEUP) == 0));
    CHECK(name == NULL || strcmp(ni.name, name) == 0);
    tr_msg_free(m);
}

static void expect_seen(tr_ctx *ctx, bool up, uint64_t node)
{
    int64_t v[2];
    tr_msg *m = test_recv(ctx, "seen");
    test_read_ints(m, 2, v);
    tr_msg_free(m);
    CHECK(v[0] == up && (uint64_t)v[1] == node);
}

/* The entry for node in rt's node list; fails when absent. */
static tr_node_info node_entry(tr_runtime *rt, uint64_t node)
{
    tr_node_info list[8];
    size_t n = 0;
    CHECK_OK(tr_nodes(rt, list, 8, &n));
    CHECK(n <= 8);
    for (size_t i = 0; i < n; i++)
        if (list[i].node == node)
            return list[i];
    TEST_FAIL("node %" PRIu64 " is not listed", node);
}

static bool node_up(tr_runtime *rt, uint64_t node) { return node_entry(rt, node).up; }

static void test_node_monitors(const char *url_a, const char *url_b, const char *url_b2)
{
    printf("node monitors over %s\n", url_a);
    tr_runtime *ra = node_start("a", url_a);
    tr_runtime *rb = node_start("b", url_b);
    tr_ctx *ca, *cb;
    CHECK_OK(tr_attach(&ca, ra));
    CHECK_OK(tr_attach(&cb, rb));
    uint64_t node_a = tr_runtime_node(ra), node_b = tr_runtime_node(rb);
    size_t n = 1;
    CHECK_OK(tr_nodes(ra, NULL, 0, &n));
    CHECK(n == 0);

    CHECK_OK(tr_monitor_nodes(ca, true));
    CHECK_OK(tr_monitor_nodes(ca, true)); /* twice is once */
    CHECK_OK(tr_monitor_nodes(cb, true));
    tr_ref watcher;
    CHECK_OK(tr_spawn(&watcher, ca, &watcher_b, test_msg_ref(ca, "args", tr_self(ca)), NULL));
    tr_msg_free(test_recv(ca, "watching")); /* subscribed before anything happens */
    /* A node nobody knows is down at once. */
    CHECK_OK(tr_monitor_node(ca, 12345, true));
    expect_node(ca, TR_TAG_NODEDOWN, 12345, "");
    CHECK_OK(tr_monitor_node(ca, 12345, false));
    CHECK_ERR(tr_monitor_node(ca, 0, true), TR_EINVAL);

    /* Up on both sides when they link. */
    uint64_t got;
    CHECK_OK(tr_connect(ra, url_b, TEST_WAIT_MS, &got));
    CHECK(got == node_b);
    expect_node(ca, TR_TAG_NODEUP, node_b, "b");
    expect_node(cb, TR_TAG_NODEUP, node_a, "a");
    expect_seen(ca, true, node_b);
    test_recv_none(ca, TR_TAG_NODEUP, 0); /* subscribed twice, told once */
    tr_node_info ni = node_entry(ra, node_b);
    CHECK(ni.up && strcmp(ni.name, "b") == 0);
    CHECK_OK(tr_monitor_node(ca, node_b, true)); /* up: nothing at once */

    /* A child linked across: it goes with B. */
    tr_trap_exit(ca, true);
    tr_ref child;
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.link = true;
    CHECK_OK(tr_spawn_remote(&child, ca, node_b, "adder", NULL, &o, TEST_WAIT_MS));
    CHECK(call_int(ca, child, 2) == 2); /* its link to us is in place */

    /* B stops: A hears nothing more from it and declares it down; both
     * subscriptions are told, and the link fires: with the child's own
     * reason if its exit signal left B before B's links closed, else with
     * noconnection when B is declared down. */
    tr_detach(cb);
    CHECK_OK(tr_runtime_stop(rb, TR_STOP_DRAIN));
    expect_node(ca, TR_TAG_NODEDOWN, node_b, "b");
    expect_node(ca, TR_TAG_NODEDOWN, node_b, "b");
    expect_seen(ca, false, node_b);
    CHECK(!node_up(ra, node_b));
    tr_reason why = wait_exit(ca, child);
    CHECK(why.kind == TR_EXIT_SHUTDOWN || why.kind == TR_EXIT_NOCONNECTION);
    tr_trap_exit(ca, false);
    CHECK_ERR(tr_spawn_remote(&child, ca, node_b, "adder", NULL, NULL, TEST_WAIT_MS), TR_ENOROUTE);
    tr_runtime_free(rb);

    /* B restarts (a new node id, the same name) and links again: up. */
    tr_runtime *rb2 = node_start("b", url_b2);
    uint64_t node_b2 = tr_runtime_node(rb2);
    CHECK_OK(tr_connect(rb2, url_a, TEST_WAIT_MS, &got));
    CHECK(got == node_a);
    expect_node(ca, TR_TAG_NODEUP, node_b2, "b");
    expect_seen(ca, true, node_b2);
    CHECK(node_up(ra, node_b2) && !node_up(ra, node_b));
    CHECK_OK(tr_spawn_remote(&child, ca, node_b2, "adder", NULL, NULL, TEST_WAIT_MS));
    CHECK(call_int(ca, child, 4) == 4);
    adder_stop(ca, child);

    /* Unsubscribed: the next down reaches only the watcher. */
    CHECK_OK(tr_monitor_nodes(ca, false));
    CHECK_OK(tr_monitor_nodes(ca, false)); /* off twice is fine */
    tr_monitor_id mon;
    CHECK_OK(tr_monitor(ca, watcher, &mon));
    tr_runtime_free(rb2);
    expect_seen(ca, false, node_b2);
    /* The list changes under the same lock as the events are pushed, so
     * by now any event for ca would be queued. */
    CHECK(!node_up(ra, node_b2));
    test_recv_none(ca, TR_TAG_NODEDOWN, 0);
    CHECK_OK(tr_exit(ca, watcher, &(tr_reason){TR_EXIT_KILLED, 0, ""}));
    test_wait_down(ca, watcher);

    tr_detach(ca);
    tr_runtime_free(ra);
}

int main(void)
{
    char a[128], b[128], b2[128];
    int pid = (int)getpid();

    snprintf(a, sizeof a, "inproc://troupe-remote-%d-a", pid);
    snprintf(b, sizeof b, "inproc://troupe-remote-%d-b", pid);
    snprintf(b2, sizeof b2, "inproc://troupe-remote-%d-b2", pid);
    test_spawn(a, b);
    test_names(a, b);
    test_bad_input(a, b);
    test_node_monitors(a, b, b2);

    /* Below the kernel's ephemeral range (from 32768 here), so that the
     * links' own outgoing connections never hold a port we listen on. */
    int port = 20000 + (pid * 7) % 12000;
    snprintf(a, sizeof a, "tcp://127.0.0.1:%d", port);
    snprintf(b, sizeof b, "tcp://127.0.0.1:%d", port + 1);
    snprintf(b2, sizeof b2, "tcp://127.0.0.1:%d", port + 2);
    test_spawn(a, b);
    test_names(a, b);
    test_node_monitors(a, b, b2);
    printf("ok\n");
    return 0;
}
