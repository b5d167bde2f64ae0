# SPDX-License-Identifier: MIT
"""Shared parts of the fault tests: a paced background producer of
uniquely identified events and the bookkeeping of outcomes."""
import json
import threading
import time

import hookd_e2e as e

# Per event type: whether the fault tests' configuration dead-letters it.
# The chain is exception_test with raise_post_hook_exception on and
# allow_post_hook_failure off: requested events complete; issued and failed
# events fail in the post phase and are dead-lettered.
FAULT_HOOKS = {"hooks_file": "exception_test", "raise_post_hook_exception": True,
               "allow_post_hook_failure": False}
DEAD_LETTERED = {e.REQUESTED: False, e.ISSUED: True, e.FAILED: True}


class Stream:
    """Produces `count` events (plus `poison` malformed messages spread
    among them) at `rate` per second from a background thread.

    keyed="id": key = event id (one key per event);
    keyed="partition": event i goes to partition i % partitions with key
    "k<p>", so every result of one input partition shares one key and its
    order can be checked;
    keyed=N (an int): event i gets key "k<i % N>" and the producer's
    partitioner places it, so N keys share the partitions."""

    def __init__(self, topic, count, rate, prefix, partitions=1, keyed="id", poison=0, seed=0,
                 producer_conf=None):
        self.topic = topic
        self.count = count
        self.rate = rate
        self.prefix = prefix
        self.partitions = partitions
        self.keyed = keyed
        self.poison_every = (count // poison) if poison else 0
        self.events = {}    # id -> {"type", "key", "partition", "seq"}
        self.poison = {}    # key -> value
        self.pki = e.Pki()
        self.prod = e.Produce(producer_conf)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error = None
        self.produced = 0           # messages handed to the producer
        self.produced_events = 0    # of which events (not poison)
        self._plan()
        self.limit = len(self.plan)  # messages the producer may send (see hold/allow)

    def _plan(self):
        self.plan = []
        seq = {}
        for i in range(self.count):
            r = i % 10
            etype = e.ISSUED if r == 3 else e.FAILED if r == 7 else e.REQUESTED
            p = i % self.partitions
            seq[p] = seq.get(p, 0) + 1
            eid = "%s-%d-%06d" % (self.prefix, p, seq[p])
            if isinstance(self.keyed, int):
                key = "k%d" % (i % self.keyed)
            else:
                key = eid if self.keyed == "id" else "k%d" % p
            self.events[eid] = {"type": etype, "key": key, "partition": p, "seq": seq[p]}
            self.plan.append(("event", eid))
            if self.poison_every and i % self.poison_every == self.poison_every // 2:
                pk = "%s-poison-%06d" % (self.prefix, i)
                self.poison[pk] = ("not json: %s {" % pk).encode()
                self.plan.append(("poison", pk))

    def hold(self, fraction):
        """Stop producing at `fraction` of the plan until allow() says more."""
        self.limit = int(len(self.plan) * fraction)

    def allow(self, n=None):
        """Let n more messages out (all of them when n is None)."""
        self.limit = len(self.plan) if n is None else min(len(self.plan), self.limit + n)

    def holding(self):
        return self.produced >= self.limit < len(self.plan)

    def start(self):
        self.t0 = time.monotonic()
        self.thread.start()
        return self

    def _run(self):
        try:
            flds = {t: e.fields(t, "fault", self.pki) for t in (e.REQUESTED, e.ISSUED, e.FAILED)}
            held = 0.0
            for n, (kind, ident) in enumerate(self.plan):
                while n >= self.limit:
                    t = time.monotonic()
                    self.prod.p.poll(0.05)
                    held += time.monotonic() - t
                # Pace: message n goes out at t0 + n / rate (time held excluded).
                ahead = self.t0 + held + n / self.rate - time.monotonic()
                if ahead > 0:
                    self.prod.p.poll(ahead)
                if kind == "event":
                    ev = self.events[ident]
                    value, headers = e.encode(ev["type"], ident, flds[ev["type"]], "plain")
                    part = ev["partition"] if self.keyed == "partition" else None
                    self.prod.send(self.topic, value, key=ev["key"].encode(), headers=headers,
                                   partition=part)
                    self.produced_events += 1
                else:
                    self.prod.send(self.topic, self.poison[ident], key=ident.encode())
                self.produced += 1
            self.prod.flush(300)
        except Exception as ex:  # reported by join()
            self.error = ex

    def join(self, timeout=600):
        self.thread.join(timeout)
        e.check(not self.thread.is_alive(), "the producer did not finish")
        if self.error:
            raise self.error

    def dead_letter_due(self):
        return {i for i, ev in self.events.items() if DEAD_LETTERED[ev["type"]]}


class Outcomes:
    """Reads the result and dead-letter topics and accounts for every input."""

    def __init__(self, stream, topics, by_key=True, isolation="read_committed"):
        self.stream = stream
        # read_committed (librdkafka's default, stated): what a downstream
        # consumer of an exactly-once worker must use.
        conf = {"isolation.level": isolation}
        self.results = e.Reader(topics.result, conf)
        self.dlq = e.Reader(topics.dlq, conf)
        self.by_key = by_key
        self._rid = []

    def poll(self, seconds=0.2):
        self.results.poll(seconds)
        self.dlq.poll(0.05)

    def result_ids(self):
        """Input ids of all results, in topic order (with duplicates)."""
        msgs = self.results.messages
        while len(self._rid) < len(msgs):
            m = msgs[len(self._rid)]
            self._rid.append(m.key if self.by_key else e.result_input_id(m))
        return self._rid

    def done_count(self):
        ids = set(self.result_ids())
        return len(ids & self.stream.events.keys())

    def missing(self):
        """(ids without a result, ids due a dead letter without one,
        poison messages without a dead letter)."""
        got = set(self.result_ids())
        no_result = [i for i in self.stream.events if i not in got]
        dl_keys = {m.key for m in self.dlq.messages}
        # Dead letters keep the original key; with partition keys the value
        # tells the events apart.
        if self.by_key:
            dl_ids = dl_keys
        else:
            dl_ids = set()
            for m in self.dlq.messages:
                try:
                    dl_ids.add(json.loads(m.value).get("id"))
                except ValueError:
                    pass
        no_dl = [i for i in self.stream.dead_letter_due() if i not in dl_ids]
        no_poison = [k for k in self.stream.poison if k not in dl_keys]
        return no_result, no_dl, no_poison

    def complete(self):
        self.poll()
        nr, nd, npz = self.missing()
        return not nr and not nd and not npz

    def wait_complete(self, timeout, what):
        e.wait_until(self.complete, timeout, what, interval=0)

    def duplicates(self):
        ids = [i for i in self.result_ids() if i in self.stream.events]
        return len(ids) - len(set(ids))

    def dead_letter_duplicates(self):
        """Dead letters beyond one per input (events due one, and poison)."""
        seen = {}
        for m in self.dlq.messages:
            ident = m.key
            if not self.by_key:
                try:
                    ident = json.loads(m.value).get("id")
                except ValueError:
                    pass
            seen[ident] = seen.get(ident, 0) + 1
        return sum(n - 1 for n in seen.values() if n > 1)

    def report(self, name):
        nr, nd, npz = self.missing()
        inputs = len(self.stream.events) + len(self.stream.poison)
        outcomes = len(set(self.result_ids()) & self.stream.events.keys()) + \
            (len(self.stream.poison) - len(npz))
        line = ("%s: inputs=%d outcomes=%d missing=%d duplicates=%d dead_letters=%d "
                "dead_letter_duplicates=%d "
                "(events=%d, poison=%d, missing results=%d, missing dead letters=%d, "
                "missing poison dead letters=%d)"
                % (name, inputs, outcomes, len(nr) + len(npz), self.duplicates(),
                   len(self.dlq.messages), self.dead_letter_duplicates(),
                   len(self.stream.events), len(self.stream.poison),
                   len(nr), len(nd), len(npz)))
        print(line, flush=True)
        return nr, nd, npz

    def close(self):
        self.results.close()
        self.dlq.close()


def check_exactly_once(out):
    """The exactly-once judge: every input's outcome once, read committed."""
    dups, dl_dups = out.duplicates(), out.dead_letter_duplicates()
    e.check(dups == 0 and dl_dups == 0, "exactly_once: %d duplicate results, %d duplicate dead letters"
            % (dups, dl_dups))


def exactly_once_kafka(extra=None):
    """[kafka] keys of a worker in exactly_once mode (tests keep the
    transaction timeout of a killed worker short)."""
    k = {"delivery": "exactly_once", "producer.rdkafka.transaction.timeout.ms": 10000}
    k.update(extra or {})
    return k


def check_committed_all(topics):
    ends = e.end_offsets(topics.input)
    got = e.committed(topics.group, topics.input)
    e.check(got == ends, "committed offsets %r, end offsets %r" % (got, ends))
