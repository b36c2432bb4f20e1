//! Property-based tests: random messy DataFrames through a whole pipeline, and damaged saved
//! pipelines through `Pipeline::load`. Every outcome must be `Ok` with finite outputs or a
//! typed error — never a panic (proptest reports one as a failure), never a NaN.
//!
//! They run `WIDEDEEP_PROPTEST_CASES` cases each (default 1000 and 400, about 2 s in all);
//! run more with e.g.
//! `WIDEDEEP_PROPTEST_CASES=5000 cargo test --test it robustness`. A failure prints the
//! shrunk input and proptest's seed.
use polars::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::path::Path;
use tch::Tensor;
use widedeep::prelude::*;

fn cases(default: u32) -> u32 {
    std::env::var("WIDEDEEP_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How one generated column is stored.
#[derive(Clone, Copy, Debug)]
enum ColKind {
    Str,
    Int,
    Float,
    Bool,
    /// `Binary` (UTF-8, or not when `bad_bytes`).
    Bytes,
    /// Polars' `Null` dtype.
    NullType,
}

/// One cell before it is put into a column of some kind.
#[derive(Clone, Debug)]
enum Cell {
    Null,
    /// Index into the category pool (the last ones are unseen at fit time).
    Cat(usize),
    Num(f64),
}

const POOL: [&str; 6] = ["a", "b", "c", "x1", "ünï", "unseen"];

/// A number: ordinary most of the time (`plain` weight against 1 for each special value).
fn num(plain: u32) -> impl Strategy<Value = f64> {
    prop_oneof![
        plain => -10.0f64..10.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(1e300),
        1 => Just(-1e300),
        1 => Just(f64::MAX),
        1 => Just(3e38),
        1 => Just(1e-300),
        1 => Just(f64::MIN_POSITIVE / 4.0),
        1 => Just(0.0),
    ]
}

/// A cell of a messy frame (`messy`) or of a mostly clean one (training frames, so that
/// many cases get past `fit` and exercise the rest of the pipeline).
fn cell(messy: bool) -> impl Strategy<Value = Cell> {
    let (nulls, plain) = if messy { (2, 6) } else { (1, 150) };
    prop_oneof![
        nulls => Just(Cell::Null),
        8 => (0..POOL.len()).prop_map(Cell::Cat),
        8 => num(plain).prop_map(Cell::Num),
    ]
}

fn kind() -> impl Strategy<Value = ColKind> {
    prop_oneof![
        4 => Just(ColKind::Str),
        3 => Just(ColKind::Int),
        4 => Just(ColKind::Float),
        1 => Just(ColKind::Bool),
        1 => Just(ColKind::Bytes),
        1 => Just(ColKind::NullType),
    ]
}

fn column(name: &str, kind: ColKind, cells: &[Cell], bad_bytes: bool) -> Column {
    let n = cells.len();
    let as_f = |c: &Cell| match c {
        Cell::Null => None,
        Cell::Cat(i) => Some(*i as f64),
        Cell::Num(v) => Some(*v),
    };
    let as_s = |c: &Cell| match c {
        Cell::Null => None,
        Cell::Cat(i) => Some(POOL[*i].to_string()),
        Cell::Num(v) => Some(format!("{v}")),
    };
    match kind {
        ColKind::Str => Column::new(name.into(), cells.iter().map(as_s).collect::<Vec<_>>()),
        ColKind::Int => Column::new(
            name.into(),
            cells
                .iter()
                .map(|c| as_f(c).filter(|v| v.is_finite()).map(|v| v as i64))
                .collect::<Vec<_>>(),
        ),
        ColKind::Float => Column::new(name.into(), cells.iter().map(as_f).collect::<Vec<_>>()),
        ColKind::Bool => Column::new(
            name.into(),
            cells
                .iter()
                .map(|c| as_f(c).map(|v| v > 0.5))
                .collect::<Vec<_>>(),
        ),
        ColKind::Bytes => {
            let values: Vec<Option<Vec<u8>>> = cells
                .iter()
                .map(|c| {
                    as_s(c).map(|s| {
                        let mut b = s.into_bytes();
                        if bad_bytes {
                            b.push(0xff);
                        }
                        b
                    })
                })
                .collect();
            let refs: Vec<Option<&[u8]>> = values.iter().map(|v| v.as_deref()).collect();
            Column::new(name.into(), refs)
        }
        ColKind::NullType => Column::full_null(name.into(), n, &DataType::Null),
    }
}

/// A random frame with the columns the pipeline reads (`c1`, `c2` categorical, `x1`, `x2`
/// continuous, `y` target), each of a random kind, with nulls, NaN, ±inf, huge and tiny values
/// and unseen categories; sometimes a column is missing.
#[derive(Clone, Debug)]
struct FrameSpec {
    kinds: [ColKind; 4],
    /// `None`: the task's own (strings for binary, floats for regression).
    target_kind: Option<ColKind>,
    rows: Vec<([Cell; 4], Cell)>,
    drop: Option<usize>,
    bad_bytes: bool,
}

const NAMES: [&str; 4] = ["c1", "c2", "x1", "x2"];

fn frame_spec(max_rows: usize, messy: bool) -> impl Strategy<Value = FrameSpec> {
    let row = (
        [cell(messy), cell(messy), cell(messy), cell(messy)],
        prop_oneof![
            12 => (0usize..2).prop_map(Cell::Cat),
            1 => cell(messy),
        ],
    );
    // mostly the "right" kinds, so that many cases get through to training
    let good = prop_oneof![
        5 => Just([ColKind::Str, ColKind::Int, ColKind::Float, ColKind::Float]),
        1 => [kind(), kind(), kind(), kind()],
    ];
    (
        good,
        proptest::option::weighted(0.1, kind()),
        proptest::collection::vec(row, 0..=max_rows),
        proptest::option::weighted(if messy { 0.1 } else { 0.02 }, 0usize..5),
        proptest::bool::weighted(if messy { 0.1 } else { 0.02 }),
    )
        .prop_map(|(kinds, target_kind, rows, drop, bad_bytes)| FrameSpec {
            kinds,
            target_kind,
            rows,
            drop,
            bad_bytes,
        })
}

impl FrameSpec {
    fn frame(&self, regression: bool) -> DataFrame {
        let n = self.rows.len();
        let mut cols: Vec<Column> = (0..4)
            .map(|j| {
                let cells: Vec<Cell> = self.rows.iter().map(|r| r.0[j].clone()).collect();
                column(NAMES[j], self.kinds[j], &cells, self.bad_bytes)
            })
            .collect();
        let y: Vec<Cell> = self.rows.iter().map(|r| r.1.clone()).collect();
        let natural = if regression {
            ColKind::Float
        } else {
            ColKind::Str
        };
        cols.push(column(
            "y",
            self.target_kind.unwrap_or(natural),
            &y,
            self.bad_bytes,
        ));
        if let Some(d) = self.drop {
            cols.remove(d);
        }
        DataFrame::new(n, cols).expect("distinct names, equal lengths")
    }
}

#[derive(Clone, Debug)]
struct PipelineSpec {
    regression: bool,
    quantize_wide: bool,
    scale_target: bool,
    duplicate_config: bool,
}

fn pipeline_spec() -> impl Strategy<Value = PipelineSpec> {
    (
        any::<bool>(),
        proptest::bool::weighted(0.3),
        proptest::bool::weighted(0.3),
        proptest::bool::weighted(0.05),
    )
        .prop_map(
            |(regression, quantize_wide, scale_target, duplicate_config)| PipelineSpec {
                regression,
                quantize_wide,
                scale_target,
                duplicate_config,
            },
        )
}

fn preprocessors(spec: &PipelineSpec) -> Preprocessors {
    let mut wide = WidePreprocessor::new(&["c1", "x1"]);
    if spec.quantize_wide {
        wide = wide.quantize("x1", Quantization::Bins(3));
    }
    let cat: &[&str] = if spec.duplicate_config {
        &["c1", "c2", "c1"]
    } else {
        &["c1", "c2"]
    };
    let target = if spec.regression {
        let t = TargetEncoder::new("y", TargetKind::Regression);
        if spec.scale_target {
            t.scaling(TargetScaling::Standard)
        } else {
            t
        }
    } else {
        TargetEncoder::new("y", TargetKind::Binary)
    };
    Preprocessors::new()
        .wide(wide)
        .tab(TabPreprocessor::new(cat, &["x1", "x2"]))
        .target(target)
}

fn finite(t: &Tensor) -> bool {
    let t = t.to_kind(tch::Kind::Double);
    t.numel() == 0 || bool::try_from(t.isfinite().all()).unwrap()
}

/// A typed error must say something and carry no libtorch backtrace.
fn typed(e: &WideDeepError) -> std::result::Result<(), TestCaseError> {
    let msg = e.to_string();
    prop_assert!(!msg.is_empty());
    prop_assert!(!msg.contains("frame #"), "backtrace in error: {msg}");
    Ok(())
}

/// How far the cases got: fitted, trained, predicted, saved and reloaded.
static REACHED: [std::sync::atomic::AtomicUsize; 4] =
    [const { std::sync::atomic::AtomicUsize::new(0) }; 4];

fn reached(stage: usize) {
    REACHED[stage].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn run_pipeline(
    spec: &PipelineSpec,
    train: &FrameSpec,
    test: &FrameSpec,
    dir: &Path,
) -> std::result::Result<(), TestCaseError> {
    let (train_df, test_df) = (train.frame(spec.regression), test.frame(spec.regression));
    let mut prep = preprocessors(spec);
    let data = match prep.fit_transform(&train_df) {
        Ok(d) => d,
        Err(e) => return typed(&e),
    };
    reached(0);
    let config = WideDeepConfig::new()
        .wide(WideConfig::new(prep.wide_dim().unwrap()))
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
                .mlp(MlpConfig::default().hidden_dims([8])),
        );
    let model = match WideDeep::new(&config, Device::Cpu) {
        Ok(m) => m,
        Err(e) => return typed(&e),
    };
    let metrics = if spec.regression {
        vec![Metric::R2, Metric::Rmse, Metric::Mae]
    } else {
        vec![Metric::Accuracy, Metric::Auc, Metric::F1]
    };
    let cfg = TrainerConfig::new(prep.objective().unwrap())
        .epochs(1)
        .batch_size(4)
        .metrics(metrics)
        .verbose(0);
    let mut trainer = Trainer::new(model, cfg).unwrap();
    if let Err(e) = trainer.fit(&data, None) {
        return typed(&e);
    }
    reached(1);
    let pipeline = Pipeline::new(prep, trainer);
    let mut predicted = None;
    for df in [&train_df, &test_df] {
        match pipeline.predict(df) {
            Ok(p) => {
                prop_assert!(finite(&p), "non-finite prediction {p:?}");
                reached(2);
                predicted.get_or_insert(p);
            }
            Err(e) => typed(&e)?,
        }
        if !spec.regression {
            match pipeline.predict_proba(df) {
                Ok(p) => prop_assert!(finite(&p), "non-finite probability"),
                Err(e) => typed(&e)?,
            }
        }
        match pipeline.evaluate(df, None) {
            Ok(scores) => {
                for (k, v) in &scores {
                    prop_assert!(v.is_finite(), "{k} = {v}");
                }
            }
            Err(e) => typed(&e)?,
        }
    }
    pipeline
        .save(dir)
        .map_err(|e| TestCaseError::fail(format!("save: {e}")))?;
    let loaded =
        Pipeline::load(dir, Device::Cpu).map_err(|e| TestCaseError::fail(format!("load: {e}")))?;
    if let Some(p) = predicted {
        let again = loaded.predict(&train_df).unwrap();
        prop_assert!(again.equal(&p), "reloaded predictions differ");
    }
    reached(3);
    Ok(())
}

#[test]
fn random_messy_frames_never_panic_or_give_nan() {
    let tmp = tempfile::tempdir().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: cases(1000),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (pipeline_spec(), frame_spec(14, false), frame_spec(6, true));
    let n = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&strategy, |(spec, train, test)| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            run_pipeline(&spec, &train, &test, &tmp.path().join(format!("p{n}")))
        })
        .unwrap();
    let got: Vec<usize> = REACHED
        .iter()
        .map(|r| r.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    eprintln!(
        "messy frames: fitted {}, trained {}, predicted {}, saved and reloaded {}",
        got[0], got[1], got[2], got[3]
    );
    // the generator must exercise the whole pipeline, not stop at the first error
    assert!(
        got[3] * 5 >= cases(1000) as usize,
        "too few cases reach the end: {got:?}"
    );
}

/// A small trained pipeline saved to `dir`, and its predictions on `df`.
fn saved_pipeline(dir: &Path) -> (DataFrame, Tensor) {
    let df = df!(
        "c1" => ["a", "b", "a", "c", "b", "a", "c", "b"],
        "c2" => [1i64, 2, 3, 1, 2, 3, 1, 2],
        "x1" => [0.5f64, 1.5, -0.3, 2.0, 0.1, -1.0, 0.7, 1.1],
        "x2" => [1.0f64, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0],
        "y" => ["p", "n", "p", "n", "n", "p", "n", "p"],
    )
    .unwrap();
    let spec = PipelineSpec {
        regression: false,
        quantize_wide: true,
        scale_target: false,
        duplicate_config: false,
    };
    let mut prep = preprocessors(&spec);
    let data = prep.fit_transform(&df).unwrap();
    let config = WideDeepConfig::new()
        .wide(WideConfig::new(prep.wide_dim().unwrap()))
        .deeptabular(TabMlpConfig::from_meta(&prep.tab_meta().unwrap()));
    let model = WideDeep::new(&config, Device::Cpu).unwrap();
    let cfg = TrainerConfig::new(prep.objective().unwrap())
        .epochs(2)
        .batch_size(4)
        .verbose(0);
    let mut trainer = Trainer::new(model, cfg).unwrap();
    trainer.fit(&data, None).unwrap();
    let pipeline = Pipeline::new(prep, trainer);
    pipeline.save(dir).unwrap();
    let p = pipeline.predict_proba(&df).unwrap();
    (df, p)
}

#[derive(Clone, Debug)]
enum Damage {
    Truncate(f64),
    FlipByte(f64, u8),
    /// Replace the `k`-th number token of `pipeline.json` (k taken modulo their count).
    Number(usize, &'static str),
}

fn damage() -> impl Strategy<Value = (bool, Damage)> {
    let d = prop_oneof![
        1 => (0.0f64..1.0).prop_map(Damage::Truncate),
        2 => (0.0f64..1.0, 1u8..=255).prop_map(|(p, m)| Damage::FlipByte(p, m)),
        2 => (0usize..10_000, proptest::sample::select(vec![
            "0", "-1", "1", "2", "7", "1.5", "1e12", "100000000000", "-3.5e300", "99999999999999999999",
        ])).prop_map(|(k, v)| Damage::Number(k, v)),
    ];
    (any::<bool>(), d)
}

/// Byte ranges of the JSON number tokens of `text` (outside strings).
fn number_tokens(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut i, mut in_str) = (0, false);
    while i < text.len() {
        let c = text[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
            i += 1;
        } else if c == b'-' || c.is_ascii_digit() {
            let start = i;
            while i < text.len()
                && matches!(text[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
            {
                i += 1;
            }
            out.push((start, i));
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn damaged_saved_pipelines_load_identically_or_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let original = tmp.path().join("original");
    let (df, expected) = saved_pipeline(&original);
    let files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&original)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    let mut runner = TestRunner::new(Config {
        cases: cases(400),
        failure_persistence: None,
        ..Config::default()
    });
    let n = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&damage(), |(weights, d)| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = tmp.path().join(format!("d{n}"));
            std::fs::create_dir(&dir).unwrap();
            let target = if weights {
                "model.safetensors"
            } else {
                "pipeline.json"
            };
            for (name, bytes) in &files {
                let mut bytes = bytes.clone();
                if name == target {
                    match &d {
                        Damage::Truncate(p) => bytes.truncate((*p * bytes.len() as f64) as usize),
                        Damage::FlipByte(p, m) => {
                            let i = ((*p * bytes.len() as f64) as usize).min(bytes.len() - 1);
                            bytes[i] ^= m;
                        }
                        Damage::Number(k, v) => {
                            let tokens = number_tokens(&bytes);
                            if !tokens.is_empty() {
                                let (a, b) = tokens[k % tokens.len()];
                                bytes.splice(a..b, v.bytes());
                            }
                        }
                    }
                }
                std::fs::write(dir.join(name), bytes).unwrap();
            }
            match Pipeline::load(&dir, Device::Cpu) {
                Ok(p) => {
                    let got = p.predict_proba(&df).map_err(|e| {
                        TestCaseError::fail(format!("loaded, then predict failed: {e}"))
                    })?;
                    prop_assert!(
                        got.equal(&expected),
                        "{d:?} on {target}: loaded with different predictions"
                    );
                }
                Err(e) => typed(&e)?,
            }
            std::fs::remove_dir_all(&dir).unwrap();
            Ok(())
        })
        .unwrap();
}
