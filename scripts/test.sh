#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite, from a fresh machine:
#   scripts/test.sh            install what is missing, build, run every suite
#   scripts/test.sh --quick    only the build + ctest (unit, schema, cli, handlers,
#                              integration, kafka, e2e, ops, deploy), no sanitizer,
#                              valgrind or fuzz passes
# Suites that need Apache Kafka get it through tests/kafka (fetched from Maven
# Central, started and stopped by ctest fixtures).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${HOOKD_BUILD_DIR:-$here/build}
quick=0
[ "${1:-}" = "--quick" ] && quick=1
jobs=$(nproc 2>/dev/null || echo 2)

step() { printf '\n==== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

step "dependencies"
"$here/scripts/setup-deps.sh" --tests

step "build ($build)"
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" -j"$jobs"

step "ctest"
# The real-broker tests share one broker (a fixture); run serially for stable timings.
(cd "$build" && ctest --output-on-failure --timeout 900 -j1)

[ $quick = 1 ] && exit 0

step "AddressSanitizer + UndefinedBehaviorSanitizer"
"$here/scripts/sanitize.sh"

step "valgrind memcheck"
"$here/scripts/valgrind.sh"

step "fuzzing (${FUZZ_SECONDS:=60} s per target)"
FUZZ_SECONDS=$FUZZ_SECONDS "$here/scripts/fuzz.sh"

step "all suites passed"
