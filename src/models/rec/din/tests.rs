//! DIN: the masked target attention against a hand computation, shapes, the embedding split,
//! input checks, validation and JSON.
use super::*;
use crate::models::rec::cross::tests::json_round_trip;
use crate::models::tabular::testing::{assert_config_error, meta};
use crate::models::SeqInput;
use tch::{Device, Kind};

/// Sequence sizes: `n_items` codes of width `d`, histories of `l`, optional actions (4
/// codes), other columns `(cardinality, width)`.
pub(crate) fn seq_meta(
    n_items: usize,
    d: usize,
    l: usize,
    actions: bool,
    others: &[(usize, usize)],
) -> SequenceMeta {
    SequenceMeta {
        max_seq_length: l,
        items: CatColumnMeta {
            name: "item".into(),
            cardinality: n_items,
            embed_dim: d,
        },
        actions: actions.then(|| CatColumnMeta {
            name: "action".into(),
            cardinality: 4,
            embed_dim: 1,
        }),
        others: others
            .iter()
            .enumerate()
            .map(|(i, &(c, w))| CatColumnMeta {
                name: format!("other{i}"),
                cardinality: c,
                embed_dim: w,
            })
            .collect(),
    }
}

/// Sequence input from history rows and target items.
pub(crate) fn seq(history: &[&[i64]], targets: &[i64]) -> SeqInput {
    let (n, l) = (history.len() as i64, history[0].len() as i64);
    let flat: Vec<i64> = history.iter().flat_map(|r| r.iter().copied()).collect();
    SeqInput {
        items: Tensor::from_slice(&flat).view([n, l]),
        target_item: Tensor::from_slice(targets),
        actions: None,
        others: Vec::new(),
    }
}

fn set(vs: &nn::VarStore, name: &str, values: &[f32]) {
    let vars = vs.variables();
    let v = &vars[name];
    tch::no_grad(|| {
        v.shallow_clone()
            .copy_(&Tensor::from_slice(values).view(v.size().as_slice()));
    });
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_kind(Kind::Float).contiguous().view([-1])).unwrap()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
    }
}

#[test]
fn attention_masks_padding_renormalises_and_matches_a_hand_computation() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = DinConfig::from_meta(&seq_meta(4, 2, 3, false, &[]), None)
        .attention_dim(Some(1))
        .mlp(None);
    let m = cfg.build(&vs.root()).unwrap();
    assert_eq!(m.output_dim(), 4);
    // items 1, 2, 3 = [1, 0], [-1, 2], [1, 1]; the unit's score is PReLU(Σ q ⊙ k)
    set(&vs, "item_embed.weight", &[0., 0., 1., 0., -1., 2., 1., 1.]);
    set(
        &vs,
        "attention.linear_in.weight",
        &[0., 0., 0., 0., 0., 0., 1., 1.],
    );
    set(&vs, "attention.linear_in.bias", &[0.]);
    set(&vs, "attention.linear_out.weight", &[1.]);
    set(&vs, "attention.linear_out.bias", &[0.]);
    let x = ModelInput {
        seq: Some(seq(&[&[0, 1, 2], &[0, 0, 0], &[3, 3, 1]], &[1, 3, 2])),
        ..Default::default()
    };
    m.check_input(&x).unwrap();
    let out = m.forward_t(&x, false);
    let w = m.attention_weights().unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].size(), [3, 3]);
    let w = to_vec(&w[0]);
    // row 0: q = [1, 0]; scores 1 (item 1) and PReLU(-1) = -0.25 (item 2); padding 0
    let (a, b) = (1f32.exp(), (-0.25f32).exp());
    let (w1, w2) = (a / (a + b), b / (a + b));
    // row 1: no real position, no weight; row 2: q = [-1, 2]: scores 1, 1, -0.25
    let (u, v) = (a / (2.0 * a + b), b / (2.0 * a + b));
    close(&w, &[0., w1, w2, 0., 0., 0., u, u, v]);
    // the output is [q, Σ w k]
    let expected = [
        1.,
        0.,
        w1 - w2,
        2. * w2,
        1.,
        1.,
        0.,
        0.,
        -1.,
        2.,
        2. * u + v,
        2. * u,
    ];
    close(&to_vec(&out), &expected);
    // the same through the embedding split
    let split = m.forward_embedded(&m.embed(&x).unwrap(), false).unwrap();
    close(&to_vec(&split), &expected);
}

#[test]
fn full_model_shapes_embed_split_and_real_positions_sum_to_one() {
    for act in [UnitActivation::Prelu, UnitActivation::Dice] {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = DinConfig::from_meta(&seq_meta(6, 4, 3, true, &[(5, 3), (4, 2)]), Some(&meta()))
            .attention_activation(act)
            .mlp(Some(MlpConfig::default().hidden_dims([8, 5])));
        let m = cfg.build(&vs.root()).unwrap();
        assert_eq!(m.output_dim(), 5);
        let n = 4;
        let mut s = seq(
            &[&[0, 1, 2], &[5, 4, 3], &[0, 0, 1], &[2, 2, 2]],
            &[1, 2, 3, 5],
        );
        s.actions = Some(Tensor::from_slice(&[0i64, 1, 2, 3, 3, 1, 0, 0, 2, 1, 1, 1]).view([n, 3]));
        s.others = vec![
            Tensor::from_slice(&[0i64, 1, 4, 2, 3, 3, 0, 0, 1, 4, 4, 4]).view([n, 3]),
            Tensor::from_slice(&[0i64, 3, 2, 1, 1, 1, 0, 0, 3, 2, 2, 2]).view([n, 3]),
        ];
        let x = ModelInput {
            seq: Some(s),
            ..crate::models::tabular::testing::fixed_input(n)
        };
        m.check_input(&x).unwrap();
        assert_eq!(m.forward_t(&x, true).size(), [n, 5]);
        let eval = m.forward_t(&x, false);
        let parts = m.embed(&x).unwrap();
        let shapes: Vec<Vec<i64>> = parts.iter().map(Tensor::size).collect();
        assert_eq!(
            shapes,
            vec![
                vec![n, 4],
                vec![n, 3, 4],
                vec![n, 3],
                vec![n, 3, 1],
                vec![n, 3, 3],
                vec![n, 3, 2],
                vec![n, 3],
                vec![n, 2],
                vec![n, 1],
                vec![n, 1],
            ]
        );
        assert_eq!(
            m.feature_names(),
            [
                "target_item",
                "item",
                "item_mask",
                "action",
                "other0",
                "other1",
                "a",
                "b",
                "x",
                "y"
            ]
        );
        let split = m.forward_embedded(&parts, false).unwrap();
        assert!(eval.allclose(&split, 1e-5, 1e-5, false));
        let w = m.attention_weights().unwrap().remove(0);
        let sums = to_vec(&w.sum_dim_intlist(-1, false, Kind::Float));
        close(&sums, &[1., 1., 1., 1.]);
        close(&to_vec(&w.get(2).narrow(0, 0, 2)), &[0., 0.]);
        assert!(m.forward_embedded(&parts[..3], false).is_none());
        assert_eq!(
            to_vec(&parts[2]),
            [0., 1., 1., 1., 1., 1., 0., 0., 1., 1., 1., 1.]
        );
        // without the MLP: target and interest (4 + 4), pooled others (3 + 2), tabular (3 +
        // 2 + 2)
        let vs = nn::VarStore::new(Device::Cpu);
        let bare = cfg.clone().mlp(None).build(&vs.root()).unwrap();
        assert_eq!(bare.output_dim(), 20);
        assert_eq!(bare.forward_t(&x, false).size(), [n, 20]);
        json_round_trip(cfg);
    }
}

#[test]
fn the_padding_row_gets_no_gradient() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let m = DinConfig::from_meta(&seq_meta(5, 3, 4, false, &[]), None)
        .build(&vs.root())
        .unwrap();
    let x = ModelInput {
        seq: Some(seq(&[&[0, 0, 1, 2], &[0, 3, 4, 1]], &[3, 2])),
        ..Default::default()
    };
    m.forward_t(&x, true).sum(Kind::Float).backward();
    let grad = vs.variables()["item_embed.weight"].grad();
    assert_eq!(to_vec(&grad.get(0)), vec![0.0; 3]);
    assert!(to_vec(&grad.get(1)).iter().any(|g| *g != 0.0));
}

#[test]
fn input_checks_name_the_input() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let m = DinConfig::from_meta(&seq_meta(4, 2, 3, true, &[]), None)
        .build(&vs.root())
        .unwrap();
    let err = |x: ModelInput| m.check_input(&x).unwrap_err().to_string();
    assert!(err(ModelInput::default()).contains("SequencePreprocessor"));
    let with = |s: SeqInput| ModelInput {
        seq: Some(s),
        ..Default::default()
    };
    let e = err(with(seq(&[&[0, 1]], &[1])));
    assert!(e.contains("seq.items") && e.contains("[batch, 3]"), "{e}");
    let e = err(with(seq(&[&[0, 1, 4]], &[1])));
    assert!(e.contains("seq.items") && e.contains("0..=3"), "{e}");
    let e = err(with(seq(&[&[0, 1, 2]], &[1])));
    assert!(e.contains("seq.actions"), "{e}");
    let mut s = seq(&[&[0, 1, 2]], &[1]);
    s.actions = Some(Tensor::from_slice(&[0i64, 1, 2]).view([1, 3]));
    s.target_item = Tensor::from_slice(&[1i64, 2]);
    let e = err(with(s));
    assert!(e.contains("seq.target_item"), "{e}");
}

#[test]
fn invalid_configs_are_typed_errors() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    assert_config_error(DinConfig::default().build(&root), "din.seq.max_seq_length");
    let good = DinConfig::from_meta(&seq_meta(4, 2, 3, false, &[(5, 0)]), None);
    assert_config_error(good.build(&root), "din.seq.others[other0]");
    let good = DinConfig::from_meta(&seq_meta(4, 2, 3, false, &[]), Some(&meta()));
    assert_config_error(
        good.clone().attention_dim(Some(0)).build(&root),
        "din.attention_dim",
    );
    assert_config_error(
        good.clone()
            .mlp(Some(MlpConfig::default().dropout(1.5)))
            .build(&root),
        "din.mlp.dropout",
    );
    assert_config_error(
        good.clone().embed_dropout(-1.0).build(&root),
        "din.embed_dropout",
    );
    assert_config_error(
        DinConfig::from_meta(&seq_meta(1, 2, 3, false, &[]), None).build(&root),
        "din.seq.items",
    );
    assert!(good.build(&root).is_ok());
}

#[test]
fn a_fractional_mask_moves_the_weights_continuously() {
    use crate::models::rec::sequence::position_weights;
    let scores = Tensor::from_slice(&[0.5f32, 2.0, -1.0, 3.0]).view([1, 4]);
    let at = |r: &[f32]| {
        to_vec(&position_weights(
            &scores,
            &Tensor::from_slice(r).view([1, 4]),
        ))
    };
    // 0/1: the softmax over the real positions
    let (a, b) = (0.5f32.exp(), (-1f32).exp());
    close(&at(&[1., 0., 1., 0.]), &[a / (a + b), 0., b / (a + b), 0.]);
    close(&at(&[0., 0., 0., 0.]), &[0., 0., 0., 0.]);
    // r_j scales position j's share: r e^s / Σ r e^s
    let c = 2f32.exp();
    let sum = a + 0.5 * c + b;
    close(
        &at(&[1., 0.5, 1., 0.]),
        &[a / sum, 0.5 * c / sum, b / sum, 0.],
    );
    // and vanishes with it
    let near = at(&[1., 1e-7, 1., 0.]);
    close(&near, &at(&[1., 0., 1., 0.]));
    assert!(near[1] > 0.0);
}
