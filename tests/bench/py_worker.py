#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The peer a user would otherwise write: acme-hookd's job in Python with
confluent-kafka, done carefully (at-least-once, per-partition commit
watermark, dead letters for bad input), with no-op hooks.

    py_worker.py -c FILE            the [kafka]/[worker]/[Hooks] keys of acme-hookd's INI
    py_worker.py --bootstrap B --group G --input T --result R --dlq D [--worker-id W]

It is the benchmark's comparison point, so it does the whole job acme-hookd
does, no less:
- input validation to schemas/input-event.schema.json, keyword for keyword
  (plain JSON, CloudEvents structured mode, and binary mode mapped as
  schemas/README.md describes), plus the checks a schema cannot express
  (message size, strict UTF-8, duplicate members, NaN/Infinity, lone
  surrogates), written by hand with precompiled patterns: a generic JSON
  Schema validator costs milliseconds per event;
- the phases of the event type (requested: pre; issued: success then post;
  failed: post), a hook that raises being a failure that the
  allow_*_hook_failure flags decide about, as in acme-hookd;
- a result event whose value follows schemas/result-event.schema.json, with
  CloudEvents binary-mode headers;
- dead letters carrying the input unchanged plus acme-hookd's context
  headers (schemas/dead-letter.schema.json, worker/result.c).

It reads acme-hookd's config format so the integration harness can be
checked against it too. decode(), result_value(), result_headers() and
dead_letter_headers() do not need confluent-kafka: tests/bench/
test_py_parity.py checks them against the schemas' corpus.
"""
import argparse
import collections
import configparser
import json
import os
import re
import signal
import sys
import time

MAX_EVENT_BYTES = 1024 * 1024  # [worker] max_event_bytes
MAX_FIELD_CHARS = 262144       # [worker] max_field_bytes, counted in characters like maxLength
MAX_ERROR_BYTES = 1024         # [worker] max_error_bytes
CE_MAX_ATTRIBUTES = 64

REQUESTED, ISSUED, FAILED = ("acme.enrollment.requested", "acme.enrollment.issued",
                             "acme.enrollment.failed")
PHASES = {REQUESTED: ("pre",), ISSUED: ("success", "post"), FAILED: ("post",)}
# acme2certifier's defaults: only a post_hook failure lets the enrollment go on.
ALLOW_FAILURE = {"pre": False, "success": False, "post": True}
HANDLER = "noop"

# ---- the input codec -------------------------------------------------------------------------
#
# Every pattern is matched with fullmatch(): JSON Schema's "$" is the end of
# the string, Python's "$" also matches before a final newline.
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")  # with len % 4 == 0: #/$defs/base64
# #/$defs/pemChain, (BLOCK NL+)* BLOCK NL*, written as BLOCK (NL+ BLOCK)* NL* with
# possessive quantifiers (Python 3.11): the same language, a quarter of the time,
# since nothing a quantifier took ever has to be given back.
_PEM_BLOCK = r"-----BEGIN CERTIFICATE-----\r?\n(?:[A-Za-z0-9+/=]++\r?\n)++-----END CERTIFICATE-----"
try:
    _PEM = re.compile(_PEM_BLOCK + r"(?:(?:\r?\n)++" + _PEM_BLOCK + r")*+(?:\r?\n)*+")
except re.error:  # before 3.11: the schema's pattern as it is
    _PEM = re.compile(
        r"(?:-----BEGIN CERTIFICATE-----\r?\n(?:[A-Za-z0-9+/=]+\r?\n)+-----END CERTIFICATE-----"
        r"(?:\r?\n)+)*"
        r"-----BEGIN CERTIFICATE-----\r?\n(?:[A-Za-z0-9+/=]+\r?\n)+-----END CERTIFICATE-----"
        r"(?:\r?\n)*")
_TIME = re.compile(
    r"([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:"
    r"[0-5][0-9](?:\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])")
_MDAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_URIREF = re.compile(r"[!-~]+")
_CONTENT_TYPE = re.compile(r"application/json(?:; *charset=[Uu][Tt][Ff]-8)?")
_ATTR_NAME = re.compile(r"[a-z0-9]{1,20}")
_UNQUOTABLE = re.compile(r"[\x00-\x1f\x7f'\\]")


class Invalid(ValueError):
    """The event does not pass: the message says what, in its wire form's names."""


def _quote(s):
    """A printable excerpt of an untrusted string for an error message."""
    q = _UNQUOTABLE.sub("?", s[:64])
    return q + "..." if len(s) > 64 else q


# Each check returns None, or what is wrong; the caller adds the label (only then).
def _text(v):
    if type(v) is not str:
        return "not a string"
    if len(v) > MAX_FIELD_CHARS:
        return "%d characters, limit %d" % (len(v), MAX_FIELD_CHARS)
    if "\x00" in v:
        return "holds a NUL character"
    return None


def _nonempty(v):
    if type(v) is not str:
        return "not a string"
    n = len(v)
    if n == 0:
        return "empty"
    if n > MAX_FIELD_CHARS:
        return "%d characters, limit %d" % (n, MAX_FIELD_CHARS)
    if "\x00" in v:
        return "holds a NUL character"
    return None


def _nullable(v):
    return None if v is None else _text(v)


def _base64(v):
    if type(v) is not str:
        return "not a string"
    n = len(v)
    if n == 0:
        return "empty"
    if n > MAX_FIELD_CHARS:
        return "%d characters, limit %d" % (n, MAX_FIELD_CHARS)
    if n & 3 or _B64.fullmatch(v) is None:
        return "not base64 (RFC 4648 alphabet, padded, no whitespace)"
    return None


def _pem(v):
    if type(v) is not str:
        return "not a string"
    if len(v) > MAX_FIELD_CHARS:
        return "%d characters, limit %d" % (len(v), MAX_FIELD_CHARS)
    if _PEM.fullmatch(v) is None:
        return "not a PEM certificate chain"
    return None


def _time(v):
    """#/$defs/time: the pattern, then format date-time's day-of-month check."""
    if type(v) is not str:
        return "not a string"
    if len(v) > MAX_FIELD_CHARS:
        return "%d characters, limit %d" % (len(v), MAX_FIELD_CHARS)
    m = _TIME.fullmatch(v)
    if m is None:
        return "not an RFC 3339 date-time"
    day = int(m[3])
    if day > 28:
        month = int(m[2])
        if day > _MDAYS[month]:
            return "not an RFC 3339 date-time"
        if month == 2 and day == 29:
            year = int(m[1])
            if year % 4 or (year % 100 == 0 and year % 400):
                return "not an RFC 3339 date-time"
    return None


def _uriref(v):
    if type(v) is not str:
        return "not a string"
    if len(v) > MAX_FIELD_CHARS:
        return "%d characters, limit %d" % (len(v), MAX_FIELD_CHARS)
    if _URIREF.fullmatch(v) is None:
        return "not a URI-reference (empty, spaces or non-ASCII)"
    return None


# requestedFields / issuedFields / failedFields: (name, check, required)
_FIELDS = {
    REQUESTED: (("certificate_name", _nonempty, True), ("order_name", _nonempty, True),
                ("csr", _base64, True)),
    ISSUED: (("certificate_name", _nonempty, True), ("order_name", _nonempty, True),
             ("csr", _base64, True), ("certificate", _pem, True),
             ("certificate_raw", _base64, True), ("poll_identifier", _nullable, False)),
    FAILED: (("certificate_name", _nonempty, True), ("order_name", _nonempty, True),
             ("csr", _base64, True), ("error", _nonempty, True)),
}
_NAMES = {t: frozenset(f[0] for f in spec) for t, spec in _FIELDS.items()}
_PLAIN_NAMES = {t: names | {"type", "id", "time"} for t, names in _NAMES.items()}
# The CloudEvents attributes the schema names, with their checks (specversion,
# type and data are checked on their own).
_CE_ATTRS = {"id": _nonempty, "source": _uriref, "time": _time, "dataschema": _uriref,
             "subject": _nonempty}
_CE_KNOWN = frozenset(("specversion", "type", "data", "datacontenttype")) | frozenset(_CE_ATTRS)
_CE_REQUIRED = ("id", "source", "type", "time", "data")


def _unique_members(pairs):
    d = dict(pairs)
    if len(d) != len(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                raise Invalid("duplicate member '%s'" % _quote(k))
            seen.add(k)
    return d


def _no_constant(name):
    raise Invalid("not JSON: %s is not a JSON number" % name)


_loads = json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=_no_constant).decode


def _parse(what, raw):
    """Strict RFC 8259 JSON in strict UTF-8 (no BOM, no NaN, no duplicate members)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Invalid("%s is not valid UTF-8 (byte %d)" % (what, e.start)) from None
    try:
        doc = _loads(text)
    except Invalid as e:
        raise Invalid("%s: %s" % (what, e)) from None
    except RecursionError:
        raise Invalid("%s is not JSON: nested too deeply" % what) from None
    except ValueError as e:  # JSONDecodeError, and int() of an absurd number of digits
        raise Invalid("%s is not JSON: %s" % (what, e)) from None
    # json keeps a lone \ud800 escape as a lone surrogate: no UTF-8 exists for it.
    if "\\u" in text:
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid("%s is not JSON: lone UTF-16 surrogate in a \\u escape" % what) from None
    return doc


_MISSING = object()


def _check_fields(obj, etype, allowed, label):
    """The enrollment fields of `etype` in `obj`; `allowed` also holds the envelope names."""
    if not allowed.issuperset(obj):
        for k in obj:
            if k not in allowed:
                raise Invalid("unknown %s for type %s" % (label % _quote(k), etype))
    for name, check, required in _FIELDS[etype]:
        v = obj.get(name, _MISSING)
        if v is _MISSING:
            if required:
                raise Invalid("missing " + label % name)
            continue
        why = check(v)
        if why is not None:
            raise Invalid("%s: %s" % (label % name, why))


def _check_plain(root):
    for name in ("type", "id", "time"):
        if name not in root:
            raise Invalid("missing field '%s'" % name)
    etype = root["type"]
    if type(etype) is not str:
        raise Invalid("field 'type': not a string")
    if etype not in _FIELDS:
        raise Invalid("unknown event type '%s'" % _quote(etype))
    why = _nonempty(root["id"])
    if why is not None:
        raise Invalid("field 'id': " + why)
    why = _time(root["time"])
    if why is not None:
        raise Invalid("field 'time': " + why)
    _check_fields(root, etype, _PLAIN_NAMES[etype], "field '%s'")


def _attr_label(binary, name):
    if not binary:
        return "attribute '%s'" % name
    if name == "datacontenttype":
        return "header 'content-type'"
    return "header '%s'" % (name if name.startswith("ce_") else "ce_" + name)


def _check_cloudevent(root, binary):
    """#/$defs/cloudevent; binary mode arrives here mapped to the same shape."""
    if len(root) > CE_MAX_ATTRIBUTES:
        raise Invalid("%d CloudEvents attributes, limit %d" % (len(root), CE_MAX_ATTRIBUTES))
    if root.get("specversion") != "1.0":
        raise Invalid("%s: must be \"1.0\"" % _attr_label(binary, "specversion"))
    for name in _CE_REQUIRED:
        if name not in root:
            raise Invalid("missing " + ("value" if binary and name == "data"
                                        else _attr_label(binary, name)))
    for name in root:
        if name not in _CE_KNOWN and _ATTR_NAME.fullmatch(name) is None:
            raise Invalid("%s: not a CloudEvents attribute name (1-20 of a-z, 0-9)"
                          % _attr_label(binary, _quote(name)))
    etype = root["type"]
    if type(etype) is not str:
        raise Invalid("%s: not a string" % _attr_label(binary, "type"))
    if etype not in _FIELDS:
        raise Invalid("unknown event type '%s'" % _quote(etype))
    for name, v in root.items():
        check = _CE_ATTRS.get(name)
        if check is not None:
            why = check(v)
        elif name in ("specversion", "type", "data"):
            continue
        elif name == "datacontenttype":
            why = ("not a string" if type(v) is not str
                   else None if _CONTENT_TYPE.fullmatch(v) else "not application/json")
        elif v is True or v is False:
            why = None  # extension attribute, boolean
        elif type(v) is int or (type(v) is float and v.is_integer()):
            why = None if -2147483648 <= v <= 2147483647 else "not a 32-bit integer"
        elif type(v) is str:
            why = _text(v)
        else:
            why = ("not a 32-bit integer" if type(v) is float
                   else "an extension attribute must be a string, integer or boolean")
        if why is not None:
            raise Invalid("%s: %s" % (_attr_label(binary, name), why))
    data = root["data"]
    if type(data) is not dict:
        raise Invalid("%s: not a JSON object" % ("value" if binary else "attribute 'data'"))
    _check_fields(data, etype, _NAMES[etype], "field '%s'" if binary else "field 'data.%s'")


def _map_binary(value, headers):
    """schemas/README.md's mapping: ce_X -> X, content-type -> datacontenttype, value -> data."""
    root = {}
    for name, hv in headers:
        if name.startswith("ce_"):
            attr = name if name in ("ce_data", "ce_datacontenttype") else name[3:]
        elif name == "content-type":
            attr = "datacontenttype"
        else:
            continue  # trace context, signatures...: not part of the event
        if attr in root:
            raise Invalid("duplicate header '%s'" % _quote(name))
        if hv is None:
            root[attr] = None
        else:
            try:
                root[attr] = hv.decode("utf-8")
            except UnicodeDecodeError as e:
                raise Invalid("header '%s' is not valid UTF-8 (byte %d)"
                              % (_quote(name), e.start)) from None
    root["data"] = _parse("value", value)
    return root


def _salvage(out, root, structured):
    """After a refusal: what can be read safely, for the failed result and the dead letter."""
    if type(root) is not dict:
        return
    fields = root.get("data") if structured and type(root.get("data")) is dict else root
    for key, obj in (("id", root), ("certificate_name", fields), ("order_name", fields)):
        v = obj.get(key)
        if key not in out and type(v) is str and 0 < len(v) <= MAX_FIELD_CHARS and "\x00" not in v:
            out[key] = v
    t = root.get("type")
    if type(t) is str and t in _FIELDS:
        out["type"] = t


def decode(value, headers=None, salvage=None):
    """Validate one Kafka message as acme-hookd's codec does.

    value: bytes or None; headers: confluent-kafka's list of (str, bytes or None),
    or None. Returns (event, None) with event a dict of type, id, time, source
    (CloudEvents) and the enrollment fields, or (None, reason). On a refusal,
    `salvage` (a dict) receives the id, type, certificate_name and order_name
    that could still be read.
    """
    raw = value if value is not None else b""
    binary = False
    size = len(raw)
    if headers:
        for name, hv in headers:
            size += len(name) + (len(hv) if hv is not None else 0)
            if name == "ce_specversion":
                binary = True
    if binary and salvage is not None:
        # the id is readable from its header even when the value is not
        for name, hv in headers:
            if name == "ce_id" and hv and len(hv) <= MAX_FIELD_CHARS and b"\x00" not in hv:
                try:
                    salvage["id"] = hv.decode("utf-8")
                except UnicodeDecodeError:
                    pass
                break
    if size > MAX_EVENT_BYTES:
        return None, "event is %d bytes, limit %d" % (size, MAX_EVENT_BYTES)
    root = None
    try:
        if binary:
            root = _map_binary(raw, headers)
            _check_cloudevent(root, True)
            ev = root.pop("data")
        else:
            root = _parse("event", raw)
            if type(root) is not dict:
                raise Invalid("event is not a JSON object")
            if "specversion" not in root:
                _check_plain(root)
                return root, None
            _check_cloudevent(root, False)
            ev = root["data"]
    except Invalid as e:
        if salvage is not None and root is not None:
            _salvage(salvage, root, binary or (type(root) is dict and "specversion" in root))
        return None, str(e)
    # CloudEvents: the envelope attributes next to the fields, as in a plain event
    ev["type"] = root["type"]
    ev["id"] = root["id"]
    ev["time"] = root["time"]
    ev["source"] = root["source"]
    return ev, None


# ---- what is published: result and dead-letter context ---------------------------------------

# The result is written directly, like acme-hookd's writer: json.dumps() builds a
# new C encoder per call, which cost as much as the rest of the result together.
_q = json.encoder.encode_basestring_ascii  # a JSON string literal (C implementation)
_now_sec = None
_now_text = ""


def now_rfc3339():
    """UTC with milliseconds, "2026-11-26T19:00:00.512Z"; strftime once a second."""
    global _now_sec, _now_text
    t = time.time()
    sec = int(t)
    if sec != _now_sec:
        _now_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _now_sec = sec
    return "%s.%03dZ" % (_now_text, int((t - sec) * 1000))


_SURROGATE = re.compile("[\ud800-\udfff]")


_uuid_pool = b""
_uuid_at = 0


def uuid4():
    """A random (version 4) UUID for ce_id. uuid.uuid4() reads os.urandom per call,
    the largest part of a result's cost: random bytes are drawn 4 KiB at a time."""
    global _uuid_pool, _uuid_at
    if _uuid_at >= len(_uuid_pool):
        _uuid_pool, _uuid_at = os.urandom(4096), 0
    h = _uuid_pool[_uuid_at:_uuid_at + 16].hex()
    _uuid_at += 16
    return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], "89ab"[int(h[16], 16) & 3], h[17:20],
                                  h[20:])


def cap_text(s, cap=None):
    """Valid UTF-8 of at most `cap` bytes (max_error_bytes, never cut inside a
    character; a cut text ends in "..."), lone surrogates as U+FFFD."""
    cap = cap or MAX_ERROR_BYTES
    if s.isascii() and len(s) <= cap:
        return s
    b = _SURROGATE.sub("\ufffd", s).encode("utf-8")
    if len(b) <= cap:
        return b.decode("utf-8")
    return b[:cap - 3].decode("utf-8", "ignore") + "..."


def run_record(phase, outcome_error, allowed, duration_ms):
    """One handler run as the result lists it (retries: none in this worker)."""
    if outcome_error is None:
        return {"phase": phase, "handler": HANDLER, "outcome": "ok", "failure_allowed": False,
                "attempts": 1, "duration_ms": duration_ms, "error_class": None, "error": None}
    return {"phase": phase, "handler": HANDLER, "outcome": "fail", "failure_allowed": allowed,
            "attempts": 1, "duration_ms": duration_ms, "error_class": "hook_failed",
            "error": cap_text(outcome_error)}


def result_value(ev, runs, topic, partition, offset, worker_id, error_class=None, error=None,
                 dead_lettered=False, now=None):
    """The result value (schemas/result-event.schema.json). `ev`: the decoded event,
    or what decode() salvaged; error_class None means completed; now: now_rfc3339()."""
    ev_id, etype = ev.get("id"), ev.get("type")
    name, order = ev.get("certificate_name"), ev.get("order_name")
    if error_class:
        verdict = ',"verdict":"failed","dead_lettered":%s,"error_class":%s,"error":%s' % (
            "true" if dead_lettered else "false", _q(error_class), _q(cap_text(error)))
    else:
        verdict = ',"verdict":"completed","dead_lettered":false,"error_class":null,"error":null'
    return "".join((
        '{"event_id":', "null" if ev_id is None else _q(ev_id),
        ',"event_type":', "null" if etype is None else _q(etype),
        verdict,
        "" if name is None else ',"certificate_name":' + _q(name),
        "" if order is None else ',"order_name":' + _q(order),
        ',"runs":[', ",".join(map(_run_json, runs)),
        '],"input":{"topic":%s,"partition":%d,"offset":%d},"worker_id":%s,"time":"%s"}' % (
            _q(topic), partition, offset, _q(worker_id), now or now_rfc3339()))).encode()


def _run_json(r):
    return ('{"phase":"%s","handler":%s,"outcome":"%s","failure_allowed":%s,"attempts":%d,'
            '"duration_ms":%r,"error_class":%s,"error":%s}' % (
                r["phase"], _q(r["handler"]), r["outcome"],
                "true" if r["failure_allowed"] else "false", r["attempts"], r["duration_ms"],
                "null" if r["error_class"] is None else _q(r["error_class"]),
                "null" if r["error"] is None else _q(r["error"])))


def result_headers(ev, failed, source, now=None):
    """CloudEvents binary mode: the envelope of a result as Kafka headers (source: bytes)."""
    h = [("ce_specversion", b"1.0"), ("ce_id", uuid4().encode()),
         ("ce_source", source),
         ("ce_type", b"acme.hookd.result.failed" if failed else b"acme.hookd.result.completed")]
    order = ev.get("order_name")
    if order is not None:
        h.append(("ce_subject", order.encode()))
    h.append(("ce_time", (now or now_rfc3339()).encode()))
    h.append(("content-type", b"application/json"))
    ev_id = ev.get("id")
    if ev_id is not None:
        h.append(("ce_inputeventid", ev_id.encode()))
    return h


def dead_letter_headers(ev, runs, failed_run, error_class, error, topic, partition, offset,
                        timestamp_ms, group, worker_id):
    """acme-hookd's dead-letter context (worker/result.c), hookd.dlq.* and __connect.errors.*.

    failed_run: index in runs of the deciding failure, None for an invalid event."""
    run = runs[failed_run] if failed_run is not None else None
    msg = cap_text(error).encode()
    part, off = str(partition).encode(), str(offset).encode()
    cls = error_class.encode()
    worker = worker_id.encode()
    h = [("hookd.dlq.topic", topic.encode()), ("hookd.dlq.partition", part),
         ("hookd.dlq.offset", off)]
    if timestamp_ms is not None and timestamp_ms >= 0:
        h.append(("hookd.dlq.timestamp", str(timestamp_ms).encode()))
    if group:
        h.append(("hookd.dlq.group", group.encode()))
    if ev.get("id") is not None:
        h.append(("hookd.dlq.event.id", ev["id"].encode()))
    if ev.get("type") is not None:
        h.append(("hookd.dlq.event.type", ev["type"].encode()))
    if run is not None:
        h.append(("hookd.dlq.phase", run["phase"].encode()))
        h.append(("hookd.dlq.handler", run["handler"].encode()))
        h.append(("hookd.dlq.attempts", str(run["attempts"]).encode()))
    # the run history, most recent first (Connect puts a stack trace there)
    if runs:
        trace = "\n".join(
            "at %s/%s: %s%s, %d attempt%s%s" % (
                r["phase"], r["handler"], r["outcome"],
                " (allowed)" if r["failure_allowed"] else "", r["attempts"],
                "" if r["attempts"] == 1 else "s", ": " + r["error"] if r["error"] else "")
            for r in reversed(runs))
    else:
        trace = "%s: %s" % (error_class, error)
    h += [("hookd.dlq.error.class", cls), ("hookd.dlq.error.message", msg),
          ("hookd.dlq.worker", worker), ("hookd.dlq.time", now_rfc3339().encode()),
          ("__connect.errors.topic", topic.encode()), ("__connect.errors.partition", part),
          ("__connect.errors.offset", off),
          ("__connect.errors.connector.name", (group or "acme-hookd").encode()),
          ("__connect.errors.task.id", worker),
          ("__connect.errors.stage",
           b"VALUE_CONVERTER" if error_class == "invalid_event" else b"TASK_PUT"),
          ("__connect.errors.class.name",
           ("hookd.handler." + run["handler"]).encode() if run is not None else b"hookd.event"),
          ("__connect.errors.exception.class.name", cls),
          ("__connect.errors.exception.message", msg),
          ("__connect.errors.exception.stacktrace", cap_text(trace).encode())]
    return h


# ---- the hooks and the worker ------------------------------------------------------------------

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


def run_hooks(hooks, ev, allow=ALLOW_FAILURE):
    """The phases of the event's type. Returns (runs, failed_run index or None)."""
    runs = []
    for phase in PHASES[ev["type"]]:
        t0 = time.perf_counter()
        error = None
        try:
            if phase == "pre":
                hooks.pre_hook(ev["certificate_name"], ev["order_name"], ev["csr"])
            elif phase == "success":
                hooks.success_hook(ev["certificate_name"], ev["order_name"], ev["csr"],
                                   ev["certificate"], ev["certificate_raw"],
                                   ev.get("poll_identifier"))
            else:
                hooks.post_hook(ev["certificate_name"], ev["order_name"], ev["csr"],
                                ev.get("error"))
        except Exception as e:  # a hook's failure is an outcome, never the worker's end
            error = str(e) or ("handler '%s' failed in phase %s after 1 attempt, without a "
                               "message" % (HANDLER, phase))
        runs.append(run_record(phase, error, allow[phase],
                               round((time.perf_counter() - t0) * 1000.0, 3)))
        if error is not None and not allow[phase]:
            return runs, len(runs) - 1
    return runs, None


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _bool(text):
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise SystemExit("py_worker: not a boolean: %r" % text)


def load_config(args):
    conf = {"rdkafka": {}, "consumer": {}, "producer": {}}
    args.allow = dict(ALLOW_FAILURE)
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
        global MAX_EVENT_BYTES, MAX_FIELD_CHARS, MAX_ERROR_BYTES
        MAX_EVENT_BYTES = int(w.get("max_event_bytes", MAX_EVENT_BYTES))
        MAX_FIELD_CHARS = int(w.get("max_field_bytes", MAX_FIELD_CHARS))
        MAX_ERROR_BYTES = int(w.get("max_error_bytes", MAX_ERROR_BYTES))
        for phase in ALLOW_FAILURE:
            for key in ("allow_%s_hook_failure" % phase, "ignore_%s_hook_failure" % phase):
                if key in h:
                    args.allow[phase] = _bool(h[key])
        for key, value in k.items():
            for prefix in ("consumer.rdkafka.", "producer.rdkafka.", "rdkafka."):
                if key.startswith(prefix):
                    conf[prefix.split(".")[0] if prefix != "rdkafka." else "rdkafka"][
                        key[len(prefix):]] = value
                    break
    return conf


def main():
    from confluent_kafka import (TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaException, Producer,
                                 TopicPartition)

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
    allow = args.allow
    source = ("urn:py-worker:" + args.worker_id).encode()
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

    def result(msg, ev, runs, error_class=None, error=None, dead_lettered=False):
        now = now_rfc3339()
        value = result_value(ev, runs, msg.topic(), msg.partition(), msg.offset(),
                             args.worker_id, error_class, error, dead_lettered, now)
        headers = result_headers(ev, error_class is not None, source, now)
        order = ev.get("order_name")
        key = msg.key() or (order.encode() if order else None)
        return (args.result, key, value, headers)

    def dead_letter(msg, ev, runs, failed_run, error_class, error):
        tstype, ts = msg.timestamp()
        context = dead_letter_headers(
            ev, runs, failed_run, error_class, error, msg.topic(), msg.partition(),
            msg.offset(), ts if tstype != TIMESTAMP_NOT_AVAILABLE else None, args.group,
            args.worker_id)
        return (args.dlq, msg.key(), msg.value(), list(msg.headers() or []) + context)

    def handle(msg):
        inflight[msg.partition()].append(msg.offset())
        salvaged = {}
        ev, why = decode(msg.value(), msg.headers(), salvaged)
        if ev is None:
            # Dead-lettered with the reason, never dropped; a readable id also gets a result.
            outs = [result(msg, salvaged, [], "invalid_event", why, True)] \
                if "id" in salvaged else []
            outs.append(dead_letter(msg, salvaged, [], None, "invalid_event", why))
            publish(msg, outs)
            return
        runs, failed_run = run_hooks(hooks, ev, allow)
        if failed_run is None:
            publish(msg, [result(msg, ev, runs)])
            return
        error = runs[failed_run]["error"]
        publish(msg, [result(msg, ev, runs, "hook_failed", error, True),
                      dead_letter(msg, ev, runs, failed_run, "hook_failed", error)])

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
