/* SPDX-License-Identifier: MIT */
/*
 * What a requester asks of one event, read from its Kafka headers: where to
 * send a reply, and which failure flags decide its verdict. Pure parsing,
 * no Kafka, no allocation: everything returned is borrowed from the headers.
 *
 * Replies follow Spring Kafka's ReplyingKafkaTemplate, so any Spring
 * application can call the fleet as an acme2certifier bridge does:
 *   kafka_replyTopic      the topic of the reply (UTF-8 topic name)
 *   kafka_replyPartition  optional, the partition: 4-byte big-endian int32
 *   kafka_correlationId   optional, opaque bytes copied onto the reply
 *
 * Flags come from the server in front (acme2certifier's acme_srv.cfg), so
 * that one file decides, as with in-process hooks:
 *   hookd.flags  allow_pre_hook_failure=BOOL,allow_success_hook_failure=BOOL,
 *                allow_post_hook_failure=BOOL,hook_error_details_forward=BOOL
 * Names may also be spelled ignore_*_hook_failure (the same meaning), each
 * at most once; a name left out keeps the worker's own value; BOOL is one of
 * ConfigParser's spellings (true/false, yes/no, on/off, 1/0, any case). The
 * worker reads the header only with [worker] trust_event_flags = true.
 *
 * Phases already done, for an event that is run again (a replay of a dead
 * letter, a retry tier):
 *   hookd.phases.done  pre | pre,success | ... : the phases whose chains
 *                      already succeeded for this event, comma-separated,
 *                      in phase order (pre, success, post), each at most
 *                      once, blanks around a name allowed. The engine starts
 *                      after them (hookd_engine_run_from), so no handler of
 *                      a done phase runs again. Whether the worker may
 *                      believe the header is the pipeline's decision
 *                      (docs/security.md): skipping pre skips a policy gate.
 *
 * A header name given twice is refused: a reader could take either copy.
 */
#ifndef HOOKD_REQUEST_H
#define HOOKD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "event.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HOOKD_HDR_REPLY_TOPIC "kafka_replyTopic"
#define HOOKD_HDR_REPLY_PARTITION "kafka_replyPartition"
#define HOOKD_HDR_CORRELATION_ID "kafka_correlationId"
#define HOOKD_HDR_FLAGS "hookd.flags"
#define HOOKD_HDR_PHASES_DONE "hookd.phases.done"

#define HOOKD_CORRELATION_ID_MAX 256 /* bytes; longer ids are refused */

typedef enum hookd_request_err {
    HOOKD_REQUEST_OK = 0,
    HOOKD_REQUEST_ERR_REPLY, /* reply headers malformed: no reply can be sent */
    HOOKD_REQUEST_ERR_FLAGS, /* hookd.flags malformed */
    HOOKD_REQUEST_ERR_PHASES /* hookd.phases.done malformed */
} hookd_request_err_t;

/* Where the reply goes; borrowed from the headers. */
typedef struct hookd_reply_to {
    const char *topic; /* NULL: no reply asked for; not NUL-terminated */
    size_t topic_len;
    int32_t partition;          /* -1: the producer's partitioner picks it (by key) */
    const void *correlation_id; /* NULL: none */
    size_t correlation_id_len;
} hookd_reply_to_t;

/* The flags a requester sent, each present or not. */
typedef struct hookd_request_flags {
    bool present;                                 /* the header was there */
    signed char allow_failure[HOOKD_PHASE_COUNT]; /* -1: not given */
    signed char details_forward;                  /* -1: not given */
} hookd_request_flags_t;

/*
 * Read the reply headers. HOOKD_REQUEST_OK with out->topic NULL when none
 * was asked for. On error, a one-line reason in errstr and out->topic NULL.
 */
hookd_request_err_t hookd_request_reply_to(const hookd_header_t *headers, size_t count,
                                           hookd_reply_to_t *out, char *errstr, size_t errstr_size);

/* Read hookd.flags (absent: OK with present = false). */
hookd_request_err_t hookd_request_flags(const hookd_header_t *headers, size_t count,
                                        hookd_request_flags_t *out, char *errstr,
                                        size_t errstr_size);

/*
 * Read hookd.phases.done into a set of phases (bit HOOKD_PHASE_BIT(phase)
 * per phase). Absent: OK, *present false, *done 0. Refused with a reason:
 * a null or empty value, an empty item, an unknown phase, a phase given
 * twice or out of phase order, a value over 64 bytes, the header twice.
 */
hookd_request_err_t hookd_request_phases_done(const hookd_header_t *headers, size_t count,
                                              bool *present, unsigned *done, char *errstr,
                                              size_t errstr_size);

/*
 * Write a set of phases in the header's form ("pre,success") into buf.
 * Returns the length (0 for the empty set), or -1 when buf is too small.
 */
int hookd_request_phases_format(unsigned done, char *buf, size_t size);

/*
 * The policy that decides the event: `base` with the requester's flags over
 * it. *details_forward likewise starts from `base_details`.
 */
void hookd_request_apply(const hookd_request_flags_t *flags, const hookd_policy_t *base,
                         bool base_details, hookd_policy_t *out, bool *details_forward);

/*
 * Is `topic` (len bytes) in `allow_list`, a comma-separated list of topic
 * names (NULL or "": nothing is allowed)? Exact, case-sensitive match.
 */
bool hookd_request_topic_allowed(const char *allow_list, const char *topic, size_t len);

/* Is this a valid Kafka topic name: 1 to 249 of [a-zA-Z0-9._-], not "." or ".."? */
bool hookd_topic_name_valid(const char *name, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_REQUEST_H */
