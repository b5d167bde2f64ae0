/* SPDX-License-Identifier: MIT */
/*
 * Logging: one record per line on stderr. Each record is formatted into a
 * local buffer and written with a single write(2), so lines from several
 * threads (and forked children) never interleave.
 */
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192

static atomic_int log_level = HOOKD_LOG_INFO;
static atomic_int log_format = HOOKD_LOGFMT_JSON;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void hookd_log_setup(int level, hookd_log_format_t format)
{
    atomic_store(&log_level, level);
    atomic_store(&log_format, (int)format);
}

int hookd_log_enabled(hookd_log_level_t level)
{
    return (int)level <= atomic_load(&log_level);
}

int hookd_log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warn") == 0)
        return HOOKD_LOG_WARNING;
    return -1;
}

/* A bounded string builder: appends are cut at the end, never overflow. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->len + n > b->cap)
        n = b->cap - b->len;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putf(buf_t *b, const char *fmt, ...) HOOKD_PRINTF(2, 3);
static void putf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, b->cap - b->len + 1, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->len += (size_t)n > b->cap - b->len ? b->cap - b->len : (size_t)n;
}

/* JSON string body: quotes, backslashes and control characters escaped. */
static void put_json_str(buf_t *b, const char *s)
{
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"':
            puts_(b, "\\\"");
            break;
        case '\\':
            puts_(b, "\\\\");
            break;
        case '\n':
            puts_(b, "\\n");
            break;
        case '\r':
            puts_(b, "\\r");
            break;
        case '\t':
            puts_(b, "\\t");
            break;
        default:
            if (c < 0x20)
                putf(b, "\\u%04x", c);
            else
                put(b, (const char *)&c, 1);
        }
    }
    put(b, "\"", 1);
}

/* Plain text: control characters would forge lines; show them escaped. */
static void put_text_str(buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20)
            putf(b, "\\x%02x", c);
        else
            put(b, (const char *)&c, 1);
    }
}

static void put_time(buf_t *b)
{
    struct timeval tv;
    struct tm tm;
    char ts[40];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    putf(b, "%s.%03ldZ", ts, (long)(tv.tv_usec / 1000));
}

void hookd_logv(hookd_log_level_t level, const hookd_log_fields_t *f, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX + 2];
    char msg[LOG_LINE_MAX];
    buf_t b = {line, 0, LOG_LINE_MAX};
    bool json = atomic_load(&log_format) == HOOKD_LOGFMT_JSON;
    const char *lvl = (unsigned)level < 4 ? level_names[level] : "info";

    if (!hookd_log_enabled(level))
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);

    if (json) {
        puts_(&b, "{\"time\":\"");
        put_time(&b);
        putf(&b, "\",\"level\":\"%s\",\"message\":", lvl);
        put_json_str(&b, msg);
        if (f) {
            if (f->event_id) {
                puts_(&b, ",\"event_id\":");
                put_json_str(&b, f->event_id);
            }
            if (f->topic) {
                puts_(&b, ",\"topic\":");
                put_json_str(&b, f->topic);
            }
            if (f->partition >= 0)
                putf(&b, ",\"partition\":%d", (int)f->partition);
            if (f->offset >= 0)
                putf(&b, ",\"offset\":%lld", (long long)f->offset);
            if (f->handler) {
                puts_(&b, ",\"handler\":");
                put_json_str(&b, f->handler);
            }
            if (f->phase) {
                puts_(&b, ",\"phase\":");
                put_json_str(&b, f->phase);
            }
        }
        puts_(&b, "}");
    } else {
        put_time(&b);
        putf(&b, " %-7s ", lvl);
        put_text_str(&b, msg);
        if (f) {
            if (f->event_id) {
                puts_(&b, " event_id=");
                put_text_str(&b, f->event_id);
            }
            if (f->topic)
                putf(&b, " topic=%s", f->topic);
            if (f->partition >= 0)
                putf(&b, " partition=%d", (int)f->partition);
            if (f->offset >= 0)
                putf(&b, " offset=%lld", (long long)f->offset);
            if (f->handler)
                putf(&b, " handler=%s", f->handler);
            if (f->phase)
                putf(&b, " phase=%s", f->phase);
        }
    }
    line[b.len++] = '\n';
    /* One write per record; a short write on a pipe of stderr is not retried on purpose. */
    ssize_t rc = write(STDERR_FILENO, line, b.len);
    (void)rc;
}

void hookd_logf(hookd_log_level_t level, const hookd_log_fields_t *fields, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hookd_logv(level, fields, fmt, ap);
    va_end(ap);
}
