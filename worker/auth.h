/* SPDX-License-Identifier: MIT */
/*
 * Message authentication: HMAC-SHA256 over a canonical form of an event
 * (key, value and the headers that matter; documented in the README),
 * carried in a header with a key id. Several keys may be loaded at once for
 * rotation. Comparisons are constant time; keys are never logged.
 *
 * Also the optional X.509 checks done before the hooks: the CSR's own
 * signature, and for issued events that the certificate's public key is the
 * CSR's.
 */
#ifndef HOOKD_AUTH_H
#define HOOKD_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "settings.h"
#include "event.h"
#include "result.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hookd_auth hookd_auth_t;

/* The header that carries the signature (the same definition as auth.c's). */
#define HOOKD_AUTH_HEADER "hookd-signature"

/* Load the keys named by cfg (auth_keys). NULL with errstr on failure. */
hookd_auth_t *hookd_auth_create(const hookd_config_t *cfg, char *errstr, size_t errstr_size);
void hookd_auth_destroy(hookd_auth_t *a);

/* Is input verification required? */
bool hookd_auth_verify_enabled(const hookd_auth_t *a);
/* Are results to be signed? */
bool hookd_auth_sign_enabled(const hookd_auth_t *a);

/* 0 when the message carries a valid signature by a loaded key; -1 with a reason. */
int hookd_auth_verify(const hookd_auth_t *a, const void *key, size_t key_len, const void *value,
                      size_t value_len, const hookd_header_t *headers, size_t header_count,
                      char *errstr, size_t errstr_size);

/* Append the signature header(s) for this message to `headers`. 0, or -1 with a reason. */
int hookd_auth_sign(const hookd_auth_t *a, const void *key, size_t key_len, const void *value,
                    size_t value_len, hookd_headers_t *headers, char *errstr, size_t errstr_size);

/* The optional X.509 checks (cfg->verify_csr). 0, or -1 with a reason. */
int hookd_x509_check_event(const hookd_event_t *ev, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_AUTH_H */
