/* SPDX-License-Identifier: MIT */
/*
 * Retry tiers ([worker] retry_topics): the pure part of non-blocking
 * retries (logic layer, no Kafka). docs/operations.md has the layout.
 *
 * A tier is a topic an event waits in before it runs again: after the
 * in-line attempts of the retry schedule (policy.h) an event whose handler
 * still asks for a retry is published to the next tier instead of being
 * dead-lettered, with the retry headers below, and runs again from the
 * phase that asked once its tier delay has passed. After the last tier it
 * is dead-lettered as retries_exhausted, as without tiers.
 *
 * This module holds what can be decided without a broker:
 *   - the tier table parsed from the configuration (delays, topic names);
 *   - the slot numbering: the runtime, the offset tracker, the key gate
 *     and the publisher index partitions by one int32; with tiers, every
 *     (topic, partition) the worker consumes gets the slot
 *     partition * (tiers + 1) + tier (tier 0: the input topic), so without
 *     tiers a slot is the partition itself;
 *   - the next-tier decision, the phases done a tier record carries, its
 *     due time;
 *   - the retry headers, encoded and decoded.
 * Tested against a model in tests/unit/test_tiers.c.
 */
#ifndef HOOKD_TIERS_H
#define HOOKD_TIERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "event.h"
#include "result.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HOOKD_TIERS_MAX 8                    /* tiers in one configuration */
#define HOOKD_TIERS_DELAY_MAX_MS 604800000LL /* 7 days */

/* The retry headers of a tier record. */
#define HOOKD_HDR_RETRY_PREFIX "hookd.retry."
#define HOOKD_HDR_RETRY_ATTEMPT "hookd.retry.attempt"             /* tier number, 1 = first tier */
#define HOOKD_HDR_RETRY_DUE "hookd.retry.due"                     /* epoch ms it may run again */
#define HOOKD_HDR_RETRY_FIRST_FAILURE "hookd.retry.first_failure" /* epoch ms */
#define HOOKD_HDR_RETRY_PHASE "hookd.retry.phase"                 /* the phase that asked */
#define HOOKD_HDR_RETRY_HANDLER "hookd.retry.handler"             /* the handler that asked */
#define HOOKD_HDR_RETRY_ERROR "hookd.retry.error"                 /* its last error text */
#define HOOKD_HDR_RETRY_ORIGIN "hookd.retry.origin" /* "<partition>:<offset>" in the input topic */

/* The tier table: tier i (1..count) is delays_ms[i-1] in topics[i-1]. */
typedef struct hookd_tiers {
    size_t count; /* 0: no tiers (retry_topics unset) */
    int64_t delays_ms[HOOKD_TIERS_MAX];
    char *topics[HOOKD_TIERS_MAX]; /* owned */
} hookd_tiers_t;

/*
 * Parse `delays` ("10s,1m,10m": a number with ms, s, m or h; commas or
 * blanks between; NULL or "": no tiers) and `names` (NULL or "": the
 * topics are "<input_topic>.retry.<delay as written>"; else one topic name
 * per delay, in order). 0, or -1 with the reason (out is then empty).
 */
int hookd_tiers_parse(const char *delays, const char *names, const char *input_topic,
                      hookd_tiers_t *out, char *errstr, size_t errstr_size);
void hookd_tiers_clear(hookd_tiers_t *t);

/* The topic of tier `tier` (0: `input_topic`), NULL when out of range. */
const char *hookd_tiers_topic(const hookd_tiers_t *t, size_t tier, const char *input_topic);

/* The tier of a topic name (0: `input_topic`), -1 when it is none of them. */
int hookd_tiers_find(const hookd_tiers_t *t, const char *topic, const char *input_topic);

/* ---- slots --------------------------------------------------------------- */

/* The slot of (tier, partition); -1 when out of range. */
int32_t hookd_tiers_slot(const hookd_tiers_t *t, size_t tier, int32_t partition);
/* The tier and the partition of a slot (slot >= 0). */
size_t hookd_tiers_slot_tier(const hookd_tiers_t *t, int32_t slot);
int32_t hookd_tiers_slot_partition(const hookd_tiers_t *t, int32_t slot);

/* ---- decisions ----------------------------------------------------------- */

/*
 * Where an event consumed from tier `tier` (0: the input) goes after the
 * decision `d`: the tier (1..count) to publish it to, or 0 to publish the
 * decided outcome (result, dead letter). Only a dead letter of class
 * retries_exhausted goes to a tier, and only while a next tier exists.
 */
size_t hookd_tiers_next(const hookd_tiers_t *t, size_t tier, const hookd_decision_t *d);

/*
 * The phases a tier record carries as done (HOOKD_PHASE_BIT): those of
 * `already` plus the phases of the event's plan before `failed` (they
 * succeeded, or their failure was allowed). The failed phase reruns whole.
 */
unsigned hookd_tiers_phases_done(hookd_event_type_t type, unsigned already, hookd_phase_t failed);

/* When a record published to `tier` at `now_ms` (epoch ms) is due. */
int64_t hookd_tiers_due(const hookd_tiers_t *t, size_t tier, int64_t now_ms);

/* ---- headers ------------------------------------------------------------- */

/* What a tier record says about its retries. */
typedef struct hookd_tiers_state {
    bool present;             /* the record carries hookd.retry.attempt */
    uint32_t attempt;         /* tier number it was published to */
    int64_t due_ms;           /* -1: unknown */
    int64_t first_failure_ms; /* -1: unknown */
    int32_t origin_partition; /* -1: unknown */
    int64_t origin_offset;    /* -1: unknown */
} hookd_tiers_state_t;

/*
 * Is this header of a consumed event carried into its tier record as it
 * is? No for the retry headers, hookd.phases.done and the signature, which
 * the tier record gets anew.
 */
bool hookd_tiers_header_carried(const char *name);

/* The new headers of a tier record. */
typedef struct hookd_tiers_record {
    uint32_t attempt;
    int64_t due_ms;
    int64_t first_failure_ms;
    const char *phase;   /* failing phase */
    const char *handler; /* failing handler, NULL: none */
    const char *error;   /* last error, NULL: none */
    size_t max_error_bytes;
    int32_t origin_partition;
    int64_t origin_offset;
    unsigned phases_done; /* 0: no hookd.phases.done */
} hookd_tiers_record_t;

/* Append the retry headers (and hookd.phases.done) to `h`. 0, or -1 on ENOMEM. */
int hookd_tiers_headers_encode(const hookd_tiers_record_t *r, hookd_headers_t *h);

/*
 * Read the retry headers. Absent headers leave their field unknown; a
 * header present twice or not a number is an error (-1 with the reason).
 */
int hookd_tiers_headers_decode(const hookd_header_t *headers, size_t count,
                               hookd_tiers_state_t *out, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_TIERS_H */
