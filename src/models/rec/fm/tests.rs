//! The factorization machines (DeepFM, DeepFFM, xDeepFM): hand-computed values of the FM term,
//! the field-aware pairs and the CIN layers on fixed weights, shapes, the embedding split,
//! validation errors and JSON.
use super::*;
use crate::models::rec::cross::tests::json_round_trip;
use crate::models::rec::{DeepFfmConfig, DeepFmConfig, XDeepFmConfig};
use crate::models::tabular::testing::{assert_config_error, input, meta};
use crate::models::{AttnEmbedConfig, ComponentConfig, ContEmbed, ContNorm, TabModelConfig};
use tch::{Device, Kind};
use widedeep_preprocessing::TabMeta;

/// Overwrites `t` with `values` (row-major, `t`'s shape).
fn set(t: &Tensor, values: &[f32]) {
    let mut t = t.shallow_clone();
    tch::no_grad(|| {
        t.copy_(&Tensor::from_slice(values).view(t.size().as_slice()));
    });
}

/// `[rows.len(), w]` f32.
fn rows(rows: &[&[f32]]) -> Tensor {
    let w = rows[0].len() as i64;
    Tensor::from_slice(&rows.concat()).view([-1, w])
}

fn assert_close(got: &Tensor, expected: &[&[f32]]) {
    let expected = rows(expected);
    assert!(
        got.allclose(&expected, 1e-6, 1e-6, false),
        "got {got:?}, expected {expected:?}"
    );
}

/// `cfg` built under a fresh `VarStore` (returned with it, for the weights).
fn build<C: ComponentConfig>(cfg: &C) -> (nn::VarStore, C::Component) {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let m = cfg.build(&vs.root()).unwrap();
    (vs, m)
}

/// Columns `a` (cardinality 4) and `b` (cardinality 3) and, with `cont`, the continuous `x`.
fn columns(cont: bool) -> TabMeta {
    let mut m = meta();
    m.cont = if cont { vec!["x".into()] } else { vec![] };
    m
}

/// Rows `(a, b, x)`: `(1, 2, x0)`, `(3, 0, x1)`.
fn two_rows(x: Option<[f32; 2]>) -> ModelInput {
    ModelInput {
        cat: Some(Tensor::from_slice(&[1i64, 2, 3, 0]).view([2, 2])),
        cont: x.map(|x| Tensor::from_slice(&x).view([2, 1])),
        ..Default::default()
    }
}

/// On `meta()`-shaped input: the check passes, the output has `out_dim` columns in both
/// modes, `embed` gives one part per column of the given widths, named `a, b, x, y`, and
/// `forward_embedded ∘ embed == forward` in evaluation mode.
fn check_fm_component(m: &dyn Component, out_dim: i64, widths: &[i64]) {
    let x = input(6);
    m.check_input(&x).unwrap();
    assert_eq!(m.output_dim(), out_dim);
    assert_eq!(m.forward_t(&x, true).size(), [6, out_dim]);
    let eval = m.forward_t(&x, false);
    assert_eq!(eval.size(), [6, out_dim]);
    let parts = m.embed(&x).unwrap();
    let got: Vec<i64> = parts.iter().map(|p| p.size()[1]).collect();
    assert_eq!(got, widths);
    assert_eq!(m.feature_names(), ["a", "b", "x", "y"]);
    let split = m.forward_embedded(&parts, false).unwrap();
    assert!(eval.allclose(&split, 1e-5, 1e-5, false));
    // a bad index is an input error, not a panic
    let bad = ModelInput {
        cat: Some(Tensor::from_slice(&[9i64, 0]).view([1, 2])),
        cont: Some(Tensor::zeros([1, 2], (Kind::Float, Device::Cpu))),
        ..Default::default()
    };
    assert!(matches!(
        m.check_input(&bad),
        Err(crate::WideDeepError::InputMismatch { .. })
    ));
}

#[test]
fn factorization_machine_is_the_sum_of_the_pairwise_products() {
    // row 1: e0 = (1, 2), e1 = (3, −1), e2 = (0.5, 1): e0⊙e1 = (3, −2), e0⊙e2 = (0.5, 2),
    //        e1⊙e2 = (1.5, −1), sum (5, −1), reduced 4
    // row 2: three tokens (1, 0): three pairs (1, 0), sum (3, 0), reduced 3
    let x =
        Tensor::from_slice(&[1.0f32, 2., 3., -1., 0.5, 1., 1., 0., 1., 0., 1., 0.]).view([2, 3, 2]);
    assert_close(&factorization_machine(&x, false), &[&[5., -1.], &[3., 0.]]);
    assert_close(&factorization_machine(&x, true), &[&[4.], &[3.]]);
}

/// DeepFM on `a`, `b`, `x` with tokens of width 2 and fixed embeddings: value rows
/// `a = 1 → (1, 2)`, `a = 3 → (2, 1)`, `b = 2 → (0.5, −1)` (the shared table: `a`'s values at
/// rows 1–3, `b`'s at 4–5), `x → x·(1, −1) + (0, 0.5)`.
fn fixed_deepfm(cfg: DeepFmConfig) -> (nn::VarStore, crate::models::rec::DeepFm) {
    let (vs, m) = build(&cfg.input_dim(2));
    let vars = vs.variables();
    let table = [0., 0., 1., 2., 0., 0., 2., 1., 0., 0., 0.5, -1.];
    set(&vars["embed.cat.table.weight"], &table);
    set(&vars["embed.cont.weight"], &[1., -1.]);
    set(&vars["embed.cont.bias"], &[0., 0.5]);
    (vs, m)
}

#[test]
fn deepfm_is_the_fm_term_of_the_column_tokens() {
    // row 1: e_a = (1, 2), e_b = (0.5, −1), e_x = (1, −0.5) (x = 1): pairs a·b = (0.5, −2),
    //        a·x = (1, −1), b·x = (0.5, 0.5): per dimension (2, −2.5), reduced −0.5
    // row 2: e_a = (2, 1), e_b = 0 (unseen), e_x = (−1, 1.5) (x = −1): a·x = (−2, 1.5), −0.5
    let cfg = DeepFmConfig::from_meta(&columns(true), 2);
    let x = two_rows(Some([1.0, -1.0]));
    let (_vs, m) = fixed_deepfm(cfg.clone());
    m.check_input(&x).unwrap();
    assert_eq!(m.output_dim(), 1);
    assert_close(&m.forward_t(&x, false), &[&[-0.5], &[-0.5]]);
    let (_vs, m) = fixed_deepfm(cfg.reduce_sum(false));
    assert_eq!(m.output_dim(), 2);
    assert_close(&m.forward_t(&x, false), &[&[2., -2.5], &[-2., 1.5]]);
}

#[test]
fn deepfm_adds_the_mlp_which_ends_in_input_dim_units() {
    let x = two_rows(Some([1.0, -1.0]));
    let cfg = DeepFmConfig::from_meta(&columns(true), 2).mlp(RecMlpConfig::new([6, 5]));
    for reduce_sum in [true, false] {
        let (vs, m) = fixed_deepfm(cfg.clone().reduce_sum(reduce_sum));
        let vars = vs.variables();
        // [3 tokens · 2] → 6 → 5 → 2 (appended: the widths end in 5, not input_dim)
        assert_eq!(vars["mlp.dense_0.linear.weight"].size(), [6, 6]);
        assert_eq!(vars["mlp.dense_2.linear.weight"].size(), [2, 5]);
        // last layer: weights 0, biases 1 → ReLU(1) = 1 per unit, added to the FM term
        set(&vars["mlp.dense_2.linear.weight"], &[0.0; 10]);
        set(&vars["mlp.dense_2.linear.bias"], &[1.0, 1.0]);
        let out = m.forward_t(&x, false);
        if reduce_sum {
            assert_close(&out, &[&[1.5], &[1.5]]);
        } else {
            assert_close(&out, &[&[3., -1.5], &[-1., 2.5]]);
        }
    }
    // widths already ending in input_dim: nothing appended
    let (vs, m) = build(&cfg.clone().mlp(RecMlpConfig::new([6, 2])));
    assert!(!vs.variables().contains_key("mlp.dense_2.linear.weight"));
    assert_eq!(m.output_dim(), 1);
}

#[test]
fn deepfm_shapes_embed_split_and_options() {
    let mlp = RecMlpConfig::new([8, 4])
        .mlp_dropout(0.2)
        .mlp_batchnorm(true)
        .mlp_linear_first(true)
        .mlp_activation(crate::models::Activation::Gelu);
    let cfg = DeepFmConfig::from_meta(&meta(), 4).mlp(mlp);
    for (c, out) in [(cfg.clone(), 1), (cfg.clone().reduce_sum(false), 4)] {
        let (_vs, m) = build(&c);
        check_fm_component(&m, out, &[4, 4, 4, 4]);
    }
    let embed = AttnEmbedConfig::new()
        .cont_embed(ContEmbed::Periodic {
            n_frequencies: 3,
            sigma: 0.5,
            share_last_layer: false,
        })
        .cont_norm(ContNorm::BatchNorm)
        .cat_embed_dropout(0.1)
        .full_embed_dropout(true);
    let (_vs, m) = build(&DeepFmConfig::from_meta(&meta(), 3).embed(embed.clone()));
    check_fm_component(&m, 1, &[3, 3, 3, 3]);
    json_round_trip(cfg.embed(embed));
}

/// DeepFFM on `a`, `b`, `x` (`n = 3` fields, vectors of width 2): column `a`'s two vectors are
/// for fields `b`, `x`; `b`'s for `a`, `x`; `x`'s for `a`, `b`. Fixed values:
/// `a = 1 → v_{a,b} = (1, 2), v_{a,x} = (1, 1)`; `b = 2 → v_{b,a} = (3, −1), v_{b,x} = (1, 1)`;
/// `x → x·v_{x,a}, x·v_{x,b}` with `v_{x,a} = (2, 0)`, `v_{x,b} = (−1, 3)`.
fn fixed_deepffm(cfg: DeepFfmConfig) -> (nn::VarStore, crate::models::rec::DeepFfm) {
    let (vs, m) = build(&cfg.input_dim(2));
    let vars = vs.variables();
    assert_eq!(vars["embed.cat_0.weight"].size(), [4, 4]);
    let mut a = [0f32; 16];
    a[4..8].copy_from_slice(&[1., 2., 1., 1.]);
    set(&vars["embed.cat_0.weight"], &a);
    let mut b = [0f32; 12];
    b[8..12].copy_from_slice(&[3., -1., 1., 1.]);
    set(&vars["embed.cat_1.weight"], &b);
    set(&vars["embed.cont"], &[2., 0., -1., 3.]);
    (vs, m)
}

#[test]
fn deepffm_pairs_read_each_columns_vector_for_the_other_field() {
    // row 1 (a = 1, b = 2, x = 0.5): (a, b): v_{a,b} ⊙ v_{b,a} = (1, 2) ⊙ (3, −1) = (3, −2);
    //   (a, x): v_{a,x} ⊙ 0.5 v_{x,a} = (1, 1) ⊙ (1, 0) = (1, 0);
    //   (b, x): v_{b,x} ⊙ 0.5 v_{x,b} = (1, 1) ⊙ (−0.5, 1.5) = (−0.5, 1.5); sum 3.
    //   (A plain FM with one vector per column would multiply v_{a,b} by b's single vector.)
    // row 2 (a = 3, b = 0, x = 0.5): a's and b's vectors are zero (untouched rows 3 and 0
    //   of the tables are zero here), so every pair is 0
    let x = ModelInput {
        cat: Some(Tensor::from_slice(&[1i64, 2, 3, 0]).view([2, 2])),
        cont: Some(Tensor::from_slice(&[0.5f32, 0.5]).view([2, 1])),
        ..Default::default()
    };
    let cfg = DeepFfmConfig::from_meta(&columns(true), 2);
    let (_vs, m) = fixed_deepffm(cfg.clone());
    m.check_input(&x).unwrap();
    assert_eq!(m.output_dim(), 1);
    assert_close(&m.forward_t(&x, false), &[&[3.], &[0.]]);
    let (_vs, m) = fixed_deepffm(cfg.clone().reduce_sum(false));
    assert_eq!(m.output_dim(), 6);
    assert_close(
        &m.forward_t(&x, false),
        &[&[3., -2., 1., 0., -0.5, 1.5], &[0.; 6]],
    );
    // with an MLP: it reads the 3 pairs · 2 dims, its output is summed with reduce_sum
    let (vs, m) = fixed_deepffm(cfg.clone().mlp(RecMlpConfig::new([4, 3])));
    assert_eq!(vs.variables()["mlp.dense_0.linear.weight"].size(), [4, 6]);
    assert_eq!(m.forward_t(&x, false).size(), [2, 1]);
    let (_vs, m) = build(&cfg.reduce_sum(false).mlp(RecMlpConfig::new([4, 3])));
    assert_eq!(m.output_dim(), 3);
}

#[test]
fn deepffm_shapes_embed_split_and_options() {
    // 4 fields: each column has 3 vectors of width 4 (12 numbers), 6 pairs
    let cfg = DeepFfmConfig::from_meta(&meta(), 4)
        .cat_embed_dropout(0.3)
        .use_cat_bias(true)
        .cat_embed_activation(Some(crate::models::Activation::Tanh));
    let mlp = RecMlpConfig::new([5])
        .mlp_batchnorm(true)
        .mlp_batchnorm_last(true);
    let cases = [
        (cfg.clone(), 1),
        (cfg.clone().reduce_sum(false), 6 * 4),
        (cfg.clone().reduce_sum(false).mlp(mlp.clone()), 5),
        (cfg.clone().mlp(mlp), 1),
    ];
    for (c, out) in cases {
        let (_vs, m) = build(&c);
        check_fm_component(&m, out, &[12, 12, 12, 12]);
        json_round_trip(c);
    }
    // the gradient reaches the tables, the per-field biases and the continuous vectors
    let (vs, m) = build(&cfg);
    m.forward_t(&input(6), true).sum(Kind::Float).backward();
    let vars = vs.variables();
    for name in ["embed.cat_0.weight", "embed.cat_bias", "embed.cont"] {
        let g = vars[name].grad();
        assert!(
            g.defined() && g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "{name}"
        );
    }
    // categorical columns only, as the reference
    let (_vs, m) = build(&DeepFfmConfig::from_meta(&columns(false), 3));
    let x = two_rows(None);
    m.check_input(&x).unwrap();
    assert_eq!(m.forward_t(&x, false).size(), [2, 1]);
    assert_eq!(m.embed(&x).unwrap()[0].size(), [2, 3]);
}

#[test]
fn cin_layers_match_hand_computed_values() {
    // two tokens e0 = (1, 2), e1 = (3, −1); products in order (i, j) = (0,0), (0,1), (1,0),
    // (1,1): (1, 4), (3, −2), (3, −2), (9, 1)
    let x0 = Tensor::from_slice(&[1.0f32, 2., 3., -1.]).view([1, 2, 2]);
    let cfg = XDeepFmConfig::from_meta(&columns(false), 2).cin_layer_dims([1, 2]);
    let (vs, m) = build(&cfg);
    let vars = vs.variables();
    assert_eq!(vars["cin.layer_1.weight"].size(), [2, 2]);
    set(&vars["cin.layer_0.weight"], &[1., 0.5, 0., -1.]);
    set(&vars["cin.layer_0.bias"], &[0.25]);
    set(&vars["cin.layer_1.weight"], &[1., 0., 0., 1.]);
    set(&vars["cin.layer_1.bias"], &[0., 0.]);
    // layer 0: (1, 4) + 0.5 (3, −2) − (9, 1) + 0.25 = (−6.25, 2.25), pooled −4
    // layer 1 on X1 = (−6.25, 2.25): e0 ⊙ X1 = (−6.25, 4.5), e1 ⊙ X1 = (−18.75, −2.25),
    // identity weights: pooled (−1.75, −21)
    assert_close(&m.0.head.cin.forward(&x0), &[&[-4., -1.75, -21.]]);
    // the model: the CIN's output summed (no MLP)
    let x = two_rows(None);
    let tokens = m.0.embed.forward_t(&x, false).tokens;
    let expected =
        m.0.head
            .cin
            .forward(&tokens)
            .sum_dim_intlist(1, true, Kind::Float);
    assert!(m
        .forward_t(&x, false)
        .allclose(&expected, 1e-6, 1e-6, false));

    // ReLU: layer 0 → (0, 2.25), pooled 2.25; layer 1 on it: (0, 4.5) → 4.5, (0, −2.25) → 0
    let (vs, m) = build(
        &cfg.clone()
            .cin_activation(Some(crate::models::Activation::Relu)),
    );
    let vars = vs.variables();
    set(&vars["cin.layer_0.weight"], &[1., 0.5, 0., -1.]);
    set(&vars["cin.layer_0.bias"], &[0.25]);
    set(&vars["cin.layer_1.weight"], &[1., 0., 0., 1.]);
    set(&vars["cin.layer_1.bias"], &[0., 0.]);
    assert_close(&m.0.head.cin.forward(&x0), &[&[2.25, 4.5, 0.]]);

    // split half, [2, 1]: layer 0's first map (−6.25, 2.25) goes on, its second (e1 ⊙ e0 =
    // (3, −2)) is pooled to 1; layer 1 reads 2 · 1 products: e0 ⊙ map = (−6.25, 4.5) → −1.75
    let (vs, m) = build(&cfg.cin_layer_dims([2, 1]).cin_split_half(true));
    let vars = vs.variables();
    assert_eq!(vars["cin.layer_1.weight"].size(), [1, 2]);
    set(
        &vars["cin.layer_0.weight"],
        &[1., 0.5, 0., -1., 0., 0., 1., 0.],
    );
    set(&vars["cin.layer_0.bias"], &[0.25, 0.]);
    set(&vars["cin.layer_1.weight"], &[1., 0.]);
    set(&vars["cin.layer_1.bias"], &[0.]);
    assert_close(&m.0.head.cin.forward(&x0), &[&[1., -1.75]]);
}

#[test]
fn xdeepfm_shapes_mlp_and_split_half_widths() {
    let cfg = XDeepFmConfig::from_meta(&meta(), 4).cin_layer_dims([6, 4]);
    let mlp = RecMlpConfig::new([8, 3]).mlp_dropout(0.1);
    let cases = [
        (cfg.clone(), 1),
        (cfg.clone().reduce_sum(false), 10),
        (cfg.clone().mlp(mlp.clone()), 1),
        // the MLP on the CIN's 10 outputs ends in 10 units (appended) to be added to them
        (cfg.clone().reduce_sum(false).mlp(mlp.clone()), 10),
        // split half: 6/2 + 4 pooled
        (cfg.clone().cin_split_half(true).reduce_sum(false), 7),
    ];
    for (c, out) in cases {
        let (_vs, m) = build(&c);
        check_fm_component(&m, out, &[4, 4, 4, 4]);
        json_round_trip(c);
    }
    let (vs, _m) = build(&cfg.clone().reduce_sum(false).mlp(mlp));
    assert_eq!(vs.variables()["mlp.dense_2.linear.weight"].size(), [10, 3]);
    // summed with reduce_sum: the MLP keeps its widths
    let (vs, _m) = build(&cfg.mlp(RecMlpConfig::new([8, 3])));
    assert!(!vs.variables().contains_key("mlp.dense_2.linear.weight"));
}

#[test]
fn invalid_configs_name_the_field() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let none = TabMeta {
        cat: vec![],
        cont: vec![],
    };
    let mut one_value = columns(false);
    one_value.cat[0].cardinality = 1;
    let bad_mlp = [
        (RecMlpConfig::new([4]).mlp_dropout(1.0), "mlp.mlp_dropout"),
        (RecMlpConfig::new(Vec::new()), "mlp.mlp_hidden_dims"),
        (RecMlpConfig::new([4, 0]), "mlp.mlp_hidden_dims"),
    ];

    let fm = || DeepFmConfig::from_meta(&meta(), 4);
    let b = |c: DeepFmConfig| c.build(&vs.root());
    assert!(b(fm()).is_ok());
    assert_config_error(b(fm().input_dim(0)), "deepfm.input_dim");
    assert_config_error(
        b(fm().embed(AttnEmbedConfig::new().with_cls_token(true))),
        "deepfm.embed.with_cls_token",
    );
    assert_config_error(
        b(fm().embed(AttnEmbedConfig::new().cont_embed_dropout(-0.1))),
        "deepfm.embed.cont_embed_dropout",
    );
    assert_config_error(b(DeepFmConfig::from_meta(&none, 4)), "deepfm");
    assert_config_error(
        b(DeepFmConfig::from_meta(&one_value, 4)),
        "deepfm.cat_embed[a]",
    );
    for (mlp, field) in bad_mlp.clone() {
        assert_config_error(b(fm().mlp(mlp)), &format!("deepfm.{field}"));
    }

    let ffm = || DeepFfmConfig::from_meta(&meta(), 4);
    let b = |c: DeepFfmConfig| c.build(&vs.root());
    assert!(b(ffm()).is_ok());
    assert_config_error(b(ffm().input_dim(0)), "deepffm.input_dim");
    assert_config_error(b(ffm().cat_embed_dropout(1.0)), "deepffm.cat_embed_dropout");
    assert_config_error(b(DeepFfmConfig::from_meta(&none, 4)), "deepffm");
    let single = TabMeta {
        cat: vec![],
        cont: vec!["x".into()],
    };
    assert_config_error(b(DeepFfmConfig::from_meta(&single, 4)), "deepffm");
    assert_config_error(
        b(DeepFfmConfig::from_meta(&one_value, 4)),
        "deepffm.cat_embed[a]",
    );
    for (mlp, field) in bad_mlp.clone() {
        assert_config_error(b(ffm().mlp(mlp)), &format!("deepffm.{field}"));
    }

    let xfm = || XDeepFmConfig::from_meta(&meta(), 4).cin_layer_dims([4, 3]);
    let b = |c: XDeepFmConfig| c.build(&vs.root());
    assert!(b(xfm()).is_ok());
    let dims = "xdeepfm.cin_layer_dims";
    assert_config_error(b(xfm().cin_layer_dims(Vec::new())), dims);
    assert_config_error(b(xfm().cin_layer_dims([4, 0])), dims);
    // split half: every layer but the last must be even ([4, 3] is fine)
    assert!(b(xfm().cin_split_half(true)).is_ok());
    assert_config_error(b(xfm().cin_layer_dims([3, 4]).cin_split_half(true)), dims);
    assert_config_error(b(xfm().input_dim(0)), "xdeepfm.input_dim");
    assert_config_error(b(XDeepFmConfig::from_meta(&none, 4)), "xdeepfm");
    for (mlp, field) in bad_mlp {
        assert_config_error(b(xfm().mlp(mlp)), &format!("xdeepfm.{field}"));
    }
}

#[test]
fn partial_json_takes_the_reference_defaults() {
    let fm: DeepFmConfig = serde_json::from_str(r#"{"cont_cols": ["x"]}"#).unwrap();
    assert_eq!(
        (fm.input_dim, fm.reduce_sum, fm.mlp.is_none()),
        (16, true, true)
    );
    let ffm: DeepFfmConfig =
        serde_json::from_str(r#"{"input_dim": 8, "mlp": {"mlp_hidden_dims": [4]}}"#).unwrap();
    let mlp = ffm.mlp.clone().unwrap();
    assert_eq!((ffm.input_dim, ffm.reduce_sum), (8, true));
    assert_eq!(mlp, RecMlpConfig::new([4]));
    assert_eq!(
        (mlp.mlp_dropout, mlp.mlp_linear_first, mlp.mlp_batchnorm),
        (0.0, false, false)
    );
    let x: XDeepFmConfig = serde_json::from_str(r#"{"cin_split_half": true}"#).unwrap();
    assert_eq!(x.cin_layer_dims, [128, 64]);
    assert_eq!((x.cin_activation, x.reduce_sum), (None, true));
    // through the registry, tagged
    let model: TabModelConfig =
        serde_json::from_str(r#"{"model": "xdeepfm", "cin_layer_dims": [8]}"#).unwrap();
    assert_eq!(model.name(), "xdeepfm");
    json_round_trip(DeepFmConfig::from_meta(&meta(), 8).mlp(RecMlpConfig::new([64, 32])));
}
