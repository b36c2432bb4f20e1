//! [`BayesianTrainerConfig`]: the settings of a [`BayesianTrainer`](super::BayesianTrainer).
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::training::callbacks::EarlyStopping;
use crate::training::checks::{non_negative, positive};
use crate::training::optim::Optimizer;
use crate::training::{Metric, Objective};
use serde::{Deserialize, Serialize};

/// Everything [`BayesianTrainer::fit`](super::BayesianTrainer::fit) needs besides the data.
/// Defaults follow the reference's `BayesianTrainer` (AdamW with PyTorch's defaults: lr 1e-3,
/// weight decay 0.01; batch size 32; two sampled networks per training and validation step)
/// except that shuffling is on and runs are seeded, as in the [`Trainer`](crate::training::Trainer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BayesianTrainerConfig {
    /// The likelihood: [`Objective::Binary`] (Bernoulli), [`Objective::WeightedBinary`],
    /// [`Objective::Multiclass`] (categorical) or [`Objective::Regression`] (Gaussian with
    /// unit variance: `½ (y − ŷ)²`, the reference's `BayesianSELoss`).
    pub objective: Objective,
    /// The optimizer of every parameter (posterior means and `ρ`, biases, normalisation).
    pub optimizer: Optimizer,
    /// The learning rate.
    pub lr: f64,
    /// The weight decay (decoupled for AdamW).
    pub weight_decay: f64,
    /// Rows per training batch.
    pub batch_size: usize,
    /// Rows per batch in evaluation and prediction.
    pub eval_batch_size: usize,
    /// Epochs run by each call of `fit`.
    pub epochs: usize,
    /// Reshuffle the training rows every epoch (the reference does not).
    pub shuffle: bool,
    /// Seeds shuffling, the validation split, the sampled weights of training (re-seeded every
    /// epoch from `(seed, epoch)`) and of prediction.
    pub seed: u64,
    /// Fraction of the training rows held out for validation (stratified for classification)
    /// when no validation set is passed to `fit`.
    pub val_split: Option<f64>,
    /// Metrics recorded every epoch on the training rows (from the step's mean output) and on
    /// the validation data (from the predictive mean of `n_val_samples` networks).
    pub metrics: Vec<Metric>,
    /// Stops training when a recorded value stops improving.
    pub early_stopping: Option<EarlyStopping>,
    /// Networks sampled per training step (the reference's `n_train_samples`, default 2): the
    /// data loss is taken on their mean output and their KL terms are summed.
    pub n_train_samples: usize,
    /// Networks sampled for the validation record (the reference's `n_val_samples`, default 2).
    pub n_val_samples: usize,
    /// 0: silent; 1: one summary line per epoch on stderr.
    pub verbose: u8,
}

impl Default for BayesianTrainerConfig {
    fn default() -> Self {
        Self {
            objective: Objective::Binary,
            optimizer: Optimizer::adamw(),
            lr: 1e-3,
            weight_decay: 0.01,
            batch_size: 32,
            eval_batch_size: 4096,
            epochs: 1,
            shuffle: true,
            seed: 1,
            val_split: None,
            metrics: Vec::new(),
            early_stopping: None,
            n_train_samples: 2,
            n_val_samples: 2,
            verbose: 1,
        }
    }
}

impl BayesianTrainerConfig {
    /// The defaults with `objective`.
    pub fn new(objective: Objective) -> Self {
        Self {
            objective,
            ..Self::default()
        }
    }
    setters!(
        objective: Objective,
        optimizer: Optimizer,
        lr: f64,
        weight_decay: f64,
        batch_size: usize,
        eval_batch_size: usize,
        epochs: usize,
        shuffle: bool,
        seed: u64,
        n_train_samples: usize,
        n_val_samples: usize,
        verbose: u8,
    );
    /// Holds out `fraction` of the training rows for validation.
    pub fn val_split(mut self, fraction: f64) -> Self {
        self.val_split = Some(fraction);
        self
    }
    /// Sets the recorded metrics.
    pub fn metrics(mut self, metrics: impl Into<Vec<Metric>>) -> Self {
        self.metrics = metrics.into();
        self
    }
    /// Sets early stopping.
    pub fn early_stopping(mut self, es: EarlyStopping) -> Self {
        self.early_stopping = Some(es);
        self
    }

    /// Checks every field; errors name the field.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            matches!(
                self.objective,
                Objective::Binary
                    | Objective::WeightedBinary { .. }
                    | Objective::Multiclass { .. }
                    | Objective::Regression
            ),
            config("objective"),
            "the Bayesian trainer supports binary, weighted_binary, multiclass and regression, \
             got {}",
            self.objective.name()
        );
        self.objective.validate()?;
        self.optimizer.validate("optimizer")?;
        ensure!(
            positive(self.lr),
            config("lr"),
            "must be positive, got {}",
            self.lr
        );
        ensure!(
            non_negative(self.weight_decay),
            config("weight_decay"),
            "must be finite and ≥ 0, got {}",
            self.weight_decay
        );
        ensure!(self.batch_size != 0, config("batch_size"), "must be ≥ 1");
        ensure!(
            self.eval_batch_size != 0,
            config("eval_batch_size"),
            "must be ≥ 1"
        );
        ensure!(
            self.n_train_samples != 0,
            config("n_train_samples"),
            "must be ≥ 1"
        );
        ensure!(
            self.n_val_samples != 0,
            config("n_val_samples"),
            "must be ≥ 1"
        );
        if let Some(f) = self.val_split {
            ensure!(
                f > 0.0 && f < 1.0,
                config("val_split"),
                "must be in (0, 1), got {f}"
            );
        }
        self.metrics
            .iter()
            .try_for_each(|m| m.check(&self.objective))
    }
}
