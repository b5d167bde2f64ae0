#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs everything the build, the demo and the test suite need on a fresh
# Debian 12 machine, and is quick when it is all there already.
#   scripts/setup-deps.sh          build + demo dependencies (apt)
#   scripts/setup-deps.sh --tests  also the test tools: Python venv, npm tools,
#                                  Apache Kafka from Maven Central
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
want_tests=0
[ "${1:-}" = "--tests" ] && want_tests=1

APT_BUILD=(build-essential cmake ninja-build pkg-config librdkafka-dev libcjson-dev
           libssl-dev libinih-dev libmicrohttpd-dev libjemalloc-dev openssl
           libpython3-dev)
APT_TEST=(libcriterion-dev kcat valgrind clang libclang-rt-14-dev clang-format-14 openjdk-17-jre-headless
          maven nodejs npm python3 python3-venv curl procps jq golang-go debootstrap)

need=()
pkgs=("${APT_BUILD[@]}")
[ $want_tests = 1 ] && pkgs+=("${APT_TEST[@]}")
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
# Node, Java and Maven may come from elsewhere than apt on some images: accept them on PATH.
filtered=()
for p in "${need[@]}"; do
  case "$p" in
    nodejs) command -v node >/dev/null || filtered+=("$p") ;;
    npm) command -v npm >/dev/null || filtered+=("$p") ;;
    maven) command -v mvn >/dev/null || filtered+=("$p") ;;
    golang-go) command -v go >/dev/null || filtered+=("$p") ;;
    openjdk-17-jre-headless) command -v java >/dev/null || filtered+=("$p") ;;
    python3|python3-venv) command -v python3 >/dev/null && python3 -m venv --help >/dev/null 2>&1 || filtered+=("$p") ;;
    *) filtered+=("$p") ;;
  esac
done
if [ ${#filtered[@]} -gt 0 ]; then
  echo "setup-deps: installing ${filtered[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${filtered[@]}" >/dev/null
fi

[ $want_tests = 1 ] || exit 0

# Python test tools in a venv of their own (the system interpreter stays untouched).
venv=${HOOKD_VENV:-$HOME/.cache/acme-hookd/venv}
stamp="$venv/.requirements"
if ! cmp -s "$here/tests/requirements.txt" "$stamp" 2>/dev/null; then
  echo "setup-deps: preparing Python venv $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/tests/requirements.txt"
  cp "$here/tests/requirements.txt" "$stamp"
fi

# The acme2certifier end-to-end tests (tests/a2c): acme2certifier, certbot and the
# bridge from this source tree, in a venv of their own.
a2c_venv=${HOOKD_A2C_VENV:-$HOME/.cache/acme-hookd/a2c-venv}
a2c_stamp="$a2c_venv/.requirements"
if ! cmp -s "$here/tests/a2c/requirements.txt" "$a2c_stamp" 2>/dev/null; then
  echo "setup-deps: preparing Python venv $a2c_venv" >&2
  python3 -m venv "$a2c_venv"
  "$a2c_venv/bin/pip" install -q --disable-pip-version-check -r "$here/tests/a2c/requirements.txt"
  cp "$here/tests/a2c/requirements.txt" "$a2c_stamp"
  rm -f "$a2c_venv/.bridge"
fi
# The bridge is installed again whenever its source changes (the tests must
# never run a stale copy); a copy of the source, so that pip's build does not
# write into the tree.
bridge_sum=$(cd "$here/integrations/acme2certifier" &&
             find . -path ./tests -prune -o -type f ! -name '*.pyc' -print | LC_ALL=C sort |
             xargs sha256sum | sha256sum | cut -d' ' -f1)
if [ "$(cat "$a2c_venv/.bridge" 2>/dev/null)" != "$bridge_sum" ]; then
  tmp=$(mktemp -d)
  cp -r "$here/integrations/acme2certifier" "$tmp/bridge"
  "$a2c_venv/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall "$tmp/bridge"
  rm -rf "$tmp"
  echo "$bridge_sum" > "$a2c_venv/.bridge"
fi

# npm tools used by the tests (CloudEvents SDK decode check).
if [ -f "$here/tests/e2e/package.json" ]; then
  nm=${HOOKD_NODE_MODULES:-$HOME/.cache/acme-hookd/node}
  if ! cmp -s "$here/tests/e2e/package.json" "$nm/package.json" 2>/dev/null; then
    echo "setup-deps: installing npm packages into $nm" >&2
    mkdir -p "$nm"; cp "$here/tests/e2e/package.json" "$nm/package.json"
    (cd "$nm" && npm install --silent --no-audit --no-fund >/dev/null)
  fi
fi

# Apache Kafka for the real-broker tests.
if [ -x "$here/tests/kafka/fetch-kafka.sh" ]; then
  "$here/tests/kafka/fetch-kafka.sh"
fi
