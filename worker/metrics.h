/* SPDX-License-Identifier: MIT */
/*
 * Process-wide counters, histograms and status flags, rendered as
 * Prometheus text exposition by the HTTP endpoint. All functions but
 * hookd_metrics_reset() are thread-safe, and recording is cheap enough for
 * the hot path: after a thread's first record of a label set, it takes no
 * lock (metrics.c).
 */
#ifndef HOOKD_METRICS_H
#define HOOKD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Reset everything (start-up and tests: not while another thread records). */
void hookd_metrics_reset(void);

/* type: "acme.enrollment.requested" ... or "invalid" */
void hookd_metrics_event_consumed(const char *type);
/* phase "pre|success|post", outcome "ok|fail|retry" (retry = an attempt that asked for one) */
void hookd_metrics_invocation(const char *phase, const char *handler, const char *outcome,
                              double seconds);
void hookd_metrics_dead_letter(const char *error_class);
/* A record was acknowledged on retry tier `tier` ("1" = the first, tiers.h). */
void hookd_metrics_retry_published(const char *tier);
/* An event consumed from retry tier `tier` runs again. */
void hookd_metrics_retry_consumed(const char *tier);
/* verdict "completed|failed" */
void hookd_metrics_result_published(const char *verdict);
/* Delivery of a result/dead letter failed and will be retried. */
void hookd_metrics_publish_error(void);
/* A reply's fate: "sent", "refused" or "undeliverable". */
void hookd_metrics_reply(const char *outcome);
/* A record refused for good was rewritten: record "result|dead letter", form
 * "value_truncated|minimal|result_compacted|result_dead_lettered". */
void hookd_metrics_publish_fallback(const char *record, const char *form);
/* The librdkafka statistics JSON (stats_cb) of the consumer: commit positions and lag. */
void hookd_metrics_kafka_stats(const char *json, size_t len);
/* An offset commit request of the consumer was answered: ok, or failed. */
void hookd_metrics_offset_commit(bool ok);
/* An exactly-once transaction was committed or aborted. */
void hookd_metrics_transaction(bool committed);
/* Outcomes parked now: exactly-once with key ordering, each waiting for an
 * earlier event of its partition to be published first (outseq.h). */
void hookd_metrics_outcomes_parked(size_t n);

/*
 * The librdkafka version the process runs with (rd_kafka_version_str()), for
 * the librdkafka label of hookd_build_info; the label is left out until it is
 * set. This layer links no librdkafka, so the kafka layer hands the string
 * in (hookd_http_start). The string is borrowed, not copied: it must stay
 * valid for the life of the process, as librdkafka's static one does.
 * hookd_metrics_reset() keeps it: it describes the process, not a count.
 */
void hookd_metrics_set_librdkafka_version(const char *version);

/* Prometheus text exposition, malloc'd; *len set. */
char *hookd_metrics_render(size_t *len);

/* Readiness and liveness inputs. */
typedef enum hookd_status_flag {
    HOOKD_STATUS_HOOKS_LOADED = 0,
    HOOKD_STATUS_GROUP_JOINED,
    HOOKD_STATUS_BROKER_UP,
    HOOKD_STATUS_PUBLISH_BLOCKED, /* partitions paused: results cannot be published */
    HOOKD_STATUS_COUNT
} hookd_status_flag_t;

void hookd_status_set(hookd_status_flag_t flag, bool value);
bool hookd_status_get(hookd_status_flag_t flag);
/* The main loop calls this on every turn. */
void hookd_status_heartbeat(void);
/* Ready: hooks loaded, joined, broker up, nothing blocked. `why` says what is missing. */
bool hookd_status_ready(char *why, size_t why_size);
/* Live: the main loop turned within `max_age_ms`. */
bool hookd_status_live(uint64_t max_age_ms);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_METRICS_H */
