/*
 * xpingpong.c (nng) — the raw nng round trip troupe's xpingpong is held
 * against: two processes with a PAIR1 socket each; the parent sends a
 * 64-byte message carrying a count, the child sends it back with the
 * count plus one, N times. Both sides run on nng's aio API: a send
 * callback arms the receive, a receive callback starts the next send, and
 * the message is reused all the way. Timed from the first send to the
 * last reply; the child listens (setting up is not timed).
 * Usage: nng_xpingpong proc|ipc|tcp N ("proc" runs over ipc)
 */
#include "nngbench.h"

#include <nng/protocol/pair1/pair.h>

typedef struct side {
    nng_socket sock;
    nng_aio *rx, *tx;
    bool client;
    uint64_t rounds; /* client: round trips wanted */
    nb_done done;
} side;

static void on_sent(void *arg)
{
    side *s = arg;
    int rv = nng_aio_result(s->tx);
    if (rv != 0) {
        nng_msg_free(nng_aio_get_msg(s->tx));
        nb_done_set(&s->done, rv);
        return;
    }
    nng_recv_aio(s->sock, s->rx);
}

static void on_received(void *arg)
{
    side *s = arg;
    int rv = nng_aio_result(s->rx);
    if (rv != 0) {
        nb_done_set(&s->done, rv);
        return;
    }
    nng_msg *m = nng_aio_get_msg(s->rx);
    uint64_t v = nb_get(m);
    if (!s->client) {
        nb_put(m, v + 1);
    } else if (v >= s->rounds) {
        nng_msg_free(m);
        nb_done_set(&s->done, 0);
        return;
    }
    nng_aio_set_msg(s->tx, m);
    nng_send_aio(s->sock, s->tx);
}

static void side_open(side *s)
{
    int rv;
    if ((rv = nng_pair1_open(&s->sock)) != 0)
        nb_die("pair1 open", rv);
    if ((rv = nng_aio_alloc(&s->rx, on_received, s)) != 0 ||
        (rv = nng_aio_alloc(&s->tx, on_sent, s)) != 0)
        nb_die("aio alloc", rv);
}

int main(int argc, char **argv)
{
    bool tcp = nb_tcp(argc, argv);
    long n = nb_arg(argc, argv, 2, 20000);
    int up[2], down[2];
    if (pipe(up) != 0 || pipe(down) != 0)
        nb_die("pipe", 0);
    pid_t pid = fork();
    if (pid < 0)
        nb_die("fork", 0);
    static side s = {.done = NB_DONE_INIT};
    char url[256];
    int rv;
    if (pid == 0) { /* the echoing side */
        close(up[0]);
        close(down[1]);
        nng_listener l;
        side_open(&s);
        nb_listen_url(url, sizeof url, tcp);
        if ((rv = nng_listen(s.sock, url, &l, 0)) != 0)
            nb_die("listen", rv);
        nb_bound_url(url, sizeof url, tcp, l);
        nb_write_all(up[1], url, sizeof url);
        nng_recv_aio(s.sock, s.rx);
        char c;
        while (read(down[0], &c, 1) < 0 && errno == EINTR)
            ;
        nng_close(s.sock);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    if (!nb_read_all(up[0], url, sizeof url))
        nb_die("the other process did not start", 0);
    side_open(&s);
    s.client = true;
    s.rounds = (uint64_t)n;
    if ((rv = nng_dial(s.sock, url, NULL, 0)) != 0)
        nb_die("dial", rv);
    nng_msg *m;
    if ((rv = nng_msg_alloc(&m, NB_MSG_SIZE)) != 0)
        nb_die("msg alloc", rv);
    memset(nng_msg_body(m), 0, NB_MSG_SIZE);

    double t0 = nb_now();
    nng_aio_set_msg(s.tx, m);
    nng_send_aio(s.sock, s.tx);
    rv = nb_done_wait(&s.done);
    double secs = nb_now() - t0;
    if (rv != 0)
        nb_die("round trips", rv);

    nng_close(s.sock);
    close(down[1]);
    nb_child_end(pid);
    nb_result("xpingpong", n, secs, "us_per_rt", secs * 1e6 / (double)n, tcp ? "tcp" : "ipc");
    return 0;
}
