# SPDX-License-Identifier: MIT
"""Crash at full speed: how much work a SIGKILL makes the next owner redo.

A backlog of 50,000 events over 12 partitions waits before the worker
starts, and the producer keeps adding events at its own full speed (300,000
in all) so that the worker never runs dry while it is killed: SIGKILL 10
times at random moments, restarted each time; the last incarnation finishes
everything. Every input must have its outcome (nothing missing); results
published twice are the work redone after the kills.

Printed, not asserted (a loaded 2-core machine makes any speed figure
vary): duplicates per kill, the same in seconds of the worker's own
throughput (its results per second between its first and last result, over
all incarnations), and offset commit requests per second of running
worker (hookd_consumer_commits_total, scraped from /metrics just before
each kill). The run fails only when something is missing or a worker dies
by itself.

Kill moments: each incarnation is killed a random time, uniform in
[0, 1.2 s], after its first result appeared in the result topic (sum of the
high watermarks: no reader lag), so that some kills land before the first
commit of an incarnation and others after several, at full speed. A kill
that finds no new result in its last 100 ms (idle or stalled) is reported, and
the kills stop early if the whole stream is done (a much faster machine). The
seed is printed and can be set with HOOKD_E2E_SEED; HOOKD_BIN selects the
build, so two builds can be compared on the same seed.
"""
import os
import random
import re
import time
import urllib.request

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

import faults
import hookd_e2e as e

EVENTS = int(os.environ.get("HOOKD_E2E_REDO_EVENTS") or 300000)
BACKLOG = 50000
PARTITIONS = 12
KILLS = 10
KILL_WINDOW_S = 1.2


class Watermarks:
    """Sum of a topic's high watermarks: records published so far."""

    def __init__(self, topic, partitions):
        self.c = Consumer({"bootstrap.servers": e.bootstrap(), "group.id": e.unique("hw")})
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]

    def total(self):
        return sum(self.c.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in self.tps)

    def close(self):
        self.c.close()


class Light:
    """Reads the result and dead-letter topics keeping only what the
    accounting needs (hundreds of thousands of results): per event id the
    number of results, per incarnation (ce_source) its count and first and
    last producer timestamp, and the keys of the dead letters."""

    def __init__(self, topics, partitions):
        self.c = Consumer({"bootstrap.servers": e.bootstrap(), "group.id": e.unique("light"),
                           "enable.auto.commit": False, "fetch.wait.max.ms": 50})
        self.c.assign([TopicPartition(topics.result, p, OFFSET_BEGINNING) for p in range(partitions)]
                      + [TopicPartition(topics.dlq, p, OFFSET_BEGINNING) for p in range(2)])
        self.result_topic = topics.result
        self.results = {}
        self.spans = {}
        self.dlq = set()

    def poll(self, seconds=0.2):
        deadline = time.monotonic() + seconds
        while True:
            for m in self.c.consume(2000, timeout=max(0.0, min(0.1, deadline - time.monotonic()))):
                if m.error():
                    raise KafkaException(m.error())
                key = m.key().decode()
                if m.topic() != self.result_topic:
                    self.dlq.add(key)
                    continue
                self.results[key] = self.results.get(key, 0) + 1
                src = ""
                for k, v in m.headers() or []:
                    if k == "ce_source":
                        src = v.decode()
                ts = m.timestamp()[1]
                sp = self.spans.setdefault(src, [ts, ts, 0])
                sp[0] = min(sp[0], ts)
                sp[1] = max(sp[1], ts)
                sp[2] += 1
            if time.monotonic() >= deadline:
                return

    def missing(self, stream):
        due = stream.dead_letter_due()
        return ([i for i in stream.events if i not in self.results],
                [i for i in due if i not in self.dlq])

    def close(self):
        self.c.close()


def commits_total(port):
    """Offset commit requests answered so far (ok + failed), or None."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    vals = re.findall(r'^hookd_consumer_commits_total\{result="[a-z]+"\} (\d+)', text, re.M)
    return sum(int(v) for v in vals) if vals else None


def main():
    seed = int(os.environ.get("HOOKD_E2E_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    e.log("seed %d, %d events over %d partitions, %d kills" % (seed, EVENTS, PARTITIONS, KILLS))
    topics = e.Topics("redo", partitions=PARTITIONS, dlq_partitions=2)
    stream = faults.Stream(topics.input, EVENTS, 1e9, "redo", partitions=PARTITIONS)
    out = Light(topics, PARTITIONS)
    w = e.Worker("redo", topics, faults.FAULT_HOOKS, worker={"threads": 4},
                 extra={"http": {"listen": "127.0.0.1:0"}})
    t0 = time.monotonic()
    stream.hold(BACKLOG / float(EVENTS))
    stream.start()
    e.wait_until(stream.holding, 300, "a backlog of %d events" % BACKLOG)
    e.log("backlog of %d events produced in %.1f s" % (stream.produced, time.monotonic() - t0))
    stream.allow()

    hw = Watermarks(topics.result, PARTITIONS)
    incarnation = 0
    log_mark = 0
    commit_requests = 0
    run_seconds = 0.0
    busy_seconds = 0.0
    idle_kills = 0

    def start():
        nonlocal incarnation, log_mark
        incarnation += 1
        w.set("worker", "worker_id", "redo-%d" % incarnation)
        log_mark = len(w.log_text())
        w.start()
        return time.monotonic()

    kills = KILLS
    for k in range(1, KILLS + 1):
        started = start()
        base = hw.total()
        port = int(w.wait_log(r"listening on port (\d+)", 60, since=log_mark).group(1))
        def first_result():
            if hw.total() > base:
                return True
            out.poll(0.005)
            return stream.produced == EVENTS and len(out.results) == EVENTS
        e.wait_until(first_result, 120, "a result of incarnation %d" % incarnation, interval=0)
        if hw.total() == base:
            e.log("the whole stream is done before kill %d: no more kills" % k)
            kills = k - 1
            break
        first = time.monotonic()
        delay = rng.uniform(0.0, KILL_WINDOW_S)
        if delay > 0.1:
            time.sleep(delay - 0.1)
        before = hw.total()
        time.sleep(max(0.0, first + delay - time.monotonic()))
        e.check(w.alive(), "the worker died by itself before kill %d" % k)
        n = commits_total(port)
        w.kill()
        lived = time.monotonic() - started
        published = hw.total()
        if delay > 0.1 and published == before:
            idle_kills += 1
        if n is not None:
            commit_requests += n
            run_seconds += lived
            busy_seconds += time.monotonic() - first
        e.log("kill %d: incarnation %d killed %.2f s after its first result (%.1f s after its "
              "start), %d results of its own; %s commit requests; %d of %d events produced"
              % (k, incarnation, delay, lived, published - base, n, stream.produced, EVENTS))

    if not w.alive():  # a stream done before the last kill leaves the worker running
        start()
    stream.join()

    def complete():
        out.poll(0.5)
        return not any(out.missing(stream))
    try:
        e.wait_until(complete, 300, "an outcome for every input", interval=0)
    finally:
        nr, nd = out.missing(stream)
        dups = sum(out.results.values()) - len(out.results)
        print("crash redo (%d kills): events=%d missing results=%d missing dead letters=%d "
              "duplicates=%d" % (kills, len(stream.events), len(nr), len(nd), dups), flush=True)
    e.check(not nr and not nd, "inputs without outcome: %d results, %d dead letters; first: %r"
            % (len(nr), len(nd), (nr + nd)[:5]))
    ends = e.end_offsets(topics.input)
    e.wait_until(lambda: e.committed(topics.group, topics.input) == ends, 120,
                 "the last incarnation to commit up to %r" % ends, interval=0.5)
    rc = w.stop()
    e.check(rc == 0, "worker exited with %s after SIGTERM" % rc)
    faults.check_committed_all(topics)

    # Throughput: per incarnation, its results over the span between its
    # first and last one (producer timestamps, ms), summed over all.
    spans = out.spans
    results = sum(s[2] for s in spans.values())
    busy = sum(s[1] - s[0] for s in spans.values()) / 1000.0
    rate = results / busy if busy > 0 else float("nan")
    per_kill = dups / float(max(kills, 1))
    print("crash redo: %d duplicates in %d kills = %.0f per kill = %.3f s of throughput redone "
          "per kill (throughput %.0f results/s over %.1f s of %d incarnations)"
          % (dups, kills, per_kill, per_kill / rate, rate, busy, len(spans)), flush=True)
    if run_seconds > 0:
        print("crash redo: %d offset commit requests in the killed incarnations = %.1f per second "
              "of their life (%.1f s, start to kill), %.1f per second of work (%.1f s, first "
              "result to kill)" % (commit_requests, commit_requests / run_seconds, run_seconds,
                                   commit_requests / busy_seconds, busy_seconds), flush=True)
    else:
        print("crash redo: commit requests not available (no hookd_consumer_commits_total)",
              flush=True)
    if idle_kills:
        print("crash redo: %d kill(s) came after 100 ms without a new result (worker idle or "
              "stalled)" % idle_kills, flush=True)
    hw.close()
    out.close()


if __name__ == "__main__":
    e.run(main)
