#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite, from a fresh machine:
#   scripts/test.sh            install what is missing, build, run every suite
#   scripts/test.sh --quick    only the build + ctest (unit, schema, cli, handlers,
#                              integration, kafka, e2e, ops, deploy) and the
#                              Debian 13 stage, no sanitizer, valgrind or fuzz passes
# HOOKD_SKIP_DEBIAN13=1 skips the Debian 13 stage (scripts/debian13.sh) outside CI.
# Suites that need Apache Kafka get it through tests/kafka (fetched from Maven
# Central, started and stopped by ctest fixtures).
# Each stage prints its duration when it ends, and a table of all of them is
# printed at the end, also when a stage failed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${HOOKD_BUILD_DIR:-$here/build}
quick=0
[ "${1:-}" = "--quick" ] && quick=1
jobs=$(nproc 2>/dev/null || echo 2)

stage_names=() stage_secs=()
stage="" stage_start=0
# Close the running stage (its duration) and open the next one, if any.
step() {
  local now
  now=$(date +%s)
  if [ -n "$stage" ]; then
    stage_names+=("$stage")
    stage_secs+=($((now - stage_start)))
    printf '==== %s: %d s\n' "$stage" $((now - stage_start))
  fi
  stage="$*" stage_start=$now
  [ -n "$stage" ] && printf '\n==== %s (%s)\n' "$stage" "$(date -u +%H:%M:%S)"
  return 0
}
summary() {
  local rc=$? i total=0
  local failed=$stage
  step
  printf '\n%-50s %8s\n' "stage" "seconds"
  for i in "${!stage_names[@]}"; do
    printf '%-50s %8d%s\n' "${stage_names[$i]}" "${stage_secs[$i]}" \
      "$([ $rc -ne 0 ] && [ "${stage_names[$i]}" = "$failed" ] && echo "  FAILED")"
    total=$((total + stage_secs[i]))
  done
  printf '%-50s %8d\n' "total" "$total"
  [ $rc -eq 0 ] && printf '\nall suites passed\n'
  exit $rc
}
trap summary EXIT

step "dependencies"
"$here/scripts/setup-deps.sh" --tests

step "format (.clang-format)"
"$here/scripts/check-format.sh"

step "build ($build)"
(cd "$here" && cmake --preset release -B "$build" >/dev/null)
ninja -C "$build" -j"$jobs"

step "ctest"
# The real-broker tests share one broker (a fixture); run serially for stable timings.
(cd "$build" && ctest --output-on-failure --timeout 900 -j1)

step "Debian 13 (trixie, librdkafka 2.8): build + unit + e2e in a debootstrap root"
# The container image's platform (scripts/debian13.sh). HOOKD_SKIP_DEBIAN13=1
# skips it in a local run; never in CI (CI=true).
if [ "${HOOKD_SKIP_DEBIAN13:-0}" = 1 ] && [ -z "${CI:-}" ]; then
  echo "skipped (HOOKD_SKIP_DEBIAN13=1)"
else
  HOOKD_BUILD_DIR=$build "$here/scripts/debian13.sh"
fi

[ $quick = 1 ] && exit 0

step "AddressSanitizer + UndefinedBehaviorSanitizer"
"$here/scripts/sanitize.sh"

step "ThreadSanitizer"
"$here/scripts/tsan.sh"

step "valgrind memcheck"
"$here/scripts/valgrind.sh"

step "fuzzing (${FUZZ_SECONDS:=60} s per target)"
FUZZ_SECONDS=$FUZZ_SECONDS "$here/scripts/fuzz.sh"
