/* SPDX-License-Identifier: MIT */
/*
 * The outcome sequencer (see outseq.h).
 *
 * Each partition keeps its consumed, not yet published messages in offset
 * order in a ring buffer, as the offset tracker does: consumption appends
 * at the tail, an arriving outcome is found by binary search and either
 * leaves from the head (GO) or waits in its entry (parked), and the turn
 * holder pops parked entries from the head until it meets one whose
 * outcome has not arrived. The turn is a flag per partition: set by GO,
 * cleared by next() returning NULL, so two threads never publish outcomes
 * of one partition at once and none publishes out of order.
 */
#include "outseq.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct outseq_entry {
    int64_t offset;
    void *item; /* NULL: its outcome has not arrived */
} outseq_entry_t;

typedef struct outseq_part {
    bool owned;
    bool turn; /* a thread is publishing this partition's outcomes */
    uint64_t epoch;
    int64_t last_tracked; /* -1: nothing tracked since assignment */
    outseq_entry_t *ring;
    size_t cap, head, count; /* ring[head .. head+count) in offset order */
    size_t parked;
} outseq_part_t;

struct hookd_outseq {
    pthread_mutex_t lock;
    hookd_outseq_dispose_cb *dispose;
    outseq_part_t *parts; /* indexed by partition id */
    size_t nparts;
};

hookd_outseq_t *hookd_outseq_new(hookd_outseq_dispose_cb *dispose)
{
    hookd_outseq_t *s;
    if (dispose == NULL || (s = calloc(1, sizeof(*s))) == NULL)
        return NULL;
    s->dispose = dispose;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

/* cap is a power of two (32, doubled when full): a mask instead of a division. */
static outseq_entry_t *entry_at(outseq_part_t *p, size_t i)
{
    return &p->ring[(p->head + i) & (p->cap - 1)];
}

/* Hand the parked items of a detached ring to dispose (lock not held). */
static void dispose_ring(hookd_outseq_t *s, outseq_part_t *old)
{
    size_t i;
    for (i = 0; i < old->count; i++) {
        outseq_entry_t *e = entry_at(old, i);
        if (e->item != NULL)
            s->dispose(e->item);
    }
    free(old->ring);
}

void hookd_outseq_destroy(hookd_outseq_t *s)
{
    size_t i;
    if (s == NULL)
        return;
    for (i = 0; i < s->nparts; i++)
        dispose_ring(s, &s->parts[i]);
    free(s->parts);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* The partition if owned under `epoch`, else NULL. Lock held. */
static outseq_part_t *owned_part(hookd_outseq_t *s, int32_t partition, uint64_t epoch)
{
    outseq_part_t *p;
    if (partition < 0 || (size_t)partition >= s->nparts)
        return NULL;
    p = &s->parts[partition];
    return p->owned && p->epoch == epoch ? p : NULL;
}

/* Detach the partition's state into `old` (disposed by the caller, unlocked). Lock held. */
static void detach(outseq_part_t *p, outseq_part_t *old)
{
    *old = *p;
    p->ring = NULL;
    p->cap = p->head = p->count = p->parked = 0;
    p->turn = false;
    p->last_tracked = -1;
}

int hookd_outseq_assign(hookd_outseq_t *s, int32_t partition, uint64_t epoch)
{
    outseq_part_t old;
    memset(&old, 0, sizeof(old));
    if (partition < 0)
        return -1;
    pthread_mutex_lock(&s->lock);
    if ((size_t)partition >= s->nparts) {
        size_t n = (size_t)partition + 1;
        outseq_part_t *np = realloc(s->parts, n * sizeof(*np));
        if (np == NULL) {
            pthread_mutex_unlock(&s->lock);
            return -1;
        }
        memset(np + s->nparts, 0, (n - s->nparts) * sizeof(*np));
        s->parts = np;
        s->nparts = n;
    }
    detach(&s->parts[partition], &old);
    s->parts[partition].owned = true;
    s->parts[partition].epoch = epoch;
    pthread_mutex_unlock(&s->lock);
    dispose_ring(s, &old);
    return 0;
}

void hookd_outseq_revoke(hookd_outseq_t *s, int32_t partition)
{
    outseq_part_t old;
    memset(&old, 0, sizeof(old));
    pthread_mutex_lock(&s->lock);
    if (partition >= 0 && (size_t)partition < s->nparts) {
        detach(&s->parts[partition], &old);
        s->parts[partition].owned = false;
    }
    pthread_mutex_unlock(&s->lock);
    dispose_ring(s, &old);
}

int hookd_outseq_track(hookd_outseq_t *s, int32_t partition, uint64_t epoch, int64_t offset)
{
    outseq_part_t *p;
    int rc = -1;
    pthread_mutex_lock(&s->lock);
    if ((p = owned_part(s, partition, epoch)) == NULL || offset <= p->last_tracked)
        goto out;
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 32, i;
        outseq_entry_t *ring = malloc(cap * sizeof(*ring));
        if (ring == NULL)
            goto out;
        for (i = 0; i < p->count; i++)
            ring[i] = *entry_at(p, i);
        free(p->ring);
        p->ring = ring;
        p->cap = cap;
        p->head = 0;
    }
    p->ring[(p->head + p->count) & (p->cap - 1)] = (outseq_entry_t){offset, NULL};
    p->count++;
    p->last_tracked = offset;
    rc = 0;
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Index of `offset` in the ring, or -1. Lock held. */
static long find(outseq_part_t *p, int64_t offset)
{
    size_t lo = 0, hi = p->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t o = entry_at(p, mid)->offset;
        if (o == offset)
            return (long)mid;
        if (o < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static void pop_head(outseq_part_t *p)
{
    p->head = (p->head + 1) & (p->cap - 1);
    p->count--;
}

hookd_outseq_turn_t hookd_outseq_arrive(hookd_outseq_t *s, int32_t partition, uint64_t epoch,
                                        int64_t offset, void *item)
{
    hookd_outseq_turn_t r = HOOKD_OUTSEQ_STALE;
    outseq_part_t *p;
    long i;
    pthread_mutex_lock(&s->lock);
    if (item == NULL || (p = owned_part(s, partition, epoch)) == NULL ||
        (i = find(p, offset)) < 0 || entry_at(p, (size_t)i)->item != NULL)
        goto out;
    if (i == 0 && !p->turn) {
        pop_head(p);
        p->turn = true;
        r = HOOKD_OUTSEQ_GO;
    } else {
        entry_at(p, (size_t)i)->item = item;
        p->parked++;
        r = HOOKD_OUTSEQ_PARKED;
    }
out:
    pthread_mutex_unlock(&s->lock);
    return r;
}

void *hookd_outseq_next(hookd_outseq_t *s, int32_t partition, uint64_t epoch)
{
    outseq_part_t *p;
    void *item = NULL;
    pthread_mutex_lock(&s->lock);
    /* Another epoch: the turn died with the old one (revoke/assign cleared it). */
    if ((p = owned_part(s, partition, epoch)) == NULL)
        goto out;
    if (p->count > 0 && entry_at(p, 0)->item != NULL) {
        item = entry_at(p, 0)->item;
        pop_head(p);
        p->parked--;
    } else {
        p->turn = false;
    }
out:
    pthread_mutex_unlock(&s->lock);
    return item;
}

size_t hookd_outseq_parked(hookd_outseq_t *s, int32_t partition)
{
    size_t n = 0, i;
    pthread_mutex_lock(&s->lock);
    for (i = 0; i < s->nparts; i++)
        if (partition < 0 || (size_t)partition == i)
            n += s->parts[i].parked;
    pthread_mutex_unlock(&s->lock);
    return n;
}

size_t hookd_outseq_pending(hookd_outseq_t *s, int32_t partition)
{
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    if (partition >= 0 && (size_t)partition < s->nparts && s->parts[partition].owned)
        n = s->parts[partition].count;
    pthread_mutex_unlock(&s->lock);
    return n;
}
