/* SPDX-License-Identifier: MIT */
/*
 * The pure part of `acme-hookd replay`: the filter at each of its edges,
 * the phases a dead letter is replayed with (the rule that no success hook
 * runs twice), what cannot be replayed and why, the headers of the
 * replayed record, and the parsers of the command line's times and rates.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "replay_plan.h"

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, v, sizeof(v) - 1                                                                        \
    }

/* A dead letter of the worker: original headers, then the context. */
typedef struct dl {
    hookd_header_t h[32];
    size_t n;
    hookd_replay_record_t rec;
} dl_t;

static void dl_add(dl_t *d, const char *name, const char *value)
{
    d->h[d->n].name = name;
    d->h[d->n].value = value;
    d->h[d->n].len = value ? strlen(value) : 0;
    d->n++;
    d->rec.headers = d->h;
    d->rec.header_count = d->n;
}

static void dl_init(dl_t *d, const char *type, const char *cls, const char *phase,
                    const char *handler)
{
    memset(d, 0, sizeof(*d));
    d->rec.partition = 2;
    d->rec.offset = 40;
    d->rec.timestamp_ms = 1764669600000; /* 2025-12-02T10:00:00Z */
    d->rec.key = "order-1";
    d->rec.key_len = 7;
    d->rec.has_value = true;
    dl_add(d, "traceparent", "00-abc-def-01");
    dl_add(d, "hookd.dlq.topic", "acme.enrollment");
    dl_add(d, "hookd.dlq.partition", "1");
    dl_add(d, "hookd.dlq.offset", "17");
    if (type)
        dl_add(d, "hookd.dlq.event.type", type);
    if (phase)
        dl_add(d, "hookd.dlq.phase", phase);
    if (handler)
        dl_add(d, "hookd.dlq.handler", handler);
    dl_add(d, "hookd.dlq.error.class", cls);
    dl_add(d, "hookd.dlq.error.message", "boom");
    dl_add(d, "__connect.errors.topic", "acme.enrollment");
    dl_add(d, "__connect.errors.exception.message", "boom");
}

static const hookd_replay_trust_t trusted = {true, false, false};
static const hookd_replay_trust_t untrusted = {false, false, false};

static hookd_replay_choice_t choose(const hookd_replay_filter_t *f, const hookd_replay_trust_t *t,
                                    const dl_t *d)
{
    hookd_replay_choice_t c;
    hookd_replay_choose(f, t, &d->rec, &c);
    return c;
}

#define ISSUED "acme.enrollment.issued"
#define REQUESTED "acme.enrollment.requested"
#define FAILED "acme.enrollment.failed"
#define BIT(p) HOOKD_PHASE_BIT(HOOKD_PHASE_##p)

/* ---- phases: never a success hook twice ---------------------------------- */

Test(replay_plan, phases_done_by_event_type_and_failed_phase)
{
    static const struct {
        const char *type, *phase;
        unsigned done;
        bool header;
    } rows[] = {
        /* issued failed in post: success (and pre, on its requested event) ran */
        {ISSUED, "post", BIT(PRE) | BIT(SUCCESS), true},
        /* issued failed in success: nothing of its plan ran: no header */
        {ISSUED, "success", 0, false},
        {REQUESTED, "pre", 0, false},
        {FAILED, "post", 0, false},
        /* an unknown type or no phase (invalid, forged): nothing is known done */
        {NULL, "post", 0, false},
        {ISSUED, NULL, 0, false},
    };
    hookd_replay_filter_t f;
    hookd_replay_filter_init(&f);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        dl_t d;
        hookd_replay_choice_t c;
        dl_init(&d, rows[i].type, "hook_failed", rows[i].phase, "cmdb");
        c = choose(&f, &trusted, &d);
        cr_assert_eq(c.action, HOOKD_REPLAY_SEND, "row %zu: %s", i, c.reason);
        cr_assert_eq(c.phases_done, rows[i].done, "row %zu: done %u", i, c.phases_done);
        cr_assert_eq(c.write_phases_done, rows[i].header, "row %zu", i);
    }
}

Test(replay_plan, a_resumed_event_keeps_its_done_phases)
{
    dl_t d;
    hookd_replay_filter_t f;
    hookd_replay_choice_t c;
    hookd_replay_filter_init(&f);
    /* replayed once already with pre,success, failed in post again */
    dl_init(&d, ISSUED, "hook_failed", "post", "mailer");
    dl_add(&d, "hookd.phases.done", "pre,success");
    c = choose(&f, &trusted, &d);
    cr_assert_eq(c.action, HOOKD_REPLAY_SEND);
    cr_assert_eq(c.phases_done, BIT(PRE) | BIT(SUCCESS));
    cr_assert_not(c.write_phases_done, "unchanged: the original header (and signature) stays");
    /* a header the worker must honour: refused when it would not */
    c = choose(&f, &untrusted, &d);
    cr_assert_eq(c.action, HOOKD_REPLAY_REFUSE);
}

Test(replay_plan, untrusted_worker_refuses_post_only_resume)
{
    dl_t d;
    hookd_replay_filter_t f;
    hookd_replay_choice_t c;
    hookd_replay_filter_init(&f);
    dl_init(&d, ISSUED, "hook_failed", "post", "mailer");
    c = choose(&f, &untrusted, &d);
    cr_assert_eq(c.action, HOOKD_REPLAY_REFUSE);
    cr_assert_not_null(strstr(c.reason, "'pre,success'"), "%s", c.reason);
    cr_assert_not_null(strstr(c.reason, "trust_event_flags"), "%s", c.reason);
    /* one that needs no header is sent all the same */
    dl_init(&d, ISSUED, "hook_failed", "success", "cmdb");
    cr_assert_eq(choose(&f, &untrusted, &d).action, HOOKD_REPLAY_SEND);
}

Test(replay_plan, signing_is_needed_under_auth)
{
    dl_t d;
    hookd_replay_filter_t f;
    hookd_replay_choice_t c;
    hookd_replay_trust_t no_key = {true, true, false}, key = {true, true, true};
    hookd_replay_filter_init(&f);
    dl_init(&d, ISSUED, "hook_failed", "post", "mailer");
    c = choose(&f, &no_key, &d);
    cr_assert_eq(c.action, HOOKD_REPLAY_REFUSE);
    cr_assert_not_null(strstr(c.reason, "signed"), "%s", c.reason);
    c = choose(&f, &key, &d);
    cr_assert_eq(c.action, HOOKD_REPLAY_SEND);
    cr_assert(c.resign);
    /* nothing signed changes: the original signature is kept, no key needed */
    dl_init(&d, REQUESTED, "hook_failed", "pre", "policy");
    c = choose(&f, &no_key, &d);
    cr_assert_eq(c.action, HOOKD_REPLAY_SEND);
    cr_assert_not(c.resign);
}

/* ---- what cannot be replayed ---------------------------------------------- */

Test(replay_plan, invalid_events_only_with_include_invalid)
{
    dl_t d;
    hookd_replay_filter_t f;
    hookd_replay_choice_t c;
    hookd_replay_filter_init(&f);
    dl_init(&d, NULL, "invalid_event", NULL, NULL);
    c = choose(&f, &trusted, &d);
    cr_assert_eq(c.action, HOOKD_REPLAY_SKIP_INVALID);
    cr_assert_not_null(strstr(c.reason, "--include-invalid"));
    f.include_invalid = true;
    c = choose(&f, &trusted, &d);
    cr_assert_eq(c.action, HOOKD_REPLAY_SEND);
    cr_assert_not(c.write_phases_done);
}

Test(replay_plan, unreplayable_dead_letters_are_refused_with_a_reason)
{
    static const struct {
        const char *header, *value;
        bool has_value;
        const char *reason;
    } rows[] = {
        {"hookd.dlq.record", "result", true, "not an input event"},
        {"hookd.dlq.value_truncated", "true", true, "partition 1 offset 17"},
        {NULL, NULL, false, "no value"},
    };
    hookd_replay_filter_t f;
    hookd_replay_filter_init(&f);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        dl_t d;
        hookd_replay_choice_t c;
        dl_init(&d, ISSUED, "hook_failed", "post", "mailer");
        if (rows[i].header)
            dl_add(&d, rows[i].header, rows[i].value);
        d.rec.has_value = rows[i].has_value;
        c = choose(&f, &trusted, &d);
        cr_assert_eq(c.action, HOOKD_REPLAY_REFUSE, "row %zu", i);
        cr_assert_not_null(strstr(c.reason, rows[i].reason), "row %zu: %s", i, c.reason);
    }
    {
        dl_t d;
        hookd_replay_choice_t c;
        memset(&d, 0, sizeof(d));
        d.rec.has_value = true;
        c = choose(&f, &trusted, &d);
        cr_assert_eq(c.action, HOOKD_REPLAY_REFUSE, "a record without context headers");
        cr_assert_not_null(strstr(c.reason, "not a dead letter"), "%s", c.reason);
    }
}

/* ---- the filter, at its edges --------------------------------------------- */

Test(replay_plan, filter_edges)
{
    dl_t d;
    hookd_replay_filter_t f;
    dl_init(&d, ISSUED, "retries_exhausted", "post", "mailer");

#define EXPECT(sel, what)                                                                          \
    cr_assert_eq(choose(&f, &trusted, &d).action, (sel) ? HOOKD_REPLAY_SEND : HOOKD_REPLAY_SKIP,   \
                 "%s", what)
    hookd_replay_filter_init(&f);
    EXPECT(true, "no filter");

    f.classes = "hook_failed";
    EXPECT(false, "other class");
    f.classes = "hook_failed, retries_exhausted";
    EXPECT(true, "class in a list, blanks");
    f.classes = "retries";
    EXPECT(false, "a prefix is not a class");
    hookd_replay_filter_init(&f);

    f.phases = "pre,success";
    EXPECT(false, "other phases");
    f.phases = "post";
    EXPECT(true, "phase");
    hookd_replay_filter_init(&f);

    f.handlers = "cmdb";
    EXPECT(false, "other handler");
    f.handlers = "cmdb,mailer";
    EXPECT(true, "handler");
    hookd_replay_filter_init(&f);

    f.key = "order-1";
    f.key_len = 7;
    EXPECT(true, "key");
    f.key = "order-12";
    f.key_len = 8;
    EXPECT(false, "a longer key");
    f.key = "order-";
    f.key_len = 6;
    EXPECT(false, "a prefix of the key");
    hookd_replay_filter_init(&f);

    f.since_ms = d.rec.timestamp_ms;
    EXPECT(true, "since is inclusive");
    f.since_ms = d.rec.timestamp_ms + 1;
    EXPECT(false, "since after");
    hookd_replay_filter_init(&f);
    f.until_ms = d.rec.timestamp_ms;
    EXPECT(false, "until is exclusive");
    f.until_ms = d.rec.timestamp_ms + 1;
    EXPECT(true, "until after");
    d.rec.timestamp_ms = -1;
    EXPECT(false, "no timestamp never matches a time range");
    d.rec.timestamp_ms = 1764669600000;
    hookd_replay_filter_init(&f);

    f.partition = 1;
    EXPECT(false, "other partition");
    f.partition = 2;
    f.from_offset = 40;
    f.to_offset = 40;
    EXPECT(true, "offset range of one, inclusive");
    f.from_offset = 41;
    f.to_offset = -1;
    EXPECT(false, "from after");
    f.from_offset = -1;
    f.to_offset = 39;
    EXPECT(false, "to before");
#undef EXPECT
}

/* ---- the replayed record's headers ----------------------------------------- */

static const hookd_header_t *find(hookd_headers_t *h, const char *name, size_t *count)
{
    const hookd_header_t *found = NULL;
    *count = 0;
    for (size_t i = 0; i < hookd_headers_count(h); i++)
        if (strcmp(hookd_headers_get(h, i)->name, name) == 0) {
            found = hookd_headers_get(h, i);
            (*count)++;
        }
    return found;
}

Test(replay_plan, headers_keep_the_original_add_provenance)
{
    dl_t d;
    hookd_replay_filter_t f;
    hookd_replay_choice_t c;
    hookd_replay_provenance_t p = {"acme.enrollment.dlq", "2026-12-03T00:00:00.000Z",
                                   "CMDB back (jdoe)", "acme-hookd.replay"};
    hookd_headers_t *h = hookd_headers_new();
    const hookd_header_t *x;
    size_t n;

    hookd_replay_filter_init(&f);
    dl_init(&d, ISSUED, "hook_failed", "post", "mailer");
    dl_add(&d, "hookd-signature", "v1;kid=k1;sig=stale");
    dl_add(&d, "hookd.replay.reason", "an earlier replay");
    c = choose(&f, &trusted, &d);
    cr_assert(c.write_phases_done);
    cr_assert_eq(hookd_replay_headers(&d.rec, &c, &p, h), 0);
    for (size_t i = 0; i < hookd_headers_count(h); i++) {
        const char *name = hookd_headers_get(h, i)->name;
        cr_assert_neq(strncmp(name, "hookd.dlq.", 10), 0, "context header %s kept", name);
        cr_assert_neq(strncmp(name, "__connect.errors.", 17), 0, "context header %s kept", name);
    }
    x = find(h, "traceparent", &n);
    cr_assert(x != NULL && n == 1 && strcmp(x->value, "00-abc-def-01") == 0);
    x = find(h, "hookd.phases.done", &n);
    cr_assert(x != NULL && n == 1 && strcmp(x->value, "pre,success") == 0);
    find(h, "hookd-signature", &n);
    cr_assert_eq(n, 0, "a signature over other headers is dropped");
    x = find(h, "hookd.replay.partition", &n);
    cr_assert(x != NULL && strcmp(x->value, "2") == 0);
    x = find(h, "hookd.replay.offset", &n);
    cr_assert(x != NULL && strcmp(x->value, "40") == 0);
    x = find(h, "hookd.replay.topic", &n);
    cr_assert(x != NULL && strcmp(x->value, "acme.enrollment.dlq") == 0);
    x = find(h, "hookd.replay.reason", &n);
    cr_assert(x != NULL && n == 1 && strcmp(x->value, "CMDB back (jdoe)") == 0,
              "older provenance replaced");
    x = find(h, "hookd.replay.time", &n);
    cr_assert(x != NULL && strcmp(x->value, "2026-12-03T00:00:00.000Z") == 0);
    x = find(h, "hookd.replay.group", &n);
    cr_assert(x != NULL && strcmp(x->value, "acme-hookd.replay") == 0);
    hookd_headers_destroy(h);

    /* no phase change: the signature and every original header stay */
    h = hookd_headers_new();
    dl_init(&d, REQUESTED, "hook_failed", "pre", "policy");
    dl_add(&d, "hookd-signature", "v1;kid=k1;sig=valid");
    c = choose(&f, &trusted, &d);
    cr_assert_eq(hookd_replay_headers(&d.rec, &c, &p, h), 0);
    find(h, "hookd-signature", &n);
    cr_assert_eq(n, 1);
    find(h, "hookd.phases.done", &n);
    cr_assert_eq(n, 0);
    hookd_headers_destroy(h);
}

/* ---- command-line values -------------------------------------------------- */

Test(replay_plan, times)
{
    int64_t ms;
    cr_assert_eq(hookd_replay_parse_time("2025-12-02T10:00:00Z", &ms), 0);
    cr_assert_eq(ms, 1764669600000);
    cr_assert_eq(hookd_replay_parse_time("2025-12-02T11:00:00.250+01:00", &ms), 0);
    cr_assert_eq(ms, 1764669600250);
    cr_assert_eq(hookd_replay_parse_time("2025-12-02T09:30:00-00:30", &ms), 0);
    cr_assert_eq(ms, 1764669600000);
    cr_assert_eq(hookd_replay_parse_time("1764669600000", &ms), 0);
    cr_assert_eq(ms, 1764669600000);
    static const char *const bad[] = {"",
                                      "yesterday",
                                      "2025-12-02",
                                      "2025-12-02T10:00:00",
                                      "2025-02-30T10:00:00Z",
                                      "2025-12-02T24:00:00Z",
                                      "2025-12-02T10:00:00.Z",
                                      "2025-12-02T10:00:00+0100",
                                      "2025-12-02T10:00:00Zjunk",
                                      "-5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_neq(hookd_replay_parse_time(bad[i], &ms), 0, "'%s' accepted", bad[i]);
}

Test(replay_plan, rates_and_phase_lists)
{
    double r;
    char err[128];
    cr_assert_eq(hookd_replay_parse_rate("50", &r), 0);
    cr_assert_float_eq(r, 50.0, 1e-9);
    cr_assert_eq(hookd_replay_parse_rate("2.5/s", &r), 0);
    cr_assert_float_eq(r, 2.5, 1e-9);
    static const char *const bad[] = {"", "0", "-1", "5/m", "fast", "1e9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_neq(hookd_replay_parse_rate(bad[i], &r), 0, "'%s' accepted", bad[i]);
    cr_assert_eq(hookd_replay_check_phases("pre, post", err, sizeof(err)), 0);
    cr_assert_neq(hookd_replay_check_phases("pre,verify", err, sizeof(err)), 0);
    cr_assert_not_null(strstr(err, "'verify'"), "%s", err);
    cr_assert_neq(hookd_replay_check_phases("", err, sizeof(err)), 0);
}
