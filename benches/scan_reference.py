"""pytorch-widedeep 1.7.0's side of `cargo bench --bench scan` (see benches/scan.rs).

Its route for data larger than memory (`load_from_folder`): the chunked preprocessors
`ChunkWidePreprocessor` and `ChunkTabPreprocessor`, fitted with `partial_fit` over the chunks of
`pandas.read_csv(chunksize=...)`. Converts the Parquet folder our side wrote to one CSV file
(not timed), then times the chunked fit with the columns of our benchmark (eight wide columns,
two crosses, ten categorical and three continuous columns, scaled) and prints one JSON line:
seconds, rows, chunk rows.

usage: scan_reference.py PARQUET_DIR CSV_PATH
"""

import glob
import json
import os
import sys
import time

import pandas as pd
import polars as pl

from pytorch_widedeep.preprocessing import ChunkTabPreprocessor, ChunkWidePreprocessor

WIDE = ["education", "relationship", "workclass", "occupation", "native-country", "gender",
        "capital-gain", "capital-loss"]
CROSSED = [("education", "occupation"), ("native-country", "occupation")]
CAT = ["workclass", "education", "marital-status", "occupation", "relationship", "race",
       "gender", "native-country", "capital-gain", "capital-loss"]
CONT = ["age", "educational-num", "hours-per-week"]
CHUNK = 65_536


def main():
    parquet_dir, csv_path = sys.argv[1], sys.argv[2]
    if not os.path.exists(csv_path):
        files = sorted(glob.glob(os.path.join(parquet_dir, "*.parquet")))
        pl.concat([pl.read_parquet(f) for f in files]).write_csv(csv_path + ".tmp")
        os.replace(csv_path + ".tmp", csv_path)
    with open(csv_path) as f:
        rows = sum(1 for _ in f) - 1
    n_chunks = -(-rows // CHUNK)
    start = time.perf_counter()
    wide = ChunkWidePreprocessor(wide_cols=WIDE, crossed_cols=CROSSED, n_chunks=n_chunks)
    tab = ChunkTabPreprocessor(n_chunks=n_chunks, cat_embed_cols=CAT, continuous_cols=CONT,
                               cols_to_scale=CONT, verbose=0)
    for chunk in pd.read_csv(csv_path, chunksize=CHUNK):
        wide.partial_fit(chunk)
        tab.partial_fit(chunk)
    seconds = time.perf_counter() - start
    assert wide.is_fitted and tab.is_fitted
    print(json.dumps({"fit_s": seconds, "rows": rows, "chunk_rows": CHUNK}))


if __name__ == "__main__":
    main()
