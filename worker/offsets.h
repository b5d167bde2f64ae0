/* SPDX-License-Identifier: MIT */
/*
 * The offset tracker: per input partition, which consumed messages have a
 * durable outcome, and so how far the consumer may commit.
 *
 * A message is tracked when it is consumed (offsets increase within a
 * partition, gaps allowed), told how many acknowledgements its outcome needs
 * once the engine has decided (1 for a result, 2 for result + dead letter),
 * and done when that many delivery reports said "persisted". Delivery
 * reports arrive in any order; the committable position of a partition is
 * the lowest tracked offset not yet done (or the last tracked + 1 when all
 * are done), so a commit never passes an unfinished message.
 *
 * Every assignment of a partition gets a new epoch. Calls carrying another
 * epoch than the partition's current one are ignored: a late delivery report
 * of a revoked partition cannot move the position of a later owner.
 *
 * Pure bookkeeping (no Kafka, no logging), thread-safe.
 */
#ifndef HOOKD_OFFSETS_H
#define HOOKD_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hookd_offsets hookd_offsets_t;

typedef enum hookd_offsets_err {
    HOOKD_OFFSETS_OK = 0,
    HOOKD_OFFSETS_ERR_NOT_OWNED, /* partition not assigned, or another epoch */
    HOOKD_OFFSETS_ERR_UNKNOWN,   /* offset not tracked (or already done) */
    HOOKD_OFFSETS_ERR_ORDER,     /* offset not above the last tracked one */
    HOOKD_OFFSETS_ERR_STATE,     /* expect twice, ack before expect, or ack once too often */
    HOOKD_OFFSETS_ERR_NOMEM
} hookd_offsets_err_t;

/* A partition and the offset to store for it (the next one to consume). */
typedef struct hookd_offsets_pos {
    int32_t partition;
    int64_t offset;
} hookd_offsets_pos_t;

hookd_offsets_t *hookd_offsets_new(void);
void hookd_offsets_destroy(hookd_offsets_t *ot);

/* Start (or restart) tracking `partition` under `epoch`; forgets any previous state. */
hookd_offsets_err_t hookd_offsets_assign(hookd_offsets_t *ot, int32_t partition, uint64_t epoch);

/* Stop tracking `partition`: everything not done is abandoned (uncommitted). */
void hookd_offsets_revoke(hookd_offsets_t *ot, int32_t partition);

/* A message was consumed. */
hookd_offsets_err_t hookd_offsets_track(hookd_offsets_t *ot, int32_t partition, uint64_t epoch,
                                        int64_t offset);

/* Its outcome needs `acks` delivery reports (0: nothing to publish, done now). */
hookd_offsets_err_t hookd_offsets_expect(hookd_offsets_t *ot, int32_t partition, uint64_t epoch,
                                         int64_t offset, unsigned acks);

/* One record of its outcome was acknowledged by the broker. */
hookd_offsets_err_t hookd_offsets_ack(hookd_offsets_t *ot, int32_t partition, uint64_t epoch,
                                      int64_t offset);

/*
 * Its outcome now needs `more` delivery reports besides those it awaits: a
 * record refused for good was replaced by several (publisher.h, the stand-ins
 * of a retry record). Only while at least one awaited report is still
 * missing (the replaced record's own), so the message cannot have been done.
 */
hookd_offsets_err_t hookd_offsets_expect_more(hookd_offsets_t *ot, int32_t partition,
                                              uint64_t epoch, int64_t offset, unsigned more);

/*
 * The offset that may be stored for `partition` (the next one to consume):
 * the lowest tracked offset not done, else the last tracked + 1. -1 when
 * the partition is not owned or nothing was tracked since its assignment.
 */
int64_t hookd_offsets_committable(hookd_offsets_t *ot, int32_t partition);

/* Tracked messages of `partition` not done yet (0 when not owned). */
size_t hookd_offsets_outstanding(hookd_offsets_t *ot, int32_t partition);

/*
 * The owned partitions whose committable offset moved since the last
 * collect, at most `max` of them (the others stay pending for the next
 * call). Returns how many were written to `out`. With `all` set, every
 * owned partition that has a committable offset is returned.
 */
size_t hookd_offsets_collect(hookd_offsets_t *ot, hookd_offsets_pos_t *out, size_t max, int all);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_OFFSETS_H */
