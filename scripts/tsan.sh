#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the ThreadSanitizer variant (CMake preset `tsan`: -DHOOKD_SANITIZE=thread,
# -O1 with assertions on) in a build directory of its own and runs the unit
# and mock-cluster integration suites there.
#
#   scripts/tsan.sh [extra ctest args...]
#
# Environment:
#   TSAN_BUILD_DIR  build directory (default ${TMPDIR:-/tmp}/acme-hookd-build-tsan)
#   TSAN_LABELS     ctest label regex (default "unit|integration|harness")
#   TSAN_JOBS       ninja parallelism (default 2)
#   TSAN_EXCLUDE    ctest regex of tests left out (default: none)
#
# Criterion cannot run under TSan: its BoxFort arena fails to map next to
# TSan's shadow memory ("Could not initialize inheritable arena", Criterion
# issue 274). BoxFort, linked into Debian's libcriterion.so.3 (Criterion
# 2.4.1, BoxFort 0.1.2), places the arena with MAP_FIXED at a random address
# of a built-in window (upstream: 0x2000'0000'0000-0x7f00'0000'0000) that
# TSan's memory layout reserves; strace shows the arena's mmap never reaches
# the kernel (TSan's interceptor refuses it). Nothing outside the library
# moves that window: a two-test Criterion program built with
# -fsanitize=thread (gcc 12 and clang 14) aborts the same way with --jobs 1,
# --debug, --crash and under setarch -R, and TSAN_OPTIONS has no setting
# for it.
#
# So this build compiles the unit tests (tests/unit/test_*.c, unchanged)
# against a shim of the part of Criterion they use,
# tests/tsan/criterion-shim/ (tests/CMakeLists.txt picks it when
# HOOKD_SANITIZE is thread): Test() and TestSuite() with init, fini,
# timeout, signal and exit_code, cr_assert*/cr_expect*, cr_skip_test,
# cr_log_*, each test in a process forked from a single-threaded runner, its
# timeout enforced. Its self-test (harness.criterion_shim, label harness,
# run in every build) shows that it reports a failing assertion, a crash and
# a timeout. What the shim does not give: Criterion's parallel workers (the
# tests of an executable run one after the other) and BoxFort's re-execution
# of the binary per test (a fork inherits what library constructors did in
# the runner, which does nothing else); parameterized tests, theories and
# the "new" assert API, which no test uses, are not there and would not
# compile. Criterion itself keeps running the same tests under ASan, UBSan
# and valgrind. Here run the unit tests, the schema cross-check and the
# mock-cluster integration suite, which starts the real daemon with its
# consumer, publisher, handler and HTTP threads. The python handler's suite
# (label python) is not part of this pass.
#
# Every process the tests start (the unit tests' processes, the acme-hookd
# daemon of the integration tests, isolated handler children) writes its
# reports to $TSAN_BUILD_DIR/tsan-logs/<pid>; any report fails the run, also
# one from a process whose exit status nobody checks. Suppressions are in
# tests/tsan.supp: dependencies only, each with its reason.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${TSAN_BUILD_DIR:-${TMPDIR:-/tmp}/acme-hookd-build-tsan}
labels=${TSAN_LABELS:-unit|integration|harness}
jobs=${TSAN_JOBS:-2}
exclude=${TSAN_EXCLUDE-}

# The default build directory is shared by every checkout on the machine:
# one configured from another source tree is started afresh.
if [ -f "$build/CMakeCache.txt" ] &&
   ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$here" "$build/CMakeCache.txt"; then
  rm -rf "$build"
fi
(cd "$here" && cmake --preset tsan -B "$build" >/dev/null)
ninja -C "$build" -j "$jobs"

logs="$build/tsan-logs"
rm -rf "$logs"
mkdir -p "$logs"
# a test may drop privileges (the isolation fork-bomb test runs as an unused
# uid): its processes must still be able to write their reports
chmod 1777 "$logs"
# halt_on_error: the first report ends the process that made it, so the
# test it happened in fails too; exitcode 66 is what TSan uses otherwise.
# allocator_may_return_null: a handler hitting its RLIMIT_AS in an isolated
# child sees NULL from malloc, as without TSan (scripts/sanitize.sh does the
# same for ASan; unit.test_isolate checks it).
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:second_deadlock_stack=1:history_size=4:allocator_may_return_null=1:log_path=$logs/tsan:suppressions=$here/tests/tsan.supp}
cd "$build"
rc=0
args=(-L "$labels")
[ -n "$exclude" ] && args+=(-E "$exclude")
ctest "${args[@]}" --output-on-failure --no-tests=error "$@" || rc=$?
reports=$(grep -l "WARNING: ThreadSanitizer\|ERROR: ThreadSanitizer" "$logs"/tsan.* 2>/dev/null || true)
if [ -n "$reports" ]; then
  echo "tsan.sh: ThreadSanitizer reports:" >&2
  for f in $reports; do
    echo "---- $f" >&2
    head -n 60 "$f" >&2
  done
  rc=1
fi
[ $rc = 0 ] && echo "tsan.sh: no ThreadSanitizer report"
exit $rc
