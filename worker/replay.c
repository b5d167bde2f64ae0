/* SPDX-License-Identifier: MIT */
/*
 * `acme-hookd replay` (see replay.h; the choices are replay_plan.c's).
 *
 * One consumer, assigned (not subscribed) to the dead-letter partitions
 * from the replay group's committed offsets, and one transactional
 * producer. Records are taken in batches of at most REPLAY_BATCH_MAX or
 * one second; each batch is one transaction: the chosen records produced
 * to the input topic, then the group's next dead-letter offsets of every
 * partition the batch read (sent, skipped or refused alike) added with
 * send_offsets_to_transaction, then committed. The dead-letter offset is
 * therefore never committed before the input record is acknowledged, and
 * the input record never becomes visible (to read_committed consumers,
 * the worker's default) without its offset committed: SIGKILL between the
 * two loses or repeats nothing.
 */
#include "replay.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "auth.h"
#include "clock.h"
#include "config.h"
#include "consumer.h"
#include "engine.h"
#include "log.h"
#include "replay_plan.h"
#include "request.h"
#include "result.h"

#define PROG "acme-hookd replay"
#define ERRSTR_SIZE 4096
#define REPLAY_BATCH_MAX 500       /* records per transaction */
#define REPLAY_BATCH_MS 1000       /* and at most this long */
#define REPLAY_TIMEOUT_MS 30000    /* metadata, offsets, transaction calls */
#define REPLAY_TXN_TIMEOUT "10000" /* transaction.timeout.ms unless the operator set one */

#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_KAFKA 3
#define EXIT_INTERRUPTED 4

static atomic_int replay_stop;

static void on_stop(int sig)
{
    (void)sig;
    atomic_store_explicit(&replay_stop, 1, memory_order_relaxed);
}

static bool stopping(void)
{
    return atomic_load_explicit(&replay_stop, memory_order_relaxed) != 0;
}

static void usage(FILE *out)
{
    fputs("Usage: acme-hookd replay -c FILE [--dry-run | --reason TEXT] [options]\n"
          "\n"
          "Sends dead letters back to the input topic of the worker configuration FILE\n"
          "(its brokers, security settings and [auth] keys), keeping their key, value and\n"
          "headers, with hookd.replay.* provenance. A dead letter whose success hooks\n"
          "already ran (an issued event that failed in post) is sent with\n"
          "hookd.phases.done so that the worker runs only what is left: no success hook\n"
          "runs twice. Reads up to the end of the dead-letter topic as found at start.\n"
          "\n"
          "Selection (all must hold; LIST is comma-separated):\n"
          "  --class LIST         error classes, e.g. hook_failed,retries_exhausted\n"
          "  --phase LIST         failing phases: pre, success, post\n"
          "  --handler LIST       failing handlers\n"
          "  --key KEY            this Kafka key only\n"
          "  --since TIME         dead letters written at or after TIME\n"
          "  --until TIME         dead letters written before TIME\n"
          "                       (TIME: RFC 3339, e.g. 2026-12-02T10:00:00Z, or epoch ms)\n"
          "  --partition N        this dead-letter partition only\n"
          "  --from-offset N      dead-letter offsets from N ...\n"
          "  --to-offset N        ... to N (inclusive)\n"
          "  --include-invalid    send invalid_event dead letters too (not sent otherwise)\n"
          "\n"
          "Run:\n"
          "  -c, --config FILE    the worker's configuration file (required)\n"
          "  --dry-run            list what would be sent; send and commit nothing\n"
          "  --reason TEXT        why, and who: written to hookd.replay.reason (required\n"
          "                       unless --dry-run)\n"
          "  --rate N[/s]         send at most N records per second\n"
          "  --group ID           the replay's consumer group (default <group_id>.replay);\n"
          "                       one group per replay: it records how far it got\n"
          "  --resume             continue the group's earlier replay from its committed\n"
          "                       offsets (without it, a group that has any is refused)\n"
          "  -h, --help           this help\n"
          "\n"
          "Each batch of records is sent in one Kafka transaction with the group's\n"
          "dead-letter offsets: interrupted at any point (SIGTERM, SIGKILL, a crash) and\n"
          "started again with --resume, it sends nothing twice.\n"
          "\n"
          "Exit status: 0 everything selected was sent (or would be, --dry-run);\n"
          "1 some selected dead letters cannot be replayed (each listed on stderr) or the\n"
          "start was refused; 2 usage error; 3 Kafka error (--resume continues);\n"
          "4 interrupted by SIGTERM/SIGINT (--resume continues).\n",
          out);
}

/* ---- the run ------------------------------------------------------------ */

typedef struct replay_part {
    int32_t partition;
    int64_t next; /* the next offset to read (and to commit) */
    int64_t end;  /* stop here: the end offset at start */
    bool touched; /* read in the current batch */
} replay_part_t;

/* One record sent in the open transaction, printed once it is committed. */
typedef struct replay_sent {
    int32_t partition;
    int64_t offset;
    char line[512];
} replay_sent_t;

typedef struct replay {
    hookd_config_t *cfg;
    hookd_auth_t *auth; /* NULL: no key */
    hookd_replay_filter_t filter;
    hookd_replay_trust_t trust;
    const char *reason;
    char group[512];
    bool dry_run, resume;
    double rate; /* 0: unlimited */
    rd_kafka_t *consumer, *producer;
    rd_kafka_consumer_group_metadata_t *cgmd;
    replay_part_t *parts;
    size_t part_count, remaining;
    replay_sent_t *batch;
    size_t batch_count;
    atomic_int delivery_failures; /* producer's delivery reports (its poll) */
    uint64_t read, sent, not_selected, invalid, refused;
    uint64_t next_send_us; /* rate limit */
} replay_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    replay_t *r = opaque;
    (void)rk;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        atomic_fetch_add(&r->delivery_failures, 1);
        hookd_log_error("replay: delivery to %s failed: %s", rd_kafka_topic_name(m->rkt),
                        rd_kafka_err2str(m->err));
    }
}

static replay_part_t *part_of(replay_t *r, int32_t partition)
{
    size_t i;
    for (i = 0; i < r->part_count; i++)
        if (r->parts[i].partition == partition)
            return &r->parts[i];
    return NULL;
}

/* Printable key: at most 64 bytes, non-printable bytes as '?'. */
static void key_text(const void *key, size_t len, char *buf, size_t size)
{
    const unsigned char *k = key;
    size_t i, n = 0;
    if (key == NULL) {
        snprintf(buf, size, "(none)");
        return;
    }
    for (i = 0; i < len && i < 64 && n + 1 < size; i++)
        buf[n++] = (k[i] >= 0x20 && k[i] < 0x7f) ? (char)k[i] : '?';
    buf[n] = '\0';
}

static const char *hdr_str(const hookd_header_t *h, size_t n, const char *name, char *buf,
                           size_t size)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (h[i].name != NULL && strcmp(h[i].name, name) == 0 && h[i].value != NULL) {
            size_t l = h[i].len < size - 1 ? h[i].len : size - 1;
            memcpy(buf, h[i].value, l);
            buf[l] = '\0';
            return buf;
        }
    }
    return "-";
}

static void now_rfc3339(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    size_t n;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

/* Wait for the rate limit; false when stopped meanwhile. */
static bool rate_wait(replay_t *r)
{
    uint64_t now;
    if (r->rate <= 0)
        return true;
    for (;;) {
        now = hookd_now_us();
        if (now >= r->next_send_us || stopping())
            break;
        uint64_t wait = r->next_send_us - now;
        struct timespec ts = {0, (long)((wait > 100000 ? 100000 : wait) * 1000)};
        nanosleep(&ts, NULL);
    }
    if (stopping())
        return false;
    if (r->next_send_us == 0 || now > r->next_send_us + 1000000)
        r->next_send_us = now; /* no burst after an idle second */
    r->next_send_us += (uint64_t)(1e6 / r->rate);
    return true;
}

/* Produce one chosen record into the open transaction. 0, or -1 (logged). */
static int send_one(replay_t *r, const rd_kafka_message_t *m, const hookd_replay_record_t *rec,
                    const hookd_replay_choice_t *c)
{
    hookd_replay_provenance_t prov;
    hookd_headers_t *h = hookd_headers_new();
    rd_kafka_headers_t *kh = NULL;
    char now[40], why[256];
    rd_kafka_resp_err_t err;
    size_t i;
    int rc = -1;

    now_rfc3339(now, sizeof(now));
    prov.topic = r->cfg->dead_letter_topic;
    prov.time = now;
    prov.reason = r->reason;
    prov.group = r->group;
    if (h == NULL || hookd_replay_headers(rec, c, &prov, h) != 0) {
        hookd_log_error("replay: out of memory");
        goto done;
    }
    if (c->resign && hookd_auth_sign(r->auth, m->key, m->key_len, m->payload, m->len, h, why,
                                     sizeof(why)) != 0) {
        hookd_log_error("replay: cannot sign dead letter %" PRId32 "@%" PRId64 ": %s", m->partition,
                        m->offset, why);
        goto done;
    }
    kh = rd_kafka_headers_new(hookd_headers_count(h));
    for (i = 0; i < hookd_headers_count(h); i++) {
        const hookd_header_t *x = hookd_headers_get(h, i);
        rd_kafka_header_add(kh, x->name, -1, x->value, x->value ? (ssize_t)x->len : 0);
    }
    for (;;) {
        err = rd_kafka_producev(r->producer, RD_KAFKA_V_TOPIC(r->cfg->input_topic),
                                RD_KAFKA_V_KEY(m->key, m->key_len),
                                RD_KAFKA_V_VALUE(m->payload, m->len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(kh),
                                RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(r->producer, 100);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        hookd_log_error("replay: cannot produce to %s: %s", r->cfg->input_topic,
                        rd_kafka_err2str(err));
        goto done;
    }
    kh = NULL; /* librdkafka owns them now */
    rd_kafka_poll(r->producer, 0);
    rc = 0;
done:
    if (kh != NULL)
        rd_kafka_headers_destroy(kh);
    hookd_headers_destroy(h);
    return rc;
}

/*
 * Commit the open batch: the dead-letter offsets of every partition it
 * read, in the same transaction as its records. 0, or -1 (logged): then
 * nothing of the batch is visible or committed.
 */
static int batch_commit(replay_t *r)
{
    rd_kafka_topic_partition_list_t *offsets =
        rd_kafka_topic_partition_list_new((int)r->part_count);
    rd_kafka_error_t *e = NULL;
    size_t i;
    int rc = -1;

    for (i = 0; i < r->part_count; i++)
        if (r->parts[i].touched)
            rd_kafka_topic_partition_list_add(offsets, r->cfg->dead_letter_topic,
                                              r->parts[i].partition)
                ->offset = r->parts[i].next;
    if (offsets->cnt > 0 && (e = rd_kafka_send_offsets_to_transaction(r->producer, offsets, r->cgmd,
                                                                      REPLAY_TIMEOUT_MS)) != NULL)
        goto fail;
    while ((e = rd_kafka_commit_transaction(r->producer, REPLAY_TIMEOUT_MS)) != NULL &&
           rd_kafka_error_is_retriable(e) && !stopping()) {
        hookd_log_warn("replay: committing the transaction: %s; trying again",
                       rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    if (e != NULL)
        goto fail;
    if (atomic_load(&r->delivery_failures) > 0) {
        /* cannot happen after a successful commit; kept as a guard */
        hookd_log_error("replay: %d delivery failure(s) in a committed transaction",
                        atomic_load(&r->delivery_failures));
        goto done;
    }
    for (i = 0; i < r->batch_count; i++)
        printf("sent %s\n", r->batch[i].line);
    r->sent += r->batch_count;
    fflush(stdout);
    rc = 0;
    goto done;
fail:
    hookd_log_error("replay: transaction failed: %s%s", rd_kafka_error_string(e),
                    rd_kafka_error_txn_requires_abort(e) ? " (aborted: nothing of this batch "
                                                           "was sent or committed)"
                                                         : "");
    if (rd_kafka_error_txn_requires_abort(e)) {
        rd_kafka_error_t *a = rd_kafka_abort_transaction(r->producer, REPLAY_TIMEOUT_MS);
        if (a != NULL)
            rd_kafka_error_destroy(a);
    }
    rd_kafka_error_destroy(e);
done:
    for (i = 0; i < r->part_count; i++)
        r->parts[i].touched = false;
    r->batch_count = 0;
    rd_kafka_topic_partition_list_destroy(offsets);
    return rc;
}

/* Handle one consumed dead letter. 0, or -1 on a Kafka error (stop). */
static int handle(replay_t *r, const rd_kafka_message_t *m, bool *txn_open)
{
    replay_part_t *p = part_of(r, m->partition);
    hookd_header_t *hv = NULL;
    rd_kafka_headers_t *hdrs = NULL;
    hookd_replay_record_t rec;
    hookd_replay_choice_t c;
    rd_kafka_timestamp_type_t tstype;
    size_t n = 0, i;
    char keyb[80], cls[64], phase[16], handler[128], done[32] = "-";
    int rc = 0;

    if (p == NULL || m->offset < p->next || m->offset >= p->end)
        return 0; /* not ours, already handled, or past the end taken at start */
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != NULL)
        n = rd_kafka_header_cnt(hdrs);
    if (n > 0 && (hv = calloc(n, sizeof(*hv))) == NULL) {
        hookd_log_error("replay: out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        const void *v;
        size_t len;
        if (rd_kafka_header_get_all(hdrs, i, &hv[i].name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        hv[i].value = v;
        hv[i].len = v ? len : 0;
    }
    memset(&rec, 0, sizeof(rec));
    rec.partition = m->partition;
    rec.offset = m->offset;
    rec.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
    if (tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
        rec.timestamp_ms = -1;
    rec.key = m->key;
    rec.key_len = m->key_len;
    rec.has_value = m->payload != NULL;
    rec.headers = hv;
    rec.header_count = i;
    r->read++;

    hookd_replay_choose(&r->filter, &r->trust, &rec, &c);
    key_text(m->key, m->key_len, keyb, sizeof(keyb));
    hdr_str(hv, i, "hookd.dlq.error.class", cls, sizeof(cls));
    switch (c.action) {
    case HOOKD_REPLAY_SKIP:
        r->not_selected++;
        break;
    case HOOKD_REPLAY_SKIP_INVALID:
        r->invalid++;
        break;
    case HOOKD_REPLAY_REFUSE:
        r->refused++;
        fprintf(stderr,
                PROG ": cannot replay %s partition %" PRId32 " offset %" PRId64 " (key %s): %s\n",
                r->cfg->dead_letter_topic, m->partition, m->offset, keyb, c.reason);
        break;
    case HOOKD_REPLAY_SEND: {
        char line[512];
        if (c.phases_done != 0)
            hookd_request_phases_format(c.phases_done, done, sizeof(done));
        snprintf(line, sizeof(line),
                 "%s/%" PRId32 "@%" PRId64 " key=%s class=%s phase=%s handler=%s -> %s "
                 "phases.done=%s",
                 r->cfg->dead_letter_topic, m->partition, m->offset, keyb, cls,
                 hdr_str(hv, i, "hookd.dlq.phase", phase, sizeof(phase)),
                 hdr_str(hv, i, "hookd.dlq.handler", handler, sizeof(handler)), r->cfg->input_topic,
                 done[0] ? done : "-");
        if (r->dry_run) {
            printf("would send %s\n", line);
            r->sent++;
            break;
        }
        if (!rate_wait(r)) {
            r->read--; /* stopped: this record stays unread, --resume reads it */
            goto out;
        }
        if (!*txn_open) {
            rd_kafka_error_t *e = rd_kafka_begin_transaction(r->producer);
            if (e != NULL) {
                hookd_log_error("replay: cannot begin a transaction: %s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
                rc = -1;
                goto out;
            }
            *txn_open = true;
        }
        if (send_one(r, m, &rec, &c) != 0) {
            rc = -1;
            goto out;
        }
        r->batch[r->batch_count].partition = m->partition;
        r->batch[r->batch_count].offset = m->offset;
        snprintf(r->batch[r->batch_count].line, sizeof(r->batch[0].line), "%s", line);
        r->batch_count++;
        break;
    }
    }
    p->next = m->offset + 1;
    p->touched = true;
    if (p->next >= p->end)
        r->remaining--;
out:
    free(hv);
    return rc;
}

/* Read and send until every partition reached its end. Returns the exit status. */
static int replay_loop(replay_t *r)
{
    while (r->remaining > 0 && !stopping()) {
        uint64_t t0 = hookd_now_us();
        size_t taken = 0;
        bool txn_open = false;

        while (r->remaining > 0 && taken < REPLAY_BATCH_MAX && !stopping() &&
               hookd_now_us() - t0 < (uint64_t)REPLAY_BATCH_MS * 1000) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(r->consumer, 100);
            int rc;
            if (m == NULL)
                continue;
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                /* The end offset taken at start may be a transaction
                 * marker or an aborted record, never delivered: reaching
                 * the log's end says the partition is done all the same. */
                replay_part_t *p = part_of(r, m->partition);
                if (p != NULL && p->next < p->end && m->offset >= p->end) {
                    p->next = p->end;
                    p->touched = true;
                    r->remaining--;
                }
                rd_kafka_message_destroy(m);
                continue;
            }
            if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                hookd_log_warn("replay: consumer: %s", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                continue;
            }
            rc = handle(r, m, &txn_open);
            rd_kafka_message_destroy(m);
            if (rc != 0) {
                if (txn_open) {
                    rd_kafka_error_t *a =
                        rd_kafka_abort_transaction(r->producer, REPLAY_TIMEOUT_MS);
                    if (a != NULL)
                        rd_kafka_error_destroy(a);
                }
                return EXIT_KAFKA;
            }
            taken++;
        }
        if (r->dry_run) {
            size_t i;
            for (i = 0; i < r->part_count; i++)
                r->parts[i].touched = false;
            continue;
        }
        if (taken == 0 && !txn_open)
            continue;
        if (!txn_open) {
            /* only skipped records: their offsets are committed all the same */
            rd_kafka_error_t *e = rd_kafka_begin_transaction(r->producer);
            if (e != NULL) {
                hookd_log_error("replay: cannot begin a transaction: %s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
                return EXIT_KAFKA;
            }
        }
        if (batch_commit(r) != 0)
            return EXIT_KAFKA;
    }
    return stopping() && r->remaining > 0 ? EXIT_INTERRUPTED : EXIT_OK;
}

/* ---- setup -------------------------------------------------------------- */

/*
 * The partitions to read, where to start and where to stop. Refuses a
 * group that already committed offsets unless --resume (a second run of a
 * finished replay would send everything again). 0, 1 refused, 3 Kafka.
 */
static int plan_partitions(replay_t *r)
{
    const char *topic = r->cfg->dead_letter_topic;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->consumer, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t err;
    int rc = EXIT_KAFKA, i;
    bool has_commits = false;

    if (rkt == NULL)
        goto done;
    err = rd_kafka_metadata(r->consumer, 0, rkt, &md, REPLAY_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
        md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, PROG ": dead-letter topic %s: %s\n", topic,
                rd_kafka_err2str(err != RD_KAFKA_RESP_ERR_NO_ERROR ? err
                                 : md->topic_cnt == 1              ? md->topics[0].err
                                                      : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        rc = EXIT_FAILED;
        goto done;
    }
    list = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        if (r->filter.partition < 0 || r->filter.partition == p)
            rd_kafka_topic_partition_list_add(list, topic, p);
    }
    if (list->cnt == 0) {
        fprintf(stderr, PROG ": %s has no partition %" PRId32 "\n", topic, r->filter.partition);
        rc = EXIT_FAILED;
        goto done;
    }
    err = rd_kafka_committed(r->consumer, list, REPLAY_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, PROG ": reading the committed offsets of group %s: %s\n", r->group,
                rd_kafka_err2str(err));
        goto done;
    }
    r->parts = calloc((size_t)list->cnt, sizeof(*r->parts));
    if (r->parts == NULL)
        goto done;
    for (i = 0; i < list->cnt; i++) {
        replay_part_t *p = &r->parts[r->part_count++];
        int64_t lo = 0, hi = 0;
        err = rd_kafka_query_watermark_offsets(r->consumer, topic, list->elems[i].partition, &lo,
                                               &hi, REPLAY_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, PROG ": end offsets of %s: %s\n", topic, rd_kafka_err2str(err));
            goto done;
        }
        p->partition = list->elems[i].partition;
        p->next = lo;
        if (list->elems[i].offset >= 0) {
            has_commits = true;
            if (list->elems[i].offset > lo)
                p->next = list->elems[i].offset;
        }
        if (r->filter.from_offset >= 0 && p->next < r->filter.from_offset)
            p->next = r->filter.from_offset;
        p->end = hi;
        if (r->filter.to_offset >= 0 && p->end > r->filter.to_offset + 1)
            p->end = r->filter.to_offset + 1;
        if (p->next < p->end)
            r->remaining++;
    }
    if (has_commits && !r->resume) {
        fprintf(stderr,
                PROG ": group %s has already replayed part of %s; --resume continues it, "
                     "--group NEW starts another replay\n",
                r->group, topic);
        rc = EXIT_FAILED;
        goto done;
    }
    /* assign only what is left to read */
    rd_kafka_topic_partition_list_destroy(list);
    list = rd_kafka_topic_partition_list_new((int)r->part_count);
    for (size_t k = 0; k < r->part_count; k++)
        if (r->parts[k].next < r->parts[k].end)
            rd_kafka_topic_partition_list_add(list, topic, r->parts[k].partition)->offset =
                r->parts[k].next;
    err = rd_kafka_assign(r->consumer, list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, PROG ": assign: %s\n", rd_kafka_err2str(err));
        goto done;
    }
    rc = EXIT_OK;
done:
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    return rc;
}

static rd_kafka_t *client_new(replay_t *r, hookd_kafka_role_t role, char *errstr, size_t size)
{
    rd_kafka_conf_t *conf =
        hookd_kafka_conf_new(r->cfg, role, r->cfg->bootstrap_servers, errstr, size);
    rd_kafka_t *rk;
    char txn_id[600], cur[32];
    size_t cur_len = sizeof(cur);

    if (conf == NULL)
        return NULL;
    if (hookd_kafka_conf_set(conf, "client.id", "client.id", "acme-hookd-replay", errstr, size) ||
        hookd_kafka_conf_set(conf, "statistics.interval.ms", "statistics.interval.ms", "0", errstr,
                             size))
        goto error;
    if (role == HOOKD_KAFKA_CONSUMER) {
        if (hookd_kafka_conf_set(conf, "--group", "group.id", r->group, errstr, size) ||
            hookd_kafka_conf_set(conf, "enable.partition.eof", "enable.partition.eof", "true",
                                 errstr, size))
            goto error;
    } else {
        /* one transactional id per replay group: a second replay of the same
         * group fences the first, and a restart aborts what a killed run
         * left open */
        snprintf(txn_id, sizeof(txn_id), "acme-hookd-replay.%s", r->group);
        if (hookd_kafka_conf_set(conf, "transactional.id", "transactional.id", txn_id, errstr,
                                 size))
            goto error;
        /* A transaction a killed replay left open holds back the worker's
         * read of that input partition until it times out (or the next
         * replay of the group starts): 10 s rather than librdkafka's 60 s,
         * unless the operator chose. A record's delivery must fit in it. */
        if (rd_kafka_conf_get(conf, "transaction.timeout.ms", cur, &cur_len) == RD_KAFKA_CONF_OK &&
            strcmp(cur, "60000") == 0) {
            if (hookd_kafka_conf_set(conf, "transaction.timeout.ms", "transaction.timeout.ms",
                                     REPLAY_TXN_TIMEOUT, errstr, size))
                goto error;
            cur_len = sizeof(cur);
            if (rd_kafka_conf_get(conf, "message.timeout.ms", cur, &cur_len) == RD_KAFKA_CONF_OK &&
                atol(cur) > atol(REPLAY_TXN_TIMEOUT) &&
                hookd_kafka_conf_set(conf, "message.timeout.ms", "message.timeout.ms",
                                     REPLAY_TXN_TIMEOUT, errstr, size))
                goto error;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rd_kafka_conf_set_opaque(conf, r);
    }
    rk = rd_kafka_new(role == HOOKD_KAFKA_CONSUMER ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf,
                      errstr, size);
    if (rk == NULL)
        goto error;
    return rk;
error:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static int parse_offset(const char *s, int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0)
        return -1;
    *out = v;
    return 0;
}

int hookd_replay_main(int argc, char **argv, char **envp)
{
    enum {
        O_CLASS = 256,
        O_PHASE,
        O_HANDLER,
        O_KEY,
        O_SINCE,
        O_UNTIL,
        O_PARTITION,
        O_FROM,
        O_TO,
        O_INVALID,
        O_DRY,
        O_REASON,
        O_RATE,
        O_GROUP,
        O_RESUME
    };
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"class", required_argument, NULL, O_CLASS},
        {"phase", required_argument, NULL, O_PHASE},
        {"handler", required_argument, NULL, O_HANDLER},
        {"key", required_argument, NULL, O_KEY},
        {"since", required_argument, NULL, O_SINCE},
        {"until", required_argument, NULL, O_UNTIL},
        {"partition", required_argument, NULL, O_PARTITION},
        {"from-offset", required_argument, NULL, O_FROM},
        {"to-offset", required_argument, NULL, O_TO},
        {"include-invalid", no_argument, NULL, O_INVALID},
        {"dry-run", no_argument, NULL, O_DRY},
        {"reason", required_argument, NULL, O_REASON},
        {"rate", required_argument, NULL, O_RATE},
        {"group", required_argument, NULL, O_GROUP},
        {"resume", no_argument, NULL, O_RESUME},
        {NULL, 0, NULL, 0},
    };
    char *errstr = malloc(ERRSTR_SIZE);
    const char *config = NULL, *group = NULL;
    replay_t r;
    struct sigaction sa;
    int opt, rc = EXIT_USAGE;
    int64_t v;

    memset(&r, 0, sizeof(r));
    hookd_replay_filter_init(&r.filter);
    if (errstr == NULL)
        return EXIT_FAILED;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 'h':
            usage(stdout);
            rc = EXIT_OK;
            goto out;
        case O_CLASS:
            r.filter.classes = optarg;
            break;
        case O_PHASE:
            if (hookd_replay_check_phases(optarg, errstr, ERRSTR_SIZE) != 0) {
                fprintf(stderr, PROG ": --phase: %s\n", errstr);
                goto out;
            }
            r.filter.phases = optarg;
            break;
        case O_HANDLER:
            r.filter.handlers = optarg;
            break;
        case O_KEY:
            r.filter.key = optarg;
            r.filter.key_len = strlen(optarg);
            break;
        case O_SINCE:
        case O_UNTIL:
            if (hookd_replay_parse_time(optarg, &v) != 0) {
                fprintf(stderr, PROG ": --%s: '%s' is neither RFC 3339 nor epoch milliseconds\n",
                        opt == O_SINCE ? "since" : "until", optarg);
                goto out;
            }
            *(opt == O_SINCE ? &r.filter.since_ms : &r.filter.until_ms) = v;
            break;
        case O_PARTITION:
            if (parse_offset(optarg, &v) != 0 || v > INT32_MAX) {
                fprintf(stderr, PROG ": --partition: '%s' is not a partition number\n", optarg);
                goto out;
            }
            r.filter.partition = (int32_t)v;
            break;
        case O_FROM:
        case O_TO:
            if (parse_offset(optarg, opt == O_FROM ? &r.filter.from_offset : &r.filter.to_offset) !=
                0) {
                fprintf(stderr, PROG ": --%s: '%s' is not an offset\n",
                        opt == O_FROM ? "from-offset" : "to-offset", optarg);
                goto out;
            }
            break;
        case O_INVALID:
            r.filter.include_invalid = true;
            break;
        case O_DRY:
            r.dry_run = true;
            break;
        case O_REASON:
            r.reason = optarg;
            break;
        case O_RATE:
            if (hookd_replay_parse_rate(optarg, &r.rate) != 0) {
                fprintf(stderr, PROG ": --rate: '%s' is not N or N/s (N > 0)\n", optarg);
                goto out;
            }
            break;
        case O_GROUP:
            group = optarg;
            break;
        case O_RESUME:
            r.resume = true;
            break;
        default:
            fprintf(stderr, "Try 'acme-hookd replay --help'.\n");
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
        goto out;
    }
    if (config == NULL) {
        fprintf(stderr, PROG ": -c FILE (the worker's configuration) is required\n");
        goto out;
    }
    if (!r.dry_run && (r.reason == NULL || r.reason[0] == '\0')) {
        fprintf(stderr, PROG ": --reason TEXT is required (it is recorded with each record "
                             "sent), or --dry-run\n");
        goto out;
    }
    if (r.filter.until_ms >= 0 && r.filter.since_ms >= r.filter.until_ms) {
        fprintf(stderr, PROG ": --since must be before --until\n");
        goto out;
    }

    rc = EXIT_FAILED;
    r.cfg = hookd_config_load(config, envp, errstr, ERRSTR_SIZE);
    if (r.cfg == NULL) {
        fprintf(stderr, PROG ": invalid configuration: %s\n", errstr);
        goto out;
    }
    hookd_log_setup(r.cfg->log_level, r.cfg->log_format);
    if (r.cfg->bootstrap_servers == NULL || r.cfg->bootstrap_servers[0] == '\0') {
        fprintf(stderr, PROG ": [kafka] bootstrap_servers is not set (the embedded broker "
                             "lives only inside a worker)\n");
        goto out;
    }
    if (r.cfg->auth_keys != NULL && r.cfg->auth_keys[0] != '\0') {
        /* the replayer signs what it changes with the worker's signing key
         * (or the first one listed), whatever sign_results says */
        hookd_config_t signer = *r.cfg;
        signer.auth_sign_results = true;
        r.auth = hookd_auth_create(&signer, errstr, ERRSTR_SIZE);
        if (r.auth == NULL) {
            fprintf(stderr, PROG ": [auth] keys: %s\n", errstr);
            goto out;
        }
    }
    r.trust.auth_require = r.cfg->auth_require;
    r.trust.phases_done_honoured = r.cfg->auth_require || r.cfg->trust_event_flags;
    r.trust.can_sign = r.auth != NULL;
    snprintf(r.group, sizeof(r.group), "%s", group != NULL ? group : "");
    if (group == NULL)
        snprintf(r.group, sizeof(r.group), "%s.replay", r.cfg->group_id);
    if ((r.batch = calloc(REPLAY_BATCH_MAX, sizeof(*r.batch))) == NULL)
        goto out;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if ((r.consumer = client_new(&r, HOOKD_KAFKA_CONSUMER, errstr, ERRSTR_SIZE)) == NULL) {
        fprintf(stderr, PROG ": consumer: %s\n", errstr);
        goto out;
    }
    rd_kafka_poll_set_consumer(r.consumer);
    if ((rc = plan_partitions(&r)) != EXIT_OK)
        goto out;
    if (!r.dry_run) {
        rd_kafka_error_t *e;
        if ((r.producer = client_new(&r, HOOKD_KAFKA_PRODUCER, errstr, ERRSTR_SIZE)) == NULL) {
            fprintf(stderr, PROG ": producer: %s\n", errstr);
            rc = EXIT_FAILED;
            goto out;
        }
        if ((e = rd_kafka_init_transactions(r.producer, REPLAY_TIMEOUT_MS)) != NULL) {
            fprintf(stderr,
                    PROG ": cannot start transactions (transactional.id "
                         "acme-hookd-replay.%s): %s\n",
                    r.group, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            rc = EXIT_KAFKA;
            goto out;
        }
        r.cgmd = rd_kafka_consumer_group_metadata(r.consumer);
    }
    hookd_log_info("replay: %s -> %s, group %s, %zu partition(s) to read%s",
                   r.cfg->dead_letter_topic, r.cfg->input_topic, r.group, r.remaining,
                   r.dry_run ? " (dry run)" : "");
    rc = replay_loop(&r);

    printf("replay %s -> %s, group %s%s: read %" PRIu64 ", %s %" PRIu64 ", not selected %" PRIu64
           ", invalid_event not sent %" PRIu64 ", cannot replay %" PRIu64 "%s\n",
           r.cfg->dead_letter_topic, r.cfg->input_topic, r.group, r.dry_run ? " (dry run)" : "",
           r.read, r.dry_run ? "would send" : "sent", r.sent, r.not_selected, r.invalid, r.refused,
           rc == EXIT_INTERRUPTED ? "; interrupted: --resume continues"
           : rc == EXIT_KAFKA     ? "; stopped on a Kafka error: --resume continues"
                                  : "");
    fflush(stdout);
    if (rc == EXIT_OK && r.refused > 0)
        rc = EXIT_FAILED;

out:
    if (r.cgmd != NULL)
        rd_kafka_consumer_group_metadata_destroy(r.cgmd);
    if (r.producer != NULL)
        rd_kafka_destroy(r.producer);
    if (r.consumer != NULL) {
        rd_kafka_consumer_close(r.consumer);
        rd_kafka_destroy(r.consumer);
    }
    free(r.parts);
    free(r.batch);
    if (r.auth != NULL)
        hookd_auth_destroy(r.auth);
    hookd_config_destroy(r.cfg);
    free(errstr);
    return rc;
}
