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
    hookd.retry.attempt 3.
Runtime about 15-25 s on an idle machine (the tiers' 7 s of delay, topic
creation, the worker's join).
"""
import os
import time

import hookd_e2e as e

TIERS = ["1s", "2s", "4s"]
FAIL_FOR_S = 3.0
OTHER_KEYS = 20


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
    post = os.path.join(wd, "post.sh")
    with open(post, "w") as f:
        f.write('case "$HOOKD_EVENT_ID" in\n'
                '*-a) if [ "$(date +%%s%%N)" -lt "$(cat %s)" ] || '
                '[ "${HOOKD_EVENT_ID#dead}" != "$HOOKD_EVENT_ID" ]; then\n'
                '  echo "F $HOOKD_EVENT_ID" >> %s; echo "not yet" >&2; exit 75; fi;;\n'
                'esac\n'
                'echo "P $HOOKD_EVENT_ID" >> %s\n' % (deadline, trace, trace))
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
    e.log("flaky-a completed %.1f s after it was produced; the other keys' last result %.1f s"
          % (flaky_ts / 1000.0 - t0, max(got[i].timestamp for i in others) / 1000.0 - t0))
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


if __name__ == "__main__":
    e.run(main)
