/* SPDX-License-Identifier: MIT */
/*
 * librdkafka configuration of the worker's clients (see consumer.h).
 *
 * The defaults are declared as tables, one per role; docs/runtime.md says
 * why each value was chosen. The operator's `rdkafka.*` properties are
 * applied after them and win.
 */
#include "consumer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef struct hookd_kafka_default {
    const char *key;
    const char *value;
} hookd_kafka_default_t;

/*
 * Consumer defaults.
 * - Offsets are stored by the worker only once an outcome is durable
 *   (enable.auto.offset.store=false), and committed by the runtime itself:
 *   asynchronously as soon as they moved, at most every commit_interval_ms
 *   (runtime.c, commit_if_due, says why not with librdkafka's auto-commit
 *   timer), and synchronously on revoke and shutdown.
 * - cooperative-sticky: a rebalance only moves the partitions that change
 *   owner, the others keep being processed.
 * - earliest: a new group must not skip the enrollment events already
 *   waiting.
 * - The fetch queue sizes: librdkafka 2.0.2 stops fetching a partition for
 *   a hard-coded second when its pre-fetch queue is above
 *   queued.min.messages or queued.max.messages.kbytes. The worker drains
 *   that queue in batches into its own per-partition queues (bounded by
 *   partition_queue_max, with pause/resume), so librdkafka's queue only
 *   ever holds about one fetch response per partition: the thresholds are
 *   kept well above one response and the total bounded for memory.
 * - Fetch responses of at most 256 KiB per partition and 4 MiB in all
 *   bound librdkafka's own buffers (the runtime copies each message out of
 *   its fetch buffer before queueing it, so queued messages do not keep
 *   responses alive); with batch consume they cost no throughput.
 */
static const hookd_kafka_default_t consumer_defaults[] = {
    {"client.id", "acme-hookd"},
    {"partition.assignment.strategy", "cooperative-sticky"},
    {"enable.auto.offset.store", "false"},
    {"enable.auto.commit", "false"},
    {"auto.offset.reset", "earliest"},
    {"enable.partition.eof", "false"},
    {"queued.min.messages", "100000"},
    {"queued.max.messages.kbytes", "8192"},
    {"max.partition.fetch.bytes", "262144"},
    {"fetch.max.bytes", "4194304"},
    {"fetch.wait.max.ms", "100"},
    {"statistics.interval.ms", "10000"},
    {"isolation.level", "read_committed"},
    {NULL, NULL},
};

/*
 * Producer defaults.
 * - Idempotent: retries inside librdkafka cannot duplicate or reorder.
 * - message.timeout.ms bounds how long a result may stay unacknowledged
 *   before the runtime sees a failed delivery, re-produces it and pauses the
 *   partition (readiness goes false): 30 s instead of librdkafka's 5 min.
 * - murmur2_random: keyed results land where a Java producer would put them.
 * - At most 5000 records waiting for acknowledgement: beyond that a
 *   handler thread waits for room (backpressure up to the consumer) instead
 *   of the producer queue growing with the backlog. Each record costs about
 *   2 KiB (the job's copy and librdkafka's message and headers); 5000 is
 *   still 50 ms of results at 100,000 events/s, far more than a broker
 *   needs to acknowledge them, and keeps 10 MB off the peak RSS of a
 *   200,000-event backlog.
 */
static const hookd_kafka_default_t producer_defaults[] = {
    {"client.id", "acme-hookd"},
    {"enable.idempotence", "true"},
    {"message.timeout.ms", "30000"},
    {"linger.ms", "5"},
    {"partitioner", "murmur2_random"},
    {"queue.buffering.max.messages", "5000"},
    {NULL, NULL},
};

/*
 * With [kafka] delivery = exactly_once (runtime.c, "exactly-once"), the
 * producer is transactional. transaction.timeout.ms is Kafka Streams'
 * exactly-once default rather than librdkafka's 60 s: a worker killed with
 * a transaction open holds back read_committed readers of the result
 * topics (and the committed offsets of its partitions) until the
 * coordinator aborts it, so the timeout is how long a crash stalls them.
 * It stays far above transaction_interval_ms (default 100 ms).
 * message.timeout.ms is brought down to it (force_exactly_once): librdkafka
 * refuses a record timeout longer than its transaction's.
 */
static const hookd_kafka_default_t eos_defaults_producer[] = {
    {"transaction.timeout.ms", "10000"},
    {NULL, NULL},
};

/*
 * With replies allowed ([kafka] reply_topics), a requester (an ACME server
 * thread) waits for each verdict, so latency matters more than batching:
 * a fetch that waits up to 100 ms for data, a 5 ms linger and Nagle's
 * delay add up to about 100 ms per verdict. These replace the defaults
 * above, and are themselves replaced by any rdkafka.* setting. Measured on
 * the real broker (tests/bench/a2c_roundtrip.sh): p99 of a verdict 6-9 ms
 * with one requester, 26-37 ms with eight, against ~100 ms without.
 */
static const hookd_kafka_default_t reply_defaults_both[] = {
    {"socket.nagle.disable", "true"},
    {NULL, NULL},
};
static const hookd_kafka_default_t reply_defaults_consumer[] = {
    {"fetch.wait.max.ms", "5"},
    {NULL, NULL},
};
static const hookd_kafka_default_t reply_defaults_producer[] = {
    {"linger.ms", "0"},
    {NULL, NULL},
};

int hookd_kafka_conf_set(rd_kafka_conf_t *conf, const char *label, const char *key,
                         const char *value, char *errstr, size_t errstr_size)
{
    char why[512];
    rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, key, value, why, sizeof(why));
    if (res == RD_KAFKA_CONF_OK)
        return 0;
    if (hookd_config_is_secret_key(key))
        /* librdkafka's message may quote the value: say less. */
        snprintf(errstr, errstr_size, "%s: %s", label,
                 res == RD_KAFKA_CONF_UNKNOWN ? "unknown librdkafka property"
                                              : "invalid value (not shown: secret)");
    else
        snprintf(errstr, errstr_size, "%s: %s", label, why);
    return -1;
}

/* The property name of a pass-through key, with any prefix the list kept. */
static const char *strip_prefix(const char *key)
{
    static const char *const prefixes[] = {"consumer.rdkafka.", "producer.rdkafka.", "rdkafka.",
                                           NULL};
    size_t i;
    for (i = 0; prefixes[i] != NULL; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(key, prefixes[i], n) == 0)
            return key + n;
    }
    return key;
}

static int apply_list(rd_kafka_conf_t *conf, const hookd_kv_list_t *list, const char *prefix,
                      char *errstr, size_t errstr_size)
{
    size_t i;
    for (i = 0; i < list->count; i++) {
        const hookd_kv_t *kv = &list->items[i];
        const char *prop = strip_prefix(kv->key);
        char label[300];
        if (kv->line > 0)
            snprintf(label, sizeof(label), "line %d: %s%s", kv->line, prefix, prop);
        else
            snprintf(label, sizeof(label), "%s%s", prefix, prop);
        if (hookd_kafka_conf_set(conf, label, prop, kv->value, errstr, errstr_size) != 0)
            return -1;
    }
    return 0;
}

/* librdkafka's log lines, through the worker's log (any thread). */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    hookd_log_level_t l;
    if (level <= 3)
        l = HOOKD_LOG_ERROR;
    else if (level == 4)
        l = HOOKD_LOG_WARNING;
    else if (level <= 6)
        l = HOOKD_LOG_INFO;
    else
        l = HOOKD_LOG_DEBUG;
    hookd_logf(l, NULL, "librdkafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

int hookd_kafka_transactional_id(const hookd_config_t *cfg, char *buf, size_t size)
{
    int n;
    if (cfg->transactional_id != NULL && cfg->transactional_id[0] != '\0')
        n = snprintf(buf, size, "%s", cfg->transactional_id);
    else
        n = snprintf(buf, size, "%s.%s", cfg->group_id ? cfg->group_id : "acme-hookd",
                     cfg->worker_id ? cfg->worker_id : "worker");
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/*
 * What exactly-once rests on, set after the operator's properties: input
 * read committed only (an aborted upstream transaction is not an event,
 * and the committed offsets of a partition are read stable), and a
 * transactional producer under the worker's transactional.id.
 */
static int force_exactly_once(const hookd_config_t *cfg, hookd_kafka_role_t role,
                              rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
    char tid[512];
    if (role == HOOKD_KAFKA_CONSUMER)
        return hookd_kafka_conf_set(conf, "isolation.level", "isolation.level", "read_committed",
                                    errstr, errstr_size);
    if (hookd_kafka_transactional_id(cfg, tid, sizeof(tid)) != 0) {
        snprintf(errstr, errstr_size, "transactional_id: too long");
        return -1;
    }
    {
        /* librdkafka refuses a message timeout above the transaction
         * timeout: a record cannot outlive its transaction. Clamp it. */
        char mt[32], tt[32];
        size_t ms = sizeof(mt), ts = sizeof(tt);
        if (rd_kafka_conf_get(conf, "message.timeout.ms", mt, &ms) == RD_KAFKA_CONF_OK &&
            rd_kafka_conf_get(conf, "transaction.timeout.ms", tt, &ts) == RD_KAFKA_CONF_OK &&
            strtol(mt, NULL, 10) > strtol(tt, NULL, 10) &&
            hookd_kafka_conf_set(conf, "message.timeout.ms", "message.timeout.ms", tt, errstr,
                                 errstr_size) != 0)
            return -1;
    }
    return hookd_kafka_conf_set(conf, "transactional_id", "transactional.id", tid, errstr,
                                errstr_size);
}

rd_kafka_conf_t *hookd_kafka_conf_new(const hookd_config_t *cfg, hookd_kafka_role_t role,
                                      const char *bootstraps, char *errstr, size_t errstr_size)
{
    const hookd_kafka_default_t *d =
        role == HOOKD_KAFKA_CONSUMER ? consumer_defaults : producer_defaults;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    for (; d->key != NULL; d++)
        if (hookd_kafka_conf_set(conf, d->key, d->key, d->value, errstr, errstr_size) != 0)
            goto error;
    if (cfg->reply_topics != NULL) {
        const hookd_kafka_default_t *lists[2] = {reply_defaults_both,
                                                 role == HOOKD_KAFKA_CONSUMER
                                                     ? reply_defaults_consumer
                                                     : reply_defaults_producer};
        int l;
        for (l = 0; l < 2; l++)
            for (d = lists[l]; d->key != NULL; d++)
                if (hookd_kafka_conf_set(conf, d->key, d->key, d->value, errstr, errstr_size) != 0)
                    goto error;
    }
    if (cfg->delivery == HOOKD_DELIVERY_EXACTLY_ONCE && role == HOOKD_KAFKA_PRODUCER)
        for (d = eos_defaults_producer; d->key != NULL; d++)
            if (hookd_kafka_conf_set(conf, d->key, d->key, d->value, errstr, errstr_size) != 0)
                goto error;
    if (bootstraps != NULL && hookd_kafka_conf_set(conf, "bootstrap_servers", "bootstrap.servers",
                                                   bootstraps, errstr, errstr_size) != 0)
        goto error;
    if (role == HOOKD_KAFKA_CONSUMER && cfg->group_id != NULL &&
        hookd_kafka_conf_set(conf, "group_id", "group.id", cfg->group_id, errstr, errstr_size) != 0)
        goto error;
    if (apply_list(conf, &cfg->rdkafka, "rdkafka.", errstr, errstr_size) != 0)
        goto error;
    if (role == HOOKD_KAFKA_CONSUMER &&
        apply_list(conf, &cfg->rdkafka_consumer, "consumer.rdkafka.", errstr, errstr_size) != 0)
        goto error;
    if (role == HOOKD_KAFKA_PRODUCER &&
        apply_list(conf, &cfg->rdkafka_producer, "producer.rdkafka.", errstr, errstr_size) != 0)
        goto error;
    /* What the delivery guarantee rests on is not the operator's to turn
     * off: offsets are stored by the runtime only, results are idempotent. */
    if (role == HOOKD_KAFKA_CONSUMER &&
        hookd_kafka_conf_set(conf, "enable.auto.offset.store", "enable.auto.offset.store", "false",
                             errstr, errstr_size) != 0)
        goto error;
    if (role == HOOKD_KAFKA_PRODUCER &&
        hookd_kafka_conf_set(conf, "enable.idempotence", "enable.idempotence", "true", errstr,
                             errstr_size) != 0)
        goto error;
    if (cfg->delivery == HOOKD_DELIVERY_EXACTLY_ONCE &&
        force_exactly_once(cfg, role, conf, errstr, errstr_size) != 0)
        goto error;
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    return conf;

error:
    rd_kafka_conf_destroy(conf);
    return NULL;
}
