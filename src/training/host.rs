//! Single-pass loops over the memory of small CPU `f32` tensors, for the per-batch work where
//! libtorch's per-operation cost (dispatch, a fresh output, one pass over memory per op) dominates:
//! the Adam/AdamW step (ten tensor ops per parameter in PyTorch's single-tensor form, one loop
//! here) and zeroing gradients.
//!
//! Every function checks that the tensors are CPU, `f32`, contiguous and of equal length, and
//! returns `false` without touching anything otherwise, so callers fall back to tensor ops (GPU,
//! half precision, strided views).
use tch::{Device, Kind, Tensor};

/// The tensor's elements as a mutable slice, when it is a contiguous CPU `f32` tensor.
///
/// # Safety
/// The caller must hold no other reference to the same memory while the slice lives and the
/// tensor must outlive it; the optimizer owns its state buffers and updates parameters under
/// `no_grad` while no forward or backward pass runs.
// the tensor is a handle to memory libtorch owns; writing through a shared handle is what
// libtorch's own in-place ops do
#[allow(clippy::mut_from_ref)]
unsafe fn f32_slice(t: &Tensor) -> Option<&mut [f32]> {
    if !t.defined() || t.device() != Device::Cpu || t.kind() != Kind::Float || !t.is_contiguous() {
        return None;
    }
    let n = t.numel();
    if n == 0 {
        return Some(&mut []);
    }
    Some(std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, n))
}

/// Sets a gradient to zero in place; `false` when it is not a contiguous CPU `f32` tensor.
pub(crate) fn zero_f32(t: &Tensor) -> bool {
    // SAFETY: a gradient is not read or written elsewhere between backward passes
    match unsafe { f32_slice(t) } {
        Some(s) => {
            s.fill(0.0);
            true
        }
        None => false,
    }
}

/// The scalars of one Adam/AdamW step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamStep {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// `lr / (1 − β₁ᵗ)`.
    pub step_size: f64,
    /// `√(1 − β₂ᵗ)`.
    pub bc2_sqrt: f64,
    /// L2 penalty added to the gradient (Adam's `weight_decay`; 0 for AdamW).
    pub l2: f64,
    /// Decoupled decay factor applied to the parameter first (`1 − lr·wd` for AdamW; 1 for Adam).
    pub decay: f64,
}

/// One Adam/AdamW step over `param` with gradient `grad` and moments `m`, `v`, in one pass:
/// per element the same operations, in the same order and in `f32`, as PyTorch's single-tensor
/// Adam (`m.lerp_(g, 1−β₁)`, `v.mul_(β₂).addcmul_(g, g, 1−β₂)`,
/// `p.addcdiv_(m, v.sqrt()/√(1−β₂ᵗ) + ε, −step_size)`). `false` (nothing changed) unless all
/// four are contiguous CPU `f32` tensors of one length.
pub(crate) fn adam_f32(param: &Tensor, grad: &Tensor, m: &Tensor, v: &Tensor, s: AdamStep) -> bool {
    // SAFETY: four distinct tensors (parameter, its gradient, two state buffers owned by the
    // optimizer), none of them touched by anything else during the step
    let (Some(p), Some(g), Some(m), Some(v)) = (unsafe {
        (
            f32_slice(param),
            f32_slice(grad),
            f32_slice(m),
            f32_slice(v),
        )
    }) else {
        return false;
    };
    if g.len() != p.len() || m.len() != p.len() || v.len() != p.len() {
        return false;
    }
    let (w1, b2, c2) = (1.0 - s.beta1 as f32, s.beta2 as f32, (1.0 - s.beta2) as f32);
    let (eps, bc2, step) = (s.eps as f32, s.bc2_sqrt as f32, -s.step_size as f32);
    let (l2, decay) = (s.l2 as f32, s.decay as f32);
    for (((p, &g), m), v) in p
        .iter_mut()
        .zip(g.iter())
        .zip(m.iter_mut())
        .zip(v.iter_mut())
    {
        let g = if l2 != 0.0 { g + *p * l2 } else { g };
        if decay != 1.0 {
            *p *= decay;
        }
        *m += w1 * (g - *m);
        *v = *v * b2 + c2 * g * g;
        let denom = v.sqrt() / bc2 + eps;
        *p += step * (*m / denom);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_refuse_tensors_they_cannot_address() {
        let ints = Tensor::from_slice(&[1i64, 2, 3]);
        assert!(!zero_f32(&ints));
        let strided = Tensor::from_slice(&[1f32, 2., 3., 4.]).view([2, 2]).tr();
        assert!(!zero_f32(&strided));
        assert_eq!(
            Vec::<f32>::try_from(&strided.flatten(0, 1)).unwrap(),
            [1., 3., 2., 4.]
        );
        let a = Tensor::from_slice(&[1f32, 2.]);
        let short = Tensor::from_slice(&[1f32]);
        let step = AdamStep {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step_size: 1e-3,
            bc2_sqrt: 1.0,
            l2: 0.0,
            decay: 1.0,
        };
        assert!(!adam_f32(&a, &short, &a.copy(), &a.copy(), step));
        assert_eq!(Vec::<f32>::try_from(&a).unwrap(), [1., 2.]);
        let g = Tensor::from_slice(&[3f32, -1.]);
        assert!(zero_f32(&g));
        assert_eq!(Vec::<f32>::try_from(&g).unwrap(), [0., 0.]);
    }
}
