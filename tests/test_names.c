/*
 * test_names — the name registry: register, whereis, unregister; a taken
 * name; a name released when its actor exits; names given at spawn; names
 * that are too long or invalid; registries of two runtimes are separate.
 */
#include "check.h"

#include <pthread.h>

static tr_ref g_main;

/* "stop" exits normally; "whereis" <name> replies the lookup from inside an
 * actor: [err, node, id, incarnation]. */
static int named_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    if (tr_msg_is(m, "stop")) {
        tr_reason why = tr_reason_make(TR_EXIT_NORMAL, 0, NULL);
        tr_stop_self(ctx, &why);
    } else if (tr_msg_is(m, "whereis")) {
        tr_cursor c;
        const char *s;
        size_t len;
        char name[TR_NAME_MAX + 1];
        tr_ref r = TR_REF_NIL;
        tr_cursor_init(&c, m);
        CHECK_OK(tr_cursor_str(&c, &s, &len));
        CHECK(len <= TR_NAME_MAX);
        memcpy(name, s, len);
        name[len] = '\0';
        int64_t out[4];
        out[0] = tr_whereis(&r, tr_ctx_runtime(ctx), name);
        out[1] = (int64_t)r.node;
        out[2] = r.id;
        out[3] = r.incarnation;
        test_send_ints(ctx, g_main, "found", 4, out);
    }
    return 0;
}

static const tr_behaviour named_b = {"named", 0, NULL, named_handle, NULL, NULL};

static tr_ref spawn_named(tr_ctx *ctx, const char *name)
{
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.name = name;
    tr_ref r;
    CHECK_OK(tr_spawn(&r, ctx, &named_b, NULL, &o));
    return r;
}

static void check_whereis(tr_runtime *rt, const char *name, tr_ref want)
{
    tr_ref r = TR_REF_NIL;
    CHECK_OK(tr_whereis(&r, rt, name));
    CHECK(tr_ref_eq(r, want));
}

static void check_unknown(tr_runtime *rt, const char *name)
{
    tr_ref r;
    CHECK_ERR(tr_whereis(&r, rt, name), TR_ENOTFOUND);
}

/* Stops a and waits until it is gone. */
static void stop_and_wait(tr_ctx *ctx, tr_ref a)
{
    tr_monitor_id mon;
    CHECK_OK(tr_monitor(ctx, a, &mon));
    CHECK_OK(tr_send_tag(ctx, a, "stop"));
    tr_reason why = test_wait_down(ctx, a);
    CHECK(why.kind == TR_EXIT_NORMAL);
}

/* Attaches, registers "visitor" for itself, detaches. */
static void *visitor_main(void *rt)
{
    tr_ctx *ctx;
    CHECK_OK(tr_attach(&ctx, rt));
    CHECK_OK(tr_register(ctx, "visitor", tr_self(ctx)));
    check_whereis(rt, "visitor", tr_self(ctx));
    tr_detach(ctx);
    return NULL;
}

int main(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    g_main = tr_self(ctx);
    tr_ref a, b;
    CHECK_OK(tr_spawn(&a, ctx, &named_b, NULL, NULL));
    CHECK_OK(tr_spawn(&b, ctx, &named_b, NULL, NULL));

    /* register / whereis / unregister */
    check_unknown(rt, "alpha");
    CHECK_OK(tr_register(ctx, "alpha", a));
    check_whereis(rt, "alpha", a);
    CHECK_ERR(tr_register(ctx, "alpha", b), TR_EEXIST);
    check_whereis(rt, "alpha", a); /* unchanged by the failed attempt */
    CHECK_OK(tr_unregister(ctx, "alpha"));
    check_unknown(rt, "alpha");
    CHECK_ERR(tr_unregister(ctx, "alpha"), TR_ENOTFOUND);
    CHECK_OK(tr_register(ctx, "alpha", b)); /* free again */
    check_whereis(rt, "alpha", b);
    CHECK_OK(tr_register(ctx, "main", tr_self(ctx))); /* an attached thread too */
    check_whereis(rt, "main", tr_self(ctx));

    /* whereis from inside an actor (any thread). */
    CHECK_OK(tr_send_str(ctx, a, "whereis", "alpha"));
    tr_msg *m = test_recv(ctx, "found");
    int64_t f[4];
    test_read_ints(m, 4, f);
    tr_msg_free(m);
    CHECK_ERR((tr_err)f[0], TR_OK);
    CHECK((uint64_t)f[1] == b.node && (uint32_t)f[2] == b.id && (uint32_t)f[3] == b.incarnation);

    /* A name is released when its actor exits. */
    stop_and_wait(ctx, b);
    check_unknown(rt, "alpha");
    CHECK_OK(tr_register(ctx, "alpha", a));
    check_whereis(rt, "alpha", a);
    CHECK_ERR(tr_register(ctx, "beta", b), TR_ENOACTOR); /* b is gone */
    check_unknown(rt, "beta");

    /* Names given at spawn, before the actor runs. */
    tr_counters c0 = test_counters(rt);
    tr_ref g = spawn_named(ctx, "gamma");
    check_whereis(rt, "gamma", g);
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.name = "gamma";
    tr_msg *args = NULL;
    tr_ref r2 = TR_REF_NIL;
    CHECK_OK(tr_msg_new(&args, ctx, "args"));
    CHECK_OK(tr_pack_int(args, 1));
    CHECK_ERR(tr_spawn(&r2, ctx, &named_b, args, &o), TR_EEXIST);
    tr_msg_free(args); /* not consumed on error */
    check_whereis(rt, "gamma", g);
    tr_counters c1 = test_counters(rt);
    CHECK(c1.spawned == c0.spawned + 1); /* nothing was spawned the second time */
    CHECK(c1.live_actors == c0.live_actors + 1);
    stop_and_wait(ctx, g);
    check_unknown(rt, "gamma");
    tr_ref g2 = spawn_named(ctx, "gamma"); /* the name can be reused */
    check_whereis(rt, "gamma", g2);
    CHECK(!tr_ref_eq(g, g2));

    /* Long and invalid names. */
    char longest[TR_NAME_MAX + 1], too_long[TR_NAME_MAX + 2];
    memset(longest, 'n', TR_NAME_MAX);
    longest[TR_NAME_MAX] = '\0';
    memset(too_long, 'n', TR_NAME_MAX + 1);
    too_long[TR_NAME_MAX + 1] = '\0';
    CHECK_OK(tr_register(ctx, longest, a));
    check_whereis(rt, longest, a);
    CHECK_OK(tr_unregister(ctx, longest));
    CHECK_ERR(tr_register(ctx, too_long, a), TR_ETOOBIG);
    CHECK_ERR(tr_register(ctx, "", a), TR_EINVAL);
    CHECK_ERR(tr_register(ctx, NULL, a), TR_EINVAL);
    CHECK(tr_register(ctx, "nil", TR_REF_NIL) != TR_OK);
    check_unknown(rt, "nil");
    c0 = test_counters(rt);
    o.name = too_long;
    tr_err e = tr_spawn(&r2, ctx, &named_b, NULL, &o);
    CHECK(e == TR_ETOOBIG || e == TR_EINVAL);
    o.name = "";
    CHECK_ERR(tr_spawn(&r2, ctx, &named_b, NULL, &o), TR_EINVAL);
    CHECK(test_counters(rt).spawned == c0.spawned);

    /* A name of an attached thread is released when it detaches. */
    pthread_t th;
    CHECK(pthread_create(&th, NULL, visitor_main, rt) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    check_unknown(rt, "visitor");

    /* Each runtime has its own registry. */
    tr_runtime *rt2 = NULL;
    tr_ctx *ctx2 = NULL;
    CHECK_OK(tr_runtime_start(&rt2, NULL));
    CHECK_OK(tr_attach(&ctx2, rt2));
    check_unknown(rt2, "alpha");
    tr_ref other;
    CHECK_OK(tr_spawn(&other, ctx2, &named_b, NULL, NULL));
    CHECK_OK(tr_register(ctx2, "alpha", other));
    check_whereis(rt2, "alpha", other);
    check_whereis(rt, "alpha", a);
    test_finish(rt2, ctx2);

    test_finish(rt, ctx);
    printf("ok\n");
    return 0;
}
