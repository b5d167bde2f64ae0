/* SPDX-License-Identifier: MIT */
/*
 * Configuration: an INI file (acme2certifier-compatible [Hooks] section),
 * then environment variables over it, then validation.
 *
 * Sections and keys are documented in the README (configuration reference)
 * and in deploy/acme-hookd.ini. librdkafka properties pass through from the
 * [kafka] section: `rdkafka.<prop>` (consumer and producer),
 * `consumer.rdkafka.<prop>`, `producer.rdkafka.<prop>`.
 */
#ifndef HOOKD_CONFIG_H
#define HOOKD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
    int partition_queue_max; /* messages buffered per partition before pausing it, default 1000 */
    int commit_interval_ms;  /* least time between two offset commit requests, default 200 */
    hookd_limits_t limits;   /* max_event_bytes, max_field_bytes */
    size_t max_error_bytes;  /* error text in results and dead letters, default 1024 */
    bool trust_event_flags;  /* an event's hookd.flags header overrides the policy */
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
 * Load `path` (NULL: defaults only), apply overrides from `envp` (NULL:
 * none), validate. On error returns NULL and writes every problem found,
 * one per line ("FILE:LINE: key 'x': reason"), into errstr.
 */
hookd_config_t *hookd_config_load(const char *path, char *const *envp, char *errstr,
                                  size_t errstr_size);

void hookd_config_destroy(hookd_config_t *cfg);

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

/*
 * Unknown [Hooks] keys are errors unless a loaded handler declares them.
 * `declared(key, opaque)` answers for the handlers. Returns 0 when every
 * key is known, else -1 with one line per unknown key in errstr.
 */
int hookd_config_check_hook_keys(const hookd_config_t *cfg,
                                 bool (*declared)(const char *key, void *opaque), void *opaque,
                                 char *errstr, size_t errstr_size);

/* Print the effective configuration, secrets masked (for --check-config). */
void hookd_config_dump(const hookd_config_t *cfg, FILE *out);

/* True for keys whose values must never be shown (passwords, keys, secrets). */
bool hookd_config_is_secret_key(const char *key);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_CONFIG_H */
