//! Attention fusion of the deep components' outputs (an alternative to adding their
//! projections or concatenating them into a head).
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::models::checks::check_dropout;
use crate::models::dropout::DropoutExt;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Attention fusion: each deep component's output is projected to `dim`
/// (`p_i = tanh(W_i x_i)`), scored (`s_i = v · tanh(U p_i)`), and the softmax over the
/// components weights their sum `Σ α_i p_i` `[batch, dim]`, which goes to the head (when set)
/// or a linear output layer. The weights `α` `[batch, n_components]` of the last forward pass
/// are available from [`crate::models::WideDeep::fusion_weights`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttentionFusionConfig {
    /// Width of the projected outputs.
    pub dim: i64,
    /// Dropout on the fused vector.
    pub dropout: f64,
}

impl Default for AttentionFusionConfig {
    fn default() -> Self {
        Self {
            dim: 32,
            dropout: 0.0,
        }
    }
}

impl AttentionFusionConfig {
    /// Fusion in `dim` dimensions, without dropout.
    pub fn new(dim: i64) -> Self {
        Self {
            dim,
            ..Default::default()
        }
    }
    setters!(dropout: f64);

    /// Checks `dim` and `dropout`, then builds one projection per deep component (`proj_{i}`,
    /// from its output width in `widths`), the scoring layer (`score`) and the context vector
    /// (`context`) under `path`.
    pub(crate) fn build(&self, path: &nn::Path, widths: &[i64]) -> Result<AttentionFusion> {
        ensure!(
            self.dim > 0,
            config("attention_fusion.dim"),
            "must be positive, got {}",
            self.dim
        );
        check_dropout(self.dropout, "attention_fusion.dropout")?;
        ensure!(
            !widths.is_empty(),
            config("attention_fusion"),
            "needs at least one deep component"
        );
        let proj = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| nn::linear(path / format!("proj_{i}"), w, self.dim, Default::default()))
            .collect();
        Ok(AttentionFusion {
            proj,
            score: nn::linear(path / "score", self.dim, self.dim, Default::default()),
            context: path.var(
                "context",
                &[self.dim],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.1,
                },
            ),
            dropout: self.dropout,
        })
    }
}

/// A built [`AttentionFusionConfig`].
#[derive(Debug)]
pub(crate) struct AttentionFusion {
    proj: Vec<nn::Linear>,
    score: nn::Linear,
    context: Tensor,
    dropout: f64,
}

impl AttentionFusion {
    /// Fuses the deep components' outputs.
    ///
    /// # Shapes
    /// - `feats`: one `[batch, width_i]` tensor per component
    /// - returns the fused vector `[batch, dim]` and the weights `[batch, n_components]`
    pub fn forward(&self, feats: &[Tensor], train: bool) -> (Tensor, Tensor) {
        let p: Vec<Tensor> = feats
            .iter()
            .zip(&self.proj)
            .map(|(f, l)| f.apply(l).tanh())
            .collect();
        let p = Tensor::stack(&p, 1); // [batch, n, dim]
        let scores = p.apply(&self.score).tanh().matmul(&self.context); // [batch, n]
        let w = scores.softmax(1, scores.kind());
        let fused = (&p * w.unsqueeze(-1)).sum_dim_intlist(1, false, p.kind());
        (fused.dropout_t(self.dropout, train), w)
    }
}
