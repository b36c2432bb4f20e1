//! SAINT (Somepalli et al. 2021): every block applies attention over the columns of each row,
//! then attention over the rows of the batch (inter-sample attention, each row being one token
//! of width `n_tokens · input_dim`), each followed by a feed-forward layer, all post-norm.
//!
//! Because of the inter-sample attention a row's output depends on the other rows of its batch,
//! in training and in prediction (as in the reference): predictions change with the evaluation
//! batch size. The row attention costs `O(batch²)` memory.
use crate::error::Result;
use crate::macros::setters;
use crate::models::tabular::attention_embeddings::{AttnEmbedConfig, AttnEmbeddings, Embedded};
use crate::models::tabular::attention_layers::attention_component_methods;
use crate::models::tabular::attention_layers::{
    build_top_mlp, check_ff_factor, check_mlp_and_embed, check_transformer, importance_over_rows,
    key_mass, pool_tokens, pooled_width, tokens_to_columns, AttentionStore, MultiHeadAttention,
    TransformerActivation, TransformerBlock,
};
use crate::models::{Component, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};
use widedeep_preprocessing::{CatColumnMeta, TabMeta};

/// Configuration of [`Saint`]; defaults follow pytorch-widedeep 1.7.0. Start from
/// [`SaintConfig::from_meta`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SaintConfig {
    /// Categorical columns (name and cardinality; `embed_dim` is ignored).
    pub cat_embed: Vec<CatColumnMeta>,
    pub cont_cols: Vec<String>,
    /// Token width (32).
    pub input_dim: i64,
    /// Heads of both attentions (8); must divide `input_dim`.
    pub n_heads: i64,
    pub use_qkv_bias: bool,
    /// SAINT blocks (2).
    pub n_blocks: i64,
    /// 0.1.
    pub attn_dropout: f64,
    /// 0.2.
    pub ff_dropout: f64,
    /// Feed-forward hidden width = `floor(width · ff_factor)` (4).
    pub ff_factor: f64,
    pub transformer_activation: TransformerActivation,
    pub embed: AttnEmbedConfig,
    /// MLP on top (none by default).
    pub mlp: Option<MlpConfig>,
}

impl Default for SaintConfig {
    fn default() -> Self {
        Self {
            cat_embed: Vec::new(),
            cont_cols: Vec::new(),
            input_dim: 32,
            n_heads: 8,
            use_qkv_bias: false,
            n_blocks: 2,
            attn_dropout: 0.1,
            ff_dropout: 0.2,
            ff_factor: 4.0,
            transformer_activation: TransformerActivation::Gelu,
            embed: AttnEmbedConfig::default(),
            mlp: None,
        }
    }
}

const NAME: &str = "saint";

impl SaintConfig {
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
        embed: AttnEmbedConfig,
    );

    /// Puts an MLP on top.
    pub fn mlp(mut self, mlp: MlpConfig) -> Self {
        self.mlp = Some(mlp);
        self
    }

    /// Checks every field; errors name it (`saint.n_heads`, …).
    pub fn validate(&self) -> Result<()> {
        check_transformer(
            NAME,
            self.input_dim,
            self.n_heads,
            self.n_blocks,
            (self.attn_dropout, self.ff_dropout),
            self.ff_factor,
        )?;
        check_mlp_and_embed(
            NAME,
            self.mlp.as_ref(),
            &self.embed,
            self.input_dim,
            self.cont_cols.len(),
        )
    }

    /// Validates and builds the model under `path`.
    pub fn build(&self, path: &nn::Path) -> Result<Saint> {
        self.validate()?;
        let embed = AttnEmbeddings::new(
            &(path / "embed"),
            &self.cat_embed,
            &self.cont_cols,
            self.input_dim,
            &self.embed,
            true,
            NAME,
        )?;
        let d = self.input_dim;
        let n = embed.n_tokens();
        let block = |p: nn::Path, width: i64| -> Result<TransformerBlock> {
            let hidden = check_ff_factor(width, self.ff_factor, format!("{NAME}.ff_factor"))?;
            let attn = MultiHeadAttention::new_self(
                &(&p / "attn"),
                width,
                self.n_heads,
                self.use_qkv_bias,
                self.attn_dropout,
            );
            Ok(TransformerBlock::new(
                &p,
                attn,
                width,
                hidden,
                self.transformer_activation,
                (self.attn_dropout, self.ff_dropout),
            ))
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
        let (mlp, output_dim) = build_top_mlp(path, NAME, self.mlp.as_ref(), features)?;
        Ok(Saint {
            embed,
            blocks,
            mlp,
            output_dim,
            attention: AttentionStore::default(),
        })
    }
}

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
    fn forward_embedded_inner(&self, e: Embedded, train: bool) -> Tensor {
        let mut x = e.tokens;
        let (b, n, d) = x.size3().expect("3-d tokens");
        let mut weights = Vec::with_capacity(2 * self.blocks.len());
        for blk in &self.blocks {
            let (y, wc) = blk.col.forward_t(&x, train);
            let (y, wr) = blk.row.forward_t(&y.reshape([1, b, n * d]), train);
            x = y.view([b, n, d]);
            weights.push(wc);
            weights.push(wr);
        }
        self.attention.set(weights);
        let out = pool_tokens(&x, self.embed.has_cls());
        match &self.mlp {
            Some(m) => m.forward_t(&out, train),
            None => out,
        }
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

// Transitional: the inherent `validate`/`build` move into this impl with the component
// contract refactor.
impl crate::models::ComponentConfig for SaintConfig {
    type Component = Saint;
    const NAME: &'static str = "saint";
    fn validate(&self) -> Result<()> {
        SaintConfig::validate(self)
    }
    fn build(&self, path: &nn::Path) -> Result<Saint> {
        SaintConfig::build(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::attention_embeddings::ContEmbed;
    use crate::models::tabular::testing::*;
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
