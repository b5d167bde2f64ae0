# SPDX-License-Identifier: MIT
"""Crash with [kafka] delivery = exactly_once and [worker] ordering = key:
test_crash's scenario (poison included, at least 5 SIGKILLs at random
moments) on 3,000 events sharing 40 keys over 8 partitions, 8 handler
threads, and a handler chain whose time varies per event: slow_test
sleeps 0..20 ms by a hash of the event id (slow_sleep_spread_ms) before
exception_test fails the post hook as in test_crash (the same dead letters
are due). Several keys of a partition run at once and later events often
finish first, so outcomes must wait for the earlier events of their
partition (the outcome sequencer) or a transaction would hold results
above the offsets it commits, redone and visible twice after a kill.

The last 18% of the stream is held back until the kills are done and
handed out 30 messages at a time to incarnations that have nothing to do
(test_crash's reserve, sized for a short stream: 540 messages last for 6
incarnations taking three hand-outs each).

Judged like test_crash_eos: a read_committed reader of the result and
dead-letter topics finds every outcome exactly once (0 missing, 0
duplicate results, 0 duplicate dead letters), and the last incarnation
commits every input offset.
"""
import os

import faults
import hookd_e2e as e
import test_crash


def main():
    slow = os.environ.get("HOOKD_SLOW_HANDLER")
    e.check(slow and os.path.exists(slow),
            "HOOKD_SLOW_HANDLER (%r) is not the slow_test handler: build the tests first" % slow)
    hooks = dict(faults.FAULT_HOOKS)
    hooks.update({"hooks_file": "%s, exception_test" % slow, "slow_sleep_ms": 0,
                  "slow_sleep_spread_ms": 20})
    test_crash.scenario("exactly_once", events=3000, keyed=40,
                        worker={"threads": 8, "ordering": "key"}, hooks=hooks,
                        name="crash-eos-keyed", hold=0.82, more=30)


if __name__ == "__main__":
    e.run(main)
