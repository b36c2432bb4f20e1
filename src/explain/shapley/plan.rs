//! What one row needs evaluated (a [`Plan`]: KernelSHAP, permutation or exact) and how its
//! coalition values become Shapley values.
use super::coalitions::{push_complement, put, words, Coalitions};
use super::kernel::{kernel_regression, KernelDesign, KERNEL_DRAWS};
use super::surrogate::{surrogate_order, SurrogateFit};
use crate::explain::Method;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::rc::Rc;

/// What one row needs evaluated and how to turn the values into Shapley values.
pub(super) enum Plan {
    /// Nothing to evaluate: φ = 0 except `single` (the one varying player) which gets
    /// f(x) − base.
    Trivial { single: Option<usize> },
    /// The design's enumerated coalitions, then the row's draw; `fit` when the values are
    /// read through a k-additive surrogate.
    Kernel {
        design: Rc<KernelDesign>,
        drawn: Rc<Coalitions>,
        fit: Option<Rc<SurrogateFit>>,
    },
    /// Random orders of the players, each walked forwards and backwards.
    Permutation { orders: Vec<Vec<usize>> },
    /// All coalitions of `players` players.
    Exact { players: usize },
}

impl Plan {
    /// Appends the coalitions to evaluate (bitsets over the `pr` varying players,
    /// `words(pr)` u64 each) to `out`; returns how many.
    pub fn coalitions(&self, pr: usize, out: &mut Vec<u64>) -> usize {
        let w = words(pr);
        let before = out.len();
        match self {
            Plan::Trivial { .. } => {}
            Plan::Kernel { design, drawn, .. } => {
                out.extend_from_slice(&design.enumerated.masks);
                out.extend_from_slice(&drawn.masks);
            }
            Plan::Permutation { orders } => {
                for order in orders {
                    let mut fwd = vec![0u64; w];
                    for &q in &order[..pr - 1] {
                        put(&mut fwd, q);
                        out.extend_from_slice(&fwd);
                    }
                    let mut bwd = Vec::with_capacity(w);
                    push_complement(&vec![0u64; w], pr, &mut bwd);
                    for &q in &order[..pr - 1] {
                        bwd[q >> 6] &= !(1u64 << (q & 63));
                        out.extend_from_slice(&bwd);
                    }
                }
            }
            Plan::Exact { players } => {
                out.extend(1..(1u64 << players) - 1);
            }
        }
        (out.len() - before) / w
    }
}

/// One KernelSHAP draw and its surrogate fit, when the values are read through one.
type Draw = (Rc<Coalitions>, Option<Rc<SurrogateFit>>);

/// Makes the rows' plans for one method and seed, sharing the KernelSHAP designs (one per
/// number of varying players) and draws (row r uses draw r mod [`KERNEL_DRAWS`]) between rows.
pub(super) struct Planner {
    method: Method,
    seed: u64,
    designs: HashMap<usize, Rc<KernelDesign>>,
    draws: HashMap<(usize, usize), Draw>,
}

impl Planner {
    /// A planner for `method` (a Shapley method) seeded by `seed`.
    pub fn new(method: Method, seed: u64) -> Self {
        Planner {
            method,
            seed,
            designs: HashMap::new(),
            draws: HashMap::new(),
        }
    }

    /// The seed of row `r`'s draws.
    fn row_seed(&self, r: usize) -> u64 {
        self.seed ^ (r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// The plan of row `r`, which has `pr` varying players.
    pub fn plan(&mut self, r: usize, pr: usize) -> Plan {
        if pr <= 1 {
            return Plan::Trivial {
                single: (pr == 1).then_some(0),
            };
        }
        match self.method {
            Method::KernelShap { samples } => {
                let budget = if samples == 0 { 2 * pr + 2048 } else { samples };
                let design = self
                    .designs
                    .entry(pr)
                    .or_insert_with(|| Rc::new(KernelDesign::new(pr, budget)))
                    .clone();
                // draws (and surrogate factorizations) are shared by rows r ≡ d mod KERNEL_DRAWS
                let d = r % KERNEL_DRAWS;
                let seed = self.row_seed(d);
                let (drawn, fit) = self
                    .draws
                    .entry((pr, d))
                    .or_insert_with(|| {
                        let drawn = design.draw(&mut ChaCha8Rng::seed_from_u64(seed));
                        let fit = (!design.sampled.is_empty())
                            .then(|| surrogate_order(pr, design.enumerated.len() + drawn.len()))
                            .flatten()
                            .map(|order| Rc::new(SurrogateFit::new(&design, &drawn, pr, order)));
                        (Rc::new(drawn), fit)
                    })
                    .clone();
                Plan::Kernel { design, drawn, fit }
            }
            Method::Permutation { permutations } => {
                let mut rng = ChaCha8Rng::seed_from_u64(self.row_seed(r));
                let orders = (0..permutations)
                    .map(|_| {
                        let mut o: Vec<usize> = (0..pr).collect();
                        o.shuffle(&mut rng);
                        o
                    })
                    .collect();
                Plan::Permutation { orders }
            }
            Method::Exact => Plan::Exact { players: pr },
            _ => unreachable!("Shapley methods only"),
        }
    }
}

/// Shapley values `[pr, k]` of one row from its plan and coalition values `v` (`[S, k]`, in
/// plan order); `fx` and `base` are `[k]`.
pub(super) fn solve_plan(plan: &Plan, v: &[f64], fx: &[f64], base: &[f64], pr: usize) -> Vec<f64> {
    let k = fx.len();
    let delta: Vec<f64> = fx.iter().zip(base).map(|(f, b)| f - b).collect();
    let mut phi = vec![0.0; pr * k];
    match plan {
        Plan::Trivial { single } => {
            if let Some(q) = single {
                phi[q * k..(q + 1) * k].copy_from_slice(&delta);
            }
        }
        Plan::Kernel { design, drawn, fit } => {
            phi = match fit {
                Some(fit) => fit.shapley(v, &delta, base, pr),
                None => kernel_regression(design, drawn, v, &delta, base, pr),
            };
        }
        Plan::Permutation { orders } => {
            let mut s = 0;
            let at = |s: usize, o: usize| v[s * k + o];
            for order in orders {
                // forwards: base, prefixes of size 1..pr-1, f(x)
                for o in 0..k {
                    let mut prev = base[o];
                    for (i, &q) in order.iter().enumerate() {
                        let cur = if i + 1 == pr { fx[o] } else { at(s + i, o) };
                        phi[q * k + o] += cur - prev;
                        prev = cur;
                    }
                }
                s += pr - 1;
                // backwards: f(x), full minus prefixes of size 1..pr-1, base
                for o in 0..k {
                    let mut prev = fx[o];
                    for (i, &q) in order.iter().enumerate() {
                        let cur = if i + 1 == pr { base[o] } else { at(s + i, o) };
                        phi[q * k + o] += prev - cur;
                        prev = cur;
                    }
                }
                s += pr - 1;
            }
            let n = 2.0 * orders.len() as f64;
            phi.iter_mut().for_each(|p| *p /= n);
        }
        Plan::Exact { .. } => {
            let full = (1usize << pr) - 1;
            let value = |bits: usize, o: usize| {
                if bits == 0 {
                    base[o]
                } else if bits == full {
                    fx[o]
                } else {
                    v[(bits - 1) * k + o]
                }
            };
            let fact: Vec<f64> = (0..=pr)
                .scan(1.0, |f, i| {
                    if i > 0 {
                        *f *= i as f64;
                    }
                    Some(*f)
                })
                .collect();
            for q in 0..pr {
                let bit = 1usize << q;
                for bits in 0..=full {
                    if bits & bit != 0 {
                        continue;
                    }
                    let s = bits.count_ones() as usize;
                    let w = fact[s] * fact[pr - s - 1] / fact[pr];
                    for o in 0..k {
                        phi[q * k + o] += w * (value(bits | bit, o) - value(bits, o));
                    }
                }
            }
        }
    }
    phi
}
