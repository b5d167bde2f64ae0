# SPDX-License-Identifier: MIT
"""Crash: 10,000 events flow while the worker is killed with SIGKILL at
random moments (at least 5 times) and restarted each time. At the end
every input has a durable outcome: a result event for every event, a dead
letter too where one is due (issued and failed events fail their post hook
with the flag off), a dead letter for every malformed message. Nothing may
be missing; duplicates (redone after a kill) are counted and printed.

The kill moments are random (seeded; the seed is printed and can be set
with HOOKD_E2E_SEED): each kill waits until a random number of events has
been completed, so every kill lands mid-stream.

scenario("exactly_once") is the same crash with [kafka] delivery =
exactly_once (test_crash_eos.py): a read_committed reader must then find
every outcome exactly once, results and dead letters alike.
"""
import os
import random
import time

from confluent_kafka import KafkaException

import faults
import hookd_e2e as e

EVENTS = 10000
POISON = 20
KILLS = 6
RATE = 300.0  # events/s offered by the producer


def current_results(out, incarnation):
    """Results published by worker incarnation n (its id is in ce_source)."""
    tag = "crash-%d" % incarnation
    return sum(1 for m in out.results.messages if (m.headers.get("ce_source") or "").endswith(":" + tag))


def scenario(delivery="at_least_once", events=EVENTS, keyed="id", worker=None, hooks=None,
             name=None, hold=0.9, more=200):
    """keyed and worker (extra [worker] keys) let test_crash_keyed.py run
    the same judge with shared keys and key ordering; hooks (default
    faults.FAULT_HOOKS: the same dead letters are due) and name (of the
    topics and the transactional.id) let test_crash_eos_keyed.py put a
    slow handler in front. hold and more size the reserve below: a
    shorter stream needs a larger share of it held back and smaller
    hand-outs to last for every incarnation."""
    seed = int(os.environ.get("HOOKD_E2E_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    e.log("seed %d, delivery %s" % (seed, delivery))
    eos = delivery == "exactly_once"
    name = name or ("crash-eos" if eos else "crash")
    topics = e.Topics(name, partitions=8, dlq_partitions=2)
    stream = faults.Stream(topics.input, events, RATE, name, partitions=8, poison=POISON,
                           keyed=keyed)
    out = faults.Outcomes(stream, topics, by_key=keyed == "id")
    # exactly_once: one transactional.id for every incarnation, as a pod
    # restarted under its name keeps it: each start fences its killed
    # predecessor and aborts its open transaction at once.
    kafka = faults.exactly_once_kafka({"transactional_id": name + "-slot"}) if eos else None
    wconf = {"threads": 4}
    wconf.update(worker or {})
    w = e.Worker(name, topics, hooks or faults.FAULT_HOOKS, kafka=kafka, worker=wconf)

    # Kill when this many distinct events are done: random, increasing, all
    # before the end so that each kill interrupts work.
    thresholds = sorted(rng.sample(range(events // 20, events * 8 // 10), KILLS))
    # The last 10% of the stream (1 - hold) waits until every kill is done,
    # so that a slow rejoin can never let the stream run dry before the
    # last kill; an incarnation that finds nothing to do gets a little more
    # (`more` messages; one incarnation takes two or three hand-outs before
    # its own results show).
    stream.hold(hold)
    stream.start()
    kills = 0
    incarnation = 0

    def start():
        # A worker id per incarnation: its results tell who published them.
        nonlocal incarnation
        incarnation += 1
        w.set("worker", "worker_id", "crash-%d" % incarnation)
        w.start()

    start()
    for th in thresholds:
        # Kill once the random number of events is done and the current
        # incarnation has published results of its own, after a random
        # extra delay of up to 2.5 s (the random moment: sometimes before
        # its first commit, sometimes after several).
        def ready(th=th):
            out.poll()
            if stream.holding() and out.done_count() >= stream.produced_events:
                stream.allow(more)
            return out.done_count() >= th and current_results(out, incarnation) > 0
        e.wait_until(ready, 240,
                     "%d events done and results of incarnation %d before kill %d"
                     % (th, incarnation, kills + 1), interval=0)
        moment = time.monotonic() + rng.uniform(0.0, 2.5)
        while time.monotonic() < moment:
            out.poll(min(0.2, max(0.0, moment - time.monotonic())))
        e.check(w.alive(), "the worker died by itself before kill %d" % (kills + 1))
        w.kill()
        kills += 1
        try:
            committed = sum(max(0, o) for o in e.committed(topics.group, topics.input).values())
        except KafkaException:
            # exactly_once: the killed worker may have sent its offsets to a
            # transaction it did not end; the group answers for them only
            # once that is aborted (by the next start, same transactional.id).
            committed = -1
        e.log("kill %d (SIGKILL) of incarnation %d after %d of its results: %d events done, %d produced, "
              "%d offsets committed" % (kills, incarnation, current_results(out, incarnation),
                                        out.done_count(), stream.produced, committed))
        start()

    stream.allow()
    stream.join()
    e.log("all %d messages produced; waiting for every outcome" % stream.produced)
    try:
        out.wait_complete(300, "an outcome for every input")
    finally:
        nr, nd, npz = out.report("crash %s (%d kills)" % (delivery, kills))
    e.check(kills >= 5, "only %d kills" % kills)
    e.check(not nr and not nd and not npz, "inputs without outcome: %d results, %d dead letters, %d poison; "
            "first: %r" % (len(nr), len(nd), len(npz), (nr + nd + npz)[:5]))
    if eos:
        faults.check_exactly_once(out)
    # The last incarnation redoes what was not committed, then commits all.
    ends = e.end_offsets(topics.input)
    e.wait_until(lambda: e.committed(topics.group, topics.input) == ends, 120,
                 "the last incarnation to commit up to %r" % ends, interval=0.5)
    rc = w.stop()
    e.check(rc == 0, "worker exited with %s after SIGTERM" % rc)
    faults.check_committed_all(topics)
    out.close()


def main():
    scenario("at_least_once")


if __name__ == "__main__":
    e.run(main)
