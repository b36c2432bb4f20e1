//! The factorization-machine recommender models (DeepFM, DeepFFM, xDeepFM) learn a planted
//! latent-factor interaction of synthetic click data.
//!
//! Each row has three categorical columns (`user`, `item`, `device`) and a continuous one
//! (`x`, standard normal). Every user has a latent vector `p_u` and every item `q_i` in the
//! plane (unit vectors at random angles, in opposite pairs: `p_{2k} = −p_{2k−1}`, likewise the
//! items), and the row is a click exactly when `⟨p_u, q_i⟩ > 0` (`device` and `x` are noise).
//!
//! Thanks to the opposite pairs, half of every user's items and half of every item's users
//! are clicks: no single column says anything about the label, so a model without pairwise
//! interactions scores an AUC of about 0.5, while the labels themselves (the oracle) score 1.
//! A rank-2 factorization machine represents the rule exactly.
use crate::common::binary_auc_of;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;
use widedeep::models::TabModelConfig;
use widedeep::prelude::*;
use widedeep::preprocessing::{CatColumnMeta, TabMeta};

/// Users and items (each an even number: opposite pairs).
const USERS: usize = 12;
const ITEMS: usize = 12;

/// The AUC every model must reach on the test rows.
const BOUND: f64 = 0.9;

/// Unit vectors at random angles, in opposite pairs; `n` even.
fn latent(n: usize, rng: &mut ChaCha8Rng) -> Vec<[f64; 2]> {
    (0..n / 2)
        .flat_map(|_| {
            let a = rng.random::<f64>() * std::f64::consts::TAU;
            let v = [a.cos(), a.sin()];
            [v, [-v[0], -v[1]]]
        })
        .collect()
}

/// `n` rows of the click data; the latent vectors come from the fixed seed 7, the rows from
/// `seed`.
fn clicks(n: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (p, q) = (latent(USERS, &mut rng), latent(ITEMS, &mut rng));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cat = Vec::with_capacity(3 * n);
    let mut cont = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let (u, i) = (rng.random_range(0..USERS), rng.random_range(0..ITEMS));
        let device = rng.random_range(1..=4i64);
        let dot = p[u][0] * q[i][0] + p[u][1] * q[i][1];
        // indices from 1 (0 is the unseen slot)
        cat.extend([u as i64 + 1, i as i64 + 1, device]);
        cont.push(rng.random::<f32>() * 2.0 - 1.0);
        y.push(f32::from(u8::from(dot > 0.0)));
    }
    let n = n as i64;
    let input = ModelInput {
        cat: Some(Tensor::from_slice(&cat).view([n, 3])),
        cont: Some(Tensor::from_slice(&cont).view([n, 1])),
        ..Default::default()
    };
    Dataset::new(input, Some(Tensor::from_slice(&y))).unwrap()
}

/// The columns (`embed_dim` is not read: these models give every column `input_dim`).
fn meta() -> TabMeta {
    let cat = [("user", USERS + 1), ("item", ITEMS + 1), ("device", 5)];
    TabMeta {
        cat: cat
            .into_iter()
            .map(|(name, cardinality)| CatColumnMeta {
                name: name.into(),
                cardinality,
                embed_dim: 4,
            })
            .collect(),
        cont: vec!["x".into()],
    }
}

/// Trains `model` (binary, `epochs` epochs on 6k rows) and checks its test AUC against
/// [`BOUND`].
fn learns_the_interaction(name: &str, model: impl Into<TabModelConfig>, epochs: usize, lr: f64) {
    let train = clicks(6_000, 1);
    let test = clicks(3_000, 2);
    let (auc, seconds) = binary_auc_of(model, &train, &test, epochs, lr);
    eprintln!("{name}: test AUC {auc:.4}, {epochs} epochs in {seconds:.1} s");
    assert!(auc >= BOUND, "{name}: AUC {auc} < {BOUND}");
}

#[test]
fn no_single_column_predicts_the_click() {
    // the click rate given any one user, item or device value stays near 1/2
    let data = clicks(24_000, 3);
    let cat = Vec::<i64>::try_from(data.input.cat.as_ref().unwrap().flatten(0, 1)).unwrap();
    let y = Vec::<f32>::try_from(data.target.as_ref().unwrap()).unwrap();
    for (col, values) in [(0, USERS), (1, ITEMS), (2, 4)] {
        for v in 1..=values as i64 {
            let rows: Vec<f32> = (0..y.len())
                .filter(|&r| cat[3 * r + col] == v)
                .map(|r| y[r])
                .collect();
            let rate = rows.iter().sum::<f32>() / rows.len() as f32;
            assert!((rate - 0.5).abs() < 0.06, "column {col} = {v}: rate {rate}");
        }
    }
    let rate = y.iter().sum::<f32>() / y.len() as f32;
    assert!((rate - 0.5).abs() < 0.02, "click rate {rate}");
}

#[test]
fn pipelines_with_the_fm_models_save_and_load() {
    // Adult with a wide part and continuous columns (embedded as tokens / value-scaled
    // vectors), one epoch: the reloaded pipeline rebuilds the model from its JSON config and
    // predicts the same
    let (train_df, test_df) = crate::common::adult_split(600, 50);
    let mut prep = crate::common::adult_preprocessors();
    let train = prep.fit_transform(&train_df).unwrap();
    let tab = prep.tab_meta().unwrap();
    let models: [TabModelConfig; 3] = [
        DeepFmConfig::from_meta(&tab, 4).mlp(mlp()).into(),
        DeepFfmConfig::from_meta(&tab, 4).into(),
        XDeepFmConfig::from_meta(&tab, 4)
            .cin_layer_dims([8, 4])
            .cin_split_half(true)
            .reduce_sum(false)
            .mlp(mlp())
            .into(),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for model in models {
        let name = model.name();
        let cfg = WideDeepConfig::new()
            .wide(WideConfig::new(prep.wide_dim().unwrap()))
            .deeptabular(model)
            .seed(3);
        let model = WideDeep::new(&cfg, Device::Cpu).unwrap();
        let mut trainer = Trainer::new(model, crate::common::trainer_config(&prep, 3, 1)).unwrap();
        trainer.fit(&train, None).unwrap();
        let pipeline = Pipeline::new(prep.clone(), trainer);
        let dir = tmp.path().join(name);
        pipeline.save(&dir).unwrap();
        let loaded = Pipeline::load(&dir, Device::Cpu).unwrap();
        let a = pipeline.predict_proba(&test_df).unwrap();
        assert_eq!(a.size(), [50, 2], "{name}");
        assert!(a.equal(&loaded.predict_proba(&test_df).unwrap()), "{name}");
    }
}

fn mlp() -> RecMlpConfig {
    RecMlpConfig::new([64, 32]).mlp_dropout(0.1)
}

#[test]
fn deepfm_learns_a_planted_latent_factor_interaction() {
    let fm = DeepFmConfig::from_meta(&meta(), 8);
    learns_the_interaction("DeepFM (FM only)", fm.clone(), 8, 1e-2);
    let deep = fm.reduce_sum(true).mlp(mlp());
    learns_the_interaction("DeepFM + MLP", deep, 8, 1e-2);
}

#[test]
fn deepffm_and_xdeepfm_learn_a_planted_latent_factor_interaction() {
    let ffm = DeepFfmConfig::from_meta(&meta(), 8);
    learns_the_interaction("DeepFFM (FFM only)", ffm.clone(), 8, 1e-2);
    learns_the_interaction("DeepFFM + MLP", ffm.reduce_sum(true).mlp(mlp()), 8, 1e-2);
    let x = XDeepFmConfig::from_meta(&meta(), 8)
        .cin_layer_dims([32, 16])
        .reduce_sum(true)
        .mlp(mlp());
    learns_the_interaction("xDeepFM", x, 8, 1e-2);
}
