/* SPDX-License-Identifier: MIT */
/*
 * The operations endpoint: /healthz, /readyz, /metrics (libmicrohttpd, its
 * own thread). Off when [http] listen is unset.
 */
#ifndef HOOKD_HTTP_H
#define HOOKD_HTTP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hookd_http hookd_http_t;

/* listen: "ADDR:PORT" or ":PORT" (port 0 = any free port). NULL with errstr on failure. */
hookd_http_t *hookd_http_start(const char *listen, char *errstr, size_t errstr_size);
/* The port actually bound (useful with port 0). */
int hookd_http_port(const hookd_http_t *h);
void hookd_http_stop(hookd_http_t *h);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_HTTP_H */
