//! Tests of the tabular preprocessor.

use std::fs::File;

use ndarray::array;

use super::*;
use crate::contract::{assert_save_load, Fit, Transform};

fn approx(a: f32, b: f64) -> bool {
    (f64::from(a) - b).abs() < 1e-5
}

/// Checks the first `expected.len()` values of column `j`.
fn assert_column(data: &Array2<f32>, j: usize, expected: &[f64]) {
    let got = data.column(j).to_vec();
    assert!(got.len() >= expected.len());
    for (row, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            approx(*g, *e),
            "column {j} row {row}: got {g}, expected {e}"
        );
    }
}

/// color: blue=1, green=2, red=3. x: observed [1, 3, 10] -> median 3; imputed
/// [1, 3, 3, 3, 10] has mean 4 and population std sqrt(48 / 5). n: [2, 4, 4, 4, 6] has
/// mean 4 and std sqrt(8 / 5).
fn small() -> DataFrame {
    df!(
        "color" => [Some("red"), Some("blue"), None, Some("red"), Some("green")],
        "x" => [Some(1.0f64), None, Some(3.0), Some(f64::NAN), Some(10.0)],
        "n" => [2i64, 4, 4, 4, 6],
    )
    .unwrap()
}

fn adult() -> DataFrame {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../datasets/adult.parquet");
    ParquetReader::new(File::open(path).unwrap())
        .finish()
        .unwrap()
}

#[test]
fn label_encoding_scaling_and_imputation() {
    let mut tab = TabPreprocessor::new(&["color"], &["x", "n"]);
    let data = tab.fit_transform(&small()).unwrap();
    assert_eq!(data.cat, array![[3], [1], [0], [3], [2]]);
    let sx = (48.0f64 / 5.0).sqrt();
    let sn = (8.0f64 / 5.0).sqrt();
    assert_column(
        &data.cont,
        0,
        &[-3.0 / sx, -1.0 / sx, -1.0 / sx, -1.0 / sx, 6.0 / sx],
    );
    assert_column(&data.cont, 1, &[-2.0 / sn, 0.0, 0.0, 0.0, 2.0 / sn]);
    let meta = tab.meta().unwrap();
    assert_eq!(
        meta.cat,
        vec![CatColumnMeta {
            name: "color".into(),
            cardinality: 4,
            embed_dim: 3, // round(1.6 * 4^0.56) = round(3.48)
        }]
    );
    assert_eq!(meta.cont, vec!["x", "n"]);
    assert_eq!(tab.category_of("color", 2), Some("green"));
    assert_eq!(tab.category_of("color", 0), None);
    assert_eq!(tab.category_of("color", 4), None);
    assert_eq!(tab.category_of("x", 1), None);
}

#[test]
fn unscaled_median_imputation() {
    let mut tab = TabPreprocessor::new(&[], &["x", "n"]).scaling(Scaling::None);
    let data = tab.fit_transform(&small()).unwrap();
    assert_eq!(data.cat.shape(), &[5, 0]);
    assert_column(&data.cont, 0, &[1.0, 3.0, 3.0, 3.0, 10.0]);
    assert_column(&data.cont, 1, &[2.0, 4.0, 4.0, 4.0, 6.0]);
    // Even count: mean of the two middle values.
    let df = df!("x" => [Some(4.0f64), None, Some(1.0), Some(2.0), Some(9.0)]).unwrap();
    let mut tab = TabPreprocessor::new(&[], &["x"]).scaling(Scaling::None);
    let data = tab.fit_transform(&df).unwrap();
    assert_column(&data.cont, 0, &[4.0, 3.0, 1.0, 2.0, 9.0]);
}

#[test]
fn scaling_selected_columns_and_constant_column() {
    let df = df!("a" => [1.0f64, 3.0], "b" => [1.0f64, 3.0], "c" => [0.1f64, 0.1]).unwrap();
    let mut tab = TabPreprocessor::new(&[], &["a", "b", "c"])
        .scaling(Scaling::Columns(vec!["b".into(), "c".into()]));
    let data = tab.fit_transform(&df).unwrap();
    assert_column(&data.cont, 0, &[1.0, 3.0]);
    assert_column(&data.cont, 1, &[-1.0, 1.0]);
    // std 0 -> 1: only centred.
    assert_column(&data.cont, 2, &[0.0, 0.0]);
}

#[test]
fn unseen_and_null_categories_are_zero() {
    let mut tab = TabPreprocessor::new(&["color"], &[]);
    tab.fit(&small()).unwrap();
    let new = df!("color" => [Some("purple"), None, Some("blue")]).unwrap();
    assert_eq!(tab.transform(&new).unwrap().cat, array![[0], [0], [1]]);
    // Integer and boolean categories are keyed by their string form.
    let df = df!("k" => [10i32, 2, 10], "b" => [true, false, true]).unwrap();
    let mut tab = TabPreprocessor::new(&["k", "b"], &[]);
    let data = tab.fit_transform(&df).unwrap();
    assert_eq!(data.cat, array![[1, 2], [2, 1], [1, 2]]);
    assert_eq!(data.cont.shape(), &[3, 0]);
}

#[test]
fn missing_indicator_columns() {
    let mut tab = TabPreprocessor::new(&["color"], &["x", "n"])
        .missing_indicator(true)
        .scaling(Scaling::None);
    let data = tab.fit_transform(&small()).unwrap();
    assert_eq!(data.cont.shape(), &[5, 3]);
    assert_column(&data.cont, 2, &[0.0, 1.0, 0.0, 1.0, 0.0]);
    assert_eq!(tab.meta().unwrap().cont, vec!["x", "n", "x_missing"]);
    // At transform time the indicator follows the new data; `n` gets none.
    let new = df!(
        "color" => ["red"],
        "x" => [None::<f64>],
        "n" => [Some(1i64)],
    )
    .unwrap();
    let data = tab.transform(&new).unwrap();
    assert_eq!(data.cont, array![[3.0f32, 1.0, 1.0]]);
}

#[test]
fn inverse_transform_round_trip() {
    let mut tab = TabPreprocessor::new(&["color"], &["x", "n"]).missing_indicator(true);
    let data = tab.fit_transform(&small()).unwrap();
    let back = tab.inverse_transform(&data).unwrap();
    let names: Vec<&str> = back.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(names, vec!["color", "x", "n"]);
    let color: Vec<Option<&str>> = back
        .column("color")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        color,
        vec![Some("red"), Some("blue"), None, Some("red"), Some("green")]
    );
    for (name, expected) in [
        ("x", [1.0, 3.0, 3.0, 3.0, 10.0]),
        ("n", [2.0, 4.0, 4.0, 4.0, 6.0]),
    ] {
        let values: Vec<f64> = back
            .column(name)
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        for (g, e) in values.iter().zip(expected) {
            assert!((g - e).abs() < 1e-5, "{g} vs {e}");
        }
    }
    let bad = TabData {
        cat: Array2::zeros((2, 2)),
        cont: Array2::zeros((2, 3)),
        all_null: Vec::new(),
    };
    let err = tab.inverse_transform(&bad).unwrap_err();
    assert!(matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "data"));
}

#[test]
fn save_load_gives_identical_output() {
    let mut tab = TabPreprocessor::new(&["color"], &["x", "n"])
        .missing_indicator(true)
        .embedding_rule(EmbeddingRule::Google)
        .embed_dim_for("color", 7);
    let before = tab.fit_transform(&small()).unwrap();
    let loaded = assert_save_load(&tab, &small(), &before);
    assert_eq!(loaded.meta().unwrap().cat[0].embed_dim, 7);
}

#[test]
fn config_errors() {
    let df = small();
    let err = TabPreprocessor::new(&[], &[]).fit(&df).unwrap_err();
    assert!(matches!(err, PreprocessingError::InvalidConfig { .. }));
    let err = TabPreprocessor::new(&["color"], &["color"])
        .fit(&df)
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::ConflictingRole { ref column } if column == "color"));
    let err = TabPreprocessor::new(&[], &["x", "x"]).fit(&df).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::DuplicateColumn { ref column, ref field }
        if column == "x" && field == "continuous_cols")
    );
    let err = TabPreprocessor::new(&["color"], &[])
        .embed_dim_for("color", 0)
        .fit(&df)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "embed_dim_for")
    );
    let err = TabPreprocessor::new(&["color"], &[])
        .embed_dim_for("x", 3)
        .fit(&df)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "embed_dim_for")
    );
    let err = TabPreprocessor::new(&[], &["x"])
        .scaling(Scaling::Columns(vec!["color".into()]))
        .fit(&df)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "scaling")
    );
}

#[test]
fn data_errors() {
    let df = small();
    let err = TabPreprocessor::new(&["nope"], &[]).fit(&df).unwrap_err();
    assert!(matches!(err, PreprocessingError::MissingColumn { ref column } if column == "nope"));
    let err = TabPreprocessor::new(&[], &["color"]).fit(&df).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::WrongType { ref column, ref expected, .. }
        if column == "color" && expected == "numeric")
    );
    let err = TabPreprocessor::new(&["x"], &[]).fit(&df).unwrap_err();
    assert!(matches!(err, PreprocessingError::WrongType { ref column, .. } if column == "x"));
    let err = TabPreprocessor::new(&["color"], &[])
        .fit(&df.head(Some(0)))
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::EmptyFrame));
    let nulls = df!(
        "s" => [None::<&str>, None],
        "f" => [Some(f64::NAN), None],
    )
    .unwrap();
    let err = TabPreprocessor::new(&["s"], &[]).fit(&nulls).unwrap_err();
    assert!(matches!(err, PreprocessingError::AllNull { ref column } if column == "s"));
    let err = TabPreprocessor::new(&[], &["f"]).fit(&nulls).unwrap_err();
    assert!(matches!(err, PreprocessingError::AllNull { ref column } if column == "f"));
    let inf = df!("f" => [1.0f64, f64::NEG_INFINITY]).unwrap();
    let err = TabPreprocessor::new(&[], &["f"]).fit(&inf).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::NonFinite { ref column, row: 1, value }
        if column == "f" && value == f64::NEG_INFINITY)
    );
    let mut tab = TabPreprocessor::new(&[], &["x"]);
    let err = tab.transform(&df).unwrap_err();
    assert!(matches!(err, PreprocessingError::NotFitted { .. }));
    assert!(matches!(
        tab.meta().unwrap_err(),
        PreprocessingError::NotFitted { .. }
    ));
    tab.fit(&df).unwrap();
    let inf = df!("x" => [1.0f64, 2.0, f64::INFINITY]).unwrap();
    let err = tab.transform(&inf).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::NonFinite { ref column, row: 2, .. } if column == "x")
    );
    let err = tab.transform(&df!("y" => [1.0f64]).unwrap()).unwrap_err();
    assert!(matches!(err, PreprocessingError::MissingColumn { ref column } if column == "x"));
}

#[test]
fn values_beyond_f32_are_typed_errors_naming_column_and_row() {
    let fit = df!("x" => [1.0f64, 2.0, 3.0]).unwrap();
    let mut tab = TabPreprocessor::new(&[], &["x"]);
    tab.fit(&fit).unwrap();
    let huge = df!("x" => [1.0f64, 1e300]).unwrap();
    let err = tab.transform(&huge).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::OutOfRange { ref column, row: 1, value, .. }
            if column == "x" && value == 1e300),
        "{err}"
    );
    // Unscaled: a value beyond f32 is caught too.
    let mut raw = TabPreprocessor::new(&[], &["x"]).scaling(Scaling::None);
    raw.fit(&fit).unwrap();
    assert!(matches!(
        raw.transform(&huge).unwrap_err(),
        PreprocessingError::OutOfRange { row: 1, .. }
    ));
    // Fitted on huge values, scaling brings them back into range: no error, finite.
    let big = df!("x" => [1e300f64, -1e300, f64::MAX, -f64::MAX]).unwrap();
    let mut tab = TabPreprocessor::new(&[], &["x"]);
    let data = tab.fit_transform(&big).unwrap();
    assert!(data.cont.iter().all(|v| v.is_finite()), "{:?}", data.cont);
    // Unscaled, the same values cannot be represented.
    let mut raw = TabPreprocessor::new(&[], &["x"]).scaling(Scaling::None);
    raw.fit(&big).unwrap();
    assert!(raw.transform(&big).is_err());
}

#[test]
fn changed_dtype_is_an_error_and_all_null_is_reported() {
    let fit = df!("c" => ["a", "b", "a"], "x" => [1.0f64, 2.0, 3.0]).unwrap();
    let mut tab = TabPreprocessor::new(&["c"], &["x"]);
    tab.fit(&fit).unwrap();
    let ints = df!("c" => [1i64, 2, 3], "x" => [1.0f64, 2.0, 3.0]).unwrap();
    let err = tab.transform(&ints).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::DtypeChanged { ref column, ref fitted, .. }
            if column == "c" && fitted == "text"),
        "{err}"
    );
    // Categorical (dictionary) strings key like strings.
    let mut cat = fit.clone();
    let c = fit
        .column("c")
        .unwrap()
        .cast(&DataType::from_categories(Categories::global()))
        .unwrap();
    cat.replace("c", c).unwrap();
    assert_eq!(tab.transform(&cat).unwrap(), tab.transform(&fit).unwrap());
    // An all-null column transforms, and is reported.
    let nulls = df!(
        "c" => [None::<&str>, None],
        "x" => [None::<f64>, Some(f64::NAN)],
    )
    .unwrap();
    let data = tab.transform(&nulls).unwrap();
    assert_eq!(data.all_null, vec!["c", "x"]);
    assert_eq!(data.cat.column(0).to_vec(), vec![0, 0]);
    let null_dtype = DataFrame::new(
        2,
        vec![
            Column::full_null("c".into(), 2, &DataType::Null),
            Column::new("x".into(), [1.0f64, 2.0]),
        ],
    )
    .unwrap();
    assert_eq!(tab.transform(&null_dtype).unwrap().all_null, vec!["c"]);
    assert!(tab.transform(&fit).unwrap().all_null.is_empty());
}

#[test]
fn utf8_byte_strings_are_text() {
    let strings = df!("c" => ["x", "y", "x"]).unwrap();
    let bytes = DataFrame::new(
        3,
        vec![Column::new(
            "c".into(),
            [b"x".as_slice(), b"y".as_slice(), b"x".as_slice()],
        )],
    )
    .unwrap();
    assert_eq!(bytes.column("c").unwrap().dtype(), &DataType::Binary);
    let mut tab = TabPreprocessor::new(&["c"], &[]);
    let expected = tab.fit_transform(&strings).unwrap();
    assert_eq!(tab.transform(&bytes).unwrap(), expected);
    let mut from_bytes = TabPreprocessor::new(&["c"], &[]);
    assert_eq!(from_bytes.fit_transform(&bytes).unwrap(), expected);
    let bad = DataFrame::new(
        2,
        vec![Column::new(
            "c".into(),
            [b"x".as_slice(), [0xff, 0xfe].as_slice()],
        )],
    )
    .unwrap();
    let err = tab.transform(&bad).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidUtf8 { ref column, row: 1 } if column == "c"),
        "{err}"
    );
}

#[test]
fn errors_are_deterministic_on_large_frames() {
    // Large enough for the multi-threaded path: the first bad column in configuration
    // order is reported, at its first bad row.
    let n = 50_000;
    let mut a = vec![1.0f64; n];
    let mut b = vec![1.0f64; n];
    a[40_000] = f64::INFINITY;
    b[10] = f64::INFINITY;
    let df = df!("ok" => vec![0.5f64; n], "a" => a, "b" => b).unwrap();
    for _ in 0..5 {
        let err = TabPreprocessor::new(&[], &["ok", "a", "b"])
            .fit(&df)
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::NonFinite { ref column, row: 40_000, .. }
            if column == "a")
        );
    }
    let mut tab = TabPreprocessor::new(&[], &["ok", "a", "b"]);
    tab.fit(&df.slice(20, 100)).unwrap();
    let err = tab.transform(&df).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::NonFinite { ref column, row: 40_000, .. }
        if column == "a")
    );
}

#[test]
fn load_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = TabPreprocessor::load(dir.path().join("nope.json")).unwrap_err();
    assert!(matches!(missing, PreprocessingError::Io(_)));
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, b"{ not json").unwrap();
    let err = TabPreprocessor::load(&garbage).unwrap_err();
    assert!(matches!(err, PreprocessingError::Json(_)));
    // A hand-edited file whose fitted state does not match its columns.
    let mut tab = TabPreprocessor::new(&["color"], &["x"]);
    tab.fit(&small()).unwrap();
    let mut json: serde_json::Value = serde_json::to_value(&tab).unwrap();
    json["cat_cols"] = serde_json::json!(["color", "n"]);
    let edited = dir.path().join("edited.json");
    std::fs::write(&edited, json.to_string()).unwrap();
    let tab = TabPreprocessor::load(&edited).unwrap();
    let err = tab.transform(&small()).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "fitted")
    );
}

#[test]
fn adult_shapes_and_cardinalities() {
    let df = adult();
    // Distinct values + 1 (checked with Python Polars); fastai_new embedding dims.
    let expected = [
        ("workclass", 10, 6),
        ("education", 17, 8),
        ("marital-status", 8, 5),
        ("occupation", 16, 8),
        ("relationship", 7, 5),
        ("race", 6, 4),
        ("gender", 3, 3),
        ("native-country", 43, 13),
    ];
    let cats: Vec<&str> = expected.iter().map(|(name, _, _)| *name).collect();
    let mut tab = TabPreprocessor::new(&cats, &["age", "hours-per-week"]);
    let data = tab.fit_transform(&df).unwrap();
    assert_eq!(data.cat.shape(), &[48_842, 8]);
    assert_eq!(data.cont.shape(), &[48_842, 2]);
    assert!(data.cat.is_standard_layout() && data.cont.is_standard_layout());
    let meta = tab.meta().unwrap();
    for (m, (name, card, dim)) in meta.cat.iter().zip(expected) {
        assert_eq!(
            (m.name.as_str(), m.cardinality, m.embed_dim),
            (name, card, dim)
        );
    }
    // workclass sorted: "?"=1, "Federal-gov"=2, "Local-gov"=3, ..., "Private"=5.
    assert_eq!(
        data.cat.column(0).slice(ndarray::s![..3]).to_vec(),
        vec![5, 5, 3]
    );
    assert_eq!(tab.category_of("workclass", 1), Some("?"));
    assert!(data.cat.iter().all(|&c| c > 0));
    // age: first rows 25, 38, 28; mean 38.64358543876172, std 13.71036957798688.
    assert_column(
        &data.cont,
        0,
        &[
            -0.9951289322402811,
            -0.04694150913298847,
            -0.776316449984752,
        ],
    );
    let back = tab.inverse_transform(&data).unwrap();
    assert_eq!(back.shape(), (48_842, 10));
}

#[test]
fn quantile_bins_by_hand() {
    // 1..=9 in 3 bins: quantiles at positions 0, 8/3, 16/3, 8 of the sorted values give
    // edges [1, 3 + 2/3, 6 + 1/3, 9]; right-closed bins: 1-3 -> 1, 4-6 -> 2, 7-9 -> 3.
    let df = df!(
        "x" => [Some(5.0f64), Some(1.0), Some(9.0), Some(3.0), Some(4.0), Some(7.0), Some(2.0),
                Some(8.0), Some(6.0), None],
        "y" => [1.0f64; 10],
    )
    .unwrap();
    let mut tab = TabPreprocessor::new(&[], &["x", "y"]).quantize("x", Quantization::Bins(3));
    let data = tab.fit_transform(&df).unwrap();
    assert_eq!(
        data.cat.column(0).to_vec(),
        vec![2, 1, 3, 1, 2, 3, 1, 3, 2, 0]
    );
    let edges = tab.bin_edges("x").unwrap();
    let expected = [1.0, 3.0 + 2.0 / 3.0, 6.0 + 1.0 / 3.0, 9.0];
    assert_eq!(edges.len(), 4);
    for (g, e) in edges.iter().zip(expected) {
        assert!((g - e).abs() < 1e-12, "{edges:?}");
    }
    let meta = tab.meta().unwrap();
    assert_eq!(
        meta.cat,
        vec![CatColumnMeta {
            name: "x".into(),
            cardinality: 4,
            embed_dim: 3, // round(1.6 * 4^0.56)
        }]
    );
    assert_eq!(meta.cont, vec!["y"]);
    assert_eq!(data.cont.shape(), &[10, 1]);
    // New data: below/above the fitted range clamp to the end bins; edges are right-closed.
    let new = df!("x" => [-100.0f64, 3.6, 3.7, 6.4, 1e9, f64::NAN], "y" => [0.0f64; 6]).unwrap();
    assert_eq!(
        tab.transform(&new).unwrap().cat.column(0).to_vec(),
        vec![1, 1, 2, 3, 3, 0]
    );
    assert!(tab.bin_edges("y").is_none());
}

#[test]
fn quantile_bins_merge_repeated_edges() {
    // Mostly zeros (like capital-gain): 5 bins of [0 × 6, 1, 5, 10, 100] take the sorted
    // values at positions 0, 1.8, 3.6, 5.4, 7.2 and 9.
    let values = [0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 5.0, 10.0, 100.0];
    let df = df!("g" => values).unwrap();
    let mut tab = TabPreprocessor::new(&[], &["g"]).quantize("g", Quantization::Bins(5));
    let data = tab.fit_transform(&df).unwrap();
    // positions: 0 -> 0; 1.8 -> 0; 3.6 -> 0; 5.4 -> 0 + 0.4 * 1 = 0.4; 7.2 -> 5 + 0.2 * 5 = 6;
    // 9 -> 100. Merged: [0, 0.4, 6, 100] -> 3 bins.
    let edges = tab.bin_edges("g").unwrap();
    let expected = [0.0, 0.4, 6.0, 100.0];
    for (g, e) in edges.iter().zip(expected) {
        assert!((g - e).abs() < 1e-12, "{edges:?}");
    }
    assert_eq!(edges.len(), 4);
    assert_eq!(
        data.cat.column(0).to_vec(),
        vec![1, 1, 1, 1, 1, 1, 2, 2, 3, 3]
    );
    assert_eq!(tab.meta().unwrap().cat[0].cardinality, 4);
    assert_eq!(data.cont.shape(), &[10, 0]);
    // A constant column gets one bin.
    let df = df!("c" => [2.0f64, 2.0, 2.0]).unwrap();
    let mut tab = TabPreprocessor::new(&[], &["c"]).quantize("c", Quantization::Bins(4));
    let data = tab.fit_transform(&df).unwrap();
    assert_eq!(data.cat.column(0).to_vec(), vec![1, 1, 1]);
    assert_eq!(tab.meta().unwrap().cat[0].cardinality, 2);
}

#[test]
fn explicit_edges_follow_the_categorical_columns() {
    let mut tab = TabPreprocessor::new(&["color"], &["x", "n"])
        .quantize("n", Quantization::Edges(vec![0.0, 3.0, 5.0, 10.0]))
        .embed_dim_for("n", 2)
        .missing_indicator(true);
    let data = tab.fit_transform(&small()).unwrap();
    // n = [2, 4, 4, 4, 6]: (-inf, 3] -> 1, (3, 5] -> 2, (5, inf) -> 3.
    assert_eq!(data.cat, array![[3, 1], [1, 2], [0, 2], [3, 2], [2, 3]]);
    let meta = tab.meta().unwrap();
    let names: Vec<_> = meta
        .cat
        .iter()
        .map(|c| (c.name.as_str(), c.cardinality, c.embed_dim))
        .collect();
    assert_eq!(names, vec![("color", 4, 3), ("n", 4, 2)]);
    assert_eq!(meta.cont, vec!["x", "x_missing"]);
    assert_eq!(data.cont.shape(), &[5, 2]);
    assert_eq!(tab.bin_edges("n").unwrap(), &[0.0, 3.0, 5.0, 10.0]);
    // Back: the quantized column is the midpoint of its bin, in configuration order.
    let back = tab.inverse_transform(&data).unwrap();
    let names: Vec<&str> = back.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(names, vec!["color", "x", "n"]);
    let n: Vec<Option<f64>> = back.column("n").unwrap().f64().unwrap().iter().collect();
    assert_eq!(
        n,
        vec![Some(1.5), Some(4.0), Some(4.0), Some(4.0), Some(7.5)]
    );
    // Save and load keep the edges.
    assert_save_load(&tab, &small(), &data);
}

#[test]
fn bad_quantization_is_a_typed_error_naming_the_column() {
    let df = small();
    let cases = [
        ("x", Quantization::Edges(vec![0.0, 2.0, 2.0])),
        ("x", Quantization::Edges(vec![3.0, 1.0])),
        ("x", Quantization::Edges(vec![1.0])),
        ("x", Quantization::Edges(vec![0.0, f64::NAN])),
        ("x", Quantization::Bins(1)),
        ("color", Quantization::Bins(3)),
    ];
    for (col, q) in cases {
        let err = TabPreprocessor::new(&["color"], &["x"])
            .quantize(col, q.clone())
            .fit(&df)
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::InvalidConfig { ref field, ref reason }
                if field == "quantize" && reason.contains(&format!("`{col}`"))),
            "{q:?}: {err}"
        );
    }
    let err = TabPreprocessor::new(&[], &["x"])
        .quantize("x", Quantization::Bins(2))
        .scaling(Scaling::Columns(vec!["x".into()]))
        .fit(&df)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "scaling")
    );
    let nulls = df!("f" => [None::<f64>, Some(f64::NAN)]).unwrap();
    let err = TabPreprocessor::new(&[], &["f"])
        .quantize("f", Quantization::Bins(2))
        .fit(&nulls)
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::AllNull { ref column } if column == "f"));
    let mut tab = TabPreprocessor::new(&[], &["x"]).quantize("x", Quantization::Bins(2));
    tab.fit(&df).unwrap();
    let inf = df!("x" => [1.0f64, f64::INFINITY]).unwrap();
    assert!(matches!(
        tab.transform(&inf).unwrap_err(),
        PreprocessingError::NonFinite { ref column, row: 1, .. } if column == "x"
    ));
}
