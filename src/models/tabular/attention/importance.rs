//! What the attention models do after their blocks: keep the attention weights of the last
//! forward pass ([`AttentionStore`]), pool the tokens into the output ([`pool_tokens`]), turn
//! attention weights into global column importances ([`importance_over_rows`]), and the
//! `Component` methods every attention model shares ([`attention_component_methods!`]).
use crate::error::Result;
use crate::macros::ensure;
use crate::models::{Component, Mlp, ModelInput};
use std::sync::Mutex;
use tch::{Kind, Tensor};

/// The `Component` methods every attention model shares, for models with the fields `embed`
/// (`AttnEmbeddings`), `output_dim` and `attention` (`AttentionStore`) and a method
/// `forward_embedded_inner(Embedded, train)`: the forward pass through the embeddings, the input
/// check, the stored attention weights and the embedding-layer split. Each model writes its own
/// `feature_importance`, or has it written by the second arm.
macro_rules! attention_component_methods {
    () => {
        fn forward_t(&self, input: &$crate::models::ModelInput, train: bool) -> ::tch::Tensor {
            self.forward_embedded_inner(self.embed.forward_t(input, train), train)
        }

        fn output_dim(&self) -> i64 {
            self.output_dim
        }

        fn check_input(&self, input: &$crate::models::ModelInput) -> $crate::Result<()> {
            self.embed.check_input(input)
        }

        fn attention_weights(&self) -> Option<Vec<::tch::Tensor>> {
            self.attention.get()
        }

        fn feature_names(&self) -> Vec<String> {
            self.embed.names()
        }

        fn embed(&self, input: &$crate::models::ModelInput) -> Option<Vec<::tch::Tensor>> {
            Some(self.embed.embed(input))
        }

        fn forward_embedded(&self, parts: &[::tch::Tensor], train: bool) -> Option<::tch::Tensor> {
            Some(self.forward_embedded_inner(self.embed.combine(parts, train), train))
        }
    };
    // ... plus a feature importance averaged over the rows: `$body` maps the attention weights
    // of a chunk of rows (`$ws`) to per-column mass, given the model (`$this`), whether tokens
    // start with `[CLS]` (`$cls`) and the number of columns (`$n`)
    (importance: |$this:ident, $ws:ident, $cls:ident, $n:ident| $body:expr) => {
        $crate::models::tabular::attention::attention_component_methods!();

        fn feature_importance(
            &self,
            input: &$crate::models::ModelInput,
        ) -> Option<$crate::Result<Vec<f64>>> {
            let $n = self.feature_names().len();
            let $cls = self.embed.has_cls();
            let $this = self;
            Some($crate::models::tabular::attention::importance_over_rows(
                self,
                input,
                self.embed.device(),
                $n,
                |$ws| $body,
            ))
        }
    };
}
pub(crate) use attention_component_methods;

/// The attention weights of the most recent forward pass, behind a lock (forward takes `&self`).
#[derive(Debug, Default)]
pub(crate) struct AttentionStore(Mutex<Vec<Tensor>>);

impl AttentionStore {
    /// Stores (detached) `weights`, replacing the previous ones.
    ///
    /// # Shapes
    /// - `weights`: one tensor per block (shapes documented by each model)
    pub fn set(&self, weights: Vec<Tensor>) {
        let weights = weights.into_iter().map(|w| w.detach()).collect();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = weights;
    }

    /// Shallow copies of the stored weights; `None` before the first forward pass.
    ///
    /// # Shapes
    /// - returns the tensors given to [`AttentionStore::set`]
    pub fn get(&self) -> Option<Vec<Tensor>> {
        let w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (!w.is_empty()).then(|| w.iter().map(|t| t.shallow_clone()).collect())
    }
}

/// Width of [`pool_tokens`]' output: the `[CLS]` token, or all `n_tokens` tokens flattened.
pub(crate) fn pooled_width(cls: bool, n_tokens: i64, d: i64) -> i64 {
    if cls {
        d
    } else {
        n_tokens * d
    }
}

/// The `[CLS]` token when `cls`, else all tokens flattened.
///
/// # Shapes
/// - `x`: `[b, n, d]`
/// - returns `[b, d]` when `cls`, else `[b, n·d]`
pub(crate) fn pool_tokens(x: &Tensor, cls: bool) -> Tensor {
    if cls {
        x.select(1, 0)
    } else {
        x.flatten(1, 2)
    }
}

/// The model's output from its pooled features: through the MLP on top, if any.
///
/// # Shapes
/// - `features`: `[b, f]`
/// - returns `[b, f]`, or `[b, mlp.output_dim()]`
pub(crate) fn apply_top_mlp(mlp: Option<&Mlp>, features: Tensor, train: bool) -> Tensor {
    match mlp {
        Some(m) => m.forward_t(&features, train),
        None => features,
    }
}

/// Attention mass each key token receives, summed over the rows of the batch and averaged over
/// heads and queries.
///
/// # Shapes
/// - `w`: `[b, h, s, l]`, `[b, h, l]` or `[b, l]`
/// - returns `[l]` (f64, CPU)
pub(crate) fn key_mass(w: &Tensor) -> Tensor {
    let w = w.to_kind(Kind::Double);
    let per_row = match w.dim() {
        4 => w.mean_dim(&[1i64, 2][..], false, Kind::Double),
        3 => w.mean_dim(&[1i64][..], false, Kind::Double),
        2 => w,
        n => panic!("attention weights of rank {n}"),
    };
    per_row
        .sum_dim_intlist(0, false, Kind::Double)
        .to_device(tch::Device::Cpu)
}

/// Maps attention mass over tokens (optional `[CLS]` first, then the column tokens) to the
/// input columns: drops `[CLS]` and appends zeros for columns that are not tokens
/// (TabTransformer's non-embedded continuous columns).
///
/// # Shapes
/// - `mass`: `[n_tokens]` f64
/// - returns `[n_columns]` f64
pub(crate) fn tokens_to_columns(mass: &Tensor, has_cls: bool, n_columns: usize) -> Tensor {
    let n = mass.size()[0];
    let cols = mass.narrow(0, has_cls as i64, n - has_cls as i64);
    let missing = n_columns as i64 - cols.size()[0];
    if missing > 0 {
        Tensor::cat(
            &[
                cols,
                Tensor::zeros([missing], (Kind::Double, tch::Device::Cpu)),
            ],
            0,
        )
    } else {
        cols
    }
}

/// Global column importance of `component` over the rows of `input`: runs the forward pass in
/// evaluation mode (no gradients) in chunks of rows moved to `device` (the model's) and sums
/// `per_chunk(weights)` — the attention mass of each input column (`[n_columns]`, in
/// `feature_names()` order) over the chunk's rows — then normalises to sum 1.
///
/// # Shapes
/// - `input`: what `component` reads, `[n_rows, ..]` each
/// - `per_chunk`: the stored attention weights of a chunk → `[n_columns]` f64 on the CPU
/// - returns `n_columns` importances
pub(crate) fn importance_over_rows(
    component: &dyn Component,
    input: &ModelInput,
    device: tch::Device,
    n_columns: usize,
    per_chunk: impl Fn(&[Tensor]) -> Tensor,
) -> Result<Vec<f64>> {
    component.check_input(input)?;
    let n = input.batch_size();
    ensure!(
        n != 0,
        missing(),
        "feature importance needs at least one row"
    );
    const CHUNK: i64 = 1024;
    let mut total = Tensor::zeros([n_columns as i64], (Kind::Double, tch::Device::Cpu));
    tch::no_grad(|| {
        for start in (0..n).step_by(CHUNK as usize) {
            let len = CHUNK.min(n - start);
            let chunk = input.map(|t| t.narrow(0, start, len).to_device(device));
            let _ = component.forward_t(&chunk, false);
            let weights = component
                .attention_weights()
                .expect("attention models store their weights");
            total += per_chunk(&weights);
        }
    });
    let total = Vec::<f64>::try_from(total)?;
    let sum: f64 = total.iter().sum();
    Ok(if sum > 0.0 {
        total.iter().map(|v| v / sum).collect()
    } else {
        vec![1.0 / n_columns as f64; n_columns]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_mass_and_token_mapping() {
        let w = Tensor::from_slice(&[0.5f32, 0.25, 0.25, 0.0, 0.5, 0.5]).view([2, 3]);
        let m = key_mass(&w);
        assert_eq!(Vec::<f64>::try_from(&m).unwrap(), vec![0.5, 0.75, 0.75]);
        let cols = tokens_to_columns(&m, true, 4);
        assert_eq!(
            Vec::<f64>::try_from(&cols).unwrap(),
            vec![0.75, 0.75, 0.0, 0.0]
        );
    }
}
