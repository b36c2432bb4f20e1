//! Tests of the behaviour-sequence preprocessor, with hand-computed sequences.

use ndarray::array;
use polars::prelude::*;

use super::*;
use crate::contract::{assert_save_load, Fit, Transform};

/// Rows out of time order. Items a, b, c → codes 2, 3, 4; actions n, y → 2, 3; cat k1, k2 →
/// 2, 3. In time order, user 1 has rows 2, 3, 0, 6 (items a c b a = 2 4 3 2), user 2 rows 4,
/// 1 (c a = 4 2), user 3 row 5 only.
fn interactions() -> DataFrame {
    df!(
        "user" => [1i64, 2, 1, 1, 2, 3, 1],
        "item" => ["b", "a", "a", "c", "c", "b", "a"],
        "ts" => [30i64, 5, 10, 20, 1, 7, 40],
        "act" => ["y", "n", "n", "y", "y", "n", "n"],
        "cat" => ["k1", "k2", "k2", "k1", "k1", "k1", "k2"],
        "price" => [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
    )
    .unwrap()
}

fn spec(l: usize) -> SequenceSpec {
    SequenceSpec::new("user", "item", "ts", l)
        .action_col("act")
        .other_seq_cols(&["cat"])
}

#[test]
fn histories_are_sorted_by_time_left_padded_and_aligned() {
    let mut seq = SequencePreprocessor::new(spec(2));
    let data = seq.fit_transform(&interactions()).unwrap();
    // user 1: p=1 [a] → c, p=2 [a c] → b, p=3 [c b] → a; user 2: p=1 [c] → a
    assert_eq!(data.items, array![[0, 2], [2, 4], [4, 3], [0, 4]]);
    assert_eq!(data.target_item, array![4, 3, 2, 2]);
    assert_eq!(data.lengths, array![1, 2, 2, 1]);
    assert_eq!(data.rows, vec![3, 0, 6, 1]);
    assert_eq!(
        data.actions.as_ref().unwrap(),
        &array![[0, 2], [2, 3], [3, 3], [0, 3]]
    );
    assert_eq!(data.others, vec![array![[0, 3], [3, 2], [2, 2], [0, 2]]]);
    assert_eq!(data.n_samples(), 4);
    // the frame holds each sample's target row, for the tabular and target preprocessors
    let ts: Vec<i64> = data
        .frame
        .column("ts")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(ts, vec![20, 30, 40, 5]);
    let price = data.frame.column("price").unwrap().f64().unwrap();
    assert_eq!(price.get(1), Some(1.0));
    assert_eq!(
        data.report,
        SequenceReport {
            n_users: 3,
            n_samples: 4,
            dropped_users: 1,
            dropped_rows: 1,
        }
    );
    assert!(data.items.is_standard_layout());
    assert_save_load(&seq, &interactions(), &data);
}

#[test]
fn one_vocabulary_for_history_and_target_with_an_unseen_id() {
    let mut seq = SequencePreprocessor::new(SequenceSpec::new("user", "item", "ts", 3));
    seq.fit(&interactions()).unwrap();
    // zzz is unseen (1), null is unseen too; equal times keep the frame's order (b before a)
    let new = df!(
        "user" => ["u", "u", "u", "u", "v", "v"],
        "item" => [Some("a"), Some("zzz"), Some("c"), None, Some("b"), Some("a")],
        "ts" => [2.0f64, 1.0, 3.0, 4.0, 1.0, 1.0],
    )
    .unwrap();
    let data = seq.transform(&new).unwrap();
    // u in time order: zzz a c null = 1 2 4 1; v: b a = 3 2
    assert_eq!(
        data.items,
        array![[0, 0, 1], [0, 1, 2], [1, 2, 4], [0, 0, 3]]
    );
    assert_eq!(data.target_item, array![2, 4, 1, 2]);
    assert_eq!(data.rows, vec![0, 2, 3, 5]);
    assert_eq!(data.report.dropped_users, 0);
    assert_eq!(seq.item_of(2), Some("a"));
    assert_eq!(seq.item_of(4), Some("c"));
    assert_eq!(seq.item_of(UNSEEN_ID), None);
    assert_eq!(seq.item_of(PAD_ID), None);
    assert_eq!(seq.item_of(5), None);
}

#[test]
fn users_with_too_little_history_are_dropped_and_counted() {
    let mut seq = SequencePreprocessor::new(spec(2).min_history(2));
    let data = seq.fit_transform(&interactions()).unwrap();
    // only user 1 has more than two interactions: p=2 [a c] → b, p=3 [c b] → a
    assert_eq!(data.items, array![[2, 4], [4, 3]]);
    assert_eq!(data.target_item, array![3, 2]);
    assert_eq!(data.rows, vec![0, 6]);
    assert_eq!(
        data.report,
        SequenceReport {
            n_users: 3,
            n_samples: 2,
            dropped_users: 2,
            dropped_rows: 3,
        }
    );
    // min_history 0: every interaction is a sample, the first with an empty history
    let mut seq =
        SequencePreprocessor::new(SequenceSpec::new("user", "item", "ts", 2).min_history(0));
    let data = seq.fit_transform(&interactions()).unwrap();
    assert_eq!(data.n_samples(), 7);
    assert_eq!(data.items.row(0).to_vec(), vec![0, 0]);
    assert_eq!(data.lengths[0], 0);
}

#[test]
fn meta_sizes_the_embeddings() {
    let mut seq = SequencePreprocessor::new(spec(4)).embed_dim_for("cat", 3);
    seq.fit(&interactions()).unwrap();
    let meta = seq.meta().unwrap();
    assert_eq!(meta.max_seq_length, 4);
    // three items + padding + unseen; fastai_new: round(1.6 · 5^0.56) = 4
    assert_eq!(
        meta.items,
        CatColumnMeta {
            name: "item".into(),
            cardinality: 5,
            embed_dim: 4,
        }
    );
    let actions = meta.actions.unwrap();
    assert_eq!((actions.cardinality, actions.embed_dim), (4, 1));
    assert_eq!(
        (meta.others[0].cardinality, meta.others[0].embed_dim),
        (4, 3)
    );
}

#[test]
fn bad_input_is_a_typed_error_naming_the_column() {
    let df = interactions();
    let not_fitted = SequencePreprocessor::new(spec(2))
        .transform(&df)
        .unwrap_err();
    assert!(matches!(not_fitted, PreprocessingError::NotFitted { .. }));
    let err = SequencePreprocessor::new(SequenceSpec::new("user", "nope", "ts", 2))
        .fit(&df)
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::MissingColumn { ref column } if column == "nope"));
    let err = SequencePreprocessor::new(SequenceSpec::new("user", "item", "act", 2))
        .fit(&df)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::WrongType { ref column, .. } if column == "act"),
        "{err}"
    );
    let err = SequencePreprocessor::new(SequenceSpec::new("price", "item", "ts", 2))
        .fit(&df)
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::WrongType { ref column, .. } if column == "price"));
    let err = SequencePreprocessor::new(SequenceSpec::new("user", "item", "ts", 0))
        .fit(&df)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "max_seq_length")
    );
    let err = SequencePreprocessor::new(SequenceSpec::new("user", "user", "ts", 2))
        .fit(&df)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::DuplicateColumn { ref column, .. } if column == "user")
    );
    let err = SequencePreprocessor::new(spec(2))
        .embed_dim_for("price", 4)
        .fit(&df)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "embed_dim_for")
    );

    let nulls = df!(
        "user" => [Some(1i64), None, Some(1)],
        "item" => ["a", "b", "c"],
        "ts" => [1i64, 2, 3],
    )
    .unwrap();
    let err = SequencePreprocessor::new(SequenceSpec::new("user", "item", "ts", 2))
        .fit(&nulls)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::NullValue { ref column, row: 1 } if column == "user"),
        "{err}"
    );
    let nan = df!("user" => [1i64, 1], "item" => ["a", "b"], "ts" => [1.0f64, f64::NAN]).unwrap();
    let err = SequencePreprocessor::new(SequenceSpec::new("user", "item", "ts", 2))
        .fit(&nan)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::NonFinite { ref column, row: 1, .. } if column == "ts")
    );

    // nothing left: every user has a single interaction
    let single = df!("user" => [1i64, 2], "item" => ["a", "b"], "ts" => [1i64, 2]).unwrap();
    let mut seq = SequencePreprocessor::new(SequenceSpec::new("user", "item", "ts", 2));
    let err = seq.fit(&single).unwrap_err();
    assert!(
        matches!(
            err,
            PreprocessingError::NoSamples {
                users: 2,
                min_history: 1
            }
        ),
        "{err}"
    );
    seq.fit(&df).unwrap();
    let err = seq.transform(&single).unwrap_err();
    assert!(matches!(
        err,
        PreprocessingError::NoSamples { users: 2, .. }
    ));
    let err = seq.transform(&df.head(Some(0))).unwrap_err();
    assert!(matches!(
        err,
        PreprocessingError::NoSamples { users: 0, .. }
    ));
    assert!(matches!(
        SequencePreprocessor::new(spec(2)).fit(&df.head(Some(0))),
        Err(PreprocessingError::EmptyFrame)
    ));

    // histories too long to allocate
    let mut huge =
        SequencePreprocessor::new(SequenceSpec::new("user", "item", "ts", usize::MAX / 2));
    let err = huge.fit_transform(&df).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "max_seq_length"),
        "{err}"
    );

    // items fitted as strings and given as integers would all be unseen
    let ints = df!("user" => [1i64, 1], "item" => [1i64, 2], "ts" => [1i64, 2]).unwrap();
    let err = seq.transform(&ints).unwrap_err();
    assert!(matches!(err, PreprocessingError::DtypeChanged { ref column, .. } if column == "item"));
}
