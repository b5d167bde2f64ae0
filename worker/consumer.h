/* SPDX-License-Identifier: MIT */
/*
 * Kafka client configuration shared by the consumer and the publisher, and
 * the consumer side of the runtime: librdkafka defaults chosen for the
 * worker, then the `rdkafka.*` pass-through of the configuration.
 */
#ifndef HOOKD_CONSUMER_H
#define HOOKD_CONSUMER_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hookd_kafka_role {
    HOOKD_KAFKA_CONSUMER = 0,
    HOOKD_KAFKA_PRODUCER = 1
} hookd_kafka_role_t;

/*
 * A librdkafka configuration for `role`: the worker's defaults (documented
 * in docs/runtime.md), `bootstrap.servers` = `bootstraps`, then cfg->rdkafka
 * and the role's own list (consumer.rdkafka.* or producer.rdkafka.*), so the
 * operator has the last word. A property librdkafka refuses is reported
 * with its key (and line); the value never appears when the key is a secret.
 * Also routes librdkafka's own log lines to the worker's log.
 * Returns NULL with errstr on error.
 */
rd_kafka_conf_t *hookd_kafka_conf_new(const hookd_config_t *cfg, hookd_kafka_role_t role,
                                      const char *bootstraps, char *errstr, size_t errstr_size);

/*
 * The producer's transactional.id with [kafka] delivery = exactly_once:
 * [kafka] transactional_id when set, else "<group_id>.<worker_id>" (the
 * default worker_id is <hostname>-<pid>: unique per process, and stable
 * across restarts of a container, whose process is pid 1 in a pod of the
 * same name). 0, or -1 when it does not fit in `size`.
 */
int hookd_kafka_transactional_id(const hookd_config_t *cfg, char *buf, size_t size);

/*
 * Set one property, reporting a refusal as "<label>: <reason>" with the
 * value masked when `key` is a secret. 0 or -1.
 */
int hookd_kafka_conf_set(rd_kafka_conf_t *conf, const char *label, const char *key,
                         const char *value, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_CONSUMER_H */
