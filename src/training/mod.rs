//! Training: objectives, metrics, data batching, early stopping and the [`Trainer`].
pub mod callbacks;
pub mod data;
pub mod metrics;
pub mod objectives;
pub mod trainer;

pub use callbacks::{EarlyStopping, History, Mode};
pub use data::{stack_targets, Dataset};
pub use metrics::{Average, Metric};
pub use objectives::{
    CustomLoss, CustomObjective, FocalRActivation, Objective, PositiveActivation, TargetReduction,
    TargetSpec,
};
pub use trainer::{Optimizer, Trainer, TrainerConfig};
