/*
 * mailbox.h — an actor's mailbox: an intrusive multi-producer,
 * single-consumer queue (Vyukov's node-based design) with an "idle" mark in
 * bit 0 of the producer end.
 *
 * The idle mark is how exactly one sender schedules an actor: the consumer
 * sets it (mbox_mark_idle) only when it has drained the queue, and the first
 * push that finds it set reports so; that pusher alone makes the actor
 * runnable. Only the slot's current consumer may pop or mark idle.
 *
 * The steady state costs two locked instructions per message: the push's
 * exchange and the consumer's idle CAS. To get there the last message
 * handed out stays linked as the queue's tail ("held") instead of being
 * replaced by the stub at once; the idle CAS swaps the stub in, so an idle
 * actor pins no message. A held node is freed when the queue lets go of it
 * (its MF_QHELD flag defers the owner's release). Thread consumers, which
 * keep messages in a save queue, use mbox_pop_owned, which never holds.
 *
 * Each node carries a sequence number set by its pusher from its
 * predecessor, so a pusher knows the queue length without a shared counter.
 * This file must not know about scheduling or actors beyond the slot fields.
 */
#ifndef TROUPE_MAILBOX_H
#define TROUPE_MAILBOX_H

#include "internal.h"

#define MBOX_IDLE ((uintptr_t)1)

/* Starts a mailbox empty and idle. Called once per slot, before the slot is
 * visible to any sender. */
static inline void mbox_init(tr_actor *a)
{
    atomic_store_explicit(&a->stub.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&a->stub.seq, 1, memory_order_relaxed);
    atomic_store_explicit(&a->consumed_seq, 1, memory_order_relaxed);
    a->tail = &a->stub;
    a->held = false;
    atomic_store_explicit(&a->head, (mbox_node *)((uintptr_t)&a->stub | MBOX_IDLE),
                          memory_order_relaxed);
}

/* Appends n. Returns true when the mailbox was idle: the caller must then
 * schedule the actor. *depth receives the queue length n made, sampled on
 * every eighth push (0 otherwise, or when unknown) so a busy pair does not
 * pull the consumer's cache line across cores for every message. n's seq
 * must be 0 when it comes in. Any thread. */
static inline bool mbox_push(tr_actor *a, mbox_node *n, uint32_t *depth)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    /* acq_rel: acquire pairs with mbox_mark_idle's release CAS, so a pusher
     * that finds the actor idle sees everything its last consumer wrote. */
    mbox_node *prev = atomic_exchange_explicit(&a->head, n, memory_order_acq_rel);
    bool was_idle = ((uintptr_t)prev & MBOX_IDLE) != 0;
    prev = (mbox_node *)((uintptr_t)prev & ~MBOX_IDLE);
    /* prev cannot be freed before we link it: the consumer never lets go of
     * a node whose next is still unset. Its seq may not be written yet (its
     * pusher is between the same two steps): a node starts with seq 0,
     * "unknown", and unknown spreads until the consumer re-anchors the
     * numbering when it goes idle. */
    uint32_t prev_seq = atomic_load_explicit(&prev->seq, memory_order_relaxed);
    uint32_t seq = prev_seq != 0 ? prev_seq + 1 : 0;
    atomic_store_explicit(&n->seq, seq, memory_order_relaxed);
    *depth = 0;
    if (seq != 0 && (seq & 7) == 0) {
        uint32_t consumed = atomic_load_explicit(&a->consumed_seq, memory_order_relaxed);
        int32_t d = (int32_t)(seq - consumed);
        if (consumed != 0 && d > 0)
            *depth = (uint32_t)d;
    }
    /* release: pairs with the acquire loads of ->next in the pops, making
     * n's contents visible to the consumer. */
    atomic_store_explicit(&prev->next, n, memory_order_release);
    return was_idle;
}

/* Appends the chain first..last (linked through next, last's next NULL)
 * with one exchange, as mbox_push does for one node. Any thread. */
static inline bool mbox_push_chain(tr_actor *a, mbox_node *first, mbox_node *last, uint32_t *depth)
{
    /* acq_rel: as in mbox_push. */
    mbox_node *prev = atomic_exchange_explicit(&a->head, last, memory_order_acq_rel);
    bool was_idle = ((uintptr_t)prev & MBOX_IDLE) != 0;
    prev = (mbox_node *)((uintptr_t)prev & ~MBOX_IDLE);
    /* Number the chain from prev (see mbox_push), before it is linked. */
    uint32_t seq = atomic_load_explicit(&prev->seq, memory_order_relaxed);
    for (mbox_node *n = first;; n = atomic_load_explicit(&n->next, memory_order_relaxed)) {
        seq = seq != 0 ? seq + 1 : 0;
        atomic_store_explicit(&n->seq, seq, memory_order_relaxed);
        if (n == last)
            break;
    }
    *depth = 0;
    if (seq != 0) {
        uint32_t consumed = atomic_load_explicit(&a->consumed_seq, memory_order_relaxed);
        int32_t d = (int32_t)(seq - consumed);
        if (consumed != 0 && d > 0)
            *depth = (uint32_t)d;
    }
    /* release: pairs with the acquire loads of ->next in the pops. */
    atomic_store_explicit(&prev->next, first, memory_order_release);
    return was_idle;
}

/* Consumer only: the oldest message, or NULL when the queue is empty or a
 * producer is between its exchange and its link store (then mark_idle fails
 * and the consumer comes back). *released receives a previously held node
 * the queue no longer needs (or NULL); the caller disposes of it. */
static inline mbox_node *mbox_pop(tr_actor *a, mbox_node **released)
{
    mbox_node *tail = a->tail;
    *released = NULL;
    if (tail == &a->stub || a->held) {
        /* acquire: pairs with the release link store in mbox_push. */
        mbox_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
        if (next == NULL)
            return NULL;
        if (a->held)
            *released = tail;
        a->held = false;
        a->tail = tail = next;
    }
    mbox_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        a->tail = next;
        /* The next message is likely another core's write: start fetching
         * both of its lines while this one is handled. */
        __builtin_prefetch(next);
        __builtin_prefetch((char *)next + 64);
    } else {
        /* The last linked node: hand it out but keep it as the link that
         * later pushes attach to. */
        a->held = true;
    }
    atomic_store_explicit(&a->consumed_seq, atomic_load_explicit(&tail->seq, memory_order_relaxed),
                          memory_order_relaxed);
    return tail;
}

/* Consumer only: tail, the last linked node, must be let go: puts the stub
 * behind it. Returns tail's successor, or NULL when a push is still
 * linking (come back). Pushers racing with us may already number past
 * tail, so the stub's number is unknown until the mailbox next goes idle. */
static inline mbox_node *mbox_stub_behind(tr_actor *a, mbox_node *tail)
{
    mbox_node *head = atomic_load_explicit(&a->head, memory_order_acquire);
    if (tail != head)
        return NULL;
    atomic_store_explicit(&a->stub.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&a->stub.seq, 0, memory_order_relaxed);
    mbox_node *prev = atomic_exchange_explicit(&a->head, &a->stub, memory_order_acq_rel);
    prev = (mbox_node *)((uintptr_t)prev & ~MBOX_IDLE);
    atomic_store_explicit(&prev->next, &a->stub, memory_order_release);
    return atomic_load_explicit(&tail->next, memory_order_acquire);
}

/* Consumer only: like mbox_pop, but the caller owns the node outright. */
static inline mbox_node *mbox_pop_owned(tr_actor *a, mbox_node **released)
{
    mbox_node *tail = a->tail;
    *released = NULL;
    if (a->held) {
        mbox_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
        if (next == NULL && (next = mbox_stub_behind(a, tail)) == NULL)
            return NULL;
        *released = tail;
        a->held = false;
        a->tail = tail = next;
    }
    mbox_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &a->stub) {
        if (next == NULL)
            return NULL;
        a->tail = tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next == NULL && (next = mbox_stub_behind(a, tail)) == NULL)
        return NULL;
    a->tail = next;
    atomic_store_explicit(&a->consumed_seq, atomic_load_explicit(&tail->seq, memory_order_relaxed),
                          memory_order_relaxed);
    return tail;
}

/* Consumer only: marks the mailbox idle if it is empty, putting the stub in
 * place of a held node. Returns false when messages arrived meanwhile (the
 * consumer must keep going). *released as for mbox_pop. */
static inline bool mbox_mark_idle(tr_actor *a, mbox_node **released)
{
    mbox_node *tail = a->tail;
    *released = NULL;
    mbox_node *head = atomic_load_explicit(&a->head, memory_order_relaxed);
    if (((uintptr_t)head & MBOX_IDLE) != 0)
        return true;
    if (head != tail)
        return false;
    bool held = a->held;
    if (held) {
        atomic_store_explicit(&a->stub.next, NULL, memory_order_relaxed);
        /* Set up the idle state before the CAS publishes it: once it
         * succeeds another consumer may start at once. */
        a->tail = &a->stub;
        a->held = false;
    } else if (tail != &a->stub) {
        return false;
    }
    /* The queue is empty: re-anchor the numbering (see mbox_push). */
    uint32_t anchor = atomic_load_explicit(&a->consumed_seq, memory_order_relaxed);
    if (anchor == 0) {
        anchor = 1;
        atomic_store_explicit(&a->consumed_seq, anchor, memory_order_relaxed);
    }
    atomic_store_explicit(&a->stub.seq, anchor, memory_order_relaxed);
    mbox_node *expected = tail;
    /* release: pairs with the acq_rel exchange of the push that next finds
     * the mailbox idle, and so with whoever runs the actor after us. */
    if (!atomic_compare_exchange_strong_explicit(&a->head, &expected,
                                                 (mbox_node *)((uintptr_t)&a->stub | MBOX_IDLE),
                                                 memory_order_release, memory_order_relaxed)) {
        a->tail = tail;
        a->held = held;
        return false;
    }
    if (held)
        *released = tail;
    return true;
}

#endif /* TROUPE_MAILBOX_H */
