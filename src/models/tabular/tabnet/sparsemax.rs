//! The sparse normalisations of TabNet's feature masks: [`sparsemax`] and [`entmax15`], chosen
//! by [`MaskType`].
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// The function that turns attention logits into a feature mask (rows sum to 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskType {
    /// [`sparsemax`] (Martins & Astudillo, 2016): Euclidean projection onto the simplex.
    #[default]
    Sparsemax,
    /// [`entmax15`] (Peters, Niculae & Martins, 2019): between softmax and sparsemax.
    #[serde(alias = "entmax")]
    Entmax15,
}

impl MaskType {
    /// Applies the mask function over the last dimension.
    ///
    /// # Shapes
    /// - `logits`: `[batch, d]`
    /// - returns `[batch, d]`, rows summing to 1
    pub(crate) fn apply(self, logits: &Tensor) -> Tensor {
        match self {
            MaskType::Sparsemax => sparsemax(logits),
            MaskType::Entmax15 => entmax15(logits),
        }
    }
}

/// Sparsemax over the last dimension of `z` (Martins & Astudillo, 2016): the Euclidean
/// projection of each row onto the probability simplex, `max(z - τ, 0)` with `τ` such that the
/// row sums to 1.
///
/// The support is found without sorting and without gradients (on the CPU row by row with
/// Michelot's algorithm; elsewhere by Newton's method on the convex, piecewise-linear
/// `f(τ) = Σ max(z - τ, 0)` from `τ₀ = max(z) - 1`, which rises monotonically to the exact root
/// in finitely many steps); then `τ` is recomputed from the support's values, which gives the
/// exact Jacobian `diag(s) - s sᵀ / |S|` (`s` the support indicator).
///
/// # Shapes
/// - `z`: `[batch, d]` (any leading dimensions), f32 or f64
/// - returns the shape of `z`, rows summing to 1
pub fn sparsemax(z: &Tensor) -> Tensor {
    // Shift-invariant: subtracting the row maximum (without gradient) changes neither value nor
    // gradient, and keeps the sums below well conditioned.
    let z = z - tch::no_grad(|| z.amax(-1, true));
    let support = match cpu_thresholds(&z, 1.0, sparsemax_tau) {
        Some(tau) => z.gt_tensor(&tau),
        None => sparsemax_support(&z),
    };
    let kind = z.kind();
    let mask = support.to_kind(kind);
    let k = mask.sum_dim_intlist(-1, true, kind);
    let tau = ((&z * &mask).sum_dim_intlist(-1, true, kind) - 1.0) / k;
    (z - tau).clamp_min(0.0)
}

/// Support of sparsemax with tensor operations (any device), without gradients: Newton's method
/// on `f(τ) = Σ max(z - τ, 0)` from `max(z) - 1`, until the support stops changing.
pub(super) fn sparsemax_support(z: &Tensor) -> Tensor {
    let kind = z.kind();
    tch::no_grad(|| {
        let d = *z.size().last().expect("at least one dimension");
        let mut tau = z.amax(-1, true) - 1.0;
        let mut k_prev: Option<Tensor> = None;
        for _ in 0..=d {
            let above = (z - &tau).relu_();
            let k = above.count_nonzero(-1).unsqueeze(-1);
            if k_prev.as_ref().is_some_and(|prev| k.equal(prev)) {
                break;
            }
            tau += (above.sum_dim_intlist(-1, true, kind) - 1.0) / &k;
            k_prev = Some(k);
        }
        z.gt_tensor(&tau)
    })
}

/// Entmax with α = 1.5 over the last dimension of `z` (Peters, Niculae & Martins, 2019):
/// `max(z / 2 - τ, 0)²` with `τ` such that each row sums to 1, sparse like sparsemax but
/// smoother.
///
/// The support is found without sorting and without gradients (on the CPU row by row; elsewhere
/// by Newton's method on the convex, decreasing `g(τ) = Σ max(x - τ, 0)² - 1`, `x = z / 2`, from
/// `τ₀ = max(x) - 1`, which rises monotonically towards the root); then `τ` is recomputed in
/// closed form from the support (`τ = mean - sqrt((1 - ss) / k)`), whose gradient is the exact
/// one.
///
/// # Shapes
/// - `z`: `[batch, d]` (any leading dimensions), f32 or f64
/// - returns the shape of `z`, rows summing to 1
pub fn entmax15(z: &Tensor) -> Tensor {
    let kind = z.kind();
    // Shift-invariant: subtracting the row maximum (without gradient) changes neither value nor
    // gradient, and keeps the sums below well conditioned.
    let z = z - tch::no_grad(|| z.amax(-1, true));
    let x = &z / 2.0;
    let support = match cpu_thresholds(&z, 0.5, entmax15_tau) {
        Some(tau) => x.gt_tensor(&tau),
        None => entmax15_support(&x),
    };
    let mask = support.to_kind(kind);
    let k = mask.sum_dim_intlist(-1, true, kind);
    let mean = (&x * &mask).sum_dim_intlist(-1, true, kind) / &k;
    let ss = ((&x - &mean).square() * &mask).sum_dim_intlist(-1, true, kind);
    let delta = ((-ss + 1.0) / &k).clamp_min(1e-12);
    let tau = mean - delta.sqrt();
    (x - tau).clamp_min(0.0).square()
}

/// Support of entmax-1.5 of `2 x` with tensor operations (any device), without gradients.
pub(super) fn entmax15_support(x: &Tensor) -> Tensor {
    let kind = x.kind();
    let tol = if kind == Kind::Double { 1e-12 } else { 1e-6 };
    tch::no_grad(|| {
        let mut tau = x.amax(-1, true) - 1.0;
        for _ in 0..100 {
            let above = (x - &tau).relu_();
            let g = above.square().sum_dim_intlist(-1, true, kind) - 1.0;
            let step = g / (above.sum_dim_intlist(-1, true, kind) * 2.0);
            tau += &step;
            if step.max().double_value(&[]) <= tol {
                break;
            }
        }
        x.gt_tensor(&tau)
    })
}

/// Row thresholds of `scale · z` for a CPU `f32`/`f64` tensor `[..., d]`, computed row by row
/// in Rust (`f64`) by `tau_of` (which may reorder its buffer): `[..., 1]` of `z`'s kind. `None`
/// for other devices and kinds, which take the tensor path. On the CPU this is several times
/// faster than the handful of small tensor operations per Newton iteration.
pub(super) fn cpu_thresholds(
    z: &Tensor,
    scale: f64,
    tau_of: fn(&mut Vec<f64>) -> f64,
) -> Option<Tensor> {
    let kind = z.kind();
    if z.device() != tch::Device::Cpu || !matches!(kind, Kind::Float | Kind::Double) {
        return None;
    }
    let size = z.size();
    let d = *size.last()? as usize;
    if d == 0 {
        return None;
    }
    let flat = z.detach().contiguous().view([-1]);
    let mut buf = Vec::with_capacity(d);
    let taus: Vec<f64> = if kind == Kind::Float {
        let values = Vec::<f32>::try_from(&flat).ok()?;
        values
            .chunks_exact(d)
            .map(|row| {
                buf.clear();
                buf.extend(row.iter().map(|&v| f64::from(v) * scale));
                tau_of(&mut buf)
            })
            .collect()
    } else {
        let values = Vec::<f64>::try_from(&flat).ok()?;
        values
            .chunks_exact(d)
            .map(|row| {
                buf.clear();
                buf.extend(row.iter().map(|&v| v * scale));
                tau_of(&mut buf)
            })
            .collect()
    };
    let mut shape = size;
    *shape.last_mut()? = 1;
    Some(
        Tensor::from_slice(&taus)
            .to_kind(kind)
            .view(shape.as_slice()),
    )
}

/// Sparsemax threshold of one row (Michelot's algorithm). Every value at or below
/// `max - 1` lies outside the support (`τ ≥ max - 1`, since the maximum alone would otherwise
/// sum to more than 1), so one pass keeps the candidates above it; then, from
/// `τ = (Σ_C x - 1) / |C|`, each step recomputes `τ` over the candidates still above it until
/// none is dropped. The steps sum and count in place rather than moving values (several times
/// faster than shrinking the buffer each step). The maximum is never dropped, so `C` stays
/// non-empty.
pub(super) fn sparsemax_tau(c: &mut Vec<f64>) -> f64 {
    let max = c.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let floor = max - 1.0;
    let mut kept = 0;
    for i in 0..c.len() {
        let v = c[i];
        c[kept] = v;
        kept += usize::from(v > floor);
    }
    c.truncate(kept);
    let mut n = kept;
    let mut tau = (c.iter().sum::<f64>() - 1.0) / n as f64;
    loop {
        let (sum, count) = c.iter().fold((0.0, 0usize), |(s, k), &v| {
            let above = v > tau;
            (s + if above { v } else { 0.0 }, k + usize::from(above))
        });
        let next = (sum - 1.0) / count as f64;
        if count == n || count == 0 {
            return next;
        }
        (n, tau) = (count, next);
    }
}

/// Entmax-1.5 threshold of one row of `x = z / 2`: Newton steps on `g(τ) = Σ max(x - τ, 0)² - 1`
/// from `τ = max(x) - 1` rise monotonically towards the root; after each, the closed form
/// `τ_C = mean_C - sqrt((1 - ss_C) / |C|)` on the candidates `C = {x > τ}` is accepted once every
/// candidate lies above it (then `C` is the exact support).
pub(super) fn entmax15_tau(c: &mut Vec<f64>) -> f64 {
    let mut tau = c.iter().copied().fold(f64::NEG_INFINITY, f64::max) - 1.0;
    for _ in 0..200 {
        c.retain(|&v| v > tau);
        if c.is_empty() {
            break;
        }
        let k = c.len() as f64;
        let mean = c.iter().sum::<f64>() / k;
        let ss: f64 = c.iter().map(|v| (v - mean) * (v - mean)).sum();
        let delta = (1.0 - ss) / k;
        if delta >= 0.0 {
            let closed = mean - delta.sqrt();
            if c.iter().all(|&v| v > closed) {
                return closed;
            }
        }
        let (s1, s2) = c.iter().fold((0.0, 0.0), |(a, b), &v| {
            let t = v - tau;
            (a + t, b + t * t)
        });
        tau += (s2 - 1.0) / (2.0 * s1);
    }
    tau
}
