/* SPDX-License-Identifier: MIT */
/*
 * The offset tracker (see offsets.h).
 *
 * Each partition keeps its tracked messages in an offset ring (oring.h).
 * Consumption appends at the tail; acknowledgements mark entries done
 * wherever they are (found by binary search, offsets being sorted); done
 * entries are popped from the head, which is what moves the committable
 * position. A partition therefore costs memory only for the messages
 * between its lowest unfinished one and the newest consumed one, which the
 * pool's per-partition queue bound keeps small.
 */
#include "offsets.h"

#include "oring.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct hookd_offsets_entry {
    int64_t offset;
    uint16_t remaining; /* acknowledgements still awaited */
    uint8_t expected;   /* hookd_offsets_expect() was called */
    uint8_t done;
} hookd_offsets_entry_t;

typedef struct hookd_offsets_part {
    bool owned;
    bool dirty; /* committable moved since the last collect */
    uint64_t epoch;
    int64_t last_tracked; /* -1: nothing tracked since assignment */
    hookd_oring_t ring;   /* of hookd_offsets_entry_t */
} hookd_offsets_part_t;

struct hookd_offsets {
    pthread_mutex_t lock;
    hookd_offsets_part_t *parts; /* indexed by partition id */
    size_t nparts;
};

hookd_offsets_t *hookd_offsets_new(void)
{
    hookd_offsets_t *ot = calloc(1, sizeof(*ot));
    if (ot == NULL)
        return NULL;
    pthread_mutex_init(&ot->lock, NULL);
    return ot;
}

void hookd_offsets_destroy(hookd_offsets_t *ot)
{
    size_t i;
    if (ot == NULL)
        return;
    for (i = 0; i < ot->nparts; i++)
        hookd_oring_free(&ot->parts[i].ring);
    free(ot->parts);
    pthread_mutex_destroy(&ot->lock);
    free(ot);
}

/* The partition if owned under `epoch`, else NULL. Lock held. */
static hookd_offsets_part_t *owned_part(hookd_offsets_t *ot, int32_t partition, uint64_t epoch)
{
    hookd_offsets_part_t *p;
    if (partition < 0 || (size_t)partition >= ot->nparts)
        return NULL;
    p = &ot->parts[partition];
    if (!p->owned || p->epoch != epoch)
        return NULL;
    return p;
}

hookd_offsets_err_t hookd_offsets_assign(hookd_offsets_t *ot, int32_t partition, uint64_t epoch)
{
    hookd_offsets_part_t *p;
    if (partition < 0)
        return HOOKD_OFFSETS_ERR_NOT_OWNED;
    pthread_mutex_lock(&ot->lock);
    if (hookd_oring_table_reserve((void **)&ot->parts, &ot->nparts, sizeof(*ot->parts),
                                  partition) != 0) {
        pthread_mutex_unlock(&ot->lock);
        return HOOKD_OFFSETS_ERR_NOMEM;
    }
    p = &ot->parts[partition];
    p->owned = true;
    p->dirty = false;
    p->epoch = epoch;
    p->last_tracked = -1;
    if (p->ring.esz == 0) /* first assignment: the table entry is still zeroed */
        hookd_oring_init(&p->ring, sizeof(hookd_offsets_entry_t));
    hookd_oring_clear(&p->ring); /* a reassignment keeps the buffer */
    pthread_mutex_unlock(&ot->lock);
    return HOOKD_OFFSETS_OK;
}

void hookd_offsets_revoke(hookd_offsets_t *ot, int32_t partition)
{
    pthread_mutex_lock(&ot->lock);
    if (partition >= 0 && (size_t)partition < ot->nparts) {
        hookd_offsets_part_t *p = &ot->parts[partition];
        p->owned = false;
        p->dirty = false;
        hookd_oring_clear(&p->ring);
        p->last_tracked = -1;
    }
    pthread_mutex_unlock(&ot->lock);
}

hookd_offsets_err_t hookd_offsets_track(hookd_offsets_t *ot, int32_t partition, uint64_t epoch,
                                        int64_t offset)
{
    hookd_offsets_part_t *p;
    hookd_offsets_entry_t *e;
    hookd_offsets_err_t err = HOOKD_OFFSETS_OK;

    pthread_mutex_lock(&ot->lock);
    if ((p = owned_part(ot, partition, epoch)) == NULL) {
        err = HOOKD_OFFSETS_ERR_NOT_OWNED;
        goto done;
    }
    if (offset < 0 || offset <= p->last_tracked) {
        err = HOOKD_OFFSETS_ERR_ORDER;
        goto done;
    }
    if ((e = hookd_oring_push(&p->ring, offset)) == NULL) {
        err = HOOKD_OFFSETS_ERR_NOMEM;
        goto done;
    }
    /* With everything before it done, the committable position was
     * last_tracked + 1; it is now this (unfinished) offset, which can only
     * differ when the partition has an offset gap. */
    if (p->ring.count == 1 && p->last_tracked >= 0 && offset != p->last_tracked + 1)
        p->dirty = true;
    p->last_tracked = offset;
done:
    pthread_mutex_unlock(&ot->lock);
    return err;
}

/* Pop the done entries at the head. Lock held. */
static void advance(hookd_offsets_part_t *p)
{
    bool moved = false;
    while (p->ring.count > 0 && ((hookd_offsets_entry_t *)hookd_oring_at(&p->ring, 0))->done) {
        hookd_oring_pop(&p->ring);
        moved = true;
    }
    if (moved)
        p->dirty = true;
}

/*
 * Lock held. The tracked entry of `offset` on a partition owned under
 * `epoch`, or why there is none: expect and ack refuse the same cases.
 */
static hookd_offsets_err_t locate(hookd_offsets_t *ot, int32_t partition, uint64_t epoch,
                                  int64_t offset, hookd_offsets_part_t **part,
                                  hookd_offsets_entry_t **entry)
{
    long i;

    if ((*part = owned_part(ot, partition, epoch)) == NULL)
        return HOOKD_OFFSETS_ERR_NOT_OWNED;
    if ((i = hookd_oring_find(&(*part)->ring, offset)) < 0)
        return HOOKD_OFFSETS_ERR_UNKNOWN;
    *entry = hookd_oring_at(&(*part)->ring, (size_t)i);
    return HOOKD_OFFSETS_OK;
}

/* What a call does to a tracked message's count of awaited reports. */
typedef enum await_op { AWAIT_SET, AWAIT_ADD, AWAIT_ACK } await_op_t;

/*
 * expect (set the count, once), expect_more (add to a count not run out)
 * and ack (take one off) are one locked step each: the message is done,
 * and the head may advance, when its count reaches 0.
 */
static hookd_offsets_err_t await_change(hookd_offsets_t *ot, int32_t partition, uint64_t epoch,
                                        int64_t offset, await_op_t op, unsigned n)
{
    hookd_offsets_part_t *p;
    hookd_offsets_entry_t *e;
    hookd_offsets_err_t err;
    bool ok = false;

    pthread_mutex_lock(&ot->lock);
    err = locate(ot, partition, epoch, offset, &p, &e);
    if (err != HOOKD_OFFSETS_OK)
        goto done;
    switch (op) {
    case AWAIT_SET:
        ok = !e->expected && n <= UINT16_MAX;
        break;
    case AWAIT_ADD:
        ok = e->expected && e->remaining > 0 && n <= (unsigned)(UINT16_MAX - e->remaining);
        break;
    case AWAIT_ACK:
        ok = e->expected && e->remaining > 0;
        break;
    }
    if (!ok) {
        err = HOOKD_OFFSETS_ERR_STATE;
        goto done;
    }
    e->expected = 1;
    e->remaining = (uint16_t)(op == AWAIT_SET   ? n
                              : op == AWAIT_ADD ? e->remaining + n
                                                : e->remaining - 1u);
    if (e->remaining == 0) {
        e->done = 1;
        advance(p);
    }
done:
    pthread_mutex_unlock(&ot->lock);
    return err;
}

hookd_offsets_err_t hookd_offsets_expect(hookd_offsets_t *ot, int32_t partition, uint64_t epoch,
                                         int64_t offset, unsigned acks)
{
    return await_change(ot, partition, epoch, offset, AWAIT_SET, acks);
}

hookd_offsets_err_t hookd_offsets_ack(hookd_offsets_t *ot, int32_t partition, uint64_t epoch,
                                      int64_t offset)
{
    return await_change(ot, partition, epoch, offset, AWAIT_ACK, 1);
}

hookd_offsets_err_t hookd_offsets_expect_more(hookd_offsets_t *ot, int32_t partition,
                                              uint64_t epoch, int64_t offset, unsigned more)
{
    return await_change(ot, partition, epoch, offset, AWAIT_ADD, more);
}

/* Lock held. */
static int64_t committable_locked(const hookd_offsets_part_t *p)
{
    if (!p->owned || p->last_tracked < 0)
        return -1;
    if (p->ring.count > 0)
        return hookd_oring_offset_at(&p->ring, 0);
    return p->last_tracked + 1;
}

int64_t hookd_offsets_committable(hookd_offsets_t *ot, int32_t partition)
{
    int64_t o = -1;
    pthread_mutex_lock(&ot->lock);
    if (partition >= 0 && (size_t)partition < ot->nparts)
        o = committable_locked(&ot->parts[partition]);
    pthread_mutex_unlock(&ot->lock);
    return o;
}

size_t hookd_offsets_outstanding(hookd_offsets_t *ot, int32_t partition)
{
    size_t n = 0;
    pthread_mutex_lock(&ot->lock);
    if (partition >= 0 && (size_t)partition < ot->nparts && ot->parts[partition].owned)
        n = ot->parts[partition].ring.count;
    pthread_mutex_unlock(&ot->lock);
    return n;
}

size_t hookd_offsets_collect(hookd_offsets_t *ot, hookd_offsets_pos_t *out, size_t max, int all)
{
    size_t i, n = 0;
    pthread_mutex_lock(&ot->lock);
    for (i = 0; i < ot->nparts && n < max; i++) {
        hookd_offsets_part_t *p = &ot->parts[i];
        int64_t o;
        if (!p->owned || (!all && !p->dirty))
            continue;
        if ((o = committable_locked(p)) < 0)
            continue;
        out[n].partition = (int32_t)i;
        out[n].offset = o;
        n++;
        p->dirty = false;
    }
    pthread_mutex_unlock(&ot->lock);
    return n;
}
