/*
 * sup_api.c — the client side of supervisors: starting one, building the
 * control requests, the blocking helpers, and decoding replies and events.
 *
 * Everything here runs in the caller's context and talks to a supervisor
 * only through messages; it must not touch a supervisor's state.
 */
#include "sup_internal.h"

#include <stdlib.h>
#include <string.h>

/* Fields of one child in a listing reply (see sup.c, pack_listing). */
#define LISTING_FIELDS 10u
/* Fields of an event message (see sup.c, emit). */
#define EVENT_FIELDS 6u

/* ---- starting ------------------------------------------------------------ */

tr_err tr_sup_start(tr_ref *out, tr_ctx *ctx, const tr_sup_spec *spec, const tr_spawn_opts *opts)
{
    if (out == NULL || ctx == NULL || spec == NULL)
        return TR_EINVAL;
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    if (opts != NULL) {
        if (opts->kind != TR_POOLED)
            return TR_EINVAL;
        o = *opts;
    }
    o.trap_exit = true;
    o.trap_stop = true; /* a runtime stop goes through it, in its order */
    tr_msg *args;
    tr_err err = tr_msg_new(&args, ctx, SUP_TAG_ARGS);
    if (err != TR_OK)
        return err;
    if ((err = tr__sup_pack_spec(args, spec, 0)) == TR_OK)
        err = tr_spawn(out, ctx, &tr__sup_behaviour, args, &o);
    if (err != TR_OK)
        tr_msg_free(args);
    return err;
}

/* ---- request builders ---------------------------------------------------- */

/* A new request with tag, or NULL and *err set. */
static tr_msg *request_new(tr_ctx *ctx, const char *tag, tr_err *err)
{
    tr_msg *m = NULL;
    *err = tr_msg_new(&m, ctx, tag);
    return *err == TR_OK ? m : NULL;
}

/* Hands m to *out when err is TR_OK, else frees it. */
static tr_err request_done(tr_msg **out, tr_msg *m, tr_err err)
{
    if (err != TR_OK) {
        tr_msg_free(m);
        return err;
    }
    *out = m;
    return TR_OK;
}

static tr_err check_id_arg(const char *id)
{
    if (id == NULL)
        return TR_EINVAL;
    size_t n = strnlen(id, TR_SUP_ID_MAX + 1);
    if (n == 0)
        return TR_EINVAL;
    return n > TR_SUP_ID_MAX ? TR_ETOOBIG : TR_OK;
}

/* A request whose payload is one child id. */
static tr_err msg_with_id(tr_msg **out, tr_ctx *ctx, const char *tag, const char *id)
{
    tr_err err;
    if (out == NULL)
        return TR_EINVAL;
    if ((err = check_id_arg(id)) != TR_OK)
        return err;
    tr_msg *m = request_new(ctx, tag, &err);
    if (m == NULL)
        return err;
    return request_done(out, m, tr_pack_str(m, id));
}

tr_err tr_sup_msg_start_child(tr_msg **out, tr_ctx *ctx, const tr_sup_child_spec *spec)
{
    tr_err err;
    if (out == NULL || spec == NULL)
        return TR_EINVAL;
    tr_msg *m = request_new(ctx, SUP_TAG_START, &err);
    if (m == NULL)
        return err;
    return request_done(out, m, tr__sup_pack_child(m, spec, 0));
}

tr_err tr_sup_msg_start_dynamic(tr_msg **out, tr_ctx *ctx, const void *args, size_t args_len)
{
    tr_err err;
    if (out == NULL || (args == NULL && args_len != 0) || (args != NULL && args_len == 0))
        return TR_EINVAL;
    if (args_len > TR_PAYLOAD_MAX)
        return TR_ETOOBIG;
    if (args != NULL && tr_validate(args, args_len) != TR_OK)
        return TR_EBADMSG;
    tr_msg *m = request_new(ctx, SUP_TAG_START_DYN, &err);
    if (m == NULL)
        return err;
    return request_done(out, m, args != NULL ? tr_pack_bin(m, args, args_len) : tr_pack_nil(m));
}

tr_err tr_sup_msg_terminate_child(tr_msg **out, tr_ctx *ctx, const char *id)
{
    return msg_with_id(out, ctx, SUP_TAG_TERMINATE, id);
}

tr_err tr_sup_msg_terminate_dynamic(tr_msg **out, tr_ctx *ctx, tr_ref child)
{
    tr_err err;
    if (out == NULL || tr_ref_is_nil(child))
        return TR_EINVAL;
    tr_msg *m = request_new(ctx, SUP_TAG_TERMINATE_REF, &err);
    if (m == NULL)
        return err;
    return request_done(out, m, tr_pack_ref(m, child));
}

tr_err tr_sup_msg_restart_child(tr_msg **out, tr_ctx *ctx, const char *id)
{
    return msg_with_id(out, ctx, SUP_TAG_RESTART, id);
}

tr_err tr_sup_msg_delete_child(tr_msg **out, tr_ctx *ctx, const char *id)
{
    return msg_with_id(out, ctx, SUP_TAG_DELETE, id);
}

tr_err tr_sup_msg_which_children(tr_msg **out, tr_ctx *ctx)
{
    tr_err err;
    if (out == NULL)
        return TR_EINVAL;
    tr_msg *m = request_new(ctx, SUP_TAG_WHICH, &err);
    if (m == NULL)
        return err;
    *out = m;
    return TR_OK;
}

/* ---- reply decoders ------------------------------------------------------ */

tr_err tr_sup_reply_ref(tr_ref *out, const tr_msg *reply)
{
    if (out == NULL || reply == NULL)
        return TR_EINVAL;
    if (!tr_msg_is(reply, SUP_TAG_REF))
        return TR_ETYPE;
    tr_cursor c;
    tr_cursor_init(&c, reply);
    tr_err err = tr_cursor_ref(&c, out);
    if (err == TR_OK && !tr_cursor_done(&c))
        err = TR_EBADMSG;
    return err;
}

static tr_err read_enum(tr_cursor *c, uint64_t max, uint64_t *out)
{
    tr_err err = tr_cursor_uint(c, out);
    if (err == TR_OK && *out > max)
        err = TR_EBADMSG;
    return err;
}

static tr_err read_opt_ref(tr_cursor *c, tr_ref *out)
{
    *out = TR_REF_NIL;
    return tr_cursor_nil(c) == TR_OK ? TR_OK : tr_cursor_ref(c, out);
}

static tr_err read_child_info(tr_cursor *c, tr_sup_child_info *ci)
{
    uint32_t n;
    uint64_t v;
    tr_err err;
    memset(ci, 0, sizeof *ci);
#define R(expr)                      \
    do {                             \
        if ((err = (expr)) != TR_OK) \
            return err;              \
    } while (0)
    R(tr_cursor_array(c, &n));
    if (n != LISTING_FIELDS)
        return TR_EBADMSG;
    R(tr__sup_read_strbuf(c, ci->id, sizeof ci->id));
    R(read_opt_ref(c, &ci->ref));
    R(read_enum(c, TR_SUP_CHILD_STOPPED, &v));
    ci->state = (tr_sup_child_state)v;
    R(read_enum(c, TR_SUP_SUPERVISOR, &v));
    ci->type = (tr_sup_child_type)v;
    R(read_enum(c, TR_PROCESS, &v));
    ci->kind = (tr_actor_kind)v;
    R(read_enum(c, TR_SUP_TEMPORARY, &v));
    ci->restart = (tr_sup_restart)v;
    R(read_enum(c, UINT32_MAX, &v));
    ci->restarts = (uint32_t)v;
    R(read_enum(c, UINT32_MAX, &v));
    ci->delay_ms = (uint32_t)v;
    R(tr_cursor_bool(c, &ci->exited));
    if (tr_cursor_nil(c) != TR_OK)
        R(tr__sup_read_reason(c, &ci->last_exit));
#undef R
    return TR_OK;
}

tr_err tr_sup_reply_children(tr_sup_child_info **out, uint32_t *n, const tr_msg *reply)
{
    if (out == NULL || n == NULL || reply == NULL)
        return TR_EINVAL;
    if (!tr_msg_is(reply, SUP_TAG_CHILDREN))
        return TR_ETYPE;
    tr_err err = tr_msg_validate(reply);
    if (err != TR_OK)
        return err;
    tr_cursor c;
    uint32_t count;
    tr_cursor_init(&c, reply);
    if ((err = tr_cursor_array(&c, &count)) != TR_OK)
        return err;
    size_t len;
    tr_msg_payload(reply, &len);
    if (count > len) /* each entry takes several bytes */
        return TR_EBADMSG;
    tr_sup_child_info *list = NULL;
    if (count != 0 && (list = calloc(count, sizeof *list)) == NULL)
        return TR_ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        if ((err = read_child_info(&c, &list[i])) != TR_OK) {
            free(list);
            return err;
        }
    }
    *out = list;
    *n = count;
    return TR_OK;
}

void tr_sup_children_free(tr_sup_child_info *children) { free(children); }

tr_err tr_sup_event_info(tr_sup_event *out, const tr_msg *m)
{
    if (out == NULL || m == NULL)
        return TR_EINVAL;
    if (!tr_msg_is(m, TR_SUP_TAG_EVENT))
        return TR_ETYPE;
    if (tr_msg_validate(m) != TR_OK)
        return TR_EBADMSG;
    tr_cursor c;
    uint32_t n;
    uint64_t v;
    tr_err err;
    memset(out, 0, sizeof *out);
    out->sup = tr_msg_from(m);
    tr_cursor_init(&c, m);
#define R(expr)                                        \
    do {                                               \
        if ((err = (expr)) != TR_OK)                   \
            return err == TR_ETYPE ? TR_EBADMSG : err; \
    } while (0)
    R(tr_cursor_array(&c, &n));
    if (n != EVENT_FIELDS)
        return TR_EBADMSG;
    R(read_enum(&c, TR_SUP_EV_GAVE_UP, &v));
    out->kind = (tr_sup_event_kind)v;
    R(tr__sup_read_strbuf(&c, out->id, sizeof out->id));
    R(read_opt_ref(&c, &out->child));
    if (tr_cursor_nil(&c) != TR_OK)
        R(tr__sup_read_reason(&c, &out->reason));
    R(read_enum(&c, UINT32_MAX, &v));
    out->restarts = (uint32_t)v;
    R(read_enum(&c, UINT32_MAX, &v));
    out->delay_ms = (uint32_t)v;
#undef R
    return tr_cursor_done(&c) ? TR_OK : TR_EBADMSG;
}

/* ---- blocking helpers ---------------------------------------------------- */

/* tr_call with req, which it takes whatever it returns. */
static tr_err sup_call(tr_ctx *ctx, tr_ref sup, tr_msg *req, uint32_t timeout_ms, tr_msg **reply)
{
    *reply = NULL;
    return tr_call(ctx, sup, req, timeout_ms, reply);
}

/* Calls with req; on success reads a reference into *out (may be NULL). */
static tr_err call_for_ref(tr_ref *out, tr_ctx *ctx, tr_ref sup, tr_msg *req, uint32_t timeout_ms)
{
    tr_msg *rep = NULL;
    tr_err err = sup_call(ctx, sup, req, timeout_ms, &rep);
    if (err != TR_OK)
        return err;
    tr_ref r;
    err = tr_sup_reply_ref(&r, rep);
    tr_msg_free(rep);
    if (err == TR_OK && out != NULL)
        *out = r;
    return err;
}

static tr_err call_done(tr_ctx *ctx, tr_ref sup, tr_msg *req, uint32_t timeout_ms)
{
    tr_msg *rep = NULL;
    tr_err err = sup_call(ctx, sup, req, timeout_ms, &rep);
    tr_msg_free(rep);
    return err;
}

tr_err tr_sup_start_child(tr_ref *out, tr_ctx *ctx, tr_ref sup, const tr_sup_child_spec *spec,
                          uint32_t timeout_ms)
{
    tr_msg *req = NULL;
    tr_err err = tr_sup_msg_start_child(&req, ctx, spec);
    return err != TR_OK ? err : call_for_ref(out, ctx, sup, req, timeout_ms);
}

tr_err tr_sup_start_dynamic(tr_ref *out, tr_ctx *ctx, tr_ref sup, const void *args, size_t args_len,
                            uint32_t timeout_ms)
{
    tr_msg *req = NULL;
    tr_err err = tr_sup_msg_start_dynamic(&req, ctx, args, args_len);
    return err != TR_OK ? err : call_for_ref(out, ctx, sup, req, timeout_ms);
}

tr_err tr_sup_terminate_child(tr_ctx *ctx, tr_ref sup, const char *id, uint32_t timeout_ms)
{
    tr_msg *req = NULL;
    tr_err err = tr_sup_msg_terminate_child(&req, ctx, id);
    return err != TR_OK ? err : call_done(ctx, sup, req, timeout_ms);
}

tr_err tr_sup_terminate_dynamic(tr_ctx *ctx, tr_ref sup, tr_ref child, uint32_t timeout_ms)
{
    tr_msg *req = NULL;
    tr_err err = tr_sup_msg_terminate_dynamic(&req, ctx, child);
    return err != TR_OK ? err : call_done(ctx, sup, req, timeout_ms);
}

tr_err tr_sup_restart_child(tr_ref *out, tr_ctx *ctx, tr_ref sup, const char *id,
                            uint32_t timeout_ms)
{
    tr_msg *req = NULL;
    tr_err err = tr_sup_msg_restart_child(&req, ctx, id);
    return err != TR_OK ? err : call_for_ref(out, ctx, sup, req, timeout_ms);
}

tr_err tr_sup_delete_child(tr_ctx *ctx, tr_ref sup, const char *id, uint32_t timeout_ms)
{
    tr_msg *req = NULL;
    tr_err err = tr_sup_msg_delete_child(&req, ctx, id);
    return err != TR_OK ? err : call_done(ctx, sup, req, timeout_ms);
}

tr_err tr_sup_which_children(tr_sup_child_info **out, uint32_t *n, tr_ctx *ctx, tr_ref sup,
                             uint32_t timeout_ms)
{
    if (out == NULL || n == NULL)
        return TR_EINVAL;
    tr_msg *req = NULL, *rep = NULL;
    tr_err err = tr_sup_msg_which_children(&req, ctx);
    if (err != TR_OK)
        return err;
    if ((err = sup_call(ctx, sup, req, timeout_ms, &rep)) != TR_OK)
        return err;
    err = tr_sup_reply_children(out, n, rep);
    tr_msg_free(rep);
    return err;
}

/* ---- names ---------------------------------------------------------------- */

const char *tr_sup_strategy_name(tr_sup_strategy s)
{
    switch (s) {
    case TR_SUP_ONE_FOR_ONE:
        return "one_for_one";
    case TR_SUP_ONE_FOR_ALL:
        return "one_for_all";
    case TR_SUP_REST_FOR_ONE:
        return "rest_for_one";
    case TR_SUP_SIMPLE_ONE_FOR_ONE:
        return "simple_one_for_one";
    }
    return "unknown";
}

const char *tr_sup_child_state_name(tr_sup_child_state s)
{
    switch (s) {
    case TR_SUP_CHILD_RUNNING:
        return "running";
    case TR_SUP_CHILD_RESTARTING:
        return "restarting";
    case TR_SUP_CHILD_STOPPED:
        return "stopped";
    }
    return "unknown";
}

const char *tr_sup_event_name(tr_sup_event_kind k)
{
    switch (k) {
    case TR_SUP_EV_STARTED:
        return "started";
    case TR_SUP_EV_EXITED:
        return "exited";
    case TR_SUP_EV_DELAYED:
        return "delayed";
    case TR_SUP_EV_START_FAILED:
        return "start_failed";
    case TR_SUP_EV_STOPPED:
        return "stopped";
    case TR_SUP_EV_GAVE_UP:
        return "gave_up";
    }
    return "unknown";
}
