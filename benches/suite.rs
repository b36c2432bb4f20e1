//! The side-by-side benchmark suite: widedeep against pytorch-widedeep 1.7.0 (same libtorch
//! 2.11.0) on the same data, split, columns, hyper-parameters and batch sizes, one configuration
//! per process on each side so that peak memory and whole-process time are per configuration.
//! The image configuration (`mnist5k_resnet18`: a ResNet-18 on the mnist5k digits, 64×64 on the
//! CPU, 224×224 on CUDA) runs against PyTorch's own training loop with torchvision's ResNet-18
//! instead, the other side the issue asks for.
//!
//! Run: `make bench` (installs the reference into its own venv with
//! `scripts/setup-bench-env.sh`, then runs `cargo bench --bench suite`). Prints a markdown table
//! (preprocessing time, seconds per epoch, inference rows/s, peak memory, held-out metric and
//! whole-process time, each with the ratio) plus the machine description and the FLOP lower
//! bound of a TabMlp epoch.
//!
//! Environment:
//! - `SUITE_CONFIGS`: comma-separated subset of the configuration names (default: all);
//! - `SUITE_THREADS`: libtorch intra-op threads on both sides (default 1: the fastest setting for
//!   these small models on both sides on a 2-core machine; the reference's default is one per
//!   core — its figures at that default are printed for Wide + TabMlp);
//! - `SUITE_REPEATS`: run each side this many times, alternating, and keep the fastest (default 1);
//! - `SUITE_DEVICE`: `cpu` (default) or `cuda` / `cuda:N`, for both sides;
//! - `SUITE_PRECISION`: `fp32` (default) or `bf16`: our training forward pass under bf16
//!   autocast (`TrainerConfig::precision(Precision::Bf16)`, and `PretrainConfig::precision` for
//!   the pretraining configurations `adult_ed_*` and `adult_*_cd`). The reference stays in f32: it has
//!   no mixed-precision option, and `torch.autocast` around its `fit` stops it learning (Adult
//!   accuracy 0.760, the majority class);
//! - `WIDEDEEP_BENCH_VENV`: the reference's venv (default `~/.cache/widedeep/bench-venv`); without
//!   it only our side runs.
//!
//! Split everywhere: every fifth row (row index divisible by 5) is a test row, the rest train.
use anyhow::{bail, Context, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use widedeep::datasets;
use widedeep::models::TabModelConfig;
use widedeep::prelude::*;
use widedeep::preprocessing::TabMeta;

const ADULT_CAT: [&str; 10] = datasets::adult_columns::CATEGORICAL;
const ADULT_CONT: [&str; 3] = datasets::adult_columns::CONTINUOUS;
const ADULT_WIDE: [&str; 8] = datasets::adult_columns::WIDE;
const CALIFORNIA_CONT: [&str; 8] = datasets::california_columns::FEATURES;
const REVIEWS_CAT: [&str; 3] = ["Division Name", "Department Name", "Class Name"];
const REVIEWS_CONT: [&str; 2] = ["Age", "Positive Feedback Count"];
const SEED: u64 = 1;
const LR: f64 = 1e-3;

/// One benchmark configuration; both sides read the same values (the reference from the JSON
/// that `--describe` prints).
#[derive(Clone, Debug, Serialize)]
struct Config {
    name: &'static str,
    /// What it is, for the table.
    label: &'static str,
    data: &'static str,
    model: &'static str,
    epochs: usize,
    batch_size: usize,
    /// Stack the data set this many times (the scaling run).
    replicate: usize,
    /// Train at all (the scaling run measures preprocessing and inference only).
    train: bool,
    /// Rows per inference batch (SAINT attends across the rows of a batch, so it predicts with
    /// its training batch size).
    eval_batch_size: usize,
    /// Hyper-parameters of attention models (None for the others).
    attn: Option<Attn>,
    /// Side of the square images of the image configuration (0 elsewhere): 64 on the CPU, 224
    /// (ImageNet's) on CUDA.
    image_size: i64,
    /// Contrastive–denoising pretraining epochs of the attention model instead of supervised
    /// training (the reference's `ContrastiveDenoisingTrainer` with its defaults: both losses,
    /// AdamW at lr 1e-3); the metric is the pretraining loss of the first 5000 training rows in
    /// evaluation mode, and nothing is predicted.
    cd_pretrain: bool,
    /// Settings of the Bayesian configurations (None for the others).
    bayes: Option<Bayes>,
}

/// The Bayesian configurations' settings (the rest are the reference's defaults: prior σ₁ 1,
/// σ₂ 0.002, π 0.8, posterior μ 0, ρ −7; leaky ReLU; no continuous normalisation).
#[derive(Clone, Debug, Serialize)]
struct Bayes {
    hidden_dims: Vec<i64>,
    n_train_samples: usize,
}

#[derive(Clone, Debug, Serialize)]
struct Attn {
    input_dim: i64,
    n_heads: i64,
    n_blocks: i64,
    attn_dropout: f64,
    ff_dropout: f64,
    ff_factor: f64,
    activation: &'static str,
    cls: bool,
    mlp_hidden_dims: Option<Vec<i64>>,
    mlp_dropout: f64,
    kv_compression_factor: f64,
}

fn configs() -> Vec<Config> {
    let base = |name, label, data, model, epochs| Config {
        name,
        label,
        data,
        model,
        epochs,
        batch_size: 256,
        replicate: 1,
        train: true,
        eval_batch_size: 4096,
        attn: None,
        image_size: 0,
        cd_pretrain: false,
        bayes: None,
    };
    let mut all = vec![
        base(
            "adult_wide_tabmlp",
            "Adult Wide + TabMlp",
            "adult",
            "wide_tabmlp",
            5,
        ),
        Config {
            attn: Some(Attn {
                input_dim: 32,
                n_heads: 8,
                n_blocks: 4,
                attn_dropout: 0.2,
                ff_dropout: 0.1,
                ff_factor: 4.0,
                activation: "gelu",
                cls: false,
                mlp_hidden_dims: Some(vec![64, 32]),
                mlp_dropout: 0.1,
                kv_compression_factor: 0.0,
            }),
            ..base(
                "adult_tabtransformer",
                "Adult TabTransformer",
                "adult",
                "tab_transformer",
                2,
            )
        },
        Config {
            attn: Some(Attn {
                input_dim: 64,
                n_heads: 8,
                n_blocks: 4,
                attn_dropout: 0.2,
                ff_dropout: 0.1,
                ff_factor: 1.33,
                // the reference's "reglu" computes a GeGLU; name what both sides compute
                activation: "geglu",
                cls: true,
                mlp_hidden_dims: None,
                mlp_dropout: 0.0,
                kv_compression_factor: 0.5,
            }),
            ..base(
                "adult_fttransformer",
                "Adult FT-Transformer",
                "adult",
                "ft_transformer",
                2,
            )
        },
        Config {
            attn: Some(Attn {
                input_dim: 32,
                n_heads: 8,
                n_blocks: 2,
                attn_dropout: 0.1,
                ff_dropout: 0.2,
                ff_factor: 4.0,
                activation: "gelu",
                cls: false,
                mlp_hidden_dims: Some(vec![64, 32]),
                mlp_dropout: 0.1,
                kv_compression_factor: 0.0,
            }),
            eval_batch_size: 256,
            ..base("adult_saint", "Adult SAINT", "adult", "saint", 2)
        },
        // self-supervised pretraining (encoder–decoder route, masked_prob 0.2, AdamW at 1e-3):
        // seconds per pretraining epoch over the training rows; the held-out figure is the
        // reconstruction loss on the test rows in evaluation mode, inference the rows/s of that
        // evaluation
        base(
            "adult_ed_tabmlp",
            "Adult TabMlp encoder–decoder pretraining",
            "adult",
            "ed_tabmlp",
            2,
        ),
        base(
            "adult_ed_tabresnet",
            "Adult TabResnet encoder–decoder pretraining",
            "adult",
            "ed_tabresnet",
            2,
        ),
        // the reference cannot evaluate a TabNet encoder–decoder (its evaluation pass feeds the
        // embeddings back into TabNet's embedding layer): its held-out figure stays empty
        base(
            "adult_ed_tabnet",
            "Adult TabNet encoder–decoder pretraining",
            "adult",
            "ed_tabnet",
            2,
        ),
        base(
            "california_tabmlp",
            "California Housing TabMlp (regression)",
            "california_housing",
            "tabmlp",
            5,
        ),
        Config {
            batch_size: 64,
            ..base(
                "reviews_rnn_tabmlp",
                "Women's reviews BasicRNN + TabMlp",
                "womens_ecommerce_reviews",
                "rnn_tabmlp",
                2,
            )
        },
        // an image model next to PyTorch's own training loop (torchvision's ResNet-18, not
        // pytorch-widedeep): the digit of each mnist5k image, 10 classes
        Config {
            batch_size: 64,
            eval_batch_size: 256,
            image_size: 64,
            ..base(
                "mnist5k_resnet18",
                "mnist5k ResNet-18 (10 classes)",
                "mnist5k",
                "resnet18",
                1,
            )
        },
        // Bayes by Backprop (pytorch-widedeep's BayesianTrainer): the reference's default
        // BayesianTabMlp (hidden layers 200-100) and BayesianWide, two sampled networks per step
        Config {
            bayes: Some(Bayes {
                hidden_dims: vec![200, 100],
                n_train_samples: 2,
            }),
            ..base(
                "adult_bayesian_tabmlp",
                "Adult BayesianTabMlp (Bayes by Backprop)",
                "adult",
                "bayesian_tabmlp",
                3,
            )
        },
        Config {
            bayes: Some(Bayes {
                hidden_dims: vec![],
                n_train_samples: 2,
            }),
            ..base(
                "adult_bayesian_wide",
                "Adult BayesianWide (Bayes by Backprop)",
                "adult",
                "bayesian_wide",
                3,
            )
        },
        Config {
            replicate: 21,
            train: false,
            batch_size: 4096,
            ..base(
                "adult_1m",
                "Adult ×21 (1.03M rows): preprocessing + inference",
                "adult",
                "wide_tabmlp",
                0,
            )
        },
    ];
    // contrastive–denoising pretraining epochs of the attention models above (unlabelled rows)
    for (from, name, label) in [
        (
            "adult_fttransformer",
            "adult_fttransformer_cd",
            "Adult FT-Transformer: contrastive–denoising pretraining",
        ),
        (
            "adult_saint",
            "adult_saint_cd",
            "Adult SAINT: contrastive–denoising pretraining",
        ),
    ] {
        let c = all.iter().find(|c| c.name == from).expect("listed").clone();
        all.push(Config {
            name,
            label,
            epochs: 1,
            cd_pretrain: true,
            ..c
        });
    }
    all
}

/// What one side measured for one configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Figures {
    prep_s: f64,
    /// Seconds per training epoch (NaN when the configuration does not train; `null` in JSON).
    #[serde(deserialize_with = "nan_if_null")]
    epoch_s: f64,
    /// Inference rows per second (NaN for the pretraining configurations; `null` in JSON).
    #[serde(deserialize_with = "nan_if_null")]
    infer_rows_s: f64,
    peak_mb: f64,
    /// "accuracy", "rmse" or "" (no held-out metric).
    metric: String,
    #[serde(deserialize_with = "nan_if_null")]
    value: f64,
    /// Multiply-adds of one training epoch (ours, TabMlp only; 0 when not counted).
    #[serde(default)]
    epoch_macs: f64,
    /// Wall time of the whole process, measured by the parent.
    #[serde(default)]
    process_s: f64,
}

/// JSON has no NaN: both sides write `null` for "not measured".
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The data set stacked `replicate` times, split into (train, test) by row index.
fn load_split(cfg: &Config) -> Result<(DataFrame, DataFrame)> {
    let one = if cfg.data == "mnist5k" {
        datasets::mnist5k_labels()?
    } else {
        datasets::read_parquet(datasets::datasets_dir().join(format!("{}.parquet", cfg.data)))?
    };
    let mut df = one.clone();
    for _ in 1..cfg.replicate {
        df.vstack_mut(&one)?;
    }
    df.rechunk_mut();
    let is_test: BooleanChunked = (0..df.height()).map(|i| i % 5 == 0).collect();
    Ok((df.filter(&!&is_test)?, df.filter(&is_test)?))
}

fn preprocessors(cfg: &Config) -> Preprocessors {
    match (cfg.data, cfg.model) {
        ("adult", "bayesian_wide") => Preprocessors::new()
            .wide(
                WidePreprocessor::new(&ADULT_WIDE).crossed_cols(datasets::adult_columns::crossed()),
            )
            .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K")),
        ("adult", "wide_tabmlp") => Preprocessors::new()
            .wide(
                WidePreprocessor::new(&ADULT_WIDE).crossed_cols(datasets::adult_columns::crossed()),
            )
            .tab(TabPreprocessor::new(&ADULT_CAT, &ADULT_CONT))
            .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K")),
        ("adult", _) => Preprocessors::new()
            .tab(TabPreprocessor::new(&ADULT_CAT, &ADULT_CONT))
            .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K")),
        ("mnist5k", _) => Preprocessors::new()
            .image(
                ImagePreprocessor::from_paths("image", datasets::mnist5k_dir())
                    .size(cfg.image_size as u32, cfg.image_size as u32)
                    .normalization(Normalization::Fitted),
            )
            .target(TargetEncoder::new("label", TargetKind::Multiclass)),
        ("california_housing", _) => Preprocessors::new()
            .tab(TabPreprocessor::new(&[], &CALIFORNIA_CONT))
            .target(TargetEncoder::new("MedHouseVal", TargetKind::Regression)),
        _ => Preprocessors::new()
            .tab(TabPreprocessor::new(&REVIEWS_CAT, &REVIEWS_CONT))
            .text(TextPreprocessor::new("Review Text"))
            .target(TargetEncoder::new("Recommended IND", TargetKind::Binary).positive_class("1")),
    }
}

fn transformer_activation(name: &str) -> TransformerActivation {
    match name {
        "geglu" => TransformerActivation::Geglu,
        _ => TransformerActivation::Gelu,
    }
}

fn attention_model(cfg: &Config, a: &Attn, meta: &TabMeta) -> TabModelConfig {
    let embed = AttnEmbedConfig::new().with_cls_token(a.cls);
    let mlp = a.mlp_hidden_dims.as_ref().map(|d| {
        MlpConfig::default()
            .hidden_dims(d.clone())
            .dropout(a.mlp_dropout)
    });
    let act = transformer_activation(a.activation);
    macro_rules! common {
        ($c:expr) => {
            $c.input_dim(a.input_dim)
                .n_heads(a.n_heads)
                .n_blocks(a.n_blocks)
                .attn_dropout(a.attn_dropout)
                .ff_dropout(a.ff_dropout)
                .ff_factor(a.ff_factor)
                .transformer_activation(act)
                .embed(embed)
        };
    }
    match cfg.model {
        "tab_transformer" => {
            let mut c = common!(TabTransformerConfig::from_meta(meta));
            c.mlp = mlp;
            c.into()
        }
        "ft_transformer" => {
            let mut c = common!(FtTransformerConfig::from_meta(meta))
                .kv_compression_factor(Some(a.kv_compression_factor));
            c.mlp = mlp;
            c.into()
        }
        _ => {
            let mut c = common!(SaintConfig::from_meta(meta));
            c.mlp = mlp;
            c.into()
        }
    }
}

fn model_config(cfg: &Config, prep: &Preprocessors) -> Result<WideDeepConfig> {
    let model = WideDeepConfig::new().seed(SEED);
    let tabmlp = || -> Result<TabMlpConfig> {
        Ok(TabMlpConfig::from_meta(&prep.tab_meta()?)
            .mlp(MlpConfig::default().hidden_dims([64, 32]).dropout(0.1)))
    };
    Ok(match (cfg.model, &cfg.attn) {
        (_, Some(a)) => model.deeptabular(attention_model(cfg, a, &prep.tab_meta()?)),
        ("wide_tabmlp", _) => model
            .wide(WideConfig::new(prep.wide_dim()?))
            .deeptabular(tabmlp()?.cont_norm(ContNorm::BatchNorm)),
        ("tabmlp", _) => model.deeptabular(tabmlp()?),
        ("resnet18", _) => model
            .deepimage(BackboneConfig::new(
                ImageInput::from_meta(&prep.image_meta(0)?, 0),
                Backbone::Resnet18,
            ))
            .pred_dim(10),
        _ => model.deeptabular(tabmlp()?).deeptext(
            BasicRnnConfig::new(TextInput::from_meta(&prep.text_meta(0)?, 0))
                .embed_dim(32)
                .hidden_dim(64)
                .n_layers(1)
                .rnn_type(RnnType::Lstm),
        ),
    })
}

/// Multiply-adds of one TabMlp training epoch: the dense layers forward plus a backward of
/// about twice the forward (embedding and wide lookups are gathers, no multiply-adds).
fn tabmlp_epoch_macs(prep: &Preprocessors, rows: i64) -> Result<f64> {
    let width: i64 = prep
        .tab_meta()?
        .cat
        .iter()
        .map(|c| c.embed_dim as i64)
        .sum::<i64>()
        + ADULT_CONT.len() as i64;
    Ok(3.0 * (width * 64 + 64 * 32 + 32) as f64 * rows as f64)
}

/// The encoder of an encoder–decoder pretraining configuration (`ed_tabmlp`, `ed_tabresnet`,
/// `ed_tabnet`).
fn pretrain_encoder(cfg: &Config, meta: &TabMeta) -> TabModelConfig {
    match cfg.model {
        "ed_tabnet" => TabNetConfig::from_meta(meta).into(),
        "ed_tabresnet" => TabResnetConfig::from_meta(meta)
            .blocks_dims([64, 32, 32])
            .blocks_dropout(0.1)
            .into(),
        _ => TabMlpConfig::from_meta(meta)
            .mlp(MlpConfig::default().hidden_dims([64, 32]).dropout(0.1))
            .into(),
    }
}

/// Our side of an encoder–decoder pretraining configuration: seconds per pretraining epoch,
/// then the reconstruction loss on the test rows (evaluation mode, batches of `batch_size`).
fn ours_pretrain(cfg: &Config) -> Result<Figures> {
    let (train_df, test_df) = load_split(cfg)?;
    let t = Instant::now();
    let mut prep = preprocessors(cfg);
    let train = prep.fit_transform(&train_df)?;
    let test = prep.transform(&test_df)?;
    let prep_s = t.elapsed().as_secs_f64();
    let encoder = pretrain_encoder(cfg, &prep.tab_meta()?);
    let model = EncoderDecoder::new(
        &EncoderDecoderConfig::new(encoder).seed(SEED),
        suite_device()?,
    )?;
    let mut pretrainer = EncoderDecoderTrainer::new(model, pretrain_settings(cfg)?)?;
    let t = Instant::now();
    pretrainer.fit(&train, None)?;
    let epoch_s = t.elapsed().as_secs_f64() / cfg.epochs as f64;
    let t = Instant::now();
    let value = pretrainer.evaluate(&test)?;
    Ok(Figures {
        prep_s,
        epoch_s,
        infer_rows_s: test.len() as f64 / t.elapsed().as_secs_f64(),
        peak_mb: peak_rss_mb(),
        metric: "recon_loss".into(),
        value,
        ..Default::default()
    })
}

/// Our side of a Bayesian configuration: a [`BayesianTrainer`] with the reference's
/// procedure (no shuffling, Adam at LR, `n_train_samples` networks per step); inference and
/// the held-out accuracy with the posterior-mean weights, as the reference's `predict_proba`.
fn ours_bayesian(cfg: &Config, b: &Bayes) -> Result<Figures> {
    let (train_df, test_df) = load_split(cfg)?;
    let t = Instant::now();
    let mut prep = preprocessors(cfg);
    let train = prep.fit_transform(&train_df)?;
    let test = prep.transform(&test_df)?;
    let prep_s = t.elapsed().as_secs_f64();
    let objective = prep.objective()?;
    let net: BayesianModelConfig = if cfg.model == "bayesian_wide" {
        BayesianModelConfig::new(BayesianWideConfig::new(prep.wide_dim()?))
    } else {
        BayesianModelConfig::new(
            BayesianTabMlpConfig::from_meta(&prep.tab_meta()?).hidden_dims(b.hidden_dims.clone()),
        )
    };
    let model = BayesianModel::new(&net.seed(SEED), suite_device()?)?;
    let config = BayesianTrainerConfig::new(objective.clone())
        .optimizer(Optimizer::adam())
        .weight_decay(0.0)
        .lr(LR)
        .epochs(cfg.epochs)
        .batch_size(cfg.batch_size)
        .eval_batch_size(cfg.eval_batch_size)
        .n_train_samples(b.n_train_samples)
        .shuffle(false)
        .seed(SEED)
        .verbose(0);
    let mut trainer = BayesianTrainer::new(model, config)?;
    let t = Instant::now();
    trainer.fit(&train, None)?;
    let epoch_s = t.elapsed().as_secs_f64() / cfg.epochs as f64;
    let t = Instant::now();
    let out = trainer.predict_raw_mean_weights(&test)?;
    let infer_rows_s = test.len() as f64 / t.elapsed().as_secs_f64();
    let target = test.target.as_ref().context("test target")?;
    let value = Metric::Accuracy.compute(&objective, &objective.scores(&out), target)?;
    Ok(Figures {
        prep_s,
        epoch_s,
        infer_rows_s,
        peak_mb: peak_rss_mb(),
        metric: Metric::Accuracy.name().to_string(),
        value,
        ..Default::default()
    })
}

/// Our side of one configuration, in this process.
fn ours(cfg: &Config) -> Result<Figures> {
    if cfg.model.starts_with("ed_") {
        return ours_pretrain(cfg);
    }
    if let Some(b) = &cfg.bayes {
        return ours_bayesian(cfg, b);
    }
    let (train_df, test_df) = load_split(cfg)?;
    let t = Instant::now();
    let mut prep = preprocessors(cfg);
    let train = prep.fit_transform(&train_df)?;
    let test = prep.transform(&test_df)?;
    let prep_s = t.elapsed().as_secs_f64();
    drop(train_df);
    drop(test_df);

    if cfg.cd_pretrain {
        return ours_cd_pretrain(cfg, &prep, &train, prep_s);
    }
    let objective = prep.objective()?;
    let model = WideDeep::new(&model_config(cfg, &prep)?, suite_device()?)?;
    let config = TrainerConfig::new(objective.clone())
        .epochs(cfg.epochs.max(1))
        .batch_size(cfg.batch_size)
        .eval_batch_size(cfg.eval_batch_size)
        .lr(LR)
        .seed(SEED)
        .precision(suite_precision()?)
        .verbose(0);
    let mut trainer = Trainer::new(model, config)?;
    let mut figures = Figures {
        prep_s,
        epoch_s: f64::NAN,
        ..Default::default()
    };
    if cfg.train {
        let t = Instant::now();
        trainer.fit(&train, None)?;
        figures.epoch_s = t.elapsed().as_secs_f64() / cfg.epochs as f64;
        if cfg.model == "wide_tabmlp" {
            figures.epoch_macs = tabmlp_epoch_macs(&prep, train.len())?;
        }
    }
    drop(train);
    let t = Instant::now();
    let out = trainer.predict_raw(&test)?;
    figures.infer_rows_s = test.len() as f64 / t.elapsed().as_secs_f64();
    if cfg.train {
        let target = test.target.as_ref().context("test target")?;
        let scores = objective.scores(&out);
        let metric = if objective.is_classification() {
            Metric::Accuracy
        } else {
            Metric::Rmse
        };
        figures.metric = metric.name().to_string();
        figures.value = metric.compute(&objective, &scores, target)?;
    }
    figures.peak_mb = peak_rss_mb();
    Ok(figures)
}

/// Our side of a pretraining configuration: contrastive–denoising epochs of its attention model
/// with the reference trainer's defaults, then the pretraining loss on the first 5000 training
/// rows in evaluation mode.
fn ours_cd_pretrain(
    cfg: &Config,
    prep: &Preprocessors,
    train: &Dataset,
    prep_s: f64,
) -> Result<Figures> {
    let a = cfg
        .attn
        .as_ref()
        .context("pretraining needs an attention model")?;
    let tab = attention_model(cfg, a, &prep.tab_meta()?);
    let model = ContrastiveDenoising::new(
        &ContrastiveDenoisingConfig::new(tab).seed(SEED),
        suite_device()?,
    )?;
    let settings = pretrain_settings(cfg)?
        .eval_batch_size(cfg.eval_batch_size)
        // the reference's contrastive–denoising trainer does not shuffle its rows
        .shuffle(false);
    let mut pre = ContrastiveDenoisingTrainer::new(model, settings)?;
    let t = Instant::now();
    pre.fit(train, None)?;
    let epoch_s = t.elapsed().as_secs_f64() / cfg.epochs as f64;
    // the reference cannot score rows with categories unseen in training (its class targets go
    // negative): both sides score the first 5000 training rows, and as the reference the mean
    // of the losses of its evaluation batches (not weighted by their rows: the InfoNCE term
    // grows with a batch's rows)
    let rows = 5000.min(train.len());
    let eval_bs = cfg.eval_batch_size as i64;
    let mut losses = Vec::new();
    for start in (0..rows).step_by(cfg.eval_batch_size) {
        let len = eval_bs.min(rows - start);
        if len >= 2 {
            losses.push(pre.evaluate(&train.slice(start, len))?);
        }
    }
    Ok(Figures {
        prep_s,
        epoch_s,
        infer_rows_s: f64::NAN,
        metric: "cd_loss".into(),
        value: losses.iter().sum::<f64>() / losses.len().max(1) as f64,
        peak_mb: peak_rss_mb(),
        ..Default::default()
    })
}

/// The pretraining loop settings both routes share: the configuration's epochs and batch size,
/// the suite's learning rate, seed and precision, silent.
fn pretrain_settings(cfg: &Config) -> Result<PretrainConfig> {
    Ok(PretrainConfig::new()
        .epochs(cfg.epochs)
        .batch_size(cfg.batch_size)
        .lr(LR)
        .seed(SEED)
        .precision(suite_precision()?)
        .verbose(0))
}

/// The precision of our side's training forward pass, supervised and pretraining alike
/// (`SUITE_PRECISION=bf16`: bf16 autocast; default f32).
fn suite_precision() -> Result<Precision> {
    match std::env::var("SUITE_PRECISION").as_deref() {
        Err(_) | Ok("fp32") | Ok("") => Ok(Precision::Fp32),
        Ok("bf16") => Ok(Precision::Bf16),
        Ok(other) => bail!("SUITE_PRECISION must be fp32 or bf16, got {other}"),
    }
}

/// The device of both sides (`SUITE_DEVICE`, default the CPU).
fn suite_device() -> Result<Device> {
    Ok(match std::env::var("SUITE_DEVICE") {
        Ok(s) if !s.trim().is_empty() => parse_device(&s)?,
        _ => Device::Cpu,
    })
}

fn reference_python() -> Option<PathBuf> {
    let venv = std::env::var_os("WIDEDEEP_BENCH_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/widedeep/bench-venv"))
        })?;
    (venv.join(".widedeep-complete").exists() && venv.join("bin/python").exists())
        .then(|| venv.join("bin/python"))
}

/// Runs `cmd`, expects one JSON line of [`Figures`] on stdout, adds the process's wall time.
fn run_child(mut cmd: Command, what: &str) -> Result<Figures> {
    let t = Instant::now();
    let out = cmd.output().with_context(|| format!("starting {what}"))?;
    let process_s = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("{what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("no JSON from {what}: {stdout}"))?;
    let mut f: Figures = serde_json::from_str(line).with_context(|| format!("{what}: {line}"))?;
    f.process_s = process_s;
    Ok(f)
}

fn ours_child(cfg: &Config, threads: usize) -> Result<Figures> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--child", cfg.name])
        .env("SUITE_THREADS", threads.to_string());
    run_child(cmd, &format!("widedeep {}", cfg.name))
}

fn reference_child(
    python: &Path,
    cfg: &Config,
    threads: Option<usize>,
    workers: usize,
) -> Result<Figures> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/reference/suite.py");
    let mut cmd = Command::new(python);
    cmd.arg(&script)
        .arg("--config")
        .arg(serde_json::to_string(cfg)?)
        .arg("--data-dir")
        .arg(datasets::datasets_dir())
        .args(["--num-workers", &workers.to_string()])
        .args([
            "--device",
            match suite_device()? {
                Device::Cuda(_) => "cuda",
                _ => "cpu",
            },
        ]);
    if let Some(t) = threads {
        cmd.args(["--threads", &t.to_string()]);
    }
    run_child(cmd, &format!("pytorch-widedeep {}", cfg.name))
}

fn keep_fastest(slot: &mut Option<Figures>, f: Figures) {
    let key = |f: &Figures| {
        if f.epoch_s.is_nan() {
            f.prep_s
        } else {
            f.epoch_s
        }
    };
    if slot.as_ref().is_none_or(|s| key(&f) < key(s)) {
        *slot = Some(f);
    }
}

/// Measured f32 matmul throughput of this machine (FLOP/s) on 1024×1024 products.
fn matmul_flops() -> f64 {
    let a = tch::Tensor::randn([1024, 1024], (tch::Kind::Float, Device::Cpu));
    let _ = a.matmul(&a);
    let reps = 20;
    let t = Instant::now();
    for _ in 0..reps {
        let _ = a.matmul(&a);
    }
    2.0 * 1024f64.powi(3) * reps as f64 / t.elapsed().as_secs_f64()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(f64::NAN);
    let device = match suite_device() {
        Ok(Device::Cuda(i)) => format!("CUDA device {i}"),
        _ => "CPU".to_string(),
    };
    format!("{cpu}, {cores} cores, {mem_gb:.0} GiB RAM, libtorch 2.11.0, training on the {device}")
}

fn ratio(num: f64, den: f64) -> String {
    if num.is_finite() && den.is_finite() && den > 0.0 {
        format!("{:.1}×", num / den)
    } else {
        "–".into()
    }
}

fn fmt(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "–".into()
    }
}

/// The other side of `cfg`: pytorch-widedeep, or plain PyTorch for the image configuration.
fn reference_name(cfg: &Config) -> &'static str {
    if cfg.image_size > 0 {
        "PyTorch 2.11 + torchvision"
    } else {
        "pytorch-widedeep 1.7.0"
    }
}

fn print_table(rows: &[(Config, Figures, Option<Figures>)]) {
    println!(
        "| configuration | side | preprocessing s | s/epoch | inference rows/s | peak MB | \
         held-out metric | process s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (cfg, o, r) in rows {
        let metric = |f: &Figures| {
            if f.metric.is_empty() || !f.value.is_finite() {
                "–".to_string()
            } else {
                format!("{} {:.4}", f.metric, f.value)
            }
        };
        let line = |side: &str, f: &Figures| {
            println!(
                "| {} | {side} | {} | {} | {} | {} | {} | {} |",
                cfg.label,
                fmt(f.prep_s, 3),
                fmt(f.epoch_s, 3),
                fmt(f.infer_rows_s, 0),
                fmt(f.peak_mb, 0),
                metric(f),
                fmt(f.process_s, 1)
            )
        };
        line("widedeep", o);
        if let Some(r) = r {
            line(reference_name(cfg), r);
            let diff = match cfg.train && (o.value - r.value).is_finite() {
                // accuracy: higher is better; RMSE and reconstruction loss: lower is better —
                // print ours − theirs (not when a side could not evaluate: the reference's
                // TabNet encoder–decoder)
                true => format!("{} {:+.4}", o.metric, o.value - r.value),
                false => "–".into(),
            };
            println!(
                "| {} | **ratio** | **{}** | **{}** | **{}** | {:.2}× | {diff} | **{}** |",
                cfg.label,
                ratio(r.prep_s, o.prep_s),
                ratio(r.epoch_s, o.epoch_s),
                ratio(o.infer_rows_s, r.infer_rows_s),
                o.peak_mb / r.peak_mb,
                ratio(r.process_s, o.process_s),
            );
        }
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = std::env::var("SUITE_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    tch::set_num_threads(threads as i32);
    let mut all = configs();
    if suite_device()?.is_cuda() {
        // ImageNet-sized images on a GPU (64×64 keeps the CPU run to a minute or two)
        for c in all.iter_mut().filter(|c| c.image_size > 0) {
            c.image_size = 224;
        }
    }
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let name = args
            .get(i + 1)
            .context("--child needs a configuration name")?;
        let cfg = all
            .iter()
            .find(|c| c.name == name)
            .with_context(|| format!("unknown configuration {name}"))?;
        println!("{}", serde_json::to_string(&ours(cfg)?)?);
        return Ok(());
    }
    let mut selected = all.clone();
    if let Ok(names) = std::env::var("SUITE_CONFIGS") {
        let wanted: Vec<&str> = names.split(',').map(str::trim).collect();
        selected.retain(|c| wanted.contains(&c.name));
        if selected.is_empty() {
            bail!(
                "SUITE_CONFIGS matches none of: {}",
                all.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let repeats: usize = std::env::var("SUITE_REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let python = reference_python();
    if python.is_none() {
        eprintln!(
            "reference venv not found: run `bash scripts/setup-bench-env.sh` to compare with \
             pytorch-widedeep (only widedeep's side runs)"
        );
    }
    let mut rows = Vec::new();
    let mut default_workers = None;
    for cfg in &selected {
        let (mut o, mut r) = (None, None);
        // the two sides alternate so that both see similar machine load
        for _ in 0..repeats {
            let f = ours_child(cfg, threads)?;
            eprintln!("widedeep {}: {f:?}", cfg.name);
            keep_fastest(&mut o, f);
            if let Some(py) = &python {
                let f = reference_child(py, cfg, Some(threads), 0)?;
                eprintln!("pytorch-widedeep {}: {f:?}", cfg.name);
                keep_fastest(&mut r, f);
            }
        }
        if cfg.name == "adult_wide_tabmlp" {
            if let Some(py) = &python {
                // the reference's defaults: one intra-op thread and one loader worker per core
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                default_workers = Some((cores, reference_child(py, cfg, None, cores)?));
            }
        }
        rows.push((cfg.clone(), o.context("measured")?, r));
    }
    println!(
        "\nMachine: {}. Intra-op threads on both sides: {threads}; the reference trains with \
         num_workers=0 and shuffle=True; training forward pass in {}; fastest of {repeats} \
         alternating run(s).\n",
        machine(),
        if suite_precision()? == Precision::Bf16 {
            "bf16 autocast on our side, f32 on the reference's"
        } else {
            "f32"
        },
    );
    print_table(&rows);
    if let Some((cores, f)) = default_workers {
        println!(
            "\npytorch-widedeep with its defaults (num_workers={cores}, {cores} threads), Adult \
             Wide + TabMlp: {:.3} s/epoch, {:.1} s for the whole process",
            f.epoch_s, f.process_s
        );
    }
    if let Some((_, o, _)) = rows.iter().find(|(c, _, _)| c.name == "adult_wide_tabmlp") {
        let flops = matmul_flops();
        let bound = 2.0 * o.epoch_macs / flops;
        println!(
            "\nFLOP lower bound of a TabMlp epoch (Adult Wide + TabMlp): {:.2e} multiply-adds at \
             {:.1} GFLOP/s (1024² matmul, {threads} thread(s)) = {:.4} s; measured {:.3} s, \
             {:.0}× the bound",
            o.epoch_macs,
            flops / 1e9,
            bound,
            o.epoch_s,
            o.epoch_s / bound
        );
    }
    Ok(())
}
