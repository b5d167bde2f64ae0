# SPDX-License-Identifier: MIT
"""Non-blocking retries through retry tier topics ([worker] retry_topics),
on one input partition with [worker] ordering = key and tiers 1s,2s,4s
(topics <input>.retry.1s|2s|4s, one partition each, as the input).

The handler is the bundled exec handler: its success command appends
"S <event id>" to a trace file; its post command appends "F <id>" and asks
for a retry (exit 75) while the event must still fail, else appends
"P <id>" and succeeds. allow_post_hook_failure = false, so a post that
keeps asking for a retry is a retries_exhausted dead letter without tiers.

  - flaky-a (issued, key "flaky") asks for a retry in post for 3 s, then
    passes: it goes through at least one tier; the other keys of its
    partition (20 events of 20 keys) all have their results before it;
  - flaky-b (issued, the same key, produced after flaky-a, passes at once)
    does not overtake it: its calls come after flaky-a's last one;
  - the tier 1 record of flaky-a carries the retry headers (attempt 1,
    phase post, handler exec, the error, the first failure, the origin)
    and hookd.phases.done = success;
  - the resume runs post only: every event's success hook ran once;
  - dead-a (key "dead") always asks for a retry: after the three tiers it
    is dead-lettered as retries_exhausted, its dead letter carrying
    hookd.retry.attempt 3;
  - under [auth] require (a second worker, one 1s tier): the tier record
    is signed anew by the worker and verified when consumed (the event
    completes, its success hook ran once); a record written to the tier
    topic with a hookd.phases.done its signature does not cover is
    auth_failed, and no hook runs for it;
  - a tier topic that refuses the event (a third worker; its one tier's
    max.message.bytes is 512, under the event's size): the event ends at
    once as without tiers, a failed retries_exhausted result, its dead
    letter (with the refused record's hookd.retry.attempt 1) and the reply
    to its requester; the next event of its key runs after it, both input
    offsets are committed and the tier topic stays empty;
  - the same with a tier record the worker's own producer refuses when it
    is produced (a fourth worker, producer.rdkafka.message.max.bytes 1500,
    under the event's size), not by a delivery report: the stand-ins that
    do not fit either go compacted (result) or minimal (dead letter), still
    before the key's next event's result; no requester there, a reply over
    that bound is given up. Behind them an ordinary event of the key whose
    result only fits compacted, and one more: the key's four results are
    in offset order.
Runtime about 30-45 s on a loaded machine (the tiers' delays, topic
creation, four workers' joins).
"""
import os
import time

from confluent_kafka.admin import NewTopic

import hookd_e2e as e
from test_replay import sign

TIERS = ["1s", "2s", "4s"]
FAIL_FOR_S = 3.0
OTHER_KEYS = 20


def post_script(wd, name, deadline, trace):
    """The post command: "-a" events ask for a retry until the time in
    `deadline` has passed and `deadline`.hold is gone (dead-* ones for
    ever), the others pass."""
    path = os.path.join(wd, name)
    with open(path, "w") as f:
        f.write('case "$HOOKD_EVENT_ID" in\n'
                '*-a) if [ "$(date +%%s%%N)" -lt "$(cat %s)" ] || [ -e %s.hold ] || '
                '[ "${HOOKD_EVENT_ID#dead}" != "$HOOKD_EVENT_ID" ]; then\n'
                '  echo "F $HOOKD_EVENT_ID" >> %s; echo "not yet" >&2; exit 75; fi;;\n'
                'esac\n'
                'echo "P $HOOKD_EVENT_ID" >> %s\n' % (deadline, deadline, trace, trace))
    return path


def main():
    topics = e.Topics("retrytiers", partitions=1)
    tier_topics = ["%s.retry.%s" % (topics.input, t) for t in TIERS]
    e.create_topics({t: 1 for t in tier_topics})
    wd = os.path.join(e.workdir(), "retrytiers")
    os.makedirs(wd, exist_ok=True)
    trace = os.path.join(wd, "trace.txt")
    deadline = os.path.join(wd, "deadline")
    with open(deadline, "w") as f:
        f.write("99999999999999999999\n")  # failing until the test sets the time
    open(trace, "w").close()
    post = post_script(wd, "post.sh", deadline, trace)
    hooks = {"hooks_file": "exec",
             "exec_success_command": 'echo "S $HOOKD_EVENT_ID" >> %s' % trace,
             "exec_post_command": "sh " + post,
             "allow_post_hook_failure": False}
    w = e.Worker("retrytiers", topics, hooks,
                 worker={"threads": 4, "ordering": "key", "retry_topics": ",".join(TIERS),
                         "retry_max_attempts": 2, "retry_initial_backoff_ms": 50,
                         "retry_max_backoff_ms": 50})
    w.start()
    w.wait_log(r"assigned \d+ partition", 60)

    pki = e.Pki(os.path.join(wd, "pki"))
    prod = e.Produce()

    def send(eid, key):
        value, headers = e.encode(e.ISSUED, eid, e.fields(e.ISSUED, key, pki))
        prod.send(topics.input, value, key=key.encode(), headers=headers)

    # flaky-a fails for FAIL_FOR_S, and at least until the other keys'
    # results are all in (awaited below, not assumed from timing): were its
    # partition blocked by its retries, they would never come.
    open(deadline + ".hold", "w").close()
    t0 = time.time()
    with open(deadline, "w") as f:
        f.write("%d\n" % int((t0 + FAIL_FOR_S) * 1e9))
    send("flaky-a", "flaky")
    send("dead-a", "dead")
    others = []
    for k in range(OTHER_KEYS):
        send("ok-%02d" % k, "ok-%02d" % k)
        others.append("ok-%02d" % k)
    send("flaky-b", "flaky")
    prod.flush()

    results = e.Reader(topics.result)
    dlq = e.Reader(topics.dlq)
    want = set(others) | {"flaky-a", "flaky-b"}
    got = {}

    def all_results(ms):
        for m in ms:
            got.setdefault(e.result_input_id(m), m)
        return want <= set(got)
    results.until(lambda ms: all_results(ms) or set(others) <= set(got), 60,
                  "results of the %d other keys while flaky-a keeps failing" % len(others))
    e.check("flaky-a" not in got, "flaky-a completed while it was still failing")
    others_done = time.time() - t0
    os.unlink(deadline + ".hold")
    results.until(all_results, 90, "results of %d events" % len(want))
    def dead_of(ms):
        return [m for m in ms if e.header(m, "hookd.dlq.event.id") == "dead-a"]
    dead = dead_of(dlq.until(dead_of, 90, "the dead letter of dead-a"))[0]
    elapsed = time.time() - t0
    rc = w.stop()
    e.check(rc == 0, "worker exited with %s after SIGTERM" % rc)

    # The other keys were not stopped by the flaky one.
    flaky_ts = got["flaky-a"].timestamp
    late = [i for i in others if got[i].timestamp > flaky_ts]
    e.log("flaky-a completed %.1f s after it was produced; the other keys' results were all "
          "read %.1f s after it, the last one stamped %.1f s"
          % (flaky_ts / 1000.0 - t0, others_done,
             max(got[i].timestamp for i in others) / 1000.0 - t0))
    e.check(not late, "results of other keys came after flaky-a's: %s" % late)
    e.check(flaky_ts / 1000.0 - t0 >= FAIL_FOR_S - 0.5,
            "flaky-a completed before its handler stopped failing")
    for i in want:
        e.check(e.result_type(got[i]) == e.RESULT_COMPLETED,
                "%s: %s" % (i, e.result_type(got[i])))

    # It went through tier 1, with the retry headers.
    t1 = e.Reader(tier_topics[0])
    def flaky_of(ms):
        return [m for m in ms if m.key == "flaky"]
    r = flaky_of(t1.until(flaky_of, 30, "flaky-a in tier 1"))[0]
    e.log("tier 1 record headers: %s" % {k: v for k, v in r.headers.items() if k.startswith("hookd.")})
    e.check(e.header(r, "hookd.retry.attempt") == "1", "attempt %r" % e.header(r, "hookd.retry.attempt"))
    e.check(e.header(r, "hookd.retry.phase") == "post", "phase %r" % e.header(r, "hookd.retry.phase"))
    e.check(e.header(r, "hookd.retry.handler") == "exec", "handler %r" % e.header(r, "hookd.retry.handler"))
    e.check("not yet" in (e.header(r, "hookd.retry.error") or ""), "error %r" % e.header(r, "hookd.retry.error"))
    e.check(e.header(r, "hookd.phases.done") == "success",
            "phases.done %r" % e.header(r, "hookd.phases.done"))
    e.check(e.header(r, "hookd.retry.origin") == "0:0", "origin %r" % e.header(r, "hookd.retry.origin"))
    ff = int(e.header(r, "hookd.retry.first_failure"))
    due = int(e.header(r, "hookd.retry.due"))
    e.check(0 <= due - ff <= 1000 + 2000 and due - ff >= 900, "due %d first failure %d" % (due, ff))
    e.check(r.partition == 0, "tier record in partition %d" % r.partition)
    t1.close()

    # Trace: success once per event; the post-only resume; key order.
    lines = [l.split() for l in open(trace).read().splitlines() if l.strip()]
    success = {}
    for what, eid in lines:
        if what == "S":
            success[eid] = success.get(eid, 0) + 1
    twice = {k: v for k, v in success.items() if v != 1}
    e.check(not twice, "success hooks run more than once: %s" % twice)
    e.check(set(success) == want | {"dead-a"}, "success hooks of %s" % sorted(success))
    fa = [i for i, (what, eid) in enumerate(lines) if eid == "flaky-a"]
    fb = [i for i, (what, eid) in enumerate(lines) if eid == "flaky-b"]
    fails = sum(1 for what, eid in lines if eid == "flaky-a" and what == "F")
    e.log("flaky-a: %d failing post call(s) (2 per tier pass, in-line attempts included)" % fails)
    e.check(fails >= 2 * 2, "flaky-a failed only %d time(s): no tier was used" % fails)
    e.check(lines[fa[-1]][0] == "P", "flaky-a's last call was %r" % (lines[fa[-1]],))
    e.check(min(fb) > max(fa), "flaky-b (same key) ran before flaky-a finished: %r"
            % [lines[i] for i in sorted(fa + fb)])

    # The dead one: every tier, then retries_exhausted.
    e.check(e.header(dead, "hookd.dlq.error.class") == "retries_exhausted",
            "dead letter class %r" % e.header(dead, "hookd.dlq.error.class"))
    e.check(e.header(dead, "hookd.retry.attempt") == str(len(TIERS)),
            "dead letter after tier %r" % e.header(dead, "hookd.retry.attempt"))
    e.check(e.header(dead, "hookd.dlq.topic") == tier_topics[-1],
            "dead letter from %r" % e.header(dead, "hookd.dlq.topic"))
    dfails = sum(1 for what, eid in lines if eid == "dead-a" and what == "F")
    e.check(dfails == 2 * (len(TIERS) + 1), "dead-a failed %d times, not %d"
            % (dfails, 2 * (len(TIERS) + 1)))
    e.check(("retry: to %s" % tier_topics[0]) in w.log_text(), "no retry logged")
    e.log("all checked in %.1f s after producing" % elapsed)
    results.close()
    dlq.close()
    signed(wd, pki, prod)
    refused(wd, pki, prod, "topic")
    refused(wd, pki, prod, "producer")


def signed(wd, pki, prod):
    """Under [auth] require: the worker signs the tier records it writes
    (the original signature does not cover the hookd.phases.done it adds),
    verifies them when it consumes them, and a record written to the tier
    topic with a hookd.phases.done its signature does not cover is
    auth_failed, no handler run."""
    t0 = time.monotonic()
    topics = e.Topics("retrytiers-auth", partitions=1)
    tier = topics.input + ".retry.1s"
    e.create_topics({tier: 1})
    keyfile = os.path.join(wd, "k1.key")
    secret = os.urandom(32)
    with open(keyfile, "w") as f:
        f.write("hex:%s\n" % secret.hex())
    os.chmod(keyfile, 0o600)
    trace = os.path.join(wd, "trace-auth.txt")
    deadline = os.path.join(wd, "deadline-auth")
    open(trace, "w").close()
    with open(deadline, "w") as f:
        f.write("%d\n" % int((time.time() + 60) * 1e9))
    hooks = {"hooks_file": "exec",
             "exec_success_command": 'echo "S $HOOKD_EVENT_ID" >> %s' % trace,
             "exec_post_command": "sh " + post_script(wd, "post-auth.sh", deadline, trace),
             "allow_post_hook_failure": False}
    w = e.Worker("retrytiers-auth", topics, hooks,
                 worker={"ordering": "key", "retry_topics": "1s", "retry_max_attempts": 1},
                 extra={"auth": {"require": True, "keys": "k1:%s" % keyfile}})
    w.start()
    w.wait_log(r"assigned \d+ partition", 60)
    v, h = e.encode(e.ISSUED, "auth-a", e.fields(e.ISSUED, "auth", pki), "binary")
    orig_sig = sign(secret, b"auth", v, h)
    prod.send(topics.input, v, key=b"auth", headers=h + [orig_sig])
    prod.flush()
    tr = e.Reader(tier)
    rec = tr.until(lambda ms: ms, 60, "auth-a in the tier")[0]
    sig = e.header(rec, "hookd-signature")
    e.check(sig is not None and sig.startswith("v1;kid=k1;") and sig != orig_sig[1].decode(),
            "the tier record is signed anew: %r" % sig)
    e.check(e.header(rec, "hookd.phases.done") == "success", repr(rec))
    with open(deadline, "w") as f:
        f.write("0\n")  # from now on it passes
    # A forgery: the event with a hookd.phases.done its signature does not cover.
    fv, fh = e.encode(e.ISSUED, "forged-a", e.fields(e.ISSUED, "forged", pki), "binary")
    prod.send(tier, fv, key=b"forged", partition=0,
              headers=fh + [sign(secret, b"forged", fv, fh), ("hookd.phases.done", b"success"),
                            ("hookd.retry.attempt", b"1")])
    prod.flush()
    results = e.Reader(topics.result)
    dlq = e.Reader(topics.dlq)
    got = results.until(lambda ms: {"auth-a", "forged-a"} <= {e.result_input_id(m) for m in ms},
                        60, "results of auth-a and forged-a")
    by_id = {e.result_input_id(m): m for m in got}
    e.check(e.result_type(by_id["auth-a"]) == e.RESULT_COMPLETED, repr(by_id["auth-a"]))
    e.check(e.result_type(by_id["forged-a"]) == e.RESULT_FAILED, repr(by_id["forged-a"]))
    dl = dlq.until(lambda ms: ms, 30, "the forgery's dead letter")[0]
    e.check(e.header(dl, "hookd.dlq.error.class") == "auth_failed", repr(dl))
    e.check(w.stop() == 0, "worker exit status")
    calls = [l.split() for l in open(trace).read().splitlines() if l.strip()]
    e.check(calls.count(["S", "auth-a"]) == 1, "success hooks of auth-a: %r" % calls)
    e.check(not [c for c in calls if c[1] == "forged-a"], "a hook ran for the forgery: %r" % calls)
    e.check(calls[-1] == ["P", "auth-a"], "auth-a's last call: %r" % calls)
    e.log("signed tier records: checked in %.1f s" % (time.monotonic() - t0))
    tr.close()
    results.close()
    dlq.close()


def refused(wd, pki, prod, by):
    """A tier record refused for good: it ends as without tiers, with
    result, dead letter (and reply), and its key goes on. by = "topic": the
    broker refuses it (the tier topic's max.message.bytes is 512), as a
    delivery report; by = "producer": the worker's own producer refuses it
    when produced (producer.rdkafka.message.max.bytes 1500), before
    anything is queued; its stand-ins too large as well, the result is
    compacted and the dead letter minimal, both produced before the key's
    next event runs. A reply over that bound is given up
    (docs/runtime.md), so only the first case has a requester."""
    t0 = time.monotonic()
    topics = e.Topics("retrytiers-refused-" + by, partitions=1)
    tier = topics.input + ".retry.1s"
    reply = e.unique("retrytiers.reply")
    limit = 512 if by == "topic" else 1500
    adm = e.admin()  # kept until the futures are done: its destruction cancels them
    futs = adm.create_topics(
        [NewTopic(tier, num_partitions=1, replication_factor=1,
                  config={"max.message.bytes": "512"} if by == "topic" else {})],
        operation_timeout=30)
    for f in futs.values():
        f.result()
    e.create_topics({reply: 1})
    trace = os.path.join(wd, "trace-refused-%s.txt" % by)
    deadline = os.path.join(wd, "deadline-refused-" + by)
    open(trace, "w").close()
    with open(deadline, "w") as f:
        f.write("%d\n" % int((time.time() + 3600) * 1e9))  # "-a" events keep asking for a retry
    hooks = {"hooks_file": "exec",
             "exec_success_command": 'echo "S $HOOKD_EVENT_ID" >> %s' % trace,
             "exec_post_command": "sh " + post_script(wd, "post-refused-%s.sh" % by, deadline,
                                                      trace),
             "allow_post_hook_failure": False}
    kafka = {"reply_topics": reply}
    if by == "producer":
        kafka["producer.rdkafka.message.max.bytes"] = limit
    w = e.Worker("retrytiers-refused-" + by, topics, hooks, kafka=kafka,
                 worker={"ordering": "key", "retry_topics": "1s", "retry_max_attempts": 1})
    w.start()
    w.wait_log(r"assigned \d+ partition", 60)
    corr = "corr-%s" % os.urandom(8).hex()
    f = e.fields(e.ISSUED, "big", pki)
    if by == "producer":
        # names long enough that the result needs its compact form (which
        # drops them) while the minimal dead letter (no key) fits
        f["order_name"] = "big-" + "o" * 300
        f["certificate_name"] = "cert-big-" + "c" * 300
    v, h = e.encode(e.ISSUED, "big-a", f)
    e.check(len(v) > limit, "the event (%d bytes) fits under %d" % (len(v), limit))
    if by == "topic":
        h = h + [("kafka_replyTopic", reply.encode()), ("kafka_correlationId", corr.encode())]
    prod.send(topics.input, v, key=b"big", headers=h)
    v, h = e.encode(e.ISSUED, "big-b", e.fields(e.ISSUED, "big", pki))
    prod.send(topics.input, v, key=b"big", headers=h)
    ids = ["big-a", "big-b"]
    if by == "producer":
        # an ordinary event whose completed result is refused when produced
        # (the long names), then the key's next one: the compact form is
        # produced before the next event runs, so the results keep the order
        v, h = e.encode(e.ISSUED, "big-c", f)
        prod.send(topics.input, v, key=b"big", headers=h)
        v, h = e.encode(e.ISSUED, "big-d", e.fields(e.ISSUED, "big", pki))
        prod.send(topics.input, v, key=b"big", headers=h)
        ids += ["big-c", "big-d"]
    prod.flush()

    results = e.Reader(topics.result)
    got = results.until(lambda ms: set(ids) <= {e.result_input_id(m) for m in ms}, 60,
                        "results of %s" % ", ".join(ids))
    by_id = {e.result_input_id(m): m for m in got}
    a, b = by_id["big-a"], by_id["big-b"]
    e.check(e.result_type(a) == e.RESULT_FAILED, "big-a: %s" % e.result_type(a))
    e.check(a.json().get("error_class") == "retries_exhausted", "big-a: %r" % a.json())
    for i in ids[1:]:
        e.check(e.result_type(by_id[i]) == e.RESULT_COMPLETED,
                "%s: %s" % (i, e.result_type(by_id[i])))
    e.check([by_id[i].offset for i in ids] == sorted(by_id[i].offset for i in ids),
            "results of one key out of order: %s"
            % ", ".join("%s at %d" % (i, by_id[i].offset) for i in ids))
    if by == "producer":
        e.check("order_name" not in by_id["big-c"].json(), "big-c: %r" % by_id["big-c"].json())
    dlq = e.Reader(topics.dlq)
    dl = dlq.until(lambda ms: ms, 30, "big-a's dead letter")[0]
    e.check(e.header(dl, "hookd.dlq.event.id") == "big-a", repr(dl))
    e.check(e.header(dl, "hookd.dlq.error.class") == "retries_exhausted", repr(dl))
    e.check(e.header(dl, "hookd.dlq.record") is None, repr(dl))
    if by == "topic":
        e.check(e.header(dl, "hookd.retry.attempt") == "1", repr(dl))
    else:
        # its headers alone pass 1,500 bytes: the minimal form, context only
        e.check(e.header(dl, "hookd.dlq.value_truncated") == "true" and not dl.value and
                e.header(dl, "hookd.retry.attempt") is None, repr(dl))
    rr = e.Reader(reply)
    if by == "topic":
        rep = rr.until(lambda ms: ms, 30, "the reply to big-a's requester")[0]
        e.check(e.header(rep, "kafka_correlationId") == corr, repr(rep))
        e.check(e.result_input_id(rep) == "big-a", repr(rep))
    e.check(w.stop() == 0, "worker exit status")
    log = w.log_text()
    e.check("refused for good (MSG_SIZE_TOO_LARGE)" in log, "no refusal logged")
    e.check(by == "topic" or "publishing it compacted" in log, "the result was not compacted")
    e.check(e.committed(topics.group, topics.input) == {0: len(ids)},
            "committed %r" % e.committed(topics.group, topics.input))
    e.check(e.end_offsets(tier) == {0: 0}, "tier topic holds %r" % e.end_offsets(tier))
    calls = [l.split() for l in open(trace).read().splitlines() if l.strip()]
    e.check(calls and calls[-1] == ["P", ids[-1]] and ["F", "big-a"] in calls and
            max(i for i, c in enumerate(calls) if c[1] == "big-a") <
            min(i for i, c in enumerate(calls) if c[1] == "big-b"),
            "calls %r" % calls)
    e.log("tier record refused by the %s: checked in %.1f s" % (by, time.monotonic() - t0))
    results.close()
    dlq.close()
    rr.close()

if __name__ == "__main__":
    e.run(main)
