/* SPDX-License-Identifier: MIT */
/*
 * What the worker publishes about a message: the result event and the
 * context headers of a dead letter.
 *
 * The result is a CloudEvents 1.0 event in binary mode: the envelope in
 * ce_* headers, the value a JSON object described by
 * schemas/result-event.schema.json. The dead-letter context is written
 * twice, under acme-hookd's own hookd.dlq.* names and under the names Kafka
 * Connect's DeadLetterQueueReporter uses (__connect.errors.*), so tooling
 * built for Connect dead-letter topics reads ours as well;
 * schemas/dead-letter.schema.json describes both.
 *
 * Handler error messages are untrusted bytes: they are made valid UTF-8
 * (invalid sequences become U+FFFD) and capped at max_error_bytes, never cut
 * inside a character, before they reach JSON or a header.
 */
#include "result.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/rand.h>

#include "json.h"

#define RESULT_DEFAULT_MAX_ERROR_BYTES 1024
#define RESULT_TYPE_COMPLETED "acme.hookd.result.completed"
#define RESULT_TYPE_FAILED "acme.hookd.result.failed"

/* ---- the header list ----------------------------------------------------- */

/*
 * A result carries eight headers and a dead letter a few dozen: copying each
 * name and value into its own allocation cost two mallocs per header on the
 * per-message path. Names and values are copied into an arena instead: a
 * first block inside the list itself, further blocks chained when it is
 * full. Blocks never move, so the pointers handed out stay valid until the
 * list is destroyed; a truncated list keeps its arena space (only error
 * paths truncate).
 */
#define HEADERS_INLINE_ITEMS 12
#define HEADERS_INLINE_BYTES 640
#define HEADERS_BLOCK_BYTES 2048

typedef struct headers_block {
    struct headers_block *next;
    size_t size, used;
    char data[];
} headers_block_t;

struct hookd_headers {
    hookd_header_t *items; /* inline_items until it outgrows them */
    size_t count;
    size_t cap;
    headers_block_t *blocks; /* heap blocks, newest first */
    size_t inline_used;
    hookd_header_t inline_items[HEADERS_INLINE_ITEMS];
    char inline_data[HEADERS_INLINE_BYTES];
};

hookd_headers_t *hookd_headers_new(void)
{
    hookd_headers_t *h = malloc(sizeof(*h));
    if (h == NULL)
        return NULL;
    h->items = h->inline_items;
    h->count = 0;
    h->cap = HEADERS_INLINE_ITEMS;
    h->blocks = NULL;
    h->inline_used = 0;
    return h;
}

static void headers_truncate(hookd_headers_t *h, size_t count)
{
    if (h->count > count)
        h->count = count;
}

void hookd_headers_destroy(hookd_headers_t *h)
{
    if (h == NULL)
        return;
    while (h->blocks != NULL) {
        headers_block_t *b = h->blocks;
        h->blocks = b->next;
        free(b);
    }
    if (h->items != h->inline_items)
        free(h->items);
    free(h);
}

/* `n` bytes of arena space, NULL on ENOMEM. */
static char *headers_alloc(hookd_headers_t *h, size_t n)
{
    headers_block_t *b = h->blocks;
    char *p;

    if (b == NULL && HEADERS_INLINE_BYTES - h->inline_used >= n) {
        p = h->inline_data + h->inline_used;
        h->inline_used += n;
        return p;
    }
    if (b == NULL || b->size - b->used < n) {
        size_t size = n > HEADERS_BLOCK_BYTES ? n : HEADERS_BLOCK_BYTES;
        if ((b = malloc(sizeof(*b) + size)) == NULL)
            return NULL;
        b->size = size;
        b->used = 0;
        b->next = h->blocks;
        h->blocks = b;
    }
    p = b->data + b->used;
    b->used += n;
    return p;
}

/* Double the item array (the list outgrew its inline items). 0, or -1 on ENOMEM. */
static int headers_grow(hookd_headers_t *h)
{
    size_t cap = h->cap * 2;
    hookd_header_t *items;
    if (h->items == h->inline_items) {
        if ((items = malloc(cap * sizeof(*items))) != NULL)
            memcpy(items, h->inline_items, h->count * sizeof(*items));
    } else {
        items = realloc(h->items, cap * sizeof(*items));
    }
    if (items == NULL)
        return -1;
    h->items = items;
    h->cap = cap;
    return 0;
}

/*
 * hookd_headers_add with the name's size (NUL included) known: inlined, so
 * the result's eight headers, whose names are literals, cost no strlen and
 * no call each (HEADERS_ADD_LIT).
 */
static inline __attribute__((always_inline)) int
headers_add_n(hookd_headers_t *h, const char *name, size_t nl, const void *value, size_t len)
{
    char *n, *v = NULL;

    if (h->count == h->cap && headers_grow(h) != 0)
        return -1;
    /* name and value (NUL-terminated for convenience; len is what counts) together */
    if ((n = headers_alloc(h, nl + (value != NULL ? len + 1 : 0))) == NULL)
        return -1;
    memcpy(n, name, nl);
    if (value != NULL) {
        v = n + nl;
        memcpy(v, value, len);
        v[len] = '\0';
    }
    h->items[h->count].name = n;
    h->items[h->count].value = v;
    h->items[h->count].len = value != NULL ? len : 0;
    h->count++;
    return 0;
}

#define HEADERS_ADD_LIT(h, lit, value, len) headers_add_n((h), lit, sizeof(lit), (value), (len))

int hookd_headers_add(hookd_headers_t *h, const char *name, const void *value, size_t len)
{
    return headers_add_n(h, name, strlen(name) + 1, value, len);
}

int hookd_headers_add_str(hookd_headers_t *h, const char *name, const char *value)
{
    return hookd_headers_add(h, name, value, value != NULL ? strlen(value) : 0);
}

size_t hookd_headers_count(const hookd_headers_t *h)
{
    return h->count;
}

const hookd_header_t *hookd_headers_get(const hookd_headers_t *h, size_t i)
{
    return i < h->count ? &h->items[i] : NULL;
}

/* ---- text helpers -------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most `avail` bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    size_t n;
    uint32_t cp, min;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0)
        n = 2, cp = s[0] & 0x1f, min = 0x80;
    else if ((s[0] & 0xf0) == 0xe0)
        n = 3, cp = s[0] & 0x0f, min = 0x800;
    else if ((s[0] & 0xf8) == 0xf0)
        n = 4, cp = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    if (n > avail)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/*
 * Copy `src` into `dst` as valid UTF-8 of at most `cap` bytes (NUL not
 * counted; dst must hold cap + 1). A cut text ends in "..." within the cap.
 */
static void clean_text(char *dst, size_t cap, const char *src)
{
    static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
    const unsigned char *s = (const unsigned char *)src;
    size_t len = strlen(src), i = 0, o = 0;
    size_t keep;        /* the longest output that still leaves room for "..." */
    size_t keep_at = 0; /* output length at the last character boundary <= keep */

    if (cap < 3) {
        dst[0] = '\0';
        return;
    }
    keep = cap - 3;
    while (i < len) {
        size_t n = utf8_seq(s + i, len - i);
        const char *piece = n ? (const char *)s + i : repl;
        size_t plen = n ? n : 3;

        if (o + plen <= keep)
            keep_at = o + plen;
        if (o + plen > cap) {
            /* does not fit: cut at the last point that leaves room for "..." */
            memcpy(dst + keep_at, "...", 3);
            dst[keep_at + 3] = '\0';
            return;
        }
        memcpy(dst + o, piece, plen);
        o += plen;
        i += n ? n : 1;
    }
    dst[o] = '\0';
}

static size_t info_cap(const hookd_result_info_t *info)
{
    return info->max_error_bytes > 0 ? info->max_error_bytes : RESULT_DEFAULT_MAX_ERROR_BYTES;
}

/*
 * "2026-11-26T19:00:00.123Z". gmtime_r and strftime are the costly part and
 * change once a second: each thread keeps the text of its last second.
 */
static void now_rfc3339(char *buf, size_t size)
{
    static _Thread_local time_t cached_sec = (time_t)-1;
    static _Thread_local char cached[32];
    static _Thread_local size_t cached_len;
    struct timespec ts;
    int ms;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        cached_len = strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    ms = (int)(ts.tv_nsec / 1000000) % 1000;
    if (size < cached_len + 6) {
        snprintf(buf, size, "%s", cached);
        return;
    }
    memcpy(buf, cached, cached_len);
    buf[cached_len] = '.';
    buf[cached_len + 1] = (char)('0' + ms / 100);
    buf[cached_len + 2] = (char)('0' + ms / 10 % 10);
    buf[cached_len + 3] = (char)('0' + ms % 10);
    buf[cached_len + 4] = 'Z';
    buf[cached_len + 5] = '\0';
}

/*
 * Random bytes for ce_id. RAND_bytes per result cost more than the rest of
 * the envelope: each thread draws them from its own buffer, refilled from
 * RAND_bytes UUID_POOL bytes at a time. What matters is uniqueness, so a
 * forked child must never reuse its parent's unspent bytes: a fork bumps
 * the generation and every buffer of an older generation is discarded.
 */
#define UUID_POOL 4096

static atomic_uint uuid_fork_gen;
static pthread_once_t uuid_once = PTHREAD_ONCE_INIT;

static void uuid_after_fork(void)
{
    atomic_fetch_add(&uuid_fork_gen, 1);
}

static void uuid_init(void)
{
    pthread_atfork(NULL, NULL, uuid_after_fork);
}

/* A random (version 4) UUID: unique ce_id without coordination between workers. */
static int uuid_v4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    static _Thread_local unsigned char pool[UUID_POOL];
    static _Thread_local size_t pool_used = UUID_POOL;
    static _Thread_local unsigned pool_gen;
    unsigned gen;
    unsigned char b[16];
    size_t i, o = 0;

    pthread_once(&uuid_once, uuid_init);
    gen = atomic_load_explicit(&uuid_fork_gen, memory_order_relaxed);
    if (pool_used + sizeof(b) > sizeof(pool) || pool_gen != gen) {
        if (RAND_bytes(pool, sizeof(pool)) != 1)
            return -1;
        pool_used = 0;
        pool_gen = gen;
    }
    memcpy(b, pool + pool_used, sizeof(b));
    memset(pool + pool_used, 0, sizeof(b)); /* spent: never handed out twice */
    pool_used += sizeof(b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    for (i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
    return 0;
}

/*
 * The message that explains the failure: the handler's own text, or one
 * that says what happened when the handler gave none. Cleaned and capped.
 */
static void failure_message(const hookd_result_info_t *info, const hookd_decision_t *d, char *dst,
                            size_t cap)
{
    char buf[HOOKD_ERROR_MAX + 128];
    const hookd_run_t *run =
        d->failed_run >= 0 && (size_t)d->failed_run < d->run_count ? &d->runs[d->failed_run] : NULL;

    if (d->error[0] != '\0')
        snprintf(buf, sizeof(buf), "%s", d->error);
    else if (run != NULL)
        snprintf(buf, sizeof(buf),
                 "handler '%s' %s in phase %s after %" PRIu32 " attempt%s, without a message",
                 run->handler_name ? run->handler_name : "?",
                 d->error_class == HOOKD_ERRCLASS_RETRIES_EXHAUSTED ? "kept asking for a retry"
                                                                    : "failed",
                 hookd_phase_name(run->phase), run->attempts, run->attempts == 1 ? "" : "s");
    else
        snprintf(buf, sizeof(buf), "%s", hookd_error_class_name(d->error_class));
    (void)info;
    clean_text(dst, cap, buf);
}

/* ---- the result event ----------------------------------------------------- */

/*
 * The value is written directly: building a cJSON tree and printing it cost
 * some forty allocations and a number formatting per result. The writer
 * produces what cJSON_PrintUnformatted produced (same member order, same
 * string escaping); numbers are integers except duration_ms, which is the
 * exact decimal of a whole number of microseconds / 1000.
 */
typedef struct jbuf {
    char *p;
    size_t len, cap;
    bool failed; /* ENOMEM once: everything after is ignored */
} jbuf_t;

static bool jb_reserve(jbuf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1, cap;
    char *np;

    if (b->failed)
        return false;
    if (need <= b->cap)
        return true;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if ((np = realloc(b->p, cap)) == NULL) {
        b->failed = true;
        return false;
    }
    b->p = np;
    b->cap = cap;
    return true;
}

/*
 * Inlined: most calls append a literal of a few bytes to a buffer with
 * room (JB_LIT), where a call and the reserve check cost more than the
 * copy (about 1,200 instructions per result, before).
 */
static inline __attribute__((always_inline)) void jb_raw(jbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap && !jb_reserve(b, n))
        return;
    if (b->failed)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

#define JB_LIT(b, lit) jb_raw((b), lit, sizeof(lit) - 1)

/* A JSON string: '"' and '\' escaped, control characters as cJSON writes them. */
static void jb_str(jbuf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i, run = 0;
    char *o;

    /* worst case: every byte as \u00XX (the room check inline, as in jb_raw) */
    if (b->failed || (b->len + n * 6 + 3 > b->cap && !jb_reserve(b, n * 6 + 2)))
        return;
    o = b->p + b->len;
    *o++ = '"';
    for (i = 0; i < n; i++) {
        unsigned char c;
        /* ordinary bytes are copied as one run */
        size_t plain = hookd_json_plain_run(u + i, n - i);
        i += plain;
        run += plain;
        if (i >= n)
            break;
        c = u[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        memcpy(o, s + i - run, run);
        o += run;
        run = 0;
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0x0f];
        }
    }
    memcpy(o, s + n - run, run);
    o += run;
    *o++ = '"';
    b->len = (size_t)(o - b->p);
}

static void jb_str_or_null(jbuf_t *b, const char *s)
{
    if (s != NULL)
        jb_str(b, s);
    else
        JB_LIT(b, "null");
}

static void jb_bool(jbuf_t *b, bool v)
{
    if (v)
        JB_LIT(b, "true");
    else
        JB_LIT(b, "false");
}

/* A signed integer, without printf. */
static void jb_int(jbuf_t *b, int64_t v)
{
    char tmp[24], *e = tmp + sizeof(tmp), *p = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    jb_raw(b, p, (size_t)(e - p));
}

/* us / 1000 as an exact decimal: 1500 -> 1.5, 2000 -> 2, 1 -> 0.001. */
static void jb_millis(jbuf_t *b, uint64_t us)
{
    unsigned frac = (unsigned)(us % 1000);
    char tmp[5];
    size_t n = 4;

    jb_int(b, (int64_t)(us / 1000));
    if (frac == 0)
        return;
    tmp[0] = '.';
    tmp[1] = (char)('0' + frac / 100);
    tmp[2] = (char)('0' + frac / 10 % 10);
    tmp[3] = (char)('0' + frac % 10);
    while (tmp[n - 1] == '0')
        n--;
    jb_raw(b, tmp, n);
}

static void run_json(jbuf_t *b, const hookd_run_t *r, size_t cap, char *scratch)
{
    bool failed = r->outcome != HOOKD_OK;

    JB_LIT(b, "{\"phase\":");
    jb_str(b, hookd_phase_name(r->phase));
    JB_LIT(b, ",\"handler\":");
    jb_str(b, r->handler_name ? r->handler_name : "");
    JB_LIT(b, ",\"outcome\":");
    jb_str(b, failed ? "fail" : "ok");
    JB_LIT(b, ",\"failure_allowed\":");
    jb_bool(b, failed && r->failure_allowed);
    JB_LIT(b, ",\"attempts\":");
    jb_int(b, r->attempts);
    JB_LIT(b, ",\"duration_ms\":");
    jb_millis(b, r->duration_us);
    JB_LIT(b, ",\"error_class\":");
    jb_str_or_null(b, failed && r->error_class != HOOKD_ERRCLASS_NONE
                          ? hookd_error_class_name(r->error_class)
                      : failed ? hookd_error_class_name(HOOKD_ERRCLASS_HOOK_FAILED)
                               : NULL);
    JB_LIT(b, ",\"error\":");
    /* an ok run reports no error, even if the handler set a message and succeeded */
    if (failed && r->error[0] != '\0') {
        clean_text(scratch, cap, r->error);
        jb_str(b, scratch);
    } else {
        JB_LIT(b, "null");
    }
    JB_LIT(b, "}");
}

char *hookd_result_encode(const hookd_result_info_t *info, const hookd_decision_t *d,
                          hookd_headers_t *headers, size_t *len)
{
    const hookd_event_t *ev = info->event;
    const hookd_origin_t *origin = info->origin;
    size_t cap = info_cap(info), mark = hookd_headers_count(headers);
    bool failed = d->verdict != HOOKD_VERDICT_COMPLETED;
    char now[40], ce_id[37], *scratch, *scratch_heap = NULL, *source = NULL;
    const char *src;
    char scratch_buf[RESULT_DEFAULT_MAX_ERROR_BYTES + 1];
    jbuf_t b = {NULL, 0, 0, false};

    /* where error texts are cleaned: on the stack unless the cap is raised */
    scratch = cap < sizeof(scratch_buf) ? scratch_buf : (scratch_heap = malloc(cap + 1));
    if (scratch == NULL || !jb_reserve(&b, 768) || uuid_v4(ce_id) != 0)
        goto error;
    now_rfc3339(now, sizeof(now));

    JB_LIT(&b, "{\"event_id\":");
    jb_str_or_null(&b, ev ? ev->id : NULL);
    JB_LIT(&b, ",\"event_type\":");
    jb_str_or_null(&b, ev && (unsigned)ev->type < HOOKD_EVENT_TYPE_COUNT
                           ? hookd_event_type_name(ev->type)
                           : NULL);
    JB_LIT(&b, ",\"verdict\":");
    jb_str(&b, hookd_verdict_name(d->verdict));
    JB_LIT(&b, ",\"dead_lettered\":");
    jb_bool(&b, d->dead_letter);
    if (failed) {
        failure_message(info, d, scratch, cap);
        JB_LIT(&b, ",\"error_class\":");
        jb_str(&b, d->error_class != HOOKD_ERRCLASS_NONE
                       ? hookd_error_class_name(d->error_class)
                       : hookd_error_class_name(HOOKD_ERRCLASS_HOOK_FAILED));
        JB_LIT(&b, ",\"error\":");
        jb_str(&b, scratch);
    } else {
        JB_LIT(&b, ",\"error_class\":null,\"error\":null");
    }
    if (ev != NULL && ev->certificate_name != NULL) {
        JB_LIT(&b, ",\"certificate_name\":");
        jb_str(&b, ev->certificate_name);
    }
    if (ev != NULL && ev->order_name != NULL) {
        JB_LIT(&b, ",\"order_name\":");
        jb_str(&b, ev->order_name);
    }
    JB_LIT(&b, ",\"runs\":[");
    for (size_t i = 0; i < d->run_count && i < HOOKD_RUNS_MAX; i++) {
        if (i > 0)
            JB_LIT(&b, ",");
        run_json(&b, &d->runs[i], cap, scratch);
    }
    JB_LIT(&b, "]");
    if (d->phases_skipped != 0) {
        /* only on a resumed event, so every other result keeps its bytes */
        bool first = true;
        JB_LIT(&b, ",\"skipped_phases\":[");
        for (int p = 0; p < HOOKD_PHASE_COUNT; p++) {
            if (!(d->phases_skipped & HOOKD_PHASE_BIT(p)))
                continue;
            if (!first)
                JB_LIT(&b, ",");
            jb_str(&b, hookd_phase_name((hookd_phase_t)p));
            first = false;
        }
        JB_LIT(&b, "]");
    }
    JB_LIT(&b, ",\"input\":{\"topic\":");
    jb_str(&b, origin && origin->topic ? origin->topic : "");
    JB_LIT(&b, ",\"partition\":");
    jb_int(&b, origin ? origin->partition : -1);
    JB_LIT(&b, ",\"offset\":");
    jb_int(&b, origin ? origin->offset : -1);
    JB_LIT(&b, "},\"worker_id\":");
    jb_str(&b, info->worker_id ? info->worker_id : "");
    JB_LIT(&b, ",\"time\":");
    jb_str(&b, now);
    JB_LIT(&b, "}");
    if (b.failed)
        goto error;
    b.p[b.len] = '\0'; /* jb_reserve always leaves room for it */

    /* CloudEvents binary mode (Kafka protocol binding): the envelope as headers. */
    if (info->source == NULL) {
        size_t n = sizeof("urn:acme-hookd:") + (info->worker_id ? strlen(info->worker_id) : 0);
        source = malloc(n);
        if (source == NULL)
            goto error;
        snprintf(source, n, "urn:acme-hookd:%s", info->worker_id ? info->worker_id : "");
    }
    src = info->source ? info->source : source;
    if (HEADERS_ADD_LIT(headers, "ce_specversion", "1.0", 3) ||
        HEADERS_ADD_LIT(headers, "ce_id", ce_id, 36) ||
        HEADERS_ADD_LIT(headers, "ce_source", src, strlen(src)) ||
        (failed ? HEADERS_ADD_LIT(headers, "ce_type", RESULT_TYPE_FAILED,
                                  sizeof(RESULT_TYPE_FAILED) - 1)
                : HEADERS_ADD_LIT(headers, "ce_type", RESULT_TYPE_COMPLETED,
                                  sizeof(RESULT_TYPE_COMPLETED) - 1)) ||
        (ev && ev->order_name &&
         HEADERS_ADD_LIT(headers, "ce_subject", ev->order_name, strlen(ev->order_name))) ||
        HEADERS_ADD_LIT(headers, "ce_time", now, strlen(now)) ||
        HEADERS_ADD_LIT(headers, "content-type", "application/json", 16) ||
        (ev && ev->id && HEADERS_ADD_LIT(headers, "ce_inputeventid", ev->id, strlen(ev->id))))
        goto error;

    *len = b.len;
    free(scratch_heap);
    free(source);
    return b.p;

error:
    /* nothing half-done is left behind: the caller's headers are as they were */
    headers_truncate(headers, mark);
    free(b.p);
    free(scratch_heap);
    free(source);
    return NULL;
}

/* ---- the dead-letter context ---------------------------------------------- */

/*
 * The run history, most recent first like a stack trace, for
 * __connect.errors.exception.stacktrace (Connect puts the Java stack there;
 * ours is the path of handler runs that led to the failure).
 */
static void run_trace(const hookd_decision_t *d, char *dst, size_t cap)
{
    size_t size = HOOKD_RUNS_MAX * (HOOKD_ERROR_MAX + 160) + 256, o = 0;
    char *buf = malloc(size);

    if (buf == NULL) {
        clean_text(dst, cap, "");
        return;
    }
    buf[0] = '\0';
    if (d->run_count == 0)
        o += (size_t)snprintf(buf + o, size - o, "%s: %s", hookd_error_class_name(d->error_class),
                              d->error);
    for (size_t k = d->run_count; k > 0 && o < size; k--) {
        const hookd_run_t *r = &d->runs[k - 1];
        o += (size_t)snprintf(buf + o, size - o, "%sat %s/%s: %s%s, %" PRIu32 " attempt%s%s%s",
                              o ? "\n" : "", hookd_phase_name(r->phase),
                              r->handler_name ? r->handler_name : "?",
                              r->outcome == HOOKD_OK ? "ok" : "fail",
                              r->outcome != HOOKD_OK && r->failure_allowed ? " (allowed)" : "",
                              r->attempts, r->attempts == 1 ? "" : "s",
                              r->outcome != HOOKD_OK && r->error[0] ? ": " : "",
                              r->outcome != HOOKD_OK ? r->error : "");
    }
    clean_text(dst, cap, buf);
    free(buf);
}

int hookd_deadletter_headers(const hookd_result_info_t *info, const hookd_decision_t *d,
                             hookd_headers_t *headers)
{
    const hookd_event_t *ev = info->event;
    const hookd_origin_t *o = info->origin;
    const hookd_run_t *run =
        d->failed_run >= 0 && (size_t)d->failed_run < d->run_count ? &d->runs[d->failed_run] : NULL;
    size_t cap = info_cap(info), mark = hookd_headers_count(headers);
    const char *cls = hookd_error_class_name(
        d->error_class != HOOKD_ERRCLASS_NONE ? d->error_class : HOOKD_ERRCLASS_HOOK_FAILED);
    const char *topic = o && o->topic ? o->topic : "";
    const char *group = o && o->group_id ? o->group_id : NULL;
    const char *worker = info->worker_id ? info->worker_id : "";
    char partition[16], offset[24], timestamp[24], attempts[16], now[40], klass[256];
    char *msg = malloc(cap + 1), *trace = malloc(cap + 1);
    int rc = -1;

    if (msg == NULL || trace == NULL)
        goto done;
    snprintf(partition, sizeof(partition), "%" PRId32, o ? o->partition : -1);
    snprintf(offset, sizeof(offset), "%" PRId64, o ? o->offset : -1);
    snprintf(timestamp, sizeof(timestamp), "%" PRId64, o ? o->timestamp_ms : -1);
    snprintf(attempts, sizeof(attempts), "%" PRIu32, run ? run->attempts : 0);
    now_rfc3339(now, sizeof(now));
    failure_message(info, d, msg, cap);
    run_trace(d, trace, cap);
    if (run != NULL)
        snprintf(klass, sizeof(klass), "hookd.handler.%s",
                 run->handler_name ? run->handler_name : "?");
    else
        snprintf(klass, sizeof(klass), "hookd.event");

    /* acme-hookd's own names */
    if (hookd_headers_add_str(headers, "hookd.dlq.topic", topic) ||
        hookd_headers_add_str(headers, "hookd.dlq.partition", partition) ||
        hookd_headers_add_str(headers, "hookd.dlq.offset", offset) ||
        (o && o->timestamp_ms >= 0 &&
         hookd_headers_add_str(headers, "hookd.dlq.timestamp", timestamp)) ||
        (group && hookd_headers_add_str(headers, "hookd.dlq.group", group)) ||
        (ev && ev->id && hookd_headers_add_str(headers, "hookd.dlq.event.id", ev->id)) ||
        (ev && (unsigned)ev->type < HOOKD_EVENT_TYPE_COUNT &&
         hookd_headers_add_str(headers, "hookd.dlq.event.type", hookd_event_type_name(ev->type))) ||
        (run && hookd_headers_add_str(headers, "hookd.dlq.phase", hookd_phase_name(run->phase))) ||
        (run && hookd_headers_add_str(headers, "hookd.dlq.handler",
                                      run->handler_name ? run->handler_name : "")) ||
        (run && hookd_headers_add_str(headers, "hookd.dlq.attempts", attempts)) ||
        hookd_headers_add_str(headers, "hookd.dlq.error.class", cls) ||
        hookd_headers_add_str(headers, "hookd.dlq.error.message", msg) ||
        hookd_headers_add_str(headers, "hookd.dlq.worker", worker) ||
        hookd_headers_add_str(headers, "hookd.dlq.time", now))
        goto done;

    /* Kafka Connect's DeadLetterQueueReporter names */
    if (hookd_headers_add_str(headers, "__connect.errors.topic", topic) ||
        hookd_headers_add_str(headers, "__connect.errors.partition", partition) ||
        hookd_headers_add_str(headers, "__connect.errors.offset", offset) ||
        hookd_headers_add_str(headers, "__connect.errors.connector.name",
                              group ? group : "acme-hookd") ||
        hookd_headers_add_str(headers, "__connect.errors.task.id", worker) ||
        hookd_headers_add_str(headers, "__connect.errors.stage",
                              d->error_class == HOOKD_ERRCLASS_INVALID_EVENT ? "VALUE_CONVERTER"
                                                                             : "TASK_PUT") ||
        hookd_headers_add_str(headers, "__connect.errors.class.name", klass) ||
        hookd_headers_add_str(headers, "__connect.errors.exception.class.name", cls) ||
        hookd_headers_add_str(headers, "__connect.errors.exception.message", msg) ||
        hookd_headers_add_str(headers, "__connect.errors.exception.stacktrace", trace))
        goto done;
    rc = 0;
done:
    if (rc != 0)
        headers_truncate(headers, mark);
    free(msg);
    free(trace);
    return rc;
}

/* ---- fallbacks for records the broker refuses ------------------------------ */

char *hookd_result_compact(const void *value, size_t value_len, size_t *len)
{
    static const char *const drop[] = {"certificate_name", "order_name"};
    char cut[HOOKD_RESULT_COMPACT_ERROR_BYTES + 1];
    cJSON *root = cJSON_ParseWithLength(value, value_len), *item;
    char *out = NULL;

    if (!cJSON_IsObject(root) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "verdict")))
        goto done;
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(root, drop[i]);
    if ((item = cJSON_CreateArray()) == NULL ||
        !cJSON_ReplaceItemInObjectCaseSensitive(root, "runs", item)) {
        cJSON_Delete(item);
        goto done;
    }
    item = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (cJSON_IsString(item) && strlen(item->valuestring) > HOOKD_RESULT_COMPACT_ERROR_BYTES) {
        clean_text(cut, HOOKD_RESULT_COMPACT_ERROR_BYTES, item->valuestring);
        if ((item = cJSON_CreateString(cut)) == NULL ||
            !cJSON_ReplaceItemInObjectCaseSensitive(root, "error", item)) {
            cJSON_Delete(item);
            goto done;
        }
    }
    if ((out = cJSON_PrintUnformatted(root)) != NULL)
        *len = strlen(out);
done:
    cJSON_Delete(root);
    return out;
}

int hookd_deadletter_refused_headers(const hookd_origin_t *o, const char *worker_id,
                                     const char *record, const char *error_class,
                                     const char *reason, hookd_headers_t *headers)
{
    const char *cls = error_class ? error_class : "publish_refused";
    size_t mark = hookd_headers_count(headers);
    const char *topic = o && o->topic ? o->topic : "";
    const char *group = o && o->group_id ? o->group_id : NULL;
    const char *worker = worker_id ? worker_id : "";
    char partition[16], offset[24], timestamp[24], now[40], msg[RESULT_DEFAULT_MAX_ERROR_BYTES + 1];
    char text[RESULT_DEFAULT_MAX_ERROR_BYTES + 64];

    snprintf(partition, sizeof(partition), "%" PRId32, o ? o->partition : -1);
    snprintf(offset, sizeof(offset), "%" PRId64, o ? o->offset : -1);
    snprintf(timestamp, sizeof(timestamp), "%" PRId64, o ? o->timestamp_ms : -1);
    now_rfc3339(now, sizeof(now));
    snprintf(text, sizeof(text), "%s not accepted by the broker: %s", record,
             reason && reason[0] ? reason : "refused");
    clean_text(msg, RESULT_DEFAULT_MAX_ERROR_BYTES, text);

    if (hookd_headers_add_str(headers, "hookd.dlq.topic", topic) ||
        hookd_headers_add_str(headers, "hookd.dlq.partition", partition) ||
        hookd_headers_add_str(headers, "hookd.dlq.offset", offset) ||
        (o && o->timestamp_ms >= 0 &&
         hookd_headers_add_str(headers, "hookd.dlq.timestamp", timestamp)) ||
        (group && hookd_headers_add_str(headers, "hookd.dlq.group", group)) ||
        hookd_headers_add_str(headers, "hookd.dlq.record", record) ||
        hookd_headers_add_str(headers, "hookd.dlq.error.class", cls) ||
        hookd_headers_add_str(headers, "hookd.dlq.error.message", msg) ||
        hookd_headers_add_str(headers, "hookd.dlq.worker", worker) ||
        hookd_headers_add_str(headers, "hookd.dlq.time", now) ||
        hookd_headers_add_str(headers, "__connect.errors.topic", topic) ||
        hookd_headers_add_str(headers, "__connect.errors.partition", partition) ||
        hookd_headers_add_str(headers, "__connect.errors.offset", offset) ||
        hookd_headers_add_str(headers, "__connect.errors.connector.name",
                              group ? group : "acme-hookd") ||
        hookd_headers_add_str(headers, "__connect.errors.task.id", worker) ||
        hookd_headers_add_str(headers, "__connect.errors.stage", "KAFKA_PRODUCE") ||
        hookd_headers_add_str(headers, "__connect.errors.class.name", "hookd.publisher") ||
        hookd_headers_add_str(headers, "__connect.errors.exception.class.name", cls) ||
        hookd_headers_add_str(headers, "__connect.errors.exception.message", msg)) {
        headers_truncate(headers, mark);
        return -1;
    }
    return 0;
}
