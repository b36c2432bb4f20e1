//! Batch prefetching on a worker thread against the plain batch loop: the adult example's
//! Wide + TabMlp (batch 256) on 80 % of Adult, seconds per epoch, runs alternating between the
//! two settings (`--repeats N`, default 3; `--epochs E` per run, default 2). Prints a markdown
//! table. Both settings train to identical weights (tested in `tests/it/trainer_extras.rs`).
//!
//! Run: `cargo bench --bench prefetch` (release), or `cargo test --release --bench prefetch`.
use anyhow::Result;
use std::time::Instant;
use widedeep::datasets;
use widedeep::prelude::*;

#[path = "../examples/common/adult_model.rs"]
mod adult_model;
mod common;
use common::arg;

fn main() -> Result<()> {
    let (repeats, epochs) = (arg("--repeats", 3), arg("--epochs", 2));
    let device = default_device()?;
    let df = datasets::adult()?;
    let (train_df, _) = datasets::train_test_split(&df, 0.2, 42)?;
    let wide_cols = datasets::adult_columns::WIDE;
    let cat_cols = datasets::adult_columns::CATEGORICAL;
    let cont_cols = datasets::adult_columns::CONTINUOUS;
    let mut prep = Preprocessors::new()
        .wide(WidePreprocessor::new(&wide_cols).crossed_cols(vec![vec![
            "education".to_string(),
            "occupation".to_string(),
        ]]))
        .tab(TabPreprocessor::new(&cat_cols, &cont_cols))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df)?;
    let run = |prefetch: bool| -> Result<f64> {
        let model_cfg = adult_model::wide_tabmlp(&prep)?;
        let model = WideDeep::new(&model_cfg, device)?;
        let config = TrainerConfig::new(prep.objective()?)
            .epochs(epochs)
            .batch_size(256)
            .seed(42)
            .verbose(0)
            .prefetch(prefetch);
        let mut trainer = Trainer::new(model, config)?;
        let t = Instant::now();
        trainer.fit(&train, None)?;
        Ok(t.elapsed().as_secs_f64() / epochs as f64)
    };
    let (mut off, mut on) = (Vec::new(), Vec::new());
    run(false)?; // warm-up
    for _ in 0..repeats {
        off.push(run(false)?);
        on.push(run(true)?);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "device {device:?}, {} training rows, batch 256, {epochs} epochs per run\n",
        train.len()
    );
    println!("| prefetch | s/epoch (mean) | runs |");
    println!("|---|---:|---|");
    println!("| off | {:.3} | {} |", mean(&off), fmt(&off));
    println!("| on | {:.3} | {} |", mean(&on), fmt(&on));
    Ok(())
}
