/*
 * exitsig.c — links, monitors and exit signals.
 *
 * Each actor keeps its own links and monitors in its extension block,
 * touched only by its consumer; the other side learns of every change
 * through a system message (LINK, UNLINK, MONITOR, DEMONITOR), so no lock is
 * shared between actors. Exit turns into EXIT signals to the links and DOWN
 * messages to the watchers. This file must not schedule or free slots.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct actor_ext *tr__ext(tr_actor *a)
{
    if (a->ext == NULL)
        a->ext = calloc(1, sizeof *a->ext);
    return a->ext;
}

void tr__ext_free(tr_actor *a)
{
    struct actor_ext *e = a->ext;
    if (e == NULL)
        return;
    free(e->links);
    free(e->watchers);
    free(e->monitors);
    idmap_free(&e->pending);
    free(e);
    a->ext = NULL;
}

/* Grows an array of elem-sized items so one more fits. */
static bool ext_grow(void **arr, uint32_t n, uint32_t *cap, size_t elem)
{
    if (n < *cap)
        return true;
    uint32_t ncap = *cap ? *cap * 2 : 4;
    void *p = realloc(*arr, ncap * elem);
    if (p == NULL)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

static int links_find(struct actor_ext *e, tr_ref r)
{
    for (uint32_t i = 0; e != NULL && i < e->nlinks; i++)
        if (tr_ref_eq(e->links[i], r))
            return (int)i;
    return -1;
}

void tr__links_add(tr_actor *a, tr_ref r)
{
    struct actor_ext *e = tr__ext(a);
    if (e == NULL || links_find(e, r) >= 0)
        return;
    if (!ext_grow((void **)&e->links, e->nlinks, &e->caplinks, sizeof *e->links))
        return;
    e->links[e->nlinks++] = r;
}

bool tr__links_remove(tr_actor *a, tr_ref r)
{
    int i = links_find(a->ext, r);
    if (i < 0)
        return false;
    struct actor_ext *e = a->ext;
    e->links[i] = e->links[--e->nlinks];
    return true;
}

static bool mon_add(struct mon_entry **arr, uint32_t *n, uint32_t *cap, tr_ref r, uint64_t id)
{
    if (!ext_grow((void **)arr, *n, cap, sizeof **arr))
        return false;
    (*arr)[*n].ref = r;
    (*arr)[*n].id = id;
    (*n)++;
    return true;
}

/* Removes the entry with id (and, if ref is not nil, that ref); fills *ref. */
static bool mon_remove(struct mon_entry *arr, uint32_t *n, uint64_t id, tr_ref *ref)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (arr[i].id == id) {
            if (ref != NULL)
                *ref = arr[i].ref;
            arr[i] = arr[--(*n)];
            return true;
        }
    }
    return false;
}

/* Removes the watcher `who` with monitor id `id`: ids are only unique
 * within the watcher's own runtime, so two watchers may share one. */
static bool watcher_remove(struct mon_entry *arr, uint32_t *n, uint64_t id, tr_ref who)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (arr[i].id == id && tr_ref_eq(arr[i].ref, who)) {
            arr[i] = arr[--(*n)];
            return true;
        }
    }
    return false;
}

static void set_exit(tr_ctx *ctx, const tr_reason *why)
{
    if (ctx->exiting)
        return;
    ctx->exiting = true;
    ctx->exit_reason = *why;
}

/*
 * The link to `node` was lost. Every link and monitor to an actor there
 * fires as if that actor had exited with TR_EXIT_NOCONNECTION: the signals
 * go through this actor's own mailbox, so trapping, unlinking and
 * exactly-once DOWN work as for any exit. Watchers on that node are
 * forgotten.
 */
static void node_down(tr_ctx *ctx, tr_actor *a, uint64_t node)
{
    struct actor_ext *e = a->ext;
    if (e == NULL)
        return;
    tr_ref self = tr__actor_ref(ctx->rt, a);
    tr_reason why = tr_reason_make(TR_EXIT_NOCONNECTION, 0, "node link lost");
    for (uint32_t i = 0; i < e->nlinks; i++)
        if (e->links[i].node == node)
            tr__signal(ctx, self, e->links[i], MK_EXIT, MF_LINKEXIT, 0, &why);
    for (uint32_t i = 0; i < e->nmonitors; i++)
        if (e->monitors[i].ref.node == node)
            tr__signal(ctx, self, e->monitors[i].ref, MK_DOWN, 0, e->monitors[i].id, &why);
    for (uint32_t i = 0; i < e->nwatchers;) {
        if (e->watchers[i].ref.node == node)
            e->watchers[i] = e->watchers[--e->nwatchers];
        else
            i++;
    }
}

tr_msg *tr__process_signal(tr_ctx *ctx, tr_actor *a, tr_msg *m)
{
    struct actor_ext *e;
    tr_reason why;
    switch (m->kind) {
    case MK_LINK:
        tr__links_add(a, m->from);
        break;
    case MK_UNLINK:
        tr__links_remove(a, m->from);
        break;
    case MK_MONITOR:
        e = tr__ext(a);
        if (e != NULL)
            mon_add(&e->watchers, &e->nwatchers, &e->capwatchers, m->from, m->corr);
        break;
    case MK_DEMONITOR:
        if (a->ext != NULL)
            watcher_remove(a->ext->watchers, &a->ext->nwatchers, m->corr, m->from);
        break;
    case MK_NODEDOWN:
        node_down(ctx, a, m->corr);
        break;
    case MK_DOWN:
        /* A DOWN for a monitor already dropped is stale: exactly once. */
        if (a->ext != NULL && mon_remove(a->ext->monitors, &a->ext->nmonitors, m->corr, NULL)) {
            memcpy(m->tag, TR_TAG_DOWN, sizeof TR_TAG_DOWN);
            ctr_add(&ctx->ctr.delivered, 1);
            return m;
        }
        break;
    case MK_EXIT: {
        if (tr__unpack_reason(m->data, m->len, &why) != TR_OK)
            why = tr_reason_make(TR_EXIT_ERROR, TR_EBADMSG, "malformed exit signal");
        bool from_link = (m->flags & MF_LINKEXIT) != 0;
        /* An exit from an actor we unlinked meanwhile no longer concerns us. */
        if (from_link && !tr__links_remove(a, m->from))
            break;
        if (!from_link && why.kind == TR_EXIT_KILLED) {
            set_exit(ctx, &why);
            break;
        }
        if (a->trap_exit) {
            memcpy(m->tag, TR_TAG_EXIT, sizeof TR_TAG_EXIT);
            ctr_add(&ctx->ctr.delivered, 1);
            return m;
        }
        if (why.kind != TR_EXIT_NORMAL)
            set_exit(ctx, &why);
        break;
    }
    default:
        break;
    }
    tr__msg_release(ctx, m);
    return NULL;
}

void tr__exit_propagate(tr_ctx *ctx, tr_actor *a, tr_ref self, const tr_reason *why)
{
    struct actor_ext *e = a->ext;
    if (e == NULL)
        return;
    for (uint32_t i = 0; i < e->nlinks; i++)
        tr__signal(ctx, e->links[i], self, MK_EXIT, MF_LINKEXIT, 0, why);
    for (uint32_t i = 0; i < e->nwatchers; i++)
        tr__signal(ctx, e->watchers[i].ref, self, MK_DOWN, 0, e->watchers[i].id, why);
    /* Tell the actors we watched, so they do not keep us as a watcher. */
    for (uint32_t i = 0; i < e->nmonitors; i++)
        tr__signal(ctx, e->monitors[i].ref, self, MK_DEMONITOR, 0, e->monitors[i].id, NULL);
    e->nlinks = e->nwatchers = e->nmonitors = 0;
}

/* ---- public API ---------------------------------------------------------- */

static tr_err ctx_check(tr_ctx *ctx)
{
    if (ctx == NULL || ctx->actor == NULL)
        return TR_EINVAL;
    return TR_OK;
}

tr_err tr_link(tr_ctx *ctx, tr_ref other)
{
    tr_err err = ctx_check(ctx);
    if (err != TR_OK)
        return err;
    tr_ref self = tr_self(ctx);
    if (tr_ref_eq(self, other))
        return TR_OK;
    if (other.node != ctx->rt->node && !tr__link_known(ctx->rt, other.node))
        return other.node == 0 ? TR_EINVAL : TR_ENOROUTE;
    tr__links_add(ctx->actor, other);
    err = tr__signal(ctx, other, self, MK_LINK, 0, 0, NULL);
    if (err == TR_ENOACTOR) {
        tr_reason noproc = tr_reason_make(TR_EXIT_NOPROC, 0, NULL);
        return tr__signal(ctx, self, other, MK_EXIT, MF_LINKEXIT, 0, &noproc);
    }
    if (err != TR_OK)
        tr__links_remove(ctx->actor, other);
    return err;
}

tr_err tr_unlink(tr_ctx *ctx, tr_ref other)
{
    tr_err err = ctx_check(ctx);
    if (err != TR_OK)
        return err;
    if (!tr__links_remove(ctx->actor, other))
        return TR_OK;
    err = tr__signal(ctx, other, tr_self(ctx), MK_UNLINK, 0, 0, NULL);
    return err == TR_ENOACTOR ? TR_OK : err;
}

tr_err tr_monitor(tr_ctx *ctx, tr_ref target, tr_monitor_id *id)
{
    tr_err err = ctx_check(ctx);
    if (err != TR_OK || id == NULL)
        return TR_EINVAL;
    if (target.node != ctx->rt->node && !tr__link_known(ctx->rt, target.node))
        return target.node == 0 ? TR_EINVAL : TR_ENOROUTE;
    struct actor_ext *e = tr__ext(ctx->actor);
    if (e == NULL)
        return TR_ENOMEM;
    uint64_t mid = atomic_fetch_add_explicit(&ctx->rt->next_corr, 1, memory_order_relaxed);
    if (!mon_add(&e->monitors, &e->nmonitors, &e->capmonitors, target, mid))
        return TR_ENOMEM;
    tr_ref self = tr_self(ctx);
    err = tr__signal(ctx, target, self, MK_MONITOR, 0, mid, NULL);
    if (err == TR_ENOACTOR) {
        tr_reason noproc = tr_reason_make(TR_EXIT_NOPROC, 0, NULL);
        err = tr__signal(ctx, self, target, MK_DOWN, 0, mid, &noproc);
    }
    if (err != TR_OK) {
        mon_remove(e->monitors, &e->nmonitors, mid, NULL);
        return err;
    }
    *id = mid;
    return TR_OK;
}

tr_err tr_demonitor(tr_ctx *ctx, tr_monitor_id id)
{
    tr_err err = ctx_check(ctx);
    if (err != TR_OK)
        return err;
    struct actor_ext *e = ctx->actor->ext;
    tr_ref target;
    if (e == NULL || !mon_remove(e->monitors, &e->nmonitors, id, &target))
        return TR_ENOTFOUND;
    err = tr__signal(ctx, target, tr_self(ctx), MK_DEMONITOR, 0, id, NULL);
    return err == TR_ENOACTOR ? TR_OK : err;
}

void tr_trap_exit(tr_ctx *ctx, bool on)
{
    if (ctx != NULL && ctx->actor != NULL)
        ctx->actor->trap_exit = on;
}

tr_err tr_exit(tr_ctx *ctx, tr_ref target, const tr_reason *why)
{
    if (ctx == NULL || why == NULL || (unsigned)why->kind > TR_EXIT_CODE)
        return TR_EINVAL;
    if (atomic_load_explicit(&ctx->rt->stopped, memory_order_relaxed))
        return TR_ESTOPPED;
    return tr__signal(ctx, target, tr_self(ctx), MK_EXIT, 0, 0, why);
}

tr_err tr_msg_exit_info(const tr_msg *m, tr_ref *from, tr_reason *why)
{
    if (m == NULL || why == NULL)
        return TR_EINVAL;
    if (m->kind != MK_EXIT)
        return TR_ETYPE;
    if (from != NULL)
        *from = m->from;
    return tr__unpack_reason(m->data, m->len, why);
}

tr_err tr_msg_down_info(const tr_msg *m, tr_ref *who, tr_monitor_id *id, tr_reason *why)
{
    if (m == NULL || why == NULL)
        return TR_EINVAL;
    if (m->kind != MK_DOWN)
        return TR_ETYPE;
    if (who != NULL)
        *who = m->from;
    if (id != NULL)
        *id = m->corr;
    return tr__unpack_reason(m->data, m->len, why);
}
