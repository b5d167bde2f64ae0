/* SPDX-License-Identifier: MIT */
/*
 * What is published: the result event (JSON value and CloudEvents binary
 * headers) and the dead-letter context headers. That the output also
 * validates against the schemas is checked by tests/schema (crosscheck).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine.h"
#include "event.h"
#include "result.h"

static hookd_event_t ev;
static hookd_origin_t origin;
static hookd_result_info_t info;
static hookd_decision_t d;
static hookd_headers_t *hdrs;
static cJSON *json;

static void setup(void)
{
    static const char *req =
        "{\"type\":\"acme.enrollment.requested\",\"id\":\"ev-1\",\"time\":\"2026-11-26T19:00:00Z\","
        "\"certificate_name\":\"cert-1\",\"order_name\":\"order-1\",\"csr\":\"QUJD\"}";
    char err[256];

    cr_assert_eq(hookd_event_decode(req, strlen(req), NULL, 0, NULL, &ev, err, sizeof(err)),
                 HOOKD_EVENT_OK, "%s", err);
    origin = (hookd_origin_t){"acme.enrollment", 3, 4711, 1764183600123, "grp"};
    info = (hookd_result_info_t){&ev, &origin, "worker-1", NULL, 0};
    memset(&d, 0, sizeof(d));
    d.failed_run = -1;
    hdrs = hookd_headers_new();
    cr_assert_not_null(hdrs);
    json = NULL;
}

static void teardown(void)
{
    hookd_event_clear(&ev);
    hookd_headers_destroy(hdrs);
    cJSON_Delete(json);
}

TestSuite(result, .init = setup, .fini = teardown);

static hookd_run_t *add_run(hookd_phase_t phase, const char *name, hookd_outcome_t outcome,
                            hookd_error_class_t cls, bool allowed, uint32_t attempts, uint64_t us,
                            const char *error)
{
    hookd_run_t *r = &d.runs[d.run_count++];
    r->phase = phase;
    r->handler_index = d.run_count - 1;
    r->handler_name = name;
    r->outcome = outcome;
    r->error_class = cls;
    r->failure_allowed = allowed;
    r->attempts = attempts;
    r->duration_us = us;
    snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
    return r;
}

static void fail_at(int run, hookd_error_class_t cls)
{
    d.verdict = HOOKD_VERDICT_FAILED;
    d.dead_letter = true;
    d.error_class = cls;
    d.failed_run = run;
    d.failed_phase = d.runs[run].phase;
    snprintf(d.error, sizeof(d.error), "%s", d.runs[run].error);
}

/* The value of header `name` (the last one of that name), or NULL. */
static const char *header(const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < hookd_headers_count(hdrs); i++) {
        const hookd_header_t *h = hookd_headers_get(hdrs, i);
        if (strcmp(h->name, name) == 0) {
            v = h->value;
            cr_assert_eq(strlen(v), h->len, "header %s: len", name);
        }
    }
    return v;
}

static cJSON *encode(void)
{
    size_t len = 0;
    char *s = hookd_result_encode(&info, &d, hdrs, &len);

    cr_assert_not_null(s);
    cr_assert_eq(strlen(s), len);
    json = cJSON_Parse(s);
    cr_assert_not_null(json, "not JSON: %s", s);
    free(s);
    return json;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    cr_assert_not_null(it, "no member %s", name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static bool is_uuid_v4(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!strchr("0123456789abcdef", s[i])) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/* ---- header list ------------------------------------------------------------ */

Test(result, header_list_copies)
{
    char name[] = "k", value[] = {'a', '\0', 'b'};

    cr_assert_eq(hookd_headers_add(hdrs, name, value, 3), 0);
    cr_assert_eq(hookd_headers_add(hdrs, "null", NULL, 99), 0);
    cr_assert_eq(hookd_headers_add_str(hdrs, "s", "text"), 0);
    name[0] = 'x';
    value[0] = 'z';
    cr_assert_eq(hookd_headers_count(hdrs), 3);
    cr_expect_str_eq(hookd_headers_get(hdrs, 0)->name, "k");
    cr_expect_eq(hookd_headers_get(hdrs, 0)->len, 3);
    cr_expect_eq(memcmp(hookd_headers_get(hdrs, 0)->value, "a\0b", 3), 0);
    cr_expect_null(hookd_headers_get(hdrs, 1)->value);
    cr_expect_eq(hookd_headers_get(hdrs, 1)->len, 0);
    cr_expect_str_eq(hookd_headers_get(hdrs, 2)->value, "text");
    cr_expect_null(hookd_headers_get(hdrs, 3));
    for (int i = 0; i < 100; i++)
        cr_assert_eq(hookd_headers_add_str(hdrs, "many", "v"), 0);
    cr_expect_eq(hookd_headers_count(hdrs), 103);
}

/* ---- result ------------------------------------------------------------------ */

Test(result, completed_value_and_headers)
{
    const cJSON *runs, *r, *in;

    /* a message set by a handler that then succeeded is not an error */
    add_run(HOOKD_PHASE_PRE, "cn_dump", HOOKD_OK, HOOKD_ERRCLASS_NONE, false, 1, 1500,
            "set, then returned ok");
    encode();
    cr_expect_str_eq(jstr(json, "event_id"), "ev-1");
    cr_expect_str_eq(jstr(json, "event_type"), "acme.enrollment.requested");
    cr_expect_str_eq(jstr(json, "verdict"), "completed");
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(json, "dead_lettered")));
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(json, "error_class")));
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(json, "error")));
    cr_expect_str_eq(jstr(json, "certificate_name"), "cert-1");
    cr_expect_str_eq(jstr(json, "order_name"), "order-1");
    cr_expect_str_eq(jstr(json, "worker_id"), "worker-1");
    cr_expect_eq(strlen(jstr(json, "time")), 24);
    in = cJSON_GetObjectItem(json, "input");
    cr_expect_str_eq(jstr(in, "topic"), "acme.enrollment");
    cr_expect_eq(cJSON_GetObjectItem(in, "partition")->valuedouble, 3);
    cr_expect_eq(cJSON_GetObjectItem(in, "offset")->valuedouble, 4711);
    runs = cJSON_GetObjectItem(json, "runs");
    cr_assert_eq(cJSON_GetArraySize(runs), 1);
    r = cJSON_GetArrayItem(runs, 0);
    cr_expect_str_eq(jstr(r, "phase"), "pre");
    cr_expect_str_eq(jstr(r, "handler"), "cn_dump");
    cr_expect_str_eq(jstr(r, "outcome"), "ok");
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(r, "failure_allowed")));
    cr_expect_eq(cJSON_GetObjectItem(r, "attempts")->valuedouble, 1);
    cr_expect_eq(cJSON_GetObjectItem(r, "duration_ms")->valuedouble, 1.5);
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(r, "error_class")));
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(r, "error")));

    cr_expect_str_eq(header("ce_specversion"), "1.0");
    cr_expect(is_uuid_v4(header("ce_id")), "ce_id %s", header("ce_id"));
    cr_expect_str_eq(header("ce_source"), "urn:acme-hookd:worker-1");
    cr_expect_str_eq(header("ce_type"), "acme.hookd.result.completed");
    cr_expect_str_eq(header("ce_subject"), "order-1");
    cr_expect_str_eq(header("ce_time"), jstr(json, "time"));
    cr_expect_str_eq(header("content-type"), "application/json");
    cr_expect_str_eq(header("ce_inputeventid"), "ev-1");
    cr_expect_eq(hookd_headers_count(hdrs), 8);
}

Test(result, ce_id_is_unique_and_source_configurable)
{
    char first[40];

    info.source = "https://hookd.example.org/eu-1";
    encode();
    snprintf(first, sizeof(first), "%s", header("ce_id"));
    cr_expect_str_eq(header("ce_source"), "https://hookd.example.org/eu-1");
    cJSON_Delete(json);
    encode(); /* appended: header() sees the second result's */
    cr_expect_str_neq(header("ce_id"), first);
    cr_expect_eq(hookd_headers_count(hdrs), 16);
}

Test(result, failed_with_allowed_and_fatal_failures)
{
    const cJSON *r;

    add_run(HOOKD_PHASE_SUCCESS, "cn_dump", HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_FAILED, true, 1, 10,
            "cannot parse certificate");
    add_run(HOOKD_PHASE_SUCCESS, "exec", HOOKD_FAIL, HOOKD_ERRCLASS_RETRIES_EXHAUSTED, false, 4,
            2000, "exit status 75");
    fail_at(1, HOOKD_ERRCLASS_RETRIES_EXHAUSTED);
    encode();
    cr_expect_str_eq(jstr(json, "verdict"), "failed");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(json, "dead_lettered")));
    cr_expect_str_eq(jstr(json, "error_class"), "retries_exhausted");
    cr_expect_str_eq(jstr(json, "error"), "exit status 75");
    r = cJSON_GetArrayItem(cJSON_GetObjectItem(json, "runs"), 0);
    cr_expect_str_eq(jstr(r, "outcome"), "fail");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(r, "failure_allowed")), "allowed failure visible");
    cr_expect_str_eq(jstr(r, "error_class"), "hook_failed");
    cr_expect_str_eq(jstr(r, "error"), "cannot parse certificate");
    r = cJSON_GetArrayItem(cJSON_GetObjectItem(json, "runs"), 1);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(r, "failure_allowed")));
    cr_expect_eq(cJSON_GetObjectItem(r, "attempts")->valuedouble, 4);
    cr_expect_str_eq(jstr(r, "error_class"), "retries_exhausted");
    cr_expect_str_eq(header("ce_type"), "acme.hookd.result.failed");
}

Test(result, failure_without_message_is_explained)
{
    add_run(HOOKD_PHASE_PRE, "exception_test", HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_FAILED, false, 1, 5,
            NULL);
    fail_at(0, HOOKD_ERRCLASS_HOOK_FAILED);
    encode();
    cr_expect_str_eq(jstr(json, "error"),
                     "handler 'exception_test' failed in phase pre after 1 attempt, without a "
                     "message");
    cr_expect(cJSON_IsNull(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(json, "runs"), 0), "error")));
}

Test(result, invalid_event_partial)
{
    char err[256];

    hookd_event_clear(&ev);
    cr_assert_neq(hookd_event_decode("{\"id\":\"ev-x\",\"type\":\"what\"}", 27, NULL, 0, NULL, &ev,
                                     err, sizeof(err)),
                  HOOKD_EVENT_OK);
    hookd_decision_reject(&d, HOOKD_ERRCLASS_INVALID_EVENT, err);
    encode();
    cr_expect_str_eq(jstr(json, "event_id"), "ev-x");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(json, "event_type")));
    cr_expect_str_eq(jstr(json, "error_class"), "invalid_event");
    cr_expect_str_eq(jstr(json, "error"), "missing field 'time'");
    cr_expect_null(cJSON_GetObjectItem(json, "order_name"));
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(json, "runs")), 0);
    cr_expect_null(header("ce_subject"), "no order name, no subject");
    cr_expect_str_eq(header("ce_inputeventid"), "ev-x");

    /* no id at all */
    hookd_event_clear(&ev);
    hookd_event_decode("nope", 4, NULL, 0, NULL, &ev, err, sizeof(err));
    hookd_headers_destroy(hdrs);
    hdrs = hookd_headers_new();
    cJSON_Delete(json);
    encode();
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(json, "event_id")));
    cr_expect_null(header("ce_inputeventid"));
}

Test(result, existing_headers_untouched)
{
    hookd_headers_add_str(hdrs, "traceparent", "00-aa");
    encode();
    cr_expect_str_eq(hookd_headers_get(hdrs, 0)->name, "traceparent");
    cr_expect_str_eq(hookd_headers_get(hdrs, 0)->value, "00-aa");
    cr_expect_str_eq(hookd_headers_get(hdrs, 1)->name, "ce_specversion");
}

/* ---- dead letter ---------------------------------------------------------------- */

Test(result, deadletter_headers_of_a_hook_failure)
{
    add_run(HOOKD_PHASE_PRE, "cn_dump", HOOKD_OK, HOOKD_ERRCLASS_NONE, false, 1, 10, NULL);
    add_run(HOOKD_PHASE_PRE, "exec", HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_FAILED, false, 2, 10,
            "exit status 1");
    fail_at(1, HOOKD_ERRCLASS_HOOK_FAILED);
    hookd_headers_add(hdrs, "original", "v", 1); /* the caller's copy of the input's headers */
    cr_assert_eq(hookd_deadletter_headers(&info, &d, hdrs), 0);

    cr_expect_str_eq(hookd_headers_get(hdrs, 0)->name, "original");
    cr_expect_str_eq(header("hookd.dlq.topic"), "acme.enrollment");
    cr_expect_str_eq(header("hookd.dlq.partition"), "3");
    cr_expect_str_eq(header("hookd.dlq.offset"), "4711");
    cr_expect_str_eq(header("hookd.dlq.timestamp"), "1764183600123");
    cr_expect_str_eq(header("hookd.dlq.group"), "grp");
    cr_expect_str_eq(header("hookd.dlq.event.id"), "ev-1");
    cr_expect_str_eq(header("hookd.dlq.event.type"), "acme.enrollment.requested");
    cr_expect_str_eq(header("hookd.dlq.phase"), "pre");
    cr_expect_str_eq(header("hookd.dlq.handler"), "exec");
    cr_expect_str_eq(header("hookd.dlq.attempts"), "2");
    cr_expect_str_eq(header("hookd.dlq.error.class"), "hook_failed");
    cr_expect_str_eq(header("hookd.dlq.error.message"), "exit status 1");
    cr_expect_str_eq(header("hookd.dlq.worker"), "worker-1");
    cr_expect_eq(strlen(header("hookd.dlq.time")), 24);

    cr_expect_str_eq(header("__connect.errors.topic"), "acme.enrollment");
    cr_expect_str_eq(header("__connect.errors.partition"), "3");
    cr_expect_str_eq(header("__connect.errors.offset"), "4711");
    cr_expect_str_eq(header("__connect.errors.connector.name"), "grp");
    cr_expect_str_eq(header("__connect.errors.task.id"), "worker-1");
    cr_expect_str_eq(header("__connect.errors.stage"), "TASK_PUT");
    cr_expect_str_eq(header("__connect.errors.class.name"), "hookd.handler.exec");
    cr_expect_str_eq(header("__connect.errors.exception.class.name"), "hook_failed");
    cr_expect_str_eq(header("__connect.errors.exception.message"), "exit status 1");
    /* most recent first, like a stack trace */
    cr_expect_str_eq(header("__connect.errors.exception.stacktrace"),
                     "at pre/exec: fail, 2 attempts: exit status 1\nat pre/cn_dump: ok, 1 attempt");
    cr_expect_eq(hookd_headers_count(hdrs), 1 + 14 + 10);
}

Test(result, deadletter_headers_of_an_invalid_event)
{
    origin.timestamp_ms = -1;
    origin.group_id = NULL;
    hookd_decision_reject(&d, HOOKD_ERRCLASS_INVALID_EVENT, "missing field 'order_name'");
    cr_assert_eq(hookd_deadletter_headers(&info, &d, hdrs), 0);
    cr_expect_null(header("hookd.dlq.phase"));
    cr_expect_null(header("hookd.dlq.handler"));
    cr_expect_null(header("hookd.dlq.attempts"));
    cr_expect_null(header("hookd.dlq.timestamp"));
    cr_expect_null(header("hookd.dlq.group"));
    cr_expect_str_eq(header("hookd.dlq.error.class"), "invalid_event");
    cr_expect_str_eq(header("hookd.dlq.error.message"), "missing field 'order_name'");
    cr_expect_str_eq(header("__connect.errors.stage"), "VALUE_CONVERTER");
    cr_expect_str_eq(header("__connect.errors.class.name"), "hookd.event");
    cr_expect_str_eq(header("__connect.errors.connector.name"), "acme-hookd");
}

Test(result, error_message_is_capped_and_valid_utf8)
{
    char msg[HOOKD_ERROR_MAX];
    const char *m;

    /* 1023 bytes: "\xc3\xa9" pairs, with garbage bytes at the front */
    memset(msg, 0, sizeof(msg));
    memcpy(msg, "\xff\xfe", 2);
    for (size_t i = 2; i + 2 < sizeof(msg); i += 2)
        memcpy(msg + i, "\xc3\xa9", 2);
    add_run(HOOKD_PHASE_POST, "exec", HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_FAILED, false, 1, 1, msg);
    fail_at(0, HOOKD_ERRCLASS_HOOK_FAILED);

    info.max_error_bytes = 33;
    cr_assert_eq(hookd_deadletter_headers(&info, &d, hdrs), 0);
    m = header("hookd.dlq.error.message");
    /* 2 x U+FFFD (6 bytes) + 12 x e-acute (24 bytes) + "..." = 33 */
    cr_expect_str_eq(m, "\xef\xbf\xbd\xef\xbf\xbd"
                        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9...");
    cr_expect_leq(strlen(header("__connect.errors.exception.message")), 33);
    cr_expect_leq(strlen(header("__connect.errors.exception.stacktrace")), 33);

    /* 34 bytes would cut an e-acute: the cut moves back to the character boundary */
    info.max_error_bytes = 34;
    cr_assert_eq(hookd_deadletter_headers(&info, &d, hdrs), 0);
    cr_expect_eq(strlen(header("hookd.dlq.error.message")), 33);

    /* default cap: 1024 bytes */
    info.max_error_bytes = 0;
    cr_assert_eq(hookd_deadletter_headers(&info, &d, hdrs), 0);
    cr_expect_leq(strlen(header("hookd.dlq.error.message")), 1024);
    cr_expect_geq(strlen(header("hookd.dlq.error.message")), 1020);

    /* the result value uses the same cap */
    info.max_error_bytes = 33;
    encode();
    cr_expect_str_eq(jstr(json, "error"), m);
}

Test(result, short_message_is_not_marked_cut)
{
    add_run(HOOKD_PHASE_POST, "exec", HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_FAILED, false, 1, 1,
            "exactly-ten");
    fail_at(0, HOOKD_ERRCLASS_HOOK_FAILED);
    info.max_error_bytes = 11;
    cr_assert_eq(hookd_deadletter_headers(&info, &d, hdrs), 0);
    cr_expect_str_eq(header("hookd.dlq.error.message"), "exactly-ten");
    info.max_error_bytes = 10;
    cr_assert_eq(hookd_deadletter_headers(&info, &d, hdrs), 0);
    cr_expect_str_eq(header("hookd.dlq.error.message"), "exactly...");
}

/* ---- the writer's string escaping, byte for byte --------------------------- */

/*
 * The escaping the writer had before it learnt to skip eight ordinary bytes
 * at a time (one byte per turn), kept here as the reference: the output of
 * the result encoder must not change by a byte.
 */
static size_t reference_escape(const char *s, char *out)
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    *o++ = '"';
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        unsigned char c = *u;
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0x0f];
        }
    }
    *o++ = '"';
    *o = '\0';
    return (size_t)(o - out);
}

/*
 * A corpus of strings with a byte that needs escaping (or a UTF-8 one that
 * does not) at every offset of strings up to 40 bytes, in the worker id,
 * the input topic and a handler's error text: each appears in the value
 * exactly as the reference escapes it, and the whole value is what
 * cJSON_PrintUnformatted prints for it (the writer's documented contract).
 */
Test(result, escaping_is_byte_identical_at_every_offset)
{
    static const char *const pieces[] = {"\"",       "\\",           "\b",   "\f",   "\n",
                                         "\r",       "\t",           "\x01", "\x1f", "\x7f",
                                         "\xc3\xa9", "\xe2\x82\xac", "/",    " "};
    char s[96], want[96 * 6 + 8], member[700];

    add_run(HOOKD_PHASE_PRE, "h", HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_FAILED, true, 1, 1500, "");
    d.verdict = HOOKD_VERDICT_COMPLETED;
    for (size_t len = 0; len <= 40; len++) {
        for (size_t at = 0; at <= len; at++) {
            for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
                size_t n = 0;
                char *value, *printed;
                cJSON *tree;
                hookd_headers_t *h;

                snprintf(s, sizeof(s), "%.*s%s%.*s", (int)at,
                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP", pieces[k], (int)(len - at),
                         "0123456789012345678901234567890123456789");
                info.worker_id = s;
                origin.topic = s;
                snprintf(d.runs[0].error, sizeof(d.runs[0].error), "%s", s);
                h = hookd_headers_new();
                cr_assert_not_null(h);
                value = hookd_result_encode(&info, &d, h, &n);
                hookd_headers_destroy(h);
                cr_assert_not_null(value);
                cr_assert_eq(strlen(value), n);
                reference_escape(s, want);
                snprintf(member, sizeof(member), "\"worker_id\":%s", want);
                cr_assert(strstr(value, member) != NULL, "%s not in %s", member, value);
                snprintf(member, sizeof(member), "{\"topic\":%s,", want);
                cr_assert(strstr(value, member) != NULL, "%s not in %s", member, value);
                snprintf(member, sizeof(member), "\"error\":%s}", want);
                cr_assert(strstr(value, member) != NULL, "%s not in %s", member, value);
                tree = cJSON_Parse(value);
                cr_assert_not_null(tree, "%s", value);
                printed = cJSON_PrintUnformatted(tree);
                cr_assert_str_eq(printed, value);
                cJSON_free(printed);
                cJSON_Delete(tree);
                free(value);
            }
        }
    }
}
