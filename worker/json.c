/* SPDX-License-Identifier: MIT */
/*
 * The strict JSON parser behind the event decoder (event.c), and the
 * process-wide cJSON allocation hooks it parses with. See json.h.
 */
#include "json.h"

#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Deeper nesting is never valid (the deepest legal value of an event is
 * data.<field>). */
#define JSON_MAX_DEPTH 32

static void json_error(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void json_error(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    va_list ap;

    if (errstr != NULL && errstr_size > 0) {
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
}

/* ---- the parse arena ------------------------------------------------------ */

/*
 * A parsed event is a few dozen small cJSON allocations that all die
 * before hookd_event_decode() returns. Made with malloc and free one by
 * one, they cost about as much as the parse itself. So cJSON allocates
 * from a per-thread bump arena while a decode runs on that thread, and
 * from malloc otherwise: the hooks
 * installed below fall through to malloc/free everywhere else (the config
 * loader, the statistics parser, handlers linking cJSON themselves), and
 * free() ignores pointers inside the calling thread's arena. Nothing
 * allocated there outlives the decode: event.c's fill_event() copies what
 * the event keeps. An allocation that does not fit (a huge field) uses
 * malloc.
 */
#define EV_ARENA_BYTES (64 * 1024)

typedef struct ev_arena {
    char *base;
    size_t used;
    bool active;
    bool spilled; /* since begin, an allocation did not fit and used malloc */
} ev_arena_t;

static __thread ev_arena_t ev_arena;
static pthread_once_t ev_once = PTHREAD_ONCE_INIT;
static pthread_key_t ev_arena_key; /* frees a thread's arena when it exits */
static bool ev_arena_ok;

static bool in_arena(const ev_arena_t *a, const void *p)
{
    return a->base != NULL && (uintptr_t)p >= (uintptr_t)a->base &&
           (uintptr_t)p < (uintptr_t)a->base + EV_ARENA_BYTES;
}

static void *arena_malloc(size_t n)
{
    ev_arena_t *a = &ev_arena;
    size_t need = (n + 15) & ~(size_t)15;

    if (a->active && need >= n && EV_ARENA_BYTES - a->used >= need) {
        void *p = a->base + a->used;
        a->used += need;
        return p;
    }
    if (a->active)
        a->spilled = true;
    return malloc(n);
}

static void arena_free(void *p)
{
    if (!in_arena(&ev_arena, p))
        free(p);
}

static void ev_once_init(void)
{
    cJSON_Hooks hooks = {arena_malloc, arena_free};
    ev_arena_ok = pthread_key_create(&ev_arena_key, free) == 0;
    cJSON_InitHooks(&hooks);
}

void hookd_json_global_init(void)
{
    pthread_once(&ev_once, ev_once_init);
}

/* Start using this thread's arena; false: plain malloc this time. */
bool hookd_json_arena_begin(void)
{
    ev_arena_t *a = &ev_arena;

    hookd_json_global_init();
    if (!ev_arena_ok)
        return false;
    if (a->base == NULL) {
        if ((a->base = malloc(EV_ARENA_BYTES)) == NULL)
            return false;
        if (pthread_setspecific(ev_arena_key, a->base) != 0) {
            free(a->base);
            a->base = NULL;
            return false;
        }
    }
    a->used = 0;
    a->active = true;
    a->spilled = false;
    return true;
}

void hookd_json_arena_end(void)
{
    ev_arena.active = false;
    ev_arena.used = 0;
}

bool hookd_json_arena_holds_all(void)
{
    return ev_arena.active && !ev_arena.spilled;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, <= U+10FFFF. */
bool hookd_json_utf8_valid(const unsigned char *s, size_t len, size_t *bad_at)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp, min;

        if (c < 0x80) {
            /* Events are almost all ASCII: skip it a vector at a time. */
            i++;
            i += hookd_json_ascii_run(s + i, len - i);
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            goto bad;
        }
        if (i + n > len)
            goto bad;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                goto bad;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            goto bad;
        i += n;
    }
    return true;
bad:
    if (bad_at != NULL)
        *bad_at = i;
    return false;
}

/* Characters (code points) of a valid UTF-8 string, as maxLength counts. */
size_t hookd_json_utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s; s++) {
        if ((unsigned char)*s < 0x80) {
            /* ASCII runs (nearly everything) need no per-byte test but the end */
            const char *a = s;
            while ((unsigned char)*a != 0 && (unsigned char)*a < 0x80)
                a++;
            n += (size_t)(a - s);
            s = a - 1;
            continue;
        }
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    }
    return n;
}

/* ---- strict JSON: syntax and tree in one pass ---------------------------- */

/*
 * The parser builds the cJSON tree while it checks RFC 8259 syntax, so an
 * event is read once: cJSON's own parser is lenient (raw control
 * characters, "01", "1." and trailing garbage pass it) and would be a
 * second pass over every byte. The tree is the one cJSON_Parse builds from
 * the same text (member order, duplicate names kept, strings unescaped to
 * UTF-8), made of cJSON's allocations (cJSON_malloc and the Create
 * functions), so cJSON_Delete frees it.
 */
typedef struct scan {
    const unsigned char *start, *p, *end;
    bool has_nul; /* a \u0000 escape was seen: that string is cut there */
    bool oom;
    const char *err;
} scan_t;

static bool scan_value(scan_t *s, int depth, cJSON **out);

static void scan_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool scan_oom(scan_t *s)
{
    s->oom = true;
    s->err = "out of memory";
    return false;
}

static int hex4(const unsigned char *p)
{
    int v = 0;

    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/*
 * The body [b, e) of a string the scan accepted, unescaped into `out`
 * (room for e - b + 1 bytes: unescaping never lengthens), NUL-terminated.
 * Returns where the NUL is.
 */
static char *unescape(const unsigned char *b, const unsigned char *e, char *out)
{
    char *o = out;

    while (b < e) {
        uint32_t cp;

        if (*b != '\\') {
            *o++ = (char)*b++;
            continue;
        }
        switch (b[1]) {
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u':
            cp = (uint32_t)hex4(b + 2);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                /* the scan checked that the low surrogate follows */
                cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)hex4(b + 8) - 0xdc00);
                b += 6;
            }
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xc0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xe0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *o++ = (char)(0x80 | (cp & 0x3f));
            } else {
                *o++ = (char)(0xf0 | (cp >> 18));
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *o++ = (char)(0x80 | (cp & 0x3f));
            }
            b += 6;
            continue;
        default: /* '"', '\\', '/' */
            *o++ = (char)b[1];
            break;
        }
        b += 2;
    }
    *o = '\0';
    return o;
}

/*
 * The string at s->p checked (escapes, \u surrogate pairs, no raw control
 * characters) and s->p moved past its closing quote. Its body is
 * [*body, s->p - 1); *escaped tells whether it holds a backslash.
 */
static bool scan_string_span(scan_t *s, const unsigned char **body, bool *escaped)
{
    *body = ++s->p; /* after the opening quote */
    *escaped = false;
    while (s->p < s->end) {
        unsigned char c;

        /* the common case: a run of ordinary characters (a CSR or a
         * certificate is a kilobyte or more of them) up to the special one
         * or the end */
        s->p += hookd_json_plain_run(s->p, (size_t)(s->end - s->p));
        if (s->p >= s->end)
            break;
        c = *s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20) {
            s->err = "control character in a string";
            return false;
        }
        if (c != '\\') {
            s->p++;
            continue;
        }
        *escaped = true;
        if (s->end - s->p < 2)
            break;
        c = s->p[1];
        if (strchr("\"\\/bfnrt", c) != NULL && c != '\0') {
            s->p += 2;
            continue;
        }
        if (c != 'u') {
            s->err = "invalid escape in a string";
            return false;
        }
        if (s->end - s->p < 6 || hex4(s->p + 2) < 0) {
            s->err = "invalid \\u escape";
            return false;
        }
        int v = hex4(s->p + 2);
        const unsigned char *esc = s->p; /* errors point at the escape */
        s->p += 6;
        if (v == 0)
            s->has_nul = true;
        if (v >= 0xdc00 && v <= 0xdfff) {
            s->p = esc;
            s->err = "lone UTF-16 surrogate in a \\u escape";
            return false;
        }
        if (v >= 0xd800 && v <= 0xdbff) {
            int lo;
            if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
                (lo = hex4(s->p + 2)) < 0xdc00 || lo > 0xdfff) {
                s->p = esc;
                s->err = "lone UTF-16 surrogate in a \\u escape";
                return false;
            }
            s->p += 6;
        }
    }
    s->err = "unterminated string";
    return false;
}

/* A string at s->p; its unescaped copy (cJSON_malloc) in *out. */
static bool scan_string(scan_t *s, char **out)
{
    const unsigned char *body;
    bool escaped;
    size_t n;
    char *str;

    if (!scan_string_span(s, &body, &escaped))
        return false;
    n = (size_t)(s->p - 1 - body);
    if ((str = cJSON_malloc(n + 1)) == NULL)
        return scan_oom(s);
    if (escaped) {
        unescape(body, s->p - 1, str);
    } else {
        memcpy(str, body, n);
        str[n] = '\0';
    }
    *out = str;
    return true;
}

static bool scan_digits(scan_t *s)
{
    const unsigned char *b = s->p;

    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > b;
}

static bool scan_number(scan_t *s, cJSON **out)
{
    const unsigned char *b = s->p;
    char small[64], *text, *dot;
    size_t n;
    double d;

    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!scan_digits(s))
        goto bad;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!scan_digits(s))
            goto bad;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!scan_digits(s))
            goto bad;
    }
    /* The text is a valid JSON number: strtod reads all of it. Its decimal
     * point is the locale's, as cJSON's parser allows for. */
    n = (size_t)(s->p - b);
    text = n < sizeof(small) ? small : malloc(n + 1);
    if (text == NULL)
        return scan_oom(s);
    memcpy(text, b, n);
    text[n] = '\0';
    if ((dot = strchr(text, '.')) != NULL)
        *dot = localeconv()->decimal_point[0];
    d = strtod(text, NULL);
    if (text != small)
        free(text);
    if ((*out = cJSON_CreateNumber(d)) == NULL)
        return scan_oom(s);
    return true;
bad:
    s->err = "malformed number";
    return false;
}

static bool scan_literal(scan_t *s, const char *lit, cJSON **out)
{
    size_t n = strlen(lit);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) {
        s->err = "unexpected character";
        return false;
    }
    s->p += n;
    *out = lit[0] == 't'   ? cJSON_CreateTrue()
           : lit[0] == 'f' ? cJSON_CreateFalse()
                           : cJSON_CreateNull();
    return *out != NULL || scan_oom(s);
}

static bool scan_container(scan_t *s, int depth, bool object, cJSON **out)
{
    unsigned char close = object ? '}' : ']';
    cJSON *node = object ? cJSON_CreateObject() : cJSON_CreateArray(), *tail = NULL;

    if (node == NULL)
        return scan_oom(s);
    s->p++;
    scan_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        *out = node;
        return true;
    }
    for (;;) {
        char *name = NULL;
        cJSON *item = NULL;

        if (object) {
            scan_ws(s);
            if (s->p >= s->end || *s->p != '"') {
                s->err = "expected a member name";
                goto error;
            }
            if (!scan_string(s, &name))
                goto error;
            scan_ws(s);
            if (s->p >= s->end || *s->p != ':') {
                cJSON_free(name);
                s->err = "expected ':'";
                goto error;
            }
            s->p++;
        }
        if (!scan_value(s, depth + 1, &item)) {
            cJSON_free(name);
            goto error;
        }
        /* linked as cJSON's parser links: next/prev, the head's prev is the tail */
        item->string = name; /* now owned by item */
        if (tail == NULL) {
            node->child = item;
        } else {
            tail->next = item;
            item->prev = tail;
        }
        tail = item;
        node->child->prev = tail;
        scan_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == close) {
            s->p++;
            *out = node;
            return true;
        }
        s->err = object ? "expected ',' or '}'" : "expected ',' or ']'";
        goto error;
    }
error:
    cJSON_Delete(node);
    return false;
}

static bool scan_value(scan_t *s, int depth, cJSON **out)
{
    char *str = NULL;

    if (depth > JSON_MAX_DEPTH) {
        s->err = "nested too deeply";
        return false;
    }
    scan_ws(s);
    if (s->p >= s->end) {
        s->err = "unexpected end of input";
        return false;
    }
    switch (*s->p) {
    case '{':
        return scan_container(s, depth, true, out);
    case '[':
        return scan_container(s, depth, false, out);
    case '"':
        if (!scan_string(s, &str))
            return false;
        /* A string node owning `str`, as cJSON_CreateString would make
         * with a copy of it. */
        if ((*out = cJSON_CreateNull()) == NULL) {
            cJSON_free(str);
            return scan_oom(s);
        }
        (*out)->type = cJSON_String;
        (*out)->valuestring = str;
        return true;
    case 't':
        return scan_literal(s, "true", out);
    case 'f':
        return scan_literal(s, "false", out);
    case 'n':
        return scan_literal(s, "null", out);
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return scan_number(s, out);
        s->err = "unexpected character";
        return false;
    }
}

/*
 * Parse `len` bytes of JSON strictly. NULL with a reason on failure;
 * *has_nul tells whether some string held a \u0000 escape.
 */
cJSON *hookd_json_parse_as(const char *what, const void *data, size_t len, bool *has_nul,
                           char *errstr, size_t errstr_size)
{
    scan_t s = {data, data, (const unsigned char *)data + len, false, false, NULL};
    size_t bad_at = 0;
    cJSON *root = NULL;

    if (!hookd_json_utf8_valid(data, len, &bad_at)) {
        json_error(errstr, errstr_size, "%s is not valid UTF-8 (byte %zu)", what, bad_at);
        return NULL;
    }
    if (scan_value(&s, 0, &root)) {
        scan_ws(&s);
        if (s.p != s.end)
            s.err = "trailing data after the JSON value";
    }
    if (s.err != NULL) {
        cJSON_Delete(root);
        if (s.oom)
            json_error(errstr, errstr_size,
                       "%s could not be parsed (out of "
                       "memory)",
                       what);
        else
            json_error(errstr, errstr_size, "%s is not JSON: %s at byte %zu", what, s.err,
                       (size_t)(s.p - s.start));
        return NULL;
    }
    if (s.has_nul)
        *has_nul = true; /* never cleared: a header may have set it */
    return root;
}

struct cJSON *hookd_json_parse(const void *data, size_t len, bool *has_nul, char *errstr,
                               size_t errstr_size)
{
    *has_nul = false;
    return hookd_json_parse_as("JSON", data, len, has_nul, errstr, errstr_size);
}

/* ---- flat objects: the decoder's fast path ------------------------------- */

/*
 * The same scan as the parser's, without a tree: an object of string or
 * null members is an ordinary event (every plain-JSON enrollment event is
 * one), and building, walking and copying its cJSON tree cost more than
 * the checks themselves. Anything else is left to the parser, so every
 * refusal keeps its message.
 */
int hookd_json_flat_object(const void *data, size_t len, hookd_json_flat_member_t *out, size_t max)
{
    scan_t s = {data, data, (const unsigned char *)data + len, false, false, NULL};
    const unsigned char *body;
    bool escaped;
    size_t n = 0;

    scan_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return -1;
    s.p++;
    scan_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
    } else {
        for (;;) {
            hookd_json_flat_member_t *m;

            if (n == max || s.p >= s.end || *s.p != '"')
                return -1;
            m = &out[n];
            if (!scan_string_span(&s, &body, &escaped) || escaped)
                return -1; /* a name with an escape: the parser's */
            m->name = (const char *)body;
            m->name_len = (size_t)(s.p - 1 - body);
            scan_ws(&s);
            if (s.p >= s.end || *s.p != ':')
                return -1;
            s.p++;
            scan_ws(&s);
            if (s.p >= s.end)
                return -1;
            if (*s.p == '"') {
                if (!scan_string_span(&s, &body, &escaped) || s.has_nul)
                    return -1;
                m->value = (const char *)body;
                m->value_len = (size_t)(s.p - 1 - body);
                m->escaped = escaped;
            } else if (s.end - s.p >= 4 && memcmp(s.p, "null", 4) == 0) {
                s.p += 4;
                m->value = NULL;
                m->value_len = 0;
                m->escaped = false;
            } else {
                return -1;
            }
            n++;
            scan_ws(&s);
            if (s.p < s.end && *s.p == ',') {
                s.p++;
                scan_ws(&s);
                continue;
            }
            if (s.p < s.end && *s.p == '}') {
                s.p++;
                break;
            }
            return -1;
        }
    }
    scan_ws(&s);
    return s.p == s.end ? (int)n : -1;
}

size_t hookd_json_unescape(const char *body, size_t len, char *out)
{
    const unsigned char *b = (const unsigned char *)body;

    return (size_t)(unescape(b, b + len, out) - out);
}
