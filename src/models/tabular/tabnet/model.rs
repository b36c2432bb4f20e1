//! The TabNet model: the encoder's decision steps, the masks it keeps, and its explanations.
use super::attentive::AttentiveTransformer;
use super::glu::FeatTransformer;
use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::models::tabular::embeddings::{tab_embedding_methods, TabEmbeddings};
use crate::models::tabular::tab_resnet::bn_t;
use crate::models::{Component, ModelInput};
use std::sync::Mutex;
use tch::{nn, Kind, Tensor};

/// One decision step: its attentive transformer (the mask) and its feature transformer.
#[derive(Debug)]
pub(super) struct Step {
    pub(super) attentive: AttentiveTransformer,
    pub(super) feat: FeatTransformer,
}

/// What one encoder pass returns besides the output.
pub(crate) struct Encoded {
    /// `Σ_i ReLU(d[i])`, `[batch, step_dim]`.
    out: Tensor,
    /// Mean over steps of the masks' mean negative entropy `Σ_j M log(M + ε)` (≤ 0), a scalar.
    m_loss: Option<Tensor>,
    /// Each step's decision output `ReLU(d[i])`, `[batch, step_dim]` each.
    pub(crate) steps: Vec<Tensor>,
    /// Per-step masks over the embedded input, `[batch, input_dim]` each.
    pub(super) masks: Vec<Tensor>,
    /// `Σ_i M[i] · Σ_k ReLU(d[i])_k`, `[batch, input_dim]`.
    pub(super) explain: Option<Tensor>,
}

/// TabNet: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, step_dim]`.
///
/// The masks of the most recent forward pass are kept: [`TabNet::last_masks`] (and
/// [`Component::attention_weights`]) return them per step, summed over each column's embedding
/// dimensions, `[batch, n_columns]` (rows sum to 1).
#[derive(Debug)]
pub struct TabNet {
    pub(crate) embed: TabEmbeddings,
    /// Batch norm of the embedded input.
    pub(super) initial_bn: nn::BatchNorm,
    /// The feature transformer before the first step (its attention features start the masks).
    pub(super) splitter: FeatTransformer,
    pub(super) steps: Vec<Step>,
    pub(super) step_dim: i64,
    pub(super) attn_dim: i64,
    pub(super) gamma: f64,
    pub(super) epsilon: f64,
    pub(super) lambda_sparse: f64,
    /// Embedding width of each input column, in [`Component::feature_names`] order.
    pub(super) widths: Vec<i64>,
    /// The per-step masks of the most recent forward pass, `[batch, input_dim]` each.
    pub(super) last_masks: Mutex<Option<Vec<Tensor>>>,
}

impl TabNet {
    /// The decision steps over the combined embeddings `x` `[batch, input_dim]`, starting from
    /// the prior `prior0` (`None`: ones; the encoder–decoder pretraining passes `1 - mask`);
    /// the sparsity loss and the explanation aggregate are computed only when asked.
    pub(crate) fn encode(
        &self,
        x: &Tensor,
        prior0: Option<&Tensor>,
        train: bool,
        with_loss: bool,
        with_explain: bool,
    ) -> Encoded {
        let x = bn_t(&self.initial_bn, x, train);
        let n_steps = self.steps.len();
        // The prior starts as ones (then the first step skips multiplying by it) or `prior0`.
        let mut prior: Option<Tensor> = prior0.map(Tensor::shallow_clone);
        let mut attn = self
            .splitter
            .forward_t(&x, train)
            .narrow(1, self.step_dim, self.attn_dim);
        let mut out: Option<Tensor> = None;
        let mut neg_entropy: Option<Tensor> = None;
        let mut explain: Option<Tensor> = None;
        let mut masks = Vec::with_capacity(n_steps);
        let mut steps = Vec::with_capacity(n_steps);
        for (i, step) in self.steps.iter().enumerate() {
            let last = i + 1 == n_steps;
            let m = step.attentive.mask(&attn, prior.as_ref(), train);
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
                Some(o) => o + &d,
                None => d.shallow_clone(),
            });
            steps.push(d);
        }
        let rows = x.size()[0].max(1) as f64;
        Encoded {
            out: out.expect("n_steps ≥ 1"),
            m_loss: neg_entropy.map(|l| l / (rows * n_steps as f64)),
            steps,
            masks,
            explain,
        }
    }

    /// The output from the combined embeddings `[batch, input_dim]`, keeping the masks.
    fn forward_combined(&self, emb: &Tensor, train: bool) -> Tensor {
        self.run(emb, train, false).0
    }

    /// Forward from the combined embeddings, keeping the masks; returns the output and the
    /// weighted sparsity loss when asked.
    fn run(&self, emb: &Tensor, train: bool, with_loss: bool) -> (Tensor, Option<Tensor>) {
        let enc = self.encode(emb, None, train, with_loss, false);
        *self.last_masks.lock().unwrap_or_else(|e| e.into_inner()) = Some(enc.masks);
        let aux = enc.m_loss.map(|l| l * -self.lambda_sparse);
        (enc.out, aux)
    }

    /// Sums the embedding dimensions of each column: `[batch, input_dim]` → `[batch, n_columns]`.
    pub(super) fn to_columns(&self, t: &Tensor) -> Tensor {
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

    /// The feature masks of the most recent forward pass, one per step (summed over each
    /// column's embedding dimensions, in [`Component::feature_names`] order; rows sum to 1).
    /// `None` before the first forward.
    ///
    /// # Shapes
    /// - returns one `[batch, n_columns]` tensor per step
    pub fn last_masks(&self) -> Option<Vec<Tensor>> {
        let guard = self.last_masks.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .map(|ms| ms.iter().map(|m| self.to_columns(m)).collect())
    }

    /// Per-row explanation in evaluation mode, without gradients: the aggregated masks
    /// `Σ_i M[i] · Σ_k ReLU(d[i])_k` per column, normalised to sum 1 per row (a row with no
    /// decision contribution stays 0), and the per-step masks. Does not replace
    /// [`TabNet::last_masks`].
    ///
    /// # Shapes
    /// - `input.cat`: `[batch, n_cat]` i64, `input.cont`: `[batch, n_cont]` f32
    /// - returns the aggregate `[batch, n_columns]` and one mask `[batch, n_columns]` per step
    pub fn explain(&self, input: &ModelInput) -> Result<(Tensor, Vec<Tensor>)> {
        self.embed.check_input(input)?;
        let enc = tch::no_grad(|| {
            self.encode(
                &self.embed.forward_t(input, false),
                None,
                false,
                false,
                true,
            )
        });
        let agg = self.to_columns(&enc.explain.expect("asked for"));
        let total = agg.sum_dim_intlist(1, true, Kind::Float);
        let norm = agg / total.clamp_min(f64::MIN_POSITIVE);
        let masks = enc.masks.iter().map(|m| self.to_columns(m)).collect();
        Ok((norm, masks))
    }

    /// [`Component::feature_importance`] over `input`, in chunks of 4096 rows.
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
                let enc = self.encode(
                    &self.embed.forward_t(&part, false),
                    None,
                    false,
                    false,
                    true,
                );
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
        let Some(total) = total else {
            bail!(missing(), "feature importance needs at least one row");
        };
        let values = Vec::<f64>::try_from(total.to_device(tch::Device::Cpu))?;
        let sum: f64 = values.iter().sum();
        ensure!(
            sum > 0.0 && sum.is_finite(),
            missing(),
            "TabNet's decision steps gave no contribution on these rows, so feature \
             importance is undefined"
        );
        Ok(values.into_iter().map(|v| v / sum).collect())
    }
}

impl Component for TabNet {
    tab_embedding_methods!();

    fn forward_aux(&self, input: &ModelInput, train: bool) -> (Tensor, Option<Tensor>) {
        let with_loss = self.lambda_sparse > 0.0;
        self.run(&self.embed.forward_t(input, train), train, with_loss)
    }

    fn output_dim(&self) -> i64 {
        self.step_dim
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
}
