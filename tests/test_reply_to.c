/*
 * test_reply_to — deferred replies through a saved return address
 * (tr_msg_reply_to, tr_reply_to_send, tr_reply_to_error): a pooled server
 * answers after its handler has returned; an answer after the deadline is
 * discarded, counted as late, and never answers a later request.
 */
#include "check.h"

#define MAXPENDING 8

/* Pooled: "later" d -> answers d + 1 after d ms; "fail" d -> answers
 * TR_ENOTSUP after d ms. What each tr_reply_to_* returned goes to the
 * observer given in args (main) as "answered". */
typedef struct deferrer {
    tr_reply_to pending[MAXPENDING];
    int64_t value[MAXPENDING];
    bool used[MAXPENDING];
    tr_ref observer;
} deferrer;

static int deferrer_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    ((deferrer *)state)->observer = test_read_ref(args);
    return 0;
}

static int deferrer_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    deferrer *d = state;
    int64_t v = 0;
    if (tr_msg_is(m, "wake")) { /* v is the slot whose time has come */
        CHECK_OK(tr_msg_int(m, &v));
        CHECK(v >= 0 && v < MAXPENDING && d->used[v]);
        tr_err e;
        if (d->value[v] < 0) {
            e = tr_reply_to_error(ctx, &d->pending[v], TR_ENOTSUP);
        } else {
            tr_msg *r = NULL;
            CHECK_OK(tr_msg_new(&r, ctx, "answer"));
            CHECK_OK(tr_pack_int(r, d->value[v] + 1));
            e = tr_reply_to_send(ctx, &d->pending[v], r); /* consumed but on TR_EINVAL */
            CHECK(e != TR_EINVAL);
        }
        d->used[v] = false;
        CHECK_OK(tr_send_int(ctx, d->observer, "answered", e));
        return 0;
    }
    CHECK(tr_msg_is_request(m));
    CHECK_OK(tr_msg_int(m, &v));
    int slot = 0;
    while (slot < MAXPENDING && d->used[slot])
        slot++;
    CHECK(slot < MAXPENDING);
    CHECK_OK(tr_msg_reply_to(&d->pending[slot], m));
    CHECK(tr_ref_eq(d->pending[slot].to, tr_msg_from(m)));
    d->used[slot] = true;
    d->value[slot] = tr_msg_is(m, "fail") ? -1 : v;
    tr_msg *wake = NULL;
    tr_timer_id id;
    CHECK_OK(tr_msg_new(&wake, ctx, "wake"));
    CHECK_OK(tr_pack_int(wake, slot));
    CHECK_OK(tr_send_after(ctx, tr_self(ctx), wake, (uint32_t)v, &id));
    return 0;
}

static const tr_behaviour deferrer_b = {
    "deferrer", sizeof(deferrer), deferrer_init, deferrer_handle, NULL, NULL};

/* A continuation that stores the reply's integer at udata. */
static int record_reply(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    CHECK_OK(status);
    CHECK(*(int64_t *)udata == 0); /* exactly once */
    CHECK_OK(tr_msg_int(reply, (int64_t *)udata));
    return 0;
}

static tr_err call(tr_ctx *ctx, tr_ref server, const char *tag, int64_t v, uint32_t timeout,
                   int64_t *out)
{
    tr_msg *q = NULL, *r = NULL;
    CHECK_OK(tr_msg_new(&q, ctx, tag));
    CHECK_OK(tr_pack_int(q, v));
    tr_err e = tr_call(ctx, server, q, timeout, &r);
    if (e == TR_OK) {
        CHECK_OK(tr_msg_int(r, out));
        tr_msg_free(r);
    }
    return e;
}

int main(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    tr_ref d;
    int64_t v = 0;
    CHECK_OK(tr_spawn(&d, ctx, &deferrer_b, test_msg_ref(ctx, "args", tr_self(ctx)), NULL));

    /* Answered after the handler returned, within the deadline. */
    CHECK_OK(call(ctx, d, "later", 20, TEST_WAIT_MS, &v));
    CHECK(v == 21);
    CHECK(test_recv_int(ctx, "answered") == TR_OK);
    CHECK_ERR(call(ctx, d, "fail", 20, TEST_WAIT_MS, &v), TR_ENOTSUP);
    CHECK(test_recv_int(ctx, "answered") == TR_OK);

    /* Answered after the deadline: discarded, counted, not delivered. */
    uint64_t late0 = test_counters(rt).late_replies;
    CHECK_ERR(call(ctx, d, "later", 300, 50, &v), TR_ETIMEDOUT);
    CHECK(test_recv_int(ctx, "answered") == TR_ETIMEDOUT);
    WAIT_UNTIL(test_counters(rt).late_replies == late0 + 1);
    CHECK_OK(call(ctx, d, "later", 1, TEST_WAIT_MS, &v));
    CHECK(v == 2); /* the answer to this request, not the late one */
    CHECK(test_recv_int(ctx, "answered") == TR_OK);
    test_recv_none(ctx, NULL, 0);

    /* Several outstanding at once, answered out of order, each to its own
     * continuation (which runs inside main's tr_receive). */
    static const int64_t delays[3] = {200, 100, 10};
    int64_t got[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        tr_msg *q = NULL;
        CHECK_OK(tr_msg_new(&q, ctx, "later"));
        CHECK_OK(tr_pack_int(q, delays[i]));
        CHECK_OK(tr_request(ctx, d, q, TEST_WAIT_MS, record_reply, &got[i]));
    }
    int64_t deadline = test_now_ms() + TEST_WAIT_MS;
    while (got[0] == 0 || got[1] == 0 || got[2] == 0) {
        tr_msg *none = NULL;
        CHECK_ERR(tr_receive(ctx, "never", NULL, NULL, 20, &none), TR_ETIMEDOUT);
        CHECK(test_now_ms() < deadline);
    }
    for (int i = 0; i < 3; i++) {
        CHECK(got[i] == delays[i] + 1);
        CHECK(test_recv_int(ctx, "answered") == TR_OK);
    }

    /* A return address of something that is no request. */
    tr_msg *plain = NULL;
    tr_reply_to rt_addr;
    CHECK_OK(tr_msg_new(&plain, ctx, "plain"));
    CHECK_ERR(tr_msg_reply_to(&rt_addr, plain), TR_EINVAL);
    tr_msg_free(plain);

    test_finish(rt, ctx);
    printf("ok\n");
    return 0;
}
