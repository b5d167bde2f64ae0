#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A handler built out of tree with only the installed header and pkg-config
# file, loaded by the installed worker.
#   out_of_tree.sh BUILD_DIR SOURCE_DIR
# 1. cmake --install the build into a temporary prefix;
# 2. copy the skeleton somewhere else and build it with its Makefile and
#    with a bare cc line, both using only `pkg-config --cflags acme-hookd`;
# 3. `acme-hookd --check-config` on a config naming the result must pass;
# 4. the same file made world-writable must be refused, naming the file.
set -euo pipefail
build=${1:?build dir}
src=${2:?source dir}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hookd-oot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "out_of_tree: FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }

pc=$(find "$prefix" -name acme-hookd.pc -print -quit)
[ -n "$pc" ] || fail "no acme-hookd.pc installed under $prefix"
export PKG_CONFIG_PATH=$(dirname "$pc")
cflags=$(pkg-config --cflags acme-hookd)
incdir=$(pkg-config --variable=includedir acme-hookd)
[ -f "$incdir/acme_hookd/hook.h" ] || fail "pkg-config includedir $incdir has no acme_hookd/hook.h"
hooksdir=$(pkg-config --variable=hooksdir acme-hookd)
[ -f "$hooksdir/hookd_skeleton.so" ] || fail "bundled handlers not installed in $hooksdir"

# Out of the source tree: only the installed files can be found.
work=$tmp/work
mkdir -p "$work" "$tmp/markers"
cp "$src/hooks/skeleton/skeleton.c" "$work/my_handler.c"
cc -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden $cflags \
   -o "$work/my_handler.so" "$work/my_handler.c" ||
  fail "cc \$(pkg-config --cflags acme-hookd) could not build the skeleton"
if command -v make >/dev/null; then
  cp "$prefix"/share/acme-hookd/skeleton/{Makefile,skeleton.c} "$work/" ||
    fail "skeleton Makefile/source not installed"
  make -s -C "$work" NAME=via_make >"$tmp/make.log" 2>&1 ||
    { cat "$tmp/make.log" >&2; fail "the skeleton's Makefile failed"; }
  [ -f "$work/via_make.so" ] || fail "make did not produce via_make.so"
fi
chmod 0755 "$work"
chmod 0644 "$work"/*.so

worker=$prefix/bin/acme-hookd
[ -x "$worker" ] || fail "no installed worker at $worker"

cat >"$tmp/hookd.ini" <<INI
[Hooks]
hooks_file = $work/my_handler.so
skeleton_marker_dir = $tmp/markers
INI
if ! "$worker" --check-config "$tmp/hookd.ini" >"$tmp/check.out" 2>&1; then
  cat "$tmp/check.out" >&2
  fail "--check-config refused the out-of-tree handler"
fi

if [ -f "$work/via_make.so" ]; then
  sed -i "s|my_handler.so|via_make.so|" "$tmp/hookd.ini"
  "$worker" --check-config "$tmp/hookd.ini" >"$tmp/check2.out" 2>&1 ||
    { cat "$tmp/check2.out" >&2; fail "--check-config refused the Makefile-built handler"; }
  sed -i "s|via_make.so|my_handler.so|" "$tmp/hookd.ini"
fi

# Fail closed: a world-writable handler file is refused, with its name.
chmod o+w "$work/my_handler.so"
if "$worker" --check-config "$tmp/hookd.ini" >"$tmp/check3.out" 2>&1; then
  fail "--check-config accepted a world-writable handler file"
fi
grep -q "my_handler.so" "$tmp/check3.out" || { cat "$tmp/check3.out" >&2; fail "the refusal does not name the file"; }
grep -qi "writable" "$tmp/check3.out" || { cat "$tmp/check3.out" >&2; fail "the refusal does not give the reason"; }

echo "out_of_tree: ok (handler built with $cflags, loaded by $worker)"
