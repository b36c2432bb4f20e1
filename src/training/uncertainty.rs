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
        let (mut sum, mut sum_sq): (Option<Tensor>, Option<Tensor>) = (None, None);
        for _ in 0..passes {
            let raw = self.predict_raw(data)?;
            let p = if objective.is_classification() {
                objective.predict_proba(&raw)?
            } else {
                raw
            }
            .to_kind(Kind::Double);
            sum_sq = Some(match sum_sq.take() {
                Some(s) => s + p.square(),
                None => p.square(),
            });
            sum = Some(match sum.take() {
                Some(s) => s + p,
                None => p,
            });
        }
        let n = passes as f64;
        let mean = sum.expect("passes ≥ 1") / n;
        let var = (sum_sq.expect("passes ≥ 1") / n - mean.square()).clamp_min(0.0);
        let class = match (objective.is_classification(), self.model().pred_dim()) {
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
