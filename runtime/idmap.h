/*
 * idmap.h — a small map from non-zero 64-bit ids to pointers: open
 * addressing with linear probing and backward-shift deletion (no
 * tombstones). Used for timers by id and open requests by correlation id.
 * Not thread-safe: each map has one owner or one lock.
 */
#ifndef TROUPE_IDMAP_H
#define TROUPE_IDMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct idmap_entry {
    uint64_t id; /* 0 = empty */
    void *val;
};

typedef struct idmap {
    struct idmap_entry *tab;
    uint32_t cap, n;
} idmap;

static inline uint32_t idmap_home(const idmap *m, uint64_t id)
{
    return (uint32_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (m->cap - 1);
}

static inline bool idmap_put(idmap *m, uint64_t id, void *val);

static inline bool idmap_grow(idmap *m)
{
    uint32_t oldcap = m->cap;
    struct idmap_entry *old = m->tab;
    uint32_t ncap = oldcap ? oldcap * 2 : 16;
    struct idmap_entry *tab = calloc(ncap, sizeof *tab);
    if (tab == NULL)
        return false;
    m->tab = tab;
    m->cap = ncap;
    m->n = 0;
    for (uint32_t i = 0; i < oldcap; i++)
        if (old[i].id != 0)
            idmap_put(m, old[i].id, old[i].val);
    free(old);
    return true;
}

/* Adds id (non-zero, not present). False when memory runs out. */
static inline bool idmap_put(idmap *m, uint64_t id, void *val)
{
    if ((m->n + 1) * 2 > m->cap && !idmap_grow(m))
        return false;
    uint32_t i = idmap_home(m, id);
    while (m->tab[i].id != 0)
        i = (i + 1) & (m->cap - 1);
    m->tab[i].id = id;
    m->tab[i].val = val;
    m->n++;
    return true;
}

/* Removes id and returns its value, or NULL when absent. */
static inline void *idmap_take(idmap *m, uint64_t id)
{
    if (m->n == 0)
        return NULL;
    uint32_t mask = m->cap - 1, i = idmap_home(m, id);
    while (m->tab[i].id != 0 && m->tab[i].id != id)
        i = (i + 1) & mask;
    if (m->tab[i].id == 0)
        return NULL;
    void *val = m->tab[i].val;
    m->tab[i].id = 0;
    m->n--;
    /* Move later entries of the run back so lookups never stop early. */
    for (uint32_t j = (i + 1) & mask; m->tab[j].id != 0; j = (j + 1) & mask) {
        uint32_t home = idmap_home(m, m->tab[j].id);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->tab[i] = m->tab[j];
            m->tab[j].id = 0;
            i = j;
        }
    }
    return val;
}

static inline void idmap_free(idmap *m)
{
    free(m->tab);
    m->tab = NULL;
    m->cap = m->n = 0;
}

#endif /* TROUPE_IDMAP_H */
