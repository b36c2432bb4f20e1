//! Decoders for the encoder–decoder self-supervised pretraining
//! ([`crate::training::pretrain::encoder_decoder`]): mirror images of [`TabMlp`](super::TabMlp),
//! [`TabResnet`](super::TabResnet) and [`TabNet`](super::TabNet) (the reference's
//! `TabMlpDecoder`, `TabResnetDecoder` and `TabNetDecoder`) that map an encoder's output back to
//! its combined embeddings `[batch, embed_dim]` (categorical embeddings and continuous values,
//! concatenated).
//!
//! Each config has a `mirror` constructor that reads an encoder's config (what the reference
//! builds when no decoder is given); a decoder may also be configured by hand.
mod mlp;
mod resnet;
mod tabnet;

pub use mlp::{TabMlpDecoder, TabMlpDecoderConfig};
pub use resnet::{TabResnetDecoder, TabResnetDecoderConfig};
pub use tabnet::{TabNetDecoder, TabNetDecoderConfig};

use crate::error::Result;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// The serializable choice of decoder (tag `model`: `tab_mlp_decoder`, `tab_resnet_decoder`,
/// `tab_net_decoder`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model")]
pub enum TabDecoderConfig {
    /// [`TabMlpDecoder`].
    #[serde(rename = "tab_mlp_decoder")]
    TabMlp(TabMlpDecoderConfig),
    /// [`TabResnetDecoder`].
    #[serde(rename = "tab_resnet_decoder")]
    TabResnet(TabResnetDecoderConfig),
    /// [`TabNetDecoder`].
    #[serde(rename = "tab_net_decoder")]
    TabNet(TabNetDecoderConfig),
}

impl TabDecoderConfig {
    /// The decoder's name in errors (`tab_mlp_decoder`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::TabMlp(_) => "tab_mlp_decoder",
            Self::TabResnet(_) => "tab_resnet_decoder",
            Self::TabNet(_) => "tab_net_decoder",
        }
    }

    /// Width of the reconstruction (the encoder's combined embeddings).
    pub fn embed_dim(&self) -> i64 {
        match self {
            Self::TabMlp(c) => c.embed_dim,
            Self::TabResnet(c) => c.embed_dim,
            Self::TabNet(c) => c.embed_dim,
        }
    }

    /// Checks every field without building anything; errors name the field
    /// (`tab_mlp_decoder.mlp.dropout`).
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::TabMlp(c) => c.validate(),
            Self::TabResnet(c) => c.validate(),
            Self::TabNet(c) => c.validate(),
        }
    }

    /// Validates, then builds the decoder under `path`.
    pub fn build(&self, path: &nn::Path) -> Result<TabDecoder> {
        Ok(match self {
            Self::TabMlp(c) => TabDecoder::TabMlp(c.build(path)?),
            Self::TabResnet(c) => TabDecoder::TabResnet(Box::new(c.build(path)?)),
            Self::TabNet(c) => TabDecoder::TabNet(c.build(path)?),
        })
    }
}

/// A built decoder.
#[derive(Debug)]
pub enum TabDecoder {
    /// [`TabMlpDecoder`].
    TabMlp(TabMlpDecoder),
    /// [`TabResnetDecoder`].
    TabResnet(Box<TabResnetDecoder>),
    /// [`TabNetDecoder`].
    TabNet(TabNetDecoder),
}

impl TabDecoder {
    /// The reconstruction of the combined embeddings from an encoder's output: TabMlp and
    /// TabResnet decoders read the one output tensor (`steps` holds it alone), the TabNet
    /// decoder reads each decision step's output.
    ///
    /// # Shapes
    /// - `steps`: `[[batch, input_dim]]` (TabMlp, TabResnet decoders) or `n_steps` tensors
    ///   `[batch, step_dim]` (TabNet decoder)
    /// - returns `[batch, embed_dim]`
    pub fn forward_t(&self, steps: &[Tensor], train: bool) -> Tensor {
        match self {
            Self::TabMlp(d) => d.forward_t(&steps[0], train),
            Self::TabResnet(d) => d.forward_t(&steps[0], train),
            Self::TabNet(d) => d.forward_t(steps, train),
        }
    }
}

#[cfg(test)]
mod tests;
