#!/bin/sh
# SPDX-License-Identifier: MIT
# The venv of the python handler's tests: acme2certifier 0.46.3 (its hook
# modules) and aiosmtpd, made with Debian's interpreter, the one the handler
# embeds. Reused while its stamp matches. Prints nothing on success.
set -eu
venv=${HOOKD_PY_A2C_VENV:-${HOME:-/tmp}/.cache/acme-hookd/a2c-0.46.3-venv}
stamp="acme2certifier==0.46.3 aiosmtpd==1.4.6 $(/usr/bin/python3 -c 'import sys; print(sys.version.split()[0])')"
if [ -f "$venv/.hookd-stamp" ] && [ "$(cat "$venv/.hookd-stamp")" = "$stamp" ]; then
  exit 0
fi
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check acme2certifier==0.46.3 aiosmtpd==1.4.6
"$venv/bin/python" -c 'import acme2certifier.hookhandlers.cn_dump_hooks, aiosmtpd'
echo "$stamp" > "$venv/.hookd-stamp"
