//! Same seed → same weights and metrics on CPU.
use crate::common::*;
use widedeep::prelude::*;

fn train_once(seed: u64) -> (Trainer, Dataset) {
    let (train_df, test_df) = adult_split(3_000, 500);
    let mut prep = adult_preprocessors();
    let train = prep.fit_transform(&train_df).unwrap();
    let test = prep.transform(&test_df).unwrap();
    // dropout, shuffling and the validation split all draw from the seed
    let model = WideDeep::new(&wide_tabmlp_config(&prep, seed), Device::Cpu).unwrap();
    let mut trainer = Trainer::new(model, trainer_config(&prep, seed, 2).val_split(0.2)).unwrap();
    trainer.fit(&train, None).unwrap();
    (trainer, test)
}

fn weights(t: &Trainer) -> Vec<(String, tch::Tensor)> {
    let mut v: Vec<_> = t.model().var_store().variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn same_seed_gives_identical_weights_and_history() {
    let (a, test) = train_once(17);
    let (b, _) = train_once(17);
    assert_eq!(a.history(), b.history());
    for ((ka, wa), (kb, wb)) in weights(&a).iter().zip(weights(&b).iter()) {
        assert_eq!(ka, kb);
        assert!(wa.equal(wb), "weights of {ka} differ");
    }
    assert!(a
        .predict_proba(&test)
        .unwrap()
        .equal(&b.predict_proba(&test).unwrap()));

    let (c, _) = train_once(18);
    assert_ne!(
        a.history(),
        c.history(),
        "a different seed should give a different run"
    );
}
