/* SPDX-License-Identifier: MIT */
/*
 * What a replay sends (see replay_plan.h). Pure: every input is a borrowed
 * view of one dead letter, every output a choice or a header list.
 */
#include "replay_plan.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "engine.h"
#include "request.h"

void hookd_replay_filter_init(hookd_replay_filter_t *f)
{
    memset(f, 0, sizeof(*f));
    f->since_ms = -1;
    f->until_ms = -1;
    f->partition = -1;
    f->from_offset = -1;
    f->to_offset = -1;
}

bool hookd_replay_list_has(const char *list, const char *item, size_t len)
{
    const char *s = list;
    if (s == NULL || item == NULL)
        return false;
    for (;;) {
        const char *e = strchr(s, ',');
        size_t n;
        if (e == NULL)
            e = s + strlen(s);
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        n = (size_t)(e - s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == len && memcmp(s, item, len) == 0)
            return true;
        if (*e == '\0')
            return false;
        s = e + 1;
    }
}

int hookd_replay_check_phases(const char *list, char *errstr, size_t errstr_size)
{
    const char *s = list;
    for (;;) {
        const char *e = strchr(s, ',');
        size_t n;
        int p;
        if (e == NULL)
            e = s + strlen(s);
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        n = (size_t)(e - s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        for (p = 0; p < HOOKD_PHASE_COUNT; p++)
            if (strlen(hookd_phase_name((hookd_phase_t)p)) == n &&
                memcmp(hookd_phase_name((hookd_phase_t)p), s, n) == 0)
                break;
        if (p == HOOKD_PHASE_COUNT) {
            snprintf(errstr, errstr_size, "unknown phase '%.*s' (expected pre, success or post)",
                     (int)(n > 32 ? 32 : n), s);
            return -1;
        }
        if (*e == '\0')
            return 0;
        s = e + 1;
    }
}

/* The value of the header `name` (exact), NUL-terminated into buf; NULL when absent. */
static const char *hdr(const hookd_replay_record_t *r, const char *name, char *buf, size_t size)
{
    size_t i;
    for (i = 0; i < r->header_count; i++) {
        const hookd_header_t *h = &r->headers[i];
        size_t n;
        if (h->name == NULL || strcmp(h->name, name) != 0)
            continue;
        if (h->value == NULL)
            return NULL;
        n = h->len < size - 1 ? h->len : size - 1;
        memcpy(buf, h->value, n);
        buf[n] = '\0';
        return buf;
    }
    return NULL;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

static hookd_event_type_t event_type_of(const char *name)
{
    int t;
    if (name != NULL)
        for (t = 0; t < HOOKD_EVENT_TYPE_COUNT; t++)
            if (strcmp(hookd_event_type_name((hookd_event_type_t)t), name) == 0)
                return (hookd_event_type_t)t;
    return HOOKD_EVENT_TYPE_COUNT;
}

static int phase_of(const char *name)
{
    int p;
    if (name != NULL)
        for (p = 0; p < HOOKD_PHASE_COUNT; p++)
            if (strcmp(hookd_phase_name((hookd_phase_t)p), name) == 0)
                return p;
    return -1;
}

/*
 * The phases of an enrollment that succeeded before a failure in `failed`
 * of an event of type `type`: the plan's earlier phases, and pre for an
 * issued event (its pre chain ran on the requested event).
 */
static unsigned implied_done(hookd_event_type_t type, int failed)
{
    unsigned plan = hookd_engine_plan(type), done = 0;
    int p;
    if (plan == 0 || failed < 0)
        return 0;
    for (p = 0; p < failed; p++)
        if (plan & HOOKD_PHASE_BIT(p))
            done |= HOOKD_PHASE_BIT(p);
    if (type == HOOKD_EVENT_ISSUED)
        done |= HOOKD_PHASE_BIT(HOOKD_PHASE_PRE);
    return done;
}

#define REASON(...) snprintf(out->reason, sizeof(out->reason), __VA_ARGS__)

void hookd_replay_choose(const hookd_replay_filter_t *f, const hookd_replay_trust_t *t,
                         const hookd_replay_record_t *r, hookd_replay_choice_t *out)
{
    char cls[64], phase[16], handler[256], type[64], buf[64], why[256];
    const char *c, *ph, *hd;
    hookd_event_type_t et;
    unsigned orig = 0, want, plan;
    bool orig_present = false, need;

    memset(out, 0, sizeof(*out));
    out->action = HOOKD_REPLAY_SKIP;

    /* where and when */
    if ((f->partition >= 0 && r->partition != f->partition) ||
        (f->from_offset >= 0 && r->offset < f->from_offset) ||
        (f->to_offset >= 0 && r->offset > f->to_offset) ||
        (f->since_ms >= 0 && (r->timestamp_ms < 0 || r->timestamp_ms < f->since_ms)) ||
        (f->until_ms >= 0 && (r->timestamp_ms < 0 || r->timestamp_ms >= f->until_ms)))
        return;
    if (f->key != NULL &&
        (r->key == NULL || r->key_len != f->key_len || memcmp(r->key, f->key, f->key_len) != 0))
        return;

    /* what failed */
    c = hdr(r, "hookd.dlq.error.class", cls, sizeof(cls));
    ph = hdr(r, "hookd.dlq.phase", phase, sizeof(phase));
    hd = hdr(r, "hookd.dlq.handler", handler, sizeof(handler));
    if ((f->classes != NULL && (c == NULL || !hookd_replay_list_has(f->classes, c, strlen(c)))) ||
        (f->phases != NULL && (ph == NULL || !hookd_replay_list_has(f->phases, ph, strlen(ph)))) ||
        (f->handlers != NULL &&
         (hd == NULL || !hookd_replay_list_has(f->handlers, hd, strlen(hd)))))
        return;
    if (c != NULL && strcmp(c, "invalid_event") == 0 && !f->include_invalid) {
        out->action = HOOKD_REPLAY_SKIP_INVALID;
        REASON("invalid_event: sent only with --include-invalid");
        return;
    }

    /* can it be replayed at all? */
    out->action = HOOKD_REPLAY_REFUSE;
    if (c == NULL) {
        REASON("no hookd.dlq.error.class header: not a dead letter of acme-hookd");
        return;
    }
    if (hdr(r, "hookd.dlq.record", buf, sizeof(buf)) != NULL) {
        REASON("the value is the worker's %.32s record (%.64s), not an input event", buf, c);
        return;
    }
    if (hdr(r, "hookd.dlq.value_truncated", buf, sizeof(buf)) != NULL) {
        char topic[256], part[16], off[24];
        REASON("the value was cut to fit the dead-letter topic; the whole event is at %.250s "
               "partition %s offset %s",
               hdr(r, "hookd.dlq.topic", topic, sizeof(topic)) ? topic : "?",
               hdr(r, "hookd.dlq.partition", part, sizeof(part)) ? part : "?",
               hdr(r, "hookd.dlq.offset", off, sizeof(off)) ? off : "?");
        return;
    }
    if (!r->has_value) {
        REASON("the dead letter has no value (its minimal form)");
        return;
    }

    /* the phases already done */
    if (hookd_request_phases_done(r->headers, r->header_count, &orig_present, &orig, why,
                                  sizeof(why)) != HOOKD_REQUEST_OK) {
        /* the event was refused for this very header: send it as it was,
         * the worker refuses it the same way unless it was fixed */
        orig_present = false;
        orig = 0;
        out->action = HOOKD_REPLAY_SEND;
        return;
    }
    et = event_type_of(hdr(r, "hookd.dlq.event.type", type, sizeof(type)));
    plan = hookd_engine_plan(et);
    want = orig | implied_done(et, phase_of(ph));
    need = orig_present || (want & plan) != 0;
    out->phases_done = need ? want : 0; /* what the record sent carries */
    out->write_phases_done = need && want != orig;
    if (need && !t->phases_done_honoured) {
        char done[32];
        if (hookd_request_phases_format(want, done, sizeof(done)) < 0)
            done[0] = '\0';
        REASON("needs hookd.phases.done '%s' (those chains already ran), which the worker "
               "honours only with [auth] require = true or [worker] trust_event_flags = true",
               done);
        return;
    }
    if (out->write_phases_done && t->auth_require && !t->can_sign) {
        REASON("its hookd.phases.done must be signed and [auth] keys holds no key to sign with");
        return;
    }
    out->resign = out->write_phases_done && t->can_sign;
    out->action = HOOKD_REPLAY_SEND;
}

int hookd_replay_headers(const hookd_replay_record_t *r, const hookd_replay_choice_t *c,
                         const hookd_replay_provenance_t *p, hookd_headers_t *out)
{
    char part[16], off[24], done[32];
    size_t i;

    for (i = 0; i < r->header_count; i++) {
        const hookd_header_t *h = &r->headers[i];
        if (h->name == NULL || has_prefix(h->name, "hookd.dlq.") ||
            has_prefix(h->name, "__connect.errors.") || has_prefix(h->name, "hookd.replay."))
            continue;
        if (c->write_phases_done && (strcasecmp(h->name, HOOKD_HDR_PHASES_DONE) == 0 ||
                                     strcasecmp(h->name, HOOKD_AUTH_HEADER) == 0))
            continue;
        if (hookd_headers_add(out, h->name, h->value, h->len) != 0)
            return -1;
    }
    if (c->write_phases_done && c->phases_done != 0) {
        if (hookd_request_phases_format(c->phases_done, done, sizeof(done)) < 0 ||
            hookd_headers_add_str(out, HOOKD_HDR_PHASES_DONE, done) != 0)
            return -1;
    }
    snprintf(part, sizeof(part), "%" PRId32, r->partition);
    snprintf(off, sizeof(off), "%" PRId64, r->offset);
    if (hookd_headers_add_str(out, "hookd.replay.topic", p->topic ? p->topic : "") != 0 ||
        hookd_headers_add_str(out, "hookd.replay.partition", part) != 0 ||
        hookd_headers_add_str(out, "hookd.replay.offset", off) != 0 ||
        hookd_headers_add_str(out, "hookd.replay.time", p->time ? p->time : "") != 0 ||
        hookd_headers_add_str(out, "hookd.replay.reason", p->reason ? p->reason : "") != 0 ||
        hookd_headers_add_str(out, "hookd.replay.group", p->group ? p->group : "") != 0)
        return -1;
    return 0;
}

/* n digits at s as a number, -1 when one is not a digit */
static int digits(const char *s, int n)
{
    int v = 0, i;
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int hookd_replay_parse_time(const char *s, int64_t *ms)
{
    struct tm tm;
    int y, mo, d, h, mi, sec, frac_ms = 0, off = 0;
    const char *p;
    time_t t;
    char *end;

    if (s == NULL || *s == '\0')
        return -1;
    if (strspn(s, "0123456789") == strlen(s)) {
        long long v;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0')
            return -1;
        *ms = v;
        return 0;
    }
    if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':')
        return -1;
    y = digits(s, 4);
    mo = digits(s + 5, 2);
    d = digits(s + 8, 2);
    h = digits(s + 11, 2);
    mi = digits(s + 14, 2);
    sec = digits(s + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
        sec < 0 || sec > 59)
        return -1;
    p = s + 19;
    if (*p == '.') {
        int n = 0, scale = 100;
        for (p++; isdigit((unsigned char)*p); p++, n++) {
            frac_ms += (*p - '0') * scale;
            scale /= 10;
        }
        if (n == 0)
            return -1;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh = digits(p + 1, 2), om = digits(p + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        off = (oh * 60 + om) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    if (tm.tm_mday != d) /* 30 February rolled over */
        return -1;
    *ms = ((int64_t)t - (int64_t)off * 60) * 1000 + frac_ms;
    return 0;
}

int hookd_replay_parse_rate(const char *s, double *per_second)
{
    char *end;
    double v;
    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || !(v > 0) || v > 1e6)
        return -1;
    if (*end != '\0' && strcmp(end, "/s") != 0)
        return -1;
    *per_second = v;
    return 0;
}
