//! TabNet (Arik & Pfister, 2019): sequential attention over the embedded columns with sparse
//! feature masks, as in the reference's `TabNet` (itself after dreamquark-ai's implementation).
//!
//! Per decision step `i`, an attentive transformer turns the previous step's attention features
//! into a mask `M[i] = sparsemax(P[i-1] · BN(FC(a[i-1])))` over the embedded input (or
//! entmax 1.5), the prior is relaxed `P[i] = P[i-1] · (γ - M[i])`, and a feature transformer
//! (GLU layers shared across steps, then step-specific ones) maps `M[i] · x` to the step's
//! decision output `ReLU(d[i])` and the next attention features `a[i]`. The model's output is
//! `Σ_i ReLU(d[i])`.
//!
//! The parts: the configuration ([`TabNetConfig`]), the mask functions ([`sparsemax`],
//! [`entmax15`]), the GLU layers with ghost batch normalisation (the feature transformer), the
//! attentive transformer, and the model ([`TabNet`]).
mod attentive;
mod config;
pub(crate) mod glu;
mod model;
mod sparsemax;
#[cfg(test)]
mod tests;

pub use config::TabNetConfig;
pub use model::TabNet;
pub use sparsemax::{entmax15, sparsemax, MaskType};
