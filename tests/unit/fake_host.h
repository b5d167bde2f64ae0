/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for the worker's side of struct hookd_host, for tests that call
 * a handler directly: configuration from a table, a settable event id, and
 * the error message and log lines captured for assertions.
 */
#ifndef HOOKD_TEST_FAKE_HOST_H
#define HOOKD_TEST_FAKE_HOST_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <acme_hookd/hook.h>

#define FAKE_HOST_LOG_MAX 16384

typedef struct fake_host {
    const char *const *config; /* key, value, key, value, ..., NULL */
    const char *event_id;
    char error[1024];
    int error_calls;
    char logs[FAKE_HOST_LOG_MAX]; /* every log line, '\n'-separated */
    size_t logs_len;
    hookd_ctx_t ctx;
} fake_host_t;

static inline fake_host_t *fake_host_of(hookd_ctx_t *ctx)
{
    return (fake_host_t *)ctx->host_data;
}

static inline void fake_host_logv(hookd_ctx_t *ctx, hookd_log_level_t level, const char *fmt,
                                  va_list ap) HOOKD_PRINTF(3, 0);
static inline void fake_host_logv(hookd_ctx_t *ctx, hookd_log_level_t level, const char *fmt,
                                  va_list ap)
{
    fake_host_t *fh = fake_host_of(ctx);
    int n;
    (void)level;
    if (fh->logs_len + 2 >= sizeof(fh->logs))
        return;
    n = vsnprintf(fh->logs + fh->logs_len, sizeof(fh->logs) - fh->logs_len - 1, fmt, ap);
    if (n > 0)
        fh->logs_len += (size_t)n < sizeof(fh->logs) - fh->logs_len - 1
                            ? (size_t)n
                            : sizeof(fh->logs) - fh->logs_len - 2;
    fh->logs[fh->logs_len++] = '\n';
    fh->logs[fh->logs_len] = '\0';
}

static inline const char *fake_host_config_get(hookd_ctx_t *ctx, const char *key)
{
    const fake_host_t *fh = fake_host_of(ctx);
    size_t i;
    for (i = 0; fh->config && fh->config[i]; i += 2)
        if (strcmp(fh->config[i], key) == 0)
            return fh->config[i + 1];
    return NULL;
}

static inline const char *fake_host_event_id(hookd_ctx_t *ctx)
{
    return fake_host_of(ctx)->event_id;
}

static inline void fake_host_set_errorv(hookd_ctx_t *ctx, const char *fmt, va_list ap)
    HOOKD_PRINTF(2, 0);
static inline void fake_host_set_errorv(hookd_ctx_t *ctx, const char *fmt, va_list ap)
{
    fake_host_t *fh = fake_host_of(ctx);
    fh->error_calls++;
    vsnprintf(fh->error, sizeof(fh->error), fmt, ap);
}

static const struct hookd_host fake_host_vtable = {
    .size = sizeof(struct hookd_host),
    .logv = fake_host_logv,
    .config_get = fake_host_config_get,
    .event_id = fake_host_event_id,
    .set_errorv = fake_host_set_errorv,
};

static inline void fake_host_init(fake_host_t *fh, const char *const *config, const char *event_id)
{
    memset(fh, 0, sizeof(*fh));
    fh->config = config;
    fh->event_id = event_id;
    fh->ctx.host = &fake_host_vtable;
    fh->ctx.host_data = fh;
}

/* Forget the last error (between two calls). */
static inline void fake_host_reset(fake_host_t *fh, const char *event_id)
{
    fh->error[0] = '\0';
    fh->error_calls = 0;
    fh->event_id = event_id;
}

#endif /* HOOKD_TEST_FAKE_HOST_H */
