//! Training from Parquet files as if they did not fit in memory: Adult written as a folder of
//! Parquet files, the preprocessors fitted from it page by page (`Preprocessors::fit_scan`),
//! Wide + TabMlp trained on batches streamed from it (`Dataset::scan` + `Trainer::fit_stream`),
//! evaluated on a streamed test folder (`Trainer::evaluate_stream`) beside the same model
//! trained in memory, and explained against a background sampled from the folder
//! (`sample_parquet`).
//!
//! Run: `cargo run --release --example adult_scan` (about half a minute on 2 CPU cores).
#[path = "common/adult_model.rs"]
mod adult_model;

use anyhow::{ensure, Result};
use polars::prelude::*;
use std::path::Path;
use std::time::Instant;
use widedeep::datasets::{self, adult_columns};
use widedeep::pipeline::{sample_parquet, ParquetScan, ScanOptions};
use widedeep::prelude::*;

/// Writes `df` as `files` Parquet files of consecutive rows (row groups of 4,096) in `dir`.
fn write_folder(df: &DataFrame, dir: &Path, files: usize) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let per = df.height().div_ceil(files);
    for k in 0..files {
        let mut part = df.slice((k * per) as i64, per);
        ParquetWriter::new(std::fs::File::create(
            dir.join(format!("part-{k}.parquet")),
        )?)
        .with_row_group_size(Some(4_096))
        .finish(&mut part)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let start = Instant::now();
    let (train_df, test_df) = datasets::train_test_split(&datasets::adult()?, 0.2, 42)?;
    let root = std::env::temp_dir().join("widedeep-adult-scan");
    let (train_dir, test_dir) = (root.join("train"), root.join("test"));
    write_folder(&train_df, &train_dir, 8)?;
    write_folder(&test_df, &test_dir, 2)?;
    let preprocessors = || {
        Preprocessors::new()
            .wide(
                WidePreprocessor::new(&adult_columns::WIDE).crossed_cols(adult_columns::crossed()),
            )
            .tab(TabPreprocessor::new(
                &adult_columns::CATEGORICAL,
                &adult_columns::CONTINUOUS,
            ))
            .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"))
    };

    // fit from the files, page by page (pages of at most 8,192 rows)
    let scan = ParquetScan::open(&train_dir, 8_192)?;
    let mut prep = preprocessors();
    prep.fit_scan(&scan)?;
    let mut in_memory = preprocessors();
    in_memory.fit(&train_df)?;
    let same_fit = serde_json::to_value(&prep)? == serde_json::to_value(&in_memory)?;
    println!(
        "{} files, {} rows, {} pages; preprocessors fitted from the scan equal the in-memory \
         fit: {same_fit}",
        scan.files().len(),
        scan.rows(),
        scan.pages()
    );

    let config = TrainerConfig::new(prep.objective()?)
        .epochs(5)
        .batch_size(256)
        .lr(1e-3)
        .metrics([Metric::Accuracy, Metric::Auc])
        .seed(42)
        .verbose(0);
    let metrics = [Metric::Accuracy, Metric::Auc];
    let options = ScanOptions::default()
        .page_rows(8_192)
        .shuffle_buffer(16_384);
    let train = Dataset::scan(&train_dir, &prep, options.clone())?;
    let test = Dataset::scan(&test_dir, &prep, options)?;
    let mut streamed = Trainer::new(
        WideDeep::new(&adult_model::wide_tabmlp(&prep)?, Device::Cpu)?,
        config.clone(),
    )?;
    let t = Instant::now();
    streamed.fit_stream(&train, None)?;
    let streamed_s = t.elapsed().as_secs_f64();
    let s = streamed.evaluate_stream(&test, Some(&metrics))?;

    let mut memory = Trainer::new(
        WideDeep::new(&adult_model::wide_tabmlp(&prep)?, Device::Cpu)?,
        config,
    )?;
    let t = Instant::now();
    memory.fit(&prep.transform(&train_df)?, None)?;
    let memory_s = t.elapsed().as_secs_f64();
    let m = memory.evaluate(&prep.transform(&test_df)?, Some(&metrics))?;
    println!(
        "\n| training | test accuracy | test AUC | 5 epochs, s |\n|---|---:|---:|---:|\n\
         | streamed from the folder (shuffled pages + 16,384-row window) | {:.4} | {:.4} | \
         {streamed_s:.1} |\n| in memory (full shuffle) | {:.4} | {:.4} | {memory_s:.1} |",
        s["accuracy"], s["auc"], m["accuracy"], m["auc"]
    );

    // explain 200 test rows against 200 training rows sampled from the folder
    let pipeline = Pipeline::new(prep, streamed);
    let background = sample_parquet(&train_dir, 200, 7)?;
    let rows = sample_parquet(&test_dir, 200, 8)?;
    let explainer = Explainer::for_pipeline(
        &pipeline,
        &background,
        &ExplainerConfig::new(Method::gradient_shap()).seed(0),
    )?;
    let explanation = explainer.explain_df(&rows)?;
    println!("\ntop features by mean |GradientSHAP| (log-odds of >50K):");
    for (name, value) in explanation.global_importance().top(5) {
        println!("  {name:<28} {value:.4}");
    }
    println!("\ntotal {:.1}s", start.elapsed().as_secs_f64());
    ensure!(same_fit, "fit_scan differs from fit");
    ensure!(
        s["auc"] >= 0.90 && (s["auc"] - m["auc"]).abs() < 0.01,
        "streamed AUC {:.4} vs in-memory {:.4}",
        s["auc"],
        m["auc"]
    );
    Ok(())
}
