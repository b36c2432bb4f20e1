//! Feature attributions (SHAP values and integrated gradients) for any
//! [`WideDeep`](crate::models::WideDeep) model, over
//! every input: wide, tabular, text and image columns.
//!
//! An [`Explainer`] holds a model, a [`Background`] (rows standing in for "feature absent",
//! drawn by [`ExplainerConfig::background`]) and the mapping from model inputs to the
//! *features* reported: one per original column. Inputs with the same name form one feature,
//! so `education` fed both to the wide part and to the tabular component gets one value; a
//! crossed wide column (`education-occupation`) is a feature of its own.
//!
//! Methods ([`Method`]):
//! - **Integrated gradients** and **GradientSHAP** (expected gradients) differentiate the model
//!   at the embedding layer of each input ([`crate::models::Component::embed`] /
//!   [`crate::models::Component::forward_embedded`]): a categorical column's embedding, a
//!   continuous column's value, a text column's token embeddings (values per token, summed per
//!   column), an image column's pixels (summed over channels into a grid of regions, then per
//!   column). The wide part enters through its weight rows, so on the logit scale it is exact.
//!   Every deep component must implement `embed`; others need the model-agnostic methods.
//! - **KernelSHAP**, **permutation SHAP** and **exact Shapley values** (≤ 12 players) treat each
//!   feature as one player and call only `WideDeep::forward_t`: "absent" players take their
//!   values from the background rows (interventional SHAP), so they work for any component.
//!
//! Every [`Explanation`] reports its additivity gap (Σ values − (f(x) − base value)): ~0 for the
//! Shapley methods, the quadrature or sampling error for the gradient methods. The explained
//! output is chosen by [`Output`]: the raw output (logits; the default) or probabilities.
//! Work is split into batches of at most [`ExplainerConfig::batch_size`] model rows and
//! [`ExplainerConfig::max_batch_elements`] input elements, so memory stays bounded.
//!
//! ```no_run
//! use widedeep::explain::{Explainer, ExplainerConfig, Method};
//! # fn main() -> widedeep::Result<()> {
//! # let pipeline: widedeep::pipeline::Pipeline = todo!();
//! # let (train_df, test_df): (polars::prelude::DataFrame, polars::prelude::DataFrame) = todo!();
//! let config = ExplainerConfig::new(Method::gradient_shap()).background_size(100);
//! let explainer = Explainer::for_pipeline(&pipeline, &train_df, &config)?;
//! let explanation = explainer.explain_df(&test_df.head(Some(500)))?;
//! for (feature, score) in explanation.global_importance().top(5) {
//!     println!("{feature}: {score:.3}");
//! }
//! widedeep::explain::plots::beeswarm(&explanation, 0, "beeswarm.png", &Default::default())?;
//! # Ok(())
//! # }
//! ```
mod attention;
mod background;
mod config;
mod display;
mod explainer;
mod explanation;
mod features;
mod gradients;
mod output;
pub mod plots;
mod shapley;

pub use background::{Background, BackgroundKind, KMEANS_MAX_ROWS};
pub use config::{ExplainerConfig, FeatureGroup, IgBaseline, Method, Output, MAX_EXACT_PLAYERS};
pub(crate) use display::fmt_num;
pub use explainer::Explainer;
pub use explanation::{Detail, DetailKind, Explanation, GlobalImportance};
pub use features::InputNames;
pub(crate) use features::Slot;

use tch::{Device, Kind, Tensor};

/// What a method returns: values `[n, P, k]`, base values `[n, k]`, details.
pub(crate) struct Attribution {
    pub values: Vec<f64>,
    pub base: Vec<f64>,
    pub details: Vec<Detail>,
}

/// The weighted mean `[k]` of `rows` (`[weights.len(), k]`, row-major).
pub(crate) fn weighted_mean(weights: &[f64], rows: &[f64], k: usize) -> Vec<f64> {
    let mut mean = vec![0.0; k];
    for (m, w) in weights.iter().enumerate() {
        for (o, b) in mean.iter_mut().enumerate() {
            *b += w * rows[m * k + o];
        }
    }
    mean
}

/// A tensor's values converted to `kind` (`T`'s) on the host, row-major (any shape).
pub(crate) fn host_values<T>(t: &Tensor, kind: Kind) -> Option<Vec<T>>
where
    Vec<T>: TryFrom<Tensor>,
{
    let flat = t
        .to_kind(kind)
        .to_device(Device::Cpu)
        .contiguous()
        .view([-1]);
    Vec::<T>::try_from(flat).ok()
}

/// A float tensor's values as `Vec<f64>` (any shape, row-major).
pub(crate) fn to_vec_f64(t: &Tensor) -> Vec<f64> {
    host_values(t, Kind::Double).unwrap_or_default()
}

#[cfg(test)]
mod tests;
