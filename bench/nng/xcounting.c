/*
 * xcounting.c (nng) — the raw nng one-way stream troupe's xcounting is
 * held against: the parent PUSHes N 64-byte messages carrying 1..N to the
 * child's PULL socket, then one "get" message (value 0); the child sums
 * the values, and on "get" writes the sum and the count to a pipe, which
 * the parent reads and checks against N(N+1)/2. nng's aio API on both
 * sides: the send callback starts the next send on the same aio (with
 * NNG_OPT_SENDBUF set), the receive callback re-arms itself. Timed from
 * the first send to the sum arriving. Usage: nng_xcounting proc|ipc|tcp N
 * ("proc" runs over ipc)
 */
#include "nngbench.h"

#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#define NB_BUF 1024 /* messages nng may buffer on each side */

typedef struct sender {
    nng_socket sock;
    nng_aio *tx;
    uint64_t next, last; /* next value to send; 0 ("get") after last */
    bool get_sent;
    nb_done done;
} sender;

typedef struct receiver {
    nng_socket sock;
    nng_aio *rx;
    uint64_t sum, count;
    int report_fd;
} receiver;

static void send_next(sender *s)
{
    nng_msg *m;
    int rv = nng_msg_alloc(&m, NB_MSG_SIZE);
    if (rv != 0) {
        nb_done_set(&s->done, rv);
        return;
    }
    memset(nng_msg_body(m), 0, NB_MSG_SIZE);
    if (s->next <= s->last) {
        nb_put(m, s->next++);
    } else {
        s->get_sent = true; /* value 0: the request for the sum */
    }
    nng_aio_set_msg(s->tx, m);
    nng_send_aio(s->sock, s->tx);
}

static void on_sent(void *arg)
{
    sender *s = arg;
    int rv = nng_aio_result(s->tx);
    if (rv != 0) {
        nng_msg_free(nng_aio_get_msg(s->tx));
        nb_done_set(&s->done, rv);
        return;
    }
    if (s->get_sent)
        nb_done_set(&s->done, 0);
    else
        send_next(s);
}

static void on_received(void *arg)
{
    receiver *r = arg;
    int rv = nng_aio_result(r->rx);
    if (rv != 0)
        return; /* closed */
    nng_msg *m = nng_aio_get_msg(r->rx);
    uint64_t v = nb_get(m);
    nng_msg_free(m);
    if (v == 0) {
        uint64_t report[2] = {r->sum, r->count};
        nb_write_all(r->report_fd, report, sizeof report);
    } else {
        r->sum += v;
        r->count++;
    }
    nng_recv_aio(r->sock, r->rx);
}

int main(int argc, char **argv)
{
    bool tcp = nb_tcp(argc, argv);
    long n = nb_arg(argc, argv, 2, 1000000);
    int up[2], down[2];
    if (pipe(up) != 0 || pipe(down) != 0)
        nb_die("pipe", 0);
    pid_t pid = fork();
    if (pid < 0)
        nb_die("fork", 0);
    char url[256];
    int rv;
    if (pid == 0) { /* the counting side */
        static receiver r;
        close(up[0]);
        close(down[1]);
        r.report_fd = up[1];
        nng_listener l;
        if ((rv = nng_pull0_open(&r.sock)) != 0)
            nb_die("pull open", rv);
        if ((rv = nng_socket_set_int(r.sock, NNG_OPT_RECVBUF, NB_BUF)) != 0)
            nb_die("recvbuf", rv);
        if ((rv = nng_aio_alloc(&r.rx, on_received, &r)) != 0)
            nb_die("aio alloc", rv);
        nb_listen_url(url, sizeof url, tcp);
        if ((rv = nng_listen(r.sock, url, &l, 0)) != 0)
            nb_die("listen", rv);
        nb_bound_url(url, sizeof url, tcp, l);
        nb_write_all(up[1], url, sizeof url);
        nng_recv_aio(r.sock, r.rx);
        char c;
        while (read(down[0], &c, 1) < 0 && errno == EINTR)
            ;
        nng_close(r.sock);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    if (!nb_read_all(up[0], url, sizeof url))
        nb_die("the other process did not start", 0);
    static sender s = {.done = NB_DONE_INIT};
    if ((rv = nng_push0_open(&s.sock)) != 0)
        nb_die("push open", rv);
    if ((rv = nng_socket_set_int(s.sock, NNG_OPT_SENDBUF, NB_BUF)) != 0)
        nb_die("sendbuf", rv);
    if ((rv = nng_aio_alloc(&s.tx, on_sent, &s)) != 0)
        nb_die("aio alloc", rv);
    if ((rv = nng_dial(s.sock, url, NULL, 0)) != 0)
        nb_die("dial", rv);
    s.next = 1;
    s.last = (uint64_t)n;

    double t0 = nb_now();
    send_next(&s);
    if ((rv = nb_done_wait(&s.done)) != 0)
        nb_die("send", rv);
    uint64_t report[2];
    if (!nb_read_all(up[0], report, sizeof report))
        nb_die("no sum from the other process", 0);
    double secs = nb_now() - t0;

    uint64_t want = (uint64_t)n * ((uint64_t)n + 1) / 2;
    if (report[0] != want || report[1] != (uint64_t)n) {
        fprintf(stderr,
                "nng bench: wrong result: sum %llu of %llu messages, expected %llu of %ld\n",
                (unsigned long long)report[0], (unsigned long long)report[1],
                (unsigned long long)want, n);
        _exit(1);
    }
    nng_close(s.sock);
    close(down[1]);
    nb_child_end(pid);
    nb_result("xcounting", n, secs, "msgs_per_s", (double)n / secs, tcp ? "tcp" : "ipc");
    return 0;
}
