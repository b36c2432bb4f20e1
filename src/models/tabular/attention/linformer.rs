//! Linformer attention (Wang et al. 2020): self-attention whose keys and values are compressed
//! along the token axis by learned matrices, as FT-Transformer's `kv_compression_factor` uses.
use super::multi_head::{attend, merge_heads, project_out, split_heads};
use crate::models::init::torch_linear;
use tch::{nn, Tensor};

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
    /// Attention over `n_tokens` tokens of width `d` with `k` compressed keys/values, under
    /// `path` (`qkv_proj`, `E`, `F` unless `sharing`, `out_proj` with several heads).
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

    /// The value compression matrix `F` (`E` when shared).
    ///
    /// # Shapes
    /// - returns `[n_tokens, k]`
    pub fn value_compression(&self) -> &Tensor {
        self.f.as_ref().unwrap_or(&self.e)
    }

    /// # Shapes
    /// - `x`: `[b, n, d]`
    /// - returns `[b, n, d]` and the weights `[b, h, n, k]` over the compressed keys
    pub fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let h = self.n_heads;
        let qkv = x.apply(&self.qkv).chunk(3, -1);
        let q = split_heads(&qkv[0], h);
        // [b, n, d] → [b, k, d]: each compressed token mixes all tokens
        let compress = |t: &Tensor, m: &Tensor| t.transpose(1, 2).matmul(m).transpose(1, 2);
        let k = split_heads(&compress(&qkv[1], &self.e), h);
        let v = split_heads(&compress(&qkv[2], self.value_compression()), h);
        let (out, w) = attend(&q, &k, &v, self.dropout, train);
        (project_out(merge_heads(&out), self.out.as_ref()), w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn linformer_shapes() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let x = Tensor::randn([3, 6, 8], (Kind::Float, Device::Cpu));
        let lin = LinformerAttention::new(&(vs.root() / "l"), 8, 6, 3, 2, false, false, 0.0);
        let (y, w) = lin.forward_t(&x, false);
        assert_eq!(y.size(), [3, 6, 8]);
        assert_eq!(w.size(), [3, 2, 6, 3]);
    }
}
