//! The demo: Wide + TabMlp on UCI Adult (bundled), trained on 80% of the rows and evaluated on the
//! held-out 20%; the fitted pipeline is saved, loaded back and checked to predict identically;
//! then 500 test predictions are explained with GradientSHAP: the top features by mean |SHAP|
//! are printed and bar, beeswarm and waterfall plots written to `target/widedeep-demo/`.
//!
//! A logistic regression (linfa) on the same tabular columns is printed beside it as the
//! classical baseline.
//!
//! Run: `make demo` (or `cargo run --release --example adult` with libtorch set up).
#[path = "common/adult_model.rs"]
mod adult_model;
#[path = "common/baselines.rs"]
mod baselines;

use anyhow::{ensure, Result};
use std::time::Instant;
use widedeep::datasets;
use widedeep::prelude::*;

fn main() -> Result<()> {
    let start = Instant::now();
    let device = default_device()?;
    let df = datasets::adult()?;
    let (train_df, test_df) = datasets::train_test_split(&df, 0.2, 42)?;
    println!(
        "Adult: {} training rows, {} test rows, device {device:?}",
        train_df.height(),
        test_df.height()
    );

    // the columns of `datasets::adult_columns`: every categorical column (capital gains and
    // losses as categories: mostly 0 with a long tail, about 120 distinct values each, so both
    // parts can learn their step-like effect), age, years of education and hours per week, and
    // a wide part of eight columns with education × occupation and country × occupation
    use datasets::adult_columns::{crossed, CATEGORICAL, CONTINUOUS, WIDE};
    let (wide_cols, cat_cols, cont_cols) = (WIDE, CATEGORICAL, CONTINUOUS);
    let crossed = crossed();

    let mut prep = Preprocessors::new()
        .wide(WidePreprocessor::new(&wide_cols).crossed_cols(crossed))
        .tab(TabPreprocessor::new(&cat_cols, &cont_cols))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df)?;
    let test = prep.transform(&test_df)?;

    let model_cfg = adult_model::wide_tabmlp(&prep)?;
    let model = WideDeep::new(&model_cfg, device)?;
    println!("model: {} trainable parameters", model.n_parameters());

    let config = TrainerConfig::new(prep.objective()?)
        .epochs(10)
        .batch_size(256)
        .lr(1e-3)
        .val_split(0.1)
        .metrics([Metric::Accuracy, Metric::Auc])
        .early_stopping(EarlyStopping::default().monitor("val_loss").patience(3))
        .seed(42);
    let mut trainer = Trainer::new(model, config)?;
    let fit_start = Instant::now();
    trainer.fit(&train, None)?;
    let fit_secs = fit_start.elapsed().as_secs_f64();

    let scores = trainer.evaluate(&test, Some(&[Metric::Accuracy, Metric::Auc, Metric::F1]))?;
    let (acc, auc) = (scores["accuracy"], scores["auc"]);
    println!(
        "test accuracy {acc:.4}  AUC {auc:.4}  F1 {:.4}  ({} epochs in {fit_secs:.1}s)",
        scores["f1"],
        trainer.history().len()
    );

    println!(
        "{}",
        baselines::logistic_regression(&prep, &train_df, &test_df)?
    );

    let pipeline = Pipeline::new(prep, trainer);
    let dir = std::env::temp_dir().join("widedeep-adult-pipeline");
    pipeline.save(&dir)?;
    let loaded = Pipeline::load(&dir, device)?;
    let same = pipeline
        .predict_proba(&test_df)?
        .equal(&loaded.predict_proba(&test_df)?);
    println!(
        "saved to {} and reloaded: identical predictions = {same}",
        dir.display()
    );

    // explain 500 test predictions (log-odds of >50K) against 200 training rows
    let explain_start = Instant::now();
    let config = ExplainerConfig::new(Method::gradient_shap())
        .background_size(200)
        .seed(0);
    let explainer = Explainer::for_pipeline(&pipeline, &train_df, &config)?;
    let explanation = explainer.explain_df(&test_df.head(Some(500)))?;
    let importance = explanation.global_importance();
    println!(
        "GradientSHAP on {} test rows in {:.1}s (relative additivity gap {:.2}%); top features \
         by mean |SHAP| ({}):",
        explanation.n_rows,
        explain_start.elapsed().as_secs_f64(),
        100.0 * explanation.relative_additivity_gap(),
        explanation.output_names[0]
    );
    for (name, value) in importance.top(8) {
        println!("  {name:<28} {value:.4}");
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/widedeep-demo");
    let opts = plots::PlotOptions::default();
    for ext in ["png", "svg"] {
        plots::bar(&importance, out.join(format!("shap_bar.{ext}")), &opts)?;
        plots::beeswarm(
            &explanation,
            0,
            out.join(format!("shap_beeswarm.{ext}")),
            &opts,
        )?;
        plots::waterfall(
            &explanation,
            0,
            0,
            out.join(format!("shap_waterfall.{ext}")),
            &opts.clone().max_features(10),
        )?;
    }
    explanation.save_json(out.join("shap_values.json"))?;
    println!("plots and values written to {}", out.display());
    println!("total {:.1}s", start.elapsed().as_secs_f64());

    ensure!(same, "reloaded pipeline predicts differently");
    ensure!(
        acc >= 0.865 && auc >= 0.915,
        "below target: accuracy {acc:.4} (≥ 0.865), AUC {auc:.4} (≥ 0.915)"
    );
    Ok(())
}
