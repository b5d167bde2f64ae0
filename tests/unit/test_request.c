/* SPDX-License-Identifier: MIT */
/*
 * Requests carried by headers: Spring's reply headers (topic, 4-byte
 * big-endian partition, correlation id), the allow-list of reply topics,
 * and hookd.flags with both spellings, ConfigParser's booleans, partial
 * sets, and every malformed form refused with a reason.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "request.h"

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, v, sizeof(v) - 1                                                                        \
    }

static char why[256];

Test(request, no_reply_headers_no_reply)
{
    hookd_header_t h[] = {H("ce_id", "x")};
    hookd_reply_to_t r;
    cr_assert_eq(hookd_request_reply_to(h, 1, &r, why, sizeof(why)), HOOKD_REQUEST_OK);
    cr_assert_null(r.topic);
    cr_assert_eq(r.partition, -1);
}

Test(request, spring_reply_headers)
{
    static const unsigned char part[4] = {0, 0, 1, 2}; /* 258 */
    static const unsigned char corr[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0};
    hookd_header_t h[] = {H("kafka_replyTopic", "acme.enrollment.reply"),
                          {"kafka_replyPartition", part, 4},
                          {"kafka_correlationId", corr, 16}};
    hookd_reply_to_t r;
    cr_assert_eq(hookd_request_reply_to(h, 3, &r, why, sizeof(why)), HOOKD_REQUEST_OK, "%s", why);
    cr_assert_eq(r.topic_len, strlen("acme.enrollment.reply"));
    cr_assert_eq(memcmp(r.topic, "acme.enrollment.reply", r.topic_len), 0);
    cr_assert_eq(r.partition, 258);
    cr_assert_eq(r.correlation_id_len, 16);
    cr_assert_eq(memcmp(r.correlation_id, corr, 16), 0);
}

Test(request, malformed_reply_headers_refused)
{
    static const unsigned char neg[4] = {0x80, 0, 0, 0};
    static const unsigned char big[HOOKD_CORRELATION_ID_MAX + 1] = {0};
    struct {
        hookd_header_t h[3];
        size_t n;
        const char *reason;
    } cases[] = {
        {{H("kafka_replyTopic", "bad topic!")}, 1, "not a valid topic name"},
        {{H("kafka_replyTopic", "..")}, 1, "not a valid topic name"},
        {{{"kafka_replyTopic", NULL, 0}}, 1, "not a valid topic name"},
        {{H("kafka_replyTopic", "a"), H("kafka_replyTopic", "b")}, 2, "more than once"},
        {{H("kafka_replyTopic", "a"), H("kafka_replyPartition", "12")}, 2, "4-byte big-endian"},
        {{H("kafka_replyTopic", "a"), {"kafka_replyPartition", neg, 4}}, 2, "negative"},
        {{H("kafka_replyTopic", "a"), {"kafka_correlationId", big, sizeof(big)}}, 2, "longer"},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hookd_reply_to_t r;
        why[0] = '\0';
        cr_expect_eq(hookd_request_reply_to(cases[i].h, cases[i].n, &r, why, sizeof(why)),
                     HOOKD_REQUEST_ERR_REPLY, "case %zu accepted", i);
        cr_expect_null(r.topic, "case %zu", i);
        cr_expect_not_null(strstr(why, cases[i].reason), "case %zu: '%s' lacks '%s'", i, why,
                           cases[i].reason);
    }
}

Test(request, topic_names)
{
    char long_name[251];
    memset(long_name, 'a', sizeof(long_name));
    cr_assert(hookd_topic_name_valid("acme.enrollment-reply_1", 23));
    cr_assert(hookd_topic_name_valid(long_name, 249));
    cr_assert_not(hookd_topic_name_valid(long_name, 250));
    cr_assert_not(hookd_topic_name_valid("", 0));
    cr_assert_not(hookd_topic_name_valid(".", 1));
    cr_assert_not(hookd_topic_name_valid("a/b", 3));
    cr_assert_not(hookd_topic_name_valid("a\0b", 3));
}

Test(request, allow_list)
{
    const char *list = "acme.enrollment.reply, spring.replies";
    cr_assert(hookd_request_topic_allowed(list, "acme.enrollment.reply", 21));
    cr_assert(hookd_request_topic_allowed(list, "spring.replies", 14));
    cr_assert_not(hookd_request_topic_allowed(list, "spring.replie", 13));
    cr_assert_not(hookd_request_topic_allowed(list, "acme.enrollment.result", 22));
    cr_assert_not(hookd_request_topic_allowed(list, "Spring.replies", 14));
    cr_assert_not(hookd_request_topic_allowed(NULL, "a", 1));
    cr_assert_not(hookd_request_topic_allowed("", "a", 1));
}

/* Every combination of the three flags, in both spellings, over both bases. */
Test(request, flags_truth_table)
{
    int bits, spelling, base_bits;
    for (base_bits = 0; base_bits < 8; base_bits++)
        for (bits = 0; bits < 16; bits++)
            for (spelling = 0; spelling < 2; spelling++) {
                static const char *const names[2][3] = {{"allow_pre_hook_failure",
                                                         "allow_success_hook_failure",
                                                         "allow_post_hook_failure"},
                                                        {"ignore_pre_hook_failure",
                                                         "ignore_success_hook_failure",
                                                         "ignore_post_hook_failure"}};
                char v[256];
                hookd_header_t h = {"hookd.flags", v, 0};
                hookd_request_flags_t fl;
                hookd_policy_t base, out;
                bool details = false;
                int ph;
                h.len = (size_t)snprintf(v, sizeof(v),
                                         "%s=%s, %s=%s,%s = %s,hook_error_details_forward=%s",
                                         names[spelling][0], bits & 1 ? "True" : "False",
                                         names[spelling][1], bits & 2 ? "yes" : "no",
                                         names[spelling][2], bits & 4 ? "1" : "0",
                                         bits & 8 ? "on" : "off");
                hookd_policy_defaults(&base);
                for (ph = 0; ph < 3; ph++)
                    base.allow_failure[ph] = (base_bits >> ph) & 1;
                cr_assert_eq(hookd_request_flags(&h, 1, &fl, why, sizeof(why)), HOOKD_REQUEST_OK,
                             "%s: %s", v, why);
                hookd_request_apply(&fl, &base, !(bits & 8), &out, &details);
                for (ph = 0; ph < 3; ph++)
                    cr_assert_eq(out.allow_failure[ph], ((bits >> ph) & 1) != 0, "%s", v);
                cr_assert_eq(details, (bits & 8) != 0);
                cr_assert_eq(out.retry_max_attempts, base.retry_max_attempts);
            }
}

/* A flag left out keeps the worker's value; no header changes nothing. */
Test(request, flags_partial_and_absent)
{
    hookd_header_t h = H("hookd.flags", "allow_success_hook_failure=true");
    hookd_request_flags_t fl;
    hookd_policy_t base, out;
    bool details = true;
    hookd_policy_defaults(&base);
    cr_assert_eq(hookd_request_flags(&h, 1, &fl, why, sizeof(why)), HOOKD_REQUEST_OK);
    hookd_request_apply(&fl, &base, true, &out, &details);
    cr_assert_eq(out.allow_failure[HOOKD_PHASE_PRE], false);
    cr_assert_eq(out.allow_failure[HOOKD_PHASE_SUCCESS], true);
    cr_assert_eq(out.allow_failure[HOOKD_PHASE_POST], true);
    cr_assert_eq(details, true);

    cr_assert_eq(hookd_request_flags(NULL, 0, &fl, why, sizeof(why)), HOOKD_REQUEST_OK);
    cr_assert_not(fl.present);
    base.allow_failure[HOOKD_PHASE_PRE] = true;
    hookd_request_apply(&fl, &base, false, &out, &details);
    cr_assert_eq(out.allow_failure[HOOKD_PHASE_PRE], true);
    cr_assert_eq(details, false);
}

Test(request, malformed_flags_refused)
{
    struct {
        hookd_header_t h[2];
        size_t n;
        const char *reason;
    } cases[] = {
        {{H("hookd.flags", "allow_pre_hook_failure")}, 1, "expected name=value"},
        {{H("hookd.flags", "allow_pre_hook_failure=maybe")}, 1, "not a boolean"},
        {{H("hookd.flags", "allow_pre_hook_failure=")}, 1, "not a boolean"},
        {{H("hookd.flags", "allow_everything=true")}, 1, "unknown flag"},
        {{H("hookd.flags", "allow_pre_hook_failure=1,ignore_pre_hook_failure=1")},
         1,
         "given twice"},
        {{H("hookd.flags", "allow_pre_hook_failure=1,,allow_post_hook_failure=1")},
         1,
         "expected name=value"},
        {{H("hookd.flags", "a=1"), H("hookd.flags", "a=1")}, 2, "more than once"},
        {{{"hookd.flags", NULL, 0}}, 1, "null"},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hookd_request_flags_t fl;
        why[0] = '\0';
        cr_expect_eq(hookd_request_flags(cases[i].h, cases[i].n, &fl, why, sizeof(why)),
                     HOOKD_REQUEST_ERR_FLAGS, "case %zu accepted", i);
        cr_expect_not_null(strstr(why, cases[i].reason), "case %zu: '%s' lacks '%s'", i, why,
                           cases[i].reason);
    }
}

/* ---- hookd.phases.done ---------------------------------------------------- */

Test(request, phases_done_absent_is_nothing_done)
{
    hookd_header_t h[] = {H("hookd.flags", "allow_pre_hook_failure=1")};
    bool present = true;
    unsigned done = 99;
    cr_assert_eq(hookd_request_phases_done(h, 1, &present, &done, why, sizeof(why)),
                 HOOKD_REQUEST_OK);
    cr_assert_not(present);
    cr_assert_eq(done, 0);
}

Test(request, phases_done_every_ordered_set)
{
    static const struct {
        const char *value;
        unsigned done;
    } ok[] = {
        {"pre", HOOKD_PHASE_BIT(HOOKD_PHASE_PRE)},
        {"success", HOOKD_PHASE_BIT(HOOKD_PHASE_SUCCESS)},
        {"post", HOOKD_PHASE_BIT(HOOKD_PHASE_POST)},
        {"pre,success", HOOKD_PHASE_BIT(HOOKD_PHASE_PRE) | HOOKD_PHASE_BIT(HOOKD_PHASE_SUCCESS)},
        {"pre,post", HOOKD_PHASE_BIT(HOOKD_PHASE_PRE) | HOOKD_PHASE_BIT(HOOKD_PHASE_POST)},
        {"success,post", HOOKD_PHASE_BIT(HOOKD_PHASE_SUCCESS) | HOOKD_PHASE_BIT(HOOKD_PHASE_POST)},
        {"pre,success,post", 7},
        {" pre ,\tsuccess ",
         HOOKD_PHASE_BIT(HOOKD_PHASE_PRE) | HOOKD_PHASE_BIT(HOOKD_PHASE_SUCCESS)},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        hookd_header_t h = {"hookd.phases.done", ok[i].value, strlen(ok[i].value)};
        bool present = false;
        unsigned done = 0;
        char back[32];
        cr_assert_eq(hookd_request_phases_done(&h, 1, &present, &done, why, sizeof(why)),
                     HOOKD_REQUEST_OK, "'%s': %s", ok[i].value, why);
        cr_assert(present);
        cr_assert_eq(done, ok[i].done, "'%s': %u", ok[i].value, done);
        /* formatting gives the canonical spelling, which parses back to the same set */
        cr_assert_gt(hookd_request_phases_format(done, back, sizeof(back)), 0);
        h.value = back;
        h.len = strlen(back);
        cr_assert_eq(hookd_request_phases_done(&h, 1, &present, &done, why, sizeof(why)),
                     HOOKD_REQUEST_OK);
        cr_assert_eq(done, ok[i].done, "'%s' formatted as '%s'", ok[i].value, back);
    }
}

Test(request, phases_done_format_edges)
{
    char buf[32];
    cr_assert_eq(hookd_request_phases_format(0, buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "");
    cr_assert_eq(hookd_request_phases_format(3, buf, sizeof(buf)), 11);
    cr_assert_str_eq(buf, "pre,success");
    cr_assert_eq(hookd_request_phases_format(7, buf, 16), -1, "no room for the NUL");
    cr_assert_eq(hookd_request_phases_format(7, buf, 17), 16);
    cr_assert_str_eq(buf, "pre,success,post");
}

Test(request, malformed_phases_done_refused)
{
    static char long_value[66]; /* "pre" and 62 blanks: 65 bytes */
    struct {
        hookd_header_t h[2];
        size_t n;
        const char *reason;
    } cases[] = {
        {{H("hookd.phases.done", "")}, 1, "empty"},
        {{{"hookd.phases.done", NULL, 0}}, 1, "null"},
        {{H("hookd.phases.done", "verify")}, 1, "unknown phase 'verify'"},
        {{H("hookd.phases.done", "Pre")}, 1, "unknown phase 'Pre'"},
        {{H("hookd.phases.done", "pre,pre")}, 1, "given twice"},
        {{H("hookd.phases.done", "success,pre")}, 1, "pre after success"},
        {{H("hookd.phases.done", "post,success")}, 1, "success after post"},
        {{H("hookd.phases.done", "pre,")}, 1, "empty phase name"},
        {{H("hookd.phases.done", ",pre")}, 1, "empty phase name"},
        {{H("hookd.phases.done", "pre,,success")}, 1, "empty phase name"},
        {{H("hookd.phases.done", " ")}, 1, "empty phase name"},
        {{H("hookd.phases.done", "pre;success")}, 1, "unknown phase"},
        {{H("hookd.phases.done", "pre"), H("hookd.phases.done", "pre")}, 2, "more than once"},
        {{{"hookd.phases.done", long_value, 0}}, 1, "longer than 64"}, /* len set below */
    };
    memset(long_value, ' ', 65);
    memcpy(long_value, "pre", 3);
    cases[sizeof(cases) / sizeof(cases[0]) - 1].h[0].len = 65;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool present = true;
        unsigned done = 99;
        why[0] = '\0';
        cr_expect_eq(hookd_request_phases_done(cases[i].h, cases[i].n, &present, &done, why,
                                               sizeof(why)),
                     HOOKD_REQUEST_ERR_PHASES, "case %zu accepted", i);
        cr_expect_not_null(strstr(why, cases[i].reason), "case %zu: '%s' lacks '%s'", i, why,
                           cases[i].reason);
        cr_expect_eq(done, 0, "case %zu: a refused header marks nothing done", i);
    }
    /* 64 bytes is still accepted (blanks around a name) */
    {
        hookd_header_t h = {"hookd.phases.done", long_value, 64};
        bool present;
        unsigned done;
        cr_assert_eq(hookd_request_phases_done(&h, 1, &present, &done, why, sizeof(why)),
                     HOOKD_REQUEST_OK, "%s", why);
        cr_assert_eq(done, HOOKD_PHASE_BIT(HOOKD_PHASE_PRE));
    }
}
