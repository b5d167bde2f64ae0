#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Per-stage instruction counts per event, from two callgrind runs.

    callgrind_stages.py SMALL_PREFIX N_SMALL LARGE_PREFIX N_LARGE [--raw]

Each prefix names the per-thread files of one run (callgrind
--separate-threads=yes writes PREFIX-01, PREFIX-02, ...): the same
contender on a backlog of N_SMALL and of N_LARGE events. Every figure is
(count of the large run - count of the small one) / (N_LARGE - N_SMALL),
so start-up, the group join and shutdown cancel out.

Threads are told apart by what they run: the main thread (acme-hookd's
consumer thread, or the passthrough's only loop), the handler threads
(pool_thread_main), the publisher thread (publisher_thread_main), and
librdkafka's own threads (everything else: fetch parsing, produce
batching, network I/O of both clients; librdkafka is stripped, so its
internal functions have no names and are not split further). Inside our
threads the stages are the inclusive counts of the functions that start
them (see STAGES); what a thread spends outside them is its own row.
Only user-space instructions are counted: system calls cost kernel time
that callgrind does not see.
"""
import glob
import os
import re
import subprocess
import sys

LINE = re.compile(r"^\s*([0-9,]+) \(\s*[0-9.]+%\)\s+(.*?)(?: \[(.*)\])?$")


def inclusive(path):
    """function name -> inclusive Ir, and the thread total, of one thread file.

    Run from /: inside a source tree callgrind_annotate also lists a
    function under its relative file name, and the two would add up."""
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--auto=no", "--threshold=100",
         os.path.abspath(path)],
        check=True, capture_output=True, text=True, cwd="/").stdout
    fns, total = {}, 0
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        name = m.group(2)
        if name == "PROGRAM TOTALS":
            total = ir
            continue
        fn = name.rsplit(":", 1)[-1]
        fns[fn] = fns.get(fn, 0) + ir
    return fns, total


def g(fns, *names):
    return sum(fns.get(n, 0) for n in names)


# (row, thread kind, entry functions: their inclusive counts)
STAGES = [
    ("consume: batch consume, copy out of the fetch buffer, hand to the pool", "main",
     ("rd_kafka_consume_batch_queue", "hookd_msg_from", "hookd_pool_push",
      "hookd_offsets_track", "rd_kafka_message_destroy")),
    ("commit bookkeeping (consumer thread): offsets store, commit, pause checks", "main", None),
    ("handoff: pool lock, wake-ups, key gate", "handler", None),
    ("decode/verify: auth, codec, reply and flag headers", "handler",
     ("hookd_auth_verify", "hookd_event_decode", "hookd_event_clear", "hookd_request_reply_to",
      "hookd_request_flags", "hookd_request_phases_done")),
    ("engine/invoke: phases, handler calls", "handler", ("hookd_engine_run_from",)),
    ("encode: result value and headers", "handler",
     ("hookd_result_encode", "hookd_headers_new", "hookd_headers_destroy",
      "hookd_deadletter_headers")),
    ("produce (handler thread): job copy, rd_kafka_producev", "handler",
     ("hookd_publisher_publish", "hookd_publisher_reply")),
    ("commit bookkeeping (handler thread): tracker expect, outcome gate", "handler",
     ("hookd_offsets_expect", "hookd_publisher_outcome_begin", "hookd_publisher_outcome_end")),
    ("metrics (handler threads)", "handler",
     ("hookd_metrics_event_consumed", "hookd_metrics_invocation")),
    ("pipeline rest: logging, message free, glue", "handler", None),
    ("delivery reports (publisher thread): job unlink, metrics, free", "publisher", None),
    ("commit bookkeeping (publisher thread): tracker ack", "publisher", ("on_record_acked",)),
    ("librdkafka threads (fetch, produce batching, I/O; both clients)", "rdkafka", None),
]


def thread_kind(fns):
    if "pool_thread_main" in fns:
        return "handler"
    if "publisher_thread_main" in fns:
        return "publisher"
    if "main" in fns:
        return "main"
    return "rdkafka"


def run_stages(prefix):
    """row -> Ir of one run; plus the total."""
    rows = {name: 0 for name, _, _ in STAGES}
    total = 0
    files = sorted(f for f in glob.glob(prefix + "-*") if re.search(r"-\d+$", f))
    if not files:
        sys.exit("callgrind_stages: no thread files %s-NN" % prefix)
    for path in files:
        fns, t = inclusive(path)
        total += t
        kind = thread_kind(fns)
        named = 0
        rest_row = None
        for name, k, entries in STAGES:
            if k != kind:
                continue
            if entries is None:
                rest_row = name
                continue
            v = g(fns, *entries)
            rows[name] += v
            named += v
        if kind == "handler":
            # the handoff is what the thread does outside the pipeline
            pipe = fns.get("hookd_pipeline_process", 0)
            rows["handoff: pool lock, wake-ups, key gate"] += t - pipe
            rows["pipeline rest: logging, message free, glue"] += pipe - named
        elif rest_row is not None:
            rows[rest_row] += t - named
    return rows, total


def raw_stages(prefix):
    rows = {"passthrough loop (main thread)": 0, "librdkafka threads": 0}
    total = 0
    for path in sorted(f for f in glob.glob(prefix + "-*") if re.search(r"-\d+$", f)):
        fns, t = inclusive(path)
        total += t
        rows["passthrough loop (main thread)" if "main" in fns else "librdkafka threads"] += t
    return rows, total


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    raw = "--raw" in sys.argv
    if len(args) != 4:
        sys.exit(__doc__)
    small, n_small, large, n_large = args[0], int(args[1]), args[2], int(args[3])
    fn = raw_stages if raw else run_stages
    (rs, ts), (rl, tl) = fn(small), fn(large)
    dn = n_large - n_small
    print("| stage | Ir per event |")
    print("|---|---:|")
    for name in rs:
        print("| %s | %s |" % (name, format(round((rl[name] - rs[name]) / dn), ",")))
    print("| **total** | **%s** |" % format(round((tl - ts) / dn), ","))


if __name__ == "__main__":
    main()
