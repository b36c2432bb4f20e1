//! Deep models over text columns: recurrent ([`BasicRnn`], [`AttentiveRnn`],
//! [`StackedAttentiveRnn`]), a Transformer encoder ([`TextTransformer`]) and pretrained
//! BERT-family encoders ([`Bert`]).
//!
//! Every text model reads one `[batch, seq_len]` i64 tensor of token ids, `input.text[i]`
//! (`i` = the config's `text_index`), where `pad_id` marks padding, and returns
//! `[batch, output_dim()]` features. Padding positions are masked (attention, mean pooling),
//! so either padding side works.
pub mod bert;
pub mod rnn;
pub mod transformer;

pub use bert::{Bert, BertConfig, BertParams, BertPooling};
pub use rnn::{
    AttentiveRnn, AttentiveRnnConfig, BasicRnn, BasicRnnConfig, RnnBase, RnnPooling, RnnType,
    StackedAttentiveRnn, StackedAttentiveRnnConfig,
};
pub use transformer::{TextPooling, TextTransformer, TextTransformerConfig};

use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::models::ModelInput;
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tch::{nn, Kind, Tensor};
use widedeep_preprocessing::TextMeta;

component_enum! {
    /// The serializable choice of text model inside a [`crate::models::WideDeepConfig`].
    pub enum TextModelConfig {
        /// [`BasicRnn`].
        BasicRnn(BasicRnnConfig) = "basic_rnn",
        /// [`AttentiveRnn`].
        AttentiveRnn(AttentiveRnnConfig) = "attentive_rnn",
        /// [`StackedAttentiveRnn`].
        StackedAttentiveRnn(StackedAttentiveRnnConfig) = "stacked_attentive_rnn",
        /// [`TextTransformer`] (saved as `"transformer"` before 0.2).
        #[serde(alias = "transformer")]
        Transformer(TextTransformerConfig) = "text_transformer",
        /// [`Bert`].
        Bert(BertConfig) = "bert",
    }
}

impl TextModelConfig {
    /// Which `input.text[i]` the model reads.
    pub fn text_index(&self) -> usize {
        match self {
            TextModelConfig::BasicRnn(c) => c.base.input.text_index,
            TextModelConfig::AttentiveRnn(c) => c.base.input.text_index,
            TextModelConfig::StackedAttentiveRnn(c) => c.base.input.text_index,
            TextModelConfig::Transformer(c) => c.input.text_index,
            TextModelConfig::Bert(c) => c.input.text_index,
        }
    }
}

/// The `pretrained_embeddings` and `head` setters of the text model configs with trainable
/// token embeddings (fields `embed_dim`, `pretrained_embeddings`, `head`, or those of the
/// config's field named in the call: `embedding_and_head_setters!(base)`).
macro_rules! embedding_and_head_setters {
    ($($field:ident)?) => {
        /// Initial token embeddings `[vocab_size, embed_dim]` (sets `embed_dim`).
        pub fn pretrained_embeddings(mut self, m: EmbeddingMatrix) -> Self {
            self$(.$field)?.embed_dim = m.ncols() as i64;
            self$(.$field)?.pretrained_embeddings = Some(m);
            self
        }
        /// Puts an MLP on the pooled output.
        pub fn head(mut self, head: MlpConfig) -> Self {
            self$(.$field)?.head = Some(head);
            self
        }
    };
}
pub(crate) use embedding_and_head_setters;

/// The [`Component`] methods the token-embedding text models share: ids → token embeddings →
/// `self.run(embeddings, mask, train)`, with the embeddings as the attribution point. Needs
/// fields `input: TextInput`, `embed: TokenEmbedding` and a method `run`.
macro_rules! token_component_methods {
    () => {
        fn forward_t(&self, input: &ModelInput, train: bool) -> Tensor {
            let ids = self.input.ids(input);
            self.run(
                &self.embed.forward(ids),
                &mask_from_ids(ids, self.input.pad_id),
                train,
            )
        }
        fn feature_names(&self) -> Vec<String> {
            vec![self.input.name.clone()]
        }
        fn embed(&self, input: &ModelInput) -> Option<Vec<Tensor>> {
            Some(vec![self.embed.forward(self.input.ids(input))])
        }
        fn forward_embedded(&self, parts: &[Tensor], train: bool) -> Option<Tensor> {
            let emb = check_part(parts)?;
            Some(self.run(emb, &self.embed.mask_from_embedded(emb), train))
        }
    };
}
pub(crate) use token_component_methods;

/// Which text input a model reads and its vocabulary (from [`TextMeta`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextInput {
    /// Index into `ModelInput::text`.
    pub text_index: usize,
    /// Column name (for attributions).
    pub name: String,
    /// Number of token ids.
    pub vocab_size: i64,
    /// Id of the padding token.
    pub pad_id: i64,
}

impl Default for TextInput {
    fn default() -> Self {
        Self {
            text_index: 0,
            name: "text".into(),
            vocab_size: 1,
            pad_id: 0,
        }
    }
}

impl TextInput {
    /// From a fitted `TextPreprocessor`'s metadata; `text_index` is its position among the
    /// text preprocessors.
    pub fn from_meta(meta: &TextMeta, text_index: usize) -> Self {
        Self {
            text_index,
            name: meta.name.clone(),
            vocab_size: meta.vocab_size as i64,
            pad_id: meta.pad_id,
        }
    }

    /// Checks `vocab_size` (positive) and `pad_id` (in `0..vocab_size`); errors name
    /// `{prefix}.vocab_size` and `{prefix}.pad_id`.
    fn validate(&self, prefix: &str) -> Result<()> {
        ensure!(
            self.vocab_size > 0,
            config(format!("{prefix}.vocab_size")),
            "must be positive, got {}",
            self.vocab_size
        );
        ensure!(
            (0..self.vocab_size).contains(&self.pad_id),
            config(format!("{prefix}.pad_id")),
            "must be in 0..{}, got {}",
            self.vocab_size,
            self.pad_id
        );
        Ok(())
    }

    /// Checks that `input.text[text_index]` exists, is i64 `[batch, seq_len]` (`seq_len` at
    /// most `max_len`) and holds ids in range.
    pub(crate) fn check(&self, input: &ModelInput, max_len: Option<i64>) -> Result<()> {
        let name = format!("text[{}] ({})", self.text_index, self.name);
        let Some(t) = input.text.get(self.text_index) else {
            bail!(
                input(name),
                "missing: the input has {} text tensor(s)",
                input.text.len()
            );
        };
        ensure!(
            t.kind() == Kind::Int64 && t.dim() == 2,
            input(name),
            "expected i64 [batch, seq_len], got {:?} {:?}",
            t.kind(),
            t.size()
        );
        if let Some(m) = max_len {
            ensure!(
                t.size()[1] <= m,
                input(name),
                "sequence length {} exceeds the model's maximum {m}",
                t.size()[1]
            );
        }
        if t.numel() > 0 {
            let (lo, hi) = (t.min().int64_value(&[]), t.max().int64_value(&[]));
            ensure!(
                lo >= 0 && hi < self.vocab_size,
                input(name),
                "token ids must be in 0..{}, found {lo}..={hi}",
                self.vocab_size
            );
        }
        Ok(())
    }

    /// The token ids this model reads, `input.text[text_index]` `[batch, seq_len]`.
    pub(crate) fn ids<'a>(&self, input: &'a ModelInput) -> &'a Tensor {
        &input.text[self.text_index]
    }
}

/// A pretrained embedding matrix `[vocab_size, embed_dim]` (e.g. from
/// `TextPreprocessor::embedding_matrix`). Held in memory only: configs do not serialize it,
/// since after building the values live in the model's weights.
pub type EmbeddingMatrix = Arc<Array2<f32>>;

/// Token embeddings with a zero padding row, optionally initialised from a pretrained matrix
/// and frozen.
#[derive(Debug)]
pub(crate) struct TokenEmbedding {
    /// `[vocab_size, dim]`, the padding row zero at build.
    pub weight: Tensor,
    /// Id of the padding token.
    pub pad_id: i64,
}

impl TokenEmbedding {
    /// Checks the options of [`TokenEmbedding::new`] without building anything and returns
    /// the embedding width: the pretrained matrix's (which must have a row per token id) or
    /// `embed_dim` (positive). Errors name `{prefix}.pretrained_embeddings` or
    /// `{prefix}.embed_dim`.
    pub fn validate(
        input: &TextInput,
        embed_dim: i64,
        pretrained: Option<&EmbeddingMatrix>,
        prefix: &str,
    ) -> Result<i64> {
        let embed_dim = match pretrained {
            Some(m) => {
                let (rows, cols) = m.dim();
                ensure!(
                    rows as i64 == input.vocab_size,
                    config(format!("{prefix}.pretrained_embeddings")),
                    "has {rows} rows, the vocabulary {}",
                    input.vocab_size
                );
                cols as i64
            }
            None => embed_dim,
        };
        ensure!(
            embed_dim > 0,
            config(format!("{prefix}.embed_dim")),
            "must be positive, got {embed_dim}"
        );
        Ok(embed_dim)
    }

    /// Validates, then creates `weight` `[vocab_size, dim]` under `path` (standard normal, or
    /// the pretrained values), zeroes the padding row, and freezes it when asked.
    pub fn new(
        path: &nn::Path,
        input: &TextInput,
        embed_dim: i64,
        pretrained: Option<&EmbeddingMatrix>,
        freeze: bool,
        prefix: &str,
    ) -> Result<Self> {
        let embed_dim = Self::validate(input, embed_dim, pretrained, prefix)?;
        crate::models::alloc::check_table(
            prefix,
            "token embedding",
            &[input.vocab_size, embed_dim],
            path.device(),
        )?;
        let weight = path.var(
            "weight",
            &[input.vocab_size, embed_dim],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        );
        tch::no_grad(|| {
            if let Some(m) = pretrained {
                let flat: Vec<f32> = m.iter().copied().collect();
                let t = Tensor::from_slice(&flat)
                    .view([input.vocab_size, embed_dim])
                    .to_device(weight.device());
                weight.shallow_clone().copy_(&t);
            }
            let _ = weight.get(input.pad_id).zero_();
        });
        if freeze {
            let _ = weight.set_requires_grad(false);
        }
        Ok(Self {
            weight,
            pad_id: input.pad_id,
        })
    }

    /// The embedding width.
    pub fn dim(&self) -> i64 {
        self.weight.size()[1]
    }

    /// # Shapes
    /// - `ids`: `[batch, seq]` i64
    /// - returns `[batch, seq, dim]`
    pub fn forward(&self, ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.weight, ids, self.pad_id, false, false)
    }

    /// The mask of real tokens of embedded input: positions whose vector equals the padding
    /// vector are padding.
    ///
    /// # Shapes
    /// - `emb`: `[batch, seq, dim]`
    /// - returns `[batch, seq]` bool
    pub fn mask_from_embedded(&self, emb: &Tensor) -> Tensor {
        padding_mask_from_embedded(emb, &self.weight.get(self.pad_id))
    }
}

/// Errors unless `value > 0`, naming `{prefix}.{field}`.
fn check_positive(value: i64, prefix: &str, field: &str) -> Result<()> {
    ensure!(
        value > 0,
        config(format!("{prefix}.{field}")),
        "must be positive, got {value}"
    );
    Ok(())
}

/// Real-token mask of ids.
///
/// # Shapes
/// - `ids`: `[batch, seq]` i64
/// - returns `[batch, seq]` bool
pub(crate) fn mask_from_ids(ids: &Tensor, pad_id: i64) -> Tensor {
    ids.ne(pad_id)
}

/// Real-token mask of embedded input: a position is padding when its vector equals `pad_vec`.
///
/// # Shapes
/// - `emb`: `[batch, seq, d]`, `pad_vec`: `[d]`
/// - returns `[batch, seq]` bool
pub(crate) fn padding_mask_from_embedded(emb: &Tensor, pad_vec: &Tensor) -> Tensor {
    emb.ne_tensor(&pad_vec.view([1, 1, -1])).any_dim(-1, false)
}

/// Mean over the real positions (zero for rows without real tokens).
///
/// # Shapes
/// - `x`: `[batch, seq, d]`, `mask`: `[batch, seq]` bool
/// - returns `[batch, d]`
pub(crate) fn masked_mean(x: &Tensor, mask: &Tensor) -> Tensor {
    let m = mask.to_kind(x.kind()).unsqueeze(-1);
    let n = m.sum_dim_intlist(1, false, x.kind()).clamp_min(1.0);
    (x * &m).sum_dim_intlist(1, false, x.kind()) / n
}

/// Large negative score for masked positions (finite, so that a row with no real token
/// gets uniform weights instead of NaN).
pub(crate) const MASK_FILL: f64 = -1e9;

/// Checks `x` is a float `[batch, seq, d]` part, as `embed` returns.
pub(crate) fn check_part(parts: &[Tensor]) -> Option<&Tensor> {
    match parts {
        [x] if x.dim() == 3 => Some(x),
        _ => None,
    }
}

/// Stores the most recent attention weights of a component (detached).
#[derive(Debug, Default)]
pub(crate) struct AttentionStore(std::sync::Mutex<Option<Vec<Tensor>>>);

impl AttentionStore {
    /// Keeps `w` (detached), replacing the previous weights.
    pub fn set(&self, w: Vec<Tensor>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(w.iter().map(|t| t.detach()).collect());
    }
    /// The weights last set, if any (shallow copies).
    pub fn get(&self) -> Option<Vec<Tensor>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|v| v.iter().map(|t| t.shallow_clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_transformer_tag_still_loads() {
        let json = r#"{"model": "transformer", "input": {"text_index": 1, "name": "t",
            "vocab_size": 10, "pad_id": 0}, "embed_dim": 8, "n_heads": 2}"#;
        let cfg: TextModelConfig = serde_json::from_str(json).unwrap();
        let TextModelConfig::Transformer(t) = &cfg else {
            panic!("expected the Transformer variant, got {cfg:?}");
        };
        assert_eq!((t.input.text_index, t.embed_dim, t.n_heads), (1, 8, 2));
        assert_eq!(cfg.text_index(), 1);
        // written back under the registry's tag
        let v = serde_json::to_value(&cfg).unwrap();
        assert_eq!(v["model"], "text_transformer");
    }
}
