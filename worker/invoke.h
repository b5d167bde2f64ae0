/* SPDX-License-Identifier: MIT */
/*
 * The invoke seam: the one place a handler is called. One hookd_invoke_t per
 * worker thread holds that thread's handler instances (init at create, fini
 * at destroy) and offers them to the engine as a hookd_invoker_t.
 *
 * In-process mode calls the handler directly. Process isolation
 * (cfg->isolation) runs each invocation in a pre-forked child with a
 * deadline and resource limits; a crash or an overrun becomes a failure of
 * class hook_crashed / hook_timeout.
 */
#ifndef HOOKD_INVOKE_H
#define HOOKD_INVOKE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "clock.h"
#include "settings.h"
#include "engine.h"
#include "registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hookd_invoke hookd_invoke_t;

/*
 * Create one instance of every handler of `reg`. `stop` (may be NULL) is the
 * process's shutdown flag: a retry backoff returns early when it is set
 * (read with relaxed order: it publishes no data).
 * Returns NULL with "handler '<name>' (<origin>): init failed: <error>".
 */
hookd_invoke_t *hookd_invoke_create(const hookd_registry_t *reg, const hookd_config_t *cfg,
                                    const atomic_int *stop, char *errstr, size_t errstr_size);
void hookd_invoke_destroy(hookd_invoke_t *inv);

/* The seam for hookd_engine_run(), valid while `inv` lives. */
const hookd_invoker_t *hookd_invoke_invoker(hookd_invoke_t *inv);

/*
 * Call handler `idx` for `phase` in this process, through the instance of
 * `inv`. The in-process seam uses it, and so does an isolated child.
 */
void hookd_invoke_call_local(hookd_invoke_t *inv, size_t idx, hookd_phase_t phase,
                             const hookd_event_t *ev, hookd_invocation_t *out);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_INVOKE_H */
