# SPDX-License-Identifier: MIT
"""The phase truth table, end to end on a real broker.

Chain: exception_test, then cn_dump (both builtin). exception_test fails
the phases its raise_*_hook_exception keys name; cn_dump appends one JSON
line per phase it runs in to <save_path>/{pre,success,post}_hook.txt.
Because exception_test comes first, a failure its phase's flag does not
allow must also keep cn_dump from running in that phase (the rest of the
chain stops) and in every later phase.

16 configurations cover every combination of (raise_success, raise_post,
allow_success, allow_post) and, across them, every combination of
(raise_pre, allow_pre); flags are written with both spellings (allow_* and
acme2certifier's ignore_*) and sometimes left to their defaults. 4 more
make exception_test answer "retry" (retry_*_hook_times): recovered within
retry_max_attempts, and exhausted with the phase's flag on and off. Each
configuration gets a requested, an issued and a failed event, in plain
JSON, CloudEvents structured and CloudEvents binary mode (all three forms
meet every event type across the configurations). kcat (Debian's, not
ours) produces every input message. A 17th worker gets malformed messages
between good ones.

Per event the test checks: the hooks that ran (from the result and from
cn_dump's files), the result event (type, subject, key, input id, verdict,
origin; its value valid against schemas/result-event.schema.json), whether
it was dead-lettered and with which headers (original headers and value
untouched plus every hookd.dlq.* and __connect.errors.* context header,
valid against schemas/dead-letter.schema.json), and, after the graceful
stop, that the committed offset of every input partition is its end
offset.
"""
import itertools
import json
import os
import subprocess

import jsonschema

import hookd_e2e as e

PHASES = ("pre", "success", "post")
PHASES_OF = {e.REQUESTED: ["pre"], e.ISSUED: ["success", "post"], e.FAILED: ["post"]}
DEFAULT_ALLOW = {"pre": False, "success": False, "post": True}
FORMS = ("plain", "structured", "binary")


MAX_ATTEMPTS = 3  # [worker] retry_max_attempts given to every worker
RETRY_SETTINGS = {"threads": 1, "retry_max_attempts": MAX_ATTEMPTS, "retry_initial_backoff_ms": 20,
                  "retry_max_backoff_ms": 100}


def expected(etype, raise_, allow, retry=None):
    """The oracle, from the documented semantics (acme2certifier's wiki and
    the hook contract): returns (runs, verdict, dead_lettered, failed_run);
    runs are (phase, handler, outcome, failure_allowed, attempts,
    error_class of a failure or None).

    exception_test answers `retry` (HOOKD_RETRY) the first retry[phase]
    times it sees an event in that phase, then fails if raise[phase], else
    succeeds; the worker retries up to MAX_ATTEMPTS attempts in all."""
    retry = retry or {}
    runs = []
    for ph in PHASES_OF[etype]:
        n = retry.get(ph, 0)
        if n >= MAX_ATTEMPTS:
            run = (ph, "exception_test", "fail", allow[ph], MAX_ATTEMPTS, "retries_exhausted")
        elif raise_[ph]:
            run = (ph, "exception_test", "fail", allow[ph], n + 1, "hook_failed")
        else:
            run = (ph, "exception_test", "ok", False, n + 1, None)
        runs.append(run)
        if run[2] == "fail" and not allow[ph]:
            return runs, "failed", True, run
        runs.append((ph, "cn_dump", "ok", False, 1, None))
    return runs, "completed", False, None


def got_runs(res):
    return [(r.get("phase"), r.get("handler"), r.get("outcome"), r.get("failure_allowed"),
             r.get("attempts"), r.get("error_class") if r.get("outcome") == "fail" else None)
            for r in res.json().get("runs", [])]


def configurations():
    out = []
    for i, (rs, rpo, as_, apo) in enumerate(itertools.product((False, True), repeat=4)):
        rp = bool(((i >> 2) & 1) ^ (i & 1))
        ap = bool(((i >> 1) & 1) ^ ((i >> 3) & 1))
        out.append({"index": i,
                    "raise": {"pre": rp, "success": rs, "post": rpo},
                    "allow": {"pre": ap, "success": as_, "post": apo}})
    # Retries: recovered in time (pre, success), exhausted with the flag off
    # (success, post) and on (pre, post).
    for k, (retry, allow) in enumerate((
            ({"pre": 2, "success": 1}, {}),
            ({"success": 5}, {}),
            ({"pre": 5, "post": 5}, {"pre": True, "post": True}),
            ({"post": 5}, {"post": False}))):
        a = dict(DEFAULT_ALLOW)
        a.update(allow)
        out.append({"index": 16 + k, "raise": {"pre": False, "success": False, "post": False},
                    "allow": a, "retry": retry})
    # The table must cover itself: every (raise, allow) pair of every phase.
    for ph in PHASES:
        pairs = {(c["raise"][ph], c["allow"][ph]) for c in out}
        e.check(len(pairs) == 4, "configurations miss a combination of phase %s" % ph)
    return out


def hooks_section(cfg, save_path):
    i = cfg["index"]
    h = {"hooks_file": "exception_test, cn_dump", "save_path": save_path}
    for ph in PHASES:
        val = cfg["allow"][ph]
        # Every 3rd configuration relies on the defaults where it can.
        if i % 3 == 2 and val == DEFAULT_ALLOW[ph]:
            continue
        spelling = "ignore" if i % 2 else "allow"
        h["%s_%s_hook_failure" % (spelling, ph)] = val
    for ph in PHASES:
        if cfg["raise"][ph]:
            h["raise_%s_hook_exception" % ph] = True
        if cfg.get("retry", {}).get(ph):
            h["retry_%s_hook_times" % ph] = cfg["retry"][ph]
    return h


def kcat_produce(topic, key, value, headers):
    """One message through kcat -P (key after a tab, headers with -H)."""
    cmd = ["kcat", "-P", "-b", e.bootstrap(), "-t", topic, "-K", "\t", "-c", "1",
           "-X", "enable.idempotence=true"]
    for name, v in headers:
        cmd += ["-H", "%s=%s" % (name, v.decode())]
    line = key.encode() + b"\t" + value + b"\n"
    e.check(b"\n" not in value, "kcat takes one message per line")
    r = subprocess.run(cmd, input=line, capture_output=True, timeout=60)
    e.check(r.returncode == 0, "kcat failed: %s" % r.stderr.decode())


def cn_dump_lines(save_path):
    """{phase: [line, ...]} from cn_dump's files (each line must be JSON)."""
    out = {}
    for ph in PHASES:
        path = os.path.join(save_path, "%s_hook.txt" % ph)
        lines = []
        if os.path.exists(path):
            with open(path) as f:
                for ln in f:
                    if ln.strip():
                        json.loads(ln)  # must be one JSON document per line
                        lines.append(ln)
        out[ph] = lines
    return out


def load_schema(name):
    with open(os.path.join(e.SOURCE_DIR, "schemas", name)) as f:
        return jsonschema.Draft202012Validator(json.load(f))


RESULT_SCHEMA = load_schema("result-event.schema.json")
DLQ_SCHEMA = load_schema("dead-letter.schema.json")


def schema_errors(validator, doc):
    return ["%s: %s" % ("/".join(str(p) for p in err.absolute_path), err.message)
            for err in validator.iter_errors(doc)][:3]


def main():
    pki = e.Pki()
    cases = []      # one dict per event
    workers = []
    for cfg in configurations():
        i = cfg["index"]
        topics = e.Topics("tt%02d" % i)
        save = os.path.join(e.workdir(), "save%02d" % i)
        os.makedirs(save)
        w = e.Worker("tt%02d" % i, topics, hooks_section(cfg, save), worker=RETRY_SETTINGS)
        workers.append((w, topics, save, cfg))
        # kcat produces them in this order into one partition: offsets 0, 1, 2.
        for t, etype in enumerate((e.REQUESTED, e.ISSUED, e.FAILED)):
            form = FORMS[(i + t) % 3]
            name = "tt%02d-%s-%s" % (i, etype.rsplit(".", 1)[1], form)
            eid = "id-" + name
            value, headers = e.encode(etype, eid, e.fields(etype, name, pki), form)
            runs, verdict, dlq, frun = expected(etype, cfg["raise"], cfg["allow"], cfg.get("retry"))
            cases.append({"cfg": i, "offset": t, "topics": topics, "save": save, "type": etype, "form": form,
                          "id": eid, "key": name, "san": pki.san(name), "value": value,
                          "headers": headers, "runs": runs, "verdict": verdict, "dlq": dlq,
                          "failed_run": frun, "failed_phase": frun[0] if frun else None})

    # Malformed input between good ones, on a worker with default flags.
    bad_topics = e.Topics("ttbad")
    bad_save = os.path.join(e.workdir(), "savebad")
    os.makedirs(bad_save)
    bad_worker = e.Worker("ttbad", bad_topics, {"hooks_file": "exception_test, cn_dump",
                                                "save_path": bad_save}, worker={"threads": 1})
    bad_msgs = [
        ("bad-notjson", b"this is not JSON {", [], None),
        ("bad-nocsr", json.dumps({"type": e.REQUESTED, "id": "id-bad-nocsr", "time": e.now_rfc3339(),
                                  "certificate_name": "c", "order_name": "bad-nocsr"}).encode(), [],
         "id-bad-nocsr"),
        ("bad-type", json.dumps({"type": "acme.enrollment.unknown", "id": "id-bad-type",
                                 "time": e.now_rfc3339()}).encode(), [], "id-bad-type"),
    ]
    good_after = []
    for k, (key, value, headers, _) in enumerate(bad_msgs):
        name = "ttbad-good%d" % k
        good_after.append(name)

    e.log("producing %d events with kcat" % (len(cases) + 2 * len(bad_msgs)))
    for c in cases:
        kcat_produce(c["topics"].input, c["key"], c["value"], c["headers"])
    for k, (key, value, headers, _) in enumerate(bad_msgs):
        kcat_produce(bad_topics.input, key, value, headers)
        v, h = e.encode(e.REQUESTED, "id-" + good_after[k], e.fields(e.REQUESTED, good_after[k], pki))
        kcat_produce(bad_topics.input, good_after[k], v, h)

    e.log("starting %d workers" % (len(workers) + 1))
    for w, _, _, _ in workers:
        w.start()
    bad_worker.start()

    # Wait for every outcome: one result per event (dead letters arrive before
    # the commit; the commit is checked after the graceful stop).
    readers = {}
    for w, topics, _, _ in workers + [(bad_worker, bad_topics, None, None)]:
        readers[topics.result] = e.Reader(topics.result)
        readers[topics.dlq] = e.Reader(topics.dlq)
    n_by_result = {}
    for c in cases:
        n_by_result[c["topics"].result] = n_by_result.get(c["topics"].result, 0) + 1
    for topic, n in n_by_result.items():
        readers[topic].until(lambda ms, n=n: len(ms) >= n, 120, "%d results on %s" % (n, topic))
    readers[bad_topics.result].until(lambda ms: len(ms) >= 5, 120, "5 results on %s" % bad_topics.result)
    for c in cases:
        if c["dlq"]:
            r = readers[c["topics"].dlq]
            r.until(lambda ms, k=c["key"]: any(m.key == k for m in ms), 60, "dead letter of %s" % c["key"])
    readers[bad_topics.dlq].until(lambda ms: len(ms) >= 3, 60, "3 dead letters on %s" % bad_topics.dlq)

    e.log("stopping workers (SIGTERM)")
    status = e.stop_all([w for w, _, _, _ in workers] + [bad_worker])
    for name, rc in sorted(status.items()):
        e.check(rc == 0, "worker %s exited with %s after SIGTERM" % (name, rc))
    for r in readers.values():
        r.read_to_end()  # everything the workers published, extra records included

    failures = []
    dumps = {}
    for c in cases:
        if c["save"] not in dumps:
            dumps[c["save"]] = cn_dump_lines(c["save"])
        lines = dumps[c["save"]]
        what = "config %d, %s event (%s) %s" % (c["cfg"], c["type"], c["form"], c["id"])
        try:
            results = [m for m in readers[c["topics"].result].messages if m.key == c["key"]]
            e.check(len(results) == 1, "%s: %d result events, want 1: %r" % (what, len(results), results))
            res = results[0]
            want_type = e.RESULT_COMPLETED if c["verdict"] == "completed" else e.RESULT_FAILED
            e.check(e.result_type(res) == want_type, "%s: result ce_type %r, want %r"
                    % (what, e.result_type(res), want_type))
            e.check(e.header(res, "ce_specversion") == "1.0", "%s: result ce_specversion" % what)
            e.check(e.header(res, "ce_subject") == c["key"], "%s: result ce_subject %r" %
                    (what, e.header(res, "ce_subject")))
            e.check(e.result_input_id(res) == c["id"], "%s: result carries input id %r"
                    % (what, e.result_input_id(res)))
            body = res.json()
            e.check(body.get("verdict") == c["verdict"], "%s: verdict %r" % (what, body.get("verdict")))
            e.check(body.get("dead_lettered") == c["dlq"], "%s: dead_lettered %r" % (what, body.get("dead_lettered")))
            e.check(body.get("event_id") == c["id"], "%s: result event_id %r" % (what, body.get("event_id")))
            runs = got_runs(res)
            e.check(runs == c["runs"], "%s: runs %r, want %r" % (what, runs, c["runs"]))
            # cn_dump's own record of where it ran.
            for ph in PHASES:
                ran = any(c["san"] in ln for ln in lines[ph])
                want = (ph, "cn_dump", "ok", False, 1, None) in c["runs"]
                e.check(ran == want, "%s: cn_dump %s in phase %s" % (what, "ran" if ran else "did not run", ph))
            dls = [m for m in readers[c["topics"].dlq].messages if m.key == c["key"]]
            e.check(len(dls) == (1 if c["dlq"] else 0), "%s: %d dead letters, want %d"
                    % (what, len(dls), 1 if c["dlq"] else 0))
            if dls:
                dl = dls[0]
                e.check(dl.value == c["value"], "%s: dead letter value changed" % what)
                for hn, hv in c["headers"]:
                    e.check(dl.headers.get(hn) == hv.decode(), "%s: original header %s lost" % (what, hn))
                want = {"hookd.dlq.topic": c["topics"].input, "hookd.dlq.partition": "0",
                        "hookd.dlq.offset": str(c["offset"]), "hookd.dlq.group": c["topics"].group,
                        "hookd.dlq.event.id": c["id"], "hookd.dlq.event.type": c["type"],
                        "hookd.dlq.phase": c["failed_phase"], "hookd.dlq.handler": "exception_test",
                        "hookd.dlq.attempts": str(c["failed_run"][4]),
                        "hookd.dlq.error.class": c["failed_run"][5],
                        "hookd.dlq.worker": "tt%02d" % c["cfg"],
                        "__connect.errors.topic": c["topics"].input, "__connect.errors.partition": "0",
                        "__connect.errors.offset": str(c["offset"])}
                if c["failed_run"][5] == "hook_failed":  # exception_test's message: the key's name
                    msg = "raise_%s_hook_exception" % c["failed_phase"]
                    want["hookd.dlq.error.message"] = want["__connect.errors.exception.message"] = msg
                else:
                    e.check(dl.headers.get("hookd.dlq.error.message"), "%s: no error message" % what)
                for hn, hv in want.items():
                    e.check(dl.headers.get(hn) == hv, "%s: dead letter header %s = %r, want %r"
                            % (what, hn, dl.headers.get(hn), hv))
                errs = schema_errors(DLQ_SCHEMA, {k: v for k, v in dl.headers.items()
                                                  if k.startswith(("hookd.dlq.", "__connect.errors."))})
                e.check(not errs, "%s: dead-letter headers do not match the schema: %s" % (what, errs))
            inp = body.get("input") or {}
            e.check((inp.get("topic"), inp.get("partition"), inp.get("offset")) ==
                    (c["topics"].input, 0, c["offset"]), "%s: result input %r" % (what, inp))
            errs = schema_errors(RESULT_SCHEMA, body)
            e.check(not errs, "%s: result value does not match the schema: %s" % (what, errs))
        except e.TestFailure as ex:
            failures.append(str(ex))

    # Malformed messages: dead-lettered with the reason, a failed result when
    # they have an id, and the good events after them processed.
    try:
        dl = readers[bad_topics.dlq].messages
        res = readers[bad_topics.result].messages
        for key, value, _, eid in bad_msgs:
            mine = [m for m in dl if m.key == key]
            e.check(len(mine) == 1, "malformed %s: %d dead letters" % (key, len(mine)))
            e.check(mine[0].value == value, "malformed %s: dead letter value changed" % key)
            e.check(mine[0].headers.get("hookd.dlq.error.class") == "invalid_event",
                    "malformed %s: error class %r" % (key, mine[0].headers.get("hookd.dlq.error.class")))
            e.check(mine[0].headers.get("hookd.dlq.error.message"), "malformed %s: no reason given" % key)
            e.check(mine[0].headers.get("hookd.dlq.event.id") == eid, "malformed %s: event id header %r"
                    % (key, mine[0].headers.get("hookd.dlq.event.id")))
            r = [m for m in res if m.key == key]
            if eid is None:
                e.check(not r, "malformed %s without id got a result" % key)
            else:
                e.check(len(r) == 1 and e.result_type(r[0]) == e.RESULT_FAILED,
                        "malformed %s: want one failed result, got %r" % (key, r))
                e.check(e.result_input_id(r[0]) == eid, "malformed %s: result id" % key)
        for name in good_after:
            r = [m for m in res if m.key == name]
            e.check(len(r) == 1 and e.result_type(r[0]) == e.RESULT_COMPLETED,
                    "good event %s after malformed ones: %r" % (name, r))
    except e.TestFailure as ex:
        failures.append(str(ex))

    # Committed offsets: everything done, so every partition at its end.
    for _, topics, _, _ in workers + [(None, bad_topics, None, None)]:
        ends = e.end_offsets(topics.input)
        got = e.committed(topics.group, topics.input)
        if got != ends:
            failures.append("group %s committed %r, end offsets %r" % (topics.group, got, ends))

    for r in readers.values():
        r.close()
    print("truth table: %d events in %d configurations + %d malformed messages; %d failures"
          % (len(cases), len(workers), len(bad_msgs), len(failures)))
    for f in failures:
        print("  FAIL " + f)
    e.check(not failures, "%d truth-table checks failed" % len(failures))


if __name__ == "__main__":
    e.run(main)
