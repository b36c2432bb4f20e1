//! Mixed precision in self-supervised pretraining (both routes, on the shared loop): bf16
//! autocast learns on Adult, its settings travel in the checkpoint, a resumed bf16 run equals
//! the uninterrupted one, and fp16 on the CPU trains in f32 as the `Trainer` does.
use crate::common::{adult_split, CAT, CONT};
use widedeep::prelude::*;
use widedeep::tch::Tensor;
use widedeep::training::pretrain::{PretrainModel, Pretrainer};
use widedeep::training::Precision;

/// The tabular columns of `n` Adult rows (labels unused) and their metadata.
fn rows(n: usize) -> (Dataset, widedeep::preprocessing::TabMeta) {
    let (train_df, _) = adult_split(n, 10);
    let mut prep = Preprocessors::new().tab(TabPreprocessor::new(&CAT, &CONT));
    let d = prep.fit_transform(&train_df).unwrap();
    (d, prep.tab_meta().unwrap())
}

/// A small encoder–decoder (TabMlp) route.
fn ed(meta: &widedeep::preprocessing::TabMeta) -> EncoderDecoder {
    let enc =
        TabMlpConfig::from_meta(meta).mlp(MlpConfig::default().hidden_dims([32, 16]).dropout(0.1));
    EncoderDecoder::new(&EncoderDecoderConfig::new(enc).seed(4), Device::Cpu).unwrap()
}

/// A small contrastive–denoising (FT-Transformer) route.
fn cd(meta: &widedeep::preprocessing::TabMeta) -> ContrastiveDenoising {
    let enc = FtTransformerConfig::from_meta(meta)
        .input_dim(8)
        .n_heads(2)
        .n_blocks(1);
    ContrastiveDenoising::new(&ContrastiveDenoisingConfig::new(enc).seed(4), Device::Cpu).unwrap()
}

fn settings(precision: Precision, epochs: usize) -> PretrainConfig {
    PretrainConfig::new()
        .epochs(epochs)
        .batch_size(32)
        .lr(3e-3)
        .seed(7)
        .verbose(0)
        .precision(precision)
}

fn losses<M: PretrainModel>(p: &Pretrainer<M>) -> Vec<f64> {
    p.history().iter().map(|r| r.loss).collect()
}

fn weights<M: PretrainModel>(p: &Pretrainer<M>) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = p.model().var_store().variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// bf16 pretraining of `make()` on `d`: the losses are finite and fall, and the run is not the
/// f32 one (autocast is on) but learns no worse than it.
fn bf16_learns<M: PretrainModel>(name: &str, make: impl Fn() -> M, d: &Dataset) {
    let mut p = Pretrainer::new(make(), settings(Precision::Bf16, 4)).unwrap();
    p.fit(d, Some(d)).unwrap();
    let loss = losses(&p);
    assert!(loss.iter().all(|l| l.is_finite()), "{name}: {loss:?}");
    assert!(
        loss[3] < loss[0],
        "{name}: the bf16 loss does not fall: {loss:?}"
    );
    // the evaluation loss (no masking or corruption) falls every epoch
    let val: Vec<f64> = p.history().iter().map(|r| r.val_loss.unwrap()).collect();
    assert!(val.iter().all(|v| v.is_finite()), "{name}: {val:?}");
    assert!(
        val.windows(2).all(|w| w[1] < w[0]),
        "{name}: the validation loss does not fall: {val:?}"
    );
    let mut f32_run = Pretrainer::new(make(), settings(Precision::Fp32, 4)).unwrap();
    f32_run.fit(d, None).unwrap();
    let reference = losses(&f32_run);
    assert_ne!(loss, reference, "{name}: bf16 trained exactly as f32");
    // bf16 rounds the forward pass, it does not learn worse: the evaluation loss (in f32) of
    // the bf16 run ends at most 5% above the f32 run's (on these 400 rows the two runs drift
    // apart by rounding, either way: with the FT-Transformer bf16 ended 17% lower)
    let (ours, theirs) = (p.evaluate(d).unwrap(), f32_run.evaluate(d).unwrap());
    assert!(ours < 1.05 * theirs, "{name}: bf16 {ours}, f32 {theirs}");
    // the weights stay f32
    assert!(weights(&p)
        .iter()
        .all(|(_, w)| w.kind() == widedeep::tch::Kind::Float));
}

#[test]
fn bf16_pretraining_learns_on_adult_on_both_routes() {
    let (d, meta) = rows(400);
    bf16_learns("encoder_decoder", || ed(&meta), &d);
    bf16_learns("contrastive_denoising", || cd(&meta), &d);
}

/// The `config` of a pretraining checkpoint's JSON metadata.
fn checkpoint_config(path: &std::path::Path) -> PretrainConfig {
    let meta = Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "__meta__")
        .expect("metadata")
        .1;
    let json: serde_json::Value =
        serde_json::from_slice(&Vec::<u8>::try_from(&meta).unwrap()).unwrap();
    serde_json::from_value(json["config"].clone()).unwrap()
}

/// Two bf16 epochs, a checkpoint, then one more epoch after resuming equal three
/// uninterrupted bf16 epochs exactly (CPU autocast is deterministic), and the checkpoint holds
/// the loop settings with their precision.
fn bf16_resumes_exactly<M: PretrainModel>(name: &str, make: impl Fn() -> M, d: &Dataset) {
    let mut whole = Pretrainer::new(make(), settings(Precision::Bf16, 3)).unwrap();
    whole.fit(d, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.safetensors"));
    let first_cfg = settings(Precision::Bf16, 2).eval_batch_size(64);
    let mut first = Pretrainer::new(make(), first_cfg.clone()).unwrap();
    first.fit(d, None).unwrap();
    first.save_checkpoint(&path).unwrap();
    assert_eq!(checkpoint_config(&path), first_cfg, "{name}");
    drop(first);
    let mut rest = Pretrainer::new(make(), settings(Precision::Bf16, 1)).unwrap();
    rest.resume(&path).unwrap();
    rest.fit(d, None).unwrap();
    assert_eq!(rest.history(), whole.history(), "{name}");
    for ((k, a), (_, b)) in weights(&whole).iter().zip(weights(&rest)) {
        assert!(a.equal(&b), "{name}: {k} differs after resuming");
    }
}

#[test]
fn a_resumed_bf16_run_equals_the_uninterrupted_one_on_both_routes() {
    let (d, meta) = rows(200);
    bf16_resumes_exactly("encoder_decoder", || ed(&meta), &d);
    bf16_resumes_exactly("contrastive_denoising", || cd(&meta), &d);
}

#[test]
fn fp16_on_the_cpu_pretrains_in_f32() {
    // as the Trainer: fp16 needs CUDA; on the CPU a warning and f32
    let (d, meta) = rows(200);
    let mut f32_run = Pretrainer::new(cd(&meta), settings(Precision::Fp32, 2)).unwrap();
    f32_run.fit(&d, None).unwrap();
    let mut fp16 = Pretrainer::new(cd(&meta), settings(Precision::Fp16, 2)).unwrap();
    fp16.fit(&d, None).unwrap();
    assert_eq!(fp16.history(), f32_run.history());
    for ((k, a), (_, b)) in weights(&f32_run).iter().zip(weights(&fp16)) {
        assert!(a.equal(&b), "{k} differs");
    }
}
