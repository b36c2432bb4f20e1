//! The wide part: a linear model over one-hot (and crossed) features, stored as an embedding
//! table of width `pred_dim` so a row costs a gather and a sum instead of a sparse matmul.
use crate::error::{Result, WideDeepError};
use crate::macros::ensure;
use crate::models::checks::check_index_range;
use crate::models::ModelInput;
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// Configuration of [`Wide`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WideConfig {
    /// Number of distinct wide features (`WidePreprocessor::wide_dim`); indices run `1..=wide_dim`.
    pub wide_dim: i64,
}

impl WideConfig {
    /// A wide part over `wide_dim` features (`WidePreprocessor::wide_dim`).
    pub fn new(wide_dim: usize) -> Self {
        Self {
            wide_dim: wide_dim as i64,
        }
    }

    /// Builds the table with output width `pred_dim` (1 for binary/regression, the class count
    /// for multiclass).
    pub fn build(&self, path: &nn::Path, pred_dim: i64) -> Result<Wide> {
        ensure!(
            self.wide_dim > 0,
            config("wide.wide_dim"),
            "must be positive"
        );
        ensure!(pred_dim > 0, config("pred_dim"), "must be positive");
        let dims = [self.wide_dim.saturating_add(1), pred_dim];
        crate::models::alloc::check_table("wide", "wide table", &dims, path.device())?;
        // Same scale as a linear layer with fan-in `wide_dim`; row 0 (unseen/null) stays zero.
        let bound = 1.0 / (self.wide_dim as f64).sqrt();
        let weight = path
            .f_var(
                "weight",
                &dims,
                nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )
            .map_err(|e| WideDeepError::ModelTooLarge {
                component: "wide".into(),
                requested: format!("wide table [{} × {pred_dim}]", dims[0]),
                reason: crate::error::short_torch_message(&e.to_string()),
            })?;
        tch::no_grad(|| {
            let _ = weight.get(0).zero_();
        });
        let bias = path.var(
            "bias",
            &[pred_dim],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        );
        Ok(Wide {
            weight,
            bias,
            cfg: self.clone(),
        })
    }
}

/// Linear model over wide indices: `[batch, n_wide]` i64 → `[batch, pred_dim]`.
///
/// Index 0 (unseen or null) has a zero weight row that never receives a gradient.
#[derive(Debug)]
pub struct Wide {
    weight: Tensor,
    bias: Tensor,
    cfg: WideConfig,
}

impl Wide {
    /// The linear model: the sum of the weight rows of each row's indices, plus the bias.
    ///
    /// # Shapes
    /// - `wide`: `[batch, n_wide]` i64 indices in `0..=wide_dim`
    /// - returns `[batch, pred_dim]`
    pub fn forward(&self, wide: &Tensor) -> Tensor {
        Tensor::embedding(&self.weight, wide, 0, false, false).sum_dim_intlist(
            1,
            false,
            Kind::Float,
        ) + &self.bias
    }

    /// The config it was built from.
    pub fn config(&self) -> &WideConfig {
        &self.cfg
    }

    /// The weight table `[wide_dim + 1, pred_dim]` (row 0 is the unseen slot).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias `[pred_dim]`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    pub(crate) fn check_input(&self, input: &ModelInput) -> Result<()> {
        let wide = input
            .wide
            .as_ref()
            .ok_or_else(|| WideDeepError::InputMismatch {
                input: "wide".into(),
                reason: "the model has a wide part but no wide input was given".into(),
            })?;
        check_index_range(wide, "wide", self.cfg.wide_dim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn sums_the_rows_of_the_active_features() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let wide = WideConfig::new(4).build(&vs.root(), 1).unwrap();
        tch::no_grad(|| {
            wide.weight
                .shallow_clone()
                .copy_(&Tensor::from_slice(&[0f32, 1., 2., 3., 4.]).view([5, 1]));
            wide.bias
                .shallow_clone()
                .copy_(&Tensor::from_slice(&[0.5f32]));
        });
        let x = Tensor::from_slice(&[1i64, 3, 0, 4]).view([2, 2]);
        let y = wide.forward(&x);
        assert_eq!(Vec::<f32>::try_from(y.view([-1])).unwrap(), vec![4.5, 4.5]);
    }

    #[test]
    fn unseen_row_starts_at_zero_and_gets_no_gradient() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let wide = WideConfig::new(3).build(&vs.root(), 2).unwrap();
        assert_eq!(
            wide.weight.get(0).abs().sum(Kind::Float).double_value(&[]),
            0.0
        );
        let x = Tensor::from_slice(&[0i64, 2]).view([1, 2]);
        wide.forward(&x).sum(Kind::Float).backward();
        let g = wide.weight.grad();
        assert_eq!(g.get(0).abs().sum(Kind::Float).double_value(&[]), 0.0);
        assert_eq!(g.get(2).sum(Kind::Float).double_value(&[]), 2.0);
    }

    #[test]
    fn rejects_out_of_range_indices() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let wide = WideConfig::new(3).build(&vs.root(), 1).unwrap();
        let input = ModelInput {
            wide: Some(Tensor::from_slice(&[1i64, 9]).view([1, 2])),
            ..Default::default()
        };
        assert!(matches!(
            wide.check_input(&input),
            Err(WideDeepError::InputMismatch { .. })
        ));
        assert!(WideConfig::new(0).build(&vs.root(), 1).is_err());
    }
}
