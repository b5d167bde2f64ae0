/* SPDX-License-Identifier: MIT */
/*
 * librdkafka configuration of the worker's clients: defaults, the
 * rdkafka.* pass-through (the operator wins), the properties the delivery
 * guarantee rests on (forced), and error messages that name the key and
 * never show a secret value.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "consumer.h"

static hookd_kv_t common_kv[4], consumer_kv[4], producer_kv[4];
static hookd_config_t cfg;

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    cfg.group_id = "test-group";
    cfg.rdkafka.items = common_kv;
    cfg.rdkafka_consumer.items = consumer_kv;
    cfg.rdkafka_producer.items = producer_kv;
}

TestSuite(kafka_conf, .init = setup);

static void get(rd_kafka_conf_t *conf, const char *key, char *out, size_t size)
{
    size_t n = size;
    cr_assert_eq(rd_kafka_conf_get(conf, key, out, &n), RD_KAFKA_CONF_OK, "get %s", key);
}

static void kv(hookd_kv_list_t *l, const char *key, const char *value, int line)
{
    hookd_kv_t *e = &l->items[l->count++];
    e->key = (char *)key;
    e->value = (char *)value;
    e->line = line;
}

Test(kafka_conf, consumer_defaults)
{
    char err[512], v[256];
    rd_kafka_conf_t *conf =
        hookd_kafka_conf_new(&cfg, HOOKD_KAFKA_CONSUMER, "127.0.0.1:1", err, sizeof(err));
    cr_assert_not_null(conf, "%s", err);
    get(conf, "partition.assignment.strategy", v, sizeof(v));
    cr_assert_str_eq(v, "cooperative-sticky");
    get(conf, "enable.auto.offset.store", v, sizeof(v));
    cr_assert_str_eq(v, "false");
    get(conf, "group.id", v, sizeof(v));
    cr_assert_str_eq(v, "test-group");
    get(conf, "bootstrap.servers", v, sizeof(v));
    cr_assert_str_eq(v, "127.0.0.1:1");
    get(conf, "auto.offset.reset", v, sizeof(v));
    cr_assert(strcmp(v, "earliest") == 0 || strcmp(v, "smallest") == 0, "%s", v);
    rd_kafka_conf_destroy(conf);
}

Test(kafka_conf, producer_defaults)
{
    char err[512], v[256];
    rd_kafka_conf_t *conf =
        hookd_kafka_conf_new(&cfg, HOOKD_KAFKA_PRODUCER, "127.0.0.1:1", err, sizeof(err));
    cr_assert_not_null(conf, "%s", err);
    get(conf, "enable.idempotence", v, sizeof(v));
    cr_assert_str_eq(v, "true");
    get(conf, "message.timeout.ms", v, sizeof(v));
    cr_assert_str_eq(v, "30000");
    rd_kafka_conf_destroy(conf);
}

Test(kafka_conf, operator_properties_win_and_reach_the_right_client)
{
    char err[512], v[256];
    rd_kafka_conf_t *c, *p;
    kv(&cfg.rdkafka, "rdkafka.client.id", "fleet-a", 3);
    kv(&cfg.rdkafka_consumer, "session.timeout.ms", "6000", 4); /* prefix stripped or not */
    kv(&cfg.rdkafka_producer, "producer.rdkafka.linger.ms", "20", 5);
    kv(&cfg.rdkafka_consumer, "partition.assignment.strategy", "range", 6);
    c = hookd_kafka_conf_new(&cfg, HOOKD_KAFKA_CONSUMER, NULL, err, sizeof(err));
    p = hookd_kafka_conf_new(&cfg, HOOKD_KAFKA_PRODUCER, NULL, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    cr_assert_not_null(p, "%s", err);
    get(c, "client.id", v, sizeof(v));
    cr_assert_str_eq(v, "fleet-a");
    get(p, "client.id", v, sizeof(v));
    cr_assert_str_eq(v, "fleet-a");
    get(c, "session.timeout.ms", v, sizeof(v));
    cr_assert_str_eq(v, "6000");
    get(c, "partition.assignment.strategy", v, sizeof(v));
    cr_assert_str_eq(v, "range");
    get(p, "linger.ms", v, sizeof(v));
    cr_assert_str_eq(v, "20");
    get(c, "linger.ms", v, sizeof(v));
    cr_assert_str_neq(v, "20", "a producer.rdkafka.* property reached the consumer");
    rd_kafka_conf_destroy(c);
    rd_kafka_conf_destroy(p);
}

Test(kafka_conf, the_guarantee_is_not_configurable_away)
{
    char err[512], v[256];
    rd_kafka_conf_t *c, *p;
    kv(&cfg.rdkafka_consumer, "enable.auto.offset.store", "true", 7);
    kv(&cfg.rdkafka_producer, "enable.idempotence", "false", 8);
    c = hookd_kafka_conf_new(&cfg, HOOKD_KAFKA_CONSUMER, NULL, err, sizeof(err));
    p = hookd_kafka_conf_new(&cfg, HOOKD_KAFKA_PRODUCER, NULL, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    cr_assert_not_null(p, "%s", err);
    get(c, "enable.auto.offset.store", v, sizeof(v));
    cr_assert_str_eq(v, "false");
    get(p, "enable.idempotence", v, sizeof(v));
    cr_assert_str_eq(v, "true");
    rd_kafka_conf_destroy(c);
    rd_kafka_conf_destroy(p);
}

Test(kafka_conf, a_refused_property_is_named_with_its_line)
{
    char err[512];
    kv(&cfg.rdkafka, "rdkafka.no.such.property", "1", 12);
    cr_assert_null(hookd_kafka_conf_new(&cfg, HOOKD_KAFKA_CONSUMER, NULL, err, sizeof(err)));
    cr_assert(strstr(err, "line 12") != NULL, "%s", err);
    cr_assert(strstr(err, "rdkafka.no.such.property") != NULL, "%s", err);
}

Test(kafka_conf, a_bad_value_is_explained)
{
    char err[512];
    kv(&cfg.rdkafka_consumer, "session.timeout.ms", "soon", 9);
    cr_assert_null(hookd_kafka_conf_new(&cfg, HOOKD_KAFKA_CONSUMER, NULL, err, sizeof(err)));
    cr_assert(strstr(err, "line 9: consumer.rdkafka.session.timeout.ms") != NULL, "%s", err);
    cr_assert(strstr(err, "Invalid value") != NULL, "librdkafka's reason is kept: %s", err);
}

Test(kafka_conf, a_secret_value_never_appears)
{
    char err[512];
    /* librdkafka refuses this value and would quote it in its message. */
    const char *secret = "hunter2-not-a-method";
    cr_assert(hookd_config_is_secret_key("sasl.oauthbearer.method"));
    kv(&cfg.rdkafka, "rdkafka.sasl.oauthbearer.method", secret, 2);
    cr_assert_null(hookd_kafka_conf_new(&cfg, HOOKD_KAFKA_CONSUMER, NULL, err, sizeof(err)));
    cr_assert(strstr(err, "rdkafka.sasl.oauthbearer.method") != NULL, "%s", err);
    cr_assert(strstr(err, "line 2") != NULL, "%s", err);
    cr_assert(strstr(err, secret) == NULL, "secret leaked: %s", err);

    /* The same refusal for a key that is not secret shows the value. */
    {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        cr_assert_eq(hookd_kafka_conf_set(conf, "label", "auto.offset.reset", secret, err,
                                          sizeof(err)),
                     -1);
        cr_assert(strstr(err, secret) != NULL, "%s", err);
        rd_kafka_conf_destroy(conf);
    }
}

/* With replies allowed, latency defaults; without, the batching ones; the operator wins over both. */
Test(kafka_conf, request_reply_latency_defaults)
{
    char err[512], v[256];
    rd_kafka_conf_t *c, *p;

    c = hookd_kafka_conf_new(&cfg, HOOKD_KAFKA_CONSUMER, NULL, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    get(c, "fetch.wait.max.ms", v, sizeof(v));
    cr_assert_str_eq(v, "100");
    rd_kafka_conf_destroy(c);

    cfg.reply_topics = "acme.enrollment.reply";
    c = hookd_kafka_conf_new(&cfg, HOOKD_KAFKA_CONSUMER, NULL, err, sizeof(err));
    p = hookd_kafka_conf_new(&cfg, HOOKD_KAFKA_PRODUCER, NULL, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    cr_assert_not_null(p, "%s", err);
    get(c, "fetch.wait.max.ms", v, sizeof(v));
    cr_assert_str_eq(v, "5");
    get(c, "socket.nagle.disable", v, sizeof(v));
    cr_assert_str_eq(v, "true");
    get(p, "linger.ms", v, sizeof(v));
    cr_assert_str_eq(v, "0");
    get(p, "socket.nagle.disable", v, sizeof(v));
    cr_assert_str_eq(v, "true");
    rd_kafka_conf_destroy(c);
    rd_kafka_conf_destroy(p);

    kv(&cfg.rdkafka_consumer, "consumer.rdkafka.fetch.wait.max.ms", "50", 7);
    c = hookd_kafka_conf_new(&cfg, HOOKD_KAFKA_CONSUMER, NULL, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    get(c, "fetch.wait.max.ms", v, sizeof(v));
    cr_assert_str_eq(v, "50");
    rd_kafka_conf_destroy(c);
}
