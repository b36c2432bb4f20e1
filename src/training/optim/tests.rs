//! Tests of the optimizers: PyTorch's values, state round trips, validation.
use super::*;
use tch::{Kind, Tensor};

/// Float tensor helper for tests and callers: a copy of `t` as `Vec<f64>`.
fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

/// Runs `steps` steps of `opt` on the fixed problem of `tests/fixtures/optim_reference.py`:
/// parameters w (2×3) and b (3), loss = sum((x·w + b)²·c) with fixed x, c; returns the final
/// w and b flattened.
fn run(opt: Optimizer, lr: f64, wd: f64, steps: usize) -> Vec<f64> {
    run_in(opt, lr, wd, steps, Kind::Float)
}

/// [`run`] in `kind` (f32 takes the one-pass host kernels, f64 the tensor ops).
fn run_in(opt: Optimizer, lr: f64, wd: f64, steps: usize, kind: Kind) -> Vec<f64> {
    let w = Tensor::from_slice(&[0.5f32, -0.3, 0.8, 0.1, -0.7, 0.2])
        .view([2, 3])
        .to_kind(kind)
        .set_requires_grad(true);
    let b = Tensor::from_slice(&[0.05f32, -0.1, 0.2])
        .to_kind(kind)
        .set_requires_grad(true);
    let x = Tensor::from_slice(&[1.0f32, 2.0, -1.5, 0.5, 0.3, -0.8, 2.0, 1.0])
        .view([4, 2])
        .to_kind(kind);
    let c = Tensor::from_slice(&[1.0f32, 0.5, 2.0]).to_kind(kind);
    let mut group = ParamGroup::new(
        "g",
        opt,
        lr,
        wd,
        vec![
            ("w".into(), w.shallow_clone()),
            ("b".into(), b.shallow_clone()),
        ],
    );
    for _ in 0..steps {
        group.zero_grad();
        let y = x.matmul(&w) + &b;
        let loss = (&y * &y * &c).sum(kind);
        loss.backward();
        group.step();
    }
    let mut v = values(&w);
    v.extend(values(&b));
    v
}

/// (name, optimizer, lr, weight_decay, final [w, b]) from `tests/fixtures/optim_reference.py`.
#[allow(clippy::type_complexity)]
fn reference_cases() -> Vec<(&'static str, Optimizer, f64, f64, Vec<f64>)> {
    vec![
        (
            "adam",
            Optimizer::adam(),
            0.1,
            0.0,
            vec![
                0.058698080480098724,
                0.14670345187187195,
                0.3215077817440033,
                -0.2019386738538742,
                -0.2329910546541214,
                -0.24173294007778168,
                -0.18492178618907928,
                0.331905722618103,
                -0.22915303707122803,
            ],
        ),
        (
            "adam_wd_amsgrad",
            Optimizer::Adam(AdamConfig {
                amsgrad: true,
                betas: (0.8, 0.99),
                eps: 1e-6,
            }),
            0.05,
            0.1,
            vec![
                0.26165854930877686,
                -0.06025363504886627,
                0.5555116534233093,
                -0.11750321835279465,
                -0.45735642313957214,
                -0.039110634475946426,
                -0.1531456708908081,
                0.1377282440662384,
                -0.03751014545559883,
            ],
        ),
        (
            "adamw",
            Optimizer::adamw(),
            0.1,
            0.01,
            vec![
                0.05748362839221954,
                0.14691275358200073,
                0.31869471073150635,
                -0.20121386647224426,
                -0.23072372376918793,
                -0.24143150448799133,
                -0.1840733140707016,
                0.33108681440353394,
                -0.22882921993732452,
            ],
        ),
        (
            "adamw_amsgrad",
            Optimizer::AdamW(AdamConfig {
                amsgrad: true,
                ..Default::default()
            }),
            0.1,
            0.05,
            vec![
                0.05273114889860153,
                0.14769293367862701,
                0.307586669921875,
                -0.1983083188533783,
                -0.22177788615226746,
                -0.240205317735672,
                -0.1807093769311905,
                0.327812135219574,
                -0.2275157868862152,
            ],
        ),
        (
            "sgd",
            Optimizer::sgd(0.0),
            0.01,
            0.0,
            vec![
                0.22061379253864288,
                -0.12372560054063797,
                0.14739030599594116,
                -0.030906619504094124,
                -0.4822298288345337,
                -0.09518216550350189,
                -0.027730194851756096,
                0.01133238896727562,
                -0.0070753032341599464,
            ],
        ),
        (
            "sgd_momentum_wd_dampening",
            Optimizer::Sgd(SgdConfig {
                momentum: 0.9,
                dampening: 0.1,
                nesterov: false,
            }),
            0.01,
            0.05,
            vec![
                -0.14137130975723267,
                0.11830313503742218,
                -0.4726281464099884,
                -0.1867820769548416,
                -0.1773567646741867,
                -0.2658236026763916,
                -0.1183461844921112,
                0.16378368437290192,
                -0.1378147453069687,
            ],
        ),
        (
            "sgd_nesterov",
            Optimizer::Sgd(SgdConfig {
                momentum: 0.8,
                dampening: 0.0,
                nesterov: true,
            }),
            0.01,
            0.0,
            vec![
                -0.047371990978717804,
                0.09289655834436417,
                -0.09569539874792099,
                -0.10110373795032501,
                -0.1874363124370575,
                -0.005769648589193821,
                -0.061770349740982056,
                0.14840282499790192,
                0.02590400166809559,
            ],
        ),
        (
            "rmsprop",
            Optimizer::rmsprop(),
            0.01,
            0.0,
            vec![
                0.24188506603240967,
                -0.04198989272117615,
                0.5142738223075867,
                -0.07984521239995956,
                -0.42539647221565247,
                -0.054196905344724655,
                -0.08811116218566895,
                0.14744026958942413,
                -0.04565449804067612,
            ],
        ),
        (
            "rmsprop_centered_momentum_wd",
            Optimizer::RmsProp(RmsPropConfig {
                alpha: 0.9,
                eps: 1e-6,
                momentum: 0.5,
                centered: true,
            }),
            0.01,
            0.1,
            vec![
                0.31591737270355225,
                -0.11433284729719162,
                0.6072980165481567,
                -0.06329093873500824,
                -0.5101884603500366,
                0.015196399763226509,
                -0.10195716470479965,
                0.0830223560333252,
                0.017251303419470787,
            ],
        ),
        (
            "adagrad",
            Optimizer::adagrad(),
            0.1,
            0.0,
            vec![
                0.24291646480560303,
                -0.04295593127608299,
                0.5154456496238708,
                -0.07962258160114288,
                -0.4264986217021942,
                -0.0532662570476532,
                -0.08839397132396698,
                0.14657697081565857,
                -0.04480758681893349,
            ],
        ),
        (
            "adagrad_decay_init_wd",
            Optimizer::Adagrad(AdagradConfig {
                lr_decay: 0.1,
                initial_accumulator_value: 0.5,
                eps: 1e-10,
            }),
            0.1,
            0.05,
            vec![
                0.2668613791465759,
                -0.06704525649547577,
                0.5455864667892456,
                -0.07413454353809357,
                -0.454586386680603,
                -0.031623777002096176,
                -0.09060268104076385,
                0.12254591286182404,
                -0.025311844423413277,
            ],
        ),
    ]
}

fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 2e-6 * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, PyTorch {w}\n{got:?}"
        );
    }
}

#[test]
fn optimizers_match_pytorch() {
    // expected values: `python tests/fixtures/optim_reference.py` (torch 2.11.0, float32)
    for (name, opt, lr, wd, want) in reference_cases() {
        close(&run(opt, lr, wd, 5), &want, name);
    }
}

#[test]
fn one_pass_adam_agrees_with_the_tensor_op_path() {
    for (name, opt, lr, wd, _) in reference_cases() {
        if !matches!(opt, Optimizer::Adam(_) | Optimizer::AdamW(_)) {
            continue;
        }
        let fused = run_in(opt, lr, wd, 20, Kind::Float);
        let ops = run_in(opt, lr, wd, 20, Kind::Double);
        close(&fused, &ops, name);
    }
}

#[test]
fn frozen_and_gradless_parameters_are_skipped() {
    let a = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
    let frozen = Tensor::from_slice(&[3.0f32]).set_requires_grad(true);
    let unused = Tensor::from_slice(&[4.0f32]).set_requires_grad(true);
    let mut g = ParamGroup::new(
        "g",
        Optimizer::adam(),
        0.1,
        0.0,
        vec![
            ("a".into(), a.shallow_clone()),
            ("frozen".into(), frozen.shallow_clone()),
            ("unused".into(), unused.shallow_clone()),
        ],
    );
    let loss = (&a * &a).sum(Kind::Float) + (&frozen * 2.0).sum(Kind::Float);
    loss.backward();
    let _ = frozen.shallow_clone().set_requires_grad(false);
    g.step();
    assert_eq!(values(&frozen), vec![3.0]);
    assert_eq!(values(&unused), vec![4.0]);
    assert_ne!(values(&a), vec![1.0, 2.0]);
    let opts = Optimizers::new(vec![g]);
    let (meta, tensors) = opts.state();
    assert_eq!(meta.steps.keys().collect::<Vec<_>>(), vec!["a"]);
    assert_eq!(tensors.len(), 2);
}

#[test]
fn state_round_trips() {
    let mk = || {
        let p = Tensor::from_slice(&[1.0f32, -2.0, 0.5]).set_requires_grad(true);
        let g = ParamGroup::new(
            "g",
            Optimizer::Adam(AdamConfig {
                amsgrad: true,
                ..Default::default()
            }),
            0.05,
            0.01,
            vec![("p".into(), p.shallow_clone())],
        );
        (p, Optimizers::new(vec![g]))
    };
    let step = |p: &Tensor, o: &mut Optimizers| {
        o.zero_grad();
        (p * p * p).sum(Kind::Float).backward();
        o.step();
    };
    let (p1, mut o1) = mk();
    for _ in 0..4 {
        step(&p1, &mut o1);
    }
    let (p2, mut o2) = mk();
    for _ in 0..2 {
        step(&p2, &mut o2);
    }
    let (meta, tensors) = o2.state();
    let (p3, mut o3) = mk();
    tch::no_grad(|| p3.shallow_clone().copy_(&p2));
    o3.load_state(&meta, &tensors).unwrap();
    for _ in 0..2 {
        step(&p3, &mut o3);
    }
    assert!(p1.equal(&p3), "{:?} vs {:?}", values(&p1), values(&p3));

    let wrong = vec![(
        "p/momentum_buffer".to_string(),
        Tensor::zeros([3], tch::kind::FLOAT_CPU),
    )];
    assert!(o3.load_state(&meta, &wrong).is_err());
    let wrong = vec![(
        "p/exp_avg".to_string(),
        Tensor::zeros([4], tch::kind::FLOAT_CPU),
    )];
    assert!(o3.load_state(&meta, &wrong).is_err());
}

#[test]
fn validate_names_fields() {
    let e = Optimizer::sgd(1.5).validate("optimizer").unwrap_err();
    assert!(e.to_string().contains("optimizer.momentum"), "{e}");
    let e = Optimizer::Sgd(SgdConfig {
        nesterov: true,
        ..Default::default()
    })
    .validate("x")
    .unwrap_err();
    assert!(e.to_string().contains("x.nesterov"), "{e}");
    assert!(Optimizer::adamw().validate("o").is_ok());
    let json = serde_json::to_string(&Optimizer::sgd(0.9)).unwrap();
    assert_eq!(
        serde_json::from_str::<Optimizer>(&json).unwrap(),
        Optimizer::sgd(0.9)
    );
    assert_eq!(
        serde_json::from_str::<Optimizer>(r#"{"name":"adamw"}"#).unwrap(),
        Optimizer::adamw()
    );
}
