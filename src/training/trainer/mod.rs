//! The [`Trainer`]: fits a [`WideDeep`] model, evaluates and predicts; checkpoints and resumes.
//!
//! - `config`: [`TrainerConfig`], its setters and validation;
//! - `fit`: the training loop ([`Trainer::fit`]);
//! - `optimization`: the optimizers and learning-rate schedules that `fit` creates and later
//!   fits continue;
//! - `checkpoint`: [`Trainer::save_checkpoint`] and [`Trainer::resume`];
//! - `predict`: prediction and evaluation.
use crate::error::Result;
use crate::models::WideDeep;
use crate::training::callbacks::{Callback, EarlyStoppingState, History};
use crate::training::optim::Optimizers;
use std::collections::BTreeMap;
use tch::Tensor;

mod checkpoint;
mod config;
mod data_parallel;
pub(crate) mod fit;
mod optimization;
mod predict;

pub use crate::training::optim::Optimizer;
pub(crate) use checkpoint::{bad_checkpoint, CheckpointTensors, META_KEY};
pub use config::TrainerConfig;
use optimization::Optimization;
pub(crate) use predict::{check_finite_record, check_finite_rows};

/// Trains and runs a [`WideDeep`] model.
///
/// The optimizers (one [`ParamGroup`](crate::training::ParamGroup) per model component) and
/// learning-rate schedulers are created by the first [`Trainer::fit`] and kept, so a second
/// `fit` continues where the first stopped; [`Trainer::save_checkpoint`] and
/// [`Trainer::resume`] carry them across processes.
pub struct Trainer {
    model: WideDeep,
    pub(crate) config: TrainerConfig,
    history: History,
    callbacks: Vec<Box<dyn Callback>>,
    /// The optimizers and schedules: created by the first `fit` (or by `resume`), continued by
    /// later ones.
    optimization: Option<Optimization>,
    es_state: EarlyStoppingState,
    best_weights: Option<Vec<(String, Tensor)>>,
    /// Set by `resume`: the next `fit` continues the early-stopping state instead of resetting it.
    resumed: bool,
    /// Position of the shuffling generator after the last epoch (see [`Trainer::fit`]).
    shuffle_pos: Option<u128>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("model", &self.model)
            .field("config", &self.config)
            .field("history", &self.history)
            .field("callbacks", &self.callbacks.len())
            .finish()
    }
}

impl Trainer {
    /// Pairs a model with a training configuration; checks that they fit together.
    ///
    /// A model whose config leaves `pred_dim` unset (the default) gets its output width from
    /// the objective here (`objective.pred_dim()`: the class count, the number of quantiles,
    /// the blocks of a multi-target objective): it is rebuilt from its config with that width
    /// and the same seed, unless it was changed after it was built (`var_store_mut`,
    /// `warm_start`, `set_trainable`) — then set the width by hand.
    pub fn new(model: WideDeep, config: TrainerConfig) -> Result<Self> {
        config.validate()?;
        crate::device::keep_freed_host_memory();
        let wanted = config.objective.pred_dim();
        let model = match model.rebuilt_for(wanted) {
            Some(rebuilt) if wanted >= 1 && wanted != model.pred_dim() => rebuilt?,
            _ => model,
        };
        config.objective.check_pred_dim(model.pred_dim())?;
        config.check_groups(&model.param_groups())?;
        Ok(Self {
            model,
            config,
            history: History::default(),
            callbacks: Vec::new(),
            optimization: None,
            es_state: EarlyStoppingState::new(),
            best_weights: None,
            resumed: false,
            shuffle_pos: None,
        })
    }

    /// The model.
    pub fn model(&self) -> &WideDeep {
        &self.model
    }
    /// The model, mutably (e.g. to freeze components between fits).
    pub fn model_mut(&mut self) -> &mut WideDeep {
        &mut self.model
    }
    /// The training configuration.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }
    /// One record per epoch trained so far (earlier `fit` calls and resumed epochs included).
    pub fn history(&self) -> &History {
        &self.history
    }
    /// Forgets the optimizer and scheduler state, the shuffling position and the early-stopping
    /// state, so that the next `fit` starts them afresh (used between warm-up phases).
    pub(crate) fn reset_optimization(&mut self) {
        self.optimization = None;
        self.shuffle_pos = None;
        self.es_state = EarlyStoppingState::new();
        self.best_weights = None;
    }
    pub(crate) fn set_history(&mut self, history: History) {
        self.history = history;
    }

    /// Adds a callback run by every later `fit` (in the order added).
    pub fn add_callback(&mut self, callback: Box<dyn Callback>) {
        self.callbacks.push(callback);
    }

    /// The optimizers (one group per model component), once `fit` or `resume` created them.
    pub fn optimizers(&self) -> Option<&Optimizers> {
        self.optimization.as_ref().map(|o| &o.optimizers)
    }
    /// The optimizers, mutably (e.g. to change a group's learning rate between fits).
    pub fn optimizers_mut(&mut self) -> Option<&mut Optimizers> {
        self.optimization.as_mut().map(|o| &mut o.optimizers)
    }

    /// The current learning rate of every parameter group (empty before the first `fit`).
    pub fn lrs(&self) -> BTreeMap<String, f64> {
        self.optimizers().map(Optimizers::lrs).unwrap_or_default()
    }
}
