/*
 * test_link_hostile — a node refuses and counts what a hostile or
 * misconfigured peer sends, and keeps serving good peers afterwards.
 *
 * Raw TCP clients (this test speaks the wire protocol by hand, with the
 * frame codec compiled in) send: a length prefix over the handshake limit,
 * a zero length prefix, garbage bytes, a frame out of place during the
 * handshake, and, after a complete handshake, a length prefix over
 * max_frame and a DATA frame acknowledging what was never sent. Each is
 * counted in bad_frames and its connection closed. Nodes with a wrong or
 * missing shared secret are refused with TR_EAUTH and counted in
 * link_refused on both sides; so is a TLS peer whose certificate another
 * CA signed. After each, a good peer's request gets its reply.
 * Usage: test_link_hostile PATH-OF-make_test_certs.sh
 */
#include "link_test.h"
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

/* ---- a good peer checks the node still serves ---------------------------- */

static int echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    int64_t v = 0;
    CHECK_OK(tr_msg_int(m, &v));
    tr_msg *r = NULL;
    CHECK_OK(tr_msg_new(&r, ctx, "plus1"));
    CHECK_OK(tr_pack_int(r, v + 1));
    CHECK_OK(tr_reply(ctx, m, r));
    return 0;
}

static const tr_behaviour echo_b = {"echo", 0, NULL, echo_handle, NULL, NULL};

/* A fresh runtime; secret may be NULL. */
static tr_runtime *node(const char *name, const char *secret)
{
    tr_runtime_opts o = TR_RUNTIME_OPTS_INIT;
    o.node_name = name;
    o.secret = secret;
    o.workers = 1;
    tr_runtime *rt;
    CHECK_OK(tr_runtime_start(&rt, &o));
    return rt;
}

/* From a fresh node (with secret, and the good certificate when tls), asks
 * the echo actor at url: the listening node still serves. */
static void good_peer(const char *url, tr_ref echo, const char *secret, test_certs *tls)
{
    tr_runtime *rt = node("good", secret);
    if (tls != NULL)
        test_set_tls(rt, tls, false);
    uint64_t id;
    CHECK_OK(tr_connect(rt, url, TEST_WAIT_MS, &id));
    CHECK(id == echo.node);
    tr_ctx *ctx;
    CHECK_OK(tr_attach(&ctx, rt));
    tr_msg *req = NULL, *rep = NULL;
    CHECK_OK(tr_msg_new(&req, ctx, "ask"));
    CHECK_OK(tr_pack_int(req, 41));
    CHECK_OK(tr_call(ctx, echo, req, TEST_WAIT_MS, &rep));
    int64_t v = 0;
    CHECK_OK(tr_msg_int(rep, &v));
    CHECK(v == 42);
    tr_msg_free(rep);
    tr_detach(ctx);
    tr_runtime_free(rt);
}

/* ---- raw clients ---------------------------------------------------------- */

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct timeval tv = {TEST_WAIT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    return fd;
}

static void raw_write(int fd, const void *bytes, size_t len)
{
    CHECK(write(fd, bytes, len) == (ssize_t)len);
}

static void raw_frame(int fd, const wire_buf *b)
{
    size_t len;
    const uint8_t *frame = tr__wire_buf_frame(b, &len);
    uint8_t prefix[WIRE_PREFIX_LEN];
    tr__wire_prefix_put(prefix, (uint32_t)len);
    raw_write(fd, prefix, sizeof prefix);
    raw_write(fd, frame, len);
}

/* Reads until the node closes the connection (what it sends first, such as
 * a BYE, is skipped); fails if it does not within the wait. */
static void raw_expect_closed(int fd)
{
    char buf[512];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            break;
        if (n < 0)
            TEST_FAIL("the node kept a hostile connection open: %s", strerror(errno));
    }
    close(fd);
}

static void raw_hello(int fd)
{
    uint8_t nonce[WIRE_NONCE_LEN];
    memset(nonce, 7, sizeof nonce);
    wire_hello h = {0x5eed, "raw", 3, 0, nonce, sizeof nonce, 0, "-", 1};
    wire_buf b;
    tr__wire_buf_init(&b);
    CHECK_OK(tr__wire_encode_hello(&b, WIRE_HELLO, &h, 1 << 20));
    raw_frame(fd, &b);
    tr__wire_buf_fini(&b);
}

/* Completes a handshake by hand with a node that has no secret. */
static void raw_handshake(int fd)
{
    raw_hello(fd);
    uint8_t prefix[WIRE_PREFIX_LEN], frame[WIRE_HANDSHAKE_FRAME_MAX];
    CHECK(recv(fd, prefix, sizeof prefix, MSG_WAITALL) == (ssize_t)sizeof prefix);
    size_t len = 0;
    CHECK(tr__wire_split(prefix, sizeof prefix, sizeof frame, &len) == TR_ENOTFOUND);
    CHECK(len > 0 && len <= sizeof frame);
    CHECK(recv(fd, frame, len, MSG_WAITALL) == (ssize_t)len);
    wire_frame f;
    CHECK_OK(tr__wire_decode(&f, frame, len, sizeof frame));
    CHECK(f.kind == WIRE_WELCOME && f.hello.auth_len == WIRE_NONCE_LEN);
    wire_auth a = {77, NULL, 0};
    wire_buf b;
    tr__wire_buf_init(&b);
    CHECK_OK(tr__wire_encode_auth(&b, &a, 1 << 20));
    raw_frame(fd, &b);
    tr__wire_buf_fini(&b);
}

/* Sends what make writes after connecting (and, when handshake, after a
 * complete handshake); the node must count one more bad frame, close the
 * connection, and still serve. */
typedef void (*hostile_fn)(int fd);

static void hostile(const char *what, tr_runtime *rb, int port, bool handshake, hostile_fn make,
                    const char *url, tr_ref echo)
{
    printf("hostile: %s\n", what);
    uint64_t before = test_counters(rb).bad_frames;
    int fd = raw_connect(port);
    if (handshake)
        raw_handshake(fd);
    make(fd);
    raw_expect_closed(fd);
    WAIT_UNTIL(test_counters(rb).bad_frames == before + 1);
    good_peer(url, echo, NULL, NULL);
}

static void send_oversize_prefix(int fd)
{
    uint8_t prefix[] = {0xff, 0xff, 0xff, 0xf0};
    raw_write(fd, prefix, sizeof prefix);
}

static void send_zero_prefix(int fd)
{
    uint8_t prefix[] = {0, 0, 0, 0};
    raw_write(fd, prefix, sizeof prefix);
}

static void send_garbage(int fd)
{
    uint8_t junk[64];
    tr__wire_prefix_put(junk, 60);
    memset(junk + 4, 0xc1, 60); /* 0xc1 is never valid msgpack */
    raw_write(fd, junk, sizeof junk);
}

static void send_ack_first(int fd) /* an ACK where HELLO must come */
{
    wire_buf b;
    tr__wire_buf_init(&b);
    CHECK_OK(tr__wire_encode_ack(&b, 1, 1 << 20));
    raw_frame(fd, &b);
    tr__wire_buf_fini(&b);
}

static void send_over_max_frame(int fd)
{
    uint8_t prefix[WIRE_PREFIX_LEN];
    tr__wire_prefix_put(prefix, (64u << 10) + 1); /* the node's max_frame is 64 KiB */
    raw_write(fd, prefix, sizeof prefix);
}

static void send_ack_of_nothing(int fd) /* acknowledges envelopes never sent */
{
    wire_buf b;
    tr__wire_buf_init(&b);
    CHECK_OK(tr__wire_encode_ack(&b, 1000, 1 << 20));
    raw_frame(fd, &b);
    tr__wire_buf_fini(&b);
}

/* ---- the checks ----------------------------------------------------------- */

static tr_ref spawn_echo(tr_runtime *rt, tr_ctx **ctx)
{
    CHECK_OK(tr_attach(ctx, rt));
    tr_ref echo;
    CHECK_OK(tr_spawn(&echo, *ctx, &echo_b, NULL, NULL));
    return echo;
}

static void check_raw(void)
{
    tr_runtime_opts o = TR_RUNTIME_OPTS_INIT;
    o.node_name = "b";
    o.max_frame = 64u << 10;
    tr_runtime *rb;
    CHECK_OK(tr_runtime_start(&rb, &o));
    char url[64];
    test_url(url, sizeof url, T_TCP, 0);
    int port = atoi(strrchr(url, ':') + 1);
    CHECK_OK(tr_listen(rb, url));
    tr_ctx *cb;
    tr_ref echo = spawn_echo(rb, &cb);
    good_peer(url, echo, NULL, NULL);

    hostile("length prefix over the handshake limit", rb, port, false, send_oversize_prefix, url,
            echo);
    hostile("zero length prefix", rb, port, false, send_zero_prefix, url, echo);
    hostile("garbage bytes", rb, port, false, send_garbage, url, echo);
    hostile("a frame out of place in the handshake", rb, port, false, send_ack_first, url, echo);
    hostile("length prefix over max_frame after the handshake", rb, port, true, send_over_max_frame,
            url, echo);
    hostile("an acknowledgement of nothing sent", rb, port, true, send_ack_of_nothing, url, echo);

    /* A connection that says nothing is closed at the handshake timeout,
     * and counted as refused. */
    printf("hostile: silence\n");
    uint64_t refused = test_counters(rb).link_refused;
    raw_expect_closed(raw_connect(port));
    WAIT_UNTIL(test_counters(rb).link_refused == refused + 1);
    good_peer(url, echo, NULL, NULL);

    tr_detach(cb);
    tr_runtime_free(rb);
}

static void check_secret(void)
{
    printf("hostile: wrong and missing secrets\n");
    tr_runtime *rs = node("s", "the right secret");
    char url[64];
    test_url(url, sizeof url, T_TCP, 1);
    CHECK_OK(tr_listen(rs, url));
    tr_ctx *cs;
    tr_ref echo = spawn_echo(rs, &cs);
    good_peer(url, echo, "the right secret", NULL);

    const char *wrong[] = {"the wrong secret", NULL};
    for (int i = 0; i < 2; i++) {
        uint64_t refused = test_counters(rs).link_refused;
        tr_runtime *rc = node("c", wrong[i]);
        uint64_t id;
        CHECK_ERR(tr_connect(rc, url, TEST_WAIT_MS, &id), TR_EAUTH);
        CHECK(test_counters(rc).link_refused >= 1);
        WAIT_UNTIL(test_counters(rs).link_refused > refused);
        tr_runtime_free(rc);
        good_peer(url, echo, "the right secret", NULL);
    }
    /* And the other way: a node with a secret dials one without. */
    tr_runtime *rn = node("n", NULL);
    char url_n[64];
    test_url(url_n, sizeof url_n, T_TCP, 2);
    CHECK_OK(tr_listen(rn, url_n));
    uint64_t id;
    CHECK_ERR(tr_connect(rs, url_n, TEST_WAIT_MS, &id), TR_EAUTH);
    WAIT_UNTIL(test_counters(rn).link_refused >= 1);
    tr_runtime_free(rn);
    good_peer(url, echo, "the right secret", NULL);
    tr_detach(cs);
    tr_runtime_free(rs);
}

static void check_certificate(test_certs *certs)
{
    printf("hostile: a certificate from another CA\n");
    tr_runtime *rt = node("t", NULL);
    test_set_tls(rt, certs, false);
    char url[64];
    test_url(url, sizeof url, T_TLS, 3);
    CHECK_OK(tr_listen(rt, url));
    tr_ctx *ct;
    tr_ref echo = spawn_echo(rt, &ct);
    good_peer(url, echo, NULL, certs);

    tr_runtime *rogue = node("rogue", NULL);
    test_set_tls(rogue, certs, true);
    uint64_t id;
    CHECK_ERR(tr_connect(rogue, url, TEST_WAIT_MS, &id), TR_EAUTH);
    WAIT_UNTIL(test_counters(rt).link_refused >= 1);
    tr_runtime_free(rogue);
    good_peer(url, echo, NULL, certs);
    tr_detach(ct);
    tr_runtime_free(rt);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_certs certs;
    test_certs_make(&certs, argc > 1 ? argv[1] : NULL);
    check_raw();
    check_secret();
    check_certificate(&certs);
    test_certs_remove(&certs);
    printf("ok\n");
    return 0;
}
