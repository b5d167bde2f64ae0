/* SPDX-License-Identifier: MIT */
/*
 * End-to-end checks of the hostile-input defences: the real acme-hookd
 * binary against librdkafka's mock cluster (the integration kit).
 *
 *   hookd_hostile_it --worker PATH --hostile PATH auth|isolation
 *
 * auth:      [auth] require + sign_results. Signed events complete; unsigned,
 *            forged (value changed after signing) and unknown-key events are
 *            dead-lettered as auth_failed, and the handler (cn_dump, which
 *            writes one line per pre hook) never sees them. Every result
 *            carries a signature that verifies.
 * isolation: isolation = process with the hostile handler. Events that
 *            crash (SIGSEGV, abort, exit) or hang get failed results and
 *            dead letters of class hook_crashed / hook_timeout, the events
 *            around them complete, nothing is lost, the worker stays up,
 *            leaves no zombie, and stops cleanly on SIGTERM.
 * orphans_process, orphans_none:
 *            the exec handler with a command that starts two background
 *            sleeps and waits (isolation = process with hook_timeout_ms,
 *            or none with exec_timeout_ms as the deadline). After the
 *            hook_timeout result, no process of that invocation is left
 *            within 2 s; then, with the same command running again, the
 *            worker gets SIGKILL, and within 2 s no process of its tree
 *            is left. The trees are recorded from /proc while they run
 *            (pid and start time, so a reused pid is no survivor), and
 *            the process groups and sessions they led are searched too.
 * Exit 0 when the scenario passes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include "auth.h"
#include "config.h"
#include "itkit.h"
#include "result.h"
#include "../unit/proc_tree.h"

#define MAX_EVENTS 16

typedef struct expect {
    char id[96];
    const char *verdict;   /* "completed" / "failed" */
    const char *dlq_class; /* NULL: no dead letter */
    bool got_result, got_dlq;
    char result_class[64], dlq_class_seen[64];
    bool result_signed_ok;
} expect_t;

typedef struct scene {
    itk_run_t *r;
    rd_kafka_t *producer, *consumer;
    hookd_auth_t *signer;   /* k1: the producers' key, also the worker's */
    hookd_auth_t *stranger; /* k9: a key the worker does not have */
    hookd_auth_t *verifier; /* k1, to check the signed results */
    expect_t ex[MAX_EVENTS];
    int n;
} scene_t;

static int fail(scene_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(scene_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] FAIL: ", s->r->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    s->r->failures++;
    return -1;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstraps, const char *group)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err, sizeof(err)) ||
        (group && (rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) ||
                   rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
                   rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err))))) {
        fprintf(stderr, "conf: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk; /* conf now owned by rk */
}

static const char *write_key(scene_t *s, const char *name, const char *secret)
{
    static char paths[4][400];
    static int next;
    char *p = paths[next++ % 4];
    FILE *f;
    snprintf(p, 400, "%s/%s.key", s->r->workdir, name);
    f = fopen(p, "w");
    if (f == NULL || fputs(secret, f) < 0 || fclose(f) != 0 || chmod(p, 0600) != 0) {
        fail(s, "cannot write %s", p);
        return NULL;
    }
    return p;
}

static hookd_auth_t *auth_for(scene_t *s, const char *kid, const char *path)
{
    char keys[512], err[512];
    hookd_config_t cfg;
    hookd_auth_t *a;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(keys, sizeof(keys), "%s:%s", kid, path);
    cfg.auth_keys = keys;
    cfg.auth_sign_results = true;
    cfg.auth_require = true;
    a = hookd_auth_create(&cfg, err, sizeof(err));
    if (a == NULL)
        fail(s, "auth: %s", err);
    return a;
}

typedef enum how { SIGN_OK, SIGN_NONE, SIGN_FORGED, SIGN_STRANGER } how_t;

/* Produce one plain-JSON requested event; certificate_name picks the hostile behaviour. */
static void produce(scene_t *s, const char *id_suffix, const char *certificate_name, how_t how,
                    const char *verdict, const char *dlq_class)
{
    expect_t *e = &s->ex[s->n++];
    char value[4096], err[256];
    hookd_headers_t *h = hookd_headers_new();
    rd_kafka_headers_t *kh;
    rd_kafka_resp_err_t kerr;
    size_t len;

    snprintf(e->id, sizeof(e->id), "%s-%s", s->r->tag, id_suffix);
    e->verdict = verdict;
    e->dlq_class = dlq_class;
    len = (size_t)snprintf(value, sizeof(value),
                           "{\"type\":\"acme.enrollment.requested\",\"id\":\"%s\","
                           "\"time\":\"2026-11-26T19:00:00Z\",\"certificate_name\":\"%s\","
                           "\"order_name\":\"order-%s\",\"csr\":\"%s\"}",
                           e->id, certificate_name, id_suffix, s->r->pki.csr_b64);
    if (how == SIGN_OK || how == SIGN_FORGED) {
        if (hookd_auth_sign(s->signer, e->id, strlen(e->id), value, len, h, err, sizeof(err)))
            fail(s, "sign: %s", err);
    } else if (how == SIGN_STRANGER) {
        if (hookd_auth_sign(s->stranger, e->id, strlen(e->id), value, len, h, err, sizeof(err)))
            fail(s, "sign: %s", err);
    }
    if (how == SIGN_FORGED) {
        /* after signing: the certificate name is changed in transit */
        char *p = strstr(value, "\"certificate_name\":\"");
        if (p)
            p[20] = p[20] == 'x' ? 'y' : 'x';
    }
    kh = rd_kafka_headers_new(8);
    for (size_t i = 0; i < hookd_headers_count(h); i++) {
        const hookd_header_t *x = hookd_headers_get(h, i);
        rd_kafka_header_add(kh, x->name, -1, x->value, (ssize_t)x->len);
    }
    hookd_headers_destroy(h);
    kerr = rd_kafka_producev(s->producer, RD_KAFKA_V_TOPIC(s->r->in_topic), RD_KAFKA_V_PARTITION(0),
                             RD_KAFKA_V_KEY(e->id, strlen(e->id)), RD_KAFKA_V_VALUE(value, len),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(kh),
                             RD_KAFKA_V_END);
    if (kerr) {
        rd_kafka_headers_destroy(kh);
        fail(s, "produce: %s", rd_kafka_err2str(kerr));
    } /* else kh now owned by the message */
}

static expect_t *find(scene_t *s, const char *id)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->ex[i].id, id) == 0)
            return &s->ex[i];
    return NULL;
}

static bool header_str(rd_kafka_message_t *m, const char *name, char *out, size_t size)
{
    rd_kafka_headers_t *hs = NULL;
    const void *v;
    size_t l;
    if (rd_kafka_message_headers(m, &hs) || rd_kafka_header_get_last(hs, name, &v, &l))
        return false;
    snprintf(out, size, "%.*s", (int)l, (const char *)v);
    return true;
}

static void on_result(scene_t *s, rd_kafka_message_t *m)
{
    cJSON *root = cJSON_ParseWithLength(m->payload, m->len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "event_id");
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(root, "error_class");
    const cJSON *verdict = cJSON_GetObjectItemCaseSensitive(root, "verdict");
    expect_t *e = cJSON_IsString(id) ? find(s, id->valuestring) : NULL;
    if (e == NULL) {
        cJSON_Delete(root);
        return;
    }
    e->got_result = true;
    if (!cJSON_IsString(verdict) || strcmp(verdict->valuestring, e->verdict) != 0)
        fail(s, "%s: verdict %s, expected %s", e->id,
             cJSON_IsString(verdict) ? verdict->valuestring : "?", e->verdict);
    snprintf(e->result_class, sizeof(e->result_class), "%s",
             cJSON_IsString(cls) ? cls->valuestring : "");
    if (s->verifier) {
        rd_kafka_headers_t *hs = NULL;
        hookd_header_t arr[64];
        size_t n = 0;
        char err[256];
        if (!rd_kafka_message_headers(m, &hs)) {
            const char *name;
            const void *v;
            size_t l;
            while (n < 64 && !rd_kafka_header_get_all(hs, n, &name, &v, &l)) {
                arr[n].name = name;
                arr[n].value = v;
                arr[n].len = l;
                n++;
            }
        }
        e->result_signed_ok = hookd_auth_verify(s->verifier, m->key, m->key_len, m->payload, m->len,
                                                arr, n, err, sizeof(err)) == 0;
        if (!e->result_signed_ok)
            fail(s, "%s: result signature: %s", e->id, err);
    }
    cJSON_Delete(root);
}

static void on_dlq(scene_t *s, rd_kafka_message_t *m)
{
    char id[128] = "", cls[64] = "";
    expect_t *e;
    header_str(m, "hookd.dlq.event.id", id, sizeof(id));
    header_str(m, "hookd.dlq.error.class", cls, sizeof(cls));
    e = find(s, id);
    if (e == NULL)
        return;
    e->got_dlq = true;
    snprintf(e->dlq_class_seen, sizeof(e->dlq_class_seen), "%s", cls);
}

static bool all_seen(scene_t *s)
{
    for (int i = 0; i < s->n; i++)
        if (!s->ex[i].got_result || (s->ex[i].dlq_class && !s->ex[i].got_dlq))
            return false;
    return true;
}

/* Read results and dead letters until every expectation has its outcome. */
static void collect(scene_t *s, int timeout_ms)
{
    int64_t end = itk_now_ms() + (int64_t)timeout_ms * itk_time_scale();
    while (!all_seen(s) && itk_now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->consumer, 100);
        if (m == NULL)
            continue;
        if (!m->err) {
            const char *t = rd_kafka_topic_name(m->rkt);
            if (strcmp(t, s->r->res_topic) == 0)
                on_result(s, m);
            else if (strcmp(t, s->r->dlq_topic) == 0)
                on_dlq(s, m);
        }
        rd_kafka_message_destroy(m);
        if (s->r->workers[0].pid && itk_proc_poll(&s->r->workers[0])) {
            fail(s, "the worker died");
            itk_proc_print_tail(&s->r->workers[0], 40);
            return;
        }
    }
    for (int i = 0; i < s->n; i++) {
        expect_t *e = &s->ex[i];
        if (!e->got_result)
            fail(s, "%s: no result (lost)", e->id);
        if (e->dlq_class && !e->got_dlq)
            fail(s, "%s: no dead letter", e->id);
        if (!e->dlq_class && e->got_dlq)
            fail(s, "%s: unexpected dead letter (%s)", e->id, e->dlq_class_seen);
        if (e->dlq_class && e->got_dlq && strcmp(e->dlq_class, e->dlq_class_seen) != 0)
            fail(s, "%s: dead letter class '%s', expected '%s'", e->id, e->dlq_class_seen,
                 e->dlq_class);
        if (e->dlq_class && e->got_result && strcmp(e->dlq_class, e->result_class) != 0)
            fail(s, "%s: result error_class '%s', expected '%s'", e->id, e->result_class,
                 e->dlq_class);
    }
}

static int setup_clients(scene_t *s)
{
    char group[160];
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(2);
    snprintf(group, sizeof(group), "%s.hostile-reader", s->r->tag);
    s->producer = client(RD_KAFKA_PRODUCER, s->r->bootstraps, NULL);
    s->consumer = client(RD_KAFKA_CONSUMER, s->r->bootstraps, group);
    if (!s->producer || !s->consumer) {
        rd_kafka_topic_partition_list_destroy(tp);
        return fail(s, "cannot create the clients");
    }
    rd_kafka_poll_set_consumer(s->consumer);
    rd_kafka_topic_partition_list_add(tp, s->r->res_topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_topic_partition_list_add(tp, s->r->dlq_topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(s->consumer, tp)) {
        rd_kafka_topic_partition_list_destroy(tp);
        return fail(s, "assign failed");
    }
    rd_kafka_topic_partition_list_destroy(tp);
    return 0;
}

static size_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    int c;
    if (f == NULL)
        return 0;
    while ((c = fgetc(f)) != EOF)
        if (c == '\n')
            n++;
    fclose(f);
    return n;
}

static int scn_auth(scene_t *s, const char *hostile)
{
    char hooks[700], worker[1200], save[400];
    const char *k1, *k9, *cfg_path;
    static char cfg[600];
    (void)hostile;

    k1 = write_key(s, "k1", "hex:6b31c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123\n");
    k9 = write_key(s, "k9", "a key the worker has never seen\n");
    if (!k1 || !k9)
        return -1;
    s->signer = auth_for(s, "k1", k1);
    s->verifier = auth_for(s, "k1", k1);
    s->stranger = auth_for(s, "k9", k9);
    if (!s->signer || !s->verifier || !s->stranger)
        return -1;
    snprintf(save, sizeof(save), "%s/cn", s->r->workdir);
    mkdir(save, 0700);
    snprintf(hooks, sizeof(hooks), "hooks_file = cn_dump\nsave_path = %s\n", save);
    snprintf(worker, sizeof(worker),
             "threads = 1\n[auth]\nrequire = true\nsign_results = true\nkeys = k1:%s\n"
             "signing_key_id = k1\n",
             k1);
    snprintf(cfg, sizeof(cfg), "%s/worker0.ini", s->r->workdir);
    cfg_path = cfg;
    if (itk_write_config(s->r, cfg_path, "hostile-auth.w0", hooks, NULL, worker) ||
        setup_clients(s))
        return fail(s, "setup");

    produce(s, "signed-1", "www.example.org", SIGN_OK, "completed", NULL);
    produce(s, "unsigned", "www.example.org", SIGN_NONE, "failed", "auth_failed");
    produce(s, "forged", "www.example.org", SIGN_FORGED, "failed", "auth_failed");
    produce(s, "unknown-key", "www.example.org", SIGN_STRANGER, "failed", "auth_failed");
    produce(s, "signed-2", "www.example.org", SIGN_OK, "completed", NULL);
    rd_kafka_flush(s->producer, 30000);

    if (itk_worker_start(s->r, 0, cfg_path))
        return fail(s, "cannot start the worker");
    collect(s, 60000);
    {
        char path[500];
        size_t lines;
        snprintf(path, sizeof(path), "%s/pre_hook.txt", save);
        lines = count_lines(path);
        if (lines != 2)
            fail(s, "the handler saw %zu events, expected the 2 signed ones", lines);
    }
    if (!itk_worker_stop(s->r, 0, 30000 * itk_time_scale()))
        fail(s, "the worker did not stop cleanly");
    return 0;
}

/* Children of `pid`: how many, how many zombies. */
static void children_of(pid_t pid, int *total, int *zombies)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    *total = *zombies = 0;
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char path[300], buf[512], state;
        long ppid;
        FILE *f;
        char *rp;
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')) &&
            sscanf(rp + 1, " %c %ld", &state, &ppid) == 2 && ppid == (long)pid) {
            (*total)++;
            if (state == 'Z')
                (*zombies)++;
        }
        fclose(f);
    }
    closedir(d);
}

static int scn_isolation(scene_t *s, const char *hostile)
{
    char hooks[700], worker[400];
    static char cfg[600];
    int total, zombies;

    snprintf(hooks, sizeof(hooks), "hooks_file = %s\n", hostile);
    snprintf(worker, sizeof(worker),
             "threads = 2\nisolation = process\nhook_timeout_ms = %d\nhook_rlimit_cpu_s = 30\n",
             1500 * itk_time_scale());
    snprintf(cfg, sizeof(cfg), "%s/worker0.ini", s->r->workdir);
    if (itk_write_config(s->r, cfg, "hostile-iso.w0", hooks, NULL, worker) || setup_clients(s))
        return fail(s, "setup");

    produce(s, "ok-1", "ok", SIGN_NONE, "completed", NULL);
    produce(s, "segv", "segv", SIGN_NONE, "failed", "hook_crashed");
    produce(s, "ok-2", "ok", SIGN_NONE, "completed", NULL);
    produce(s, "hang", "hang", SIGN_NONE, "failed", "hook_timeout");
    produce(s, "abort", "abort", SIGN_NONE, "failed", "hook_crashed");
    produce(s, "spin", "spin", SIGN_NONE, "failed", "hook_timeout");
    produce(s, "exit3", "exit3", SIGN_NONE, "failed", "hook_crashed");
    produce(s, "ok-3", "ok", SIGN_NONE, "completed", NULL);
    rd_kafka_flush(s->producer, 30000);

    if (itk_worker_start(s->r, 0, cfg))
        return fail(s, "cannot start the worker");
    collect(s, 90000);
    if (s->r->workers[0].pid && !itk_proc_poll(&s->r->workers[0])) {
        children_of(s->r->workers[0].pid, &total, &zombies);
        /* one isolated child per worker thread, no zombie */
        if (zombies != 0 || total > 2)
            fail(s, "worker has %d children, %d of them zombies (expected <= 2, 0)", total,
                 zombies);
    }
    if (!itk_worker_stop(s->r, 0, 30000 * itk_time_scale()))
        fail(s, "the worker did not stop cleanly");
    return 0;
}

static int scn_orphans(scene_t *s, bool isolated)
{
    /* a sub-shell with two background sleeps: the shell's children are
     * what a parent-death signal on the direct child does not reach */
    static const char hooks[] = "hooks_file = exec\n"
                                "exec_pre_command = case \"$HOOKD_CERTIFICATE_NAME\" in slow*) "
                                "sh -c 'sleep 41 & sleep 42 & wait';; esac\n";
    char hooks_all[600], worker[400];
    static char cfg[600];
    pt_set_t tree;
    long long gone;
    int scale = itk_time_scale();

    snprintf(hooks_all, sizeof(hooks_all), "%sexec_timeout_ms = %d\n", hooks,
             isolated ? 600000 : 2000 * scale);
    snprintf(worker, sizeof(worker), "threads = 1\nisolation = %s\nhook_timeout_ms = %d\n",
             isolated ? "process" : "none", isolated ? 2000 * scale : 600000);
    snprintf(cfg, sizeof(cfg), "%s/worker0.ini", s->r->workdir);
    if (itk_write_config(s->r, cfg, "orphans.w0", hooks_all, NULL, worker) || setup_clients(s))
        return fail(s, "setup");

    /* 1. the deadline: the isolation child's (hook_timeout), or exec's own
     * (a failure of the handler: hook_failed, "timed out ... killed") */
    produce(s, "slow-1", "slow-1", SIGN_NONE, "failed", isolated ? "hook_timeout" : "hook_failed");
    rd_kafka_flush(s->producer, 30000);
    if (itk_worker_start(s->r, 0, cfg))
        return fail(s, "cannot start the worker");
    if (!pt_wait_descendants(s->r->workers[0].pid, "sleep", 2, &tree, 60000 * scale))
        return fail(s, "the command's two sleeps never ran");
    itk_note(s->r, "deadline: %zu processes of the invocation recorded", tree.n);
    collect(s, 60000);
    if (s->r->failures)
        return -1;
    gone = pt_wait_gone(&tree, 2000);
    if (gone < 0)
        return fail(s, "processes of the invocation outlived its deadline result by 2 s");
    itk_note(s->r, "deadline: all %zu processes gone %lld ms after the result", tree.n, gone);

    /* 2. SIGKILL of the worker in the middle of the same command */
    produce(s, "slow-2", "slow-2", SIGN_NONE, "failed", NULL);
    rd_kafka_flush(s->producer, 30000);
    if (!pt_wait_descendants(s->r->workers[0].pid, "sleep", 2, &tree, 60000 * scale))
        return fail(s, "the second command's two sleeps never ran");
    itk_note(s->r, "SIGKILL: %zu processes under the worker recorded", tree.n);
    itk_proc_signal(&s->r->workers[0], SIGKILL);
    if (!itk_proc_wait(&s->r->workers[0], 10000))
        return fail(s, "the worker did not die of SIGKILL");
    gone = pt_wait_gone(&tree, 2000);
    if (gone < 0)
        return fail(s, "processes of the worker outlived its SIGKILL by 2 s");
    itk_note(s->r, "SIGKILL: all %zu processes gone %lld ms after the worker was reaped", tree.n,
             gone);
    return 0;
}

int main(int argc, char **argv)
{
    const char *worker = NULL, *hostile = NULL, *name = NULL;
    char errstr[512];
    itk_cluster_t *cl;
    scene_t s;
    int fails;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--worker") == 0 && i + 1 < argc)
            worker = argv[++i];
        else if (strcmp(argv[i], "--hostile") == 0 && i + 1 < argc)
            hostile = argv[++i];
        else
            name = argv[i];
    }
    if (!worker || !hostile || !name ||
        (strcmp(name, "auth") != 0 && strcmp(name, "isolation") != 0 &&
         strcmp(name, "orphans_process") != 0 && strcmp(name, "orphans_none") != 0)) {
        fprintf(stderr, "usage: hookd_hostile_it --worker PATH --hostile PATH "
                        "auth|isolation|orphans_process|orphans_none\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (!(cl = itk_cluster_create(1, errstr, sizeof(errstr)))) {
        fprintf(stderr, "[%s] mock cluster: %s\n", name, errstr);
        return 2;
    }
    memset(&s, 0, sizeof(s));
    s.r = itk_run_create(name, cl->bootstraps, cl, 1, 1, 1, worker, errstr, sizeof(errstr));
    if (!s.r) {
        fprintf(stderr, "[%s] setup: %s\n", name, errstr);
        itk_cluster_destroy(cl);
        return 2;
    }
    itk_note(s.r, "mock cluster %s, work directory %s", cl->bootstraps, s.r->workdir);
    if (strcmp(name, "auth") == 0)
        scn_auth(&s, hostile);
    else if (strcmp(name, "isolation") == 0)
        scn_isolation(&s, hostile);
    else
        scn_orphans(&s, strcmp(name, "orphans_process") == 0);
    fails = s.r->failures;
    if (fails)
        itk_proc_print_tail(&s.r->workers[0], 30);
    fprintf(stderr, "[%s] %s\n", name, fails ? "FAILED" : "PASSED");
    if (s.consumer) {
        rd_kafka_consumer_close(s.consumer);
        rd_kafka_destroy(s.consumer);
    }
    if (s.producer)
        rd_kafka_destroy(s.producer);
    hookd_auth_destroy(s.signer);
    hookd_auth_destroy(s.stranger);
    hookd_auth_destroy(s.verifier);
    itk_run_destroy(s.r);
    itk_cluster_destroy(cl);
    return fails ? 1 : 0;
}
