"""Reference side of `benches/zoo.rs`: trains the same attention models with pytorch-widedeep
1.7.0 on the same Adult train/test split and prints one JSON line per model with the seconds per
epoch and the test accuracy.

Run by `cargo bench --bench zoo` (which writes the split and a spec file and passes the spec's
path); by hand: `python benches/zoo_reference.py spec.json`. Needs the venv of
`scripts/setup-bench-env.sh`.

The spec fixes everything both sides share: columns, epochs, batch size, learning rate, threads
and each model's hyper-parameters. The reference trains with `num_workers=0` (its data loader in
the training process, like ours) and with shuffling on (ours shuffles by default; the reference
does not unless asked).
"""

import json
import sys
import time

import numpy as np
import pandas as pd
import torch
from pytorch_widedeep import Trainer
from pytorch_widedeep.models import SAINT, FTTransformer, TabTransformer, WideDeep
from pytorch_widedeep.preprocessing import TabPreprocessor


def build(spec, m, prep):
    common = dict(
        column_idx=prep.column_idx,
        cat_embed_input=prep.cat_embed_input,
        continuous_cols=spec["cont"],
        input_dim=m["input_dim"],
        n_heads=m["n_heads"],
        n_blocks=m["n_blocks"],
        attn_dropout=m["attn_dropout"],
        ff_dropout=m["ff_dropout"],
        ff_factor=m["ff_factor"],
        transformer_activation=m["activation"],
        mlp_hidden_dims=m["mlp_hidden_dims"],
        mlp_dropout=m["mlp_dropout"],
        mlp_linear_first=True,
    )
    if m["cont_norm"] is not None:
        common["cont_norm_layer"] = m["cont_norm"]
    if m["model"] == "tab_transformer":
        return TabTransformer(embed_continuous=m["embed_continuous"], **common)
    if m["model"] == "saint":
        return SAINT(**common)
    if m["model"] == "ft_transformer":
        return FTTransformer(
            kv_compression_factor=m["kv_compression_factor"], **common
        )
    raise ValueError(m["model"])


def main():
    spec = json.load(open(sys.argv[1]))
    torch.set_num_threads(spec["threads"])
    train = pd.read_parquet(spec["train"])
    test = pd.read_parquet(spec["test"])
    y_train = (train["income"] == ">50K").astype(np.float32).values
    y_test = (test["income"] == ">50K").astype(np.int64).values
    for m in spec["models"]:
        prep = TabPreprocessor(
            cat_embed_cols=spec["cat"],
            continuous_cols=spec["cont"],
            cols_to_scale="all",
            with_attention=True,
            with_cls_token=m["cls"],
            verbose=0,
        )
        x_train = prep.fit_transform(train)
        x_test = prep.transform(test)
        torch.manual_seed(spec["seed"])
        np.random.seed(spec["seed"])
        model = WideDeep(deeptabular=build(spec, m, prep))
        optimizer = torch.optim.Adam(model.parameters(), lr=spec["lr"])
        trainer = Trainer(
            model,
            objective="binary",
            optimizers=optimizer,
            num_workers=0,
            device=spec["device"],
            verbose=0,
            seed=spec["seed"],
        )
        start = time.perf_counter()
        trainer.fit(
            X_tab=x_train,
            target=y_train,
            n_epochs=spec["epochs"],
            batch_size=spec["batch_size"],
            shuffle=True,
        )
        secs = (time.perf_counter() - start) / spec["epochs"]
        pred = trainer.predict(X_tab=x_test, batch_size=spec["eval_batch_size"])
        acc = float((pred.reshape(-1) == y_test).mean())
        print(
            json.dumps({"name": m["name"], "secs_per_epoch": secs, "accuracy": acc}),
            flush=True,
        )


if __name__ == "__main__":
    main()
