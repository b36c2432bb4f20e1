//! Shared set-up: an Adult subsample and a small Wide + TabMlp pipeline on it.
use polars::prelude::DataFrame;
use widedeep::datasets;
use widedeep::prelude::*;

pub const WIDE: [&str; 4] = ["education", "relationship", "occupation", "gender"];
pub const CAT: [&str; 8] = datasets::adult_columns::CATEGORICAL_SMALL;
pub const CONT: [&str; 3] = ["age", "educational-num", "hours-per-week"];

/// `n_train` training and `n_test` test rows of Adult, drawn with a fixed seed.
pub fn adult_split(n_train: usize, n_test: usize) -> (DataFrame, DataFrame) {
    let df = datasets::adult().unwrap();
    let (a, b) = datasets::train_test_split(&df, 0.2, 11).unwrap();
    (a.head(Some(n_train)), b.head(Some(n_test)))
}

pub fn adult_preprocessors() -> Preprocessors {
    Preprocessors::new()
        .wide(
            WidePreprocessor::new(&WIDE)
                .crossed_cols(vec![vec!["education".into(), "occupation".into()]]),
        )
        .tab(TabPreprocessor::new(&CAT, &CONT))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"))
}

/// A small Wide + TabMlp model for the fitted `prep`.
pub fn wide_tabmlp_config(prep: &Preprocessors, seed: u64) -> WideDeepConfig {
    WideDeepConfig::new()
        .wide(WideConfig::new(prep.wide_dim().unwrap()))
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
                .cont_norm(ContNorm::BatchNorm)
                .mlp(MlpConfig::default().hidden_dims([32, 16])),
        )
        .seed(seed)
}

/// Silent training settings with accuracy and AUC.
pub fn trainer_config(prep: &Preprocessors, seed: u64, epochs: usize) -> TrainerConfig {
    TrainerConfig::new(prep.objective().unwrap())
        .epochs(epochs)
        .batch_size(128)
        .metrics([Metric::Accuracy, Metric::Auc])
        .seed(seed)
        .verbose(0)
}

/// [`wide_tabmlp_config`] with [`trainer_config`], on the CPU.
pub fn wide_tabmlp_trainer(prep: &Preprocessors, seed: u64, epochs: usize) -> Trainer {
    let model = WideDeep::new(&wide_tabmlp_config(prep, seed), Device::Cpu).unwrap();
    Trainer::new(model, trainer_config(prep, seed, epochs)).unwrap()
}

/// `n` shuffled mnist5k rows as a small multimodal frame: `image` (path), a short text column
/// `text_col` (some rows null), a number `x` and the target `y` (the digit's parity, 0/1).
pub fn digits_frame(n: usize, text_col: &str) -> DataFrame {
    use polars::prelude::*;
    // mnist5k is sorted by label: shuffle first
    let (labels, _) =
        datasets::train_test_split(&datasets::mnist5k_labels().unwrap(), 0.5, 1).unwrap();
    let mut df = labels.head(Some(n));
    let label: Vec<i64> = df
        .column("label")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let words = ["zero", "one", "two"];
    let text: Vec<Option<String>> = (0..n)
        .map(|i| (i % 7 != 3).then(|| format!("add {}", words[i % 3])))
        .collect();
    let x: Vec<f64> = (0..n).map(|i| (i % 5) as f64).collect();
    let y: Vec<i64> = label.iter().map(|l| l % 2).collect();
    df.with_column(Column::new(text_col.into(), text)).unwrap();
    df.with_column(Column::new("x".into(), x)).unwrap();
    df.with_column(Column::new("y".into(), y)).unwrap();
    df
}

/// Preprocessors for [`digits_frame`]: `x` continuous, `text_col` as words (maxlen 4), the
/// image at 28×28 with fitted normalisation, and `target` on `y`.
pub fn digits_preprocessors(text_col: &str, target: TargetEncoder) -> Preprocessors {
    Preprocessors::new()
        .tab(TabPreprocessor::new(&[] as &[&str], &["x"]))
        .text(
            TextPreprocessor::new(text_col)
                .vocab(Vocab::Word {
                    min_freq: 1,
                    max_vocab: 50,
                })
                .maxlen(4),
        )
        .image(
            ImagePreprocessor::from_paths("image", datasets::mnist5k_dir())
                .size(28, 28)
                .normalization(Normalization::Fitted),
        )
        .target(target)
}

/// Trains `model` alone (binary objective, batch 256, seed 11) on `train` for `epochs` at `lr`;
/// returns the test AUC on `test` and the training seconds.
pub fn binary_auc_of(
    model: impl Into<widedeep::models::TabModelConfig>,
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
    lr: f64,
) -> (f64, f64) {
    let cfg = WideDeepConfig::new().deeptabular(model).seed(11);
    let model = WideDeep::new(&cfg, Device::Cpu).unwrap();
    let config = TrainerConfig::new(Objective::Binary)
        .epochs(epochs)
        .batch_size(256)
        .lr(lr)
        .metrics([Metric::Auc])
        .seed(11)
        .verbose(0);
    let mut trainer = Trainer::new(model, config).unwrap();
    let start = std::time::Instant::now();
    trainer.fit(train, None).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    (trainer.evaluate(test, None).unwrap()["auc"], seconds)
}
