//! Training history, the [`Callback`] trait and the built-in callbacks: early stopping,
//! [`ModelCheckpoint`] and [`LrHistory`].
use crate::error::{Result, WideDeepError};
use crate::macros::{ensure, setters};
use crate::models::WideDeep;
use crate::training::checks::monitored;
use crate::training::optim::Optimizers;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tch::Tensor;

/// Per-epoch values: `loss`, each metric by name, and `val_`-prefixed validation values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One record per epoch, oldest first.
    pub epochs: Vec<BTreeMap<String, f64>>,
}

/// The values of `key` over `records` (NaN where a record lacks it).
fn series(records: &[BTreeMap<String, f64>], key: &str) -> Vec<f64> {
    records
        .iter()
        .map(|e| e.get(key).copied().unwrap_or(f64::NAN))
        .collect()
}

impl History {
    /// The values of one key over the epochs (NaN where an epoch lacks it).
    pub fn series(&self, key: &str) -> Vec<f64> {
        series(&self.epochs, key)
    }

    /// The last epoch's value of `key`.
    pub fn last(&self, key: &str) -> Option<f64> {
        self.epochs.last().and_then(|e| e.get(key).copied())
    }

    /// The number of epochs recorded.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// Whether no epoch is recorded.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }
}

/// Whether the monitored value should go down or up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `min` for losses, RMSE and MAE, `max` for the other metrics.
    #[default]
    Auto,
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

impl Mode {
    /// Whether larger values of the history key `monitor` are better. `Auto`: lower is better
    /// for losses, RMSE and MAE (also per target, `val_mae[1]`), higher for the rest.
    pub(crate) fn maximizes(self, monitor: &str) -> bool {
        match self {
            Mode::Min => false,
            Mode::Max => true,
            Mode::Auto => {
                let key = monitor.trim_start_matches("val_");
                let key = key.split('[').next().unwrap_or(key);
                !(key.contains("loss") || key == "rmse" || key == "mae")
            }
        }
    }
}

/// Whether `value` improves on `best` (none yet: any finite value) by more than `min_delta`.
fn improves(best: Option<f64>, value: f64, maximize: bool, min_delta: f64) -> bool {
    match best {
        None => value.is_finite(),
        Some(best) if maximize => value > best + min_delta,
        Some(best) => value < best - min_delta,
    }
}

/// Stops training when `monitor` has not improved by more than `min_delta` for `patience`
/// epochs; with `restore_best_weights` the weights of the best epoch are put back at the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EarlyStopping {
    /// A history key, e.g. `val_loss` (the default) or `val_auc`.
    pub monitor: String,
    /// Whether `monitor` should go down or up.
    pub mode: Mode,
    /// Epochs without improvement before stopping (at least 1).
    pub patience: usize,
    /// The smallest change that counts as an improvement.
    pub min_delta: f64,
    /// Put back the weights of the best epoch when training ends.
    pub restore_best_weights: bool,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self {
            monitor: "val_loss".into(),
            mode: Mode::Auto,
            patience: 10,
            min_delta: 0.0,
            restore_best_weights: true,
        }
    }
}

impl EarlyStopping {
    /// Sets the monitored history key.
    pub fn monitor(mut self, key: &str) -> Self {
        self.monitor = key.into();
        self
    }
    setters!(
        mode: Mode,
        patience: usize,
        min_delta: f64,
        restore_best_weights: bool,
    );

    /// Whether larger values of the monitored key are better.
    pub fn maximize(&self) -> bool {
        self.mode.maximizes(&self.monitor)
    }
}

/// The running state of an [`EarlyStopping`] during one `fit` (saved in trainer checkpoints).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct EarlyStoppingState {
    /// The best value so far.
    pub best: Option<f64>,
    /// The epoch of `best`.
    pub best_epoch: usize,
    /// Epochs since `best`.
    pub wait: usize,
}

impl EarlyStoppingState {
    pub fn new() -> Self {
        Self {
            best: None,
            best_epoch: 0,
            wait: 0,
        }
    }

    /// Records `value` of `epoch`; returns (improved, stop).
    pub fn update(&mut self, cfg: &EarlyStopping, epoch: usize, value: f64) -> (bool, bool) {
        let improved = improves(self.best, value, cfg.maximize(), cfg.min_delta);
        if improved {
            self.best = Some(value);
            self.best_epoch = epoch;
            self.wait = 0;
        } else {
            self.wait += 1;
        }
        (improved, self.wait >= cfg.patience.max(1))
    }
}

/// What a [`Callback`] sees of a running `fit`: the model, the history so far, the position in
/// the run and the optimizers' learning rates. A callback stops training after the current epoch
/// with [`TrainState::request_stop`].
pub struct TrainState<'a> {
    /// The model being trained.
    pub model: &'a WideDeep,
    /// The history, the current epoch's record included in `on_epoch_end`.
    pub history: &'a History,
    /// The epoch (0-based, counting the epochs of earlier `fit` calls and resumed runs).
    pub epoch: usize,
    /// The batch within the epoch (0-based; `on_batch_*` only).
    pub batch: usize,
    /// Batches per epoch.
    pub n_batches: usize,
    pub(crate) optimizers: &'a Optimizers,
    pub(crate) stop: bool,
    /// Not a distributed run, or its rank 0: the process that writes files.
    pub(crate) is_main: bool,
}

impl TrainState<'_> {
    /// Whether this process writes files: always, except in distributed training where only
    /// rank 0 does (checkpoints, plots).
    pub fn is_main(&self) -> bool {
        self.is_main
    }
    /// The current learning rate of every parameter group (`wide`, `deeptabular`, …).
    pub fn lrs(&self) -> BTreeMap<String, f64> {
        self.optimizers.lrs()
    }
    /// Asks the trainer to stop after the current epoch.
    pub fn request_stop(&mut self) {
        self.stop = true;
    }
    /// Whether a stop was requested (by this or an earlier callback of the same hook).
    pub fn stop_requested(&self) -> bool {
        self.stop
    }
}

/// Hooks into [`Trainer::fit`](crate::training::Trainer::fit). Every method has an empty
/// default; an error aborts training and is returned by `fit`. Add callbacks with
/// [`Trainer::add_callback`](crate::training::Trainer::add_callback).
pub trait Callback: Send {
    /// Before the first epoch of a `fit`.
    fn on_train_begin(&mut self, _state: &mut TrainState) -> Result<()> {
        Ok(())
    }
    /// After the last epoch of a `fit` (and after early stopping restored the best weights).
    fn on_train_end(&mut self, _state: &mut TrainState) -> Result<()> {
        Ok(())
    }
    /// Before every epoch.
    fn on_epoch_begin(&mut self, _state: &mut TrainState) -> Result<()> {
        Ok(())
    }
    /// After every epoch; `record` is the epoch's metrics record (also the last entry of
    /// `state.history`).
    fn on_epoch_end(
        &mut self,
        _state: &mut TrainState,
        _record: &BTreeMap<String, f64>,
    ) -> Result<()> {
        Ok(())
    }
    /// Before every training batch.
    fn on_batch_begin(&mut self, _state: &mut TrainState) -> Result<()> {
        Ok(())
    }
    /// After every training batch; `loss` is the batch's loss (NaN or infinite for a skipped
    /// batch).
    fn on_batch_end(&mut self, _state: &mut TrainState, _loss: f64) -> Result<()> {
        Ok(())
    }
}

/// Learning rates per parameter group, recorded by [`LrHistory`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LrLog {
    /// The learning rates at the start of every epoch.
    pub epochs: Vec<BTreeMap<String, f64>>,
    /// The learning rates used by every batch (when recorded).
    pub batches: Vec<BTreeMap<String, f64>>,
}

/// Records the learning rate of every parameter group per epoch and (with `per_batch`) per
/// batch. Clones share one log: keep a clone, add the other to the trainer, read the log after
/// `fit`.
#[derive(Clone, Debug, Default)]
pub struct LrHistory {
    per_batch: bool,
    log: Arc<Mutex<LrLog>>,
}

impl LrHistory {
    /// Records per epoch, and also per batch when `per_batch`.
    pub fn new(per_batch: bool) -> Self {
        Self {
            per_batch,
            log: Arc::default(),
        }
    }
    /// A copy of the log so far.
    pub fn log(&self) -> LrLog {
        self.shared_log().clone()
    }
    /// The log shared by the clones.
    fn shared_log(&self) -> MutexGuard<'_, LrLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// One group's learning rate at the start of every epoch.
    pub fn epoch_series(&self, group: &str) -> Vec<f64> {
        series(&self.log().epochs, group)
    }
    /// One group's learning rate at every batch.
    pub fn batch_series(&self, group: &str) -> Vec<f64> {
        series(&self.log().batches, group)
    }
}

impl Callback for LrHistory {
    fn on_epoch_begin(&mut self, state: &mut TrainState) -> Result<()> {
        let lrs = state.lrs();
        self.shared_log().epochs.push(lrs);
        Ok(())
    }
    fn on_batch_begin(&mut self, state: &mut TrainState) -> Result<()> {
        if self.per_batch {
            let lrs = state.lrs();
            self.shared_log().batches.push(lrs);
        }
        Ok(())
    }
}

/// Writes the output of `write` (called with a temporary path in the same directory) to `path`
/// atomically: the temporary file is renamed onto `path` once complete and removed on error, so
/// `path` is either the old or the new complete file.
pub(crate) fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| {
            WideDeepError::config("path", format!("{} is not a file path", path.display()))
        })?
        .to_string_lossy()
        .to_string();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = write(&tmp).and_then(|()| {
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| WideDeepError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| WideDeepError::io(path, e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Model weights as `(name, contiguous CPU tensor)` pairs sorted by name.
pub(crate) fn weights_cpu(model: &WideDeep) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = model
        .var_store()
        .variables()
        .into_iter()
        .map(|(k, t)| (k, t.detach().to_device(tch::Device::Cpu).contiguous()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Saves the model weights (`.safetensors`, loadable with `VarStore::load`) every
/// `every_n_epochs` epochs, or only when `monitor` improved with `save_best_only`; keeps at most
/// `max_files` files (deleting the oldest). Files are `{dir}/{prefix}_epoch{N}.safetensors`
/// (`N` 1-based) and are written atomically.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelCheckpoint {
    /// The directory of the files (created when missing).
    pub dir: PathBuf,
    /// The start of the file names.
    pub prefix: String,
    /// The history key compared with `save_best_only` (default `val_loss`).
    pub monitor: String,
    /// Whether `monitor` should go down or up.
    pub mode: Mode,
    /// Save only when `monitor` improved.
    pub save_best_only: bool,
    /// Save every this many epochs.
    pub every_n_epochs: usize,
    /// At most this many files are kept (`None`: all).
    pub max_files: Option<usize>,
    #[serde(skip)]
    best: Option<f64>,
    #[serde(skip)]
    saved: VecDeque<PathBuf>,
}

impl Default for ModelCheckpoint {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("checkpoints"),
            prefix: "model".into(),
            monitor: "val_loss".into(),
            mode: Mode::Auto,
            save_best_only: false,
            every_n_epochs: 1,
            max_files: None,
            best: None,
            saved: VecDeque::new(),
        }
    }
}

impl ModelCheckpoint {
    /// Checkpoints into `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            ..Default::default()
        }
    }
    /// Sets the start of the file names.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// Sets the history key compared with `save_best_only`.
    pub fn monitor(mut self, key: &str) -> Self {
        self.monitor = key.into();
        self
    }
    setters!(mode: Mode, save_best_only: bool, every_n_epochs: usize);
    /// Keeps at most `n` files.
    pub fn max_files(mut self, n: usize) -> Self {
        self.max_files = Some(n);
        self
    }

    /// Checks the fields; errors name `model_checkpoint.<field>`.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.every_n_epochs != 0,
            config("model_checkpoint.every_n_epochs"),
            "must be ≥ 1"
        );
        ensure!(
            self.max_files != Some(0),
            config("model_checkpoint.max_files"),
            "must be ≥ 1"
        );
        ensure!(
            !self.prefix.is_empty() && !self.prefix.contains(['/', '\\']),
            config("model_checkpoint.prefix"),
            "must be a non-empty file name prefix"
        );
        Ok(())
    }

    /// The files written so far by this callback (oldest first), deleted ones excluded.
    pub fn saved_files(&self) -> Vec<PathBuf> {
        self.saved.iter().cloned().collect()
    }

    fn maximize(&self) -> bool {
        self.mode.maximizes(&self.monitor)
    }
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&mut self, state: &mut TrainState) -> Result<()> {
        self.validate()?;
        if !state.is_main() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| WideDeepError::io(&self.dir, e))
    }

    fn on_epoch_end(
        &mut self,
        state: &mut TrainState,
        record: &BTreeMap<String, f64>,
    ) -> Result<()> {
        if (state.epoch + 1) % self.every_n_epochs != 0 || !state.is_main() {
            return Ok(());
        }
        if self.save_best_only {
            let value = monitored(record, &self.monitor, "model_checkpoint.monitor")?;
            if !improves(self.best, value, self.maximize(), 0.0) {
                return Ok(());
            }
            self.best = Some(value);
        }
        let path = self.dir.join(format!(
            "{}_epoch{}.safetensors",
            self.prefix,
            state.epoch + 1
        ));
        let weights = weights_cpu(state.model);
        write_atomic(&path, |tmp| {
            Tensor::write_safetensors(&weights, tmp).map_err(Into::into)
        })?;
        self.saved.retain(|p| p != &path);
        self.saved.push_back(path);
        while self.max_files.is_some_and(|m| self.saved.len() > m) {
            if let Some(old) = self.saved.pop_front() {
                std::fs::remove_file(&old).map_err(|e| WideDeepError::io(&old, e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_patience_epochs_without_improvement() {
        let cfg = EarlyStopping::default().patience(2).min_delta(0.01);
        let mut s = EarlyStoppingState::new();
        assert_eq!(s.update(&cfg, 0, 1.0), (true, false));
        assert_eq!(s.update(&cfg, 1, 0.5), (true, false));
        assert_eq!(s.update(&cfg, 2, 0.495), (false, false)); // within min_delta
        assert_eq!(s.update(&cfg, 3, 0.6), (false, true));
        assert_eq!(s.best_epoch, 1);
    }

    #[test]
    fn auto_mode_is_one_rule_for_every_monitor() {
        for (key, up) in [
            ("val_loss", false),
            ("rmse", false),
            ("val_mae", false),
            ("val_mae[1]", false),
            ("val_auc", true),
            ("r2[0]", true),
            ("accuracy", true),
        ] {
            assert_eq!(Mode::Auto.maximizes(key), up, "{key}");
        }
        assert!(Mode::Max.maximizes("loss") && !Mode::Min.maximizes("auc"));
    }

    #[test]
    fn auto_mode_direction() {
        assert!(!EarlyStopping::default().maximize());
        assert!(EarlyStopping::default().monitor("val_auc").maximize());
        assert!(!EarlyStopping::default().monitor("val_rmse").maximize());
        assert!(!EarlyStopping::default().monitor("val_mae").maximize());
        assert!(!EarlyStopping::default()
            .monitor("val_auc")
            .mode(Mode::Min)
            .maximize());
    }
}
