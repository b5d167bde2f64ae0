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
#   tests/bench/run.sh --callgrind [--events N] [--out DIR] [--worker PATH]
#       instructions per event and stage (valgrind's callgrind, mock cluster):
#       acme-hookd, the raw passthrough and the raw passthrough writing a
#       result's eight CloudEvents headers, each on a backlog of N/6 and of N
#       events (default N: 24,000), the difference divided by 5N/6
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
callgrind=0 cg_out="" cg_worker=""

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
    --callgrind) callgrind=1; shift ;;
    --out) cg_out=$2; shift 2 ;;
    --worker) cg_worker=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

if [ $callgrind = 1 ]; then
  # Instructions are what callgrind counts: stable on a loaded machine,
  # unlike times. Start-up, group join and shutdown cancel out in the
  # difference of two backlog sizes. Threads run one at a time under
  # valgrind (batches and wake-ups differ from a native run), and system
  # calls are not counted: compare these figures with each other.
  command -v valgrind >/dev/null || { echo "run.sh: valgrind is not installed" >&2; exit 77; }
  [ "$events" = 200000 ] && events=24000
  small=$((events / 6))
  if [ $build_it = 1 ]; then
    [ -f "$build/CMakeCache.txt" ] || (cd "$root" && cmake --preset release -B "$build" >/dev/null)
    ninja -C "$build" -j2 acme-hookd hookd_bench >/dev/null
  fi
  cg_out=${cg_out:-$(mktemp -d "${TMPDIR:-/tmp}/hookd-callgrind.XXXXXX")}
  cg_worker=${cg_worker:-$build/worker/acme-hookd}
  mkdir -p "$cg_out"
  for c in hookd raw raw-envelope; do
    for n in $small $events; do
      "$build/tests/bench/hookd_bench" profile --contender "$c" --worker "$cg_worker" \
        --events "$n" --partitions "$partitions" --timeout-s 1800 \
        --wrap "$(command -v valgrind) --tool=callgrind --separate-threads=yes --callgrind-out-file=$cg_out/$c-$n" >&2
    done
  done
  echo "acme-hookd ($cg_worker), Ir per event (callgrind, $small and $events events, $partitions partitions, mock cluster):"
  python3 "$here/callgrind_stages.py" "$cg_out/hookd-$small" "$small" "$cg_out/hookd-$events" "$events"
  echo
  echo "raw librdkafka passthrough, Ir per event:"
  python3 "$here/callgrind_stages.py" "$cg_out/raw-$small" "$small" "$cg_out/raw-$events" "$events" --raw
  echo
  echo "raw passthrough writing a result's eight CloudEvents headers (the floor for records shaped like acme-hookd's), Ir per event:"
  python3 "$here/callgrind_stages.py" "$cg_out/raw-envelope-$small" "$small" "$cg_out/raw-envelope-$events" "$events" --raw
  echo
  echo "callgrind files: $cg_out (callgrind_annotate --inclusive=yes FILE-NN, one per thread)"
  exit 0
fi

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
  # Not exec: with --kafka the EXIT trap must still stop the broker.
  rc=0
  "$bench" keys --worker "$worker" --slow-handler "$slow" --events "$events" \
    --bootstrap "$bootstrap" || rc=$?
  exit $rc
fi

"$bench" run --worker "$worker" --python "$venv/bin/python" --py-worker "$here/py_worker.py" \
  --slow-handler "$slow" --events "$events" --partitions "$partitions" \
  --latency-rate "$lat_rate" --latency-seconds "$lat_secs" --sleep-events "$sleep_events" \
  --rounds "$rounds" --warmup-events "$warmup" \
  --bootstrap "$bootstrap"
