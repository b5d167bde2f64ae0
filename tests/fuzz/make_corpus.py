#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Regenerate the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/)
from the schema examples, the example configurations and a few signed
messages. Encodings follow tests/fuzz/fuzz_input.h. Run from anywhere:
    python3 tests/fuzz/make_corpus.py
"""
import base64
import glob
import hashlib
import hmac
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NAMES = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type",
         "ce_subject", "ce_dataschema", "ce_data", "hookd-signature", "CE_ID", "traceparent"]


def out_dir(target):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    return d


def write(target, name, data):
    with open(os.path.join(out_dir(target), name), "wb") as f:
        f.write(data)


def enc_headers(headers):
    """headers: list of (name, value-bytes-or-None)."""
    out = bytes([len(headers)])
    for name, value in headers:
        if name in NAMES:
            out += bytes([NAMES.index(name)])
        else:
            n = name.encode()[:255]
            out += bytes([0xFE, len(n)]) + n
        if value is None:
            out += b"\xff"
        else:
            v = value[:254]
            out += bytes([len(v)]) + v
    return out


def header_list(d):
    hs = []
    for k, v in d.items():
        hs.append((k, None if v is None else str(v).encode()))
    return hs[:11]


def binary_value(d):
    if "value_text" in d:
        return (d["value_text"] or "").encode()
    return json.dumps(d["value"], separators=(",", ":")).encode()


def event_corpus():
    n = 0
    for f in sorted(glob.glob(os.path.join(ROOT, "schemas/examples/input/*/*.json"))):
        data = open(f, "rb").read()
        base = os.path.basename(os.path.dirname(f)) + "-" + os.path.basename(f)[:-5]
        write("fuzz_event", base, b"\x00" + data)
        if "/valid/" in f:
            write("fuzz_event", base + "-x509", b"\x04" + data)
        n += 1
    for f in sorted(glob.glob(os.path.join(ROOT, "schemas/examples/input-binary/*/*.json"))):
        d = json.load(open(f))
        base = "bin-" + os.path.basename(os.path.dirname(f)) + "-" + os.path.basename(f)[:-5]
        msg = enc_headers(header_list(d.get("headers", {}))) + binary_value(d)
        write("fuzz_event", base, b"\x01" + msg)
        write("fuzz_event", base + "-x509", b"\x05" + msg)
        n += 1
    return n


def config_corpus():
    files = glob.glob(os.path.join(ROOT, "deploy/*.ini")) + \
        glob.glob(os.path.join(ROOT, "tests/config/*.ini")) + \
        glob.glob(os.path.join(ROOT, "tests/config/broken/*.ini"))
    for f in sorted(files):
        rel = os.path.relpath(f, ROOT).replace("/", "-")
        write("fuzz_config", rel, open(f, "rb").read())
    # file + environment overrides
    write("fuzz_config", "env-overrides",
          b"[Hooks]\nhooks_file = skeleton\n\x00WORKER_THREADS=2\x00HOOKS_ALLOW_PRE_HOOK_FAILURE=yes"
          b"\x00KAFKA_RDKAFKA_SOCKET_TIMEOUT_MS=1000\x00AUTH_REQUIRE=false")
    write("fuzz_config", "isolation",
          b"[Hooks]\nhooks_file: skeleton\n[worker]\nisolation = process\nhook_timeout_ms = 500\n"
          b"hook_rlimit_as_mb = 64\nhook_rlimit_cpu_s = 2\nhook_rlimit_nofile = 16\n"
          b"[auth]\nrequire = false\nverify_csr = yes\n")
    return len(files) + 2


def canonical(key, value, headers):
    def lp(b):
        return b"\xff\xff\xff\xff" if b is None else struct.pack(">I", len(b)) + b
    signed = sorted([(n, v) for n, v in headers
                     if n.lower().startswith("ce_") or n.lower() == "content-type"],
                    key=lambda h: h[0].encode())
    out = b"acme-hookd-hmac-v1\n" + lp(key) + lp(value) + struct.pack(">I", len(signed))
    for n, v in signed:
        out += lp(n.encode()) + lp(v)
    return out


def auth_corpus():
    k1 = b"fuzzing-key-one-0123456789abcdef"  # the key fuzz_auth.c loads as k1
    value = json.dumps({"certificate_name": "a", "order_name": "o", "csr": "MIIB"}).encode()
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"e1"), ("ce_type", b"acme.enrollment.requested"),
               ("ce_source", b"urn:x"), ("content-type", b"application/json"), ("traceparent", b"00")]
    key = b"order-1"
    mac = hmac.new(k1, canonical(key, value, headers), hashlib.sha256).digest()
    sig = b"v1;kid=k1;sig=" + base64.b64encode(mac)
    signed = headers + [("hookd-signature", sig)]
    keyenc = bytes([len(key)]) + key
    write("fuzz_auth", "valid-k1", b"\x00" + enc_headers(signed) + keyenc + value)
    write("fuzz_auth", "unsigned", b"\x00" + enc_headers(headers) + keyenc + value)
    write("fuzz_auth", "unknown-kid", b"\x00" + enc_headers(
        headers + [("hookd-signature", sig.replace(b"kid=k1", b"kid=k9"))]) + keyenc + value)
    write("fuzz_auth", "round-trip", b"\x01" + enc_headers(headers) + keyenc + value)
    write("fuzz_auth", "round-trip-null-key", b"\x01" + enc_headers(headers) + b"\xff" + value)
    write("fuzz_auth", "round-trip-null-header", b"\x01" +
          enc_headers(headers + [("ce_subject", None)]) + b"\x00" + value)
    return 6


if __name__ == "__main__":
    print("fuzz_event:", event_corpus(), "examples")
    print("fuzz_config:", config_corpus(), "files")
    print("fuzz_auth:", auth_corpus(), "messages")
