/*
 * spawnmem.c — main (attached) spawns K idle pooled actors. The spawn loop
 * is timed (spawns/s). Then, untimed, main pings every actor (1000 at a time) and waits for
 * every pong, so each actor has really started and handled a message, and
 * reads resident memory again: the growth over K is bytes per actor.
 * Teardown is not measured. Usage: troupe_spawnmem K
 */
#include "bench.h"

static int idle_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
    if (tr_msg_is(m, "ping"))
        return tr_send_tag(ctx, tr_msg_from(m), "pong");
    return TR_OK;
}

static const tr_behaviour idle_beh = {.name = "idle", .handle = idle_handle};

int main(int argc, char **argv)
{
    long k = bench_arg(argc, argv, 1, 200000);
    tr_runtime *rt;
    tr_ctx *ctx = bench_start(&rt);
    tr_ref *actors = malloc((size_t)k * sizeof *actors);

    if (actors == NULL)
        bench_check(TR_ENOMEM, "allocate");
    for (long i = 0; i < k; i++) /* touch the reference array before measuring */
        actors[i] = TR_REF_NIL;
    long rss0 = bench_rss_bytes();

    double t0 = bench_now();
    for (long i = 0; i < k; i++)
        bench_check(tr_spawn(&actors[i], ctx, &idle_beh, NULL, NULL), "spawn");
    double secs = bench_now() - t0;

    /* Ping in waves, so the messages in flight stay few and do not count
     * as per-actor memory. */
    for (long w = 0; w < k; w += 1000) {
        long end = w + 1000 < k ? w + 1000 : k;
        for (long i = w; i < end; i++)
            bench_check(tr_send_tag(ctx, actors[i], "ping"), "send ping");
        for (long i = w; i < end; i++) {
            tr_msg *m;
            bench_check(tr_receive(ctx, "pong", NULL, NULL, 600000, &m), "wait pong");
            tr_msg_free(m);
        }
    }
    long rss1 = bench_rss_bytes();

    tr_counters c;
    bench_check(tr_runtime_counters(&c, rt), "counters");
    if (c.live_actors < (uint64_t)k)
        bench_fail("spawnmem: %llu live actors, expected at least %ld",
                   (unsigned long long)c.live_actors, k);
    char extra[96];
    snprintf(extra, sizeof extra, "metric2=spawns_per_s value2=%.6g", (double)k / secs);
    bench_result("spawnmem", k, secs, "bytes_per_actor", (double)(rss1 - rss0) / (double)k, extra);
    free(actors);
    bench_stop(rt, ctx);
    return 0;
}
