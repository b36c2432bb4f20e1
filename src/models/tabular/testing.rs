//! Shared fixtures and checks for the tabular models' unit tests.
use crate::models::{Component, ModelInput};
use tch::{Device, Kind, Tensor};
use widedeep_preprocessing::{CatColumnMeta, TabMeta};

/// Two categorical columns, `a` (cardinality 4, width 3) and `b` (cardinality 3, width 2),
/// and two continuous ones, `x` and `y`.
pub fn meta() -> TabMeta {
    TabMeta {
        cat: vec![
            CatColumnMeta {
                name: "a".into(),
                cardinality: 4,
                embed_dim: 3,
            },
            CatColumnMeta {
                name: "b".into(),
                cardinality: 3,
                embed_dim: 2,
            },
        ],
        cont: vec!["x".into(), "y".into()],
    }
}

/// `n` rows of `meta()`-shaped input (indices cycle through each column's range).
pub fn input(n: i64) -> ModelInput {
    let cat: Vec<i64> = (0..n).flat_map(|i| [i % 4, (i + 1) % 3]).collect();
    ModelInput {
        cat: Some(Tensor::from_slice(&cat).view([n, 2])),
        cont: Some(Tensor::randn([n, 2], (Kind::Float, Device::Cpu))),
        ..Default::default()
    }
}

/// `n ≤ 4` rows of `meta()`-shaped input with fixed indices (`[1, 2]`, `[3, 0]`, `[0, 1]`,
/// `[2, 2]`) and random continuous values.
pub fn fixed_input(n: i64) -> ModelInput {
    let cat = Tensor::from_slice(&[1i64, 2, 3, 0, 0, 1, 2, 2])
        .view([4, 2])
        .narrow(0, 0, n);
    ModelInput {
        cat: Some(cat),
        cont: Some(Tensor::randn([n, 2], (Kind::Float, Device::Cpu))),
        ..Default::default()
    }
}

/// On `meta()`-shaped input `x`: `embed` gives one part per column (`[batch, 3]`, `[batch, 2]`,
/// `[batch, 1]`, `[batch, 1]`) named `a`, `b`, `x`, `y`, and `forward_embedded ∘ embed` equals
/// `forward` in evaluation mode.
pub fn check_embed_then_forward(m: &dyn Component, x: &ModelInput) {
    let n = x.batch_size();
    let parts = m.embed(x).unwrap();
    let shapes: Vec<Vec<i64>> = parts.iter().map(|p| p.size()).collect();
    assert_eq!(shapes, vec![vec![n, 3], vec![n, 2], vec![n, 1], vec![n, 1]]);
    assert_eq!(m.feature_names(), vec!["a", "b", "x", "y"]);
    let direct = m.forward_t(x, false);
    let split = m.forward_embedded(&parts, false).unwrap();
    assert!(direct.allclose(&split, 1e-6, 1e-6, false));
}

/// Forward shapes, `forward_embedded ∘ embed == forward`, attention weight distributions and
/// a feature importance that sums to 1.
pub fn check_component(m: &dyn Component, out_dim: i64, embed_widths: &[i64]) {
    let x = input(6);
    m.check_input(&x).unwrap();
    assert_eq!(m.output_dim(), out_dim);
    assert_eq!(m.forward_t(&x, true).size(), [6, out_dim]);
    let eval = m.forward_t(&x, false);
    assert_eq!(eval.size(), [6, out_dim]);
    let parts = m.embed(&x).expect("embed");
    let widths: Vec<i64> = parts.iter().map(|p| p.size()[1]).collect();
    assert_eq!(widths, embed_widths);
    assert_eq!(m.feature_names(), ["a", "b", "x", "y"]);
    let split = m.forward_embedded(&parts, false).expect("forward_embedded");
    assert!(
        eval.allclose(&split, 1e-5, 1e-5, false),
        "forward_embedded ∘ embed differs from forward"
    );
    let weights = m.attention_weights().expect("attention weights");
    assert!(!weights.is_empty());
    for w in &weights {
        assert_eq!(
            w.size()[0],
            if w.dim() == 4 && w.size()[0] == 1 {
                1
            } else {
                6
            }
        );
        let sums = w.sum_dim_intlist(-1, false, Kind::Float);
        assert!(
            sums.allclose(&Tensor::ones_like(&sums), 1e-4, 1e-4, false),
            "attention rows must sum to 1: {:?}",
            w.size()
        );
    }
    let imp = m
        .feature_importance(&input(37))
        .expect("importance")
        .unwrap();
    assert_eq!(imp.len(), 4);
    assert!(imp.iter().all(|&v| v >= 0.0), "{imp:?}");
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{imp:?}");
}

/// The `InvalidConfig` message of a failed build must name `field`.
pub fn assert_config_error<T: std::fmt::Debug>(r: crate::Result<T>, field: &str) {
    match r {
        Err(crate::WideDeepError::InvalidConfig { field: f, reason }) => {
            assert_eq!(f, field, "reason: {reason}")
        }
        other => panic!("expected InvalidConfig for `{field}`, got {other:?}"),
    }
}
