//! How continuous columns become tokens: the options ([`ContEmbed`]: standard, piecewise-linear
//! or periodic), quantile bin edges for the piecewise encoding ([`quantile_edges`]), and the
//! layers (normalisation, then one embedding per column).
use super::AttnEmbedConfig;
use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::models::init::{torch_linear, torch_uniform, trunc_normal};
use crate::models::{Activation, ContNorm};
use crate::WideDeepError;
use serde::{Deserialize, Serialize};
use tch::{nn, nn::ModuleT, Device, Kind, Tensor};

/// How continuous columns become tokens of width `input_dim`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum ContEmbed {
    /// `token_j = x_j · w_j + b_j` with `w_j, b_j ∈ R^input_dim` per column.
    #[default]
    Standard,
    /// Piecewise-linear encoding (Gorishniy et al. 2022): with the column's strictly increasing
    /// bin edges `e_0 < … < e_T`, the value is encoded as `T` numbers (1 for bins below it, the
    /// fraction of its own bin, 0 above; the first and last bins extrapolate), then mapped by a
    /// per-column linear layer to `input_dim`. `edges[j]` belongs to the j-th continuous column
    /// (after normalisation, if any). Fit edges with [`ContEmbed::piecewise_quantiles`].
    Piecewise {
        /// Strictly increasing bin edges (at least 2) per continuous column.
        edges: Vec<Vec<f64>>,
    },
    /// Periodic embedding (PLR): `v = [cos(2π f_j x), sin(2π f_j x)]` with `n_frequencies`
    /// learned frequencies per column (initialised from `N(0, sigma²)` truncated at ±3σ), then a
    /// linear layer (per column, or one shared by all columns with `share_last_layer`) and ReLU.
    Periodic {
        /// Learned frequencies per column (≥ 1).
        n_frequencies: i64,
        /// Standard deviation of the frequencies' initialisation (positive).
        sigma: f64,
        /// One last linear layer shared by all columns (false: one per column).
        #[serde(default)]
        share_last_layer: bool,
    },
}

impl ContEmbed {
    /// Checks the option for `n_cont` continuous columns; `field` names it in errors (e.g.
    /// `saint.embed.cont_embed`).
    pub(crate) fn validate(&self, n_cont: usize, field: &str) -> Result<()> {
        match self {
            ContEmbed::Standard => {}
            ContEmbed::Piecewise { edges } => {
                let field = format!("{field}.edges");
                ensure!(
                    edges.len() == n_cont,
                    config(&field),
                    "needs one edge list per continuous column ({n_cont}), got {}",
                    edges.len()
                );
                for (j, e) in edges.iter().enumerate() {
                    let field = format!("{field}[{j}]");
                    ensure!(
                        e.len() >= 2,
                        config(&field),
                        "needs at least 2 edges, got {}",
                        e.len()
                    );
                    ensure!(
                        e.iter().all(|v| v.is_finite()),
                        config(&field),
                        "edges must be finite"
                    );
                    if let Some(w) = e.windows(2).find(|w| w[1] <= w[0]) {
                        bail!(
                            config(field),
                            "edges must be strictly increasing, found {} then {}",
                            w[0],
                            w[1]
                        );
                    }
                }
            }
            ContEmbed::Periodic {
                n_frequencies,
                sigma,
                ..
            } => {
                ensure!(
                    *n_frequencies >= 1,
                    config(format!("{field}.n_frequencies")),
                    "must be ≥ 1, got {n_frequencies}"
                );
                ensure!(
                    *sigma > 0.0 && sigma.is_finite(),
                    config(format!("{field}.sigma")),
                    "must be positive and finite, got {sigma}"
                );
            }
        }
        Ok(())
    }

    /// Periodic embedding with a per-column last layer.
    pub fn periodic(n_frequencies: i64, sigma: f64) -> Self {
        ContEmbed::Periodic {
            n_frequencies,
            sigma,
            share_last_layer: false,
        }
    }

    /// Piecewise embedding with quantile bin edges fitted on `cont` (e.g. the training
    /// `Dataset`'s `input.cont`): `n_bins` bins per column (fewer where quantiles coincide; see
    /// [`quantile_edges`]). Non-finite values are an error naming the column index.
    ///
    /// # Shapes
    /// - `cont`: `[N, n_cont]` f32, `N ≥ 1`
    pub fn piecewise_quantiles(cont: &Tensor, n_bins: usize) -> Result<Self> {
        let size = cont.size();
        ensure!(
            size.len() == 2 && size[0] != 0,
            input("cont"),
            "expected a non-empty [N, n_cont] matrix, got {size:?}"
        );
        let cont = cont.to_device(Device::Cpu).to_kind(Kind::Float);
        let edges = (0..size[1])
            .map(|j| {
                let col = Vec::<f32>::try_from(cont.select(1, j).contiguous())?;
                quantile_edges(&col, n_bins).map_err(|reason| WideDeepError::InputMismatch {
                    input: format!("cont[{j}]"),
                    reason,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ContEmbed::Piecewise { edges })
    }
}

/// Quantile bin edges of `values` for piecewise embeddings: the `k / n_bins` quantiles for
/// `k = 0..=n_bins` (so the first edge is the minimum and the last the maximum), with repeated
/// values dropped, so the result is strictly increasing. A column with a single distinct value
/// `v` gets the one bin `[v − 0.5, v + 0.5]`. Errors (as a message) on an empty slice,
/// `n_bins == 0` or non-finite values.
pub fn quantile_edges(values: &[f32], n_bins: usize) -> std::result::Result<Vec<f64>, String> {
    if n_bins == 0 {
        return Err("n_bins must be ≥ 1".into());
    }
    if values.is_empty() {
        return Err("no values to fit bin edges on".into());
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err("contains NaN or infinite values".into());
    }
    let mut sorted: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let n = sorted.len();
    let mut edges: Vec<f64> = Vec::with_capacity(n_bins + 1);
    for k in 0..=n_bins {
        // linear interpolation between order statistics (numpy's default quantile)
        let pos = k as f64 / n_bins as f64 * (n - 1) as f64;
        let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
        let q = if lo + 1 < n {
            sorted[lo] + frac * (sorted[lo + 1] - sorted[lo])
        } else {
            sorted[n - 1]
        };
        if edges.last().is_none_or(|&last| q > last) {
            edges.push(q);
        }
    }
    if edges.len() < 2 {
        let v = edges[0];
        edges = vec![v - 0.5, v + 0.5];
    }
    Ok(edges)
}

/// The normalisation of the continuous values ([`ContNorm`]).
#[derive(Debug)]
pub(super) enum NormLayer {
    Batch(nn::BatchNorm),
    Layer(nn::LayerNorm),
}

impl NormLayer {
    /// The layer of `norm` over `n` values under `path/cont_norm`; `None` for no normalisation.
    pub fn new(path: &nn::Path, norm: ContNorm, n: i64) -> Option<Self> {
        match norm {
            ContNorm::None => None,
            ContNorm::BatchNorm => Some(NormLayer::Batch(nn::batch_norm1d(
                path / "cont_norm",
                n,
                Default::default(),
            ))),
            ContNorm::LayerNorm => Some(NormLayer::Layer(nn::layer_norm(
                path / "cont_norm",
                vec![n],
                Default::default(),
            ))),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, n]`; returns `[batch, n]`
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            NormLayer::Batch(bn) => bn.forward_t(x, train),
            NormLayer::Layer(ln) => x.apply_t(ln, train),
        }
    }
}

/// The parameters of each way to embed continuous values ([`ContEmbed`]).
#[derive(Debug)]
pub(super) enum ContMethod {
    /// `weight, bias`: `[n_cont, d]` each.
    Standard { weight: Tensor, bias: Tensor },
    /// `lower, upper`: `[n_cont, k]` bin bounds (padded bins have `upper − lower = 1` and are
    /// masked); `lo_clip, hi_clip`: `[n_cont, k]` clamp bounds (`±inf` where a bin extrapolates,
    /// 0 for padded bins); `weight [n_cont, k, d]`, `bias [n_cont, d]`.
    Piecewise {
        lower: Tensor,
        width: Tensor,
        lo_clip: Tensor,
        hi_clip: Tensor,
        weight: Tensor,
        bias: Tensor,
    },
    /// `freq [n_cont, F]`; per-column `weight [n_cont, 2F, d]` + `bias [n_cont, d]`, or one
    /// shared `Linear(2F, d)`.
    Periodic {
        freq: Tensor,
        linear: PeriodicLinear,
    },
}

/// The last layer of the periodic embedding.
#[derive(Debug)]
pub(super) enum PeriodicLinear {
    PerColumn { weight: Tensor, bias: Tensor },
    Shared(nn::Linear),
}

/// The continuous token layer of [`super::AttnEmbeddings`].
#[derive(Debug)]
pub(super) struct ContTokens {
    pub(super) method: ContMethod,
    activation: Option<Activation>,
}

impl ContTokens {
    /// Tokens of width `d` for `n_cont` continuous columns as `cfg` says, under `path`, with
    /// fixed (non-trained) tensors on `device`.
    pub fn new(
        path: &nn::Path,
        cfg: &AttnEmbedConfig,
        n_cont: i64,
        d: i64,
        device: Device,
    ) -> Self {
        let method = match &cfg.cont_embed {
            ContEmbed::Standard => ContMethod::Standard {
                weight: torch_uniform(path, "weight", &[n_cont, d], d),
                bias: torch_uniform(path, "bias", &[n_cont, d], d),
            },
            ContEmbed::Piecewise { edges } => {
                let k = edges.iter().map(|e| e.len() - 1).max().unwrap_or(1) as i64;
                let (mut lower, mut width) = (Vec::new(), Vec::new());
                let (mut lo_clip, mut hi_clip) = (Vec::new(), Vec::new());
                for e in edges {
                    let t = e.len() - 1;
                    for b in 0..k as usize {
                        if b < t {
                            lower.push(e[b] as f32);
                            width.push((e[b + 1] - e[b]) as f32);
                            lo_clip.push(if b == 0 { f32::NEG_INFINITY } else { 0.0 });
                            hi_clip.push(if b + 1 == t { f32::INFINITY } else { 1.0 });
                        } else {
                            // padding bin: always encodes to 0
                            lower.push(0.0);
                            width.push(1.0);
                            lo_clip.push(0.0);
                            hi_clip.push(0.0);
                        }
                    }
                }
                let mk = |v: Vec<f32>| Tensor::from_slice(&v).view([n_cont, k]).to_device(device);
                ContMethod::Piecewise {
                    lower: mk(lower),
                    width: mk(width),
                    lo_clip: mk(lo_clip),
                    hi_clip: mk(hi_clip),
                    weight: path.randn("weight", &[n_cont, k, d], 0.0, 0.01),
                    bias: path.zeros("bias", &[n_cont, d]),
                }
            }
            ContEmbed::Periodic {
                n_frequencies,
                sigma,
                share_last_layer,
            } => {
                let f = *n_frequencies;
                let freq = trunc_normal(
                    path,
                    "frequencies",
                    &[n_cont, f],
                    *sigma,
                    -3.0 * sigma,
                    3.0 * sigma,
                );
                let linear = if *share_last_layer {
                    PeriodicLinear::Shared(torch_linear(&(path / "linear"), 2 * f, d, true))
                } else {
                    PeriodicLinear::PerColumn {
                        weight: torch_uniform(path, "linear_weight", &[n_cont, 2 * f, d], 2 * f),
                        bias: torch_uniform(path, "linear_bias", &[n_cont, d], 2 * f),
                    }
                };
                ContMethod::Periodic { freq, linear }
            }
        };
        Self {
            method,
            activation: cfg.cont_embed_activation,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, n_cont]` (normalised values)
    /// - returns `[batch, n_cont, d]`
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let out = match &self.method {
            ContMethod::Standard { weight, bias } => x.unsqueeze(2) * weight + bias,
            ContMethod::Piecewise {
                lower,
                width,
                lo_clip,
                hi_clip,
                weight,
                bias,
            } => {
                // [b, n, k]: fraction of each bin covered by the value, clamped to [0, 1]
                // except where the first/last bin extrapolates; padded bins clamp to 0
                let enc = ((x.unsqueeze(2) - lower) / width)
                    .maximum(lo_clip)
                    .minimum(hi_clip);
                per_column_linear(&enc, weight, bias)
            }
            ContMethod::Periodic { freq, linear } => {
                let v = x.unsqueeze(2) * freq * (2.0 * std::f64::consts::PI);
                let v = Tensor::cat(&[v.cos(), v.sin()], 2);
                let y = match linear {
                    PeriodicLinear::PerColumn { weight, bias } => {
                        per_column_linear(&v, weight, bias)
                    }
                    PeriodicLinear::Shared(l) => v.apply(l),
                };
                y.relu()
            }
        };
        match self.activation {
            Some(a) => a.apply(&out),
            None => out,
        }
    }
}

/// One linear map per column.
///
/// # Shapes
/// - `x`: `[b, n, k]`, `weight`: `[n, k, d]`, `bias`: `[n, d]`
/// - returns `[b, n, d]`
fn per_column_linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
    x.transpose(0, 1).bmm(weight).transpose(0, 1) + bias
}
