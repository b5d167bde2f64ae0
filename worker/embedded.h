/* SPDX-License-Identifier: MIT */
/*
 * The embedded broker: librdkafka's mock cluster, in-process. Used when no
 * bootstrap servers are configured (the default and the demo) and by tests.
 * It is a real Kafka protocol listener on localhost, so any client
 * (`kcat -b ADDR`) can talk to it while the process runs; its data lives in
 * memory only.
 */
#ifndef HOOKD_EMBEDDED_H
#define HOOKD_EMBEDDED_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hookd_embedded hookd_embedded_t;

#define HOOKD_EMBEDDED_PARTITIONS 4

/*
 * Start a mock cluster of `brokers` brokers and create `topics` (NULL
 * entries skipped) with `partitions` partitions each. NULL with errstr.
 */
hookd_embedded_t *hookd_embedded_new(int brokers, const char *const *topics, size_t topic_count,
                                     int partitions, char *errstr, size_t errstr_size);

/*
 * Can the embedded cluster serve this configuration? It cannot keep
 * [kafka] delivery = exactly_once: librdkafka's mock cluster accepts the
 * transactional requests (InitProducerId, AddOffsetsToTxn,
 * TxnOffsetCommit, EndTxn) but does nothing with them, so results of an
 * aborted transaction would be visible and offsets would not commit with
 * them. 0, or -1 with the reason in errstr.
 */
int hookd_embedded_check(const hookd_config_t *cfg, char *errstr, size_t errstr_size);

/* "127.0.0.1:PORT,..." */
const char *hookd_embedded_bootstraps(const hookd_embedded_t *e);

/* The cluster, for fault injection (rd_kafka_mock_* functions). */
rd_kafka_mock_cluster_t *hookd_embedded_cluster(const hookd_embedded_t *e);

/* Stop the listeners; clients still connected see the broker go away. */
void hookd_embedded_destroy(hookd_embedded_t *e);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_EMBEDDED_H */
