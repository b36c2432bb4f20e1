//! One optimizer step per `accumulate_grad_batches` batches, with gradient clipping and fp16
//! loss scaling: the part of the training loop between the loss and the weights.
use crate::error::Result;
use crate::training::amp::{Amp, GradScalerConfig, Precision};
use tch::{nn, Device, Kind, Tensor};

/// What the training loop needs from an optimizer (implemented for the trainer's own
/// [`Optimizers`](crate::training::optim::Optimizers) and tch's [`nn::Optimizer`]).
pub trait OptimizerStep {
    /// Clears the gradients of every parameter (libtorch sets them to undefined).
    fn zero_grad(&mut self);
    /// Applies the gradients.
    fn step(&mut self);
}

impl OptimizerStep for crate::training::optim::Optimizers {
    fn zero_grad(&mut self) {
        crate::training::optim::Optimizers::zero_grad(self)
    }
    fn step(&mut self) {
        crate::training::optim::Optimizers::step(self)
    }
}

impl OptimizerStep for nn::Optimizer {
    fn zero_grad(&mut self) {
        nn::Optimizer::zero_grad(self)
    }
    fn step(&mut self) {
        nn::Optimizer::step(self)
    }
}

/// Clipping and accumulation settings of one `fit`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct GradSettings {
    pub clip_norm: Option<f64>,
    pub clip_value: Option<f64>,
    pub accumulate: usize,
    pub precision: Precision,
    pub scaler: GradScalerConfig,
}

/// Backward passes and optimizer steps for one `fit`.
#[derive(Debug)]
pub(crate) struct GradStep {
    cfg: GradSettings,
    amp: Amp,
    /// Batches whose gradients are accumulated but not applied yet.
    pending: usize,
    vars: Vec<Tensor>,
    /// Optimizer steps taken and skipped (fp16 overflow).
    pub steps: usize,
    /// Data-parallel training: gradients averaged over the ranks before each step.
    pub(crate) sync: Option<crate::distributed::GradSync>,
}

impl GradStep {
    pub(crate) fn new(cfg: GradSettings, vs: &nn::VarStore) -> Self {
        let amp = Amp::new(cfg.precision, &cfg.scaler, vs.device());
        Self {
            amp,
            pending: 0,
            vars: vs.trainable_variables(),
            steps: 0,
            sync: None,
            cfg: GradSettings {
                accumulate: cfg.accumulate.max(1),
                ..cfg
            },
        }
    }

    /// Averages the gradients over the ranks of `d` before every step and takes rank 0's
    /// buffers after it (data-parallel training).
    pub(crate) fn distributed(
        &mut self,
        d: &crate::distributed::Distributed,
        vs: &nn::VarStore,
    ) -> Result<()> {
        self.sync = Some(crate::distributed::GradSync::new(
            d.clone(),
            vs,
            &self.vars,
        )?);
        Ok(())
    }

    /// Runs the forward pass `f` (under autocast with mixed precision).
    pub(crate) fn forward<T>(&self, f: impl FnOnce() -> T) -> T {
        self.amp.run(f)
    }

    /// Back-propagates `loss / accumulate` (times the loss scale with fp16); every
    /// `accumulate`-th call also clips and steps. Returns whether a step was taken.
    pub(crate) fn backward(&mut self, loss: &Tensor, opt: &mut impl OptimizerStep) -> Result<bool> {
        if self.pending == 0 {
            opt.zero_grad();
        }
        let mut l = if self.cfg.accumulate > 1 {
            loss / self.cfg.accumulate as f64
        } else {
            loss.shallow_clone()
        };
        if let Some(s) = &self.amp.scaler {
            l = s.scale_loss(&l);
        }
        if let (Some(sync), true) = (&self.sync, self.pending + 1 == self.cfg.accumulate) {
            sync.arm(); // the step's last backward: all-reduce buckets as they fill
        }
        l.f_backward()?;
        self.pending += 1;
        if self.pending == self.cfg.accumulate {
            return self.apply(opt);
        }
        Ok(false)
    }

    /// At the end of an epoch: applies a partly filled accumulation window (its gradients
    /// rescaled to the mean over the batches it holds). Returns whether a step was taken.
    pub(crate) fn finish_epoch(&mut self, opt: &mut impl OptimizerStep) -> Result<bool> {
        if self.pending == 0 {
            return Ok(false);
        }
        let factor = self.cfg.accumulate as f64 / self.pending as f64;
        if factor != 1.0 {
            let grads = self.grads();
            tch::no_grad(|| -> Result<()> {
                for g in &grads {
                    let _ = g.shallow_clone().f_mul_scalar_(factor)?;
                }
                Ok(())
            })?;
        }
        self.apply(opt)
    }

    /// The defined gradients of the trainable variables.
    fn grads(&self) -> Vec<Tensor> {
        self.vars
            .iter()
            .map(|v| v.grad())
            .filter(|g| g.defined())
            .collect()
    }

    fn apply(&mut self, opt: &mut impl OptimizerStep) -> Result<bool> {
        self.pending = 0;
        if let Some(sync) = &self.sync {
            sync.average()?;
        }
        let needs_grads = self.amp.scaler.is_some()
            || self.cfg.clip_value.is_some()
            || self.cfg.clip_norm.is_some();
        let grads = if needs_grads {
            self.grads()
        } else {
            Vec::new()
        };
        if let Some(scaler) = &mut self.amp.scaler {
            let found_inf = scaler.unscale(&grads)?;
            scaler.update(found_inf);
            if found_inf {
                opt.zero_grad();
                return Ok(false);
            }
        }
        if let Some(v) = self.cfg.clip_value {
            clip_grad_value(&grads, v)?;
        }
        if let Some(n) = self.cfg.clip_norm {
            let _ = clip_grad_norm(&grads, n)?;
        }
        opt.step();
        self.steps += 1;
        if let Some(sync) = &self.sync {
            sync.after_step()?;
        }
        Ok(true)
    }
}

/// Clamps every gradient element to `[-max, max]` in place.
///
/// # Shapes
/// - `grads`: tensors of any shapes (kept)
pub fn clip_grad_value(grads: &[Tensor], max: f64) -> Result<()> {
    tch::no_grad(|| -> Result<()> {
        for g in grads {
            let _ = g.shallow_clone().f_clamp_(-max, max)?;
        }
        Ok(())
    })
}

/// Scales the gradients in place so that their global L2 norm is at most `max_norm`
/// (`torch.nn.utils.clip_grad_norm_`); returns the norm before clipping as a `[]` f32 tensor
/// on the gradients' device (no synchronisation).
///
/// # Shapes
/// - `grads`: tensors of any shapes (kept); returns `[]` f32
pub fn clip_grad_norm(grads: &[Tensor], max_norm: f64) -> Result<Tensor> {
    tch::no_grad(|| -> Result<Tensor> {
        if grads.is_empty() {
            return Ok(Tensor::zeros([], (Kind::Float, Device::Cpu)));
        }
        let mut sq: Option<Tensor> = None;
        for g in grads {
            let n = g.f_to_kind(Kind::Float)?.f_square()?.f_sum(Kind::Float)?;
            sq = Some(match sq.take() {
                Some(s) => s.f_add(&n.f_to_device(s.device())?)?,
                None => n,
            });
        }
        let total = sq.expect("non-empty").f_sqrt()?;
        let coef = (max_norm / (&total + 1e-6)).f_clamp_max(1.0)?;
        for g in grads {
            let c = coef.f_to_device(g.device())?.f_to_kind(g.kind())?;
            let _ = g.shallow_clone().f_mul_(&c)?;
        }
        Ok(total)
    })
}

/// The global L2 norm of the gradients.
///
/// # Shapes
/// - `grads`: tensors of any shapes
pub fn grad_norm(grads: &[Tensor]) -> f64 {
    grads
        .iter()
        .map(|g| {
            g.to_kind(Kind::Double)
                .square()
                .sum(Kind::Double)
                .double_value(&[])
        })
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::amp::GradScaler;
    use tch::nn::OptimizerConfig;

    /// One weight `w` (starting at 0) trained by SGD with lr 1: `w` after the steps is minus
    /// the sum of the applied gradients.
    fn setup(cfg: GradSettings) -> (nn::VarStore, Tensor, nn::Optimizer, GradStep) {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().zeros("w", &[1]);
        let opt = nn::Sgd::default().build(&vs, 1.0).unwrap();
        let step = GradStep::new(cfg, &vs);
        (vs, w, opt, step)
    }

    fn value(w: &Tensor) -> f64 {
        w.double_value(&[0])
    }

    #[test]
    fn accumulation_steps_every_n_and_rescales_a_partial_window() {
        let cfg = GradSettings {
            accumulate: 3,
            ..Default::default()
        };
        let (_vs, w, mut opt, mut step) = setup(cfg);
        // loss = x · w: gradient x
        let mut stepped = Vec::new();
        for x in [1.0, 2.0, 3.0, 10.0, 20.0] {
            stepped.push(step.backward(&(&w * x).sum(Kind::Float), &mut opt).unwrap());
        }
        assert_eq!(stepped, [false, false, true, false, false]);
        assert!(
            (value(&w) + 2.0).abs() < 1e-6,
            "mean of 1, 2, 3: {}",
            value(&w)
        );
        assert!(step.finish_epoch(&mut opt).unwrap());
        assert!(
            (value(&w) + 2.0 + 15.0).abs() < 1e-5,
            "mean of 10, 20: {}",
            value(&w)
        );
        assert!(!step.finish_epoch(&mut opt).unwrap(), "nothing pending");
        assert_eq!(step.steps, 2);
    }

    #[test]
    fn loss_scaling_unscales_and_skips_overflowing_steps() {
        let (_vs, w, mut opt, mut step) = setup(GradSettings::default());
        step.amp.scaler = Some(GradScaler::new(
            GradScalerConfig::default()
                .init_scale(1024.0)
                .growth_interval(1),
        ));
        assert!(step
            .backward(&(&w * 2.0).sum(Kind::Float), &mut opt)
            .unwrap());
        assert!(
            (value(&w) + 2.0).abs() < 1e-6,
            "unscaled gradient: {}",
            value(&w)
        );
        assert_eq!(step.amp.scaler.as_ref().unwrap().scale(), 2048.0, "grew");
        // an infinite gradient: no step, scale halves
        assert!(!step
            .backward(&(&w * f64::INFINITY).sum(Kind::Float), &mut opt)
            .unwrap());
        assert!((value(&w) + 2.0).abs() < 1e-6, "weights untouched");
        let s = step.amp.scaler.as_ref().unwrap();
        assert_eq!((s.scale(), s.skipped_steps()), (1024.0, 1));
        // training goes on normally afterwards
        assert!(step
            .backward(&(&w * 1.0).sum(Kind::Float), &mut opt)
            .unwrap());
        assert!((value(&w) + 3.0).abs() < 1e-6);
    }

    fn grads() -> Vec<Tensor> {
        vec![
            Tensor::from_slice(&[3.0f32, -4.0]),
            Tensor::from_slice(&[12.0f32]).view([1, 1]),
        ]
    }

    #[test]
    fn clipping_by_norm_bounds_the_global_norm() {
        let g = grads(); // global norm 13
        let before = clip_grad_norm(&g, 1.0).unwrap().double_value(&[]);
        assert!((before - 13.0).abs() < 1e-5);
        assert!((grad_norm(&g) - 1.0).abs() < 1e-5, "{}", grad_norm(&g));
        // direction kept
        let v = Vec::<f32>::try_from(&g[0]).unwrap();
        assert!((v[0] / v[1] + 0.75).abs() < 1e-6);
        // below the bound: unchanged
        let g = grads();
        let _ = clip_grad_norm(&g, 100.0).unwrap();
        assert!((grad_norm(&g) - 13.0).abs() < 1e-4);
    }

    #[test]
    fn clipping_by_value_bounds_each_element() {
        let g = grads();
        clip_grad_value(&g, 3.5).unwrap();
        assert_eq!(Vec::<f32>::try_from(&g[0]).unwrap(), vec![3.0, -3.5]);
        assert_eq!(Vec::<f32>::try_from(g[1].view([-1])).unwrap(), vec![3.5]);
    }
}
