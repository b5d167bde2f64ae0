/* SPDX-License-Identifier: MIT */
/*
 * The phase engine: a pure function from (event, handler chain, policy,
 * handler outcomes) to a decision. It knows nothing of Kafka. Handler
 * outcomes reach it through ONE seam, hookd_invoker_t, so the daemon calls
 * real handlers (in-process or isolated), and the tests script outcomes.
 */
#ifndef HOOKD_ENGINE_H
#define HOOKD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <acme_hookd/hook.h>

#include "event.h"
#include "policy.h" /* hookd_phase_t, hookd_policy_t, HOOKD_ERROR_MAX */

#ifdef __cplusplus
extern "C" {
#endif

#define HOOKD_CHAIN_MAX 16 /* handlers in one chain */
#define HOOKD_RUNS_MAX (HOOKD_CHAIN_MAX * 2)

/* A set of phases as a bit mask: HOOKD_PHASE_BIT(HOOKD_PHASE_PRE) | ... */
#define HOOKD_PHASE_BIT(p) (1u << (unsigned)(p))

/* "pre", "success", "post" */
const char *hookd_phase_name(hookd_phase_t phase);

/*
 * The phases an event type runs (HOOKD_PHASE_BIT set): requested -> pre,
 * issued -> success and post, failed -> post; 0 for an unknown type.
 */
unsigned hookd_engine_plan(hookd_event_type_t type);

typedef enum hookd_verdict {
    HOOKD_VERDICT_COMPLETED = 0,
    HOOKD_VERDICT_FAILED = 1
} hookd_verdict_t;

/* "completed", "failed" */
const char *hookd_verdict_name(hookd_verdict_t v);

/* Why a message failed; one word per class, shown in results and dead letters. */
typedef enum hookd_error_class {
    HOOKD_ERRCLASS_NONE = 0,
    HOOKD_ERRCLASS_INVALID_EVENT,     /* does not parse / does not match the schema */
    HOOKD_ERRCLASS_AUTH_FAILED,       /* unsigned or forged event */
    HOOKD_ERRCLASS_HOOK_FAILED,       /* a handler returned HOOKD_FAIL */
    HOOKD_ERRCLASS_RETRIES_EXHAUSTED, /* a handler returned HOOKD_RETRY on every attempt */
    HOOKD_ERRCLASS_HOOK_CRASHED,      /* an isolated handler died (signal, exit) */
    HOOKD_ERRCLASS_HOOK_TIMEOUT,      /* an isolated handler overran its deadline */
    HOOKD_ERRCLASS_COUNT
} hookd_error_class_t;

/* "invalid_event", "hook_failed", ... ("" for NONE) */
const char *hookd_error_class_name(hookd_error_class_t c);

/* One handler of the chain, as the engine sees it. */
typedef struct hookd_chain_entry {
    const char *name;
    bool has_phase[HOOKD_PHASE_COUNT]; /* false: the callback is NULL, nothing to run */
} hookd_chain_entry_t;

typedef struct hookd_chain {
    const hookd_chain_entry_t *entries;
    size_t count;
} hookd_chain_t;

/* What one call of one handler said. */
typedef struct hookd_invocation {
    hookd_outcome_t outcome;
    hookd_error_class_t error_class; /* for HOOKD_FAIL: HOOK_FAILED unless the seam knows better */
    char error[HOOKD_ERROR_MAX];     /* "" when the handler set none */
} hookd_invocation_t;

/*
 * The seam every handler call goes through. `invoke` must fill `out`
 * completely. `backoff` waits before a retry and returns false when the
 * wait was cut short by shutdown: the engine then stops and marks the
 * decision aborted (no outcome, nothing to commit). `now_us` may be NULL
 * (a monotonic clock is used).
 */
typedef struct hookd_invoker {
    void (*invoke)(void *opaque, size_t handler_index, hookd_phase_t phase,
                   const hookd_event_t *event, hookd_invocation_t *out);
    bool (*backoff)(void *opaque, uint32_t delay_ms);
    uint64_t (*now_us)(void *opaque);
    void *opaque;
} hookd_invoker_t;

/* One handler's run in one phase, retries folded in. */
typedef struct hookd_run {
    hookd_phase_t phase;
    size_t handler_index;
    const char *handler_name; /* borrowed from the chain */
    hookd_outcome_t outcome;  /* HOOKD_OK or HOOKD_FAIL: a final RETRY becomes FAIL */
    hookd_error_class_t error_class;
    bool failure_allowed; /* failed, and the phase's allow flag let it pass */
    uint32_t attempts;
    uint64_t duration_us; /* all attempts, backoff excluded */
    char error[HOOKD_ERROR_MAX];
} hookd_run_t;

typedef struct hookd_decision {
    hookd_verdict_t verdict;
    bool dead_letter;
    bool aborted; /* shutdown interrupted a retry: publish nothing, commit nothing */
    hookd_error_class_t error_class; /* of the failure that decided, NONE when completed */
    int failed_run;                  /* index in runs[] of that failure, -1 if none */
    hookd_phase_t failed_phase;      /* valid when failed_run >= 0 */
    unsigned
        phases_skipped; /* phases of the event's plan not run: already done (HOOKD_PHASE_BIT) */
    char error[HOOKD_ERROR_MAX]; /* message of that failure (or the invalid-event reason) */
    size_t run_count;
    hookd_run_t runs[HOOKD_RUNS_MAX];
} hookd_decision_t;

/*
 * Run the phases of `event` through `chain` under `policy`:
 *   requested -> pre;  issued -> success, then post (error NULL);  failed -> post.
 * A failure the phase's flag does not allow stops the rest of the chain and
 * every later phase, fails the verdict and dead-letters the message. An
 * allowed failure is recorded (failure_allowed) and the chain goes on.
 */
void hookd_engine_run(const hookd_event_t *event, const hookd_chain_t *chain,
                      const hookd_policy_t *policy, const hookd_invoker_t *invoker,
                      hookd_decision_t *out);

/*
 * The same, for an event run again with the phases in `phases_done`
 * (HOOKD_PHASE_BIT set) already done: the engine starts at the first phase
 * of the event's plan that is not done, and no handler of a done phase runs.
 * The skipped plan phases are reported in out->phases_skipped. A done phase
 * the event type does not run (pre for an issued event) changes nothing.
 * The done phases of the plan must be a prefix of it (a phase cannot have
 * run without the ones before it): otherwise the event is rejected as
 * invalid_event, and nothing runs. phases_done == 0 is hookd_engine_run().
 */
void hookd_engine_run_from(const hookd_event_t *event, const hookd_chain_t *chain,
                           const hookd_policy_t *policy, unsigned phases_done,
                           const hookd_invoker_t *invoker, hookd_decision_t *out);

/* A decision for a message that never reached the engine (invalid, forged). */
void hookd_decision_reject(hookd_decision_t *out, hookd_error_class_t cls, const char *reason);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_ENGINE_H */
