/* SPDX-License-Identifier: MIT */
/*
 * Input events: the codec behind schemas/input-event.schema.json.
 *
 * The checks run in a fixed order so that a hostile message costs as little
 * as possible and every refusal names what was wrong:
 *   1. size of the whole message (value and headers), before anything else;
 *   2. UTF-8 validity of the value;
 *   3. strict RFC 8259 syntax, with a nesting limit, by a parser of our own
 *      (json.c) that builds the cJSON tree in the same pass (cJSON's parser
 *      is lenient: raw control characters, "01", "1." and trailing garbage
 *      pass it);
 *   4. the schema, keyword for keyword, on the cJSON tree.
 *
 * An ordinary plain event (an object of string members) takes a shorter
 * road to the same answer: the parser's syntax scan without a tree, the
 * same schema checks on the strings, one copy of each (decode_flat). What
 * does not fit it, a refusal above all, goes the whole way, so each
 * message is written in one place only.
 *
 * Binary-mode CloudEvents are first mapped to the structured form exactly
 * as schemas/README.md documents (ce_X header -> attribute X, content-type
 * -> datacontenttype, value -> data) and then go through the very same
 * checks, so the three wire forms cannot drift apart; only the names in the
 * error messages differ ("header 'ce_id'" instead of "attribute 'id'").
 *
 * Field lengths are counted in characters (Unicode code points), as JSON
 * Schema's maxLength counts them; for the ASCII-only fields (csr,
 * certificate, certificate_raw, time) that is the byte count.
 */
#include "event.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "json.h"

/* The schema's maxProperties of a CloudEvents envelope. */
#define EV_CE_MAX_ATTRIBUTES 64
/* The schema's limit on extension attribute names. */
#define EV_CE_NAME_MAX 20
/* How much of an offending value is quoted in an error message. */
#define EV_QUOTE_MAX 64

static const char *const type_names[HOOKD_EVENT_TYPE_COUNT] = {
    [HOOKD_EVENT_REQUESTED] = "acme.enrollment.requested",
    [HOOKD_EVENT_ISSUED] = "acme.enrollment.issued",
    [HOOKD_EVENT_FAILED] = "acme.enrollment.failed",
};

const char *hookd_event_type_name(hookd_event_type_t t)
{
    return (unsigned)t < HOOKD_EVENT_TYPE_COUNT ? type_names[t] : "unknown";
}

const char *hookd_event_format_name(hookd_event_format_t f)
{
    switch (f) {
    case HOOKD_FORMAT_PLAIN:
        return "plain";
    case HOOKD_FORMAT_CE_STRUCTURED:
        return "cloudevents-structured";
    case HOOKD_FORMAT_CE_BINARY:
        return "cloudevents-binary";
    }
    return "unknown";
}

/* ---- the enrollment fields, as a table ------------------------------------ */

typedef enum field_kind {
    KIND_NONEMPTY, /* #/$defs/nonEmptyText */
    KIND_NULLABLE, /* null or #/$defs/text */
    KIND_BASE64,   /* #/$defs/base64 */
    KIND_PEM       /* #/$defs/pemChain */
} field_kind_t;

#define T_REQ (1u << HOOKD_EVENT_REQUESTED)
#define T_ISS (1u << HOOKD_EVENT_ISSUED)
#define T_FAI (1u << HOOKD_EVENT_FAILED)
#define T_ALL (T_REQ | T_ISS | T_FAI)

/* requestedFields / issuedFields / failedFields of the schema in one table. */
static const struct field_spec {
    const char *name;
    size_t name_len;
    field_kind_t kind;
    unsigned allowed;  /* event types that have this field */
    unsigned required; /* event types that must have it */
    size_t offset;     /* where it lands in hookd_event_t */
} field_specs[] = {
    {"certificate_name", sizeof("certificate_name") - 1, KIND_NONEMPTY, T_ALL, T_ALL,
     offsetof(hookd_event_t, certificate_name)},
    {"order_name", sizeof("order_name") - 1, KIND_NONEMPTY, T_ALL, T_ALL,
     offsetof(hookd_event_t, order_name)},
    {"csr", sizeof("csr") - 1, KIND_BASE64, T_ALL, T_ALL, offsetof(hookd_event_t, csr)},
    {"certificate", sizeof("certificate") - 1, KIND_PEM, T_ISS, T_ISS,
     offsetof(hookd_event_t, certificate)},
    {"certificate_raw", sizeof("certificate_raw") - 1, KIND_BASE64, T_ISS, T_ISS,
     offsetof(hookd_event_t, certificate_raw)},
    {"poll_identifier", sizeof("poll_identifier") - 1, KIND_NULLABLE, T_ISS, 0,
     offsetof(hookd_event_t, poll_identifier)},
    {"error", sizeof("error") - 1, KIND_NONEMPTY, T_FAI, T_FAI, offsetof(hookd_event_t, error)},
};
#define FIELD_COUNT (sizeof(field_specs) / sizeof(field_specs[0]))

/*
 * cJSON_IsString and cJSON_IsObject, inline: libcjson is a shared library,
 * and a decode asks a few dozen times (a call through the PLT each).
 */
static inline bool is_string(const cJSON *item)
{
    return item != NULL && (item->type & 0xff) == cJSON_String;
}

static inline bool is_object(const cJSON *item)
{
    return item != NULL && (item->type & 0xff) == cJSON_Object;
}

/*
 * cJSON_GetObjectItemCaseSensitive, comparing the first byte before calling
 * strcmp: a decode looks members up a few dozen times, and most names
 * differ at once.
 */
static cJSON *member(const cJSON *obj, const char *name)
{
    if (obj == NULL)
        return NULL;
    for (cJSON *m = obj->child; m != NULL; m = m->next)
        if (m->string != NULL && m->string[0] == name[0] && strcmp(m->string, name) == 0)
            return m;
    return NULL;
}

void hookd_event_global_init(void)
{
    hookd_json_global_init();
}

/* ---- owned strings -------------------------------------------------------- */

/*
 * priv of a hookd_event_t: every string the event points to, either
 * malloc'd one by one (strings[]) or, for a decoded event, copied into
 * `block`, allocated together with this struct.
 */
typedef struct ev_store {
    size_t count;
    char *strings[16];
    char block[];
} ev_store_t;

static const char *store_copy(hookd_event_t *ev, const char *s, size_t len)
{
    ev_store_t *st = ev->priv;
    char *copy;

    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st == NULL)
            return NULL;
        ev->priv = st;
    }
    if (st->count == sizeof(st->strings) / sizeof(st->strings[0]))
        return NULL;
    copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    st->strings[st->count++] = copy;
    return copy;
}

void hookd_event_clear(hookd_event_t *ev)
{
    ev_store_t *st;

    if (ev == NULL)
        return;
    st = ev->priv;
    if (st != NULL) {
        for (size_t i = 0; i < st->count; i++)
            free(st->strings[i]);
        free(st);
    }
    memset(ev, 0, sizeof(*ev));
    ev->type = HOOKD_EVENT_TYPE_COUNT;
}

/* ---- small helpers ------------------------------------------------------- */

static hookd_event_err_t fail(hookd_event_err_t err, char *errstr, size_t errstr_size,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static hookd_event_err_t fail(hookd_event_err_t err, char *errstr, size_t errstr_size,
                              const char *fmt, ...)
{
    va_list ap;

    if (errstr != NULL && errstr_size > 0) {
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

/*
 * A printable excerpt of an untrusted string for an error message: at most
 * EV_QUOTE_MAX bytes, control characters and quotes replaced, never cut
 * inside a UTF-8 sequence.
 */
static const char *quote(char *buf, size_t size, const char *s, size_t len)
{
    size_t o = 0, i = 0;

    while (i < len && o + 5 < size && i < EV_QUOTE_MAX) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

        if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\') {
            buf[o++] = '?';
            i++;
            continue;
        }
        if (i + n > len || o + n + 4 >= size)
            break;
        memcpy(buf + o, s + i, n);
        o += n;
        i += n;
    }
    if (i < len && o + 4 < size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- the schema's checks ------------------------------------------------- */

/* How names are shown in messages: the same check, three wire forms. */
typedef enum naming { NAMING_PLAIN, NAMING_STRUCTURED, NAMING_BINARY } naming_t;

typedef struct vctx {
    naming_t naming;
    size_t max_chars; /* the field limit */
    char *errstr;
    size_t errstr_size;
} vctx_t;

/* "field 'csr'", "field 'data.csr'", "attribute 'id'", "header 'ce_id'" ... */
static const char *label_field(const vctx_t *v, char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "field '%s%s'", v->naming == NAMING_STRUCTURED ? "data." : "", name);
    return buf;
}

static const char *label_attr(const vctx_t *v, char *buf, size_t size, const char *name)
{
    if (v->naming == NAMING_PLAIN)
        snprintf(buf, size, "field '%s'", name);
    else if (v->naming == NAMING_STRUCTURED)
        snprintf(buf, size, "attribute '%s'", name);
    else if (strcmp(name, "datacontenttype") == 0)
        snprintf(buf, size, "header 'content-type'");
    else if (strncmp(name, "ce_", 3) == 0)
        snprintf(buf, size, "header '%s'", name); /* kept verbatim by the mapping */
    else
        snprintf(buf, size, "header 'ce_%s'", name);
    return buf;
}

/* The RFC 4648 alphabet as a table: checked for every byte of a CSR. */
static const unsigned char b64_alphabet[256] = {
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1,
    ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1,
    ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['+'] = 1, ['/'] = 1,
};

static bool is_b64(unsigned char c)
{
    return b64_alphabet[c] != 0;
}

#if defined(__SSE2__)
/* Bytes of v in [lo, hi], as 0xff. Signed compares: bytes from 0x80 up are
 * negative and fall in no range of the alphabet. */
static inline __m128i b64_range(__m128i v, char lo, char hi)
{
    return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8((char)(lo - 1))),
                         _mm_cmplt_epi8(v, _mm_set1_epi8((char)(hi + 1))));
}

/* Are the sixteen bytes at p all in the alphabet (A-Z a-z 0-9 + /)? */
static inline bool b64_block(const unsigned char *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i ok = _mm_or_si128(_mm_or_si128(b64_range(v, 'A', 'Z'), b64_range(v, 'a', 'z')),
                              _mm_or_si128(b64_range(v, '0', '9'),
                                           _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('+')),
                                                        _mm_cmpeq_epi8(v, _mm_set1_epi8('/')))));
    return _mm_movemask_epi8(ok) == 0xffff;
}
#endif

/* #/$defs/base64 without the length keywords. */
static bool check_base64(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    if (len == 0 || len % 4 != 0)
        return false;
#if defined(__SSE2__)
    /* Sixteen bytes per test where SSE2 is there. */
    for (; i + 16 <= len - 2; i += 16)
        if (!b64_block(u + i))
            return false;
#endif
    /* Eight bytes per test (a CSR is a kilobyte or more): the table holds
     * 1 or 0, so the AND of eight entries says whether all are in it. */
    for (; i + 8 <= len - 2; i += 8)
        if (!(b64_alphabet[u[i]] & b64_alphabet[u[i + 1]] & b64_alphabet[u[i + 2]] &
              b64_alphabet[u[i + 3]] & b64_alphabet[u[i + 4]] & b64_alphabet[u[i + 5]] &
              b64_alphabet[u[i + 6]] & b64_alphabet[u[i + 7]]))
            return false;
    for (; i + 2 < len; i++)
        if (!is_b64(u[i]))
            return false;
    if (is_b64((unsigned char)s[len - 2]))
        return is_b64((unsigned char)s[len - 1]) || s[len - 1] == '=';
    return s[len - 2] == '=' && s[len - 1] == '=';
}

static bool match_nl(const char **p)
{
    if (**p == '\n') {
        (*p)++;
        return true;
    }
    if ((*p)[0] == '\r' && (*p)[1] == '\n') {
        *p += 2;
        return true;
    }
    return false;
}

static bool match_str(const char **p, const char *lit)
{
    size_t n = strlen(lit);

    if (strncmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

/*
 * #/$defs/pemChain, hand-compiled:
 *   (BLOCK NL+)* BLOCK NL* $   with
 *   BLOCK = "-----BEGIN CERTIFICATE-----" NL (B64LINE NL)+ "-----END CERTIFICATE-----"
 */
static bool check_pem(const char *s)
{
    const char *p = s;

    for (;;) {
        int lines = 0, nls = 0;

        if (!match_str(&p, "-----BEGIN CERTIFICATE-----") || !match_nl(&p))
            return false;
        while (*p != '\0' && (is_b64((unsigned char)*p) || *p == '=')) {
            while (is_b64((unsigned char)*p) || *p == '=')
                p++;
            if (!match_nl(&p))
                return false;
            lines++;
        }
        if (lines == 0 || !match_str(&p, "-----END CERTIFICATE-----"))
            return false;
        while (match_nl(&p))
            nls++;
        if (*p == '\0')
            return true;
        if (nls == 0)
            return false;
    }
}

static bool digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int num(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* #/$defs/time: the pattern, then the day-of-month check of format date-time. */
static bool check_time(const char *s)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int year, month, day;
    const char *p;

    if (strlen(s) < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
        !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) || s[13] != ':' ||
        !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
        return false;
    year = num(s, 4), month = num(s + 5, 2), day = num(s + 8, 2);
    if (month < 1 || month > 12 || day < 1 || day > mdays[month - 1])
        return false;
    if (month == 2 && day == 29 && !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
        return false;
    if (num(s + 11, 2) > 23 || num(s + 14, 2) > 59 || num(s + 17, 2) > 59)
        return false;
    p = s + 19;
    if (*p == '.') {
        p++;
        if (!digits(p, 1))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return true;
    if ((*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2) &&
        p[6] == '\0')
        return num(p + 1, 2) <= 23 && num(p + 4, 2) <= 59;
    return false;
}

/* "^[!-~]+$": printable ASCII, no space (source, dataschema). */
static bool check_uri_ref(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < '!' || (unsigned char)*s > '~')
            return false;
    return true;
}

/* "^application/json(?:; *charset=[Uu][Tt][Ff]-8)?$" */
static bool check_content_type(const char *s)
{
    if (!match_str(&s, "application/json"))
        return false;
    if (*s == '\0')
        return true;
    if (*s++ != ';')
        return false;
    while (*s == ' ')
        s++;
    return strcasecmp(s, "charset=utf-8") == 0 && strncmp(s, "charset=", 8) == 0;
}

/* CloudEvents attribute names: "^[a-z0-9]{1,20}$". */
static bool check_attr_name(const char *s)
{
    size_t n = 0;

    for (; *s; s++, n++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
            return false;
    return n >= 1 && n <= EV_CE_NAME_MAX;
}

typedef enum str_kind {
    STR_TEXT,     /* #/$defs/text */
    STR_NONEMPTY, /* #/$defs/nonEmptyText */
    STR_BASE64,
    STR_PEM,
    STR_TIME,
    STR_URIREF /* source, dataschema */
} str_kind_t;

/*
 * One string-valued keyword set of the schema, applied to the `bytes`
 * bytes of `s` (NUL-terminated). label NULL: a check only, no message.
 */
static hookd_event_err_t check_text(const vctx_t *v, const char *s, size_t bytes, str_kind_t kind,
                                    const char *label)
{
    size_t chars;
    vctx_t quiet;

    if (label == NULL) {
        /* a check only: no message (see check_fields) */
        quiet = *v;
        quiet.errstr = NULL;
        quiet.errstr_size = 0;
        v = &quiet;
        label = "";
    }
    /* A character is at least a byte: count them only when it can matter. */
    chars = bytes <= v->max_chars ? bytes : hookd_json_utf8_chars(s);
    if (chars > v->max_chars)
        return fail(HOOKD_EVENT_ERR_TOO_LARGE, v->errstr, v->errstr_size,
                    "%s: %zu characters, limit %zu", label, chars, v->max_chars);
    switch (kind) {
    case STR_TEXT:
        break;
    case STR_NONEMPTY:
        if (*s == '\0')
            return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size, "%s: empty", label);
        break;
    case STR_BASE64:
        if (*s == '\0')
            return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size, "%s: empty", label);
        if (!check_base64(s, bytes))
            return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size,
                        "%s: not base64 (RFC 4648 alphabet, padded, no whitespace)", label);
        break;
    case STR_PEM:
        if (!check_pem(s))
            return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size,
                        "%s: not a PEM certificate chain", label);
        break;
    case STR_TIME:
        if (!check_time(s))
            return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size,
                        "%s: not an RFC 3339 date-time", label);
        break;
    case STR_URIREF:
        if (!check_uri_ref(s))
            return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size,
                        "%s: not a URI-reference (empty, spaces or non-ASCII)", label);
        break;
    }
    return HOOKD_EVENT_OK;
}

/* check_text on a tree's member, which must be a string. */
static hookd_event_err_t check_string(const vctx_t *v, const cJSON *item, str_kind_t kind,
                                      const char *label)
{
    if (!is_string(item) || item->valuestring == NULL) {
        if (label == NULL)
            return HOOKD_EVENT_ERR_SCHEMA; /* a check only: check_fields asks again */
        return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size, "%s: not a string", label);
    }
    return check_text(v, item->valuestring, strlen(item->valuestring), kind, label);
}

/* The event type: "#/$defs/eventType". */
static hookd_event_err_t check_type(const vctx_t *v, const cJSON *item, const char *label,
                                    hookd_event_type_t *out)
{
    char q[EV_QUOTE_MAX * 4 + 8];

    if (!is_string(item) || item->valuestring == NULL)
        return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size, "%s: not a string", label);
    for (int t = 0; t < HOOKD_EVENT_TYPE_COUNT; t++) {
        if (strcmp(item->valuestring, type_names[t]) == 0) {
            *out = (hookd_event_type_t)t;
            return HOOKD_EVENT_OK;
        }
    }
    return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size, "unknown event type '%s'",
                quote(q, sizeof(q), item->valuestring, strlen(item->valuestring)));
}

static const struct field_spec *find_field(const char *name)
{
    for (size_t i = 0; i < FIELD_COUNT; i++)
        if (field_specs[i].name[0] == name[0] && strcmp(field_specs[i].name, name) == 0)
            return &field_specs[i];
    return NULL;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * A second member of the same name (JSON Schema validators see only one of
 * them, handlers might see the other: refused). Sorting keeps this
 * O(n log n) for a hostile object of 100k members. NULL when there is none
 * (or, never in practice, when memory runs out: the schema checks follow).
 */
static const char *duplicate_member(const cJSON *obj)
{
    size_t n = 0, i = 0;
    const char **names;
    const char *dup = NULL;

    for (const cJSON *m = obj->child; m != NULL; m = m->next)
        n++;
    if (n < 2)
        return NULL;
    if (n <= 16) {
        /* An ordinary event: pairwise, without an allocation and a sort.
         * The same answer: the first duplicated name in sort order. */
        for (const cJSON *a = obj->child; a != NULL; a = a->next)
            for (const cJSON *b = a->next; b != NULL; b = b->next)
                if (a->string[0] == b->string[0] && strcmp(a->string, b->string) == 0 &&
                    (dup == NULL || strcmp(a->string, dup) < 0))
                    dup = a->string;
        return dup;
    }
    if ((names = malloc(n * sizeof(*names))) == NULL)
        return NULL;
    for (const cJSON *m = obj->child; m != NULL; m = m->next)
        names[i++] = m->string;
    qsort(names, n, sizeof(*names), name_cmp);
    for (i = 1; i < n && dup == NULL; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            dup = names[i];
    free(names);
    return dup;
}

/*
 * The enrollment fields of `type` in `obj` (the plain event itself, or
 * data): requestedFields / issuedFields / failedFields. `envelope` lists the
 * other names `obj` may hold (plain form: type, id, time).
 */
static hookd_event_err_t check_fields(const vctx_t *v, const cJSON *obj, hookd_event_type_t type,
                                      const char *const *envelope)
{
    char label[96], q[EV_QUOTE_MAX * 4 + 8];
    unsigned bit = 1u << type;
    hookd_event_err_t err;

    const cJSON *found[FIELD_COUNT] = {NULL}; /* each field's first member, as member() finds */

    for (const cJSON *m = obj->child; m != NULL; m = m->next) {
        const struct field_spec *f = find_field(m->string);
        bool known = f != NULL && (f->allowed & bit);

        if (f != NULL && found[f - field_specs] == NULL)
            found[f - field_specs] = m;
        for (const char *const *e = envelope; !known && e != NULL && *e != NULL; e++)
            known = strcmp(*e, m->string) == 0;
        if (!known)
            return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size, "unknown %s for type %s",
                        label_field(v, label, sizeof(label),
                                    quote(q, sizeof(q), m->string, strlen(m->string))),
                        type_names[type]);
    }
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        const struct field_spec *f = &field_specs[i];
        const cJSON *item = found[i];

        str_kind_t kind;

        if (!(f->allowed & bit))
            continue;
        if (item == NULL) {
            if (f->required & bit)
                return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size, "missing %s",
                            label_field(v, label, sizeof(label), f->name));
            continue;
        }
        switch (f->kind) {
        case KIND_NULLABLE:
            if (cJSON_IsNull(item))
                continue;
            kind = STR_TEXT;
            break;
        case KIND_NONEMPTY:
            kind = STR_NONEMPTY;
            break;
        case KIND_BASE64:
            kind = STR_BASE64;
            break;
        case KIND_PEM:
            kind = STR_PEM;
            break;
        default:
            return HOOKD_EVENT_ERR_SCHEMA;
        }
        /* The label is formatted only for the error message: checked
         * without one first, again with it when the check fails. */
        if ((err = check_string(v, item, kind, NULL)) != HOOKD_EVENT_OK)
            return check_string(v, item, kind, label_field(v, label, sizeof(label), f->name));
    }
    return HOOKD_EVENT_OK;
}

/* "#/$defs/plain" */
static hookd_event_err_t check_plain(const vctx_t *v, const cJSON *root, hookd_event_type_t *type)
{
    static const char *const envelope[] = {"type", "id", "time", NULL};
    const char *dup = duplicate_member(root);
    hookd_event_err_t err;
    char q[EV_QUOTE_MAX * 4 + 8];

    if (dup != NULL)
        return fail(HOOKD_EVENT_ERR_PARSE, v->errstr, v->errstr_size, "duplicate field '%s'",
                    quote(q, sizeof(q), dup, strlen(dup)));
    for (const char *const *e = envelope; *e != NULL; e++)
        if (member(root, *e) == NULL)
            return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size, "missing field '%s'",
                        *e);
    if ((err = check_type(v, member(root, "type"), "field 'type'", type)) != HOOKD_EVENT_OK)
        return err;
    if ((err = check_string(v, member(root, "id"), STR_NONEMPTY, "field 'id'")) != HOOKD_EVENT_OK)
        return err;
    if ((err = check_string(v, member(root, "time"), STR_TIME, "field 'time'")) != HOOKD_EVENT_OK)
        return err;
    return check_fields(v, root, *type, envelope);
}

/* The CloudEvents attributes the schema names, with their keywords. */
static const struct attr_spec {
    const char *name;
    str_kind_t kind;
    bool required;
} attr_specs[] = {
    {"id", STR_NONEMPTY, true},        {"source", STR_URIREF, true},     {"time", STR_TIME, true},
    {"dataschema", STR_URIREF, false}, {"subject", STR_NONEMPTY, false},
};

/* "#/$defs/cloudevent" (binary mode arrives here mapped to the same shape). */
static hookd_event_err_t check_cloudevent(const vctx_t *v, const cJSON *root,
                                          hookd_event_type_t *type)
{
    char label[96], q[EV_QUOTE_MAX * 4 + 8];
    const cJSON *item, *data;
    const char *dup;
    hookd_event_err_t err;
    int count = cJSON_GetArraySize(root);

    if (count > EV_CE_MAX_ATTRIBUTES)
        return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size,
                    "%d CloudEvents attributes, limit %d", count, EV_CE_MAX_ATTRIBUTES);
    if ((dup = duplicate_member(root)) != NULL)
        return fail(HOOKD_EVENT_ERR_PARSE, v->errstr, v->errstr_size, "duplicate %s",
                    label_attr(v, label, sizeof(label), quote(q, sizeof(q), dup, strlen(dup))));
    item = member(root, "specversion");
    if (!is_string(item) || strcmp(item->valuestring, "1.0") != 0)
        return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size, "%s: must be \"1.0\"",
                    label_attr(v, label, sizeof(label), "specversion"));
    /* required, in the schema's order */
    {
        static const char *const required[] = {"id", "source", "type", "time", "data", NULL};
        for (const char *const *r = required; *r != NULL; r++)
            if (member(root, *r) == NULL)
                return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size, "missing %s",
                            v->naming == NAMING_BINARY && strcmp(*r, "data") == 0
                                ? "value"
                                : label_attr(v, label, sizeof(label), *r));
    }
    for (const cJSON *m = root->child; m != NULL; m = m->next)
        if (!check_attr_name(m->string))
            return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size,
                        "%s: not a CloudEvents attribute name (1-20 of a-z, 0-9)",
                        label_attr(v, label, sizeof(label),
                                   quote(q, sizeof(q), m->string, strlen(m->string))));
    if ((err = check_type(v, member(root, "type"), label_attr(v, label, sizeof(label), "type"),
                          type)) != HOOKD_EVENT_OK)
        return err;

    for (const cJSON *m = root->child; m != NULL; m = m->next) {
        const struct attr_spec *a = NULL;

        if (strcmp(m->string, "specversion") == 0 || strcmp(m->string, "type") == 0 ||
            strcmp(m->string, "data") == 0)
            continue;
        for (size_t i = 0; i < sizeof(attr_specs) / sizeof(attr_specs[0]); i++)
            if (strcmp(attr_specs[i].name, m->string) == 0)
                a = &attr_specs[i];
        label_attr(v, label, sizeof(label), m->string);
        if (a != NULL) {
            err = check_string(v, m, a->kind, label);
        } else if (strcmp(m->string, "datacontenttype") == 0) {
            if (!is_string(m))
                err = fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size, "%s: not a string",
                           label);
            else if (!check_content_type(m->valuestring))
                err = fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size,
                           "%s: not application/json", label);
            else
                err = HOOKD_EVENT_OK;
        } else if (cJSON_IsBool(m)) {
            err = HOOKD_EVENT_OK; /* extension attribute, boolean */
        } else if (cJSON_IsNumber(m)) {
            /* extension attribute, integer: a JSON number without a fraction */
            double d = m->valuedouble;
            err = (d >= -2147483648.0 && d <= 2147483647.0 && d == (double)(long long)d)
                      ? HOOKD_EVENT_OK
                      : fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size,
                             "%s: not a 32-bit integer", label);
        } else if (is_string(m)) {
            err = check_string(v, m, STR_TEXT, label);
        } else {
            err = fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size,
                       "%s: an extension attribute must be a string, integer or boolean", label);
        }
        if (err != HOOKD_EVENT_OK)
            return err;
    }

    data = member(root, "data");
    if (!is_object(data))
        return fail(HOOKD_EVENT_ERR_SCHEMA, v->errstr, v->errstr_size, "%s: not a JSON object",
                    v->naming == NAMING_BINARY ? "value" : "attribute 'data'");
    if ((dup = duplicate_member(data)) != NULL)
        return fail(HOOKD_EVENT_ERR_PARSE, v->errstr, v->errstr_size, "duplicate %s",
                    label_field(v, label, sizeof(label), quote(q, sizeof(q), dup, strlen(dup))));
    return check_fields(v, data, *type, NULL);
}

/* ---- binary mode: headers -> the structured form ------------------------ */

static const hookd_header_t *find_header(const hookd_header_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].name != NULL && strcmp(h[i].name, name) == 0)
            return &h[i];
    return NULL;
}

/*
 * The mapping of schemas/README.md: every ce_X header becomes attribute X
 * (a string; a null header becomes JSON null), except that ce_data and
 * ce_datacontenttype keep their header name, which no attribute name
 * matches, so they are refused as the schema would; content-type becomes
 * datacontenttype; other headers are not part of the event. The value
 * becomes data.
 */
static hookd_event_err_t map_binary(const void *value, size_t len, const hookd_header_t *headers,
                                    size_t header_count, bool *has_nul, cJSON **out, char *errstr,
                                    size_t errstr_size)
{
    cJSON *root = cJSON_CreateObject(), *data = NULL;
    char q[EV_QUOTE_MAX * 4 + 8];
    hookd_event_err_t err = HOOKD_EVENT_ERR_PARSE;

    *out = NULL;
    if (root == NULL)
        return fail(HOOKD_EVENT_ERR_PARSE, errstr, errstr_size, "out of memory");
    for (size_t i = 0; i < header_count; i++) {
        const hookd_header_t *h = &headers[i];
        const char *attr;
        cJSON *item;

        if (h->name == NULL)
            continue;
        if (strncmp(h->name, "ce_", 3) == 0)
            attr = (strcmp(h->name, "ce_data") == 0 || strcmp(h->name, "ce_datacontenttype") == 0)
                       ? h->name
                       : h->name + 3;
        else if (strcmp(h->name, "content-type") == 0)
            attr = "datacontenttype";
        else
            continue;
        if (member(root, attr) != NULL) {
            fail(err, errstr, errstr_size, "duplicate header '%s'",
                 quote(q, sizeof(q), h->name, strlen(h->name)));
            goto error;
        }
        if (h->value == NULL) {
            item = cJSON_CreateNull();
        } else {
            size_t bad_at;
            char *copy;

            if (!hookd_json_utf8_valid(h->value, h->len, &bad_at)) {
                fail(err, errstr, errstr_size, "header '%s' is not valid UTF-8 (byte %zu)",
                     quote(q, sizeof(q), h->name, strlen(h->name)), bad_at);
                goto error;
            }
            if (memchr(h->value, '\0', h->len) != NULL)
                *has_nul = true; /* as "\u0000" in the mapped JSON */
            copy = malloc(h->len + 1);
            if (copy == NULL)
                goto oom;
            memcpy(copy, h->value, h->len);
            copy[h->len] = '\0';
            item = cJSON_CreateString(copy);
            free(copy);
        }
        if (item == NULL || !cJSON_AddItemToObject(root, attr, item)) {
            cJSON_Delete(item);
            goto oom;
        }
    }
    data = hookd_json_parse_as("value", value, len, has_nul, errstr, errstr_size);
    if (data == NULL)
        goto error;
    if (!cJSON_AddItemToObject(root, "data", data)) {
        cJSON_Delete(data);
        goto oom;
    }
    *out = root;
    return HOOKD_EVENT_OK;
oom:
    fail(err, errstr, errstr_size, "out of memory");
error:
    cJSON_Delete(root);
    return err;
}

/* ---- decode -------------------------------------------------------------- */

/* Copy a string member into the event when it is a readable, sane string. */
static void salvage(hookd_event_t *ev, const char **slot, const cJSON *item, size_t max_chars)
{
    if (*slot == NULL && is_string(item) && item->valuestring[0] != '\0' &&
        hookd_json_utf8_chars(item->valuestring) <= max_chars)
        *slot = store_copy(ev, item->valuestring, strlen(item->valuestring));
}

/*
 * After a refusal: keep what can be read safely (id above all, so the
 * caller can publish a failed result; the type and names for the result
 * and the logs). Not done when a string held a NUL: any of them may be cut.
 */
static void salvage_event(hookd_event_t *ev, const cJSON *root, const hookd_limits_t *lim)
{
    const cJSON *fields = root, *type;

    if (!is_object(root))
        return;
    if (ev->format != HOOKD_FORMAT_PLAIN && is_object(member(root, "data")))
        fields = member(root, "data");
    salvage(ev, &ev->id, member(root, "id"), lim->max_field_bytes);
    salvage(ev, &ev->order_name, member(fields, "order_name"), lim->max_field_bytes);
    salvage(ev, &ev->certificate_name, member(fields, "certificate_name"), lim->max_field_bytes);
    type = member(root, "type");
    if (is_string(type))
        for (int t = 0; t < HOOKD_EVENT_TYPE_COUNT; t++)
            if (strcmp(type->valuestring, type_names[t]) == 0)
                ev->type = (hookd_event_type_t)t;
}

/*
 * Fill `ev` from a tree that passed every check. The tree lives in the
 * parse arena: the strings kept are copied into one block, allocated with
 * the store itself (one malloc per event).
 */
static hookd_event_err_t fill_event(hookd_event_t *ev, const cJSON *root, char *errstr,
                                    size_t errstr_size)
{
    const cJSON *fields = ev->format == HOOKD_FORMAT_PLAIN ? root : member(root, "data");
    struct {
        const char **slot;
        const cJSON *item;
    } copies[3 + FIELD_COUNT];
    size_t n = 0;

    copies[n].slot = &ev->id, copies[n++].item = member(root, "id");
    copies[n].slot = &ev->time, copies[n++].item = member(root, "time");
    copies[n].slot = &ev->source, copies[n++].item = member(root, "source");
    /* one pass over the fields' object instead of a lookup per field: the
     * first member of each name, as member() would find it */
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        copies[n + i].slot = (const char **)((char *)ev + field_specs[i].offset);
        copies[n + i].item = NULL;
    }
    for (const cJSON *m = fields != NULL ? fields->child : NULL; m != NULL; m = m->next) {
        const struct field_spec *f = m->string != NULL ? find_field(m->string) : NULL;
        if (f != NULL && copies[n + (size_t)(f - field_specs)].item == NULL)
            copies[n + (size_t)(f - field_specs)].item = m;
    }
    n += FIELD_COUNT;
    size_t lens[3 + FIELD_COUNT], total = 0, used = 0;
    ev_store_t *old = ev->priv, *st;

    for (size_t i = 0; i < n; i++) {
        lens[i] = is_string(copies[i].item) ? strlen(copies[i].item->valuestring) : 0;
        total += lens[i] + 1;
    }
    /* A store made before the checks (the ce_id salvaged from a header) is
     * replaced: every slot is filled again below. */
    if ((st = malloc(sizeof(*st) + total)) == NULL)
        return fail(HOOKD_EVENT_ERR_PARSE, errstr, errstr_size, "out of memory");
    st->count = 0;
    if (old != NULL) {
        for (size_t i = 0; i < old->count; i++)
            free(old->strings[i]);
        free(old);
    }
    ev->priv = st;
    for (size_t i = 0; i < n; i++) {
        const cJSON *item = copies[i].item;
        char *dst;

        *copies[i].slot = NULL;
        if (!is_string(item))
            continue; /* absent or null */
        dst = st->block + used;
        memcpy(dst, item->valuestring, lens[i] + 1);
        used += lens[i] + 1;
        *copies[i].slot = dst;
    }
    return HOOKD_EVENT_OK;
}

/* ---- the fast path: plain JSON of string members ------------------------- */

/* false: every event goes through the parser's tree (tests, fuzz target) */
static atomic_bool fast_path = true;
static _Thread_local size_t fast_decodes; /* by this thread, for the tests */

void hookd_event_set_fast_path(bool on)
{
    atomic_store(&fast_path, on);
}

size_t hookd_event_fast_decodes(void)
{
    return fast_decodes;
}

/* The members a plain event may hold: the envelope's, then field_specs. */
#define FLAT_ENVELOPE 3 /* type, id, time */
#define FLAT_SLOTS (FLAT_ENVELOPE + FIELD_COUNT)

static int flat_slot(const hookd_json_flat_member_t *m)
{
    static const struct {
        const char *name;
        size_t len;
    } envelope[FLAT_ENVELOPE] = {{"type", 4}, {"id", 2}, {"time", 4}};

    for (int i = 0; i < FLAT_ENVELOPE; i++)
        if (m->name_len == envelope[i].len && memcmp(m->name, envelope[i].name, m->name_len) == 0)
            return i;
    for (size_t i = 0; i < FIELD_COUNT; i++)
        if (m->name_len == field_specs[i].name_len &&
            memcmp(m->name, field_specs[i].name, m->name_len) == 0)
            return FLAT_ENVELOPE + (int)i;
    return -1;
}

/*
 * A plain event that passes every check, decoded without the tree: false
 * (and `ev` untouched) whenever it is anything else or anything fails, and
 * the caller then decodes it the whole way, which finds the same fault and
 * says what it is. So this path accepts nothing the tree's would refuse and
 * fills the event as fill_event() does (the fuzz target compares the two).
 */
static bool decode_flat(const void *value, size_t len, const hookd_limits_t *lim, hookd_event_t *ev)
{
    hookd_json_flat_member_t members[FLAT_SLOTS];
    const hookd_json_flat_member_t *slot[FLAT_SLOTS] = {NULL};
    const char **dst[FLAT_SLOTS] = {NULL};
    const char *text[FLAT_SLOTS] = {NULL};
    str_kind_t kind[FLAT_SLOTS];
    vctx_t v = {NAMING_PLAIN, lim->max_field_bytes, NULL, 0};
    hookd_event_type_t type = HOOKD_EVENT_TYPE_COUNT;
    size_t total = 0, used = 0;
    unsigned bit;
    ev_store_t *st;
    int n;

    /* The shape first: a structured event stops the scan at its data
     * member, and is then UTF-8-checked once, by the parser. */
    if (!atomic_load_explicit(&fast_path, memory_order_relaxed) || value == NULL ||
        (n = hookd_json_flat_object(value, len, members, FLAT_SLOTS)) < 0 ||
        !hookd_json_utf8_valid(value, len, NULL))
        return false;
    for (int i = 0; i < n; i++) {
        int k = flat_slot(&members[i]);
        if (k < 0 || slot[k] != NULL)
            return false; /* not a plain event's (specversion: structured), or twice */
        slot[k] = &members[i];
        total += members[i].value_len + 1;
    }
    for (int k = 0; k < FLAT_ENVELOPE; k++)
        if (slot[k] == NULL || slot[k]->value == NULL)
            return false;
    if (!slot[0]->escaped)
        for (int t = 0; t < HOOKD_EVENT_TYPE_COUNT; t++)
            if (slot[0]->value_len == strlen(type_names[t]) &&
                memcmp(slot[0]->value, type_names[t], slot[0]->value_len) == 0)
                type = (hookd_event_type_t)t;
    if (type == HOOKD_EVENT_TYPE_COUNT)
        return false;
    bit = 1u << type;
    dst[1] = &ev->id, kind[1] = STR_NONEMPTY;
    dst[2] = &ev->time, kind[2] = STR_TIME;
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        const struct field_spec *f = &field_specs[i];
        const hookd_json_flat_member_t *m = slot[FLAT_ENVELOPE + i];

        if (m == NULL ? (f->required & bit) != 0 : (f->allowed & bit) == 0)
            return false;
        if (m != NULL && m->value == NULL && f->kind != KIND_NULLABLE)
            return false;
        dst[FLAT_ENVELOPE + i] = (const char **)((char *)ev + f->offset);
        kind[FLAT_ENVELOPE + i] = f->kind == KIND_NONEMPTY ? STR_NONEMPTY
                                  : f->kind == KIND_BASE64 ? STR_BASE64
                                  : f->kind == KIND_PEM    ? STR_PEM
                                                           : STR_TEXT;
    }
    /* the strings, unescaped, into the event's store; checked there */
    if ((st = malloc(sizeof(*st) + total)) == NULL)
        return false;
    st->count = 0;
    for (size_t k = 1; k < FLAT_SLOTS; k++) {
        const hookd_json_flat_member_t *m = slot[k];
        char *d = st->block + used;
        size_t l;

        if (m == NULL || m->value == NULL)
            continue; /* absent, or a null poll_identifier */
        if (m->escaped) {
            l = hookd_json_unescape(m->value, m->value_len, d);
        } else {
            memcpy(d, m->value, m->value_len);
            d[m->value_len] = '\0';
            l = m->value_len;
        }
        used += l + 1;
        if (check_text(&v, d, l, kind[k], NULL) != HOOKD_EVENT_OK) {
            free(st);
            return false;
        }
        text[k] = d;
    }
    ev->priv = st; /* now owned by ev */
    ev->type = type;
    ev->format = HOOKD_FORMAT_PLAIN;
    for (size_t k = 1; k < FLAT_SLOTS; k++)
        *dst[k] = text[k];
    fast_decodes++;
    return true;
}

static hookd_event_err_t decode(const void *value, size_t len, const hookd_header_t *headers,
                                size_t header_count, const hookd_limits_t *limits,
                                hookd_event_t *ev, char *errstr, size_t errstr_size)
{
    hookd_limits_t lim = {HOOKD_DEFAULT_MAX_EVENT_BYTES, HOOKD_DEFAULT_MAX_FIELD_BYTES};
    vctx_t v;
    cJSON *root = NULL;
    bool has_nul = false;
    hookd_event_err_t err;
    size_t total = len;
    const hookd_header_t *ce_id;
    hookd_event_type_t type = HOOKD_EVENT_TYPE_COUNT;

    memset(ev, 0, sizeof(*ev));
    ev->type = HOOKD_EVENT_TYPE_COUNT;
    if (errstr != NULL && errstr_size > 0)
        errstr[0] = '\0';
    if (limits != NULL && limits->max_event_bytes > 0)
        lim.max_event_bytes = limits->max_event_bytes;
    if (limits != NULL && limits->max_field_bytes > 0)
        lim.max_field_bytes = limits->max_field_bytes;
    if (value == NULL)
        len = 0;

    /* 1. Binary mode is announced by ce_specversion (CloudEvents Kafka binding). */
    ev->format = find_header(headers, header_count, "ce_specversion") != NULL
                     ? HOOKD_FORMAT_CE_BINARY
                     : HOOKD_FORMAT_PLAIN;
    ce_id =
        ev->format == HOOKD_FORMAT_CE_BINARY ? find_header(headers, header_count, "ce_id") : NULL;
    /* The id is readable from a header even when the value is not. */
    if (ce_id != NULL && ce_id->value != NULL && ce_id->len > 0 &&
        ce_id->len <= lim.max_field_bytes && memchr(ce_id->value, '\0', ce_id->len) == NULL &&
        hookd_json_utf8_valid(ce_id->value, ce_id->len, NULL))
        ev->id = store_copy(ev, ce_id->value, ce_id->len);

    /* 2. Size, before any parsing. */
    for (size_t i = 0; i < header_count; i++)
        total += (headers[i].name ? strlen(headers[i].name) : 0) +
                 (headers[i].value ? headers[i].len : 0);
    if (total > lim.max_event_bytes)
        return fail(HOOKD_EVENT_ERR_TOO_LARGE, errstr, errstr_size, "event is %zu bytes, limit %zu",
                    total, lim.max_event_bytes);

    /* 3. UTF-8 and JSON syntax (binary: mapped to the structured form),
     * or the whole decode at once for an ordinary plain event. */
    if (ev->format == HOOKD_FORMAT_PLAIN && decode_flat(value, len, &lim, ev))
        return HOOKD_EVENT_OK;
    if (ev->format == HOOKD_FORMAT_CE_BINARY) {
        err = map_binary(value, len, headers, header_count, &has_nul, &root, errstr, errstr_size);
        if (err != HOOKD_EVENT_OK)
            return err;
    } else {
        root = hookd_json_parse_as("event", value, len, &has_nul, errstr, errstr_size);
        if (root == NULL)
            return HOOKD_EVENT_ERR_PARSE;
        if (is_object(root) && member(root, "specversion") != NULL)
            ev->format = HOOKD_FORMAT_CE_STRUCTURED;
    }

    /* 4. The schema. */
    v.naming = ev->format == HOOKD_FORMAT_PLAIN           ? NAMING_PLAIN
               : ev->format == HOOKD_FORMAT_CE_STRUCTURED ? NAMING_STRUCTURED
                                                          : NAMING_BINARY;
    v.max_chars = lim.max_field_bytes;
    v.errstr = errstr;
    v.errstr_size = errstr_size;
    if (!is_object(root)) {
        err = fail(HOOKD_EVENT_ERR_SCHEMA, errstr, errstr_size, "event is not a JSON object");
    } else if (has_nul) {
        /* The schema refuses NUL in every string (handlers get C strings). */
        err = fail(HOOKD_EVENT_ERR_SCHEMA, errstr, errstr_size,
                   "a string holds a NUL character (\\u0000)");
    } else if (ev->format == HOOKD_FORMAT_PLAIN) {
        err = check_plain(&v, root, &type);
    } else {
        err = check_cloudevent(&v, root, &type);
    }

    if (err == HOOKD_EVENT_OK) {
        ev->type = type;
        /* the salvaged ce_id is replaced by the checked copy */
        ev->id = NULL;
        err = fill_event(ev, root, errstr, errstr_size);
    } else if (!has_nul) {
        salvage_event(ev, root, &lim);
    }
    /* fill_event and salvage_event copied what the event keeps */
    if (!hookd_json_arena_holds_all())
        cJSON_Delete(root);
    return err;
}

hookd_event_err_t hookd_event_decode(const void *value, size_t len, const hookd_header_t *headers,
                                     size_t header_count, const hookd_limits_t *limits,
                                     hookd_event_t *ev, char *errstr, size_t errstr_size)
{
    bool arena = hookd_json_arena_begin();
    hookd_event_err_t err =
        decode(value, len, headers, header_count, limits, ev, errstr, errstr_size);
    if (arena)
        hookd_json_arena_end();
    return err;
}
