/* SPDX-License-Identifier: MIT */
/*
 * The operations endpoint: started on port 0, queried over a plain TCP
 * socket so nothing between the test and the server interprets the reply.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "metrics.h"

typedef struct reply {
    int status;
    char headers[4096];
    char *body;
} reply_t;

/* Send a raw HTTP/1.0 request and read the whole reply (the server closes). */
static void request(int port, const char *method, const char *path, reply_t *r)
{
    memset(r, 0, sizeof(*r));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect to port %d", port);
    char req[512];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n", method, path);
    cr_assert_eq(write(fd, req, (size_t)n), n);

    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t got = read(fd, buf + len, cap - len - 1);
        cr_assert_geq(got, 0);
        if (got == 0)
            break;
        len += (size_t)got;
    }
    buf[len] = '\0';
    close(fd);

    cr_assert_eq(sscanf(buf, "HTTP/1.%*d %d", &r->status), 1, "status line: %.40s", buf);
    char *sep = strstr(buf, "\r\n\r\n");
    cr_assert_not_null(sep, "no end of headers");
    size_t hlen = (size_t)(sep - buf);
    cr_assert_lt(hlen, sizeof(r->headers));
    memcpy(r->headers, buf, hlen);
    r->headers[hlen] = '\0';
    r->body = strdup(sep + 4);
    free(buf);
}

static const char *header(reply_t *r, const char *name)
{
    static char value[512];
    size_t n = strlen(name);
    for (const char *p = strstr(r->headers, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t l = e ? (size_t)(e - v) : strlen(v);
            if (l >= sizeof(value))
                l = sizeof(value) - 1;
            memcpy(value, v, l);
            value[l] = '\0';
            return value;
        }
    }
    return NULL;
}

static hookd_http_t *server;

static void start(void)
{
    hookd_metrics_reset();
    char err[256] = "";
    server = hookd_http_start("127.0.0.1:0", err, sizeof(err));
    cr_assert_not_null(server, "start: %s", err);
    cr_assert_gt(hookd_http_port(server), 0);
}

static void stop(void)
{
    hookd_http_stop(server);
    server = NULL;
}

TestSuite(http, .init = start, .fini = stop);

Test(http, healthz_follows_the_heartbeat)
{
    reply_t r;
    request(hookd_http_port(server), "GET", "/healthz", &r);
    cr_assert_eq(r.status, 503, "no heartbeat yet");
    free(r.body);

    hookd_status_heartbeat();
    request(hookd_http_port(server), "GET", "/healthz", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ok\n");
    free(r.body);
}

Test(http, readyz_reports_what_is_missing)
{
    reply_t r;
    hookd_status_set(HOOKD_STATUS_HOOKS_LOADED, true);
    request(hookd_http_port(server), "GET", "/readyz", &r);
    cr_assert_eq(r.status, 503);
    cr_assert_not_null(strstr(r.body, "consumer group not joined"), "body: %s", r.body);
    cr_assert_null(strstr(r.body, "hooks not loaded"), "body: %s", r.body);
    char rdkafka[64];
    snprintf(rdkafka, sizeof(rdkafka), " (librdkafka %s)\n", rd_kafka_version_str());
    cr_assert_not_null(strstr(r.body, rdkafka), "body: %s", r.body);
    free(r.body);

    hookd_status_set(HOOKD_STATUS_GROUP_JOINED, true);
    hookd_status_set(HOOKD_STATUS_BROKER_UP, true);
    request(hookd_http_port(server), "GET", "/readyz", &r);
    cr_assert_eq(r.status, 200);
    char ready[80];
    snprintf(ready, sizeof(ready), "ready (librdkafka %s)\n", rd_kafka_version_str());
    cr_assert_str_eq(r.body, ready);
    free(r.body);

    hookd_status_set(HOOKD_STATUS_PUBLISH_BLOCKED, true);
    request(hookd_http_port(server), "GET", "/readyz", &r);
    cr_assert_eq(r.status, 503);
    cr_assert_not_null(strstr(r.body, "publishing blocked"), "body: %s", r.body);
    free(r.body);
}

Test(http, metrics_exposition)
{
    hookd_metrics_event_consumed("acme.enrollment.issued");
    reply_t r;
    request(hookd_http_port(server), "GET", "/metrics", &r);
    cr_assert_eq(r.status, 200);
    const char *ct = header(&r, "Content-Type");
    cr_assert_not_null(ct);
    cr_assert_not_null(strstr(ct, "text/plain"), "content type %s", ct);
    cr_assert_not_null(strstr(ct, "version=0.0.4"), "content type %s", ct);
    char info[128];
    snprintf(info, sizeof(info),
             "hookd_build_info{version=\"" HOOKD_VERSION "\",librdkafka=\"%s\"} 1\n",
             rd_kafka_version_str());
    cr_assert_not_null(strstr(r.body, info), "body: %s", r.body);
    cr_assert_not_null(
        strstr(r.body, "hookd_events_consumed_total{type=\"acme.enrollment.issued\"} 1\n"));
    /* Content-Length (when sent) matches the body. */
    const char *cl = header(&r, "Content-Length");
    if (cl)
        cr_assert_eq((size_t)strtoul(cl, NULL, 10), strlen(r.body));
    free(r.body);
}

Test(http, head_has_no_body)
{
    hookd_status_heartbeat();
    reply_t r;
    request(hookd_http_port(server), "HEAD", "/healthz", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_empty(r.body);
    free(r.body);
}

Test(http, unknown_path_and_method)
{
    reply_t r;
    request(hookd_http_port(server), "GET", "/nope", &r);
    cr_assert_eq(r.status, 404);
    free(r.body);
    request(hookd_http_port(server), "POST", "/metrics", &r);
    cr_assert_eq(r.status, 405);
    const char *allow = header(&r, "Allow");
    cr_assert_not_null(allow);
    cr_assert_not_null(strstr(allow, "GET"));
    free(r.body);
}

Test(http, second_server_on_a_taken_port_fails_cleanly)
{
    char listen[64], err[256] = "";
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", hookd_http_port(server));
    hookd_http_t *other = hookd_http_start(listen, err, sizeof(err));
    cr_assert_null(other);
    cr_assert_str_not_empty(err);
}

/* Listen-address parsing does not need the fixture server. */
Test(http_listen, bad_addresses_are_refused)
{
    const char *bad[] = {"",
                         "8080",
                         "127.0.0.1:",
                         "127.0.0.1:65536",
                         "127.0.0.1:-1",
                         "127.0.0.1:80x",
                         "::1:0",
                         "no.such.host.invalid:0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        hookd_http_t *h = hookd_http_start(bad[i], err, sizeof(err));
        cr_assert_null(h, "'%s' accepted", bad[i]);
        cr_assert_str_not_empty(err, "'%s' without error text", bad[i]);
    }
    char err[256] = "";
    cr_assert_null(hookd_http_start(NULL, err, sizeof(err)));
    cr_assert_str_not_empty(err);
}

Test(http_listen, any_address_form)
{
    char err[256] = "";
    hookd_http_t *h = hookd_http_start(":0", err, sizeof(err));
    cr_assert_not_null(h, "%s", err);
    int port = hookd_http_port(h);
    cr_assert_gt(port, 0);
    hookd_metrics_reset();
    reply_t r;
    request(port, "GET", "/readyz", &r); /* reachable over IPv4 loopback */
    cr_assert_eq(r.status, 503);
    free(r.body);
    hookd_http_stop(h);
}

Test(http_listen, stop_null_is_harmless)
{
    hookd_http_stop(NULL);
    cr_assert_eq(hookd_http_port(NULL), -1);
}
