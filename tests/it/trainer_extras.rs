//! Trainer extras: initializers, clipping, accumulation, warm-up, weighted sampling, MC-dropout
//! uncertainty, mixed precision and prefetching, through `Trainer`.
use crate::common::*;
use std::collections::BTreeMap;
use widedeep::prelude::*;
use widedeep::tch::{Kind, Tensor};
use widedeep::training::{
    FinetuneConfig, InitSpec, Initializer, Precision, Routine, WeightedSampler,
};

/// Adult rows through the fitted preprocessors: (prep, train data).
fn data(n: usize) -> (Preprocessors, Dataset) {
    let (train, _) = adult_split(n, 10);
    let mut prep = adult_preprocessors();
    let ds = prep.fit_transform(&train).unwrap();
    (prep, ds)
}

/// Wide + TabMlp without batch norm; `dropout` in the MLP.
fn model(prep: &Preprocessors, dropout: f64, batchnorm: bool) -> WideDeep {
    let cfg = WideDeepConfig::new()
        .wide(WideConfig::new(prep.wide_dim().unwrap()))
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
                .cont_norm(if batchnorm {
                    ContNorm::BatchNorm
                } else {
                    ContNorm::None
                })
                .mlp(
                    MlpConfig::default()
                        .hidden_dims([32, 16])
                        .dropout(dropout)
                        .batchnorm(batchnorm),
                ),
        )
        .seed(3);
    WideDeep::new(&cfg, Device::Cpu).unwrap()
}

fn weights(t: &Trainer) -> BTreeMap<String, Tensor> {
    t.model()
        .var_store()
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.detach().copy()))
        .collect()
}

fn max_diff(a: &BTreeMap<String, Tensor>, b: &BTreeMap<String, Tensor>) -> f64 {
    a.iter()
        .map(|(k, v)| (v - &b[k]).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

fn base(prep: &Preprocessors) -> TrainerConfig {
    TrainerConfig::new(prep.objective().unwrap())
        .optimizer(Optimizer::sgd(0.0))
        .lr(0.05)
        .epochs(1)
        .seed(5)
        .verbose(0)
}

#[test]
fn accumulating_two_batches_equals_one_double_batch() {
    let (prep, ds) = data(1024);
    let fit = |cfg: TrainerConfig| {
        let mut t = Trainer::new(model(&prep, 0.0, false), cfg).unwrap();
        t.fit(&ds, None).unwrap();
        weights(&t)
    };
    let acc = fit(base(&prep)
        .batch_size(64)
        .accumulate_grad_batches(2)
        .epochs(2));
    let big = fit(base(&prep).batch_size(128).epochs(2));
    let small = fit(base(&prep).batch_size(64).epochs(2));
    let d = max_diff(&acc, &big);
    assert!(d < 1e-5, "accumulated vs double batch: {d}");
    assert!(
        max_diff(&small, &big) > 1e-3,
        "the test can tell the two apart"
    );
}

#[test]
fn clipping_bounds_each_update() {
    let (prep, ds) = data(256);
    let init = Trainer::new(model(&prep, 0.0, false), base(&prep)).unwrap();
    let w0 = weights(&init);
    // one full-batch SGD step with lr 1: the update is minus the clipped gradient
    let step = |cfg: TrainerConfig| {
        let mut t = Trainer::new(model(&prep, 0.0, false), cfg.lr(1.0).batch_size(256)).unwrap();
        t.fit(&ds, None).unwrap();
        let w = weights(&t);
        let sq: f64 = w
            .iter()
            .map(|(k, v)| (v - &w0[k]).square().sum(Kind::Double).double_value(&[]))
            .sum();
        (sq.sqrt(), max_diff(&w, &w0))
    };
    let (norm, _) = step(base(&prep).clip_grad_norm(1e-3));
    // (f32 rounding of w − w0 adds about 1e-7 per weight)
    assert!(norm <= 1.01e-3 && norm > 0.5e-3, "update norm {norm}");
    let (_, maxabs) = step(base(&prep).clip_grad_value(1e-4));
    assert!(
        maxabs <= 1e-4 + 1e-6 && maxabs > 0.5e-4,
        "largest update {maxabs}"
    );
    let (free, _) = step(base(&prep));
    assert!(free > 1e-2, "unclipped update {free}");
}

#[test]
fn initializers_apply_once_before_training() {
    let (prep, ds) = data(128);
    let cfg = base(&prep)
        .epochs(0)
        .initializer("wide", Initializer::Constant { value: 0.5 })
        .initializer(
            "deeptabular",
            InitSpec::new(Initializer::Normal {
                mean: 0.0,
                std: 0.01,
            })
            .pattern("dense_0"),
        );
    let mut t = Trainer::new(model(&prep, 0.0, false), cfg).unwrap();
    let before = weights(&t);
    t.fit(&ds, None).unwrap();
    let after = weights(&t);
    for (k, v) in &after {
        let changed = !v.equal(&before[k]);
        let expect = (k.starts_with("wide.") && !k.ends_with("bias"))
            || (k.contains("dense_0") && !k.ends_with("bias"));
        assert_eq!(changed, expect, "{k}");
        if k.starts_with("wide.") && !k.ends_with("bias") {
            assert_eq!(v.min().double_value(&[]), 0.5);
        }
    }
}

#[test]
fn warm_up_trains_one_component_and_freezes_the_rest() {
    let (prep, ds) = data(256);
    let run = |ft: FinetuneConfig| {
        let cfg = base(&prep)
            .batch_size(64)
            .epochs(0)
            .finetune(ft.epochs(1).lr(0.05));
        let mut t = Trainer::new(model(&prep, 0.0, false), cfg).unwrap();
        let before = weights(&t);
        t.fit(&ds, None).unwrap();
        assert!(t.history().is_empty(), "warm-up epochs are not recorded");
        let flags_ok = t
            .model()
            .var_store()
            .trainable_variables()
            .iter()
            .all(|v| v.requires_grad());
        assert!(flags_ok, "requires_grad restored");
        let after = weights(&t);
        after
            .iter()
            .filter(|(k, v)| !v.equal(&before[k.as_str()]))
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    let changed = run(FinetuneConfig::new().components(&["wide"]));
    assert!(!changed.is_empty());
    assert!(
        changed.iter().all(|k| k.starts_with("wide.")),
        "{changed:?}"
    );
    let changed = run(FinetuneConfig::new().components(&["deeptabular"]));
    assert!(changed.iter().any(|k| k.starts_with("deeptabular.mlp")));
    assert!(changed.iter().any(|k| k.starts_with("proj_0.")));
    assert!(
        changed
            .iter()
            .all(|k| k.starts_with("deeptabular.") || k.starts_with("proj_0.")),
        "{changed:?}"
    );
    for routine in [Routine::Howard, Routine::Felbo] {
        let changed = run(FinetuneConfig::new()
            .components(&["deeptabular"])
            .gradual("deeptabular", &[])
            .routine(routine));
        assert!(changed.iter().any(|k| k.contains("dense_0")), "{changed:?}");
        assert!(changed.iter().any(|k| k.contains("dense_1")), "{changed:?}");
        assert!(
            !changed.iter().any(|k| k.starts_with("wide.")),
            "{changed:?}"
        );
    }
    // then the joint training runs as usual
    let cfg = base(&prep)
        .epochs(1)
        .finetune(FinetuneConfig::new().epochs(1))
        .val_split(0.2);
    let mut t = Trainer::new(model(&prep, 0.0, false), cfg).unwrap();
    t.fit(&ds, None).unwrap();
    assert_eq!(t.history().len(), 1);
}

#[test]
fn weighted_sampler_trains() {
    let (prep, ds) = data(512);
    let cfg = base(&prep)
        .optimizer(Optimizer::adam())
        .lr(0.01)
        .batch_size(64)
        .epochs(3)
        .sampler(WeightedSampler::inverse_class_frequency());
    let mut balanced = Trainer::new(model(&prep, 0.0, false), cfg.clone()).unwrap();
    balanced.fit(&ds, None).unwrap();
    assert!(balanced.history().last("loss").unwrap().is_finite());
    let mut plain = Trainer::new(
        model(&prep, 0.0, false),
        cfg.sampler(WeightedSampler::class_weights([1.0, 0.0]))
            .epochs(3),
    )
    .unwrap();
    plain.fit(&ds, None).unwrap();
    // balanced draws predict the minority class far more often than draws of negatives only
    let pos = |t: &Trainer| {
        t.predict(&ds)
            .unwrap()
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[])
    };
    assert!(
        pos(&balanced) > pos(&plain) + 0.1,
        "{} vs {}",
        pos(&balanced),
        pos(&plain)
    );
    // regression cannot use class weights
    let cfg = TrainerConfig::new(Objective::Regression).sampler(WeightedSampler::default());
    let reg = WideDeepConfig::new().wide(WideConfig::new(prep.wide_dim().unwrap()));
    let mut t = Trainer::new(WideDeep::new(&reg, Device::Cpu).unwrap(), cfg.verbose(0)).unwrap();
    let n = ds.len();
    let y = Tensor::zeros([n], (Kind::Float, Device::Cpu));
    let rds = Dataset::new(ds.input.map(|t| t.shallow_clone()), Some(y)).unwrap();
    let err = t.fit(&rds, None).unwrap_err().to_string();
    assert!(err.contains("sampler.weights"), "{err}");
}

#[test]
fn mc_dropout_uncertainty() {
    let (prep, ds) = data(256);
    let trained = |dropout: f64, bn: bool| {
        let mut t = Trainer::new(
            model(&prep, dropout, bn),
            base(&prep)
                .optimizer(Optimizer::adam())
                .lr(0.01)
                .batch_size(64),
        )
        .unwrap();
        t.fit(&ds, None).unwrap();
        t
    };
    let t = trained(0.3, true);
    let u = t.predict_uncertainty(&ds, 20).unwrap();
    assert_eq!(u.mean.size(), [256, 2]);
    assert!(u.std.mean(Kind::Double).double_value(&[]) > 1e-4);
    let class = u.class.as_ref().unwrap();
    assert!(class.equal(&u.mean.select(1, 1).gt(0.5).to_kind(Kind::Int64)));
    // reproducible: seeded
    let again = t.predict_uncertainty(&ds, 20).unwrap();
    assert!(again.mean.equal(&u.mean));
    // without dropout: no spread, and batch norm in eval mode gives the eval prediction
    let t = trained(0.0, true);
    let u = t.predict_uncertainty(&ds, 5).unwrap();
    assert_eq!(u.std.abs().max().double_value(&[]), 0.0);
    let proba = t.predict_proba(&ds).unwrap();
    assert!((&u.mean - &proba).abs().max().double_value(&[]) < 1e-6);
    // small dropout: the mean stays close to the eval prediction
    let t = trained(0.02, false);
    let u = t.predict_uncertainty(&ds, 30).unwrap();
    let proba = t.predict_proba(&ds).unwrap();
    let d = (&u.mean - &proba)
        .abs()
        .mean(Kind::Double)
        .double_value(&[]);
    assert!(d < 0.02, "{d}");
    assert!(t.predict_uncertainty(&ds, 0).is_err());
}

#[test]
fn mc_dropout_multiclass_and_regression() {
    let (prep, ds) = data(128);
    let n = ds.len();
    let y3 = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(3);
    let ds3 = Dataset::new(ds.input.map(|t| t.shallow_clone()), Some(y3)).unwrap();
    let cfg = WideDeepConfig::new()
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
                .mlp(MlpConfig::default().hidden_dims([16]).dropout(0.3)),
        )
        .pred_dim(3);
    let mut t = Trainer::new(
        WideDeep::new(&cfg, Device::Cpu).unwrap(),
        TrainerConfig::new(Objective::Multiclass { n_classes: 3 }).verbose(0),
    )
    .unwrap();
    t.fit(&ds3, None).unwrap();
    let u = t.predict_uncertainty(&ds3, 10).unwrap();
    assert_eq!(u.mean.size(), [n, 3]);
    assert!(u.class.unwrap().equal(&u.mean.argmax(1, false)));
    let sums = u.mean.sum_dim_intlist(1, false, Kind::Double);
    assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-5);
    let cfg = cfg.pred_dim(1);
    let y = Tensor::arange(n, (Kind::Float, Device::Cpu)) / n as f64;
    let dsr = Dataset::new(ds.input.map(|t| t.shallow_clone()), Some(y)).unwrap();
    let mut t = Trainer::new(
        WideDeep::new(&cfg, Device::Cpu).unwrap(),
        TrainerConfig::new(Objective::Regression).verbose(0),
    )
    .unwrap();
    t.fit(&dsr, None).unwrap();
    let u = t.predict_uncertainty(&dsr, 10).unwrap();
    assert_eq!(u.mean.size(), [n, 1]);
    assert!(u.class.is_none());
    assert!(u.std.mean(Kind::Double).double_value(&[]) > 0.0);
}

#[test]
fn prefetch_and_cpu_mixed_precision_change_nothing_on_cpu() {
    let (prep, ds) = data(512);
    let fit = |cfg: TrainerConfig| {
        let mut t = Trainer::new(model(&prep, 0.1, true), cfg).unwrap();
        t.fit(&ds, None).unwrap();
        (weights(&t), t.history().clone())
    };
    let cfg = base(&prep)
        .optimizer(Optimizer::adam())
        .batch_size(64)
        .epochs(2);
    let (w_plain, h_plain) = fit(cfg.clone().prefetch(false));
    let (w_pre, h_pre) = fit(cfg.clone().prefetch(true));
    assert_eq!(max_diff(&w_plain, &w_pre), 0.0);
    assert_eq!(h_plain, h_pre);
    // fp16 on the CPU: a warning and plain f32 training
    let (w_fp16, _) = fit(cfg.precision(Precision::Fp16).prefetch(false));
    assert_eq!(max_diff(&w_plain, &w_fp16), 0.0);
}

#[test]
fn mixed_precision_on_cuda() {
    if !widedeep::tch::Cuda::is_available() {
        eprintln!("skipped mixed_precision_on_cuda: no CUDA device");
        return;
    }
    let (prep, ds) = data(2048);
    for precision in [Precision::Fp32, Precision::Fp16, Precision::Bf16] {
        let cfg = WideDeepConfig::new()
            .wide(WideConfig::new(prep.wide_dim().unwrap()))
            .deeptabular(TabMlpConfig::from_meta(&prep.tab_meta().unwrap()))
            .seed(3);
        let m = WideDeep::new(&cfg, Device::Cuda(0)).unwrap();
        let tc = TrainerConfig::new(prep.objective().unwrap())
            .epochs(3)
            .batch_size(128)
            .metrics([Metric::Accuracy])
            .precision(precision)
            .clip_grad_norm(5.0)
            .verbose(0);
        let mut t = Trainer::new(m, tc).unwrap();
        t.fit(&ds, None).unwrap();
        let loss = t.history().series("loss");
        let acc = t.history().last("accuracy").unwrap();
        eprintln!("{precision:?}: loss {loss:?}, accuracy {acc:.4}");
        assert!(loss.iter().all(|l| l.is_finite()));
        assert!(loss[2] < loss[0], "{precision:?}: {loss:?}");
        assert!(acc > 0.78, "{precision:?}: accuracy {acc}");
        let u = t.predict_uncertainty(&ds, 3).unwrap();
        assert_eq!(u.mean.size(), [ds.len(), 2]);
    }
}

#[test]
fn extras_config_errors_name_the_field() {
    let o = Objective::Binary;
    let cases: Vec<(TrainerConfig, &str)> = vec![
        (
            TrainerConfig::new(o.clone()).clip_grad_norm(0.0),
            "clip_grad_norm",
        ),
        (
            TrainerConfig::new(o.clone()).clip_grad_value(f64::NAN),
            "clip_grad_value",
        ),
        (
            TrainerConfig::new(o.clone()).accumulate_grad_batches(0),
            "accumulate_grad_batches",
        ),
        (
            TrainerConfig::new(o.clone()).finetune(FinetuneConfig::new().lr(0.0)),
            "finetune.lr",
        ),
        (
            TrainerConfig::new(o.clone()).finetune(FinetuneConfig::new().epochs(0)),
            "finetune.epochs",
        ),
        (
            TrainerConfig::new(o.clone()).finetune(FinetuneConfig::new().components(&["head"])),
            "finetune.components",
        ),
        (
            TrainerConfig::new(o.clone()).sampler(WeightedSampler::class_weights([-1.0])),
            "sampler.weights",
        ),
        (
            TrainerConfig::new(o.clone())
                .initializer("tabular", Initializer::Constant { value: 0.0 }),
            "initializers.tabular",
        ),
        (
            TrainerConfig::new(o.clone())
                .grad_scaler(widedeep::training::GradScalerConfig::default().growth_interval(0)),
            "grad_scaler.growth_interval",
        ),
    ];
    for (cfg, field) in cases {
        match cfg.validate() {
            Err(WideDeepError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    // serde: flat keys, round trip
    let cfg = TrainerConfig::new(o)
        .clip_grad_norm(1.0)
        .accumulate_grad_batches(4)
        .precision(Precision::Bf16)
        .sampler(WeightedSampler::class_weights([1.0, 2.0]))
        .finetune(
            FinetuneConfig::new()
                .gradual("deeptabular", &[])
                .routine(Routine::Felbo),
        )
        .initializer("head", Initializer::XavierNormal { gain: 1.0 });
    let json = serde_json::to_string(&cfg).unwrap();
    assert!(json.contains("\"clip_grad_norm\":1.0"), "{json}");
    let back: TrainerConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cfg);
    let old: TrainerConfig = serde_json::from_str("{\"lr\": 0.01}").unwrap();
    assert_eq!(old.extras, Default::default());
}

#[test]
fn every_extra_runs_on_cuda() {
    if !widedeep::tch::Cuda::is_available() {
        eprintln!("skipped every_extra_runs_on_cuda: no CUDA device");
        return;
    }
    let (prep, ds) = data(1024);
    let cfg = WideDeepConfig::new()
        .wide(WideConfig::new(prep.wide_dim().unwrap()))
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
                .cont_norm(ContNorm::BatchNorm)
                .mlp(MlpConfig::default().hidden_dims([32, 16]).dropout(0.2)),
        )
        .seed(3);
    let dev = Device::Cuda(0);
    let tc = TrainerConfig::new(prep.objective().unwrap())
        .epochs(2)
        .batch_size(64)
        .verbose(0)
        .initializer(
            "deeptabular",
            InitSpec::new(Initializer::Orthogonal { gain: 1.0 }).exclude("embed"),
        )
        .initializer("head", Initializer::XavierUniform { gain: 1.0 })
        .clip_grad_norm(1.0)
        .accumulate_grad_batches(2)
        .sampler(WeightedSampler::inverse_class_frequency())
        .precision(Precision::Fp16)
        .finetune(
            FinetuneConfig::new()
                .epochs(1)
                .gradual("deeptabular", &[])
                .routine(Routine::Felbo),
        );
    assert!(
        tc.extras.prefetch_on(dev),
        "prefetch defaults to on for CUDA"
    );
    let mut t = Trainer::new(WideDeep::new(&cfg, dev).unwrap(), tc).unwrap();
    t.fit(&ds, None).unwrap();
    assert_eq!(t.history().len(), 2);
    assert!(t.history().series("loss").iter().all(|l| l.is_finite()));
    let u = t.predict_uncertainty(&ds, 5).unwrap();
    assert!(u.std.mean(Kind::Double).double_value(&[]) > 0.0);
    // prefetch on and off train to the same weights on the GPU too (fp32, no sampler)
    let fit = |prefetch: bool| {
        let tc = TrainerConfig::new(prep.objective().unwrap())
            .epochs(1)
            .batch_size(64)
            .verbose(0)
            .prefetch(prefetch);
        let mut t = Trainer::new(WideDeep::new(&cfg, dev).unwrap(), tc).unwrap();
        t.fit(&ds, None).unwrap();
        weights(&t)
    };
    let d = max_diff(&fit(true), &fit(false));
    assert!(d < 1e-5, "{d}");
}

#[test]
fn bf16_on_the_cpu_trains_mlp_and_attention_models() {
    let (prep, ds) = data(2048);
    let meta = prep.tab_meta().unwrap();
    let deep: [(&str, widedeep::models::TabModelConfig); 2] = [
        ("tab_mlp", TabMlpConfig::from_meta(&meta).into()),
        (
            "tab_transformer",
            TabTransformerConfig::from_meta(&meta)
                .input_dim(16)
                .n_heads(4)
                .n_blocks(2)
                .into(),
        ),
    ];
    for (name, deep) in deep {
        let cfg = WideDeepConfig::new()
            .wide(WideConfig::new(prep.wide_dim().unwrap()))
            .deeptabular(deep)
            .seed(3);
        let fit = |precision| {
            let tc = TrainerConfig::new(prep.objective().unwrap())
                .epochs(3)
                .batch_size(128)
                .metrics([Metric::Accuracy])
                .precision(precision)
                .verbose(0);
            let mut t = Trainer::new(WideDeep::new(&cfg, Device::Cpu).unwrap(), tc).unwrap();
            t.fit(&ds, None).unwrap();
            t
        };
        let t = fit(Precision::Bf16);
        let loss = t.history().series("loss");
        // the forward pass really ran in bf16: the seeded f32 run differs
        assert_ne!(
            loss,
            fit(Precision::Fp32).history().series("loss"),
            "{name}"
        );
        let acc = t.history().last("accuracy").unwrap();
        assert!(loss.iter().all(|l| l.is_finite()), "{name}: {loss:?}");
        assert!(loss[2] < loss[0], "{name}: {loss:?}");
        assert!(acc > 0.78, "{name}: accuracy {acc}");
        // prediction runs outside autocast: f32 out
        assert_eq!(t.predict_raw(&ds).unwrap().kind(), Kind::Float);
    }
}
