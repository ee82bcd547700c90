/*
 * link_test.h — what the node-link tests share: URLs for each transport,
 * and TLS material made afresh for each run by tests/make_test_certs.sh
 * (whose path the test gets as its first argument from meson).
 */
#ifndef TROUPE_TEST_LINK_H
#define TROUPE_TEST_LINK_H

#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The four transports a link runs over. */
enum test_transport {
    T_INPROC,
    T_IPC,
    T_TCP,
    T_TLS,
    T_COUNT
};

static const char *const test_transport_names[T_COUNT] = {"inproc", "ipc", "tcp", "tls+tcp"};

/* A TCP port on 127.0.0.1 that is free now (the kernel picks it). */
static inline int test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    socklen_t len = sizeof sa;
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* A distinct listen URL for transport t: which tells endpoints of one test
 * apart (0, 1, 2, ...). TCP ports are free ones, chosen afresh each call. */
static inline void test_url(char *out, size_t n, enum test_transport t, int which)
{
    int pid = (int)getpid();
    switch (t) {
    case T_INPROC:
        snprintf(out, n, "inproc://troupe-test-%d-%d", pid, which);
        break;
    case T_IPC:
        snprintf(out, n, "ipc:///tmp/troupe-test-%d-%d.sock", pid, which);
        break;
    case T_TCP:
        snprintf(out, n, "tcp://127.0.0.1:%d", test_free_port());
        break;
    default:
        snprintf(out, n, "tls+tcp://127.0.0.1:%d", test_free_port());
        break;
    }
}

/* Removes an ipc:// URL's socket file, if it is one. */
static inline void test_url_cleanup(const char *url)
{
    if (strncmp(url, "ipc://", 6) == 0)
        unlink(url + 6);
}

/* A directory of test certificates. */
typedef struct test_certs {
    char dir[64];
    char path[8][128];
} test_certs;

/* Runs script (make_test_certs.sh) into a fresh temporary directory. */
static inline void test_certs_make(test_certs *c, const char *script)
{
    if (script == NULL)
        TEST_FAIL("usage: give the path of tests/make_test_certs.sh as the first argument");
    snprintf(c->dir, sizeof c->dir, "/tmp/troupe-certs-XXXXXX");
    CHECK(mkdtemp(c->dir) != NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "sh '%s' '%s'", script, c->dir);
    if (system(cmd) != 0)
        TEST_FAIL("%s failed: is the openssl command installed?", cmd);
}

/* Path of file name within the certificate directory (slot 0..7). */
static inline const char *test_cert(test_certs *c, int slot, const char *name)
{
    snprintf(c->path[slot], sizeof c->path[slot], "%s/%s", c->dir, name);
    return c->path[slot];
}

static inline void test_certs_remove(test_certs *c)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
    CHECK(system(cmd) == 0);
}

/* Gives rt the node certificate signed by the test CA (or, when rogue, the
 * one signed by the CA nobody trusts), trusting the test CA. */
static inline void test_set_tls(tr_runtime *rt, test_certs *c, bool rogue)
{
    tr_tls_opts o = TR_TLS_OPTS_INIT;
    o.cert_file = test_cert(c, 0, rogue ? "rogue.pem" : "node.pem");
    o.key_file = test_cert(c, 1, rogue ? "rogue.key" : "node.key");
    o.ca_file = test_cert(c, 2, "ca.pem");
    CHECK_OK(tr_runtime_set_tls(rt, &o));
}

#endif /* TROUPE_TEST_LINK_H */
