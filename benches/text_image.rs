//! Text and image preprocessing against pytorch-widedeep 1.7.0 on the same data and machine:
//! `TextPreprocessor::fit_transform` on the 23,486 reviews (`Review Text`, reference defaults:
//! word vocabulary, min_freq 5, max_vocab 30,000, maxlen 80) and `ImagePreprocessor`
//! decode + aspect-aware resize + centre crop of mnist5k at 64 × 64 (5,000 images) and
//! 224 × 224 (first 1,000): `decode_resize` (u8 HWC out) and the whole `fit_transform` (fitted
//! mean/std, u8 NCHW out — the model normalises per batch), both against the reference's
//! `fit_transform` (uint8 out): like for like. Median of 5 runs; prints a markdown table.
//!
//! Run: `cargo bench --bench text_image` (libtorch set up as in the README). The reference side
//! runs `benches/text_image_reference.py` in the venv of `scripts/setup-bench-env.sh` (set
//! `WIDEDEEP_BENCH_PYTHON` to another interpreter; the column stays empty if it cannot run).

mod common;
use common::median_of;
use widedeep::datasets;
use widedeep::prelude::*;

const RUNS: usize = 5;

fn reference() -> Option<serde_json::Value> {
    let python = match std::env::var("WIDEDEEP_BENCH_PYTHON") {
        Ok(p) => p,
        Err(_) => {
            let out = std::process::Command::new("bash")
                .arg("scripts/setup-bench-env.sh")
                .output()
                .ok()?;
            let venv = String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()?
                .to_string();
            format!("{venv}/bin/python")
        }
    };
    let out = std::process::Command::new(python)
        .arg("benches/text_image_reference.py")
        .arg(datasets::datasets_dir())
        .arg(RUNS.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("reference failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    serde_json::from_slice(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()?
            .as_bytes(),
    )
    .ok()
}

fn main() -> anyhow::Result<()> {
    let reviews = datasets::womens_ecommerce_reviews()?;
    let text = median_of(RUNS, || {
        TextPreprocessor::new("Review Text")
            .fit_transform(&reviews)
            .expect("text");
    });
    let labels = datasets::mnist5k_labels()?;
    let mut rows = vec![(
        format!(
            "TextPreprocessor fit_transform, {} reviews",
            reviews.height()
        ),
        text,
        "text_fit_transform_s",
    )];
    for (size, n) in [(64u32, labels.height()), (224, 1000)] {
        let df = labels.head(Some(n));
        let prep = ImagePreprocessor::from_paths("image", datasets::mnist5k_dir()).size(size, size);
        let t = median_of(RUNS, || {
            prep.decode_resize(&df).expect("images");
        });
        rows.push((
            format!(
                "image decode + resize + crop (u8 HWC out), {n} mnist5k images → {size}×{size}"
            ),
            t,
            if size == 64 {
                "image_64_s"
            } else {
                "image_224_s"
            },
        ));
        let t = median_of(RUNS, || {
            ImagePreprocessor::from_paths("image", datasets::mnist5k_dir())
                .size(size, size)
                .normalization(Normalization::Fitted)
                .fit_transform(&df)
                .expect("images");
        });
        rows.push((
            format!("ImagePreprocessor fit_transform (+ fitted mean/std, u8 NCHW out), {n} images → {size}×{size}"),
            t,
            if size == 64 {
                "image_64_s"
            } else {
                "image_224_s"
            },
        ));
    }
    let reference = reference();
    println!(
        "median of {RUNS} runs, {} threads\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| step | widedeep (s) | pytorch-widedeep 1.7.0 (s) | speed-up |\n|---|---:|---:|---:|"
    );
    for (name, t, key) in rows {
        let ours = t.as_secs_f64();
        let theirs = reference.as_ref().and_then(|r| r[key].as_f64());
        match theirs {
            Some(r) => println!("| {name} | {ours:.3} | {r:.3} | {:.1}× |", r / ours),
            None => println!("| {name} | {ours:.3} | – | – |"),
        }
    }
    Ok(())
}
