"""pytorch-widedeep 1.7.0's side of `cargo run --release --example low_labels`: the same procedure
on the same rows. Reads the split and the labelled rows the example wrote to
target/low_labels/splits.json (row indices of datasets/adult.parquet), pretrains TabMlp with
EncoderDecoderTrainer (mirror-image decoder, masked_prob 0.2, AdamW at 1e-3: its defaults) on
every training row, fine-tunes it on 1% and 5% of the labels (Adam at 1e-3, shuffled batches) and
trains the same model from scratch on the same rows; three seeds. Prints its table and writes it
to target/low_labels/reference.json (the example prints both side by side when it finds it);
when the example's results (target/low_labels/widedeep.json) are there, prints both side by side
too.

Run: ~/.cache/widedeep/bench-venv/bin/python benches/low_labels_reference.py
"""
import copy
import json
import os
import time

import numpy as np
import pandas as pd
import torch
from pytorch_widedeep import Trainer
from pytorch_widedeep.models import TabMlp, WideDeep
from pytorch_widedeep.preprocessing import TabPreprocessor
from pytorch_widedeep.self_supervised_training import EncoderDecoderTrainer
from sklearn.metrics import roc_auc_score

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "low_labels")
CAT = ["workclass", "education", "marital-status", "occupation", "relationship", "race",
       "gender", "native-country", "capital-gain", "capital-loss"]
CONT = ["age", "educational-num", "hours-per-week"]


def mean_sd(v):
    v = np.asarray(v, dtype=np.float64)
    return v.mean(), v.std(ddof=1) if len(v) > 1 else 0.0


def tabmlp(tab):
    return TabMlp(column_idx=tab.column_idx, cat_embed_input=tab.cat_embed_input,
                  continuous_cols=CONT, mlp_hidden_dims=[64, 32], mlp_dropout=0.1)


def train_and_score(model, x, y, x_test, y_test, settings, seed):
    trainer = Trainer(model, objective="binary",
                      optimizers=torch.optim.Adam(model.parameters(), lr=settings["lr"]),
                      verbose=0, num_workers=0, seed=seed)
    trainer.fit(X_tab=x, target=y, n_epochs=settings["epochs"],
                batch_size=settings["batch_size"], shuffle=True)
    return roc_auc_score(y_test, trainer.predict_proba(X_tab=x_test, batch_size=4096)[:, 1])


def main():
    # one intra-op thread (libtorch's default of one per core crawls on a shared 2-core machine)
    torch.set_num_threads(int(os.environ.get("LOW_LABELS_THREADS", "1")))
    with open(os.path.join(OUT, "splits.json")) as f:
        splits = json.load(f)
    df = pd.read_parquet(os.path.join(ROOT, "datasets", "adult.parquet"))
    for c in ["capital-gain", "capital-loss"]:
        df[c] = df[c].astype(str)
    y_all = (df["income"] == ">50K").astype(np.float32).values
    train, test = df.iloc[splits["train_rows"]], df.iloc[splits["test_rows"]]
    y_train, y_test = y_all[splits["train_rows"]], y_all[splits["test_rows"]]
    tab = TabPreprocessor(cat_embed_cols=CAT, continuous_cols=CONT, cols_to_scale=CONT, verbose=0)
    x_train = tab.fit_transform(train)
    x_test = tab.transform(test)
    pre, sup = splits["pretrain"], splits["train"]
    start = time.perf_counter()
    results = {}
    for seed in splits["seeds"]:
        torch.manual_seed(seed)
        np.random.seed(seed)
        encoder = tabmlp(tab)
        t = time.perf_counter()
        EncoderDecoderTrainer(encoder=encoder, masked_prob=pre["masked_prob"], verbose=0,
                              num_workers=0, seed=seed).pretrain(
            x_train, n_epochs=pre["epochs"], batch_size=pre["batch_size"])
        pretrain_s = time.perf_counter() - t
        for frac in splits["fractions"]:
            rows = np.asarray(splits["labelled"][str(frac)][str(seed)])
            x, y = x_train[rows], y_train[rows]
            torch.manual_seed(seed)
            scratch = train_and_score(WideDeep(deeptabular=tabmlp(tab)), x, y, x_test, y_test,
                                      sup, seed)
            torch.manual_seed(seed)
            pretrained = train_and_score(WideDeep(deeptabular=copy.deepcopy(encoder)), x, y,
                                         x_test, y_test, sup, seed)
            print(f"TabMlp (encoder-decoder) seed {seed}, {frac * 100:g}% labels: scratch AUC "
                  f"{scratch:.4f}, pretrained {pretrained:.4f} (pretraining {pretrain_s:.1f}s)",
                  flush=True)
            results.setdefault(frac, []).append((scratch, pretrained))

    print("\npytorch-widedeep 1.7.0:\n")
    print("| model | route | labels | from scratch AUC | pretrained AUC | Δ |")
    print("|---|---|---:|---:|---:|---:|")
    ref = {}
    for frac, runs in results.items():
        s, p = [r[0] for r in runs], [r[1] for r in runs]
        d = [b - a for a, b in runs]
        (sm, ss), (pm, ps), (dm, ds) = mean_sd(s), mean_sd(p), mean_sd(d)
        ref[frac] = (s, p)
        print(f"| TabMlp | encoder–decoder | {frac * 100:g}% | {sm:.4f} ± {ss:.4f} | "
              f"{pm:.4f} ± {ps:.4f} | {dm:+.4f} ± {ds:.4f} |")
    print(f"\n({time.perf_counter() - start:.0f}s in all)")
    rows = [{"model": "TabMlp", "route": "encoder–decoder", "fraction": frac,
             "scratch": s, "pretrained": p} for frac, (s, p) in ref.items()]
    settings = {k: splits[k] for k in ("pretrain", "train", "seeds", "fractions")}
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump({"settings": settings, "rows": rows}, f, indent=1)

    ours_path = os.path.join(OUT, "widedeep.json")
    if not os.path.exists(ours_path):
        return
    with open(ours_path) as f:
        ours = json.load(f)["rows"]
    print("\nSide by side (test AUC, mean ± standard deviation over the seeds):\n")
    print("| model | route | labels | widedeep scratch | reference scratch | widedeep pretrained "
          "| reference pretrained |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in ours:
        if row["model"] != "TabMlp" or row["fraction"] not in ref:
            continue
        s, p = ref[row["fraction"]]
        cells = [mean_sd(v) for v in (row["scratch"], s, row["pretrained"], p)]
        print(f"| {row['model']} | {row['route']} | {row['fraction'] * 100:g}% | " +
              " | ".join(f"{m:.4f} ± {sd:.4f}" for m, sd in cells) + " |")


if __name__ == "__main__":
    main()
