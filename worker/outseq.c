/* SPDX-License-Identifier: MIT */
/*
 * The outcome sequencer (see outseq.h).
 *
 * Each partition keeps its consumed, not yet published messages in an
 * offset ring (oring.h), as the offset tracker does: consumption appends
 * at the tail, an arriving outcome is found by binary search and either
 * leaves from the head (GO) or waits in its entry (parked), and the turn
 * holder pops parked entries from the head until it meets one whose
 * outcome has not arrived. The turn is a flag per partition: set by GO,
 * cleared by next() returning NULL, so two threads never publish outcomes
 * of one partition at once and none publishes out of order.
 */
#include "outseq.h"

#include "oring.h"

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
    hookd_oring_t ring;   /* of outseq_entry_t */
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

static outseq_entry_t *entry_at(outseq_part_t *p, size_t i)
{
    return hookd_oring_at(&p->ring, i);
}

/* Hand the parked items of a detached ring to dispose (lock not held). */
static void dispose_ring(hookd_outseq_t *s, outseq_part_t *old)
{
    size_t i;
    for (i = 0; i < old->ring.count; i++) {
        outseq_entry_t *e = entry_at(old, i);
        if (e->item != NULL)
            s->dispose(e->item);
    }
    hookd_oring_free(&old->ring);
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
    hookd_oring_init(&p->ring, sizeof(outseq_entry_t));
    p->parked = 0;
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
    if (hookd_oring_table_reserve((void **)&s->parts, &s->nparts, sizeof(*s->parts), partition) !=
        0) {
        pthread_mutex_unlock(&s->lock);
        return -1;
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
    if (hookd_oring_push(&p->ring, offset) == NULL)
        goto out;
    p->last_tracked = offset;
    rc = 0;
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

hookd_outseq_turn_t hookd_outseq_arrive(hookd_outseq_t *s, int32_t partition, uint64_t epoch,
                                        int64_t offset, void *item)
{
    hookd_outseq_turn_t r = HOOKD_OUTSEQ_STALE;
    outseq_part_t *p;
    long i;
    pthread_mutex_lock(&s->lock);
    if (item == NULL || (p = owned_part(s, partition, epoch)) == NULL ||
        (i = hookd_oring_find(&p->ring, offset)) < 0 || entry_at(p, (size_t)i)->item != NULL)
        goto out;
    if (i == 0 && !p->turn) {
        hookd_oring_pop(&p->ring);
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
    if (p->ring.count > 0 && entry_at(p, 0)->item != NULL) {
        item = entry_at(p, 0)->item;
        hookd_oring_pop(&p->ring);
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
        n = s->parts[partition].ring.count;
    pthread_mutex_unlock(&s->lock);
    return n;
}
