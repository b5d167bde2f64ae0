/* SPDX-License-Identifier: MIT */
/*
 * Retry tiers (see tiers.h): the tier table, slots, the next-tier decision
 * and the retry headers.
 */
#include "tiers.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "request.h"

#define TOPIC_MAX 249 /* Kafka's limit of a topic name */

static bool topic_name_ok(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || n > TOPIC_MAX || (n == 1 && s[0] == '.') || (n == 2 && memcmp(s, "..", 2) == 0))
        return false;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* Next token of a comma/blank separated list; false at the end. */
static bool next_token(const char **p, const char **tok, size_t *len)
{
    const char *s = *p;
    while (*s == ',' || isspace((unsigned char)*s))
        s++;
    if (*s == '\0')
        return false;
    *tok = s;
    while (*s != '\0' && *s != ',' && !isspace((unsigned char)*s))
        s++;
    *len = (size_t)(s - *tok);
    *p = s;
    return true;
}

/* "250ms", "10s", "1m", "2h" -> ms; -1 when malformed or out of range. */
static int64_t parse_delay(const char *s, size_t n)
{
    size_t i = 0;
    int64_t v = 0, unit;
    const char *u;
    size_t ul;
    while (i < n && isdigit((unsigned char)s[i])) {
        if (v > HOOKD_TIERS_DELAY_MAX_MS)
            return -1;
        v = v * 10 + (s[i] - '0');
        i++;
    }
    if (i == 0)
        return -1;
    u = s + i;
    ul = n - i;
    if (ul == 2 && memcmp(u, "ms", 2) == 0)
        unit = 1;
    else if (ul == 1 && u[0] == 's')
        unit = 1000;
    else if (ul == 1 && u[0] == 'm')
        unit = 60000;
    else if (ul == 1 && u[0] == 'h')
        unit = 3600000;
    else
        return -1;
    if (v == 0 || v > HOOKD_TIERS_DELAY_MAX_MS / unit)
        return -1;
    return v * unit;
}

void hookd_tiers_clear(hookd_tiers_t *t)
{
    size_t i;
    if (t == NULL)
        return;
    for (i = 0; i < HOOKD_TIERS_MAX; i++)
        free(t->topics[i]);
    memset(t, 0, sizeof(*t));
}

int hookd_tiers_parse(const char *delays, const char *names, const char *input_topic,
                      hookd_tiers_t *out, char *errstr, size_t errstr_size)
{
    const char *p = delays ? delays : "", *tok;
    size_t len, n = 0, i, j;

    memset(out, 0, sizeof(*out));
    while (next_token(&p, &tok, &len)) {
        int64_t ms = parse_delay(tok, len);
        if (n == HOOKD_TIERS_MAX) {
            snprintf(errstr, errstr_size, "retry_topics: more than %d tiers", HOOKD_TIERS_MAX);
            goto error;
        }
        if (ms < 0) {
            snprintf(errstr, errstr_size,
                     "retry_topics: '%.*s' is not a delay (a number with ms, s, m or h; at most "
                     "7 days)",
                     (int)len, tok);
            goto error;
        }
        out->delays_ms[n] = ms;
        if (input_topic != NULL) {
            size_t tl = strlen(input_topic) + strlen(".retry.") + len + 1;
            if ((out->topics[n] = malloc(tl)) == NULL) {
                snprintf(errstr, errstr_size, "out of memory");
                goto error;
            }
            snprintf(out->topics[n], tl, "%s.retry.%.*s", input_topic, (int)len, tok);
        }
        n++;
    }
    out->count = n;
    if (names != NULL && names[0] != '\0') {
        p = names;
        for (i = 0; next_token(&p, &tok, &len); i++) {
            if (i == n) {
                snprintf(errstr, errstr_size,
                         "retry_topic_names: %zu name(s) for %zu retry_topics delay(s)", i + 1, n);
                goto error;
            }
            free(out->topics[i]);
            if ((out->topics[i] = strndup(tok, len)) == NULL) {
                snprintf(errstr, errstr_size, "out of memory");
                goto error;
            }
        }
        if (i != n) {
            snprintf(errstr, errstr_size,
                     "retry_topic_names: %zu name(s) for %zu retry_topics delay(s)", i, n);
            goto error;
        }
    }
    for (i = 0; i < n; i++) {
        if (out->topics[i] == NULL || !topic_name_ok(out->topics[i], strlen(out->topics[i]))) {
            snprintf(errstr, errstr_size,
                     "retry topic '%s' is not a valid topic name (1-249 of a-z A-Z 0-9 . _ -)",
                     out->topics[i] ? out->topics[i] : "");
            goto error;
        }
        if (input_topic != NULL && strcmp(out->topics[i], input_topic) == 0) {
            snprintf(errstr, errstr_size, "retry topic '%s' is the input topic", out->topics[i]);
            goto error;
        }
        for (j = 0; j < i; j++)
            if (strcmp(out->topics[i], out->topics[j]) == 0) {
                snprintf(errstr, errstr_size, "retry topic '%s' is listed twice", out->topics[i]);
                goto error;
            }
    }
    return 0;
error:
    hookd_tiers_clear(out);
    return -1;
}

const char *hookd_tiers_topic(const hookd_tiers_t *t, size_t tier, const char *input_topic)
{
    if (tier == 0)
        return input_topic;
    if (t == NULL || tier > t->count)
        return NULL;
    return t->topics[tier - 1];
}

int hookd_tiers_find(const hookd_tiers_t *t, const char *topic, const char *input_topic)
{
    size_t i;
    if (topic == NULL)
        return -1;
    if (input_topic != NULL && strcmp(topic, input_topic) == 0)
        return 0;
    for (i = 0; t != NULL && i < t->count; i++)
        if (t->topics[i] != NULL && strcmp(topic, t->topics[i]) == 0)
            return (int)i + 1;
    return -1;
}

/* ---- slots ---------------------------------------------------------------- */

static int64_t width(const hookd_tiers_t *t)
{
    return (int64_t)(t != NULL ? t->count : 0) + 1;
}

int32_t hookd_tiers_slot(const hookd_tiers_t *t, size_t tier, int32_t partition)
{
    int64_t s;
    if (partition < 0 || (int64_t)tier >= width(t))
        return -1;
    s = (int64_t)partition * width(t) + (int64_t)tier;
    return s > INT32_MAX ? -1 : (int32_t)s;
}

size_t hookd_tiers_slot_tier(const hookd_tiers_t *t, int32_t slot)
{
    return slot < 0 ? 0 : (size_t)((int64_t)slot % width(t));
}

int32_t hookd_tiers_slot_partition(const hookd_tiers_t *t, int32_t slot)
{
    return slot < 0 ? -1 : (int32_t)((int64_t)slot / width(t));
}

/* ---- decisions ------------------------------------------------------------ */

size_t hookd_tiers_next(const hookd_tiers_t *t, size_t tier, const hookd_decision_t *d)
{
    if (t == NULL || t->count == 0 || d == NULL || d->aborted || !d->dead_letter ||
        d->error_class != HOOKD_ERRCLASS_RETRIES_EXHAUSTED || d->failed_run < 0 || tier >= t->count)
        return 0;
    return tier + 1;
}

unsigned hookd_tiers_phases_done(hookd_event_type_t type, unsigned already, hookd_phase_t failed)
{
    unsigned plan = hookd_engine_plan(type), done = already;
    int p;
    for (p = 0; p < (int)failed && p < HOOKD_PHASE_COUNT; p++)
        if (plan & HOOKD_PHASE_BIT(p))
            done |= HOOKD_PHASE_BIT(p);
    return done & ~HOOKD_PHASE_BIT(failed);
}

int64_t hookd_tiers_due(const hookd_tiers_t *t, size_t tier, int64_t now_ms)
{
    if (t == NULL || tier == 0 || tier > t->count)
        return now_ms;
    return now_ms + t->delays_ms[tier - 1];
}

/* ---- headers -------------------------------------------------------------- */

bool hookd_tiers_header_carried(const char *name)
{
    return name != NULL &&
           strncasecmp(name, HOOKD_HDR_RETRY_PREFIX, strlen(HOOKD_HDR_RETRY_PREFIX)) != 0 &&
           strcasecmp(name, HOOKD_HDR_PHASES_DONE) != 0 && strcasecmp(name, "hookd-signature") != 0;
}

static int add_i64(hookd_headers_t *h, const char *name, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return hookd_headers_add_str(h, name, buf);
}

int hookd_tiers_headers_encode(const hookd_tiers_record_t *r, hookd_headers_t *h)
{
    char buf[40];
    if (add_i64(h, HOOKD_HDR_RETRY_ATTEMPT, r->attempt) != 0 ||
        add_i64(h, HOOKD_HDR_RETRY_DUE, r->due_ms) != 0 ||
        add_i64(h, HOOKD_HDR_RETRY_FIRST_FAILURE, r->first_failure_ms) != 0 ||
        hookd_headers_add_str(h, HOOKD_HDR_RETRY_PHASE, r->phase ? r->phase : "") != 0 ||
        hookd_headers_add_str(h, HOOKD_HDR_RETRY_HANDLER, r->handler ? r->handler : "") != 0)
        return -1;
    {
        const char *e = r->error ? r->error : "";
        size_t n = strlen(e);
        if (r->max_error_bytes > 0 && n > r->max_error_bytes)
            n = r->max_error_bytes;
        if (hookd_headers_add(h, HOOKD_HDR_RETRY_ERROR, e, n) != 0)
            return -1;
    }
    snprintf(buf, sizeof(buf), "%" PRId32 ":%" PRId64, r->origin_partition, r->origin_offset);
    if (hookd_headers_add_str(h, HOOKD_HDR_RETRY_ORIGIN, buf) != 0)
        return -1;
    if (r->phases_done != 0) {
        if (hookd_request_phases_format(r->phases_done, buf, sizeof(buf)) < 0 ||
            hookd_headers_add_str(h, HOOKD_HDR_PHASES_DONE, buf) != 0)
            return -1;
    }
    return 0;
}

/* A decimal integer filling exactly `len` bytes (an optional leading '-'). */
static bool parse_i64(const void *value, size_t len, int64_t *out)
{
    const char *s = value;
    char buf[24];
    char *end;
    long long v;
    size_t i;
    if (s == NULL || len == 0 || len >= sizeof(buf))
        return false;
    for (i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]) && !(i == 0 && s[i] == '-' && len > 1))
            return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (int64_t)v;
    return true;
}

int hookd_tiers_headers_decode(const hookd_header_t *headers, size_t count,
                               hookd_tiers_state_t *out, char *errstr, size_t errstr_size)
{
    static const char *const names[] = {HOOKD_HDR_RETRY_ATTEMPT, HOOKD_HDR_RETRY_DUE,
                                        HOOKD_HDR_RETRY_FIRST_FAILURE, HOOKD_HDR_RETRY_ORIGIN};
    bool seen[4] = {false, false, false, false};
    size_t i, k;

    memset(out, 0, sizeof(*out));
    out->due_ms = -1;
    out->first_failure_ms = -1;
    out->origin_partition = -1;
    out->origin_offset = -1;
    for (i = 0; i < count; i++) {
        const hookd_header_t *h = &headers[i];
        int64_t v = 0;
        if (h->name == NULL)
            continue;
        for (k = 0; k < 4; k++)
            if (strcasecmp(h->name, names[k]) == 0)
                break;
        if (k == 4)
            continue;
        if (seen[k]) {
            snprintf(errstr, errstr_size, "header %s appears more than once", names[k]);
            return -1;
        }
        seen[k] = true;
        if (k == 3) {
            const char *s = h->value, *colon = s ? memchr(s, ':', h->len) : NULL;
            int64_t part = -1, off = -1;
            if (colon == NULL || !parse_i64(s, (size_t)(colon - s), &part) ||
                !parse_i64(colon + 1, h->len - (size_t)(colon - s) - 1, &off) || part < 0 ||
                part > INT32_MAX || off < 0) {
                snprintf(errstr, errstr_size, "header %s is not <partition>:<offset>", names[k]);
                return -1;
            }
            out->origin_partition = (int32_t)part;
            out->origin_offset = off;
            continue;
        }
        if (!parse_i64(h->value, h->len, &v) || v < 0 ||
            (k == 0 && (v < 1 || v > HOOKD_TIERS_MAX))) {
            snprintf(errstr, errstr_size, "header %s is not %s", names[k],
                     k == 0 ? "a tier number" : "a time in epoch milliseconds");
            return -1;
        }
        if (k == 0) {
            out->present = true;
            out->attempt = (uint32_t)v;
        } else if (k == 1) {
            out->due_ms = v;
        } else {
            out->first_failure_ms = v;
        }
    }
    return 0;
}
