//! TabResnet and TabNet on UCI Adult (bundled): trained on 80% of the rows (10% of those held out
//! for early stopping) and evaluated on the other 20%; prints test accuracy, AUC and seconds per
//! epoch for each model, and TabNet's global feature importance.
//!
//! Run: `cargo run --release --example tabresnet_tabnet [tabresnet|tabnet]` (both by default).
use anyhow::{ensure, Result};
use std::time::Instant;
use widedeep::datasets;
use widedeep::models::TabModelConfig;
use widedeep::prelude::*;

/// capital gains and losses are mostly 0 with a long tail: as categories (about 120 distinct
/// values each) the models can learn their step-like effect
const CAT: [&str; 10] = datasets::adult_columns::CATEGORICAL;
const CONT: [&str; 3] = datasets::adult_columns::CONTINUOUS;

struct Outcome {
    accuracy: f64,
    auc: f64,
    secs_per_epoch: f64,
    epochs: usize,
}

fn train(
    name: &str,
    model: TabModelConfig,
    trainer: TrainerConfig,
    prep: &Preprocessors,
    train: &Dataset,
    test: &Dataset,
) -> Result<Outcome> {
    let model = WideDeep::new(
        &WideDeepConfig::new().deeptabular(model).seed(1),
        default_device()?,
    )?;
    println!("{name}: {} trainable parameters", model.n_parameters());
    let mut trainer = Trainer::new(model, trainer.objective(prep.objective()?))?;
    let start = Instant::now();
    trainer.fit(train, None)?;
    let epochs = trainer.history().len();
    let secs_per_epoch = start.elapsed().as_secs_f64() / epochs as f64;
    let scores = trainer.evaluate(test, Some(&[Metric::Accuracy, Metric::Auc]))?;
    if let Some(Ok(importance)) = trainer.model().components()[0].feature_importance(&test.input) {
        let names = trainer.model().components()[0].feature_names();
        let mut ranked: Vec<(String, f64)> = names.into_iter().zip(importance).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = ranked
            .iter()
            .take(5)
            .map(|(n, v)| format!("{n} {v:.3}"))
            .collect();
        println!("{name}: feature importance (top 5): {}", top.join(", "));
    }
    Ok(Outcome {
        accuracy: scores["accuracy"],
        auc: scores["auc"],
        secs_per_epoch,
        epochs,
    })
}

fn main() -> Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "both".into());
    let df = datasets::adult()?;
    let (train_df, test_df) = datasets::train_test_split(&df, 0.2, 42)?;
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&CAT, &CONT))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train_set = prep.fit_transform(&train_df)?;
    let test_set = prep.transform(&test_df)?;
    let meta = prep.tab_meta()?;
    println!(
        "Adult: {} training rows, {} test rows",
        train_df.height(),
        test_df.height()
    );

    let early_stopping = EarlyStopping::default().monitor("val_loss").patience(3);
    let mut results = Vec::new();
    if which == "both" || which == "tabresnet" {
        let model = TabResnetConfig::from_meta(&meta)
            .cont_norm(ContNorm::BatchNorm)
            .blocks_dims([128, 64, 64])
            .blocks_dropout(0.2)
            .embed_dropout(0.1);
        let trainer = TrainerConfig::default()
            .epochs(20)
            .batch_size(256)
            .lr(1e-3)
            .val_split(0.1)
            .early_stopping(early_stopping.clone())
            .seed(42);
        let r = train(
            "TabResnet",
            model.into(),
            trainer,
            &prep,
            &train_set,
            &test_set,
        )?;
        results.push(("TabResnet", r));
    }
    if which == "both" || which == "tabnet" {
        let model = TabNetConfig::from_meta(&meta)
            .n_steps(3)
            .step_dim(16)
            .attn_dim(16)
            .mask_type(MaskType::Sparsemax);
        let trainer = TrainerConfig::default()
            .epochs(30)
            .batch_size(256)
            .lr(1e-2)
            .val_split(0.1)
            .early_stopping(early_stopping)
            .seed(42);
        let r = train(
            "TabNet",
            model.into(),
            trainer,
            &prep,
            &train_set,
            &test_set,
        )?;
        results.push(("TabNet", r));
    }

    println!(
        "\n| model | test accuracy | test AUC | epochs | s/epoch |\n|---|---:|---:|---:|---:|"
    );
    for (name, r) in &results {
        println!(
            "| {name} | {:.4} | {:.4} | {} | {:.2} |",
            r.accuracy, r.auc, r.epochs, r.secs_per_epoch
        );
    }
    for (name, r) in &results {
        ensure!(
            r.accuracy >= 0.85,
            "{name}: test accuracy {:.4} below 0.85",
            r.accuracy
        );
    }
    Ok(())
}
