# SPDX-License-Identifier: MIT
"""Secure listener: the broker's second listener speaks TLS (certificates
made by tests/kafka/gen-certs.sh with the openssl CLI; client certificates
required) and SASL (SCRAM-SHA-512, user created at format time; PLAIN with
the same user). The worker reaches it through configuration alone
(rdkafka.security.protocol = SASL_SSL and friends).

Refusals, each with a clear error in the worker's log and no event lost
(nothing consumed, nothing committed): a wrong password, a broker
certificate the worker does not trust, a client certificate the broker
does not trust. Then the configuration is fixed and every event is
processed exactly once.

SCRAM and librdkafka: before 2.6.1, librdkafka appends its nonce twice in
the SCRAM client-final message; Kafka 4.x checks the nonce strictly
(CVE-2024-56128) and refuses it even with the right password. The test
reads the version of the librdkafka the worker binary loads: from 2.6.1
on, the worker authenticates with SCRAM-SHA-512; before, the test shows
that SCRAM is refused without loss and the worker authenticates with PLAIN
over the same mutually authenticated TLS listener.
"""
import ctypes
import os
import re
import subprocess

import hookd_e2e as e
from confluent_kafka.admin import AdminClient

EVENTS = 30
AUTH_ERROR = r"(?i)(authentication failed|invalid credentials|invalid username or password|SASL authentication error)"
TLS_UNTRUSTED = r"(?i)(certificate verify failed|SSL handshake failed)"
TLS_REFUSED = r"(?i)(bad certificate|unknown ca|SSL handshake failed|alert|certificate required)"


def worker_librdkafka_version():
    """(version int, text) of the librdkafka the worker binary loads, or (0, reason)."""
    r = subprocess.run(["ldd", e.hookd_bin()], capture_output=True, text=True)
    m = re.search(r"librdkafka\.so\.\d+ => (\S+)", r.stdout)
    if not m:
        return 0, "librdkafka not found by ldd"
    lib = ctypes.CDLL(m.group(1))
    lib.rd_kafka_version.restype = ctypes.c_int
    lib.rd_kafka_version_str.restype = ctypes.c_char_p
    return lib.rd_kafka_version(), lib.rd_kafka_version_str().decode()


def secure_conf(b, mechanism, password=None, ca=None, cert=None, key=None):
    certs = b["KAFKA_CERTS"]
    return {"bootstrap_servers": b["KAFKA_SECURE_BOOTSTRAP"],
            "rdkafka.security.protocol": "SASL_SSL",
            "rdkafka.sasl.mechanisms": mechanism,
            "rdkafka.sasl.username": b["KAFKA_SCRAM_USER"],
            "rdkafka.sasl.password": password or b["KAFKA_SCRAM_PASSWORD"],
            "rdkafka.ssl.ca.location": ca or os.path.join(certs, "ca.pem"),
            "rdkafka.ssl.certificate.location": cert or os.path.join(certs, "client.pem"),
            "rdkafka.ssl.key.location": key or os.path.join(certs, "client.key")}


def main():
    b = e.broker()
    version, vtext = worker_librdkafka_version()
    e.check(version > 0, "cannot tell which librdkafka %s loads: %s" % (e.hookd_bin(), vtext))
    scram_ok = version >= 0x02060100  # 2.6.1 (MMmmrrxx)
    mechanism = "SCRAM-SHA-512" if scram_ok else "PLAIN"
    e.log("worker's librdkafka: %s (0x%08x); authenticating with %s" % (vtext, version, mechanism))

    # The listener itself, with a current client: SCRAM-SHA-512 and mutual TLS.
    py = AdminClient({"bootstrap.servers": b["KAFKA_SECURE_BOOTSTRAP"], "security.protocol": "SASL_SSL",
                      "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": b["KAFKA_SCRAM_USER"],
                      "sasl.password": b["KAFKA_SCRAM_PASSWORD"],
                      "ssl.ca.location": os.path.join(b["KAFKA_CERTS"], "ca.pem"),
                      "ssl.certificate.location": os.path.join(b["KAFKA_CERTS"], "client.pem"),
                      "ssl.key.location": os.path.join(b["KAFKA_CERTS"], "client.key")})
    e.check(py.list_topics(timeout=30).brokers, "confluent-kafka could not use the SCRAM listener")

    rogue = os.path.join(e.workdir(), "rogue")
    subprocess.run([os.path.join(e.SOURCE_DIR, "tests", "kafka", "gen-certs.sh"), rogue, "untrusted CA"],
                   check=True, stdout=subprocess.DEVNULL)

    topics = e.Topics("secure")
    pki = e.Pki()
    prod = e.Produce()
    ids = []
    for i in range(EVENTS):
        eid = "secure-%03d" % i
        v, h = e.encode(e.REQUESTED, eid, e.fields(e.REQUESTED, "secure", pki), ("plain", "structured", "binary")[i % 3])
        prod.send(topics.input, v, key=eid.encode(), headers=h)
        ids.append(eid)
    prod.flush()
    results = e.Reader(topics.result)
    hooks = {"hooks_file": "exception_test"}

    refusals = [
        ("wrong-password", secure_conf(b, mechanism, password="not-the-password"), AUTH_ERROR),
        ("untrusted-broker-cert", secure_conf(b, mechanism, ca=os.path.join(rogue, "ca.pem")), TLS_UNTRUSTED),
        ("untrusted-client-cert", secure_conf(b, mechanism, cert=os.path.join(rogue, "client.pem"),
                                              key=os.path.join(rogue, "client.key")), TLS_REFUSED),
    ]
    if not scram_ok:
        refusals.append(("scram-with-old-librdkafka", secure_conf(b, "SCRAM-SHA-512"), AUTH_ERROR))
    for name, conf, pattern in refusals:
        w = e.Worker("secure-" + name, topics, hooks, kafka=conf)
        w.start()
        m = w.wait_log(pattern, 60)
        line = w.log_text()[max(0, m.start() - 200):m.end() + 200].splitlines()
        e.log("%s refused; the worker's log says: %s" % (name, " | ".join(l for l in line if re.search(pattern, l))[:400]))
        # Refused means refused: nothing consumed, nothing committed.
        results.read_to_end()
        e.check(not results.messages, "%s: results were published: %r" % (name, results.messages[:3]))
        got = e.committed(topics.group, topics.input)
        e.check(all(o < 0 for o in got.values()), "%s: offsets were committed: %r" % (name, got))
        w.stop(60)

    # Fixed configuration: everything is processed, once.
    w = e.Worker("secure-ok", topics, hooks, kafka=secure_conf(b, mechanism))
    w.start()
    results.until(lambda ms: len({m.key for m in ms}) >= EVENTS, 120, "%d results" % EVENTS)
    rc = w.stop()
    results.read_to_end()
    keys = [m.key for m in results.messages]
    e.check(sorted(keys) == sorted(ids), "results %d for %d events (duplicates or strays)" % (len(keys), EVENTS))
    e.check(all(e.result_type(m) == e.RESULT_COMPLETED for m in results.messages), "a result is not completed")
    e.check(rc == 0, "worker exited with %s after SIGTERM" % rc)
    ends = e.end_offsets(topics.input)
    got = e.committed(topics.group, topics.input)
    e.check(got == ends, "committed %r, end offsets %r" % (got, ends))
    print("secure listener: %s over mutual TLS; refusals: %s; %d events processed once after the fix"
          % (mechanism, ", ".join(n for n, _, _ in refusals), EVENTS))
    results.close()


if __name__ == "__main__":
    e.run(main)
