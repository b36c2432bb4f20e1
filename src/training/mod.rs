//! Training: objectives, metrics, data batching, optimizers, learning-rate schedulers,
//! callbacks (early stopping, checkpoints, learning-rate history), the training extras
//! (initializers, clipping, accumulation, warm-up, sampling, mixed precision, prefetch) and the
//! [`Trainer`].
pub mod amp;
pub mod bayesian;
pub mod callbacks;
pub(crate) mod checks;
pub mod data;
pub mod extras;
pub mod finetune;
pub mod grad;
pub(crate) mod host;
pub mod init;
pub mod metrics;
pub mod objectives;
pub mod optim;
pub mod prefetch;
pub mod pretrain;
pub mod retrieval;
pub mod sampler;
pub mod schedulers;
pub mod stream;
pub mod trainer;
pub mod uncertainty;

pub use crate::distributed::{Distributed, DistributedConfig};
pub use amp::{GradScalerConfig, Precision};
pub use bayesian::{BayesianTrainer, BayesianTrainerConfig};
pub use callbacks::{
    Callback, EarlyStopping, History, LrHistory, LrLog, Mode, ModelCheckpoint, TrainState,
};
pub use data::{stack_targets, Dataset};
pub use extras::TrainingExtras;
pub use finetune::{FinetuneConfig, Routine};
pub use init::{FanMode, InitSpec, Initializer, Nonlinearity};
pub use metrics::{Average, Metric};
pub use objectives::{
    CustomLoss, CustomObjective, FocalRActivation, Objective, PositiveActivation, TargetReduction,
    TargetSpec,
};
pub use optim::{
    AdagradConfig, AdamConfig, Optimizer, Optimizers, ParamGroup, RmsPropConfig, SgdConfig,
};
pub use pretrain::contrastive::{
    CdLossType, ContrastiveDenoising, ContrastiveDenoisingConfig, ContrastiveDenoisingTrainer,
    DenoiseMlpType,
};
pub use sampler::{SampleWeights, WeightedSampler};
pub use schedulers::{Anneal, CyclicMode, LrScheduler, Scheduler, ThresholdMode};
pub use stream::BatchSource;
pub use trainer::{Trainer, TrainerConfig};
pub use uncertainty::Uncertainty;
