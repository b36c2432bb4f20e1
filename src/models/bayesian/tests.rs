use super::*;
use crate::error::WideDeepError;
use crate::models::tabular::testing::{fixed_input, meta};
use crate::models::ModelInput;
use tch::{Device, Kind};

fn vec(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap()
}

/// Sets `w`'s posterior to the given means and `ρ`.
fn set(w: &GaussianWeight, mu: &[f32], rho: &[f32]) {
    tch::no_grad(|| {
        let shape = w.mu().size();
        w.mu()
            .shallow_clone()
            .copy_(&Tensor::from_slice(mu).view(shape.as_slice()));
        w.rho()
            .shallow_clone()
            .copy_(&Tensor::from_slice(rho).view(shape.as_slice()));
    });
}

fn softplus(r: f64) -> f64 {
    (1.0 + r.exp()).ln()
}

/// log N(x; 0, s²)
fn log_normal(x: f64, s: f64) -> f64 {
    -0.5 * (2.0 * std::f64::consts::PI).ln() - s.ln() - x * x / (2.0 * s * s)
}

#[test]
fn kl_of_a_fixed_layer_matches_the_hand_computed_estimate() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let prior = BayesianPrior::default();
    let layer = BayesianLinear::new(&vs.root(), 3, 2, true, &prior, "layer").unwrap();
    let mu = [0.5f32, -0.3, 0.0, 1.2, -2.0, 0.1];
    let rho = [-1.0f32, 0.0, 0.5, -3.0, -0.2, 1.0];
    set(layer.weight(), &mu, &rho);
    set(layer.bias().unwrap(), &[0.2, -0.4], &[-0.5, 0.3]);
    tch::manual_seed(3);
    let mut kl = KlSum::new();
    let w = layer.weight().draw(WeightMode::SampleWithKl, &mut kl);
    let b = layer
        .bias()
        .unwrap()
        .draw(WeightMode::SampleWithKl, &mut kl);
    let got = kl.total().unwrap().double_value(&[]);
    // by hand, from the sampled values: Σ log N(w; μ, σ²) − log(π N(w; 0, σ₁²) + (1 − π) N(w; 0, σ₂²))
    let mut want = 0.0;
    for (ws, mus, rhos) in [
        (vec(&w), mu.to_vec(), rho.to_vec()),
        (vec(&b), vec![0.2, -0.4], vec![-0.5, 0.3]),
    ] {
        for ((w, m), r) in ws.iter().zip(mus).zip(rhos) {
            let sigma = softplus(r as f64);
            let log_q = log_normal(w - m as f64, sigma);
            let log_p = (0.8 * log_normal(*w, 1.0).exp() + 0.2 * log_normal(*w, 0.002).exp()).ln();
            want += log_q - log_p;
        }
    }
    assert!(
        (got - want).abs() < 1e-4 * want.abs().max(1.0),
        "{got} vs {want}"
    );
    // log_posterior agrees with the fused log q of the estimate
    let lq: f64 = vec(&w)
        .iter()
        .zip(mu)
        .zip(rho)
        .map(|((w, m), r)| log_normal(w - m as f64, softplus(r as f64)))
        .sum();
    let lp = layer.weight().log_posterior(&w).double_value(&[]);
    assert!((lq - lp).abs() < 1e-4, "{lq} vs {lp}");
}

#[test]
fn kl_estimate_averages_to_the_closed_form_for_a_gaussian_prior() {
    // prior_pi = 1: a single Gaussian N(0, σ₁²), whose KL to N(μ, σ²) is
    // log(σ₁/σ) + (σ² + μ²) / (2 σ₁²) − ½ per weight
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let prior = BayesianPrior::default().prior_pi(1.0).prior_sigma_1(0.7);
    let emb = BayesianEmbedding::new(&vs.root(), 4, 2, None, &prior, "emb").unwrap();
    let mu = [0.5f32, -0.3, 0.0, 1.2, -2.0, 0.1, 0.3, 0.9];
    let rho = [-1.0f32, 0.0, 0.5, -3.0, -0.2, 1.0, -0.7, 0.2];
    set(emb.weight(), &mu, &rho);
    let closed: f64 = mu
        .iter()
        .zip(rho)
        .map(|(&m, r)| {
            let (m, s, s1) = (m as f64, softplus(r as f64), 0.7);
            (s1 / s).ln() + (s * s + m * m) / (2.0 * s1 * s1) - 0.5
        })
        .sum();
    tch::manual_seed(0);
    let n = 20_000;
    let mut total = 0.0;
    let mut sq = 0.0;
    tch::no_grad(|| {
        for _ in 0..n {
            let mut kl = KlSum::new();
            let idx = Tensor::from_slice(&[0i64, 3]);
            let _ = emb.forward(&idx, WeightMode::SampleWithKl, &mut kl);
            let v = kl.total().unwrap().double_value(&[]);
            total += v;
            sq += v * v;
        }
    });
    let mean = total / n as f64;
    let se = ((sq / n as f64 - mean * mean) / n as f64).sqrt();
    assert!(
        (mean - closed).abs() < 4.0 * se + 1e-3,
        "Monte-Carlo KL {mean} ± {se} vs closed form {closed}"
    );
}

#[test]
fn mixture_log_prior_is_stable_where_the_direct_formula_underflows() {
    let prior = BayesianPrior::default();
    let w = Tensor::from_slice(&[0.0f32, 0.001, -0.5, 3.0]);
    let got = prior.log_prior(&w).double_value(&[]);
    let want: f64 = [0.0f64, 0.001, -0.5, 3.0]
        .iter()
        .map(|&x| (0.8 * log_normal(x, 1.0).exp() + 0.2 * log_normal(x, 0.002).exp()).ln())
        .sum();
    assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    // far out, both densities underflow in f32: the log-sum-exp stays finite
    let far = prior.log_prior(&Tensor::from_slice(&[60.0f32]));
    let v = far.double_value(&[]);
    assert!(v.is_finite() && (v - (0.8f64.ln() + log_normal(60.0, 1.0))).abs() < 1e-2);
}

#[test]
fn mean_mode_is_deterministic_and_sampling_varies_with_sigma() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let prior = BayesianPrior::default().posterior_rho_init(-1.0);
    let layer = BayesianLinear::new(&vs.root(), 4, 3, true, &prior, "l").unwrap();
    let x = Tensor::randn([5, 4], (Kind::Float, Device::Cpu));
    let mut kl = KlSum::new();
    let a = layer.forward(&x, WeightMode::Mean, &mut kl);
    let b = layer.forward(&x, WeightMode::Mean, &mut kl);
    assert!(kl.total().is_none(), "no KL term in mean mode");
    assert!(a.equal(&b));
    let mut kl = KlSum::new();
    let s1 = layer.forward(&x, WeightMode::Sample, &mut kl);
    let s2 = layer.forward(&x, WeightMode::Sample, &mut kl);
    assert!(kl.total().is_none(), "no KL term without SampleWithKl");
    assert_eq!(s1.size(), [5, 3]);
    assert!((s1 - s2).abs().max().double_value(&[]) > 1e-3);
}

#[test]
fn padding_row_gets_no_data_gradient() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let emb =
        BayesianEmbedding::new(&vs.root(), 3, 2, Some(0), &BayesianPrior::default(), "e").unwrap();
    let mut kl = KlSum::new();
    let y = emb.forward(
        &Tensor::from_slice(&[0i64, 2, 2]),
        WeightMode::Sample,
        &mut kl,
    );
    assert_eq!(y.size(), [3, 2]);
    y.sum(Kind::Float).backward();
    let g = emb.weight().mu().grad();
    assert_eq!(g.get(0).abs().sum(Kind::Float).double_value(&[]), 0.0);
    assert_eq!(g.get(2).sum(Kind::Float).double_value(&[]), 4.0);
}

#[test]
fn models_have_the_reference_shapes() {
    let m = meta();
    let cfg = BayesianModelConfig::new(BayesianTabMlpConfig::from_meta(&m).hidden_dims([8, 4]))
        .pred_dim(3);
    let model = BayesianModel::new(&cfg, Device::Cpu).unwrap();
    let x = fixed_input(4);
    model.check_input(&x).unwrap();
    let (y, kl) = model.forward(&x, WeightMode::SampleWithKl, true);
    assert_eq!(y.size(), [4, 3]);
    assert!(kl.unwrap().double_value(&[]).is_finite());
    let BayesianNet::TabMlp(net) = model.net() else {
        panic!("a TabMlp")
    };
    let widths: Vec<(i64, i64)> = net
        .layers()
        .iter()
        .map(|l| (l.in_features(), l.out_features()))
        .collect();
    let input: i64 = m.cat.iter().map(|c| c.embed_dim as i64).sum::<i64>() + m.cont.len() as i64;
    assert_eq!(widths, [(input, 8), (8, 4), (4, 3)]);
    // every Gaussian weight has μ and ρ: 2 × (Σ tables + dense weights and biases)
    let tables: i64 = m
        .cat
        .iter()
        .map(|c| (c.cardinality * c.embed_dim) as i64)
        .sum();
    let dense = input * 8 + 8 + 8 * 4 + 4 + 4 * 3 + 3;
    assert_eq!(model.n_parameters(), 2 * (tables + dense));

    let wide = BayesianModel::new(
        &BayesianModelConfig::new(BayesianWideConfig::new(6)),
        Device::Cpu,
    )
    .unwrap();
    let input = ModelInput {
        wide: Some(Tensor::from_slice(&[1i64, 6, 0, 3]).view([2, 2])),
        ..Default::default()
    };
    wide.check_input(&input).unwrap();
    let (y, _) = wide.forward(&input, WeightMode::Mean, false);
    assert_eq!(y.size(), [2, 1]);
    let bad = ModelInput {
        wide: Some(Tensor::from_slice(&[7i64]).view([1, 1])),
        ..Default::default()
    };
    assert!(matches!(
        wide.check_input(&bad),
        Err(WideDeepError::InputMismatch { .. })
    ));
}

#[test]
fn seeded_builds_are_reproducible_and_configs_round_trip() {
    let cfg = BayesianModelConfig::new(BayesianTabMlpConfig::from_meta(&meta())).seed(7);
    let a = BayesianModel::new(&cfg, Device::Cpu).unwrap();
    let b = BayesianModel::new(&cfg, Device::Cpu).unwrap();
    let x = fixed_input(4);
    assert!(a
        .forward(&x, WeightMode::Mean, false)
        .0
        .equal(&b.forward(&x, WeightMode::Mean, false).0));
    let json = serde_json::to_string(&cfg).unwrap();
    assert!(json.contains("\"model\":\"bayesian_tab_mlp\"") && json.contains("prior_sigma_2"));
    let back: BayesianModelConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn bad_configs_are_typed_errors_naming_the_field() {
    let field = |r: crate::error::Result<BayesianModel>| match r {
        Err(WideDeepError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let tab = || BayesianTabMlpConfig::from_meta(&meta());
    let build = |c: BayesianModelConfig| BayesianModel::new(&c, Device::Cpu);
    let cases = [
        (
            BayesianModelConfig::new(tab().prior(BayesianPrior::default().prior_sigma_1(0.0))),
            "bayesian_tab_mlp.prior_sigma_1",
        ),
        (
            BayesianModelConfig::new(tab().prior(BayesianPrior::default().prior_sigma_2(f64::NAN))),
            "bayesian_tab_mlp.prior_sigma_2",
        ),
        (
            BayesianModelConfig::new(tab().prior(BayesianPrior::default().prior_pi(1.5))),
            "bayesian_tab_mlp.prior_pi",
        ),
        (
            BayesianModelConfig::new(
                tab().prior(BayesianPrior::default().posterior_rho_init(f64::INFINITY)),
            ),
            "bayesian_tab_mlp.posterior_rho_init",
        ),
        (
            BayesianModelConfig::new(tab().hidden_dims([4, 0])),
            "bayesian_tab_mlp.hidden_dims[1]",
        ),
        (
            BayesianModelConfig::new(BayesianWideConfig::new(0)),
            "bayesian_wide.wide_dim",
        ),
        (BayesianModelConfig::new(tab()).pred_dim(0), "pred_dim"),
    ];
    for (cfg, want) in cases {
        assert_eq!(field(build(cfg)), want);
    }
    let vs = nn::VarStore::new(Device::Cpu);
    let e = BayesianEmbedding::new(&vs.root(), 3, 2, Some(3), &BayesianPrior::default(), "e");
    assert!(e.unwrap_err().to_string().contains("e.padding_idx"));
}
