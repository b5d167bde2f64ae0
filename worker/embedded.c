/* SPDX-License-Identifier: MIT */
/*
 * The embedded broker (see embedded.h).
 *
 * A mock cluster needs an rd_kafka_t to live in; a producer handle that is
 * never used to produce serves, and owns the cluster's threads.
 */
#include "embedded.h"

#include <stdio.h>
#include <stdlib.h>

struct hookd_embedded {
    rd_kafka_t *rk; /* owns the cluster */
    rd_kafka_mock_cluster_t *mcluster;
};

/* The mock cluster's handle logs nothing useful to an operator. */
static void quiet_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
}

hookd_embedded_t *hookd_embedded_new(int brokers, const char *const *topics, size_t topic_count,
                                     int partitions, char *errstr, size_t errstr_size)
{
    hookd_embedded_t *e = calloc(1, sizeof(*e));
    rd_kafka_conf_t *conf;
    char why[512];
    size_t i;

    if (e == NULL) {
        snprintf(errstr, errstr_size, "embedded broker: out of memory");
        return NULL;
    }
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, quiet_log_cb);
    if ((e->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why))) == NULL) {
        snprintf(errstr, errstr_size, "embedded broker: %s", why);
        rd_kafka_conf_destroy(conf);
        goto error;
    }
    conf = NULL; /* now owned by e->rk */
    if ((e->mcluster = rd_kafka_mock_cluster_new(e->rk, brokers > 0 ? brokers : 1)) == NULL) {
        snprintf(errstr, errstr_size, "embedded broker: cannot start the mock cluster");
        goto error;
    }
    for (i = 0; i < topic_count; i++) {
        rd_kafka_resp_err_t err;
        if (topics[i] == NULL || topics[i][0] == '\0')
            continue;
        err =
            rd_kafka_mock_topic_create(e->mcluster, topics[i],
                                       partitions > 0 ? partitions : HOOKD_EMBEDDED_PARTITIONS, 1);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            snprintf(errstr, errstr_size, "embedded broker: topic '%s': %s", topics[i],
                     rd_kafka_err2str(err));
            goto error;
        }
    }
    return e;

error:
    hookd_embedded_destroy(e);
    return NULL;
}

const char *hookd_embedded_bootstraps(const hookd_embedded_t *e)
{
    return rd_kafka_mock_cluster_bootstraps(e->mcluster);
}

rd_kafka_mock_cluster_t *hookd_embedded_cluster(const hookd_embedded_t *e)
{
    return e->mcluster;
}

void hookd_embedded_destroy(hookd_embedded_t *e)
{
    if (e == NULL)
        return;
    if (e->mcluster != NULL)
        rd_kafka_mock_cluster_destroy(e->mcluster);
    if (e->rk != NULL)
        rd_kafka_destroy(e->rk);
    free(e);
}

int hookd_embedded_check(const hookd_config_t *cfg, char *errstr, size_t errstr_size)
{
    if (cfg->delivery == HOOKD_DELIVERY_EXACTLY_ONCE) {
        snprintf(errstr, errstr_size,
                 "[kafka] delivery = exactly_once needs a real Kafka cluster (bootstrap_servers): "
                 "the embedded mock cluster accepts transactions but does not keep them");
        return -1;
    }
    return 0;
}
