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
//! The options are [`AttnEmbedConfig`] (`config`), the categorical tokens and [`SharedEmbed`]
//! are in `cat`, the continuous tokens and [`ContEmbed`] in `cont`; this module joins them into
//! [`AttnEmbeddings`]. The `TabMlp` embeddings (different width per column) are
//! [`crate::models::tabular::TabEmbeddings`].
mod cat;
mod config;
mod cont;
#[cfg(test)]
mod tests;

pub use cat::SharedEmbed;
pub use config::AttnEmbedConfig;
pub use cont::{quantile_edges, ContEmbed};

use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::models::checks::{check_index_range, check_min};
use crate::models::ModelInput;
use cat::CatTokens;
use cont::{ContTokens, NormLayer};
use tch::{nn, Device, Kind, Tensor};
use widedeep_preprocessing::CatColumnMeta;

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
        check_min(input_dim, 1, format!("{prefix}.input_dim"))?;
        check_has_columns(cat, cont, prefix)?;
        cfg.validate(input_dim, cont.len(), &format!("{prefix}.embed"))?;
        check_cardinalities(cat, prefix)?;
        let device = path.device();
        let d = input_dim;
        let cat_tokens = if cat.is_empty() {
            None
        } else {
            Some(CatTokens::new(&(path / "cat"), cat, d, cfg, prefix)?)
        };
        let n_cont = cont.len() as i64;
        let norm = if n_cont > 0 {
            NormLayer::new(path, cfg.cont_norm, n_cont)
        } else {
            None
        };
        let cont_tokens = if n_cont > 0 && embed_cont {
            Some(ContTokens::new(&(path / "cont"), cfg, n_cont, d, device))
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

    /// The categorical columns (names and cardinalities), in input order.
    pub fn cat_meta(&self) -> &[CatColumnMeta] {
        &self.cat_meta
    }

    /// Number of categorical columns.
    pub fn n_cat(&self) -> i64 {
        self.cat_meta.len() as i64
    }

    /// Number of continuous columns.
    pub fn n_cont(&self) -> i64 {
        self.cont_names.len() as i64
    }

    /// Whether the continuous columns are tokens (else they stay values beside the tokens).
    pub fn embeds_cont(&self) -> bool {
        self.cont.is_some()
    }

    /// Whether a learned `[CLS]` token comes first.
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
    ///
    /// # Shapes
    /// - `input.cat`: `[batch, n_cat]` i64, `input.cont`: `[batch, n_cont]` f32
    /// - returns tokens `[batch, n_tokens(), input_dim]` and, when the continuous columns are
    ///   not embedded, their normalised values `[batch, n_cont]`
    pub fn forward_t(&self, input: &ModelInput, train: bool) -> Embedded {
        let (cat, cont) = self.column_tokens(input, train);
        self.finish(cat, cont, train)
    }

    /// One tensor per input column, in the order of [`AttnEmbeddings::names`], computed in
    /// evaluation mode: each categorical column's token `[batch, input_dim]`, then each
    /// continuous column's token `[batch, input_dim]` (or its raw value `[batch, 1]` when the
    /// continuous columns are not embedded). Dropout and the `[CLS]` token come after, in
    /// [`AttnEmbeddings::combine`].
    ///
    /// # Shapes
    /// - `input.cat`: `[batch, n_cat]` i64, `input.cont`: `[batch, n_cont]` f32
    /// - returns `n_cat + n_cont` tensors `[batch, input_dim]` (or `[batch, 1]`, see above)
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
    ///
    /// # Shapes
    /// - `parts`: as returned by [`AttnEmbeddings::embed`]
    /// - returns what [`AttnEmbeddings::forward_t`] returns
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

    /// Prepends `[CLS]`, applies the token dropouts and joins the tokens.
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

    /// Dropout on tokens `[b, n, d]`: of whole tokens with `full_embed_dropout`.
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
            crate::models::dropout::dropout(&x, p, train)
        }
    }

    /// Checks presence, widths and index ranges of `cat` and `cont`.
    ///
    /// # Shapes
    /// - `input.cat`: `[batch, n_cat]` i64, `input.cont`: `[batch, n_cont]` f32
    pub fn check_input(&self, input: &ModelInput) -> Result<()> {
        check_tab_input(input, &self.cat_meta, self.cont_names.len())
    }
}

/// The device of the continuous values (CPU without them).
fn values_device(v: &Option<Tensor>) -> Device {
    v.as_ref().map(|t| t.device()).unwrap_or(Device::Cpu)
}

/// Checks that there is at least one column; the error names `prefix`.
pub(crate) fn check_has_columns(
    cat: &[CatColumnMeta],
    cont: &[String],
    prefix: &str,
) -> Result<()> {
    ensure!(
        !cat.is_empty() || !cont.is_empty(),
        config(prefix),
        "needs at least one categorical or continuous column"
    );
    Ok(())
}

/// Checks that every categorical column has a value besides the reserved index 0; the error
/// names `{prefix}.cat_embed[column]`.
pub(crate) fn check_cardinalities(cat: &[CatColumnMeta], prefix: &str) -> Result<()> {
    for c in cat {
        ensure!(
            c.cardinality >= 2,
            config(format!("{prefix}.cat_embed[{}]", c.name)),
            "cardinality must be ≥ 2 (index 0 + values), got {}",
            c.cardinality
        );
    }
    Ok(())
}

/// Checks that `input` has i64 indices within each column's range and f32 values.
///
/// # Shapes
/// - `input.cat`: `[batch, cat.len()]` i64, `input.cont`: `[batch, n_cont]` f32
pub(crate) fn check_tab_input(
    input: &ModelInput,
    cat: &[CatColumnMeta],
    n_cont: usize,
) -> Result<()> {
    if !cat.is_empty() {
        let Some(t) = input.cat.as_ref() else {
            bail!(input("cat"), "no categorical input");
        };
        let size = t.size();
        ensure!(
            size.len() == 2 && size[1] == cat.len() as i64,
            input("cat"),
            "expected [batch, {}], got {size:?}",
            cat.len()
        );
        for (i, c) in cat.iter().enumerate() {
            check_index_range(&t.select(1, i as i64), &c.name, c.cardinality as i64 - 1)?;
        }
    }
    if n_cont > 0 {
        let Some(t) = input.cont.as_ref() else {
            bail!(input("cont"), "no continuous input");
        };
        let size = t.size();
        ensure!(
            size.len() == 2 && size[1] == n_cont as i64,
            input("cont"),
            "expected [batch, {n_cont}], got {size:?}"
        );
        ensure!(
            t.kind() == Kind::Float,
            input("cont"),
            "expected f32 values, got {:?}",
            t.kind()
        );
    }
    Ok(())
}
