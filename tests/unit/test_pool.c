/* SPDX-License-Identifier: MIT */
/*
 * The handler thread pool: FIFO inside a partition, one thread per
 * partition at a time, a blocked partition does not hold the others, revoke
 * drops what is queued, stale epochs are refused. Synchronisation is by
 * condition variables (with generous timeouts as a safety net), never by
 * sleeping.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool.h"

#define NPART 8
#define PER_PART 500

typedef struct probe {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* per partition: items seen in order, concurrency check */
    long next[NPART];
    int active[NPART];
    int order_errors;
    int overlap_errors;
    long processed;
    long dropped;
    int32_t block_partition; /* work on it waits until released; -1 none */
    int blocked_now;
    int release;
} probe_t;

static probe_t pr;

typedef struct item {
    int32_t partition;
    long seq;
} item_t;

static void probe_init(void)
{
    memset(&pr, 0, sizeof(pr));
    pthread_mutex_init(&pr.lock, NULL);
    pthread_cond_init(&pr.cond, NULL);
    pr.block_partition = -1;
}

/* Wait on the probe's condition until `pred` holds (lock held), 30 s at most. */
#define WAIT_FOR(pred)                                                                             \
    do {                                                                                           \
        struct timespec ts_;                                                                       \
        clock_gettime(CLOCK_REALTIME, &ts_);                                                       \
        ts_.tv_sec += 30;                                                                          \
        pthread_mutex_lock(&pr.lock);                                                              \
        while (!(pred))                                                                            \
            if (pthread_cond_timedwait(&pr.cond, &pr.lock, &ts_) != 0)                             \
                break;                                                                             \
        cr_assert((pred), "timed out waiting for " #pred);                                         \
        pthread_mutex_unlock(&pr.lock);                                                            \
    } while (0)

static void work(void *opaque, size_t thread_index, int32_t partition, uint64_t epoch, void *it)
{
    item_t *item = it;
    pthread_mutex_lock(&pr.lock);
    if (pr.active[partition]++ != 0)
        pr.overlap_errors++;
    if (item->seq != pr.next[partition])
        pr.order_errors++;
    pr.next[partition] = item->seq + 1;
    if (partition == pr.block_partition) {
        pr.blocked_now++;
        pthread_cond_broadcast(&pr.cond);
        while (!pr.release)
            pthread_cond_wait(&pr.cond, &pr.lock);
        pr.blocked_now--;
    }
    pr.active[partition]--;
    pr.processed++;
    pthread_cond_broadcast(&pr.cond);
    pthread_mutex_unlock(&pr.lock);
    free(item);
}

static void drop(void *opaque, void *it)
{
    pthread_mutex_lock(&pr.lock);
    pr.dropped++;
    pthread_mutex_unlock(&pr.lock);
    free(it);
}

static int push(hookd_pool_t *pool, int32_t partition, uint64_t epoch, long seq)
{
    item_t *it = malloc(sizeof(*it));
    it->partition = partition;
    it->seq = seq;
    if (hookd_pool_push(pool, partition, epoch, NULL, 0, it, NULL) != 0) {
        free(it);
        return -1;
    }
    return 0;
}

Test(pool, fifo_per_partition_and_one_thread_per_partition)
{
    char err[256];
    hookd_pool_t *pool;
    probe_init();
    pool = hookd_pool_new(4, false, work, drop, NULL, err, sizeof(err));
    cr_assert_not_null(pool, "%s", err);
    for (int32_t p = 0; p < NPART; p++)
        cr_assert_eq(hookd_pool_assign(pool, p, 1), 0);
    /* Interleaved pushes, as a consumer batch would deliver them. */
    for (long s = 0; s < PER_PART; s++)
        for (int32_t p = 0; p < NPART; p++)
            cr_assert_eq(push(pool, p, 1, s), 0);
    WAIT_FOR(pr.processed == (long)NPART * PER_PART);
    cr_assert(hookd_pool_wait_idle(pool, -1, 10000));
    cr_assert_eq(pr.order_errors, 0, "items of a partition ran out of order");
    cr_assert_eq(pr.overlap_errors, 0, "two threads ran one partition at once");
    for (int32_t p = 0; p < NPART; p++)
        cr_assert_eq(pr.next[p], PER_PART);
    cr_assert_eq(hookd_pool_stop(pool, 10000), 0);
    hookd_pool_destroy(pool);
}

Test(pool, a_blocked_partition_does_not_stop_the_others)
{
    char err[256];
    hookd_pool_t *pool;
    probe_init();
    pr.block_partition = 0;
    pool = hookd_pool_new(2, false, work, drop, NULL, err, sizeof(err));
    cr_assert_not_null(pool, "%s", err);
    hookd_pool_assign(pool, 0, 1);
    hookd_pool_assign(pool, 1, 1);
    push(pool, 0, 1, 0);
    push(pool, 0, 1, 1);
    WAIT_FOR(pr.blocked_now == 1);
    for (long s = 0; s < 100; s++)
        push(pool, 1, 1, s);
    /* Partition 1 completes while partition 0's handler is stuck. */
    WAIT_FOR(pr.next[1] == 100);
    cr_assert(hookd_pool_busy(pool, 0));
    cr_assert_not(hookd_pool_busy(pool, 1) && hookd_pool_queued(pool, 1) > 0);
    cr_assert_eq(hookd_pool_queued(pool, 0), 1, "the second item waits behind the first");
    cr_assert_not(hookd_pool_wait_idle(pool, 0, 0));
    pthread_mutex_lock(&pr.lock);
    pr.release = 1;
    pthread_cond_broadcast(&pr.cond);
    pthread_mutex_unlock(&pr.lock);
    WAIT_FOR(pr.next[0] == 2);
    cr_assert(hookd_pool_wait_idle(pool, 0, 10000));
    cr_assert_eq(pr.order_errors, 0);
    hookd_pool_destroy(pool);
}

Test(pool, revoke_drops_queued_and_refuses_old_epoch)
{
    char err[256];
    hookd_pool_t *pool;
    probe_init();
    pr.block_partition = 3;
    pool = hookd_pool_new(1, false, work, drop, NULL, err, sizeof(err));
    cr_assert_not_null(pool, "%s", err);
    hookd_pool_assign(pool, 3, 7);
    for (long s = 0; s < 10; s++)
        push(pool, 3, 7, s);
    WAIT_FOR(pr.blocked_now == 1); /* item 0 in hand, 9 queued */
    cr_assert_eq(hookd_pool_queued(pool, 3), 9);
    cr_assert_eq(hookd_pool_revoke(pool, 3), 9);
    cr_assert_eq(pr.dropped, 9);
    cr_assert_eq(push(pool, 3, 7, 10), -1, "revoked: refused");
    /* Re-assigned under a new epoch while the old item is still in hand. */
    hookd_pool_assign(pool, 3, 8);
    cr_assert_eq(push(pool, 3, 7, 10), -1, "old epoch: refused");
    cr_assert_eq(push(pool, 3, 8, 1), 0);
    pthread_mutex_lock(&pr.lock);
    pr.release = 1;
    pthread_cond_broadcast(&pr.cond);
    pthread_mutex_unlock(&pr.lock);
    WAIT_FOR(pr.processed == 2);
    cr_assert_eq(pr.overlap_errors, 0);
    cr_assert_eq(pr.order_errors, 0);
    hookd_pool_destroy(pool);
}

Test(pool, drop_all_and_stop_leave_nothing_behind)
{
    char err[256];
    hookd_pool_t *pool;
    probe_init();
    pr.block_partition = 0;
    pool = hookd_pool_new(1, false, work, drop, NULL, err, sizeof(err));
    cr_assert_not_null(pool, "%s", err);
    hookd_pool_assign(pool, 0, 1);
    hookd_pool_assign(pool, 1, 1);
    push(pool, 0, 1, 0);
    WAIT_FOR(pr.blocked_now == 1);
    for (long s = 0; s < 5; s++)
        push(pool, 1, 1, s);
    cr_assert_eq(hookd_pool_drop_all(pool), 5);
    cr_assert_eq(hookd_pool_queued(pool, 1), 0);
    /* The item in hand still finishes. */
    cr_assert_not(hookd_pool_wait_idle(pool, -1, 0));
    pthread_mutex_lock(&pr.lock);
    pr.release = 1;
    pthread_cond_broadcast(&pr.cond);
    pthread_mutex_unlock(&pr.lock);
    cr_assert_eq(hookd_pool_stop(pool, 10000), 0);
    cr_assert_eq(pr.processed, 1);
    cr_assert_eq(pr.dropped, 5);
    hookd_pool_destroy(pool);
}

/* The threads carry names (top -H, perf, gdb): hookd:work0 .. hookd:work<n-1>. */
Test(pool, threads_are_named_by_index)
{
    char err[256], path[300], comm[32], want[3][16] = {"hookd:work0", "hookd:work1", "hookd:work2"};
    int seen[3] = {0, 0, 0};
    hookd_pool_t *pool;
    DIR *d;
    struct dirent *de;
    probe_init();
    pool = hookd_pool_new(3, false, work, drop, NULL, err, sizeof(err));
    cr_assert_not_null(pool, "%s", err);
    cr_assert_not_null(d = opendir("/proc/self/task"));
    while ((de = readdir(d)) != NULL) {
        FILE *f;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        if (fgets(comm, sizeof(comm), f) != NULL) {
            comm[strcspn(comm, "\n")] = '\0';
            for (int i = 0; i < 3; i++)
                seen[i] += strcmp(comm, want[i]) == 0;
        }
        fclose(f);
    }
    closedir(d);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(seen[i], 1, "%s: %d thread(s) of that name", want[i], seen[i]);
    cr_assert_eq(hookd_pool_stop(pool, 10000), 0);
    hookd_pool_destroy(pool);
}

Test(pool, stop_reports_a_handler_stuck_past_the_deadline)
{
    char err[256];
    hookd_pool_t *pool;
    probe_init();
    pr.block_partition = 0;
    pool = hookd_pool_new(1, false, work, drop, NULL, err, sizeof(err));
    cr_assert_not_null(pool, "%s", err);
    hookd_pool_assign(pool, 0, 1);
    push(pool, 0, 1, 0);
    WAIT_FOR(pr.blocked_now == 1);
    cr_assert_eq(hookd_pool_stop(pool, 50), -1);
    /* Release it, then the pool can still be stopped and freed cleanly. */
    pthread_mutex_lock(&pr.lock);
    pr.release = 1;
    pthread_cond_broadcast(&pr.cond);
    pthread_mutex_unlock(&pr.lock);
    cr_assert_eq(hookd_pool_stop(pool, 10000), 0);
    hookd_pool_destroy(pool);
}

/* ---- ordering by key ------------------------------------------------------ */

#define NKEY 64
#define PER_KEY 100

typedef struct kprobe {
    long next[NPART][NKEY];
    int active[NPART][NKEY];
    int part_active[NPART];
    int max_part_active; /* most items of one partition seen running at once */
    int order_errors, overlap_errors;
    long processed;
    int block_key; /* work on (partition 0, this key) waits until released; -1 none */
    int blocked_now, release;
} kprobe_t;

static kprobe_t kp;

typedef struct kitem {
    int32_t partition;
    int key;
    long seq;
} kitem_t;

static void kwork(void *opaque, size_t thread_index, int32_t partition, uint64_t epoch, void *it)
{
    kitem_t *item = it;
    struct timespec pause = {0, 200000}; /* let other threads overlap this one */
    pthread_mutex_lock(&pr.lock);
    if (kp.active[partition][item->key]++ != 0)
        kp.overlap_errors++;
    if (item->seq != kp.next[partition][item->key])
        kp.order_errors++;
    kp.next[partition][item->key] = item->seq + 1;
    if (++kp.part_active[partition] > kp.max_part_active)
        kp.max_part_active = kp.part_active[partition];
    if (partition == 0 && item->key == kp.block_key) {
        kp.blocked_now++;
        pthread_cond_broadcast(&pr.cond);
        while (!kp.release)
            pthread_cond_wait(&pr.cond, &pr.lock);
        kp.blocked_now--;
    }
    pthread_mutex_unlock(&pr.lock);
    nanosleep(&pause, NULL);
    pthread_mutex_lock(&pr.lock);
    kp.part_active[partition]--;
    kp.active[partition][item->key]--;
    kp.processed++;
    pthread_cond_broadcast(&pr.cond);
    pthread_mutex_unlock(&pr.lock);
    free(item);
}

static int kpush(hookd_pool_t *pool, int32_t partition, uint64_t epoch, int key, long seq)
{
    kitem_t *it = malloc(sizeof(*it));
    char k[16];
    int len = snprintf(k, sizeof(k), "order-%d", key);
    it->partition = partition;
    it->key = key;
    it->seq = seq;
    if (hookd_pool_push(pool, partition, epoch, k, (size_t)len, it, NULL) != 0) {
        free(it);
        return -1;
    }
    return 0;
}

Test(pool, by_key_keeps_key_order_and_runs_keys_in_parallel)
{
    char err[256];
    hookd_pool_t *pool;
    probe_init();
    memset(&kp, 0, sizeof(kp));
    kp.block_key = -1;
    pool = hookd_pool_new(8, true, kwork, drop, NULL, err, sizeof(err));
    cr_assert_not_null(pool, "%s", err);
    for (int32_t p = 0; p < 2; p++)
        cr_assert_eq(hookd_pool_assign(pool, p, 1), 0);
    for (long s = 0; s < PER_KEY; s++)
        for (int k = 0; k < NKEY; k++)
            for (int32_t p = 0; p < 2; p++)
                cr_assert_eq(kpush(pool, p, 1, k, s), 0);
    WAIT_FOR(kp.processed == 2L * NKEY * PER_KEY);
    cr_assert(hookd_pool_wait_idle(pool, -1, 10000));
    cr_assert_eq(kp.order_errors, 0, "items of a key ran out of order");
    cr_assert_eq(kp.overlap_errors, 0, "two threads ran one key at once");
    cr_assert_gt(kp.max_part_active, 1, "the keys of a partition never ran in parallel");
    for (int32_t p = 0; p < 2; p++)
        for (int k = 0; k < NKEY; k++)
            cr_assert_eq(kp.next[p][k], PER_KEY);
    hookd_pool_destroy(pool);
}

Test(pool, by_key_a_blocked_key_does_not_stop_its_partition)
{
    char err[256];
    hookd_pool_t *pool;
    probe_init();
    memset(&kp, 0, sizeof(kp));
    kp.block_key = 5;
    pool = hookd_pool_new(2, true, kwork, drop, NULL, err, sizeof(err));
    cr_assert_not_null(pool, "%s", err);
    hookd_pool_assign(pool, 0, 1);
    kpush(pool, 0, 1, 5, 0);
    kpush(pool, 0, 1, 5, 1);
    WAIT_FOR(kp.blocked_now == 1);
    for (long s = 0; s < 50; s++)
        for (int k = 0; k < 4; k++)
            kpush(pool, 0, 1, k, s);
    /* The other keys of partition 0 complete while key 5 is stuck. */
    WAIT_FOR(kp.processed == 200);
    cr_assert_eq(hookd_pool_queued(pool, 0), 1, "key 5's second item waits behind its first");
    /* (its running count may still include the thread of the last other
     * key, between its work callback and its return to the pool) */
    cr_assert(hookd_pool_busy(pool, 0), "key 5's first item is still running");
    cr_assert_geq(hookd_pool_running(pool, 0), 1);
    pthread_mutex_lock(&pr.lock);
    kp.release = 1;
    pthread_cond_broadcast(&pr.cond);
    pthread_mutex_unlock(&pr.lock);
    WAIT_FOR(kp.next[0][5] == 2);
    cr_assert(hookd_pool_wait_idle(pool, 0, 10000));
    cr_assert_eq(kp.order_errors, 0);
    cr_assert_eq(kp.overlap_errors, 0);
    hookd_pool_destroy(pool);
}
