/*
 * kv_nodes.c — a key-value service and its client on two nodes.
 *
 * Python lesson: Effective Python item 56 on threads and item 55 ("Use
 * Queue to coordinate work between threads"): one owner of the data, and
 * everyone else asks it through a queue instead of taking a lock. Across
 * processes or hosts Python needs a new tool (multiprocessing managers, a
 * socket server); in troupe the same request/reply works unchanged when
 * the actor that owns the data lives on another node.
 *
 * The program forks into two OS processes before either starts a runtime:
 * the server node listens on a URL, runs a pooled "kv" actor that owns a
 * small table and registers it by name; the client node connects, finds
 * "kv" with tr_whereis_remote and puts, gets and deletes keys with
 * tr_call, exactly as it would locally. Then it stops the server actor,
 * whose node shuts down when it sees it exit.
 *
 * Usage: kv_nodes [--tls DIR] [--secret S] [URL]
 *   default URL: tcp://127.0.0.1:<a free port>, or tls+tcp:// with --tls,
 *   where DIR holds node.pem, node.key and ca.pem (tests/make_test_certs.sh
 *   writes such a directory); both nodes then authenticate each other.
 *   --secret adds a shared secret both nodes must prove they know.
 */
#include <troupe.h>

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    SLOTS = 64,
    KEY_MAX = 31
};

static const char *tls_dir, *secret; /* from the command line */

/* Starts a node named name, with the TLS identity and secret if given. */
static tr_err node_start(tr_runtime **rt, const char *name)
{
    tr_runtime_opts o = TR_RUNTIME_OPTS_INIT;
    o.node_name = name;
    o.secret = secret;
    tr_err err = tr_runtime_start(rt, &o);
    if (err != TR_OK || tls_dir == NULL)
        return err;
    char cert[512], key[512], ca[512];
    snprintf(cert, sizeof cert, "%s/node.pem", tls_dir);
    snprintf(key, sizeof key, "%s/node.key", tls_dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", tls_dir);
    tr_tls_opts t = TR_TLS_OPTS_INIT;
    t.cert_file = cert;
    t.key_file = key;
    t.ca_file = ca;
    return tr_runtime_set_tls(*rt, &t);
}

/* ---- the server actor: owns the table --------------------------------- */

typedef struct kv {
    char keys[SLOTS][KEY_MAX + 1];
    int64_t vals[SLOTS];
} kv;

static int find(const kv *t, const char *k, size_t n)
{
    for (int i = 0; i < SLOTS; i++)
        if (strlen(t->keys[i]) == n && memcmp(t->keys[i], k, n) == 0 && n > 0)
            return i;
    return -1;
}

/* Answers a request with an empty "ok". */
static int reply_ok(tr_ctx *ctx, const tr_msg *m)
{
    tr_msg *r;
    tr_err err = tr_msg_new(&r, ctx, "ok");
    return err == TR_OK ? tr_reply(ctx, m, r) : tr_reply_error(ctx, m, err);
}

static int kv_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    kv *t = state;
    if (tr_msg_is(m, "quit")) {
        tr_stop_self(ctx, NULL);
        return tr_msg_is_request(m) ? reply_ok(ctx, m) : 0;
    }
    tr_cursor c;
    const char *k;
    size_t n;
    uint32_t len = 1;
    int64_t v = 0;
    tr_cursor_init(&c, m);
    bool put = tr_msg_is(m, "put");
    if (put && tr_cursor_array(&c, &len) != TR_OK)
        return tr_reply_error(ctx, m, TR_EBADMSG);
    if (tr_cursor_str(&c, &k, &n) != TR_OK || n > KEY_MAX || (put && len != 2) ||
        (put && tr_cursor_int(&c, &v) != TR_OK))
        return tr_reply_error(ctx, m, TR_EBADMSG);
    int i = find(t, k, n);
    if (put) {
        for (int j = 0; i < 0 && j < SLOTS; j++)
            if (t->keys[j][0] == '\0')
                i = j;
        if (i < 0)
            return tr_reply_error(ctx, m, TR_EFULL);
        memcpy(t->keys[i], k, n);
        t->keys[i][n] = '\0';
        t->vals[i] = v;
        return reply_ok(ctx, m);
    }
    if (i < 0)
        return tr_reply_error(ctx, m, TR_ENOTFOUND);
    v = t->vals[i];
    if (tr_msg_is(m, "del"))
        t->keys[i][0] = '\0';
    tr_msg *r;
    tr_err err = tr_msg_new(&r, ctx, "val");
    if (err == TR_OK && (err = tr_pack_int(r, v)) != TR_OK)
        tr_msg_free(r);
    return err == TR_OK ? tr_reply(ctx, m, r) : tr_reply_error(ctx, m, err);
}

static const tr_behaviour kv_beh = {"kv", sizeof(kv), NULL, kv_handle, NULL, NULL};

/* The server node: listens, runs "kv" until it exits, then stops. */
static int server(const char *url, int ready_fd)
{
    tr_runtime *rt;
    tr_ctx *ctx;
    tr_err err = node_start(&rt, "kv-server");
    if (err == TR_OK && (err = tr_listen(rt, url)) == TR_OK)
        err = tr_attach(&ctx, rt);
    if (err != TR_OK) {
        fprintf(stderr, "server: %s\n", tr_strerror(err));
        return 1;
    }
    tr_spawn_opts so = TR_SPAWN_OPTS_INIT;
    so.name = "kv";
    tr_ref s;
    tr_monitor_id id;
    if ((err = tr_spawn(&s, ctx, &kv_beh, NULL, &so)) == TR_OK)
        err = tr_monitor(ctx, s, &id);
    if (write(ready_fd, "r", 1) != 1 || err != TR_OK)
        return 1;
    close(ready_fd);
    tr_msg *down;
    err = tr_receive(ctx, TR_TAG_DOWN, NULL, NULL, 60000, &down);
    if (err == TR_OK)
        tr_msg_free(down);
    tr_detach(ctx);
    tr_runtime_free(rt);
    return err == TR_OK ? 0 : 1;
}

/* ---- the client node ---------------------------------------------------- */

static tr_err put(tr_ctx *ctx, tr_ref s, const char *k, int64_t v)
{
    tr_msg *m, *r = NULL;
    tr_err err = tr_msg_new(&m, ctx, "put");
    if (err == TR_OK && (err = tr_pack_array(m, 2)) == TR_OK && (err = tr_pack_str(m, k)) == TR_OK)
        err = tr_pack_int(m, v);
    if (err == TR_OK)
        err = tr_call(ctx, s, m, 5000, &r);
    else
        tr_msg_free(m);
    tr_msg_free(r);
    return err;
}

static tr_err get(tr_ctx *ctx, tr_ref s, const char *op, const char *k, int64_t *v)
{
    tr_msg *m, *r = NULL;
    tr_err err = tr_msg_new(&m, ctx, op);
    if (err == TR_OK && (err = tr_pack_str(m, k)) != TR_OK)
        tr_msg_free(m);
    if (err == TR_OK && (err = tr_call(ctx, s, m, 5000, &r)) == TR_OK) {
        err = tr_msg_int(r, v);
        tr_msg_free(r);
    }
    return err;
}

static int client(const char *url)
{
    tr_runtime *rt;
    tr_ctx *ctx;
    uint64_t node;
    tr_ref s;
    tr_err err = node_start(&rt, "kv-client");
    if (err == TR_OK)
        err = tr_attach(&ctx, rt);
    if (err == TR_OK)
        err = tr_connect(rt, url, 5000, &node);
    if (err == TR_OK)
        err = tr_whereis_remote(&s, ctx, node, "kv", 5000);
    if (err != TR_OK) {
        fprintf(stderr, "client: %s\n", tr_strerror(err));
        return 1;
    }
    printf("client: found \"kv\" on node %016llx\n", (unsigned long long)node);
    int bad = 0;
    static const char *const words[] = {"apple", "pear", "plum", "fig"};
    for (int i = 0; i < 4; i++)
        bad |= put(ctx, s, words[i], (int64_t)(i + 1) * 100) != TR_OK;
    int64_t v = 0;
    err = get(ctx, s, "get", "plum", &v);
    printf("get plum -> %lld (%s)\n", (long long)v, tr_err_name(err));
    bad |= err != TR_OK || v != 300;
    err = get(ctx, s, "del", "pear", &v);
    printf("del pear -> %lld (%s)\n", (long long)v, tr_err_name(err));
    bad |= err != TR_OK || v != 200;
    err = get(ctx, s, "get", "pear", &v);
    printf("get pear -> %s\n", tr_err_name(err));
    bad |= err != TR_ENOTFOUND;
    tr_msg *q, *r = NULL;
    if (tr_msg_new(&q, ctx, "quit") == TR_OK && tr_call(ctx, s, q, 5000, &r) != TR_OK)
        bad = 1;
    tr_msg_free(r);
    tr_detach(ctx);
    tr_runtime_free(rt);
    return bad;
}

/* A port nobody listens on right now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int main(int argc, char **argv)
{
    char url[128] = "";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tls") == 0 && i + 1 < argc)
            tls_dir = argv[++i];
        else if (strcmp(argv[i], "--secret") == 0 && i + 1 < argc)
            secret = argv[++i];
        else
            snprintf(url, sizeof url, "%s", argv[i]);
    }
    if (url[0] == '\0')
        snprintf(url, sizeof url, "%s://127.0.0.1:%d", tls_dir != NULL ? "tls+tcp" : "tcp",
                 free_port());
    printf("nodes talk over %s%s\n", url, secret != NULL ? " with a shared secret" : "");
    int ready[2];
    if (pipe(ready) != 0)
        return 1;
    fflush(NULL);
    pid_t pid = fork(); /* before either side starts a runtime */
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(ready[0]);
        _exit(server(url, ready[1]));
    }
    close(ready[1]);
    char c;
    int rc = read(ready[0], &c, 1) == 1 ? client(url) : 1;
    close(ready[0]);
    int status = 0;
    if (rc != 0)
        kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    printf("server node exited with status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}
