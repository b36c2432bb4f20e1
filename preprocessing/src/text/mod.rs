//! Tokenization of a text column into padded `i64` id sequences for the deep text component.

mod encode;
mod stream;
#[cfg(test)]
mod tests;
mod train;
mod vectors;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::Array2;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use tokenizers::utils::truncation::{TruncationDirection, TruncationParams, TruncationStrategy};
use tokenizers::Tokenizer;

use crate::column;
use crate::contract::{self, Fit, Persist, Transform};
use crate::error::{PreprocessingError, Result};
use crate::macros::ensure;

/// Token of the padding id in vocabularies trained here (id 0).
pub const PAD_TOKEN: &str = "[PAD]";
/// Token of unknown words in vocabularies trained here (id 1).
pub const UNK_TOKEN: &str = "[UNK]";

/// Where the vocabulary comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Vocab {
    /// One id per word (split on whitespace and punctuation), like the reference: words seen at
    /// least `min_freq` times in the training texts, the `max_vocab` most frequent (the two
    /// special tokens included).
    Word {
        /// Occurrences a token needs in the training texts to enter the vocabulary.
        min_freq: u64,
        /// Most ids in all (at least 3).
        max_vocab: usize,
    },
    /// A WordPiece sub-word vocabulary of `vocab_size` pieces trained on the training texts.
    WordPiece {
        /// Occurrences a token needs in the training texts to enter the vocabulary.
        min_freq: u64,
        /// Number of pieces, special tokens included (at least 3).
        vocab_size: usize,
    },
    /// A byte-pair-encoding vocabulary of `vocab_size` pieces trained on the training texts.
    Bpe {
        /// Occurrences a token needs in the training texts to enter the vocabulary.
        min_freq: u64,
        /// Number of pieces, special tokens included (at least 3).
        vocab_size: usize,
    },
    /// A Hugging Face `tokenizer.json` (BERT-family models); read at `fit`, then kept in the
    /// fitted state (the file is not needed afterwards).
    Pretrained {
        /// The `tokenizer.json` file.
        path: PathBuf,
    },
}

impl Default for Vocab {
    fn default() -> Self {
        Vocab::Word {
            min_freq: 5,
            max_vocab: 30_000,
        }
    }
}

/// Which end of a sequence is padded or truncated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The start of the sequence (the default).
    #[default]
    Left,
    /// The end of the sequence.
    Right,
}

/// Output of [`TextPreprocessor::transform`].
#[derive(Clone, Debug, PartialEq)]
pub struct TextData {
    /// Token ids `[n_rows, maxlen]`, padded with [`TextMeta::pad_id`].
    pub ids: Array2<i64>,
    /// Number of non-pad tokens of each row (0 for a null or empty text).
    pub lengths: Vec<usize>,
    /// The text column's name when it was entirely null in the transformed frame (every row
    /// is all padding); also reported on stderr.
    pub all_null: Vec<String>,
}

/// What a text model needs to know about the fitted preprocessor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextMeta {
    /// The text column.
    pub name: String,
    /// Number of ids (embedding rows).
    pub vocab_size: usize,
    /// Id of the padding token.
    pub pad_id: i64,
    /// Sequence length of the output.
    pub maxlen: usize,
}

/// Turns a text column into fixed-length `i64` token-id sequences.
///
/// * The vocabulary is trained on the training texts ([`Vocab::Word`] by default, like the
///   reference: `min_freq` 5, `max_vocab` 30,000; or WordPiece / BPE) or read from a Hugging
///   Face `tokenizer.json` ([`Vocab::Pretrained`]).
/// * Texts are normalised (lowercase, accents stripped; both on by default and ignored for a
///   pretrained tokenizer, which brings its own normaliser) and split on whitespace and
///   punctuation.
/// * Every sequence is cut or padded to `maxlen` (default 80). Like the reference, padding and
///   truncation happen at the start by default (so the last tokens are kept and an RNN reads
///   the text last); both sides are configurable. A null text becomes an all-padding row.
/// * Trained vocabularies put `[PAD]` at id 0 and `[UNK]` at id 1.
/// * With [`word_vectors`](Self::word_vectors), `fit` also builds an embedding matrix
///   `[vocab_size, dim]` from a GloVe-format text file (`word v1 v2 …` per line): words absent
///   from the file get the mean vector, the padding row is zero.
///
/// ```
/// use polars::prelude::*;
/// use widedeep_preprocessing::{TextPreprocessor, Transform, Vocab};
///
/// let df = df!("review" => [Some("Great dress, great fit"), None, Some("too small")]).unwrap();
/// let mut text = TextPreprocessor::new("review")
///     .vocab(Vocab::Word { min_freq: 1, max_vocab: 100 })
///     .maxlen(4);
/// let data = text.fit_transform(&df).unwrap();
/// assert_eq!(data.ids.shape(), &[3, 4]);
/// assert_eq!(data.ids.row(1).to_vec(), vec![0, 0, 0, 0]); // null → padding only
/// assert_eq!(data.lengths, vec![4, 0, 2]);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TextPreprocessor {
    text_col: String,
    vocab: Vocab,
    lowercase: bool,
    strip_accents: bool,
    maxlen: usize,
    padding_side: Side,
    truncation_side: Side,
    word_vectors: Option<PathBuf>,
    fitted: Option<TextFitted>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct TextFitted {
    tokenizer: Tokenizer,
    pad_id: u32,
    vocab_size: usize,
    /// Built from `word_vectors` at fit time. Not saved: once a model is built from it, the
    /// values live in the model's weights.
    #[serde(skip)]
    embedding_matrix: Option<Arc<Array2<f32>>>,
    /// Word → id of a word-level vocabulary, for the fast path (rebuilt after loading).
    #[serde(skip)]
    word_ids: std::sync::OnceLock<HashMap<String, u32>>,
}

impl PartialEq for TextPreprocessor {
    fn eq(&self, other: &Self) -> bool {
        let fitted = match (&self.fitted, &other.fitted) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.pad_id == b.pad_id
                    && a.vocab_size == b.vocab_size
                    && a.tokenizer.to_string(false).ok() == b.tokenizer.to_string(false).ok()
            }
            _ => false,
        };
        fitted
            && self.text_col == other.text_col
            && self.vocab == other.vocab
            && self.lowercase == other.lowercase
            && self.strip_accents == other.strip_accents
            && self.maxlen == other.maxlen
            && self.padding_side == other.padding_side
            && self.truncation_side == other.truncation_side
            && self.word_vectors == other.word_vectors
    }
}

fn tok_err(e: impl std::fmt::Display) -> PreprocessingError {
    PreprocessingError::Tokenizer {
        reason: e.to_string(),
    }
}

impl TextPreprocessor {
    /// A preprocessor for the text column `text_col` with the reference's defaults.
    pub fn new(text_col: &str) -> Self {
        Self {
            text_col: text_col.to_owned(),
            vocab: Vocab::default(),
            lowercase: true,
            strip_accents: true,
            maxlen: 80,
            padding_side: Side::Left,
            truncation_side: Side::Left,
            word_vectors: None,
            fitted: None,
        }
    }

    /// A preprocessor that uses the Hugging Face `tokenizer.json` at `path` (read at `fit`).
    /// Padding and truncation default to the right, as BERT-family models expect.
    pub fn from_tokenizer_file(text_col: &str, path: impl Into<PathBuf>) -> Self {
        Self::new(text_col)
            .vocab(Vocab::Pretrained { path: path.into() })
            .padding_side(Side::Right)
            .truncation_side(Side::Right)
    }

    /// Where the vocabulary comes from (default: [`Vocab::Word`] with `min_freq` 5 and
    /// `max_vocab` 30,000).
    pub fn vocab(mut self, vocab: Vocab) -> Self {
        self.vocab = vocab;
        self
    }
    /// Whether trained vocabularies lowercase the texts (default on).
    pub fn lowercase(mut self, on: bool) -> Self {
        self.lowercase = on;
        self
    }
    /// Whether trained vocabularies strip accents (default on).
    pub fn strip_accents(mut self, on: bool) -> Self {
        self.strip_accents = on;
        self
    }
    /// Length of every output sequence (default 80, at least 1).
    pub fn maxlen(mut self, maxlen: usize) -> Self {
        self.maxlen = maxlen;
        self
    }
    /// Which end of a short sequence is padded (default [`Side::Left`]).
    pub fn padding_side(mut self, side: Side) -> Self {
        self.padding_side = side;
        self
    }
    /// Which end of a long sequence is cut (default [`Side::Left`]).
    pub fn truncation_side(mut self, side: Side) -> Self {
        self.truncation_side = side;
        self
    }
    /// Builds an embedding matrix from the GloVe-format text file at `path` during `fit`.
    pub fn word_vectors(mut self, path: impl Into<PathBuf>) -> Self {
        self.word_vectors = Some(path.into());
        self
    }

    /// The text column.
    pub fn column(&self) -> &str {
        &self.text_col
    }

    fn validate(&self) -> Result<()> {
        ensure!(self.maxlen >= 1, config("maxlen"), "must be ≥ 1");
        match &self.vocab {
            Vocab::Word { max_vocab, .. } => ensure!(
                *max_vocab >= 3,
                config("vocab.max_vocab"),
                "must be ≥ 3 (two special tokens and a word), got {max_vocab}"
            ),
            Vocab::WordPiece { vocab_size, .. } | Vocab::Bpe { vocab_size, .. } => ensure!(
                *vocab_size >= 3,
                config("vocab.vocab_size"),
                "must be ≥ 3, got {vocab_size}"
            ),
            Vocab::Pretrained { .. } => {}
        }
        Ok(())
    }

    /// The fitted state ([`NotFitted`](PreprocessingError::NotFitted) before `fit`).
    fn fitted(&self) -> Result<&TextFitted> {
        contract::fitted_state(self.fitted.as_ref(), "TextPreprocessor", |_| true)
    }

    /// Token ids for plain strings (same rules as [`transform`](Self::transform)).
    ///
    /// # Shapes
    /// - `texts`: `[n]` strings
    /// - returns `ids`: `[n, maxlen]` i64 in `0..vocab_size`, `lengths`: `[n]`
    pub fn transform_texts(&self, texts: &[&str]) -> Result<TextData> {
        let fitted = self.fitted()?;
        self.encode(fitted, texts.to_vec())
    }

    /// Vocabulary size, pad id and sequence length, for building a text model.
    pub fn meta(&self) -> Result<TextMeta> {
        let f = self.fitted()?;
        Ok(TextMeta {
            name: self.text_col.clone(),
            vocab_size: f.vocab_size,
            pad_id: f.pad_id as i64,
            maxlen: self.maxlen,
        })
    }

    /// The embedding matrix `[vocab_size, dim]` built from the word vectors at fit time
    /// (`None` without word vectors, or after loading a saved preprocessor).
    pub fn embedding_matrix(&self) -> Option<Arc<Array2<f32>>> {
        self.fitted.as_ref()?.embedding_matrix.clone()
    }

    /// The fitted tokenizer.
    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        Ok(&self.fitted()?.tokenizer)
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<i64> {
        self.fitted
            .as_ref()?
            .tokenizer
            .token_to_id(token)
            .map(i64::from)
    }

    /// Writes the fitted tokenizer as a Hugging Face `tokenizer.json`.
    pub fn save_tokenizer(&self, path: impl AsRef<Path>) -> Result<()> {
        let text = self.fitted()?.tokenizer.to_string(true).map_err(tok_err)?;
        std::fs::write(path, text)?;
        Ok(())
    }
}

impl TextPreprocessor {
    /// Stores the fitted state around a learned `tokenizer`: truncation, the pad id, the
    /// vocabulary size and the embedding matrix when word vectors are set.
    fn set_tokenizer(&mut self, mut tokenizer: Tokenizer) -> Result<()> {
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: match self.truncation_side {
                    Side::Left => TruncationDirection::Left,
                    Side::Right => TruncationDirection::Right,
                },
                max_length: self.maxlen,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(tok_err)?;
        let pad_id = [PAD_TOKEN, "<pad>", "<PAD>", "[pad]"]
            .iter()
            .find_map(|t| tokenizer.token_to_id(t))
            .unwrap_or(0);
        let vocab_size = tokenizer.get_vocab_size(true);
        let embedding_matrix = match &self.word_vectors {
            Some(path) => Some(Arc::new(vectors::embedding_matrix(
                path,
                &tokenizer.get_vocab(true),
                vocab_size,
                pad_id as usize,
            )?)),
            None => None,
        };
        self.fitted = Some(TextFitted {
            tokenizer,
            pad_id,
            vocab_size,
            embedding_matrix,
            word_ids: Default::default(),
        });
        Ok(())
    }
}

impl Fit for TextPreprocessor {
    /// Learns the vocabulary from the non-null texts of `df` (or reads the pretrained
    /// tokenizer), and the embedding matrix when word vectors are set.
    fn fit(&mut self, df: &DataFrame) -> Result<()> {
        self.validate()?;
        ensure!(df.height() > 0, PreprocessingError::EmptyFrame);
        let texts = read_texts(df, &self.text_col)?;
        let tokenizer = self.learn_tokenizer(&texts)?;
        self.set_tokenizer(tokenizer)
    }

    fn is_fitted(&self) -> bool {
        self.fitted.is_some()
    }
}

impl Transform for TextPreprocessor {
    /// Token ids and lengths, see [`TextData`].
    type Output = TextData;

    /// Token ids `[n_rows, maxlen]` for the texts of `df`. Unknown words map to `[UNK]`, null
    /// texts to an all-padding row.
    ///
    /// # Shapes
    /// - `df`: `n_rows = df.height()` rows with the text column
    /// - returns `ids`: `[n_rows, maxlen]` i64 in `0..vocab_size`, `lengths`: `[n_rows]`
    fn transform(&self, df: &DataFrame) -> Result<TextData> {
        let fitted = self.fitted()?;
        let texts = read_texts(df, &self.text_col)?;
        let mut data = self.encode(fitted, texts.iter().map(|t| t.unwrap_or("")).collect())?;
        data.all_null =
            column::warn_all_missing(df, std::iter::once(&self.text_col), "TextPreprocessor");
        Ok(data)
    }
}

impl Persist for TextPreprocessor {}

/// The texts of `column` (`None` for nulls); string or UTF-8 bytes (`Binary`, what pandas
/// writes for `bytes` objects) dtype.
fn read_texts<'a>(df: &'a DataFrame, name: &str) -> Result<Vec<Option<&'a str>>> {
    let col = column::get(df, name)?;
    match col.dtype() {
        DataType::String => Ok(col.str()?.iter().collect()),
        DataType::Binary => column::utf8_texts(col.binary()?, name),
        DataType::Null => Ok(vec![None; col.len()]),
        other => Err(column::wrong_type(name, "string", other)),
    }
}
