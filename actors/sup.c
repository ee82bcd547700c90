/*
 * sup.c — the supervisor actor: its callbacks, and the control requests
 * (start, terminate, restart, delete, list) it answers.
 *
 * A supervisor is a pooled actor that traps exits. Its init decodes its
 * spec and starts the children in order; its handler sorts each message
 * into an exit signal (sup_engine.c decides), one of its own timers, or a
 * control request. A request that changes children waits, copied with its
 * return address, while children are being stopped, so it sees the
 * outcome of what came before it, as an OTP supervisor would; a listing
 * is answered at once.
 *
 * This file must not decide restarts (sup_engine.c does).
 */
#include "sup_actor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---- replies -------------------------------------------------------------- */

/* Where an answer goes: the live request, or a saved return address. */
typedef struct answer {
    const tr_msg *live;
    const tr_reply_to *saved;
} answer;

static void answer_msg(tr_ctx *ctx, const answer *a, tr_msg *reply)
{
    /* Both consume reply; a caller that gave up is nobody's failure. */
    if (a->live != NULL)
        (void)tr_reply(ctx, a->live, reply);
    else
        (void)tr_reply_to_send(ctx, a->saved, reply);
}

static void answer_err(tr_ctx *ctx, const answer *a, tr_err status)
{
    if (a->live != NULL)
        (void)tr_reply_error(ctx, a->live, status);
    else
        (void)tr_reply_to_error(ctx, a->saved, status);
}

static void answer_ref(tr_ctx *ctx, const answer *a, tr_ref ref)
{
    tr_msg *m;
    tr_err err = tr_msg_new(&m, ctx, SUP_TAG_REF);
    if (err == TR_OK && (err = tr_pack_ref(m, ref)) != TR_OK)
        tr_msg_free(m);
    if (err != TR_OK)
        answer_err(ctx, a, err);
    else
        answer_msg(ctx, a, m);
}

static void answer_done(tr_ctx *ctx, const answer *a)
{
    tr_msg *m;
    tr_err err = tr_msg_new(&m, ctx, SUP_TAG_DONE);
    if (err != TR_OK)
        answer_err(ctx, a, err);
    else
        answer_msg(ctx, a, m);
}

/* ---- listing -------------------------------------------------------------- */

static tr_err pack_child_info(tr_msg *m, const sup_child *c)
{
    tr_err err;
    const sup_childspec *cs = &c->spec;
    if ((err = tr_pack_array(m, 10)) != TR_OK || (err = tr_pack_str(m, cs->id)) != TR_OK)
        return err;
    err = tr_ref_is_nil(c->ref) ? tr_pack_nil(m) : tr_pack_ref(m, c->ref);
    if (err != TR_OK || (err = tr_pack_uint(m, c->state)) != TR_OK ||
        (err = tr_pack_uint(m, cs->type)) != TR_OK ||
        (err = tr_pack_uint(m, cs->spawn.kind)) != TR_OK ||
        (err = tr_pack_uint(m, cs->restart)) != TR_OK ||
        (err = tr_pack_uint(m, c->restarts)) != TR_OK)
        return err;
    uint32_t delay = c->state == TR_SUP_CHILD_RESTARTING ? c->delay_ms : 0;
    if ((err = tr_pack_uint(m, delay)) != TR_OK || (err = tr_pack_bool(m, c->exited)) != TR_OK)
        return err;
    return c->exited ? tr__sup_pack_reason(m, &c->last_exit) : tr_pack_nil(m);
}

static void op_which(tr_ctx *ctx, sup_state *s, const answer *a)
{
    tr_msg *m;
    tr_err err = tr_msg_new(&m, ctx, SUP_TAG_CHILDREN);
    if (err != TR_OK) {
        answer_err(ctx, a, err);
        return;
    }
    err = tr_pack_array(m, s->nkids);
    for (uint32_t i = 0; err == TR_OK && i < s->nkids; i++)
        err = pack_child_info(m, s->kids[i]);
    if (err != TR_OK) {
        tr_msg_free(m);
        answer_err(ctx, a, err);
        return;
    }
    answer_msg(ctx, a, m);
}

/* ---- operations that change children -------------------------------------- */

/* Bytes that do not say what a request needs are a bad message, whatever
 * the cursor found wrong with them. */
static tr_err decode_err(tr_err err)
{
    return err == TR_ETYPE || err == TR_ERANGE ? TR_EBADMSG : err;
}

static bool is_simple(const sup_state *s) { return s->strategy == TR_SUP_SIMPLE_ONE_FOR_ONE; }

/* Adds a record for spec (taken over) and starts it; answers either way. */
static void add_and_start(tr_ctx *ctx, sup_state *s, sup_childspec *spec, bool dynamic,
                          const answer *a)
{
    sup_child *c;
    tr_err err = tr__sup_add(s, spec, dynamic, &c);
    if (err != TR_OK) {
        tr__sup_childspec_fini(spec);
        answer_err(ctx, a, err);
        return;
    }
    if ((err = tr__sup_start(ctx, s, c)) != TR_OK) {
        tr__sup_remove(ctx, s, s->nkids - 1); /* a failed start adds nothing */
        answer_err(ctx, a, err);
        return;
    }
    answer_ref(ctx, a, c->ref);
}

static void op_start(tr_ctx *ctx, sup_state *s, tr_cursor *cur, const answer *a)
{
    if (is_simple(s)) {
        answer_err(ctx, a, TR_EWRONGKIND);
        return;
    }
    sup_childspec spec;
    tr_err err = decode_err(tr__sup_unpack_child(cur, &spec));
    if (err == TR_OK && !tr_cursor_done(cur))
        err = TR_EBADMSG;
    if (err == TR_OK && tr__sup_find_id(s, spec.id, NULL) != NULL)
        err = TR_EEXIST;
    if (err != TR_OK) {
        tr__sup_childspec_fini(&spec);
        answer_err(ctx, a, err);
        return;
    }
    add_and_start(ctx, s, &spec, false, a);
}

static void op_start_dynamic(tr_ctx *ctx, sup_state *s, tr_cursor *cur, const answer *a)
{
    if (!is_simple(s)) {
        answer_err(ctx, a, TR_EWRONGKIND);
        return;
    }
    const uint8_t *args = NULL;
    size_t len = 0;
    tr_err err = TR_OK;
    if (tr_cursor_nil(cur) != TR_OK) {
        err = decode_err(tr_cursor_bin(cur, &args, &len));
        if (err == TR_OK && (len == 0 || tr_validate(args, len) != TR_OK))
            err = TR_EBADMSG;
    }
    if (err == TR_OK && !tr_cursor_done(cur))
        err = TR_EBADMSG;
    sup_childspec spec;
    if (err == TR_OK)
        err = tr__sup_childspec_copy(&spec, &s->tmpl);
    if (err == TR_OK && args != NULL) {
        uint8_t *copy = malloc(len);
        if (copy == NULL) {
            tr__sup_childspec_fini(&spec);
            err = TR_ENOMEM;
        } else {
            memcpy(copy, args, len);
            free(spec.args);
            spec.args = copy;
            spec.args_len = len;
        }
    }
    if (err != TR_OK) {
        answer_err(ctx, a, err);
        return;
    }
    add_and_start(ctx, s, &spec, true, a);
}

/* Reads the one child id a request carries and finds the child. */
static sup_child *lookup_id(tr_ctx *ctx, sup_state *s, tr_cursor *cur, const answer *a,
                            uint32_t *idx)
{
    char id[TR_SUP_ID_MAX + 1];
    tr_err err = decode_err(tr__sup_read_strbuf(cur, id, sizeof id));
    if (err == TR_OK && !tr_cursor_done(cur))
        err = TR_EBADMSG;
    if (err == TR_OK && is_simple(s))
        err = TR_EWRONGKIND;
    sup_child *c = err == TR_OK ? tr__sup_find_id(s, id, idx) : NULL;
    if (err == TR_OK && c == NULL)
        err = TR_ENOTFOUND;
    if (err != TR_OK)
        answer_err(ctx, a, err);
    return c;
}

/* Asks for c's stop; the answer goes out once it is gone. */
static void stop_then_answer(tr_ctx *ctx, sup_child *c, sup_then then, const answer *a)
{
    if (a->live != NULL) {
        if (tr_msg_reply_to(&c->waiter, a->live) != TR_OK) {
            answer_err(ctx, a, TR_EINVAL);
            return;
        }
    } else {
        c->waiter = *a->saved;
    }
    c->waiter_set = true;
    c->after = then;
}

static void op_terminate(tr_ctx *ctx, sup_state *s, tr_cursor *cur, const answer *a)
{
    uint32_t idx;
    sup_child *c = lookup_id(ctx, s, cur, a, &idx);
    if (c == NULL)
        return;
    bool temporary = c->spec.restart == TR_SUP_TEMPORARY;
    if (c->state == TR_SUP_CHILD_RUNNING) {
        stop_then_answer(ctx, c, temporary ? THEN_REMOVE : THEN_STOP, a);
        return;
    }
    tr__sup_cancel_timer(ctx, c); /* a restarting child just stays down */
    c->state = TR_SUP_CHILD_STOPPED;
    if (temporary)
        tr__sup_remove(ctx, s, idx);
    answer_done(ctx, a);
}

static void op_terminate_ref(tr_ctx *ctx, sup_state *s, tr_cursor *cur, const answer *a)
{
    tr_ref ref;
    tr_err err = decode_err(tr_cursor_ref(cur, &ref));
    if (err == TR_OK && !tr_cursor_done(cur))
        err = TR_EBADMSG;
    if (err == TR_OK && !is_simple(s))
        err = TR_EWRONGKIND;
    sup_child *c = err == TR_OK ? tr__sup_find_ref(s, ref, NULL) : NULL;
    if (err == TR_OK && c == NULL)
        err = TR_ENOTFOUND;
    if (err != TR_OK) {
        answer_err(ctx, a, err);
        return;
    }
    stop_then_answer(ctx, c, THEN_REMOVE, a);
}

static void op_restart(tr_ctx *ctx, sup_state *s, tr_cursor *cur, const answer *a)
{
    sup_child *c = lookup_id(ctx, s, cur, a, NULL);
    if (c == NULL)
        return;
    if (c->state != TR_SUP_CHILD_STOPPED) {
        answer_err(ctx, a, TR_EBUSY);
        return;
    }
    tr_err err = tr__sup_start(ctx, s, c);
    if (err != TR_OK)
        answer_err(ctx, a, err);
    else
        answer_ref(ctx, a, c->ref);
}

static void op_delete(tr_ctx *ctx, sup_state *s, tr_cursor *cur, const answer *a)
{
    uint32_t idx;
    sup_child *c = lookup_id(ctx, s, cur, a, &idx);
    if (c == NULL)
        return;
    if (c->state != TR_SUP_CHILD_STOPPED) {
        answer_err(ctx, a, TR_EBUSY);
        return;
    }
    tr__sup_remove(ctx, s, idx);
    answer_done(ctx, a);
}

/* ---- dispatch ------------------------------------------------------------- */

typedef void (*op_fn)(tr_ctx *ctx, sup_state *s, tr_cursor *cur, const answer *a);

static op_fn op_for(const char *tag)
{
    static const struct {
        const char *tag;
        op_fn fn;
    } ops[] = {
        {SUP_TAG_START, op_start},         {SUP_TAG_START_DYN, op_start_dynamic},
        {SUP_TAG_TERMINATE, op_terminate}, {SUP_TAG_TERMINATE_REF, op_terminate_ref},
        {SUP_TAG_RESTART, op_restart},     {SUP_TAG_DELETE, op_delete},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(tag, ops[i].tag) == 0)
            return ops[i].fn;
    return NULL;
}

static void run_op(tr_ctx *ctx, sup_state *s, op_fn fn, const uint8_t *bytes, size_t len,
                   const answer *a)
{
    if (s->exiting) {
        answer_err(ctx, a, TR_ECANCELED);
        return;
    }
    if (len == 0 || tr_validate(bytes, len) != TR_OK) {
        answer_err(ctx, a, TR_EBADMSG);
        return;
    }
    tr_cursor cur;
    tr_cursor_init_bytes(&cur, bytes, len);
    fn(ctx, s, &cur, a);
}

/* Keeps a request for later; false when out of memory. */
static bool defer(sup_state *s, const tr_msg *m, const uint8_t *bytes, size_t len)
{
    sup_deferred *d = malloc(sizeof *d + len);
    if (d == NULL)
        return false;
    if (tr_msg_reply_to(&d->to, m) != TR_OK) {
        free(d);
        return false;
    }
    d->next = NULL;
    snprintf(d->tag, sizeof d->tag, "%s", tr_msg_tag(m));
    d->len = len;
    if (len != 0)
        memcpy(d->bytes, bytes, len);
    if (s->dq_tail != NULL)
        s->dq_tail->next = d;
    else
        s->dq_head = d;
    s->dq_tail = d;
    return true;
}

void tr__sup_run_deferred(tr_ctx *ctx, sup_state *s)
{
    sup_deferred *d = s->dq_head;
    s->dq_head = d->next;
    if (s->dq_head == NULL)
        s->dq_tail = NULL;
    answer a = {NULL, &d->to};
    op_fn fn = op_for(d->tag);
    if (fn != NULL)
        run_op(ctx, s, fn, d->bytes, d->len, &a);
    free(d);
}

static void on_request(tr_ctx *ctx, sup_state *s, const tr_msg *m)
{
    answer a = {m, NULL};
    if (tr_msg_is(m, SUP_TAG_WHICH)) {
        op_which(ctx, s, &a);
        return;
    }
    op_fn fn = op_for(tr_msg_tag(m));
    if (fn == NULL) {
        answer_err(ctx, &a, TR_ENOTSUP);
        return;
    }
    size_t len;
    const uint8_t *bytes = tr_msg_payload(m, &len);
    if (!s->exiting && (tr__sup_busy(s) || s->dq_head != NULL)) {
        if (!defer(s, m, bytes, len))
            answer_err(ctx, &a, TR_ENOMEM);
        return;
    }
    run_op(ctx, s, fn, bytes, len, &a);
}

/* Reads a timer message's [secret, uid(, token)]; false if not ours. */
static bool read_timer(const sup_state *s, const tr_msg *m, uint32_t fields, uint64_t *uid,
                       uint64_t *token)
{
    tr_cursor c;
    uint32_t n;
    uint64_t secret;
    if (!tr_ref_is_nil(tr_msg_from(m)) || tr_msg_validate(m) != TR_OK)
        return false;
    tr_cursor_init(&c, m);
    if (tr_cursor_array(&c, &n) != TR_OK || n != fields || tr_cursor_uint(&c, &secret) != TR_OK ||
        secret != s->secret || tr_cursor_uint(&c, uid) != TR_OK)
        return false;
    return token == NULL || tr_cursor_uint(&c, token) == TR_OK;
}

/* ---- the behaviour -------------------------------------------------------- */

static uint64_t seed_new(tr_ref self)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = tr__sup_now_ns() ^ ((uint64_t)self.id << 32) ^ self.incarnation;
    return v != 0 ? v : 0x9E3779B97F4A7C15ull;
}

/* Starts the initial children in order; the first failure stops the rest. */
static void start_initial(tr_ctx *ctx, sup_state *s)
{
    for (uint32_t i = 0; i < s->nkids; i++) {
        sup_child *c = s->kids[i];
        tr_err err = tr__sup_start(ctx, s, c);
        if (err == TR_OK)
            continue;
        char text[TR_REASON_TEXT_MAX + 1];
        snprintf(text, sizeof text, "child %.40s: %s", c->spec.id, tr_err_name(err));
        tr_reason failed = tr_reason_make(TR_EXIT_ERROR, (int32_t)err, tr_err_name(err));
        tr__sup_emit(ctx, s, TR_SUP_EV_START_FAILED, c->spec.id, TR_REF_NIL, &failed, 0, 0);
        tr_reason why = tr_reason_make(TR_EXIT_ERROR, TR_SUP_EXIT_START_FAILED, text);
        tr__sup_shutdown(ctx, s, &why);
        return;
    }
}

/* Subscribes to the watchdog's reports once a child wants overruns acted
 * on (not before: a subscriber takes the reports off standard error). */
static void watch_overruns(tr_ctx *ctx, sup_state *s)
{
    if (s->watching)
        return;
    bool want = s->has_tmpl && s->tmpl.kill_on_overrun;
    for (uint32_t i = 0; i < s->nkids && !want; i++)
        want = s->kids[i]->spec.kill_on_overrun;
    if (want && tr_watchdog_subscribe(ctx, true) == TR_OK)
        s->watching = true;
}

/* A child of ours ran past the watchdog's budget: a process or thread
 * child whose spec asks for it is killed; its exit restarts it. */
static void on_overrun(tr_ctx *ctx, sup_state *s, const tr_msg *m)
{
    tr_overrun o;
    if (tr_msg_overrun_info(m, &o) != TR_OK || (o.kind != TR_PROCESS && o.kind != TR_THREAD))
        return;
    sup_child *c = tr__sup_find_ref(s, o.who, NULL);
    if (c == NULL || !c->spec.kill_on_overrun || c->stopping || s->exiting)
        return;
    char text[TR_REASON_TEXT_MAX + 1];
    snprintf(text, sizeof text, "overran its budget: %u ms in a handler", o.elapsed_ms);
    tr_reason why = tr_reason_make(TR_EXIT_KILLED, TR_SUP_KILL_OVERRUN, text);
    (void)tr_exit(ctx, c->ref, &why); /* a child already gone exits anyway */
}

static int sup_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    sup_state *s = state;
    sup_config cfg;
    size_t len = 0;
    const uint8_t *bytes = args != NULL ? tr_msg_payload(args, &len) : NULL;
    tr_err err = tr__sup_unpack_config(bytes, len, &cfg);
    if (err != TR_OK)
        return err;
    tr_trap_exit(ctx, true);
    s->strategy = cfg.strategy;
    s->intensity = cfg.intensity;
    s->period_ms = cfg.period_ms;
    s->events = cfg.events;
    s->secret = seed_new(tr_self(ctx));
    s->rng = seed_new(tr_self(ctx)) | 1u;
    if (s->strategy == TR_SUP_SIMPLE_ONE_FOR_ONE) {
        s->tmpl = cfg.children[0];
        if (s->tmpl.spawn.name != NULL)
            s->tmpl.spawn.name = s->tmpl.name_buf;
        s->has_tmpl = true;
        memset(&cfg.children[0], 0, sizeof cfg.children[0]);
    } else {
        for (uint32_t i = 0; i < cfg.nchildren; i++) {
            sup_child *c;
            if ((err = tr__sup_add(s, &cfg.children[i], false, &c)) != TR_OK) {
                tr__sup_config_fini(&cfg);
                return err;
            }
        }
    }
    tr__sup_config_fini(&cfg);
    watch_overruns(ctx, s);
    start_initial(ctx, s);
    tr__sup_step(ctx, s);
    return 0;
}

static int sup_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    sup_state *s = state;
    tr_ref from;
    tr_reason why;
    uint64_t uid, token;
    if (tr_msg_is(m, TR_TAG_EXIT)) {
        if (tr_msg_exit_info(m, &from, &why) == TR_OK)
            tr__sup_exit_signal(ctx, s, from, &why);
    } else if (tr_msg_is(m, SUP_TAG_BACKOFF)) {
        if (read_timer(s, m, 2, &uid, NULL))
            tr__sup_backoff_over(ctx, s, uid);
    } else if (tr_msg_is(m, SUP_TAG_KILL)) {
        if (read_timer(s, m, 3, &uid, &token))
            tr__sup_kill_due(ctx, s, uid, token);
    } else if (tr_msg_is(m, TR_TAG_OVERRUN)) {
        on_overrun(ctx, s, m);
    } else if (tr_msg_is_request(m)) {
        on_request(ctx, s, m);
        tr__sup_step(ctx, s);
        watch_overruns(ctx, s); /* a child may have been added */
    }
    /* Anything else is not for a supervisor; it is dropped. */
    return 0;
}

static void sup_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    (void)why;
    sup_state *s = state;
    /* Children still linked get this actor's exit signal from the runtime. */
    for (uint32_t i = 0; i < s->nkids; i++)
        tr__sup_child_free(ctx, s->kids[i]);
    free(s->kids);
    s->kids = NULL;
    s->nkids = 0;
    while (s->dq_head != NULL) {
        sup_deferred *d = s->dq_head;
        s->dq_head = d->next;
        (void)tr_reply_to_error(ctx, &d->to, TR_ECANCELED);
        free(d);
    }
    s->dq_tail = NULL;
    if (s->has_tmpl)
        tr__sup_childspec_fini(&s->tmpl);
    free(s->hist);
}

const tr_behaviour tr__sup_behaviour = {"supervisor", sizeof(sup_state), sup_init,
                                        sup_handle,   sup_terminate,     NULL};
