"""pytorch-widedeep 1.7.0's side of `cargo run --release --example low_labels`: the same procedure
on the same rows. Reads the split, the labelled rows and the settings the example wrote to
target/low_labels/splits.json (row indices of datasets/adult.parquet), then, for three seeds:

- TabMlp: pretrains it with EncoderDecoderTrainer (mirror-image decoder, masked_prob 0.2, AdamW
  at 1e-3: its defaults) on every training row, fine-tunes it on 1% and 5% of the labels (Adam
  at 1e-3, shuffled batches) and trains the same model from scratch on the same rows;
- FT-Transformer: the same with ContrastiveDenoisingTrainer (both losses, CutMix and MixUp,
  AdamW at 1e-3: its defaults), through `low_labels_cd` of benches/low_labels_cd_reference.py
  (shared with `cargo bench --bench low_labels_cd`), with the example's FT-Transformer
  dimensions and pretraining settings (splits.json's "contrastive_denoising") and its
  supervised settings (splits.json's "train").

Prints its table and writes it to target/low_labels/reference.json (the example prints both
side by side when it finds it); when the example's results (target/low_labels/widedeep.json)
are there, prints both side by side too.

Run: ~/.cache/widedeep/bench-venv/bin/python benches/low_labels_reference.py [--models M,...]
`--models` (default every model: TabMlp,FT-Transformer) runs some of the models only; the rows
of the others are kept from an existing reference.json written for the same settings.
"""
import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import pandas as pd
import torch
from pytorch_widedeep import Trainer
from pytorch_widedeep.models import TabMlp, WideDeep
from pytorch_widedeep.preprocessing import TabPreprocessor
from pytorch_widedeep.self_supervised_training import EncoderDecoderTrainer
from sklearn.metrics import roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import low_labels_cd_reference as cd_reference  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "low_labels")
CAT = cd_reference.ADULT_CAT
CONT = cd_reference.ADULT_CONT
# the settings both sides must share for the tables to be compared
SETTINGS = ("pretrain", "train", "seeds", "fractions", "contrastive_denoising")
MODELS = {"TabMlp": "encoder–decoder", "FT-Transformer": "contrastive–denoising"}


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


def tabmlp_rows(df, splits, log):
    """{fraction: [(scratch AUC, pretrained AUC) per seed]} for TabMlp, encoder–decoder."""
    y_all = (df["income"] == ">50K").astype(np.float32).values
    train, test = df.iloc[splits["train_rows"]], df.iloc[splits["test_rows"]]
    y_train, y_test = y_all[splits["train_rows"]], y_all[splits["test_rows"]]
    tab = TabPreprocessor(cat_embed_cols=CAT, continuous_cols=CONT, cols_to_scale=CONT, verbose=0)
    x_train = tab.fit_transform(train)
    x_test = tab.transform(test)
    pre, sup = splits["pretrain"], splits["train"]
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
            log(f"TabMlp (encoder-decoder) seed {seed}, {frac * 100:g}% labels: scratch AUC "
                f"{scratch:.4f}, pretrained {pretrained:.4f} (pretraining {pretrain_s:.1f}s)")
            results.setdefault(frac, []).append((scratch, pretrained))
    return results


def ft_transformer_rows(df, splits, log):
    """{fraction: [(scratch AUC, pretrained AUC) per seed]} for the FT-Transformer,
    contrastive–denoising: benches/low_labels_cd_reference.py's procedure with the example's
    settings."""
    cd, sup = splits["contrastive_denoising"], splits["train"]
    dims = (cd["input_dim"], cd["n_heads"], cd["n_blocks"])
    pretrain = (cd["pretrain"]["epochs"], cd["pretrain"]["batch_size"])
    finetune = (sup["epochs"], sup["batch_size"])
    results = {}
    for seed in splits["seeds"]:
        labelled = {str(f): splits["labelled"][str(f)][str(seed)] for f in splits["fractions"]}
        t = time.perf_counter()
        res = cd_reference.low_labels_cd(df, splits["train_rows"], splits["test_rows"], labelled,
                                         seed, dims, pretrain, finetune, sup["lr"])
        seed_s = time.perf_counter() - t
        for frac in splits["fractions"]:
            scratch, pretrained = res[str(frac)]
            log(f"FT-Transformer (contrastive-denoising) seed {seed}, {frac * 100:g}% labels: "
                f"scratch AUC {scratch:.4f}, pretrained {pretrained:.4f} "
                f"(seed {seed_s:.1f}s in all)")
            results.setdefault(frac, []).append((scratch, pretrained))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(MODELS),
                    help="comma-separated, of: " + ", ".join(MODELS))
    args = ap.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        sys.exit(f"--models: unknown model(s) {unknown}; known: {list(MODELS)}")
    # one intra-op thread (libtorch's default of one per core crawls on a shared 2-core machine)
    torch.set_num_threads(int(os.environ.get("LOW_LABELS_THREADS", "1")))
    with open(os.path.join(OUT, "splits.json")) as f:
        splits = json.load(f)
    missing = [k for k in SETTINGS if k not in splits]
    if missing:
        sys.exit(f"{OUT}/splits.json lacks {missing}: rerun `cargo run --release --example "
                 "low_labels`")
    settings = {k: splits[k] for k in SETTINGS}
    df = pd.read_parquet(os.path.join(ROOT, "datasets", "adult.parquet"))
    for c in ["capital-gain", "capital-loss"]:
        df[c] = df[c].astype(str)

    def log(line):
        print(line, flush=True)

    start = time.perf_counter()
    run = {"TabMlp": tabmlp_rows, "FT-Transformer": ft_transformer_rows}
    rows = []
    for model in MODELS:
        if model not in models:
            continue
        t = time.perf_counter()
        for frac, runs in run[model](df, splits, log).items():
            rows.append({"model": model, "route": MODELS[model], "fraction": frac,
                         "scratch": [r[0] for r in runs], "pretrained": [r[1] for r in runs]})
        log(f"{model}: {time.perf_counter() - t:.0f}s")
    ref_path = os.path.join(OUT, "reference.json")
    if len(models) < len(MODELS) and os.path.exists(ref_path):
        with open(ref_path) as f:
            old = json.load(f)
        if old.get("settings") == settings:
            rows += [r for r in old["rows"] if r["model"] not in models]
        else:
            log("(the existing reference.json was written for other settings: its rows of the "
                "other models are dropped)")
    order = list(MODELS)
    rows.sort(key=lambda r: (order.index(r["model"]), r["fraction"]))

    print("\npytorch-widedeep 1.7.0:\n")
    print("| model | route | labels | from scratch AUC | pretrained AUC | Δ |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        d = [b - a for a, b in zip(r["scratch"], r["pretrained"])]
        (sm, ss), (pm, ps), (dm, ds) = mean_sd(r["scratch"]), mean_sd(r["pretrained"]), mean_sd(d)
        print(f"| {r['model']} | {r['route']} | {r['fraction'] * 100:g}% | {sm:.4f} ± {ss:.4f} | "
              f"{pm:.4f} ± {ps:.4f} | {dm:+.4f} ± {ds:.4f} |")
    print(f"\n({time.perf_counter() - start:.0f}s in all for {', '.join(models)})")
    with open(ref_path, "w") as f:
        json.dump({"settings": settings, "rows": rows}, f, indent=1)

    ours_path = os.path.join(OUT, "widedeep.json")
    if not os.path.exists(ours_path):
        return
    with open(ours_path) as f:
        ours = json.load(f)["rows"]
    print("\nSide by side (test AUC, mean ± standard deviation over the seeds):\n")
    print("| model | route | labels | widedeep scratch | reference scratch | widedeep pretrained "
          "| reference pretrained | pretrained: ours − reference |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in ours:
        theirs = next((r for r in rows if r["model"] == row["model"]
                       and r["route"] == row["route"] and r["fraction"] == row["fraction"]), None)
        if theirs is None:
            continue
        cells = [mean_sd(v) for v in (row["scratch"], theirs["scratch"], row["pretrained"],
                                      theirs["pretrained"])]
        diff = cells[2][0] - cells[3][0]
        spread = max(cells[2][1], cells[3][1])
        within = "within" if abs(diff) <= spread else "outside"
        print(f"| {row['model']} | {row['route']} | {row['fraction'] * 100:g}% | " +
              " | ".join(f"{m:.4f} ± {sd:.4f}" for m, sd in cells) +
              f" | {diff:+.4f} ({within} the seeds' spread {spread:.4f}) |")


if __name__ == "__main__":
    main()
