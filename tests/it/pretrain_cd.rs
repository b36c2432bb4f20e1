//! Contrastive–denoising pretraining on real rows: the loss falls, and the pretrained encoder
//! fine-tunes in a `WideDeep`.
use crate::common::{adult_split, CAT, CONT};
use widedeep::prelude::*;

/// The contrastive–denoising route for `tab` under the loop settings `cfg`.
fn trainer(tab: &FtTransformerConfig, cfg: PretrainConfig) -> ContrastiveDenoisingTrainer {
    let model = ContrastiveDenoising::new(
        &ContrastiveDenoisingConfig::new(tab.clone()).seed(cfg.seed),
        Device::Cpu,
    )
    .unwrap();
    ContrastiveDenoisingTrainer::new(model, cfg).unwrap()
}

#[test]
fn pretraining_loss_falls_on_adult_and_the_encoder_fine_tunes() {
    let (train_df, test_df) = adult_split(800, 400);
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&CAT, &CONT))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df).unwrap();
    let test = prep.transform(&test_df).unwrap();
    let tab = FtTransformerConfig::from_meta(&prep.tab_meta().unwrap())
        .input_dim(8)
        .n_heads(2)
        .n_blocks(1);
    let cfg = PretrainConfig::new()
        .epochs(4)
        .batch_size(32)
        .verbose(0)
        .seed(3);
    let mut pre = trainer(&tab, cfg);
    let h = pre.fit(&train, Some(&test)).unwrap();
    let loss: Vec<f64> = h.iter().map(|r| r.loss).collect();
    let val: Vec<f64> = h.iter().map(|r| r.val_loss.unwrap()).collect();
    assert!(loss[3] < 0.8 * loss[0], "training loss {loss:?}");
    assert!(val[3] < val[0], "validation loss {val:?}");

    let model = pre
        .wide_deep(
            &WideDeepConfig::new().deeptabular(tab.clone()).seed(3),
            Device::Cpu,
        )
        .unwrap();
    let config = TrainerConfig::new(prep.objective().unwrap())
        .epochs(8)
        .batch_size(32)
        .metrics([Metric::Auc])
        .verbose(0)
        .seed(3);
    let mut trainer = Trainer::new(model, config).unwrap();
    trainer.fit(&train, None).unwrap();
    let auc = trainer.evaluate(&test, None).unwrap()["auc"];
    assert!(auc > 0.8, "fine-tuned AUC {auc}");
}

/// Stopped after two epochs and resumed for a third, pretraining equals three uninterrupted
/// epochs exactly. Here rather than beside the unit tests: the exact comparison needs every
/// other draw from libtorch's generator to wait for the generator lock, which the unit tests
/// of the models do not all take.
#[test]
fn resumed_pretraining_equals_uninterrupted() {
    let (train_df, _) = adult_split(120, 10);
    let mut prep = Preprocessors::new().tab(TabPreprocessor::new(&CAT, &CONT));
    let d = prep.fit_transform(&train_df).unwrap();
    let tab = FtTransformerConfig::from_meta(&prep.tab_meta().unwrap())
        .input_dim(8)
        .n_heads(2)
        .n_blocks(1);
    let cfg = PretrainConfig::new()
        .epochs(3)
        .batch_size(16)
        .verbose(0)
        .seed(5);
    let mut full = trainer(&tab, cfg.clone());
    full.fit(&d, None).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cd.safetensors");
    let mut first = trainer(&tab, cfg.clone().epochs(2));
    first.fit(&d, None).unwrap();
    first.save_checkpoint(&path).unwrap();
    // a trainer with another seed cannot resume it
    let mut other = trainer(&tab, cfg.clone().seed(6));
    assert!(matches!(
        other.resume(&path),
        Err(WideDeepError::BadCheckpoint { .. })
    ));
    // nor one with the same seeds but other contrastive–denoising settings
    let model = ContrastiveDenoising::new(
        &ContrastiveDenoisingConfig::new(tab.clone())
            .seed(5)
            .temperature(0.5),
        Device::Cpu,
    )
    .unwrap();
    let mut other = ContrastiveDenoisingTrainer::new(model, cfg.clone()).unwrap();
    match other.resume(&path) {
        Err(WideDeepError::BadCheckpoint { path: p, .. }) => assert_eq!(p, path),
        r => panic!("expected BadCheckpoint, got {r:?}"),
    }
    let mut second = trainer(&tab, cfg.epochs(1));
    second.resume(&path).unwrap();
    assert_eq!(second.history().len(), 2);
    second.fit(&d, None).unwrap();
    assert_eq!(second.history(), full.history());
    for ((ka, a), (kb, b)) in second.encoder_weights().iter().zip(full.encoder_weights()) {
        assert_eq!(ka, &kb);
        assert!(a.equal(&b), "{ka} differs");
    }
}
