"""Reference side of `examples/bayesian.rs`: pytorch-widedeep 1.7.0's BayesianTabMlp on the
same Adult split (the training rows, in training order, and test rows that the example writes to target/widedeep-bayesian/split.json),
columns, architecture (Bayesian embeddings, dense 200-100, leaky ReLU, the default prior) and
procedure (BayesianTrainer, 5 epochs, batch 256, Adam lr 1e-3, two sampled networks per step).

Prints and writes to target/widedeep-bayesian/reference.json the accuracy, ROC AUC and expected
calibration error (15 equal-width bins of the predicted class's probability) of the
posterior-mean network (the reference's `predict_proba`) and of the mean of 30 sampled networks
(`predict_proba(return_samples=True)`), with the mean per-row standard deviation of p(>50K).

Run (after `cargo run --release --example bayesian` wrote the split):
    ~/.cache/widedeep/bench-venv/bin/python benches/bayesian_reference.py [--seeds 1,2,3]
"""
import argparse
import json
import os
import time

import numpy as np
import pandas as pd
import torch
from pytorch_widedeep.bayesian_models import BayesianTabMlp
from pytorch_widedeep.preprocessing import TabPreprocessor
from pytorch_widedeep.training import BayesianTrainer
from sklearn.metrics import roc_auc_score

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CAT = ["workclass", "education", "marital-status", "occupation", "relationship", "race",
       "gender", "native-country", "capital-gain", "capital-loss"]
CONT = ["age", "educational-num", "hours-per-week"]
EPOCHS, BATCH, SAMPLES = 5, 256, 30


def ece(p, y, bins=15):
    """Expected calibration error over `bins` equal-width bins of max(p, 1 - p)."""
    conf = np.where(p > 0.5, p, 1 - p)
    pred = (p > 0.5).astype(np.float32)
    idx = np.clip(np.ceil(conf * bins).astype(int), 1, bins) - 1
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += abs((pred[m] == y[m]).sum() - conf[m].sum()) / len(p)
    return float(total)


def run(seed, train, test, y_train, y_test):
    torch.manual_seed(seed)
    np.random.seed(seed)
    tab = TabPreprocessor(cat_embed_cols=CAT, continuous_cols=CONT, cols_to_scale=CONT,
                          verbose=0)
    x_train = tab.fit_transform(train)
    x_test = tab.transform(test)
    model = BayesianTabMlp(column_idx=tab.column_idx, cat_embed_input=tab.cat_embed_input,
                           continuous_cols=CONT, mlp_hidden_dims=[200, 100],
                           mlp_activation="leaky_relu")
    trainer = BayesianTrainer(model, objective="binary",
                              optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                              num_workers=0, verbose=0, seed=seed)
    t = time.perf_counter()
    trainer.fit(X_tab=x_train, target=y_train, n_epochs=EPOCHS, batch_size=BATCH,
                n_train_samples=2)
    fit_s = time.perf_counter() - t
    p = trainer.predict_proba(X_tab=x_test, batch_size=4096)[:, 1]
    samples = trainer.predict_proba(X_tab=x_test, n_samples=SAMPLES, return_samples=True,
                                    batch_size=4096)[:, :, 1]
    ps = samples.mean(0)
    return {
        "seed": seed, "fit_s": fit_s,
        "accuracy": float(((p > 0.5) == y_test).mean()),
        "auc": float(roc_auc_score(y_test, p)), "ece": ece(p, y_test),
        "sampled_accuracy": float(((ps > 0.5) == y_test).mean()),
        "sampled_auc": float(roc_auc_score(y_test, ps)), "sampled_ece": ece(ps, y_test),
        "sampled_std": float(samples.std(0).mean()),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = os.path.join(ROOT, "target", "widedeep-bayesian")
    with open(os.path.join(out, "split.json")) as f:
        split = json.load(f)
    df = pd.read_parquet(os.path.join(ROOT, "datasets", "adult.parquet"))
    for c in ["capital-gain", "capital-loss"]:
        df[c] = df[c].astype(str)
    y = (df["income"] == ">50K").astype(np.float32).values
    tr, te = np.array(split["train_rows"]), np.array(split["test_rows"])
    train, test = df.iloc[tr].reset_index(drop=True), df.iloc[te].reset_index(drop=True)
    runs = [run(int(s), train, test, y[tr], y[te]) for s in args.seeds.split(",")]
    for r in runs:
        print(json.dumps(r))
    # the first seed's figures for the example's table; all of them for the spread
    result = dict(runs[0])
    result["runs"] = runs
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
