/* SPDX-License-Identifier: MIT */
/*
 * The offset tracker: the committable position never passes a message whose
 * outcome is not durable, whatever the order of the delivery reports.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "offsets.h"

static hookd_offsets_t *ot;

static void setup(void)
{
    ot = hookd_offsets_new();
    cr_assert_not_null(ot);
}

static void teardown(void)
{
    hookd_offsets_destroy(ot);
}

TestSuite(offsets, .init = setup, .fini = teardown);

Test(offsets, nothing_tracked_is_not_committable)
{
    cr_assert_eq(hookd_offsets_committable(ot, 0), -1);
    cr_assert_eq(hookd_offsets_assign(ot, 0, 1), HOOKD_OFFSETS_OK);
    cr_assert_eq(hookd_offsets_committable(ot, 0), -1);
    hookd_offsets_pos_t pos[4];
    cr_assert_eq(hookd_offsets_collect(ot, pos, 4, 1), 0);
}

Test(offsets, in_order_completion)
{
    hookd_offsets_assign(ot, 3, 7);
    for (int64_t o = 10; o < 15; o++)
        cr_assert_eq(hookd_offsets_track(ot, 3, 7, o), HOOKD_OFFSETS_OK);
    cr_assert_eq(hookd_offsets_committable(ot, 3), 10);
    for (int64_t o = 10; o < 15; o++) {
        cr_assert_eq(hookd_offsets_expect(ot, 3, 7, o, 1), HOOKD_OFFSETS_OK);
        cr_assert_eq(hookd_offsets_ack(ot, 3, 7, o), HOOKD_OFFSETS_OK);
        cr_assert_eq(hookd_offsets_committable(ot, 3), o + 1);
    }
    cr_assert_eq(hookd_offsets_outstanding(ot, 3), 0);
}

Test(offsets, out_of_order_acks_hold_the_lowest_unfinished)
{
    hookd_offsets_assign(ot, 0, 1);
    for (int64_t o = 0; o < 6; o++) {
        hookd_offsets_track(ot, 0, 1, o);
        hookd_offsets_expect(ot, 0, 1, o, 1);
    }
    /* 5, 3, 1, 4 done: 0 is not, nothing moves. */
    int64_t order[] = {5, 3, 1, 4};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(hookd_offsets_ack(ot, 0, 1, order[i]), HOOKD_OFFSETS_OK);
        cr_assert_eq(hookd_offsets_committable(ot, 0), 0, "after ack of %lld", (long long)order[i]);
    }
    cr_assert_eq(hookd_offsets_outstanding(ot, 0), 6);
    hookd_offsets_ack(ot, 0, 1, 0);
    cr_assert_eq(hookd_offsets_committable(ot, 0), 2); /* 2 is still open */
    cr_assert_eq(hookd_offsets_outstanding(ot, 0), 4);
    hookd_offsets_ack(ot, 0, 1, 2);
    cr_assert_eq(hookd_offsets_committable(ot, 0), 6);
    cr_assert_eq(hookd_offsets_outstanding(ot, 0), 0);
}

Test(offsets, two_record_outcome_needs_both_acks)
{
    hookd_offsets_assign(ot, 1, 1);
    hookd_offsets_track(ot, 1, 1, 100);
    hookd_offsets_track(ot, 1, 1, 101);
    hookd_offsets_expect(ot, 1, 1, 100, 2); /* result + dead letter */
    hookd_offsets_expect(ot, 1, 1, 101, 1);
    hookd_offsets_ack(ot, 1, 1, 101);
    hookd_offsets_ack(ot, 1, 1, 100);
    cr_assert_eq(hookd_offsets_committable(ot, 1), 100, "one of two records is not durable");
    hookd_offsets_ack(ot, 1, 1, 100);
    cr_assert_eq(hookd_offsets_committable(ot, 1), 102);
    /* A third ack of a finished message is refused, not counted. */
    cr_assert_eq(hookd_offsets_ack(ot, 1, 1, 100), HOOKD_OFFSETS_ERR_UNKNOWN);
}

Test(offsets, ack_before_expect_and_double_expect_are_refused)
{
    hookd_offsets_assign(ot, 0, 1);
    hookd_offsets_track(ot, 0, 1, 5);
    cr_assert_eq(hookd_offsets_ack(ot, 0, 1, 5), HOOKD_OFFSETS_ERR_STATE);
    cr_assert_eq(hookd_offsets_expect(ot, 0, 1, 5, 1), HOOKD_OFFSETS_OK);
    cr_assert_eq(hookd_offsets_expect(ot, 0, 1, 5, 1), HOOKD_OFFSETS_ERR_STATE);
    cr_assert_eq(hookd_offsets_committable(ot, 0), 5);
    cr_assert_eq(hookd_offsets_ack(ot, 0, 1, 6), HOOKD_OFFSETS_ERR_UNKNOWN);
}

/* A retry record refused for good, replaced by result, dead letter and reply. */
Test(offsets, a_replaced_record_adds_its_stand_ins)
{
    hookd_offsets_assign(ot, 2, 4);
    hookd_offsets_track(ot, 2, 4, 7);
    hookd_offsets_track(ot, 2, 4, 8);
    /* before expect: nothing to add to */
    cr_assert_eq(hookd_offsets_expect_more(ot, 2, 4, 7, 2), HOOKD_OFFSETS_ERR_STATE);
    cr_assert_eq(hookd_offsets_expect(ot, 2, 4, 7, 1), HOOKD_OFFSETS_OK);
    cr_assert_eq(hookd_offsets_expect(ot, 2, 4, 8, 0), HOOKD_OFFSETS_OK);
    cr_assert_eq(hookd_offsets_expect_more(ot, 2, 4, 7, 2), HOOKD_OFFSETS_OK); /* 3 now */
    cr_assert_eq(hookd_offsets_expect_more(ot, 2, 5, 7, 1), HOOKD_OFFSETS_ERR_NOT_OWNED);
    cr_assert_eq(hookd_offsets_expect_more(ot, 2, 4, 6, 1), HOOKD_OFFSETS_ERR_UNKNOWN);
    cr_assert_eq(hookd_offsets_expect_more(ot, 2, 4, 7, UINT16_MAX), HOOKD_OFFSETS_ERR_STATE);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(hookd_offsets_ack(ot, 2, 4, 7), HOOKD_OFFSETS_OK);
        cr_assert_eq(hookd_offsets_committable(ot, 2), 7, "%d of 3 acknowledged", i + 1);
    }
    cr_assert_eq(hookd_offsets_ack(ot, 2, 4, 7), HOOKD_OFFSETS_OK);
    cr_assert_eq(hookd_offsets_committable(ot, 2), 9);
    /* done (and popped): too late to add */
    cr_assert_eq(hookd_offsets_expect_more(ot, 2, 4, 7, 1), HOOKD_OFFSETS_ERR_UNKNOWN);
}

/* A done message behind an unfinished one is still tracked: adding to it is refused. */
Test(offsets, a_done_message_takes_no_stand_ins)
{
    hookd_offsets_assign(ot, 0, 1);
    hookd_offsets_track(ot, 0, 1, 0);
    hookd_offsets_track(ot, 0, 1, 1);
    hookd_offsets_expect(ot, 0, 1, 0, 1);
    hookd_offsets_expect(ot, 0, 1, 1, 1);
    hookd_offsets_ack(ot, 0, 1, 1);
    cr_assert_eq(hookd_offsets_expect_more(ot, 0, 1, 1, 1), HOOKD_OFFSETS_ERR_STATE);
    cr_assert_eq(hookd_offsets_ack(ot, 0, 1, 0), HOOKD_OFFSETS_OK);
    cr_assert_eq(hookd_offsets_committable(ot, 0), 2);
}

Test(offsets, zero_acks_is_done_at_once)
{
    hookd_offsets_assign(ot, 0, 1);
    hookd_offsets_track(ot, 0, 1, 0);
    hookd_offsets_expect(ot, 0, 1, 0, 0);
    cr_assert_eq(hookd_offsets_committable(ot, 0), 1);
}

Test(offsets, unfinished_message_is_never_passed)
{
    /* A message never decided (aborted, or dropped at shutdown) holds the
     * position for ever, whatever completes after it. */
    hookd_offsets_assign(ot, 0, 1);
    for (int64_t o = 0; o < 50; o++)
        hookd_offsets_track(ot, 0, 1, o);
    for (int64_t o = 0; o < 50; o++) {
        if (o == 17)
            continue;
        hookd_offsets_expect(ot, 0, 1, o, 1);
        hookd_offsets_ack(ot, 0, 1, o);
    }
    cr_assert_eq(hookd_offsets_committable(ot, 0), 17);
}

Test(offsets, offsets_must_increase)
{
    hookd_offsets_assign(ot, 0, 1);
    cr_assert_eq(hookd_offsets_track(ot, 0, 1, 10), HOOKD_OFFSETS_OK);
    cr_assert_eq(hookd_offsets_track(ot, 0, 1, 10), HOOKD_OFFSETS_ERR_ORDER);
    cr_assert_eq(hookd_offsets_track(ot, 0, 1, 9), HOOKD_OFFSETS_ERR_ORDER);
    cr_assert_eq(hookd_offsets_track(ot, 0, 1, 12), HOOKD_OFFSETS_OK); /* gap: compaction */
    hookd_offsets_expect(ot, 0, 1, 10, 0);
    cr_assert_eq(hookd_offsets_committable(ot, 0), 12);
    hookd_offsets_expect(ot, 0, 1, 12, 0);
    cr_assert_eq(hookd_offsets_committable(ot, 0), 13);
}

Test(offsets, revoke_ignores_late_reports_of_the_old_epoch)
{
    hookd_offsets_assign(ot, 2, 1);
    hookd_offsets_track(ot, 2, 1, 0);
    hookd_offsets_track(ot, 2, 1, 1);
    hookd_offsets_expect(ot, 2, 1, 0, 1);
    hookd_offsets_expect(ot, 2, 1, 1, 1);
    hookd_offsets_revoke(ot, 2);
    cr_assert_eq(hookd_offsets_committable(ot, 2), -1);
    cr_assert_eq(hookd_offsets_ack(ot, 2, 1, 0), HOOKD_OFFSETS_ERR_NOT_OWNED);
    cr_assert_eq(hookd_offsets_track(ot, 2, 1, 2), HOOKD_OFFSETS_ERR_NOT_OWNED);

    /* Re-assigned later (epoch 2): redelivered from the committed offset 0. */
    hookd_offsets_assign(ot, 2, 2);
    hookd_offsets_track(ot, 2, 2, 0);
    hookd_offsets_track(ot, 2, 2, 1);
    hookd_offsets_expect(ot, 2, 2, 0, 1);
    hookd_offsets_expect(ot, 2, 2, 1, 1);
    /* The old owner's late delivery reports must not count. */
    cr_assert_eq(hookd_offsets_ack(ot, 2, 1, 0), HOOKD_OFFSETS_ERR_NOT_OWNED);
    cr_assert_eq(hookd_offsets_ack(ot, 2, 1, 1), HOOKD_OFFSETS_ERR_NOT_OWNED);
    cr_assert_eq(hookd_offsets_committable(ot, 2), 0);
    cr_assert_eq(hookd_offsets_ack(ot, 2, 2, 1), HOOKD_OFFSETS_OK);
    cr_assert_eq(hookd_offsets_committable(ot, 2), 0);
    cr_assert_eq(hookd_offsets_ack(ot, 2, 2, 0), HOOKD_OFFSETS_OK);
    cr_assert_eq(hookd_offsets_committable(ot, 2), 2);
}

Test(offsets, partitions_are_independent)
{
    hookd_offsets_assign(ot, 0, 1);
    hookd_offsets_assign(ot, 9, 2);
    hookd_offsets_track(ot, 0, 1, 0);
    hookd_offsets_track(ot, 9, 2, 0);
    cr_assert_eq(hookd_offsets_track(ot, 9, 1, 1), HOOKD_OFFSETS_ERR_NOT_OWNED, "wrong epoch");
    hookd_offsets_expect(ot, 9, 2, 0, 1);
    hookd_offsets_ack(ot, 9, 2, 0);
    cr_assert_eq(hookd_offsets_committable(ot, 9), 1);
    cr_assert_eq(hookd_offsets_committable(ot, 0), 0);
    cr_assert_eq(hookd_offsets_committable(ot, 5), -1);
}

Test(offsets, collect_reports_moved_partitions_once)
{
    hookd_offsets_pos_t pos[8];
    hookd_offsets_assign(ot, 0, 1);
    hookd_offsets_assign(ot, 1, 1);
    hookd_offsets_track(ot, 0, 1, 0);
    hookd_offsets_track(ot, 1, 1, 0);
    cr_assert_eq(hookd_offsets_collect(ot, pos, 8, 0), 0, "nothing moved yet");
    hookd_offsets_expect(ot, 1, 1, 0, 1);
    hookd_offsets_ack(ot, 1, 1, 0);
    cr_assert_eq(hookd_offsets_collect(ot, pos, 8, 0), 1);
    cr_assert_eq(pos[0].partition, 1);
    cr_assert_eq(pos[0].offset, 1);
    cr_assert_eq(hookd_offsets_collect(ot, pos, 8, 0), 0, "reported once");
    cr_assert_eq(hookd_offsets_collect(ot, pos, 8, 1), 2, "all: every owned partition");
    cr_assert_eq(pos[0].partition, 0);
    cr_assert_eq(pos[0].offset, 0);
}

Test(offsets, collect_respects_max)
{
    hookd_offsets_pos_t pos[2];
    for (int32_t p = 0; p < 5; p++) {
        hookd_offsets_assign(ot, p, 1);
        hookd_offsets_track(ot, p, 1, 0);
        hookd_offsets_expect(ot, p, 1, 0, 0);
    }
    size_t total = 0, n;
    while ((n = hookd_offsets_collect(ot, pos, 2, 0)) > 0) {
        cr_assert_leq(n, 2);
        total += n;
    }
    cr_assert_eq(total, 5);
}

/* Many messages, acknowledged in a shuffled order: after every ack the
 * position equals the lowest unacknowledged offset (checked naively). */
Test(offsets, random_order_matches_a_naive_model)
{
    enum { N = 5000 };
    static int64_t order[N];
    static unsigned char acked[N];
    srand(12345);
    hookd_offsets_assign(ot, 0, 1);
    for (int64_t o = 0; o < N; o++) {
        cr_assert_eq(hookd_offsets_track(ot, 0, 1, o * 2), HOOKD_OFFSETS_OK); /* gaps */
        hookd_offsets_expect(ot, 0, 1, o * 2, 1);
        order[o] = o;
    }
    for (int i = N - 1; i > 0; i--) {
        int j = rand() % (i + 1);
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int64_t lowest = 0;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(hookd_offsets_ack(ot, 0, 1, order[i] * 2), HOOKD_OFFSETS_OK);
        acked[order[i]] = 1;
        while (lowest < N && acked[lowest])
            lowest++;
        int64_t want = lowest < N ? lowest * 2 : (N - 1) * 2 + 1;
        cr_assert_eq(hookd_offsets_committable(ot, 0), want, "step %d", i);
    }
    cr_assert_eq(hookd_offsets_outstanding(ot, 0), 0);
}

/* The ring grows while its head is in the middle (wrapped entries kept). */
Test(offsets, ring_growth_keeps_order_when_wrapped)
{
    hookd_offsets_assign(ot, 0, 1);
    int64_t next = 0, low = 0;
    for (int round = 0; round < 20; round++) {
        for (int k = 0; k < 50; k++) {
            hookd_offsets_track(ot, 0, 1, next);
            hookd_offsets_expect(ot, 0, 1, next, 1);
            next++;
        }
        for (int k = 0; k < 30; k++)
            cr_assert_eq(hookd_offsets_ack(ot, 0, 1, low++), HOOKD_OFFSETS_OK);
        cr_assert_eq(hookd_offsets_committable(ot, 0), low);
    }
    while (low < next)
        cr_assert_eq(hookd_offsets_ack(ot, 0, 1, low++), HOOKD_OFFSETS_OK);
    cr_assert_eq(hookd_offsets_committable(ot, 0), next);
}
