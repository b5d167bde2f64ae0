# SPDX-License-Identifier: MIT
"""Graceful stop: SIGTERM while events flow, then a restart. The worker
must finish what it started, publish, commit and exit 0; the restarted
worker must not redo any event whose result was published before the
first one exited: no duplicates at all among them. Afterwards nothing is
missing.
"""
import faults
import hookd_e2e as e

EVENTS = 6000
PARTITIONS = 4
RATE = 600.0


def main():
    topics = e.Topics("graceful", partitions=PARTITIONS, dlq_partitions=1)
    stream = faults.Stream(topics.input, EVENTS, RATE, "graceful", partitions=PARTITIONS, poison=10)
    out = faults.Outcomes(stream, topics)
    w = e.Worker("graceful", topics, faults.FAULT_HOOKS, worker={"threads": 4})
    stream.start()
    w.start()
    e.wait_until(lambda: (out.poll(), out.done_count() >= EVENTS // 4)[1] or None, 240,
                 "%d events done" % (EVENTS // 4), interval=0)
    e.log("SIGTERM at %d events done, %d produced" % (out.done_count(), stream.produced))
    rc = w.stop()
    e.check(rc == 0, "worker exited with %s after SIGTERM" % rc)

    # Everything the first worker published is in the topic now: read up to
    # the end offsets, then take the set of completed events.
    ends = e.end_offsets(topics.result)

    def caught_up():
        out.poll()
        pos = {}
        for m in out.results.messages:
            pos[m.partition] = max(pos.get(m.partition, -1), m.offset)
        return all(pos.get(p, -1) >= hi - 1 for p, hi in ends.items())
    e.wait_until(caught_up, 60, "the result topic read up to %r" % ends, interval=0)
    before = set(out.result_ids()) & stream.events.keys()
    dup_before = out.duplicates()
    e.log("%d events completed before the stop (%d duplicates)" % (len(before), dup_before))
    e.check(before, "nothing was completed before SIGTERM")
    e.check(dup_before == 0, "%d duplicates before any restart" % dup_before)
    committed = e.committed(topics.group, topics.input)
    e.log("committed after the stop: %r" % committed)

    w.start()
    stream.join()
    try:
        out.wait_complete(240, "an outcome for every input")
    finally:
        nr, nd, npz = out.report("graceful stop")
    e.check(not nr and not nd and not npz, "lost: %d results, %d dead letters, %d poison"
            % (len(nr), len(nd), len(npz)))
    counts = {}
    for i in out.result_ids():
        counts[i] = counts.get(i, 0) + 1
    redone = sorted(i for i in before if counts.get(i, 0) > 1)
    print("graceful stop: completed before SIGTERM=%d, redone after restart=%d" % (len(before), len(redone)))
    e.check(not redone, "%d events completed before SIGTERM were processed again, e.g. %r"
            % (len(redone), redone[:5]))
    rc = w.stop()
    e.check(rc == 0, "worker exited with %s after the second SIGTERM" % rc)
    faults.check_committed_all(topics)
    out.close()


if __name__ == "__main__":
    e.run(main)
