//! Scaled dot-product attention and multi-head (self- and cross-) attention (Vaswani et al.
//! 2017), with the head reshaping and the softmax the other attention layers share.
use crate::models::dropout::dropout;
use crate::models::init::torch_linear;
use crate::models::tabular::fused_attention;
use tch::{nn, Kind, Tensor};

/// Splits the last dimension into heads.
///
/// # Shapes
/// - `x`: `[b, s, h·e]`
/// - returns `[b, h, s, e]`
pub(super) fn split_heads(x: &Tensor, h: i64) -> Tensor {
    let (b, s, d) = x.size3().expect("3-d input");
    x.view([b, s, h, d / h]).transpose(1, 2)
}

/// Joins the heads into the last dimension (the inverse of [`split_heads`]).
///
/// # Shapes
/// - `x`: `[b, h, s, e]`
/// - returns `[b, s, h·e]`
pub(super) fn merge_heads(x: &Tensor) -> Tensor {
    let (b, h, s, e) = x.size4().expect("4-d input");
    x.transpose(1, 2).reshape([b, s, h * e])
}

/// Softmax over the last dimension. For short rows (attention over a handful of column tokens)
/// libtorch's softmax kernel is several times slower than its parts, so it is composed from
/// `amax`, `exp`, `sum` and a reciprocal there (same values; the max is detached, which leaves
/// the gradient unchanged since softmax is shift-invariant).
///
/// # Shapes
/// - `x`: `[.., n]`; returns the same shape
pub(crate) fn softmax_last(x: &Tensor) -> Tensor {
    let n = *x.size().last().expect("non-scalar");
    if n > 32 {
        return x.softmax(-1, Kind::Float);
    }
    let e = (x - x.amax([-1i64].as_slice(), true).detach()).exp();
    let s = e.sum_dim_intlist(-1, true, Kind::Float).reciprocal();
    e * s
}

/// Softmax over the token axis (dim 1).
///
/// # Shapes
/// - `x`: `[b, n, k]`; returns the same shape
pub(super) fn softmax_tokens(x: &Tensor) -> Tensor {
    softmax_last(&x.transpose(1, 2)).transpose(1, 2)
}

/// Softmax attention with dropout `p` on the weights (when `train`). Short CPU sequences take
/// the fused kernel of [`fused_attention`] (same values, one pass).
///
/// # Shapes
/// - `q`: `[b, h, s, e]`, `k`, `v`: `[b, h, l, e]`
/// - returns the output `[b, h, s, e]` and the attention weights `[b, h, s, l]` (before
///   dropout)
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

/// The input projections of [`MultiHeadAttention`].
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
    /// Self-attention over tokens of width `d` under `path` (`qkv_proj`, `out_proj`), with
    /// biases in the projections when `bias` and dropout `p` on the weights.
    pub fn new_self(path: &nn::Path, d: i64, n_heads: i64, bias: bool, p: f64) -> Self {
        Self {
            proj: Projection::Fused(torch_linear(&(path / "qkv_proj"), d, 3 * d, bias)),
            out: (n_heads > 1).then(|| torch_linear(&(path / "out_proj"), d, d, bias)),
            n_heads,
            dropout: p,
        }
    }

    /// Cross-attention: queries of width `query_dim` over keys/values of width `d`, under
    /// `path` (`q_proj`, `kv_proj`, `out_proj`).
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

    /// Attention of `xq` over `xkv` (over `xq` itself when `None`).
    ///
    /// # Shapes
    /// - self-attention: `xq`: `[b, s, d]` → (`[b, s, d]`, weights `[b, h, s, s]`)
    /// - cross-attention: `xq`: `[b, s, query_dim]`, `xkv`: `[b, l, d]` →
    ///   (`[b, s, query_dim]`, weights `[b, h, s, l]`)
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
        (project_out(merge_heads(&out), self.out.as_ref()), w)
    }
}

/// The optional output projection of an attention layer.
///
/// # Shapes
/// - `x`: `[b, s, d]`; returns `[b, s, d']` (`d' = d` without projection)
pub(super) fn project_out(x: Tensor, out: Option<&nn::Linear>) -> Tensor {
    match out {
        Some(o) => x.apply(o),
        None => x,
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
}
