//! AutoInt: the interacting layers against an explicit computation, shapes, the embedding
//! split, attention, JSON and validation.
use super::*;
use crate::models::rec::cross::tests::json_round_trip;
use crate::models::tabular::testing::*;
use crate::models::{AttnEmbedConfig, Component};
use tch::{Device, Kind};
use widedeep_preprocessing::TabMeta;

fn small() -> AutoIntConfig {
    AutoIntConfig::from_meta(&meta()).input_dim(8).num_heads(2)
}

#[test]
fn forward_shapes_embed_split_attention_and_importance() {
    for (reduction, out) in [(Reduction::Mean, 8), (Reduction::Cat, 4 * 8)] {
        let cfg = small().reduction(reduction);
        {
            let _rng = crate::torch_rng_lock();
            let vs = nn::VarStore::new(Device::Cpu);
            let m = cfg.build(&vs.root()).unwrap();
            check_component(&m, out, &[8, 8, 8, 8]);
            let w = m.attention_weights().unwrap();
            assert_eq!(w.len(), 2);
            assert_eq!(w[0].size(), [37, 2, 4, 4]);
        }
        json_round_trip(cfg);
    }
}

/// `softmax(Q Kᵀ / √e) V` of each head, the heads joined and projected, plus the residual,
/// written out head by head from the layer's weights (`[3d, d]` query/key/value projection,
/// queries first, each split into heads of width `e` in order).
fn explicit_layer(
    vars: &std::collections::HashMap<String, Tensor>,
    i: usize,
    x: &Tensor,
) -> Tensor {
    let p = |n: &str| &vars[&format!("layer_{i}.attn.{n}")];
    let qkv = x.linear(p("qkv_proj.weight"), Some(p("qkv_proj.bias")));
    let (d, h) = (x.size()[2], 2);
    let e = d / h;
    let heads: Vec<Tensor> = (0..h)
        .map(|j| {
            let q = qkv.narrow(2, j * e, e);
            let k = qkv.narrow(2, d + j * e, e);
            let v = qkv.narrow(2, 2 * d + j * e, e);
            let scores = q.matmul(&k.transpose(1, 2)) / (e as f64).sqrt();
            scores.softmax(-1, Kind::Float).matmul(&v)
        })
        .collect();
    let joined = Tensor::cat(&heads, 2);
    joined.linear(p("out_proj.weight"), Some(p("out_proj.bias"))) + x
}

#[test]
fn interacting_layers_are_attention_plus_residual() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let m = small()
        .input_dim(4)
        .num_layers(2)
        .build(&vs.root())
        .unwrap();
    let vars = vs.variables();
    // two rows of three tokens of width 4
    let x = Tensor::from_slice(&[
        0.5f32, -1.0, 0.25, 2.0, 1.0, 0.0, -0.5, 0.75, -1.5, 0.5, 1.0, 0.0, //
        0.0, 1.0, 1.0, -1.0, 2.0, -2.0, 0.5, 0.5, 0.25, 0.75, -0.25, 1.5,
    ])
    .view([2, 3, 4]);
    let (one, w) = interact(&m.0.layers()[..1], &x, false);
    let expected_one = explicit_layer(&vars, 0, &x);
    assert!(one.allclose(&expected_one, 1e-6, 1e-6, false));
    assert_eq!(w[0].size(), [2, 2, 3, 3]);
    let (two, w) = interact(m.0.layers(), &x, false);
    let expected_two = explicit_layer(&vars, 1, &expected_one);
    assert!(two.allclose(&expected_two, 1e-6, 1e-6, false));
    assert_eq!(w.len(), 2);
    // the model's output is the mean of the interacted tokens
    let input = fixed_input(3);
    let tokens = m.0.embed_tokens(&input);
    let (h, _) = interact(m.0.layers(), &tokens, false);
    let out = m.forward_t(&input, false);
    assert!(out.allclose(&h.mean_dim(1, false, Kind::Float), 1e-6, 1e-6, false));
}

#[test]
fn invalid_configs_name_the_field() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let b = |c: AutoIntConfig| c.build(&vs.root());
    assert_config_error(b(small().num_heads(3)), "autoint.num_heads");
    assert_config_error(b(small().num_heads(0)), "autoint.num_heads");
    assert_config_error(b(small().num_layers(0)), "autoint.num_layers");
    assert_config_error(b(small().input_dim(0)), "autoint.input_dim");
    assert_config_error(
        b(small().embed(AttnEmbedConfig::new().with_cls_token(true))),
        "autoint.embed.with_cls_token",
    );
    assert_config_error(
        b(small().embed(AttnEmbedConfig::new().cat_embed_dropout(1.5))),
        "autoint.embed.cat_embed_dropout",
    );
    let none = AutoIntConfig::from_meta(&TabMeta {
        cat: vec![],
        cont: vec![],
    });
    assert_config_error(b(none), "autoint");
    // only continuous columns: all embedded as tokens
    let cont_only = AutoIntConfig::from_meta(&TabMeta {
        cat: vec![],
        cont: vec!["x".into(), "y".into()],
    });
    let m = b(cont_only
        .input_dim(4)
        .num_heads(1)
        .reduction(Reduction::Cat))
    .unwrap();
    assert_eq!(m.output_dim(), 8);
}

#[test]
fn partial_json_takes_the_reference_defaults() {
    let cfg: AutoIntConfig = serde_json::from_str(r#"{"reduction": "cat"}"#).unwrap();
    assert_eq!((cfg.num_heads, cfg.num_layers), (4, 2));
    assert_eq!((cfg.input_dim, cfg.reduction), (32, Reduction::Cat));
}
