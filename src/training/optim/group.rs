//! Parameter groups and the optimizers of a whole model, with their saveable state.
use super::update::update;
use super::Optimizer;
use crate::error::Result;
use crate::macros::{bail, ensure};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::Tensor;

/// Per-parameter state: the step count and named buffers (created lazily at the first step,
/// as in PyTorch).
#[derive(Debug, Default)]
pub(super) struct ParamState {
    pub(super) step: u64,
    pub(super) buffers: BTreeMap<String, Tensor>,
}

/// One parameter tensor (shares storage with the model's variable) and its state.
#[derive(Debug)]
struct Param {
    name: String,
    tensor: Tensor,
    state: ParamState,
}

/// A named set of parameters updated by one optimizer with one learning rate and weight decay
/// (a model component: `wide`, `deeptabular`, `head`, …).
#[derive(Debug)]
pub struct ParamGroup {
    name: String,
    optimizer: Optimizer,
    lr: f64,
    weight_decay: f64,
    params: Vec<Param>,
}

impl ParamGroup {
    /// A group over `params` (name, tensor) pairs; the tensors share storage with the model.
    ///
    /// # Shapes
    /// - `params`: tensors of any shapes; the optimizer's buffers take their shapes
    pub fn new(
        name: impl Into<String>,
        optimizer: Optimizer,
        lr: f64,
        weight_decay: f64,
        params: Vec<(String, Tensor)>,
    ) -> Self {
        Self {
            name: name.into(),
            optimizer,
            lr,
            weight_decay,
            params: params
                .into_iter()
                .map(|(name, tensor)| Param {
                    name,
                    tensor,
                    state: ParamState::default(),
                })
                .collect(),
        }
    }

    /// The group's name (a model parameter group: `wide`, `deeptabular`, `head`, …).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The optimizer updating the group.
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }
    /// The current learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }
    /// Sets the learning rate of the next steps.
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    /// The weight decay (L2 penalty, or decoupled for AdamW).
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay
    }
    /// The group's parameter tensors (sharing storage with the model's variables).
    pub fn params(&self) -> impl Iterator<Item = &Tensor> {
        self.params.iter().map(|p| &p.tensor)
    }

    /// Sets every defined gradient of the group to zero.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            let grad = p.tensor.grad();
            if grad.defined() && !crate::training::host::zero_f32(&grad) {
                let _ = grad.detach().zero_();
            }
        }
    }

    /// One optimizer step over the parameters that require gradients and have one.
    pub fn step(&mut self) {
        let (opt, lr, wd) = (self.optimizer, self.lr, self.weight_decay);
        tch::no_grad(|| {
            for p in &mut self.params {
                if !p.tensor.requires_grad() {
                    continue;
                }
                let grad = p.tensor.grad();
                if !grad.defined() {
                    continue;
                }
                update(&opt, lr, wd, &mut p.tensor, grad, &mut p.state);
            }
        });
    }
}

/// The optimizers of a whole model: one [`ParamGroup`] per component.
#[derive(Debug, Default)]
pub struct Optimizers {
    groups: Vec<ParamGroup>,
}

/// The saveable state of [`Optimizers`]: step counts and learning rates (JSON-able) plus the
/// buffers as named tensors.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OptimizerStateMeta {
    /// Current learning rate per group.
    pub lrs: BTreeMap<String, f64>,
    /// Step count per parameter (by variable name).
    pub steps: BTreeMap<String, u64>,
}

impl Optimizers {
    /// The optimizers of `groups`.
    pub fn new(groups: Vec<ParamGroup>) -> Self {
        Self { groups }
    }
    /// The parameter groups, in the model's group order.
    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }
    /// The parameter groups, mutably (e.g. to set learning rates).
    pub fn groups_mut(&mut self) -> &mut [ParamGroup] {
        &mut self.groups
    }
    /// The group called `name`.
    pub fn group_mut(&mut self, name: &str) -> Option<&mut ParamGroup> {
        self.groups.iter_mut().find(|g| g.name == name)
    }
    /// Every parameter tensor of every group.
    pub fn params(&self) -> impl Iterator<Item = &Tensor> {
        self.groups.iter().flat_map(|g| g.params())
    }
    /// The current learning rate of each group.
    pub fn lrs(&self) -> BTreeMap<String, f64> {
        self.groups.iter().map(|g| (g.name.clone(), g.lr)).collect()
    }
    /// Sets every defined gradient of every group to zero.
    pub fn zero_grad(&mut self) {
        self.groups.iter_mut().for_each(ParamGroup::zero_grad);
    }
    /// One step of every group.
    pub fn step(&mut self) {
        self.groups.iter_mut().for_each(ParamGroup::step);
    }

    /// The state: metadata and the buffers as `(“<variable>/<buffer>”, tensor)` pairs on the CPU.
    ///
    /// # Shapes
    /// - every buffer has its parameter's shape
    pub fn state(&self) -> (OptimizerStateMeta, Vec<(String, Tensor)>) {
        let mut meta = OptimizerStateMeta {
            lrs: self.lrs(),
            ..Default::default()
        };
        let mut tensors = Vec::new();
        for p in self.groups.iter().flat_map(|g| &g.params) {
            if p.state.step > 0 || !p.state.buffers.is_empty() {
                meta.steps.insert(p.name.clone(), p.state.step);
            }
            for (b, t) in &p.state.buffers {
                tensors.push((
                    format!("{}/{b}", p.name),
                    t.to_device(tch::Device::Cpu).contiguous(),
                ));
            }
        }
        (meta, tensors)
    }

    /// Restores a state saved by [`Optimizers::state`] for the same model and optimizers.
    /// Errors (naming what is wrong) when a buffer does not belong to this optimizer or its
    /// shape differs.
    ///
    /// # Shapes
    /// - `tensors`: every buffer with its parameter's shape
    pub fn load_state(
        &mut self,
        meta: &OptimizerStateMeta,
        tensors: &[(String, Tensor)],
    ) -> Result<()> {
        const STATE: &str = "optimizer state";
        for g in &mut self.groups {
            if let Some(lr) = meta.lrs.get(&g.name) {
                g.lr = *lr;
            }
            for p in &mut g.params {
                p.state = ParamState {
                    step: meta.steps.get(&p.name).copied().unwrap_or(0),
                    buffers: BTreeMap::new(),
                };
            }
        }
        for (key, t) in tensors {
            let Some((var, buf)) = key.rsplit_once('/') else {
                bail!(input(STATE), "bad buffer name `{key}`");
            };
            let found = self.groups.iter_mut().find_map(|g| {
                let opt = g.optimizer;
                g.params
                    .iter_mut()
                    .find(|p| p.name == var)
                    .map(|p| (opt, p))
            });
            let Some((opt, p)) = found else {
                bail!(input(STATE), "the model has no trainable variable `{var}`");
            };
            ensure!(
                opt.buffer_names().contains(&buf),
                input(STATE),
                "buffer `{buf}` of `{var}` does not belong to {opt:?}"
            );
            ensure!(
                t.size() == p.tensor.size(),
                input(STATE),
                "buffer `{key}` has shape {:?}, the variable {:?}",
                t.size(),
                p.tensor.size()
            );
            let t = t
                .to_device(p.tensor.device())
                .to_kind(p.tensor.kind())
                .contiguous();
            p.state.buffers.insert(buf.to_string(), t);
        }
        Ok(())
    }
}
