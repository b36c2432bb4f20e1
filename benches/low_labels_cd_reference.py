"""Reference side of the FT-Transformer rows of `low_labels` (benches/low_labels_cd.rs):
pytorch-widedeep 1.7.0's ContrastiveDenoisingTrainer on every Adult training row (labels
unused), then its Trainer on the labelled rows only, against the same FT-Transformer trained
from scratch on the same rows. The settings are those of examples/common/low_labels_cd.rs:
FT-Transformer input_dim 32, 4 heads, 2 blocks, otherwise the defaults (no [CLS] token, no
MLP); pretraining 3 epochs, batch size 128, the trainer's defaults (AdamW, both losses);
fine-tuning 20 epochs, batch size 32, Adam lr 1e-3, shuffled.

Run: ~/.cache/widedeep/bench-venv/bin/python benches/low_labels_cd_reference.py \
       --rows target/low_labels_cd/rows_seed1.json --data-dir datasets
The JSON file holds `train_rows` and `test_rows` (row indices into adult.parquet),
`labelled` ({fraction: positions in the training rows}) and `seed`. Prints one JSON object
{fraction: [scratch AUC, pretrained AUC]}.

`low_labels_cd` is also the FT-Transformer side of benches/low_labels_reference.py (the
example's split), which passes the settings the example wrote to its splits.json.
"""
import argparse
import json
import os

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from pytorch_widedeep import Trainer
from pytorch_widedeep.models import FTTransformer, WideDeep
from pytorch_widedeep.preprocessing import TabPreprocessor
from pytorch_widedeep.self_supervised_training import ContrastiveDenoisingTrainer

ADULT_CAT = ["workclass", "education", "marital-status", "occupation", "relationship", "race",
             "gender", "native-country", "capital-gain", "capital-loss"]
ADULT_CONT = ["age", "educational-num", "hours-per-week"]
FT_DIMS = (32, 4, 2)
PRETRAIN = (3, 128)
FINETUNE = (20, 32)


def seed_all(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


def ft_transformer(tab, dims=FT_DIMS):
    d, h, b = dims
    return FTTransformer(column_idx=tab.column_idx, cat_embed_input=tab.cat_embed_input,
                         continuous_cols=ADULT_CONT, input_dim=d, n_heads=h, n_blocks=b)


def fine_tune_auc(model, x, y, x_test, y_test, seed, finetune=FINETUNE, lr=1e-3):
    epochs, batch_size = finetune
    wd = WideDeep(deeptabular=model)
    trainer = Trainer(wd, objective="binary",
                      optimizers=torch.optim.Adam(wd.parameters(), lr=lr),
                      num_workers=0, verbose=0, seed=seed)
    trainer.fit(X_tab=x, target=y, n_epochs=epochs, batch_size=batch_size, shuffle=True)
    trainer.batch_size = 1024
    proba = trainer.predict_proba(X_tab=x_test, batch_size=1024)[:, 1]
    return float(roc_auc_score(y_test, proba))


def low_labels_cd(df, train_rows, test_rows, labelled, seed, dims=FT_DIMS, pretrain=PRETRAIN,
                  finetune=FINETUNE, lr=1e-3):
    """{fraction: (scratch AUC, pretrained AUC)} for the labelled positions of each fraction.

    `dims` (input_dim, n_heads, n_blocks), `pretrain` and `finetune` (epochs, batch size) and
    the fine-tuning `lr` default to the settings of examples/common/low_labels_cd.rs."""
    train, test = df.iloc[train_rows], df.iloc[test_rows]
    y = (train["income"] == ">50K").astype(np.float32).values
    y_test = (test["income"] == ">50K").astype(np.float32).values
    tab = TabPreprocessor(cat_embed_cols=ADULT_CAT, continuous_cols=ADULT_CONT,
                          cols_to_scale="all", with_attention=True, verbose=0)
    x = tab.fit_transform(train)
    x_test = tab.transform(test)
    seed_all(seed)
    encoder = ft_transformer(tab, dims)
    epochs, batch_size = pretrain
    cd = ContrastiveDenoisingTrainer(encoder, tab, verbose=0, seed=seed, num_workers=0)
    cd.pretrain(x, n_epochs=epochs, batch_size=batch_size)
    pretrained_state = {k: v.clone() for k, v in encoder.state_dict().items()}
    out = {}
    for frac, pos in labelled.items():
        pos = np.asarray(pos)
        seed_all(seed)
        scratch = fine_tune_auc(ft_transformer(tab, dims), x[pos], y[pos], x_test, y_test, seed,
                                finetune, lr)
        seed_all(seed)
        model = ft_transformer(tab, dims)
        model.load_state_dict(pretrained_state)
        pretrained = fine_tune_auc(model, x[pos], y[pos], x_test, y_test, seed, finetune, lr)
        out[frac] = (scratch, pretrained)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.rows) as f:
        spec = json.load(f)
    df = pd.read_parquet(os.path.join(args.data_dir, "adult.parquet"))
    for c in ["capital-gain", "capital-loss"]:
        df[c] = df[c].astype(str)
    res = low_labels_cd(df, spec["train_rows"], spec["test_rows"], spec["labelled"], spec["seed"])
    print(json.dumps(res))


if __name__ == "__main__":
    main()
