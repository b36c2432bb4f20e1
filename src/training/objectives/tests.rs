use super::*;
use crate::training::Metric;
use crate::WideDeepError;

fn f(v: &[f32]) -> Tensor {
    Tensor::from_slice(v)
}

fn m(v: &[f32], cols: i64) -> Tensor {
    Tensor::from_slice(v).view([-1, cols])
}

fn close(got: &Tensor, expected: f64, tol: f64, what: &str) {
    let g = got.double_value(&[]);
    assert!((g - expected).abs() < tol, "{what}: {g} vs {expected}");
}

// Fixed inputs shared by the PyTorch cross-checks; the expected numbers were computed once
// with torch 2.11.0 and pytorch-widedeep 1.7.0's loss classes by
// `tests/reference/objectives_reference.py` (same tensors, `pytorch_widedeep.losses.*`).
fn bin() -> (Tensor, Tensor) {
    (m(&[0.5, -1.2, 2.0, 0.1], 1), f(&[1.0, 0.0, 1.0, 0.0]))
}
fn multi() -> (Tensor, Tensor) {
    (
        m(
            &[1.0, 0.2, -0.5, 0.1, 0.3, 2.0, -1.0, 0.5, 0.0, 0.3, 0.3, 0.3],
            3,
        ),
        Tensor::from_slice(&[0i64, 2, 1, 1]),
    )
}
fn reg() -> (Tensor, Tensor) {
    (m(&[0.5, 1.5, 3.0, 0.2], 1), f(&[1.0, 1.0, 2.0, 0.0]))
}

#[test]
fn losses_match_hand_computation() {
    // BCE with logits: mean(-(y log σ(z) + (1-y) log(1-σ(z))))
    let z = [0.0f32, 2.0];
    let y = [1.0f32, 0.0];
    let s = |x: f32| 1.0 / (1.0 + (-x).exp());
    let expected = -((s(z[0]).ln()) + (1.0 - s(z[1])).ln()) / 2.0;
    let got = Objective::Binary.loss(&f(&z).view([2, 1]), &f(&y));
    close(&got, expected as f64, 1e-6, "bce");

    let mse = Objective::Regression.loss(&f(&[1.0, 3.0]).view([2, 1]), &f(&[0.0, 1.0]));
    close(&mse, 2.5, 1e-6, "mse");

    // CE of logits [0, ln 3] for class 1: -ln(3/4)
    let out = f(&[0.0, 3f32.ln()]).view([1, 2]);
    let ce = Objective::Multiclass { n_classes: 2 }.loss(&out, &Tensor::from_slice(&[1i64]));
    close(&ce, (4.0f64 / 3.0).ln(), 1e-6, "ce");

    // pos_weight 3 triples the positive row's term: z = 0, y = 1 → 3·ln 2; z = 0, y = 0 → ln 2
    let pw =
        Objective::WeightedBinary { pos_weight: 3.0 }.loss(&m(&[0.0, 0.0], 1), &f(&[1.0, 0.0]));
    close(&pw, 2.0 * 2f64.ln(), 1e-6, "pos_weight");

    // class weights: weighted mean Σ w_y l / Σ w_y; both rows logits [0, 0] → l = ln 2
    let cw = Objective::WeightedMulticlass {
        n_classes: 2,
        class_weight: vec![1.0, 3.0],
    }
    .loss(
        &m(&[0.0, 0.0, 0.0, 0.0], 2),
        &Tensor::from_slice(&[0i64, 1]),
    );
    close(&cw, 2f64.ln(), 1e-6, "class_weight");

    // errors e = [-0.5, 0.5, 1, 0.2]
    let (p, y) = reg();
    close(&Objective::Mae.loss(&p, &y), 0.55, 1e-6, "mae");
    close(
        &Objective::Rmse.loss(&p, &y),
        (0.385f64).sqrt(),
        1e-5,
        "rmse",
    );
    // Huber δ = 1: 0.5e² for all |e| ≤ 1 except e = 1 → 1 − 0.5 = 0.5
    let h = (0.5 * 0.25 + 0.5 * 0.25 + 0.5 + 0.5 * 0.04) / 4.0;
    close(
        &Objective::Huber { delta: 1.0 }.loss(&p, &y),
        h,
        1e-6,
        "huber",
    );
    // pinball: y = 1, ŷ = [0, 2] at q = 0.9 → e = [1, −1] → [0.9, 0.1]
    let q = Objective::Quantile {
        quantiles: vec![0.9, 0.9],
    };
    close(
        &q.loss(&m(&[0.0, 2.0], 2), &f(&[1.0])),
        0.5,
        1e-6,
        "pinball",
    );
    // Tweedie p = 1.5, ŷ = 1, y = 2: −2·1/(−0.5) + 1/0.5 = 6
    let tw = Objective::Tweedie { p: 1.5 }.enforce_positive(PositiveActivation::Relu);
    close(&tw.loss(&m(&[1.0], 1), &f(&[2.0])), 6.0, 1e-6, "tweedie");
}

#[test]
fn losses_match_pytorch_widedeep() {
    let (z, yb) = bin();
    let (mo, ym) = multi();
    let (p, y) = reg();
    let tol = 2e-6;
    close(&Objective::Binary.loss(&z, &yb), 0.402171016, tol, "bce");
    close(
        &Objective::WeightedBinary { pos_weight: 3.0 }.loss(&z, &yb),
        0.702673554,
        tol,
        "bce pos_weight",
    );
    close(
        &"binary_focal_loss"
            .parse::<Objective>()
            .unwrap()
            .loss(&z, &yb),
        0.036080245,
        tol,
        "binary focal",
    );
    close(
        &Objective::Multiclass { n_classes: 3 }.loss(&mo, &ym),
        0.625977218,
        tol,
        "ce",
    );
    close(
        &Objective::WeightedMulticlass {
            n_classes: 3,
            class_weight: vec![1.0, 2.0, 0.5],
        }
        .loss(&mo, &ym),
        0.738766611,
        tol,
        "weighted ce",
    );
    close(
        &Objective::MulticlassFocal {
            n_classes: 3,
            alpha: 0.25,
            gamma: 2.0,
        }
        .loss(&mo, &ym),
        0.101242594,
        tol,
        "multiclass focal",
    );
    let by_name = |name: &str, expected: f64| {
        let obj: Objective = name.parse().unwrap();
        // the positive-enforcing parses see softplus(out): undo it for the raw check
        let out = match &obj {
            Objective::EnforcePositive { inner, .. } => {
                close(&inner.loss(&p, &y), expected, tol, name);
                return;
            }
            _ => &p,
        };
        close(&obj.loss(out, &y), expected, tol, name);
    };
    by_name("mse", 0.384999990);
    by_name("mae", 0.550000012);
    by_name("msle", 0.062139038);
    by_name("rmse", 0.620483696);
    by_name("rmsle", 0.249277040);
    by_name("huber", 0.450000018);
    by_name("tweedie", 3.748263121);
    by_name("focalr_mse", 0.028081318);
    by_name("focalr_l1", 0.038406432);
    by_name("focalr_rmse", 0.167574808);
    close(
        &Objective::Huber { delta: 1.0 }.loss(&p, &y),
        0.192499995,
        tol,
        "huber 1",
    );
    close(
        &Objective::Tweedie { p: 1.2 }.loss(&p, &y),
        6.045886993,
        1e-5,
        "tweedie 1.2",
    );
    let tanh = |o: fn(f64, f64, FocalRActivation) -> Objective| o(0.5, 2.0, FocalRActivation::Tanh);
    close(
        &tanh(|beta, gamma, activation| Objective::FocalRMse {
            beta,
            gamma,
            activation,
        })
        .loss(&p, &y),
        0.060985554,
        tol,
        "focalr_mse tanh",
    );
    close(
        &tanh(|beta, gamma, activation| Objective::FocalRL1 {
            beta,
            gamma,
            activation,
        })
        .loss(&p, &y),
        0.068881042,
        tol,
        "focalr_l1 tanh",
    );
    // ZILN
    let zo = m(
        &[
            0.3, 0.1, 0.5, -0.2, 1.0, -1.0, 1.5, -0.5, 0.2, 0.0, 0.0, 0.0,
        ],
        3,
    );
    let yz = f(&[0.0, 2.5, 1.2, 0.0]);
    close(
        &Objective::ZeroInflatedLognormal.loss(&zo, &yz),
        1.124619246,
        tol,
        "ziln",
    );
    // multi-target [regression, binary (pos_weight 2), 3 classes], weights [1, .5, 2], mean
    let mt = Objective::MultiTarget {
        targets: vec![
            TargetSpec::Regression,
            TargetSpec::Binary {
                pos_weight: Some(2.0),
            },
            TargetSpec::Multiclass {
                n_classes: 3,
                class_weight: None,
            },
        ],
        weights: Some(vec![1.0, 0.5, 2.0]),
        reduction: TargetReduction::Mean,
    };
    let mo = m(
        &[
            0.5, 0.2, 1.0, 0.0, -1.0, 1.5, -0.3, 0.1, 0.2, 0.3, -0.5, 1.2, -0.2, 0.9, 0.0,
        ],
        5,
    );
    let my = m(&[1.0, 1.0, 0.0, 2.0, 0.0, 2.0, 0.0, 1.0, 1.0], 3);
    assert_eq!(mt.pred_dim(), 5);
    mt.check_target(&my).unwrap();
    close(&mt.loss(&mo, &my), 0.646091521, tol, "multi-target");
    let pred = Vec::<f32>::try_from(mt.predict(&mo).view([-1])).unwrap();
    // row 0: 0.5, σ(0.2) > .5 → 1, argmax [1, 0, -1] → 0
    assert_eq!(&pred[..3], &[0.5, 1.0, 0.0]);
    // per-target layout [N, T, C]: C = 3 (the multiclass target), zeros beyond a target's
    // classes and for the regression target
    let proba = mt.predict_proba(&mo).unwrap();
    assert_eq!(proba.size(), [3, 3, 3]);
    let p = |r: i64, t: i64, c: i64| proba.double_value(&[r, t, c]);
    assert_eq!((p(0, 0, 0), p(0, 0, 1), p(0, 0, 2)), (0.0, 0.0, 0.0));
    let s = 1.0 / (1.0 + (-0.2f64).exp());
    assert!((p(0, 1, 1) - s).abs() < 1e-6 && (p(0, 1, 0) - (1.0 - s)).abs() < 1e-6);
    assert_eq!(p(0, 1, 2), 0.0);
    let row_sum: f64 = (0..3).map(|c| p(1, 2, c)).sum();
    assert!((row_sum - 1.0).abs() < 1e-6);
    // metrics per target, plus their mean under the plain name
    let scores = mt.scores(&mo);
    let named = Metric::Accuracy.compute_named(&mt, &scores, &my).unwrap();
    let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["accuracy", "accuracy[1]", "accuracy[2]"]);
    // binary: logits 0.2, -0.3, 1.2 → 1, 0, 1 against targets 1, 0, 1;
    // classes: argmax [1, 0, -1], [0.1, 0.2, 0.3], [-0.2, 0.9, 0.0] → 0, 2, 1 against 0, 2, 1
    assert_eq!(named[1].1, 1.0, "{named:?}");
    assert_eq!(named[2].1, 1.0, "{named:?}");
    let wrong = Tensor::stack(
        &[
            my.select(1, 0),
            my.select(1, 1).ones_like() - my.select(1, 1),
            my.select(1, 2),
        ],
        1,
    );
    let named_wrong = Metric::Accuracy
        .compute_named(&mt, &scores, &wrong)
        .unwrap();
    assert_eq!(named_wrong[1].1, 0.0, "{named_wrong:?}");
    assert_eq!(named_wrong[0].1, 0.5, "{named_wrong:?}");
    assert!((named[0].1 - (named[1].1 + named[2].1) / 2.0).abs() < 1e-12);
    let r2 = Metric::R2.compute_named(&mt, &scores, &my).unwrap();
    assert_eq!(r2.len(), 2);
    assert_eq!(r2[1].0, "r2[0]");
    assert_eq!(Metric::R2.compute(&mt, &scores, &my).unwrap(), r2[0].1);
    let only_reg = Objective::MultiTarget {
        targets: vec![TargetSpec::Regression, TargetSpec::Regression],
        weights: None,
        reduction: TargetReduction::Mean,
    };
    assert!(Metric::Auc.check(&only_reg).is_err());
    assert!(Metric::Mae.check(&only_reg).is_ok());
}

#[test]
fn quantile_is_the_pinball_loss_not_the_references_broadcast() {
    // pytorch-widedeep 1.7.0's QuantileLoss subtracts a [N] column from a [N, 1] target,
    // broadcasting to [N, N] (0.6025 on these tensors); the per-row pinball loss is 0.19
    let out = m(
        &[0.1, 0.5, 0.9, 1.0, 1.2, 1.5, -0.5, 0.0, 0.5, 2.0, 2.5, 3.0],
        3,
    );
    let y = f(&[0.4, 2.0, -1.0, 2.5]);
    let q = Objective::Quantile {
        quantiles: vec![0.1, 0.5, 0.9],
    };
    close(&q.loss(&out, &y), 0.189999998, 1e-6, "pinball");
    assert_eq!(q.predict(&out).size(), [4, 3]);
}

#[test]
fn ziln_predicts_the_expected_value() {
    let zo = m(
        &[
            0.3, 0.1, 0.5, -0.2, 1.0, -1.0, 1.5, -0.5, 0.2, 0.0, 0.0, 0.0,
        ],
        3,
    );
    let got = Vec::<f32>::try_from(Objective::ZeroInflatedLognormal.predict(&zo)).unwrap();
    // pytorch-widedeep's Trainer._predict_ziln on the same outputs
    let reference = [1.020_260_2_f32, 1.285_217, 0.681_880_8, 0.635_768_6];
    // and by hand: σ(a)·exp(μ + softplus(s)²/2)
    let rows = [
        [0.3f64, 0.1, 0.5],
        [-0.2, 1.0, -1.0],
        [1.5, -0.5, 0.2],
        [0.0, 0.0, 0.0],
    ];
    for (i, r) in rows.iter().enumerate() {
        let sp = (1.0 + r[2].exp()).ln();
        let ev = 1.0 / (1.0 + (-r[0]).exp()) * (r[1] + 0.5 * sp * sp).exp();
        assert!(
            (got[i] as f64 - ev).abs() < 1e-5,
            "row {i}: {} vs {ev}",
            got[i]
        );
        assert!((got[i] - reference[i]).abs() < 1e-5);
    }
    // the expected value of a lognormal part matches a Monte Carlo estimate
    let _rng = crate::torch_rng_lock();
    tch::manual_seed(0);
    let (p, mu, sigma) = (0.7f64, 0.2f64, 0.5f64);
    let n = 400_000;
    let pos = Tensor::rand([n], (Kind::Double, tch::Device::Cpu)).lt(p);
    let ln = (Tensor::randn([n], (Kind::Double, tch::Device::Cpu)) * sigma + mu).exp();
    let mc = (ln * pos.to_kind(Kind::Double))
        .mean(Kind::Double)
        .double_value(&[]);
    let s_raw = (sigma.exp() - 1.0).ln(); // softplus⁻¹(σ)
    let out =
        Tensor::from_slice(&[(p / (1.0 - p)).ln() as f32, mu as f32, s_raw as f32]).view([1, 3]);
    let ev = Objective::ZeroInflatedLognormal
        .predict(&out)
        .double_value(&[0]);
    assert!(
        (ev - mc).abs() / mc < 0.01,
        "expected value {ev} vs Monte Carlo {mc}"
    );
}

#[test]
fn aliases_parse() {
    let cases: &[(&str, &str)] = &[
        ("binary", "binary"),
        ("logistic", "binary"),
        ("binary_logloss", "binary"),
        ("binary_cross_entropy", "binary"),
        ("focal_loss", "binary_focal_loss"),
        ("binary_focal_loss", "binary_focal_loss"),
        ("multiclass", "multiclass"),
        ("multi_logistic", "multiclass"),
        ("multi_logloss", "multiclass"),
        ("cross_entropy", "multiclass"),
        ("categorical_cross_entropy", "multiclass"),
        ("multiclass_focal_loss", "multiclass_focal_loss"),
        ("regression", "regression"),
        ("mse", "regression"),
        ("l2", "regression"),
        ("mean_squared_error", "regression"),
        ("mae", "mae"),
        ("l1", "mae"),
        ("mean_absolute_error", "mae"),
        ("msle", "msle"),
        ("mean_squared_log_error", "msle"),
        ("rmse", "rmse"),
        ("root_mean_squared_error", "rmse"),
        ("rmsle", "rmsle"),
        ("root_mean_squared_log_error", "rmsle"),
        ("huber", "huber"),
        ("tweedie", "tweedie"),
        ("zero_inflated_lognormal", "zero_inflated_lognormal"),
        ("ziln", "zero_inflated_lognormal"),
        ("quantile", "quantile"),
        ("focalr_mse", "focalr_mse"),
        ("focalr_l1", "focalr_l1"),
        ("FocalR_RMSE", "focalr_rmse"),
    ];
    for (alias, name) in cases {
        let o: Objective = alias.parse().unwrap_or_else(|e| panic!("{alias}: {e}"));
        assert_eq!(o.name(), *name, "{alias}");
    }
    assert_eq!("MSE".parse::<Objective>().unwrap(), Objective::Regression);
    assert!("poisson-ish".parse::<Objective>().is_err());
    assert!("multitarget".parse::<Objective>().is_err());
    assert_eq!("quantile".parse::<Objective>().unwrap().pred_dim(), 7);
    assert_eq!("ziln".parse::<Objective>().unwrap().pred_dim(), 3);
    // the positive-prediction losses parse with softplus on
    assert!(matches!(
        "tweedie".parse::<Objective>().unwrap(),
        Objective::EnforcePositive {
            activation: PositiveActivation::Softplus,
            ..
        }
    ));
}

#[test]
fn probabilities_and_predictions() {
    let out = f(&[0.0, 10.0, -10.0]).view([3, 1]);
    let proba = Objective::Binary.predict_proba(&out).unwrap();
    assert_eq!(proba.size(), [3, 2]);
    assert!((proba.double_value(&[0, 1]) - 0.5).abs() < 1e-6);
    let pred = Vec::<i64>::try_from(Objective::Binary.predict(&out)).unwrap();
    assert_eq!(pred, vec![0, 1, 0]);
    assert!(Objective::Regression.predict_proba(&out).is_err());
    let focal = Objective::BinaryFocal {
        alpha: 0.25,
        gamma: 2.0,
    };
    assert_eq!(
        Vec::<i64>::try_from(focal.predict(&out)).unwrap(),
        vec![0, 1, 0]
    );
    // enforce_positive: predictions are softplus / relu of the outputs
    let neg = m(&[-2.0, 1.0], 1);
    let sp = Objective::Rmse.enforce_positive(PositiveActivation::Softplus);
    let got = Vec::<f32>::try_from(sp.predict(&neg)).unwrap();
    assert!((got[0] - (1.0 + (-2f32).exp()).ln()).abs() < 1e-6 && got[0] > 0.0);
    let relu = Objective::Mae.enforce_positive(PositiveActivation::Relu);
    assert_eq!(
        Vec::<f32>::try_from(relu.predict(&neg)).unwrap(),
        vec![0.0, 1.0]
    );
    assert_eq!(sp.pred_dim(), 1);
}

#[test]
fn names_pred_dims_and_validation() {
    assert!(Objective::Multiclass { n_classes: 3 }
        .check_pred_dim(3)
        .is_ok());
    assert!(Objective::Binary.check_pred_dim(2).is_err());
    let err = "multiclass"
        .parse::<Objective>()
        .unwrap()
        .check_pred_dim(3)
        .unwrap_err();
    assert!(err.to_string().contains("n_classes"), "{err}");
    let field_of = |o: Objective| match o.check_pred_dim(o.pred_dim()).unwrap_err() {
        WideDeepError::InvalidConfig { field, .. } => field,
        e => panic!("{e}"),
    };
    assert_eq!(
        field_of(Objective::WeightedBinary { pos_weight: -1.0 }),
        "objective.pos_weight"
    );
    assert_eq!(
        field_of(Objective::WeightedMulticlass {
            n_classes: 3,
            class_weight: vec![1.0, 2.0]
        }),
        "objective.class_weight"
    );
    assert_eq!(
        field_of(Objective::BinaryFocal {
            alpha: 1.5,
            gamma: 2.0
        }),
        "objective.alpha"
    );
    assert_eq!(field_of(Objective::Huber { delta: 0.0 }), "objective.delta");
    assert_eq!(
        field_of(Objective::Tweedie { p: 2.5 }.enforce_positive(PositiveActivation::Softplus)),
        "objective.p"
    );
    assert_eq!(
        field_of(Objective::Tweedie { p: 1.5 }.enforce_positive(PositiveActivation::Relu)),
        "objective.activation"
    );
    assert_eq!(field_of(Objective::Msle), "objective");
    assert_eq!(
        field_of(Objective::Quantile {
            quantiles: vec![0.5, 1.2]
        }),
        "objective.quantiles"
    );
    assert_eq!(
        field_of(Objective::Binary.enforce_positive(PositiveActivation::Softplus)),
        "objective.inner"
    );
    assert_eq!(
        field_of(Objective::MultiTarget {
            targets: vec![TargetSpec::Regression],
            weights: Some(vec![1.0, 1.0]),
            reduction: TargetReduction::Sum
        }),
        "objective.weights"
    );
    assert_eq!(
        Objective::Binary.with_class_weight(&[1.0, 4.0]).unwrap(),
        Objective::WeightedBinary { pos_weight: 4.0 }
    );
    assert!(Objective::Regression.with_class_weight(&[1.0]).is_err());
}

#[test]
fn targets_are_checked_with_named_problems() {
    let reason = |o: &Objective, t: Tensor| match o.check_target(&t).unwrap_err() {
        WideDeepError::InputMismatch { input, reason } => {
            assert_eq!(input, "target");
            reason
        }
        e => panic!("{e}"),
    };
    let r = reason(
        &Objective::Regression,
        Tensor::zeros([3, 2], (Kind::Float, tch::Device::Cpu)),
    );
    assert!(r.contains("[N]") && r.contains("MultiTarget"), "{r}");
    let msle = "msle".parse::<Objective>().unwrap();
    let r = reason(&msle, f(&[1.0, -0.5]));
    assert!(r.contains("≥ 0"), "{r}");
    let mt = Objective::MultiTarget {
        targets: vec![
            TargetSpec::Regression,
            TargetSpec::Multiclass {
                n_classes: 3,
                class_weight: None,
            },
        ],
        weights: None,
        reduction: TargetReduction::Mean,
    };
    let r = reason(&mt, f(&[1.0, 2.0]));
    assert!(r.contains("[N, 2]"), "{r}");
    let r = reason(&mt, m(&[0.5, 1.0, 2.0, 3.0], 2));
    assert!(r.contains("target[:, 1]") && r.contains("0..3"), "{r}");
    let r = reason(&mt, m(&[0.5, 1.5, 2.0, 1.0], 2));
    assert!(r.contains("target[:, 1]"), "{r}");
    let r = reason(&mt, Tensor::from_slice(&[1i32, 1]).view([1, 2]));
    assert!(r.contains("f32"), "{r}");
    mt.check_target(&Tensor::from_slice(&[1i64, 2, 0, 0]).view([2, 2]))
        .unwrap();
}

#[test]
fn serialized_form_is_kept_and_new_objectives_round_trip() {
    // the existing forms
    assert_eq!(
        serde_json::to_string(&Objective::Binary).unwrap(),
        r#"{"objective":"binary"}"#
    );
    assert_eq!(
        serde_json::to_string(&Objective::Multiclass { n_classes: 4 }).unwrap(),
        r#"{"objective":"multiclass","n_classes":4}"#
    );
    let old: Objective = serde_json::from_str(r#"{"objective":"regression"}"#).unwrap();
    assert_eq!(old, Objective::Regression);
    for o in [
        Objective::Quantile {
            quantiles: vec![0.1, 0.9],
        },
        "tweedie".parse().unwrap(),
        "focalr_l1".parse().unwrap(),
        Objective::MultiTarget {
            targets: vec![
                TargetSpec::Binary { pos_weight: None },
                TargetSpec::Multiclass {
                    n_classes: 3,
                    class_weight: Some(vec![1.0, 2.0, 3.0]),
                },
            ],
            weights: None,
            reduction: TargetReduction::Sum,
        },
    ] {
        let s = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<Objective>(&s).unwrap(), o, "{s}");
    }
}

#[derive(Debug)]
struct HalfMse;

impl CustomLoss for HalfMse {
    fn loss(&self, out: &Tensor, target: &Tensor) -> Tensor {
        (out.view([-1]) - target).square().mean(Kind::Float) * 0.5
    }
    fn pred_dim(&self) -> i64 {
        1
    }
    fn predict(&self, out: &Tensor) -> Tensor {
        out.view([-1])
    }
}

#[test]
fn custom_loss_plugs_in_and_is_not_serialized() {
    let o = Objective::custom(HalfMse);
    close(
        &o.loss(&m(&[1.0, 3.0], 1), &f(&[0.0, 1.0])),
        1.25,
        1e-6,
        "custom",
    );
    assert_eq!(o.pred_dim(), 1);
    assert!(o.check_pred_dim(1).is_ok());
    assert_eq!(o, o.clone());
    assert_ne!(o, Objective::custom(HalfMse));
    assert!(serde_json::to_string(&o).is_err());
    assert!(o.predict_proba(&m(&[1.0], 1)).is_err());
}

#[test]
fn losses_have_gradients() {
    let _rng = crate::torch_rng_lock();
    let (p, y) = reg();
    for name in [
        "mse",
        "mae",
        "msle",
        "rmse",
        "rmsle",
        "huber",
        "tweedie",
        "focalr_mse",
        "focalr_l1",
        "focalr_rmse",
    ] {
        let o: Objective = name.parse().unwrap();
        let x = p.copy().set_requires_grad(true);
        let l = o.loss(&x, &y);
        l.backward();
        let g = x.grad();
        assert!(
            bool::try_from(g.isfinite().all()).unwrap()
                && g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "{name}"
        );
    }
}

#[test]
fn every_objective_has_consistent_shapes() {
    let n = 5;
    let all: Vec<Objective> = vec![
        Objective::Binary,
        Objective::WeightedBinary { pos_weight: 2.0 },
        "focal_loss".parse().unwrap(),
        Objective::Multiclass { n_classes: 4 },
        Objective::WeightedMulticlass {
            n_classes: 4,
            class_weight: vec![1.0, 1.0, 2.0, 3.0],
        },
        Objective::MulticlassFocal {
            n_classes: 4,
            alpha: 0.25,
            gamma: 2.0,
        },
        "mse".parse().unwrap(),
        "mae".parse().unwrap(),
        "msle".parse().unwrap(),
        "rmse".parse().unwrap(),
        "rmsle".parse().unwrap(),
        "huber".parse().unwrap(),
        "tweedie".parse().unwrap(),
        "ziln".parse().unwrap(),
        "quantile".parse().unwrap(),
        "focalr_mse".parse().unwrap(),
        "focalr_l1".parse().unwrap(),
        "focalr_rmse".parse().unwrap(),
        Objective::Quantile {
            quantiles: vec![0.25, 0.75],
        }
        .enforce_positive(PositiveActivation::Relu),
        Objective::custom(HalfMse),
    ];
    let out_for = |o: &Objective| {
        let k = o.pred_dim();
        Tensor::linspace(-2.0, 2.0, n * k, (Kind::Float, tch::Device::Cpu)).view([n, k])
    };
    for o in &all {
        o.check_pred_dim(o.pred_dim())
            .unwrap_or_else(|e| panic!("{}: {e}", o.name()));
        let out = out_for(o);
        let (pred, scores) = (o.predict(&out), o.scores(&out));
        let target = match (o.is_binary(), o.n_classes()) {
            (true, _) => f(&[0.0, 1.0, 1.0, 0.0, 1.0]),
            (_, Some(_)) => Tensor::from_slice(&[0i64, 1, 2, 3, 1]),
            _ => f(&[0.5, 0.0, 2.0, 1.0, 3.0]),
        };
        o.check_target(&target)
            .unwrap_or_else(|e| panic!("{}: {e}", o.name()));
        let loss = o.loss(&out, &target);
        assert_eq!(loss.dim(), 0, "{}", o.name());
        assert!(loss.double_value(&[]).is_finite(), "{}", o.name());
        match o {
            Objective::Quantile { quantiles } => {
                assert_eq!(pred.size(), [n, quantiles.len() as i64]);
            }
            Objective::EnforcePositive { inner, .. }
                if matches!(inner.as_ref(), Objective::Quantile { .. }) =>
            {
                assert_eq!(pred.size(), [n, 2]);
                assert!(bool::try_from(pred.ge(0.0).all()).unwrap());
            }
            _ => assert_eq!(pred.size(), [n], "{}", o.name()),
        }
        if o.is_classification() && !matches!(o, Objective::Custom(_)) {
            assert_eq!(pred.kind(), Kind::Int64);
            let proba = o.predict_proba(&out).unwrap();
            let k = o.n_classes().unwrap_or(2);
            assert_eq!(proba.size(), [n, k], "{}", o.name());
            let sums = proba.sum_dim_intlist(1, false, Kind::Float);
            assert!(sums.allclose(&sums.ones_like(), 1e-5, 1e-5, false));
            // predict is the argmax of the probabilities
            assert!(pred.equal(&proba.argmax(1, false)), "{}", o.name());
            let s = if o.is_binary() {
                [n].to_vec()
            } else {
                [n, k].to_vec()
            };
            assert_eq!(scores.size(), s);
        } else {
            assert!(o.predict_proba(&out).is_err(), "{}", o.name());
            assert_eq!(scores.size(), pred.size(), "{}", o.name());
        }
    }
}

#[derive(Debug)]
struct Threshold;

impl CustomLoss for Threshold {
    fn loss(&self, out: &Tensor, target: &Tensor) -> Tensor {
        out.view([-1]).binary_cross_entropy_with_logits::<Tensor>(
            target,
            None,
            None,
            tch::Reduction::Mean,
        )
    }
    fn pred_dim(&self) -> i64 {
        1
    }
    fn predict(&self, out: &Tensor) -> Tensor {
        out.view([-1]).gt(0.5).to_kind(Kind::Int64)
    }
    fn is_classification(&self) -> bool {
        true
    }
}

#[test]
fn custom_classification_gets_label_metrics() {
    use crate::training::Metric;
    let o = Objective::custom(Threshold);
    let out = m(&[0.2, 0.9, 0.6, 0.0], 1);
    let y = f(&[0.0, 1.0, 0.0, 0.0]);
    // predicted 0 1 1 0 → accuracy 3/4, precision 1/2, recall 1
    let s = o.scores(&out);
    assert_eq!(Metric::Accuracy.compute(&o, &s, &y).unwrap(), 0.75);
    assert_eq!(Metric::Precision.compute(&o, &s, &y).unwrap(), 0.5);
    assert_eq!(Metric::Recall.compute(&o, &s, &y).unwrap(), 1.0);
    assert!(Metric::Auc.check(&o).is_err());
    assert!(Metric::R2.check(&o).is_err());
    assert!(Metric::R2.check(&Objective::custom(HalfMse)).is_ok());
}
