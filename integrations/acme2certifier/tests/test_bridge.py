# SPDX-License-Identifier: MIT
"""Unit tests of acme_hookd_a2c that need no broker: flags, headers, event
ids and wire form, reply matching, timeouts, the per-process client, the
reply partition claim, and loading through acme2certifier's own loader."""
import base64
import configparser
import json
import logging
import os
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)
SOURCE_DIR = os.path.normpath(os.path.join(PKG, "..", ".."))
sys.path.insert(0, PKG)

import acme_hookd_a2c as a2c  # noqa: E402

CSR_DER = b"\x30\x82\x01\x0a" + bytes(range(200))  # bytes whose base64 has + and /
CSR_STD = base64.b64encode(CSR_DER).decode()
CSR_URL = base64.urlsafe_b64encode(CSR_DER).decode().rstrip("=")
CERT_DER = bytes(range(255, 0, -1))
CERT_RAW = base64.b64encode(CERT_DER).decode()
CERT_PEM = "-----BEGIN CERTIFICATE-----\r\n%s\r\n-----END CERTIFICATE-----\r\n" % CERT_RAW


def section(text):
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read_string("[Hooks]\nhookd_bootstrap_servers = 127.0.0.1:9\n" + text)
    return cp["Hooks"]


def settings(text="", **kw):
    s = a2c.settings_from_section(section(text))
    for k, v in kw.items():
        setattr(s, k, v)
    return s


# ---------------------------------------------------------------- flags

def test_flags_defaults_are_acme2certifiers():
    s = settings()
    assert s.flags == {"pre": False, "success": False, "post": True}
    assert s.details_forward is False
    assert a2c.flags_header(s) == (b"allow_pre_hook_failure=false,allow_success_hook_failure=false,"
                                   b"allow_post_hook_failure=true,hook_error_details_forward=false")


@pytest.mark.parametrize("word,value", [("1", True), ("yes", True), ("TRUE", True), ("On", True),
                                        ("0", False), ("no", False), ("False", False), ("OFF", False)])
def test_flags_use_configparser_boolean_words(word, value):
    s = settings("ignore_pre_hook_failure: %s\nignore_post_hook_failure = %s\n"
                 "hook_error_details_forward=%s\n" % (word, word, word))
    assert s.flags["pre"] is value and s.flags["post"] is value and s.details_forward is value
    assert s.flags["success"] is False


def test_flags_match_acme2certifier_computation():
    """The same file through acme2certifier's own parser and code."""
    from acme2certifier.acme_srv.helpers.config import _new_config_parser
    cp = _new_config_parser()
    cp.read_string("[Hooks]\nhookd_bootstrap_servers: x:1\nignore_success_hook_failure: yes\n"
                   "ignore_post_hook_failure: off\n")
    s = a2c.settings_from_section(cp["Hooks"])
    assert s.flags == {
        "pre": cp.getboolean("Hooks", "ignore_pre_hook_failure", fallback=False),
        "success": cp.getboolean("Hooks", "ignore_success_hook_failure", fallback=False),
        "post": cp.getboolean("Hooks", "ignore_post_hook_failure", fallback=True)}
    assert s.flags == {"pre": False, "success": True, "post": False}


def test_bad_boolean_is_an_error_as_in_acme2certifier():
    with pytest.raises(ValueError):
        settings("ignore_pre_hook_failure: maybe\n")


def test_allow_keys_are_ignored_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="acme_hookd_a2c"):
        s = settings("allow_pre_hook_failure: True\nallow_post_hook_failure: False\n")
    assert s.flags == {"pre": False, "success": False, "post": True}
    text = caplog.text
    assert "allow_post_hook_failure, allow_pre_hook_failure" in text
    assert "ignore_*_hook_failure" in text


def test_bridge_keys():
    s = settings("hookd_topic: in.t\nhookd_reply_topic: re.t\nhookd_reply_partitions: 0-2, 5\n"
                 "hookd_verdict_timeout: 2.5\nhookd_on_timeout: continue\n"
                 "hookd_rdkafka.security.protocol: SASL_SSL\nhookd_rdkafka.sasl.mechanism: PLAIN\n"
                 "hookd_handlers: cn_dump, exception_test\n")
    assert (s.topic, s.reply_topic, s.reply_partitions) == ("in.t", "re.t", [0, 1, 2, 5])
    assert (s.verdict_timeout, s.on_timeout) == (2.5, "continue")
    assert s.rdkafka == {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}


@pytest.mark.parametrize("text", ["hookd_verdict_timeout: soon\n", "hookd_verdict_timeout: 0\n",
                                  "hookd_on_timeout: retry\n", "hookd_reply_partitions: 3-1\n",
                                  "hookd_reply_partitions: a\n"])
def test_bad_bridge_keys(text):
    with pytest.raises(a2c.SettingsError):
        settings(text)


def test_bootstrap_required():
    cp = configparser.ConfigParser()
    cp.read_string("[Hooks]\nhookd_topic: x\n")
    with pytest.raises(a2c.SettingsError, match="hookd_bootstrap_servers"):
        a2c.settings_from_section(cp["Hooks"])


# ---------------------------------------------------------------- events and headers

def test_reply_partition_is_springs_int():
    assert a2c.encode_partition(0) == b"\x00\x00\x00\x00"
    assert a2c.encode_partition(7) == b"\x00\x00\x00\x07"
    assert a2c.encode_partition(258) == b"\x00\x00\x01\x02"
    assert a2c.encode_partition(-1) == b"\xff\xff\xff\xff"
    for p in (0, 1, 31, 65536, 2147483647):
        assert a2c.decode_partition(a2c.encode_partition(p)) == p


def test_request_headers():
    s = settings("hookd_reply_topic: my.replies\n")
    corr = bytes(range(16))
    h = a2c.request_headers(s, 3, corr)
    assert h == [("kafka_replyTopic", b"my.replies"), ("kafka_replyPartition", b"\x00\x00\x00\x03"),
                 ("kafka_correlationId", corr), ("hookd.flags", a2c.flags_header(s))]


def test_event_id_is_deterministic_and_retry_safe():
    f1 = a2c.enrollment_fields(a2c.REQUESTED, "c1", "o1", CSR_URL)
    f2 = a2c.enrollment_fields(a2c.REQUESTED, "c1", "o1", CSR_STD)
    assert a2c.event_id(a2c.REQUESTED, f1) == a2c.event_id(a2c.REQUESTED, f2)
    assert a2c.event_id(a2c.REQUESTED, f1).startswith("a2c-")
    assert len(a2c.event_id(a2c.REQUESTED, f1)) == 4 + 64
    ids = {a2c.event_id(a2c.REQUESTED, f1),
           a2c.event_id(a2c.REQUESTED, a2c.enrollment_fields(a2c.REQUESTED, "c1", "o2", CSR_STD)),
           a2c.event_id(a2c.REQUESTED, a2c.enrollment_fields(a2c.REQUESTED, "c2", "o1", CSR_STD)),
           a2c.event_id(a2c.FAILED, a2c.enrollment_fields(a2c.FAILED, "c1", "o1", CSR_STD, error="e1")),
           a2c.event_id(a2c.FAILED, a2c.enrollment_fields(a2c.FAILED, "c1", "o1", CSR_STD, error="e2")),
           a2c.event_id(a2c.ISSUED, a2c.enrollment_fields(a2c.ISSUED, "c1", "o1", CSR_STD, CERT_PEM,
                                                          CERT_RAW, None))}
    assert len(ids) == 6


def test_event_wire_form_matches_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    with open(os.path.join(SOURCE_DIR, "schemas", "input-event.schema.json")) as f:
        schema = json.load(f)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    cases = [
        (a2c.REQUESTED, a2c.enrollment_fields(a2c.REQUESTED, "c1", "o1", CSR_URL)),
        (a2c.ISSUED, a2c.enrollment_fields(a2c.ISSUED, "c1", "o1", CSR_URL, CERT_PEM, CERT_RAW, None)),
        (a2c.ISSUED, a2c.enrollment_fields(a2c.ISSUED, "c1", "o1", CSR_URL, CERT_PEM, CERT_RAW, "poll-1")),
        (a2c.FAILED, a2c.enrollment_fields(a2c.FAILED, "c1", "o1", CSR_URL, error="urn:x:rejected")),
        (a2c.FAILED, a2c.enrollment_fields(a2c.FAILED, "c1", "o1", CSR_URL, error={"not": "a string"})),
        (a2c.FAILED, a2c.enrollment_fields(a2c.FAILED, "c1", "o1", CSR_URL, error=None)),
    ]
    for etype, fields in cases:
        body = json.loads(a2c.build_event(etype, fields))
        errors = sorted(str(e.message) for e in validator.iter_errors(body))
        assert not errors, (etype, body, errors)
        assert body["type"] == etype and body["id"] == a2c.event_id(etype, fields)
        assert body["csr"] == CSR_STD
    issued = json.loads(a2c.build_event(*cases[1]))
    assert "poll_identifier" not in issued and "\r" not in issued["certificate"]
    assert json.loads(a2c.build_event(*cases[5]))["error"] == "enrollment pending"
    assert json.loads(a2c.build_event(*cases[4]))["error"] == str({"not": "a string"})


def test_failed_run_takes_the_first_failure_of_the_phase():
    r = {"verdict": "completed", "runs": [
        {"phase": "success", "handler": "cn_dump", "outcome": "ok", "error": None},
        {"phase": "post", "handler": "cn_dump", "outcome": "ok", "error": None},
        {"phase": "post", "handler": "exception_test", "outcome": "fail", "failure_allowed": True,
         "error": "raise_post_hook_exception"},
        {"phase": "post", "handler": "third", "outcome": "fail", "error": "later"}]}
    assert a2c.failed_run(r, "success") is None
    assert a2c.failed_run(r, "pre") is None
    assert a2c.failed_run(r, "post") == ("exception_test", "raise_post_hook_exception")


# ---------------------------------------------------------------- a fake worker

def result_for(event, fail_phases, allow):
    """What the worker would reply: the runs of cn_dump and exception_test."""
    phases = {"acme.enrollment.requested": ["pre"], "acme.enrollment.issued": ["success", "post"],
              "acme.enrollment.failed": ["post"]}[event["type"]]
    runs, verdict = [], "completed"
    for ph in phases:
        runs.append({"phase": ph, "handler": "cn_dump", "outcome": "ok", "failure_allowed": False,
                     "error": None})
        if ph in fail_phases:
            runs.append({"phase": ph, "handler": "exception_test", "outcome": "fail",
                         "failure_allowed": allow[ph], "error": "raise_%s_hook_exception" % ph})
            if not allow[ph]:
                verdict = "failed"
                break
        else:
            runs.append({"phase": ph, "handler": "exception_test", "outcome": "ok",
                         "failure_allowed": False, "error": None})
    return {"event_id": event["id"], "verdict": verdict, "runs": runs}


class FakeTransport:
    """Records requests; answers each like a worker would, on another thread,
    unless `silent`."""
    instances = []

    def __init__(self, settings, router, logger=None, fail_phases=(), silent=False, noise=False):
        self.settings, self.router = settings, router
        self.partition = 5
        self.sent = []
        self.fail_phases = set(fail_phases)
        self.silent = silent
        self.noise = noise
        self.pid = os.getpid()
        self.closed = False
        FakeTransport.instances.append(self)

    def send(self, value, key, headers, corr):
        self.sent.append((json.loads(value), key, dict(headers)))
        if self.silent:
            return
        event = json.loads(value)
        reply = json.dumps(result_for(event, self.fail_phases, self.settings.flags)).encode()

        def answer():
            if self.noise:
                self.router.deliver([("kafka_correlationId", b"\x00" * 16)], reply)     # foreign
                self.router.deliver([("kafka_correlationId", corr)], b"{not json")     # malformed
                self.router.deliver([], reply)                                          # no header
            self.router.deliver([("kafka_correlationId", corr)], reply)
        threading.Thread(target=answer).start()

    def close(self):
        self.closed = True


def bridge(s=None, **kw):
    return a2c.Bridge(s or settings(), lambda st, r, lg: FakeTransport(st, r, lg, **kw))


# ---------------------------------------------------------------- hooks and verdicts

def test_all_pass_publishes_three_events_keyed_by_order():
    b = bridge()
    h = a2c.Hooks(logging.getLogger("t"), bridge=b)
    h.pre_hook("c1", "o1", CSR_URL)
    h.success_hook("c1", "o1", CSR_URL, CERT_PEM, CERT_RAW, None)
    h.post_hook("c1", "o1", CSR_URL, None)
    sent = b.transport.sent
    assert [e["type"] for e, _k, _h in sent] == [a2c.REQUESTED, a2c.ISSUED]  # post reuses the issued result
    assert all(k == b"o1" for _e, k, _h in sent)
    for _e, _k, hdr in sent:
        assert hdr["kafka_replyPartition"] == b"\x00\x00\x00\x05"
        assert len(hdr["kafka_correlationId"]) == 16
    assert sent[0][2]["kafka_correlationId"] != sent[1][2]["kafka_correlationId"]
    assert b.router.counters["replies"] == 2


def test_pre_failure_raises_with_the_handlers_error():
    h = a2c.Hooks(None, bridge=bridge(fail_phases={"pre"}))
    with pytest.raises(a2c.HookFailure) as e:
        h.pre_hook("c1", "o1", CSR_STD)
    assert str(e.value) == "exception_test: raise_pre_hook_exception"
    assert isinstance(e.value, RuntimeError)


def test_allowed_failure_still_raises_so_acme2certifier_decides():
    s = settings("ignore_pre_hook_failure: True\n")
    h = a2c.Hooks(None, bridge=bridge(s, fail_phases={"pre"}))
    with pytest.raises(a2c.HookFailure):
        h.pre_hook("c1", "o1", CSR_STD)


def test_post_failure_is_raised_from_post_hook_only():
    b = bridge(fail_phases={"post"})
    h = a2c.Hooks(None, bridge=b)
    h.pre_hook("c1", "o1", CSR_STD)
    h.success_hook("c1", "o1", CSR_STD, CERT_PEM, CERT_RAW, None)
    with pytest.raises(a2c.HookFailure, match="raise_post_hook_exception"):
        h.post_hook("c1", "o1", CSR_STD, None)
    assert len(b.transport.sent) == 2


def test_success_failure_raises_from_success_hook():
    s = settings("ignore_success_hook_failure: yes\n")
    b = bridge(s, fail_phases={"success", "post"})
    h = a2c.Hooks(None, bridge=b)
    with pytest.raises(a2c.HookFailure, match="raise_success_hook_exception"):
        h.success_hook("c1", "o1", CSR_STD, CERT_PEM, CERT_RAW, None)
    # acme2certifier ignores it (its flag) and calls post_hook: the stored
    # result's post run decides.
    with pytest.raises(a2c.HookFailure, match="raise_post_hook_exception"):
        h.post_hook("c1", "o1", CSR_STD, None)


def test_post_with_error_publishes_a_failed_event():
    b = bridge(fail_phases={"post"})
    h = a2c.Hooks(None, bridge=b)
    with pytest.raises(a2c.HookFailure):
        h.post_hook("c1", "o1", CSR_STD, "urn:ietf:params:acme:error:rejectedIdentifier")
    e = b.transport.sent[0][0]
    assert e["type"] == a2c.FAILED and e["error"] == "urn:ietf:params:acme:error:rejectedIdentifier"


def test_post_without_success_is_an_enrollment_pending_failed_event():
    b = bridge()
    a2c.Hooks(None, bridge=b).post_hook("c1", "o1", CSR_STD, None)
    e = b.transport.sent[0][0]
    assert e["type"] == a2c.FAILED and e["error"] == "enrollment pending"


def test_foreign_and_malformed_replies_are_ignored_and_counted(caplog):
    b = bridge(noise=True)
    with caplog.at_level(logging.WARNING, logger="acme_hookd_a2c"):
        a2c.Hooks(None, bridge=b).pre_hook("c1", "o1", CSR_STD)
    c = b.router.counters
    assert (c["replies"], c["foreign"], c["malformed"]) == (1, 2, 1)
    assert "foreign reply" in caplog.text and "malformed reply" in caplog.text


def test_reply_with_another_event_id_is_not_taken():
    r = a2c.ReplyRouter()
    w = r.register(b"c" * 16, "a2c-1")
    assert r.deliver([("kafka_correlationId", b"c" * 16)],
                     json.dumps({"event_id": "a2c-2", "verdict": "completed", "runs": []})) == "malformed"
    assert not w.event.is_set()
    assert r.deliver([("kafka_correlationId", b"c" * 16)],
                     json.dumps({"event_id": "a2c-1", "verdict": "completed", "runs": []})) == "matched"
    assert w.event.is_set()
    # a late duplicate after the waiter is gone is foreign
    assert r.deliver([("kafka_correlationId", b"c" * 16)],
                     json.dumps({"event_id": "a2c-1", "verdict": "completed", "runs": []})) == "foreign"


def test_timeout_fails_closed_with_a_clear_log_line(caplog):
    s = settings("hookd_verdict_timeout: 0.3\n")
    b = bridge(s, silent=True)
    t0 = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="t"):
        with pytest.raises(a2c.VerdictTimeout) as e:
            a2c.Hooks(logging.getLogger("t"), bridge=b).pre_hook("c1", "order-77", CSR_STD)
    took = time.monotonic() - t0
    assert 0.3 <= took < 2.0
    eid = b.transport.sent[0][0]["id"]
    for text in (str(e.value), caplog.text):
        assert "order-77" in text and "phase pre" in text and eid in text and "0.3s" in text
    assert b.router.counters["timeouts"] == 1
    assert b.router._waiting == {}


def test_timeout_continue_logs_and_returns(caplog):
    s = settings("hookd_verdict_timeout: 0.2\nhookd_on_timeout: continue\n")
    b = bridge(s, silent=True)
    h = a2c.Hooks(logging.getLogger("t"), bridge=b)
    with caplog.at_level(logging.WARNING, logger="t"):
        h.pre_hook("c1", "o9", CSR_STD)
        h.success_hook("c1", "o9", CSR_STD, CERT_PEM, CERT_RAW, None)
        h.post_hook("c1", "o9", CSR_STD, None)  # nothing stored, nothing sent again
    assert caplog.text.count("hookd_on_timeout=continue") == 2
    assert len(b.transport.sent) == 2


def test_send_error_fails_the_hook():
    b = bridge(silent=True)
    orig = b.transport.send

    def send(value, key, headers, corr):
        orig(value, key, headers, corr)
        b.router.fail(corr, a2c.BridgeUnavailable("event not delivered: broker down"))
    b.transport.send = send
    with pytest.raises(a2c.BridgeUnavailable, match="broker down"):
        a2c.Hooks(None, bridge=b).pre_hook("c1", "o1", CSR_STD)


def test_concurrent_requests_get_their_own_replies():
    b = bridge(fail_phases={"pre"})
    errors = []

    def one(i):
        try:
            a2c.Hooks(None, bridge=b).pre_hook("c%d" % i, "o%d" % i, CSR_STD)
        except a2c.HookFailure as e:
            errors.append(str(e))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(errors) == 32 and b.router.counters["replies"] == 32 and b.router.counters["foreign"] == 0


# ---------------------------------------------------------------- process model

def test_bad_configuration_fails_every_hook_closed(tmp_path, monkeypatch, caplog):
    cfg = tmp_path / "acme_srv.cfg"
    cfg.write_text("[Hooks]\nhooks_module: acme_hookd_a2c\nhookd_topic: x\n")
    monkeypatch.setenv("ACME_SRV_CONFIGFILE", str(cfg))
    from acme2certifier.acme_srv.helpers.config import load_config_cache_clear
    load_config_cache_clear()
    a2c._reset_for_tests()
    try:
        with caplog.at_level(logging.CRITICAL):
            h = a2c.Hooks(logging.getLogger("t"))  # must not raise: acme2certifier would run without hooks
        assert "hookd_bootstrap_servers is required" in caplog.text
        with pytest.raises(a2c.BridgeUnavailable, match="hookd_bootstrap_servers"):
            h.pre_hook("c1", "o1", CSR_STD)
    finally:
        a2c._reset_for_tests()
        load_config_cache_clear()


def test_one_client_per_process_and_a_new_one_after_fork(tmp_path, monkeypatch):
    cfg = tmp_path / "acme_srv.cfg"
    cfg.write_text("[Hooks]\nhooks_module: acme_hookd_a2c\nhookd_bootstrap_servers: 127.0.0.1:9\n")
    monkeypatch.setenv("ACME_SRV_CONFIGFILE", str(cfg))
    from acme2certifier.acme_srv.helpers.config import load_config_cache_clear
    load_config_cache_clear()
    a2c._reset_for_tests()
    FakeTransport.instances.clear()
    try:
        monkeypatch.setattr(a2c, "KafkaTransport", FakeTransport)
        a2c.Hooks(None).pre_hook("c1", "o1", CSR_STD)
        a2c.Hooks(None).pre_hook("c2", "o2", CSR_STD)
        assert len(FakeTransport.instances) == 1 and a2c.stats()["requests"] == 2
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: a new client of its own, the parent's left alone
            try:
                a2c.Hooks(None).pre_hook("c3", "o3", CSR_STD)
                mine = [t for t in FakeTransport.instances if t.pid == os.getpid()]
                ok = len(mine) == 1 and a2c.stats()["requests"] == 1 and not FakeTransport.instances[0].closed
                os.write(w, b"ok" if ok else b"bad")
            finally:
                os._exit(0)
        os.close(w)
        assert os.read(r, 10) == b"ok"
        os.waitpid(pid, 0)
        assert a2c.stats()["requests"] == 2
    finally:
        a2c._reset_for_tests()
        load_config_cache_clear()


def _claim_in_child(lock_dir, topic, candidates):
    """Claim in a forked child that keeps its lock until told to exit."""
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        p, excl, _fd = a2c.claim_partition(lock_dir, topic, candidates)
        os.write(w, b"%d %d" % (p, excl))
        os.read(go_r, 1)
        os._exit(0)
    os.close(w)
    got = os.read(r, 32).split()
    return pid, go_w, int(got[0]), bool(int(got[1]))


def test_reply_partitions_are_claimed_exclusively_per_process(tmp_path, caplog):
    d = str(tmp_path)
    children = []
    try:
        for expect in (0, 1, 2):
            pid, go, p, excl = _claim_in_child(d, "rt", [0, 1, 2])
            children.append((pid, go))
            assert (p, excl) == (expect, True)
        with caplog.at_level(logging.WARNING, logger="acme_hookd_a2c"):
            p, excl, fd = a2c.claim_partition(d, "rt", [0, 1, 2])
        assert not excl and fd is None and p in (0, 1, 2)
        assert "sharing partition" in caplog.text
        # a process that ends frees its partition for the next one
        pid, go = children.pop(1)
        os.write(go, b"x")
        os.waitpid(pid, 0)
        p, excl, fd = a2c.claim_partition(d, "rt", [0, 1, 2])
        assert (p, excl) == (1, True)
        os.close(fd)
    finally:
        for pid, go in children:
            os.write(go, b"x")
            os.waitpid(pid, 0)


# ---------------------------------------------------------------- loading by acme2certifier

@pytest.mark.parametrize("key", ["hooks_module", "hooks_file"])
def test_acme2certifier_loads_the_bridge(key):
    from acme2certifier.acme_srv.helpers.plugin_loader import hooks_load
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    value = "acme_hookd_a2c" if key == "hooks_module" else os.path.join(PKG, "acme_hookd_a2c.py")
    cp.read_dict({"Hooks": {key: value}})
    saved = sys.modules.pop("Hooks", None)
    try:
        mod = hooks_load(logging.getLogger("t"), cp)
        assert mod is not None and hasattr(mod, "Hooks")
        h = mod.Hooks.__new__(mod.Hooks)
        assert hasattr(h, "pre_hook") and hasattr(h, "__enter__") and hasattr(h, "__exit__")
    finally:
        sys.modules.pop("Hooks", None)
        if saved is not None:
            sys.modules["Hooks"] = saved


def test_retriable_kafka_errors_are_retried_until_the_deadline():
    from confluent_kafka import KafkaError, KafkaException
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
        return 42
    assert a2c._retrying(flaky, 5, "x") == 42 and len(calls) == 3

    def broken():
        raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    with pytest.raises(KafkaException):
        a2c._retrying(broken, 5, "x")

    def always():
        raise KafkaException(KafkaError(KafkaError.LEADER_NOT_AVAILABLE))
    t0 = time.monotonic()
    with pytest.raises(KafkaException):
        a2c._retrying(always, 0.3, "x")
    assert time.monotonic() - t0 < 2
