#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The acme2certifier bridge's verdict round trip (tests/bench/a2c_roundtrip.py)
# on a real broker: the running one of $HOOKD_KAFKA_STATE, else a private
# one started here and stopped at the end.
#   tests/bench/a2c_roundtrip.sh [BUILD_DIR] [a2c_roundtrip.py options]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}; [ $# -gt 0 ] && shift
venv=${HOOKD_A2C_VENV:-$HOME/.cache/acme-hookd/a2c-venv}
[ -x "$venv/bin/python" ] || { echo "no venv at $venv: run scripts/setup-deps.sh --tests" >&2; exit 1; }
[ -x "$build/worker/acme-hookd" ] || { echo "build acme-hookd first ($build/worker/acme-hookd)" >&2; exit 1; }
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
own=0
if [ -z "${HOOKD_KAFKA_STATE:-}" ] || ! "$here/tests/kafka/broker.sh" status >/dev/null 2>&1; then
  export HOOKD_KAFKA_STATE=$(mktemp -d /tmp/a2c-bench-kafka.XXXXXX)
  own=1
  trap '"$here/tests/kafka/broker.sh" stop >/dev/null 2>&1 || true; rm -rf "$HOOKD_KAFKA_STATE"' EXIT
  "$here/tests/kafka/broker.sh" start >/dev/null
fi
"$venv/bin/python" "$here/tests/bench/a2c_roundtrip.py" --hookd "$build/worker/acme-hookd" "$@"
