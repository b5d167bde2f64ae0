/* SPDX-License-Identifier: MIT */
/*
 * Configuration: an INI file (acme2certifier-compatible [Hooks] section),
 * then environment variables over it, then validation.
 *
 * Kafka layer. What it produces, hookd_config_t, is declared in settings.h
 * (logic layer, data only), so that logic and host modules read the
 * settings without including this header or calling into config.c.
 *
 * Sections and keys are documented in the README (configuration reference)
 * and in deploy/acme-hookd.ini. librdkafka properties pass through from the
 * [kafka] section: `rdkafka.<prop>` (consumer and producer),
 * `consumer.rdkafka.<prop>`, `producer.rdkafka.<prop>`.
 */
#ifndef HOOKD_CONFIG_H
#define HOOKD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "settings.h" /* hookd_config_t: the data this module fills */

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Load `path` (NULL: defaults only), apply overrides from `envp` (NULL:
 * none), validate. On error returns NULL and writes every problem found,
 * one per line ("FILE:LINE: key 'x': reason"), into errstr.
 */
hookd_config_t *hookd_config_load(const char *path, char *const *envp, char *errstr,
                                  size_t errstr_size);

void hookd_config_destroy(hookd_config_t *cfg);

/*
 * Unknown [Hooks] keys are errors unless a loaded handler declares them.
 * `declared(key, opaque)` answers for the handlers. Returns 0 when every
 * key is known, else -1 with one line per unknown key in errstr.
 */
int hookd_config_check_hook_keys(const hookd_config_t *cfg,
                                 bool (*declared)(const char *key, void *opaque), void *opaque,
                                 char *errstr, size_t errstr_size);

/* Print the effective configuration, secrets masked (for --check-config). */
void hookd_config_dump(const hookd_config_t *cfg, FILE *out);

/* True for keys whose values must never be shown (passwords, keys, secrets). */
bool hookd_config_is_secret_key(const char *key);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_CONFIG_H */
