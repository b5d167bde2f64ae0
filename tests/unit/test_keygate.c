/* SPDX-License-Identifier: MIT */
/*
 * The key gate against a model: random pushes, takes, finishes, revokes,
 * reassignments and clears, each checked against what the ordering rules
 * say (keygate.h):
 *   - a lane (a key of a partition, or a partition) never runs two items
 *     at once, across reassignments too;
 *   - a lane runs its items in push order;
 *   - the gate is work-conserving: it returns NULL only when no lane with
 *     queued items is idle;
 *   - every item is taken or handed back exactly once, and the counters
 *     agree with the model;
 *   - a held lane (retry tiers) runs nothing until released with its
 *     token or its tag, or until its partition is revoked or cleared; only
 *     keyed lanes of a gate by key can be held.
 * Plus a few hand-made cases (a truth table of who may run next).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keygate.h"

#define NPART 3
#define NKEYS 5 /* key index NKEYS: no key */
#define MAX_ITEMS 20000

typedef struct model_item {
    int32_t partition;
    int key; /* 0..NKEYS-1, NKEYS: none */
    long seq;
    enum { M_QUEUED, M_RUNNING, M_DONE, M_DROPPED } state;
    hookd_keygate_lane_t *lane;
} model_item_t;

static model_item_t items[MAX_ITEMS];
static long nitems;
static uint64_t epochs[NPART];
static int64_t held_token[NPART * (NKEYS + 1)]; /* 0: not held */
static int held_tag[NPART * (NKEYS + 1)];
static int assigned[NPART];
static unsigned rng;

static unsigned next_rand(void)
{
    rng = rng * 1103515245u + 12345u;
    return (rng >> 8) & 0xffffff;
}

/* Which lane an item belongs to under the rules. */
static int lane_of(bool by_key, const model_item_t *it)
{
    return it->partition * (NKEYS + 1) + (by_key ? it->key : 0);
}

static void key_bytes(int key, char *buf, const void **k, size_t *len)
{
    if (key == NKEYS) {
        *k = NULL;
        *len = 0;
        return;
    }
    /* key 0 is the empty key: a key, distinct from no key */
    *len = (size_t)snprintf(buf, 16, "%.*s", key, "kkkkk");
    *k = buf;
}

/* The oldest queued item of a lane in the model, or -1. */
static long lane_head(bool by_key, int lane)
{
    long i;
    for (i = 0; i < nitems; i++)
        if (items[i].state == M_QUEUED && lane_of(by_key, &items[i]) == lane)
            return i;
    return -1;
}

static bool lane_running(bool by_key, int lane)
{
    long i;
    for (i = 0; i < nitems; i++)
        if (items[i].state == M_RUNNING && lane_of(by_key, &items[i]) == lane)
            return true;
    return false;
}

static bool lane_held(bool by_key, int lane)
{
    return by_key && held_token[lane] != 0;
}

static void unhold_partition(int32_t p, int tag)
{
    for (int k = 0; k <= NKEYS; k++) {
        int l = p * (NKEYS + 1) + k;
        if (held_token[l] != 0 && (tag < 0 || held_tag[l] == tag))
            held_token[l] = 0;
    }
}

static void check_counts(hookd_keygate_t *g)
{
    size_t q[NPART] = {0}, r[NPART] = {0}, qa = 0, ra = 0;
    long i;
    for (i = 0; i < nitems; i++) {
        if (items[i].state == M_QUEUED) {
            q[items[i].partition]++;
            qa++;
        } else if (items[i].state == M_RUNNING) {
            r[items[i].partition]++;
            ra++;
        }
    }
    for (int p = 0; p < NPART; p++) {
        cr_assert_eq(hookd_keygate_queued(g, p), q[p], "queued count of partition %d", p);
        cr_assert_eq(hookd_keygate_running(g, p), r[p], "running count of partition %d", p);
    }
    cr_assert_eq(hookd_keygate_queued(g, -1), qa);
    cr_assert_eq(hookd_keygate_running(g, -1), ra);
    {
        size_t h[NPART] = {0}, ha = 0;
        for (int l = 0; l < NPART * (NKEYS + 1); l++)
            if (held_token[l] != 0) {
                h[l / (NKEYS + 1)]++;
                ha++;
            }
        for (int p = 0; p < NPART; p++)
            cr_assert_eq(hookd_keygate_held(g, p), h[p], "held count of partition %d", p);
        cr_assert_eq(hookd_keygate_held(g, -1), ha);
    }
}

static void hand_back(hookd_keygate_chain_t *chain, size_t count, int32_t partition)
{
    size_t n = 0;
    void *it;
    while ((it = hookd_keygate_chain_pop(&chain)) != NULL) {
        model_item_t *m = it;
        cr_assert_eq(m->state, M_QUEUED, "handed back an item that was not queued");
        cr_assert(partition < 0 || m->partition == partition);
        m->state = M_DROPPED;
        n++;
    }
    cr_assert_eq(n, count);
}

static void run_model(bool by_key, unsigned seed, int steps)
{
    hookd_keygate_t *g = hookd_keygate_new(by_key);
    long running[MAX_ITEMS];
    long nrunning = 0, taken = 0, i;
    cr_assert_not_null(g);
    rng = seed;
    nitems = 0;
    memset(held_token, 0, sizeof(held_token));
    for (int p = 0; p < NPART; p++) {
        epochs[p] = 1;
        assigned[p] = 1;
        cr_assert_eq(hookd_keygate_assign(g, p, 1), 0);
    }
    for (int step = 0; step < steps && nitems < MAX_ITEMS; step++) {
        unsigned op = next_rand() % 100;
        if (op < 45) { /* push */
            model_item_t *m = &items[nitems];
            char buf[16];
            const void *k;
            size_t klen;
            bool stale = next_rand() % 20 == 0;
            m->partition = (int32_t)(next_rand() % NPART);
            m->key = (int)(next_rand() % (NKEYS + 1));
            m->seq = nitems;
            m->state = M_QUEUED;
            key_bytes(m->key, buf, &k, &klen);
            if (stale || !assigned[m->partition]) {
                cr_assert_eq(hookd_keygate_push(g, m->partition, epochs[m->partition] - stale, k,
                                                klen, m),
                             -1, "a push under a stale epoch or to a revoked partition is refused");
                continue;
            }
            cr_assert_eq(hookd_keygate_push(g, m->partition, epochs[m->partition], k, klen, m), 0);
            nitems++;
        } else if (op < 75) { /* take */
            int32_t part;
            uint64_t ep;
            hookd_keygate_lane_t *lane;
            model_item_t *m = hookd_keygate_take(g, &part, &ep, &lane);
            if (m == NULL) {
                /* Work-conserving: no idle lane may have queued items. */
                for (i = 0; i < nitems; i++)
                    if (items[i].state == M_QUEUED)
                        cr_assert(lane_running(by_key, lane_of(by_key, &items[i])) ||
                                      lane_held(by_key, lane_of(by_key, &items[i])),
                                  "item %ld is runnable but the gate returned none", i);
                continue;
            }
            cr_assert_eq(m->state, M_QUEUED);
            cr_assert_eq(part, m->partition);
            cr_assert_eq(ep, epochs[m->partition]);
            cr_assert_not(lane_running(by_key, lane_of(by_key, m)),
                          "two items of one lane run at once (item %ld)", m->seq);
            cr_assert_not(lane_held(by_key, lane_of(by_key, m)),
                          "item %ld of a held lane was taken", m->seq);
            cr_assert_eq(lane_head(by_key, lane_of(by_key, m)), m->seq,
                         "item %ld taken before an older one of its lane", m->seq);
            m->state = M_RUNNING;
            m->lane = lane;
            running[nrunning++] = m->seq;
            taken++;
        } else if (op < 92) { /* finish one of the running items */
            long j;
            model_item_t *m;
            if (nrunning == 0)
                continue;
            j = (long)(next_rand() % (unsigned)nrunning);
            m = &items[running[j]];
            running[j] = running[--nrunning];
            m->state = M_DONE;
            hookd_keygate_finish(g, m->lane);
        } else if (op < 95) { /* hold, release by token, release by tag */
            int32_t p = (int32_t)(next_rand() % NPART);
            int key = (int)(next_rand() % (NKEYS + 1)), l = p * (NKEYS + 1) + key;
            int64_t token = (int64_t)(next_rand() % 3) + 1;
            int tag = (int)(next_rand() % 3), what = (int)(next_rand() % 3);
            char buf[16];
            const void *k;
            size_t klen;
            key_bytes(key, buf, &k, &klen);
            if (what == 0) {
                bool ok = by_key && key != NKEYS && assigned[p];
                cr_assert_eq(hookd_keygate_hold(g, p, k, klen, token, tag), ok ? 0 : -1,
                             "hold of partition %d key %d (by_key %d, assigned %d)", p, key, by_key,
                             assigned[p]);
                if (ok) {
                    held_token[l] = token;
                    held_tag[l] = tag;
                }
            } else if (what == 1) {
                hookd_keygate_release(g, p, k, klen, token);
                if (held_token[l] == token)
                    held_token[l] = 0;
            } else {
                tag = (int)(next_rand() % 4) - 1; /* -1: all */
                hookd_keygate_release_tag(g, p, tag);
                unhold_partition(p, tag);
            }
        } else if (op < 98) { /* revoke, and maybe reassign at once under a new epoch */
            int32_t p = (int32_t)(next_rand() % NPART);
            size_t count;
            hookd_keygate_chain_t *chain = hookd_keygate_revoke(g, p, &count);
            hand_back(chain, count, p);
            unhold_partition(p, -1);
            assigned[p] = 0;
            if (next_rand() % 2) {
                epochs[p]++;
                assigned[p] = 1;
                cr_assert_eq(hookd_keygate_assign(g, p, epochs[p]), 0);
            }
        } else if (op < 99) { /* reassign a revoked one */
            int32_t p = (int32_t)(next_rand() % NPART);
            if (!assigned[p]) {
                epochs[p]++;
                assigned[p] = 1;
                cr_assert_eq(hookd_keygate_assign(g, p, epochs[p]), 0);
            }
        } else { /* clear (shutdown's drop_all), the partition stays assigned */
            int32_t p = (int32_t)(next_rand() % NPART);
            size_t count;
            hookd_keygate_chain_t *chain = hookd_keygate_clear(g, p, &count);
            hand_back(chain, count, p);
            unhold_partition(p, -1);
        }
        check_counts(g);
    }
    /* Holds end with their tier events: release them all before draining. */
    for (int p = 0; p < NPART; p++) {
        hookd_keygate_release_tag(g, p, -1);
        unhold_partition(p, -1);
    }
    /* Drain: finish everything, take everything left, in a loop. */
    for (;;) {
        int32_t part;
        hookd_keygate_lane_t *lane;
        model_item_t *m;
        while (nrunning > 0) {
            m = &items[running[--nrunning]];
            m->state = M_DONE;
            hookd_keygate_finish(g, m->lane);
        }
        m = hookd_keygate_take(g, &part, NULL, &lane);
        if (m == NULL)
            break;
        cr_assert_eq(lane_head(by_key, lane_of(by_key, m)), m->seq);
        m->state = M_RUNNING;
        m->lane = lane;
        running[nrunning++] = m->seq;
        taken++;
    }
    for (i = 0; i < nitems; i++)
        cr_assert(items[i].state == M_DONE || items[i].state == M_DROPPED,
                  "item %ld neither run nor handed back", i);
    cr_assert_gt(taken, (long)steps / 10, "the random run exercised little");
    check_counts(g);
    cr_assert_null(hookd_keygate_destroy(g));
}

Test(keygate, model_by_key)
{
    for (unsigned seed = 1; seed <= 40; seed++)
        run_model(true, seed, 3000);
}

Test(keygate, model_by_partition)
{
    for (unsigned seed = 1; seed <= 40; seed++)
        run_model(false, seed, 3000);
}

/* Who may run next, by hand: partition 0 holds keys a, a, b, (none), (none). */
Test(keygate, truth_table_of_one_partition)
{
    static const struct {
        bool by_key;
        int parallel; /* items runnable at once at the start */
    } rows[] = {{true, 3}, {false, 1}};
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        hookd_keygate_t *g = hookd_keygate_new(rows[r].by_key);
        int tags[5] = {0, 1, 2, 3, 4};
        const char *keys[5] = {"a", "a", "b", NULL, NULL};
        hookd_keygate_lane_t *lanes[5];
        int n = 0;
        int *it;
        cr_assert_eq(hookd_keygate_assign(g, 0, 9), 0);
        for (int i = 0; i < 5; i++)
            cr_assert_eq(hookd_keygate_push(g, 0, 9, keys[i], keys[i] ? 1 : 0, &tags[i]), 0);
        while ((it = hookd_keygate_take(g, NULL, NULL, &lanes[n])) != NULL)
            n++;
        cr_assert_eq(n, rows[r].parallel, "row %zu: %d runnable at once", r, n);
        if (rows[r].by_key) {
            /* Finishing the first "a" makes the second runnable, nothing else. */
            cr_assert(hookd_keygate_finish(g, lanes[0]));
            it = hookd_keygate_take(g, NULL, NULL, &lanes[3]);
            cr_assert_not_null(it);
            cr_assert_eq(*it, 1);
            cr_assert_null(hookd_keygate_take(g, NULL, NULL, &lanes[4]));
        }
        /* A revoke hands back the queued ones; running ones keep their lanes. */
        {
            size_t count, running = hookd_keygate_running(g, 0);
            hookd_keygate_chain_t *chain = hookd_keygate_revoke(g, 0, &count);
            cr_assert_eq(count + running + (rows[r].by_key ? 1 : 0), 5);
            while (hookd_keygate_chain_pop(&chain) != NULL)
                ;
            cr_assert_eq(hookd_keygate_push(g, 0, 9, "a", 1, &tags[0]), -1);
            cr_assert_eq(hookd_keygate_assign(g, 0, 10), 0);
            cr_assert_eq(hookd_keygate_push(g, 0, 10, "b", 1, &tags[2]), 0);
            /* "b" (by key) or the partition (by partition) still runs: waits. */
            cr_assert_null(hookd_keygate_take(g, NULL, NULL, &lanes[4]));
        }
        hookd_keygate_chain_t *rest = hookd_keygate_destroy(g);
        int left = 0;
        while (hookd_keygate_chain_pop(&rest) != NULL)
            left++;
        cr_assert_eq(left, 1);
    }
}

Test(keygate, many_keys_grow_the_table_and_are_freed)
{
    hookd_keygate_t *g = hookd_keygate_new(true);
    static int tag[5000];
    hookd_keygate_lane_t *lane;
    char key[16];
    int n = 0;
    cr_assert_eq(hookd_keygate_assign(g, 4, 1), 0);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "order-%d", i % 1000);
        tag[i] = i;
        cr_assert_eq(hookd_keygate_push(g, 4, 1, key, strlen(key), &tag[i]), 0);
    }
    /* 1000 keys: 1000 runnable at once, each key's oldest first. */
    for (;;) {
        int *it = hookd_keygate_take(g, NULL, NULL, &lane);
        if (it == NULL)
            break;
        cr_assert_lt(*it, 1000);
        n++;
    }
    cr_assert_eq(n, 1000);
    cr_assert_eq(hookd_keygate_queued(g, 4), 4000);
    {
        hookd_keygate_chain_t *rest = hookd_keygate_destroy(g);
        size_t left = 0;
        while (hookd_keygate_chain_pop(&rest) != NULL)
            left++;
        cr_assert_eq(left, 4000, "destroy hands back what was queued");
    }
}

/* A hold by hand: the held key waits, other keys go on, a wrong token
 * releases nothing, the right one lets the waiting item run. */
Test(keygate, hold_blocks_the_key_not_the_partition)
{
    hookd_keygate_t *g = hookd_keygate_new(true);
    int tags[3] = {0, 1, 2};
    hookd_keygate_lane_t *lane;
    int *it;
    cr_assert_eq(hookd_keygate_assign(g, 0, 1), 0);
    /* "a" is held while its lane is idle and empty: the lane must survive */
    cr_assert_eq(hookd_keygate_hold(g, 0, "a", 1, 42, 1), 0);
    cr_assert_eq(hookd_keygate_push(g, 0, 1, "a", 1, &tags[0]), 0);
    cr_assert_eq(hookd_keygate_push(g, 0, 1, "b", 1, &tags[1]), 0);
    it = hookd_keygate_take(g, NULL, NULL, &lane);
    cr_assert_not_null(it);
    cr_assert_eq(*it, 1, "the other key runs");
    cr_assert_not(hookd_keygate_finish(g, lane));
    cr_assert_null(hookd_keygate_take(g, NULL, NULL, &lane), "the held key waits");
    cr_assert_not(hookd_keygate_release(g, 0, "a", 1, 41), "a stale token releases nothing");
    cr_assert_not(hookd_keygate_release_tag(g, 0, 2), "another tier's tag releases nothing");
    cr_assert_null(hookd_keygate_take(g, NULL, NULL, &lane));
    cr_assert(hookd_keygate_release(g, 0, "a", 1, 42));
    it = hookd_keygate_take(g, NULL, NULL, &lane);
    cr_assert_not_null(it);
    cr_assert_eq(*it, 0);
    /* a hold taken while the item runs (the pipeline's case) outlives its finish */
    cr_assert_eq(hookd_keygate_hold(g, 0, "a", 1, 43, 1), 0);
    cr_assert_eq(hookd_keygate_push(g, 0, 1, "a", 1, &tags[2]), 0);
    cr_assert_not(hookd_keygate_finish(g, lane));
    cr_assert_null(hookd_keygate_take(g, NULL, NULL, &lane));
    cr_assert(hookd_keygate_release_tag(g, 0, 1));
    it = hookd_keygate_take(g, NULL, NULL, &lane);
    cr_assert_not_null(it);
    cr_assert_eq(*it, 2);
    hookd_keygate_finish(g, lane);
    cr_assert_eq(hookd_keygate_held(g, -1), 0);
    cr_assert_null(hookd_keygate_destroy(g));
    /* by partition, or without a key, nothing can be held */
    g = hookd_keygate_new(false);
    cr_assert_eq(hookd_keygate_assign(g, 0, 1), 0);
    cr_assert_eq(hookd_keygate_hold(g, 0, "a", 1, 1, 1), -1);
    hookd_keygate_destroy(g);
    g = hookd_keygate_new(true);
    cr_assert_eq(hookd_keygate_assign(g, 0, 1), 0);
    cr_assert_eq(hookd_keygate_hold(g, 0, NULL, 0, 1, 1), -1);
    cr_assert_eq(hookd_keygate_hold(g, 1, "a", 1, 1, 1), -1, "not assigned");
    hookd_keygate_destroy(g);
}

/* A lane freed after a hold leaves nothing behind for the next keys, and
 * long keys are told apart to their last byte (and kept together when
 * equal). */
Test(keygate, a_freed_lane_leaves_nothing_and_long_keys_differ_to_the_last_byte)
{
    hookd_keygate_t *g = hookd_keygate_new(true);
    int tags[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    hookd_keygate_lane_t *lane, *lane2;
    char k64[64], k65a[65], k65b[65], k200a[200], k200b[200];
    int *it;

    memset(k64, 'x', sizeof(k64));
    memset(k65a, 'y', sizeof(k65a));
    memcpy(k65b, k65a, sizeof(k65b));
    k65b[64] = 'z';
    memset(k200a, 'w', sizeof(k200a));
    memcpy(k200b, k200a, sizeof(k200b));
    k200b[199] = 'v';
    cr_assert_eq(hookd_keygate_assign(g, 0, 1), 0);
    for (int round = 0; round < 3; round++) {
        /* "a" runs, is held past its finish, released: its lane is freed */
        cr_assert_eq(hookd_keygate_push(g, 0, 1, "a", 1, &tags[0]), 0);
        it = hookd_keygate_take(g, NULL, NULL, &lane);
        cr_assert(it != NULL && *it == 0);
        cr_assert_eq(hookd_keygate_hold(g, 0, "a", 1, 7, 1), 0);
        cr_assert_not(hookd_keygate_finish(g, lane));
        cr_assert(hookd_keygate_release(g, 0, "a", 1, 7) == false, "idle and empty: freed");
        cr_assert_eq(hookd_keygate_held(g, -1), 0);
        /* the next keys' lanes are new: neither held nor running */
        cr_assert_eq(hookd_keygate_push(g, 0, 1, "b", 1, &tags[1]), 0);
        cr_assert_eq(hookd_keygate_push(g, 0, 1, k64, sizeof(k64), &tags[2]), 0);
        cr_assert_eq(hookd_keygate_push(g, 0, 1, k65a, sizeof(k65a), &tags[3]), 0);
        cr_assert_eq(hookd_keygate_push(g, 0, 1, k65b, sizeof(k65b), &tags[4]), 0);
        cr_assert_eq(hookd_keygate_push(g, 0, 1, k200a, sizeof(k200a), &tags[5]), 0);
        cr_assert_eq(hookd_keygate_push(g, 0, 1, k200b, sizeof(k200b), &tags[6]), 0);
        cr_assert_eq(hookd_keygate_push(g, 0, 1, "b", 1, &tags[7]), 0);
        cr_assert_eq(hookd_keygate_push(g, 0, 1, k200a, sizeof(k200a), &tags[8]), 0);
        hookd_keygate_lane_t *lanes[6];
        int seen = 0;
        for (int i = 0; i < 6; i++) {
            it = hookd_keygate_take(g, NULL, NULL, &lanes[i]);
            cr_assert_not_null(it, "six distinct keys run at once (take %d)", i);
            seen |= 1 << *it;
        }
        cr_assert_eq(seen, 0x7e, "items 1..6; the second \"b\" and the second long key wait");
        cr_assert_null(hookd_keygate_take(g, NULL, NULL, &lane2));
        for (int i = 0; i < 6; i++)
            hookd_keygate_finish(g, lanes[i]);
        seen = 0;
        for (int i = 0; i < 2; i++) {
            it = hookd_keygate_take(g, NULL, NULL, &lanes[i]);
            cr_assert_not_null(it);
            seen |= 1 << *it;
        }
        cr_assert_eq(seen, 0x180);
        cr_assert_null(hookd_keygate_take(g, NULL, NULL, &lane2));
        cr_assert_not(hookd_keygate_finish(g, lanes[0]));
        cr_assert_not(hookd_keygate_finish(g, lanes[1]));
        cr_assert_eq(hookd_keygate_queued(g, -1), 0);
        cr_assert_eq(hookd_keygate_running(g, -1), 0);
    }
    cr_assert_null(hookd_keygate_destroy(g));
}
