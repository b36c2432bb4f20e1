//! Optimizers written over tch tensors, with state that can be saved and restored (tch's
//! `nn::Optimizer` keeps its state inside libtorch, out of reach, which makes resuming
//! impossible).
//!
//! The update rules and defaults are PyTorch's (`torch.optim` single-tensor implementations):
//! [`Optimizer::Adam`], [`Optimizer::AdamW`] (decoupled weight decay), [`Optimizer::Sgd`]
//! (momentum, dampening, Nesterov), [`Optimizer::RmsProp`] (optionally centered, with momentum)
//! and [`Optimizer::Adagrad`]. tch 0.24 exposes neither libtorch's fused Adam kernels nor its
//! `_foreach_*` multi-tensor ops, so each parameter is updated with in-place tensor ops under
//! `tch::no_grad`, in the same order of floating-point operations as PyTorch — except that on
//! the CPU, Adam and AdamW (without AMSGrad) update contiguous `f32` parameters in one pass over
//! their memory (`training/host.rs`), and gradients are zeroed the same way.
//!
//! Parameters whose gradient is undefined or that do not require gradients (frozen components)
//! are skipped: their state and step count do not advance.
use crate::error::Result;
use crate::macros::ensure;
use crate::training::checks::non_negative;
use serde::{Deserialize, Serialize};

mod group;
#[cfg(test)]
mod tests;
mod update;

pub use group::{OptimizerStateMeta, Optimizers, ParamGroup};

/// Adam / AdamW hyper-parameters (PyTorch defaults: betas (0.9, 0.999), eps 1e-8, no AMSGrad).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdamConfig {
    /// Decay rates of the first and second moment estimates, each in [0, 1).
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// Use the maximum of past second moments (AMSGrad).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            betas: (0.9, 0.999),
            eps: 1e-8,
            amsgrad: false,
        }
    }
}

/// SGD hyper-parameters (PyTorch defaults: no momentum, no dampening, no Nesterov).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SgdConfig {
    /// Momentum factor in [0, 1).
    pub momentum: f64,
    /// Dampening of the momentum in [0, 1).
    pub dampening: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
}

/// RMSprop hyper-parameters (PyTorch defaults: alpha 0.99, eps 1e-8, no momentum, not
/// centered).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RmsPropConfig {
    /// Smoothing constant of the squared-gradient average, in [0, 1).
    pub alpha: f64,
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// Momentum factor in [0, 1).
    pub momentum: f64,
    /// Normalise by the estimated variance of the gradient instead of its second moment.
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        Self {
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            centered: false,
        }
    }
}

/// Adagrad hyper-parameters (PyTorch defaults: lr_decay 0, initial accumulator 0, eps 1e-10).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdagradConfig {
    /// The step size at step t is `lr / (1 + (t − 1) · lr_decay)`.
    pub lr_decay: f64,
    /// The starting value of the sum of squared gradients.
    pub initial_accumulator_value: f64,
    /// Added to the denominator for numerical stability.
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        Self {
            lr_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

/// Which optimizer updates a parameter group. The learning rate and weight decay are set on the
/// [`TrainerConfig`](crate::training::TrainerConfig) (globally or per component).
///
/// Serialized with a `name` tag: `{"name": "adam"}`, `{"name": "sgd", "momentum": 0.9}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Optimizer {
    /// Adam; weight decay is added to the gradient (L2 penalty).
    Adam(AdamConfig),
    /// AdamW: Adam with decoupled weight decay (`p ← p · (1 − lr · wd)`).
    #[serde(rename = "adamw", alias = "adam_w")]
    AdamW(AdamConfig),
    /// Stochastic gradient descent, optionally with (Nesterov) momentum.
    Sgd(SgdConfig),
    /// RMSprop: the gradient divided by a running root mean square of past gradients.
    #[serde(rename = "rmsprop")]
    RmsProp(RmsPropConfig),
    /// Adagrad: per-element step sizes shrinking with the sum of past squared gradients.
    Adagrad(AdagradConfig),
}

impl Default for Optimizer {
    fn default() -> Self {
        Self::Adam(AdamConfig::default())
    }
}

impl Optimizer {
    /// Adam with PyTorch's defaults.
    pub fn adam() -> Self {
        Self::Adam(AdamConfig::default())
    }
    /// AdamW with PyTorch's defaults (set `weight_decay` on the trainer config).
    pub fn adamw() -> Self {
        Self::AdamW(AdamConfig::default())
    }
    /// SGD with the given momentum (0 for plain SGD).
    pub fn sgd(momentum: f64) -> Self {
        Self::Sgd(SgdConfig {
            momentum,
            ..Default::default()
        })
    }
    /// RMSprop with PyTorch's defaults.
    pub fn rmsprop() -> Self {
        Self::RmsProp(RmsPropConfig::default())
    }
    /// Adagrad with PyTorch's defaults.
    pub fn adagrad() -> Self {
        Self::Adagrad(AdagradConfig::default())
    }

    /// Checks the hyper-parameters; errors name `{field}.<parameter>`.
    pub fn validate(&self, field: &str) -> Result<()> {
        let unit = |name: &str, v: f64| -> Result<()> {
            ensure!(
                (0.0..1.0).contains(&v),
                config(format!("{field}.{name}")),
                "must be in [0, 1), got {v}"
            );
            Ok(())
        };
        let finite_non_negative = |name: &str, v: f64| -> Result<()> {
            ensure!(
                non_negative(v),
                config(format!("{field}.{name}")),
                "must be finite and ≥ 0, got {v}"
            );
            Ok(())
        };
        match self {
            Self::Adam(c) | Self::AdamW(c) => {
                unit("betas.0", c.betas.0)?;
                unit("betas.1", c.betas.1)?;
                finite_non_negative("eps", c.eps)
            }
            Self::Sgd(c) => {
                unit("momentum", c.momentum)?;
                unit("dampening", c.dampening)?;
                ensure!(
                    !c.nesterov || (c.momentum > 0.0 && c.dampening == 0.0),
                    config(format!("{field}.nesterov")),
                    "Nesterov momentum needs momentum > 0 and dampening = 0"
                );
                Ok(())
            }
            Self::RmsProp(c) => {
                unit("alpha", c.alpha)?;
                unit("momentum", c.momentum)?;
                finite_non_negative("eps", c.eps)
            }
            Self::Adagrad(c) => {
                finite_non_negative("lr_decay", c.lr_decay)?;
                finite_non_negative("initial_accumulator_value", c.initial_accumulator_value)?;
                finite_non_negative("eps", c.eps)
            }
        }
    }

    /// The names of the state buffers kept per parameter.
    fn buffer_names(&self) -> &'static [&'static str] {
        match self {
            Self::Adam(c) | Self::AdamW(c) if c.amsgrad => {
                &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
            }
            Self::Adam(_) | Self::AdamW(_) => &["exp_avg", "exp_avg_sq"],
            Self::Sgd(_) => &["momentum_buffer"],
            Self::RmsProp(_) => &["square_avg", "grad_avg", "momentum_buffer"],
            Self::Adagrad(_) => &["sum"],
        }
    }
}
