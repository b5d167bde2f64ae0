# SPDX-License-Identifier: MIT
"""Crash with [kafka] delivery = exactly_once: test_crash's scenario
(10,000 events with poison, at least 5 SIGKILLs at random moments), judged
by a read_committed reader of the result and dead-letter topics, which
must find every outcome exactly once: 0 missing, 0 duplicate results,
0 duplicate dead letters."""
import hookd_e2e as e
import test_crash

if __name__ == "__main__":
    e.run(lambda: test_crash.scenario("exactly_once"))
