//! The multi-layer perceptron shared by TabMlp, the WideDeep head and later components.
use crate::error::Result;
use crate::macros::{bail, ensure, setters};
use crate::models::checks::check_dropout;
use crate::models::dropout::DropoutExt;
use crate::models::init::torch_linear;
use serde::{Deserialize, Serialize};
use tch::{nn, nn::ModuleT, Tensor};

/// Activation functions accepted by the MLPs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)` (the default).
    #[default]
    Relu,
    /// `max(x, 0.01 x)`.
    LeakyRelu,
    /// `tanh(x)`.
    Tanh,
    /// The exact GELU, `x Φ(x)`.
    Gelu,
}

impl Activation {
    /// Applies the activation element-wise.
    ///
    /// # Shapes
    /// - `x`: any shape
    /// - returns the shape of `x`
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu => x.leaky_relu(),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => x.gelu("none"),
        }
    }
}

/// Configuration of an [`Mlp`]: `Linear → activation → [BatchNorm] → Dropout` per hidden layer
/// when `linear_first` (the default), else `[BatchNorm] → Dropout → Linear → activation`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MlpConfig {
    /// Widths of the hidden layers; the last one is the output width.
    pub hidden_dims: Vec<i64>,
    /// The activation after each linear layer.
    pub activation: Activation,
    /// Dropout probability after each layer, in `[0, 1)`.
    pub dropout: f64,
    /// Batch normalisation in every layer but the last.
    pub batchnorm: bool,
    /// Batch normalisation in the last layer too.
    pub batchnorm_last: bool,
    /// `Linear → activation → [BatchNorm] → Dropout` per layer (`true`, the default) or
    /// `[BatchNorm] → Dropout → Linear → activation`.
    pub linear_first: bool,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            hidden_dims: vec![200, 100],
            activation: Activation::Relu,
            dropout: 0.1,
            batchnorm: false,
            batchnorm_last: false,
            linear_first: true,
        }
    }
}

impl MlpConfig {
    /// Sets `hidden_dims`.
    pub fn hidden_dims(mut self, dims: impl Into<Vec<i64>>) -> Self {
        self.hidden_dims = dims.into();
        self
    }
    setters!(
        activation: Activation,
        dropout: f64,
        batchnorm: bool,
        batchnorm_last: bool,
        linear_first: bool,
    );

    /// Checks the values; `prefix` names the owner in errors (e.g. `tab_mlp.mlp`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        ensure!(
            !self.hidden_dims.is_empty(),
            config(format!("{prefix}.hidden_dims")),
            "needs at least one layer"
        );
        if let Some(d) = self.hidden_dims.iter().find(|&&d| d <= 0) {
            bail!(
                config(format!("{prefix}.hidden_dims")),
                "layer widths must be positive, got {d}"
            );
        }
        check_dropout(self.dropout, &format!("{prefix}.dropout"))
    }

    /// Builds the MLP for inputs of width `input_dim` under `path` (`dense_{i}.linear`,
    /// `dense_{i}.bn`); `prefix` names the owner in errors.
    pub fn build(&self, path: &nn::Path, input_dim: i64, prefix: &str) -> Result<Mlp> {
        self.validate(prefix)?;
        ensure!(
            input_dim > 0,
            config(prefix.to_string()),
            "input width must be positive, got {input_dim}"
        );
        let mut layers = Vec::with_capacity(self.hidden_dims.len());
        let mut inp = input_dim;
        let n = self.hidden_dims.len();
        for (i, &out) in self.hidden_dims.iter().enumerate() {
            let p = path / format!("dense_{i}");
            let bn = self.batchnorm && (i + 1 < n || self.batchnorm_last);
            // PyTorch's default initialisation, as the reference's MLPs have
            let linear = torch_linear(&(&p / "linear"), inp, out, !bn);
            let norm_dim = if self.linear_first { out } else { inp };
            let norm = bn.then(|| nn::batch_norm1d(&p / "bn", norm_dim, Default::default()));
            layers.push(Dense { linear, norm });
            inp = out;
        }
        Ok(Mlp {
            layers,
            cfg: self.clone(),
        })
    }
}

/// One layer: the linear map and its optional batch norm.
#[derive(Debug)]
struct Dense {
    linear: nn::Linear,
    norm: Option<nn::BatchNorm>,
}

/// A built MLP: `[batch, input_dim]` → `[batch, hidden_dims.last()]`.
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<Dense>,
    cfg: MlpConfig,
}

impl Mlp {
    /// The layers in turn; `train` switches dropout and batch norm to training behaviour.
    ///
    /// # Shapes
    /// - `x`: `[batch, input_dim]`
    /// - returns `[batch, output_dim()]`
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let act = self.cfg.activation;
        let p = self.cfg.dropout;
        let mut h = x.shallow_clone();
        for layer in &self.layers {
            h = if self.cfg.linear_first {
                let mut y = act.apply(&h.apply(&layer.linear));
                if let Some(bn) = &layer.norm {
                    y = bn.forward_t(&y, train);
                }
                y.dropout_t(p, train)
            } else {
                let mut y = h;
                if let Some(bn) = &layer.norm {
                    y = bn.forward_t(&y, train);
                }
                act.apply(&y.dropout_t(p, train).apply(&layer.linear))
            };
        }
        h
    }

    /// Width of the output.
    pub fn output_dim(&self) -> i64 {
        *self.cfg.hidden_dims.last().expect("validated non-empty")
    }
}

/// Checks the optional `head` MLP of a component; errors name `{prefix}.head.*`.
pub(crate) fn validate_head(head: &Option<MlpConfig>, prefix: &str) -> Result<()> {
    match head {
        Some(h) => h.validate(&format!("{prefix}.head")),
        None => Ok(()),
    }
}

/// Builds the optional `head` MLP of a component under `path/head`, for inputs of width
/// `width`; errors name `{prefix}.head.*`.
pub(crate) fn build_head(
    head: &Option<MlpConfig>,
    path: &nn::Path,
    width: i64,
    prefix: &str,
) -> Result<Option<Mlp>> {
    head.as_ref()
        .map(|h| h.build(&(path / "head"), width, &format!("{prefix}.head")))
        .transpose()
}

/// Applies the optional head to a component's pooled output.
///
/// # Shapes
/// - `x`: `[batch, width]`
/// - returns `[batch, head's last width]`, or `x` without a head
pub(crate) fn apply_head(head: &Option<Mlp>, x: Tensor, train: bool) -> Tensor {
    match head {
        Some(h) => h.forward_t(&x, train),
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn shapes_and_validation() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = MlpConfig::default().hidden_dims([8, 4]).batchnorm(true);
        let mlp = cfg.build(&vs.root(), 5, "mlp").unwrap();
        let y = mlp.forward_t(&Tensor::randn([3, 5], (Kind::Float, Device::Cpu)), true);
        assert_eq!(y.size(), [3, 4]);
        assert_eq!(mlp.output_dim(), 4);
        let err = MlpConfig::default()
            .dropout(1.5)
            .validate("head")
            .unwrap_err();
        assert!(err.to_string().contains("head.dropout"), "{err}");
        let err = MlpConfig::default()
            .hidden_dims([4, 0])
            .validate("x")
            .unwrap_err();
        assert!(err.to_string().contains("x.hidden_dims"), "{err}");
    }

    #[test]
    fn linear_first_false_normalises_the_layer_input() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = MlpConfig::default()
            .hidden_dims([3, 1])
            .batchnorm(true)
            .linear_first(false);
        let mlp = cfg.build(&vs.root(), 2, "mlp").unwrap();
        let vars = vs.variables();
        assert_eq!(vars["dense_0.bn.running_mean"].size(), [2]);
        assert!(
            !vars.contains_key("dense_1.bn.running_mean"),
            "no BN in the last layer"
        );
        assert!(
            !vars.contains_key("dense_0.linear.bias"),
            "BN replaces the bias"
        );
        let y = mlp.forward_t(&Tensor::randn([4, 2], (Kind::Float, Device::Cpu)), true);
        assert_eq!(y.size(), [4, 1]);
    }
}
