/* SPDX-License-Identifier: MIT */
/*
 * The phase engine. Pure: everything it learns about handlers comes through
 * the invoker seam, everything it decides goes into the decision.
 *
 * The control semantics are data, in the manner of Linux-PAM's control
 * flags: which phases an event type runs (phase_plan), and what a failure
 * does depending on whether the phase's allow flag is set (failure_action).
 */
#include "engine.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"

static const char *const phase_names[HOOKD_PHASE_COUNT] = {"pre", "success", "post"};

static const char *const error_class_names[HOOKD_ERRCLASS_COUNT] = {
    [HOOKD_ERRCLASS_NONE] = "",
    [HOOKD_ERRCLASS_INVALID_EVENT] = "invalid_event",
    [HOOKD_ERRCLASS_AUTH_FAILED] = "auth_failed",
    [HOOKD_ERRCLASS_HOOK_FAILED] = "hook_failed",
    [HOOKD_ERRCLASS_RETRIES_EXHAUSTED] = "retries_exhausted",
    [HOOKD_ERRCLASS_HOOK_CRASHED] = "hook_crashed",
    [HOOKD_ERRCLASS_HOOK_TIMEOUT] = "hook_timeout",
};

const char *hookd_phase_name(hookd_phase_t phase)
{
    return (unsigned)phase < HOOKD_PHASE_COUNT ? phase_names[phase] : "?";
}

const char *hookd_verdict_name(hookd_verdict_t v)
{
    return v == HOOKD_VERDICT_COMPLETED ? "completed" : "failed";
}

const char *hookd_error_class_name(hookd_error_class_t c)
{
    return (unsigned)c < HOOKD_ERRCLASS_COUNT ? error_class_names[c] : "?";
}

void hookd_policy_defaults(hookd_policy_t *p)
{
    memset(p, 0, sizeof(*p));
    p->allow_failure[HOOKD_PHASE_PRE] = false;
    p->allow_failure[HOOKD_PHASE_SUCCESS] = false;
    p->allow_failure[HOOKD_PHASE_POST] = true;
    p->retry_max_attempts = 3;
    p->retry_initial_ms = 200;
    p->retry_max_ms = 5000;
}

/* The phases an event type runs, in order (HOOKD_PHASE_COUNT ends the list). */
static const hookd_phase_t phase_plan[HOOKD_EVENT_TYPE_COUNT][HOOKD_PHASE_COUNT + 1] = {
    [HOOKD_EVENT_REQUESTED] = {HOOKD_PHASE_PRE, HOOKD_PHASE_COUNT},
    [HOOKD_EVENT_ISSUED] = {HOOKD_PHASE_SUCCESS, HOOKD_PHASE_POST, HOOKD_PHASE_COUNT},
    [HOOKD_EVENT_FAILED] = {HOOKD_PHASE_POST, HOOKD_PHASE_COUNT},
};

unsigned hookd_engine_plan(hookd_event_type_t type)
{
    unsigned set = 0;
    if ((unsigned)type >= HOOKD_EVENT_TYPE_COUNT)
        return 0;
    for (const hookd_phase_t *ph = phase_plan[type]; *ph != HOOKD_PHASE_COUNT; ph++)
        set |= HOOKD_PHASE_BIT(*ph);
    return set;
}

/*
 * What a failed run does to the message. The acme2certifier semantics
 * reduce to: an allowed failure is recorded and everything goes on; a
 * failure that is not allowed ends the chain and every later phase (a
 * failed pre skips success and post, a failed success skips post) and
 * fails the message. Kept as a table so a new phase or control flag is one
 * row, not another branch.
 */
typedef enum failure_action {
    ACTION_RECORD_CONTINUE, /* note it in the result, run the rest */
    ACTION_FAIL_STOP        /* verdict failed, dead letter, run nothing more */
} failure_action_t;

static const failure_action_t failure_action[HOOKD_PHASE_COUNT][2 /* allowed? */] = {
    [HOOKD_PHASE_PRE] = {ACTION_FAIL_STOP, ACTION_RECORD_CONTINUE},
    [HOOKD_PHASE_SUCCESS] = {ACTION_FAIL_STOP, ACTION_RECORD_CONTINUE},
    [HOOKD_PHASE_POST] = {ACTION_FAIL_STOP, ACTION_RECORD_CONTINUE},
};

static uint64_t now_us(const hookd_invoker_t *inv)
{
    return inv->now_us ? inv->now_us(inv->opaque) : hookd_now_us();
}

/* The delay before attempt `attempt` (2 = first retry): initial * 2^(n-2), capped. */
static uint32_t backoff_ms(const hookd_policy_t *p, uint32_t attempt)
{
    uint64_t d = p->retry_initial_ms;
    for (uint32_t i = 2; i < attempt && d < p->retry_max_ms; i++)
        d *= 2;
    return (uint32_t)(d > p->retry_max_ms ? p->retry_max_ms : d);
}

/*
 * Run one handler in one phase, retries folded in. Returns false when a
 * backoff was interrupted (shutdown): the run is then incomplete.
 */
static bool run_one(const hookd_event_t *ev, size_t idx, const char *name, hookd_phase_t phase,
                    const hookd_policy_t *policy, const hookd_invoker_t *inv, hookd_run_t *run)
{
    hookd_invocation_t call;
    uint32_t max_attempts = policy->retry_max_attempts ? policy->retry_max_attempts : 1;

    /* Only the fixed fields: the message buffers are large and written on demand. */
    memset(run, 0, offsetof(hookd_run_t, error));
    run->error[0] = '\0';
    run->phase = phase;
    run->handler_index = idx;
    run->handler_name = name;

    for (;;) {
        uint64_t t0 = now_us(inv);
        call.outcome = HOOKD_FAIL;
        call.error_class = HOOKD_ERRCLASS_NONE;
        call.error[0] = '\0';
        inv->invoke(inv->opaque, idx, phase, ev, &call);
        run->duration_us += now_us(inv) - t0;
        run->attempts++;

        if (call.outcome == HOOKD_OK) {
            run->outcome = HOOKD_OK;
            run->error_class = HOOKD_ERRCLASS_NONE;
            run->error[0] = '\0';
            return true;
        }
        snprintf(run->error, sizeof(run->error), "%s", call.error);
        if (call.outcome != HOOKD_RETRY) {
            run->outcome = HOOKD_FAIL;
            run->error_class = call.error_class != HOOKD_ERRCLASS_NONE ? call.error_class
                                                                       : HOOKD_ERRCLASS_HOOK_FAILED;
            return true;
        }
        if (run->attempts >= max_attempts) {
            run->outcome = HOOKD_FAIL;
            run->error_class = HOOKD_ERRCLASS_RETRIES_EXHAUSTED;
            if (run->error[0] == '\0')
                snprintf(run->error, sizeof(run->error), "handler asked for a retry %u times",
                         run->attempts);
            return true;
        }
        if (inv->backoff && !inv->backoff(inv->opaque, backoff_ms(policy, run->attempts + 1)))
            return false;
    }
}

/*
 * Reset a decision without touching its run slots and message buffer
 * (tens of KiB, per message on the hot path): run_count says which runs are
 * valid and every run is initialised when it starts.
 */
static void decision_init(hookd_decision_t *out)
{
    memset(out, 0, offsetof(hookd_decision_t, error));
    out->error[0] = '\0';
    out->run_count = 0;
}

void hookd_engine_run(const hookd_event_t *event, const hookd_chain_t *chain,
                      const hookd_policy_t *policy, const hookd_invoker_t *invoker,
                      hookd_decision_t *out)
{
    hookd_engine_run_from(event, chain, policy, 0, invoker, out);
}

void hookd_engine_run_from(const hookd_event_t *event, const hookd_chain_t *chain,
                           const hookd_policy_t *policy, unsigned phases_done,
                           const hookd_invoker_t *invoker, hookd_decision_t *out)
{
    const hookd_phase_t *start, *ph;

    decision_init(out);
    out->verdict = HOOKD_VERDICT_COMPLETED;
    out->failed_run = -1;

    if ((unsigned)event->type >= HOOKD_EVENT_TYPE_COUNT) {
        hookd_decision_reject(out, HOOKD_ERRCLASS_INVALID_EVENT, "unknown event type");
        return;
    }

    /* Resume: skip the leading plan phases already done. A done phase
     * after one that is not would mean a later chain ran without the
     * earlier one: the header cannot be true, and guessing which part of
     * it is wrong could run a success hook twice or skip a gate. */
    for (start = phase_plan[event->type];
         *start != HOOKD_PHASE_COUNT && (phases_done & HOOKD_PHASE_BIT(*start)); start++)
        out->phases_skipped |= HOOKD_PHASE_BIT(*start);
    for (ph = start; *ph != HOOKD_PHASE_COUNT; ph++) {
        if (phases_done & HOOKD_PHASE_BIT(*ph)) {
            char reason[128];
            snprintf(reason, sizeof(reason),
                     "phases done: %s is listed as done but %s, which runs before it, is not",
                     hookd_phase_name(*ph), hookd_phase_name(*start));
            hookd_decision_reject(out, HOOKD_ERRCLASS_INVALID_EVENT, reason);
            return;
        }
    }

    for (ph = start; *ph != HOOKD_PHASE_COUNT; ph++) {
        for (size_t i = 0; i < chain->count && i < HOOKD_CHAIN_MAX; i++) {
            const hookd_chain_entry_t *h = &chain->entries[i];
            hookd_run_t *run;

            if (!h->has_phase[*ph])
                continue;
            run = &out->runs[out->run_count];
            if (!run_one(event, i, h->name, *ph, policy, invoker, run)) {
                out->aborted = true;
                return;
            }
            out->run_count++;
            if (run->outcome == HOOKD_OK)
                continue;

            run->failure_allowed = policy->allow_failure[*ph];
            if (failure_action[*ph][run->failure_allowed] == ACTION_RECORD_CONTINUE)
                continue;

            out->verdict = HOOKD_VERDICT_FAILED;
            out->dead_letter = true;
            out->error_class = run->error_class;
            out->failed_run = (int)(out->run_count - 1);
            out->failed_phase = *ph;
            snprintf(out->error, sizeof(out->error), "%s", run->error);
            return;
        }
    }
}

void hookd_decision_reject(hookd_decision_t *out, hookd_error_class_t cls, const char *reason)
{
    decision_init(out);
    out->verdict = HOOKD_VERDICT_FAILED;
    out->dead_letter = true;
    out->error_class = cls;
    out->failed_run = -1;
    snprintf(out->error, sizeof(out->error), "%s", reason ? reason : "");
}
