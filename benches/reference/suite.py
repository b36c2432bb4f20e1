"""Reference side of `cargo bench --bench suite`: one configuration of the suite with
pytorch-widedeep 1.7.0, with the same data, split (every fifth row is a test row), columns,
hyper-parameters and batch size as benches/suite.rs, which passes the configuration as JSON.

Prints one JSON object: preprocessing seconds, seconds per epoch, inference rows/s, peak RSS and
the held-out metric (accuracy or RMSE). Run by the Rust harness with the bench venv's python
(scripts/setup-bench-env.sh). `--num-workers N` selects the DataLoader workers (the reference's
default is os.cpu_count()); `--threads T` calls torch.set_num_threads(T) (default: torch's own).
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
from pytorch_widedeep import Trainer
from pytorch_widedeep.models import (SAINT, BasicRNN, FTTransformer, TabMlp, TabTransformer,
                                     Wide, WideDeep)
from pytorch_widedeep.preprocessing import (TabPreprocessor, TextPreprocessor,
                                            WidePreprocessor)

ADULT_CAT = ["workclass", "education", "marital-status", "occupation", "relationship", "race",
             "gender", "native-country", "capital-gain", "capital-loss"]
ADULT_CONT = ["age", "educational-num", "hours-per-week"]
ADULT_WIDE = ["education", "relationship", "workclass", "occupation", "native-country", "gender",
              "capital-gain", "capital-loss"]
CROSSED = [("education", "occupation"), ("native-country", "occupation")]
CALIFORNIA_CONT = ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup",
                   "Latitude", "Longitude"]
REVIEWS_CAT = ["Division Name", "Department Name", "Class Name"]
REVIEWS_CONT = ["Age", "Positive Feedback Count"]
SEED = 1
LR = 1e-3


def load(cfg, data_dir):
    df = pd.read_parquet(os.path.join(data_dir, cfg["data"] + ".parquet"))
    if cfg["data"] == "adult":
        for c in ["capital-gain", "capital-loss"]:
            df[c] = df[c].astype(str)
        target = (df["income"] == ">50K").astype(np.float32).values
    elif cfg["data"] == "california_housing":
        target = df["MedHouseVal"].astype(np.float32).values
    else:
        df["Review Text"] = df["Review Text"].fillna("")
        for c in REVIEWS_CAT:
            df[c] = df[c].fillna("unknown")
        target = df["Recommended IND"].astype(np.float32).values
    if cfg["replicate"] > 1:
        df = pd.concat([df] * cfg["replicate"], ignore_index=True)
        target = np.concatenate([target] * cfg["replicate"])
    test = (np.arange(len(df)) % 5) == 0
    return df[~test], df[test], target[~test], target[test]


def preprocess(cfg, train, test):
    """Fits on train, transforms both; returns (train inputs, test inputs, preprocessors)."""
    if cfg["data"] == "adult" and cfg["model"] == "wide_tabmlp":
        wide = WidePreprocessor(wide_cols=ADULT_WIDE, crossed_cols=CROSSED)
        tab = TabPreprocessor(cat_embed_cols=ADULT_CAT, continuous_cols=ADULT_CONT,
                              cols_to_scale=ADULT_CONT, verbose=0)
        xw, xt = wide.fit_transform(train), tab.fit_transform(train)
        return (dict(X_wide=xw, X_tab=xt),
                dict(X_wide=wide.transform(test), X_tab=tab.transform(test)),
                dict(wide=wide, tab=tab))
    if cfg["data"] == "adult" and cfg["model"].startswith("ed_"):
        tab = TabPreprocessor(cat_embed_cols=ADULT_CAT, continuous_cols=ADULT_CONT,
                              cols_to_scale=ADULT_CONT, verbose=0)
        return (dict(X_tab=tab.fit_transform(train)), dict(X_tab=tab.transform(test)),
                dict(tab=tab))
    if cfg["data"] == "adult":
        a = cfg["attn"]
        tab = TabPreprocessor(cat_embed_cols=ADULT_CAT, continuous_cols=ADULT_CONT,
                              cols_to_scale="all", with_attention=True,
                              with_cls_token=a["cls"], verbose=0)
        return (dict(X_tab=tab.fit_transform(train)), dict(X_tab=tab.transform(test)),
                dict(tab=tab))
    if cfg["data"] == "california_housing":
        tab = TabPreprocessor(continuous_cols=CALIFORNIA_CONT, cols_to_scale=CALIFORNIA_CONT,
                              verbose=0)
        return (dict(X_tab=tab.fit_transform(train)), dict(X_tab=tab.transform(test)),
                dict(tab=tab))
    tab = TabPreprocessor(cat_embed_cols=REVIEWS_CAT, continuous_cols=REVIEWS_CONT,
                          cols_to_scale=REVIEWS_CONT, verbose=0)
    text = TextPreprocessor(text_col="Review Text", max_vocab=30000, min_freq=5, maxlen=80,
                            verbose=0)
    return (dict(X_tab=tab.fit_transform(train), X_text=text.fit_transform(train)),
            dict(X_tab=tab.transform(test), X_text=text.transform(test)),
            dict(tab=tab, text=text))


def attention_model(cfg, tab):
    """The attention model of `cfg` on its own (the deeptabular component)."""
    a = cfg["attn"]
    common = dict(column_idx=tab.column_idx, cat_embed_input=tab.cat_embed_input,
                  continuous_cols=ADULT_CONT, input_dim=a["input_dim"],
                  n_heads=a["n_heads"], n_blocks=a["n_blocks"],
                  attn_dropout=a["attn_dropout"], ff_dropout=a["ff_dropout"],
                  ff_factor=a["ff_factor"], transformer_activation=a["activation"],
                  mlp_hidden_dims=a["mlp_hidden_dims"], mlp_dropout=a["mlp_dropout"],
                  mlp_linear_first=True)
    if cfg["model"] == "tab_transformer":
        return TabTransformer(**common)
    if cfg["model"] == "ft_transformer":
        return FTTransformer(kv_compression_factor=a["kv_compression_factor"], **common)
    return SAINT(**common)


def build(cfg, preps, x_train):
    tab = preps["tab"]
    if cfg["attn"] is not None:
        return WideDeep(deeptabular=attention_model(cfg, tab))
    cont = {"adult": ADULT_CONT, "california_housing": CALIFORNIA_CONT}.get(cfg["data"],
                                                                           REVIEWS_CONT)
    mlp = TabMlp(column_idx=tab.column_idx, cat_embed_input=getattr(tab, "cat_embed_input", None),
                 continuous_cols=cont, mlp_hidden_dims=[64, 32], mlp_dropout=0.1,
                 cont_norm_layer="batchnorm" if cfg["model"] == "wide_tabmlp" else None)
    if cfg["model"] == "wide_tabmlp":
        wide = Wide(input_dim=int(x_train["X_wide"].max()), pred_dim=1)
        return WideDeep(wide=wide, deeptabular=mlp)
    if cfg["model"] == "tabmlp":
        return WideDeep(deeptabular=mlp)
    text = preps["text"]
    rnn = BasicRNN(vocab_size=len(text.vocab.itos), embed_dim=32, hidden_dim=64, n_layers=1,
                   rnn_type="lstm")
    return WideDeep(deeptabular=mlp, deeptext=rnn)


def run_pretrain(cfg, args, x_train, x_test, preps, prep_s):
    """An encoder-decoder pretraining configuration: EncoderDecoderTrainer (mirror-image
    decoder, masked_prob 0.2, AdamW at LR) over the training rows; seconds per pretraining
    epoch, then the reconstruction loss on the test rows in evaluation mode (batches of
    batch_size, the mean over rows) and the rows/s of that evaluation."""
    from pytorch_widedeep.models import TabNet, TabResnet
    from pytorch_widedeep.self_supervised_training import EncoderDecoderTrainer

    tab = preps["tab"]
    common = dict(column_idx=tab.column_idx, cat_embed_input=tab.cat_embed_input,
                  continuous_cols=ADULT_CONT)
    if cfg["model"] == "ed_tabresnet":
        encoder = TabResnet(blocks_dims=[64, 32, 32], blocks_dropout=0.1, **common)
    elif cfg["model"] == "ed_tabnet":
        encoder = TabNet(**common)
    else:
        encoder = TabMlp(mlp_hidden_dims=[64, 32], mlp_dropout=0.1, **common)
    trainer = EncoderDecoderTrainer(
        encoder=encoder, masked_prob=0.2,
        optimizer=None, verbose=0, seed=SEED, num_workers=args.num_workers, device=args.device)
    for g in trainer.optimizer.param_groups:
        g["lr"] = LR
    x, xt = x_train["X_tab"], x_test["X_tab"]
    out = {"prep_s": prep_s}
    t = time.perf_counter()
    trainer.pretrain(x, n_epochs=cfg["epochs"], batch_size=cfg["batch_size"])
    out["epoch_s"] = (time.perf_counter() - t) / cfg["epochs"]
    if cfg["model"] == "ed_tabnet":
        # EncoderDecoderModel._forward_tabnet in evaluation mode passes the embeddings to
        # TabNet.forward, which embeds them again: no held-out figure on this side
        out.update(infer_rows_s=None, metric="recon_loss", value=None,
                   peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
        print(json.dumps(out))
        sys.stdout.flush()
        return
    model = trainer.ed_model
    model.eval()
    bs = cfg["batch_size"]
    t = time.perf_counter()
    total, seen = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(xt), bs):
            xb = torch.from_numpy(xt[i:i + bs]).to(args.device)
            if len(xb) < 2:
                continue
            loss = trainer.loss_fn(*model(xb))
            total += loss.item() * len(xb)
            seen += len(xb)
    out["infer_rows_s"] = len(xt) / (time.perf_counter() - t)
    out["metric"] = "recon_loss"
    out["value"] = total / seen
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out))
    sys.stdout.flush()


def run_vision(cfg, args):
    """The image configuration against PyTorch's own loop (torchvision's ResNet-18, not
    pytorch-widedeep): the same split, image size, per-channel normalisation fitted on the
    training images, Adam at LR, shuffled batches; prints the same JSON as the other configs."""
    import torchvision
    from PIL import Image

    device = torch.device(args.device)
    root = os.path.join(args.data_dir, "mnist5k")
    labels = pd.read_csv(os.path.join(root, "labels.csv"))
    size = cfg["image_size"]
    test = (np.arange(len(labels)) % 5) == 0
    t = time.perf_counter()

    def decode(paths):
        return np.stack([np.asarray(Image.open(os.path.join(root, p)).convert("RGB")
                                    .resize((size, size), Image.BILINEAR))
                         for p in paths]).transpose(0, 3, 1, 2).copy()  # u8 NCHW

    x_train = torch.from_numpy(decode(labels["image"][~test]))
    x_test = torch.from_numpy(decode(labels["image"][test]))
    y_train = torch.from_numpy(labels["label"][~test].values).long()
    y_test = torch.from_numpy(labels["label"][test].values).long()
    scaled = x_train.float() / 255.0
    mean = scaled.mean(dim=(0, 2, 3)).view(1, 3, 1, 1).to(device)
    std = scaled.std(dim=(0, 2, 3)).view(1, 3, 1, 1).to(device)
    del scaled
    prep_s = time.perf_counter() - t

    def batch(x):
        return (x.to(device).float() / 255.0 - mean) / std

    model = torchvision.models.resnet18(num_classes=10).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    out = {"prep_s": prep_s}
    bs = cfg["batch_size"]
    t = time.perf_counter()
    for _ in range(cfg["epochs"]):
        model.train()
        order = torch.randperm(len(x_train))
        for i in range(0, len(order), bs):
            idx = order[i:i + bs]
            opt.zero_grad()
            loss = loss_fn(model(batch(x_train[idx])), y_train[idx].to(device))
            loss.backward()
            opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    out["epoch_s"] = (time.perf_counter() - t) / cfg["epochs"]
    model.eval()
    t = time.perf_counter()
    preds = []
    with torch.no_grad():
        for i in range(0, len(x_test), cfg["eval_batch_size"]):
            preds.append(model(batch(x_test[i:i + cfg["eval_batch_size"]])).argmax(1).cpu())
    out["infer_rows_s"] = len(x_test) / (time.perf_counter() - t)
    out["metric"] = "accuracy"
    out["value"] = float((torch.cat(preds) == y_test).float().mean())
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out))
    sys.stdout.flush()


def run_cd_pretrain(cfg, args, preps, x_train, prep_s):
    """Contrastive-denoising pretraining epochs of the attention model (the trainer's defaults:
    both losses, AdamW at lr 1e-3), then the pretraining loss in evaluation mode on the first
    5000 training rows (no validation set during pretraining: the reference's
    trainer would stay in evaluation mode after it)."""
    from pytorch_widedeep.self_supervised_training import ContrastiveDenoisingTrainer
    model = attention_model(cfg, preps["tab"])
    cd = ContrastiveDenoisingTrainer(model, preps["tab"], verbose=0, seed=SEED,
                                     num_workers=args.num_workers, device=args.device)
    x = x_train["X_tab"]
    t = time.perf_counter()
    cd.pretrain(x, n_epochs=cfg["epochs"], batch_size=cfg["batch_size"])
    epoch_s = (time.perf_counter() - t) / cfg["epochs"]
    cd.cd_model.eval()
    losses = []
    # the reference cannot score rows with categories unseen in training (its class targets
    # go negative), so both sides score the first 5000 training rows
    xt = torch.from_numpy(x[:5000])
    bs = cfg["eval_batch_size"]
    with torch.no_grad():
        for i in range(0, len(xt), bs):
            losses.append(float(cd._compute_loss(*cd.cd_model(xt[i:i + bs].to(args.device)))))
    out = {"prep_s": prep_s, "epoch_s": epoch_s, "infer_rows_s": None, "metric": "cd_loss",
           "value": float(np.mean(losses)),
           "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    print(json.dumps(out))
    sys.stdout.flush()


def run_bayesian(cfg, args):
    """The Bayesian configurations: pytorch-widedeep's BayesianTabMlp or BayesianWide trained
    by its BayesianTrainer (ELBO: summed data loss + KL / n_batches, `n_train_samples`
    networks per step, no shuffling), Adam at LR; inference and the held-out accuracy with the
    posterior-mean weights (the reference's `predict_proba` without `return_samples`)."""
    from pytorch_widedeep.bayesian_models import BayesianTabMlp, BayesianWide
    from pytorch_widedeep.training import BayesianTrainer

    train, test, y_train, y_test = load(cfg, args.data_dir)
    t = time.perf_counter()
    if cfg["model"] == "bayesian_wide":
        wide = WidePreprocessor(wide_cols=ADULT_WIDE, crossed_cols=CROSSED)
        x_train = wide.fit_transform(train)
        x_test = wide.transform(test)
    else:
        tab = TabPreprocessor(cat_embed_cols=ADULT_CAT, continuous_cols=ADULT_CONT,
                              cols_to_scale=ADULT_CONT, verbose=0)
        x_train = tab.fit_transform(train)
        x_test = tab.transform(test)
    prep_s = time.perf_counter() - t
    b = cfg["bayes"]
    if cfg["model"] == "bayesian_wide":
        model = BayesianWide(input_dim=int(x_train.max()), pred_dim=1)
    else:
        model = BayesianTabMlp(column_idx=tab.column_idx, cat_embed_input=tab.cat_embed_input,
                               continuous_cols=ADULT_CONT,
                               mlp_hidden_dims=b["hidden_dims"], mlp_activation="leaky_relu")
    trainer = BayesianTrainer(model, objective="binary",
                              optimizer=torch.optim.Adam(model.parameters(), lr=LR),
                              device=args.device, num_workers=args.num_workers, verbose=0,
                              seed=SEED)
    t = time.perf_counter()
    trainer.fit(X_tab=x_train, target=y_train, n_epochs=cfg["epochs"],
                batch_size=cfg["batch_size"], n_train_samples=b["n_train_samples"])
    epoch_s = (time.perf_counter() - t) / cfg["epochs"]
    t = time.perf_counter()
    prob = trainer.predict_proba(X_tab=x_test, batch_size=cfg["eval_batch_size"])[:, 1]
    infer = len(y_test) / (time.perf_counter() - t)
    out = {"prep_s": prep_s, "epoch_s": epoch_s, "infer_rows_s": infer, "metric": "accuracy",
           "value": float(((prob > 0.5).astype(np.float32) == y_test).mean()),
           "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    print(json.dumps(out))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="the configuration as JSON")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--num-workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()
    cfg = json.loads(args.config)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    if cfg["data"] == "mnist5k":
        return run_vision(cfg, args)
    if cfg["model"].startswith("bayesian"):
        return run_bayesian(cfg, args)

    train, test, y_train, y_test = load(cfg, args.data_dir)
    t = time.perf_counter()
    x_train, x_test, preps = preprocess(cfg, train, test)
    prep_s = time.perf_counter() - t
    del train, test
    if cfg["model"].startswith("ed_"):
        return run_pretrain(cfg, args, x_train, x_test, preps, prep_s)

    if cfg.get("cd_pretrain"):
        return run_cd_pretrain(cfg, args, preps, x_train, prep_s)
    regression = cfg["data"] == "california_housing"
    objective = "regression" if regression else "binary"
    model = build(cfg, preps, x_train)
    trainer = Trainer(model, objective=objective,
                      optimizers=torch.optim.Adam(model.parameters(), lr=LR),
                      num_workers=args.num_workers, device=args.device, verbose=0, seed=SEED)
    out = {"prep_s": prep_s, "epoch_s": float("nan"), "metric": "", "value": float("nan")}
    if cfg["train"]:
        t = time.perf_counter()
        trainer.fit(target=y_train, n_epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                    shuffle=True, **x_train)
        out["epoch_s"] = (time.perf_counter() - t) / cfg["epochs"]
    # pytorch-widedeep's _predict ignores its batch_size argument once fit has set
    # trainer.batch_size (it predicts with the training batch size); set it so that both sides
    # predict with the same eval batch size
    trainer.batch_size = cfg["eval_batch_size"]
    t = time.perf_counter()
    if regression:
        pred = trainer.predict(batch_size=cfg["eval_batch_size"], **x_test).reshape(-1)
    else:
        pred = trainer.predict_proba(batch_size=cfg["eval_batch_size"], **x_test)[:, 1]
    out["infer_rows_s"] = len(y_test) / (time.perf_counter() - t)
    if cfg["train"]:
        if regression:
            out["metric"] = "rmse"
            out["value"] = float(np.sqrt(np.mean((pred - y_test) ** 2)))
        else:
            out["metric"] = "accuracy"
            out["value"] = float(((pred > 0.5).astype(np.float32) == y_test).mean())
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    # JSON has no NaN: "not measured" is null
    print(json.dumps({k: (None if isinstance(v, float) and v != v else v) for k, v in out.items()}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
