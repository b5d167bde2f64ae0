/* SPDX-License-Identifier: MIT */
/*
 * The input-event codec: every corpus file decodes as its folder says, the
 * error messages name the field, limits hold before parsing, and the three
 * wire forms yield the same event.
 */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../schema/corpus.h"
#include "event.h"
#include "event_fields.h"
#include "json.h"

#include <cjson/cJSON.h>

#define EXAMPLES HOOKD_SOURCE_DIR "/schemas/examples"

#define CSR "MIIBADCBpwIBADAbMRkwFwYDVQQDDBBob3N0LmV4YW1wbGUub3Jn"
#define PEM                                                                                        \
    "-----BEGIN CERTIFICATE-----\nMIIBhzCCASygAwIBAgIU\nSMIADIqf4vcW==\n-----END "                 \
    "CERTIFICATE-----\n"
/* the same, as a JSON string body */
#define PEM_JSON                                                                                   \
    "-----BEGIN CERTIFICATE-----\\nMIIBhzCCASygAwIBAgIU\\nSMIADIqf4vcW==\\n"                       \
    "-----END CERTIFICATE-----\\n"
#define REQ_FIELDS "\"certificate_name\":\"cert-1\",\"order_name\":\"order-1\",\"csr\":\"" CSR "\""
#define REQ                                                                                        \
    "{\"type\":\"acme.enrollment.requested\",\"id\":\"ev-1\",\"time\":\"2026-11-26T19:00:"         \
    "00Z\"," REQ_FIELDS "}"

static hookd_event_t ev;
static char err[512];

static void teardown(void)
{
    hookd_event_clear(&ev);
}

TestSuite(event, .fini = teardown);

static hookd_event_err_t decode_str(const char *json)
{
    hookd_event_clear(&ev);
    return hookd_event_decode(json, strlen(json), NULL, 0, NULL, &ev, err, sizeof(err));
}

static hookd_event_err_t decode_bin(const char *value, const hookd_header_t *h, size_t n)
{
    hookd_event_clear(&ev);
    return hookd_event_decode(value, value ? strlen(value) : 0, h, n, NULL, &ev, err, sizeof(err));
}

/* ---- the corpus ------------------------------------------------------------ */

static size_t run_corpus(const char *dir, bool binary, bool want_valid)
{
    size_t count = 0;
    char **files = corpus_list(dir, &count);

    cr_assert_not_null(files, "no corpus files in %s", dir);
    for (char **f = files; *f; f++) {
        corpus_msg_t m;
        char lerr[512];
        hookd_event_err_t e;

        cr_assert_eq(corpus_msg_load(*f, binary, &m, lerr, sizeof(lerr)), 0, "%s", lerr);
        hookd_event_clear(&ev);
        e = hookd_event_decode(m.value, m.len, m.headers, m.header_count, NULL, &ev, err,
                               sizeof(err));
        if (want_valid) {
            cr_expect_eq(e, HOOKD_EVENT_OK, "%s: expected valid, got: %s", *f, err);
            cr_expect_lt((unsigned)ev.type, HOOKD_EVENT_TYPE_COUNT, "%s", *f);
            cr_expect_not_null(ev.id, "%s", *f);
            cr_expect_not_null(ev.csr, "%s", *f);
        } else {
            cr_expect_neq(e, HOOKD_EVENT_OK, "%s: expected invalid, decoded fine", *f);
            cr_expect_neq(err[0], '\0', "%s: no reason given", *f);
        }
        corpus_msg_free(&m);
    }
    corpus_list_free(files);
    return count;
}

Test(event, corpus_plain_and_structured_valid)
{
    cr_assert_geq(run_corpus(EXAMPLES "/input/valid", false, true), 20);
}

Test(event, corpus_plain_and_structured_invalid)
{
    cr_assert_geq(run_corpus(EXAMPLES "/input/invalid", false, false), 50);
}

Test(event, corpus_binary_valid)
{
    cr_assert_geq(run_corpus(EXAMPLES "/input-binary/valid", true, true), 5);
}

Test(event, corpus_binary_invalid)
{
    cr_assert_geq(run_corpus(EXAMPLES "/input-binary/invalid", true, false), 15);
}

/* ---- targeted messages ----------------------------------------------------- */

static const struct {
    const char *json;
    hookd_event_err_t code;
    const char *message; /* exact */
} cases[] = {
    {"{\"type\":\"acme.enrollment.requested\",\"id\":\"e\",\"time\":\"2026-11-26T19:00:00Z\","
     "\"certificate_name\":\"c\",\"order_name\":\"o\",\"csr\":\"not base64!\"}",
     HOOKD_EVENT_ERR_SCHEMA, "field 'csr': not base64 (RFC 4648 alphabet, padded, no whitespace)"},
    {"{\"type\":\"acme.enrollment.requested\",\"id\":\"e\",\"time\":\"2026-11-26T19:00:00Z\","
     "\"certificate_name\":\"c\",\"csr\":\"" CSR "\"}",
     HOOKD_EVENT_ERR_SCHEMA, "missing field 'order_name'"},
    {"{\"type\":\"x\",\"id\":\"e\",\"time\":\"2026-11-26T19:00:00Z\"}", HOOKD_EVENT_ERR_SCHEMA,
     "unknown event type 'x'"},
    {"{\"type\":\"acme.enrollment.requested\",\"id\":\"e\",\"time\":\"2026-11-26T19:00:"
     "00Z\"," REQ_FIELDS ",\"colour\":\"red\"}",
     HOOKD_EVENT_ERR_SCHEMA, "unknown field 'colour' for type acme.enrollment.requested"},
    {"{\"type\":\"acme.enrollment.issued\",\"id\":\"e\",\"time\":\"2026-11-26T19:00:"
     "00Z\"," REQ_FIELDS ",\"certificate\":\"hello\",\"certificate_raw\":\"" CSR "\"}",
     HOOKD_EVENT_ERR_SCHEMA, "field 'certificate': not a PEM certificate chain"},
    {"{\"type\":\"acme.enrollment.failed\",\"id\":\"e\",\"time\":\"2026-11-26T19:00:"
     "00Z\"," REQ_FIELDS ",\"error\":null}",
     HOOKD_EVENT_ERR_SCHEMA, "field 'error': not a string"},
    {"{\"type\":\"acme.enrollment.requested\",\"id\":\"e\",\"time\":\"2026-02-29T19:00:"
     "00Z\"," REQ_FIELDS "}",
     HOOKD_EVENT_ERR_SCHEMA, "field 'time': not an RFC 3339 date-time"},
    {"{\"type\":\"acme.enrollment.requested\",\"id\":\"\",\"time\":\"2026-11-26T19:00:"
     "00Z\"," REQ_FIELDS "}",
     HOOKD_EVENT_ERR_SCHEMA, "field 'id': empty"},
    {"{\"specversion\":\"0.3\",\"id\":\"e\"}", HOOKD_EVENT_ERR_SCHEMA,
     "attribute 'specversion': must be \"1.0\""},
    {"{\"specversion\":\"1.0\",\"id\":\"e\",\"type\":\"acme.enrollment.requested\","
     "\"time\":\"2026-11-26T19:00:00Z\",\"data\":{}}",
     HOOKD_EVENT_ERR_SCHEMA, "missing attribute 'source'"},
    {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/"
     "s\",\"type\":\"acme.enrollment.requested\","
     "\"time\":\"2026-11-26T19:00:00Z\",\"data\":{\"certificate_name\":\"c\",\"order_name\":\"o\","
     "\"csr\":\"Q\"}}",
     HOOKD_EVENT_ERR_SCHEMA,
     "field 'data.csr': not base64 (RFC 4648 alphabet, padded, no whitespace)"},
    {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/"
     "s\",\"type\":\"acme.enrollment.requested\","
     "\"time\":\"2026-11-26T19:00:00Z\",\"Trace\":\"x\",\"data\":{}}",
     HOOKD_EVENT_ERR_SCHEMA,
     "attribute 'Trace': not a CloudEvents attribute name (1-20 of a-z, 0-9)"},
    {"[1,2]", HOOKD_EVENT_ERR_SCHEMA, "event is not a JSON object"},
    {"{\"a\":01}", HOOKD_EVENT_ERR_PARSE, "event is not JSON: expected ',' or '}' at byte 6"},
    {"{\"a\":1.}", HOOKD_EVENT_ERR_PARSE, "event is not JSON: malformed number at byte 7"},
    {"{\"a\":\"\\ud800\"}", HOOKD_EVENT_ERR_PARSE,
     "event is not JSON: lone UTF-16 surrogate in a \\u escape at byte 6"},
    {"{\"id\":\"a\",\"id\":\"b\"}", HOOKD_EVENT_ERR_PARSE, "duplicate field 'id'"},
    {"{\"type\":\"acme.enrollment.requested\",\"id\":\"e\",\"time\":\"2026-11-26T19:00:00Z\","
     "\"certificate_name\":\"a\\u0000b\",\"order_name\":\"o\",\"csr\":\"" CSR "\"}",
     HOOKD_EVENT_ERR_SCHEMA, "a string holds a NUL character (\\u0000)"},
};

Test(event, error_messages_name_the_field)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hookd_event_err_t e = decode_str(cases[i].json);
        cr_expect_eq(e, cases[i].code, "case %zu: code %d, want %d (%s)", i, e, cases[i].code, err);
        cr_expect_str_eq(err, cases[i].message, "case %zu: got '%s'", i, err);
    }
}

Test(event, unknown_type_is_quoted_safely)
{
    char json[600];
    snprintf(json, sizeof(json),
             "{\"type\":\"evil\\n\\u0007%0200d\",\"id\":\"e\",\"time\":\"2026-11-26T19:00:00Z\"}",
             7);
    cr_assert_eq(decode_str(json), HOOKD_EVENT_ERR_SCHEMA);
    cr_expect_eq(strncmp(err, "unknown event type 'evil??000", 29), 0, "%s", err);
    cr_expect_not_null(strstr(err, "...'"), "long value not shortened: %s", err);
    cr_expect_null(strchr(err, '\n'));
}

/* ---- success: what the event holds --------------------------------------- */

Test(event, plain_fields)
{
    cr_assert_eq(decode_str("{\"type\":\"acme.enrollment.issued\",\"id\":\"ev-9\",\"time\":"
                            "\"2026-11-26T19:00:00Z\"," REQ_FIELDS ",\"certificate\":\"" PEM_JSON
                            "\",\"certificate_raw\":\"QQ==\",\"poll_identifier\":null}"),
                 HOOKD_EVENT_OK, "%s", err);
    cr_expect_eq(ev.type, HOOKD_EVENT_ISSUED);
    cr_expect_eq(ev.format, HOOKD_FORMAT_PLAIN);
    cr_expect_str_eq(ev.id, "ev-9");
    cr_expect_str_eq(ev.time, "2026-11-26T19:00:00Z");
    cr_expect_null(ev.source);
    cr_expect_str_eq(ev.certificate_name, "cert-1");
    cr_expect_str_eq(ev.order_name, "order-1");
    cr_expect_str_eq(ev.csr, CSR);
    cr_expect_str_eq(ev.certificate, PEM);
    cr_expect_str_eq(ev.certificate_raw, "QQ==");
    cr_expect_null(ev.poll_identifier);
    cr_expect_null(ev.error);
}

Test(event, three_forms_same_event)
{
    const char *structured =
        "{\"specversion\":\"1.0\",\"id\":\"ev-1\",\"source\":\"urn:a2c:1\","
        "\"type\":\"acme.enrollment.failed\",\"time\":\"2026-11-26T19:00:00Z\","
        "\"datacontenttype\":\"application/json\",\"traceparent\":\"00-ab\",\"data\":{" REQ_FIELDS
        ",\"error\":\"ca down\"}}";
    const char *value = "{" REQ_FIELDS ",\"error\":\"ca down\"}";
    hookd_header_t h[] = {
        {"ce_specversion", "1.0", 3},
        {"ce_id", "ev-1", 4},
        {"ce_source", "urn:a2c:1", 9},
        {"ce_type", "acme.enrollment.failed", 22},
        {"ce_time", "2026-11-26T19:00:00Z", 20},
        {"content-type", "application/json", 16},
        {"ce_traceparent", "00-ab", 5},
        {"unrelated", "\xff\xfe", 2}, /* not part of the event: not even checked */
    };

    cr_assert_eq(decode_str(structured), HOOKD_EVENT_OK, "%s", err);
    cr_expect_eq(ev.format, HOOKD_FORMAT_CE_STRUCTURED);
    cr_expect_eq(ev.type, HOOKD_EVENT_FAILED);
    cr_expect_str_eq(ev.source, "urn:a2c:1");
    cr_expect_str_eq(ev.error, "ca down");
    cr_expect_str_eq(ev.order_name, "order-1");

    cr_assert_eq(decode_bin(value, h, sizeof(h) / sizeof(h[0])), HOOKD_EVENT_OK, "%s", err);
    cr_expect_eq(ev.format, HOOKD_FORMAT_CE_BINARY);
    cr_expect_eq(ev.type, HOOKD_EVENT_FAILED);
    cr_expect_str_eq(ev.id, "ev-1");
    cr_expect_str_eq(ev.time, "2026-11-26T19:00:00Z");
    cr_expect_str_eq(ev.source, "urn:a2c:1");
    cr_expect_str_eq(ev.error, "ca down");
    cr_expect_str_eq(ev.csr, CSR);

    /* the same value without ce_specversion is not binary mode: it lacks type/id/time */
    cr_expect_eq(decode_bin(value, h + 1, 5), HOOKD_EVENT_ERR_SCHEMA);
    cr_expect_str_eq(err, "missing field 'type'");
}

/* ---- binary mode errors ----------------------------------------------------- */

Test(event, binary_header_errors)
{
    const char *value = "{" REQ_FIELDS "}";
    hookd_header_t h[] = {
        {"ce_specversion", "1.0", 3},
        {"ce_id", "ev-1", 4},
        {"ce_source", "/s", 2},
        {"ce_type", "acme.enrollment.requested", 25},
        {"ce_time", "2026-11-26T19:00:00Z", 20},
        {"ce_id", "ev-2", 4},
    };

    cr_assert_eq(decode_bin(value, h, 5), HOOKD_EVENT_OK, "%s", err);

    cr_expect_eq(decode_bin(value, h, 6), HOOKD_EVENT_ERR_PARSE);
    cr_expect_str_eq(err, "duplicate header 'ce_id'");

    h[2].value = "/s\xc0\xaf"; /* overlong '/' */
    h[2].len = 4;
    cr_expect_eq(decode_bin(value, h, 5), HOOKD_EVENT_ERR_PARSE);
    cr_expect_str_eq(err, "header 'ce_source' is not valid UTF-8 (byte 2)");
    cr_expect_str_eq(ev.id, "ev-1", "the id is kept from ce_id");

    h[2].value = "a\0b"; /* a NUL inside a header value */
    h[2].len = 3;
    cr_expect_eq(decode_bin(value, h, 5), HOOKD_EVENT_ERR_SCHEMA);
    cr_expect_str_eq(err, "a string holds a NUL character (\\u0000)");

    h[2].value = NULL; /* a null header */
    h[2].len = 0;
    cr_expect_eq(decode_bin(value, h, 5), HOOKD_EVENT_ERR_SCHEMA);
    cr_expect_str_eq(err, "header 'ce_source': not a string");

    h[2].value = "/s";
    h[2].len = 2;
    h[3].value = "acme.enrollment.issued";
    h[3].len = 22;
    cr_expect_eq(decode_bin(value, h, 5), HOOKD_EVENT_ERR_SCHEMA);
    cr_expect_str_eq(err, "missing field 'certificate'");
    cr_expect_eq(ev.type, HOOKD_EVENT_ISSUED, "type kept on error");
    cr_expect_str_eq(ev.order_name, "order-1", "order name kept on error");

    cr_expect_eq(decode_bin("{\"csr\":", h, 5), HOOKD_EVENT_ERR_PARSE);
    cr_expect_str_eq(err, "value is not JSON: unexpected end of input at byte 7");
    cr_expect_str_eq(ev.id, "ev-1");
}

/* ---- limits ---------------------------------------------------------------- */

Test(event, event_limit_is_checked_before_parsing)
{
    hookd_limits_t lim = {64, 1024};
    char junk[100];
    hookd_header_t h[] = {{"ce_specversion", "1.0", 3}, {"ce_id", "big-1", 5}};

    memset(junk, '{', sizeof(junk)); /* would be a parse error if it were parsed */
    cr_expect_eq(hookd_event_decode(junk, sizeof(junk), NULL, 0, &lim, &ev, err, sizeof(err)),
                 HOOKD_EVENT_ERR_TOO_LARGE);
    cr_expect_str_eq(err, "event is 100 bytes, limit 64");
    cr_expect_null(ev.id);
    hookd_event_clear(&ev);

    /* headers count toward the size; the id is still read from ce_id */
    cr_expect_eq(hookd_event_decode(junk, 50, h, 2, &lim, &ev, err, sizeof(err)),
                 HOOKD_EVENT_ERR_TOO_LARGE);
    cr_expect_str_eq(err, "event is 77 bytes, limit 64");
    cr_expect_str_eq(ev.id, "big-1");
}

Test(event, default_event_limit)
{
    size_t n = HOOKD_DEFAULT_MAX_EVENT_BYTES + 1;
    char *big = malloc(n);

    cr_assert_not_null(big);
    memset(big, ' ', n);
    cr_expect_eq(hookd_event_decode(big, n, NULL, 0, NULL, &ev, err, sizeof(err)),
                 HOOKD_EVENT_ERR_TOO_LARGE);
    cr_expect_eq(hookd_event_decode(big, n - 1, NULL, 0, NULL, &ev, err, sizeof(err)),
                 HOOKD_EVENT_ERR_PARSE, "at the limit it is parsed: %s", err);
    free(big);
}

Test(event, field_limit_counts_characters)
{
    hookd_limits_t lim = {1 << 20, 24};
    char json[512];

    /* 24 characters of 2 bytes each (48 bytes): within a limit of 24 */
    snprintf(
        json, sizeof(json),
        "{\"type\":\"acme.enrollment.requested\",\"id\":\"e\",\"time\":\"2026-11-26T19:00:00Z\","
        "\"certificate_name\":\"%s\",\"order_name\":\"o\",\"csr\":\"QUJD\"}",
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    cr_expect_eq(hookd_event_decode(json, strlen(json), NULL, 0, &lim, &ev, err, sizeof(err)),
                 HOOKD_EVENT_OK, "%s", err);
    hookd_event_clear(&ev);

    snprintf(
        json, sizeof(json),
        "{\"type\":\"acme.enrollment.requested\",\"id\":\"e\",\"time\":\"2026-11-26T19:00:00Z\","
        "\"certificate_name\":\"c\",\"order_name\":\"o\",\"csr\":"
        "\"QUJDQUJDQUJDQUJDQUJDQUJDQUJD\"}");
    cr_expect_eq(hookd_event_decode(json, strlen(json), NULL, 0, &lim, &ev, err, sizeof(err)),
                 HOOKD_EVENT_ERR_TOO_LARGE);
    cr_expect_str_eq(err, "field 'csr': 28 characters, limit 24");
    cr_expect_str_eq(ev.id, "e", "the id is kept");
}

/* ---- robustness ------------------------------------------------------------ */

Test(event, utf8_is_checked)
{
    static const char *bad[] = {
        "{\"id\":\"\xff\"}",             /* invalid byte */
        "{\"id\":\"\xc0\xaf\"}",         /* overlong */
        "{\"id\":\"\xed\xa0\x80\"}",     /* encoded surrogate */
        "{\"id\":\"\xf4\x90\x80\x80\"}", /* > U+10FFFF */
        "{\"id\":\"\xe2\x82\"}",         /* truncated sequence */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(decode_str(bad[i]), HOOKD_EVENT_ERR_PARSE, "case %zu", i);
        cr_expect_eq(strncmp(err, "event is not valid UTF-8 (byte 7)", 33), 0, "case %zu: %s", i,
                     err);
    }
}

Test(event, deep_nesting_is_refused)
{
    size_t depth = 100000;
    char *s = malloc(2 * depth + 1);

    cr_assert_not_null(s);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    cr_expect_eq(decode_str(s), HOOKD_EVENT_ERR_PARSE);
    cr_expect_not_null(strstr(err, "nested too deeply"), "%s", err);
    free(s);
}

Test(event, many_duplicate_members)
{
    /* 100k members: refused without quadratic work, the duplicate named */
    size_t n = 100000, o = 0;
    char *s = malloc(n * 10 + 16);

    cr_assert_not_null(s);
    s[o++] = '{';
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(s + o, "%s\"id\":\"x\"", i ? "," : "");
    s[o++] = '}';
    s[o] = '\0';
    cr_expect_eq(decode_str(s), HOOKD_EVENT_ERR_PARSE);
    cr_expect_str_eq(err, "duplicate field 'id'");
    free(s);
}

Test(event, duplicate_in_data)
{
    cr_expect_eq(decode_str("{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/s\",\"type\":"
                            "\"acme.enrollment.requested\",\"time\":\"2026-11-26T19:00:00Z\","
                            "\"data\":{" REQ_FIELDS ",\"csr\":\"QUJD\"}}"),
                 HOOKD_EVENT_ERR_PARSE);
    cr_expect_str_eq(err, "duplicate field 'data.csr'");
    cr_expect_str_eq(ev.id, "e");
}

Test(event, null_and_empty_input)
{
    cr_expect_eq(hookd_event_decode(NULL, 0, NULL, 0, NULL, &ev, err, sizeof(err)),
                 HOOKD_EVENT_ERR_PARSE);
    cr_expect_str_eq(err, "event is not JSON: unexpected end of input at byte 0");
    hookd_event_clear(&ev);
    hookd_event_clear(&ev); /* twice is harmless */
    cr_expect_eq(ev.type, HOOKD_EVENT_TYPE_COUNT);
}

Test(event, tiny_errstr_is_safe)
{
    char small[8];
    cr_expect_eq(hookd_event_decode("{}", 2, NULL, 0, NULL, &ev, small, sizeof(small)),
                 HOOKD_EVENT_ERR_SCHEMA);
    cr_expect_str_eq(small, "missing");
    hookd_event_clear(&ev);
    cr_expect_eq(hookd_event_decode("{}", 2, NULL, 0, NULL, &ev, NULL, 0), HOOKD_EVENT_ERR_SCHEMA);
}

Test(event, id_is_kept_on_error_unless_unsafe)
{
    cr_expect_eq(decode_str("{\"type\":\"acme.enrollment.requested\",\"id\":\"keep-me\"}"),
                 HOOKD_EVENT_ERR_SCHEMA);
    cr_expect_str_eq(ev.id, "keep-me");
    cr_expect_eq(ev.type, HOOKD_EVENT_REQUESTED);

    cr_expect_eq(decode_str("{\"type\":\"nope\",\"id\":\"k2\"}"), HOOKD_EVENT_ERR_SCHEMA);
    cr_expect_str_eq(ev.id, "k2");
    cr_expect_eq(ev.type, HOOKD_EVENT_TYPE_COUNT, "unknown type stays unknown");

    cr_expect_eq(decode_str("{\"id\":42}"), HOOKD_EVENT_ERR_SCHEMA);
    cr_expect_null(ev.id);

    /* a NUL may have cut any string: nothing is kept */
    cr_expect_eq(decode_str("{\"id\":\"a\\u0000b\"}"), HOOKD_EVENT_ERR_SCHEMA);
    cr_expect_null(ev.id);
}

Test(event, names)
{
    cr_expect_str_eq(hookd_event_type_name(HOOKD_EVENT_REQUESTED), "acme.enrollment.requested");
    cr_expect_str_eq(hookd_event_type_name(HOOKD_EVENT_ISSUED), "acme.enrollment.issued");
    cr_expect_str_eq(hookd_event_type_name(HOOKD_EVENT_FAILED), "acme.enrollment.failed");
    cr_expect_str_eq(hookd_event_type_name(HOOKD_EVENT_TYPE_COUNT), "unknown");
    cr_expect_str_eq(hookd_event_format_name(HOOKD_FORMAT_PLAIN), "plain");
    cr_expect_str_eq(hookd_event_format_name(HOOKD_FORMAT_CE_STRUCTURED), "cloudevents-structured");
    cr_expect_str_eq(hookd_event_format_name(HOOKD_FORMAT_CE_BINARY), "cloudevents-binary");
}

/* ---- the decoder's JSON parser against cJSON's ----------------------------- */

/* Accepted, and the tree is the one cJSON_Parse builds (printed alike). */
static void same_tree(const char *json)
{
    bool nul = true;
    char why[256] = "";
    cJSON *mine = hookd_json_parse(json, strlen(json), &nul, why, sizeof(why));
    cJSON *ref = cJSON_Parse(json);
    char *a, *b;

    cr_assert_not_null(mine, "refused %s: %s", json, why);
    cr_assert_not_null(ref, "cJSON refused %s", json);
    cr_assert_not(nul, "%s", json);
    a = cJSON_PrintUnformatted(mine);
    b = cJSON_PrintUnformatted(ref);
    cr_assert_str_eq(a, b, "%s", json);
    cJSON_free(a);
    cJSON_free(b);
    cJSON_Delete(mine);
    cJSON_Delete(ref);
}

static void refused(const char *json, const char *reason)
{
    bool nul = false;
    char why[256] = "";
    cJSON *mine = hookd_json_parse(json, strlen(json), &nul, why, sizeof(why));
    cr_assert_null(mine, "accepted %s", json);
    cr_assert(strstr(why, reason) != NULL, "%s: '%s' does not say '%s'", json, why, reason);
}

Test(json, builds_cjson_tree)
{
    same_tree("{}");
    same_tree("[]");
    same_tree(" { \"a\" : [ 1 , -0 , 2.5e-3 , 1E+5 , -12.75 ] , \"b\" : { } } ");
    same_tree("{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}");
    same_tree("{\"e\":\"caf\\u00e9 \\u20ac \\ud83d\\ude00 \\u0041\"}");
    same_tree("{\"utf8\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}");
    same_tree("{\"dup\":1,\"dup\":2,\"x\":[true,false,null]}");
    same_tree("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    same_tree("\"just a string\"");
    same_tree("123456789012345678901234567890");
}

Test(json, refuses_what_cjson_lets_through)
{
    refused("01", "trailing data");
    refused("1.", "malformed number");
    refused("[1,]", "unexpected character");
    refused("{\"a\":1,}", "expected a member name");
    refused("{\"a\":\"x\ty\"}", "control character");
    refused("{\"a\":\"\\ud800\"}", "lone UTF-16 surrogate");
    refused("{\"a\":\"\\x\"}", "invalid escape");
    refused("{\"a\":1} x", "trailing data");
    {
        /* 33 levels of containers pass (the 32 above), the 34th does not */
        char deep[80];
        memset(deep, '[', 34);
        memset(deep + 34, ']', 34);
        deep[68] = '\0';
        refused(deep, "nested too deeply");
        deep[33] = ']';
        memmove(deep + 33, deep + 35, 34);
        same_tree(deep);
    }
    refused("{\"a\":\"\xc3\x28\"}", "not valid UTF-8");
}

Test(json, reports_nul)
{
    bool nul = false;
    char why[256];
    cJSON *t = hookd_json_parse("{\"a\":\"x\\u0000y\"}", 16, &nul, why, sizeof(why));
    cr_assert_not_null(t);
    cr_assert(nul);
    cr_assert_str_eq(cJSON_GetObjectItem(t, "a")->valuestring, "x");
    cJSON_Delete(t);
}

/* ---- the decoder's limits: the largest accepted, the smallest refused ------ */

/* `levels` nested arrays: [[[...]]] */
static char *nested(size_t levels)
{
    char *s = malloc(2 * levels + 1);
    cr_assert_not_null(s);
    memset(s, '[', levels);
    memset(s + levels, ']', levels);
    s[2 * levels] = '\0';
    return s;
}

Test(event, nesting_limit_is_33_levels)
{
    char *ok = nested(33), *bad = nested(34);
    bool nul = false;
    struct cJSON *t = hookd_json_parse(ok, strlen(ok), &nul, err, sizeof(err));

    cr_expect_not_null(t, "33 levels are parsed: %s", err);
    cJSON_Delete(t);
    cr_expect_null(hookd_json_parse(bad, strlen(bad), &nul, err, sizeof(err)));
    cr_expect_not_null(strstr(err, "nested too deeply"), "%s", err);
    /* the same limit inside an event, through the decoder */
    cr_expect_eq(decode_str(bad), HOOKD_EVENT_ERR_PARSE);
    cr_expect_not_null(strstr(err, "nested too deeply"), "%s", err);
    free(ok);
    free(bad);
}

Test(event, field_limit_exact)
{
    hookd_limits_t lim = {1 << 20, 32};
    char json[512];

    /* csr of exactly 32 characters: accepted; 36 (the next base64 length): refused */
    snprintf(
        json, sizeof(json),
        "{\"type\":\"acme.enrollment.requested\",\"id\":\"e\",\"time\":\"2026-11-26T19:00:00Z\","
        "\"certificate_name\":\"c\",\"order_name\":\"o\",\"csr\":\"%s\"}",
        "QUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJD");
    cr_expect_eq(hookd_event_decode(json, strlen(json), NULL, 0, &lim, &ev, err, sizeof(err)),
                 HOOKD_EVENT_OK, "%s", err);
    hookd_event_clear(&ev);
    /* a text field of 33 characters: one over */
    snprintf(
        json, sizeof(json),
        "{\"type\":\"acme.enrollment.requested\",\"id\":\"e\",\"time\":\"2026-11-26T19:00:00Z\","
        "\"certificate_name\":\"%s\",\"order_name\":\"o\",\"csr\":\"QUJD\"}",
        "ccccccccccccccccccccccccccccccccc");
    cr_expect_eq(hookd_event_decode(json, strlen(json), NULL, 0, &lim, &ev, err, sizeof(err)),
                 HOOKD_EVENT_ERR_TOO_LARGE);
    cr_expect_str_eq(err, "field 'certificate_name': 33 characters, limit 32");
}

Test(event, event_limit_exact)
{
    hookd_limits_t lim = {1024, 256};
    char big[1025];

    memset(big, ' ', sizeof(big));
    /* 1024 bytes are parsed (and refused as not JSON); 1025 are too large */
    cr_expect_eq(hookd_event_decode(big, 1024, NULL, 0, &lim, &ev, err, sizeof(err)),
                 HOOKD_EVENT_ERR_PARSE, "%s", err);
    hookd_event_clear(&ev);
    cr_expect_eq(hookd_event_decode(big, 1025, NULL, 0, &lim, &ev, err, sizeof(err)),
                 HOOKD_EVENT_ERR_TOO_LARGE);
    cr_expect_str_eq(err, "event is 1025 bytes, limit 1024");
}

Test(event, default_event_limit_below_producer_limit)
{
    /* librdkafka's default message.max.bytes: an event at the limit leaves
     * room for the dead-letter context headers */
    cr_expect_leq(HOOKD_DEFAULT_MAX_EVENT_BYTES + 16 * 1024, 1000000);
}

/*
 * Binary mode: the CloudEvents envelope has at most 64 members, `data`
 * included, so 63 ce_ headers are accepted and 64 refused. Other headers
 * (tracing and the like) are not attributes and only count toward the size.
 */
static size_t ce_headers(hookd_header_t *h, char names[][32], size_t total)
{
    static const hookd_header_t base[] = {
        {"ce_specversion", "1.0", 3},
        {"ce_id", "ev-1", 4},
        {"ce_source", "/s", 2},
        {"ce_type", "acme.enrollment.requested", 25},
        {"ce_time", "2026-11-26T19:00:00Z", 20},
    };
    size_t n = 0;
    for (; n < 5; n++)
        h[n] = base[n];
    for (size_t i = 0; n < total; n++, i++) {
        snprintf(names[i], 32, "ce_x%zu", i);
        h[n].name = names[i];
        h[n].value = "v";
        h[n].len = 1;
    }
    return n;
}

Test(event, cloudevents_attribute_limit_exact)
{
    hookd_header_t h[200];
    char names[200][32];
    const char *value = "{" REQ_FIELDS "}";

    cr_expect_eq(decode_bin(value, h, ce_headers(h, names, 63)), HOOKD_EVENT_OK, "%s", err);
    cr_expect_eq(decode_bin(value, h, ce_headers(h, names, 64)), HOOKD_EVENT_ERR_SCHEMA);
    cr_expect_str_eq(err, "65 CloudEvents attributes, limit 64");

    /* 150 headers that are not ce_ ones: no attribute, accepted */
    for (size_t i = 0; i < 150; i++) {
        snprintf(names[i], 32, "trace-%zu", i);
        h[5 + i].name = names[i];
        h[5 + i].value = "t";
        h[5 + i].len = 1;
    }
    cr_expect_eq(decode_bin(value, h, 155), HOOKD_EVENT_OK, "%s", err);
}

/* ---- word-at-a-time scans: a byte that matters, at every offset ---------- */

/*
 * The string scan skips ordinary bytes sixteen or eight at a time: whatever
 * falls inside or across a block (escapes, UTF-8, control characters, the
 * closing quote) must come out as cJSON reads it, at every offset of
 * strings up to 56 bytes, around the block boundaries.
 */
Test(json, string_scan_sees_every_offset)
{
    static const char *const pieces[] = {
        "\\\"",     "\\\\",         "\\/",  "\\n", "\\u0041", "\\ud83d\\ude00",
        "\xc3\xa9", "\xe2\x82\xac", "\x7f", " ",   "~",       "#"};
    char body[160], json[400];

    for (size_t len = 0; len <= 56; len++) {
        for (size_t at = 0; at <= len; at++) {
            for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
                snprintf(body, sizeof(body), "%.*s%s%.*s", (int)at,
                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", pieces[k],
                         (int)(len - at),
                         "01234567890123456789012345678901234567890123456789012345");
                snprintf(json, sizeof(json), "{\"k\":\"%s\",\"n\":[\"%s\"]}", body, body);
                same_tree(json);
            }
            /* a raw control character is refused wherever it is */
            snprintf(body, sizeof(body), "%.*s\x01%.*s", (int)at,
                     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", (int)(len - at),
                     "01234567890123456789012345678901234567890123456789012345");
            snprintf(json, sizeof(json), "{\"k\":\"%s\"}", body);
            refused(json, "control character");
            /* and a string cut short is unterminated wherever it ends */
            snprintf(json, sizeof(json), "{\"k\":\"%.*s", (int)len,
                     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456");
            refused(json, "unterminated string");
        }
    }
}

/* The base64 check tests sixteen or eight bytes at a time: a bad byte at any offset is seen. */
Test(event, base64_check_sees_every_offset)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    /* outside the alphabet, and each range's neighbours (the vector test
     * compares ranges) */
    static const char bad[] = {'-', '_', '=', ' ', '.', '\x7f', '@', '[', '`', '{', ':', '*', ','};
    char csr[80], json[256];

    for (size_t len = 4; len <= 72; len += 4) {
        for (size_t i = 0; i < len; i++)
            csr[i] = alphabet[(i * 7 + len) % 64];
        csr[len] = '\0';
        snprintf(json, sizeof(json),
                 "{\"type\":\"acme.enrollment.requested\",\"id\":\"e\",\"time\":"
                 "\"2026-01-01T00:00:00Z\",\"certificate_name\":\"c\",\"order_name\":\"o\","
                 "\"csr\":\"%s\"}",
                 csr);
        cr_assert_eq(decode_str(json), HOOKD_EVENT_OK, "len %zu: %s", len, err);
        hookd_event_clear(&ev);
        for (size_t at = 0; at + 2 < len; at++) {
            for (size_t b = 0; b < sizeof(bad); b++) {
                char saved = csr[at];
                csr[at] = bad[b];
                snprintf(json, sizeof(json),
                         "{\"type\":\"acme.enrollment.requested\",\"id\":\"e\",\"time\":"
                         "\"2026-01-01T00:00:00Z\",\"certificate_name\":\"c\",\"order_name\":"
                         "\"o\",\"csr\":\"%s\"}",
                         csr);
                cr_assert_eq(decode_str(json), HOOKD_EVENT_ERR_SCHEMA, "len %zu, 0x%02x at %zu",
                             len, (unsigned char)bad[b], at);
                cr_assert(strstr(err, "not base64") != NULL, "%s", err);
                hookd_event_clear(&ev);
                csr[at] = saved;
            }
        }
    }
}

/* The byte-loop answers the vector scans must give. */
static size_t plain_run_model(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\')
        i++;
    return i;
}

static size_t ascii_run_model(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] < 0x80)
        i++;
    return i;
}

/*
 * hookd_json_plain_run and hookd_json_ascii_run (sixteen bytes at a time
 * with SSE2, then eight, then one) against a byte loop: every length up to
 * 100, five start alignments, one odd byte at every offset, and random
 * buffers mixing the bytes on both sides of each boundary.
 */
Test(json, vector_scans_match_a_byte_loop)
{
    static const unsigned char edge[] = {0x00, 0x1f, 0x20, 0x21, '"',  0x23, 0x5b,
                                         '\\', 0x5d, 0x7f, 0x80, 0xc3, 0xff};
    unsigned char buf[128];
    unsigned seed = 7;

    /* start alignments: none, one byte, either side of eight, the last of sixteen */
    static const size_t shifts[] = {0, 1, 7, 8, 15};

    for (size_t k = 0; k < sizeof(shifts) / sizeof(shifts[0]); k++) {
        size_t shift = shifts[k];
        unsigned char *p = buf + shift;
        for (size_t n = 0; n <= 100 && shift + n <= sizeof(buf); n++) {
            memset(p, 'A', n);
            cr_assert_eq(hookd_json_plain_run(p, n), n);
            cr_assert_eq(hookd_json_ascii_run(p, n), n);
            for (size_t at = 0; at < n; at++) {
                for (size_t e = 0; e < sizeof(edge); e++) {
                    p[at] = edge[e];
                    cr_assert_eq(hookd_json_plain_run(p, n), plain_run_model(p, n),
                                 "n %zu, 0x%02x at %zu", n, edge[e], at);
                    cr_assert_eq(hookd_json_ascii_run(p, n), ascii_run_model(p, n),
                                 "n %zu, 0x%02x at %zu", n, edge[e], at);
                }
                p[at] = 'A';
            }
            for (int r = 0; r < 10; r++) {
                for (size_t i = 0; i < n; i++)
                    p[i] = rand_r(&seed) % 8 == 0 ? edge[rand_r(&seed) % sizeof(edge)]
                                                  : (unsigned char)(0x20 + rand_r(&seed) % 0x5f);
                cr_assert_eq(hookd_json_plain_run(p, n), plain_run_model(p, n));
                cr_assert_eq(hookd_json_ascii_run(p, n), ascii_run_model(p, n));
            }
        }
    }
}

/* UTF-8 validation skips ASCII a vector at a time: a bad byte at any offset is found there. */
Test(json, utf8_check_sees_every_offset)
{
    unsigned char buf[80];

    for (size_t n = 1; n <= 70; n++) {
        for (size_t at = 0; at < n; at++) {
            size_t bad_at = 12345;
            memset(buf, 'x', n);
            buf[at] = 0x80; /* a continuation byte with no lead */
            cr_assert_not(hookd_json_utf8_valid(buf, n, &bad_at), "n %zu at %zu", n, at);
            cr_assert_eq(bad_at, at, "n %zu", n);
            if (at + 1 < n) {
                buf[at] = 0xc3, buf[at + 1] = 0xa9; /* é */
                cr_assert(hookd_json_utf8_valid(buf, n, NULL), "n %zu at %zu", n, at);
            }
        }
    }
}

/* ---- the fast path against the tree ----------------------------------------- */

/*
 * Decode `value` (plain form, no headers) once by each road and compare
 * everything the caller sees: the answer, the reason, every field.
 * Returns whether the fast road took it.
 */
static bool same_both_ways(const void *value, size_t len, const hookd_limits_t *lim,
                           const char *what)
{
    hookd_event_t a, b;
    char ea[512], eb[512];
    hookd_event_err_t ra, rb;
    size_t before = hookd_event_fast_decodes();
    bool fast;

    hookd_event_set_fast_path(true);
    ra = hookd_event_decode(value, len, NULL, 0, lim, &a, ea, sizeof(ea));
    fast = hookd_event_fast_decodes() > before;
    hookd_event_set_fast_path(false);
    rb = hookd_event_decode(value, len, NULL, 0, lim, &b, eb, sizeof(eb));
    hookd_event_set_fast_path(true);
    cr_expect_eq(hookd_event_fast_decodes(), before + fast, "%s: the tree's road went fast", what);

    cr_expect_eq(ra, rb, "%s: %d fast, %d by the tree (%s)", what, ra, rb, eb);
    cr_expect_str_eq(ea, eb, "%s", what);
    cr_expect(!fast || ra == HOOKD_EVENT_OK, "%s: the fast road refused", what);
    if (ra == HOOKD_EVENT_OK && rb == HOOKD_EVENT_OK) {
        cr_expect_eq(a.type, b.type, "%s", what);
        cr_expect_eq(a.format, b.format, "%s", what);
    }
    for (size_t i = 0; i < EVENT_FIELD_COUNT; i++) {
        const char *x = event_field(&a, i), *y = event_field(&b, i);
        cr_expect((x == NULL) == (y == NULL) && (x == NULL || strcmp(x, y) == 0),
                  "%s: field at %zu: '%s' fast, '%s' by the tree", what, event_field_offsets[i],
                  x ? x : "(null)", y ? y : "(null)");
    }
    hookd_event_clear(&a);
    hookd_event_clear(&b);
    return fast;
}

Test(event, fast_path_matches_the_tree_on_the_corpus)
{
    static const char *const dirs[] = {EXAMPLES "/input/valid", EXAMPLES "/input/invalid"};
    size_t fast = 0, plain_valid = 0;

    for (size_t d = 0; d < 2; d++) {
        size_t count = 0;
        char **files = corpus_list(dirs[d], &count);
        cr_assert_not_null(files);
        for (char **f = files; *f; f++) {
            corpus_msg_t m;
            char lerr[512];
            cr_assert_eq(corpus_msg_load(*f, false, &m, lerr, sizeof(lerr)), 0, "%s", lerr);
            fast += same_both_ways(m.value, m.len, NULL, *f);
            if (d == 0 && strstr(*f, "/plain-") != NULL)
                plain_valid++;
            corpus_msg_free(&m);
        }
        corpus_list_free(files);
    }
    /* every valid plain example is an object of strings: all took the fast road */
    cr_expect_geq(plain_valid, 15);
    cr_expect_eq(fast, plain_valid, "%zu of %zu valid plain examples decoded fast", fast,
                 plain_valid);
}

Test(event, fast_path_matches_the_tree_on_edge_cases)
{
#define HEAD                                                                                       \
    "{\"type\":\"acme.enrollment.requested\",\"id\":\"ev-1\",\"time\":\"2026-11-26T19:00:00Z\","
    static const struct {
        const char *json;
        bool fast; /* expected to take the fast road */
    } edge[] = {
        {REQ, true},
        {" \r\n\t" REQ " \n", true},
        {"{ \"type\" : \"acme.enrollment.requested\" , \"id\" : \"ev-1\" , \"time\" : "
         "\"2026-11-26T19:00:00Z\" , " REQ_FIELDS " }",
         true},
        /* escapes in values are unescaped as the tree does */
        {HEAD "\"certificate_name\":\"c\\u00e9rt \\ud83d\\ude00 \\\"q\\\" \\/\","
              "\"order_name\":\"o\\n\\t1\",\"csr\":\"" CSR "\"}",
         true},
        {"{\"type\":\"acme.enrollment.issued\",\"id\":\"ev-9\",\"time\":\"2026-11-26T19:00:00Z\","
         "" REQ_FIELDS ",\"certificate\":\"" PEM_JSON "\",\"certificate_raw\":\"QQ==\","
         "\"poll_identifier\":null}",
         true},
        {"{\"type\":\"acme.enrollment.failed\",\"id\":\"ev-9\",\"time\":\"2026-11-26T19:00:00Z\","
         "" REQ_FIELDS ",\"error\":\"ca down\"}",
         true},
        /* the tree's road: other shapes, names or values */
        {"{\"type\":\"acme.enrollment.requeste\\u0064\",\"id\":\"ev-1\",\"time\":"
         "\"2026-11-26T19:00:00Z\"," REQ_FIELDS "}",
         false},
        {HEAD "\"certificate_n\\u0061me\":\"cert-1\",\"order_name\":\"o\",\"csr\":\"" CSR "\"}",
         false},
        {HEAD REQ_FIELDS ",\"extra\":\"x\"}", false},
        {HEAD REQ_FIELDS ",\"csr\":\"" CSR "\"}", false},
        {HEAD REQ_FIELDS ",\"n\":1}", false},
        {HEAD REQ_FIELDS ",\"o\":{}}", false},
        {HEAD "\"certificate_name\":null,\"order_name\":\"o\",\"csr\":\"" CSR "\"}", false},
        {HEAD "\"certificate_name\":\"\",\"order_name\":\"o\",\"csr\":\"" CSR "\"}", false},
        {HEAD "\"certificate_name\":\"c\",\"order_name\":\"o\",\"csr\":\"not base64\"}", false},
        {HEAD "\"certificate_name\":\"a\\u0000b\",\"order_name\":\"o\",\"csr\":\"" CSR "\"}",
         false},
        {HEAD "\"order_name\":\"o\",\"csr\":\"" CSR "\"}", false},
        {HEAD REQ_FIELDS ",\"error\":\"only for failed\"}", false},
        {"{\"type\":\"acme.enrollment.requested\",\"id\":\"\",\"time\":\"2026-11-26T19:00:00Z\","
         "" REQ_FIELDS "}",
         false},
        {"{\"type\":\"acme.enrollment.requested\",\"id\":\"ev-1\",\"time\":\"yesterday\","
         "" REQ_FIELDS "}",
         false},
        {"{\"type\":\"acme.enrollment.requested\",\"id\":\"ev-1\"," REQ_FIELDS "}", false},
        {"{\"specversion\":\"1.0\",\"type\":\"acme.enrollment.requested\",\"id\":\"ev-1\"}", false},
        {REQ ",", false},
        {REQ "}", false},
        {"{\"type\":\"acme.enrollment.requested\",}", false},
        {"{\"type\" \"x\"}", false},
        {"{\"type\":\"x\ty\"}", false},
        {"{\"type\":nul}", false},
        {"{\"type\":\"\\ud800\"}", false},
        {"{\"a\":\"\xc3\x28\"}", false},
        {"{}", false},
        {"[]", false},
        {"\"x\"", false},
        {"", false},
    };

    for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
        cr_expect_eq(same_both_ways(edge[i].json, strlen(edge[i].json), NULL, edge[i].json),
                     edge[i].fast, "%s: fast road %s", edge[i].json,
                     edge[i].fast ? "not taken" : "taken");
#undef HEAD
}

Test(event, fast_path_keeps_the_limits)
{
    /* an id at the field limit and one past it, in characters (2 bytes each) */
    hookd_limits_t lim = {4096, 20};
    char id[64] = "", at[512], past[512];

    for (int i = 0; i < 20; i++)
        strcat(id, "\xc3\xa9");
    snprintf(at, sizeof(at),
             "{\"type\":\"acme.enrollment.requested\",\"id\":\"%s\",\"time\":"
             "\"2026-11-26T19:00:00Z\",\"certificate_name\":\"c\",\"order_name\":\"o\","
             "\"csr\":\"QQ==\"}",
             id);
    strcat(id, "\xc3\xa9");
    snprintf(past, sizeof(past),
             "{\"type\":\"acme.enrollment.requested\",\"id\":\"%s\",\"time\":"
             "\"2026-11-26T19:00:00Z\",\"certificate_name\":\"c\",\"order_name\":\"o\","
             "\"csr\":\"QQ==\"}",
             id);
    cr_expect(same_both_ways(at, strlen(at), &lim, "20 characters"));
    cr_expect_not(same_both_ways(past, strlen(past), &lim, "21 characters"));
    lim.max_event_bytes = strlen(at) - 1;
    cr_expect_not(same_both_ways(at, strlen(at), &lim, "event one byte too large"));
}

Test(json, flat_object_members)
{
    hookd_json_flat_member_t m[4];
    const char *text = " {\"a\" : \"x\\ny\" ,\"bc\":null, \"d\":\"\"} ";
    char out[8];

    cr_assert_eq(hookd_json_flat_object(text, strlen(text), m, 4), 3);
    cr_expect_eq(m[0].name_len, 1);
    cr_expect_eq(memcmp(m[0].name, "a", 1), 0);
    cr_expect_eq(m[0].value_len, 4);
    cr_expect(m[0].escaped);
    cr_expect_eq(hookd_json_unescape(m[0].value, m[0].value_len, out), 3);
    cr_expect_str_eq(out, "x\ny");
    cr_expect_eq(m[1].name_len, 2);
    cr_expect_null(m[1].value);
    cr_expect_eq(m[2].value_len, 0);
    cr_expect_not_null(m[2].value);
    cr_expect_not(m[2].escaped);
    cr_expect_eq(hookd_json_flat_object("{}", 2, m, 4), 0);
    /* more members than room: not flat enough */
    cr_expect_eq(hookd_json_flat_object(text, strlen(text), m, 2), -1);
    cr_expect_eq(hookd_json_flat_object("{\"a\":\"\\u0000\"}", 14, m, 4), -1);
    cr_expect_eq(hookd_json_flat_object("{\"\\u0061\":\"x\"}", 14, m, 4), -1);
    cr_expect_eq(hookd_json_flat_object("{\"a\":true}", 10, m, 4), -1);
    cr_expect_eq(hookd_json_flat_object("{\"a\":\"x\"", 8, m, 4), -1);
}
