//! The body of the attention models whose blocks map the column tokens to tokens
//! (TabTransformer, FT-Transformer, TabFastFormer, ContextAttentionMlp, SelfAttentionMlp):
//! the embeddings, the blocks applied in turn, the pooling of the tokens, the MLP on top, and
//! the column importance from the attention each token receives. Each model is a newtype over
//! a [`TokenModel`] that forwards [`Component`] to it ([`token_model_component!`]).
use super::block::{run_blocks, TokenMixer};
use super::embeddings::{AttnEmbeddings, Embedded};
use super::importance::{
    apply_top_mlp, attention_component_methods, importance_over_rows, key_mass, pool_tokens,
    tokens_to_columns, AttentionStore,
};
use crate::error::Result;
use crate::models::{Component, Mlp, ModelInput};
use tch::Tensor;

/// Implements [`Component`] for a newtype over a [`TokenModel`] (`struct Model(TokenModel<B>)`)
/// by forwarding every method to it; `token_model_component!(Model, encoder)` implements
/// [`TokenEncoder`](super::TokenEncoder) too.
macro_rules! token_model_component {
    ($model:ident) => {
        impl $crate::models::Component for $model {
            fn forward_t(&self, input: &$crate::models::ModelInput, train: bool) -> ::tch::Tensor {
                self.0.forward_t(input, train)
            }

            fn output_dim(&self) -> i64 {
                self.0.output_dim()
            }

            fn check_input(&self, input: &$crate::models::ModelInput) -> $crate::Result<()> {
                self.0.check_input(input)
            }

            fn forward_aux(
                &self,
                input: &$crate::models::ModelInput,
                train: bool,
            ) -> (::tch::Tensor, Option<::tch::Tensor>) {
                self.0.forward_aux(input, train)
            }

            fn attention_weights(&self) -> Option<Vec<::tch::Tensor>> {
                self.0.attention_weights()
            }

            fn feature_importance(
                &self,
                input: &$crate::models::ModelInput,
            ) -> Option<$crate::Result<Vec<f64>>> {
                self.0.feature_importance(input)
            }

            fn feature_names(&self) -> Vec<String> {
                self.0.feature_names()
            }

            fn embed(&self, input: &$crate::models::ModelInput) -> Option<Vec<::tch::Tensor>> {
                self.0.embed(input)
            }

            fn forward_embedded(
                &self,
                parts: &[::tch::Tensor],
                train: bool,
            ) -> Option<::tch::Tensor> {
                self.0.forward_embedded(parts, train)
            }
        }
    };
    // ... and `TokenEncoder` (the newtype's field is a `TokenModel`)
    ($model:ident, encoder) => {
        $crate::models::tabular::attention::token_model_component!($model);

        impl $crate::models::tabular::attention::TokenEncoder for $model {
            fn embeddings(&self) -> &$crate::models::tabular::attention::AttnEmbeddings {
                self.0.embeddings()
            }

            fn encode_tokens(&self, tokens: ::tch::Tensor, train: bool) -> ::tch::Tensor {
                self.0.encode_tokens(tokens, train)
            }
        }
    };
}
pub(crate) use token_model_component;

/// A block of a [`TokenModel`].
pub(crate) trait TokenBlock: TokenMixer + Send {
    /// For a block whose attention reads compressed keys (Linformer): how the attention on each
    /// of the `k` keys is shared among the tokens (columns sum to 1). `None` (the default) when
    /// the keys are the tokens.
    ///
    /// # Shapes
    /// - returns `[n_tokens, k]` f64 on the CPU
    fn key_map(&self) -> Option<Tensor> {
        None
    }
}

/// Embeddings, blocks applied in turn, pooling (the `[CLS]` token or all tokens flattened,
/// then the continuous values the embeddings keep beside the tokens) and the optional MLP on
/// top. [`Component::attention_weights`]: one tensor per block application;
/// [`Component::feature_importance`]: the attention each column's token receives, summed over
/// the applications (through [`TokenBlock::key_map`] for compressed keys).
#[derive(Debug)]
pub(crate) struct TokenModel<B> {
    embed: AttnEmbeddings,
    blocks: Vec<B>,
    /// Block applications per forward pass: `blocks.len()`, or more when all applications
    /// share the weights of one block.
    n_applied: usize,
    mlp: Option<Mlp>,
    output_dim: i64,
    attention: AttentionStore,
}

impl<B: TokenBlock> TokenModel<B> {
    /// The model from its parts: `n_applied ≥ blocks.len() ≥ 1` block applications (the last
    /// block repeats), and the MLP on top with the output width ([`super::build_top_mlp`]).
    pub fn new(
        embed: AttnEmbeddings,
        blocks: Vec<B>,
        n_applied: usize,
        (mlp, output_dim): (Option<Mlp>, i64),
    ) -> Self {
        Self {
            embed,
            blocks,
            n_applied,
            mlp,
            output_dim,
            attention: AttentionStore::default(),
        }
    }

    /// The token embeddings.
    pub fn embeddings(&self) -> &AttnEmbeddings {
        &self.embed
    }

    /// The blocks over the tokens, without pooling, MLP or stored attention weights.
    ///
    /// # Shapes
    /// - `tokens`: `[batch, n_tokens, input_dim]`; returns the same shape
    pub fn encode_tokens(&self, tokens: Tensor, train: bool) -> Tensor {
        run_blocks(self.applied(), tokens, train).0
    }

    /// The blocks in the order they are applied.
    fn applied(&self) -> impl Iterator<Item = &B> {
        let last = self.blocks.len() - 1;
        (0..self.n_applied).map(move |i| &self.blocks[i.min(last)])
    }

    /// The forward pass after the embeddings.
    ///
    /// # Shapes
    /// - `e.tokens`: `[batch, n_tokens, input_dim]`, `e.cont`: `[batch, n_cont]`
    /// - returns `[batch, output_dim]`
    fn forward_embedded_inner(&self, e: Embedded, train: bool) -> Tensor {
        let (x, weights) = run_blocks(self.applied(), e.tokens, train);
        self.attention.set(weights);
        let mut out = pool_tokens(&x, self.embed.has_cls());
        if let Some(c) = e.cont {
            out = Tensor::cat(&[out, c], 1);
        }
        apply_top_mlp(self.mlp.as_ref(), out, train)
    }
}

impl<B: TokenBlock> Component for TokenModel<B> {
    attention_component_methods!();

    fn feature_importance(&self, input: &ModelInput) -> Option<Result<Vec<f64>>> {
        let n = self.feature_names().len();
        let cls = self.embed.has_cls();
        let maps: Vec<Option<Tensor>> = tch::no_grad(|| self.applied().map(B::key_map).collect());
        Some(importance_over_rows(
            self,
            input,
            self.embed.device(),
            n,
            |ws| {
                let mass = ws
                    .iter()
                    .zip(&maps)
                    .map(|(w, map)| {
                        let m = key_mass(w);
                        match map {
                            // [n_tokens, k] · [k] → [n_tokens]
                            Some(map) => map.mv(&m),
                            None => m,
                        }
                    })
                    .reduce(|a, b| a + b)
                    .expect("blocks");
                tokens_to_columns(&mass, cls, n)
            },
        ))
    }
}
