"""pytorch-widedeep 1.7.0 side of benches/text_image.rs: TextPreprocessor on the reviews'
`Review Text` (nulls as empty strings) and ImagePreprocessor on mnist5k, median of N runs.
Prints one JSON object: {"text_fit_transform_s": …, "image_<w>_s": …, …}.

    python benches/text_image_reference.py DATASETS_DIR RUNS
"""
import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")
import pandas as pd  # noqa: E402
from pytorch_widedeep.preprocessing import ImagePreprocessor, TextPreprocessor  # noqa: E402


def median_time(f, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def main():
    datasets, runs = sys.argv[1], int(sys.argv[2])
    out = {}
    reviews = pd.read_parquet(os.path.join(datasets, "womens_ecommerce_reviews.parquet"))
    reviews["Review Text"] = reviews["Review Text"].fillna("")

    def text():
        TextPreprocessor(
            text_col="Review Text", max_vocab=30000, min_freq=5, maxlen=80, verbose=0
        ).fit_transform(reviews)

    out["text_fit_transform_s"] = median_time(text, runs)

    labels = pd.read_csv(os.path.join(datasets, "mnist5k", "labels.csv"))
    root = os.path.join(datasets, "mnist5k")
    for size, n in [(64, len(labels)), (224, 1000)]:
        df = labels.head(n)

        def image():
            ImagePreprocessor(
                img_col="image", img_path=root, width=size, height=size, verbose=0
            ).fit_transform(df)

        out[f"image_{size}_s"] = median_time(image, runs)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
