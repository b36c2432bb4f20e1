#!/usr/bin/env bash
# Installs libtorch 2.11.0 (from the PyPI wheel torch==2.11.0) into a cached virtual environment
# that every clone reuses. Idempotent; prints the venv path on its last line.
#
#   WIDEDEEP_TORCH_VENV  where the venv lives (default: ~/.cache/widedeep/torch-2.11.0)
set -euo pipefail
VENV="${WIDEDEEP_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/widedeep/torch-2.11.0}"
PY="${PYTHON:-python3}"
# The marker is written only after a complete install, so an interrupted one is redone.
if [ -f "$VENV/.widedeep-complete" ] && [ -x "$VENV/bin/python" ]; then
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
echo "$VENV"
