/*
 * pool_internal.h — what the worker pool's files share: tags, the layout
 * of the spawn arguments of the pool and of its workers, and the two
 * behaviours.
 *
 * The pool (pool.c) is a pooled actor; its workers run the user's
 * behaviour inside a wrapper (pool_worker.c); the client side (pool_api.c)
 * only builds and reads messages. Pointers travel as integers: a pool and
 * its workers, process workers included, are the same program image.
 */
#ifndef TROUPE_POOL_INTERNAL_H
#define TROUPE_POOL_INTERNAL_H

#include "troupe_pool.h"

#include <stdint.h>
#include <string.h>

/* Every tag of the pool's own starts with this; jobs may not. */
#define POOL_TAG_PREFIX "tr.pool."
/* Control requests a pool answers, and their replies. */
#define POOL_TAG_STATS "tr.pool.stats"
#define POOL_TAG_STOP "tr.pool.stop"
#define POOL_TAG_STATS_REPLY "tr.pool.statsr"
#define POOL_TAG_DONE "tr.pool.done"
/* The probe the pool sends behind each job, and the wrapper's answer. */
#define POOL_TAG_PROBE "tr.pool.probe"
#define POOL_TAG_PROBE_OK "tr.pool.ok"
/* Tags of spawn arguments: the pool's, and the user's args as a worker's
 * init sees them (as a supervisor child's would). */
#define POOL_TAG_ARGS "tr.pool.args"
#define POOL_TAG_USER_ARGS "args"

/* First element of the pool's and of a worker's spawn arguments. */
#define POOL_ARGS_MAGIC "troupe.pool/1"
#define POOL_WORKER_MAGIC "troupe.pool.worker/1"

/* Fields of a stats reply (see pool.c, answer_stats). */
#define POOL_STATS_FIELDS 13u

/*
 * A pool's spawn arguments, an array:
 *   [magic, behaviour (uint), args (bin | nil), kind, trap_exit,
 *    spawn.shutdown_ms, workers, queue_max, max_restarts, period_ms,
 *    shutdown_ms]
 * with every field checked and defaults resolved by pool_api.c.
 */
#define POOL_ARGS_FIELDS 11u

/* A worker's spawn arguments: [magic, behaviour (uint), args (bin | nil)]. */
#define POOL_WORKER_FIELDS 3u

/* The pool actor (pool.c) and the worker wrapper (pool_worker.c). */
extern const tr_behaviour tr__pool_behaviour;
extern const tr_behaviour tr__pool_worker_behaviour;

/* Packs a worker's spawn arguments (see above) as m's payload. */
tr_err tr__pool_pack_worker_args(tr_msg *m, const tr_behaviour *b, const void *args,
                                 size_t args_len);

/* Opens spawn arguments [magic, behaviour pointer, ...] of `fields`
 * elements (pool_api.c packs them; read defensively all the same): leaves
 * c after the pointer, which it reads into *beh. */
static inline tr_err tr__pool_read_head(tr_cursor *c, const tr_msg *args, uint32_t fields,
                                        const char *magic, const tr_behaviour **beh)
{
    uint32_t n;
    const char *got;
    size_t len;
    uint64_t ptr;
    if (args == NULL)
        return TR_EBADMSG;
    tr_cursor_init(c, args);
    if (tr_cursor_array(c, &n) != TR_OK || n != fields || tr_cursor_str(c, &got, &len) != TR_OK ||
        len != strlen(magic) || memcmp(got, magic, len) != 0 || tr_cursor_uint(c, &ptr) != TR_OK ||
        ptr == 0 || ptr > UINTPTR_MAX)
        return TR_EBADMSG;
    *beh = (const tr_behaviour *)(uintptr_t)ptr;
    return TR_OK;
}

#endif /* TROUPE_POOL_INTERNAL_H */
