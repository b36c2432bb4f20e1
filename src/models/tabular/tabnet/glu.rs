//! TabNet's feature transformer: GLU layers (linear → ghost batch norm → GLU) with scaled
//! residuals, and the ghost batch normalisation they (and the attentive transformer) use.
use crate::models::dropout::DropoutExt;
use tch::{nn, Tensor};

/// A linear map `inp → out` without bias, its weights drawn from `N(0, std²)` (the reference's
/// xavier-normal initialisations).
pub(crate) fn normal_linear(path: &nn::Path, inp: i64, out: i64, std: f64) -> nn::Linear {
    nn::linear(
        path,
        inp,
        out,
        nn::LinearConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: std,
            },
            bs_init: None,
            bias: false,
        },
    )
}

/// A GLU layer's linear map `inp → 2 · out` without bias, initialised as the reference's
/// (xavier normal with gain `sqrt((in + 2 out) / sqrt(in))`, i.e. std `sqrt(2 / sqrt(in))`).
pub(crate) fn glu_linear(path: &nn::Path, inp: i64, out: i64) -> nn::Linear {
    normal_linear(path, inp, 2 * out, (2.0 / (inp as f64).sqrt()).sqrt())
}

/// Batch normalisation that, in training, normalises each chunk of `virtual_batch_size` rows
/// with the chunk's own statistics (ghost batch norm; Hoffer et al., 2017), updating the running
/// statistics once per chunk. Chunks follow `torch.chunk`: `ceil(batch / virtual_batch_size)`
/// chunks of `ceil(batch / n_chunks)` rows (the last one may be smaller). Evaluation uses the
/// running statistics, as plain batch norm.
#[derive(Debug)]
pub(crate) struct GhostBatchNorm {
    weight: Tensor,
    bias: Tensor,
    pub(super) running_mean: Tensor,
    pub(super) running_var: Tensor,
    momentum: f64,
    virtual_batch_size: Option<i64>,
}

impl GhostBatchNorm {
    /// `weight`, `bias`, `running_mean` and `running_var` of width `dim` under `path`;
    /// `virtual_batch_size: None` is ordinary batch normalisation.
    pub(crate) fn new(
        path: &nn::Path,
        dim: i64,
        momentum: f64,
        virtual_batch_size: Option<i64>,
    ) -> Self {
        Self {
            weight: path.var("weight", &[dim], nn::Init::Const(1.0)),
            bias: path.var("bias", &[dim], nn::Init::Const(0.0)),
            running_mean: path.zeros_no_train("running_mean", &[dim]),
            running_var: path.ones_no_train("running_var", &[dim]),
            momentum,
            virtual_batch_size,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, dim]`
    /// - returns `[batch, dim]`
    pub(crate) fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let n = x.size()[0];
        match self.virtual_batch_size {
            Some(vbs) if train && n > vbs => {
                let chunks = x.chunk((n + vbs - 1) / vbs, 0);
                let out: Vec<Tensor> = chunks.iter().map(|c| self.plain(c, true)).collect();
                Tensor::cat(&out, 0)
            }
            _ => self.plain(x, train),
        }
    }

    /// One batch normalisation of `x` (batch statistics when training with more than a row).
    fn plain(&self, x: &Tensor, train: bool) -> Tensor {
        x.batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train && x.size()[0] > 1,
            self.momentum,
            1e-5,
            true,
        )
    }
}

/// One GLU layer: `GLU(BN(FC(x)))`, `[batch, in]` → `[batch, out]` (the linear map gives
/// `2 · out`).
#[derive(Debug)]
struct GluLayer {
    fc: nn::Linear,
    bn: GhostBatchNorm,
}

/// GLU layers: the first maps the input, each further one is added as a residual scaled by
/// `sqrt(0.5)`. `[batch, in]` → `[batch, step_dim + attn_dim]`.
#[derive(Debug)]
pub(crate) struct FeatTransformer {
    layers: Vec<GluLayer>,
    dropout: f64,
}

impl FeatTransformer {
    /// The layers under `path`: one per `shared` linear map (its weights shared, with a batch
    /// norm of its own, `shared_bn_{i}`), then `n_step_dependent` layers of its own (`fc_{i}`,
    /// `bn_{i}`). The first layer reads `input_dim` columns; every layer outputs `hidden`.
    /// `bn(path, dim)` makes the batch norms.
    pub(crate) fn new(
        path: &nn::Path,
        shared: &[nn::Linear],
        n_step_dependent: usize,
        (input_dim, hidden): (i64, i64),
        dropout: f64,
        bn: &dyn Fn(nn::Path, i64) -> GhostBatchNorm,
    ) -> Self {
        let mut layers = Vec::with_capacity(shared.len() + n_step_dependent);
        for (i, fc) in shared.iter().enumerate() {
            layers.push(GluLayer {
                fc: nn::Linear {
                    ws: fc.ws.shallow_clone(),
                    bs: None,
                },
                bn: bn(path / format!("shared_bn_{i}"), 2 * hidden),
            });
        }
        for i in 0..n_step_dependent {
            let inp = if layers.is_empty() { input_dim } else { hidden };
            layers.push(GluLayer {
                fc: glu_linear(&(path / format!("fc_{i}")), inp, hidden),
                bn: bn(path / format!("bn_{i}"), 2 * hidden),
            });
        }
        Self { layers, dropout }
    }

    /// # Shapes
    /// - `x`: `[batch, in]` (the masked embeddings)
    /// - returns `[batch, step_dim + attn_dim]`
    pub(crate) fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let glu = |l: &GluLayer, h: &Tensor| {
            l.bn.forward_t(&h.apply(&l.fc), train)
                .glu(-1)
                .dropout_t(self.dropout, train)
        };
        let mut h = glu(&self.layers[0], x);
        for l in &self.layers[1..] {
            h = (glu(l, &h) + h) * std::f64::consts::FRAC_1_SQRT_2;
        }
        h
    }
}
