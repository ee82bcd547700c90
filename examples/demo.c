/*
 * demo.c — troupe at a glance: a supervision tree of pooled, thread and
 * process actors doing real work, in which one process actor dies of a
 * real segfault and comes back while the others keep serving.
 *
 *   demo               supervisor (one_for_one)
 *   ├─ tally           pooled actor: adds up the answers, hands each to the journal
 *   ├─ journal         thread actor: appends a line per answer to a file (blocking I/O)
 *   └─ primes          supervisor (one_for_one)
 *      └─ primes-1..3  process actors: count the primes in a block, in C
 *
 * main is the client: it counts the primes below LIMIT, a block per
 * request, one request in flight per worker. A third of the way in, a
 * corrupted job (a negative block number) reaches primes-2 just ahead of a
 * real request; the worker's C code takes an untested path that writes
 * into a string literal, and the kernel kills the process (SIGSEGV). The request behind
 * it fails with TR_EEXITED, the supervisor starts a new primes-2, and the
 * client finds it by name and asks again. A summary and an orderly stop
 * follow; the exit status is 0 only if every check passed.
 */
#define _GNU_SOURCE /* sigabbrev_np */
#include <troupe.h>
#include <troupe_sup.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum {
    WORKERS = 3,
    BLOCKS = 40,
    BLOCK = 50000,
    VICTIM = 1,
    WAIT_MS = 10000
};
#define LIMIT (BLOCKS * BLOCK)
#define PRIMES_BELOW_LIMIT 148933 /* pi(2,000,000): the answer to check */
#define CORRUPT_BLOCK (-1)
static const char *const worker_name[WORKERS] = {"primes-1", "primes-2", "primes-3"};

/* A message tag [v[0], ..., v[n-1]]; the caller owns *out on TR_OK. */
static tr_err ints_msg(tr_msg **out, tr_ctx *ctx, const char *tag, const int64_t *v, uint32_t n)
{
    tr_err err = tr_msg_new(out, ctx, tag);
    if (err == TR_OK)
        err = tr_pack_array(*out, n);
    for (uint32_t i = 0; err == TR_OK && i < n; i++)
        err = tr_pack_int(*out, v[i]);
    if (err != TR_OK)
        tr_msg_free(*out);
    return err;
}

/* Reads a payload of exactly n integers, as ints_msg writes it. */
static tr_err read_ints(const tr_msg *m, int64_t *v, uint32_t n)
{
    tr_cursor c;
    uint32_t len;
    tr_cursor_init(&c, m);
    tr_err err = tr_cursor_array(&c, &len);
    if (err == TR_OK && len != n)
        err = TR_EBADMSG;
    for (uint32_t i = 0; err == TR_OK && i < n; i++)
        err = tr_cursor_int(&c, &v[i]);
    return err;
}

/* ---- primes-N: a process actor doing CPU work in C ----------------------- */

typedef struct worker {
    int64_t *memo; /* primes per block already counted; -1 = not yet */
} worker;

static int64_t is_prime(int64_t n)
{
    if (n < 2 || (n % 2 == 0 && n != 2))
        return 0;
    for (int64_t d = 3; d * d <= n; d += 2)
        if (n % d == 0)
            return 0;
    return 1;
}

static int worker_init(tr_ctx *ctx, void *state, const tr_msg *args)
{
    worker *w = state;
    /* Sanitizer builds catch SIGSEGV to print a report; restore the default
     * so the kernel kills the process, as in a plain build (a no-op there). */
    signal(SIGSEGV, SIG_DFL);
    if ((w->memo = malloc(BLOCKS * sizeof *w->memo)) == NULL)
        return TR_ENOMEM;
    for (int i = 0; i < BLOCKS; i++)
        w->memo[i] = -1;
    return TR_OK;
}

/* What a worker last complained about. The bug, on purpose: it starts out
 * pointing at a string literal, which lives in read-only memory. */
static char *complaint = "none";

/* "count" block -> [primes in the block, pid]. The block number off the
 * wire is checked against BLOCKS; a negative one takes a path no test ever
 * ran, which writes into the literal: the kernel kills the process. */
static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    worker *w = state;
    int64_t block;
    tr_err err = tr_msg_int(m, &block);
    if (err != TR_OK || block >= BLOCKS)
        return tr_reply_error(ctx, m, err != TR_OK ? err : TR_ERANGE);
    if (block < 0) {
        complaint[0] = '-'; /* the corrupted job dies here: SIGSEGV */
        return tr_reply_error(ctx, m, TR_ERANGE);
    }
    int64_t *count = &w->memo[block];
    if (*count < 0) {
        *count = 0;
        for (int64_t n = block * BLOCK; n < (block + 1) * BLOCK; n++)
            *count += is_prime(n);
    }
    tr_msg *r;
    err = ints_msg(&r, ctx, "count", (int64_t[]){*count, getpid()}, 2);
    return err == TR_OK ? tr_reply(ctx, m, r) : tr_reply_error(ctx, m, err);
}

static void worker_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    free(((worker *)state)->memo);
}

static const tr_behaviour worker_beh = {"primes",      sizeof(worker),   worker_init,
                                        worker_handle, worker_terminate, NULL};

/* ---- tally: a pooled actor that adds up ---------------------------------- */

typedef struct tally {
    int64_t answers, primes;
} tally;

/* "add" [block, primes, pid] is added up and handed, as a line of text, to
 * whichever actor is registered as "journal"; "report" is answered with
 * [answers, primes]. Handlers return errors: the actor then exits. */
static int tally_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    tally *t = state;
    tr_msg *out;
    int64_t v[3];
    tr_err err;
    if (tr_msg_is(m, "report")) {
        err = ints_msg(&out, ctx, "report", (int64_t[]){t->answers, t->primes}, 2);
        return err == TR_OK ? tr_reply(ctx, m, out) : tr_reply_error(ctx, m, err);
    }
    if ((err = read_ints(m, v, 3)) != TR_OK || (err = tr_msg_new(&out, ctx, "line")) != TR_OK)
        return err;
    t->answers++;
    t->primes += v[1];
    char line[80];
    snprintf(line, sizeof line, "block %2lld: %5lld primes, counted by pid %lld\n", (long long)v[0],
             (long long)v[1], (long long)v[2]);
    if ((err = tr_pack_str(out, line)) != TR_OK ||
        (err = tr_send_named(ctx, tr_runtime_node(tr_ctx_runtime(ctx)), "journal", out)) != TR_OK)
        tr_msg_free(out);
    return err;
}

static const tr_behaviour tally_beh = {"tally", sizeof(tally), NULL, tally_handle, NULL, NULL};

/* ---- journal: a thread actor, free to block on the disk ------------------ */

typedef struct journal {
    FILE *file;
} journal;

static int journal_init(tr_ctx *ctx, void *state, const tr_msg *args) /* args: the path */
{
    journal *j = state;
    char path[256];
    const char *s;
    size_t len;
    tr_cursor c;
    tr_cursor_init(&c, args);
    tr_err err = tr_cursor_str(&c, &s, &len);
    if (err != TR_OK || len >= sizeof path)
        return err != TR_OK ? err : TR_ETOOBIG;
    snprintf(path, sizeof path, "%.*s", (int)len, s);
    return (j->file = fopen(path, "a")) != NULL ? TR_OK : TR_ESYS;
}

/* Each "line" is written and flushed: a blocking system call per message. */
static int journal_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    journal *j = state;
    const char *s;
    size_t len;
    tr_cursor c;
    tr_cursor_init(&c, m);
    tr_err err = tr_cursor_str(&c, &s, &len);
    if (err != TR_OK)
        return err;
    return fwrite(s, 1, len, j->file) == len && fflush(j->file) == 0 ? TR_OK : TR_ESYS;
}

static void journal_terminate(tr_ctx *ctx, void *state, const tr_reason *why)
{
    journal *j = state;
    if (j->file != NULL && fclose(j->file) != 0)
        fprintf(stderr, "demo: journal: closing its file failed\n");
}

static const tr_behaviour journal_beh = {"journal",      sizeof(journal),   journal_init,
                                         journal_handle, journal_terminate, NULL};

/* ---- the client: main, an attached thread -------------------------------- */

typedef struct client client;

typedef struct job {
    client *c;
    int worker;
    int64_t block;
} job;

struct client {
    tr_runtime *rt;
    tr_ref workers[WORKERS]; /* where each worker is now */
    job jobs[WORKERS];       /* the one request in flight per worker */
    int64_t next_block, answers, primes;
    int64_t victim_pid, crashed_pid; /* primes-2's pid now, and when it crashed */
    int64_t failed_block;            /* the request the crash took with it; -1 = none */
    tr_err failure, fatal;           /* how that request failed; the first unexpected error */
    bool injected, down;             /* corrupted job sent; primes-2 not answering */
    int answered_while_down;         /* answers from the other workers meanwhile */
    double down_since;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int on_answer(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata);

/* Asks worker w, where it is now, for its job's block. */
static tr_err ask(tr_ctx *ctx, client *c, int w)
{
    tr_msg *m;
    tr_err err = tr_msg_new(&m, ctx, "count");
    if (err == TR_OK &&
        ((err = tr_pack_int(m, c->jobs[w].block)) != TR_OK ||
         (err = tr_request(ctx, c->workers[w], m, WAIT_MS, on_answer, &c->jobs[w])) != TR_OK))
        tr_msg_free(m);
    return err;
}

/* Gives worker w the next block. A third of the way in, primes-2 gets the
 * corrupted job first, as a plain send that nobody waits for. */
static tr_err next_job(tr_ctx *ctx, client *c, int w)
{
    if (c->next_block == BLOCKS)
        return TR_OK;
    c->jobs[w] = (job){c, w, c->next_block++};
    if (w == VICTIM && !c->injected && c->next_block > BLOCKS / 3) {
        tr_err err = tr_send_int(ctx, c->workers[w], "count", CORRUPT_BLOCK);
        if (err != TR_OK)
            return err;
        c->injected = true;
    }
    return ask(ctx, c, w);
}

/* The continuation of every request: an answer, or why there is none. It
 * only records an unexpected error; the client's loop looks at it. */
static int on_answer(tr_ctx *ctx, void *state, const tr_msg *reply, tr_err status, void *udata)
{
    job *j = udata;
    client *c = j->c;
    int64_t v[2]; /* primes, pid */
    tr_msg *add;
    if (status == TR_OK)
        status = read_ints(reply, v, 2);
    if (status != TR_OK && j->worker == VICTIM && c->injected && c->failed_block < 0) {
        c->failure = status; /* the request behind the corrupted job: retried below */
        c->failed_block = j->block;
        c->crashed_pid = c->victim_pid;
        c->down = true;
        c->down_since = now_s();
        return 0;
    }
    if (status == TR_OK && j->worker == VICTIM) {
        c->victim_pid = v[1];
        c->down = false; /* back, and answering */
    } else if (status == TR_OK) {
        c->answered_while_down += c->down;
    }
    if (status == TR_OK)
        status = ints_msg(&add, ctx, "add", (int64_t[]){j->block, v[0], v[1]}, 3);
    if (status == TR_OK &&
        (status = tr_send_named(ctx, tr_runtime_node(c->rt), "tally", add)) != TR_OK)
        tr_msg_free(add);
    if (status == TR_OK) {
        c->answers++;
        c->primes += v[0];
        status = next_job(ctx, c, j->worker);
    }
    if (c->fatal == TR_OK)
        c->fatal = status;
    return 0;
}

/* While primes-2 is down: looks it up by name, and once the name leads to
 * a new incarnation, asks it again for the block the crash took with it. */
static tr_err retry(tr_ctx *ctx, client *c)
{
    tr_ref r;
    if (now_s() - c->down_since > WAIT_MS / 1000.0)
        return TR_ETIMEDOUT;
    tr_err err = tr_whereis(&r, c->rt, worker_name[VICTIM]);
    if (err == TR_ENOTFOUND || (err == TR_OK && tr_ref_eq(r, c->workers[VICTIM])))
        return TR_OK; /* not restarted yet, or already asked */
    if (err == TR_OK) {
        c->workers[VICTIM] = r;
        err = ask(ctx, c, VICTIM);
    }
    return err;
}

/* Runs the client until every block is counted. The answers run on_answer
 * inside tr_receive; it returns every 5 ms to let the loop look around. */
static tr_err count_primes(tr_ctx *ctx, client *c)
{
    tr_err err = TR_OK;
    for (int w = 0; w < WORKERS && err == TR_OK; w++)
        if ((err = tr_whereis(&c->workers[w], c->rt, worker_name[w])) == TR_OK)
            err = next_job(ctx, c, w);
    while (err == TR_OK && c->fatal == TR_OK && c->answers < BLOCKS) {
        tr_msg *m;
        if ((err = tr_receive(ctx, NULL, NULL, NULL, 5, &m)) == TR_OK)
            tr_msg_free(m); /* the supervisors' events: the summary lists them */
        else if (err == TR_ETIMEDOUT)
            err = c->down ? retry(ctx, c) : TR_OK;
    }
    return err != TR_OK ? err : c->fatal;
}

/* ---- the tree ------------------------------------------------------------ */

typedef struct tree {
    tr_sup_child_spec top_kids[3], primes_kids[WORKERS];
    tr_sup_spec top, primes;
} tree;

static tr_sup_child_spec child(const char *id, const tr_behaviour *b, tr_actor_kind kind)
{
    tr_sup_child_spec s = TR_SUP_CHILD_SPEC_INIT;
    s.id = id;
    s.behaviour = b;
    s.spawn.kind = kind;
    s.spawn.name = id; /* each new incarnation takes the name over */
    return s;
}

/* The specs are plain data. Both supervisors report their events to main
 * and give up after more than 3 restarts in 10 s. */
static void tree_make(tree *t, tr_ref events, const tr_msg *journal_args)
{
    for (int w = 0; w < WORKERS; w++)
        t->primes_kids[w] = child(worker_name[w], &worker_beh, TR_PROCESS);
    t->top_kids[0] = child("tally", &tally_beh, TR_POOLED);
    t->top_kids[1] = child("journal", &journal_beh, TR_THREAD);
    t->top_kids[1].args = tr_msg_payload(journal_args, &t->top_kids[1].args_len);
    t->top_kids[2] = (tr_sup_child_spec)TR_SUP_CHILD_SPEC_INIT;
    t->top_kids[2].id = "primes";
    t->top_kids[2].sup = &t->primes;
    t->primes = (tr_sup_spec)TR_SUP_SPEC_INIT;
    t->primes.intensity = 3;
    t->primes.period_ms = 10000;
    t->primes.children = t->primes_kids;
    t->primes.nchildren = WORKERS;
    t->primes.events = events;
    t->top = t->primes;
    t->top.children = t->top_kids;
    t->top.nchildren = 3;
}

/* An exit reason in words, e.g. "signal 11 (SIGSEGV)". */
static const char *describe(const tr_reason *r, char *buf, size_t cap)
{
    if (r->kind == TR_EXIT_SIGNAL && sigabbrev_np(r->code) != NULL)
        snprintf(buf, cap, "signal %d (SIG%s)", r->code, sigabbrev_np(r->code));
    else
        snprintf(buf, cap, "%s %d %s", tr_exit_kind_name(r->kind), r->code, r->text);
    return buf;
}

typedef struct restarts {
    uint32_t n;
    char what[160]; /* "id: reason, ..." of the children restarted */
} restarts;

/* Lists sup's children (which waits until it has started them all): adds
 * up their restarts per actor kind (a supervisor is a pooled actor) with
 * each one's last exit reason, and finds the child "primes". */
static tr_err survey(tr_ctx *ctx, tr_ref sup, restarts by_kind[3], tr_ref *primes)
{
    tr_sup_child_info *ch;
    uint32_t n;
    char why[TR_REASON_TEXT_MAX + 32];
    tr_err err = tr_sup_which_children(&ch, &n, ctx, sup, WAIT_MS);
    for (uint32_t i = 0; err == TR_OK && i < n; i++) {
        restarts *r = &by_kind[ch[i].kind];
        r->n += ch[i].restarts;
        if (ch[i].restarts > 0)
            snprintf(r->what + strlen(r->what), sizeof r->what - strlen(r->what), "%s%s: %s",
                     *r->what ? ", " : "", ch[i].id, describe(&ch[i].last_exit, why, sizeof why));
        if (strcmp(ch[i].id, "primes") == 0)
            *primes = ch[i].ref;
    }
    if (err == TR_OK)
        tr_sup_children_free(ch);
    return err;
}

/* Stops the tree with an exit signal to its top; the supervisors' events
 * tell the order in which the children stopped. */
static tr_err stop_tree(tr_ctx *ctx, tr_ref top, char *order, size_t cap)
{
    tr_monitor_id mon;
    tr_reason why = tr_reason_make(TR_EXIT_SHUTDOWN, 0, "demo over");
    tr_err err = tr_monitor(ctx, top, &mon);
    if (err == TR_OK)
        err = tr_exit(ctx, top, &why);
    for (bool down = false; err == TR_OK && !down;) {
        tr_msg *m;
        tr_sup_event ev;
        tr_ref who;
        if ((err = tr_receive(ctx, NULL, NULL, NULL, WAIT_MS, &m)) != TR_OK)
            break;
        down = tr_msg_is(m, TR_TAG_DOWN); /* the top supervisor is gone */
        if (down && (err = tr_msg_down_info(m, &who, &mon, &why)) == TR_OK)
            err = why.kind == TR_EXIT_SHUTDOWN ? TR_OK : TR_EEXITED;
        if (tr_msg_is(m, TR_SUP_TAG_EVENT) && (err = tr_sup_event_info(&ev, m)) == TR_OK &&
            ev.kind == TR_SUP_EV_STOPPED)
            snprintf(order + strlen(order), cap - strlen(order), "%s%s", *order ? ", " : "", ev.id);
        tr_msg_free(m);
    }
    return err;
}

/* Asks the tally for its [answers, primes]. */
static tr_err ask_tally(tr_ctx *ctx, tr_runtime *rt, int64_t v[2])
{
    tr_ref tally_ref;
    tr_msg *req, *rep;
    tr_err err = tr_whereis(&tally_ref, rt, "tally");
    if (err == TR_OK && (err = tr_msg_new(&req, ctx, "report")) == TR_OK &&
        (err = tr_call(ctx, tally_ref, req, WAIT_MS, &rep)) == TR_OK) {
        err = read_ints(rep, v, 2);
        tr_msg_free(rep);
    }
    return err;
}

/* Lines in the journal's file. */
static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    long lines = 0;
    for (int ch; f != NULL && (ch = fgetc(f)) != EOF;)
        lines += ch == '\n';
    if (f != NULL)
        fclose(f);
    return f != NULL ? lines : -1;
}

/* ---- main ---------------------------------------------------------------- */

static bool ok(const char *what, tr_err err)
{
    if (err != TR_OK)
        fprintf(stderr, "demo: FAILED: %s: %s (%s)\n", what, tr_strerror(err), tr_err_name(err));
    return err == TR_OK;
}

static bool check(bool cond, const char *what)
{
    if (!cond)
        fprintf(stderr, "demo: FAILED: %s\n", what);
    return cond;
}

static int run(tr_ctx *ctx, tr_runtime *rt, const char *path)
{
    double t0 = now_s();
    tr_msg *jargs; /* the journal's argument, its file; kept while the tree runs */
    tree t;
    tr_ref top, primes = TR_REF_NIL;
    client c = {.rt = rt, .failed_block = -1};
    restarts by_kind[3] = {{0}}, none[3] = {{0}};
    int64_t tallied[2] = {-1, -1};
    char order[160] = "";
    if (!ok("journal args", tr_msg_new(&jargs, ctx, "args")))
        return 1;
    bool fine = ok("journal args", tr_pack_str(jargs, path));
    tree_make(&t, tr_self(ctx), jargs);
    fine = fine && ok("start the tree", tr_sup_start(&top, ctx, &t.top, NULL)) &&
           ok("list the children", survey(ctx, top, none, &primes)) &&
           ok("list the children", survey(ctx, primes, none, &primes));
    if (fine)
        printf("troupe demo: one supervision tree, three kinds of actor\n"
               "  demo               supervisor (one_for_one)\n"
               "  ├─ tally           pooled actor: adds up the answers\n"
               "  ├─ journal         thread actor: writes each answer to a file\n"
               "  └─ primes          supervisor (one_for_one)\n"
               "     └─ primes-1..3  process actors: count primes, in C\n"
               "client: the primes below %d, in %d blocks, one request per worker at a time\n",
               LIMIT, BLOCKS);
    fine = fine && ok("count the primes", count_primes(ctx, &c));
    if (fine)
        printf("  a corrupted job (block %lld) crashed primes-2 (pid %lld)\n"
               "  block %lld, asked of primes-2 after it, failed: %s (%s)\n"
               "  meanwhile primes-1 and primes-3 answered %d requests\n"
               "  block %lld asked again of primes-2, found by name: pid %lld answered\n",
               (long long)CORRUPT_BLOCK, (long long)c.crashed_pid, (long long)c.failed_block,
               tr_strerror(c.failure), tr_err_name(c.failure), c.answered_while_down,
               (long long)c.failed_block, (long long)c.victim_pid);
    fine = fine && ok("ask the tally", ask_tally(ctx, rt, tallied)) &&
           ok("list the children", survey(ctx, top, by_kind, &primes)) &&
           ok("list the children", survey(ctx, primes, by_kind, &primes));
    double elapsed = now_s() - t0;
    fine = fine && ok("stop the tree", stop_tree(ctx, top, order, sizeof order));
    tr_msg_free(jargs);
    if (!fine)
        return 1;
    long lines = count_lines(path);
    const restarts *p = &by_kind[TR_PROCESS];
    printf("summary after %.2f s:\n"
           "  process  primes-1..3  %lld answers, %u restart%s (%s)\n"
           "  pooled   tally        %lld answers added up: %lld primes below %d, %u restarts\n"
           "  thread   journal      %ld lines written, %u restarts\n"
           "stopped, in reverse start order: %s\n",
           elapsed, (long long)c.answers, p->n, p->n == 1 ? "" : "s", p->what,
           (long long)tallied[0], (long long)tallied[1], LIMIT, by_kind[TR_POOLED].n, lines,
           by_kind[TR_THREAD].n, order);
    fine = check(c.failure == TR_EEXITED, "the request behind the crash: not TR_EEXITED") &
           check(strstr(p->what, "primes-2: signal 11 (SIGSEGV)"), "no restart after SIGSEGV") &
           check(c.primes == PRIMES_BELOW_LIMIT && tallied[1] == c.primes, "wrong count") &
           check(tallied[0] == BLOCKS && lines == BLOCKS, "answers went missing");
    return fine ? 0 : 1;
}

int main(void)
{
    struct rlimit no_core = {0, 0}; /* the crash is on purpose: no core file */
    const char *tmp = getenv("TMPDIR");
    char path[256];
    snprintf(path, sizeof path, "%s/troupe-demo-XXXXXX", tmp != NULL ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (setrlimit(RLIMIT_CORE, &no_core) != 0 || fd < 0) {
        perror(fd < 0 ? "demo: mkstemp" : "demo: setrlimit");
        return 1;
    }
    close(fd);
    tr_runtime *rt;
    tr_ctx *ctx;
    tr_err err = tr_runtime_start(&rt, NULL);
    if (err == TR_OK && (err = tr_attach(&ctx, rt)) != TR_OK)
        tr_runtime_free(rt);
    int rc = ok("start the runtime", err) ? run(ctx, rt, path) : 1;
    if (err == TR_OK) {
        tr_detach(ctx);
        tr_runtime_free(rt);
    }
    unlink(path);
    return rc;
}
