//! Fitting chunk by chunk gives what `fit` gives on the whole frame; the sketch keeps its
//! stated error bound beyond its capacity; errors name rows of the stream.

use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{FitChunks, ValueSketch};
use crate::{
    Fit, PreprocessingError, Quantization, Scaling, TabPreprocessor, TargetEncoder, TargetKind,
    TargetScaling, WidePreprocessor,
};

/// 3,000 rows: string and integer categories with nulls, continuous columns with nulls and
/// NaN, an integer class label, a string label and a regression target.
fn frame() -> DataFrame {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let n = 3_000;
    let city: Vec<Option<String>> = (0..n)
        .map(|_| (rng.random::<f64>() > 0.05).then(|| format!("c{}", rng.random_range(0..40))))
        .collect();
    let level: Vec<Option<i64>> = (0..n)
        .map(|_| (rng.random::<f64>() > 0.1).then(|| rng.random_range(-3..12)))
        .collect();
    let age: Vec<Option<f64>> = (0..n)
        .map(|_| match rng.random::<f64>() {
            p if p < 0.05 => None,
            p if p < 0.08 => Some(f64::NAN),
            _ => Some(17.0 + 60.0 * rng.random::<f64>()),
        })
        .collect();
    let hours: Vec<f64> = (0..n).map(|_| rng.random_range(1..99) as f64).collect();
    let label: Vec<i64> = (0..n).map(|_| rng.random_range(0..2)).collect();
    let grade: Vec<&str> = (0..n)
        .map(|_| ["a", "b", "c"][rng.random_range(0..3)])
        .collect();
    let price: Vec<f64> = (0..n)
        .map(|_| 100.0 * rng.random::<f64>().powi(3))
        .collect();
    df!(
        "city" => city, "level" => level, "age" => age, "hours" => hours,
        "label" => label, "grade" => grade, "price" => price
    )
    .unwrap()
}

/// Uneven chunks covering `df` in order (one of them empty).
fn chunks(df: &DataFrame) -> Vec<DataFrame> {
    let cuts = [0, 1, 700, 700, 1999, df.height()];
    cuts.windows(2)
        .map(|w| df.slice(w[0] as i64, w[1] - w[0]))
        .collect()
}

fn same_fit<P: Fit + FitChunks + Clone + PartialEq + std::fmt::Debug>(prep: P, df: &DataFrame) {
    let mut whole = prep.clone();
    whole.fit(df).unwrap();
    let mut chunked = prep;
    chunked.fit_chunks(&chunks(df)).unwrap();
    assert_eq!(chunked, whole);
}

#[test]
fn tab_chunks_equal_whole_fit() {
    let df = frame();
    same_fit(
        TabPreprocessor::new(&["city", "level"], &["age", "hours", "price"])
            .quantize("hours", Quantization::Bins(5))
            .quantize("price", Quantization::Edges(vec![0.0, 1.0, 10.0, 100.0]))
            .missing_indicator(true),
        &df,
    );
    same_fit(
        TabPreprocessor::new(&["grade"], &["age"]).scaling(Scaling::None),
        &df,
    );
}

#[test]
fn wide_chunks_equal_whole_fit_with_crosses_and_quantile_bins() {
    let df = frame();
    let wide = WidePreprocessor::new(&["city", "level", "hours"])
        .crossed_cols(vec![
            vec!["city".into(), "grade".into()],
            vec!["level".into(), "hours".into()],
        ])
        .quantize("hours", Quantization::Bins(4));
    assert_eq!(wide.passes(), 2);
    same_fit(wide, &df);
    same_fit(WidePreprocessor::new(&["grade", "level"]), &df);
}

#[test]
fn target_chunks_equal_whole_fit() {
    let df = frame();
    same_fit(TargetEncoder::new("label", TargetKind::Binary), &df);
    same_fit(
        TargetEncoder::new("grade", TargetKind::Binary).positive_class("a"),
        &df.filter(&df.column("grade").unwrap().str().unwrap().not_equal("c"))
            .unwrap(),
    );
    same_fit(TargetEncoder::new("grade", TargetKind::Multiclass), &df);
    for scaling in [
        TargetScaling::None,
        TargetScaling::Standard,
        TargetScaling::Robust,
        TargetScaling::Log,
    ] {
        same_fit(
            TargetEncoder::new("price", TargetKind::Regression).scaling(scaling),
            &df,
        );
    }
}

#[test]
fn errors_name_the_row_of_the_stream() {
    let mut df = frame();
    let mut age: Vec<Option<f64>> = df.column("age").unwrap().f64().unwrap().iter().collect();
    age[2_500] = Some(f64::INFINITY);
    df.replace("age", Column::new("age".into(), age)).unwrap();
    let err = TabPreprocessor::new(&["city"], &["age"])
        .fit_chunks(&chunks(&df))
        .unwrap_err();
    assert!(
        matches!(&err, PreprocessingError::NonFinite { column, row: 2_500, .. } if column == "age"),
        "{err}"
    );
    let mut label: Vec<Option<i64>> = df.column("label").unwrap().i64().unwrap().iter().collect();
    label[2_001] = None;
    df.replace("label", Column::new("label".into(), label))
        .unwrap();
    let err = TargetEncoder::new("label", TargetKind::Binary)
        .fit_chunks(&chunks(&df))
        .unwrap_err();
    assert!(
        matches!(&err, PreprocessingError::NullValue { row: 2_001, .. }),
        "{err}"
    );
    let err = TabPreprocessor::new(&["city"], &["age"])
        .fit_chunks(&[])
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::EmptyFrame), "{err}");
}

/// Beyond its capacity the sketch keeps exact moments and a sample whose quantiles are within
/// the Dvoretzky–Kiefer–Wolfowitz bound of the true ones (δ = 1e-9).
#[test]
fn sketch_beyond_capacity_keeps_its_bound() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let values: Vec<f64> = (0..200_000)
        .map(|_| rng.random::<f64>().powi(2) * 50.0)
        .collect();
    let capacity = 2_000;
    let mut s = ValueSketch::new(capacity, 3);
    for chunk in values.chunks(30_001) {
        s.add(&Column::new("x".into(), chunk), "x", 0).unwrap();
    }
    assert!(!s.is_exact());
    assert_eq!(s.kept().len(), capacity);
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    assert!((s.mean() - mean).abs() < 1e-9 * mean);
    assert!((s.variance() - var).abs() < 1e-9 * var);
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let mut sample = s.kept().to_vec();
    sample.sort_by(f64::total_cmp);
    let bound = ((2.0f64 / 1e-9).ln() / (2.0 * capacity as f64)).sqrt();
    for p in [0.1, 0.25, 0.5, 0.75, 0.9] {
        let q = sample[(p * (capacity - 1) as f64) as usize];
        let rank = sorted.partition_point(|&v| v < q) as f64 / n;
        assert!(
            (rank - p).abs() <= bound,
            "p {p}: rank {rank}, bound {bound}"
        );
    }
    // a wrong sample (the first values only) would not keep the bound for a trend
    let trend: Vec<f64> = (0..200_000).map(|i| i as f64).collect();
    let mut t = ValueSketch::new(capacity, 3);
    t.add_values(&trend);
    let mut sample = t.kept().to_vec();
    sample.sort_by(f64::total_cmp);
    let median = sample[capacity / 2] / 200_000.0;
    assert!((median - 0.5).abs() <= bound, "median rank {median}");
}
