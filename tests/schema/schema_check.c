/* SPDX-License-Identifier: MIT */
/*
 * hookd-schema-check: the C side of the schema cross-check.
 *
 *   hookd-schema-check decode [--binary] FILE...
 *       Feed each corpus file to the codec (hookd_event_decode) and print
 *       one line per file: "valid<TAB>FILE" or "invalid<TAB>FILE<TAB>reason".
 *   hookd-schema-check emit DIR
 *       Write what the real encoder produces for a set of decisions:
 *       DIR/result/<case>.json (result values), DIR/result-headers/<case>.json
 *       (their headers as a JSON object) and DIR/dead-letter/<case>.json
 *       (dead-letter context headers as a JSON object).
 *
 * tests/schema/crosscheck.py runs a JSON Schema validator over the same
 * files and asserts both agree.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "corpus.h"
#include "engine.h"
#include "event.h"
#include "result.h"

static const char *err_kind(hookd_event_err_t e)
{
    switch (e) {
    case HOOKD_EVENT_OK:
        return "ok";
    case HOOKD_EVENT_ERR_TOO_LARGE:
        return "too_large";
    case HOOKD_EVENT_ERR_PARSE:
        return "parse";
    case HOOKD_EVENT_ERR_SCHEMA:
        return "schema";
    }
    return "?";
}

static int cmd_decode(int argc, char **argv)
{
    bool binary = false;
    int i = 0;

    if (argc > 0 && strcmp(argv[0], "--binary") == 0) {
        binary = true;
        i++;
    }
    for (; i < argc; i++) {
        corpus_msg_t m;
        hookd_event_t ev;
        char err[512];
        hookd_event_err_t e;

        if (corpus_msg_load(argv[i], binary, &m, err, sizeof(err)) != 0) {
            fprintf(stderr, "hookd-schema-check: %s\n", err);
            return 2;
        }
        e = hookd_event_decode(m.value, m.len, m.headers, m.header_count, NULL, &ev, err,
                               sizeof(err));
        if (e == HOOKD_EVENT_OK)
            printf("valid\t%s\n", argv[i]);
        else
            printf("invalid\t%s\t%s: %s\n", argv[i], err_kind(e), err);
        hookd_event_clear(&ev);
        corpus_msg_free(&m);
    }
    return 0;
}

/* ---- emit ----------------------------------------------------------------- */

static int write_file(const char *dir, const char *sub, const char *name, const char *text)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return -1;
    snprintf(path, sizeof(path), "%s/%s/%s.json", dir, sub, name);
    f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static char *headers_json(const hookd_headers_t *h, size_t from)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    for (size_t i = from; i < hookd_headers_count(h); i++) {
        const hookd_header_t *x = hookd_headers_get(h, i);
        if (x->value == NULL)
            cJSON_AddNullToObject(o, x->name);
        else
            cJSON_AddStringToObject(o, x->name, x->value); /* NUL-terminated by the list */
    }
    s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

static void add_run(hookd_decision_t *d, hookd_phase_t phase, const char *handler,
                    hookd_outcome_t outcome, hookd_error_class_t cls, bool allowed,
                    uint32_t attempts, uint64_t us, const char *error)
{
    hookd_run_t *r = &d->runs[d->run_count++];

    memset(r, 0, sizeof(*r));
    r->phase = phase;
    r->handler_index = d->run_count - 1;
    r->handler_name = handler;
    r->outcome = outcome;
    r->error_class = cls;
    r->failure_allowed = allowed;
    r->attempts = attempts;
    r->duration_us = us;
    snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
}

static void fail_at(hookd_decision_t *d, int run, hookd_error_class_t cls)
{
    d->verdict = HOOKD_VERDICT_FAILED;
    d->dead_letter = true;
    d->error_class = cls;
    d->failed_run = run;
    d->failed_phase = d->runs[run].phase;
    snprintf(d->error, sizeof(d->error), "%s", d->runs[run].error);
}

static int emit_one(const char *dir, const char *name, const char *event_json,
                    const hookd_decision_t *d, size_t max_error_bytes)
{
    hookd_event_t ev;
    hookd_origin_t origin = {"acme.enrollment", 3, 4711, 1764183600123, "acme-hookd"};
    hookd_result_info_t info = {&ev, &origin, "worker-1", NULL, max_error_bytes};
    hookd_headers_t *h = hookd_headers_new();
    char err[512], *value, *hj;
    size_t len;
    int rc = 0;

    hookd_event_decode(event_json, strlen(event_json), NULL, 0, NULL, &ev, err, sizeof(err));
    value = hookd_result_encode(&info, d, h, &len);
    if (value == NULL) {
        rc = -1;
        goto done;
    }
    hj = headers_json(h, 0);
    rc |= write_file(dir, "result", name, value);
    rc |= write_file(dir, "result-headers", name, hj);
    free(hj);
    free(value);
    if (d->dead_letter) {
        size_t mark = hookd_headers_count(h);
        if (hookd_deadletter_headers(&info, d, h) != 0) {
            rc = -1;
            goto done;
        }
        hj = headers_json(h, mark);
        rc |= write_file(dir, "dead-letter", name, hj);
        free(hj);
    }
done:
    hookd_headers_destroy(h);
    hookd_event_clear(&ev);
    return rc;
}

#define CSR "MIIBADCBpwIBADAbMRkwFwYDVQQDDBBob3N0LmV4YW1wbGUub3Jn"
#define EV_REQUESTED                                                                               \
    "{\"type\":\"acme.enrollment.requested\",\"id\":\"ev-1\",\"time\":\"2026-11-26T19:00:00Z\","   \
    "\"certificate_name\":\"cert-1\",\"order_name\":\"order-1\",\"csr\":\"" CSR "\"}"
#define EV_FAILED                                                                                  \
    "{\"type\":\"acme.enrollment.failed\",\"id\":\"ev-2\",\"time\":\"2026-11-26T19:00:00Z\","      \
    "\"certificate_name\":\"cert-2\",\"order_name\":\"order-2\",\"csr\":\"" CSR "\","              \
    "\"error\":\"urn:ietf:params:acme:error:serverInternal\"}"

/* A scripted invoker: each call takes the next outcome of the script. */
typedef struct script {
    const hookd_outcome_t *outcomes;
    size_t n, next;
} script_t;

static void script_invoke(void *opaque, size_t handler_index, hookd_phase_t phase,
                          const hookd_event_t *event, hookd_invocation_t *out)
{
    script_t *s = opaque;

    memset(out, 0, sizeof(*out));
    out->outcome = s->next < s->n ? s->outcomes[s->next++] : HOOKD_OK;
    if (out->outcome != HOOKD_OK)
        snprintf(out->error, sizeof(out->error), "handler %zu said no in phase %s", handler_index,
                 hookd_phase_name(phase));
}

static bool script_backoff(void *opaque, uint32_t delay_ms)
{
    return true; /* no waiting: only the decision's shape matters here */
}

/* The real engine's decision for `event_json`, then encoded. */
static int emit_engine(const char *dir, const char *name, const char *event_json,
                       const hookd_outcome_t *outcomes, size_t n, bool allow_post,
                       unsigned phases_done)
{
    static const hookd_chain_entry_t entries[] = {
        {"cn_dump", {true, true, true}},
        {"exec", {true, true, true}},
    };
    hookd_chain_t chain = {entries, 2};
    script_t s = {outcomes, n, 0};
    hookd_invoker_t inv = {script_invoke, script_backoff, NULL, &s};
    hookd_policy_t policy;
    hookd_event_t ev;
    hookd_decision_t d;
    char err[512];

    hookd_policy_defaults(&policy);
    policy.allow_failure[HOOKD_PHASE_POST] = allow_post;
    policy.retry_initial_ms = 0;
    if (hookd_event_decode(event_json, strlen(event_json), NULL, 0, NULL, &ev, err, sizeof(err)) !=
        HOOKD_EVENT_OK) {
        fprintf(stderr, "hookd-schema-check: %s: %s\n", name, err);
        hookd_event_clear(&ev);
        return -1;
    }
    hookd_engine_run_from(&ev, &chain, &policy, phases_done, &inv, &d);
    hookd_event_clear(&ev);
    return emit_one(dir, name, event_json, &d, 0);
}

static int cmd_emit(const char *dir)
{
    hookd_decision_t d;
    char big[HOOKD_ERROR_MAX];
    int rc = 0;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        perror(dir);
        return 2;
    }

    /* completed, nothing ran (no handler has the phase) */
    memset(&d, 0, sizeof(d));
    d.failed_run = -1;
    rc |= emit_one(dir, "completed-empty", EV_REQUESTED, &d, 0);

    /* completed with an allowed post failure */
    memset(&d, 0, sizeof(d));
    d.failed_run = -1;
    add_run(&d, HOOKD_PHASE_POST, "cn_dump", HOOKD_OK, HOOKD_ERRCLASS_NONE, false, 1, 1234, NULL);
    add_run(&d, HOOKD_PHASE_POST, "exec", HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_FAILED, true, 1, 20500,
            "exit status 3");
    rc |= emit_one(dir, "completed-allowed-failure", EV_FAILED, &d, 0);

    /* pre failed: dead-lettered */
    memset(&d, 0, sizeof(d));
    add_run(&d, HOOKD_PHASE_PRE, "cn_dump", HOOKD_OK, HOOKD_ERRCLASS_NONE, false, 1, 800, NULL);
    add_run(&d, HOOKD_PHASE_PRE, "exception_test", HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_FAILED, false, 1,
            15, "raise_pre_hook_exception is set");
    fail_at(&d, 1, HOOKD_ERRCLASS_HOOK_FAILED);
    rc |= emit_one(dir, "failed-pre", EV_REQUESTED, &d, 0);

    /* retries exhausted, no message from the handler */
    memset(&d, 0, sizeof(d));
    add_run(&d, HOOKD_PHASE_POST, "exec", HOOKD_FAIL, HOOKD_ERRCLASS_RETRIES_EXHAUSTED, false, 3,
            3000000, NULL);
    fail_at(&d, 0, HOOKD_ERRCLASS_RETRIES_EXHAUSTED);
    rc |= emit_one(dir, "failed-retries-exhausted", EV_FAILED, &d, 0);

    /* an oversized, non-UTF-8 message, capped at 64 bytes */
    memset(&d, 0, sizeof(d));
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big + 10, "\xff\xfe \xc3\xa9\xe2\x82", 7);
    add_run(&d, HOOKD_PHASE_PRE, "exec", HOOKD_FAIL, HOOKD_ERRCLASS_HOOK_TIMEOUT, false, 1,
            30000000, big);
    fail_at(&d, 0, HOOKD_ERRCLASS_HOOK_TIMEOUT);
    rc |= emit_one(dir, "failed-capped-message", EV_REQUESTED, &d, 64);

    /* invalid events: with a readable id, and without */
    hookd_decision_reject(&d, HOOKD_ERRCLASS_INVALID_EVENT, "field 'csr': not base64");
    rc |=
        emit_one(dir, "invalid-with-id",
                 "{\"type\":\"acme.enrollment.requested\",\"id\":\"ev-3\",\"csr\":\"%%\"}", &d, 0);
    hookd_decision_reject(&d, HOOKD_ERRCLASS_INVALID_EVENT, "event is not JSON");
    rc |= emit_one(dir, "invalid-no-id", "not json", &d, 0);
    hookd_decision_reject(&d, HOOKD_ERRCLASS_AUTH_FAILED, "no signature header");
    rc |= emit_one(dir, "auth-failed", EV_REQUESTED, &d, 0);

    /* decisions of the real engine */
    {
        static const hookd_outcome_t retry_then_ok_post_fails[] = {
            HOOKD_RETRY, HOOKD_OK, /* success: cn_dump */
            HOOKD_OK,              /* success: exec */
            HOOKD_FAIL,  HOOKD_OK, /* post: cn_dump fails (allowed by default), exec */
        };
        static const hookd_outcome_t pre_retries_exhausted[] = {
            HOOKD_OK,
            HOOKD_RETRY,
            HOOKD_RETRY,
            HOOKD_RETRY,
        };
        static const hookd_outcome_t post_fails[] = {HOOKD_OK, HOOKD_FAIL};
        static const char *issued =
            "{\"type\":\"acme.enrollment.issued\",\"id\":\"ev-4\",\"time\":"
            "\"2026-11-26T19:00:00Z\",\"certificate_name\":\"c\",\"order_name\":\"o\","
            "\"csr\":\"" CSR "\",\"certificate\":\"-----BEGIN CERTIFICATE-----\\nQUJD\\n"
            "-----END CERTIFICATE-----\\n\",\"certificate_raw\":\"QUJD\",\"poll_identifier\":null}";

        rc |= emit_engine(dir, "engine-issued-allowed-post-failure", issued,
                          retry_then_ok_post_fails, 5, true, 0);
        rc |= emit_engine(dir, "engine-pre-retries-exhausted", EV_REQUESTED, pre_retries_exhausted,
                          4, true, 0);
        rc |=
            emit_engine(dir, "engine-post-failure-not-allowed", EV_FAILED, post_fails, 2, false, 0);
        /* a replayed issued event whose success chain already ran: post only */
        rc |= emit_engine(dir, "engine-issued-resumed-post-only", issued, post_fails, 2, true,
                          HOOKD_PHASE_BIT(HOOKD_PHASE_PRE) | HOOKD_PHASE_BIT(HOOKD_PHASE_SUCCESS));
    }

    if (rc != 0) {
        fprintf(stderr, "hookd-schema-check: emit failed\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "decode") == 0)
        return cmd_decode(argc - 2, argv + 2);
    if (argc == 3 && strcmp(argv[1], "emit") == 0)
        return cmd_emit(argv[2]);
    fprintf(stderr, "usage: hookd-schema-check decode [--binary] FILE...\n"
                    "       hookd-schema-check emit DIR\n");
    return 2;
}
