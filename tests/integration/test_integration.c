/* SPDX-License-Identifier: MIT */
/*
 * Integration scenarios: acme-hookd workers (the real binary, as
 * subprocesses) against librdkafka's mock cluster, created here, with faults
 * injected while they run. Every scenario ends in itk_verify(): each input
 * has exactly one durable outcome (or a duplicate, counted, where a crash or
 * a rebalance allows one), dead letters carry the original message and
 * their context, and no committed offset ever passed a message whose
 * outcome was not yet in the log.
 *
 *   hookd_it --worker PATH [--slow-handler PATH] [--retry-handler PATH] SCENARIO
 *
 * Scenarios: poison broker_down produce_errors commit_errors dlq_blocked
 * rebalance sigterm crash tiers_key tiers_partition tiers_refused. Exit 0
 * when the scenario passes.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "itkit.h"

/* Kafka protocol request types used for fault injection. */
#define API_PRODUCE 0
#define API_OFFSET_COMMIT 8

typedef struct opts {
    const char *worker;
    const char *slow_handler;
    const char *retry_handler;
} opts_t;

/* A worker config in the run's work directory; returns its path (static buffer per slot). */
static const char *config(itk_run_t *r, int slot, const char *hooks, const char *kafka,
                          const char *worker)
{
    static char paths[ITK_MAX_WORKERS][600];
    char wid[96];
    snprintf(paths[slot], sizeof(paths[slot]), "%s/worker%d.ini", r->workdir, slot);
    snprintf(wid, sizeof(wid), "%s.w%d", r->tag, slot);
    if (itk_write_config(r, paths[slot], wid, hooks, kafka, worker)) {
        itk_fail(r, "cannot write %s", paths[slot]);
        return NULL;
    }
    return paths[slot];
}

static bool start(itk_run_t *r, int slot, const char *cfg)
{
    return cfg && itk_worker_start(r, slot, cfg) == 0;
}

/* Pump for `ms` while a fault lasts: the duration of the fault, not a synchronisation. */
static void hold(itk_run_t *r, int ms)
{
    int64_t end = itk_now_ms() + ms;
    while (itk_now_ms() < end)
        itk_pump(r, 20);
}

static size_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    int c;
    if (!f)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static bool stack_empty(itk_run_t *r, void *arg)
{
    size_t cnt = 1;
    int16_t api = (int16_t)(intptr_t)arg;
    rd_kafka_mock_broker_error_stack_cnt(r->cluster->mc, 1, api, &cnt);
    return cnt == 0;
}

static void push_errors(itk_run_t *r, int16_t api, const rd_kafka_resp_err_t *errs, size_t n,
                        int rtt_ms)
{
    for (size_t i = 0; i < n; i++)
        rd_kafka_mock_broker_push_request_error_rtts(r->cluster->mc, 1, api, 1, errs[i], rtt_ms);
}

/*
 * After a clean shutdown the worker must have committed everything it
 * finished: the committed offset of each partition is the first offset
 * without an outcome. Anything less is work the next owner redoes for no
 * reason; anything more is loss (caught by itk_verify too).
 */
static void check_clean_commit(itk_run_t *r)
{
    const itk_sample_t *s;
    if (!itk_drain(r, 15000) || !itk_sample_now(r)) {
        itk_fail(r, "cannot read the state after the shutdown");
        return;
    }
    s = &r->samples[r->n_samples - 1];
    for (int p = 0; p < r->in_parts; p++) {
        int64_t prefix = 0, c = s->committed[p] < 0 ? 0 : s->committed[p];
        while (prefix < r->end[p] && (size_t)prefix < r->by_off_cap[p] && r->by_off[p][prefix] &&
               r->in[r->by_off[p][prefix] - 1].results > 0)
            prefix++;
        if (c != prefix)
            itk_fail(r,
                     "after exit 0: partition %d committed %" PRId64
                     " but its finished prefix ends at %" PRId64,
                     p, c, prefix);
    }
}

/* ---- scenarios ---------------------------------------------------------- */

/*
 * Poison messages between good ones in every partition: truncated JSON, a
 * tombstone, non-UTF-8 bytes, a JSON array, a schema-invalid object with an
 * id, an oversized event, and events whose handler fails (a CSR that does
 * not parse, a success hook that raises). Each is dead-lettered with its
 * reason; the good ones around them complete; nothing blocks a partition.
 */
static int scn_poison(itk_run_t *r, const opts_t *o)
{
    char hooks[1024], save[400];
    size_t good_req = 0, good_failed = 0, issued = 0;
    itk_verdict_opts_t vo = {.allow_dups = false, .full_commit = true};
    (void)o;

    snprintf(save, sizeof(save), "%s/cn_dump", r->workdir);
    mkdir(save, 0755);
    snprintf(hooks, sizeof(hooks),
             "hooks_file = cn_dump, exception_test\n"
             "save_path = %s\n"
             "raise_success_hook_exception = True\n",
             save);
    for (int round = 0; round < 4; round++) {
        for (int p = 0; p < r->in_parts; p++) {
            itk_produce_typed(r, ITK_GOOD, "acme.enrollment.requested", NULL, p), good_req++;
            itk_produce_typed(r, ITK_GOOD, "acme.enrollment.failed", NULL, p), good_failed++;
            itk_produce_typed(r, ITK_HOOK_FAIL, "acme.enrollment.issued", NULL, p), issued++;
            itk_produce(r, ITK_INVALID_NOID, p);
            itk_produce_typed(r, ITK_GOOD, "acme.enrollment.requested", NULL, p), good_req++;
            itk_produce(r, ITK_INVALID_ID, p);
            /* base64 of "not a certificate request": cn_dump's pre hook refuses it */
            itk_produce_typed(r, ITK_HOOK_FAIL, "acme.enrollment.requested",
                              "bm90IGEgY2VydGlmaWNhdGUgcmVxdWVzdA==", p);
            itk_produce(r, ITK_OVERSIZED, p);
            itk_produce(r, ITK_INVALID_NOID, p);
            itk_produce_typed(r, ITK_GOOD, "acme.enrollment.requested", NULL, p), good_req++;
        }
    }
    if (itk_flush(r, 20000))
        itk_fail(r, "inputs not acknowledged");
    if (!start(r, 0,
               config(r, 0, hooks, NULL,
                      "threads = 2\nmax_event_bytes = 32768\nmax_field_bytes = 16384\n")))
        return 1;
    itk_wait(r, itk_cond_all_outcomes, NULL, 60000, "every input has its outcome");
    itk_wait(r, itk_cond_committed_end, NULL, 30000, "committed offsets reach the log end");
    itk_worker_stop(r, 0, 30000);
    itk_verify(r, &vo);

    /* The handlers really ran, once per event: cn_dump wrote one line per call. */
    {
        char f[600];
        size_t n;
        snprintf(f, sizeof(f), "%s/pre_hook.txt", save);
        if ((n = count_lines(f)) != good_req)
            itk_fail(r, "cn_dump pre_hook.txt has %zu lines, expected %zu", n, good_req);
        snprintf(f, sizeof(f), "%s/success_hook.txt", save);
        if ((n = count_lines(f)) != issued)
            itk_fail(r, "cn_dump success_hook.txt has %zu lines, expected %zu", n, issued);
        snprintf(f, sizeof(f), "%s/post_hook.txt", save);
        if ((n = count_lines(f)) != good_failed)
            itk_fail(r, "cn_dump post_hook.txt has %zu lines, expected %zu", n, good_failed);
    }
    return r->failures;
}

/* All brokers go down mid-stream for a few seconds and come back. */
static int scn_broker_down(itk_run_t *r, const opts_t *o)
{
    size_t warm = itk_load(300), at_down, at_up;
    itk_verdict_opts_t vo = {.allow_dups = false, .full_commit = true};
    (void)o;

    /* The mock leaves a downed broker's sockets open and silent: shorten the wait for them. */
    if (!start(r, 0, config(r, 0, NULL, "rdkafka.socket.timeout.ms = 10000\n", "threads = 2\n")))
        return 1;
    r->stream_rate = itk_rate(300);
    r->stream_t0_ms = itk_now_ms();
    if (!itk_wait(r, itk_cond_results_at_least, &warm, 40000, "worker joined and flowing"))
        return r->failures;
    at_down = itk_outcomes_done(r);
    itk_note(r, "taking all %d brokers down (%zu outcomes so far)", r->cluster->brokers, at_down);
    for (int b = 1; b <= r->cluster->brokers; b++)
        rd_kafka_mock_broker_set_down(r->cluster->mc, b);
    hold(r, 4000);
    for (int b = 1; b <= r->cluster->brokers; b++)
        rd_kafka_mock_broker_set_up(r->cluster->mc, b);
    at_up = itk_outcomes_done(r);
    itk_note(r, "brokers up again (%zu outcomes seen meanwhile by the reader)", at_up - at_down);
    hold(r, 3000);
    r->stream_rate = 0;
    itk_wait(r, itk_cond_all_outcomes, NULL, 60000, "every input has its outcome");
    itk_wait(r, itk_cond_committed_end, NULL, 30000, "committed offsets reach the log end");
    itk_worker_stop(r, 0, 30000);
    itk_verify(r, &vo);
    return r->failures;
}

/*
 * Results cannot be published for a while: the broker answers Produce
 * requests with a retriable error, slowly, and the worker's producer gives
 * up on a message after 3 s, so deliveries fail and the worker must publish
 * again. Nothing may be committed meanwhile; nothing may be lost after.
 */
static int scn_produce_errors(itk_run_t *r, const opts_t *o)
{
    rd_kafka_resp_err_t errs[40];
    itk_verdict_opts_t vo = {.allow_dups = false, .full_commit = true};
    size_t cnt = 0;
    (void)o;

    for (size_t i = 0; i < itk_load(400); i++)
        itk_produce(r, ITK_GOOD, -1);
    if (itk_flush(r, 20000))
        itk_fail(r, "inputs not acknowledged");
    for (size_t i = 0; i < 40; i++)
        errs[i] = i % 4 == 3 ? RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE
                             : RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
    /* Queued before the worker exists: every one of them hits the worker's producer. */
    push_errors(r, API_PRODUCE, errs, 40, 150);
    if (!start(r, 0,
               config(r, 0, NULL, "producer.rdkafka.message.timeout.ms = 3000\n",
                      "threads = 2\npublish_retry_backoff_ms = 500\n")))
        return 1;
    itk_wait(r, stack_empty, (void *)(intptr_t)API_PRODUCE, 90000,
             "every injected Produce error was served to the worker");
    rd_kafka_mock_broker_error_stack_cnt(r->cluster->mc, 1, API_PRODUCE, &cnt);
    itk_note(r, "%zu/%zu outcomes when the errors ran out (%zu left)", itk_outcomes_done(r),
             r->n_in, cnt);
    for (size_t i = 0; i < itk_load(200); i++)
        itk_produce(r, ITK_GOOD, -1);
    itk_wait(r, itk_cond_all_outcomes, NULL, 60000, "every input has its outcome");
    itk_wait(r, itk_cond_committed_end, NULL, 30000, "committed offsets reach the log end");
    itk_worker_stop(r, 0, 30000);
    itk_verify(r, &vo);
    return r->failures;
}

/* OffsetCommit requests fail for a while; commits must catch up, nothing lost or doubled. */
static int scn_commit_errors(itk_run_t *r, const opts_t *o)
{
    static const rd_kafka_resp_err_t errs[] = {RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                               RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                               RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                               RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                                               RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS};
    size_t warm = itk_load(200);
    itk_verdict_opts_t vo = {.allow_dups = false, .full_commit = true};
    (void)o;

    if (!start(r, 0, config(r, 0, NULL, NULL, "threads = 2\n")))
        return 1;
    for (size_t i = 0; i < itk_load(200); i++)
        itk_produce(r, ITK_GOOD, -1);
    if (!itk_wait(r, itk_cond_results_at_least, &warm, 40000, "worker joined and flowing"))
        return r->failures;
    push_errors(r, API_OFFSET_COMMIT, errs, sizeof(errs) / sizeof(errs[0]), 50);
    r->stream_rate = itk_rate(200);
    r->stream_t0_ms = itk_now_ms();
    r->stream_sent = 0;
    itk_wait(r, stack_empty, (void *)(intptr_t)API_OFFSET_COMMIT, 60000,
             "every injected OffsetCommit error was served to the worker");
    hold(r, 2000);
    r->stream_rate = 0;
    itk_wait(r, itk_cond_all_outcomes, NULL, 60000, "every input has its outcome");
    itk_wait(r, itk_cond_committed_end, NULL, 30000, "committed offsets reach the log end");
    itk_worker_stop(r, 0, 30000);
    itk_verify(r, &vo);
    return r->failures;
}

static size_t good_results(const itk_run_t *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_in; i++)
        n += r->in[i].kind == ITK_GOOD && r->in[i].results > 0;
    return n;
}

static bool cond_good_done(itk_run_t *r, void *arg)
{
    return good_results(r) >= *(size_t *)arg;
}

/*
 * Only the dead-letter topic is unavailable: results of invalid events can be
 * published, their dead letters cannot. The offsets of those events must
 * not be committed until the dead letter is durable too, while the good
 * events behind them keep flowing.
 */
static int scn_dlq_blocked(itk_run_t *r, const opts_t *o)
{
    itk_verdict_opts_t vo = {.allow_dups = false, .full_commit = true};
    size_t good = 0, good_done = 0, dlqs = 0;
    (void)o;

    for (int round = 0; round < 10; round++)
        for (int p = 0; p < r->in_parts; p++) {
            itk_produce(r, ITK_GOOD, p), good++;
            /* with-id first: its result is publishable, only its dead letter is stuck */
            itk_produce(r, round % 2 ? ITK_INVALID_NOID : ITK_INVALID_ID, p);
            itk_produce(r, ITK_GOOD, p), good++;
        }
    if (itk_flush(r, 20000))
        itk_fail(r, "inputs not acknowledged");
    rd_kafka_mock_topic_set_error(r->cluster->mc, r->dlq_topic,
                                  RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
    if (!start(r, 0, config(r, 0, NULL, NULL, "threads = 2\n")))
        return 1;
    /* Good events complete although the dead letters before them are stuck... */
    itk_wait(r, cond_good_done, &good, 30000, "good events complete behind stuck dead letters");
    /* ...and the sampler watches the commits a while longer with the topic still down. */
    hold(r, 3000);
    good_done = good_results(r);
    for (size_t i = 0; i < r->n_in; i++)
        dlqs += (size_t)r->in[i].dlqs;
    itk_note(r,
             "while the dead-letter topic was down: %zu/%zu good events completed, %zu dead "
             "letters readable",
             good_done, good, dlqs);
    if (dlqs)
        itk_fail(r, "dead letters arrived while the topic was down: the fault did not bite");
    rd_kafka_mock_topic_set_error(r->cluster->mc, r->dlq_topic, RD_KAFKA_RESP_ERR_NO_ERROR);
    itk_wait(r, itk_cond_all_outcomes, NULL, 60000, "every input has its outcome");
    itk_wait(r, itk_cond_committed_end, NULL, 30000, "committed offsets reach the log end");
    itk_worker_stop(r, 0, 30000);
    itk_verify(r, &vo);
    return r->failures;
}

/* A second worker joins mid-stream, then the first one leaves (SIGTERM) mid-stream. */
static int scn_rebalance(itk_run_t *r, const opts_t *o)
{
    /*
     * The 2.0.2 mock closes a join round only when the members' session
     * timeout expires (45 s by default) and cooperative-sticky needs two
     * rounds: a short session keeps the scenario in seconds.
     */
    const char *kafka = "consumer.rdkafka.session.timeout.ms = 6000\n"
                        "consumer.rdkafka.heartbeat.interval.ms = 500\n";
    int w0 = 0, w1 = 1;
    size_t more;
    itk_verdict_opts_t vo = {.allow_dups = true, .full_commit = true};
    size_t dups = 0, by[2] = {0, 0};
    (void)o;

    if (!start(r, 0, config(r, 0, NULL, kafka, "threads = 2\n")))
        return 1;
    r->stream_rate = itk_rate(150);
    r->stream_t0_ms = itk_now_ms();
    if (!itk_wait(r, itk_cond_worker_results, &w0, 40000, "worker0 publishes"))
        return r->failures;
    if (!start(r, 1, config(r, 1, NULL, kafka, "threads = 2\n")))
        return 1;
    if (!itk_wait(r, itk_cond_worker_results, &w1, 60000, "worker1 got partitions and publishes"))
        return r->failures;
    more = itk_outcomes_done(r) + itk_load(300);
    itk_wait(r, itk_cond_results_at_least, &more, 30000, "both workers share the stream");
    itk_note(r, "worker0 leaves mid-stream");
    itk_worker_stop(r, 0, 30000);
    more = itk_outcomes_done(r) + itk_load(300);
    itk_wait(r, itk_cond_results_at_least, &more, 60000, "worker1 carries on alone");
    r->stream_rate = 0;
    itk_wait(r, itk_cond_all_outcomes, NULL, 60000, "every input has its outcome");
    itk_wait(r, itk_cond_committed_end, NULL, 30000, "committed offsets reach the log end");
    itk_worker_stop(r, 1, 30000);
    itk_verify(r, &vo);
    for (size_t i = 0; i < r->n_in; i++) {
        dups += r->in[i].results > 1 ? (size_t)(r->in[i].results - 1 - r->in[i].results_same) : 0;
        by[0] += (size_t)r->in[i].results_by_worker[0];
        by[1] += (size_t)r->in[i].results_by_worker[1];
    }
    itk_note(r, "results by worker0 %zu, by worker1 %zu; duplicates across the rebalances %zu",
             by[0], by[1], dups);
    if (by[0] == 0 || by[1] == 0)
        itk_fail(r, "the stream was not shared: no rebalance happened mid-stream");
    return r->failures;
}

static int run_stop_restart(itk_run_t *r, const opts_t *o, int sig)
{
    char hooks[1024], wextra[128];
    size_t warm = 100, at_stop, dups = 0;
    /*
     * The 2.0.2 mock keeps a departed member (crashed, and even one that left
     * cleanly) until its session times out before it lets the next one in:
     * a short session keeps the restart in seconds.
     */
    const char *kafka = "consumer.rdkafka.session.timeout.ms = 6000\n"
                        "consumer.rdkafka.heartbeat.interval.ms = 500\n";
    itk_verdict_opts_t vo = {.allow_dups = true, .full_commit = true};

    if (!o->slow_handler) {
        itk_fail(r, "--slow-handler is required");
        return 1;
    }
    snprintf(hooks, sizeof(hooks), "hooks_file = %s\nslow_sleep_ms = 20\n", o->slow_handler);
    /* Not scaled down: the work is sleep-bound, and must outlast the signal. */
    for (size_t i = 0; i < 600; i++)
        itk_produce(r, ITK_GOOD, -1);
    if (itk_flush(r, 20000))
        itk_fail(r, "inputs not acknowledged");
    snprintf(wextra, sizeof(wextra), "threads = 4\nshutdown_timeout_ms = %d\n",
             20000 * itk_time_scale());
    if (!start(r, 0, config(r, 0, hooks, kafka, wextra)))
        return 1;
    if (!itk_wait(r, itk_cond_results_at_least, &warm, 40000, "worker busy mid-stream"))
        return r->failures;
    at_stop = itk_outcomes_done(r);
    if (sig == SIGTERM) {
        itk_worker_stop(r, 0, 25000);
        check_clean_commit(r);
    } else {
        r->workers[0].expect_alive = false;
        itk_proc_signal(&r->workers[0], SIGKILL);
        itk_proc_wait(&r->workers[0], 5000);
    }
    itk_note(r, "worker0 stopped by signal %d with %zu/%zu outcomes (%zu when signalled)", sig,
             itk_outcomes_done(r), r->n_in, at_stop);
    if (itk_outcomes_done(r) == r->n_in)
        itk_fail(r, "the worker had finished everything before the signal: not mid-stream");
    if (!start(r, 1, config(r, 1, hooks, kafka, wextra)))
        return 1;
    /* Fresh events too: the new worker is seen working before it is stopped in its turn. */
    for (size_t i = 0; i < 40; i++)
        itk_produce(r, ITK_GOOD, -1);
    itk_wait(r, itk_cond_all_outcomes, NULL, 90000, "every input has its outcome after restart");
    itk_wait(r, itk_cond_committed_end, NULL, 30000, "committed offsets reach the log end");
    itk_worker_stop(r, 1, 30000);
    itk_verify(r, &vo);
    for (size_t i = 0; i < r->n_in; i++)
        dups += r->in[i].results > 1 ? (size_t)(r->in[i].results - 1 - r->in[i].results_same) : 0;
    itk_note(r, "events processed again after the restart: %zu", dups);
    if (sig == SIGTERM && dups)
        itk_fail(r, "a clean shutdown left %zu finished messages uncommitted (redone)", dups);
    return r->failures;
}

static int scn_sigterm(itk_run_t *r, const opts_t *o)
{
    return run_stop_restart(r, o, SIGTERM);
}

static int scn_crash(itk_run_t *r, const opts_t *o)
{
    return run_stop_restart(r, o, SIGKILL);
}

/* ---- retry tiers ------------------------------------------------------- */

#define TIER_DELAYS "1s,2s"
#define TIER_COUNT 2
#define TIER_ATTEMPTS 2 /* retry_max_attempts: in-line attempts per run */
#define TIER_TIMES 2    /* retry_test_times: retries an issued event asks for */

/* Calls of the retry_test handler for `order` in `phase` that ended in `what` (R or O). */
static size_t trace_count(const char *path, char what, const char *phase, const char *order)
{
    FILE *f = fopen(path, "r");
    char line[256], w, ph[32], o[128];
    size_t n = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "%c %31s %127s", &w, ph, o) == 3 && w == what && strcmp(ph, phase) == 0 &&
            strcmp(o, order) == 0)
            n++;
    fclose(f);
    return n;
}

/* Records in all partitions of `topic` (high watermarks), -1 when the broker does not say. */
static int64_t topic_records(itk_run_t *r, const char *topic)
{
    int64_t total = 0, lo, hi;
    for (int p = 0; p < r->in_parts; p++) {
        if (rd_kafka_query_watermark_offsets(r->reader, topic, p, &lo, &hi,
                                             5000 * itk_time_scale()))
            return -1;
        total += hi;
    }
    return total;
}

/*
 * Retry tiers 1s,2s (topics of the input's 4 partitions), retry_test
 * handler, retry_max_attempts 2, in every partition: requested events
 * (succeed at once), an issued event whose success hook asks for a retry
 * twice (its two in-line attempts run out: it waits in tier 1 once, then
 * completes, and its post hook runs once), and a failed event whose post
 * hook always asks for a retry (dead-lettered as retries_exhausted after
 * tier 2, the dead letter carrying hookd.retry.attempt 2). Judged by
 * itk_verify (outcomes, dead-letter context, commits: the inputs around the
 * tier-bound ones) plus the handler's trace (how often each hook ran) and
 * the tier topics' record counts.
 *
 * `refused`: the tier topics' leader (broker 2) refuses every Produce as
 * too large, for good: a tier record cannot be written, so the event ends
 * at once as it would without tiers, the issued event included: a failed
 * result and a retries_exhausted dead letter (carrying the refused
 * record's hookd.retry.attempt 1), and nothing is lost.
 */
static int run_tiers(itk_run_t *r, const opts_t *o, const char *ordering, bool refused)
{
    char hooks[1024], wextra[512], trace[400], order[48];
    size_t issued[ITK_MAX_PARTS], failed[ITK_MAX_PARTS], after[ITK_MAX_PARTS];
    itk_verdict_opts_t vo = {.allow_dups = false, .full_commit = true};
    int64_t n1, n2;

    if (!o->retry_handler) {
        itk_fail(r, "--retry-handler is required");
        return 1;
    }
    if (itk_run_tiers(r, TIER_DELAYS) || r->n_tiers != TIER_COUNT) {
        itk_fail(r, "cannot create the tier topics");
        return 1;
    }
    if (refused) {
        /* Broker 1 leads the input, result and dead-letter partitions, broker 2 the tiers'. */
        for (int p = 0; p < r->in_parts; p++)
            rd_kafka_mock_partition_set_leader(r->cluster->mc, r->in_topic, p, 1);
        for (int p = 0; p < r->res_parts; p++)
            rd_kafka_mock_partition_set_leader(r->cluster->mc, r->res_topic, p, 1);
        for (int p = 0; p < r->dlq_parts; p++)
            rd_kafka_mock_partition_set_leader(r->cluster->mc, r->dlq_topic, p, 1);
        for (int t = 0; t < r->n_tiers; t++)
            for (int p = 0; p < r->in_parts; p++)
                rd_kafka_mock_partition_set_leader(r->cluster->mc, r->tier_topics[t], p, 2);
        /* One per Produce request to broker 2: more than the tier records there are. */
        for (int i = 0; i < 4 * r->in_parts; i++)
            rd_kafka_mock_broker_push_request_error_rtts(r->cluster->mc, 2, API_PRODUCE, 1,
                                                         RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, 0);
    }
    snprintf(trace, sizeof(trace), "%s/retry_trace.txt", r->workdir);
    snprintf(hooks, sizeof(hooks),
             "hooks_file = %s\nretry_test_times = %d\nretry_test_trace_file = %s\n"
             "allow_post_hook_failure = False\n",
             o->retry_handler, TIER_TIMES, trace);
    snprintf(wextra, sizeof(wextra),
             "threads = 2\nordering = %s\nretry_topics = %s\nretry_max_attempts = %d\n"
             "retry_initial_backoff_ms = 10\nretry_max_backoff_ms = 10\n",
             ordering, TIER_DELAYS, TIER_ATTEMPTS);
    for (int p = 0; p < r->in_parts; p++) {
        itk_produce_typed(r, ITK_GOOD, "acme.enrollment.requested", NULL, p);
        issued[p] = itk_produce_typed(r, ITK_GOOD, "acme.enrollment.issued", NULL, p);
        /* the issued event's key again: with key ordering it waits for it */
        after[p] = itk_produce_after(r, ITK_GOOD, "acme.enrollment.requested", issued[p], p);
        itk_produce_typed(r, ITK_GOOD, "acme.enrollment.requested", NULL, p);
        failed[p] = itk_produce_typed(r, ITK_HOOK_FAIL, "acme.enrollment.failed", NULL, p);
        itk_produce_typed(r, ITK_GOOD, "acme.enrollment.requested", NULL, p);
        r->in[issued[p]].via_tier = !refused;
        r->in[failed[p]].via_tier = !refused;
        r->in[failed[p]].dlq_class = "retries_exhausted";
        if (refused) {
            /*
             * A refused tier record is replaced by its stand-ins
             * (publisher.c, retry_stand_down): the failed result and the
             * dead letter, as after the last tier. The commit invariant
             * holds the commit to both, which the tracker awaits instead
             * of the tier record.
             */
            r->in[issued[p]].kind = ITK_HOOK_FAIL;
            r->in[issued[p]].dlq_class = "retries_exhausted";
        }
    }
    if (itk_flush(r, 20000))
        itk_fail(r, "inputs not acknowledged");
    if (!start(r, 0, config(r, 0, hooks, NULL, wextra)))
        return 1;
    itk_wait(r, itk_cond_all_outcomes, NULL, 60000, "every input has its outcome");
    itk_wait(r, itk_cond_committed_end, NULL, 30000, "committed offsets reach the log end");
    itk_worker_stop(r, 0, 30000);
    itk_verify(r, &vo);

    for (int p = 0; p < r->in_parts; p++) {
        const itk_input_t *in = &r->in[failed[p]];
        const char *want = refused ? "1" : "2";
        size_t rs, os, op, rp;
        if (in->dlqs > 0 && strcmp(in->dlq_retry_attempt, want) != 0)
            itk_fail(r, "dead letter of failed input #%zu: hookd.retry.attempt '%s', expected %s",
                     failed[p], in->dlq_retry_attempt, want);
        in = &r->in[issued[p]];
        if (refused && in->dlqs > 0 && strcmp(in->dlq_retry_attempt, "1") != 0)
            itk_fail(r, "dead letter of issued input #%zu: hookd.retry.attempt '%s', expected 1",
                     issued[p], in->dlq_retry_attempt);
        /* Key ordering: the event of the same key after it has its result after it (the
         * key was held while the issued one waited in the tier, and released when it came
         * back, or, refused, when its stand-ins replaced the tier record); the same key,
         * the same result partition. */
        if (strcmp(ordering, "key") == 0 &&
            (in->first_result.partition < 0 ||
             r->in[after[p]].first_result.partition != in->first_result.partition ||
             r->in[after[p]].first_result.offset <= in->first_result.offset))
            itk_fail(r,
                     "input #%zu (key of #%zu): result at %d/%" PRId64 ", the earlier one's at "
                     "%d/%" PRId64 ": not after it",
                     after[p], issued[p], (int)r->in[after[p]].first_result.partition,
                     r->in[after[p]].first_result.offset, (int)in->first_result.partition,
                     in->first_result.offset);

        /* The issued one: its success hook asked twice (the in-line attempts), then, out of
         * tier 1, passed; its post hook ran once, after that. */
        snprintf(order, sizeof(order), "order-%zu", issued[p]);
        rs = trace_count(trace, 'R', "success", order);
        os = trace_count(trace, 'O', "success", order);
        op = trace_count(trace, 'O', "post", order);
        if (rs != TIER_ATTEMPTS || os != (refused ? 0u : 1u) || op != (refused ? 0u : 1u))
            itk_fail(r,
                     "issued input #%zu: success hook asked for a retry %zu times and passed %zu "
                     "times, post hook passed %zu times; expected %d, %d, %d",
                     issued[p], rs, os, op, TIER_ATTEMPTS, refused ? 0 : 1, refused ? 0 : 1);
        /* The failed one: its post hook ran its in-line attempts on the input and in each
         * tier. */
        snprintf(order, sizeof(order), "order-%zu", failed[p]);
        rp = trace_count(trace, 'R', "post", order);
        if (rp != (size_t)TIER_ATTEMPTS * (refused ? 1 : TIER_COUNT + 1))
            itk_fail(r, "failed input #%zu: post hook asked for a retry %zu times, expected %d",
                     failed[p], rp, TIER_ATTEMPTS * (refused ? 1 : TIER_COUNT + 1));
    }
    /* Tier 1 got the issued and the failed event of every partition, tier 2 the failed one. */
    n1 = topic_records(r, r->tier_topics[0]);
    n2 = topic_records(r, r->tier_topics[1]);
    if (n1 != (refused ? 0 : 2 * r->in_parts) || n2 != (refused ? 0 : r->in_parts))
        itk_fail(r, "tier topics hold %" PRId64 " and %" PRId64 " records, expected %d and %d", n1,
                 n2, refused ? 0 : 2 * r->in_parts, refused ? 0 : r->in_parts);
    return r->failures;
}

static int scn_tiers_key(itk_run_t *r, const opts_t *o)
{
    return run_tiers(r, o, "key", false);
}

static int scn_tiers_partition(itk_run_t *r, const opts_t *o)
{
    return run_tiers(r, o, "partition", false);
}

static int scn_tiers_refused(itk_run_t *r, const opts_t *o)
{
    return run_tiers(r, o, "key", true);
}

static const struct scenario {
    const char *name;
    int brokers, in_parts, res_parts, dlq_parts;
    int (*run)(itk_run_t *r, const opts_t *o);
} scenarios[] = {
    {"poison", 1, 4, 4, 2, scn_poison},
    {"broker_down", 3, 6, 4, 2, scn_broker_down},
    {"produce_errors", 1, 4, 4, 2, scn_produce_errors},
    {"commit_errors", 1, 4, 4, 2, scn_commit_errors},
    {"dlq_blocked", 1, 4, 4, 2, scn_dlq_blocked},
    {"rebalance", 1, 8, 4, 2, scn_rebalance},
    {"sigterm", 1, 4, 4, 2, scn_sigterm},
    {"crash", 1, 4, 4, 2, scn_crash},
    {"tiers_key", 1, 4, 4, 2, scn_tiers_key},
    {"tiers_partition", 1, 4, 4, 2, scn_tiers_partition},
    {"tiers_refused", 2, 4, 4, 2, scn_tiers_refused},
};

static void usage(void)
{
    fprintf(stderr, "usage: hookd_it --worker PATH [--slow-handler PATH] [--retry-handler PATH] "
                    "SCENARIO\nscenarios:");
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        fprintf(stderr, " %s", scenarios[i].name);
    fputc('\n', stderr);
}

int main(int argc, char **argv)
{
    opts_t o = {0};
    const char *name = NULL;
    const struct scenario *sc = NULL;
    itk_cluster_t *cl;
    itk_run_t *r;
    char errstr[512];
    int fails;
    int64_t t0 = itk_now_ms();

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--worker") == 0 && i + 1 < argc)
            o.worker = argv[++i];
        else if (strcmp(argv[i], "--slow-handler") == 0 && i + 1 < argc)
            o.slow_handler = argv[++i];
        else if (strcmp(argv[i], "--retry-handler") == 0 && i + 1 < argc)
            o.retry_handler = argv[++i];
        else if (argv[i][0] != '-')
            name = argv[i];
        else {
            usage();
            return 2;
        }
    }
    for (size_t i = 0; name && i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        if (strcmp(scenarios[i].name, name) == 0)
            sc = &scenarios[i];
    if (!sc || !o.worker) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    if (!(cl = itk_cluster_create(sc->brokers, errstr, sizeof(errstr)))) {
        fprintf(stderr, "[%s] mock cluster: %s\n", sc->name, errstr);
        return 2;
    }
    r = itk_run_create(sc->name, cl->bootstraps, cl, sc->in_parts, sc->res_parts, sc->dlq_parts,
                       o.worker, errstr, sizeof(errstr));
    if (!r) {
        fprintf(stderr, "[%s] setup: %s\n", sc->name, errstr);
        itk_cluster_destroy(cl);
        return 2;
    }
    itk_note(r, "mock cluster %s (%d broker%s), work directory %s", cl->bootstraps, sc->brokers,
             sc->brokers > 1 ? "s" : "", r->workdir);
    sc->run(r, &o);
    fails = r->failures;
    fprintf(stderr, "[%s] %s in %.1f s\n", sc->name, fails ? "FAILED" : "PASSED",
            (double)(itk_now_ms() - t0) / 1000.0);
    itk_run_destroy(r);
    itk_cluster_destroy(cl);
    return fails ? 1 : 0;
}
