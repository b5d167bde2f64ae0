/* SPDX-License-Identifier: MIT */
/*
 * The outcome sequencer: outcomes arriving in any order are handed out in
 * consumption order, one turn per partition, and nothing of an old epoch
 * is ever handed out after a revoke or a reassignment.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outseq.h"

/* Items are offsets boxed in malloc'd int64s; disposed ones are counted. */
static size_t disposed;
static int64_t disposed_sum;

static void dispose(void *item)
{
    disposed++;
    disposed_sum += *(int64_t *)item;
    free(item);
}

static void *box(int64_t o)
{
    int64_t *p = malloc(sizeof(*p));
    cr_assert_not_null(p);
    *p = o;
    return p;
}

static int64_t unbox(void *item)
{
    int64_t o = *(int64_t *)item;
    free(item);
    return o;
}

static hookd_outseq_t *s;

static void setup(void)
{
    disposed = 0;
    disposed_sum = 0;
    s = hookd_outseq_new(dispose);
    cr_assert_not_null(s);
}

static void teardown(void)
{
    hookd_outseq_destroy(s);
}

TestSuite(outseq, .init = setup, .fini = teardown);

/* One partition, offsets 10, 12, 15 (gaps: markers, compaction). */
Test(outseq, truth_table_of_one_partition)
{
    void *it;
    cr_assert_eq(hookd_outseq_assign(s, 0, 1), 0);
    cr_assert_eq(hookd_outseq_track(s, 0, 1, 10), 0);
    cr_assert_eq(hookd_outseq_track(s, 0, 1, 12), 0);
    cr_assert_eq(hookd_outseq_track(s, 0, 1, 15), 0);
    cr_assert_eq(hookd_outseq_track(s, 0, 1, 15), -1, "not above the last tracked");
    cr_assert_eq(hookd_outseq_track(s, 0, 2, 16), -1, "another epoch");
    cr_assert_eq(hookd_outseq_pending(s, 0), 3);

    /* 15 and 12 finish first: parked behind 10. */
    it = box(15);
    cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 15, it), HOOKD_OUTSEQ_PARKED);
    it = box(12);
    cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 12, it), HOOKD_OUTSEQ_PARKED);
    cr_assert_eq(hookd_outseq_parked(s, 0), 2);
    /* An untracked offset, another epoch, a second arrival: stale. */
    cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 11, &it), HOOKD_OUTSEQ_STALE);
    cr_assert_eq(hookd_outseq_arrive(s, 0, 2, 10, &it), HOOKD_OUTSEQ_STALE);
    cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 12, &it), HOOKD_OUTSEQ_STALE);

    /* 10 arrives: it goes, and its publisher then takes 12 and 15. */
    cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 10, &it), HOOKD_OUTSEQ_GO);
    it = hookd_outseq_next(s, 0, 1);
    cr_assert_not_null(it);
    cr_assert_eq(unbox(it), 12);
    it = hookd_outseq_next(s, 0, 1);
    cr_assert_not_null(it);
    cr_assert_eq(unbox(it), 15);
    cr_assert_null(hookd_outseq_next(s, 0, 1), "nothing left: the turn is given up");
    cr_assert_eq(hookd_outseq_parked(s, 0), 0);
    cr_assert_eq(hookd_outseq_pending(s, 0), 0);

    /* With the turn given up, the next head goes at once. */
    cr_assert_eq(hookd_outseq_track(s, 0, 1, 20), 0);
    cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 20, &it), HOOKD_OUTSEQ_GO);
    cr_assert_null(hookd_outseq_next(s, 0, 1));
    cr_assert_eq(disposed, 0);
}

/* While a turn is held, even the head waits: outcomes never overtake. */
Test(outseq, the_turn_is_exclusive)
{
    void *it;
    hookd_outseq_assign(s, 0, 1);
    for (int64_t o = 0; o < 3; o++)
        hookd_outseq_track(s, 0, 1, o);
    cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 0, &it), HOOKD_OUTSEQ_GO);
    /* 1 arrives while 0 is still being published: parked, not GO. */
    cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 1, box(1)), HOOKD_OUTSEQ_PARKED);
    it = hookd_outseq_next(s, 0, 1);
    cr_assert_eq(unbox(it), 1);
    cr_assert_null(hookd_outseq_next(s, 0, 1));
    cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 2, &it), HOOKD_OUTSEQ_GO);
    cr_assert_null(hookd_outseq_next(s, 0, 1));
}

/* Partitions are independent: a slow head holds back only its own. */
Test(outseq, partitions_are_independent)
{
    void *it;
    hookd_outseq_assign(s, 0, 1);
    hookd_outseq_assign(s, 3, 2);
    hookd_outseq_track(s, 0, 1, 5);
    hookd_outseq_track(s, 0, 1, 6);
    hookd_outseq_track(s, 3, 2, 5);
    cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 6, box(6)), HOOKD_OUTSEQ_PARKED);
    cr_assert_eq(hookd_outseq_arrive(s, 3, 2, 5, &it), HOOKD_OUTSEQ_GO);
    cr_assert_null(hookd_outseq_next(s, 3, 2));
    cr_assert_eq(hookd_outseq_parked(s, -1), 1);
    cr_assert_eq(hookd_outseq_pending(s, 1), 0, "never assigned");
}

/* A rewind (new epoch) or revoke disposes what is parked; the old turn
 * holder gets nothing more, and the new epoch starts with a free turn. */
Test(outseq, epochs_drop_parked_outcomes)
{
    void *it;
    hookd_outseq_assign(s, 0, 1);
    for (int64_t o = 0; o < 4; o++)
        hookd_outseq_track(s, 0, 1, o);
    cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 0, &it), HOOKD_OUTSEQ_GO);
    hookd_outseq_arrive(s, 0, 1, 1, box(1));
    hookd_outseq_arrive(s, 0, 1, 3, box(3));
    cr_assert_eq(hookd_outseq_assign(s, 0, 2), 0); /* abort: rewind */
    cr_assert_eq(disposed, 2);
    cr_assert_eq(disposed_sum, 4);
    cr_assert_null(hookd_outseq_next(s, 0, 1), "the old epoch's turn is gone");
    cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 2, &it), HOOKD_OUTSEQ_STALE);
    /* Redone from the committed offset under the new epoch. */
    hookd_outseq_track(s, 0, 2, 1);
    cr_assert_eq(hookd_outseq_arrive(s, 0, 2, 1, &it), HOOKD_OUTSEQ_GO);
    hookd_outseq_track(s, 0, 2, 2);
    cr_assert_eq(hookd_outseq_arrive(s, 0, 2, 2, box(2)), HOOKD_OUTSEQ_PARKED);
    hookd_outseq_revoke(s, 0);
    cr_assert_eq(disposed, 3);
    cr_assert_null(hookd_outseq_next(s, 0, 2));
    cr_assert_eq(hookd_outseq_track(s, 0, 2, 9), -1, "revoked");
    cr_assert_eq(hookd_outseq_pending(s, 0), 0);
    /* destroy disposes what is still parked */
    hookd_outseq_assign(s, 0, 3);
    hookd_outseq_track(s, 0, 3, 0);
    hookd_outseq_track(s, 0, 3, 1);
    hookd_outseq_arrive(s, 0, 3, 1, box(1));
    hookd_outseq_destroy(s);
    s = NULL;
    cr_assert_eq(disposed, 4);
}

/*
 * A long wait behind a slow head: the ring wraps (its head moved) and then
 * grows several times while full of parked outcomes, which must all come
 * out in order once the head arrives.
 */
Test(outseq, a_long_backlog_wraps_and_grows)
{
    void *it;
    int64_t o, next = 0;
    hookd_outseq_assign(s, 0, 1);
    for (o = 0; o < 40; o++) { /* move the head away from index 0 */
        cr_assert_eq(hookd_outseq_track(s, 0, 1, o), 0);
        cr_assert_eq(hookd_outseq_arrive(s, 0, 1, o, &it), HOOKD_OUTSEQ_GO);
        cr_assert_null(hookd_outseq_next(s, 0, 1));
        next = o + 1;
    }
    for (o = next; o < next + 1000; o++)
        cr_assert_eq(hookd_outseq_track(s, 0, 1, 2 * o), 0);
    for (o = next + 999; o > next; o--)
        cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 2 * o, box(2 * o)), HOOKD_OUTSEQ_PARKED);
    cr_assert_eq(hookd_outseq_parked(s, 0), 999);
    cr_assert_eq(hookd_outseq_arrive(s, 0, 1, 2 * next, &it), HOOKD_OUTSEQ_GO);
    for (o = next + 1; o < next + 1000; o++) {
        it = hookd_outseq_next(s, 0, 1);
        cr_assert_not_null(it, "offset %lld", (long long)(2 * o));
        cr_assert_eq(unbox(it), 2 * o);
    }
    cr_assert_null(hookd_outseq_next(s, 0, 1));
    cr_assert_eq(hookd_outseq_pending(s, 0), 0);
}

/*
 * Model: random tracks (with gaps), arrivals in random order, turn holders
 * that call next() late (other arrivals in between), rewinds. Checked
 * after every step: the outcomes handed out per partition are exactly the
 * tracked offsets in order, each once, never two turns at once, and
 * everything parked or handed out is accounted for.
 */
#define MP 3
#define MN 400
typedef struct model_part {
    uint64_t epoch;
    int64_t offs[MN];
    int arrived[MN];
    size_t n;         /* tracked */
    size_t published; /* handed out, in order: offs[0 .. published) */
    int holding;      /* a turn is held (model) */
    int64_t last_off;
} model_part_t;

Test(outseq, model)
{
    model_part_t m[MP];
    uint64_t epoch = 1;
    unsigned seed = 12345;
    size_t step, handed = 0;

    memset(m, 0, sizeof(m));
    for (int p = 0; p < MP; p++) {
        m[p].epoch = epoch++;
        m[p].last_off = -1;
        cr_assert_eq(hookd_outseq_assign(s, p, m[p].epoch), 0);
    }
    for (step = 0; step < 20000; step++) {
        int p = rand_r(&seed) % MP, op = rand_r(&seed) % 100;
        model_part_t *mp = &m[p];
        if (op < 35 && mp->n < MN) {
            int64_t o = mp->last_off + 1 + rand_r(&seed) % 3; /* gaps */
            cr_assert_eq(hookd_outseq_track(s, p, mp->epoch, o), 0);
            mp->offs[mp->n] = o;
            mp->arrived[mp->n] = 0;
            mp->n++;
            mp->last_off = o;
        } else if (op < 75 && mp->n > 0) {
            size_t i = (size_t)rand_r(&seed) % mp->n;
            void *it;
            hookd_outseq_turn_t t;
            if (mp->arrived[i])
                continue;
            mp->arrived[i] = 1;
            it = box(mp->offs[i]);
            t = hookd_outseq_arrive(s, p, mp->epoch, mp->offs[i], it);
            if (i == mp->published && !mp->holding) {
                cr_assert_eq(t, HOOKD_OUTSEQ_GO, "step %zu: head without a turn must go", step);
                cr_assert_eq(unbox(it), mp->offs[i]); /* GO: the item stayed ours */
                mp->published++;
                mp->holding = 1;
                handed++;
            } else {
                cr_assert_eq(t, HOOKD_OUTSEQ_PARKED, "step %zu: p%d offset %lld must park", step, p,
                             (long long)mp->offs[i]);
            }
        } else if (op < 95 && mp->holding) {
            void *it = hookd_outseq_next(s, p, mp->epoch);
            if (mp->published < mp->n && mp->arrived[mp->published]) {
                cr_assert_not_null(it, "step %zu: an arrived successor must be handed out", step);
                cr_assert_eq(unbox(it), mp->offs[mp->published], "in order");
                mp->published++;
                handed++;
            } else {
                cr_assert_null(it);
                mp->holding = 0;
            }
        } else if (op >= 98) {
            /* rewind: new epoch, the model forgets everything */
            size_t before = disposed, expect = 0, i;
            for (i = mp->published; i < mp->n; i++)
                expect += mp->arrived[i] ? 1 : 0;
            mp->epoch = epoch++;
            cr_assert_eq(hookd_outseq_assign(s, p, mp->epoch), 0);
            cr_assert_eq(disposed - before, expect, "parked items disposed");
            memset(mp->arrived, 0, sizeof(mp->arrived));
            mp->n = mp->published = 0;
            mp->holding = 0;
            mp->last_off = -1;
        }
        for (int q = 0; q < MP; q++) {
            size_t parked = 0, i;
            for (i = m[q].published; i < m[q].n; i++)
                parked += m[q].arrived[i] ? 1 : 0;
            cr_assert_eq(hookd_outseq_parked(s, q), parked, "step %zu p%d parked", step, q);
            cr_assert_eq(hookd_outseq_pending(s, q), m[q].n - m[q].published);
        }
    }
    cr_assert_gt(handed, 1000, "the model exercised hand-outs (%zu)", handed);
    cr_assert_gt(disposed, 0, "the model exercised rewinds");
}
