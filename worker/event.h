/* SPDX-License-Identifier: MIT */
/*
 * Input events: decoding and validation of the enrollment events a producer
 * publishes. Three wire forms are accepted, all checked against
 * schemas/input-event.schema.json (the C codec checks exactly what the
 * schema says; a test keeps the two in agreement):
 *   - plain JSON: {"type": ..., "id": ..., "time": ..., <enrollment fields>}
 *   - CloudEvents 1.0 structured mode: a JSON envelope (specversion, id,
 *     source, type, time, datacontenttype) whose `data` holds the fields;
 *   - CloudEvents 1.0 binary mode: `ce_*` Kafka headers carry the envelope,
 *     the value holds the fields.
 */
#ifndef HOOKD_EVENT_H
#define HOOKD_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hookd_event_type {
    HOOKD_EVENT_REQUESTED = 0, /* acme.enrollment.requested: pre hooks */
    HOOKD_EVENT_ISSUED = 1,    /* acme.enrollment.issued: success, then post hooks */
    HOOKD_EVENT_FAILED = 2,    /* acme.enrollment.failed: post hooks with the error */
    HOOKD_EVENT_TYPE_COUNT = 3
} hookd_event_type_t;

/* "acme.enrollment.requested", ... */
const char *hookd_event_type_name(hookd_event_type_t t);

typedef enum hookd_event_format {
    HOOKD_FORMAT_PLAIN = 0,
    HOOKD_FORMAT_CE_STRUCTURED = 1,
    HOOKD_FORMAT_CE_BINARY = 2
} hookd_event_format_t;

/* "plain", "cloudevents-structured", "cloudevents-binary" */
const char *hookd_event_format_name(hookd_event_format_t f);

/* A Kafka header, borrowed (value need not be NUL-terminated; NULL = null header). */
typedef struct hookd_header {
    const char *name;
    const void *value;
    size_t len;
} hookd_header_t;

typedef struct hookd_limits {
    size_t max_event_bytes; /* whole Kafka value (and headers) */
    size_t max_field_bytes; /* any one string field, csr and certificate included */
} hookd_limits_t;

/*
 * 960 KiB: below the producer's default message.max.bytes (1,000,000) with
 * room for the dead-letter context headers, so an event within the limit
 * that fails later is dead-lettered whole. Larger ones are refused up front
 * and dead-lettered with their value cut (see publisher.h).
 */
#define HOOKD_DEFAULT_MAX_EVENT_BYTES (960 * 1024)
#define HOOKD_DEFAULT_MAX_FIELD_BYTES (256 * 1024)

/*
 * A decoded event. Every string is NUL-terminated and owned by the event
 * (freed by hookd_event_clear). Optional fields absent or JSON null are NULL.
 */
typedef struct hookd_event {
    hookd_event_type_t type;
    hookd_event_format_t format;
    const char *id;     /* idempotency key; set even on some decode errors, see below */
    const char *time;   /* RFC 3339 */
    const char *source; /* CloudEvents source, NULL for plain JSON */
    const char *certificate_name;
    const char *order_name;
    const char *csr;             /* base64 DER */
    const char *certificate;     /* PEM chain (issued) */
    const char *certificate_raw; /* base64 DER (issued) */
    const char *poll_identifier; /* issued, optional */
    const char *error;           /* failed */
    void *priv;                  /* storage of the strings, private to the codec */
} hookd_event_t;

typedef enum hookd_event_err {
    HOOKD_EVENT_OK = 0,
    HOOKD_EVENT_ERR_TOO_LARGE, /* over a size limit */
    HOOKD_EVENT_ERR_PARSE,     /* not JSON / not UTF-8 / bad CloudEvents headers */
    HOOKD_EVENT_ERR_SCHEMA     /* JSON, but not a valid event */
} hookd_event_err_t;

/*
 * Decode one Kafka message. On success fills `ev` (clear it with
 * hookd_event_clear). On error writes a one-line reason to `errstr` (naming
 * the offending field) and leaves in `ev` whatever could be read safely,
 * notably `ev->id` when the message carried a string id, so the caller can
 * still publish a failed result; call hookd_event_clear in every case.
 */
hookd_event_err_t hookd_event_decode(const void *value, size_t len, const hookd_header_t *headers,
                                     size_t header_count, const hookd_limits_t *limits,
                                     hookd_event_t *ev, char *errstr, size_t errstr_size);

void hookd_event_clear(hookd_event_t *ev);

/*
 * An ordinary plain event (an object of string members that passes every
 * check) is decoded without building a JSON tree; anything else, every
 * refusal included, is decoded through the tree. false sends every event
 * the long way: for tests and the fuzz target, which compare the two. On
 * by default; process-wide.
 */
void hookd_event_set_fast_path(bool on);

/* How many decodes of the calling thread took that road (for the tests). */
size_t hookd_event_fast_decodes(void);

/*
 * Installs the decoder's cJSON allocation hooks (see json.c: a per-thread
 * arena while a decode runs, malloc/free otherwise). The first decode does
 * it too; call it before starting threads that use cJSON so the hooks are
 * not switched under them.
 */
void hookd_event_global_init(void);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_EVENT_H */
