#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo: on a fresh Debian 12 machine, installs the build dependencies,
# builds acme-hookd and runs a short scenario on the embedded broker
# (librdkafka's mock cluster, in-process): six sample enrollment events
# through the bundled handlers cn_dump and exception_test, then a table of
# what happened to each (hooks run, verdict, committed or dead-lettered) and
# the group's final committed offsets. Exits 0 when every outcome is as
# expected. Takes seconds once built.
#   scripts/demo.sh [--keep]      --keep: leave cn_dump's output files in place
# Build directory: $HOOKD_BUILD_DIR (default build/ in the source tree).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${HOOKD_BUILD_DIR:-$here/build}

"$here/scripts/setup-deps.sh"
# The test suite needs Criterion, which only `setup-deps.sh --tests` installs:
# without it, configure the build without the tests.
tests=()
pkg-config --exists criterion 2>/dev/null || tests=(-DHOOKD_TESTS=OFF)
(cd "$here" && cmake --preset release -B "$build" "${tests[@]}" >/dev/null)
# At most two compile jobs: the demo must not starve a shared machine.
ninja -C "$build" -j2 acme-hookd-demo >/dev/null
exec "$build/tools/demo/acme-hookd-demo" "$@"
