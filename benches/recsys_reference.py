"""pytorch-widedeep 1.7.0's side of `cargo bench --bench recsys` (see benches/recsys.rs).

Reads the train/validation/test parquet files our side wrote (the same rows, already split and
labelled), builds the named model from `pytorch_widedeep.models.rec` with the hyper-parameters
given as JSON, trains it with its `Trainer` (Adam, binary objective, batch size and epochs as
given, `num_workers=0`) and prints one JSON line: seconds per epoch, test AUC and log-loss,
inference rows per second.

usage: recsys_reference.py DATA_DIR MODEL PARAMS_JSON EPOCHS BATCH LR THREADS SEED
"""

import json
import sys
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import log_loss, roc_auc_score

from pytorch_widedeep import Trainer
from pytorch_widedeep.models import Wide, WideDeep
from pytorch_widedeep.models.rec import (
    AutoIntPlus,
    DeepCrossNetwork,
    DeepCrossNetworkV2,
    GatedDeepCrossNetwork,
    DeepFactorizationMachine,
    ExtremeDeepFactorizationMachine,
    DeepFieldAwareFactorizationMachine,
)
from pytorch_widedeep.preprocessing import TabPreprocessor, WidePreprocessor

warnings.filterwarnings("ignore")


def main():
    data_dir, model_name, params_json, epochs, batch, lr, threads, seed = sys.argv[1:9]
    params = json.loads(params_json)
    epochs, batch, lr, threads, seed = (
        int(epochs),
        int(batch),
        float(lr),
        int(threads),
        int(seed),
    )
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)

    train = pd.read_parquet(f"{data_dir}/train.parquet")
    valid = pd.read_parquet(f"{data_dir}/valid.parquet")
    test = pd.read_parquet(f"{data_dir}/test.parquet")
    cat_cols = params.pop("cat_cols")
    target = params.pop("target")
    embed_dim = params.pop("embed_dim")
    for df in (train, valid, test):
        for c in cat_cols:
            df[c] = df[c].astype(str)

    wide_prep = WidePreprocessor(wide_cols=cat_cols)
    X_wide_tr = wide_prep.fit_transform(train)
    X_wide_va = wide_prep.transform(valid)
    X_wide_te = wide_prep.transform(test)
    wide = Wide(input_dim=int(X_wide_tr.max()) + 1, pred_dim=1)

    tab_prep = TabPreprocessor(
        cat_embed_cols=[(c, embed_dim) for c in cat_cols], verbose=0
    )
    X_tab_tr = tab_prep.fit_transform(train)
    X_tab_va = tab_prep.transform(valid)
    X_tab_te = tab_prep.transform(test)
    with_dims = tab_prep.cat_embed_input  # (name, n_unique, dim)
    no_dims = [(c, n) for c, n, _ in with_dims]
    common = dict(column_idx=tab_prep.column_idx)

    if model_name == "wide":
        deep = None
    elif model_name == "deepfm":
        deep = DeepFactorizationMachine(cat_embed_input=no_dims, **common, **params)
    elif model_name == "deepffm":
        deep = DeepFieldAwareFactorizationMachine(
            cat_embed_input=no_dims, **common, **params
        )
    elif model_name == "xdeepfm":
        deep = ExtremeDeepFactorizationMachine(
            cat_embed_input=no_dims, **common, **params
        )
    elif model_name == "autoint_plus":
        deep = AutoIntPlus(cat_embed_input=no_dims, **common, **params)
    elif model_name == "dcn":
        deep = DeepCrossNetwork(cat_embed_input=with_dims, **common, **params)
    elif model_name == "dcnv2":
        deep = DeepCrossNetworkV2(cat_embed_input=with_dims, **common, **params)
    elif model_name == "gdcn":
        deep = GatedDeepCrossNetwork(cat_embed_input=with_dims, **common, **params)
    else:
        raise SystemExit(f"unknown model {model_name}")

    model = WideDeep(wide=wide, deeptabular=deep) if deep else WideDeep(wide=wide)
    trainer = Trainer(
        model,
        objective="binary",
        optimizers=torch.optim.Adam(model.parameters(), lr=lr),
        num_workers=0,
        verbose=0,
        seed=seed,
    )
    X_train = {"X_wide": X_wide_tr, "target": train[target].values}
    X_val = {"X_wide": X_wide_va, "target": valid[target].values}
    X_test = {"X_wide": X_wide_te}
    if deep:
        X_train["X_tab"] = X_tab_tr
        X_val["X_tab"] = X_tab_va
        X_test["X_tab"] = X_tab_te
    t = time.perf_counter()
    trainer.fit(X_train=X_train, X_val=X_val, n_epochs=epochs, batch_size=batch)
    epoch_s = (time.perf_counter() - t) / epochs
    trainer.batch_size = 4096
    t = time.perf_counter()
    proba = trainer.predict_proba(X_test=X_test, batch_size=4096)[:, 1]
    infer_rows_s = len(test) / (time.perf_counter() - t)
    y = test[target].values
    print(
        json.dumps(
            {
                "epoch_s": epoch_s,
                "auc": float(roc_auc_score(y, proba)),
                "logloss": float(log_loss(y, np.clip(proba, 1e-7, 1 - 1e-7))),
                "infer_rows_s": infer_rows_s,
            }
        )
    )


if __name__ == "__main__":
    main()
