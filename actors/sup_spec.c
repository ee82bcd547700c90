/*
 * sup_spec.c — child specs and supervisor specs as msgpack: checking,
 * encoding and decoding.
 *
 * A child spec is an array of 20 values in a fixed order (see
 * pack_child_fields); a supervisor spec is [magic, strategy, intensity,
 * period_ms, events, [child...]]. Pointers (behaviour, start function and
 * its argument) travel as unsigned integers: the bytes are meant for a
 * supervisor in this process only. A nested supervisor's spec is stored
 * inside its child spec and kept as raw bytes by the parent, which hands
 * them to the nested supervisor as its spawn arguments.
 *
 * This file owns the rules for what a valid spec is; it must not touch a
 * supervisor's state or send anything.
 */
#include "sup_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHILD_FIELDS 21u
#define SPEC_FIELDS 6u

/* ---- checking ------------------------------------------------------------ */

static tr_err check_id(const char *id)
{
    if (id == NULL)
        return TR_EINVAL;
    size_t n = strnlen(id, TR_SUP_ID_MAX + 1);
    if (n == 0)
        return TR_EINVAL;
    return n > TR_SUP_ID_MAX ? TR_ETOOBIG : TR_OK;
}

/* What tr_spawn would refuse, found before anything is sent. */
static tr_err check_spawn(const tr_sup_child_spec *c)
{
    const tr_spawn_opts *o = &c->spawn;
    if ((unsigned)o->kind > TR_PROCESS || (unsigned)o->overflow > TR_OVERFLOW_DROP_OLDEST)
        return TR_EINVAL;
    if (o->name != NULL) {
        size_t n = strnlen(o->name, TR_NAME_MAX + 1);
        if (n == 0)
            return TR_EINVAL;
        if (n > TR_NAME_MAX)
            return TR_ETOOBIG;
    }
    if (c->sup != NULL && o->kind != TR_POOLED)
        return TR_EINVAL; /* a supervisor is a pooled actor */
    const tr_behaviour *b = c->behaviour;
    if (b != NULL) {
        if (o->kind == TR_POOLED && b->handle == NULL)
            return TR_EINVAL;
        if (o->kind != TR_POOLED && b->handle == NULL && b->run == NULL)
            return TR_EINVAL;
    }
    return TR_OK;
}

static tr_err check_backoff(const tr_sup_backoff *bo)
{
    if (bo->min_ms == 0)
        return TR_OK;
    if (bo->max_ms < bo->min_ms)
        return TR_EINVAL;
    if (!(bo->factor >= 1.0) || !isfinite(bo->factor))
        return TR_EINVAL; /* also refuses NaN */
    if (!(bo->jitter >= 0.0 && bo->jitter <= 1.0))
        return TR_EINVAL;
    return TR_OK;
}

/* Every rule for one child spec but its nested supervisor's contents. */
static tr_err check_child(const tr_sup_child_spec *c)
{
    tr_err err;
    if (c == NULL)
        return TR_EINVAL;
    if ((err = check_id(c->id)) != TR_OK)
        return err;
    int ways = (c->behaviour != NULL) + (c->start != NULL) + (c->sup != NULL);
    if (ways != 1)
        return TR_EINVAL;
    if (c->args_len != 0) {
        if (c->args == NULL || c->behaviour == NULL)
            return TR_EINVAL;
        if (c->args_len > TR_PAYLOAD_MAX)
            return TR_ETOOBIG;
        if (tr_validate(c->args, c->args_len) != TR_OK)
            return TR_EBADMSG;
    }
    if ((unsigned)c->restart > TR_SUP_TEMPORARY || (unsigned)c->type > TR_SUP_SUPERVISOR)
        return TR_EINVAL;
    if ((err = check_spawn(c)) != TR_OK)
        return err;
    return check_backoff(&c->backoff);
}

/* ---- encoding ------------------------------------------------------------- */

static tr_err pack_ptr(tr_msg *m, uintptr_t p) { return tr_pack_uint(m, (uint64_t)p); }

static tr_err pack_opt_str(tr_msg *m, const char *s)
{
    return s != NULL ? tr_pack_str(m, s) : tr_pack_nil(m);
}

/* The order: id, behaviour, args, kind, mailbox_limit, overflow, trap_exit,
 * name, spawn shutdown_ms, start, start_arg, restart, shutdown_ms, type,
 * backoff min, max, factor, jitter, reset, kill_on_overrun, nested spec. */
static tr_err pack_child_fields(tr_msg *m, const tr_sup_child_spec *c, unsigned depth)
{
    tr_err err = TR_OK;
#define P(expr)                      \
    do {                             \
        if ((err = (expr)) != TR_OK) \
            return err;              \
    } while (0)
    P(tr_pack_array(m, CHILD_FIELDS));
    P(tr_pack_str(m, c->id));
    P(pack_ptr(m, (uintptr_t)c->behaviour));
    P(c->args_len != 0 ? tr_pack_bin(m, c->args, c->args_len) : tr_pack_nil(m));
    P(tr_pack_uint(m, (uint64_t)c->spawn.kind));
    P(tr_pack_uint(m, c->spawn.mailbox_limit));
    P(tr_pack_uint(m, (uint64_t)c->spawn.overflow));
    P(tr_pack_bool(m, c->spawn.trap_exit));
    P(pack_opt_str(m, c->spawn.name));
    P(tr_pack_uint(m, c->spawn.shutdown_ms));
    P(pack_ptr(m, (uintptr_t)c->start));
    P(pack_ptr(m, (uintptr_t)c->start_arg));
    P(tr_pack_uint(m, (uint64_t)c->restart));
    P(tr_pack_uint(m, c->shutdown_ms));
    P(tr_pack_uint(m, (uint64_t)c->type));
    P(tr_pack_uint(m, c->backoff.min_ms));
    P(tr_pack_uint(m, c->backoff.max_ms));
    P(tr_pack_double(m, c->backoff.factor));
    P(tr_pack_double(m, c->backoff.jitter));
    P(tr_pack_uint(m, c->backoff.reset_ms));
    P(tr_pack_bool(m, c->kill_on_overrun));
    P(c->sup != NULL ? tr__sup_pack_spec(m, c->sup, depth + 1) : tr_pack_nil(m));
#undef P
    return err;
}

tr_err tr__sup_pack_child(tr_msg *m, const tr_sup_child_spec *spec, unsigned depth)
{
    tr_err err = check_child(spec);
    if (err != TR_OK)
        return err;
    return pack_child_fields(m, spec, depth);
}

tr_err tr__sup_pack_spec(tr_msg *m, const tr_sup_spec *spec, unsigned depth)
{
    if (spec == NULL)
        return TR_EINVAL;
    if (depth > TR_SUP_DEPTH_MAX)
        return TR_ETOOBIG;
    if ((unsigned)spec->strategy > TR_SUP_SIMPLE_ONE_FOR_ONE || spec->period_ms == 0 ||
        (spec->nchildren != 0 && spec->children == NULL))
        return TR_EINVAL;
    bool simple = spec->strategy == TR_SUP_SIMPLE_ONE_FOR_ONE;
    if (simple && (spec->nchildren != 1 || spec->children[0].spawn.name != NULL))
        return TR_EINVAL;
    for (uint32_t i = 0; i < spec->nchildren; i++) {
        tr_err err = check_child(&spec->children[i]);
        if (err != TR_OK)
            return err;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(spec->children[i].id, spec->children[j].id) == 0)
                return TR_EEXIST;
    }
    tr_err err;
    if ((err = tr_pack_array(m, SPEC_FIELDS)) != TR_OK ||
        (err = tr_pack_str(m, SUP_SPEC_MAGIC)) != TR_OK ||
        (err = tr_pack_uint(m, (uint64_t)spec->strategy)) != TR_OK ||
        (err = tr_pack_uint(m, spec->intensity)) != TR_OK ||
        (err = tr_pack_uint(m, spec->period_ms)) != TR_OK)
        return err;
    err = tr_ref_is_nil(spec->events) ? tr_pack_nil(m) : tr_pack_ref(m, spec->events);
    if (err == TR_OK)
        err = tr_pack_array(m, spec->nchildren);
    for (uint32_t i = 0; err == TR_OK && i < spec->nchildren; i++)
        err = pack_child_fields(m, &spec->children[i], depth);
    return err;
}

tr_err tr__sup_pack_reason(tr_msg *m, const tr_reason *why)
{
    tr_err err;
    if ((err = tr_pack_array(m, 3)) != TR_OK ||
        (err = tr_pack_uint(m, (uint64_t)why->kind)) != TR_OK ||
        (err = tr_pack_int(m, why->code)) != TR_OK)
        return err;
    return tr_pack_strn(m, why->text, strnlen(why->text, TR_REASON_TEXT_MAX));
}

/* ---- decoding ------------------------------------------------------------- */

tr_err tr__sup_read_strbuf(tr_cursor *c, char *buf, size_t cap)
{
    const char *s;
    size_t len;
    tr_err err = tr_cursor_str(c, &s, &len);
    if (err != TR_OK)
        return err;
    if (len >= cap)
        return TR_ETOOBIG;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return memchr(buf, '\0', len) != NULL ? TR_EINVAL : TR_OK;
}

tr_err tr__sup_read_reason(tr_cursor *c, tr_reason *out)
{
    uint32_t n;
    uint64_t kind;
    int64_t code;
    const char *s;
    size_t len;
    tr_err err;
    if ((err = tr_cursor_array(c, &n)) != TR_OK)
        return err;
    if (n != 3)
        return TR_EBADMSG;
    if ((err = tr_cursor_uint(c, &kind)) != TR_OK || (err = tr_cursor_int(c, &code)) != TR_OK ||
        (err = tr_cursor_str(c, &s, &len)) != TR_OK)
        return err;
    if (kind > TR_EXIT_CODE || code < INT32_MIN || code > INT32_MAX)
        return TR_EBADMSG;
    char text[TR_REASON_TEXT_MAX + 1];
    size_t keep = len < TR_REASON_TEXT_MAX ? len : TR_REASON_TEXT_MAX;
    memcpy(text, s, keep);
    text[keep] = '\0';
    *out = tr_reason_make((tr_exit_kind)kind, (int32_t)code, text);
    return TR_OK;
}

static tr_err read_u32(tr_cursor *c, uint32_t *out)
{
    uint64_t v;
    tr_err err = tr_cursor_uint(c, &v);
    if (err != TR_OK)
        return err;
    if (v > UINT32_MAX)
        return TR_ERANGE;
    *out = (uint32_t)v;
    return TR_OK;
}

static tr_err read_ptr(tr_cursor *c, uintptr_t *out)
{
    uint64_t v;
    tr_err err = tr_cursor_uint(c, &v);
    if (err != TR_OK)
        return err;
    if (v > UINTPTR_MAX)
        return TR_ERANGE;
    *out = (uintptr_t)v;
    return TR_OK;
}

void tr__sup_childspec_fini(sup_childspec *cs)
{
    if (cs == NULL)
        return;
    free(cs->args);
    cs->args = NULL;
    cs->args_len = 0;
}

/* Fills the resolved fields from a checked public-form spec. */
static void resolve(sup_childspec *out, const tr_sup_child_spec *c, bool is_sup)
{
    out->behaviour = c->behaviour;
    out->start = c->start;
    out->start_arg = c->start_arg;
    out->is_sup = is_sup;
    out->restart = c->restart;
    out->type = is_sup ? TR_SUP_SUPERVISOR : c->type;
    out->backoff = c->backoff;
    out->kill_on_overrun = c->kill_on_overrun && !is_sup;
    out->shutdown_ms = c->shutdown_ms;
    if (out->shutdown_ms == 0)
        out->shutdown_ms =
            out->type == TR_SUP_SUPERVISOR ? TR_SUP_SHUTDOWN_INFINITY : TR_SUP_SHUTDOWN_DEFAULT_MS;
    out->spawn = c->spawn;
    out->spawn.link = false;
    out->spawn.name = NULL;
    if (c->spawn.name != NULL) {
        memcpy(out->name_buf, c->spawn.name, strlen(c->spawn.name) + 1);
        out->spawn.name = out->name_buf;
    }
    if (is_sup) {
        out->spawn.kind = TR_POOLED;
        out->spawn.trap_exit = true;
    }
    /* A process child's own stop (a runtime stop) waits as long as the spec
     * says before its process is killed. */
    if (out->spawn.kind == TR_PROCESS && out->spawn.shutdown_ms == 0)
        out->spawn.shutdown_ms = out->shutdown_ms == TR_SUP_SHUTDOWN_BRUTAL ? 1u : out->shutdown_ms;
}

tr_err tr__sup_unpack_child(tr_cursor *c, sup_childspec *out)
{
    memset(out, 0, sizeof *out);
    tr_sup_child_spec cs = TR_SUP_CHILD_SPEC_INIT;
    static const tr_sup_spec nested_marker = TR_SUP_SPEC_INIT;
    uint32_t n, u;
    uintptr_t p;
    uint64_t v;
    const uint8_t *args = NULL;
    size_t args_len = 0;
    char name[TR_NAME_MAX + 1];
    const uint8_t *sup_at = NULL, *sup_end = NULL;
    tr_err err;

#define R(expr)                      \
    do {                             \
        if ((err = (expr)) != TR_OK) \
            return err;              \
    } while (0)
    R(tr_cursor_array(c, &n));
    if (n != CHILD_FIELDS)
        return TR_EBADMSG;
    R(tr__sup_read_strbuf(c, out->id, sizeof out->id));
    cs.id = out->id;
    R(read_ptr(c, &p));
    cs.behaviour = (const tr_behaviour *)p;
    if (tr_cursor_nil(c) != TR_OK)
        R(tr_cursor_bin(c, &args, &args_len));
    cs.args = args;
    cs.args_len = args_len;
    R(tr_cursor_uint(c, &v));
    cs.spawn.kind = v <= TR_PROCESS ? (tr_actor_kind)v : (tr_actor_kind)99;
    R(read_u32(c, &cs.spawn.mailbox_limit));
    R(tr_cursor_uint(c, &v));
    cs.spawn.overflow = v <= TR_OVERFLOW_DROP_OLDEST ? (tr_overflow)v : (tr_overflow)99;
    R(tr_cursor_bool(c, &cs.spawn.trap_exit));
    if (tr_cursor_nil(c) != TR_OK) {
        R(tr__sup_read_strbuf(c, name, sizeof name));
        cs.spawn.name = name;
    }
    R(read_u32(c, &cs.spawn.shutdown_ms));
    R(read_ptr(c, &p));
    cs.start = (tr_sup_start_fn)p;
    R(read_ptr(c, &p));
    cs.start_arg = (const void *)p;
    R(tr_cursor_uint(c, &v));
    cs.restart = v <= TR_SUP_TEMPORARY ? (tr_sup_restart)v : (tr_sup_restart)99;
    R(read_u32(c, &cs.shutdown_ms));
    R(tr_cursor_uint(c, &v));
    cs.type = v <= TR_SUP_SUPERVISOR ? (tr_sup_child_type)v : (tr_sup_child_type)99;
    R(read_u32(c, &u));
    cs.backoff.min_ms = u;
    R(read_u32(c, &u));
    cs.backoff.max_ms = u;
    R(tr_cursor_double(c, &cs.backoff.factor));
    R(tr_cursor_double(c, &cs.backoff.jitter));
    R(read_u32(c, &cs.backoff.reset_ms));
    R(tr_cursor_bool(c, &cs.kill_on_overrun));
    if (tr_cursor_nil(c) != TR_OK) {
        uint32_t fields;
        tr_cursor peek = *c;
        R(tr_cursor_array(&peek, &fields));
        if (fields != SPEC_FIELDS)
            return TR_EBADMSG;
        sup_at = c->pos;
        R(tr_cursor_skip(c));
        sup_end = c->pos;
        cs.sup = &nested_marker;
    }
#undef R
    if ((err = check_child(&cs)) != TR_OK)
        return err;
    resolve(out, &cs, sup_at != NULL);
    const uint8_t *keep = sup_at != NULL ? sup_at : args;
    size_t keep_len = sup_at != NULL ? (size_t)(sup_end - sup_at) : args_len;
    if (keep_len != 0) {
        out->args = malloc(keep_len);
        if (out->args == NULL)
            return TR_ENOMEM;
        memcpy(out->args, keep, keep_len);
        out->args_len = keep_len;
    }
    return TR_OK;
}

tr_err tr__sup_childspec_copy(sup_childspec *dst, const sup_childspec *src)
{
    *dst = *src;
    if (src->spawn.name != NULL)
        dst->spawn.name = dst->name_buf;
    dst->args = NULL;
    if (src->args_len != 0) {
        dst->args = malloc(src->args_len);
        if (dst->args == NULL)
            return TR_ENOMEM;
        memcpy(dst->args, src->args, src->args_len);
    }
    return TR_OK;
}

void tr__sup_config_fini(sup_config *cfg)
{
    for (uint32_t i = 0; cfg->children != NULL && i < cfg->nchildren; i++)
        tr__sup_childspec_fini(&cfg->children[i]);
    free(cfg->children);
    cfg->children = NULL;
    cfg->nchildren = 0;
}

tr_err tr__sup_unpack_config(const void *bytes, size_t len, sup_config *out)
{
    memset(out, 0, sizeof *out);
    if (bytes == NULL || len == 0 || tr_validate(bytes, len) != TR_OK)
        return TR_EBADMSG;
    tr_cursor c;
    uint32_t n, nkids;
    uint64_t v;
    char magic[sizeof SUP_SPEC_MAGIC];
    tr_err err;
    tr_cursor_init_bytes(&c, bytes, len);
    if ((err = tr_cursor_array(&c, &n)) != TR_OK)
        return err;
    if (n != SPEC_FIELDS || tr__sup_read_strbuf(&c, magic, sizeof magic) != TR_OK ||
        strcmp(magic, SUP_SPEC_MAGIC) != 0)
        return TR_EBADMSG;
    if ((err = tr_cursor_uint(&c, &v)) != TR_OK)
        return err;
    if (v > TR_SUP_SIMPLE_ONE_FOR_ONE)
        return TR_EINVAL;
    out->strategy = (tr_sup_strategy)v;
    if ((err = read_u32(&c, &out->intensity)) != TR_OK ||
        (err = read_u32(&c, &out->period_ms)) != TR_OK)
        return err;
    if (out->period_ms == 0)
        return TR_EINVAL;
    out->events = TR_REF_NIL;
    if (tr_cursor_nil(&c) != TR_OK && (err = tr_cursor_ref(&c, &out->events)) != TR_OK)
        return err;
    if ((err = tr_cursor_array(&c, &nkids)) != TR_OK)
        return err;
    bool simple = out->strategy == TR_SUP_SIMPLE_ONE_FOR_ONE;
    if (simple && nkids != 1)
        return TR_EINVAL;
    /* Each encoded child takes well over one byte: a count beyond the
     * bytes left is a lie, refused before it sizes an allocation. */
    if (nkids > (size_t)(c.end - c.pos))
        return TR_EBADMSG;
    if (nkids != 0 && (out->children = calloc(nkids, sizeof *out->children)) == NULL)
        return TR_ENOMEM;
    for (uint32_t i = 0; i < nkids; i++) {
        err = tr__sup_unpack_child(&c, &out->children[i]);
        out->nchildren = i + 1; /* what fini must release, also on failure */
        if (err == TR_OK && simple && out->children[i].spawn.name != NULL)
            err = TR_EINVAL;
        for (uint32_t j = 0; err == TR_OK && j < i; j++)
            if (strcmp(out->children[i].id, out->children[j].id) == 0)
                err = TR_EEXIST;
        if (err != TR_OK) {
            tr__sup_config_fini(out);
            return err;
        }
    }
    if (!tr_cursor_done(&c)) {
        tr__sup_config_fini(out);
        return TR_EBADMSG;
    }
    return TR_OK;
}
