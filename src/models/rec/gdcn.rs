//! GDCN, the Gated Deep & Cross Network (Wang et al. 2023, "Towards Deeper, Lighter and
//! Interpretable Cross Network for CTR Prediction"): cross layers whose cross term is scaled by
//! a learned information gate, stacked under or beside a deep MLP.
use super::cross::{
    build_cross_deep, check_cross_deep, cross_model, CrossDeep, GatedCross, Structure,
};
use crate::error::Result;
use crate::macros::setters;
use crate::models::tabular::embeddings::{TabColumns, TabEmbedConfig};
use crate::models::{ComponentConfig, ContNorm, MlpConfig};
use serde::{Deserialize, Serialize};
use tch::nn;
use widedeep_preprocessing::CatColumnMeta;

/// Configuration of [`Gdcn`], pytorch-widedeep 1.7.0's `GatedDeepCrossNetwork`:
/// `num_cross_layers` 3, `structure` parallel, the MLP `[200, 100]` (ReLU, dropout 0.1, linear
/// first). Each gated cross layer is `c_{l+1} = c_0 ⊙ (W_c c_l + b) ⊙ σ(W_g c_l) + c_l`. The
/// columns are embedded as in `TabMlp` (one table per categorical column, of its own width;
/// the continuous columns join as their — optionally normalised — values); the reference's
/// continuous-column embeddings (`embed_continuous`) are not offered. Start from
/// [`GdcnConfig::from_meta`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GdcnConfig {
    /// The columns and their embedding options (flattened: `cat_embed`, `cont_cols`,
    /// `embed_dropout`, `cont_norm` at the top of the JSON).
    #[serde(flatten)]
    pub embed: TabEmbedConfig,
    /// Gated cross layers (3), at least 1.
    pub num_cross_layers: i64,
    /// The MLP on the cross network's output (`stacked`) or beside it on the embeddings
    /// (`parallel`, the default).
    pub structure: Structure,
    /// The deep MLP.
    pub mlp: MlpConfig,
}

impl Default for GdcnConfig {
    fn default() -> Self {
        Self {
            embed: TabEmbedConfig::default(),
            num_cross_layers: 3,
            structure: Structure::Parallel,
            mlp: MlpConfig::default(),
        }
    }
}

cross_model!(GdcnConfig, Gdcn);

impl GdcnConfig {
    setters!(num_cross_layers: i64, structure: Structure);
}

impl ComponentConfig for GdcnConfig {
    type Component = Gdcn;
    const NAME: &'static str = "gdcn";

    /// Checks `num_cross_layers`, the MLP (`gdcn.mlp.*`), then the columns.
    fn validate(&self) -> Result<()> {
        let layers = ("num_cross_layers", self.num_cross_layers);
        check_cross_deep(self, layers, &self.mlp, || Ok(()))
    }

    /// Validates, then builds the embeddings (`embed`), the gated cross layers
    /// (`cross/layer_{i}`: `wc`, `wg`, `b`) and the MLP (`mlp`) under `path`.
    fn build(&self, path: &nn::Path) -> Result<Gdcn> {
        self.validate()?;
        let shape = (self.num_cross_layers, &self.mlp, self.structure);
        build_cross_deep(self, path, shape, GatedCross::new).map(Gdcn)
    }
}

/// GDCN: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, output_dim()]`: in parallel,
/// the gated cross network's output `c_L` (`d = Σ embed_dim + n_cont` wide, as the embeddings
/// `c_0`) concatenated with the MLP's output on `c_0` (`d + mlp.hidden_dims.last()`); stacked,
/// the MLP's output on `c_L` (`mlp.hidden_dims.last()`).
#[derive(Debug)]
pub struct Gdcn(pub(crate) CrossDeep<GatedCross>);
