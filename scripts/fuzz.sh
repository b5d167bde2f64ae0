#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (clang, ASan + UBSan) in a build directory of
# their own and runs each one for a bounded time over its seed corpus.
#
#   scripts/fuzz.sh [target...]        default: fuzz_event fuzz_config fuzz_auth
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 60)
#   FUZZ_BUILD_DIR  build directory (default ${TMPDIR:-/tmp}/acme-hookd-build-fuzz)
#   FUZZ_ARTIFACTS  where crash reproducers are kept (default $FUZZ_BUILD_DIR/artifacts)
#   FUZZ_JOBS       ninja parallelism (default 2)
#
# The seed corpus in tests/fuzz/corpus/<target>/ is only read; new inputs
# found go to $FUZZ_BUILD_DIR/corpus/<target>/, kept between runs so a
# longer campaign resumes where the last stopped. Exits non-zero when any
# target finds a crash, a leak, a timeout or an out-of-memory; reproduce
# with: $FUZZ_BUILD_DIR/tests/fuzz/<target> <artifact file>
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-${TMPDIR:-/tmp}/acme-hookd-build-fuzz}
artifacts=${FUZZ_ARTIFACTS:-$build/artifacts}
jobs=${FUZZ_JOBS:-2}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_event fuzz_config fuzz_auth)

command -v clang >/dev/null || { echo "fuzz.sh: clang is needed" >&2; exit 2; }

# Everything linked into a target is instrumented for coverage and checked
# by the sanitizers; only the targets themselves get the libFuzzer main.
san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
san="$san ${FUZZ_EXTRA_CFLAGS:-}"
# The default build directory is shared by every checkout on the machine:
# one configured from another source tree is started afresh.
if [ -f "$build/CMakeCache.txt" ] &&
   ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$here" "$build/CMakeCache.txt"; then
  rm -rf "$build"
fi
# The preset `fuzz` holds the same flags; passed again for FUZZ_EXTRA_CFLAGS.
(cd "$here" && cmake --preset fuzz -B "$build" -DCMAKE_C_FLAGS="$san") >"$build.cmake.log" 2>&1 \
  || { cat "$build.cmake.log" >&2; echo "fuzz.sh: configure failed" >&2; exit 2; }
ninja -C "$build" -j "$jobs" "${targets[@]}" || { echo "fuzz.sh: build failed" >&2; exit 2; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/$t"
  seeds="$here/tests/fuzz/corpus/$t"
  work="$build/corpus/$t"
  mkdir -p "$work" "$artifacts/$t"
  echo "== $t: ${seconds}s, seeds $(ls "$seeds" 2>/dev/null | wc -l), corpus $(ls "$work" | wc -l)"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: a leak or a bomb.
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$t/" "$work" "$seeds" \
    >"$build/$t.log" 2>&1
  rc=$?
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)' \
    "$build/$t.log" | sed "s/^/   /"
  if [ $rc -ne 0 ]; then
    echo "   FAILED (exit $rc); reproducer(s):" >&2
    ls -1 "$artifacts/$t/" | sed "s|^|     $artifacts/$t/|" >&2
    tail -n 40 "$build/$t.log" >&2
    failed+=("$t")
  else
    echo "   ok"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failures in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all targets ran ${seconds}s without a finding"
