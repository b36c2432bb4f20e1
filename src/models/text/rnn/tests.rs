//! The recurrent text models' unit tests.
use super::*;
use crate::models::text::TextModelConfig;
use tch::Device;

fn input() -> TextInput {
    TextInput {
        text_index: 0,
        name: "review".into(),
        vocab_size: 20,
        pad_id: 0,
    }
}

fn ids(left: bool) -> ModelInput {
    let rows: Vec<i64> = if left {
        vec![0, 0, 3, 4, 5, 0, 0, 0, 0, 0, 1, 2, 3, 4, 19]
    } else {
        vec![3, 4, 5, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 19]
    };
    ModelInput {
        text: vec![Tensor::from_slice(&rows).view([3, 5])],
        ..Default::default()
    }
}

fn check_embed_split(c: &dyn Component, x: &ModelInput) {
    let direct = c.forward_t(x, false);
    let parts = c.embed(x).unwrap();
    assert_eq!(parts[0].size()[..2], [3, 5]);
    let split = c.forward_embedded(&parts, false).unwrap();
    assert!(
        direct.allclose(&split, 1e-5, 1e-6, false),
        "{direct} {split}"
    );
    assert!(bool::try_from(direct.isfinite().all()).unwrap());
}

#[test]
fn rnn_models_shapes_pooling_and_embed_split() {
    let _rng = crate::torch_rng_lock();
    tch::manual_seed(0);
    for (rnn_type, bi, pooling) in [
        (RnnType::Lstm, false, RnnPooling::LastHidden),
        (RnnType::Gru, true, RnnPooling::LastHidden),
        (RnnType::Lstm, true, RnnPooling::Mean),
    ] {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = BasicRnnConfig::new(input())
            .embed_dim(6)
            .hidden_dim(5)
            .n_layers(2)
            .rnn_type(rnn_type)
            .bidirectional(bi)
            .pooling(pooling)
            .build(&vs.root())
            .unwrap();
        let x = ids(true);
        m.check_input(&x).unwrap();
        let y = m.forward_t(&x, true);
        let want = if bi { 10 } else { 5 };
        assert_eq!(y.size(), [3, want]);
        assert_eq!(m.output_dim(), want);
        check_embed_split(&m, &x);
        check_embed_split(&m, &ids(false));
    }
    let vs = nn::VarStore::new(Device::Cpu);
    let m = BasicRnnConfig::new(input())
        .head(MlpConfig::default().hidden_dims([7]))
        .build(&vs.root())
        .unwrap();
    assert_eq!(m.forward_t(&ids(true), false).size(), [3, 7]);
}

#[test]
fn last_hidden_ignores_padding_side() {
    let _rng = crate::torch_rng_lock();
    tch::manual_seed(1);
    // a unidirectional RNN reads the same tokens; left or right padding (masked gather)
    // gives the same last output when pads come after the text
    let vs = nn::VarStore::new(Device::Cpu);
    let m = BasicRnnConfig::new(input())
        .embed_dim(4)
        .hidden_dim(3)
        .n_layers(1)
        .build(&vs.root())
        .unwrap();
    let right = m.forward_t(&ids(false), false);
    let single = ModelInput {
        text: vec![Tensor::from_slice(&[3i64, 4, 5]).view([1, 3])],
        ..Default::default()
    };
    let alone = m.forward_t(&single, false);
    assert!(right.get(0).allclose(&alone.get(0), 1e-5, 1e-6, false));
}

#[test]
fn attentive_models_expose_normalised_weights() {
    let _rng = crate::torch_rng_lock();
    tch::manual_seed(2);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = AttentiveRnnConfig::new(input())
        .embed_dim(6)
        .hidden_dim(4)
        .bidirectional(true)
        .build(&vs.root())
        .unwrap();
    let x = ids(true);
    assert_eq!(m.forward_t(&x, false).size(), [3, 8]);
    let w = &m.attention_weights().unwrap()[0];
    assert_eq!(w.size(), [3, 5]);
    let sums = w.sum_dim_intlist(1, false, Kind::Float);
    assert!(sums.allclose(
        &Tensor::ones([3], (Kind::Float, Device::Cpu)),
        1e-5,
        1e-5,
        false
    ));
    assert!(
        w.get(0).get(0).double_value(&[]) < 1e-6,
        "padding gets no weight"
    );
    check_embed_split(&m, &x);

    let vs = nn::VarStore::new(Device::Cpu);
    let s = StackedAttentiveRnnConfig::new(input())
        .embed_dim(6)
        .hidden_dim(4)
        .n_blocks(2)
        .with_addnorm(true)
        .build(&vs.root())
        .unwrap();
    assert_eq!(s.forward_t(&x, true).size(), [3, 4]);
    assert_eq!(s.attention_weights().unwrap().len(), 2);
    check_embed_split(&s, &x);
}

#[test]
fn pretrained_frozen_embeddings_and_bad_configs() {
    let _rng = crate::torch_rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let matrix = ndarray::Array2::from_shape_fn((20, 3), |(i, j)| (i * 3 + j) as f32);
    let m = BasicRnnConfig::new(input())
        .pretrained_embeddings(std::sync::Arc::new(matrix))
        .freeze_embeddings(true)
        .build(&vs.root())
        .unwrap();
    let w = &vs.variables()["embed.weight"];
    assert_eq!(w.size(), [20, 3]);
    assert!(!w.requires_grad());
    assert_eq!(w.double_value(&[2, 1]), 7.0);
    assert_eq!(w.double_value(&[0, 1]), 0.0, "padding row is zero");
    assert_eq!(m.output_dim(), 64);
    let bad = BasicRnnConfig::new(input()).hidden_dim(0);
    let err = bad.build(&vs.root()).unwrap_err().to_string();
    assert!(err.contains("basic_rnn.hidden_dim"), "{err}");
    let bad = BasicRnnConfig::new(TextInput {
        pad_id: 30,
        ..input()
    });
    assert!(bad
        .build(&vs.root())
        .unwrap_err()
        .to_string()
        .contains("pad_id"));
    let err = m
        .check_input(&ModelInput {
            text: vec![Tensor::from_slice(&[25i64]).view([1, 1])],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("review") && err.contains("0..20"), "{err}");
    assert!(m.check_input(&ModelInput::default()).is_err());
}

/// Configs saved before the shared fields moved into [`RnnBase`] (JSON written by the build
/// before, byte for byte) load to the configs their builders make, and save back to the same
/// JSON value, alone and inside [`TextModelConfig`].
#[test]
fn saved_configs_keep_their_json() {
    fn round_trip<C>(json: &str, built: C)
    where
        C: ComponentConfig
            + Into<TextModelConfig>
            + serde::Serialize
            + serde::de::DeserializeOwned
            + PartialEq
            + std::fmt::Debug
            + Clone,
    {
        let before: serde_json::Value = serde_json::from_str(json).unwrap();
        let loaded: C = serde_json::from_str(json).unwrap();
        assert_eq!(loaded, built);
        assert_eq!(serde_json::to_value(&loaded).unwrap(), before);
        let mut tagged = before.clone();
        tagged["model"] = C::NAME.into();
        let in_enum: TextModelConfig = serde_json::from_value(tagged.clone()).unwrap();
        assert_eq!(in_enum, built.into());
        assert_eq!(serde_json::to_value(&in_enum).unwrap(), tagged);
    }
    let head = MlpConfig::default().hidden_dims([3]);
    round_trip(
        r#"{"input":{"text_index":0,"name":"review","vocab_size":20,"pad_id":0},"embed_dim":6,"freeze_embeddings":false,"embed_dropout":0.2,"rnn_type":"gru","hidden_dim":5,"n_layers":2,"rnn_dropout":0.1,"bidirectional":true,"pooling":"mean","head":{"hidden_dims":[3],"activation":"relu","dropout":0.1,"batchnorm":false,"batchnorm_last":false,"linear_first":true}}"#,
        BasicRnnConfig::new(input())
            .embed_dim(6)
            .embed_dropout(0.2)
            .rnn_type(RnnType::Gru)
            .hidden_dim(5)
            .n_layers(2)
            .bidirectional(true)
            .pooling(RnnPooling::Mean)
            .head(head.clone()),
    );
    round_trip(
        r#"{"input":{"text_index":0,"name":"review","vocab_size":20,"pad_id":0},"embed_dim":6,"freeze_embeddings":false,"embed_dropout":0.0,"rnn_type":"gru","hidden_dim":4,"n_layers":3,"rnn_dropout":0.1,"bidirectional":true,"attn_dropout":0.3,"head":{"hidden_dims":[3],"activation":"relu","dropout":0.1,"batchnorm":false,"batchnorm_last":false,"linear_first":true}}"#,
        AttentiveRnnConfig::new(input())
            .embed_dim(6)
            .hidden_dim(4)
            .bidirectional(true)
            .attn_dropout(0.3)
            .rnn_type(RnnType::Gru)
            .head(head),
    );
    round_trip(
        r#"{"input":{"text_index":0,"name":"review","vocab_size":20,"pad_id":0},"embed_dim":3,"freeze_embeddings":false,"embed_dropout":0.0,"rnn_type":"lstm","hidden_dim":4,"bidirectional":true,"n_blocks":2,"attn_dropout":0.1,"with_addnorm":true,"head":null}"#,
        StackedAttentiveRnnConfig::new(input())
            .embed_dim(3)
            .hidden_dim(4)
            .n_blocks(2)
            .with_addnorm(true)
            .bidirectional(true)
            .rnn_type(RnnType::Lstm),
    );
    // missing fields take each config's own defaults (the stacked model's cell is a GRU)
    let minimal = r#"{"input":{"text_index":0,"name":"review","vocab_size":20,"pad_id":0}}"#;
    let s: StackedAttentiveRnnConfig = serde_json::from_str(minimal).unwrap();
    assert_eq!(s, StackedAttentiveRnnConfig::new(input()));
    assert_eq!(s.rnn_type, RnnType::Gru);
    let b: BasicRnnConfig = serde_json::from_str(minimal).unwrap();
    assert_eq!(b, BasicRnnConfig::new(input()));
    let a: AttentiveRnnConfig = serde_json::from_str(minimal).unwrap();
    assert_eq!(a, AttentiveRnnConfig::new(input()));
}
