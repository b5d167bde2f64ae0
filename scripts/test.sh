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

# The Debian 13 stage (scripts/debian13.sh: the container image's platform)
# runs last; its root, when it has to be made (debootstrap and apt: mostly
# network and disk), is made in the background meanwhile, logged to
# $build/debian13-prepare.log. HOOKD_SKIP_DEBIAN13=1 skips the stage in a
# local run; never in CI (CI=true).
debian13=1
[ "${HOOKD_SKIP_DEBIAN13:-0}" = 1 ] && [ -z "${CI:-}" ] && debian13=0
prepare_pid=""
if [ $debian13 = 1 ]; then
  HOOKD_BUILD_DIR=$build "$here/scripts/debian13.sh" --prepare > "$build/debian13-prepare.log" 2>&1 &
  prepare_pid=$!
fi
debian13_stage() {
  step "Debian 13 (trixie, librdkafka 2.8): build + unit + e2e in a debootstrap root"
  if [ $debian13 = 0 ]; then
    echo "skipped (HOOKD_SKIP_DEBIAN13=1)"
    return 0
  fi
  # A failed preparation is not fatal: the run below makes the root itself.
  wait "$prepare_pid" || echo "the root's preparation failed; making it again now"
  cat "$build/debian13-prepare.log"
  HOOKD_BUILD_DIR=$build "$here/scripts/debian13.sh"
}

step "ctest"
# Everything but the real-broker tests in parallel; those share one broker
# (a fixture) and run serially for stable timings.
(cd "$build" && ctest --output-on-failure --timeout 900 -LE kafka -j"$jobs")
(cd "$build" && ctest --output-on-failure --timeout 900 -L kafka -j1)

if [ $quick = 1 ]; then
  debian13_stage
  exit 0
fi

step "AddressSanitizer + UndefinedBehaviorSanitizer"
"$here/scripts/sanitize.sh"

step "ThreadSanitizer"
"$here/scripts/tsan.sh"

step "valgrind memcheck"
"$here/scripts/valgrind.sh"

step "fuzzing (${FUZZ_SECONDS:=45} s per target)"
FUZZ_SECONDS=$FUZZ_SECONDS "$here/scripts/fuzz.sh"

debian13_stage
