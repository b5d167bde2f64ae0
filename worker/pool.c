/* SPDX-License-Identifier: MIT */
/*
 * The handler thread pool (see pool.h).
 *
 * One mutex guards everything; the critical sections are a few pointer
 * moves, the handler runs outside it. Which item runs next is the key
 * gate's decision (keygate.c: lanes per key or per partition, runnable
 * lanes round-robin, FIFO inside one); this file adds the lock, the
 * threads, and the waits.
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "keygate.h"

typedef struct hookd_pool_thread {
    hookd_pool_t *pool;
    size_t index;
    pthread_t tid;
    bool started, joined;
} hookd_pool_thread_t;

struct hookd_pool {
    pthread_mutex_t lock;
    pthread_cond_t work_cond; /* items became runnable, or stopping */
    pthread_cond_t idle_cond; /* an item finished */
    hookd_keygate_t *gate;    /* the queues and what may run next (keygate.h) */
    bool stopping;
    bool stuck; /* a thread did not join by the stop deadline */
    hookd_pool_work_cb *work;
    hookd_pool_drop_cb *drop;
    void *opaque;
    hookd_pool_thread_t *threads;
    size_t nthreads;
};

static void *pool_thread_main(void *arg)
{
    hookd_pool_thread_t *t = arg;
    hookd_pool_t *pool = t->pool;

    pthread_mutex_lock(&pool->lock);
    for (;;) {
        hookd_keygate_lane_t *lane;
        int32_t partition;
        uint64_t epoch;
        void *item;

        while (!pool->stopping && !hookd_keygate_runnable(pool->gate))
            pthread_cond_wait(&pool->work_cond, &pool->lock);
        if (pool->stopping)
            break;
        item = hookd_keygate_take(pool->gate, &partition, &epoch, &lane);
        /* More runnable lanes: another sleeping thread can start on one. */
        if (hookd_keygate_runnable(pool->gate))
            pthread_cond_signal(&pool->work_cond);
        pthread_mutex_unlock(&pool->lock);

        pool->work(pool->opaque, t->index, partition, epoch, item);

        pthread_mutex_lock(&pool->lock);
        if (hookd_keygate_finish(pool->gate, lane))
            pthread_cond_signal(&pool->work_cond);
        pthread_cond_broadcast(&pool->idle_cond);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

hookd_pool_t *hookd_pool_new(size_t threads, bool by_key, hookd_pool_work_cb *work,
                             hookd_pool_drop_cb *drop, void *opaque, char *errstr,
                             size_t errstr_size)
{
    hookd_pool_t *pool;
    pthread_condattr_t ca;
    size_t i;

    if (threads == 0) {
        snprintf(errstr, errstr_size, "pool: at least one thread is needed");
        return NULL;
    }
    if ((pool = calloc(1, sizeof(*pool))) == NULL)
        goto nomem;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->work_cond, &ca);
    pthread_cond_init(&pool->idle_cond, &ca);
    pthread_condattr_destroy(&ca);
    pool->work = work;
    pool->drop = drop;
    pool->opaque = opaque;
    if ((pool->gate = hookd_keygate_new(by_key)) == NULL)
        goto nomem;
    if ((pool->threads = calloc(threads, sizeof(*pool->threads))) == NULL)
        goto nomem;
    pool->nthreads = threads;
    for (i = 0; i < threads; i++) {
        char name[16]; /* the kernel's limit, NUL included */
        int err;
        pool->threads[i].pool = pool;
        pool->threads[i].index = i;
        if ((err = pthread_create(&pool->threads[i].tid, NULL, pool_thread_main,
                                  &pool->threads[i])) != 0) {
            snprintf(errstr, errstr_size, "pool: cannot start thread %zu: %s", i, strerror(err));
            goto error;
        }
        pool->threads[i].started = true;
        /* Named for top -H, perf and gdb, as librdkafka names its own
         * ("rdk:main"); an isolation child renames itself after the fork.
         * Best effort: a name is never worth failing the start. */
        snprintf(name, sizeof(name), "hookd:work%u", (unsigned)(i % 1000)); /* threads <= 256 */
        (void)pthread_setname_np(pool->threads[i].tid, name);
    }
    return pool;

nomem:
    snprintf(errstr, errstr_size, "pool: out of memory");
error:
    if (pool != NULL)
        hookd_pool_destroy(pool);
    return NULL;
}

int hookd_pool_assign(hookd_pool_t *pool, int32_t partition, uint64_t epoch)
{
    int rc;
    pthread_mutex_lock(&pool->lock);
    rc = hookd_keygate_assign(pool->gate, partition, epoch);
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

/* Dispose of a chain of items handed back by the gate, lock not held. */
static size_t drop_chain(hookd_pool_t *pool, hookd_keygate_chain_t *chain)
{
    size_t count = 0;
    void *item;
    while ((item = hookd_keygate_chain_pop(&chain)) != NULL) {
        if (pool->drop != NULL)
            pool->drop(pool->opaque, item);
        count++;
    }
    return count;
}

size_t hookd_pool_revoke(hookd_pool_t *pool, int32_t partition)
{
    hookd_keygate_chain_t *chain;
    pthread_mutex_lock(&pool->lock);
    chain = hookd_keygate_revoke(pool->gate, partition, NULL);
    pthread_mutex_unlock(&pool->lock);
    return drop_chain(pool, chain);
}

int hookd_pool_push(hookd_pool_t *pool, int32_t partition, uint64_t epoch, const void *key,
                    size_t key_len, void *item, size_t *queued)
{
    pthread_mutex_lock(&pool->lock);
    if (hookd_keygate_push(pool->gate, partition, epoch, key, key_len, item) != 0) {
        pthread_mutex_unlock(&pool->lock);
        return -1;
    }
    if (queued != NULL)
        *queued = hookd_keygate_queued(pool->gate, partition);
    if (hookd_keygate_runnable(pool->gate))
        pthread_cond_signal(&pool->work_cond);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

int hookd_pool_hold(hookd_pool_t *pool, int32_t partition, const void *key, size_t key_len,
                    int64_t token, int tag)
{
    int rc;
    pthread_mutex_lock(&pool->lock);
    rc = hookd_keygate_hold(pool->gate, partition, key, key_len, token, tag);
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

void hookd_pool_release(hookd_pool_t *pool, int32_t partition, const void *key, size_t key_len,
                        int64_t token)
{
    pthread_mutex_lock(&pool->lock);
    if (hookd_keygate_release(pool->gate, partition, key, key_len, token))
        pthread_cond_signal(&pool->work_cond);
    pthread_mutex_unlock(&pool->lock);
}

void hookd_pool_release_tag(hookd_pool_t *pool, int32_t partition, int tag)
{
    pthread_mutex_lock(&pool->lock);
    if (hookd_keygate_release_tag(pool->gate, partition, tag))
        pthread_cond_broadcast(&pool->work_cond);
    pthread_mutex_unlock(&pool->lock);
}

size_t hookd_pool_held(hookd_pool_t *pool, int32_t partition)
{
    size_t n;
    pthread_mutex_lock(&pool->lock);
    n = hookd_keygate_held(pool->gate, partition);
    pthread_mutex_unlock(&pool->lock);
    return n;
}

size_t hookd_pool_queued(hookd_pool_t *pool, int32_t partition)
{
    size_t n;
    pthread_mutex_lock(&pool->lock);
    n = hookd_keygate_queued(pool->gate, partition);
    pthread_mutex_unlock(&pool->lock);
    return n;
}

size_t hookd_pool_running(hookd_pool_t *pool, int32_t partition)
{
    size_t n;
    pthread_mutex_lock(&pool->lock);
    n = hookd_keygate_running(pool->gate, partition);
    pthread_mutex_unlock(&pool->lock);
    return n;
}

bool hookd_pool_busy(hookd_pool_t *pool, int32_t partition)
{
    return hookd_pool_running(pool, partition) > 0;
}

bool hookd_pool_wait_idle(hookd_pool_t *pool, int32_t partition, int timeout_ms)
{
    struct timespec ts;
    bool idle;
    hookd_deadline_after(&ts, timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock(&pool->lock);
    while (hookd_keygate_running(pool->gate, partition) > 0) {
        if (pthread_cond_timedwait(&pool->idle_cond, &pool->lock, &ts) == ETIMEDOUT)
            break;
    }
    idle = hookd_keygate_running(pool->gate, partition) == 0;
    pthread_mutex_unlock(&pool->lock);
    return idle;
}

size_t hookd_pool_drop_all(hookd_pool_t *pool)
{
    size_t i, count = 0;
    for (i = 0;; i++) {
        hookd_keygate_chain_t *chain;
        pthread_mutex_lock(&pool->lock);
        if (i >= hookd_keygate_partitions(pool->gate)) {
            pthread_mutex_unlock(&pool->lock);
            break;
        }
        chain = hookd_keygate_clear(pool->gate, (int32_t)i, NULL);
        pthread_mutex_unlock(&pool->lock);
        count += drop_chain(pool, chain);
    }
    return count;
}

int hookd_pool_stop(hookd_pool_t *pool, int timeout_ms)
{
    struct timespec ts;
    size_t i;
    int rc = 0;

    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->work_cond);
    pthread_mutex_unlock(&pool->lock);

    hookd_deadline_after(&ts, timeout_ms < 0 ? 0 : timeout_ms);
    for (i = 0; i < pool->nthreads; i++) {
        hookd_pool_thread_t *t = &pool->threads[i];
        if (!t->started || t->joined)
            continue;
        if (timeout_ms < 0) {
            pthread_join(t->tid, NULL);
            t->joined = true;
            continue;
        }
        /* pthread_timedjoin_np takes a CLOCK_REALTIME deadline: wait for
         * the pool to go idle on the monotonic clock first, then join. */
        if (!hookd_pool_wait_idle(pool, -1, 0)) {
            struct timespec now;
            long left_ms;
            clock_gettime(CLOCK_MONOTONIC, &now);
            left_ms = (ts.tv_sec - now.tv_sec) * 1000 + (ts.tv_nsec - now.tv_nsec) / 1000000;
            if (left_ms <= 0 || !hookd_pool_wait_idle(pool, -1, (int)left_ms)) {
                rc = -1;
                break;
            }
        }
        pthread_join(t->tid, NULL);
        t->joined = true;
    }
    pthread_mutex_lock(&pool->lock);
    pool->stuck = rc != 0;
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

void hookd_pool_destroy(hookd_pool_t *pool)
{
    if (pool == NULL)
        return;
    if (pool->stuck)
        return; /* a thread still runs a handler with our state: leak, do not crash */
    hookd_pool_stop(pool, -1);
    if (pool->gate != NULL)
        drop_chain(pool, hookd_keygate_destroy(pool->gate));
    free(pool->threads);
    pthread_cond_destroy(&pool->work_cond);
    pthread_cond_destroy(&pool->idle_cond);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}
