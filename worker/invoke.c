/* SPDX-License-Identifier: MIT */
/*
 * The invoke seam. Owns one worker thread's handler instances and is the
 * only code that calls into a handler. The services handlers reach through
 * their context (log, config, event id, error text) are implemented here
 * as the worker's side of struct hookd_host.
 */
#include "invoke.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"

#include "isolate.h"

/* What the context of one call points at (ctx->host_data). */
typedef struct call_scope {
    hookd_invoke_t *inv;
    size_t handler_index;
    hookd_phase_t phase;  /* HOOKD_PHASE_COUNT during init/fini */
    const char *event_id; /* NULL during init/fini */
    char *error;          /* where set_error writes; HOOKD_ERROR_MAX bytes */
} call_scope_t;

struct hookd_invoke {
    const hookd_registry_t *reg;
    const hookd_config_t *cfg;
    const atomic_int *stop; /* the runtime's abort flag, or NULL */
    size_t count;
    void *state[HOOKD_CHAIN_MAX];
    bool initialised[HOOKD_CHAIN_MAX];
    hookd_invoker_t invoker;
    hookd_isolate_t *isolate; /* non-NULL in process isolation */
};

/* ---- the worker's side of struct hookd_host ----------------------------- */

static void host_logv(hookd_ctx_t *ctx, hookd_log_level_t level, const char *fmt, va_list ap)
    HOOKD_PRINTF(3, 0);
static void host_logv(hookd_ctx_t *ctx, hookd_log_level_t level, const char *fmt, va_list ap)
{
    const call_scope_t *s = ctx->host_data;
    hookd_log_fields_t f = HOOKD_LOG_FIELDS_INIT;
    f.handler = hookd_registry_handler(s->inv->reg, s->handler_index)->name;
    f.event_id = s->event_id;
    if (s->phase != HOOKD_PHASE_COUNT)
        f.phase = hookd_phase_name(s->phase);
    hookd_logv(level, &f, fmt, ap);
}

static const char *host_config_get(hookd_ctx_t *ctx, const char *key)
{
    const call_scope_t *s = ctx->host_data;
    return key ? hookd_config_hook_value(s->inv->cfg, key) : NULL;
}

static const char *host_event_id(hookd_ctx_t *ctx)
{
    const call_scope_t *s = ctx->host_data;
    return s->event_id;
}

static void host_set_errorv(hookd_ctx_t *ctx, const char *fmt, va_list ap) HOOKD_PRINTF(2, 0);
static void host_set_errorv(hookd_ctx_t *ctx, const char *fmt, va_list ap)
{
    const call_scope_t *s = ctx->host_data;
    if (s->error)
        vsnprintf(s->error, HOOKD_ERROR_MAX, fmt, ap);
}

static const char *host_config_key_at(hookd_ctx_t *ctx, size_t i, const char **value)
{
    const call_scope_t *s = ctx->host_data;
    const hookd_kv_list_t *kv = &s->inv->cfg->hook_keys;
    if (i >= kv->count)
        return NULL;
    if (value)
        *value = kv->items[i].value;
    return kv->items[i].key;
}

static const struct hookd_host host = {
    .size = sizeof(struct hookd_host),
    .logv = host_logv,
    .config_get = host_config_get,
    .event_id = host_event_id,
    .set_errorv = host_set_errorv,
    .config_key_at = host_config_key_at,
};

/* ---- calling a handler in this process --------------------------------- */

/*
 * Call handler `idx` for `phase` directly. Used by in-process mode and, in
 * process isolation, by the child that runs the invocation.
 */
void hookd_invoke_call_local(hookd_invoke_t *inv, size_t idx, hookd_phase_t phase,
                             const hookd_event_t *ev, hookd_invocation_t *out)
{
    const hookd_handler_t *h = hookd_registry_handler(inv->reg, idx);
    call_scope_t scope = {inv, idx, phase, ev->id, out->error};
    hookd_ctx_t ctx = {&host, &scope};
    void *st = inv->state[idx];

    out->error[0] = '\0';
    out->error_class = HOOKD_ERRCLASS_NONE;
    switch (phase) {
    case HOOKD_PHASE_PRE:
        out->outcome = h->pre_hook
                           ? h->pre_hook(&ctx, st, ev->certificate_name, ev->order_name, ev->csr)
                           : HOOKD_OK;
        break;
    case HOOKD_PHASE_SUCCESS:
        out->outcome = h->success_hook ? h->success_hook(&ctx, st, ev->certificate_name,
                                                         ev->order_name, ev->csr, ev->certificate,
                                                         ev->certificate_raw, ev->poll_identifier)
                                       : HOOKD_OK;
        break;
    case HOOKD_PHASE_POST:
        /* An issued event's post hooks see error = NULL, as acme2certifier's. */
        out->outcome = h->post_hook
                           ? h->post_hook(&ctx, st, ev->certificate_name, ev->order_name, ev->csr,
                                          ev->type == HOOKD_EVENT_FAILED ? ev->error : NULL)
                           : HOOKD_OK;
        break;
    default:
        out->outcome = HOOKD_FAIL;
        snprintf(out->error, HOOKD_ERROR_MAX, "no such phase");
    }
    if (out->outcome != HOOKD_OK && out->outcome != HOOKD_RETRY && out->outcome != HOOKD_FAIL) {
        /* A handler returning garbage is a failing handler, not a crash of ours. */
        snprintf(out->error, HOOKD_ERROR_MAX, "handler returned invalid outcome %d",
                 (int)out->outcome);
        out->outcome = HOOKD_FAIL;
    }
    if (out->outcome == HOOKD_FAIL)
        out->error_class = HOOKD_ERRCLASS_HOOK_FAILED;
}

static void seam_invoke(void *opaque, size_t idx, hookd_phase_t phase, const hookd_event_t *ev,
                        hookd_invocation_t *out)
{
    hookd_invoke_t *inv = opaque;
    if (inv->isolate) {
        hookd_isolate_call(inv->isolate, idx, phase, ev, out);
        return;
    }
    hookd_invoke_call_local(inv, idx, phase, ev, out);
}

/* Sleep in short steps so a shutdown signal cuts a long backoff short. */
static bool seam_backoff(void *opaque, uint32_t delay_ms)
{
    hookd_invoke_t *inv = opaque;
    uint64_t end = hookd_now_ms() + delay_ms;

    for (;;) {
        uint64_t now = hookd_now_ms();
        uint64_t step;
        struct timespec ts;
        if (inv->stop && atomic_load_explicit(inv->stop, memory_order_relaxed))
            return false;
        if (now >= end)
            return true;
        step = end - now > 50 ? 50 : end - now;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)step * 1000000L;
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
            ;
    }
}

static uint64_t seam_now_us(void *opaque)
{
    (void)opaque;
    return hookd_now_us();
}

/* ---- lifecycle ---------------------------------------------------------- */

hookd_invoke_t *hookd_invoke_create(const hookd_registry_t *reg, const hookd_config_t *cfg,
                                    const atomic_int *stop, char *errstr, size_t errstr_size)
{
    hookd_invoke_t *inv = calloc(1, sizeof(*inv));
    char err[HOOKD_ERROR_MAX];

    if (inv == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    inv->reg = reg;
    inv->cfg = cfg;
    inv->stop = stop;
    inv->count = hookd_registry_count(reg);
    if (inv->count > HOOKD_CHAIN_MAX)
        inv->count = HOOKD_CHAIN_MAX;

    for (size_t i = 0; i < inv->count; i++) {
        const hookd_handler_t *h = hookd_registry_handler(reg, i);
        call_scope_t scope = {inv, i, HOOKD_PHASE_COUNT, NULL, err};
        hookd_ctx_t ctx = {&host, &scope};
        hookd_outcome_t rc;

        if (h->init == NULL) {
            inv->initialised[i] = true;
            continue;
        }
        err[0] = '\0';
        rc = h->init(&ctx, &inv->state[i]);
        if (rc != HOOKD_OK) {
            snprintf(errstr, errstr_size, "handler '%s' (%s): init failed: %s", h->name,
                     hookd_registry_origin(reg, i), err[0] ? err : "no reason given");
            goto error;
        }
        inv->initialised[i] = true;
    }

    if (cfg->isolation == HOOKD_ISOLATION_PROCESS) {
        /* Children are forked from this pre-initialised state, so init runs once. */
        inv->isolate = hookd_isolate_create(inv, cfg, errstr, errstr_size);
        if (inv->isolate == NULL)
            goto error;
    }

    inv->invoker.invoke = seam_invoke;
    inv->invoker.backoff = seam_backoff;
    inv->invoker.now_us = seam_now_us;
    inv->invoker.opaque = inv;
    return inv;

error:
    hookd_invoke_destroy(inv);
    return NULL;
}

void hookd_invoke_destroy(hookd_invoke_t *inv)
{
    if (inv == NULL)
        return;
    hookd_isolate_destroy(inv->isolate);
    /* fini in reverse order of init, like stacked modules. */
    for (size_t i = inv->count; i-- > 0;) {
        const hookd_handler_t *h = hookd_registry_handler(inv->reg, i);
        call_scope_t scope = {inv, i, HOOKD_PHASE_COUNT, NULL, NULL};
        hookd_ctx_t ctx = {&host, &scope};
        if (inv->initialised[i] && h->fini)
            h->fini(&ctx, inv->state[i]);
    }
    free(inv);
}

const hookd_invoker_t *hookd_invoke_invoker(hookd_invoke_t *inv)
{
    return &inv->invoker;
}
