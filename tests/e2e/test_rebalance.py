# SPDX-License-Identifier: MIT
"""Rebalance: three workers of one consumer group join and leave while
10,000 events flow through 6 partitions. Nothing may be lost, and the
results of every input partition come out in input order.

Event i goes to input partition p = i % 6 with key "k<p>", so all results
of one input partition share that key, land in one result partition and
their order there is the worker's publishing order. Order is preserved
when, per key, the first result of every event appears in input sequence
order (a redone suffix after a hand-over may repeat events; it is counted
as duplicates, never as disorder).

Membership changes are driven by progress (the number of events done), not
by timers: A starts; B joins; C joins; A leaves (SIGTERM); A comes back;
B leaves; C leaves; A finishes.

scenario("exactly_once") runs the same with [kafka] delivery =
exactly_once (test_rebalance_eos.py): a read_committed reader must then
find no duplicate either.
"""
import faults
import hookd_e2e as e

EVENTS = 10000
PARTITIONS = 6
RATE = 350.0


def check_order(out, stream):
    """Per key: first occurrences in increasing sequence, no gap at the end."""
    problems = []
    per_key = {}
    for m in out.results.messages:
        eid = e.result_input_id(m)
        if eid not in stream.events:
            problems.append("result for unknown input id %r" % eid)
            continue
        ev = stream.events[eid]
        if m.key != ev["key"]:
            problems.append("result of %s has key %r, input key %r" % (eid, m.key, ev["key"]))
        per_key.setdefault(ev["key"], []).append(ev["seq"])
    for key, seqs in sorted(per_key.items()):
        seen = set()
        last_first = 0
        for s in seqs:
            if s in seen:
                continue
            seen.add(s)
            if s != last_first + 1:
                problems.append("key %s: first result of seq %d follows first result of seq %d"
                                % (key, s, last_first))
                break
            last_first = s
    return problems, per_key


def scenario(delivery="at_least_once"):
    eos = delivery == "exactly_once"
    prefix = "rebal-eos" if eos else "rebal"
    topics = e.Topics(prefix, partitions=PARTITIONS, dlq_partitions=1)
    stream = faults.Stream(topics.input, EVENTS, RATE, prefix, partitions=PARTITIONS, keyed="partition")
    out = faults.Outcomes(stream, topics, by_key=False)

    def worker(name):
        return e.Worker(name, topics, faults.FAULT_HOOKS, worker={"threads": 2},
                        kafka=faults.exactly_once_kafka() if eos else None)

    a, b, c = worker(prefix + "-a"), worker(prefix + "-b"), worker(prefix + "-c")
    a2 = worker(prefix + "-a2")
    plan = [(0.05, "join", b), (0.15, "join", c), (0.30, "leave", a), (0.45, "join", a2),
            (0.60, "leave", b), (0.75, "leave", c)]
    stream.start()
    a.start()
    for frac, action, w in plan:
        th = int(EVENTS * frac)
        e.wait_until(lambda th=th: (out.poll(), out.done_count() >= th)[1] or None, 240,
                     "%d events done before %s %s" % (th, w.name, action), interval=0)
        if action == "join":
            w.start()
        else:
            rc = w.stop()
            e.check(rc == 0, "%s exited with %s after SIGTERM" % (w.name, rc))
        e.log("%s %s at %d events done" % (w.name, action, out.done_count()))

    stream.join()
    try:
        out.wait_complete(300, "an outcome for every input")
    finally:
        nr, nd, npz = out.report("rebalance %s" % delivery)
    e.check(not nr and not nd, "lost: %d results, %d dead letters; first %r" % (len(nr), len(nd), (nr + nd)[:5]))
    if eos:
        faults.check_exactly_once(out)
    problems, per_key = check_order(out, stream)
    for k, seqs in sorted(per_key.items()):
        print("  %s: %d results, %d distinct" % (k, len(seqs), len(set(seqs))))
    e.check(not problems, "order: %s" % "; ".join(problems[:10]))
    # Every member took part: each published results (worker_id in the value).
    by_worker = {}
    for m in out.results.messages:
        wid = m.json().get("worker_id")
        by_worker[wid] = by_worker.get(wid, 0) + 1
    print("  results per worker: %s" % ", ".join("%s=%d" % kv for kv in sorted(by_worker.items())))
    for w in (a, b, c, a2):
        e.check(by_worker.get(w.name, 0) > 0, "worker %s published no result: it never got partitions" % w.name)
    e.check(a.proc.returncode == 0, "worker a exit %s" % a.proc.returncode)
    rc = a2.stop()
    e.check(rc == 0, "worker a2 exited with %s after SIGTERM" % rc)
    faults.check_committed_all(topics)
    out.close()


def main():
    scenario("at_least_once")


if __name__ == "__main__":
    e.run(main)
