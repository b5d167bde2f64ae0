# SPDX-License-Identifier: MIT
"""One place for the flags: the 128 combinations of enrollment outcome
(issued / refused by the CA) x raising phases (exception_test's
raise_*_hook_exception, 8) x acme2certifier's ignore_*_hook_failure flags
(8), each with one acme_srv.cfg, give the same certbot outcome and the same
cn_dump lines with acme2certifier's in-process hooks and through
acme_hookd_a2c + acme-hookd.

acme2certifier parses its configuration once per process, so each of the 64
configurations gets fresh processes: an in-process server, a bridge server
and a worker, all reading the same acme_srv.cfg. Both outcomes run on each
configuration at once (the CA refuses *.no.test at enrollment time, after
pre_hook), so one configuration is 4 certbot runs in parallel. The 64
configurations run in HOOKD_A2C_LANES parallel lanes (default 6). The
Python processes are forked from a zygote that has imported certbot and
acme2certifier once (zygote.py; HOOKD_A2C_ZYGOTE=0 starts each from scratch).

Besides agreeing with each other, both sides must agree with the model of
acme2certifier 0.46.3's hook handling (certificate.py), so a setup in which
the hooks silently do not run at all cannot pass.
"""
import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import a2c_harness as h  # noqa: E402
from a2c_harness import check, log  # noqa: E402

PHASES = ("pre", "success", "post")


def expected(domain_ok, raises, ignore):
    """(certbot outcome, phases that wrote a cn_dump line) per acme2certifier
    0.46.3: a failing hook stops the enrollment unless its ignore_* flag is
    set; cn_dump runs before exception_test in each phase."""
    lines = ["pre"]
    if "pre" in raises and not ignore["pre"]:
        return "failed: pre_hook_error :: pre-hook failed", lines
    if domain_ok:
        lines.append("success")
        if "success" in raises and not ignore["success"]:
            return "failed: success_hook_error :: success-hook failed", lines
    lines.append("post")
    if "post" in raises and not ignore["post"]:
        return "failed: post_hook_error :: post-hook failed", lines
    if domain_ok:
        return "issued", lines
    return "failed: urn:ietf:params:acme:error:serverInternal :: The server experienced an internal " \
           "error :: enrollment failed", lines


class LaneTopics:
    """Per configuration an input topic (its worker's group is new); result,
    dead-letter and reply topics shared by the configurations of a lane,
    which run one after the other."""

    def __init__(self, lane, index):
        self.input = "matrix-%s-in-%02d" % (RUN, index)
        self.result = "matrix-%s-result-%d" % (RUN, lane)
        self.dlq = "matrix-%s-dlq-%d" % (RUN, lane)
        self.reply = "matrix-%s-reply-%d" % (RUN, lane)
        self.group = "matrix-%s-group-%02d" % (RUN, index)


RUN = "%d-%04x" % (os.getpid(), int(time.time()) & 0xffff)


def run_config(ca, lane, index, raises, ignore, report):
    name = "c%02d-%s-%s" % (index, "".join(p[0] for p in PHASES if p in raises) or "none",
                            "".join(p[0] for p in PHASES if ignore[p]) or "none")
    topics = LaneTopics(lane, index)
    inproc = h.Setup(name + "-in", ca, "inprocess", raises, ignore)
    hookd = h.Setup(name + "-hk", ca, "hookd", raises, ignore, topics=topics)
    worker = h.Worker(hookd)
    servers = [h.Server(inproc), h.Server(hookd)]
    try:
        ts = [threading.Thread(target=s.start) for s in servers]
        for t in ts:
            t.start()
        worker.start()
        for t in ts:
            t.join()
        for s in servers:
            check(s.port is not None, "%s: a server did not start: %s" % (name, s.tail()))
        got = {}

        def enroll(server, side, domain_ok):
            dom = ("%s.%s" % (name, h.ALLOWED_SUFFIX if domain_ok else h.REFUSED_SUFFIX)).lower()
            got[(side, domain_ok)] = h.certbot(server, dom, "%s-%s" % (side, "ok" if domain_ok else "no"))
        runs = [threading.Thread(target=enroll, args=(srv, side, ok))
                for srv, side in ((servers[0], "in"), (servers[1], "hk")) for ok in (True, False)]
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        lines = {"in": inproc.lines(), "hk": hookd.lines()}
        for ok in (True, False):
            want, want_phases = expected(ok, raises, ignore)
            a, b = got[("in", ok)], got[("hk", ok)]
            dom = a.domain
            line = '["DNS:%s"]' % dom
            for side, e in (("in-process", a), ("acme-hookd", b)):
                check(e.outcome() == want, "%s %s %s: certbot %r, expected %r\n%s" % (
                    name, dom, side, e.outcome(), want, e.output[-1500:]))
            for side in ("in", "hk"):
                have = [ph for ph in PHASES if line in lines[side][ph]]
                check(have == want_phases, "%s %s %s: cn_dump lines in %r, expected %r" % (
                    name, dom, side, have, want_phases))
        for ph in PHASES:
            check(sorted(lines["in"][ph]) == sorted(lines["hk"][ph]),
                  "%s: %s_hook.txt differs: in-process %r, acme-hookd %r" % (
                      name, ph, lines["in"][ph], lines["hk"][ph]))
        report.append((name, got[("in", True)].outcome(), got[("in", False)].outcome()))
    finally:
        for s in servers:
            s.stop()
        worker.stop()


def main():
    t0 = time.monotonic()
    lanes = int(os.environ.get("HOOKD_A2C_LANES", "6"))
    ca = h.CA(os.path.join(h.workdir(), "ca"))
    if os.environ.get("HOOKD_A2C_ZYGOTE", "1") != "0":
        h.start_zygote()
    configs = []
    for r in range(8):
        raises = {p for i, p in enumerate(PHASES) if r >> i & 1}
        for f in range(8):
            ignore = {p: bool(f >> i & 1) for i, p in enumerate(PHASES)}
            configs.append((len(configs), raises, ignore))
    topics = {}
    for lane in range(lanes):
        t = LaneTopics(lane, 0)
        topics.update({t.result: 1, t.dlq: 1, t.reply: 1})
    for c in configs:
        topics[LaneTopics(0, c[0]).input] = 1
    h.create_topics(topics)
    log("matrix: %d configurations x 2 outcomes, %d lanes, topics ready in %.1f s"
        % (len(configs), lanes, time.monotonic() - t0))

    work = queue.Queue()
    for c in configs:
        work.put(c)
    report, errors = [], []

    def lane(n):
        while not errors:
            try:
                index, raises, ignore = work.get_nowait()
            except queue.Empty:
                return
            try:
                run_config(ca, n, index, raises, ignore, report)
            except Exception as e:  # noqa: BLE001 - the first failure stops every lane
                errors.append(e)
    ts = [threading.Thread(target=lane, args=(n,)) for n in range(lanes)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    check(len(report) == len(configs), "ran %d of %d configurations" % (len(report), len(configs)))
    outcomes = {}
    for _name, ok, no in report:
        outcomes[ok] = outcomes.get(ok, 0) + 1
        outcomes[no] = outcomes.get(no, 0) + 1
    for o, n in sorted(outcomes.items()):
        log("matrix: %3d x %s" % (n, o))
    log("matrix: 128 combinations agree (in-process = acme-hookd = model) in %.1f s with %d lanes"
        % (time.monotonic() - t0, lanes))


if __name__ == "__main__":
    h.run(main)
