# SPDX-License-Identifier: MIT
"""SASL/SCRAM-SHA-512 over TLS, the way Strimzi's `scram-sha-512`
authentication and most managed Kafka services ask for it, on the broker's
SASL_SSL listener (tests/kafka/broker.sh: Kafka 4, client certificates
required too).

With librdkafka 2.6.1 or later (Debian 13 has 2.8.0):
- a wrong password is refused with a clear line in the worker's log, and
  nothing is consumed, published or committed;
- with the right password every worker of the truth table
  (test_truth_table.py) logs in with SCRAM-SHA-512 and the whole table
  passes, unchanged: each worker's [kafka] section points at the SASL_SSL
  listener with SCRAM credentials.

Before 2.6.1 (Debian 12 has 2.0.2), Kafka 3.8.1 and later refuse
librdkafka's SCRAM client-final message even with the right password
(confluentinc/librdkafka#4895: the client nonce is sent twice; Kafka checks
it strictly since CVE-2024-56128). The test then documents that failure
instead of passing by accident: it shows that the failure is that one and
no other by checking that
- a current client (confluent-kafka's own librdkafka) logs in with the same
  user, password and certificates, so the credentials are right;
- the worker logs in with PLAIN over the same mutually authenticated TLS
  listener, so TLS, certificates and user are right;
- the worker's SCRAM-SHA-512 login with the right password is refused as
  invalid credentials (not a TLS error), and nothing is consumed,
  published or committed.
"""
import os
import re

import hookd_e2e as e
import test_secure_listener as sl
import test_truth_table as tt
from confluent_kafka import libversion
from confluent_kafka.admin import AdminClient

FIXED_IN = 0x020601FF  # librdkafka 2.6.1 (MMmmrrxx)
SCRAM_REFUSED = r"SASL authentication error: Authentication failed during authentication due to " \
                r"invalid credentials with SASL mechanism SCRAM-SHA-512"
TLS_ERROR = r"(?i)(SSL handshake failed|certificate verify failed)"
EVENTS = 6


def refused(b, name, conf, pattern):
    """Start a worker with `conf`, wait for `pattern` in its log; check that it
    consumed, published and committed nothing. Returns the matching line."""
    topics = e.Topics("scram-" + name)
    pki = e.Pki()
    prod = e.Produce()
    for i in range(EVENTS):
        eid = "scram-%s-%d" % (name, i)
        v, h = e.encode(e.REQUESTED, eid, e.fields(e.REQUESTED, eid, pki))
        prod.send(topics.input, v, key=eid.encode(), headers=h)
    prod.flush()
    w = e.Worker("scram-" + name, topics, {"hooks_file": "exception_test"}, kafka=conf)
    w.start()
    m = w.wait_log(pattern, 60)
    text = w.log_text()
    line = text[text.rfind("\n", 0, m.start()) + 1:text.find("\n", m.end())]
    e.check(not re.search(TLS_ERROR, text), "%s: a TLS error, not the SASL refusal: %s" % (name, text[-2000:]))
    results = e.Reader(topics.result)
    results.read_to_end()
    e.check(not results.messages, "%s: results were published: %r" % (name, results.messages[:3]))
    dlq = e.Reader(topics.dlq)
    dlq.read_to_end()
    e.check(not dlq.messages, "%s: dead letters were published" % name)
    got = e.committed(topics.group, topics.input)
    e.check(all(o < 0 for o in got.values()), "%s: offsets were committed: %r" % (name, got))
    rc = w.stop(60)
    e.check(rc is not None, "%s: the worker did not stop" % name)
    results.close()
    dlq.close()
    e.log("%s refused; the worker's log: %s" % (name, line[:500]))
    return line


def current_client_logs_in(b):
    """confluent-kafka's bundled librdkafka, SCRAM-SHA-512 with the same credentials."""
    certs = b["KAFKA_CERTS"]
    ver = libversion()
    e.check(ver[1] >= FIXED_IN, "the harness's librdkafka %s has the SCRAM bug itself" % ver[0])
    a = AdminClient({"bootstrap.servers": b["KAFKA_SECURE_BOOTSTRAP"], "security.protocol": "SASL_SSL",
                     "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": b["KAFKA_SCRAM_USER"],
                     "sasl.password": b["KAFKA_SCRAM_PASSWORD"],
                     "ssl.ca.location": os.path.join(certs, "ca.pem"),
                     "ssl.certificate.location": os.path.join(certs, "client.pem"),
                     "ssl.key.location": os.path.join(certs, "client.key")})
    e.check(a.list_topics(timeout=30).brokers, "librdkafka %s could not log in with SCRAM-SHA-512" % ver[0])
    return ver[0]


def plain_works(b):
    """The worker, PLAIN over the same TLS listener: processes events once."""
    topics = e.Topics("scram-plain")
    pki = e.Pki()
    prod = e.Produce()
    ids = []
    for i in range(EVENTS):
        eid = "scram-plain-%d" % i
        v, h = e.encode(e.REQUESTED, eid, e.fields(e.REQUESTED, eid, pki))
        prod.send(topics.input, v, key=eid.encode(), headers=h)
        ids.append(eid)
    prod.flush()
    w = e.Worker("scram-plain", topics, {"hooks_file": "exception_test"}, kafka=sl.secure_conf(b, "PLAIN"))
    w.start()
    results = e.Reader(topics.result)
    results.until(lambda ms: len(ms) >= EVENTS, 120, "%d results over PLAIN" % EVENTS)
    e.check(w.stop() == 0, "the PLAIN worker did not exit cleanly")
    results.read_to_end()
    e.check(sorted(m.key for m in results.messages) == sorted(ids), "PLAIN: results differ from the events")
    results.close()


def main():
    b = e.broker()
    version, vtext = sl.worker_librdkafka_version()
    e.check(version > 0, "cannot tell which librdkafka %s loads: %s" % (e.hookd_bin(), vtext))
    e.log("worker's librdkafka: %s (0x%08x)" % (vtext, version))

    if version < FIXED_IN:
        harness = current_client_logs_in(b)
        plain_works(b)
        line = refused(b, "known-bug", sl.secure_conf(b, "SCRAM-SHA-512"), SCRAM_REFUSED)
        print("SCRAM-SHA-512: KNOWN FAILURE with librdkafka %s (confluentinc/librdkafka#4895, fixed in "
              "2.6.1): the right password is refused by Kafka 4 (%s) while librdkafka %s logs in with "
              "the same credentials, and this worker logs in with PLAIN over the same TLS listener; "
              "nothing consumed or committed" % (vtext, line.strip()[:200], harness))
        return

    refused(b, "wrong-password", sl.secure_conf(b, "SCRAM-SHA-512", password="not-the-password"), SCRAM_REFUSED)

    # The truth table, every worker logging in with SCRAM-SHA-512 over TLS.
    scram = sl.secure_conf(b, "SCRAM-SHA-512")
    workers = []
    plain_init = e.Worker.__init__

    def scram_init(self, name, topics, hooks, kafka=None, **kw):
        k = dict(scram)
        k.update(kafka or {})
        plain_init(self, name, topics, hooks, kafka=k, **kw)
        workers.append(self)
    e.Worker.__init__ = scram_init
    try:
        tt.main()
    finally:
        e.Worker.__init__ = plain_init
    e.check(len(workers) >= 17, "the truth table started %d workers" % len(workers))
    for w in workers:
        e.check("SASL_SSL" in open(w.config).read() and "SCRAM-SHA-512" in open(w.config).read(),
                "worker %s was not configured for SCRAM" % w.name)
        e.check(not re.search(SCRAM_REFUSED, w.log_text()), "worker %s was refused" % w.name)
    print("SCRAM-SHA-512 over TLS with librdkafka %s: wrong password refused; the truth table passed "
          "with %d workers logged in with SCRAM" % (vtext, len(workers)))


if __name__ == "__main__":
    e.run(main)
