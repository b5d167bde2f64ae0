/* SPDX-License-Identifier: MIT */
/*
 * The benchmark: acme-hookd side by side with the limit of its stack (a raw
 * librdkafka consume -> produce -> commit passthrough, no JSON, no hooks;
 * and the same writing a result's eight CloudEvents headers on each copy)
 * and with the peer a user would otherwise write (a Python worker with
 * confluent-kafka), in the same run on the same broker. It prints figures;
 * it asserts nothing about speed.
 *
 *   hookd_bench run --worker PATH --python PY --py-worker SCRIPT --slow-handler SO
 *                   [--events N] [--partitions P] [--bootstrap B]
 *                   [--latency-rate R] [--latency-seconds S] [--sleep-events M]
 *                   [--rounds K] [--warmup-events W]
 *   hookd_bench passthrough --bootstrap B --group G --input T --output T [--envelope yes]
 *   hookd_bench keys --worker PATH --slow-handler SO [--events N] [--keys K]
 *                   [--threads T] [--bootstrap B]
 *   hookd_bench profile --contender hookd|raw|raw-envelope [--worker PATH] [--events N]
 *                   [--wrap 'CMD ARGS'] [--kafka-set 'k=v;...'] [--worker-set 'k=v;...']
 *       one contender alone, behind a profiler (see run_profile)
 *
 * Method, per contender, each alone on the machine in turn:
 *   1. throughput: N events are waiting in its input topic (P partitions)
 *      before it starts; events/s = 0.8 N / (time the 90%-th distinct
 *      result is read back - time of the 10%-th), i.e. steady state:
 *      start-up, the group join and the first fetch burst are excluded
 *      (the time to the first result is shown separately);
 *   2. latency: then R events/s for S seconds, each carrying its produce
 *      time (CLOCK_REALTIME, in its id); latency = time the result is read
 *      back by this program - produce time; p50 and p99;
 *   3. peak RSS: VmHWM of the contender process, read before it is stopped.
 * Contenders run one after the other, so the broker (on the same machine)
 * is warmed up first, unreported, and the contenders run in K rounds on
 * fresh topics, the order rotating from round to round; the table shows
 * medians. Then acme-hookd alone with a handler that sleeps 50 ms per
 * event, 8 threads, P partitions: events/s.
 *
 * `keys` measures what [worker] ordering = key buys with slow handlers:
 * the 50 ms handler, T threads (64), a backlog keyed by K distinct order
 * names (1,000; a key always in the same partition), on 1 and on 32 input
 * partitions, ordering = partition beside ordering = key: events/s (steady
 * state, as above) and peak RSS of the worker. On a real broker the two
 * orderings run again with delivery = exactly_once (100 ms transactions).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "itkit.h"

#define MAX_PARTS 256
#define MOCK_EVENTS_PER_PARTITION 5000L /* what a mock partition (about 5 MiB) keeps whole */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hookd_bench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* ======================================================================
 * The raw passthrough: consume, produce the same bytes, commit once the
 * copy is acknowledged. Output partition = input partition, so delivery
 * reports of one input partition come in order and the commit watermark is
 * simply the last acknowledged offset + 1.
 * ==================================================================== */

typedef struct pt_state {
    int64_t done[MAX_PARTS];   /* next offset whose copy is acknowledged */
    int64_t stored[MAX_PARTS]; /* what was last handed to offsets_store */
} pt_state_t;

static void pt_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    pt_state_t *st = opaque;
    uintptr_t o = (uintptr_t)m->_private;
    int32_t p = (int32_t)(o & 0xff);
    int64_t off = (int64_t)(o >> 8);
    (void)rk;
    if (m->err) {
        /* Not durable: the offset stays unstored; a restart redoes it. */
        fprintf(stderr, "passthrough: delivery failed: %s\n", rd_kafka_err2str(m->err));
        return;
    }
    if (p < MAX_PARTS && off + 1 > st->done[p])
        st->done[p] = off + 1;
}

static void pt_store(rd_kafka_t *c, const char *topic, pt_state_t *st)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int p = 0; p < MAX_PARTS; p++)
        if (st->done[p] > st->stored[p]) {
            rd_kafka_topic_partition_list_add(l, topic, p)->offset = st->done[p];
            st->stored[p] = st->done[p];
        }
    if (l->cnt)
        rd_kafka_offsets_store(c, l);
    rd_kafka_topic_partition_list_destroy(l);
}

/*
 * --envelope yes: each copy also carries the eight headers of an acme-hookd
 * result (the CloudEvents binary-mode envelope), of the same names and value
 * lengths as the worker writes for these events, added the way any
 * librdkafka application adds headers. The values are constants: this
 * contender measures what the stack costs for a record shaped like a
 * result, not the making of one. The worker cannot go below it without
 * writing other bytes.
 */
static const char *const pt_envelope[][2] = {
    {"ce_specversion", "1.0"},
    {"ce_id", "0b9f6d1e-8a3c-4f7e-9d21-5c6b7a8e9f01"},
    {"ce_source", "urn:acme-hookd:prof-123456-hookd"},
    {"ce_type", "acme.hookd.result.completed"},
    {"ce_subject", "order-12345"},
    {"ce_time", "2026-01-01T00:00:00.000Z"},
    {"content-type", "application/json"},
    {"ce_inputeventid", "bench-hookd-12345-1767225600000000"},
};

static int passthrough(const char *bootstrap, const char *group, const char *in, const char *out,
                       bool envelope)
{
    char errstr[512];
    rd_kafka_conf_t *cc = rd_kafka_conf_new(), *pc = rd_kafka_conf_new();
    rd_kafka_t *c, *p;
    rd_kafka_queue_t *q;
    rd_kafka_topic_partition_list_t *sub;
    rd_kafka_message_t *batch[1000];
    pt_state_t *st = calloc(1, sizeof(*st));
    int64_t next_store = 0;
    const char *ckv[] = {"bootstrap.servers", bootstrap, "group.id", group, "enable.auto.commit",
                         "true", "auto.commit.interval.ms", "1000", "enable.auto.offset.store",
                         "false", "auto.offset.reset", "earliest", "partition.assignment.strategy",
                         "cooperative-sticky",
                         /* the worker's fetch defaults (docs/runtime.md): librdkafka's
                          * own (50 MiB fetches, 64 MiB queue) made this contender,
                          * meant as the stack's limit, slower than the worker */
                         "queued.min.messages", "100000", "queued.max.messages.kbytes", "8192",
                         "max.partition.fetch.bytes", "262144", "fetch.max.bytes", "4194304", NULL};
    const char *pkv[] = {"bootstrap.servers",
                         bootstrap,
                         "enable.idempotence",
                         "true",
                         "linger.ms",
                         "5",
                         "batch.num.messages",
                         "10000",
                         NULL};

    for (int i = 0; ckv[i]; i += 2)
        if (rd_kafka_conf_set(cc, ckv[i], ckv[i + 1], errstr, sizeof(errstr)))
            die("passthrough consumer: %s", errstr);
    for (int i = 0; pkv[i]; i += 2)
        if (rd_kafka_conf_set(pc, pkv[i], pkv[i + 1], errstr, sizeof(errstr)))
            die("passthrough producer: %s", errstr);
    rd_kafka_conf_set_opaque(pc, st);
    rd_kafka_conf_set_dr_msg_cb(pc, pt_dr);
    if (!(p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof(errstr))))
        die("passthrough producer: %s", errstr);
    pc = NULL; /* now owned by p */
    if (!(c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof(errstr))))
        die("passthrough consumer: %s", errstr);
    cc = NULL; /* now owned by c */
    rd_kafka_poll_set_consumer(c);
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, in, RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(c, sub))
        die("passthrough: subscribe failed");
    rd_kafka_topic_partition_list_destroy(sub);
    q = rd_kafka_queue_get_consumer(c);

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop_flag) {
        /* Wait for the first message only, then take what is there: no batch-filling delay. */
        ssize_t n = 0;
        rd_kafka_message_t *first = rd_kafka_consume_queue(q, 100);
        if (first) {
            batch[n++] = first;
            n += rd_kafka_consume_batch_queue(q, 0, batch + 1, 999);
        }
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            if (!m->err && m->partition < MAX_PARTS) {
                rd_kafka_resp_err_t err;
                rd_kafka_headers_t *hdrs = NULL;
                if (envelope) {
                    size_t nh = sizeof(pt_envelope) / sizeof(pt_envelope[0]);
                    hdrs = rd_kafka_headers_new(nh);
                    for (size_t h = 0; h < nh; h++)
                        rd_kafka_header_add(hdrs, pt_envelope[h][0], -1, pt_envelope[h][1], -1);
                }
                do {
                    err = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(out),
                                            RD_KAFKA_V_PARTITION(m->partition),
                                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                            RD_KAFKA_V_KEY(m->key, m->key_len),
                                            RD_KAFKA_V_VALUE(m->payload, m->len),
                                            RD_KAFKA_V_HEADERS(hdrs),
                                            RD_KAFKA_V_OPAQUE((void *)(((uintptr_t)m->offset << 8) |
                                                                       (uintptr_t)m->partition)),
                                            RD_KAFKA_V_END);
                    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(p, 10);
                } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
                if (err && hdrs)
                    rd_kafka_headers_destroy(hdrs); /* not taken by the message */
                /* else: hdrs = NULL; now owned by the message */
            }
            rd_kafka_message_destroy(m);
        }
        rd_kafka_poll(p, 0);
        if (itk_now_ms() >= next_store) {
            pt_store(c, in, st);
            next_store = itk_now_ms() + 100;
        }
    }
    rd_kafka_flush(p, 30000);
    pt_store(c, in, st);
    rd_kafka_commit(c, NULL, 0);
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_destroy(p);
    free(st);
    return 0;
}

/* ======================================================================
 * The orchestrator.
 * ==================================================================== */

#define BENCH_MAX_ROUNDS 9

typedef struct bench_opts {
    const char *worker, *python, *py_worker, *slow_handler, *bootstrap, *python_path;
    long events, partitions, latency_rate, latency_seconds, sleep_events, rounds, warmup_events;
    long keys, threads;                                    /* the keys subcommand */
    const char *contender, *wrap, *kafka_set, *worker_set; /* the profile subcommand */
    long timeout_s; /* > 0: the results deadline of measure() */
} bench_opts_t;

typedef struct figures {
    const char *name;
    bool ran;
    long got, dups;
    double startup_s; /* process start -> first result */
    double eps;       /* steady state: first -> last result */
    double p50_ms, p99_ms;
    long lat_n;
    bool whole_run;      /* eps over the whole run: too few events for a steady state */
    double ev_per_cpu_s; /* backlog events per CPU second of the contender (start-up included) */
    double rss_mb;
    char status[32];
} figures_t;

typedef struct bench {
    bench_opts_t o;
    itk_cluster_t *cl;
    char bootstraps[512];
    char prefix[64];
    char workdir[256];
    itk_pki_t pki;
    rd_kafka_t *producer;
    rd_kafka_t *reader;
    char self[512];
    long key_mod; /* > 0: event i is keyed "order-<i % key_mod>", its key's partition */
} bench_t;

static rd_kafka_t *client(bench_t *b, rd_kafka_type_t type, const char *const *kv)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    if (rd_kafka_conf_set(conf, "bootstrap.servers", b->bootstraps, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)))
        die("%s", errstr);
    for (; kv && kv[0]; kv += 2)
        if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr, sizeof(errstr)))
            die("%s: %s", kv[0], errstr);
    if (!(rk = rd_kafka_new(type, conf, errstr, sizeof(errstr))))
        die("%s", errstr);
    return rk; /* conf now owned by rk */
}

static void create_topic(bench_t *b, const char *name, int parts)
{
    rd_kafka_NewTopic_t *nt;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    char errstr[256];
    if (b->cl) {
        if (itk_cluster_topic(b->cl, name, parts))
            die("cannot create mock topic %s", name);
        return;
    }
    nt = rd_kafka_NewTopic_new(name, parts, 1, errstr, sizeof(errstr));
    if (!nt)
        die("NewTopic %s: %s", name, errstr);
    q = rd_kafka_queue_new(b->producer);
    rd_kafka_CreateTopics(b->producer, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (!ev || rd_kafka_event_error(ev))
        die("CreateTopics %s: %s", name, ev ? rd_kafka_event_error_string(ev) : "timed out");
    {
        size_t cnt;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        for (size_t i = 0; i < cnt; i++)
            if (rd_kafka_topic_result_error(res[i]) &&
                rd_kafka_topic_result_error(res[i]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                die("CreateTopics %s: %s", name, rd_kafka_topic_result_error_string(res[i]));
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

/* A requested event whose id carries the contender, the sequence and the produce time. */
static int make_event(bench_t *b, char *buf, size_t size, const char *who, long seq, int64_t t)
{
    return snprintf(buf, size,
                    "{\"type\":\"acme.enrollment.requested\",\"id\":\"bench-%s-%ld-%" PRId64
                    "\",\"time\":\"2026-01-01T00:00:00Z\",\"certificate_name\":\"cert-%ld\","
                    "\"order_name\":\"order-%ld\",\"csr\":\"%s\"}",
                    who, seq, t, seq, seq, b->pki.csr_b64);
}

static void produce_one(bench_t *b, const char *topic, const char *who, long seq, int part)
{
    char buf[2048], key[32];
    int n = make_event(b, buf, sizeof(buf), who, seq, wall_us());
    rd_kafka_resp_err_t err;
    snprintf(key, sizeof(key), "order-%ld", b->key_mod > 0 ? seq % b->key_mod : seq);
    if (b->key_mod > 0) /* the same key always in the same partition, as a keyed producer does */
        part = (int)((seq % b->key_mod) % b->o.partitions);
    do {
        err = rd_kafka_producev(b->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(buf, (size_t)n),
                                RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(b->producer, 10);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (err)
        die("produce: %s", rd_kafka_err2str(err));
}

static void backlog(bench_t *b, const char *topic, const char *who, long n)
{
    for (long i = 0; i < n; i++) {
        produce_one(b, topic, who, i, (int)(i % b->o.partitions));
        if ((i & 1023) == 0)
            rd_kafka_poll(b->producer, 0);
    }
    if (rd_kafka_flush(b->producer, 120000))
        die("backlog of %s not acknowledged", topic);
}

/* Parse "bench-<who>-<seq>-<us>" out of a result (value, then headers). */
static bool parse_id(const char *who, const void *buf, size_t len, long *seq, int64_t *t)
{
    char pat[48];
    const char *hit, *d, *end = (const char *)buf + len;
    int pl = snprintf(pat, sizeof(pat), "bench-%s-", who);
    if (!buf || !(hit = memmem(buf, len, pat, (size_t)pl)))
        return false;
    d = hit + pl;
    *seq = 0;
    *t = 0;
    if (d >= end || *d < '0' || *d > '9')
        return false;
    for (; d < end && *d >= '0' && *d <= '9'; d++)
        *seq = *seq * 10 + (*d - '0');
    if (d >= end || *d != '-')
        return false;
    for (d++; d < end && *d >= '0' && *d <= '9'; d++)
        *t = *t * 10 + (*d - '0');
    return true;
}

static bool find_id(const char *who, const rd_kafka_message_t *m, long *seq, int64_t *t)
{
    rd_kafka_headers_t *h = NULL;
    if (parse_id(who, m->payload, m->len, seq, t))
        return true;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *v;
        size_t len;
        for (size_t i = 0; !rd_kafka_header_get_all(h, i, &name, &v, &len); i++)
            if (v && parse_id(who, v, len, seq, t))
                return true;
    }
    return false;
}

static double read_hwm_mb(pid_t pid)
{
    char path[64], line[256];
    FILE *f;
    double mb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f)) {
        long kb;
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            mb = (double)kb / 1024.0;
    }
    fclose(f);
    return mb;
}

/* CPU seconds (user + system) the process has used so far, -1 if unknown. */
static double read_cpu_s(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut, st;
    FILE *f;
    size_t n;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which may contain anything: start after its ')'. */
    if (!(p = strrchr(buf, ')')) ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * CPU seconds of the process and of its live children (the isolated
 * handler processes of `isolation = process`, which /proc/PID/stat does
 * not count until they are reaped), -1 if unknown.
 */
static double read_tree_cpu_s(pid_t pid)
{
    double total = read_cpu_s(pid);
    DIR *d = opendir("/proc");
    struct dirent *e;
    if (total < 0 || d == NULL) {
        if (d)
            closedir(d);
        return total;
    }
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[1024], *p;
        int ppid = 0;
        size_t n;
        FILE *f;
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        if (!(f = fopen(path, "r")))
            continue;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        if ((p = strrchr(buf, ')')) && sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == pid) {
            double c = read_cpu_s((pid_t)atoi(e->d_name));
            if (c > 0)
                total += c;
        }
    }
    closedir(d);
    return total;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * Run one contender: start it on `in` (a backlog of n events waiting),
 * read `out` until n distinct results are back, then the paced latency
 * phase, then stop it. `lat_rate` 0 skips the latency phase.
 */
static void measure(bench_t *b, figures_t *f, const char *who, char *const argv[], const char *in,
                    const char *out, long n, long lat_rate, long lat_secs)
{
    itk_proc_t proc;
    char log[600];
    rd_kafka_topic_partition_list_t *asg;
    unsigned char *seen;
    long lat_total = lat_rate * lat_secs, total = n + lat_total, got = 0, lat_got = 0;
    int64_t *lat = calloc((size_t)(lat_total ? lat_total : 1), sizeof(*lat));
    int64_t t_start, t_first = 0, t_10 = 0, t_90 = 0, deadline;
    long n10 = n / 10 > 0 ? n / 10 : 1, n90 = n - n / 10;
    const char *rkv[] = {"group.id",
                         "hookd-bench-reader",
                         "enable.auto.commit",
                         "false",
                         "fetch.wait.max.ms",
                         "5",
                         "enable.partition.eof",
                         "false",
                         NULL};

    f->name = f->name ? f->name : who;
    seen = calloc((size_t)total, 1);
    b->reader = client(b, RD_KAFKA_CONSUMER, rkv);
    rd_kafka_poll_set_consumer(b->reader);
    asg = rd_kafka_topic_partition_list_new((int)b->o.partitions);
    for (int p = 0; p < b->o.partitions; p++)
        rd_kafka_topic_partition_list_add(asg, out, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(b->reader, asg);
    rd_kafka_topic_partition_list_destroy(asg);

    snprintf(log, sizeof(log), "%s/%s.log", b->workdir, who);
    t_start = itk_now_ms();
    if (itk_proc_start(&proc, who, argv, log))
        die("cannot start %s", argv[0]);
    fprintf(stderr, "hookd_bench: %s started (pid %d), %ld events waiting\n", f->name,
            (int)proc.pid, n);

    /* Throughput: generous deadline, the slowest contender sets it. */
    deadline = b->o.timeout_s > 0 ? t_start + b->o.timeout_s * 1000 : t_start + 60000 + n / 50;
    while (got < n && itk_now_ms() < deadline && !itk_proc_poll(&proc) && !stop_flag) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(b->reader, 100);
        for (; m; m = rd_kafka_consumer_poll(b->reader, 0)) {
            long seq;
            int64_t t;
            if (!m->err && find_id(who, m, &seq, &t) && seq >= 0 && seq < total) {
                if (seen[seq])
                    f->dups++;
                else {
                    seen[seq] = 1;
                    if (++got == 1)
                        t_first = itk_now_ms();
                    if (got == n10)
                        t_10 = itk_now_us();
                    if (got == n90)
                        t_90 = itk_now_us();
                }
            }
            rd_kafka_message_destroy(m);
            if (got >= n)
                break;
        }
    }
    f->got = got;
    if (got == n && !proc.exited) {
        double cpu = read_tree_cpu_s(proc.pid);
        if (cpu > 0)
            f->ev_per_cpu_s = (double)n / cpu;
    }
    if (got > 0)
        f->startup_s = (double)(t_first - t_start) / 1000.0;
    /* A steady state needs enough events and time in the window: else the run is too small. */
    if (got == n && n90 - n10 >= 500 && t_90 - t_10 >= 200000) {
        f->eps = (double)(n90 - n10) * 1e6 / (double)(t_90 - t_10);
    } else if (got == n) {
        /* Too few events for a steady state: whole run, start-up included (marked '*'). */
        f->eps = (double)n * 1000.0 / (double)(itk_now_ms() - t_start);
        f->whole_run = true;
    }

    /* Latency at a steady load below every contender's capacity. */
    if (got == n && lat_total > 0) {
        int64_t t0 = itk_now_ms();
        long sent = 0;
        deadline = t0 + lat_secs * 1000 + 30000;
        while (lat_got < lat_total && itk_now_ms() < deadline && !itk_proc_poll(&proc) &&
               !stop_flag) {
            long due = (long)((itk_now_ms() - t0) * lat_rate / 1000);
            rd_kafka_message_t *m;
            for (; sent < due && sent < lat_total; sent++)
                produce_one(b, in, who, n + sent, (int)(sent % b->o.partitions));
            rd_kafka_poll(b->producer, 0);
            for (m = rd_kafka_consumer_poll(b->reader, 1); m;
                 m = rd_kafka_consumer_poll(b->reader, 0)) {
                long seq;
                int64_t t;
                int64_t now = wall_us();
                if (!m->err && find_id(who, m, &seq, &t) && seq >= n && seq < total) {
                    if (seen[seq])
                        f->dups++;
                    else {
                        seen[seq] = 1;
                        lat[lat_got++] = now - t;
                    }
                }
                rd_kafka_message_destroy(m);
            }
        }
        f->lat_n = lat_got;
        if (lat_got > 0) {
            qsort(lat, (size_t)lat_got, sizeof(*lat), cmp_i64);
            f->p50_ms = (double)lat[lat_got / 2] / 1000.0;
            f->p99_ms =
                (double)lat[(lat_got * 99) / 100 < lat_got ? (lat_got * 99) / 100 : lat_got - 1] /
                1000.0;
        }
    }

    f->rss_mb = proc.exited ? -1 : read_hwm_mb(proc.pid);
    itk_proc_signal(&proc, SIGTERM);
    if (!itk_proc_wait(&proc, b->o.timeout_s > 30 ? (int)b->o.timeout_s * 1000 : 30000)) {
        itk_proc_signal(&proc, SIGKILL);
        itk_proc_wait(&proc, 5000);
    }
    itk_proc_status_str(&proc, f->status, sizeof(f->status));
    f->ran = got == n;
    if (got < n) {
        fprintf(stderr, "hookd_bench: %s: only %ld/%ld results (%s)\n", f->name, got, n, f->status);
        itk_proc_print_tail(&proc, 20);
    }
    rd_kafka_consumer_close(b->reader);
    rd_kafka_destroy(b->reader);
    b->reader = NULL;
    free(seen);
    free(lat);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f))
        die("cannot write %s", path);
}

static void hookd_config(bench_t *b, const char *path, const char *who, const char *hooks,
                         const char *kafka_extra, const char *worker_extra)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "[Hooks]\n%s\n"
             "[kafka]\nbootstrap_servers = %s\ngroup_id = %s-%s\ninput_topic = %s-%s.in\n"
             "result_topic = %s-%s.out\ndead_letter_topic = %s-%s.dlq\n%s"
             "[worker]\nworker_id = %s-%s\n%s",
             hooks, b->bootstraps, b->prefix, who, b->prefix, who, b->prefix, who, b->prefix, who,
             kafka_extra, b->prefix, who, worker_extra);
    write_file(path, text);
}

static void print_row(const figures_t *f)
{
    char eps[32] = "-", p50[32] = "-", p99[32] = "-", rss[32] = "-", st[32] = "-", cpu[32] = "-";
    if (f->ev_per_cpu_s > 0)
        snprintf(cpu, sizeof(cpu), "%.0f", f->ev_per_cpu_s);
    if (f->eps > 0)
        snprintf(eps, sizeof(eps), "%.0f%s", f->eps, f->whole_run ? "*" : "");
    if (f->lat_n > 0) {
        snprintf(p50, sizeof(p50), "%.1f", f->p50_ms);
        snprintf(p99, sizeof(p99), "%.1f", f->p99_ms);
    }
    if (f->rss_mb > 0)
        snprintf(rss, sizeof(rss), "%.1f", f->rss_mb);
    if (f->got > 0)
        snprintf(st, sizeof(st), "%.1f", f->startup_s);
    printf("| %-34s | %10s | %9s | %8s | %8s | %8s | %9s | %5ld | %-9s |\n", f->name, eps, cpu, st,
           p50, p99, rss, f->dups, f->status);
}

static const char *verdict(bool ok)
{
    return ok ? "met" : "MISSED";
}

/* Median of n values (n <= BENCH_MAX_ROUNDS), 0 when none is positive. */
static double median(const double *v, int n)
{
    double s[BENCH_MAX_ROUNDS];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > 0)
            s[k++] = v[i];
    if (k == 0)
        return 0;
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && s[j] < s[j - 1]; j--) {
            double t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    return k % 2 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
}

/* The figures of one contender over its rounds: medians, the worst RSS and exit. */
static void summarize(figures_t *out, const figures_t *r, int n)
{
    double eps[BENCH_MAX_ROUNDS], cpu[BENCH_MAX_ROUNDS], st[BENCH_MAX_ROUNDS],
        p50[BENCH_MAX_ROUNDS], p99[BENCH_MAX_ROUNDS];
    const char *name = out->name;

    memset(out, 0, sizeof(*out));
    out->name = name;
    out->ran = n > 0;
    snprintf(out->status, sizeof(out->status), "%s", n > 0 ? r[0].status : "-");
    for (int i = 0; i < n; i++) {
        eps[i] = r[i].eps;
        cpu[i] = r[i].ev_per_cpu_s;
        st[i] = r[i].got > 0 ? r[i].startup_s : 0;
        p50[i] = r[i].lat_n > 0 ? r[i].p50_ms : 0;
        p99[i] = r[i].lat_n > 0 ? r[i].p99_ms : 0;
        out->ran = out->ran && r[i].ran;
        out->got += r[i].got;
        out->dups += r[i].dups;
        out->lat_n += r[i].lat_n;
        out->whole_run = out->whole_run || r[i].whole_run;
        if (r[i].rss_mb > out->rss_mb)
            out->rss_mb = r[i].rss_mb;
        if (strcmp(r[i].status, "exit 0") != 0)
            snprintf(out->status, sizeof(out->status), "%s", r[i].status);
    }
    out->eps = median(eps, n);
    out->ev_per_cpu_s = median(cpu, n);
    out->startup_s = median(st, n);
    out->p50_ms = median(p50, n);
    out->p99_ms = median(p99, n);
}

/*
 * The exactly-once contenders (acme-hookd with [kafka] delivery =
 * exactly_once at two transaction intervals) run on a real broker only:
 * the mock cluster's transactional calls do nothing (its results would be
 * visible before any commit), so their figures would mean nothing there.
 */
enum { C_RAW, C_RAW_ENV, C_HOOKD, C_PY, C_EOS, C_EOS_1S, C_COUNT };

static bool contender_runs(const bench_t *b, int c)
{
    return (c != C_EOS && c != C_EOS_1S) || b->cl == NULL;
}

/* Topics of contender `who` under the current prefix, its backlog produced. */
static void prepare(bench_t *b, const char *who, long events)
{
    char t[160];
    snprintf(t, sizeof(t), "%s-%s.in", b->prefix, who);
    create_topic(b, t, (int)b->o.partitions);
    snprintf(t, sizeof(t), "%s-%s.out", b->prefix, who);
    create_topic(b, t, (int)b->o.partitions);
    snprintf(t, sizeof(t), "%s-%s.dlq", b->prefix, who);
    create_topic(b, t, 4);
    snprintf(t, sizeof(t), "%s-%s.in", b->prefix, who);
    backlog(b, t, who, events);
}

static void run_contender(bench_t *b, int c, figures_t *f, long events, long lat_rate,
                          long lat_secs)
{
    char ti[160], to[160], td[160], grp[160], wid[96], cfg[600];
    const bench_opts_t *o = &b->o;
    static const char *const who[C_COUNT] = {"raw", "rawenv", "hookd", "py", "eos", "eos1s"};

    snprintf(ti, sizeof(ti), "%s-%s.in", b->prefix, who[c]);
    snprintf(to, sizeof(to), "%s-%s.out", b->prefix, who[c]);
    snprintf(td, sizeof(td), "%s-%s.dlq", b->prefix, who[c]);
    snprintf(grp, sizeof(grp), "%s-%s", b->prefix, who[c]);
    snprintf(wid, sizeof(wid), "%s-%s", b->prefix, who[c]);
    if (c == C_RAW || c == C_RAW_ENV) {
        char *argv[] = {b->self,       "passthrough",
                        "--bootstrap", b->bootstraps,
                        "--group",     grp,
                        "--input",     ti,
                        "--output",    to,
                        "--envelope",  c == C_RAW_ENV ? "yes" : "no",
                        NULL};
        measure(b, f, who[c], argv, ti, to, events, lat_rate, lat_secs);
    } else if (c == C_HOOKD) {
        /* default settings, the builtin no-op handler */
        snprintf(cfg, sizeof(cfg), "%s/%s.ini", b->workdir, grp);
        hookd_config(b, cfg, who[c], "hooks_file = skeleton\n", "", "");
        char *argv[] = {(char *)o->worker, "-c", cfg, NULL};
        measure(b, f, who[c], argv, ti, to, events, lat_rate, lat_secs);
    } else if (c == C_EOS || c == C_EOS_1S) {
        /* the same, exactly-once: the reader is read_committed (librdkafka's
         * default), so a result counts once its transaction committed */
        snprintf(cfg, sizeof(cfg), "%s/%s.ini", b->workdir, grp);
        hookd_config(b, cfg, who[c], "hooks_file = skeleton\n",
                     c == C_EOS ? "delivery = exactly_once\ntransaction_interval_ms = 100\n"
                                : "delivery = exactly_once\ntransaction_interval_ms = 1000\n",
                     "");
        char *argv[] = {(char *)o->worker, "-c", cfg, NULL};
        measure(b, f, who[c], argv, ti, to, events, lat_rate, lat_secs);
    } else {
        char *argv[] = {(char *)o->python,
                        (char *)o->py_worker,
                        "--bootstrap",
                        b->bootstraps,
                        "--group",
                        grp,
                        "--input",
                        ti,
                        "--result",
                        to,
                        "--dlq",
                        td,
                        "--worker-id",
                        wid,
                        NULL};
        measure(b, f, who[c], argv, ti, to, events, lat_rate, lat_secs);
    }
}

static int run(bench_opts_t *o)
{
    bench_t b;
    char errstr[512], in[160], to[160], wcfg[600], hooks[700];
    static const char *const names[C_COUNT] = {"raw librdkafka passthrough (C)",
                                               "raw passthrough + result headers",
                                               "acme-hookd (skeleton, defaults)",
                                               "Python confluent-kafka worker",
                                               "acme-hookd exactly_once, 100 ms",
                                               "acme-hookd exactly_once, 1 s"};
    figures_t rounds[C_COUNT][BENCH_MAX_ROUNDS], sum[C_COUNT],
        fs = {.name = "acme-hookd (50 ms handler, 8 thr)"}, warm = {.name = "warm-up"};
    const char *pkv[] = {
        "enable.idempotence",           "true",    "linger.ms", "5", "batch.num.messages", "10000",
        "queue.buffering.max.messages", "1000000", NULL};
    const char *tmp = getenv("TMPDIR");
    long pid = (long)getpid();
    bool all_ran = true;

    memset(&b, 0, sizeof(b));
    memset(rounds, 0, sizeof(rounds));
    b.o = *o;
    snprintf(b.workdir, sizeof(b.workdir), "%s/hookd-bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(b.workdir))
        die("mkdtemp: %s", strerror(errno));
    if (readlink("/proc/self/exe", b.self, sizeof(b.self) - 1) < 0)
        die("readlink /proc/self/exe: %s", strerror(errno));
    if (itk_pki_create(&b.pki, "bench.example.org", errstr, sizeof(errstr)))
        die("%s", errstr);
    if (o->bootstrap) {
        snprintf(b.bootstraps, sizeof(b.bootstraps), "%s", o->bootstrap);
    } else {
        if (!(b.cl = itk_cluster_create(1, errstr, sizeof(errstr))))
            die("mock cluster: %s", errstr);
        snprintf(b.bootstraps, sizeof(b.bootstraps), "%s", b.cl->bootstraps);
    }
    b.producer = client(&b, RD_KAFKA_PRODUCER, pkv);
    fprintf(stderr, "hookd_bench: broker %s (%s)\n", b.bootstraps,
            b.cl ? "librdkafka mock cluster, in this process" : "external");

    /*
     * Warm-up, not reported: a fresh broker runs slower for its first
     * minute (a JVM compiling its hot paths), which would favour whichever
     * contender runs last.
     */
    if (o->warmup_events > 0) {
        snprintf(b.prefix, sizeof(b.prefix), "bench-%ld-warm", pid);
        prepare(&b, "raw", o->warmup_events);
        fprintf(stderr, "hookd_bench: warm-up, %ld events through the passthrough\n",
                o->warmup_events);
        run_contender(&b, C_RAW, &warm, o->warmup_events, 0, 0);
    }
    /*
     * Rounds: every contender once per round, on fresh topics, in an order
     * that rotates from round to round; the table shows medians, so a slow
     * moment of the machine or the broker weighs on one figure, not on the
     * comparison.
     */
    for (int r = 0; r < o->rounds && !stop_flag; r++) {
        snprintf(b.prefix, sizeof(b.prefix), "bench-%ld-r%d", pid, r + 1);
        fprintf(stderr, "hookd_bench: round %d of %ld: producing the backlogs\n", r + 1, o->rounds);
        prepare(&b, "raw", o->events);
        prepare(&b, "rawenv", o->events);
        prepare(&b, "hookd", o->events);
        prepare(&b, "py", o->events);
        if (contender_runs(&b, C_EOS)) {
            prepare(&b, "eos", o->events);
            prepare(&b, "eos1s", o->events);
        }
        for (int k = 0; k < C_COUNT && !stop_flag; k++) {
            int c = (r + k) % C_COUNT;
            rounds[c][r].name = names[c];
            if (!contender_runs(&b, c)) {
                rounds[c][r].ran = true;
                snprintf(rounds[c][r].status, sizeof(rounds[c][r].status), "n/a mock");
                continue;
            }
            run_contender(&b, c, &rounds[c][r], o->events, o->latency_rate, o->latency_seconds);
        }
    }
    for (int c = 0; c < C_COUNT; c++) {
        sum[c].name = names[c];
        summarize(&sum[c], rounds[c], (int)o->rounds);
        all_ran = all_ran && sum[c].ran;
    }
    /* acme-hookd with a slow handler, once */
    if (o->sleep_events > 0 && !stop_flag) {
        snprintf(b.prefix, sizeof(b.prefix), "bench-%ld-sleep", pid);
        snprintf(in, sizeof(in), "%s-sleep.in", b.prefix);
        create_topic(&b, in, (int)o->partitions);
        snprintf(to, sizeof(to), "%s-sleep.out", b.prefix);
        create_topic(&b, to, (int)o->partitions);
        snprintf(wcfg, sizeof(wcfg), "%s-sleep.dlq", b.prefix);
        create_topic(&b, wcfg, 4);
        backlog(&b, in, "sleep", o->sleep_events);
        snprintf(wcfg, sizeof(wcfg), "%s/sleep.ini", b.workdir);
        snprintf(hooks, sizeof(hooks), "hooks_file = %s\nslow_sleep_ms = 50\n", o->slow_handler);
        hookd_config(&b, wcfg, "sleep", hooks, "", "threads = 8\n");
        char *argv[] = {(char *)o->worker, "-c", wcfg, NULL};
        measure(&b, &fs, "sleep", argv, in, to, o->sleep_events, 0, 0);
        all_ran = all_ran && fs.ran;
    }

    printf("\nacme-hookd benchmark: %ld events per contender and round, %ld round(s), %ld "
           "partitions, broker %s\n",
           o->events, o->rounds, o->partitions,
           b.cl ? "librdkafka 2.0.2 mock cluster (1 broker, in the benchmark process)"
                : b.bootstraps);
    printf("events/s: steady state, 10%% to 90%% of the backlog's results read back; ev/CPU-s: "
           "backlog events per CPU second of the contender process (start-up included, broker "
           "excluded); start s: process start to first result (group join included)\n");
    printf("latency: produce -> result read back, at %ld events/s for %ld s after the backlog%s\n",
           o->latency_rate, o->latency_seconds,
           b.cl ? "\n  (mock cluster: it answers an empty fetch only after fetch.wait.max.ms, so "
                  "latency there mostly measures that setting; use --kafka for real figures)"
                : "");
    printf("rounds: each contender once per round on fresh topics, the order rotating; figures "
           "are medians over the rounds (VmHWM: the highest)%s\n",
           o->warmup_events > 0 ? ", after an unreported warm-up of the broker" : "");
    {
        double la[3];
        if (getloadavg(la, 3) == 3)
            printf("machine: %ld CPUs, load average %.2f %.2f %.2f at the end (the broker runs "
                   "on the same machine and shares its CPUs)\n\n",
                   sysconf(_SC_NPROCESSORS_ONLN), la[0], la[1], la[2]);
    }
    printf("| %-34s | %10s | %9s | %8s | %8s | %8s | %9s | %5s | %-9s |\n", "contender", "events/s",
           "ev/CPU-s", "start s", "p50 ms", "p99 ms", "VmHWM MB", "dups", "exit");
    printf("|%.36s|%.12s|%.11s|%.10s|%.10s|%.10s|%.11s|%.7s|%.11s|\n",
           "-------------------------------------", "-------------", "------------", "-----------",
           "-----------", "-----------", "------------", "--------", "------------");
    for (int c = 0; c < C_COUNT; c++)
        print_row(&sum[c]);
    if (o->sleep_events > 0)
        print_row(&fs);
    printf("\n");
    if (o->rounds > 1) {
        printf("per round, events/s (ev/CPU-s):\n");
        for (int c = 0; c < C_COUNT; c++) {
            printf("  %-34s", names[c]);
            for (int r = 0; r < o->rounds; r++)
                printf(" %8.0f (%6.0f)", rounds[c][r].eps, rounds[c][r].ev_per_cpu_s);
            printf("\n");
        }
        printf("  %-34s", "acme-hookd / Python");
        for (int r = 0; r < o->rounds; r++)
            printf(" %8.2f (%6.2f)",
                   rounds[C_PY][r].eps > 0 ? rounds[C_HOOKD][r].eps / rounds[C_PY][r].eps : 0,
                   rounds[C_PY][r].ev_per_cpu_s > 0
                       ? rounds[C_HOOKD][r].ev_per_cpu_s / rounds[C_PY][r].ev_per_cpu_s
                       : 0);
        printf("\n\n");
    }
    {
        const figures_t *fr = &sum[C_RAW], *fh = &sum[C_HOOKD], *fp = &sum[C_PY];
        if (fr->whole_run || fh->whole_run || fp->whole_run || fs.whole_run)
            printf("* too few events for a steady state (under 500 events or 200 ms between 10%% "
                   "and 90%%): rate over the whole run, start-up included; not comparable to the "
                   "targets\n");
        if (fh->eps > 0 && fr->eps > 0)
            printf("acme-hookd / raw passthrough = %.2f   (target >= 0.45: %s)\n",
                   fh->eps / fr->eps,
                   fh->whole_run || fr->whole_run ? "n/a, too few events"
                                                  : verdict(fh->eps / fr->eps >= 0.45));
        if (fh->eps > 0 && fp->eps > 0)
            printf("acme-hookd / Python worker   = %.2f   (target >= 2.5:  %s)\n",
                   fh->eps / fp->eps,
                   fh->whole_run || fp->whole_run ? "n/a, too few events"
                                                  : verdict(fh->eps / fp->eps >= 2.5));
        if (fh->ev_per_cpu_s > 0 && fr->ev_per_cpu_s > 0 && fp->ev_per_cpu_s > 0)
            printf("per CPU second (less sensitive to a busy machine): acme-hookd / raw = %.2f, "
                   "acme-hookd / Python = %.2f\n",
                   fh->ev_per_cpu_s / fr->ev_per_cpu_s, fh->ev_per_cpu_s / fp->ev_per_cpu_s);
        if (fh->ev_per_cpu_s > 0 && sum[C_RAW_ENV].ev_per_cpu_s > 0)
            printf("per CPU second: acme-hookd %.0f, the floor for its output (raw passthrough + "
                   "result headers) %.0f: %.2f of it%s\n",
                   fh->ev_per_cpu_s, sum[C_RAW_ENV].ev_per_cpu_s,
                   fh->ev_per_cpu_s / sum[C_RAW_ENV].ev_per_cpu_s,
                   b.cl ? "" : " (target on the real broker: 250000 events per CPU second)");
        if (contender_runs(&b, C_EOS) && sum[C_EOS].eps > 0 && fh->eps > 0)
            printf("exactly_once (100 ms) / at_least_once = %.2f   (target >= 0.5: %s); "
                   "per CPU second %.2f; 1 s interval: %.2f\n",
                   sum[C_EOS].eps / fh->eps,
                   sum[C_EOS].whole_run || fh->whole_run ? "n/a, too few events"
                                                         : verdict(sum[C_EOS].eps / fh->eps >= 0.5),
                   fh->ev_per_cpu_s > 0 ? sum[C_EOS].ev_per_cpu_s / fh->ev_per_cpu_s : 0,
                   sum[C_EOS_1S].eps / fh->eps);
        else if (!contender_runs(&b, C_EOS))
            printf("exactly_once: not measured on the mock cluster (no transactions there; use "
                   "--kafka)\n");
        if (fh->rss_mb > 0)
            printf("acme-hookd peak RSS (VmHWM)  = %.1f MB (target < 96 MB on a 200k backlog: "
                   "%s)\n",
                   fh->rss_mb,
                   o->events < 200000 ? "n/a, smaller backlog" : verdict(fh->rss_mb < 96));
    }
    if (o->sleep_events > 0)
        printf("50 ms handler, 8 threads, %ld partitions: %.0f events/s over %ld events "
               "(target >= 120: %s)\n",
               o->partitions, fs.eps, o->sleep_events,
               fs.whole_run ? "n/a, too few events" : verdict(fs.eps >= 120));
    fflush(stdout);

    rd_kafka_destroy(b.producer);
    itk_pki_destroy(&b.pki);
    itk_cluster_destroy(b.cl);
    {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b.workdir);
        if (all_ran && system(cmd) != 0)
            fprintf(stderr, "hookd_bench: could not remove %s\n", b.workdir);
    }
    return all_ran ? 0 : 1;
}

/*
 * The python handler against the C one: acme2certifier's cn_dump_hooks in
 * the python handler beside the C cn_dump, isolation none and process, 1
 * and 4 threads, one after the other on the same broker, no latency phase.
 */
static int run_handlers(bench_opts_t *o)
{
    static const struct {
        const char *who, *name, *hooks, *worker;
    } m[] = {
        {"cn1", "C cn_dump, none, 1 thr", "hooks_file = cn_dump\ncn_dump_san_only = true\n",
         "threads = 1\nisolation = none\n"},
        {"cn4", "C cn_dump, none, 4 thr", "hooks_file = cn_dump\ncn_dump_san_only = true\n",
         "threads = 4\nisolation = none\n"},
        {"cp1", "C cn_dump, process, 1 thr", "hooks_file = cn_dump\ncn_dump_san_only = true\n",
         "threads = 1\nisolation = process\n"},
        {"cp4", "C cn_dump, process, 4 thr", "hooks_file = cn_dump\ncn_dump_san_only = true\n",
         "threads = 4\nisolation = process\n"},
        {"pn1", "python cn_dump_hooks, none, 1 thr", NULL, "threads = 1\nisolation = none\n"},
        {"pn4", "python cn_dump_hooks, none, 4 thr", NULL, "threads = 4\nisolation = none\n"},
        {"pp1", "python cn_dump_hooks, process, 1 thr", NULL, "threads = 1\nisolation = process\n"},
        {"pp4", "python cn_dump_hooks, process, 4 thr", NULL, "threads = 4\nisolation = process\n"},
    };
    enum { M = sizeof(m) / sizeof(m[0]) };
    figures_t f[M];
    bench_t b;
    char errstr[512];
    const char *pkv[] = {"enable.idempotence", "true", "linger.ms", "5", NULL};
    const char *tmp = getenv("TMPDIR");
    bool all_ran = true;

    memset(&b, 0, sizeof(b));
    memset(f, 0, sizeof(f));
    b.o = *o;
    snprintf(b.workdir, sizeof(b.workdir), "%s/hookd-bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(b.workdir))
        die("mkdtemp: %s", strerror(errno));
    if (itk_pki_create(&b.pki, "bench.example.org", errstr, sizeof(errstr)))
        die("%s", errstr);
    if (!(b.cl = itk_cluster_create(1, errstr, sizeof(errstr))))
        die("mock cluster: %s", errstr);
    snprintf(b.bootstraps, sizeof(b.bootstraps), "%s", b.cl->bootstraps);
    b.producer = client(&b, RD_KAFKA_PRODUCER, pkv);
    snprintf(b.prefix, sizeof(b.prefix), "bench-%ld-handlers", (long)getpid());
    for (int i = 0; i < M && !stop_flag; i++) {
        char save[400], hooks[1200], cfg[600], t[160], t2[160];
        snprintf(save, sizeof(save), "%s/%s", b.workdir, m[i].who);
        if (mkdir(save, 0700) != 0)
            die("mkdir %s: %s", save, strerror(errno));
        if (m[i].hooks)
            snprintf(hooks, sizeof(hooks), "%ssave_path = %s\n", m[i].hooks, save);
        else
            snprintf(hooks, sizeof(hooks),
                     "hooks_file = python\n"
                     "python_hooks_module = acme2certifier.hookhandlers.cn_dump_hooks\n"
                     "python_path = %s\nsave_path = %s\n",
                     o->python_path, save);
        prepare(&b, m[i].who, o->events);
        snprintf(cfg, sizeof(cfg), "%s/%s.ini", b.workdir, m[i].who);
        hookd_config(&b, cfg, m[i].who, hooks, "", m[i].worker);
        snprintf(t, sizeof(t), "%s-%s.in", b.prefix, m[i].who);
        snprintf(t2, sizeof(t2), "%s-%s.out", b.prefix, m[i].who);
        f[i].name = m[i].name;
        {
            char *argv[] = {(char *)o->worker, "-c", cfg, NULL};
            measure(&b, &f[i], m[i].who, argv, t, t2, o->events, 0, 0);
        }
        all_ran = all_ran && f[i].ran;
    }
    printf("\n%ld events over %ld partitions per contender, librdkafka mock cluster; "
           "CPU: the worker and its isolated children\n\n",
           o->events, o->partitions);
    printf("| %-38s | %10s | %15s | %12s | %9s |\n", "handler, isolation, threads", "events/s",
           "events per CPU-s", "CPU per event", "startup s");
    printf("|%s|%s|%s|%s|%s|\n", "----------------------------------------", "------------",
           "-----------------", "--------------", "-----------");
    for (int i = 0; i < M; i++) {
        char us[32] = "-";
        if (f[i].ev_per_cpu_s > 0)
            snprintf(us, sizeof(us), "%.0f us", 1e6 / f[i].ev_per_cpu_s);
        printf("| %-38s | %9.0f%s | %15.0f | %12s | %9.1f |\n", f[i].name, f[i].eps,
               f[i].whole_run ? "*" : " ", f[i].ev_per_cpu_s, us, f[i].startup_s);
    }
    rd_kafka_destroy(b.producer);
    itk_cluster_destroy(b.cl);
    itk_pki_destroy(&b.pki);
    if (all_ran) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b.workdir);
        if (system(cmd) != 0)
            fprintf(stderr, "hookd_bench: could not remove %s\n", b.workdir);
    }
    return all_ran ? 0 : 1;
}

/*
 * Key ordering with a slow handler (see the head comment): for 1 and 32
 * input partitions, ordering = partition then ordering = key, each on
 * fresh topics with its backlog waiting before the worker starts.
 */
static int run_keys(bench_opts_t *o)
{
    static const long parts[] = {1, 32};
    /* ordering, delivery; the exactly_once modes on a real broker only */
    static const char *const orders[] = {"partition", "key", "partition", "key"};
    static const char *const delivery[] = {"at_least_once", "at_least_once", "exactly_once",
                                           "exactly_once"};
    figures_t f[2][4];
    long nev[2][4];
    int nmodes;
    bench_t b;
    char errstr[512], in[160], to[160], td[160], cfg[600], hooks[700], wextra[200], who[16];
    const char *pkv[] = {"enable.idempotence", "true", "linger.ms", "5", NULL};
    const char *tmp = getenv("TMPDIR");
    long pid = (long)getpid();
    bool all_ran = true;

    memset(&b, 0, sizeof(b));
    memset(f, 0, sizeof(f));
    b.o = *o;
    b.key_mod = o->keys;
    snprintf(b.workdir, sizeof(b.workdir), "%s/hookd-bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(b.workdir))
        die("mkdtemp: %s", strerror(errno));
    if (itk_pki_create(&b.pki, "bench.example.org", errstr, sizeof(errstr)))
        die("%s", errstr);
    if (o->bootstrap) {
        snprintf(b.bootstraps, sizeof(b.bootstraps), "%s", o->bootstrap);
    } else {
        if (!(b.cl = itk_cluster_create(1, errstr, sizeof(errstr))))
            die("mock cluster: %s", errstr);
        snprintf(b.bootstraps, sizeof(b.bootstraps), "%s", b.cl->bootstraps);
    }
    b.producer = client(&b, RD_KAFKA_PRODUCER, pkv);
    nmodes = b.cl != NULL ? 2 : 4; /* the mock cluster keeps no transactions */
    for (int pi = 0; pi < 2 && !stop_flag; pi++) {
        for (int oi = 0; oi < nmodes && !stop_flag; oi++) {
            bool eos = oi >= 2;
            /* One partition ordered by partition runs 20 events/s: fewer events, same window. */
            long n = orders[oi][0] == 'p' && parts[pi] == 1 ? (o->events < 600 ? o->events : 600)
                                                            : o->events;
            /* The mock cluster keeps about 5 MiB per partition and drops the
             * oldest messages beyond it: a bigger backlog would lose events. */
            if (b.cl != NULL && n > MOCK_EVENTS_PER_PARTITION * parts[pi])
                n = MOCK_EVENTS_PER_PARTITION * parts[pi];
            nev[pi][oi] = n;
            b.o.partitions = parts[pi];
            snprintf(who, sizeof(who), "k%ld%c%s", parts[pi], orders[oi][0], eos ? "x" : "");
            snprintf(b.prefix, sizeof(b.prefix), "bench-%ld", pid);
            snprintf(in, sizeof(in), "%s-%s.in", b.prefix, who);
            snprintf(to, sizeof(to), "%s-%s.out", b.prefix, who);
            snprintf(td, sizeof(td), "%s-%s.dlq", b.prefix, who);
            create_topic(&b, in, (int)parts[pi]);
            create_topic(&b, to, (int)parts[pi]);
            create_topic(&b, td, 1);
            backlog(&b, in, who, n);
            snprintf(cfg, sizeof(cfg), "%s/%s.ini", b.workdir, who);
            snprintf(hooks, sizeof(hooks), "hooks_file = %s\nslow_sleep_ms = 50\n",
                     o->slow_handler);
            snprintf(wextra, sizeof(wextra), "threads = %ld\nordering = %s\n", o->threads,
                     orders[oi]);
            hookd_config(&b, cfg, who, hooks,
                         eos ? "delivery = exactly_once\ntransaction_interval_ms = 100\n" : "",
                         wextra);
            {
                char *argv[] = {(char *)o->worker, "-c", cfg, NULL};
                measure(&b, &f[pi][oi], who, argv, in, to, n, 0, 0);
            }
            all_ran = all_ran && f[pi][oi].ran;
        }
    }
    printf("\nkey ordering: 50 ms handler, %ld threads, %ld distinct keys, broker %s\n", o->threads,
           o->keys,
           b.cl ? "librdkafka 2.0.2 mock cluster (in the benchmark process)" : b.bootstraps);
    {
        double la[3];
        if (getloadavg(la, 3) == 3)
            printf("machine: %ld CPUs, load average %.2f %.2f %.2f at the end\n\n",
                   sysconf(_SC_NPROCESSORS_ONLN), la[0], la[1], la[2]);
    }
    printf("| %10s | %-9s | %-13s | %7s | %10s | %9s | %9s | %-9s |\n", "partitions", "ordering",
           "delivery", "events", "events/s", "ev/CPU-s", "VmHWM MB", "exit");
    printf("|------------|-----------|---------------|---------|------------|-----------|----------"
           "-|-----------|\n");
    for (int pi = 0; pi < 2; pi++)
        for (int oi = 0; oi < nmodes; oi++)
            printf("| %10ld | %-9s | %-13s | %7ld | %9.0f%s | %9.0f | %9.1f | %-9s |\n", parts[pi],
                   orders[oi], delivery[oi], nev[pi][oi], f[pi][oi].eps,
                   f[pi][oi].whole_run ? "*" : " ", f[pi][oi].ev_per_cpu_s, f[pi][oi].rss_mb,
                   f[pi][oi].status);
    printf("* too few events for a steady state: rate over the whole run, start-up included\n");
    printf("1 partition, ordering = key: %.0f events/s (target >= 1000: %s); ordering = "
           "partition: %.0f events/s (bound: 1 / 50 ms = 20)\n",
           f[0][1].eps, f[0][1].whole_run ? "n/a, too few events" : verdict(f[0][1].eps >= 1000),
           f[0][0].eps);
    fflush(stdout);
    rd_kafka_destroy(b.producer);
    itk_pki_destroy(&b.pki);
    itk_cluster_destroy(b.cl);
    {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b.workdir);
        if (all_ran && system(cmd) != 0)
            fprintf(stderr, "hookd_bench: could not remove %s\n", b.workdir);
    }
    return all_ran ? 0 : 1;
}

/*
 * One contender alone, for a profiler: `profile --contender
 * hookd|raw|raw-envelope --events N [--wrap "CMD ARGS"]` produces N events,
 * starts the contender (acme-hookd with its defaults and the no-op handler,
 * or the raw passthrough, with or without a result's headers) behind the
 * wrapper command (e.g. valgrind --tool=callgrind ...), waits for its N
 * results, stops it with SIGTERM and prints one line of figures. No latency
 * phase, no rounds. tests/bench/run.sh --callgrind
 * drives it at two backlog sizes and takes the difference, so start-up and
 * shutdown cancel out of the per-event counts.
 */
static int run_profile(bench_opts_t *o)
{
    bench_t b;
    char errstr[512], cfg[600], grp[160], ti[160], to[160], wrap[1024];
    char *argv[64];
    int argc = 0;
    figures_t f = {.name = NULL};
    const char *pkv[] = {
        "enable.idempotence",           "true",    "linger.ms", "5", "batch.num.messages", "10000",
        "queue.buffering.max.messages", "1000000", NULL};
    const char *tmp = getenv("TMPDIR");
    bool envelope = !strcmp(o->contender, "raw-envelope");
    bool raw = envelope || !strcmp(o->contender, "raw");

    memset(&b, 0, sizeof(b));
    b.o = *o;
    snprintf(b.workdir, sizeof(b.workdir), "%s/hookd-bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(b.workdir))
        die("mkdtemp: %s", strerror(errno));
    if (readlink("/proc/self/exe", b.self, sizeof(b.self) - 1) < 0)
        die("readlink /proc/self/exe: %s", strerror(errno));
    if (itk_pki_create(&b.pki, "bench.example.org", errstr, sizeof(errstr)))
        die("%s", errstr);
    if (o->bootstrap) {
        snprintf(b.bootstraps, sizeof(b.bootstraps), "%s", o->bootstrap);
    } else {
        if (!(b.cl = itk_cluster_create(1, errstr, sizeof(errstr))))
            die("mock cluster: %s", errstr);
        snprintf(b.bootstraps, sizeof(b.bootstraps), "%s", b.cl->bootstraps);
    }
    b.producer = client(&b, RD_KAFKA_PRODUCER, pkv);
    snprintf(b.prefix, sizeof(b.prefix), "prof-%ld", (long)getpid());
    prepare(&b, raw ? "raw" : "hookd", o->events);

    /* the wrapper's words, split on blanks (no quoting) */
    snprintf(wrap, sizeof(wrap), "%s", o->wrap ? o->wrap : "");
    for (char *save = NULL, *w = strtok_r(wrap, " \t", &save); w && argc < 40;
         w = strtok_r(NULL, " \t", &save))
        argv[argc++] = w;
    snprintf(ti, sizeof(ti), "%s-%s.in", b.prefix, raw ? "raw" : "hookd");
    snprintf(to, sizeof(to), "%s-%s.out", b.prefix, raw ? "raw" : "hookd");
    snprintf(grp, sizeof(grp), "%s-%s", b.prefix, raw ? "raw" : "hookd");
    if (raw) {
        char *pa[] = {b.self,        "passthrough",
                      "--bootstrap", b.bootstraps,
                      "--group",     grp,
                      "--input",     ti,
                      "--output",    to,
                      "--envelope",  envelope ? "yes" : "no",
                      NULL};
        for (int i = 0; pa[i]; i++)
            argv[argc++] = pa[i];
    } else {
        /* --kafka-set / --worker-set 'k=v;k=v': [kafka] / [worker] lines,
         * for trying settings */
        char extra[1024], wextra[1024];
        snprintf(extra, sizeof(extra), "%s%s", o->kafka_set ? o->kafka_set : "",
                 o->kafka_set ? ";" : "");
        snprintf(wextra, sizeof(wextra), "%s%s", o->worker_set ? o->worker_set : "",
                 o->worker_set ? ";" : "");
        for (char *c = extra; *c; c++)
            if (*c == ';')
                *c = '\n';
        for (char *c = wextra; *c; c++)
            if (*c == ';')
                *c = '\n';
        snprintf(cfg, sizeof(cfg), "%s/%s.ini", b.workdir, grp);
        hookd_config(&b, cfg, "hookd", "hooks_file = skeleton\n", extra, wextra);
        argv[argc++] = (char *)o->worker;
        argv[argc++] = "-c";
        argv[argc++] = cfg;
    }
    argv[argc] = NULL;
    measure(&b, &f, raw ? "raw" : "hookd", argv, ti, to, o->events, 0, 0);
    printf("profile %s: %ld/%ld results, %.0f events/s, %.0f events per CPU second, %s\n",
           o->contender, f.got, o->events, f.eps, f.ev_per_cpu_s, f.status);
    fflush(stdout);
    rd_kafka_destroy(b.producer);
    itk_pki_destroy(&b.pki);
    itk_cluster_destroy(b.cl);
    {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b.workdir);
        if (f.ran && system(cmd) != 0)
            fprintf(stderr, "hookd_bench: could not remove %s\n", b.workdir);
    }
    return f.ran ? 0 : 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: hookd_bench run --worker PATH --python PY --py-worker SCRIPT "
            "--slow-handler SO\n"
            "                   [--events N] [--partitions P] [--bootstrap B]\n"
            "                   [--latency-rate R] [--latency-seconds S] [--sleep-events M]\n"
            "                   [--rounds K] [--warmup-events W]\n"
            "       hookd_bench passthrough --bootstrap B --group G --input T --output T\n"
            "                   [--envelope yes]\n"
            "       hookd_bench keys --worker PATH --slow-handler SO [--events N] [--keys K]\n"
            "                   [--threads T] [--bootstrap B]\n"
            "       hookd_bench handlers --worker PATH --python-path SITE_PACKAGES\n"
            "                   [--events N] [--partitions P]\n"
            "       hookd_bench profile --contender hookd|raw|raw-envelope [--worker PATH]\n"
            "                   [--events N]\n"
            "                   [--partitions P] [--bootstrap B] [--wrap 'CMD ARGS']\n"
            "                   [--timeout-s S] [--kafka-set 'key=value;...']\n"
            "                   [--worker-set 'key=value;...']\n");
    exit(2);
}

int main(int argc, char **argv)
{
    bench_opts_t o = {.events = 200000,
                      .partitions = 32,
                      .latency_rate = 1000,
                      .latency_seconds = 10,
                      .sleep_events = 1200,
                      .rounds = 3,
                      .warmup_events = 50000,
                      .keys = 1000,
                      .threads = 64};
    const char *group = NULL, *in = NULL, *out = NULL;
    bool envelope = false;
    if (argc < 2)
        usage();
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--worker"))
            o.worker = v;
        else if (!strcmp(a, "--python"))
            o.python = v;
        else if (!strcmp(a, "--py-worker"))
            o.py_worker = v;
        else if (!strcmp(a, "--slow-handler"))
            o.slow_handler = v;
        else if (!strcmp(a, "--bootstrap"))
            o.bootstrap = *v ? v : NULL;
        else if (!strcmp(a, "--events"))
            o.events = atol(v);
        else if (!strcmp(a, "--partitions"))
            o.partitions = atol(v);
        else if (!strcmp(a, "--latency-rate"))
            o.latency_rate = atol(v);
        else if (!strcmp(a, "--latency-seconds"))
            o.latency_seconds = atol(v);
        else if (!strcmp(a, "--sleep-events"))
            o.sleep_events = atol(v);
        else if (!strcmp(a, "--rounds"))
            o.rounds = atol(v);
        else if (!strcmp(a, "--warmup-events"))
            o.warmup_events = atol(v);
        else if (!strcmp(a, "--keys"))
            o.keys = atol(v);
        else if (!strcmp(a, "--threads"))
            o.threads = atol(v);
        else if (!strcmp(a, "--python-path"))
            o.python_path = v;
        else if (!strcmp(a, "--contender"))
            o.contender = v;
        else if (!strcmp(a, "--wrap"))
            o.wrap = v;
        else if (!strcmp(a, "--kafka-set"))
            o.kafka_set = v;
        else if (!strcmp(a, "--worker-set"))
            o.worker_set = v;
        else if (!strcmp(a, "--timeout-s"))
            o.timeout_s = atol(v);
        else if (!strcmp(a, "--group"))
            group = v;
        else if (!strcmp(a, "--input"))
            in = v;
        else if (!strcmp(a, "--output"))
            out = v;
        else if (!strcmp(a, "--envelope"))
            envelope = !strcmp(v, "yes");
        else
            usage();
        i++;
    }
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(argv[1], "passthrough")) {
        if (!o.bootstrap || !group || !in || !out)
            usage();
        return passthrough(o.bootstrap, group, in, out, envelope);
    }
    if (!strcmp(argv[1], "handlers")) {
        if (!o.worker || !o.python_path || o.events < 1 || o.partitions < 1 ||
            o.partitions > MAX_PARTS)
            usage();
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        return run_handlers(&o);
    }
    if (!strcmp(argv[1], "profile")) {
        if (!o.contender ||
            (strcmp(o.contender, "raw") && strcmp(o.contender, "raw-envelope") &&
             (strcmp(o.contender, "hookd") || !o.worker)) ||
            o.events < 1 || o.partitions < 1 || o.partitions > MAX_PARTS)
            usage();
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        return run_profile(&o);
    }
    if (!strcmp(argv[1], "keys")) {
        if (!o.worker || !o.slow_handler || o.events < 1 || o.keys < 1 || o.threads < 1 ||
            o.threads > 256)
            usage();
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        return run_keys(&o);
    }
    if (strcmp(argv[1], "run") || !o.worker || !o.python || !o.py_worker || !o.slow_handler ||
        o.events < 1 || o.partitions < 1 || o.partitions > MAX_PARTS || o.rounds < 1 ||
        o.rounds > BENCH_MAX_ROUNDS || o.warmup_events < 0)
        usage();
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    return run(&o);
}
