#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmark acme-hookd against a raw librdkafka passthrough and a Python
# confluent-kafka worker on the same broker, and print the table.
#
#   tests/bench/run.sh [--events N] [--partitions P] [--bootstrap HOST:PORT | --kafka]
#                      [--latency-rate R] [--latency-seconds S] [--sleep-events M]
#                      [--rounds K] [--warmup-events W] [--build-dir DIR] [--no-build]
#   tests/bench/run.sh --keys [--events N] [--bootstrap HOST:PORT | --kafka]
#       key ordering with a 50 ms handler, 64 threads, 1,000 keys: ordering =
#       partition beside ordering = key on 1 and 32 partitions (default N: 20,000)
#
# Broker: by default a librdkafka mock cluster the benchmark starts in its own
# process (it keeps ~100k messages / 5 MiB per partition: 200k events over 32
# partitions fit). --kafka starts a private Apache Kafka broker with
# tests/kafka/broker.sh for the run; --bootstrap uses one you run.
# Build: DIR (default $HOOKD_BUILD_DIR or ./build) is configured and the
# needed targets built unless --no-build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${HOOKD_BUILD_DIR:-$root/build}
venv=${HOOKD_VENV:-$HOME/.cache/acme-hookd/venv}
events=200000 partitions=32 bootstrap="" kafka=0 build_it=1 keys=0
lat_rate=1000 lat_secs=10 sleep_events=1200 rounds=3 warmup=50000

while [ $# -gt 0 ]; do
  case "$1" in
    --events) events=$2; shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --bootstrap) bootstrap=$2; shift 2 ;;
    --kafka) kafka=1; shift ;;
    --latency-rate) lat_rate=$2; shift 2 ;;
    --latency-seconds) lat_secs=$2; shift 2 ;;
    --sleep-events) sleep_events=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --warmup-events) warmup=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --no-build) build_it=0; shift ;;
    --keys) keys=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

if ! "$venv/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
  echo "run.sh: no Python venv with confluent-kafka at $venv (run scripts/setup-deps.sh --tests)" >&2
  exit 77
fi

if [ $build_it = 1 ]; then
  [ -f "$build/CMakeCache.txt" ] || (cd "$root" && cmake --preset release -B "$build" >/dev/null)
  ninja -C "$build" -j2 acme-hookd hookd_bench hookd_slow_test >/dev/null
fi
bench=$build/tests/bench/hookd_bench
worker=$build/worker/acme-hookd
slow=$build/tests/integration/slow_test.so
for f in "$bench" "$worker" "$slow"; do
  [ -e "$f" ] || { echo "run.sh: $f is missing (build it, or drop --no-build)" >&2; exit 2; }
done

if [ $kafka = 1 ]; then
  # A private broker (own state directory, free ports), stopped on exit.
  export HOOKD_KAFKA_STATE
  HOOKD_KAFKA_STATE=$(mktemp -d "${TMPDIR:-/tmp}/hookd-bench-kafka.XXXXXX")
  trap '"$root/tests/kafka/broker.sh" stop >/dev/null 2>&1 || true; rm -rf "$HOOKD_KAFKA_STATE"' EXIT
  "$root/tests/kafka/broker.sh" start >&2
  bootstrap=$(sed -n 's/^KAFKA_BOOTSTRAP=//p' "$HOOKD_KAFKA_STATE/broker.env")
  [ -n "$bootstrap" ] || { echo "run.sh: the broker did not report its address" >&2; exit 2; }
fi

if [ $keys = 1 ]; then
  [ "$events" = 200000 ] && events=20000
  exec "$bench" keys --worker "$worker" --slow-handler "$slow" --events "$events" \
    --bootstrap "$bootstrap"
fi

"$bench" run --worker "$worker" --python "$venv/bin/python" --py-worker "$here/py_worker.py" \
  --slow-handler "$slow" --events "$events" --partitions "$partitions" \
  --latency-rate "$lat_rate" --latency-seconds "$lat_secs" --sleep-events "$sleep_events" \
  --rounds "$rounds" --warmup-events "$warmup" \
  --bootstrap "$bootstrap"
