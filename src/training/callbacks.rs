//! Training history and early stopping.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-epoch values: `loss`, each metric by name, and `val_`-prefixed validation values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub epochs: Vec<BTreeMap<String, f64>>,
}

impl History {
    /// The values of one key over the epochs (NaN where an epoch lacks it).
    pub fn series(&self, key: &str) -> Vec<f64> {
        self.epochs
            .iter()
            .map(|e| e.get(key).copied().unwrap_or(f64::NAN))
            .collect()
    }

    /// The last epoch's value of `key`.
    pub fn last(&self, key: &str) -> Option<f64> {
        self.epochs.last().and_then(|e| e.get(key).copied())
    }

    pub fn len(&self) -> usize {
        self.epochs.len()
    }

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
    Min,
    Max,
}

/// Stops training when `monitor` has not improved by more than `min_delta` for `patience`
/// epochs; with `restore_best_weights` the weights of the best epoch are put back at the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EarlyStopping {
    /// A history key, e.g. `val_loss` (the default) or `val_auc`.
    pub monitor: String,
    pub mode: Mode,
    pub patience: usize,
    pub min_delta: f64,
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
    pub fn monitor(mut self, key: &str) -> Self {
        self.monitor = key.into();
        self
    }
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
    pub fn patience(mut self, epochs: usize) -> Self {
        self.patience = epochs;
        self
    }
    pub fn min_delta(mut self, delta: f64) -> Self {
        self.min_delta = delta;
        self
    }
    pub fn restore_best_weights(mut self, on: bool) -> Self {
        self.restore_best_weights = on;
        self
    }

    /// Whether larger values of the monitored key are better.
    pub fn maximize(&self) -> bool {
        match self.mode {
            Mode::Min => false,
            Mode::Max => true,
            Mode::Auto => {
                let key = self.monitor.trim_start_matches("val_");
                !(key.contains("loss") || key == "rmse" || key == "mae")
            }
        }
    }
}

/// The running state of an [`EarlyStopping`] during one `fit`.
#[derive(Debug)]
pub(crate) struct EarlyStoppingState {
    pub best: Option<f64>,
    pub best_epoch: usize,
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
        let improved = match self.best {
            None => value.is_finite(),
            Some(best) if cfg.maximize() => value > best + cfg.min_delta,
            Some(best) => value < best - cfg.min_delta,
        };
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
