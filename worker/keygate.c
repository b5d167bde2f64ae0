/* SPDX-License-Identifier: MIT */
/*
 * The key gate (see keygate.h).
 *
 * Per partition, a hash table of lanes (FNV-1a of the key, chained,
 * doubled when it holds more lanes than buckets); per lane, a FIFO of
 * nodes. Runnable lanes are linked in one doubly linked FIFO, so a revoke
 * unlinks its lanes in constant time each. Nodes are recycled through a
 * bounded spare list: the caller pushes from one thread and finishes from
 * others, and recycling under the caller's lock avoids a malloc/free pair
 * crossing threads for every message.
 */
#include "keygate.h"

#include <stdlib.h>
#include <string.h>

#define KG_SPARE_MAX 4096
#define KG_BUCKETS_MIN 16

struct hookd_keygate_node {
    void *item;
    struct hookd_keygate_node *next;
};
typedef struct hookd_keygate_node kg_node_t;

struct hookd_keygate_lane {
    struct hookd_keygate_lane *hnext;         /* hash chain */
    struct hookd_keygate_lane *rprev, *rnext; /* runnable FIFO */
    kg_node_t *head, *tail;
    int32_t partition;
    bool running;
    bool runnable; /* linked in the runnable FIFO */
    bool keyed;    /* false: the keyless lane (or the partition's only lane) */
    bool held;     /* hookd_keygate_hold(): runs nothing until released */
    int hold_tag;
    int64_t hold_token;
    uint64_t hash;
    size_t key_len;
    unsigned char key[]; /* key_len bytes */
};
typedef struct hookd_keygate_lane kg_lane_t;

typedef struct kg_part {
    bool assigned;
    uint64_t epoch;
    size_t queued, running, held;
    kg_lane_t **buckets; /* NULL until the first lane */
    size_t nbuckets, nlanes;
} kg_part_t;

struct hookd_keygate {
    bool by_key;
    kg_part_t *parts;
    size_t nparts;
    kg_lane_t *rhead, *rtail; /* runnable lanes, oldest first */
    size_t queued, running, held;
    kg_node_t *spare;
    size_t nspare;
};

static uint64_t key_hash(bool keyed, const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ULL;
    size_t i;
    if (!keyed)
        return 0;
    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    /* never 0, so the keyless lane's hash is its own */
    return h ? h : 1;
}

static kg_node_t *node_get(hookd_keygate_t *g)
{
    kg_node_t *n = g->spare;
    if (n == NULL)
        return malloc(sizeof(*n));
    g->spare = n->next;
    g->nspare--;
    return n;
}

static void node_put(hookd_keygate_t *g, kg_node_t *n)
{
    if (g->nspare >= KG_SPARE_MAX) {
        free(n);
        return;
    }
    n->next = g->spare;
    g->spare = n;
    g->nspare++;
}

static void runnable_append(hookd_keygate_t *g, kg_lane_t *l)
{
    if (l->runnable)
        return;
    l->runnable = true;
    l->rnext = NULL;
    l->rprev = g->rtail;
    if (g->rtail != NULL)
        g->rtail->rnext = l;
    else
        g->rhead = l;
    g->rtail = l;
}

static void runnable_remove(hookd_keygate_t *g, kg_lane_t *l)
{
    if (!l->runnable)
        return;
    if (l->rprev != NULL)
        l->rprev->rnext = l->rnext;
    else
        g->rhead = l->rnext;
    if (l->rnext != NULL)
        l->rnext->rprev = l->rprev;
    else
        g->rtail = l->rprev;
    l->rprev = l->rnext = NULL;
    l->runnable = false;
}

/* Unlink `l` from its partition's hash table and free it (idle and empty). */
static void lane_free(hookd_keygate_t *g, kg_lane_t *l)
{
    kg_part_t *p = &g->parts[l->partition];
    kg_lane_t **pp = &p->buckets[l->hash & (p->nbuckets - 1)];
    while (*pp != NULL && *pp != l)
        pp = &(*pp)->hnext;
    if (*pp == l)
        *pp = l->hnext;
    p->nlanes--;
    free(l);
}

static int buckets_grow(kg_part_t *p)
{
    size_t n = p->nbuckets ? p->nbuckets * 2 : KG_BUCKETS_MIN, i;
    kg_lane_t **nb = calloc(n, sizeof(*nb));
    if (nb == NULL)
        return -1;
    for (i = 0; i < p->nbuckets; i++) {
        kg_lane_t *l = p->buckets[i];
        while (l != NULL) {
            kg_lane_t *next = l->hnext;
            l->hnext = nb[l->hash & (n - 1)];
            nb[l->hash & (n - 1)] = l;
            l = next;
        }
    }
    free(p->buckets);
    p->buckets = nb;
    p->nbuckets = n;
    return 0;
}

/* The lane of (partition, key) if it exists. */
static kg_lane_t *lane_find(hookd_keygate_t *g, int32_t partition, bool keyed, const void *key,
                            size_t key_len)
{
    kg_part_t *p = &g->parts[partition];
    uint64_t h = key_hash(keyed, key, key_len);
    kg_lane_t *l;
    if (!keyed)
        key_len = 0;
    if (p->buckets == NULL)
        return NULL;
    for (l = p->buckets[h & (p->nbuckets - 1)]; l != NULL; l = l->hnext)
        if (l->hash == h && l->keyed == keyed && l->key_len == key_len &&
            (key_len == 0 || memcmp(l->key, key, key_len) == 0))
            return l;
    return NULL;
}

/* The lane of (partition, key), created when missing; NULL when out of memory. */
static kg_lane_t *lane_get(hookd_keygate_t *g, int32_t partition, bool keyed, const void *key,
                           size_t key_len)
{
    kg_part_t *p = &g->parts[partition];
    uint64_t h = key_hash(keyed, key, key_len);
    kg_lane_t *l;

    if (!keyed)
        key_len = 0;
    if (p->buckets != NULL) {
        for (l = p->buckets[h & (p->nbuckets - 1)]; l != NULL; l = l->hnext)
            if (l->hash == h && l->keyed == keyed && l->key_len == key_len &&
                (key_len == 0 || memcmp(l->key, key, key_len) == 0))
                return l;
    }
    if ((p->buckets == NULL || p->nlanes >= p->nbuckets) && buckets_grow(p) != 0 &&
        p->buckets == NULL)
        return NULL; /* a failed growth of a non-empty table only costs speed */
    if ((l = calloc(1, sizeof(*l) + key_len)) == NULL)
        return NULL;
    l->partition = partition;
    l->keyed = keyed;
    l->hash = h;
    l->key_len = key_len;
    if (key_len > 0)
        memcpy(l->key, key, key_len);
    l->hnext = p->buckets[h & (p->nbuckets - 1)];
    p->buckets[h & (p->nbuckets - 1)] = l;
    p->nlanes++;
    return l;
}

hookd_keygate_t *hookd_keygate_new(bool by_key)
{
    hookd_keygate_t *g = calloc(1, sizeof(*g));
    if (g != NULL)
        g->by_key = by_key;
    return g;
}

int hookd_keygate_assign(hookd_keygate_t *g, int32_t partition, uint64_t epoch)
{
    if (partition < 0)
        return -1;
    if ((size_t)partition >= g->nparts) {
        size_t n = (size_t)partition + 1;
        kg_part_t *np = realloc(g->parts, n * sizeof(*np));
        if (np == NULL)
            return -1;
        memset(np + g->nparts, 0, (n - g->nparts) * sizeof(*np));
        g->parts = np;
        g->nparts = n;
    }
    /* Queued items of an earlier assignment were handed back by revoke. */
    g->parts[partition].assigned = true;
    g->parts[partition].epoch = epoch;
    return 0;
}

int hookd_keygate_push(hookd_keygate_t *g, int32_t partition, uint64_t epoch, const void *key,
                       size_t key_len, void *item)
{
    kg_part_t *p;
    kg_lane_t *l;
    kg_node_t *n;
    bool keyed = g->by_key && key != NULL;

    if (item == NULL || partition < 0 || (size_t)partition >= g->nparts)
        return -1;
    p = &g->parts[partition];
    if (!p->assigned || p->epoch != epoch)
        return -1;
    if ((n = node_get(g)) == NULL)
        return -1;
    if ((l = lane_get(g, partition, keyed, key, key_len)) == NULL) {
        node_put(g, n);
        return -1;
    }
    n->item = item;
    n->next = NULL;
    if (l->tail != NULL)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
    p->queued++;
    g->queued++;
    if (!l->running && !l->held)
        runnable_append(g, l);
    return 0;
}

void *hookd_keygate_take(hookd_keygate_t *g, int32_t *partition, uint64_t *epoch,
                         hookd_keygate_lane_t **lane)
{
    kg_lane_t *l = g->rhead;
    kg_part_t *p;
    kg_node_t *n;
    void *item;

    if (l == NULL)
        return NULL;
    runnable_remove(g, l);
    p = &g->parts[l->partition];
    n = l->head;
    l->head = n->next;
    if (l->head == NULL)
        l->tail = NULL;
    l->running = true;
    p->queued--;
    p->running++;
    g->queued--;
    g->running++;
    item = n->item;
    node_put(g, n);
    if (partition != NULL)
        *partition = l->partition;
    if (epoch != NULL)
        *epoch = p->epoch;
    *lane = l;
    return item;
}

/*
 * A lane neither running nor held: runnable again when events wait in it
 * (true), else freed.
 */
static bool settle(hookd_keygate_t *g, kg_lane_t *l)
{
    if (l->head != NULL) {
        runnable_append(g, l);
        return true;
    }
    lane_free(g, l);
    return false;
}

bool hookd_keygate_finish(hookd_keygate_t *g, hookd_keygate_lane_t *l)
{
    kg_part_t *p = &g->parts[l->partition];
    l->running = false;
    p->running--;
    g->running--;
    if (l->held)
        return false;
    return settle(g, l);
}

/* Drop the hold of `l`; true when it became runnable. Frees it when idle and empty. */
static bool unhold(hookd_keygate_t *g, kg_lane_t *l)
{
    kg_part_t *p = &g->parts[l->partition];
    if (!l->held)
        return false;
    l->held = false;
    p->held--;
    g->held--;
    if (l->running)
        return false;
    return settle(g, l);
}

int hookd_keygate_hold(hookd_keygate_t *g, int32_t partition, const void *key, size_t key_len,
                       int64_t token, int tag)
{
    kg_lane_t *l;
    if (!g->by_key || key == NULL || partition < 0 || (size_t)partition >= g->nparts ||
        !g->parts[partition].assigned)
        return -1;
    if ((l = lane_get(g, partition, true, key, key_len)) == NULL)
        return -1;
    if (!l->held) {
        l->held = true;
        g->parts[partition].held++;
        g->held++;
    }
    l->hold_token = token;
    l->hold_tag = tag;
    runnable_remove(g, l);
    return 0;
}

bool hookd_keygate_release(hookd_keygate_t *g, int32_t partition, const void *key, size_t key_len,
                           int64_t token)
{
    kg_lane_t *l;
    if (!g->by_key || key == NULL || partition < 0 || (size_t)partition >= g->nparts)
        return false;
    if ((l = lane_find(g, partition, true, key, key_len)) == NULL || !l->held ||
        l->hold_token != token)
        return false;
    return unhold(g, l);
}

bool hookd_keygate_release_tag(hookd_keygate_t *g, int32_t partition, int tag)
{
    kg_part_t *p;
    bool any = false;
    size_t i;
    if (partition < 0 || (size_t)partition >= g->nparts)
        return false;
    p = &g->parts[partition];
    for (i = 0; i < p->nbuckets && p->held > 0; i++) {
        kg_lane_t *l = p->buckets[i];
        while (l != NULL) {
            kg_lane_t *next = l->hnext; /* unhold may free l */
            if (l->held && (tag < 0 || l->hold_tag == tag) && unhold(g, l))
                any = true;
            l = next;
        }
    }
    return any;
}

size_t hookd_keygate_held(const hookd_keygate_t *g, int32_t partition)
{
    if (partition < 0)
        return g->held;
    return (size_t)partition < g->nparts ? g->parts[partition].held : 0;
}

bool hookd_keygate_runnable(const hookd_keygate_t *g)
{
    return g->rhead != NULL;
}

/* Detach every queued item of `partition`; free the lanes left idle. */
static kg_node_t *detach(hookd_keygate_t *g, int32_t partition, size_t *count)
{
    kg_part_t *p;
    kg_node_t *chain = NULL, **tailp = &chain;
    size_t i, c = 0;

    if (count != NULL)
        *count = 0;
    if (partition < 0 || (size_t)partition >= g->nparts)
        return NULL;
    p = &g->parts[partition];
    for (i = 0; i < p->nbuckets; i++) {
        kg_lane_t *l = p->buckets[i];
        while (l != NULL) {
            kg_lane_t *next = l->hnext;
            kg_node_t *n;
            runnable_remove(g, l);
            for (n = l->head; n != NULL; n = n->next)
                c++;
            if (l->head != NULL) {
                *tailp = l->head;
                tailp = &l->tail->next;
            }
            l->head = l->tail = NULL;
            if (l->held) {
                l->held = false;
                p->held--;
                g->held--;
            }
            if (!l->running)
                lane_free(g, l);
            l = next;
        }
    }
    *tailp = NULL;
    g->queued -= p->queued;
    p->queued = 0;
    if (count != NULL)
        *count = c;
    return chain;
}

hookd_keygate_chain_t *hookd_keygate_revoke(hookd_keygate_t *g, int32_t partition, size_t *count)
{
    if (partition >= 0 && (size_t)partition < g->nparts)
        g->parts[partition].assigned = false;
    return detach(g, partition, count);
}

hookd_keygate_chain_t *hookd_keygate_clear(hookd_keygate_t *g, int32_t partition, size_t *count)
{
    return detach(g, partition, count);
}

void *hookd_keygate_chain_pop(hookd_keygate_chain_t **chain)
{
    kg_node_t *n = *chain;
    void *item;
    if (n == NULL)
        return NULL;
    *chain = n->next;
    item = n->item;
    free(n);
    return item;
}

size_t hookd_keygate_queued(const hookd_keygate_t *g, int32_t partition)
{
    if (partition < 0)
        return g->queued;
    return (size_t)partition < g->nparts ? g->parts[partition].queued : 0;
}

size_t hookd_keygate_running(const hookd_keygate_t *g, int32_t partition)
{
    if (partition < 0)
        return g->running;
    return (size_t)partition < g->nparts ? g->parts[partition].running : 0;
}

size_t hookd_keygate_partitions(const hookd_keygate_t *g)
{
    return g->nparts;
}

hookd_keygate_chain_t *hookd_keygate_destroy(hookd_keygate_t *g)
{
    kg_node_t *all = NULL;
    size_t i, j;
    if (g == NULL)
        return NULL;
    for (i = 0; i < g->nparts; i++) {
        kg_part_t *p = &g->parts[i];
        for (j = 0; j < p->nbuckets; j++) {
            kg_lane_t *l = p->buckets[j];
            while (l != NULL) {
                kg_lane_t *next = l->hnext;
                if (l->head != NULL) {
                    l->tail->next = all;
                    all = l->head;
                }
                free(l);
                l = next;
            }
        }
        free(p->buckets);
    }
    while (g->spare != NULL) {
        kg_node_t *n = g->spare;
        g->spare = n->next;
        free(n);
    }
    free(g->parts);
    free(g);
    return all;
}
