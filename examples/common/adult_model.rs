//! The demo's model (`examples/adult.rs`): Wide + TabMlp with batch-normalised continuous
//! columns and a 64-32 MLP, seed 1. The optimizer and prefetch benchmarks measure this same
//! model and include this file with `#[path]`.
#![allow(dead_code)]

use widedeep::prelude::*;

/// The Wide + TabMlp configuration for the fitted `prep` (wide and tabular preprocessors).
pub fn wide_tabmlp(prep: &Preprocessors) -> widedeep::Result<WideDeepConfig> {
    Ok(WideDeepConfig::new()
        .wide(WideConfig::new(prep.wide_dim()?))
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta()?)
                .cont_norm(ContNorm::BatchNorm)
                .mlp(MlpConfig::default().hidden_dims([64, 32]).dropout(0.1)),
        )
        .seed(1))
}
