//! The saved JSON of the attention configs: configs written before their shared fields moved
//! into the flattened parts (`AttnColumns`, `TransformerBase`, `AttnMlpBase`) read and write the
//! same JSON, and missing keys take each model's defaults.
use crate::models::tabular::{
    ContextAttentionMlpConfig, FtTransformerConfig, SaintConfig, SelfAttentionMlpConfig,
    TabFastFormerConfig, TabModelConfig, TabPerceiverConfig, TabTransformerConfig,
};
use serde_json::Value;

/// The `TabModelConfig` JSON of each attention model with non-default values, as written
/// before the shared parts.
#[rustfmt::skip]
const SAVED: [&str; 7] = [
    r#"{"attn_dropout":0.3,"cat_embed":[{"cardinality":4,"embed_dim":3,"name":"a"},{"cardinality":3,"embed_dim":2,"name":"b"}],"cont_cols":["x","y"],"embed":{"cat_embed_activation":"relu","cat_embed_dropout":0.1,"cont_embed":{"method":"periodic","n_frequencies":3,"share_last_layer":true,"sigma":0.5},"cont_embed_activation":null,"cont_embed_dropout":0.2,"cont_norm":"layer_norm","full_embed_dropout":false,"shared_embed":{"frac_shared_embed":0.25,"kind":"overwrite"},"use_cat_bias":true,"with_cls_token":true},"embed_continuous":true,"ff_dropout":0.25,"ff_factor":2.0,"input_dim":8,"mlp":null,"model":"tab_transformer","n_blocks":4,"n_heads":4,"transformer_activation":"gelu","use_qkv_bias":false}"#,
    r#"{"attn_dropout":0.1,"cat_embed":[{"cardinality":4,"embed_dim":3,"name":"a"},{"cardinality":3,"embed_dim":2,"name":"b"}],"cont_cols":["x","y"],"embed":{"cat_embed_activation":"relu","cat_embed_dropout":0.1,"cont_embed":{"method":"periodic","n_frequencies":3,"share_last_layer":true,"sigma":0.5},"cont_embed_activation":null,"cont_embed_dropout":0.2,"cont_norm":"layer_norm","full_embed_dropout":false,"shared_embed":{"frac_shared_embed":0.25,"kind":"overwrite"},"use_cat_bias":true,"with_cls_token":true},"ff_dropout":0.2,"ff_factor":4.0,"input_dim":8,"mlp":{"activation":"relu","batchnorm":false,"batchnorm_last":false,"dropout":0.1,"hidden_dims":[6,3],"linear_first":true},"model":"saint","n_blocks":1,"n_heads":4,"transformer_activation":"gelu","use_qkv_bias":true}"#,
    r#"{"attn_dropout":0.2,"cat_embed":[{"cardinality":4,"embed_dim":3,"name":"a"},{"cardinality":3,"embed_dim":2,"name":"b"}],"cont_cols":["x","y"],"embed":{"cat_embed_activation":"relu","cat_embed_dropout":0.1,"cont_embed":{"edges":[[-1.0,0.0,1.0],[-2.0,2.0]],"method":"piecewise"},"cont_embed_activation":null,"cont_embed_dropout":0.2,"cont_norm":"layer_norm","full_embed_dropout":false,"shared_embed":{"frac_shared_embed":0.25,"kind":"overwrite"},"use_cat_bias":true,"with_cls_token":true},"ff_dropout":0.1,"ff_factor":1.33,"input_dim":8,"kv_compression_factor":0.5,"kv_sharing":false,"mlp":null,"model":"ft_transformer","n_blocks":4,"n_heads":2,"transformer_activation":"reglu","use_qkv_bias":false}"#,
    r#"{"attn_dropout":0.1,"cat_embed":[{"cardinality":4,"embed_dim":3,"name":"a"},{"cardinality":3,"embed_dim":2,"name":"b"}],"cont_cols":["x","y"],"embed":{"cat_embed_activation":"relu","cat_embed_dropout":0.1,"cont_embed":{"method":"periodic","n_frequencies":3,"share_last_layer":true,"sigma":0.5},"cont_embed_activation":null,"cont_embed_dropout":0.2,"cont_norm":"layer_norm","full_embed_dropout":false,"shared_embed":{"frac_shared_embed":0.25,"kind":"overwrite"},"use_cat_bias":true,"with_cls_token":true},"ff_dropout":0.2,"ff_factor":4.0,"input_dim":8,"mlp":{"activation":"relu","batchnorm":false,"batchnorm_last":false,"dropout":0.1,"hidden_dims":[6,3],"linear_first":true},"model":"tab_fastformer","n_blocks":4,"n_heads":2,"share_qv_weights":false,"share_weights":false,"transformer_activation":"relu","use_bias":true}"#,
    r#"{"attn_dropout":0.1,"cat_embed":[{"cardinality":4,"embed_dim":3,"name":"a"},{"cardinality":3,"embed_dim":2,"name":"b"}],"cont_cols":["x","y"],"embed":{"cat_embed_activation":"relu","cat_embed_dropout":0.1,"cont_embed":{"method":"periodic","n_frequencies":3,"share_last_layer":true,"sigma":0.5},"cont_embed_activation":null,"cont_embed_dropout":0.2,"cont_norm":"layer_norm","full_embed_dropout":false,"shared_embed":{"frac_shared_embed":0.25,"kind":"overwrite"},"use_cat_bias":true,"with_cls_token":true},"ff_dropout":0.1,"ff_factor":4.0,"input_dim":8,"latent_dim":12,"mlp":{"activation":"relu","batchnorm":false,"batchnorm_last":false,"dropout":0.1,"hidden_dims":[6,3],"linear_first":true},"model":"tab_perceiver","n_cross_attn_heads":2,"n_cross_attns":2,"n_latent_blocks":2,"n_latent_heads":3,"n_latents":3,"n_perceiver_blocks":3,"share_weights":true,"transformer_activation":"geglu"}"#,
    r#"{"attn_activation":"leaky_relu","attn_dropout":0.2,"cat_embed":[{"cardinality":4,"embed_dim":3,"name":"a"},{"cardinality":3,"embed_dim":2,"name":"b"}],"cont_cols":["x","y"],"embed":{"cat_embed_activation":"relu","cat_embed_dropout":0.1,"cont_embed":{"method":"periodic","n_frequencies":3,"share_last_layer":true,"sigma":0.5},"cont_embed_activation":null,"cont_embed_dropout":0.2,"cont_norm":"layer_norm","full_embed_dropout":false,"shared_embed":{"frac_shared_embed":0.25,"kind":"overwrite"},"use_cat_bias":true,"with_cls_token":true},"input_dim":6,"model":"context_attention_mlp","n_blocks":2,"with_addnorm":true}"#,
    r#"{"attn_activation":"leaky_relu","attn_dropout":0.2,"cat_embed":[{"cardinality":4,"embed_dim":3,"name":"a"},{"cardinality":3,"embed_dim":2,"name":"b"}],"cont_cols":["x","y"],"embed":{"cat_embed_activation":"relu","cat_embed_dropout":0.1,"cont_embed":{"method":"periodic","n_frequencies":3,"share_last_layer":true,"sigma":0.5},"cont_embed_activation":null,"cont_embed_dropout":0.2,"cont_norm":"layer_norm","full_embed_dropout":false,"shared_embed":{"frac_shared_embed":0.25,"kind":"overwrite"},"use_cat_bias":true,"with_cls_token":true},"input_dim":6,"model":"self_attention_mlp","n_blocks":3,"n_heads":3,"use_bias":true,"with_addnorm":true}"#,
];

/// `{"model": tag}` read and written before the shared parts: each model's defaults.
#[rustfmt::skip]
const DEFAULTS: [&str; 7] = [
    r#"{"attn_dropout":0.2,"cat_embed":[],"cont_cols":[],"embed":{"cat_embed_activation":null,"cat_embed_dropout":0.0,"cont_embed":{"method":"standard"},"cont_embed_activation":null,"cont_embed_dropout":0.0,"cont_norm":"none","full_embed_dropout":false,"shared_embed":{"kind":"none"},"use_cat_bias":false,"with_cls_token":false},"embed_continuous":false,"ff_dropout":0.1,"ff_factor":4.0,"input_dim":32,"mlp":null,"model":"tab_transformer","n_blocks":4,"n_heads":8,"transformer_activation":"gelu","use_qkv_bias":false}"#,
    r#"{"attn_dropout":0.1,"cat_embed":[],"cont_cols":[],"embed":{"cat_embed_activation":null,"cat_embed_dropout":0.0,"cont_embed":{"method":"standard"},"cont_embed_activation":null,"cont_embed_dropout":0.0,"cont_norm":"none","full_embed_dropout":false,"shared_embed":{"kind":"none"},"use_cat_bias":false,"with_cls_token":false},"ff_dropout":0.2,"ff_factor":4.0,"input_dim":32,"mlp":null,"model":"saint","n_blocks":2,"n_heads":8,"transformer_activation":"gelu","use_qkv_bias":false}"#,
    r#"{"attn_dropout":0.2,"cat_embed":[],"cont_cols":[],"embed":{"cat_embed_activation":null,"cat_embed_dropout":0.0,"cont_embed":{"method":"standard"},"cont_embed_activation":null,"cont_embed_dropout":0.0,"cont_norm":"none","full_embed_dropout":false,"shared_embed":{"kind":"none"},"use_cat_bias":false,"with_cls_token":false},"ff_dropout":0.1,"ff_factor":1.33,"input_dim":64,"kv_compression_factor":0.5,"kv_sharing":false,"mlp":null,"model":"ft_transformer","n_blocks":4,"n_heads":8,"transformer_activation":"reglu","use_qkv_bias":false}"#,
    r#"{"attn_dropout":0.1,"cat_embed":[],"cont_cols":[],"embed":{"cat_embed_activation":null,"cat_embed_dropout":0.0,"cont_embed":{"method":"standard"},"cont_embed_activation":null,"cont_embed_dropout":0.0,"cont_norm":"none","full_embed_dropout":false,"shared_embed":{"kind":"none"},"use_cat_bias":false,"with_cls_token":false},"ff_dropout":0.2,"ff_factor":4.0,"input_dim":32,"mlp":null,"model":"tab_fastformer","n_blocks":4,"n_heads":8,"share_qv_weights":false,"share_weights":false,"transformer_activation":"relu","use_bias":false}"#,
    r#"{"attn_dropout":0.1,"cat_embed":[],"cont_cols":[],"embed":{"cat_embed_activation":null,"cat_embed_dropout":0.0,"cont_embed":{"method":"standard"},"cont_embed_activation":null,"cont_embed_dropout":0.0,"cont_norm":"none","full_embed_dropout":false,"shared_embed":{"kind":"none"},"use_cat_bias":false,"with_cls_token":false},"ff_dropout":0.1,"ff_factor":4.0,"input_dim":32,"latent_dim":128,"mlp":null,"model":"tab_perceiver","n_cross_attn_heads":4,"n_cross_attns":1,"n_latent_blocks":4,"n_latent_heads":4,"n_latents":16,"n_perceiver_blocks":4,"share_weights":false,"transformer_activation":"geglu"}"#,
    r#"{"attn_activation":"leaky_relu","attn_dropout":0.2,"cat_embed":[],"cont_cols":[],"embed":{"cat_embed_activation":null,"cat_embed_dropout":0.0,"cont_embed":{"method":"standard"},"cont_embed_activation":null,"cont_embed_dropout":0.0,"cont_norm":"none","full_embed_dropout":false,"shared_embed":{"kind":"none"},"use_cat_bias":false,"with_cls_token":false},"input_dim":32,"model":"context_attention_mlp","n_blocks":3,"with_addnorm":false}"#,
    r#"{"attn_activation":"leaky_relu","attn_dropout":0.2,"cat_embed":[],"cont_cols":[],"embed":{"cat_embed_activation":null,"cat_embed_dropout":0.0,"cont_embed":{"method":"standard"},"cont_embed_activation":null,"cont_embed_dropout":0.0,"cont_norm":"none","full_embed_dropout":false,"shared_embed":{"kind":"none"},"use_cat_bias":false,"with_cls_token":false},"input_dim":32,"model":"self_attention_mlp","n_blocks":3,"n_heads":8,"use_bias":false,"with_addnorm":false}"#,
];

#[test]
fn configs_saved_before_the_shared_parts_read_and_write_the_same_json() {
    for json in SAVED {
        let saved: Value = serde_json::from_str(json).unwrap();
        let config: TabModelConfig = serde_json::from_value(saved.clone()).unwrap();
        assert_eq!(serde_json::to_value(&config).unwrap(), saved, "{json}");
        config.validate().unwrap();
    }
}

#[test]
fn missing_keys_take_each_models_defaults() {
    let defaults: [TabModelConfig; 7] = [
        TabTransformerConfig::default().into(),
        SaintConfig::default().into(),
        FtTransformerConfig::default().into(),
        TabFastFormerConfig::default().into(),
        TabPerceiverConfig::default().into(),
        ContextAttentionMlpConfig::default().into(),
        SelfAttentionMlpConfig::default().into(),
    ];
    for (json, default) in DEFAULTS.iter().zip(defaults) {
        let saved: Value = serde_json::from_str(json).unwrap();
        let tag = saved["model"].as_str().unwrap();
        let config: TabModelConfig =
            serde_json::from_str(&format!(r#"{{"model": "{tag}"}}"#)).unwrap();
        assert_eq!(serde_json::to_value(&config).unwrap(), saved, "{tag}");
        assert_eq!(config, default, "{tag}");
    }
}

#[test]
fn shared_fields_read_and_set_through_the_config() {
    let mut config = SaintConfig::default()
        .input_dim(16)
        .n_heads(4)
        .mlp(Default::default());
    assert_eq!(
        (config.input_dim, config.n_heads, config.n_blocks),
        (16, 4, 2)
    );
    config.mlp = None;
    config.cont_cols = vec!["x".into()];
    assert_eq!(config.base.columns.cont_cols, ["x"]);
    assert!(config.base.mlp.is_none());
    let mlp = ContextAttentionMlpConfig::default()
        .input_dim(6)
        .n_blocks(2);
    assert_eq!((mlp.input_dim, mlp.n_blocks, mlp.attn_dropout), (6, 2, 0.2));
}
