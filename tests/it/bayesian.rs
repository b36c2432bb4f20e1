//! Bayesian models on real data: learning (binary and multiclass), spread on shifted inputs
//! (regression), the pipeline's save/load round trip.
use crate::common::{adult_split, CAT, CONT};
use widedeep::datasets;
use widedeep::prelude::*;
use widedeep::WideDeepError;

fn adult_bayesian(
    hidden: [i64; 2],
    epochs: usize,
) -> (BayesianPipeline, polars::prelude::DataFrame) {
    let (train_df, test_df) = adult_split(3000, 1000);
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&CAT, &CONT))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df).unwrap();
    let model = BayesianModel::new(
        &BayesianModelConfig::new(
            BayesianTabMlpConfig::from_meta(&prep.tab_meta().unwrap()).hidden_dims(hidden),
        ),
        Device::Cpu,
    )
    .unwrap();
    let mut t = BayesianTrainer::new(
        model,
        BayesianTrainerConfig::new(prep.objective().unwrap())
            .optimizer(Optimizer::adam())
            .lr(0.01)
            .epochs(epochs)
            .batch_size(128)
            .metrics([Metric::Accuracy])
            .verbose(0),
    )
    .unwrap();
    t.fit(&train, None).unwrap();
    (BayesianPipeline::new(prep, t), test_df)
}

#[test]
fn bayesian_tab_mlp_learns_adult() {
    let (p, test_df) = adult_bayesian([16, 8], 3);
    let loss = p.history().series("loss");
    assert!(loss[2] < loss[0], "the ELBO goes down: {loss:?}");
    let r = p
        .evaluate(&test_df, 10, Some(&[Metric::Accuracy, Metric::Auc]))
        .unwrap();
    // the majority class is 0.76
    assert!(r["accuracy"] > 0.80 && r["auc"] > 0.85, "{r:?}");
    let u = p.predict_uncertainty(&test_df, 10).unwrap();
    assert_eq!(u.mean.size(), [1000, 2]);
    let spread = u.std.select(1, 1).mean(tch::Kind::Double).double_value(&[]);
    assert!(spread > 2e-4, "sampled networks disagree: {spread}");
}

#[test]
fn bayesian_wide_and_multiclass_learn() {
    // BayesianWide on Adult's wide columns
    let (train_df, test_df) = adult_split(3000, 1000);
    let mut prep = Preprocessors::new()
        .wide(WidePreprocessor::new(&crate::common::WIDE))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df).unwrap();
    let test = prep.transform(&test_df).unwrap();
    let model = BayesianModel::new(
        &BayesianModelConfig::new(BayesianWideConfig::new(prep.wide_dim().unwrap())),
        Device::Cpu,
    )
    .unwrap();
    let mut t = BayesianTrainer::new(
        model,
        BayesianTrainerConfig::new(Objective::Binary)
            .optimizer(Optimizer::adam())
            .lr(0.01)
            .epochs(4)
            .batch_size(128)
            .verbose(0),
    )
    .unwrap();
    t.fit(&train, None).unwrap();
    let r = t.evaluate(&test, 10, Some(&[Metric::Auc])).unwrap();
    assert!(r["auc"] > 0.80, "{r:?}");

    // multiclass on Ecoli (8 classes; the majority class is 43% of the rows)
    let df = datasets::ecoli().unwrap();
    let cols = ["mcg", "gvh", "lip", "chg", "aac", "alm1", "alm2"];
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&[], &cols))
        .target(TargetEncoder::new("class", TargetKind::Multiclass));
    let data = prep.fit_transform(&df).unwrap();
    let objective = prep.objective().unwrap();
    let model = BayesianModel::new(
        &BayesianModelConfig::new(
            BayesianTabMlpConfig::from_meta(&prep.tab_meta().unwrap()).hidden_dims([32]),
        ),
        Device::Cpu,
    )
    .unwrap();
    let mut t = BayesianTrainer::new(
        model,
        BayesianTrainerConfig::new(objective)
            .optimizer(Optimizer::adam())
            .lr(0.01)
            .epochs(40)
            .batch_size(32)
            .verbose(0),
    )
    .unwrap();
    assert_eq!(
        t.model().pred_dim(),
        8,
        "the width comes from the objective"
    );
    t.fit(&data, None).unwrap();
    let r = t.evaluate(&data, 10, Some(&[Metric::Accuracy])).unwrap();
    assert!(r["accuracy"] > 0.75, "{r:?}");
    let proba = t.predict_proba(&data, 5).unwrap();
    assert_eq!(proba.size(), [336, 8]);
}

#[test]
fn regression_spread_grows_far_from_the_training_data() {
    let df = datasets::california_housing().unwrap();
    let (train_df, test_df) = datasets::train_test_split(&df, 0.2, 3).unwrap();
    let (train_df, test_df) = (train_df.head(Some(3000)), test_df.head(Some(500)));
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(
            &[],
            &datasets::california_columns::FEATURES,
        ))
        .target(TargetEncoder::new("MedHouseVal", TargetKind::Regression));
    let train = prep.fit_transform(&train_df).unwrap();
    let mut test = prep.transform(&test_df).unwrap();
    let model = BayesianModel::new(
        &BayesianModelConfig::new(
            BayesianTabMlpConfig::from_meta(&prep.tab_meta().unwrap()).hidden_dims([16]),
        ),
        Device::Cpu,
    )
    .unwrap();
    let mut t = BayesianTrainer::new(
        model,
        BayesianTrainerConfig::new(Objective::Regression)
            .optimizer(Optimizer::adam())
            .lr(0.01)
            .epochs(6)
            .batch_size(128)
            .verbose(0),
    )
    .unwrap();
    t.fit(&train, None).unwrap();
    let r = t.evaluate(&test, 10, Some(&[Metric::R2])).unwrap();
    assert!(r["r2"] > 0.4, "{r:?}");
    let near = t.predict_uncertainty(&test, 20).unwrap();
    // every standardised feature moved 6 standard deviations away
    let cont = test.input.cont.take().unwrap();
    test.input.cont = Some(cont + 6.0);
    let far = t.predict_uncertainty(&test, 20).unwrap();
    let (a, b) = (
        near.std.mean(tch::Kind::Double).double_value(&[]),
        far.std.mean(tch::Kind::Double).double_value(&[]),
    );
    assert!(b > 2.0 * a, "spread near {a}, far {b}");
}

#[test]
fn bayesian_pipeline_saves_and_loads_with_the_same_predictions() {
    let (p, test_df) = adult_bayesian([8, 4], 1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bayes");
    p.save(&dir).unwrap();
    let back = BayesianPipeline::load(&dir, Device::Cpu).unwrap();
    assert!(p
        .predict_proba(&test_df, 7)
        .unwrap()
        .equal(&back.predict_proba(&test_df, 7).unwrap()));
    let (u, v) = (
        p.predict_uncertainty(&test_df, 3).unwrap(),
        back.predict_uncertainty(&test_df, 3).unwrap(),
    );
    assert!(u.std.equal(&v.std) && u.class.unwrap().equal(&v.class.unwrap()));
    assert_eq!(back.history(), p.history());
    // saving again replaces it; the other kind of pipeline is refused by name
    p.save(&dir).unwrap();
    let err = Pipeline::load(&dir, Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, WideDeepError::BadPipeline { reason, .. } if reason.contains("BayesianPipeline")),
        "{err}"
    );
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pipelines/adult_wide_tabmlp");
    let err = BayesianPipeline::load(&fixture, Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, WideDeepError::BadPipeline { reason, .. } if reason.contains("Pipeline::load")),
        "{err}"
    );
    // n_samples 0 is refused, never ignored
    let err = p.predict_proba(&test_df, 0).unwrap_err();
    assert!(
        matches!(&err, WideDeepError::InvalidConfig { field, .. } if field == "n_samples"),
        "{err}"
    );
}
