//! Splits, negative sampling and id indices on small hand-checked frames.
use polars::prelude::*;

use super::*;
use crate::error::PreprocessingError;
use crate::{Persist, Transform};

fn ints(df: &DataFrame, name: &str) -> Vec<i64> {
    let c = df.column(name).unwrap().cast(&DataType::Int64).unwrap();
    c.i64().unwrap().into_no_null_iter().collect()
}

fn strs(df: &DataFrame, name: &str) -> Vec<String> {
    let c = df.column(name).unwrap().cast(&DataType::String).unwrap();
    let v = c.str().unwrap().iter().flatten();
    v.map(str::to_owned).collect()
}

/// Users 1 (4 interactions), 2 (2), 3 (1); row ids 0..7 in `row`.
fn log() -> DataFrame {
    df!(
        "user_id" => [1i32, 2, 1, 3, 1, 2, 1],
        "item" => ["a", "b", "c", "a", "d", "a", "e"],
        "timestamp" => [50i64, 7, 10, 3, 40, 9, 40],
        "row" => [0i64, 1, 2, 3, 4, 5, 6],
    )
    .unwrap()
}

#[test]
fn leave_last_out_holds_out_each_users_latest_rows() {
    let df = log();
    let (train, test) = leave_last_out(&df, "user_id", "timestamp", 1).unwrap();
    // user 1: latest is row 0 (t 50); user 2: row 5 (t 9); user 3 has one row: stays in train
    assert_eq!(ints(&test, "row"), [0, 5]);
    assert_eq!(ints(&train, "row"), [1, 2, 3, 4, 6]);
    assert_eq!(train.get_column_names(), df.get_column_names());
    // n = 2: user 1's rows in time order are 2 (t 10), 4 and 6 (both t 40: the later row is
    // the later interaction), 0 (t 50), so rows 6 and 0 are held out; user 2 has only two
    // rows: it stays wholly in train
    let (train, test) = leave_last_out(&df, "user_id", "timestamp", 2).unwrap();
    assert_eq!(ints(&test, "row"), [0, 6]);
    assert_eq!(ints(&train, "row"), [1, 2, 3, 4, 5]);
    // n = 3 takes user 1's three latest: rows 0, 4 and 6
    let (_, test) = leave_last_out(&df, "user_id", "timestamp", 3).unwrap();
    assert_eq!(ints(&test, "row"), [0, 4, 6]);
}

#[test]
fn leave_last_out_reads_string_users_and_float_times() {
    let df = df!(
        "u" => ["x", "y", "x", "x"],
        "t" => [1.5f64, 0.0, -2.0, 1.25],
        "row" => [0i64, 1, 2, 3],
    )
    .unwrap();
    let (train, test) = leave_last_out(&df, "u", "t", 1).unwrap();
    assert_eq!(ints(&test, "row"), [0]);
    assert_eq!(ints(&train, "row"), [1, 2, 3]);
}

#[test]
fn split_errors_name_the_column() {
    let df = log();
    let err = leave_last_out(&df, "user_id", "timestamp", 0).unwrap_err();
    assert!(matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "n"));
    let err = leave_last_out(&df, "nope", "timestamp", 1).unwrap_err();
    assert!(matches!(err, PreprocessingError::MissingColumn { ref column } if column == "nope"));
    let err = leave_last_out(&df, "user_id", "item", 1).unwrap_err();
    assert!(matches!(err, PreprocessingError::WrongType { ref column, .. } if column == "item"));
    let bad = df!("u" => [Some(1i64), None], "t" => [1i64, 2]).unwrap();
    let err = leave_last_out(&bad, "u", "t", 1).unwrap_err();
    assert!(matches!(err, PreprocessingError::NullValue { ref column, row: 1 } if column == "u"));
    let bad = df!("u" => [1i64, 1], "t" => [1.0f64, f64::NAN]).unwrap();
    let err = time_split(&bad, "t", 0).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::NonFinite { ref column, row: 1, .. } if column == "t")
    );
    let bad = df!("u" => [1i64, 1], "t" => [Some(1i64), None]).unwrap();
    let err = leave_last_out(&bad, "u", "t", 1).unwrap_err();
    assert!(matches!(err, PreprocessingError::NullValue { ref column, row: 1 } if column == "t"));
}

#[test]
fn time_split_cuts_at_the_cutoff() {
    let df = log();
    let (train, test) = time_split(&df, "timestamp", 40).unwrap();
    assert_eq!(ints(&train, "row"), [1, 2, 3, 5]);
    assert_eq!(ints(&test, "row"), [0, 4, 6]);
    let (train, test) = time_split(&df, "timestamp", 0).unwrap();
    assert_eq!((train.height(), test.height()), (0, 7));
}

#[test]
fn negatives_are_never_the_users_items() {
    let df = log();
    for sampling in [Sampling::Uniform, Sampling::Popularity] {
        let out = negative_sampling(&df, "user_id", "item", 3, sampling, 11).unwrap();
        assert_eq!(out.get_column_names(), ["user_id", "item", LABEL]);
        assert_eq!(out.column("user_id").unwrap().dtype(), &DataType::Int32);
        assert_eq!(out.height(), 7 * 4);
        let (users, items, labels) = (ints(&out, "user_id"), strs(&out, "item"), ints(&out, LABEL));
        let (in_users, in_items) = (ints(&df, "user_id"), strs(&df, "item"));
        let of_user = |u: i64| -> Vec<&String> {
            in_users
                .iter()
                .zip(&in_items)
                .filter(|(x, _)| **x == u)
                .map(|(_, i)| i)
                .collect()
        };
        for (g, chunk) in labels.chunks(4).enumerate() {
            // the positive first, then three negatives of the same user
            assert_eq!(chunk, [1, 0, 0, 0]);
            assert_eq!(users[4 * g], in_users[g]);
            assert_eq!(items[4 * g], in_items[g]);
            for k in 1..4 {
                assert_eq!(users[4 * g + k], in_users[g]);
                let item = &items[4 * g + k];
                assert!(!of_user(in_users[g]).contains(&item), "{item} for {g}");
                assert!(in_items.contains(item));
            }
        }
        // seeded: the same seed gives the same frame, another seed another
        let again = negative_sampling(&df, "user_id", "item", 3, sampling, 11).unwrap();
        assert!(out.equals(&again));
        let other = negative_sampling(&df, "user_id", "item", 3, sampling, 12).unwrap();
        assert!(!out.equals(&other));
    }
}

#[test]
fn popularity_sampling_follows_the_counts() {
    // user 0 has item 0; items 1..=3 have 1, 2 and 6 interactions from users 10..; user 9
    // adds one to items 0..=2: the negatives of user 0's positive are items 1, 2, 3 in
    // proportion 2 : 3 : 6
    let mut users = vec![0i64];
    let mut items = vec![0i64];
    for (item, n) in [(1i64, 1), (2, 2), (3, 6)] {
        for k in 0..n {
            users.push(10 + k);
            items.push(item);
        }
    }
    // user 9 interacted with items 0..=2: its only negative is item 3
    users.extend([9, 9, 9]);
    items.extend([0, 1, 2]);
    let df = df!("u" => users, "i" => items).unwrap();
    let out = negative_sampling(&df, "u", "i", 9000, Sampling::Popularity, 3).unwrap();
    let got = ints(&out, "i");
    let mut freq = [0usize; 4];
    for &j in &got[1..9001] {
        freq[j as usize] += 1;
    }
    assert_eq!(freq[0], 0);
    for (j, share) in [(1, 2.0 / 11.0), (2, 3.0 / 11.0), (3, 6.0 / 11.0)] {
        let f = freq[j] as f64 / 9000.0;
        assert!((f - share).abs() < 0.02, "item {j}: {f} vs {share}");
    }
    // user 9 (rows 10..=12 of the input): every negative is item 3, found by the fallback
    let start = 10 * 9001;
    for g in 0..3 {
        let negs = &got[start + g * 9001 + 1..start + (g + 1) * 9001];
        assert!(negs.iter().all(|&j| j == 3));
    }
    let uniform = negative_sampling(&df, "u", "i", 9000, Sampling::Uniform, 3).unwrap();
    let got = ints(&uniform, "i");
    let share3 = got[1..9001].iter().filter(|&&j| j == 3).count() as f64 / 9000.0;
    assert!((share3 - 1.0 / 3.0).abs() < 0.02, "{share3}");
}

#[test]
fn negative_sampling_errors() {
    let df = log();
    let err = negative_sampling(&df, "user_id", "item", 0, Sampling::Uniform, 0).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "n_neg_per_pos")
    );
    let renamed = df.clone().rename("item", "label".into()).unwrap().clone();
    let err = negative_sampling(&renamed, "user_id", "label", 1, Sampling::Uniform, 0).unwrap_err();
    assert!(matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "label"));
    let err = negative_sampling(&df, "user_id", "nope", 1, Sampling::Uniform, 0).unwrap_err();
    assert!(matches!(err, PreprocessingError::MissingColumn { ref column } if column == "nope"));
    // user 7 interacted with both items
    let all = df!("u" => [7i64, 7, 8], "i" => ["a", "b", "a"]).unwrap();
    let err = negative_sampling(&all, "u", "i", 1, Sampling::Uniform, 0).unwrap_err();
    assert!(err.to_string().contains("user 7"), "{err}");
}

#[test]
fn id_index_maps_ids_both_ways() {
    let df = df!("movie_id" => [30i32, 2, 30, 10]).unwrap();
    let index = IdIndex::fitted_on(&df, "movie_id").unwrap();
    assert_eq!(index.keys().unwrap(), ["2", "10", "30"]);
    assert_eq!(index.len(), 3);
    assert_eq!(index.index_of("10"), Some(1));
    assert_eq!(index.key(0), Some("2"));
    assert_eq!(index.key(3), None);
    // the same ids as i64, with an unseen one and a null
    let new = df!("movie_id" => [Some(30i64), Some(7), None]).unwrap();
    assert_eq!(index.transform(&new).unwrap(), [Some(2), None, None]);
    // string ids sort by string form
    let s = IdIndex::fitted_on(&df!("u" => ["b", "a", "c"]).unwrap(), "u").unwrap();
    assert_eq!(s.keys().unwrap(), ["a", "b", "c"]);
    // a dtype class change is an error, not every row unseen
    let err = index
        .transform(&df!("movie_id" => ["2"]).unwrap())
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::DtypeChanged { .. }));
    let err = IdIndex::new("x").transform(&df).unwrap_err();
    assert!(matches!(err, PreprocessingError::NotFitted { .. }));
    let err = IdIndex::fitted_on(&df!("u" => [Some(1i64), None]).unwrap(), "u").unwrap_err();
    assert!(matches!(err, PreprocessingError::NullValue { row: 1, .. }));
    // JSON round trip, with the lookup rebuilt
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.json");
    index.save(&path).unwrap();
    let loaded = IdIndex::load(&path).unwrap();
    assert_eq!(loaded, index);
    assert_eq!(loaded.index_of("30"), Some(2));
}

#[test]
fn interactions_in_dense_indices() {
    let df = log();
    let users = IdIndex::fitted_on(&df, "user_id").unwrap();
    let items = IdIndex::fitted_on(&df, "item").unwrap();
    let pairs = Interactions::from_frame(&df, &users, &items).unwrap();
    assert_eq!((pairs.n_users, pairs.n_items, pairs.n_dropped), (3, 5, 0));
    // users 1, 2, 3 → 0, 1, 2; items a..e → 0..4
    assert_eq!(pairs.users, [0, 1, 0, 2, 0, 1, 0]);
    assert_eq!(pairs.items, [0, 1, 2, 0, 3, 0, 4]);
    assert_eq!(
        pairs.items_by_user(),
        vec![vec![0, 2, 3, 4], vec![0, 1], vec![0]]
    );
    assert_eq!(pairs.item_counts(), [3, 1, 1, 1, 1]);
    let new = df!("user_id" => [1i64, 9, 2], "item" => ["e", "a", "z"]).unwrap();
    let pairs = Interactions::from_frame(&new, &users, &items).unwrap();
    assert_eq!((pairs.users.as_slice(), pairs.n_dropped), (&[0][..], 2));
    assert!(Interactions::from_pairs(2, 2, vec![0, 2], vec![0, 1]).is_err());
    assert!(Interactions::from_pairs(2, 2, vec![0], vec![0, 1]).is_err());
    assert_eq!(
        Interactions::from_pairs(2, 3, vec![1], vec![2])
            .unwrap()
            .len(),
        1
    );
}
