/* SPDX-License-Identifier: MIT */
/*
 * Process-wide metrics and status flags.
 *
 * Every metric family owns one mutex and a small array of series. The label
 * sets of this worker are few (event types, phases x handlers x outcomes,
 * error classes, verdicts), so a linear scan keyed by a precomputed hash is
 * cheaper than any tree. Label values that come from input (the event
 * type) are bounded: past HOOKD_METRICS_MAX_SERIES distinct sets a family
 * folds new ones into a single "_other" series instead of growing without
 * limit.
 *
 * Recording takes no lock once a thread has recorded a label set: the
 * thread remembers the series (hookd_hint_find), a series never moves nor
 * is freed until hookd_metrics_reset(), its label values never change, and
 * its counts are atomics. Every handler thread records several series per
 * event (consumed, one invocation and one duration per phase, the verdict):
 * behind a family mutex, all of them would take turns on the same few
 * locks for every event. The family lock is left for making a series, for
 * the render's walk and for reset.
 *
 * The status flags and the heartbeat are plain atomics: the HTTP thread reads
 * them on every probe and must never wait for the main loop.
 */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "clock.h"

#ifndef HOOKD_VERSION
#define HOOKD_VERSION "unknown"
#endif

#define HOOKD_METRICS_MAX_LABELS 3
#define HOOKD_METRICS_MAX_SERIES 256
#define HOOKD_METRICS_MAX_VALUE 128 /* bytes kept of one label value */
#define HOOKD_METRICS_OTHER "_other"

/* Handler durations: 1 ms .. 60 s, the range between a no-op and a timeout. */
static const double hookd_duration_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                0.5,   1.0,    2.5,   5.0,  10.0,  30.0, 60.0};
#define HOOKD_DURATION_NBUCKETS (sizeof(hookd_duration_buckets) / sizeof(hookd_duration_buckets[0]))

/* ------------------------------------------------------------------ */
/* A growable string buffer for rendering.                              */

typedef struct hookd_sbuf {
    char *data;
    size_t len;
    size_t cap;
    int failed; /* an allocation failed: the render returns NULL */
} hookd_sbuf_t;

static void hookd_sbuf_reserve(hookd_sbuf_t *b, size_t extra)
{
    if (b->failed || b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return;
    }
    b->data = p;
    b->cap = cap;
}

static void hookd_sbuf_add(hookd_sbuf_t *b, const char *s, size_t n)
{
    hookd_sbuf_reserve(b, n);
    if (b->failed)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void hookd_sbuf_puts(hookd_sbuf_t *b, const char *s)
{
    hookd_sbuf_add(b, s, strlen(s));
}

static void hookd_sbuf_printf(hookd_sbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void hookd_sbuf_printf(hookd_sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    hookd_sbuf_reserve(b, (size_t)n);
    if (b->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Label values: backslash, double quote and line feed are escaped (format 0.0.4). */
static void hookd_sbuf_label_value(hookd_sbuf_t *b, const char *v)
{
    for (; *v; v++) {
        switch (*v) {
        case '\\':
            hookd_sbuf_add(b, "\\\\", 2);
            break;
        case '"':
            hookd_sbuf_add(b, "\\\"", 2);
            break;
        case '\n':
            hookd_sbuf_add(b, "\\n", 2);
            break;
        default:
            hookd_sbuf_add(b, v, 1);
            break;
        }
    }
}

/* Sample values: Prometheus spells infinities and NaN its own way. */
static void hookd_sbuf_double(hookd_sbuf_t *b, double v)
{
    if (isnan(v))
        hookd_sbuf_puts(b, "NaN");
    else if (isinf(v))
        hookd_sbuf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else {
        /* The shortest text that reads back as the same double: le="0.005", not 0.00500...01. */
        char tmp[40];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
        hookd_sbuf_puts(b, tmp);
    }
}

/* ------------------------------------------------------------------ */
/* Labelled families.                                                   */

typedef enum hookd_family_kind { HOOKD_FAM_COUNTER, HOOKD_FAM_HISTOGRAM } hookd_family_kind_t;

typedef struct hookd_series {
    uint64_t hash;
    char *values[HOOKD_METRICS_MAX_LABELS]; /* set before the series is published, then read-only */
    atomic_uint_fast64_t count;             /* counter only */
    _Atomic double sum;                     /* histogram only */
    /* histogram only: non-cumulative counts, one per bound and a last one
     * above every bound; the observation count is their sum, so a render
     * racing with recorders still shows +Inf and _count equal */
    atomic_uint_fast64_t *buckets;
} hookd_series_t;

typedef struct hookd_family {
    const char *name;
    const char *help;
    hookd_family_kind_t kind;
    int nlabels;
    const char *labels[HOOKD_METRICS_MAX_LABELS];
    pthread_mutex_t lock;    /* series, count, cap; and reset against render */
    hookd_series_t **series; /* each allocated once, freed by reset only */
    size_t count;
    size_t cap;
    atomic_uint gen; /* bumped by reset: every thread's hints go stale */
} hookd_family_t;

#define HOOKD_FAMILY(n, h, k, nl, ...)                                                             \
    {                                                                                              \
        .name = n, .help = h, .kind = k, .nlabels = nl, .labels = {__VA_ARGS__},                   \
        .lock = PTHREAD_MUTEX_INITIALIZER                                                          \
    }

static hookd_family_t hookd_fam_consumed =
    HOOKD_FAMILY("hookd_events_consumed_total", "Input events consumed, by event type.",
                 HOOKD_FAM_COUNTER, 1, "type");
static hookd_family_t hookd_fam_invocations =
    HOOKD_FAMILY("hookd_handler_invocations_total",
                 "Handler invocations (attempts), by phase, handler and outcome (ok, fail, retry).",
                 HOOKD_FAM_COUNTER, 3, "phase", "handler", "outcome");
static hookd_family_t hookd_fam_retries =
    HOOKD_FAMILY("hookd_handler_retries_total",
                 "Handler attempts that asked to be retried, by phase and handler.",
                 HOOKD_FAM_COUNTER, 2, "phase", "handler");
static hookd_family_t hookd_fam_duration =
    HOOKD_FAMILY("hookd_handler_duration_seconds",
                 "Duration of one handler invocation, by phase and handler.", HOOKD_FAM_HISTOGRAM,
                 2, "phase", "handler");
static hookd_family_t hookd_fam_dead_letters =
    HOOKD_FAMILY("hookd_dead_letters_total", "Events dead-lettered, by error class.",
                 HOOKD_FAM_COUNTER, 1, "error_class");
static hookd_family_t hookd_fam_retry_published = HOOKD_FAMILY(
    "hookd_retry_published_total",
    "Events published to a retry tier topic and acknowledged, by tier number (1 = first).",
    HOOKD_FAM_COUNTER, 1, "tier");
static hookd_family_t hookd_fam_retry_consumed =
    HOOKD_FAMILY("hookd_retry_consumed_total",
                 "Events consumed from a retry tier topic once due and run again, by tier number.",
                 HOOKD_FAM_COUNTER, 1, "tier");
static hookd_family_t hookd_fam_results =
    HOOKD_FAMILY("hookd_results_published_total",
                 "Result events acknowledged by the broker, by verdict.", HOOKD_FAM_COUNTER, 1,
                 "verdict");

static hookd_family_t hookd_fam_replies =
    HOOKD_FAMILY("hookd_replies_total",
                 "Replies to requesters (kafka_replyTopic), by outcome: sent (acknowledged), "
                 "refused (topic not in [kafka] reply_topics, or malformed reply headers), "
                 "undeliverable (the broker would not take it).",
                 HOOKD_FAM_COUNTER, 1, "outcome");

static hookd_family_t hookd_fam_fallbacks = HOOKD_FAMILY(
    "hookd_publish_fallbacks_total",
    "Records the broker or producer refused for good, rewritten into a smaller form, by "
    "record and form (value_truncated, minimal, result_compacted, result_dead_lettered).",
    HOOKD_FAM_COUNTER, 2, "record", "form");

static hookd_family_t *const hookd_families[] = {
    &hookd_fam_consumed,        &hookd_fam_invocations,    &hookd_fam_retries, &hookd_fam_duration,
    &hookd_fam_dead_letters,    &hookd_fam_results,        &hookd_fam_replies, &hookd_fam_fallbacks,
    &hookd_fam_retry_published, &hookd_fam_retry_consumed,
};
#define HOOKD_NFAMILIES (sizeof(hookd_families) / sizeof(hookd_families[0]))

static uint64_t hookd_hash_values(const char *const *values, int n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (int i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++) {
            h ^= *p;
            h *= 1099511628211ULL;
        }
        h ^= 0xff; /* separator: ("ab","c") differs from ("a","bc") */
        h *= 1099511628211ULL;
    }
    return h;
}

static void hookd_series_free(hookd_series_t *s, int nlabels)
{
    for (int i = 0; i < nlabels; i++)
        free(s->values[i]);
    free(s->buckets);
    free(s);
}

/*
 * Find or create the series of `values` (already bounded in length). Called
 * with the family locked. NULL only when memory runs out: the observation is
 * then lost, which is better than failing the event it describes.
 */
static hookd_series_t *hookd_family_series(hookd_family_t *f, const char *const *values)
{
    uint64_t h = hookd_hash_values(values, f->nlabels);
    for (size_t i = 0; i < f->count; i++) {
        hookd_series_t *s = f->series[i];
        if (s->hash != h)
            continue;
        int same = 1;
        for (int j = 0; j < f->nlabels && same; j++)
            same = strcmp(s->values[j], values[j]) == 0;
        if (same)
            return s;
    }

    if (f->count >= HOOKD_METRICS_MAX_SERIES) {
        /*
         * Cardinality bound reached: fold into the overflow series, which is
         * created once, past the bound, and found by the scan above after.
         */
        const char *other[HOOKD_METRICS_MAX_LABELS];
        int is_other = 1;
        for (int j = 0; j < f->nlabels; j++) {
            other[j] = HOOKD_METRICS_OTHER;
            is_other = is_other && strcmp(values[j], HOOKD_METRICS_OTHER) == 0;
        }
        if (!is_other)
            return hookd_family_series(f, other);
    }

    if (f->count == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        hookd_series_t **p = realloc(f->series, cap * sizeof(*p));
        if (!p)
            return NULL;
        f->series = p;
        f->cap = cap;
    }
    hookd_series_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->hash = h;
    for (int j = 0; j < f->nlabels; j++) {
        s->values[j] = strdup(values[j]);
        if (!s->values[j]) {
            hookd_series_free(s, j);
            return NULL;
        }
    }
    if (f->kind == HOOKD_FAM_HISTOGRAM) {
        s->buckets = calloc(HOOKD_DURATION_NBUCKETS + 1, sizeof(*s->buckets));
        if (!s->buckets) {
            hookd_series_free(s, f->nlabels);
            return NULL;
        }
    }
    f->series[f->count++] = s;
    return s;
}

/*
 * Copy label values into bounded local storage: NULL becomes "", overlong
 * values are cut (on a UTF-8 boundary) so a hostile input cannot make the
 * exposition grow without limit.
 */
static void hookd_bound_values(const char *const *in, int n,
                               char out[][HOOKD_METRICS_MAX_VALUE + 1], const char **ptrs)
{
    for (int i = 0; i < n; i++) {
        const char *v = in[i] ? in[i] : "";
        size_t len = strnlen(v, HOOKD_METRICS_MAX_VALUE + 1);
        if (len > HOOKD_METRICS_MAX_VALUE) {
            len = HOOKD_METRICS_MAX_VALUE;
            while (len > 0 && ((unsigned char)v[len] & 0xC0) == 0x80)
                len--;
        }
        memcpy(out[i], v, len);
        out[i][len] = '\0';
        ptrs[i] = out[i];
    }
}

/*
 * The series a thread recorded into last, per family and label pointers.
 * The hot path records the same few label sets (event type, phase, handler
 * and outcome, verdict) for every message, mostly from string constants:
 * copying the values into bounded buffers, hashing them and comparing
 * them with every series cost more than the rest of the recording, and the
 * lookup needs the family lock. A hit is only a hint: the series must be
 * of the family's current generation (no reset since) and hold exactly
 * these values (a label string freed and its address reused makes it a
 * miss), so the series found is the one the full lookup would find.
 */
#define HOOKD_SERIES_CACHE 8

typedef struct hookd_series_hint {
    const hookd_family_t *family; /* NULL: empty slot */
    const char *ptrs[HOOKD_METRICS_MAX_LABELS];
    hookd_series_t *series;
    unsigned gen;
} hookd_series_hint_t;

static _Thread_local hookd_series_hint_t hookd_hints[HOOKD_SERIES_CACHE];
static _Thread_local unsigned hookd_hint_next;

static hookd_series_hint_t *hookd_hint_find(const hookd_family_t *f, const char *const *values)
{
    for (int i = 0; i < HOOKD_SERIES_CACHE; i++) {
        hookd_series_hint_t *h = &hookd_hints[i];
        int same = h->family == f;
        for (int j = 0; j < f->nlabels && same; j++)
            same = h->ptrs[j] == values[j];
        if (same)
            return h;
    }
    return NULL;
}

/*
 * The hinted series, if it is still the family's and holds `values`. No
 * lock: the hint was stored by this thread after it took the family lock,
 * which the series' making happened before, and its values never change.
 */
static hookd_series_t *hookd_hint_series(const hookd_family_t *f, const hookd_series_hint_t *h,
                                         const char *const *values)
{
    if (h == NULL || h->gen != atomic_load_explicit(&f->gen, memory_order_relaxed))
        return NULL;
    for (int j = 0; j < f->nlabels; j++)
        if (strcmp(h->series->values[j], values[j] ? values[j] : "") != 0)
            return NULL;
    return h->series;
}

/* Remember where `values` were recorded (a miss just found or made it). Family locked. */
static void hookd_hint_store(hookd_family_t *f, hookd_series_hint_t *h, const char *const *values,
                             hookd_series_t *s)
{
    if (h == NULL)
        h = &hookd_hints[hookd_hint_next++ % HOOKD_SERIES_CACHE];
    h->family = f;
    for (int j = 0; j < f->nlabels; j++)
        h->ptrs[j] = values[j];
    h->series = s;
    h->gen = atomic_load_explicit(&f->gen, memory_order_relaxed);
}

/* The series of `values`: by the thread's hint, else by the full lookup under the family lock. */
static hookd_series_t *hookd_family_find(hookd_family_t *f, const char *const *values)
{
    char store[HOOKD_METRICS_MAX_LABELS][HOOKD_METRICS_MAX_VALUE + 1];
    const char *v[HOOKD_METRICS_MAX_LABELS] = {NULL};
    hookd_series_hint_t *hint = hookd_hint_find(f, values);
    hookd_series_t *s = hookd_hint_series(f, hint, values);
    if (s != NULL)
        return s;
    hookd_bound_values(values, f->nlabels, store, v);
    pthread_mutex_lock(&f->lock);
    if ((s = hookd_family_series(f, v)) != NULL)
        hookd_hint_store(f, hint, values, s);
    pthread_mutex_unlock(&f->lock);
    return s;
}

static void hookd_family_add(hookd_family_t *f, const char *const *values, uint64_t n)
{
    hookd_series_t *s = hookd_family_find(f, values);
    if (s)
        atomic_fetch_add_explicit(&s->count, n, memory_order_relaxed);
}

static void hookd_family_observe(hookd_family_t *f, const char *const *values, double x)
{
    hookd_series_t *s = hookd_family_find(f, values);
    size_t i = 0;
    if (s == NULL)
        return;
    if (isnan(x) || x < 0)
        x = 0; /* a clock step must not poison the sum */
    while (i < HOOKD_DURATION_NBUCKETS && x > hookd_duration_buckets[i])
        i++;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    /* C11 has no atomic add for a double: compare and swap */
    double sum = atomic_load_explicit(&s->sum, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&s->sum, &sum, sum + x, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/*
 * Drop every series. Recorders hold no lock while they count into a series
 * (see the top of this file), so this frees what another thread may be
 * counting into: hookd_metrics_reset() is for start-up and tests, when no
 * other thread records.
 */
static void hookd_family_clear(hookd_family_t *f)
{
    pthread_mutex_lock(&f->lock);
    atomic_fetch_add_explicit(&f->gen, 1, memory_order_relaxed);
    for (size_t i = 0; i < f->count; i++)
        hookd_series_free(f->series[i], f->nlabels);
    free(f->series);
    f->series = NULL;
    f->count = f->cap = 0;
    pthread_mutex_unlock(&f->lock);
}

static void hookd_render_header(hookd_sbuf_t *b, const char *name, const char *help,
                                const char *type)
{
    /* HELP text: only backslash and line feed are escaped. */
    hookd_sbuf_printf(b, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            hookd_sbuf_add(b, "\\\\", 2);
        else if (*p == '\n')
            hookd_sbuf_add(b, "\\n", 2);
        else
            hookd_sbuf_add(b, p, 1);
    }
    hookd_sbuf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* `{a="x",b="y"` without the closing brace, so `le` can be appended. */
static void hookd_render_labels_open(hookd_sbuf_t *b, const hookd_family_t *f,
                                     const hookd_series_t *s)
{
    hookd_sbuf_puts(b, "{");
    for (int j = 0; j < f->nlabels; j++) {
        if (j)
            hookd_sbuf_puts(b, ",");
        hookd_sbuf_printf(b, "%s=\"", f->labels[j]);
        hookd_sbuf_label_value(b, s->values[j]);
        hookd_sbuf_puts(b, "\"");
    }
}

static void hookd_family_render(hookd_family_t *f, hookd_sbuf_t *b)
{
    hookd_render_header(b, f->name, f->help,
                        f->kind == HOOKD_FAM_COUNTER ? "counter" : "histogram");
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->count; i++) {
        hookd_series_t *s = f->series[i];
        if (f->kind == HOOKD_FAM_COUNTER) {
            hookd_sbuf_puts(b, f->name);
            hookd_render_labels_open(b, f, s);
            hookd_sbuf_printf(b, "} %" PRIu64 "\n",
                              (uint64_t)atomic_load_explicit(&s->count, memory_order_relaxed));
            continue;
        }
        uint64_t cumulative = 0;
        for (size_t k = 0; k < HOOKD_DURATION_NBUCKETS; k++) {
            cumulative += atomic_load_explicit(&s->buckets[k], memory_order_relaxed);
            hookd_sbuf_printf(b, "%s_bucket", f->name);
            hookd_render_labels_open(b, f, s);
            hookd_sbuf_puts(b, ",le=\"");
            hookd_sbuf_double(b, hookd_duration_buckets[k]);
            hookd_sbuf_printf(b, "\"} %" PRIu64 "\n", cumulative);
        }
        cumulative +=
            atomic_load_explicit(&s->buckets[HOOKD_DURATION_NBUCKETS], memory_order_relaxed);
        hookd_sbuf_printf(b, "%s_bucket", f->name);
        hookd_render_labels_open(b, f, s);
        hookd_sbuf_printf(b, ",le=\"+Inf\"} %" PRIu64 "\n", cumulative);
        hookd_sbuf_printf(b, "%s_sum", f->name);
        hookd_render_labels_open(b, f, s);
        hookd_sbuf_puts(b, "} ");
        hookd_sbuf_double(b, atomic_load_explicit(&s->sum, memory_order_relaxed));
        hookd_sbuf_puts(b, "\n");
        hookd_sbuf_printf(b, "%s_count", f->name);
        hookd_render_labels_open(b, f, s);
        hookd_sbuf_printf(b, "} %" PRIu64 "\n", cumulative);
    }
    pthread_mutex_unlock(&f->lock);
}

/* ------------------------------------------------------------------ */
/* Unlabelled counters and the consumer's partition gauges.            */

static atomic_uint_fast64_t hookd_publish_errors;
static atomic_uint_fast64_t hookd_stats_received;
/* Offset commits answered by the group coordinator: [0] failed, [1] ok. */
static atomic_uint_fast64_t hookd_offset_commits[2];
/* Exactly-once transactions ended: [0] aborted, [1] committed. */
static atomic_uint_fast64_t hookd_transactions[2];
/* Outcomes parked by the sequencer, as the main loop last counted them. */
static atomic_uint_fast64_t hookd_parked_outcomes;

typedef struct hookd_partition_gauge {
    char *topic;
    int32_t partition;
    int64_t committed; /* < 0: unknown */
    int64_t lag;       /* < 0: unknown */
} hookd_partition_gauge_t;

/*
 * The latest statistics snapshot replaces the previous one as a whole, so a
 * partition revoked in a rebalance disappears from the exposition instead of
 * reporting a stale lag forever.
 */
static pthread_mutex_t hookd_parts_lock = PTHREAD_MUTEX_INITIALIZER;
static hookd_partition_gauge_t *hookd_parts;
static size_t hookd_parts_count;

static void hookd_parts_free(hookd_partition_gauge_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i].topic);
    free(p);
}

static int64_t hookd_json_int(const cJSON *obj, const char *key, int64_t dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : dflt;
}

/*
 * Partitions this consumer does not fetch (not assigned, or revoked) are
 * listed by librdkafka too, from the topic metadata, with fetch_state "none"
 * or "stopped"; they carry no position of ours and are left out.
 */
static int hookd_partition_is_ours(const cJSON *p)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(p, "fetch_state");
    if (!cJSON_IsString(st))
        return 1;
    return strcmp(st->valuestring, "none") != 0 && strcmp(st->valuestring, "stopped") != 0;
}

void hookd_metrics_kafka_stats(const char *json, size_t len)
{
    if (!json)
        return;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return; /* a malformed snapshot keeps the previous one */
    }
    atomic_fetch_add(&hookd_stats_received, 1);

    hookd_partition_gauge_t *parts = NULL;
    size_t n = 0, cap = 0;
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(root, "topics");
    const cJSON *t;
    cJSON_ArrayForEach(t, topics)
    {
        if (!t->string)
            continue;
        const cJSON *partitions = cJSON_GetObjectItemCaseSensitive(t, "partitions");
        const cJSON *p;
        cJSON_ArrayForEach(p, partitions)
        {
            if (!p->string)
                continue;
            char *end = NULL;
            long id = strtol(p->string, &end, 10);
            /* -1 is librdkafka's internal UA (unassigned) partition. */
            if (end == p->string || *end || id < 0 || id > INT32_MAX)
                continue;
            if (!hookd_partition_is_ours(p))
                continue;
            int64_t committed = hookd_json_int(p, "committed_offset", -1);
            int64_t lag = hookd_json_int(p, "consumer_lag", -1);
            if (committed < 0 && lag < 0)
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                hookd_partition_gauge_t *np = realloc(parts, ncap * sizeof(*np));
                if (!np)
                    goto error;
                parts = np;
                cap = ncap;
            }
            parts[n].topic = strdup(t->string);
            if (!parts[n].topic)
                goto error;
            parts[n].partition = (int32_t)id;
            parts[n].committed = committed;
            parts[n].lag = lag;
            n++;
        }
    }
    cJSON_Delete(root);

    pthread_mutex_lock(&hookd_parts_lock);
    hookd_partition_gauge_t *old = hookd_parts;
    size_t old_n = hookd_parts_count;
    hookd_parts = parts; /* now owned by the snapshot */
    hookd_parts_count = n;
    pthread_mutex_unlock(&hookd_parts_lock);
    hookd_parts_free(old, old_n);
    return;

error:
    cJSON_Delete(root);
    hookd_parts_free(parts, n);
}

static void hookd_render_partitions(hookd_sbuf_t *b)
{
    static const struct {
        const char *name;
        const char *help;
        int lag;
    } gauges[] = {
        {"hookd_consumer_committed_offset",
         "Offset committed by the consumer group, per assigned partition (librdkafka "
         "statistics).",
         0},
        {"hookd_consumer_lag",
         "Messages between the committed offset and the partition's high "
         "watermark, per assigned partition (librdkafka statistics).",
         1},
    };
    pthread_mutex_lock(&hookd_parts_lock);
    for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
        hookd_render_header(b, gauges[g].name, gauges[g].help, "gauge");
        for (size_t i = 0; i < hookd_parts_count; i++) {
            const hookd_partition_gauge_t *p = &hookd_parts[i];
            int64_t v = gauges[g].lag ? p->lag : p->committed;
            if (v < 0)
                continue;
            hookd_sbuf_printf(b, "%s{topic=\"", gauges[g].name);
            hookd_sbuf_label_value(b, p->topic);
            hookd_sbuf_printf(b, "\",partition=\"%" PRId32 "\"} %" PRId64 "\n", p->partition, v);
        }
    }
    pthread_mutex_unlock(&hookd_parts_lock);
}

/* ------------------------------------------------------------------ */
/* Status flags, heartbeat.                                             */

static atomic_bool hookd_flags[HOOKD_STATUS_COUNT];
/* Borrowed, static in librdkafka; NULL until the kafka layer sets it. */
static _Atomic(const char *) hookd_librdkafka_version;
static atomic_uint_fast64_t hookd_heartbeat_ms; /* 0: the main loop never turned */

static const struct {
    const char *name;    /* label value of hookd_status */
    bool wanted;         /* the value readiness requires */
    const char *missing; /* why not ready when the flag differs */
} hookd_flag_info[HOOKD_STATUS_COUNT] = {
    [HOOKD_STATUS_HOOKS_LOADED] = {"hooks_loaded", true, "hooks not loaded"},
    [HOOKD_STATUS_GROUP_JOINED] = {"group_joined", true, "consumer group not joined"},
    [HOOKD_STATUS_BROKER_UP] = {"broker_up", true, "broker unreachable"},
    [HOOKD_STATUS_PUBLISH_BLOCKED] = {"publish_blocked", false,
                                      "publishing blocked: partitions paused"},
};

void hookd_status_set(hookd_status_flag_t flag, bool value)
{
    if ((unsigned)flag < HOOKD_STATUS_COUNT)
        atomic_store(&hookd_flags[flag], value);
}

bool hookd_status_get(hookd_status_flag_t flag)
{
    return (unsigned)flag < HOOKD_STATUS_COUNT ? atomic_load(&hookd_flags[flag]) : false;
}

void hookd_status_heartbeat(void)
{
    uint64_t now = hookd_now_ms();
    atomic_store(&hookd_heartbeat_ms, now ? now : 1);
}

bool hookd_status_ready(char *why, size_t why_size)
{
    bool ready = true;
    size_t used = 0;
    if (why && why_size)
        why[0] = '\0';
    for (int i = 0; i < HOOKD_STATUS_COUNT; i++) {
        if (atomic_load(&hookd_flags[i]) == hookd_flag_info[i].wanted)
            continue;
        if (why && why_size > used) {
            int n = snprintf(why + used, why_size - used, "%s%s", ready ? "" : "; ",
                             hookd_flag_info[i].missing);
            if (n > 0)
                used = (size_t)n >= why_size - used ? why_size - 1 : used + (size_t)n;
        }
        ready = false;
    }
    return ready;
}

bool hookd_status_live(uint64_t max_age_ms)
{
    uint64_t last = atomic_load(&hookd_heartbeat_ms);
    if (last == 0)
        return false;
    uint64_t now = hookd_now_ms();
    return now < last || now - last <= max_age_ms;
}

/* ------------------------------------------------------------------ */
/* Public recording functions.                                          */

void hookd_metrics_event_consumed(const char *type)
{
    const char *v[] = {type};
    hookd_family_add(&hookd_fam_consumed, v, 1);
}

void hookd_metrics_invocation(const char *phase, const char *handler, const char *outcome,
                              double seconds)
{
    const char *v[] = {phase, handler, outcome};
    hookd_family_add(&hookd_fam_invocations, v, 1);
    if (outcome && strcmp(outcome, "retry") == 0)
        hookd_family_add(&hookd_fam_retries, v, 1);
    hookd_family_observe(&hookd_fam_duration, v, seconds);
}

void hookd_metrics_dead_letter(const char *error_class)
{
    const char *v[] = {error_class};
    hookd_family_add(&hookd_fam_dead_letters, v, 1);
}

void hookd_metrics_retry_published(const char *tier)
{
    const char *v[] = {tier};
    hookd_family_add(&hookd_fam_retry_published, v, 1);
}

void hookd_metrics_retry_consumed(const char *tier)
{
    const char *v[] = {tier};
    hookd_family_add(&hookd_fam_retry_consumed, v, 1);
}

void hookd_metrics_result_published(const char *verdict)
{
    const char *v[] = {verdict};
    hookd_family_add(&hookd_fam_results, v, 1);
}

void hookd_metrics_reply(const char *outcome)
{
    const char *v[] = {outcome};
    hookd_family_add(&hookd_fam_replies, v, 1);
}

void hookd_metrics_publish_fallback(const char *record, const char *form)
{
    const char *v[] = {strcmp(record, "dead letter") == 0 ? "dead_letter" : record, form};
    hookd_family_add(&hookd_fam_fallbacks, v, 1);
}

void hookd_metrics_publish_error(void)
{
    atomic_fetch_add(&hookd_publish_errors, 1);
}

void hookd_metrics_offset_commit(bool ok)
{
    atomic_fetch_add(&hookd_offset_commits[ok ? 1 : 0], 1);
}

void hookd_metrics_transaction(bool committed)
{
    atomic_fetch_add(&hookd_transactions[committed ? 1 : 0], 1);
}

void hookd_metrics_outcomes_parked(size_t n)
{
    atomic_store(&hookd_parked_outcomes, (uint_fast64_t)n);
}

void hookd_metrics_reset(void)
{
    for (size_t i = 0; i < HOOKD_NFAMILIES; i++)
        hookd_family_clear(hookd_families[i]);
    atomic_store(&hookd_publish_errors, 0);
    atomic_store(&hookd_stats_received, 0);
    atomic_store(&hookd_offset_commits[0], 0);
    atomic_store(&hookd_offset_commits[1], 0);
    atomic_store(&hookd_transactions[0], 0);
    atomic_store(&hookd_transactions[1], 0);
    atomic_store(&hookd_parked_outcomes, 0);
    pthread_mutex_lock(&hookd_parts_lock);
    hookd_parts_free(hookd_parts, hookd_parts_count);
    hookd_parts = NULL;
    hookd_parts_count = 0;
    pthread_mutex_unlock(&hookd_parts_lock);
    for (int i = 0; i < HOOKD_STATUS_COUNT; i++)
        atomic_store(&hookd_flags[i], false);
    atomic_store(&hookd_heartbeat_ms, 0);
}

void hookd_metrics_set_librdkafka_version(const char *version)
{
    atomic_store(&hookd_librdkafka_version, version);
}

char *hookd_metrics_render(size_t *len)
{
    hookd_sbuf_t b = {0};
    hookd_sbuf_reserve(&b, 8192);

    hookd_render_header(&b, "hookd_build_info",
                        "Build information: the version label carries the worker's version, "
                        "the librdkafka label the version of the librdkafka it runs with.",
                        "gauge");
    hookd_sbuf_puts(&b, "hookd_build_info{version=\"");
    hookd_sbuf_label_value(&b, HOOKD_VERSION);
    const char *rdkafka = atomic_load(&hookd_librdkafka_version);
    if (rdkafka) {
        hookd_sbuf_puts(&b, "\",librdkafka=\"");
        hookd_sbuf_label_value(&b, rdkafka);
    }
    hookd_sbuf_puts(&b, "\"} 1\n");

    for (size_t i = 0; i < HOOKD_NFAMILIES; i++)
        hookd_family_render(hookd_families[i], &b);

    hookd_render_header(&b, "hookd_publish_errors_total",
                        "Deliveries of results or dead letters that failed and will be retried.",
                        "counter");
    hookd_sbuf_printf(&b, "hookd_publish_errors_total %" PRIuFAST64 "\n",
                      (uint_fast64_t)atomic_load(&hookd_publish_errors));

    hookd_render_header(&b, "hookd_kafka_stats_total",
                        "librdkafka statistics snapshots received from the consumer.", "counter");
    hookd_sbuf_printf(&b, "hookd_kafka_stats_total %" PRIuFAST64 "\n",
                      (uint_fast64_t)atomic_load(&hookd_stats_received));

    hookd_render_header(&b, "hookd_consumer_commits_total",
                        "Offset commits of the consumer answered by the group coordinator.",
                        "counter");
    hookd_sbuf_printf(&b, "hookd_consumer_commits_total{result=\"ok\"} %" PRIuFAST64 "\n",
                      (uint_fast64_t)atomic_load(&hookd_offset_commits[1]));
    hookd_sbuf_printf(&b, "hookd_consumer_commits_total{result=\"failed\"} %" PRIuFAST64 "\n",
                      (uint_fast64_t)atomic_load(&hookd_offset_commits[0]));

    hookd_render_header(&b, "hookd_transactions_total",
                        "Transactions of results, dead letters and offsets ended "
                        "([kafka] delivery = exactly_once).",
                        "counter");
    hookd_sbuf_printf(&b, "hookd_transactions_total{result=\"committed\"} %" PRIuFAST64 "\n",
                      (uint_fast64_t)atomic_load(&hookd_transactions[1]));
    hookd_sbuf_printf(&b, "hookd_transactions_total{result=\"aborted\"} %" PRIuFAST64 "\n",
                      (uint_fast64_t)atomic_load(&hookd_transactions[0]));

    hookd_render_header(&b, "hookd_outcomes_parked",
                        "Outcomes ready but held back until an earlier event of their partition "
                        "is published (delivery = exactly_once with ordering = key).",
                        "gauge");
    hookd_sbuf_printf(&b, "hookd_outcomes_parked %" PRIuFAST64 "\n",
                      (uint_fast64_t)atomic_load(&hookd_parked_outcomes));

    hookd_render_partitions(&b);

    char why[256];
    bool ready = hookd_status_ready(why, sizeof(why));
    hookd_render_header(&b, "hookd_ready",
                        "1 when hooks are loaded, the group joined, the broker up and nothing "
                        "blocked.",
                        "gauge");
    hookd_sbuf_printf(&b, "hookd_ready %d\n", ready ? 1 : 0);

    hookd_render_header(&b, "hookd_status", "Readiness inputs, one series per flag (1 = set).",
                        "gauge");
    for (int i = 0; i < HOOKD_STATUS_COUNT; i++)
        hookd_sbuf_printf(&b, "hookd_status{flag=\"%s\"} %d\n", hookd_flag_info[i].name,
                          atomic_load(&hookd_flags[i]) ? 1 : 0);

    uint64_t last = atomic_load(&hookd_heartbeat_ms);
    hookd_render_header(&b, "hookd_heartbeat_age_seconds",
                        "Seconds since the main loop last turned (-1: never).", "gauge");
    if (last == 0) {
        hookd_sbuf_puts(&b, "hookd_heartbeat_age_seconds -1\n");
    } else {
        uint64_t now = hookd_now_ms();
        hookd_sbuf_puts(&b, "hookd_heartbeat_age_seconds ");
        hookd_sbuf_double(&b, now > last ? (double)(now - last) / 1000.0 : 0.0);
        hookd_sbuf_puts(&b, "\n");
    }

    if (b.failed) {
        free(b.data);
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.data; /* now owned by the caller */
}
