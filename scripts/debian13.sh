#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian 13 (trixie) stage of the test suite: acme-hookd built and
# tested against Debian 13's librdkafka (2.8), cJSON and OpenSSL, the base
# of the container image (deploy/Containerfile).
#
#   scripts/debian13.sh             make the root if needed, build and test in it
#   scripts/debian13.sh --prepare   only make the root if needed (test.sh runs
#                                   this in the background while other stages
#                                   run: downloading and unpacking wait on the
#                                   network and the disk, not on the CPU)
#
# No container engine is needed (or used): a Debian 13 root is made with
# debootstrap and cached on the machine, in ~/.cache/acme-hookd/debian13
# (HOOKD_DEBIAN13_CACHE) like the test venvs, so that every clone and build
# folder on the machine (CI checks out a fresh clone each run) reuses it;
# runs are serialized on a lock there. The root gets the build
# packages of deploy/build-packages.txt, the same list the Containerfile's
# build stage installs, plus the test tools below. The root is made again
# when that list, the test tools or this script's root recipe change (a
# hash of them is kept next to the root), or when it is older than
# HOOKD_DEBIAN13_MAX_AGE_DAYS (default 7, for Debian's security updates).
#
# In the root, with the source tree bind-mounted read-only at /src:
#   - cmake + ninja (build directory /build in the root, kept between runs:
#     the source is always at /src there, so a build from another clone is
#     reused incrementally);
#   - the runtime package names of deploy/runtime-packages.txt for trixie
#     exist;
#   - ctest -L unit (the unit suite; schema.crosscheck excluded: its
#     validator, check-jsonschema, is not packaged in Debian 13);
#   - against a real broker on the host's loopback (tests/kafka/broker.sh,
#     started here with its state in $HOOKD_BUILD_DIR/debian13 and bind-mounted
#     into the root at the same path; the root shares the host's network
#     namespace): the e2e truth table, the secure listener, SCRAM-SHA-512,
#     mTLS and OAUTHBEARER/OIDC authentication (tests/e2e/test_*.py, Debian's
#     python3-confluent-kafka as the harness's client).
#
# Mounts (proc, dev, dev/shm, the source, the broker state) are undone and
# the broker and every process left in the root are stopped on exit, also
# on failure or interruption.
#
# Needs root (chroot, mount) and debootstrap (scripts/setup-deps.sh --tests).
# Logs (debootstrap, apt, cmake, one per e2e test) and the broker's state
# are in $HOOKD_BUILD_DIR/debian13.
#
# Environment: HOOKD_BUILD_DIR (default ./build), HOOKD_DEBIAN13_CACHE
# (default ~/.cache/acme-hookd/debian13), HOOKD_DEBIAN13_MIRROR (default
# http://deb.debian.org/debian), HOOKD_DEBIAN13_MAX_AGE_DAYS, HOOKD_VENV
# (the host venv tests/kafka/broker.sh uses).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
prepare_only=0
case "${1:-}" in
  --prepare) prepare_only=1 ;;
  "") ;;
  *) echo "usage: $0 [--prepare]" >&2; exit 2 ;;
esac
build=${HOOKD_BUILD_DIR:-$here/build}
mkdir -p "$build"
build=$(cd "$build" && pwd)
stage=$build/debian13
cache=${HOOKD_DEBIAN13_CACHE:-$HOME/.cache/acme-hookd/debian13}
root=$cache/root
mirror=${HOOKD_DEBIAN13_MIRROR:-http://deb.debian.org/debian}
max_age_days=${HOOKD_DEBIAN13_MAX_AGE_DAYS:-7}
packages=$here/deploy/build-packages.txt
suite=trixie
# What the tests need in the root besides the build packages. Bump
# root_recipe when the way the root is made changes.
test_packages=(libcriterion-dev python3 python3-confluent-kafka python3-jsonschema kcat openssl
               procps ca-certificates)
root_recipe=1
# HOOKD_DEBIAN13_E2E: the e2e tests to run (names of tests/e2e/test_*.py).
read -r -a e2e_tests <<< "${HOOKD_DEBIAN13_E2E:-truth_table secure_listener auth_scram auth_mtls auth_oidc}"

say() { printf 'debian13: %s\n' "$*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

# The script's own stdout and stderr, for the cleanup (see there).
exec 7>&1 8>&2
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount)"
command -v debootstrap >/dev/null || die "debootstrap is missing: scripts/setup-deps.sh --tests"
[ -f "$packages" ] || die "no $packages"

mkdir -p "$stage" "$cache"
cache=$(cd "$cache" && pwd -P) # physical: compared with /proc/*/root
root=$cache/root
# One run at a time per cache: the root, its /build and its mounts are shared.
exec 9> "$cache/lock"
if ! flock -n 9; then
  say "another run holds $cache/lock: waiting"
  flock 9
fi

# Every mount made, in order; undone in reverse.
mounts=()
broker_state=$stage/kafka
broker_started=0

# Processes whose root directory is the chroot: whatever a test left behind.
procs_in_root() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case "$r" in "$root" | "$root"/*) echo "${p#/proc/}" ;; esac
  done
}

cleanup() {
  local rc=$? pids i m
  set +e
  # A signal can land inside a step whose output goes to a log file: say
  # what happens here on the script's own output.
  exec 1>&7 2>&8
  pids=$(procs_in_root)
  if [ -n "$pids" ]; then
    say "stopping processes left in the root: $(echo $pids)"
    kill -TERM $pids 2>/dev/null
    for i in $(seq 1 50); do
      pids=$(procs_in_root)
      [ -z "$pids" ] && break
      sleep 0.1
    done
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
  fi
  if [ $broker_started = 1 ]; then
    HOOKD_KAFKA_STATE=$broker_state "$here/tests/kafka/broker.sh" stop
  fi
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    m=${mounts[$i]}
    umount "$m" 2>/dev/null || umount -l "$m" || say "could not unmount $m"
  done
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount_at() { # mount arguments ... target
  local target=${*: -1}
  mount "$@" || die "mount $* failed"
  mounts+=("$target")
}

# Refuse to delete a root that still has something mounted in it.
remove_root() {
  local dir=$1
  [ -e "$dir" ] || return 0
  if grep -q " $dir/" /proc/self/mounts; then
    die "$dir still has mounts (an earlier run was killed?): $(grep " $dir/" /proc/self/mounts | cut -d' ' -f2 | tr '\n' ' ')"
  fi
  rm -rf --one-file-system "$dir"
}

# ---------------------------------------------------------------- the root
key=$({
  sed 's/#.*//' "$packages" | tr -s ' \t' '\n' | sed '/^$/d' | LC_ALL=C sort
  echo "tests: ${test_packages[*]}"
  echo "suite: $suite recipe: $root_recipe"
} | sha256sum | cut -d' ' -f1)
fresh=0
if [ ! -f "$cache/root.key" ] || [ "$(cat "$cache/root.key")" != "$key" ]; then
  [ -f "$cache/root.key" ] && say "the package lists changed: making the root again"
  fresh=1
elif [ -n "$(find "$cache/root.key" -mtime +"$max_age_days" 2>/dev/null)" ]; then
  say "the root is older than $max_age_days days: making it again"
  fresh=1
fi

if [ $fresh = 1 ]; then
  t0=$SECONDS
  rm -f "$cache/root.key"
  remove_root "$root"
  remove_root "$root.new"
  say "debootstrap --variant=minbase $suite ($mirror)"
  debootstrap --variant=minbase "$suite" "$root.new" "$mirror" > "$stage/debootstrap.log" 2>&1 \
    || { tail -n 20 "$stage/debootstrap.log" >&2; die "debootstrap failed (log $stage/debootstrap.log)"; }
  # No daemon a package might bring may start in the root.
  printf '#!/bin/sh\nexit 101\n' > "$root.new/usr/sbin/policy-rc.d"
  chmod 755 "$root.new/usr/sbin/policy-rc.d"
  mv "$root.new" "$root"
  say "root made in $((SECONDS - t0)) s"
fi

mount_at -t proc proc "$root/proc"
mount_at --bind /dev "$root/dev"
mount_at -t tmpfs -o size=256m,mode=1777 tmpfs "$root/dev/shm"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin \
    HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
}
# The long steps: in the background and waited for, so that SIGTERM or
# SIGINT ends the run at once (bash runs a trap only after a foreground
# child returns; `wait` it interrupts), the cleanup then stopping what runs
# in the root.
in_root_wait() {
  local child
  in_root "$@" &
  child=$!
  wait "$child"
}

if [ $fresh = 1 ]; then
  t0=$SECONDS
  mapfile -t build_pkgs < <(sed 's/#.*//' "$packages" | tr -s ' \t' '\n' | sed '/^$/d')
  say "apt-get install ${#build_pkgs[@]} build packages (deploy/build-packages.txt) + ${#test_packages[@]} test packages"
  in_root apt-get update -qq > "$stage/apt.log" 2>&1 \
    || { tail -n 20 "$stage/apt.log" >&2; die "apt-get update failed in the root"; }
  in_root_wait env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${build_pkgs[@]}" "${test_packages[@]}" >> "$stage/apt.log" 2>&1 \
    || { tail -n 20 "$stage/apt.log" >&2; die "apt-get install failed in the root (log $stage/apt.log)"; }
  in_root apt-get clean
  # The e2e harness runs $HOOKD_VENV/bin/python: Debian's interpreter, which
  # has python3-confluent-kafka.
  mkdir -p "$root/opt/hookd-venv/bin"
  ln -sf /usr/bin/python3 "$root/opt/hookd-venv/bin/python"
  echo "$key" > "$cache/root.key"
  say "packages installed in $((SECONDS - t0)) s"
fi

in_root dpkg-query -W -f='${Package} ${Version}\n' librdkafka1 libcjson1 libssl3t64 python3-confluent-kafka \
  | sed 's/^/debian13: /' >&2

if [ $prepare_only = 1 ]; then
  say "root ready"
  exit 0
fi

# The runtime image's package names for trixie exist.
mapfile -t runtime_pkgs < <(awk -v r="$suite" '!/^#/ && NF == 3 && ($2 == "any" || $2 == r) { print $1 }' \
  "$here/deploy/runtime-packages.txt")
[ ${#runtime_pkgs[@]} -gt 0 ] || die "deploy/runtime-packages.txt has no $suite packages"
in_root apt-cache show --no-all-versions "${runtime_pkgs[@]}" > /dev/null \
  || die "deploy/runtime-packages.txt names packages $suite does not have"

# ---------------------------------------------------------------- build
mkdir -p "$root/src"
mount_at --bind "$here" "$root/src"
mount -o remount,bind,ro "$root/src" || die "could not make /src read-only"
t0=$SECONDS
in_root_wait cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHOOKD_WERROR=ON \
  -DHOOKD_PYTHON=OFF > "$stage/cmake.log" 2>&1 \
  || { tail -n 30 "$stage/cmake.log" >&2; die "cmake failed in the root (log $stage/cmake.log)"; }
in_root_wait ninja -C /build -j"$(nproc 2>/dev/null || echo 2)" \
  || die "the build failed on Debian 13"
in_root /build/worker/acme-hookd --version >&2
say "built in $((SECONDS - t0)) s"

# ---------------------------------------------------------------- tests
t0=$SECONDS
in_root_wait ctest --test-dir /build -L unit -E '^schema\.crosscheck$' -j2 --output-on-failure --timeout 300 \
  || die "the unit suite failed on Debian 13"
say "unit suite in $((SECONDS - t0)) s"

t0=$SECONDS
# fd 9 (the lock) closed: the broker outlives this step.
HOOKD_KAFKA_STATE=$broker_state "$here/tests/kafka/broker.sh" start 7>&- 8>&- 9>&-
broker_started=1
mkdir -p "$root$broker_state"
mount_at --bind "$broker_state" "$root$broker_state"
say "broker up in $((SECONDS - t0)) s"

failed=()
for t in "${e2e_tests[@]}"; do
  t0=$SECONDS
  say "e2e.$t"
  if in_root_wait env HOOKD_KAFKA_STATE="$broker_state" HOOKD_VENV=/opt/hookd-venv \
       HOOKD_E2E_WORKDIR=/build/e2e-work HOOKD_SOURCE_DIR=/src \
       timeout -s TERM 600 /src/tests/e2e/run.sh /build/worker/acme-hookd "/src/tests/e2e/test_$t.py" \
       > "$stage/e2e.$t.log" 2>&1; then
    say "e2e.$t passed in $((SECONDS - t0)) s: $(grep -v '^\[' "$stage/e2e.$t.log" | tail -n 1)"
  else
    tail -n 60 "$stage/e2e.$t.log" >&2
    say "e2e.$t FAILED after $((SECONDS - t0)) s (log $stage/e2e.$t.log)"
    failed+=("$t")
  fi
done
[ ${#failed[@]} = 0 ] || die "failed on Debian 13: ${failed[*]}"
say "all passed"
