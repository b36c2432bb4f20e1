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
    // an unset output width is taken from the objective...
    let trainer = Trainer::new(
        model(&p),
        TrainerConfig::new(Objective::Multiclass { n_classes: 3 }),
    )
    .unwrap();
    assert_eq!(trainer.model().pred_dim(), 3);
    assert_eq!(trainer.model().config().unwrap().pred_dim, Some(3));
    // ...a set one must fit it
    let set = WideDeep::new(
        &WideDeepConfig::new()
            .deeptabular(TabMlpConfig::from_meta(&p.tab_meta().unwrap()))
            .pred_dim(1),
        Device::Cpu,
    )
    .unwrap();
    let err = Trainer::new(
        set,
        TrainerConfig::new(Objective::Multiclass { n_classes: 3 }),
    )
    .unwrap_err();
    assert!(err.to_string().contains("pred_dim"), "{err}");
    // ...and so must the width of a model changed after it was built
    let touched = model(&p);
    touched.set_trainable("deeptabular", true).unwrap();
    let err = Trainer::new(
        touched,
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

/// A pipeline fitted on `small()` (Wide on `city`, TabMlp on `city` + `size`, binary `y`).
fn fitted_pipeline() -> Pipeline {
    let mut prep = Preprocessors::new()
        .wide(WidePreprocessor::new(&["city"]))
        .tab(TabPreprocessor::new(&["city"], &["size"]))
        .target(TargetEncoder::new("y", TargetKind::Binary));
    let data = prep.fit_transform(&small()).unwrap();
    let model = WideDeep::new(
        &WideDeepConfig::new()
            .wide(WideConfig::new(prep.wide_dim().unwrap()))
            .deeptabular(TabMlpConfig::from_meta(&prep.tab_meta().unwrap())),
        Device::Cpu,
    )
    .unwrap();
    let mut trainer = Trainer::new(
        model,
        TrainerConfig::new(prep.objective().unwrap()).verbose(0),
    )
    .unwrap();
    trainer.fit(&data, None).unwrap();
    Pipeline::new(prep, trainer)
}

#[test]
fn finite_values_beyond_f32_are_named_not_nan() {
    let p = fitted_pipeline();
    let mut df = small();
    df.with_column(Column::new("size".into(), [1.0f64, 1e300, 3.0, 4.0]))
        .unwrap();
    let err = p.predict(&df).unwrap_err();
    assert!(matches!(prep_err(err), P::OutOfRange { column, row: 1, .. } if column == "size"),);
    // large but representable inputs that make the model overflow: a typed error naming the
    // row, not NaN
    df.with_column(Column::new("size".into(), [1.0f64, 3e37, 3.0, 4.0]))
        .unwrap();
    match p.predict_proba(&df) {
        Ok(proba) => assert!(bool::try_from(proba.isfinite().all()).unwrap()),
        Err(WideDeepError::NonFiniteResult { what, .. }) => {
            assert!(what.contains("row 1"), "{what}")
        }
        Err(other) => panic!("unexpected {other}"),
    }
}

#[test]
fn a_changed_dtype_is_an_error_and_an_all_null_column_is_counted() {
    let p = fitted_pipeline();
    let mut df = small();
    df.with_column(Column::new("city".into(), [1i64, 2, 1, 3]))
        .unwrap();
    let err = p.predict(&df).unwrap_err();
    assert!(
        matches!(prep_err(err), P::DtypeChanged { column, fitted, .. } if column == "city" && fitted == "text")
    );
    let mut df = small();
    df.with_column(Column::full_null("city".into(), 4, &DataType::String))
        .unwrap();
    let data = p.preprocessors.transform(&df).unwrap();
    assert_eq!(data.all_null, vec!["city"]);
    assert!(p.predict(&df).is_ok());
    assert!(p
        .preprocessors
        .transform(&small())
        .unwrap()
        .all_null
        .is_empty());
}

#[test]
fn byte_string_columns_from_pandas_parquet_are_text() {
    // pandas writes `bytes` objects as Parquet BYTE_ARRAY without a UTF-8 annotation:
    // Polars reads them as `Binary`
    let cities: Vec<&[u8]> = vec![b"a", b"b", b"a", b"c"];
    let mut df = small();
    df.with_column(Column::new("city".into(), cities)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("pandas.parquet");
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    let read = ParquetReader::new(std::fs::File::open(&path).unwrap())
        .finish()
        .unwrap();
    assert_eq!(read.column("city").unwrap().dtype(), &DataType::Binary);
    let p = fitted_pipeline();
    assert!(p
        .predict_proba(&read)
        .unwrap()
        .equal(&p.predict_proba(&small()).unwrap()));
}
