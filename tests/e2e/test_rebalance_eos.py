# SPDX-License-Identifier: MIT
"""test_rebalance's scenario with [kafka] delivery = exactly_once: a
read_committed reader of the result and dead-letter topics must find every
outcome exactly once (0 missing, 0 duplicates)."""
import hookd_e2e as e
import test_rebalance

if __name__ == "__main__":
    e.run(lambda: test_rebalance.scenario("exactly_once"))
