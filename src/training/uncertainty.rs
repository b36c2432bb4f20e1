//! Prediction uncertainty by Monte-Carlo dropout (Gal & Ghahramani, 2016): `n` forward passes
//! with the dropout layers active and everything else (batch norm included) in evaluation mode.
use crate::error::Result;
use crate::macros::ensure;
use crate::models::mc_dropout::McDropoutGuard;
use crate::training::{Dataset, Trainer};
use tch::{Kind, Tensor};

/// The result of [`Trainer::predict_uncertainty`].
#[derive(Debug)]
pub struct Uncertainty {
    /// Mean over the passes, `[N, k]` f32: class probabilities for classification (binary:
    /// `[1 − p, p]`, k = 2), values for regression (k = 1).
    pub mean: Tensor,
    /// Standard deviation over the passes (population, ddof 0), `[N, k]` f32.
    pub std: Tensor,
    /// The class of the mean prediction, `[N]` i64 (binary: `p > 0.5`, as `predict`); `None` for regression.
    pub class: Option<Tensor>,
}

impl Trainer {
    /// Monte-Carlo dropout: `passes` predictions of `data` with dropout on and batch norm in
    /// evaluation mode, seeded with the trainer's seed. A model without dropout gives `std` 0.
    ///
    /// # Shapes
    /// - returns `mean` and `std` `[N, k]` f32 and `class` `[N]` i64 (see [`Uncertainty`])
    pub fn predict_uncertainty(&self, data: &Dataset, passes: usize) -> Result<Uncertainty> {
        ensure!(passes != 0, config("passes"), "must be ≥ 1");
        let objective = self.config().objective.clone();
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(self.config().seed as i64);
        let _mc = McDropoutGuard::new();
        let classification = objective.is_classification();
        Uncertainty::from_passes(
            (0..passes).map(|_| {
                let raw = self.predict_raw(data)?;
                if classification {
                    objective.predict_proba(&raw)
                } else {
                    Ok(raw)
                }
            }),
            classification,
            self.model().pred_dim(),
        )
    }
}

impl Uncertainty {
    /// Mean and spread (population, ddof 0) over `passes` predictions, accumulated in `f64`;
    /// `classification` with `pred_dim` 1 takes class 1 where the mean probability is over 0.5,
    /// with more classes the most probable one. Shared by Monte-Carlo dropout and the Bayesian
    /// models' sampled networks.
    ///
    /// # Shapes
    /// - each pass: `[N, k]` (probabilities, or values with `k` = 1)
    /// - returns `mean` and `std` `[N, k]` f32 and `class` `[N]` i64
    pub(crate) fn from_passes(
        passes: impl Iterator<Item = Result<Tensor>>,
        classification: bool,
        pred_dim: i64,
    ) -> Result<Uncertainty> {
        let (mut sum, mut sum_sq, mut n): (Option<Tensor>, Option<Tensor>, usize) = (None, None, 0);
        for p in passes {
            let p = p?.to_kind(Kind::Double);
            sum_sq = Some(match sum_sq.take() {
                Some(s) => s + p.square(),
                None => p.square(),
            });
            sum = Some(match sum.take() {
                Some(s) => s + p,
                None => p,
            });
            n += 1;
        }
        let (Some(sum), Some(sum_sq)) = (sum, sum_sq) else {
            crate::macros::bail!(config("passes"), "must be ≥ 1");
        };
        let mean = sum / n as f64;
        let var = (sum_sq / n as f64 - mean.square()).clamp_min(0.0);
        let class = match (classification, pred_dim) {
            (false, _) => None,
            (true, 1) => Some(mean.select(1, 1).gt(0.5).to_kind(Kind::Int64)),
            (true, _) => Some(mean.argmax(1, false)),
        };
        Ok(Uncertainty {
            mean: mean.to_kind(Kind::Float),
            std: var.sqrt().to_kind(Kind::Float),
            class,
        })
    }
}
