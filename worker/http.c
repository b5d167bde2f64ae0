/* SPDX-License-Identifier: MIT */
/*
 * The operations endpoint, served by libmicrohttpd from its own internal
 * thread so a busy or stuck main loop cannot delay a probe (and a stuck main
 * loop is exactly what /healthz must be able to report).
 *
 *   /healthz  200 while the main loop turned within HOOKD_HTTP_LIVE_MAX_AGE_MS
 *   /readyz   200 "ready", or 503 with what is missing (hookd_status_ready);
 *             both name the librdkafka the process runs with (a Kafka login
 *             problem is often a librdkafka version problem)
 *   /metrics  Prometheus text exposition format 0.0.4
 *
 * Only GET and HEAD are answered; the endpoint reads state, it changes none.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <librdkafka/rdkafka.h>
#include <microhttpd.h>

#include "log.h"
#include "metrics.h"

/*
 * The main loop polls in short steps and heartbeats on every turn; a gap of
 * several seconds means it is wedged (a handler blocking the loop, a
 * deadlock), and only then should the kubelet restart the container.
 */
#define HOOKD_HTTP_LIVE_MAX_AGE_MS 10000

#define HOOKD_HTTP_TEXT "text/plain; charset=utf-8"
#define HOOKD_HTTP_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"

struct hookd_http {
    struct MHD_Daemon *daemon; /* owned */
    int port;                  /* the port actually bound */
};

static enum MHD_Result hookd_http_send(struct MHD_Connection *conn, unsigned int status,
                                       const char *content_type, char *body, size_t len,
                                       enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    /* body now owned by resp when mode is MUST_FREE */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result hookd_http_text(struct MHD_Connection *conn, unsigned int status,
                                       const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum MHD_Result hookd_http_text(struct MHD_Connection *conn, unsigned int status,
                                       const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(buf))
        n = (int)sizeof(buf) - 1;
    return hookd_http_send(conn, status, HOOKD_HTTP_TEXT, buf, (size_t)n, MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result hookd_http_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                         const char *method, const char *version,
                                         const char *upload_data, size_t *upload_data_size,
                                         void **con_cls)
{
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(strlen("method not allowed\n"),
                                            (void *)"method not allowed\n", MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, HOOKD_HTTP_TEXT);
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
        MHD_destroy_response(resp);
        return ret;
    }

    if (strcmp(url, "/healthz") == 0) {
        if (hookd_status_live(HOOKD_HTTP_LIVE_MAX_AGE_MS))
            return hookd_http_text(conn, MHD_HTTP_OK, "ok\n");
        return hookd_http_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                               "main loop not turning (no heartbeat within %d ms)\n",
                               HOOKD_HTTP_LIVE_MAX_AGE_MS);
    }
    if (strcmp(url, "/readyz") == 0) {
        char why[256];
        if (hookd_status_ready(why, sizeof(why)))
            return hookd_http_text(conn, MHD_HTTP_OK, "ready (librdkafka %s)\n",
                                   rd_kafka_version_str());
        return hookd_http_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                               "not ready: %s (librdkafka %s)\n", why, rd_kafka_version_str());
    }
    if (strcmp(url, "/metrics") == 0) {
        size_t len = 0;
        char *body = hookd_metrics_render(&len);
        if (!body)
            return hookd_http_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return hookd_http_send(conn, MHD_HTTP_OK, HOOKD_HTTP_PROMETHEUS, body, len,
                               MHD_RESPMEM_MUST_FREE); /* body now owned by the response */
    }
    if (strcmp(url, "/") == 0)
        return hookd_http_text(conn, MHD_HTTP_OK, "acme-hookd: /healthz /readyz /metrics\n");
    return hookd_http_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* libmicrohttpd's own diagnostics go to our log, one record each. */
static void hookd_http_mhd_log(void *cls, const char *fmt, va_list ap) HOOKD_PRINTF(2, 0);
static void hookd_http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    hookd_log_warn("http: %s", buf);
}

/*
 * Split "ADDR:PORT", "[V6ADDR]:PORT" or ":PORT" into host (NULL: any
 * address) and port. Returns 0 or -1 with errstr.
 */
static int hookd_http_parse_listen(const char *listen, char *host, size_t host_size, int *port,
                                   char *errstr, size_t errstr_size)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon) {
        snprintf(errstr, errstr_size, "http listen '%s': expected ADDR:PORT or :PORT",
                 listen ? listen : "");
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || errno || p < 0 || p > 65535) {
        snprintf(errstr, errstr_size, "http listen '%s': port must be 0..65535", listen);
        return -1;
    }
    const char *h = listen;
    size_t hlen = (size_t)(colon - listen);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    } else if (memchr(h, ':', hlen)) {
        snprintf(errstr, errstr_size, "http listen '%s': write IPv6 addresses as [ADDR]:PORT",
                 listen);
        return -1;
    }
    if (hlen >= host_size) {
        snprintf(errstr, errstr_size, "http listen '%s': address too long", listen);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

static struct MHD_Daemon *hookd_http_daemon(const struct sockaddr *sa, unsigned int extra_flags,
                                            int port)
{
    unsigned int flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG | extra_flags;
    /* The logger goes first so that no option's complaint reaches MHD's own stderr writer. */
    if (sa)
        return MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, hookd_http_handle, NULL,
                                MHD_OPTION_EXTERNAL_LOGGER, hookd_http_mhd_log, NULL,
                                MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_LIMIT,
                                (unsigned int)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
                                MHD_OPTION_END);
    return MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, hookd_http_handle, NULL,
                            MHD_OPTION_EXTERNAL_LOGGER, hookd_http_mhd_log, NULL,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
}

hookd_http_t *hookd_http_start(const char *listen, char *errstr, size_t errstr_size)
{
    char host[256];
    int port = 0;
    struct addrinfo *ai = NULL;
    hookd_http_t *h = NULL;

    if (hookd_http_parse_listen(listen, host, sizeof(host), &port, errstr, errstr_size) != 0)
        goto error;
    hookd_metrics_set_librdkafka_version(rd_kafka_version_str());

    h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(errstr, errstr_size, "http: out of memory");
        goto error;
    }

    errno = 0; /* what bind() or listen() leaves tells why a start failed */
    if (host[0] == '\0' || strcmp(host, "*") == 0) {
        /*
         * Any address: both stacks where the kernel has IPv6, else IPv4
         * alone (containers often run with IPv6 disabled).
         */
        h->daemon = hookd_http_daemon(NULL, MHD_USE_DUAL_STACK, port);
        if (!h->daemon)
            h->daemon = hookd_http_daemon(NULL, 0, port);
    } else {
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        char portstr[8];
        snprintf(portstr, sizeof(portstr), "%d", port);
        int rc = getaddrinfo(host, portstr, &hints, &ai);
        if (rc != 0) {
            snprintf(errstr, errstr_size, "http listen '%s': %s", listen, gai_strerror(rc));
            goto error;
        }
        h->daemon =
            hookd_http_daemon(ai->ai_addr, ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0, port);
    }
    if (!h->daemon) {
        snprintf(errstr, errstr_size, "http listen '%s': cannot listen (%s)", listen,
                 errno ? strerror(errno) : "libmicrohttpd failed to start");
        goto error;
    }

    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? (int)info->port : port;
    if (ai)
        freeaddrinfo(ai);
    return h;

error:
    if (ai)
        freeaddrinfo(ai);
    if (h && h->daemon)
        MHD_stop_daemon(h->daemon);
    free(h);
    return NULL;
}

int hookd_http_port(const hookd_http_t *h)
{
    return h ? h->port : -1;
}

void hookd_http_stop(hookd_http_t *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
