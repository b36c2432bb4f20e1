//! The README's quickstart: Wide + TabMlp on Adult for two epochs, evaluate, save, reload.
//!
//! Run: `cargo run --release --example quickstart`.
use widedeep::datasets;
use widedeep::prelude::*;

fn main() -> widedeep::Result<()> {
    let df = datasets::adult()?;
    let (train_df, test_df) = datasets::train_test_split(&df, 0.2, 42)?;

    let mut prep = Preprocessors::new()
        .wide(WidePreprocessor::new(&[
            "education",
            "occupation",
            "relationship",
        ]))
        .tab(TabPreprocessor::new(
            &[
                "workclass",
                "education",
                "occupation",
                "relationship",
                "gender",
            ],
            &["age", "hours-per-week", "capital-gain"],
        ))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df)?;

    let model = WideDeepConfig::new()
        .wide(WideConfig::new(prep.wide_dim()?))
        .deeptabular(TabMlpConfig::from_meta(&prep.tab_meta()?));
    let model = WideDeep::new(&model, default_device()?)?;

    let config = TrainerConfig::new(prep.objective()?)
        .epochs(2)
        .batch_size(256)
        .metrics([Metric::Accuracy, Metric::Auc]);
    let mut trainer = Trainer::new(model, config)?;
    trainer.fit(&train, None)?;

    let pipeline = Pipeline::new(prep, trainer);
    let scores = pipeline.evaluate(&test_df, None)?;
    println!(
        "test accuracy {:.4}, AUC {:.4}",
        scores["accuracy"], scores["auc"]
    );

    let dir = std::env::temp_dir().join("widedeep-quickstart");
    pipeline.save(&dir)?;
    let reloaded = Pipeline::load(&dir, Device::Cpu)?;
    println!(
        "probabilities {:?}",
        reloaded.predict_proba(&test_df.head(Some(3)))?.size()
    );
    Ok(())
}
