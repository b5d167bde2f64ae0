/* SPDX-License-Identifier: MIT */
/*
 * Retry tiers (tiers.h), the pure part: the tier table as configured, the
 * slot numbering against a model (every (tier, partition) one slot, and
 * back), the next-tier decision and the phases a tier record carries as
 * truth tables, and the retry headers round trip.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "tiers.h"

Test(tiers, parse_table)
{
    static const struct {
        const char *delays, *names;
        int rc;
        size_t count;
        long long ms[3];
        const char *topics[3];
    } rows[] = {
        {NULL, NULL, 0, 0, {0}, {NULL}},
        {"", NULL, 0, 0, {0}, {NULL}},
        {"10s,1m,10m",
         NULL,
         0,
         3,
         {10000, 60000, 600000},
         {"in.retry.10s", "in.retry.1m", "in.retry.10m"}},
        {"250ms 2h", NULL, 0, 2, {250, 7200000}, {"in.retry.250ms", "in.retry.2h"}},
        {"1s,2s", "r1, r2", 0, 2, {1000, 2000}, {"r1", "r2"}},
        {"1s,2s", "r1", -1, 0, {0}, {NULL}},                      /* too few names */
        {"1s", "r1,r2", -1, 0, {0}, {NULL}},                      /* too many names */
        {"1s,1s", NULL, -1, 0, {0}, {NULL}},                      /* the same topic twice */
        {"0s", NULL, -1, 0, {0}, {NULL}},                         /* no delay */
        {"10", NULL, -1, 0, {0}, {NULL}},                         /* no unit */
        {"10d", NULL, -1, 0, {0}, {NULL}},                        /* unknown unit */
        {"169h", NULL, -1, 0, {0}, {NULL}},                       /* over 7 days */
        {"1s", "in", -1, 0, {0}, {NULL}},                         /* the input topic */
        {"1s", "bad/name", -1, 0, {0}, {NULL}},                   /* not a topic name */
        {"1s,2s,3s,4s,5s,6s,7s,8s,9s", NULL, -1, 0, {0}, {NULL}}, /* too many */
    };
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        hookd_tiers_t t;
        char why[256] = "";
        int rc = hookd_tiers_parse(rows[r].delays, rows[r].names, "in", &t, why, sizeof(why));
        cr_assert_eq(rc, rows[r].rc, "row %zu: rc %d (%s)", r, rc, why);
        if (rc != 0) {
            cr_assert_neq(why[0], '\0', "row %zu: a refusal says why", r);
            cr_assert_eq(t.count, 0);
            continue;
        }
        cr_assert_eq(t.count, rows[r].count, "row %zu", r);
        for (size_t i = 0; i < t.count; i++) {
            cr_assert_eq(t.delays_ms[i], rows[r].ms[i], "row %zu tier %zu", r, i + 1);
            cr_assert_str_eq(t.topics[i], rows[r].topics[i]);
            cr_assert_str_eq(hookd_tiers_topic(&t, i + 1, "in"), rows[r].topics[i]);
            cr_assert_eq(hookd_tiers_find(&t, rows[r].topics[i], "in"), (int)i + 1);
        }
        cr_assert_str_eq(hookd_tiers_topic(&t, 0, "in"), "in");
        cr_assert_eq(hookd_tiers_find(&t, "in", "in"), 0);
        cr_assert_eq(hookd_tiers_find(&t, "other", "in"), -1);
        cr_assert_null(hookd_tiers_topic(&t, t.count + 1, "in"));
        hookd_tiers_clear(&t);
    }
}

/* Every (tier, partition) has its own slot, and the slot gives both back;
 * without tiers the slot is the partition. */
Test(tiers, slots_model)
{
    for (size_t n = 0; n <= 3; n++) {
        hookd_tiers_t t;
        char delays[32] = "", why[128];
        static char seen[4 * 64];
        for (size_t i = 0; i < n; i++)
            snprintf(delays + strlen(delays), sizeof(delays) - strlen(delays), "%zus,", i + 1);
        cr_assert_eq(hookd_tiers_parse(delays, NULL, "in", &t, why, sizeof(why)), 0, "%s", why);
        memset(seen, 0, sizeof(seen));
        for (int32_t p = 0; p < 64; p++)
            for (size_t tier = 0; tier <= n; tier++) {
                int32_t s = hookd_tiers_slot(&t, tier, p);
                cr_assert_geq(s, 0);
                cr_assert_lt((size_t)s, sizeof(seen));
                cr_assert_eq(seen[s], 0, "slot %d given twice", s);
                seen[s] = 1;
                cr_assert_eq(hookd_tiers_slot_tier(&t, s), tier);
                cr_assert_eq(hookd_tiers_slot_partition(&t, s), p);
                if (n == 0)
                    cr_assert_eq(s, p, "without tiers a slot is the partition");
            }
        cr_assert_eq(hookd_tiers_slot(&t, n + 1, 0), -1);
        cr_assert_eq(hookd_tiers_slot(&t, 0, -1), -1);
        /* a NULL table is no tiers */
        cr_assert_eq(hookd_tiers_slot(NULL, 0, 7), 7);
        cr_assert_eq(hookd_tiers_slot_tier(NULL, 7), 0);
        hookd_tiers_clear(&t);
    }
}

/* Which decisions go to which tier: only retries_exhausted dead letters,
 * while a next tier exists. */
Test(tiers, next_tier_truth_table)
{
    hookd_tiers_t t;
    char why[128];
    cr_assert_eq(hookd_tiers_parse("1s,2s", NULL, "in", &t, why, sizeof(why)), 0);
    for (int cls = 0; cls < HOOKD_ERRCLASS_COUNT; cls++)
        for (int dl = 0; dl <= 1; dl++)
            for (int ab = 0; ab <= 1; ab++)
                for (size_t tier = 0; tier <= 2; tier++) {
                    hookd_decision_t d;
                    size_t want;
                    memset(&d, 0, sizeof(d));
                    d.error_class = (hookd_error_class_t)cls;
                    d.dead_letter = dl;
                    d.aborted = ab;
                    d.failed_run = cls == HOOKD_ERRCLASS_NONE ? -1 : 0;
                    want = cls == HOOKD_ERRCLASS_RETRIES_EXHAUSTED && dl && !ab && tier < 2
                               ? tier + 1
                               : 0;
                    cr_assert_eq(hookd_tiers_next(&t, tier, &d), want,
                                 "class %d dead_letter %d aborted %d tier %zu", cls, dl, ab, tier);
                    cr_assert_eq(hookd_tiers_next(NULL, tier, &d), 0, "no tiers: never");
                }
    hookd_tiers_clear(&t);
}

/* The phases a tier record carries: the plan's phases before the failed
 * one, plus those done already; never the failed one. */
Test(tiers, phases_done_truth_table)
{
    const unsigned PRE = HOOKD_PHASE_BIT(HOOKD_PHASE_PRE),
                   SUC = HOOKD_PHASE_BIT(HOOKD_PHASE_SUCCESS),
                   POST = HOOKD_PHASE_BIT(HOOKD_PHASE_POST);
    cr_assert_eq(hookd_tiers_phases_done(HOOKD_EVENT_REQUESTED, 0, HOOKD_PHASE_PRE), 0);
    cr_assert_eq(hookd_tiers_phases_done(HOOKD_EVENT_ISSUED, 0, HOOKD_PHASE_SUCCESS), 0);
    cr_assert_eq(hookd_tiers_phases_done(HOOKD_EVENT_ISSUED, 0, HOOKD_PHASE_POST), SUC,
                 "post retried: the success chain ran, it is not run again");
    cr_assert_eq(hookd_tiers_phases_done(HOOKD_EVENT_ISSUED, PRE, HOOKD_PHASE_POST), PRE | SUC);
    cr_assert_eq(hookd_tiers_phases_done(HOOKD_EVENT_ISSUED, SUC, HOOKD_PHASE_POST), SUC,
                 "a second tier keeps what the first carried");
    cr_assert_eq(hookd_tiers_phases_done(HOOKD_EVENT_FAILED, 0, HOOKD_PHASE_POST), 0);
    cr_assert_eq(hookd_tiers_phases_done(HOOKD_EVENT_ISSUED, SUC | POST, HOOKD_PHASE_POST), SUC);
    /* consistent with the engine: what it carries is a prefix of the plan */
    for (int type = 0; type < HOOKD_EVENT_TYPE_COUNT; type++)
        for (int f = 0; f < HOOKD_PHASE_COUNT; f++) {
            unsigned plan = hookd_engine_plan((hookd_event_type_t)type);
            unsigned done = hookd_tiers_phases_done((hookd_event_type_t)type, 0, (hookd_phase_t)f);
            if (!(plan & HOOKD_PHASE_BIT(f)))
                continue;
            for (int q = 0; q < HOOKD_PHASE_COUNT; q++)
                if (plan & HOOKD_PHASE_BIT(q))
                    cr_assert_eq((done & HOOKD_PHASE_BIT(q)) != 0, q < f,
                                 "type %d failed %d phase %d", type, f, q);
        }
}

Test(tiers, due)
{
    hookd_tiers_t t;
    char why[128];
    cr_assert_eq(hookd_tiers_parse("1s,1m", NULL, "in", &t, why, sizeof(why)), 0);
    cr_assert_eq(hookd_tiers_due(&t, 1, 1000), 2000);
    cr_assert_eq(hookd_tiers_due(&t, 2, 1000), 61000);
    cr_assert_eq(hookd_tiers_due(&t, 0, 1000), 1000, "the input is due at once");
    cr_assert_eq(hookd_tiers_due(&t, 3, 1000), 1000);
    hookd_tiers_clear(&t);
}

/* Encode then decode: every field comes back; hookd.phases.done reads back
 * through request.c like any event's. */
Test(tiers, headers_round_trip)
{
    hookd_headers_t *h = hookd_headers_new();
    hookd_tiers_record_t r = {2,
                              1700000005000,
                              1700000000000,
                              "post",
                              "mailer",
                              "smtp: 451 try later",
                              5,
                              3,
                              77,
                              HOOKD_PHASE_BIT(HOOKD_PHASE_SUCCESS)};
    hookd_tiers_state_t st;
    char why[256];
    bool present;
    unsigned done = 0;
    const hookd_header_t *err = NULL;
    size_t n, i;
    hookd_header_t all[16];

    cr_assert_not_null(h);
    cr_assert_eq(hookd_tiers_headers_encode(&r, h), 0);
    n = hookd_headers_count(h);
    cr_assert_leq(n, 16);
    for (i = 0; i < n; i++) {
        all[i] = *hookd_headers_get(h, i);
        if (strcmp(all[i].name, HOOKD_HDR_RETRY_ERROR) == 0)
            err = hookd_headers_get(h, i);
        cr_assert_not(hookd_tiers_header_carried(all[i].name), "%s is written anew", all[i].name);
    }
    cr_assert_not_null(err);
    cr_assert_eq(err->len, 5, "the error is cut to max_error_bytes");
    cr_assert_eq(hookd_tiers_headers_decode(all, n, &st, why, sizeof(why)), 0, "%s", why);
    cr_assert(st.present);
    cr_assert_eq(st.attempt, 2);
    cr_assert_eq(st.due_ms, 1700000005000);
    cr_assert_eq(st.first_failure_ms, 1700000000000);
    cr_assert_eq(st.origin_partition, 3);
    cr_assert_eq(st.origin_offset, 77);
    cr_assert_eq(hookd_request_phases_done(all, n, &present, &done, why, sizeof(why)),
                 HOOKD_REQUEST_OK);
    cr_assert(present);
    cr_assert_eq(done, HOOKD_PHASE_BIT(HOOKD_PHASE_SUCCESS));
    hookd_headers_destroy(h);

    /* absent: unknown; malformed or twice: refused */
    cr_assert_eq(hookd_tiers_headers_decode(NULL, 0, &st, why, sizeof(why)), 0);
    cr_assert_not(st.present);
    cr_assert_eq(st.due_ms, -1);
    cr_assert_eq(st.origin_offset, -1);
    {
        static const struct {
            const char *name, *value;
        } bad[] = {{HOOKD_HDR_RETRY_ATTEMPT, "0"},      {HOOKD_HDR_RETRY_ATTEMPT, "9"},
                   {HOOKD_HDR_RETRY_DUE, "soon"},       {HOOKD_HDR_RETRY_DUE, "-5"},
                   {HOOKD_HDR_RETRY_ORIGIN, "3"},       {HOOKD_HDR_RETRY_ORIGIN, "x:1"},
                   {HOOKD_HDR_RETRY_FIRST_FAILURE, ""}, {HOOKD_HDR_RETRY_ORIGIN, "1:-1"}};
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            hookd_header_t one = {bad[i].name, bad[i].value, strlen(bad[i].value)};
            cr_assert_eq(hookd_tiers_headers_decode(&one, 1, &st, why, sizeof(why)), -1, "%s: %s",
                         bad[i].name, bad[i].value);
        }
        hookd_header_t twice[2] = {{HOOKD_HDR_RETRY_DUE, "1", 1}, {HOOKD_HDR_RETRY_DUE, "2", 1}};
        cr_assert_eq(hookd_tiers_headers_decode(twice, 2, &st, why, sizeof(why)), -1);
    }
    /* what a tier record carries over from its event */
    cr_assert(hookd_tiers_header_carried("ce_id"));
    cr_assert(hookd_tiers_header_carried("kafka_replyTopic"));
    cr_assert_not(hookd_tiers_header_carried("hookd.retry.attempt"));
    cr_assert_not(hookd_tiers_header_carried("HOOKD.PHASES.DONE"));
    cr_assert_not(hookd_tiers_header_carried("hookd-signature"));
}
