//! The behaviour-sequence recommenders (DIN, the sequence Transformer) learn planted
//! sequence rules from synthetic interaction logs, through the `SequencePreprocessor`, the
//! `Trainer` and a saved and reloaded `Pipeline`.
//!
//! Items: 50, in 10 latent clusters of 5 (item `100 + 5c + k` is in cluster `c`), a cluster
//! unknown to the models.
//!
//! * Interests (DIN): each user likes one cluster; each interaction shows an item of the
//!   liked cluster (clicked) or of another cluster (not clicked), half and half. Whether the
//!   target item is clicked depends only on whether its cluster is the one the user's history
//!   shows clicks on: the item alone says nothing (AUC 0.5 for any model that ignores the
//!   history), the history and the target together say nearly everything.
//! * Next cluster (sequence Transformer): each interaction's item is in the cluster after the
//!   previous item's (`c + 1 mod 10`) with probability 0.9, else in a random cluster; the
//!   model predicts the cluster of the next item from the history alone (10 classes, chance
//!   0.1; the rule gives 0.91).
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use widedeep::explain::IgBaseline;
use widedeep::prelude::*;

const CLUSTERS: i64 = 10;
const PER_CLUSTER: i64 = 5;

fn item_in(cluster: i64, rng: &mut ChaCha8Rng) -> i64 {
    100 + PER_CLUSTER * cluster + rng.random_range(0..PER_CLUSTER)
}

/// Interaction logs of `n_users` users with `len` interactions each, rows shuffled (the
/// preprocessor sorts them by time), per [`Rule`].
fn logs(rule: Rule, n_users: i64, len: i64, seed: u64) -> DataFrame {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut user, mut item, mut ts, mut clicked, mut cluster, mut device) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for u in 0..n_users {
        let liked = rng.random_range(0..CLUSTERS);
        let mut c = rng.random_range(0..CLUSTERS);
        for t in 0..len {
            let click = match rule {
                Rule::Interest => {
                    let click = rng.random::<bool>();
                    c = if click {
                        liked
                    } else {
                        (liked + rng.random_range(1..CLUSTERS)) % CLUSTERS
                    };
                    click
                }
                Rule::NextCluster => {
                    if t > 0 {
                        c = if rng.random::<f64>() < 0.9 {
                            (c + 1) % CLUSTERS
                        } else {
                            rng.random_range(0..CLUSTERS)
                        };
                    }
                    false
                }
            };
            user.push(format!("u{seed}_{u}"));
            item.push(item_in(c, &mut rng));
            ts.push(1_000 * t + rng.random_range(0..1_000i64));
            clicked.push(i64::from(click));
            cluster.push(c);
            device.push(["mobile", "desktop", "tablet"][rng.random_range(0..3)]);
        }
    }
    let df = df!(
        "user" => user,
        "item" => item,
        "ts" => ts,
        "clicked" => clicked,
        "cluster" => cluster,
        "device" => device,
    )
    .unwrap();
    // a fixed shuffle of the rows
    let mut order: Vec<IdxSize> = (0..df.height() as IdxSize).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    df.take(&IdxCa::from_vec("".into(), order)).unwrap()
}

#[derive(Clone, Copy)]
enum Rule {
    Interest,
    NextCluster,
}

fn trainer(model: &WideDeepConfig, objective: Objective, epochs: usize, lr: f64) -> Trainer {
    let model = WideDeep::new(model, Device::Cpu).unwrap();
    let config = TrainerConfig::new(objective)
        .epochs(epochs)
        .batch_size(128)
        .lr(lr)
        .metrics([Metric::Accuracy, Metric::Auc])
        .seed(5)
        .verbose(0);
    Trainer::new(model, config).unwrap()
}

#[test]
fn din_learns_interests_and_its_pipeline_round_trips() {
    let (train_df, test_df) = (
        logs(Rule::Interest, 300, 16, 1),
        logs(Rule::Interest, 100, 16, 2),
    );
    let mut prep = Preprocessors::new()
        .seq(SequencePreprocessor::new(
            SequenceSpec::new("user", "item", "ts", 8).action_col("clicked"),
        ))
        .tab(TabPreprocessor::new(&["device"], &[]))
        .target(TargetEncoder::new("clicked", TargetKind::Binary));
    let train = prep.fit_transform(&train_df).unwrap();
    assert_eq!(train.len(), 300 * 15);
    let din = DinConfig::from_meta(&prep.seq_meta().unwrap(), Some(&prep.tab_meta().unwrap())).mlp(
        Some(MlpConfig::default().hidden_dims([32, 16]).dropout(0.0)),
    );
    let model = WideDeepConfig::new().deeptabular(din).seed(5);
    let mut trainer = trainer(&model, Objective::Binary, 10, 3e-3);
    let start = Instant::now();
    trainer.fit(&train, None).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let pipeline = Pipeline::new(prep, trainer);
    let scores = pipeline.evaluate(&test_df, None).unwrap();
    eprintln!(
        "DIN: test AUC {:.4}, accuracy {:.4} in {seconds:.1} s",
        scores["auc"], scores["accuracy"]
    );
    assert!(scores["auc"] >= 0.9, "{scores:?}");

    // the attention explains a recommendation: the target attends to the history items of
    // its own cluster more than to the others
    let test = pipeline.preprocessors.transform(&test_df).unwrap();
    let batch = test.slice(0, 400);
    let _ = pipeline.trainer.model().forward_t(&batch.input, false);
    let weights = pipeline.trainer.model().components()[0]
        .attention_weights()
        .unwrap()
        .remove(0);
    let seq = batch.input.seq.as_ref().unwrap();
    // codes: padding 0, unseen 1, item 100 + i → i + 2 (the ids sort as strings in order)
    let cluster_of =
        |t: &tch::Tensor| ((t - 2i64).to_kind(tch::Kind::Float) / PER_CLUSTER as f64).floor();
    let same = cluster_of(&seq.items).eq_tensor(&cluster_of(&seq.target_item).unsqueeze(1));
    let real = seq.items.ne(0);
    let mean = |mask: &tch::Tensor| {
        let m = mask.to_kind(tch::Kind::Float);
        (&weights * &m).sum(tch::Kind::Float).double_value(&[])
            / m.sum(tch::Kind::Float).double_value(&[])
    };
    let (on_same, on_other) = (
        mean(&same.logical_and(&real)),
        mean(&same.logical_not().logical_and(&real)),
    );
    eprintln!("DIN attention: {on_same:.3} on the target's cluster, {on_other:.3} elsewhere");
    assert!(on_same > 1.5 * on_other, "{on_same} vs {on_other}");

    // gradient attributions reach the history through the embedding split
    let method = Method::IntegratedGradients {
        steps: 32,
        baseline: IgBaseline::BackgroundRows,
    };
    let config = ExplainerConfig::new(method)
        .background_size(16)
        .verbose(0)
        .seed(1);
    let explanation = Explainer::new(
        pipeline.trainer.model(),
        &train.slice(0, 600).input,
        &config,
    )
    .unwrap()
    .explain(&test.slice(0, 20).input)
    .unwrap();
    eprintln!(
        "DIN integrated gradients: features {:?}, additivity gap {:.2e}",
        explanation.feature_names,
        explanation.relative_additivity_gap()
    );
    for name in ["target_item", "item", "item_mask", "clicked", "device"] {
        assert!(explanation.feature_index(name).is_some(), "{name}");
    }
    assert_eq!(explanation.n_features(), 5);
    assert!(explanation.relative_additivity_gap() < 0.05);

    // save, load, predict the same
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("din");
    pipeline.save(&dir).unwrap();
    let loaded = Pipeline::load(&dir, Device::Cpu).unwrap();
    let a = pipeline.predict_proba(&test_df).unwrap();
    let b = loaded.predict_proba(&test_df).unwrap();
    assert_eq!(a.size(), [100 * 15, 2]);
    assert!(a.equal(&b), "reloaded predictions differ");
    // one prediction per sample, in the order of the samples' rows
    let seq = pipeline.preprocessors.seq.as_ref().unwrap();
    let rows = seq.transform(&test_df).unwrap().rows;
    assert_eq!(rows.len(), 100 * 15);
    assert!(loaded
        .predict(&test_df)
        .unwrap()
        .equal(&pipeline.predict(&test_df).unwrap()));
}

#[test]
fn seq_transformer_learns_the_next_cluster() {
    let (train_df, test_df) = (
        logs(Rule::NextCluster, 300, 14, 3),
        logs(Rule::NextCluster, 100, 14, 4),
    );
    let mut prep = Preprocessors::new()
        .seq(SequencePreprocessor::new(SequenceSpec::new(
            "user", "item", "ts", 6,
        )))
        .target(TargetEncoder::new("cluster", TargetKind::Multiclass));
    let train = prep.fit_transform(&train_df).unwrap();
    let transformer = SeqTransformerConfig::from_meta(&prep.seq_meta().unwrap())
        .input_dim(16)
        .n_heads(2)
        .n_blocks(1)
        .attn_dropout(0.0)
        .ff_dropout(0.0)
        .pos_encoding_dropout(0.0);
    let model = WideDeepConfig::new().deeptabular(transformer).seed(5);
    let objective = prep.objective().unwrap();
    let mut trainer = trainer(&model, objective, 8, 3e-3);
    let start = Instant::now();
    trainer.fit(&train, None).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let test = prep.transform(&test_df).unwrap();
    let scores = trainer.evaluate(&test, Some(&[Metric::Accuracy])).unwrap();
    eprintln!(
        "SeqTransformer: test accuracy {:.4} in {seconds:.1} s",
        scores["accuracy"]
    );
    assert!(scores["accuracy"] >= 0.75, "{scores:?}");
}

/// Random interaction logs (4 users, 4 items and nulls, times with ties and some nulls, any
/// history length and minimum): the preprocessor's samples equal a brute-force reading of the
/// definition (each user's rows sorted by time then frame order, one sample per position with
/// at least `min_history` earlier rows, the last `L` of them left-padded), or the error is
/// one the input explains.
#[test]
fn sequences_match_a_brute_force_reference_on_random_logs() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    use widedeep::preprocessing::PreprocessingError;
    const ITEMS: [&str; 4] = ["a", "b", "c", "d"];
    type Row = (i64, Option<usize>, Option<i64>);

    fn check(rows: &[Row], l: usize, m: usize) -> std::result::Result<(), TestCaseError> {
        let df = df!(
            "user" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "item" => rows.iter().map(|r| r.1.map(|k| ITEMS[k])).collect::<Vec<_>>(),
            "ts" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )
        .unwrap();
        let mut users: Vec<Vec<usize>> = (0..4)
            .map(|u| (0..rows.len()).filter(|&r| rows[r].0 == u).collect())
            .filter(|v: &Vec<usize>| !v.is_empty())
            .collect();
        let mut seq =
            SequencePreprocessor::new(SequenceSpec::new("user", "item", "ts", l).min_history(m));
        let data = match seq.fit_transform(&df) {
            Ok(d) => d,
            Err(e) => {
                let explained = match &e {
                    PreprocessingError::NullValue { column, .. } => {
                        column == "ts" && rows.iter().any(|r| r.2.is_none())
                    }
                    PreprocessingError::AllNull { column } => {
                        column == "item" && rows.iter().all(|r| r.1.is_none())
                    }
                    PreprocessingError::NoSamples { users: n, .. } => {
                        *n == users.len() && users.iter().all(|u| u.len() <= m)
                    }
                    _ => false,
                };
                prop_assert!(explained, "unexpected error {e}");
                return Ok(());
            }
        };
        prop_assert!(rows.iter().all(|r| r.2.is_some()));
        // the definition, by brute force
        let mut expected: Vec<(usize, Vec<Option<usize>>)> = Vec::new();
        for user in &mut users {
            user.sort_by_key(|&r| (rows[r].2, r));
            for p in m..user.len() {
                let history = user[p.saturating_sub(l)..p].iter().map(|&r| rows[r].1);
                expected.push((user[p], history.collect()));
            }
        }
        prop_assert_eq!(data.n_samples(), expected.len());
        prop_assert_eq!(data.frame.height(), expected.len());
        prop_assert_eq!(
            data.report.dropped_users,
            users.iter().filter(|u| u.len() <= m).count()
        );
        for (i, (row, history)) in expected.iter().enumerate() {
            prop_assert_eq!(data.rows[i], *row);
            prop_assert_eq!(data.lengths[i] as usize, history.len());
            let codes = data.items.row(i);
            let pad = l - history.len();
            prop_assert!(codes.iter().take(pad).all(|&c| c == 0), "{codes:?}");
            for (j, item) in history.iter().enumerate() {
                let code = codes[pad + j];
                prop_assert_eq!(seq.item_of(code), item.map(|k| ITEMS[k]));
                prop_assert!(code >= 1 && (item.is_some() || code == 1));
            }
            let target = data.target_item[i];
            prop_assert_eq!(seq.item_of(target), rows[*row].1.map(|k| ITEMS[k]));
        }
        Ok(())
    }

    let cases = std::env::var("WIDEDEEP_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let row = (
        0i64..4,
        proptest::option::weighted(0.9, 0usize..4),
        proptest::option::weighted(0.98, 0i64..6),
    );
    let strategy = (proptest::collection::vec(row, 1..30), 1usize..4, 0usize..3);
    runner
        .run(&strategy, |(rows, l, m)| check(&rows, l, m))
        .unwrap();
}
