/* SPDX-License-Identifier: MIT */
/*
 * Metrics registry: values, label escaping, histogram layout, librdkafka
 * statistics parsing, status flags, and concurrent updates. The exposition
 * is also checked line by line against the grammar of text format 0.0.4;
 * the ops suite additionally parses a live scrape with prometheus_client.
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *render(void)
{
    size_t len = 0;
    char *s = hookd_metrics_render(&len);
    cr_assert_not_null(s);
    cr_assert_eq(strlen(s), len, "render length mismatch");
    return s;
}

/* The value of the sample whose full text before the value is `series`, or -1 if absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *p = text;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = eol ? eol + 1 : NULL;
    }
    return -1;
}

static int count_lines_starting(const char *text, const char *prefix)
{
    int count = 0;
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, n) == 0)
            count++;
        const char *eol = strchr(p, '\n');
        p = eol ? eol + 1 : NULL;
    }
    return count;
}

static int valid_name(const char **pp)
{
    const char *p = *pp;
    if (!(isalpha((unsigned char)*p) || *p == '_' || *p == ':'))
        return 0;
    while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
        p++;
    *pp = p;
    return 1;
}

/* One line of format 0.0.4: a HELP/TYPE comment or `name{l="v",...} value`. */
static int valid_line(const char *line)
{
    const char *p = line;
    if (strncmp(p, "# HELP ", 7) == 0) {
        p += 7;
        return valid_name(&p) && *p == ' ';
    }
    if (strncmp(p, "# TYPE ", 7) == 0) {
        p += 7;
        if (!valid_name(&p) || *p++ != ' ')
            return 0;
        return !strcmp(p, "counter") || !strcmp(p, "gauge") || !strcmp(p, "histogram") ||
               !strcmp(p, "summary") || !strcmp(p, "untyped");
    }
    if (!valid_name(&p))
        return 0;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            if (!valid_name(&p) || *p++ != '=' || *p++ != '"')
                return 0;
            while (*p != '"') {
                if (*p == '\0' || *p == '\n')
                    return 0;
                if (*p == '\\') {
                    p++;
                    if (*p != '\\' && *p != '"' && *p != 'n')
                        return 0;
                }
                p++;
            }
            p++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                return 0;
        }
        p++;
    }
    if (*p++ != ' ')
        return 0;
    if (!strcmp(p, "+Inf") || !strcmp(p, "-Inf") || !strcmp(p, "NaN"))
        return 1;
    char *end = NULL;
    strtod(p, &end);
    return end != p && *end == '\0';
}

static void assert_valid_exposition(const char *text)
{
    cr_assert(text[0] != '\0');
    cr_assert_eq(text[strlen(text) - 1], '\n', "exposition must end with a line feed");
    char *copy = strdup(text);
    char *save = NULL;
    int lines = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cr_assert(valid_line(line), "invalid exposition line: %s", line);
        lines++;
    }
    cr_assert_gt(lines, 0);
    free(copy);
}

static void setup(void)
{
    hookd_metrics_reset();
}

TestSuite(metrics, .init = setup);

Test(metrics, empty_registry_has_build_info_and_valid_format)
{
    char *s = render();
    assert_valid_exposition(s);
    cr_assert_eq(sample(s, "hookd_build_info{version=\"" HOOKD_VERSION "\"}"), 1);
    cr_assert_not_null(strstr(s, "# TYPE hookd_events_consumed_total counter\n"));
    cr_assert_not_null(strstr(s, "# TYPE hookd_handler_duration_seconds histogram\n"));
    cr_assert_eq(sample(s, "hookd_publish_errors_total"), 0);
    cr_assert_eq(sample(s, "hookd_consumer_commits_total{result=\"ok\"}"), 0);
    cr_assert_eq(sample(s, "hookd_ready"), 0);
    free(s);
}

Test(metrics, counters_by_label)
{
    hookd_metrics_event_consumed("acme.enrollment.requested");
    hookd_metrics_event_consumed("acme.enrollment.requested");
    hookd_metrics_event_consumed("invalid");
    hookd_metrics_dead_letter("invalid_event");
    hookd_metrics_result_published("completed");
    hookd_metrics_result_published("failed");
    hookd_metrics_result_published("completed");
    hookd_metrics_publish_error();
    hookd_metrics_publish_fallback("dead letter", "value_truncated");
    hookd_metrics_publish_fallback("result", "result_compacted");
    hookd_metrics_publish_fallback("dead letter", "value_truncated");
    hookd_metrics_offset_commit(true);
    hookd_metrics_offset_commit(true);
    hookd_metrics_offset_commit(false);
    hookd_metrics_reply("sent");
    hookd_metrics_reply("refused");
    hookd_metrics_reply("sent");
    char *s = render();
    assert_valid_exposition(s);
    cr_assert_eq(
        sample(s, "hookd_publish_fallbacks_total{record=\"dead_letter\",form=\"value_truncated\"}"),
        2);
    cr_assert_eq(
        sample(s, "hookd_publish_fallbacks_total{record=\"result\",form=\"result_compacted\"}"), 1);
    cr_assert_eq(sample(s, "hookd_events_consumed_total{type=\"acme.enrollment.requested\"}"), 2);
    cr_assert_eq(sample(s, "hookd_events_consumed_total{type=\"invalid\"}"), 1);
    cr_assert_eq(sample(s, "hookd_dead_letters_total{error_class=\"invalid_event\"}"), 1);
    cr_assert_eq(sample(s, "hookd_results_published_total{verdict=\"completed\"}"), 2);
    cr_assert_eq(sample(s, "hookd_results_published_total{verdict=\"failed\"}"), 1);
    cr_assert_eq(sample(s, "hookd_publish_errors_total"), 1);
    cr_assert_eq(sample(s, "hookd_consumer_commits_total{result=\"ok\"}"), 2);
    cr_assert_eq(sample(s, "hookd_consumer_commits_total{result=\"failed\"}"), 1);
    cr_assert_eq(sample(s, "hookd_replies_total{outcome=\"sent\"}"), 2);
    cr_assert_eq(sample(s, "hookd_replies_total{outcome=\"refused\"}"), 1);
    cr_assert_eq(sample(s, "hookd_replies_total{outcome=\"undeliverable\"}"), -1);
    free(s);
}

Test(metrics, outcomes_parked_is_a_gauge)
{
    char *s = render();
    cr_assert_not_null(strstr(s, "# TYPE hookd_outcomes_parked gauge\n"));
    cr_assert_eq(sample(s, "hookd_outcomes_parked"), 0);
    free(s);
    hookd_metrics_outcomes_parked(7);
    hookd_metrics_outcomes_parked(3); /* the latest count, not a sum */
    s = render();
    assert_valid_exposition(s);
    cr_assert_eq(sample(s, "hookd_outcomes_parked"), 3);
    free(s);
}

Test(metrics, invocations_retries_and_histogram)
{
    hookd_metrics_invocation("pre", "skeleton", "retry", 0.003);
    hookd_metrics_invocation("pre", "skeleton", "ok", 0.2);
    hookd_metrics_invocation("pre", "skeleton", "fail", 100.0);
    hookd_metrics_invocation("post", "cn_dump", "ok", 0.0);
    char *s = render();
    assert_valid_exposition(s);
    cr_assert_eq(sample(s, "hookd_handler_invocations_total{phase=\"pre\",handler=\"skeleton\","
                           "outcome=\"retry\"}"),
                 1);
    cr_assert_eq(sample(s, "hookd_handler_invocations_total{phase=\"pre\",handler=\"skeleton\","
                           "outcome=\"ok\"}"),
                 1);
    cr_assert_eq(sample(s, "hookd_handler_retries_total{phase=\"pre\",handler=\"skeleton\"}"), 1);
    cr_assert_eq(sample(s, "hookd_handler_retries_total{phase=\"post\",handler=\"cn_dump\"}"), -1,
                 "no retry series without a retry");

    const char *base = "hookd_handler_duration_seconds_bucket{phase=\"pre\",handler=\"skeleton\",";
    char key[256];
    snprintf(key, sizeof(key), "%sle=\"0.001\"}", base);
    cr_assert_eq(sample(s, key), 0);
    snprintf(key, sizeof(key), "%sle=\"0.005\"}", base);
    cr_assert_eq(sample(s, key), 1, "0.003 s falls in le=0.005");
    snprintf(key, sizeof(key), "%sle=\"0.25\"}", base);
    cr_assert_eq(sample(s, key), 2);
    snprintf(key, sizeof(key), "%sle=\"60\"}", base);
    cr_assert_eq(sample(s, key), 2, "100 s is above the largest bound");
    snprintf(key, sizeof(key), "%sle=\"+Inf\"}", base);
    cr_assert_eq(sample(s, key), 3);
    double sum =
        sample(s, "hookd_handler_duration_seconds_sum{phase=\"pre\",handler=\"skeleton\"}");
    cr_assert_float_eq(sum, 100.203, 1e-9);
    cr_assert_eq(sample(s,
                        "hookd_handler_duration_seconds_count{phase=\"pre\",handler=\"skeleton\"}"),
                 3);
    cr_assert_eq(count_lines_starting(s, base), 16, "15 bounds plus +Inf");

    /* Buckets are cumulative: never decreasing. */
    double prev = 0;
    for (const char *p = strstr(s, base); p; p = strstr(p + 1, base)) {
        const char *sp = strchr(p, ' ');
        double v = strtod(sp + 1, NULL);
        cr_assert_geq(v, prev);
        prev = v;
    }
    free(s);
}

Test(metrics, bucket_bounds_are_inclusive)
{
    /* le means "less than or equal": an observation on a bound counts in it. */
    hookd_metrics_invocation("post", "h", "ok", 0.005);
    hookd_metrics_invocation("post", "h", "ok", 1.0);
    char *s = render();
    const char *base = "hookd_handler_duration_seconds_bucket{phase=\"post\",handler=\"h\",";
    char key[256];
    snprintf(key, sizeof(key), "%sle=\"0.0025\"}", base);
    cr_assert_eq(sample(s, key), 0);
    snprintf(key, sizeof(key), "%sle=\"0.005\"}", base);
    cr_assert_eq(sample(s, key), 1);
    snprintf(key, sizeof(key), "%sle=\"0.5\"}", base);
    cr_assert_eq(sample(s, key), 1);
    snprintf(key, sizeof(key), "%sle=\"1\"}", base);
    cr_assert_eq(sample(s, key), 2);
    free(s);
}

Test(metrics, label_values_are_escaped)
{
    hookd_metrics_invocation("pre", "we\"ird\\name\nx", "ok", 0.01);
    char *s = render();
    assert_valid_exposition(s);
    cr_assert_eq(sample(s, "hookd_handler_invocations_total{phase=\"pre\","
                           "handler=\"we\\\"ird\\\\name\\nx\",outcome=\"ok\"}"),
                 1);
    free(s);
}

Test(metrics, null_and_long_label_values_are_bounded)
{
    char longv[1000];
    memset(longv, 'a', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    hookd_metrics_event_consumed(longv);
    hookd_metrics_event_consumed(NULL);
    char *s = render();
    assert_valid_exposition(s);
    cr_assert_eq(sample(s, "hookd_events_consumed_total{type=\"\"}"), 1);
    cr_assert_null(strstr(s, longv), "an overlong value is cut");
    free(s);
}

Test(metrics, cardinality_is_bounded)
{
    char type[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(type, sizeof(type), "t%d", i);
        hookd_metrics_event_consumed(type);
    }
    hookd_metrics_event_consumed("t0");
    char *s = render();
    assert_valid_exposition(s);
    int series = count_lines_starting(s, "hookd_events_consumed_total{");
    cr_assert_leq(series, 257);
    cr_assert_gt(series, 100);
    /* Nothing is lost: the series add up to every observation. */
    double total = 0;
    for (const char *p = strstr(s, "\nhookd_events_consumed_total{"); p;
         p = strstr(p + 1, "\nhookd_events_consumed_total{"))
        total += strtod(strchr(p + 1, ' ') + 1, NULL);
    cr_assert_eq(total, 1001);
    cr_assert_eq(sample(s, "hookd_events_consumed_total{type=\"t0\"}"), 2);
    cr_assert_gt(sample(s, "hookd_events_consumed_total{type=\"_other\"}"), 0);
    free(s);
}

static const char stats1[] =
    "{\"name\":\"rdkafka#consumer-1\",\"type\":\"consumer\",\"topics\":{"
    "\"acme.enrollment\":{\"topic\":\"acme.enrollment\",\"partitions\":{"
    "\"0\":{\"partition\":0,\"fetch_state\":\"active\",\"committed_offset\":42,"
    "\"consumer_lag\":8},"
    "\"1\":{\"partition\":1,\"fetch_state\":\"active\",\"committed_offset\":-1001,"
    "\"consumer_lag\":-1},"
    "\"2\":{\"partition\":2,\"fetch_state\":\"none\",\"committed_offset\":5,"
    "\"consumer_lag\":3},"
    "\"3\":{\"partition\":3,\"committed_offset\":7,\"consumer_lag\":0},"
    "\"-1\":{\"partition\":-1,\"fetch_state\":\"active\",\"committed_offset\":9,"
    "\"consumer_lag\":1}}}}}";

Test(metrics, kafka_stats_partitions)
{
    hookd_metrics_kafka_stats(stats1, strlen(stats1));
    char *s = render();
    assert_valid_exposition(s);
    cr_assert_eq(
        sample(s, "hookd_consumer_committed_offset{topic=\"acme.enrollment\",partition=\"0\"}"),
        42);
    cr_assert_eq(sample(s, "hookd_consumer_lag{topic=\"acme.enrollment\",partition=\"0\"}"), 8);
    cr_assert_eq(
        sample(s, "hookd_consumer_committed_offset{topic=\"acme.enrollment\",partition=\"3\"}"), 7);
    cr_assert_eq(sample(s, "hookd_consumer_lag{topic=\"acme.enrollment\",partition=\"3\"}"), 0);
    /* Unknown values, unfetched partitions and the internal -1 partition are left out. */
    cr_assert_null(strstr(s, "partition=\"1\""));
    cr_assert_null(strstr(s, "partition=\"2\""));
    cr_assert_null(strstr(s, "partition=\"-1\""));
    free(s);
}

Test(metrics, kafka_stats_snapshot_replaces_and_bad_json_is_ignored)
{
    hookd_metrics_kafka_stats(stats1, strlen(stats1));
    static const char stats2[] =
        "{\"topics\":{\"acme.enrollment\":{\"partitions\":{"
        "\"5\":{\"fetch_state\":\"active\",\"committed_offset\":100,\"consumer_lag\":2}}}}}";
    hookd_metrics_kafka_stats(stats2, strlen(stats2));
    hookd_metrics_kafka_stats("{not json", 9);
    hookd_metrics_kafka_stats("[1,2]", 5);
    char *s = render();
    assert_valid_exposition(s);
    cr_assert_eq(sample(s, "hookd_consumer_lag{topic=\"acme.enrollment\",partition=\"0\"}"), -1,
                 "a partition absent from the latest snapshot is gone");
    cr_assert_eq(
        sample(s, "hookd_consumer_committed_offset{topic=\"acme.enrollment\",partition=\"5\"}"),
        100);
    free(s);
}

Test(metrics, readiness_reasons)
{
    char why[256];
    cr_assert_not(hookd_status_ready(why, sizeof(why)));
    cr_assert_not_null(strstr(why, "hooks not loaded"));
    cr_assert_not_null(strstr(why, "consumer group not joined"));
    cr_assert_not_null(strstr(why, "broker unreachable"));

    hookd_status_set(HOOKD_STATUS_HOOKS_LOADED, true);
    hookd_status_set(HOOKD_STATUS_GROUP_JOINED, true);
    hookd_status_set(HOOKD_STATUS_BROKER_UP, true);
    cr_assert(hookd_status_ready(why, sizeof(why)));
    cr_assert_str_empty(why);

    hookd_status_set(HOOKD_STATUS_PUBLISH_BLOCKED, true);
    cr_assert(hookd_status_get(HOOKD_STATUS_PUBLISH_BLOCKED));
    cr_assert_not(hookd_status_ready(why, sizeof(why)));
    cr_assert_not_null(strstr(why, "publishing blocked"));

    /* A tiny buffer is truncated, never overrun. */
    char small[8];
    memset(small, 'x', sizeof(small));
    cr_assert_not(hookd_status_ready(small, sizeof(small)));
    cr_assert_lt(strlen(small), sizeof(small));

    char *s = render();
    cr_assert_eq(sample(s, "hookd_ready"), 0);
    cr_assert_eq(sample(s, "hookd_status{flag=\"publish_blocked\"}"), 1);
    cr_assert_eq(sample(s, "hookd_status{flag=\"hooks_loaded\"}"), 1);
    free(s);
    hookd_status_set(HOOKD_STATUS_PUBLISH_BLOCKED, false);
    s = render();
    cr_assert_eq(sample(s, "hookd_ready"), 1);
    free(s);
}

Test(metrics, liveness_follows_heartbeat)
{
    cr_assert_not(hookd_status_live(1000000), "never turned: not live");
    hookd_status_heartbeat();
    cr_assert(hookd_status_live(60000));
    char *s = render();
    double age = sample(s, "hookd_heartbeat_age_seconds");
    cr_assert(age >= 0 && age < 60, "age %f", age);
    free(s);
}

#define THREADS 4
#define PER_THREAD 50000

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        hookd_metrics_event_consumed(i % 2 ? "a" : "b");
        hookd_metrics_invocation("pre", "h", i % 3 ? "ok" : "retry", 0.001);
        hookd_metrics_publish_error();
        if (i % 1000 == 0) {
            size_t len;
            free(hookd_metrics_render(&len));
        }
    }
    return NULL;
}

Test(metrics, concurrent_updates_are_not_lost)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *s = render();
    assert_valid_exposition(s);
    cr_assert_eq(sample(s, "hookd_events_consumed_total{type=\"a\"}"), THREADS * PER_THREAD / 2);
    cr_assert_eq(sample(s, "hookd_events_consumed_total{type=\"b\"}"), THREADS * PER_THREAD / 2);
    cr_assert_eq(sample(s, "hookd_publish_errors_total"), THREADS * PER_THREAD);
    int retries_per_thread = (PER_THREAD + 2) / 3;
    cr_assert_eq(sample(s, "hookd_handler_retries_total{phase=\"pre\",handler=\"h\"}"),
                 THREADS * retries_per_thread);
    cr_assert_eq(sample(s, "hookd_handler_duration_seconds_count{phase=\"pre\",handler=\"h\"}"),
                 THREADS * PER_THREAD);
    /* the sum is added without a lock too: no observation lost there either */
    cr_assert_float_eq(sample(s, "hookd_handler_duration_seconds_sum{phase=\"pre\",handler=\"h\"}"),
                       THREADS * PER_THREAD * 0.001, 1e-6);
    free(s);
}

static atomic_bool recording;
static atomic_uint recorders_started; /* recorders that have recorded once */

static void *record_until_stopped(void *arg)
{
    (void)arg;
    for (unsigned i = 0; atomic_load(&recording); i++) {
        hookd_metrics_event_consumed("a");
        /* every third one above the largest bound: the last, uncumulated bucket */
        hookd_metrics_invocation("pre", "h", "ok", i % 3 ? 0.001 : 100.0);
        if (i == 0)
            atomic_fetch_add(&recorders_started, 1);
    }
    return NULL;
}

/*
 * Recorders take no lock, so a render reads counts while they move. Each
 * render must still be a valid exposition whose histogram +Inf bucket and
 * _count agree (the count is the buckets' sum, not a third counter), and
 * no count may go down from one render to the next.
 */
Test(metrics, renders_during_recording_are_consistent)
{
    const char *inf =
        "hookd_handler_duration_seconds_bucket{phase=\"pre\",handler=\"h\",le=\"+Inf\"}";
    const char *count = "hookd_handler_duration_seconds_count{phase=\"pre\",handler=\"h\"}";
    const char *consumed = "hookd_events_consumed_total{type=\"a\"}";
    double first_count = -1, last_count = -1, last_consumed = -1; /* -1: not recorded yet */
    pthread_t t[THREADS];
    atomic_store(&recorders_started, 0);
    atomic_store(&recording, true);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, record_until_stopped, NULL), 0);
    /* Rendering starts once every recorder runs (under valgrind, which runs
     * one thread at a time, they started after 300 renders were done), and
     * goes on until a render has seen them move: the two overlap. */
    while (atomic_load(&recorders_started) < THREADS)
        sched_yield();
    for (int r = 0; r < 300 || last_count <= first_count; r++) {
        char *s = render();
        assert_valid_exposition(s);
        double n = sample(s, count), c = sample(s, consumed);
        cr_assert_eq(sample(s, inf), n, "render %d: +Inf %.0f, _count %.0f", r, sample(s, inf), n);
        cr_assert_geq(n, last_count, "render %d: _count went down", r);
        cr_assert_geq(c, last_consumed, "render %d: consumed went down", r);
        cr_assert_gt(n, 0, "render %d: nothing recorded yet", r);
        if (r == 0)
            first_count = n;
        last_count = n;
        last_consumed = c;
        free(s);
    }
    atomic_store(&recording, false);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

Test(metrics, reset_clears_everything)
{
    hookd_metrics_event_consumed("x");
    hookd_metrics_kafka_stats(stats1, strlen(stats1));
    hookd_status_set(HOOKD_STATUS_HOOKS_LOADED, true);
    hookd_status_heartbeat();
    hookd_metrics_reset();
    char *s = render();
    cr_assert_eq(sample(s, "hookd_events_consumed_total{type=\"x\"}"), -1);
    cr_assert_null(strstr(s, "hookd_consumer_lag{"));
    cr_assert_not(hookd_status_get(HOOKD_STATUS_HOOKS_LOADED));
    cr_assert_not(hookd_status_live(1000000));
    free(s);
}

/*
 * A thread remembers where it recorded a label set last, by the label
 * pointers: a string changed (or freed and its address reused) under the
 * same pointer, or a reset in between, must still count under the right
 * labels.
 */
Test(metrics, recording_hints_follow_the_label_text)
{
    char type[32], handler[32];
    snprintf(type, sizeof(type), "a.type");
    hookd_metrics_event_consumed(type);
    hookd_metrics_event_consumed(type);
    snprintf(type, sizeof(type), "b.type"); /* same pointer, other text */
    hookd_metrics_event_consumed(type);
    snprintf(handler, sizeof(handler), "h1");
    hookd_metrics_invocation("pre", handler, "ok", 0.001);
    snprintf(handler, sizeof(handler), "h2");
    hookd_metrics_invocation("pre", handler, "ok", 0.001);
    hookd_metrics_invocation("pre", handler, "ok", 0.001);
    char *s = render();
    cr_assert_eq(sample(s, "hookd_events_consumed_total{type=\"a.type\"}"), 2);
    cr_assert_eq(sample(s, "hookd_events_consumed_total{type=\"b.type\"}"), 1);
    cr_assert_eq(
        sample(s, "hookd_handler_invocations_total{phase=\"pre\",handler=\"h1\",outcome=\"ok\"}"),
        1);
    cr_assert_eq(
        sample(s, "hookd_handler_invocations_total{phase=\"pre\",handler=\"h2\",outcome=\"ok\"}"),
        2);
    cr_assert_eq(sample(s, "hookd_handler_duration_seconds_count{phase=\"pre\",handler=\"h2\"}"),
                 2);
    free(s);

    /* after a reset, the series is made again and counts from zero */
    hookd_metrics_reset();
    snprintf(type, sizeof(type), "c.type");
    hookd_metrics_event_consumed(type);
    snprintf(type, sizeof(type), "b.type");
    hookd_metrics_event_consumed(type);
    s = render();
    cr_assert_eq(sample(s, "hookd_events_consumed_total{type=\"a.type\"}"), -1);
    cr_assert_eq(sample(s, "hookd_events_consumed_total{type=\"b.type\"}"), 1);
    cr_assert_eq(sample(s, "hookd_events_consumed_total{type=\"c.type\"}"), 1);
    free(s);
}

/* Every family the worker exports has its row in docs/operations.md's metrics table. */
Test(metrics, every_family_is_documented)
{
    FILE *f = fopen(HOOKD_SOURCE_DIR "/docs/operations.md", "r");
    char *doc, *s, *p, row[160];
    long size;
    int families = 0;

    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    rewind(f);
    doc = malloc((size_t)size + 1);
    cr_assert_not_null(doc);
    cr_assert_eq(fread(doc, 1, (size_t)size, f), (size_t)size);
    doc[size] = '\0';
    fclose(f);
    s = render();
    for (p = strstr(s, "# TYPE "); p != NULL; p = strstr(p + 1, "# TYPE ")) {
        const char *name = p + 7;
        size_t n = strcspn(name, " ");
        snprintf(row, sizeof(row), "| `%.*s` |", (int)n, name);
        cr_expect_not_null(strstr(doc, row), "%.*s is not in the table of docs/operations.md",
                           (int)n, name);
        families++;
    }
    cr_assert_gt(families, 10);
    free(s);
    free(doc);
}
