use super::*;
use crate::models::tabular::testing::{input, meta};
use crate::models::{MlpConfig, SaintConfig, TabMlpConfig, TabNetConfig, TabResnetConfig};

fn t(rows: &[[f32; 5]]) -> Tensor {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_slice(&flat).view([rows.len() as i64, 5])
}

/// The tensors of `tests/reference/pretrain_reference.py`.
fn fixed() -> (Tensor, Tensor, Tensor) {
    let x_true = t(&[
        [0.5, -1.0, 2.0, 2.0, 0.0],
        [1.5, 0.0, -2.0, 2.0, 0.0],
        [-0.5, 3.0, 1.0, 2.0, 0.0],
        [2.5, 1.0, 0.5, 2.0, 0.0],
    ]);
    let x_pred = t(&[
        [0.0, -0.5, 1.0, 1.0, 0.5],
        [1.0, 0.5, -1.0, 2.5, -0.5],
        [0.5, 2.0, 0.0, 2.0, 0.25],
        [2.0, 1.5, 1.5, 3.0, 0.0],
    ]);
    let mask = t(&[
        [1.0, 0.0, 1.0, 1.0, 0.0],
        [0.0, 1.0, 1.0, 0.0, 1.0],
        [1.0, 1.0, 0.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
    ]);
    (x_true, x_pred, mask)
}

#[test]
fn loss_and_gradient_match_the_reference() {
    // values printed by tests/reference/pretrain_reference.py (pytorch-widedeep 1.7.0's
    // EncoderDecoderLoss)
    let (x_true, x_pred, mask) = fixed();
    let x_pred = x_pred.set_requires_grad(true);
    let loss = reconstruction_loss(&x_true, &x_pred, &mask);
    assert!((loss.double_value(&[]) - 0.2234765887260437).abs() < 1e-5);
    loss.backward();
    let grad: Vec<f32> = Vec::try_from(x_pred.grad().flatten(0, -1)).unwrap();
    let expected = [
        -0.05000000819563866,
        0.0,
        -0.05755395442247391,
        -0.0833333358168602,
        0.0,
        0.0,
        0.02857142686843872,
        0.05755395442247391,
        0.0,
        -0.0833333358168602,
        0.10000001639127731,
        -0.05714285373687744,
        0.0,
        0.0,
        0.0416666679084301,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ];
    for (g, e) in grad.iter().zip(expected) {
        assert!((*g as f64 - e).abs() < 1e-5, "{grad:?}");
    }
    let all = reconstruction_loss(&x_true, &x_pred.detach(), &mask.ones_like());
    assert!((all.double_value(&[]) - 0.23593974113464355).abs() < 1e-5);
}

fn tabmlp() -> TabMlpConfig {
    TabMlpConfig::from_meta(&meta()).mlp(MlpConfig::default().hidden_dims([16, 8]))
}

#[test]
fn the_mask_hides_the_asked_share_of_entries_from_the_encoder() {
    let model = EncoderDecoder::new(
        &EncoderDecoderConfig::new(tabmlp()).masked_prob(0.3),
        Device::Cpu,
    )
    .unwrap();
    // every draw under the generator lock, so that seeded tests running beside this one
    // (the pretraining resume tests) see the generator only they move
    let _rng = crate::torch_rng_lock();
    let like = Tensor::zeros([2000, 50], (Kind::Float, Device::Cpu));
    let share = model.draw_mask(&like).mean(Kind::Float).double_value(&[]);
    // 100 000 Bernoulli(0.3) draws: standard error 0.0015
    assert!((share - 0.3).abs() < 0.01, "{share}");
    // training: the loss counts the masked entries only; evaluation: all of them
    let (x, rec, mask) = model.forward_t(&input(64), true);
    assert_eq!(x.size(), [64, 7]);
    assert_eq!(rec.size(), [64, 7]);
    let m = mask.mean(Kind::Float).double_value(&[]);
    assert!(m > 0.15 && m < 0.45, "{m}");
    let (_, _, mask) = model.forward_t(&input(8), false);
    assert_eq!(mask.mean(Kind::Float).double_value(&[]), 1.0);
}

#[test]
fn every_encoder_gets_its_mirror_decoder() {
    for enc in [
        TabModelConfig::from(tabmlp()),
        TabResnetConfig::from_meta(&meta())
            .blocks_dims([12, 6])
            .mlp(MlpConfig::default().hidden_dims([5]))
            .into(),
        TabNetConfig::from_meta(&meta())
            .n_steps(2)
            .step_dim(4)
            .attn_dim(4)
            .into(),
    ] {
        let name = enc.name();
        let model = EncoderDecoder::new(&EncoderDecoderConfig::new(enc), Device::Cpu).unwrap();
        // the mask is drawn under the generator lock (see the test above)
        let _rng = crate::torch_rng_lock();
        let loss = model.loss(PretrainModel::forward(&model, &input(16), true));
        assert!(loss.double_value(&[]).is_finite(), "{name}");
        loss.backward();
        let (x, rec, _) = model.forward_t(&input(5), false);
        assert_eq!((x.size(), rec.size()), (vec![5, 7], vec![5, 7]), "{name}");
        // encoder variables under `deeptabular.`, the decoder's under `decoder.`
        let names: Vec<String> = model.var_store().variables().into_keys().collect();
        assert!(names.iter().any(|n| n.starts_with("deeptabular.embed.")));
        assert!(names.iter().any(|n| n.starts_with("decoder.")));
        assert!(names
            .iter()
            .all(|n| n.starts_with("deeptabular.") || n.starts_with("decoder.")));
    }
}

#[test]
fn bad_configs_are_typed_errors_naming_the_field() {
    let field = |cfg: EncoderDecoderConfig| match EncoderDecoder::new(&cfg, Device::Cpu) {
        Err(crate::WideDeepError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    for p in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        let cfg = EncoderDecoderConfig::new(tabmlp()).masked_prob(p);
        assert_eq!(field(cfg), "encoder_decoder.masked_prob");
    }
    let saint = EncoderDecoderConfig::new(SaintConfig::from_meta(&meta()));
    assert_eq!(field(saint), "encoder_decoder.encoder");
    // a decoder that does not fit the encoder
    let wrong = TabMlpDecoderConfig {
        input_dim: 3,
        embed_dim: 7,
        mlp: MlpConfig::default().hidden_dims([4]),
    };
    let cfg = EncoderDecoderConfig::new(tabmlp()).decoder(TabDecoderConfig::TabMlp(wrong));
    assert_eq!(field(cfg), "encoder_decoder.decoder");
    let net_dec = TabNetDecoderConfig::mirror(&TabNetConfig::from_meta(&meta()), 7);
    let cfg = EncoderDecoderConfig::new(tabmlp()).decoder(TabDecoderConfig::TabNet(net_dec));
    assert_eq!(field(cfg), "encoder_decoder.decoder");
    // the encoder's own fields keep their names
    let bad = tabmlp().mlp(MlpConfig::default().hidden_dims([8]).dropout(2.0));
    assert_eq!(field(EncoderDecoderConfig::new(bad)), "tab_mlp.mlp.dropout");
}
