//! [`TextTransformer`]: a Transformer encoder over token embeddings, and the multi-head
//! self-attention shared with [`super::Bert`].
use super::{
    check_part, check_positive, embedding_and_head_setters, mask_from_ids, masked_mean,
    token_component_methods, AttentionStore, EmbeddingMatrix, TextInput, TokenEmbedding, MASK_FILL,
};
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::models::checks::check_dropout;
use crate::models::dropout::DropoutExt;
use crate::models::mlp::{apply_head, build_head, validate_head};
use crate::models::{Component, ComponentConfig, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// Multi-head self-attention with separate query/key/value projections (BERT's layout):
/// `[batch, seq, d]` → `[batch, seq, d]`, padding keys masked.
#[derive(Debug)]
pub(crate) struct SelfAttention {
    pub query: nn::Linear,
    pub key: nn::Linear,
    pub value: nn::Linear,
    pub out: nn::Linear,
    n_heads: i64,
    dropout: f64,
}

impl SelfAttention {
    /// `query`, `key`, `value` (`d → d`) under `qkv` and the output projection at `out`.
    pub fn new(qkv: &nn::Path, out: &nn::Path, d: i64, n_heads: i64, dropout: f64) -> Self {
        let lin = |p: nn::Path| nn::linear(p, d, d, Default::default());
        Self {
            query: lin(qkv / "query"),
            key: lin(qkv / "key"),
            value: lin(qkv / "value"),
            out: lin(out.clone()),
            n_heads,
            dropout,
        }
    }

    /// Attention of every position over the real positions (`mask`).
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, d]`, `mask`: `[batch, seq]` bool (real tokens)
    /// - returns the output `[batch, seq, d]` and the weights `[batch, heads, seq, seq]`
    pub fn forward(&self, x: &Tensor, mask: &Tensor, train: bool) -> (Tensor, Tensor) {
        let (b, s, d) = x.size3().expect("[batch, seq, d]");
        let h = self.n_heads;
        let dh = d / h;
        let split = |t: Tensor| t.view([b, s, h, dh]).transpose(1, 2);
        let q = split(x.apply(&self.query));
        let k = split(x.apply(&self.key));
        let v = split(x.apply(&self.value));
        let scores = q.matmul(&k.transpose(-2, -1)) / (dh as f64).sqrt();
        let key_pad = mask.logical_not().view([b, 1, 1, s]);
        let scores = scores.masked_fill(&key_pad, MASK_FILL);
        let w = scores.softmax(-1, scores.kind());
        let ctx = w.dropout_t(self.dropout, train).matmul(&v);
        let ctx = ctx.transpose(1, 2).contiguous().view([b, s, d]);
        (ctx.apply(&self.out), w)
    }
}

/// Position encoding of [`TextTransformer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Positional {
    /// Fixed sine/cosine encoding (the default).
    #[default]
    Sinusoidal,
    /// A learned embedding per position (up to `max_len`).
    Learned,
    /// No position information.
    None,
}

/// How [`TextTransformer`] pools the sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextPooling {
    /// A learned `[CLS]` vector is prepended and its output is used.
    Cls,
    /// Mean of the outputs over the real tokens (the default).
    #[default]
    Mean,
}

/// Configuration of [`TextTransformer`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TextTransformerConfig {
    /// Which text input the model reads, and its vocabulary.
    pub input: TextInput,
    /// Model width (the token embedding width).
    pub embed_dim: i64,
    /// Initial embedding values `[vocab_size, embed_dim]`; not serialized (the trained values
    /// are in the model's weights).
    #[serde(skip)]
    pub pretrained_embeddings: Option<EmbeddingMatrix>,
    /// Keep the embeddings fixed during training.
    pub freeze_embeddings: bool,
    /// Attention heads per block (must divide the embedding width).
    pub n_heads: i64,
    /// Number of encoder blocks.
    pub n_blocks: i64,
    /// Width of the feed-forward layer as a multiple of `embed_dim`.
    pub ff_factor: i64,
    /// Dropout on the attention weights.
    pub attn_dropout: f64,
    /// Dropout on the embeddings and after each sub-layer.
    pub ff_dropout: f64,
    /// The position encoding.
    pub positional: Positional,
    /// Longest sequence accepted (positions of the learned encoding).
    pub max_len: i64,
    /// How the sequence is pooled.
    pub pooling: TextPooling,
    /// Optional MLP on the pooled output.
    pub head: Option<MlpConfig>,
}

impl Default for TextTransformerConfig {
    fn default() -> Self {
        Self {
            input: TextInput::default(),
            embed_dim: 32,
            pretrained_embeddings: None,
            freeze_embeddings: false,
            n_heads: 4,
            n_blocks: 2,
            ff_factor: 4,
            attn_dropout: 0.1,
            ff_dropout: 0.1,
            positional: Positional::Sinusoidal,
            max_len: 512,
            pooling: TextPooling::Mean,
            head: None,
        }
    }
}

impl TextTransformerConfig {
    /// A model for the text input described by `input` (see [`TextInput::from_meta`]).
    pub fn new(input: TextInput) -> Self {
        Self {
            input,
            ..Default::default()
        }
    }
    setters!(
        embed_dim: i64,
        freeze_embeddings: bool,
        n_heads: i64,
        n_blocks: i64,
        ff_factor: i64,
        attn_dropout: f64,
        ff_dropout: f64,
        positional: Positional,
        max_len: i64,
        pooling: TextPooling,
    );
    embedding_and_head_setters!();
}

impl ComponentConfig for TextTransformerConfig {
    type Component = TextTransformer;
    const NAME: &'static str = "text_transformer";

    /// Checks the input, the sizes, the dropouts, the embedding options (`n_heads` must divide
    /// the embedding width) and the head; errors name the field (`text_transformer.n_heads`).
    fn validate(&self) -> Result<()> {
        let p = Self::NAME;
        self.input.validate(p)?;
        check_positive(self.n_heads, p, "n_heads")?;
        check_positive(self.n_blocks, p, "n_blocks")?;
        check_positive(self.ff_factor, p, "ff_factor")?;
        check_positive(self.max_len, p, "max_len")?;
        check_dropout(self.attn_dropout, &format!("{p}.attn_dropout"))?;
        check_dropout(self.ff_dropout, &format!("{p}.ff_dropout"))?;
        let d = TokenEmbedding::validate(
            &self.input,
            self.embed_dim,
            self.pretrained_embeddings.as_ref(),
            p,
        )?;
        ensure!(
            d % self.n_heads == 0,
            config(format!("{p}.n_heads")),
            "must divide embed_dim {d}, got {}",
            self.n_heads
        );
        validate_head(&self.head, p)
    }

    /// Validates, then builds the token embedding (`embed`), the learned positions
    /// (`pos_embed`) or `[CLS]` vector (`cls`) when chosen, the blocks (`block_{i}`) and the
    /// head (`head`) under `path`, in this order.
    fn build(&self, path: &nn::Path) -> Result<TextTransformer> {
        self.validate()?;
        let p = Self::NAME;
        let embed = TokenEmbedding::new(
            &(path / "embed"),
            &self.input,
            self.embed_dim,
            self.pretrained_embeddings.as_ref(),
            self.freeze_embeddings,
            p,
        )?;
        let d = embed.dim();
        let n_pos = self.max_len + 1; // room for [CLS]
        let pos = match self.positional {
            Positional::Sinusoidal => Some(sinusoidal(n_pos, d).to_device(path.device())),
            Positional::Learned => Some(path.var(
                "pos_embed",
                &[n_pos, d],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            )),
            Positional::None => None,
        };
        let cls = (self.pooling == TextPooling::Cls).then(|| {
            path.var(
                "cls",
                &[d],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            )
        });
        let blocks = (0..self.n_blocks)
            .map(|i| {
                let bp = path / format!("block_{i}");
                Block {
                    attn: SelfAttention::new(
                        &(&bp / "attn"),
                        &(&bp / "attn_out"),
                        d,
                        self.n_heads,
                        self.attn_dropout,
                    ),
                    norm1: nn::layer_norm(&bp / "norm1", vec![d], Default::default()),
                    ff1: nn::linear(&bp / "ff1", d, d * self.ff_factor, Default::default()),
                    ff2: nn::linear(&bp / "ff2", d * self.ff_factor, d, Default::default()),
                    norm2: nn::layer_norm(&bp / "norm2", vec![d], Default::default()),
                }
            })
            .collect();
        let head = build_head(&self.head, path, d, p)?;
        Ok(TextTransformer {
            input: self.input.clone(),
            embed,
            pos,
            cls,
            blocks,
            dropout: self.ff_dropout,
            max_len: self.max_len,
            head,
            weights: AttentionStore::default(),
        })
    }
}

/// The fixed sine/cosine table `[n, d]`.
pub(crate) fn sinusoidal(n: i64, d: i64) -> Tensor {
    let pos = Tensor::arange(n, (Kind::Float, tch::Device::Cpu)).unsqueeze(1);
    let i = Tensor::arange(d, (Kind::Float, tch::Device::Cpu));
    let pair = (&i / 2.0).floor() * 2.0;
    let freq = (pair * (-(10_000f64.ln()) / d as f64)).exp();
    let angle = pos * freq.unsqueeze(0);
    let even = i.remainder(2.0).eq(0.0).unsqueeze(0);
    angle.sin().where_self(&even, &angle.cos())
}

/// One post-norm encoder block: self-attention, then the GELU feed-forward layer.
#[derive(Debug)]
struct Block {
    attn: SelfAttention,
    norm1: nn::LayerNorm,
    ff1: nn::Linear,
    ff2: nn::Linear,
    norm2: nn::LayerNorm,
}

/// A Transformer encoder: token embeddings + positions → `n_blocks` post-norm blocks
/// (self-attention, feed-forward with GELU) → `[CLS]` or mean pooling:
/// `text[i]` `[batch, seq]` → `[batch, embed_dim]` (or the head's last width).
/// [`Component::attention_weights`]: one `[batch, heads, seq', seq']` tensor per block
/// (`seq' = seq + 1` with `[CLS]`).
#[derive(Debug)]
pub struct TextTransformer {
    input: TextInput,
    embed: TokenEmbedding,
    pos: Option<Tensor>,
    cls: Option<Tensor>,
    blocks: Vec<Block>,
    dropout: f64,
    max_len: i64,
    head: Option<Mlp>,
    weights: AttentionStore,
}

impl TextTransformer {
    /// Positions, blocks, pooling and head from embedded tokens `[batch, seq, d]` and the
    /// real-token mask `[batch, seq]`.
    fn run(&self, emb: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let b = emb.size()[0];
        let d = self.embed.dim();
        let (mut x, mask) = match &self.cls {
            Some(cls) => {
                let c = cls.view([1, 1, d]).expand([b, 1, d], false);
                let m = Tensor::ones([b, 1], (Kind::Bool, mask.device()));
                (
                    Tensor::cat(&[c, emb.shallow_clone()], 1),
                    Tensor::cat(&[&m, mask], 1),
                )
            }
            None => (emb.shallow_clone(), mask.shallow_clone()),
        };
        if let Some(pos) = &self.pos {
            // positions count real tokens only, so left and right padding agree
            let ids = (mask.to_kind(Kind::Int64).cumsum(1, Kind::Int64) - 1).clamp_min(0);
            x = Tensor::embedding(pos, &ids, -1, false, false) + &x;
        }
        let mut x = x.dropout_t(self.dropout, train);
        let mut all = Vec::with_capacity(self.blocks.len());
        for blk in &self.blocks {
            let (a, w) = blk.attn.forward(&x, &mask, train);
            x = (&x + a.dropout_t(self.dropout, train)).apply(&blk.norm1);
            let f = x
                .apply(&blk.ff1)
                .gelu("none")
                .dropout_t(self.dropout, train)
                .apply(&blk.ff2);
            x = (&x + f.dropout_t(self.dropout, train)).apply(&blk.norm2);
            all.push(w);
        }
        self.weights.set(all);
        let pooled = match self.cls {
            Some(_) => x.select(1, 0),
            None => masked_mean(&x, &mask),
        };
        apply_head(&self.head, pooled, train)
    }
}

impl Component for TextTransformer {
    token_component_methods!();
    fn output_dim(&self) -> i64 {
        self.head
            .as_ref()
            .map_or(self.embed.dim(), |h| h.output_dim())
    }
    fn check_input(&self, input: &ModelInput) -> Result<()> {
        self.input.check(input, Some(self.max_len))
    }
    fn attention_weights(&self) -> Option<Vec<Tensor>> {
        self.weights.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn x() -> ModelInput {
        ModelInput {
            text: vec![Tensor::from_slice(&[0i64, 0, 3, 4, 5, 7, 1, 2, 3, 4]).view([2, 5])],
            ..Default::default()
        }
    }

    fn cfg() -> TextTransformerConfig {
        TextTransformerConfig::new(TextInput {
            text_index: 0,
            name: "t".into(),
            vocab_size: 10,
            pad_id: 0,
        })
        .embed_dim(8)
        .n_heads(2)
        .max_len(16)
    }

    #[test]
    fn shapes_weights_and_embed_split() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(3);
        for (pooling, positional) in [
            (TextPooling::Mean, Positional::Sinusoidal),
            (TextPooling::Cls, Positional::Learned),
            (TextPooling::Mean, Positional::None),
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let m = cfg()
                .pooling(pooling)
                .positional(positional)
                .build(&vs.root())
                .unwrap();
            m.check_input(&x()).unwrap();
            assert_eq!(m.forward_t(&x(), true).size(), [2, 8]);
            let direct = m.forward_t(&x(), false);
            let w = m.attention_weights().unwrap();
            let s = if pooling == TextPooling::Cls { 6 } else { 5 };
            assert_eq!(w.len(), 2);
            assert_eq!(w[0].size(), [2, 2, s, s]);
            let split = m.forward_embedded(&m.embed(&x()).unwrap(), false).unwrap();
            assert!(direct.allclose(&split, 1e-5, 1e-6, false));
        }
    }

    #[test]
    fn padding_side_does_not_change_the_output() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(4);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = cfg().build(&vs.root()).unwrap();
        let left = ModelInput {
            text: vec![Tensor::from_slice(&[0i64, 0, 3, 4, 5]).view([1, 5])],
            ..Default::default()
        };
        let right = ModelInput {
            text: vec![Tensor::from_slice(&[3i64, 4, 5, 0, 0]).view([1, 5])],
            ..Default::default()
        };
        let (a, b) = (m.forward_t(&left, false), m.forward_t(&right, false));
        assert!(a.allclose(&b, 1e-5, 1e-6, false), "{a} {b}");
    }

    #[test]
    fn bad_configs_and_inputs() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let err = cfg().n_heads(3).build(&vs.root()).unwrap_err().to_string();
        assert!(err.contains("text_transformer.n_heads"), "{err}");
        let m = cfg().max_len(4).build(&vs.root()).unwrap();
        assert!(m
            .check_input(&x())
            .unwrap_err()
            .to_string()
            .contains("maximum 4"));
    }
}
