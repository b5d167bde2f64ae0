# SPDX-License-Identifier: MIT
"""Key ordering under concurrency: one input partition, 24 keys (order
names), 15 events per key, 8 handler threads, [worker] ordering = key.
The handler (tests/integration/slow_handler.c) sleeps 30 ms per call and
traces when each call starts and ends.

Judged from the trace:
  - per key, no two calls overlap (one event of a key at a time);
  - per key, events ran in offset order (the sequence in their
    certificate name, produced in that order into the one partition);
  - different keys of the one partition did run at the same time (the
    most calls seen in flight at once is above 1), which is what
    ordering = key is for;
and every event has its result.

Then the in-flight bounds, each on fresh topics with 400 events of 20 keys
waiting: with max_in_flight_per_partition = 30 the partition is paused
while its queue is far below partition_queue_max (the bound, not the
queue, paused it) and resumed, and every event completes; with
max_in_flight = 30 on two partitions the same holds for the worker's sum.
Read from the worker's debug log ("partition P paused (queue Q, in flight
F)"), as the bound is checked between consume batches.
"""
import os
import re

import hookd_e2e as e

KEYS = 24
PER_KEY = 15
SLEEP_MS = 30
THREADS = 8


def slow_handler():
    path = os.environ.get("HOOKD_SLOW_HANDLER")
    e.check(path and os.path.exists(path),
            "HOOKD_SLOW_HANDLER (%r) is not the slow_test handler: build the tests first" % path)
    return path


def read_trace(path):
    """{key: [(start_ns, end_ns, seq)]} and every (time, +1/-1) edge."""
    starts, calls, edges = {}, {}, []
    with open(path) as f:
        for line in f:
            what, ns, order, cert = line.split()
            ns = int(ns)
            if what == "S":
                e.check(cert not in starts, "event %s started twice" % cert)
                starts[cert] = ns
                edges.append((ns, 1))
            else:
                e.check(cert in starts, "event %s ended without a start" % cert)
                seq = int(cert.rsplit("#", 1)[1])
                calls.setdefault(order, []).append((starts[cert], ns, seq))
                edges.append((ns, -1))
    return calls, edges


def main():
    topics = e.Topics("keyorder", partitions=1)
    trace = os.path.join(e.workdir(), "trace.txt")
    hooks = {"hooks_file": slow_handler(), "slow_sleep_ms": SLEEP_MS, "slow_trace_file": trace}
    w = e.Worker("keyorder", topics, hooks,
                 worker={"threads": THREADS, "ordering": "key"})
    prod = e.Produce()
    ids = []
    # Round-robin over the keys, so that every key's events are spread over
    # the partition and the keys compete for the threads.
    for seq in range(PER_KEY):
        for k in range(KEYS):
            order = "ko-%02d" % k
            eid = "%s-%03d" % (order, seq)
            flds = {"certificate_name": "%s#%d" % (order, seq), "order_name": order,
                    "csr": "bm90LWEtY3Ny"}
            value, headers = e.encode(e.REQUESTED, eid, flds)
            prod.send(topics.input, value, key=order.encode(), headers=headers)
            ids.append(eid)
    prod.flush()
    w.start()
    results = e.Reader(topics.result)
    want = set(ids)
    results.until(lambda ms: want <= {e.result_input_id(m) for m in ms}, 120,
                  "a result for each of the %d events" % len(ids))
    rc = w.stop()
    e.check(rc == 0, "worker exited with %s after SIGTERM" % rc)

    calls, edges = read_trace(trace)
    e.check(sorted(calls) == sorted("ko-%02d" % k for k in range(KEYS)),
            "trace has keys %r" % sorted(calls))
    problems = []
    for order, cs in sorted(calls.items()):
        cs.sort()
        seqs = [c[2] for c in cs]
        if seqs != list(range(PER_KEY)):
            problems.append("key %s ran its events in the order %r" % (order, seqs))
        for a, b in zip(cs, cs[1:]):
            if b[0] < a[1]:
                problems.append("key %s: event #%d started %.1f ms before event #%d ended"
                                % (order, b[2], (a[1] - b[0]) / 1e6, a[2]))
    # Ends before starts at the same instant: touching calls do not overlap.
    edges.sort(key=lambda t: (t[0], t[1]))
    level = peak = 0
    for _, d in edges:
        level += d
        peak = max(peak, level)
    e.log("%d calls traced, at most %d in flight at once (threads %d)"
          % (sum(len(c) for c in calls.values()), peak, THREADS))
    e.check(not problems, "key order broken: %s" % problems[:10])
    e.check(peak > 1, "the keys of one partition never ran in parallel (peak %d)" % peak)
    results.close()

    check_bound("per_partition", {"max_in_flight_per_partition": 30}, partitions=1)
    check_bound("per_worker", {"max_in_flight": 30}, partitions=2)


PAUSE = re.compile(r'kafka: partition (\d+) (paused|resumed) \(queue (\d+), in flight (\d+)\)')


def check_bound(name, bound, partitions):
    topics = e.Topics("inflight", partitions=partitions)
    hooks = {"hooks_file": slow_handler(), "slow_sleep_ms": 10}
    wconf = {"threads": 4, "ordering": "key"}
    wconf.update(bound)
    w = e.Worker("bound-" + name, topics, hooks, worker=wconf)
    w.set("log", "level", "debug")
    prod = e.Produce()
    ids = []
    for seq in range(20):
        for k in range(20):
            order = "kb-%02d" % k
            eid = "%s-%s-%03d" % (name, order, seq)
            flds = {"certificate_name": "%s#%d" % (order, seq), "order_name": order,
                    "csr": "bm90LWEtY3Ny"}
            value, headers = e.encode(e.REQUESTED, eid, flds)
            prod.send(topics.input, value, key=order.encode(), headers=headers)
            ids.append(eid)
    prod.flush()
    w.start()
    results = e.Reader(topics.result)
    want = set(ids)
    results.until(lambda ms: want <= {e.result_input_id(m) for m in ms}, 120,
                  "a result for each of the %d events (%s)" % (len(ids), name))
    rc = w.stop()
    e.check(rc == 0, "worker exited with %s after SIGTERM" % rc)
    lines = [m.groups() for m in PAUSE.finditer(w.log_text())]
    paused = [(int(p), int(q), int(f)) for p, what, q, f in lines if what == "paused"]
    resumed = [int(p) for p, what, q, f in lines if what == "resumed"]
    e.log("%s: %d pause(s) %r, %d resume(s)" % (name, len(paused), paused[:4], len(resumed)))
    e.check(paused, "%s: no partition was paused at the in-flight bound" % name)
    # The queue bound (partition_queue_max, 1000) cannot have paused them: the
    # in-flight count did.
    e.check(all(q < 1000 for _, q, _ in paused), "%s: paused by the queue bound: %r" % (name, paused))
    if "max_in_flight_per_partition" in bound:
        e.check(any(f >= 30 for _, _, f in paused), "%s: paused below the bound: %r" % (name, paused))
    e.check(resumed, "%s: a paused partition was never resumed" % name)
    results.close()


if __name__ == "__main__":
    e.run(main)
