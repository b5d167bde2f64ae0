# SPDX-License-Identifier: MIT
"""Zombie fencing with [kafka] delivery = exactly_once.

Two workers share the input. Worker A commits a transaction only every
3 s, so it always holds an open one with results in it. A is frozen
(SIGSTOP) past its session timeout: the group gives its partitions to B,
which redoes A's uncommitted events and commits them. Then A resumes
(SIGCONT) as a zombie: its in-flight handlers finish and publish into the
old transaction, and its commit carries a stale group generation (KIP-447)
or finds its partitions lost: A must abort, never commit.

Judged by a read_committed reader: every input's outcome exactly once
(0 missing, 0 duplicates). A read_uncommitted reader shows that A's
zombie records do exist on the topic (otherwise the test proves nothing),
and A's log that it aborted after it resumed.
"""
import signal

from confluent_kafka import TopicPartition

import faults
import hookd_e2e as e

EVENTS = 3000
PARTITIONS = 4
RATE = 250.0
SESSION_MS = 4000


def read_to_end(reader, timeout):
    """Read until the consumer's position reached every partition's end
    offset. (Reader.read_to_end waits for a record at end - 1, which a
    transactional topic need not have: the last offset can be a commit or
    abort marker.)"""
    parts = list(reader.c.list_topics(reader.topic, timeout=10).topics[reader.topic].partitions)
    ends = {p: reader.c.get_watermark_offsets(TopicPartition(reader.topic, p), timeout=10)[1]
            for p in parts}

    def reached():
        reader.poll(0.3)
        pos = reader.c.position([TopicPartition(reader.topic, p) for p in parts])
        return all(tp.offset >= ends[tp.partition] for tp in pos)
    e.wait_until(reached, timeout, "%s read to its end offsets %r" % (reader.topic, ends), interval=0)


def results_by(reader, worker):
    return {(m.partition, m.offset) for m in reader.messages if m.json().get("worker_id") == worker}


def main():
    topics = e.Topics("zombie", partitions=PARTITIONS, dlq_partitions=1)
    stream = faults.Stream(topics.input, EVENTS, RATE, "zombie", partitions=PARTITIONS, poison=6)
    out = faults.Outcomes(stream, topics)
    raw = e.Reader(topics.result, {"isolation.level": "read_uncommitted"})
    common = {"consumer.rdkafka.session.timeout.ms": SESSION_MS}
    a = e.Worker("zombie-a", topics, faults.FAULT_HOOKS,
                 kafka=faults.exactly_once_kafka(dict(common, transaction_interval_ms=3000,
                                                      transaction_max_events=1000000)))
    b = e.Worker("zombie-b", topics, faults.FAULT_HOOKS, kafka=faults.exactly_once_kafka(common))
    stream.hold(0.8)
    stream.start()
    a.start()
    e.wait_until(lambda: (out.poll(), out.done_count() >= EVENTS // 10)[1] or None, 120,
                 "A to commit %d events" % (EVENTS // 10), interval=0)
    b.start()
    b.wait_log(r"kafka: assigned [1-9]", 60)
    # A holds partitions too and has published into its open transaction.
    e.wait_until(lambda: (raw.poll(0.2), len(results_by(raw, a.name) - results_by(out.results, a.name)) > 0)[1]
                 or None, 60, "A to hold uncommitted results", interval=0)
    since_b = len(b.log_text())
    a.proc.send_signal(signal.SIGSTOP)
    e.log("A frozen (SIGSTOP) at %d events done" % out.done_count())
    try:
        # The group moves A's partitions to B once A's session expires.
        e.wait_until(lambda: "assigned" in b.log_text()[since_b:], 60,
                     "B to be assigned A's partitions", interval=0.2)
        done_at = out.done_count()
        e.wait_until(lambda: (out.poll(), out.done_count() >= done_at + 100)[1] or None, 60,
                     "B to commit A's former work", interval=0)
    finally:
        since_a = len(a.log_text())
        a.proc.send_signal(signal.SIGCONT)
    e.log("A resumed (SIGCONT) at %d events done" % out.done_count())
    a.wait_log(r"transaction (aborted|not committed)|replacing the transactional producer", 60,
               since=since_a)
    stream.allow()
    stream.join()
    try:
        out.wait_complete(180, "an outcome for every input")
    finally:
        nr, nd, npz = out.report("zombie")
    e.check(not nr and not nd and not npz, "lost: %d results, %d dead letters, %d poison"
            % (len(nr), len(nd), len(npz)))
    faults.check_exactly_once(out)
    read_to_end(raw, 60)
    hidden = results_by(raw, a.name) - results_by(out.results, a.name)
    e.log("A's records on the topic that read_committed never saw: %d" % len(hidden))
    e.check(hidden, "no aborted record of A on the topic: the zombie was not exercised")
    rcs = e.stop_all([a, b])
    e.check(rcs == {a.name: 0, b.name: 0}, "exit statuses after SIGTERM: %r" % rcs)
    faults.check_committed_all(topics)
    raw.close()
    out.close()


if __name__ == "__main__":
    e.run(main)
