#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs one end-to-end test script with the team's Python venv (created by
# scripts/setup-deps.sh --tests) and the npm packages of package.json on
# NODE_PATH.   run.sh ACME_HOOKD_BINARY TEST.py
set -euo pipefail
bin=${1:?usage: run.sh ACME_HOOKD_BINARY TEST.py}
script=${2:?usage: run.sh ACME_HOOKD_BINARY TEST.py}
venv=${HOOKD_VENV:-$HOME/.cache/acme-hookd/venv}
if ! "$venv/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
  echo "e2e: no Python venv with confluent-kafka at $venv: run scripts/setup-deps.sh --tests" >&2
  exit 1
fi
if [ ! -x "$bin" ]; then
  echo "e2e: the worker binary $bin does not exist: build acme-hookd first" >&2
  exit 1
fi
export HOOKD_BIN=$bin
export NODE_PATH=${HOOKD_NODE_MODULES:-$HOME/.cache/acme-hookd/node}/node_modules${NODE_PATH:+:$NODE_PATH}
export PYTHONUNBUFFERED=1
# No __pycache__ in the source tree.
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" "$script"
