//! The complete trainer: resume from checkpoints, per-component optimizers and schedules,
//! callbacks, skipping non-finite batches.
use crate::common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use widedeep::prelude::*;
use widedeep::training::{
    Callback, LrHistory, LrScheduler, ModelCheckpoint, Scheduler, TrainState,
};

fn data(n: usize) -> (Preprocessors, Dataset) {
    let (train_df, _) = adult_split(n, 10);
    let mut prep = adult_preprocessors();
    let train = prep.fit_transform(&train_df).unwrap();
    (prep, train)
}

/// Wide + TabMlp with dropout, so that resuming must reproduce the dropout masks.
fn model(prep: &Preprocessors) -> WideDeep {
    let cfg = WideDeepConfig::new()
        .wide(WideConfig::new(prep.wide_dim().unwrap()))
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
                .mlp(MlpConfig::default().hidden_dims([16, 8]).dropout(0.2)),
        )
        .seed(3);
    WideDeep::new(&cfg, Device::Cpu).unwrap()
}

/// Different optimizers and schedules per component, early stopping that never triggers.
fn config(epochs: usize) -> TrainerConfig {
    TrainerConfig::new(Objective::Binary)
        .epochs(epochs)
        .batch_size(64)
        .lr(5e-3)
        .seed(9)
        .val_split(0.2)
        .metrics([Metric::Accuracy])
        .optimizer(Optimizer::adamw())
        .weight_decay(0.01)
        .component_optimizer("wide", Optimizer::sgd(0.9))
        .component_lr("wide", 0.05)
        .lr_scheduler(LrScheduler::cosine(4, 1e-4))
        .component_lr_scheduler("deeptabular", LrScheduler::step(1, 0.7))
        .early_stopping(EarlyStopping::default().patience(100))
        .verbose(0)
}

fn weights(t: &Trainer) -> Vec<(String, tch::Tensor)> {
    let mut v: Vec<_> = t.model().var_store().variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("widedeep-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn resumed_run_matches_the_uninterrupted_one() {
    let (prep, train) = data(1_200);
    let mut full = Trainer::new(model(&prep), config(4)).unwrap();
    full.fit(&train, None).unwrap();

    let dir = tmp_dir("resume");
    let ckpt = dir.join("run.ckpt");
    let mut first = Trainer::new(model(&prep), config(2)).unwrap();
    first.fit(&train, None).unwrap();
    first.save_checkpoint(&ckpt).unwrap();
    assert_eq!(files(&dir), vec!["run.ckpt"], "no temporary file left");
    drop(first);

    // a fresh process would build the same model (other initial weights do not matter)
    let mut second = Trainer::new(model(&prep), config(2)).unwrap();
    second.resume(&ckpt).unwrap();
    assert_eq!(second.history().len(), 2);
    second.fit(&train, None).unwrap();

    assert_eq!(full.history(), second.history());
    for ((ka, a), (kb, b)) in weights(&full).iter().zip(weights(&second).iter()) {
        assert_eq!(ka, kb);
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(diff <= 1e-6, "`{ka}` differs by {diff}");
    }
    assert_eq!(full.lrs(), second.lrs());
    let lrs = full.lrs();
    assert!(
        (lrs["deeptabular"] - 5e-3 * 0.7f64.powi(4)).abs() < 1e-12,
        "{lrs:?}"
    );
    let groups = full.optimizers().unwrap().groups();
    let wide = groups.iter().find(|g| g.name() == "wide").unwrap();
    assert_eq!(*wide.optimizer(), Optimizer::sgd(0.9));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_checkpoints_are_typed_errors_naming_the_file() {
    let (prep, train) = data(300);
    let dir = tmp_dir("badckpt");
    let mut t = Trainer::new(model(&prep), config(1)).unwrap();
    let missing = dir.join("missing.ckpt");
    let e = t.resume(&missing).unwrap_err();
    assert!(matches!(e, WideDeepError::Io { .. }), "{e}");
    assert!(e.to_string().contains("missing.ckpt"), "{e}");

    let corrupt = dir.join("corrupt.ckpt");
    std::fs::write(&corrupt, b"not a checkpoint").unwrap();
    let e = t.resume(&corrupt).unwrap_err();
    assert!(matches!(e, WideDeepError::BadCheckpoint { .. }), "{e}");
    assert!(e.to_string().contains("corrupt.ckpt"), "{e}");

    t.fit(&train, None).unwrap();
    let good = dir.join("good.ckpt");
    t.save_checkpoint(&good).unwrap();
    // truncated file
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.join("cut.ckpt");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = t.resume(&cut).unwrap_err();
    assert!(matches!(e, WideDeepError::BadCheckpoint { .. }), "{e}");
    // another seed
    let mut other = Trainer::new(model(&prep), config(1).seed(10)).unwrap();
    let e = other.resume(&good).unwrap_err();
    assert!(e.to_string().contains("seed"), "{e}");
    // another schedule
    let mut other = Trainer::new(
        model(&prep),
        config(1).component_lr_scheduler("deeptabular", LrScheduler::step(2, 0.7)),
    )
    .unwrap();
    let e = other.resume(&good).unwrap_err();
    assert!(
        e.to_string().contains("component_lr_scheduler.deeptabular"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn model_checkpoint_keeps_max_files_and_best_only() {
    let (prep, train) = data(600);
    let dir = tmp_dir("modelckpt");
    let mut t = Trainer::new(model(&prep), config(4)).unwrap();
    t.add_callback(Box::new(
        ModelCheckpoint::new(dir.join("every")).max_files(2),
    ));
    t.add_callback(Box::new(
        ModelCheckpoint::new(dir.join("best"))
            .monitor("val_accuracy")
            .save_best_only(true),
    ));
    t.fit(&train, None).unwrap();
    assert_eq!(
        files(&dir.join("every")),
        vec!["model_epoch3.safetensors", "model_epoch4.safetensors"]
    );
    // the epochs where val_accuracy reached a new maximum
    let acc = t.history().series("val_accuracy");
    let mut best = f64::NEG_INFINITY;
    let mut want = Vec::new();
    for (e, a) in acc.iter().enumerate() {
        if *a > best {
            best = *a;
            want.push(format!("model_epoch{}.safetensors", e + 1));
        }
    }
    want.sort();
    assert_eq!(files(&dir.join("best")), want);
    // the last file holds the final weights
    let saved = tch::Tensor::read_safetensors(dir.join("every/model_epoch4.safetensors")).unwrap();
    let now: BTreeMap<_, _> = weights(&t).into_iter().collect();
    assert_eq!(saved.len(), now.len());
    for (k, v) in saved {
        assert!(v.equal(&now[&k]), "{k}");
    }
    // bad settings are typed errors naming the field
    let mut t = Trainer::new(model(&prep), config(1)).unwrap();
    t.add_callback(Box::new(
        ModelCheckpoint::new(dir.join("x")).every_n_epochs(0),
    ));
    let e = t.fit(&train, None).unwrap_err();
    assert!(
        e.to_string().contains("model_checkpoint.every_n_epochs"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lr_history_records_scheduled_rates() {
    let (prep, train) = data(256);
    let config = TrainerConfig::new(Objective::Binary)
        .epochs(3)
        .batch_size(64)
        .lr(0.01)
        .lr_scheduler(LrScheduler::one_cycle(Some(0.02)))
        .component_lr_scheduler("wide", LrScheduler::step(1, 0.5))
        .verbose(0);
    let mut t = Trainer::new(model(&prep), config).unwrap();
    let lrs = LrHistory::new(true);
    t.add_callback(Box::new(lrs.clone()));
    t.fit(&train, None).unwrap();
    assert_eq!(lrs.epoch_series("wide"), vec![0.01, 0.005, 0.0025]);
    let got = lrs.batch_series("deeptabular");
    assert_eq!(got.len(), 12);
    let mut s = Scheduler::new(&LrScheduler::one_cycle(Some(0.02)), 0.01, 12, "x").unwrap();
    for (i, g) in got.iter().enumerate() {
        assert!((g - s.lr()).abs() < 1e-15, "batch {i}: {g} vs {}", s.lr());
        s.on_batch_end();
    }
    assert!((got[0] - 0.02 / 25.0).abs() < 1e-15);
    assert_eq!(lrs.batch_series("wide")[4], 0.005);
}

/// Sets one weight to NaN after batch 2 of the first epoch.
struct Poison;
impl Callback for Poison {
    fn on_batch_end(&mut self, s: &mut TrainState, _loss: f64) -> widedeep::Result<()> {
        if s.epoch == 0 && s.batch == 2 {
            let vars = s.model.var_store().variables();
            let w = vars
                .get("head_out.weight")
                .or(vars.get("proj_0.weight"))
                .unwrap();
            tch::no_grad(|| {
                let _ = w.shallow_clone().fill_(f64::NAN);
            });
        }
        Ok(())
    }
}

/// Requests a stop after the second epoch.
struct StopAfterTwo(usize);
impl Callback for StopAfterTwo {
    fn on_epoch_end(
        &mut self,
        s: &mut TrainState,
        record: &BTreeMap<String, f64>,
    ) -> widedeep::Result<()> {
        assert_eq!(s.history.epochs.last(), Some(record));
        self.0 += 1;
        if self.0 == 2 {
            s.request_stop();
        }
        Ok(())
    }
}

#[test]
fn nonfinite_batches_error_or_are_skipped() {
    let (prep, train) = data(640);
    let base = TrainerConfig::new(Objective::Binary)
        .epochs(2)
        .batch_size(64)
        .shuffle(false)
        .verbose(0);
    let mut t = Trainer::new(model(&prep), base.clone()).unwrap();
    t.add_callback(Box::new(Poison));
    match t.fit(&train, None).unwrap_err() {
        WideDeepError::NonFiniteLoss { epoch, batch, .. } => assert_eq!((epoch, batch), (1, 3)),
        e => panic!("{e}"),
    }
    let mut t = Trainer::new(
        model(&prep),
        base.skip_nonfinite_batches(true)
            .metrics([Metric::Accuracy]),
    )
    .unwrap();
    t.add_callback(Box::new(Poison));
    t.fit(&train, None).unwrap();
    assert_eq!(t.history().series("skipped_batches"), vec![7.0, 10.0]);
    assert!(t.history().epochs[0]["loss"].is_finite());
    assert!(t.history().epochs[1]["loss"].is_nan());
}

#[test]
fn callbacks_can_stop_training() {
    let (prep, train) = data(256);
    let mut t = Trainer::new(model(&prep), config(5)).unwrap();
    t.add_callback(Box::new(StopAfterTwo(0)));
    t.fit(&train, None).unwrap();
    assert_eq!(t.history().len(), 2);
}

#[test]
fn per_component_settings_are_validated_against_the_model() {
    let (prep, _) = data(100);
    let e = Trainer::new(
        model(&prep),
        config(1).component_optimizer("deeptext_3", Optimizer::adam()),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("component_optimizer.deeptext_3"),
        "{e}"
    );
    let e = Trainer::new(
        model(&prep),
        config(1).component_optimizer("wide", Optimizer::sgd(2.0)),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("component_optimizer.wide.momentum"),
        "{e}"
    );
    let e = Trainer::new(
        model(&prep),
        config(1).component_lr_scheduler("head", LrScheduler::exponential(0.0)),
    )
    .unwrap_err();
    assert!(e.to_string().contains("component_lr_scheduler.head"), "{e}");
    let e = Trainer::new(model(&prep), config(1).component_weight_decay("wide", -1.0)).unwrap_err();
    assert!(e.to_string().contains("component_weight_decay.wide"), "{e}");
    // the whole config round-trips through JSON
    let c = config(3);
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<TrainerConfig>(&json).unwrap(), c);
}
