//! The tabular model zoo on UCI Adult (bundled): every deep tabular model trained on the same
//! 80% of the rows and evaluated on the held-out 20%, printed as a markdown table of test
//! accuracy, AUC and seconds per epoch, with a logistic regression (linfa) on the same columns
//! as the classical baseline in the last row. Each deep model must reach a test accuracy of at
//! least 0.85.
//!
//! The list of models is the table `ZOO` below: one row per model with its configuration, the
//! number of epochs and the learning rate.
//!
//! Run: `cargo run --release --example tabular_zoo` (libtorch set up as in the README; a few
//! minutes on two CPU cores). `ZOO_ONLY=saint,tab_mlp` runs a subset; `ZOO_THREADS` sets
//! libtorch's intra-op threads (default 1: the operations of these small models are too small to
//! gain from splitting across cores, and on a busy machine extra threads mostly wait).
#[path = "common/baselines.rs"]
mod baselines;

use anyhow::{ensure, Result};
use std::time::Instant;
use widedeep::datasets;
use widedeep::models::TabModelConfig;
use widedeep::prelude::*;
use widedeep::preprocessing::TabMeta;
use widedeep::tch;

/// One model of the zoo: a name, its configuration for the fitted columns, epochs and lr.
struct Entry {
    name: &'static str,
    config: fn(&TabMeta) -> TabModelConfig,
    epochs: usize,
    lr: f64,
}

const ZOO: &[Entry] = &[
    Entry {
        name: "tab_mlp",
        config: |m| {
            TabMlpConfig::from_meta(m)
                .cont_norm(ContNorm::BatchNorm)
                .mlp(MlpConfig::default().hidden_dims([64, 32]))
                .into()
        },
        epochs: 5,
        lr: 1e-3,
    },
    Entry {
        name: "tab_resnet",
        config: |m| {
            TabResnetConfig::from_meta(m)
                .cont_norm(ContNorm::BatchNorm)
                .blocks_dims([128, 64, 64])
                .blocks_dropout(0.2)
                .embed_dropout(0.1)
                .into()
        },
        epochs: 5,
        lr: 1e-3,
    },
    Entry {
        name: "tab_net",
        config: |m| {
            TabNetConfig::from_meta(m)
                .n_steps(3)
                .step_dim(16)
                .attn_dim(16)
                .mask_type(MaskType::Sparsemax)
                .into()
        },
        epochs: 8,
        lr: 1e-2,
    },
    Entry {
        name: "tab_transformer",
        config: |m| {
            TabTransformerConfig::from_meta(m)
                .input_dim(16)
                .n_heads(4)
                .n_blocks(2)
                .embed(AttnEmbedConfig::new().cont_norm(ContNorm::BatchNorm))
                .mlp(MlpConfig::default().hidden_dims([64, 32]))
                .into()
        },
        epochs: 5,
        lr: 1e-3,
    },
    Entry {
        name: "saint",
        config: |m| {
            SaintConfig::from_meta(m)
                .input_dim(16)
                .n_heads(4)
                .n_blocks(1)
                .mlp(MlpConfig::default().hidden_dims([64, 32]))
                .into()
        },
        epochs: 5,
        lr: 1e-3,
    },
    Entry {
        name: "ft_transformer",
        config: |m| {
            FtTransformerConfig::from_meta(m)
                .input_dim(32)
                .n_heads(4)
                .n_blocks(2)
                .embed(AttnEmbedConfig::new().with_cls_token(true))
                .into()
        },
        epochs: 5,
        lr: 1e-3,
    },
    Entry {
        name: "context_attention_mlp",
        config: |m| {
            ContextAttentionMlpConfig::from_meta(m)
                .input_dim(16)
                .attn_dropout(0.1)
                .n_blocks(2)
                .into()
        },
        epochs: 5,
        lr: 1e-3,
    },
    Entry {
        name: "self_attention_mlp",
        config: |m| {
            SelfAttentionMlpConfig::from_meta(m)
                .input_dim(16)
                .n_heads(4)
                .attn_dropout(0.1)
                .with_addnorm(true)
                .n_blocks(2)
                .into()
        },
        epochs: 5,
        lr: 1e-3,
    },
    Entry {
        name: "tab_perceiver",
        config: |m| {
            TabPerceiverConfig::from_meta(m)
                .input_dim(16)
                .n_cross_attn_heads(2)
                .n_latents(8)
                .latent_dim(32)
                .n_latent_heads(4)
                .n_latent_blocks(1)
                .n_perceiver_blocks(2)
                .into()
        },
        epochs: 5,
        lr: 1e-3,
    },
    Entry {
        name: "tab_fastformer",
        config: |m| {
            TabFastFormerConfig::from_meta(m)
                .input_dim(16)
                .n_heads(4)
                .n_blocks(2)
                .embed(AttnEmbedConfig::new().with_cls_token(true))
                .into()
        },
        epochs: 5,
        lr: 1e-3,
    },
];

fn main() -> Result<()> {
    let device = default_device()?;
    let threads = std::env::var("ZOO_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    tch::set_num_threads(threads);
    let only: Option<Vec<String>> = std::env::var("ZOO_ONLY")
        .ok()
        .map(|s| s.split(',').map(|n| n.trim().to_string()).collect());
    let df = datasets::adult()?;
    let (train_df, test_df) = datasets::train_test_split(&df, 0.2, 42)?;
    // capital gains and losses as categories (about 120 distinct values each) help every model
    let cat_cols = datasets::adult_columns::CATEGORICAL;
    let cont_cols = datasets::adult_columns::CONTINUOUS;
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&cat_cols, &cont_cols))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df)?;
    let test = prep.transform(&test_df)?;
    let meta = prep.tab_meta()?;
    println!(
        "Adult: {} training rows, {} test rows, device {device:?}, {threads} thread(s)\n",
        train_df.height(),
        test_df.height()
    );

    let mut rows = Vec::new();
    for entry in ZOO {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == entry.name))
        {
            continue;
        }
        let cfg = WideDeepConfig::new()
            .deeptabular((entry.config)(&meta))
            .seed(1);
        let model = WideDeep::new(&cfg, device)?;
        let n_params = model.n_parameters();
        let config = TrainerConfig::new(prep.objective()?)
            .epochs(entry.epochs)
            .batch_size(256)
            .eval_batch_size(1024)
            .lr(entry.lr)
            .seed(42)
            .verbose(0);
        let mut trainer = Trainer::new(model, config)?;
        let start = Instant::now();
        trainer.fit(&train, None)?;
        let secs_per_epoch = start.elapsed().as_secs_f64() / trainer.history().len() as f64;
        let scores = trainer.evaluate(&test, Some(&[Metric::Accuracy, Metric::Auc]))?;
        eprintln!(
            "{}: accuracy {:.4}, AUC {:.4}, {secs_per_epoch:.1} s/epoch",
            entry.name, scores["accuracy"], scores["auc"]
        );
        rows.push((
            entry.name,
            n_params,
            scores["accuracy"],
            scores["auc"],
            secs_per_epoch,
        ));
    }

    println!("| model | parameters | test accuracy | test AUC | s/epoch |");
    println!("|---|---:|---:|---:|---:|");
    for (name, n_params, acc, auc, secs) in &rows {
        println!("| {name} | {n_params} | {acc:.4} | {auc:.4} | {secs:.1} |");
    }
    let base = baselines::logistic_regression(&prep, &train_df, &test_df)?;
    println!(
        "| {} | {} | {:.4} | {:.4} | {:.1} (fit) |",
        base.name,
        meta.cat.iter().map(|c| c.cardinality - 1).sum::<usize>() + meta.cont.len() + 1,
        base.scores[0].1,
        base.scores[1].1,
        base.fit_secs
    );
    for (name, _, acc, _, _) in &rows {
        ensure!(*acc >= 0.85, "{name}: test accuracy {acc:.4} is below 0.85");
    }
    Ok(())
}
