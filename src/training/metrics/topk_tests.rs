//! Top-k metrics by hand on tiny score rows: exclusion of training items, pessimistic ties,
//! several held-out items, the sampled protocol and the checks of an evaluation.
use super::*;

const TOL: f64 = 1e-9;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < TOL
}

/// `1 / log2(i + 2)`: the discount of rank `i`.
fn disc(i: usize) -> f64 {
    1.0 / ((i + 2) as f64).log2()
}

#[test]
fn training_items_leave_the_ranking() {
    let scores = [0.9f32, 0.8, 0.7, 0.6, 0.5];
    // item 0 is a training item: item 2 is second (behind item 1), not third
    let m = full_ranking_metrics(&scores, &[2], &[0], 2);
    assert_eq!((m.hit, m.recall, m.mrr), (1.0, 1.0, 0.5));
    assert!(close(m.ndcg, disc(1)));
    let m = full_ranking_metrics(&scores, &[2], &[0], 1);
    assert_eq!((m.hit, m.ndcg, m.recall, m.mrr), (0.0, 0.0, 0.0, 0.5));
    // without the exclusion item 2 is third
    let m = full_ranking_metrics(&scores, &[2], &[], 2);
    assert_eq!((m.hit, m.ndcg), (0.0, 0.0));
    assert!(close(m.mrr, 1.0 / 3.0));
    // a held-out item listed among the training items still counts
    let m = full_ranking_metrics(&scores, &[0], &[0], 1);
    assert_eq!((m.hit, m.ndcg, m.mrr), (1.0, 1.0, 1.0));
}

#[test]
fn ties_rank_the_held_out_item_last() {
    // items 0 and 2 tie with the held-out item 1: both are ranked ahead of it
    let m = full_ranking_metrics(&[0.5, 0.5, 0.5, 0.1], &[1], &[], 2);
    assert_eq!(m.hit, 0.0);
    assert!(close(m.mrr, 1.0 / 3.0));
    // a constant scorer: last among the n candidates
    let m = full_ranking_metrics(&[0.0; 10], &[4], &[], 9);
    assert_eq!(m.hit, 0.0);
    assert!(close(m.mrr, 0.1));
    // two tied held-out items (0 and 1) and a tied other item (2): ranks 1 and 2
    let m = full_ranking_metrics(&[0.5, 0.5, 0.5, 0.1], &[0, 1], &[], 2);
    assert_eq!((m.hit, m.recall, m.mrr), (1.0, 0.5, 0.5));
    assert!(close(m.ndcg, disc(1) / (disc(0) + disc(1))));
    // the sampled form: negatives equal to the positive are ahead of it
    let m = sampled_metrics(0.5, &[0.6, 0.5, 0.1], 1);
    assert_eq!(m.hit, 0.0);
    assert!(close(m.mrr, 1.0 / 3.0));
    let m = sampled_metrics(0.5, &[0.6, 0.5, 0.1], 3);
    assert_eq!((m.hit, m.recall), (1.0, 1.0));
    assert!(close(m.ndcg, 0.5));
}

#[test]
fn several_held_out_items() {
    // candidates after excluding item 1: 3 (0.8), 2 (0.3), 4 (0.2), 0 (0.1)
    let scores = [0.1f32, 0.9, 0.3, 0.8, 0.2];
    let m = full_ranking_metrics(&scores, &[3, 4], &[1], 3);
    assert_eq!((m.hit, m.recall, m.mrr), (1.0, 1.0, 1.0));
    assert!(close(m.ndcg, (disc(0) + disc(2)) / (disc(0) + disc(1))));
    assert!(close(m.ndcg, 1.5 / (1.0 + 1.0 / 3f64.log2())));
    let m = full_ranking_metrics(&scores, &[3, 4], &[1], 2);
    assert_eq!((m.hit, m.recall), (1.0, 0.5));
    assert!(close(m.ndcg, 1.0 / (disc(0) + disc(1))));
    // NDCG's ideal stops at k: with k = 1 one hit is perfect
    let m = full_ranking_metrics(&scores, &[3, 4], &[1], 1);
    assert_eq!((m.hit, m.ndcg, m.recall), (1.0, 1.0, 0.5));
}

/// Fixed scores, one row per user.
struct Fixed(Vec<Vec<f32>>);

impl Scorer for Fixed {
    fn n_items(&self) -> usize {
        self.0[0].len()
    }
    fn score_users(&self, users: &[usize]) -> Result<Tensor> {
        let rows: Vec<f32> = users.iter().flat_map(|&u| self.0[u].clone()).collect();
        Ok(Tensor::from_slice(&rows).view([users.len() as i64, -1]))
    }
}

fn pairs(n_users: usize, n_items: usize, p: &[(usize, usize)]) -> Interactions {
    let (u, i) = p.iter().copied().unzip();
    Interactions::from_pairs(n_users, n_items, u, i).unwrap()
}

/// 4 users, 5 items; user 3 has no held-out item.
fn task() -> RankingTask {
    let train = pairs(
        4,
        5,
        &[(0, 0), (0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (0, 1)],
    );
    let test = pairs(4, 5, &[(0, 2), (1, 0), (2, 4), (2, 1)]);
    RankingTask::new(&train, &test).unwrap()
}

#[test]
fn full_protocol_report() {
    let scorer = Fixed(vec![
        // user 0: items 0, 1 excluded; item 2 first of 2, 3, 4
        vec![9.0, 9.0, 0.5, 0.1, 0.2],
        // user 1: item 2 excluded; held-out 0 behind 1 and 3: rank 2
        vec![0.3, 0.9, 5.0, 0.4, 0.1],
        // user 2: 0, 3 excluded; held-out 4 and 1 vs 2: ranks 0 (item 4) and 2 (item 1)
        vec![9.0, 0.1, 0.2, 9.0, 0.3],
        vec![0.0; 5],
    ]);
    let r = task().evaluate(&scorer, Protocol::Full, 2).unwrap();
    assert_eq!((r.n_queries, r.n_items, r.k), (3, 5, 2));
    assert_eq!(r.protocol, Protocol::Full);
    let (u0, u1, u2) = (
        full_ranking_metrics(&scorer.0[0], &[2], &[0, 1], 2),
        full_ranking_metrics(&scorer.0[1], &[0], &[2], 2),
        full_ranking_metrics(&scorer.0[2], &[1, 4], &[0, 3], 2),
    );
    assert_eq!((u0.hit, u1.hit, u2.hit), (1.0, 0.0, 1.0));
    assert_eq!((u0.mrr, u2.mrr), (1.0, 1.0));
    assert!(close(u1.mrr, 1.0 / 3.0));
    assert!(close(u2.ndcg, 1.0 / (disc(0) + disc(1))));
    assert!(close(r.hit_rate, 2.0 / 3.0));
    assert!(close(r.recall, (1.0 + 0.0 + 0.5) / 3.0));
    assert!(close(r.mrr, (1.0 + 1.0 / 3.0 + 1.0) / 3.0));
    assert!(close(r.ndcg, (1.0 + 0.0 + u2.ndcg) / 3.0));
    assert!(r.to_string().contains("full ranking"), "{r}");
}

#[test]
fn sampled_protocol_is_seeded_and_draws_unseen_items() {
    let task = task();
    // training items score highest, the held-out items next, the rest 0: the held-out item
    // is first unless a training item (or another held-out item) is drawn as a negative
    let mut rows = vec![vec![0f32; 5]; 4];
    for (u, seen) in task.seen().iter().enumerate() {
        for &i in seen {
            rows[u][i] = 10.0;
        }
        for &i in &task.held_out()[u] {
            rows[u][i] = 1.0;
        }
    }
    let scorer = Fixed(rows);
    // user 2 has one item left to sample from (5 − 2 seen − 2 held out): too few for 2
    let err = task
        .evaluate(
            &scorer,
            Protocol::Sampled {
                n_negatives: 2,
                seed: 0,
            },
            1,
        )
        .unwrap_err();
    assert!(
        matches!(err, WideDeepError::InvalidConfig { ref field, .. } if field == "protocol.n_negatives")
    );
    let protocol = Protocol::Sampled {
        n_negatives: 1,
        seed: 3,
    };
    let r = task.evaluate(&scorer, protocol, 1).unwrap();
    // one query per held-out pair: 4
    assert_eq!(r.n_queries, 4);
    assert_eq!((r.hit_rate, r.mrr, r.ndcg, r.recall), (1.0, 1.0, 1.0, 1.0));
    assert!(
        r.to_string().contains("1 sampled negatives (seed 3)"),
        "{r}"
    );
    // a random scorer: the same seed gives the same report
    let noisy = Fixed(
        (0..4)
            .map(|u| (0..5).map(|i| ((u * 7 + i * 3) % 5) as f32).collect())
            .collect(),
    );
    let a = task.evaluate(&noisy, protocol, 1).unwrap();
    let b = task.evaluate(&noisy, protocol, 1).unwrap();
    assert_eq!(a, b);
}

#[test]
fn popularity_scores_and_evaluation_errors() {
    let train = pairs(2, 3, &[(0, 1), (1, 1), (1, 2)]);
    let pop = Popularity::new(&train);
    let s = pop.score_users(&[0, 1]).unwrap();
    assert_eq!(s.size(), [2, 3]);
    assert_eq!(
        Vec::<f32>::try_from(s.flatten(0, -1)).unwrap(),
        [0., 2., 1., 0., 2., 1.]
    );
    let task = task();
    let err = task.evaluate(&pop, Protocol::Full, 1).unwrap_err();
    assert!(matches!(err, WideDeepError::InputMismatch { ref input, .. } if input == "scorer"));
    let zeros = Fixed(vec![vec![0.0; 5]; 4]);
    let err = task.evaluate(&zeros, Protocol::Full, 0).unwrap_err();
    assert!(matches!(err, WideDeepError::InvalidConfig { ref field, .. } if field == "k"));
    let mut nan = vec![vec![0.0; 5]; 4];
    nan[1][3] = f32::NAN;
    let err = task.evaluate(&Fixed(nan), Protocol::Full, 1).unwrap_err();
    assert!(err.to_string().contains("user 1 for item 3"), "{err}");
    let other = pairs(4, 6, &[]);
    let err = RankingTask::new(&other, &pairs(4, 5, &[])).unwrap_err();
    assert!(matches!(err, WideDeepError::InputMismatch { .. }));
}
