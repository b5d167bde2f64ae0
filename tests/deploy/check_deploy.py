# SPDX-License-Identifier: MIT
"""Checks of deploy/: Kubernetes manifests, container file, systemd unit.

Run by ctest (label `deploy`) with the test venv's interpreter:
    python check_deploy.py --source DIR [--binary PATH --handlers DIR]

- Every manifest the kustomization lists exists and is assembled the way
  kustomize renders the base (labels, image override); every built-in kind
  validates, strictly, against the Kubernetes OpenAPI schemas shipped by
  kubernetes-validate. Where Go is installed, kustomize's own library
  renders the base too (kustomize-render/, modules from the Go proxy) and
  the two renderings must be identical.
- KEDA's kinds are CRDs that kubernetes-validate does not know: they are
  validated against the KEDA CRD schemas of the npm package
  @kubernetes-models/keda when node and that package are available (installed
  on demand into ~/.cache/acme-hookd/deploy-npm), and checked structurally
  in any case.
- The Strimzi overlays (deploy/kubernetes/overlays/strimzi/*: SCRAM-SHA-512
  and TLS client certificates) are rendered by kustomize's library (they
  use patches), then checked like the base (Kubernetes and KEDA schemas,
  cross-references, --check-config with their variables), their KafkaUser
  against the Strimzi CRD schemas of the npm package
  @kubernetes-models/strimzi-kafka-operator (installed on demand like
  KEDA's), and the wiring: the worker and KEDA read the user's credentials
  from the Secrets Strimzi makes, by the keys it writes, with the
  protocol and mechanism the user's authentication type needs.
- Cross-references: probe paths and ports match the config's [http] listen,
  the grace period exceeds [worker] shutdown_timeout_ms, maxReplicaCount <=
  the declared partition count, selectors match, the config passes
  `acme-hookd --check-config`.

Each check function returns a list of problems; the tests assert the real
files have none, and that deliberately broken copies are caught.
"""

import argparse
import configparser
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import kubernetes_validate
import yaml

ARGS = None
K8S_VERSIONS = ["1.30.0", "1.37.0"]  # oldest supported cluster we target, newest schemas
CONFIG_PATH = "/etc/acme-hookd/acme-hookd.ini"
IMAGE_HANDLER_DIR = "/usr/lib/acme-hookd"
DEFAULT_SHUTDOWN_TIMEOUT_MS = 25000  # config.h default
KEDA_NPM_DIR = os.path.expanduser(
    os.environ.get("HOOKD_DEPLOY_NPM", "~/.cache/acme-hookd/deploy-npm"))
KEDA_NPM_PACKAGE = "@kubernetes-models/keda@2.0.0"
STRIMZI_NPM_PACKAGE = "@kubernetes-models/strimzi-kafka-operator@1.0.1"


# --------------------------------------------------------------------------
# Loading and rendering

def base_dir():
    return os.path.join(ARGS.source, "deploy", "kubernetes", "base")


def load_kustomization(base):
    with open(os.path.join(base, "kustomization.yaml")) as f:
        return yaml.safe_load(f)


def render(base):
    """What `kubectl kustomize base` produces for the features the base uses.

    Returns (documents, problems). Fails on any kustomization field this
    renderer does not implement rather than ignoring it.
    """
    problems = []
    kus = load_kustomization(base)
    supported = {"apiVersion", "kind", "resources", "labels", "images", "namespace"}
    for key in kus:
        if key not in supported:
            problems.append(f"kustomization: field '{key}' not understood by this check")
    if kus.get("kind") != "Kustomization":
        problems.append("kustomization: kind must be Kustomization")
    resources = kus.get("resources") or []
    if len(set(resources)) != len(resources):
        problems.append("kustomization: a resource is listed twice")
    docs = []
    for res in resources:
        path = os.path.join(base, res)
        if not os.path.isfile(path):
            problems.append(f"kustomization: listed resource '{res}' does not exist")
            continue
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    doc["__file__"] = res
                    docs.append(doc)
    listed = set(resources)
    for name in os.listdir(base):
        if name.endswith((".yaml", ".yml")) and name != "kustomization.yaml" \
                and name not in listed:
            problems.append(f"kustomization: '{name}' is in the base but not listed")

    for entry in kus.get("labels") or []:
        for doc in docs:
            meta = doc.setdefault("metadata", {})
            meta.setdefault("labels", {}).update(entry.get("pairs", {}))
            if doc.get("kind") in ("Deployment",) and entry.get("includeTemplates", False):
                doc["spec"]["template"]["metadata"].setdefault("labels", {}).update(
                    entry.get("pairs", {}))
    for img in kus.get("images") or []:
        for doc in docs:
            for c in pod_containers(doc):
                if c.get("image", "").split(":")[0] == img["name"]:
                    c["image"] = f"{img.get('newName', img['name'])}:{img.get('newTag', 'latest')}"
    if "namespace" in kus:
        for doc in docs:
            doc["metadata"]["namespace"] = kus["namespace"]

    seen = set()
    for doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"), doc.get("metadata", {}).get("name"))
        if key in seen:
            problems.append(f"duplicate resource {key}")
        seen.add(key)
    return docs, problems


def pod_containers(doc):
    if doc.get("kind") != "Deployment":
        return []
    spec = doc["spec"]["template"]["spec"]
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


def find(docs, kind, api_prefix=None):
    out = [d for d in docs if d.get("kind") == kind
           and (api_prefix is None or d.get("apiVersion", "").startswith(api_prefix))]
    return out


def strip(doc):
    return {k: v for k, v in doc.items() if k != "__file__"}


def config_text(docs):
    cms = find(docs, "ConfigMap")
    if len(cms) != 1 or "acme-hookd.ini" not in cms[0].get("data", {}):
        return None
    return cms[0]["data"]["acme-hookd.ini"]


def parse_config(text):
    cp = configparser.ConfigParser(interpolation=None, strict=True,
                                   delimiters=("=", ":"), comment_prefixes=(";", "#"),
                                   inline_comment_prefixes=None)
    cp.optionxform = str
    cp.read_string(text)
    return cp


def input_topic(cfg):
    if cfg.has_section("kafka"):
        return cfg["kafka"].get("input_topic", "acme.enrollment")
    return "acme.enrollment"


def tier_topics(cfg):
    """The retry tier topics of [worker] retry_topics / retry_topic_names
    (worker/tiers.c: <input_topic>.retry.<delay as written> by default)."""
    w = cfg["worker"] if cfg.has_section("worker") else {}
    delays = re.split(r"[,\s]+", w.get("retry_topics", "").strip())
    delays = [d for d in delays if d]
    names = [n for n in re.split(r"[,\s]+", w.get("retry_topic_names", "").strip()) if n]
    if names:
        return names
    return [f"{input_topic(cfg)}.retry.{d}" for d in delays]


def listen_port(listen):
    m = re.fullmatch(r"(?:\[[^\]]*\]|[^:\[\]]*):(\d+)", listen or "")
    return int(m.group(1)) if m else None


def kustomize_render(base):
    """Documents rendered by kustomize itself, or (None, why not)."""
    go = shutil.which("go") or ("/usr/local/go/bin/go"
                                if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if not go:
        return None, "go not installed"
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kustomize-render")
    out = os.path.join(os.path.expanduser(os.environ.get("HOOKD_DEPLOY_CACHE",
                                                         "~/.cache/acme-hookd")),
                       "kustomize-render")
    b = subprocess.run([go, "build", "-mod=readonly", "-o", out, "."], cwd=src,
                       capture_output=True, text=True, timeout=900, check=False)
    if b.returncode != 0:
        return None, "cannot build kustomize-render: " + b.stderr.strip()[-500:]
    r = subprocess.run([out, base], capture_output=True, text=True, timeout=120, check=False)
    if r.returncode != 0:
        return [], "kustomize: " + r.stderr.strip()
    return [d for d in yaml.safe_load_all(r.stdout) if d is not None], None


def strimzi_overlays():
    """The Strimzi overlays: {name: directory}."""
    root = os.path.join(ARGS.source, "deploy", "kubernetes", "overlays", "strimzi")
    return {d: os.path.join(root, d) for d in sorted(os.listdir(root))
            if os.path.isfile(os.path.join(root, d, "kustomization.yaml"))}


def effective_config(docs):
    """The ConfigMap's config with the Deployment's literal ACME_HOOKD_KAFKA_*
    overrides applied (an empty value unsets the key), as the worker sees it."""
    cfg = parse_config(config_text(docs))
    for c in pod_containers(find(docs, "Deployment")[0]):
        for e in c.get("env", []):
            m = re.match(r"^ACME_HOOKD_KAFKA_(.+)$", e["name"])
            if not m or "value" not in e or m.group(1).endswith("__FILE"):
                continue
            key = m.group(1).lower().replace("__", ".")
            if e["value"] == "":
                cfg.remove_option("kafka", key)
            else:
                cfg.set("kafka", key, e["value"])
    return cfg


# --------------------------------------------------------------------------
# Checks: each returns a list of problem strings.

def check_schemas(docs):
    problems = []
    for doc in docs:
        api = doc.get("apiVersion", "")
        group = api.split("/")[0] if "/" in api else ""
        if "." in group and not group.endswith(".k8s.io"):
            continue  # a custom resource (keda.sh): see check_keda_*
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(strip(doc), version, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{doc['__file__']}: {doc.get('kind')} invalid for Kubernetes "
                                f"{version}: {e.message} at {'/'.join(map(str, e.path))}")
            except kubernetes_validate.SchemaNotFoundError as e:
                problems.append(f"{doc['__file__']}: no schema for {doc.get('kind')} "
                                f"{api} in {version}: {e}")
    return problems


def keda_validator():
    """Path of a node script validating KEDA kinds, or None (and why)."""
    node = shutil.which("node")
    if not node:
        return None, "node not installed"
    mod = os.path.join(KEDA_NPM_DIR, "node_modules", "@kubernetes-models", "keda")
    if not os.path.isdir(mod) and shutil.which("npm"):
        os.makedirs(KEDA_NPM_DIR, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",
                        "--prefix", KEDA_NPM_DIR, KEDA_NPM_PACKAGE],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300,
                       check=False)
    if not os.path.isdir(mod):
        return None, f"npm package {KEDA_NPM_PACKAGE} not available"
    script = os.path.join(KEDA_NPM_DIR, "validate-keda.mjs")
    with open(script, "w") as f:
        f.write("""
import * as keda from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { readFileSync } from "node:fs";
const docs = JSON.parse(readFileSync(0, "utf8"));
let bad = 0;
for (const d of docs) {
  const Model = keda[d.kind];
  if (!Model) { console.log(`${d.kind}: not a keda.sh/v1alpha1 kind`); bad++; continue; }
  try { new Model(d).validate(); }
  catch (e) { console.log(`${d.kind} ${d.metadata && d.metadata.name}: ${e.message}`); bad++; }
}
process.exit(bad ? 1 : 0);
""")
    return script, None


def npm_crd_validator(package, module, import_path, script_name):
    """Path of a node script validating the kinds of `import_path` (from the
    npm package `package`, installed on demand), or None and why not."""
    node = shutil.which("node")
    if not node:
        return None, "node not installed"
    mod = os.path.join(KEDA_NPM_DIR, "node_modules", *module.split("/"))
    if not os.path.isdir(mod) and shutil.which("npm"):
        os.makedirs(KEDA_NPM_DIR, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",
                        "--prefix", KEDA_NPM_DIR, package],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300,
                       check=False)
    if not os.path.isdir(mod):
        return None, f"npm package {package} not available"
    script = os.path.join(KEDA_NPM_DIR, script_name)
    with open(script, "w") as f:
        f.write("""
import * as models from "%s";
import { readFileSync } from "node:fs";
const docs = JSON.parse(readFileSync(0, "utf8"));
let bad = 0;
for (const d of docs) {
  const Model = models[d.kind];
  if (!Model) { console.log(`${d.kind}: not a kind of %s`); bad++; continue; }
  try { new Model(d).validate(); }
  catch (e) { console.log(`${d.kind} ${d.metadata && d.metadata.name}: ${e.message}`); bad++; }
}
process.exit(bad ? 1 : 0);
""" % (import_path, import_path))
    return script, None


def check_strimzi_schema(docs):
    """KafkaUser against the Strimzi CRD schema (npm @kubernetes-models/strimzi-kafka-operator).
    Returns (problems, why skipped or None)."""
    sdocs = [strip(d) for d in docs if d.get("apiVersion", "").startswith("kafka.strimzi.io/")]
    if not sdocs:
        return ["no Strimzi resources"], None
    problems = []
    for d in sdocs:
        if d.get("apiVersion") != "kafka.strimzi.io/v1beta2":
            problems.append(f"{d.get('kind')}: apiVersion must be kafka.strimzi.io/v1beta2")
        # The API server prunes unknown fields silently: a misspelt one
        # would just vanish. The schema does not say so; this does.
        if d.get("kind") == "KafkaUser":
            for key in d.get("spec", {}):
                if key not in ("authentication", "authorization", "quotas", "template"):
                    problems.append(f"KafkaUser: unknown spec field '{key}'")
    script, why = npm_crd_validator(STRIMZI_NPM_PACKAGE, "@kubernetes-models/strimzi-kafka-operator",
                                    "@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1beta2",
                                    "validate-strimzi.mjs")
    if script is None:
        return problems, why
    r = subprocess.run(["node", script], input=json.dumps(sdocs), capture_output=True,
                       text=True, cwd=KEDA_NPM_DIR, timeout=120, check=False)
    if r.returncode != 0:
        problems += [f"Strimzi CRD schema: {line}" for line in
                     (r.stdout + r.stderr).strip().splitlines()]
    return problems, None


# The keys of the Secrets Strimzi writes: the User Operator's per user, the
# Cluster Operator's cluster CA.
STRIMZI_USER_KEYS = {"scram-sha-512": {"password", "sasl.jaas.config"},
                     "tls": {"ca.crt", "user.crt", "user.key", "user.p12", "user.password"}}
STRIMZI_CA_KEYS = {"ca.crt", "ca.p12", "ca.password"}


def check_strimzi_wiring(docs, cfg):
    """The worker and KEDA read the credentials the KafkaUser gets, from the
    Secrets Strimzi makes, with the matching protocol and mechanism."""
    problems = []
    users = find(docs, "KafkaUser", "kafka.strimzi.io/")
    if len(users) != 1:
        return [f"expected one KafkaUser, found {len(users)}"]
    user = users[0]
    name = user["metadata"]["name"]
    cluster = user["metadata"].get("labels", {}).get("strimzi.io/cluster")
    if not cluster:
        return ["KafkaUser: no strimzi.io/cluster label (the User Operator would ignore it)"]
    auth = user.get("spec", {}).get("authentication", {}).get("type")
    if auth not in STRIMZI_USER_KEYS:
        return [f"KafkaUser: authentication {auth!r} is not scram-sha-512 or tls"]
    ca_secret = f"{cluster}-cluster-ca-cert"
    allowed = {name: STRIMZI_USER_KEYS[auth], ca_secret: STRIMZI_CA_KEYS}
    namespaces = {d.get("metadata", {}).get("namespace") for d in docs}
    if len(namespaces) != 1 or None in namespaces:
        problems.append(f"resources in namespaces {namespaces}: the pods must run where the "
                        "User Operator writes the user's Secret")

    dep = find(docs, "Deployment")[0]
    c = pod_containers(dep)[0]
    env = {e["name"]: e for e in c.get("env", [])}
    k = cfg["kafka"]

    def literal(var):
        e = env.get(var)
        return e.get("value") if e and "valueFrom" not in e else None

    def expect_file(what, path, secret, keys):
        got = secret_file(dep, path) if path else None
        if got is None:
            problems.append(f"{what}: {path} is not in a Secret volume")
        elif got[0] != secret or got[1] not in keys:
            problems.append(f"{what}: {path} is key {got[1]!r} of Secret {got[0]!r}, "
                            f"want {sorted(keys)} of {secret!r}")

    boot = k.get("bootstrap_servers", "")
    if not all(b.startswith(f"{cluster}-kafka-bootstrap") for b in boot.split(",")):
        problems.append(f"bootstrap_servers {boot!r} is not the {cluster}-kafka-bootstrap service")
    expect_file("rdkafka.ssl.ca.location", k.get("rdkafka.ssl.ca.location"), ca_secret, {"ca.crt"})
    protocol = k.get("rdkafka.security.protocol", "")
    mechanism = k.get("rdkafka.sasl.mechanism") or k.get("rdkafka.sasl.mechanisms")
    if auth == "scram-sha-512":
        if protocol != "SASL_SSL" or mechanism != "SCRAM-SHA-512":
            problems.append(f"worker: {protocol}/{mechanism} for a scram-sha-512 user "
                            "(want SASL_SSL/SCRAM-SHA-512)")
        if literal("ACME_HOOKD_KAFKA_RDKAFKA__SASL__USERNAME") != name:
            problems.append(f"worker: SASL user is not the KafkaUser's name {name!r}")
        pw = literal("ACME_HOOKD_KAFKA_RDKAFKA__SASL__PASSWORD__FILE")
        expect_file("SASL password", pw, name, {"password"})
        if "ACME_HOOKD_KAFKA_RDKAFKA__SASL__PASSWORD" in env:
            problems.append("worker: SASL password set both directly and as a file")
    else:
        # SSL: no SASL (librdkafka reads the sasl.* settings only for SASL_*).
        if protocol != "SSL":
            problems.append(f"worker: security.protocol {protocol} for a tls user (want SSL)")
        expect_file("client certificate", literal("ACME_HOOKD_KAFKA_RDKAFKA__SSL__CERTIFICATE__LOCATION")
                    or k.get("rdkafka.ssl.certificate.location"), name, {"user.crt"})
        expect_file("client key", literal("ACME_HOOKD_KAFKA_RDKAFKA__SSL__KEY__LOCATION")
                    or k.get("rdkafka.ssl.key.location"), name, {"user.key"})
        for var in env:
            if "SASL__" in var and env[var].get("value") != "":
                problems.append(f"worker: {var} set for a tls user")

    # Every Secret referenced is one Strimzi makes, by a key it writes.
    refs = []
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            refs.append(("env " + e["name"], ref.get("name"), ref.get("key")))
    for v in dep["spec"]["template"]["spec"].get("volumes", []):
        sec = v.get("secret")
        if sec:
            for it in sec.get("items") or [{"key": None}]:
                refs.append(("volume " + v["name"], sec.get("secretName"), it["key"]))
    tas = find(docs, "TriggerAuthentication", "keda.sh/")
    params = {}
    for ta in tas:
        for r in ta.get("spec", {}).get("secretTargetRef", []):
            refs.append(("KEDA " + r["parameter"], r.get("name"), r.get("key")))
            params[r["parameter"]] = (r.get("name"), r.get("key"))
        for r in ta.get("spec", {}).get("env", []):
            if r.get("containerName", c["name"]) != c["name"] or r.get("name") not in env:
                problems.append(f"KEDA {r['parameter']}: no variable {r.get('name')} in the container")
            else:
                params[r["parameter"]] = ("env", literal(r["name"]))
    for what, secret, key in refs:
        if secret not in allowed:
            problems.append(f"{what}: Secret {secret!r} is not one Strimzi makes "
                            f"({', '.join(sorted(allowed))})")
        elif key is not None and key not in allowed[secret]:
            problems.append(f"{what}: Secret {secret!r} has no key {key!r}")

    # KEDA's lag reader logs in as the same user, the same way.
    so = find(docs, "ScaledObject", "keda.sh/")
    mds = [t.get("metadata", {}) for t in so[0]["spec"]["triggers"]] if so else [{}]
    for n, md in enumerate(mds):
        if md.get("tls") != "enable":
            problems.append(f"KEDA trigger {n}: tls is not enabled")
        if not all(b.startswith(f"{cluster}-kafka-bootstrap")
                   for b in md.get("bootstrapServers", "").split(",")):
            problems.append(f"KEDA trigger {n}: bootstrapServers {md.get('bootstrapServers')!r} "
                            f"is not the {cluster}-kafka-bootstrap service")
        if auth == "scram-sha-512" and md.get("sasl") != "scram_sha512":
            problems.append(f"KEDA trigger {n}: sasl {md.get('sasl')!r}, want scram_sha512")
        if auth != "scram-sha-512" and md.get("sasl") not in (None, "none"):
            problems.append(f"KEDA trigger {n}: sasl {md.get('sasl')!r} for a tls user")
    if params.get("ca") != (ca_secret, "ca.crt"):
        problems.append(f"KEDA ca: {params.get('ca')}, want {ca_secret}/ca.crt")
    if auth == "scram-sha-512":
        if params.get("username") not in (("env", name),):
            problems.append(f"KEDA username: {params.get('username')}, want {name}")
        if params.get("password") != (name, "password"):
            problems.append(f"KEDA password: {params.get('password')}, want {name}/password")
    else:
        if params.get("cert") != (name, "user.crt") or params.get("key") != (name, "user.key"):
            problems.append(f"KEDA cert/key: {params.get('cert')}, {params.get('key')}, "
                            f"want {name}/user.crt, {name}/user.key")
    return problems


def check_keda_schema(docs):
    keda_docs = [strip(d) for d in docs if d.get("apiVersion", "").startswith("keda.sh/")]
    if not keda_docs:
        return ["no KEDA resources in the base"], None
    script, why = keda_validator()
    if not script:
        return [], why
    r = subprocess.run(["node", script], input=json.dumps(keda_docs), capture_output=True,
                       text=True, cwd=KEDA_NPM_DIR, timeout=120, check=False)
    if r.returncode != 0:
        return [f"KEDA CRD schema: {line}" for line in
                (r.stdout + r.stderr).strip().splitlines()], None
    return [], None


def check_keda_structure(docs, cfg):
    """What the CRD schema cannot say: references and bounds."""
    problems = []
    sos = find(docs, "ScaledObject", "keda.sh/")
    deps = find(docs, "Deployment")
    tas = {d["metadata"]["name"] for d in find(docs, "TriggerAuthentication", "keda.sh/")}
    cms = find(docs, "ConfigMap")
    if len(sos) != 1:
        return [f"expected one ScaledObject, found {len(sos)}"]
    so = sos[0]
    if so.get("apiVersion") != "keda.sh/v1alpha1":
        problems.append("ScaledObject: apiVersion must be keda.sh/v1alpha1")
    spec = so.get("spec", {})
    allowed = {"scaleTargetRef", "pollingInterval", "cooldownPeriod", "idleReplicaCount",
               "minReplicaCount", "maxReplicaCount", "advanced", "triggers", "fallback",
               "initialCooldownPeriod"}
    for key in spec:
        if key not in allowed:
            problems.append(f"ScaledObject: unknown spec field '{key}'")
    ref = spec.get("scaleTargetRef", {})
    if not deps or ref.get("name") != deps[0]["metadata"]["name"] \
            or ref.get("kind", "Deployment") != "Deployment":
        problems.append("ScaledObject: scaleTargetRef does not name the Deployment")
    mn, mx = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if not isinstance(mn, int) or not isinstance(mx, int) or not 1 <= mn <= mx:
        problems.append(f"ScaledObject: need 1 <= minReplicaCount ({mn}) <= maxReplicaCount ({mx})")

    ann = "acme-hookd.example.com/input-partitions"
    declared = set()
    for d in [so] + cms:
        v = d.get("metadata", {}).get("annotations", {}).get(ann)
        if v is None:
            problems.append(f"{d['kind']}: annotation {ann} missing")
        elif not str(v).isdigit():
            problems.append(f"{d['kind']}: annotation {ann} is not a number")
        else:
            declared.add(int(v))
    if len(declared) > 1:
        problems.append(f"ScaledObject and ConfigMap declare different partition counts {declared}")
    if declared and isinstance(mx, int) and mx > min(declared):
        problems.append(f"ScaledObject: maxReplicaCount {mx} exceeds the input topic's "
                        f"{min(declared)} partitions (extra workers would idle)")

    triggers = spec.get("triggers") or []
    kafka = [t for t in triggers if t.get("type") == "kafka"]
    if cfg is not None:
        # One kafka trigger per topic the group consumes: the input and
        # every retry tier ([worker] retry_topics).
        want = [input_topic(cfg)] + tier_topics(cfg)
        got = [t.get("metadata", {}).get("topic") for t in kafka]
        if sorted(got, key=str) != sorted(want):
            problems.append(f"ScaledObject: kafka triggers on {got}, want one per topic the "
                            f"group consumes {want} ([kafka] input_topic, [worker] retry_topics)")
    elif len(kafka) < 1:
        problems.append("ScaledObject: expected a kafka trigger")
    for t in kafka:
        md = t.get("metadata", {})
        for key in ("bootstrapServers", "consumerGroup", "topic", "lagThreshold"):
            if not md.get(key):
                problems.append(f"ScaledObject: kafka trigger lacks metadata.{key}")
        for key, value in md.items():
            if not isinstance(value, str):
                problems.append(f"ScaledObject: trigger metadata.{key} must be a string")
        if cfg is not None and cfg.has_section("kafka"):
            k = cfg["kafka"]
            if md.get("consumerGroup") != k.get("group_id", "acme-hookd"):
                problems.append("ScaledObject: consumerGroup differs from [kafka] group_id")
            if md.get("bootstrapServers") != k.get("bootstrap_servers"):
                problems.append("ScaledObject: bootstrapServers differs from "
                                "[kafka] bootstrap_servers")
        auth = (t.get("authenticationRef") or {}).get("name")
        if auth and auth not in tas:
            problems.append(f"ScaledObject: authenticationRef '{auth}' is not in the base")
    return problems


def check_deployment(docs, cfg):
    problems = []
    deps = find(docs, "Deployment")
    if len(deps) != 1:
        return [f"expected one Deployment, found {len(deps)}"]
    dep = deps[0]
    pod = dep["spec"]["template"]
    pspec = pod["spec"]
    containers = pspec.get("containers") or []
    if len(containers) != 1:
        return ["expected one container"]
    c = containers[0]

    sel = dep["spec"]["selector"].get("matchLabels", {})
    labels = pod["metadata"].get("labels", {})
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        problems.append("Deployment: selector does not match the pod labels")

    psc = pspec.get("securityContext", {})
    csc = c.get("securityContext", {})
    if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
        problems.append("securityContext: runAsNonRoot missing")
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    if uid is not None and uid == 0:
        problems.append("securityContext: runAsUser 0")
    if csc.get("readOnlyRootFilesystem") is not True:
        problems.append("securityContext: readOnlyRootFilesystem must be true")
    if csc.get("allowPrivilegeEscalation") is not False:
        problems.append("securityContext: allowPrivilegeEscalation must be false")
    if csc.get("privileged"):
        problems.append("securityContext: privileged")
    if (csc.get("capabilities") or {}).get("drop") != ["ALL"]:
        problems.append("securityContext: capabilities must drop ALL")
    if (csc.get("capabilities") or {}).get("add"):
        problems.append("securityContext: capabilities added")
    seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    if seccomp != "RuntimeDefault":
        problems.append("securityContext: seccompProfile must be RuntimeDefault")
    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        if "memory" not in res.get(kind, {}):
            problems.append(f"resources: {kind}.memory missing")
    if "cpu" not in res.get("requests", {}):
        problems.append("resources: requests.cpu missing")

    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}

    def resolve(port):
        return ports.get(port) if isinstance(port, str) else port

    http_port = None
    if cfg is not None:
        listen = cfg.get("http", "listen", fallback=None)
        http_port = listen_port(listen)
        if http_port is None:
            problems.append(f"config: [http] listen '{listen}' missing or without a port")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        p = c.get(probe)
        if not p or "httpGet" not in p:
            problems.append(f"{probe}: missing or not httpGet")
            continue
        if p["httpGet"].get("path") != path:
            problems.append(f"{probe}: path {p['httpGet'].get('path')} (want {path})")
        port = resolve(p["httpGet"].get("port"))
        if port is None:
            problems.append(f"{probe}: port does not resolve to a container port")
        elif http_port is not None and port != http_port:
            problems.append(f"{probe}: port {port} differs from [http] listen port {http_port}")
    if "startupProbe" in c:
        sp = c["startupProbe"].get("httpGet", {})
        if sp.get("path") != "/healthz" or resolve(sp.get("port")) != http_port:
            problems.append("startupProbe: must probe /healthz on the http port")

    ann = pod["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") == "true":
        if http_port is not None and ann.get("prometheus.io/port") != str(http_port):
            problems.append("pod annotation prometheus.io/port differs from [http] listen")
        if ann.get("prometheus.io/path", "/metrics") != "/metrics":
            problems.append("pod annotation prometheus.io/path must be /metrics")
    elif not find(docs, "ServiceMonitor"):
        problems.append("no prometheus.io/scrape annotation and no ServiceMonitor")

    grace = pspec.get("terminationGracePeriodSeconds", 30)
    shutdown = DEFAULT_SHUTDOWN_TIMEOUT_MS
    if cfg is not None:
        shutdown = cfg.getint("worker", "shutdown_timeout_ms", fallback=shutdown)
    if grace * 1000 <= shutdown:
        problems.append(f"terminationGracePeriodSeconds {grace} s is not above "
                        f"shutdown_timeout_ms {shutdown}")

    # The config: mounted where the container is told to read it.
    args = c.get("args", [])
    if CONFIG_PATH not in args:
        problems.append(f"container args do not point at {CONFIG_PATH}")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pspec.get("volumes", [])}
    m = mounts.get(CONFIG_PATH) or mounts.get(os.path.dirname(CONFIG_PATH))
    cms = {d["metadata"]["name"] for d in find(docs, "ConfigMap")}
    if not m or "configMap" not in vols.get(m["name"], {}) \
            or vols[m["name"]]["configMap"]["name"] not in cms:
        problems.append("the config is not mounted from the base's ConfigMap")
    for mount in c.get("volumeMounts", []):
        if mount["name"] not in vols:
            problems.append(f"volumeMount '{mount['name']}' has no volume")
    if csc.get("readOnlyRootFilesystem") and "/tmp" not in mounts:
        problems.append("read-only root filesystem without a writable /tmp")

    # Secrets: the credentials come from Secrets, as environment references
    # or as files (a *__FILE variable, a client certificate's location) in a
    # Secret volume; none in the ConfigMap, no literal in the Deployment.
    secret_env = [e for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
    file_env = [e for e in c.get("env", []) if "value" in e and
                re.search(r"(__FILE|SSL__(CERTIFICATE|KEY|KEYSTORE)__LOCATION)$", e["name"])]
    password = any(re.search(r"SASL_+PASSWORD$", e["name"]) for e in secret_env) or \
        any(re.search(r"SASL_+PASSWORD__FILE$", e["name"]) for e in file_env)
    client_cert = any(re.search(r"SSL__(KEY|KEYSTORE)__LOCATION$", e["name"]) for e in file_env)
    if not password and not client_cert:
        problems.append("no SASL password from a Secret reference in the environment "
                        "or a Secret file, and no client certificate")
    for e in c.get("env", []):
        if re.search(r"PASSWORD|SECRET|KEY$", e["name"]) and "value" in e \
                and not e["name"].endswith("__FILE"):
            problems.append(f"env {e['name']} carries a literal value")
    for e in file_env:
        if secret_file(dep, e["value"]) is None:
            problems.append(f"env {e['name']}: {e['value']} is not in a Secret volume")
    if not any("secret" in v for v in vols.values()):
        problems.append("no Secret volume for the TLS material")
    return problems


def secret_file(dep, path):
    """(Secret name, key) of the file `path` in the pod, when a Secret volume
    provides it; None otherwise."""
    pspec = dep["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pspec.get("volumes", [])}
    for c in pspec.get("containers", []):
        for m in c.get("volumeMounts", []):
            sec = vols.get(m["name"], {}).get("secret")
            base = m["mountPath"].rstrip("/") + "/"
            if not sec or not path.startswith(base) or "subPath" in m:
                continue
            rel = path[len(base):]
            items = sec.get("items")
            if items is None:
                return (sec.get("secretName"), rel)
            for it in items:
                if it.get("path") == rel:
                    return (sec.get("secretName"), it.get("key"))
    return None


def check_config_has_no_secrets(cfg):
    problems = []
    for section in cfg.sections():
        for key, value in cfg[section].items():
            if re.search(r"password|secret", key, re.I) and value.strip():
                problems.append(f"config: [{section}] {key} has a value in the ConfigMap")
    return problems


def check_service_pdb(docs):
    problems = []
    dep = find(docs, "Deployment")[0]
    labels = dep["spec"]["template"]["metadata"].get("labels", {})
    ports = {p.get("name"): p["containerPort"]
             for p in dep["spec"]["template"]["spec"]["containers"][0].get("ports", [])}
    for svc in find(docs, "Service"):
        sel = svc["spec"].get("selector", {})
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            problems.append(f"Service {svc['metadata']['name']}: selector matches no pod")
        for p in svc["spec"].get("ports", []):
            tp = p.get("targetPort", p["port"])
            if (isinstance(tp, str) and tp not in ports) or \
                    (isinstance(tp, int) and tp not in ports.values()):
                problems.append(f"Service: targetPort {tp} is not a container port")
    pdbs = find(docs, "PodDisruptionBudget")
    if len(pdbs) != 1:
        problems.append("expected one PodDisruptionBudget")
    for pdb in pdbs:
        sel = pdb["spec"].get("selector", {}).get("matchLabels", {})
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            problems.append("PodDisruptionBudget: selector matches no pod")
    return problems


def deployment_env_names(docs):
    """The ACME_HOOKD_* variables the Deployment sets (values come from the cluster)."""
    names = []
    for c in pod_containers(find(docs, "Deployment")[0]):
        names += [e["name"] for e in c.get("env", []) if e["name"].startswith("ACME_HOOKD_")]
    return names


def check_config_with_binary(text, env_names=()):
    """`acme-hookd --check-config` on the ConfigMap's config.

    The image keeps the bundled handler files in /usr/lib/acme-hookd; here
    they come from the build tree, so that one path prefix is rewritten.
    The Deployment's ACME_HOOKD_* variables are set to stand-in values, so
    a variable naming no config key fails the check as it would in the pod.
    """
    if not ARGS.binary or not os.access(ARGS.binary, os.X_OK):
        return None
    if ARGS.handlers:
        text = text.replace(IMAGE_HANDLER_DIR + "/", ARGS.handlers.rstrip("/") + "/")
    # The CA file is mounted from a Secret in the pod; point at a stand-in.
    with tempfile.TemporaryDirectory() as tmp:
        ca = os.path.join(tmp, "ca.crt")
        with open(ca, "w") as f:
            f.write("")
        text = text.replace("/etc/acme-hookd/tls/ca.crt", ca)
        path = os.path.join(tmp, "acme-hookd.ini")
        with open(path, "w") as f:
            f.write(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACME_HOOKD_")}
        for name in env_names:
            env[name] = "stand-in-" + name.lower()
        r = subprocess.run([ARGS.binary, "--check-config", path], capture_output=True,
                           text=True, timeout=60, env=env, check=False)
        return r


def containerfile_stages(text):
    stages = []
    for line in text.splitlines():
        if re.match(r"^\s*FROM\s", line, re.I):
            stages.append([line])
        elif stages:
            stages[-1].append(line)
    return ["\n".join(s) for s in stages]


def package_list(name):
    """deploy/<name>: its lines without comments, split into columns."""
    with open(os.path.join(ARGS.source, "deploy", name)) as f:
        return [l.split("#", 1)[0].split() for l in f if l.split("#", 1)[0].strip()]


def expand_package_lists(stage, lists):
    """A stage's text with the package lists it bind-mounts written out, as
    the RUN line installs them: deploy/build-packages.txt whole,
    deploy/runtime-packages.txt's lines of the images the stage selects
    (every release: the names of all of them are checked)."""
    extra = []
    if "source=deploy/build-packages.txt" in stage:
        extra += [c[0] for c in lists["build-packages.txt"]]
    if "source=deploy/runtime-packages.txt" in stage:
        images = [i for i in ("runtime", "python") if f'$3 == "{i}"' in stage]
        extra += [c[0] for c in lists["runtime-packages.txt"] if len(c) == 3 and c[2] in images]
    return stage + ("\n# installs: " + " ".join(extra) if extra else "")


def check_containerfile(text, lists=None):
    problems = []
    lists = lists or {n: package_list(n) for n in ("build-packages.txt", "runtime-packages.txt")}
    stages = [expand_package_lists(s, lists)
              for s in containerfile_stages(text.replace("\\\n", " "))]
    if len(stages) < 2:
        return ["Containerfile: not multi-stage"]
    build, runtime = stages[0], stages[-1]
    if "-dev" not in build:
        problems.append("Containerfile: build stage installs no -dev packages")
    if "-slim" not in runtime.splitlines()[0]:
        problems.append("Containerfile: runtime stage is not a slim image")
    if re.search(r"\S+-dev\b", runtime):
        problems.append("Containerfile: runtime stage installs -dev packages")
    for lib in ("librdkafka1", "libcjson1", "libssl3", "libinih1", "libmicrohttpd12"):
        if lib not in runtime:
            problems.append(f"Containerfile: runtime lacks {lib}")
    for tool in ("build-essential", "cmake", "gcc", "ninja-build"):
        if re.search(rf"\b{tool}\b", runtime.split("COPY")[0]):
            problems.append(f"Containerfile: runtime installs {tool}")
    users = re.findall(r"^\s*USER\s+(\S+)", runtime, re.M)
    if not users or users[-1].split(":")[0] in ("0", "root"):
        problems.append("Containerfile: runtime does not switch to a non-root USER")
    elif not users[-1].split(":")[0].isdigit():
        problems.append("Containerfile: USER should be numeric (runAsNonRoot can verify it)")
    ep = re.findall(r"^\s*ENTRYPOINT\s+(.*)$", runtime, re.M)
    if not ep:
        problems.append("Containerfile: no ENTRYPOINT")
    else:
        try:
            form = json.loads(ep[-1])
            if not isinstance(form, list) or form[0] in ("/bin/sh", "sh", "/bin/bash"):
                problems.append("Containerfile: ENTRYPOINT runs a shell")
        except json.JSONDecodeError:
            problems.append("Containerfile: ENTRYPOINT is not in exec (JSON) form")
    cmd = re.findall(r"^\s*CMD\s+(.*)$", runtime, re.M)
    if not cmd or CONFIG_PATH not in cmd[-1]:
        problems.append(f"Containerfile: CMD does not read {CONFIG_PATH}")
    if not re.search(rf"COPY\s+--from=\S+\s+\S*acme-hookd/?\s+{IMAGE_HANDLER_DIR}/?", runtime):
        problems.append(f"Containerfile: bundled handlers not copied to {IMAGE_HANDLER_DIR}")
    if re.search(r"COPY\s+\S*\.ini\s", runtime):
        problems.append("Containerfile: a config file is baked into the image")
    return problems


def check_systemd(text, shutdown_ms):
    problems = []
    cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",),
                                   comment_prefixes=("#", ";"))
    cp.optionxform = str
    cp.read_string(text)
    svc = cp["Service"] if cp.has_section("Service") else {}
    want = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "Restart": "on-failure"}
    for k, v in want.items():
        if svc.get(k) != v:
            problems.append(f"systemd: {k}={svc.get(k)} (want {v})")
    if svc.get("DynamicUser") != "yes" and not svc.get("User"):
        problems.append("systemd: runs as root (no DynamicUser=yes nor User=)")
    m = re.fullmatch(r"(\d+)(s|min)?", svc.get("TimeoutStopSec", ""))
    if not m:
        problems.append("systemd: TimeoutStopSec missing")
    else:
        secs = int(m.group(1)) * (60 if m.group(2) == "min" else 1)
        if secs * 1000 <= shutdown_ms:
            problems.append(f"systemd: TimeoutStopSec {secs}s not above shutdown {shutdown_ms} ms")
    if "--config" not in svc.get("ExecStart", "") and " -c " not in svc.get("ExecStart", ""):
        problems.append("systemd: ExecStart does not pass --config")
    return problems


# --------------------------------------------------------------------------
# Tests

class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs, cls.render_problems = render(base_dir())
        text = config_text(cls.docs)
        cls.config_text = text
        cls.cfg = parse_config(text) if text else None

    def mutated(self):
        return copy.deepcopy(self.docs)


class TestRender(Base):
    def test_kustomization_renders(self):
        self.assertEqual(self.render_problems, [])
        kinds = sorted(d["kind"] for d in self.docs)
        for kind in ("ConfigMap", "Deployment", "PodDisruptionBudget", "ScaledObject",
                     "Service"):
            self.assertIn(kind, kinds)
        for d in self.docs:
            self.assertEqual(d["metadata"]["labels"]["app.kubernetes.io/name"], "acme-hookd")
        dep = find(self.docs, "Deployment")[0]
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        self.assertRegex(image, r"^[^:]+/acme-hookd:\S+$", "image override applied")

    def test_kustomize_renders_the_same(self):
        real, why = kustomize_render(base_dir())
        if real is None:
            self.skipTest(f"kustomize library unavailable ({why})")
        self.assertIsNone(why)
        key = lambda d: (d["apiVersion"], d["kind"], d["metadata"]["name"])
        mine = {key(d): strip(d) for d in self.docs}
        theirs = {key(d): d for d in real}
        self.assertEqual(sorted(mine), sorted(theirs))
        for k in mine:
            self.assertEqual(mine[k], theirs[k], k)
        # The schemas hold for kustomize's output as well.
        for d in real:
            d["__file__"] = "kustomize output"
        self.assertEqual(check_schemas(real), [])

    def test_missing_resource_is_reported(self):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(base_dir(), tmp, dirs_exist_ok=True)
            os.remove(os.path.join(tmp, "service.yaml"))
            _, problems = render(tmp)
            self.assertTrue(any("service.yaml" in p for p in problems), problems)

    def test_config_present(self):
        self.assertIsNotNone(self.cfg, "ConfigMap lacks acme-hookd.ini")


class TestSchemas(Base):
    def test_builtin_kinds_validate(self):
        self.assertEqual(check_schemas(self.docs), [])

    def test_invalid_manifest_is_rejected(self):
        docs = self.mutated()
        dep = find(docs, "Deployment")[0]
        dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
        svc = find(docs, "Service")[0]
        svc["spec"]["bogusField"] = 1
        problems = check_schemas(docs)
        self.assertTrue(any("Deployment" in p for p in problems), problems)
        self.assertTrue(any("Service" in p for p in problems), problems)

    def test_keda_crd_schema(self):
        problems, skipped = check_keda_schema(self.docs)
        if skipped:
            self.skipTest(f"KEDA CRD schema not available ({skipped}); "
                          "structure checked by TestCrossReferences")
        self.assertEqual(problems, [])
        docs = self.mutated()
        so = find(docs, "ScaledObject")[0]
        so["spec"]["maxReplicaCount"] = "many"
        del so["spec"]["triggers"][0]["type"]
        bad, _ = check_keda_schema(docs)
        self.assertTrue(any("maxReplicaCount" in p for p in bad), bad)
        self.assertTrue(any("type" in p for p in bad), bad)


class TestCrossReferences(Base):
    def test_real_manifests(self):
        self.assertEqual(check_keda_structure(self.docs, self.cfg), [])
        self.assertEqual(check_deployment(self.docs, self.cfg), [])
        self.assertEqual(check_service_pdb(self.docs), [])
        self.assertEqual(check_config_has_no_secrets(self.cfg), [])

    def test_max_replicas_above_partitions(self):
        docs = self.mutated()
        find(docs, "ScaledObject")[0]["spec"]["maxReplicaCount"] = 13
        problems = check_keda_structure(docs, self.cfg)
        self.assertTrue(any("exceeds" in p for p in problems), problems)

    def test_partition_declarations_disagree(self):
        docs = self.mutated()
        find(docs, "ConfigMap")[0]["metadata"]["annotations"][
            "acme-hookd.example.com/input-partitions"] = "6"
        problems = check_keda_structure(docs, self.cfg)
        self.assertTrue(any("different partition counts" in p for p in problems), problems)

    def test_every_retry_tier_has_a_trigger(self):
        docs = self.mutated()
        triggers = find(docs, "ScaledObject")[0]["spec"]["triggers"]
        self.assertIn("acme.enrollment.retry.10m", [t["metadata"]["topic"] for t in triggers])
        del triggers[-1]
        problems = check_keda_structure(docs, self.cfg)
        self.assertTrue(any("one per topic" in p for p in problems), problems)
        # a configuration without tiers wants the input's trigger only
        cfg = parse_config(self.config_text.replace("retry_topics = 10s,1m,10m", ""))
        problems = check_keda_structure(self.docs, cfg)
        self.assertTrue(any("one per topic" in p for p in problems), problems)
        self.assertEqual(tier_topics(cfg), [])

    def test_trigger_group_must_match_config(self):
        docs = self.mutated()
        find(docs, "ScaledObject")[0]["spec"]["triggers"][0]["metadata"]["consumerGroup"] = "x"
        problems = check_keda_structure(docs, self.cfg)
        self.assertTrue(any("consumerGroup" in p for p in problems), problems)

    def test_grace_period_not_above_shutdown(self):
        docs = self.mutated()
        shutdown = self.cfg.getint("worker", "shutdown_timeout_ms",
                                   fallback=DEFAULT_SHUTDOWN_TIMEOUT_MS)
        find(docs, "Deployment")[0]["spec"]["template"]["spec"][
            "terminationGracePeriodSeconds"] = shutdown // 1000
        problems = check_deployment(docs, self.cfg)
        self.assertTrue(any("terminationGracePeriodSeconds" in p for p in problems), problems)

    def test_probe_port_must_match_listen(self):
        cfg = parse_config(self.config_text.replace("listen = :8080", "listen = :9999"))
        problems = check_deployment(self.docs, cfg)
        self.assertTrue(any("livenessProbe" in p and "9999" in p for p in problems), problems)
        self.assertTrue(any("readinessProbe" in p for p in problems), problems)
        docs = self.mutated()
        c = find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
        c["readinessProbe"]["httpGet"]["path"] = "/healthz"
        problems = check_deployment(docs, self.cfg)
        self.assertTrue(any("readinessProbe: path" in p for p in problems), problems)

    def test_security_context_weakened(self):
        docs = self.mutated()
        c = find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
        c["securityContext"]["readOnlyRootFilesystem"] = False
        c["securityContext"]["capabilities"]["drop"] = ["NET_RAW"]
        del c["securityContext"]["allowPrivilegeEscalation"]
        problems = check_deployment(docs, self.cfg)
        for word in ("readOnlyRootFilesystem", "drop ALL", "allowPrivilegeEscalation"):
            self.assertTrue(any(word in p for p in problems), (word, problems))

    def test_secret_literal_is_caught(self):
        docs = self.mutated()
        c = find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
        c["env"] = [e for e in c["env"] if "SASL__PASSWORD" not in e["name"]]
        c["env"].append({"name": "ACME_HOOKD_KAFKA_RDKAFKA__SASL__PASSWORD",
                         "value": "hunter2"})
        problems = check_deployment(docs, self.cfg)
        self.assertTrue(any("literal" in p for p in problems), problems)
        self.assertTrue(any("no SASL password" in p for p in problems), problems)
        cfg = parse_config(self.config_text + "\n[extra]\nsasl.password = hunter2\n")
        self.assertTrue(check_config_has_no_secrets(cfg))

    def test_service_selector(self):
        docs = self.mutated()
        find(docs, "Service")[0]["spec"]["selector"] = {"app": "other"}
        find(docs, "PodDisruptionBudget")[0]["spec"]["selector"]["matchLabels"] = {"x": "y"}
        problems = check_service_pdb(docs)
        self.assertEqual(len(problems), 2, problems)


class TestConfigWithBinary(Base):
    def test_check_config_accepts_configmap(self):
        names = deployment_env_names(self.docs)
        self.assertTrue(any("SASL__PASSWORD" in n for n in names), names)
        r = check_config_with_binary(self.config_text, names)
        if r is None:
            self.skipTest("acme-hookd binary not built")
        self.assertEqual(r.returncode, 0, f"--check-config failed:\n{r.stdout}\n{r.stderr}")
        for name in names:
            if re.search(r"PASSWORD|SECRET|KEY", name):
                self.assertNotIn("stand-in-" + name.lower(), r.stdout + r.stderr,
                                 f"{name}'s value was printed")

    def test_check_config_rejects_misnamed_env(self):
        r = check_config_with_binary(self.config_text,
                                     ["ACME_HOOKD_KAFKA_RDKAFKA_SASL_PASSWORD"])
        if r is None:
            self.skipTest("acme-hookd binary not built")
        self.assertNotEqual(r.returncode, 0, "a misspelled override was accepted")

    def test_check_config_rejects_broken_config(self):
        r = check_config_with_binary(self.config_text.replace("[worker]",
                                                              "[worker]\nno_such_key = 1"))
        if r is None:
            self.skipTest("acme-hookd binary not built")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no_such_key", r.stdout + r.stderr)


class TestContainerfile(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ARGS.source, "deploy", "Containerfile")) as f:
            self.text = f.read()

    def test_real(self):
        self.assertEqual(check_containerfile(self.text), [])

    def test_shell_entrypoint_and_root(self):
        bad = self.text.replace('ENTRYPOINT ["/usr/bin/acme-hookd"]',
                                "ENTRYPOINT /usr/bin/acme-hookd").replace("USER 10001:10001",
                                                                          "USER root")
        problems = check_containerfile(bad)
        self.assertTrue(any("exec (JSON) form" in p for p in problems), problems)
        self.assertTrue(any("non-root" in p for p in problems), problems)

    def test_dev_package_in_runtime(self):
        lists = {n: package_list(n) for n in ("build-packages.txt", "runtime-packages.txt")}
        lists["runtime-packages.txt"] = [["librdkafka-dev", "any", "runtime"] if c[0] == "librdkafka1"
                                         else c for c in lists["runtime-packages.txt"]]
        problems = check_containerfile(self.text, lists)
        self.assertTrue(any("-dev" in p for p in problems), problems)
        self.assertTrue(any("lacks librdkafka1" in p for p in problems), problems)

    def test_package_lists_not_read(self):
        bad = self.text.replace("source=deploy/build-packages.txt", "source=deploy/other.txt") \
                       .replace("source=deploy/runtime-packages.txt", "source=deploy/other.txt")
        problems = check_containerfile(bad)
        self.assertTrue(any("no -dev packages" in p for p in problems), problems)
        self.assertTrue(any("lacks librdkafka1" in p for p in problems), problems)

    def test_copied_paths_exist(self):
        """Every COPY source of the build stage is a file or a non-empty directory
        (git keeps no empty directory: a fresh clone would not have it)."""
        for line in self.text.splitlines():
            m = re.match(r"^COPY\s+(?!--)(\S+)\s+\S+$", line)
            if m:
                path = os.path.join(ARGS.source, m.group(1))
                self.assertTrue(os.path.exists(path), m.group(1))
                if os.path.isdir(path):
                    files = [f for _, _, fs in os.walk(path) for f in fs]
                    self.assertTrue(files, f"{m.group(1)} is empty")

    def test_build_inputs_are_copied(self):
        """What the top-level CMakeLists.txt builds from is copied into the build stage."""
        with open(os.path.join(ARGS.source, "CMakeLists.txt")) as f:
            cml = f.read()
        needed = set(re.findall(r"add_subdirectory\((\w+)\)", cml)) - {"tests"}
        needed |= {m.split("/")[0] for m in re.findall(r"include\((\w+/[^)]+)\)", cml)}
        copied = {m.rstrip("/") for m in re.findall(r"^COPY\s+(?!--)(\S+)\s+\S+$", self.text,
                                                    re.M)}
        self.assertEqual(needed - copied, set())


class TestSystemd(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ARGS.source, "deploy", "systemd", "acme-hookd.service")) as f:
            self.text = f.read()
        self.shutdown = DEFAULT_SHUTDOWN_TIMEOUT_MS
        ini = os.path.join(ARGS.source, "deploy", "acme-hookd.ini")
        if os.path.exists(ini):
            with open(ini) as f:
                cfg = parse_config(f.read())
            self.shutdown = cfg.getint("worker", "shutdown_timeout_ms", fallback=self.shutdown)

    def test_real(self):
        self.assertEqual(check_systemd(self.text, self.shutdown), [])

    def test_weakened(self):
        bad = self.text.replace("TimeoutStopSec=40s", "TimeoutStopSec=10s") \
            .replace("ProtectSystem=strict", "ProtectSystem=full")
        problems = check_systemd(bad, self.shutdown)
        self.assertEqual(len(problems), 2, problems)

    def test_systemd_analyze(self):
        exe = shutil.which("systemd-analyze")
        if not exe:
            self.skipTest("systemd-analyze not installed")
        r = subprocess.run([exe, "verify", os.path.join(ARGS.source, "deploy", "systemd",
                                                         "acme-hookd.service")],
                           capture_output=True, text=True, check=False)
        # The binary is not installed on the build host; everything else must be clean.
        lines = [l for l in (r.stdout + r.stderr).splitlines()
                 if l.strip() and "is not executable" not in l]
        self.assertEqual(lines, [])


class TestStrimziOverlays(unittest.TestCase):
    """deploy/kubernetes/overlays/strimzi/*: rendered by kustomize itself
    (the overlays use patches, which the base's renderer does not do), then
    the base's checks on the result, the Strimzi CRD schema, and the wiring
    of the KafkaUser's Secrets to the worker's keys and KEDA."""

    @classmethod
    def setUpClass(cls):
        cls.rendered = {}
        cls.why = None
        for name, path in strimzi_overlays().items():
            docs, why = kustomize_render(path)
            if docs is None:
                cls.why = why
                return
            if why:
                raise AssertionError(f"overlay {name}: {why}")
            for d in docs:
                d["__file__"] = f"overlays/strimzi/{name}"
            cls.rendered[name] = docs

    def setUp(self):
        if self.why:
            self.skipTest(f"kustomize library unavailable ({self.why})")

    def overlay(self, name):
        return copy.deepcopy(self.rendered[name])

    def test_both_authentications(self):
        self.assertEqual(sorted(self.rendered), ["scram-sha-512", "tls"])
        for name, docs in self.rendered.items():
            user = find(docs, "KafkaUser", "kafka.strimzi.io/")
            self.assertEqual(len(user), 1, name)
            self.assertEqual(user[0]["spec"]["authentication"]["type"], name)

    def test_schemas(self):
        for name, docs in self.rendered.items():
            self.assertEqual(check_schemas(docs), [], name)
            problems, skipped = check_keda_schema(docs)
            if not skipped:
                self.assertEqual(problems, [], name)
            problems, skipped = check_strimzi_schema(docs)
            if skipped:
                self.skipTest(f"Strimzi CRD schema not available ({skipped})")
            self.assertEqual(problems, [], name)

    def test_strimzi_schema_can_fail(self):
        docs = self.overlay("tls")
        user = find(docs, "KafkaUser", "kafka.strimzi.io/")[0]
        user["spec"]["authentication"]["type"] = "mtls"
        user["spec"]["authorization"]["acls"][0]["operations"] = ["Reed"]
        user["spec"]["authenticaton"] = {}
        problems, skipped = check_strimzi_schema(docs)
        if skipped:
            self.skipTest(f"Strimzi CRD schema not available ({skipped})")
        for word in ("authentication/type", "operations/0", "authenticaton"):
            self.assertTrue(any(word in p for p in problems), (word, problems))

    def test_cross_references(self):
        for name, docs in self.rendered.items():
            cfg = effective_config(docs)
            self.assertEqual(check_keda_structure(docs, cfg), [], name)
            self.assertEqual(check_deployment(docs, cfg), [], name)
            self.assertEqual(check_service_pdb(docs), [], name)
            self.assertEqual(check_config_has_no_secrets(cfg), [], name)
            self.assertEqual(check_strimzi_wiring(docs, cfg), [], name)

    def test_wiring_mistakes_are_caught(self):
        docs = self.overlay("scram-sha-512")
        dep = find(docs, "Deployment")[0]
        vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        vols["kafka-user"]["secret"]["secretName"] = "acme-hookd-kafka"
        c = pod_containers(dep)[0]
        for e in c["env"]:
            if e["name"] == "ACME_HOOKD_KAFKA_RDKAFKA__SASL__USERNAME":
                e["value"] = "someone-else"
        problems = check_strimzi_wiring(docs, effective_config(docs))
        self.assertTrue(any("SASL password" in p and "acme-hookd-kafka" in p for p in problems), problems)
        self.assertTrue(any("SASL user" in p for p in problems), problems)
        self.assertTrue(any("KEDA username" in p for p in problems), problems)

        docs = self.overlay("tls")
        dep = find(docs, "Deployment")[0]
        c = pod_containers(dep)[0]
        c["env"] = [e for e in c["env"] if e["name"] != "ACME_HOOKD_KAFKA_RDKAFKA__SECURITY__PROTOCOL"]
        vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        vols["kafka-user"]["secret"]["items"][1]["key"] = "user.p12"
        vols["tls"]["secret"]["secretName"] = "acme-hookd-tls"
        find(docs, "KafkaUser", "kafka.strimzi.io/")[0]["spec"]["authentication"]["type"] = "tls"
        problems = check_strimzi_wiring(docs, effective_config(docs))
        self.assertTrue(any("for a tls user" in p for p in problems), problems)
        self.assertTrue(any("client key" in p for p in problems), problems)
        self.assertTrue(any("acme-hookd-tls" in p and "not one Strimzi makes" in p for p in problems),
                        problems)

    def test_check_config_accepts_overlay(self):
        """The worker's --check-config on the overlay's config and variables:
        literal values as written, __FILE variables reading stand-in files."""
        if not ARGS.binary or not os.access(ARGS.binary, os.X_OK):
            self.skipTest("acme-hookd binary not built")
        for name, docs in self.rendered.items():
            text = config_text(docs)
            if ARGS.handlers:
                text = text.replace(IMAGE_HANDLER_DIR + "/", ARGS.handlers.rstrip("/") + "/")
            with tempfile.TemporaryDirectory() as tmp:
                env = {k: v for k, v in os.environ.items() if not k.startswith("ACME_HOOKD_")}
                files = {}
                for c in pod_containers(find(docs, "Deployment")[0]):
                    for e in c.get("env", []):
                        if not e["name"].startswith("ACME_HOOKD_"):
                            continue
                        if "value" not in e:
                            env[e["name"]] = "stand-in-" + e["name"].lower()
                        elif e["value"].startswith("/etc/acme-hookd/"):
                            # A mounted Secret file: a stand-in file here.
                            path = os.path.join(tmp, os.path.basename(e["value"]))
                            with open(path, "w") as f:
                                f.write("stand-in-secret\n")
                            files[e["value"]] = path
                            env[e["name"]] = path
                        else:
                            env[e["name"]] = e["value"]
                ca = os.path.join(tmp, "ca.crt")
                open(ca, "w").close()
                text = text.replace("/etc/acme-hookd/tls/ca.crt", ca)
                path = os.path.join(tmp, "acme-hookd.ini")
                with open(path, "w") as f:
                    f.write(text)
                r = subprocess.run([ARGS.binary, "--check-config", path], capture_output=True,
                                   text=True, timeout=60, env=env, check=False)
                self.assertEqual(r.returncode, 0, f"{name}: --check-config failed:\n{r.stdout}\n{r.stderr}")
                self.assertNotIn("stand-in-secret", r.stdout + r.stderr, f"{name}: a secret was printed")
                self.assertTrue(files or name == "tls", name)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--binary")
    ap.add_argument("--handlers")
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
