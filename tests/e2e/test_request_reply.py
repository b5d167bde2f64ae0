# SPDX-License-Identifier: MIT
"""Request-reply and flags carried by events, end to end on a real broker.

A requester (Spring Kafka's ReplyingKafkaTemplate, or the acme2certifier
bridge) sends an event with kafka_replyTopic, kafka_replyPartition (4-byte
big-endian) and kafka_correlationId; the worker writes the result to the
result topic as always and, when the reply topic is in its [kafka]
reply_topics, to that topic and partition as well, with the correlation id
copied. With [worker] trust_event_flags the event's hookd.flags header
decides the verdict instead of the worker's own flags.

The chain is exception_test alone, failing pre (the worker's own flags are
the defaults: a pre failure is not allowed). Per event the test checks the
reply (topic, partition, correlation id, verdict, runs, error text masked
unless hook_error_details_forward), the result and the dead letters; a
reply topic outside the allow-list and a reply partition that does not
exist get no reply and hold nothing: after a graceful stop every input
offset is committed. A second worker without trust_event_flags decides
under its own flags whatever the event says.
"""
import json
import struct
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

import hookd_e2e as e

REPLY_PARTITIONS = 4


def corr():
    return uuid.uuid4().bytes


def request(name, flags=None, reply_topic=None, partition=None, correlation=None):
    value, headers = e.encode(e.REQUESTED, "rr-" + name, e.fields(e.REQUESTED, name, None))
    if reply_topic is not None:
        headers.append(("kafka_replyTopic", reply_topic.encode()))
    if partition is not None:
        headers.append(("kafka_replyPartition", struct.pack(">i", partition)))
    if correlation is not None:
        headers.append(("kafka_correlationId", correlation))
    if flags is not None:
        headers.append(("hookd.flags", flags.encode()))
    return value, headers


def main():
    topics = e.Topics("rr", partitions=2)
    reply = e.unique("rr.reply")
    other = e.unique("rr.other")
    e.create_topics({reply: REPLY_PARTITIONS, other: 1})
    hooks = {"hooks_file": "exception_test", "raise_pre_hook_exception": True}
    w = e.Worker("rr", topics, hooks, kafka={"reply_topics": reply},
                 worker={"trust_event_flags": True}).start()

    c = {n: corr() for n in ("allowed", "denied", "details", "default", "nopart", "badflags",
                             "ghost", "refused")}
    cases = {
        # name: (flags, reply topic, partition)
        "allowed": ("allow_pre_hook_failure=true", reply, 2),
        "denied": ("ignore_pre_hook_failure=False,hook_error_details_forward=False", reply, 1),
        "details": ("allow_pre_hook_failure=false,hook_error_details_forward=true", reply, 3),
        "default": (None, reply, 0),
        "nopart": ("allow_pre_hook_failure=yes", reply, None),
        "badflags": ("allow_pre_hook_failure=maybe", reply, 0),
        "ghost": ("allow_pre_hook_failure=true", reply, 99),  # no such partition
        "refused": ("allow_pre_hook_failure=true", other, 0),  # not in the allow-list
    }
    p = e.Produce()
    for name, (flags, rt, part) in cases.items():
        value, headers = request(name, flags, rt, part, c[name])
        p.send(topics.input, value, key=name.encode(), headers=headers)
    p.flush()

    results = e.Reader(topics.result).until(lambda ms: len(ms) >= len(cases), 60,
                                            "a result per event")
    by_id = {e.result_input_id(m): m.json() for m in results}
    e.check(len(by_id) == len(cases), "results: %s" % sorted(by_id))

    expect_replies = {n for n in cases if n not in ("ghost", "refused")}
    replies = e.Reader(reply).until(lambda ms: len(ms) >= len(expect_replies), 60,
                                    "a reply per allowed request")
    got = {}
    for m in replies:
        got.setdefault(m.key, []).append(m)
    e.check(set(got) == expect_replies, "replies for %s, expected %s" % (sorted(got), sorted(expect_replies)))
    for name in expect_replies:
        e.check(len(got[name]) == 1, "%s: %d replies" % (name, len(got[name])))

    # Raw reads for the correlation id bytes (the Reader decodes headers as text).
    rc = Consumer({"bootstrap.servers": e.bootstrap(), "group.id": e.unique("rr.raw"),
                   "enable.auto.commit": False})
    rc.assign([TopicPartition(reply, i, OFFSET_BEGINNING) for i in range(REPLY_PARTITIONS)])
    raw = {}
    while len(raw) < len(expect_replies):
        for m in rc.consume(100, timeout=1.0):
            e.check(m.error() is None, str(m.error()))
            raw[m.key().decode()] = (m.partition(), dict(m.headers() or []), json.loads(m.value()))
    rc.close()

    for name in expect_replies:
        flags, rt, part = cases[name]
        partition, headers, body = raw[name]
        e.check(headers.get("kafka_correlationId") == c[name],
                "%s: correlation id %r, sent %r" % (name, headers.get("kafka_correlationId"), c[name]))
        if part is not None:
            e.check(partition == part, "%s: reply on partition %d, asked for %d" % (name, partition, part))
        e.check(body["event_id"] == "rr-" + name, "%s: reply for %s" % (name, body["event_id"]))
        res = by_id["rr-" + name]
        if name in ("allowed", "nopart"):
            e.check(body["verdict"] == "completed" and res["verdict"] == "completed",
                    "%s: the event's flag allows the pre failure: %s" % (name, body))
            e.check(body["runs"][0]["failure_allowed"] is True, "%s: %s" % (name, body["runs"]))
        elif name == "badflags":
            e.check(body["verdict"] == "failed" and body["error_class"] == "invalid_event"
                    and "hookd.flags" in body["error"], "badflags: %s" % body)
            e.check(body["runs"] == [], "badflags ran hooks: %s" % body["runs"])
        else:
            e.check(body["verdict"] == "failed" and body["error_class"] == "hook_failed",
                    "%s: the pre failure is not allowed: %s" % (name, body))
        # The handler's text reaches the requester only with details forward on;
        # the result topic always has it.
        if name != "badflags":
            want = "raise_pre_hook_exception" if name == "details" else "pre-hook failed"
            e.check(body["runs"][0]["error"] == want, "%s: reply error %r, expected %r"
                    % (name, body["runs"][0]["error"], want))
            e.check(res["runs"][0]["error"] == "raise_pre_hook_exception",
                    "%s: result error %r" % (name, res["runs"][0]["error"]))

    # The ghost and refused requests: processed (results above), no reply, logged.
    e.check(by_id["rr-ghost"]["verdict"] == "completed" and by_id["rr-refused"]["verdict"] == "completed",
            "ghost/refused results: %s %s" % (by_id["rr-ghost"], by_id["rr-refused"]))
    w.wait_log(r"reply to %s \[99\] not delivered: .*given up" % reply, 60)
    w.wait_log(r"no reply: topic '%s' is not in \[kafka\] reply_topics" % other, 10)
    e.check(e.end_offsets(other) == {0: 0}, "something was written to the refused topic")

    dlq = e.Reader(topics.dlq).until(lambda ms: len(ms) >= 4, 60, "dead letters")
    dead = sorted(m.key for m in dlq)
    e.check(dead == ["badflags", "default", "denied", "details"], "dead letters: %s" % dead)

    # A second worker that does not trust event flags: its own decide.
    t2 = e.Topics("rr2", partitions=1)
    w2 = e.Worker("rr2", t2, hooks, kafka={"reply_topics": reply}).start()
    value, headers = request("untrusted", "allow_pre_hook_failure=true", reply, 0, corr())
    p.send(t2.input, value, key=b"untrusted", headers=headers)
    p.flush()
    r2 = e.Reader(t2.result).until(lambda ms: len(ms) >= 1, 60, "the untrusted result")[0].json()
    e.check(r2["verdict"] == "failed" and r2["dead_lettered"],
            "flags honoured without trust_event_flags: %s" % r2)

    # Nothing is held: every input offset is committed after a graceful stop.
    st = e.stop_all([w, w2])
    e.check(all(v == 0 for v in st.values()), "exit statuses %s" % st)
    for t in (topics, t2):
        ends, comm = e.end_offsets(t.input), e.committed(t.group, t.input)
        e.check(comm == ends, "%s: committed %s, end %s" % (t.input, comm, ends))
    e.log("%d requests, %d replies on their partitions with their correlation ids; "
          "flags from events decided; refused and undeliverable replies held nothing"
          % (len(cases), len(expect_replies)))


if __name__ == "__main__":
    e.run(main)
