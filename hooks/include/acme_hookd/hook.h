/* SPDX-License-Identifier: MIT */
/*
 * acme-hookd: the hook handler contract.
 *
 * A handler is one const `hookd_handler_t` exported under the symbol
 * `hookd_handler` (use HOOKD_HANDLER_EXPORT). It mirrors the Hooks class of
 * acme2certifier:
 *
 *   pre_hook(certificate_name, order_name, csr)
 *   success_hook(certificate_name, order_name, csr, certificate,
 *                certificate_raw, poll_identifier)
 *   post_hook(certificate_name, order_name, csr, error)
 *
 * Threading: the worker creates ONE instance of every handler per worker
 * thread (init is called once per thread, fini once per thread) and never
 * calls into the same instance from two threads at once. Handler code that
 * keeps its state in the per-instance `state` pointer therefore needs no
 * locks. Process-wide resources shared between instances (a file written by
 * all threads, say) are the handler's to protect.
 *
 * Delivery is at-least-once: the same event (same `hookd_event_id()`) can
 * reach a handler more than once, after a crash or a rebalance. Handlers
 * with side effects should use the event id as an idempotency key.
 *
 * ABI: `abi_version` carries HOOKD_ABI_MAJOR in its upper 16 bits and
 * HOOKD_ABI_MINOR in its lower 16 bits; `struct_size` is sizeof() of the
 * struct the handler was compiled against. The worker refuses a handler of a
 * different major version, and reads a field added in a later minor version
 * only when `struct_size` says the handler's struct contains it. New fields
 * are only ever appended.
 */
#ifndef ACME_HOOKD_HOOK_H
#define ACME_HOOKD_HOOK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HOOKD_ABI_MAJOR 1
#define HOOKD_ABI_MINOR 1
#define HOOKD_ABI_VERSION ((uint32_t)((HOOKD_ABI_MAJOR << 16) | HOOKD_ABI_MINOR))
#define HOOKD_ABI_VERSION_MAJOR(v) ((uint32_t)(v) >> 16)
#define HOOKD_ABI_VERSION_MINOR(v) ((uint32_t)(v)&0xffffu)

/* The symbol the loader looks up in a handler file. */
#define HOOKD_HANDLER_SYMBOL "hookd_handler"

/* What one invocation of a phase callback (or init) tells the worker. */
typedef enum hookd_outcome {
    HOOKD_OK = 0,   /* done, nothing to report */
    HOOKD_FAIL = 1, /* the hook failed: acme2certifier's hook raising an exception */
    HOOKD_RETRY = 2 /* transient failure: run me again after a backoff */
} hookd_outcome_t;

typedef enum hookd_log_level {
    HOOKD_LOG_ERROR = 0,
    HOOKD_LOG_WARNING = 1,
    HOOKD_LOG_INFO = 2,
    HOOKD_LOG_DEBUG = 3
} hookd_log_level_t;

struct hookd_ctx;

/*
 * Services the worker offers a handler. Reached through the context, so a
 * handler file links against nothing of the worker's. `size` is
 * sizeof(struct hookd_host) of the worker; the inline helpers below check it
 * before using a member added after ABI 1.0.
 */
struct hookd_host {
    uint32_t size;
    /* Log one line through the worker's logger (acme2certifier's self.logger). */
    void (*logv)(struct hookd_ctx *ctx, hookd_log_level_t level, const char *fmt, va_list ap);
    /*
     * A key of the handler's configuration ([Hooks] section), or NULL. The
     * string is the worker's: do not modify or free it. It stays valid and
     * unchanged until the fini of the instance that asked returns, so init
     * may keep the pointer in its state instead of copying it.
     */
    const char *(*config_get)(struct hookd_ctx *ctx, const char *key);
    /*
     * The id of the event being processed (the idempotency key); NULL in
     * init/fini. Valid for the duration of the callback only: copy it to
     * keep it.
     */
    const char *(*event_id)(struct hookd_ctx *ctx);
    /*
     * Set the error message reported for this invocation (the text of the
     * exception an acme2certifier hook raises). The worker copies it.
     */
    void (*set_errorv)(struct hookd_ctx *ctx, const char *fmt, va_list ap);
    /* ABI 1.0 ends here. */

    /*
     * ABI 1.1: the i-th key of the handlers' [Hooks] configuration (the keys
     * the worker does not read itself), in file order, or NULL past the
     * last; *value gets its value. Use hookd_config_key_at().
     */
    const char *(*config_key_at)(struct hookd_ctx *ctx, size_t i, const char **value);
};

/*
 * The context handed to every callback. Valid only for the duration of the
 * call; do not keep it.
 */
typedef struct hookd_ctx {
    const struct hookd_host *host; /* owned by the worker */
    void *host_data;               /* private to the worker */
} hookd_ctx_t;

/*
 * The handler contract. Every callback is optional: NULL means "nothing to
 * do" for that phase (and counts as success).
 *
 * Strings are NUL-terminated UTF-8 owned by the worker and valid for the
 * duration of the call only: copy what must outlive it. `csr` and
 * `certificate_raw` are base64 DER as in acme2certifier, `certificate` is a
 * PEM chain. `poll_identifier` and `error` may be NULL (acme2certifier's
 * None).
 *
 * The other way round, the pointers a handler hands out (`name`,
 * `description`, `config_keys` and the strings it lists) are read by the
 * worker for as long as the handler is loaded, from any thread: they must
 * be static storage, as the HOOKD_HANDLER_EXPORT initialiser gives them.
 *
 * Event data added in later versions (CloudEvents attributes, Kafka
 * headers, ...) will be offered through new members of struct hookd_host,
 * each with an inline accessor here that checks host->size, never as new
 * positional arguments of the phase callbacks: a handler built against ABI
 * 1.0 keeps working unchanged, and one built later still loads in an older
 * worker, where the accessor returns NULL.
 */
typedef struct hookd_handler {
    uint32_t abi_version; /* HOOKD_ABI_VERSION */
    uint32_t struct_size; /* sizeof(hookd_handler_t) */
    const char *name;     /* short name, [a-z0-9_]+, shown in results and logs */
    const char *description;

    /*
     * The configuration keys this handler reads from the [Hooks] section,
     * NULL-terminated (or NULL for none). Keys not declared by any loaded
     * handler are configuration errors. The entry "*" (ABI 1.1) accepts
     * every key: for a handler whose keys are only known at run time (the
     * python handler hands the section to a module), which then checks them
     * itself.
     */
    const char *const *config_keys;

    /*
     * Create one instance. Store per-instance state in *state. Return
     * HOOKD_OK, or HOOKD_FAIL with an error set through hookd_set_error():
     * the worker then refuses to start.
     */
    hookd_outcome_t (*init)(hookd_ctx_t *ctx, void **state);
    /* Destroy one instance created by init. */
    void (*fini)(hookd_ctx_t *ctx, void *state);

    hookd_outcome_t (*pre_hook)(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                const char *order_name, const char *csr);

    hookd_outcome_t (*success_hook)(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                    const char *order_name, const char *csr,
                                    const char *certificate, const char *certificate_raw,
                                    const char *poll_identifier);

    hookd_outcome_t (*post_hook)(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                 const char *order_name, const char *csr, const char *error);
    /* ABI 1.0 ends here. Later minor versions append fields below. */
} hookd_handler_t;

/*
 * Define the handler: `HOOKD_HANDLER_EXPORT = { HOOKD_HANDLER_HEADER, ... };`
 *
 * In a loadable file this defines the exported symbol `hookd_handler` (the
 * only symbol the loader needs; build with -fvisibility=hidden to keep the
 * rest private). The worker's build compiles the bundled handlers a second
 * time into its static registry with -DHOOKD_BUILTIN_SYMBOL=<unique name>:
 * the same source then defines that name instead, so several handlers can
 * live in one binary without clashing. Out-of-tree handlers never define
 * HOOKD_BUILTIN_SYMBOL.
 *
 * The macro declares the object `extern` (and visible) before defining it,
 * so that it has external linkage in C++ too, where a namespace-scope const
 * would not; the definition inherits the declaration's visibility.
 */
#if defined(__GNUC__)
#define HOOKD_VISIBLE __attribute__((visibility("default")))
#else
#define HOOKD_VISIBLE
#endif

#define HOOKD_HANDLER_EXPORT_AS(sym)                                                               \
    extern HOOKD_VISIBLE const hookd_handler_t sym;                                                \
    const hookd_handler_t sym

#ifdef HOOKD_BUILTIN_SYMBOL
#define HOOKD_HANDLER_EXPORT HOOKD_HANDLER_EXPORT_AS(HOOKD_BUILTIN_SYMBOL)
#else
#define HOOKD_HANDLER_EXPORT HOOKD_HANDLER_EXPORT_AS(hookd_handler)
#endif

/* Initialiser of the two version fields: { HOOKD_HANDLER_HEADER, .name = ... } */
#define HOOKD_HANDLER_HEADER                                                                       \
    .abi_version = HOOKD_ABI_VERSION, .struct_size = sizeof(hookd_handler_t)

/* ---- helpers for handler code ----------------------------------------- */

#if defined(__GNUC__)
#define HOOKD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HOOKD_PRINTF(a, b)
#endif

static inline void hookd_log(hookd_ctx_t *ctx, hookd_log_level_t level, const char *fmt, ...)
    HOOKD_PRINTF(3, 4);
static inline void hookd_log(hookd_ctx_t *ctx, hookd_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctx->host->logv(ctx, level, fmt, ap);
    va_end(ap);
}

static inline void hookd_set_error(hookd_ctx_t *ctx, const char *fmt, ...) HOOKD_PRINTF(2, 3);
static inline void hookd_set_error(hookd_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctx->host->set_errorv(ctx, fmt, ap);
    va_end(ap);
}

static inline const char *hookd_config_get(hookd_ctx_t *ctx, const char *key)
{
    return ctx->host->config_get(ctx, key);
}

/*
 * A boolean key, parsed as acme2certifier does: true/false, yes/no, on/off,
 * 1/0 (any case). Returns `dflt` when the key is absent or unparsable.
 */
static inline int hookd_config_get_bool(hookd_ctx_t *ctx, const char *key, int dflt)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    const char *v = ctx->host->config_get(ctx, key);
    size_t i;
    if (v == NULL)
        return dflt;
    for (i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    return dflt;
}

/*
 * The i-th [Hooks] key given to handlers, or NULL past the last (and on a
 * worker older than ABI 1.1); *value (may be NULL) gets its value.
 */
static inline const char *hookd_config_key_at(hookd_ctx_t *ctx, size_t i, const char **value)
{
    const struct hookd_host *h = ctx->host;
    if (h->size < offsetof(struct hookd_host, config_key_at) + sizeof(h->config_key_at) ||
        h->config_key_at == NULL)
        return NULL;
    return h->config_key_at(ctx, i, value);
}

static inline const char *hookd_event_id(hookd_ctx_t *ctx)
{
    return ctx->host->event_id(ctx);
}

#ifdef __cplusplus
}
#endif

#endif /* ACME_HOOKD_HOOK_H */
