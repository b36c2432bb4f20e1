//! The reusable Bayesian layers: [`BayesianLinear`] and [`BayesianEmbedding`].
use super::{BayesianPrior, GaussianWeight, KlSum, WeightMode};
use crate::error::Result;
use crate::macros::ensure;
use tch::{nn, Tensor};

/// A linear layer whose weight (`[out, in]`) and bias (`[out]`) are Gaussians (the reference's
/// `BayesianLinear`): weights `weight_mu`, `weight_rho`, `bias_mu`, `bias_rho` under its path.
#[derive(Debug)]
pub struct BayesianLinear {
    weight: GaussianWeight,
    bias: Option<GaussianWeight>,
    in_features: i64,
    out_features: i64,
}

impl BayesianLinear {
    /// A layer `in_features → out_features` (with a Bayesian bias when `use_bias`) under
    /// `path`. Errors name `{field}.in_features` / `{field}.out_features` and the prior's
    /// fields under `field`.
    pub fn new(
        path: &nn::Path,
        in_features: i64,
        out_features: i64,
        use_bias: bool,
        prior: &BayesianPrior,
        field: &str,
    ) -> Result<Self> {
        ensure!(
            in_features >= 1,
            config(format!("{field}.in_features")),
            "must be ≥ 1, got {in_features}"
        );
        ensure!(
            out_features >= 1,
            config(format!("{field}.out_features")),
            "must be ≥ 1, got {out_features}"
        );
        prior.validate(field)?;
        let weight = GaussianWeight::new(path, "weight", &[out_features, in_features], prior);
        let bias = use_bias.then(|| GaussianWeight::new(path, "bias", &[out_features], prior));
        Ok(Self {
            weight,
            bias,
            in_features,
            out_features,
        })
    }

    /// The layer's output with weights drawn by `mode` (see [`GaussianWeight::draw`]).
    ///
    /// # Shapes
    /// - `x`: `[batch, in_features]`; returns `[batch, out_features]`
    pub fn forward(&self, x: &Tensor, mode: WeightMode, kl: &mut KlSum) -> Tensor {
        let w = self.weight.draw(mode, kl);
        let b = self.bias.as_ref().map(|b| b.draw(mode, kl));
        x.linear(&w, b.as_ref())
    }

    /// The weight's posterior.
    pub fn weight(&self) -> &GaussianWeight {
        &self.weight
    }
    /// The bias's posterior, if any.
    pub fn bias(&self) -> Option<&GaussianWeight> {
        self.bias.as_ref()
    }
    /// Input width.
    pub fn in_features(&self) -> i64 {
        self.in_features
    }
    /// Output width.
    pub fn out_features(&self) -> i64 {
        self.out_features
    }
}

/// An embedding table whose entries are Gaussians (the reference's `BayesianEmbedding`):
/// `weight_mu`, `weight_rho` `[n_embed, embed_dim]` under its path. With a `padding_idx`, that
/// row receives no gradient from the data (as torch's `padding_idx`; its sampled value is
/// still used, and the KL term still trains it, as in the reference).
#[derive(Debug)]
pub struct BayesianEmbedding {
    weight: GaussianWeight,
    padding_idx: Option<i64>,
    n_embed: i64,
    embed_dim: i64,
}

impl BayesianEmbedding {
    /// A table of `n_embed` rows of width `embed_dim` under `path`. Errors name
    /// `{field}.n_embed`, `{field}.embed_dim`, `{field}.padding_idx` and the prior's fields.
    pub fn new(
        path: &nn::Path,
        n_embed: i64,
        embed_dim: i64,
        padding_idx: Option<i64>,
        prior: &BayesianPrior,
        field: &str,
    ) -> Result<Self> {
        ensure!(
            n_embed >= 1,
            config(format!("{field}.n_embed")),
            "must be ≥ 1, got {n_embed}"
        );
        ensure!(
            embed_dim >= 1,
            config(format!("{field}.embed_dim")),
            "must be ≥ 1, got {embed_dim}"
        );
        if let Some(p) = padding_idx {
            ensure!(
                (0..n_embed).contains(&p),
                config(format!("{field}.padding_idx")),
                "must be in 0..{n_embed}, got {p}"
            );
        }
        prior.validate(field)?;
        let dims = [n_embed, embed_dim];
        crate::models::alloc::check_table(field, "Bayesian embedding", &dims, path.device())?;
        let weight = GaussianWeight::new(path, "weight", &dims, prior);
        Ok(Self {
            weight,
            padding_idx,
            n_embed,
            embed_dim,
        })
    }

    /// The rows of `idx` with the table drawn by `mode` (see [`GaussianWeight::draw`]).
    /// Indices must lie in `0..n_embed` (check user data first).
    ///
    /// # Shapes
    /// - `idx`: any shape of i64 indices; returns `[*idx.shape, embed_dim]`
    pub fn forward(&self, idx: &Tensor, mode: WeightMode, kl: &mut KlSum) -> Tensor {
        let w = self.weight.draw(mode, kl);
        Tensor::embedding(&w, idx, self.padding_idx.unwrap_or(-1), false, false)
    }

    /// The table's posterior.
    pub fn weight(&self) -> &GaussianWeight {
        &self.weight
    }
    /// Number of rows.
    pub fn n_embed(&self) -> i64 {
        self.n_embed
    }
    /// Width of a row.
    pub fn embed_dim(&self) -> i64 {
        self.embed_dim
    }
}
