"""Reference side of `make bench-serve`: pytorch-widedeep 1.7.0's Adult Wide + TabMlp behind
FastAPI + uvicorn, the usual Python deployment of such a model.

The model has the shape of `examples/configs/adult.toml` (the same wide and crossed columns, the
same embedded and continuous columns, TabMlp [64, 32] with dropout 0.1 and batch norm on the
continuous columns), fitted on the same 80% of Adult (every fifth row is held out, as in
benches/reference/suite.py) for `--epochs` epochs: the load test measures serving, not accuracy.

`POST /predict` takes the same JSON records as `widedeep serve` (`[{"age": 39, ...}, ...]`) and
answers `{"classes", "predictions", "probabilities"}`; `GET /health` answers `{"status": "ok"}`.
The endpoint is a plain `def`, so FastAPI runs it on its thread pool; the preprocessors'
`transform` and `Trainer.predict_proba` do the work (the latter under a lock, see `app_for`, and
with `num_workers=0`: a DataLoader worker process per request would only be slower). Served by uvicorn with uvloop and httptools (the
`uvicorn[standard]` extras) on 127.0.0.1 only, with `--workers` processes (the model is fitted
once and loaded by each worker, which gets its share of the cores as libtorch threads).

Run by benches/serve.sh with the bench venv's python (scripts/setup-bench-env.sh).
"""
import argparse
import os
import sys
import threading

import numpy as np
import pandas as pd
import uvicorn
from fastapi import FastAPI, HTTPException
from pytorch_widedeep import Trainer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
import suite  # noqa: E402  (the suite's Adult loading, preprocessing and model)

CLASSES = ["<=50K", ">50K"]
CATEGORICAL_NUMBERS = ["capital-gain", "capital-loss"]


def fit(data_dir, epochs):
    cfg = {"data": "adult", "model": "wide_tabmlp", "replicate": 1, "attn": None}
    train, _, y_train, _ = suite.load(cfg, data_dir)
    x_train, _, preps = suite.preprocess(cfg, train, train.head(1))
    model = suite.build(cfg, preps, x_train)
    trainer = Trainer(model, objective="binary", num_workers=0, verbose=0, seed=suite.SEED)
    trainer.fit(**x_train, target=y_train, n_epochs=epochs, batch_size=256)
    return preps, trainer


def app_for(preps, trainer):
    app = FastAPI()
    # `Trainer.predict_proba` switches the model to evaluation mode and back to training mode
    # when it returns, so two requests on FastAPI's thread pool at once can run a prediction in
    # training mode (batch norm then fails on a single row). The lock serialises predictions,
    # as a deployment of this model has to.
    lock = threading.Lock()

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.post("/predict")
    def predict(records: list[dict]):
        if not records:
            raise HTTPException(status_code=400, detail="empty list of records")
        df = pd.DataFrame.from_records(records)
        for c in CATEGORICAL_NUMBERS:
            df[c] = df[c].astype(str)
        try:
            x_wide = preps["wide"].transform(df)
            x_tab = preps["tab"].transform(df)
        except (KeyError, ValueError) as e:
            raise HTTPException(status_code=422, detail=str(e))
        with lock:
            proba = trainer.predict_proba(X_wide=x_wide, X_tab=x_tab, batch_size=len(df))
        return {
            "classes": CLASSES,
            "predictions": [CLASSES[i] for i in np.argmax(proba, axis=1)],
            "probabilities": proba.tolist(),
        }

    return app


def load_saved(path):
    """The fitted preprocessors and model written by `main`, in a fresh uvicorn worker."""
    import pickle

    import torch

    # Several workers share the cores: each gets its share of intra-op threads, or their
    # OpenMP threads oversubscribe the cores (at 2 workers × 2 threads on 2 cores, 1,000-row
    # requests time out).
    workers = int(os.environ.get("WIDEDEEP_SERVE_REF_WORKERS", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    with open(os.path.join(path, "preprocessors.pkl"), "rb") as f:
        preps = pickle.load(f)
    model = torch.load(os.path.join(path, "model.pt"), weights_only=False)
    trainer = Trainer(model, objective="binary", num_workers=0, verbose=0, seed=suite.SEED)
    return app_for(preps, trainer)


# Each uvicorn worker process imports this module: with several workers, the model fitted once
# by `main` is loaded from the directory it names.
APP = load_saved(os.environ["WIDEDEEP_SERVE_REF_DIR"]) if "WIDEDEEP_SERVE_REF_DIR" in os.environ \
    else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--data-dir", default="datasets")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--model-dir", help="where to save the model for several workers")
    args = ap.parse_args()
    preps, trainer = fit(args.data_dir, args.epochs)
    if args.workers == 1:
        uvicorn.run(app_for(preps, trainer), host="127.0.0.1", port=args.port,
                    log_level="warning", access_log=False)
        return
    import pickle

    import torch

    os.makedirs(args.model_dir, exist_ok=True)
    with open(os.path.join(args.model_dir, "preprocessors.pkl"), "wb") as f:
        pickle.dump(preps, f)
    torch.save(trainer.model, os.path.join(args.model_dir, "model.pt"))
    # The usual multi-process deployment, `uvicorn module:app --workers N`, in place of this
    # process; each worker loads the saved model when it imports this module.
    os.environ["WIDEDEEP_SERVE_REF_DIR"] = args.model_dir
    os.environ["WIDEDEEP_SERVE_REF_WORKERS"] = str(args.workers)
    os.execv(sys.executable, [
        sys.executable, "-m", "uvicorn", "serve_reference:APP", "--host", "127.0.0.1",
        "--port", str(args.port), "--workers", str(args.workers), "--log-level", "warning",
        "--no-access-log", "--app-dir", os.path.dirname(os.path.abspath(__file__)),
    ])


if __name__ == "__main__":
    main()
