/* SPDX-License-Identifier: MIT */
/*
 * The handler thread pool (see pool.h).
 *
 * One mutex guards everything; the critical sections are a few pointer
 * moves, the handler runs outside it. Partitions with queued items and no
 * thread on them sit in a FIFO "ready" list; a thread takes the first one,
 * pops one item, runs it, then puts the partition back at the tail if more
 * is queued: round-robin between partitions, FIFO inside one.
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

typedef struct hookd_pool_node {
    void *item;
    struct hookd_pool_node *next;
} hookd_pool_node_t;

typedef struct hookd_pool_part {
    bool assigned;
    bool busy;     /* a thread is processing one of its items */
    bool in_ready; /* linked in the ready list */
    uint64_t epoch;
    hookd_pool_node_t *head, *tail;
    size_t queued;
    int32_t next_ready; /* ready list link, -1 = end */
} hookd_pool_part_t;

typedef struct hookd_pool_thread {
    hookd_pool_t *pool;
    size_t index;
    pthread_t tid;
    bool started, joined;
} hookd_pool_thread_t;

struct hookd_pool {
    pthread_mutex_t lock;
    pthread_cond_t work_cond; /* items became ready, or stopping */
    pthread_cond_t idle_cond; /* an item finished */
    hookd_pool_part_t *parts;
    size_t nparts;
    int32_t ready_head, ready_tail;
    size_t busy_total;
    bool stopping;
    bool stuck; /* a thread did not join by the stop deadline */
    hookd_pool_work_cb *work;
    hookd_pool_drop_cb *drop;
    void *opaque;
    hookd_pool_thread_t *threads;
    size_t nthreads;
    /* Queue nodes are allocated by the consumer thread and released by the
     * handler threads: recycled here, under the lock both already take,
     * instead of a malloc/free pair crossing threads for every message. */
    hookd_pool_node_t *spare;
    size_t nspare;
};

#define POOL_SPARE_MAX 4096

/* A node from the spares, or a new one. Lock held. */
static hookd_pool_node_t *node_get(hookd_pool_t *pool)
{
    hookd_pool_node_t *n = pool->spare;
    if (n == NULL)
        return malloc(sizeof(*n));
    pool->spare = n->next;
    pool->nspare--;
    return n;
}

/* Back to the spares (a bounded number of them). Lock held. */
static void node_put(hookd_pool_t *pool, hookd_pool_node_t *n)
{
    if (pool->nspare >= POOL_SPARE_MAX) {
        free(n);
        return;
    }
    n->next = pool->spare;
    pool->spare = n;
    pool->nspare++;
}

/* Lock held. */
static void ready_append(hookd_pool_t *pool, int32_t partition)
{
    hookd_pool_part_t *p = &pool->parts[partition];
    if (p->in_ready)
        return;
    p->in_ready = true;
    p->next_ready = -1;
    if (pool->ready_tail < 0)
        pool->ready_head = partition;
    else
        pool->parts[pool->ready_tail].next_ready = partition;
    pool->ready_tail = partition;
}

/* Lock held. */
static int32_t ready_pop(hookd_pool_t *pool)
{
    int32_t partition = pool->ready_head;
    if (partition < 0)
        return -1;
    pool->ready_head = pool->parts[partition].next_ready;
    if (pool->ready_head < 0)
        pool->ready_tail = -1;
    pool->parts[partition].in_ready = false;
    return partition;
}

/* Unlink `partition` from the ready list wherever it is. Lock held. */
static void ready_remove(hookd_pool_t *pool, int32_t partition)
{
    int32_t prev = -1, cur = pool->ready_head;
    while (cur >= 0 && cur != partition) {
        prev = cur;
        cur = pool->parts[cur].next_ready;
    }
    if (cur < 0)
        return;
    if (prev < 0)
        pool->ready_head = pool->parts[cur].next_ready;
    else
        pool->parts[prev].next_ready = pool->parts[cur].next_ready;
    if (pool->ready_tail == cur)
        pool->ready_tail = prev;
    pool->parts[cur].in_ready = false;
}

static void *pool_thread_main(void *arg)
{
    hookd_pool_thread_t *t = arg;
    hookd_pool_t *pool = t->pool;

    pthread_mutex_lock(&pool->lock);
    for (;;) {
        int32_t partition;
        hookd_pool_part_t *p;
        hookd_pool_node_t *n;
        uint64_t epoch;

        while (!pool->stopping && pool->ready_head < 0)
            pthread_cond_wait(&pool->work_cond, &pool->lock);
        if (pool->stopping)
            break;
        partition = ready_pop(pool);
        p = &pool->parts[partition];
        n = p->head;
        p->head = n->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        p->busy = true;
        pool->busy_total++;
        epoch = p->epoch;
        pthread_mutex_unlock(&pool->lock);

        pool->work(pool->opaque, t->index, partition, epoch, n->item);

        pthread_mutex_lock(&pool->lock);
        node_put(pool, n);
        p = &pool->parts[partition]; /* parts may have been reallocated */
        p->busy = false;
        pool->busy_total--;
        if (p->assigned && p->queued > 0) {
            ready_append(pool, partition);
            pthread_cond_signal(&pool->work_cond);
        }
        pthread_cond_broadcast(&pool->idle_cond);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

hookd_pool_t *hookd_pool_new(size_t threads, hookd_pool_work_cb *work, hookd_pool_drop_cb *drop,
                             void *opaque, char *errstr, size_t errstr_size)
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
    pool->ready_head = pool->ready_tail = -1;
    pool->work = work;
    pool->drop = drop;
    pool->opaque = opaque;
    if ((pool->threads = calloc(threads, sizeof(*pool->threads))) == NULL)
        goto nomem;
    pool->nthreads = threads;
    for (i = 0; i < threads; i++) {
        int err;
        pool->threads[i].pool = pool;
        pool->threads[i].index = i;
        if ((err = pthread_create(&pool->threads[i].tid, NULL, pool_thread_main,
                                  &pool->threads[i])) != 0) {
            snprintf(errstr, errstr_size, "pool: cannot start thread %zu: %s", i, strerror(err));
            goto error;
        }
        pool->threads[i].started = true;
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
    hookd_pool_part_t *p;
    if (partition < 0)
        return -1;
    pthread_mutex_lock(&pool->lock);
    if ((size_t)partition >= pool->nparts) {
        size_t n = (size_t)partition + 1, i;
        hookd_pool_part_t *np = realloc(pool->parts, n * sizeof(*np));
        if (np == NULL) {
            pthread_mutex_unlock(&pool->lock);
            return -1;
        }
        memset(np + pool->nparts, 0, (n - pool->nparts) * sizeof(*np));
        for (i = pool->nparts; i < n; i++)
            np[i].next_ready = -1;
        pool->parts = np;
        pool->nparts = n;
    }
    p = &pool->parts[partition];
    /* A queue left from an earlier assignment was dropped by revoke. */
    p->assigned = true;
    p->epoch = epoch;
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

/* Detach the queue of `p` (lock held); the caller drops the items unlocked. */
static hookd_pool_node_t *detach_queue(hookd_pool_t *pool, int32_t partition)
{
    hookd_pool_part_t *p = &pool->parts[partition];
    hookd_pool_node_t *n = p->head;
    ready_remove(pool, partition);
    p->head = p->tail = NULL;
    p->queued = 0;
    return n;
}

static size_t drop_nodes(hookd_pool_t *pool, hookd_pool_node_t *n)
{
    size_t count = 0;
    while (n != NULL) {
        hookd_pool_node_t *next = n->next;
        if (pool->drop != NULL)
            pool->drop(pool->opaque, n->item);
        free(n);
        n = next;
        count++;
    }
    return count;
}

size_t hookd_pool_revoke(hookd_pool_t *pool, int32_t partition)
{
    hookd_pool_node_t *n = NULL;
    pthread_mutex_lock(&pool->lock);
    if (partition >= 0 && (size_t)partition < pool->nparts) {
        pool->parts[partition].assigned = false;
        n = detach_queue(pool, partition);
    }
    pthread_mutex_unlock(&pool->lock);
    return drop_nodes(pool, n);
}

int hookd_pool_push(hookd_pool_t *pool, int32_t partition, uint64_t epoch, void *item,
                    size_t *queued)
{
    hookd_pool_part_t *p;
    hookd_pool_node_t *n;
    pthread_mutex_lock(&pool->lock);
    if (partition < 0 || (size_t)partition >= pool->nparts || !pool->parts[partition].assigned ||
        pool->parts[partition].epoch != epoch || (n = node_get(pool)) == NULL) {
        pthread_mutex_unlock(&pool->lock);
        return -1;
    }
    n->item = item;
    n->next = NULL;
    p = &pool->parts[partition];
    if (p->tail != NULL)
        p->tail->next = n;
    else
        p->head = n;
    p->tail = n;
    p->queued++;
    if (queued != NULL)
        *queued = p->queued;
    if (!p->busy) {
        ready_append(pool, partition);
        pthread_cond_signal(&pool->work_cond);
    }
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

size_t hookd_pool_queued(hookd_pool_t *pool, int32_t partition)
{
    size_t n = 0;
    pthread_mutex_lock(&pool->lock);
    if (partition >= 0 && (size_t)partition < pool->nparts)
        n = pool->parts[partition].queued;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

/* Lock held. */
static bool busy_locked(hookd_pool_t *pool, int32_t partition)
{
    if (partition < 0)
        return pool->busy_total > 0;
    return (size_t)partition < pool->nparts && pool->parts[partition].busy;
}

bool hookd_pool_busy(hookd_pool_t *pool, int32_t partition)
{
    bool b;
    pthread_mutex_lock(&pool->lock);
    b = busy_locked(pool, partition);
    pthread_mutex_unlock(&pool->lock);
    return b;
}

bool hookd_pool_wait_idle(hookd_pool_t *pool, int32_t partition, int timeout_ms)
{
    struct timespec ts;
    bool idle;
    hookd_deadline_after(&ts, timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock(&pool->lock);
    while (busy_locked(pool, partition)) {
        if (pthread_cond_timedwait(&pool->idle_cond, &pool->lock, &ts) == ETIMEDOUT)
            break;
    }
    idle = !busy_locked(pool, partition);
    pthread_mutex_unlock(&pool->lock);
    return idle;
}

size_t hookd_pool_drop_all(hookd_pool_t *pool)
{
    size_t i, count = 0;
    for (i = 0;; i++) {
        hookd_pool_node_t *n;
        pthread_mutex_lock(&pool->lock);
        if (i >= pool->nparts) {
            pthread_mutex_unlock(&pool->lock);
            break;
        }
        n = detach_queue(pool, (int32_t)i);
        pthread_mutex_unlock(&pool->lock);
        count += drop_nodes(pool, n);
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
    size_t i;
    if (pool == NULL)
        return;
    if (pool->stuck)
        return; /* a thread still runs a handler with our state: leak, do not crash */
    hookd_pool_stop(pool, -1);
    hookd_pool_drop_all(pool);
    for (i = 0; i < pool->nparts; i++)
        drop_nodes(pool, pool->parts[i].head);
    while (pool->spare != NULL) {
        hookd_pool_node_t *n = pool->spare;
        pool->spare = n->next;
        free(n);
    }
    free(pool->parts);
    free(pool->threads);
    pthread_cond_destroy(&pool->work_cond);
    pthread_cond_destroy(&pool->idle_cond);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}
