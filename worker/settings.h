/* SPDX-License-Identifier: MIT */
/*
 * The worker's settings as data: hookd_config_t and the types it is made
 * of. Logic layer, data only: nothing here calls into another module.
 *
 * config.c (kafka layer: the INI parser, environment overrides,
 * validation; config.h) fills a hookd_config_t and frees it; every layer
 * reads it, as `const hookd_config_t *`, for the lifetime the caller of
 * hookd_config_load() gives it. Logic and host headers include this file,
 * never config.h: the `layers.*` tests fail when one does. Keys,
 * defaults and ranges are in config.c's cfg_keys table and in
 * docs/configuration.md.
 */
#ifndef HOOKD_SETTINGS_H
#define HOOKD_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

#include "event.h"
#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A key/value pair from the file or the environment, in order of appearance. */
typedef struct hookd_kv {
    char *key;
    char *value;
    int line; /* line in the file, 0 when it came from the environment */
} hookd_kv_t;

typedef struct hookd_kv_list {
    hookd_kv_t *items;
    size_t count;
} hookd_kv_list_t;

typedef enum hookd_log_format { HOOKD_LOGFMT_JSON = 0, HOOKD_LOGFMT_TEXT = 1 } hookd_log_format_t;

typedef enum hookd_isolation {
    HOOKD_ISOLATION_NONE = 0, /* in-process: fastest, no protection */
    HOOKD_ISOLATION_PROCESS =
        1 /* each invocation in a pre-forked child with deadline and rlimits */
} hookd_isolation_t;

/* What the handler threads keep in order (see pool.h). */
typedef enum hookd_ordering {
    HOOKD_ORDERING_KEY = 0,      /* per Kafka key; keys of a partition run in parallel */
    HOOKD_ORDERING_PARTITION = 1 /* per partition: one event of a partition at a time */
} hookd_ordering_t;

typedef enum hookd_delivery {
    HOOKD_DELIVERY_AT_LEAST_ONCE = 0, /* idempotent producer, offsets committed after the acks */
    HOOKD_DELIVERY_EXACTLY_ONCE = 1   /* records and offsets in Kafka transactions */
} hookd_delivery_t;

typedef struct hookd_config {
    char *path; /* the file read, NULL if none */

    /* [Hooks] */
    char *hooks_file;     /* list: paths of handler files and/or builtin names: the
                                       effective chain (hookd_handlers, else hooks_module, else
                                       hooks_file) */
    char *hooks_module;   /* acme2certifier 0.46's spelling of hooks_file */
    char *hookd_handlers; /* the chain when hooks_module names the acme2certifier bridge */
    bool
        hook_error_details_forward; /* replies carry the handler's error text, else "pre-hook failed" */
    hookd_policy_t policy;          /* allow_*_hook_failure / ignore_*_hook_failure, retries */
    bool allow_unsafe_hooks_file; /* skip the StrictModes-like permission check */
    hookd_kv_list_t hook_keys;    /* every other [Hooks] key: handler configuration */
    hookd_kv_list_t
        ignored; /* what the file held for others and was skipped: key = what, value = why */

    /* [kafka] */
    char *bootstrap_servers;     /* NULL or "": the embedded mock cluster */
    char *group_id;              /* default "acme-hookd" */
    char *input_topic;           /* default "acme.enrollment" */
    char *result_topic;          /* default "acme.enrollment.result" */
    char *dead_letter_topic;     /* default "acme.enrollment.dlq" */
    char *reply_topics;          /* allow-list of reply topics (comma-separated), NULL: none */
    hookd_delivery_t delivery;   /* delivery = at_least_once | exactly_once */
    int transaction_interval_ms; /* exactly_once: commit a transaction this often, default 100 */
    int transaction_max_events;  /* exactly_once: or after this many outcomes, default 10000 */
    char *transactional_id;      /* exactly_once: NULL: group_id.worker_id.pid */
    hookd_kv_list_t rdkafka;     /* rdkafka.*: both clients */
    hookd_kv_list_t rdkafka_consumer; /* consumer.rdkafka.* */
    hookd_kv_list_t rdkafka_producer; /* producer.rdkafka.* */

    /* [worker] */
    char *worker_id;         /* default: hostname-pid */
    int threads;             /* handler threads, default 4 */
    int shutdown_timeout_ms; /* SIGTERM deadline, default 25000 */
    int revoke_timeout_ms;   /* time to finish revoked partitions' in-flight work, default 10000 */
    int publish_retry_backoff_ms; /* re-publish delay after a failed delivery, default 1000 */
    int partition_queue_max;   /* messages buffered per partition before pausing it, default 1000 */
    int commit_interval_ms;    /* least time between two offset commit requests, default 200 */
    hookd_ordering_t ordering; /* ordering = key | partition, default key */
    int max_in_flight; /* events consumed and not yet committable, whole worker, default 40000 */
    int max_in_flight_per_partition; /* the same per partition, default 5000 */
    char *retry_topics;              /* retry tier delays ("10s,1m,10m"), NULL: no tiers */
    char *retry_topic_names;         /* their topics, NULL: <input_topic>.retry.<delay> */
    struct hookd_tiers *retry_tiers; /* parsed from the two (tiers.h), NULL: no tiers */
    hookd_limits_t limits;           /* max_event_bytes, max_field_bytes */
    size_t max_error_bytes;          /* error text in results and dead letters, default 1024 */
    bool trust_event_flags;          /* an event's hookd.flags header overrides the policy */
    size_t
        dead_letter_max_value_bytes; /* dead-letter values are cut to this; 0 (default): what fits under the producer's message.max.bytes */
    hookd_isolation_t isolation;     /* isolation = none | process */
    int hook_timeout_ms; /* per-invocation deadline in process isolation, default 20000 (below the shutdown deadline) */
    long hook_rlimit_as_mb;  /* address-space limit of an isolated child, default 512 */
    long hook_rlimit_cpu_s;  /* CPU seconds of an isolated child, default 60 */
    long hook_rlimit_nofile; /* open files of an isolated child, default 64 */

    /* [http] */
    char *http_listen; /* "ADDR:PORT" or ":PORT"; NULL: no endpoint */

    /* [log] */
    int log_level;                 /* hookd_log_level_t, default INFO */
    hookd_log_format_t log_format; /* default JSON */

    /* [auth] */
    bool auth_require;         /* verify HMAC of every input event */
    bool auth_sign_results;    /* sign result events */
    char *auth_keys;           /* list of "KEYID:PATH" */
    char *auth_signing_key_id; /* key used to sign results */
    bool verify_csr;           /* check CSR signature (and cert/CSR key match) before hooks */
} hookd_config_t;

/*
 * The value of a [Hooks] handler key (case-insensitive), or NULL. Inline:
 * the host layer (invoke.c) reads handler keys without linking config.c.
 */
static inline const char *hookd_config_hook_value(const hookd_config_t *cfg, const char *key)
{
    size_t i;
    if (cfg == NULL || key == NULL)
        return NULL;
    for (i = 0; i < cfg->hook_keys.count; i++)
        if (strcasecmp(cfg->hook_keys.items[i].key, key) == 0)
            return cfg->hook_keys.items[i].value;
    return NULL;
}

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_SETTINGS_H */
