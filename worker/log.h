/* SPDX-License-Identifier: MIT */
/*
 * Logging: one line per record on stderr, a JSON object (default) or plain
 * text. Records may carry the event id / topic / partition / offset /
 * handler they concern. Callers never pass secrets (see config.c's
 * hookd_config_is_secret_key); values are escaped, never interpreted.
 */
#ifndef HOOKD_LOG_H
#define HOOKD_LOG_H

#include <stdarg.h>
#include <stdint.h>

#include <acme_hookd/hook.h>

#include "settings.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fields a record may carry; NULL / -1 mean absent. Use HOOKD_LOG_FIELDS_INIT. */
typedef struct hookd_log_fields {
    const char *event_id;
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *handler;
    const char *phase;
} hookd_log_fields_t;

#define HOOKD_LOG_FIELDS_INIT                                                                      \
    {                                                                                              \
        NULL, NULL, -1, -1, NULL, NULL                                                             \
    }

void hookd_log_setup(int level, hookd_log_format_t format);
int hookd_log_enabled(hookd_log_level_t level);

void hookd_logf(hookd_log_level_t level, const hookd_log_fields_t *fields, const char *fmt, ...)
    HOOKD_PRINTF(3, 4);
void hookd_logv(hookd_log_level_t level, const hookd_log_fields_t *fields, const char *fmt,
                va_list ap) HOOKD_PRINTF(3, 0);

#define hookd_log_error(...) hookd_logf(HOOKD_LOG_ERROR, NULL, __VA_ARGS__)
#define hookd_log_warn(...) hookd_logf(HOOKD_LOG_WARNING, NULL, __VA_ARGS__)
#define hookd_log_info(...) hookd_logf(HOOKD_LOG_INFO, NULL, __VA_ARGS__)
#define hookd_log_debug(...) hookd_logf(HOOKD_LOG_DEBUG, NULL, __VA_ARGS__)

/* Parse "error|warning|info|debug"; -1 if unknown. */
int hookd_log_level_parse(const char *s);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_LOG_H */
