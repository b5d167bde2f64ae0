# SPDX-License-Identifier: MIT
"""Broker restart mid-stream: the broker process is stopped while events
flow and started again on the same data dir and port. The worker is not
restarted: it must ride out the outage (retrying, not skipping) and finish
every event; nothing is lost and it commits everything.

The outage lasts OUTAGE_S seconds: that is the fault being injected, not a
synchronization; everything else waits on conditions.

scenario("exactly_once") (test_broker_restart_eos.py) stops the broker
while the worker has a transaction open: the transaction aborts, the worker
redoes its events, and a read_committed reader finds every outcome once.
"""
import subprocess
import time

import faults
import hookd_e2e as e

EVENTS = 4000
PARTITIONS = 4
RATE = 250.0
OUTAGE_S = 8


def broker_sh(cmd):
    r = subprocess.run([e.BROKER_SH, cmd], capture_output=True, text=True, timeout=300)
    print(r.stderr.strip(), flush=True)
    e.check(r.returncode == 0, "broker.sh %s failed (%d)" % (cmd, r.returncode))


def scenario(delivery="at_least_once"):
    eos = delivery == "exactly_once"
    prefix = "brestart-eos" if eos else "brestart"
    topics = e.Topics(prefix, partitions=PARTITIONS, dlq_partitions=1)
    # The test's own producer must ride out the outage too.
    stream = faults.Stream(topics.input, EVENTS, RATE, prefix, partitions=PARTITIONS, poison=8,
                           producer_conf={"message.timeout.ms": 300000})
    out = faults.Outcomes(stream, topics)
    kafka = {"rdkafka.reconnect.backoff.max.ms": 1000}
    if eos:
        # A transaction spans the outage: 1 s intervals leave one open
        # with records in it when the broker stops.
        kafka = faults.exactly_once_kafka(dict(kafka, transaction_interval_ms=1000))
    w = e.Worker(prefix, topics, faults.FAULT_HOOKS, worker={"threads": 2}, kafka=kafka)
    stream.start()
    w.start()
    e.wait_until(lambda: (out.poll(), out.done_count() >= EVENTS // 5)[1] or None, 240,
                 "%d events done" % (EVENTS // 5), interval=0)
    e.log("stopping the broker at %d events done, %d produced" % (out.done_count(), stream.produced))
    out.close()  # our readers reconnect too, but need not sit through the outage
    broker_sh("stop")
    down_at = time.monotonic()
    e.check(w.alive(), "the worker died when the broker stopped")
    while time.monotonic() - down_at < OUTAGE_S:
        e.check(w.alive(), "the worker died during the outage (status %s)" % w.proc.returncode)
        time.sleep(0.5)
    broker_sh("resume")
    e.log("broker back after %.1f s" % (time.monotonic() - down_at))
    out = faults.Outcomes(stream, topics)
    stream.join()
    try:
        out.wait_complete(240, "an outcome for every input")
    finally:
        nr, nd, npz = out.report("broker restart %s" % delivery)
    e.check(not nr and not nd and not npz, "lost: %d results, %d dead letters, %d poison"
            % (len(nr), len(nd), len(npz)))
    if eos:
        faults.check_exactly_once(out)
    e.check(w.alive() and w.starts == 1, "the worker was not the same process throughout")
    rc = w.stop()
    e.check(rc == 0, "worker exited with %s after SIGTERM" % rc)
    faults.check_committed_all(topics)
    out.close()


def main():
    scenario("at_least_once")


if __name__ == "__main__":
    e.run(main)
