#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the AddressSanitizer + UndefinedBehaviorSanitizer variant
# (CMake preset asan-ubsan) in a build directory of its own and runs the unit,
# integration and python-handler suites there.
#
#   scripts/sanitize.sh [extra ctest args...]
#
# Environment:
#   SANITIZE_BUILD_DIR  build directory (default ${TMPDIR:-/tmp}/acme-hookd-build-asan)
#   SANITIZE_LABELS     ctest label regex (default "unit|integration|python")
#   SANITIZE_JOBS       ninja parallelism (default 2)
#
# Any ASan/UBSan report aborts the process that made it (UBSan does not
# recover: -fno-sanitize-recover), so it fails the test it happened in;
# LeakSanitizer runs at every process exit. The reports are in
# $SANITIZE_BUILD_DIR/Testing/Temporary/LastTest.log.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${SANITIZE_BUILD_DIR:-${TMPDIR:-/tmp}/acme-hookd-build-asan}
labels=${SANITIZE_LABELS:-unit|integration|python}
jobs=${SANITIZE_JOBS:-2}

# The default build directory is shared by every checkout on the machine:
# one configured from another source tree is started afresh.
if [ -f "$build/CMakeCache.txt" ] &&
   ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$here" "$build/CMakeCache.txt"; then
  rm -rf "$build"
fi
(cd "$here" && cmake --preset asan-ubsan -B "$build" >/dev/null)
ninja -C "$build" -j "$jobs"

# abort_on_error: a report ends the process with SIGABRT, which no test can
# mistake for a pass; allocator_may_return_null: a handler hitting its
# RLIMIT_AS in an isolated child sees NULL from malloc, as without ASan.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/tests/lsan.supp:print_suppressions=0}
# The python handler embeds CPython: with PYTHONMALLOC=malloc every Python
# object is a malloc block ASan guards and LeakSanitizer sees, instead of
# a slot in pymalloc's arenas (CPython's documented setting for ASan).
export PYTHONMALLOC=malloc
cd "$build"
ctest -L "$labels" --output-on-failure --no-tests=error "$@"
