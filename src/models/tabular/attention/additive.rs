//! Additive attention, the token mixing of FastFormer (Wu et al. 2021) and TabFastFormer:
//! linear in the number of tokens.
use super::multi_head::softmax_tokens;
use crate::models::dropout::dropout;
use crate::models::init::torch_linear;
use tch::{nn, Kind, Tensor};

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
    /// Attention over tokens of width `d` under `path` (`q_proj`, `v_proj` unless `share_qv`,
    /// `k_proj`, `W_q`, `W_k`, `r_out`), with biases in the query/key/value projections when
    /// `bias` and dropout `p` on the output.
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

    /// # Shapes
    /// - `x`: `[b, n, d]`
    /// - returns `[b, n, d]`, the query-pooling weights `α [b, h, n]` and the key-pooling
    ///   weights `β [b, h, n]`
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn additive_shapes_and_distributions() {
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
    }
}
