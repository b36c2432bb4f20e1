//! The attention models of the tabular zoo learn Adult, save and load, and explain themselves.
use crate::common::*;
use widedeep::models::TabModelConfig;
use widedeep::prelude::*;
use widedeep::preprocessing::TabMeta;

/// Small versions of every attention model (tokens of width 8–16, 1–2 blocks) so that each
/// test trains in a few seconds in debug builds.
fn small(model: &str, meta: &TabMeta) -> TabModelConfig {
    let cls = AttnEmbedConfig::new().with_cls_token(true);
    let mlp = MlpConfig::default().hidden_dims([16]);
    match model {
        "tab_transformer" => TabTransformerConfig::from_meta(meta)
            .input_dim(8)
            .n_heads(2)
            .n_blocks(2)
            .embed(AttnEmbedConfig::new().cont_norm(ContNorm::BatchNorm))
            .mlp(mlp)
            .into(),
        "saint" => SaintConfig::from_meta(meta)
            .input_dim(8)
            .n_heads(2)
            .n_blocks(1)
            .mlp(mlp)
            .into(),
        "ft_transformer" => FtTransformerConfig::from_meta(meta)
            .input_dim(16)
            .n_heads(2)
            .n_blocks(2)
            .embed(cls)
            .into(),
        "context_attention_mlp" => ContextAttentionMlpConfig::from_meta(meta)
            .input_dim(16)
            .attn_dropout(0.1)
            .n_blocks(2)
            .into(),
        "self_attention_mlp" => SelfAttentionMlpConfig::from_meta(meta)
            .input_dim(8)
            .n_heads(2)
            .n_blocks(2)
            .into(),
        "tab_perceiver" => TabPerceiverConfig::from_meta(meta)
            .input_dim(8)
            .n_cross_attn_heads(2)
            .n_latents(4)
            .latent_dim(16)
            .n_latent_heads(2)
            .n_latent_blocks(1)
            .n_perceiver_blocks(2)
            .into(),
        "tab_fastformer" => TabFastFormerConfig::from_meta(meta)
            .input_dim(8)
            .n_heads(2)
            .n_blocks(2)
            .embed(cls)
            .into(),
        other => panic!("unknown model {other}"),
    }
}

/// Trains `model` for 2 epochs on 5 000 Adult rows and checks test accuracy, attention weights
/// and feature importance.
fn learns_adult(model: &str) {
    let (train_df, test_df) = adult_split(5_000, 2_000);
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&CAT, &CONT))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df).unwrap();
    let test = prep.transform(&test_df).unwrap();
    let meta = prep.tab_meta().unwrap();
    let cfg = WideDeepConfig::new()
        .deeptabular(small(model, &meta))
        .seed(7);
    let wd = WideDeep::new(&cfg, Device::Cpu).unwrap();
    let config = trainer_config(&prep, 7, 2).lr(3e-3).eval_batch_size(512);
    let mut trainer = Trainer::new(wd, config).unwrap();
    trainer.fit(&train, None).unwrap();
    let scores = trainer.evaluate(&test, None).unwrap();
    eprintln!("{model}: {scores:?}");
    assert!(
        scores["accuracy"] >= 0.80,
        "{model}: test accuracy {}",
        scores["accuracy"]
    );

    let component = &trainer.model().components()[0];
    let names = component.feature_names();
    assert_eq!(names.len(), CAT.len() + CONT.len());
    let imp = component.feature_importance(&test.input).unwrap().unwrap();
    assert_eq!(imp.len(), names.len());
    assert!(imp.iter().all(|&v| v >= 0.0));
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{imp:?}");
    let weights = component.attention_weights().unwrap();
    assert!(!weights.is_empty());
    // after feature_importance the weights are those of its last chunk of rows
    assert!(weights[0].size()[0] <= 1024);
}

#[test]
fn tab_transformer_learns_adult() {
    learns_adult("tab_transformer");
}

#[test]
fn saint_learns_adult() {
    learns_adult("saint");
}

#[test]
fn ft_transformer_learns_adult() {
    learns_adult("ft_transformer");
}

#[test]
fn context_attention_mlp_learns_adult() {
    learns_adult("context_attention_mlp");
}

#[test]
fn self_attention_mlp_learns_adult() {
    learns_adult("self_attention_mlp");
}

#[test]
fn tab_perceiver_learns_adult() {
    learns_adult("tab_perceiver");
}

#[test]
fn tab_fastformer_learns_adult() {
    learns_adult("tab_fastformer");
}

#[test]
fn attention_models_save_and_load_in_a_pipeline() {
    let (train_df, test_df) = adult_split(600, 200);
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&CAT, &CONT))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df).unwrap();
    let meta = prep.tab_meta().unwrap();
    // piecewise embeddings with edges fitted on the training data travel in the config
    let edges = ContEmbed::piecewise_quantiles(train.input.cont.as_ref().unwrap(), 4).unwrap();
    let tab = FtTransformerConfig::from_meta(&meta)
        .input_dim(8)
        .n_heads(2)
        .n_blocks(1)
        .embed(
            AttnEmbedConfig::new()
                .with_cls_token(true)
                .cont_embed(edges)
                .shared_embed(SharedEmbed::Add),
        );
    let cfg = WideDeepConfig::new().deeptabular(tab).seed(3);
    let model = WideDeep::new(&cfg, Device::Cpu).unwrap();
    let mut trainer = Trainer::new(model, trainer_config(&prep, 3, 1)).unwrap();
    trainer.fit(&train, None).unwrap();
    let pipeline = Pipeline::new(prep, trainer);
    let dir = tempfile::tempdir().unwrap();
    pipeline.save(dir.path()).unwrap();
    let loaded = Pipeline::load(dir.path(), Device::Cpu).unwrap();
    let a = pipeline.predict_proba(&test_df).unwrap();
    let b = loaded.predict_proba(&test_df).unwrap();
    assert!(a.equal(&b), "reloaded FT-Transformer predicts differently");
}

#[test]
fn invalid_attention_configs_are_typed_errors() {
    let (train_df, _) = adult_split(300, 10);
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&CAT, &CONT))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    prep.fit(&train_df).unwrap();
    let meta = prep.tab_meta().unwrap();
    let bad = WideDeepConfig::new().deeptabular(
        FtTransformerConfig::from_meta(&meta)
            .input_dim(30)
            .n_heads(8),
    );
    match WideDeep::new(&bad, Device::Cpu) {
        Err(WideDeepError::InvalidConfig { field, .. }) => {
            assert_eq!(field, "ft_transformer.n_heads")
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    let bad = WideDeepConfig::new().deeptabular(
        TabTransformerConfig::from_meta(&meta)
            .embed_continuous(true)
            .embed(AttnEmbedConfig::new().cont_embed(ContEmbed::Piecewise {
                edges: vec![vec![0.0, 1.0]; 2],
            })),
    );
    let err = WideDeep::new(&bad, Device::Cpu).unwrap_err().to_string();
    assert!(
        err.contains("tab_transformer.embed.cont_embed.edges"),
        "{err}"
    );
}
