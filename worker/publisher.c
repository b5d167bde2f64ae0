/* SPDX-License-Identifier: MIT */
/*
 * The publisher (see publisher.h).
 *
 * Jobs sit in one list from publish until their acknowledgement, in one of
 * two states: in flight (handed to librdkafka, its delivery report will
 * come) or waiting (to be produced again at retry_at). Only the publisher
 * thread frees a job in flight (on its successful delivery report), so the
 * job pointer can be the message's opaque safely; a waiting job may be
 * freed by forget(), which is why the retry scan moves a job to in flight
 * under the lock before producing it.
 *
 * The producer handle itself is swapped only by the publisher thread (after
 * a fatal error) under a write lock; producing threads hold the read lock.
 * Each produce records the producer generation, so after a swap the jobs
 * the old producer still held can be found and produced again.
 *
 * A fallback (job_fallback) rewrites a job in place while no one else
 * touches it: it is in flight, and either its produce just failed or its
 * delivery report is being served, so librdkafka no longer refers to it
 * and neither forget() nor the retry scan takes it.
 */
#include "publisher.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>

#include "auth.h"
#include "clock.h"
#include "consumer.h"
#include "invoke.h"
#include "log.h"
#include "metrics.h"

typedef enum job_state { JOB_IN_FLIGHT = 0, JOB_WAITING = 1 } job_state_t;

typedef struct hookd_publish_job {
    struct hookd_publish_job *prev, *next;
    hookd_record_kind_t kind;
    const char *topic;
    int32_t partition; /* RD_KAFKA_PARTITION_UA: the partitioner's choice */
    /* key and headers live in the same allocation, after the job; the
     * value in a second one */
    void *key;
    size_t key_len;
    void *value;
    size_t value_len;
    hookd_header_t *headers; /* rebuilt as librdkafka headers at every produce */
    size_t header_count;
    hookd_record_origin_t origin;
    char label[48];
    job_state_t state;
    bool failing;      /* counted in failing[] */
    uint64_t gen;      /* producer generation of the last produce */
    uint64_t retry_at; /* ms, monotonic, when waiting */
    uint32_t attempts;
    uint8_t level; /* fallbacks applied: 0 as published, see job_fallback */
    void *extra;   /* headers rebuilt by a fallback (own allocation) */
    /* A retry record's stand-ins (publish_retry), chained through this
     * field, in no list until the record is refused for good; and the
     * token the standby callback gets then. */
    struct hookd_publish_job *standby;
    int64_t hold_token;
} hookd_publish_job_t;

/* Fallback levels of a job. */
#define LEVEL_AS_IS 0
#define LEVEL_REDUCED 1 /* dead letter: value cut; result: compacted */
#define LEVEL_MINIMAL 2 /* dead letter: no value, key or original headers */

/* Per record besides key, value and header bytes, as librdkafka counts a
 * message against message.max.bytes (MessageV2 overhead, varints of each
 * header), with room to spare. */
#define WIRE_OVERHEAD 128
#define WIRE_PER_HEADER 12

struct hookd_publisher {
    const hookd_config_t *cfg;
    char *bootstraps;
    hookd_publisher_ack_cb *ack;
    hookd_publisher_owned_cb *owned;
    hookd_publisher_standby_cb *standby;
    void *opaque;

    pthread_rwlock_t rk_lock;
    rd_kafka_t *rk;
    size_t max_msg_bytes; /* the producer's effective message.max.bytes */
    uint64_t gen;
    atomic_int fatal; /* set by error_cb, handled by the thread */

    pthread_mutex_t lock;
    pthread_cond_t cond; /* a job was acknowledged or dropped */
    hookd_publish_job_t *head, *tail;
    size_t *failing; /* per input partition: jobs whose delivery failed */
    size_t nfailing;
    size_t failing_total;
    size_t waiting;      /* jobs in JOB_WAITING: the retry scan runs only then */
    atomic_int sleepers; /* threads waiting on cond: broadcast only then */
    hookd_publisher_counts_t counts;

    /* [kafka] delivery = exactly_once: see "Transactions" below. */
    bool txn;                 /* the producer is transactional */
    pthread_mutex_t txn_lock; /* the gate: txn_closed, txn_active, txn_outcomes */
    pthread_cond_t txn_cond;  /* the gate opened, or the last outcome in progress ended */
    bool txn_closed;          /* a commit or an abort is under way: no outcome may start */
    size_t txn_active;        /* outcomes being published (between begin and end) */
    size_t txn_outcomes;      /* outcomes published in the open transaction */
    atomic_int txn_doomed;    /* a record of the open transaction failed: it must abort */
    atomic_int replacing;     /* txn_replace wants rk_lock: the publisher thread stands back */
    hookd_publisher_txn_stats_t txn_stats;

    pthread_t thread;
    bool thread_started;
    atomic_int stopping;
    atomic_int no_block; /* shutting down: publish() never waits for room */
};

static void job_free(hookd_publish_job_t *job)
{
    while (job != NULL) {
        hookd_publish_job_t *next = job->standby;
        free(job->value); /* the value has its own allocation, see job_new() */
        free(job->extra);
        free(job);
        job = next;
    }
}

/* Lock held. */
static void job_link(hookd_publisher_t *pub, hookd_publish_job_t *job)
{
    job->next = NULL;
    job->prev = pub->tail;
    if (pub->tail)
        pub->tail->next = job;
    else
        pub->head = job;
    pub->tail = job;
    pub->counts.outstanding++;
}

/* Lock held. */
static void job_unlink(hookd_publisher_t *pub, hookd_publish_job_t *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        pub->head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        pub->tail = job->prev;
    job->prev = job->next = NULL;
    pub->counts.outstanding--;
}

/* Lock held. */
static void failing_set(hookd_publisher_t *pub, hookd_publish_job_t *job, bool failing)
{
    int32_t p = job->origin.partition;
    if (job->failing == failing)
        return;
    if (failing) {
        if ((size_t)p >= pub->nfailing) {
            size_t n = (size_t)p + 1;
            size_t *nf = realloc(pub->failing, n * sizeof(*nf));
            if (nf == NULL)
                return; /* only the pause is lost; the retry still happens */
            memset(nf + pub->nfailing, 0, (n - pub->nfailing) * sizeof(*nf));
            pub->failing = nf;
            pub->nfailing = n;
        }
        pub->failing[p]++;
        if (pub->failing_total++ == 0)
            hookd_status_set(HOOKD_STATUS_PUBLISH_BLOCKED, true);
    } else {
        pub->failing[p]--;
        if (--pub->failing_total == 0)
            hookd_status_set(HOOKD_STATUS_PUBLISH_BLOCKED, false);
    }
    job->failing = failing;
}

/* Put a job back to be produced by the publisher thread in `delay_ms`. */
static void job_requeue(hookd_publisher_t *pub, hookd_publish_job_t *job, uint64_t delay_ms)
{
    pthread_mutex_lock(&pub->lock);
    job->state = JOB_WAITING;
    job->retry_at = hookd_now_ms() + delay_ms;
    pub->waiting++;
    pthread_mutex_unlock(&pub->lock);
}

/* Wake the threads waiting on cond (after a change made under the lock). */
static void wake_sleepers(hookd_publisher_t *pub)
{
    if (atomic_load(&pub->sleepers) > 0) {
        pthread_mutex_lock(&pub->lock);
        pthread_cond_broadcast(&pub->cond);
        pthread_mutex_unlock(&pub->lock);
    }
}

/* Where the record's input was consumed (hookd_record_origin_t). */
static int32_t origin_partition(const hookd_record_origin_t *o)
{
    return o->topic != NULL ? o->topic_partition : o->partition;
}

static const char *origin_topic(const hookd_publisher_t *pub, const hookd_record_origin_t *o)
{
    return o->topic != NULL ? o->topic : pub->cfg->input_topic;
}

static const char *kind_name(const hookd_publish_job_t *job)
{
    return job->kind == HOOKD_RECORD_RESULT  ? "result"
           : job->kind == HOOKD_RECORD_REPLY ? "reply"
           : job->kind == HOOKD_RECORD_RETRY ? "retry"
                                             : "dead letter";
}

/*
 * Hand a job to librdkafka. The job is in flight (state set by the caller
 * under the lock). Returns librdkafka's error; on error nothing was queued.
 */
static rd_kafka_resp_err_t job_produce(hookd_publisher_t *pub, hookd_publish_job_t *job)
{
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_resp_err_t err;
    size_t i;

    if (job->header_count > 0) {
        hdrs = rd_kafka_headers_new(job->header_count);
        for (i = 0; i < job->header_count; i++)
            rd_kafka_header_add(hdrs, job->headers[i].name, -1, job->headers[i].value,
                                job->headers[i].value ? (ssize_t)job->headers[i].len : 0);
    }

    pthread_rwlock_rdlock(&pub->rk_lock);
    job->gen = pub->gen;
    job->attempts++;
    err = rd_kafka_producev(pub->rk, RD_KAFKA_V_TOPIC(job->topic),
                            RD_KAFKA_V_PARTITION(job->partition),
                            RD_KAFKA_V_KEY(job->key, job->key_len),
                            RD_KAFKA_V_VALUE(job->value, job->value_len),
                            /* no copy: the job keeps key and value alive
                             * until the delivery report, and a retry
                             * produces the very same bytes again */
                            RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_HEADERS(hdrs),
                            RD_KAFKA_V_OPAQUE(job), RD_KAFKA_V_END);
    pthread_rwlock_unlock(&pub->rk_lock);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != NULL)
        rd_kafka_headers_destroy(hdrs); /* not taken by librdkafka */
    /* on success: hdrs = NULL; now owned by the message */
    return err;
}

/*
 * A reply that librdkafka could not deliver. Its own retries already ran
 * until message.timeout.ms, far past any requester's patience, and the
 * durable outcome is the result record, which is retried for as long as it
 * takes: so the reply is given up, counted and logged, and acknowledged to
 * the offset tracker. A reply partition that does not exist must not hold
 * the input partition for ever.
 */
static void reply_given_up(hookd_publisher_t *pub, hookd_publish_job_t *job, const char *reason)
{
    hookd_log_fields_t f = HOOKD_LOG_FIELDS_INIT;

    f.partition = origin_partition(&job->origin);
    f.offset = job->origin.offset;
    pthread_mutex_lock(&pub->lock);
    pub->counts.failures++;
    failing_set(pub, job, false);
    job_unlink(pub, job);
    pthread_mutex_unlock(&pub->lock);
    hookd_metrics_reply("undeliverable");
    hookd_logf(HOOKD_LOG_WARNING, &f, "reply to %s [%d] not delivered: %s; given up", job->topic,
               (int)job->partition, reason);
    if (pub->ack != NULL)
        pub->ack(pub->opaque, &job->origin, job->kind);
    wake_sleepers(pub);
    job_free(job);
}

hookd_produce_err_class_t hookd_publisher_classify(int err)
{
    switch ((rd_kafka_resp_err_t)err) {
    /* The record itself is wrong for the broker or for the producer: a
     * retry sends the same bytes and gets the same answer. */
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:    /* local (message.max.bytes) or broker */
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:      /* broker: bad message size */
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE: /* broker: batch over segment size */
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:        /* broker: e.g. no key on a compacted topic */
    case RD_KAFKA_RESP_ERR_INVALID_MSG:           /* broker: CORRUPT_MESSAGE */
        return HOOKD_PRODUCE_ERR_PERMANENT;
    default:
        /* Everything else is either transient (timeouts, leadership,
         * broker down, queue full) or affects every record alike
         * (authorization, unknown topic, policy, timestamps, unsupported
         * format): retried, with the partition blocked and /readyz not
         * ready until it clears. */
        return HOOKD_PRODUCE_ERR_TRANSIENT;
    }
}

/* What the record costs against message.max.bytes, value excluded. */
static size_t job_wire_rest(const hookd_publish_job_t *job, size_t extra_header_bytes)
{
    size_t n = WIRE_OVERHEAD + (job->key ? job->key_len : 0) + extra_header_bytes;
    for (size_t i = 0; i < job->header_count; i++)
        n += WIRE_PER_HEADER + strlen(job->headers[i].name) + job->headers[i].len;
    return n;
}

/* Replace the job's headers by a copy of `h` in one allocation (job->extra). */
static int job_set_headers(hookd_publish_job_t *job, const hookd_headers_t *h)
{
    size_t nh = hookd_headers_count(h), size = nh * sizeof(hookd_header_t), i;
    hookd_header_t *items;
    char *p;

    for (i = 0; i < nh; i++) {
        const hookd_header_t *x = hookd_headers_get(h, i);
        size += strlen(x->name) + 1 + (x->value ? x->len : 0);
    }
    if ((items = malloc(size ? size : 1)) == NULL)
        return -1;
    p = (char *)(items + nh);
    for (i = 0; i < nh; i++) {
        const hookd_header_t *x = hookd_headers_get(h, i);
        size_t nl = strlen(x->name) + 1;
        memcpy(p, x->name, nl);
        items[i].name = p;
        p += nl;
        items[i].len = x->value ? x->len : 0;
        items[i].value = x->value ? p : NULL;
        if (x->value && x->len)
            memcpy(p, x->value, x->len);
        p += items[i].len;
    }
    free(job->extra);
    job->extra = items;
    job->headers = items;
    job->header_count = nh;
    return 0;
}

static bool is_context_header(const char *name)
{
    return strncmp(name, "hookd.dlq.", 10) == 0 || strncmp(name, "__connect.errors.", 17) == 0;
}

/* Size of the three headers that say a value was cut (names, values, overhead). */
#define TRUNCATION_HEADER_BYTES (3 * WIRE_PER_HEADER + 80 + 20 + 64)

/*
 * Cut a dead letter's value to `cap` bytes (or less, to what fits), with
 * the truncation headers when bytes are actually cut: a value that fits
 * whole stays whole and unmarked, so `hookd.dlq.value_truncated` never
 * says more than happened. LEVEL_MINIMAL also drops the key and every
 * header but the context ones. The SHA-256 is of the value as it is now
 * (the original, unless an earlier level cut it: then its headers are kept).
 */
static int dead_letter_cut(hookd_publisher_t *pub, hookd_publish_job_t *job, size_t cap,
                           uint8_t level)
{
    hookd_headers_t *h = hookd_headers_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1], orig[24];
    bool already = false;
    size_t i, rest, fit;
    int rc = -1;

    if (h == NULL)
        return -1;
    for (i = 0; i < job->header_count; i++)
        if (strcmp(job->headers[i].name, "hookd.dlq.value_truncated") == 0)
            already = true;
    for (i = 0; i < job->header_count; i++) {
        const hookd_header_t *x = &job->headers[i];
        if (level >= LEVEL_MINIMAL && !is_context_header(x->name))
            continue;
        if (hookd_headers_add(h, x->name, x->value, x->len) != 0)
            goto done;
    }
    if (job_set_headers(job, h) != 0)
        goto done;
    if (level >= LEVEL_MINIMAL) {
        job->key = NULL;
        job->key_len = 0;
        cap = 0;
    }
    /* Room for the truncation headers is kept when deciding, so that the
     * value still fits once they are added. */
    rest = job_wire_rest(job, already ? 0 : TRUNCATION_HEADER_BYTES);
    fit = pub->max_msg_bytes > rest ? pub->max_msg_bytes - rest : 0;
    if (cap > fit)
        cap = fit;
    if (job->value_len > cap) {
        if (!already) {
            if (EVP_Digest(job->value ? job->value : "", job->value_len, md, &mdlen, EVP_sha256(),
                           NULL) != 1)
                goto done;
            for (i = 0; i < mdlen; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
            snprintf(orig, sizeof(orig), "%zu", job->value_len);
            if (hookd_headers_add_str(h, "hookd.dlq.value_truncated", "true") != 0 ||
                hookd_headers_add_str(h, "hookd.dlq.value_original_bytes", orig) != 0 ||
                hookd_headers_add_str(h, "hookd.dlq.value_sha256", hex) != 0 ||
                job_set_headers(job, h) != 0)
                goto done;
            rest = job_wire_rest(job, 0);
            fit = pub->max_msg_bytes > rest ? pub->max_msg_bytes - rest : 0;
            if (cap > fit)
                cap = fit;
        }
        job->value_len = cap; /* the buffer stays; only fewer bytes are produced */
    }
    job->level = level;
    rc = 0;
done:
    hookd_headers_destroy(h);
    return rc;
}

/* The configured cut of dead-letter values, or no cut (0). */
static size_t dead_letter_cap(const hookd_publisher_t *pub)
{
    return pub->cfg->dead_letter_max_value_bytes > 0 ? pub->cfg->dead_letter_max_value_bytes
                                                     : SIZE_MAX;
}

/* A result the broker refuses in its compact form: a dead letter instead. */
static int result_to_dead_letter(hookd_publisher_t *pub, hookd_publish_job_t *job,
                                 const char *reason)
{
    const hookd_config_t *cfg = pub->cfg;
    hookd_origin_t o = {origin_topic(pub, &job->origin), origin_partition(&job->origin),
                        job->origin.offset, -1, cfg->group_id};
    hookd_headers_t *h = hookd_headers_new();
    int rc = -1;

    if (h == NULL ||
        hookd_deadletter_refused_headers(&o, cfg->worker_id, "result", NULL, reason, h) != 0 ||
        job_set_headers(job, h) != 0)
        goto done;
    job->kind = HOOKD_RECORD_DEAD_LETTER;
    job->topic = cfg->dead_letter_topic;
    job->key = NULL;
    job->key_len = 0;
    snprintf(job->label, sizeof(job->label), "publish_refused");
    rc = dead_letter_cut(pub, job, dead_letter_cap(pub), LEVEL_REDUCED);
done:
    hookd_headers_destroy(h);
    return rc;
}

/*
 * The record was refused for good: rewrite it into its next smaller form.
 * Returns the name of the form, NULL when there is none left (or ENOMEM):
 * then it is retried as it is, like a transient error.
 */
static const char *job_fallback(hookd_publisher_t *pub, hookd_publish_job_t *job,
                                const char *reason)
{
    bool signed_result = false;
    size_t i;

    if (job->kind == HOOKD_RECORD_RETRY)
        return NULL; /* its stand-ins replace it: retry_stand_down() */
    if (job->kind == HOOKD_RECORD_DEAD_LETTER) {
        if (job->level < LEVEL_REDUCED && job->value_len > 0) {
            size_t cap = dead_letter_cap(pub), rest = job_wire_rest(job, TRUNCATION_HEADER_BYTES);
            size_t fit = pub->max_msg_bytes > rest ? pub->max_msg_bytes - rest : 0;
            /* Under the producer's limit yet refused: the topic's own
             * max.message.bytes is lower, and not known here. A quarter
             * first, then nothing (LEVEL_MINIMAL). */
            if (job->value_len <= cap && job->value_len <= fit)
                cap = job->value_len / 4;
            return dead_letter_cut(pub, job, cap, LEVEL_REDUCED) == 0 ? "value_truncated" : NULL;
        }
        if (job->level < LEVEL_MINIMAL)
            return dead_letter_cut(pub, job, 0, LEVEL_MINIMAL) == 0 ? "minimal" : NULL;
        return NULL;
    }

    /* A result. A signed one is not compacted (its signature covers the
     * value): it goes to the dead-letter topic at once. */
    for (i = 0; i < job->header_count; i++)
        if (strcmp(job->headers[i].name, HOOKD_AUTH_HEADER) == 0)
            signed_result = true;
    if (job->level < LEVEL_REDUCED && !signed_result) {
        size_t len = 0;
        char *v = job->value ? hookd_result_compact(job->value, job->value_len, &len) : NULL;
        hookd_headers_t *h = hookd_headers_new();
        bool ok = v != NULL && h != NULL;

        /* the order name goes from the headers too (ce_subject) */
        for (i = 0; ok && i < job->header_count; i++)
            if (strcmp(job->headers[i].name, "ce_subject") != 0 &&
                hookd_headers_add(h, job->headers[i].name, job->headers[i].value,
                                  job->headers[i].len) != 0)
                ok = false;
        ok = ok && job_set_headers(job, h) == 0;
        hookd_headers_destroy(h);
        if (!ok) {
            free(v);
            return NULL;
        }
        free(job->value);
        job->value = v;
        job->value_len = len;
        job->level = LEVEL_REDUCED;
        return "result_compacted";
    }
    return result_to_dead_letter(pub, job, reason) == 0 ? "result_dead_lettered" : NULL;
}

/* A delivery failed or could not even be queued: retry later. */
/*
 * Exactly-once: a record of the open transaction failed. librdkafka has put
 * the transaction in its abortable state (a failed delivery), or the
 * producer cannot produce in it (fatal, fenced, aborting): re-producing the
 * record, or a smaller form of it, would only join a transaction that can
 * no longer commit. The job is dropped, the transaction marked doomed, and
 * the runtime aborts it and redoes its events from the committed offsets.
 * (Only a record the producer refuses at once for its size still falls
 * back, in job_submit: it was never queued, so the transaction is
 * unharmed.) In this mode no job ever waits for the publisher thread's
 * retry: every record is produced by the thread that publishes it, inside
 * its outcome, so a closed gate means nothing is being produced.
 */
static void txn_record_failed(hookd_publisher_t *pub, hookd_publish_job_t *job,
                              rd_kafka_resp_err_t err)
{
    hookd_log_fields_t f = HOOKD_LOG_FIELDS_INIT;
    f.partition = origin_partition(&job->origin);
    f.offset = job->origin.offset;
    if (atomic_exchange(&pub->txn_doomed, 1) == 0)
        hookd_logf(HOOKD_LOG_WARNING, &f,
                   "%s to %s not delivered (%s): the open transaction will be aborted and its "
                   "events redone",
                   kind_name(job), job->topic, rd_kafka_err2str(err));
    hookd_metrics_publish_error();
    pthread_mutex_lock(&pub->lock);
    pub->counts.failures++;
    failing_set(pub, job, false);
    job_unlink(pub, job);
    pthread_cond_broadcast(&pub->cond);
    pthread_mutex_unlock(&pub->lock);
    job_free(job);
}

static void job_failed(hookd_publisher_t *pub, hookd_publish_job_t *job, rd_kafka_resp_err_t err);
static void job_precut(hookd_publisher_t *pub, hookd_publish_job_t *job);
static rd_kafka_resp_err_t job_produce_now(hookd_publisher_t *pub, hookd_publish_job_t *job,
                                           bool wait);

/*
 * A retry record refused for good: the tier topic cannot take the event
 * (its max.message.bytes is lower than the input's), so it cannot wait
 * there and ends as it would without the tier. Its stand-ins (the failed
 * result, the retries_exhausted dead letter with the record's retry
 * headers, the reply) take its place: the standby callback first makes
 * the tracker await them instead of the record's one acknowledgement (no
 * report can come before), then they are produced here, and only then is
 * the callback told again, to end the key's hold: a later event of the key
 * produces its records after them. Not owned any more (or no stand-ins):
 * dropped, the next owner redoes the event. False when the record is left
 * to the caller's transient path.
 */
static bool retry_stand_down(hookd_publisher_t *pub, hookd_publish_job_t *job,
                             rd_kafka_resp_err_t err)
{
    hookd_log_fields_t f = HOOKD_LOG_FIELDS_INIT;
    hookd_publish_job_t *sb, *next;
    unsigned n = 0;
    char id[256] = "";
    /* from a delivery report (the publisher thread) or from produce (a
     * handler thread): only the latter may wait for room */
    bool on_publisher = pub->thread_started && pthread_equal(pthread_self(), pub->thread);

    /* the event id for the log lines: the stand-in result carries it */
    for (sb = job->standby; sb != NULL; sb = sb->standby, n++)
        for (size_t i = 0; i < sb->header_count && id[0] == '\0'; i++)
            if (sb->headers[i].value != NULL && strcmp(sb->headers[i].name, "ce_inputeventid") == 0)
                snprintf(id, sizeof(id), "%.*s", (int)sb->headers[i].len,
                         (const char *)sb->headers[i].value);
    if (n == 0 || pub->standby == NULL)
        return false;
    f.event_id = id[0] != '\0' ? id : NULL;
    f.topic = origin_topic(pub, &job->origin);
    f.partition = origin_partition(&job->origin);
    f.offset = job->origin.offset;
    if (!pub->standby(pub->opaque, &job->origin, n - 1, job->key, job->key_len, job->hold_token,
                      false)) {
        hookd_logf(HOOKD_LOG_INFO, &f,
                   "retry to %s refused for good (%s) after its partition was revoked; dropped",
                   job->topic, rd_kafka_err2name(err));
        pthread_mutex_lock(&pub->lock);
        failing_set(pub, job, false);
        job_unlink(pub, job);
        pthread_cond_broadcast(&pub->cond);
        pthread_mutex_unlock(&pub->lock);
        job_free(job);
        return true;
    }
    hookd_metrics_publish_fallback("retry", "retry_dead_lettered");
    hookd_logf(HOOKD_LOG_WARNING, &f,
               "retry to %s refused for good (%s): %s; the event ends without it "
               "(retries_exhausted: %u record(s) instead)",
               job->topic, rd_kafka_err2name(err), rd_kafka_err2str(err), n);
    pthread_mutex_lock(&pub->lock);
    pub->counts.fallbacks++;
    failing_set(pub, job, false);
    job_unlink(pub, job);
    pthread_mutex_unlock(&pub->lock);
    for (sb = job->standby, job->standby = NULL; sb != NULL; sb = next) {
        rd_kafka_resp_err_t e;
        next = sb->standby;
        sb->standby = NULL;
        job_precut(pub, sb); /* now, not at publish: most stand-ins never go out */
        pthread_mutex_lock(&pub->lock);
        job_link(pub, sb);
        pthread_mutex_unlock(&pub->lock);
        /* in flight: once produced, its report may free it. Refused at
         * once for its size, its smaller form goes here as well, before
         * the hold ends (job_produce_now). */
        if ((e = job_produce_now(pub, sb, !on_publisher)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            job_requeue(pub, sb, 0); /* rare: its order against the key's next is then open */
        else if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            job_failed(pub, sb, e);
    }
    pub->standby(pub->opaque, &job->origin, 0, job->key, job->key_len, job->hold_token, true);
    job_free(job);
    return true;
}

/*
 * A fallback form replaced a record refused for good (job_fallback):
 * counted and logged once. `kind`, `topic` and `before` are the refused
 * record's (job_fallback may have turned a result into a dead letter).
 */
static void fallback_taken(hookd_publisher_t *pub, const hookd_publish_job_t *job,
                           rd_kafka_resp_err_t err, const char *kind, const char *topic,
                           const char *form, size_t before)
{
    hookd_log_fields_t f = HOOKD_LOG_FIELDS_INIT;

    f.partition = origin_partition(&job->origin);
    f.offset = job->origin.offset;
    hookd_metrics_publish_fallback(kind, form);
    hookd_logf(HOOKD_LOG_WARNING, &f,
               "%s to %s refused for good (%s): %s; %s (%zu of %zu value bytes) to %s", kind, topic,
               rd_kafka_err2name(err), rd_kafka_err2str(err),
               strcmp(form, "result_compacted") == 0       ? "publishing it compacted"
               : strcmp(form, "result_dead_lettered") == 0 ? "dead-lettering it as publish_refused"
                                                           : "publishing it with its value cut",
               job->value_len, before, job->topic);
    pthread_mutex_lock(&pub->lock);
    pub->counts.fallbacks++;
    pthread_mutex_unlock(&pub->lock);
}

/*
 * Produce a job (linked, in flight) from the thread that publishes it. A
 * record the producer refuses at once for good (its size: nothing was
 * queued) is replaced by its next smaller form (job_fallback) and that is
 * produced here too, not left to the publisher thread's retry: the caller
 * still holds the record's key, so the record keeps its place before the
 * key's next event's records. A reply goes on to job_failed (given up,
 * not cut) except under exactly-once, where every kind falls back. With
 * `wait` (a handler thread; never the publisher thread, which makes the
 * room) a full queue is waited out unless shutting down. Returns the last
 * error, NO_ERROR once a form is queued.
 */
static rd_kafka_resp_err_t job_produce_now(hookd_publisher_t *pub, hookd_publish_job_t *job,
                                           bool wait)
{
    for (;;) {
        rd_kafka_resp_err_t err;
        const char *kind, *topic, *form;
        size_t before;

        /* librdkafka's queue full: wait for delivery reports to make room
         * (the handler thread is the natural place to apply this
         * backpressure). */
        while ((err = job_produce(pub, job)) == RD_KAFKA_RESP_ERR__QUEUE_FULL && wait &&
               !atomic_load(&pub->stopping) && (pub->txn || !atomic_load(&pub->no_block))) {
            struct timespec ts;
            hookd_deadline_after(&ts, 100);
            pthread_mutex_lock(&pub->lock);
            atomic_fetch_add(&pub->sleepers, 1);
            pthread_cond_timedwait(&pub->cond, &pub->lock, &ts);
            atomic_fetch_sub(&pub->sleepers, 1);
            pthread_mutex_unlock(&pub->lock);
        }
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR ||
            hookd_publisher_classify(err) != HOOKD_PRODUCE_ERR_PERMANENT ||
            (job->kind == HOOKD_RECORD_REPLY && !pub->txn))
            return err;
        kind = kind_name(job);
        topic = job->topic;
        before = job->value_len;
        if ((form = job_fallback(pub, job, rd_kafka_err2str(err))) == NULL)
            return err;
        fallback_taken(pub, job, err, kind, topic, form, before);
    }
}

static void job_failed(hookd_publisher_t *pub, hookd_publish_job_t *job, rd_kafka_resp_err_t err)
{
    /* Everything the log line needs is read now: once the job is waiting
     * and the lock released, the publisher thread may produce and free it. */
    hookd_log_fields_t f = HOOKD_LOG_FIELDS_INIT;
    const char *kind = kind_name(job), *topic = job->topic, *reason = rd_kafka_err2str(err);
    const char *form = NULL;
    size_t before = job->value_len;
    bool drop, permanent;

    if (pub->txn) {
        txn_record_failed(pub, job, err);
        return;
    }
    if (job->kind == HOOKD_RECORD_REPLY) {
        reply_given_up(pub, job, reason);
        return;
    }
    f.partition = origin_partition(&job->origin);
    f.offset = job->origin.offset;
    drop = pub->owned != NULL && !pub->owned(pub->opaque, job->origin.partition, job->origin.epoch);
    permanent = !drop && hookd_publisher_classify(err) == HOOKD_PRODUCE_ERR_PERMANENT;
    if (permanent && job->kind == HOOKD_RECORD_RETRY && retry_stand_down(pub, job, err))
        return;
    if (permanent && (form = job_fallback(pub, job, reason)) != NULL) {
        /* Not a failure to wait out: the smaller form goes at once. */
        fallback_taken(pub, job, err, kind, topic, form, before);
        pthread_mutex_lock(&pub->lock);
        failing_set(pub, job, false);
        job->state = JOB_WAITING;
        pub->waiting++;
        job->retry_at = 0;
        pthread_mutex_unlock(&pub->lock);
        return;
    }
    hookd_metrics_publish_error();
    pthread_mutex_lock(&pub->lock);
    pub->counts.failures++;
    if (drop) {
        failing_set(pub, job, false);
        job_unlink(pub, job);
    } else {
        job->state = JOB_WAITING;
        pub->waiting++;
        job->retry_at = hookd_now_ms() + (uint64_t)pub->cfg->publish_retry_backoff_ms;
        failing_set(pub, job, true);
    }
    pthread_mutex_unlock(&pub->lock);
    if (drop) {
        wake_sleepers(pub);
        job_free(job);
        hookd_logf(HOOKD_LOG_INFO, &f,
                   "%s to %s not delivered (%s); its input partition is no longer ours, "
                   "the new owner redoes it",
                   kind, topic, reason);
    } else {
        hookd_logf(HOOKD_LOG_WARNING, &f,
                   "%s to %s not delivered: %s; retrying in %d ms, offset held", kind, topic,
                   reason, pub->cfg->publish_retry_backoff_ms);
    }
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    hookd_publisher_t *pub = opaque;
    hookd_publish_job_t *job = rkm->_private;

    if (job == NULL)
        return;
    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* A failure reported by a replaced producer: the job is produced
         * again on the new one by the recreate path. */
        if (rk != pub->rk)
            return;
        job_failed(pub, job, rkm->err);
        return;
    }

    pthread_mutex_lock(&pub->lock);
    failing_set(pub, job, false);
    job_unlink(pub, job);
    if (job->kind == HOOKD_RECORD_RESULT)
        pub->counts.results++;
    else if (job->kind == HOOKD_RECORD_REPLY)
        pub->counts.replies++;
    else if (job->kind == HOOKD_RECORD_RETRY)
        pub->counts.retries++;
    else
        pub->counts.dead_letters++;
    pthread_mutex_unlock(&pub->lock);

    if (job->kind == HOOKD_RECORD_RESULT)
        /* the verdict as a constant: the metrics keep a per-thread hint of
         * the series by label pointer, and job->label differs per job */
        hookd_metrics_result_published(strcmp(job->label, "completed") == 0 ? "completed"
                                       : strcmp(job->label, "failed") == 0  ? "failed"
                                                                            : job->label);
    else if (job->kind == HOOKD_RECORD_REPLY)
        hookd_metrics_reply("sent");
    else if (job->kind == HOOKD_RECORD_RETRY)
        hookd_metrics_retry_published(job->label);
    else
        hookd_metrics_dead_letter(job->label);
    if (pub->ack != NULL)
        pub->ack(pub->opaque, &job->origin, job->kind);

    wake_sleepers(pub);
    job_free(job);
}

static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    hookd_publisher_t *pub = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        atomic_store(&pub->fatal, 1);
        if (pub->txn)
            atomic_store(&pub->txn_doomed, 1);
        return;
    }
    hookd_logf(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? HOOKD_LOG_WARNING : HOOKD_LOG_INFO,
               NULL, "producer: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* ---- transactions (exactly-once) ---------------------------------------- */

#define TXN_INIT_TIMEOUT_MS 30000

/*
 * Register the transactional.id with its coordinator (which fences any
 * older producer of the same id and aborts its open transaction) and open
 * the first transaction.
 */
static int txn_init(rd_kafka_t *rk, char *errstr, size_t errstr_size)
{
    rd_kafka_error_t *error = rd_kafka_init_transactions(rk, TXN_INIT_TIMEOUT_MS);
    if (error == NULL)
        error = rd_kafka_begin_transaction(rk);
    if (error == NULL)
        return 0;
    snprintf(errstr, errstr_size, "producer: transactions: %s", rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    return -1;
}

static rd_kafka_t *producer_new(hookd_publisher_t *pub, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    char why[512];

    conf =
        hookd_kafka_conf_new(pub->cfg, HOOKD_KAFKA_PRODUCER, pub->bootstraps, errstr, errstr_size);
    if (conf == NULL)
        return NULL;
    {
        /* What a record may weigh: the dead-letter cut is computed from it. */
        char v[32];
        size_t vs = sizeof(v);
        long mmb = 0;
        if (rd_kafka_conf_get(conf, "message.max.bytes", v, &vs) == RD_KAFKA_CONF_OK)
            mmb = strtol(v, NULL, 10);
        pub->max_msg_bytes = mmb > 0 ? (size_t)mmb : 1000000;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, producer_error_cb);
    rd_kafka_conf_set_opaque(conf, pub);
    if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why))) == NULL) {
        snprintf(errstr, errstr_size, "producer: %s", why);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    conf = NULL; /* now owned by rk */
    if (pub->txn && txn_init(rk, errstr, errstr_size) != 0) {
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

/*
 * A fatal idempotent-producer error: the producer cannot go on. Replace it;
 * whatever the old one acknowledged before dying counts, every other job is
 * produced again on the new one (duplicates are possible, losses are not).
 */
static void producer_recreate(hookd_publisher_t *pub)
{
    char why[512], errstr[512];
    rd_kafka_resp_err_t ferr;
    rd_kafka_t *old, *rk;
    hookd_publish_job_t *job;
    size_t again = 0;

    ferr = rd_kafka_fatal_error(pub->rk, why, sizeof(why));
    hookd_logf(HOOKD_LOG_ERROR, NULL, "producer: fatal error %s: %s; replacing the producer",
               rd_kafka_err2name(ferr), why);
    if ((rk = producer_new(pub, errstr, sizeof(errstr))) == NULL) {
        hookd_logf(HOOKD_LOG_ERROR, NULL, "producer: cannot replace: %s; will try again", errstr);
        return;
    }
    pthread_rwlock_wrlock(&pub->rk_lock);
    old = pub->rk;
    pub->rk = rk;
    pub->gen++;
    pthread_rwlock_unlock(&pub->rk_lock);
    atomic_store(&pub->fatal, 0);

    /* Serve the old producer's last delivery reports: successes are real. */
    rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(old, 2000);
    rd_kafka_destroy(old);

    pthread_mutex_lock(&pub->lock);
    for (job = pub->head; job != NULL; job = job->next) {
        if (job->state == JOB_IN_FLIGHT && job->gen < pub->gen) {
            job->state = JOB_WAITING;
            pub->waiting++;
            job->retry_at = 0;
            again++;
        }
    }
    pub->counts.recreated++;
    pthread_mutex_unlock(&pub->lock);
    hookd_logf(HOOKD_LOG_WARNING, NULL, "producer: replaced; %zu record(s) produced again", again);
}

/*
 * Exactly-once: the producer is fatal (fenced by a newer instance of its
 * transactional.id, or its epoch bumped by the coordinator after a
 * transaction timeout). Its transaction is lost (aborted by the
 * coordinator): replace it under the same id, and drop every job, none of
 * which can become visible now. Gate closed (nothing is being produced).
 */
static int txn_replace(hookd_publisher_t *pub)
{
    char why[512], errstr[512];
    rd_kafka_resp_err_t ferr;
    rd_kafka_t *old, *rk;
    hookd_publish_job_t *job, *next;
    size_t dropped = 0;

    ferr = rd_kafka_fatal_error(pub->rk, why, sizeof(why));
    hookd_logf(HOOKD_LOG_ERROR, NULL,
               "producer: fatal error %s: %s; replacing the transactional producer",
               rd_kafka_err2name(ferr), ferr ? why : "(none)");
    if ((rk = producer_new(pub, errstr, sizeof(errstr))) == NULL) {
        hookd_logf(HOOKD_LOG_ERROR, NULL, "producer: cannot replace: %s; will try again", errstr);
        return -1;
    }
    atomic_store(&pub->replacing, 1);
    pthread_rwlock_wrlock(&pub->rk_lock);
    old = pub->rk;
    pub->rk = rk;
    pub->gen++;
    pthread_rwlock_unlock(&pub->rk_lock);
    atomic_store(&pub->replacing, 0);
    atomic_store(&pub->fatal, 0);
    rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(old); /* no delivery report of it refers to a job any more */
    pthread_mutex_lock(&pub->lock);
    for (job = pub->head; job != NULL; job = next) {
        next = job->next;
        failing_set(pub, job, false);
        job_unlink(pub, job);
        job_free(job);
        dropped++;
    }
    pub->waiting = 0;
    pub->counts.recreated++;
    pthread_cond_broadcast(&pub->cond);
    pthread_mutex_unlock(&pub->lock);
    hookd_logf(HOOKD_LOG_WARNING, NULL,
               "producer: replaced; %zu record(s) of the lost transaction dropped", dropped);
    return 0;
}

void hookd_publisher_outcome_begin(hookd_publisher_t *pub)
{
    if (!pub->txn)
        return;
    pthread_mutex_lock(&pub->txn_lock);
    while (pub->txn_closed)
        pthread_cond_wait(&pub->txn_cond, &pub->txn_lock);
    pub->txn_active++;
    pthread_mutex_unlock(&pub->txn_lock);
}

void hookd_publisher_outcome_end(hookd_publisher_t *pub, bool published)
{
    if (!pub->txn)
        return;
    pthread_mutex_lock(&pub->txn_lock);
    pub->txn_active--;
    if (published)
        pub->txn_outcomes++;
    if (pub->txn_closed && pub->txn_active == 0)
        pthread_cond_broadcast(&pub->txn_cond);
    pthread_mutex_unlock(&pub->txn_lock);
}

bool hookd_publisher_transactional(const hookd_publisher_t *pub)
{
    return pub->txn;
}

size_t hookd_publisher_txn_outcomes(hookd_publisher_t *pub)
{
    size_t n;
    pthread_mutex_lock(&pub->txn_lock);
    n = pub->txn_outcomes;
    pthread_mutex_unlock(&pub->txn_lock);
    return n;
}

void hookd_publisher_txn_doom(hookd_publisher_t *pub)
{
    if (pub->txn && atomic_exchange(&pub->txn_doomed, 1) == 0)
        hookd_logf(HOOKD_LOG_WARNING, NULL,
                   "producer: transaction doomed: an event of it got no outcome; it is "
                   "aborted and its events redone");
}

bool hookd_publisher_txn_doomed(hookd_publisher_t *pub)
{
    return atomic_load(&pub->txn_doomed) != 0 || atomic_load(&pub->fatal) != 0;
}

bool hookd_publisher_txn_hold(hookd_publisher_t *pub, int timeout_ms)
{
    uint64_t deadline = hookd_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    bool idle = false;
    struct timespec ts;

    pthread_mutex_lock(&pub->txn_lock);
    pub->txn_closed = true;
    while (pub->txn_active > 0) {
        uint64_t now = hookd_now_ms();
        if (now >= deadline)
            break;
        hookd_deadline_after(&ts, (int)(deadline - now));
        pthread_cond_timedwait(&pub->txn_cond, &pub->txn_lock, &ts);
    }
    idle = pub->txn_active == 0;
    pthread_mutex_unlock(&pub->txn_lock);
    /* Every record acknowledged (a failed one is dropped and dooms the
     * transaction): then the offset tracker's watermarks cover exactly
     * the outcomes this transaction holds. */
    while (idle && !hookd_publisher_wait(pub, -1, 0, 100)) {
        hookd_status_heartbeat();
        if (hookd_now_ms() >= deadline)
            idle = false;
    }
    return idle;
}

static int txn_left(uint64_t deadline)
{
    uint64_t now = hookd_now_ms();
    return now >= deadline ? 1 : (int)(deadline - now);
}

typedef enum txn_op { TXN_SEND_OFFSETS, TXN_COMMIT, TXN_ABORT } txn_op_t;

/*
 * One transactional call, repeated while librdkafka says the error is
 * retriable (a timeout: the operation goes on in the background and the
 * call resumes it) and time is left. Each call may block for the remaining
 * transaction time (-1, librdkafka's advice: other timeouts risk its state
 * machine). NULL on success.
 */
static rd_kafka_error_t *txn_call(hookd_publisher_t *pub, txn_op_t op,
                                  const rd_kafka_topic_partition_list_t *offsets,
                                  const rd_kafka_consumer_group_metadata_t *cgmd, uint64_t deadline)
{
    rd_kafka_error_t *error;
    for (;;) {
        switch (op) {
        case TXN_SEND_OFFSETS:
            error = rd_kafka_send_offsets_to_transaction(pub->rk, offsets, cgmd, -1);
            break;
        case TXN_COMMIT:
            error = rd_kafka_commit_transaction(pub->rk, -1);
            break;
        default:
            error = rd_kafka_abort_transaction(pub->rk, -1);
            break;
        }
        /* A commit still retriable at the deadline is not given up (but at
         * shutdown): its outcome is unknown, it may complete in the
         * background, and an abort on top of it would make the worker redo
         * events whose results are committed. librdkafka ends it one way
         * or the other by transaction.timeout.ms at the latest. */
        if (error == NULL || !rd_kafka_error_is_retriable(error) ||
            (hookd_now_ms() >= deadline && (op != TXN_COMMIT || atomic_load(&pub->no_block))))
            return error;
        hookd_logf(HOOKD_LOG_DEBUG, NULL, "producer: %s (retrying)", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        hookd_status_heartbeat();
    }
}

hookd_txn_result_t hookd_publisher_txn_end(hookd_publisher_t *pub, bool commit,
                                           const struct rd_kafka_topic_partition_list_s *offsets,
                                           const struct rd_kafka_consumer_group_metadata_s *cgmd,
                                           int timeout_ms)
{
    uint64_t deadline = hookd_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
    hookd_txn_result_t res = HOOKD_TXN_ABORTED;
    rd_kafka_error_t *error = NULL;
    bool fatal = atomic_load(&pub->fatal) != 0;

    if (commit && !fatal && !atomic_load(&pub->txn_doomed)) {
        if (offsets != NULL && offsets->cnt > 0)
            error = txn_call(pub, TXN_SEND_OFFSETS, offsets, cgmd, deadline);
        if (error == NULL)
            error = txn_call(pub, TXN_COMMIT, NULL, NULL, deadline);
        if (error == NULL) {
            res = HOOKD_TXN_COMMITTED;
            goto next;
        }
        fatal = rd_kafka_error_is_fatal(error) || atomic_load(&pub->fatal) != 0;
        hookd_logf(HOOKD_LOG_WARNING, NULL,
                   "producer: transaction not committed: %s; aborting it, its events are redone",
                   rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    if (!fatal) {
        /* librdkafka purges what it still holds: wait for those reports
         * (each drops its job) before the next transaction begins. The
         * abort gets its own time: a commit may have used all of it. */
        deadline = hookd_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
        error = txn_call(pub, TXN_ABORT, NULL, NULL, deadline);
        if (error != NULL) {
            hookd_logf(HOOKD_LOG_ERROR, NULL, "producer: abort: %s", rd_kafka_error_string(error));
            fatal = true; /* a producer that cannot abort cannot go on */
            rd_kafka_error_destroy(error);
        } else {
            hookd_publisher_wait(pub, -1, 0, txn_left(deadline));
        }
    }
    if (fatal) {
        res = HOOKD_TXN_REPLACED;
        if (atomic_load(&pub->fatal) == 0)
            atomic_store(&pub->fatal, 1);
        if (txn_replace(pub) != 0)
            goto reopen; /* still fatal: the next end tries again */
    }
next:
    pthread_mutex_lock(&pub->lock);
    if (res == HOOKD_TXN_COMMITTED)
        pub->txn_stats.committed++;
    else
        pub->txn_stats.aborted++;
    pthread_mutex_unlock(&pub->lock);
    if (fatal) {
        /* replaced: the new producer's first transaction is open already */
        atomic_store(&pub->txn_doomed, 0);
    } else {
        atomic_store(&pub->txn_doomed, 0);
        if ((error = rd_kafka_begin_transaction(pub->rk)) != NULL) {
            hookd_logf(HOOKD_LOG_ERROR, NULL, "producer: begin transaction: %s",
                       rd_kafka_error_string(error));
            atomic_store(&pub->txn_doomed, 1);
            if (rd_kafka_error_is_fatal(error))
                atomic_store(&pub->fatal, 1);
            rd_kafka_error_destroy(error);
        }
    }
reopen:
    /* The gate stays closed: after an abort the caller must rewind before
     * any outcome computed under the old positions can be published (it
     * would join the next transaction). hookd_publisher_txn_release(). */
    pthread_mutex_lock(&pub->txn_lock);
    pub->txn_outcomes = 0;
    pthread_mutex_unlock(&pub->txn_lock);
    return res;
}

void hookd_publisher_txn_release(hookd_publisher_t *pub)
{
    pthread_mutex_lock(&pub->txn_lock);
    pub->txn_closed = false;
    pthread_cond_broadcast(&pub->txn_cond);
    pthread_mutex_unlock(&pub->txn_lock);
}

void hookd_publisher_txn_stats(hookd_publisher_t *pub, hookd_publisher_txn_stats_t *out)
{
    pthread_mutex_lock(&pub->lock);
    *out = pub->txn_stats;
    pthread_mutex_unlock(&pub->lock);
}

/* Produce the waiting jobs whose time has come. */
static void retry_due(hookd_publisher_t *pub)
{
    for (;;) {
        hookd_publish_job_t *job;
        uint64_t now = hookd_now_ms();
        rd_kafka_resp_err_t err;

        pthread_mutex_lock(&pub->lock);
        job = NULL;
        if (pub->waiting > 0) /* the list is long only when all is well */
            for (job = pub->head; job != NULL; job = job->next)
                if (job->state == JOB_WAITING && job->retry_at <= now)
                    break;
        if (job != NULL) {
            job->state = JOB_IN_FLIGHT; /* forget() leaves it alone now */
            pub->waiting--;
        }
        pthread_mutex_unlock(&pub->lock);
        if (job == NULL)
            return;
        if ((err = job_produce(pub, job)) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            job_requeue(pub, job, 10); /* no room: not a failure */
            return;                    /* let the queue drain first */
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            job_failed(pub, job, err);
    }
}

static void *publisher_thread_main(void *arg)
{
    hookd_publisher_t *pub = arg;
    while (!atomic_load(&pub->stopping)) {
        if (pub->txn) {
            /* Exactly-once: the consumer thread may replace the producer
             * (txn_replace); it must not destroy the one polled here, and
             * a reader-preferring lock must let it in. */
            if (atomic_load(&pub->replacing)) {
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
                continue;
            }
            pthread_rwlock_rdlock(&pub->rk_lock);
            rd_kafka_poll(pub->rk, 50); /* delivery reports: dr_msg_cb */
            pthread_rwlock_unlock(&pub->rk_lock);
        } else {
            rd_kafka_poll(pub->rk, 50); /* delivery reports: dr_msg_cb */
        }
        /* Exactly-once: the runtime replaces a fatal producer itself,
         * between two transactions (hookd_publisher_txn_end). */
        if (atomic_load(&pub->fatal) && !pub->txn)
            producer_recreate(pub);
        retry_due(pub);
    }
    return NULL;
}

hookd_publisher_t *hookd_publisher_new(const hookd_config_t *cfg, const char *bootstraps,
                                       hookd_publisher_ack_cb *ack, hookd_publisher_owned_cb *owned,
                                       hookd_publisher_standby_cb *standby, void *opaque,
                                       char *errstr, size_t errstr_size)
{
    hookd_publisher_t *pub = calloc(1, sizeof(*pub));
    pthread_condattr_t ca;
    int err;

    if (pub == NULL) {
        snprintf(errstr, errstr_size, "publisher: out of memory");
        return NULL;
    }
    pub->cfg = cfg;
    pub->txn = cfg->delivery == HOOKD_DELIVERY_EXACTLY_ONCE;
    pthread_mutex_init(&pub->txn_lock, NULL);
    pthread_cond_init(&pub->txn_cond, NULL);
    pub->ack = ack;
    pub->owned = owned;
    pub->standby = standby;
    pub->opaque = opaque;
    pthread_rwlock_init(&pub->rk_lock, NULL);
    pthread_mutex_init(&pub->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pub->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (bootstraps != NULL && (pub->bootstraps = strdup(bootstraps)) == NULL) {
        snprintf(errstr, errstr_size, "publisher: out of memory");
        goto error;
    }
    if ((pub->rk = producer_new(pub, errstr, errstr_size)) == NULL)
        goto error;
    if ((err = pthread_create(&pub->thread, NULL, publisher_thread_main, pub)) != 0) {
        snprintf(errstr, errstr_size, "publisher: cannot start thread: %s", strerror(err));
        goto error;
    }
    pub->thread_started = true;
    (void)pthread_setname_np(pub->thread, "hookd:publish"); /* see pool.c */
    return pub;

error:
    hookd_publisher_destroy(pub);
    return NULL;
}

/* How many header name lengths job_new measures once instead of twice. */
#define JOB_NAME_LENS 24

/* A job of its own copies, in no list yet; NULL on ENOMEM. copy_topic: the
 * topic is the caller's (a reply's, read from its request), copy it. */
static hookd_publish_job_t *job_new(hookd_record_kind_t kind, const char *topic, bool copy_topic,
                                    int32_t partition, const void *key, size_t key_len,
                                    const void *value, size_t value_len,
                                    const hookd_headers_t *headers,
                                    const hookd_record_origin_t *origin, const char *label)
{
    size_t nh = headers ? hookd_headers_count(headers) : 0, size, i;
    size_t tl = copy_topic ? strlen(topic) + 1 : 0;
    size_t name_len[JOB_NAME_LENS]; /* the first headers' name lengths, + 1 */
    hookd_publish_job_t *job;
    char *p;

    /*
     * Two allocations: the job with its headers, their bytes and the key,
     * and the value on its own. A single one would usually pass 1 KiB, and
     * such requests make glibc consolidate its fast bins first (measured:
     * 6.5% of the worker's CPU on the benchmark, under 1% with two
     * allocations small enough for its per-thread caches).
     */
    size = sizeof(*job) + nh * sizeof(hookd_header_t) + (key ? key_len : 0) + tl;
    for (i = 0; i < nh; i++) {
        const hookd_header_t *h = hookd_headers_get(headers, i);
        size_t nl = strlen(h->name) + 1;
        if (i < JOB_NAME_LENS)
            name_len[i] = nl;
        size += nl + (h->value ? h->len : 0);
    }
    /* Only the job itself needs zeroing: what follows it is all copied over
     * (calloc cleared the key and value bytes for nothing). */
    if ((job = malloc(size)) == NULL)
        return NULL;
    memset(job, 0, sizeof(*job));
    if (value != NULL && (job->value = malloc(value_len ? value_len : 1)) == NULL) {
        free(job);
        return NULL;
    }
    job->kind = kind;
    job->topic = topic;
    job->partition = partition;
    job->origin = *origin;
    if (label != NULL) {
        size_t ll = strnlen(label, sizeof(job->label) - 1);
        memcpy(job->label, label, ll); /* the rest of label is zero already */
    }
    job->headers = (hookd_header_t *)(job + 1);
    p = (char *)(job->headers + nh);
    for (i = 0; i < nh; i++) {
        const hookd_header_t *h = hookd_headers_get(headers, i);
        size_t nl = i < JOB_NAME_LENS ? name_len[i] : strlen(h->name) + 1;
        memcpy(p, h->name, nl);
        job->headers[i].name = p;
        p += nl;
        job->headers[i].len = h->value ? h->len : 0;
        job->headers[i].value = h->value ? p : NULL;
        if (h->value && h->len)
            memcpy(p, h->value, h->len);
        p += job->headers[i].len;
    }
    job->header_count = nh;
    if (key != NULL) {
        memcpy(p, key, key_len);
        job->key = p;
        job->key_len = key_len;
        p += key_len;
    }
    if (copy_topic) {
        memcpy(p, topic, tl);
        job->topic = p;
        p += tl;
    }
    if (value != NULL) {
        memcpy(job->value, value, value_len);
        job->value_len = value_len;
    }
    job->state = JOB_IN_FLIGHT;
    return job;
}

/*
 * A dead letter known to be refused (or over the configured cut) before
 * its first produce is cut now instead of waiting for the refusal.
 */
static void job_precut(hookd_publisher_t *pub, hookd_publish_job_t *job)
{
    size_t before = job->value_len;
    hookd_log_fields_t f = HOOKD_LOG_FIELDS_INIT;

    if (job->kind != HOOKD_RECORD_DEAD_LETTER ||
        (job->value_len <= dead_letter_cap(pub) &&
         job->value_len + job_wire_rest(job, 0) <= pub->max_msg_bytes))
        return;
    f.partition = origin_partition(&job->origin);
    f.offset = job->origin.offset;
    if (dead_letter_cut(pub, job, dead_letter_cap(pub), LEVEL_REDUCED) == 0) {
        hookd_metrics_publish_fallback(kind_name(job), "value_truncated");
        hookd_logf(HOOKD_LOG_WARNING, &f,
                   "dead letter to %s: value of %zu bytes cut to %zu (producer limit %zu "
                   "bytes, dead_letter_max_value_bytes %zu)",
                   job->topic, before, job->value_len, pub->max_msg_bytes,
                   pub->cfg->dead_letter_max_value_bytes);
        pthread_mutex_lock(&pub->lock);
        pub->counts.fallbacks++;
        pthread_mutex_unlock(&pub->lock);
    }
}

/* Put a new job in the list and produce it (taken, whatever happens). */
static void job_submit(hookd_publisher_t *pub, hookd_publish_job_t *job)
{
    rd_kafka_resp_err_t err;

    job_precut(pub, job);
    pthread_mutex_lock(&pub->lock);
    job_link(pub, job);
    pthread_mutex_unlock(&pub->lock);

    err = job_produce_now(pub, job, true);
    if (pub->txn) {
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            txn_record_failed(pub, job, err);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        /* Shutting down: not a failure, just no room yet; the publisher
         * thread produces it as soon as there is. */
        job_requeue(pub, job, 0);
    else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        job_failed(pub, job, err); /* retried (or given up) by the publisher thread */
    }
}

static int publish_job(hookd_publisher_t *pub, hookd_record_kind_t kind, const char *topic,
                       bool copy_topic, int32_t partition, const void *key, size_t key_len,
                       const void *value, size_t value_len, const hookd_headers_t *headers,
                       const hookd_record_origin_t *origin, const char *label)
{
    hookd_publish_job_t *job = job_new(kind, topic, copy_topic, partition, key, key_len, value,
                                       value_len, headers, origin, label);
    if (job == NULL)
        return -1;
    job_submit(pub, job);
    return 0;
}

int hookd_publisher_publish(hookd_publisher_t *pub, hookd_record_kind_t kind, const char *topic,
                            const void *key, size_t key_len, const void *value, size_t value_len,
                            const hookd_headers_t *headers, const hookd_record_origin_t *origin,
                            const char *label)
{
    return publish_job(pub, kind, topic, false, RD_KAFKA_PARTITION_UA, key, key_len, value,
                       value_len, headers, origin, label);
}

int hookd_publisher_publish_retry(hookd_publisher_t *pub, const char *topic, int32_t partition,
                                  const void *key, size_t key_len, const void *value,
                                  size_t value_len, const hookd_headers_t *headers,
                                  const hookd_record_origin_t *origin, const char *label,
                                  const hookd_publisher_record_t *standby, size_t nstandby,
                                  int64_t hold_token)
{
    hookd_publish_job_t *job, **tail;
    size_t i;

    if ((job = job_new(HOOKD_RECORD_RETRY, topic, false,
                       partition < 0 ? RD_KAFKA_PARTITION_UA : partition, key, key_len, value,
                       value_len, headers, origin, label)) == NULL)
        return -1;
    job->hold_token = hold_token;
    tail = &job->standby;
    for (i = 0; i < nstandby; i++) {
        const hookd_publisher_record_t *r = &standby[i];
        /* every topic copied: a reply's comes from its request */
        if ((*tail = job_new(r->kind, r->topic, true,
                             r->partition < 0 ? RD_KAFKA_PARTITION_UA : r->partition, r->key,
                             r->key_len, r->value, r->value_len, r->headers, origin,
                             r->label != NULL                ? r->label
                             : r->kind == HOOKD_RECORD_REPLY ? "reply"
                                                             : NULL)) == NULL) {
            job_free(job);
            return -1;
        }
        tail = &(*tail)->standby;
    }
    job_submit(pub, job);
    return 0;
}

int hookd_publisher_reply(hookd_publisher_t *pub, const char *topic, int32_t partition,
                          const void *key, size_t key_len, const void *value, size_t value_len,
                          const hookd_headers_t *headers, const hookd_record_origin_t *origin)
{
    return publish_job(pub, HOOKD_RECORD_REPLY, topic, true,
                       partition < 0 ? RD_KAFKA_PARTITION_UA : partition, key, key_len, value,
                       value_len, headers, origin, "reply");
}

void hookd_publisher_shutdown_begin(hookd_publisher_t *pub)
{
    atomic_store(&pub->no_block, 1);
    wake_sleepers(pub);
}

size_t hookd_publisher_outstanding(hookd_publisher_t *pub, int32_t partition, uint64_t epoch)
{
    hookd_publish_job_t *job;
    size_t n = 0;
    pthread_mutex_lock(&pub->lock);
    if (partition < 0)
        n = pub->counts.outstanding;
    else
        for (job = pub->head; job != NULL; job = job->next)
            if (job->origin.partition == partition && job->origin.epoch == epoch)
                n++;
    pthread_mutex_unlock(&pub->lock);
    return n;
}

bool hookd_publisher_wait(hookd_publisher_t *pub, int32_t partition, uint64_t epoch, int timeout_ms)
{
    struct timespec ts;
    bool none;
    hookd_deadline_after(&ts, timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock(&pub->lock);
    atomic_fetch_add(&pub->sleepers, 1);
    for (;;) {
        hookd_publish_job_t *job;
        none = true;
        if (partition < 0)
            none = pub->counts.outstanding == 0;
        else
            for (job = pub->head; job != NULL && none; job = job->next)
                if (job->origin.partition == partition && job->origin.epoch == epoch)
                    none = false;
        if (none || pthread_cond_timedwait(&pub->cond, &pub->lock, &ts) == ETIMEDOUT)
            break;
    }
    atomic_fetch_sub(&pub->sleepers, 1);
    pthread_mutex_unlock(&pub->lock);
    return none;
}

bool hookd_publisher_blocked(hookd_publisher_t *pub, int32_t partition)
{
    bool b;
    pthread_mutex_lock(&pub->lock);
    b = partition >= 0 && (size_t)partition < pub->nfailing && pub->failing[partition] > 0;
    pthread_mutex_unlock(&pub->lock);
    return b;
}

void hookd_publisher_forget(hookd_publisher_t *pub, int32_t partition, uint64_t epoch)
{
    hookd_publish_job_t *job, *next, *dropped = NULL;
    pthread_mutex_lock(&pub->lock);
    for (job = pub->head; job != NULL; job = next) {
        next = job->next;
        if (job->state == JOB_WAITING && job->origin.partition == partition &&
            job->origin.epoch == epoch) {
            failing_set(pub, job, false);
            job_unlink(pub, job);
            pub->waiting--;
            job->next = dropped;
            dropped = job;
        }
    }
    pthread_cond_broadcast(&pub->cond);
    pthread_mutex_unlock(&pub->lock);
    while (dropped != NULL) {
        next = dropped->next;
        job_free(dropped);
        dropped = next;
    }
}

void hookd_publisher_counts(hookd_publisher_t *pub, hookd_publisher_counts_t *out)
{
    pthread_mutex_lock(&pub->lock);
    *out = pub->counts;
    pthread_mutex_unlock(&pub->lock);
}

void hookd_publisher_destroy(hookd_publisher_t *pub)
{
    hookd_publish_job_t *job, *next;
    if (pub == NULL)
        return;
    atomic_store(&pub->stopping, 1);
    if (pub->thread_started)
        pthread_join(pub->thread, NULL);
    if (pub->rk != NULL) {
        /* Whatever is still unacknowledged was never committed: drop it. */
        pub->ack = NULL;
        rd_kafka_purge(pub->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        pub->owned = NULL;
        rd_kafka_destroy(pub->rk);
    }
    for (job = pub->head; job != NULL; job = next) {
        next = job->next;
        job_free(job);
    }
    if (pub->failing_total > 0)
        hookd_status_set(HOOKD_STATUS_PUBLISH_BLOCKED, false);
    free(pub->failing);
    free(pub->bootstraps);
    pthread_cond_destroy(&pub->cond);
    pthread_mutex_destroy(&pub->lock);
    pthread_rwlock_destroy(&pub->rk_lock);
    pthread_cond_destroy(&pub->txn_cond);
    pthread_mutex_destroy(&pub->txn_lock);
    free(pub);
}
