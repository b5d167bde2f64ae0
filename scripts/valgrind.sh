#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the unit, integration and python-handler tests once under valgrind
# memcheck and fails on any memory error or definite leak in any process
# they start.
#
#   scripts/valgrind.sh [ctest -R regex]
#
# Environment:
#   VALGRIND_BUILD_DIR  build directory (default ${TMPDIR:-/tmp}/acme-hookd-build-valgrind)
#   VALGRIND_LABELS     ctest label regex (default "unit|integration|python")
#   VALGRIND_EXCLUDE    ctest label regex of tests left out (default
#                       "valgrind_excluded": python.a2c_modules, see
#                       tests/python/CMakeLists.txt for why)
#   VALGRIND_SCALE      slow-down factor for test timeouts and test deadlines (default 20)
#   VALGRIND_JOBS       ninja parallelism (default 2)
#   VALGRIND_TRACK_ORIGINS  yes: where uninitialised values come from (slower;
#                       default no, the errors found are the same)
#
# Each test's command (as ctest lists it) runs under valgrind with
# --trace-children=yes, so the acme-hookd process an integration test
# starts is checked too, and forked children (Criterion's test workers,
# isolated handler processes) are followed. Every process writes its own
# log, $VALGRIND_BUILD_DIR/valgrind-logs/<test>.<pid>.log; a log whose
# ERROR SUMMARY is not 0 fails the run (definite leaks count as errors).
# Suppressions are in tests/valgrind.supp, dependencies only, each justified.
#
# The python handler embeds CPython: PYTHONMALLOC=malloc makes the
# interpreter allocate every object with malloc, so memcheck sees each one
# (pymalloc's arenas would hide them, and its address_in_range() reads
# memory memcheck calls uninitialised; CPython's Misc/README.valgrind).
# Tests that set up a fixture (FIXTURES_SETUP: the python tests' venv) run
# first and natively: they prepare the environment, they are not our code.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${VALGRIND_BUILD_DIR:-${TMPDIR:-/tmp}/acme-hookd-build-valgrind}
labels=${VALGRIND_LABELS:-unit|integration|python}
exclude=${VALGRIND_EXCLUDE-valgrind_excluded}
scale=${VALGRIND_SCALE:-20}
jobs=${VALGRIND_JOBS:-2}
filter=${1:-}

command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }
# The default build directory is shared by every checkout on the machine:
# one configured from another source tree is started afresh.
if [ -f "$build/CMakeCache.txt" ] &&
   ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$here" "$build/CMakeCache.txt"; then
  rm -rf "$build"
fi
# memcheck replaces malloc in libc: the daemon keeps glibc's allocator here
(cd "$here" && cmake --preset valgrind -B "$build" >/dev/null)
ninja -C "$build" -j "$jobs"

logs="$build/valgrind-logs"
rm -rf "$logs"
mkdir -p "$logs"
# a test may drop privileges (the isolation fork-bomb test runs as an unused
# uid): its processes must still be able to write their logs
chmod 1777 "$logs"
cd "$build"
args=(-L "$labels")
[ -n "$exclude" ] && args+=(-LE "$exclude")
[ -n "$filter" ] && args+=(-R "$filter")
ctest --show-only=json-v1 "${args[@]}" >"$build/valgrind-tests.json"

export HOOKD_TEST_TIME_SCALE=$scale
export PYTHONMALLOC=malloc
exec python3 - "$build/valgrind-tests.json" "$logs" "$scale" "$here/tests/valgrind.supp" <<'PY'
import json, os, re, subprocess, sys, time

tests_json, logs, scale, supp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
tests = json.load(open(tests_json))["tests"]
vg = ["valgrind", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite",
      "--errors-for-leak-kinds=definite", "--error-exitcode=97", "--num-callers=40",
      # --track-origins finds the same errors, only says more of where an
      # uninitialised value came from, at about 1.4x the time of the whole
      # pass: VALGRIND_TRACK_ORIGINS=yes when diagnosing one
      "--track-origins=" + (os.environ.get("VALGRIND_TRACK_ORIGINS") or "no"),
      "--trace-children=yes",
      # no gdbserver: its FIFOs and shared-memory file in /tmp are named by
      # pid and left behind by every process killed under valgrind; a child
      # that runs as another uid (the isolation tests drop privileges) and
      # gets a pid whose leftover file root owns cannot create its own, and
      # valgrind exits 1 before the child starts ("cannot create
      # shared_mem file /tmp/vgdb-pipe-shared-mem-vgdb-<pid>...")
      "--vgdb=no",
      # interpreters and tools the tests call are not ours to check (the
      # python helpers of tests/python, aiosmtpd, by their interpreter's
      # name: a pattern like *python* would also skip tests/python/test_python)
      "--trace-children-skip=*/python,*/python3,*/python3.*,*/sh,*/bash,*/env,*/kcat,*/java,*/node,*/npx",
      "--suppressions=" + supp]
def run_one(t):
    """Run one test under valgrind; returns (name, ok, report lines)."""
    name = t["name"]
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    env = dict(os.environ)
    for kv in props.get("ENVIRONMENT", []):
        k, _, v = kv.partition("=")
        env[k] = v
    timeout = float(props.get("TIMEOUT", 1500)) * scale
    cwd = props.get("WORKING_DIRECTORY", os.getcwd())
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    cmd = vg + ["--log-file=%s/%s.%%p.log" % (logs, safe)] + t["command"]
    t0 = time.time()
    out_path = os.path.join(logs, safe + ".out")
    with open(out_path, "wb") as out_f:
        try:
            rc = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout,
                                stdout=out_f, stderr=subprocess.STDOUT).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    took = time.time() - t0
    bad = []
    texts = {}
    for f in sorted(os.listdir(logs)):
        # "<safe>.<pid>.log": another test's name may extend this one's
        if re.fullmatch(re.escape(safe) + r"\.\d+\.log", f):
            texts[f] = open(os.path.join(logs, f), errors="replace").read()
    def header(text, what):
        m = re.search(r"^==\d+== %s: (.*)$" % what, text, re.M)
        return m.group(1) if m else None
    for f, text in texts.items():
        m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
        if not m or int(m.group(1)) == 0:
            continue
        errors = int(m.group(1))
        # A fork of a multi-threaded process (acme-hookd's isolation child,
        # forked by one handler thread while the others work) has only the
        # forking thread: what the other threads had allocated is out of
        # reach in the copy by construction and is reported as definitely
        # lost when the child exits, though the parent frees it. In such a
        # child (its parent's log has the same command) leaks are not
        # counted; every other error is. The child's own code is checked for
        # leaks by unit.test_isolate, whose harness is single-threaded.
        parent = header(text, "Parent PID")
        plog = "%s.%s.log" % (safe, parent)
        if parent and plog in texts and header(texts[plog], "Command") == header(text, "Command"):
            errors -= len(re.findall(r"are definitely lost in loss record", text))
        if errors > 0:
            bad.append("%s (%s errors)" % (f, m.group(1)))
    skip = rc == 77 or (props.get("SKIP_RETURN_CODE") is not None and rc == int(props["SKIP_RETURN_CODE"]))
    ok = (rc == 0 or skip) and not bad
    lines = ["%-40s %-7s rc=%s %.0fs%s" % (name, "ok" if ok else "FAILED", rc, took,
             "" if not bad else "\n    " + "\n    ".join(os.path.join(logs, b) for b in bad))]
    if not ok and rc != 0 and not skip:
        tail = open(out_path, errors="replace").read().splitlines()[-25:]
        lines.append("    output (%s):\n      %s" % (out_path, "\n      ".join(tail)))
    return name, ok, lines


# The tests are independent (each mock cluster on its own ports, no
# RUN_SERIAL or RESOURCE_LOCK among them), and memcheck runs each process
# on one core: run as many at once as there are cores (VALGRIND_PARALLEL).
# Longest first, by the timeouts the tests declare, so that the last one
# to start is not the slowest.
import concurrent.futures
parallel = max(1, int(os.environ.get("VALGRIND_PARALLEL") or os.cpu_count() or 1))
order = sorted(tests, key=lambda t: -float({p["name"]: p["value"] for p in t.get("properties", [])}
                                            .get("TIMEOUT", 1500)))
failed = []
# fixture setups first, natively, one at a time (what they prepare the
# others need); their cleanups are not among these labels
setups = [t for t in order if any(p["name"] == "FIXTURES_SETUP" for p in t.get("properties", []))]
order = [t for t in order if t not in setups]
for t in setups:
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    env = dict(os.environ)
    for kv in props.get("ENVIRONMENT", []):
        k, _, v = kv.partition("=")
        env[k] = v
    t0 = time.time()
    rc = subprocess.run(t["command"], cwd=props.get("WORKING_DIRECTORY", os.getcwd()), env=env,
                        timeout=float(props.get("TIMEOUT", 1500))).returncode
    print("%-40s %-7s rc=%s %.0fs (setup, not under valgrind)" % (t["name"], "ok" if rc == 0 else "FAILED",
          rc, time.time() - t0), flush=True)
    if rc != 0:
        failed.append(t["name"])
with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
    for fut in concurrent.futures.as_completed([pool.submit(run_one, t) for t in order]):
        name, ok, lines = fut.result()
        print("\n".join(lines), flush=True)
        if not ok:
            failed.append(name)
print("valgrind.sh: %d tests, %d failed%s" % (len(tests), len(failed),
      (": " + " ".join(failed)) if failed else ""))
sys.exit(1 if failed else 0)
PY
