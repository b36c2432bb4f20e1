//! The attention models seen as token encoders: column tokens in, output tokens out, without
//! the pooling and the MLP on top. Contrastive–denoising pretraining
//! (`training::pretrain::contrastive`) trains the embeddings and blocks through this view; the
//! weights are the model's own, so the pretrained model is the `WideDeep` component.
use super::embeddings::AttnEmbeddings;
use crate::error::Result;
use crate::macros::bail;
use crate::models::tabular::TabModelConfig;
use crate::models::{Component, ComponentConfig};
use tch::{nn, Tensor};

/// An attention model split into its column embeddings and its body of blocks.
pub(crate) trait TokenEncoder: Component {
    /// The column embeddings (tokens of width `input_dim`, `[CLS]` first when configured).
    fn embeddings(&self) -> &AttnEmbeddings;

    /// The blocks over the tokens, without pooling or MLP; attention weights are not stored.
    ///
    /// # Shapes
    /// - `tokens`: `[batch, n_tokens, input_dim]`
    /// - returns `[batch, n_out, out_dim]`: the `n_tokens` output tokens (`out_dim = input_dim`)
    ///   or, for TabPerceiver, its latents
    fn encode_tokens(&self, tokens: Tensor, train: bool) -> Tensor;

    /// Whether output token `i` stands for input token `i` (false for TabPerceiver's latents).
    fn outputs_are_tokens(&self) -> bool {
        true
    }

    /// Width of the output tokens.
    fn out_dim(&self) -> i64 {
        self.embeddings().input_dim()
    }
}

/// Builds the model of `config` under `path` as a [`TokenEncoder`]: TabTransformer (with
/// `embed_continuous` when it has continuous columns), SAINT, FT-Transformer, TabFastFormer,
/// ContextAttentionMlp, SelfAttentionMlp and TabPerceiver. Any other model is an
/// `InvalidConfig` error on `field` naming it.
pub(crate) fn build_token_encoder(
    config: &TabModelConfig,
    path: &nn::Path,
    field: &str,
) -> Result<Box<dyn TokenEncoder>> {
    Ok(match config {
        TabModelConfig::TabTransformer(c) => {
            if !c.embed_continuous && !c.cont_cols.is_empty() {
                bail!(
                    config(format!("{field}.embed_continuous")),
                    "tab_transformer: contrastive–denoising pretraining needs every column as a \
                     token; set embed_continuous (the continuous columns are otherwise joined \
                     after the transformer and could not be denoised)"
                );
            }
            Box::new(c.build(path)?)
        }
        TabModelConfig::Saint(c) => Box::new(c.build(path)?),
        TabModelConfig::FtTransformer(c) => Box::new(c.build(path)?),
        TabModelConfig::TabFastFormer(c) => Box::new(c.build(path)?),
        TabModelConfig::ContextAttentionMlp(c) => Box::new(c.build(path)?),
        TabModelConfig::SelfAttentionMlp(c) => Box::new(c.build(path)?),
        TabModelConfig::TabPerceiver(c) => Box::new(c.build(path)?),
        other => bail!(
            config(field.to_string()),
            "{}: contrastive–denoising pretraining needs an attention model over column tokens \
             (tab_transformer, saint, ft_transformer, tab_fastformer, context_attention_mlp, \
             self_attention_mlp, tab_perceiver); use the encoder–decoder route for {}",
            other.name(),
            other.name()
        ),
    })
}
