//! KernelSHAP's design (which coalitions, with which weights: enumerated sizes and sizes
//! sampled in complementary pairs, stratified) and its additive regression.
use super::coalitions::{binom, for_each_subset, has, push_complement, put, words, Coalitions};
use super::linalg::solve;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// KernelSHAP's coalitions for `players` players and a budget, before any random draw: the
/// sizes enumerated in full, and how many coalitions each other size draws.
///
/// Sizes s and `players − s` are handled together; every coalition comes with its complement
/// (paired, antithetic sampling, for the middle size of an even player count too), so the
/// design is symmetric and the even part of the game (interactions of even order), which
/// carries no Shapley value, cannot leak into the estimate. Sizes whose coalitions all fit in
/// the budget left are enumerated with their exact kernel weight, from the smallest and
/// largest sizes inwards (as shap does); the budget left is shared equally by the other sizes
/// (as Leverage SHAP's leverage-score sampling does: every size carries the same leverage),
/// each drawing that many distinct pairs, which share the size's kernel mass equally (sampling
/// stratified by size and without replacement, where shap draws with replacement from the
/// kernel distribution and weights by counts).
#[derive(Debug)]
pub(super) struct KernelDesign {
    /// Number of players.
    pub players: usize,
    /// The coalitions of the sizes enumerated in full, with their kernel weights.
    pub enumerated: Coalitions,
    /// The sizes sampled, and how.
    pub sampled: Vec<SampledSize>,
    /// The enumerated coalitions' part of the k-additive surrogate's normal matrix (lower
    /// triangle), shared by every draw, per order k (index k − 1).
    pub surrogate_normal: [std::cell::OnceCell<Vec<f64>>; 3],
}

/// How one coalition size (with its complementary size) is sampled.
#[derive(Debug)]
pub(super) struct SampledSize {
    /// Coalition size (≤ players / 2); each draw also takes the complement.
    size: usize,
    /// Distinct pairs drawn.
    draws: usize,
    /// Weight of each drawn coalition.
    weight: f64,
    /// `size == players / 2` with an even player count: pairs are drawn as the subsets that
    /// hold player 0 (one per complementary pair).
    middle: bool,
    /// Every pair's first coalition (flattened bitsets), when few enough to list.
    listed: Option<Vec<u64>>,
}

impl KernelDesign {
    /// The design for `pr` players and `budget` coalitions.
    pub fn new(pr: usize, budget: usize) -> KernelDesign {
        let all = if pr < 63 { (1u64 << pr) - 2 } else { u64::MAX };
        let (enumerated, sampled) = if (budget as u64) >= all {
            (Self::every_coalition(pr), Vec::new())
        } else {
            Self::stratified(pr, budget)
        };
        KernelDesign {
            players: pr,
            enumerated,
            sampled,
            surrogate_normal: Default::default(),
        }
    }

    /// Every coalition but ∅ and N, with its Shapley kernel weight.
    fn every_coalition(pr: usize) -> Coalitions {
        let w = words(pr);
        let mut enumerated = Coalitions::new(pr);
        let kernel = |s: usize| (pr - 1) as f64 / (binom(pr, s) * s as f64 * (pr - s) as f64);
        for s in 1..pr {
            let kw = kernel(s);
            for_each_subset(pr, s, 0, w, &[], |m| {
                enumerated.masks.extend_from_slice(m);
                enumerated.weights.push(kw);
            });
        }
        enumerated
    }

    /// The sizes that fit in the budget enumerated (from the outside in), the others sampled.
    fn stratified(pr: usize, budget: usize) -> (Coalitions, Vec<SampledSize>) {
        let w = words(pr);
        let mut enumerated = Coalitions::new(pr);
        let mut sampled = Vec::new();
        let n_sizes = pr / 2; // sizes 1..=n_sizes, each with pr − s (s = pr/2 with itself)
        let middle = |s: usize| 2 * s == pr;
        let mut size_weight: Vec<f64> = (1..=n_sizes)
            .map(|s| {
                let w = (pr - 1) as f64 / (s * (pr - s)) as f64;
                if middle(s) {
                    w
                } else {
                    2.0 * w
                }
            })
            .collect();
        let total: f64 = size_weight.iter().sum();
        size_weight.iter_mut().for_each(|w| *w /= total);
        // coalitions of size s and pr − s, and the complementary pairs among them
        let count = |s: usize| binom(pr, s) * if middle(s) { 1.0 } else { 2.0 };
        let mut left = budget as f64;
        let mut remaining = size_weight.clone();
        let mut full = 0;
        for s in 1..=n_sizes {
            if left * remaining[s - 1] / count(s) < 1.0 - 1e-8 {
                break;
            }
            full += 1;
            left -= count(s);
            if remaining[s - 1] < 1.0 {
                let scale = 1.0 - remaining[s - 1];
                remaining.iter_mut().for_each(|w| *w /= scale);
            }
            let cw = size_weight[s - 1] / count(s);
            for_each_subset(pr, s, 0, w, &[], |m| {
                enumerated.masks.extend_from_slice(m);
                enumerated.weights.push(cw);
                if !middle(s) {
                    push_complement(m, pr, &mut enumerated.masks);
                    enumerated.weights.push(cw);
                }
            });
        }
        let left = left.max(0.0) as usize;
        if full < n_sizes && left >= 2 {
            let sizes: Vec<usize> = (full + 1..=n_sizes).collect();
            let capacity = |s: usize| (count(s) / 2.0).min(1e15) as usize; // pairs available
            let capacities: Vec<usize> = sizes.iter().map(|&s| capacity(s)).collect();
            let draws = share_budget(&capacities, left);
            for (i, &s) in sizes.iter().enumerate() {
                if draws[i] == 0 {
                    continue;
                }
                let total_pairs = capacities[i];
                // few enough to list: a random selection of all of them per row
                let listed = (total_pairs <= (4 * draws[i]).max(10_000)).then(|| {
                    let mut all = Vec::with_capacity(total_pairs * w);
                    if middle(s) {
                        for_each_subset(pr - 1, s - 1, 1, w, &[0], |m| all.extend_from_slice(m));
                    } else {
                        for_each_subset(pr, s, 0, w, &[], |m| all.extend_from_slice(m));
                    }
                    all
                });
                sampled.push(SampledSize {
                    size: s,
                    draws: draws[i],
                    weight: size_weight[s - 1] / (2 * draws[i]) as f64,
                    middle: middle(s),
                    listed,
                });
            }
        }
        (enumerated, sampled)
    }

    /// One row's draw of the sampled sizes: `draws` distinct complementary pairs per size.
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> Coalitions {
        let pr = self.players;
        let w = words(pr);
        let mut out = Coalitions::new(pr);
        for sz in &self.sampled {
            let mut push = |m: &[u64]| {
                out.masks.extend_from_slice(m);
                push_complement(m, pr, &mut out.masks);
                out.weights.extend([sz.weight, sz.weight]);
            };
            match &sz.listed {
                Some(all) => {
                    // a partial Fisher–Yates shuffle of the listed pairs
                    let total = all.len() / w;
                    let mut order: Vec<u32> = (0..total as u32).collect();
                    for t in 0..sz.draws {
                        let j = rng.random_range(t..total);
                        order.swap(t, j);
                        let c = order[t] as usize;
                        push(&all[c * w..(c + 1) * w]);
                    }
                }
                None => {
                    let mut seen = std::collections::HashSet::new();
                    let (first, n, k) = if sz.middle {
                        (1, pr - 1, sz.size - 1)
                    } else {
                        (0, pr, sz.size)
                    };
                    let mut players: Vec<usize> = (first..first + n).collect();
                    let mut drawn = 0;
                    while drawn < sz.draws {
                        players.shuffle(rng);
                        let mut m = vec![0u64; w];
                        if sz.middle {
                            put(&mut m, 0);
                        }
                        for &q in &players[..k] {
                            put(&mut m, q);
                        }
                        if seen.insert(m.clone()) {
                            push(&m);
                            drawn += 1;
                        }
                    }
                }
            }
        }
        out
    }
}

/// Complementary pairs drawn per sampled size (`capacities`: the pairs each size has) from a
/// budget of `left` coalitions: shared equally by the sizes (the regression's leverage scores
/// are the same for every size: Musco & Witter, Leverage SHAP, 2025); a size that cannot use
/// its share passes the rest on; shares below one pair give one pair each to the smallest
/// sizes.
fn share_budget(capacities: &[usize], mut left: usize) -> Vec<usize> {
    let mut draws = vec![0usize; capacities.len()];
    let mut open: Vec<usize> = (0..capacities.len()).collect();
    while left >= 2 && !open.is_empty() {
        let open_sizes = open.len() as f64;
        let budget_now = left;
        let mut spent = 0;
        for &i in &open {
            let share = budget_now as f64 / open_sizes;
            let want = ((share / 2.0).floor() as usize).min(capacities[i] - draws[i]);
            draws[i] += want;
            spent += 2 * want;
        }
        if spent == 0 {
            for &i in &open {
                if left >= 2 && draws[i] < capacities[i] {
                    draws[i] += 1;
                    left -= 2;
                }
            }
            break;
        }
        left -= spent;
        open.retain(|&i| draws[i] < capacities[i]);
    }
    draws
}

/// The coalitions of a KernelSHAP plan with their weights: the design's enumerated ones, then
/// the row's draw (the order of the values `v`).
pub(super) fn kernel_coalitions<'a>(
    design: &'a KernelDesign,
    drawn: &'a Coalitions,
) -> impl Iterator<Item = (&'a [u64], f64)> + 'a {
    [&design.enumerated, drawn]
        .into_iter()
        .flat_map(|c| (0..c.len()).map(move |i| (c.get(i), c.weights[i])))
}

/// KernelSHAP's estimate `[pr, k]`: the Shapley-kernel weighted least-squares fit of an
/// additive game to the coalition values `v` (`[S, k]`), with v(∅) = base and the efficiency
/// constraint Σφ = f(x) − base (`delta`) exact.
pub(super) fn kernel_regression(
    design: &KernelDesign,
    drawn: &Coalitions,
    v: &[f64],
    delta: &[f64],
    base: &[f64],
    pr: usize,
) -> Vec<f64> {
    let k = delta.len();
    let mut phi = vec![0.0; pr * k];
    // the last player eliminated through the efficiency constraint: regressors z_j − z_last
    // (all ±1 or 0 within one coalition)
    let last = pr - 1;
    let nv = pr - 1;
    let mut a = vec![0.0; nv * nv];
    let mut rhs = vec![0.0; nv * k];
    let mut nz = Vec::with_capacity(nv);
    for (s, (mask, w)) in kernel_coalitions(design, drawn).enumerate() {
        let zl = has(mask, last);
        nz.clear();
        nz.extend((0..nv).filter(|&j| has(mask, j) != zl));
        let (sign, zl) = if zl { (-1.0, 1.0) } else { (1.0, 0.0) };
        for &i in &nz {
            for &j in &nz {
                a[i * nv + j] += w;
            }
            for o in 0..k {
                rhs[i * k + o] += w * sign * (v[s * k + o] - base[o] - zl * delta[o]);
            }
        }
    }
    let beta = solve(a, rhs, nv, k);
    for o in 0..k {
        let mut sum = 0.0;
        for j in 0..nv {
            phi[j * k + o] = beta[j * k + o];
            sum += beta[j * k + o];
        }
        phi[last * k + o] = delta[o] - sum;
    }
    phi
}

/// KernelSHAP draws per number of players: row r uses draw r mod `KERNEL_DRAWS`, so that the
/// surrogate's factorization is shared by the rows of one draw.
pub(super) const KERNEL_DRAWS: usize = 16;
