# SPDX-License-Identifier: MIT
"""`acme-hookd replay` against the real broker, with a running worker.

The worker runs the exec handler: its success hook appends the event id to
success.log; its pre and post hooks fail ("cmdb down", "mailer down")
until the file `fixed` exists, then append to pre.log / post.log.
allow_post_hook_failure is off, trust_event_flags on. Input: 6 issued
events (success runs, post fails: dead letter, phase post), 6 requested
events (pre fails: dead letter, phase pre) and one event that is not JSON
(invalid_event). Then the handlers are "fixed" and:

1. Dry run: lists the 12 replayable dead letters (not the invalid one),
   exits 0, sends and commits nothing.
2. A filtered run (--phase pre --class hook_failed --since <start>, its
   own group): exactly the 6 requested events are sent, once each, with
   their key, value and headers and the hookd.replay.* provenance; the
   worker completes them (pre.log has them).
3. Interrupt and resume: --phase post at --rate 3/s, SIGKILLed as soon as
   its first batch is committed, then --resume: every post dead letter
   is on the input topic exactly once (read_committed, as the worker
   reads), none twice.
4. Phase-aware resume: those 6 issued events were sent with
   hookd.phases.done = pre,success; the worker ran only post (post.log
   has each once), success.log still has each event exactly once, and
   each result says skipped_phases ["success"].
5. Signed: a worker with [auth] require and without trust_event_flags; a
   signed issued event fails in post; the replay writes hookd.phases.done
   and signs the record again with the key of [auth] keys; the worker
   verifies it and runs only post. An event whose hookd.phases.done was
   added after signing is refused as auth_failed.
6. A worker with neither: an event carrying hookd.phases.done is
   dead-lettered as invalid_event ("not trusted") and no hook runs; the
   replay refuses to send what needs the header (exit 1, each listed).

About 20 s with a warm broker (10 s for steps 1-4).
"""
import base64
import collections
import hashlib
import hmac
import os
import signal
import struct
import subprocess
import time

import hookd_e2e as e

ISSUED_N = 6
REQUESTED_N = 6


def replay(w, *args, timeout=60):
    """Run acme-hookd replay with the worker's config; (status, stdout, stderr)."""
    p = subprocess.run([e.hookd_bin(), "replay", "-c", w.config, *args], capture_output=True,
                       text=True, timeout=timeout)
    e.log("replay %s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p.returncode, p.stdout, p.stderr


def lines(path):
    try:
        with open(path) as f:
            return [l.strip() for l in f if l.strip()]
    except FileNotFoundError:
        return []


def replays_of(msgs, group):
    """Input records a replay of `group` sent: {(dlq partition, offset): [Msg]}."""
    out = collections.defaultdict(list)
    for m in msgs:
        if m.headers.get("hookd.replay.group") == group:
            out[(int(m.headers["hookd.replay.partition"]),
                 int(m.headers["hookd.replay.offset"]))].append(m)
    return out


def sign(secret, key, value, headers):
    """The hookd-signature header (docs/security.md, "The canonical form")."""
    def lp(b):
        return b"\xff\xff\xff\xff" if b is None else struct.pack(">I", len(b)) + b
    signed = sorted(((n, v) for n, v in headers
                     if n.lower().startswith(("ce_", "kafka_reply"))
                     or n.lower() in ("content-type", "hookd.flags", "hookd.phases.done",
                                      "kafka_correlationid")),
                    key=lambda x: x[0].encode())
    m = b"acme-hookd-hmac-v1\n" + lp(key) + lp(value) + struct.pack(">I", len(signed))
    for n, v in signed:
        m += lp(n.encode()) + lp(v)
    mac = hmac.new(secret, m, hashlib.sha256).digest()
    return ("hookd-signature", b"v1;kid=k1;sig=" + base64.b64encode(mac))


def main():
    d = e.workdir()
    fixed = os.path.join(d, "fixed")
    # one script per phase: "$0" is its own path, so its name says the phase
    script = os.path.join(d, "hook.sh")
    with open(script, "w") as f:
        f.write('#!/bin/sh\nphase=$HOOKD_PHASE\n'
                'if [ "$phase" != success ] && [ ! -e "%s" ]; then echo "$phase: down" >&2; exit 1; fi\n'
                'echo "$HOOKD_EVENT_ID" >> "%s/$phase.log"\n' % (fixed, d))
    os.chmod(script, 0o755)
    hooks = {"hooks_file": "exec", "exec_pre_command": script, "exec_success_command": script,
             "exec_post_command": script, "allow_post_hook_failure": False}
    topics = e.Topics("replay", partitions=2, dlq_partitions=2)
    w = e.Worker("replay", topics, hooks, worker={"trust_event_flags": True}).start()
    w.wait_log("started", 60)
    start_ms = int(time.time() * 1000) - 1000
    pki = e.Pki()

    p = e.Produce()
    issued, requested = [], []
    for i in range(ISSUED_N):
        name, eid = "rp-iss-%d" % i, "rp-iss-ev-%d" % i
        v, h = e.encode(e.ISSUED, eid, e.fields(e.ISSUED, name, pki), "binary")
        p.send(topics.input, v, key=name.encode(), headers=h)
        issued.append(eid)
    for i in range(REQUESTED_N):
        name, eid = "rp-req-%d" % i, "rp-req-ev-%d" % i
        v, h = e.encode(e.REQUESTED, eid, e.fields(e.REQUESTED, name, None), "plain")
        p.send(topics.input, v, key=name.encode(), headers=h + [("traceparent", b"00-rp-%d" % i)])
        requested.append(eid)
    p.send(topics.input, b"not json at all", key=b"rp-bad")
    p.flush()
    inp = e.Reader(topics.input)
    input_before = len(inp.read_to_end())
    e.check(input_before == ISSUED_N + REQUESTED_N + 1,
            "the broker acknowledged %d records but the input topic holds %d"
            % (ISSUED_N + REQUESTED_N + 1, input_before))

    dlq = e.Reader(topics.dlq)
    dlq.until(lambda ms: len(ms) >= ISSUED_N + REQUESTED_N + 1, 90, "13 dead letters")
    by_phase = collections.Counter(m.headers.get("hookd.dlq.phase") for m in dlq.messages)
    e.check(by_phase == {"post": ISSUED_N, "pre": REQUESTED_N, None: 1}, "dead letters: %s" % by_phase)
    e.check(sorted(lines(os.path.join(d, "success.log"))) == sorted(issued),
            "success hooks before the replay: %s" % lines(os.path.join(d, "success.log")))
    open(fixed, "w").close()

    # 1. dry run
    t0 = time.monotonic()
    rc, out, _ = replay(w, "--dry-run")
    would = [l for l in out.splitlines() if l.startswith("would send ")]
    e.check(rc == 0 and len(would) == ISSUED_N + REQUESTED_N, "dry run: %d %s" % (rc, out))
    e.check(sum("phases.done=pre,success" in l for l in would) == ISSUED_N,
            "dry run: the post failures go with phases.done: %s" % would)
    e.check("invalid_event not sent 1" in out, "dry run summary: %s" % out)
    e.check(all(v < 0 for v in e.committed(topics.group + ".replay", topics.dlq).values()),
            "the dry run committed offsets")
    e.check(len(inp.poll(1.0)) == input_before, "the dry run sent records")
    e.log("dry run: %.1f s" % (time.monotonic() - t0))

    # 2. a filtered run
    g1 = e.unique("replay.g1")
    rc, out, _ = replay(w, "--phase", "pre", "--class", "hook_failed", "--since",
                        str(start_ms), "--group", g1, "--reason", "filtered run")
    e.check(rc == 0, "filtered run: %d" % rc)
    sent = replays_of(inp.until(lambda ms: len(replays_of(ms, g1)) >= REQUESTED_N, 30,
                                "the filtered replays"), g1)
    e.check(len(sent) == REQUESTED_N and all(len(v) == 1 for v in sent.values()),
            "filtered run sent: %s" % {k: len(v) for k, v in sent.items()})
    originals = {m.key: m for m in inp.messages if "hookd.replay.group" not in m.headers}
    for (part, off), (m,) in sent.items():
        o = originals[m.key]
        e.check(m.value == o.value and m.key.startswith("rp-req-"), "changed: %r" % m)
        e.check(all(m.headers.get(k) == v for k, v in o.headers.items()),
                "original headers lost: %r vs %r" % (m.headers, o.headers))
        e.check(not any(k.startswith(("hookd.dlq.", "__connect.errors.")) for k in m.headers),
                "context headers replayed: %r" % m.headers)
        e.check(m.headers.get("hookd.replay.reason") == "filtered run"
                and m.headers.get("hookd.replay.topic") == topics.dlq
                and "hookd.phases.done" not in m.headers, "provenance: %r" % m.headers)
    e.wait_until(lambda: sorted(lines(os.path.join(d, "pre.log"))) == sorted(requested), 60,
                 "the replayed requested events to pass pre")

    # 3. interrupt (SIGKILL after the first committed batch) and resume
    g2 = e.unique("replay.g2")
    proc = subprocess.Popen([e.hookd_bin(), "replay", "-c", w.config, "--phase", "post",
                             "--rate", "3/s", "--group", g2, "--reason", "post rerun"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    rest, err = proc.communicate(30)
    e.log("killed replay printed: %r %r; stderr %r" % (first, rest, err[-500:]))
    e.check(first.startswith("sent "), "killed replay: first line %r" % first)
    rc, out, _ = replay(w, "--phase", "post", "--group", g2, "--reason", "post rerun", "--resume")
    e.check(rc == 0, "resume: %d" % rc)
    resumed_sent = sum(l.startswith("sent ") for l in out.splitlines())
    sent = replays_of(inp.until(lambda ms: len(replays_of(ms, g2)) >= ISSUED_N, 30,
                                "the post replays"), g2)
    inp.poll(2.0)  # anything sent twice would be here by now
    sent = replays_of(inp.messages, g2)
    e.check(len(sent) == ISSUED_N and all(len(v) == 1 for v in sent.values()),
            "post replays after the interrupt: %s" % {k: len(v) for k, v in sent.items()})
    # (a batch committed just before the kill may not have printed its lines:
    # the topic, not stdout, says what was sent)
    e.check(resumed_sent >= 1, "the killed replay had finished: nothing was interrupted")
    for (m,) in sent.values():
        e.check(m.headers.get("hookd.phases.done") == "pre,success", "phases: %r" % m.headers)

    # 4. only post ran for them; no success hook twice
    e.wait_until(lambda: sorted(lines(os.path.join(d, "post.log"))) == sorted(issued), 60,
                 "post hooks of the replayed issued events")
    res = e.Reader(topics.result)
    res.until(lambda ms: sum(1 for m in ms if e.result_input_id(m) in issued
                             and e.result_type(m) == e.RESULT_COMPLETED) >= ISSUED_N, 30,
              "completed results of the replayed issued events")
    for m in res.messages:
        if e.result_input_id(m) in issued and e.result_type(m) == e.RESULT_COMPLETED:
            body = m.json()
            e.check(body.get("skipped_phases") == ["success"]
                    and {r["phase"] for r in body["runs"]} == {"post"}, "result: %s" % body)
    e.check(sorted(lines(os.path.join(d, "success.log"))) == sorted(issued),
            "a success hook ran twice: %s" % collections.Counter(lines(os.path.join(d, "success.log"))))
    e.check(w.stop() == 0, "worker exit status")

    # 5. under [auth] require (no trust_event_flags): the replay signs the
    # record whose hookd.phases.done it writes, and the worker verifies it
    t5 = time.monotonic()
    keyfile = os.path.join(d, "k1.key")
    secret = os.urandom(32)
    with open(keyfile, "w") as f:
        f.write("hex:%s\n" % secret.hex())
    os.chmod(keyfile, 0o600)
    t2 = e.Topics("replay-auth", partitions=1)
    w2 = e.Worker("replay-auth", t2, hooks, worker={"trust_event_flags": False},
                  extra={"auth": {"require": True, "keys": "k1:%s" % keyfile}})
    os.unlink(fixed)
    w2.start().wait_log("started", 60)
    v, h = e.encode(e.ISSUED, "rp-auth-ev", e.fields(e.ISSUED, "rp-auth", pki), "binary")
    p.send(t2.input, v, key=b"rp-auth", headers=h + [sign(secret, b"rp-auth", v, h)])
    p.flush()
    dl2 = e.Reader(t2.dlq)
    dl2.until(lambda ms: len(ms) >= 1, 60, "the signed event's dead letter")
    e.check(dl2.messages[0].headers.get("hookd.dlq.phase") == "post", repr(dl2.messages[0]))
    open(fixed, "w").close()
    rc, out, _ = replay(w2, "--reason", "signed replay")
    e.check(rc == 0 and "phases.done=pre,success" in out, "signed replay: %d %s" % (rc, out))
    res2 = e.Reader(t2.result)
    res2.until(lambda ms: any(e.result_type(m) == e.RESULT_COMPLETED for m in ms), 60,
               "the signed replay's result")
    body = [m.json() for m in res2.messages if e.result_type(m) == e.RESULT_COMPLETED][0]
    e.check(body.get("skipped_phases") == ["success"], "signed replay result: %s" % body)
    e.check(lines(os.path.join(d, "success.log")).count("rp-auth-ev") == 1,
            "success hook of the signed event ran again")
    # hookd.phases.done added after signing: forged, nothing runs
    v, h = e.encode(e.ISSUED, "rp-forged-ev", e.fields(e.ISSUED, "rp-forged", pki), "binary")
    h = h + [sign(secret, b"rp-forged", v, h), ("hookd.phases.done", b"pre,success")]
    p.send(t2.input, v, key=b"rp-forged", headers=h)
    p.flush()
    dl2.until(lambda ms: any(m.key == "rp-forged" for m in ms), 60, "the forged event's dead letter")
    forged = [m for m in dl2.messages if m.key == "rp-forged"][0]
    e.check(forged.headers.get("hookd.dlq.error.class") == "auth_failed", repr(forged))
    e.check(w2.stop() == 0, "worker exit status")
    e.log("signed replay: %.1f s" % (time.monotonic() - t5))

    # 6. neither [auth] require nor trust_event_flags: the worker refuses the
    # header (invalid_event), and the replay refuses to send a post-only
    # resume it would refuse
    t3 = e.Topics("replay-plain", partitions=1)
    w3 = e.Worker("replay-plain", t3, hooks).start()
    w3.wait_log("started", 60)
    os.unlink(fixed)
    v, h = e.encode(e.ISSUED, "rp-untrusted-ev", e.fields(e.ISSUED, "rp-untrusted", pki), "binary")
    p.send(t3.input, v, key=b"rp-untrusted", headers=h + [("hookd.phases.done", b"pre,success")])
    v, h = e.encode(e.ISSUED, "rp-plain-ev", e.fields(e.ISSUED, "rp-plain", pki), "binary")
    p.send(t3.input, v, key=b"rp-plain", headers=h)
    p.flush()
    dl3 = e.Reader(t3.dlq)
    dl3.until(lambda ms: len(ms) >= 2, 60, "two dead letters")
    by_key = {m.key: m for m in dl3.messages}
    u = by_key["rp-untrusted"].headers
    e.check(u.get("hookd.dlq.error.class") == "invalid_event"
            and "not trusted" in u.get("hookd.dlq.error.message", ""), "untrusted: %r" % u)
    e.check("rp-untrusted-ev" not in lines(os.path.join(d, "success.log")),
            "a success hook ran for an event refused for its hookd.phases.done")
    e.check(by_key["rp-plain"].headers.get("hookd.dlq.phase") == "post", repr(by_key["rp-plain"]))
    rc, out, err = replay(w3, "--reason", "untrusted", "--include-invalid")
    e.check(rc == 1 and err.count("cannot replay") == 2
            and "needs hookd.phases.done 'pre,success'" in err and "sent 0" in out,
            "replay to an untrusting worker: %d %s %s" % (rc, out, err))
    e.check(w3.stop() == 0, "worker exit status")


if __name__ == "__main__":
    e.run(main)
