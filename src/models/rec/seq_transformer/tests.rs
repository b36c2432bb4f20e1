//! The sequence Transformer: output widths, attention, the embedding split, what the
//! positions change, validation and JSON.
use super::*;
use crate::models::rec::cross::tests::json_round_trip;
use crate::models::rec::din::tests::{seq, seq_meta};
use crate::models::tabular::testing::assert_config_error;
use tch::{Device, Kind};

fn small() -> SeqTransformerConfig {
    SeqTransformerConfig::from_meta(&seq_meta(7, 3, 4, false, &[]))
        .input_dim(8)
        .n_heads(2)
        .n_blocks(2)
}

fn input(history: &[&[i64]], targets: &[i64]) -> ModelInput {
    ModelInput {
        seq: Some(seq(history, targets)),
        ..Default::default()
    }
}

#[test]
fn output_widths_attention_and_embed_split() {
    let x = input(&[&[0, 0, 1, 2], &[3, 4, 5, 6], &[0, 6, 6, 1]], &[1, 2, 6]);
    for (cls, target, out, n) in [
        (false, false, 4 * 8, 4),
        (true, false, 8, 5),
        (false, true, 5 * 8, 5),
        (true, true, 8, 6),
    ] {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = small().with_cls_token(cls).with_target_item(target);
        let m = cfg.build(&vs.root()).unwrap();
        m.check_input(&x).unwrap();
        assert_eq!(m.output_dim(), out);
        assert_eq!(m.forward_t(&x, true).size(), [3, out]);
        let eval = m.forward_t(&x, false);
        assert_eq!(eval.size(), [3, out]);
        let w = m.attention_weights().unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].size(), [3, 2, n, n]);
        let sums = w[1].sum_dim_intlist(-1, false, Kind::Float);
        assert!(sums.allclose(&Tensor::ones_like(&sums), 1e-5, 1e-5, false));
        let parts = m.embed(&x).unwrap();
        assert_eq!(parts[0].size(), [3, 4, 8]);
        assert_eq!(parts.len(), 1 + usize::from(target));
        assert_eq!(m.feature_names().len(), parts.len());
        let split = m.forward_embedded(&parts, false).unwrap();
        assert!(eval.allclose(&split, 1e-5, 1e-5, false));
        json_round_trip(cfg);
    }
}

#[test]
fn positions_make_the_order_matter() {
    let ab = input(&[&[0, 1, 2, 3]], &[1]);
    let ba = input(&[&[0, 1, 3, 2]], &[1]);
    for pos in [false, true] {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let m = small().with_pos_encoding(pos).build(&vs.root()).unwrap();
        // tokens [b, 4, 8] flattened: swap the last two tokens of the second output
        let (y1, y2) = (m.forward_t(&ab, false), m.forward_t(&ba, false));
        let y2 = y2.view([1, 4, 8]);
        let swapped = Tensor::cat(
            &[y2.narrow(1, 0, 2), y2.narrow(1, 3, 1), y2.narrow(1, 2, 1)],
            1,
        )
        .view([1, 32]);
        // without positions self-attention is permutation-equivariant
        assert_eq!(y1.allclose(&swapped, 1e-5, 1e-5, false), !pos, "pos: {pos}");
    }
}

#[test]
fn sinusoidal_positions_are_the_references() {
    let pe = sinusoidal(3, 4);
    let at = |p: i64, j: i64| pe.double_value(&[p, j]);
    // pe[p, 2i] = sin(p / 10000^(2i/d)), pe[p, 2i+1] = cos(p / 10000^(2i/d))
    assert!((at(1, 0) - 1f64.sin()).abs() < 1e-6);
    assert!((at(1, 1) - 1f64.cos()).abs() < 1e-6);
    assert!((at(2, 2) - (2.0 / 100f64).sin()).abs() < 1e-6);
    assert!((at(2, 3) - (2.0 / 100f64).cos()).abs() < 1e-6);
}

#[test]
fn invalid_configs_and_inputs_are_typed_errors() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    assert_config_error(
        SeqTransformerConfig::default().build(&root),
        "seq_transformer.seq.max_seq_length",
    );
    assert_config_error(small().n_heads(3).build(&root), "seq_transformer.n_heads");
    assert_config_error(small().n_blocks(0).build(&root), "seq_transformer.n_blocks");
    assert_config_error(
        small().pos_encoding_dropout(1.0).build(&root),
        "seq_transformer.pos_encoding_dropout",
    );
    let m = small().build(&root).unwrap();
    let err = m
        .check_input(&input(&[&[0, 1, 2]], &[1]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("seq.items"), "{err}");
    let err = m
        .check_input(&input(&[&[0, 1, 2, 7]], &[1]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("0..=6"), "{err}");
    assert!(m.check_input(&ModelInput::default()).is_err());
}
