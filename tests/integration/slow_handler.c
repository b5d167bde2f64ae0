/* SPDX-License-Identifier: MIT */
/*
 * slow_test: a handler that only takes time. Every phase sleeps
 * `slow_sleep_ms` milliseconds (default 50) and succeeds. It stands for a
 * handler that waits on something remote (a database, an HTTP call), so the
 * tests can have work in flight at the moment of a signal or a rebalance
 * and the benchmark can measure how many such calls the worker overlaps.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <acme_hookd/hook.h>

static const char *const slow_keys[] = {"slow_sleep_ms", NULL};

static hookd_outcome_t slow_init(hookd_ctx_t *ctx, void **state)
{
    const char *v = hookd_config_get(ctx, "slow_sleep_ms");
    long ms = v ? strtol(v, NULL, 10) : 50;
    long *st = malloc(sizeof(*st));
    if (!st) {
        hookd_set_error(ctx, "out of memory");
        return HOOKD_FAIL;
    }
    if (ms < 0 || ms > 60000) {
        free(st);
        hookd_set_error(ctx, "slow_sleep_ms must be 0..60000, got '%s'", v);
        return HOOKD_FAIL;
    }
    *st = ms;
    *state = st; /* now owned by the worker until fini */
    return HOOKD_OK;
}

static void slow_fini(hookd_ctx_t *ctx, void *state)
{
    (void)ctx;
    free(state);
}

static hookd_outcome_t slow_wait(void *state)
{
    long ms = *(long *)state;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    /* A signal may cut the sleep short; finish it, the work is "remote". */
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return HOOKD_OK;
}

static hookd_outcome_t slow_pre(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                const char *order_name, const char *csr)
{
    (void)ctx, (void)certificate_name, (void)order_name, (void)csr;
    return slow_wait(state);
}

static hookd_outcome_t slow_success(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                    const char *order_name, const char *csr,
                                    const char *certificate, const char *certificate_raw,
                                    const char *poll_identifier)
{
    (void)ctx, (void)certificate_name, (void)order_name, (void)csr, (void)certificate,
        (void)certificate_raw, (void)poll_identifier;
    return slow_wait(state);
}

static hookd_outcome_t slow_post(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                 const char *order_name, const char *csr, const char *error)
{
    (void)ctx, (void)certificate_name, (void)order_name, (void)csr, (void)error;
    return slow_wait(state);
}

HOOKD_HANDLER_EXPORT = {
    HOOKD_HANDLER_HEADER,
    .name = "slow_test",
    .description = "sleeps slow_sleep_ms in every phase, then succeeds (tests and benchmark)",
    .config_keys = slow_keys,
    .init = slow_init,
    .fini = slow_fini,
    .pre_hook = slow_pre,
    .success_hook = slow_success,
    .post_hook = slow_post,
};
