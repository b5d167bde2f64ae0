/* SPDX-License-Identifier: MIT */
/*
 * Process isolation of handler invocations (cfg->isolation = process).
 *
 * One hookd_isolate_t belongs to one hookd_invoke_t, hence to one worker
 * thread. It keeps one pre-forked child: a fork of the worker taken right
 * after the thread's handler instances were initialised, so init runs once
 * and every invocation starts from that state. A worker thread runs one
 * invocation at a time, so one live child per thread is the whole pool; a
 * child that crashes, overruns or is recycled is replaced at the next call.
 *
 * Each invocation is a request over a socketpair (phase, handler index,
 * event fields) answered by outcome + error text. The parent waits at most
 * cfg->hook_timeout_ms; on overrun it SIGKILLs the child's whole process
 * group (the child is a session leader, so grandchildren go too) and reaps
 * it. The child has PR_SET_PDEATHSIG = SIGKILL, so it dies with the worker
 * thread that forked it, SIGKILL of the worker included. Processes a
 * handler runs in a group of their own must end themselves when the child
 * dies: the exec handler's guard does (hooks/exec/exec.c). A process that
 * calls setsid() escapes all of this; only a cgroup holds it. The child
 * runs under RLIMIT_AS / RLIMIT_CPU / RLIMIT_NOFILE / RLIMIT_NPROC /
 * RLIMIT_CORE=0. See docs/security.md for what this does and does not
 * protect against.
 */
#ifndef HOOKD_ISOLATE_H
#define HOOKD_ISOLATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "settings.h"
#include "engine.h"
#include "invoke.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hookd_isolate hookd_isolate_t;

/*
 * Start the child of `inv` (whose handler instances must already exist).
 * `inv` is borrowed and must outlive the isolate. Returns NULL with a reason.
 */
hookd_isolate_t *hookd_isolate_create(hookd_invoke_t *inv, const hookd_config_t *cfg, char *errstr,
                                      size_t errstr_size);

/* Kill and reap the child (and its process group). NULL is a no-op. */
void hookd_isolate_destroy(hookd_isolate_t *iso);

/*
 * Run one invocation in the child; fills `out` completely. A crash or an
 * unexpected exit of the child is HOOKD_FAIL / HOOKD_ERRCLASS_HOOK_CRASHED
 * (signal name in the error), an overrun of the deadline or of the CPU
 * limit HOOKD_FAIL / HOOKD_ERRCLASS_HOOK_TIMEOUT. When no child can be
 * started (fork fails) the outcome is HOOKD_RETRY: a transient shortage.
 */
void hookd_isolate_call(hookd_isolate_t *iso, size_t handler_index, hookd_phase_t phase,
                        const hookd_event_t *ev, hookd_invocation_t *out);

/*
 * Replace the child after this many invocations (0 = never, the default;
 * 1 = a fresh fork for every invocation). For the benchmark and for
 * handlers that must not carry state from one event to the next.
 */
void hookd_isolate_set_max_uses(hookd_isolate_t *iso, uint32_t max_uses);

typedef struct hookd_isolate_stats {
    uint64_t calls;     /* invocations sent to a child */
    uint64_t spawned;   /* children forked, the first one included */
    uint64_t crashed;   /* children that died during an invocation */
    uint64_t timed_out; /* children killed at the deadline (or CPU limit) */
    uint64_t recycled;  /* children replaced by max_uses or CPU accounting */
    pid_t pid;          /* the current child, 0 when none */
} hookd_isolate_stats_t;

void hookd_isolate_stats(const hookd_isolate_t *iso, hookd_isolate_stats_t *st);

/*
 * Defined in invoke.c: call a handler directly in this process. The child
 * runs each request through it, so both modes share one calling
 * convention.
 */
void hookd_invoke_call_local(hookd_invoke_t *inv, size_t idx, hookd_phase_t phase,
                             const hookd_event_t *ev, hookd_invocation_t *out);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_ISOLATE_H */
