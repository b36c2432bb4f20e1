//! Models learn real data sets.
use crate::common::*;
use widedeep::prelude::*;

#[test]
fn adult_wide_tabmlp_reaches_084_accuracy_in_two_epochs() {
    let (train_df, test_df) = adult_split(12_000, 4_000);
    let mut prep = adult_preprocessors();
    let train = prep.fit_transform(&train_df).unwrap();
    let test = prep.transform(&test_df).unwrap();
    let mut trainer = wide_tabmlp_trainer(&prep, 3, 2);
    let history = trainer.fit(&train, None).unwrap();
    assert_eq!(history.len(), 2);
    let losses = history.series("loss");
    assert!(
        losses[1] < losses[0],
        "training loss should fall: {losses:?}"
    );
    let scores = trainer.evaluate(&test, None).unwrap();
    eprintln!("Adult subsample, 2 epochs: {scores:?}");
    assert!(
        scores["accuracy"] >= 0.84,
        "test accuracy {}",
        scores["accuracy"]
    );
    assert!(scores["auc"] >= 0.88, "test AUC {}", scores["auc"]);
    // predict agrees with predict_proba
    let proba = trainer.predict_proba(&test).unwrap();
    assert_eq!(proba.size(), [4_000, 2]);
    let pred = trainer.predict(&test).unwrap();
    assert!(pred.equal(&proba.argmax(1, false)));
}

#[test]
fn early_stopping_restores_the_best_epoch() {
    let (train_df, _) = adult_split(3_000, 10);
    let mut prep = adult_preprocessors();
    let train = prep.fit_transform(&train_df).unwrap();
    let model = WideDeepConfig::new().deeptabular(
        TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
            .mlp(MlpConfig::default().hidden_dims([256, 256]).dropout(0.0)),
    );
    let model = WideDeep::new(&model, Device::Cpu).unwrap();
    // a large learning rate on a small set: the validation loss soon gets worse
    let config = TrainerConfig::new(Objective::Binary)
        .epochs(30)
        .batch_size(64)
        .lr(0.02)
        .early_stopping(EarlyStopping::default().patience(2))
        .verbose(0);
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
    let (train, val) = train.split(0.3, true, &mut rng).unwrap();
    let mut trainer = Trainer::new(model, config).unwrap();
    trainer.fit(&train, Some(&val)).unwrap();
    let val_loss = trainer.history().series("val_loss");
    assert!(val_loss.len() < 30, "should stop early: {val_loss:?}");
    let best = val_loss.iter().cloned().fold(f64::INFINITY, f64::min);
    let best_epoch = val_loss.iter().position(|&v| v == best).unwrap();
    assert_eq!(
        val_loss.len(),
        best_epoch + 3,
        "stops `patience` epochs after the best"
    );
    let restored = trainer.evaluate(&val, None).unwrap()["loss"];
    assert!(
        (restored - best).abs() < 1e-5,
        "restored {restored} vs best {best}"
    );
}
