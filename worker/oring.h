/* SPDX-License-Identifier: MIT */
/*
 * The offset ring: one input partition's consumed messages, in offset
 * order, for the bookkeeping cores that follow them (offsets.c, outseq.c).
 *
 * Entries are the caller's struct of `esz` bytes whose first member is the
 * int64_t offset. Consumption appends at the tail (offsets increase, so the
 * ring stays sorted and a lookup is a binary search); entries leave from the
 * head. The capacity is a power of two, doubled when full, so an index is a
 * mask; memory is bounded by how many messages of the partition are between
 * its oldest unfinished one and the newest consumed one.
 *
 * Partitions are indexed by their id in a table grown on assignment
 * (hookd_oring_table_reserve): partition ids are small and dense.
 *
 * Not thread-safe by itself: each user holds its own lock around every call.
 * Header-only, because every call is on the per-event path.
 */
#ifndef HOOKD_ORING_H
#define HOOKD_ORING_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct hookd_oring {
    unsigned char *buf;
    size_t esz;              /* entry size; the entry starts with its int64_t offset */
    size_t cap, head, count; /* entries [head .. head+count) mod cap, in offset order */
} hookd_oring_t;

/* An empty ring of `esz`-byte entries (allocates nothing yet). */
static inline void hookd_oring_init(hookd_oring_t *r, size_t esz)
{
    r->buf = NULL;
    r->esz = esz;
    r->cap = r->head = r->count = 0;
}

static inline void hookd_oring_free(hookd_oring_t *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = r->head = r->count = 0;
}

/* Forget every entry, keeping the buffer. */
static inline void hookd_oring_clear(hookd_oring_t *r)
{
    r->head = r->count = 0;
}

/* The i-th entry from the head (i < count). */
static inline void *hookd_oring_at(const hookd_oring_t *r, size_t i)
{
    return r->buf + ((r->head + i) & (r->cap - 1)) * r->esz;
}

static inline int64_t hookd_oring_offset_at(const hookd_oring_t *r, size_t i)
{
    int64_t o;
    memcpy(&o, hookd_oring_at(r, i), sizeof(o));
    return o;
}

/*
 * A new zeroed entry at the tail holding `offset` (the caller keeps offsets
 * increasing), or NULL when out of memory (the ring is unchanged). Growing
 * unrolls the ring so it starts at index 0 again.
 */
static inline void *hookd_oring_push(hookd_oring_t *r, int64_t offset)
{
    void *e;
    if (r->count == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 64, i;
        unsigned char *nb = malloc(ncap * r->esz);
        if (nb == NULL)
            return NULL;
        for (i = 0; i < r->count; i++)
            memcpy(nb + i * r->esz, hookd_oring_at(r, i), r->esz);
        free(r->buf);
        r->buf = nb;
        r->cap = ncap;
        r->head = 0;
    }
    e = r->buf + ((r->head + r->count) & (r->cap - 1)) * r->esz;
    memset(e, 0, r->esz);
    memcpy(e, &offset, sizeof(offset));
    r->count++;
    return e;
}

/* Index (from the head) of the entry of `offset`, or -1. */
static inline long hookd_oring_find(const hookd_oring_t *r, int64_t offset)
{
    size_t lo = 0, hi = r->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t o = hookd_oring_offset_at(r, mid);
        if (o == offset)
            return (long)mid;
        if (o < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Drop the head entry (count > 0). */
static inline void hookd_oring_pop(hookd_oring_t *r)
{
    r->head = (r->head + 1) & (r->cap - 1);
    r->count--;
}

/*
 * Make `*table` (of `*n` entries of `esz` bytes) hold index `partition`,
 * the new entries zeroed. 0, or -1 when out of memory (table unchanged).
 */
static inline int hookd_oring_table_reserve(void **table, size_t *n, size_t esz, int32_t partition)
{
    size_t need;
    unsigned char *nt;
    if (partition < 0)
        return -1;
    if ((size_t)partition < *n)
        return 0;
    need = (size_t)partition + 1;
    if ((nt = realloc(*table, need * esz)) == NULL)
        return -1;
    memset(nt + *n * esz, 0, (need - *n) * esz);
    *table = nt;
    *n = need;
    return 0;
}

#endif /* HOOKD_ORING_H */
