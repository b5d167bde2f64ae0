/* SPDX-License-Identifier: MIT */
/*
 * exception_test: a handler that fails on request, for testing how the
 * worker and its configuration treat failing hooks. It answers to the keys
 * of acme2certifier's exception_test_hooks.py:
 *
 *   raise_pre_hook_exception     = true   pre_hook fails
 *   raise_success_hook_exception = true   success_hook fails
 *   raise_post_hook_exception    = true   post_hook fails
 *
 * The error message is the key's name, as the Python handler's exception
 * text is. For the retry path it also reads:
 *
 *   retry_pre_hook_times     = N   pre_hook returns HOOKD_RETRY the first N
 *   retry_success_hook_times = N   times it sees a given event id, then
 *   retry_post_hook_times    = N   behaves as above (ok, or the raise_* failure)
 *
 * Attempts are counted per event id in the instance (retries of one
 * invocation happen on the same thread, hence the same instance); the
 * instance remembers the last RETRY_SLOTS event ids, which is plenty for a
 * test and keeps memory bounded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <acme_hookd/hook.h>

#define RETRY_SLOTS 256
#define EVENT_ID_MAX 128
#define RETRY_TIMES_MAX 1000000L

enum { PH_PRE = 0, PH_SUCCESS = 1, PH_POST = 2, PH_COUNT = 3 };

/* The configuration, declared as a table: one row per phase. */
static const struct phase_keys {
    const char *name;
    const char *raise_key;
    const char *retry_key;
} phase_keys[PH_COUNT] = {
    {"pre", "raise_pre_hook_exception", "retry_pre_hook_times"},
    {"success", "raise_success_hook_exception", "retry_success_hook_times"},
    {"post", "raise_post_hook_exception", "retry_post_hook_times"},
};

static const char *const config_keys[] = {"raise_pre_hook_exception",
                                          "raise_success_hook_exception",
                                          "raise_post_hook_exception",
                                          "retry_pre_hook_times",
                                          "retry_success_hook_times",
                                          "retry_post_hook_times",
                                          NULL};

typedef struct retry_slot {
    char event_id[EVENT_ID_MAX];
    long seen[PH_COUNT]; /* retries handed out so far, per phase */
} retry_slot_t;

typedef struct exception_test {
    int raise[PH_COUNT];
    long retry_times[PH_COUNT];
    retry_slot_t *slots; /* RETRY_SLOTS, allocated when a retry_* key is set */
    size_t next_slot;    /* ring: the oldest slot is reused */
} exception_test_t;

static hookd_outcome_t et_init(hookd_ctx_t *ctx, void **state)
{
    exception_test_t *et = calloc(1, sizeof(*et));
    int p, any_retry = 0;

    if (!et) {
        hookd_set_error(ctx, "out of memory");
        return HOOKD_FAIL;
    }
    for (p = 0; p < PH_COUNT; p++) {
        const char *v = hookd_config_get(ctx, phase_keys[p].retry_key);
        char *end = NULL;

        /* -1: present but not a boolean, a typo that must not pass silently. */
        et->raise[p] = hookd_config_get_bool(ctx, phase_keys[p].raise_key, -1);
        if (et->raise[p] < 0) {
            const char *raw = hookd_config_get(ctx, phase_keys[p].raise_key);
            if (raw) {
                hookd_set_error(ctx, "%s: '%s' is not a boolean", phase_keys[p].raise_key, raw);
                free(et);
                return HOOKD_FAIL;
            }
            et->raise[p] = 0;
        }
        if (v) {
            et->retry_times[p] = strtol(v, &end, 10);
            if (!v[0] || *end || et->retry_times[p] < 0 || et->retry_times[p] > RETRY_TIMES_MAX) {
                hookd_set_error(ctx, "%s: '%s' is not a number from 0 to %ld",
                                phase_keys[p].retry_key, v, RETRY_TIMES_MAX);
                free(et);
                return HOOKD_FAIL;
            }
            any_retry |= et->retry_times[p] > 0;
        }
    }
    if (any_retry) {
        et->slots = calloc(RETRY_SLOTS, sizeof(*et->slots));
        if (!et->slots) {
            hookd_set_error(ctx, "out of memory");
            free(et);
            return HOOKD_FAIL;
        }
    }
    hookd_log(ctx, HOOKD_LOG_DEBUG, "exception_test: raise pre=%d success=%d post=%d",
              et->raise[PH_PRE], et->raise[PH_SUCCESS], et->raise[PH_POST]);
    *state = et;
    return HOOKD_OK;
}

static void et_fini(hookd_ctx_t *ctx, void *state)
{
    exception_test_t *et = state;
    (void)ctx;
    if (et)
        free(et->slots);
    free(et);
}

static retry_slot_t *slot_for(exception_test_t *et, const char *event_id)
{
    size_t i;
    retry_slot_t *s;

    for (i = 0; i < RETRY_SLOTS; i++)
        if (et->slots[i].event_id[0] && strcmp(et->slots[i].event_id, event_id) == 0)
            return &et->slots[i];
    s = &et->slots[et->next_slot];
    et->next_slot = (et->next_slot + 1) % RETRY_SLOTS;
    memset(s, 0, sizeof(*s));
    snprintf(s->event_id, sizeof(s->event_id), "%s", event_id);
    return s;
}

static hookd_outcome_t et_phase(hookd_ctx_t *ctx, exception_test_t *et, int p,
                                const char *certificate_name, const char *order_name)
{
    const char *id = hookd_event_id(ctx);

    hookd_log(ctx, HOOKD_LOG_DEBUG, "exception_test: %s_hook(%s/%s)", phase_keys[p].name,
              certificate_name ? certificate_name : "", order_name ? order_name : "");
    if (et->retry_times[p] > 0 && et->slots) {
        retry_slot_t *s = slot_for(et, id ? id : "");
        if (s->seen[p] < et->retry_times[p]) {
            s->seen[p]++;
            hookd_set_error(ctx, "%s: attempt %ld of %ld asks for a retry", phase_keys[p].retry_key,
                            s->seen[p], et->retry_times[p]);
            return HOOKD_RETRY;
        }
    }
    if (et->raise[p]) {
        hookd_set_error(ctx, "%s", phase_keys[p].raise_key);
        return HOOKD_FAIL;
    }
    return HOOKD_OK;
}

static hookd_outcome_t et_pre(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                              const char *order_name, const char *csr)
{
    return et_phase(ctx, state, PH_PRE, certificate_name, order_name);
}

static hookd_outcome_t et_success(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                  const char *order_name, const char *csr, const char *certificate,
                                  const char *certificate_raw, const char *poll_identifier)
{
    return et_phase(ctx, state, PH_SUCCESS, certificate_name, order_name);
}

static hookd_outcome_t et_post(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                               const char *order_name, const char *csr, const char *error)
{
    return et_phase(ctx, state, PH_POST, certificate_name, order_name);
}

HOOKD_HANDLER_EXPORT = {
    HOOKD_HANDLER_HEADER,
    .name = "exception_test",
    .description = "fails (or asks for retries in) the phases named in its configuration",
    .config_keys = config_keys,
    .init = et_init,
    .fini = et_fini,
    .pre_hook = et_pre,
    .success_hook = et_success,
    .post_hook = et_post,
};
