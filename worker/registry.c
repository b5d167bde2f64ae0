/* SPDX-License-Identifier: MIT */
/*
 * The handler registry: turns `hooks_file` into the chain of handlers the
 * worker runs, fail closed.
 *
 * A handler file is code the worker runs with its own privileges, so it is
 * treated like sshd treats authorized_keys under StrictModes: the file and
 * the directory holding it must belong to root or to the user running the
 * worker and must not be writable by group or others; every directory above
 * must be as strict too, except that a sticky world-writable one (/tmp) is
 * accepted since nobody else can replace what we own in it. Anything looser
 * means someone else could swap the code we are about to run. The check can
 * be switched off (allow_unsafe_hooks_file) for development setups only.
 *
 * Each handler's struct is copied into the registry, and the copy zeroes
 * every field the handler's struct_size says it does not have: the rest of
 * the worker then reads all fields of the current ABI without asking which
 * version a handler was built against.
 */
#include "registry.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Provided by the registry table generated in hooks/handlers.cmake. */
extern const hookd_handler_t *const hookd_builtin_handlers[];

/* The size of the ABI 1.0 struct: nothing smaller can be a valid handler. */
#define HOOKD_HANDLER_SIZE_1_0                                                                     \
    (offsetof(hookd_handler_t, post_hook) + sizeof(((hookd_handler_t *)0)->post_hook))

#define HOOKD_NAME_MAX 64

typedef struct registry_entry {
    hookd_handler_t handler; /* the copy the worker uses */
    char *origin;            /* file path or "builtin:<name>" */
    void *dl;                /* dlopen handle, NULL for builtins */
} registry_entry_t;

struct hookd_registry {
    size_t count;
    registry_entry_t entries[HOOKD_CHAIN_MAX];
    hookd_chain_entry_t chain_entries[HOOKD_CHAIN_MAX];
    hookd_chain_t chain;
};

static const char *builtin_names[64 + 1];
static pthread_once_t builtin_names_once = PTHREAD_ONCE_INIT;

static void builtin_names_build(void)
{
    size_t i, n = 0;
    for (i = 0;
         hookd_builtin_handlers[i] && n < sizeof(builtin_names) / sizeof(builtin_names[0]) - 1; i++)
        builtin_names[n++] = hookd_builtin_handlers[i]->name;
    builtin_names[n] = NULL;
}

const char *const *hookd_registry_builtin_names(void)
{
    pthread_once(&builtin_names_once, builtin_names_build);
    return builtin_names;
}

static const hookd_handler_t *builtin_find(const char *name)
{
    size_t i;
    for (i = 0; hookd_builtin_handlers[i]; i++)
        if (strcmp(hookd_builtin_handlers[i]->name, name) == 0)
            return hookd_builtin_handlers[i];
    return NULL;
}

static void set_err(char *errstr, size_t errstr_size, const char *entry, const char *fmt, ...)
    HOOKD_PRINTF(4, 5);
static void set_err(char *errstr, size_t errstr_size, const char *entry, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (!errstr || errstr_size == 0)
        return;
    n = snprintf(errstr, errstr_size, "hooks_file entry '%s': ", entry);
    if (n < 0 || (size_t)n >= errstr_size)
        return;
    va_start(ap, fmt);
    vsnprintf(errstr + n, errstr_size - (size_t)n, fmt, ap);
    va_end(ap);
}

/*
 * Is `st` (a file, or a directory when is_dir) safe to trust? Returns NULL
 * if so, else the reason in buf. `sticky_ok`: a group/world-writable
 * directory is accepted when its sticky bit is set (a directory above the
 * handler's own, like /tmp), since nobody else can then replace our entry.
 */
static const char *unsafe_reason(const struct stat *st, bool is_dir, bool sticky_ok, char *buf,
                                 size_t bufsz)
{
    uid_t me = geteuid();
    if (st->st_uid != 0 && st->st_uid != me) {
        snprintf(buf, bufsz, "owned by uid %ld, neither root nor the worker's uid %ld",
                 (long)st->st_uid, (long)me);
        return buf;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        if (is_dir && sticky_ok && (st->st_mode & S_ISVTX))
            return NULL;
        snprintf(buf, bufsz, "writable by %s (mode %04o)",
                 (st->st_mode & S_IWOTH) ? "others" : "its group", (unsigned)(st->st_mode & 07777));
        return buf;
    }
    return NULL;
}

/* " " + the resolved path when it differs from what the entry says. */
static const char *resolved_note(const char *entry, const char *path)
{
    return strcmp(entry, path) ? " " : "";
}

/*
 * The StrictModes-like check of `path` (already resolved by realpath): the
 * file itself, its directory, then every directory up to /.
 */
static hookd_registry_err_t check_permissions(const char *entry, const char *path, char *errstr,
                                              size_t errstr_size)
{
    char dir[PATH_MAX];
    char why[160];
    struct stat st;
    const char *reason;
    char *slash;
    bool first = true;

    if (stat(path, &st) != 0) {
        set_err(errstr, errstr_size, entry, "cannot stat %s: %s", path, strerror(errno));
        return HOOKD_REGISTRY_ERR_NOT_FOUND;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(errstr, errstr_size, entry, "%s is not a regular file", path);
        return HOOKD_REGISTRY_ERR_DLOPEN;
    }
    if ((reason = unsafe_reason(&st, false, false, why, sizeof(why)))) {
        set_err(errstr, errstr_size, entry,
                "refusing to load%s%s: file %s (set allow_unsafe_hooks_file = true to override)",
                resolved_note(entry, path), strcmp(entry, path) ? path : "", reason);
        return HOOKD_REGISTRY_ERR_PERMISSIONS;
    }

    snprintf(dir, sizeof(dir), "%s", path);
    while ((slash = strrchr(dir, '/')) != NULL) {
        if (slash == dir)
            slash[1] = '\0'; /* reached "/" */
        else
            *slash = '\0';
        if (stat(dir, &st) != 0) {
            set_err(errstr, errstr_size, entry, "cannot stat directory %s: %s", dir,
                    strerror(errno));
            return HOOKD_REGISTRY_ERR_NOT_FOUND;
        }
        /* The handler's own directory must be strict; above it a sticky
         * shared directory cannot be used against us. */
        if ((reason = unsafe_reason(&st, true, !first, why, sizeof(why)))) {
            set_err(errstr, errstr_size, entry,
                    "refusing to load%s%s: directory %s %s (set allow_unsafe_hooks_file = true "
                    "to override)",
                    resolved_note(entry, path), strcmp(entry, path) ? path : "", dir, reason);
            return HOOKD_REGISTRY_ERR_PERMISSIONS;
        }
        first = false;
        if (strcmp(dir, "/") == 0)
            break;
    }
    return HOOKD_REGISTRY_OK;
}

static bool valid_name(const char *name)
{
    size_t i;
    if (!name || !name[0])
        return false;
    for (i = 0; name[i]; i++) {
        char c = name[i];
        if (i >= HOOKD_NAME_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/*
 * The ABI check, then the copy. Fields beyond what the handler's struct has
 * are left zero (NULL callbacks: "nothing to do").
 */
static hookd_registry_err_t adopt(registry_entry_t *e, const hookd_handler_t *h, const char *entry,
                                  char *errstr, size_t errstr_size)
{
    uint32_t major = HOOKD_ABI_VERSION_MAJOR(h->abi_version);
    size_t n;

    if (major != HOOKD_ABI_MAJOR) {
        set_err(errstr, errstr_size, entry,
                "ABI mismatch: handler built against ABI %u.%u, this worker supports %u.x",
                (unsigned)major, (unsigned)HOOKD_ABI_VERSION_MINOR(h->abi_version),
                (unsigned)HOOKD_ABI_MAJOR);
        return HOOKD_REGISTRY_ERR_ABI;
    }
    if (h->struct_size < HOOKD_HANDLER_SIZE_1_0) {
        set_err(errstr, errstr_size, entry,
                "ABI mismatch: struct_size %u is smaller than the ABI 1.0 struct (%zu bytes)",
                (unsigned)h->struct_size, (size_t)HOOKD_HANDLER_SIZE_1_0);
        return HOOKD_REGISTRY_ERR_ABI;
    }
    if (!valid_name(h->name)) {
        set_err(errstr, errstr_size, entry,
                "invalid handler: name must be 1-%d characters of [a-z0-9_]", HOOKD_NAME_MAX);
        return HOOKD_REGISTRY_ERR_ABI;
    }
    n = h->struct_size < sizeof(*h) ? h->struct_size : sizeof(*h);
    memset(&e->handler, 0, sizeof(e->handler));
    memcpy(&e->handler, h, n);
    return HOOKD_REGISTRY_OK;
}

static bool entry_is_file(const char *entry)
{
    size_t n = strlen(entry);
    return strchr(entry, '/') != NULL || (n > 3 && strcmp(entry + n - 3, ".so") == 0);
}

/* acme2certifier's hooks_file names a Python file; say what to use instead. */
static const char *python_hint(const char *entry)
{
    size_t n = strlen(entry);
    if (n > 3 && strcmp(entry + n - 3, ".py") == 0)
        return " (an acme2certifier Python hook file runs through the builtin python handler: "
               "hooks_file = python, python_hooks_module = <the .py file or module>)";
    return "";
}

static hookd_registry_err_t load_file(registry_entry_t *e, const char *entry,
                                      const hookd_config_t *cfg, char *errstr, size_t errstr_size)
{
    char resolved[PATH_MAX];
    const hookd_handler_t *h;
    hookd_registry_err_t rc;
    const char *dlerr;

    if (!realpath(entry, resolved)) {
        set_err(errstr, errstr_size, entry, "cannot open: %s%s", strerror(errno),
                python_hint(entry));
        return HOOKD_REGISTRY_ERR_NOT_FOUND;
    }
    if (!cfg->allow_unsafe_hooks_file) {
        rc = check_permissions(entry, resolved, errstr, errstr_size);
        if (rc != HOOKD_REGISTRY_OK)
            return rc;
    }

    dlerror();
    /* RTLD_LOCAL: two handlers may define the same helper names. RTLD_NOW:
     * an unresolved symbol is an error now, not a crash mid-event. */
    e->dl = dlopen(resolved, RTLD_NOW | RTLD_LOCAL);
    if (!e->dl) {
        dlerr = dlerror();
        set_err(errstr, errstr_size, entry, "not a loadable handler: %s%s",
                dlerr ? dlerr : "dlopen failed", python_hint(entry));
        return HOOKD_REGISTRY_ERR_DLOPEN;
    }
    dlerror();
    h = dlsym(e->dl, HOOKD_HANDLER_SYMBOL);
    if (!h) {
        set_err(errstr, errstr_size, entry,
                "no symbol '" HOOKD_HANDLER_SYMBOL "' (not an acme-hookd handler? define it with "
                "HOOKD_HANDLER_EXPORT)");
        return HOOKD_REGISTRY_ERR_SYMBOL;
    }
    rc = adopt(e, h, entry, errstr, errstr_size);
    if (rc != HOOKD_REGISTRY_OK)
        return rc;
    e->origin = strdup(resolved);
    if (!e->origin) {
        set_err(errstr, errstr_size, entry, "out of memory");
        return HOOKD_REGISTRY_ERR_DLOPEN;
    }
    return HOOKD_REGISTRY_OK;
}

static hookd_registry_err_t load_builtin(registry_entry_t *e, const char *entry, char *errstr,
                                         size_t errstr_size)
{
    const hookd_handler_t *h = builtin_find(entry);
    const char *const *names;
    char list[256] = "";
    size_t i, used = 0;
    hookd_registry_err_t rc;

    if (!h) {
        names = hookd_registry_builtin_names();
        for (i = 0; names[i] && used < sizeof(list); i++) {
            int n = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);
            if (n < 0)
                break;
            used += (size_t)n;
        }
        set_err(errstr, errstr_size, entry,
                "no builtin handler of that name (builtins: %s; a file path needs a '/')",
                list[0] ? list : "none");
        return HOOKD_REGISTRY_ERR_NOT_FOUND;
    }
    rc = adopt(e, h, entry, errstr, errstr_size);
    if (rc != HOOKD_REGISTRY_OK)
        return rc;
    if (asprintf(&e->origin, "builtin:%s", h->name) < 0) {
        e->origin = NULL;
        set_err(errstr, errstr_size, entry, "out of memory");
        return HOOKD_REGISTRY_ERR_NOT_FOUND;
    }
    return HOOKD_REGISTRY_OK;
}

hookd_registry_t *hookd_registry_load(const hookd_config_t *cfg, hookd_registry_err_t *err,
                                      char *errstr, size_t errstr_size)
{
    hookd_registry_t *r;
    hookd_registry_err_t rc = HOOKD_REGISTRY_OK;
    char *list = NULL, *save = NULL, *tok;

    if (errstr && errstr_size)
        errstr[0] = '\0';
    r = calloc(1, sizeof(*r));
    if (!r) {
        set_err(errstr, errstr_size, cfg && cfg->hooks_file ? cfg->hooks_file : "",
                "out of memory");
        rc = HOOKD_REGISTRY_ERR_NOT_FOUND;
        goto error;
    }
    r->chain.entries = r->chain_entries;

    if (cfg && cfg->hooks_file) {
        list = strdup(cfg->hooks_file);
        if (!list) {
            set_err(errstr, errstr_size, cfg->hooks_file, "out of memory");
            rc = HOOKD_REGISTRY_ERR_NOT_FOUND;
            goto error;
        }
        for (tok = strtok_r(list, ", \t\r\n", &save); tok;
             tok = strtok_r(NULL, ", \t\r\n", &save)) {
            registry_entry_t *e;
            hookd_chain_entry_t *c;

            if (r->count == HOOKD_CHAIN_MAX) {
                set_err(errstr, errstr_size, tok, "too many handlers (at most %d)",
                        HOOKD_CHAIN_MAX);
                rc = HOOKD_REGISTRY_ERR_LIMIT;
                goto error;
            }
            e = &r->entries[r->count];
            /* Counted before loading so that destroy releases a half-loaded
             * entry (an open handle) too. */
            r->count++;
            rc = entry_is_file(tok) ? load_file(e, tok, cfg, errstr, errstr_size)
                                    : load_builtin(e, tok, errstr, errstr_size);
            if (rc != HOOKD_REGISTRY_OK)
                goto error;

            c = &r->chain_entries[r->count - 1];
            c->name = e->handler.name;
            c->has_phase[HOOKD_PHASE_PRE] = e->handler.pre_hook != NULL;
            c->has_phase[HOOKD_PHASE_SUCCESS] = e->handler.success_hook != NULL;
            c->has_phase[HOOKD_PHASE_POST] = e->handler.post_hook != NULL;
        }
    }
    r->chain.count = r->count;
    free(list);
    if (err)
        *err = HOOKD_REGISTRY_OK;
    return r;

error:
    free(list);
    hookd_registry_destroy(r);
    if (err)
        *err = rc;
    return NULL;
}

void hookd_registry_destroy(hookd_registry_t *r)
{
    size_t i;
    if (!r)
        return;
    for (i = 0; i < r->count; i++) {
        free(r->entries[i].origin);
        if (r->entries[i].dl)
            dlclose(r->entries[i].dl);
    }
    free(r);
}

size_t hookd_registry_count(const hookd_registry_t *r)
{
    return r ? r->count : 0;
}

const hookd_handler_t *hookd_registry_handler(const hookd_registry_t *r, size_t i)
{
    return (r && i < r->count) ? &r->entries[i].handler : NULL;
}

const char *hookd_registry_origin(const hookd_registry_t *r, size_t i)
{
    return (r && i < r->count) ? r->entries[i].origin : NULL;
}

const hookd_chain_t *hookd_registry_chain(const hookd_registry_t *r)
{
    return r ? &r->chain : NULL;
}

bool hookd_registry_declares_key(const char *key, void *registry)
{
    const hookd_registry_t *r = registry;
    size_t i, k;

    if (!r || !key)
        return false;
    for (i = 0; i < r->count; i++) {
        const char *const *keys = r->entries[i].handler.config_keys;
        for (k = 0; keys && keys[k]; k++)
            if (strcasecmp(keys[k], key) == 0 || strcmp(keys[k], "*") == 0)
                return true;
    }
    return false;
}
