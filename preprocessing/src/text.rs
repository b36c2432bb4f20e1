//! Tokenization of a text column into padded `i64` id sequences for the deep text component.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::Array2;
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::{Lowercase, Sequence, StripAccents, NFC, NFD};
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::utils::truncation::{TruncationDirection, TruncationParams, TruncationStrategy};
use tokenizers::{
    AddedToken, NormalizedString, Normalizer, NormalizerWrapper, OffsetReferential, OffsetType,
    PreTokenizedString, PreTokenizer, Tokenizer,
};

use crate::column;
use crate::contract::{Fit, Persist, Transform};
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
    Word { min_freq: u64, max_vocab: usize },
    /// A WordPiece sub-word vocabulary of `vocab_size` pieces trained on the training texts.
    WordPiece { min_freq: u64, vocab_size: usize },
    /// A byte-pair-encoding vocabulary of `vocab_size` pieces trained on the training texts.
    Bpe { min_freq: u64, vocab_size: usize },
    /// A Hugging Face `tokenizer.json` (BERT-family models); read at `fit`, then kept in the
    /// fitted state (the file is not needed afterwards).
    Pretrained { path: PathBuf },
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
    #[default]
    Left,
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

    pub fn vocab(mut self, vocab: Vocab) -> Self {
        self.vocab = vocab;
        self
    }
    pub fn lowercase(mut self, on: bool) -> Self {
        self.lowercase = on;
        self
    }
    pub fn strip_accents(mut self, on: bool) -> Self {
        self.strip_accents = on;
        self
    }
    pub fn maxlen(mut self, maxlen: usize) -> Self {
        self.maxlen = maxlen;
        self
    }
    pub fn padding_side(mut self, side: Side) -> Self {
        self.padding_side = side;
        self
    }
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

    fn normalizer(&self) -> Option<Sequence> {
        let mut parts: Vec<NormalizerWrapper> = Vec::new();
        if self.strip_accents {
            parts.push(NFD.into());
            parts.push(StripAccents.into());
            parts.push(NFC.into());
        }
        if self.lowercase {
            parts.push(Lowercase.into());
        }
        (!parts.is_empty()).then(|| Sequence::new(parts))
    }

    fn fitted(&self) -> Result<&TextFitted> {
        self.fitted
            .as_ref()
            .ok_or_else(|| PreprocessingError::not_fitted("TextPreprocessor"))
    }

    /// Token ids for plain strings (same rules as [`transform`](Self::transform)).
    pub fn transform_texts(&self, texts: &[&str]) -> Result<TextData> {
        let fitted = self.fitted()?;
        self.encode(fitted, texts.to_vec())
    }

    fn encode(&self, fitted: &TextFitted, texts: Vec<&str>) -> Result<TextData> {
        let n = texts.len();
        let maxlen = self.maxlen;
        let pad = fitted.pad_id as i64;
        let encodings: Vec<Vec<u32>> = if matches!(self.vocab, Vocab::Word { .. }) {
            // word-level: plain-ASCII texts take a direct split + lookup path that gives the
            // same ids as the tokenizer (checked by a test), the others go through it
            let words = fitted
                .word_ids
                .get_or_init(|| fitted.tokenizer.get_vocab(false));
            let unk = words.get(UNK_TOKEN).copied().unwrap_or(1);
            texts
                .par_iter()
                .map(|t| {
                    if fast_eligible(t) {
                        let lower;
                        let t = if self.lowercase {
                            lower = t.to_ascii_lowercase();
                            lower.as_str()
                        } else {
                            t
                        };
                        let mut ids = Vec::new();
                        split_ascii_words(t, |w| ids.push(words.get(w).copied().unwrap_or(unk)));
                        if ids.len() > maxlen {
                            match self.truncation_side {
                                Side::Left => {
                                    ids.drain(..ids.len() - maxlen);
                                }
                                Side::Right => ids.truncate(maxlen),
                            }
                        }
                        Ok(ids)
                    } else {
                        Ok(fitted
                            .tokenizer
                            .encode_fast(*t, true)
                            .map_err(tok_err)?
                            .get_ids()
                            .to_vec())
                    }
                })
                .collect::<Result<_>>()?
        } else {
            fitted
                .tokenizer
                .encode_batch_fast(texts, true)
                .map_err(tok_err)?
                .iter()
                .map(|e| e.get_ids().to_vec())
                .collect()
        };
        let mut ids = Array2::<i64>::from_elem((n, maxlen), pad);
        let mut lengths = Vec::with_capacity(n);
        let flat = ids.as_slice_mut().expect("standard layout");
        for (row, toks) in flat.chunks_exact_mut(maxlen).zip(&encodings) {
            let toks = &toks[..toks.len().min(maxlen)];
            let start = match self.padding_side {
                Side::Left => maxlen - toks.len(),
                Side::Right => 0,
            };
            for (slot, &t) in row[start..].iter_mut().zip(toks) {
                *slot = t as i64;
            }
            lengths.push(toks.len());
        }
        Ok(TextData {
            ids,
            lengths,
            all_null: Vec::new(),
        })
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
    /// A word-level tokenizer whose vocabulary is counted here (in parallel; plain-ASCII
    /// texts by a direct split) with the rules of the tokenizers crate's `WordLevelTrainer`:
    /// `[PAD]`, `[UNK]`, then the words seen at least `min_freq` times by decreasing count
    /// (ties by word), `max_vocab` in all.
    fn word_tokenizer(
        &self,
        texts: &[Option<&str>],
        min_freq: u64,
        max_vocab: usize,
    ) -> Result<Tokenizer> {
        let mut tokenizer = Tokenizer::new(
            WordLevel::builder()
                .unk_token(UNK_TOKEN.into())
                .build()
                .map_err(tok_err)?,
        );
        if let Some(n) = self.normalizer() {
            tokenizer.with_normalizer(Some(n));
        }
        tokenizer.with_pre_tokenizer(Some(Whitespace {}));
        let counts: HashMap<String, u64> = texts
            .par_iter()
            .flatten()
            .try_fold(HashMap::new, |mut m: HashMap<String, u64>, t| {
                let mut add = |w: &str| match m.get_mut(w) {
                    Some(c) => *c += 1,
                    None => {
                        m.insert(w.to_owned(), 1);
                    }
                };
                if fast_eligible(t) {
                    if self.lowercase {
                        split_ascii_words(&t.to_ascii_lowercase(), &mut add);
                    } else {
                        split_ascii_words(t, &mut add);
                    }
                } else {
                    let mut normalized = NormalizedString::from(*t);
                    if let Some(n) = tokenizer.get_normalizer() {
                        n.normalize(&mut normalized).map_err(tok_err)?;
                    }
                    let mut pre = PreTokenizedString::from(normalized);
                    Whitespace {}.pre_tokenize(&mut pre).map_err(tok_err)?;
                    for (w, _, _) in pre.get_splits(OffsetReferential::Original, OffsetType::Byte) {
                        add(w);
                    }
                }
                Ok::<_, PreprocessingError>(m)
            })
            .try_reduce(HashMap::new, |mut a, b| {
                for (k, v) in b {
                    *a.entry(k).or_default() += v;
                }
                Ok(a)
            })?;
        let mut ordered: Vec<(&String, &u64)> =
            counts.iter().filter(|(_, &c)| c >= min_freq).collect();
        ordered.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let mut vocab = serde_json::Map::new();
        for (i, w) in [PAD_TOKEN, UNK_TOKEN]
            .into_iter()
            .chain(ordered.iter().map(|(w, _)| w.as_str()))
            .take(max_vocab)
            .enumerate()
        {
            vocab.insert(w.to_owned(), serde_json::Value::from(i));
        }
        let spec = serde_json::json!({
            "type": "WordLevel",
            "vocab": vocab,
            "unk_token": UNK_TOKEN,
        });
        let model: WordLevel = serde_json::from_str(&spec.to_string())?;
        let mut out = Tokenizer::new(model);
        if let Some(n) = self.normalizer() {
            out.with_normalizer(Some(n));
        }
        out.with_pre_tokenizer(Some(Whitespace {}));
        out.add_special_tokens(&[
            AddedToken::from(PAD_TOKEN, true),
            AddedToken::from(UNK_TOKEN, true),
        ]);
        Ok(out)
    }
}

impl Fit for TextPreprocessor {
    /// Learns the vocabulary from the non-null texts of `df` (or reads the pretrained
    /// tokenizer), and the embedding matrix when word vectors are set.
    fn fit(&mut self, df: &DataFrame) -> Result<()> {
        self.validate()?;
        ensure!(df.height() > 0, PreprocessingError::EmptyFrame);
        let texts = read_texts(df, &self.text_col)?;
        let specials = || {
            vec![
                AddedToken::from(PAD_TOKEN, true),
                AddedToken::from(UNK_TOKEN, true),
            ]
        };
        let mut tokenizer = match &self.vocab {
            Vocab::Pretrained { path } => {
                Tokenizer::from_file(path).map_err(|e| PreprocessingError::BadFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
            }
            trained => {
                ensure!(
                    texts.iter().any(Option::is_some),
                    PreprocessingError::all_null(&self.text_col)
                );
                if let Vocab::Word {
                    min_freq,
                    max_vocab,
                } = *trained
                {
                    self.word_tokenizer(&texts, min_freq, max_vocab)?
                } else {
                    let (mut tokenizer, mut trainer) = match *trained {
                        Vocab::Word { .. } => unreachable!("handled above"),
                        Vocab::WordPiece {
                            min_freq,
                            vocab_size,
                        } => {
                            let model = WordPiece::builder()
                                .unk_token(UNK_TOKEN.into())
                                .build()
                                .map_err(tok_err)?;
                            let trainer = WordPieceTrainer::builder()
                                .min_frequency(min_freq)
                                .vocab_size(vocab_size)
                                .show_progress(false)
                                .special_tokens(specials())
                                .build();
                            (Tokenizer::new(model), TrainerWrapper::from(trainer))
                        }
                        Vocab::Bpe {
                            min_freq,
                            vocab_size,
                        } => {
                            let model = BPE::builder()
                                .unk_token(UNK_TOKEN.into())
                                .build()
                                .map_err(tok_err)?;
                            let trainer = BpeTrainer::builder()
                                .min_frequency(min_freq)
                                .vocab_size(vocab_size)
                                .show_progress(false)
                                .special_tokens(specials())
                                .build();
                            (Tokenizer::new(model), TrainerWrapper::from(trainer))
                        }
                        Vocab::Pretrained { .. } => unreachable!("handled above"),
                    };
                    if let Some(n) = self.normalizer() {
                        tokenizer.with_normalizer(Some(n));
                    }
                    tokenizer.with_pre_tokenizer(Some(Whitespace {}));
                    tokenizer
                        .train(&mut trainer, texts.iter().flatten())
                        .map_err(tok_err)?;
                    tokenizer
                }
            }
        };
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
            Some(path) => Some(Arc::new(embedding_matrix(
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

    fn is_fitted(&self) -> bool {
        self.fitted.is_some()
    }
}

impl Transform for TextPreprocessor {
    /// Token ids and lengths, see [`TextData`].
    type Output = TextData;

    /// Token ids `[n_rows, maxlen]` for the texts of `df`. Unknown words map to `[UNK]`, null
    /// texts to an all-padding row.
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

/// Whether `t` can skip the tokenizer: plain ASCII (normalisation is then just lowercasing) and
/// no special-token text.
fn fast_eligible(t: &str) -> bool {
    t.is_ascii() && !t.contains("[PAD]") && !t.contains("[UNK]")
}

/// Splits ASCII text like the `Whitespace` pre-tokenizer (`\w+|[^\w\s]+`).
fn split_ascii_words(t: &str, mut f: impl FnMut(&str)) {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Word,
        Space,
        Other,
    }
    let class = |b: u8| match b {
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => Class::Word,
        b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r' => Class::Space,
        _ => Class::Other,
    };
    let bytes = t.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let c = class(bytes[start]);
        let mut end = start + 1;
        while end < bytes.len() && class(bytes[end]) == c {
            end += 1;
        }
        if c != Class::Space {
            f(&t[start..end]);
        }
        start = end;
    }
}

/// The texts of `column` (`None` for nulls); string or UTF-8 bytes (`Binary`, what pandas
/// writes for `bytes` objects) dtype.
fn read_texts<'a>(df: &'a DataFrame, name: &str) -> Result<Vec<Option<&'a str>>> {
    let col = column::get(df, name)?;
    match col.dtype() {
        DataType::String => Ok(col.str()?.iter().collect()),
        DataType::Binary => col
            .binary()?
            .iter()
            .enumerate()
            .map(|(row, b)| {
                b.map(|b| {
                    std::str::from_utf8(b).map_err(|_| PreprocessingError::InvalidUtf8 {
                        column: name.to_owned(),
                        row,
                    })
                })
                .transpose()
            })
            .collect(),
        DataType::Null => Ok(vec![None; col.len()]),
        other => Err(column::wrong_type(name, "string", other)),
    }
}

/// Reads a GloVe-format file and builds the `[vocab_size, dim]` matrix for `vocab`.
fn embedding_matrix(
    path: &Path,
    vocab: &HashMap<String, u32>,
    vocab_size: usize,
    pad_id: usize,
) -> Result<Array2<f32>> {
    let bad = |reason: String| PreprocessingError::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut dim = 0usize;
    let mut rows: Vec<Option<Vec<f32>>> = vec![None; vocab_size];
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| bad(format!("line {}: {e}", i + 1)))?;
        let mut parts = line.split_ascii_whitespace();
        let Some(word) = parts.next() else { continue };
        let values: std::result::Result<Vec<f32>, _> = parts.map(str::parse::<f32>).collect();
        let values = values.map_err(|e| bad(format!("line {}: {e}", i + 1)))?;
        if dim == 0 {
            ensure!(
                !values.is_empty(),
                bad(format!("line {}: no vector values", i + 1))
            );
            dim = values.len();
        } else {
            ensure!(
                values.len() == dim,
                bad(format!(
                    "line {}: {} values, expected {dim}",
                    i + 1,
                    values.len()
                ))
            );
        }
        if let Some(&id) = vocab.get(word) {
            rows[id as usize] = Some(values);
        }
    }
    ensure!(dim > 0, bad("no word vectors".into()));
    let found: Vec<&Vec<f32>> = rows.iter().flatten().collect();
    let mut mean = vec![0f32; dim];
    for v in &found {
        for (m, x) in mean.iter_mut().zip(v.iter()) {
            *m += x;
        }
    }
    if !found.is_empty() {
        mean.iter_mut().for_each(|m| *m /= found.len() as f32);
    }
    let mut out = Array2::<f32>::zeros((vocab_size, dim));
    for (i, row) in rows.iter().enumerate() {
        if i == pad_id {
            continue;
        }
        let src = row.as_deref().unwrap_or(&mean);
        out.row_mut(i)
            .iter_mut()
            .zip(src)
            .for_each(|(o, &x)| *o = x);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> DataFrame {
        df!("t" => [
            Some("The dress is lovely and the fit is great"),
            Some("the fabric is cheap"),
            None,
            Some("Café CAFE cafe"),
            Some("lovely lovely dress"),
        ])
        .unwrap()
    }

    fn word(min_freq: u64) -> TextPreprocessor {
        TextPreprocessor::new("t").vocab(Vocab::Word {
            min_freq,
            max_vocab: 100,
        })
    }

    #[test]
    fn word_vocab_padding_truncation_and_nulls() {
        let mut p = word(2).maxlen(5);
        let d = p.fit_transform(&frame()).unwrap();
        assert_eq!(d.ids.shape(), &[5, 5]);
        // null → padding only
        assert!(d.ids.row(2).iter().all(|&x| x == 0));
        assert_eq!(d.lengths[2], 0);
        // accents stripped + lowercased: three times "cafe"
        let cafe = p.token_to_id("cafe").unwrap();
        assert_eq!(d.ids.row(3).to_vec(), vec![0, 0, cafe, cafe, cafe]);
        // left truncation keeps the last five words "and the fit is great"; "and", "fit" and
        // "great" (seen once) are unknown with min_freq 2
        let the = p.token_to_id("the").unwrap();
        let is = p.token_to_id("is").unwrap();
        assert_eq!(d.ids.row(0).to_vec(), vec![1, the, 1, is, 1]);
        assert!(p.token_to_id("great").is_none());
        // right side
        let mut r = word(1)
            .maxlen(3)
            .padding_side(Side::Right)
            .truncation_side(Side::Right);
        let d = r.fit_transform(&frame()).unwrap();
        let the = r.token_to_id("the").unwrap();
        let dress = r.token_to_id("dress").unwrap();
        assert_eq!(
            d.ids.row(0).to_vec(),
            vec![the, dress, r.token_to_id("is").unwrap()]
        );
        assert_eq!(d.ids.row(1)[0], the);
        let lovely = r.token_to_id("lovely").unwrap();
        assert_eq!(d.ids.row(4).to_vec(), vec![lovely, lovely, dress]);
        assert_eq!(r.meta().unwrap().pad_id, 0);
    }

    /// The word-level fast path gives exactly the ids of the tokenizer pipeline, and the
    /// counted vocabulary equals the one the tokenizers crate's `WordLevelTrainer` learns.
    #[test]
    fn word_fast_path_matches_the_tokenizer_on_the_reviews() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../datasets/womens_ecommerce_reviews.parquet");
        let file = std::fs::File::open(path).unwrap();
        let df = ParquetReader::new(file).finish().unwrap().head(Some(4000));
        let mut p = TextPreprocessor::new("Review Text").maxlen(40);
        let data = p.fit_transform(&df).unwrap();
        let tok = p.tokenizer().unwrap();
        let texts = read_texts(&df, "Review Text").unwrap();
        assert!(
            texts.iter().flatten().any(|t| !t.is_ascii()),
            "covers the slow path"
        );
        for (row, t) in texts.iter().enumerate() {
            let want = tok.encode_fast(t.unwrap_or(""), true).unwrap();
            let want: Vec<i64> = want.get_ids().iter().map(|&i| i as i64).collect();
            let got: Vec<i64> = data
                .ids
                .row(row)
                .iter()
                .copied()
                .filter(|&i| i != 0)
                .collect();
            assert_eq!(got, want, "row {row}: {t:?}");
        }
        let mut reference = Tokenizer::new(
            WordLevel::builder()
                .unk_token(UNK_TOKEN.into())
                .build()
                .unwrap(),
        );
        reference.with_normalizer(p.normalizer());
        reference.with_pre_tokenizer(Some(Whitespace {}));
        let mut trainer = TrainerWrapper::from(
            tokenizers::models::wordlevel::WordLevelTrainer::builder()
                .min_frequency(5)
                .vocab_size(30_000)
                .show_progress(false)
                .special_tokens(vec![
                    AddedToken::from(PAD_TOKEN, true),
                    AddedToken::from(UNK_TOKEN, true),
                ])
                .build()
                .unwrap(),
        );
        reference
            .train(&mut trainer, texts.iter().flatten())
            .unwrap();
        assert_eq!(reference.get_vocab(true), tok.get_vocab(true));
    }

    #[test]
    fn subword_vocabularies_train() {
        for vocab in [
            Vocab::WordPiece {
                min_freq: 1,
                vocab_size: 60,
            },
            Vocab::Bpe {
                min_freq: 1,
                vocab_size: 60,
            },
        ] {
            let mut p = TextPreprocessor::new("t").vocab(vocab).maxlen(12);
            let d = p.fit_transform(&frame()).unwrap();
            let meta = p.meta().unwrap();
            assert!(meta.vocab_size > 10 && meta.vocab_size <= 60, "{meta:?}");
            assert!(d
                .ids
                .iter()
                .all(|&x| x >= 0 && (x as usize) < meta.vocab_size));
            assert!(d.lengths[0] > 0);
        }
    }

    #[test]
    fn save_load_round_trip_gives_same_ids() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = word(1).maxlen(6);
        let a = p.fit_transform(&frame()).unwrap();
        let path = dir.path().join("text.json");
        p.save(&path).unwrap();
        let q = TextPreprocessor::load(&path).unwrap();
        assert_eq!(p, q);
        assert_eq!(q.transform(&frame()).unwrap(), a);
        // the tokenizer also round-trips through a tokenizer.json
        let tok = dir.path().join("tokenizer.json");
        p.save_tokenizer(&tok).unwrap();
        let mut r = TextPreprocessor::from_tokenizer_file("t", &tok)
            .maxlen(6)
            .padding_side(Side::Left)
            .truncation_side(Side::Left);
        assert_eq!(r.fit_transform(&frame()).unwrap(), a);
    }

    #[test]
    fn word_vectors_fill_the_matrix_with_the_mean_for_unknown_words() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("glove.txt");
        std::fs::write(&path, "the 1.0 2.0\ndress 3.0 4.0\nzebra 9 9\n").unwrap();
        let mut p = word(1).word_vectors(&path);
        p.fit(&frame()).unwrap();
        let m = p.embedding_matrix().unwrap();
        let vocab_size = p.meta().unwrap().vocab_size;
        assert_eq!(m.shape(), &[vocab_size, 2]);
        let row = |w: &str| m.row(p.token_to_id(w).unwrap() as usize).to_vec();
        assert_eq!(row("the"), vec![1.0, 2.0]);
        assert_eq!(row("dress"), vec![3.0, 4.0]);
        assert_eq!(row("lovely"), vec![2.0, 3.0]); // mean of the found vectors
        assert_eq!(m.row(0).to_vec(), vec![0.0, 0.0]); // padding
        std::fs::write(&path, "the 1.0 2.0\ndress 3.0\n").unwrap();
        let err = word(1).word_vectors(&path).fit(&frame()).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let df = df!("t" => [1i64, 2]).unwrap();
        assert!(matches!(
            word(1).fit(&df).unwrap_err(),
            PreprocessingError::WrongType { .. }
        ));
        assert!(matches!(
            word(1).fit(&frame().drop("t").unwrap()).unwrap_err(),
            PreprocessingError::MissingColumn { .. } | PreprocessingError::EmptyFrame
        ));
        let nulls = df!("t" => [None::<&str>, None]).unwrap();
        assert!(matches!(
            word(1).fit(&nulls).unwrap_err(),
            PreprocessingError::AllNull { .. }
        ));
        assert!(word(1).maxlen(0).fit(&frame()).is_err());
        assert!(matches!(
            word(1).transform(&frame()).unwrap_err(),
            PreprocessingError::NotFitted { .. }
        ));
        let err = TextPreprocessor::from_tokenizer_file("t", "/nonexistent/tokenizer.json")
            .fit(&frame())
            .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/tokenizer.json"),
            "{err}"
        );
    }
}
