//! The cross layers against hand-computed values, and the checks the rec models' tests share.
use super::*;
use crate::models::rec::{DcnConfig, DcnV2Config, GdcnConfig};
use crate::models::tabular::embeddings::TabEmbedConfig;
use crate::models::tabular::testing::meta;
use crate::models::tabular::testing::{assert_config_error, check_embed_then_forward, fixed_input};
use crate::models::{ComponentConfig, ContNorm, TabModelConfig};
use std::ops::DerefMut;
use tch::Device;

/// Overwrites `t` with `values` (row-major, `t`'s shape).
fn set(t: &Tensor, values: &[f64]) {
    let mut t = t.shallow_clone();
    tch::no_grad(|| {
        t.copy_(&Tensor::from_slice(values).view(t.size().as_slice()));
    });
}

/// `[rows.len(), d]` f64.
fn rows(rows: &[&[f64]]) -> Tensor {
    let d = rows[0].len() as i64;
    Tensor::from_slice(&rows.concat()).view([-1, d])
}

fn assert_close(got: &Tensor, expected: &[&[f64]]) {
    let expected = rows(expected);
    assert!(
        got.allclose(&expected, 1e-6, 1e-6, false),
        "got {got:?}, expected {expected:?}"
    );
}

/// Layers built under a fresh f64 `VarStore`, each `(path, d) → layer`.
fn layers<L>(n: usize, d: i64, make: impl Fn(&nn::Path, i64) -> L) -> (nn::VarStore, Vec<L>) {
    let _rng = crate::torch_rng_lock();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let layers = (0..n)
        .map(|i| make(&(vs.root() / format!("layer_{i}")), d))
        .collect();
    vs.double();
    (vs, layers)
}

#[test]
fn dcn_layers_match_hand_computed_values() {
    let (_vs, l) = layers(2, 2, DcnCross::new);
    set(&l[0].w, &[0.5, -1.0]);
    set(&l[0].b, &[0.1, 0.2]);
    set(&l[1].w, &[1.0, 1.0]);
    set(&l[1].b, &[0.0, 0.0]);
    let x0 = rows(&[&[1.0, 2.0], &[0.0, 1.0]]);
    // row 1: x0·w0 = 0.5 − 2 = −1.5, x1 = −1.5 x0 + b0 + x0 = (−0.4, −0.8);
    //        x1·w1 = −1.2, x2 = −1.2 x0 + x1 = (−1.6, −3.2)
    // row 2: x0·w0 = −1, x1 = (0, −1) + (0.1, 0.2) + (0, 1) = (0.1, 0.2);
    //        x1·w1 = 0.3, x2 = (0, 0.3) + (0.1, 0.2) = (0.1, 0.5)
    assert_close(
        &l[0].forward_t(&x0, &x0, false),
        &[&[-0.4, -0.8], &[0.1, 0.2]],
    );
    assert_close(&cross_stack(&l, &x0, false), &[&[-1.6, -3.2], &[0.1, 0.5]]);
}

#[test]
fn dcnv2_full_rank_layer_is_the_papers_formula() {
    let (_vs, l) = layers(1, 2, |p, d| DcnV2Cross::new(p, d, None, 1, 0.0));
    let Experts::Full(w) = &l[0].experts else {
        panic!("full rank")
    };
    assert!(l[0].gate.is_none());
    set(w, &[1.0, 2.0, 0.0, -1.0]);
    set(&l[0].b, &[0.5, 0.0]);
    let x = rows(&[&[1.0, 2.0], &[-1.0, 1.0]]);
    // x0 ⊙ (W x + b) + x: row 1: W x = (5, −2), + b = (5.5, −2), ⊙ x0 = (5.5, −4), + x = (6.5, −2)
    // row 2: W x = (1, −1), + b = (1.5, −1), ⊙ x0 = (−1.5, −1), + x = (−2.5, 0).
    // (The reference's x0 ⊙ (x ⊙ W x) + b + x would give (6.5, −6) and (0.5, 0).)
    assert_close(&cross_stack(&l, &x, false), &[&[6.5, -2.0], &[-2.5, 0.0]]);
}

#[test]
fn dcnv2_full_rank_experts_are_mixed_by_the_softmax_gate() {
    let (_vs, l) = layers(1, 2, |p, d| DcnV2Cross::new(p, d, None, 2, 0.0));
    let Experts::Full(w) = &l[0].experts else {
        panic!("full rank")
    };
    // W_1 = [[1, 2], [0, −1]], W_2 = I; gate logits = x (identity, no bias)
    set(w, &[1.0, 2.0, 0.0, -1.0, 1.0, 0.0, 0.0, 1.0]);
    set(&l[0].b, &[0.5, 0.0]);
    let gate = l[0].gate.as_ref().unwrap();
    set(&gate.ws, &[1.0, 0.0, 0.0, 1.0]);
    set(gate.bs.as_ref().unwrap(), &[0.0, 0.0]);
    let x = rows(&[&[1.0, 2.0], &[-1.0, 1.0]]);
    // row 1: G = softmax(1, 2) = (0.2689414, 0.7310586); G_1 (5, −2) + G_2 (1, 2) =
    // (2.0757657, 0.9242343); + b, ⊙ x0, + x = (3.5757657, 3.8484686)
    // row 2: G = softmax(−1, 1) = (0.1192029, 0.8807971); G_1 (1, −1) + G_2 (−1, 1) =
    // (−0.7615942, 0.7615942); + b = (−0.2615942, 0.7615942), ⊙ x0, + x
    assert_close(
        &cross_stack(&l, &x, false),
        &[&[3.5757657, 3.8484686], &[-0.7384058, 1.7615942]],
    );
}

#[test]
fn dcnv2_low_rank_mixture_of_experts_matches_hand_computed_values() {
    let (_vs, l) = layers(1, 3, |p, d| DcnV2Cross::new(p, d, Some(2), 2, 0.0));
    let Experts::LowRank { u, c, v } = &l[0].experts else {
        panic!("low rank")
    };
    // expert 1: V = [[1, 0, 1], [0, 1, 0]], C = [[1, 0], [1, −1]], U = [[1, 0], [0, 1], [1, 1]]
    // expert 2: V = [[−1, 0, 0], [0, 0, 1]], C = [[0, 1], [1, −1]], U = [[1, 1], [0, 1], [−1, 0]]
    set(v, &[1., 0., 1., 0., 1., 0., -1., 0., 0., 0., 0., 1.]);
    set(c, &[1., 0., 1., -1., 0., 1., 1., -1.]);
    set(u, &[1., 0., 0., 1., 1., 1., 1., 1., 0., 1., -1., 0.]);
    set(&l[0].b, &[0.0, 1.0, -1.0]);
    let gate = l[0].gate.as_ref().unwrap();
    set(&gate.ws, &[1., 0., 0., 0., 0., 0.]);
    set(gate.bs.as_ref().unwrap(), &[0.0, 0.0]);
    let x = rows(&[&[1.0, -1.0, 2.0], &[2.0, 1.0, -1.0]]);
    // row 1: expert 1: V x = (3, −1) → ReLU (3, 0) → C (3, 3) → ReLU → U (3, 3, 6);
    //        expert 2: V x = (−1, 2) → (0, 2) → C (2, −2) → ReLU (2, 0) → U (2, 0, −2);
    //        G = softmax(1, 0) = (0.7310586, 0.2689414); mixed (2.7310586, 2.1931757,
    //        3.8484686); + b = (2.7310586, 3.1931757, 2.8484686); ⊙ x0; + x
    // row 2: expert 1: V x = (1, 1) → C (1, 0) → U (1, 0, 1); expert 2: V x = (−2, −1) → 0;
    //        G = softmax(2, 0) = (0.8807971, 0.1192029); mixed (0.8807971, 0, 0.8807971);
    //        + b = (0.8807971, 1, −0.1192029); ⊙ x0 = (1.7615942, 1, 0.1192029); + x
    assert_close(
        &cross_stack(&l, &x, false),
        &[
            &[3.7310586, -4.1931757, 7.6969373],
            &[3.7615942, 2.0, -0.8807971],
        ],
    );
}

#[test]
fn dcnv2_expert_dropout_applies_in_training_only() {
    let (_vs, l) = layers(1, 4, |p, d| DcnV2Cross::new(p, d, Some(2), 3, 0.5));
    let x = Tensor::randn([16, 4], (Kind::Double, Device::Cpu));
    let eval = cross_stack(&l, &x, false);
    assert!(eval.allclose(&cross_stack(&l, &x, false), 0.0, 0.0, false));
    assert!(!eval.allclose(&cross_stack(&l, &x, true), 1e-6, 1e-6, false));
}

#[test]
fn gdcn_layers_match_hand_computed_values() {
    let (_vs, l) = layers(2, 2, GatedCross::new);
    set(&l[0].wc, &[1.0, 0.0, 1.0, 1.0]);
    set(&l[0].wg, &[0.0, 0.0, 0.0, 1.0]);
    set(&l[0].b, &[0.0, 1.0]);
    set(&l[1].wc, &[0.0, 1.0, -1.0, 0.0]);
    set(&l[1].wg, &[1.0, 0.0, 0.0, 0.0]);
    set(&l[1].b, &[1.0, 0.0]);
    let c0 = rows(&[&[1.0, 2.0], &[-1.0, 0.5]]);
    // row 1, layer 1: W_c c + b = (1, 3) + (0, 1) = (1, 4); σ(W_g c) = (σ(0), σ(2)) =
    // (0.5, 0.8807971); c1 = c0 ⊙ (1, 4) ⊙ (0.5, 0.8807971) + c0 = (1.5, 9.0463766)
    // row 2, layer 1: W_c c + b = (−1, 0.5); σ(W_g c) = (0.5, σ(0.5)); c1 = (−0.5, 0.6556148)
    assert_close(
        &l[0].forward_t(&c0, &c0, false),
        &[&[1.5, 9.0463766], &[-0.5, 0.6556148]],
    );
    // layer 2 reads c1 and multiplies by c0: row 1: W_c c1 + b = (9.0463766 + 1, −1.5),
    // σ(W_g c1) = (σ(1.5), 0.5); c2 = c0 ⊙ … + c1
    assert_close(
        &cross_stack(&l, &c0, false),
        &[&[9.7136611, 7.5463766], &[-1.1250619, 0.7806148]],
    );
}

/// `cfg`'s JSON round trip through [`TabModelConfig`], tagged with its name.
pub(crate) fn json_round_trip<C: ComponentConfig + Into<TabModelConfig>>(cfg: C) {
    let model: TabModelConfig = cfg.into();
    let json = serde_json::to_string(&model).unwrap();
    assert!(
        json.contains(&format!(r#""model":"{}""#, C::NAME)),
        "{json}"
    );
    assert_eq!(
        serde_json::from_str::<TabModelConfig>(&json).unwrap(),
        model
    );
}

/// Builds a cross model from `cfg` (on `meta()`: embeddings 3 + 2 wide, 2 continuous columns,
/// `x_0` 7 wide) and checks the output width, the forward shapes, the embedding split
/// (`forward_embedded ∘ embed == forward`) and the JSON round trip.
fn check_cross_model<C>(cfg: C, out_dim: i64) -> C::Component
where
    C: ComponentConfig + Clone + Into<TabModelConfig>,
{
    let m = {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        cfg.build(&vs.root()).unwrap()
    };
    let x = fixed_input(4);
    m.check_input(&x).unwrap();
    assert_eq!(m.output_dim(), out_dim);
    assert_eq!(m.forward_t(&x, true).size(), [4, out_dim]);
    check_embed_then_forward(&m, &x);
    json_round_trip(cfg);
    m
}

/// In parallel, the first `d` output columns of a cross model are the cross network's output
/// on the concatenated embeddings.
fn check_parallel_cross_part<L: CrossLayer>(m: &CrossDeep<L>) {
    let x = fixed_input(4);
    let x0 = Tensor::cat(&m.embed(&x).unwrap(), 1);
    let cross = cross_stack(m.layers(), &x0, false);
    let out = m.forward_t(&x, false);
    assert!(out.narrow(1, 0, 7).allclose(&cross, 1e-6, 1e-6, false));
}

#[test]
fn the_deep_part_joins_as_its_structure_says() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let mlp = MlpConfig::default().hidden_dims([3]).dropout(0.0);
    let part = |structure, name: &str| {
        let path = vs.root() / name;
        DeepPart::new(&path, "t", &mlp, structure, false, (4, 6)).unwrap()
    };
    let (stacked, parallel) = (
        part(Structure::Stacked, "s"),
        part(Structure::Parallel, "p"),
    );
    assert_eq!((stacked.output_dim(), parallel.output_dim()), (3, 7));
    let a = Tensor::randn([2, 4], (Kind::Float, Device::Cpu));
    let raw = Tensor::randn([2, 6], (Kind::Float, Device::Cpu));
    let s = stacked.forward_t(a.shallow_clone(), &raw, false);
    assert!(s.equal(&stacked.mlp.forward_t(&a, false)));
    let p = parallel.forward_t(a.shallow_clone(), &raw, false);
    assert!(p.narrow(1, 0, 4).equal(&a));
    assert!(p
        .narrow(1, 4, 3)
        .equal(&parallel.mlp.forward_t(&raw, false)));
}

/// The errors every cross model shares, from a valid `cfg` named `name`: no layers
/// (`{name}.{layers_field}`, set by `layers`), a bad MLP dropout (`{name}.mlp.dropout`), a
/// bad embedding dropout (`{name}.embed_dropout`), no columns (`{name}`); then `extra`
/// configs with the field each must name.
fn check_field_errors<C>(
    cfg: C,
    (layers_field, layers): (&str, impl Fn(C, i64) -> C),
    mlp: impl Fn(C, MlpConfig) -> C,
    extra: Vec<(C, &str)>,
) where
    C: ComponentConfig + Clone + DerefMut<Target = TabEmbedConfig>,
{
    let name = C::NAME;
    let mut no_columns = cfg.clone();
    no_columns.cat_embed.clear();
    no_columns.cont_cols.clear();
    let mut bad_embed = cfg.clone();
    bad_embed.embed_dropout = -0.5;
    let mut cases = vec![
        (layers(cfg.clone(), 0), format!("{name}.{layers_field}")),
        (
            mlp(cfg.clone(), MlpConfig::default().dropout(1.0)),
            format!("{name}.mlp.dropout"),
        ),
        (bad_embed, format!("{name}.embed_dropout")),
        (no_columns, name.to_string()),
    ];
    cases.extend(extra.into_iter().map(|(c, f)| (c, f.to_string())));
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    assert!(cfg.build(&vs.root()).is_ok());
    for (c, field) in cases {
        assert_config_error(c.build(&vs.root()), &field);
    }
}

/// A small MLP for the model tests.
fn small_mlp() -> MlpConfig {
    MlpConfig::default().hidden_dims([6, 5])
}

#[test]
fn dcn_output_is_the_cross_network_beside_the_mlp() {
    let small = || DcnConfig::from_meta(&meta()).mlp(small_mlp());
    check_cross_model(small().cont_norm(ContNorm::BatchNorm), 7 + 5);
    let m = check_cross_model(small().n_cross_layers(2), 7 + 5);
    assert_eq!(m.0.layers().len(), 2);
    check_parallel_cross_part(&m.0);
    let layers = ("n_cross_layers", DcnConfig::n_cross_layers);
    check_field_errors(small(), layers, DcnConfig::mlp, vec![]);
    let cfg: DcnConfig = serde_json::from_str(r#"{"cont_cols": ["x"]}"#).unwrap();
    assert_eq!((cfg.n_cross_layers, cfg.cont_cols.len()), (3, 1));
    assert_eq!(cfg.mlp, MlpConfig::default());
}

#[test]
fn dcnv2_output_widths_for_each_structure_rank_and_expert_count() {
    let small = || DcnV2Config::from_meta(&meta()).mlp(small_mlp());
    for (rank, experts) in [(None, 1), (None, 2), (Some(3), 1), (Some(2), 4)] {
        let cfg = small().low_rank(rank).num_experts(experts);
        let m = check_cross_model(cfg.clone(), 7 + 5);
        check_parallel_cross_part(&m.0);
        let stacked = cfg.structure(Structure::Stacked).expert_dropout(0.2);
        check_cross_model(stacked.cont_norm(ContNorm::LayerNorm), 5);
    }
    let extra = vec![
        (small().low_rank(Some(0)), "dcnv2.low_rank"),
        (small().num_experts(0), "dcnv2.num_experts"),
        (small().expert_dropout(1.0), "dcnv2.expert_dropout"),
    ];
    let layers = ("num_cross_layers", DcnV2Config::num_cross_layers);
    check_field_errors(small(), layers, DcnV2Config::mlp, extra);
    let cfg: DcnV2Config = serde_json::from_str(r#"{"low_rank": 4}"#).unwrap();
    assert_eq!((cfg.low_rank, cfg.num_experts), (Some(4), 2));
    assert_eq!(
        (cfg.num_cross_layers, cfg.structure),
        (2, Structure::Parallel)
    );
    let json = serde_json::to_string(&small().structure(Structure::Stacked)).unwrap();
    assert!(json.contains(r#""structure":"stacked""#), "{json}");
}

#[test]
fn gdcn_output_widths_for_each_structure() {
    let small = || GdcnConfig::from_meta(&meta()).mlp(small_mlp());
    let m = check_cross_model(small(), 7 + 5);
    assert_eq!(m.0.layers().len(), 3);
    check_parallel_cross_part(&m.0);
    let stacked = small().structure(Structure::Stacked).num_cross_layers(1);
    check_cross_model(stacked.embed_dropout(0.1), 5);
    let layers = ("num_cross_layers", GdcnConfig::num_cross_layers);
    check_field_errors(small(), layers, GdcnConfig::mlp, vec![]);
    let cfg: GdcnConfig = serde_json::from_str(r#"{"structure": "stacked"}"#).unwrap();
    assert_eq!(
        (cfg.num_cross_layers, cfg.structure),
        (3, Structure::Stacked)
    );
}
