/*
 * remote.c — what a node asks of another beyond sending: spawning a
 * registered behaviour by name, looking a name up, sending to a name, and
 * hearing of nodes coming and going.
 *
 * Each runtime answers through its node kernel, a pooled system actor
 * started on first need at spawn depth 0 (so it counts in no user-visible
 * counter and stops after the actors it spawned). Other nodes address it as
 * {node, TR_KERNEL_ID, 0}: no actor has incarnation 0, and
 * tr__deliver_inbound hands what arrives there to the kernel's real slot.
 * It traps exits, so a linked actor's failure does not take it down; if it
 * is killed, the next message to it starts a new one.
 *
 * The kernel's protocol is plain request/reply. Payloads are msgpack:
 *
 *   "tr.spawn" request: [behaviour: str, args: nil | [tag: str, payload: bin],
 *                        kind: uint, mailbox_limit: uint, overflow: uint,
 *                        link: bool, trap_exit: bool, name: nil | str]
 *       reply "tr.spawned": the new reference [node, id, incarnation]
 *       or an error status (TR_ENOTFOUND: no such behaviour; TR_EBADMSG,
 *       TR_EINVAL, TR_ETOOBIG: a malformed request; what tr_spawn returned)
 *   "tr.whereis" request: name: str
 *       reply "tr.whereis": the reference, or status TR_ENOTFOUND
 *   "tr.send" message (not a request): [name: str, tag: str, payload: bin]
 *       passed on to the actor registered as name, with the original sender
 *   any other request: status TR_ENOTSUP; any other message: a dead letter.
 *
 * With link set, the new actor runs a copy of the behaviour whose init
 * first links to the requester (tr_link: the link is added on this side
 * and a LINK goes to the requester) and then runs the real init. Its later
 * exit signal to the requester follows that LINK (FIFO per pair), so even
 * a child that fails in init signals the requester with the real reason.
 *
 * Node events come from the link layer (tr__node_event) on its receive and
 * ticker threads, which may hold the link layer's locks: this file only
 * records them and pushes messages to local subscribers there, and never
 * calls into the link layer while it holds one of its own locks.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_SPAWN "tr.spawn"
#define TAG_SPAWNED "tr.spawned"
#define TAG_WHEREIS "tr.whereis"
#define TAG_SEND "tr.send"
#define SPAWN_FIELDS 8

/* Marks, in corr, an args message the kernel made only to carry the
 * requester's reference to a linked child: its init gets NULL args. */
#define ARGS_CARRIER 1u

/* A registered behaviour. Entries are never freed before the runtime:
 * actors spawned with link run `linked`, which points back here. */
struct beh_entry {
    tr_behaviour linked; /* beh with init wrapped to link first; must stay first */
    const tr_behaviour *beh;
    char name[TR_NAME_MAX + 1];
    bool registered; /* reg_mu */
    struct beh_entry *next;
};

struct node_sub {
    tr_ref who;
    uint64_t node; /* 0 = every node */
};

struct remote {
    pthread_mutex_t reg_mu;
    struct beh_entry *behs; /* reg_mu */

    pthread_mutex_t kernel_mu;
    tr_ref kernel; /* kernel_mu: the current kernel, TR_REF_NIL before the first */

    pthread_mutex_t mon_mu; /* everything below */
    struct node_sub *subs;
    uint32_t nsubs, capsubs;
    tr_node_info *nodes;
    uint32_t nnodes, capnodes;
};

static struct remote *remote_get(tr_runtime *rt)
{
    /* acquire: pairs with the release of the compare-and-swap below, so a
     * structure found here is seen initialised. */
    struct remote *R = atomic_load_explicit(&rt->remote, memory_order_acquire);
    if (R != NULL)
        return R;
    R = calloc(1, sizeof *R);
    if (R == NULL)
        return NULL;
    pthread_mutex_init(&R->reg_mu, NULL);
    pthread_mutex_init(&R->kernel_mu, NULL);
    pthread_mutex_init(&R->mon_mu, NULL);
    struct remote *seen = NULL;
    if (!atomic_compare_exchange_strong_explicit(&rt->remote, &seen, R, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        /* Another thread installed one first: use that. */
        pthread_mutex_destroy(&R->reg_mu);
        pthread_mutex_destroy(&R->kernel_mu);
        pthread_mutex_destroy(&R->mon_mu);
        free(R);
        return seen;
    }
    return R;
}

void tr__remote_free(tr_runtime *rt)
{
    struct remote *R = atomic_load_explicit(&rt->remote, memory_order_acquire);
    if (R == NULL)
        return;
    while (R->behs != NULL) {
        struct beh_entry *e = R->behs;
        R->behs = e->next;
        free(e);
    }
    free(R->subs);
    free(R->nodes);
    pthread_mutex_destroy(&R->reg_mu);
    pthread_mutex_destroy(&R->kernel_mu);
    pthread_mutex_destroy(&R->mon_mu);
    free(R);
    atomic_store_explicit(&rt->remote, NULL, memory_order_relaxed);
}

static tr_err name_check(const char *name)
{
    if (name == NULL)
        return TR_EINVAL;
    size_t n = strnlen(name, TR_NAME_MAX + 1);
    if (n == 0)
        return TR_EINVAL;
    return n > TR_NAME_MAX ? TR_ETOOBIG : TR_OK;
}

/* Copies a length-delimited name from a payload into buf, checking it. */
static tr_err name_copy(char buf[TR_NAME_MAX + 1], const char *s, size_t len)
{
    if (len == 0)
        return TR_EINVAL;
    if (len > TR_NAME_MAX)
        return TR_ETOOBIG;
    if (memchr(s, '\0', len) != NULL)
        return TR_EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return TR_OK;
}

/* ---- behaviour registry -------------------------------------------------- */

/* reg_mu held. */
static struct beh_entry *beh_find(struct remote *R, const char *name)
{
    for (struct beh_entry *e = R->behs; e != NULL; e = e->next)
        if (e->registered && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

/* init of a linked child: links to the requester, whose reference the
 * kernel put in the args message's sender, then runs the real init. */
static int linked_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    const struct beh_entry *e = (const struct beh_entry *)ctx->actor->beh;
    if (args == NULL)
        return TR_EINVAL; /* the kernel always passes the carrier */
    tr_err err = tr_link(ctx, args->from);
    if (err == TR_ENOROUTE) {
        /* The requester's node went down meanwhile: as if the link fired. */
        tr_reason why = tr_reason_make(TR_EXIT_NOCONNECTION, 0, "spawner's node link lost");
        tr_stop_self(ctx, &why);
        return 0;
    }
    if (err != TR_OK)
        return (int)err;
    if (e->beh->init == NULL)
        return 0;
    return e->beh->init(ctx, state, args->corr == ARGS_CARRIER ? NULL : args);
}

tr_err tr_register_behaviour(tr_runtime *rt, const char *name, const tr_behaviour *b)
{
    if (rt == NULL || b == NULL || (b->handle == NULL && b->run == NULL))
        return TR_EINVAL;
    tr_err err = name_check(name);
    if (err != TR_OK)
        return err;
    struct remote *R = remote_get(rt);
    struct beh_entry *e = calloc(1, sizeof *e);
    if (R == NULL || e == NULL) {
        free(e);
        return TR_ENOMEM;
    }
    e->linked = *b;
    e->linked.init = linked_init;
    e->beh = b;
    memcpy(e->name, name, strlen(name) + 1);
    e->registered = true;
    pthread_mutex_lock(&R->reg_mu);
    if (beh_find(R, name) != NULL) {
        pthread_mutex_unlock(&R->reg_mu);
        free(e);
        return TR_EEXIST;
    }
    e->next = R->behs;
    R->behs = e;
    pthread_mutex_unlock(&R->reg_mu);
    return TR_OK;
}

tr_err tr_unregister_behaviour(tr_runtime *rt, const char *name)
{
    if (rt == NULL)
        return TR_EINVAL;
    tr_err err = name_check(name);
    if (err != TR_OK)
        return err;
    struct remote *R = atomic_load_explicit(&rt->remote, memory_order_acquire);
    if (R == NULL)
        return TR_ENOTFOUND;
    pthread_mutex_lock(&R->reg_mu);
    struct beh_entry *e = beh_find(R, name);
    if (e != NULL)
        e->registered = false; /* kept: linked children may still run it */
    pthread_mutex_unlock(&R->reg_mu);
    return e != NULL ? TR_OK : TR_ENOTFOUND;
}

/* The behaviour registered as name, in its linking form if link. */
static const tr_behaviour *beh_lookup(tr_runtime *rt, const char *name, bool link)
{
    struct remote *R = atomic_load_explicit(&rt->remote, memory_order_acquire);
    if (R == NULL)
        return NULL;
    pthread_mutex_lock(&R->reg_mu);
    struct beh_entry *e = beh_find(R, name);
    const tr_behaviour *b = e == NULL ? NULL : link ? &e->linked : e->beh;
    pthread_mutex_unlock(&R->reg_mu);
    return b;
}

/* ---- the kernel: serving ------------------------------------------------- */

/* What a "tr.spawn" request asks for, pointing into the request. */
struct spawn_req {
    char behaviour[TR_NAME_MAX + 1];
    bool has_args;
    char args_tag[TR_TAG_MAX + 1];
    const uint8_t *args;
    size_t args_len;
    tr_spawn_opts opts;
    char name[TR_NAME_MAX + 1];
};

/* Reads a "tr.spawn" payload, checking every field; peers may be hostile. */
static tr_err spawn_req_read(struct spawn_req *r, const tr_msg *m)
{
    tr_cursor c;
    uint32_t n;
    const char *s;
    size_t len;
    uint64_t kind, limit, overflow;
    bool link, trap;
    tr_err err;
    if (tr_msg_validate(m) != TR_OK)
        return TR_EBADMSG;
    tr_cursor_init(&c, m);
    if (tr_cursor_array(&c, &n) != TR_OK || n != SPAWN_FIELDS ||
        tr_cursor_str(&c, &s, &len) != TR_OK)
        return TR_EBADMSG;
    if ((err = name_copy(r->behaviour, s, len)) != TR_OK)
        return err;
    r->has_args = tr_cursor_nil(&c) != TR_OK;
    if (r->has_args) {
        if (tr_cursor_array(&c, &n) != TR_OK || n != 2 || tr_cursor_str(&c, &s, &len) != TR_OK)
            return TR_EBADMSG;
        if (len == 0 || memchr(s, '\0', len) != NULL)
            return TR_EINVAL;
        if (len > TR_TAG_MAX)
            return TR_ETOOBIG;
        memcpy(r->args_tag, s, len);
        r->args_tag[len] = '\0';
        if (tr_cursor_bin(&c, &r->args, &r->args_len) != TR_OK)
            return TR_EBADMSG;
    }
    if (tr_cursor_uint(&c, &kind) != TR_OK || tr_cursor_uint(&c, &limit) != TR_OK ||
        tr_cursor_uint(&c, &overflow) != TR_OK || tr_cursor_bool(&c, &link) != TR_OK ||
        tr_cursor_bool(&c, &trap) != TR_OK)
        return TR_EBADMSG;
    if (kind > TR_THREAD || limit > UINT32_MAX || overflow > TR_OVERFLOW_DROP_OLDEST)
        return TR_EINVAL;
    r->opts = (tr_spawn_opts)TR_SPAWN_OPTS_INIT;
    r->opts.kind = (tr_actor_kind)kind;
    r->opts.mailbox_limit = (uint32_t)limit;
    r->opts.overflow = (tr_overflow)overflow;
    r->opts.link = link; /* done by the linking behaviour, not by tr_spawn */
    r->opts.trap_exit = trap;
    if (tr_cursor_nil(&c) != TR_OK) {
        if (tr_cursor_str(&c, &s, &len) != TR_OK)
            return TR_EBADMSG;
        if ((err = name_copy(r->name, s, len)) != TR_OK)
            return err;
        r->opts.name = r->name;
    }
    return tr_cursor_done(&c) ? TR_OK : TR_EBADMSG;
}

static tr_err kernel_spawn(tr_ctx *ctx, const tr_msg *req, tr_ref *out)
{
    struct spawn_req r;
    tr_err err = spawn_req_read(&r, req);
    if (err != TR_OK)
        return err;
    if (r.opts.link && tr_ref_is_nil(req->from))
        return TR_EINVAL; /* nobody to link to */
    const tr_behaviour *b = beh_lookup(ctx->rt, r.behaviour, r.opts.link);
    if (b == NULL)
        return TR_ENOTFOUND;
    tr_msg *args = NULL;
    if (r.has_args || r.opts.link) {
        if ((err = tr_msg_new(&args, ctx, r.has_args ? r.args_tag : "tr.args")) != TR_OK)
            return err;
        if (r.has_args && r.args_len != 0)
            err = tr_msg_set_payload(args, r.args, r.args_len); /* validates */
        args->from = req->from;
        args->corr = r.has_args ? 0 : ARGS_CARRIER;
    }
    tr_spawn_opts o = r.opts;
    o.link = false;
    if (err == TR_OK)
        err = tr_spawn(out, ctx, b, args, &o);
    if (err != TR_OK)
        tr__msg_release(ctx, args);
    return err;
}

static tr_err kernel_whereis(tr_ctx *ctx, const tr_msg *req, tr_ref *out)
{
    tr_cursor c;
    const char *s;
    size_t len;
    char name[TR_NAME_MAX + 1];
    if (tr_msg_validate(req) != TR_OK)
        return TR_EBADMSG;
    tr_cursor_init(&c, req);
    if (tr_cursor_str(&c, &s, &len) != TR_OK || !tr_cursor_done(&c))
        return TR_EBADMSG;
    tr_err err = name_copy(name, s, len);
    return err != TR_OK ? err : tr_whereis(out, ctx->rt, name);
}

/* "tr.send": passes the message on to the named actor as if it had come
 * straight from its sender over the link. */
static void kernel_forward(tr_ctx *ctx, const tr_msg *m)
{
    tr_cursor c;
    uint32_t n;
    const char *s, *tag;
    size_t len, tag_len, plen;
    const uint8_t *payload;
    char name[TR_NAME_MAX + 1], tagbuf[TR_TAG_MAX + 1];
    tr_ref to;
    tr_msg *fwd = NULL;
    tr_cursor_init(&c, m);
    if (tr_msg_validate(m) != TR_OK || tr_cursor_array(&c, &n) != TR_OK || n != 3 ||
        tr_cursor_str(&c, &s, &len) != TR_OK || tr_cursor_str(&c, &tag, &tag_len) != TR_OK ||
        tr_cursor_bin(&c, &payload, &plen) != TR_OK || name_copy(name, s, len) != TR_OK ||
        tag_len == 0 || tag_len > TR_TAG_MAX || memchr(tag, '\0', tag_len) != NULL ||
        tr_whereis(&to, ctx->rt, name) != TR_OK) {
        ctr_add(&ctx->ctr.dead_letters, 1); /* malformed, or nobody by that name */
        return;
    }
    memcpy(tagbuf, tag, tag_len);
    tagbuf[tag_len] = '\0';
    if (tr_msg_new(&fwd, ctx, tagbuf) != TR_OK ||
        (plen != 0 && tr__msg_reserve(fwd, plen) != TR_OK)) {
        tr__msg_release(ctx, fwd);
        ctr_add(&ctx->ctr.dead_letters, 1);
        return;
    }
    /* Copied as it came, unchecked, like any payload a peer sends. */
    if (plen != 0)
        memcpy(fwd->data, payload, plen);
    fwd->len = (uint32_t)plen;
    fwd->kind = MK_USER;
    fwd->from = m->from;
    ctr_add(&ctx->ctr.sent, 1);
    tr__deliver_inbound(ctx, to, fwd);
}

static int kernel_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    (void)state;
    if (!tr_msg_is_request(m)) {
        if (tr_msg_is(m, TAG_SEND))
            kernel_forward(ctx, m);
        else if (!tr_msg_is(m, TR_TAG_EXIT)) /* trapped exits concern nobody */
            ctr_add(&ctx->ctr.dead_letters, 1);
        return 0;
    }
    if (tr_msg_expired(m))
        return 0; /* nobody waits: spawning now would leave an orphan */
    tr_ref ref = TR_REF_NIL;
    tr_err err;
    const char *tag = TAG_SPAWNED;
    if (tr_msg_is(m, TAG_SPAWN)) {
        err = kernel_spawn(ctx, m, &ref);
    } else if (tr_msg_is(m, TAG_WHEREIS)) {
        err = kernel_whereis(ctx, m, &ref);
        tag = TAG_WHEREIS;
    } else {
        err = TR_ENOTSUP;
    }
    tr_msg *r = NULL;
    if (err == TR_OK && (err = tr_msg_new(&r, ctx, tag)) == TR_OK &&
        (err = tr_pack_ref(r, ref)) == TR_OK) {
        tr_reply(ctx, m, r); /* errors (a late reply, a gone requester) are counted there */
        return 0;
    }
    tr__msg_release(ctx, r);
    tr_reply_error(ctx, m, err);
    return 0;
}

static const tr_behaviour kernel_beh = {"tr.kernel", 0, NULL, kernel_handle, NULL, NULL};

/* ---- the kernel: starting and addressing --------------------------------- */

static bool kernel_alive(tr_runtime *rt, tr_ref k)
{
    if (tr_ref_is_nil(k))
        return false;
    tr_actor *a = tr__actor_lookup(rt, k.id);
    return a != NULL &&
           atomic_load_explicit(&a->incarnation, memory_order_acquire) == k.incarnation;
}

/* Starts a kernel: a pooled actor at depth 0 that traps exits, set up the
 * way tr_spawn sets up a pooled actor, but neither counted as spawned nor
 * live. kernel_mu held. */
static tr_err kernel_start(tr_ctx *ctx, tr_ref *out)
{
    tr_runtime *rt = ctx->rt;
    tr_msg *init = tr__msg_alloc(ctx);
    if (init == NULL)
        return TR_ENOMEM;
    tr_actor *a;
    tr_err err = tr__slot_alloc(rt, ctx, &a, 0);
    if (err != TR_OK) {
        tr__msg_release(ctx, init);
        return err;
    }
    tr_ref ref = tr__actor_ref(rt, a);
    atomic_store_explicit(&a->limit, 0, memory_order_relaxed);
    atomic_store_explicit(&a->overflow, TR_OVERFLOW_REJECT, memory_order_relaxed);
    /* release: pairs with tr__schedule's acquire load of kind. */
    atomic_store_explicit(&a->kind, TR_POOLED, memory_order_release);
    struct init_info info = {&kernel_beh, NULL, 1, 0};
    init->kind = MK_INIT;
    init->flags = MF_SYSTEM;
    init->from = TR_REF_NIL;
    init->target_inc = ref.incarnation;
    memcpy(init->data, &info, sizeof info);
    init->len = sizeof info;
    tr__deliver(ctx, a, init);
    tr__spawn_done(rt);
    *out = ref;
    return TR_OK;
}

/* The real reference of this node's kernel, started if need be. */
static tr_err kernel_local(tr_ctx *ctx, tr_ref *out)
{
    struct remote *R = remote_get(ctx->rt);
    if (R == NULL)
        return TR_ENOMEM;
    tr_err err = TR_OK;
    pthread_mutex_lock(&R->kernel_mu);
    if (!kernel_alive(ctx->rt, R->kernel))
        err = kernel_start(ctx, &R->kernel);
    if (err == TR_OK)
        *out = R->kernel;
    pthread_mutex_unlock(&R->kernel_mu);
    return err;
}

tr_ref tr__kernel_resolve(tr_ctx *ctx, tr_ref to)
{
    tr_ref k;
    return kernel_local(ctx, &k) == TR_OK ? k : to;
}

/* The kernel to ask on node: our own, or the well-known address. */
static tr_err kernel_of(tr_ref *out, tr_ctx *ctx, uint64_t node)
{
    if (node == 0)
        return TR_EINVAL;
    if (node == ctx->rt->node)
        return kernel_local(ctx, out);
    *out = (tr_ref){node, TR_KERNEL_ID, 0};
    return TR_OK;
}

tr_err tr_node_kernel(tr_ref *out, tr_ctx *ctx, uint64_t node)
{
    if (out == NULL || ctx == NULL || node == 0)
        return TR_EINVAL;
    if (atomic_load_explicit(&ctx->rt->stopping, memory_order_acquire))
        return TR_ESTOPPED;
    if (node != ctx->rt->node && !tr__link_known(ctx->rt, node))
        return TR_ENOROUTE;
    return kernel_of(out, ctx, node);
}

/* ---- asking another node ------------------------------------------------- */

/* Checks that ctx may make a blocking call (as tr_call would), before
 * anything is built or sent. */
static tr_err blocking_check(tr_ctx *ctx)
{
    if (ctx->type == CTX_WORKER)
        return TR_EWOULDBLOCK;
    if (ctx->type == CTX_TIMER || ctx->thr == NULL)
        return TR_EWRONGKIND;
    return ctx->thr->busy ? TR_EBUSY : TR_OK;
}

/* Builds a "tr.spawn" request. */
static tr_err spawn_req_build(tr_msg **out, tr_ctx *ctx, const char *behaviour, const tr_msg *args,
                              const tr_spawn_opts *opts)
{
    static const tr_spawn_opts defaults = TR_SPAWN_OPTS_INIT;
    const tr_spawn_opts *o = opts != NULL ? opts : &defaults;
    tr_err err = name_check(behaviour);
    if (err != TR_OK)
        return err;
    if (o->name != NULL && (err = name_check(o->name)) != TR_OK)
        return err;
    if ((o->kind != TR_POOLED && o->kind != TR_THREAD) ||
        (unsigned)o->overflow > TR_OVERFLOW_DROP_OLDEST || (o->link && ctx->actor == NULL))
        return TR_EINVAL;
    if (args != NULL && (args->flags & MF_NOMEM))
        return TR_ENOMEM;
    if (args != NULL && tr_msg_validate(args) != TR_OK)
        return TR_EBADMSG;
    tr_msg *m;
    if ((err = tr_msg_new(&m, ctx, TAG_SPAWN)) != TR_OK)
        return err;
    if ((err = tr_pack_array(m, SPAWN_FIELDS)) == TR_OK)
        err = tr_pack_str(m, behaviour);
    if (err == TR_OK && args == NULL) {
        err = tr_pack_nil(m);
    } else if (err == TR_OK) {
        size_t len;
        const uint8_t *p = tr_msg_payload(args, &len);
        if ((err = tr_pack_array(m, 2)) == TR_OK &&
            (err = tr_pack_str(m, tr_msg_tag(args))) == TR_OK)
            err = tr_pack_bin(m, p, len);
    }
    if (err == TR_OK && (err = tr_pack_uint(m, o->kind)) == TR_OK &&
        (err = tr_pack_uint(m, o->mailbox_limit)) == TR_OK &&
        (err = tr_pack_uint(m, (uint64_t)o->overflow)) == TR_OK &&
        (err = tr_pack_bool(m, o->link)) == TR_OK && (err = tr_pack_bool(m, o->trap_exit)) == TR_OK)
        err = o->name != NULL ? tr_pack_str(m, o->name) : tr_pack_nil(m);
    if (err == TR_OK && (m->flags & MF_NOMEM))
        err = TR_ENOMEM;
    if (err != TR_OK) {
        tr__msg_release(ctx, m);
        return err;
    }
    *out = m;
    return TR_OK;
}

/* Builds a "tr.whereis" request. */
static tr_err whereis_req_build(tr_msg **out, tr_ctx *ctx, const char *name)
{
    tr_err err = name_check(name);
    tr_msg *m;
    if (err != TR_OK || (err = tr_msg_new(&m, ctx, TAG_WHEREIS)) != TR_OK)
        return err;
    if ((err = tr_pack_str(m, name)) != TR_OK) {
        tr__msg_release(ctx, m);
        return err;
    }
    *out = m;
    return TR_OK;
}

/* Sends req (consumed in every case) to node's kernel and waits for the
 * reference it answers with. */
static tr_err ask_blocking(tr_ref *out, tr_ctx *ctx, uint64_t node, tr_msg *req,
                           uint32_t timeout_ms)
{
    tr_ref k;
    tr_err err = kernel_of(&k, ctx, node);
    if (err != TR_OK) {
        tr__msg_release(ctx, req);
        return err;
    }
    tr_msg *rep = NULL;
    err = tr_call(ctx, k, req, timeout_ms, &rep); /* takes req */
    if (err != TR_OK)
        return err;
    err = tr_msg_ref(rep, out) == TR_OK ? TR_OK : TR_EBADMSG;
    tr__msg_release(ctx, rep);
    return err;
}

/* Sends req to node's kernel as an asynchronous request; consumes req on
 * TR_OK only. */
static tr_err ask_async(tr_ctx *ctx, uint64_t node, tr_msg *req, uint32_t timeout_ms,
                        tr_reply_fn on_reply, void *udata)
{
    tr_ref k;
    tr_err err = kernel_of(&k, ctx, node);
    return err != TR_OK ? err : tr_request(ctx, k, req, timeout_ms, on_reply, udata);
}

tr_err tr_spawn_remote(tr_ref *out, tr_ctx *ctx, uint64_t node, const char *behaviour, tr_msg *args,
                       const tr_spawn_opts *opts, uint32_t timeout_ms)
{
    if (out == NULL || ctx == NULL || node == 0)
        return TR_EINVAL;
    tr_err err = blocking_check(ctx);
    tr_msg *req;
    if (err != TR_OK || (err = spawn_req_build(&req, ctx, behaviour, args, opts)) != TR_OK)
        return err;
    err = ask_blocking(out, ctx, node, req, timeout_ms);
    if (err == TR_OK)
        tr__msg_release(ctx, args);
    return err;
}

tr_err tr_spawn_remote_async(tr_ctx *ctx, uint64_t node, const char *behaviour, tr_msg *args,
                             const tr_spawn_opts *opts, uint32_t timeout_ms, tr_reply_fn on_reply,
                             void *udata)
{
    if (ctx == NULL || on_reply == NULL || node == 0)
        return TR_EINVAL;
    tr_msg *req;
    tr_err err = spawn_req_build(&req, ctx, behaviour, args, opts);
    if (err != TR_OK)
        return err;
    err = ask_async(ctx, node, req, timeout_ms, on_reply, udata);
    if (err != TR_OK)
        tr__msg_release(ctx, req);
    else
        tr__msg_release(ctx, args);
    return err;
}

tr_err tr_msg_ref(const tr_msg *m, tr_ref *out)
{
    tr_cursor c;
    tr_ref r;
    if (m == NULL || out == NULL)
        return TR_EINVAL;
    tr_cursor_init(&c, m);
    tr_err err = tr_cursor_ref(&c, &r);
    if (err != TR_OK)
        return err;
    if (!tr_cursor_done(&c))
        return TR_EBADMSG;
    *out = r;
    return TR_OK;
}

tr_err tr_whereis_remote(tr_ref *out, tr_ctx *ctx, uint64_t node, const char *name,
                         uint32_t timeout_ms)
{
    if (out == NULL || ctx == NULL || node == 0)
        return TR_EINVAL;
    tr_err err = blocking_check(ctx);
    tr_msg *req;
    if (err != TR_OK || (err = whereis_req_build(&req, ctx, name)) != TR_OK)
        return err;
    return ask_blocking(out, ctx, node, req, timeout_ms);
}

tr_err tr_whereis_remote_async(tr_ctx *ctx, uint64_t node, const char *name, uint32_t timeout_ms,
                               tr_reply_fn on_reply, void *udata)
{
    if (ctx == NULL || on_reply == NULL || node == 0)
        return TR_EINVAL;
    tr_msg *req;
    tr_err err = whereis_req_build(&req, ctx, name);
    if (err != TR_OK)
        return err;
    err = ask_async(ctx, node, req, timeout_ms, on_reply, udata);
    if (err != TR_OK)
        tr__msg_release(ctx, req);
    return err;
}

tr_err tr_send_named(tr_ctx *ctx, uint64_t node, const char *name, tr_msg *m)
{
    if (ctx == NULL || m == NULL || node == 0)
        return TR_EINVAL;
    tr_err err = name_check(name);
    if (err != TR_OK)
        return err;
    if (m->flags & MF_NOMEM)
        return TR_ENOMEM;
    if (node == ctx->rt->node) {
        tr_ref to;
        err = tr_whereis(&to, ctx->rt, name);
        return err != TR_OK ? err : tr_send(ctx, to, m);
    }
    size_t len;
    const uint8_t *p = tr_msg_payload(m, &len);
    tr_msg *w;
    if ((err = tr_msg_new(&w, ctx, TAG_SEND)) != TR_OK)
        return err;
    if ((err = tr_pack_array(w, 3)) == TR_OK && (err = tr_pack_str(w, name)) == TR_OK &&
        (err = tr_pack_str(w, tr_msg_tag(m))) == TR_OK)
        err = tr_pack_bin(w, p, len);
    if (err == TR_OK)
        err = tr_send(ctx, (tr_ref){node, TR_KERNEL_ID, 0}, w);
    if (err != TR_OK) {
        tr__msg_release(ctx, w);
        return err;
    }
    tr__msg_release(ctx, m);
    return TR_OK;
}

/* ---- node monitors ------------------------------------------------------- */

/* mon_mu held: the entry for node, or NULL. */
static tr_node_info *node_find(struct remote *R, uint64_t node)
{
    for (uint32_t i = 0; i < R->nnodes; i++)
        if (R->nodes[i].node == node)
            return &R->nodes[i];
    return NULL;
}

/* A TR_TAG_NODEUP / TR_TAG_NODEDOWN message, or NULL without memory. */
static tr_msg *node_msg(tr_ctx *ctx, uint64_t node, const char *name, bool up)
{
    tr_msg *m = tr__msg_alloc(ctx);
    if (m == NULL)
        return NULL;
    m->kind = MK_USER;
    m->from = TR_REF_NIL;
    if (tr__msg_set_tag(m, up ? TR_TAG_NODEUP : TR_TAG_NODEDOWN) != TR_OK ||
        tr_pack_array(m, 3) != TR_OK || tr_pack_uint(m, node) != TR_OK ||
        tr_pack_str(m, name) != TR_OK || tr_pack_bool(m, up) != TR_OK) {
        tr__msg_release(ctx, m);
        return NULL;
    }
    return m;
}

/* Tells sub about node. False when the subscriber is gone. mon_mu held. */
static bool node_tell(tr_ctx *ctx, const struct node_sub *sub, uint64_t node, const char *name,
                      bool up)
{
    tr_msg *m = node_msg(ctx, node, name, up);
    if (m == NULL) {
        ctr_add(&ctx->ctr.dead_letters, 1); /* the event is lost for this subscriber */
        return true;
    }
    return tr__send_system(ctx, sub->who, m) != TR_ENOACTOR;
}

void tr__node_event(tr_ctx *ctx, uint64_t node, const char *name, bool up)
{
    if (tr__procs_node_hidden(ctx->rt, node, name, up))
        return; /* a warm process child, no actor's node yet */
    if (name == NULL)
        name = "";
    struct remote *R = remote_get(ctx->rt);
    if (R == NULL) {
        ctr_add(&ctx->ctr.dead_letters, 1); /* nowhere to record or tell it */
        return;
    }
    pthread_mutex_lock(&R->mon_mu);
    tr_node_info *ni = node_find(R, node);
    if (ni == NULL && R->nnodes == R->capnodes) {
        uint32_t ncap = R->capnodes != 0 ? R->capnodes * 2 : 8;
        tr_node_info *p = realloc(R->nodes, ncap * sizeof *p);
        if (p != NULL) {
            R->nodes = p;
            R->capnodes = ncap;
        }
    }
    if (ni == NULL && R->nnodes < R->capnodes) {
        ni = &R->nodes[R->nnodes++];
        ni->node = node;
    }
    /* Without memory for the entry, tr_nodes misses this node until its next
     * event; its subscribers are still told. */
    if (ni != NULL) {
        snprintf(ni->name, sizeof ni->name, "%s", name);
        ni->up = up;
    }
    /* Sending under mon_mu keeps each subscriber's events in order. */
    for (uint32_t i = 0; i < R->nsubs;) {
        struct node_sub *s = &R->subs[i];
        if ((s->node == 0 || s->node == node) && !node_tell(ctx, s, node, name, up))
            *s = R->subs[--R->nsubs]; /* the subscriber exited */
        else
            i++;
    }
    pthread_mutex_unlock(&R->mon_mu);
}

void tr__node_forget(tr_runtime *rt, uint64_t node)
{
    struct remote *R = atomic_load_explicit(&rt->remote, memory_order_acquire);
    if (R == NULL)
        return;
    pthread_mutex_lock(&R->mon_mu);
    tr_node_info *ni = node_find(R, node);
    if (ni != NULL)
        *ni = R->nodes[--R->nnodes];
    /* Its subscribers heard it go down; it will not come back. */
    for (uint32_t i = 0; i < R->nsubs;) {
        if (R->subs[i].node == node)
            R->subs[i] = R->subs[--R->nsubs];
        else
            i++;
    }
    pthread_mutex_unlock(&R->mon_mu);
}

static bool local_alive(tr_runtime *rt, tr_ref r)
{
    tr_actor *a = tr__actor_lookup(rt, r.id);
    return a != NULL &&
           atomic_load_explicit(&a->incarnation, memory_order_acquire) == r.incarnation;
}

static tr_err node_subscribe(tr_ctx *ctx, uint64_t node, bool on)
{
    if (ctx == NULL || ctx->actor == NULL || ctx->type == CTX_TIMER)
        return TR_EINVAL;
    struct remote *R = remote_get(ctx->rt);
    if (R == NULL)
        return TR_ENOMEM;
    tr_ref self = tr_self(ctx);
    tr_err err = TR_OK;
    pthread_mutex_lock(&R->mon_mu);
    int at = -1;
    for (uint32_t i = 0; i < R->nsubs;) {
        if (!local_alive(ctx->rt, R->subs[i].who)) {
            R->subs[i] = R->subs[--R->nsubs]; /* exited since it subscribed */
            continue;
        }
        if (tr_ref_eq(R->subs[i].who, self) && R->subs[i].node == node)
            at = (int)i;
        i++;
    }
    if (!on) {
        if (at >= 0)
            R->subs[at] = R->subs[--R->nsubs];
    } else if (at < 0) {
        if (R->nsubs == R->capsubs) {
            uint32_t ncap = R->capsubs != 0 ? R->capsubs * 2 : 8;
            struct node_sub *p = realloc(R->subs, ncap * sizeof *p);
            if (p != NULL) {
                R->subs = p;
                R->capsubs = ncap;
            }
        }
        if (R->nsubs == R->capsubs) {
            err = TR_ENOMEM;
        } else {
            struct node_sub *s = &R->subs[R->nsubs++];
            s->who = self;
            s->node = node;
            tr_node_info *ni = node != 0 ? node_find(R, node) : NULL;
            if (node != 0 && (ni == NULL || !ni->up))
                node_tell(ctx, s, node, ni != NULL ? ni->name : "", false);
        }
    }
    pthread_mutex_unlock(&R->mon_mu);
    return err;
}

tr_err tr_monitor_nodes(tr_ctx *ctx, bool on) { return node_subscribe(ctx, 0, on); }

tr_err tr_monitor_node(tr_ctx *ctx, uint64_t node, bool on)
{
    return node == 0 ? TR_EINVAL : node_subscribe(ctx, node, on);
}

tr_err tr_msg_node_info(const tr_msg *m, tr_node_info *out)
{
    tr_cursor c;
    uint32_t n;
    uint64_t node;
    const char *s;
    size_t len;
    bool up;
    if (m == NULL || out == NULL)
        return TR_EINVAL;
    if (!tr_msg_is(m, TR_TAG_NODEUP) && !tr_msg_is(m, TR_TAG_NODEDOWN))
        return TR_ETYPE;
    tr_cursor_init(&c, m);
    if (tr_cursor_array(&c, &n) != TR_OK || n != 3 || tr_cursor_uint(&c, &node) != TR_OK ||
        tr_cursor_str(&c, &s, &len) != TR_OK || len > TR_NODE_NAME_MAX ||
        tr_cursor_bool(&c, &up) != TR_OK || !tr_cursor_done(&c) ||
        up != tr_msg_is(m, TR_TAG_NODEUP))
        return TR_EBADMSG;
    out->node = node;
    memcpy(out->name, s, len);
    out->name[len] = '\0';
    out->up = up;
    return TR_OK;
}

tr_err tr_nodes(tr_runtime *rt, tr_node_info *out, size_t cap, size_t *n)
{
    if (rt == NULL || n == NULL || (out == NULL && cap != 0))
        return TR_EINVAL;
    struct remote *R = atomic_load_explicit(&rt->remote, memory_order_acquire);
    if (R == NULL) {
        *n = 0;
        return TR_OK;
    }
    pthread_mutex_lock(&R->mon_mu);
    for (uint32_t i = 0; i < R->nnodes && i < cap; i++)
        out[i] = R->nodes[i];
    *n = R->nnodes;
    pthread_mutex_unlock(&R->mon_mu);
    return TR_OK;
}
