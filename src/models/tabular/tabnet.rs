//! TabNet (Arik & Pfister, 2019): sequential attention over the embedded columns with sparse
//! feature masks, as in the reference's `TabNet` (itself after dreamquark-ai's implementation).
//!
//! Per decision step `i`, an attentive transformer turns the previous step's attention features
//! into a mask `M[i] = sparsemax(P[i-1] · BN(FC(a[i-1])))` over the embedded input (or
//! entmax 1.5), the prior is relaxed `P[i] = P[i-1] · (γ - M[i])`, and a feature transformer
//! (GLU layers shared across steps, then step-specific ones) maps `M[i] · x` to the step's
//! decision output `ReLU(d[i])` and the next attention features `a[i]`. The model's output is
//! `Σ_i ReLU(d[i])`.
use crate::error::{Result, WideDeepError};
use crate::macros::setters;
use crate::models::checks::check_dropout;
use crate::models::dropout::DropoutExt;
use crate::models::tabular::embeddings::{ContNorm, TabEmbeddings};
use crate::models::tabular::tab_resnet::bn_t;
use crate::models::{Component, ModelInput};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use tch::{nn, Kind, Tensor};
use widedeep_preprocessing::{CatColumnMeta, TabMeta};

/// The function that turns attention logits into a feature mask (rows sum to 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskType {
    /// [`sparsemax`] (Martins & Astudillo, 2016): Euclidean projection onto the simplex.
    #[default]
    Sparsemax,
    /// [`entmax15`] (Peters, Niculae & Martins, 2019): between softmax and sparsemax.
    #[serde(alias = "entmax")]
    Entmax15,
}

/// Configuration of [`TabNet`]. Start from [`TabNetConfig::from_meta`] with the fitted
/// `TabPreprocessor`'s metadata, then adjust with the setters. Defaults are the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TabNetConfig {
    /// One entry per categorical column: name, cardinality (incl. the 0 slot), embedding width.
    pub cat_embed: Vec<CatColumnMeta>,
    /// Names of the continuous input columns (missing-indicator columns included).
    pub cont_cols: Vec<String>,
    /// Dropout on the concatenated categorical embeddings.
    pub embed_dropout: f64,
    pub cont_norm: ContNorm,
    /// Number of decision steps (≥ 1).
    pub n_steps: usize,
    /// Width of each step's decision output, and of the model's output (≥ 1).
    pub step_dim: i64,
    /// Width of the attention features passed to the next step's mask (≥ 1).
    pub attn_dim: i64,
    /// Dropout after each GLU layer, in `[0, 1)`.
    pub dropout: f64,
    /// GLU layers specific to each step.
    pub n_glu_step_dependent: usize,
    /// GLU layers shared by all steps (their linear layers are shared; the first of them
    /// reads the embeddings). With the step-dependent ones, at least one in all.
    pub n_glu_shared: usize,
    /// Ghost batch normalisation: training batches are normalised in chunks of
    /// `virtual_batch_size` rows. `false`: ordinary batch normalisation.
    pub ghost_bn: bool,
    /// Rows per ghost batch (≥ 1).
    pub virtual_batch_size: usize,
    /// Momentum of the running statistics of the GLU and attention batch norms, in `(0, 1]`.
    pub momentum: f64,
    /// Relaxation `γ ≥ 1`: with 1 a feature is used at one step only; larger values let it be
    /// reused.
    pub gamma: f64,
    /// Added inside the logarithm of the sparsity regularisation (`> 0`, keep it tiny).
    pub epsilon: f64,
    pub mask_type: MaskType,
    /// Weight of the sparsity regularisation (the masks' mean entropy) added to the training
    /// loss through [`Component::forward_aux`]; 0 turns it off (≥ 0).
    pub lambda_sparse: f64,
}

impl Default for TabNetConfig {
    fn default() -> Self {
        Self {
            cat_embed: Vec::new(),
            cont_cols: Vec::new(),
            embed_dropout: 0.0,
            cont_norm: ContNorm::None,
            n_steps: 3,
            step_dim: 8,
            attn_dim: 8,
            dropout: 0.0,
            n_glu_step_dependent: 2,
            n_glu_shared: 2,
            ghost_bn: true,
            virtual_batch_size: 128,
            momentum: 0.02,
            gamma: 1.3,
            epsilon: 1e-15,
            mask_type: MaskType::Sparsemax,
            lambda_sparse: 1e-3,
        }
    }
}

impl TabNetConfig {
    /// Columns, cardinalities and embedding widths from a fitted `TabPreprocessor`.
    pub fn from_meta(meta: &TabMeta) -> Self {
        Self {
            cat_embed: meta.cat.clone(),
            cont_cols: meta.cont.clone(),
            ..Default::default()
        }
    }
    setters!(
        embed_dropout: f64,
        cont_norm: ContNorm,
        n_steps: usize,
        step_dim: i64,
        attn_dim: i64,
        dropout: f64,
        n_glu_step_dependent: usize,
        n_glu_shared: usize,
        ghost_bn: bool,
        virtual_batch_size: usize,
        momentum: f64,
        gamma: f64,
        epsilon: f64,
        mask_type: MaskType,
        lambda_sparse: f64,
    );

    /// Checks the values; errors name the field (`tab_net.n_steps`, ...).
    pub fn validate(&self) -> Result<()> {
        let err = |field: &str, reason: String| {
            Err(WideDeepError::config(format!("tab_net.{field}"), reason))
        };
        if self.n_steps == 0 {
            return err("n_steps", "must be ≥ 1, got 0".into());
        }
        if self.step_dim < 1 {
            return err("step_dim", format!("must be ≥ 1, got {}", self.step_dim));
        }
        if self.attn_dim < 1 {
            return err("attn_dim", format!("must be ≥ 1, got {}", self.attn_dim));
        }
        check_dropout(self.dropout, "tab_net.dropout")?;
        if self.n_glu_shared + self.n_glu_step_dependent == 0 {
            return err(
                "n_glu_shared",
                "n_glu_shared + n_glu_step_dependent must be ≥ 1, got 0".into(),
            );
        }
        if self.virtual_batch_size == 0 {
            return err("virtual_batch_size", "must be ≥ 1, got 0".into());
        }
        if !(self.momentum > 0.0 && self.momentum <= 1.0) {
            return err(
                "momentum",
                format!("must be in (0, 1], got {}", self.momentum),
            );
        }
        if !(self.gamma >= 1.0 && self.gamma.is_finite()) {
            return err("gamma", format!("must be ≥ 1, got {}", self.gamma));
        }
        if !(self.epsilon > 0.0 && self.epsilon < 1.0) {
            return err(
                "epsilon",
                format!("must be in (0, 1), got {}", self.epsilon),
            );
        }
        if !(self.lambda_sparse >= 0.0 && self.lambda_sparse.is_finite()) {
            return err(
                "lambda_sparse",
                format!("must be ≥ 0, got {}", self.lambda_sparse),
            );
        }
        Ok(())
    }

    /// Validates and builds the model under `path`.
    pub fn build(&self, path: &nn::Path) -> Result<TabNet> {
        self.validate()?;
        let embed = TabEmbeddings::new(
            &(path / "embed"),
            &self.cat_embed,
            &self.cont_cols,
            self.cont_norm,
            self.embed_dropout,
            "tab_net",
        )?;
        let input_dim = embed.output_dim();
        let hidden = self.step_dim + self.attn_dim;
        let bn = |p: nn::Path, dim: i64| {
            GhostBatchNorm::new(
                &p,
                dim,
                self.momentum,
                self.ghost_bn.then_some(self.virtual_batch_size as i64),
            )
        };
        let shared: Vec<nn::Linear> = (0..self.n_glu_shared)
            .map(|i| {
                let inp = if i == 0 { input_dim } else { hidden };
                glu_linear(&(path / "shared" / format!("fc_{i}")), inp, hidden)
            })
            .collect();
        let feat = |p: nn::Path| {
            let mut layers = Vec::with_capacity(self.n_glu_shared + self.n_glu_step_dependent);
            for (i, fc) in shared.iter().enumerate() {
                layers.push(GluLayer {
                    fc: nn::Linear {
                        ws: fc.ws.shallow_clone(),
                        bs: None,
                    },
                    bn: bn(&p / format!("shared_bn_{i}"), 2 * hidden),
                });
            }
            for i in 0..self.n_glu_step_dependent {
                let inp = if layers.is_empty() { input_dim } else { hidden };
                layers.push(GluLayer {
                    fc: glu_linear(&(&p / format!("fc_{i}")), inp, hidden),
                    bn: bn(&p / format!("bn_{i}"), 2 * hidden),
                });
            }
            FeatTransformer {
                layers,
                dropout: self.dropout,
            }
        };
        let splitter = feat(path / "splitter");
        let steps = (0..self.n_steps)
            .map(|s| {
                let p = path / format!("step_{s}");
                let attn_fc = {
                    // xavier normal with the reference's gain sqrt((in + out) / sqrt(4 in))
                    let std = (1.0 / (self.attn_dim as f64).sqrt()).sqrt();
                    nn::linear(
                        &p / "attn_fc",
                        self.attn_dim,
                        input_dim,
                        nn::LinearConfig {
                            ws_init: nn::Init::Randn {
                                mean: 0.0,
                                stdev: std,
                            },
                            bs_init: None,
                            bias: false,
                        },
                    )
                };
                Step {
                    attn_fc,
                    attn_bn: bn(&p / "attn_bn", input_dim),
                    feat: feat(&p / "feat"),
                }
            })
            .collect();
        let initial_bn = nn::batch_norm1d(
            path / "initial_bn",
            input_dim,
            nn::BatchNormConfig {
                momentum: 0.01,
                ws_init: nn::Init::Const(1.0),
                ..Default::default()
            },
        );
        let mut widths: Vec<i64> = self.cat_embed.iter().map(|c| c.embed_dim as i64).collect();
        widths.extend(std::iter::repeat_n(1, self.cont_cols.len()));
        Ok(TabNet {
            embed,
            initial_bn,
            splitter,
            steps,
            step_dim: self.step_dim,
            attn_dim: self.attn_dim,
            gamma: self.gamma,
            epsilon: self.epsilon,
            mask_type: self.mask_type,
            lambda_sparse: self.lambda_sparse,
            widths,
            last_masks: Mutex::new(None),
        })
    }
}

/// A GLU layer's linear map `inp → 2 · out` without bias, initialised as the reference's
/// (xavier normal with gain `sqrt((in + 2 out) / sqrt(in))`, i.e. std `sqrt(2 / sqrt(in))`).
fn glu_linear(path: &nn::Path, inp: i64, out: i64) -> nn::Linear {
    let std = (2.0 / (inp as f64).sqrt()).sqrt();
    nn::linear(
        path,
        inp,
        2 * out,
        nn::LinearConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: std,
            },
            bs_init: None,
            bias: false,
        },
    )
}

/// Batch normalisation that, in training, normalises each chunk of `virtual_batch_size` rows
/// with the chunk's own statistics (ghost batch norm; Hoffer et al., 2017), updating the running
/// statistics once per chunk. Chunks follow `torch.chunk`: `ceil(batch / virtual_batch_size)`
/// chunks of `ceil(batch / n_chunks)` rows (the last one may be smaller). Evaluation uses the
/// running statistics, as plain batch norm.
#[derive(Debug)]
struct GhostBatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    momentum: f64,
    virtual_batch_size: Option<i64>,
}

impl GhostBatchNorm {
    fn new(path: &nn::Path, dim: i64, momentum: f64, virtual_batch_size: Option<i64>) -> Self {
        Self {
            weight: path.var("weight", &[dim], nn::Init::Const(1.0)),
            bias: path.var("bias", &[dim], nn::Init::Const(0.0)),
            running_mean: path.zeros_no_train("running_mean", &[dim]),
            running_var: path.ones_no_train("running_var", &[dim]),
            momentum,
            virtual_batch_size,
        }
    }

    /// `[batch, dim]` → `[batch, dim]`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let n = x.size()[0];
        match self.virtual_batch_size {
            Some(vbs) if train && n > vbs => {
                let chunks = x.chunk((n + vbs - 1) / vbs, 0);
                let out: Vec<Tensor> = chunks.iter().map(|c| self.plain(c, true)).collect();
                Tensor::cat(&out, 0)
            }
            _ => self.plain(x, train),
        }
    }

    fn plain(&self, x: &Tensor, train: bool) -> Tensor {
        x.batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train && x.size()[0] > 1,
            self.momentum,
            1e-5,
            true,
        )
    }
}

#[derive(Debug)]
struct GluLayer {
    fc: nn::Linear,
    bn: GhostBatchNorm,
}

/// GLU layers: the first maps the input, each further one is added as a residual scaled by
/// `sqrt(0.5)`. `[batch, in]` → `[batch, step_dim + attn_dim]`.
#[derive(Debug)]
struct FeatTransformer {
    layers: Vec<GluLayer>,
    dropout: f64,
}

impl FeatTransformer {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let glu = |l: &GluLayer, h: &Tensor| {
            l.bn.forward_t(&h.apply(&l.fc), train)
                .glu(-1)
                .dropout_t(self.dropout, train)
        };
        let mut h = glu(&self.layers[0], x);
        for l in &self.layers[1..] {
            h = (glu(l, &h) + h) * std::f64::consts::FRAC_1_SQRT_2;
        }
        h
    }
}

#[derive(Debug)]
struct Step {
    attn_fc: nn::Linear,
    attn_bn: GhostBatchNorm,
    feat: FeatTransformer,
}

/// What one encoder pass returns besides the output.
struct Encoded {
    /// `Σ_i ReLU(d[i])`, `[batch, step_dim]`.
    out: Tensor,
    /// Mean over steps of the masks' mean negative entropy `Σ_j M log(M + ε)` (≤ 0), a scalar.
    m_loss: Option<Tensor>,
    /// Per-step masks over the embedded input, `[batch, input_dim]` each.
    masks: Vec<Tensor>,
    /// `Σ_i M[i] · Σ_k ReLU(d[i])_k`, `[batch, input_dim]`.
    explain: Option<Tensor>,
}

/// TabNet: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, step_dim]`.
///
/// The masks of the most recent forward pass are kept: [`TabNet::last_masks`] (and
/// [`Component::attention_weights`]) return them per step, summed over each column's embedding
/// dimensions, `[batch, n_columns]` (rows sum to 1).
#[derive(Debug)]
pub struct TabNet {
    embed: TabEmbeddings,
    initial_bn: nn::BatchNorm,
    splitter: FeatTransformer,
    steps: Vec<Step>,
    step_dim: i64,
    attn_dim: i64,
    gamma: f64,
    epsilon: f64,
    mask_type: MaskType,
    lambda_sparse: f64,
    /// Embedding width of each input column, in [`Component::feature_names`] order.
    widths: Vec<i64>,
    last_masks: Mutex<Option<Vec<Tensor>>>,
}

impl TabNet {
    fn encode(&self, x: &Tensor, train: bool, with_loss: bool, with_explain: bool) -> Encoded {
        let x = bn_t(&self.initial_bn, x, train);
        let n_steps = self.steps.len();
        // The prior starts as ones: the first step skips multiplying by it.
        let mut prior: Option<Tensor> = None;
        let mut attn = self
            .splitter
            .forward_t(&x, train)
            .narrow(1, self.step_dim, self.attn_dim);
        let mut out: Option<Tensor> = None;
        let mut neg_entropy: Option<Tensor> = None;
        let mut explain: Option<Tensor> = None;
        let mut masks = Vec::with_capacity(n_steps);
        for (i, step) in self.steps.iter().enumerate() {
            let last = i + 1 == n_steps;
            let mut logits = step.attn_bn.forward_t(&attn.apply(&step.attn_fc), train);
            if let Some(p) = &prior {
                logits *= p;
            }
            let m = match self.mask_type {
                MaskType::Sparsemax => sparsemax(&logits),
                MaskType::Entmax15 => entmax15(&logits),
            };
            if !last {
                let relax = -&m + self.gamma;
                prior = Some(match prior {
                    Some(p) => relax * p,
                    None => relax,
                });
            }
            if with_loss {
                // Σ over rows and columns of M log(M + ε); divided by batch · n_steps below.
                let term = (&m * (&m + self.epsilon).log()).sum(Kind::Float);
                neg_entropy = Some(match neg_entropy {
                    Some(l) => l + term,
                    None => term,
                });
            }
            let h = step.feat.forward_t(&(&m * &x), train);
            if !last {
                attn = h.narrow(1, self.step_dim, self.attn_dim);
            }
            let d = h.narrow(1, 0, self.step_dim).relu();
            if with_explain {
                let contrib = &m * d.sum_dim_intlist(1, true, Kind::Float);
                explain = Some(match explain {
                    Some(e) => e + contrib,
                    None => contrib,
                });
            }
            masks.push(m.detach());
            out = Some(match out {
                Some(o) => o + d,
                None => d,
            });
        }
        let rows = x.size()[0].max(1) as f64;
        Encoded {
            out: out.expect("n_steps ≥ 1"),
            m_loss: neg_entropy.map(|l| l / (rows * n_steps as f64)),
            masks,
            explain,
        }
    }

    /// Forward from the combined embeddings, keeping the masks; returns the output and the
    /// weighted sparsity loss when asked.
    fn run(&self, emb: &Tensor, train: bool, with_loss: bool) -> (Tensor, Option<Tensor>) {
        let enc = self.encode(emb, train, with_loss, false);
        *self.last_masks.lock().unwrap_or_else(|e| e.into_inner()) = Some(enc.masks);
        let aux = enc.m_loss.map(|l| l * -self.lambda_sparse);
        (enc.out, aux)
    }

    /// Sums the embedding dimensions of each column: `[batch, input_dim]` → `[batch, n_columns]`.
    fn to_columns(&self, t: &Tensor) -> Tensor {
        if self.widths.iter().all(|&w| w == 1) {
            return t.shallow_clone();
        }
        let parts: Vec<Tensor> = t
            .split_with_sizes(&self.widths, 1)
            .iter()
            .map(|p| p.sum_dim_intlist(1, true, Kind::Float))
            .collect();
        Tensor::cat(&parts, 1)
    }

    /// The feature masks of the most recent forward pass, one per step, each `[batch,
    /// n_columns]` (summed over each column's embedding dimensions, in
    /// [`Component::feature_names`] order; rows sum to 1). `None` before the first forward.
    pub fn last_masks(&self) -> Option<Vec<Tensor>> {
        let guard = self.last_masks.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .map(|ms| ms.iter().map(|m| self.to_columns(m)).collect())
    }

    /// Per-row explanation in evaluation mode, without gradients: the aggregated masks
    /// `Σ_i M[i] · Σ_k ReLU(d[i])_k` per column, normalised to sum 1 per row (a row with no
    /// decision contribution stays 0), `[batch, n_columns]`, and the per-step masks `[batch,
    /// n_columns]`. Does not replace [`TabNet::last_masks`].
    pub fn explain(&self, input: &ModelInput) -> Result<(Tensor, Vec<Tensor>)> {
        self.embed.check_input(input)?;
        let enc =
            tch::no_grad(|| self.encode(&self.embed.forward_t(input, false), false, false, true));
        let agg = self.to_columns(&enc.explain.expect("asked for"));
        let total = agg.sum_dim_intlist(1, true, Kind::Float);
        let norm = agg / total.clamp_min(f64::MIN_POSITIVE);
        let masks = enc.masks.iter().map(|m| self.to_columns(m)).collect();
        Ok((norm, masks))
    }

    fn importance(&self, input: &ModelInput) -> Result<Vec<f64>> {
        self.embed.check_input(input)?;
        let n = input.batch_size();
        let chunk = 4096;
        let mut total: Option<Tensor> = None;
        tch::no_grad(|| {
            let mut start = 0;
            while start < n {
                let len = chunk.min(n - start);
                let part = input.map(|t| t.narrow(0, start, len));
                let enc = self.encode(&self.embed.forward_t(&part, false), false, false, true);
                let s = self
                    .to_columns(&enc.explain.expect("asked for"))
                    .sum_dim_intlist(0, false, Kind::Double);
                total = Some(match total.take() {
                    Some(t) => t + s,
                    None => s,
                });
                start += len;
            }
        });
        let total = total.ok_or_else(|| {
            WideDeepError::Missing("feature importance needs at least one row".into())
        })?;
        let values = Vec::<f64>::try_from(total.to_device(tch::Device::Cpu))?;
        let sum: f64 = values.iter().sum();
        if !(sum > 0.0 && sum.is_finite()) {
            return Err(WideDeepError::Missing(
                "TabNet's decision steps gave no contribution on these rows, so feature \
                 importance is undefined"
                    .into(),
            ));
        }
        Ok(values.into_iter().map(|v| v / sum).collect())
    }
}

impl Component for TabNet {
    fn forward_t(&self, input: &ModelInput, train: bool) -> Tensor {
        self.run(&self.embed.forward_t(input, train), train, false)
            .0
    }

    fn forward_aux(&self, input: &ModelInput, train: bool) -> (Tensor, Option<Tensor>) {
        let with_loss = self.lambda_sparse > 0.0;
        self.run(&self.embed.forward_t(input, train), train, with_loss)
    }

    fn output_dim(&self) -> i64 {
        self.step_dim
    }

    fn check_input(&self, input: &ModelInput) -> Result<()> {
        self.embed.check_input(input)
    }

    /// The per-step feature masks of the most recent forward pass, `[batch, n_columns]` each
    /// (see [`TabNet::last_masks`]).
    fn attention_weights(&self) -> Option<Vec<Tensor>> {
        self.last_masks()
    }

    /// TabNet's global importance (the reference's `feature_importance`): the masks of every
    /// step weighted by the step's decision contribution `Σ_k ReLU(d[i])_k`, summed over steps,
    /// rows and each column's embedding dimensions, normalised to sum 1. Evaluation mode.
    fn feature_importance(&self, input: &ModelInput) -> Option<Result<Vec<f64>>> {
        Some(self.importance(input))
    }

    fn feature_names(&self) -> Vec<String> {
        self.embed.names()
    }

    fn embed(&self, input: &ModelInput) -> Option<Vec<Tensor>> {
        Some(self.embed.embed(input))
    }

    fn forward_embedded(&self, parts: &[Tensor], train: bool) -> Option<Tensor> {
        Some(self.run(&self.embed.combine(parts, train), train, false).0)
    }
}

/// Sparsemax over the last dimension of `z` `[batch, d]` (Martins & Astudillo, 2016): the
/// Euclidean projection of each row onto the probability simplex, `max(z - τ, 0)` with `τ` such
/// that the row sums to 1.
///
/// The support is found without sorting and without gradients (on the CPU row by row with
/// Michelot's algorithm; elsewhere by Newton's method on the convex, piecewise-linear
/// `f(τ) = Σ max(z - τ, 0)` from `τ₀ = max(z) - 1`, which rises monotonically to the exact root
/// in finitely many steps); then `τ` is recomputed from the support's values, which gives the
/// exact Jacobian `diag(s) - s sᵀ / |S|` (`s` the support indicator).
pub fn sparsemax(z: &Tensor) -> Tensor {
    // Shift-invariant: subtracting the row maximum (without gradient) changes neither value nor
    // gradient, and keeps the sums below well conditioned.
    let z = z - tch::no_grad(|| z.amax(-1, true));
    let support = match cpu_thresholds(&z, 1.0, sparsemax_tau) {
        Some(tau) => z.gt_tensor(&tau),
        None => sparsemax_support(&z),
    };
    let kind = z.kind();
    let mask = support.to_kind(kind);
    let k = mask.sum_dim_intlist(-1, true, kind);
    let tau = ((&z * &mask).sum_dim_intlist(-1, true, kind) - 1.0) / k;
    (z - tau).clamp_min(0.0)
}

/// Support of sparsemax with tensor operations (any device), without gradients: Newton's method
/// on `f(τ) = Σ max(z - τ, 0)` from `max(z) - 1`, until the support stops changing.
fn sparsemax_support(z: &Tensor) -> Tensor {
    let kind = z.kind();
    tch::no_grad(|| {
        let d = *z.size().last().expect("at least one dimension");
        let mut tau = z.amax(-1, true) - 1.0;
        let mut k_prev: Option<Tensor> = None;
        for _ in 0..=d {
            let above = (z - &tau).relu_();
            let k = above.count_nonzero(-1).unsqueeze(-1);
            if k_prev.as_ref().is_some_and(|prev| k.equal(prev)) {
                break;
            }
            tau += (above.sum_dim_intlist(-1, true, kind) - 1.0) / &k;
            k_prev = Some(k);
        }
        z.gt_tensor(&tau)
    })
}

/// Entmax with α = 1.5 over the last dimension of `z` `[batch, d]` (Peters, Niculae & Martins,
/// 2019): `max(z / 2 - τ, 0)²` with `τ` such that each row sums to 1, sparse like sparsemax but
/// smoother.
///
/// The support is found without sorting and without gradients (on the CPU row by row; elsewhere
/// by Newton's method on the convex, decreasing `g(τ) = Σ max(x - τ, 0)² - 1`, `x = z / 2`, from
/// `τ₀ = max(x) - 1`, which rises monotonically towards the root); then `τ` is recomputed in
/// closed form from the support (`τ = mean - sqrt((1 - ss) / k)`), whose gradient is the exact
/// one.
pub fn entmax15(z: &Tensor) -> Tensor {
    let kind = z.kind();
    // Shift-invariant: subtracting the row maximum (without gradient) changes neither value nor
    // gradient, and keeps the sums below well conditioned.
    let z = z - tch::no_grad(|| z.amax(-1, true));
    let x = &z / 2.0;
    let support = match cpu_thresholds(&z, 0.5, entmax15_tau) {
        Some(tau) => x.gt_tensor(&tau),
        None => entmax15_support(&x),
    };
    let mask = support.to_kind(kind);
    let k = mask.sum_dim_intlist(-1, true, kind);
    let mean = (&x * &mask).sum_dim_intlist(-1, true, kind) / &k;
    let ss = ((&x - &mean).square() * &mask).sum_dim_intlist(-1, true, kind);
    let delta = ((-ss + 1.0) / &k).clamp_min(1e-12);
    let tau = mean - delta.sqrt();
    (x - tau).clamp_min(0.0).square()
}

/// Support of entmax-1.5 of `2 x` with tensor operations (any device), without gradients.
fn entmax15_support(x: &Tensor) -> Tensor {
    let kind = x.kind();
    let tol = if kind == Kind::Double { 1e-12 } else { 1e-6 };
    tch::no_grad(|| {
        let mut tau = x.amax(-1, true) - 1.0;
        for _ in 0..100 {
            let above = (x - &tau).relu_();
            let g = above.square().sum_dim_intlist(-1, true, kind) - 1.0;
            let step = g / (above.sum_dim_intlist(-1, true, kind) * 2.0);
            tau += &step;
            if step.max().double_value(&[]) <= tol {
                break;
            }
        }
        x.gt_tensor(&tau)
    })
}

/// Row thresholds of `scale · z` for a CPU `f32`/`f64` tensor `[..., d]`, computed row by row
/// in Rust (`f64`) by `tau_of` (which may reorder its buffer): `[..., 1]` of `z`'s kind. `None`
/// for other devices and kinds, which take the tensor path. On the CPU this is several times
/// faster than the handful of small tensor operations per Newton iteration.
fn cpu_thresholds(z: &Tensor, scale: f64, tau_of: fn(&mut Vec<f64>) -> f64) -> Option<Tensor> {
    let kind = z.kind();
    if z.device() != tch::Device::Cpu || !matches!(kind, Kind::Float | Kind::Double) {
        return None;
    }
    let size = z.size();
    let d = *size.last()? as usize;
    if d == 0 {
        return None;
    }
    let flat = z.detach().contiguous().view([-1]);
    let mut buf = Vec::with_capacity(d);
    let taus: Vec<f64> = if kind == Kind::Float {
        let values = Vec::<f32>::try_from(&flat).ok()?;
        values
            .chunks_exact(d)
            .map(|row| {
                buf.clear();
                buf.extend(row.iter().map(|&v| f64::from(v) * scale));
                tau_of(&mut buf)
            })
            .collect()
    } else {
        let values = Vec::<f64>::try_from(&flat).ok()?;
        values
            .chunks_exact(d)
            .map(|row| {
                buf.clear();
                buf.extend(row.iter().map(|&v| v * scale));
                tau_of(&mut buf)
            })
            .collect()
    };
    let mut shape = size;
    *shape.last_mut()? = 1;
    Some(
        Tensor::from_slice(&taus)
            .to_kind(kind)
            .view(shape.as_slice()),
    )
}

/// Sparsemax threshold of one row (Michelot's algorithm): from the whole row, repeatedly set
/// `τ = (Σ_C x - 1) / |C|` and keep the candidates `x > τ` until none is dropped. The maximum is
/// never dropped, so `C` stays non-empty.
fn sparsemax_tau(c: &mut Vec<f64>) -> f64 {
    let mut tau = (c.iter().sum::<f64>() - 1.0) / c.len() as f64;
    loop {
        let n = c.len();
        c.retain(|&v| v > tau);
        if c.len() == n || c.is_empty() {
            return tau;
        }
        tau = (c.iter().sum::<f64>() - 1.0) / c.len() as f64;
    }
}

/// Entmax-1.5 threshold of one row of `x = z / 2`: Newton steps on `g(τ) = Σ max(x - τ, 0)² - 1`
/// from `τ = max(x) - 1` rise monotonically towards the root; after each, the closed form
/// `τ_C = mean_C - sqrt((1 - ss_C) / |C|)` on the candidates `C = {x > τ}` is accepted once every
/// candidate lies above it (then `C` is the exact support).
fn entmax15_tau(c: &mut Vec<f64>) -> f64 {
    let mut tau = c.iter().copied().fold(f64::NEG_INFINITY, f64::max) - 1.0;
    for _ in 0..200 {
        c.retain(|&v| v > tau);
        if c.is_empty() {
            break;
        }
        let k = c.len() as f64;
        let mean = c.iter().sum::<f64>() / k;
        let ss: f64 = c.iter().map(|v| (v - mean) * (v - mean)).sum();
        let delta = (1.0 - ss) / k;
        if delta >= 0.0 {
            let closed = mean - delta.sqrt();
            if c.iter().all(|&v| v > closed) {
                return closed;
            }
        }
        let (s1, s2) = c.iter().fold((0.0, 0.0), |(a, b), &v| {
            let t = v - tau;
            (a + t, b + t * t)
        });
        tau += (s2 - 1.0) / (2.0 * s1);
    }
    tau
}

// Transitional: the inherent `validate`/`build` move into this impl with the component
// contract refactor.
impl crate::models::ComponentConfig for TabNetConfig {
    type Component = TabNet;
    const NAME: &'static str = "tab_net";
    fn validate(&self) -> Result<()> {
        TabNetConfig::validate(self)
    }
    fn build(&self, path: &nn::Path) -> Result<TabNet> {
        TabNetConfig::build(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::testing::meta;
    use tch::Device;

    fn t(rows: &[&[f64]]) -> Tensor {
        let d = rows[0].len() as i64;
        let flat: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, d])
    }

    fn close(a: &Tensor, b: &Tensor, tol: f64) -> bool {
        let diff = (a - b).abs().max().double_value(&[]);
        if diff > tol {
            eprintln!("{a} vs {b}");
        }
        diff <= tol
    }

    #[test]
    fn sparsemax_by_hand() {
        // [1, 0.5, -1]: support {1, 0.5}, τ = (1.5 - 1) / 2 = 0.25 → [0.75, 0.25, 0].
        // [0, 0, 0]: uniform. [3, 0, 0]: τ = 2 → [1, 0, 0]. [0.1, 0.2, 0.3, 0.4]: all in the
        // support, τ = (1 - 1) / 4 = 0 → the input itself.
        let z = t(&[
            &[1.0, 0.5, -1.0, -2.0],
            &[0.0, 0.0, 0.0, 0.0],
            &[3.0, 0.0, 0.0, -1.0],
            &[0.1, 0.2, 0.3, 0.4],
        ]);
        let expected = t(&[
            &[0.75, 0.25, 0.0, 0.0],
            &[0.25, 0.25, 0.25, 0.25],
            &[1.0, 0.0, 0.0, 0.0],
            &[0.1, 0.2, 0.3, 0.4],
        ]);
        assert!(close(&sparsemax(&z), &expected, 1e-12));
        // Shift invariance and f32.
        let shifted = sparsemax(&(z.to_kind(Kind::Float) + 100.0));
        assert!(close(&shifted.to_kind(Kind::Double), &expected, 1e-5));
    }

    #[test]
    fn entmax15_by_hand() {
        // [1, 0.5, -1] / 2 = [0.5, 0.25, -0.5]: with support {0.5, 0.25} and t = 0.5 - τ,
        // t² + (t - 0.25)² = 1 → t = (0.5 + sqrt(7.75)) / 4; -0.5 is below τ.
        let tt = (0.5 + 7.75f64.sqrt()) / 4.0;
        let z = t(&[&[1.0, 0.5, -1.0], &[0.0, 0.0, 0.0], &[4.0, 0.0, 0.0]]);
        // [0, 0, 0]: 3 (0 - τ)² = 1 → 1/3 each. [4, 0, 0] / 2 = [2, 0, 0]: τ = 1 → [1, 0, 0].
        let third = 1.0 / 3.0;
        let expected = t(&[
            &[tt * tt, (tt - 0.25) * (tt - 0.25), 0.0],
            &[third, third, third],
            &[1.0, 0.0, 0.0],
        ]);
        assert!(close(&entmax15(&z), &expected, 1e-12));
    }

    #[test]
    fn cpu_and_tensor_supports_agree() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        for kind in [Kind::Float, Kind::Double] {
            for scale in [0.1, 1.0, 5.0] {
                let z = Tensor::randn([200, 37], (kind, Device::Cpu)) * scale;
                let tau = cpu_thresholds(&z, 1.0, sparsemax_tau).unwrap();
                assert!(
                    z.gt_tensor(&tau).equal(&sparsemax_support(&z)),
                    "{kind:?} {scale}"
                );
                let x = &z / 2.0;
                let tau = cpu_thresholds(&z, 0.5, entmax15_tau).unwrap();
                let diff = x
                    .gt_tensor(&tau)
                    .logical_xor(&entmax15_support(&x))
                    .sum(Kind::Int64)
                    .int64_value(&[]);
                // The tensor path stops within a tolerance; at most a boundary entry differs.
                assert!(diff <= 2, "{kind:?} {scale}: {diff}");
            }
        }
    }

    #[test]
    fn masks_are_distributions_for_random_rows() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let z = Tensor::randn([64, 9], (Kind::Double, Device::Cpu)) * 3.0;
        for m in [sparsemax(&z), entmax15(&z)] {
            assert!(m.min().double_value(&[]) >= 0.0);
            let sums = m.sum_dim_intlist(1, false, Kind::Double);
            assert!(close(
                &sums,
                &Tensor::ones([64], (Kind::Double, Device::Cpu)),
                1e-9
            ));
        }
        // sparsemax is sparse: at 3σ logits most rows drop some entries.
        let zeros = sparsemax(&z).eq(0.0).sum(Kind::Int64).int64_value(&[]);
        assert!(zeros > 64, "{zeros}");
    }

    /// Jacobian of `f` at `z` (one row) by central differences.
    fn numeric_jacobian(f: fn(&Tensor) -> Tensor, z: &[f64]) -> Vec<Vec<f64>> {
        let h = 1e-6;
        (0..z.len())
            .map(|j| {
                let mut plus = z.to_vec();
                let mut minus = z.to_vec();
                plus[j] += h;
                minus[j] -= h;
                let fp = Vec::<f64>::try_from(f(&t(&[&plus])).view([-1])).unwrap();
                let fm = Vec::<f64>::try_from(f(&t(&[&minus])).view([-1])).unwrap();
                fp.iter()
                    .zip(fm)
                    .map(|(a, b)| (a - b) / (2.0 * h))
                    .collect()
            })
            .collect()
    }

    fn autograd_jacobian(f: fn(&Tensor) -> Tensor, z: &[f64]) -> Vec<Vec<f64>> {
        (0..z.len())
            .map(|j| {
                let x = t(&[z]).set_requires_grad(true);
                let y = f(&x);
                let w = Tensor::zeros([1, z.len() as i64], (Kind::Double, Device::Cpu));
                let _ = w.get(0).get(j as i64).fill_(1.0);
                (y * w).sum(Kind::Double).backward();
                Vec::<f64>::try_from(x.grad().view([-1])).unwrap() // d y_j / d z_i over i
            })
            .collect()
    }

    #[test]
    fn gradients_match_finite_differences() {
        for z in [
            vec![1.0, 0.5, -1.0, 0.2],
            vec![0.3, 0.1, 0.25, -0.4],
            vec![2.0, -1.0, 1.7, 1.5],
        ] {
            for f in [sparsemax as fn(&Tensor) -> Tensor, entmax15] {
                let num = numeric_jacobian(f, &z); // num[i][j] = d y_j / d z_i
                let auto = autograd_jacobian(f, &z); // auto[j][i] = d y_j / d z_i
                for (i, row) in num.iter().enumerate() {
                    for (j, v) in row.iter().enumerate() {
                        assert!(
                            (v - auto[j][i]).abs() < 1e-5,
                            "{z:?}: d y{j}/d z{i}: numeric {v}, autograd {}",
                            auto[j][i]
                        );
                    }
                }
            }
        }
        // sparsemax's Jacobian is diag(s) - s sᵀ / |S|: for [1, 0.5, -1] (|S| = 2) the block on
        // the support is [[0.5, -0.5], [-0.5, 0.5]], zero elsewhere.
        let auto = autograd_jacobian(sparsemax, &[1.0, 0.5, -1.0]);
        let expected = [[0.5, -0.5, 0.0], [-0.5, 0.5, 0.0], [0.0, 0.0, 0.0]];
        for (a, e) in auto.iter().zip(expected) {
            for (x, y) in a.iter().zip(e) {
                assert!((x - y).abs() < 1e-12, "{auto:?}");
            }
        }
    }

    fn input(n: i64) -> ModelInput {
        let cat = Tensor::randint(3, [n, 2], (Kind::Int64, Device::Cpu));
        ModelInput {
            cat: Some(cat),
            cont: Some(Tensor::randn([n, 2], (Kind::Float, Device::Cpu))),
            ..Default::default()
        }
    }

    #[test]
    fn forward_shapes_for_several_configs() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let base = TabNetConfig::from_meta(&meta());
        let cases = [
            base.clone(),
            base.clone()
                .n_steps(1)
                .step_dim(4)
                .attn_dim(2)
                .mask_type(MaskType::Entmax15),
            base.clone()
                .n_glu_shared(0)
                .n_glu_step_dependent(1)
                .ghost_bn(false),
            base.clone()
                .n_glu_shared(3)
                .n_glu_step_dependent(0)
                .virtual_batch_size(7),
            base.clone()
                .dropout(0.2)
                .embed_dropout(0.1)
                .cont_norm(ContNorm::BatchNorm)
                .gamma(1.0),
        ];
        for cfg in cases {
            let vs = nn::VarStore::new(Device::Cpu);
            let m = cfg.build(&vs.root()).unwrap();
            let x = input(20);
            m.check_input(&x).unwrap();
            for train in [true, false] {
                let (y, aux) = m.forward_aux(&x, train);
                assert_eq!(y.size(), [20, cfg.step_dim], "{cfg:?}");
                assert!(aux.unwrap().double_value(&[]) >= 0.0);
                let masks = m.last_masks().unwrap();
                assert_eq!(masks.len(), cfg.n_steps);
                for mask in masks {
                    assert_eq!(mask.size(), [20, 4]);
                    let sums = mask.sum_dim_intlist(1, false, Kind::Float);
                    assert!(close(&sums, &sums.ones_like(), 1e-5));
                }
            }
            assert_eq!(m.output_dim(), cfg.step_dim);
            assert_eq!(m.attention_weights().unwrap().len(), cfg.n_steps);
        }
    }

    #[test]
    fn ghost_batch_norm_uses_chunk_statistics() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let bn = GhostBatchNorm::new(&vs.root(), 2, 0.1, Some(4));
        // 10 rows, chunks of ceil(10 / 3) = 4: rows 0..4, 4..8, 8..10, each standardised alone.
        let x = Tensor::randn([10, 2], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
        let y = bn.forward_t(&x, true);
        let mut rm = Tensor::zeros([2], (Kind::Float, Device::Cpu));
        let mut rv = Tensor::ones([2], (Kind::Float, Device::Cpu));
        for (start, len) in [(0, 4), (4, 4), (8, 2)] {
            let c = x.narrow(0, start, len);
            let mean = c.mean_dim(0, true, Kind::Float);
            let var = c.var_dim(0, false, true);
            let expected = (&c - &mean) / (var + 1e-5).sqrt();
            assert!(close(&y.narrow(0, start, len), &expected, 1e-4));
            rm = rm * 0.9 + mean.view([2]) * 0.1;
            rv = rv * 0.9 + c.var_dim(0, true, false) * 0.1;
        }
        assert!(close(&bn.running_mean, &rm, 1e-5));
        assert!(close(&bn.running_var, &rv, 1e-5));
        // Evaluation: running statistics, no chunking.
        let e = bn.forward_t(&x, false);
        assert!(close(&e, &((&x - &rm) / (&rv + 1e-5).sqrt()), 1e-4));
    }

    #[test]
    fn sparsity_loss_is_the_weighted_mask_entropy() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let m = TabNetConfig::from_meta(&meta())
            .lambda_sparse(0.5)
            .build(&vs.root())
            .unwrap();
        let x = input(16);
        let (_, aux) = m.forward_aux(&x, false);
        let masks: Vec<Tensor> = m
            .last_masks
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| t.shallow_clone())
            .collect();
        let entropy: f64 = masks
            .iter()
            .map(|mk| {
                (-(mk * (mk + 1e-15).log()).sum_dim_intlist(1, false, Kind::Float))
                    .mean(Kind::Float)
                    .double_value(&[])
            })
            .sum::<f64>()
            / 3.0;
        let aux = aux.unwrap().double_value(&[]);
        assert!((aux - 0.5 * entropy).abs() < 1e-5, "{aux} vs {entropy}");
        assert!(aux > 0.0);
        // lambda 0: no auxiliary loss.
        let vs = nn::VarStore::new(Device::Cpu);
        let m0 = TabNetConfig::from_meta(&meta())
            .lambda_sparse(0.0)
            .build(&vs.root())
            .unwrap();
        assert!(m0.forward_aux(&x, true).1.is_none());
    }

    #[test]
    fn importance_sums_to_one_and_explain_matches() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let m = TabNetConfig::from_meta(&meta()).build(&vs.root()).unwrap();
        let x = input(50);
        let imp = m.feature_importance(&x).unwrap().unwrap();
        assert_eq!(imp.len(), 4);
        assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(imp.iter().all(|&v| v >= 0.0));
        let (rows, masks) = m.explain(&x).unwrap();
        assert_eq!(rows.size(), [50, 4]);
        assert_eq!(masks.len(), 3);
        // The global importance is the normalised column sum of the unnormalised per-row
        // aggregate; rebuild it from the masks and decision outputs by hand.
        let emb = m.embed.forward_t(&x, false);
        let enc = m.encode(&emb, false, false, true);
        let agg = m
            .to_columns(&enc.explain.unwrap())
            .sum_dim_intlist(0, false, Kind::Double);
        let agg = &agg / agg.sum(Kind::Double);
        let expected = Vec::<f64>::try_from(agg).unwrap();
        for (a, b) in imp.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-6, "{imp:?} vs {expected:?}");
        }
        // Embedding dims map back to columns: column a spans 3 dims, b 2, x and y 1 each.
        let raw = &enc.masks[0];
        let cols = m.to_columns(raw);
        let a = raw.narrow(1, 0, 3).sum_dim_intlist(1, false, Kind::Float);
        assert!(close(&cols.select(1, 0), &a, 1e-6));
        assert!(close(&cols.select(1, 3), &raw.select(1, 6), 1e-6));
        let bad = ModelInput {
            cat: Some(Tensor::from_slice(&[9i64, 1]).view([1, 2])),
            cont: Some(Tensor::zeros([1, 2], (Kind::Float, Device::Cpu))),
            ..Default::default()
        };
        assert!(m.feature_importance(&bad).unwrap().is_err());
    }

    #[test]
    fn embed_then_forward_embedded_equals_forward() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let m = TabNetConfig::from_meta(&meta())
            .cont_norm(ContNorm::BatchNorm)
            .mask_type(MaskType::Entmax15)
            .build(&vs.root())
            .unwrap();
        let x = input(8);
        let parts = m.embed(&x).unwrap();
        let shapes: Vec<Vec<i64>> = parts.iter().map(|p| p.size()).collect();
        assert_eq!(shapes, vec![vec![8, 3], vec![8, 2], vec![8, 1], vec![8, 1]]);
        assert_eq!(m.feature_names(), vec!["a", "b", "x", "y"]);
        let direct = m.forward_t(&x, false);
        let split = m.forward_embedded(&parts, false).unwrap();
        assert!(direct.allclose(&split, 1e-6, 1e-6, false));
    }

    #[test]
    fn shared_layers_are_shared() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let _m = TabNetConfig::from_meta(&meta())
            .n_steps(2)
            .build(&vs.root())
            .unwrap();
        let vars = vs.variables();
        // 2 shared linear layers for the splitter and both steps; 2 step-specific per transformer.
        assert_eq!(vars.keys().filter(|k| k.starts_with("shared.")).count(), 2);
        assert_eq!(vars["shared.fc_0.weight"].size(), [32, 7]);
        assert_eq!(vars["shared.fc_1.weight"].size(), [32, 16]);
        assert!(vars.contains_key("step_1.feat.fc_1.weight"));
        assert!(vars.contains_key("splitter.shared_bn_0.running_mean"));
        assert_eq!(vars["step_0.attn_fc.weight"].size(), [7, 8]);
    }

    #[test]
    fn invalid_configs_are_typed_errors_naming_the_field() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let base = TabNetConfig::from_meta(&meta());
        let cases = [
            (base.clone().n_steps(0), "tab_net.n_steps"),
            (base.clone().step_dim(0), "tab_net.step_dim"),
            (base.clone().attn_dim(-1), "tab_net.attn_dim"),
            (
                base.clone().virtual_batch_size(0),
                "tab_net.virtual_batch_size",
            ),
            (base.clone().momentum(0.0), "tab_net.momentum"),
            (base.clone().momentum(1.5), "tab_net.momentum"),
            (base.clone().gamma(0.9), "tab_net.gamma"),
            (base.clone().epsilon(0.0), "tab_net.epsilon"),
            (base.clone().lambda_sparse(-1.0), "tab_net.lambda_sparse"),
            (
                base.clone().lambda_sparse(f64::NAN),
                "tab_net.lambda_sparse",
            ),
            (base.clone().dropout(1.0), "tab_net.dropout"),
            (base.clone().embed_dropout(2.0), "tab_net.embed_dropout"),
            (
                base.clone().n_glu_shared(0).n_glu_step_dependent(0),
                "tab_net.n_glu_shared",
            ),
        ];
        for (cfg, field) in cases {
            match cfg.build(&vs.root()).unwrap_err() {
                WideDeepError::InvalidConfig { field: f, .. } => assert_eq!(f, field),
                e => panic!("{e}"),
            }
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let cfg = TabNetConfig::from_meta(&meta()).mask_type(MaskType::Entmax15);
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<TabNetConfig>(&json).unwrap(), cfg);
        let old: TabNetConfig =
            serde_json::from_str(r#"{"cont_cols": ["x"], "mask_type": "entmax"}"#).unwrap();
        assert_eq!(old.mask_type, MaskType::Entmax15);
        assert_eq!(old.n_steps, 3);
    }
}
