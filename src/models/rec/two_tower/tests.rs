//! The two-tower model on fixed weights: scores, exact top-k without the excluded items,
//! cosine and temperature, feature towers, validation and save/load.
use super::*;
use crate::WideDeepError;
use widedeep_preprocessing::CatColumnMeta;

/// Copies `values` (row-major, the variable's shape) into the variable `name`.
fn set(model: &TwoTower, name: &str, values: &[f32]) {
    let vars = model.var_store().variables();
    let t = Tensor::from_slice(values).view(vars[name].size().as_slice());
    tch::no_grad(|| vars[name].shallow_clone().copy_(&t));
}

/// 3 users and 5 items in 2 dimensions, with hand-set vectors.
fn fixed(similarity: Similarity, temperature: f64) -> TwoTower {
    let cfg = TwoTowerConfig::new(3, 5)
        .embed_dim(2)
        .similarity(similarity)
        .temperature(temperature);
    let m = TwoTower::new(&cfg, Device::Cpu).unwrap();
    set(&m, "user.id.weight", &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    set(
        &m,
        "item.id.weight",
        &[3.0, 0.0, 1.0, 1.0, 0.0, 2.0, -1.0, 0.5, 2.0, 2.0],
    );
    m
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
}

#[test]
fn dot_scores_and_exact_top_k_without_seen_items() {
    let m = fixed(Similarity::Dot, 2.0);
    assert!(
        m.var_store().variables().len() == 2,
        "a bare tower has no projection"
    );
    // user 2 = (1, 1): item dots 3, 2, 2, −0.5, 4; halved by the temperature
    let s = m.score_all(&Tensor::from_slice(&[2i64, 0])).unwrap();
    assert_eq!(s.size(), [2, 5]);
    assert_eq!(
        to_vec(&s),
        [1.5, 1.0, 1.0, -0.25, 2.0, 1.5, 0.5, 0.0, -0.5, 1.0]
    );
    let pair = m
        .score(
            &Tensor::from_slice(&[2i64, 1]),
            &Tensor::from_slice(&[4i64, 2]),
        )
        .unwrap();
    assert_eq!(to_vec(&pair), [2.0, 1.0]);
    // user 2 without items 4 and 1: 0 (1.5), 2 (1.0), 3 (−0.25)
    let top = m.recommend(2, 3, &[4, 1]).unwrap();
    assert_eq!(top, vec![(0, 1.5), (2, 1.0), (3, -0.25)]);
    // k beyond the items left: only what remains
    let top = m.recommend(0, 10, &[0, 1, 2]).unwrap();
    assert_eq!(top, vec![(4, 1.0), (3, -0.5)]);
    assert!(m.recommend(0, 0, &[]).unwrap().is_empty());
    // batched: user 1 = (0, 1): halved dots 0, 0.5, 1, 0.25, 1; item 2 excluded
    let both = m.recommend_batch(&[1, 0], 2, &[&[2], &[]]).unwrap();
    assert_eq!(both[0], vec![(4, 1.0), (1, 0.5)]);
    assert_eq!(both[1], vec![(0, 1.5), (4, 1.0)]);
    let err = m.recommend(0, 2, &[5]).unwrap_err();
    assert!(matches!(err, WideDeepError::InputMismatch { ref input, .. } if input == "exclude"));
    let err = m.score_all(&Tensor::from_slice(&[3i64])).unwrap_err();
    assert!(matches!(err, WideDeepError::InputMismatch { ref input, .. } if input == "users"));
}

#[test]
fn cosine_normalises_both_towers() {
    let m = fixed(Similarity::Cosine, 0.5);
    // user 0 = (1, 0): cosines 1, 1/√2, 0, −1/√1.25, 1/√2; divided by 0.5
    let s = to_vec(&m.score_all(&Tensor::from_slice(&[0i64])).unwrap());
    let r = std::f32::consts::FRAC_1_SQRT_2;
    let expected = [2.0, 2.0 * r, 0.0, -2.0 / 1.25f32.sqrt(), 2.0 * r];
    for (a, b) in s.iter().zip(expected) {
        assert!((a - b).abs() < 1e-6, "{s:?}");
    }
    let u = m.user_embeddings(&Tensor::from_slice(&[2i64]), false);
    let norm = u.norm().double_value(&[]);
    assert!((norm - 1.0).abs() < 1e-6);
}

#[test]
fn feature_towers_embed_ids_and_columns() {
    let features = TabEmbedConfig {
        cat_embed: vec![CatColumnMeta {
            name: "genre".into(),
            cardinality: 3,
            embed_dim: 2,
        }],
        cont_cols: vec!["year".into()],
        ..Default::default()
    };
    let cfg = TwoTowerConfig::new(2, 4)
        .dim(3)
        .item(TowerConfig::default().embed_dim(1).features(features));
    let m = TwoTower::new(&cfg, Device::Cpu).unwrap();
    let names: std::collections::BTreeSet<String> = m.var_store().variables().into_keys().collect();
    for n in [
        "item.id.weight",
        "item.features.emb_0.weight",
        "item.features.cat_values",
        "item.features.cont_values",
        "item.proj.weight",
        "user.proj.weight",
    ] {
        assert!(names.contains(n), "{n} in {names:?}");
    }
    // the feature values are not trained
    assert_eq!(m.var_store().trainable_variables().len(), names.len() - 2);
    let table = FeatureTable {
        cat: Some(Tensor::from_slice(&[1i64, 2, 0, 1]).view([4, 1])),
        cont: Some(Tensor::from_slice(&[0.5f32, -1.0, 0.0, 2.0]).view([4, 1])),
    };
    m.set_item_features(&table).unwrap();
    set(&m, "item.id.weight", &[1.0, 2.0, 3.0, 4.0]);
    set(
        &m,
        "item.features.emb_0.weight",
        &[0.0, 0.0, 1.0, -1.0, 2.0, 0.5],
    );
    // projection: out = W x + b with x = [id, emb_0, emb_1, year]
    set(
        &m,
        "item.proj.weight",
        &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    );
    set(&m, "item.proj.bias", &[0.0, 0.0, 0.5]);
    let v = m.item_embeddings(&Tensor::from_slice(&[1i64, 3]), false);
    // item 1: id 2, genre 2 → (2, 0.5), year −1 → (2, 2.5, −0.5); item 3: id 4, genre 1 →
    // (1, −1), year 2 → (4, 0, 2.5)
    assert_eq!(to_vec(&v), [2.0, 2.5, -0.5, 4.0, 0.0, 2.5]);
    // checks of the table
    let err = m.set_user_features(&table).unwrap_err();
    assert!(
        matches!(err, WideDeepError::InputMismatch { ref input, .. } if input == "user_features")
    );
    let short = FeatureTable {
        cat: Some(Tensor::from_slice(&[1i64, 2]).view([2, 1])),
        cont: table.cont.as_ref().map(Tensor::copy),
    };
    assert!(m.set_item_features(&short).is_err());
    let out_of_range = FeatureTable {
        cat: Some(Tensor::from_slice(&[1i64, 3, 0, 1]).view([4, 1])),
        cont: table.cont.as_ref().map(Tensor::copy),
    };
    let err = m.set_item_features(&out_of_range).unwrap_err();
    assert!(err.to_string().contains("genre"), "{err}");
    // saved with the weights
    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let back = TwoTower::load(dir.path(), Device::Cpu).unwrap();
    let again = back.item_embeddings(&Tensor::from_slice(&[1i64, 3]), false);
    assert_eq!(to_vec(&again), to_vec(&v));
}

#[test]
fn feature_table_from_a_frame() {
    use polars::prelude::*;
    use widedeep_preprocessing::{Fit, Scaling};
    let users = df!(
        "user_id" => [20i64, 10, 99],
        "gender" => ["F", "M", "F"],
    )
    .unwrap();
    let ratings = df!("user_id" => [10i64, 20, 30]).unwrap();
    let ids = IdIndex::fitted_on(&ratings, "user_id").unwrap();
    let no_cont: [&str; 0] = [];
    let mut prep = TabPreprocessor::new(&["gender"], &no_cont).scaling(Scaling::None);
    prep.fit(&users).unwrap();
    let t = FeatureTable::from_frame(&users, &ids, &prep).unwrap();
    // users 10, 20, 30 → rows 0, 1, 2: M (2), F (1), no row (0); user 99 is not indexed
    let cat = Vec::<i64>::try_from(t.cat.unwrap().flatten(0, -1)).unwrap();
    assert_eq!(cat, [2, 1, 0]);
    assert!(t.cont.is_none());
}

#[test]
fn validation_names_the_field() {
    let field = |cfg: TwoTowerConfig| match cfg.validate() {
        Err(WideDeepError::InvalidConfig { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let ok = TwoTowerConfig::new(3, 4);
    assert!(ok.validate().is_ok());
    assert_eq!(field(ok.clone().temperature(0.0)), "two_tower.temperature");
    assert_eq!(field(ok.clone().init_std(f64::NAN)), "two_tower.init_std");
    assert_eq!(field(TwoTowerConfig::new(3, 0)), "two_tower.n_items");
    assert_eq!(field(ok.clone().dim(0)), "two_tower.dim");
    assert_eq!(
        field(ok.clone().user(TowerConfig::default().embed_dim(0))),
        "two_tower.user"
    );
    let bad_mlp = MlpConfig::default().dropout(1.5);
    assert_eq!(
        field(ok.clone().item(TowerConfig::default().mlp(bad_mlp))),
        "two_tower.item.mlp.dropout"
    );
    assert!(TwoTower::new(&ok.temperature(-1.0), Device::Cpu).is_err());
}

#[test]
fn mlp_towers_and_json() {
    let cfg = TwoTowerConfig::new(5, 6)
        .dim(4)
        .user(
            TowerConfig::default()
                .embed_dim(8)
                .mlp(MlpConfig::default().hidden_dims([16])),
        )
        .seed(9);
    let a = TwoTower::new(&cfg, Device::Cpu).unwrap();
    let b = TwoTower::new(&cfg, Device::Cpu).unwrap();
    let users = Tensor::from_slice(&[0i64, 4]);
    let (sa, sb) = (a.score_all(&users).unwrap(), b.score_all(&users).unwrap());
    assert_eq!(sa.size(), [2, 6]);
    assert!(sa.equal(&sb), "seeded builds are equal");
    let json = serde_json::to_string(&cfg).unwrap();
    let back: TwoTowerConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cfg);
    let dir = tempfile::tempdir().unwrap();
    a.save(dir.path()).unwrap();
    let loaded = TwoTower::load(dir.path(), Device::Cpu).unwrap();
    assert!(loaded.score_all(&users).unwrap().equal(&sa));
    // a weights file of another model is refused, naming the tensor
    let other = TwoTower::new(&TwoTowerConfig::new(5, 7), Device::Cpu).unwrap();
    other.save(dir.path().join("other")).unwrap();
    std::fs::copy(
        dir.path().join("other/two_tower.safetensors"),
        dir.path().join("two_tower.safetensors"),
    )
    .unwrap();
    let err = TwoTower::load(dir.path(), Device::Cpu).unwrap_err();
    assert!(matches!(err, WideDeepError::BadPipeline { .. }), "{err}");
}
