use super::*;
use crate::models::tabular::testing::meta;
use crate::models::{MlpConfig, TabMlpConfig, TabNetConfig, TabResnetConfig};
use tch::{Device, Kind};

/// Embedding width of `meta()`: 3 + 2 + two continuous columns.
const EMBED: i64 = 7;

fn decoder_output(cfg: &TabDecoderConfig, inputs: &[Tensor]) -> Vec<i64> {
    let vs = nn::VarStore::new(Device::Cpu);
    let d = cfg.build(&vs.root()).unwrap();
    d.forward_t(inputs, true).size()
}

#[test]
fn mirrored_decoders_map_back_to_the_embedding_width() {
    let _rng = crate::torch_rng_lock();
    let x = |w: i64| Tensor::randn([5, w], (Kind::Float, Device::Cpu));
    // TabMlp [16, 8] → decoder 8 → 16 → 7
    let mlp = TabMlpConfig::from_meta(&meta()).mlp(MlpConfig::default().hidden_dims([16, 8]));
    let d = TabMlpDecoderConfig::mirror(&mlp, EMBED);
    assert_eq!((d.input_dim, d.mlp.hidden_dims.clone()), (8, vec![16]));
    assert_eq!(
        decoder_output(&TabDecoderConfig::TabMlp(d), &[x(8)]),
        [5, EMBED]
    );
    // a one-layer encoder gives a one-layer decoder
    let one = TabMlpConfig::from_meta(&meta()).mlp(MlpConfig::default().hidden_dims([4]));
    let d = TabMlpDecoderConfig::mirror(&one, EMBED);
    assert_eq!(
        decoder_output(&TabDecoderConfig::TabMlp(d), &[x(4)]),
        [5, EMBED]
    );

    // TabResnet blocks [16, 8, 4] → decoder blocks [4, 8, 16] → 7; with an MLP [6, 3] on
    // top: decoder MLP 3 → 6 → 4, then the blocks
    let res = TabResnetConfig::from_meta(&meta()).blocks_dims([16, 8, 4]);
    let d = TabResnetDecoderConfig::mirror(&res, EMBED);
    assert_eq!((d.input_dim, d.blocks_dims.clone()), (4, vec![4, 8, 16]));
    assert_eq!(
        decoder_output(&TabDecoderConfig::TabResnet(d), &[x(4)]),
        [5, EMBED]
    );
    let res = res.mlp(MlpConfig::default().hidden_dims([6, 3]));
    let d = TabResnetDecoderConfig::mirror(&res, EMBED);
    assert_eq!(d.input_dim, 3);
    assert_eq!(d.mlp.as_ref().unwrap().hidden_dims, vec![6, 4]);
    assert_eq!(
        decoder_output(&TabDecoderConfig::TabResnet(d), &[x(3)]),
        [5, EMBED]
    );

    // TabNet: one input per step
    let net = TabNetConfig::from_meta(&meta()).n_steps(4).step_dim(6);
    let d = TabNetDecoderConfig::mirror(&net, EMBED);
    let steps: Vec<Tensor> = (0..4).map(|_| x(6)).collect();
    assert_eq!(
        decoder_output(&TabDecoderConfig::TabNet(d), &steps),
        [5, EMBED]
    );
}

#[test]
fn the_tabnet_decoder_shares_its_glu_maps_across_steps() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = TabNetConfig::from_meta(&meta()).n_steps(3).step_dim(4);
    let cfg = TabNetDecoderConfig::mirror(&net, EMBED);
    let d = cfg.build(&vs.root()).unwrap();
    assert_eq!(d.n_steps(), 3);
    let names: Vec<String> = vs.variables().into_keys().collect();
    // 2 shared maps + per step 2 maps of its own, and the reconstruction layer
    let linear = names
        .iter()
        .filter(|n| n.ends_with("fc_0.weight") || n.ends_with("fc_1.weight"));
    assert_eq!(linear.count(), 2 + 3 * 2);
    assert_eq!(vs.variables()["reconstruction.weight"].size(), [EMBED, 4]);
}

#[test]
fn bad_decoder_configs_are_typed_errors_naming_the_field() {
    let mlp = TabMlpDecoderConfig {
        input_dim: 4,
        embed_dim: 0,
        mlp: MlpConfig::default(),
    };
    let err = TabDecoderConfig::TabMlp(mlp)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("tab_mlp_decoder.embed_dim"), "{err}");
    let mut res = TabResnetDecoderConfig::mirror(&TabResnetConfig::from_meta(&meta()), EMBED);
    res.blocks_dims = vec![8];
    let err = TabDecoderConfig::TabResnet(res)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("tab_resnet_decoder.blocks_dims"), "{err}");
    let mut net = TabNetDecoderConfig::mirror(&TabNetConfig::from_meta(&meta()), EMBED);
    net.dropout = 1.5;
    let err = TabDecoderConfig::TabNet(net)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("tab_net_decoder.dropout"), "{err}");
}

#[test]
fn decoder_configs_round_trip_through_json() {
    let cfg = TabDecoderConfig::TabNet(TabNetDecoderConfig::mirror(
        &TabNetConfig::from_meta(&meta()),
        EMBED,
    ));
    let json = serde_json::to_string(&cfg).unwrap();
    assert!(json.contains("\"model\":\"tab_net_decoder\""), "{json}");
    assert_eq!(
        serde_json::from_str::<TabDecoderConfig>(&json).unwrap(),
        cfg
    );
}
