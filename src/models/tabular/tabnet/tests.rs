//! TabNet's unit tests: the mask functions, ghost batch norm, the model and its config.
use super::glu::GhostBatchNorm;
use super::sparsemax::{
    cpu_thresholds, entmax15_support, entmax15_tau, sparsemax_support, sparsemax_tau,
};
use super::*;
use crate::models::tabular::testing::{check_embed_then_forward, meta};
use crate::models::{Component, ComponentConfig, ContNorm, ModelInput};
use crate::WideDeepError;
use tch::{nn, Device, Kind, Tensor};

fn t(rows: &[&[f64]]) -> Tensor {
    let d = rows[0].len() as i64;
    let flat: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_slice(&flat).view([rows.len() as i64, d])
}

fn close(a: &Tensor, b: &Tensor, tol: f64) -> bool {
    let diff = (a - b).abs().max().double_value(&[]);
    if diff > tol {
        eprintln!("{a} vs {b}");
    }
    diff <= tol
}

#[test]
fn sparsemax_by_hand() {
    // [1, 0.5, -1]: support {1, 0.5}, τ = (1.5 - 1) / 2 = 0.25 → [0.75, 0.25, 0].
    // [0, 0, 0]: uniform. [3, 0, 0]: τ = 2 → [1, 0, 0]. [0.1, 0.2, 0.3, 0.4]: all in the
    // support, τ = (1 - 1) / 4 = 0 → the input itself.
    let z = t(&[
        &[1.0, 0.5, -1.0, -2.0],
        &[0.0, 0.0, 0.0, 0.0],
        &[3.0, 0.0, 0.0, -1.0],
        &[0.1, 0.2, 0.3, 0.4],
    ]);
    let expected = t(&[
        &[0.75, 0.25, 0.0, 0.0],
        &[0.25, 0.25, 0.25, 0.25],
        &[1.0, 0.0, 0.0, 0.0],
        &[0.1, 0.2, 0.3, 0.4],
    ]);
    assert!(close(&sparsemax(&z), &expected, 1e-12));
    // Shift invariance and f32.
    let shifted = sparsemax(&(z.to_kind(Kind::Float) + 100.0));
    assert!(close(&shifted.to_kind(Kind::Double), &expected, 1e-5));
}

#[test]
fn entmax15_by_hand() {
    // [1, 0.5, -1] / 2 = [0.5, 0.25, -0.5]: with support {0.5, 0.25} and t = 0.5 - τ,
    // t² + (t - 0.25)² = 1 → t = (0.5 + sqrt(7.75)) / 4; -0.5 is below τ.
    let tt = (0.5 + 7.75f64.sqrt()) / 4.0;
    let z = t(&[&[1.0, 0.5, -1.0], &[0.0, 0.0, 0.0], &[4.0, 0.0, 0.0]]);
    // [0, 0, 0]: 3 (0 - τ)² = 1 → 1/3 each. [4, 0, 0] / 2 = [2, 0, 0]: τ = 1 → [1, 0, 0].
    let third = 1.0 / 3.0;
    let expected = t(&[
        &[tt * tt, (tt - 0.25) * (tt - 0.25), 0.0],
        &[third, third, third],
        &[1.0, 0.0, 0.0],
    ]);
    assert!(close(&entmax15(&z), &expected, 1e-12));
}

#[test]
fn cpu_and_tensor_supports_agree() {
    let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
    for kind in [Kind::Float, Kind::Double] {
        for scale in [0.1, 1.0, 5.0] {
            let z = Tensor::randn([200, 37], (kind, Device::Cpu)) * scale;
            let tau = cpu_thresholds(&z, 1.0, sparsemax_tau).unwrap();
            assert!(
                z.gt_tensor(&tau).equal(&sparsemax_support(&z)),
                "{kind:?} {scale}"
            );
            let x = &z / 2.0;
            let tau = cpu_thresholds(&z, 0.5, entmax15_tau).unwrap();
            let diff = x
                .gt_tensor(&tau)
                .logical_xor(&entmax15_support(&x))
                .sum(Kind::Int64)
                .int64_value(&[]);
            // The tensor path stops within a tolerance; at most a boundary entry differs.
            assert!(diff <= 2, "{kind:?} {scale}: {diff}");
        }
    }
}

#[test]
fn masks_are_distributions_for_random_rows() {
    let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
    let z = Tensor::randn([64, 9], (Kind::Double, Device::Cpu)) * 3.0;
    for m in [sparsemax(&z), entmax15(&z)] {
        assert!(m.min().double_value(&[]) >= 0.0);
        let sums = m.sum_dim_intlist(1, false, Kind::Double);
        assert!(close(
            &sums,
            &Tensor::ones([64], (Kind::Double, Device::Cpu)),
            1e-9
        ));
    }
    // sparsemax is sparse: at 3σ logits most rows drop some entries.
    let zeros = sparsemax(&z).eq(0.0).sum(Kind::Int64).int64_value(&[]);
    assert!(zeros > 64, "{zeros}");
}

/// Jacobian of `f` at `z` (one row) by central differences.
fn numeric_jacobian(f: fn(&Tensor) -> Tensor, z: &[f64]) -> Vec<Vec<f64>> {
    let h = 1e-6;
    (0..z.len())
        .map(|j| {
            let mut plus = z.to_vec();
            let mut minus = z.to_vec();
            plus[j] += h;
            minus[j] -= h;
            let fp = Vec::<f64>::try_from(f(&t(&[&plus])).view([-1])).unwrap();
            let fm = Vec::<f64>::try_from(f(&t(&[&minus])).view([-1])).unwrap();
            fp.iter()
                .zip(fm)
                .map(|(a, b)| (a - b) / (2.0 * h))
                .collect()
        })
        .collect()
}

fn autograd_jacobian(f: fn(&Tensor) -> Tensor, z: &[f64]) -> Vec<Vec<f64>> {
    (0..z.len())
        .map(|j| {
            let x = t(&[z]).set_requires_grad(true);
            let y = f(&x);
            let w = Tensor::zeros([1, z.len() as i64], (Kind::Double, Device::Cpu));
            let _ = w.get(0).get(j as i64).fill_(1.0);
            (y * w).sum(Kind::Double).backward();
            Vec::<f64>::try_from(x.grad().view([-1])).unwrap() // d y_j / d z_i over i
        })
        .collect()
}

#[test]
fn gradients_match_finite_differences() {
    for z in [
        vec![1.0, 0.5, -1.0, 0.2],
        vec![0.3, 0.1, 0.25, -0.4],
        vec![2.0, -1.0, 1.7, 1.5],
    ] {
        for f in [sparsemax as fn(&Tensor) -> Tensor, entmax15] {
            let num = numeric_jacobian(f, &z); // num[i][j] = d y_j / d z_i
            let auto = autograd_jacobian(f, &z); // auto[j][i] = d y_j / d z_i
            for (i, row) in num.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    assert!(
                        (v - auto[j][i]).abs() < 1e-5,
                        "{z:?}: d y{j}/d z{i}: numeric {v}, autograd {}",
                        auto[j][i]
                    );
                }
            }
        }
    }
    // sparsemax's Jacobian is diag(s) - s sᵀ / |S|: for [1, 0.5, -1] (|S| = 2) the block on
    // the support is [[0.5, -0.5], [-0.5, 0.5]], zero elsewhere.
    let auto = autograd_jacobian(sparsemax, &[1.0, 0.5, -1.0]);
    let expected = [[0.5, -0.5, 0.0], [-0.5, 0.5, 0.0], [0.0, 0.0, 0.0]];
    for (a, e) in auto.iter().zip(expected) {
        for (x, y) in a.iter().zip(e) {
            assert!((x - y).abs() < 1e-12, "{auto:?}");
        }
    }
}

fn input(n: i64) -> ModelInput {
    let cat = Tensor::randint(3, [n, 2], (Kind::Int64, Device::Cpu));
    ModelInput {
        cat: Some(cat),
        cont: Some(Tensor::randn([n, 2], (Kind::Float, Device::Cpu))),
        ..Default::default()
    }
}

#[test]
fn forward_shapes_for_several_configs() {
    let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
    let base = TabNetConfig::from_meta(&meta());
    let cases = [
        base.clone(),
        base.clone()
            .n_steps(1)
            .step_dim(4)
            .attn_dim(2)
            .mask_type(MaskType::Entmax15),
        base.clone()
            .n_glu_shared(0)
            .n_glu_step_dependent(1)
            .ghost_bn(false),
        base.clone()
            .n_glu_shared(3)
            .n_glu_step_dependent(0)
            .virtual_batch_size(7),
        base.clone()
            .dropout(0.2)
            .embed_dropout(0.1)
            .cont_norm(ContNorm::BatchNorm)
            .gamma(1.0),
    ];
    for cfg in cases {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = cfg.build(&vs.root()).unwrap();
        let x = input(20);
        m.check_input(&x).unwrap();
        for train in [true, false] {
            let (y, aux) = m.forward_aux(&x, train);
            assert_eq!(y.size(), [20, cfg.step_dim], "{cfg:?}");
            assert!(aux.unwrap().double_value(&[]) >= 0.0);
            let masks = m.last_masks().unwrap();
            assert_eq!(masks.len(), cfg.n_steps);
            for mask in masks {
                assert_eq!(mask.size(), [20, 4]);
                let sums = mask.sum_dim_intlist(1, false, Kind::Float);
                assert!(close(&sums, &sums.ones_like(), 1e-5));
            }
        }
        assert_eq!(m.output_dim(), cfg.step_dim);
        assert_eq!(m.attention_weights().unwrap().len(), cfg.n_steps);
    }
}

#[test]
fn ghost_batch_norm_uses_chunk_statistics() {
    let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
    let vs = nn::VarStore::new(Device::Cpu);
    let bn = GhostBatchNorm::new(&vs.root(), 2, 0.1, Some(4));
    // 10 rows, chunks of ceil(10 / 3) = 4: rows 0..4, 4..8, 8..10, each standardised alone.
    let x = Tensor::randn([10, 2], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
    let y = bn.forward_t(&x, true);
    let mut rm = Tensor::zeros([2], (Kind::Float, Device::Cpu));
    let mut rv = Tensor::ones([2], (Kind::Float, Device::Cpu));
    for (start, len) in [(0, 4), (4, 4), (8, 2)] {
        let c = x.narrow(0, start, len);
        let mean = c.mean_dim(0, true, Kind::Float);
        let var = c.var_dim(0, false, true);
        let expected = (&c - &mean) / (var + 1e-5).sqrt();
        assert!(close(&y.narrow(0, start, len), &expected, 1e-4));
        rm = rm * 0.9 + mean.view([2]) * 0.1;
        rv = rv * 0.9 + c.var_dim(0, true, false) * 0.1;
    }
    assert!(close(&bn.running_mean, &rm, 1e-5));
    assert!(close(&bn.running_var, &rv, 1e-5));
    // Evaluation: running statistics, no chunking.
    let e = bn.forward_t(&x, false);
    assert!(close(&e, &((&x - &rm) / (&rv + 1e-5).sqrt()), 1e-4));
}

#[test]
fn sparsity_loss_is_the_weighted_mask_entropy() {
    let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
    let vs = nn::VarStore::new(Device::Cpu);
    let m = TabNetConfig::from_meta(&meta())
        .lambda_sparse(0.5)
        .build(&vs.root())
        .unwrap();
    let x = input(16);
    let (_, aux) = m.forward_aux(&x, false);
    let masks: Vec<Tensor> = m
        .last_masks
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.shallow_clone())
        .collect();
    let entropy: f64 = masks
        .iter()
        .map(|mk| {
            (-(mk * (mk + 1e-15).log()).sum_dim_intlist(1, false, Kind::Float))
                .mean(Kind::Float)
                .double_value(&[])
        })
        .sum::<f64>()
        / 3.0;
    let aux = aux.unwrap().double_value(&[]);
    assert!((aux - 0.5 * entropy).abs() < 1e-5, "{aux} vs {entropy}");
    assert!(aux > 0.0);
    // lambda 0: no auxiliary loss.
    let vs = nn::VarStore::new(Device::Cpu);
    let m0 = TabNetConfig::from_meta(&meta())
        .lambda_sparse(0.0)
        .build(&vs.root())
        .unwrap();
    assert!(m0.forward_aux(&x, true).1.is_none());
}

#[test]
fn importance_sums_to_one_and_explain_matches() {
    let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
    let vs = nn::VarStore::new(Device::Cpu);
    let m = TabNetConfig::from_meta(&meta()).build(&vs.root()).unwrap();
    let x = input(50);
    let imp = m.feature_importance(&x).unwrap().unwrap();
    assert_eq!(imp.len(), 4);
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(imp.iter().all(|&v| v >= 0.0));
    let (rows, masks) = m.explain(&x).unwrap();
    assert_eq!(rows.size(), [50, 4]);
    assert_eq!(masks.len(), 3);
    // The global importance is the normalised column sum of the unnormalised per-row
    // aggregate; rebuild it from the masks and decision outputs by hand.
    let emb = m.embed.forward_t(&x, false);
    let enc = m.encode(&emb, None, false, false, true);
    let agg = m
        .to_columns(&enc.explain.unwrap())
        .sum_dim_intlist(0, false, Kind::Double);
    let agg = &agg / agg.sum(Kind::Double);
    let expected = Vec::<f64>::try_from(agg).unwrap();
    for (a, b) in imp.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-6, "{imp:?} vs {expected:?}");
    }
    // Embedding dims map back to columns: column a spans 3 dims, b 2, x and y 1 each.
    let raw = &enc.masks[0];
    let cols = m.to_columns(raw);
    let a = raw.narrow(1, 0, 3).sum_dim_intlist(1, false, Kind::Float);
    assert!(close(&cols.select(1, 0), &a, 1e-6));
    assert!(close(&cols.select(1, 3), &raw.select(1, 6), 1e-6));
    let bad = ModelInput {
        cat: Some(Tensor::from_slice(&[9i64, 1]).view([1, 2])),
        cont: Some(Tensor::zeros([1, 2], (Kind::Float, Device::Cpu))),
        ..Default::default()
    };
    assert!(m.feature_importance(&bad).unwrap().is_err());
}

#[test]
fn embed_then_forward_embedded_equals_forward() {
    let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
    let vs = nn::VarStore::new(Device::Cpu);
    let m = TabNetConfig::from_meta(&meta())
        .cont_norm(ContNorm::BatchNorm)
        .mask_type(MaskType::Entmax15)
        .build(&vs.root())
        .unwrap();
    check_embed_then_forward(&m, &input(8));
}

#[test]
fn shared_layers_are_shared() {
    let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
    let vs = nn::VarStore::new(Device::Cpu);
    let _m = TabNetConfig::from_meta(&meta())
        .n_steps(2)
        .build(&vs.root())
        .unwrap();
    let vars = vs.variables();
    // 2 shared linear layers for the splitter and both steps; 2 step-specific per transformer.
    assert_eq!(vars.keys().filter(|k| k.starts_with("shared.")).count(), 2);
    assert_eq!(vars["shared.fc_0.weight"].size(), [32, 7]);
    assert_eq!(vars["shared.fc_1.weight"].size(), [32, 16]);
    assert!(vars.contains_key("step_1.feat.fc_1.weight"));
    assert!(vars.contains_key("splitter.shared_bn_0.running_mean"));
    assert_eq!(vars["step_0.attn_fc.weight"].size(), [7, 8]);
}

#[test]
fn invalid_configs_are_typed_errors_naming_the_field() {
    let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
    let vs = nn::VarStore::new(Device::Cpu);
    let base = TabNetConfig::from_meta(&meta());
    let cases = [
        (base.clone().n_steps(0), "tab_net.n_steps"),
        (base.clone().step_dim(0), "tab_net.step_dim"),
        (base.clone().attn_dim(-1), "tab_net.attn_dim"),
        (
            base.clone().virtual_batch_size(0),
            "tab_net.virtual_batch_size",
        ),
        (base.clone().momentum(0.0), "tab_net.momentum"),
        (base.clone().momentum(1.5), "tab_net.momentum"),
        (base.clone().gamma(0.9), "tab_net.gamma"),
        (base.clone().epsilon(0.0), "tab_net.epsilon"),
        (base.clone().lambda_sparse(-1.0), "tab_net.lambda_sparse"),
        (
            base.clone().lambda_sparse(f64::NAN),
            "tab_net.lambda_sparse",
        ),
        (base.clone().dropout(1.0), "tab_net.dropout"),
        (base.clone().embed_dropout(2.0), "tab_net.embed_dropout"),
        (
            base.clone().n_glu_shared(0).n_glu_step_dependent(0),
            "tab_net.n_glu_shared",
        ),
    ];
    for (cfg, field) in cases {
        match cfg.build(&vs.root()).unwrap_err() {
            WideDeepError::InvalidConfig { field: f, .. } => assert_eq!(f, field),
            e => panic!("{e}"),
        }
    }
}

#[test]
fn config_round_trips_through_json() {
    let cfg = TabNetConfig::from_meta(&meta()).mask_type(MaskType::Entmax15);
    let json = serde_json::to_string(&cfg).unwrap();
    assert_eq!(serde_json::from_str::<TabNetConfig>(&json).unwrap(), cfg);
    let old: TabNetConfig =
        serde_json::from_str(r#"{"cont_cols": ["x"], "mask_type": "entmax"}"#).unwrap();
    assert_eq!(old.mask_type, MaskType::Entmax15);
    assert_eq!(old.n_steps, 3);
}
