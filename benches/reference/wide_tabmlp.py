"""Reference side of `cargo bench --bench wide_tabmlp`: pytorch-widedeep 1.7.0 Wide + TabMlp on
Adult with the same columns, split, hyper-parameters and batch size as benches/wide_tabmlp.rs.

Prints one JSON object: preprocessing seconds, seconds per epoch, inference rows/s, peak RSS and
test accuracy/AUC. Run by the Rust bench with the bench venv's python
(scripts/setup-bench-env.sh); `--num-workers N` selects the DataLoader workers (the reference
defaults to os.cpu_count()).
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from pytorch_widedeep import Trainer
from pytorch_widedeep.models import TabMlp, Wide, WideDeep
from pytorch_widedeep.preprocessing import TabPreprocessor, WidePreprocessor

WIDE = ["education", "relationship", "workclass", "occupation", "native-country", "gender",
        "capital-gain", "capital-loss"]
CROSSED = [("education", "occupation"), ("native-country", "occupation")]
CAT = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "gender",
       "native-country", "capital-gain", "capital-loss"]
CONT = ["age", "educational-num", "hours-per-week"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--num-workers", type=int, default=0)
    ap.add_argument("--replicate", type=int, default=1,
                    help="stack the data set this many times (scaling runs)")
    args = ap.parse_args()
    torch.manual_seed(1)

    df = pd.read_parquet(args.data)
    for c in ["capital-gain", "capital-loss"]:
        df[c] = df[c].astype(str)
    if args.replicate > 1:
        df = pd.concat([df] * args.replicate, ignore_index=True)
    test_mask = (np.arange(len(df)) % 5) == 0  # the same split as the Rust side
    train, test = df[~test_mask], df[test_mask]
    y_train = (train["income"] == ">50K").astype(int).values
    y_test = (test["income"] == ">50K").astype(int).values

    t = time.perf_counter()
    wide_prep = WidePreprocessor(wide_cols=WIDE, crossed_cols=CROSSED)
    x_wide = wide_prep.fit_transform(train)
    tab_prep = TabPreprocessor(cat_embed_cols=CAT, continuous_cols=CONT, cols_to_scale=CONT)
    x_tab = tab_prep.fit_transform(train)
    x_wide_test = wide_prep.transform(test)
    x_tab_test = tab_prep.transform(test)
    prep_s = time.perf_counter() - t

    wide = Wide(input_dim=int(x_wide.max()), pred_dim=1)
    tab = TabMlp(column_idx=tab_prep.column_idx, cat_embed_input=tab_prep.cat_embed_input,
                 continuous_cols=CONT, cont_norm_layer="batchnorm", mlp_hidden_dims=[64, 32],
                 mlp_dropout=0.1)
    model = WideDeep(wide=wide, deeptabular=tab)
    trainer = Trainer(model, objective="binary", num_workers=args.num_workers, verbose=0, seed=1)
    t = time.perf_counter()
    trainer.fit(X_wide=x_wide, X_tab=x_tab, target=y_train, n_epochs=args.epochs,
                batch_size=args.batch_size)
    epoch_s = (time.perf_counter() - t) / args.epochs

    t = time.perf_counter()
    proba = trainer.predict_proba(X_wide=x_wide_test, X_tab=x_tab_test, batch_size=4096)[:, 1]
    infer_s = time.perf_counter() - t
    acc = float(((proba > 0.5).astype(int) == y_test).mean())
    auc = float(roc_auc_score(y_test, proba))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    json.dump({
        "impl": "pytorch-widedeep " + __import__("pytorch_widedeep").__version__,
        "rows": len(df), "num_workers": args.num_workers, "prep_s": prep_s,
        "epoch_s": epoch_s, "infer_rows_s": len(test) / infer_s, "peak_mb": peak_mb,
        "accuracy": acc, "auc": auc,
    }, sys.stdout)
    print()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
    main()
