#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The benchmark's Python peer does acme-hookd's whole job, no less.

1. py_worker.decode() accepts exactly the valid and refuses exactly the
   invalid input corpus (schemas/examples/input*, binary files mapped to a
   Kafka message: headers + value), the field-limit cases the schema
   cross-check generates, and the cases beyond the schema that the C codec
   refuses (size, UTF-8, duplicates, NaN, lone surrogates, ...).
2. Differential: mutations of the valid corpus events get the same verdict
   from decode() and from a real JSON Schema validator (jsonschema,
   Draft 2020-12) on schemas/input-event.schema.json.
3. The result values, result headers and dead-letter headers py_worker
   builds, for events of each type and wire form and for failures (invalid
   event with and without a readable id, hook failures allowed or not),
   validate against schemas/result-event.schema.json and
   schemas/dead-letter.schema.json, with format checking.

    test_py_parity.py [--schemas DIR] [-v]

Run with the test venv's python (jsonschema). Exit 0: no disagreement;
1: disagreements (listed); 77: jsonschema missing.
"""
import argparse
import base64
import copy
import datetime
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
# py_worker needs confluent-kafka only to run: importing it must work without.
sys.modules.setdefault("confluent_kafka", None)
sys.path.insert(0, here)
import py_worker as pw  # noqa: E402

try:
    import jsonschema
    from jsonschema import Draft202012Validator, FormatChecker
except ImportError:
    print("test_py_parity: jsonschema is not installed (scripts/setup-deps.sh --tests)")
    sys.exit(77)

FIELD_LIMIT = 262144
failures = []
counts = {}


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def count(what, n=1):
    counts[what] = counts.get(what, 0) + n


def listdir(d):
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".json"))


def binary_message(path):
    """A binary-mode corpus file -> (value bytes, confluent-kafka style headers)."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    value = (doc["value_text"] if "value_text" in doc else json.dumps(doc["value"])).encode()
    headers = [(k, None if v is None else v.encode()) for k, v in doc["headers"].items()]
    return value, headers


def expect(name, want_valid, value, headers=None, verbose=False):
    ev, why = pw.decode(value, headers)
    if (ev is not None) != want_valid or (ev is None) == (why is None):
        fail("%s: expected %s, py_worker says %s%s" % (
            name, "valid" if want_valid else "invalid", "valid" if ev is not None else "invalid",
            " (%s)" % why if why else ""))
    elif verbose:
        print("ok  %-8s %s%s" % ("valid" if want_valid else "invalid", name,
                                 "" if want_valid else "  [%s]" % why))
    count("input %s" % ("valid" if want_valid else "invalid"))
    return ev


# ---- 1. the corpus, the field limits, beyond the schema ----------------------------------------

def check_corpus(examples, verbose):
    for expect_dir in ("valid", "invalid"):
        files = listdir(os.path.join(examples, "input", expect_dir))
        if not files:
            fail("no corpus files in input/%s" % expect_dir)
        for f in files:
            with open(f, "rb") as fh:
                expect(os.path.relpath(f, examples), expect_dir == "valid", fh.read(), None, verbose)
        files = listdir(os.path.join(examples, "input-binary", expect_dir))
        if not files:
            fail("no corpus files in input-binary/%s" % expect_dir)
        for f in files:
            value, headers = binary_message(f)
            expect(os.path.relpath(f, examples), expect_dir == "valid", value, headers, verbose)


BASE = {"type": "acme.enrollment.requested", "id": "boundary", "time": "2026-11-26T19:00:00Z",
        "certificate_name": "c", "order_name": "o", "csr": "QUJD"}
CE = {"specversion": "1.0", "id": "b", "source": "/s", "type": "acme.enrollment.requested",
      "time": "2026-11-26T19:00:00Z", "data": {"certificate_name": "c", "order_name": "o",
                                                 "csr": "QUJD"}}
BIN_HEADERS = [("ce_specversion", b"1.0"), ("ce_id", b"b"), ("ce_source", b"/s"),
               ("ce_type", b"acme.enrollment.requested"), ("ce_time", b"2026-11-26T19:00:00Z")]
BIN_VALUE = b'{"certificate_name": "c", "order_name": "o", "csr": "QUJD"}'


def j(doc):
    return json.dumps(doc, ensure_ascii=False).encode()


def check_generated(verbose):
    # the schema cross-check's field-limit cases (characters, not bytes)
    cases = [
        ("name-at-limit", True, j(dict(BASE, certificate_name="a" * FIELD_LIMIT))),
        ("name-at-limit-multibyte", True, j(dict(BASE, certificate_name="\u00e9" * FIELD_LIMIT))),
        ("csr-at-limit", True, j(dict(BASE, csr="QUJD" * (FIELD_LIMIT // 4)))),
        ("name-over-limit", False, j(dict(BASE, certificate_name="a" * (FIELD_LIMIT + 1)))),
        ("name-over-limit-multibyte", False, j(dict(BASE, order_name="\u00e9" * (FIELD_LIMIT + 1)))),
        ("csr-over-limit", False, j(dict(BASE, csr="QUJD" * (FIELD_LIMIT // 4 + 1)))),
        ("id-over-limit", False, j(dict(BASE, id="i" * (FIELD_LIMIT + 1)))),
        ("ce-data-error-over-limit", False, j(dict(CE, type="acme.enrollment.failed", data=dict(
            CE["data"], error="e" * (FIELD_LIMIT + 1))))),
        ("ce-extension-over-limit", False, j(dict(CE, traceparent="t" * (FIELD_LIMIT + 1)))),
        ("ce-extension-at-limit", True, j(dict(CE, traceparent="t" * FIELD_LIMIT))),
        ("time-fraction-over-limit", False,
         j(dict(BASE, time="2026-11-26T19:00:00." + "1" * FIELD_LIMIT + "Z"))),
    ]
    for name, want, value in cases:
        expect("generated/" + name, want, value, None, verbose)

    plain = j(BASE)
    big = b" " * (pw.MAX_EVENT_BYTES - len(plain))
    beyond = [
        # max_event_bytes: the whole message, headers included
        ("size-at-limit", True, plain + big, None),
        ("size-over-limit", False, plain + big + b" ", None),
        ("size-over-limit-by-headers", False, plain + big, [("x", b"")]),
        # strict UTF-8 and RFC 8259
        ("utf8-invalid-byte", False, plain.replace(b'"c"', b'"\xff"'), None),
        ("utf8-overlong", False, plain.replace(b'"c"', b'"\xc0\xaf"'), None),
        ("utf8-encoded-surrogate", False, plain.replace(b'"c"', b'"\xed\xa0\x80"'), None),
        ("utf8-bom", False, b"\xef\xbb\xbf" + plain, None),
        ("utf16", False, json.dumps(BASE).encode("utf-16"), None),
        ("nan", False, j(dict(CE, ext=0)).replace(b'"ext": 0', b'"ext": NaN'), None),
        ("infinity", False, j(dict(CE, ext=0)).replace(b'"ext": 0', b'"ext": -Infinity'), None),
        ("leading-zero", False, j(dict(CE, ext=0)).replace(b'"ext": 0', b'"ext": 01'), None),
        ("duplicate-member", False, plain[:-1] + b', "csr": "QUJD"}', None),
        ("duplicate-member-in-data", False,
         j(CE).replace(b'"csr": "QUJD"', b'"csr": "QUJD", "csr": "QUJD"'), None),
        ("lone-high-surrogate", False, plain.replace(b'"c"', b'"\\ud800"'), None),
        ("lone-low-surrogate", False, plain.replace(b'"c"', b'"\\udc00x"'), None),
        ("surrogate-pair", True, plain.replace(b'"c"', b'"\\ud83d\\ude00"'), None),
        ("nul-escape", False, plain.replace(b'"c"', b'"a\\u0000b"'), None),
        ("escaped-backslash-u0000", True, plain.replace(b'"c"', b'"a\\\\u0000b"'), None),
        ("deep-nesting", False, j(dict(CE, ext=0)).replace(b'"ext": 0', b'"ext": ' + b"[" * 5000
                                                             + b"]" * 5000), None),
        ("huge-integer", False, j(dict(CE, ext=0)).replace(b'"ext": 0', b'"ext": ' + b"9" * 5000),
         None),
        ("exponent-integer", True, j(dict(CE, ext=0)).replace(b'"ext": 0', b'"ext": 2e9'), None),
        ("exponent-over-int32", False, j(dict(CE, ext=0)).replace(b'"ext": 0', b'"ext": 3e9'),
         None),
        ("value-null", False, None, None),
        # Python-specific traps: "$" before a final newline, Unicode digits
        ("time-trailing-newline", False, j(dict(BASE, time="2026-11-26T19:00:00Z\n")), None),
        ("time-unicode-digits", False, j(dict(BASE, time="\u0662026-11-26T19:00:00Z")), None),
        ("csr-trailing-newline-padded", False, j(dict(BASE, csr="QUI=\n")), None),
        ("type-not-hashable", False, j(dict(BASE, type=["acme.enrollment.requested"])), None),
        ("ce-type-not-hashable", False, j(dict(CE, type={"a": 1})), None),
        ("ce-extension-bool", True, j(dict(CE, flag=True)), None),
        ("ce-specversion-float", False, j(dict(CE, specversion=1.0)), None),
        # binary mode: headers
        ("bin-valid", True, BIN_VALUE, BIN_HEADERS),
        ("bin-value-none", False, None, BIN_HEADERS),
        ("bin-header-invalid-utf8", False, BIN_VALUE,
         BIN_HEADERS + [("ce_traceid", b"\xff")]),
        ("bin-header-nul", False, BIN_VALUE, BIN_HEADERS + [("ce_traceid", b"a\x00b")]),
        ("bin-id-nul", False, BIN_VALUE,
         [(k, b"a\x00" if k == "ce_id" else v) for k, v in BIN_HEADERS]),
        ("bin-duplicate-header", False, BIN_VALUE, BIN_HEADERS + [("ce_source", b"/t")]),
        ("bin-duplicate-content-type", False, BIN_VALUE,
         BIN_HEADERS + [("content-type", b"application/json")] * 2),
        ("bin-other-duplicates-ignored", True, BIN_VALUE, BIN_HEADERS + [("x", b"1")] * 2),
        ("bin-specversion-null", False, BIN_VALUE,
         [(k, None if k == "ce_specversion" else v) for k, v in BIN_HEADERS]),
        ("bin-extension-integer-as-text", True, BIN_VALUE, BIN_HEADERS + [("ce_n", b"7")]),
        ("bin-too-many-attributes", False, BIN_VALUE,
         BIN_HEADERS + [("ce_x%d" % i, b"1") for i in range(59)]),
        ("bin-attributes-at-limit", True, BIN_VALUE,
         BIN_HEADERS + [("ce_x%d" % i, b"1") for i in range(58)]),
    ]
    for name, want, value, headers in beyond:
        expect("beyond-schema/" + name, want, value, headers, verbose)


# ---- 2. differential against jsonschema ---------------------------------------------------------

def date_time(s):
    """format date-time, independently of py_worker: a real calendar date (the
    schema's pattern covers the rest)."""
    if not isinstance(s, str):
        return True
    try:
        datetime.date(int(s[0:4]), int(s[5:7]), int(s[8:10]))
    except ValueError:
        return False
    return True


def ecma_validator_class():
    """Draft 2020-12 with ECMA-262 patterns, as the specification says: jsonschema
    uses Python's re, whose "$" also matches before a final newline (which would
    make it call "QUJD\n" base64). regress (check-jsonschema's engine) when
    installed, else re with the schema's final "$" made strict."""
    try:
        import regress

        def compile_pattern(p):
            r = regress.Regex(p)
            return lambda s: r.find(s) is not None
    except ImportError:
        import re

        def compile_pattern(p):
            r = re.compile(p[:-1] + r"\Z" if p.endswith("$") else p)
            return lambda s: r.search(s) is not None
    cache = {}

    def pattern(validator, patrn, instance, schema):
        if not validator.is_type(instance, "string"):
            return
        if patrn not in cache:
            cache[patrn] = compile_pattern(patrn)
        if not cache[patrn](instance):
            yield jsonschema.ValidationError("%r does not match %r" % (instance, patrn))

    return jsonschema.validators.extend(Draft202012Validator, {"pattern": pattern})


def format_checker():
    fc = FormatChecker()
    fc.checks("date-time")(date_time)
    return fc


def input_validator(schemas):
    with open(os.path.join(schemas, "input-event.schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    return ecma_validator_class()(schema, format_checker=format_checker())


VALUES = [None, True, 0, 7, -2147483649, 2147483647, 1.5, 2.0, "", "x", "a\x00b", "QUJD", "QUI=",
          "QQ==", "QUJ", "QUJD\n", "QU JD", "QUJD=", "-_-_", "\u00e9", "/s", "a b", "1.0", "1.1",
          "application/json", "application/json; charset=UTF-8", "application/json;charset=utf-8",
          "text/plain", "application/json\n", "2026-11-26T19:00:00Z", "2026-11-26t19:00:00.5+01:00",
          "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
          "2026-11-26T19:00:00", "2026-11-26 19:00:00Z", "acme.enrollment.requested",
          "acme.enrollment.issued", "acme.enrollment.failed", "acme.enrollment.other",
          "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n",
          "-----BEGIN CERTIFICATE-----\r\nQUJD\r\n-----END CERTIFICATE-----\r\n\r\n"
          "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----",
          "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", [], ["x"], {}, {"a": "b"}]
NAMES = ["id", "type", "time", "source", "specversion", "subject", "dataschema",
         "datacontenttype", "data", "csr", "certificate", "certificate_raw", "poll_identifier",
         "error", "certificate_name", "order_name", "ext1", "Ext", "a_b", "x" * 21, "x" * 20]


def mutations(doc):
    """Every member replaced by every value, removed; every name added."""
    for target in (doc, doc.get("data")):
        if not isinstance(target, dict):
            continue
        for name in list(target) + NAMES:
            had, old = name in target, target.get(name)
            for v in VALUES:
                target[name] = v
                yield
            if had:
                del target[name]
                yield
                target[name] = old
            else:
                del target[name]


# one of each shape: mutating every file of the corpus takes minutes
DIFFERENTIAL_SEEDS = ("plain-requested.json", "plain-issued.json", "plain-failed.json",
                      "ce-issued.json", "ce-failed.json", "ce-subject-dataschema.json")


def check_differential(examples, validator, verbose):
    disagreements = 0
    for f in (os.path.join(examples, "input", "valid", n) for n in DIFFERENTIAL_SEEDS):
        with open(f, encoding="utf-8") as fh:
            doc = json.load(fh)
        work = copy.deepcopy(doc)
        for _ in mutations(work):
            schema_ok = validator.is_valid(work)
            ev, why = pw.decode(json.dumps(work).encode())
            count("differential")
            if schema_ok != (ev is not None):
                disagreements += 1
                if disagreements <= 20:
                    fail("differential %s: schema says %s, py_worker says %s (%s): %s" % (
                        os.path.basename(f), schema_ok, ev is not None, why,
                        json.dumps(work)[:300]))
    if disagreements > 20:
        fail("... %d differential disagreements in all" % disagreements)


# ---- 3. results and dead letters ----------------------------------------------------------------

class FailingHooks(pw.Hooks):
    def __init__(self, phase, message):
        super().__init__()
        self.phase, self.message = phase, message

    def _maybe(self, phase):
        if phase == self.phase:
            raise RuntimeError(self.message)

    def pre_hook(self, *a):
        self._maybe("pre")

    def success_hook(self, *a):
        self._maybe("success")

    def post_hook(self, *a):
        self._maybe("post")


def sample_events(examples):
    """(name, value, headers) for each type in each wire form, from the valid corpus."""
    out = []
    for f in listdir(os.path.join(examples, "input", "valid")):
        with open(f, "rb") as fh:
            out.append((os.path.basename(f), fh.read(), None))
    for f in listdir(os.path.join(examples, "input-binary", "valid")):
        value, headers = binary_message(f)
        out.append((os.path.basename(f), value, headers))
    return out


def check_outputs(schemas, examples, verbose):
    with open(os.path.join(schemas, "result-event.schema.json"), encoding="utf-8") as f:
        rschema = json.load(f)
    with open(os.path.join(schemas, "dead-letter.schema.json"), encoding="utf-8") as f:
        dschema = json.load(f)
    fc = format_checker()
    cls = ecma_validator_class()
    rval = cls(rschema, format_checker=fc)
    hval = cls({"$schema": rschema["$schema"], "$defs": rschema["$defs"],
                "$ref": "#/$defs/headers"}, format_checker=fc)
    dval = cls(dschema, format_checker=fc)
    worker, group, topic, source = "py-worker-1", "acme-hookd-py", "acme.enrollment", b"urn:py:w"

    def validate(validator, doc, what):
        errs = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        for e in errs[:3]:
            fail("%s: %s at %s" % (what, e.message[:200], "/".join(map(str, e.path))))
        count("outputs validated")
        return not errs

    def outputs(name, value, headers, hooks, allow=pw.ALLOW_FAILURE, offset=7):
        """What handle() publishes for one message: (result value dict or None, result
        headers, dead-letter context headers or None)."""
        salvaged = {}
        ev, why = pw.decode(value, headers, salvaged)
        if ev is None:
            res = rh = None
            if "id" in salvaged:
                res = pw.result_value(salvaged, [], topic, 3, offset, worker, "invalid_event",
                                      why, True)
                rh = pw.result_headers(salvaged, True, source)
            dl = pw.dead_letter_headers(salvaged, [], None, "invalid_event", why, topic, 3,
                                        offset, None if offset % 2 else 1764183600123, group,
                                        worker)
            return ev, res, rh, dl
        runs, failed_run = pw.run_hooks(hooks, ev, allow)
        if failed_run is None:
            return ev, pw.result_value(ev, runs, topic, 3, offset, worker), \
                pw.result_headers(ev, False, source), None
        err = runs[failed_run]["error"]
        return ev, pw.result_value(ev, runs, topic, 3, offset, worker, "hook_failed", err, True), \
            pw.result_headers(ev, True, source), \
            pw.dead_letter_headers(ev, runs, failed_run, "hook_failed", err, topic, 3, offset,
                                   1764183600123, group, worker)

    def check(name, value, headers, hooks, want_verdict, want_phases, want_dl, allow=None,
              want_result=True):
        ev, res, rh, dl = outputs(name, value, headers, hooks, allow or pw.ALLOW_FAILURE)
        if (res is not None) != want_result:
            fail("%s: result %s, expected %s" % (name, res is not None, want_result))
            return
        if res is not None:
            doc = json.loads(res)
            ok = validate(rval, doc, name + " result")
            ok = validate(hval, {k: v.decode() for k, v in rh}, name + " result headers") and ok
            if len(rh) != len({k for k, _ in rh}):
                fail("%s: duplicate result header" % name)
            phases = [r["phase"] for r in doc["runs"]]
            if doc["verdict"] != want_verdict or phases != want_phases or \
                    doc["dead_lettered"] != want_dl:
                fail("%s: verdict %s runs %s dead_lettered %s, expected %s %s %s" % (
                    name, doc["verdict"], phases, doc["dead_lettered"], want_verdict, want_phases,
                    want_dl))
            elif ok and verbose:
                print("ok  result %-40s %s %s" % (name, doc["verdict"], phases))
            count("results")
        if (dl is not None) != want_dl:
            fail("%s: dead letter %s, expected %s" % (name, dl is not None, want_dl))
        if dl is not None:
            ctx = {k: v.decode() for k, v in dl}
            if len(ctx) != len(dl):
                fail("%s: duplicate dead-letter header" % name)
            if validate(dval, ctx, name + " dead letter") and verbose:
                print("ok  dead letter %-35s %s" % (name, ctx["hookd.dlq.error.class"]))
            count("dead letters")

    # ce_id: random version 4 UUIDs, unique
    import re
    v4 = re.compile(rschema["$defs"]["headers"]["properties"]["ce_id"]["pattern"])
    ids = [pw.uuid4() for _ in range(5000)]
    if len(set(ids)) != len(ids) or not all(v4.fullmatch(i[:36]) and len(i) == 36 for i in ids):
        fail("uuid4(): duplicate or malformed ids")
    count("outputs validated")

    phases = {pw.REQUESTED: ["pre"], pw.ISSUED: ["success", "post"], pw.FAILED: ["post"]}
    samples = sample_events(examples)
    for name, value, headers in samples:
        ev, _ = pw.decode(value, headers)
        check(name, value, headers, pw.Hooks(), "completed", phases[ev["type"]], False)
    # the benchmark's own events
    for seq in range(3):
        check("bench-%d" % seq, make_bench_event(seq), None, pw.Hooks(), "completed", ["pre"],
              False)

    # failures
    by_type = {}
    for name, value, headers in samples:
        ev, _ = pw.decode(value, headers)
        by_type.setdefault(ev["type"], (value, headers))
    req, iss, fai = by_type[pw.REQUESTED], by_type[pw.ISSUED], by_type[pw.FAILED]
    check("pre-fails", *req, FailingHooks("pre", "denied by policy"), "failed", ["pre"], True)
    check("success-fails", *iss, FailingHooks("success", "ldap down"), "failed", ["success"],
          True)
    check("post-fails-allowed", *iss, FailingHooks("post", "mail failed"), "completed",
          ["success", "post"], False)
    check("post-fails-not-allowed", *fai, FailingHooks("post", "x"), "failed", ["post"], True,
          allow=dict(pw.ALLOW_FAILURE, post=False))
    check("pre-fails-allowed", *req, FailingHooks("pre", "x"), "completed", ["pre"], False,
          allow=dict(pw.ALLOW_FAILURE, pre=True))
    check("hook-fails-silently", *req, FailingHooks("pre", ""), "failed", ["pre"], True)
    check("hook-error-long-multibyte", *req, FailingHooks("pre", "\u00e9\ud800" * 3000), "failed",
          ["pre"], True)
    check("invalid-with-id", j(dict(BASE, csr="not base64!")), None, pw.Hooks(), "failed", [],
          True)
    check("invalid-ce-with-id", j(dict(CE, source="a b")), None, pw.Hooks(), "failed", [], True)
    check("invalid-binary-id-from-header", b"not json", BIN_HEADERS, pw.Hooks(), "failed", [],
          True)
    check("invalid-unknown-type", j(dict(BASE, type="acme.other")), None, pw.Hooks(), "failed",
          [], True)
    check("invalid-long-reason", j(dict(BASE, **{"\u00e9" * 2000: 1})), None, pw.Hooks(),
          "failed", [], True)
    check("invalid-without-id", b"{not json", None, pw.Hooks(), None, None, True,
          want_result=False)
    check("invalid-id-number", j(dict(BASE, id=5)), None, pw.Hooks(), None, None, True,
          want_result=False)


_CSR = base64.b64encode(bytes(range(256)) + b"csr").decode()


def make_bench_event(seq, t=1764183600123456):
    """tests/bench/hookd_bench.c's make_event(): a plain requested event."""
    return ('{"type":"acme.enrollment.requested","id":"bench-py-%d-%d","time":'
            '"2026-01-01T00:00:00Z","certificate_name":"cert-%d","order_name":"order-%d",'
            '"csr":"%s"}' % (seq, t, seq, seq, _CSR)).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schemas", default=os.path.join(here, "..", "..", "schemas"))
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    examples = os.path.join(args.schemas, "examples")

    print("py_worker: %s" % pw.__file__)
    check_corpus(examples, args.verbose)
    check_generated(args.verbose)
    check_differential(examples, input_validator(args.schemas), args.verbose)
    check_outputs(args.schemas, examples, args.verbose)

    for what in ("input valid", "input invalid", "differential", "results", "dead letters",
                 "outputs validated"):
        if not counts.get(what):
            fail("nothing checked for: " + what)
    print("py_parity: %s; %d disagreements" % (
        ", ".join("%s %d" % kv for kv in sorted(counts.items())), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
