//! Page-by-page prediction and evaluation from Parquet files (`Pipeline::predict_parquet`,
//! `Pipeline::evaluate_parquet`), and seeded row samples of a Parquet file (`sample_parquet`).
use crate::common::*;
use polars::prelude::*;
use std::path::Path;
use tch::Tensor;
use widedeep::pipeline::sample_parquet;
use widedeep::prelude::*;

/// Adult rows with `hours-per-week` as f64 (so a test can plant an infinity) and an `id`.
pub(crate) fn adult_frames(n_train: usize, n_test: usize) -> (DataFrame, DataFrame) {
    let (a, b) = adult_split(n_train, n_test);
    let prepare = |mut df: DataFrame, first_id: i64| {
        let hours = df
            .column("hours-per-week")
            .unwrap()
            .cast(&DataType::Float64)
            .unwrap();
        df.with_column(hours).unwrap();
        let ids: Vec<i64> = (0..df.height() as i64).map(|i| first_id + 7 * i).collect();
        df.with_column(Column::new("id".into(), ids)).unwrap();
        df
    };
    (prepare(a, 0), prepare(b, 1_000_000))
}

/// A Wide + TabMlp binary classifier trained two epochs on 3 000 Adult rows, and 1 500 test
/// rows.
fn binary_pipeline() -> (Pipeline, DataFrame) {
    let (train_df, test_df) = adult_frames(3_000, 1_500);
    let mut prep = adult_preprocessors();
    let train = prep.fit_transform(&train_df).unwrap();
    let mut trainer = wide_tabmlp_trainer(&prep, 3, 2);
    trainer.fit(&train, None).unwrap();
    (Pipeline::new(prep, trainer), test_df)
}

/// Writes `df` to `path` in row groups of 256 rows (the last one shorter).
fn write_parquet(df: &DataFrame, path: &Path) {
    write_groups(df, path, 256);
}

/// Writes `df` to `path` in row groups of `rows` rows (the last one shorter).
pub(crate) fn write_groups(df: &DataFrame, path: &Path, rows: usize) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ParquetWriter::new(file).batched(df.schema()).unwrap();
    for offset in (0..df.height()).step_by(rows) {
        let mut group = df.slice(offset as i64, rows);
        group.rechunk_mut_par();
        writer.write_batch(&group).unwrap();
    }
    writer.finish().unwrap();
}

/// `f` applied to consecutive slices of `df` of `sizes` rows, concatenated along the rows:
/// what a page-by-page pass computes.
fn by_pages(df: &DataFrame, sizes: &[usize], f: impl Fn(&DataFrame) -> Tensor) -> Tensor {
    let mut offset = 0;
    let parts: Vec<Tensor> = sizes
        .iter()
        .map(|&n| {
            let t = f(&df.slice(offset as i64, n));
            offset += n;
            t
        })
        .collect();
    assert_eq!(offset, df.height());
    Tensor::cat(&parts, 0)
}

/// `a` and `b` agree to float rounding (results of the same model over batches of different
/// sizes may differ in the last bits: BLAS kernels depend on the matrix size).
fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * y.abs().max(1.0),
            "{what} row {i}: {x} vs {y}"
        );
    }
}

fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn f32s(df: &DataFrame, col: &str) -> Vec<f32> {
    df.column(col)
        .unwrap()
        .f32()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

fn i64s(df: &DataFrame, col: &str) -> Vec<i64> {
    df.column(col)
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

#[test]
fn parquet_predictions_equal_predict_on_the_frame() {
    let (pipeline, test_df) = binary_pipeline();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.parquet");
    write_parquet(&test_df, &input);
    let frame = read_parquet(&input);

    // row groups 256 × 5 + 220, pages of at most 600 rows: 512, 512, 476
    let out = tmp.path().join("pred.parquet");
    let options = ParquetPredict::default().batch_rows(600).keep(["id"]);
    let report = pipeline.predict_parquet(&input, &out, &options).unwrap();
    assert_eq!(
        report,
        ParquetPredictReport {
            rows: 1_500,
            pages: 3,
            output: out.clone()
        }
    );
    let written = read_parquet(&out);
    let classes = pipeline.preprocessors.target.as_ref().unwrap().classes();
    assert_eq!(classes.len(), 2);
    let expected_names: Vec<String> = ["id", "prediction", "prediction_label"]
        .iter()
        .map(|s| s.to_string())
        .chain(classes.iter().map(|c| format!("proba_{c}")))
        .collect();
    let got_names: Vec<String> = written
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got_names, expected_names);
    assert_eq!(i64s(&written, "id"), i64s(&frame, "id"));

    // exactly what predict / predict_proba compute on the pages, and what they compute on the
    // whole frame (classes exactly, probabilities to float rounding)
    let pages = [512, 512, 476];
    let pred = Vec::<i64>::try_from(pipeline.predict(&frame).unwrap()).unwrap();
    let paged = by_pages(&frame, &pages, |df| pipeline.predict(df).unwrap());
    assert_eq!(Vec::<i64>::try_from(paged).unwrap(), pred);
    assert_eq!(i64s(&written, "prediction"), pred);
    let labels: Vec<String> = written
        .column("prediction_label")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap().to_string())
        .collect();
    let want: Vec<String> = pred.iter().map(|&c| classes[c as usize].clone()).collect();
    assert_eq!(labels, want);
    let proba = pipeline.predict_proba(&frame).unwrap();
    let paged = by_pages(&frame, &pages, |df| pipeline.predict_proba(df).unwrap());
    for (j, c) in classes.iter().enumerate() {
        let col = format!("proba_{c}");
        let p = Vec::<f32>::try_from(paged.select(1, j as i64).contiguous()).unwrap();
        assert_eq!(f32s(&written, &col), p, "{col}");
        let whole = Vec::<f32>::try_from(proba.select(1, j as i64).contiguous()).unwrap();
        close(&f32s(&written, &col), &whole, &col);
    }
    // both classes are predicted somewhere (the test is not vacuous)
    assert!(pred.contains(&0) && pred.contains(&1));

    // pages smaller than a row group (each group split in three): the same file
    let small = tmp.path().join("small.parquet");
    let report = pipeline
        .predict_parquet(
            &input,
            &small,
            &ParquetPredict::default().batch_rows(100).keep(["id"]),
        )
        .unwrap();
    assert_eq!((report.rows, report.pages), (1_500, 18));
    let small_df = read_parquet(&small);
    assert_eq!(small_df.get_column_names(), written.get_column_names());
    assert_eq!(i64s(&small_df, "id"), i64s(&written, "id"));
    assert_eq!(i64s(&small_df, "prediction"), pred);
    for c in classes {
        let col = format!("proba_{c}");
        close(&f32s(&small_df, &col), &f32s(&written, &col), &col);
    }
    // nothing but the input and the two outputs
    assert_eq!(
        names(tmp.path()),
        vec!["in.parquet", "pred.parquet", "small.parquet"]
    );
}

#[test]
fn parquet_evaluation_equals_evaluate_on_the_frame() {
    let (pipeline, test_df) = binary_pipeline();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.parquet");
    write_parquet(&test_df, &input);
    let frame = read_parquet(&input);
    let whole = pipeline.evaluate(&frame, None).unwrap();
    for batch_rows in [300, 1_000_000] {
        let paged = pipeline.evaluate_parquet(&input, batch_rows, None).unwrap();
        assert_eq!(
            paged.keys().collect::<Vec<_>>(),
            whole.keys().collect::<Vec<_>>()
        );
        for (k, v) in &whole {
            assert!((paged[k] - v).abs() < 1e-9, "{k}: {} vs {v}", paged[k]);
        }
    }
    assert_eq!(
        whole.keys().collect::<Vec<_>>(),
        ["accuracy", "auc", "loss"]
    );
    // without the target column
    let no_target = tmp.path().join("no_target.parquet");
    write_parquet(&test_df.drop("income").unwrap(), &no_target);
    let err = pipeline
        .evaluate_parquet(&no_target, 500, None)
        .unwrap_err();
    assert!(matches!(err, WideDeepError::Missing(_)), "{err}");
}

#[test]
fn bad_pages_and_existing_outputs_are_typed_errors_leaving_nothing() {
    let (pipeline, test_df) = binary_pipeline();
    let tmp = tempfile::tempdir().unwrap();

    // an infinite value in the last page (rows 1024..1500)
    let mut bad = test_df.clone();
    let mut hours: Vec<f64> = bad
        .column("hours-per-week")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    hours[1_400] = f64::INFINITY;
    bad.with_column(Column::new("hours-per-week".into(), hours))
        .unwrap();
    let input = tmp.path().join("bad.parquet");
    write_parquet(&bad, &input);
    let out = tmp.path().join("pred.parquet");
    let options = ParquetPredict::default().batch_rows(600);
    let err = pipeline
        .predict_parquet(&input, &out, &options)
        .unwrap_err();
    let WideDeepError::InputMismatch {
        input: column,
        reason,
    } = &err
    else {
        panic!("expected InputMismatch, got {err}");
    };
    assert_eq!(column, "hours-per-week");
    for part in ["bad.parquet", "page 3 of 3", "rows 1024..1500", "row 1400 "] {
        assert!(reason.contains(part), "`{part}` not in: {reason}");
    }
    assert_eq!(names(tmp.path()), vec!["bad.parquet"]);
    // the same for evaluation
    let err = pipeline.evaluate_parquet(&input, 600, None).unwrap_err();
    assert!(
        matches!(&err, WideDeepError::InputMismatch { input, .. } if input == "hours-per-week"),
        "{err}"
    );

    // a missing input column
    let missing = tmp.path().join("missing.parquet");
    write_parquet(&test_df.drop("age").unwrap(), &missing);
    let err = pipeline
        .predict_parquet(&missing, &out, &options)
        .unwrap_err();
    assert!(
        matches!(&err, WideDeepError::InputMismatch { input, reason }
            if input == "age" && reason.contains("missing.parquet")),
        "{err}"
    );
    // a kept column the file lacks, and a zero page size
    let err = pipeline
        .predict_parquet(&missing, &out, &options.clone().keep(["nope"]))
        .unwrap_err();
    assert!(
        matches!(&err, WideDeepError::InputMismatch { input, .. } if input == "nope"),
        "{err}"
    );
    let err = pipeline
        .predict_parquet(&missing, &out, &ParquetPredict::default().batch_rows(0))
        .unwrap_err();
    assert!(
        matches!(&err, WideDeepError::InvalidConfig { field, .. } if field == "batch_rows"),
        "{err}"
    );
    // a file that is not there
    let err = pipeline
        .predict_parquet(tmp.path().join("absent.parquet"), &out, &options)
        .unwrap_err();
    assert!(matches!(err, WideDeepError::Io { .. }), "{err}");
    assert_eq!(names(tmp.path()), vec!["bad.parquet", "missing.parquet"]);

    // an existing output is kept unless overwrite is set
    let good = tmp.path().join("good.parquet");
    write_parquet(&test_df, &good);
    std::fs::write(&out, b"keep me").unwrap();
    let err = pipeline.predict_parquet(&good, &out, &options).unwrap_err();
    assert!(
        matches!(&err, WideDeepError::InvalidConfig { field, .. } if field == "overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    // a failing page does not touch it either, even with overwrite
    let err = pipeline
        .predict_parquet(&input, &out, &options.clone().overwrite(true))
        .unwrap_err();
    assert!(matches!(err, WideDeepError::InputMismatch { .. }), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    let report = pipeline
        .predict_parquet(&good, &out, &options.clone().overwrite(true))
        .unwrap();
    assert_eq!(report.rows, 1_500);
    assert_eq!(read_parquet(&out).height(), 1_500);
    // writing over the input is refused
    let err = pipeline
        .predict_parquet(&good, &good, &options.clone().overwrite(true))
        .unwrap_err();
    assert!(
        matches!(&err, WideDeepError::InvalidConfig { field, .. } if field == "output"),
        "{err}"
    );
    assert_eq!(
        names(tmp.path()),
        vec![
            "bad.parquet",
            "good.parquet",
            "missing.parquet",
            "pred.parquet"
        ]
    );

    // a sequence preprocessor builds samples across rows, so pages cannot be independent
    let mut pipeline = pipeline;
    pipeline.preprocessors.seq = Some(SequencePreprocessor::new(SequenceSpec::new(
        "user", "item", "time", 5,
    )));
    let seq_field = |e: WideDeepError| matches!(&e, WideDeepError::InvalidConfig { field, .. } if field == "preprocessors.seq");
    let other = tmp.path().join("other.parquet");
    assert!(seq_field(
        pipeline
            .predict_parquet(&good, &other, &options)
            .unwrap_err()
    ));
    assert!(seq_field(
        pipeline.evaluate_parquet(&good, 600, None).unwrap_err()
    ));
    assert!(!other.exists());
}

#[test]
fn a_scaled_regression_writes_predictions_in_target_units() {
    let (train_df, test_df) = adult_frames(2_000, 700);
    let mut prep = Preprocessors::new()
        .wide(WidePreprocessor::new(&WIDE))
        .tab(TabPreprocessor::new(&CAT, &["age", "educational-num"]))
        .target(
            TargetEncoder::new("hours-per-week", TargetKind::Regression)
                .scaling(TargetScaling::Standard),
        );
    let train = prep.fit_transform(&train_df).unwrap();
    let model = WideDeep::new(&wide_tabmlp_config(&prep, 4), Device::Cpu).unwrap();
    let config = TrainerConfig::new(prep.objective().unwrap())
        .epochs(1)
        .batch_size(128)
        .metrics([Metric::R2, Metric::Rmse])
        .seed(4)
        .verbose(0);
    let mut trainer = Trainer::new(model, config).unwrap();
    trainer.fit(&train, None).unwrap();
    let pipeline = Pipeline::new(prep, trainer);

    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.parquet");
    write_parquet(&test_df, &input);
    let frame = read_parquet(&input);
    let out = tmp.path().join("pred.parquet");
    let options = ParquetPredict::default().batch_rows(300).keep(["id"]);
    let report = pipeline.predict_parquet(&input, &out, &options).unwrap();
    // row groups 256, 256, 188 each fit in a page of 300
    assert_eq!((report.rows, report.pages), (700, 3));
    let written = read_parquet(&out);
    let got_names: Vec<&str> = written
        .get_column_names()
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(got_names, ["id", "prediction"]);
    let got = f32s(&written, "prediction");
    let paged = by_pages(&frame, &[256, 256, 188], |df| pipeline.predict(df).unwrap());
    assert_eq!(got, Vec::<f32>::try_from(paged).unwrap());
    let pred = Vec::<f32>::try_from(pipeline.predict(&frame).unwrap()).unwrap();
    close(&got, &pred, "prediction");
    // in hours per week (the scaled target has mean 0 and unit variance)
    let mean = got.iter().sum::<f32>() / got.len() as f32;
    assert!((25.0..60.0).contains(&mean), "mean prediction {mean}");

    let whole = pipeline.evaluate(&frame, None).unwrap();
    let paged = pipeline.evaluate_parquet(&input, 300, None).unwrap();
    assert_eq!(
        whole.keys().collect::<Vec<_>>(),
        paged.keys().collect::<Vec<_>>()
    );
    for (k, v) in &whole {
        assert!((paged[k] - v).abs() < 1e-9, "{k}: {} vs {v}", paged[k]);
    }
    // RMSE in hours, not in standard deviations
    assert!(whole["rmse"] > 3.0, "{whole:?}");
}

/// 40 rows (`id` 0..40 and columns of several dtypes, with nulls) in 4 row groups of 10.
fn small_file(path: &Path) -> DataFrame {
    let ids: Vec<i64> = (0..40).collect();
    let x: Vec<f64> = (0..40).map(|i| i as f64 * 0.5 - 3.0).collect();
    let s: Vec<Option<String>> = (0..40)
        .map(|i| (i % 7 != 3).then(|| format!("s{i}")))
        .collect();
    let b: Vec<Option<bool>> = (0..40)
        .map(|i| (i % 5 != 0).then_some(i % 2 == 0))
        .collect();
    let f: Vec<f32> = (0..40).map(|i| i as f32 / 8.0).collect();
    let df = DataFrame::new(
        40,
        vec![
            Column::new("id".into(), ids),
            Column::new("x".into(), x),
            Column::new("s".into(), s),
            Column::new("b".into(), b),
            Column::new("f".into(), f),
        ],
    )
    .unwrap();
    write_groups(&df, path, 10);
    df
}

#[test]
fn parquet_samples_are_seeded_in_file_order_with_every_column() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("small.parquet");
    let df = small_file(&path);

    let a = sample_parquet(&path, 10, 7).unwrap();
    assert_eq!(a.height(), 10);
    assert_eq!(a.schema(), df.schema(), "every column, every dtype");
    let ids = i64s(&a, "id");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "file order: {ids:?}");
    // each sampled row is the file's row, column for column (nulls included)
    let idx = IdxCa::from_vec("idx".into(), ids.iter().map(|&i| i as IdxSize).collect());
    assert!(a.equals_missing(&df.take(&idx).unwrap()));
    // same seed, same rows; another seed, other rows
    assert!(a.equals_missing(&sample_parquet(&path, 10, 7).unwrap()));
    assert_ne!(ids, i64s(&sample_parquet(&path, 10, 8).unwrap(), "id"));
    // n ≥ rows: the whole file, in order
    for n in [40, 41, 1_000] {
        assert!(sample_parquet(&path, n, 3).unwrap().equals_missing(&df));
    }
    // typed errors: n = 0 names `n`; a missing file and a non-Parquet file name the path
    let err = sample_parquet(&path, 0, 1).unwrap_err();
    assert!(
        matches!(&err, WideDeepError::InvalidConfig { field, .. } if field == "n"),
        "{err}"
    );
    let missing = tmp.path().join("nope.parquet");
    let err = sample_parquet(&missing, 5, 1).unwrap_err();
    assert!(
        matches!(&err, WideDeepError::Io { path, .. } if *path == missing),
        "{err}"
    );
    let junk = tmp.path().join("junk.parquet");
    std::fs::write(&junk, b"not parquet at all").unwrap();
    let err = sample_parquet(&junk, 5, 1).unwrap_err();
    assert!(
        matches!(&err, WideDeepError::InputMismatch { input, .. } if input.contains("junk.parquet")),
        "{err}"
    );
}

#[test]
fn parquet_samples_are_uniform_over_rows() {
    // 40 rows in 4 row groups, samples of 10 under 2 000 seeds: row i is kept c_i times,
    // c_i ~ Binomial(2000, p = 1/4) (mean 500, sd σ = √(2000·p·(1-p)) ≈ 19.4).
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("small.parquet");
    small_file(&path);
    let (rows, n, seeds) = (40usize, 10usize, 2_000u64);
    let mut counts = vec![0u32; rows];
    for seed in 0..seeds {
        let ids = i64s(&sample_parquet(&path, n, seed).unwrap(), "id");
        assert_eq!(ids.len(), n);
        for id in ids {
            counts[id as usize] += 1;
        }
    }
    let p = n as f64 / rows as f64;
    let mean = seeds as f64 * p;
    let var = seeds as f64 * p * (1.0 - p);
    // max deviation: P(|c_i - mean| > 5σ) < 5.8e-7 per row, < 2.3e-5 over 40 rows
    // (Bonferroni); 5σ ≈ 97 counts, a frequency within 0.25 ± 0.048
    let worst = counts
        .iter()
        .map(|&c| (c as f64 - mean).abs())
        .fold(0.0, f64::max);
    assert!(worst <= 5.0 * var.sqrt(), "{counts:?}");
    // chi-square: a uniform k-subset has Cov(c) = var·N/(N-1)·(I - 11ᵀ/N), so
    // Σ (c_i - mean)² / (var·N/(N-1)) is asymptotically χ² with N - 1 = 39 degrees of
    // freedom; its 0.999 quantile is 72.05
    let scale = var * rows as f64 / (rows - 1) as f64;
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - mean).powi(2) / scale)
        .sum();
    eprintln!(
        "sample inclusion over {seeds} seeds: max |c - {mean}| = {worst}, chi-square {chi2:.1}"
    );
    assert!(chi2 < 72.05, "chi-square {chi2:.1} over 39 dof: {counts:?}");
    // and not suspiciously flat either (0.001 quantile 17.9): the draws are random
    assert!(chi2 > 17.9, "chi-square {chi2:.1} over 39 dof: {counts:?}");
}

#[test]
fn parquet_samples_span_pages_larger_than_row_groups() {
    // 200 000 rows in 2 row groups of 100 000: pages of at most 65 536 rows split each group
    // into 2 pages of 50 000, so the sample is gathered from 4 pages (some skipped when n is
    // small)
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.parquet");
    let rows = 200_000i64;
    let df = DataFrame::new(
        rows as usize,
        vec![
            Column::new("id".into(), (0..rows).collect::<Vec<i64>>()),
            Column::new(
                "y".into(),
                (0..rows).map(|i| (i % 97) as f32).collect::<Vec<f32>>(),
            ),
        ],
    )
    .unwrap();
    write_groups(&df, &path, 100_000);
    let check = |n: usize, seed: u64| {
        let s = sample_parquet(&path, n, seed).unwrap();
        assert_eq!(s.height(), n);
        assert_eq!(s.schema(), df.schema());
        let ids = i64s(&s, "id");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "file order");
        let idx = IdxCa::from_vec("idx".into(), ids.iter().map(|&i| i as IdxSize).collect());
        assert!(s.equals_missing(&df.take(&idx).unwrap()));
        ids
    };
    for seed in 0..5 {
        check(3, seed);
    }
    // 1 000 rows: each page of 50 000 holds a hypergeometric count, mean 250, sd ≈ 13.7;
    // within 5 sd
    let ids = check(1_000, 11);
    for page in 0..4 {
        let c = ids.iter().filter(|&&i| i / 50_000 == page).count() as f64;
        assert!((c - 250.0).abs() < 5.0 * 13.7, "page {page}: {c}");
    }
}

#[test]
fn a_parquet_sample_is_an_explainer_background() {
    use widedeep::explain::{Explainer, ExplainerConfig, Method};
    let (pipeline, test_df) = binary_pipeline();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("adult.parquet");
    write_parquet(&test_df, &path);
    let sample = sample_parquet(&path, 200, 5).unwrap();
    assert_eq!(sample.height(), 200);
    assert_eq!(sample.schema(), test_df.schema());
    let background = pipeline.preprocessors.transform(&sample).unwrap();
    let config = ExplainerConfig::new(Method::GradientShap { samples: 20 })
        .background_size(50)
        .verbose(0)
        .seed(1);
    let explainer = Explainer::new(pipeline.trainer.model(), &background.input, &config).unwrap();
    let rows = pipeline
        .preprocessors
        .transform(&test_df.head(Some(4)))
        .unwrap();
    let e = explainer.explain(&rows.input).unwrap();
    assert_eq!(e.n_rows, 4);
    let logits: Vec<f32> =
        Vec::try_from(pipeline.trainer.predict_raw(&rows).unwrap().view([-1])).unwrap();
    for (r, logit) in logits.iter().enumerate() {
        assert!((e.prediction(r, 0) - *logit as f64).abs() < 1e-4);
    }
    assert!(e.values.iter().all(|v| v.is_finite()));
}
