//! Unit tests of the attention embeddings.
use super::cont::ContMethod;
use super::*;
use crate::models::ContNorm;

fn cat_meta() -> Vec<CatColumnMeta> {
    crate::models::tabular::testing::meta().cat
}

fn input() -> ModelInput {
    ModelInput {
        cat: Some(Tensor::from_slice(&[1i64, 2, 3, 0, 0, 1]).view([3, 2])),
        cont: Some(Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.1, -3.0, 0.0]).view([3, 2])),
        ..Default::default()
    }
}

fn build(cfg: &AttnEmbedConfig, embed_cont: bool) -> (nn::VarStore, AttnEmbeddings) {
    let vs = nn::VarStore::new(Device::Cpu);
    let e = AttnEmbeddings::new(
        &vs.root(),
        &cat_meta(),
        &["x".to_string(), "y".to_string()],
        8,
        cfg,
        embed_cont,
        "m",
    )
    .unwrap();
    (vs, e)
}

#[test]
fn one_table_with_offsets_and_a_zero_unseen_row() {
    let _rng = crate::torch_rng_lock();
    let (vs, e) = build(&AttnEmbedConfig::default(), true);
    let table = vs.variables()["cat.table.weight"].shallow_clone();
    // 1 shared unseen row + 3 values of a + 2 values of b
    assert_eq!(table.size(), [6, 8]);
    let out = e.forward_t(&input(), false);
    assert_eq!(out.tokens.size(), [3, 4, 8]);
    assert!(out.cont.is_none());
    // row 0, column b has value 2 → global index 3 + 2 = 5
    assert!(out.tokens.get(0).get(1).equal(&table.get(5)));
    // row 1, column b is unseen → the zero row
    assert_eq!(
        out.tokens
            .get(1)
            .get(1)
            .abs()
            .sum(Kind::Float)
            .double_value(&[]),
        0.0
    );
    // row 2, column a is unseen (0), column b = 1 → index 4
    assert!(out.tokens.get(2).get(1).equal(&table.get(4)));
    assert_eq!(
        out.tokens
            .get(2)
            .get(0)
            .abs()
            .sum(Kind::Float)
            .double_value(&[]),
        0.0
    );
}

#[test]
fn standard_cont_tokens_are_value_times_weight_plus_bias() {
    let _rng = crate::torch_rng_lock();
    let (vs, e) = build(&AttnEmbedConfig::default(), true);
    let vars = vs.variables();
    let (w, b) = (&vars["cont.weight"], &vars["cont.bias"]);
    let out = e.forward_t(&input(), false).tokens;
    // row 0, column y (value -1.0) is token 3
    let expected = w.get(1) * -1.0 + b.get(1);
    assert!(out.get(0).get(3).allclose(&expected, 1e-6, 1e-6, false));
}

#[test]
fn shared_embeddings_add_or_overwrite() {
    let _rng = crate::torch_rng_lock();
    let cfg = AttnEmbedConfig::default().shared_embed(SharedEmbed::Overwrite {
        frac_shared_embed: 0.25,
    });
    let (vs, e) = build(&cfg, true);
    let shared = vs.variables()["cat.shared_embed"].shallow_clone();
    assert_eq!(shared.size(), [2, 2]);
    let out = e.forward_t(&input(), false).tokens;
    for r in 0..3 {
        assert!(out.get(r).get(1).narrow(0, 0, 2).equal(&shared.get(1)));
    }
    let cfg = AttnEmbedConfig::default().shared_embed(SharedEmbed::Add);
    let (vs, e) = build(&cfg, true);
    let vars = vs.variables();
    let out = e.forward_t(&input(), false).tokens;
    // unseen value: zero row + the column vector
    assert!(out
        .get(1)
        .get(1)
        .allclose(&vars["cat.shared_embed"].get(1), 1e-6, 1e-6, false));
    let with_value = vars["cat.table.weight"].get(5) + vars["cat.shared_embed"].get(1);
    assert!(out.get(0).get(1).allclose(&with_value, 1e-6, 1e-6, false));
}

#[test]
fn cat_bias_cls_and_non_embedded_cont() {
    let _rng = crate::torch_rng_lock();
    let cfg = AttnEmbedConfig::default()
        .use_cat_bias(true)
        .with_cls_token(true)
        .cont_norm(ContNorm::LayerNorm);
    let (vs, e) = build(&cfg, false);
    let out = e.forward_t(&input(), true);
    assert_eq!(out.tokens.size(), [3, 3, 8]);
    assert_eq!(e.n_tokens(), 3);
    let cls = vs.variables()["cls_token"].view([8]);
    assert!(out.tokens.get(2).get(0).equal(&cls));
    // unseen column a in row 2 → bias only
    let bias = vs.variables()["cat.bias"].get(0);
    assert!(out.tokens.get(2).get(1).allclose(&bias, 1e-6, 1e-6, false));
    let cont = out.cont.unwrap();
    assert_eq!(cont.size(), [3, 2]);
    // layer norm of two values gives ±1 (up to eps)
    let v = f64::try_from(cont.get(0).get(0)).unwrap();
    assert!((v.abs() - 1.0).abs() < 1e-2, "{v}");
}

#[test]
fn piecewise_encoding_matches_hand_computed_values() {
    let _rng = crate::torch_rng_lock();
    let edges = vec![vec![0.0, 1.0, 2.0, 4.0], vec![-1.0, 1.0]];
    let cfg = AttnEmbedConfig::default().cont_embed(ContEmbed::Piecewise {
        edges: edges.clone(),
    });
    let vs = nn::VarStore::new(Device::Cpu);
    let e = AttnEmbeddings::new(
        &vs.root(),
        &[],
        &["x".to_string(), "y".to_string()],
        4,
        &cfg,
        true,
        "m",
    )
    .unwrap();
    let ContMethod::Piecewise {
        lower,
        width,
        lo_clip,
        hi_clip,
        ..
    } = &e.cont.as_ref().unwrap().method
    else {
        panic!("piecewise")
    };
    let x = Tensor::from_slice(&[1.5f32, 0.0, -1.0, 3.0, 5.0, 2.0]).view([3, 2]);
    let enc = ((x.unsqueeze(2) - lower) / width)
        .maximum(lo_clip)
        .minimum(hi_clip);
    let got = Vec::<f32>::try_from(enc.flatten(0, -1)).unwrap();
    #[rustfmt::skip]
    let expected = [
        1.0, 0.5, 0.0,   0.5, 0.0, 0.0,   // x = 1.5 | y = 0 (one bin, padded)
        -1.0, 0.0, 0.0,  2.0, 0.0, 0.0,   // x = -1 extrapolates below | y = 3 above
        1.0, 1.0, 1.5,   1.5, 0.0, 0.0,   // x = 5 extrapolates above | y = 2
    ];
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() < 1e-6, "{got:?}");
    }
    let out = e.forward_t(
        &ModelInput {
            cont: Some(x),
            ..Default::default()
        },
        false,
    );
    assert_eq!(out.tokens.size(), [3, 2, 4]);
}

#[test]
fn periodic_tokens_have_the_right_shape_and_are_relu_outputs() {
    let _rng = crate::torch_rng_lock();
    for share in [false, true] {
        let cfg = AttnEmbedConfig::default().cont_embed(ContEmbed::Periodic {
            n_frequencies: 5,
            sigma: 0.5,
            share_last_layer: share,
        });
        let (vs, e) = build(&cfg, true);
        let f = vs.variables()["cont.frequencies"].shallow_clone();
        assert_eq!(f.size(), [2, 5]);
        assert!(f.abs().max().double_value(&[]) <= 1.5 + 1e-6);
        let t = e.forward_t(&input(), false).tokens;
        assert_eq!(t.size(), [3, 4, 8]);
        assert!(t.narrow(1, 2, 2).min().double_value(&[]) >= 0.0);
    }
}

#[test]
fn embed_then_combine_equals_forward() {
    let _rng = crate::torch_rng_lock();
    for embed_cont in [true, false] {
        let cfg = AttnEmbedConfig::default()
            .with_cls_token(true)
            .cont_norm(ContNorm::BatchNorm)
            .cat_embed_dropout(0.3)
            .full_embed_dropout(true);
        let (_vs, e) = build(&cfg, embed_cont);
        let parts = e.embed(&input());
        assert_eq!(parts.len(), 4);
        let w = if embed_cont { 8 } else { 1 };
        assert_eq!(parts[3].size(), [3, w]);
        let a = e.forward_t(&input(), false);
        let b = e.combine(&parts, false);
        assert!(a.tokens.equal(&b.tokens));
        assert_eq!(a.cont.is_some(), !embed_cont);
        if let (Some(x), Some(y)) = (a.cont, b.cont) {
            assert!(x.equal(&y));
        }
    }
}

#[test]
fn full_embed_dropout_drops_whole_tokens() {
    let _rng = crate::torch_rng_lock();
    let cfg = AttnEmbedConfig::default()
        .cat_embed_dropout(0.5)
        .full_embed_dropout(true);
    let (_vs, e) = build(&cfg, true);
    let x = ModelInput {
        cat: Some(Tensor::ones([64, 2], (Kind::Int64, Device::Cpu))),
        cont: Some(Tensor::ones([64, 2], (Kind::Float, Device::Cpu))),
        ..Default::default()
    };
    let t = e.forward_t(&x, true).tokens.narrow(1, 0, 2);
    let zero = t.abs().sum_dim_intlist(2, false, Kind::Float).eq(0.0);
    let n_zero = zero.sum(Kind::Int64).int64_value(&[]);
    assert!(
        n_zero > 20 && n_zero < 108,
        "{n_zero} dropped tokens of 128"
    );
    // kept tokens are scaled by 1 / (1 − p)
    let eval = e.forward_t(&x, false).tokens.narrow(1, 0, 2);
    let kept = zero.logical_not().unsqueeze(2);
    let diff = (t - eval * 2.0) * kept;
    assert!(diff.abs().max().double_value(&[]) < 1e-5);
}

#[test]
fn quantile_edges_are_strictly_increasing() {
    let v: Vec<f32> = (0..101).map(|i| i as f32).collect();
    assert_eq!(
        quantile_edges(&v, 4).unwrap(),
        vec![0.0, 25.0, 50.0, 75.0, 100.0]
    );
    let skewed = [0.0f32, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0];
    let e = quantile_edges(&skewed, 4).unwrap();
    assert!(e.windows(2).all(|w| w[1] > w[0]), "{e:?}");
    assert_eq!(quantile_edges(&[3.0], 4).unwrap(), vec![2.5, 3.5]);
    assert!(quantile_edges(&[f32::NAN], 2).is_err());
    assert!(quantile_edges(&[], 2).is_err());
    let cont = Tensor::from_slice(&[1.0f32, 5.0, 2.0, 6.0, 3.0, 7.0]).view([3, 2]);
    let ContEmbed::Piecewise { edges } = ContEmbed::piecewise_quantiles(&cont, 2).unwrap() else {
        panic!("piecewise")
    };
    assert_eq!(edges, vec![vec![1.0, 2.0, 3.0], vec![5.0, 6.0, 7.0]]);
}

#[test]
fn invalid_options_name_the_field() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let cont = ["x".to_string(), "y".to_string()];
    let err = |cfg: AttnEmbedConfig, d: i64| {
        AttnEmbeddings::new(&vs.root(), &cat_meta(), &cont, d, &cfg, true, "m")
            .unwrap_err()
            .to_string()
    };
    let bad_edges = AttnEmbedConfig::default().cont_embed(ContEmbed::Piecewise {
        edges: vec![vec![0.0, 1.0], vec![0.0, 2.0, 2.0]],
    });
    let e = err(bad_edges, 8);
    assert!(
        e.contains("m.embed.cont_embed.edges[1]") && e.contains("increasing"),
        "{e}"
    );
    let too_few = AttnEmbedConfig::default().cont_embed(ContEmbed::Piecewise {
        edges: vec![vec![0.0, 1.0]],
    });
    assert!(err(too_few, 8).contains("m.embed.cont_embed.edges"));
    let e = err(
        AttnEmbedConfig::default().cont_embed(ContEmbed::periodic(0, 1.0)),
        8,
    );
    assert!(e.contains("n_frequencies"), "{e}");
    let e = err(
        AttnEmbedConfig::default().cont_embed(ContEmbed::periodic(4, -1.0)),
        8,
    );
    assert!(e.contains("sigma"), "{e}");
    let frac = AttnEmbedConfig::default().shared_embed(SharedEmbed::Overwrite {
        frac_shared_embed: 0.1,
    });
    assert!(err(frac, 8).contains("frac_shared_embed"));
    assert!(err(AttnEmbedConfig::default().cat_embed_dropout(1.0), 8)
        .contains("m.embed.cat_embed_dropout"));
    assert!(err(AttnEmbedConfig::default(), 0).contains("m.input_dim"));
}

#[test]
fn input_checks_name_the_column() {
    let _rng = crate::torch_rng_lock();
    let (_vs, e) = build(&AttnEmbedConfig::default(), true);
    let mut x = input();
    x.cat = Some(Tensor::from_slice(&[1i64, 3]).view([1, 2]));
    let msg = e.check_input(&x).unwrap_err().to_string();
    assert!(msg.contains('b') && msg.contains("0..=2"), "{msg}");
    let mut x = input();
    x.cont = Some(Tensor::zeros([3, 3], (Kind::Float, Device::Cpu)));
    assert!(e.check_input(&x).unwrap_err().to_string().contains("cont"));
}
