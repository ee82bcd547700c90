/*
 * names.c — the per-runtime name registry: name -> actor reference.
 *
 * One mutex guards an open-addressing table. A name is released when its
 * actor exits: the exiting actor calls tr__names_release_all when its slot's
 * has_names flag says the registry may hold names for it. This file must
 * not send messages.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct name_entry {
    bool used;
    char name[TR_NAME_MAX + 1];
    tr_ref ref;
};

struct names {
    pthread_mutex_t mu;
    struct name_entry *tab; /* mu */
    uint32_t cap, n;
};

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

tr_err tr__names_init(tr_runtime *rt)
{
    struct names *ns = calloc(1, sizeof *ns);
    if (ns == NULL)
        return TR_ENOMEM;
    pthread_mutex_init(&ns->mu, NULL);
    rt->names = ns;
    return TR_OK;
}

void tr__names_free(tr_runtime *rt)
{
    struct names *ns = rt->names;
    if (ns == NULL)
        return;
    pthread_mutex_destroy(&ns->mu);
    free(ns->tab);
    free(ns);
    rt->names = NULL;
}

/* mu held: index of name, or of the empty slot where it would go. */
static uint32_t names_probe(const struct names *ns, const char *name)
{
    uint32_t mask = ns->cap - 1, i = name_hash(name) & mask;
    while (ns->tab[i].used && strcmp(ns->tab[i].name, name) != 0)
        i = (i + 1) & mask;
    return i;
}

static bool names_grow(struct names *ns)
{
    uint32_t ncap = ns->cap ? ns->cap * 2 : 16;
    struct name_entry *old = ns->tab;
    uint32_t oldcap = ns->cap;
    ns->tab = calloc(ncap, sizeof *ns->tab);
    if (ns->tab == NULL) {
        ns->tab = old;
        return false;
    }
    ns->cap = ncap;
    for (uint32_t i = 0; i < oldcap; i++)
        if (old[i].used)
            ns->tab[names_probe(ns, old[i].name)] = old[i];
    free(old);
    return true;
}

/* mu held: removes entry i, shifting the rest of its run back. */
static void names_remove_at(struct names *ns, uint32_t i)
{
    uint32_t mask = ns->cap - 1;
    ns->tab[i].used = false;
    ns->n--;
    for (uint32_t j = (i + 1) & mask; ns->tab[j].used; j = (j + 1) & mask) {
        uint32_t home = name_hash(ns->tab[j].name) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            ns->tab[i] = ns->tab[j];
            ns->tab[j].used = false;
            i = j;
        }
    }
}

static tr_err name_check(const char *name)
{
    if (name == NULL)
        return TR_EINVAL;
    size_t n = strnlen(name, TR_NAME_MAX + 1);
    if (n == 0)
        return TR_EINVAL;
    return n > TR_NAME_MAX ? TR_ETOOBIG : TR_OK;
}

tr_err tr__names_register(tr_runtime *rt, const char *name, tr_ref ref, tr_actor *a,
                          tr_err (*then)(void *arg), void *arg)
{
    struct names *ns = rt->names;
    pthread_mutex_lock(&ns->mu);
    if ((ns->n + 1) * 2 > ns->cap && !names_grow(ns)) {
        pthread_mutex_unlock(&ns->mu);
        return TR_ENOMEM;
    }
    uint32_t i = names_probe(ns, name);
    if (ns->tab[i].used) {
        pthread_mutex_unlock(&ns->mu);
        return TR_EEXIST;
    }
    /* seq_cst store then load, against tr__finish_exit's seq_cst incarnation
     * bump then has_names load: either we see the actor dead, or its exit
     * sees the flag and releases the name after we unlock. */
    atomic_store_explicit(&a->has_names, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&a->incarnation, memory_order_seq_cst) != ref.incarnation) {
        pthread_mutex_unlock(&ns->mu);
        return TR_ENOACTOR;
    }
    tr_err err = then != NULL ? then(arg) : TR_OK;
    if (err == TR_OK) {
        ns->tab[i].used = true;
        memcpy(ns->tab[i].name, name, strlen(name) + 1);
        ns->tab[i].ref = ref;
        ns->n++;
    }
    pthread_mutex_unlock(&ns->mu);
    return err;
}

void tr__names_release_all(tr_runtime *rt, tr_ref ref)
{
    struct names *ns = rt->names;
    pthread_mutex_lock(&ns->mu);
    for (uint32_t i = 0; i < ns->cap;) {
        if (ns->tab[i].used && tr_ref_eq(ns->tab[i].ref, ref))
            names_remove_at(ns, i); /* re-examine i: a later entry may have moved in */
        else
            i++;
    }
    pthread_mutex_unlock(&ns->mu);
}

tr_err tr_register(tr_ctx *ctx, const char *name, tr_ref ref)
{
    if (ctx == NULL)
        return TR_EINVAL;
    tr_err err = name_check(name);
    if (err != TR_OK)
        return err;
    if (ref.node != ctx->rt->node)
        return ref.node == 0 ? TR_EINVAL : TR_ENOROUTE;
    tr_actor *a = tr__actor_lookup(ctx->rt, ref.id);
    if (a == NULL || (ref.incarnation & 1) == 0)
        return TR_ENOACTOR;
    return tr__names_register(ctx->rt, name, ref, a, NULL, NULL);
}

tr_err tr_unregister(tr_ctx *ctx, const char *name)
{
    if (ctx == NULL)
        return TR_EINVAL;
    tr_err err = name_check(name);
    if (err != TR_OK)
        return err;
    struct names *ns = ctx->rt->names;
    pthread_mutex_lock(&ns->mu);
    err = TR_ENOTFOUND;
    if (ns->cap != 0) {
        uint32_t i = names_probe(ns, name);
        if (ns->tab[i].used) {
            names_remove_at(ns, i);
            err = TR_OK;
        }
    }
    pthread_mutex_unlock(&ns->mu);
    return err;
}

tr_err tr_whereis(tr_ref *out, tr_runtime *rt, const char *name)
{
    if (out == NULL || rt == NULL)
        return TR_EINVAL;
    tr_err err = name_check(name);
    if (err != TR_OK)
        return err;
    struct names *ns = rt->names;
    pthread_mutex_lock(&ns->mu);
    err = TR_ENOTFOUND;
    if (ns->cap != 0) {
        uint32_t i = names_probe(ns, name);
        if (ns->tab[i].used) {
            *out = ns->tab[i].ref;
            err = TR_OK;
        }
    }
    pthread_mutex_unlock(&ns->mu);
    return err;
}
