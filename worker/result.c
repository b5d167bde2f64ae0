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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/rand.h>

#define RESULT_DEFAULT_MAX_ERROR_BYTES 1024
#define RESULT_TYPE_COMPLETED "acme.hookd.result.completed"
#define RESULT_TYPE_FAILED "acme.hookd.result.failed"

/* ---- the header list ----------------------------------------------------- */

struct hookd_headers {
    hookd_header_t *items;
    size_t count;
    size_t cap;
};

hookd_headers_t *hookd_headers_new(void)
{
    return calloc(1, sizeof(hookd_headers_t));
}

static void headers_truncate(hookd_headers_t *h, size_t count)
{
    while (h->count > count) {
        hookd_header_t *it = &h->items[--h->count];
        free((char *)it->name);
        free((void *)it->value);
    }
}

void hookd_headers_destroy(hookd_headers_t *h)
{
    if (h == NULL)
        return;
    headers_truncate(h, 0);
    free(h->items);
    free(h);
}

int hookd_headers_add(hookd_headers_t *h, const char *name, const void *value, size_t len)
{
    char *n, *v = NULL;

    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        hookd_header_t *items = realloc(h->items, cap * sizeof(*items));
        if (items == NULL)
            return -1;
        h->items = items;
        h->cap = cap;
    }
    n = strdup(name);
    if (n == NULL)
        return -1;
    if (value != NULL) {
        /* NUL-terminated for convenience; len is what counts */
        v = malloc(len + 1);
        if (v == NULL) {
            free(n);
            return -1;
        }
        memcpy(v, value, len);
        v[len] = '\0';
    }
    h->items[h->count].name = n;
    h->items[h->count].value = v;
    h->items[h->count].len = value != NULL ? len : 0;
    h->count++;
    return 0;
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

/* "2026-11-26T19:00:00.123Z" */
static void now_rfc3339(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* A random (version 4) UUID: unique ce_id without coordination between workers. */
static int uuid_v4(char out[37])
{
    unsigned char b[16];

    if (RAND_bytes(b, sizeof(b)) != 1)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
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
        snprintf(buf, sizeof(buf), "handler '%s' %s in phase %s after %" PRIu32
                 " attempt%s, without a message",
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

static cJSON *add_str_or_null(cJSON *obj, const char *name, const char *s)
{
    return s != NULL ? cJSON_AddStringToObject(obj, name, s) : cJSON_AddNullToObject(obj, name);
}

static cJSON *run_json(const hookd_run_t *r, size_t cap, char *scratch)
{
    cJSON *o = cJSON_CreateObject();
    bool failed = r->outcome != HOOKD_OK;

    if (o == NULL)
        return NULL;
    /* an ok run reports no error, even if the handler set a message and succeeded */
    if (failed && r->error[0] != '\0')
        clean_text(scratch, cap, r->error);
    if (!cJSON_AddStringToObject(o, "phase", hookd_phase_name(r->phase)) ||
        !cJSON_AddStringToObject(o, "handler", r->handler_name ? r->handler_name : "") ||
        !cJSON_AddStringToObject(o, "outcome", failed ? "fail" : "ok") ||
        !cJSON_AddBoolToObject(o, "failure_allowed", failed && r->failure_allowed) ||
        !cJSON_AddNumberToObject(o, "attempts", r->attempts) ||
        !cJSON_AddNumberToObject(o, "duration_ms", (double)r->duration_us / 1000.0) ||
        !add_str_or_null(o, "error_class",
                         failed && r->error_class != HOOKD_ERRCLASS_NONE
                             ? hookd_error_class_name(r->error_class)
                             : failed ? hookd_error_class_name(HOOKD_ERRCLASS_HOOK_FAILED)
                                      : NULL) ||
        !add_str_or_null(o, "error", failed && r->error[0] != '\0' ? scratch : NULL)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

char *hookd_result_encode(const hookd_result_info_t *info, const hookd_decision_t *d,
                          hookd_headers_t *headers, size_t *len)
{
    const hookd_event_t *ev = info->event;
    const hookd_origin_t *origin = info->origin;
    size_t cap = info_cap(info), mark = hookd_headers_count(headers);
    bool failed = d->verdict != HOOKD_VERDICT_COMPLETED;
    char now[40], ce_id[37], *scratch = NULL, *source = NULL, *out = NULL;
    cJSON *root = NULL, *runs, *input;

    scratch = malloc(cap + 1);
    root = cJSON_CreateObject();
    if (scratch == NULL || root == NULL || uuid_v4(ce_id) != 0)
        goto error;
    now_rfc3339(now, sizeof(now));

    if (!add_str_or_null(root, "event_id", ev ? ev->id : NULL) ||
        !add_str_or_null(root, "event_type",
                         ev && (unsigned)ev->type < HOOKD_EVENT_TYPE_COUNT
                             ? hookd_event_type_name(ev->type)
                             : NULL) ||
        !cJSON_AddStringToObject(root, "verdict", hookd_verdict_name(d->verdict)) ||
        !cJSON_AddBoolToObject(root, "dead_lettered", d->dead_letter))
        goto error;
    if (failed) {
        failure_message(info, d, scratch, cap);
        if (!cJSON_AddStringToObject(root, "error_class",
                                     d->error_class != HOOKD_ERRCLASS_NONE
                                         ? hookd_error_class_name(d->error_class)
                                         : hookd_error_class_name(HOOKD_ERRCLASS_HOOK_FAILED)) ||
            !cJSON_AddStringToObject(root, "error", scratch))
            goto error;
    } else if (!cJSON_AddNullToObject(root, "error_class") ||
               !cJSON_AddNullToObject(root, "error")) {
        goto error;
    }
    if (ev != NULL && ev->certificate_name != NULL &&
        !cJSON_AddStringToObject(root, "certificate_name", ev->certificate_name))
        goto error;
    if (ev != NULL && ev->order_name != NULL &&
        !cJSON_AddStringToObject(root, "order_name", ev->order_name))
        goto error;

    runs = cJSON_AddArrayToObject(root, "runs");
    if (runs == NULL)
        goto error;
    for (size_t i = 0; i < d->run_count && i < HOOKD_RUNS_MAX; i++) {
        cJSON *r = run_json(&d->runs[i], cap, scratch);
        if (r == NULL || !cJSON_AddItemToArray(runs, r)) {
            cJSON_Delete(r);
            goto error;
        }
    }

    input = cJSON_AddObjectToObject(root, "input");
    if (input == NULL ||
        !cJSON_AddStringToObject(input, "topic", origin && origin->topic ? origin->topic : "") ||
        !cJSON_AddNumberToObject(input, "partition", origin ? origin->partition : -1) ||
        !cJSON_AddNumberToObject(input, "offset", origin ? (double)origin->offset : -1) ||
        !cJSON_AddStringToObject(root, "worker_id", info->worker_id ? info->worker_id : "") ||
        !cJSON_AddStringToObject(root, "time", now))
        goto error;

    out = cJSON_PrintUnformatted(root);
    if (out == NULL)
        goto error;

    /* CloudEvents binary mode (Kafka protocol binding): the envelope as headers. */
    if (info->source == NULL) {
        size_t n = sizeof("urn:acme-hookd:") + (info->worker_id ? strlen(info->worker_id) : 0);
        source = malloc(n);
        if (source == NULL)
            goto error;
        snprintf(source, n, "urn:acme-hookd:%s", info->worker_id ? info->worker_id : "");
    }
    if (hookd_headers_add_str(headers, "ce_specversion", "1.0") ||
        hookd_headers_add_str(headers, "ce_id", ce_id) ||
        hookd_headers_add_str(headers, "ce_source", info->source ? info->source : source) ||
        hookd_headers_add_str(headers, "ce_type",
                              failed ? RESULT_TYPE_FAILED : RESULT_TYPE_COMPLETED) ||
        (ev && ev->order_name && hookd_headers_add_str(headers, "ce_subject", ev->order_name)) ||
        hookd_headers_add_str(headers, "ce_time", now) ||
        hookd_headers_add_str(headers, "content-type", "application/json") ||
        (ev && ev->id && hookd_headers_add_str(headers, "ce_inputeventid", ev->id)))
        goto error;

    *len = strlen(out);
    cJSON_Delete(root);
    free(scratch);
    free(source);
    return out;

error:
    /* nothing half-done is left behind: the caller's headers are as they were */
    headers_truncate(headers, mark);
    cJSON_free(out);
    cJSON_Delete(root);
    free(scratch);
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
    const char *cls = hookd_error_class_name(d->error_class != HOOKD_ERRCLASS_NONE
                                                 ? d->error_class
                                                 : HOOKD_ERRCLASS_HOOK_FAILED);
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
