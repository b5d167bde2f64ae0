#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs one acme2certifier end-to-end script with the a2c venv (prepared by
# scripts/setup-deps.sh --tests from tests/a2c/requirements.txt).
#   run.sh ACME_HOOKD_BINARY TEST.py [args]
set -euo pipefail
bin=${1:?usage: run.sh ACME_HOOKD_BINARY TEST.py}
script=${2:?usage: run.sh ACME_HOOKD_BINARY TEST.py}
shift 2
venv=${HOOKD_A2C_VENV:-$HOME/.cache/acme-hookd/a2c-venv}
if ! "$venv/bin/python" -c 'import acme2certifier, certbot, confluent_kafka' 2>/dev/null; then
  echo "a2c: no venv with acme2certifier, certbot and confluent-kafka at $venv: run scripts/setup-deps.sh --tests" >&2
  exit 1
fi
if [ ! -x "$bin" ]; then
  echo "a2c: the worker binary $bin does not exist: build acme-hookd first" >&2
  exit 1
fi
export HOOKD_BIN=$bin
export PYTHONUNBUFFERED=1
export PYTHONDONTWRITEBYTECODE=1
# certbot must find its own entry point: the venv's bin first.
export PATH=$venv/bin:$PATH
exec "$venv/bin/python" "$script" "$@"
