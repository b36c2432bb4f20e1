"""shap's KernelExplainer on the Wide-only (linear) Adult model of `cargo bench --bench explain`.

Reads target/widedeep-bench/explain_wide.json (the model's weight table and bias, the background
rows, the explained rows, and widedeep's KernelSHAP values and timings for each nsamples), runs
shap.KernelExplainer on the same model, background and nsamples (l1_reg=0: the plain constrained
weighted regression widedeep solves), and prints a markdown table: the time of each, the
speed-ups and the largest difference between the values. widedeep runs KernelSHAP twice: as a
black box (the same algorithm and number of model evaluations as shap) and by default, with the
wide part's attributions in closed form.

Run: $(bash scripts/setup-bench-env.sh | tail -n 1)/bin/python benches/explain_reference.py
"""
import json
import pathlib
import sys
import time

import numpy as np
import shap

path = pathlib.Path(__file__).resolve().parent.parent / "target/widedeep-bench/explain_wide.json"
if len(sys.argv) > 1:
    path = pathlib.Path(sys.argv[1])
data = json.loads(path.read_text())
p = data["n_players"]
weight = np.asarray(data["weight"], dtype=np.float64)  # [wide_dim + 1] (pred_dim 1)
bias = float(data["bias"])
background = np.asarray(data["background"], dtype=np.float64).reshape(-1, p)
rows = np.asarray(data["rows"], dtype=np.float64).reshape(-1, p)


def f(x):
    """The Wide model: the sum of the weights of the active indices plus the bias (a logit)."""
    return weight[x.astype(np.int64)].sum(axis=1) + bias


explainer = shap.KernelExplainer(f, background)
print(
    f"\nshap {shap.__version__} KernelExplainer vs widedeep KernelSHAP: Wide-only Adult model, "
    f"{p} players, {len(rows)} rows, background {len(background)} rows "
    f"(widedeep on {data['threads']} libtorch threads)\n"
)
print(
    "| nsamples | shap (s) | widedeep, black box (s) | speed-up | widedeep, default (s) "
    "| speed-up | max abs diff of values |"
)
print("|---:|---:|---:|---:|---:|---:|---:|")
for run in data["runs"]:
    ns = run["nsamples"]
    start = time.perf_counter()
    values = np.asarray(explainer.shap_values(rows, nsamples=ns, l1_reg=0, silent=True))
    secs = time.perf_counter() - start
    values = values.reshape(len(rows), p)
    diff = max(
        np.abs(values - np.asarray(run[key]).reshape(len(rows), p)).max()
        for key in ("values", "closed_form_values")
    )
    black, closed = run["seconds"], run["closed_form_seconds"]
    print(
        f"| {ns} | {secs:.2f} | {black:.2f} | {secs / black:.1f}× | {closed:.3f} "
        f"| {secs / closed:.0f}× | {diff:.1e} |"
    )
