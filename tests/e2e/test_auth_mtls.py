# SPDX-License-Identifier: MIT
"""mTLS: the client certificate is the credential (Strimzi's `tls`
authentication), on the broker's SSL listener that requires one
(tests/kafka/broker.sh, KAFKA_MTLS_BOOTSTRAP; no SASL).

The worker is configured as it would be in Kubernetes: certificate and key
files (rdkafka.ssl.certificate.location / ssl.key.location), the key
encrypted (PKCS#8, AES-256), its password not in the config file but in a
file named by ACME_HOOKD_KAFKA_RDKAFKA__SSL__KEY__PASSWORD__FILE, the way a
mounted Secret is read.

Refusals, each with a clear line in the worker's log and nothing lost
(nothing consumed, published or committed):
- a client certificate from a CA the broker does not trust;
- the right certificate with the wrong key password (the worker does not
  start, and says which setting is wrong).
Then the right configuration processes every event once and commits to
the end. Works with every librdkafka the project builds with.
"""
import os
import re
import subprocess

import hookd_e2e as e
from confluent_kafka.admin import AdminClient

EVENTS = 20
PASSWORD_ENV = "ACME_HOOKD_KAFKA_RDKAFKA__SSL__KEY__PASSWORD__FILE"
TLS_REFUSED = r"(?i)(bad certificate|unknown ca|SSL handshake failed|certificate required|alert)"
BAD_KEY = r"(?i)(ssl\.key\.(location|password)[^\n]*(bad decrypt|failed|error)|bad decrypt|key values mismatch)"


def mtls_conf(b, cert=None, key=None):
    certs = b["KAFKA_CERTS"]
    return {"bootstrap_servers": b["KAFKA_MTLS_BOOTSTRAP"],
            "rdkafka.security.protocol": "SSL",
            "rdkafka.ssl.ca.location": os.path.join(certs, "ca.pem"),
            "rdkafka.ssl.certificate.location": cert or os.path.join(certs, "client.pem"),
            "rdkafka.ssl.key.location": key or os.path.join(certs, "client.enc.key")}


def start_with_password_file(w, path):
    """Start the worker with the key password's __FILE variable set to path."""
    old = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = path
    try:
        w.start()
    finally:
        if old is None:
            del os.environ[PASSWORD_ENV]
        else:
            os.environ[PASSWORD_ENV] = old


def nothing_lost(name, topics, results):
    results.read_to_end()
    e.check(not results.messages, "%s: results were published: %r" % (name, results.messages[:3]))
    got = e.committed(topics.group, topics.input)
    e.check(all(o < 0 for o in got.values()), "%s: offsets were committed: %r" % (name, got))


def log_line(w, m):
    text = w.log_text()
    return text[text.rfind("\n", 0, m.start()) + 1:text.find("\n", m.end())].strip()


def main():
    b = e.broker()
    e.check(b.get("KAFKA_MTLS_BOOTSTRAP"), "the broker has no mTLS listener (tests/kafka/broker.sh too old?)")
    certs = b["KAFKA_CERTS"]
    password_file = os.path.join(certs, "client.key.password")
    e.check(os.path.exists(os.path.join(certs, "client.enc.key")), "gen-certs.sh made no encrypted client key")

    # The listener itself, with a current client and the plain key.
    a = AdminClient({"bootstrap.servers": b["KAFKA_MTLS_BOOTSTRAP"], "security.protocol": "SSL",
                     "ssl.ca.location": os.path.join(certs, "ca.pem"),
                     "ssl.certificate.location": os.path.join(certs, "client.pem"),
                     "ssl.key.location": os.path.join(certs, "client.key")})
    e.check(a.list_topics(timeout=30).brokers, "confluent-kafka could not use the mTLS listener")

    rogue = os.path.join(e.workdir(), "rogue")
    subprocess.run([os.path.join(e.SOURCE_DIR, "tests", "kafka", "gen-certs.sh"), rogue, "untrusted CA"],
                   check=True, stdout=subprocess.DEVNULL)
    wrong_password = os.path.join(e.workdir(), "wrong-password")
    with open(wrong_password, "w") as f:
        f.write("not-the-password\n")

    topics = e.Topics("mtls")
    pki = e.Pki()
    prod = e.Produce()
    ids = []
    for i in range(EVENTS):
        eid = "mtls-%03d" % i
        v, h = e.encode(e.REQUESTED, eid, e.fields(e.REQUESTED, "mtls", pki), ("plain", "structured", "binary")[i % 3])
        prod.send(topics.input, v, key=eid.encode(), headers=h)
        ids.append(eid)
    prod.flush()
    results = e.Reader(topics.result)
    hooks = {"hooks_file": "exception_test"}

    # A certificate the broker does not trust: refused at the handshake.
    w = e.Worker("mtls-unknown-cert", topics, hooks,
                 kafka=mtls_conf(b, cert=os.path.join(rogue, "client.pem"),
                                 key=os.path.join(rogue, "client.enc.key")))
    start_with_password_file(w, os.path.join(rogue, "client.key.password"))
    m = w.wait_log(TLS_REFUSED, 60)
    unknown_line = log_line(w, m)
    nothing_lost("unknown certificate", topics, results)
    w.stop(60)
    e.log("unknown certificate refused; the worker's log: %s" % unknown_line[:400])

    # The wrong password for the encrypted key: the worker cannot load it,
    # says so and exits before it consumes anything.
    w = e.Worker("mtls-wrong-key-password", topics, hooks, kafka=mtls_conf(b))
    start_with_password_file(w, wrong_password)
    try:
        rc = w.proc.wait(60)
    except Exception:
        raise e.TestFailure("the worker with a wrong key password kept running: %s" % w.tail())
    e.check(rc != 0, "the worker with a wrong key password exited with 0")
    m = re.search(BAD_KEY, w.log_text())
    e.check(m, "no clear error about the key in the log: %s" % w.tail())
    key_line = log_line(w, m)
    e.check("not-the-password" not in w.log_text(), "the key password appears in the log")
    nothing_lost("wrong key password", topics, results)
    e.log("wrong key password refused (exit %s); the worker's log: %s" % (rc, key_line[:400]))

    # The right configuration: the password only in the secret file.
    w = e.Worker("mtls-ok", topics, hooks, kafka=mtls_conf(b))
    with open(w.config) as f:
        e.check(open(password_file).read().strip() not in f.read(), "the key password is in the config file")
    start_with_password_file(w, password_file)
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
    results.close()
    print("mTLS with an encrypted key (password from a __FILE secret): unknown certificate and wrong key "
          "password refused without loss; %d events processed once" % EVENTS)


if __name__ == "__main__":
    e.run(main)
