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

impl FitChunks for TextPreprocessor {
    type Partial = TextPartial;

    /// Errors: a WordPiece or BPE vocabulary ([`InvalidConfig`](PreprocessingError::InvalidConfig),
    /// field `vocab`): their trainers need every text at once — fit them on a sample, or use a
    /// word-level or pretrained vocabulary.
    fn begin(&self) -> Result<TextPartial> {
        self.validate()?;
        if matches!(self.vocab, Vocab::WordPiece { .. } | Vocab::Bpe { .. }) {
            bail!(
                config("vocab"),
                "`{}`: WordPiece and BPE vocabularies are trained on all texts at once and \
                 cannot be fitted chunk by chunk; fit on a sample, or use a word-level or \
                 pretrained vocabulary",
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
