/*
 * calc_port.c — a calculator actor that keeps `bc -l` running as a port.
 *
 * Python lesson: Effective Python item 52, "Use subprocess to manage child
 * processes". The book starts a child with subprocess.Popen, writes to its
 * stdin, reads its stdout, and waits for its exit status, taking care that
 * a chatty child cannot block on a full pipe.
 *
 * troupe idiom: a port is the child process as an actor. tr_port_spawn
 * starts `bc -l`; every line bc prints reaches the owner as a "port.line"
 * message, every message sent to the port is written to bc's stdin, and
 * bc's exit arrives as the port's exit reason. The "calc" actor below owns
 * the port and serves request/reply "calc" requests: it writes one
 * expression at a time and answers the oldest waiting request with the
 * next line bc prints on stdout (the result) or stderr (an error), so
 * answers can never be paired with the wrong question. main is the client:
 * it asks a few questions and checks the answers.
 */
#define _GNU_SOURCE /* memmem */
#include <troupe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    QUEUE_MAX = 32,  /* requests waiting for bc, at most */
    EXPR_MAX = 200,  /* longest expression accepted */
    CALL_MS = 10000, /* how long main waits for an answer */
};

/* ---- the calculator ------------------------------------------------------ */

typedef struct pending {
    tr_reply_to to;
    char expr[EXPR_MAX + 3]; /* "(expr)\n" as written to bc */
} pending;

typedef struct calc {
    tr_ref bc;                /* the port running bc */
    pending queue[QUEUE_MAX]; /* waiting requests; queue[head] is with bc when busy */
    int head, n;
    bool busy;          /* bc is working on queue[head] */
    bool too_long;      /* the current result came in pieces (over max_msg) */
    tr_ref stop_notify; /* who asked us to stop */
} calc;

/* Only numbers, operators, parentheses and bc's math-library names
 * (s c a l e j sqrt scale): nothing that could be a bc statement such as
 * quit or a definition, so every expression makes bc print exactly one
 * line, on stdout or stderr. */
static tr_err expr_check(const char *s, size_t len)
{
    int depth = 0;
    if (len == 0 || len > EXPR_MAX)
        return TR_EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '(')
            depth++;
        else if (s[i] == ')')
            depth--;
        else if (s[i] == '\0' || strchr("0123456789.+-*/^%, sclaejqrt", s[i]) == NULL)
            return TR_EINVAL;
        if (depth < 0)
            return TR_EINVAL;
    }
    return depth == 0 ? TR_OK : TR_EINVAL; /* unbalanced: bc would wait for more */
}

static int calc_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    calc *c = state;
    static const char *const argv[] = {"bc", "-l", "-q", NULL};
    static const char *const env[] = {"BC_LINE_LENGTH=0", NULL}; /* long results on one line */
    tr_port_opts o = TR_PORT_OPTS_INIT;
    o.err = TR_PORT_STDERR_MESSAGES; /* bc reports errors on stderr */
    o.env = env;
    o.spawn.link = true; /* we trap exits (see main), so bc's exit reaches us as a message */
    tr_err err = tr_port_spawn(&c->bc, ctx, argv, &o);
    if (err == TR_ENOTFOUND)
        fprintf(stderr, "calc_port: bc is not installed (tools/setup.sh installs it)\n");
    return err;
}

/* Writes the oldest waiting expression to bc, if bc is idle. */
static tr_err calc_next(tr_ctx *ctx, calc *c)
{
    if (c->busy || c->n == 0)
        return TR_OK;
    c->busy = true;
    c->too_long = false;
    return tr_send_str(ctx, c->bc, "expr", c->queue[c->head].expr);
}

/* Answers the request bc just finished with tag and text. */
static tr_err calc_answer(tr_ctx *ctx, calc *c, const char *tag, const char *text, size_t len)
{
    if (!c->busy)
        return TR_OK; /* bc printed more than one line; cannot happen with checked input */
    tr_msg *r = NULL;
    tr_err err = tr_msg_new(&r, ctx, tag);
    if (err == TR_OK && (err = tr_pack_strn(r, text, len)) == TR_OK)
        err = tr_reply_to_send(ctx, &c->queue[c->head].to, r);
    else
        tr_msg_free(r);
    c->head = (c->head + 1) % QUEUE_MAX;
    c->n--;
    c->busy = false;
    /* A client that gave up (TR_ETIMEDOUT) or left (TR_ENOACTOR) is not our failure. */
    if (err != TR_OK && err != TR_ETIMEDOUT && err != TR_ENOACTOR)
        return err;
    return calc_next(ctx, c);
}

static tr_err calc_request(tr_ctx *ctx, calc *c, const tr_msg *m)
{
    const char *s;
    size_t len;
    tr_cursor cur;
    tr_cursor_init(&cur, m);
    tr_err err = tr_cursor_str(&cur, &s, &len);
    if (err == TR_OK)
        err = expr_check(s, len);
    if (err == TR_OK && c->n == QUEUE_MAX)
        err = TR_EFULL;
    if (err != TR_OK) {
        tr_reply_error(ctx, m, err);
        return TR_OK;
    }
    pending *p = &c->queue[(c->head + c->n) % QUEUE_MAX];
    tr_msg_reply_to(&p->to, m);
    snprintf(p->expr, sizeof p->expr, "(%.*s)\n", (int)len, s);
    c->n++;
    return calc_next(ctx, c);
}

static int calc_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    calc *c = state;
    const char *s = "";
    size_t len = 0;
    tr_cursor cur;

    if (tr_msg_is(m, "calc") && tr_msg_is_request(m))
        return calc_request(ctx, c, m);
    if (tr_msg_is(m, TR_PORT_TAG_PART)) {
        c->too_long = true; /* the rest follows as a port.line */
        return TR_OK;
    }
    if (tr_msg_is(m, TR_PORT_TAG_LINE) || tr_msg_is(m, TR_PORT_TAG_ERR)) {
        tr_cursor_init(&cur, m);
        tr_err err = tr_cursor_str(&cur, &s, &len);
        if (err != TR_OK)
            return err;
        if (c->too_long)
            return calc_answer(ctx, c, "calc.error", "result too long", 15);
        return calc_answer(ctx, c, tr_msg_is(m, TR_PORT_TAG_LINE) ? "calc.result" : "calc.error", s,
                           len);
    }
    if (tr_msg_is(m, "stop")) {
        /* Close bc's stdin: bc exits by itself, and its port tells us. */
        c->stop_notify = tr_msg_from(m);
        return tr_send_tag(ctx, c->bc, TR_PORT_TAG_EOF);
    }
    if (tr_msg_is(m, TR_TAG_EXIT)) {
        tr_ref from;
        tr_reason why;
        tr_err err = tr_msg_exit_info(m, &from, &why);
        if (err != TR_OK || !tr_ref_eq(from, c->bc))
            return err;
        printf("calc_port: bc exited (%s%s%s)\n", tr_exit_kind_name(why.kind),
               why.text[0] ? ": " : "", why.text);
        /* Whatever still waits cannot be answered any more. */
        while (c->n > 0) {
            tr_reply_to_error(ctx, &c->queue[c->head].to, TR_EEXITED);
            c->head = (c->head + 1) % QUEUE_MAX;
            c->n--;
        }
        tr_stop_self(ctx, &why); /* bc's end is ours */
    }
    return TR_OK;
}

static const tr_behaviour calc_behaviour = {
    .name = "calc", .state_size = sizeof(calc), .init = calc_init, .handle = calc_handle};

/* ---- the client ---------------------------------------------------------- */

/* An expression and what bc must answer: a result, or an error message
 * that contains the given text. */
static const struct question {
    const char *expr;
    const char *want;
    bool error;
} questions[] = {
    {"2+3", "5", false},
    {"2^64", "18446744073709551616", false},
    {"sqrt(2)", "1.41421356237309504880", false},
    {"4*a(1)", "3.14159265358979323844", false},
    {"(1+2)*(3+4)/7", "3.00000000000000000000", false},
    {"1/0", "Divide by zero", true},
    {"2+", "syntax error", true},
    {"e(1)", "2.71828182845904523536", false},
};

/* Asks calc one question; returns true when the answer is the expected one. */
static bool ask(tr_ctx *ctx, tr_ref calc_ref, const struct question *q)
{
    tr_msg *req = NULL, *reply = NULL;
    const char *s = "";
    size_t len = 0;
    tr_cursor cur;
    tr_err err = tr_msg_new(&req, ctx, "calc");
    if (err == TR_OK && (err = tr_pack_str(req, q->expr)) == TR_OK)
        err = tr_call(ctx, calc_ref, req, CALL_MS, &reply); /* takes req from here on */
    else
        tr_msg_free(req);
    if (err != TR_OK) {
        printf("  %-16s -> %s\n", q->expr, tr_err_name(err));
        return false;
    }
    tr_cursor_init(&cur, reply);
    bool is_error = tr_msg_is(reply, "calc.error");
    bool ok = tr_cursor_str(&cur, &s, &len) == TR_OK && is_error == q->error &&
              (q->error ? memmem(s, len, q->want, strlen(q->want)) != NULL
                        : len == strlen(q->want) && memcmp(s, q->want, len) == 0);
    printf("  %-16s -> %s%.*s%s\n", q->expr, is_error ? "error: " : "", (int)len, s,
           ok ? "" : "   (UNEXPECTED)");
    tr_msg_free(reply);
    return ok;
}

int main(void)
{
    tr_runtime *rt = NULL;
    tr_ctx *ctx = NULL;
    tr_ref calc_ref;
    tr_monitor_id mon;
    tr_msg *down = NULL, *req = NULL, *reply = NULL;
    int rc = 1, right = 0, n = (int)(sizeof questions / sizeof questions[0]);
    tr_err err;

    tr_spawn_opts so = TR_SPAWN_OPTS_INIT;
    so.trap_exit = true; /* bc's exit comes to calc as a message */
    if ((err = tr_runtime_start(&rt, NULL)) != TR_OK || (err = tr_attach(&ctx, rt)) != TR_OK ||
        (err = tr_spawn(&calc_ref, ctx, &calc_behaviour, NULL, &so)) != TR_OK ||
        (err = tr_monitor(ctx, calc_ref, &mon)) != TR_OK) {
        fprintf(stderr, "calc_port: start: %s\n", tr_strerror(err));
        goto out;
    }

    printf("calc_port: asking bc -l through a port\n");
    for (int i = 0; i < n; i++)
        right += ask(ctx, calc_ref, &questions[i]);
    /* Input the calculator refuses before bc ever sees it. */
    if ((err = tr_msg_new(&req, ctx, "calc")) == TR_OK && (err = tr_pack_str(req, "quit")) == TR_OK)
        err = tr_call(ctx, calc_ref, req, CALL_MS, &reply);
    else
        tr_msg_free(req);
    printf("  %-16s -> refused: %s\n", "quit", tr_err_name(err));
    tr_msg_free(reply);

    /* Stop: calc closes bc's stdin, bc exits 0, and calc exits with bc's
     * reason, which the monitor shows. */
    tr_reason why = {0};
    tr_ref who;
    tr_monitor_id id;
    if (tr_send_tag(ctx, calc_ref, "stop") == TR_OK &&
        tr_receive(ctx, TR_TAG_DOWN, NULL, NULL, CALL_MS, &down) == TR_OK)
        tr_msg_down_info(down, &who, &id, &why);
    printf("calc_port: %d of %d answers right; calc ended: %s\n", right, n,
           tr_exit_kind_name(why.kind));
    rc = right == n && err == TR_EINVAL && down != NULL && why.kind == TR_EXIT_NORMAL ? 0 : 1;

out:
    tr_msg_free(down);
    if (ctx != NULL)
        tr_detach(ctx);
    tr_runtime_free(rt);
    return rc;
}
