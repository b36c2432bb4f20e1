"""The reference side of `benches/tabnet.rs`: pytorch-widedeep 1.7.0's TabNet on the same Adult
train/test rows with the same hyper-parameters. Prints one JSON line with seconds per epoch, test
accuracy and test AUC.

Run by `cargo bench --bench tabnet` with the venv from `scripts/setup-bench-env.sh`; by hand:

    python benches/tabnet_reference.py --train train.parquet --test test.parquet \
        --params '{"n_steps": 3, ...}' --epochs 5 --batch-size 256 --lr 0.01 --threads 2
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from pytorch_widedeep import Trainer
from pytorch_widedeep.models import TabNet, WideDeep
from pytorch_widedeep.preprocessing import TabPreprocessor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--params", required=True, help="JSON: cat, cont, tabnet kwargs")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--lambda-sparse", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    params = json.loads(args.params)
    cat, cont, tabnet_kwargs = params["cat"], params["cont"], params["tabnet"]

    train = pd.read_parquet(args.train)
    test = pd.read_parquet(args.test)
    y_train = (train["income"] == ">50K").to_numpy().astype(np.float32)
    y_test = (test["income"] == ">50K").to_numpy().astype(np.float32)

    prep = TabPreprocessor(
        cat_embed_cols=cat, continuous_cols=cont, scale=True, verbose=0
    )
    x_train = prep.fit_transform(train)
    x_test = prep.transform(test)

    tabnet = TabNet(
        column_idx=prep.column_idx,
        cat_embed_input=prep.cat_embed_input,
        continuous_cols=cont,
        **tabnet_kwargs,
    )
    model = WideDeep(deeptabular=tabnet)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    trainer = Trainer(
        model,
        objective="binary",
        optimizers=optimizer,
        verbose=0,
        seed=args.seed,
        num_workers=0,
        lambda_sparse=args.lambda_sparse,
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit(
        X_tab=x_train, target=y_train, n_epochs=args.epochs, batch_size=args.batch_size
    )
    secs_per_epoch = (time.perf_counter() - start) / args.epochs
    cpu_secs_per_epoch = (time.process_time() - cpu_start) / args.epochs

    proba = trainer.predict_proba(X_tab=x_test, batch_size=4096)[:, 1]
    accuracy = float(((proba > 0.5) == (y_test > 0.5)).mean())
    auc = float(roc_auc_score(y_test, proba))
    print(
        json.dumps(
            {
                "secs_per_epoch": secs_per_epoch,
                "cpu_secs_per_epoch": cpu_secs_per_epoch,
                "accuracy": accuracy,
                "auc": auc,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
