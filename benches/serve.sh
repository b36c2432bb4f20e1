#!/usr/bin/env bash
# `make bench-serve`: the `widedeep` command against the example and the usual Python deployment.
#
# 1. `widedeep train --config examples/configs/adult.toml` against `cargo run --example adult`
#    (the same data, split, model, settings and 500-row GradientSHAP explanation), alternating,
#    REPEATS times each: fit seconds as each reports them, and the wall-clock of the process.
# 2. Load test on 127.0.0.1: `widedeep serve` on the Adult pipeline just trained, then
#    pytorch-widedeep 1.7.0's Wide + TabMlp of the same shape behind FastAPI + uvicorn
#    (benches/serve_reference.py) with 1 and with 2 worker processes; each is hit by
#    `widedeep load-test` (CLIENTS keep-alive clients for SECS seconds) with single-row and
#    1,000-row `POST /predict` bodies taken from Adult. One markdown table.
#
# Every server listens on 127.0.0.1 only and is stopped (SIGTERM, then SIGKILL) when the script
# ends, fails or is interrupted; each load test stops by itself after SECS seconds.
#
#   SERVE_BENCH_SECONDS (20)  SERVE_BENCH_CLIENTS (64)  SERVE_BENCH_REPEATS (3)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-target}/release"
W="$BIN/widedeep"
EXAMPLE="$BIN/examples/adult"
PY="$(bash scripts/setup-bench-env.sh | tail -n 1)/bin/python"
SECS="${SERVE_BENCH_SECONDS:-20}"
CLIENTS="${SERVE_BENCH_CLIENTS:-64}"
REPEATS="${SERVE_BENCH_REPEATS:-3}"
for f in "$W" "$EXAMPLE"; do
  [ -x "$f" ] || { echo "bench-serve: $f is missing (make bench-serve builds it)" >&2; exit 1; }
done

WORK="$(mktemp -d)"
SERVER=""
stop_server() {
  if [ -n "$SERVER" ] && kill -0 "$SERVER" 2>/dev/null; then
    kill -TERM "$SERVER" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER" 2>/dev/null || true
    pkill -KILL -P "$SERVER" 2>/dev/null || true
  fi
  SERVER=""
}
trap 'stop_server; rm -rf "$WORK"' EXIT INT TERM

now() { date +%s.%N; }
elapsed() { "$PY" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Waits (at most $2 seconds) until GET /health answers on port $1, or fails.
wait_health() {
  for _ in $(seq $(( $2 * 5 ))); do
    curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER" 2>/dev/null || { echo "bench-serve: the server stopped" >&2; return 1; }
    sleep 0.2
  done
  echo "bench-serve: no answer on port $1 within $2 s" >&2
  return 1
}

# Request bodies: Adult rows without the target, as JSON records.
"$PY" - "$WORK" <<'EOF'
import sys, polars as pl
df = pl.read_parquet("datasets/adult.parquet").drop("income")
open(f"{sys.argv[1]}/one.json", "w").write(df.slice(7, 1).write_json())
open(f"{sys.argv[1]}/batch.json", "w").write(df.slice(1000, 1000).write_json())
EOF

CPU_FLAGS="$(grep -m1 -o -w -E 'avx2|avx512f|avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ' || true)"
echo "## widedeep train vs the adult example ($(nproc) cores, flags: ${CPU_FLAGS}load $(cut -d' ' -f1 /proc/loadavg))"
echo
echo "| run | fit s | process wall s | test accuracy |"
echo "|---|---:|---:|---:|"
for r in $(seq "$REPEATS"); do
  t0=$(now)
  "$EXAMPLE" > "$WORK/example.log" 2>&1
  t1=$(now)
  fit=$(sed -n 's/.*epochs in \([0-9.]*\)s).*/\1/p' "$WORK/example.log")
  acc=$(sed -n 's/^test accuracy \([0-9.]*\).*/\1/p' "$WORK/example.log")
  echo "| example \`adult\` #$r | $fit | $(elapsed "$t0" "$t1") | $acc |"
  rm -rf "$WORK/run"
  t0=$(now)
  "$W" train --config examples/configs/adult.toml --output "$WORK/run" > "$WORK/train.log" 2>&1
  t1=$(now)
  read -r fit acc < <("$PY" -c 'import json, sys; m = json.load(open(sys.argv[1])); print("%.1f %.4f" % (m["fit_seconds"], m["test"]["accuracy"]))' "$WORK/run/metrics.json")
  echo "| \`widedeep train\` #$r | $fit | $(elapsed "$t0" "$t1") | $acc |"
done
echo

load() { # $1 = label, $2 = port
  for body in one batch; do
    "$W" load-test --addr "127.0.0.1:$2" --body "$WORK/$body.json" --clients "$CLIENTS" \
      --seconds "$SECS" > "$WORK/load.json"
    "$PY" - "$1" "$body" "$WORK/load.json" <<'EOF'
import json, sys
label, body, path = sys.argv[1:]
r = json.load(open(path))
rows = 1 if body == "one" else 1000
print(f"| {label} | {rows:,} | {r['requests_per_s']:,.1f} | {r['requests_per_s'] * rows:,.0f} "
      f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |")
EOF
  done
}

echo "## POST /predict on 127.0.0.1: $CLIENTS keep-alive clients, $SECS s each (load $(cut -d' ' -f1 /proc/loadavg))"
echo
echo "| server | rows/request | requests/s | rows/s | p50 ms | p99 ms | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|"
PORT=$(free_port)
"$W" serve --pipeline "$WORK/run/pipeline" --port "$PORT" > "$WORK/serve.log" 2>&1 &
SERVER=$!
wait_health "$PORT" 60
load "\`widedeep serve\`" "$PORT"
stop_server
for workers in 1 2; do
  PORT=$(free_port)
  "$PY" benches/serve_reference.py --port "$PORT" --workers "$workers" \
    --model-dir "$WORK/reference-model" > "$WORK/reference.log" 2>&1 &
  SERVER=$!
  wait_health "$PORT" 600
  sleep 3 # with 2 workers, /health may answer before the second has loaded the model
  load "FastAPI + uvicorn, $workers worker$([ "$workers" = 1 ] || echo s)" "$PORT"
  stop_server
done
