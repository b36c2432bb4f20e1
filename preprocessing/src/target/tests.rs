//! Tests of the target encoder.

use std::fs::File;

use super::*;
use crate::contract::assert_save_load;

fn read(name: &str) -> DataFrame {
    let path = format!("{}/../datasets/{name}", env!("CARGO_MANIFEST_DIR"));
    ParquetReader::new(File::open(path).unwrap())
        .finish()
        .unwrap()
}

#[test]
fn binary_strings_sorted_and_positive_class() {
    let df = df!("y" => ["yes", "no", "yes"]).unwrap();
    let mut enc = TargetEncoder::new("y", TargetKind::Binary);
    assert_eq!(
        enc.fit_transform(&df).unwrap(),
        TargetData::F32(vec![1.0, 0.0, 1.0])
    );
    assert_eq!(enc.classes(), ["no", "yes"]);
    assert_eq!(enc.n_classes(), 2);
    assert_eq!(enc.label_of(1), Some("yes"));
    assert_eq!(enc.label_of(2), None);
    let mut enc = TargetEncoder::new("y", TargetKind::Binary).positive_class("no");
    assert_eq!(
        enc.fit_transform(&df).unwrap(),
        TargetData::F32(vec![0.0, 1.0, 0.0])
    );
    assert_eq!(enc.classes(), ["yes", "no"]);
    let err = TargetEncoder::new("y", TargetKind::Binary)
        .positive_class("maybe")
        .fit(&df)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "positive_class")
    );
}

#[test]
fn binary_ints_bools_and_floats() {
    let df = df!(
        "i" => [1i32, 0, 0, 1],
        "b" => [true, false, false, true],
        "f" => [1.0f64, 0.0, 0.0, 1.0],
        "big" => [10i64, 2, 2, 10],
    )
    .unwrap();
    let expected = TargetData::F32(vec![1.0, 0.0, 0.0, 1.0]);
    for col in ["i", "b", "f", "big"] {
        let mut enc = TargetEncoder::new(col, TargetKind::Binary);
        assert_eq!(enc.fit_transform(&df).unwrap(), expected, "column {col}");
    }
    // Integers sort numerically: 2 < 10.
    let mut enc = TargetEncoder::new("big", TargetKind::Binary);
    enc.fit(&df).unwrap();
    assert_eq!(enc.classes(), ["2", "10"]);
    // A float positive class matches its numeric value.
    let mut enc = TargetEncoder::new("f", TargetKind::Binary).positive_class("0.0");
    assert_eq!(
        enc.fit_transform(&df).unwrap(),
        TargetData::F32(vec![0.0, 1.0, 1.0, 0.0])
    );
}

#[test]
fn binary_needs_two_classes() {
    let df = df!("y" => ["a", "b", "c"]).unwrap();
    let err = TargetEncoder::new("y", TargetKind::Binary)
        .fit(&df)
        .unwrap_err();
    match err {
        PreprocessingError::InvalidConfig { field, reason } => {
            assert_eq!(field, "target");
            assert!(reason.contains('3'), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn multiclass_sorted_and_unknown_class() {
    let df = df!("k" => [3i64, 10, 2, 3]).unwrap();
    let mut enc = TargetEncoder::new("k", TargetKind::Multiclass);
    assert_eq!(
        enc.fit_transform(&df).unwrap(),
        TargetData::I64(vec![1, 2, 0, 1])
    );
    assert_eq!(enc.classes(), ["2", "3", "10"]);
    let new = df!("k" => [2i64, 7]).unwrap();
    let err = enc.transform(&new).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::UnknownClass { ref column, ref value }
        if column == "k" && value == "7")
    );
    let df = df!("s" => ["b", "a", "c"]).unwrap();
    let mut enc = TargetEncoder::new("s", TargetKind::Multiclass);
    assert_eq!(
        enc.fit_transform(&df).unwrap(),
        TargetData::I64(vec![1, 0, 2])
    );
    let err = enc.transform(&df!("s" => ["d"]).unwrap()).unwrap_err();
    assert!(matches!(err, PreprocessingError::UnknownClass { ref value, .. } if value == "d"));
}

#[test]
fn regression_values_and_errors() {
    let df = df!("y" => [1.5f64, -2.0], "i" => [3i64, 4]).unwrap();
    let mut enc = TargetEncoder::new("y", TargetKind::Regression);
    assert_eq!(
        enc.fit_transform(&df).unwrap(),
        TargetData::F32(vec![1.5, -2.0])
    );
    assert_eq!(enc.n_classes(), 0);
    let mut enc = TargetEncoder::new("i", TargetKind::Regression);
    assert_eq!(
        enc.fit_transform(&df).unwrap().as_f32(),
        Some(&[3.0f32, 4.0][..])
    );
    let nan = df!("y" => [1.0f64, f64::NAN]).unwrap();
    let err = TargetEncoder::new("y", TargetKind::Regression)
        .fit(&nan)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::NonFinite { ref column, row: 1, value }
        if column == "y" && value.is_nan())
    );
    let inf = df!("y" => [f64::INFINITY]).unwrap();
    let err = TargetEncoder::new("y", TargetKind::Regression)
        .fit(&inf)
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::NonFinite { row: 0, .. }));
    let null = df!("y" => [Some(1.0f64), None]).unwrap();
    let err = TargetEncoder::new("y", TargetKind::Regression)
        .fit(&null)
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::NullValue { ref column, row: 1 } if column == "y"));
    let s = df!("y" => ["a"]).unwrap();
    let err = TargetEncoder::new("y", TargetKind::Regression)
        .fit(&s)
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::WrongType { ref column, .. } if column == "y"));
}

#[test]
fn regression_scaling_and_its_inverse() {
    let df = df!("y" => [1.0f64, 2.0, 3.0, 4.0, 100.0]).unwrap();
    let values =
        |enc: &mut TargetEncoder| enc.fit_transform(&df).unwrap().as_f32().unwrap().to_vec();
    // Standard: mean 22, population std sqrt(1522).
    let mut std = TargetEncoder::new("y", TargetKind::Regression).scaling(TargetScaling::Standard);
    let y = values(&mut std);
    let sd = 1522f64.sqrt();
    for (got, raw) in y.iter().zip([1.0, 2.0, 3.0, 4.0, 100.0]) {
        assert!((f64::from(*got) - (raw - 22.0) / sd).abs() < 1e-6);
    }
    // Robust: median 3, IQR 4 - 2 = 2.
    let mut robust = TargetEncoder::new("y", TargetKind::Regression).scaling(TargetScaling::Robust);
    assert_eq!(values(&mut robust), vec![-1.0, -0.5, 0.0, 0.5, 48.5]);
    // Log: ln(1 + y).
    let mut log = TargetEncoder::new("y", TargetKind::Regression).scaling(TargetScaling::Log);
    let y = values(&mut log);
    assert!((y[4] - 101f32.ln()).abs() < 1e-6);
    for enc in [&std, &robust, &log] {
        assert!(enc.is_scaled());
        let back = enc.inverse_values(enc.transform(&df).unwrap().as_f32().unwrap());
        for (b, raw) in back.iter().zip([1.0f32, 2.0, 3.0, 4.0, 100.0]) {
            assert!((b - raw).abs() < 1e-4 * raw.max(1.0), "{b} vs {raw}");
        }
    }
    // Saved and loaded with the fitted statistics.
    let back: TargetEncoder =
        serde_json::from_str(&serde_json::to_string(&robust).unwrap()).unwrap();
    assert_eq!(back, robust);
    // A constant target scales by 1.
    let c = df!("y" => [5.0f64, 5.0]).unwrap();
    let mut enc = TargetEncoder::new("y", TargetKind::Regression).scaling(TargetScaling::Standard);
    assert_eq!(
        enc.fit_transform(&c).unwrap(),
        TargetData::F32(vec![0.0, 0.0])
    );
    // Errors: log of a value ≤ −1 names the row; classification targets are not scaled.
    let neg = df!("y" => [0.5f64, -3.0]).unwrap();
    let err = TargetEncoder::new("y", TargetKind::Regression)
        .scaling(TargetScaling::Log)
        .fit(&neg)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::OutOfRange { row: 1, .. }),
        "{err}"
    );
    let err = log.transform(&neg).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::OutOfRange { row: 1, .. }),
        "{err}"
    );
    let err = TargetEncoder::new("y", TargetKind::Binary)
        .scaling(TargetScaling::Standard)
        .fit(&df!("y" => [0i64, 1]).unwrap())
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "scaling")
    );
    // Beyond f32 without scaling: a typed error naming the row, not an infinity.
    let mut raw = TargetEncoder::new("y", TargetKind::Regression);
    raw.fit(&df).unwrap();
    let err = raw
        .transform(&df!("y" => [1.0f64, 1e300]).unwrap())
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::OutOfRange { row: 1, .. }),
        "{err}"
    );
}

#[test]
fn class_dtype_changes_are_errors_and_bytes_are_text() {
    let mut enc = TargetEncoder::new("y", TargetKind::Binary);
    enc.fit(&df!("y" => ["0", "1"]).unwrap()).unwrap();
    let err = enc.transform(&df!("y" => [0i64, 1]).unwrap()).unwrap_err();
    assert!(matches!(err, PreprocessingError::DtypeChanged { ref column, .. } if column == "y"));
    let bytes = DataFrame::new(
        2,
        vec![Column::new("y".into(), [b"1".as_slice(), b"0".as_slice()])],
    )
    .unwrap();
    assert_eq!(
        enc.transform(&bytes).unwrap(),
        TargetData::F32(vec![1.0, 0.0])
    );
}

#[test]
fn classification_errors() {
    let null = df!("y" => [Some("a"), Some("b"), None]).unwrap();
    let err = TargetEncoder::new("y", TargetKind::Binary)
        .fit(&null)
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::NullValue { ref column, row: 2 } if column == "y"));
    let nan = df!("y" => [0.0f64, 1.0, f64::NAN]).unwrap();
    let err = TargetEncoder::new("y", TargetKind::Binary)
        .fit(&nan)
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::NonFinite { row: 2, .. }));
    let df = df!("y" => ["a", "b"]).unwrap();
    let err = TargetEncoder::new("nope", TargetKind::Binary)
        .fit(&df)
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::MissingColumn { ref column } if column == "nope"));
    let err = TargetEncoder::new("y", TargetKind::Binary)
        .fit(&df.head(Some(0)))
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::EmptyFrame));
    let err = TargetEncoder::new("y", TargetKind::Binary)
        .transform(&df)
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::NotFitted { .. }));
    let mut enc = TargetEncoder::new("y", TargetKind::Binary);
    enc.fit(&df).unwrap();
    let err = enc
        .transform(&df!("y" => [Some("a"), None]).unwrap())
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::NullValue { row: 1, .. }));
}

#[test]
fn bundled_datasets() {
    let adult = read("adult.parquet");
    let mut enc = TargetEncoder::new("income", TargetKind::Binary);
    let y = enc.fit_transform(&adult).unwrap();
    assert_eq!(enc.classes(), ["<=50K", ">50K"]);
    let y = y.as_f32().unwrap();
    assert_eq!(y.len(), 48_842);
    assert_eq!(y.iter().filter(|&&v| v == 1.0).count(), 11_687);

    let ecoli = read("ecoli.parquet");
    let mut enc = TargetEncoder::new("class", TargetKind::Multiclass);
    let y = enc.fit_transform(&ecoli).unwrap();
    assert_eq!(
        enc.classes(),
        ["cp", "im", "imL", "imS", "imU", "om", "omL", "pp"]
    );
    let y = y.as_i64().unwrap();
    assert_eq!(y.iter().filter(|&&v| v == 0).count(), 143);
    assert_eq!(y.iter().filter(|&&v| v == 7).count(), 52);

    let housing = read("california_housing.parquet");
    let mut enc = TargetEncoder::new("MedHouseVal", TargetKind::Regression);
    assert_eq!(enc.fit_transform(&housing).unwrap().len(), 20_640);
}

#[test]
fn save_load_round_trip() {
    let df = df!("y" => ["yes", "no", "yes"]).unwrap();
    let mut enc = TargetEncoder::new("y", TargetKind::Binary).positive_class("no");
    let before = enc.fit_transform(&df).unwrap();
    assert_save_load(&enc, &df, &before);
}
