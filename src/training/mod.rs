//! Training: objectives, metrics, data batching, early stopping and the [`Trainer`].
pub mod amp;
pub mod callbacks;
pub mod data;
pub mod extras;
pub mod finetune;
pub mod grad;
pub mod init;
pub mod metrics;
pub mod objectives;
pub mod prefetch;
pub mod sampler;
pub mod trainer;
pub mod uncertainty;

pub use amp::{GradScalerConfig, Precision};
pub use callbacks::{EarlyStopping, History, Mode};
pub use data::{stack_targets, Dataset};
pub use extras::TrainingExtras;
pub use finetune::{FinetuneConfig, Routine};
pub use init::{FanMode, InitSpec, Initializer, Nonlinearity};
pub use metrics::{Average, Metric};
pub use objectives::{
    CustomLoss, CustomObjective, FocalRActivation, Objective, PositiveActivation, TargetReduction,
    TargetSpec,
};
pub use sampler::{SampleWeights, WeightedSampler};
pub use trainer::{Optimizer, Trainer, TrainerConfig};
pub use uncertainty::Uncertainty;
