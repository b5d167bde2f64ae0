# SPDX-License-Identifier: MIT
"""Shared code of the real-broker end-to-end tests.

Every test is a script run by ctest (tests/e2e/CMakeLists.txt) against the
broker that tests/kafka/broker.sh started (fixture `kafka_broker`). The
environment tells where things are:

    HOOKD_KAFKA_STATE   the broker's state directory (broker.env inside)
    HOOKD_BIN           the acme-hookd executable under test
    HOOKD_E2E_WORKDIR   where a test writes its configs, logs and files
    HOOKD_SOURCE_DIR    the source tree

Clients are real and not ours: Python confluent-kafka (and kcat, and the
cloudevents SDKs in the tests that use them). A test calls `run(main)`:
any exception fails it, after printing the tails of the worker logs and
the broker log's path.
"""
import atexit
import base64
import datetime
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("HOOKD_SOURCE_DIR", os.path.normpath(os.path.join(HERE, "..", "..")))
BROKER_SH = os.path.join(SOURCE_DIR, "tests", "kafka", "broker.sh")

RESULT_COMPLETED = "acme.hookd.result.completed"
RESULT_FAILED = "acme.hookd.result.failed"


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def log(msg):
    print("[%s] %s" % (datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3], msg), flush=True)


# ---------------------------------------------------------------- environment

def broker():
    """The state file of the running test broker, as a dict."""
    state = os.environ.get("HOOKD_KAFKA_STATE")
    check(state, "HOOKD_KAFKA_STATE is not set: run through ctest (fixture kafka_broker) "
                 "or tests/kafka/broker.sh start")
    path = os.path.join(state, "broker.env")
    check(os.path.exists(path), "no broker state at %s: the kafka_broker fixture did not run" % path)
    env = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k:
                env[k] = v
    return env


def bootstrap():
    return broker()["KAFKA_BOOTSTRAP"]


def hookd_bin():
    path = os.environ.get("HOOKD_BIN")
    check(path and os.access(path, os.X_OK),
          "HOOKD_BIN (%r) is not an executable: build acme-hookd first" % path)
    return path


_WORKDIR = None


def workdir():
    """A fresh directory for this test (configs, logs, handler output)."""
    global _WORKDIR
    if _WORKDIR is None:
        base = os.environ.get("HOOKD_E2E_WORKDIR") or os.path.join("/tmp", "acme-hookd-e2e")
        name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
        _WORKDIR = os.path.join(base, name)
        shutil.rmtree(_WORKDIR, ignore_errors=True)
        os.makedirs(_WORKDIR)
    return _WORKDIR


def unique(prefix):
    """A topic / group name no other test (or earlier run) uses."""
    return "%s-%d-%s" % (prefix, os.getpid(), "%08x" % random.getrandbits(32))


def wait_until(cond, timeout, what, interval=0.1):
    """Poll `cond` until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TestFailure("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------- topics

def admin(conf=None):
    c = {"bootstrap.servers": bootstrap()}
    c.update(conf or {})
    return AdminClient(c)


def create_topics(specs):
    """specs: {name: partitions}. Waits until every partition has a leader."""
    a = admin()
    futs = a.create_topics([NewTopic(n, num_partitions=p, replication_factor=1)
                            for n, p in specs.items()], operation_timeout=30)
    for f in futs.values():
        f.result()

    def ready():
        md = a.list_topics(timeout=10)
        for n, p in specs.items():
            t = md.topics.get(n)
            if t is None or t.error is not None or len(t.partitions) != p:
                return False
            if any(pm.leader < 0 for pm in t.partitions.values()):
                return False
        return True
    wait_until(ready, 30, "topics %s" % ", ".join(specs))


class Topics:
    """The three topics of one worker setup, uniquely named."""

    def __init__(self, prefix, partitions=1, result_partitions=None, dlq_partitions=1):
        self.input = unique(prefix + ".in")
        self.result = unique(prefix + ".result")
        self.dlq = unique(prefix + ".dlq")
        self.group = unique(prefix + ".group")
        self.partitions = partitions
        create_topics({self.input: partitions,
                       self.result: result_partitions or partitions,
                       self.dlq: dlq_partitions})


# ---------------------------------------------------------------- certificates

class Pki:
    """CSRs and certificates for the events, made with the openssl CLI.

    One EC key signs every CSR; each CSR carries its own SAN
    (DNS:<name>.test), so a line that cn_dump writes names its event."""

    def __init__(self, directory=None):
        self.dir = directory or os.path.join(workdir(), "pki")
        os.makedirs(self.dir, exist_ok=True)
        self.key = os.path.join(self.dir, "key.pem")
        if not os.path.exists(self.key):
            subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-out", self.key], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._cache = {}

    def san(self, name):
        return "%s.test" % name

    def make(self, name):
        """(csr_b64, certificate_pem, certificate_raw_b64) for `name`."""
        if name in self._cache:
            return self._cache[name]
        csr = os.path.join(self.dir, name + ".csr.der")
        crt = os.path.join(self.dir, name + ".crt.der")
        subprocess.run(["openssl", "req", "-new", "-key", self.key, "-subj", "/CN=" + self.san(name),
                        "-addext", "subjectAltName=DNS:" + self.san(name), "-outform", "DER",
                        "-out", csr], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["openssl", "x509", "-req", "-inform", "DER", "-in", csr, "-signkey", self.key,
                        "-days", "2", "-copy_extensions", "copy", "-outform", "DER", "-out", crt],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(csr, "rb") as f:
            csr_der = f.read()
        with open(crt, "rb") as f:
            crt_der = f.read()
        b64 = base64.b64encode(crt_der).decode()
        pem = "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % "\n".join(
            b64[i:i + 64] for i in range(0, len(b64), 64))
        out = (base64.b64encode(csr_der).decode(), pem, base64.b64encode(crt_der).decode())
        self._cache[name] = out
        return out


# ---------------------------------------------------------------- events

REQUESTED = "acme.enrollment.requested"
ISSUED = "acme.enrollment.issued"
FAILED = "acme.enrollment.failed"


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fields(etype, name, pki, error="enrollment failed"):
    """The enrollment fields of an event of type `etype` about `name`."""
    csr, pem, raw = pki.make(name) if pki else (base64.b64encode(b"not-a-csr").decode(), None, None)
    f = {"certificate_name": "cert-" + name, "order_name": name, "csr": csr}
    if etype == ISSUED:
        check(pki is not None, "issued events need a certificate")
        f.update({"certificate": pem, "certificate_raw": raw, "poll_identifier": None})
    elif etype == FAILED:
        f["error"] = error
    return f


def encode(etype, event_id, flds, fmt="plain"):
    """One input message: (value bytes, headers list) in the given wire form:
    plain, structured (CloudEvents JSON envelope) or binary (ce_* headers)."""
    t = now_rfc3339()
    if fmt == "plain":
        body = {"type": etype, "id": event_id, "time": t}
        body.update(flds)
        return json.dumps(body).encode(), []
    if fmt == "structured":
        body = {"specversion": "1.0", "id": event_id, "source": "urn:acme-hookd:e2e", "type": etype,
                "time": t, "datacontenttype": "application/json", "data": flds}
        return json.dumps(body).encode(), [("content-type", b"application/cloudevents+json; charset=UTF-8")]
    if fmt == "binary":
        headers = [("ce_specversion", b"1.0"), ("ce_id", event_id.encode()),
                   ("ce_source", b"urn:acme-hookd:e2e"), ("ce_type", etype.encode()),
                   ("ce_time", t.encode()), ("content-type", b"application/json")]
        return json.dumps(flds).encode(), headers
    raise ValueError(fmt)


class Produce:
    """A real producer; every message must be acknowledged by the broker."""

    def __init__(self, conf=None):
        c = {"bootstrap.servers": bootstrap(), "enable.idempotence": True, "linger.ms": 5}
        c.update(conf or {})
        self.p = Producer(c)
        self.errors = []
        self.acked = 0

    def _dr(self, err, msg):
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acked += 1

    def send(self, topic, value, key=None, headers=None, partition=None):
        kw = {"value": value, "key": key, "headers": headers or None, "on_delivery": self._dr}
        if partition is not None:
            kw["partition"] = partition
        while True:
            try:
                self.p.produce(topic, **kw)
                break
            except BufferError:
                self.p.poll(0.1)
        self.p.poll(0)

    def flush(self, timeout=60):
        left = self.p.flush(timeout)
        check(left == 0, "%d messages not delivered in %d s" % (left, timeout))
        check(not self.errors, "delivery errors: %s" % self.errors[:5])


# ---------------------------------------------------------------- reading topics

class Msg:
    __slots__ = ("topic", "partition", "offset", "key", "value", "headers", "timestamp")

    def __init__(self, m):
        self.topic = m.topic()
        self.partition = m.partition()
        self.offset = m.offset()
        self.key = m.key().decode("utf-8", "replace") if m.key() is not None else None
        self.value = m.value()
        self.headers = {}
        for k, v in (m.headers() or []):
            self.headers[k] = v.decode("utf-8", "replace") if v is not None else None
        self.timestamp = m.timestamp()[1]

    def json(self):
        return json.loads(self.value)

    def __repr__(self):
        return "Msg(%s/%d@%d key=%r headers=%r value=%r)" % (
            self.topic, self.partition, self.offset, self.key, self.headers, (self.value or b"")[:300])


class Reader:
    """Reads a topic from the beginning, every partition, incrementally."""

    def __init__(self, topic, conf=None):
        self.topic = topic
        c = {"bootstrap.servers": bootstrap(), "group.id": unique("reader"),
             "enable.auto.commit": False, "enable.partition.eof": False,
             "fetch.wait.max.ms": 50}
        c.update(conf or {})
        self.c = Consumer(c)
        md = self.c.list_topics(topic, timeout=10)
        parts = md.topics[topic].partitions
        self.c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self.messages = []

    def poll(self, seconds=0.5):
        deadline = time.monotonic() + seconds
        while True:
            batch = self.c.consume(1000, timeout=max(0.0, min(0.2, deadline - time.monotonic())))
            for m in batch:
                if m.error():
                    raise KafkaException(m.error())
                self.messages.append(Msg(m))
            if time.monotonic() >= deadline:
                return self.messages

    def until(self, cond, timeout, what):
        """Read until cond(messages) is true or the deadline passes."""
        def step():
            self.poll(0.3)
            return cond(self.messages)
        wait_until(step, timeout, what, interval=0)
        return self.messages

    def read_to_end(self, timeout=60):
        """Read until every partition's end offset (as of now) is reached."""
        ends = {}
        for p in self.c.list_topics(self.topic, timeout=10).topics[self.topic].partitions:
            ends[p] = self.c.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]

        def reached():
            last = {}
            for m in self.messages:
                last[m.partition] = max(last.get(m.partition, -1), m.offset)
            return all(last.get(p, -1) >= hi - 1 for p, hi in ends.items() if hi > 0)
        if not reached():
            self.until(lambda _ms: reached(), timeout, "%s read to its end offsets %r" % (self.topic, ends))
        return self.messages

    def close(self):
        self.c.close()


def end_offsets(topic):
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": unique("offsets")})
    try:
        md = c.list_topics(topic, timeout=10)
        out = {}
        for p in md.topics[topic].partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            out[p] = hi
        return out
    finally:
        c.close()


def committed(group, topic, conf=None):
    """The group's committed offsets of `topic` ({partition: offset}, -1001 = none)."""
    c = {"bootstrap.servers": bootstrap(), "group.id": group, "enable.auto.commit": False}
    c.update(conf or {})
    cons = Consumer(c)
    try:
        md = cons.list_topics(topic, timeout=10)
        tps = [TopicPartition(topic, p) for p in md.topics[topic].partitions]
        return {tp.partition: tp.offset for tp in cons.committed(tps, timeout=10)}
    finally:
        cons.close()


# ---------------------------------------------------------------- results

def header(msg, *names):
    for n in names:
        if n in msg.headers:
            return msg.headers[n]
    return None


def result_input_id(msg):
    """The input event id a result event carries: the CloudEvents extension
    ce_inputeventid (schemas/result-event.schema.json: also `event_id` in
    the value, checked by the truth table)."""
    return header(msg, "ce_inputeventid")


def result_type(msg):
    return header(msg, "ce_type")


def runs_of(result_msg):
    """The handler runs a result lists: (phase, handler, outcome, failure_allowed)."""
    return [(r.get("phase"), r.get("handler"), r.get("outcome"), r.get("failure_allowed"))
            for r in result_msg.json().get("runs", [])]


# ---------------------------------------------------------------- the worker

_WORKERS = []


def _ini_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Worker:
    """One acme-hookd process with its own config file and log file."""

    def __init__(self, name, topics, hooks, kafka=None, worker=None, extra=None, group=None):
        self.name = name
        self.dir = os.path.join(workdir(), name)
        os.makedirs(self.dir, exist_ok=True)
        self.config = os.path.join(self.dir, "acme-hookd.ini")
        self.log_path = os.path.join(self.dir, "worker.log")
        self.proc = None
        self._termed = None
        self.starts = 0
        k = {"bootstrap_servers": bootstrap(), "group_id": group or topics.group,
             "input_topic": topics.input, "result_topic": topics.result,
             "dead_letter_topic": topics.dlq,
             # A killed member's partitions move after the session timeout:
             # keep it short so fault tests do not wait 45 s per kill.
             "consumer.rdkafka.session.timeout.ms": 4000,
             "consumer.rdkafka.heartbeat.interval.ms": 1000,
             "rdkafka.topic.metadata.refresh.interval.ms": 5000}
        k.update(kafka or {})
        w = {"worker_id": name, "threads": 2, "shutdown_timeout_ms": 20000}
        w.update(worker or {})
        self.sections = {"Hooks": hooks, "kafka": k, "worker": w, "log": {"level": "info"}}
        for s, kv in (extra or {}).items():
            self.sections.setdefault(s, {}).update(kv)
        self.write_config()
        _WORKERS.append(self)

    def write_config(self):
        with open(self.config, "w") as f:
            for s, kv in self.sections.items():
                f.write("[%s]\n" % s)
                for key, value in kv.items():
                    if value is not None:
                        f.write("%s = %s\n" % (key, _ini_value(value)))
                f.write("\n")

    def set(self, section, key, value):
        """Change one key of the config file (takes effect at the next start)."""
        self.sections.setdefault(section, {})[key] = value
        self.write_config()

    def start(self):
        check(self.proc is None or self.proc.poll() is not None, "worker %s already running" % self.name)
        self.starts += 1
        logf = open(self.log_path, "ab")
        logf.write(("---- start %d at %s ----\n" % (self.starts, now_rfc3339())).encode())
        logf.flush()
        self.proc = subprocess.Popen([hookd_bin(), "-c", self.config], stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL: no chance to flush or commit anything."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        return self.proc.returncode

    def stop(self, timeout=40):
        """SIGTERM and wait for the exit; returns the exit status."""
        if self.proc is None:
            return None
        self.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise TestFailure("worker %s did not exit within %d s of SIGTERM" % (self.name, timeout))

    def terminate(self):
        """Send SIGTERM without waiting (see stop_all)."""
        # Once per run: a second SIGTERM could mean "hurry" to a daemon.
        if self.alive() and self._termed is not self.proc:
            self._termed = self.proc
            self.proc.send_signal(signal.SIGTERM)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout, since=0):
        rx = re.compile(pattern)

        def seen():
            check(self.alive(), "worker %s exited (status %s) while waiting for /%s/ in its log"
                  % (self.name, self.proc.returncode if self.proc else None, pattern))
            return rx.search(self.log_text(), since)
        return wait_until(seen, timeout, "/%s/ in %s" % (pattern, self.log_path), interval=0.2)

    def tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])


def stop_all(workers, timeout=40):
    """SIGTERM every worker at once, then wait for each; returns {name: status}."""
    for w in workers:
        w.terminate()
    return {w.name: w.stop(timeout) for w in workers}


def _cleanup():
    for w in _WORKERS:
        if w.alive():
            w.proc.kill()
            w.proc.wait(10)


atexit.register(_cleanup)


def run(main):
    """Run a test's main(); exit 0 on success, 1 with context on failure."""
    t0 = time.monotonic()
    # ctest ends a test that overruns its TIMEOUT with a signal: leave no
    # worker behind (the atexit handler kills them).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    try:
        main()
    except Exception as e:  # every exception fails the test, with context
        traceback.print_exc()
        print("\nFAILED: %s" % e, flush=True)
        for w in _WORKERS:
            print("---- worker %s (log %s), last lines ----" % (w.name, w.log_path))
            print(w.tail())
        try:
            print("broker log: %s" % broker().get("KAFKA_LOG"))
        except TestFailure:
            pass
        _cleanup()
        sys.exit(1)
    _cleanup()
    log("PASSED in %.1f s" % (time.monotonic() - t0))
    sys.exit(0)
