# SPDX-License-Identifier: MIT
"""Result events decoded by CloudEvents SDKs no one here wrote: the
`cloudevents` npm package's Kafka binding (ce_decode.js, with strict
validation) and the `cloudevents` PyPI package's Kafka binding. Both must
accept every result as a valid CloudEvents 1.0 binary-mode event whose
attributes say what the worker did.

Inputs cover the three wire forms (plain JSON, CloudEvents structured,
CloudEvents binary) and both verdicts: exception_test fails the pre hooks
(flag off), so the requested event's result is `failed`; the issued and
failed events complete.
"""
import json
import os
import subprocess

import hookd_e2e as e
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat


def main():
    topics = e.Topics("cesdk")
    pki = e.Pki()
    prod = e.Produce()
    cases = {}
    for etype, form in ((e.REQUESTED, "plain"), (e.ISSUED, "structured"), (e.FAILED, "binary"),
                        (e.REQUESTED, "binary"), (e.ISSUED, "plain"), (e.FAILED, "structured")):
        name = "ce-%s-%s" % (etype.rsplit(".", 1)[1], form)
        eid = "id-" + name
        v, h = e.encode(etype, eid, e.fields(etype, name, pki), form)
        prod.send(topics.input, v, key=name.encode(), headers=h)
        cases[name] = {"id": eid, "type": etype,
                       "ce_type": e.RESULT_FAILED if etype == e.REQUESTED else e.RESULT_COMPLETED}
    prod.flush()

    w = e.Worker("cesdk", topics, {"hooks_file": "exception_test", "raise_pre_hook_exception": True})
    w.start()
    results = e.Reader(topics.result)
    results.until(lambda ms: {m.key for m in ms} >= cases.keys(), 120, "%d results" % len(cases))
    rc = w.stop()
    e.check(rc == 0, "worker exited with %s" % rc)

    msgs = [m for m in results.messages if m.key in cases]
    dump = [{"key": m.key, "value": m.value.decode("utf-8"), "headers": m.headers} for m in msgs]
    path = os.path.join(e.workdir(), "results.json")
    with open(path, "w") as f:
        json.dump(dump, f, indent=1)

    # JavaScript SDK.
    node = subprocess.run(["node", os.path.join(e.HERE, "ce_decode.js"), path],
                          capture_output=True, text=True, timeout=60)
    e.check(node.returncode == 0, "ce_decode.js failed (NODE_PATH=%s): %s"
            % (os.environ.get("NODE_PATH"), node.stderr))
    decoded = json.loads(node.stdout)
    failures = []
    for m, d in zip(msgs, decoded):
        c = cases[m.key]
        if not d["ok"]:
            failures.append("npm cloudevents refused the result of %s: %s" % (m.key, d["error"]))
            continue
        ev = d["event"]
        for attr, want in (("specversion", "1.0"), ("type", c["ce_type"]), ("subject", m.key),
                           ("partitionkey", m.key)):
            if ev.get(attr) != want:
                failures.append("npm: result of %s: %s = %r, want %r" % (m.key, attr, ev.get(attr), want))
        if not isinstance(ev.get("data"), dict):
            failures.append("npm: result of %s: data is not a JSON object: %r" % (m.key, ev.get("data")))
        if ev.get("inputeventid") != c["id"]:
            failures.append("npm: result of %s: extension inputeventid %r, want %s"
                            % (m.key, ev.get("inputeventid"), c["id"]))
        data = ev.get("data") if isinstance(ev.get("data"), dict) else {}
        want_verdict = "failed" if c["ce_type"] == e.RESULT_FAILED else "completed"
        if data.get("event_id") != c["id"] or data.get("verdict") != want_verdict:
            failures.append("npm: result of %s: data event_id %r verdict %r" % (m.key, data.get("event_id"),
                                                                               data.get("verdict")))
        print("npm cloudevents: %s -> type=%s id=%s source=%s" % (m.key, ev.get("type"), ev.get("id"),
                                                                  ev.get("source")))

    # Python SDK.
    for m in msgs:
        c = cases[m.key]
        km = KafkaMessage(headers={k: (v or "").encode() for k, v in m.headers.items()},
                          key=m.key.encode(), value=m.value)
        try:
            ev = from_binary(km, JSONFormat())
        except Exception as ex:  # the SDK's validation error is the finding
            failures.append("PyPI cloudevents refused the result of %s: %s" % (m.key, ex))
            continue
        attrs = ev.get_attributes()
        if attrs.get("type") != c["ce_type"] or attrs.get("specversion") != "1.0" or \
                attrs.get("inputeventid") != c["id"] or attrs.get("subject") != m.key:
            failures.append("PyPI: result of %s: attributes %r" % (m.key, attrs))
        if not isinstance(ev.get_data(), dict):
            failures.append("PyPI: result of %s: data %r" % (m.key, ev.get_data()))
    results.close()
    for f in failures:
        print("  FAIL " + f)
    e.check(not failures, "%d CloudEvents SDK checks failed" % len(failures))
    print("cloudevents SDKs: %d results decoded and validated by npm cloudevents and PyPI cloudevents"
          % len(msgs))


if __name__ == "__main__":
    e.run(main)
