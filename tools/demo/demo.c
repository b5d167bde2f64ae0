/* SPDX-License-Identifier: MIT */
/*
 * acme-hookd-demo: the worker end to end on the embedded broker, in seconds.
 *
 * Starts the runtime with no bootstrap servers (so on librdkafka's mock
 * cluster, topics created), the bundled handlers cn_dump and exception_test
 * in a chain, publishes six sample enrollment events, waits until every
 * outcome is on the result and dead-letter topics and every input offset is
 * committed, stops the worker as SIGTERM would, and prints what happened.
 * Exits 0 only when every event has exactly the expected outcome and the
 * group's committed offsets (read back from the broker) cover every input.
 *
 * The CSR and certificate of the samples are generated at start with
 * OpenSSL (EC P-256, with SANs), so nothing secret or stale is embedded.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "runtime.h"

#define DEMO_GROUP "acme-hookd-demo"
#define DEMO_TIMEOUT_MS 60000
#define SAMPLE_COUNT 6
#define MAX_PARTITIONS 64

/* ---- sample material ---------------------------------------------------- */

typedef struct material {
    char *csr_b64;          /* good CSR, base64 DER */
    char *csr_tampered_b64; /* same CSR, one signature byte flipped */
    char *cert_pem;
    char *cert_b64;
} material_t;

static char *b64(const unsigned char *der, int len)
{
    char *out = malloc((size_t)(4 * ((len + 2) / 3) + 1));
    if (out != NULL)
        EVP_EncodeBlock((unsigned char *)out, der, len);
    return out;
}

static int make_material(material_t *m, char *errstr, size_t errstr_size)
{
    const char *sans = "DNS:demo.example.com, DNS:www.demo.example.com";
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    X509 *crt = NULL;
    X509_NAME *name = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *ext = NULL;
    X509V3_CTX v3;
    unsigned char *der = NULL;
    BIO *bio = NULL;
    BUF_MEM *mem;
    int len, rc = -1;

    memset(m, 0, sizeof(*m));
    if ((key = EVP_EC_gen("P-256")) == NULL || (req = X509_REQ_new()) == NULL ||
        (name = X509_NAME_new()) == NULL)
        goto error;
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"demo.example.com",
                               -1, -1, 0);
    X509_REQ_set_version(req, 0);
    X509_REQ_set_subject_name(req, name);
    X509_REQ_set_pubkey(req, key);
    if ((exts = sk_X509_EXTENSION_new_null()) == NULL ||
        (ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sans)) == NULL)
        goto error;
    sk_X509_EXTENSION_push(exts, ext);
    ext = NULL; /* now owned by exts */
    X509_REQ_add_extensions(req, exts);
    if (X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        goto error;
    if ((len = i2d_X509_REQ(req, &der)) <= 0)
        goto error;
    m->csr_b64 = b64(der, len);
    der[len - 1] ^= 0x01; /* last byte of the signature: parses, does not verify */
    m->csr_tampered_b64 = b64(der, len);
    OPENSSL_free(der);
    der = NULL;

    if ((crt = X509_new()) == NULL)
        goto error;
    X509_set_version(crt, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(crt), 1);
    X509_gmtime_adj(X509_getm_notBefore(crt), 0);
    X509_gmtime_adj(X509_getm_notAfter(crt), 90L * 86400);
    X509_set_subject_name(crt, name);
    X509_set_issuer_name(crt, name);
    X509_set_pubkey(crt, key);
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, crt, crt, NULL, NULL, 0);
    if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, sans)) == NULL)
        goto error;
    X509_add_ext(crt, ext, -1);
    if (X509_sign(crt, key, EVP_sha256()) <= 0)
        goto error;
    if ((len = i2d_X509(crt, &der)) <= 0)
        goto error;
    m->cert_b64 = b64(der, len);
    if ((bio = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_X509(bio, crt))
        goto error;
    BIO_get_mem_ptr(bio, &mem);
    if ((m->cert_pem = strndup(mem->data, mem->length)) == NULL)
        goto error;
    if (m->csr_b64 && m->csr_tampered_b64 && m->cert_b64)
        rc = 0;

error:
    if (rc != 0)
        snprintf(errstr, errstr_size, "cannot generate the sample CSR and certificate");
    OPENSSL_free(der);
    BIO_free(bio);
    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    X509_free(crt);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rc;
}

static void free_material(material_t *m)
{
    free(m->csr_b64);
    free(m->csr_tampered_b64);
    free(m->cert_pem);
    free(m->cert_b64);
}

/* ---- the samples and what became of them ------------------------------- */

typedef struct sample {
    const char *label; /* what the row shows */
    const char *order; /* key (order name) */
    char *value;       /* the Kafka value */
    int want_result;   /* a result is expected (the event has an id) */
    int want_dead_letter;
    const char *want_verdict;
    /* filled while running */
    int32_t partition;
    int64_t offset;
    int got_result, got_dead_letter;
    char verdict[16];
    char hooks[512];
    char error_class[64];
    char error[160]; /* the deciding failure, from the result or the dead letter */
} sample_t;

static char *event_json(const char *type, const char *id, const char *order, const material_t *m,
                        int tampered, const char *error)
{
    cJSON *o = cJSON_CreateObject();
    char *s;
    char cert_name[64];
    time_t now = time(NULL);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    snprintf(cert_name, sizeof(cert_name), "cert-%s", order);
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "time", ts);
    cJSON_AddStringToObject(o, "certificate_name", cert_name);
    cJSON_AddStringToObject(o, "order_name", order);
    cJSON_AddStringToObject(o, "csr", tampered ? m->csr_tampered_b64 : m->csr_b64);
    if (strcmp(type, "acme.enrollment.issued") == 0) {
        cJSON_AddStringToObject(o, "certificate", m->cert_pem);
        cJSON_AddStringToObject(o, "certificate_raw", m->cert_b64);
        cJSON_AddNullToObject(o, "poll_identifier");
    }
    if (error != NULL)
        cJSON_AddStringToObject(o, "error", error);
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void build_samples(sample_t *s, const material_t *m)
{
    static const sample_t proto[SAMPLE_COUNT] = {
        {.label = "requested: pre hooks run",
         .order = "order-1001",
         .want_result = 1,
         .want_verdict = "completed"},
        {.label = "issued: success, then post hooks",
         .order = "order-1002",
         .want_result = 1,
         .want_verdict = "completed"},
        {.label = "failed: post hooks get the error",
         .order = "order-1003",
         .want_result = 1,
         .want_verdict = "completed"},
        {.label = "malformed: not JSON", .order = "order-1004", .want_dead_letter = 1},
        {.label = "pre hook fails, allow_pre_hook_failure=false",
         .order = "order-1005",
         .want_result = 1,
         .want_dead_letter = 1,
         .want_verdict = "failed"},
        {.label = "post hook fails, allow_post_hook_failure=true",
         .order = "order-1006",
         .want_result = 1,
         .want_verdict = "completed"},
    };
    int i;
    for (i = 0; i < SAMPLE_COUNT; i++) {
        s[i] = proto[i];
        s[i].partition = -1;
        s[i].offset = -1;
    }
    s[0].value = event_json("acme.enrollment.requested", "evt-1001", "order-1001", m, 0, NULL);
    s[1].value = event_json("acme.enrollment.issued", "evt-1002", "order-1002", m, 0, NULL);
    s[2].value = event_json("acme.enrollment.failed", "evt-1003", "order-1003", m, 0,
                            "urn:ietf:params:acme:error:rejectedIdentifier");
    s[3].value = strdup("{\"type\": \"acme.enrollment.requested\", \"id\": \"evt-10");
    /* cn_dump refuses a CSR whose signature does not verify. */
    s[4].value = event_json("acme.enrollment.requested", "evt-1005", "order-1005", m, 1, NULL);
    s[5].value = event_json("acme.enrollment.failed", "evt-1006", "order-1006", m, 1,
                            "urn:ietf:params:acme:error:badCSR");
}

/* ---- producing the samples --------------------------------------------- */

static void sample_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    sample_t *s = rkm->_private;
    if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        s->partition = rkm->partition;
        s->offset = rkm->offset;
    }
}

static int produce_samples(const char *bootstraps, const char *topic, sample_t *s, char *errstr,
                           size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    int i, rc = 0;

    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, NULL, 0);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(conf, "linger.ms", "0", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(conf, sample_dr_cb);
    if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size)) == NULL) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    conf = NULL; /* now owned by rk */
    for (i = 0; i < SAMPLE_COUNT; i++) {
        rd_kafka_resp_err_t err =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_KEY(s[i].order, strlen(s[i].order)),
                              RD_KAFKA_V_VALUE(s[i].value, strlen(s[i].value)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&s[i]),
                              RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errstr, errstr_size, "produce: %s", rd_kafka_err2str(err));
            rc = -1;
            break;
        }
    }
    if (rc == 0 && rd_kafka_flush(rk, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "the sample events were not acknowledged");
        rc = -1;
    }
    for (i = 0; rc == 0 && i < SAMPLE_COUNT; i++)
        if (s[i].offset < 0) {
            snprintf(errstr, errstr_size, "sample %d was not delivered", i + 1);
            rc = -1;
        }
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- reading the outcomes ---------------------------------------------- */

static sample_t *find_sample(sample_t *s, int32_t partition, int64_t offset)
{
    int i;
    for (i = 0; i < SAMPLE_COUNT; i++)
        if (s[i].partition == partition && s[i].offset == offset)
            return &s[i];
    return NULL;
}

static void on_result(sample_t *samples, const rd_kafka_message_t *rkm)
{
    cJSON *root = cJSON_ParseWithLength(rkm->payload, rkm->len);
    const cJSON *input, *runs, *run;
    sample_t *s;
    size_t off = 0;

    if (root == NULL)
        return;
    input = cJSON_GetObjectItemCaseSensitive(root, "input");
    s = find_sample(
        samples,
        (int32_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(input, "partition")),
        (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(input, "offset")));
    if (s == NULL) {
        cJSON_Delete(root);
        return;
    }
    s->got_result++;
    snprintf(s->verdict, sizeof(s->verdict), "%s",
             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "verdict"))
                 ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "verdict"))
                 : "?");
    if (cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "error")) != NULL)
        snprintf(s->error, sizeof(s->error), "%s",
                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "error")));
    runs = cJSON_GetObjectItemCaseSensitive(root, "runs");
    s->hooks[0] = '\0';
    cJSON_ArrayForEach(run, runs)
    {
        const char *phase = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, "phase"));
        const char *handler =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, "handler"));
        const char *outcome =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, "outcome"));
        int attempts = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(run, "attempts"));
        int allowed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(run, "failure_allowed"));
        char extra[32] = "";
        if (allowed) {
            const char *why = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, "error"));
            snprintf(extra, sizeof(extra), "(allowed)");
            if (why != NULL && s->error[0] == '\0')
                snprintf(s->error, sizeof(s->error), "%s (allowed)", why);
        } else if (attempts > 1)
            snprintf(extra, sizeof(extra), "(%d tries)", attempts);
        if (off < sizeof(s->hooks))
            off += (size_t)snprintf(s->hooks + off, sizeof(s->hooks) - off, "%s%s:%s:%s%s",
                                    off ? " " : "", phase ? phase : "?", handler ? handler : "?",
                                    outcome ? outcome : "?", extra);
    }
    cJSON_Delete(root);
}

static const char *header_str(const rd_kafka_message_t *rkm, const char *name, char *buf,
                              size_t size)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *v;
    size_t len;
    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || v == NULL)
        return NULL;
    snprintf(buf, size, "%.*s", (int)len, (const char *)v);
    return buf;
}

static void on_dead_letter(sample_t *samples, const rd_kafka_message_t *rkm)
{
    char p[32], o[32], cls[48];
    sample_t *s;
    if (!header_str(rkm, "__connect.errors.partition", p, sizeof(p)) ||
        !header_str(rkm, "__connect.errors.offset", o, sizeof(o)))
        return;
    if ((s = find_sample(samples, (int32_t)atoi(p), (int64_t)atoll(o))) == NULL)
        return;
    s->got_dead_letter++;
    if (s->error[0] == '\0')
        header_str(rkm, "hookd.dlq.error.message", s->error, sizeof(s->error));
    snprintf(s->error_class, sizeof(s->error_class), "%s",
             header_str(rkm, "hookd.dlq.error.class", cls, sizeof(cls)) ? cls : "?");
}

static int outcomes_complete(const sample_t *s)
{
    int i;
    for (i = 0; i < SAMPLE_COUNT; i++)
        if (s[i].got_result < s[i].want_result || s[i].got_dead_letter < s[i].want_dead_letter)
            return 0;
    return 1;
}

/* Read the result and dead-letter topics from the start until every
 * expected outcome is there (or the demo's deadline passes). */
static int collect_outcomes(const char *bootstraps, const hookd_config_t *cfg, sample_t *samples,
                            char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts;
    const struct rd_kafka_metadata *md = NULL;
    uint64_t deadline = (uint64_t)time(NULL) + DEMO_TIMEOUT_MS / 1000;
    int t, i, rc = -1;
    const char *topics[2] = {cfg->result_topic, cfg->dead_letter_topic};

    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, NULL, 0);
    rd_kafka_conf_set(conf, "group.id", DEMO_GROUP "-reader", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    if ((rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size)) == NULL) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    conf = NULL; /* now owned by rk */
    parts = rd_kafka_topic_partition_list_new(8);
    for (t = 0; t < 2; t++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[t], NULL);
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            md->topic_cnt == 1) {
            for (i = 0; i < md->topics[0].partition_cnt; i++)
                rd_kafka_topic_partition_list_add(parts, topics[t], md->topics[0].partitions[i].id)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        md = NULL;
        rd_kafka_topic_destroy(rkt);
    }
    rd_kafka_assign(rk, parts); /* no group membership: read everything */
    rd_kafka_topic_partition_list_destroy(parts);

    while (!outcomes_complete(samples) && (uint64_t)time(NULL) < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
        if (rkm == NULL)
            continue;
        if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const char *topic = rd_kafka_topic_name(rkm->rkt);
            if (strcmp(topic, cfg->result_topic) == 0)
                on_result(samples, rkm);
            else
                on_dead_letter(samples, rkm);
        }
        rd_kafka_message_destroy(rkm);
    }
    if (outcomes_complete(samples))
        rc = 0;
    else
        snprintf(errstr, errstr_size, "not every outcome arrived within %d s",
                 DEMO_TIMEOUT_MS / 1000);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- committed offsets -------------------------------------------------- */

typedef struct commit_goal {
    hookd_runtime_t *rt;
    int64_t end[MAX_PARTITIONS]; /* next offset after the last sample, -1 none */
} commit_goal_t;

static bool commits_done(const hookd_runtime_stats_t *stats, void *opaque)
{
    commit_goal_t *g = opaque;
    int p;
    for (p = 0; p < MAX_PARTITIONS; p++)
        if (g->end[p] >= 0 && hookd_runtime_committed(g->rt, p) < g->end[p])
            return false;
    return true;
}

/* The group's committed offsets as the broker has them. */
static int read_committed(const char *bootstraps, const char *topic, const commit_goal_t *g,
                          int64_t *committed)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    rd_kafka_t *rk;
    char errstr[256];
    int p, i, rc = -1;

    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, NULL, 0);
    rd_kafka_conf_set(conf, "group.id", DEMO_GROUP, NULL, 0);
    if ((rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr))) == NULL) {
        rd_kafka_conf_destroy(conf);
        rd_kafka_topic_partition_list_destroy(parts);
        return -1;
    }
    conf = NULL; /* now owned by rk */
    for (p = 0; p < MAX_PARTITIONS; p++)
        if (g->end[p] >= 0)
            rd_kafka_topic_partition_list_add(parts, topic, p);
    if (rd_kafka_committed(rk, parts, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (i = 0; i < parts->cnt; i++)
            committed[parts->elems[i].partition] = parts->elems[i].offset;
        rc = 0;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- the worker in a thread --------------------------------------------- */

typedef struct runner {
    hookd_runtime_t *rt;
    atomic_int stop; /* set by main, read by the worker thread */
    int rc;
} runner_t;

static void *run_worker(void *arg)
{
    runner_t *r = arg;
    r->rc = hookd_runtime_run(r->rt, &r->stop);
    return NULL;
}

static bool worker_joined(const hookd_runtime_stats_t *stats, void *opaque)
{
    return stats->assigned_partitions > 0;
}

/* ---- main --------------------------------------------------------------- */

static int write_config(const char *dir, char *path, size_t path_size)
{
    FILE *f;
    snprintf(path, path_size, "%s/demo.ini", dir);
    if ((f = fopen(path, "w")) == NULL)
        return -1;
    fprintf(f,
            "# acme-hookd demo: embedded broker (no bootstrap_servers), bundled handlers.\n"
            "[Hooks]\n"
            "hooks_file = cn_dump, exception_test\n"
            "save_path = %s\n"
            "allow_pre_hook_failure = false\n"
            "allow_success_hook_failure = false\n"
            "allow_post_hook_failure = true\n"
            "# exception_test asks for one retry of every pre hook: shows the retry path\n"
            "retry_pre_hook_times = 1\n"
            "\n"
            "[kafka]\n"
            "group_id = " DEMO_GROUP "\n"
            "# the mock cluster joins faster with short group timeouts\n"
            "rdkafka.session.timeout.ms = 6000\n"
            "rdkafka.heartbeat.interval.ms = 500\n"
            "\n"
            "[worker]\n"
            "worker_id = demo-worker\n"
            "threads = 2\n"
            "retry_initial_backoff_ms = 50\n"
            "shutdown_timeout_ms = 10000\n"
            "\n"
            "[log]\n"
            "level = error\n"
            "format = text\n",
            dir);
    return fclose(f) == 0 ? 0 : -1;
}

static size_t count_lines(const char *dir, const char *file)
{
    char path[512];
    FILE *f;
    size_t n = 0;
    int c;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while ((c = fgetc(f)) != EOF)
        if (c == '\n')
            n++;
    fclose(f);
    return n;
}

static void remove_dir(const char *dir)
{
    static const char *const files[] = {"demo.ini", "pre_hook.txt", "success_hook.txt",
                                        "post_hook.txt", NULL};
    char path[512];
    int i;
    for (i = 0; files[i] != NULL; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/acme-hookd-demo.XXXXXX";
    char cfg_path[512], errstr[4096];
    hookd_config_t *cfg = NULL;
    hookd_registry_t *reg = NULL;
    runner_t runner = {NULL, 0, -1};
    pthread_t thread;
    bool thread_started = false;
    material_t mat;
    sample_t samples[SAMPLE_COUNT];
    commit_goal_t goal;
    int64_t committed[MAX_PARTITIONS];
    const char *bootstraps;
    uint64_t t0, t1;
    int i, p, ok = 1, rc = 1;
    bool keep = argc > 1 && strcmp(argv[1], "--keep") == 0;

    hookd_event_global_init(); /* before any thread: see event.h */
    t0 = hookd_now_us();
    memset(samples, 0, sizeof(samples));
    if (make_material(&mat, errstr, sizeof(errstr)) != 0)
        goto error_early;
    build_samples(samples, &mat);
    if (mkdtemp(dir) == NULL) {
        snprintf(errstr, sizeof(errstr), "mkdtemp: %s", strerror(errno));
        goto error_early;
    }
    if (write_config(dir, cfg_path, sizeof(cfg_path)) != 0) {
        snprintf(errstr, sizeof(errstr), "cannot write %s", cfg_path);
        goto error;
    }
    if ((cfg = hookd_config_load(cfg_path, NULL, errstr, sizeof(errstr))) == NULL)
        goto error;
    hookd_log_setup(cfg->log_level, cfg->log_format);
    hookd_metrics_reset();
    if ((reg = hookd_registry_load(cfg, NULL, errstr, sizeof(errstr))) == NULL)
        goto error;
    if (hookd_config_check_hook_keys(cfg, hookd_registry_declares_key, reg, errstr,
                                     sizeof(errstr)) != 0)
        goto error;
    hookd_status_set(HOOKD_STATUS_HOOKS_LOADED, true);

    /* No bootstrap_servers: the runtime starts the embedded broker. */
    if ((runner.rt = hookd_runtime_create(cfg, reg, errstr, sizeof(errstr))) == NULL)
        goto error;
    bootstraps = hookd_runtime_embedded_bootstraps(runner.rt);
    if (produce_samples(bootstraps, cfg->input_topic, samples, errstr, sizeof(errstr)) != 0)
        goto error;
    if (pthread_create(&thread, NULL, run_worker, &runner) != 0) {
        snprintf(errstr, sizeof(errstr), "cannot start the worker thread");
        goto error;
    }
    thread_started = true;
    fprintf(stderr,
            "acme-hookd-demo: 6 events published; waiting for the worker to join its group\n");
    if (!hookd_runtime_wait(runner.rt, worker_joined, NULL, DEMO_TIMEOUT_MS)) {
        snprintf(errstr, sizeof(errstr), "the worker did not join its group");
        goto error;
    }
    if (collect_outcomes(bootstraps, cfg, samples, errstr, sizeof(errstr)) != 0)
        goto error;

    /* Every input offset committed (the runtime's commits of the stored offsets). */
    goal.rt = runner.rt;
    for (p = 0; p < MAX_PARTITIONS; p++)
        goal.end[p] = -1;
    for (i = 0; i < SAMPLE_COUNT; i++)
        if (samples[i].partition >= 0 && samples[i].partition < MAX_PARTITIONS &&
            samples[i].offset + 1 > goal.end[samples[i].partition])
            goal.end[samples[i].partition] = samples[i].offset + 1;
    if (!hookd_runtime_wait(runner.rt, commits_done, &goal, DEMO_TIMEOUT_MS)) {
        snprintf(errstr, sizeof(errstr), "offsets were not committed in time");
        goto error;
    }

    /* Stop as SIGTERM would. */
    atomic_store(&runner.stop, 1);
    pthread_join(thread, NULL);
    thread_started = false;
    if (runner.rc != 0) {
        snprintf(errstr, sizeof(errstr), "the worker's shutdown returned %d", runner.rc);
        goto error;
    }
    for (p = 0; p < MAX_PARTITIONS; p++)
        committed[p] = -1;
    if (read_committed(bootstraps, cfg->input_topic, &goal, committed) != 0) {
        snprintf(errstr, sizeof(errstr), "cannot read the committed offsets back");
        goto error;
    }
    t1 = hookd_now_us();

    /* ---- the table ---- */
    printf("\nacme-hookd demo: embedded Kafka at %s, handler chain: cn_dump, exception_test\n",
           bootstraps);
    printf("input %s -> results %s, dead letters %s\n\n", cfg->input_topic, cfg->result_topic,
           cfg->dead_letter_topic);
    printf("%-2s %-46s %-6s %-84s %-9s %s\n", "#", "event", "input",
           "hooks run (phase:handler:outcome)", "verdict", "outcome");
    for (i = 0; i < SAMPLE_COUNT; i++) {
        sample_t *s = &samples[i];
        char where[32], outcome[128];
        bool as_expected = s->got_result == s->want_result &&
                           s->got_dead_letter == s->want_dead_letter &&
                           (s->want_verdict == NULL || strcmp(s->verdict, s->want_verdict) == 0);
        snprintf(where, sizeof(where), "p%d@%lld", s->partition, (long long)s->offset);
        if (s->got_dead_letter)
            snprintf(outcome, sizeof(outcome), "dead-lettered (%s), committed", s->error_class);
        else
            snprintf(outcome, sizeof(outcome), "committed");
        printf("%-2d %-46s %-6s %-84s %-9s %s%s\n", i + 1, s->label, where,
               s->hooks[0] ? s->hooks : (s->got_result ? "-" : "- (no id: no result event)"),
               s->got_result ? s->verdict : "-", outcome, as_expected ? "" : "  << UNEXPECTED");
        if (s->error[0] != '\0')
            printf("   %-46s %-6s why: %s\n", "", "", s->error);
        if (!as_expected)
            ok = 0;
    }
    printf("\nfinal committed offsets of group %s on %s (read back from the broker):\n", DEMO_GROUP,
           cfg->input_topic);
    for (p = 0; p < MAX_PARTITIONS; p++) {
        if (goal.end[p] < 0)
            continue;
        printf("  partition %d: committed %lld, end %lld%s\n", p, (long long)committed[p],
               (long long)goal.end[p], committed[p] == goal.end[p] ? "" : "  << NOT COMMITTED");
        if (committed[p] != goal.end[p])
            ok = 0;
    }
    printf("\ncn_dump wrote %zu pre, %zu success, %zu post line(s) under %s\n",
           count_lines(dir, "pre_hook.txt"), count_lines(dir, "success_hook.txt"),
           count_lines(dir, "post_hook.txt"), keep ? dir : "a temporary directory");
    printf("%s in %.1f s\n", ok ? "demo OK" : "demo FAILED", (double)(t1 - t0) / 1e6);
    rc = ok ? 0 : 1;
    goto done;

error:
    fprintf(stderr, "acme-hookd-demo: %s\n", errstr);
done:
    if (thread_started) {
        atomic_store(&runner.stop, 1);
        pthread_join(thread, NULL);
    }
    hookd_runtime_destroy(runner.rt);
    hookd_registry_destroy(reg);
    hookd_config_destroy(cfg);
    if (!keep)
        remove_dir(dir);
    for (i = 0; i < SAMPLE_COUNT; i++)
        free(samples[i].value);
    free_material(&mat);
    return rc;

error_early:
    fprintf(stderr, "acme-hookd-demo: %s\n", errstr);
    free_material(&mat);
    return 1;
}
