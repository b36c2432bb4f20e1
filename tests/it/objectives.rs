//! The objectives and metrics beyond binary/multiclass/MSE, trained end to end by the Trainer
//! on small seeded synthetic data sets.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};
use widedeep::prelude::*;
use widedeep::preprocessing::{TabMeta, TargetData};
use widedeep::training::{stack_targets, TargetReduction};

/// `n` rows of `k` standard-normal features `[n, k]` (Box–Muller on a seeded ChaCha8).
fn features(n: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..n * k).map(|_| normal(rng)).collect()
}

fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

fn dataset(x: &[f32], k: usize, target: Tensor) -> Dataset {
    let n = (x.len() / k) as i64;
    let input = ModelInput {
        cont: Some(Tensor::from_slice(x).view([n, k as i64])),
        ..Default::default()
    };
    Dataset::new(input, Some(target)).unwrap()
}

fn model(k: usize, pred_dim: i64) -> WideDeep {
    let meta = TabMeta {
        cat: vec![],
        cont: (0..k).map(|i| format!("x{i}")).collect(),
    };
    let tab =
        TabMlpConfig::from_meta(&meta).mlp(MlpConfig::default().hidden_dims([32, 16]).dropout(0.0));
    let cfg = WideDeepConfig::new()
        .deeptabular(tab)
        .pred_dim(pred_dim)
        .seed(7);
    WideDeep::new(&cfg, Device::Cpu).unwrap()
}

fn fit(
    objective: Objective,
    k: usize,
    train: &Dataset,
    val: &Dataset,
    epochs: usize,
    metrics: Vec<Metric>,
) -> Trainer {
    let cfg = TrainerConfig::new(objective.clone())
        .epochs(epochs)
        .batch_size(64)
        .lr(5e-3)
        .metrics(metrics)
        .verbose(0);
    let mut trainer = Trainer::new(model(k, objective.pred_dim()), cfg).unwrap();
    trainer.fit(train, Some(val)).unwrap();
    trainer
}

fn falls(trainer: &Trainer, key: &str) {
    let s = trainer.history().series(key);
    assert!(
        s.last().unwrap() < s.first().unwrap(),
        "{key} should fall: {s:?}"
    );
}

#[test]
fn quantile_regression_learns_ordered_quantiles() {
    // y = x₀ + u·(1 + |x₁|/2), u ~ U(−1, 1): the q-quantile of y given x is
    // x₀ + (2q − 1)(1 + |x₁|/2)
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let gen = |n: usize, rng: &mut ChaCha8Rng| {
        let x = features(n, 2, rng);
        let y: Vec<f32> = x
            .chunks(2)
            .map(|r| r[0] + (rng.random::<f32>() * 2.0 - 1.0) * (1.0 + r[1].abs() / 2.0))
            .collect();
        (x, y)
    };
    let (xt, yt) = gen(3000, &mut rng);
    let (xv, yv) = gen(1000, &mut rng);
    let quantiles = vec![0.1, 0.5, 0.9];
    let obj = Objective::Quantile {
        quantiles: quantiles.clone(),
    };
    let train = dataset(&xt, 2, Tensor::from_slice(&yt));
    let val = dataset(&xv, 2, Tensor::from_slice(&yv));
    let trainer = fit(obj, 2, &train, &val, 12, vec![Metric::Mae]);
    falls(&trainer, "val_loss");
    let pred = trainer.predict(&val).unwrap();
    assert_eq!(pred.size(), [1000, 3]);
    let p = Vec::<f32>::try_from(pred.contiguous().view([-1])).unwrap();
    let ordered = p.chunks(3).filter(|r| r[0] < r[1] && r[1] < r[2]).count() as f64 / 1000.0;
    let coverage: Vec<f64> = (0..3)
        .map(|j| p.chunks(3).zip(&yv).filter(|(r, y)| **y < r[j]).count() as f64 / 1000.0)
        .collect();
    eprintln!("quantiles {quantiles:?}: ordered rows {ordered}, coverage {coverage:?}");
    assert!(ordered > 0.97, "ordered rows {ordered}");
    for (q, c) in quantiles.iter().zip(&coverage) {
        assert!((q - c).abs() < 0.06, "quantile {q}: coverage {c}");
    }
}

#[test]
fn class_weight_raises_minority_recall() {
    // ~10 % positives that overlap the negatives
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let gen = |n: usize, rng: &mut ChaCha8Rng| {
        let x = features(n, 2, rng);
        let y: Vec<f32> = x
            .chunks(2)
            .map(|r| {
                let p = 1.0 / (1.0 + (-(1.5 * r[0] + 0.5 * r[1] - 3.0)).exp());
                (rng.random::<f32>() < p) as i64 as f32
            })
            .collect();
        (x, y)
    };
    let (xt, yt) = gen(3000, &mut rng);
    let (xv, yv) = gen(2000, &mut rng);
    let share = yt.iter().sum::<f32>() / yt.len() as f32;
    let train = dataset(&xt, 2, Tensor::from_slice(&yt));
    let val = dataset(&xv, 2, Tensor::from_slice(&yv));
    let metrics = vec![Metric::Recall, Metric::Precision, Metric::Auc];
    let plain = fit(Objective::Binary, 2, &train, &val, 4, metrics.clone());
    let weighted_obj = Objective::Binary.with_class_weight(&[1.0, 9.0]).unwrap();
    let weighted = fit(weighted_obj, 2, &train, &val, 4, metrics.clone());
    let plain = plain.evaluate(&val, None).unwrap();
    let weighted = weighted.evaluate(&val, None).unwrap();
    eprintln!("positives {share:.3}; plain {plain:?}; weighted {weighted:?}");
    assert!(
        weighted["recall"] > plain["recall"] + 0.2,
        "recall {} (weighted) vs {} (plain)",
        weighted["recall"],
        plain["recall"]
    );
    // the ranking quality barely moves: weighting shifts the threshold, not the ordering
    assert!((weighted["auc"] - plain["auc"]).abs() < 0.03);
}

#[test]
fn new_classification_and_regression_objectives_train() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x = features(2400, 3, &mut rng);
    let (xt, xv) = x.split_at(2000 * 3);
    // classification: 3 classes from the sign pattern of two features
    let cls: Vec<i64> = x
        .chunks(3)
        .map(|r| {
            if r[0] > 0.5 {
                2
            } else if r[1] > 0.0 {
                1
            } else {
                0
            }
        })
        .collect();
    let (ct, cv) = cls.split_at(2000);
    let train = dataset(xt, 3, Tensor::from_slice(ct));
    let val = dataset(xv, 3, Tensor::from_slice(cv));
    let focal = Objective::MulticlassFocal {
        n_classes: 3,
        alpha: 0.25,
        gamma: 2.0,
    };
    let metrics = vec![
        Metric::Accuracy,
        Metric::TopKAccuracy { k: 2 },
        Metric::FBeta {
            beta: 2.0,
            average: Average::Macro,
        },
        Metric::MicroF1,
        Metric::Auc,
    ];
    let trainer = fit(focal, 3, &train, &val, 6, metrics);
    falls(&trainer, "val_loss");
    let h = trainer.history().epochs.last().unwrap().clone();
    eprintln!("multiclass focal: {h:?}");
    assert!(h["val_accuracy"] > 0.85, "{h:?}");
    assert!(h["val_top2_accuracy"] >= h["val_accuracy"]);
    assert!((h["val_micro_f1"] - h["val_accuracy"]).abs() < 1e-9);
    assert!(h["val_auc"] > 0.95, "{h:?}");
    assert_eq!(trainer.predict_proba(&val).unwrap().size(), [400, 3]);

    // regression: Huber and Tweedie (positive, right-skewed target)
    let y: Vec<f32> = x
        .chunks(3)
        .map(|r| (0.8 * r[0] - 0.5 * r[2]).exp())
        .collect();
    let (yt, yv) = y.split_at(2000);
    let train = dataset(xt, 3, Tensor::from_slice(yt));
    let val = dataset(xv, 3, Tensor::from_slice(yv));
    for name in ["huber", "tweedie", "rmsle", "focalr_l1"] {
        let obj: Objective = name.parse().unwrap();
        let trainer = fit(obj, 3, &train, &val, 6, vec![Metric::R2, Metric::Mae]);
        falls(&trainer, "val_loss");
        let h = trainer.history().epochs.last().unwrap().clone();
        eprintln!("{name}: {h:?}");
        assert!(h["val_r2"] > 0.6, "{name}: {h:?}");
        let pred = Vec::<f32>::try_from(trainer.predict(&val).unwrap()).unwrap();
        if name == "tweedie" || name == "rmsle" {
            assert!(
                pred.iter().all(|&p| p > 0.0),
                "{name} predicts positive values"
            );
        }
    }
}

#[test]
fn ziln_learns_zero_inflated_values() {
    // y = 0 with probability σ(−x₀), else lognormal(0.5·x₁, 0.5)
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x = features(3000, 2, &mut rng);
    let y: Vec<f32> = x
        .chunks(2)
        .map(|r| {
            let p_pos = 1.0 / (1.0 + (-r[0]).exp());
            if rng.random::<f32>() < p_pos {
                (0.5 * r[1] + 0.5 * normal(&mut rng)).exp()
            } else {
                0.0
            }
        })
        .collect();
    let (xt, xv) = x.split_at(2500 * 2);
    let (yt, yv) = y.split_at(2500);
    let train = dataset(xt, 2, Tensor::from_slice(yt));
    let val = dataset(xv, 2, Tensor::from_slice(yv));
    let trainer = fit(
        "ziln".parse().unwrap(),
        2,
        &train,
        &val,
        15,
        vec![Metric::R2],
    );
    falls(&trainer, "val_loss");
    let pred = Vec::<f32>::try_from(trainer.predict(&val).unwrap()).unwrap();
    assert_eq!(pred.len(), 500);
    // the best possible prediction, E[y | x] = σ(x₀)·exp(0.5·x₁ + 0.5²/2)
    let oracle: Vec<f32> = xv
        .chunks(2)
        .map(|r| 1.0 / (1.0 + (-r[0]).exp()) * (0.5 * r[1] + 0.125).exp())
        .collect();
    let oracle_r2 = Metric::R2
        .compute(
            &Objective::Regression,
            &Tensor::from_slice(&oracle),
            &Tensor::from_slice(yv),
        )
        .unwrap();
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    let r2 = *trainer.history().series("val_r2").last().unwrap();
    eprintln!(
        "ziln: mean prediction {}, mean E[y|x] {}, mean target {}, val r2 {r2} (E[y|x]: {oracle_r2})",
        mean(&pred),
        mean(&oracle),
        mean(yv)
    );
    assert!(pred.iter().all(|&p| p >= 0.0));
    assert!((mean(&pred) - mean(&oracle)).abs() / mean(&oracle) < 0.2);
    assert!(r2 > 0.6 * oracle_r2, "r2 {r2} vs {oracle_r2}");
}

#[test]
fn multi_target_model_learns_mixed_targets() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let x = features(2400, 3, &mut rng);
    let reg: Vec<f32> = x.chunks(3).map(|r| r[0] - r[1]).collect();
    let bin: Vec<f32> = x.chunks(3).map(|r| (r[2] > 0.0) as i64 as f32).collect();
    let cls: Vec<i64> = x
        .chunks(3)
        .map(|r| {
            if r[1] > 0.7 {
                2
            } else if r[1] > -0.7 {
                1
            } else {
                0
            }
        })
        .collect();
    let targets = |a: usize, b: usize| {
        stack_targets(&[
            TargetData::F32(reg[a..b].to_vec()),
            TargetData::F32(bin[a..b].to_vec()),
            TargetData::I64(cls[a..b].to_vec()),
        ])
        .unwrap()
    };
    let train = dataset(&x[..2000 * 3], 3, targets(0, 2000));
    let val = dataset(&x[2000 * 3..], 3, targets(2000, 2400));
    let obj = Objective::MultiTarget {
        targets: vec![
            TargetSpec::Regression,
            TargetSpec::Binary { pos_weight: None },
            TargetSpec::Multiclass {
                n_classes: 3,
                class_weight: None,
            },
        ],
        weights: Some(vec![1.0, 1.0, 1.0]),
        reduction: TargetReduction::Sum,
    };
    assert_eq!(obj.pred_dim(), 5);
    // metrics apply per target (plus their mean); one applying to no target is refused
    let reg_only = Objective::MultiTarget {
        targets: vec![TargetSpec::Regression, TargetSpec::Regression],
        weights: None,
        reduction: TargetReduction::Mean,
    };
    let cfg = TrainerConfig::new(reg_only).metrics([Metric::Auc]);
    assert!(Trainer::new(model(3, 2), cfg).is_err());
    let trainer = fit(
        obj.clone(),
        3,
        &train,
        &val,
        10,
        vec![Metric::R2, Metric::Accuracy, Metric::Auc],
    );
    falls(&trainer, "val_loss");
    let scores = trainer.evaluate(&val, None).unwrap();
    for key in [
        "r2",
        "r2[0]",
        "accuracy",
        "accuracy[1]",
        "accuracy[2]",
        "auc[1]",
        "auc[2]",
    ] {
        assert!(scores.contains_key(key), "{key} missing from {scores:?}");
    }
    assert!(scores["r2[0]"] > 0.8, "{scores:?}");
    assert_eq!(scores["r2"], scores["r2[0]"]);
    assert!(
        (scores["accuracy"] - (scores["accuracy[1]"] + scores["accuracy[2]"]) / 2.0).abs() < 1e-12
    );
    let last = trainer.history().epochs.last().unwrap();
    assert!(
        last.contains_key("val_auc[1]") && last.contains_key("val_r2"),
        "{last:?}"
    );
    let pred = trainer.predict(&val).unwrap();
    assert_eq!(pred.size(), [400, 3]);
    let y = targets(2000, 2400);
    let col = |t: &Tensor, j: i64| Vec::<f32>::try_from(t.select(1, j).contiguous()).unwrap();
    let (p0, y0) = (col(&pred, 0), col(&y, 0));
    let mse = p0
        .iter()
        .zip(&y0)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f32>()
        / 400.0;
    let var = {
        let m = y0.iter().sum::<f32>() / 400.0;
        y0.iter().map(|v| (v - m).powi(2)).sum::<f32>() / 400.0
    };
    let acc = |j: i64| {
        col(&pred, j)
            .iter()
            .zip(col(&y, j))
            .filter(|(a, b)| *a == b)
            .count() as f32
            / 400.0
    };
    eprintln!(
        "multi-target: mse {mse} (variance {var}), binary acc {}, 3-class acc {}",
        acc(1),
        acc(2)
    );
    assert!(mse < 0.2 * var);
    assert!(acc(1) > 0.9 && acc(2) > 0.85);
    // per target: [N, T, C], C = 3 classes of the widest target
    let proba = trainer.predict_proba(&val).unwrap();
    assert_eq!(proba.size(), [400, 3, 3]);
    let p_bin = proba.select(1, 1).select(1, 1);
    let agree = p_bin
        .gt(0.5)
        .to_kind(tch::Kind::Float)
        .eq_tensor(&pred.select(1, 1));
    assert!(bool::try_from(agree.all()).unwrap());
    // a [N] target is refused with the reason
    let bad = dataset(&x[..30], 3, Tensor::from_slice(&reg[..10]));
    let mut t2 = Trainer::new(model(3, 5), TrainerConfig::new(obj).verbose(0)).unwrap();
    let err = t2.fit(&bad, None).unwrap_err();
    assert!(err.to_string().contains("[N, 3]"), "{err}");
}

#[derive(Debug)]
struct LogCosh;

impl CustomLoss for LogCosh {
    fn loss(&self, out: &Tensor, target: &Tensor) -> Tensor {
        let e = out.view([-1]) - target;
        // log cosh e = e + softplus(−2e) − ln 2
        (&e + (e.neg() * 2.0).softplus() - 2f64.ln()).mean(Kind::Float)
    }
    fn pred_dim(&self) -> i64 {
        1
    }
    fn predict(&self, out: &Tensor) -> Tensor {
        out.view([-1])
    }
}

#[test]
fn custom_loss_trains_and_refuses_to_be_saved() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x = features(1200, 2, &mut rng);
    let y: Vec<f32> = x.chunks(2).map(|r| 2.0 * r[0] + r[1]).collect();
    let train = dataset(&x[..2000], 2, Tensor::from_slice(&y[..1000]));
    let val = dataset(&x[2000..], 2, Tensor::from_slice(&y[1000..]));
    let trainer = fit(
        Objective::custom(LogCosh),
        2,
        &train,
        &val,
        5,
        vec![Metric::R2, Metric::Rmse],
    );
    falls(&trainer, "val_loss");
    let r2 = *trainer.history().series("val_r2").last().unwrap();
    assert!(r2 > 0.9, "custom loss r2 {r2}");
    assert!(serde_json::to_string(trainer.config()).is_err());
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::new(Preprocessors::new(), trainer);
    assert!(pipeline.save(dir.path().join("p")).is_err());
}

#[test]
fn pipeline_keeps_a_new_objective() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let x = features(600, 2, &mut rng);
    let y: Vec<f32> = x.chunks(2).map(|r| r[0].exp()).collect();
    let train = dataset(&x[..1000], 2, Tensor::from_slice(&y[..500]));
    let val = dataset(&x[1000..], 2, Tensor::from_slice(&y[500..]));
    let trainer = fit(
        "tweedie".parse().unwrap(),
        2,
        &train,
        &val,
        2,
        vec![Metric::Mae],
    );
    let before = trainer.predict(&val).unwrap();
    let dir = tempfile::tempdir().unwrap();
    Pipeline::new(Preprocessors::new(), trainer)
        .save(dir.path().join("p"))
        .unwrap();
    let loaded = Pipeline::load(dir.path().join("p"), Device::Cpu).unwrap();
    assert_eq!(
        loaded.trainer.config().objective,
        "tweedie".parse::<Objective>().unwrap()
    );
    assert!(loaded
        .trainer
        .predict(&val)
        .unwrap()
        .allclose(&before, 1e-6, 1e-6, false));
}

#[test]
fn multi_target_pipeline_from_a_dataframe() {
    use polars::prelude::*;
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let n = 600;
    let a: Vec<f64> = (0..n).map(|_| normal(&mut rng) as f64).collect();
    let b: Vec<f64> = (0..n).map(|_| normal(&mut rng) as f64).collect();
    let city: Vec<&str> = (0..n).map(|i| ["x", "y", "z"][i % 3]).collect();
    let price: Vec<f64> = a.iter().zip(&b).map(|(a, b)| 2.0 * a + b).collect();
    let sold: Vec<&str> = b
        .iter()
        .map(|b| if *b > 0.0 { "yes" } else { "no" })
        .collect();
    let kind: Vec<&str> = (0..n).map(|i| ["flat", "house", "loft"][i % 3]).collect();
    let df = df!(
        "a" => a, "b" => b, "city" => city,
        "price" => price, "sold" => sold, "kind" => kind,
    )
    .unwrap();
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&["city"], &["a", "b"]))
        .multi_target(TargetEncoder::new("price", TargetKind::Regression))
        .multi_target(TargetEncoder::new("sold", TargetKind::Binary))
        .multi_target(TargetEncoder::new("kind", TargetKind::Multiclass));
    let data = prep.fit_transform(&df).unwrap();
    assert_eq!(data.target.as_ref().unwrap().size(), [600, 3]);
    let obj = prep.objective().unwrap();
    assert_eq!(obj.pred_dim(), 5);
    let model = WideDeep::new(
        &WideDeepConfig::new()
            .deeptabular(TabMlpConfig::from_meta(&prep.tab_meta().unwrap()))
            .pred_dim(obj.pred_dim()),
        Device::Cpu,
    )
    .unwrap();
    let cfg = TrainerConfig::new(obj)
        .epochs(8)
        .lr(5e-3)
        .val_split(0.2)
        .verbose(0);
    let mut trainer = Trainer::new(model, cfg).unwrap();
    trainer.fit(&data, None).unwrap();
    falls(&trainer, "val_loss");
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::new(prep, trainer);
    let before = pipeline.predict(&df).unwrap();
    assert_eq!(before.size(), [600, 3]);
    pipeline.save(dir.path().join("mt")).unwrap();
    let loaded = Pipeline::load(dir.path().join("mt"), Device::Cpu).unwrap();
    // prediction data may lack the target columns
    let features = df.select(["a", "b", "city"]).unwrap();
    assert!(loaded.predict(&features).unwrap().equal(&before));
    // `kind` is learned from `city` (same cycle), `sold` from the sign of `b`
    let col = |j: i64| Vec::<f32>::try_from(before.select(1, j).contiguous()).unwrap();
    let sold_acc = col(1)
        .iter()
        .zip(df.column("b").unwrap().f64().unwrap().into_no_null_iter())
        .filter(|(p, b)| (**p == 1.0) == (*b > 0.0))
        .count() as f64
        / 600.0;
    let kind_acc = col(2)
        .iter()
        .enumerate()
        .filter(|(i, p)| **p as usize == i % 3)
        .count() as f64
        / 600.0;
    eprintln!("multi-target pipeline: sold accuracy {sold_acc}, kind accuracy {kind_acc}");
    assert!(sold_acc > 0.9 && kind_acc > 0.95);
    // both a single and a multi target is a configuration error
    let err = Preprocessors::new()
        .target(TargetEncoder::new("price", TargetKind::Regression))
        .multi_target(TargetEncoder::new("sold", TargetKind::Binary))
        .fit(&df)
        .unwrap_err();
    assert!(err.to_string().contains("multi_target"), "{err}");
}

/// Two regression targets on very different scales (California housing's median value, in
/// $100k, and block population, in people): with standardised targets the shared model fits
/// both; predictions and metrics come back in the targets' units; no `pred_dim` is set.
#[test]
fn scaled_targets_on_different_scales_train_and_come_back_in_their_units() {
    let df = widedeep::datasets::california_housing().unwrap();
    let (train, test) = widedeep::datasets::train_test_split(&df, 0.2, 5).unwrap();
    let (train, test) = (train.head(Some(6000)), test.head(Some(1500)));
    // every feature but the population, which becomes the second target
    let feats: Vec<&str> = widedeep::datasets::california_columns::FEATURES
        .into_iter()
        .filter(|c| *c != "Population")
        .collect();
    let run = |scaling: TargetScaling| {
        let mut prep = Preprocessors::new()
            .tab(TabPreprocessor::new(&[], &feats))
            .multi_target(
                TargetEncoder::new("MedHouseVal", TargetKind::Regression).scaling(scaling),
            )
            .multi_target(
                TargetEncoder::new("Population", TargetKind::Regression).scaling(scaling),
            );
        let data = prep.fit_transform(&train).unwrap();
        let model = WideDeep::new(
            &WideDeepConfig::new().deeptabular(TabMlpConfig::from_meta(&prep.tab_meta().unwrap())),
            Device::Cpu,
        )
        .unwrap();
        let cfg = TrainerConfig::new(prep.objective().unwrap())
            .epochs(6)
            .batch_size(128)
            .lr(3e-3)
            .metrics([Metric::R2, Metric::Mae])
            .seed(2)
            .verbose(0);
        let mut trainer = Trainer::new(model, cfg).unwrap();
        assert_eq!(trainer.model().pred_dim(), 2, "inferred from the objective");
        trainer.fit(&data, None).unwrap();
        Pipeline::new(prep, trainer)
    };
    let plain = run(TargetScaling::None).evaluate(&test, None).unwrap();
    let scaled_pipeline = run(TargetScaling::Standard);
    let scaled = scaled_pipeline.evaluate(&test, None).unwrap();
    eprintln!("R² plain {plain:?}\nR² scaled {scaled:?}");
    assert!(scaled["r2[0]"] > 0.5, "{scaled:?}");
    assert!(scaled["r2"] > plain["r2"] + 0.1, "{plain:?} vs {scaled:?}");
    // predictions in the targets' units: the MAE on the raw test values matches evaluate's
    let pred = scaled_pipeline.predict(&test).unwrap();
    let y: Vec<f64> = test
        .column("MedHouseVal")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let p0 = Vec::<f32>::try_from(pred.select(1, 0).contiguous()).unwrap();
    let mae = p0
        .iter()
        .zip(&y)
        .map(|(p, y)| (*p as f64 - y).abs())
        .sum::<f64>()
        / y.len() as f64;
    assert!(
        (mae - scaled["mae[0]"]).abs() < 1e-3 * mae.max(1.0),
        "{mae} vs {scaled:?}"
    );
    assert!(mae < 1.0, "{mae} ($100k)");
    // and a saved, reloaded pipeline scales the same way
    let dir = tempfile::tempdir().unwrap();
    scaled_pipeline.save(dir.path().join("p")).unwrap();
    let loaded = Pipeline::load(dir.path().join("p"), Device::Cpu).unwrap();
    assert!(loaded.predict(&test).unwrap().equal(&pred));
}
