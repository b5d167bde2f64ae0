/* SPDX-License-Identifier: MIT */
/*
 * The integration test kit: everything a scenario needs to drive acme-hookd
 * workers (run as subprocesses of the test) against librdkafka's mock
 * cluster and to judge what they did.
 *
 * The judge is a ledger of every input message produced: its kind (good,
 * hook failure, poison of some sort), where it landed (partition, offset),
 * and the result events and dead letters read back for it. A sampler
 * records, every few hundred milliseconds, the group's committed offsets
 * and, right after, the high watermarks of the result and dead-letter
 * topics. A commit C on partition p is correct only if every input below C
 * already had its durable outcome in the log before the commit; since the
 * watermarks are read after the committed offsets, any outcome the worker
 * had made durable before committing lies below them. The check is done at
 * the end, once the reader has caught up, so a slow reader never causes a
 * false alarm.
 */
#ifndef HOOKD_ITKIT_H
#define HOOKD_ITKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ITK_MAX_PARTS 64
#define ITK_MAX_WORKERS 4

int64_t itk_now_ms(void);
int64_t itk_now_us(void);

/*
 * HOOKD_TEST_TIME_SCALE (default 1; scripts/valgrind.sh sets 20): every
 * deadline of the kit is multiplied by it, and scenarios divide their
 * event counts and rates by itk_load_div() so a run under valgrind stays
 * practical.
 */
int itk_time_scale(void);
size_t itk_load(size_t n);     /* n / itk_load_div(), at least 1 */
double itk_rate(double per_s); /* per_s / itk_load_div() */

/* ---- certificate material (OpenSSL, generated once per process) ------ */

typedef struct itk_pki {
    char *csr_b64;  /* base64 DER CSR, EC P-256, CN + two DNS SANs */
    char *cert_pem; /* self-signed certificate for the same key, PEM */
    char *cert_b64; /* the same certificate, base64 DER */
} itk_pki_t;

int itk_pki_create(itk_pki_t *p, const char *cn, char *errstr, size_t errstr_size);
void itk_pki_destroy(itk_pki_t *p);

/* ---- the mock cluster ------------------------------------------------- */

typedef struct itk_cluster {
    rd_kafka_t *rk; /* owner handle of the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    char bootstraps[512];
    int brokers;
} itk_cluster_t;

itk_cluster_t *itk_cluster_create(int brokers, char *errstr, size_t errstr_size);
int itk_cluster_topic(itk_cluster_t *cl, const char *topic, int partitions);
void itk_cluster_destroy(itk_cluster_t *cl);

/* ---- worker subprocesses ---------------------------------------------- */

typedef struct itk_proc {
    pid_t pid; /* 0: not started */
    bool exited;
    int status; /* waitpid status once exited */
    bool expect_alive;
    char name[32];
    char log[512]; /* stdout + stderr of the process */
} itk_proc_t;

/* Start argv[0] with a clean environment; output to p->log. 0 or -1. */
int itk_proc_start(itk_proc_t *p, const char *name, char *const argv[], const char *log);
/* Reap without blocking; true once exited. */
bool itk_proc_poll(itk_proc_t *p);
/* Wait up to timeout_ms; true once exited. */
bool itk_proc_wait(itk_proc_t *p, int timeout_ms);
void itk_proc_signal(itk_proc_t *p, int sig);
void itk_proc_print_tail(const itk_proc_t *p, int lines);
/* "exit 0", "exit 3", "signal 9" */
const char *itk_proc_status_str(const itk_proc_t *p, char *buf, size_t size);

/* ---- the run: producer, ledger, reader, sampler ------------------------ */

typedef enum itk_kind {
    ITK_GOOD = 0,     /* valid event, handlers succeed: completed result */
    ITK_HOOK_FAIL,    /* valid event, a handler fails (flag off): failed result + dead letter */
    ITK_INVALID_ID,   /* JSON, string id, breaks the schema: failed result + dead letter */
    ITK_INVALID_NOID, /* not JSON at all / null value: dead letter only */
    ITK_OVERSIZED,    /* over max_event_bytes: dead letter, result optional */
    ITK_KIND_COUNT
} itk_kind_t;

const char *itk_kind_name(itk_kind_t k);

typedef struct itk_pos {
    int32_t partition; /* -1: none */
    int64_t offset;
} itk_pos_t;

typedef struct itk_input {
    itk_kind_t kind;
    const char *dlq_class; /* expected error class of the dead letter, NULL when none */
    int32_t partition;     /* -1 until delivered */
    int64_t offset;
    bool failed_delivery;
    char *value; /* what was produced (NULL value: a tombstone) */
    size_t len;
    /* outcomes read back */
    int results, results_completed, results_failed, results_unknown;
    int dlqs;
    itk_pos_t first_result, first_dlq;
    /*
     * Duplicates: a byte-identical copy (value and every header, the
     * per-publish ce_id included) is one publish stored twice by the
     * transport (a producer retry after a disconnect); a different copy is
     * the event processed again.
     */
    uint64_t result_hash, dlq_hash;
    int results_same, dlqs_same;
    int results_by_worker[ITK_MAX_WORKERS];
    /* dead-letter checks (of the first one) */
    bool dlq_value_same, dlq_key_same, dlq_header_kept, dlq_connect_ok, dlq_class_ok,
        dlq_message_ok;
    char dlq_class_seen[64];
    /*
     * Retry tiers: the scenario expects this input to leave the input
     * topic through a tier record, which is its durable outcome there and
     * lets its input offset be committed before its result exists. The kit
     * does not read tier topics, so the commit invariant leaves such an
     * input out (the inputs around it stay checked).
     */
    bool via_tier;
    char dlq_retry_attempt[16]; /* hookd.retry.attempt of the first dead letter, "" when none */
} itk_input_t;

/*
 * One published record as read back: whose input it is (seq), the input
 * position it names (the result's input.partition/offset, the dead
 * letter's __connect.errors.* headers; -1 when it names none) and a hash
 * of its bytes. The judge tells apart, per input, a record published
 * twice (same bytes), the input processed twice (different bytes, same
 * position) and a second copy of the input itself (another position: the
 * broker stored a retried produce of the test's own twice, which the
 * worker must process like any other message).
 */
typedef struct itk_out {
    size_t seq;
    bool dlq;
    int32_t partition;
    int64_t offset;
    uint64_t hash;
} itk_out_t;

typedef struct itk_sample {
    int64_t t_ms;
    int64_t committed[ITK_MAX_PARTS]; /* per input partition, <0: none */
    int64_t hw_result[ITK_MAX_PARTS];
    int64_t hw_dlq[ITK_MAX_PARTS];
} itk_sample_t;

typedef struct itk_run {
    char name[64];
    char tag[48]; /* unique per run: event ids are "<tag>-<seq>" */
    char workdir[256];
    char bootstraps[512];
    itk_cluster_t *cluster; /* borrowed, may be NULL */
    char in_topic[96], res_topic[96], dlq_topic[96], group[96];
    /* retry tier topics (itk_run_tiers): a dead letter naming one of them is attributed by
     * its hookd.retry.origin header */
    char tier_topics[8][128];
    int n_tiers;
    int in_parts, res_parts, dlq_parts;
    itk_pki_t pki;

    rd_kafka_t *producer;
    rd_kafka_t *reader;
    rd_kafka_t *offq; /* committed-offset queries (group = the workers') */

    itk_input_t *in;
    size_t n_in, cap_in;
    size_t *by_off[ITK_MAX_PARTS]; /* offset -> index + 1 */
    size_t by_off_cap[ITK_MAX_PARTS];
    int64_t end[ITK_MAX_PARTS];                             /* next offset per input partition */
    int64_t res_pos[ITK_MAX_PARTS], dlq_pos[ITK_MAX_PARTS]; /* reader positions */

    itk_sample_t *samples;
    size_t n_samples, cap_samples;
    int sample_every_ms;
    int64_t next_sample_ms;
    int64_t committed_max[ITK_MAX_PARTS];
    int commit_regressions;

    int unattributed_results, ambiguous_results, unattributed_dlqs;
    /* every result and dead letter read, for the judge */
    struct itk_out *outs;
    size_t n_outs, cap_outs;
    int delivery_errors;

    /* paced stream of good events */
    double stream_rate; /* events per second, 0: off */
    int64_t stream_t0_ms;
    size_t stream_sent;
    unsigned noid_count; /* cycles the flavours of garbage */

    /* workers, named by their worker_id (searched in results) */
    itk_proc_t workers[ITK_MAX_WORKERS];
    char worker_ids[ITK_MAX_WORKERS][64];
    int n_workers;
    const char *worker_bin;
    int failures;
} itk_run_t;

/*
 * Create a run on `bootstraps` (the mock cluster's or a real broker's), with
 * topics already created by the caller. NULL with errstr on failure.
 */
itk_run_t *itk_run_create(const char *name, const char *bootstraps, itk_cluster_t *cl, int in_parts,
                          int res_parts, int dlq_parts, const char *worker_bin, char *errstr,
                          size_t errstr_size);
void itk_run_destroy(itk_run_t *r);

/*
 * Create the retry tier topics "<in_topic>.retry.<delay>" for each delay of
 * `delays` (as written in retry_topics, e.g. "1s,2s"), with the input's
 * partition count, and remember them. 0 or -1.
 */
int itk_run_tiers(itk_run_t *r, const char *delays);

/* Produce one input of `kind` (event type chosen by kind/seq) to `partition` (-1: seq % parts). */
size_t itk_produce(itk_run_t *r, itk_kind_t kind, int32_t partition);
/* Produce a valid event of type issued/failed/requested explicitly (kind GOOD or HOOK_FAIL). */
size_t itk_produce_typed(itk_run_t *r, itk_kind_t kind, const char *type, const char *csr_b64,
                         int32_t partition);
/* The same with the Kafka key of input `earlier` ("order-<earlier>"): key ordering puts it behind that one. */
size_t itk_produce_after(itk_run_t *r, itk_kind_t kind, const char *type, size_t earlier,
                         int32_t partition);
/* Wait until every produced input is acknowledged by the broker. 0 or -1. */
int itk_flush(itk_run_t *r, int timeout_ms);

/* One turn: producer events, stream pacing, reader, sampler, worker liveness. */
void itk_pump(itk_run_t *r, int max_ms);

typedef bool (*itk_cond_fn)(itk_run_t *r, void *arg);
/*
 * Pump until cond is true or timeout_ms passes (then print `what` and count
 * a failure). Also fails fast when a worker expected alive has exited.
 */
bool itk_wait(itk_run_t *r, itk_cond_fn cond, void *arg, int timeout_ms, const char *what);

/* Conditions */
bool itk_cond_all_outcomes(itk_run_t *r, void *arg);     /* every input has its durable outcome */
bool itk_cond_results_at_least(itk_run_t *r, void *arg); /* arg: size_t*, inputs with outcome */
bool itk_cond_worker_results(itk_run_t *r, void *arg);   /* arg: int*, worker with a result */
bool itk_cond_committed_end(itk_run_t *r, void *arg);    /* committed == end on every partition */

size_t itk_outcomes_done(const itk_run_t *r);

/* Take a commit/watermark sample now (returns false if the broker did not answer). */
bool itk_sample_now(itk_run_t *r);
/* Read the result and dead-letter topics up to their current end. */
bool itk_drain(itk_run_t *r, int timeout_ms);

/* Workers */
int itk_write_config(itk_run_t *r, const char *path, const char *worker_id,
                     const char *hooks_section_extra, const char *kafka_extra,
                     const char *worker_extra);
/* Start worker slot `i` with config `path`. */
int itk_worker_start(itk_run_t *r, int i, const char *cfg_path);
/* SIGTERM, wait, expect exit 0 within timeout_ms. */
bool itk_worker_stop(itk_run_t *r, int i, int timeout_ms);

/*
 * Judge the run. `allow_dups`: duplicates tolerated (across a crash or a
 * rebalance) but still counted. `full_commit`: committed must equal the
 * end of every partition at the last sample. Returns the number of
 * problems found (0 = pass) and prints a summary.
 */
typedef struct itk_verdict_opts {
    bool allow_dups;
    bool full_commit;
} itk_verdict_opts_t;

int itk_verify(itk_run_t *r, const itk_verdict_opts_t *o);

/* Record a failure with a message (printed). */
void itk_fail(itk_run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void itk_note(itk_run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_ITKIT_H */
