/* SPDX-License-Identifier: MIT */
/*
 * The publisher: results and dead letters through one idempotent producer.
 *
 * Every record is a job that lives until the broker acknowledged it. A
 * failed delivery is never skipped: the same record is produced again after
 * publish_retry_backoff_ms, as long as it takes, and meanwhile its input
 * partition counts as blocked (the runtime pauses fetching it) and the
 * process reports HOOKD_STATUS_PUBLISH_BLOCKED. A fatal idempotent-producer
 * error replaces the producer and re-produces every job not acknowledged.
 *
 * Delivery reports are served by the publisher's own thread; `ack` is
 * called there, once per acknowledged record, in any order.
 *
 * Errors a retry cannot fix for *this record* (hookd_publisher_classify:
 * too large, invalid or corrupt record), reported by the delivery report or
 * returned at once by produce, are not retried as they are: the record
 * falls back to a form the broker can take, and the fallback is produced
 * instead (counted in hookd_publish_fallbacks_total, logged once):
 *   - a dead letter: its value cut to what fits (or to
 *     dead_letter_max_value_bytes), with hookd.dlq.value_truncated,
 *     hookd.dlq.value_original_bytes and hookd.dlq.value_sha256; refused
 *     again, it loses its value, key and original headers (the context
 *     headers stay);
 *   - a result: compacted first (hookd_result_compact), then, refused
 *     again, written to the dead-letter topic with error class
 *     publish_refused and its value cut the same way;
 *   - a retry tier record: the records that stand in for it are produced
 *     instead (hookd_publisher_publish_retry), the event's outcome as
 *     without the tier.
 * Only when even the last form is refused does the record block like a
 * transient error. A dead letter whose value is over the limit is cut
 * before its first produce. Errors that affect every record (broker down,
 * authorization, unknown topic, timeouts) are retried as before.
 *
 * Exactly-once ([kafka] delivery = exactly_once): the producer is
 * transactional and every record it produces, of whatever kind, joins the
 * open transaction. The records of one input's outcome are published
 * between hookd_publisher_outcome_begin() and _end(), and a transaction is
 * only ever ended when no outcome is in progress and every record of it is
 * acknowledged, so it holds whole outcomes only, never half of one. The
 * runtime (consumer thread) ends transactions with hookd_publisher_txn_end():
 * the input offsets go in with send_offsets_to_transaction. A failed
 * delivery is not retried in this mode: it dooms the transaction (librdkafka
 * makes it abortable), which the runtime aborts and redoes. A fatal error
 * (fenced, ...) replaces the producer under the same transactional.id, at
 * the end of the transaction, on the calling thread.
 */
#ifndef HOOKD_PUBLISHER_H
#define HOOKD_PUBLISHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "result.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hookd_publisher hookd_publisher_t;

/* What a failed produce or delivery means for the record. */
typedef enum hookd_produce_err_class {
    HOOKD_PRODUCE_ERR_TRANSIENT = 0, /* retry the same record (blocks its partition meanwhile) */
    HOOKD_PRODUCE_ERR_PERMANENT = 1  /* this record can never be accepted: fall back */
} hookd_produce_err_class_t;

/* Classify a librdkafka error (rd_kafka_resp_err_t). Pure; see docs/runtime.md. */
hookd_produce_err_class_t hookd_publisher_classify(int err);

typedef enum hookd_record_kind {
    HOOKD_RECORD_RESULT = 0,
    HOOKD_RECORD_DEAD_LETTER = 1,
    HOOKD_RECORD_REPLY = 2, /* a copy of the result for a requester: see hookd_publisher_reply */
    HOOKD_RECORD_RETRY = 3  /* the event, to a retry tier topic (tiers.h): its durable outcome */
} hookd_record_kind_t;

/* The input message a record is the outcome of. */
typedef struct hookd_record_origin {
    int32_t partition; /* the runtime's index: with retry tiers a slot (tiers.h) */
    uint64_t epoch;
    int64_t offset;
    /* Where it was consumed, for logs and dead-letter headers: NULL means
     * the input topic and `partition` (no retry tiers). */
    const char *topic; /* borrowed: the configuration's, outlives the publisher */
    int32_t topic_partition;
} hookd_record_origin_t;

/* A record was acknowledged by the broker (publisher thread). */
typedef void(hookd_publisher_ack_cb)(void *opaque, const hookd_record_origin_t *origin,
                                     hookd_record_kind_t kind);
/* Is the input partition still ours under that epoch? A failed record of a
 * partition no longer owned is dropped instead of retried. */
typedef bool(hookd_publisher_owned_cb)(void *opaque, int32_t partition, uint64_t epoch);
/*
 * A retry record was refused for good and its `more` + 1 stand-ins replace
 * it (hookd_publisher_publish_retry). Called twice, on the publisher
 * thread, or on the publishing one when produce refused the record at
 * once: with `queued` false before any stand-in is produced, when the
 * outcome of `origin` must await `more` acknowledgements besides the one
 * it awaits (false: the partition is no longer owned under the origin's
 * epoch, and the record and its stand-ins are dropped, with no second
 * call); then with `queued` true once they are handed to the producer,
 * when the hold the event's key took for the tier (`hold_token`) ends.
 */
typedef bool(hookd_publisher_standby_cb)(void *opaque, const hookd_record_origin_t *origin,
                                         unsigned more, const void *key, size_t key_len,
                                         int64_t hold_token, bool queued);

/* A record to publish later, as hookd_publisher_publish_retry takes its
 * stand-ins; everything is copied. */
typedef struct hookd_publisher_record {
    hookd_record_kind_t kind; /* RESULT, DEAD_LETTER or REPLY */
    const char *topic;
    int32_t partition; /* -1: by key */
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const hookd_headers_t *headers;
    const char *label; /* as for hookd_publisher_publish; NULL for a reply */
} hookd_publisher_record_t;

typedef struct hookd_publisher_counts {
    uint64_t results;      /* acknowledged result records */
    uint64_t dead_letters; /* acknowledged dead-letter records */
    uint64_t replies;      /* acknowledged replies */
    uint64_t retries;      /* acknowledged tier records */
    uint64_t failures;     /* failed deliveries (each retried) */
    uint64_t recreated;    /* producers replaced after a fatal error */
    uint64_t fallbacks;    /* records cut, compacted or redirected (permanent errors) */
    size_t outstanding;    /* records not acknowledged yet */
} hookd_publisher_counts_t;

typedef struct hookd_publisher_txn_stats {
    uint64_t committed; /* transactions committed */
    uint64_t aborted;   /* transactions aborted (their events redone) */
} hookd_publisher_txn_stats_t;

/* Open the gate again (after txn_end, or after a hold that ended nothing). */
void hookd_publisher_txn_release(hookd_publisher_t *pub);

/* Transactions ended so far (exactly-once). */
void hookd_publisher_txn_stats(hookd_publisher_t *pub, hookd_publisher_txn_stats_t *out);

hookd_publisher_t *hookd_publisher_new(const hookd_config_t *cfg, const char *bootstraps,
                                       hookd_publisher_ack_cb *ack, hookd_publisher_owned_cb *owned,
                                       hookd_publisher_standby_cb *standby, void *opaque,
                                       char *errstr, size_t errstr_size);

/*
 * Publish one record to `topic` (borrowed, must outlive the publisher):
 * key, value and headers are copied. `label` is the verdict of a result or
 * the error class of a dead letter (metrics). 0 when the publisher took the
 * record (it will be acknowledged or retried; never lost), -1 on ENOMEM.
 * Thread-safe; may wait while librdkafka's queue is full.
 */
int hookd_publisher_publish(hookd_publisher_t *pub, hookd_record_kind_t kind, const char *topic,
                            const void *key, size_t key_len, const void *value, size_t value_len,
                            const hookd_headers_t *headers, const hookd_record_origin_t *origin,
                            const char *label);

/*
 * Publish a retry tier record (HOOKD_RECORD_RETRY) to `partition` of
 * `topic`, with the `nstandby` records that stand in for it: the event's
 * outcome as it would be without this tier (the failed result, the
 * retries_exhausted dead letter, the reply). Should the tier topic refuse
 * the record for good (its max.message.bytes is lower than the input's),
 * the event cannot wait there and ends now: the standby callback is told,
 * then the stand-ins are produced instead, each acknowledged to `ack` like
 * any record (counted as a fallback: record "retry", form
 * "retry_dead_lettered"). Otherwise they are freed with the record.
 * `hold_token` is handed to the callback. 0, or -1 on ENOMEM.
 */
int hookd_publisher_publish_retry(hookd_publisher_t *pub, const char *topic, int32_t partition,
                                  const void *key, size_t key_len, const void *value,
                                  size_t value_len, const hookd_headers_t *headers,
                                  const hookd_record_origin_t *origin, const char *label,
                                  const hookd_publisher_record_t *standby, size_t nstandby,
                                  int64_t hold_token);

/*
 * Publish a reply: `topic` and `partition` (-1: by key) come from the
 * request and are copied. Unlike results and dead letters, a reply whose
 * delivery fails (after librdkafka's own retries, message.timeout.ms) is
 * not produced again: it is given up, counted (hookd_replies_total
 * {outcome="undeliverable"}), logged, and acknowledged like a delivered
 * one, because the result record is the durable outcome and no requester
 * waits that long. 0, or -1 on ENOMEM.
 */
int hookd_publisher_reply(hookd_publisher_t *pub, const char *topic, int32_t partition,
                          const void *key, size_t key_len, const void *value, size_t value_len,
                          const hookd_headers_t *headers, const hookd_record_origin_t *origin);

/* Records of `partition` (under `epoch`) not acknowledged yet. */
size_t hookd_publisher_outstanding(hookd_publisher_t *pub, int32_t partition, uint64_t epoch);

/*
 * Wait until no record of `partition` under `epoch` (partition -1: none at
 * all) is outstanding, at most `timeout_ms`. True when none is.
 */
bool hookd_publisher_wait(hookd_publisher_t *pub, int32_t partition, uint64_t epoch,
                          int timeout_ms);

/* Does `partition` have a record whose delivery failed and is being retried? */
bool hookd_publisher_blocked(hookd_publisher_t *pub, int32_t partition);

/* Drop the records of `partition` under `epoch` that wait for a retry (revoked). */
void hookd_publisher_forget(hookd_publisher_t *pub, int32_t partition, uint64_t epoch);

void hookd_publisher_counts(hookd_publisher_t *pub, hookd_publisher_counts_t *out);

/*
 * Shutdown has begun: publish() no longer waits for room in librdkafka's
 * queue (a handler thread must be able to finish); such records are queued
 * for the publisher thread instead.
 */
void hookd_publisher_shutdown_begin(hookd_publisher_t *pub);

/* ---- exactly-once ------------------------------------------------------- */

struct rd_kafka_topic_partition_list_s;
struct rd_kafka_consumer_group_metadata_s;

/*
 * An input's outcome is about to be published (handler thread). With a
 * transactional producer, waits while a transaction is being ended; a
 * no-op otherwise. Every begin is paired with an end, published or not.
 */
void hookd_publisher_outcome_begin(hookd_publisher_t *pub);
void hookd_publisher_outcome_end(hookd_publisher_t *pub, bool published);

/* Is the producer transactional ([kafka] delivery = exactly_once)? */
bool hookd_publisher_transactional(const hookd_publisher_t *pub);

/* Outcomes published in the open transaction; whether it is doomed. */
size_t hookd_publisher_txn_outcomes(hookd_publisher_t *pub);
bool hookd_publisher_txn_doomed(hookd_publisher_t *pub);

/*
 * Doom the open transaction (any thread): the runtime aborts it at its
 * next check, and the abort rewinds and redoes its events. Used when an
 * event got no outcome (exactly-once publishes outcomes in offset order,
 * so a missing one would hold back every later one). A no-op when not
 * transactional.
 */
void hookd_publisher_txn_doom(hookd_publisher_t *pub);

/*
 * Close the gate: no outcome starts from now on; wait until the outcomes in
 * progress ended and every record is acknowledged (or dropped), at most
 * `timeout_ms`. True when that happened; the gate stays closed either way
 * until hookd_publisher_txn_end(). Consumer thread.
 */
bool hookd_publisher_txn_hold(hookd_publisher_t *pub, int timeout_ms);

typedef enum hookd_txn_result {
    HOOKD_TXN_COMMITTED = 0, /* records and offsets are visible to read_committed readers */
    HOOKD_TXN_ABORTED = 1,   /* none of it is: redo everything since the last commit */
    HOOKD_TXN_REPLACED = 2   /* aborted, and the producer was fatal (fenced): replaced */
} hookd_txn_result_t;

/*
 * End the open transaction and begin the next one (hold first; the gate
 * stays closed: open it with hookd_publisher_txn_release() once the
 * positions are rewound after an abort). With `commit` and the transaction not doomed: send
 * `offsets` (may be NULL or empty) with the consumer's group metadata
 * (KIP-447: a member of an older generation is fenced), then commit; any
 * abortable error aborts instead. Without `commit`: abort. Retriable errors
 * are retried (librdkafka's advice), until `timeout_ms`. Consumer thread.
 */
hookd_txn_result_t hookd_publisher_txn_end(hookd_publisher_t *pub, bool commit,
                                           const struct rd_kafka_topic_partition_list_s *offsets,
                                           const struct rd_kafka_consumer_group_metadata_s *cgmd,
                                           int timeout_ms);

/* Stop the delivery-report thread and destroy the producer (unacknowledged records are lost: uncommitted). */
void hookd_publisher_destroy(hookd_publisher_t *pub);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_PUBLISHER_H */
