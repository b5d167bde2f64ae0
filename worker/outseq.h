/* SPDX-License-Identifier: MIT */
/*
 * The outcome sequencer: outcomes of one input partition published in
 * offset order, while their events are processed in any order.
 *
 * Exactly-once with key ordering needs it (docs/runtime.md, "Exactly-once
 * delivery"): a transaction commits each partition's offsets up to its
 * lowest unfinished event, so it must not hold the records of a later
 * event. Handlers still run concurrently per key; only the publishing of
 * their outcomes follows the offsets. An outcome that arrives while an
 * earlier consumed event of its partition has not been published yet is
 * parked here, and handed out as soon as every earlier one was.
 *
 * Per partition, under the partition's epoch (as offsets.h):
 *   - track():  a message was consumed (offsets increase, gaps allowed:
 *               "earlier" means earlier consumed, not offset - 1);
 *   - arrive(): its outcome is ready. GO: the caller now holds the
 *               partition's turn and publishes it; PARKED: kept, the
 *               sequencer owns the item now; STALE: not tracked under
 *               that epoch (revoked or rewound meanwhile): publish
 *               nothing, the item stays the caller's;
 *   - next():   the turn holder has published; the next outcome to
 *               publish (the holder keeps the turn), or NULL: the turn is
 *               given up (the next event has no outcome yet, or the epoch
 *               changed).
 * Only one turn per partition exists, so outcomes are published one after
 * the other in consumption order, by whichever handler thread holds it. An
 * event that never arrives (shutdown cut it short, no outcome could be
 * built) keeps every later outcome of its partition parked until the
 * partition is revoked or reassigned.
 *
 * assign() and revoke() start a new epoch / forget the partition: parked
 * items of the old one are handed to the dispose callback (outside the
 * lock), never published. Memory is one entry per consumed, unpublished
 * message: bounded by what the runtime lets in flight per partition.
 *
 * Pure bookkeeping (no Kafka, no logging), thread-safe.
 */
#ifndef HOOKD_OUTSEQ_H
#define HOOKD_OUTSEQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hookd_outseq hookd_outseq_t;

/* A parked item that will never be published (revoke, reassign, destroy). */
typedef void(hookd_outseq_dispose_cb)(void *item);

typedef enum hookd_outseq_turn {
    HOOKD_OUTSEQ_GO = 0,     /* publish it now; then call hookd_outseq_next() */
    HOOKD_OUTSEQ_PARKED = 1, /* kept: the sequencer owns the item */
    HOOKD_OUTSEQ_STALE = 2   /* not tracked under that epoch: publish nothing */
} hookd_outseq_turn_t;

/* NULL when out of memory. `dispose` (not NULL) frees parked items dropped. */
hookd_outseq_t *hookd_outseq_new(hookd_outseq_dispose_cb *dispose);

/* Frees the sequencer; parked items go to dispose. */
void hookd_outseq_destroy(hookd_outseq_t *s);

/* Start (or restart) `partition` under `epoch`; forgets (disposes) any previous state. 0, or -1 (ENOMEM). */
int hookd_outseq_assign(hookd_outseq_t *s, int32_t partition, uint64_t epoch);

/* Forget `partition`: its parked items are disposed, a turn holder's next() gets NULL. */
void hookd_outseq_revoke(hookd_outseq_t *s, int32_t partition);

/* A message was consumed. 0; -1 when not owned under `epoch`, not above the last tracked offset, or ENOMEM. */
int hookd_outseq_track(hookd_outseq_t *s, int32_t partition, uint64_t epoch, int64_t offset);

/* The outcome `item` (not NULL) of a tracked message is ready. */
hookd_outseq_turn_t hookd_outseq_arrive(hookd_outseq_t *s, int32_t partition, uint64_t epoch,
                                        int64_t offset, void *item);

/* Turn holder only: the next outcome to publish, or NULL (turn given up). */
void *hookd_outseq_next(hookd_outseq_t *s, int32_t partition, uint64_t epoch);

/* Outcomes parked for `partition`; -1: all partitions. */
size_t hookd_outseq_parked(hookd_outseq_t *s, int32_t partition);

/* Tracked messages of `partition` whose outcome was not handed out yet (0 when not owned). */
size_t hookd_outseq_pending(hookd_outseq_t *s, int32_t partition);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_OUTSEQ_H */
