/* SPDX-License-Identifier: MIT */
/*
 * The Kafka runtime (see runtime.h and docs/runtime.md).
 *
 * Threads:
 *   - the caller's thread runs hookd_runtime_run(): the consumer loop
 *     (batch consume, rebalance callbacks, offset store, pause/resume,
 *     readiness inputs) and the shutdown sequence;
 *   - the pool's handler threads: the message pipeline (pipeline.c:
 *     verify, decode, engine, encode, publish), one message at a time;
 *     with [worker] ordering = key one key, else one partition, on at most
 *     one thread at a time (pool.h); with exactly-once a thread also
 *     publishes the parked outcomes that follow its own (outseq.h);
 *   - the publisher's thread: delivery reports, which acknowledge outcomes
 *     in the offset tracker, and re-produce failed records.
 *
 * The partition table (`parts`, under `lock`) is the runtime's view of its
 * assignment: which partitions are owned under which epoch, and which are
 * paused. Only the consumer thread changes it.
 *
 * With retry tiers ([worker] retry_topics) the consumer reads the input
 * topic and the tier topics; every (topic, partition) is then a slot
 * (tiers.h: partition * (tiers + 1) + tier), and the partition table, the
 * offset tracker, the pool and the publisher index slots. Without tiers a
 * slot is the input partition. A tier partition is paused until its head
 * record is due (update_pauses), and a key whose event waits in a tier
 * this worker consumes is held in the pool (on_tier_hold).
 */
#include "runtime.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "auth.h"
#include "clock.h"
#include "consumer.h"
#include "embedded.h"
#include "event.h"
#include "invoke.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "outseq.h"
#include "pipeline.h"
#include "pool.h"
#include "publisher.h"
#include "tiers.h"

#define CONSUME_BATCH 1000     /* messages per rd_kafka_consume_batch_queue call */
#define CONSUME_TIMEOUT_MS 100 /* also the main loop's turn when idle */
#define FULL_TIMEOUT_MS 5      /* the turn while paused at max_in_flight */
#define STORE_BATCH 256        /* partitions per offsets_store call */
#define BROKER_PROBE_MS 1000   /* metadata probe interval while the broker is down */

/* The counters bumped once or more per message. */
typedef enum rt_hot {
    HOT_CONSUMED = 0,
    HOT_DECIDED,
    HOT_ABORTED,
    HOT_DROPPED,
    HOT_RESULTS,
    HOT_DEAD_LETTERS,
    HOT_REPLIES,
    HOT_RETRIES,
    HOT_COUNT
} rt_hot_t;

typedef struct rt_part {
    bool assigned;
    bool paused; /* as applied to the consumer */
    uint64_t epoch;
    int64_t next_offset; /* after the last message consumed, -1 none */
    /* Exactly-once: where an aborted transaction rewinds this partition
     * to (the offset committed by the last transaction, else the first
     * one consumed under this assignment); valid when eos_known. */
    bool eos_known;
    int64_t eos_rewind;
    /* Retry tier partitions: the head record is due at this wall-clock
     * time (epoch ms), the partition stays paused until then, and
     * next_offset is the head's offset, fetched again on resume. 0: none. */
    int64_t due_ms;
} rt_part_t;

struct hookd_runtime {
    const hookd_config_t *cfg;
    const hookd_registry_t *reg;
    char source[256]; /* ce_source of results */

    hookd_embedded_t *embedded;
    char *bootstraps;

    rd_kafka_t *rk; /* the consumer */
    rd_kafka_queue_t *cq;
    bool cooperative;
    hookd_publisher_t *pub;
    hookd_offsets_t *offsets;
    hookd_outseq_t *seq; /* exactly-once: outcomes in offset order (outseq.h); else NULL */
    hookd_pool_t *pool;
    hookd_auth_t *auth;
    hookd_pipeline_thread_t *threads;
    size_t nthreads;
    hookd_pipeline_t pipeline; /* what the handler threads run, see pipeline.h */
    /* Set at shutdown: retry backoffs in handler threads end early.
     * Relaxed: a hint that publishes no data. */
    atomic_int abort_handlers;

    pthread_mutex_t lock; /* parts, committed, stats; cond */
    pthread_cond_t cond;  /* stats changed */
    rt_part_t *parts;
    int64_t *committed;
    size_t nparts;
    uint64_t next_epoch;
    hookd_runtime_stats_t stats; /* the rarely changing fields */
    atomic_uint_fast64_t hot[HOT_COUNT];
    atomic_int waiters; /* threads in hookd_runtime_wait() */

    /* Consumer-thread state. */
#ifndef NDEBUG
    pthread_t consumer_thread; /* the caller of run(), once it started */
    bool consumer_thread_set;
#endif
    uint64_t shutdown_deadline; /* 0 while running */
    uint64_t next_probe;
    uint64_t next_commit; /* no commit request before this time (ms) */
    bool commit_due;      /* the watermark moved since the last commit request */
    bool worker_full;     /* over max_in_flight: every partition paused (update_pauses) */
    bool fatal;
    uint64_t eos_next_commit; /* exactly-once: end the transaction at this time (ms) */
    bool closed;              /* rd_kafka_consumer_close() done */
    bool pool_stuck;          /* a handler outlived the shutdown deadline */
};

/* Debug builds check that consumer-thread-only code runs on that thread. */
#ifndef NDEBUG
#define RT_ASSERT_CONSUMER_THREAD(rt)                                                              \
    assert(!(rt)->consumer_thread_set || pthread_equal((rt)->consumer_thread, pthread_self()))
#else
#define RT_ASSERT_CONSUMER_THREAD(rt) ((void)0)
#endif

/* ---- small helpers ------------------------------------------------------ */

/* Per-message counters: atomic, and a wake-up only when someone waits. */
static void stats_bump(hookd_runtime_t *rt, rt_hot_t which, uint64_t n)
{
    atomic_fetch_add_explicit(&rt->hot[which], n, memory_order_relaxed);
    if (atomic_load_explicit(&rt->waiters, memory_order_acquire) > 0) {
        pthread_mutex_lock(&rt->lock);
        pthread_cond_broadcast(&rt->cond);
        pthread_mutex_unlock(&rt->lock);
    }
}

/* Grow the partition table to hold `partition`. Lock held. */
static rt_part_t *part_get(hookd_runtime_t *rt, int32_t partition)
{
    if (partition < 0)
        return NULL;
    if ((size_t)partition >= rt->nparts) {
        size_t n = (size_t)partition + 1, i;
        rt_part_t *np = realloc(rt->parts, n * sizeof(*np));
        int64_t *nc;
        if (np == NULL)
            return NULL;
        rt->parts = np;
        if ((nc = realloc(rt->committed, n * sizeof(*nc))) == NULL)
            return NULL;
        rt->committed = nc;
        for (i = rt->nparts; i < n; i++) {
            memset(&rt->parts[i], 0, sizeof(rt->parts[i]));
            rt->committed[i] = -1;
        }
        rt->nparts = n;
    }
    return &rt->parts[partition];
}

/* The epoch `partition` is owned under, or 0 when not owned. */
static uint64_t part_epoch(hookd_runtime_t *rt, int32_t partition)
{
    uint64_t e = 0;
    pthread_mutex_lock(&rt->lock);
    if (partition >= 0 && (size_t)partition < rt->nparts && rt->parts[partition].assigned)
        e = rt->parts[partition].epoch;
    pthread_mutex_unlock(&rt->lock);
    return e;
}

/* ---- slots (tiers.h) ------------------------------------------------------ */

/* The slot of a consumed (topic, partition), -1 when it is none of ours. */
static int32_t slot_of(const hookd_runtime_t *rt, const char *topic, int32_t partition)
{
    int tier = hookd_tiers_find(rt->cfg->retry_tiers, topic, rt->cfg->input_topic);
    return tier < 0 ? -1 : hookd_tiers_slot(rt->cfg->retry_tiers, (size_t)tier, partition);
}

static const char *slot_topic(const hookd_runtime_t *rt, int32_t slot)
{
    return hookd_tiers_topic(rt->cfg->retry_tiers,
                             hookd_tiers_slot_tier(rt->cfg->retry_tiers, slot),
                             rt->cfg->input_topic);
}

static int32_t slot_partition(const hookd_runtime_t *rt, int32_t slot)
{
    return hookd_tiers_slot_partition(rt->cfg->retry_tiers, slot);
}

/* Add the (topic, partition) of `slot` to `list`. */
static rd_kafka_topic_partition_t *
list_add_slot(const hookd_runtime_t *rt, rd_kafka_topic_partition_list_t *list, int32_t slot)
{
    return rd_kafka_topic_partition_list_add(list, slot_topic(rt, slot), slot_partition(rt, slot));
}

static int remaining_ms(uint64_t deadline)
{
    uint64_t now = hookd_now_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

static void set_broker_up(hookd_runtime_t *rt, bool up)
{
    if (hookd_status_get(HOOKD_STATUS_BROKER_UP) != up) {
        hookd_status_set(HOOKD_STATUS_BROKER_UP, up);
        hookd_logf(up ? HOOKD_LOG_INFO : HOOKD_LOG_WARNING, NULL, "kafka: broker %s",
                   up ? "reachable" : "unreachable");
    }
    rt->next_probe = hookd_now_ms() + BROKER_PROBE_MS;
}

/* ---- publisher callbacks (publisher thread) ----------------------------- */

static void on_record_acked(void *opaque, const hookd_record_origin_t *o, hookd_record_kind_t kind)
{
    hookd_runtime_t *rt = opaque;
    hookd_offsets_ack(rt->offsets, o->partition, o->epoch, o->offset);
    stats_bump(rt,
               kind == HOOKD_RECORD_RESULT  ? HOT_RESULTS
               : kind == HOOKD_RECORD_REPLY ? HOT_REPLIES
               : kind == HOOKD_RECORD_RETRY ? HOT_RETRIES
                                            : HOT_DEAD_LETTERS,
               1);
}

static bool on_owned(void *opaque, int32_t partition, uint64_t epoch)
{
    return part_epoch(opaque, partition) == epoch;
}

/* ---- pipeline callback (handler threads) -------------------------------- */

static void on_processed(void *opaque, bool aborted)
{
    stats_bump(opaque, aborted ? HOT_ABORTED : HOT_DECIDED, 1);
}

/*
 * Retry tiers (handler threads): an event of input `partition` now waits
 * in `tier`. While this worker owns that tier partition it will run the
 * event again itself, so the key is held in the input partition's lanes
 * until then: a later event of the key does not overtake it here. When it
 * does not own it (another worker will run it), nothing can release a hold,
 * so none is taken and an earlier one of the event is released. The check
 * and the hold are one step under the lock: revoke_partitions marks a tier
 * partition unowned under it before releasing its holds.
 */
static bool on_tier_hold(void *opaque, int32_t partition, size_t tier, const void *key,
                         size_t key_len, int64_t token)
{
    hookd_runtime_t *rt = opaque;
    const hookd_tiers_t *t = rt->cfg->retry_tiers;
    int32_t in = hookd_tiers_slot(t, 0, partition), ts = hookd_tiers_slot(t, tier, partition);
    bool held = false;
    pthread_mutex_lock(&rt->lock);
    if (ts >= 0 && (size_t)ts < rt->nparts && rt->parts[ts].assigned)
        held = hookd_pool_hold(rt->pool, in, key, key_len, token, (int)tier) == 0;
    else
        hookd_pool_release(rt->pool, in, key, key_len, token);
    pthread_mutex_unlock(&rt->lock);
    return held;
}

static void on_tier_release(void *opaque, int32_t partition, const void *key, size_t key_len,
                            int64_t token)
{
    hookd_runtime_t *rt = opaque;
    hookd_pool_release(rt->pool, hookd_tiers_slot(rt->cfg->retry_tiers, 0, partition), key, key_len,
                       token);
}

/*
 * A tier record refused for good (publisher thread, or a handler thread):
 * its stand-ins, the event's outcome without the tier, replace its one
 * acknowledgement; once they are queued, the key's hold for the tier ends,
 * as the event will not come back.
 */
static bool on_retry_refused(void *opaque, const hookd_record_origin_t *o, unsigned more,
                             const void *key, size_t key_len, int64_t token, bool queued)
{
    hookd_runtime_t *rt = opaque;
    if (queued) {
        on_tier_release(rt, o->topic != NULL ? o->topic_partition : o->partition, key, key_len,
                        token);
        return true;
    }
    return hookd_offsets_expect_more(rt->offsets, o->partition, o->epoch, o->offset, more) ==
           HOOKD_OFFSETS_OK;
}

/* ---- consumer side (consumer thread) ------------------------------------ */

/* "assigned 3 partition(s) [0,1,2]"; a partition of another topic than
 * the input (a retry tier) as "<topic>:<partition>". */
static void log_partitions(const hookd_runtime_t *rt, hookd_log_level_t level, const char *what,
                           const rd_kafka_topic_partition_list_t *parts)
{
    char buf[1024];
    size_t off = 0;
    int i;
    buf[0] = '\0';
    for (i = 0; i < parts->cnt && off < sizeof(buf) - 16; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        bool input = strcmp(p->topic, rt->cfg->input_topic) == 0;
        int n = snprintf(buf + off, sizeof(buf) - off, "%s%s%s%d", i ? "," : "",
                         input ? "" : p->topic, input ? "" : ":", p->partition);
        if (n < 0 || (size_t)n >= sizeof(buf) - off)
            break;
        off += (size_t)n;
    }
    hookd_logf(level, NULL, "kafka: %s %d partition(s) [%s]", what, parts->cnt, buf);
}

static void record_committed(hookd_runtime_t *rt, const rd_kafka_topic_partition_list_t *offsets)
{
    int i;
    bool any = false;
    pthread_mutex_lock(&rt->lock);
    for (i = 0; i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &offsets->elems[i];
        int32_t slot = slot_of(rt, p->topic, p->partition);
        if (p->err != RD_KAFKA_RESP_ERR_NO_ERROR || p->offset < 0 || slot < 0 ||
            part_get(rt, slot) == NULL)
            continue;
        rt->committed[slot] = p->offset;
        any = true;
    }
    if (any)
        pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
}

static void offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    hookd_runtime_t *rt = opaque;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return; /* nothing new to commit */
    hookd_metrics_offset_commit(err == RD_KAFKA_RESP_ERR_NO_ERROR);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        hookd_logf(HOOKD_LOG_WARNING, NULL,
                   "kafka: offset commit failed: %s (retried at the next commit)",
                   rd_kafka_err2str(err));
        /* The stored offsets stay ahead of the committed ones in librdkafka:
         * the next request carries them again. Served on the consumer
         * thread (the commit result comes through the consumer queue). */
        rt->commit_due = true;
        return;
    }
    if (offsets != NULL)
        record_committed(rt, offsets);
}

/*
 * Commit what is durable, from the consumer thread, as soon as the
 * watermark moved and at most once every commit_interval_ms.
 *
 * Why not librdkafka's auto-commit with auto.commit.interval.ms set to the
 * interval: its timer runs from the creation of the client and skips every
 * tick that finds the group outside the steady state, so the first commit
 * of a fresh assignment waits up to a full interval (longer when a tick
 * falls in the rebalance), and a watermark that moves on a quiet topic
 * waits for the next tick too. Everything published but not committed is
 * redone after a crash; a worker that starts on a backlog publishes
 * thousands of results in that time. Here the first movement is committed
 * on the next turn of the loop, later ones once the interval since the
 * previous request has passed.
 *
 * One asynchronous request commits every partition whose stored offset is
 * ahead of its committed one (rd_kafka_commit with no list: librdkafka
 * leaves out the partitions that did not move and sends nothing when none
 * did), so the traffic is at most one small OffsetCommit per interval while
 * work flows and none while idle: batching keeps the cost of committing
 * negligible (a synchronous commit per message costs about 50 times the
 * CPU of batched ones). The result comes back through
 * offset_commit_cb, on this thread.
 */
static void commit_if_due(hookd_runtime_t *rt, size_t moved)
{
    uint64_t now;
    rd_kafka_resp_err_t err;

    if (moved > 0)
        rt->commit_due = true;
    if (!rt->commit_due || (now = hookd_now_ms()) < rt->next_commit)
        return;
    rt->commit_due = false;
    rt->next_commit =
        now + (uint64_t)(rt->cfg->commit_interval_ms > 0 ? rt->cfg->commit_interval_ms : 200);
    if ((err = rd_kafka_commit(rt->rk, NULL, 1 /* async */)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        hookd_logf(HOOKD_LOG_DEBUG, NULL, "kafka: commit: %s", rd_kafka_err2str(err));
        rt->commit_due = true;
    }
}

/* Store what is durable for the given partitions (or every moved one);
 * returns how many partitions were stored. */
static size_t store_offsets(hookd_runtime_t *rt, bool all)
{
    hookd_offsets_pos_t pos[STORE_BATCH];
    size_t n, i, stored = 0;
    while ((n = hookd_offsets_collect(rt->offsets, pos, STORE_BATCH, all)) > 0) {
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
        rd_kafka_resp_err_t err;
        for (i = 0; i < n; i++)
            list_add_slot(rt, list, pos[i].partition)->offset = pos[i].offset;
        if ((err = rd_kafka_offsets_store(rt->rk, list)) != RD_KAFKA_RESP_ERR_NO_ERROR)
            hookd_logf(HOOKD_LOG_DEBUG, NULL, "kafka: offsets_store: %s", rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(list);
        stored += n;
        if (n < STORE_BATCH)
            break;
    }
    return stored;
}

/* Store and synchronously commit the durable position of `parts` (NULL: all owned). */
static void commit_sync(hookd_runtime_t *rt, const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t err;
    int i;

    if (parts == NULL) {
        hookd_offsets_pos_t *pos;
        size_t n = 0, k, max;
        pthread_mutex_lock(&rt->lock);
        max = rt->nparts; /* every partition ever owned fits */
        pthread_mutex_unlock(&rt->lock);
        list = rd_kafka_topic_partition_list_new(16);
        if (max > 0 && (pos = calloc(max, sizeof(*pos))) != NULL) {
            n = hookd_offsets_collect(rt->offsets, pos, max, 1);
            for (k = 0; k < n; k++)
                list_add_slot(rt, list, pos[k].partition)->offset = pos[k].offset;
            free(pos);
        }
    } else {
        list = rd_kafka_topic_partition_list_new(parts->cnt);
        for (i = 0; i < parts->cnt; i++) {
            int32_t slot = slot_of(rt, parts->elems[i].topic, parts->elems[i].partition);
            int64_t o = slot < 0 ? -1 : hookd_offsets_committable(rt->offsets, slot);
            if (o >= 0)
                rd_kafka_topic_partition_list_add(list, parts->elems[i].topic,
                                                  parts->elems[i].partition)
                    ->offset = o;
        }
    }
    if (list->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(list);
        return;
    }
    rd_kafka_offsets_store(rt->rk, list); /* a later commit_if_due must not go back behind */
    err = rd_kafka_commit(rt->rk, list, 0 /* sync */);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (i = 0; i < list->cnt; i++)
            list->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        record_committed(rt, list);
    } else if (err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        hookd_logf(HOOKD_LOG_WARNING, NULL, "kafka: synchronous commit failed: %s",
                   rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* ---- exactly-once: the transactional commit path (consumer thread) ----- */

/*
 * With [kafka] delivery = exactly_once the commit path above is replaced
 * by transactions (docs/runtime.md, "Exactly-once"): the publisher's
 * producer is transactional, every record it produces joins the open
 * transaction, and the consumer thread ends that transaction every
 * transaction_interval_ms or transaction_max_events outcomes, on revoke and
 * at shutdown, with the input offsets in it (send_offsets_to_transaction
 * with the consumer's group metadata). Nothing is stored or committed
 * through the consumer in this mode.
 *
 * The offsets are the offset tracker's watermarks taken while the
 * publisher's gate is closed and every record is acknowledged: an offset
 * is below the watermark only when all the records of its outcome were
 * acknowledged, and so are in this transaction or an earlier committed
 * one. No outcome above the watermark can be in the transaction either:
 * outcomes of a partition are published in offset order (the outcome
 * sequencer, outseq.h). With ordering = key, events of other keys run
 * concurrently and finish in any order; an outcome whose earlier consumed
 * events have not all published theirs is parked, and published by the
 * handler thread that publishes its predecessor. So every record the
 * transaction holds belongs to an event below the watermark: records and
 * offsets commit together or not at all. Parked outcomes cost memory
 * within max_in_flight_per_partition (they count as in flight), and are
 * dropped, never published, when their epoch ends (abort, revoke).
 *
 * When the transaction aborts (a failed delivery, a coordinator error, a
 * fenced or fatal producer), every partition is rewound: queued messages
 * are dropped, the tracker and the pool start a new epoch (an outcome
 * still being computed under the old one publishes nothing), and the
 * consumer seeks to the last committed position, so the uncommitted
 * events are consumed and processed again.
 */

#define EOS_HOLD_TIMEOUT_MS 30000 /* records awaiting acknowledgement (message.timeout.ms) */
#define EOS_END_TIMEOUT_MS 30000  /* send offsets + commit, or abort */

/* A message of the partition was consumed. Lock held. */
static void eos_note_consumed(rt_part_t *rp, int64_t offset)
{
    if (!rp->eos_known) {
        rp->eos_known = true;
        rp->eos_rewind = offset;
    }
}

/*
 * Rewind every assigned partition to its last committed position after an
 * abort. The publisher's gate is closed: no outcome is being published, so
 * the epoch change cannot split one.
 */
static void eos_rewind(hookd_runtime_t *rt)
{
    size_t i, n, dropped = 0, rewound = 0;
    RT_ASSERT_CONSUMER_THREAD(rt);

    pthread_mutex_lock(&rt->lock);
    n = rt->nparts;
    pthread_mutex_unlock(&rt->lock);
    for (i = 0; i < n; i++) {
        int32_t p = (int32_t)i;
        uint64_t old, epoch;
        int64_t to = -1;
        pthread_mutex_lock(&rt->lock);
        if (!rt->parts[i].assigned) {
            pthread_mutex_unlock(&rt->lock);
            continue;
        }
        old = rt->parts[i].epoch;
        epoch = ++rt->next_epoch;
        rt->parts[i].epoch = epoch;
        if (rt->parts[i].eos_known)
            to = rt->parts[i].eos_rewind;
        rt->parts[i].next_offset = to;
        pthread_mutex_unlock(&rt->lock);

        dropped += hookd_pool_revoke(rt->pool, p);
        hookd_offsets_revoke(rt->offsets, p);
        hookd_publisher_forget(rt->pub, p, old);
        /* Outcomes parked under the old epoch are dropped: redone too. */
        if (hookd_offsets_assign(rt->offsets, p, epoch) != HOOKD_OFFSETS_OK ||
            (rt->seq != NULL && hookd_outseq_assign(rt->seq, p, epoch) != 0) ||
            hookd_pool_assign(rt->pool, p, epoch) != 0)
            hookd_logf(HOOKD_LOG_ERROR, NULL, "kafka: out of memory rewinding partition %d", p);
        if (to >= 0) {
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
            rd_kafka_error_t *e;
            list_add_slot(rt, l, p)->offset = to;
            /* A seek discards what was fetched from the old position. */
            if ((e = rd_kafka_seek_partitions(rt->rk, l, 0)) != NULL) {
                hookd_logf(HOOKD_LOG_ERROR, NULL, "kafka: seek partition %d to %" PRId64 ": %s", p,
                           to, rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
            rd_kafka_topic_partition_list_destroy(l);
            rewound++;
        }
    }
    stats_bump(rt, HOT_DROPPED, dropped);
    hookd_logf(HOOKD_LOG_WARNING, NULL,
               "kafka: transaction aborted; %zu partition(s) rewound to their committed offsets "
               "(%zu queued message(s) dropped), uncommitted events are redone",
               rewound, dropped);
}

/*
 * End the open transaction: commit it with the watermarks of every owned
 * partition (`commit`), or abort it; after an abort, rewind. Returns true
 * when it committed (or there was nothing to commit).
 */
static bool eos_txn_end(hookd_runtime_t *rt, bool commit, int timeout_ms)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_consumer_group_metadata_t *cgmd = NULL;
    hookd_txn_result_t res;
    hookd_offsets_pos_t *pos = NULL;
    size_t max, n = 0, k;
    bool moved = false;
    RT_ASSERT_CONSUMER_THREAD(rt);

    if (!hookd_publisher_txn_hold(rt->pub, EOS_HOLD_TIMEOUT_MS))
        commit = false; /* a record still unacknowledged: the watermark cannot be trusted */
    if (hookd_publisher_txn_doomed(rt->pub))
        commit = false;
    pthread_mutex_lock(&rt->lock);
    max = rt->nparts;
    pthread_mutex_unlock(&rt->lock);
    list = rd_kafka_topic_partition_list_new(16);
    if (commit && max > 0 && (pos = calloc(max, sizeof(*pos))) != NULL) {
        n = hookd_offsets_collect(rt->offsets, pos, max, 1);
        pthread_mutex_lock(&rt->lock);
        for (k = 0; k < n; k++) {
            list_add_slot(rt, list, pos[k].partition)->offset = pos[k].offset;
            if (rt->committed[pos[k].partition] != pos[k].offset)
                moved = true;
        }
        pthread_mutex_unlock(&rt->lock);
        free(pos);
    }
    if (commit && !moved && hookd_publisher_txn_outcomes(rt->pub) == 0) {
        /* Nothing new: the open transaction is empty, keep it. */
        hookd_publisher_txn_release(rt->pub);
        rd_kafka_topic_partition_list_destroy(list);
        return true;
    }
    if (commit)
        cgmd = rd_kafka_consumer_group_metadata(rt->rk);
    res = hookd_publisher_txn_end(rt->pub, commit && cgmd != NULL, list, cgmd,
                                  timeout_ms > 0 ? timeout_ms : EOS_END_TIMEOUT_MS);
    if (cgmd != NULL)
        rd_kafka_consumer_group_metadata_destroy(cgmd);
    hookd_metrics_transaction(res == HOOKD_TXN_COMMITTED);
    if (res == HOOKD_TXN_COMMITTED) {
        int i;
        hookd_metrics_offset_commit(true);
        for (i = 0; i < list->cnt; i++)
            list->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        record_committed(rt, list);
        pthread_mutex_lock(&rt->lock);
        for (i = 0; i < list->cnt; i++) {
            int32_t slot = slot_of(rt, list->elems[i].topic, list->elems[i].partition);
            rt_part_t *rp = slot < 0 ? NULL : part_get(rt, slot);
            if (rp != NULL && rp->assigned) {
                rp->eos_known = true;
                rp->eos_rewind = list->elems[i].offset;
            }
        }
        pthread_mutex_unlock(&rt->lock);
    } else {
        /* Before the gate opens: an outcome computed from the old
         * positions must find its epoch gone (the tracker refuses it),
         * or it would join the next transaction and be committed beside
         * its redone copy. */
        eos_rewind(rt);
    }
    hookd_publisher_txn_release(rt->pub);
    rd_kafka_topic_partition_list_destroy(list);
    return res == HOOKD_TXN_COMMITTED;
}

/* End the transaction when its interval passed or it holds enough outcomes. */
static void eos_commit_if_due(hookd_runtime_t *rt)
{
    uint64_t now = hookd_now_ms();
    size_t max =
        rt->cfg->transaction_max_events > 0 ? (size_t)rt->cfg->transaction_max_events : 10000;
    if (now < rt->eos_next_commit && hookd_publisher_txn_outcomes(rt->pub) < max &&
        !hookd_publisher_txn_doomed(rt->pub))
        return;
    eos_txn_end(rt, true, EOS_END_TIMEOUT_MS);
    rt->eos_next_commit =
        hookd_now_ms() +
        (uint64_t)(rt->cfg->transaction_interval_ms > 0 ? rt->cfg->transaction_interval_ms : 100);
}

static void assign_partitions(hookd_runtime_t *rt, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    int i;
    RT_ASSERT_CONSUMER_THREAD(rt);

    for (i = 0; i < parts->cnt; i++) {
        int32_t p = slot_of(rt, parts->elems[i].topic, parts->elems[i].partition);
        uint64_t epoch;
        rt_part_t *rp = NULL;
        pthread_mutex_lock(&rt->lock);
        epoch = ++rt->next_epoch;
        if (p >= 0 && (rp = part_get(rt, p)) != NULL) {
            rp->assigned = true;
            rp->paused = false;
            rp->next_offset = -1;
            rp->epoch = epoch;
            rp->eos_known = false;
            rp->due_ms = 0;
        }
        pthread_mutex_unlock(&rt->lock);
        if (rp == NULL || hookd_offsets_assign(rt->offsets, p, epoch) != HOOKD_OFFSETS_OK ||
            (rt->seq != NULL && hookd_outseq_assign(rt->seq, p, epoch) != 0) ||
            hookd_pool_assign(rt->pool, p, epoch) != 0)
            hookd_logf(HOOKD_LOG_ERROR, NULL, "kafka: out of memory assigning partition %d", p);
    }
    if (rt->cooperative)
        error = rd_kafka_incremental_assign(rt->rk, parts);
    else
        err = rd_kafka_assign(rt->rk, parts);
    if (error != NULL) {
        hookd_logf(HOOKD_LOG_ERROR, NULL, "kafka: incremental assign: %s",
                   rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        hookd_logf(HOOKD_LOG_ERROR, NULL, "kafka: assign: %s", rd_kafka_err2str(err));
    }
    /* A partition paused under an earlier assignment must not stay so. */
    rd_kafka_resume_partitions(rt->rk, parts);
    log_partitions(rt, HOOKD_LOG_INFO, "assigned", parts);
    hookd_status_set(HOOKD_STATUS_GROUP_JOINED, true);
    set_broker_up(rt, true); /* the coordinator answered */
    pthread_mutex_lock(&rt->lock);
    rt->stats.assigned_partitions += parts->cnt;
    rt->stats.rebalances++;
    pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
}

/*
 * Revoke: queued messages of the partitions are dropped (uncommitted, the
 * new owner redoes them); the message in a handler is given until
 * revoke_timeout_ms (or the shutdown deadline) to finish and its records to
 * be acknowledged; what is durable then is committed synchronously, and the
 * rest is abandoned. Lost partitions (session expired) commit nothing: the
 * group has already given them to someone else.
 */
static void revoke_partitions(hookd_runtime_t *rt, rd_kafka_topic_partition_list_t *parts,
                              bool lost)
{
    uint64_t deadline = hookd_now_ms() + (uint64_t)rt->cfg->revoke_timeout_ms;
    size_t dropped = 0, abandoned = 0;
    uint64_t *epochs = calloc((size_t)parts->cnt + 1, sizeof(*epochs));
    int i;
    RT_ASSERT_CONSUMER_THREAD(rt);

    if (rt->shutdown_deadline != 0 && rt->shutdown_deadline < deadline)
        deadline = rt->shutdown_deadline;
    log_partitions(rt, lost ? HOOKD_LOG_WARNING : HOOKD_LOG_INFO, lost ? "lost" : "revoking",
                   parts);
    for (i = 0; i < parts->cnt; i++) {
        int32_t p = slot_of(rt, parts->elems[i].topic, parts->elems[i].partition);
        if (p < 0)
            continue;
        if (epochs != NULL)
            epochs[i] = part_epoch(rt, p);
        dropped += hookd_pool_revoke(rt->pool, p);
    }
    if (!lost && epochs != NULL) {
        for (i = 0; i < parts->cnt; i++) {
            int32_t p = slot_of(rt, parts->elems[i].topic, parts->elems[i].partition);
            if (p < 0)
                continue;
            while (!hookd_pool_wait_idle(rt->pool, p, 100) && remaining_ms(deadline) > 0)
                hookd_status_heartbeat();
            while (!hookd_publisher_wait(rt->pub, p, epochs[i], 100) && remaining_ms(deadline) > 0)
                hookd_status_heartbeat();
        }
        if (hookd_publisher_transactional(rt->pub))
            eos_txn_end(rt, true, remaining_ms(deadline));
        else
            commit_sync(rt, parts);
    } else if (lost && hookd_publisher_transactional(rt->pub)) {
        /* The group gave them away: their work must not be committed by
         * us, and a transaction cannot leave it out. */
        eos_txn_end(rt, false, rt->cfg->revoke_timeout_ms);
    }
    for (i = 0; i < parts->cnt; i++) {
        int32_t p = slot_of(rt, parts->elems[i].topic, parts->elems[i].partition);
        size_t tier = hookd_tiers_slot_tier(rt->cfg->retry_tiers, p);
        rt_part_t *rp;
        if (p < 0)
            continue;
        abandoned += hookd_offsets_outstanding(rt->offsets, p);
        hookd_offsets_revoke(rt->offsets, p);
        if (rt->seq != NULL)
            hookd_outseq_revoke(rt->seq, p); /* parked outcomes: not committed, not published */
        pthread_mutex_lock(&rt->lock);
        if ((rp = part_get(rt, p)) != NULL && rp->assigned) {
            rp->assigned = false;
            if (rp->paused)
                rt->stats.paused_partitions--;
            rp->paused = false;
            rt->stats.assigned_partitions--;
        }
        pthread_mutex_unlock(&rt->lock);
        /* Keys held for events of this tier partition: the tier event is
         * no longer ours to run, so nothing would release them. */
        if (tier > 0)
            hookd_pool_release_tag(rt->pool,
                                   hookd_tiers_slot(rt->cfg->retry_tiers, 0, slot_partition(rt, p)),
                                   (int)tier);
        if (epochs != NULL)
            hookd_publisher_forget(rt->pub, p, epochs[i]);
    }
    free(epochs);
    if (abandoned > 0)
        hookd_logf(HOOKD_LOG_WARNING, NULL,
                   "kafka: %zu message(s) of revoked partitions left uncommitted (%zu dropped "
                   "unprocessed); their new owner processes them",
                   abandoned, dropped);
    pthread_mutex_lock(&rt->lock);
    atomic_fetch_add(&rt->hot[HOT_DROPPED], dropped);
    rt->stats.rebalances++;
    pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    hookd_runtime_t *rt = opaque;

    /* Known once the group is joined; "COOPERATIVE" with the default
     * cooperative-sticky assignor, "EAGER" with range / roundrobin. */
    rt->cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assign_partitions(rt, parts);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        revoke_partitions(rt, parts, rd_kafka_assignment_lost(rk) != 0);
        if (rt->cooperative) {
            rd_kafka_error_t *error = rd_kafka_incremental_unassign(rk, parts);
            if (error != NULL) {
                hookd_logf(HOOKD_LOG_ERROR, NULL, "kafka: incremental unassign: %s",
                           rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
            }
        } else {
            rd_kafka_assign(rk, NULL);
        }
        return;
    }
    hookd_logf(HOOKD_LOG_ERROR, NULL, "kafka: rebalance error: %s", rd_kafka_err2str(err));
    if (rt->cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(rk, parts);
        if (error != NULL)
            rd_kafka_error_destroy(error);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    hookd_runtime_t *rt = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        set_broker_up(rt, false);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof(why));
        hookd_logf(HOOKD_LOG_ERROR, NULL, "kafka: consumer fatal error: %s", why);
        rt->fatal = true;
        return;
    }
    hookd_logf(HOOKD_LOG_WARNING, NULL, "kafka: %s: %s",
               rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    hookd_metrics_kafka_stats(json, json_len);
    return 0; /* librdkafka frees json */
}

/*
 * Pause a partition when it has buffered too much, or when its outcomes
 * cannot be published; resume it when it has drained to half its bounds
 * and publishing works. The bounds:
 *   - partition_queue_max: messages queued in the pool for the partition;
 *   - max_in_flight_per_partition: messages consumed and not yet
 *     committable (from the partition's watermark to the newest consumed:
 *     the offset tracker's outstanding count). With key ordering the
 *     other keys of a partition go on while one key is slow, and this is
 *     what bounds the work done past its watermark (memory, and what a
 *     crash makes the next owner redo; with exactly-once, the outcomes
 *     parked until the watermark reaches them);
 *   - max_in_flight: the same, summed over the worker's partitions; over
 *     it, every partition is paused.
 */
static void update_pauses(hookd_runtime_t *rt)
{
    size_t i, n, total = 0;
    size_t max = rt->cfg->partition_queue_max > 0 ? (size_t)rt->cfg->partition_queue_max : 1000;
    size_t pmax = rt->cfg->max_in_flight_per_partition > 0
                      ? (size_t)rt->cfg->max_in_flight_per_partition
                      : 5000;
    size_t wmax = rt->cfg->max_in_flight > 0 ? (size_t)rt->cfg->max_in_flight : 40000;
    int64_t now = rt->cfg->retry_tiers != NULL ? hookd_wall_ms() : 0;
    RT_ASSERT_CONSUMER_THREAD(rt);

    pthread_mutex_lock(&rt->lock);
    n = rt->nparts;
    pthread_mutex_unlock(&rt->lock);
    for (i = 0; i < n; i++)
        total += hookd_offsets_outstanding(rt->offsets, (int32_t)i);
    if (total >= wmax)
        rt->worker_full = true;
    else if (total <= wmax / 2)
        rt->worker_full = false;
    for (i = 0; i < n; i++) {
        int32_t p = (int32_t)i;
        bool assigned, paused, want, waiting;
        size_t q, inf;
        pthread_mutex_lock(&rt->lock);
        assigned = rt->parts[i].assigned;
        paused = rt->parts[i].paused;
        waiting = rt->parts[i].due_ms > now;
        if (!waiting)
            rt->parts[i].due_ms = 0;
        pthread_mutex_unlock(&rt->lock);
        if (!assigned)
            continue;
        q = hookd_pool_queued(rt->pool, p);
        inf = hookd_offsets_outstanding(rt->offsets, p);
        want = waiting || hookd_publisher_blocked(rt->pub, p) || rt->worker_full || q >= max ||
               (paused && q > max / 2) || inf >= pmax || (paused && inf > pmax / 2);
        if (want != paused) {
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
            rd_kafka_resp_err_t err;
            list_add_slot(rt, l, p);
            /* librdkafka 2.0.2 fetches a resumed partition again only about
             * a second later (measured: a fast handler then idles for most
             * of every pause cycle). Seeking to the next offset to consume
             * restarts its fetcher at once; what was fetched while paused
             * was discarded anyway, so nothing is skipped. A message
             * delivered twice around the seek is refused by the tracker.
             * The seek comes before the resume, while the partition is
             * still paused: resumed first, librdkafka fetches from its own
             * position, past a retry tier's head that was consumed but not
             * due, and a record behind the head could be consumed before
             * the seek back to it took effect; tracked first, it made the
             * tracker refuse the head (offsets go forward), which was lost.
             * librdkafka resumes from the position a seek set (since 1.9). */
            if (!want) {
                int64_t next;
                pthread_mutex_lock(&rt->lock);
                next = rt->parts[i].next_offset;
                pthread_mutex_unlock(&rt->lock);
                if (next >= 0) {
                    rd_kafka_error_t *e;
                    l->elems[0].offset = next;
                    if ((e = rd_kafka_seek_partitions(rt->rk, l, 0)) != NULL)
                        rd_kafka_error_destroy(e);
                }
            }
            err =
                want ? rd_kafka_pause_partitions(rt->rk, l) : rd_kafka_resume_partitions(rt->rk, l);
            rd_kafka_topic_partition_list_destroy(l);
            if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
                continue;
            pthread_mutex_lock(&rt->lock);
            rt->parts[i].paused = want;
            rt->stats.paused_partitions += want ? 1 : -1;
            pthread_cond_broadcast(&rt->cond);
            pthread_mutex_unlock(&rt->lock);
            if (hookd_tiers_slot_tier(rt->cfg->retry_tiers, p) == 0)
                hookd_logf(HOOKD_LOG_DEBUG, NULL,
                           "kafka: partition %d %s (queue %zu, in flight %zu)",
                           slot_partition(rt, p), want ? "paused" : "resumed", q, inf);
            else
                hookd_logf(HOOKD_LOG_DEBUG, NULL,
                           "kafka: retry tier %s partition %d %s (queue %zu, in flight %zu%s)",
                           slot_topic(rt, p), slot_partition(rt, p), want ? "paused" : "resumed", q,
                           inf, waiting ? ", head not due" : "");
        }
    }
}

/*
 * A record of a tier partition: is its head not due yet? Then the
 * partition is paused until it is (update_pauses resumes it and seeks back
 * to the head), and this record and those fetched after it are left
 * unconsumed. Spring's back-off by pausing: no thread waits, the other
 * partitions go on. The due time is the record's hookd.retry.due, else its
 * timestamp plus the tier's delay.
 */
static bool tier_not_due(hookd_runtime_t *rt, int32_t slot, const rd_kafka_message_t *rkm)
{
    const hookd_tiers_t *t = rt->cfg->retry_tiers;
    int64_t now = hookd_wall_ms(), due = -1;
    rt_part_t *rp;
    bool waiting;
    rd_kafka_headers_t *hdrs = NULL;

    pthread_mutex_lock(&rt->lock);
    waiting = rt->parts[slot].due_ms > now;
    pthread_mutex_unlock(&rt->lock);
    if (waiting)
        return true; /* fetched behind a head that is not due */
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != NULL) {
        const void *v;
        size_t len;
        if (rd_kafka_header_get_last(hdrs, HOOKD_HDR_RETRY_DUE, &v, &len) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            v != NULL && len > 0 && len < 24) {
            char buf[24];
            char *end;
            memcpy(buf, v, len);
            buf[len] = '\0';
            due = strtoll(buf, &end, 10);
            if (*end != '\0')
                due = -1;
        }
    }
    if (due < 0) {
        rd_kafka_timestamp_type_t tstype;
        int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
        due = tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
                  ? now
                  : hookd_tiers_due(t, hookd_tiers_slot_tier(t, slot), ts);
    }
    if (due <= now)
        return false;
    pthread_mutex_lock(&rt->lock);
    rp = &rt->parts[slot];
    rp->due_ms = due;
    /* the head, fetched again on resume; never a later record than one
     * still to consume (fetched ahead of the head, it must not move the
     * resume past it) */
    if (rp->next_offset < 0 || rkm->offset < rp->next_offset)
        rp->next_offset = rkm->offset;
    pthread_mutex_unlock(&rt->lock);
    if (hookd_log_enabled(HOOKD_LOG_DEBUG))
        hookd_logf(HOOKD_LOG_DEBUG, NULL,
                   "kafka: %s partition %d: head at offset %" PRId64 " due in %" PRId64 " ms",
                   slot_topic(rt, slot), slot_partition(rt, slot), rkm->offset, due - now);
    update_pauses(rt); /* pause it now, before the rest of the batch */
    return true;
}

static void on_message(hookd_runtime_t *rt, rd_kafka_message_t *rkm)
{
    int32_t slot;
    uint64_t epoch;
    size_t queued;
    hookd_offsets_err_t oerr;
    hookd_msg_t *m;
    RT_ASSERT_CONSUMER_THREAD(rt);

    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            hookd_logf(HOOKD_LOG_WARNING, NULL, "kafka: consume: %s", rd_kafka_message_errstr(rkm));
        rd_kafka_message_destroy(rkm);
        return;
    }
    slot = rt->cfg->retry_tiers == NULL
               ? rkm->partition
               : slot_of(rt, rd_kafka_topic_name(rkm->rkt), rkm->partition);
    epoch = slot < 0 ? 0 : part_epoch(rt, slot);
    if (epoch != 0 && hookd_tiers_slot_tier(rt->cfg->retry_tiers, slot) > 0 &&
        tier_not_due(rt, slot, rkm)) {
        rd_kafka_message_destroy(rkm);
        return;
    }
    if (epoch == 0 ||
        (oerr = hookd_offsets_track(rt->offsets, slot, epoch, rkm->offset)) != HOOKD_OFFSETS_OK) {
        /* Not ours any more, or a message already tracked: ignoring it
         * loses nothing (the earlier copy or the new owner covers it). */
        rd_kafka_message_destroy(rkm);
        return;
    }
    m = hookd_msg_from(rkm);
    if (m == NULL ||
        (rt->seq != NULL && hookd_outseq_track(rt->seq, slot, epoch, rkm->offset) != 0) ||
        hookd_pool_push(rt->pool, slot, epoch, rkm->key, rkm->key_len, m, &queued) != 0) {
        hookd_log_fields_t f = HOOKD_LOG_FIELDS_INIT;
        f.partition = rkm->partition;
        f.offset = rkm->offset;
        hookd_logf(HOOKD_LOG_ERROR, &f, "cannot queue message; left uncommitted");
        /* Exactly-once: every later outcome of the partition would wait
         * for this one; abort and redo instead. */
        hookd_publisher_txn_doom(rt->pub);
        free(m);
        rd_kafka_message_destroy(rkm);
        return;
    }
    (void)queued;
    pthread_mutex_lock(&rt->lock);
    rt->parts[slot].next_offset = rkm->offset + 1;
    eos_note_consumed(&rt->parts[slot], rkm->offset);
    pthread_mutex_unlock(&rt->lock);
    rd_kafka_message_destroy(rkm); /* its fetch buffer can go */
    stats_bump(rt, HOT_CONSUMED, 1);
}

static void probe_broker(hookd_runtime_t *rt)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    if (hookd_status_get(HOOKD_STATUS_BROKER_UP) || hookd_now_ms() < rt->next_probe)
        return;
    err = rd_kafka_metadata(rt->rk, 0, NULL, &md, 500);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    set_broker_up(rt, err == RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* ---- lifecycle ---------------------------------------------------------- */

hookd_runtime_t *hookd_runtime_create(const hookd_config_t *cfg, const hookd_registry_t *reg,
                                      char *errstr, size_t errstr_size)
{
    hookd_runtime_t *rt = calloc(1, sizeof(*rt));
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t err;
    char why[512];
    size_t i;

    if (rt == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    rt->cfg = cfg;
    rt->reg = reg;
    hookd_event_global_init(); /* before the threads start */
    pthread_mutex_init(&rt->lock, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&rt->cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    snprintf(rt->source, sizeof(rt->source), "urn:acme-hookd:%s",
             cfg->worker_id ? cfg->worker_id : "worker");

    if (cfg->bootstrap_servers == NULL || cfg->bootstrap_servers[0] == '\0') {
        const char *topics_v[3 + HOOKD_TIERS_MAX] = {cfg->input_topic, cfg->result_topic,
                                                     cfg->dead_letter_topic};
        size_t nt = 3;
        for (i = 0; cfg->retry_tiers != NULL && i < cfg->retry_tiers->count; i++)
            topics_v[nt++] = cfg->retry_tiers->topics[i];
        if (hookd_embedded_check(cfg, errstr, errstr_size) != 0)
            goto error;
        if ((rt->embedded = hookd_embedded_new(1, topics_v, nt, HOOKD_EMBEDDED_PARTITIONS, errstr,
                                               errstr_size)) == NULL)
            goto error;
        rt->bootstraps = strdup(hookd_embedded_bootstraps(rt->embedded));
        /* A log record like any other, so JSON log consumers can parse it too. */
        hookd_log_info("embedded Kafka (mock cluster) listening on %s",
                       rt->bootstraps ? rt->bootstraps : "?");
    } else {
        rt->bootstraps = strdup(cfg->bootstrap_servers);
    }
    if (rt->bootstraps == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto error;
    }

    if ((rt->offsets = hookd_offsets_new()) == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto error;
    }
    if (cfg->delivery == HOOKD_DELIVERY_EXACTLY_ONCE &&
        (rt->seq = hookd_outseq_new(hookd_pipeline_outcome_dispose)) == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto error;
    }
    if (cfg->auth_require || cfg->auth_sign_results) {
        if ((rt->auth = hookd_auth_create(cfg, errstr, errstr_size)) == NULL)
            goto error;
    }

    /* One set of handler instances per thread: handlers need no locks. */
    rt->nthreads = cfg->threads > 0 ? (size_t)cfg->threads : 1;
    if ((rt->threads = calloc(rt->nthreads, sizeof(*rt->threads))) == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto error;
    }
    for (i = 0; i < rt->nthreads; i++)
        if ((rt->threads[i].invoke =
                 hookd_invoke_create(reg, cfg, &rt->abort_handlers, errstr, errstr_size)) == NULL)
            goto error;

    if ((rt->pub = hookd_publisher_new(cfg, rt->bootstraps, on_record_acked, on_owned,
                                       on_retry_refused, rt, errstr, errstr_size)) == NULL)
        goto error;

    if ((conf = hookd_kafka_conf_new(cfg, HOOKD_KAFKA_CONSUMER, rt->bootstraps, errstr,
                                     errstr_size)) == NULL)
        goto error;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, offset_commit_cb);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set_opaque(conf, rt);
    if ((rt->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why))) == NULL) {
        snprintf(errstr, errstr_size, "consumer: %s", why);
        goto error;
    }
    conf = NULL; /* now owned by rk */
    /* Error, statistics and rebalance events all come through the consumer
     * queue, served by the batch consume of the main loop. */
    rd_kafka_poll_set_consumer(rt->rk);
    rt->cq = rd_kafka_queue_get_consumer(rt->rk);

    rt->pipeline.cfg = cfg;
    rt->pipeline.reg = reg;
    rt->pipeline.source = rt->source;
    rt->pipeline.auth = rt->auth;
    rt->pipeline.offsets = rt->offsets;
    rt->pipeline.seq = rt->seq;
    rt->pipeline.pub = rt->pub;
    rt->pipeline.threads = rt->threads;
    rt->pipeline.done = on_processed;
    if (cfg->retry_tiers != NULL && cfg->retry_tiers->count > 0) {
        rt->pipeline.tier_hold = on_tier_hold;
        rt->pipeline.tier_release = on_tier_release;
    }
    rt->pipeline.opaque = rt;
    if ((rt->pool = hookd_pool_new(rt->nthreads, cfg->ordering == HOOKD_ORDERING_KEY,
                                   hookd_pipeline_process, hookd_pipeline_drop, &rt->pipeline,
                                   errstr, errstr_size)) == NULL)
        goto error;

    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cfg->input_topic, RD_KAFKA_PARTITION_UA);
    for (i = 0; cfg->retry_tiers != NULL && i < cfg->retry_tiers->count; i++)
        rd_kafka_topic_partition_list_add(topics, cfg->retry_tiers->topics[i],
                                          RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(rt->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "consumer: subscribe to '%s': %s", cfg->input_topic,
                 rd_kafka_err2str(err));
        goto error;
    }
    hookd_status_set(HOOKD_STATUS_BROKER_UP, false);
    hookd_status_set(HOOKD_STATUS_GROUP_JOINED, false);
    hookd_status_set(HOOKD_STATUS_PUBLISH_BLOCKED, false);
    return rt;

error:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    hookd_runtime_destroy(rt);
    return NULL;
}

/*
 * Shutdown: stop fetching, drop what no handler started (uncommitted),
 * let the handlers in flight finish, wait for every record to be
 * acknowledged, commit, leave the group. Each step is bounded by the one
 * deadline; missing it makes the run return 1.
 */
static int shutdown_sequence(hookd_runtime_t *rt)
{
    uint64_t deadline =
        hookd_now_ms() +
        (uint64_t)(rt->cfg->shutdown_timeout_ms > 0 ? rt->cfg->shutdown_timeout_ms : 25000);
    rd_kafka_topic_partition_list_t *assignment = NULL;
    rd_kafka_resp_err_t err;
    size_t dropped;
    int rc = 0;

    rt->shutdown_deadline = deadline;
    atomic_store_explicit(&rt->abort_handlers, 1, memory_order_relaxed);
    hookd_publisher_shutdown_begin(rt->pub);
    hookd_log_info("shutdown: stopping fetch, finishing handlers in flight");
    if (rd_kafka_assignment(rt->rk, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_pause_partitions(rt->rk, assignment);
        rd_kafka_topic_partition_list_destroy(assignment);
    }
    dropped = hookd_pool_drop_all(rt->pool);
    stats_bump(rt, HOT_DROPPED, dropped);
    while (!hookd_pool_wait_idle(rt->pool, -1, 100)) {
        hookd_status_heartbeat();
        if (remaining_ms(deadline) == 0) {
            hookd_log_error("shutdown: a handler is still running at the deadline");
            rc = 1;
            break;
        }
    }
    while (!hookd_publisher_wait(rt->pub, -1, 0, 100)) {
        hookd_status_heartbeat();
        if (remaining_ms(deadline) == 0) {
            hookd_log_error("shutdown: results not acknowledged at the deadline; left uncommitted");
            rc = 1;
            break;
        }
    }
    if (hookd_publisher_transactional(rt->pub))
        eos_txn_end(rt, true, remaining_ms(deadline) > 0 ? remaining_ms(deadline) : 1);
    else
        commit_sync(rt, NULL);
    /* Leaving the group runs the revoke callback once more (nothing left to wait for). */
    rt->closed = true;
    if ((err = rd_kafka_consumer_close(rt->rk)) != RD_KAFKA_RESP_ERR_NO_ERROR)
        hookd_logf(HOOKD_LOG_WARNING, NULL, "kafka: consumer close: %s", rd_kafka_err2str(err));
    hookd_status_set(HOOKD_STATUS_GROUP_JOINED, false);
    if (hookd_pool_stop(rt->pool, remaining_ms(deadline)) != 0) {
        rt->pool_stuck = true;
        rc = 1;
    }
    if (remaining_ms(deadline) == 0)
        rc = 1;
    hookd_logf(rc ? HOOKD_LOG_ERROR : HOOKD_LOG_INFO, NULL,
               "shutdown: %s (%zu queued message(s) left uncommitted)",
               rc ? "deadline passed" : "clean", dropped);
    return rc;
}

int hookd_runtime_run(hookd_runtime_t *rt, const atomic_int *stop)
{
    rd_kafka_message_t **batch = malloc(CONSUME_BATCH * sizeof(*batch));
    if (batch == NULL)
        return 2;
#ifndef NDEBUG
    rt->consumer_thread = pthread_self();
    rt->consumer_thread_set = true;
#endif
    rt->next_probe = 0;
    while (!atomic_load_explicit(stop, memory_order_relaxed) && !rt->fatal) {
        ssize_t n, i;
        hookd_status_heartbeat();
        /* A batch call blocks until the batch is full or the timeout
         * passes: take what is there without waiting, and only when
         * nothing is, wait for one message and take the rest after it.
         * Paused at max_in_flight, nothing arrives but events, and the
         * resume must not wait out a whole turn: the handlers drain their
         * queues in a fraction of it and would then idle (measured: a
         * 128-partition backlog ran 25% faster with the short turn). */
        n = rd_kafka_consume_batch_queue(rt->cq, 0, batch, CONSUME_BATCH);
        if (n == 0) {
            n = rd_kafka_consume_batch_queue(rt->cq,
                                             rt->worker_full ? FULL_TIMEOUT_MS : CONSUME_TIMEOUT_MS,
                                             batch, 1);
            if (n == 1) {
                ssize_t more =
                    rd_kafka_consume_batch_queue(rt->cq, 0, batch + 1, CONSUME_BATCH - 1);
                if (more > 0)
                    n += more;
            }
        }
        if (n < 0) {
            hookd_logf(HOOKD_LOG_ERROR, NULL, "kafka: consume: %s",
                       rd_kafka_err2str(rd_kafka_last_error()));
            n = 0;
        }
        for (i = 0; i < n; i++)
            on_message(rt, batch[i]);
        if (n > 0 && !hookd_status_get(HOOKD_STATUS_BROKER_UP))
            set_broker_up(rt, true);
        if (hookd_publisher_transactional(rt->pub))
            eos_commit_if_due(rt);
        else
            commit_if_due(rt, store_offsets(rt, false));
        if (rt->seq != NULL)
            hookd_metrics_outcomes_parked(hookd_outseq_parked(rt->seq, -1));
        update_pauses(rt);
        probe_broker(rt);
    }
    free(batch);
    if (rt->fatal) {
        shutdown_sequence(rt);
        return 2;
    }
    return shutdown_sequence(rt);
}

const char *hookd_runtime_embedded_bootstraps(const hookd_runtime_t *rt)
{
    return rt->embedded ? rt->bootstraps : NULL;
}

struct rd_kafka_mock_cluster_s *hookd_runtime_embedded_cluster(const hookd_runtime_t *rt)
{
    return rt->embedded ? hookd_embedded_cluster(rt->embedded) : NULL;
}

void hookd_runtime_get_stats(hookd_runtime_t *rt, hookd_runtime_stats_t *out)
{
    hookd_publisher_counts_t pc;
    hookd_publisher_counts(rt->pub, &pc);
    pthread_mutex_lock(&rt->lock);
    *out = rt->stats;
    pthread_mutex_unlock(&rt->lock);
    out->consumed = atomic_load(&rt->hot[HOT_CONSUMED]);
    out->decided = atomic_load(&rt->hot[HOT_DECIDED]);
    out->aborted = atomic_load(&rt->hot[HOT_ABORTED]);
    out->dropped = atomic_load(&rt->hot[HOT_DROPPED]);
    out->results_acked = atomic_load(&rt->hot[HOT_RESULTS]);
    out->dead_letters_acked = atomic_load(&rt->hot[HOT_DEAD_LETTERS]);
    out->replies_acked = atomic_load(&rt->hot[HOT_REPLIES]);
    out->retries_acked = atomic_load(&rt->hot[HOT_RETRIES]);
    out->publish_failures = pc.failures;
    out->producers_recreated = pc.recreated;
    {
        hookd_publisher_txn_stats_t ts;
        hookd_publisher_txn_stats(rt->pub, &ts);
        out->transactions_committed = ts.committed;
        out->transactions_aborted = ts.aborted;
    }
}

bool hookd_runtime_wait(hookd_runtime_t *rt,
                        bool (*pred)(const hookd_runtime_stats_t *stats, void *opaque),
                        void *opaque, int timeout_ms)
{
    uint64_t deadline = hookd_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    bool ok;
    atomic_fetch_add(&rt->waiters, 1);
    for (;;) {
        hookd_runtime_stats_t s;
        struct timespec ts;
        int left;
        hookd_runtime_get_stats(rt, &s);
        if ((ok = pred(&s, opaque)) || (left = remaining_ms(deadline)) == 0)
            break;
        /* Publisher counters are not under our lock: wake at least every
         * 100 ms to look at them again. */
        if (left > 100)
            left = 100;
        hookd_deadline_after(&ts, left);
        pthread_mutex_lock(&rt->lock);
        pthread_cond_timedwait(&rt->cond, &rt->lock, &ts);
        pthread_mutex_unlock(&rt->lock);
    }
    atomic_fetch_sub(&rt->waiters, 1);
    return ok;
}

int64_t hookd_runtime_committed(hookd_runtime_t *rt, int32_t partition)
{
    int64_t o = -1;
    partition = hookd_tiers_slot(rt->cfg->retry_tiers, 0, partition);
    pthread_mutex_lock(&rt->lock);
    if (partition >= 0 && (size_t)partition < rt->nparts)
        o = rt->committed[partition];
    pthread_mutex_unlock(&rt->lock);
    return o;
}

void hookd_runtime_destroy(hookd_runtime_t *rt)
{
    size_t i;
    bool stuck = false;
    if (rt == NULL)
        return;
    atomic_store_explicit(&rt->abort_handlers, 1, memory_order_relaxed);
    /* Leave the group first if run() did not: the revoke callback still
     * needs the pool, the publisher and the tracker. */
    if (rt->rk != NULL && rt->pool != NULL && rt->pub != NULL && !rt->closed) {
        if (rt->shutdown_deadline == 0)
            rt->shutdown_deadline =
                hookd_now_ms() +
                (uint64_t)(rt->cfg->shutdown_timeout_ms > 0 ? rt->cfg->shutdown_timeout_ms : 25000);
        hookd_pool_drop_all(rt->pool);
        rd_kafka_consumer_close(rt->rk);
        rt->closed = true;
    }
    /* Then the handler threads: they publish and use the tracker. */
    if (rt->pool != NULL) {
        /* The deadline was spent already if run() found a handler stuck. */
        if (hookd_pool_stop(rt->pool, rt->pool_stuck ? 0
                                      : rt->cfg->shutdown_timeout_ms > 0
                                          ? rt->cfg->shutdown_timeout_ms
                                          : 25000) != 0)
            stuck = true;
        hookd_pool_destroy(rt->pool);
    }
    if (rt->cq != NULL)
        rd_kafka_queue_destroy(rt->cq);
    if (rt->rk != NULL)
        /* Not closed only when creation failed half-way: nothing was
         * assigned, and the callbacks' state is incomplete. */
        rd_kafka_destroy_flags(rt->rk, rt->closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    if (stuck) {
        /* A handler still runs on our state: leave it all in place, the
         * process is about to exit. */
        hookd_log_error("runtime: a handler thread did not stop; resources left to the exit");
        return;
    }
    hookd_publisher_destroy(rt->pub);
    if (rt->threads != NULL) {
        for (i = 0; i < rt->nthreads; i++)
            hookd_invoke_destroy(rt->threads[i].invoke);
        free(rt->threads);
    }
    hookd_auth_destroy(rt->auth);
    hookd_offsets_destroy(rt->offsets);
    hookd_outseq_destroy(rt->seq); /* parked outcomes: never published, uncommitted */
    hookd_embedded_destroy(rt->embedded);
    free(rt->bootstraps);
    free(rt->parts);
    free(rt->committed);
    pthread_cond_destroy(&rt->cond);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
}
