//! TabMlp regression on California housing (bundled): predicts the median house value
//! (`MedHouseVal`, in $100k) from 8 numeric block-group features; prints test R² and RMSE,
//! beside a linear regression (linfa) on the same columns as the classical baseline.
//!
//! Run: `cargo run --release --example california_housing`.
#[path = "common/baselines.rs"]
mod baselines;

use anyhow::{ensure, Result};
use widedeep::datasets;
use widedeep::polars::prelude::{ChunkApply, IntoColumn, IntoSeries};
use widedeep::prelude::*;

fn main() -> Result<()> {
    let device = default_device()?;
    // Rooms, bedrooms, occupancy and population per block have extreme right tails (a handful of
    // blocks average over 100 occupants): log1p keeps those rows from dominating the fit.
    let mut df = datasets::california_housing()?;
    for col in ["AveRooms", "AveBedrms", "Population", "AveOccup"] {
        let logged = df
            .column(col)?
            .f64()?
            .apply_values(f64::ln_1p)
            .into_series();
        df.with_column(logged.into_column())?;
    }
    let (train_df, test_df) = datasets::train_test_split(&df, 0.2, 42)?;
    let cont = datasets::california_columns::FEATURES;

    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&[], &cont))
        .target(TargetEncoder::new("MedHouseVal", TargetKind::Regression));
    let train = prep.fit_transform(&train_df)?;
    let test = prep.transform(&test_df)?;

    let model_cfg = WideDeepConfig::new().deeptabular(
        TabMlpConfig::from_meta(&prep.tab_meta()?).mlp(
            MlpConfig::default()
                .hidden_dims([256, 128, 64])
                .dropout(0.1)
                .batchnorm(true),
        ),
    );
    let model = WideDeep::new(&model_cfg, device)?;
    let config = TrainerConfig::new(prep.objective()?)
        .epochs(200)
        .batch_size(128)
        .lr(1e-3)
        .val_split(0.1)
        .metrics([Metric::R2, Metric::Rmse])
        .early_stopping(EarlyStopping::default().monitor("val_loss").patience(20))
        .seed(42);
    let mut trainer = Trainer::new(model, config)?;
    trainer.fit(&train, None)?;

    let scores = trainer.evaluate(&test, Some(&[Metric::R2, Metric::Rmse]))?;
    println!(
        "California housing: test R2 {:.4}  RMSE {:.4}  ({} epochs)",
        scores["r2"],
        scores["rmse"],
        trainer.history().len()
    );
    println!(
        "{}",
        baselines::linear_regression(&prep, &train_df, &test_df)?
    );
    ensure!(
        scores["r2"] >= 0.80,
        "test R2 {:.4} is below 0.80",
        scores["r2"]
    );
    Ok(())
}
