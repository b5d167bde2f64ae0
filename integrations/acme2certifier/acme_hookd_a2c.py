# SPDX-License-Identifier: MIT
"""acme2certifier hooks that run on an acme-hookd worker fleet.

acme2certifier loads this module as its hooks, either as

    [Hooks]
    hooks_module: acme_hookd_a2c

or (the older form) with ``hooks_file: /path/to/acme_hookd_a2c.py``. Each
hook publishes an enrollment event (schemas/input-event.schema.json) to
Kafka, keyed by the order name, and waits for the worker's result, which
comes back as a reply in the way Spring Kafka's ReplyingKafkaTemplate
routes them (``kafka_replyTopic``, ``kafka_replyPartition``,
``kafka_correlationId``). A phase whose reply lists a failed run raises,
so acme2certifier's own ``ignore_*_hook_failure`` flags decide the
enrollment exactly as they do for in-process hooks.

The module is a single file with absolute imports only, because
acme2certifier's ``hooks_file`` loader imports it by path as a module named
``Hooks``.

Process model: acme2certifier constructs ``Hooks(logger)`` for every
request and parses its configuration once per process. The Kafka clients
therefore belong to the process, not to the instance: one producer and one
reply-reader thread per process, created at the first hook call, created
again in a child after ``fork()`` (pre-forking WSGI servers), shared by all
threads.
"""

import base64
import datetime
import errno
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import struct
import threading
import time
import uuid

__all__ = [
    "Hooks",
    "HookFailure",
    "VerdictTimeout",
    "BridgeUnavailable",
    "Settings",
    "SettingsError",
    "settings_from_section",
    "flags_header",
    "event_id",
    "build_event",
    "request_headers",
    "encode_partition",
    "decode_partition",
    "parse_partition_range",
    "failed_run",
    "stats",
    "claim_partition",
    "ReplyRouter",
    "Bridge",
]

LOG = logging.getLogger("acme_hookd_a2c")

REQUESTED = "acme.enrollment.requested"
ISSUED = "acme.enrollment.issued"
FAILED = "acme.enrollment.failed"

# The error of a failed event published when acme2certifier calls post_hook
# with error None but no success_hook came before it in the same request:
# the CA answered with a poll identifier only (asynchronous enrollment).
PENDING_ERROR = "enrollment pending"

HEADER_REPLY_TOPIC = "kafka_replyTopic"
HEADER_REPLY_PARTITION = "kafka_replyPartition"
HEADER_CORRELATION_ID = "kafka_correlationId"
HEADER_FLAGS = "hookd.flags"

# acme2certifier 0.46.3's defaults of the keys it reads (certificate.py).
A2C_FLAG_DEFAULTS = (
    ("pre", "ignore_pre_hook_failure", False),
    ("success", "ignore_success_hook_failure", False),
    ("post", "ignore_post_hook_failure", True),
)

DEFAULT_TOPIC = "acme.enrollment"
DEFAULT_REPLY_TOPIC = "acme.enrollment.reply"
DEFAULT_VERDICT_TIMEOUT = 10.0

# librdkafka settings for request-reply latency; hookd_rdkafka.* overrides.
PRODUCER_DEFAULTS = {
    "linger.ms": 0,
    "acks": "all",
    "enable.idempotence": True,
    "socket.nagle.disable": True,
}
CONSUMER_DEFAULTS = {
    "fetch.wait.max.ms": 5,
    "fetch.error.backoff.ms": 50,
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": False,
    "socket.nagle.disable": True,
}


# ---------------------------------------------------------------- errors


class HookFailure(RuntimeError):
    """A hook of the phase failed on the worker; the text is
    ``<handler>: <error>`` of the first failed run of that phase.

    A RuntimeError (not the SystemError acme2certifier's test hooks raise,
    which Python reserves for interpreter faults): acme2certifier catches
    any Exception from a hook and, with ``hook_error_details_forward``,
    shows ``str(exception)`` to the client; a dedicated subclass lets code
    that calls the hooks tell a worker verdict from a bug."""


class VerdictTimeout(HookFailure):
    """No verdict arrived within ``hookd_verdict_timeout`` (fail closed)."""


class BridgeUnavailable(HookFailure):
    """The bridge could not send the event (configuration, broker)."""


class SettingsError(ValueError):
    """A ``hookd_*`` key of [Hooks] is missing or has a bad value."""


# ---------------------------------------------------------------- settings


class Settings:
    """Everything the bridge takes from acme2certifier's [Hooks] section."""

    def __init__(self, bootstrap_servers, topic=DEFAULT_TOPIC, reply_topic=DEFAULT_REPLY_TOPIC,
                 reply_partitions=None, verdict_timeout=DEFAULT_VERDICT_TIMEOUT, on_timeout="fail",
                 rdkafka=None, flags=None, details_forward=False, lock_dir=None,
                 auth_key_id=None, auth_key=None):
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.reply_topic = reply_topic
        self.reply_partitions = reply_partitions  # None: every partition of the topic
        self.verdict_timeout = verdict_timeout
        self.on_timeout = on_timeout
        self.rdkafka = dict(rdkafka or {})
        # allow_X_hook_failure, as acme2certifier computes ignore_X_hook_failure
        self.flags = dict(flags or {"pre": False, "success": False, "post": True})
        self.details_forward = details_forward
        self.lock_dir = lock_dir or default_lock_dir()
        # [auth] of the worker: sign every event (HMAC-SHA256, docs/security.md)
        self.auth_key_id = auth_key_id
        self.auth_key = auth_key

    def __repr__(self):
        return ("Settings(bootstrap_servers=%r, topic=%r, reply_topic=%r, reply_partitions=%r, "
                "verdict_timeout=%r, on_timeout=%r, flags=%r, details_forward=%r, lock_dir=%r)" % (
                    self.bootstrap_servers, self.topic, self.reply_topic, self.reply_partitions,
                    self.verdict_timeout, self.on_timeout, self.flags, self.details_forward,
                    self.lock_dir))


def default_lock_dir():
    """$XDG_RUNTIME_DIR when set (per user, tmpfs), else /tmp."""
    d = os.environ.get("XDG_RUNTIME_DIR")
    return d if d and os.path.isdir(d) else "/tmp"


def parse_partition_range(text):
    """``"0-7"``, ``"3"``, ``"0-3,8-11"`` -> sorted list of partitions."""
    out = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)\s*(?:-\s*(\d+))?", part)
        if not m:
            raise SettingsError("hookd_reply_partitions: %r is not N or N-M" % part)
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo or hi > 2147483647:
            raise SettingsError("hookd_reply_partitions: bad range %r" % part)
        out.update(range(lo, hi + 1))
    if not out:
        raise SettingsError("hookd_reply_partitions is empty")
    return sorted(out)


def settings_from_section(section, logger=None):
    """Build Settings from the [Hooks] section of acme2certifier's parsed
    config (a configparser SectionProxy, or a mapping in tests).

    The flags are computed exactly as acme2certifier 0.46.3 computes them:
    ``getboolean("ignore_X_hook_failure")`` with its defaults, configparser's
    boolean words (1/yes/true/on, 0/no/false/off, any case). A bad boolean
    raises ValueError, as it does in acme2certifier."""
    log = logger or LOG
    get = section.get
    bootstrap = (get("hookd_bootstrap_servers") or "").strip()
    if not bootstrap:
        raise SettingsError("[Hooks] hookd_bootstrap_servers is required")

    flags = {}
    for phase, key, default in A2C_FLAG_DEFAULTS:
        flags[phase] = _getboolean(section, key, default)
    details = _getboolean(section, "hook_error_details_forward", False)

    found_allow = sorted(k for k in section.keys() if re.fullmatch(r"allow_\w+_hook_failure", k))
    if found_allow:
        log.warning("acme_hookd_a2c: [Hooks] %s: acme2certifier 0.46 ignores allow_*_hook_failure "
                    "and reads only ignore_*_hook_failure; the bridge sends what acme2certifier "
                    "uses: %s", ", ".join(found_allow), _flags_text(flags, details))

    timeout_text = (get("hookd_verdict_timeout") or str(DEFAULT_VERDICT_TIMEOUT)).strip()
    try:
        timeout = float(timeout_text)
    except ValueError:
        raise SettingsError("[Hooks] hookd_verdict_timeout: %r is not a number of seconds"
                            % timeout_text) from None
    if not 0 < timeout <= 3600:
        raise SettingsError("[Hooks] hookd_verdict_timeout must be in (0, 3600], got %r" % timeout_text)

    on_timeout = (get("hookd_on_timeout") or "fail").strip().lower()
    if on_timeout not in ("fail", "continue"):
        raise SettingsError("[Hooks] hookd_on_timeout must be fail or continue, got %r" % on_timeout)

    partitions = get("hookd_reply_partitions")
    rdkafka = {}
    for k in section.keys():
        if k.startswith("hookd_rdkafka."):
            prop = k[len("hookd_rdkafka."):]
            if prop:
                rdkafka[prop] = section.get(k)

    key_id = (get("hookd_auth_key_id") or "").strip() or None
    key_file = (get("hookd_auth_key_file") or "").strip() or None
    if (key_id is None) != (key_file is None):
        raise SettingsError("[Hooks] hookd_auth_key_id and hookd_auth_key_file go together")
    if key_id is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", key_id):
        raise SettingsError("[Hooks] hookd_auth_key_id: 1 to 64 of [A-Za-z0-9._-]")
    auth_key = read_key_file(key_file) if key_file else None

    return Settings(
        bootstrap_servers=bootstrap,
        topic=(get("hookd_topic") or DEFAULT_TOPIC).strip(),
        reply_topic=(get("hookd_reply_topic") or DEFAULT_REPLY_TOPIC).strip(),
        reply_partitions=parse_partition_range(partitions) if partitions and partitions.strip() else None,
        verdict_timeout=timeout,
        on_timeout=on_timeout,
        rdkafka=rdkafka,
        flags=flags,
        details_forward=details,
        lock_dir=(get("hookd_lock_dir") or "").strip() or None,
        auth_key_id=key_id,
        auth_key=auth_key,
    )


def read_key_file(path):
    """A key file as the worker's [auth] keys reads it (docs/security.md):
    "hex:<hex>", "base64:<base64>" or the raw bytes, trailing whitespace
    ignored, 16 to 1024 bytes, no permission for group or others."""
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            raw = f.read(64 * 1024 + 1)
    except OSError as e:
        raise SettingsError("[Hooks] hookd_auth_key_file: %s" % e) from None
    if st.st_mode & 0o077:
        raise SettingsError("[Hooks] hookd_auth_key_file %s: permissions %04o are too open "
                            "(group/others must have no access)" % (path, st.st_mode & 0o7777))
    raw = raw.rstrip()
    try:
        if raw.startswith(b"hex:"):
            key = bytes.fromhex(raw[4:].decode("ascii"))
        elif raw.startswith(b"base64:"):
            key = base64.b64decode(raw[7:], validate=True)
        else:
            key = raw
    except (ValueError, UnicodeDecodeError):
        raise SettingsError("[Hooks] hookd_auth_key_file %s: not valid hex/base64" % path) from None
    if not 16 <= len(key) <= 1024:
        raise SettingsError("[Hooks] hookd_auth_key_file %s: %d bytes of secret (16 to 1024)"
                            % (path, len(key)))
    return key


def _signed_header(name):
    n = name.lower()
    return (n.startswith("ce_") or n.startswith("kafka_reply")
            or n in ("content-type", "hookd.flags", "kafka_correlationid"))


def sign_headers(key_id, key, msg_key, value, headers):
    """The hookd-signature header of a message (name, bytes), over the
    canonical form v1 of docs/security.md: the key, the value, and the
    signed headers (ce_*, content-type, hookd.flags, kafka_reply*,
    kafka_correlationId) sorted by name."""
    def lp(b):
        return b"\xff\xff\xff\xff" if b is None else struct.pack(">I", len(b)) + b
    signed = sorted(((n, v) for n, v in headers if _signed_header(n)), key=lambda h: h[0].encode())
    m = b"acme-hookd-hmac-v1\n" + lp(msg_key) + lp(value) + struct.pack(">I", len(signed))
    for n, v in signed:
        m += lp(n.encode()) + lp(v)
    mac = hmac.new(key, m, hashlib.sha256).digest()
    return ("hookd-signature", b"v1;kid=" + key_id.encode() + b";sig=" + base64.b64encode(mac))


_BOOLEAN_STATES = {"1": True, "yes": True, "true": True, "on": True,
                   "0": False, "no": False, "false": False, "off": False}


def _getboolean(section, key, default):
    """configparser's getboolean(key, fallback=default), for a SectionProxy
    or a plain mapping."""
    getb = getattr(section, "getboolean", None)
    if getb is not None:
        return getb(key, fallback=default)
    if key not in section:
        return default
    v = str(section[key]).lower()
    if v not in _BOOLEAN_STATES:
        raise ValueError("Not a boolean: %s" % section[key])
    return _BOOLEAN_STATES[v]


def _flags_text(flags, details_forward):
    def b(v):
        return "true" if v else "false"
    return ("allow_pre_hook_failure=%s,allow_success_hook_failure=%s,allow_post_hook_failure=%s,"
            "hook_error_details_forward=%s" % (b(flags["pre"]), b(flags["success"]), b(flags["post"]),
                                               b(details_forward)))


def flags_header(settings):
    """The ``hookd.flags`` header value: the effective flags, ASCII."""
    return _flags_text(settings.flags, settings.details_forward).encode("ascii")


# ---------------------------------------------------------------- events


def _std_base64(text):
    """Standard padded base64 without whitespace, as the schema requires
    (acme2certifier may hand over base64url, unpadded, or PEM)."""
    if text is None:
        return None
    s = str(text)
    if "-----BEGIN" in s:
        s = "".join(line for line in s.splitlines() if line and not line.startswith("-----"))
    s = "".join(s.split()).replace("-", "+").replace("_", "/").rstrip("=")
    return s + "=" * (-len(s) % 4)


def _pem_chain(text):
    """The certificate chain with LF line ends and no text around the blocks."""
    if text is None:
        return None
    s = str(text).replace("\r\n", "\n")
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----\n?.*?-----END CERTIFICATE-----", s, re.S)
    if not blocks:
        return s
    out = []
    for b in blocks:
        body = "".join(b[len("-----BEGIN CERTIFICATE-----"):-len("-----END CERTIFICATE-----")].split())
        out.append("-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % "\n".join(
            body[i:i + 64] for i in range(0, len(body), 64)))
    return "".join(out)


def enrollment_fields(etype, certificate_name, order_name, csr, certificate=None,
                      certificate_raw=None, poll_identifier=None, error=None):
    """The schema's fields of an event of type ``etype``, normalized."""
    f = {"certificate_name": str(certificate_name), "order_name": str(order_name),
         "csr": _std_base64(csr)}
    if etype == ISSUED:
        f["certificate"] = _pem_chain(certificate)
        f["certificate_raw"] = _std_base64(certificate_raw)
        if poll_identifier is not None:
            f["poll_identifier"] = str(poll_identifier)
    elif etype == FAILED:
        f["error"] = str(error) if error is not None and str(error) != "" else PENDING_ERROR
    return f


def event_id(etype, fields):
    """Deterministic, retry-safe id: a retried finalize of the same order
    with the same CSR (and certificate / error) is the same event.
    ``a2c-`` + sha256 hex of type|certificate_name|order_name|csr[|certificate|error]."""
    parts = [etype, fields["certificate_name"], fields["order_name"], fields["csr"]]
    if etype == ISSUED:
        parts.append(fields.get("certificate_raw") or "")
    elif etype == FAILED:
        parts.append(fields["error"])
    h = hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()
    return "a2c-" + h


def now_rfc3339():
    """UTC, milliseconds, 'Z'."""
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def build_event(etype, fields, eid=None, time_text=None):
    """The Kafka value: plain JSON, exactly the schema's members."""
    body = {"type": etype, "id": eid or event_id(etype, fields), "time": time_text or now_rfc3339()}
    body.update(fields)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_partition(partition):
    """Spring's form of kafka_replyPartition: 4-byte big-endian signed int."""
    return struct.pack(">i", partition)


def decode_partition(raw):
    return struct.unpack(">i", raw)[0]


def request_headers(settings, reply_partition, correlation_id):
    """The headers of one request (list of (name, bytes))."""
    return [
        (HEADER_REPLY_TOPIC, settings.reply_topic.encode("utf-8")),
        (HEADER_REPLY_PARTITION, encode_partition(reply_partition)),
        (HEADER_CORRELATION_ID, correlation_id),
        (HEADER_FLAGS, flags_header(settings)),
    ]


def failed_run(result, phase):
    """(handler, error) of the first run of ``phase`` with outcome fail
    (allowed or not), or None."""
    for run in result.get("runs") or []:
        if isinstance(run, dict) and run.get("phase") == phase and run.get("outcome") == "fail":
            return (str(run.get("handler") or "?"), str(run.get("error") or "%s-hook failed" % phase))
    return None


def parse_result(value):
    """A reply value as a dict with a runs list, or None when malformed."""
    try:
        r = json.loads(value)
    except (TypeError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(r, dict) or not isinstance(r.get("runs"), list) or \
            r.get("verdict") not in ("completed", "failed"):
        return None
    return r


# ---------------------------------------------------------------- replies


class _Waiter:
    __slots__ = ("event", "result", "error", "event_id")

    def __init__(self, eid):
        self.event = threading.Event()
        self.result = None
        self.error = None
        self.event_id = eid


class ReplyRouter:
    """Matches replies to waiting requests by correlation id. Foreign replies
    (no waiter: another process's, a predecessor's, or one that came after
    its request timed out) and malformed ones are ignored and counted."""

    def __init__(self):
        self._lock = threading.Lock()
        self._waiting = {}
        self.counters = {"requests": 0, "replies": 0, "foreign": 0, "malformed": 0,
                         "timeouts": 0, "send_errors": 0}

    def register(self, correlation_id, eid):
        w = _Waiter(eid)
        with self._lock:
            self._waiting[correlation_id] = w
            self.counters["requests"] += 1
        return w

    def forget(self, correlation_id):
        with self._lock:
            self._waiting.pop(correlation_id, None)

    def count(self, name):
        with self._lock:
            self.counters[name] += 1
            return self.counters[name]

    def fail(self, correlation_id, error):
        """A request that cannot get a reply (its send failed)."""
        with self._lock:
            w = self._waiting.pop(correlation_id, None)
            if w is not None:
                self.counters["send_errors"] += 1
        if w is not None:
            w.error = error
            w.event.set()

    def deliver(self, headers, value, where=""):
        """Route one reply message. Returns 'matched', 'foreign' or 'malformed'."""
        corr = None
        for k, v in headers or ():
            if k == HEADER_CORRELATION_ID:
                corr = bytes(v) if v is not None else None
        with self._lock:
            w = self._waiting.get(corr) if corr is not None else None
        if w is None:
            n = self.count("foreign")
            LOG.warning("acme_hookd_a2c: ignored a foreign reply %s (correlation id %s; %d foreign so far)",
                        where, corr.hex() if corr else "missing", n)
            return "foreign"
        result = parse_result(value)
        if result is None or (result.get("event_id") not in (None, w.event_id)):
            n = self.count("malformed")
            LOG.warning("acme_hookd_a2c: ignored a malformed reply %s for event %s (%d malformed so far)",
                        where, w.event_id, n)
            return "malformed"
        with self._lock:
            if self._waiting.pop(corr, None) is None:
                self.counters["foreign"] += 1
                return "foreign"
            self.counters["replies"] += 1
        w.result = result
        w.event.set()
        return "matched"


# ---------------------------------------------------------------- transport

def claim_partition(lock_dir, topic, candidates, logger=None):
    """Claim a reply partition for this process: the first of ``candidates``
    whose lock file ``<lock_dir>/<topic>.<partition>.lock`` this process
    can lock (fcntl, released by the kernel when the process ends, not
    inherited by fork children). Returns (partition, exclusive, fd); keep
    fd open for the life of the process. When every lock is taken, share
    one partition chosen by pid (exclusive False, fd None) and warn."""
    log = logger or LOG
    for p in candidates:
        path = os.path.join(lock_dir, "%s.%d.lock" % (topic, p))
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as e:
            log.warning("acme_hookd_a2c: cannot open lock file %s: %s", path, e)
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                log.warning("acme_hookd_a2c: cannot lock %s: %s", path, e)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, ("%d\n" % os.getpid()).encode())
        return p, True, fd
    p = candidates[os.getpid() % len(candidates)]
    log.warning("acme_hookd_a2c: every reply partition of %s in %s is taken on this host "
                "(lock files in %s); sharing partition %d, replies filtered by correlation id. "
                "Give this host more partitions (hookd_reply_partitions) or the topic more.",
                topic, candidates, lock_dir, p)
    return p, False, None



def _retrying(fn, seconds, what):
    """fn() until it does not raise a retriable Kafka error (a new topic's
    leader not known yet, a leader moving) or `seconds` have passed."""
    from confluent_kafka import KafkaException  # noqa: deferred import

    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except KafkaException as e:
            err = e.args[0] if e.args else None
            retriable = getattr(err, "retriable", lambda: False)() or getattr(err, "code", lambda: None)() in (
                6, 5, 3)  # NOT_LEADER_FOR_PARTITION, LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PART
            if not retriable or time.monotonic() > deadline:
                raise
            LOG.debug("acme_hookd_a2c: %s: %s; retrying", what, e)
            time.sleep(0.1)


class KafkaTransport:
    """The process's producer and reply reader (confluent-kafka)."""

    def __init__(self, settings, router, logger=None):
        from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: deferred import

        self.log = logger or LOG
        self.settings = settings
        self.router = router
        self._stop = threading.Event()
        self._lock_fd = None
        base = {"bootstrap.servers": settings.bootstrap_servers,
                "client.id": "acme-hookd-a2c-%d" % os.getpid()}
        pconf = dict(base)
        pconf.update(PRODUCER_DEFAULTS)
        pconf.update(settings.rdkafka)
        cconf = dict(base)
        cconf.update(CONSUMER_DEFAULTS)
        cconf["group.id"] = "acme-hookd-a2c-reply-reader"  # never joins: assign() only, no commits
        cconf.update(settings.rdkafka)
        self.producer = Producer(pconf)
        self.consumer = Consumer(cconf)
        deadline = min(settings.verdict_timeout, 10.0)
        try:
            md = self.consumer.list_topics(settings.reply_topic, timeout=deadline)
            t = md.topics.get(settings.reply_topic)
            if t is None or t.error is not None or not t.partitions:
                raise BridgeUnavailable("reply topic %s is not available: %s" % (
                    settings.reply_topic, t.error if t is not None else "unknown topic"))
            existing = sorted(t.partitions)
            wanted = settings.reply_partitions or existing
            candidates = [p for p in wanted if p in t.partitions]
            if not candidates:
                raise BridgeUnavailable("hookd_reply_partitions %s: none exists in %s (%d partitions)"
                                        % (wanted, settings.reply_topic, len(existing)))
            self.partition, self.exclusive, self._lock_fd = claim_partition(
                settings.lock_dir, settings.reply_topic, candidates, self.log)
            tp = TopicPartition(settings.reply_topic, self.partition)
            # The high watermark before the first request is sent: every reply
            # to this process comes after it, and nothing older (a
            # predecessor's replies) is ever read.
            hi = _retrying(lambda: self.consumer.get_watermark_offsets(tp, timeout=deadline)[1],
                           deadline, "the high watermark of %s[%d]" % (settings.reply_topic, self.partition))
            self.consumer.assign([TopicPartition(settings.reply_topic, self.partition, hi)])
        except Exception:
            self.close()
            raise
        self.log.info("acme_hookd_a2c: process %d reads replies on %s[%d] from offset %d (%s)",
                      os.getpid(), settings.reply_topic, self.partition, hi,
                      "exclusive" if self.exclusive else "shared, filtered by correlation id")
        self._thread = threading.Thread(target=self._run, name="acme-hookd-a2c-replies", daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.producer.poll(0)
                # poll() returns at the first reply (consume() would wait for
                # a full batch or the whole timeout); then drain what is there.
                first = self.consumer.poll(0.05)
                msgs = [first] + self.consumer.consume(256, timeout=0) if first is not None else []
            except Exception as e:  # a closed client at interpreter exit
                if self._stop.is_set():
                    return
                self.log.error("acme_hookd_a2c: reply reader: %s", e)
                time.sleep(0.1)
                continue
            for m in msgs:
                if m.error():
                    self.log.warning("acme_hookd_a2c: reply reader: %s", m.error())
                    continue
                self.router.deliver(m.headers(), m.value(),
                                    "at %s[%d]@%d" % (m.topic(), m.partition(), m.offset()))

    def send(self, value, key, headers, correlation_id):
        def on_delivery(err, _msg):
            if err is not None:
                self.router.fail(correlation_id, BridgeUnavailable("event not delivered: %s" % err))

        while True:
            try:
                self.producer.produce(self.settings.topic, value=value, key=key, headers=headers,
                                      on_delivery=on_delivery)
                break
            except BufferError:
                self.producer.poll(0.01)
        self.producer.poll(0)

    def close(self):
        self._stop.set()
        t = getattr(self, "_thread", None)
        if t is not None and t is not threading.current_thread():
            t.join(2)
        try:
            self.consumer.close()
        except Exception:
            pass
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


# ---------------------------------------------------------------- the process's client


class Bridge:
    """Sends requests and waits for their replies; one per process."""

    def __init__(self, settings, transport_factory=KafkaTransport, logger=None):
        self.settings = settings
        self.router = ReplyRouter()
        self.log = logger or LOG
        self.transport = transport_factory(settings, self.router, self.log)

    def request(self, etype, fields, phase):
        """Publish one event and wait for its result. Returns the result
        dict, or None when the wait timed out and hookd_on_timeout=continue."""
        s = self.settings
        eid = event_id(etype, fields)
        value = build_event(etype, fields, eid)
        corr = uuid.uuid4().bytes
        waiter = self.router.register(corr, eid)
        started = time.monotonic()
        try:
            key = fields["order_name"].encode("utf-8")
            headers = request_headers(s, self.transport.partition, corr)
            if s.auth_key is not None:
                headers.append(sign_headers(s.auth_key_id, s.auth_key, key, value, headers))
            self.transport.send(value, key, headers, corr)
            got = waiter.event.wait(s.verdict_timeout)
        finally:
            self.router.forget(corr)
        if waiter.error is not None:
            raise waiter.error
        if not got:
            self.router.count("timeouts")
            msg = ("no verdict from acme-hookd within %gs: order %s, phase %s, event %s "
                   "(topic %s, replies on %s[%d])" % (s.verdict_timeout, fields["order_name"], phase,
                                                      eid, s.topic, s.reply_topic, self.transport.partition))
            if s.on_timeout == "continue":
                self.log.warning("acme_hookd_a2c: %s; hookd_on_timeout=continue: going on", msg)
                return None
            self.log.error("acme_hookd_a2c: %s; failing the hook (hookd_on_timeout=fail)", msg)
            raise VerdictTimeout(msg)
        self.log.debug("acme_hookd_a2c: verdict %s for %s (order %s, phase %s) in %.1f ms",
                       waiter.result.get("verdict"), eid, fields["order_name"], phase,
                       (time.monotonic() - started) * 1000)
        return waiter.result

    def close(self):
        self.transport.close()


_STATE_LOCK = threading.Lock()
_STATE = {"pid": None, "bridge": None, "settings": None, "settings_error": None}
# Clients inherited across fork(): never used or destroyed in the child
# (librdkafka's threads do not survive a fork), only kept referenced.
_INHERITED = []


def _after_fork_in_child():
    global _STATE_LOCK
    _STATE_LOCK = threading.Lock()
    if _STATE["bridge"] is not None:
        _INHERITED.append(_STATE["bridge"])
    _STATE["bridge"] = None
    _STATE["pid"] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _load_settings(logger):
    """Settings from acme2certifier's own configuration (the same file and
    parser acme2certifier uses), once per process."""
    if _STATE["settings"] is not None or _STATE["settings_error"] is not None:
        return
    try:
        from acme2certifier.acme_srv.helper import load_config  # noqa: deferred import
    except ImportError:  # older layouts
        from acme_srv.helper import load_config  # type: ignore  # noqa
    try:
        config = load_config(logger, "Hooks")
        if "Hooks" not in config:
            raise SettingsError("acme_srv.cfg has no [Hooks] section")
        _STATE["settings"] = settings_from_section(config["Hooks"], logger)
        logger.info("acme_hookd_a2c: events to %s on %s, replies on %s, verdict timeout %gs "
                    "(on timeout: %s), flags %s", _STATE["settings"].topic,
                    _STATE["settings"].bootstrap_servers, _STATE["settings"].reply_topic,
                    _STATE["settings"].verdict_timeout, _STATE["settings"].on_timeout,
                    flags_header(_STATE["settings"]).decode())
    except Exception as e:
        _STATE["settings_error"] = e
        logger.critical("acme_hookd_a2c: bad configuration, every hook call will fail: %s", e)


def _bridge(logger, settings=None, transport_factory=None):
    """The process's Bridge, created at first use and again after fork."""
    with _STATE_LOCK:
        if _STATE["bridge"] is not None and _STATE["pid"] == os.getpid():
            return _STATE["bridge"]
        if _STATE["bridge"] is not None:  # inherited through a fork not seen by register_at_fork
            _INHERITED.append(_STATE["bridge"])
            _STATE["bridge"] = None
        if settings is None:
            _load_settings(logger)
            if _STATE["settings_error"] is not None:
                raise BridgeUnavailable("acme_hookd_a2c is not configured: %s" % _STATE["settings_error"])
            settings = _STATE["settings"]
        try:
            b = Bridge(settings, transport_factory or KafkaTransport, logger)
        except HookFailure:
            raise
        except Exception as e:
            raise BridgeUnavailable("cannot reach Kafka at %s: %s" % (settings.bootstrap_servers, e)) from e
        _STATE["bridge"] = b
        _STATE["pid"] = os.getpid()
        return b


def stats():
    """This process's counters: requests, replies, foreign, malformed,
    timeouts, send_errors, and the reply partition (None before first use)."""
    b = _STATE["bridge"] if _STATE["pid"] == os.getpid() else None
    if b is None:
        return {"partition": None}
    out = dict(b.router.counters)
    out["partition"] = b.transport.partition
    return out


def _reset_for_tests():
    """Drop the process's settings and bridge (unit tests only)."""
    with _STATE_LOCK:
        if _STATE["bridge"] is not None:
            _STATE["bridge"].close()
        _STATE.update({"pid": None, "bridge": None, "settings": None, "settings_error": None})


# ---------------------------------------------------------------- the hooks


class Hooks:
    """acme2certifier's hook interface, answered by the acme-hookd fleet.

    acme2certifier builds one instance per request and, within one request,
    calls success_hook then post_hook on it: the result of the issued event
    (which holds both the success and the post runs) is kept on the
    instance for post_hook."""

    def __init__(self, logger, bridge=None) -> None:
        self.logger = logger or LOG
        self._bridge_override = bridge
        self._issued_sent = False
        self._issued_result = None
        if bridge is None:
            with _STATE_LOCK:
                _load_settings(self.logger)

    def __enter__(self):
        return self

    def __exit__(self, *args):
        """Nothing to release: the clients belong to the process."""

    def _client(self):
        return self._bridge_override or _bridge(self.logger)

    def _raise_if_failed(self, result, phase):
        if result is None:
            return
        f = failed_run(result, phase)
        if f is not None:
            raise HookFailure("%s: %s" % f)

    def pre_hook(self, certificate_name, order_name, csr) -> None:
        """Publish a requested event; raise if a pre run failed."""
        fields = enrollment_fields(REQUESTED, certificate_name, order_name, csr)
        self._raise_if_failed(self._client().request(REQUESTED, fields, "pre"), "pre")

    def success_hook(self, certificate_name, order_name, csr, certificate, certificate_raw,
                     poll_identifier) -> None:
        """Publish an issued event; keep its result for post_hook; raise if a
        success run failed."""
        fields = enrollment_fields(ISSUED, certificate_name, order_name, csr, certificate,
                                   certificate_raw, poll_identifier)
        self._issued_sent = True
        self._issued_result = self._client().request(ISSUED, fields, "success")
        self._raise_if_failed(self._issued_result, "success")

    def post_hook(self, certificate_name, order_name, csr, error) -> None:
        """With an error: publish a failed event and raise if its post run
        failed. Without one after success_hook: raise if the issued event's
        result has a failed post run (nothing is published again). Without
        one and without success_hook (the CA answered with a poll identifier
        only): publish a failed event with error "enrollment pending"."""
        if error is None and self._issued_sent:
            result, self._issued_result = self._issued_result, None
            self._raise_if_failed(result, "post")
            return
        fields = enrollment_fields(FAILED, certificate_name, order_name, csr, error=error)
        self._raise_if_failed(self._client().request(FAILED, fields, "post"), "post")
