#!/usr/bin/env bash
# Installs headless Chromium (Debian's `chromium` package) when it is missing: the test suite
# opens the page of `widedeep report` in it. Idempotent; needs root (apt) on a fresh machine.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "widedeep: installing chromium (Debian package) for the report page test" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "widedeep: the tests need chromium (Debian package \`chromium\`): install it as root" >&2
  exit 1
fi
