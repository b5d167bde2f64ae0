/* SPDX-License-Identifier: MIT */
/*
 * slow_test: a handler that only takes time. Every phase sleeps
 * `slow_sleep_ms` milliseconds (default 50) and succeeds. It stands for a
 * handler that waits on something remote (a database, an HTTP call), so the
 * tests can have work in flight at the moment of a signal or a rebalance
 * and the benchmark can measure how many such calls the worker overlaps.
 *
 * With `slow_sleep_spread_ms` = S, a call sleeps slow_sleep_ms plus 0..S
 * ms more, chosen by a hash of the event id: the same for every call of
 * one event, different across events, so that events queued later
 * can finish first (the exactly-once key-ordering crash test).
 *
 * With `slow_trace_file` set, every call appends two lines to that file,
 * "S <ns> <order_name> <certificate_name>" before its sleep and
 * "E <ns> <order_name> <certificate_name>" after it (CLOCK_MONOTONIC
 * nanoseconds; each line one write() to an O_APPEND descriptor, so lines of
 * concurrent threads never mix): the key-ordering tests read from it which
 * calls overlapped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <acme_hookd/hook.h>

static const char *const slow_keys[] = {"slow_sleep_ms", "slow_sleep_spread_ms", "slow_trace_file",
                                        NULL};

typedef struct slow_state {
    long ms;
    long spread;  /* 0: every call sleeps ms */
    int trace_fd; /* -1: no trace */
} slow_state_t;

static hookd_outcome_t slow_init(hookd_ctx_t *ctx, void **state)
{
    const char *v = hookd_config_get(ctx, "slow_sleep_ms");
    const char *trace = hookd_config_get(ctx, "slow_trace_file");
    const char *sp = hookd_config_get(ctx, "slow_sleep_spread_ms");
    long ms = v ? strtol(v, NULL, 10) : 50;
    long spread = sp ? strtol(sp, NULL, 10) : 0;
    slow_state_t *st = malloc(sizeof(*st));
    if (!st) {
        hookd_set_error(ctx, "out of memory");
        return HOOKD_FAIL;
    }
    if (ms < 0 || ms > 60000) {
        free(st);
        hookd_set_error(ctx, "slow_sleep_ms must be 0..60000, got '%s'", v);
        return HOOKD_FAIL;
    }
    if (spread < 0 || spread > 60000) {
        free(st);
        hookd_set_error(ctx, "slow_sleep_spread_ms must be 0..60000, got '%s'", sp);
        return HOOKD_FAIL;
    }
    st->ms = ms;
    st->spread = spread;
    st->trace_fd = -1;
    if (trace != NULL && trace[0] != '\0' &&
        (st->trace_fd = open(trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
        free(st);
        hookd_set_error(ctx, "slow_trace_file '%s': cannot open", trace);
        return HOOKD_FAIL;
    }
    *state = st; /* now owned by the worker until fini */
    return HOOKD_OK;
}

static void slow_fini(hookd_ctx_t *ctx, void *state)
{
    slow_state_t *st = state;
    (void)ctx;
    if (st->trace_fd >= 0)
        close(st->trace_fd);
    free(st);
}

static void slow_trace(const slow_state_t *st, char what, const char *order_name,
                       const char *certificate_name)
{
    struct timespec now;
    char line[512];
    int n;
    if (st->trace_fd < 0)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    n = snprintf(line, sizeof(line), "%c %lld %s %s\n", what,
                 (long long)now.tv_sec * 1000000000LL + now.tv_nsec, order_name ? order_name : "-",
                 certificate_name ? certificate_name : "-");
    if (n > 0 && (size_t)n < sizeof(line) && write(st->trace_fd, line, (size_t)n) != n)
        return; /* a lost trace line shows up as a failed check in the test */
}

static hookd_outcome_t slow_wait(hookd_ctx_t *ctx, void *state, const char *order_name,
                                 const char *certificate_name)
{
    const char *id = hookd_event_id(ctx);
    const slow_state_t *st = state;
    long ms = st->ms;
    struct timespec ts;
    if (st->spread > 0 && id != NULL) {
        uint32_t h = 2166136261u; /* FNV-1a */
        const char *c;
        for (c = id; *c; c++)
            h = (h ^ (uint8_t)*c) * 16777619u;
        ms += (long)(h % (uint32_t)(st->spread + 1));
    }
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    slow_trace(st, 'S', order_name, certificate_name);
    /* A signal may cut the sleep short; finish it, the work is "remote". */
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    slow_trace(st, 'E', order_name, certificate_name);
    return HOOKD_OK;
}

static hookd_outcome_t slow_pre(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                const char *order_name, const char *csr)
{
    (void)csr;
    return slow_wait(ctx, state, order_name, certificate_name);
}

static hookd_outcome_t slow_success(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                    const char *order_name, const char *csr,
                                    const char *certificate, const char *certificate_raw,
                                    const char *poll_identifier)
{
    (void)csr, (void)certificate, (void)certificate_raw, (void)poll_identifier;
    return slow_wait(ctx, state, order_name, certificate_name);
}

static hookd_outcome_t slow_post(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                 const char *order_name, const char *csr, const char *error)
{
    (void)csr, (void)error;
    return slow_wait(ctx, state, order_name, certificate_name);
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
