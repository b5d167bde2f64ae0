# SPDX-License-Identifier: MIT
"""Shared code of the acme2certifier end-to-end tests (tests/a2c).

Real programs only: acme2certifier 0.46.3 served by serve_a2c.py, certbot
5.8.0, the acme-hookd binary under test, the broker of the kafka_broker
fixture. The environment tells where things are:

    HOOKD_KAFKA_STATE   the broker's state directory (broker.env inside)
    HOOKD_BIN           the acme-hookd executable under test
    HOOKD_A2C_WORKDIR   where a test writes its configs, logs and files
    HOOKD_SOURCE_DIR    the source tree

One acme_srv.cfg per setup serves both programs: acme2certifier reads its
sections (and the bridge its hookd_* keys of [Hooks]); acme-hookd reads
[Hooks] (hookd_handlers, the handlers' keys) and the [kafka], [worker],
[log] sections appended to it.
"""
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

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("HOOKD_SOURCE_DIR", os.path.normpath(os.path.join(HERE, "..", "..")))
BRIDGE_FILE = os.path.join(SOURCE_DIR, "integrations", "acme2certifier", "acme_hookd_a2c.py")
SERVE = os.path.join(HERE, "serve_a2c.py")
PY = sys.executable
CERTBOT = os.path.join(os.path.dirname(PY), "certbot")

ALLOWED_SUFFIX = "ok.test"   # the CA issues for these
REFUSED_SUFFIX = "no.test"   # and refuses these (enrollment error, post_hook with error)


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def log(msg):
    print("[%s] %s" % (datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3], msg), flush=True)


def wait_until(cond, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TestFailure("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def unique(prefix):
    return "%s-%d-%08x" % (prefix, os.getpid(), random.getrandbits(32))


# ---------------------------------------------------------------- environment

def broker_env():
    state = os.environ.get("HOOKD_KAFKA_STATE")
    check(state, "HOOKD_KAFKA_STATE is not set: run through ctest (fixture kafka_broker)")
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
    return broker_env()["KAFKA_BOOTSTRAP"]


def hookd_bin():
    path = os.environ.get("HOOKD_BIN")
    check(path and os.access(path, os.X_OK), "HOOKD_BIN (%r) is not an executable" % path)
    return path


_WORKDIR = None


def workdir():
    global _WORKDIR
    if _WORKDIR is None:
        base = os.environ.get("HOOKD_A2C_WORKDIR") or "/tmp/acme-hookd-a2c"
        name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
        _WORKDIR = os.path.join(base, name)
        shutil.rmtree(_WORKDIR, ignore_errors=True)
        os.makedirs(_WORKDIR)
    return _WORKDIR


# ---------------------------------------------------------------- Kafka

def create_topics(specs):
    """specs: {name: partitions}; waits until every partition has a leader."""
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap()})
    for f in a.create_topics([NewTopic(n, num_partitions=p, replication_factor=1)
                              for n, p in specs.items()], operation_timeout=30).values():
        f.result()

    def ready():
        md = a.list_topics(timeout=10)
        for n, p in specs.items():
            t = md.topics.get(n)
            if t is None or t.error is not None or len(t.partitions) != p or \
                    any(pm.leader < 0 for pm in t.partitions.values()):
                return False
        return True
    wait_until(ready, 30, "topics %s" % ", ".join(specs))


class Topics:
    def __init__(self, prefix, partitions=2, reply_partitions=4):
        self.input = unique(prefix + ".in")
        self.result = unique(prefix + ".result")
        self.dlq = unique(prefix + ".dlq")
        self.reply = unique(prefix + ".reply")
        self.group = unique(prefix + ".group")
        create_topics({self.input: partitions, self.result: partitions, self.dlq: 1,
                       self.reply: reply_partitions})


def read_topic(topic, min_count=0, timeout=30):
    """Every record of `topic` (all partitions, from the beginning) as dicts
    {partition, offset, key, value, headers}; waits for at least min_count."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": unique("reader"),
                  "enable.auto.commit": False, "fetch.wait.max.ms": 50})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        out = []
        deadline = time.monotonic() + timeout
        while True:
            for m in c.consume(500, timeout=0.2):
                if m.error():
                    raise TestFailure("reading %s: %s" % (topic, m.error()))
                out.append({"partition": m.partition(), "offset": m.offset(),
                            "key": m.key().decode() if m.key() is not None else None,
                            "value": m.value(), "headers": dict(m.headers() or [])})
            last = {}
            for r in out:
                last[r["partition"]] = max(last.get(r["partition"], -1), r["offset"])
            at_end = all(last.get(p, -1) >= hi - 1 for p, hi in ends.items() if hi > 0)
            if at_end and len(out) >= min_count:
                return out
            if time.monotonic() > deadline:
                raise TestFailure("%s: %d records, wanted %d (ends %r)" % (topic, len(out), min_count, ends))
            if at_end:  # more are expected: refresh the end offsets
                ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        c.close()


# ---------------------------------------------------------------- the CA

class CA:
    """A CA made with the openssl CLI for acme2certifier's openssl handler."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(os.path.join(directory, "certs"), exist_ok=True)
        self.key = os.path.join(directory, "ca.key.pem")
        self.cert = os.path.join(directory, "ca.cert.pem")
        self.crl = os.path.join(directory, "ca.crl.pem")
        if not os.path.exists(self.cert):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "30",
                            "-subj", "/CN=acme-hookd test CA",
                            "-addext", "basicConstraints=critical,CA:TRUE",
                            "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------- configuration

def ini(sections):
    lines = []
    for name, kv in sections.items():
        lines.append("[%s]" % name)
        for k, v in kv.items():
            if v is None:
                continue
            if isinstance(v, bool):
                v = "True" if v else "False"
            lines.append("%s: %s" % (k, v))
        lines.append("")
    return "\n".join(lines)


class Setup:
    """One acme_srv.cfg (and its directories) for one acme2certifier
    configuration. mode: 'inprocess' (acme2certifier's own cn_dump and
    exception_test hooks, chained) or 'hookd' (the bridge; the worker runs
    the bundled handlers)."""

    def __init__(self, name, ca, mode, raise_phases=(), ignore=None, topics=None,
                 extra_hooks=None, hooks_key="hooks_module", worker_id=None, verdict_timeout=8):
        self.name = name
        self.mode = mode
        self.dir = os.path.join(workdir(), name)
        os.makedirs(self.dir, exist_ok=True)
        self.save_path = os.path.join(self.dir, "cn_dump")
        os.makedirs(self.save_path, exist_ok=True)
        self.cfg = os.path.join(self.dir, "acme_srv.cfg")
        self.topics = topics
        hooks = {}
        if mode == "inprocess":
            # hooks_module, not hooks_file: acme2certifier 0.46.3 registers a
            # file-loaded module in sys.modules before running it, so a
            # second request loading hooks at the same time can get the
            # half-made module, log "Enrollment hooks could not be loaded"
            # and run without hooks.
            hooks["hooks_module"] = "chain_hooks"
        else:
            check(topics is not None, "a hookd setup needs topics")
            if hooks_key == "hooks_module":
                hooks["hooks_module"] = "acme_hookd_a2c"
            else:
                hooks["hooks_file"] = BRIDGE_FILE
            hooks.update({"hookd_bootstrap_servers": bootstrap(), "hookd_topic": topics.input,
                          "hookd_reply_topic": topics.reply, "hookd_verdict_timeout": verdict_timeout,
                          "hookd_handlers": "cn_dump, exception_test",
                          # the reply-partition lock files go with the run's
                          # other files (one directory for all its servers,
                          # as on one host), not to /tmp, where each run's
                          # new reply topics would leave one file apiece
                          "hookd_lock_dir": workdir()})
        hooks.update({"save_path": self.save_path, "cn_dump_san_only": "true"})
        for ph in ("pre", "success", "post"):
            hooks["raise_%s_hook_exception" % ph] = ph in raise_phases
        for ph, v in (ignore or {}).items():
            hooks["ignore_%s_hook_failure" % ph] = v
        hooks.update(extra_hooks or {})
        sections = {
            "DEFAULT": {"debug": False},
            "Nonce": {"nonce_check_disable": False},
            "CAhandler": {"handler_module": "acme2certifier.cahandlers.openssl_ca_handler",
                          "issuing_ca_key": ca.key, "issuing_ca_cert": ca.cert,
                          "issuing_ca_crl": ca.crl,
                          "cert_save_path": os.path.join(self.dir, "issued"),
                          "ca_cert_chain_list": json.dumps([ca.cert]),
                          "cert_validity_days": 2,
                          # the CA (not the order) refuses these: the enrollment fails after pre_hook
                          "blocked_domainlist": json.dumps(["*." + REFUSED_SUFFIX])},
            "DBhandler": {"dbfile": os.path.join(self.dir, "acme_srv.db")},
            "Certificate": {"enrollment_timeout": 20},
            "Challenge": {"challenge_validation_disable": True},
            "Account": {"contact_check_disable": True},
            "Order": {"tnauthlist_support": False},
            "Hooks": hooks,
        }
        os.makedirs(sections["CAhandler"]["cert_save_path"], exist_ok=True)
        if mode == "hookd":
            sections["kafka"] = {"bootstrap_servers": bootstrap(), "group_id": topics.group,
                                 "input_topic": topics.input, "result_topic": topics.result,
                                 "dead_letter_topic": topics.dlq, "reply_topics": topics.reply,
                                 "consumer.rdkafka.session.timeout.ms": 6000,
                                 "consumer.rdkafka.heartbeat.interval.ms": 1000,
                                 # request-reply latency (see integrations/acme2certifier/README.md)
                                 "consumer.rdkafka.fetch.wait.max.ms": 5,
                                 "producer.rdkafka.linger.ms": 0,
                                 "rdkafka.socket.nagle.disable": "true"}
            sections["worker"] = {"worker_id": worker_id or name, "threads": 2,
                                  "trust_event_flags": "true", "shutdown_timeout_ms": 10000}
            sections["log"] = {"level": "info"}
        with open(self.cfg, "w") as f:
            f.write(ini(sections))

    def lines(self):
        """cn_dump's lines: {phase: [line, ...]}."""
        out = {}
        for ph in ("pre", "success", "post"):
            p = os.path.join(self.save_path, "%s_hook.txt" % ph)
            try:
                with open(p) as f:
                    out[ph] = f.read().splitlines()
            except FileNotFoundError:
                out[ph] = []
        return out


# ---------------------------------------------------------------- processes

_PROCS = []


def _popen(argv, logpath, env=None):
    logf = open(logpath, "ab")
    p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env, start_new_session=True)
    logf.close()
    _PROCS.append(p)
    return p


_ZYGOTE = {"path": None}


def start_zygote():
    """Start the fork server (zygote.py): later servers and certbot runs of
    this test are forked from it instead of started from scratch."""
    path = os.path.join(workdir(), "zygote.sock")
    p = _popen([PY, os.path.join(HERE, "zygote.py"), path], os.path.join(workdir(), "zygote.log"),
               dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    wait_until(lambda: check(p.poll() is None, "zygote.py exited") or os.path.exists(path), 60,
               "the zygote's socket")
    _ZYGOTE["path"] = path


class ZygoteProc:
    """A child of the zygote, with the part of Popen's interface used here."""

    def __init__(self, kind, argv, env, logpath):
        import socket
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(_ZYGOTE["path"])
        self.sock.sendall(json.dumps({"kind": kind, "argv": argv, "env": env, "log": logpath}).encode() + b"\n")
        self.buf = b""
        self.pid = json.loads(self._line(60))["pid"]
        self.returncode = None
        _PROCS.append(self)

    def _line(self, timeout):
        import select
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left < 0 or not select.select([self.sock], [], [], left)[0]:
                raise subprocess.TimeoutExpired("zygote child %s" % getattr(self, "pid", "?"), timeout)
            data = self.sock.recv(4096)
            if not data:
                raise TestFailure("the zygote went away")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def poll(self):
        if self.returncode is None:
            try:
                self.returncode = json.loads(self._line(0))["rc"]
            except subprocess.TimeoutExpired:
                return None
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            self.returncode = json.loads(self._line(timeout))["rc"]
        return self.returncode


def _stop(p, timeout=15):
    if p is None or p.poll() is not None:
        return p.returncode if p is not None else None
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        return p.wait(10)


class Server:
    """acme2certifier over HTTP on 127.0.0.1 (serve_a2c.py)."""

    def __init__(self, setup, tag="server"):
        self.setup = setup
        self.log_path = os.path.join(setup.dir, "%s.log" % tag)
        self.port_file = os.path.join(setup.dir, "%s.port" % tag)
        self.proc = None
        self.port = None

    def start(self, timeout=60):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        env = dict(os.environ, ACME2CERTIFIER_I_KNOW_THE_RISK="1", ACME_SRV_CONFIGFILE=self.setup.cfg,
                   PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
        # the bridge of this source tree, ahead of the copy installed in the venv
        # (and chain_hooks, the in-process reference hooks, beside this file)
        env["PYTHONPATH"] = os.path.dirname(BRIDGE_FILE) + os.pathsep + HERE + (
            os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        if _ZYGOTE["path"]:
            self.proc = ZygoteProc("server", [self.setup.cfg, self.port_file], env, self.log_path)
        else:
            self.proc = _popen([PY, SERVE, self.setup.cfg, self.port_file], self.log_path, env)

        def up():
            check(self.proc.poll() is None, "acme2certifier exited (%s): %s" % (self.proc.returncode, self.tail()))
            return os.path.exists(self.port_file)
        wait_until(up, timeout, "acme2certifier to listen (%s)" % self.port_file)
        with open(self.port_file) as f:
            self.port = int(f.read())
        return self

    @property
    def url(self):
        return "http://127.0.0.1:%d/directory" % self.port

    def stop(self):
        return _stop(self.proc)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])


class Worker:
    """acme-hookd -c acme_srv.cfg."""

    def __init__(self, setup, tag="worker"):
        self.setup = setup
        self.log_path = os.path.join(setup.dir, "%s.log" % tag)
        self.proc = None

    def start(self, timeout=60):
        mark = len(self.log_text())
        self.proc = _popen([hookd_bin(), "-c", self.setup.cfg], self.log_path)
        # ready when it has partitions of the input topic
        self.wait_log(r"assign|partitions? (assigned|added)|joined", timeout, since=mark)
        return self

    def stop(self):
        return _stop(self.proc, 30)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout, since=0):
        rx = re.compile(pattern, re.I)

        def seen():
            check(self.alive(), "acme-hookd exited (%s) waiting for /%s/:\n%s" % (
                self.proc.returncode, pattern, self.tail()))
            return rx.search(self.log_text(), since)
        return wait_until(seen, timeout, "/%s/ in %s" % (pattern, self.log_path), interval=0.1)

    def tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])


class Enrollment:
    def __init__(self, rc, output, cert_path, domain):
        self.rc, self.output, self.cert_path, self.domain = rc, output, cert_path, domain

    @property
    def issued(self):
        return self.rc == 0 and self.cert_path is not None and os.path.exists(self.cert_path)

    def acme_error(self):
        """certbot's reported ACME error, e.g. 'pre_hook_error :: pre-hook failed'."""
        m = re.search(r"acme\.messages\.Error: ([^\n]*)|(urn:ietf:params:acme:error:\S+ :: [^\n]*)|"
                      r"(\w+_hook_error :: [^\n]*)", self.output)
        return next(g for g in m.groups() if g) if m else None

    def outcome(self):
        """What the differential compares: issued, or the error certbot printed."""
        if self.issued:
            return "issued"
        return "failed: %s" % (self.acme_error() or "exit %d" % self.rc)


def certbot(server, domain, tag, timeout=120):
    """One certbot certonly run against `server` for `domain`."""
    d = os.path.join(server.setup.dir, "certbot-" + tag)
    os.makedirs(d, exist_ok=True)
    argv = [CERTBOT, "certonly", "--manual", "--preferred-challenges", "http",
            "--manual-auth-hook", "true", "--server", server.url,
            "--config-dir", os.path.join(d, "config"), "--work-dir", os.path.join(d, "work"),
            "--logs-dir", os.path.join(d, "logs"), "--register-unsafely-without-email",
            "--agree-tos", "--non-interactive", "--key-type", "ecdsa", "--cert-name", tag,
            "--no-random-sleep-on-renew", "-d", domain]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    t0 = time.monotonic()
    if _ZYGOTE["path"]:
        outf = os.path.join(d, "certbot.out")
        z = ZygoteProc("certbot", argv[1:], env, outf)
        try:
            rc = z.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop(z, 5)
            raise TestFailure("certbot %s did not finish in %d s" % (tag, timeout))
        with open(outf, errors="replace") as f:
            out = f.read()
    else:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        rc, out = p.returncode, p.stdout + p.stderr
    logf = os.path.join(d, "logs", "letsencrypt.log")
    if rc != 0 and os.path.exists(logf):
        with open(logf) as f:
            out += "\n" + f.read()[-6000:]
    cert = os.path.join(d, "config", "live", tag, "cert.pem")
    e = Enrollment(rc, out, cert if os.path.exists(cert) else None, domain)
    log("certbot %s %s -> %s (%.1f s)" % (tag, domain, e.outcome(), time.monotonic() - t0))
    return e


def cleanup():
    for p in _PROCS:
        _stop(p, 5)


def run(main):
    t0 = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    try:
        main()
    except Exception as e:
        traceback.print_exc()
        print("\nFAILED: %s" % e, flush=True)
        cleanup()
        sys.exit(1)
    finally:
        cleanup()
    log("PASSED in %.1f s" % (time.monotonic() - t0))
    sys.exit(0)
