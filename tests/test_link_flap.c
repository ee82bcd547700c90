/*
 * test_link_flap — nothing lost, nothing duplicated, order kept when the
 * connection between two nodes breaks again and again under load.
 *
 * Node A reaches node B through a small TCP relay in this test, which cuts
 * every connection after a random number of bytes, some of them during the
 * handshake, back to back. What a broken connection held is gone; the link
 * layer must resend it, and drop what arrives twice. B's counter checks
 * every number arrives once, in order.
 *
 * Then the relay swallows everything for longer than the detection time:
 * both nodes declare the other down (monitors on each side fire with
 * TR_EXIT_NOCONNECTION). Then the partition heals: A reconnects by itself,
 * a new session starts, and a second load, again over a cutting relay,
 * arrives whole and in order at the same counter.
 * Usage: test_link_flap [--seed N]
 */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the relay ----------------------------------------------------------- */

typedef struct relay {
    int listen_fd;
    int to_port;
    _Atomic int stop;
    _Atomic int blackhole; /* drop every connection at once */
    _Atomic int cuts;
    test_rng rng;
    pthread_t thread;
} relay;

static int relay_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(listen(fd, 64) == 0);
    socklen_t len = sizeof sa;
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int relay_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Copies bytes both ways until the budget runs out, then cuts both ends.
 * One connection in four is cut within its first 300 bytes, during the
 * handshake; the others carry 256 KiB to 1 MiB. */
static void relay_session(relay *r, int a)
{
    int b = relay_connect(r->to_port);
    if (b < 0) {
        close(a);
        return;
    }
    long budget = test_rng_below(&r->rng, 4) == 0 ? (long)test_rng_below(&r->rng, 300)
                                                  : 262144 + (long)test_rng_below(&r->rng, 786432);
    char buf[4096];
    while (!atomic_load(&r->stop) && !atomic_load(&r->blackhole) && budget > 0) {
        struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
        if (poll(p, 2, 50) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(p[i].fd, buf, sizeof buf);
            if (n <= 0) {
                budget = 0;
                break;
            }
            ssize_t off = 0;
            while (off < n) {
                ssize_t w = write(p[i ^ 1].fd, buf + off, (size_t)(n - off));
                if (w <= 0) {
                    budget = 0;
                    break;
                }
                off += w;
            }
            budget -= n;
        }
    }
    atomic_fetch_add(&r->cuts, 1);
    close(a);
    close(b);
}

/* A partition: the connection is made, then every byte either way is
 * dropped until the black hole ends (or a side gives up and closes). */
static void relay_swallow(relay *r, int a)
{
    int b = relay_connect(r->to_port);
    if (b < 0) {
        close(a);
        return;
    }
    char buf[4096];
    bool eof = false;
    while (!atomic_load(&r->stop) && atomic_load(&r->blackhole) && !eof) {
        struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
        if (poll(p, 2, 50) <= 0)
            continue;
        for (int i = 0; i < 2 && !eof; i++)
            if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                read(p[i].fd, buf, sizeof buf) <= 0)
                eof = true;
    }
    atomic_fetch_add(&r->cuts, 1);
    close(a);
    close(b);
}

static void *relay_main(void *arg)
{
    relay *r = arg;
    while (!atomic_load(&r->stop)) {
        struct pollfd p = {r->listen_fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int a = accept(r->listen_fd, NULL, NULL);
        if (a >= 0 && atomic_load(&r->blackhole))
            relay_swallow(r, a);
        else if (a >= 0)
            relay_session(r, a);
    }
    return NULL;
}

/* ---- the check on node B ------------------------------------------------- */

typedef struct counter {
    int64_t next;
    tr_ref report;
} counter;

static int counter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    counter *c = state;
    int64_t v;
    if (tr_msg_is(m, "report")) {
        c->report = test_read_ref(m);
        return 0;
    }
    CHECK_OK(tr_msg_int(m, &v));
    if (v != c->next)
        TEST_FAIL("got %lld, expected %lld: lost, duplicated or reordered", (long long)v,
                  (long long)c->next);
    c->next++;
    if (v < 0 || !tr_msg_is(m, "last"))
        return 0;
    return tr_send_int(ctx, c->report, "count", c->next);
}

static const tr_behaviour counter_b = {"counter", sizeof(counter), NULL, counter_handle, NULL,
                                       NULL};

/* Sends from to n-1 to the counter c, the last one tagged "last", and
 * waits for its report: the count of numbers it has seen in order. */
static void load(tr_ctx *ca, tr_ref c, int from, int n)
{
    for (int i = from; i < n - 1; i++) {
        CHECK_OK(tr_send_int(ca, c, "n", i));
        if (i % 1000 == 0)
            test_sleep_ms(1); /* spread the load over many connections */
    }
    CHECK_OK(tr_send_int(ca, c, "last", n - 1));
    tr_msg *m = NULL;
    CHECK_OK(tr_receive(ca, "count", NULL, NULL, 60000, &m));
    int64_t got = 0;
    CHECK_OK(tr_msg_int(m, &got));
    tr_msg_free(m);
    CHECK(got == n);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    uint64_t seed = test_seed(argc, argv);
    relay r = {0};
    test_rng_init(&r.rng, seed);
    int relay_port, b_port;
    r.listen_fd = relay_listen(&relay_port);
    int probe = relay_listen(&b_port); /* a free port for node B */
    close(probe);
    r.to_port = b_port;
    CHECK(pthread_create(&r.thread, NULL, relay_main, &r) == 0);

    char url_b[64], via[64];
    snprintf(url_b, sizeof url_b, "tcp://127.0.0.1:%d", b_port);
    snprintf(via, sizeof via, "tcp://127.0.0.1:%d", relay_port);

    tr_runtime *ra, *rb;
    tr_runtime_opts oa = TR_RUNTIME_OPTS_INIT, ob = TR_RUNTIME_OPTS_INIT;
    oa.node_name = "a";
    ob.node_name = "b";
    oa.link_detect_ms = ob.link_detect_ms = 1000;
    CHECK_OK(tr_runtime_start(&ra, &oa));
    CHECK_OK(tr_runtime_start(&rb, &ob));
    CHECK_OK(tr_listen(rb, url_b));
    uint64_t node_b;
    CHECK_OK(tr_connect(ra, via, TEST_WAIT_MS, &node_b));

    tr_ctx *ca, *cb;
    CHECK_OK(tr_attach(&ca, ra));
    CHECK_OK(tr_attach(&cb, rb));
    tr_ref c;
    CHECK_OK(tr_spawn(&c, cb, &counter_b, NULL, NULL));
    CHECK_OK(tr_send(ca, c, test_msg_ref(ca, "report", tr_self(ca))));

    const int n = (int)test_scale(100000);
    load(ca, c, 0, n);
    printf("%d messages over a link cut %d times\n", n, atomic_load(&r.cuts));
    CHECK(atomic_load(&r.cuts) >= 1);

    /* Silence: each side hears nothing from the other and declares it down. */
    tr_monitor_id mon_a, mon_b;
    CHECK_OK(tr_monitor(cb, tr_self(ca), &mon_a));
    CHECK_OK(tr_monitor(ca, c, &mon_b));
    atomic_store(&r.blackhole, 1);
    tr_reason why = test_wait_down(cb, tr_self(ca));
    CHECK(why.kind == TR_EXIT_NOCONNECTION);
    why = test_wait_down(ca, c);
    CHECK(why.kind == TR_EXIT_NOCONNECTION);
    CHECK_ERR(tr_send_int(ca, c, "n", -1), TR_ENOROUTE);
    tr_counters ka = test_counters(ra);
    printf("both nodes declared the other down after silence\n");

    /* Heal: A dials again by itself; a new session carries the rest. After
     * the partition A's redials are a second apart, a dial may wait out its
     * 5 s timeout, and a quarter of relayed connections die in their
     * handshake: the wait is generous. */
    atomic_store(&r.blackhole, 0);
    uint64_t again;
    CHECK_OK(tr_connect(ra, via, 6 * TEST_WAIT_MS, &again));
    CHECK(again == node_b);
    CHECK_OK(tr_send(ca, c, test_msg_ref(ca, "report", tr_self(ca))));
    load(ca, c, n, 2 * n);
    printf("healed: %d more messages, %d cuts in all\n", n, atomic_load(&r.cuts));
    tr_counters ka2 = test_counters(ra);
    CHECK(ka2.bad_frames == 0 && ka.bad_frames == 0);

    atomic_store(&r.stop, 1);
    tr_detach(ca);
    tr_detach(cb);
    tr_runtime_free(ra);
    tr_runtime_free(rb);
    pthread_join(r.thread, NULL);
    close(r.listen_fd);
    printf("ok\n");
    return 0;
}
