//! Mixed precision: fp16 autocast with dynamic loss scaling ([`GradScaler`]) on CUDA devices, or
//! bf16 autocast on CUDA devices and on the CPU (where libtorch runs bf16 matrix products through
//! oneDNN: on CPUs with AVX512-BF16 or AMX several times faster than f32). fp16 on the CPU is a
//! no-op (with one warning per process).
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::training::checks::positive;
use serde::{Deserialize, Serialize};
use std::sync::Once;
use tch::{Device, Kind, Tensor};

/// Floating-point precision of the forward pass during training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    Fp32,
    /// CUDA autocast to f16 (matrix products and convolutions in f16, reductions in f32) with
    /// dynamic loss scaling, like `torch.autocast` + `torch.cuda.amp.GradScaler`.
    Fp16,
    /// Autocast to bf16 on CUDA or the CPU (no loss scaling needed: bf16 has f32's exponent
    /// range). On the CPU this is `torch.autocast("cpu", dtype=torch.bfloat16)`: matrix products
    /// in bf16, reductions, norms and the loss in f32.
    Bf16,
}

/// Dynamic loss scaling for fp16 (`GradScaler` semantics): the loss is multiplied by `scale`
/// before the backward pass, gradients are divided by it before clipping and the step; a step
/// whose gradients hold an inf or NaN is skipped and the scale multiplied by `backoff_factor`;
/// after `growth_interval` consecutive good steps the scale is multiplied by `growth_factor`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GradScalerConfig {
    /// The loss scale of the first step.
    pub init_scale: f64,
    /// The scale's factor after `growth_interval` good steps in a row (> 1).
    pub growth_factor: f64,
    /// The scale's factor after a step with inf or NaN gradients (in (0, 1)).
    pub backoff_factor: f64,
    /// Good steps in a row before the scale grows.
    pub growth_interval: usize,
}

impl Default for GradScalerConfig {
    fn default() -> Self {
        Self {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
        }
    }
}

impl GradScalerConfig {
    setters!(
        init_scale: f64,
        growth_factor: f64,
        backoff_factor: f64,
        growth_interval: usize,
    );

    /// Checks the values; errors name the field under `grad_scaler`.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            positive(self.init_scale),
            config("grad_scaler.init_scale"),
            "must be positive, got {}",
            self.init_scale
        );
        ensure!(
            self.growth_factor > 1.0 && self.growth_factor.is_finite(),
            config("grad_scaler.growth_factor"),
            "must be > 1, got {}",
            self.growth_factor
        );
        ensure!(
            self.backoff_factor > 0.0 && self.backoff_factor < 1.0,
            config("grad_scaler.backoff_factor"),
            "must be in (0, 1), got {}",
            self.backoff_factor
        );
        ensure!(
            self.growth_interval != 0,
            config("grad_scaler.growth_interval"),
            "must be ≥ 1"
        );
        Ok(())
    }
}

/// The running state of dynamic loss scaling.
#[derive(Clone, Debug, PartialEq)]
pub struct GradScaler {
    cfg: GradScalerConfig,
    scale: f64,
    good_steps: usize,
    skipped: usize,
}

impl GradScaler {
    /// A scaler starting at `cfg.init_scale`.
    pub fn new(cfg: GradScalerConfig) -> Self {
        Self {
            scale: cfg.init_scale,
            cfg,
            good_steps: 0,
            skipped: 0,
        }
    }

    /// The current loss scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Number of optimizer steps skipped because of inf/NaN gradients.
    pub fn skipped_steps(&self) -> usize {
        self.skipped
    }

    /// `loss × scale`.
    ///
    /// # Shapes
    /// - `loss`: any shape (a scalar `[]` in training); returns the same shape
    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        loss * self.scale
    }

    /// Divides every gradient by the scale in place; returns whether any gradient holds an inf
    /// or NaN (one device synchronisation).
    ///
    /// # Shapes
    /// - `grads`: tensors of any shapes (the parameters' gradients)
    pub fn unscale(&self, grads: &[Tensor]) -> Result<bool> {
        let inv = 1.0 / self.scale;
        let mut bad: Option<Tensor> = None;
        tch::no_grad(|| -> Result<()> {
            for g in grads {
                let mut g = g.shallow_clone();
                let _ = g.f_mul_scalar_(inv)?;
                let b = g.f_isfinite()?.f_logical_not()?.f_any()?;
                bad = Some(match bad.take() {
                    Some(a) => a.f_logical_or(&b)?,
                    None => b,
                });
            }
            Ok(())
        })?;
        Ok(match bad {
            Some(b) => bool::try_from(b.to_device(Device::Cpu))?,
            None => false,
        })
    }

    /// Records the outcome of one step: backs off on overflow (the caller skips the step),
    /// grows the scale after `growth_interval` good steps in a row.
    pub fn update(&mut self, found_inf: bool) {
        if found_inf {
            self.scale *= self.cfg.backoff_factor;
            self.good_steps = 0;
            self.skipped += 1;
        } else {
            self.good_steps += 1;
            if self.good_steps >= self.cfg.growth_interval {
                self.scale *= self.cfg.growth_factor;
                self.good_steps = 0;
            }
        }
    }
}

// libtorch's autocast dtype setters are not wrapped by tch 0.24; they are plain C++ functions of
// libtorch_cpu (which torch-sys links) taking two `int8_t`-backed enums (`c10::DeviceType`,
// `c10::ScalarType`), called here through their mangled names (libtorch 2.11.0).
extern "C" {
    #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
    fn at_set_autocast_dtype(device_type: i8, dtype: i8);
    #[link_name = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE"]
    fn at_get_autocast_dtype(device_type: i8) -> i8;
    #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
    fn at_set_autocast_enabled(device_type: i8, enabled: bool);
    #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
    fn at_is_autocast_enabled(device_type: i8) -> bool;
    #[link_name = "_ZN2at8autocast11clear_cacheEv"]
    fn at_clear_autocast_cache();
}

const DEVICE_TYPE_CPU: i8 = 0;
const DEVICE_TYPE_CUDA: i8 = 1;
const SCALAR_HALF: i8 = 5;
const SCALAR_BFLOAT16: i8 = 15;

/// The CUDA autocast dtype of the current thread (libtorch's `ScalarType` code).
fn cuda_autocast_dtype() -> i8 {
    // SAFETY: a plain getter of thread-local libtorch state.
    unsafe { at_get_autocast_dtype(DEVICE_TYPE_CUDA) }
}

fn set_cuda_autocast_dtype(code: i8) {
    // SAFETY: a plain setter of thread-local libtorch state; `code` is a valid ScalarType.
    unsafe { at_set_autocast_dtype(DEVICE_TYPE_CUDA, code) }
}

/// Runs `f` under CPU autocast to `code` on this thread, then restores the previous state.
fn cpu_autocast<T>(code: i8, f: impl FnOnce() -> T) -> T {
    // SAFETY: plain setters/getters of libtorch's thread-local autocast state; `code` is a
    // valid ScalarType
    let (was_enabled, previous) = unsafe {
        let state = (
            at_is_autocast_enabled(DEVICE_TYPE_CPU),
            at_get_autocast_dtype(DEVICE_TYPE_CPU),
        );
        at_set_autocast_dtype(DEVICE_TYPE_CPU, code);
        at_set_autocast_enabled(DEVICE_TYPE_CPU, true);
        state
    };
    let out = f();
    // SAFETY: as above; the cache holds the casts of this forward pass only
    unsafe {
        at_set_autocast_enabled(DEVICE_TYPE_CPU, was_enabled);
        at_set_autocast_dtype(DEVICE_TYPE_CPU, previous);
        if !was_enabled {
            at_clear_autocast_cache();
        }
    }
    out
}

static CPU_WARNING: Once = Once::new();

/// Mixed precision during one `fit`: autocast around the forward pass and, for fp16, the loss
/// scaler.
#[derive(Debug)]
pub(crate) struct Amp {
    /// `None` when running in f32 (also for fp16 requested on a CPU model).
    dtype: Option<i8>,
    cpu: bool,
    pub(crate) scaler: Option<GradScaler>,
}

impl Amp {
    pub(crate) fn new(precision: Precision, scaler: &GradScalerConfig, device: Device) -> Self {
        let cpu = !device.is_cuda();
        if precision == Precision::Fp16 && cpu {
            CPU_WARNING.call_once(|| {
                eprintln!(
                    "widedeep: fp16 mixed precision needs a CUDA device; training in f32 on \
                     the CPU (bf16 works on the CPU)"
                )
            });
            return Self {
                dtype: None,
                cpu,
                scaler: None,
            };
        }
        match precision {
            Precision::Fp32 => Self {
                dtype: None,
                cpu,
                scaler: None,
            },
            Precision::Fp16 => Self {
                dtype: Some(SCALAR_HALF),
                cpu,
                scaler: Some(GradScaler::new(scaler.clone())),
            },
            Precision::Bf16 => Self {
                dtype: Some(SCALAR_BFLOAT16),
                cpu,
                scaler: None,
            },
        }
    }

    /// Runs `f` (the forward pass) under autocast when mixed precision is on.
    pub(crate) fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        match self.dtype {
            None => f(),
            Some(code) if self.cpu => cpu_autocast(code, f),
            Some(code) => {
                let previous = cuda_autocast_dtype();
                set_cuda_autocast_dtype(code);
                let out = tch::autocast(true, f);
                set_cuda_autocast_dtype(previous);
                out
            }
        }
    }

    /// Whether autocast is on (the outputs may be f16/bf16).
    #[cfg(test)]
    pub(crate) fn enabled(&self) -> bool {
        self.dtype.is_some()
    }
}

/// Outputs computed under autocast back to f32 (losses and metrics are computed in f32).
pub(crate) fn to_f32(t: Tensor) -> Tensor {
    if t.kind() == Kind::Float {
        t
    } else {
        t.to_kind(Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_grows_after_interval_and_backs_off_on_overflow() {
        let mut s = GradScaler::new(
            GradScalerConfig::default()
                .init_scale(8.0)
                .growth_interval(3),
        );
        s.update(false);
        s.update(false);
        assert_eq!(s.scale(), 8.0);
        s.update(false);
        assert_eq!(s.scale(), 16.0, "grows after 3 good steps");
        s.update(false);
        s.update(true);
        assert_eq!(s.scale(), 8.0, "backs off on overflow");
        assert_eq!(s.skipped_steps(), 1);
        s.update(false);
        s.update(false);
        assert_eq!(s.scale(), 8.0, "the overflow reset the good-step count");
        s.update(false);
        assert_eq!(s.scale(), 16.0);
    }

    #[test]
    fn unscale_divides_and_detects_inf_and_nan() {
        let s = GradScaler::new(GradScalerConfig::default().init_scale(4.0));
        let g = Tensor::from_slice(&[4.0f32, -8.0]);
        assert!(!s.unscale(&[g.shallow_clone()]).unwrap());
        assert_eq!(Vec::<f32>::try_from(&g).unwrap(), vec![1.0, -2.0]);
        let inf = Tensor::from_slice(&[1.0f32, f32::INFINITY]);
        assert!(s.unscale(&[g.shallow_clone(), inf]).unwrap());
        let nan = Tensor::from_slice(&[f32::NAN]);
        assert!(s.unscale(&[nan]).unwrap());
        assert!(!s.unscale(&[]).unwrap());
    }

    #[test]
    fn scaler_config_validation_names_fields() {
        for (cfg, field) in [
            (
                GradScalerConfig::default().init_scale(0.0),
                "grad_scaler.init_scale",
            ),
            (
                GradScalerConfig::default().growth_factor(1.0),
                "grad_scaler.growth_factor",
            ),
            (
                GradScalerConfig::default().backoff_factor(1.0),
                "grad_scaler.backoff_factor",
            ),
            (
                GradScalerConfig::default().growth_interval(0),
                "grad_scaler.growth_interval",
            ),
        ] {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
        GradScalerConfig::default().validate().unwrap();
    }

    #[test]
    fn autocast_dtype_binding_round_trips() {
        // works without a GPU: the autocast dtype is plain thread-local state
        let before = cuda_autocast_dtype();
        assert_eq!(
            before, SCALAR_HALF,
            "libtorch's default CUDA autocast dtype is f16"
        );
        set_cuda_autocast_dtype(SCALAR_BFLOAT16);
        assert_eq!(cuda_autocast_dtype(), SCALAR_BFLOAT16);
        set_cuda_autocast_dtype(before);
        assert_eq!(cuda_autocast_dtype(), SCALAR_HALF);
    }

    #[test]
    fn bf16_autocast_on_the_cpu_runs_matrix_products_in_bf16_and_restores_the_state() {
        let amp = Amp::new(Precision::Bf16, &GradScalerConfig::default(), Device::Cpu);
        assert!(amp.enabled() && amp.scaler.is_none());
        let a = Tensor::ones([4, 3], (Kind::Float, Device::Cpu));
        let b = Tensor::ones([3, 2], (Kind::Float, Device::Cpu));
        let (y, norm) = amp.run(|| (a.matmul(&b), a.softmax(-1, Kind::Float)));
        assert_eq!(y.kind(), Kind::BFloat16);
        assert_eq!(norm.kind(), Kind::Float);
        assert_eq!(
            Vec::<f32>::try_from(y.to_kind(Kind::Float).flatten(0, 1)).unwrap(),
            [3.0; 8]
        );
        // outside the forward pass everything is f32 again
        assert_eq!(a.matmul(&b).kind(), Kind::Float);
    }

    #[test]
    fn cpu_models_train_in_f32() {
        let amp = Amp::new(Precision::Fp16, &GradScalerConfig::default(), Device::Cpu);
        assert!(!amp.enabled() && amp.scaler.is_none());
        let y = amp.run(|| {
            Tensor::ones([2, 2], (Kind::Float, Device::Cpu))
                .matmul(&Tensor::ones([2, 2], (Kind::Float, Device::Cpu)))
        });
        assert_eq!(y.kind(), Kind::Float);
    }
}
