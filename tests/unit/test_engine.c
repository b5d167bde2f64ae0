/* SPDX-License-Identifier: MIT */
/*
 * The phase engine's truth table: every event type x every behaviour of each
 * handler of a 2-handler chain in each phase (ok, fail, retry-then-ok,
 * retry-exhausted) x every setting of the three allow flags x every set of
 * phases already done (hookd.phases.done: the engine resumes after them).
 *
 * The expected outcome of each case comes from `oracle()`, a direct
 * transcription of acme2certifier's hook semantics written as the sequential
 * try/except code a reader of its wiki would write, independent of the
 * engine's table-driven structure. A few hand-written rows pin the
 * documented cases down explicitly as well.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"

enum behaviour { B_OK, B_FAIL, B_RETRY_OK, B_RETRY_EXHAUSTED, B_COUNT };
static const char *const bname[B_COUNT] = {"ok", "fail", "retry-then-ok", "retry-exhausted"};

#define NH 2
#define MAX_ATTEMPTS 3

typedef struct call {
    size_t handler;
    hookd_phase_t phase;
    const hookd_event_t *event;
} call_t;

typedef struct fake {
    enum behaviour script[NH][HOOKD_PHASE_COUNT];
    unsigned attempts[NH][HOOKD_PHASE_COUNT];
    call_t calls[64];
    size_t ncalls;
    uint32_t delays[64];
    size_t ndelays;
    bool interrupt_backoff;
    uint64_t clock_us;
} fake_t;

static void fake_invoke(void *opaque, size_t idx, hookd_phase_t phase, const hookd_event_t *ev,
                        hookd_invocation_t *out)
{
    fake_t *f = opaque;
    unsigned n = ++f->attempts[idx][phase];

    cr_assert_lt(f->ncalls, 64);
    f->calls[f->ncalls++] = (call_t){idx, phase, ev};
    f->clock_us += 10; /* each call "takes" 10 us */
    switch (f->script[idx][phase]) {
    case B_OK:
        out->outcome = HOOKD_OK;
        break;
    case B_FAIL:
        out->outcome = HOOKD_FAIL;
        snprintf(out->error, sizeof(out->error), "h%zu %s failed", idx, hookd_phase_name(phase));
        break;
    case B_RETRY_OK:
        out->outcome = n < 2 ? HOOKD_RETRY : HOOKD_OK;
        break;
    case B_RETRY_EXHAUSTED:
        out->outcome = HOOKD_RETRY;
        snprintf(out->error, sizeof(out->error), "h%zu busy", idx);
        break;
    default:
        cr_assert_fail("bad script");
    }
}

static bool fake_backoff(void *opaque, uint32_t delay_ms)
{
    fake_t *f = opaque;
    f->delays[f->ndelays++] = delay_ms;
    return !f->interrupt_backoff;
}

static uint64_t fake_now(void *opaque)
{
    return ((fake_t *)opaque)->clock_us;
}

static const hookd_chain_entry_t entries[NH] = {
    {"alpha", {true, true, true}},
    {"beta", {true, true, true}},
};
static const hookd_chain_t chain = {entries, NH};

/* ---- the oracle ---------------------------------------------------------- */

typedef struct expect_run {
    size_t handler;
    hookd_phase_t phase;
    bool ok;
    unsigned attempts;
    hookd_error_class_t cls;
    bool allowed;
} expect_run_t;

typedef struct expectation {
    expect_run_t runs[8];
    size_t nruns;
    bool failed;      /* verdict failed, dead-lettered */
    bool rejected;    /* invalid_event before any handler ran: the done set is impossible */
    unsigned skipped; /* phases of the event not run because they were done */
} expectation_t;

/* Run one phase the way acme2certifier's wiki describes it; false = stop everything. */
static bool oracle_phase(expectation_t *e, hookd_phase_t phase,
                         enum behaviour b[NH][HOOKD_PHASE_COUNT],
                         const bool allow[HOOKD_PHASE_COUNT])
{
    for (size_t h = 0; h < NH; h++) {
        expect_run_t *r = &e->runs[e->nruns++];
        enum behaviour x = b[h][phase];
        r->handler = h;
        r->phase = phase;
        r->ok = (x == B_OK || x == B_RETRY_OK);
        r->attempts = x == B_RETRY_OK ? 2 : x == B_RETRY_EXHAUSTED ? MAX_ATTEMPTS : 1;
        r->cls = x == B_FAIL              ? HOOKD_ERRCLASS_HOOK_FAILED
                 : x == B_RETRY_EXHAUSTED ? HOOKD_ERRCLASS_RETRIES_EXHAUSTED
                                          : HOOKD_ERRCLASS_NONE;
        if (r->ok)
            continue;
        /* "try: hook() except: if not allow: abort" */
        if (allow[phase]) {
            r->allowed = true;
            continue;
        }
        e->failed = true;
        return false;
    }
    return true;
}

/*
 * `done`: the phases a resumed event says already succeeded. A done phase
 * is not run again; a phase the event type does not run is irrelevant; a
 * done post with a success still due (issued) cannot be true and is refused.
 */
static void oracle(hookd_event_type_t type, enum behaviour b[NH][HOOKD_PHASE_COUNT],
                   const bool allow[HOOKD_PHASE_COUNT], unsigned done, expectation_t *e)
{
    bool pre_done = done & 1, success_done = (done >> 1) & 1, post_done = (done >> 2) & 1;

    memset(e, 0, sizeof(*e));
    if (type == HOOKD_EVENT_REQUESTED) {
        if (pre_done)
            e->skipped = 1;
        else
            oracle_phase(e, HOOKD_PHASE_PRE, b, allow);
    } else if (type == HOOKD_EVENT_ISSUED) {
        if (post_done && !success_done) {
            e->rejected = e->failed = true;
            return;
        }
        e->skipped = (success_done ? 2u : 0u) | (success_done && post_done ? 4u : 0u);
        /* success_hook first; a failing success_hook (not allowed) skips post_hook */
        if ((success_done || oracle_phase(e, HOOKD_PHASE_SUCCESS, b, allow)) && !post_done)
            oracle_phase(e, HOOKD_PHASE_POST, b, allow);
    } else {
        if (post_done)
            e->skipped = 4;
        else
            oracle_phase(e, HOOKD_PHASE_POST, b, allow);
    }
}

/* ---- running one case ---------------------------------------------------- */

static void check_case(hookd_event_type_t type, enum behaviour b[NH][HOOKD_PHASE_COUNT],
                       const bool allow[HOOKD_PHASE_COUNT], unsigned done)
{
    fake_t f;
    hookd_event_t ev = {.type = type, .id = "ev-1", .order_name = "ord", .certificate_name = "crt"};
    hookd_policy_t pol;
    hookd_invoker_t inv = {fake_invoke, fake_backoff, fake_now, &f};
    hookd_decision_t d;
    expectation_t e;
    char label[160];

    memset(&f, 0, sizeof(f));
    memcpy(f.script, b, sizeof(f.script));
    hookd_policy_defaults(&pol);
    memcpy(pol.allow_failure, allow, sizeof(pol.allow_failure));
    pol.retry_max_attempts = MAX_ATTEMPTS;

    if (done == 0)
        hookd_engine_run(&ev, &chain, &pol, &inv, &d);
    else
        hookd_engine_run_from(&ev, &chain, &pol, done, &inv, &d);
    oracle(type, b, allow, done, &e);

    snprintf(label, sizeof(label), "%s pre=%s/%s success=%s/%s post=%s/%s allow=%d%d%d done=%u",
             hookd_event_type_name(type), bname[b[0][0]], bname[b[1][0]], bname[b[0][1]],
             bname[b[1][1]], bname[b[0][2]], bname[b[1][2]], allow[0], allow[1], allow[2], done);

    cr_assert_not(d.aborted, "%s", label);
    cr_assert_eq(d.phases_skipped, e.skipped, "%s: skipped %u, expected %u", label,
                 d.phases_skipped, e.skipped);
    if (e.rejected) {
        cr_assert_eq(d.run_count, 0, "%s: a refused resume runs nothing", label);
        cr_assert_eq(f.ncalls, 0, "%s", label);
        cr_assert_eq(d.verdict, HOOKD_VERDICT_FAILED, "%s", label);
        cr_assert(d.dead_letter, "%s", label);
        cr_assert_eq(d.error_class, HOOKD_ERRCLASS_INVALID_EVENT, "%s", label);
        cr_assert_eq(d.failed_run, -1, "%s", label);
        cr_assert_not_null(strstr(d.error, "post is listed as done but success"), "%s: %s", label,
                           d.error);
        return;
    }
    cr_assert_eq(d.run_count, e.nruns, "%s: %zu runs, expected %zu", label, d.run_count, e.nruns);
    for (size_t i = 0; i < e.nruns; i++) {
        const hookd_run_t *r = &d.runs[i];
        const expect_run_t *x = &e.runs[i];
        cr_assert_eq(r->handler_index, x->handler, "%s run %zu handler", label, i);
        cr_assert_str_eq(r->handler_name, entries[x->handler].name, "%s", label);
        cr_assert_eq(r->phase, x->phase, "%s run %zu phase", label, i);
        cr_assert_eq(r->outcome, x->ok ? HOOKD_OK : HOOKD_FAIL, "%s run %zu outcome", label, i);
        cr_assert_eq(r->attempts, x->attempts, "%s run %zu attempts", label, i);
        cr_assert_eq(r->error_class, x->cls, "%s run %zu class", label, i);
        cr_assert_eq(r->failure_allowed, x->allowed, "%s run %zu allowed", label, i);
        cr_assert_eq(r->duration_us, 10u * x->attempts, "%s run %zu duration", label, i);
        if (!x->ok)
            cr_assert_neq(r->error[0], '\0', "%s run %zu: failure without a message", label, i);
    }
    /* The handlers were called in exactly this order, each attempt with the event itself. */
    size_t k = 0;
    for (size_t i = 0; i < e.nruns; i++)
        for (unsigned a = 0; a < e.runs[i].attempts; a++, k++) {
            cr_assert_lt(k, f.ncalls, "%s: missing call", label);
            cr_assert_eq(f.calls[k].handler, e.runs[i].handler, "%s call %zu", label, k);
            cr_assert_eq(f.calls[k].phase, e.runs[i].phase, "%s call %zu", label, k);
            cr_assert_eq(f.calls[k].event, &ev, "%s call %zu", label, k);
        }
    cr_assert_eq(k, f.ncalls, "%s: %zu calls, expected %zu", label, f.ncalls, k);

    cr_assert_eq(d.verdict, e.failed ? HOOKD_VERDICT_FAILED : HOOKD_VERDICT_COMPLETED, "%s", label);
    cr_assert_eq(d.dead_letter, e.failed, "%s", label);
    if (e.failed) {
        cr_assert_eq(d.failed_run, (int)e.nruns - 1, "%s", label);
        cr_assert_eq(d.error_class, e.runs[e.nruns - 1].cls, "%s", label);
        cr_assert_eq(d.failed_phase, e.runs[e.nruns - 1].phase, "%s", label);
        cr_assert_str_eq(d.error, d.runs[e.nruns - 1].error, "%s", label);
    } else {
        cr_assert_eq(d.failed_run, -1, "%s", label);
        cr_assert_eq(d.error_class, HOOKD_ERRCLASS_NONE, "%s", label);
    }
}

static const hookd_phase_t phases_of[HOOKD_EVENT_TYPE_COUNT][2] = {
    [HOOKD_EVENT_REQUESTED] = {HOOKD_PHASE_PRE, HOOKD_PHASE_COUNT},
    [HOOKD_EVENT_ISSUED] = {HOOKD_PHASE_SUCCESS, HOOKD_PHASE_POST},
    [HOOKD_EVENT_FAILED] = {HOOKD_PHASE_POST, HOOKD_PHASE_COUNT},
};

Test(engine, whole_truth_table)
{
    size_t cases = 0;
    for (int type = 0; type < HOOKD_EVENT_TYPE_COUNT; type++) {
        /* The slots this event type exercises: (handler, phase) pairs. */
        hookd_phase_t slots_phase[4];
        size_t slots_handler[4], nslots = 0;
        for (int p = 0; p < 2; p++) {
            if (phases_of[type][p] == HOOKD_PHASE_COUNT)
                continue;
            for (size_t h = 0; h < NH; h++) {
                slots_phase[nslots] = phases_of[type][p];
                slots_handler[nslots++] = h;
            }
        }
        unsigned combos = 1;
        for (size_t s = 0; s < nslots; s++)
            combos *= B_COUNT;
        for (unsigned c = 0; c < combos; c++) {
            enum behaviour b[NH][HOOKD_PHASE_COUNT] = {{B_OK}};
            unsigned x = c;
            for (size_t s = 0; s < nslots; s++, x /= B_COUNT)
                b[slots_handler[s]][slots_phase[s]] = (enum behaviour)(x % B_COUNT);
            for (int flags = 0; flags < 8; flags++) {
                bool allow[HOOKD_PHASE_COUNT] = {flags & 1, (flags >> 1) & 1, (flags >> 2) & 1};
                for (unsigned done = 0; done < 8; done++) {
                    check_case((hookd_event_type_t)type, b, allow, done);
                    cases++;
                }
            }
        }
    }
    /* (16 x 8 (requested) + 256 x 8 (issued) + 16 x 8 (failed)) x 8 done sets */
    cr_assert_eq(cases, 2304 * 8);
}

/* ---- the documented cases, written out ---------------------------------- */

static hookd_decision_t run_script(hookd_event_type_t type, enum behaviour b[NH][HOOKD_PHASE_COUNT],
                                   bool allow_pre, bool allow_success, bool allow_post, fake_t *f)
{
    hookd_event_t ev = {.type = type, .id = "x"};
    hookd_policy_t pol;
    hookd_invoker_t inv = {fake_invoke, fake_backoff, fake_now, f};
    hookd_decision_t d;
    memset(f, 0, sizeof(*f));
    memcpy(f->script, b, sizeof(f->script));
    hookd_policy_defaults(&pol);
    pol.allow_failure[HOOKD_PHASE_PRE] = allow_pre;
    pol.allow_failure[HOOKD_PHASE_SUCCESS] = allow_success;
    pol.allow_failure[HOOKD_PHASE_POST] = allow_post;
    hookd_engine_run(&ev, &chain, &pol, &inv, &d);
    return d;
}

Test(engine, defaults_are_acme2certifiers)
{
    hookd_policy_t p;
    hookd_policy_defaults(&p);
    cr_assert_not(p.allow_failure[HOOKD_PHASE_PRE]);
    cr_assert_not(p.allow_failure[HOOKD_PHASE_SUCCESS]);
    cr_assert(p.allow_failure[HOOKD_PHASE_POST]);
}

Test(engine, failing_pre_stops_the_chain)
{
    fake_t f;
    enum behaviour b[NH][HOOKD_PHASE_COUNT] = {{B_FAIL, B_OK, B_OK}, {B_OK, B_OK, B_OK}};
    hookd_decision_t d = run_script(HOOKD_EVENT_REQUESTED, b, false, false, true, &f);
    cr_assert_eq(f.ncalls, 1, "beta's pre hook must not run after alpha's failed");
    cr_assert_eq(d.verdict, HOOKD_VERDICT_FAILED);
    cr_assert(d.dead_letter);
    cr_assert_str_eq(d.error, "h0 pre failed");
}

Test(engine, failing_success_skips_post)
{
    fake_t f;
    enum behaviour b[NH][HOOKD_PHASE_COUNT] = {{B_OK, B_OK, B_OK}, {B_OK, B_FAIL, B_OK}};
    hookd_decision_t d = run_script(HOOKD_EVENT_ISSUED, b, false, false, true, &f);
    cr_assert_eq(f.ncalls, 2); /* alpha success, beta success; no post */
    cr_assert_eq(d.run_count, 2);
    cr_assert_eq(d.runs[1].phase, HOOKD_PHASE_SUCCESS);
    cr_assert_eq(d.verdict, HOOKD_VERDICT_FAILED);
}

Test(engine, failing_post_is_logged_by_default)
{
    fake_t f;
    enum behaviour b[NH][HOOKD_PHASE_COUNT] = {{B_OK, B_OK, B_FAIL}, {B_OK, B_OK, B_OK}};
    hookd_decision_t d = run_script(HOOKD_EVENT_FAILED, b, false, false, true, &f);
    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED);
    cr_assert_not(d.dead_letter);
    cr_assert_eq(d.run_count, 2);
    cr_assert(d.runs[0].failure_allowed, "an allowed failure is recorded, never hidden");
    cr_assert_eq(d.runs[0].outcome, HOOKD_FAIL);
}

Test(engine, failing_post_fails_the_message_when_not_allowed)
{
    fake_t f;
    enum behaviour b[NH][HOOKD_PHASE_COUNT] = {{B_OK, B_OK, B_FAIL}, {B_OK, B_OK, B_OK}};
    hookd_decision_t d = run_script(HOOKD_EVENT_ISSUED, b, false, false, false, &f);
    cr_assert_eq(d.verdict, HOOKD_VERDICT_FAILED);
    cr_assert_eq(d.run_count, 3); /* alpha success, beta success, alpha post */
    cr_assert_eq(f.ncalls, 3);
}

Test(engine, backoff_doubles_and_is_capped)
{
    fake_t f;
    hookd_event_t ev = {.type = HOOKD_EVENT_REQUESTED, .id = "x"};
    hookd_policy_t pol;
    hookd_invoker_t inv = {fake_invoke, fake_backoff, fake_now, &f};
    hookd_decision_t d;

    memset(&f, 0, sizeof(f));
    f.script[0][HOOKD_PHASE_PRE] = B_RETRY_EXHAUSTED;
    hookd_policy_defaults(&pol);
    pol.retry_max_attempts = 6;
    pol.retry_initial_ms = 100;
    pol.retry_max_ms = 500;
    hookd_engine_run(&ev, &chain, &pol, &inv, &d);
    cr_assert_eq(f.ndelays, 5);
    uint32_t want[] = {100, 200, 400, 500, 500};
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(f.delays[i], want[i], "delay %zu: %u", i, f.delays[i]);
    cr_assert_eq(d.runs[0].attempts, 6);
    cr_assert_eq(d.error_class, HOOKD_ERRCLASS_RETRIES_EXHAUSTED);
}

Test(engine, interrupted_backoff_aborts_without_verdict)
{
    fake_t f;
    hookd_event_t ev = {.type = HOOKD_EVENT_REQUESTED, .id = "x"};
    hookd_policy_t pol;
    hookd_invoker_t inv = {fake_invoke, fake_backoff, fake_now, &f};
    hookd_decision_t d;

    memset(&f, 0, sizeof(f));
    f.script[0][HOOKD_PHASE_PRE] = B_RETRY_EXHAUSTED;
    f.interrupt_backoff = true;
    hookd_policy_defaults(&pol);
    hookd_engine_run(&ev, &chain, &pol, &inv, &d);
    cr_assert(d.aborted);
    cr_assert_not(d.dead_letter);
    cr_assert_eq(f.ncalls, 1);
}

Test(engine, missing_callbacks_are_skipped)
{
    fake_t f;
    static const hookd_chain_entry_t only_post[2] = {
        {"a", {false, false, true}},
        {"b", {true, false, false}},
    };
    hookd_chain_t c = {only_post, 2};
    hookd_event_t ev = {.type = HOOKD_EVENT_ISSUED, .id = "x"};
    hookd_policy_t pol;
    hookd_invoker_t inv = {fake_invoke, fake_backoff, fake_now, &f};
    hookd_decision_t d;

    memset(&f, 0, sizeof(f));
    hookd_policy_defaults(&pol);
    hookd_engine_run(&ev, &c, &pol, &inv, &d);
    cr_assert_eq(d.run_count, 1);
    cr_assert_eq(d.runs[0].phase, HOOKD_PHASE_POST);
    cr_assert_str_eq(d.runs[0].handler_name, "a");
}

Test(engine, reject_is_a_failed_dead_letter)
{
    hookd_decision_t d;
    hookd_decision_reject(&d, HOOKD_ERRCLASS_INVALID_EVENT, "missing field 'csr'");
    cr_assert_eq(d.verdict, HOOKD_VERDICT_FAILED);
    cr_assert(d.dead_letter);
    cr_assert_str_eq(hookd_error_class_name(d.error_class), "invalid_event");
    cr_assert_str_eq(d.error, "missing field 'csr'");
    cr_assert_eq(d.run_count, 0);
}

/* ---- resuming after the phases already done (hookd.phases.done) ---------- */

static hookd_decision_t run_resumed(hookd_event_type_t type,
                                    enum behaviour b[NH][HOOKD_PHASE_COUNT], unsigned done,
                                    fake_t *f)
{
    hookd_event_t ev = {.type = type, .id = "x"};
    hookd_policy_t pol;
    hookd_invoker_t inv = {fake_invoke, fake_backoff, fake_now, f};
    hookd_decision_t d;
    memset(f, 0, sizeof(*f));
    memcpy(f->script, b, sizeof(f->script));
    hookd_policy_defaults(&pol);
    pol.allow_failure[HOOKD_PHASE_POST] = false;
    hookd_engine_run_from(&ev, &chain, &pol, done, &inv, &d);
    return d;
}

Test(engine, issued_resumed_after_success_runs_post_only)
{
    fake_t f;
    enum behaviour b[NH][HOOKD_PHASE_COUNT] = {{B_OK, B_OK, B_OK}, {B_OK, B_OK, B_OK}};
    hookd_decision_t d =
        run_resumed(HOOKD_EVENT_ISSUED, b,
                    HOOKD_PHASE_BIT(HOOKD_PHASE_PRE) | HOOKD_PHASE_BIT(HOOKD_PHASE_SUCCESS), &f);
    cr_assert_eq(f.ncalls, 2);
    for (size_t i = 0; i < f.ncalls; i++)
        cr_assert_eq(f.calls[i].phase, HOOKD_PHASE_POST, "call %zu ran a success hook again", i);
    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED);
    cr_assert_eq(d.phases_skipped, HOOKD_PHASE_BIT(HOOKD_PHASE_SUCCESS),
                 "pre is not a phase of an issued event: not reported as skipped");
}

Test(engine, resumed_post_failure_still_fails)
{
    fake_t f;
    enum behaviour b[NH][HOOKD_PHASE_COUNT] = {{B_OK, B_OK, B_OK}, {B_OK, B_FAIL, B_FAIL}};
    hookd_decision_t d =
        run_resumed(HOOKD_EVENT_ISSUED, b, HOOKD_PHASE_BIT(HOOKD_PHASE_SUCCESS), &f);
    cr_assert_eq(f.ncalls, 2); /* alpha post, beta post (fails) */
    cr_assert_eq(d.verdict, HOOKD_VERDICT_FAILED);
    cr_assert(d.dead_letter);
    cr_assert_eq(d.failed_phase, HOOKD_PHASE_POST);
    cr_assert_eq(d.phases_skipped, HOOKD_PHASE_BIT(HOOKD_PHASE_SUCCESS));
}

Test(engine, requested_with_pre_done_runs_nothing)
{
    fake_t f;
    enum behaviour b[NH][HOOKD_PHASE_COUNT] = {{B_FAIL, B_FAIL, B_FAIL}, {B_FAIL, B_FAIL, B_FAIL}};
    hookd_decision_t d =
        run_resumed(HOOKD_EVENT_REQUESTED, b, HOOKD_PHASE_BIT(HOOKD_PHASE_PRE), &f);
    cr_assert_eq(f.ncalls, 0);
    cr_assert_eq(d.run_count, 0);
    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED);
    cr_assert_eq(d.phases_skipped, HOOKD_PHASE_BIT(HOOKD_PHASE_PRE));
}

Test(engine, done_phases_foreign_to_the_event_change_nothing)
{
    fake_t f;
    enum behaviour b[NH][HOOKD_PHASE_COUNT] = {{B_OK, B_OK, B_OK}, {B_OK, B_OK, B_OK}};
    hookd_decision_t d =
        run_resumed(HOOKD_EVENT_FAILED, b,
                    HOOKD_PHASE_BIT(HOOKD_PHASE_PRE) | HOOKD_PHASE_BIT(HOOKD_PHASE_SUCCESS), &f);
    cr_assert_eq(f.ncalls, 2);
    cr_assert_eq(d.phases_skipped, 0);
    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED);
}

Test(engine, post_done_without_success_is_refused)
{
    fake_t f;
    enum behaviour b[NH][HOOKD_PHASE_COUNT] = {{B_OK, B_OK, B_OK}, {B_OK, B_OK, B_OK}};
    hookd_decision_t d = run_resumed(HOOKD_EVENT_ISSUED, b, HOOKD_PHASE_BIT(HOOKD_PHASE_POST), &f);
    cr_assert_eq(f.ncalls, 0, "neither chain may run on an impossible resume");
    cr_assert_eq(d.error_class, HOOKD_ERRCLASS_INVALID_EVENT);
    cr_assert(d.dead_letter);
    cr_assert_str_eq(
        d.error, "phases done: post is listed as done but success, which runs before it, is not");
}
