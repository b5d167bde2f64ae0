/* SPDX-License-Identifier: MIT */
/*
 * skeleton: the template to copy when writing an acme-hookd handler.
 *
 * It does what acme2certifier's skeleton_hooks.py does (log each call) plus
 * the two things every real handler needs: reading its own configuration
 * keys, and idempotency by event id.
 *
 * Build it out of tree (see README.md and Makefile next to this file):
 *
 *   cc -O2 -Wall -Wextra -fPIC -shared -fvisibility=hidden \
 *      $(pkg-config --cflags acme-hookd) -o my_handler.so skeleton.c
 *
 * and name the file in the [Hooks] section of the worker's configuration:
 *
 *   [Hooks]
 *   hooks_file = /usr/local/lib/acme-hookd/my_handler.so
 *   skeleton_marker_dir = /var/lib/acme-hookd/skeleton
 *
 * Rules of the contract (hook.h says more):
 *  - one instance per worker thread: state in `state` needs no locks;
 *  - strings are valid only during the call: copy what you keep;
 *  - return HOOKD_OK, HOOKD_FAIL (with hookd_set_error: the message goes
 *    into the result event) or HOOKD_RETRY (transient: the worker calls
 *    again after a backoff, and counts it as a failure when retries run
 *    out);
 *  - the same event can arrive twice (at-least-once delivery): use
 *    hookd_event_id() as the idempotency key of any side effect.
 */
/* strdup, open flags: POSIX.1-2008, also under a strict -std=c11. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <acme_hookd/hook.h>

/*
 * The [Hooks] keys this handler reads. Declaring them is required: the
 * worker treats any [Hooks] key that no loaded handler declares as a typo
 * and refuses to start. Prefix your keys with your handler's name.
 */
static const char *const skeleton_config_keys[] = {
    "skeleton_marker_dir", /* optional: directory of "already handled" markers */
    NULL};

/* Per-instance state: created in init, freed in fini, one per thread. */
typedef struct skeleton {
    char *marker_dir; /* NULL: no idempotency markers */
    unsigned long calls;
} skeleton_t;

/*
 * init: called once per worker thread before any event. Read and check the
 * configuration here, so a mistake stops the worker at start (with this
 * message) instead of failing every event later.
 */
static hookd_outcome_t skeleton_init(hookd_ctx_t *ctx, void **state)
{
    skeleton_t *sk = calloc(1, sizeof(*sk));
    const char *dir = hookd_config_get(ctx, "skeleton_marker_dir");
    struct stat st;

    if (!sk) {
        hookd_set_error(ctx, "out of memory");
        return HOOKD_FAIL;
    }
    if (dir && dir[0]) {
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            hookd_set_error(ctx, "skeleton_marker_dir '%s' is not a directory", dir);
            free(sk);
            return HOOKD_FAIL;
        }
        sk->marker_dir = strdup(dir);
        if (!sk->marker_dir) {
            hookd_set_error(ctx, "out of memory");
            free(sk);
            return HOOKD_FAIL;
        }
    }
    hookd_log(ctx, HOOKD_LOG_DEBUG, "skeleton: init (marker dir %s)",
              sk->marker_dir ? sk->marker_dir : "none");
    *state = sk;
    return HOOKD_OK;
}

/* fini: called once per instance at shutdown; release what init made. */
static void skeleton_fini(hookd_ctx_t *ctx, void *state)
{
    skeleton_t *sk = state;
    if (!sk)
        return;
    hookd_log(ctx, HOOKD_LOG_DEBUG, "skeleton: fini after %lu calls", sk->calls);
    free(sk->marker_dir);
    free(sk);
}

/*
 * Idempotency by event id: claim "<marker_dir>/<id>.<phase>" with O_EXCL.
 * Returns 1 if this is the first time (do the work), 0 if an earlier
 * delivery already did it, -1 on error. A real handler would keep this
 * record where its side effect lives (a database row keyed by the event
 * id, say) and write it in the same transaction as the effect; a marker
 * file only shows the idea.
 *
 * Event ids are arbitrary strings: anything but [A-Za-z0-9_-] is
 * hex-encoded so an id cannot climb out of the directory.
 */
static int skeleton_claim(hookd_ctx_t *ctx, skeleton_t *sk, const char *phase)
{
    static const char hex[] = "0123456789abcdef";
    const char *id = hookd_event_id(ctx);
    char name[512];
    size_t n = 0, i;
    int fd;

    if (!sk->marker_dir || !id)
        return 1;
    for (i = 0; id[i]; i++) {
        unsigned char c = (unsigned char)id[i];
        if (n + 4 > sizeof(name)) {
            /* Truncating would make two long ids share a marker. */
            hookd_log(ctx, HOOKD_LOG_WARNING, "skeleton: event id too long for a marker");
            return 1;
        }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '-') {
            name[n++] = (char)c;
        } else {
            name[n++] = '%';
            name[n++] = hex[c >> 4];
            name[n++] = hex[c & 15];
        }
    }
    name[n] = '\0';

    {
        char path[1024];
        if (snprintf(path, sizeof(path), "%s/%s.%s", sk->marker_dir, name, phase) >=
            (int)sizeof(path)) {
            hookd_set_error(ctx, "skeleton: marker path too long");
            return -1;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST)
            return 0;
        if (fd < 0) {
            hookd_set_error(ctx, "skeleton: cannot create %s: %s", path, strerror(errno));
            return -1;
        }
        close(fd);
    }
    return 1;
}

/*
 * pre_hook: before the enrollment. `csr` is base64 DER. Failing here stops
 * the enrollment (unless allow_pre_hook_failure is set).
 */
static hookd_outcome_t skeleton_pre(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                    const char *order_name, const char *csr)
{
    skeleton_t *sk = state;
    int claim;

    (void)csr; /* a real handler would parse it; see hooks/cn_dump */
    sk->calls++;
    hookd_log(ctx, HOOKD_LOG_DEBUG, "skeleton: pre_hook(%s, %s)", certificate_name, order_name);
    claim = skeleton_claim(ctx, sk, "pre");
    if (claim < 0)
        return HOOKD_RETRY; /* a full disk may clear up: try again later */
    if (claim == 0) {
        hookd_log(ctx, HOOKD_LOG_INFO, "skeleton: pre_hook of event %s already done",
                  hookd_event_id(ctx));
        return HOOKD_OK;
    }
    /* ... the real work goes here ... */
    return HOOKD_OK;
}

/*
 * success_hook: after a successful enrollment. `certificate` is the PEM
 * chain, `certificate_raw` the leaf as base64 DER, `poll_identifier` may be
 * NULL. Failing here skips the post hooks (unless allowed).
 */
static hookd_outcome_t skeleton_success(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                        const char *order_name, const char *csr,
                                        const char *certificate, const char *certificate_raw,
                                        const char *poll_identifier)
{
    skeleton_t *sk = state;
    int claim;

    (void)csr;
    (void)certificate;
    (void)certificate_raw;
    sk->calls++;
    hookd_log(ctx, HOOKD_LOG_DEBUG, "skeleton: success_hook(%s, %s, poll_identifier=%s)",
              certificate_name, order_name, poll_identifier ? poll_identifier : "null");
    claim = skeleton_claim(ctx, sk, "success");
    if (claim < 0)
        return HOOKD_RETRY;
    if (claim == 0)
        hookd_log(ctx, HOOKD_LOG_INFO, "skeleton: success_hook of event %s already done",
                  hookd_event_id(ctx));
    return HOOKD_OK;
}

/*
 * post_hook: after every attempt, successful or not. `error` is NULL after
 * a success, else the enrollment's error. A failure here is only logged by
 * default (allow_post_hook_failure defaults to true).
 */
static hookd_outcome_t skeleton_post(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                     const char *order_name, const char *csr, const char *error)
{
    skeleton_t *sk = state;
    int claim;

    (void)csr;
    sk->calls++;
    hookd_log(ctx, HOOKD_LOG_DEBUG, "skeleton: post_hook(%s, %s, error=%s)", certificate_name,
              order_name, error ? error : "null");
    claim = skeleton_claim(ctx, sk, "post");
    if (claim < 0)
        return HOOKD_RETRY;
    if (claim == 0)
        hookd_log(ctx, HOOKD_LOG_INFO, "skeleton: post_hook of event %s already done",
                  hookd_event_id(ctx));
    return HOOKD_OK;
}

/*
 * The handler: one const struct, exported as `hookd_handler`. Leave out
 * (NULL) the phases you do not need. HOOKD_HANDLER_HEADER fills in the ABI
 * version and struct size the worker checks when it loads the file.
 */
HOOKD_HANDLER_EXPORT = {
    HOOKD_HANDLER_HEADER,
    .name = "skeleton",
    .description = "template handler: logs every call, optional idempotency markers",
    .config_keys = skeleton_config_keys,
    .init = skeleton_init,
    .fini = skeleton_fini,
    .pre_hook = skeleton_pre,
    .success_hook = skeleton_success,
    .post_hook = skeleton_post,
};
