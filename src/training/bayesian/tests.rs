use super::*;
use crate::models::bayesian::{BayesianModelConfig, BayesianWideConfig};
use crate::models::ModelInput;
use tch::Device;

fn wide_data(n: i64) -> Dataset {
    let wide = Tensor::arange(n * 2, (Kind::Int64, Device::Cpu)).remainder(6) + 1;
    let target = Tensor::arange(n, (Kind::Float, Device::Cpu)).remainder(2);
    Dataset::new(
        ModelInput {
            wide: Some(wide.view([n, 2])),
            ..Default::default()
        },
        Some(target),
    )
    .unwrap()
}

fn wide_trainer(config: BayesianTrainerConfig) -> BayesianTrainer {
    let model = BayesianModel::new(
        &BayesianModelConfig::new(BayesianWideConfig::new(6)),
        Device::Cpu,
    )
    .unwrap();
    BayesianTrainer::new(model, config).unwrap()
}

#[test]
fn summed_losses_are_the_reference_ones() {
    let out = Tensor::from_slice(&[0.3f32, -1.2, 2.0]).view([3, 1]);
    let y = Tensor::from_slice(&[1.0f32, 0.0, 0.5]);
    let reg = summed_loss(&Objective::Regression, &out, &y).double_value(&[]);
    let want: f64 = [(0.3, 1.0), (-1.2, 0.0), (2.0, 0.5)]
        .iter()
        .map(|(p, t): &(f64, f64)| 0.5 * (p - t) * (p - t))
        .sum();
    assert!((reg - want).abs() < 1e-5);
    let yb = Tensor::from_slice(&[1.0f32, 0.0, 1.0]);
    let bin = summed_loss(&Objective::Binary, &out, &yb).double_value(&[]);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let want = -(sig(0.3).ln() + (1.0 - sig(-1.2)).ln() + sig(2.0).ln());
    assert!((bin - want).abs() < 1e-5, "{bin} vs {want}");
}

#[test]
fn the_elbo_is_the_data_loss_of_the_mean_output_plus_the_scaled_kl_sum() {
    let t = wide_trainer(BayesianTrainerConfig::new(Objective::Binary).n_train_samples(3));
    let data = wide_data(8);
    let _rng = crate::torch_rng_lock(); // after the build, which takes it itself
    tch::manual_seed(5);
    let (loss, kl, out) = t.elbo(&data, 4, 3);
    // the same draws by hand: three sampled networks, in order
    tch::manual_seed(5);
    let mut outs = Vec::new();
    let mut kls = 0.0;
    for _ in 0..3 {
        let (o, k) = t
            .model()
            .forward(&data.input, WeightMode::SampleWithKl, true);
        outs.push(o);
        kls += k.unwrap().double_value(&[]);
    }
    let mean = Tensor::stack(&outs, 0).mean_dim(0, false, Kind::Float);
    assert!(out.allclose(&mean, 1e-6, 1e-6, false));
    let data_loss = summed_loss(&Objective::Binary, &mean, data.target.as_ref().unwrap());
    let want = data_loss.double_value(&[]) + kls / 4.0;
    assert!((loss.double_value(&[]) - want).abs() < 1e-3 * want.abs());
    assert!((kl - kls).abs() < 1e-3 * kls.abs());
}

#[test]
fn predictions_are_reproducible_and_independent_of_the_batch_size() {
    let data = wide_data(10);
    let mut t = wide_trainer(
        BayesianTrainerConfig::new(Objective::Binary)
            .epochs(2)
            .verbose(0),
    );
    t.fit(&data, None).unwrap();
    let a = t.predict_samples(&data, 4).unwrap();
    assert_eq!(a.size(), [4, 10, 2]);
    assert!(a.equal(&t.predict_samples(&data, 4).unwrap()));
    t.config.eval_batch_size = 3;
    assert!(a.equal(&t.predict_samples(&data, 4).unwrap()));
    let u = t.predict_uncertainty(&data, 4).unwrap();
    assert!(u
        .mean
        .allclose(&a.mean_dim(0, false, Kind::Float), 1e-5, 1e-6, false));
    assert!(u.std.min().double_value(&[]) >= 0.0);
    let err = t.predict_uncertainty(&data, 0).unwrap_err();
    assert!(err.to_string().contains("n_samples"), "{err}");
}

#[test]
fn bad_settings_are_typed_errors_naming_the_field() {
    let field = |c: BayesianTrainerConfig| match c.validate() {
        Err(crate::error::WideDeepError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let base = BayesianTrainerConfig::new(Objective::Binary);
    assert_eq!(field(base.clone().n_train_samples(0)), "n_train_samples");
    assert_eq!(field(base.clone().n_val_samples(0)), "n_val_samples");
    assert_eq!(field(base.clone().lr(-1.0)), "lr");
    assert_eq!(field(base.clone().batch_size(0)), "batch_size");
    assert_eq!(field(base.clone().val_split(1.5)), "val_split");
    assert_eq!(field(base.clone().objective(Objective::Mae)), "objective");
    // a width set by hand that the objective contradicts
    let model = BayesianModel::new(
        &BayesianModelConfig::new(BayesianWideConfig::new(6)).pred_dim(2),
        Device::Cpu,
    )
    .unwrap();
    let err = BayesianTrainer::new(model, base).unwrap_err().to_string();
    assert!(err.contains("pred_dim"), "{err}");
}
