//! Learning the vocabulary: a word-level one counted here, a WordPiece / BPE one trained by the
//! tokenizers crate, or a pretrained `tokenizer.json`.

use std::collections::HashMap;

use rayon::prelude::*;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::{Lowercase, Sequence, StripAccents, NFC, NFD};
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::{
    AddedToken, NormalizedString, Normalizer, NormalizerWrapper, OffsetReferential, OffsetType,
    PreTokenizedString, PreTokenizer, Tokenizer,
};

use super::encode::{fast_eligible, split_ascii_words};
use super::{tok_err, TextPreprocessor, Vocab, PAD_TOKEN, UNK_TOKEN};
use crate::error::{PreprocessingError, Result};
use crate::macros::ensure;

/// `[PAD]` and `[UNK]`, the special tokens of the vocabularies trained here (ids 0 and 1).
pub(super) fn special_tokens() -> Vec<AddedToken> {
    vec![
        AddedToken::from(PAD_TOKEN, true),
        AddedToken::from(UNK_TOKEN, true),
    ]
}

/// `(model, trainer)` of a sub-word vocabulary: the tokenizers crate's `$model` with the
/// `[UNK]` token, and its `$trainer` with the special tokens.
macro_rules! subword {
    ($model:ident, $trainer:ident, $min_freq:expr, $vocab_size:expr) => {
        (
            ModelWrapper::from(
                $model::builder()
                    .unk_token(UNK_TOKEN.into())
                    .build()
                    .map_err(tok_err)?,
            ),
            TrainerWrapper::from(
                $trainer::builder()
                    .min_frequency($min_freq)
                    .vocab_size($vocab_size)
                    .show_progress(false)
                    .special_tokens(special_tokens())
                    .build(),
            ),
        )
    };
}

impl TextPreprocessor {
    /// The normaliser of trained vocabularies: accents stripped and/or lowercase, as
    /// configured (`None` when both are off).
    pub(super) fn normalizer(&self) -> Option<Sequence> {
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

    /// A tokenizer around `model` with the configured normaliser and the `Whitespace`
    /// pre-tokenizer.
    fn with_pipeline(&self, model: impl Into<ModelWrapper>) -> Tokenizer {
        let mut tokenizer = Tokenizer::new(model);
        if let Some(n) = self.normalizer() {
            tokenizer.with_normalizer(Some(n));
        }
        tokenizer.with_pre_tokenizer(Some(Whitespace {}));
        tokenizer
    }

    /// The tokenizer of the configured [`Vocab`]: read from the pretrained `tokenizer.json`,
    /// or trained on the non-null `texts` (one at least, else
    /// [`AllNull`](PreprocessingError::AllNull)). No padding or truncation is set yet.
    pub(super) fn learn_tokenizer(&self, texts: &[Option<&str>]) -> Result<Tokenizer> {
        if let Vocab::Pretrained { path } = &self.vocab {
            return Tokenizer::from_file(path).map_err(|e| PreprocessingError::BadFile {
                path: path.clone(),
                reason: e.to_string(),
            });
        }
        ensure!(
            texts.iter().any(Option::is_some),
            PreprocessingError::all_null(&self.text_col)
        );
        match self.vocab {
            Vocab::Word {
                min_freq,
                max_vocab,
            } => self.word_tokenizer(texts, min_freq, max_vocab),
            _ => self.learn_subword(texts.iter().flatten()),
        }
    }

    /// The tokenizer of the configured sub-word vocabulary (WordPiece or BPE) trained on
    /// `texts` as they arrive: the trainer keeps word counts, not the texts (what
    /// [`learn_tokenizer`](Self::learn_tokenizer) uses for these vocabularies). Errors with [`InvalidConfig`](PreprocessingError::InvalidConfig) for other
    /// vocabularies.
    pub(super) fn learn_subword<I, S>(&self, texts: I) -> Result<Tokenizer>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
    {
        let (model, mut trainer) = match self.vocab {
            Vocab::WordPiece {
                min_freq,
                vocab_size,
            } => subword!(WordPiece, WordPieceTrainer, min_freq, vocab_size),
            Vocab::Bpe {
                min_freq,
                vocab_size,
            } => subword!(BPE, BpeTrainer, min_freq, vocab_size),
            _ => {
                return Err(PreprocessingError::InvalidConfig {
                    field: "vocab".into(),
                    reason: "not a sub-word vocabulary".into(),
                })
            }
        };
        let mut tokenizer = self.with_pipeline(model);
        tokenizer.train(&mut trainer, texts).map_err(tok_err)?;
        Ok(tokenizer)
    }

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
        let counts = self.count_words(texts)?;
        self.word_tokenizer_from_counts(&counts, min_freq, max_vocab)
    }

    /// How often each word (after normalisation and whitespace pre-tokenization) occurs in
    /// the non-null `texts`.
    pub(super) fn count_words(&self, texts: &[Option<&str>]) -> Result<HashMap<String, u64>> {
        let normalizer = self.normalizer();
        texts
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
                    if let Some(n) = &normalizer {
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
            })
    }

    /// The word-level tokenizer of `counts` (see [`word_tokenizer`](Self::word_tokenizer)).
    pub(super) fn word_tokenizer_from_counts(
        &self,
        counts: &HashMap<String, u64>,
        min_freq: u64,
        max_vocab: usize,
    ) -> Result<Tokenizer> {
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
        let mut tokenizer = self.with_pipeline(model);
        tokenizer.add_special_tokens(&special_tokens());
        Ok(tokenizer)
    }
}
