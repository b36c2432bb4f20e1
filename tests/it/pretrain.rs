//! Self-supervised pretraining (encoder–decoder route) on Adult: resuming, learning, and the
//! hand-over of the encoder to a `WideDeep` fine-tuned by the `Trainer`.
use crate::common::adult_split;
use widedeep::datasets::adult_columns::{CATEGORICAL as CAT, CONTINUOUS as CONT};
use widedeep::models::TabModelConfig;
use widedeep::prelude::*;
use widedeep::tch::Tensor;
use widedeep::training::pretrain::PretrainModel;

fn prep_and_data(n_train: usize, n_test: usize) -> (Preprocessors, Dataset, Dataset) {
    let (train_df, test_df) = adult_split(n_train, n_test);
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&CAT, &CONT))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df).unwrap();
    let test = prep.transform(&test_df).unwrap();
    (prep, train, test)
}

fn tabmlp(prep: &Preprocessors) -> TabMlpConfig {
    TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
        .mlp(MlpConfig::default().hidden_dims([32, 16]).dropout(0.0))
}

fn pretrainer(encoder: impl Into<TabModelConfig>, epochs: usize) -> EncoderDecoderTrainer {
    let model = EncoderDecoder::new(&EncoderDecoderConfig::new(encoder), Device::Cpu).unwrap();
    let cfg = PretrainConfig::new()
        .epochs(epochs)
        .batch_size(128)
        .lr(5e-3)
        .seed(5)
        .verbose(0);
    EncoderDecoderTrainer::new(model, cfg).unwrap()
}

fn weights(p: &EncoderDecoderTrainer) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = p.model().var_store().variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn a_resumed_pretraining_run_ends_with_the_weights_of_an_uninterrupted_one() {
    let (prep, train, _) = prep_and_data(1500, 10);
    // with batch norm and dropout, so that running statistics and the draws must carry over
    let enc = tabmlp(&prep)
        .cont_norm(ContNorm::BatchNorm)
        .mlp(MlpConfig::default().hidden_dims([32, 16]).dropout(0.1));
    let mut whole = pretrainer(enc.clone(), 3);
    whole.fit(&train, None).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("pretrain.safetensors");
    let mut first = pretrainer(enc.clone(), 1);
    first.fit(&train, None).unwrap();
    first.save_checkpoint(&ckpt).unwrap();
    drop(first);
    let mut rest = pretrainer(enc.clone(), 2);
    rest.resume(&ckpt).unwrap();
    assert_eq!(rest.history().len(), 1);
    rest.fit(&train, None).unwrap();

    assert_eq!(rest.history(), whole.history());
    for ((k, a), (_, b)) in weights(&whole).iter().zip(weights(&rest)) {
        assert!(a.equal(&b), "{k} differs after resuming");
    }
    // a checkpoint of another configuration is refused, naming the file
    let mut other = pretrainer(enc.mlp(MlpConfig::default().hidden_dims([8])), 1);
    let err = other.resume(&ckpt).unwrap_err().to_string();
    assert!(err.contains("pretrain.safetensors"), "{err}");
}

#[test]
fn the_reconstruction_loss_falls_on_adult() {
    let (prep, train, test) = prep_and_data(1500, 400);
    for enc in [
        TabModelConfig::from(tabmlp(&prep)),
        TabResnetConfig::from_meta(&prep.tab_meta().unwrap())
            .blocks_dims([32, 16, 16])
            .into(),
        TabNetConfig::from_meta(&prep.tab_meta().unwrap())
            .n_steps(2)
            .into(),
    ] {
        let name = enc.name();
        let mut p = pretrainer(enc, 3);
        let before = p.evaluate(&test).unwrap();
        p.fit(&train, Some(&test)).unwrap();
        let h = p.history();
        let after = h.last().unwrap().val_loss.unwrap();
        // the held-out reconstruction loss (every entry, each feature's squared error divided
        // by its variance) falls by at least a quarter
        assert!(after < 0.75 * before, "{name}: {before} → {after} ({h:?})");
    }
}

#[test]
fn the_pretrained_encoder_is_fine_tuned_in_a_wide_deep() {
    let (prep, train, test) = prep_and_data(2000, 1000);
    let enc = tabmlp(&prep);
    let mut p = pretrainer(enc.clone(), 2);
    p.fit(&train, None).unwrap();

    let config = WideDeepConfig::new().deeptabular(enc.clone()).seed(3);
    let model = p.wide_deep(&config, Device::Cpu).unwrap();
    let theirs = p.model().var_store().variables();
    let ours = model.var_store().variables();
    let copied = ours
        .keys()
        .filter(|k| k.starts_with("deeptabular."))
        .count();
    assert!(copied > 0);
    for (k, v) in ours.iter().filter(|(k, _)| k.starts_with("deeptabular.")) {
        assert!(v.equal(&theirs[k]), "{k} was not handed over");
    }
    // fine-tuning with the trainer's warm-up (the prediction layer alone, then everything)
    let tc = TrainerConfig::new(prep.objective().unwrap())
        .epochs(2)
        .batch_size(128)
        .finetune(FinetuneConfig::new().epochs(1))
        .seed(3)
        .verbose(0);
    let mut trainer = Trainer::new(model, tc).unwrap();
    trainer.fit(&train, None).unwrap();
    let auc = trainer.evaluate(&test, Some(&[Metric::Auc])).unwrap()["auc"];
    assert!(auc > 0.85, "AUC {auc}");

    // a model whose deeptabular is not the pretrained encoder is refused, naming the field
    let other = WideDeepConfig::new().deeptabular(enc.mlp(MlpConfig::default().hidden_dims([8])));
    match p.wide_deep(&other, Device::Cpu) {
        Err(WideDeepError::InvalidConfig { field, .. }) => assert_eq!(field, "deeptabular"),
        r => panic!("expected InvalidConfig, got {r:?}"),
    }
}

#[test]
fn bad_pretraining_settings_are_typed_errors() {
    let (prep, _, _) = prep_and_data(50, 10);
    let model =
        EncoderDecoder::new(&EncoderDecoderConfig::new(tabmlp(&prep)), Device::Cpu).unwrap();
    match EncoderDecoderTrainer::new(model, PretrainConfig::new().batch_size(1)) {
        Err(WideDeepError::InvalidConfig { field, .. }) => assert_eq!(field, "pretrain.batch_size"),
        r => panic!("expected InvalidConfig, got {r:?}"),
    }
}
