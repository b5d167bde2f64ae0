# SPDX-License-Identifier: MIT
"""certbot -> acme2certifier -> acme_hookd_a2c -> Kafka -> acme-hookd, end to end,
each case beside the same configuration with acme2certifier's own in-process
hooks (cn_dump_hooks then exception_test_hooks): both must give the same
certbot outcome and the same cn_dump lines.

Cases: all pass; pre fails (flag off); success fails; post fails (default
flag: allowed); hooks_file form of the bridge; the worker stopped (the
timeout fails the enrollment closed, the next passes once it is back);
three acme2certifier processes at once, each with its own reply partition.
"""
import json
import os
import re
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import a2c_harness as h  # noqa: E402
from a2c_harness import check, log  # noqa: E402


def results_for(topics, count):
    return [json.loads(r["value"]) for r in h.read_topic(topics.result, count)]


def differential(ca, name, raise_phases=(), ignore=None, domain="www.ok.test", hooks_key="hooks_module"):
    """Run one case both ways at once; returns (hookd setup, its enrollment, topics)."""
    topics = h.Topics(name)
    inproc = h.Setup(name + "-inprocess", ca, "inprocess", raise_phases, ignore)
    hookd = h.Setup(name + "-hookd", ca, "hookd", raise_phases, ignore, topics=topics, hooks_key=hooks_key)
    worker = h.Worker(hookd)
    servers = [h.Server(inproc), h.Server(hookd)]
    starters = [threading.Thread(target=s.start) for s in servers]
    for t in starters:
        t.start()
    worker.start()
    for t in starters:
        t.join()
    for s in servers:
        check(s.port is not None, "a server did not start: %s" % s.tail())
    got = {}

    def enroll(server, key):
        got[key] = h.certbot(server, domain, key)
    runs = [threading.Thread(target=enroll, args=(servers[0], "inprocess")),
            threading.Thread(target=enroll, args=(servers[1], "hookd"))]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    a, b = got["inprocess"], got["hookd"]
    check(a.outcome() == b.outcome(), "%s: certbot outcome differs: in-process %r, acme-hookd %r\n%s"
          % (name, a.outcome(), b.outcome(), servers[1].tail()))
    check(inproc.lines() == hookd.lines(), "%s: cn_dump lines differ: in-process %r, acme-hookd %r"
          % (name, inproc.lines(), hookd.lines()))
    for s in servers:
        s.stop()
    worker.stop()
    return hookd, b, topics


def main():
    ca = h.CA(os.path.join(h.workdir(), "ca"))
    san = '["DNS:www.ok.test"]'

    # all pass: certificate issued, the SANs in all three files
    setup, e, topics = differential(ca, "all-pass")
    check(e.issued, "all-pass: no certificate:\n%s" % e.output[-2000:])
    check(setup.lines() == {"pre": [san], "success": [san], "post": [san]}, "all-pass lines %r" % setup.lines())
    res = results_for(topics, 2)
    check(sorted(r["verdict"] for r in res) == ["completed", "completed"], "all-pass results %r" % res)

    # pre fails with its flag off: certbot fails with a clear message, no
    # certificate, no success or post line, a dead letter
    setup, e, topics = differential(ca, "pre-fails", raise_phases={"pre"})
    check(not e.issued and e.rc != 0, "pre-fails: certbot succeeded")
    check(e.acme_error() == "pre_hook_error :: pre-hook failed", "pre-fails: certbot said %r" % e.acme_error())
    check(setup.lines() == {"pre": [san], "success": [], "post": []}, "pre-fails lines %r" % setup.lines())
    dl = h.read_topic(topics.dlq, 1)
    check(len(dl) == 1 and dl[0]["headers"].get("hookd.dlq.phase") == b"pre",
          "pre-fails: dead letters %r" % [(d["key"], d["headers"]) for d in dl])

    # success fails: certbot fails (the certificate was issued and stored, the answer is an error)
    setup, e, topics = differential(ca, "success-fails", raise_phases={"success"})
    check(not e.issued and e.acme_error() == "success_hook_error :: success-hook failed",
          "success-fails: certbot said %r" % e.outcome())
    check(setup.lines() == {"pre": [san], "success": [san], "post": []}, "success-fails lines %r" % setup.lines())

    # post fails with the default flag (allowed): issued, failure_allowed in the result
    setup, e, topics = differential(ca, "post-fails", raise_phases={"post"})
    check(e.issued, "post-fails: no certificate: %s" % e.outcome())
    res = [r for r in results_for(topics, 2) if r["event_type"] == "acme.enrollment.issued"]
    post_runs = [run for r in res for run in r["runs"] if run["phase"] == "post" and run["outcome"] == "fail"]
    check(len(post_runs) == 1 and post_runs[0]["failure_allowed"] is True and res[0]["verdict"] == "completed",
          "post-fails: result %r" % res)

    # the same with the flag off and the bridge loaded through hooks_file
    setup, e, topics = differential(ca, "post-fails-flag-off", raise_phases={"post"},
                                    ignore={"post": False}, hooks_key="hooks_file")
    check(e.acme_error() == "post_hook_error :: post-hook failed", "post-fails-flag-off: %r" % e.outcome())

    details_forwarded(ca)
    worker_stopped(ca)
    three_processes(ca)


def details_forwarded(ca):
    """hook_error_details_forward = True: the client sees the handler's text
    (prefixed with the handler's name by the bridge), not the generic one."""
    topics = h.Topics("details")
    setup = h.Setup("details-forwarded", ca, "hookd", raise_phases={"pre"}, topics=topics,
                    extra_hooks={"hook_error_details_forward": True})
    worker = h.Worker(setup).start()
    server = h.Server(setup).start()
    e = h.certbot(server, "details.ok.test", "details")
    check(e.acme_error() == "pre_hook_error :: exception_test: raise_pre_hook_exception",
          "details forwarded: certbot said %r" % e.outcome())
    server.stop()
    worker.stop()


def worker_stopped(ca):
    """No worker: the verdict timeout fails the enrollment closed with a clear
    error; once the worker is back the next enrollment passes."""
    topics = h.Topics("stopped")
    setup = h.Setup("worker-stopped", ca, "hookd", topics=topics, verdict_timeout=3)
    server = h.Server(setup).start()
    e = h.certbot(server, "late.ok.test", "late")
    check(not e.issued and e.acme_error() == "pre_hook_error :: pre-hook failed",
          "worker stopped: certbot said %r" % e.outcome())
    text = server.log_text()
    check("no verdict from acme-hookd within 3s" in text and "phase pre" in text and "failing the hook" in text,
          "worker stopped: no timeout line in the server log:\n%s" % server.tail())
    worker = h.Worker(setup).start()
    e = h.certbot(server, "back.ok.test", "back")
    check(e.issued, "worker back: %s" % e.outcome())
    check('["DNS:back.ok.test"]' in setup.lines()["success"], "worker back: lines %r" % setup.lines())
    server.stop()
    worker.stop()
    log("worker stopped: failed closed on timeout, passed once back")


def three_processes(ca):
    """Three acme2certifier processes on one reply topic, enrolling at once:
    each claims its own reply partition and reads only its own replies."""
    topics = h.Topics("three", partitions=3, reply_partitions=4)
    setups = [h.Setup("three-%d" % i, ca, "hookd", topics=topics) for i in range(3)]
    worker = h.Worker(setups[0]).start()
    servers = [h.Server(s).start() for s in setups]
    out = {}

    def enroll(i):
        out[i] = [h.certbot(servers[i], "p%d-%d.ok.test" % (i, n), "p%d-%d" % (i, n)) for n in range(2)]
    ts = [threading.Thread(target=enroll, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i in range(3):
        check(all(e.issued for e in out[i]), "process %d: %r" % (i, [e.outcome() for e in out[i]]))
    claimed = {}
    for i, s in enumerate(servers):
        text = s.log_text()
        m = re.findall(r"reads replies on %s\[(\d+)\] from offset \d+ \((\w+)" % re.escape(topics.reply), text)
        check(len(m) == 1 and m[0][1] == "exclusive", "process %d: reply partition lines %r" % (i, m))
        claimed[i] = int(m[0][0])
        check("foreign reply" not in text and "malformed reply" not in text,
              "process %d read replies that were not its own:\n%s" % (i, s.tail()))
    check(len(set(claimed.values())) == 3, "reply partitions not distinct: %r" % claimed)
    # every request of process i asked for partition claimed[i], and every
    # reply went there: 2 enrollments x (requested + issued) each
    requests = h.read_topic(topics.input, 12)
    replies = h.read_topic(topics.reply, 12)
    by_part = {}
    for r in requests:
        p = struct.unpack(">i", r["headers"]["kafka_replyPartition"])[0]
        by_part.setdefault(p, []).append(r["headers"]["kafka_correlationId"])
    check(sorted(len(v) for v in by_part.values()) == [4, 4, 4] and set(by_part) == set(claimed.values()),
          "requests per reply partition: %r" % {p: len(v) for p, v in by_part.items()})
    for r in replies:
        check(r["headers"].get("kafka_correlationId") in by_part.get(r["partition"], []),
              "reply on partition %d for a request of another partition" % r["partition"])
    check(len(replies) == 12, "replies: %d" % len(replies))
    for s in servers:
        s.stop()
    worker.stop()
    log("three processes: reply partitions %r, no foreign replies" % claimed)


if __name__ == "__main__":
    h.run(main)
