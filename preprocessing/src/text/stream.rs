//! [`FitChunks`] for the text preprocessor: word counts merged chunk by chunk (word-level
//! vocabularies); a pretrained tokenizer needs no data.

use std::collections::HashMap;

use polars::prelude::*;

use super::{read_texts, TextPreprocessor, Vocab};
use crate::error::{PreprocessingError, Result};
use crate::macros::{bail, ensure};
use crate::stream::FitChunks;

/// What [`FitChunks`] accumulates for a [`TextPreprocessor`].
#[derive(Debug, Default)]
pub struct TextPartial {
    counts: HashMap<String, u64>,
    texts: usize,
    rows: usize,
}

impl TextPreprocessor {
    /// Whether the vocabulary is a WordPiece or BPE one, trained on all texts at once: fit it
    /// with [`fit_texts`](Self::fit_texts) rather than chunk by chunk.
    pub fn trains_subwords(&self) -> bool {
        matches!(self.vocab, Vocab::WordPiece { .. } | Vocab::Bpe { .. })
    }

    /// The non-null texts of this preprocessor's column in `df`, in row order (for
    /// [`fit_texts`](Self::fit_texts) over data read in parts). Errors: those of `fit`
    /// (missing column, wrong type, bytes that are not UTF-8).
    pub fn texts_of(&self, df: &DataFrame) -> Result<Vec<String>> {
        Ok(read_texts(df, &self.text_col)?
            .into_iter()
            .flatten()
            .map(str::to_owned)
            .collect())
    }

    /// Fits from the non-null texts of the column as they arrive (e.g. read page by page
    /// from files larger than memory; see [`texts_of`](Self::texts_of)), for every vocabulary:
    /// the same fitted state as `fit` on a frame holding these texts in this order. Memory is
    /// the vocabulary trainer's word counts, not the texts. Errors: those of `fit`, and
    /// [`AllNull`](PreprocessingError::AllNull) when `texts` is empty (unless the tokenizer is
    /// pretrained).
    pub fn fit_texts<I, S>(&mut self, texts: I) -> Result<()>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
    {
        self.validate()?;
        let seen = std::sync::atomic::AtomicUsize::new(0);
        let texts = texts.inspect(|_| {
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        let tokenizer = match self.vocab {
            Vocab::Pretrained { .. } => self.learn_tokenizer(&[])?,
            Vocab::Word {
                min_freq,
                max_vocab,
            } => {
                let mut counts: HashMap<String, u64> = HashMap::new();
                let mut texts = texts.peekable();
                while texts.peek().is_some() {
                    let chunk: Vec<S> = texts.by_ref().take(4_096).collect();
                    let refs: Vec<Option<&str>> = chunk.iter().map(|t| Some(t.as_ref())).collect();
                    for (word, n) in self.count_words(&refs)? {
                        *counts.entry(word).or_default() += n;
                    }
                }
                ensure!(
                    seen.load(std::sync::atomic::Ordering::Relaxed) > 0,
                    PreprocessingError::all_null(&self.text_col)
                );
                self.word_tokenizer_from_counts(&counts, min_freq, max_vocab)?
            }
            Vocab::WordPiece { .. } | Vocab::Bpe { .. } => {
                let tokenizer = self.learn_subword(texts)?;
                ensure!(
                    seen.load(std::sync::atomic::Ordering::Relaxed) > 0,
                    PreprocessingError::all_null(&self.text_col)
                );
                tokenizer
            }
        };
        self.set_tokenizer(tokenizer)
    }
}

impl FitChunks for TextPreprocessor {
    type Partial = TextPartial;

    /// Errors: a WordPiece or BPE vocabulary ([`InvalidConfig`](PreprocessingError::InvalidConfig),
    /// field `vocab`): their trainers take every text in one call — use
    /// [`fit_texts`](TextPreprocessor::fit_texts) with the texts as they arrive.
    fn begin(&self) -> Result<TextPartial> {
        self.validate()?;
        if matches!(self.vocab, Vocab::WordPiece { .. } | Vocab::Bpe { .. }) {
            bail!(
                config("vocab"),
                "`{}`: WordPiece and BPE vocabularies are trained on all texts in one call and \
                 cannot be fitted chunk by chunk; use `fit_texts` with the texts as they arrive",
                self.text_col
            );
        }
        Ok(TextPartial::default())
    }

    fn update(
        &self,
        p: &mut TextPartial,
        _pass: usize,
        chunk: &DataFrame,
        offset: usize,
    ) -> Result<()> {
        if chunk.height() == 0 {
            return Ok(());
        }
        let texts = read_texts(chunk, &self.text_col).map_err(|e| e.offset_rows(offset))?;
        p.texts += texts.iter().filter(|t| t.is_some()).count();
        if let Vocab::Word { .. } = self.vocab {
            for (word, n) in self.count_words(&texts)? {
                *p.counts.entry(word).or_default() += n;
            }
        }
        p.rows += chunk.height();
        Ok(())
    }

    fn finish(&mut self, p: TextPartial) -> Result<()> {
        ensure!(p.rows > 0, PreprocessingError::EmptyFrame);
        let tokenizer = match self.vocab {
            Vocab::Word {
                min_freq,
                max_vocab,
            } => {
                ensure!(p.texts > 0, PreprocessingError::all_null(&self.text_col));
                self.word_tokenizer_from_counts(&p.counts, min_freq, max_vocab)?
            }
            // a pretrained tokenizer is read from its file
            _ => self.learn_tokenizer(&[])?,
        };
        self.set_tokenizer(tokenizer)
    }
}
