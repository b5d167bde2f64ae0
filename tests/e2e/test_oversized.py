# SPDX-License-Identifier: MIT
"""Oversized inputs never stop a partition.

Two workers with default settings (the producer's message.max.bytes is
librdkafka's 1,000,000):

  big      its input topic accepts 6 MB messages (max.message.bytes raised,
           and the test producer's message.max.bytes too); inputs of 1.3 to
           5 MB, one of them a binary-mode CloudEvent with a readable ce_id;
  default  its input topic has Kafka's default limits; an input of
           1,040,000 bytes (above max_event_bytes and, with the dead-letter
           headers, above message.max.bytes) and one of 990,000 bytes
           (above max_event_bytes, but its dead letter fits whole);
  tight    like default, but the dead-letter topic takes at most 300,000
           bytes: the broker refuses what the producer let through, so
           the dead letters fall back after their delivery report (the
           990,000-byte one cut to a quarter, the 1,040,000-byte one, cut
           already, down to its context headers and an empty value).

A fourth worker, `refused`, publishes to a result topic whose
max.message.bytes (200) is below any result, compacted or not: every
result becomes a dead letter (publish_refused, hookd.dlq.record=result)
whose value is the compacted result, whole, and which is therefore not
marked truncated.

A fifth, `compacted`, runs with [kafka] delivery = exactly_once and a
producer whose message.max.bytes (1500) is below every result of its
events (their order and certificate names are long): the producer refuses
each result before it is queued, the compact form (no names, no runs)
goes into the same transaction, and a read_committed reader finds each
result once, compacted.

Valid events are produced on the same partition behind every oversized
one. Checked: each oversized input gets a dead letter (invalid_event, "too
large") whose value is a prefix of the original, cut when it would not fit,
with hookd.dlq.value_truncated / value_original_bytes / value_sha256 and
the SHA-256 equal to the original's; the 990,000-byte one is whole; every
valid event behind them gets its completed result; the fallback is counted
in the log; SIGTERM exits 0 and the committed offsets reach the end.
"""
import hashlib
import json
import os
import time

from confluent_kafka.admin import NewTopic

import hookd_e2e as e

MB = 1000 * 1000
BIG_SIZES = [1300 * 1000, 2 * MB, 3500 * 1000, 5 * MB]
DEFAULT_SIZES = [1040 * 1000, 990 * 1000]
VALID_BEHIND = 3  # valid events after each oversized one
HOOKS = {"hooks_file": "exception_test"}


def create_input(name, partitions, config):
    a = e.admin()
    fut = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                    config=config)], operation_timeout=30)
    for f in fut.values():
        f.result()


class Setup:
    def __init__(self, tag, sizes, topic_config, producer_conf, dlq_config=None):
        self.tag = tag
        self.topics = e.Topics.__new__(e.Topics)
        self.topics.input = e.unique("ovr-%s.in" % tag)
        self.topics.result = e.unique("ovr-%s.result" % tag)
        self.topics.dlq = e.unique("ovr-%s.dlq" % tag)
        self.topics.group = e.unique("ovr-%s.group" % tag)
        self.topics.partitions = 2
        create_input(self.topics.input, 2, topic_config)
        e.create_topics({self.topics.result: 2})
        create_input(self.topics.dlq, 1, dlq_config or {})
        self.dlq_limit = int((dlq_config or {}).get("max.message.bytes", 1000000))
        self.sizes = sizes
        self.producer = e.Produce(producer_conf)
        self.big = {}    # key -> (value, sha256)
        self.offsets = {}  # key -> input offset (a minimal dead letter has no key)
        self.valid = []  # event ids
        self.worker = e.Worker("ovr-" + tag, self.topics, HOOKS, worker={"threads": 2})

    def produce(self):
        for i, size in enumerate(self.sizes):
            key = "%s-big-%d" % (self.tag, i)
            # incompressible, printable: a producer's junk, not a zero page
            value = os.urandom(size * 3 // 4 + 3).hex().encode()[:size]
            headers = []
            if i == 0:
                headers = [("ce_specversion", b"1.0"), ("ce_id", ("id-" + key).encode()),
                           ("ce_type", e.REQUESTED.encode())]
            self.big[key] = (value, hashlib.sha256(value).hexdigest())
            self.offsets[key] = str(i * (VALID_BEHIND + 1))
            self.producer.send(self.topics.input, value, key=key.encode(), headers=headers,
                               partition=0)
            for j in range(VALID_BEHIND):
                eid = "%s-ok-%d-%d" % (self.tag, i, j)
                v, h = e.encode(e.REQUESTED, eid, e.fields(e.REQUESTED, eid, None))
                self.producer.send(self.topics.input, v, key=eid.encode(), headers=h, partition=0)
                self.valid.append(eid)
        # and some on the other partition, which never had a problem
        for j in range(5):
            eid = "%s-other-%d" % (self.tag, j)
            v, h = e.encode(e.REQUESTED, eid, e.fields(e.REQUESTED, eid, None))
            self.producer.send(self.topics.input, v, key=eid.encode(), headers=h, partition=1)
            self.valid.append(eid)
        self.producer.flush()


def check_dead_letters(s, dlq, limit):
    by_key = {m.key: m for m in dlq}
    by_offset = {m.headers.get("hookd.dlq.offset"): m for m in dlq}
    for key, (value, sha) in s.big.items():
        m = by_key.get(key) or by_offset.get(s.offsets[key])
        e.check(m is not None, "%s: no dead letter (got keys %s)" % (key, sorted(map(str, by_key))))
        m.value = m.value or b""
        h = m.headers
        e.check(h.get("hookd.dlq.error.class") == "invalid_event", "%s: class %r" % (key, h))
        e.check("too large" in (h.get("hookd.dlq.error.message") or "") or
                "bytes, limit" in (h.get("hookd.dlq.error.message") or ""),
                "%s: message %r" % (key, h.get("hookd.dlq.error.message")))
        e.check(h.get("hookd.dlq.partition") == "0", "%s: partition header %r" % (key, h))
        e.check(value.startswith(m.value), "%s: dead-letter value is not a prefix of the input" % key)
        if len(value) + 8192 < limit:
            e.check(m.value == value, "%s: %d bytes cut although they fit" % (key, len(value)))
            e.check("hookd.dlq.value_truncated" not in h, "%s: marked truncated" % key)
            e.log("%s: %d bytes dead-lettered whole" % (key, len(value)))
            continue
        e.check(h.get("hookd.dlq.value_truncated") == "true", "%s: not marked truncated" % key)
        e.check(h.get("hookd.dlq.value_original_bytes") == str(len(value)),
                "%s: original bytes %r, want %d" % (key, h.get("hookd.dlq.value_original_bytes"),
                                                    len(value)))
        e.check(h.get("hookd.dlq.value_sha256") == sha, "%s: sha256 %r, want %s"
                % (key, h.get("hookd.dlq.value_sha256"), sha))
        e.check(len(m.value) < limit, "%s: cut value of %d bytes" % (key, len(m.value)))
        e.log("%s: %d bytes -> dead letter with %d bytes of value, sha256 matches"
              % (key, len(value), len(m.value)))


class Refused:
    """Results the result topic refuses for good: dead letters, whole."""

    def __init__(self):
        self.tag = "refused"
        self.topics = e.Topics.__new__(e.Topics)
        self.topics.input = e.unique("ovr-refused.in")
        self.topics.result = e.unique("ovr-refused.result")
        self.topics.dlq = e.unique("ovr-refused.dlq")
        self.topics.group = e.unique("ovr-refused.group")
        self.topics.partitions = 1
        e.create_topics({self.topics.input: 1, self.topics.dlq: 1})
        create_input(self.topics.result, 1, {"max.message.bytes": "200"})
        self.ids = ["refused-%d" % i for i in range(3)]
        self.worker = e.Worker("ovr-refused", self.topics, HOOKS, worker={"threads": 2})

    def produce(self):
        p = e.Produce()
        for eid in self.ids:
            v, h = e.encode(e.REQUESTED, eid, e.fields(e.REQUESTED, eid, None))
            p.send(self.topics.input, v, key=eid.encode(), headers=h)
        p.flush()

    def check(self):
        dlq = e.Reader(self.topics.dlq)
        dlq.until(lambda ms: len(ms) >= len(self.ids), 90,
                  "%d dead-lettered results" % len(self.ids))
        seen = set()
        for m in dlq.messages:
            h = m.headers
            e.check(h.get("hookd.dlq.error.class") == "publish_refused", "class %r" % h)
            e.check(h.get("hookd.dlq.record") == "result", "record %r" % h)
            e.check("hookd.dlq.value_truncated" not in h,
                    "a whole result marked truncated: %r" % h)
            doc = json.loads(m.value)
            e.check(doc.get("runs") == [], "not the compacted result: %r" % doc)
            seen.add(doc["event_id"])
        e.check(seen == set(self.ids), "dead-lettered results of %r, want %r"
                % (sorted(seen), self.ids))
        e.log("refused: %d results dead-lettered whole, none marked truncated" % len(seen))
        dlq.close()


class Compacted:
    """Exactly-once, with a producer whose message.max.bytes (1500) is below
    every result of these events (their long names): each is refused by the
    producer before it is queued, so its compact form goes into the same
    transaction, and a read_committed reader finds each once, compacted."""

    def __init__(self):
        self.tag = "compacted"
        self.topics = e.Topics("ovr-compacted")
        self.ids = ["compacted-%d" % i for i in range(3)]
        self.worker = e.Worker("ovr-compacted", self.topics, HOOKS, worker={"threads": 2},
                               kafka={"delivery": "exactly_once",
                                      "producer.rdkafka.transaction.timeout.ms": 10000,
                                      "producer.rdkafka.message.max.bytes": 1500})

    def produce(self):
        p = e.Produce()
        for eid in self.ids:
            f = e.fields(e.REQUESTED, eid, None)
            f["order_name"] = eid + "-" + "o" * 600
            f["certificate_name"] = "cert-" + eid + "-" + "c" * 600
            v, h = e.encode(e.REQUESTED, eid, f)
            p.send(self.topics.input, v, key=eid.encode(), headers=h)
        p.flush()

    def check(self):
        results = e.Reader(self.topics.result, {"isolation.level": "read_committed"})
        results.until(lambda ms: set(self.ids) <= {e.result_input_id(m) for m in ms}, 90,
                      "%d compacted results" % len(self.ids))
        got = [e.result_input_id(m) for m in results.messages]
        e.check(sorted(got) == sorted(self.ids), "results %r, want each of %r once"
                % (got, self.ids))
        for m in results.messages:
            doc = m.json()
            e.check(e.result_type(m) == e.RESULT_COMPLETED, "%r" % doc)
            e.check(doc.get("runs") == [] and "order_name" not in doc,
                    "not the compacted result: %r" % doc)
        e.check("publishing it compacted" in self.worker.log_text(), "no fallback logged")
        e.log("compacted: %d results refused by the producer, committed compacted" % len(got))
        results.close()


def main():
    big = Setup("big", BIG_SIZES, {"max.message.bytes": str(6 * MB)},
                {"message.max.bytes": 6 * MB + 100000})
    dflt = Setup("default", DEFAULT_SIZES, {}, {"message.max.bytes": 1048000})
    tight = Setup("tight", DEFAULT_SIZES, {}, {"message.max.bytes": 1048000},
                  {"max.message.bytes": "300000"})
    setups = [big, dflt, tight]
    refused = Refused()
    compacted = Compacted()
    for s in setups + [refused, compacted]:
        s.produce()
    e.log("produced: %d oversized, %d valid" % (sum(len(s.big) for s in setups),
                                                sum(len(s.valid) for s in setups)))
    t0 = time.monotonic()
    for s in setups + [refused, compacted]:
        s.worker.start()

    for s in setups:
        results = e.Reader(s.topics.result)
        dlq = e.Reader(s.topics.dlq, {"fetch.max.bytes": 8 * MB})
        want_ids = set(s.valid)
        results.until(lambda ms: want_ids <= {e.result_input_id(m) for m in ms}, 90,
                      "results of the %d valid events of %s" % (len(want_ids), s.tag))
        dlq.until(lambda ms: len(ms) >= len(s.big), 90, "%d dead letters of %s" % (len(s.big), s.tag))
        elapsed = time.monotonic() - t0
        e.log("%s: every outcome out %.1f s after the worker started" % (s.tag, elapsed))
        for m in results.messages:
            iid = e.result_input_id(m)
            if iid in want_ids:
                e.check(e.result_type(m) == e.RESULT_COMPLETED, "%s: %r" % (iid, m))
        # the binary one had a readable id: its failed result is out too
        first = "%s-big-0" % s.tag
        failed = [m for m in results.messages if e.result_input_id(m) == "id-" + first]
        e.check(failed and failed[0].json()["error_class"] == "invalid_event",
                "%s: failed result of the oversized CloudEvent: %r" % (first, failed))
        check_dead_letters(s, dlq.messages, min(1000000, s.dlq_limit))
        e.check(len(dlq.messages) == len(s.big), "%s: %d dead letters, want %d"
                % (s.tag, len(dlq.messages), len(s.big)))
        results.close()
        dlq.close()

    refused.check()
    compacted.check()

    statuses = e.stop_all([s.worker for s in setups + [refused, compacted]])
    e.check(all(v == 0 for v in statuses.values()), "exit statuses %r" % statuses)
    for s in setups + [refused, compacted]:
        ends = e.end_offsets(s.topics.input)
        got = e.committed(s.topics.group, s.topics.input)
        e.check(got == ends, "%s: committed %r, end offsets %r" % (s.tag, got, ends))
        text = s.worker.log_text()
        e.check("offset held" not in text, "%s: a record was held: %s" % (s.tag, s.worker.tail()))
    e.check("cut to" in big.worker.log_text(), "no fallback logged")
    e.check("refused for good" in tight.worker.log_text(), "no broker refusal logged")


if __name__ == "__main__":
    e.run(main)
