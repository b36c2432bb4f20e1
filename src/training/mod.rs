//! Training: objectives, metrics, data batching, optimizers, learning-rate schedulers,
//! callbacks (early stopping, checkpoints, learning-rate history) and the [`Trainer`].
pub mod callbacks;
pub mod data;
pub mod metrics;
pub mod objectives;
pub mod optim;
pub mod schedulers;
pub mod trainer;

pub use callbacks::{
    Callback, EarlyStopping, History, LrHistory, LrLog, Mode, ModelCheckpoint, TrainState,
};
pub use data::Dataset;
pub use metrics::Metric;
pub use objectives::Objective;
pub use optim::{
    AdagradConfig, AdamConfig, Optimizer, Optimizers, ParamGroup, RmsPropConfig, SgdConfig,
};
pub use schedulers::{Anneal, CyclicMode, LrScheduler, Scheduler, ThresholdMode};
pub use trainer::{Trainer, TrainerConfig};
