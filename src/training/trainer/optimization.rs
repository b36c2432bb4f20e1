//! The optimizers and learning-rate schedules of a [`Trainer`](super::Trainer): created by its first `fit` (or
//! restored by `resume`) and continued by later fits.
use super::TrainerConfig;
use crate::error::Result;
use crate::models::WideDeep;
use crate::training::optim::{Optimizers, ParamGroup};
use crate::training::schedulers::Scheduler;
use std::collections::{BTreeMap, HashMap};
use std::sync::PoisonError;
use tch::Tensor;

/// One [`ParamGroup`] per model parameter group and the running schedule of every scheduled
/// group.
#[derive(Debug)]
pub(super) struct Optimization {
    pub optimizers: Optimizers,
    /// Per group: the config field of its schedule (for errors) and the running schedule.
    pub schedulers: BTreeMap<String, (String, Scheduler)>,
}

impl Optimization {
    /// Fresh optimizers and schedules for `model` as `config` sets them, the learning rates set
    /// from the schedules; `total_steps` is OneCycle's default length.
    pub fn new(model: &WideDeep, config: &TrainerConfig, total_steps: usize) -> Result<Self> {
        let optimizers = build_optimizers(model, config);
        let mut schedulers = BTreeMap::new();
        for g in optimizers.groups() {
            let s = config.group_settings(g.name());
            if let Some((field, sched)) = s.scheduler {
                let run = Scheduler::new(&sched, s.lr, total_steps, &field)?;
                schedulers.insert(g.name().to_string(), (field, run));
            }
        }
        Ok(Self::with_schedulers(optimizers, schedulers))
    }

    /// `optimizers` driven by `schedulers`, whose learning rates are applied.
    pub fn with_schedulers(
        optimizers: Optimizers,
        schedulers: BTreeMap<String, (String, Scheduler)>,
    ) -> Self {
        let mut out = Self {
            optimizers,
            schedulers,
        };
        out.apply_scheduled_lrs();
        out
    }

    /// Sets every scheduled group's learning rate from its schedule.
    fn apply_scheduled_lrs(&mut self) {
        for (name, (_, s)) in &self.schedulers {
            if let Some(g) = self.optimizers.group_mut(name) {
                g.set_lr(s.lr());
            }
        }
    }

    /// After every training batch: advances the per-batch schedules.
    pub fn on_batch_end(&mut self) {
        for (_, s) in self.schedulers.values_mut() {
            s.on_batch_end();
        }
        self.apply_scheduled_lrs();
    }

    /// After every epoch, with its record: advances the per-epoch schedules.
    pub fn on_epoch_end(&mut self, record: &BTreeMap<String, f64>) -> Result<()> {
        for (field, s) in self.schedulers.values_mut() {
            s.on_epoch_end(record, field)?;
        }
        self.apply_scheduled_lrs();
        Ok(())
    }
}

/// One [`ParamGroup`] per model parameter group holding trainable variables, with the group's
/// optimizer, learning rate and weight decay.
pub(super) fn build_optimizers(model: &WideDeep, config: &TrainerConfig) -> Optimizers {
    let vs = model.var_store();
    let names: HashMap<usize, String> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.numel() > 0)
        .map(|(k, t)| (t.data_ptr() as usize, k))
        .collect();
    let group_names: BTreeMap<usize, String> = model
        .param_groups()
        .into_iter()
        .map(|(n, i)| (i, n))
        .collect();
    let mut by_group: BTreeMap<usize, Vec<(String, Tensor)>> = BTreeMap::new();
    {
        let vars = vs.variables_.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, v) in vars.trainable_variables.iter().enumerate() {
            let name = names
                .get(&(v.tensor.data_ptr() as usize))
                .cloned()
                .unwrap_or_else(|| format!("__unnamed_{i}"));
            by_group
                .entry(v.group)
                .or_default()
                .push((name, v.tensor.shallow_clone()));
        }
    }
    let groups = by_group
        .into_iter()
        .map(|(id, params)| {
            let name = group_names
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("group_{id}"));
            let s = config.group_settings(&name);
            ParamGroup::new(name, s.optimizer, s.lr, s.weight_decay, params)
        })
        .collect();
    Optimizers::new(groups)
}
