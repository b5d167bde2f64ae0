# SPDX-License-Identifier: MIT
"""Crash with key ordering: test_crash.py's run and judge (SIGKILL at
random moments, at least 5 times; every input must end with its durable
outcome, 0 missing), with [worker] ordering = key, 8 handler threads and
40 keys shared by test_crash.py's 10,000 events over 8 partitions (fewer
would run dry before the last kill): several keys per
partition run in parallel, finish out of offset order, and the commits
must still never pass an event without its outcome.
"""
import hookd_e2e as e
import test_crash

if __name__ == "__main__":
    e.run(lambda: test_crash.scenario(keyed=40,
                                      worker={"threads": 8, "ordering": "key"}))
