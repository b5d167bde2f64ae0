/* SPDX-License-Identifier: MIT */
/*
 * The strict JSON parser (logic layer): RFC 8259 syntax and the cJSON tree
 * in one pass, plus the UTF-8 checks the event schema shares with it.
 * event.c is its caller; the schema lives there, not here.
 *
 * Process-wide state: hookd_json_global_init() installs cJSON_InitHooks()
 * for the whole process once (pthread_once). While a thread is between
 * hookd_json_arena_begin() and hookd_json_arena_end(), cJSON allocates
 * from that thread's bump arena; everywhere else the hooks fall through to
 * malloc/free. A handler must not call cJSON_InitHooks() itself.
 */
#ifndef HOOKD_JSON_H
#define HOOKD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON;

/*
 * Strict RFC 8259 (at most 33 levels of nested containers), the cJSON tree
 * cJSON_Parse builds from the same text. NULL with a reason on failure;
 * *has_nul set when a string held \u0000 (cut there). Free the tree with
 * cJSON_Delete. For the tests and the fuzz targets.
 */
struct cJSON *hookd_json_parse(const void *data, size_t len, bool *has_nul, char *errstr,
                               size_t errstr_size);

/*
 * hookd_json_parse with `what` naming the input in the reason ("value",
 * "event"), and *has_nul only ever set, never cleared (a header may have set
 * it before).
 */
struct cJSON *hookd_json_parse_as(const char *what, const void *data, size_t len, bool *has_nul,
                                  char *errstr, size_t errstr_size);

/* One member of a flat object, as it stands in the text (not unescaped). */
typedef struct hookd_json_flat_member {
    const char *name; /* the name's bytes between the quotes: never escaped */
    size_t name_len;
    const char *value; /* a string's bytes between the quotes; NULL: JSON null */
    size_t value_len;
    bool escaped; /* the value holds escapes: hookd_json_unescape() it */
} hookd_json_flat_member_t;

/*
 * A JSON object whose members are all strings or null, with nothing but
 * whitespace around it, under the same strict syntax as hookd_json_parse:
 * its members in order, at most `max` of them, in out[]. Returns how many,
 * or -1 when the text is anything else: not JSON, another shape, more than
 * `max` members, a name with an escape or a string with \u0000 (the
 * parser then decides, with its reason). UTF-8 is not checked here.
 */
int hookd_json_flat_object(const void *data, size_t len, hookd_json_flat_member_t *out, size_t max);

/*
 * The `len` bytes of a string hookd_json_flat_object() returned, unescaped
 * into `out` (room for len + 1 bytes) and NUL-terminated. Returns the
 * unescaped length.
 */
size_t hookd_json_unescape(const char *body, size_t len, char *out);

/* Strict UTF-8 (RFC 3629); on failure *bad_at (may be NULL) is the offset. */
bool hookd_json_utf8_valid(const unsigned char *s, size_t len, size_t *bad_at);

/* Characters (code points) of a valid UTF-8 string, as maxLength counts. */
size_t hookd_json_utf8_chars(const char *s);

/*
 * Does any of the eight bytes at p (no alignment needed) need a JSON string
 * scan's or writer's attention: '"', '\\' or a control character (below
 * 0x20)? Bytes from 0x80 up (UTF-8) are ordinary. Word-at-a-time: a byte
 * below 0x20 borrows in w - 0x20..20, and '"' or '\\' leaves a zero byte in
 * w ^ 0x22..22 or w ^ 0x5c..5c that borrows in the "- 0x01..01"; each shows
 * as the byte's top bit, which `~w` keeps only for bytes below 0x80. A
 * borrow only ever starts at a byte that matches, so the answer is exact;
 * which byte it is, a byte loop finds out.
 */
static inline bool hookd_json_word_special(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t w, q, b;

    memcpy(&w, p, 8);
    q = w ^ (ones * '"');
    b = w ^ (ones * '\\');
    return (((w - ones * 0x20) | (q - ones) | (b - ones)) & ~w & high) != 0;
}

/*
 * How many of the n bytes at p are ordinary (see hookd_json_word_special),
 * counted up to the first one that is not: n when none is. The strings of
 * an event are mostly a kilobyte or more of base64, which this skips
 * sixteen bytes at a time with SSE2 where the target has it (every x86-64),
 * eight at a time elsewhere.
 */
static inline size_t hookd_json_plain_run(const unsigned char *p, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1f);

    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        /* unsigned v <= 0x1f exactly when max(v, 0x1f) == 0x1f */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask != 0)
            return i + (size_t)__builtin_ctz(mask);
    }
#endif
    while (i + 8 <= n && !hookd_json_word_special(p + i))
        i += 8;
    while (i < n && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\')
        i++;
    return i;
}

/* How many of the n bytes at p are ASCII, counted up to the first that is not. */
static inline size_t hookd_json_ascii_run(const unsigned char *p, size_t n)
{
    size_t i = 0;
    uint64_t w;
#if defined(__SSE2__)
    for (; i + 16 <= n; i += 16) {
        unsigned mask =
            (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + i)));
        if (mask != 0)
            return i + (size_t)__builtin_ctz(mask);
    }
#endif
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ULL)
            break;
    }
    while (i < n && p[i] < 0x80)
        i++;
    return i;
}

/* Install the cJSON allocation hooks, once per process. */
void hookd_json_global_init(void);

/* Start using this thread's arena (false: plain malloc this time), and stop. */
bool hookd_json_arena_begin(void);
void hookd_json_arena_end(void);

/*
 * True while this thread's arena is in use and every cJSON allocation since
 * hookd_json_arena_begin() came from it: a tree built meanwhile needs no
 * cJSON_Delete (its nodes go with the arena; walking it to free nothing
 * cost about as much as a tenth of the decode).
 */
bool hookd_json_arena_holds_all(void);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_JSON_H */
