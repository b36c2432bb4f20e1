//! The loss functions behind [`Objective`](super::Objective), as plain tensor functions.
//!
//! Shapes: `out` is the model output `[N, pred_dim]` (or `[N]`), targets are `[N]` unless
//! stated. Every function returns a scalar tensor (mean over the batch unless stated) and
//! keeps the graph for backpropagation.
use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

/// Activation of the Focal-R weight (Yang et al. 2021, "Delving into Deep Imbalanced
/// Regression"): `sigmoid` gives `(2σ(β·e) − 1)^γ`, `tanh` gives `tanh(β·|e|)^γ`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FocalRActivation {
    /// `(2σ(β·e) − 1)^γ`.
    #[default]
    Sigmoid,
    /// `tanh(β·|e|)^γ`.
    Tanh,
}

/// The weight of Focal-R losses (Yang et al. 2021): `(2σ(β·x) − 1)^γ` with `x` the absolute
/// error (L1) or the squared error (MSE) for the sigmoid, `tanh(β·|e|)^γ` for tanh. The
/// weight is part of the graph.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FocalRWeight {
    /// The error scale (> 0).
    pub beta: f64,
    /// The exponent (≥ 0).
    pub gamma: f64,
    /// The activation.
    pub activation: FocalRActivation,
}

impl FocalRWeight {
    /// The weights of errors `e`; the sigmoid reads `sigmoid_arg` (`e` or `e²`).
    fn of(&self, e: &Tensor, sigmoid_arg: &Tensor) -> Tensor {
        match self.activation {
            FocalRActivation::Tanh => (e.abs() * self.beta).tanh().pow_tensor_scalar(self.gamma),
            FocalRActivation::Sigmoid => ((sigmoid_arg.abs() * self.beta).sigmoid() * 2.0 - 1.0)
                .pow_tensor_scalar(self.gamma),
        }
    }
}

/// The activation that makes outputs positive when `enforce_positive` is on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositiveActivation {
    /// `ln(1 + eˣ)`: strictly positive (the reference's default).
    #[default]
    Softplus,
    /// `max(x, 0)`: non-negative (zero is possible).
    Relu,
}

impl PositiveActivation {
    /// Applies the activation elementwise.
    ///
    /// # Shapes
    /// - `x`: any shape; returns the same shape
    pub fn apply(&self, x: &Tensor) -> Tensor {
        match self {
            PositiveActivation::Softplus => x.softplus(),
            PositiveActivation::Relu => x.relu(),
        }
    }
}

fn scalar_like(v: f64, like: &Tensor) -> Tensor {
    Tensor::from(v)
        .to_kind(like.kind())
        .to_device(like.device())
}

fn vector_like(v: &[f64], like: &Tensor) -> Tensor {
    Tensor::from_slice(v)
        .to_kind(like.kind())
        .to_device(like.device())
}

/// Binary cross-entropy on logits `[N]` against 0/1 targets `[N]`; `pos_weight` multiplies the
/// loss of positive rows (torch's `BCEWithLogitsLoss(pos_weight)`).
///
/// # Shapes
/// - `logits`, `target`: `[N]`; returns `[]`
pub fn bce_with_logits(logits: &Tensor, target: &Tensor, pos_weight: Option<f64>) -> Tensor {
    let target = target.to_kind(logits.kind());
    let pw = pos_weight.map(|w| vector_like(&[w], logits));
    logits.binary_cross_entropy_with_logits::<Tensor>(&target, None, pw, Reduction::Mean)
}

/// Cross-entropy of logits `[N, k]` against class indices `[N]` (i64); with `class_weight`
/// (`k` values) the weighted mean `Σ w_yᵢ·lᵢ / Σ w_yᵢ` (torch's `CrossEntropyLoss(weight)`).
///
/// # Shapes
/// - `logits`: `[N, k]`; `target`: `[N]` class indices; returns `[]`
pub fn cross_entropy(logits: &Tensor, target: &Tensor, class_weight: Option<&[f64]>) -> Tensor {
    let w = class_weight.map(|w| vector_like(w, logits));
    logits.cross_entropy_loss::<Tensor>(&target.to_kind(Kind::Int64), w, Reduction::Mean, -100, 0.0)
}

/// The reference's focal loss (Lin et al. 2017) over one-vs-all sigmoid probabilities:
/// with `P = σ(out)` (`[N, k]`; for binary `out` is `[N, 1]` and `P = [1 − p, p]`), one-hot
/// targets `T`, `pₜ = P·T + (1 − P)(1 − T)` and `w = α·T + (1 − α)(1 − T)`, the loss is the mean
/// over all `N·k` cells of `w·(1 − pₜ)^γ · BCE(P, T)`; the weight is not differentiated.
/// `target` holds class indices `[N]` (f32 0/1 for binary, i64 for multiclass).
///
/// # Shapes
/// - `out`: `[N, k]` (binary: `[N, 1]` or `[N]`); `target`: `[N]`; returns `[]`
pub fn focal(out: &Tensor, target: &Tensor, alpha: f64, gamma: f64) -> Tensor {
    let n = out.size()[0];
    let logits = if out.size().last() == Some(&1) || out.dim() == 1 {
        let z = out.view([n, 1]);
        Tensor::cat(&[-&z, z.shallow_clone()], 1)
    } else {
        out.shallow_clone()
    };
    let k = logits.size()[1];
    let onehot = target
        .to_kind(Kind::Int64)
        .view([-1])
        .one_hot(k)
        .to_kind(logits.kind());
    let weight = tch::no_grad(|| {
        let p = logits.sigmoid();
        let pt = &p * &onehot + (-&p + 1.0) * (-&onehot + 1.0);
        let w = &onehot * alpha + (-&onehot + 1.0) * (1.0 - alpha);
        w * (-pt + 1.0).pow_tensor_scalar(gamma)
    });
    logits.binary_cross_entropy_with_logits::<Tensor>(&onehot, Some(weight), None, Reduction::Mean)
}

/// Mean squared error.
///
/// # Shapes
/// - `pred`, `target`: `[N]`; returns `[]`
pub fn mse(pred: &Tensor, target: &Tensor) -> Tensor {
    pred.mse_loss(&target.to_kind(pred.kind()), Reduction::Mean)
}

/// Mean absolute error.
///
/// # Shapes
/// - `pred`, `target`: `[N]`; returns `[]`
pub fn mae(pred: &Tensor, target: &Tensor) -> Tensor {
    pred.l1_loss(&target.to_kind(pred.kind()), Reduction::Mean)
}

/// Mean squared log error `mean((ln(1 + ŷ) − ln(1 + y))²)`; needs `ŷ, y ≥ 0`.
///
/// # Shapes
/// - `pred`, `target`: `[N]`; returns `[]`
pub fn msle(pred: &Tensor, target: &Tensor) -> Tensor {
    (pred.log1p() - target.to_kind(pred.kind()).log1p())
        .square()
        .mean(pred.kind())
}

/// Huber loss in the reference's form (torch's `SmoothL1Loss(beta = δ)`): per element
/// `0.5·e²/δ` when `|e| < δ`, else `|e| − 0.5·δ`; the mean over elements.
///
/// # Shapes
/// - `pred`, `target`: `[N]`; returns `[]`
pub fn huber(pred: &Tensor, target: &Tensor, delta: f64) -> Tensor {
    let e = (pred - target.to_kind(pred.kind())).abs();
    let quad = e.square() * (0.5 / delta);
    let lin = &e - 0.5 * delta;
    quad.where_self(&e.lt(delta), &lin).mean(pred.kind())
}

/// Tweedie deviance-style loss `mean(−y·ŷ^(1−p)/(1−p) + ŷ^(2−p)/(2−p))` for power `1 < p < 2`;
/// needs `ŷ > 0`, `y ≥ 0`.
///
/// # Shapes
/// - `pred`, `target`: `[N]`; returns `[]`
pub fn tweedie(pred: &Tensor, target: &Tensor, p: f64) -> Tensor {
    let y = target.to_kind(pred.kind());
    let a = -(y * pred.pow_tensor_scalar(1.0 - p)) / (1.0 - p);
    let b = pred.pow_tensor_scalar(2.0 - p) / (2.0 - p);
    (a + b).mean(pred.kind())
}

/// `√(2⁻⁵²)`, the floor of the ZILN scale (the reference's `sqrt(finfo(double).eps)`).
const ZILN_MIN_SCALE: f64 = 1.490_116_119_384_765_6e-8;

/// Zero-inflated lognormal loss (Wang et al. 2019, customer lifetime value): `out` `[N, 3]`
/// holds (logit of `P(y > 0)`, `μ`, raw scale `s`); with `σ = max(softplus(s), 1.49e-8)` the
/// loss is `mean(BCE(logit, y > 0) − 1[y > 0]·ln LogNormal(y; μ, σ))`. Targets `y ≥ 0`.
///
/// # Shapes
/// - `out`: `[N, 3]`; `target`: `[N]`; returns `[]`
pub fn ziln(out: &Tensor, target: &Tensor) -> Tensor {
    let y = target.to_kind(out.kind()).view([-1]);
    let positive = y.gt(0.0).to_kind(out.kind());
    let logit = out.select(1, 0);
    let mu = out.select(1, 1);
    let sigma = out.select(1, 2).softplus().clamp_min(ZILN_MIN_SCALE);
    let cls =
        logit.binary_cross_entropy_with_logits::<Tensor>(&positive, None, None, Reduction::None);
    let safe_y: Tensor = &positive * &y + (-&positive + 1.0);
    let log_y = safe_y.log();
    let log_prob: Tensor = -&log_y
        - sigma.log()
        - 0.5 * (2.0 * std::f64::consts::PI).ln()
        - (log_y - mu).square() / (2.0 * sigma.square());
    (cls - positive * log_prob).mean(out.kind())
}

/// The ZILN expected value `P(y > 0)·exp(μ + σ²/2)` with `σ = softplus(s)`.
///
/// # Shapes
/// - `out`: `[N, 3]`; returns `[N]`
pub fn ziln_expected_value(out: &Tensor) -> Tensor {
    let p = out.select(1, 0).sigmoid();
    let mu = out.select(1, 1);
    let sigma = out.select(1, 2).softplus();
    p * (mu + sigma.square() * 0.5).exp()
}

/// Pinball loss averaged over rows and quantiles: `out` `[N, Q]` (column `j` predicts quantile
/// `qⱼ`), targets `[N]`; per cell `max(q·e, (q − 1)·e)` with `e = y − ŷ`.
///
/// # Shapes
/// - `out`: `[N, Q]`; `target`: `[N]`; returns `[]`
pub fn quantile(out: &Tensor, target: &Tensor, quantiles: &[f64]) -> Tensor {
    let e = target.to_kind(out.kind()).view([-1, 1]) - out;
    let q = vector_like(quantiles, out).view([1, -1]);
    let a = &e * &q;
    let b = &e * (q - 1.0);
    a.maximum(&b).mean(out.kind())
}

/// Focal-R L1: `mean(|e|·w)` with `w = (2σ(β|e|) − 1)^γ` (sigmoid) or `tanh(β|e|)^γ`.
///
/// # Shapes
/// - `pred`, `target`: `[N]`; returns `[]`
pub fn focal_r_l1(pred: &Tensor, target: &Tensor, weight: FocalRWeight) -> Tensor {
    let e = pred - target.to_kind(pred.kind());
    let w = weight.of(&e, &e);
    (e.abs() * w).mean(pred.kind())
}

/// Focal-R MSE: `mean(e²·w)` with `w = (2σ(β·e²) − 1)^γ` (sigmoid, as the reference) or
/// `tanh(β|e|)^γ`.
///
/// # Shapes
/// - `pred`, `target`: `[N]`; returns `[]`
pub fn focal_r_mse(pred: &Tensor, target: &Tensor, weight: FocalRWeight) -> Tensor {
    let e = pred - target.to_kind(pred.kind());
    let sq = e.square();
    let w = weight.of(&e, &sq);
    (sq * w).mean(pred.kind())
}

/// Stable `√x` for a loss: the square root of a non-negative scalar with a gradient that stays
/// finite at 0.
pub(crate) fn sqrt_loss(x: &Tensor) -> Tensor {
    (x + scalar_like(1e-12, x)).sqrt()
}
