/* SPDX-License-Identifier: MIT */
/*
 * The publisher's pure parts: which produce errors are permanent for the
 * record (a truth table over every error librdkafka defines), and the
 * compact form of a result.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include "publisher.h"
#include "result.h"

/* The permanent ones; every other code librdkafka knows is transient. */
static const rd_kafka_resp_err_t permanent[] = {
    RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,    RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE,
    RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_RECORD,
    RD_KAFKA_RESP_ERR_INVALID_MSG,
};

static bool is_permanent(int code)
{
    for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++)
        if ((int)permanent[i] == code)
            return true;
    return false;
}

Test(publisher, classify_truth_table)
{
    const struct rd_kafka_err_desc *descs;
    size_t n, seen = 0, perm = 0;

    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++) {
        if (descs[i].name == NULL)
            continue;
        seen++;
        hookd_produce_err_class_t want =
            is_permanent(descs[i].code) ? HOOKD_PRODUCE_ERR_PERMANENT : HOOKD_PRODUCE_ERR_TRANSIENT;
        cr_expect_eq(hookd_publisher_classify(descs[i].code), want, "%s (%d)", descs[i].name,
                     descs[i].code);
        perm += want == HOOKD_PRODUCE_ERR_PERMANENT;
    }
    cr_expect_gt(seen, 100, "librdkafka's table was read");
    cr_expect_eq(perm, sizeof(permanent) / sizeof(permanent[0]));
}

Test(publisher, classify_everyday_errors_block)
{
    /* the ones that affect every record, named for the reader */
    static const rd_kafka_resp_err_t blocking[] = {
        RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
        RD_KAFKA_RESP_ERR__TRANSPORT,
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
        RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR__QUEUE_FULL,
        RD_KAFKA_RESP_ERR_POLICY_VIOLATION,
        RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP,
    };
    for (size_t i = 0; i < sizeof(blocking) / sizeof(blocking[0]); i++)
        cr_expect_eq(hookd_publisher_classify(blocking[i]), HOOKD_PRODUCE_ERR_TRANSIENT, "%s",
                     rd_kafka_err2name(blocking[i]));
}

Test(publisher, result_compact_drops_optional_parts)
{
    char err[2000], *long_err = malloc(4000);
    cJSON *root;
    size_t len = 0;

    memset(long_err, 'e', 1000);
    long_err[1000] = '\0';
    snprintf(err, sizeof(err),
             "{\"event_id\":\"ev-1\",\"event_type\":\"acme.enrollment.requested\","
             "\"verdict\":\"failed\",\"dead_lettered\":true,\"error_class\":\"hook_failed\","
             "\"error\":\"%s\",\"certificate_name\":\"c\",\"order_name\":\"o\","
             "\"runs\":[{\"phase\":\"pre\",\"handler\":\"h\",\"outcome\":\"fail\"}],"
             "\"input\":{\"topic\":\"t\",\"partition\":1,\"offset\":2},\"worker_id\":\"w\","
             "\"time\":\"2026-11-26T19:00:00Z\"}",
             long_err);
    char *c = hookd_result_compact(err, strlen(err), &len);
    cr_assert_not_null(c);
    cr_expect_eq(len, strlen(c));
    root = cJSON_Parse(c);
    cr_assert_not_null(root);
    cr_expect_null(cJSON_GetObjectItem(root, "certificate_name"));
    cr_expect_null(cJSON_GetObjectItem(root, "order_name"));
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(root, "runs")), 0);
    cr_expect_leq(strlen(cJSON_GetObjectItem(root, "error")->valuestring),
                  HOOKD_RESULT_COMPACT_ERROR_BYTES);
    cr_expect_str_eq(cJSON_GetObjectItem(root, "event_id")->valuestring, "ev-1");
    cr_expect_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "input"), "offset")->valueint, 2);
    cJSON_Delete(root);
    free(c);
    free(long_err);

    cr_expect_null(hookd_result_compact("[1]", 3, &len), "not a result");
    cr_expect_null(hookd_result_compact("{\"a\":", 5, &len), "not JSON");
}

Test(publisher, refused_headers_name_the_origin)
{
    hookd_origin_t o = {"acme.enrollment", 3, 42, -1, "grp"};
    hookd_headers_t *h = hookd_headers_new();
    bool cls = false, stage = false, off = false;

    cr_assert_eq(hookd_deadletter_refused_headers(&o, "w1", "result", NULL, "Broker: too large", h),
                 0);
    for (size_t i = 0; i < hookd_headers_count(h); i++) {
        const hookd_header_t *x = hookd_headers_get(h, i);
        if (strcmp(x->name, "hookd.dlq.error.class") == 0)
            cls = strcmp(x->value, "publish_refused") == 0;
        if (strcmp(x->name, "__connect.errors.stage") == 0)
            stage = strcmp(x->value, "KAFKA_PRODUCE") == 0;
        if (strcmp(x->name, "hookd.dlq.offset") == 0)
            off = strcmp(x->value, "42") == 0;
    }
    cr_expect(cls && stage && off);
    hookd_headers_destroy(h);
}
