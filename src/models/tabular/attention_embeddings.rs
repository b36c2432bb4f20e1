//! Same-size column embeddings for the attention models (TabTransformer, SAINT, FT-Transformer,
//! the attention MLPs, TabPerceiver, TabFastFormer): every column becomes a token of width
//! `input_dim`, so a row is a sequence `[batch, n_tokens, input_dim]`.
//!
//! * categorical columns share ONE embedding table; column `j`'s values sit at an offset, and
//!   index 0 of every column (unseen/null) maps to the table's zero row (no gradient);
//!   optional per-column bias, shared column embeddings (added, or overwriting a fraction of the
//!   dimensions), activation and dropout;
//! * continuous columns: optional normalisation, then an embedding per column:
//!   [`ContEmbed::Standard`] (`x·w_j + b_j`), [`ContEmbed::Piecewise`] (piecewise-linear encoding
//!   over per-column bin edges, then a per-column linear map) or [`ContEmbed::Periodic`]
//!   (learned frequencies, `cos`/`sin`, linear, ReLU); optional activation and dropout;
//! * an optional learned `[CLS]` token prepended to the sequence;
//! * dropout of whole column embeddings ([`AttnEmbedConfig::full_embed_dropout`]).
//!
//! The `TabMlp` embeddings (different width per column) are [`crate::models::tabular::TabEmbeddings`].
use crate::error::{Result, WideDeepError};
use crate::macros::setters;
use crate::models::checks::check_dropout;
use crate::models::checks::check_index_range;
pub(crate) use crate::models::init::{torch_linear, torch_uniform, trunc_normal};
use crate::models::{Activation, ContNorm, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::ModuleT, Device, Kind, Tensor};
use widedeep_preprocessing::CatColumnMeta;

/// How the shared column embedding (one learned vector per categorical column, telling the
/// model which column a token comes from) joins the value embedding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SharedEmbed {
    /// No shared column embedding (the default).
    #[default]
    None,
    /// A full-width column vector added to every value embedding of the column
    /// (`add_shared_embed = True` in the reference).
    Add,
    /// The first `floor(input_dim · frac_shared_embed)` dimensions of every value embedding of
    /// the column are replaced by the column vector (`frac_shared_embed`, in `(0, 1)`).
    Overwrite { frac_shared_embed: f64 },
}

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
    Piecewise { edges: Vec<Vec<f64>> },
    /// Periodic embedding (PLR): `v = [cos(2π f_j x), sin(2π f_j x)]` with `n_frequencies`
    /// learned frequencies per column (initialised from `N(0, sigma²)` truncated at ±3σ), then a
    /// linear layer (per column, or one shared by all columns with `share_last_layer`) and ReLU.
    Periodic {
        n_frequencies: i64,
        sigma: f64,
        #[serde(default)]
        share_last_layer: bool,
    },
}

impl ContEmbed {
    /// Periodic embedding with a per-column last layer.
    pub fn periodic(n_frequencies: i64, sigma: f64) -> Self {
        ContEmbed::Periodic {
            n_frequencies,
            sigma,
            share_last_layer: false,
        }
    }

    /// Piecewise embedding with quantile bin edges fitted on `cont` (`[N, n_cont]` f32, e.g. the
    /// training `Dataset`'s `input.cont`): `n_bins` bins per column (fewer where quantiles
    /// coincide; see [`quantile_edges`]). Non-finite values are an error naming the column index.
    pub fn piecewise_quantiles(cont: &Tensor, n_bins: usize) -> Result<Self> {
        let size = cont.size();
        if size.len() != 2 || size[0] == 0 {
            return Err(WideDeepError::InputMismatch {
                input: "cont".into(),
                reason: format!("expected a non-empty [N, n_cont] matrix, got {size:?}"),
            });
        }
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

/// Embedding options shared by the attention models. The token width (`input_dim`) belongs to
/// the model config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttnEmbedConfig {
    /// Dropout on the categorical tokens, in `[0, 1)`.
    pub cat_embed_dropout: f64,
    /// A learned bias per categorical column added to its value embeddings.
    pub use_cat_bias: bool,
    /// Activation applied to the categorical tokens.
    pub cat_embed_activation: Option<Activation>,
    /// Shared column embeddings for the categorical columns.
    pub shared_embed: SharedEmbed,
    /// How continuous columns are embedded.
    pub cont_embed: ContEmbed,
    /// Dropout on the continuous tokens, in `[0, 1)`.
    pub cont_embed_dropout: f64,
    /// Activation applied to the continuous tokens (after the periodic embedding's own ReLU).
    pub cont_embed_activation: Option<Activation>,
    /// Normalisation of the continuous values before they are embedded.
    pub cont_norm: ContNorm,
    /// Drop whole column tokens (per row) instead of single dimensions: the categorical and
    /// continuous dropout probabilities then apply to tokens.
    pub full_embed_dropout: bool,
    /// Prepend a learned `[CLS]` token; models then read their output from it.
    pub with_cls_token: bool,
}

impl Default for AttnEmbedConfig {
    fn default() -> Self {
        Self {
            cat_embed_dropout: 0.0,
            use_cat_bias: false,
            cat_embed_activation: None,
            shared_embed: SharedEmbed::None,
            cont_embed: ContEmbed::Standard,
            cont_embed_dropout: 0.0,
            cont_embed_activation: None,
            cont_norm: ContNorm::None,
            full_embed_dropout: false,
            with_cls_token: false,
        }
    }
}

impl AttnEmbedConfig {
    pub fn new() -> Self {
        Self::default()
    }
    setters!(
        cat_embed_dropout: f64,
        use_cat_bias: bool,
        cat_embed_activation: Option<Activation>,
        shared_embed: SharedEmbed,
        cont_embed: ContEmbed,
        cont_embed_dropout: f64,
        cont_embed_activation: Option<Activation>,
        cont_norm: ContNorm,
        full_embed_dropout: bool,
        with_cls_token: bool,
    );

    /// Checks the options for `n_cont` continuous columns and tokens of width `input_dim`;
    /// `prefix` names the owner in errors (e.g. `ft_transformer.embed`).
    pub fn validate(&self, input_dim: i64, n_cont: usize, prefix: &str) -> Result<()> {
        check_dropout(
            self.cat_embed_dropout,
            &format!("{prefix}.cat_embed_dropout"),
        )?;
        check_dropout(
            self.cont_embed_dropout,
            &format!("{prefix}.cont_embed_dropout"),
        )?;
        if let SharedEmbed::Overwrite { frac_shared_embed } = self.shared_embed {
            let field = format!("{prefix}.shared_embed.frac_shared_embed");
            if !(frac_shared_embed > 0.0 && frac_shared_embed < 1.0) {
                return Err(WideDeepError::config(
                    field,
                    format!("must be in (0, 1), got {frac_shared_embed}"),
                ));
            }
            if ((input_dim as f64) * frac_shared_embed).floor() < 1.0 {
                return Err(WideDeepError::config(
                    field,
                    format!(
                        "{frac_shared_embed} of input_dim {input_dim} is less than one dimension"
                    ),
                ));
            }
        }
        match &self.cont_embed {
            ContEmbed::Standard => {}
            ContEmbed::Piecewise { edges } => {
                let field = format!("{prefix}.cont_embed.edges");
                if edges.len() != n_cont {
                    return Err(WideDeepError::config(
                        field,
                        format!(
                            "needs one edge list per continuous column ({n_cont}), got {}",
                            edges.len()
                        ),
                    ));
                }
                for (j, e) in edges.iter().enumerate() {
                    if e.len() < 2 {
                        return Err(WideDeepError::config(
                            format!("{field}[{j}]"),
                            format!("needs at least 2 edges, got {}", e.len()),
                        ));
                    }
                    if e.iter().any(|v| !v.is_finite()) {
                        return Err(WideDeepError::config(
                            format!("{field}[{j}]"),
                            "edges must be finite",
                        ));
                    }
                    if let Some(w) = e.windows(2).find(|w| w[1] <= w[0]) {
                        return Err(WideDeepError::config(
                            format!("{field}[{j}]"),
                            format!(
                                "edges must be strictly increasing, found {} then {}",
                                w[0], w[1]
                            ),
                        ));
                    }
                }
            }
            ContEmbed::Periodic {
                n_frequencies,
                sigma,
                ..
            } => {
                if *n_frequencies < 1 {
                    return Err(WideDeepError::config(
                        format!("{prefix}.cont_embed.n_frequencies"),
                        format!("must be ≥ 1, got {n_frequencies}"),
                    ));
                }
                if !(*sigma > 0.0 && sigma.is_finite()) {
                    return Err(WideDeepError::config(
                        format!("{prefix}.cont_embed.sigma"),
                        format!("must be positive and finite, got {sigma}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
enum NormLayer {
    Batch(nn::BatchNorm),
    Layer(nn::LayerNorm),
}

impl NormLayer {
    fn new(path: &nn::Path, norm: ContNorm, n: i64) -> Option<Self> {
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

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            NormLayer::Batch(bn) => bn.forward_t(x, train),
            NormLayer::Layer(ln) => x.apply_t(ln, train),
        }
    }
}

#[derive(Debug)]
struct CatTokens {
    table: nn::Embedding,
    /// `[n_cat]` i64: offset of each column's values in the table.
    offsets: Tensor,
    bias: Option<Tensor>,
    /// `[n_cat, width]` and whether it is added (else it overwrites the first `width` dims).
    shared: Option<(Tensor, bool)>,
    activation: Option<Activation>,
}

impl CatTokens {
    /// `cat [batch, n_cat]` → `[batch, n_cat, d]`.
    fn forward(&self, cat: &Tensor) -> Tensor {
        let idx = (cat + &self.offsets).masked_fill(&cat.eq(0), 0);
        let x = idx.apply(&self.table);
        let mut x = match &self.bias {
            Some(b) => x + b,
            None => x,
        };
        if let Some((s, add)) = &self.shared {
            x = if *add {
                x + s
            } else {
                let (b, n, d) = x.size3().expect("3-d tokens");
                let w = s.size()[1];
                Tensor::cat(&[s.expand([b, n, w], false), x.narrow(2, w, d - w)], 2)
            };
        }
        match self.activation {
            Some(a) => a.apply(&x),
            None => x,
        }
    }
}

#[derive(Debug)]
enum ContMethod {
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

#[derive(Debug)]
enum PeriodicLinear {
    PerColumn { weight: Tensor, bias: Tensor },
    Shared(nn::Linear),
}

#[derive(Debug)]
struct ContTokens {
    method: ContMethod,
    activation: Option<Activation>,
}

impl ContTokens {
    fn new(
        path: &nn::Path,
        cfg: &AttnEmbedConfig,
        n_cont: i64,
        d: i64,
        device: Device,
    ) -> Result<Self> {
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
        Ok(Self {
            method,
            activation: cfg.cont_embed_activation,
        })
    }

    /// `x [batch, n_cont]` (normalised) → `[batch, n_cont, d]`.
    fn forward(&self, x: &Tensor) -> Tensor {
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

/// `x [b, n, k]`, `weight [n, k, d]`, `bias [n, d]` → `[b, n, d]` (one linear map per column).
fn per_column_linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
    x.transpose(0, 1).bmm(weight).transpose(0, 1) + bias
}

/// Output of [`AttnEmbeddings`]: the token sequence and, for models that do not embed their
/// continuous columns (TabTransformer's default), the normalised continuous values.
#[derive(Debug)]
pub struct Embedded {
    /// `[batch, n_tokens, input_dim]` (with the `[CLS]` token first when configured).
    pub tokens: Tensor,
    /// `[batch, n_cont]` when the continuous columns are not embedded.
    pub cont: Option<Tensor>,
}

/// Built same-size embeddings: `cat [batch, n_cat]` i64 + `cont [batch, n_cont]` f32 →
/// [`Embedded`] with tokens `[batch, cls + n_cat + n_cont, input_dim]` (continuous columns count
/// only when embedded).
#[derive(Debug)]
pub struct AttnEmbeddings {
    cat_meta: Vec<CatColumnMeta>,
    cont_names: Vec<String>,
    input_dim: i64,
    cat: Option<CatTokens>,
    cont: Option<ContTokens>,
    norm: Option<NormLayer>,
    cls: Option<Tensor>,
    cfg: AttnEmbedConfig,
    device: Device,
}

impl AttnEmbeddings {
    /// Validates and builds. `embed_cont = false` keeps the continuous columns as (normalised)
    /// values beside the tokens; `prefix` names the owner in errors.
    pub fn new(
        path: &nn::Path,
        cat: &[CatColumnMeta],
        cont: &[String],
        input_dim: i64,
        cfg: &AttnEmbedConfig,
        embed_cont: bool,
        prefix: &str,
    ) -> Result<Self> {
        if input_dim < 1 {
            return Err(WideDeepError::config(
                format!("{prefix}.input_dim"),
                format!("must be ≥ 1, got {input_dim}"),
            ));
        }
        if cat.is_empty() && cont.is_empty() {
            return Err(WideDeepError::config(
                prefix.to_string(),
                "needs at least one categorical or continuous column",
            ));
        }
        let embed_prefix = format!("{prefix}.embed");
        cfg.validate(input_dim, cont.len(), &embed_prefix)?;
        for c in cat {
            if c.cardinality < 2 {
                return Err(WideDeepError::config(
                    format!("{prefix}.cat_embed[{}]", c.name),
                    format!(
                        "cardinality must be ≥ 2 (index 0 + values), got {}",
                        c.cardinality
                    ),
                ));
            }
        }
        let device = path.device();
        let d = input_dim;
        let cat_tokens = if cat.is_empty() {
            None
        } else {
            let p = path / "cat";
            let mut offsets = Vec::with_capacity(cat.len());
            let mut next = 0i64;
            for c in cat {
                offsets.push(next);
                next = next.saturating_add((c.cardinality as i64).saturating_sub(1));
            }
            crate::models::alloc::check_table(
                prefix,
                "categorical token table",
                &[next + 1, d],
                path.device(),
            )?;
            let table = nn::embedding(
                &p / "table",
                next + 1,
                d,
                nn::EmbeddingConfig {
                    padding_idx: 0,
                    ..Default::default()
                },
            );
            tch::no_grad(|| {
                let _ = table.ws.get(0).zero_();
            });
            let n_cat = cat.len() as i64;
            let bias = cfg
                .use_cat_bias
                .then(|| torch_uniform(&p, "bias", &[n_cat, d], d));
            let shared = match cfg.shared_embed {
                SharedEmbed::None => None,
                SharedEmbed::Add => Some((
                    p.var(
                        "shared_embed",
                        &[n_cat, d],
                        nn::Init::Uniform { lo: -1.0, up: 1.0 },
                    ),
                    true,
                )),
                SharedEmbed::Overwrite { frac_shared_embed } => {
                    let w = ((d as f64) * frac_shared_embed).floor() as i64;
                    Some((
                        p.var(
                            "shared_embed",
                            &[n_cat, w],
                            nn::Init::Uniform { lo: -1.0, up: 1.0 },
                        ),
                        false,
                    ))
                }
            };
            Some(CatTokens {
                table,
                offsets: Tensor::from_slice(&offsets).to_device(device),
                bias,
                shared,
                activation: cfg.cat_embed_activation,
            })
        };
        let n_cont = cont.len() as i64;
        let norm = if n_cont > 0 {
            NormLayer::new(path, cfg.cont_norm, n_cont)
        } else {
            None
        };
        let cont_tokens = if n_cont > 0 && embed_cont {
            Some(ContTokens::new(&(path / "cont"), cfg, n_cont, d, device)?)
        } else {
            None
        };
        let cls = cfg
            .with_cls_token
            .then(|| path.randn_standard("cls_token", &[1, 1, d]));
        Ok(Self {
            cat_meta: cat.to_vec(),
            cont_names: cont.to_vec(),
            input_dim,
            cat: cat_tokens,
            cont: cont_tokens,
            norm,
            cls,
            cfg: cfg.clone(),
            device,
        })
    }

    /// The device of the parameters.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Width of every token.
    pub fn input_dim(&self) -> i64 {
        self.input_dim
    }

    pub fn n_cat(&self) -> i64 {
        self.cat_meta.len() as i64
    }

    pub fn n_cont(&self) -> i64 {
        self.cont_names.len() as i64
    }

    /// Whether the continuous columns are tokens (else they stay values beside the tokens).
    pub fn embeds_cont(&self) -> bool {
        self.cont.is_some()
    }

    pub fn has_cls(&self) -> bool {
        self.cls.is_some()
    }

    /// Number of tokens per row: `[CLS]` + categorical + embedded continuous columns.
    pub fn n_tokens(&self) -> i64 {
        self.has_cls() as i64 + self.n_column_tokens()
    }

    /// Number of tokens that stand for input columns (no `[CLS]`).
    pub fn n_column_tokens(&self) -> i64 {
        self.n_cat() + if self.embeds_cont() { self.n_cont() } else { 0 }
    }

    /// The input column names: categorical then continuous.
    pub fn names(&self) -> Vec<String> {
        let cat = self.cat_meta.iter().map(|c| c.name.clone());
        cat.chain(self.cont_names.iter().cloned()).collect()
    }

    /// Full forward pass (what models call in `forward_t`).
    pub fn forward_t(&self, input: &ModelInput, train: bool) -> Embedded {
        let (cat, cont) = self.column_tokens(input, train);
        self.finish(cat, cont, train)
    }

    /// One tensor per input column, in the order of [`AttnEmbeddings::names`], computed in
    /// evaluation mode: each categorical column's token `[batch, input_dim]`, then each
    /// continuous column's token `[batch, input_dim]` (or its raw value `[batch, 1]` when the
    /// continuous columns are not embedded). Dropout and the `[CLS]` token come after, in
    /// [`AttnEmbeddings::combine`].
    pub fn embed(&self, input: &ModelInput) -> Vec<Tensor> {
        let (cat, cont) = self.column_tokens(input, false);
        let mut parts = Vec::with_capacity(self.cat_meta.len() + self.cont_names.len());
        if let Some(c) = cat {
            parts.extend((0..self.n_cat()).map(|j| c.select(1, j)));
        }
        if let Some(c) = cont {
            if self.embeds_cont() {
                parts.extend((0..self.n_cont()).map(|j| c.select(1, j)));
            } else {
                parts.extend((0..self.n_cont()).map(|j| c.narrow(1, j, 1)));
            }
        }
        parts
    }

    /// The rest of the embedding layer from (possibly perturbed) [`AttnEmbeddings::embed`]
    /// output: stacking, dropout, `[CLS]`, normalisation of non-embedded continuous values.
    pub fn combine(&self, parts: &[Tensor], train: bool) -> Embedded {
        let n_cat = self.cat_meta.len();
        let cat = (n_cat > 0).then(|| Tensor::stack(&parts[..n_cat], 1));
        let cont = (!self.cont_names.is_empty()).then(|| {
            if self.embeds_cont() {
                Tensor::stack(&parts[n_cat..], 1)
            } else {
                Tensor::cat(&parts[n_cat..], 1)
            }
        });
        self.finish(cat, cont, train)
    }

    /// Categorical tokens `[b, n_cat, d]` and continuous tokens `[b, n_cont, d]` (or raw values
    /// `[b, n_cont]` when not embedded), before dropout.
    fn column_tokens(&self, input: &ModelInput, train: bool) -> (Option<Tensor>, Option<Tensor>) {
        let cat = self.cat.as_ref().map(|c| {
            c.forward(
                input
                    .cat
                    .as_ref()
                    .expect("categorical input checked by check_input"),
            )
        });
        let cont = (!self.cont_names.is_empty()).then(|| {
            let x = input
                .cont
                .as_ref()
                .expect("continuous input checked by check_input");
            match &self.cont {
                Some(tokens) => {
                    let x = match &self.norm {
                        Some(n) => n.forward_t(x, train),
                        None => x.shallow_clone(),
                    };
                    tokens.forward(&x)
                }
                None => x.shallow_clone(),
            }
        });
        (cat, cont)
    }

    fn finish(&self, cat: Option<Tensor>, cont: Option<Tensor>, train: bool) -> Embedded {
        let mut seq = Vec::with_capacity(3);
        if let Some(cls) = &self.cls {
            let b = cat.as_ref().or(cont.as_ref()).expect("a column").size()[0];
            seq.push(cls.expand([b, 1, self.input_dim], false));
        }
        if let Some(c) = cat {
            seq.push(self.dropout(c, self.cfg.cat_embed_dropout, train));
        }
        let mut values = None;
        if let Some(c) = cont {
            if self.embeds_cont() {
                seq.push(self.dropout(c, self.cfg.cont_embed_dropout, train));
            } else {
                values = Some(match &self.norm {
                    Some(n) => n.forward_t(&c, train),
                    None => c,
                });
            }
        }
        let tokens = match seq.len() {
            0 => {
                let b = values.as_ref().expect("a column").size()[0];
                Tensor::zeros(
                    [b, 0, self.input_dim],
                    (Kind::Float, values_device(&values)),
                )
            }
            1 => seq.pop().expect("one part"),
            _ => Tensor::cat(&seq, 1),
        };
        Embedded {
            tokens,
            cont: values,
        }
    }

    fn dropout(&self, x: Tensor, p: f64, train: bool) -> Tensor {
        if !crate::models::dropout_on(train) || p == 0.0 {
            return x;
        }
        if self.cfg.full_embed_dropout {
            let (b, n, _) = x.size3().expect("3-d tokens");
            let mask =
                crate::models::dropout::scaled_keep_mask(&[b, n, 1], p, x.device(), x.kind());
            x * mask
        } else {
            crate::models::tabular::attention_layers::dropout(&x, p, train)
        }
    }

    /// Checks presence, widths and index ranges of `cat` and `cont`.
    pub fn check_input(&self, input: &ModelInput) -> Result<()> {
        check_tab_input(input, &self.cat_meta, self.cont_names.len())
    }
}

fn values_device(v: &Option<Tensor>) -> Device {
    v.as_ref().map(|t| t.device()).unwrap_or(Device::Cpu)
}

/// Checks that `input` has `cat [batch, cat.len()]` i64 indices within each column's range and
/// `cont [batch, n_cont]`.
pub(crate) fn check_tab_input(
    input: &ModelInput,
    cat: &[CatColumnMeta],
    n_cont: usize,
) -> Result<()> {
    let mismatch = |input: &str, reason: String| WideDeepError::InputMismatch {
        input: input.into(),
        reason,
    };
    if !cat.is_empty() {
        let t = input
            .cat
            .as_ref()
            .ok_or_else(|| mismatch("cat", "no categorical input".into()))?;
        let size = t.size();
        if size.len() != 2 || size[1] != cat.len() as i64 {
            return Err(mismatch(
                "cat",
                format!("expected [batch, {}], got {size:?}", cat.len()),
            ));
        }
        for (i, c) in cat.iter().enumerate() {
            check_index_range(&t.select(1, i as i64), &c.name, c.cardinality as i64 - 1)?;
        }
    }
    if n_cont > 0 {
        let t = input
            .cont
            .as_ref()
            .ok_or_else(|| mismatch("cont", "no continuous input".into()))?;
        let size = t.size();
        if size.len() != 2 || size[1] != n_cont as i64 {
            return Err(mismatch(
                "cont",
                format!("expected [batch, {n_cont}], got {size:?}"),
            ));
        }
        if t.kind() != Kind::Float {
            return Err(mismatch(
                "cont",
                format!("expected f32 values, got {:?}", t.kind()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat_meta() -> Vec<CatColumnMeta> {
        crate::models::tabular::testing::meta().cat
    }

    fn input() -> ModelInput {
        ModelInput {
            cat: Some(Tensor::from_slice(&[1i64, 2, 3, 0, 0, 1]).view([3, 2])),
            cont: Some(Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.1, -3.0, 0.0]).view([3, 2])),
            ..Default::default()
        }
    }

    fn build(cfg: &AttnEmbedConfig, embed_cont: bool) -> (nn::VarStore, AttnEmbeddings) {
        let vs = nn::VarStore::new(Device::Cpu);
        let e = AttnEmbeddings::new(
            &vs.root(),
            &cat_meta(),
            &["x".to_string(), "y".to_string()],
            8,
            cfg,
            embed_cont,
            "m",
        )
        .unwrap();
        (vs, e)
    }

    #[test]
    fn one_table_with_offsets_and_a_zero_unseen_row() {
        let _rng = crate::torch_rng_lock();
        let (vs, e) = build(&AttnEmbedConfig::default(), true);
        let table = vs.variables()["cat.table.weight"].shallow_clone();
        // 1 shared unseen row + 3 values of a + 2 values of b
        assert_eq!(table.size(), [6, 8]);
        let out = e.forward_t(&input(), false);
        assert_eq!(out.tokens.size(), [3, 4, 8]);
        assert!(out.cont.is_none());
        // row 0, column b has value 2 → global index 3 + 2 = 5
        assert!(out.tokens.get(0).get(1).equal(&table.get(5)));
        // row 1, column b is unseen → the zero row
        assert_eq!(
            out.tokens
                .get(1)
                .get(1)
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
        // row 2, column a is unseen (0), column b = 1 → index 4
        assert!(out.tokens.get(2).get(1).equal(&table.get(4)));
        assert_eq!(
            out.tokens
                .get(2)
                .get(0)
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
    }

    #[test]
    fn standard_cont_tokens_are_value_times_weight_plus_bias() {
        let _rng = crate::torch_rng_lock();
        let (vs, e) = build(&AttnEmbedConfig::default(), true);
        let vars = vs.variables();
        let (w, b) = (&vars["cont.weight"], &vars["cont.bias"]);
        let out = e.forward_t(&input(), false).tokens;
        // row 0, column y (value -1.0) is token 3
        let expected = w.get(1) * -1.0 + b.get(1);
        assert!(out.get(0).get(3).allclose(&expected, 1e-6, 1e-6, false));
    }

    #[test]
    fn shared_embeddings_add_or_overwrite() {
        let _rng = crate::torch_rng_lock();
        let cfg = AttnEmbedConfig::default().shared_embed(SharedEmbed::Overwrite {
            frac_shared_embed: 0.25,
        });
        let (vs, e) = build(&cfg, true);
        let shared = vs.variables()["cat.shared_embed"].shallow_clone();
        assert_eq!(shared.size(), [2, 2]);
        let out = e.forward_t(&input(), false).tokens;
        for r in 0..3 {
            assert!(out.get(r).get(1).narrow(0, 0, 2).equal(&shared.get(1)));
        }
        let cfg = AttnEmbedConfig::default().shared_embed(SharedEmbed::Add);
        let (vs, e) = build(&cfg, true);
        let vars = vs.variables();
        let out = e.forward_t(&input(), false).tokens;
        // unseen value: zero row + the column vector
        assert!(out
            .get(1)
            .get(1)
            .allclose(&vars["cat.shared_embed"].get(1), 1e-6, 1e-6, false));
        let with_value = vars["cat.table.weight"].get(5) + vars["cat.shared_embed"].get(1);
        assert!(out.get(0).get(1).allclose(&with_value, 1e-6, 1e-6, false));
    }

    #[test]
    fn cat_bias_cls_and_non_embedded_cont() {
        let _rng = crate::torch_rng_lock();
        let cfg = AttnEmbedConfig::default()
            .use_cat_bias(true)
            .with_cls_token(true)
            .cont_norm(ContNorm::LayerNorm);
        let (vs, e) = build(&cfg, false);
        let out = e.forward_t(&input(), true);
        assert_eq!(out.tokens.size(), [3, 3, 8]);
        assert_eq!(e.n_tokens(), 3);
        let cls = vs.variables()["cls_token"].view([8]);
        assert!(out.tokens.get(2).get(0).equal(&cls));
        // unseen column a in row 2 → bias only
        let bias = vs.variables()["cat.bias"].get(0);
        assert!(out.tokens.get(2).get(1).allclose(&bias, 1e-6, 1e-6, false));
        let cont = out.cont.unwrap();
        assert_eq!(cont.size(), [3, 2]);
        // layer norm of two values gives ±1 (up to eps)
        let v = f64::try_from(cont.get(0).get(0)).unwrap();
        assert!((v.abs() - 1.0).abs() < 1e-2, "{v}");
    }

    #[test]
    fn piecewise_encoding_matches_hand_computed_values() {
        let _rng = crate::torch_rng_lock();
        let edges = vec![vec![0.0, 1.0, 2.0, 4.0], vec![-1.0, 1.0]];
        let cfg = AttnEmbedConfig::default().cont_embed(ContEmbed::Piecewise {
            edges: edges.clone(),
        });
        let vs = nn::VarStore::new(Device::Cpu);
        let e = AttnEmbeddings::new(
            &vs.root(),
            &[],
            &["x".to_string(), "y".to_string()],
            4,
            &cfg,
            true,
            "m",
        )
        .unwrap();
        let ContMethod::Piecewise {
            lower,
            width,
            lo_clip,
            hi_clip,
            ..
        } = &e.cont.as_ref().unwrap().method
        else {
            panic!("piecewise")
        };
        let x = Tensor::from_slice(&[1.5f32, 0.0, -1.0, 3.0, 5.0, 2.0]).view([3, 2]);
        let enc = ((x.unsqueeze(2) - lower) / width)
            .maximum(lo_clip)
            .minimum(hi_clip);
        let got = Vec::<f32>::try_from(enc.flatten(0, -1)).unwrap();
        #[rustfmt::skip]
        let expected = [
            1.0, 0.5, 0.0,   0.5, 0.0, 0.0,   // x = 1.5 | y = 0 (one bin, padded)
            -1.0, 0.0, 0.0,  2.0, 0.0, 0.0,   // x = -1 extrapolates below | y = 3 above
            1.0, 1.0, 1.5,   1.5, 0.0, 0.0,   // x = 5 extrapolates above | y = 2
        ];
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-6, "{got:?}");
        }
        let out = e.forward_t(
            &ModelInput {
                cont: Some(x),
                ..Default::default()
            },
            false,
        );
        assert_eq!(out.tokens.size(), [3, 2, 4]);
    }

    #[test]
    fn periodic_tokens_have_the_right_shape_and_are_relu_outputs() {
        let _rng = crate::torch_rng_lock();
        for share in [false, true] {
            let cfg = AttnEmbedConfig::default().cont_embed(ContEmbed::Periodic {
                n_frequencies: 5,
                sigma: 0.5,
                share_last_layer: share,
            });
            let (vs, e) = build(&cfg, true);
            let f = vs.variables()["cont.frequencies"].shallow_clone();
            assert_eq!(f.size(), [2, 5]);
            assert!(f.abs().max().double_value(&[]) <= 1.5 + 1e-6);
            let t = e.forward_t(&input(), false).tokens;
            assert_eq!(t.size(), [3, 4, 8]);
            assert!(t.narrow(1, 2, 2).min().double_value(&[]) >= 0.0);
        }
    }

    #[test]
    fn embed_then_combine_equals_forward() {
        let _rng = crate::torch_rng_lock();
        for embed_cont in [true, false] {
            let cfg = AttnEmbedConfig::default()
                .with_cls_token(true)
                .cont_norm(ContNorm::BatchNorm)
                .cat_embed_dropout(0.3)
                .full_embed_dropout(true);
            let (_vs, e) = build(&cfg, embed_cont);
            let parts = e.embed(&input());
            assert_eq!(parts.len(), 4);
            let w = if embed_cont { 8 } else { 1 };
            assert_eq!(parts[3].size(), [3, w]);
            let a = e.forward_t(&input(), false);
            let b = e.combine(&parts, false);
            assert!(a.tokens.equal(&b.tokens));
            assert_eq!(a.cont.is_some(), !embed_cont);
            if let (Some(x), Some(y)) = (a.cont, b.cont) {
                assert!(x.equal(&y));
            }
        }
    }

    #[test]
    fn full_embed_dropout_drops_whole_tokens() {
        let _rng = crate::torch_rng_lock();
        let cfg = AttnEmbedConfig::default()
            .cat_embed_dropout(0.5)
            .full_embed_dropout(true);
        let (_vs, e) = build(&cfg, true);
        let x = ModelInput {
            cat: Some(Tensor::ones([64, 2], (Kind::Int64, Device::Cpu))),
            cont: Some(Tensor::ones([64, 2], (Kind::Float, Device::Cpu))),
            ..Default::default()
        };
        let t = e.forward_t(&x, true).tokens.narrow(1, 0, 2);
        let zero = t.abs().sum_dim_intlist(2, false, Kind::Float).eq(0.0);
        let n_zero = zero.sum(Kind::Int64).int64_value(&[]);
        assert!(
            n_zero > 20 && n_zero < 108,
            "{n_zero} dropped tokens of 128"
        );
        // kept tokens are scaled by 1 / (1 − p)
        let eval = e.forward_t(&x, false).tokens.narrow(1, 0, 2);
        let kept = zero.logical_not().unsqueeze(2);
        let diff = (t - eval * 2.0) * kept;
        assert!(diff.abs().max().double_value(&[]) < 1e-5);
    }

    #[test]
    fn quantile_edges_are_strictly_increasing() {
        let v: Vec<f32> = (0..101).map(|i| i as f32).collect();
        assert_eq!(
            quantile_edges(&v, 4).unwrap(),
            vec![0.0, 25.0, 50.0, 75.0, 100.0]
        );
        let skewed = [0.0f32, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0];
        let e = quantile_edges(&skewed, 4).unwrap();
        assert!(e.windows(2).all(|w| w[1] > w[0]), "{e:?}");
        assert_eq!(quantile_edges(&[3.0], 4).unwrap(), vec![2.5, 3.5]);
        assert!(quantile_edges(&[f32::NAN], 2).is_err());
        assert!(quantile_edges(&[], 2).is_err());
        let cont = Tensor::from_slice(&[1.0f32, 5.0, 2.0, 6.0, 3.0, 7.0]).view([3, 2]);
        let ContEmbed::Piecewise { edges } = ContEmbed::piecewise_quantiles(&cont, 2).unwrap()
        else {
            panic!("piecewise")
        };
        assert_eq!(edges, vec![vec![1.0, 2.0, 3.0], vec![5.0, 6.0, 7.0]]);
    }

    #[test]
    fn invalid_options_name_the_field() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let cont = ["x".to_string(), "y".to_string()];
        let err = |cfg: AttnEmbedConfig, d: i64| {
            AttnEmbeddings::new(&vs.root(), &cat_meta(), &cont, d, &cfg, true, "m")
                .unwrap_err()
                .to_string()
        };
        let bad_edges = AttnEmbedConfig::default().cont_embed(ContEmbed::Piecewise {
            edges: vec![vec![0.0, 1.0], vec![0.0, 2.0, 2.0]],
        });
        let e = err(bad_edges, 8);
        assert!(
            e.contains("m.embed.cont_embed.edges[1]") && e.contains("increasing"),
            "{e}"
        );
        let too_few = AttnEmbedConfig::default().cont_embed(ContEmbed::Piecewise {
            edges: vec![vec![0.0, 1.0]],
        });
        assert!(err(too_few, 8).contains("m.embed.cont_embed.edges"));
        let e = err(
            AttnEmbedConfig::default().cont_embed(ContEmbed::periodic(0, 1.0)),
            8,
        );
        assert!(e.contains("n_frequencies"), "{e}");
        let e = err(
            AttnEmbedConfig::default().cont_embed(ContEmbed::periodic(4, -1.0)),
            8,
        );
        assert!(e.contains("sigma"), "{e}");
        let frac = AttnEmbedConfig::default().shared_embed(SharedEmbed::Overwrite {
            frac_shared_embed: 0.1,
        });
        assert!(err(frac, 8).contains("frac_shared_embed"));
        assert!(err(AttnEmbedConfig::default().cat_embed_dropout(1.0), 8)
            .contains("m.embed.cat_embed_dropout"));
        assert!(err(AttnEmbedConfig::default(), 0).contains("m.input_dim"));
    }

    #[test]
    fn input_checks_name_the_column() {
        let _rng = crate::torch_rng_lock();
        let (_vs, e) = build(&AttnEmbedConfig::default(), true);
        let mut x = input();
        x.cat = Some(Tensor::from_slice(&[1i64, 3]).view([1, 2]));
        let msg = e.check_input(&x).unwrap_err().to_string();
        assert!(msg.contains('b') && msg.contains("0..=2"), "{msg}");
        let mut x = input();
        x.cont = Some(Tensor::zeros([3, 3], (Kind::Float, Device::Cpu)));
        assert!(e.check_input(&x).unwrap_err().to_string().contains("cont"));
    }
}
