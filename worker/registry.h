/* SPDX-License-Identifier: MIT */
/*
 * The handler registry: resolves `hooks_file` into a chain of handlers,
 * compiled-in ones (by name) and files loaded with dlopen (by path), in the
 * order listed. Fail closed: any entry that cannot be loaded makes the whole
 * load fail with one line naming the entry and the reason.
 *
 * Instances are per thread (see hook.h): hookd_invoke_create() (invoke.h)
 * calls every handler's init once per thread, hookd_invoke_destroy() its fini.
 */
#ifndef HOOKD_REGISTRY_H
#define HOOKD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include <acme_hookd/hook.h>

#include "settings.h"
#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hookd_registry_err {
    HOOKD_REGISTRY_OK = 0,
    HOOKD_REGISTRY_ERR_NOT_FOUND,   /* no such file, no such builtin */
    HOOKD_REGISTRY_ERR_PERMISSIONS, /* writable by others than owner/root, or not owned by us/root */
    HOOKD_REGISTRY_ERR_DLOPEN,      /* not a loadable object */
    HOOKD_REGISTRY_ERR_SYMBOL,      /* no `hookd_handler` symbol */
    HOOKD_REGISTRY_ERR_ABI,         /* major version differs, struct too small, no name */
    HOOKD_REGISTRY_ERR_INIT,        /* init failed */
    HOOKD_REGISTRY_ERR_LIMIT        /* more than HOOKD_CHAIN_MAX handlers */
} hookd_registry_err_t;

typedef struct hookd_registry hookd_registry_t;

/*
 * Resolve cfg->hooks_file. Entries are separated by commas, whitespace or
 * newlines; an entry containing '/' or ending in ".so" is a file, any other
 * a builtin name. Returns NULL and a one-line reason naming the entry.
 * `err` (may be NULL) receives the error code.
 */
hookd_registry_t *hookd_registry_load(const hookd_config_t *cfg, hookd_registry_err_t *err,
                                      char *errstr, size_t errstr_size);
void hookd_registry_destroy(hookd_registry_t *r);

size_t hookd_registry_count(const hookd_registry_t *r);
/*
 * The i-th handler as the worker may use it: a copy of the handler's struct
 * in which every field the handler's ABI version does not have is NULL.
 */
const hookd_handler_t *hookd_registry_handler(const hookd_registry_t *r, size_t i);
/* Where it came from: the file path, or "builtin:<name>". */
const char *hookd_registry_origin(const hookd_registry_t *r, size_t i);
/* The chain as the engine sees it (names, which phases exist). */
const hookd_chain_t *hookd_registry_chain(const hookd_registry_t *r);
/* Does any loaded handler declare this [Hooks] key? (signature fits hookd_config_check_hook_keys) */
bool hookd_registry_declares_key(const char *key, void *registry);

/* The names of the compiled-in handlers, NULL-terminated. */
const char *const *hookd_registry_builtin_names(void);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_REGISTRY_H */
