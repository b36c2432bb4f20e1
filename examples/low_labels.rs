//! Few labels: self-supervised pretraining on every training row (labels unused), then
//! fine-tuning on 1% and 5% of the training labels, against the same model trained from
//! scratch on the same labelled rows. UCI Adult (bundled), the split of `examples/adult.rs`
//! (80% train, 20% test, seed 42), three seeds; prints the test AUC as a markdown table (mean ±
//! standard deviation over the seeds).
//!
//! Each row of the table is a `Case`: a model and its pretraining route (TabMlp with the
//! encoder–decoder route, FT-Transformer with the contrastive–denoising route, the settings of
//! `examples/common/low_labels_cd.rs`). The labelled rows and the split are written to
//! `target/low_labels/splits.json` (row indices of `datasets/adult.parquet`), our results to
//! `target/low_labels/widedeep.json`; `benches/low_labels_reference.py` runs pytorch-widedeep's
//! same procedure on the same rows and writes `target/low_labels/reference.json`, which the
//! next run of this example prints side by side with its own results, every row with the
//! difference of the pretrained means and whether it lies within the seeds' spread (when the
//! settings match: `splits.json` carries them, the FT-Transformer's dimensions and its
//! contrastive–denoising pretraining included, and the reference script reads them from it).
//! `cargo bench --bench low_labels_cd` runs the FT-Transformer rows on another split (the
//! suite's), per seed, both sides:
//!
//! ```text
//! cargo run --release --example low_labels
//! ~/.cache/widedeep/bench-venv/bin/python benches/low_labels_reference.py
//! ```
#[path = "common/low_labels_cd.rs"]
mod low_labels_cd;

use anyhow::{Context, Result};
use polars::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::time::Instant;
use widedeep::datasets;
use widedeep::models::TabModelConfig;
use widedeep::prelude::*;
use widedeep::preprocessing::{embed_dim, TabMeta};
use widedeep::tch::Tensor;

/// Shares of the training rows whose labels are used.
const FRACTIONS: [f64; 2] = [0.01, 0.05];
const SEEDS: [u64; 3] = [0, 1, 2];
/// Pretraining: epochs and batch size over all training rows (`masked_prob` 0.2, AdamW at
/// 1e-3: the reference's defaults).
const PRETRAIN_EPOCHS: usize = 5;
const PRETRAIN_BATCH: usize = 128;
/// Supervised training on the labelled rows: epochs and batch size (Adam at 1e-3).
const EPOCHS: usize = 20;
const BATCH: usize = 32;
// the FT-Transformer rows are fine-tuned with these settings too: the same as
// `examples/common/low_labels_cd.rs`'s (`cargo bench --bench low_labels_cd`)
const _: () = assert!(low_labels_cd::FINETUNE.0 == EPOCHS && low_labels_cd::FINETUNE.1 == BATCH);

/// One model and its pretraining route: a row group of the table.
struct Case {
    model: &'static str,
    route: &'static str,
    /// The deep tabular component for the fitted columns.
    encoder: fn(&TabMeta) -> TabModelConfig,
    /// Pretrains `encoder` on `rows` (targets unused) with `seed`; returns what builds a
    /// `WideDeep` of a configuration holding the pretrained encoder.
    pretrain: fn(&TabModelConfig, &Dataset, u64) -> Result<Pretrained>,
}

/// Builds a `WideDeep` whose `deeptabular` component is a pretrained encoder.
type Pretrained = Box<dyn Fn(&WideDeepConfig) -> widedeep::Result<WideDeep>>;

fn cases() -> Vec<Case> {
    vec![
        Case {
            model: "TabMlp",
            route: "encoder–decoder",
            encoder: |meta| {
                TabMlpConfig::from_meta(&reference_widths(meta))
                    .mlp(MlpConfig::default().hidden_dims([64, 32]).dropout(0.1))
                    .into()
            },
            pretrain: encoder_decoder,
        },
        Case {
            model: "FT-Transformer",
            route: "contrastive–denoising",
            encoder: |meta| {
                let (d, h, b) = low_labels_cd::FT_DIMS;
                // the reference's "reglu" computes a GeGLU: name what both sides compute
                FtTransformerConfig::from_meta(meta)
                    .input_dim(d)
                    .n_heads(h)
                    .n_blocks(b)
                    .transformer_activation(TransformerActivation::Geglu)
                    .into()
            },
            pretrain: contrastive_denoising,
        },
    ]
}

/// Contrastive–denoising pretraining (the settings of `examples/common/low_labels_cd.rs`:
/// both losses, CutMix and MixUp, AdamW at 1e-3, the reference's defaults).
fn contrastive_denoising(
    encoder: &TabModelConfig,
    rows: &Dataset,
    seed: u64,
) -> Result<Pretrained> {
    let pretrainer = low_labels_cd::pretrain_encoder(encoder.clone(), rows, seed, Device::Cpu)?;
    Ok(Box::new(move |config| {
        pretrainer.wide_deep(config, Device::Cpu)
    }))
}

/// The columns with the reference's embedding widths: fastai's rule on the number of
/// categories (our `TabPreprocessor` counts the unseen/null slot too, which gives some columns
/// one more dimension), so that both sides train the same model.
fn reference_widths(meta: &TabMeta) -> TabMeta {
    let mut meta = meta.clone();
    for c in &mut meta.cat {
        c.embed_dim = embed_dim(
            c.cardinality.saturating_sub(1).max(1),
            EmbeddingRule::FastaiNew,
        );
    }
    meta
}

/// The encoder–decoder route (mirror-image decoder, the reference's defaults).
fn encoder_decoder(encoder: &TabModelConfig, rows: &Dataset, seed: u64) -> Result<Pretrained> {
    let model = EncoderDecoder::new(
        &EncoderDecoderConfig::new(encoder.clone()).seed(seed),
        Device::Cpu,
    )?;
    let cfg = PretrainConfig::new()
        .epochs(PRETRAIN_EPOCHS)
        .batch_size(PRETRAIN_BATCH)
        .seed(seed)
        .verbose(0);
    let mut pretrainer = EncoderDecoderTrainer::new(model, cfg)?;
    pretrainer.fit(rows, None)?;
    Ok(Box::new(move |config| {
        pretrainer.wide_deep(config, Device::Cpu)
    }))
}

/// Trains `model` on `labelled` and returns its test AUC.
fn train_and_score(
    model: WideDeep,
    prep: &Preprocessors,
    labelled: &Dataset,
    test: &Dataset,
    seed: u64,
) -> Result<f64> {
    let config = TrainerConfig::new(prep.objective()?)
        .epochs(EPOCHS)
        .batch_size(BATCH)
        .lr(1e-3)
        .seed(seed)
        .verbose(0);
    let mut trainer = Trainer::new(model, config)?;
    trainer.fit(labelled, None)?;
    Ok(trainer.evaluate(test, Some(&[Metric::Auc]))?["auc"])
}

/// The labelled rows for `fraction` and `seed`: positions in the training frame.
fn labelled_rows(n: usize, fraction: f64, seed: u64) -> Vec<i64> {
    let mut idx: Vec<i64> = (0..n as i64).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(1000 + seed));
    idx.truncate((n as f64 * fraction).round() as usize);
    idx.sort_unstable();
    idx
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0).max(1.0);
    (m, var.sqrt())
}

/// The keys of `splits.json` that `reference.json` must have been written for.
const SETTINGS: [&str; 5] = [
    "pretrain",
    "train",
    "seeds",
    "fractions",
    "contrastive_denoising",
];

/// Prints our rows beside pytorch-widedeep's from `reference.json` (written by
/// `benches/low_labels_reference.py` for the same settings), with the difference of the means
/// and whether it lies within the larger of the two standard deviations.
fn side_by_side(
    dir: &std::path::Path,
    splits: &serde_json::Value,
    ours: &[serde_json::Value],
) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(dir.join("reference.json")) else {
        return Ok(());
    };
    let reference: serde_json::Value = serde_json::from_str(&text)?;
    let same = SETTINGS
        .iter()
        .all(|k| reference["settings"][k] == splits[k]);
    if !same {
        println!("(reference.json was written for other settings: rerun the reference script)");
        return Ok(());
    }
    let values = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default()
    };
    println!(
        "\nSide by side with pytorch-widedeep 1.7.0 (same rows, seeds and settings; test AUC, \
         mean ± standard deviation):\n"
    );
    println!(
        "| model | route | labels | widedeep scratch | reference scratch | widedeep pretrained | \
         reference pretrained | pretrained: ours − reference |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for row in ours {
        let theirs = reference["rows"].as_array().and_then(|rows| {
            rows.iter().find(|r| {
                r["model"] == row["model"]
                    && r["route"] == row["route"]
                    && r["fraction"].as_f64() == row["fraction"].as_f64()
            })
        });
        let Some(theirs) = theirs else {
            println!(
                "| {} | {} | {}% | (no reference rows: rerun the reference script) |||||",
                row["model"].as_str().unwrap_or(""),
                row["route"].as_str().unwrap_or(""),
                row["fraction"].as_f64().unwrap_or(0.0) * 100.0,
            );
            continue;
        };
        let cells: Vec<(f64, f64)> = [
            &row["scratch"],
            &theirs["scratch"],
            &row["pretrained"],
            &theirs["pretrained"],
        ]
        .iter()
        .map(|v| mean_sd(&values(v)))
        .collect();
        let diff = cells[2].0 - cells[3].0;
        let spread = cells[2].1.max(cells[3].1);
        println!(
            "| {} | {} | {}% | {} | {diff:+.4} ({} the seeds' spread {spread:.4}) |",
            row["model"].as_str().unwrap_or(""),
            row["route"].as_str().unwrap_or(""),
            row["fraction"].as_f64().unwrap_or(0.0) * 100.0,
            cells
                .iter()
                .map(|(m, s)| format!("{m:.4} ± {s:.4}"))
                .collect::<Vec<_>>()
                .join(" | "),
            if diff.abs() <= spread {
                "within"
            } else {
                "outside"
            }
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let start = Instant::now();
    // one intra-op thread on each side (`LOW_LABELS_THREADS`): the models are small, and on a
    // shared 2-core machine more threads only wait for each other
    let threads = std::env::var("LOW_LABELS_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    widedeep::tch::set_num_threads(threads);
    let df = datasets::adult()?.with_row_index("row".into(), None)?;
    let (train_df, test_df) = datasets::train_test_split(&df, 0.2, 42)?;
    let rows_of = |d: &DataFrame| -> Result<Vec<u32>> {
        Ok(d.column("row")?.idx()?.into_no_null_iter().collect())
    };
    use datasets::adult_columns::{CATEGORICAL, CONTINUOUS};
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&CATEGORICAL, &CONTINUOUS))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df)?;
    let test = prep.transform(&test_df)?;
    let n = train.len() as usize;
    println!(
        "Adult: {n} training rows (all used for pretraining, unlabelled), {} test rows; \
         labelled: {}",
        test.len(),
        FRACTIONS
            .iter()
            .map(|f| format!("{}% = {} rows", f * 100.0, (n as f64 * f).round()))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut labelled = serde_json::Map::new();
    for f in FRACTIONS {
        let per_seed: serde_json::Map<String, serde_json::Value> = SEEDS
            .iter()
            .map(|&s| (s.to_string(), json!(labelled_rows(n, f, s))))
            .collect();
        labelled.insert(f.to_string(), per_seed.into());
    }
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/low_labels");
    std::fs::create_dir_all(&out_dir)?;
    let splits = json!({
        "train_rows": rows_of(&train_df)?,
        "test_rows": rows_of(&test_df)?,
        "labelled": labelled,
        "fractions": FRACTIONS,
        "seeds": SEEDS,
        "pretrain": {"epochs": PRETRAIN_EPOCHS, "batch_size": PRETRAIN_BATCH, "masked_prob": 0.2},
        "train": {"epochs": EPOCHS, "batch_size": BATCH, "lr": 1e-3},
        // the FT-Transformer rows: its dimensions and its pretraining (its supervised training
        // is "train", as TabMlp's)
        "contrastive_denoising": {
            "input_dim": low_labels_cd::FT_DIMS.0,
            "n_heads": low_labels_cd::FT_DIMS.1,
            "n_blocks": low_labels_cd::FT_DIMS.2,
            "pretrain": {
                "epochs": low_labels_cd::PRETRAIN.0,
                "batch_size": low_labels_cd::PRETRAIN.1,
            },
        },
    });
    std::fs::write(out_dir.join("splits.json"), serde_json::to_vec(&splits)?)?;

    let meta = prep.tab_meta()?;
    // (case, fraction) → per seed (scratch, pretrained)
    let mut results = Vec::new();
    for case in cases() {
        let encoder = (case.encoder)(&meta);
        let mut per_fraction = vec![Vec::new(); FRACTIONS.len()];
        for &seed in &SEEDS {
            let config = WideDeepConfig::new()
                .deeptabular(encoder.clone())
                .seed(seed);
            let t = Instant::now();
            // pretrained once per seed on every training row, fine-tuned per fraction
            let pretrained_model = (case.pretrain)(&encoder, &train, seed)?;
            let pretrain_s = t.elapsed().as_secs_f64();
            for (i, &f) in FRACTIONS.iter().enumerate() {
                let rows = labelled_rows(n, f, seed);
                let subset = train.select(&Tensor::from_slice(&rows));
                let scratch = train_and_score(
                    WideDeep::new(&config, Device::Cpu)?,
                    &prep,
                    &subset,
                    &test,
                    seed,
                )?;
                let model = pretrained_model(&config)?;
                let pretrained = train_and_score(model, &prep, &subset, &test, seed)?;
                eprintln!(
                    "{} ({}) seed {seed}, {}% labels: scratch AUC {scratch:.4}, pretrained \
                     {pretrained:.4} (pretraining {pretrain_s:.1}s)",
                    case.model,
                    case.route,
                    f * 100.0
                );
                per_fraction[i].push((scratch, pretrained));
            }
        }
        results.push((case, per_fraction));
    }

    println!("\n| model | route | labels | from scratch AUC | pretrained AUC | Δ |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut json_rows = Vec::new();
    for (case, per_fraction) in &results {
        for (i, runs) in per_fraction.iter().enumerate() {
            let scratch: Vec<f64> = runs.iter().map(|r| r.0).collect();
            let pre: Vec<f64> = runs.iter().map(|r| r.1).collect();
            let delta: Vec<f64> = runs.iter().map(|r| r.1 - r.0).collect();
            let ((sm, ss), (pm, ps), (dm, ds)) =
                (mean_sd(&scratch), mean_sd(&pre), mean_sd(&delta));
            println!(
                "| {} | {} | {}% | {sm:.4} ± {ss:.4} | {pm:.4} ± {ps:.4} | {dm:+.4} ± {ds:.4} |",
                case.model,
                case.route,
                FRACTIONS[i] * 100.0
            );
            json_rows.push(json!({
                "model": case.model, "route": case.route, "fraction": FRACTIONS[i],
                "scratch": scratch, "pretrained": pre,
            }));
        }
    }
    println!(
        "\n(test AUC, mean ± standard deviation over seeds {SEEDS:?}; pretraining on all {n} \
         training rows: encoder–decoder {PRETRAIN_EPOCHS} epochs × batch {PRETRAIN_BATCH}, \
         contrastive–denoising {} epochs × batch {}; supervised {EPOCHS} epochs × batch {BATCH}; \
         {:.0}s in all)",
        low_labels_cd::PRETRAIN.0,
        low_labels_cd::PRETRAIN.1,
        start.elapsed().as_secs_f64()
    );
    side_by_side(&out_dir, &splits, &json_rows)?;
    std::fs::write(
        out_dir.join("widedeep.json"),
        serde_json::to_vec_pretty(&json!({ "rows": json_rows }))?,
    )
    .context("writing results")?;
    println!(
        "splits and results in {}; pytorch-widedeep's side: \
         ~/.cache/widedeep/bench-venv/bin/python benches/low_labels_reference.py",
        out_dir.display()
    );
    Ok(())
}
