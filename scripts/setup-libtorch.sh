#!/usr/bin/env bash
# Installs libtorch 2.11.0 (from the PyPI wheel torch==2.11.0) into a cached virtual environment
# that every clone reuses, and the Gloo headers that libtorch's distributed engine (c10d) needs
# to be compiled against (the wheel ships ProcessGroupGloo.hpp without them): Debian's
# libgloo-dev, unpacked without root into <venv>/gloo/include (build.rs looks there). Idempotent;
# prints the venv path on its last line.
#
#   WIDEDEEP_TORCH_VENV  where the venv lives (default: ~/.cache/widedeep/torch-2.11.0)
set -euo pipefail
VENV="${WIDEDEEP_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/widedeep/torch-2.11.0}"
PY="${PYTHON:-python3}"

# The Gloo headers: `apt-get download` + `dpkg -x` (no root), after an `apt-get update` when the
# package lists are empty and we are root; else `apt-get install libgloo-dev` (root). Without
# them everything builds, but distributed training reports itself not built.
gloo_headers() {
  local dest="$VENV/gloo" tmp
  if [ -f "$dest/.widedeep-complete" ] || [ -f /usr/include/gloo/config.h ]; then
    return 0
  fi
  if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
    echo "widedeep: no apt-get/dpkg: install the Gloo headers (libgloo-dev) and set WIDEDEEP_GLOO_INCLUDE for distributed training" >&2
    return 0
  fi
  echo "widedeep: fetching the Gloo headers (Debian libgloo-dev) into $dest" >&2
  tmp="$(mktemp -d)"
  fetch() { (cd "$tmp" && apt-get download libgloo-dev >/dev/null 2>&1); }
  if ! fetch && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >&2 || true
    fetch || true
  fi
  if ls "$tmp"/libgloo-dev_*.deb >/dev/null 2>&1 && dpkg -x "$tmp"/libgloo-dev_*.deb "$tmp/x"; then
    rm -rf "$dest"
    mkdir -p "$dest"
    cp -a "$tmp/x/usr/include" "$dest/include"
    touch "$dest/.widedeep-complete"
  elif [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libgloo-dev >&2 ||
      echo "widedeep: could not install libgloo-dev: distributed training will not be built" >&2
  else
    echo "widedeep: could not fetch libgloo-dev: distributed training will not be built" >&2
  fi
  rm -rf "$tmp"
}

# The marker is written only after a complete install, so an interrupted one is redone.
if [ -f "$VENV/.widedeep-complete" ] && [ -x "$VENV/bin/python" ]; then
  gloo_headers
  echo "$VENV"
  exit 0
fi
echo "widedeep: installing torch==2.11.0 into $VENV (one-time, several GB)" >&2
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --progress-bar off \
  "torch==2.11.0" "numpy<3" >&2
"$VENV/bin/python" -c 'import torch; print("widedeep: torch", torch.__version__)' >&2
touch "$VENV/.widedeep-complete"
gloo_headers
echo "$VENV"
