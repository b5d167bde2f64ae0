/* SPDX-License-Identifier: MIT */
/*
 * Requests carried by an event's headers (see request.h).
 */
#include "request.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The one header called `name`; *dup set when it appears more than once. */
static const hookd_header_t *header_find(const hookd_header_t *h, size_t n, const char *name,
                                         bool *dup)
{
    const hookd_header_t *found = NULL;
    size_t i;
    *dup = false;
    for (i = 0; i < n; i++) {
        if (h[i].name == NULL || strcmp(h[i].name, name) != 0)
            continue;
        if (found != NULL) {
            *dup = true;
            return NULL;
        }
        found = &h[i];
    }
    return found;
}

bool hookd_topic_name_valid(const char *name, size_t len)
{
    size_t i;
    if (name == NULL || len == 0 || len > 249)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

hookd_request_err_t hookd_request_reply_to(const hookd_header_t *headers, size_t count,
                                           hookd_reply_to_t *out, char *errstr, size_t errstr_size)
{
    const hookd_header_t *t, *p, *c;
    bool dup;

    memset(out, 0, sizeof(*out));
    out->partition = -1;
    t = header_find(headers, count, HOOKD_HDR_REPLY_TOPIC, &dup);
    if (dup) {
        snprintf(errstr, errstr_size, "header %s appears more than once", HOOKD_HDR_REPLY_TOPIC);
        return HOOKD_REQUEST_ERR_REPLY;
    }
    if (t == NULL)
        return HOOKD_REQUEST_OK;
    if (t->value == NULL || !hookd_topic_name_valid(t->value, t->len)) {
        snprintf(errstr, errstr_size, "header %s is not a valid topic name", HOOKD_HDR_REPLY_TOPIC);
        return HOOKD_REQUEST_ERR_REPLY;
    }

    p = header_find(headers, count, HOOKD_HDR_REPLY_PARTITION, &dup);
    if (dup) {
        snprintf(errstr, errstr_size, "header %s appears more than once",
                 HOOKD_HDR_REPLY_PARTITION);
        return HOOKD_REQUEST_ERR_REPLY;
    }
    if (p != NULL) {
        /* Spring writes the partition as a 4-byte big-endian int. */
        const unsigned char *b = p->value;
        uint32_t v;
        if (b == NULL || p->len != 4) {
            snprintf(errstr, errstr_size,
                     "header %s must be a 4-byte big-endian integer (got %zu bytes)",
                     HOOKD_HDR_REPLY_PARTITION, p->value ? p->len : 0);
            return HOOKD_REQUEST_ERR_REPLY;
        }
        v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (v > INT32_MAX) {
            snprintf(errstr, errstr_size, "header %s is negative", HOOKD_HDR_REPLY_PARTITION);
            return HOOKD_REQUEST_ERR_REPLY;
        }
        out->partition = (int32_t)v;
    }

    c = header_find(headers, count, HOOKD_HDR_CORRELATION_ID, &dup);
    if (dup) {
        snprintf(errstr, errstr_size, "header %s appears more than once", HOOKD_HDR_CORRELATION_ID);
        return HOOKD_REQUEST_ERR_REPLY;
    }
    if (c != NULL && c->value != NULL) {
        if (c->len > HOOKD_CORRELATION_ID_MAX) {
            snprintf(errstr, errstr_size, "header %s is longer than %d bytes",
                     HOOKD_HDR_CORRELATION_ID, HOOKD_CORRELATION_ID_MAX);
            return HOOKD_REQUEST_ERR_REPLY;
        }
        out->correlation_id = c->value;
        out->correlation_id_len = c->len;
    }
    out->topic = t->value;
    out->topic_len = t->len;
    return HOOKD_REQUEST_OK;
}

/* ConfigParser.getboolean's spellings. 1/0, -1 when none. */
static int parse_bool(const char *s, size_t n)
{
    static const char *const yes[] = {"1", "yes", "true", "on"};
    static const char *const no[] = {"0", "no", "false", "off"};
    size_t i;
    for (i = 0; i < 4; i++) {
        if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0)
            return 1;
        if (strlen(no[i]) == n && strncasecmp(s, no[i], n) == 0)
            return 0;
    }
    return -1;
}

static const struct {
    const char *name;
    int slot; /* phase, or HOOKD_PHASE_COUNT for details_forward */
} flag_names[] = {
    {"allow_pre_hook_failure", HOOKD_PHASE_PRE},
    {"ignore_pre_hook_failure", HOOKD_PHASE_PRE},
    {"allow_success_hook_failure", HOOKD_PHASE_SUCCESS},
    {"ignore_success_hook_failure", HOOKD_PHASE_SUCCESS},
    {"allow_post_hook_failure", HOOKD_PHASE_POST},
    {"ignore_post_hook_failure", HOOKD_PHASE_POST},
    {"hook_error_details_forward", HOOKD_PHASE_COUNT},
};

hookd_request_err_t hookd_request_flags(const hookd_header_t *headers, size_t count,
                                        hookd_request_flags_t *out, char *errstr,
                                        size_t errstr_size)
{
    const hookd_header_t *h;
    const char *s, *end;
    bool dup;
    int i;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < HOOKD_PHASE_COUNT; i++)
        out->allow_failure[i] = -1;
    out->details_forward = -1;

    h = header_find(headers, count, HOOKD_HDR_FLAGS, &dup);
    if (dup) {
        snprintf(errstr, errstr_size, "header %s appears more than once", HOOKD_HDR_FLAGS);
        return HOOKD_REQUEST_ERR_FLAGS;
    }
    if (h == NULL)
        return HOOKD_REQUEST_OK;
    if (h->value == NULL || h->len > 1024) {
        snprintf(errstr, errstr_size, "header %s is %s", HOOKD_HDR_FLAGS,
                 h->value == NULL ? "null" : "longer than 1024 bytes");
        return HOOKD_REQUEST_ERR_FLAGS;
    }
    out->present = true;
    s = h->value;
    end = s + h->len;
    while (s < end) {
        const char *item_end = memchr(s, ',', (size_t)(end - s)), *eq, *name, *val;
        size_t nlen, vlen, k;
        signed char *slot;
        int b;
        if (item_end == NULL)
            item_end = end;
        /* surrounding blanks are allowed, as in the config file */
        while (s < item_end && (*s == ' ' || *s == '\t'))
            s++;
        eq = memchr(s, '=', (size_t)(item_end - s));
        if (eq == NULL) {
            snprintf(errstr, errstr_size, "header %s: expected name=value, got '%.*s'",
                     HOOKD_HDR_FLAGS, (int)((item_end - s) > 64 ? 64 : (item_end - s)), s);
            return HOOKD_REQUEST_ERR_FLAGS;
        }
        name = s;
        nlen = (size_t)(eq - s);
        while (nlen > 0 && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
            nlen--;
        val = eq + 1;
        while (val < item_end && (*val == ' ' || *val == '\t'))
            val++;
        vlen = (size_t)(item_end - val);
        while (vlen > 0 && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
            vlen--;
        for (k = 0; k < sizeof(flag_names) / sizeof(flag_names[0]); k++)
            if (strlen(flag_names[k].name) == nlen && memcmp(flag_names[k].name, name, nlen) == 0)
                break;
        if (k == sizeof(flag_names) / sizeof(flag_names[0])) {
            snprintf(errstr, errstr_size, "header %s: unknown flag '%.*s'", HOOKD_HDR_FLAGS,
                     (int)(nlen > 64 ? 64 : nlen), name);
            return HOOKD_REQUEST_ERR_FLAGS;
        }
        if ((b = parse_bool(val, vlen)) < 0) {
            snprintf(errstr, errstr_size, "header %s: %s: '%.*s' is not a boolean", HOOKD_HDR_FLAGS,
                     flag_names[k].name, (int)(vlen > 32 ? 32 : vlen), val);
            return HOOKD_REQUEST_ERR_FLAGS;
        }
        slot = flag_names[k].slot == HOOKD_PHASE_COUNT ? &out->details_forward
                                                       : &out->allow_failure[flag_names[k].slot];
        if (*slot >= 0) {
            snprintf(errstr, errstr_size, "header %s: %s given twice (or in both spellings)",
                     HOOKD_HDR_FLAGS, flag_names[k].name);
            return HOOKD_REQUEST_ERR_FLAGS;
        }
        *slot = (signed char)b;
        s = item_end + 1;
    }
    return HOOKD_REQUEST_OK;
}

#define PHASES_DONE_MAX 64 /* bytes: "pre,success,post" with room for blanks */

hookd_request_err_t hookd_request_phases_done(const hookd_header_t *headers, size_t count,
                                              bool *present, unsigned *done, char *errstr,
                                              size_t errstr_size)
{
    const hookd_header_t *h;
    const char *s, *end;
    int last = -1; /* the phase of the previous item: each must come after it */
    unsigned set = 0;
    bool dup;

    *present = false;
    *done = 0;
    h = header_find(headers, count, HOOKD_HDR_PHASES_DONE, &dup);
    if (dup) {
        snprintf(errstr, errstr_size, "header %s appears more than once", HOOKD_HDR_PHASES_DONE);
        return HOOKD_REQUEST_ERR_PHASES;
    }
    if (h == NULL)
        return HOOKD_REQUEST_OK;
    if (h->value == NULL || h->len == 0 || h->len > PHASES_DONE_MAX) {
        snprintf(errstr, errstr_size, "header %s is %s", HOOKD_HDR_PHASES_DONE,
                 h->value == NULL ? "null"
                 : h->len == 0    ? "empty (leave it out when no phase is done)"
                                  : "longer than 64 bytes");
        return HOOKD_REQUEST_ERR_PHASES;
    }
    s = h->value;
    end = s + h->len;
    for (;;) {
        const char *item_end = memchr(s, ',', (size_t)(end - s)), *name;
        size_t nlen;
        int p;
        if (item_end == NULL)
            item_end = end;
        name = s;
        while (name < item_end && (*name == ' ' || *name == '\t'))
            name++;
        nlen = (size_t)(item_end - name);
        while (nlen > 0 && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
            nlen--;
        if (nlen == 0) {
            snprintf(errstr, errstr_size, "header %s: empty phase name in '%.*s'",
                     HOOKD_HDR_PHASES_DONE, (int)h->len, (const char *)h->value);
            return HOOKD_REQUEST_ERR_PHASES;
        }
        for (p = 0; p < HOOKD_PHASE_COUNT; p++) {
            const char *pn = hookd_phase_name((hookd_phase_t)p);
            if (strlen(pn) == nlen && memcmp(pn, name, nlen) == 0)
                break;
        }
        if (p == HOOKD_PHASE_COUNT) {
            snprintf(errstr, errstr_size,
                     "header %s: unknown phase '%.*s' (expected pre, success or post)",
                     HOOKD_HDR_PHASES_DONE, (int)nlen, name);
            return HOOKD_REQUEST_ERR_PHASES;
        }
        if (p == last) {
            snprintf(errstr, errstr_size, "header %s: phase %s given twice", HOOKD_HDR_PHASES_DONE,
                     hookd_phase_name((hookd_phase_t)p));
            return HOOKD_REQUEST_ERR_PHASES;
        }
        if (p < last) {
            snprintf(errstr, errstr_size,
                     "header %s: %s after %s (phases are listed in order: pre, success, post)",
                     HOOKD_HDR_PHASES_DONE, hookd_phase_name((hookd_phase_t)p),
                     hookd_phase_name((hookd_phase_t)last));
            return HOOKD_REQUEST_ERR_PHASES;
        }
        last = p;
        set |= HOOKD_PHASE_BIT(p);
        if (item_end == end)
            break;
        s = item_end + 1;
    }
    *present = true;
    *done = set;
    return HOOKD_REQUEST_OK;
}

int hookd_request_phases_format(unsigned done, char *buf, size_t size)
{
    size_t o = 0;
    int p;
    if (size == 0)
        return -1;
    buf[0] = '\0';
    for (p = 0; p < HOOKD_PHASE_COUNT; p++) {
        const char *pn = hookd_phase_name((hookd_phase_t)p);
        size_t n = strlen(pn);
        if (!(done & HOOKD_PHASE_BIT(p)))
            continue;
        if (o + (o > 0) + n + 1 > size)
            return -1;
        if (o > 0)
            buf[o++] = ',';
        memcpy(buf + o, pn, n + 1);
        o += n;
    }
    return (int)o;
}

void hookd_request_apply(const hookd_request_flags_t *flags, const hookd_policy_t *base,
                         bool base_details, hookd_policy_t *out, bool *details_forward)
{
    int i;
    *out = *base;
    *details_forward = base_details;
    if (flags == NULL || !flags->present)
        return;
    for (i = 0; i < HOOKD_PHASE_COUNT; i++)
        if (flags->allow_failure[i] >= 0)
            out->allow_failure[i] = flags->allow_failure[i] != 0;
    if (flags->details_forward >= 0)
        *details_forward = flags->details_forward != 0;
}

bool hookd_request_topic_allowed(const char *allow_list, const char *topic, size_t len)
{
    const char *s = allow_list;
    if (s == NULL || topic == NULL)
        return false;
    while (*s != '\0') {
        const char *e = strchr(s, ',');
        size_t n;
        if (e == NULL)
            e = s + strlen(s);
        while (s < e && *s == ' ')
            s++;
        n = (size_t)(e - s);
        while (n > 0 && s[n - 1] == ' ')
            n--;
        if (n == len && memcmp(s, topic, len) == 0)
            return true;
        if (*e == '\0')
            break;
        s = e + 1;
    }
    return false;
}
