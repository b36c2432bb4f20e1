//! Training a [`TwoTower`] retrieval model on implicit feedback with in-batch negatives.
//!
//! Each batch holds `B` `(user, item)` interactions. Every user is scored against the `B`
//! items of the batch (its own positive and the other rows' positives, which act as
//! negatives) plus `M` optional extra negatives drawn for the whole batch, and the loss is the
//! softmax cross-entropy of its positive (a sampled softmax).
//!
//! In-batch negatives are drawn in proportion to popularity, which biases the model against
//! popular items; the **log-Q correction** (Yi et al. 2019) subtracts from each candidate's
//! logit the log of how often it is expected among the candidates:
//! `logit(u, j) = s(u, j) / τ − log q_j` with `q_j = p_j + (M / B) e_j`, `p_j` item `j`'s
//! share of the training interactions and `e_j` its probability under the extra sampler
//! (`1 / n_items` uniform, `p_j` by popularity). Without extra negatives `q_j = p_j`.
//! Accidental hits — a candidate equal to the row's own positive, elsewhere in the batch —
//! are masked out of that row's softmax.
use crate::error::{Result, WideDeepError};
use crate::macros::ensure;
use crate::models::rec::TwoTower;
use crate::training::metrics::topk::Scorer;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};
use widedeep_preprocessing::interactions::{Interactions, Sampling};

/// Settings of [`Retriever::fit`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetrievalConfig {
    /// Passes over the interactions (20).
    pub epochs: usize,
    /// Interactions per batch, at least 2 (256): the in-batch negatives of each row are the
    /// other `batch_size − 1` positives.
    pub batch_size: usize,
    /// Adam's learning rate (0.01).
    pub lr: f64,
    /// Adam's L2 weight decay (0).
    pub weight_decay: f64,
    /// Subtract `log q_j` from each candidate's logit (true; see the module documentation).
    pub log_q_correction: bool,
    /// Extra negatives drawn per batch and shared by its rows (0).
    pub extra_negatives: usize,
    /// How the extra negatives are drawn (uniformly by default).
    pub extra_sampling: Sampling,
    /// Seed of the shuffling, the extra negatives and dropout.
    pub seed: u64,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 256,
            lr: 0.01,
            weight_decay: 0.0,
            log_q_correction: true,
            extra_negatives: 0,
            extra_sampling: Sampling::Uniform,
            seed: 1,
        }
    }
}

impl RetrievalConfig {
    crate::macros::setters!(
        epochs: usize,
        batch_size: usize,
        lr: f64,
        weight_decay: f64,
        log_q_correction: bool,
        extra_negatives: usize,
        extra_sampling: Sampling,
        seed: u64,
    );

    /// Checks every field; errors name it (`retrieval.batch_size`, …).
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.epochs >= 1,
            config("retrieval.epochs"),
            "must be at least 1"
        );
        ensure!(
            self.batch_size >= 2,
            config("retrieval.batch_size"),
            "must be at least 2 (a row's negatives are the other rows' items), got {}",
            self.batch_size
        );
        ensure!(
            self.lr.is_finite() && self.lr > 0.0,
            config("retrieval.lr"),
            "must be finite and > 0, got {}",
            self.lr
        );
        ensure!(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            config("retrieval.weight_decay"),
            "must be finite and ≥ 0, got {}",
            self.weight_decay
        );
        Ok(())
    }
}

/// The sampled-softmax loss of a batch with in-batch (and extra) negatives: the mean over rows
/// of `−log softmax(logits_i)[i]`, where `logits_i[j] = users_i · items_j / temperature −
/// log_q[j]` and candidates `j ≠ i` with the same item id as row `i`'s positive are masked.
///
/// # Shapes
/// - `users`: `[B, d]`, row `i` the user of interaction `i`
/// - `items`: `[B + M, d]`: the `B` positives (row `i` is user `i`'s), then `M` extra negatives
/// - `item_ids`: `[B + M]` i64, the ids of `items` (for the accidental-hit mask)
/// - `log_q`: `[B + M]` or `None` (no correction)
/// - returns a scalar
pub fn sampled_softmax_loss(
    users: &Tensor,
    items: &Tensor,
    item_ids: &Tensor,
    log_q: Option<&Tensor>,
    temperature: f64,
) -> Tensor {
    let b = users.size()[0];
    let n = items.size()[0];
    let mut logits = users.matmul(&items.tr()) / temperature;
    if let Some(lq) = log_q {
        logits -= lq.unsqueeze(0);
    }
    let positives = item_ids.narrow(0, 0, b).unsqueeze(1);
    let same = positives.eq_tensor(&item_ids.unsqueeze(0));
    let own = Tensor::eye_m(b, n, (Kind::Bool, users.device()));
    let hits = same.logical_and(&own.logical_not());
    let logits = logits.masked_fill(&hits, f64::NEG_INFINITY);
    let target = Tensor::arange(b, (Kind::Int64, users.device()));
    logits.cross_entropy_for_logits(&target)
}

/// The log-Q values `log q_j` of candidates `ids` (see the module documentation): `p` the
/// items' shares of the interactions, `extra_share` the expected number of extra-sampler
/// draws of item `j` per batch row, `(M / B) e_j`.
fn log_q(p: &[f64], ids: &[i64], extra_share: impl Fn(usize) -> f64) -> Tensor {
    let v: Vec<f32> = ids
        .iter()
        .map(|&j| (p[j as usize] + extra_share(j as usize)).ln() as f32)
        .collect();
    Tensor::from_slice(&v)
}

/// A trained [`TwoTower`] with the items each user interacted with in training, which
/// [`Retriever::recommend`] leaves out.
#[derive(Debug)]
pub struct Retriever {
    model: TwoTower,
    config: RetrievalConfig,
    seen: Vec<Vec<usize>>,
    history: Vec<f64>,
}

/// What [`Retriever::save`] writes beside the model.
#[derive(Serialize, Deserialize)]
struct Saved {
    config: RetrievalConfig,
    history: Vec<f64>,
    seen: Vec<Vec<usize>>,
}

const RETRIEVER_FILE: &str = "retriever.json";

impl Retriever {
    /// Trains `model` on `train` (dense user and item indices of the model's sizes).
    /// Reproducible for a given `config.seed` and model seed: it holds
    /// [`crate::torch_rng_lock`] and seeds libtorch (dropout) from `config.seed`.
    ///
    /// Errors: an invalid `config`, interactions of other sizes than the model's or none at
    /// all, a non-finite loss ([`WideDeepError::NonFiniteLoss`]).
    pub fn fit(model: TwoTower, train: &Interactions, config: &RetrievalConfig) -> Result<Self> {
        config.validate()?;
        ensure!(
            train.n_users == model.n_users() && train.n_items == model.n_items(),
            input("train"),
            "{} users × {} items, the model has {} × {}",
            train.n_users,
            train.n_items,
            model.n_users(),
            model.n_items()
        );
        ensure!(!train.is_empty(), input("train"), "no interactions");
        let _rng_guard = crate::torch_rng_lock();
        tch::manual_seed(config.seed as i64);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let n_items = train.n_items;
        let counts = train.item_counts();
        let total = train.len() as f64;
        let p: Vec<f64> = counts.iter().map(|&c| c as f64 / total).collect();
        let cum: Vec<usize> = counts
            .iter()
            .scan(0, |acc, &c| {
                *acc += c;
                Some(*acc)
            })
            .collect();
        let mut opt = nn::Adam {
            wd: config.weight_decay,
            ..Default::default()
        }
        .build(model.var_store(), config.lr)?;
        let device = model.device();
        let temperature = model.config().temperature;
        let m = config.extra_negatives;
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut history = Vec::with_capacity(config.epochs);
        for epoch in 1..=config.epochs {
            order.shuffle(&mut rng);
            let (mut sum, mut rows) = (0.0, 0usize);
            for (bi, batch) in order.chunks(config.batch_size).enumerate() {
                let b = batch.len();
                if b < 2 && m == 0 {
                    continue;
                }
                let users: Vec<i64> = batch.iter().map(|&r| train.users[r] as i64).collect();
                let mut ids: Vec<i64> = batch.iter().map(|&r| train.items[r] as i64).collect();
                for _ in 0..m {
                    let j = match config.extra_sampling {
                        Sampling::Uniform => rng.random_range(0..n_items),
                        Sampling::Popularity => {
                            let x = rng.random_range(0..train.len());
                            cum.partition_point(|&c| c <= x)
                        }
                    };
                    ids.push(j as i64);
                }
                let lq = config.log_q_correction.then(|| {
                    let scale = m as f64 / b as f64;
                    let lq = match config.extra_sampling {
                        Sampling::Uniform => log_q(&p, &ids, |_| scale / n_items as f64),
                        Sampling::Popularity => log_q(&p, &ids, |j| scale * p[j]),
                    };
                    lq.to_device(device)
                });
                let u = Tensor::from_slice(&users).to_device(device);
                let i = Tensor::from_slice(&ids).to_device(device);
                let ue = model.user_embeddings(&u, true);
                let ie = model.item_embeddings(&i, true);
                let loss = sampled_softmax_loss(&ue, &ie, &i, lq.as_ref(), temperature);
                let value = loss.double_value(&[]);
                if !value.is_finite() {
                    return Err(WideDeepError::NonFiniteLoss {
                        epoch,
                        batch: bi + 1,
                        value,
                    });
                }
                opt.backward_step(&loss);
                sum += value * b as f64;
                rows += b;
            }
            history.push(if rows > 0 {
                sum / rows as f64
            } else {
                f64::NAN
            });
        }
        Ok(Self {
            model,
            config: config.clone(),
            seen: train.items_by_user(),
            history,
        })
    }

    /// The trained model.
    pub fn model(&self) -> &TwoTower {
        &self.model
    }

    /// The settings it was trained with.
    pub fn config(&self) -> &RetrievalConfig {
        &self.config
    }

    /// The mean training loss of each epoch.
    pub fn history(&self) -> &[f64] {
        &self.history
    }

    /// Each user's training items (sorted), left out of the recommendations.
    pub fn seen(&self) -> &[Vec<usize>] {
        &self.seen
    }

    /// The `k` best items for `user` (dense indices with their scores, best first), exact
    /// top-k over every item but those the user interacted with in training.
    pub fn recommend(&self, user: usize, k: usize) -> Result<Vec<(usize, f32)>> {
        Ok(self.recommend_batch(&[user], k)?.pop().expect("one user"))
    }

    /// [`Retriever::recommend`] for several users (one matrix product).
    pub fn recommend_batch(&self, users: &[usize], k: usize) -> Result<Vec<Vec<(usize, f32)>>> {
        let n = self.seen.len();
        if let Some(u) = users.iter().find(|&&u| u >= n) {
            crate::macros::bail!(
                input("users"),
                "user {u} is not below the number of users {n}"
            );
        }
        let exclude: Vec<&[usize]> = users.iter().map(|&u| self.seen[u].as_slice()).collect();
        self.model.recommend_batch(users, k, &exclude)
    }

    /// Saves the model (see [`TwoTower::save`]) and `retriever.json` (the settings, the loss
    /// history and the training items of each user) into `dir`.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        self.model.save(dir)?;
        let saved = Saved {
            config: self.config.clone(),
            history: self.history.clone(),
            seen: self.seen.clone(),
        };
        let path = dir.join(RETRIEVER_FILE);
        std::fs::write(&path, serde_json::to_string(&saved)?)
            .map_err(|e| WideDeepError::io(&path, e))
    }

    /// Loads a retriever saved by [`Retriever::save`] onto `device`.
    pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<Self> {
        let dir = dir.as_ref();
        let model = TwoTower::load(dir, device)?;
        let bad = |reason: String| WideDeepError::BadPipeline {
            path: dir.to_path_buf(),
            reason: format!("{RETRIEVER_FILE}: {reason}"),
        };
        let text =
            std::fs::read_to_string(dir.join(RETRIEVER_FILE)).map_err(|e| bad(e.to_string()))?;
        let saved: Saved = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        ensure!(
            saved.seen.len() == model.n_users()
                && saved.seen.iter().flatten().all(|&i| i < model.n_items()),
            bad("the training items do not fit the model's users and items".into())
        );
        Ok(Self {
            model,
            config: saved.config,
            seen: saved.seen,
            history: saved.history,
        })
    }
}

impl Scorer for TwoTower {
    fn n_items(&self) -> usize {
        TwoTower::n_items(self)
    }

    fn score_users(&self, users: &[usize]) -> Result<Tensor> {
        let ids: Vec<i64> = users.iter().map(|&u| u as i64).collect();
        self.score_all(&Tensor::from_slice(&ids))
    }
}

impl Scorer for Retriever {
    fn n_items(&self) -> usize {
        self.model.n_items()
    }

    fn score_users(&self, users: &[usize]) -> Result<Tensor> {
        Scorer::score_users(&self.model, users)
    }
}

#[cfg(test)]
mod tests;
