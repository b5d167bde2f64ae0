#!/usr/bin/env python3
"""The peer a user would otherwise write: acme-hookd's job in Python with
confluent-kafka, done carefully (at-least-once, per-partition commit
watermark, dead letters for bad input), with a no-op pre_hook.

    py_worker.py -c FILE            the [kafka]/[worker]/[Hooks] keys of acme-hookd's INI
    py_worker.py --bootstrap B --group G --input T --result R --dlq D [--worker-id W]

It is the benchmark's comparison point, and it reads acme-hookd's config
format so the integration harness can be checked against it too.
"""
import argparse
import collections
import configparser
import json
import signal
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer

REQUIRED = {
    "acme.enrollment.requested": ("certificate_name", "order_name", "csr"),
    "acme.enrollment.issued": ("certificate_name", "order_name", "csr", "certificate",
                               "certificate_raw"),
    "acme.enrollment.failed": ("certificate_name", "order_name", "csr", "error"),
}
MAX_EVENT_BYTES = 1024 * 1024


class Hooks:
    """acme2certifier's Hooks class, doing nothing (or sleeping, for tests)."""

    def __init__(self, sleep_ms=0):
        self.sleep = sleep_ms / 1000.0

    def pre_hook(self, certificate_name, order_name, csr):
        if self.sleep:
            time.sleep(self.sleep)

    def success_hook(self, certificate_name, order_name, csr, certificate, certificate_raw,
                     poll_identifier):
        if self.sleep:
            time.sleep(self.sleep)

    def post_hook(self, certificate_name, order_name, csr, error):
        if self.sleep:
            time.sleep(self.sleep)


def load_config(args):
    conf = {"rdkafka": {}, "consumer": {}, "producer": {}}
    if args.config:
        ini = configparser.ConfigParser(interpolation=None)
        ini.optionxform = str
        ini.read(args.config)
        k = ini["kafka"] if ini.has_section("kafka") else {}
        w = ini["worker"] if ini.has_section("worker") else {}
        h = ini["Hooks"] if ini.has_section("Hooks") else {}
        args.bootstrap = k.get("bootstrap_servers", args.bootstrap)
        args.group = k.get("group_id", args.group)
        args.input = k.get("input_topic", args.input)
        args.result = k.get("result_topic", args.result)
        args.dlq = k.get("dead_letter_topic", args.dlq)
        args.worker_id = w.get("worker_id", args.worker_id)
        args.sleep_ms = int(h.get("slow_sleep_ms", "0")) if "slow_test" in h.get(
            "hooks_file", "") or "slow_test.so" in h.get("hooks_file", "") else 0
        global MAX_EVENT_BYTES
        MAX_EVENT_BYTES = int(w.get("max_event_bytes", MAX_EVENT_BYTES))
        for key, value in k.items():
            for prefix in ("consumer.rdkafka.", "producer.rdkafka.", "rdkafka."):
                if key.startswith(prefix):
                    conf[prefix.split(".")[0] if prefix != "rdkafka." else "rdkafka"][
                        key[len(prefix):]] = value
                    break
    return conf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-c", "--config")
    ap.add_argument("--bootstrap", default="localhost:9092")
    ap.add_argument("--group", default="acme-hookd-py")
    ap.add_argument("--input", default="acme.enrollment")
    ap.add_argument("--result", default="acme.enrollment.result")
    ap.add_argument("--dlq", default="acme.enrollment.dlq")
    ap.add_argument("--worker-id", default="py-worker")
    ap.add_argument("--sleep-ms", type=int, default=0)
    args = ap.parse_args()
    extra = load_config(args)

    cconf = {"bootstrap.servers": args.bootstrap, "group.id": args.group,
             "enable.auto.commit": True, "enable.auto.offset.store": False,
             "auto.commit.interval.ms": 1000, "auto.offset.reset": "earliest",
             "partition.assignment.strategy": "cooperative-sticky"}
    pconf = {"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "linger.ms": 5}
    cconf.update(extra["rdkafka"]); cconf.update(extra["consumer"])
    pconf.update(extra["rdkafka"]); pconf.update(extra["producer"])

    hooks = Hooks(args.sleep_ms)
    # Per input partition: offsets in consume order, and the ones whose outputs are durable.
    inflight = collections.defaultdict(collections.deque)
    done = collections.defaultdict(set)
    pending = {}  # (partition, offset) -> outstanding deliveries
    stop = []

    consumer = Consumer(cconf)
    producer = Producer(pconf)

    def on_revoke(c, parts):
        # Finish what is in flight and commit it before the partitions go.
        producer.flush(30)
        try:
            c.commit(asynchronous=False)
        except KafkaException:
            pass
        for tp in parts:
            inflight.pop(tp.partition, None)
            done.pop(tp.partition, None)

    consumer.subscribe([args.input], on_revoke=on_revoke)

    def finish(partition, offset):
        done[partition].add(offset)
        q = inflight[partition]
        last = None
        while q and q[0] in done[partition]:
            last = q.popleft()
            done[partition].discard(last)
        if last is not None:
            from confluent_kafka import TopicPartition
            try:
                consumer.store_offsets(offsets=[TopicPartition(args.input, partition, last + 1)])
            except KafkaException:
                pass  # partition revoked meanwhile: the next owner redoes it

    def make_cb(msg, partition, offset, value, key, headers):
        def cb(err, _m):
            if err is not None:
                # Not durable: publish again until it is (never skip).
                producer.produce(_m.topic(), value=value, key=key, headers=headers,
                                 on_delivery=cb)
                return
            pending[(partition, offset)] -= 1
            if pending[(partition, offset)] == 0:
                del pending[(partition, offset)]
                finish(partition, offset)
        return cb

    def publish(msg, outputs):
        p, o = msg.partition(), msg.offset()
        pending[(p, o)] = len(outputs)
        for topic, key, value, headers in outputs:
            cb = make_cb(msg, p, o, value, key, headers)
            while True:
                try:
                    producer.produce(topic, value=value, key=key, headers=headers, on_delivery=cb)
                    break
                except BufferError:
                    producer.poll(0.05)

    def result(msg, ev_id, order, verdict, runs, error=None):
        value = json.dumps({
            "event_id": ev_id, "verdict": verdict, "runs": runs, "error": error,
            "input": {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset()},
            "worker_id": args.worker_id,
        }).encode()
        headers = [("ce_specversion", b"1.0"), ("ce_id", str(uuid.uuid4()).encode()),
                   ("ce_source", ("urn:py-worker:" + args.worker_id).encode()),
                   ("ce_type", ("acme.hookd.result." + verdict).encode()),
                   ("ce_subject", (order or "").encode()),
                   ("content-type", b"application/json"),
                   ("hookd_event_id", (ev_id or "").encode())]
        return (args.result, msg.key() or (order or "").encode(), value, headers)

    def dead_letter(msg, reason):
        headers = list(msg.headers() or []) + [
            ("hookd.dlq.error_class", b"invalid_event"),
            ("__connect.errors.topic", msg.topic().encode()),
            ("__connect.errors.partition", str(msg.partition()).encode()),
            ("__connect.errors.offset", str(msg.offset()).encode()),
            ("__connect.errors.exception.message", reason.encode()[:1024]),
        ]
        return (args.dlq, msg.key(), msg.value(), headers)

    def handle(msg):
        raw = msg.value()
        inflight[msg.partition()].append(msg.offset())
        ev = None
        try:
            if raw is None or len(raw) > MAX_EVENT_BYTES:
                raise ValueError("no value or too large")
            ev = json.loads(raw)
            if not isinstance(ev, dict):
                raise ValueError("not an object")
            fields = REQUIRED.get(ev.get("type"))
            if not fields or not isinstance(ev.get("id"), str) or any(
                    not isinstance(ev.get(f), str) for f in fields):
                raise ValueError("schema")
        except (ValueError, UnicodeDecodeError) as e:
            outs = [dead_letter(msg, str(e))]
            if isinstance(ev, dict) and isinstance(ev.get("id"), str):
                outs.append(result(msg, ev["id"], ev.get("order_name"), "failed", [], str(e)))
            publish(msg, outs)
            return
        t0 = time.monotonic()
        if ev["type"] == "acme.enrollment.requested":
            hooks.pre_hook(ev["certificate_name"], ev["order_name"], ev["csr"])
            phase = "pre"
        elif ev["type"] == "acme.enrollment.issued":
            hooks.success_hook(ev["certificate_name"], ev["order_name"], ev["csr"],
                               ev["certificate"], ev["certificate_raw"],
                               ev.get("poll_identifier"))
            hooks.post_hook(ev["certificate_name"], ev["order_name"], ev["csr"], None)
            phase = "success"
        else:
            hooks.post_hook(ev["certificate_name"], ev["order_name"], ev["csr"], ev["error"])
            phase = "post"
        runs = [{"phase": phase, "handler": "noop", "outcome": "ok", "attempts": 1,
                 "duration_us": int((time.monotonic() - t0) * 1e6)}]
        publish(msg, [result(msg, ev["id"], ev["order_name"], "completed", runs)])

    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    while not stop:
        # Wait for the first message only, then take what is there (no batch-filling delay).
        first = consumer.poll(0.1)
        msgs = [first] + consumer.consume(num_messages=499, timeout=0) if first else []
        for msg in msgs:
            if msg.error():
                continue
            handle(msg)
        producer.poll(0)
    producer.flush(30)
    try:
        consumer.commit(asynchronous=False)
    except KafkaException:
        pass
    consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
