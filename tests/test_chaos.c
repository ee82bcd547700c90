/*
 * test_chaos — a supervision tree under fire.
 *
 * A one_for_one supervisor keeps several permanent process-actor children,
 * each registered by name, each answering "work" (a computation tagged
 * with the request's id) and "pid" requests. Client threads keep requests
 * in flight to the children by name without pause, while a killer thread
 * SIGKILLs a random child's process at random short intervals for a
 * bounded time. Three such rounds run on one runtime. The test checks what
 * users of a supervised service rely on:
 *
 *  - every request is answered exactly once: with the right answer (from
 *    the child it was sent to, for that very request) or with one of the
 *    error codes a crash explains (see request_failure_ok); none hangs;
 *  - every kill is seen by the supervisor as that kill (SIGKILL), and
 *    answered by exactly one restart: the listing shows each child running
 *    with as many restarts as kills hit it, its name follows its newest
 *    incarnation, and it answers again; the supervisor never gives up;
 *  - nothing accumulates: the in-use heap does not grow past a fixed bound
 *    from round to round (three rounds), nor does the list of nodes; once
 *    the tree is stopped and the runtime
 *    freed, no process of ours is left (no actor process, no zombie) and no
 *    file descriptor or runtime file remains.
 *
 * Prints its seed (repeat a run with --seed N) and a summary per round.
 * TR_TEST_QUICK shortens the rounds; under sanitizers every process child
 * is a sanitized runtime too, so fewer children and clients run, shorter.
 */
#include "check.h"
#include "proc_test.h"
#include "troupe_sup.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#if TEST_SANITIZED
/* The sanitizers replace malloc; their allocator reports what is in use. */
size_t __sanitizer_get_current_allocated_bytes(void);
#else
#include <malloc.h>
#endif

#define MAX_CHILDREN 6
#define MAX_CLIENTS 4
#define WINDOW 4      /* requests each client keeps in flight */
#define MAX_SERVERS 8 /* distinct parents of child processes we may see */

/* A request's deadline. A request to a live child is answered in well
 * under a millisecond and one to a dead child fails as soon as its death
 * is known, so only a lost request can reach this: a timeout is a failure
 * of the test, never an acceptable outcome. */
#define REQ_DEADLINE_MS TEST_WAIT_MS

static const char *const child_ids[MAX_CHILDREN] = {"c0", "c1", "c2", "c3", "c4", "c5"};
static const char *const child_names[MAX_CHILDREN] = {"chaos.0", "chaos.1", "chaos.2",
                                                      "chaos.3", "chaos.4", "chaos.5"};

/* ---- the child: runs in a process of its own ------------------------------ */

typedef struct child_state {
    int64_t index; /* which child it is (its spawn argument) */
} child_state;

static int child_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    (void)ctx;
    child_state *s = state;
    if (args == NULL || tr_msg_int(args, &s->index) != TR_OK)
        return TR_EBADMSG;
    return 0;
}

/* The answer a child with this index gives to "work" [id, x]. */
static int64_t work_value(int64_t index, int64_t x) { return x * x + index; }

/* Answers "work" [id, x] with [index, id, x*x + index] and "pid" with
 * [index, pid]. A reply past its deadline is discarded by the runtime,
 * which is no reason for the child to fail, so reply errors are ignored. */
static int child_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    child_state *s = state;
    if (!tr_msg_is_request(m))
        return 0;
    tr_msg *r;
    if (tr_msg_is(m, "work")) {
        tr_cursor c;
        uint32_t n;
        int64_t id, x;
        tr_cursor_init(&c, m);
        if (tr_cursor_array(&c, &n) != TR_OK || n != 2 || tr_cursor_int(&c, &id) != TR_OK ||
            tr_cursor_int(&c, &x) != TR_OK) {
            (void)tr_reply_error(ctx, m, TR_EBADMSG);
            return 0;
        }
        CHECK_OK(tr_msg_new(&r, ctx, "work"));
        CHECK_OK(tr_pack_array(r, 3));
        CHECK_OK(tr_pack_int(r, s->index));
        CHECK_OK(tr_pack_int(r, id));
        CHECK_OK(tr_pack_int(r, work_value(s->index, x)));
    } else if (tr_msg_is(m, "pid")) {
        CHECK_OK(tr_msg_new(&r, ctx, "pid"));
        CHECK_OK(tr_pack_array(r, 2));
        CHECK_OK(tr_pack_int(r, s->index));
        CHECK_OK(tr_pack_int(r, getpid()));
    } else {
        return 0;
    }
    (void)tr_reply(ctx, m, r);
    return 0;
}

static const tr_behaviour child_beh = {
    "chaos-child", sizeof(child_state), child_init, child_handle, NULL, NULL};

/* ---- configuration -------------------------------------------------------- */

typedef struct config {
    uint32_t nchildren;
    uint32_t nclients;
    uint32_t chaos_ms;    /* how long the killer kills, per round */
    uint32_t kill_gap_ms; /* the killer waits 1..kill_gap_ms before each kill */
} config;

static config config_make(void)
{
    config c;
    if (TEST_SANITIZED) {
        c.nchildren = 3;
        c.nclients = 2;
        c.chaos_ms = test_quick() ? 800 : 2000;
        c.kill_gap_ms = 80;
    } else {
        c.nchildren = 5;
        c.nclients = 3;
        c.chaos_ms = test_quick() ? 1000 : 5000;
        c.kill_gap_ms = 40;
    }
    return c;
}

/* ---- shared state --------------------------------------------------------- */

typedef struct chaos chaos;

typedef struct req_slot {
    struct client *cl;
    uint32_t slot;
    bool busy;      /* sent, its continuation not yet run */
    uint32_t child; /* which child it went to */
    int64_t id;     /* unique over the whole test */
    int64_t x;
} req_slot;

typedef struct client {
    chaos *ch;
    uint32_t index;
    test_rng rng;
    pthread_t thread;
    int64_t seq;
    req_slot slots[WINDOW];
    /* Results of this round (read by main after the join). */
    uint64_t sent;
    uint64_t answered;
    uint64_t failed[TR_ERR_COUNT_]; /* by code; TR_ENOTFOUND counts failed look-ups */
} client;

typedef struct killer {
    chaos *ch;
    test_rng rng;
    pthread_t thread;
    /* Results of this round (read by main after the join). */
    uint32_t kills[MAX_CHILDREN]; /* SIGKILLs delivered to a child's current process */
    uint64_t misses;              /* child between incarnations: no pid to kill */
    int last_pid[MAX_CHILDREN];   /* the last process killed, per child */
} killer;

struct chaos {
    config cfg;
    tr_runtime *rt;
    tr_ref sup;
    atomic_bool stop_clients;
    int64_t killer_end_ms;
    pthread_mutex_t servers_lock;
    int servers[MAX_SERVERS]; /* parents of child processes (the fork server) */
    uint32_t nservers;
    /* Totals over the whole test, kept by main. */
    uint32_t kills[MAX_CHILDREN];
    uint32_t started[MAX_CHILDREN]; /* STARTED events */
    uint32_t exited[MAX_CHILDREN];  /* EXITED events */
    tr_ref current[MAX_CHILDREN];   /* the newest incarnation, by its STARTED event */
    int last_killed_pid[MAX_CHILDREN];
};

/* ---- process facts from /proc --------------------------------------------- */

typedef struct proc_info {
    int pid, ppid;
    char state;
    char comm[32];
} proc_info;

/* Reads /proc/pid/stat; false when the process is gone. */
static bool proc_read(int pid, proc_info *out)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses. */
    char *open = strchr(buf, '(');
    char *close = strrchr(buf, ')');
    if (open == NULL || close == NULL || close < open)
        return false;
    size_t len = (size_t)(close - open - 1);
    if (len >= sizeof out->comm)
        len = sizeof out->comm - 1;
    memcpy(out->comm, open + 1, len);
    out->comm[len] = '\0';
    out->pid = pid;
    return sscanf(close + 1, " %c %d", &out->state, &out->ppid) == 2;
}

/* Every process on the machine; the caller frees *out. */
static size_t proc_list(proc_info **out)
{
    size_t n = 0, cap = 256;
    proc_info *v = malloc(cap * sizeof *v);
    CHECK(v != NULL);
    DIR *d = opendir("/proc");
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        if (n == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof *v);
            CHECK(v != NULL);
        }
        if (proc_read(atoi(e->d_name), &v[n]))
            n++;
    }
    closedir(d);
    *out = v;
    return n;
}

/* Notes the parent of a child process: the fork server, which is the one
 * process of ours allowed to outlive a runtime (every runtime of the
 * process shares it, and it lives until the process exits). */
static void note_server(chaos *ch, int child_pid)
{
    proc_info p;
    if (!proc_read(child_pid, &p) || p.ppid == getpid())
        return;
    pthread_mutex_lock(&ch->servers_lock);
    bool known = false;
    for (uint32_t i = 0; i < ch->nservers; i++)
        known = known || ch->servers[i] == p.ppid;
    if (!known && ch->nservers < MAX_SERVERS)
        ch->servers[ch->nservers++] = p.ppid;
    pthread_mutex_unlock(&ch->servers_lock);
}

static bool is_server(const chaos *ch, int pid)
{
    for (uint32_t i = 0; i < ch->nservers; i++)
        if (ch->servers[i] == pid)
            return true;
    return false;
}

/* Fails if any process descends from us other than the fork server
 * itself (alive, not a zombie): no actor process, warm or not, no zombie. */
static void check_no_leftover_processes(const chaos *ch)
{
    proc_info *v;
    size_t n = proc_list(&v);
    bool *ours = calloc(n, sizeof *ours);
    CHECK(ours != NULL);
    int me = getpid();
    for (bool grew = true; grew;) {
        grew = false;
        for (size_t i = 0; i < n; i++) {
            if (ours[i] || v[i].pid == me)
                continue;
            bool parent_ours = v[i].ppid == me;
            for (size_t j = 0; j < n && !parent_ours; j++)
                parent_ours = ours[j] && v[j].pid == v[i].ppid;
            if (parent_ours)
                ours[i] = grew = true;
        }
    }
    int left = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ours[i])
            continue;
        if (v[i].ppid == me && is_server(ch, v[i].pid) && v[i].state != 'Z')
            continue;
        fprintf(stderr, "left behind: pid %d (%s), parent %d, state %c\n", v[i].pid, v[i].comm,
                v[i].ppid, v[i].state);
        left++;
    }
    free(ours);
    free(v);
    CHECK(left == 0);
}

/* Bytes of heap in use now. */
static size_t heap_in_use(void)
{
#if TEST_SANITIZED
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

/* ---- clients ---------------------------------------------------------------- */

/*
 * The outcomes a request may have under chaos besides the right answer,
 * each explained by a crash and each reported at once, never by waiting:
 *  - TR_ENOTFOUND, from the name look-up only: the child's process died
 *    and its new incarnation is not registered yet (nothing was sent);
 *  - TR_ENOACTOR: the reference looked up had exited (the name is released
 *    only as the old incarnation exits), or it died with the request still
 *    queued for it;
 *  - TR_EEXITED: the request was in flight to the process when it died.
 * Anything else fails the test: TR_ETIMEDOUT (a request lost: see
 * REQ_DEADLINE_MS), TR_EFULL (the mailboxes are unbounded), TR_ESTOPPED
 * (nothing stops during the chaos), an error the child never replies
 * with, a wrong or foreign answer.
 */
static bool lookup_failure_ok(tr_err e) { return e == TR_ENOTFOUND; }

static bool request_failure_ok(tr_err e) { return e == TR_ENOACTOR || e == TR_EEXITED; }

static int on_reply(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    (void)state;
    req_slot *s = udata;
    client *cl = s->cl;
    if (!s->busy)
        TEST_FAIL("client %u: a second answer for request %" PRId64, cl->index, s->id);
    if (status == TR_OK) {
        tr_cursor c;
        uint32_t n;
        int64_t index = -1, id = -1, value = -1;
        tr_cursor_init(&c, reply);
        CHECK_OK(tr_cursor_array(&c, &n));
        CHECK(n == 3);
        CHECK_OK(tr_cursor_int(&c, &index));
        CHECK_OK(tr_cursor_int(&c, &id));
        CHECK_OK(tr_cursor_int(&c, &value));
        if (index != s->child || id != s->id || value != work_value(s->child, s->x))
            TEST_FAIL("client %u: request %" PRId64 " to %s answered [%" PRId64 ", %" PRId64
                      ", %" PRId64 "]",
                      cl->index, s->id, child_names[s->child], index, id, value);
        cl->answered++;
    } else if (request_failure_ok(status)) {
        cl->failed[status]++;
    } else {
        TEST_FAIL("client %u: request %" PRId64 " to %s failed with %s", cl->index, s->id,
                  child_names[s->child], tr_err_name(status));
    }
    s->busy = false;
    /* Wakes the client's receive (continuations run inside it). */
    CHECK_OK(tr_send_int(ctx, tr_self(ctx), "done", s->slot));
    return 0;
}

/* Sends a new request from slot s to a random child, looked up by name. */
static void client_issue(tr_ctx *ctx, client *cl, req_slot *s)
{
    chaos *ch = cl->ch;
    s->child = test_rng_below(&cl->rng, ch->cfg.nchildren);
    s->id = ((int64_t)cl->index << 40) | ++cl->seq;
    s->x = test_rng_below(&cl->rng, 1u << 20);
    cl->sent++;
    tr_ref to;
    tr_err e = tr_whereis(&to, ch->rt, child_names[s->child]);
    if (e != TR_OK) {
        if (!lookup_failure_ok(e))
            TEST_FAIL("client %u: looking up %s: %s", cl->index, child_names[s->child],
                      tr_err_name(e));
    } else {
        tr_msg *m;
        CHECK_OK(tr_msg_new(&m, ctx, "work"));
        CHECK_OK(tr_pack_array(m, 2));
        CHECK_OK(tr_pack_int(m, s->id));
        CHECK_OK(tr_pack_int(m, s->x));
        s->busy = true;
        e = tr_request(ctx, to, m, REQ_DEADLINE_MS, on_reply, s);
        if (e == TR_OK)
            return;
        s->busy = false;
        tr_msg_free(m);
        if (!request_failure_ok(e))
            TEST_FAIL("client %u: request %" PRId64 " to %s: %s", cl->index, s->id,
                      child_names[s->child], tr_err_name(e));
    }
    cl->failed[e]++;
}

static uint32_t client_in_flight(const client *cl)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < WINDOW; i++)
        n += cl->slots[i].busy;
    return n;
}

/* Waits for one continuation to have run. Its deadline bounds every
 * request, so a "done" must come well within this. */
static void client_wait_done(tr_ctx *ctx, client *cl)
{
    tr_msg *m = NULL;
    tr_err e = tr_receive(ctx, "done", NULL, NULL, REQ_DEADLINE_MS + TEST_WAIT_MS, &m);
    if (e != TR_OK) {
        for (uint32_t i = 0; i < WINDOW; i++)
            if (cl->slots[i].busy)
                fprintf(stderr, "client %u: request %" PRId64 " to %s never answered\n", cl->index,
                        cl->slots[i].id, child_names[cl->slots[i].child]);
        TEST_FAIL("client %u: waiting for an answer: %s", cl->index, tr_err_name(e));
    }
    tr_msg_free(m);
}

static void *client_main(void *arg)
{
    client *cl = arg;
    tr_ctx *ctx;
    CHECK_OK(tr_attach(&ctx, cl->ch->rt));
    while (!atomic_load(&cl->ch->stop_clients)) {
        for (uint32_t i = 0; i < WINDOW; i++)
            if (!cl->slots[i].busy)
                client_issue(ctx, cl, &cl->slots[i]);
        if (client_in_flight(cl) == 0) {
            test_sleep_ms(1); /* every child between incarnations: let them come back */
            continue;
        }
        client_wait_done(ctx, cl);
    }
    /* Every request gets its answer, also those sent last. */
    while (client_in_flight(cl) > 0)
        client_wait_done(ctx, cl);
    tr_detach(ctx);
    return NULL;
}

/* ---- the killer ------------------------------------------------------------- */

/* Asks child i for its pid by name; 0 when it is between incarnations. */
static int child_pid(tr_ctx *ctx, chaos *ch, uint32_t i)
{
    tr_ref to;
    tr_err e = tr_whereis(&to, ch->rt, child_names[i]);
    if (lookup_failure_ok(e))
        return 0;
    CHECK_OK(e);
    tr_msg *req, *rep = NULL;
    CHECK_OK(tr_msg_new(&req, ctx, "pid"));
    e = tr_call(ctx, to, req, REQ_DEADLINE_MS, &rep);
    if (e != TR_OK) {
        if (!request_failure_ok(e))
            TEST_FAIL("pid of %s: %s", child_names[i], tr_err_name(e));
        return 0;
    }
    tr_cursor c;
    uint32_t n;
    int64_t index, pid;
    tr_cursor_init(&c, rep);
    CHECK_OK(tr_cursor_array(&c, &n));
    CHECK(n == 2);
    CHECK_OK(tr_cursor_int(&c, &index));
    CHECK_OK(tr_cursor_int(&c, &pid));
    tr_msg_free(rep);
    CHECK(index == i && pid > 0 && pid != getpid());
    return (int)pid;
}

static void *killer_main(void *arg)
{
    killer *k = arg;
    chaos *ch = k->ch;
    tr_ctx *ctx;
    CHECK_OK(tr_attach(&ctx, ch->rt));
    while (test_now_ms() < ch->killer_end_ms) {
        test_sleep_ms(1 + (int)test_rng_below(&k->rng, ch->cfg.kill_gap_ms));
        uint32_t i = test_rng_below(&k->rng, ch->cfg.nchildren);
        int pid = child_pid(ctx, ch, i);
        if (pid == 0) {
            k->misses++;
            continue;
        }
        note_server(ch, pid);
        /* The child answered from this process just now and only we kill
         * children, so it is the child's current process: a kill that
         * succeeds is one the supervisor must see. */
        if (kill(pid, SIGKILL) == 0) {
            k->kills[i]++;
            k->last_pid[i] = pid;
        } else {
            TEST_FAIL("kill(%d) of %s: %s (it answered a moment ago)", pid, child_names[i],
                      strerror(errno));
        }
    }
    tr_detach(ctx);
    return NULL;
}

/* ---- supervisor events ------------------------------------------------------ */

static int child_of_id(const chaos *ch, const char *id)
{
    for (uint32_t i = 0; i < ch->cfg.nchildren; i++)
        if (strcmp(child_ids[i], id) == 0)
            return (int)i;
    TEST_FAIL("event about unknown child '%s'", id);
}

static bool match_sup_event(const tr_msg *m, void *udata)
{
    return tr_msg_is(m, TR_SUP_TAG_EVENT) && tr_ref_eq(tr_msg_from(m), *(const tr_ref *)udata);
}

/* Takes one event of the supervisor (waiting up to timeout_ms) and
 * accounts for it; false when none came. Under chaos only two kinds may
 * happen: a child exited, killed by our SIGKILL, and it was started
 * again. */
static bool take_event(chaos *ch, tr_ctx *ctx, int32_t timeout_ms)
{
    tr_msg *m = NULL;
    tr_err e = tr_receive(ctx, TR_SUP_TAG_EVENT, match_sup_event, &ch->sup, timeout_ms, &m);
    if (e == TR_ETIMEDOUT)
        return false;
    CHECK_OK(e);
    tr_sup_event ev;
    CHECK_OK(tr_sup_event_info(&ev, m));
    tr_msg_free(m);
    int i = child_of_id(ch, ev.id);
    switch (ev.kind) {
    case TR_SUP_EV_EXITED:
        if (ev.reason.kind != TR_EXIT_SIGNAL || ev.reason.code != SIGKILL)
            TEST_FAIL("%s exited with %s %d '%s', not by our SIGKILL", ev.id,
                      tr_exit_kind_name(ev.reason.kind), ev.reason.code, ev.reason.text);
        CHECK(tr_ref_eq(ev.child, ch->current[i]));
        ch->exited[i]++;
        if (ch->exited[i] > ch->kills[i])
            TEST_FAIL("%s exited %u times but was killed %u times", ev.id, ch->exited[i],
                      ch->kills[i]);
        break;
    case TR_SUP_EV_STARTED:
        CHECK(!tr_ref_eq(ev.child, ch->current[i]));
        CHECK(ev.restarts == ch->started[i]);
        ch->current[i] = ev.child;
        ch->started[i]++;
        if (ch->started[i] > ch->exited[i] + 1)
            TEST_FAIL("%s started %u times after %u exits", ev.id, ch->started[i], ch->exited[i]);
        break;
    default:
        TEST_FAIL("unexpected event %s '%s' (%s %d %s)", tr_sup_event_name(ev.kind), ev.id,
                  tr_exit_kind_name(ev.reason.kind), ev.reason.code, ev.reason.text);
    }
    return true;
}

/* Waits until the supervisor has reported, for every child, one exit and
 * one restart per kill, then checks that nothing else happened and that
 * its listing says the same. */
static void settle(chaos *ch, tr_ctx *ctx)
{
    for (uint32_t i = 0; i < ch->cfg.nchildren; i++)
        while (ch->exited[i] < ch->kills[i] || ch->started[i] < ch->kills[i] + 1)
            if (!take_event(ch, ctx, TEST_WAIT_MS))
                TEST_FAIL("%s: killed %u times, %u exits and %u starts reported", child_ids[i],
                          ch->kills[i], ch->exited[i], ch->started[i]);

    tr_sup_child_info *kids;
    uint32_t n;
    CHECK_OK(tr_sup_which_children(&kids, &n, ctx, ch->sup, TEST_WAIT_MS));
    /* A supervisor sends its events before it answers: whatever else it
     * did is queued now, and nothing else may have happened. */
    while (take_event(ch, ctx, 0))
        ;
    CHECK(n == ch->cfg.nchildren);
    for (uint32_t i = 0; i < n; i++) {
        const tr_sup_child_info *k = &kids[i];
        CHECK(strcmp(k->id, child_ids[i]) == 0);
        if (k->state != TR_SUP_CHILD_RUNNING || k->restarts != ch->kills[i])
            TEST_FAIL("%s is %s with %u restarts after %u kills", k->id,
                      tr_sup_child_state_name(k->state), k->restarts, ch->kills[i]);
        CHECK(tr_ref_eq(k->ref, ch->current[i]));
        if (ch->kills[i] > 0)
            CHECK(k->exited && k->last_exit.kind == TR_EXIT_SIGNAL && k->last_exit.code == SIGKILL);
        /* Its name follows it, and it answers. */
        tr_ref named;
        CHECK_OK(tr_whereis(&named, ch->rt, child_names[i]));
        CHECK(tr_ref_eq(named, k->ref));
        tr_msg *req, *rep = NULL;
        CHECK_OK(tr_msg_new(&req, ctx, "work"));
        CHECK_OK(tr_pack_array(req, 2));
        CHECK_OK(tr_pack_int(req, -1 - (int64_t)i));
        CHECK_OK(tr_pack_int(req, 1000 + (int64_t)i));
        CHECK_OK(tr_call(ctx, named, req, REQ_DEADLINE_MS, &rep));
        tr_cursor c;
        uint32_t len;
        int64_t index, id, value;
        tr_cursor_init(&c, rep);
        CHECK_OK(tr_cursor_array(&c, &len));
        CHECK_OK(tr_cursor_int(&c, &index));
        CHECK_OK(tr_cursor_int(&c, &id));
        CHECK_OK(tr_cursor_int(&c, &value));
        tr_msg_free(rep);
        CHECK(len == 3 && index == i && id == -1 - (int64_t)i &&
              value == work_value(i, 1000 + (int64_t)i));
        int pid = child_pid(ctx, ch, i);
        CHECK(pid > 0 && pid != ch->last_killed_pid[i]);
        note_server(ch, pid);
    }
    tr_sup_children_free(kids);

    /* The supervisor never gave up: no DOWN from our monitor on it. */
    tr_msg *down = NULL;
    CHECK_ERR(tr_receive(ctx, TR_TAG_DOWN, NULL, NULL, 0, &down), TR_ETIMEDOUT);
}

/* ---- a round ------------------------------------------------------------------ */

static void round_run(chaos *ch, tr_ctx *ctx, int round, uint64_t seed)
{
    client clients[MAX_CLIENTS];
    killer k;
    memset(clients, 0, sizeof clients);
    memset(&k, 0, sizeof k);
    atomic_store(&ch->stop_clients, false);
    for (uint32_t i = 0; i < ch->cfg.nclients; i++) {
        clients[i].ch = ch;
        clients[i].index = (uint32_t)round * MAX_CLIENTS + i;
        test_rng_init(&clients[i].rng, seed + clients[i].index + 1);
        for (uint32_t s = 0; s < WINDOW; s++) {
            clients[i].slots[s].cl = &clients[i];
            clients[i].slots[s].slot = s;
        }
        CHECK(pthread_create(&clients[i].thread, NULL, client_main, &clients[i]) == 0);
    }
    k.ch = ch;
    test_rng_init(&k.rng, seed ^ (0x9e37u * (uint64_t)(round + 1)));
    ch->killer_end_ms = test_now_ms() + ch->cfg.chaos_ms;
    CHECK(pthread_create(&k.thread, NULL, killer_main, &k) == 0);
    CHECK(pthread_join(k.thread, NULL) == 0);
    atomic_store(&ch->stop_clients, true);
    uint64_t sent = 0, answered = 0, failed[TR_ERR_COUNT_] = {0};
    for (uint32_t i = 0; i < ch->cfg.nclients; i++) {
        CHECK(pthread_join(clients[i].thread, NULL) == 0);
        sent += clients[i].sent;
        answered += clients[i].answered;
        uint64_t done = clients[i].answered;
        for (int e = 0; e < TR_ERR_COUNT_; e++) {
            failed[e] += clients[i].failed[e];
            done += clients[i].failed[e];
        }
        /* Each request it made came back once, one way or the other. */
        CHECK(done == clients[i].sent);
        CHECK(clients[i].answered > 0);
    }
    uint32_t kills = 0;
    for (uint32_t i = 0; i < ch->cfg.nchildren; i++) {
        ch->kills[i] += k.kills[i];
        kills += k.kills[i];
        if (k.kills[i] > 0)
            ch->last_killed_pid[i] = k.last_pid[i];
    }
    CHECK(kills > 0);

    settle(ch, ctx);

    printf("round %d: %u kills (", round, kills);
    for (uint32_t i = 0; i < ch->cfg.nchildren; i++)
        printf("%s%s %u", i ? ", " : "", child_ids[i], k.kills[i]);
    printf("), %" PRIu64 " look-ups found no pid to kill; restarts so far:", k.misses);
    for (uint32_t i = 0; i < ch->cfg.nchildren; i++)
        printf(" %u", ch->kills[i]);
    printf("\nround %d: %" PRIu64 " requests: %" PRIu64 " answered", round, sent, answered);
    for (int e = 0; e < TR_ERR_COUNT_; e++)
        if (failed[e] > 0)
            printf(", %" PRIu64 " %s", failed[e], tr_err_name((tr_err)e));
    printf("\n");
    fflush(stdout);
}

/* ---- the tree ------------------------------------------------------------------ */

static uint8_t child_args[MAX_CHILDREN][16];

static void tree_start(chaos *ch, tr_ctx *ctx, tr_sup_child_spec *kids, tr_sup_spec *spec)
{
    for (uint32_t i = 0; i < ch->cfg.nchildren; i++) {
        tr_msg *m;
        CHECK_OK(tr_msg_new(&m, ctx, "args"));
        CHECK_OK(tr_pack_int(m, i));
        size_t len;
        const uint8_t *p = tr_msg_payload(m, &len);
        CHECK(len <= sizeof child_args[i]);
        memcpy(child_args[i], p, len);
        tr_msg_free(m);
        tr_sup_child_spec s = TR_SUP_CHILD_SPEC_INIT;
        s.id = child_ids[i];
        s.behaviour = &child_beh;
        s.args = child_args[i];
        s.args_len = len;
        s.spawn.kind = TR_PROCESS;
        s.spawn.name = child_names[i];
        s.restart = TR_SUP_PERMANENT;
        s.shutdown_ms = TEST_WAIT_MS; /* the children stop when told */
        kids[i] = s;
    }
    *spec = (tr_sup_spec)TR_SUP_SPEC_INIT;
    spec->strategy = TR_SUP_ONE_FOR_ONE;
    /* Far more than the killer can cause in a period (it kills one child
     * at a time, a few hundred a second at most): it must never give up. */
    spec->intensity = 100000;
    spec->period_ms = 1000;
    spec->children = kids;
    spec->nchildren = ch->cfg.nchildren;
    spec->events = tr_self(ctx);
    CHECK_OK(tr_sup_start(&ch->sup, ctx, spec, NULL));
    tr_monitor_id mon;
    CHECK_OK(tr_monitor(ctx, ch->sup, &mon));
    for (uint32_t i = 0; i < ch->cfg.nchildren; i++)
        while (ch->started[i] == 0)
            if (!take_event(ch, ctx, TEST_WAIT_MS))
                TEST_FAIL("%s did not start", child_ids[i]);
}

/* Stops the tree: every child stopped in reverse order, by the shutdown
 * signal (they do not trap it), then the supervisor; their processes are
 * gone. */
static void tree_stop(chaos *ch, tr_ctx *ctx)
{
    int pids[MAX_CHILDREN];
    for (uint32_t i = 0; i < ch->cfg.nchildren; i++)
        CHECK((pids[i] = child_pid(ctx, ch, i)) > 0);
    tr_reason shut = tr_reason_make(TR_EXIT_SHUTDOWN, 0, "chaos over");
    CHECK_OK(tr_exit(ctx, ch->sup, &shut));
    for (uint32_t n = ch->cfg.nchildren; n-- > 0;) {
        tr_msg *m = NULL;
        CHECK_OK(tr_receive(ctx, TR_SUP_TAG_EVENT, match_sup_event, &ch->sup, TEST_WAIT_MS, &m));
        tr_sup_event ev;
        CHECK_OK(tr_sup_event_info(&ev, m));
        tr_msg_free(m);
        if (ev.kind != TR_SUP_EV_STOPPED || strcmp(ev.id, child_ids[n]) != 0 ||
            ev.reason.kind != TR_EXIT_SHUTDOWN)
            TEST_FAIL("stopping: event %s '%s' (%s %d %s), expected %s stopped by shutdown",
                      tr_sup_event_name(ev.kind), ev.id, tr_exit_kind_name(ev.reason.kind),
                      ev.reason.code, ev.reason.text, child_ids[n]);
        /* A process child's stop is reported once its process is reaped. */
        CHECK(kill(pids[n], 0) != 0 && errno == ESRCH);
    }
    tr_msg *m = NULL;
    CHECK_OK(tr_receive(ctx, TR_TAG_DOWN, NULL, NULL, TEST_WAIT_MS, &m));
    tr_ref who;
    tr_reason why;
    CHECK_OK(tr_msg_down_info(m, &who, NULL, &why));
    tr_msg_free(m);
    CHECK(tr_ref_eq(who, ch->sup) && why.kind == TR_EXIT_SHUTDOWN);
}

/* Runs one runtime with one process actor: the process-wide parts the
 * first runtime sets up and every later one shares (the fork server and
 * its sockets, nng's own threads and descriptors) then exist, so what the
 * chaos runtime leaves behind can be measured against a steady base. */
static void warm_up(void)
{
    tr_ctx *ctx;
    tr_runtime *rt = test_start(2, &ctx);
    tr_spawn_opts o = TR_SPAWN_OPTS_INIT;
    o.kind = TR_PROCESS;
    tr_msg *args;
    CHECK_OK(tr_msg_new(&args, ctx, "args"));
    CHECK_OK(tr_pack_int(args, 0));
    tr_ref p;
    CHECK_OK(tr_spawn(&p, ctx, &child_beh, args, &o));
    tr_msg *req, *rep = NULL;
    CHECK_OK(tr_msg_new(&req, ctx, "pid"));
    CHECK_OK(tr_call(ctx, p, req, TEST_WAIT_MS, &rep));
    tr_msg_free(rep);
    test_finish(rt, ctx);
}

int main(int argc, char **argv)
{
    uint64_t seed = test_seed(argc, argv);
    /* A private temporary directory, so the test can see what is left. */
    char tmpdir[] = "/tmp/troupe-chaos-XXXXXX";
    CHECK(mkdtemp(tmpdir) != NULL);
    setenv("TMPDIR", tmpdir, 1);
    signal(SIGPIPE, SIG_IGN);

    static chaos ch;
    ch.cfg = config_make();
    pthread_mutex_init(&ch.servers_lock, NULL);
    printf("chaos: %u process children, %u clients (%u requests in flight each), %u ms of "
           "kills per round, a kill every 1..%u ms\n",
           ch.cfg.nchildren, ch.cfg.nclients, WINDOW, ch.cfg.chaos_ms, ch.cfg.kill_gap_ms);
    fflush(stdout);

    warm_up();
    int fds_before = count_fds();

    tr_runtime_opts opts = TR_RUNTIME_OPTS_INIT;
    opts.workers = 2;
    CHECK_OK(tr_runtime_start(&ch.rt, &opts));
    tr_ctx *ctx;
    CHECK_OK(tr_attach(&ctx, ch.rt));
    tr_sup_child_spec kids[MAX_CHILDREN];
    tr_sup_spec spec;
    tree_start(&ch, ctx, kids, &spec);

    /* Round 1 brings every cache, table and free list to its working size;
     * rounds 2 and 3 do the same work again and must not need more. */
    round_run(&ch, ctx, 1, seed);
    size_t heap[3], nodes[3];
    heap[0] = heap_in_use();
    CHECK_OK(tr_nodes(ch.rt, NULL, 0, &nodes[0]));
    for (int r = 1; r < 3; r++) {
        round_run(&ch, ctx, r + 1, seed);
        heap[r] = heap_in_use();
        CHECK_OK(tr_nodes(ch.rt, NULL, 0, &nodes[r]));
    }
    printf("heap in use after rounds 1, 2, 3: %zu, %zu, %zu bytes; nodes known: %zu, %zu, %zu\n",
           heap[0], heap[1], heap[2], nodes[0], nodes[1], nodes[2]);
    fflush(stdout);
    /*
     * The bound. Each round serves as many requests and restarts as the
     * one before, with the same children and client threads, so what grows
     * with the work shows in both later rounds, while a cache that only
     * reached a new high-water mark (a backlog that happened to be deeper
     * once: the message pool keeps what it allocated) shows in one. So the
     * smaller of the two growths must stay under the bound. Without kills
     * two rounds differ by less than 16 KiB here; 128 KiB leaves room for
     * that and still catches a few bytes per request (tens of thousands of
     * them) or about a kilobyte per restart (over a hundred of them in a
     * full plain run).
     */
    const size_t bound = 128u << 10;
    size_t grew[2];
    for (int r = 0; r < 2; r++)
        grew[r] = heap[r + 1] > heap[r] ? heap[r + 1] - heap[r] : 0;
    size_t least = grew[0] < grew[1] ? grew[0] : grew[1];
    bool heap_grew = least > bound; /* reported last: the checks below run first */
    CHECK(nodes[2] == nodes[0]);    /* ended children's nodes are forgotten */

    tree_stop(&ch, ctx);
    tr_detach(ctx);
    CHECK_OK(tr_runtime_stop(ch.rt, TR_STOP_DRAIN));
    tr_runtime_free(ch.rt);

    CHECK(ch.nservers > 0);
    check_no_leftover_processes(&ch);
    int fds_after = count_fds();
    if (fds_after != fds_before)
        TEST_FAIL("%d descriptors open before the runtime, %d after it was freed", fds_before,
                  fds_after);
    CHECK(count_entries(tmpdir) == 0); /* the runtime's directory is gone */
    CHECK(rmdir(tmpdir) == 0);
    pthread_mutex_destroy(&ch.servers_lock);
    if (heap_grew)
        TEST_FAIL("the heap grew by %zu then %zu bytes over rounds 2 and 3 (bound %zu)", grew[0],
                  grew[1], bound);
    printf("chaos: ok\n");
    return 0;
}
