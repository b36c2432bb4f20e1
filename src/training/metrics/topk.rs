//! Top-k evaluation of recommenders per user: HR@k, NDCG@k, Recall@k and MRR under two
//! protocols, named in every [`RankingReport`].
//!
//! * [`Protocol::Full`] (the honest one): each user's held-out items are ranked against
//!   **every** item of the catalogue, except the items the user interacted with in training
//!   (those are removed from the ranking: recommending them again is not the task). Metrics
//!   are means over the users with at least one held-out item.
//! * [`Protocol::Sampled`] (NCF's "1 positive + 99 negatives", cheaper and known to inflate
//!   and even reorder results; Krichene & Rendle 2020): each held-out `(user, item)` pair is
//!   ranked against `n_negatives` items drawn uniformly, without replacement, from the items
//!   that user has neither trained on nor held out (seeded). Metrics are means over the pairs.
//!
//! **Ties are pessimistic**: an item with the same score as a held-out item is ranked ahead
//! of it, so a model that scores everything alike gets no credit (among several held-out
//! items with equal scores, the one with the smaller index is ranked first). A NaN score is
//! an error.
//!
//! Per query, with `R` the held-out items and `rank(r)` the 0-based rank of `r`:
//! * `HR@k` = 1 when some `rank(r) < k`;
//! * `Recall@k` = `|{r : rank(r) < k}| / |R|`;
//! * `NDCG@k` = `Σ_{rank(r)<k} 1/log2(rank(r) + 2)` divided by the ideal
//!   `Σ_{i < min(|R|, k)} 1/log2(i + 2)` (binary relevance);
//! * `MRR` = `1 / (min_r rank(r) + 1)`, over the whole ranking (no cut-off).
//!
//! With one held-out item per user (leave-one-out), HR@k and Recall@k coincide.
use crate::error::{Result, WideDeepError};
use crate::macros::ensure;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};
use widedeep_preprocessing::interactions::Interactions;

/// How held-out items are ranked; part of every [`RankingReport`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Against all items, the user's training items excluded (the default).
    #[default]
    Full,
    /// Against `n_negatives` items sampled per held-out pair (seeded).
    Sampled {
        /// Sampled negatives per held-out item (99 in NCF's protocol).
        n_negatives: usize,
        /// Seed of the draws.
        seed: u64,
    },
}

impl Protocol {
    /// NCF's protocol: 99 sampled negatives per held-out item.
    pub fn sampled(seed: u64) -> Self {
        Self::Sampled {
            n_negatives: 99,
            seed,
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full => write!(f, "full ranking over all items, training items excluded"),
            Self::Sampled { n_negatives, seed } => write!(
                f,
                "sampled: 1 held-out item + {n_negatives} sampled negatives (seed {seed})"
            ),
        }
    }
}

/// The metrics of one query (a user, or a held-out pair for the sampled protocol).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueryMetrics {
    /// HR@k: 1 when a held-out item is in the top k.
    pub hit: f64,
    /// NDCG@k.
    pub ndcg: f64,
    /// Reciprocal rank of the best-ranked held-out item.
    pub mrr: f64,
    /// Recall@k.
    pub recall: f64,
}

/// Means of the metrics over the queries of one evaluation, with the protocol that produced
/// them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankingReport {
    /// The protocol.
    pub protocol: Protocol,
    /// The cut-off of HR, NDCG and Recall.
    pub k: usize,
    /// The number of items in the catalogue.
    pub n_items: usize,
    /// Queries averaged over: users with a held-out item (full), held-out pairs (sampled).
    pub n_queries: usize,
    /// HR@k.
    pub hit_rate: f64,
    /// NDCG@k.
    pub ndcg: f64,
    /// MRR (no cut-off).
    pub mrr: f64,
    /// Recall@k.
    pub recall: f64,
}

impl std::fmt::Display for RankingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = self.k;
        write!(
            f,
            "HR@{k} {:.4}  NDCG@{k} {:.4}  Recall@{k} {:.4}  MRR {:.4}  ({}; {} items, {} queries)",
            self.hit_rate,
            self.ndcg,
            self.recall,
            self.mrr,
            self.protocol,
            self.n_items,
            self.n_queries
        )
    }
}

/// Anything that scores every item for a batch of users: the retrieval models, the
/// [`Popularity`] baseline, or your own.
pub trait Scorer {
    /// The number of items scored.
    fn n_items(&self) -> usize;
    /// Every item's score for each user of `users` (dense indices); higher is better.
    ///
    /// # Shapes
    /// - returns `[users.len(), n_items]` float
    fn score_users(&self, users: &[usize]) -> Result<Tensor>;
}

/// The popularity baseline: every user gets the items with the most training interactions.
#[derive(Clone, Debug, PartialEq)]
pub struct Popularity {
    counts: Vec<f32>,
}

impl Popularity {
    /// Item popularity counted on `train`.
    pub fn new(train: &Interactions) -> Self {
        Self {
            counts: train.item_counts().into_iter().map(|c| c as f32).collect(),
        }
    }
}

impl Scorer for Popularity {
    fn n_items(&self) -> usize {
        self.counts.len()
    }

    fn score_users(&self, users: &[usize]) -> Result<Tensor> {
        let row = Tensor::from_slice(&self.counts);
        Ok(row.unsqueeze(0).repeat([users.len() as i64, 1]))
    }
}

/// The 0-based rank of each held-out item among the candidates (pessimistic ties: see the
/// module documentation). `excluded` holds candidates to leave out of the ranking (a held-out
/// item is never left out).
fn held_out_ranks(scores: &[f32], relevant: &[usize], excluded: &[usize]) -> Vec<usize> {
    let mut skip = vec![false; scores.len()];
    for &e in excluded {
        skip[e] = true;
    }
    let mut is_rel = vec![false; scores.len()];
    for &r in relevant {
        skip[r] = false;
        is_rel[r] = true;
    }
    relevant
        .iter()
        .map(|&r| {
            let s = scores[r];
            scores
                .iter()
                .enumerate()
                .filter(|&(j, &v)| {
                    j != r
                        && !skip[j]
                        && if is_rel[j] {
                            v > s || (v == s && j < r)
                        } else {
                            v >= s
                        }
                })
                .count()
        })
        .collect()
}

/// The metrics of one query from the ranks of its held-out items.
fn metrics_from_ranks(ranks: &[usize], k: usize) -> QueryMetrics {
    if ranks.is_empty() {
        return QueryMetrics::default();
    }
    let disc = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let hits = ranks.iter().filter(|&&r| r < k).count();
    let dcg: f64 = ranks.iter().filter(|&&r| r < k).map(|&r| disc(r)).sum();
    let idcg: f64 = (0..ranks.len().min(k)).map(disc).sum();
    let best = *ranks.iter().min().expect("non-empty");
    QueryMetrics {
        hit: f64::from(u8::from(hits > 0)),
        ndcg: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        mrr: 1.0 / (best + 1) as f64,
        recall: hits as f64 / ranks.len() as f64,
    }
}

/// The metrics of one user's full ranking: `scores` of every item, the held-out items
/// `relevant`, the training items `excluded` from the ranking.
pub fn full_ranking_metrics(
    scores: &[f32],
    relevant: &[usize],
    excluded: &[usize],
    k: usize,
) -> QueryMetrics {
    metrics_from_ranks(&held_out_ranks(scores, relevant, excluded), k)
}

/// The metrics of one sampled query: the held-out item's score `positive` and the sampled
/// negatives' `negatives`.
pub fn sampled_metrics(positive: f32, negatives: &[f32], k: usize) -> QueryMetrics {
    let rank = negatives.iter().filter(|&&v| v >= positive).count();
    metrics_from_ranks(&[rank], k)
}

/// Users scored per call of [`Scorer::score_users`].
const USER_CHUNK: usize = 512;

/// A ranking evaluation: each user's training items (left out of the ranking) and held-out
/// items (to find), in dense indices.
#[derive(Clone, Debug, PartialEq)]
pub struct RankingTask {
    n_items: usize,
    seen: Vec<Vec<usize>>,
    held_out: Vec<Vec<usize>>,
}

impl RankingTask {
    /// The task of finding `test`'s items for each user, `train`'s items excluded. Both must
    /// use the same indices (same `n_users` and `n_items`).
    pub fn new(train: &Interactions, test: &Interactions) -> Result<Self> {
        ensure!(
            train.n_users == test.n_users && train.n_items == test.n_items,
            input("test"),
            "{} users × {} items, but train has {} × {}",
            test.n_users,
            test.n_items,
            train.n_users,
            train.n_items
        );
        Ok(Self {
            n_items: train.n_items,
            seen: train.items_by_user(),
            held_out: test.items_by_user(),
        })
    }

    /// The number of items.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Each user's training items (sorted).
    pub fn seen(&self) -> &[Vec<usize>] {
        &self.seen
    }

    /// Each user's held-out items (sorted).
    pub fn held_out(&self) -> &[Vec<usize>] {
        &self.held_out
    }

    /// Scores `scorer` under `protocol` with cut-off `k` (≥ 1).
    ///
    /// Errors: `k == 0`, a scorer with another number of items or a wrong shape, a NaN score
    /// ([`WideDeepError::NonFiniteResult`] naming the user and item), and, for the sampled
    /// protocol, a user with fewer than `n_negatives` items left to sample from.
    pub fn evaluate(
        &self,
        scorer: &dyn Scorer,
        protocol: Protocol,
        k: usize,
    ) -> Result<RankingReport> {
        ensure!(k >= 1, config("k"), "must be at least 1");
        ensure!(
            scorer.n_items() == self.n_items,
            input("scorer"),
            "scores {} items, the task has {}",
            scorer.n_items(),
            self.n_items
        );
        let users: Vec<usize> = (0..self.held_out.len())
            .filter(|&u| !self.held_out[u].is_empty())
            .collect();
        let mut rng = match protocol {
            Protocol::Full => None,
            Protocol::Sampled { seed, .. } => Some(ChaCha8Rng::seed_from_u64(seed)),
        };
        let mut sum = QueryMetrics::default();
        let mut n_queries = 0usize;
        for chunk in users.chunks(USER_CHUNK) {
            let scores = self.scores_of(scorer, chunk)?;
            for (row, &u) in chunk.iter().enumerate() {
                let s = &scores[row * self.n_items..(row + 1) * self.n_items];
                let queries = match (protocol, rng.as_mut()) {
                    (Protocol::Sampled { n_negatives, .. }, Some(rng)) => {
                        self.sampled_queries(u, s, n_negatives, k, rng)?
                    }
                    _ => vec![full_ranking_metrics(s, &self.held_out[u], &self.seen[u], k)],
                };
                for q in queries {
                    sum.hit += q.hit;
                    sum.ndcg += q.ndcg;
                    sum.mrr += q.mrr;
                    sum.recall += q.recall;
                    n_queries += 1;
                }
            }
        }
        let mean = |v: f64| {
            if n_queries == 0 {
                f64::NAN
            } else {
                v / n_queries as f64
            }
        };
        Ok(RankingReport {
            protocol,
            k,
            n_items: self.n_items,
            n_queries,
            hit_rate: mean(sum.hit),
            ndcg: mean(sum.ndcg),
            mrr: mean(sum.mrr),
            recall: mean(sum.recall),
        })
    }

    /// The scores of `users` as one row-major `[users.len() × n_items]` vector, checked.
    fn scores_of(&self, scorer: &dyn Scorer, users: &[usize]) -> Result<Vec<f32>> {
        let t = scorer.score_users(users)?;
        let want = [users.len() as i64, self.n_items as i64];
        ensure!(
            t.size() == want,
            input("scores"),
            "the scorer returned {:?}, expected {want:?}",
            t.size()
        );
        let v = Vec::<f32>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1))?;
        if let Some(at) = v.iter().position(|x| x.is_nan()) {
            let (u, i) = (users[at / self.n_items], at % self.n_items);
            return Err(WideDeepError::NonFiniteResult {
                what: format!("score of user {u} for item {i}"),
                value: f64::NAN,
                reason: "the scorer returned NaN".into(),
            });
        }
        Ok(v)
    }

    /// One query per held-out item of user `u`: the item against `n_negatives` items drawn
    /// uniformly without replacement from those the user has neither seen nor held out.
    fn sampled_queries(
        &self,
        u: usize,
        scores: &[f32],
        n_negatives: usize,
        k: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<QueryMetrics>> {
        let mut taken = vec![false; self.n_items];
        for &i in self.seen[u].iter().chain(&self.held_out[u]) {
            taken[i] = true;
        }
        let pool: Vec<usize> = (0..self.n_items).filter(|&i| !taken[i]).collect();
        ensure!(
            pool.len() >= n_negatives,
            config("protocol.n_negatives"),
            "user {u} has only {} items left to sample {n_negatives} negatives from",
            pool.len()
        );
        let mut out = Vec::with_capacity(self.held_out[u].len());
        for &r in &self.held_out[u] {
            let negatives: Vec<f32> = rand::seq::index::sample(rng, pool.len(), n_negatives)
                .into_iter()
                .map(|j| scores[pool[j]])
                .collect();
            out.push(sampled_metrics(scores[r], &negatives, k));
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "topk_tests.rs"]
mod tests;
