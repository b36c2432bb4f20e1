#![warn(missing_docs)]
//! # widedeep
//!
//! Wide-and-deep models over tabular data (text and image components plug into the same
//! [`models::Component`] trait) on libtorch through `tch`, with Polars DataFrames as input.
//!
//! The data path: a DataFrame goes through the preprocessors of
//! [`widedeep_preprocessing`] (re-exported as [`preprocessing`]) into a
//! [`training::Dataset`] of tensors; a [`models::WideDeep`] model is trained by a
//! [`training::Trainer`]; a [`pipeline::Pipeline`] bundles both, predicts from DataFrames and
//! saves to one directory.
//!
//! ```no_run
//! use widedeep::prelude::*;
//!
//! # fn main() -> widedeep::Result<()> {
//! let df = widedeep::datasets::adult()?;
//! let mut prep = Preprocessors::new()
//!     .wide(WidePreprocessor::new(&["education", "occupation"]))
//!     .tab(TabPreprocessor::new(&["workclass", "relationship"], &["age", "hours-per-week"]))
//!     .target(TargetEncoder::new("income", TargetKind::Binary));
//! let train = prep.fit_transform(&df)?;
//! let model = WideDeepConfig::new()
//!     .wide(WideConfig::new(prep.wide_dim()?))
//!     .deeptabular(TabMlpConfig::from_meta(&prep.tab_meta()?));
//! let model = WideDeep::new(&model, default_device()?)?;
//! let config = TrainerConfig::new(prep.objective()?).epochs(2).batch_size(256);
//! let mut trainer = Trainer::new(model, config)?;
//! trainer.fit(&train, None)?;
//! Pipeline::new(prep, trainer).save("adult-model")?;
//! # Ok(())
//! # }
//! ```
pub mod datasets;
pub mod device;
pub mod distributed;
pub mod error;
pub mod explain;
mod macros;
pub mod models;
pub mod pipeline;
pub mod training;

pub use error::{Result, WideDeepError};
/// The polars version widedeep is built against, for building DataFrames without a version clash.
pub use polars;
pub use tch;
pub use widedeep_preprocessing as preprocessing;

/// The types most programs need.
pub mod prelude {
    pub use crate::device::{default_device, parse_device};
    pub use crate::distributed::{Distributed, DistributedConfig};
    pub use crate::explain::{
        plots, Background, BackgroundKind, Explainer, ExplainerConfig, Explanation,
        GlobalImportance, Method, Output,
    };
    pub use crate::models::{
        Activation, Component, ComponentConfig, ContNorm, HeadConfig, MaskType, MlpConfig,
        ModelInput, TabMlpConfig, TabNetConfig, TabResnetConfig, WideConfig, WideDeep,
        WideDeepConfig,
    };
    pub use crate::models::{
        AttentionFusionConfig, AttentiveRnnConfig, Backbone, BackboneConfig, BasicRnnConfig,
        BertConfig, ImageInput, RnnPooling, RnnType, SmallCnnConfig, StackedAttentiveRnnConfig,
        TextInput, TextPooling, TextTransformerConfig,
    };
    pub use crate::models::{
        AttnEmbedConfig, ContEmbed, ContextAttentionMlpConfig, FtTransformerConfig, SaintConfig,
        SelfAttentionMlpConfig, SharedEmbed, TabFastFormerConfig, TabPerceiverConfig,
        TabTransformerConfig, TransformerActivation,
    };
    pub use crate::models::{
        AutoIntConfig, AutoIntPlusConfig, DcnConfig, DcnV2Config, GdcnConfig, Structure,
    };
    pub use crate::models::{
        BayesianModel, BayesianModelConfig, BayesianPrior, BayesianTabMlpConfig, BayesianWideConfig,
    };
    pub use crate::models::{DeepFfmConfig, DeepFmConfig, RecMlpConfig, XDeepFmConfig};
    pub use crate::models::{DinConfig, SeqInput, SeqTransformerConfig, UnitActivation};
    pub use crate::pipeline::BayesianPipeline;
    pub use crate::pipeline::{ParquetPredict, ParquetPredictReport};
    pub use crate::pipeline::{ParquetScan, ScanDataset, ScanOptions};
    pub use crate::pipeline::{Pipeline, Preprocessors};
    pub use crate::training::pretrain::{
        EncoderDecoder, EncoderDecoderConfig, EncoderDecoderTrainer, PretrainConfig,
    };
    pub use crate::training::{Average, CustomLoss, PositiveActivation, TargetSpec};
    pub use crate::training::{
        BatchSource, Callback, Dataset, EarlyStopping, History, LrHistory, LrScheduler, Metric,
        ModelCheckpoint, Objective, Optimizer, Trainer, TrainerConfig,
    };
    pub use crate::training::{BayesianTrainer, BayesianTrainerConfig};
    pub use crate::training::{
        CdLossType, ContrastiveDenoising, ContrastiveDenoisingConfig, ContrastiveDenoisingTrainer,
        DenoiseMlpType,
    };
    pub use crate::training::{
        FinetuneConfig, InitSpec, Initializer, Precision, Routine, Uncertainty, WeightedSampler,
    };
    pub use crate::{Result, WideDeepError};
    pub use tch::Device;
    pub use widedeep_preprocessing::{
        EmbeddingRule, Quantization, Scaling, TabPreprocessor, TargetEncoder, TargetKind,
        TargetScaling, WidePreprocessor,
    };
    pub use widedeep_preprocessing::{Fit, Persist, Transform};
    pub use widedeep_preprocessing::{
        ImagePreprocessor, Normalization, OnError, Side, TextPreprocessor, Vocab,
    };
    pub use widedeep_preprocessing::{SequencePreprocessor, SequenceSpec};
}

use std::sync::{Mutex, MutexGuard};

/// libtorch's default random generator is process-wide. Seeded work (model initialisation, a
/// whole `fit`) holds this lock so that concurrent fits in one process cannot interleave their
/// draws and break reproducibility.
static TORCH_RNG: Mutex<()> = Mutex::new(());

/// Holds libtorch's process-wide random generator for the caller: take it around code that
/// draws from it outside the library's own seeded calls (e.g. building layers with
/// `tch::nn` in a test while other threads train), so that seeded runs elsewhere in the
/// process stay reproducible. Not reentrant: do not call `WideDeep::new` or `Trainer::fit`
/// while holding it.
pub fn torch_rng_lock() -> MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner())
}
