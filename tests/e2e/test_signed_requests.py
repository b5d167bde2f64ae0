# SPDX-License-Identifier: MIT
"""The acme2certifier bridge signs its requests; the worker trusts the flags
of signed requests only. Real broker, the bridge module itself
(integrations/acme2certifier/acme_hookd_a2c.py, loaded by path) and a
worker with [auth] require = true and trust_event_flags.

- A signed request whose flags allow the pre failure completes, and its
  reply reaches the bridge (Bridge.request returns the result).
- The same request with hookd.flags changed after signing, and one whose
  reply topic was changed, are forged: dead-lettered as auth_failed, no
  reply, the hooks never run.
- An unsigned request (a bridge without a key) is refused the same way.
"""
import importlib.util
import os
import stat
import uuid

import hookd_e2e as e

BRIDGE = os.path.join(e.SOURCE_DIR, "integrations", "acme2certifier", "acme_hookd_a2c.py")


def load_bridge():
    spec = importlib.util.spec_from_file_location("acme_hookd_a2c", BRIDGE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    a2c = load_bridge()
    topics = e.Topics("sig", partitions=1)
    reply = e.unique("sig.reply")
    e.create_topics({reply: 2})
    keyfile = os.path.join(e.workdir(), "sig-k1.key")
    with open(keyfile, "w") as f:
        f.write("hex:%s\n" % os.urandom(32).hex())
    os.chmod(keyfile, stat.S_IRUSR | stat.S_IWUSR)

    hooks = {"hooks_file": "exception_test", "raise_pre_hook_exception": True}
    w = e.Worker("sig", topics, hooks, kafka={"reply_topics": reply},
                 worker={"trust_event_flags": True},
                 extra={"auth": {"require": True, "keys": "k1:%s" % keyfile}}).start()

    section = {"hookd_bootstrap_servers": e.bootstrap(), "hookd_topic": topics.input,
               "hookd_reply_topic": reply, "hookd_verdict_timeout": "60",
               "ignore_pre_hook_failure": "True",
               "hookd_auth_key_id": "k1", "hookd_auth_key_file": keyfile,
               "hookd_lock_dir": e.workdir()}
    settings = a2c.settings_from_section(section)
    e.check(settings.flags["pre"] is True and settings.auth_key is not None, repr(settings))
    bridge = a2c.Bridge(settings)
    try:
        fields = a2c.enrollment_fields("acme.enrollment.requested", "cert-sig", "order-sig",
                                       e.fields(e.REQUESTED, "order-sig", None)["csr"])
        result = bridge.request("acme.enrollment.requested", fields, "pre")
    finally:
        bridge.close()
    e.check(result is not None and result["verdict"] == "completed"
            and result["runs"][0]["outcome"] == "fail" and result["runs"][0]["failure_allowed"],
            "signed request with allow_pre: %s" % result)

    # Forgeries: sign, then change a request header; and no signature at all.
    key = open(keyfile).read().strip()
    secret = bytes.fromhex(key[4:])
    p = e.Produce()
    forged = {}
    for name, tamper in (("flags", lambda h: [(n, b"allow_pre_hook_failure=true") if n == "hookd.flags" else (n, v) for n, v in h]),
                         ("reply", lambda h: [(n, b"elsewhere") if n == "kafka_replyTopic" else (n, v) for n, v in h]),
                         ("unsigned", None)):
        s2 = a2c.settings_from_section(dict(section, ignore_pre_hook_failure="False"))
        f2 = a2c.enrollment_fields("acme.enrollment.requested", "cert-" + name, "order-" + name,
                                   fields["csr"])
        eid = a2c.event_id("acme.enrollment.requested", f2)
        value = a2c.build_event("acme.enrollment.requested", f2, eid)
        headers = a2c.request_headers(s2, 0, uuid.uuid4().bytes)
        k = ("order-" + name).encode()
        if tamper is not None:
            headers.append(a2c.sign_headers("k1", secret, k, value, headers))
            headers = tamper(headers)
        p.send(topics.input, value, key=k, headers=headers)
        forged[eid] = name
    p.flush()

    dlq = e.Reader(topics.dlq).until(lambda ms: len(ms) >= 3, 60, "three dead letters")
    classes = {m.headers.get("hookd.dlq.event.id"): m.headers.get("hookd.dlq.error.class") for m in dlq}
    for eid, name in forged.items():
        e.check(classes.get(eid) == "auth_failed", "%s: dead letter class %r (all: %s)"
                % (name, classes.get(eid), classes))
    results = e.Reader(topics.result).until(lambda ms: len(ms) >= 4, 60, "four results")
    for m in results:
        body = m.json()
        if body["event_id"] in forged:
            e.check(body["runs"] == [], "%s ran hooks: %s" % (forged[body["event_id"]], body))
    w.wait_log(r"no reply to .*: the event failed authentication", 30)
    replies = e.Reader(reply).read_to_end(30)
    e.check(len(replies) == 1, "replies: %d, expected only the signed request's" % len(replies))
    st = w.stop()
    e.check(st == 0, "exit status %s" % st)
    e.log("signed request decided under its flags; flags or reply topic changed after signing, "
          "and an unsigned request, refused as auth_failed without a reply")


if __name__ == "__main__":
    e.run(main)
