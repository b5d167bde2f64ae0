/* SPDX-License-Identifier: MIT */
/*
 * The message pipeline (see pipeline.h): one consumed message, on a
 * handler thread, from its bytes to its published outcome.
 */
#include "pipeline.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "auth.h"
#include "clock.h"
#include "engine.h"
#include "event.h"
#include "invoke.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "outseq.h"
#include "publisher.h"
#include "registry.h"
#include "request.h"
#include "result.h"
#include "tiers.h"

static void record_invocations(const hookd_decision_t *d)
{
    size_t i;
    for (i = 0; i < d->run_count; i++) {
        const hookd_run_t *r = &d->runs[i];
        const char *phase = hookd_phase_name(r->phase);
        uint32_t attempts = r->attempts ? r->attempts : 1, a;
        double each = (double)r->duration_us / 1e6 / attempts;
        /* Every attempt but the last asked for a retry; the last one too
         * when the retries ran out. */
        for (a = 1; a < attempts; a++)
            hookd_metrics_invocation(phase, r->handler_name, "retry", each);
        hookd_metrics_invocation(phase, r->handler_name,
                                 r->error_class == HOOKD_ERRCLASS_RETRIES_EXHAUSTED ? "retry"
                                 : r->outcome == HOOKD_OK                           ? "ok"
                                                                                    : "fail",
                                 each);
    }
}

/*
 * A consumed message, copied out of librdkafka's fetch buffer: a message
 * kept as an rd_kafka_message_t holds its whole fetch response in memory,
 * so a queue of them would cost fetch responses, not messages. One
 * allocation; headers already in the codec's form.
 */
struct hookd_msg {
    int32_t partition;
    int32_t slot; /* the pool's partition: == partition without retry tiers */
    int64_t offset;
    int64_t timestamp_ms; /* -1: none */
    const void *key;      /* NULL: no key */
    size_t key_len;
    const void *value; /* NULL: a tombstone */
    size_t len;
    hookd_header_t *headers;
    size_t header_count;
};

hookd_msg_t *hookd_msg_from(const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_timestamp_type_t tstype;
    size_t n = 0, i, size;
    hookd_msg_t *m;
    char *p;

    /* rd_kafka_message_headers() parses lazily into the message: not const. */
    if (rd_kafka_message_headers((rd_kafka_message_t *)rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        hdrs != NULL)
        n = rd_kafka_header_cnt(hdrs);
    size = sizeof(*m) + n * sizeof(hookd_header_t) + (rkm->key ? rkm->key_len : 0) +
           (rkm->payload ? rkm->len : 0);
    for (i = 0; i < n; i++) {
        const char *name;
        const void *value;
        size_t len;
        if (rd_kafka_header_get_all(hdrs, i, &name, &value, &len) == RD_KAFKA_RESP_ERR_NO_ERROR)
            size += strlen(name) + 1 + (value ? len : 0);
    }
    if ((m = malloc(size)) == NULL)
        return NULL;
    m->partition = rkm->partition;
    m->slot = rkm->partition;
    m->offset = rkm->offset;
    m->timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype);
    if (tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
        m->timestamp_ms = -1;
    m->headers = (hookd_header_t *)(m + 1);
    m->header_count = 0;
    p = (char *)(m->headers + n);
    for (i = 0; i < n; i++) {
        const char *name;
        const void *value;
        size_t len, nl;
        hookd_header_t *h = &m->headers[m->header_count];
        if (rd_kafka_header_get_all(hdrs, i, &name, &value, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        nl = strlen(name) + 1;
        memcpy(p, name, nl);
        h->name = p;
        p += nl;
        h->len = value ? len : 0;
        h->value = value ? p : NULL;
        if (value && len)
            memcpy(p, value, len);
        p += h->len;
        m->header_count++;
    }
    m->key = NULL;
    m->key_len = 0;
    if (rkm->key != NULL) {
        if (rkm->key_len)
            memcpy(p, rkm->key, rkm->key_len);
        m->key = p;
        m->key_len = rkm->key_len;
        p += rkm->key_len;
    }
    m->value = NULL;
    m->len = 0;
    if (rkm->payload != NULL) {
        if (rkm->len)
            memcpy(p, rkm->payload, rkm->len);
        m->value = p;
        m->len = rkm->len;
    }
    return m;
}

/*
 * The decision as a reply shows it. acme2certifier tells its client only
 * "pre-hook failed" (and so on) unless hook_error_details_forward is set;
 * a requester is that server's proxy, so the handler's own text stays on
 * the result topic, for operators, and the reply gets the generic words.
 * The codec's reason for an invalid or forged event is about the
 * requester's own input and is kept.
 */
static const hookd_decision_t *reply_decision(const hookd_decision_t *d, bool details_forward,
                                              hookd_decision_t *scratch)
{
    static const char *const generic[HOOKD_PHASE_COUNT] = {"pre-hook failed", "success-hook failed",
                                                           "post-hook failed"};
    size_t i;
    if (details_forward)
        return d;
    memcpy(scratch, d, offsetof(hookd_decision_t, runs) + d->run_count * sizeof(d->runs[0]));
    for (i = 0; i < scratch->run_count; i++)
        if (scratch->runs[i].outcome != HOOKD_OK && scratch->runs[i].phase < HOOKD_PHASE_COUNT)
            snprintf(scratch->runs[i].error, sizeof(scratch->runs[i].error), "%s",
                     generic[scratch->runs[i].phase]);
    if (scratch->failed_run >= 0 && scratch->failed_phase < HOOKD_PHASE_COUNT)
        snprintf(scratch->error, sizeof(scratch->error), "%s", generic[scratch->failed_phase]);
    return scratch;
}

/* Where a reply goes, decided before the engine ran. */
typedef struct pl_reply {
    char topic[256];   /* "" : no reply */
    int32_t partition; /* -1: by key */
    const void *correlation_id;
    size_t correlation_id_len;
    bool details_forward;
} pl_reply_t;

/*
 * Read the request's reply headers and check them against the allow-list.
 * A refused reply is counted and logged, and the event is processed all
 * the same: its result still goes to the result topic.
 */
static void reply_prepare(const hookd_config_t *cfg, const hookd_msg_t *m, bool forged,
                          const hookd_log_fields_t *f, pl_reply_t *out)
{
    hookd_reply_to_t rt_;
    char why[256];

    memset(out, 0, sizeof(*out));
    out->partition = -1;
    out->details_forward = cfg->hook_error_details_forward;
    if (hookd_request_reply_to(m->headers, m->header_count, &rt_, why, sizeof(why)) !=
        HOOKD_REQUEST_OK) {
        hookd_metrics_reply("refused");
        hookd_logf(HOOKD_LOG_WARNING, f, "no reply: %s", why);
        return;
    }
    if (rt_.topic == NULL)
        return;
    if (forged) {
        /* answering unauthenticated requests would let anyone write to
         * the reply topics */
        hookd_metrics_reply("refused");
        hookd_logf(HOOKD_LOG_WARNING, f, "no reply to %.*s: the event failed authentication",
                   (int)rt_.topic_len, rt_.topic);
        return;
    }
    if (!hookd_request_topic_allowed(cfg->reply_topics, rt_.topic, rt_.topic_len)) {
        hookd_metrics_reply("refused");
        hookd_logf(HOOKD_LOG_WARNING, f, "no reply: topic '%.*s' is not in [kafka] reply_topics",
                   (int)rt_.topic_len, rt_.topic);
        return;
    }
    memcpy(out->topic, rt_.topic, rt_.topic_len); /* <= 249 bytes, checked */
    out->topic[rt_.topic_len] = '\0';
    out->partition = rt_.partition;
    out->correlation_id = rt_.correlation_id;
    out->correlation_id_len = rt_.correlation_id_len;
}

/*
 * An outcome ready to publish: its records encoded, the message it is the
 * outcome of owned. Built by outcome_prepare() on the handler thread that
 * ran the event; published by outcome_emit(), there or (exactly-once,
 * parked in the outcome sequencer) on the handler thread that holds the
 * partition's turn when every earlier event's outcome is out.
 *
 * Only an outcome that may be parked (exactly-once) must outlive its
 * event: that one is on the heap with its own copies of the event's
 * strings (`owned`). In at-least-once mode it is published before the
 * event is cleared, so it lives on the handler thread's stack and borrows
 * them: no allocation or copy per event for the envelope.
 */
typedef struct pl_outcome {
    hookd_msg_t *m; /* owned when owns_m (exactly-once: it may be parked) */
    bool owns_m;
    bool owned; /* heap-allocated, event strings copied (may be parked) */
    uint64_t epoch;
    const char *topic;    /* where the message was consumed (the configuration's) */
    const char *event_id; /* for logs; NULL: none */
    char *event_id_own;   /* owned: event_id's copy */
    bool result, dead_letter, reply;
    const char *verdict_label, *class_label; /* static names */
    const void *key;                         /* of the result and the reply */
    size_t key_len;
    char *key_own; /* the order name, when it is the key */
    char *value, *pvalue;
    size_t value_len, pvalue_len;
    hookd_headers_t *rh, *dh, *ph;
    char reply_topic[256];
    int32_t reply_partition;
    unsigned acks; /* records it publishes */
} pl_outcome_t;

static void outcome_free(pl_outcome_t *o)
{
    if (o == NULL)
        return;
    free(o->value);
    free(o->pvalue);
    hookd_headers_destroy(o->rh);
    hookd_headers_destroy(o->dh);
    hookd_headers_destroy(o->ph);
    if (!o->owned)
        return;
    if (o->owns_m)
        free(o->m);
    free(o->event_id_own);
    free(o->key_own);
    free(o);
}

void hookd_pipeline_outcome_dispose(void *item)
{
    outcome_free(item);
}

/*
 * Encode the outcome: the result (when the event has an id), the dead
 * letter (when decided: the message's headers, or `dl_base`'s when not
 * NULL, then the context), and the reply (when asked for and allowed).
 * Returns it pointing at `m` (which stays the caller's until it sets
 * owns_m), or NULL (out of memory, signing failed: nothing to publish, the
 * message stays uncommitted). With `local` (not NULL) the outcome is built
 * there and borrows the event's strings: it must be published and freed
 * before the event is cleared; else it is allocated and owns copies.
 */
static pl_outcome_t *outcome_prepare(const hookd_pipeline_t *pl, hookd_msg_t *m, uint64_t epoch,
                                     const hookd_event_t *ev, const hookd_decision_t *d,
                                     const pl_reply_t *reply, const hookd_headers_t *dl_base,
                                     hookd_decision_t *scratch, pl_outcome_t *local)
{
    const hookd_config_t *cfg = pl->cfg;
    const char *topic =
        hookd_tiers_topic(cfg->retry_tiers, hookd_tiers_slot_tier(cfg->retry_tiers, m->slot),
                          cfg->input_topic);
    hookd_origin_t origin = {topic, m->partition, m->offset, m->timestamp_ms, cfg->group_id};
    hookd_result_info_t info = {ev, &origin, cfg->worker_id, pl->source, cfg->max_error_bytes};
    hookd_log_fields_t f = HOOKD_LOG_FIELDS_INIT;
    pl_outcome_t *o;
    size_t i;

    f.event_id = ev->id;
    f.topic = topic;
    f.partition = m->partition;
    f.offset = m->offset;
    if (local != NULL) {
        o = local;
        memset(o, 0, sizeof(*o));
        o->event_id = ev->id;
    } else {
        if ((o = calloc(1, sizeof(*o))) == NULL)
            goto nomem;
        o->owned = true;
        if (ev->id != NULL && (o->event_id = o->event_id_own = strdup(ev->id)) == NULL)
            goto nomem;
    }
    o->epoch = epoch;
    o->topic = topic;
    o->reply_partition = -1;

    if (ev->id != NULL) {
        if ((o->rh = hookd_headers_new()) == NULL ||
            (o->value = hookd_result_encode(&info, d, o->rh, &o->value_len)) == NULL)
            goto nomem;
        if (pl->auth != NULL && hookd_auth_sign_enabled(pl->auth)) {
            char why[256];
            const void *k = m->key_len ? m->key : (const void *)ev->order_name;
            size_t kl = m->key_len ? m->key_len : (ev->order_name ? strlen(ev->order_name) : 0);
            if (hookd_auth_sign(pl->auth, k, kl, o->value, o->value_len, o->rh, why, sizeof(why)) !=
                0) {
                /* Not publishing unsigned results when signing is asked:
                 * the message stays uncommitted and is redone. */
                hookd_logf(HOOKD_LOG_ERROR, &f, "cannot sign the result: %s", why);
                goto error;
            }
        }
        if (m->key_len > 0) {
            o->key = m->key;
            o->key_len = m->key_len;
        } else if (ev->order_name != NULL) {
            if (!o->owned)
                o->key = ev->order_name;
            else if ((o->key = o->key_own = strdup(ev->order_name)) == NULL)
                goto nomem;
            o->key_len = strlen(ev->order_name);
        }
        o->result = true;
        o->verdict_label = hookd_verdict_name(d->verdict);
        o->acks++;
    }
    if (d->dead_letter) {
        if ((o->dh = hookd_headers_new()) == NULL)
            goto nomem;
        for (i = 0; dl_base == NULL && i < m->header_count; i++)
            if (hookd_headers_add(o->dh, m->headers[i].name, m->headers[i].value,
                                  m->headers[i].len) != 0)
                goto nomem;
        for (i = 0; dl_base != NULL && i < hookd_headers_count(dl_base); i++) {
            const hookd_header_t *h = hookd_headers_get(dl_base, i);
            if (hookd_headers_add(o->dh, h->name, h->value, h->len) != 0)
                goto nomem;
        }
        if (hookd_deadletter_headers(&info, d, o->dh) != 0)
            goto nomem;
        o->dead_letter = true;
        o->class_label = hookd_error_class_name(d->error_class);
        o->acks++;
    }

    if (reply->topic[0] != '\0' && ev->id != NULL) {
        /* The reply is the result event again (or its masked rendering,
         * with ids and time of its own), plus the correlation id. */
        const hookd_decision_t *rd = reply_decision(d, reply->details_forward, scratch);
        size_t n;
        if ((o->ph = hookd_headers_new()) == NULL)
            goto nomem;
        if (rd == d) {
            for (n = 0; n < hookd_headers_count(o->rh); n++) {
                const hookd_header_t *h = hookd_headers_get(o->rh, n);
                if (hookd_headers_add(o->ph, h->name, h->value, h->len) != 0)
                    goto nomem;
            }
        } else if ((o->pvalue = hookd_result_encode(&info, rd, o->ph, &o->pvalue_len)) == NULL) {
            goto nomem;
        }
        if (reply->correlation_id != NULL &&
            hookd_headers_add(o->ph, HOOKD_HDR_CORRELATION_ID, reply->correlation_id,
                              reply->correlation_id_len) != 0)
            goto nomem;
        memcpy(o->reply_topic, reply->topic, sizeof(o->reply_topic));
        o->reply_partition = reply->partition;
        o->reply = true;
        o->acks++;
    }
    o->m = m;
    return o;

nomem:
    hookd_logf(HOOKD_LOG_ERROR, &f, "out of memory encoding the outcome; offset held");
error:
    outcome_free(o);
    return NULL;
}

/* The log fields that place an outcome: its event and input message. */
static hookd_log_fields_t outcome_fields(const pl_outcome_t *o)
{
    hookd_log_fields_t f = HOOKD_LOG_FIELDS_INIT;
    f.event_id = o->event_id;
    f.topic = o->topic;
    f.partition = o->m->partition;
    f.offset = o->m->offset;
    return f;
}

/*
 * Publish a prepared outcome. The tracker is told how many records to wait
 * for before anything is produced, so no delivery report can come first.
 * Returns the number of records published.
 */
static unsigned outcome_emit(const hookd_pipeline_t *pl, const pl_outcome_t *o)
{
    const hookd_config_t *cfg = pl->cfg;
    const hookd_msg_t *m = o->m;
    hookd_record_origin_t ro = {m->slot, o->epoch, m->offset, o->topic, m->partition};
    hookd_log_fields_t f = outcome_fields(o);
    unsigned acks = o->acks;

    /* Exactly-once: the outcome's records go into one transaction together
     * (a transaction never ends between begin and end), and the epoch the
     * tracker checks below cannot change meanwhile (a rewind happens only
     * while no outcome is in progress). A no-op in at-least-once mode. */
    hookd_publisher_outcome_begin(pl->pub);
    if (hookd_offsets_expect(pl->offsets, m->slot, o->epoch, m->offset, acks) != HOOKD_OFFSETS_OK) {
        /* Revoked while we worked (past revoke_timeout_ms): the new owner
         * redoes this message; publishing now would only add a duplicate. */
        hookd_logf(HOOKD_LOG_INFO, &f,
                   "partition revoked during processing; outcome not published");
        acks = 0;
        goto done;
    }
    if (o->result &&
        hookd_publisher_publish(pl->pub, HOOKD_RECORD_RESULT, cfg->result_topic, o->key, o->key_len,
                                o->value, o->value_len, o->rh, &ro, o->verdict_label) != 0)
        hookd_logf(HOOKD_LOG_ERROR, &f, "out of memory publishing the result; offset held");
    if (o->dead_letter &&
        hookd_publisher_publish(pl->pub, HOOKD_RECORD_DEAD_LETTER, cfg->dead_letter_topic, m->key,
                                m->key_len, m->value, m->len, o->dh, &ro, o->class_label) != 0)
        hookd_logf(HOOKD_LOG_ERROR, &f, "out of memory publishing the dead letter; offset held");
    if (o->reply &&
        hookd_publisher_reply(pl->pub, o->reply_topic, o->reply_partition, o->key, o->key_len,
                              o->pvalue != NULL ? o->pvalue : o->value,
                              o->pvalue != NULL ? o->pvalue_len : o->value_len, o->ph, &ro) != 0)
        hookd_logf(HOOKD_LOG_ERROR, &f, "out of memory publishing the reply; offset held");
done:
    hookd_publisher_outcome_end(pl->pub, acks > 0);
    return acks;
}

/*
 * Publish the outcome `o` (taken): at once, or, with the outcome sequencer
 * (exactly-once), when every earlier consumed event of its partition has
 * published its own. The thread whose outcome goes then publishes the
 * parked ones that follow it, in order, until one is missing. Returns the
 * records published for `o` itself (0 when parked).
 */
static unsigned outcome_publish(const hookd_pipeline_t *pl, pl_outcome_t *o)
{
    int32_t slot = o->m->slot;
    uint64_t epoch = o->epoch;
    unsigned acks = 0;

    if (pl->seq == NULL) {
        acks = outcome_emit(pl, o);
        outcome_free(o);
        return acks;
    }
    switch (hookd_outseq_arrive(pl->seq, slot, epoch, o->m->offset, o)) {
    case HOOKD_OUTSEQ_PARKED:
        return 0;
    case HOOKD_OUTSEQ_STALE: {
        hookd_log_fields_t f = outcome_fields(o);
        hookd_logf(HOOKD_LOG_INFO, &f,
                   "partition revoked during processing; outcome not published");
        outcome_free(o);
        return 0;
    }
    case HOOKD_OUTSEQ_GO:
        break;
    }
    acks = outcome_emit(pl, o);
    outcome_free(o);
    while ((o = hookd_outseq_next(pl->seq, slot, epoch)) != NULL) {
        outcome_emit(pl, o);
        outcome_free(o);
    }
    return acks;
}

/*
 * The phases this event says already succeeded (hookd.phases.done: a
 * replayed or retried event). Believed only from a producer the worker
 * trusts: under [auth] require the header is signed, so only a key holder
 * set it; otherwise [worker] trust_event_flags says every producer of the
 * input topic is trusted. An untrusted header is refused, not ignored:
 * ignoring it would run again a success chain that already ran. 0, or -1
 * with the reason for the dead letter.
 */
static int phases_done_read(const hookd_pipeline_t *pl, const hookd_msg_t *m, bool own_tier,
                            unsigned *done, char *why, size_t why_size)
{
    bool present;
    if (hookd_request_phases_done(m->headers, m->header_count, &present, done, why, why_size) !=
        HOOKD_REQUEST_OK)
        return -1;
    /* A record of the worker's own retry tier topics was written by a
     * worker (docs/security.md: only the workers may write there). */
    if (present && !own_tier && !pl->cfg->trust_event_flags &&
        !(pl->auth != NULL && hookd_auth_verify_enabled(pl->auth))) {
        snprintf(why, why_size,
                 "header %s is not trusted: honoured only with [auth] require = true (signed) "
                 "or [worker] trust_event_flags = true; ignoring it could run a success hook twice",
                 HOOKD_HDR_PHASES_DONE);
        *done = 0;
        return -1;
    }
    return 0;
}

/* ---- retry tiers (tiers.h) ------------------------------------------------ */

/*
 * What the retry headers of a message say; for an input message, the state
 * its first tier record starts from. Unreadable retry headers of a tier
 * record are logged and read as unknown: the event still runs (its
 * hookd.phases.done is read apart, and refused when unreadable).
 */
static void tier_state(const hookd_pipeline_t *pl, const hookd_msg_t *m, size_t tier,
                       const hookd_log_fields_t *f, hookd_tiers_state_t *ts)
{
    char why[256];
    if (tier == 0) {
        memset(ts, 0, sizeof(*ts));
        ts->due_ms = -1;
        ts->first_failure_ms = -1;
        ts->origin_partition = m->partition;
        ts->origin_offset = m->offset;
        return;
    }
    snprintf(why, sizeof(why), "%zu", tier);
    hookd_metrics_retry_consumed(why);
    if (hookd_tiers_headers_decode(m->headers, m->header_count, ts, why, sizeof(why)) != 0) {
        hookd_logf(HOOKD_LOG_WARNING, f, "retry headers unreadable (%s); run as tier %zu", why,
                   tier);
        memset(ts, 0, sizeof(*ts));
        ts->due_ms = ts->first_failure_ms = ts->origin_offset = -1;
        ts->origin_partition = -1;
    }
}

/* A record of the outcome that stands in for a tier record (publisher.h). */
static hookd_publisher_record_t standin(hookd_record_kind_t kind, const char *topic,
                                        int32_t partition, const void *key, size_t key_len,
                                        const void *value, size_t value_len,
                                        const hookd_headers_t *headers, const char *label)
{
    hookd_publisher_record_t r = {kind,  topic,     partition, key,  key_len,
                                  value, value_len, headers,   label};
    return r;
}

/*
 * Publish the event to retry tier `next`: its key, value and headers, with
 * the retry headers and the phases done anew (signed when [auth] verifies
 * input, so the worker that consumes it can verify it like any event), to
 * the tier topic's partition of the same number as its input partition.
 * The tier record is the event's outcome: the offset is done when it is
 * acknowledged. Its stand-ins go with it: the outcome as if there were no
 * further tier (`d` is that decision: retries_exhausted), published
 * instead should the tier topic refuse the record for good; their dead
 * letter carries the tier record's headers (with hookd.retry.*). The key
 * is held for the tier before the record can be acknowledged (a hold taken
 * after could outlive the event's return) and released again when nothing
 * was published. Returns 1 when published, 0 when not (revoked
 * meanwhile, or out of memory: left uncommitted and redone).
 */
static unsigned publish_tier(const hookd_pipeline_t *pl, hookd_msg_t *m, uint64_t epoch,
                             const hookd_event_t *ev, const hookd_decision_t *d, size_t next,
                             const hookd_tiers_state_t *ts, unsigned phases_done,
                             const pl_reply_t *reply, hookd_decision_t *scratch)
{
    const hookd_config_t *cfg = pl->cfg;
    const char *topic = hookd_tiers_topic(cfg->retry_tiers, next, NULL);
    const hookd_run_t *run = d->failed_run >= 0 ? &d->runs[d->failed_run] : NULL;
    hookd_record_origin_t ro = {m->slot, epoch, m->offset,
                                hookd_tiers_topic(cfg->retry_tiers, next - 1, cfg->input_topic),
                                m->partition};
    hookd_log_fields_t f = HOOKD_LOG_FIELDS_INIT;
    hookd_tiers_record_t rec;
    hookd_headers_t *h = NULL;
    int64_t now = hookd_wall_ms();
    unsigned acks = 0;
    char label[24];
    size_t i, n = 0;
    pl_outcome_t local, *o = NULL;
    hookd_publisher_record_t sb[3];
    bool held = false;

    f.event_id = ev->id;
    f.topic = hookd_tiers_topic(cfg->retry_tiers, next - 1, cfg->input_topic);
    f.partition = m->partition;
    f.offset = m->offset;
    memset(&rec, 0, sizeof(rec));
    rec.attempt = (uint32_t)next;
    rec.due_ms = hookd_tiers_due(cfg->retry_tiers, next, now);
    rec.first_failure_ms = ts->first_failure_ms >= 0 ? ts->first_failure_ms : now;
    rec.phase = hookd_phase_name(d->failed_phase);
    rec.handler = run != NULL ? run->handler_name : NULL;
    rec.error = d->error;
    rec.max_error_bytes = cfg->max_error_bytes;
    rec.origin_partition = ts->origin_partition >= 0 ? ts->origin_partition : m->partition;
    rec.origin_offset = ts->origin_offset;
    rec.phases_done = hookd_tiers_phases_done(ev->type, phases_done, d->failed_phase);

    if ((h = hookd_headers_new()) == NULL)
        goto nomem;
    for (i = 0; i < m->header_count; i++)
        if (hookd_tiers_header_carried(m->headers[i].name) &&
            hookd_headers_add(h, m->headers[i].name, m->headers[i].value, m->headers[i].len) != 0)
            goto nomem;
    if (hookd_tiers_headers_encode(&rec, h) != 0)
        goto nomem;
    if (pl->auth != NULL && hookd_auth_verify_enabled(pl->auth)) {
        char why[256];
        if (hookd_auth_sign(pl->auth, m->key, m->key_len, m->value, m->len, h, why, sizeof(why)) !=
            0) {
            hookd_logf(HOOKD_LOG_ERROR, &f, "cannot sign the retry record: %s", why);
            goto done;
        }
    }
    if ((o = outcome_prepare(pl, m, epoch, ev, d, reply, h, scratch, &local)) == NULL)
        goto done; /* logged */
    if (o->result)
        sb[n++] = standin(HOOKD_RECORD_RESULT, cfg->result_topic, -1, o->key, o->key_len, o->value,
                          o->value_len, o->rh, o->verdict_label);
    if (o->dead_letter)
        sb[n++] = standin(HOOKD_RECORD_DEAD_LETTER, cfg->dead_letter_topic, -1, m->key, m->key_len,
                          m->value, m->len, o->dh, o->class_label);
    if (o->reply)
        sb[n++] = standin(HOOKD_RECORD_REPLY, o->reply_topic, o->reply_partition, o->key,
                          o->key_len, o->pvalue != NULL ? o->pvalue : o->value,
                          o->pvalue != NULL ? o->pvalue_len : o->value_len, o->ph, NULL);

    if (pl->tier_hold != NULL)
        held = pl->tier_hold(pl->opaque, m->partition, next, m->key, m->key_len, ts->origin_offset);
    hookd_publisher_outcome_begin(pl->pub);
    if (hookd_offsets_expect(pl->offsets, m->slot, epoch, m->offset, 1) != HOOKD_OFFSETS_OK) {
        hookd_logf(HOOKD_LOG_INFO, &f,
                   "partition revoked during processing; retry record not published");
    } else {
        snprintf(label, sizeof(label), "%zu", next);
        if (hookd_publisher_publish_retry(pl->pub, topic, m->partition, m->key, m->key_len,
                                          m->value, m->len, h, &ro, label, sb, n,
                                          ts->origin_offset) != 0)
            hookd_logf(HOOKD_LOG_ERROR, &f, "out of memory publishing the retry; offset held");
        else
            acks = 1;
    }
    hookd_publisher_outcome_end(pl->pub, acks > 0);
    if (acks > 0)
        hookd_logf(HOOKD_LOG_INFO, &f, "retry: to %s (tier %zu, %s of %s: %s)", topic, next,
                   rec.phase, rec.handler ? rec.handler : "?", d->error);
    else if (held && pl->tier_release != NULL)
        pl->tier_release(pl->opaque, m->partition, m->key, m->key_len, ts->origin_offset);
    goto done;
nomem:
    hookd_logf(HOOKD_LOG_ERROR, &f, "out of memory encoding the retry record; offset held");
done:
    outcome_free(o);
    hookd_headers_destroy(h);
    return acks;
}

void hookd_pipeline_process(void *opaque, size_t thread_index, int32_t partition, uint64_t epoch,
                            void *item)
{
    const hookd_pipeline_t *pl = opaque;
    const hookd_config_t *cfg = pl->cfg;
    hookd_pipeline_thread_t *t = &pl->threads[thread_index];
    hookd_decision_t *d = &t->decision;
    hookd_msg_t *m = item;
    hookd_event_t ev;
    hookd_event_err_t eerr;
    char why[512], scratch[512];
    bool forged = false;
    hookd_log_fields_t f = HOOKD_LOG_FIELDS_INIT;
    pl_reply_t reply;
    hookd_policy_t policy;
    size_t tier = hookd_tiers_slot_tier(cfg->retry_tiers, partition), next = 0;
    hookd_tiers_state_t ts;
    unsigned phases_done = 0;

    memset(&ev, 0, sizeof(ev));
    m->slot = partition;
    f.topic = hookd_tiers_topic(cfg->retry_tiers, tier, cfg->input_topic);
    f.partition = m->partition;
    f.offset = m->offset;
    tier_state(pl, m, tier, &f, &ts);

    if (pl->auth != NULL && hookd_auth_verify_enabled(pl->auth) &&
        hookd_auth_verify(pl->auth, m->key, m->key_len, m->value, m->len, m->headers,
                          m->header_count, why, sizeof(why)) != 0) {
        forged = true;
        hookd_decision_reject(d, HOOKD_ERRCLASS_AUTH_FAILED, why);
    }
    /* Decoded even when forged: only for the id and order name of the
     * failed result; handlers never see a forged event. */
    eerr = hookd_event_decode(m->value, m->len, m->headers, m->header_count, &cfg->limits, &ev,
                              forged ? scratch : why, forged ? sizeof(scratch) : sizeof(why));
    f.event_id = ev.id;
    reply_prepare(cfg, m, forged, &f, &reply);
    if (forged) {
        hookd_metrics_event_consumed("invalid");
    } else if (eerr != HOOKD_EVENT_OK) {
        hookd_metrics_event_consumed("invalid");
        hookd_decision_reject(d, HOOKD_ERRCLASS_INVALID_EVENT, why);
    } else {
        hookd_request_flags_t rflags;
        bool bad_flags = false;
        hookd_metrics_event_consumed(hookd_event_type_name(ev.type));
        policy = cfg->policy;
        if (cfg->trust_event_flags) {
            if (hookd_request_flags(m->headers, m->header_count, &rflags, why, sizeof(why)) ==
                HOOKD_REQUEST_OK)
                hookd_request_apply(&rflags, &cfg->policy, cfg->hook_error_details_forward, &policy,
                                    &reply.details_forward);
            else
                bad_flags = true;
        }
        if (!bad_flags && phases_done_read(pl, m, tier > 0, &phases_done, why, sizeof(why)) != 0)
            bad_flags = true;
        if (bad_flags) {
            /* a trusted producer sent flags nobody can read: deciding under
             * the worker's own would be a guess (so would running an event
             * whose done phases are unreadable or untrusted) */
            hookd_decision_reject(d, HOOKD_ERRCLASS_INVALID_EVENT, why);
        } else if (cfg->verify_csr && hookd_x509_check_event(&ev, why, sizeof(why)) != 0) {
            char reason[600];
            snprintf(reason, sizeof(reason), "x509 check: %s", why);
            hookd_decision_reject(d, HOOKD_ERRCLASS_INVALID_EVENT, reason);
        } else {
            hookd_engine_run_from(&ev, hookd_registry_chain(pl->reg), &policy, phases_done,
                                  hookd_invoke_invoker(t->invoke), d);
            record_invocations(d);
        }
    }

    if (d->aborted) {
        /* Shutdown during a retry backoff: no outcome, nothing committed;
         * the next owner runs it again. */
        hookd_logf(HOOKD_LOG_INFO, &f, "processing interrupted by shutdown; left uncommitted");
        pl->done(pl->opaque, true);
    } else if ((next = hookd_tiers_next(cfg->retry_tiers, tier, d)) > 0) {
        publish_tier(pl, m, epoch, &ev, d, next, &ts, phases_done, &reply, &t->masked);
        pl->done(pl->opaque, false);
    } else {
        pl_outcome_t local; /* at-least-once: published before the event is cleared */
        pl_outcome_t *o = outcome_prepare(pl, m, epoch, &ev, d, &reply, NULL, &t->masked,
                                          pl->seq == NULL ? &local : NULL);
        unsigned acks = 0;
        if (o != NULL) {
            if (pl->seq != NULL) {
                /* It may be parked and published by another thread. */
                o->owns_m = true;
                m = NULL;
            }
            acks = outcome_publish(pl, o);
        } else if (pl->seq != NULL) {
            /* Exactly-once: an event without an outcome would hold back
             * every later one of its partition; abort the transaction,
             * which rewinds and redoes it. */
            hookd_publisher_txn_doom(pl->pub);
        }
        /* m is NULL only with the sequencer, i.e. exactly-once, which
         * config.c refuses with retry tiers. */
        if (tier > 0 && pl->tier_release != NULL && m != NULL)
            pl->tier_release(pl->opaque, m->partition, m->key, m->key_len, ts.origin_offset);
        if (d->dead_letter)
            hookd_logf(HOOKD_LOG_WARNING, &f, "%s: dead-lettered (%s%s%s)",
                       hookd_verdict_name(d->verdict), hookd_error_class_name(d->error_class),
                       d->error[0] ? ": " : "", d->error);
        else if (hookd_log_enabled(HOOKD_LOG_DEBUG))
            hookd_logf(HOOKD_LOG_DEBUG, &f, "%s (%zu handler run(s), %u record(s))",
                       hookd_verdict_name(d->verdict), d->run_count, acks);
        pl->done(pl->opaque, false);
    }
    hookd_event_clear(&ev);
    free(m);
}

void hookd_pipeline_drop(void *opaque, void *item)
{
    free(item);
}
