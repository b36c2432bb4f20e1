//! Token ids of texts: the tokenizer, or a direct split and lookup for plain-ASCII texts and
//! a word-level vocabulary; then padding and truncation to `maxlen`.

use ndarray::Array2;
use rayon::prelude::*;

use super::{tok_err, Side, TextData, TextFitted, TextPreprocessor, Vocab, UNK_TOKEN};
use crate::error::Result;

impl TextPreprocessor {
    /// Token ids `[texts.len(), maxlen]` and lengths of `texts` with the fitted tokenizer.
    pub(super) fn encode(&self, fitted: &TextFitted, texts: Vec<&str>) -> Result<TextData> {
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
}

/// Whether `t` can skip the tokenizer: plain ASCII (normalisation is then just lowercasing) and
/// no special-token text.
pub(super) fn fast_eligible(t: &str) -> bool {
    t.is_ascii() && !t.contains("[PAD]") && !t.contains("[UNK]")
}

/// Splits ASCII text like the `Whitespace` pre-tokenizer (`\w+|[^\w\s]+`).
pub(super) fn split_ascii_words(t: &str, mut f: impl FnMut(&str)) {
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
