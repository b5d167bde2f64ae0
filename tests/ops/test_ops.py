# SPDX-License-Identifier: MIT
"""Operations checks against a running acme-hookd on its embedded Kafka cluster.

    python test_ops.py --binary build/worker/acme-hookd

One worker is started with [http] listen = 127.0.0.1:0 (the port it got is
read from its log), no
bootstrap servers (the embedded mock cluster, whose address the worker
prints on stderr), a chain of two bundled handlers (skeleton, and
exception_test set to ask for one retry in pre and to fail in post, that
failure allowed), secrets in its config and environment, and HMAC result
signing. Then:

- /healthz answers 200; /readyz answers 503 until the consumer has joined
  its group, then 200 "ready".
- Events of every type plus malformed ones are produced with
  confluent-kafka; the results and dead letters are read back from their
  topics.
- /metrics is scraped and parsed with prometheus_client's text parser; the
  counters must add up to what was produced and what came out: events by
  type, handler invocations by phase/handler/outcome, retries, histogram
  counts, results by verdict, dead letters by class, committed offsets and
  lag per partition.
- stderr is one JSON object per line; no secret (SASL password, key
  password, HMAC key material in any encoding) appears in the logs, in
  --check-config's output or in /metrics.
- SIGTERM stops the worker with exit status 0.
"""

import argparse
import base64
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

from confluent_kafka import Consumer, Producer
from prometheus_client.parser import text_string_to_metric_families

ARGS = None

N_REQUESTED, N_ISSUED, N_FAILED, N_MALFORMED = 12, 10, 8, 5
N_TOTAL = N_REQUESTED + N_ISSUED + N_FAILED + N_MALFORMED
HANDLERS = ("skeleton", "exception_test")
# The default names: the documented commands are run as written.
INPUT, RESULT, DLQ = "acme.enrollment", "acme.enrollment.result", "acme.enrollment.dlq"
SHUTDOWN_MS = 15000
WAIT_S = 120  # upper bound for any awaited condition; normally seconds

SASL_PASSWORD = "sasl-" + secrets.token_hex(12)
KEY_PASSWORD = "keypw-" + secrets.token_hex(12)
HMAC_KEY = secrets.token_bytes(32)


def wait_until(what, predicate, timeout=WAIT_S, step=0.1):
    """Poll `predicate` until it returns a true value; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Worker:
    """The worker process; its stderr is collected line by line."""

    def __init__(self, binary, config, env):
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen([binary, "--config", config], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.out = []
        self.threads = [threading.Thread(target=self._read, args=(self.proc.stderr, self.lines),
                                         daemon=True),
                        threading.Thread(target=self._read, args=(self.proc.stdout, self.out),
                                         daemon=True)]
        for t in self.threads:
            t.start()

    def _read(self, stream, sink):
        for raw in iter(stream.readline, b""):
            with self.cond:
                sink.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, regex, timeout=WAIT_S):
        pat = re.compile(regex)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    m = pat.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no stderr line matching {regex!r}; exit status "
                                         f"{self.proc.poll()}; stderr:\n" +
                                         "\n".join(self.lines[-40:]))
                self.cond.wait(min(left, 0.5))

    def stop(self, timeout):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        for t in self.threads:
            t.join(5)
        return rc


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        conn.close()


def try_get(port, path):
    try:
        return get(port, path)
    except OSError:
        return None


def parse_metrics(text):
    """{sample name: {frozenset(labels): value}} from a real Prometheus parser."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return out


def value(metrics, name, **labels):
    return metrics.get(name, {}).get(frozenset(labels.items()), 0)


def total(metrics, name, **match):
    return sum(v for labels, v in metrics.get(name, {}).items()
               if all(dict(labels).get(k) == w for k, w in match.items()))


def make_events():
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    csr = base64.b64encode(b"ops-test-csr-bytes").decode()
    pem = ("-----BEGIN CERTIFICATE-----\n" + base64.b64encode(b"ops-cert").decode() +
           "\n-----END CERTIFICATE-----\n")
    events = []
    for i in range(N_REQUESTED):
        events.append(("acme.enrollment.requested", {
            "type": "acme.enrollment.requested", "id": f"ops-req-{i}", "time": now,
            "certificate_name": f"cert-r{i}", "order_name": f"order-r{i}", "csr": csr}))
    for i in range(N_ISSUED):
        events.append(("acme.enrollment.issued", {
            "type": "acme.enrollment.issued", "id": f"ops-iss-{i}", "time": now,
            "certificate_name": f"cert-i{i}", "order_name": f"order-i{i}", "csr": csr,
            "certificate": pem, "certificate_raw": base64.b64encode(b"der").decode(),
            "poll_identifier": None}))
    for i in range(N_FAILED):
        events.append(("acme.enrollment.failed", {
            "type": "acme.enrollment.failed", "id": f"ops-fail-{i}", "time": now,
            "certificate_name": f"cert-f{i}", "order_name": f"order-f{i}", "csr": csr,
            "error": "urn:ietf:params:acme:error:rejectedIdentifier"}))
    return events


class OpsTest(unittest.TestCase):
    """One worker run; the tests read what it did (they run in name order)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hookd-ops-")
        key_path = os.path.join(cls.tmp.name, "ops.key")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"hex:" + HMAC_KEY.hex().encode() + b"\n")
        os.close(fd)
        cls.config = os.path.join(cls.tmp.name, "ops.ini")
        with open(cls.config, "w") as f:
            f.write(f"""
[Hooks]
hooks_file = {", ".join(HANDLERS)}
allow_pre_hook_failure = false
allow_success_hook_failure = false
allow_post_hook_failure = true
retry_pre_hook_times = 1
raise_post_hook_exception = true

[kafka]
bootstrap_servers =
group_id = ops-{uuid.uuid4().hex[:8]}
input_topic = {INPUT}
result_topic = {RESULT}
dead_letter_topic = {DLQ}
rdkafka.sasl.password = {SASL_PASSWORD}
consumer.rdkafka.statistics.interval.ms = 500

[worker]
threads = 4
shutdown_timeout_ms = {SHUTDOWN_MS}
retry_initial_backoff_ms = 10
retry_max_backoff_ms = 50

[http]
listen = 127.0.0.1:0

[log]
level = debug
format = json

[auth]
sign_results = true
keys = ops:{key_path}
signing_key_id = ops
""")
        cls.env = dict(os.environ)
        cls.env = {k: v for k, v in cls.env.items() if not k.startswith("ACME_HOOKD_")}
        cls.env["ACME_HOOKD_KAFKA_RDKAFKA__SSL__KEY__PASSWORD"] = KEY_PASSWORD

        # --print-config shows the effective configuration: secret keys masked.
        cls.check = subprocess.run([ARGS.binary, "--check-config", cls.config,
                                    "--print-config"],
                                   capture_output=True, text=True, env=cls.env, timeout=60)

        cls.readyz_seen = []
        cls.worker = Worker(ARGS.binary, cls.config, cls.env)
        try:
            cls._run()
        except BaseException:
            cls.exit_status = cls.worker.stop(SHUTDOWN_MS / 1000 + 10)
            sys.stderr.write("worker stderr:\n" + "\n".join(cls.worker.lines[-60:]) + "\n")
            raise

    @classmethod
    def _run(cls):
        w = cls.worker
        # Port 0: the kernel picks a free port; the worker logs which.
        cls.port = int(w.wait_line(r"HTTP endpoint listening on port (\d+)").group(1))
        m = w.wait_line(r"listening on ((?:[\w.\-\[\]]+:\d+)(?:,[\w.\-\[\]]+:\d+)*)")
        cls.bootstrap = m.group(1)

        # Readiness, from the first answer on: 503 until joined, then 200.
        def ready():
            r = try_get(cls.port, "/readyz")
            if r:
                cls.readyz_seen.append((r[0], r[2]))
            return r and r[0] == 200
        wait_until("/readyz 200", ready, step=0.05)
        cls.healthz = get(cls.port, "/healthz")

        p = Producer({"bootstrap.servers": cls.bootstrap, "enable.idempotence": True,
                      "linger.ms": 5, "log_level": 2})
        cls.events = make_events()
        for _, ev in cls.events:
            p.produce(INPUT, key=ev["order_name"].encode(), value=json.dumps(ev).encode())
        for i in range(N_MALFORMED):
            p.produce(INPUT, key=f"bad-{i}".encode(), value=b"{not json " + str(i).encode())
        left = p.flush(30)
        assert left == 0, f"{left} input events not acknowledged by the embedded broker"

        # Read back every result and dead letter.
        c = Consumer({"bootstrap.servers": cls.bootstrap, "group.id": "ops-reader-" +
                      uuid.uuid4().hex[:8], "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "log_level": 2})
        c.subscribe([RESULT, DLQ])
        cls.results, cls.dead = [], []
        want_results = N_REQUESTED + N_ISSUED + N_FAILED
        deadline = time.monotonic() + WAIT_S
        while (len(cls.results) < want_results or len(cls.dead) < N_MALFORMED) \
                and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None or msg.error():
                continue
            (cls.results if msg.topic() == RESULT else cls.dead).append(
                dict((k, v.decode() if v else None) for k, v in (msg.headers() or [])))
        # A little longer: anything beyond the expected count is a duplicate or a stray.
        end = time.monotonic() + 2
        while time.monotonic() < end:
            msg = c.poll(0.2)
            if msg is not None and not msg.error():
                (cls.results if msg.topic() == RESULT else cls.dead).append(
                    dict((k, v.decode() if v else None) for k, v in (msg.headers() or [])))
        c.close()

        # The counters are bumped on delivery reports and the offsets come
        # from periodic statistics: wait until the scrape has caught up.
        def caught_up():
            status, ctype, body = get(cls.port, "/metrics")
            cls.metrics_ctype, cls.metrics_text = ctype, body
            cls.metrics = parse_metrics(body)
            mm = cls.metrics
            committed = total(mm, "hookd_consumer_committed_offset", topic=INPUT)
            results = total(mm, "hookd_results_published_total")
            dead = total(mm, "hookd_dead_letters_total")
            return status == 200 and committed == N_TOTAL and results >= want_results \
                and dead >= N_MALFORMED
        try:
            wait_until("counters and committed offsets to catch up", caught_up, timeout=60,
                       step=0.25)
        except AssertionError:
            pass  # the individual tests say what is off

        cls.healthz_end = get(cls.port, "/healthz")
        cls._run_documented_dead_letter_commands()
        cls.exit_status = w.stop(SHUTDOWN_MS / 1000 + 10)

    @classmethod
    def _run_documented_dead_letter_commands(cls):
        """Run docs/operations.md's kcat reading and replay commands as written.

        The fenced blocks after **Reading** and **Replaying.** are taken from
        the document; only $B, P and O are filled in. One dead letter is
        replayed twice (plain, then with headers); both copies must come
        back to the dead-letter topic with the original key and value.
        """
        cls.doc_cmds = {"error": None}
        if not ARGS.docs or not shutil.which("kcat") or not shutil.which("jq"):
            cls.doc_cmds["error"] = "skip: kcat, jq or --docs missing"
            return
        with open(ARGS.docs) as f:
            doc = f.read()

        def blocks_after(marker, count):
            at = doc.index(marker)
            found = re.findall(r"```\n(.*?)```", doc[at:], re.S)
            return found[:count]

        env = dict(os.environ, B=cls.bootstrap)
        def sh(script, cwd):
            return subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=cwd, env=env,
                                  capture_output=True, text=True, timeout=60)

        c = Consumer({"bootstrap.servers": cls.bootstrap, "group.id": "ops-dlq-" +
                      uuid.uuid4().hex[:8], "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "log_level": 2})
        c.subscribe([DLQ])
        before = []
        while len(before) < N_MALFORMED:
            msg = c.poll(5)
            if msg is None:
                break
            if not msg.error():
                before.append(msg)
        cls.doc_cmds["before"] = len(before)
        if not before:
            cls.doc_cmds["error"] = "no dead letter to replay"
            c.close()
            return
        target = before[0]
        with tempfile.TemporaryDirectory() as work:
            read_all, read_tsv, read_recent = blocks_after("**Reading**", 1)[0].split("\n\n")
            r1, r2, r5 = sh(read_all, work), sh(read_tsv, work), sh(read_recent, work)
            cls.doc_cmds["read_all"] = (r1.returncode, r1.stdout, r1.stderr)
            cls.doc_cmds["read_tsv"] = (r2.returncode, r2.stdout, r2.stderr)
            cls.doc_cmds["read_recent"] = (r5.returncode, r5.stdout, r5.stderr)
            plain, with_headers = blocks_after("**Replaying.**", 2)
            fill = lambda b: b.replace("-p P -o O", f"-p {target.partition()} "
                                                    f"-o {target.offset()}")
            r3 = sh(fill(plain), work)
            r4 = sh(fill(plain).splitlines()[1] + "\n" + fill(with_headers), work)
            cls.doc_cmds["replay"] = [(r.returncode, r.stdout, r.stderr) for r in (r3, r4)]
        after = []
        deadline = time.monotonic() + 60
        while len(after) < 2 and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is not None and not msg.error():
                after.append(msg)
        c.close()
        cls.doc_cmds["target"] = (target.key(), target.value())
        cls.doc_cmds["after"] = [(m.key(), m.value()) for m in after]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    # -- endpoints --------------------------------------------------------

    def test_healthz(self):
        self.assertEqual(self.healthz[0], 200, self.healthz)
        self.assertEqual(self.healthz_end[0], 200, self.healthz_end)

    def test_readyz_flips_after_join(self):
        codes = [c for c, _ in self.readyz_seen]
        self.assertEqual(codes[-1], 200)
        self.assertRegex(self.readyz_seen[-1][1].strip(), r"^ready \(librdkafka \d+\.\d+\.\d+\)$")
        self.assertIn(503, codes, "never saw /readyz not ready before the group join")
        first_ok = codes.index(200)
        self.assertTrue(all(c == 503 for c in codes[:first_ok]), codes)
        for c, body in self.readyz_seen[:first_ok]:
            self.assertRegex(body, r"not ready: .*(group|hooks|broker)", body)

    def test_metrics_content_type(self):
        self.assertRegex(self.metrics_ctype or "", r"^text/plain; version=0\.0\.4")

    # -- counters add up --------------------------------------------------

    def test_results_and_dead_letters_came_out(self):
        self.assertEqual(len(self.results), N_REQUESTED + N_ISSUED + N_FAILED)
        self.assertEqual(len(self.dead), N_MALFORMED)

    def test_events_consumed(self):
        m = self.metrics
        self.assertEqual(total(m, "hookd_events_consumed_total"), N_TOTAL, m.get(
            "hookd_events_consumed_total"))
        for etype, n in (("acme.enrollment.requested", N_REQUESTED),
                         ("acme.enrollment.issued", N_ISSUED),
                         ("acme.enrollment.failed", N_FAILED), ("invalid", N_MALFORMED)):
            self.assertEqual(value(m, "hookd_events_consumed_total", type=etype), n, etype)

    def test_results_by_verdict_match_the_result_topic(self):
        verdicts = {}
        for h in self.results:
            t = h.get("ce_type") or ""
            verdict = "completed" if t.endswith("completed") else \
                "failed" if t.endswith("failed") else t
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
        scraped = {dict(labels)["verdict"]: v for labels, v in
                   self.metrics.get("hookd_results_published_total", {}).items()}
        self.assertEqual(scraped, verdicts)

    def test_dead_letters_by_class(self):
        m = self.metrics
        self.assertEqual(value(m, "hookd_dead_letters_total", error_class="invalid_event"),
                         N_MALFORMED)
        self.assertEqual(total(m, "hookd_dead_letters_total"), len(self.dead))
        classes = [h.get("hookd.dlq.error.class") for h in self.dead]
        self.assertEqual(classes, ["invalid_event"] * N_MALFORMED)

    def test_handler_invocations(self):
        m = self.metrics
        inv = "hookd_handler_invocations_total"
        # pre: skeleton ok; exception_test asks for one retry, then ok.
        self.assertEqual(value(m, inv, phase="pre", handler="skeleton", outcome="ok"),
                         N_REQUESTED, m.get(inv))
        self.assertEqual(value(m, inv, phase="pre", handler="exception_test", outcome="retry"),
                         N_REQUESTED)
        self.assertEqual(value(m, inv, phase="pre", handler="exception_test", outcome="ok"),
                         N_REQUESTED)
        # success: both ok, issued events only.
        for h in HANDLERS:
            self.assertEqual(value(m, inv, phase="success", handler=h, outcome="ok"), N_ISSUED)
        # post: after issued and failed events; exception_test fails (allowed).
        self.assertEqual(value(m, inv, phase="post", handler="skeleton", outcome="ok"),
                         N_ISSUED + N_FAILED)
        self.assertEqual(value(m, inv, phase="post", handler="exception_test", outcome="fail"),
                         N_ISSUED + N_FAILED)
        self.assertEqual(total(m, inv), 3 * N_REQUESTED + 4 * N_ISSUED + 2 * N_FAILED)

    def test_retries(self):
        m = self.metrics
        self.assertEqual(value(m, "hookd_handler_retries_total", phase="pre",
                               handler="exception_test"), N_REQUESTED)
        self.assertEqual(total(m, "hookd_handler_retries_total"), N_REQUESTED)

    def test_duration_histogram_counts_every_invocation(self):
        m = self.metrics
        seen = set()
        for labels in m.get("hookd_handler_invocations_total", {}):
            d = dict(labels)
            seen.add((d["phase"], d["handler"]))
        self.assertTrue(seen)
        for phase, handler in seen:
            inv = total(m, "hookd_handler_invocations_total", phase=phase, handler=handler)
            count = value(m, "hookd_handler_duration_seconds_count", phase=phase,
                          handler=handler)
            self.assertEqual(count, inv, (phase, handler))
            buckets = sorted(((float(dict(l)["le"]), v) for l, v in
                              m["hookd_handler_duration_seconds_bucket"].items()
                              if dict(l)["phase"] == phase and dict(l)["handler"] == handler))
            self.assertEqual(buckets[-1], (float("inf"), count))
            self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))
            self.assertGreaterEqual(value(m, "hookd_handler_duration_seconds_sum", phase=phase,
                                          handler=handler), 0)

    def test_no_publish_errors(self):
        self.assertEqual(value(self.metrics, "hookd_publish_errors_total"), 0)

    def test_committed_offsets_and_lag(self):
        m = self.metrics
        committed = {dict(l)["partition"]: v for l, v in
                     m.get("hookd_consumer_committed_offset", {}).items()
                     if dict(l)["topic"] == INPUT}
        self.assertEqual(sum(committed.values()), N_TOTAL, committed)
        lag = {dict(l)["partition"]: v for l, v in m.get("hookd_consumer_lag", {}).items()
               if dict(l)["topic"] == INPUT}
        self.assertTrue(lag, "no consumer lag series")
        self.assertEqual(set(lag.values()), {0}, lag)
        self.assertNotIn("-1", committed)

    def test_build_info_and_ready(self):
        m = self.metrics
        infos = m.get("hookd_build_info", {})
        self.assertEqual(len(infos), 1, infos)
        (labels, v), = infos.items()
        self.assertEqual(v, 1)
        version = subprocess.run([ARGS.binary, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
        self.assertIn(dict(labels)["version"], version)
        # --version names the librdkafka the binary runs with: the same one.
        self.assertIn("librdkafka %s)" % dict(labels)["librdkafka"], version)
        self.assertEqual(value(m, "hookd_ready"), 1)

    # -- the documented dead-letter commands -------------------------------

    def test_documented_dead_letter_commands(self):
        d = self.doc_cmds
        if d["error"] and d["error"].startswith("skip"):
            self.skipTest(d["error"])
        self.assertIsNone(d["error"])
        rc, out, err = d["read_all"]
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.count("hookd.dlq.error.class=invalid_event"), N_MALFORMED, out)
        rc, out, err = d["read_tsv"]
        self.assertEqual(rc, 0, err)
        rows = [l.split("\t") for l in out.splitlines() if l.strip()]
        self.assertEqual(len(rows), N_MALFORMED, out)
        self.assertTrue(all("invalid_event" in r for r in rows), rows)
        # Start-by-timestamp: the mock cluster answers offset-for-time
        # requests with the end offset, so only the command's syntax is
        # checked here (the real-broker suite can do better).
        rc, out, err = d["read_recent"]
        self.assertEqual(rc, 0, err)
        for rc, out, err in d["replay"]:
            self.assertEqual(rc, 0, err)
        self.assertEqual(d["after"], [d["target"]] * 2,
                         "replayed event did not come back unchanged")

    # -- logs and secrets -------------------------------------------------

    def test_logs_are_json_lines(self):
        bad = []
        for line in self.worker.lines:
            try:
                rec = json.loads(line)
            except ValueError:
                bad.append(line)
                continue
            if not isinstance(rec, dict) or not {"time", "level", "message"} <= rec.keys():
                bad.append(line)
        self.assertEqual(bad, [], "stderr lines that are not JSON log records")
        self.assertGreater(len(self.worker.lines), 0)

    def test_logs_carry_event_context(self):
        recs = [json.loads(l) for l in self.worker.lines if l.startswith("{")]
        dead = [r for r in recs if "dead-letter" in r.get("message", "")]
        self.assertTrue(dead, "no log record about the dead-lettered events")
        for r in dead:
            for key in ("topic", "partition", "offset"):
                self.assertIn(key, r, r)

    def secrets_in(self, text):
        forms = {
            "sasl password": SASL_PASSWORD,
            "key password": KEY_PASSWORD,
            "hmac hex": HMAC_KEY.hex(),
            "hmac HEX": HMAC_KEY.hex().upper(),
            "hmac base64": base64.b64encode(HMAC_KEY).decode(),
            "hmac base64url": base64.urlsafe_b64encode(HMAC_KEY).decode().rstrip("="),
        }
        return [name for name, s in forms.items() if s in text]

    def test_secrets_not_in_logs(self):
        self.assertEqual(self.secrets_in("\n".join(self.worker.lines + self.worker.out)), [])

    def test_secrets_not_in_check_config(self):
        self.assertEqual(self.check.returncode, 0, self.check.stdout + self.check.stderr)
        out = self.check.stdout + self.check.stderr
        self.assertEqual(self.secrets_in(out), [])
        # The keys themselves are shown, masked.
        self.assertIn("sasl.password", out)

    def test_secrets_not_in_metrics(self):
        self.assertEqual(self.secrets_in(self.metrics_text), [])

    def test_secret_check_can_fail(self):
        self.assertEqual(self.secrets_in("x" + SASL_PASSWORD + "x"), ["sasl password"])
        self.assertIn("hmac base64", self.secrets_in(base64.b64encode(HMAC_KEY).decode()))

    # -- shutdown ---------------------------------------------------------

    def test_sigterm_exit_status(self):
        self.assertEqual(self.exit_status, 0, "\n".join(self.worker.lines[-20:]))


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--docs", help="docs/operations.md: its kcat commands are run too")
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
