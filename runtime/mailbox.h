/*
 * mailbox.h — an actor's mailbox: an intrusive multi-producer,
 * single-consumer queue (Vyukov's node-based design with a stub node that is
 * re-pushed when the queue runs dry, so consumed messages can be freed at
 * once), plus an "idle" mark in bit 0 of the producer end.
 *
 * The idle mark is how exactly one sender schedules an actor: the consumer
 * sets it (mbox_mark_idle) only when it has drained the queue, and the first
 * push that finds it set clears it and reports so; that pusher alone makes the
 * actor runnable. Only the slot's current consumer may call pop and mark_idle.
 * This file must not know about scheduling or messages beyond the link.
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
    a->tail = &a->stub;
    atomic_store_explicit(&a->head, (mbox_node *)((uintptr_t)&a->stub | MBOX_IDLE),
                          memory_order_relaxed);
}

/* Appends n. Returns true when the mailbox was idle: the caller must then
 * schedule the actor. Any thread. */
static inline bool mbox_push(tr_actor *a, mbox_node *n)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    /* acq_rel: release publishes nothing by itself (the link store below
     * does) but acquire pairs with mbox_mark_idle's release CAS, so a pusher
     * that finds the actor idle sees everything its last consumer wrote. */
    mbox_node *prev = atomic_exchange_explicit(&a->head, n, memory_order_acq_rel);
    bool was_idle = ((uintptr_t)prev & MBOX_IDLE) != 0;
    prev = (mbox_node *)((uintptr_t)prev & ~MBOX_IDLE);
    /* release: pairs with the acquire loads of ->next in mbox_pop, making
     * n's contents visible to the consumer. */
    atomic_store_explicit(&prev->next, n, memory_order_release);
    return was_idle;
}

/* Consumer only: the oldest message, or NULL when the queue is empty or a
 * producer is between its exchange and its link store (then mark_idle fails
 * and the consumer comes back). */
static inline mbox_node *mbox_pop(tr_actor *a)
{
    mbox_node *tail = a->tail;
    /* acquire: pairs with the release link store in mbox_push. */
    mbox_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &a->stub) {
        if (next == NULL)
            return NULL;
        a->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next != NULL) {
        a->tail = next;
        return tail;
    }
    mbox_node *head = atomic_load_explicit(&a->head, memory_order_acquire);
    if (tail != head)
        return NULL;
    /* tail is the last node: put the stub behind it so tail can be handed out. */
    atomic_store_explicit(&a->stub.next, NULL, memory_order_relaxed);
    mbox_node *prev = atomic_exchange_explicit(&a->head, &a->stub, memory_order_acq_rel);
    prev = (mbox_node *)((uintptr_t)prev & ~MBOX_IDLE);
    atomic_store_explicit(&prev->next, &a->stub, memory_order_release);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        a->tail = next;
        return tail;
    }
    return NULL;
}

/* Consumer only: marks the mailbox idle if it is empty. Returns false when
 * messages arrived meanwhile (the consumer must keep going). */
static inline bool mbox_mark_idle(tr_actor *a)
{
    mbox_node *tail = a->tail;
    mbox_node *head = atomic_load_explicit(&a->head, memory_order_relaxed);
    if (((uintptr_t)head & MBOX_IDLE) != 0)
        return true;
    if (head != tail || tail != &a->stub)
        return false;
    /* release: pairs with the acq_rel exchange of the push that next finds
     * the mailbox idle, and so with whoever runs the actor after us. */
    return atomic_compare_exchange_strong_explicit(&a->head, &tail,
                                                   (mbox_node *)((uintptr_t)tail | MBOX_IDLE),
                                                   memory_order_release, memory_order_relaxed);
}

/* Consumer only: true when nothing is queued (a cheap peek; a push still in
 * progress may be missed, which mbox_mark_idle then catches). The tail is
 * the oldest message not yet handed out, or the stub. */
static inline bool mbox_empty(tr_actor *a)
{
    mbox_node *tail = a->tail;
    return tail == &a->stub && atomic_load_explicit(&tail->next, memory_order_acquire) == NULL;
}

#endif /* TROUPE_MAILBOX_H */
