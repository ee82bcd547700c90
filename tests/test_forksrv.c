/*
 * test_forksrv.c — checks runtime/forksrv.c, the fork server that forks,
 * reaps and reports process actors.
 *
 * Every server is started while the test is still single-threaded, as a
 * runtime must. The test checks that each way a child can end — returning
 * from its entry, _exit(7), a SIGSEGV, a SIGKILL sent through the server —
 * is reported once with its raw wait status; that the argument arrives
 * intact; that 200 children spawned from 4 threads at once give exactly
 * 200 exit events with distinct pids and leave no zombie; that kill refuses
 * processes that are not the server's live children; and that nothing
 * outlives a server: not when it is stopped, not when the process that
 * started it dies, and not when the server itself is killed outright.
 *
 * The test makes itself a child subreaper, so that processes orphaned by
 * those deaths come back to it and it can see whether any remain.
 */
#include "check.h"
#include "forksrv.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>

#define THREADS 4
#define PER_THREAD 50
#define CONCURRENT (THREADS * PER_THREAD)

/* ------------------------------------------------------------------------ */
/* What children run                                                         */
/* ------------------------------------------------------------------------ */

static void entry_return(const void *arg, size_t len, int fd) {}

static void entry_exit7(const void *arg, size_t len, int fd) { _exit(7); }

/* Dies of SIGSEGV with the default action: a sanitizer's handler would
 * otherwise turn the signal into an ordinary exit. No core file. */
static void entry_segv(const void *arg, size_t len, int fd)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
    _exit(99);
}

static void entry_sleep(const void *arg, size_t len, int fd)
{
    for (;;)
        pause();
}

static uint8_t arg_byte(size_t i) { return (uint8_t)(i * 31 + 7); }

/* Exits 0 when it got the full-size argument intact, aligned, and no fd. */
static void entry_check_arg(const void *arg, size_t len, int fd)
{
    const uint8_t *b = arg;
    if (b == NULL || len != FORKSRV_ARG_MAX || fd != -1 ||
        (uintptr_t)arg % _Alignof(max_align_t) != 0)
        _exit(3);
    for (size_t i = 0; i < len; i++) {
        if (b[i] != arg_byte(i))
            _exit(4);
    }
}

/* Exits 0 when it got no argument. */
static void entry_check_empty(const void *arg, size_t len, int fd)
{
    if (arg != NULL || len != 0 || fd != -1)
        _exit(3);
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static int spawn(struct forksrv *fs, forksrv_entry_fn entry)
{
    int pid = 0;
    CHECK_OK(tr__forksrv_spawn(fs, entry, NULL, 0, &pid));
    CHECK(pid > 0);
    return pid;
}

/* The next exit event, which must be pid's; returns its wait status. */
static int wait_exit(struct forksrv *fs, int pid)
{
    int got = 0, status = 0;
    CHECK_OK(tr__forksrv_next_exit(fs, &got, &status, TEST_WAIT_MS));
    CHECK(got == pid);
    return status;
}

static bool pid_gone(int pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

/* Reaps pid, a child of this process that must end soon; returns its
 * status. */
static int reap_soon(int pid)
{
    int status = 0;
    pid_t r = 0;
    WAIT_UNTIL((r = waitpid(pid, &status, WNOHANG)) != 0);
    CHECK(r == pid);
    return status;
}

/* How many processes, zombies included, have ppid as their parent. */
static int count_children(int ppid)
{
    int n = 0;
    DIR *d = opendir("/proc");
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue; /* it exited meanwhile */
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        /* "pid (comm) state ppid ...": comm may hold anything, even ')'. */
        char *close_paren = strrchr(buf, ')');
        char state;
        int parent;
        if (close_paren != NULL && sscanf(close_paren + 1, " %c %d", &state, &parent) == 2 &&
            parent == ppid)
            n++;
    }
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void test_bad_arguments(struct forksrv *fs)
{
    static uint8_t big[FORKSRV_ARG_MAX + 1];
    int pid = 0, status = 0;
    CHECK_ERR(tr__forksrv_start(NULL), TR_EINVAL);
    CHECK_ERR(tr__forksrv_spawn(NULL, entry_return, NULL, 0, &pid), TR_EINVAL);
    CHECK_ERR(tr__forksrv_spawn(fs, NULL, NULL, 0, &pid), TR_EINVAL);
    CHECK_ERR(tr__forksrv_spawn(fs, entry_return, NULL, 0, NULL), TR_EINVAL);
    CHECK_ERR(tr__forksrv_spawn(fs, entry_return, NULL, 1, &pid), TR_EINVAL);
    CHECK_ERR(tr__forksrv_spawn(fs, entry_return, big, sizeof big, &pid), TR_ETOOBIG);
    CHECK_ERR(tr__forksrv_next_exit(NULL, &pid, &status, 0), TR_EINVAL);
    CHECK_ERR(tr__forksrv_next_exit(fs, NULL, &status, 0), TR_EINVAL);
    CHECK_ERR(tr__forksrv_kill(NULL, 1, 0), TR_EINVAL);
    CHECK(tr__forksrv_event_fd(fs) >= 0);
    CHECK(tr__forksrv_pid(fs) > 0);
    tr__forksrv_stop(NULL);
    /* Nothing was spawned. */
    CHECK_ERR(tr__forksrv_next_exit(fs, &pid, &status, 0), TR_ETIMEDOUT);
}

static void test_exit_statuses(struct forksrv *fs)
{
    int status = wait_exit(fs, spawn(fs, entry_return));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    status = wait_exit(fs, spawn(fs, entry_exit7));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);

    status = wait_exit(fs, spawn(fs, entry_segv));
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);

    status = wait_exit(fs, spawn(fs, entry_check_empty));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    uint8_t *arg = malloc(FORKSRV_ARG_MAX);
    CHECK(arg != NULL);
    for (size_t i = 0; i < FORKSRV_ARG_MAX; i++)
        arg[i] = arg_byte(i);
    int pid = 0;
    CHECK_OK(tr__forksrv_spawn(fs, entry_check_arg, arg, FORKSRV_ARG_MAX, &pid));
    free(arg); /* the child has its own copy */
    status = wait_exit(fs, pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_kill(struct forksrv *fs)
{
    int pid = spawn(fs, entry_sleep);
    int got = 0, status = 0;
    CHECK_ERR(tr__forksrv_next_exit(fs, &got, &status, 0), TR_ETIMEDOUT);
    CHECK_ERR(tr__forksrv_next_exit(fs, &got, &status, 50), TR_ETIMEDOUT);
    CHECK_OK(tr__forksrv_kill(fs, pid, 0)); /* alive */

    /* Only the server's own live children, and only real signals. */
    CHECK_ERR(tr__forksrv_kill(fs, getpid(), 0), TR_ENOACTOR);
    CHECK_ERR(tr__forksrv_kill(fs, tr__forksrv_pid(fs), 0), TR_ENOACTOR);
    CHECK_ERR(tr__forksrv_kill(fs, 0, 0), TR_ENOACTOR);
    CHECK_ERR(tr__forksrv_kill(fs, -1, 0), TR_ENOACTOR);
    CHECK_ERR(tr__forksrv_kill(fs, pid, -1), TR_EINVAL);
    CHECK_ERR(tr__forksrv_kill(fs, pid, NSIG), TR_EINVAL);

    CHECK_OK(tr__forksrv_kill(fs, pid, SIGKILL));
    status = wait_exit(fs, pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* Reported, hence reaped: no longer the server's child. */
    CHECK_ERR(tr__forksrv_kill(fs, pid, SIGKILL), TR_ENOACTOR);
}

/* Stopping a server kills and reaps the child it still has — also while
 * a server started after it (which, like its children, holds copies of
 * the first one's descriptors) lives on. */
static void test_stop_kills_children(void)
{
    struct forksrv *fs = NULL, *later = NULL;
    CHECK_OK(tr__forksrv_start(&fs));
    CHECK_OK(tr__forksrv_start(&later));
    int server = tr__forksrv_pid(fs);
    int pid = spawn(fs, entry_sleep);
    int later_pid = spawn(later, entry_sleep);
    tr__forksrv_stop(fs);
    CHECK(pid_gone(server));
    CHECK(pid_gone(pid));

    CHECK_OK(tr__forksrv_kill(later, later_pid, 0)); /* unaffected */
    server = tr__forksrv_pid(later);
    tr__forksrv_stop(later);
    CHECK(pid_gone(server));
    CHECK(pid_gone(later_pid));
}

/* A server whose starter dies without stopping it kills and reaps its
 * children and exits. */
static void test_parent_death(void)
{
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    pid_t starter = fork();
    CHECK(starter >= 0);
    if (starter == 0) {
        struct forksrv *fs = NULL;
        int pids[2] = {0, 0};
        if (tr__forksrv_start(&fs) == TR_OK) {
            pids[0] = tr__forksrv_pid(fs);
            tr__forksrv_spawn(fs, entry_sleep, NULL, 0, &pids[1]);
        }
        if (write(pipefd[1], pids, sizeof pids) != (ssize_t)sizeof pids)
            _exit(1);
        kill(getpid(), SIGKILL); /* dies without a word to the server */
        _exit(1);
    }
    close(pipefd[1]);
    int pids[2] = {0, 0};
    CHECK(read(pipefd[0], pids, sizeof pids) == (ssize_t)sizeof pids);
    close(pipefd[0]);
    CHECK(pids[0] > 0 && pids[1] > 0);
    int status = reap_soon(starter);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* The orphaned server comes back to this subreaper once it exits. */
    status = reap_soon(pids[0]);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(pid_gone(pids[1]));
}

/* A server killed outright cannot reap, but its children die with it, and
 * the client reports the server gone. */
static void test_server_killed(void)
{
    struct forksrv *fs = NULL;
    CHECK_OK(tr__forksrv_start(&fs));
    int server = tr__forksrv_pid(fs);
    int pid = spawn(fs, entry_sleep);
    CHECK(kill(server, SIGKILL) == 0);
    int status = reap_soon(server);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* The orphan comes to this subreaper, killed by its death signal. */
    status = reap_soon(pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    int got = 0;
    CHECK_ERR(tr__forksrv_spawn(fs, entry_return, NULL, 0, &got), TR_ESTOPPED);
    CHECK_ERR(tr__forksrv_kill(fs, pid, SIGKILL), TR_ESTOPPED);
    CHECK_ERR(tr__forksrv_next_exit(fs, &got, &status, TEST_WAIT_MS), TR_ESTOPPED);
    struct pollfd p = {.fd = tr__forksrv_event_fd(fs), .events = POLLIN};
    CHECK(poll(&p, 1, 0) == 1);
    tr__forksrv_stop(fs); /* the server was reaped above: stop copes */
}

struct spawner {
    struct forksrv *fs;
    int *pids; /* PER_THREAD slots */
};

static void *spawner_run(void *arg)
{
    struct spawner *sp = arg;
    for (int i = 0; i < PER_THREAD; i++)
        CHECK_OK(tr__forksrv_spawn(sp->fs, entry_return, &i, sizeof i, &sp->pids[i]));
    return NULL;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* 200 children spawned from 4 threads while the main thread collects
 * their exits through the event fd. */
static void test_concurrent(struct forksrv *fs)
{
    static int spawned[CONCURRENT], exited[CONCURRENT];
    struct spawner sp[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        sp[t] = (struct spawner){.fs = fs, .pids = &spawned[t * PER_THREAD]};
        CHECK(pthread_create(&th[t], NULL, spawner_run, &sp[t]) == 0);
    }
    for (int n = 0; n < CONCURRENT; n++) {
        struct pollfd p = {.fd = tr__forksrv_event_fd(fs), .events = POLLIN};
        CHECK(poll(&p, 1, TEST_WAIT_MS) == 1);
        int status = 0;
        CHECK_OK(tr__forksrv_next_exit(fs, &exited[n], &status, 0));
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    for (int t = 0; t < THREADS; t++)
        CHECK(pthread_join(th[t], NULL) == 0);

    int got = 0, status = 0;
    CHECK_ERR(tr__forksrv_next_exit(fs, &got, &status, 20), TR_ETIMEDOUT);
    qsort(spawned, CONCURRENT, sizeof spawned[0], cmp_int);
    qsort(exited, CONCURRENT, sizeof exited[0], cmp_int);
    for (int i = 0; i < CONCURRENT; i++) {
        CHECK(spawned[i] == exited[i]);
        CHECK(i == 0 || exited[i] != exited[i - 1]);
    }
    /* Every exit was reported after it was reaped: no child, live or
     * zombie, is left. */
    CHECK(count_children(tr__forksrv_pid(fs)) == 0);
}

int main(void)
{
    /* Before any thread: the fork servers. */
    struct forksrv *fs = NULL;
    CHECK_OK(tr__forksrv_start(&fs));
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);

    test_bad_arguments(fs);
    test_exit_statuses(fs);
    test_kill(fs);
    test_stop_kills_children();
    test_parent_death();
    test_server_killed();
    test_concurrent(fs); /* the first thread starts here */

    int server = tr__forksrv_pid(fs);
    tr__forksrv_stop(fs);
    CHECK(pid_gone(server));
    printf("forksrv: OK\n");
    return 0;
}
