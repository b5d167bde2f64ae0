/* SPDX-License-Identifier: MIT */
/*
 * The handler thread pool: per-partition FIFO queues served by a fixed set
 * of threads.
 *
 * A partition is processed by at most one thread at a time and its items in
 * the order they were pushed, so order inside a partition is kept; threads
 * take partitions round-robin (one item per turn), so a slow handler on one
 * partition holds one thread and that partition only. Items are opaque to
 * the pool: `work` processes one, `drop` disposes of one that will never be
 * processed (revoked partition, shutdown).
 *
 * Every assignment of a partition carries an epoch; pushes under another
 * epoch are refused, so a message fetched before a revoke cannot be queued
 * after it.
 */
#ifndef HOOKD_POOL_H
#define HOOKD_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hookd_pool hookd_pool_t;

/* Process one item on handler thread `thread_index` (0 .. threads-1). */
typedef void(hookd_pool_work_cb)(void *opaque, size_t thread_index, int32_t partition,
                                 uint64_t epoch, void *item);
/* Dispose of an item that will not be processed. */
typedef void(hookd_pool_drop_cb)(void *opaque, void *item);

/* Start `threads` threads, ordering by key or by partition. NULL with errstr on failure. */
hookd_pool_t *hookd_pool_new(size_t threads, bool by_key, hookd_pool_work_cb *work,
                             hookd_pool_drop_cb *drop, void *opaque, char *errstr,
                             size_t errstr_size);

/* Make `partition` accept items under `epoch` (a fresh, empty queue). 0, or -1 on ENOMEM. */
int hookd_pool_assign(hookd_pool_t *pool, int32_t partition, uint64_t epoch);

/*
 * Stop accepting items for `partition` and drop its queued ones (returns
 * how many); items being processed finish (see hookd_pool_busy). An item
 * of the same key pushed after a reassignment waits for them.
 */
size_t hookd_pool_revoke(hookd_pool_t *pool, int32_t partition);

/*
 * Queue `item` for `partition` with its Kafka key (`key` NULL: none; the
 * pool copies the key). 0 when queued (*queued, may be NULL, gets the
 * partition's queue length afterwards), -1 when the partition is not
 * assigned under `epoch` or on ENOMEM: the item stays the caller's.
 */
int hookd_pool_push(hookd_pool_t *pool, int32_t partition, uint64_t epoch, const void *key,
                    size_t key_len, void *item, size_t *queued);

/*
 * Retry tiers: hold the key `key` of `partition` (its event waits in a tier
 * topic; later events of the key wait behind it), and release it (see
 * hookd_keygate_hold/_release/_release_tag). hold: 0, or -1 when nothing
 * was held (ordering by partition, no key, not assigned, ENOMEM).
 */
int hookd_pool_hold(hookd_pool_t *pool, int32_t partition, const void *key, size_t key_len,
                    int64_t token, int tag);
void hookd_pool_release(hookd_pool_t *pool, int32_t partition, const void *key, size_t key_len,
                        int64_t token);
void hookd_pool_release_tag(hookd_pool_t *pool, int32_t partition, int tag);
/* Keys held in `partition` (-1: all). */
size_t hookd_pool_held(hookd_pool_t *pool, int32_t partition);

/* Items waiting in `partition`'s queues (not counting those being processed); -1: all. */
size_t hookd_pool_queued(hookd_pool_t *pool, int32_t partition);

/* Items of `partition` (-1: of any) being processed now. */
size_t hookd_pool_running(hookd_pool_t *pool, int32_t partition);

/* Is an item of `partition` being processed (-1: of any partition)? */
bool hookd_pool_busy(hookd_pool_t *pool, int32_t partition);

/*
 * Wait until no item of `partition` (-1: any) is being processed, at most
 * `timeout_ms`. True when idle.
 */
bool hookd_pool_wait_idle(hookd_pool_t *pool, int32_t partition, int timeout_ms);

/* Drop every queued item of every partition; returns how many. */
size_t hookd_pool_drop_all(hookd_pool_t *pool);

/*
 * Stop the threads (each finishes the item in hand, none starts another)
 * and join them, waiting at most `timeout_ms` (< 0: for ever). Returns 0,
 * or -1 when a thread is still in a handler at the deadline: the pool then
 * cannot be destroyed safely and hookd_pool_destroy() leaks it on purpose.
 */
int hookd_pool_stop(hookd_pool_t *pool, int timeout_ms);

/* Stop (waiting for ever if not stopped yet), drop what is queued, free. */
void hookd_pool_destroy(hookd_pool_t *pool);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_POOL_H */
