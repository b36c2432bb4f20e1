//! Bad input gives a typed error naming the column, never a panic.
use crate::common::*;
use polars::prelude::*;
use widedeep::prelude::*;
use widedeep::preprocessing::PreprocessingError as P;

fn prep_err(err: WideDeepError) -> P {
    match err {
        WideDeepError::Preprocessing(e) => e,
        other => panic!("expected a preprocessing error, got {other}"),
    }
}

fn small() -> DataFrame {
    df!(
        "city" => ["a", "b", "a", "c"],
        "size" => [1.0f64, 2.0, 3.0, 4.0],
        "y" => [0.0f64, 1.0, 1.0, 0.0],
    )
    .unwrap()
}

fn prep(cat: &[&str], cont: &[&str], kind: TargetKind) -> Preprocessors {
    Preprocessors::new()
        .tab(TabPreprocessor::new(cat, cont))
        .target(TargetEncoder::new("y", kind))
}

#[test]
fn missing_column_is_named() {
    let err = prep(&["city", "country"], &["size"], TargetKind::Binary)
        .fit(&small())
        .unwrap_err();
    assert!(matches!(prep_err(err), P::MissingColumn { column } if column == "country"));
    // also when a fitted pipeline meets new data without the column
    let mut p = prep(&["city"], &["size"], TargetKind::Binary);
    p.fit(&small()).unwrap();
    let err = p.transform(&small().drop("size").unwrap()).unwrap_err();
    assert!(matches!(prep_err(err), P::MissingColumn { column } if column == "size"));
}

#[test]
fn string_column_as_continuous_is_a_type_error() {
    let err = prep(&[], &["city"], TargetKind::Binary)
        .fit(&small())
        .unwrap_err();
    assert!(matches!(prep_err(err), P::WrongType { column, .. } if column == "city"));
}

#[test]
fn all_null_column_is_rejected() {
    let mut df = small();
    df.with_column(Column::full_null("empty".into(), 4, &DataType::Float64))
        .unwrap();
    let err = prep(&["city"], &["empty"], TargetKind::Binary)
        .fit(&df)
        .unwrap_err();
    assert!(matches!(prep_err(err), P::AllNull { column } if column == "empty"));
}

#[test]
fn empty_dataframe_is_rejected() {
    let err = prep(&["city"], &["size"], TargetKind::Binary)
        .fit(&small().head(Some(0)))
        .unwrap_err();
    assert!(matches!(prep_err(err), P::EmptyFrame));
}

#[test]
fn nan_and_inf_targets_are_rejected() {
    for bad in [f64::NAN, f64::INFINITY] {
        let mut df = small();
        df.with_column(Column::new("y".into(), [0.5f64, bad, 1.5, 2.0]))
            .unwrap();
        let err = prep(&["city"], &["size"], TargetKind::Regression)
            .fit_transform(&df)
            .unwrap_err();
        assert!(
            matches!(prep_err(err), P::NonFinite { column, row: 1, .. } if column == "y"),
            "{bad}"
        );
    }
}

#[test]
fn a_column_both_categorical_and_continuous_is_rejected() {
    let err = prep(&["city", "size"], &["size"], TargetKind::Binary)
        .fit(&small())
        .unwrap_err();
    assert!(matches!(prep_err(err), P::ConflictingRole { column } if column == "size"));
}

#[test]
fn unseen_and_null_categories_map_to_zero_and_still_predict() {
    let (train_df, _) = adult_split(1_000, 10);
    let mut prep = adult_preprocessors();
    let train = prep.fit_transform(&train_df).unwrap();
    let mut trainer = wide_tabmlp_trainer(&prep, 1, 1);
    trainer.fit(&train, None).unwrap();
    let pipeline = Pipeline::new(prep, trainer);
    // a row with a never-seen occupation and a null education
    let mut row = train_df.head(Some(2));
    row.with_column(Column::new("occupation".into(), ["Astronaut", "Astronaut"]))
        .unwrap();
    row.with_column(Column::new("education".into(), [None::<&str>, None]))
        .unwrap();
    let data = pipeline.preprocessors.transform(&row).unwrap();
    let cat = data.input.cat.as_ref().unwrap();
    let occ = CAT.iter().position(|c| *c == "occupation").unwrap() as i64;
    let edu = CAT.iter().position(|c| *c == "education").unwrap() as i64;
    assert_eq!(cat.int64_value(&[0, occ]), 0);
    assert_eq!(cat.int64_value(&[1, edu]), 0);
    let proba = pipeline.predict_proba(&row).unwrap();
    assert_eq!(proba.size(), [2, 2]);
}

#[test]
fn trainer_rejects_bad_configs_and_targets_by_name() {
    let mut p = prep(&["city"], &["size"], TargetKind::Binary);
    let data = p.fit_transform(&small()).unwrap();
    let model = |p: &Preprocessors| {
        WideDeep::new(
            &WideDeepConfig::new().deeptabular(TabMlpConfig::from_meta(&p.tab_meta().unwrap())),
            Device::Cpu,
        )
        .unwrap()
    };
    let err = Trainer::new(
        model(&p),
        TrainerConfig::new(Objective::Binary).batch_size(0),
    )
    .unwrap_err();
    assert!(err.to_string().contains("batch_size"), "{err}");
    let err = Trainer::new(
        model(&p),
        TrainerConfig::new(Objective::Binary).metrics([Metric::R2]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("r2"), "{err}");
    let err = Trainer::new(
        model(&p),
        TrainerConfig::new(Objective::Multiclass { n_classes: 3 }),
    )
    .unwrap_err();
    assert!(err.to_string().contains("pred_dim"), "{err}");
    // a raw Dataset with a NaN target is caught before training
    let mut trainer =
        Trainer::new(model(&p), TrainerConfig::new(Objective::Binary).verbose(0)).unwrap();
    let bad = Dataset::new(
        data.input.map(|t| t.shallow_clone()),
        Some(tch::Tensor::from_slice(&[0f32, f32::NAN, 1.0, 0.0])),
    )
    .unwrap();
    let err = trainer.fit(&bad, None).unwrap_err();
    assert!(
        matches!(&err, WideDeepError::InputMismatch { input, .. } if input == "target"),
        "{err}"
    );
}
