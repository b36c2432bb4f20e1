//! Optimizers written over tch tensors, with state that can be saved and restored (tch's
//! `nn::Optimizer` keeps its state inside libtorch, out of reach, which makes resuming
//! impossible).
//!
//! The update rules and defaults are PyTorch's (`torch.optim` single-tensor implementations):
//! [`Optimizer::Adam`], [`Optimizer::AdamW`] (decoupled weight decay), [`Optimizer::Sgd`]
//! (momentum, dampening, Nesterov), [`Optimizer::RmsProp`] (optionally centered, with momentum)
//! and [`Optimizer::Adagrad`]. tch 0.24 exposes neither libtorch's fused Adam kernels nor its
//! `_foreach_*` multi-tensor ops, so each parameter is updated with in-place tensor ops under
//! `tch::no_grad`, in the same order of floating-point operations as PyTorch — except that on
//! the CPU, Adam and AdamW (without AMSGrad) update contiguous `f32` parameters in one pass over
//! their memory (`training/host.rs`), and gradients are zeroed the same way.
//!
//! Parameters whose gradient is undefined or that do not require gradients (frozen components)
//! are skipped: their state and step count do not advance.
use crate::error::{Result, WideDeepError};
use crate::training::host;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
#[cfg(test)]
use tch::Kind;
use tch::Tensor;

/// Adam / AdamW hyper-parameters (PyTorch defaults: betas (0.9, 0.999), eps 1e-8, no AMSGrad).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdamConfig {
    /// Decay rates of the first and second moment estimates, each in [0, 1).
    pub betas: (f64, f64),
    pub eps: f64,
    /// Use the maximum of past second moments (AMSGrad).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            betas: (0.9, 0.999),
            eps: 1e-8,
            amsgrad: false,
        }
    }
}

/// SGD hyper-parameters (PyTorch defaults: no momentum, no dampening, no Nesterov).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SgdConfig {
    /// Momentum factor in [0, 1).
    pub momentum: f64,
    /// Dampening of the momentum in [0, 1).
    pub dampening: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
}

/// RMSprop hyper-parameters (PyTorch defaults: alpha 0.99, eps 1e-8, no momentum, not
/// centered).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RmsPropConfig {
    /// Smoothing constant of the squared-gradient average, in [0, 1).
    pub alpha: f64,
    pub eps: f64,
    /// Momentum factor in [0, 1).
    pub momentum: f64,
    /// Normalise by the estimated variance of the gradient instead of its second moment.
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        Self {
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            centered: false,
        }
    }
}

/// Adagrad hyper-parameters (PyTorch defaults: lr_decay 0, initial accumulator 0, eps 1e-10).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdagradConfig {
    /// The step size at step t is `lr / (1 + (t − 1) · lr_decay)`.
    pub lr_decay: f64,
    pub initial_accumulator_value: f64,
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        Self {
            lr_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

/// Which optimizer updates a parameter group. The learning rate and weight decay are set on the
/// [`TrainerConfig`](crate::training::TrainerConfig) (globally or per component).
///
/// Serialized with a `name` tag: `{"name": "adam"}`, `{"name": "sgd", "momentum": 0.9}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Optimizer {
    /// Adam; weight decay is added to the gradient (L2 penalty).
    Adam(AdamConfig),
    /// AdamW: Adam with decoupled weight decay (`p ← p · (1 − lr · wd)`).
    #[serde(rename = "adamw", alias = "adam_w")]
    AdamW(AdamConfig),
    Sgd(SgdConfig),
    #[serde(rename = "rmsprop")]
    RmsProp(RmsPropConfig),
    Adagrad(AdagradConfig),
}

impl Default for Optimizer {
    fn default() -> Self {
        Self::Adam(AdamConfig::default())
    }
}

impl Optimizer {
    /// Adam with PyTorch's defaults.
    pub fn adam() -> Self {
        Self::Adam(AdamConfig::default())
    }
    /// AdamW with PyTorch's defaults (set `weight_decay` on the trainer config).
    pub fn adamw() -> Self {
        Self::AdamW(AdamConfig::default())
    }
    /// SGD with the given momentum (0 for plain SGD).
    pub fn sgd(momentum: f64) -> Self {
        Self::Sgd(SgdConfig {
            momentum,
            ..Default::default()
        })
    }
    /// RMSprop with PyTorch's defaults.
    pub fn rmsprop() -> Self {
        Self::RmsProp(RmsPropConfig::default())
    }
    /// Adagrad with PyTorch's defaults.
    pub fn adagrad() -> Self {
        Self::Adagrad(AdagradConfig::default())
    }

    /// Checks the hyper-parameters; errors name `{field}.<parameter>`.
    pub fn validate(&self, field: &str) -> Result<()> {
        let unit = |name: &str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(WideDeepError::config(
                    format!("{field}.{name}"),
                    format!("must be in [0, 1), got {v}"),
                ))
            }
        };
        let eps = |v: f64| {
            if v >= 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(WideDeepError::config(
                    format!("{field}.eps"),
                    format!("must be finite and ≥ 0, got {v}"),
                ))
            }
        };
        match self {
            Self::Adam(c) | Self::AdamW(c) => {
                unit("betas.0", c.betas.0)?;
                unit("betas.1", c.betas.1)?;
                eps(c.eps)
            }
            Self::Sgd(c) => {
                unit("momentum", c.momentum)?;
                unit("dampening", c.dampening)?;
                if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
                    return Err(WideDeepError::config(
                        format!("{field}.nesterov"),
                        "Nesterov momentum needs momentum > 0 and dampening = 0",
                    ));
                }
                Ok(())
            }
            Self::RmsProp(c) => {
                unit("alpha", c.alpha)?;
                unit("momentum", c.momentum)?;
                eps(c.eps)
            }
            Self::Adagrad(c) => {
                if !(c.lr_decay >= 0.0 && c.lr_decay.is_finite()) {
                    return Err(WideDeepError::config(
                        format!("{field}.lr_decay"),
                        "must be finite and ≥ 0",
                    ));
                }
                if !(c.initial_accumulator_value >= 0.0 && c.initial_accumulator_value.is_finite())
                {
                    return Err(WideDeepError::config(
                        format!("{field}.initial_accumulator_value"),
                        "must be finite and ≥ 0",
                    ));
                }
                eps(c.eps)
            }
        }
    }

    /// The names of the state buffers kept per parameter.
    fn buffer_names(&self) -> &'static [&'static str] {
        match self {
            Self::Adam(c) | Self::AdamW(c) if c.amsgrad => {
                &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
            }
            Self::Adam(_) | Self::AdamW(_) => &["exp_avg", "exp_avg_sq"],
            Self::Sgd(_) => &["momentum_buffer"],
            Self::RmsProp(_) => &["square_avg", "grad_avg", "momentum_buffer"],
            Self::Adagrad(_) => &["sum"],
        }
    }
}

/// Per-parameter state: the step count and named buffers (created lazily at the first step,
/// as in PyTorch).
#[derive(Debug, Default)]
struct ParamState {
    step: u64,
    buffers: BTreeMap<String, Tensor>,
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

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }
    /// The current learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
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

/// `t.mul_(a)` as a statement.
fn scale_(t: &mut Tensor, a: f64) {
    let _ = t
        .f_mul_scalar_(a)
        .expect("in-place scaling of an optimizer buffer");
}

fn buffer(state: &mut ParamState, name: &str, like: &Tensor, fill: f64) -> Tensor {
    if let Some(t) = state.buffers.get(name) {
        return t.shallow_clone();
    }
    state
        .buffers
        .entry(name.to_string())
        .or_insert_with(|| {
            let t = Tensor::zeros_like(like);
            if fill != 0.0 {
                let _ = t.shallow_clone().fill_(fill);
            }
            t
        })
        .shallow_clone()
}

/// PyTorch's single-tensor update of `param` from `grad`.
fn update(
    opt: &Optimizer,
    lr: f64,
    wd: f64,
    param: &mut Tensor,
    grad: Tensor,
    state: &mut ParamState,
) {
    match opt {
        Optimizer::Adam(c) | Optimizer::AdamW(c) => {
            state.step += 1;
            let decoupled = matches!(opt, Optimizer::AdamW(_));
            let (b1, b2) = c.betas;
            let mut m = buffer(state, "exp_avg", param, 0.0);
            let mut v = buffer(state, "exp_avg_sq", param, 0.0);
            let t = state.step as i32;
            if !c.amsgrad {
                let fused = host::AdamStep {
                    beta1: b1,
                    beta2: b2,
                    eps: c.eps,
                    step_size: lr / (1.0 - b1.powi(t)),
                    bc2_sqrt: (1.0 - b2.powi(t)).sqrt(),
                    l2: if decoupled { 0.0 } else { wd },
                    decay: if decoupled { 1.0 - lr * wd } else { 1.0 },
                };
                if host::adam_f32(param, &grad, &m, &v, fused) {
                    return;
                }
            }
            let grad = if wd != 0.0 && !decoupled {
                grad + &*param * wd
            } else {
                grad
            };
            if wd != 0.0 && decoupled {
                scale_(param, 1.0 - lr * wd);
            }
            let _ = m.lerp_(&grad, 1.0 - b1);
            scale_(&mut v, b2);
            let _ = v.addcmul_(&grad, &(&grad * (1.0 - b2)));
            let bc1 = 1.0 - b1.powi(t);
            let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
            let step_size = lr / bc1;
            let second = if c.amsgrad {
                let vmax = buffer(state, "max_exp_avg_sq", param, 0.0);
                let _ = vmax.maximum_out(&vmax, &v);
                vmax
            } else {
                v
            };
            let mut denom = second.sqrt();
            let _ = denom.f_div_scalar_(bc2_sqrt).expect("denominator");
            let _ = denom.f_add_scalar_(c.eps).expect("denominator");
            // param += -step_size · (m / denom), PyTorch's addcdiv_ rounding
            let _ = m.div_out(&denom, &denom);
            scale_(&mut denom, -step_size);
            let _ = param.g_add_(&denom);
        }
        Optimizer::Sgd(c) => {
            state.step += 1;
            let mut grad = if wd != 0.0 { grad + &*param * wd } else { grad };
            if c.momentum != 0.0 {
                let buf = match state.buffers.get_mut("momentum_buffer") {
                    None => {
                        let b = grad.detach().copy();
                        state
                            .buffers
                            .insert("momentum_buffer".into(), b.shallow_clone());
                        b
                    }
                    Some(b) => {
                        scale_(b, c.momentum);
                        if c.dampening == 0.0 {
                            let _ = b.g_add_(&grad);
                        } else {
                            let _ = b.g_add_(&(&grad * (1.0 - c.dampening)));
                        }
                        b.shallow_clone()
                    }
                };
                grad = if c.nesterov {
                    grad + buf * c.momentum
                } else {
                    buf
                };
            }
            let _ = param.g_add_(&(grad * -lr));
        }
        Optimizer::RmsProp(c) => {
            state.step += 1;
            let grad = if wd != 0.0 { grad + &*param * wd } else { grad };
            let mut sq = buffer(state, "square_avg", param, 0.0);
            scale_(&mut sq, c.alpha);
            let _ = sq.addcmul_(&grad, &(&grad * (1.0 - c.alpha)));
            let mut avg = if c.centered {
                let mut ga = buffer(state, "grad_avg", param, 0.0);
                let _ = ga.lerp_(&grad, 1.0 - c.alpha);
                let mut a = &sq - &ga * &ga;
                let _ = a.sqrt_();
                a
            } else {
                sq.sqrt()
            };
            let _ = avg.f_add_scalar_(c.eps).expect("denominator");
            if c.momentum > 0.0 {
                let mut buf = buffer(state, "momentum_buffer", param, 0.0);
                scale_(&mut buf, c.momentum);
                let _ = buf.addcdiv_(&grad, &avg);
                let _ = param.g_add_(&(&buf * -lr));
            } else {
                let _ = grad.div_out(&avg, &avg);
                scale_(&mut avg, -lr);
                let _ = param.g_add_(&avg);
            }
        }
        Optimizer::Adagrad(c) => {
            state.step += 1;
            let grad = if wd != 0.0 { grad + &*param * wd } else { grad };
            let clr = lr / (1.0 + (state.step - 1) as f64 * c.lr_decay);
            let mut sum = buffer(state, "sum", param, c.initial_accumulator_value);
            let _ = sum.addcmul_(&grad, &grad);
            let mut std = sum.sqrt();
            let _ = std.f_add_scalar_(c.eps).expect("denominator");
            let _ = grad.div_out(&std, &std);
            scale_(&mut std, -clr);
            let _ = param.g_add_(&std);
        }
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
    pub fn new(groups: Vec<ParamGroup>) -> Self {
        Self { groups }
    }
    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }
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
    pub fn zero_grad(&mut self) {
        self.groups.iter_mut().for_each(ParamGroup::zero_grad);
    }
    /// One step of every group.
    pub fn step(&mut self) {
        self.groups.iter_mut().for_each(ParamGroup::step);
    }

    /// The state: metadata and the buffers as `(“<variable>/<buffer>”, tensor)` pairs on the CPU.
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
    pub fn load_state(
        &mut self,
        meta: &OptimizerStateMeta,
        tensors: &[(String, Tensor)],
    ) -> Result<()> {
        let bad = |reason: String| WideDeepError::InputMismatch {
            input: "optimizer state".into(),
            reason,
        };
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
            let (var, buf) = key
                .rsplit_once('/')
                .ok_or_else(|| bad(format!("bad buffer name `{key}`")))?;
            let (opt, p) = self
                .groups
                .iter_mut()
                .find_map(|g| {
                    let opt = g.optimizer;
                    g.params
                        .iter_mut()
                        .find(|p| p.name == var)
                        .map(|p| (opt, p))
                })
                .ok_or_else(|| bad(format!("the model has no trainable variable `{var}`")))?;
            if !opt.buffer_names().contains(&buf) {
                return Err(bad(format!(
                    "buffer `{buf}` of `{var}` does not belong to {opt:?}"
                )));
            }
            if t.size() != p.tensor.size() {
                return Err(bad(format!(
                    "buffer `{key}` has shape {:?}, the variable {:?}",
                    t.size(),
                    p.tensor.size()
                )));
            }
            let t = t
                .to_device(p.tensor.device())
                .to_kind(p.tensor.kind())
                .contiguous();
            p.state.buffers.insert(buf.to_string(), t);
        }
        Ok(())
    }
}

/// Float tensor helper for tests and callers: a copy of `t` as `Vec<f64>`.
#[cfg(test)]
fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `steps` steps of `opt` on the fixed problem of `tests/fixtures/optim_reference.py`:
    /// parameters w (2×3) and b (3), loss = sum((x·w + b)²·c) with fixed x, c; returns the final
    /// w and b flattened.
    fn run(opt: Optimizer, lr: f64, wd: f64, steps: usize) -> Vec<f64> {
        run_in(opt, lr, wd, steps, Kind::Float)
    }

    /// [`run`] in `kind` (f32 takes the one-pass host kernels, f64 the tensor ops).
    fn run_in(opt: Optimizer, lr: f64, wd: f64, steps: usize, kind: Kind) -> Vec<f64> {
        let w = Tensor::from_slice(&[0.5f32, -0.3, 0.8, 0.1, -0.7, 0.2])
            .view([2, 3])
            .to_kind(kind)
            .set_requires_grad(true);
        let b = Tensor::from_slice(&[0.05f32, -0.1, 0.2])
            .to_kind(kind)
            .set_requires_grad(true);
        let x = Tensor::from_slice(&[1.0f32, 2.0, -1.5, 0.5, 0.3, -0.8, 2.0, 1.0])
            .view([4, 2])
            .to_kind(kind);
        let c = Tensor::from_slice(&[1.0f32, 0.5, 2.0]).to_kind(kind);
        let mut group = ParamGroup::new(
            "g",
            opt,
            lr,
            wd,
            vec![
                ("w".into(), w.shallow_clone()),
                ("b".into(), b.shallow_clone()),
            ],
        );
        for _ in 0..steps {
            group.zero_grad();
            let y = x.matmul(&w) + &b;
            let loss = (&y * &y * &c).sum(kind);
            loss.backward();
            group.step();
        }
        let mut v = values(&w);
        v.extend(values(&b));
        v
    }

    /// (name, optimizer, lr, weight_decay, final [w, b]) from `tests/fixtures/optim_reference.py`.
    #[allow(clippy::type_complexity)]
    fn reference_cases() -> Vec<(&'static str, Optimizer, f64, f64, Vec<f64>)> {
        vec![
            (
                "adam",
                Optimizer::adam(),
                0.1,
                0.0,
                vec![
                    0.058698080480098724,
                    0.14670345187187195,
                    0.3215077817440033,
                    -0.2019386738538742,
                    -0.2329910546541214,
                    -0.24173294007778168,
                    -0.18492178618907928,
                    0.331905722618103,
                    -0.22915303707122803,
                ],
            ),
            (
                "adam_wd_amsgrad",
                Optimizer::Adam(AdamConfig {
                    amsgrad: true,
                    betas: (0.8, 0.99),
                    eps: 1e-6,
                }),
                0.05,
                0.1,
                vec![
                    0.26165854930877686,
                    -0.06025363504886627,
                    0.5555116534233093,
                    -0.11750321835279465,
                    -0.45735642313957214,
                    -0.039110634475946426,
                    -0.1531456708908081,
                    0.1377282440662384,
                    -0.03751014545559883,
                ],
            ),
            (
                "adamw",
                Optimizer::adamw(),
                0.1,
                0.01,
                vec![
                    0.05748362839221954,
                    0.14691275358200073,
                    0.31869471073150635,
                    -0.20121386647224426,
                    -0.23072372376918793,
                    -0.24143150448799133,
                    -0.1840733140707016,
                    0.33108681440353394,
                    -0.22882921993732452,
                ],
            ),
            (
                "adamw_amsgrad",
                Optimizer::AdamW(AdamConfig {
                    amsgrad: true,
                    ..Default::default()
                }),
                0.1,
                0.05,
                vec![
                    0.05273114889860153,
                    0.14769293367862701,
                    0.307586669921875,
                    -0.1983083188533783,
                    -0.22177788615226746,
                    -0.240205317735672,
                    -0.1807093769311905,
                    0.327812135219574,
                    -0.2275157868862152,
                ],
            ),
            (
                "sgd",
                Optimizer::sgd(0.0),
                0.01,
                0.0,
                vec![
                    0.22061379253864288,
                    -0.12372560054063797,
                    0.14739030599594116,
                    -0.030906619504094124,
                    -0.4822298288345337,
                    -0.09518216550350189,
                    -0.027730194851756096,
                    0.01133238896727562,
                    -0.0070753032341599464,
                ],
            ),
            (
                "sgd_momentum_wd_dampening",
                Optimizer::Sgd(SgdConfig {
                    momentum: 0.9,
                    dampening: 0.1,
                    nesterov: false,
                }),
                0.01,
                0.05,
                vec![
                    -0.14137130975723267,
                    0.11830313503742218,
                    -0.4726281464099884,
                    -0.1867820769548416,
                    -0.1773567646741867,
                    -0.2658236026763916,
                    -0.1183461844921112,
                    0.16378368437290192,
                    -0.1378147453069687,
                ],
            ),
            (
                "sgd_nesterov",
                Optimizer::Sgd(SgdConfig {
                    momentum: 0.8,
                    dampening: 0.0,
                    nesterov: true,
                }),
                0.01,
                0.0,
                vec![
                    -0.047371990978717804,
                    0.09289655834436417,
                    -0.09569539874792099,
                    -0.10110373795032501,
                    -0.1874363124370575,
                    -0.005769648589193821,
                    -0.061770349740982056,
                    0.14840282499790192,
                    0.02590400166809559,
                ],
            ),
            (
                "rmsprop",
                Optimizer::rmsprop(),
                0.01,
                0.0,
                vec![
                    0.24188506603240967,
                    -0.04198989272117615,
                    0.5142738223075867,
                    -0.07984521239995956,
                    -0.42539647221565247,
                    -0.054196905344724655,
                    -0.08811116218566895,
                    0.14744026958942413,
                    -0.04565449804067612,
                ],
            ),
            (
                "rmsprop_centered_momentum_wd",
                Optimizer::RmsProp(RmsPropConfig {
                    alpha: 0.9,
                    eps: 1e-6,
                    momentum: 0.5,
                    centered: true,
                }),
                0.01,
                0.1,
                vec![
                    0.31591737270355225,
                    -0.11433284729719162,
                    0.6072980165481567,
                    -0.06329093873500824,
                    -0.5101884603500366,
                    0.015196399763226509,
                    -0.10195716470479965,
                    0.0830223560333252,
                    0.017251303419470787,
                ],
            ),
            (
                "adagrad",
                Optimizer::adagrad(),
                0.1,
                0.0,
                vec![
                    0.24291646480560303,
                    -0.04295593127608299,
                    0.5154456496238708,
                    -0.07962258160114288,
                    -0.4264986217021942,
                    -0.0532662570476532,
                    -0.08839397132396698,
                    0.14657697081565857,
                    -0.04480758681893349,
                ],
            ),
            (
                "adagrad_decay_init_wd",
                Optimizer::Adagrad(AdagradConfig {
                    lr_decay: 0.1,
                    initial_accumulator_value: 0.5,
                    eps: 1e-10,
                }),
                0.1,
                0.05,
                vec![
                    0.2668613791465759,
                    -0.06704525649547577,
                    0.5455864667892456,
                    -0.07413454353809357,
                    -0.454586386680603,
                    -0.031623777002096176,
                    -0.09060268104076385,
                    0.12254591286182404,
                    -0.025311844423413277,
                ],
            ),
        ]
    }

    fn close(got: &[f64], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 2e-6 * (1.0 + w.abs()),
                "{what}[{i}]: got {g}, PyTorch {w}\n{got:?}"
            );
        }
    }

    #[test]
    fn optimizers_match_pytorch() {
        // expected values: `python tests/fixtures/optim_reference.py` (torch 2.11.0, float32)
        for (name, opt, lr, wd, want) in reference_cases() {
            close(&run(opt, lr, wd, 5), &want, name);
        }
    }

    #[test]
    fn one_pass_adam_agrees_with_the_tensor_op_path() {
        for (name, opt, lr, wd, _) in reference_cases() {
            if !matches!(opt, Optimizer::Adam(_) | Optimizer::AdamW(_)) {
                continue;
            }
            let fused = run_in(opt, lr, wd, 20, Kind::Float);
            let ops = run_in(opt, lr, wd, 20, Kind::Double);
            close(&fused, &ops, name);
        }
    }

    #[test]
    fn frozen_and_gradless_parameters_are_skipped() {
        let a = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        let frozen = Tensor::from_slice(&[3.0f32]).set_requires_grad(true);
        let unused = Tensor::from_slice(&[4.0f32]).set_requires_grad(true);
        let mut g = ParamGroup::new(
            "g",
            Optimizer::adam(),
            0.1,
            0.0,
            vec![
                ("a".into(), a.shallow_clone()),
                ("frozen".into(), frozen.shallow_clone()),
                ("unused".into(), unused.shallow_clone()),
            ],
        );
        let loss = (&a * &a).sum(Kind::Float) + (&frozen * 2.0).sum(Kind::Float);
        loss.backward();
        let _ = frozen.shallow_clone().set_requires_grad(false);
        g.step();
        assert_eq!(values(&frozen), vec![3.0]);
        assert_eq!(values(&unused), vec![4.0]);
        assert_ne!(values(&a), vec![1.0, 2.0]);
        let opts = Optimizers::new(vec![g]);
        let (meta, tensors) = opts.state();
        assert_eq!(meta.steps.keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(tensors.len(), 2);
    }

    #[test]
    fn state_round_trips() {
        let mk = || {
            let p = Tensor::from_slice(&[1.0f32, -2.0, 0.5]).set_requires_grad(true);
            let g = ParamGroup::new(
                "g",
                Optimizer::Adam(AdamConfig {
                    amsgrad: true,
                    ..Default::default()
                }),
                0.05,
                0.01,
                vec![("p".into(), p.shallow_clone())],
            );
            (p, Optimizers::new(vec![g]))
        };
        let step = |p: &Tensor, o: &mut Optimizers| {
            o.zero_grad();
            (p * p * p).sum(Kind::Float).backward();
            o.step();
        };
        let (p1, mut o1) = mk();
        for _ in 0..4 {
            step(&p1, &mut o1);
        }
        let (p2, mut o2) = mk();
        for _ in 0..2 {
            step(&p2, &mut o2);
        }
        let (meta, tensors) = o2.state();
        let (p3, mut o3) = mk();
        tch::no_grad(|| p3.shallow_clone().copy_(&p2));
        o3.load_state(&meta, &tensors).unwrap();
        for _ in 0..2 {
            step(&p3, &mut o3);
        }
        assert!(p1.equal(&p3), "{:?} vs {:?}", values(&p1), values(&p3));

        let wrong = vec![(
            "p/momentum_buffer".to_string(),
            Tensor::zeros([3], tch::kind::FLOAT_CPU),
        )];
        assert!(o3.load_state(&meta, &wrong).is_err());
        let wrong = vec![(
            "p/exp_avg".to_string(),
            Tensor::zeros([4], tch::kind::FLOAT_CPU),
        )];
        assert!(o3.load_state(&meta, &wrong).is_err());
    }

    #[test]
    fn validate_names_fields() {
        let e = Optimizer::sgd(1.5).validate("optimizer").unwrap_err();
        assert!(e.to_string().contains("optimizer.momentum"), "{e}");
        let e = Optimizer::Sgd(SgdConfig {
            nesterov: true,
            ..Default::default()
        })
        .validate("x")
        .unwrap_err();
        assert!(e.to_string().contains("x.nesterov"), "{e}");
        assert!(Optimizer::adamw().validate("o").is_ok());
        let json = serde_json::to_string(&Optimizer::sgd(0.9)).unwrap();
        assert_eq!(
            serde_json::from_str::<Optimizer>(&json).unwrap(),
            Optimizer::sgd(0.9)
        );
        assert_eq!(
            serde_json::from_str::<Optimizer>(r#"{"name":"adamw"}"#).unwrap(),
            Optimizer::adamw()
        );
    }
}
