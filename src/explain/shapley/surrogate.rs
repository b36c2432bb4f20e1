//! The k-additive surrogate of KernelSHAP (k_ADD-SHAP): the game fitted with interaction
//! terms up to order 3, read through the fit's exact Shapley values.
use super::coalitions::{binom, has, Coalitions};
use super::kernel::{kernel_coalitions, KernelDesign};
use super::linalg::solve;

/// Number of interaction terms of a k-additive game on `pr` players (orders 1..=k).
pub(super) fn k_additive_terms(pr: usize, order: usize) -> usize {
    (1..=order).map(|j| binom(pr, j) as usize).sum()
}

/// Largest number of terms of the k-additive surrogate (13 players with order 3): its normal
/// equations cost O(terms³) per explained row.
pub(super) const SURROGATE_MAX_TERMS: usize = 400;

/// The interaction order of the k-additive surrogate fitted to a sample of `coalitions`
/// coalitions on `pr` players, or `None` for the plain additive regression: order 3 when its
/// terms number at most half the coalitions (so that the fit is well determined) and at most
/// `SURROGATE_MAX_TERMS`. (Order 2 alone gains nothing: paired sampling already recovers games
/// without odd interactions of order ≥ 3.)
pub(super) fn surrogate_order(pr: usize, coalitions: usize) -> Option<usize> {
    let terms = k_additive_terms(pr, 3);
    (terms <= SURROGATE_MAX_TERMS && 2 * terms <= coalitions).then_some(3)
}

/// The interaction terms of a k-additive game on `pr` players (orders 1..=k, k ≤ 3):
/// singletons 0..pr, then pairs, then triples, each in lexicographic order.
#[derive(Debug)]
pub(super) struct Terms {
    order: usize,
    /// Term index of pair (i, j), i < j, at `i * pr + j`.
    pair: Vec<usize>,
    /// Term index of triple (i, j, l), i < j < l, at `(i * pr + j) * pr + l`.
    triple: Vec<usize>,
    /// Players of each term (the first `len` entries).
    members: Vec<([usize; 3], usize)>,
}

impl Terms {
    /// The terms of orders 1..=`order` on `pr` players.
    fn new(pr: usize, order: usize) -> Self {
        let mut t = Terms {
            order,
            pair: vec![0; if order >= 2 { pr * pr } else { 0 }],
            triple: vec![0; if order >= 3 { pr * pr * pr } else { 0 }],
            members: (0..pr).map(|i| ([i, 0, 0], 1)).collect(),
        };
        if order >= 2 {
            for i in 0..pr {
                for j in i + 1..pr {
                    t.pair[i * pr + j] = t.members.len();
                    t.members.push(([i, j, 0], 2));
                }
            }
        }
        if order >= 3 {
            for i in 0..pr {
                for j in i + 1..pr {
                    for l in j + 1..pr {
                        t.triple[(i * pr + j) * pr + l] = t.members.len();
                        t.members.push(([i, j, l], 3));
                    }
                }
            }
        }
        t
    }

    /// Number of terms.
    fn len(&self) -> usize {
        self.members.len()
    }

    /// The terms T ⊆ `mask` (indices, ascending).
    fn of(&self, mask: &[u64], pr: usize, out: &mut Vec<usize>) {
        out.clear();
        out.extend((0..pr).filter(|&q| has(mask, q)));
        let present = out.len();
        if self.order >= 2 {
            for x in 0..present {
                let i = out[x];
                for y in x + 1..present {
                    let j = out[y];
                    out.push(self.pair[i * pr + j]);
                    if self.order >= 3 {
                        for z in y + 1..present {
                            let l = out[z];
                            out.push(self.triple[(i * pr + j) * pr + l]);
                        }
                    }
                }
            }
        }
        out.sort_unstable();
    }

    /// Adds `w` x xᵀ (x the indicator of `terms`, ascending) to the lower triangle of `a`.
    fn accumulate(a: &mut [f64], n: usize, terms: &[usize], w: f64) {
        for (x, &i) in terms.iter().enumerate() {
            let row = &mut a[i * n..(i + 1) * n];
            for &j in &terms[..=x] {
                row[j] += w;
            }
        }
    }
}

/// KernelSHAP through a k-additive surrogate (k = `order`, 2 or 3; the k_ADD-SHAP of
/// Pelegrina, Duarte & Grabisch, 2023): the game is fitted by Shapley-kernel weighted least
/// squares as g(S) = base + Σ_{T ⊆ S, 1 ≤ |T| ≤ k} m_T with g(N) = f(x) exact, and
/// φ_i = Σ_{T ∋ i} m_T / |T| (the surrogate's exact Shapley values). With every coalition this
/// equals the additive regression (the residual is kernel-orthogonal to every additive game
/// with Σφ = 0, so its Shapley values vanish); when sampled, only the game's interactions of
/// order > k are left to the sampling error. φ is linear in the coalition values and the
/// normal equations depend on the coalitions only, so the map is computed once per draw:
/// φ = R (v − base) + g (f(x) − base).
#[derive(Debug)]
pub(super) struct SurrogateFit {
    /// `[S, pr]`: coalition s's contribution to φ per unit of v(S) − base.
    r: Vec<f64>,
    /// `[pr]`: φ per unit of f(x) − base.
    g: Vec<f64>,
}

impl SurrogateFit {
    /// The fit for the coalitions of `design` and one draw `drawn`, of order `order`.
    pub fn new(design: &KernelDesign, drawn: &Coalitions, pr: usize, order: usize) -> Self {
        let terms = Terms::new(pr, order);
        let nt = terms.len();
        let mut list = Vec::with_capacity(nt);
        let mut a = design.surrogate_normal[order - 1]
            .get_or_init(|| {
                let mut a = vec![0.0; nt * nt];
                for i in 0..design.enumerated.len() {
                    terms.of(design.enumerated.get(i), pr, &mut list);
                    Terms::accumulate(&mut a, nt, &list, design.enumerated.weights[i]);
                }
                a
            })
            .clone();
        for i in 0..drawn.len() {
            terms.of(drawn.get(i), pr, &mut list);
            Terms::accumulate(&mut a, nt, &list, drawn.weights[i]);
        }
        // u = A⁻¹ 1 and Z = A⁻¹ Shᵀ (Sh: [pr, nt], Sh_iT = 1/|T| for i ∈ T), solved together
        let nrhs = pr + 1;
        let mut rhs = vec![0.0; nt * nrhs];
        for (t, (m, len)) in terms.members.iter().enumerate() {
            for &i in &m[..*len] {
                rhs[t * nrhs + i] = 1.0 / *len as f64;
            }
            rhs[t * nrhs + pr] = 1.0;
        }
        let z = solve(a, rhs, nt, nrhs);
        let u = |t: usize| z[t * nrhs + pr];
        let u_sum: f64 = (0..nt).map(u).sum();
        // φ = Sh m with m = A⁻¹ b − u (uᵀ b − Δ) / uᵀ1:  φ = G b + h Δ / uᵀ1,
        // G = Sh A⁻¹ − h uᵀ / uᵀ1, h = Sh u
        let mut h = vec![0.0; pr];
        for (t, (m, len)) in terms.members.iter().enumerate() {
            for &i in &m[..*len] {
                h[i] += u(t) / *len as f64;
            }
        }
        // Gᵀ `[nt, pr]`
        let mut gt = vec![0.0; nt * pr];
        for t in 0..nt {
            for i in 0..pr {
                gt[t * pr + i] = z[t * nrhs + i] - h[i] * u(t) / u_sum;
            }
        }
        // each column of G sums to 0 and h to uᵀ1 (Sh's columns sum to 1): rounding removed
        for col in gt.chunks_mut(pr) {
            let mean = col.iter().sum::<f64>() / pr as f64;
            col.iter_mut().for_each(|x| *x -= mean);
        }
        let h_sum: f64 = h.iter().sum();
        // b = Σ_S w_S x_S (v(S) − base): coalition s's column of R is w_S Σ_{T ⊆ S} G[:, T]
        let mut r = Vec::with_capacity((design.enumerated.len() + drawn.len()) * pr);
        for (mask, w) in kernel_coalitions(design, drawn) {
            terms.of(mask, pr, &mut list);
            let at = r.len();
            r.resize(at + pr, 0.0);
            for &t in &list {
                for i in 0..pr {
                    r[at + i] += gt[t * pr + i];
                }
            }
            r[at..].iter_mut().for_each(|x| *x *= w);
        }
        SurrogateFit {
            r,
            g: h.iter().map(|x| x / h_sum).collect(),
        }
    }

    /// Shapley values `[pr, k]` from the coalition values `v` (`[S, k]`, in plan order).
    pub fn shapley(&self, v: &[f64], delta: &[f64], base: &[f64], pr: usize) -> Vec<f64> {
        let k = delta.len();
        let mut phi = vec![0.0; pr * k];
        for (i, &g) in self.g.iter().enumerate() {
            for o in 0..k {
                phi[i * k + o] = g * delta[o];
            }
        }
        for (s, col) in self.r.chunks(pr).enumerate() {
            for o in 0..k {
                let d = v[s * k + o] - base[o];
                for (i, &c) in col.iter().enumerate() {
                    phi[i * k + o] += c * d;
                }
            }
        }
        phi
    }
}
