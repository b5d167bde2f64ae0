/*
 * The Kafka runtime: consumer group member, per-partition queues feeding a
 * pool of handler threads, publisher of results and dead letters, and the
 * offset tracker that commits only what is durable.
 */
#ifndef HOOKD_RUNTIME_H
#define HOOKD_RUNTIME_H

#include <signal.h>
#include <stddef.h>

#include "config.h"
#include "registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hookd_runtime hookd_runtime_t;

/*
 * Create the runtime: Kafka clients (or, with no bootstrap servers, the
 * embedded mock cluster, announced on stderr), the handler threads and
 * their handler instances. `cfg` and `reg` stay owned by the caller and
 * must outlive the runtime. NULL with errstr on failure.
 */
hookd_runtime_t *hookd_runtime_create(const hookd_config_t *cfg, const hookd_registry_t *reg,
                                      char *errstr, size_t errstr_size);

/*
 * Consume until *stop becomes non-zero, then shut down within
 * cfg->shutdown_timeout_ms: stop fetching, finish in-flight handlers, flush,
 * commit, leave the group. Returns 0 on a clean stop, 1 when the deadline
 * passed (uncommitted work is redone by the next owner), 2 on a fatal error.
 */
int hookd_runtime_run(hookd_runtime_t *rt, volatile sig_atomic_t *stop);

/* The bootstrap address of the embedded cluster, or NULL when using a real one. */
const char *hookd_runtime_embedded_bootstraps(const hookd_runtime_t *rt);

void hookd_runtime_destroy(hookd_runtime_t *rt);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_RUNTIME_H */
