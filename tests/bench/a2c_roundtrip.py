# SPDX-License-Identifier: MIT
"""The verdict round trip of the acme2certifier bridge, measured.

From the pre_hook call to its return: acme_hookd_a2c publishes a requested
event, acme-hookd runs a no-op chain (the bundled `skeleton` handler) and
replies, the bridge matches the reply. Printed beside acme2certifier's own
in-process hook call (its skeleton_hooks) timed the same way, in the same
run. Figures only: nothing is asserted about speed.

    a2c_roundtrip.py --hookd BIN [--requests N] [--concurrency 1,8]

Needs the broker of tests/kafka (HOOKD_KAFKA_STATE) and the venv of
tests/a2c/requirements.txt (run it through tests/bench/a2c_roundtrip.sh).
"""
import argparse
import base64
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "a2c"))
# the bridge of this source tree, ahead of the copy installed in the venv
sys.path.insert(0, os.path.join(HERE, "..", "..", "integrations", "acme2certifier"))
import a2c_harness as h  # noqa: E402


def percentile(values, q):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def run_clients(make_hooks, csr, concurrency, requests, tag):
    """`requests` pre_hook calls in total over `concurrency` threads;
    returns the latencies in ms."""
    lat = []
    lock = threading.Lock()
    per = requests // concurrency
    errors = []

    def client(t):
        mine = []
        for i in range(per):
            hooks = make_hooks()  # acme2certifier builds one Hooks per request
            t0 = time.perf_counter()
            try:
                hooks.pre_hook("cert-%s-%d-%d" % (tag, t, i), "order-%s-%d-%d" % (tag, t, i), csr)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
                return
            mine.append((time.perf_counter() - t0) * 1000.0)
        with lock:
            lat.extend(mine)
    threads = [threading.Thread(target=client, args=(t,)) for t in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("round trip failed: %s" % errors[:3])
    return lat


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hookd", required=True, help="the acme-hookd binary")
    ap.add_argument("--requests", type=int, default=400, help="pre_hook calls per concurrency level")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--concurrency", default="1,8")
    ap.add_argument("--linger-ms", default="0", help="producer linger.ms of bridge and worker")
    ap.add_argument("--fetch-wait-ms", default="5", help="fetch.wait.max.ms of the worker (the bridge's is 5)")
    ap.add_argument("--nagle-disable", default="true", help="socket.nagle.disable of the worker")
    args = ap.parse_args()
    os.environ["HOOKD_BIN"] = args.hookd
    os.environ.setdefault("HOOKD_A2C_WORKDIR", tempfile.mkdtemp(prefix="a2c-bench-"))
    levels = [int(x) for x in args.concurrency.split(",")]

    d = h.workdir()
    key = os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-subj", "/CN=bench.ok.test", "-addext",
                    "subjectAltName=DNS:bench.ok.test", "-outform", "DER", "-out", os.path.join(d, "csr.der")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(d, "csr.der"), "rb") as f:
        csr = base64.b64encode(f.read()).decode()

    topics = h.Topics("bench", partitions=8, reply_partitions=2)
    cfg = os.path.join(d, "acme_srv.cfg")
    with open(cfg, "w") as f:
        f.write(h.ini({
            "Hooks": {"hooks_module": "acme_hookd_a2c", "hookd_handlers": "skeleton",
                      "hookd_bootstrap_servers": h.bootstrap(), "hookd_topic": topics.input,
                      "hookd_reply_topic": topics.reply, "hookd_verdict_timeout": 10,
                      "hookd_lock_dir": d,
                      "hookd_rdkafka.linger.ms": args.linger_ms},
            "kafka": {"bootstrap_servers": h.bootstrap(), "group_id": topics.group,
                      "input_topic": topics.input, "result_topic": topics.result,
                      "dead_letter_topic": topics.dlq, "reply_topics": topics.reply,
                      "consumer.rdkafka.fetch.wait.max.ms": args.fetch_wait_ms,
                      "producer.rdkafka.linger.ms": args.linger_ms,
                      "rdkafka.socket.nagle.disable": args.nagle_disable},
            "worker": {"worker_id": "bench", "threads": 2, "trust_event_flags": "true"},
            "log": {"level": "warning"},
        }))
    os.environ["ACME_SRV_CONFIGFILE"] = cfg

    class FakeSetup:
        pass
    s = FakeSetup()
    s.cfg, s.dir = cfg, d
    worker = h.Worker(s)
    worker.proc = h._popen([args.hookd, "-c", cfg], worker.log_path)
    try:
        import acme_hookd_a2c
        from acme2certifier.share.skeletons.hooks import skeleton_hooks
        logger = logging.getLogger("bench")
        logging.basicConfig(level=logging.WARNING)

        # warm up (client creation, the worker's group join) until one reply comes back
        h.wait_until(lambda: _try(lambda: acme_hookd_a2c.Hooks(logger).pre_hook("w", "w", csr)), 90,
                     "a first verdict from acme-hookd")
        run_clients(lambda: acme_hookd_a2c.Hooks(logger), csr, 1, args.warmup, "warm")

        rows = []
        for c in levels:
            n = max(c, args.requests - args.requests % c)
            inproc = run_clients(lambda: skeleton_hooks.Hooks(logger), csr, c, n, "in%d" % c)
            t0 = time.perf_counter()
            bridge = run_clients(lambda: acme_hookd_a2c.Hooks(logger), csr, c, n, "hk%d" % c)
            wall = time.perf_counter() - t0
            rows.append((c, n, inproc, bridge, wall))
        st = acme_hookd_a2c.stats()
        print()
        print("verdict round trip, pre_hook call to return (ms); worker linger.ms=%s fetch.wait.max.ms=%s "
              "socket.nagle.disable=%s" % (args.linger_ms, args.fetch_wait_ms, args.nagle_disable))
        print("%-12s %-9s %-34s %-28s %s" % ("concurrency", "requests", "acme2certifier in-process p50/p99",
                                             "acme-hookd p50 / p99 / max", "verdicts/s"))
        for c, n, inproc, bridge, wall in rows:
            print("%-12d %-9d %-34s %-28s %.0f" % (
                c, n, "%.4f / %.4f" % (percentile(inproc, 50), percentile(inproc, 99)),
                "%.1f / %.1f / %.1f" % (percentile(bridge, 50), percentile(bridge, 99), max(bridge)),
                n / wall))
        print("bridge counters: %s" % st)
        for c, n, inproc, bridge, wall in rows:
            print("A2C_BENCH concurrency=%d p50_ms=%.2f p99_ms=%.2f mean_ms=%.2f inproc_p50_ms=%.4f"
                  % (c, percentile(bridge, 50), percentile(bridge, 99), statistics.mean(bridge),
                     percentile(inproc, 50)))
    finally:
        h.cleanup()


def _try(fn):
    try:
        fn()
        return True
    except Exception as e:  # noqa: BLE001 - retried until the deadline
        print("waiting for the worker: %s" % e, file=sys.stderr)
        return False


if __name__ == "__main__":
    main()
