//! The post-norm transformer block (attention, then a feed-forward layer, each inside a
//! residual and a layer norm), its parts, and the [`TokenMixer`] interface that lets one block
//! and one loop ([`run_blocks`]) serve every kind of attention.
use super::activation::TransformerActivation;
use super::additive::AdditiveAttention;
use super::model::TokenBlock;
use super::multi_head::MultiHeadAttention;
use crate::models::dropout::dropout;
use crate::models::init::torch_linear;
use tch::{nn, Tensor};

/// A layer norm over the last dimension `d`, under `path`.
pub(crate) fn layer_norm(path: &nn::Path, d: i64) -> nn::LayerNorm {
    nn::layer_norm(path, vec![d], Default::default())
}

/// Two-layer feed-forward block: `Linear(d, f[·2]) → activation → dropout → Linear(f, d)`.
#[derive(Debug)]
pub(crate) struct FeedForward {
    w1: nn::Linear,
    w2: nn::Linear,
    act: TransformerActivation,
    dropout: f64,
}

impl FeedForward {
    /// Hidden width `hidden` (doubled before a gated activation) on tokens of width `d`, under
    /// `path` (`w_1`, `w_2`), with dropout `p` after the activation.
    pub fn new(path: &nn::Path, d: i64, hidden: i64, act: TransformerActivation, p: f64) -> Self {
        let w1_out = if act.is_gated() { 2 * hidden } else { hidden };
        Self {
            w1: torch_linear(&(path / "w_1"), d, w1_out, true),
            w2: torch_linear(&(path / "w_2"), hidden, d, true),
            act,
            dropout: p,
        }
    }

    /// # Shapes
    /// - `x`: `[.., d]`; returns `[.., d]`
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        dropout(&self.act.apply(&x.apply(&self.w1)), self.dropout, train).apply(&self.w2)
    }
}

/// Post-norm residual (`AddNorm`): `LayerNorm(x + dropout(f(x)))`.
///
/// # Shapes
/// - `x`, `fx`: `[.., d]`; returns `[.., d]`
pub(crate) fn add_norm(x: &Tensor, fx: &Tensor, ln: &nn::LayerNorm, p: f64, train: bool) -> Tensor {
    (x + dropout(fx, p, train)).apply(ln)
}

/// A layer that maps tokens to tokens and returns its attention weights: the attention layers
/// and the blocks built from them.
pub(crate) trait TokenMixer: std::fmt::Debug {
    /// # Shapes
    /// - `x`: `[b, n, d]`
    /// - returns `[b, n, d]` and the attention weights (shapes documented by each layer)
    fn mix(&self, x: &Tensor, train: bool) -> (Tensor, Tensor);
}

impl TokenMixer for MultiHeadAttention {
    /// Self-attention; weights `[b, h, n, n]`.
    fn mix(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        self.forward_t(x, None, train)
    }
}

impl TokenMixer for AdditiveAttention {
    /// Weights `[b, 2, h, n]`: α and β stacked.
    fn mix(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let (out, alpha, beta) = self.forward_t(x, train);
        (out, Tensor::stack(&[alpha, beta], 1))
    }
}

/// Post-norm transformer block: `x = LN(x + drop(attn(x)))`, `x = LN(x + drop(FF(x)))`.
#[derive(Debug)]
pub(crate) struct TransformerBlock<A = MultiHeadAttention> {
    attn: A,
    ff: FeedForward,
    attn_norm: nn::LayerNorm,
    ff_norm: nn::LayerNorm,
    attn_dropout: f64,
    ff_dropout: f64,
}

impl<A: TokenMixer> TransformerBlock<A> {
    /// `attn` and a feed-forward layer of hidden width `hidden` on tokens of width `d`, under
    /// `path` (`ff`, `attn_norm`, `ff_norm`).
    pub fn new(
        path: &nn::Path,
        attn: A,
        d: i64,
        hidden: i64,
        act: TransformerActivation,
        (attn_dropout, ff_dropout): (f64, f64),
    ) -> Self {
        Self {
            attn,
            ff: FeedForward::new(&(path / "ff"), d, hidden, act, ff_dropout),
            attn_norm: layer_norm(&(path / "attn_norm"), d),
            ff_norm: layer_norm(&(path / "ff_norm"), d),
            attn_dropout,
            ff_dropout,
        }
    }
}

impl<A: TokenMixer + Send> TokenBlock for TransformerBlock<A> {}

impl<A: TokenMixer> TokenMixer for TransformerBlock<A> {
    fn mix(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let (a, w) = self.attn.mix(x, train);
        let x = add_norm(x, &a, &self.attn_norm, self.attn_dropout, train);
        let f = self.ff.forward_t(&x, train);
        (add_norm(&x, &f, &self.ff_norm, self.ff_dropout, train), w)
    }
}

/// Runs `blocks` in turn over the tokens.
///
/// # Shapes
/// - `tokens`: `[b, n, d]`
/// - returns the output tokens `[b, n, d]` and each block's attention weights, in order
pub(crate) fn run_blocks<'a, B: TokenMixer + 'a>(
    blocks: impl IntoIterator<Item = &'a B>,
    tokens: Tensor,
    train: bool,
) -> (Tensor, Vec<Tensor>) {
    let mut x = tokens;
    let mut weights = Vec::new();
    for b in blocks {
        let (y, w) = b.mix(&x, train);
        x = y;
        weights.push(w);
    }
    (x, weights)
}
