/* SPDX-License-Identifier: MIT */
/*
 * The Kafka runtime: consumer group member, per-partition queues feeding a
 * pool of handler threads, publisher of results and dead letters, and the
 * offset tracker that commits only what is durable. With retry tiers
 * ([worker] retry_topics) it consumes the tier topics too, each tier
 * partition paused until its head record is due.
 */
#ifndef HOOKD_RUNTIME_H
#define HOOKD_RUNTIME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hookd_runtime hookd_runtime_t;

/*
 * Create the runtime: Kafka clients (or, with no bootstrap servers, the
 * embedded mock cluster, announced on stderr), the handler threads and
 * their handler instances. `cfg` and `reg` stay owned by the caller and
 * must outlive the runtime. NULL with errstr on failure.
 */
hookd_runtime_t *hookd_runtime_create(const hookd_config_t *cfg, const hookd_registry_t *reg,
                                      char *errstr, size_t errstr_size);

/*
 * Consume until *stop becomes non-zero, then shut down within
 * cfg->shutdown_timeout_ms: stop fetching, finish in-flight handlers, flush,
 * commit, leave the group. Returns 0 on a clean stop, 1 when the deadline
 * passed (uncommitted work is redone by the next owner), 2 on a fatal error.
 * *stop may be set from another thread or from a signal handler (a
 * lock-free atomic_int is async-signal-safe); it is read with relaxed order
 * between short waits, as it publishes no data. The thread calling this is
 * the consumer thread from then on.
 */
int hookd_runtime_run(hookd_runtime_t *rt, const atomic_int *stop);

/* The bootstrap address of the embedded cluster, or NULL when using a real one. */
const char *hookd_runtime_embedded_bootstraps(const hookd_runtime_t *rt);

/* ---- observation, for the demo, the tests and the benchmark ------------ */

typedef struct hookd_runtime_stats {
    uint64_t consumed;               /* input messages handed to the handler threads */
    uint64_t decided;                /* messages whose outcome the engine decided */
    uint64_t aborted;                /* decisions cut short by shutdown (nothing published) */
    uint64_t dropped;                /* queued messages dropped unprocessed (revoke, shutdown) */
    uint64_t results_acked;          /* result records acknowledged by the broker */
    uint64_t dead_letters_acked;     /* dead-letter records acknowledged by the broker */
    uint64_t replies_acked;          /* replies acknowledged (or given up, see publisher.h) */
    uint64_t publish_failures;       /* failed deliveries (each retried) */
    uint64_t producers_recreated;    /* producers replaced after a fatal error */
    uint64_t rebalances;             /* assignment changes seen */
    uint64_t transactions_committed; /* exactly-once: transactions committed */
    uint64_t transactions_aborted;   /* exactly-once: transactions aborted (events redone) */
    int assigned_partitions;         /* partitions owned now (input and retry tier topics) */
    int paused_partitions;           /* of which paused (backpressure, blocked publish, or a
                                        retry tier's head not due) */
    uint64_t retries_acked;          /* retry tier records acknowledged (tiers.h) */
} hookd_runtime_stats_t;

/* A consistent snapshot of the counters. Thread-safe. */
void hookd_runtime_get_stats(hookd_runtime_t *rt, hookd_runtime_stats_t *out);

/*
 * Wait until `pred(stats, opaque)` is true, re-evaluated whenever a counter
 * changes, at most `timeout_ms`. Returns the last value of `pred`.
 * Thread-safe (call it from another thread than hookd_runtime_run's).
 */
bool hookd_runtime_wait(hookd_runtime_t *rt,
                        bool (*pred)(const hookd_runtime_stats_t *stats, void *opaque),
                        void *opaque, int timeout_ms);

/*
 * The last offset this worker committed successfully for an input
 * partition (the next offset to consume), -1 if none. Thread-safe.
 * (Retry tier partitions are committed by the same rules; see tiers.h.)
 */
int64_t hookd_runtime_committed(hookd_runtime_t *rt, int32_t partition);

/* The embedded mock cluster (rd_kafka_mock_cluster_t *), NULL when using a real one. */
struct rd_kafka_mock_cluster_s *hookd_runtime_embedded_cluster(const hookd_runtime_t *rt);

void hookd_runtime_destroy(hookd_runtime_t *rt);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_RUNTIME_H */
