# SPDX-License-Identifier: MIT
"""Small admin client for the test broker (Python confluent-kafka).

    kadmin.py ping BOOTSTRAP [TIMEOUT_S]     exit 0 once the broker answers metadata
    kadmin.py create BOOTSTRAP NAME:PARTITIONS ...
                                             create topics (existing ones are fine
                                             when their partition count matches)
"""
import sys
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic


def admin(bootstrap):
    # log_level 0: a broker still starting refuses connections; that is expected here.
    return AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 2000,
                        "log_level": 0})


def ping(bootstrap, timeout_s):
    """True when the broker answers a metadata request and lists itself."""
    try:
        md = admin(bootstrap).list_topics(timeout=timeout_s)
        return len(md.brokers) > 0
    except KafkaException:
        return False


def create(bootstrap, specs, timeout_s=60.0):
    """Create topics NAME:PARTITIONS and wait until every partition has a leader."""
    client = admin(bootstrap)
    wanted = {}
    for spec in specs:
        name, _, parts = spec.partition(":")
        wanted[name] = int(parts or 1)
    futures = client.create_topics(
        [NewTopic(n, num_partitions=p, replication_factor=1) for n, p in wanted.items()],
        operation_timeout=timeout_s)
    for name, fut in futures.items():
        try:
            fut.result()
        except KafkaException as e:
            if e.args[0].code() != e.args[0].TOPIC_ALREADY_EXISTS:
                raise
    deadline = time.monotonic() + timeout_s
    while True:
        md = client.list_topics(timeout=10)
        missing = []
        for name, parts in wanted.items():
            t = md.topics.get(name)
            if t is None or t.error is not None or len(t.partitions) != parts or \
                    any(p.leader < 0 for p in t.partitions.values()):
                missing.append(name)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("topics not ready in time: %s" % ", ".join(missing))
        time.sleep(0.1)


def main(argv):
    if len(argv) >= 3 and argv[1] == "ping":
        return 0 if ping(argv[2], float(argv[3]) if len(argv) > 3 else 2.0) else 1
    if len(argv) >= 4 and argv[1] == "create":
        create(argv[2], argv[3:])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
