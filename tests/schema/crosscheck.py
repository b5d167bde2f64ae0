#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Schema cross-check: the C codec and a real JSON Schema validator must agree.

For every file of the input corpus (schemas/examples/input*, plus boundary
cases generated here), asks both the codec (hookd-schema-check decode) and
check-jsonschema, and requires: codec verdict == validator verdict == the
folder the file is in (valid/ or invalid/). Binary-mode files are mapped to
the structured form first, as schemas/README.md defines. The result and
dead-letter corpora are checked by the validator against their folders, and
everything the real encoder emits (hookd-schema-check emit) must validate.

Fails loudly when the validator is missing: no silent skip.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

FIELD_LIMIT = 262144  # HOOKD_DEFAULT_MAX_FIELD_BYTES, the schemas' maxLength

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def run_validator(validator, schema, files):
    """{file: (valid, reason)} for each file, one validator run for all."""
    verdicts = {f: (True, "") for f in files}
    if not files:
        return verdicts
    proc = subprocess.run([validator, "--schemafile", schema, "-o", "json", *files],
                          capture_output=True, text=True)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        sys.exit("crosscheck: validator gave no JSON report (rc=%d):\n%s\n%s"
                 % (proc.returncode, proc.stdout, proc.stderr))
    for e in report.get("errors", []):
        f = e["filename"]
        if verdicts[f][0]:
            verdicts[f] = (False, "%s: %s" % (e.get("path"), e.get("message", "")[:200]))
    for e in report.get("parse_errors", []):
        verdicts[e["filename"]] = (False, "parse error: " + e.get("message", ""))
    if proc.returncode not in (0, 1):
        sys.exit("crosscheck: validator failed (rc=%d): %s" % (proc.returncode, proc.stderr))
    if (proc.returncode == 0) != all(v for v, _ in verdicts.values()):
        sys.exit("crosscheck: validator exit status and report disagree")
    return verdicts


def run_codec(tool, files, binary):
    verdicts = {}
    if not files:
        return verdicts
    cmd = [tool, "decode"] + (["--binary"] if binary else []) + files
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("crosscheck: %s failed (rc=%d): %s" % (tool, proc.returncode, proc.stderr))
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        verdicts[parts[1]] = (parts[0] == "valid", parts[2] if len(parts) > 2 else "")
    missing = set(files) - set(verdicts)
    if missing:
        sys.exit("crosscheck: codec gave no verdict for %s" % sorted(missing))
    return verdicts


def map_binary(src, dst):
    """A binary-mode corpus file -> the document the schema validates.

    ce_X header -> attribute X (ce_data / ce_datacontenttype keep their
    header name, which no attribute name matches), content-type ->
    datacontenttype, value -> data; other headers are not part of the
    event. Without a ce_specversion header the message is not in binary
    mode and the value alone is the event.
    """
    with open(src, encoding="utf-8") as f:
        doc = json.load(f)
    headers = doc["headers"]
    raw = doc["value_text"] if "value_text" in doc else json.dumps(doc["value"])
    if "ce_specversion" in headers:
        env = {}
        for name, value in headers.items():
            if name.startswith("ce_"):
                attr = name if name in ("ce_data", "ce_datacontenttype") else name[3:]
            elif name == "content-type":
                attr = "datacontenttype"
            else:
                continue
            env[attr] = value
        text = json.dumps(env)
        text = text[:-1] + (", " if env else "") + '"data": ' + raw + "}"
    else:
        text = raw
    with open(dst, "w", encoding="utf-8") as f:
        f.write(text)


def generate_boundaries(out):
    """Cases at the field limit: too big for the repository, cheap to make."""
    base = {"type": "acme.enrollment.requested", "id": "boundary", "time": "2026-11-26T19:00:00Z",
            "certificate_name": "c", "order_name": "o", "csr": "QUJD"}
    cases = {
        "valid/name-at-limit": dict(base, certificate_name="a" * FIELD_LIMIT),
        # characters, not bytes: 262144 two-byte characters are within the limit
        "valid/name-at-limit-multibyte": dict(base, certificate_name="\u00e9" * FIELD_LIMIT),
        "valid/csr-at-limit": dict(base, csr="QUJD" * (FIELD_LIMIT // 4)),
        "invalid/name-over-limit": dict(base, certificate_name="a" * (FIELD_LIMIT + 1)),
        "invalid/name-over-limit-multibyte": dict(base, order_name="\u00e9" * (FIELD_LIMIT + 1)),
        "invalid/csr-over-limit": dict(base, csr="QUJD" * (FIELD_LIMIT // 4 + 1)),
        "invalid/id-over-limit": dict(base, id="i" * (FIELD_LIMIT + 1)),
        "invalid/ce-data-error-over-limit": {
            "specversion": "1.0", "id": "b", "source": "/s", "type": "acme.enrollment.failed",
            "time": "2026-11-26T19:00:00Z",
            "data": {"certificate_name": "c", "order_name": "o", "csr": "QUJD",
                     "error": "e" * (FIELD_LIMIT + 1)}},
        "invalid/ce-extension-over-limit": {
            "specversion": "1.0", "id": "b", "source": "/s", "type": "acme.enrollment.requested",
            "time": "2026-11-26T19:00:00Z", "traceparent": "t" * (FIELD_LIMIT + 1),
            "data": {"certificate_name": "c", "order_name": "o", "csr": "QUJD"}},
    }
    for name, doc in cases.items():
        path = os.path.join(out, name + ".json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False)


def listdir(d):
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".json"))


def check_input(args, schema, corpus_dir, binary, work):
    counted = 0
    for expect in ("valid", "invalid"):
        files = listdir(os.path.join(corpus_dir, expect))
        if not files:
            fail("%s/%s: no corpus files" % (corpus_dir, expect))
            continue
        codec = run_codec(args.tool, files, binary)
        if binary:
            mapped_dir = os.path.join(work, "mapped", os.path.basename(corpus_dir), expect)
            os.makedirs(mapped_dir, exist_ok=True)
            mapped = {}
            for f in files:
                m = os.path.join(mapped_dir, os.path.basename(f))
                map_binary(f, m)
                mapped[m] = f
            vraw = run_validator(args.validator, schema, list(mapped))
            validator = {mapped[m]: v for m, v in vraw.items()}
        else:
            validator = run_validator(args.validator, schema, files)
        for f in files:
            want = expect == "valid"
            c, v = codec[f], validator[f]
            if c[0] != want or v[0] != want:
                fail("%s: expected %s, codec says %s (%s), validator says %s (%s)"
                     % (f, expect, "valid" if c[0] else "invalid", c[1],
                        "valid" if v[0] else "invalid", v[1]))
            elif args.verbose:
                print("ok  %-8s %s%s" % (expect, f, "" if want else "  [codec: %s]" % c[1]))
            counted += 1
    return counted


def check_folder(args, schema, corpus_dir):
    n = 0
    for expect in ("valid", "invalid"):
        files = listdir(os.path.join(corpus_dir, expect))
        if not files:
            fail("%s/%s: no corpus files" % (corpus_dir, expect))
        for f, (ok, why) in run_validator(args.validator, schema, files).items():
            if ok != (expect == "valid"):
                fail("%s: expected %s, validator says %s %s" % (f, expect, ok, why))
            n += 1
    return n


def check_emitted(args, work):
    out = os.path.join(work, "emitted")
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([args.tool, "emit", out], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("crosscheck: emit failed: %s" % proc.stderr)
    wrapper = os.path.join(work, "result-headers.schema.json")
    with open(wrapper, "w") as f:
        json.dump({"$schema": "https://json-schema.org/draft/2020-12/schema",
                   "$ref": "file://" + os.path.abspath(os.path.join(args.schemas, "result-event.schema.json"))
                   + "#/$defs/headers"}, f)
    n = 0
    for sub, schema in (("result", os.path.join(args.schemas, "result-event.schema.json")),
                        ("result-headers", wrapper),
                        ("dead-letter", os.path.join(args.schemas, "dead-letter.schema.json"))):
        files = listdir(os.path.join(out, sub))
        if len(files) < 3:
            fail("emit produced only %d %s files" % (len(files), sub))
        for f, (ok, why) in run_validator(args.validator, schema, files).items():
            if not ok:
                fail("encoder output %s does not validate: %s" % (f, why))
            n += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True, help="hookd-schema-check")
    ap.add_argument("--schemas", required=True, help="the schemas/ folder")
    ap.add_argument("--validator", help="check-jsonschema (default: from $HOOKD_VENV)")
    ap.add_argument("--work", required=True, help="scratch folder")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    if not args.validator:
        venv = os.environ.get("HOOKD_VENV") or os.path.expanduser("~/.cache/acme-hookd/venv")
        args.validator = os.path.join(venv, "bin", "check-jsonschema")
    if not (os.path.isfile(args.validator) and os.access(args.validator, os.X_OK)):
        sys.exit("crosscheck: JSON Schema validator not found at %s\n"
                 "  install it with: scripts/setup-deps.sh --tests (or set HOOKD_VENV)"
                 % args.validator)
    ver = subprocess.run([args.validator, "--version"], capture_output=True, text=True)
    print("validator: %s" % ver.stdout.strip())

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    examples = os.path.join(args.schemas, "examples")
    input_schema = os.path.join(args.schemas, "input-event.schema.json")

    schemas = [os.path.join(args.schemas, s) for s in
               ("input-event.schema.json", "result-event.schema.json", "dead-letter.schema.json")]
    meta = subprocess.run([args.validator, "--check-metaschema", *schemas],
                          capture_output=True, text=True)
    if meta.returncode != 0:
        fail("schemas do not pass the 2020-12 metaschema: %s %s" % (meta.stdout, meta.stderr))

    gen = os.path.join(args.work, "generated")
    generate_boundaries(gen)
    n = check_input(args, input_schema, os.path.join(examples, "input"), False, args.work)
    n += check_input(args, input_schema, os.path.join(examples, "input-binary"), True, args.work)
    n += check_input(args, input_schema, gen, False, args.work)
    n += check_folder(args, os.path.join(args.schemas, "result-event.schema.json"),
                      os.path.join(examples, "result"))
    n += check_folder(args, os.path.join(args.schemas, "dead-letter.schema.json"),
                      os.path.join(examples, "dead-letter"))
    n += check_emitted(args, args.work)

    print("crosscheck: %d files checked, %d disagreements" % (n, len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
