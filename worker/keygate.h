/* SPDX-License-Identifier: MIT */
/*
 * The key gate: which queued item a handler thread may run next.
 *
 * The pure scheduling core of the handler pool (pool.c holds the lock and
 * the threads around it); single-threaded, no allocation crosses a call,
 * so it is tested directly against a model (tests/unit/test_keygate.c).
 *
 * Items are pushed per partition under the partition's epoch and sorted
 * into lanes:
 *   - by key (by_key = true): one lane per distinct Kafka key of a
 *     partition; items without a key share the partition's keyless lane;
 *   - by partition (by_key = false): one lane per partition, the key is
 *     ignored.
 * A lane runs one item at a time, in push order; different lanes run in
 * parallel. Runnable lanes (queued items, none running) wait in one FIFO,
 * so threads take lanes round-robin, one item per turn, and a lane whose
 * item is slow holds nothing but itself.
 *
 * A lane outlives a revoke while its item runs: an item of the same key
 * pushed under the next epoch waits behind it, so a key never runs twice at
 * once even across a reassignment. An idle, empty lane is freed.
 *
 * A keyed lane can be held (retry tiers: its event waits in a tier topic):
 * a held lane runs nothing until released, and is not freed while held.
 * A hold carries a token (which event holds it) and a tag (which tier it
 * waits in): release needs the token, so a stale release cannot free a
 * later hold; revoke and clear drop the holds of their partition.
 *
 * Items are opaque (`void *`), owned by the caller except while queued;
 * revoke and clear hand the queued ones back as a chain, so the caller can
 * dispose of them outside its lock.
 */
#ifndef HOOKD_KEYGATE_H
#define HOOKD_KEYGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hookd_keygate hookd_keygate_t;
/* The lane an item was taken from: give it back to hookd_keygate_finish(). */
typedef struct hookd_keygate_lane hookd_keygate_lane_t;
/* Items handed back by revoke/clear; pop them with hookd_keygate_chain_pop(). */
typedef struct hookd_keygate_node hookd_keygate_chain_t;

/* NULL when out of memory. */
hookd_keygate_t *hookd_keygate_new(bool by_key);

/* Frees the gate and its queues; returns the queued items as a chain. */
hookd_keygate_chain_t *hookd_keygate_destroy(hookd_keygate_t *g);

/* Accept pushes for `partition` under `epoch`. 0, or -1 when out of memory. */
int hookd_keygate_assign(hookd_keygate_t *g, int32_t partition, uint64_t epoch);

/*
 * Queue `item` (not NULL) for `partition` with its Kafka key (`key` NULL:
 * no key; a zero-length key is a key). 0 when queued; -1 when the partition
 * is not assigned under `epoch` or out of memory: the item stays the
 * caller's.
 */
int hookd_keygate_push(hookd_keygate_t *g, int32_t partition, uint64_t epoch, const void *key,
                       size_t key_len, void *item);

/*
 * The next runnable item, or NULL when none: its lane is marked running
 * until hookd_keygate_finish(lane). `partition` and `epoch` (may be NULL)
 * get what the item was pushed under.
 */
void *hookd_keygate_take(hookd_keygate_t *g, int32_t *partition, uint64_t *epoch,
                         hookd_keygate_lane_t **lane);

/* The item taken from `lane` is finished. True when something became runnable. */
bool hookd_keygate_finish(hookd_keygate_t *g, hookd_keygate_lane_t *lane);

/* Is any item runnable? */
bool hookd_keygate_runnable(const hookd_keygate_t *g);

/*
 * Stop accepting items for `partition` and hand back its queued ones
 * (*count, may be NULL, gets how many). Running items keep their lanes
 * until finished.
 */
hookd_keygate_chain_t *hookd_keygate_revoke(hookd_keygate_t *g, int32_t partition, size_t *count);

/* Hand back the queued items of `partition`, which stays assigned. */
hookd_keygate_chain_t *hookd_keygate_clear(hookd_keygate_t *g, int32_t partition, size_t *count);

/* Pop one item off a chain (NULL at its end); frees the chain as it goes. */
void *hookd_keygate_chain_pop(hookd_keygate_chain_t **chain);

/*
 * Hold the lane of (`partition`, `key`) with `token` and `tag`: nothing of
 * it runs until hookd_keygate_release() with that token. Holding a held
 * lane replaces its token and tag. Only keyed lanes of a gate ordering by
 * key can be held: -1 (nothing held) for a NULL key, a gate by partition,
 * a partition not assigned, or out of memory.
 */
int hookd_keygate_hold(hookd_keygate_t *g, int32_t partition, const void *key, size_t key_len,
                       int64_t token, int tag);

/*
 * Release the hold of (`partition`, `key`) when its token is `token`.
 * True when something became runnable.
 */
bool hookd_keygate_release(hookd_keygate_t *g, int32_t partition, const void *key, size_t key_len,
                           int64_t token);

/* Release every hold of `partition` tagged `tag` (-1: every hold). True when something became runnable. */
bool hookd_keygate_release_tag(hookd_keygate_t *g, int32_t partition, int tag);

/* Lanes held in `partition`; -1: all partitions. */
size_t hookd_keygate_held(const hookd_keygate_t *g, int32_t partition);

/* Items queued (not running) for `partition`; -1: all partitions. */
size_t hookd_keygate_queued(const hookd_keygate_t *g, int32_t partition);

/* Items running for `partition`; -1: all partitions. */
size_t hookd_keygate_running(const hookd_keygate_t *g, int32_t partition);

/* The highest partition index ever assigned + 1. */
size_t hookd_keygate_partitions(const hookd_keygate_t *g);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_KEYGATE_H */
