//! Fused softmax attention for the short sequences of tabular models (a token per column), on
//! the CPU.
//!
//! With a dozen tokens and head widths of 4–16, [`attend`]'s tensor ops spend almost all their
//! time in per-matrix overhead: a TabTransformer block runs 2 × 2048 batched 10×4×10 matrix
//! products forward and four more backward, plus the softmax and dropout passes, for a few
//! million multiply-adds. Here one pass per (row, head) pair computes scores, softmax, dropout
//! and the weighted values forward, and one pass the four gradients backward, in registers and
//! small buffers.
//!
//! tch cannot define autograd functions, so a small C++ shim (`fused_attention.cpp`, compiled
//! by `build.rs` against the same libtorch) registers a `torch::autograd::Function` whose
//! forward and backward call the two kernels below, over row/head ranges split by libtorch's
//! `at::parallel_for` (so they follow `tch::set_num_threads`).
//!
//! Values and gradients match [`attend`] to float rounding, dropout aside: the dropout mask of
//! each (row, head) pair is drawn from its own stream, seeded by one draw from libtorch's
//! generator per call, and regenerated for the backward pass (tests below).
//!
//! [`attend`]: crate::models::tabular::attention::multi_head::attend
use crate::models::dropout::fill_mask;
use std::ffi::c_void;
use tch::{Device, Kind, Tensor};

/// Longest query or key sequence taken by the fused path (longer ones are GEMM-sized).
pub(crate) const MAX_TOKENS: i64 = 64;
/// Widest head taken by the fused path.
pub(crate) const MAX_HEAD_DIM: i64 = 64;

/// A `[B, H, T, E]` input: base pointer and element strides.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct View4 {
    ptr: *const f32,
    strides: [i64; 4],
}

/// Everything both kernels read; the C++ shim fills it from the tensors.
#[repr(C)]
pub(crate) struct AttnArgs {
    b: i64,
    h: i64,
    s: i64,
    l: i64,
    e: i64,
    q: View4,
    k: View4,
    v: View4,
    /// Forward: the output `[B, S, H, E]`; backward: the output's gradient, same layout.
    out: *mut f32,
    /// The softmax weights `[B, H, S, L]` (written forward, read backward).
    w: *mut f32,
    /// Backward only: gradients of q, k, v, contiguous `[B, H, S|L, E]`.
    gq: *mut f32,
    gk: *mut f32,
    gv: *mut f32,
    scale: f32,
    /// Dropout probability of the weights (0: none).
    p: f32,
    seed: u64,
}

/// Pairs computed together, one per SIMD lane: every step below is the same for all pairs
/// (same sequence lengths and head width), so eight pairs run as one 256-bit vector operation.
const LANES: usize = 8;
type V8 = [f32; LANES];
const ZERO: V8 = [0.0; LANES];

/// `acc + a·b` per lane (by value, so that it stays in one vector register).
#[inline(always)]
fn mul_add8(acc: V8, a: V8, b: V8) -> V8 {
    std::array::from_fn(|i| acc[i] + a[i] * b[i])
}

/// `a·b` per lane.
#[inline(always)]
fn mul8(a: V8, b: V8) -> V8 {
    std::array::from_fn(|i| a[i] * b[i])
}

/// `eˣ` per lane (x ≤ 0 here: scores minus their row maximum), to about 2 ulp: `x = n·ln2 + r`
/// with `|r| ≤ ln2/2`, a degree-6 polynomial for `eʳ`, `2ⁿ` through the exponent bits.
#[inline(always)]
fn exp8(x: &V8) -> V8 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³: adding it rounds to an integer
    let mut out = ZERO;
    for (o, &x) in out.iter_mut().zip(x) {
        let x = x.max(-87.0);
        let n = (x * LOG2E + ROUND) - ROUND;
        let r = (x - n * LN2_HI) - n * LN2_LO;
        let p = 1.0
            + r * (1.0
                + r * (0.5
                    + r * (0.166_666_67
                        + r * (0.041_666_78 + r * (0.008_333_452 + r * 0.001_393_73)))));
        *o = p * f32::from_bits(((n as i32 + 127) as u32) << 23);
    }
    out
}

/// Lane scratch of a group of pairs: `[token][channel]` (or `[query][key]`) × lane.
struct Scratch {
    q: Vec<V8>,
    k: Vec<V8>,
    v: Vec<V8>,
    w: Vec<V8>,
    mask: Vec<V8>,
    go: Vec<V8>,
    d: Vec<V8>,
    pair_mask: Vec<f32>,
}

impl Scratch {
    fn new(a: &AttnArgs) -> Self {
        let (s, l, e) = (a.s as usize, a.l as usize, a.e as usize);
        Self {
            q: vec![ZERO; s * e],
            k: vec![ZERO; l * e],
            v: vec![ZERO; l * e],
            w: vec![ZERO; s * l],
            mask: vec![ZERO; s * l],
            go: vec![ZERO; s * e],
            d: vec![ZERO; s * l],
            pair_mask: vec![0.0; s * l],
        }
    }

    /// Loads q, k, v (and the dropout masks) of pairs `first..first + n` into the lanes;
    /// unused lanes repeat the last pair. Returns whether dropout applies.
    #[inline(always)]
    unsafe fn load(&mut self, a: &AttnArgs, first: i64, n: usize, e: usize) -> bool {
        let (s, l) = (a.s as usize, a.l as usize);
        let dropped = a.p > 0.0;
        for lane in 0..LANES {
            let pair = first + lane.min(n - 1) as i64;
            let (b, h) = (pair / a.h, pair % a.h);
            gather(&a.q, b, h, s, e, &mut self.q, lane);
            gather(&a.k, b, h, l, e, &mut self.k, lane);
            gather(&a.v, b, h, l, e, &mut self.v, lane);
            if dropped {
                pair_mask(a, pair, &mut self.pair_mask);
                for (m, &x) in self.mask.iter_mut().zip(&self.pair_mask) {
                    m[lane] = x;
                }
            }
        }
        dropped
    }
}

/// Copies the `[t, e]` block of pair `(b, h)` of `x` into lane `lane` of `dst`.
#[inline(always)]
unsafe fn gather(x: &View4, b: i64, h: i64, t: usize, e: usize, dst: &mut [V8], lane: usize) {
    let st = &x.strides;
    let base = x.ptr.offset((b * st[0] + h * st[1]) as isize);
    let (s_t, s_e) = (st[2] as isize, st[3] as isize);
    for i in 0..t {
        let row = base.offset(i as isize * s_t);
        for c in 0..e {
            dst[i * e + c][lane] = *row.offset(c as isize * s_e);
        }
    }
}

/// The dropout mask of pair `pair`: `1/(1−p)` or 0 per weight, from the pair's own stream.
fn pair_mask(a: &AttnArgs, pair: i64, mask: &mut [f32]) {
    let seed = a.seed ^ (pair as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let threshold = (f64::from(a.p) * 65536.0).round().min(65536.0) as u32;
    fill_mask(mask, seed, threshold, 1.0 / (1.0 - a.p));
}

/// Calls `$kernel(a, begin, end, e)` with the head width as a literal for the common widths,
/// so that the loops over channels are unrolled.
macro_rules! with_width {
    ($kernel:ident, $a:expr, $begin:expr, $end:expr) => {
        match $a.e {
            4 => $kernel($a, $begin, $end, 4),
            8 => $kernel($a, $begin, $end, 8),
            16 => $kernel($a, $begin, $end, 16),
            e => $kernel($a, $begin, $end, e as usize),
        }
    };
}

#[inline(always)]
unsafe fn forward_pairs_body(a: &AttnArgs, begin: i64, end: i64) {
    with_width!(forward_pairs_width, a, begin, end)
}

#[inline(always)]
unsafe fn backward_pairs_body(a: &AttnArgs, begin: i64, end: i64) {
    with_width!(backward_pairs_width, a, begin, end)
}

#[inline(always)]
unsafe fn forward_pairs_width(a: &AttnArgs, begin: i64, end: i64, e: usize) {
    let (s, l) = (a.s as usize, a.l as usize);
    let scale = [a.scale; LANES];
    let mut sc = Scratch::new(a);
    let mut first = begin;
    while first < end {
        let n = ((end - first) as usize).min(LANES);
        let dropped = sc.load(a, first, n, e);
        for i in 0..s {
            let row = &mut sc.w[i * l..(i + 1) * l];
            let q = &sc.q[i * e..(i + 1) * e];
            let mut max = [f32::NEG_INFINITY; LANES];
            for (j, r) in row.iter_mut().enumerate() {
                let mut acc = ZERO;
                for (qc, kc) in q.iter().zip(&sc.k[j * e..(j + 1) * e]) {
                    acc = mul_add8(acc, *qc, *kc);
                }
                for ((r, a), (m, z)) in r.iter_mut().zip(&acc).zip(max.iter_mut().zip(&scale)) {
                    *r = a * z;
                    *m = m.max(*r);
                }
            }
            let mut sum = ZERO;
            for r in row.iter_mut() {
                let mut x = *r;
                x.iter_mut().zip(&max).for_each(|(x, m)| *x -= m);
                *r = exp8(&x);
                sum.iter_mut().zip(r.iter()).for_each(|(s, r)| *s += r);
            }
            let inv = sum.map(|s| 1.0 / s);
            for r in row.iter_mut() {
                r.iter_mut().zip(&inv).for_each(|(r, i)| *r *= i);
            }
        }
        // the output (in the buffer the backward pass uses for its incoming gradient)
        for i in 0..s {
            for c in 0..e {
                let mut acc = ZERO;
                for j in 0..l {
                    let mut pj = sc.w[i * l + j];
                    if dropped {
                        pj = mul8(pj, sc.mask[i * l + j]);
                    }
                    acc = mul_add8(acc, pj, sc.v[j * e + c]);
                }
                sc.go[i * e + c] = acc;
            }
        }
        for lane in 0..n {
            let pair = first + lane as i64;
            let (b, h) = (pair / a.h, pair % a.h);
            let w = a.w.add(pair as usize * s * l);
            for (t, x) in sc.w.iter().enumerate() {
                *w.add(t) = x[lane];
            }
            for i in 0..s {
                let o = a
                    .out
                    .offset((((b * a.s + i as i64) * a.h + h) * a.e) as isize);
                for c in 0..e {
                    *o.add(c) = sc.go[i * e + c][lane];
                }
            }
        }
        first += n as i64;
    }
}

#[inline(always)]
unsafe fn backward_pairs_width(a: &AttnArgs, begin: i64, end: i64, e: usize) {
    let (s, l) = (a.s as usize, a.l as usize);
    let scale = [a.scale; LANES];
    let mut sc = Scratch::new(a);
    let (mut gq, mut gk, mut gv) = (vec![ZERO; s * e], vec![ZERO; l * e], vec![ZERO; l * e]);
    let mut first = begin;
    while first < end {
        let n = ((end - first) as usize).min(LANES);
        let dropped = sc.load(a, first, n, e);
        for lane in 0..LANES {
            let pair = first + lane.min(n - 1) as i64;
            let (b, h) = (pair / a.h, pair % a.h);
            let w = a.w.add(pair as usize * s * l);
            for (t, x) in sc.w.iter_mut().enumerate() {
                x[lane] = *w.add(t);
            }
            for i in 0..s {
                let o = a
                    .out
                    .offset((((b * a.s + i as i64) * a.h + h) * a.e) as isize);
                for c in 0..e {
                    sc.go[i * e + c][lane] = *o.add(c);
                }
            }
        }
        gk.fill(ZERO);
        gv.fill(ZERO);
        for i in 0..s {
            let go = &sc.go[i * e..(i + 1) * e];
            let p = &sc.w[i * l..(i + 1) * l];
            let d = &mut sc.d[i * l..(i + 1) * l];
            let mut dot = ZERO;
            for j in 0..l {
                // the weight as applied, Pd = P ⊙ mask
                let pd = if dropped {
                    mul8(p[j], sc.mask[i * l + j])
                } else {
                    p[j]
                };
                let mut acc = ZERO;
                for c in 0..e {
                    gv[j * e + c] = mul_add8(gv[j * e + c], pd, go[c]); // dV += Pdᵀ dO
                    acc = mul_add8(acc, go[c], sc.v[j * e + c]); // dPd = dO Vᵀ
                }
                if dropped {
                    acc = mul8(acc, sc.mask[i * l + j]);
                }
                d[j] = acc;
                dot = mul_add8(dot, acc, p[j]);
            }
            // dS = P ⊙ (dP − Σⱼ dP ⊙ P) · scale
            for (dj, pj) in d.iter_mut().zip(p) {
                for (((x, p), t), z) in dj.iter_mut().zip(pj).zip(&dot).zip(&scale) {
                    *x = p * (*x - t) * z;
                }
            }
            // dQ = dS K, dK += dSᵀ Q
            for c in 0..e {
                let mut acc = ZERO;
                for j in 0..l {
                    acc = mul_add8(acc, d[j], sc.k[j * e + c]);
                    gk[j * e + c] = mul_add8(gk[j * e + c], d[j], sc.q[i * e + c]);
                }
                gq[i * e + c] = acc;
            }
        }
        for lane in 0..n {
            let pair = first + lane as i64;
            let write = |dst: *mut f32, src: &[V8]| {
                let dst = dst.add(pair as usize * src.len());
                for (t, x) in src.iter().enumerate() {
                    *dst.add(t) = x[lane];
                }
            };
            write(a.gq, &gq);
            write(a.gk, &gk);
            write(a.gv, &gv);
        }
        first += n as i64;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_pairs_avx2(a: &AttnArgs, begin: i64, end: i64) {
    forward_pairs_body(a, begin, end)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_pairs_avx2(a: &AttnArgs, begin: i64, end: i64) {
    backward_pairs_body(a, begin, end)
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The forward kernel over pairs `begin..end` (called by the C++ shim).
unsafe extern "C" fn forward_pairs(a: *const AttnArgs, begin: i64, end: i64) {
    let a = &*a;
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        return forward_pairs_avx2(a, begin, end);
    }
    forward_pairs_body(a, begin, end)
}

/// The backward kernel over pairs `begin..end` (called by the C++ shim).
unsafe extern "C" fn backward_pairs(a: *const AttnArgs, begin: i64, end: i64) {
    let a = &*a;
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        return backward_pairs_avx2(a, begin, end);
    }
    backward_pairs_body(a, begin, end)
}

type Kernel = unsafe extern "C" fn(*const AttnArgs, i64, i64);

extern "C" {
    /// Applies the autograd function; writes two new tensors (`out [B, S, H, E]`, weights
    /// `[B, H, S, L]`) or, on failure, a NUL-terminated message into `err` and returns 1.
    fn widedeep_fused_attention(
        q: *const c_void,
        k: *const c_void,
        v: *const c_void,
        scale: f64,
        p: f64,
        seed: u64,
        forward: Kernel,
        backward: Kernel,
        out: *mut *mut c_void,
        weights: *mut *mut c_void,
        err: *mut std::ffi::c_char,
        err_len: usize,
    ) -> i32;
}

/// Whether [`attend`] can take these tensors: f32 on the CPU, at most `MAX_TOKENS` tokens
/// and `MAX_HEAD_DIM` head dimensions.
///
/// # Shapes
/// - `q`: `[b, h, s, e]`, `k`, `v`: `[b, h, l, e]`
pub(crate) fn applies(q: &Tensor, k: &Tensor, v: &Tensor) -> bool {
    let ok = |t: &Tensor| t.device() == Device::Cpu && t.kind() == Kind::Float && t.dim() == 4;
    if !(ok(q) && ok(k) && ok(v)) {
        return false;
    }
    let (qs, ks, vs) = (q.size(), k.size(), v.size());
    qs[2] <= MAX_TOKENS
        && ks[2] <= MAX_TOKENS
        && qs[3] <= MAX_HEAD_DIM
        && qs[..2] == ks[..2]
        && ks == vs
        && qs[3] == ks[3]
        && qs.iter().chain(&ks).all(|&n| n > 0)
}

/// Softmax attention `softmax(q kᵀ · scale)` (weights dropped out with probability `p` when
/// training) times `v`. Needs [`applies`].
///
/// # Shapes
/// - `q`: `[b, h, s, e]`, `k`, `v`: `[b, h, l, e]`
/// - returns `[b, h, s, e]` and the weights `[b, h, s, l]` (before dropout, without gradient)
pub(crate) fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    p: f64,
    train: bool,
) -> (Tensor, Tensor) {
    let p = if crate::models::dropout_on(train) {
        p
    } else {
        0.0
    };
    let seed = if p > 0.0 {
        crate::models::dropout::torch_seed()
    } else {
        0
    };
    let mut out = std::ptr::null_mut();
    let mut weights = std::ptr::null_mut();
    let mut err = [0 as std::ffi::c_char; 512];
    // SAFETY: the shim reads the three live tensors and writes two new owned tensors (or a
    // message) through the out-pointers
    let rc = unsafe {
        widedeep_fused_attention(
            q.as_ptr().cast(),
            k.as_ptr().cast(),
            v.as_ptr().cast(),
            scale,
            p,
            seed,
            forward_pairs,
            backward_pairs,
            &mut out,
            &mut weights,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if rc != 0 {
        // shapes and kinds were checked by `applies`; anything else is a libtorch failure
        // SAFETY: the shim NUL-terminates the message within the buffer
        let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
        panic!("fused attention failed: {}", msg.to_string_lossy());
    }
    // SAFETY: both pointers are fresh `new at::Tensor(..)` owned by the caller from now on
    let (out, weights) = unsafe {
        (
            Tensor::from_ptr(out.cast()),
            Tensor::from_ptr(weights.cast()),
        )
    };
    // [b, s, h, e] memory seen as [b, h, s, e]: merging the heads back is then free
    (out.permute([0, 2, 1, 3]), weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tensor-op reference: softmax(q kᵀ · scale) v with an explicit weight mask.
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> (Tensor, Tensor) {
        let w = (q * scale)
            .matmul(&k.transpose(-2, -1))
            .softmax(-1, Kind::Float);
        (w.matmul(v), w)
    }

    fn inputs(b: i64, h: i64, s: i64, l: i64, e: i64) -> (Tensor, Tensor, Tensor) {
        let opts = (Kind::Float, Device::Cpu);
        // q, k, v as strided views of one projection, as the models produce them
        let qkv = Tensor::randn([b, s.max(l), 3, h, e], opts).permute([2, 0, 3, 1, 4]);
        let q = qkv.get(0).narrow(2, 0, s).detach().set_requires_grad(true);
        let k = qkv.get(1).narrow(2, 0, l).detach().set_requires_grad(true);
        let v = qkv.get(2).narrow(2, 0, l).detach().set_requires_grad(true);
        (q, k, v)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn matches_tensor_ops_forward_and_backward() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(0);
        for (b, h, s, l, e) in [
            (3, 2, 5, 5, 4),
            (2, 8, 10, 10, 4),
            (4, 1, 1, 7, 16),
            (1, 3, 13, 9, 8),
            // more pairs than one task's grain: split over libtorch's threads
            (70, 8, 10, 10, 4),
            (5, 2, 6, 6, 12),
        ] {
            let (q, k, v) = inputs(b, h, s, l, e);
            assert!(applies(&q, &k, &v));
            let scale = 1.0 / (e as f64).sqrt();
            let (out, w) = attend(&q, &k, &v, scale, 0.0, true);
            assert_eq!(out.size(), [b, h, s, e]);
            assert_eq!(w.size(), [b, h, s, l]);
            assert!(!w.requires_grad());
            let g = Tensor::randn(out.size(), (Kind::Float, Device::Cpu));
            let grads =
                Tensor::run_backward(&[(&out * &g).sum(Kind::Float)], &[&q, &k, &v], false, false);

            let (q2, k2, v2) = (
                q.detach().set_requires_grad(true),
                k.detach().set_requires_grad(true),
                v.detach().set_requires_grad(true),
            );
            let (out2, w2) = reference(&q2, &k2, &v2, scale);
            let want = Tensor::run_backward(
                &[(&out2 * &g).sum(Kind::Float)],
                &[&q2, &k2, &v2],
                false,
                false,
            );
            assert!(max_diff(&out, &out2) < 1e-5, "out {b} {h} {s} {l} {e}");
            assert!(max_diff(&w, &w2) < 1e-6, "weights");
            for (got, want) in grads.iter().zip(&want) {
                assert!(max_diff(got, want) < 1e-5, "grad {b} {h} {s} {l} {e}");
            }
        }
    }

    #[test]
    fn dropout_masks_forward_and_backward_alike() {
        let _rng = crate::torch_rng_lock();
        let (q, k, v) = inputs(4, 2, 6, 6, 4);
        let scale = 0.5;
        tch::manual_seed(5);
        let (out, w) = attend(&q, &k, &v, scale, 0.3, true);
        tch::manual_seed(5);
        let (again, _) = attend(&q, &k, &v, scale, 0.3, true);
        assert!(out.equal(&again), "seeded runs repeat");
        let (plain, _) = attend(&q, &k, &v, scale, 0.0, true);
        assert!(max_diff(&out, &plain) > 1e-3, "dropout changes the output");

        // recover each applied weight from the gradient of v: dV = Pdᵀ dO with dO = e_(i, c)
        // gives the dropped weights Pd; they must be 0 or P/(1−p), consistent with the output
        let g = Tensor::zeros(out.size(), (Kind::Float, Device::Cpu));
        let _ = g.narrow(2, 0, 1).narrow(3, 0, 1).fill_(1.0);
        tch::manual_seed(5);
        let (out3, _) = attend(&q, &k, &v, scale, 0.3, true);
        let gv = Tensor::run_backward(&[(&out3 * &g).sum(Kind::Float)], &[&v], false, false);
        let pd = gv[0].select(3, 0).narrow(2, 0, 6); // [b, h, l]: Pd[i=0, j] for each pair
        let p0 = w.select(2, 0); // [b, h, l]
        let kept = pd.ne(0.0);
        let ratio = (&pd / &p0).masked_select(&kept);
        assert!(max_diff(&ratio, &(Tensor::ones_like(&ratio) / 0.7)) < 1e-4);
        let dropped = 1.0
            - kept
                .to_kind(Kind::Double)
                .mean(Kind::Double)
                .double_value(&[]);
        assert!(dropped > 0.1 && dropped < 0.5, "{dropped}");
        // and the output's first token is exactly Pd · V
        let want = pd.unsqueeze(2).matmul(&v.detach()).squeeze_dim(2);
        assert!(max_diff(&out3.select(2, 0), &want) < 1e-5);
    }
}
