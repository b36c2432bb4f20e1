//! [`TabNetDecoder`]: one feature transformer per decision step, summed, then a linear
//! reconstruction.
use crate::error::Result;
use crate::macros::ensure;
use crate::models::checks::check_dropout;
use crate::models::tabular::tabnet::glu::{
    glu_linear, normal_linear, FeatTransformer, GhostBatchNorm,
};
use crate::models::TabNetConfig;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Configuration of [`TabNetDecoder`] (the reference's `TabNetDecoder`): per decision step a
/// feature transformer `step_dim → step_dim` (GLU layers: `n_glu_shared` whose linear maps are
/// shared by the steps, then `n_glu_step_dependent` of its own), the steps' outputs summed, then
/// a linear layer without bias to `embed_dim`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TabNetDecoderConfig {
    /// Width of the reconstruction: the encoder's combined embeddings.
    pub embed_dim: i64,
    /// Number of decision steps (the encoder's).
    pub n_steps: usize,
    /// Width of each step's output (the encoder's).
    pub step_dim: i64,
    /// Dropout after each GLU layer, in `[0, 1)`.
    pub dropout: f64,
    /// GLU layers specific to each step.
    pub n_glu_step_dependent: usize,
    /// GLU layers shared by the steps.
    pub n_glu_shared: usize,
    /// Ghost batch normalisation in chunks of `virtual_batch_size` rows.
    pub ghost_bn: bool,
    /// Rows per ghost batch (≥ 1).
    pub virtual_batch_size: usize,
    /// Momentum of the batch norms' running statistics, in `(0, 1]`.
    pub momentum: f64,
}

impl TabNetDecoderConfig {
    /// The mirror image of a TabNet encoder whose combined embeddings are `embed_dim` wide:
    /// its steps, widths, dropout, GLU layers and batch-norm options.
    pub fn mirror(encoder: &TabNetConfig, embed_dim: i64) -> Self {
        Self {
            embed_dim,
            n_steps: encoder.n_steps,
            step_dim: encoder.step_dim,
            dropout: encoder.dropout,
            n_glu_step_dependent: encoder.n_glu_step_dependent,
            n_glu_shared: encoder.n_glu_shared,
            ghost_bn: encoder.ghost_bn,
            virtual_batch_size: encoder.virtual_batch_size,
            momentum: encoder.momentum,
        }
    }

    /// Checks every field; errors name it (`tab_net_decoder.n_steps`, …).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("embed_dim", self.embed_dim), ("step_dim", self.step_dim)] {
            ensure!(
                v >= 1,
                config(format!("tab_net_decoder.{name}")),
                "must be ≥ 1, got {v}"
            );
        }
        ensure!(
            self.n_steps >= 1,
            config("tab_net_decoder.n_steps"),
            "must be ≥ 1, got 0"
        );
        check_dropout(self.dropout, "tab_net_decoder.dropout")?;
        ensure!(
            self.n_glu_shared + self.n_glu_step_dependent >= 1,
            config("tab_net_decoder.n_glu_shared"),
            "n_glu_shared + n_glu_step_dependent must be ≥ 1, got 0"
        );
        ensure!(
            self.virtual_batch_size >= 1,
            config("tab_net_decoder.virtual_batch_size"),
            "must be ≥ 1, got 0"
        );
        ensure!(
            self.momentum > 0.0 && self.momentum <= 1.0,
            config("tab_net_decoder.momentum"),
            "must be in (0, 1], got {}",
            self.momentum
        );
        Ok(())
    }

    /// Validates, then builds the shared GLU maps (`shared/fc_{i}`), the steps' feature
    /// transformers (`step_{s}`) and the reconstruction layer (`reconstruction`) under `path`,
    /// initialised as the reference's.
    pub fn build(&self, path: &nn::Path) -> Result<TabNetDecoder> {
        self.validate()?;
        let d = self.step_dim;
        let shared: Vec<nn::Linear> = (0..self.n_glu_shared)
            .map(|i| glu_linear(&(path / "shared" / format!("fc_{i}")), d, d))
            .collect();
        let bn = |p: nn::Path, dim: i64| {
            GhostBatchNorm::new(
                &p,
                dim,
                self.momentum,
                self.ghost_bn.then_some(self.virtual_batch_size as i64),
            )
        };
        let steps = (0..self.n_steps)
            .map(|s| {
                FeatTransformer::new(
                    &(path / format!("step_{s}")),
                    &shared,
                    self.n_glu_step_dependent,
                    (d, d),
                    self.dropout,
                    &bn,
                )
            })
            .collect();
        // the reference's non-GLU xavier normal: std sqrt(1 / sqrt(step_dim))
        let std = (1.0 / (d as f64).sqrt()).sqrt();
        let reconstruction = normal_linear(&(path / "reconstruction"), d, self.embed_dim, std);
        Ok(TabNetDecoder {
            steps,
            reconstruction,
        })
    }
}

/// TabNet's decoder: the decision steps' outputs `n_steps × [batch, step_dim]` →
/// `[batch, embed_dim]`.
#[derive(Debug)]
pub struct TabNetDecoder {
    steps: Vec<FeatTransformer>,
    reconstruction: nn::Linear,
}

impl TabNetDecoder {
    /// Each step's output through its feature transformer, summed, then the reconstruction
    /// layer. Extra or missing steps are ignored beyond the shorter of the two lists.
    ///
    /// # Shapes
    /// - `steps`: `n_steps` tensors `[batch, step_dim]`
    /// - returns `[batch, embed_dim]`
    pub fn forward_t(&self, steps: &[Tensor], train: bool) -> Tensor {
        let mut out: Option<Tensor> = None;
        for (ft, x) in self.steps.iter().zip(steps) {
            let h = ft.forward_t(x, train);
            out = Some(match out {
                Some(o) => o + h,
                None => h,
            });
        }
        out.expect("n_steps ≥ 1 and one input per step")
            .apply(&self.reconstruction)
    }

    /// Number of decision steps the decoder reads.
    pub fn n_steps(&self) -> usize {
        self.steps.len()
    }
}
