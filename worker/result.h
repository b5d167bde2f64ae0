/* SPDX-License-Identifier: MIT */
/*
 * What the worker publishes: the result event (CloudEvents 1.0 binary mode,
 * value per schemas/result-event.schema.json) and the context headers of a
 * dead letter (schemas/dead-letter.schema.json describes them as a JSON
 * object of header name -> string value).
 */
#ifndef HOOKD_RESULT_H
#define HOOKD_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "event.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the input message came from. */
typedef struct hookd_origin {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* the input message's timestamp, -1 if none */
    const char *group_id;
} hookd_origin_t;

/* An owned, growable list of headers (names and values copied). */
typedef struct hookd_headers hookd_headers_t;

hookd_headers_t *hookd_headers_new(void);
void hookd_headers_destroy(hookd_headers_t *h);
/* Append a copy of name and value (value may be NULL: a null header). Returns 0, -1 on ENOMEM. */
int hookd_headers_add(hookd_headers_t *h, const char *name, const void *value, size_t len);
int hookd_headers_add_str(hookd_headers_t *h, const char *name, const char *value);
size_t hookd_headers_count(const hookd_headers_t *h);
/* The i-th header, borrowed from the list. */
const hookd_header_t *hookd_headers_get(const hookd_headers_t *h, size_t i);

/* Everything the result and dead letter need besides the decision. */
typedef struct hookd_result_info {
    const hookd_event_t
        *event; /* may be partly filled (invalid event): id, order_name may be NULL */
    const hookd_origin_t *origin;
    const char *worker_id;
    const char *source;     /* ce_source of results, e.g. "urn:acme-hookd:<worker_id>" */
    size_t max_error_bytes; /* cap of error messages in headers, 0 = default (1024) */
} hookd_result_info_t;

/*
 * Encode the result event: its JSON value (malloc'd, *len set) and its
 * CloudEvents binary-mode headers appended to `headers` (ce_specversion,
 * ce_id, ce_source, ce_type = acme.hookd.result.completed|failed, ce_subject
 * = order name, ce_time, content-type, and the input event id). A decision
 * with phases_skipped (an event resumed after its done phases) adds
 * "skipped_phases": ["success", ...] after "runs". Returns NULL on ENOMEM.
 */
char *hookd_result_encode(const hookd_result_info_t *info, const hookd_decision_t *d,
                          hookd_headers_t *headers, size_t *len);

/*
 * Append the dead-letter context headers (acme-hookd's own `hookd.dlq.*`
 * names and the Kafka Connect `__connect.errors.*` names) to `headers`,
 * after the caller has copied the original headers. Returns 0, -1 on ENOMEM.
 */
int hookd_deadletter_headers(const hookd_result_info_t *info, const hookd_decision_t *d,
                             hookd_headers_t *headers);

/*
 * The compact form of an encoded result, for a result the broker refuses as
 * it is (too large): the optional parts go, the rest is kept. Dropped: the
 * `runs` detail (an empty array; the handlers' own error texts are the
 * largest part), `certificate_name` and `order_name`; `error` is cut to
 * HOOKD_RESULT_COMPACT_ERROR_BYTES. Kept: event_id, event_type, verdict,
 * dead_lettered, error_class, input, worker_id, time. Still valid against
 * schemas/result-event.schema.json. NULL when `value` is not a result object
 * or on ENOMEM; *len set.
 */
#define HOOKD_RESULT_COMPACT_ERROR_BYTES 256
char *hookd_result_compact(const void *value, size_t value_len, size_t *len);

/*
 * Context headers of the dead letter that replaces a record the broker can
 * never accept even in its smallest form (a result whose required parts are
 * too large, a retry tier record): the hookd.dlq.* and __connect.errors.*
 * headers of `origin`, error class `error_class` (NULL: publish_refused),
 * stage KAFKA_PRODUCE, class name hookd.publisher, the broker's `reason` as
 * the message, and hookd.dlq.record = `record` ("result", "retry"). Returns
 * 0, -1 on ENOMEM.
 */
int hookd_deadletter_refused_headers(const hookd_origin_t *origin, const char *worker_id,
                                     const char *record, const char *error_class,
                                     const char *reason, hookd_headers_t *headers);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_RESULT_H */
