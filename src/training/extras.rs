//! Training extras configured in [`TrainerConfig`]: weight initializers, gradient clipping and
//! accumulation, warm-up / fine-tuning, weighted sampling, mixed precision and prefetching.
//!
//! The fields live in [`TrainingExtras`], flattened into the `TrainerConfig` JSON; the setters
//! are methods of `TrainerConfig`.
use crate::error::Result;
use crate::macros::ensure;
use crate::training::amp::{GradScalerConfig, Precision};
use crate::training::checks::check_positive;
use crate::training::finetune::FinetuneConfig;
use crate::training::grad::GradSettings;
use crate::training::init::{is_component_key, InitSpec};
use crate::training::sampler::{RowSampler, WeightedSampler};
use crate::training::{Dataset, Trainer, TrainerConfig};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::{Device, Tensor};

/// The extras of a [`TrainerConfig`] (flattened into its JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingExtras {
    /// Initializer per component (`wide`, `deeptabular`, `deeptext`, `deeptext_<i>`,
    /// `deepimage`, `deepimage_<i>`, `head`, `other`), applied once before the first epoch
    /// (when the history is empty), seeded with the model's seed.
    pub initializers: BTreeMap<String, InitSpec>,
    /// Rescale the gradients so that their global L2 norm is at most this.
    pub clip_grad_norm: Option<f64>,
    /// Clamp every gradient element to `[-v, v]`.
    pub clip_grad_value: Option<f64>,
    /// Accumulate the gradients of this many batches (each loss divided by it) per optimizer
    /// step; a partial window is stepped at the end of the epoch.
    pub accumulate_grad_batches: usize,
    /// Warm up the components before the joint training.
    pub finetune: Option<FinetuneConfig>,
    /// Draw the training rows of each epoch by weight (with replacement) instead of shuffling.
    pub sampler: Option<WeightedSampler>,
    /// fp16 / bf16 autocast on CUDA (a no-op with a warning on the CPU).
    pub precision: Precision,
    /// Loss scaling for fp16.
    pub grad_scaler: GradScalerConfig,
    /// Prepare the next batch on a worker thread; `None`: on for CUDA models, off on the CPU.
    pub prefetch: Option<bool>,
}

impl Default for TrainingExtras {
    fn default() -> Self {
        Self {
            initializers: BTreeMap::new(),
            clip_grad_norm: None,
            clip_grad_value: None,
            accumulate_grad_batches: 1,
            finetune: None,
            sampler: None,
            precision: Precision::Fp32,
            grad_scaler: GradScalerConfig::default(),
            prefetch: None,
        }
    }
}

impl TrainingExtras {
    /// Checks every field; errors name the field.
    pub fn validate(&self) -> Result<()> {
        for (k, spec) in &self.initializers {
            let field = format!("initializers.{k}");
            ensure!(
                is_component_key(k),
                config(field),
                "not a component: use wide, deeptabular, deeptext, deeptext_<i>, deepimage, \
                 deepimage_<i>, head or other"
            );
            spec.validate(&field)?;
        }
        for (name, v) in [
            ("clip_grad_norm", self.clip_grad_norm),
            ("clip_grad_value", self.clip_grad_value),
        ] {
            if let Some(v) = v {
                check_positive(v, name)?;
            }
        }
        ensure!(
            self.accumulate_grad_batches != 0,
            config("accumulate_grad_batches"),
            "must be ≥ 1"
        );
        if let Some(f) = &self.finetune {
            f.validate()?;
        }
        if let Some(s) = &self.sampler {
            s.validate()?;
        }
        self.grad_scaler.validate()
    }

    /// Whether batches are prefetched on a worker thread for a model on `device`.
    pub fn prefetch_on(&self, device: Device) -> bool {
        self.prefetch.unwrap_or(device.is_cuda())
    }

    pub(crate) fn grad_settings(&self) -> GradSettings {
        GradSettings {
            clip_norm: self.clip_grad_norm,
            clip_value: self.clip_grad_value,
            accumulate: self.accumulate_grad_batches,
            precision: self.precision,
            scaler: self.grad_scaler.clone(),
        }
    }
}

/// Setters of the extras.
impl TrainerConfig {
    /// Sets the initializer of one component (see [`TrainingExtras::initializers`]).
    pub fn initializer(mut self, component: &str, spec: impl Into<InitSpec>) -> Self {
        self.extras
            .initializers
            .insert(component.to_string(), spec.into());
        self
    }
    /// Rescales the gradients to a global L2 norm of at most `max_norm`.
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.extras.clip_grad_norm = Some(max_norm);
        self
    }
    /// Clamps every gradient element to `[-max, max]`.
    pub fn clip_grad_value(mut self, max: f64) -> Self {
        self.extras.clip_grad_value = Some(max);
        self
    }
    /// Steps the optimizers once per `n` batches.
    pub fn accumulate_grad_batches(mut self, n: usize) -> Self {
        self.extras.accumulate_grad_batches = n;
        self
    }
    /// Warms up the components before the joint training.
    pub fn finetune(mut self, f: FinetuneConfig) -> Self {
        self.extras.finetune = Some(f);
        self
    }
    /// Draws the training rows by weight instead of shuffling.
    pub fn sampler(mut self, s: WeightedSampler) -> Self {
        self.extras.sampler = Some(s);
        self
    }
    /// Sets the precision of the forward pass.
    pub fn precision(mut self, p: Precision) -> Self {
        self.extras.precision = p;
        self
    }
    /// Sets the fp16 loss scaling.
    pub fn grad_scaler(mut self, s: GradScalerConfig) -> Self {
        self.extras.grad_scaler = s;
        self
    }
    /// Turns prefetching of the next batch on a worker thread on or off.
    pub fn prefetch(mut self, on: bool) -> Self {
        self.extras.prefetch = Some(on);
        self
    }
}

/// How the rows of each epoch are ordered: the stored order, a shuffle, or weighted draws.
pub(crate) enum RowOrder {
    /// The rows as stored.
    Stored,
    /// A fresh shuffle of this many rows every epoch.
    Shuffled(i64),
    /// Weighted draws with replacement.
    Sampled(RowSampler),
}

impl RowOrder {
    /// Rows per epoch for a training set of `n` rows.
    pub(crate) fn rows(&self, n: i64) -> usize {
        match self {
            RowOrder::Sampled(s) => s.len(),
            _ => n as usize,
        }
    }

    /// The row order of one epoch (`[n]` i64 indices; `None`: the stored order). The shuffle
    /// draws from `rng` exactly as `Dataset::shuffled` does.
    pub(crate) fn epoch(&self, rng: &mut impl Rng) -> Option<Tensor> {
        match self {
            RowOrder::Stored => None,
            RowOrder::Shuffled(n) => {
                let mut idx: Vec<i64> = (0..*n).collect();
                idx.shuffle(rng);
                Some(Tensor::from_slice(&idx))
            }
            RowOrder::Sampled(s) => Some(Tensor::from_slice(&s.draw(rng))),
        }
    }
}

impl Trainer {
    /// Runs before each `fit`: applies the initializers (before the first epoch only) and the
    /// warm-up (the caller must not hold the RNG lock).
    pub(crate) fn before_fit(&mut self, train: &Dataset, val: Option<&Dataset>) -> Result<()> {
        self.apply_initializers_once()?;
        let cfg = self.config().clone();
        if let Some(ft) = &cfg.extras.finetune {
            self.warm_up(ft, train, val)?;
        }
        Ok(())
    }

    /// Applies the configured initializers before the first epoch of a run (not when
    /// training continues or resumes).
    pub(crate) fn apply_initializers_once(&mut self) -> Result<()> {
        let cfg = self.config();
        if self.history().is_empty() && !cfg.extras.initializers.is_empty() {
            let seed = self.model().config().map_or(cfg.seed, |c| c.seed);
            crate::training::init::apply_initializers(
                self.model(),
                &cfg.extras.initializers,
                seed,
            )?;
        }
        Ok(())
    }

    /// The row order of `fit`'s epochs for `train`.
    pub(crate) fn row_order(&self, train: &Dataset) -> Result<RowOrder> {
        let cfg = self.config();
        Ok(match &cfg.extras.sampler {
            Some(s) => RowOrder::Sampled(s.build(train, &cfg.objective)?),
            None if cfg.shuffle => RowOrder::Shuffled(train.len()),
            None => RowOrder::Stored,
        })
    }
}
