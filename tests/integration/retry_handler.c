/* SPDX-License-Identifier: MIT */
/*
 * retry_test: a handler that asks for retries, for the retry tier
 * scenarios. By event type:
 *   - requested (pre hook): succeeds at once;
 *   - issued (success hook): asks for a retry `retry_test_times` times per
 *     order (default 2, counted in this process), then succeeds;
 *   - post hook: succeeds for an order whose success hook ran (issued
 *     events), always asks for a retry otherwise (failed events).
 * With `retry_test_trace_file` set, every call appends one line,
 * "<R|O> <phase> <order_name>" (R: asked for a retry, O: succeeded), one
 * write() to an O_APPEND descriptor: the scenarios count from it how often
 * each event ran.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <acme_hookd/hook.h>

static const char *const retry_keys[] = {"retry_test_times", "retry_test_trace_file", NULL};

#define RETRY_ORDERS_MAX 1024

/*
 * Calls per order, for the whole process: the worker may create one
 * handler instance per thread, and an event run again out of a tier may
 * land on another thread than its first run.
 */
static pthread_mutex_t retry_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t retry_n;
static struct {
    char order[64];
    long calls;
} retry_orders[RETRY_ORDERS_MAX];

typedef struct retry_state {
    long times;
    int trace_fd; /* -1: no trace */
} retry_state_t;

static hookd_outcome_t retry_init(hookd_ctx_t *ctx, void **state)
{
    const char *v = hookd_config_get(ctx, "retry_test_times");
    const char *trace = hookd_config_get(ctx, "retry_test_trace_file");
    long times = v ? strtol(v, NULL, 10) : 2;
    retry_state_t *st;
    if (times < 0 || times > 100) {
        hookd_set_error(ctx, "retry_test_times must be 0..100, got '%s'", v);
        return HOOKD_FAIL;
    }
    if (!(st = calloc(1, sizeof(*st)))) {
        hookd_set_error(ctx, "out of memory");
        return HOOKD_FAIL;
    }
    st->times = times;
    st->trace_fd = -1;
    if (trace != NULL && trace[0] != '\0' &&
        (st->trace_fd = open(trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
        free(st);
        hookd_set_error(ctx, "retry_test_trace_file '%s': cannot open", trace);
        return HOOKD_FAIL;
    }
    *state = st; /* now owned by the worker until fini */
    return HOOKD_OK;
}

static void retry_fini(hookd_ctx_t *ctx, void *state)
{
    retry_state_t *st = state;
    (void)ctx;
    if (st->trace_fd >= 0)
        close(st->trace_fd);
    free(st);
}

static void retry_trace(const retry_state_t *st, hookd_outcome_t o, const char *phase,
                        const char *order_name)
{
    char line[256];
    int n;
    if (st->trace_fd < 0)
        return;
    n = snprintf(line, sizeof(line), "%c %s %s\n", o == HOOKD_OK ? 'O' : 'R', phase,
                 order_name ? order_name : "-");
    if (n > 0 && (size_t)n < sizeof(line) && write(st->trace_fd, line, (size_t)n) != n)
        return; /* a lost trace line shows up as a failed count in the test */
}

/* Calls so far for this order, this one included (0: table full). */
static long retry_count(const char *order_name)
{
    long calls = 0;
    const char *o = order_name ? order_name : "-";
    pthread_mutex_lock(&retry_lock);
    for (size_t i = 0; i < retry_n && !calls; i++)
        if (strcmp(retry_orders[i].order, o) == 0)
            calls = ++retry_orders[i].calls;
    if (!calls && retry_n < RETRY_ORDERS_MAX) {
        snprintf(retry_orders[retry_n].order, sizeof(retry_orders[retry_n].order), "%s", o);
        calls = retry_orders[retry_n++].calls = 1;
    }
    pthread_mutex_unlock(&retry_lock);
    return calls;
}

/* Did the success hook run for this order? */
static bool retry_seen(const char *order_name)
{
    bool seen = false;
    const char *o = order_name ? order_name : "-";
    pthread_mutex_lock(&retry_lock);
    for (size_t i = 0; i < retry_n && !seen; i++)
        seen = strcmp(retry_orders[i].order, o) == 0;
    pthread_mutex_unlock(&retry_lock);
    return seen;
}

static hookd_outcome_t retry_pre(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                 const char *order_name, const char *csr)
{
    (void)ctx, (void)certificate_name, (void)csr;
    retry_trace(state, HOOKD_OK, "pre", order_name);
    return HOOKD_OK;
}

static hookd_outcome_t retry_success(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                     const char *order_name, const char *csr,
                                     const char *certificate, const char *certificate_raw,
                                     const char *poll_identifier)
{
    retry_state_t *st = state;
    long calls = retry_count(order_name);
    hookd_outcome_t o = calls > 0 && calls <= st->times ? HOOKD_RETRY : HOOKD_OK;
    (void)certificate_name, (void)csr, (void)certificate, (void)certificate_raw,
        (void)poll_identifier;
    if (calls == 0) {
        hookd_set_error(ctx, "retry_test: more than %d orders", RETRY_ORDERS_MAX);
        return HOOKD_FAIL;
    }
    if (o == HOOKD_RETRY)
        hookd_set_error(ctx, "not yet (call %ld of %ld)", calls, st->times + 1);
    retry_trace(st, o, "success", order_name);
    return o;
}

static hookd_outcome_t retry_post(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                  const char *order_name, const char *csr, const char *error)
{
    hookd_outcome_t o = retry_seen(order_name) ? HOOKD_OK : HOOKD_RETRY;
    (void)certificate_name, (void)csr, (void)error;
    if (o == HOOKD_RETRY)
        hookd_set_error(ctx, "never ready");
    retry_trace(state, o, "post", order_name);
    return o;
}

HOOKD_HANDLER_EXPORT = {
    HOOKD_HANDLER_HEADER,
    .name = "retry_test",
    .description = "asks for retries: issued events retry_test_times times, failed events "
                   "for ever (tests)",
    .config_keys = retry_keys,
    .init = retry_init,
    .fini = retry_fini,
    .pre_hook = retry_pre,
    .success_hook = retry_success,
    .post_hook = retry_post,
};
