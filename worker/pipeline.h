/* SPDX-License-Identifier: MIT */
/*
 * The message pipeline (kafka layer): what a handler thread does with one
 * consumed message, in this order:
 *
 *   1. verify  the message MAC when [auth] asks for it (auth.c); a forged
 *              event is rejected (auth_failed), decoded only for its id;
 *   2. decode  the value and headers against the input schema (event.c);
 *   3. flags   read the reply headers and check them against
 *              [kafka] reply_topics, and, with trust_event_flags, the
 *              request's control flags; hookd.phases.done, believed only
 *              under [auth] require or trust_event_flags, or on a record
 *              of the worker's own retry tier topics (request.c);
 *   4. engine  the handler chain under the policy, after the phases
 *              already done (engine.c, invoke.c);
 *   5. publish the result, the dead letter and the reply (result.c,
 *              publisher.c), after telling the offset tracker how many
 *              acknowledgements to wait for (offsets.c); or, with
 *              [worker] retry_topics, when the handlers still ask for a
 *              retry and a next tier exists, the event to that tier
 *              (tiers.h), which is then its durable outcome.
 *
 * Contract:
 *   - hookd_pipeline_process() is a hookd_pool_work_cb: it runs on handler
 *     thread `thread_index` only, and uses only that thread's
 *     hookd_pipeline_thread_t; it takes ownership of the message and frees
 *     it. Everything else in hookd_pipeline_t is shared and read-only (the
 *     auth, offsets and publisher objects are thread-safe).
 *   - It never commits and never touches the partition table: the offset
 *     is only marked done when every record published for it has been
 *     acknowledged (publisher thread, through the offset tracker). A
 *     message whose partition was revoked meanwhile publishes nothing.
 *   - With the outcome sequencer (`seq`, exactly-once), an outcome whose
 *     event is not the oldest unpublished one of its partition is parked
 *     with its message, and published (then freed) by the handler thread
 *     that publishes its predecessor: records leave in offset order per
 *     partition, so a transaction never holds an outcome above the offsets
 *     it commits. An event that got no outcome (no memory, signing failed)
 *     dooms the open transaction: the abort rewinds and redoes it.
 *   - `done` is called once per message, on the handler thread, with
 *     aborted = true when shutdown cut a retry backoff short (nothing
 *     published, left uncommitted), false when it was decided.
 *   - hookd_msg_from() runs on the consumer thread: it copies what the
 *     pipeline needs out of librdkafka's message, which can then be
 *     destroyed (its fetch buffer is released).
 */
#ifndef HOOKD_PIPELINE_H
#define HOOKD_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "auth.h"
#include "config.h"
#include "engine.h"
#include "invoke.h"
#include "offsets.h"
#include "outseq.h"
#include "publisher.h"
#include "registry.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A consumed message, owned by the pipeline once queued; free() it. */
typedef struct hookd_msg hookd_msg_t;

/* What one handler thread owns. */
typedef struct hookd_pipeline_thread {
    hookd_invoke_t *invoke; /* this thread's handler instances */
    hookd_decision_t decision;
    hookd_decision_t masked; /* the decision as a reply shows it, see reply_decision() */
} hookd_pipeline_thread_t;

typedef struct hookd_pipeline {
    const hookd_config_t *cfg;
    const hookd_registry_t *reg;
    const char *source; /* ce_source of results */
    hookd_auth_t *auth; /* NULL: no verification, no signing */
    hookd_offsets_t *offsets;
    hookd_publisher_t *pub;
    /* Exactly-once: outcomes are published in offset order per partition
     * (outseq.h), whatever order their events finish in; NULL otherwise.
     * Parked outcomes are disposed with hookd_pipeline_outcome_dispose. */
    hookd_outseq_t *seq;
    hookd_pipeline_thread_t *threads; /* one per handler thread */
    void (*done)(void *opaque, bool aborted);
    /* Retry tiers (tiers.h; NULL without tiers). The pool's `partition`
     * is then a slot (hookd_tiers_slot). tier_hold: an event of input
     * `partition` with `key` now waits in `tier`: hold the key (token: its
     * input offset) while this worker owns that tier partition; false when
     * nothing is held (any earlier hold of the token is released).
     * tier_release: its final outcome is published; release the hold. */
    bool (*tier_hold)(void *opaque, int32_t partition, size_t tier, const void *key, size_t key_len,
                      int64_t token);
    void (*tier_release)(void *opaque, int32_t partition, const void *key, size_t key_len,
                         int64_t token);
    void *opaque;
} hookd_pipeline_t;

/* Copy a consumed message; NULL when out of memory. */
hookd_msg_t *hookd_msg_from(const rd_kafka_message_t *rkm);

/* The pool's work callback; `opaque` is the hookd_pipeline_t. */
void hookd_pipeline_process(void *opaque, size_t thread_index, int32_t partition, uint64_t epoch,
                            void *item);

/* The pool's drop callback: a queued message no handler started. */
void hookd_pipeline_drop(void *opaque, void *item);

/* The sequencer's dispose callback: a parked outcome never published. */
void hookd_pipeline_outcome_dispose(void *item);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_PIPELINE_H */
