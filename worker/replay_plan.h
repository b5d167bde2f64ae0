/* SPDX-License-Identifier: MIT */
/*
 * The pure part of `acme-hookd replay`: which dead letters a replay sends
 * back to the input topic, with which phases marked done, and the headers
 * of the record it sends. No Kafka: the command (replay.c) reads the
 * dead-letter topic and hands each record's parts here.
 *
 * A dead letter (docs/runtime.md, schemas/README.md) is the input message
 * unchanged (key, value, original headers) plus context headers:
 * hookd.dlq.* and __connect.errors.*. Its replay is the input message
 * again: the context headers are removed, the original ones kept, and
 *   hookd.phases.done         set when phases already succeeded (below)
 *   hookd.replay.topic        the dead-letter topic,
 *   hookd.replay.partition    partition and
 *   hookd.replay.offset       offset of the dead letter replayed
 *   hookd.replay.time         when it was replayed (RFC 3339, UTC)
 *   hookd.replay.reason       the operator's --reason
 *   hookd.replay.group        the replay's consumer group
 * are added (older hookd.replay.* headers are replaced: they described an
 * earlier replay of the same event).
 *
 * Phases: a dead letter that failed in phase P of an event of type T had
 * every phase of T's plan before P succeed (allowed failures included),
 * and an issued event had its pre phase on its requested event: those are
 * the phases done, together with any hookd.phases.done the event already
 * carried. The header is written only when it skips something the event
 * runs (or the event already carried one): an issued event failed in post
 * is replayed with "pre,success" and the worker runs only post.
 */
#ifndef HOOKD_REPLAY_PLAN_H
#define HOOKD_REPLAY_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "result.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HOOKD_REPLAY_REASON_MAX 512 /* bytes of a choice's reason */

/* What to select; every condition must hold. Lists are comma-separated. */
typedef struct hookd_replay_filter {
    const char *classes;  /* error classes (hookd.dlq.error.class), NULL: any */
    const char *phases;   /* failing phases (hookd.dlq.phase), NULL: any */
    const char *handlers; /* failing handlers (hookd.dlq.handler), NULL: any */
    const char *key;      /* exact Kafka key, NULL: any */
    size_t key_len;
    int64_t since_ms;     /* dead letter's timestamp >= since_ms; -1: open */
    int64_t until_ms;     /* dead letter's timestamp < until_ms; -1: open */
    int32_t partition;    /* dead-letter partition, -1: any */
    int64_t from_offset;  /* dead-letter offset >= from_offset, -1: open */
    int64_t to_offset;    /* dead-letter offset <= to_offset, -1: open */
    bool include_invalid; /* send invalid_event dead letters too */
} hookd_replay_filter_t;

/* Everything the filter may name set to "any". */
void hookd_replay_filter_init(hookd_replay_filter_t *f);

/* What the worker (and the replayer) can do with hookd.phases.done. */
typedef struct hookd_replay_trust {
    bool phases_done_honoured; /* [auth] require or [worker] trust_event_flags */
    bool auth_require;         /* the worker verifies signatures */
    bool can_sign;             /* the replayer holds a key of [auth] keys */
} hookd_replay_trust_t;

typedef enum hookd_replay_action {
    HOOKD_REPLAY_SEND = 0,     /* selected, and can be replayed */
    HOOKD_REPLAY_SKIP = 1,     /* not selected by the filter */
    HOOKD_REPLAY_SKIP_INVALID, /* invalid_event without include_invalid */
    HOOKD_REPLAY_REFUSE        /* selected, but cannot be replayed: reason says why */
} hookd_replay_action_t;

/* One dead letter, as read: borrowed. */
typedef struct hookd_replay_record {
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* -1: none */
    const void *key;      /* NULL: no key */
    size_t key_len;
    bool has_value; /* false: a tombstone (a "minimal" dead letter lost its value) */
    const hookd_header_t *headers;
    size_t header_count;
} hookd_replay_record_t;

typedef struct hookd_replay_choice {
    hookd_replay_action_t action;
    char reason[HOOKD_REPLAY_REASON_MAX]; /* for SKIP_INVALID and REFUSE, "" otherwise */
    unsigned phases_done;   /* HOOKD_PHASE_BIT set: the record's hookd.phases.done, 0: none */
    bool write_phases_done; /* hookd.phases.done is (re)written */
    bool resign;            /* signed headers changed: sign the record again (trust.can_sign) */
} hookd_replay_choice_t;

/* Decide what to do with one dead letter. Never fails: the choice says it all. */
void hookd_replay_choose(const hookd_replay_filter_t *f, const hookd_replay_trust_t *t,
                         const hookd_replay_record_t *r, hookd_replay_choice_t *out);

/* The provenance a replayed record carries. */
typedef struct hookd_replay_provenance {
    const char *topic; /* the dead-letter topic */
    const char *time;  /* RFC 3339 */
    const char *reason;
    const char *group;
} hookd_replay_provenance_t;

/*
 * The headers of the replayed record, appended to `out`: the dead letter's
 * headers without the context ones, hookd.phases.done as chosen, and the
 * provenance. When the choice rewrites hookd.phases.done the old signature
 * is dropped (the caller signs again when it can). 0, -1 on ENOMEM.
 */
int hookd_replay_headers(const hookd_replay_record_t *r, const hookd_replay_choice_t *c,
                         const hookd_replay_provenance_t *p, hookd_headers_t *out);

/* Is `item` (len bytes) one of the comma-separated `list`? Blanks around items ignored. */
bool hookd_replay_list_has(const char *list, const char *item, size_t len);

/*
 * Check that every item of `list` is a phase name. 0, or -1 with a reason.
 */
int hookd_replay_check_phases(const char *list, char *errstr, size_t errstr_size);

/*
 * A time as milliseconds since the epoch: RFC 3339 with an offset
 * ("2026-12-02T10:00:00Z", "2026-12-02T11:00:00.5+01:00") or a whole
 * number of milliseconds. 0, or -1 when it is neither.
 */
int hookd_replay_parse_time(const char *s, int64_t *ms);

/* "N" or "N/s", N a positive number of records per second. 0, or -1. */
int hookd_replay_parse_rate(const char *s, double *per_second);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_REPLAY_PLAN_H */
