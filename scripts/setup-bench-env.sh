#!/usr/bin/env bash
# Installs the reference library for side-by-side benchmarks — pytorch-widedeep 1.7.0 on
# torch==2.11.0 (the libtorch widedeep links) — into its own cached venv. Idempotent; prints the
# venv path on its last line.
#
#   WIDEDEEP_BENCH_VENV  where the venv lives (default: ~/.cache/widedeep/bench-venv)
set -euo pipefail
VENV="${WIDEDEEP_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/widedeep/bench-venv}"
PY="${PYTHON:-python3}"
# The Python serving stack of the server load test (`make bench-serve`): FastAPI + uvicorn.
SERVE_PKGS=("fastapi==0.165.0" "uvicorn[standard]==0.55.0")
if [ -f "$VENV/.widedeep-complete" ] && [ -x "$VENV/bin/python" ]; then
  # A venv made before the serving stack was added gets it now.
  if ! "$VENV/bin/python" -c 'import fastapi, uvicorn, uvloop' 2>/dev/null; then
    echo "widedeep: adding FastAPI + uvicorn to $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --progress-bar off \
      "${SERVE_PKGS[@]}" >&2
  fi
  echo "$VENV"
  exit 0
fi
echo "widedeep: installing pytorch-widedeep==1.7.0 + torch==2.11.0 into $VENV (one-time)" >&2
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --progress-bar off \
  "torch==2.11.0" "pytorch-widedeep==1.7.0" "shap" "polars" "pyarrow" "psutil" \
  "${SERVE_PKGS[@]}" >&2
"$VENV/bin/python" -c 'import pytorch_widedeep, torch; print("widedeep: reference", pytorch_widedeep.__version__, "torch", torch.__version__)' >&2
touch "$VENV/.widedeep-complete"
echo "$VENV"
