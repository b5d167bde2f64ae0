/* SPDX-License-Identifier: MIT */
/*
 * The control flags and the retry schedule: what the configuration
 * ([Hooks] allow_*_hook_failure, [worker] retry_*) hands the phase engine.
 * Plain data shared by settings.h and engine.h, so that the configuration
 * does not depend on the engine. hookd_policy_defaults() is in engine.c.
 */
#ifndef HOOKD_POLICY_H
#define HOOKD_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HOOKD_ERROR_MAX 1024 /* bytes of one error message, NUL included */

typedef enum hookd_phase {
    HOOKD_PHASE_PRE = 0,
    HOOKD_PHASE_SUCCESS = 1,
    HOOKD_PHASE_POST = 2,
    HOOKD_PHASE_COUNT = 3
} hookd_phase_t;

/* The control flags and the retry schedule. */
typedef struct hookd_policy {
    bool allow_failure[HOOKD_PHASE_COUNT]; /* allow_*_hook_failure */
    uint32_t retry_max_attempts;           /* attempts in all, first included; >= 1 */
    uint32_t retry_initial_ms;             /* delay before the 2nd attempt */
    uint32_t retry_max_ms;                 /* cap of the doubling delay */
} hookd_policy_t;

/* The defaults of acme2certifier: pre and success failures fail, post is logged. */
void hookd_policy_defaults(hookd_policy_t *p);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_POLICY_H */
