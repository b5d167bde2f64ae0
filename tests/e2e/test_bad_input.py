# SPDX-License-Identifier: MIT
"""A barrage of bad input between valid events.

Random bytes, invalid UTF-8, NUL bytes (raw and as \\u0000), 100,000-level
nesting, duplicate JSON keys, garbage CloudEvents headers (wrong or binary
values, null values, duplicates, too many attributes, a 500 KB header),
empty values and tombstones, interleaved with valid events in the three
wire forms, over three partitions, from a seeded generator.

Checked: zero missing (every input offset has a result or a dead letter,
matched by the result's `input` and the dead letter's hookd.dlq.partition /
offset headers), every valid event a completed result, the worker alive
throughout and exiting 0 on SIGTERM with the committed offsets at the end.
Its peak RSS (VmHWM) is printed.
"""
import json
import random

import hookd_e2e as e

PARTITIONS = 3
VALID = 240
BAD = 480
SEED = 15


def valid_event(i):
    eid = "bi-ok-%d" % i
    fmt = ("plain", "structured", "binary")[i % 3]
    v, h = e.encode(e.REQUESTED, eid, e.fields(e.REQUESTED, eid, None), fmt)
    return eid, v, h


def good_json(rng, eid):
    return json.dumps({"type": e.REQUESTED, "id": eid, "time": e.now_rfc3339(),
                       "certificate_name": "c", "order_name": "o", "csr": "QUJD"})


def bad_message(rng, i):
    """(kind, value, headers) of one bad input."""
    eid = "bi-bad-%d" % i
    kind = rng.choice(["random", "utf8", "nul", "nest", "dup", "ceheaders", "empty"])
    if kind == "random":
        return kind, bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4000))), []
    if kind == "utf8":
        base = good_json(rng, eid).encode()
        cut = rng.randint(1, len(base) - 1)
        bad = rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"])
        return kind, base[:cut] + bad + base[cut:], []
    if kind == "nul":
        base = good_json(rng, eid)
        choice = rng.randint(0, 2)
        if choice == 0:
            return kind, base.replace('"o"', '"o\\u0000x"').encode(), []
        if choice == 1:
            return kind, base.encode().replace(b'"o"', b'"o\x00x"'), []
        return kind, b"\x00" * rng.randint(1, 100), []
    if kind == "nest":
        depth = 100000
        if rng.random() < 0.5:
            return kind, b"[" * depth + b"]" * depth, []
        return kind, b'{"a":' * depth + b"1" + b"}" * depth, []
    if kind == "dup":
        base = good_json(rng, eid)
        key = rng.choice(['"id":', '"type":', '"csr":'])
        return kind, base.replace(key, key + '"dup",' + key, 1).encode(), []
    if kind == "ceheaders":
        value = json.dumps({"certificate_name": "c", "order_name": "o", "csr": "QUJD"}).encode()
        h = [("ce_specversion", b"1.0"), ("ce_id", eid.encode()), ("ce_source", b"/s"),
             ("ce_type", e.REQUESTED.encode()), ("ce_time", e.now_rfc3339().encode())]
        choice = rng.randint(0, 6)
        if choice == 0:
            h[0] = ("ce_specversion", b"2.0")
        elif choice == 1:
            h[1] = ("ce_id", b"\xff\xfe\x00garbage")
        elif choice == 2:
            h[2] = ("ce_source", None)
        elif choice == 3:
            h.append(("ce_id", b"second-id"))
        elif choice == 4:
            h += [("ce_x%d" % k, b"v") for k in range(70)]
        elif choice == 5:
            h.append(("ce_huge", b"h" * 500000))
        else:
            h = [("ce_specversion", bytes(rng.getrandbits(8) for _ in range(16)))] + \
                [(("ce_%08x" % rng.getrandbits(32)), bytes(rng.getrandbits(8) for _ in range(8)))
                 for _ in range(5)]
        return kind, value, h
    return kind, (b"" if rng.random() < 0.5 else None), []


def main():
    rng = random.Random(SEED)
    topics = e.Topics("badin", partitions=PARTITIONS)
    w = e.Worker("badin", topics, {"hooks_file": "exception_test"}, worker={"threads": 2})
    p = e.Produce({"message.max.bytes": 2000000})
    valid_ids = []
    kinds = {}
    order = ["valid"] * VALID + ["bad"] * BAD
    rng.shuffle(order)
    nv = nb = 0
    for k, what in enumerate(order):
        part = k % PARTITIONS
        if what == "valid":
            eid, v, h = valid_event(nv)
            nv += 1
            valid_ids.append(eid)
            p.send(topics.input, v, key=eid.encode(), headers=h, partition=part)
        else:
            kind, v, h = bad_message(rng, nb)
            nb += 1
            kinds[kind] = kinds.get(kind, 0) + 1
            key = None if rng.random() < 0.3 else ("bad-%d" % nb).encode()
            p.send(topics.input, v, key=key, headers=h, partition=part)
    p.flush()
    ends = e.end_offsets(topics.input)
    total = sum(ends.values())
    e.log("produced %d inputs: %d valid, bad ones by kind %s" % (total, VALID, kinds))
    e.check(total == VALID + BAD, "end offsets %r" % ends)

    w.start()
    results = e.Reader(topics.result)
    dlq = e.Reader(topics.dlq, {"fetch.max.bytes": 8000000})

    def covered():
        seen = set()
        for m in results.messages:
            inp = m.json()["input"]
            seen.add((inp["partition"], inp["offset"]))
        for m in dlq.messages:
            seen.add((int(m.headers["hookd.dlq.partition"]), int(m.headers["hookd.dlq.offset"])))
        return seen

    want = {(pp, o) for pp, hi in ends.items() for o in range(hi)}

    def done(_ms):
        e.check(w.alive(), "the worker died (status %s)" % w.proc.returncode)
        dlq.poll(0.1)
        return want <= covered()
    results.until(done, 120, "an outcome for each of the %d inputs" % total)
    missing = want - covered()
    e.check(not missing, "inputs without an outcome: %s" % sorted(missing)[:20])
    got = {e.result_input_id(m): m for m in results.messages}
    for eid in valid_ids:
        e.check(eid in got and e.result_type(got[eid]) == e.RESULT_COMPLETED,
                "%s: %r" % (eid, got.get(eid)))
    e.log("every input has an outcome: %d results, %d dead letters"
          % (len(results.messages), len(dlq.messages)))

    e.check(w.alive(), "the worker died (status %s)" % w.proc.returncode)
    with open("/proc/%d/status" % w.proc.pid) as f:
        hwm = [l.split(":", 1)[1].strip() for l in f if l.startswith("VmHWM")]
    e.log("worker peak RSS (VmHWM): %s" % (hwm[0] if hwm else "?"))
    results.close()
    dlq.close()
    status = w.stop()
    e.check(status == 0, "exit status %s" % status)
    got = e.committed(topics.group, topics.input)
    e.check(got == ends, "committed %r, end offsets %r" % (got, ends))


if __name__ == "__main__":
    e.run(main)
