//! The dropout every built-in model uses.
//!
//! Inverted dropout: each element is zeroed with probability `p` (to 1/65536) and the rest are
//! scaled by `1 / (1 − p)`. On the CPU the scaled mask is written in one pass by a small
//! generator (wyrand) seeded with one draw from libtorch's generator, so runs stay reproducible
//! under `tch::manual_seed` while costing a fraction of libtorch's Bernoulli sampling (one
//! Mersenne-Twister draw per element, then a multiply). Elsewhere (GPU) the mask comes from
//! 16-bit slices of random 64-bit integers drawn by libtorch on the device.
use tch::{Device, Kind, Tensor};

/// Dropout with probability `p` when training (see [`crate::models::dropout_on`]); the input
/// itself otherwise.
///
/// # Shapes
/// - `x`: any shape
/// - returns the shape of `x`
pub(crate) fn dropout(x: &Tensor, p: f64, train: bool) -> Tensor {
    if !crate::models::dropout_on(train) || p == 0.0 {
        return x.shallow_clone();
    }
    x * scaled_keep_mask(&x.size(), p, x.device(), x.kind())
}

/// [`dropout`] as a method, for chains: `x.apply(&lin).relu().dropout_t(p, train)`.
pub(crate) trait DropoutExt {
    /// [`dropout`] of `self`.
    fn dropout_t(&self, p: f64, train: bool) -> Tensor;
}

impl DropoutExt for Tensor {
    fn dropout_t(&self, p: f64, train: bool) -> Tensor {
        dropout(self, p, train)
    }
}

/// A mask of `shape` and `kind` on `device`: `1 / (1 − p)` with probability `1 − p`, else 0.
pub(crate) fn scaled_keep_mask(shape: &[i64], p: f64, device: Device, kind: Kind) -> Tensor {
    let scale = 1.0 / (1.0 - p);
    // the first 16-bit value that is kept: P(lane ≥ threshold) = 1 − p
    let threshold = (p * 65536.0).round().min(65536.0) as u32;
    if device == Device::Cpu && kind == Kind::Float {
        let mask = Tensor::empty(shape, (Kind::Float, Device::Cpu));
        let n = mask.numel();
        if n > 0 {
            // SAFETY: `mask` is a fresh contiguous f32 tensor of `n` elements, owned here
            let out = unsafe { std::slice::from_raw_parts_mut(mask.data_ptr() as *mut f32, n) };
            fill_mask(out, torch_seed(), threshold, scale as f32);
        }
        return mask;
    }
    let n: i64 = shape.iter().product();
    // uniform 64-bit integers (the full range), read as four uniform 16-bit integers each
    let bits = Tensor::randint_low(i64::MIN, i64::MAX, [(n + 3) / 4], (Kind::Int64, device))
        .view_dtype(Kind::Int16)
        .narrow(0, 0, n)
        .view(shape);
    let keep = bits.ge(threshold as i64 - 32768).to_kind(kind);
    keep * scale
}

/// One 64-bit draw from libtorch's default CPU generator.
pub(crate) fn torch_seed() -> u64 {
    Tensor::randint_low(i64::MIN, i64::MAX, [1], (Kind::Int64, Device::Cpu)).int64_value(&[0])
        as u64
}

/// Writes `scale` where a 16-bit lane of the wyrand stream is `≥ threshold`, else 0.
pub(crate) fn fill_mask(out: &mut [f32], seed: u64, threshold: u32, scale: f32) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(state) * u128::from(state ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    };
    // branch-free, so the loop vectorises
    let value = |lane: u64| f32::from(u8::from((lane & 0xffff) as u32 >= threshold)) * scale;
    let mut chunks = out.chunks_exact_mut(4);
    for c in &mut chunks {
        let r = next();
        c[0] = value(r);
        c[1] = value(r >> 16);
        c[2] = value(r >> 32);
        c[3] = value(r >> 48);
    }
    let r = next();
    for (i, v) in chunks.into_remainder().iter_mut().enumerate() {
        *v = value(r >> (16 * i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_rates(y: &Tensor, p: f64) {
        let kept = y
            .ne(0.0)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[]);
        assert!((kept - (1.0 - p)).abs() < 0.005, "p {p}: kept {kept}");
        let max = y.max().double_value(&[]);
        assert!((max - 1.0 / (1.0 - p)).abs() < 1e-5);
        // every 16-bit lane of the random words is uniform (no lane always kept)
        let lanes = y
            .narrow(0, 0, 200_000)
            .view([50_000, 4])
            .ne(0.0)
            .to_kind(Kind::Double);
        let per_lane = Vec::<f64>::try_from(lanes.mean_dim(0, false, Kind::Double)).unwrap();
        assert!(
            per_lane.iter().all(|k| (k - (1.0 - p)).abs() < 0.01),
            "{per_lane:?}"
        );
    }

    #[test]
    fn dropout_keeps_one_minus_p_and_rescales() {
        let _rng = crate::torch_rng_lock();
        for kind in [Kind::Float, Kind::Double] {
            let x = Tensor::ones([200_001], (kind, Device::Cpu));
            for p in [0.1, 0.2, 0.5] {
                check_rates(&dropout(&x, p, true), p);
            }
            assert!(dropout(&x, 0.5, false).equal(&x));
        }
    }

    #[test]
    fn masks_follow_the_torch_seed_and_differ_between_calls() {
        let _rng = crate::torch_rng_lock();
        let x = Tensor::ones([3, 7], (Kind::Float, Device::Cpu));
        tch::manual_seed(3);
        let a = dropout(&x, 0.5, true);
        let b = dropout(&x, 0.5, true);
        tch::manual_seed(3);
        assert!(dropout(&x, 0.5, true).equal(&a));
        assert!(!a.equal(&b));
        // the odd tail (21 = 5·4 + 1 elements) is masked too
        let y = dropout(
            &Tensor::ones([400_001], (Kind::Float, Device::Cpu)),
            0.5,
            true,
        );
        let tail = y.narrow(0, 400_000, 1).double_value(&[0]);
        assert!(tail == 0.0 || tail == 2.0);
    }
}
