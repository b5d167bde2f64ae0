/* SPDX-License-Identifier: MIT */
/*
 * The integration test kit; see itkit.h for the method.
 */
#include "itkit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

extern char **environ;

int64_t itk_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t itk_now_ms(void)
{
    return itk_now_us() / 1000;
}

int itk_time_scale(void)
{
    const char *v = getenv("HOOKD_TEST_TIME_SCALE");
    long s = v ? strtol(v, NULL, 10) : 1;
    return s >= 1 && s <= 1000 ? (int)s : 1;
}

static size_t load_div(void)
{
    int s = itk_time_scale();
    return s >= 4 ? (size_t)s / 4 : 1;
}

size_t itk_load(size_t n)
{
    return n / load_div() > 0 ? n / load_div() : 1;
}

double itk_rate(double per_s)
{
    return per_s / (double)load_div();
}

void itk_fail(itk_run_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] FAIL: ", r ? r->name : "itk");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (r)
        r->failures++;
}

void itk_note(itk_run_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", r ? r->name : "itk");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "itk: out of memory\n");
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "itk: out of memory\n");
        abort();
    }
    return q;
}

/* ---- certificate material -------------------------------------------- */

static char *b64(const unsigned char *der, int len)
{
    char *out = xmalloc((size_t)(4 * ((len + 2) / 3) + 1));
    EVP_EncodeBlock((unsigned char *)out, der, len);
    return out;
}

int itk_pki_create(itk_pki_t *p, const char *cn, char *errstr, size_t errstr_size)
{
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    X509 *crt = NULL;
    X509_NAME *name = NULL;
    X509_EXTENSION *san = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    BIO *bio = NULL;
    unsigned char *der = NULL;
    int len;
    char sanv[300];
    BUF_MEM *mem;

    memset(p, 0, sizeof(*p));
    snprintf(sanv, sizeof(sanv), "DNS:%s, DNS:www.%s", cn, cn);

    if (!(key = EVP_EC_gen("P-256")))
        goto error;

    if (!(name = X509_NAME_new()) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0))
        goto error;

    /* The CSR: subject CN, SAN extension request, signed with its own key. */
    if (!(req = X509_REQ_new()) || !X509_REQ_set_version(req, 0) ||
        !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key))
        goto error;
    if (!(san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sanv)))
        goto error;
    if (!(exts = sk_X509_EXTENSION_new_null()) || !sk_X509_EXTENSION_push(exts, san))
        goto error;
    if (!X509_REQ_add_extensions(req, exts) || !X509_REQ_sign(req, key, EVP_sha256()))
        goto error;
    if ((len = i2d_X509_REQ(req, &der)) <= 0)
        goto error;
    p->csr_b64 = b64(der, len);
    OPENSSL_free(der);
    der = NULL;

    /* A self-signed certificate for the same key and names (the "issued" one). */
    if (!(crt = X509_new()) || !X509_set_version(crt, 2) ||
        !ASN1_INTEGER_set(X509_get_serialNumber(crt), 4242) || !X509_set_subject_name(crt, name) ||
        !X509_set_issuer_name(crt, name) || !X509_gmtime_adj(X509_getm_notBefore(crt), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(crt), 86400L * 30) || !X509_set_pubkey(crt, key) ||
        !X509_add_ext(crt, san, -1) || !X509_sign(crt, key, EVP_sha256()))
        goto error;
    if ((len = i2d_X509(crt, &der)) <= 0)
        goto error;
    p->cert_b64 = b64(der, len);
    OPENSSL_free(der);
    der = NULL;
    if (!(bio = BIO_new(BIO_s_mem())) || !PEM_write_bio_X509(bio, crt))
        goto error;
    BIO_get_mem_ptr(bio, &mem);
    p->cert_pem = xmalloc(mem->length + 1);
    memcpy(p->cert_pem, mem->data, mem->length);
    p->cert_pem[mem->length] = '\0';

    BIO_free(bio);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free); /* san now owned by exts */
    X509_free(crt);
    X509_REQ_free(req);
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    return 0;

error:
    snprintf(errstr, errstr_size, "OpenSSL failed to build the test CSR/certificate");
    BIO_free(bio);
    if (exts)
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    else
        X509_EXTENSION_free(san);
    X509_free(crt);
    X509_REQ_free(req);
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    itk_pki_destroy(p);
    return -1;
}

void itk_pki_destroy(itk_pki_t *p)
{
    free(p->csr_b64);
    free(p->cert_pem);
    free(p->cert_b64);
    memset(p, 0, sizeof(*p));
}

/* ---- mock cluster ----------------------------------------------------- */

itk_cluster_t *itk_cluster_create(int brokers, char *errstr, size_t errstr_size)
{
    itk_cluster_t *cl = calloc(1, sizeof(*cl));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!cl) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    /* The mock cluster needs a client handle to live in; a producer that is never used. */
    cl->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (!cl->rk) {
        rd_kafka_conf_destroy(conf);
        free(cl);
        return NULL;
    }
    conf = NULL; /* now owned by rk */
    cl->mc = rd_kafka_mock_cluster_new(cl->rk, brokers);
    if (!cl->mc) {
        snprintf(errstr, errstr_size, "rd_kafka_mock_cluster_new failed");
        rd_kafka_destroy(cl->rk);
        free(cl);
        return NULL;
    }
    cl->brokers = brokers;
    snprintf(cl->bootstraps, sizeof(cl->bootstraps), "%s",
             rd_kafka_mock_cluster_bootstraps(cl->mc));
    return cl;
}

int itk_cluster_topic(itk_cluster_t *cl, const char *topic, int partitions)
{
    return rd_kafka_mock_topic_create(cl->mc, topic, partitions, 1) ? -1 : 0;
}

void itk_cluster_destroy(itk_cluster_t *cl)
{
    if (!cl)
        return;
    rd_kafka_mock_cluster_destroy(cl->mc);
    rd_kafka_destroy(cl->rk);
    free(cl);
}

/* ---- subprocesses ----------------------------------------------------- */

int itk_proc_start(itk_proc_t *p, const char *name, char *const argv[], const char *log)
{
    /*
     * A clean environment: the worker reads overrides from the environment,
     * and whatever the developer has exported must not change the test.
     * Sanitizer settings and the library path pass through.
     */
    static const char *const keep[] = {"PATH=",         "HOME=",          "LD_LIBRARY_PATH=",
                                       "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=",
                                       "TSAN_OPTIONS=", "TMPDIR=",        NULL};
    char *env[16];
    int n = 0, fd;
    pid_t pid;

    for (char **e = environ; *e && n < 15; e++)
        for (int k = 0; keep[k]; k++)
            if (strncmp(*e, keep[k], strlen(keep[k])) == 0)
                env[n++] = *e;
    env[n] = NULL;

    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->log, sizeof(p->log), "%s", log);
    fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(fd);
        return -1;
    }
    if (pid == 0) {
        /* Never outlive the test: killed with it, whatever happens to it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        dup2(fd, 2);
        execve(argv[0], argv, env);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    p->pid = pid;
    p->expect_alive = true;
    return 0;
}

bool itk_proc_poll(itk_proc_t *p)
{
    int st;
    if (p->pid <= 0 || p->exited)
        return p->exited;
    if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
        p->exited = true;
        p->status = st;
    }
    return p->exited;
}

bool itk_proc_wait(itk_proc_t *p, int timeout_ms)
{
    int64_t deadline = itk_now_ms() + (int64_t)timeout_ms * itk_time_scale();
    /* waitpid has no timeout; poll the child's state in short steps. */
    while (!itk_proc_poll(p) && itk_now_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return p->exited;
}

void itk_proc_signal(itk_proc_t *p, int sig)
{
    if (p->pid > 0 && !p->exited)
        kill(p->pid, sig);
}

const char *itk_proc_status_str(const itk_proc_t *p, char *buf, size_t size)
{
    if (!p->exited)
        snprintf(buf, size, "running");
    else if (WIFEXITED(p->status))
        snprintf(buf, size, "exit %d", WEXITSTATUS(p->status));
    else if (WIFSIGNALED(p->status))
        snprintf(buf, size, "signal %d", WTERMSIG(p->status));
    else
        snprintf(buf, size, "status 0x%x", p->status);
    return buf;
}

void itk_proc_print_tail(const itk_proc_t *p, int lines)
{
    FILE *f = fopen(p->log, "r");
    char **ring, buf[2048];
    int n = 0;
    if (!f)
        return;
    ring = calloc((size_t)lines, sizeof(*ring));
    while (ring && fgets(buf, sizeof(buf), f)) {
        free(ring[n % lines]);
        ring[n % lines] = strdup(buf);
        n++;
    }
    fclose(f);
    fprintf(stderr, "---- last lines of %s (%s) ----\n", p->log, p->name);
    for (int i = n > lines ? n - lines : 0; ring && i < n; i++)
        fputs(ring[i % lines] ? ring[i % lines] : "", stderr);
    fprintf(stderr, "---- end of %s ----\n", p->name);
    for (int i = 0; ring && i < lines; i++)
        free(ring[i]);
    free(ring);
}

/* ---- the run ---------------------------------------------------------- */

const char *itk_kind_name(itk_kind_t k)
{
    static const char *const names[] = {"good", "hook_fail", "invalid_with_id", "invalid_no_id",
                                        "oversized"};
    return k < ITK_KIND_COUNT ? names[k] : "?";
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    itk_run_t *r = opaque;
    size_t idx = (size_t)(uintptr_t)m->_private;
    itk_input_t *in;
    int32_t p;
    (void)rk;
    if (idx == 0 || idx > r->n_in)
        return;
    in = &r->in[idx - 1];
    if (m->err) {
        in->failed_delivery = true;
        r->delivery_errors++;
        fprintf(stderr, "[%s] input delivery failed: %s\n", r->name, rd_kafka_err2str(m->err));
        return;
    }
    p = m->partition;
    in->partition = p;
    in->offset = m->offset;
    if (p < 0 || p >= ITK_MAX_PARTS || m->offset < 0)
        return;
    if ((size_t)m->offset >= r->by_off_cap[p]) {
        size_t ncap = r->by_off_cap[p] ? r->by_off_cap[p] : 1024;
        while (ncap <= (size_t)m->offset)
            ncap *= 2;
        r->by_off[p] = xrealloc(r->by_off[p], ncap * sizeof(size_t));
        memset(r->by_off[p] + r->by_off_cap[p], 0, (ncap - r->by_off_cap[p]) * sizeof(size_t));
        r->by_off_cap[p] = ncap;
    }
    r->by_off[p][m->offset] = idx;
    if (m->offset + 1 > r->end[p])
        r->end[p] = m->offset + 1;
}

static rd_kafka_t *mk_client(rd_kafka_type_t type, const char *bootstraps, const char *const *kv,
                             itk_run_t *r, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    /*
     * Quiet (the scenarios provoke connection errors on purpose), and a short
     * socket timeout: the mock keeps a downed broker's connections open
     * without answering, which would otherwise stall requests for 60 s.
     */
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "log_level", "2", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "socket.timeout.ms", "10000", errstr, errstr_size))
        goto error;
    for (; kv && kv[0]; kv += 2)
        if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr, errstr_size))
            goto error;
    rd_kafka_conf_set_opaque(conf, r);
    if (type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rk = rd_kafka_new(type, conf, errstr, errstr_size);
    if (!rk)
        goto error;
    conf = NULL; /* now owned by rk */
    return rk;
error:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

itk_run_t *itk_run_create(const char *name, const char *bootstraps, itk_cluster_t *cl, int in_parts,
                          int res_parts, int dlq_parts, const char *worker_bin, char *errstr,
                          size_t errstr_size)
{
    static const char *const pconf[] = {
        "enable.idempotence", "true",    "linger.ms", "2", "message.timeout.ms", "120000",
        "message.max.bytes",  "2000000", NULL};
    itk_run_t *r = calloc(1, sizeof(*r));
    rd_kafka_topic_partition_list_t *asg = NULL;
    char rgroup[160];
    const char *rconf[] = {"group.id",
                           rgroup,
                           "enable.auto.commit",
                           "false",
                           "enable.partition.eof",
                           "false",
                           "fetch.wait.max.ms",
                           "20",
                           "auto.offset.reset",
                           "earliest",
                           NULL};
    const char *oconf[] = {"group.id", NULL, "enable.auto.commit", "false", NULL};
    const char *tmp = getenv("TMPDIR");

    if (!r) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (in_parts > ITK_MAX_PARTS || res_parts > ITK_MAX_PARTS || dlq_parts > ITK_MAX_PARTS) {
        snprintf(errstr, errstr_size, "too many partitions");
        free(r);
        return NULL;
    }
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->tag, sizeof(r->tag), "hkit-%s-%ld", name, (long)getpid());
    snprintf(r->bootstraps, sizeof(r->bootstraps), "%s", bootstraps);
    r->cluster = cl;
    r->in_parts = in_parts;
    r->res_parts = res_parts;
    r->dlq_parts = dlq_parts;
    r->worker_bin = worker_bin;
    r->sample_every_ms = 200;
    snprintf(r->in_topic, sizeof(r->in_topic), "%s.in", r->tag);
    snprintf(r->res_topic, sizeof(r->res_topic), "%s.result", r->tag);
    snprintf(r->dlq_topic, sizeof(r->dlq_topic), "%s.dlq", r->tag);
    snprintf(r->group, sizeof(r->group), "%s.group", r->tag);
    snprintf(rgroup, sizeof(rgroup), "%s.reader", r->tag);
    oconf[1] = r->group;
    for (int p = 0; p < ITK_MAX_PARTS; p++)
        r->committed_max[p] = -1;

    snprintf(r->workdir, sizeof(r->workdir), "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", r->tag);
    if (!mkdtemp(r->workdir)) {
        snprintf(errstr, errstr_size, "mkdtemp %s: %s", r->workdir, strerror(errno));
        goto error;
    }
    if (itk_pki_create(&r->pki, "hkit.example.org", errstr, errstr_size))
        goto error;

    if (cl && (itk_cluster_topic(cl, r->in_topic, in_parts) ||
               itk_cluster_topic(cl, r->res_topic, res_parts) ||
               itk_cluster_topic(cl, r->dlq_topic, dlq_parts))) {
        snprintf(errstr, errstr_size, "cannot create the mock topics");
        goto error;
    }

    if (!(r->producer = mk_client(RD_KAFKA_PRODUCER, bootstraps, pconf, r, errstr, errstr_size)))
        goto error;
    if (!(r->reader = mk_client(RD_KAFKA_CONSUMER, bootstraps, rconf, r, errstr, errstr_size)))
        goto error;
    rd_kafka_poll_set_consumer(r->reader);
    if (!(r->offq = mk_client(RD_KAFKA_CONSUMER, bootstraps, oconf, r, errstr, errstr_size)))
        goto error;

    /* The reader follows both output topics from their beginning, outside any group. */
    asg = rd_kafka_topic_partition_list_new(res_parts + dlq_parts);
    for (int p = 0; p < res_parts; p++)
        rd_kafka_topic_partition_list_add(asg, r->res_topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    for (int p = 0; p < dlq_parts; p++)
        rd_kafka_topic_partition_list_add(asg, r->dlq_topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(r->reader, asg)) {
        snprintf(errstr, errstr_size, "cannot assign the reader");
        goto error;
    }
    rd_kafka_topic_partition_list_destroy(asg);
    return r;

error:
    if (asg)
        rd_kafka_topic_partition_list_destroy(asg);
    itk_run_destroy(r);
    return NULL;
}

void itk_run_destroy(itk_run_t *r)
{
    char cmd[600];
    if (!r)
        return;
    for (int i = 0; i < r->n_workers; i++) {
        if (r->workers[i].pid > 0 && !r->workers[i].exited) {
            r->workers[i].expect_alive = false;
            itk_proc_signal(&r->workers[i], SIGKILL);
            itk_proc_wait(&r->workers[i], 5000);
        }
    }
    if (r->reader) {
        rd_kafka_consumer_close(r->reader);
        rd_kafka_destroy(r->reader);
    }
    if (r->offq) {
        rd_kafka_consumer_close(r->offq);
        rd_kafka_destroy(r->offq);
    }
    if (r->producer) {
        rd_kafka_flush(r->producer, 2000);
        rd_kafka_destroy(r->producer);
    }
    for (size_t i = 0; i < r->n_in; i++)
        free(r->in[i].value);
    free(r->in);
    for (int p = 0; p < ITK_MAX_PARTS; p++)
        free(r->by_off[p]);
    free(r->samples);
    free(r->outs);
    itk_pki_destroy(&r->pki);
    /* Keep the work directory (configs, worker logs) when something failed. */
    if (r->workdir[0] && r->failures == 0 && !getenv("HKIT_KEEP")) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->workdir);
        if (system(cmd) != 0)
            fprintf(stderr, "[%s] could not remove %s\n", r->name, r->workdir);
    } else if (r->workdir[0]) {
        fprintf(stderr, "[%s] work directory kept: %s\n", r->name, r->workdir);
    }
    free(r);
}

/* ---- producing inputs -------------------------------------------------- */

/* Append `s` JSON-escaped to buf (which has room: callers size for 2x + 6 per byte). */
static size_t json_esc(char *out, const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (c < 0x20) {
            n += (size_t)sprintf(out + n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return n;
}

static void rfc3339_now(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    char base[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%.20s.%06dZ", base, (int)(ts.tv_nsec / 1000));
}

/*
 * Build a valid event of `type` (acme.enrollment.requested/issued/failed).
 * `cert_pad`: extra bytes of certificate (for the oversized kind).
 */
static char *build_event(itk_run_t *r, size_t seq, const char *type, const char *csr,
                         size_t cert_pad, size_t *len)
{
    char ts[64];
    const char *cert = r->pki.cert_pem;
    size_t need = strlen(csr) + 2 * strlen(cert) + strlen(r->pki.cert_b64) + cert_pad * 2 + 1024;
    char *buf = xmalloc(need), *certesc = xmalloc(2 * strlen(cert) + cert_pad * 2 + 16);
    size_t n, cn;

    rfc3339_now(ts, sizeof(ts));
    cn = json_esc(certesc, cert);
    if (cert_pad) {
        /* Repeat the PEM block until the padding is reached: still a PEM chain. */
        while (cn < cert_pad) {
            size_t add = json_esc(certesc + cn, cert);
            cn += add;
        }
    }
    n = (size_t)snprintf(buf, need,
                         "{\"type\":\"%s\",\"id\":\"%s-%zu\",\"time\":\"%s\","
                         "\"certificate_name\":\"cert-%zu\",\"order_name\":\"order-%zu\","
                         "\"csr\":\"%s\"",
                         type, r->tag, seq, ts, seq, seq, csr);
    if (strcmp(type, "acme.enrollment.issued") == 0)
        n += (size_t)snprintf(buf + n, need - n,
                              ",\"certificate\":\"%s\",\"certificate_raw\":\"%s\","
                              "\"poll_identifier\":\"poll-%zu\"",
                              certesc, r->pki.cert_b64, seq);
    else if (strcmp(type, "acme.enrollment.failed") == 0)
        n += (size_t)snprintf(buf + n, need - n,
                              ",\"error\":\"urn:ietf:params:acme:error:serverInternal\"");
    n += (size_t)snprintf(buf + n, need - n, "}");
    free(certesc);
    *len = n;
    return buf;
}

static size_t produce_raw(itk_run_t *r, itk_kind_t kind, const char *dlq_class, char *value,
                          size_t len, int32_t partition, const char *key_as)
{
    size_t seq = r->n_in;
    itk_input_t *in;
    char key[48], hdr[32];
    rd_kafka_resp_err_t err;

    if (r->n_in == r->cap_in) {
        r->cap_in = r->cap_in ? r->cap_in * 2 : 1024;
        r->in = xrealloc(r->in, r->cap_in * sizeof(*r->in));
    }
    in = &r->in[r->n_in++];
    memset(in, 0, sizeof(*in));
    in->kind = kind;
    in->dlq_class = dlq_class;
    in->partition = -1;
    in->offset = -1;
    in->first_result.partition = in->first_dlq.partition = -1;
    in->value = value; /* kept: the dead letter must carry it untouched */
    in->len = len;
    if (partition < 0)
        partition = (int32_t)(seq % (size_t)r->in_parts);
    if (key_as != NULL)
        snprintf(key, sizeof(key), "order-%s", key_as);
    else
        snprintf(key, sizeof(key), "order-%zu", seq);
    snprintf(hdr, sizeof(hdr), "%zu", seq);
    for (;;) {
        err = rd_kafka_producev(r->producer, RD_KAFKA_V_TOPIC(r->in_topic),
                                RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_KEY(key, strlen(key)),
                                RD_KAFKA_V_VALUE(value, len),
                                RD_KAFKA_V_HEADER("x-hkit-seq", hdr, -1),
                                RD_KAFKA_V_OPAQUE((void *)(uintptr_t)(seq + 1)), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(r->producer, 50);
    }
    if (err) {
        in->failed_delivery = true;
        r->delivery_errors++;
        fprintf(stderr, "[%s] produce failed: %s\n", r->name, rd_kafka_err2str(err));
    }
    rd_kafka_poll(r->producer, 0);
    return seq;
}

int itk_run_tiers(itk_run_t *r, const char *delays)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", delays);
    for (char *d = strtok_r(buf, ", ", &save); d; d = strtok_r(NULL, ", ", &save)) {
        if (r->n_tiers == (int)(sizeof(r->tier_topics) / sizeof(r->tier_topics[0])))
            return -1;
        snprintf(r->tier_topics[r->n_tiers], sizeof(r->tier_topics[0]), "%s.retry.%s", r->in_topic,
                 d);
        if (r->cluster && itk_cluster_topic(r->cluster, r->tier_topics[r->n_tiers], r->in_parts))
            return -1;
        r->n_tiers++;
    }
    return 0;
}

static size_t produce_typed(itk_run_t *r, itk_kind_t kind, const char *type, const char *csr_b64,
                            int32_t partition, const char *key_as)
{
    size_t len;
    char *v = build_event(r, r->n_in, type, csr_b64 ? csr_b64 : r->pki.csr_b64, 0, &len);
    return produce_raw(r, kind, kind == ITK_HOOK_FAIL ? "hook_failed" : NULL, v, len, partition,
                       key_as);
}

size_t itk_produce_typed(itk_run_t *r, itk_kind_t kind, const char *type, const char *csr_b64,
                         int32_t partition)
{
    return produce_typed(r, kind, type, csr_b64, partition, NULL);
}

size_t itk_produce_after(itk_run_t *r, itk_kind_t kind, const char *type, size_t earlier,
                         int32_t partition)
{
    char seq[24];
    snprintf(seq, sizeof(seq), "%zu", earlier);
    return produce_typed(r, kind, type, NULL, partition, seq);
}

size_t itk_produce(itk_run_t *r, itk_kind_t kind, int32_t partition)
{
    static const char *const types[] = {"acme.enrollment.requested", "acme.enrollment.issued",
                                        "acme.enrollment.failed"};
    size_t seq = r->n_in, len = 0;
    char *v = NULL;

    switch (kind) {
    case ITK_GOOD:
    case ITK_HOOK_FAIL:
        return itk_produce_typed(r, kind, types[seq % 3], NULL, partition);
    case ITK_INVALID_ID:
        /* JSON object with a string id, no csr and no certificate_name: schema-invalid. */
        v = xmalloc(256);
        len = (size_t)snprintf(v, 256,
                               "{\"type\":\"acme.enrollment.requested\",\"id\":\"%s-%zu\","
                               "\"time\":\"2026-01-01T00:00:00Z\",\"order_name\":\"order-%zu\"}",
                               r->tag, seq, seq);
        break;
    case ITK_INVALID_NOID:
        /* Four flavours of garbage in turn; the id text is there for the judge only. */
        switch (r->noid_count++ % 4) {
        case 0: /* truncated JSON */
            v = xmalloc(256);
            len = (size_t)snprintf(v, 256,
                                   "{\"type\": \"acme.enrollment.requested\", \"id\": \"%s-%zu\", "
                                   "\"csr\": ",
                                   r->tag, seq);
            break;
        case 1: /* a tombstone: no value at all */
            v = NULL;
            len = 0;
            break;
        case 2: /* bytes that are not UTF-8 */
            v = xmalloc(256);
            len = (size_t)snprintf(v, 256, "\xff\xfe\x01 %s-%zu \x80\x81", r->tag, seq);
            break;
        default: /* JSON, but an array */
            v = xmalloc(256);
            len = (size_t)snprintf(v, 256, "[\"%s-%zu\", 42]", r->tag, seq);
            break;
        }
        break;
    case ITK_OVERSIZED:
        v = build_event(r, seq, "acme.enrollment.issued", r->pki.csr_b64, 48 * 1024, &len);
        break;
    default:
        return (size_t)-1;
    }
    return produce_raw(r, kind, "invalid_event", v, len, partition, NULL);
}

int itk_flush(itk_run_t *r, int timeout_ms)
{
    int64_t deadline = itk_now_ms() + (int64_t)timeout_ms * itk_time_scale();
    while (rd_kafka_outq_len(r->producer) > 0 && itk_now_ms() < deadline)
        itk_pump(r, 20);
    return rd_kafka_outq_len(r->producer) > 0 ? -1 : 0;
}

/* ---- reading outcomes -------------------------------------------------- */

/* Find "<tag>-<digits>" in buf; store the distinct seqs found (up to 4). */
static int scan_ids(const itk_run_t *r, const void *buf, size_t len, size_t *seqs, int n, int max)
{
    size_t tl = strlen(r->tag);
    const char *p = buf, *end = (const char *)buf + len;
    while (p && p < end) {
        const char *hit = memmem(p, (size_t)(end - p), r->tag, tl);
        size_t seq = 0;
        const char *d;
        if (!hit)
            break;
        d = hit + tl;
        p = hit + 1;
        if (d >= end || *d != '-' || d + 1 >= end || *(d + 1) < '0' || *(d + 1) > '9')
            continue;
        for (d++; d < end && *d >= '0' && *d <= '9'; d++)
            seq = seq * 10 + (size_t)(*d - '0');
        int known = 0;
        for (int i = 0; i < n; i++)
            known |= seqs[i] == seq;
        if (!known && n < max)
            seqs[n++] = seq;
    }
    return n;
}

static bool hdr_get(rd_kafka_headers_t *h, const char *name, char *out, size_t size)
{
    const void *v;
    size_t len;
    if (!h || rd_kafka_header_get_last(h, name, &v, &len))
        return false;
    if (!v)
        len = 0;
    if (len >= size)
        len = size - 1;
    memcpy(out, v ? v : "", len);
    out[len] = '\0';
    return true;
}

/* FNV-1a over the value and every header of a record. */
static uint64_t record_hash(const rd_kafka_message_t *m, rd_kafka_headers_t *h)
{
    uint64_t x = 1469598103934665603ULL;
    const unsigned char *p = m->payload;
    for (size_t i = 0; p && i < m->len; i++)
        x = (x ^ p[i]) * 1099511628211ULL;
    for (size_t i = 0; h; i++) {
        const char *name;
        const void *v;
        size_t len;
        if (rd_kafka_header_get_all(h, i, &name, &v, &len))
            break;
        for (const char *c = name; *c; c++)
            x = (x ^ (unsigned char)*c) * 1099511628211ULL;
        for (size_t k = 0; v && k < len; k++)
            x = (x ^ ((const unsigned char *)v)[k]) * 1099511628211ULL;
        x = (x ^ 0xff) * 1099511628211ULL;
    }
    return x;
}

static void record_out(itk_run_t *r, size_t seq, bool dlq, int32_t partition, int64_t offset,
                       uint64_t hash)
{
    if (r->n_outs == r->cap_outs) {
        r->cap_outs = r->cap_outs ? r->cap_outs * 2 : 1024;
        r->outs = xrealloc(r->outs, r->cap_outs * sizeof(*r->outs));
    }
    r->outs[r->n_outs++] = (itk_out_t){seq, dlq, partition, offset, hash};
}

/* The input position a result names (input.partition / input.offset). */
static void result_input_pos(const itk_run_t *r, const rd_kafka_message_t *m, int32_t *partition,
                             int64_t *offset)
{
    cJSON *j = m->payload ? cJSON_ParseWithLength(m->payload, m->len) : NULL;
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(j, "input");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(in, "partition");
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(in, "offset");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(in, "topic");
    bool tier = false;
    *partition = -1;
    *offset = -1;
    /* An event run again out of a retry tier names the tier record it was consumed from: not
     * an input position (the event is attributed by its id). */
    for (int i = 0; i < r->n_tiers && cJSON_IsString(t); i++)
        tier |= strcmp(t->valuestring, r->tier_topics[i]) == 0;
    if (!tier && cJSON_IsNumber(p) && cJSON_IsNumber(o)) {
        *partition = (int32_t)p->valuedouble;
        *offset = (int64_t)o->valuedouble;
    }
    cJSON_Delete(j);
}

static void on_result(itk_run_t *r, const rd_kafka_message_t *m)
{
    int32_t named_p;
    int64_t named_o;
    rd_kafka_headers_t *h = NULL;
    size_t seqs[4];
    int n = 0, verdict = -1; /* 0 completed, 1 failed */
    char buf[256];
    itk_input_t *in;

    rd_kafka_message_headers(m, &h);
    if (m->payload)
        n = scan_ids(r, m->payload, m->len, seqs, n, 4);
    for (size_t i = 0; h; i++) {
        const char *name;
        const void *v;
        size_t len;
        if (rd_kafka_header_get_all(h, i, &name, &v, &len))
            break;
        if (v)
            n = scan_ids(r, v, len, seqs, n, 4);
    }
    if (n == 0) {
        r->unattributed_results++;
        return;
    }
    if (n > 1) {
        r->ambiguous_results++;
        return;
    }
    if (seqs[0] >= r->n_in) {
        r->unattributed_results++;
        return;
    }
    in = &r->in[seqs[0]];
    if (hdr_get(h, "ce_type", buf, sizeof(buf))) {
        if (strstr(buf, "failed"))
            verdict = 1;
        else if (strstr(buf, "completed"))
            verdict = 0;
    }
    if (verdict < 0 && m->payload) {
        cJSON *j = cJSON_ParseWithLength(m->payload, m->len);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "verdict");
        if (cJSON_IsString(v))
            verdict = strcmp(v->valuestring, "failed") == 0      ? 1
                      : strcmp(v->valuestring, "completed") == 0 ? 0
                                                                 : -1;
        cJSON_Delete(j);
    }
    result_input_pos(r, m, &named_p, &named_o);
    record_out(r, (size_t)(in - r->in), false, named_p, named_o, record_hash(m, h));
    in->results++;
    if (in->results == 1)
        in->result_hash = record_hash(m, h);
    else if (record_hash(m, h) == in->result_hash)
        in->results_same++;
    if (verdict == 0)
        in->results_completed++;
    else if (verdict == 1)
        in->results_failed++;
    else
        in->results_unknown++;
    if (in->first_result.partition < 0) {
        in->first_result.partition = m->partition;
        in->first_result.offset = m->offset;
    }
    for (int w = 0; w < r->n_workers; w++)
        if (r->worker_ids[w][0] && m->payload &&
            memmem(m->payload, m->len, r->worker_ids[w], strlen(r->worker_ids[w])))
            in->results_by_worker[w]++;
}

static void on_dlq(itk_run_t *r, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    char topic[128], part[32], off[32], msg[64], key[48], seqh[32];
    itk_input_t *in = NULL;
    bool connect = false;
    int32_t named_p = -1;
    int64_t named_o = -1;

    rd_kafka_message_headers(m, &h);
    if (hdr_get(h, "__connect.errors.topic", topic, sizeof(topic)) &&
        hdr_get(h, "__connect.errors.partition", part, sizeof(part)) &&
        hdr_get(h, "__connect.errors.offset", off, sizeof(off))) {
        long p = strtol(part, NULL, 10);
        long long o = strtoll(off, NULL, 10);
        if (strcmp(topic, r->in_topic) == 0 && p >= 0 && o >= 0) {
            named_p = (int32_t)p;
            named_o = (int64_t)o;
        }
        if (strcmp(topic, r->in_topic) == 0 && p >= 0 && p < r->in_parts && o >= 0 &&
            (size_t)o < r->by_off_cap[p] && r->by_off[p][o]) {
            in = &r->in[r->by_off[p][o] - 1];
            connect = true;
        }
    }
    /* A dead letter after the last retry tier names the tier record; its input is the origin. */
    for (int t = 0;
         !in && t < r->n_tiers && hdr_get(h, "__connect.errors.topic", topic, sizeof(topic)); t++) {
        char origin[48];
        long p;
        long long o;
        if (strcmp(topic, r->tier_topics[t]) != 0 ||
            !hdr_get(h, "hookd.retry.origin", origin, sizeof(origin)) ||
            sscanf(origin, "%ld:%lld", &p, &o) != 2)
            continue;
        named_p = (int32_t)p;
        named_o = (int64_t)o;
        if (p >= 0 && p < r->in_parts && o >= 0 && (size_t)o < r->by_off_cap[p] &&
            r->by_off[p][o]) {
            in = &r->in[r->by_off[p][o] - 1];
            connect = true;
        }
    }
    if (!in) {
        size_t seqs[4];
        int n = m->payload ? scan_ids(r, m->payload, m->len, seqs, 0, 4) : 0;
        if (n == 1 && seqs[0] < r->n_in)
            in = &r->in[seqs[0]];
    }
    if (!in) {
        r->unattributed_dlqs++;
        return;
    }
    record_out(r, (size_t)(in - r->in), true, named_p, named_o, record_hash(m, h));
    in->dlqs++;
    if (in->dlqs > 1) {
        in->dlqs_same += record_hash(m, h) == in->dlq_hash;
        return;
    }
    in->dlq_hash = record_hash(m, h);
    in->first_dlq.partition = m->partition;
    in->first_dlq.offset = m->offset;
    in->dlq_connect_ok = connect;
    in->dlq_value_same =
        (m->len == in->len) &&
        (in->len == 0 || (m->payload && in->value && memcmp(m->payload, in->value, in->len) == 0));
    snprintf(key, sizeof(key), "order-%td", in - r->in);
    in->dlq_key_same = m->key && m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0;
    snprintf(key, sizeof(key), "%td", in - r->in);
    in->dlq_header_kept = hdr_get(h, "x-hkit-seq", seqh, sizeof(seqh)) && strcmp(seqh, key) == 0;
    in->dlq_message_ok =
        hdr_get(h, "__connect.errors.exception.message", msg, sizeof(msg)) && msg[0] != '\0';
    if (!hdr_get(h, "hookd.retry.attempt", in->dlq_retry_attempt, sizeof(in->dlq_retry_attempt)))
        in->dlq_retry_attempt[0] = '\0';
    /* The error class is one of the context headers; which one is the worker's choice. */
    for (size_t i = 0; h; i++) {
        const char *name;
        const void *v;
        size_t len;
        if (rd_kafka_header_get_all(h, i, &name, &v, &len))
            break;
        if (!v)
            continue;
        if (in->dlq_class && len == strlen(in->dlq_class) && memcmp(v, in->dlq_class, len) == 0)
            in->dlq_class_ok = true;
        if (strstr(name, "class") && !in->dlq_class_seen[0])
            snprintf(in->dlq_class_seen, sizeof(in->dlq_class_seen), "%.*s",
                     (int)(len < 63 ? len : 63), (const char *)v);
    }
}

static void reader_poll(itk_run_t *r, int timeout_ms)
{
    for (int i = 0; i < 5000; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->reader, i == 0 ? timeout_ms : 0);
        const char *t;
        if (!m)
            break;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "[%s] reader: %s\n", r->name, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        t = rd_kafka_topic_name(m->rkt);
        if (strcmp(t, r->res_topic) == 0) {
            on_result(r, m);
            if (m->partition < ITK_MAX_PARTS)
                r->res_pos[m->partition] = m->offset + 1;
        } else if (strcmp(t, r->dlq_topic) == 0) {
            on_dlq(r, m);
            if (m->partition < ITK_MAX_PARTS)
                r->dlq_pos[m->partition] = m->offset + 1;
        }
        rd_kafka_message_destroy(m);
    }
}

/* ---- sampling commits --------------------------------------------------- */

bool itk_sample_now(itk_run_t *r)
{
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(r->in_parts);
    itk_sample_t s;
    bool ok = true;

    memset(&s, 0, sizeof(s));
    for (int p = 0; p < r->in_parts; p++)
        rd_kafka_topic_partition_list_add(tp, r->in_topic, p);
    if (rd_kafka_committed(r->offq, tp, 1500)) {
        rd_kafka_topic_partition_list_destroy(tp);
        return false;
    }
    s.t_ms = itk_now_ms();
    for (int i = 0; i < tp->cnt; i++) {
        int p = tp->elems[i].partition;
        s.committed[p] = tp->elems[i].err ? -1 : tp->elems[i].offset;
        if (tp->elems[i].err)
            ok = false;
    }
    rd_kafka_topic_partition_list_destroy(tp);
    if (!ok)
        return false;
    /* Watermarks strictly after the committed offsets: see itkit.h. */
    for (int p = 0; p < r->res_parts && ok; p++) {
        int64_t lo, hi;
        ok = !rd_kafka_query_watermark_offsets(r->offq, r->res_topic, p, &lo, &hi, 1500);
        s.hw_result[p] = hi;
    }
    for (int p = 0; p < r->dlq_parts && ok; p++) {
        int64_t lo, hi;
        ok = !rd_kafka_query_watermark_offsets(r->offq, r->dlq_topic, p, &lo, &hi, 1500);
        s.hw_dlq[p] = hi;
    }
    if (!ok)
        return false;
    for (int p = 0; p < r->in_parts; p++) {
        if (s.committed[p] >= 0 && s.committed[p] < r->committed_max[p])
            r->commit_regressions++;
        if (s.committed[p] > r->committed_max[p])
            r->committed_max[p] = s.committed[p];
    }
    if (r->n_samples == r->cap_samples) {
        r->cap_samples = r->cap_samples ? r->cap_samples * 2 : 256;
        r->samples = xrealloc(r->samples, r->cap_samples * sizeof(*r->samples));
    }
    r->samples[r->n_samples++] = s;
    return true;
}

bool itk_drain(itk_run_t *r, int timeout_ms)
{
    int64_t hw_res[ITK_MAX_PARTS], hw_dlq[ITK_MAX_PARTS], lo;
    int64_t deadline = itk_now_ms() + (int64_t)timeout_ms * itk_time_scale();
    bool done;

    for (int p = 0; p < r->res_parts; p++)
        if (rd_kafka_query_watermark_offsets(r->offq, r->res_topic, p, &lo, &hw_res[p], 2000))
            return false;
    for (int p = 0; p < r->dlq_parts; p++)
        if (rd_kafka_query_watermark_offsets(r->offq, r->dlq_topic, p, &lo, &hw_dlq[p], 2000))
            return false;
    do {
        reader_poll(r, 50);
        done = true;
        for (int p = 0; p < r->res_parts; p++)
            done &= r->res_pos[p] >= hw_res[p];
        for (int p = 0; p < r->dlq_parts; p++)
            done &= r->dlq_pos[p] >= hw_dlq[p];
    } while (!done && itk_now_ms() < deadline);
    return done;
}

/* ---- the loop ------------------------------------------------------------ */

static bool check_workers(itk_run_t *r)
{
    bool ok = true;
    char st[32];
    for (int i = 0; i < r->n_workers; i++) {
        itk_proc_t *p = &r->workers[i];
        if (p->pid > 0 && itk_proc_poll(p) && p->expect_alive) {
            itk_fail(r, "worker %s exited unexpectedly (%s)", p->name,
                     itk_proc_status_str(p, st, sizeof(st)));
            itk_proc_print_tail(p, 30);
            p->expect_alive = false;
            ok = false;
        }
    }
    return ok;
}

void itk_pump(itk_run_t *r, int max_ms)
{
    int64_t now = itk_now_ms();
    if (r->stream_rate > 0) {
        size_t target = (size_t)((double)(now - r->stream_t0_ms) * r->stream_rate / 1000.0);
        for (int burst = 0; r->stream_sent < target && burst < 500; burst++, r->stream_sent++)
            itk_produce(r, ITK_GOOD, -1);
    }
    rd_kafka_poll(r->producer, 0);
    reader_poll(r, max_ms);
    if (now >= r->next_sample_ms) {
        itk_sample_now(r);
        r->next_sample_ms = itk_now_ms() + r->sample_every_ms;
    }
    check_workers(r);
}

bool itk_wait(itk_run_t *r, itk_cond_fn cond, void *arg, int timeout_ms, const char *what)
{
    int64_t t0 = itk_now_ms(), deadline = t0 + (int64_t)timeout_ms * itk_time_scale();
    int before = r->failures;
    for (;;) {
        if (cond(r, arg)) {
            itk_note(r, "%s: reached after %.1f s", what, (double)(itk_now_ms() - t0) / 1000.0);
            return true;
        }
        if (r->failures > before) {
            itk_fail(r, "%s: gave up, a worker died", what);
            return false;
        }
        if (itk_now_ms() >= deadline) {
            itk_fail(r, "%s: not reached within %" PRId64 " ms (outcomes %zu/%zu)", what,
                     deadline - t0, itk_outcomes_done(r), r->n_in);
            return false;
        }
        itk_pump(r, 20);
    }
}

static bool needs_result(itk_kind_t k)
{
    return k == ITK_GOOD || k == ITK_HOOK_FAIL || k == ITK_INVALID_ID;
}

static bool needs_dlq(itk_kind_t k)
{
    return k != ITK_GOOD;
}

static bool outcome_done(const itk_input_t *in)
{
    return (!needs_result(in->kind) || in->results > 0) && (!needs_dlq(in->kind) || in->dlqs > 0);
}

size_t itk_outcomes_done(const itk_run_t *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_in; i++)
        n += outcome_done(&r->in[i]);
    return n;
}

bool itk_cond_all_outcomes(itk_run_t *r, void *arg)
{
    (void)arg;
    if (r->stream_rate > 0 || rd_kafka_outq_len(r->producer) > 0)
        return false;
    return itk_outcomes_done(r) == r->n_in;
}

bool itk_cond_results_at_least(itk_run_t *r, void *arg)
{
    return itk_outcomes_done(r) >= *(size_t *)arg;
}

bool itk_cond_worker_results(itk_run_t *r, void *arg)
{
    int w = *(int *)arg;
    for (size_t i = 0; i < r->n_in; i++)
        if (r->in[i].results_by_worker[w] > 0)
            return true;
    return false;
}

bool itk_cond_committed_end(itk_run_t *r, void *arg)
{
    const itk_sample_t *s;
    (void)arg;
    if (r->n_samples == 0 || rd_kafka_outq_len(r->producer) > 0)
        return false;
    s = &r->samples[r->n_samples - 1];
    for (int p = 0; p < r->in_parts; p++)
        if (r->end[p] > 0 && s->committed[p] != r->end[p])
            return false;
    return true;
}

/* ---- workers -------------------------------------------------------------- */

int itk_write_config(itk_run_t *r, const char *path, const char *worker_id,
                     const char *hooks_section_extra, const char *kafka_extra,
                     const char *worker_extra)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "# %s: generated by the integration test\n"
            "[Hooks]\n%s\n"
            "[kafka]\n"
            "bootstrap_servers = %s\n"
            "group_id = %s\n"
            "input_topic = %s\n"
            "result_topic = %s\n"
            "dead_letter_topic = %s\n%s\n"
            "[worker]\n"
            "worker_id = %s\n%s\n",
            r->name, hooks_section_extra ? hooks_section_extra : "hooks_file = skeleton\n",
            r->bootstraps, r->group, r->in_topic, r->res_topic, r->dlq_topic,
            kafka_extra ? kafka_extra : "", worker_id, worker_extra ? worker_extra : "");
    return fclose(f) ? -1 : 0;
}

int itk_worker_start(itk_run_t *r, int i, const char *cfg_path)
{
    char log[600], name[32];
    char *argv[] = {(char *)r->worker_bin, "-c", (char *)cfg_path, NULL};
    FILE *f;
    char line[512];

    if (i >= ITK_MAX_WORKERS)
        return -1;
    /* The worker id named in the config: the judge attributes results by it. */
    if ((f = fopen(cfg_path, "r"))) {
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "worker_id = %63s", r->worker_ids[i]) == 1)
                break;
        fclose(f);
    }
    snprintf(log, sizeof(log), "%s/worker%d.log", r->workdir, i);
    snprintf(name, sizeof(name), "worker%d", i);
    if (i >= r->n_workers)
        r->n_workers = i + 1;
    if (itk_proc_start(&r->workers[i], name, argv, log)) {
        itk_fail(r, "cannot start %s: %s", r->worker_bin, strerror(errno));
        return -1;
    }
    itk_note(r, "started %s (pid %d, %s)", name, (int)r->workers[i].pid, r->worker_ids[i]);
    return 0;
}

bool itk_worker_stop(itk_run_t *r, int i, int timeout_ms)
{
    itk_proc_t *p = &r->workers[i];
    int64_t t0 = itk_now_ms(), deadline = t0 + (int64_t)timeout_ms * itk_time_scale();
    char st[32];

    p->expect_alive = false;
    itk_proc_signal(p, SIGTERM);
    /* Keep the reader and sampler going while the worker shuts down. */
    while (!itk_proc_poll(p) && itk_now_ms() < deadline)
        itk_pump(r, 20);
    if (!p->exited) {
        itk_fail(r, "%s did not exit within %" PRId64 " ms of SIGTERM", p->name, deadline - t0);
        itk_proc_signal(p, SIGKILL);
        itk_proc_wait(p, 5000);
        itk_proc_print_tail(p, 30);
        return false;
    }
    if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
        itk_fail(r, "%s: SIGTERM ended it with %s, expected exit 0", p->name,
                 itk_proc_status_str(p, st, sizeof(st)));
        itk_proc_print_tail(p, 30);
        return false;
    }
    itk_note(r, "%s stopped by SIGTERM: exit 0 after %.1f s", p->name,
             (double)(itk_now_ms() - t0) / 1000.0);
    return true;
}

/* ---- the judge ------------------------------------------------------------- */

#define SHOW_MAX 8

/* Does input partition/offset hold this input's very bytes? A one-off read. */
static bool input_copy_at(itk_run_t *r, const itk_input_t *in, int32_t partition, int64_t offset)
{
    char errstr[256], grp[160];
    const char *kv[] = {"group.id", grp, "enable.auto.commit", "false", "enable.partition.eof",
                        "true",     NULL};
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_t *c;
    bool same = false, done = false;
    int64_t deadline = itk_now_ms() + 15000;

    snprintf(grp, sizeof(grp), "%s.copycheck", r->tag);
    if (!(c = mk_client(RD_KAFKA_CONSUMER, r->bootstraps, kv, r, errstr, sizeof(errstr)))) {
        itk_fail(r, "copy check: %s", errstr);
        return false;
    }
    rd_kafka_poll_set_consumer(c);
    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, r->in_topic, partition)->offset = offset;
    if (rd_kafka_assign(c, l) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        while (!done && itk_now_ms() < deadline) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
            if (!m)
                continue;
            if (!m->err && m->partition == partition && m->offset == offset) {
                same =
                    m->len == in->len &&
                    (in->len == 0 || (m->payload && memcmp(m->payload, in->value, in->len) == 0));
                done = true;
            } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                done = true;
            }
            rd_kafka_message_destroy(m);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return same;
}

static int out_cmp(const void *a, const void *b)
{
    const itk_out_t *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    if (x->dlq != y->dlq)
        return x->dlq ? 1 : -1;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return 0;
}

static bool out_same_group(const itk_out_t *x, const itk_out_t *y)
{
    return x->seq == y->seq && x->dlq == y->dlq && x->partition == y->partition &&
           x->offset == y->offset;
}

int itk_verify(itk_run_t *r, const itk_verdict_opts_t *o)
{
    int before = r->failures;
    size_t kinds[ITK_KIND_COUNT] = {0}, lost = 0, lost_dlq = 0, dup_res = 0, dup_dlq = 0,
           wrong_verdict = 0, bad_dlq = 0, good_dlq = 0, undelivered = 0, unknown_verdict = 0,
           copies = 0;
    size_t violations = 0, shown = 0, input_copies = 0, bad_copies = 0;
    unsigned char *at_acked; /* per input: bit 0 a result, bit 1 a dead letter of the acked copy */

    if (!itk_drain(r, 15000))
        itk_fail(r, "could not read the output topics to their end");
    /* A last sample, after everything else: the state the next owner would start from. */
    if (!itk_sample_now(r))
        itk_fail(r, "could not read the committed offsets at the end");

    /*
     * Group what was read by input, kind and the input position it names:
     * within a group, distinct bytes are processings and equal bytes are
     * transport copies. A group naming a position other than the one the
     * input's delivery report gave must be a second copy of the input in
     * the log (checked by reading it), processed in its own right.
     */
    at_acked = calloc(r->n_in ? r->n_in : 1, 1);
    if (!at_acked) {
        itk_fail(r, "out of memory");
        return r->failures - before;
    }
    qsort(r->outs, r->n_outs, sizeof(*r->outs), out_cmp);
    for (size_t a = 0, b; a < r->n_outs; a = b) {
        const itk_out_t *g = &r->outs[a];
        const itk_input_t *in = &r->in[g->seq];
        size_t distinct = 1;
        for (b = a + 1; b < r->n_outs && out_same_group(g, &r->outs[b]); b++)
            distinct += r->outs[b].hash != r->outs[b - 1].hash;
        if (g->partition < 0 || (g->partition == in->partition && g->offset == in->offset)) {
            at_acked[g->seq] |= g->dlq ? 2 : 1;
        } else if (input_copy_at(r, in, g->partition, g->offset)) {
            input_copies++;
        } else {
            if (bad_copies++ < SHOW_MAX)
                itk_fail(r,
                         "input #%zu (delivered at %d/%" PRId64 "): a %s names input %d/%" PRId64
                         ", which does not hold this input",
                         g->seq, in->partition, in->offset, g->dlq ? "dead letter" : "result",
                         g->partition, g->offset);
            continue;
        }
        *(g->dlq ? &dup_dlq : &dup_res) += distinct - 1;
        copies += (b - a) - distinct;
    }
    if (input_copies)
        itk_note(r,
                 "%zu inputs are in the log twice (a retried produce of the test's own stored "
                 "twice); each copy was processed as the message it is",
                 input_copies);

    for (size_t i = 0; i < r->n_in; i++) {
        itk_input_t *in = &r->in[i];
        kinds[in->kind]++;
        if (in->partition < 0) {
            undelivered++;
            continue;
        }
        if (needs_result(in->kind) && !(at_acked[i] & 1)) {
            if (lost++ < SHOW_MAX)
                itk_fail(r, "input #%zu (%s, %d/%" PRId64 ") has no result", i,
                         itk_kind_name(in->kind), in->partition, in->offset);
        }
        if (needs_dlq(in->kind) && !(at_acked[i] & 2)) {
            if (lost_dlq++ < SHOW_MAX)
                itk_fail(r, "input #%zu (%s, %d/%" PRId64 ") was not dead-lettered", i,
                         itk_kind_name(in->kind), in->partition, in->offset);
        }
        if (in->kind == ITK_GOOD && in->dlqs > 0 && good_dlq++ < SHOW_MAX)
            itk_fail(r, "good input #%zu was dead-lettered (class '%s')", i, in->dlq_class_seen);
        if ((in->kind == ITK_GOOD && in->results_failed > 0) ||
            (in->kind != ITK_GOOD && in->results_completed > 0)) {
            if (wrong_verdict++ < SHOW_MAX)
                itk_fail(r, "input #%zu (%s): wrong verdict (%d completed, %d failed)", i,
                         itk_kind_name(in->kind), in->results_completed, in->results_failed);
        }
        unknown_verdict += (size_t)in->results_unknown;
        if (in->dlqs > 0 && needs_dlq(in->kind)) {
            bool ok = in->dlq_value_same && in->dlq_key_same && in->dlq_header_kept &&
                      in->dlq_connect_ok && in->dlq_class_ok && in->dlq_message_ok;
            if (!ok && bad_dlq++ < SHOW_MAX)
                itk_fail(r,
                         "dead letter of input #%zu (%s): value %s, key %s, headers %s, "
                         "__connect.errors.topic/partition/offset %s, class '%s' (expected "
                         "'%s'), exception message %s",
                         i, itk_kind_name(in->kind), in->dlq_value_same ? "kept" : "CHANGED",
                         in->dlq_key_same ? "kept" : "CHANGED",
                         in->dlq_header_kept ? "kept" : "LOST",
                         in->dlq_connect_ok ? "ok" : "MISSING/WRONG", in->dlq_class_seen,
                         in->dlq_class ? in->dlq_class : "-",
                         in->dlq_message_ok ? "ok" : "MISSING");
        }
    }
    if (undelivered)
        itk_fail(r, "%zu inputs were never acknowledged by the broker (test setup)", undelivered);
    if (unknown_verdict)
        itk_fail(r, "%zu results carry no recognisable verdict (ce_type / verdict)",
                 unknown_verdict);
    if (r->unattributed_results || r->ambiguous_results)
        itk_fail(r, "%d results name no input id, %d name several", r->unattributed_results,
                 r->ambiguous_results);
    if (r->unattributed_dlqs)
        itk_fail(r, "%d dead letters match no input", r->unattributed_dlqs);
    if ((dup_res || dup_dlq) && !o->allow_dups)
        itk_fail(r,
                 "%zu results and %zu dead letters published again (events processed twice) "
                 "without any crash or rebalance",
                 dup_res, dup_dlq);
    if (copies)
        itk_note(r,
                 "%zu byte-identical copies of published records (one publish stored twice: "
                 "a producer retry after a disconnect, not the worker processing again)",
                 copies);

    /* The commit invariant, at every sample. */
    for (size_t s = 0; s < r->n_samples; s++) {
        const itk_sample_t *sm = &r->samples[s];
        for (int p = 0; p < r->in_parts; p++) {
            int64_t c = sm->committed[p];
            if (c < 0)
                continue;
            if (c > r->end[p]) {
                if (violations++ < SHOW_MAX)
                    itk_fail(r,
                             "sample %zu: partition %d committed %" PRId64
                             " beyond its end %" PRId64,
                             s, p, c, r->end[p]);
                continue;
            }
            for (int64_t off = 0; off < c; off++) {
                size_t idx = (size_t)off < r->by_off_cap[p] ? r->by_off[p][off] : 0;
                const itk_input_t *in;
                bool ok;
                if (!idx)
                    continue; /* not one of ours (cannot happen: own topics) */
                in = &r->in[idx - 1];
                if (in->via_tier)
                    continue; /* its outcome here is a tier record, not read by the kit */
                ok = (!needs_result(in->kind) ||
                      (in->first_result.partition >= 0 &&
                       in->first_result.offset < sm->hw_result[in->first_result.partition])) &&
                     (!needs_dlq(in->kind) ||
                      (in->first_dlq.partition >= 0 &&
                       in->first_dlq.offset < sm->hw_dlq[in->first_dlq.partition]));
                if (!ok) {
                    if (violations++ < SHOW_MAX && shown++ < SHOW_MAX)
                        itk_fail(r,
                                 "sample %zu (t=%" PRId64 "): partition %d committed %" PRId64
                                 " but input #%zu at offset %" PRId64
                                 " (%s) had no durable outcome yet",
                                 s, sm->t_ms, p, c, idx - 1, off, itk_kind_name(in->kind));
                    break;
                }
            }
        }
    }
    if (violations)
        itk_fail(r, "committed offsets passed unfinished messages %zu times", violations);

    if (o->full_commit && r->n_samples) {
        const itk_sample_t *last = &r->samples[r->n_samples - 1];
        for (int p = 0; p < r->in_parts; p++)
            if (r->end[p] > 0 && last->committed[p] != r->end[p])
                itk_fail(r, "partition %d: committed %" PRId64 " at the end, log end %" PRId64, p,
                         last->committed[p], r->end[p]);
    }

    fprintf(stderr,
            "[%s] SUMMARY inputs=%zu (good %zu, hook_fail %zu, invalid_with_id %zu, "
            "invalid_no_id %zu, oversized %zu) outcomes=%zu lost_results=%zu lost_dlq=%zu "
            "dup_results=%zu dup_dlq=%zu transport_copies=%zu samples=%zu "
            "commit_regressions=%d problems=%d\n",
            r->name, r->n_in, kinds[0], kinds[1], kinds[2], kinds[3], kinds[4],
            itk_outcomes_done(r), lost, lost_dlq, dup_res, dup_dlq, copies, r->n_samples,
            r->commit_regressions, r->failures - before);
    free(at_acked);
    return r->failures - before;
}
