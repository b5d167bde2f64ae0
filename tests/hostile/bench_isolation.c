/* SPDX-License-Identifier: MIT */
/*
 * Per-invocation cost of each isolation mode, printed (not a test: speed
 * targets live in benchmarks, not in timed tests).
 *
 *   bench-isolation [iterations]
 *
 * Calls the hostile handler's "ok" behaviour (returns at once) through:
 *   in-process           the handler called directly
 *   process (pooled)     the pre-forked child, one round trip per call
 *   process (fork/call)  a fresh child for every call (max_uses = 1)
 * with an event of realistic size (1 KiB CSR, 4 KiB certificate chain).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine.h"
#include "invoke.h"
#include "isolate.h"
#include "log.h"
#include "registry.h"

static char csr[1400], chain[5600];

static void make_event(hookd_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    memset(csr, 'A', sizeof(csr) - 1);
    memset(chain, 'B', sizeof(chain) - 1);
    ev->type = HOOKD_EVENT_REQUESTED;
    ev->id = "bench-0001";
    ev->time = "2026-01-01T00:00:00Z";
    ev->certificate_name = "ok";
    ev->order_name = "order-bench";
    ev->csr = csr;
    ev->certificate = chain;
}

static double per_call_us(uint64_t t0, uint64_t t1, long n)
{
    return (double)(t1 - t0) / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    long nfork = n / 10 > 0 ? n / 10 : 1;
    hookd_config_t cfg, cfg_inv;
    hookd_registry_t *reg;
    hookd_invoke_t *inv;
    hookd_isolate_t *iso;
    const hookd_invoker_t *invoker;
    hookd_invocation_t out;
    hookd_event_t ev;
    char err[1024];
    uint64_t t0, t1;
    double inproc, pooled, forked, pooled_big = 0, forked_big = 0;

    hookd_log_setup(HOOKD_LOG_ERROR, HOOKD_LOGFMT_TEXT);
    memset(&cfg, 0, sizeof(cfg));
    hookd_policy_defaults(&cfg.policy);
    cfg.hooks_file = (char *)HOOKD_HOSTILE_SO;
    cfg.isolation = HOOKD_ISOLATION_PROCESS;
    cfg.hook_timeout_ms = 30000;
    cfg.hook_rlimit_as_mb = 512;
    cfg.hook_rlimit_cpu_s = 60;
    cfg.hook_rlimit_nofile = 64;
    cfg_inv = cfg;
    cfg_inv.isolation = HOOKD_ISOLATION_NONE;
    make_event(&ev);

    reg = hookd_registry_load(&cfg, NULL, err, sizeof(err));
    if (reg == NULL) {
        fprintf(stderr, "bench-isolation: %s\n", err);
        return 1;
    }
    inv = hookd_invoke_create(reg, &cfg_inv, NULL, err, sizeof(err));
    if (inv == NULL) {
        fprintf(stderr, "bench-isolation: %s\n", err);
        return 1;
    }
    invoker = hookd_invoke_invoker(inv);

    t0 = hookd_now_us();
    for (long i = 0; i < n; i++)
        invoker->invoke(invoker->opaque, 0, HOOKD_PHASE_PRE, &ev, &out);
    t1 = hookd_now_us();
    inproc = per_call_us(t0, t1, n);

    iso = hookd_isolate_create(inv, &cfg, err, sizeof(err));
    if (iso == NULL) {
        fprintf(stderr, "bench-isolation: %s\n", err);
        return 1;
    }
    hookd_isolate_call(iso, 0, HOOKD_PHASE_PRE, &ev, &out); /* warm up */
    t0 = hookd_now_us();
    for (long i = 0; i < n; i++) {
        hookd_isolate_call(iso, 0, HOOKD_PHASE_PRE, &ev, &out);
        if (out.outcome != HOOKD_OK) {
            fprintf(stderr, "bench-isolation: pooled call failed: %s\n", out.error);
            return 1;
        }
    }
    t1 = hookd_now_us();
    pooled = per_call_us(t0, t1, n);

    hookd_isolate_set_max_uses(iso, 1);
    t0 = hookd_now_us();
    for (long i = 0; i < nfork; i++) {
        hookd_isolate_call(iso, 0, HOOKD_PHASE_PRE, &ev, &out);
        if (out.outcome != HOOKD_OK) {
            fprintf(stderr, "bench-isolation: forked call failed: %s\n", out.error);
            return 1;
        }
    }
    t1 = hookd_now_us();
    forked = per_call_us(t0, t1, nfork);

    /*
     * A real worker holds librdkafka's queues and buffers: fork cost grows
     * with the resident memory whose page tables are copied. Redo the
     * fork-per-call figure with 256 MiB touched.
     */
    {
        size_t big_len = 256u << 20;
        char *big = malloc(big_len);
        if (big != NULL) {
            /* through a volatile pointer: a memset before free() may be optimised away */
            volatile char *touch = big;
            for (size_t off = 0; off < big_len; off += 4096)
                touch[off] = 1;
            t0 = hookd_now_us();
            for (long i = 0; i < nfork; i++)
                hookd_isolate_call(iso, 0, HOOKD_PHASE_PRE, &ev, &out);
            t1 = hookd_now_us();
            forked_big = per_call_us(t0, t1, nfork);
            hookd_isolate_set_max_uses(iso, 0);
            hookd_isolate_call(iso, 0, HOOKD_PHASE_PRE, &ev, &out); /* new pooled child */
            t0 = hookd_now_us();
            for (long i = 0; i < n; i++)
                hookd_isolate_call(iso, 0, HOOKD_PHASE_PRE, &ev, &out);
            t1 = hookd_now_us();
            pooled_big = per_call_us(t0, t1, n);
            free(big);
        }
    }

    printf("isolation cost per invocation (event ~7 KiB, handler returns at once)\n");
    printf("  %-40s %10.2f us  (%ld calls)\n", "in-process", inproc, n);
    printf("  %-40s %10.2f us  (%ld calls)\n", "process, pre-forked child", pooled, n);
    printf("  %-40s %10.2f us  (%ld calls)\n", "process, fork per call", forked, nfork);
    printf("  %-40s %10.2f us  (%ld calls)\n", "process, pre-forked child, 256 MiB worker",
           pooled_big, n);
    printf("  %-40s %10.2f us  (%ld calls)\n", "process, fork per call, 256 MiB worker", forked_big,
           nfork);

    hookd_isolate_destroy(iso);
    hookd_invoke_destroy(inv);
    hookd_registry_destroy(reg);
    return 0;
}
