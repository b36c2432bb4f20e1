//! Tests of the coalition machinery: subsets, KernelSHAP designs, the solvers, the
//! k-additive surrogate and the plans, on games given in closed form.
use super::coalitions::{binom, for_each_subset, push_complement, words, Coalitions};
use super::kernel::{kernel_regression, KernelDesign};
use super::linalg::solve;
use super::plan::{solve_plan, Plan};
use super::surrogate::{surrogate_order, SurrogateFit};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::rc::Rc;

fn ones(m: &[u64]) -> usize {
    m.iter().map(|w| w.count_ones() as usize).sum()
}

#[test]
fn subsets_are_enumerated_once_each() {
    for (n, k) in [(5, 2), (6, 3), (4, 1), (4, 3), (3, 0), (70, 1)] {
        let mut seen = std::collections::HashSet::new();
        for_each_subset(n, k, 0, words(n), &[], |m| {
            assert_eq!(ones(m), k);
            assert!(seen.insert(m.to_vec()));
        });
        assert_eq!(seen.len() as f64, binom(n, k));
    }
    let mut c = Vec::new();
    push_complement(&[0b101], 4, &mut c);
    assert_eq!(c, [0b1010]);
    let mut c = Vec::new();
    push_complement(&[u64::MAX, 0], 70, &mut c);
    assert_eq!(c, [0, (1 << 6) - 1]);
}

fn plan_coalitions(design: KernelDesign, seed: u64) -> (Vec<u64>, Vec<f64>) {
    let drawn = design.draw(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut masks = design.enumerated.masks.clone();
    masks.extend_from_slice(&drawn.masks);
    let mut weights = design.enumerated.weights.clone();
    weights.extend_from_slice(&drawn.weights);
    (masks, weights)
}

#[test]
fn kernel_design_enumerates_or_samples_paired_coalitions() {
    let (masks, weights) = plan_coalitions(KernelDesign::new(5, 100), 0);
    assert_eq!(masks.len(), 30);
    assert!(weights.iter().all(|w| *w > 0.0));
    for pr in [10, 12, 13] {
        let budget = 300;
        let (masks, weights) = plan_coalitions(KernelDesign::new(pr, budget), 1);
        assert!(masks.len() <= budget, "{}", masks.len());
        assert!(masks.len() >= budget - 2, "{}", masks.len());
        assert_eq!(masks.len(), weights.len());
        // distinct, and every coalition comes with its complement and the same weight
        let set: HashMap<u64, f64> = masks.iter().copied().zip(weights.iter().copied()).collect();
        assert_eq!(set.len(), masks.len());
        for (&m, &w) in &set {
            let c = !m & ((1u64 << pr) - 1);
            assert_eq!(set.get(&c), Some(&w), "pr {pr}: {m:b}");
        }
        // the weights of each size sum to its share of the Shapley kernel
        let total: f64 = (1..pr)
            .map(|s| (pr - 1) as f64 / (s * (pr - s)) as f64)
            .sum();
        for s in 1..pr {
            let want = (pr - 1) as f64 / (s * (pr - s)) as f64 / total;
            let got: f64 = masks
                .iter()
                .zip(&weights)
                .filter(|(m, _)| m.count_ones() as usize == s)
                .map(|(_, w)| w)
                .sum();
            assert!(
                (got - want).abs() < 1e-12,
                "pr {pr} size {s}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn solver_solves() {
    let a = vec![4.0, 1.0, 1.0, 3.0];
    let b = vec![1.0, 2.0];
    let x = solve(a, b, 2, 1);
    assert!((4.0 * x[0] + x[1] - 1.0).abs() < 1e-9);
    assert!((x[0] + 3.0 * x[1] - 2.0).abs() < 1e-9);
}

/// A game on `pr` players with interactions of every order (bounded, deterministic).
fn rough_game(pr: usize) -> impl Fn(u64) -> f64 {
    move |m: u64| {
        let z = |q: usize| (m >> q & 1) as f64;
        let lin: f64 = (0..pr).map(|q| (q as f64 - 4.0) * 0.15 * z(q)).sum();
        (lin + 0.4 * z(0) * z(1) * z(2)).tanh() + 0.3 * (m.count_ones() as f64).sqrt()
            - 0.2 * (z(3) * z(5) * z(6) * z(8))
    }
}

#[test]
fn k_additive_surrogate_equals_the_regression_on_every_coalition() {
    // with every coalition the surrogate's Shapley values are the exact ones, for every order
    let pr = 8;
    let g = rough_game(pr);
    let two = |m: u64| [g(m), 1.0 - 2.0 * g(m ^ 1)];
    let design = Rc::new(KernelDesign::new(pr, 1 << pr));
    assert!(design.sampled.is_empty());
    let drawn = Coalitions::new(pr);
    let plan = Plan::Kernel {
        design: design.clone(),
        drawn: Rc::new(drawn.clone()),
        fit: None,
    };
    let mut c = Vec::new();
    plan.coalitions(pr, &mut c);
    let v: Vec<f64> = c.iter().flat_map(|&m| two(m)).collect();
    let full = (1u64 << pr) - 1;
    let (fx, base) = (two(full), two(0));
    let delta = [fx[0] - base[0], fx[1] - base[1]];
    let plain = kernel_regression(&design, &drawn, &v, &delta, &base, pr);
    for order in [2, 3] {
        let fit = SurrogateFit::new(&design, &drawn, pr, order);
        let phi = fit.shapley(&v, &delta, &base, pr);
        for (a, b) in phi.iter().zip(&plain) {
            assert!((a - b).abs() < 1e-9, "order {order}: {a} vs {b}");
        }
    }
}

#[test]
fn sampled_k_additive_surrogate_is_exact_on_a_three_additive_game() {
    // a game with interactions up to order 3 is recovered exactly from a sample of 600 of
    // the 4094 coalitions of 12 players (the plain regression is not)
    let pr = 12;
    let v = |m: u64| {
        let z = |q: usize| (m >> q & 1) as f64;
        (0..pr).map(|q| (q as f64 - 5.0) * 0.1 * z(q)).sum::<f64>()
            + 0.3 * z(0) * z(1)
            + 0.5 * z(2) * z(3) * z(4)
            - 0.4 * z(1) * z(7) * z(11)
    };
    let full = (1u64 << pr) - 1;
    let exact = exact_values(pr, v);
    let design = Rc::new(KernelDesign::new(pr, 600));
    let drawn = design.draw(&mut ChaCha8Rng::seed_from_u64(5));
    let order = surrogate_order(pr, design.enumerated.len() + drawn.len());
    assert_eq!(order, Some(3));
    let fit = Rc::new(SurrogateFit::new(&design, &drawn, pr, 3));
    let plan = Plan::Kernel {
        design: design.clone(),
        drawn: Rc::new(drawn.clone()),
        fit: Some(fit),
    };
    let values = values_of(&plan, pr, v);
    let err = |phi: &[f64]| max_diff(phi, &exact);
    let phi = solve_plan(&plan, &values, &[v(full)], &[v(0)], pr);
    assert!(err(&phi) < 1e-9, "{}", err(&phi));
    let delta = [v(full) - v(0)];
    let plain = kernel_regression(&design, &drawn, &values, &delta, &[v(0)], pr);
    assert!(err(&plain) > 1e-4, "{}", err(&plain));
}

/// The exact Shapley values `[pr]` of the game `v` on `pr` players.
fn exact_values(pr: usize, v: impl Fn(u64) -> f64) -> Vec<f64> {
    let full = (1u64 << pr) - 1;
    let plan = Plan::Exact { players: pr };
    solve_plan(&plan, &values_of(&plan, pr, &v), &[v(full)], &[v(0)], pr)
}

/// Largest |a − b|.
fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Values `[S]` of the game `v` on the coalitions of a plan.
fn values_of(plan: &Plan, pr: usize, v: impl Fn(u64) -> f64) -> Vec<f64> {
    let mut c = Vec::new();
    plan.coalitions(pr, &mut c);
    c.iter().map(|&m| v(m)).collect()
}

#[test]
fn exact_plan_on_a_known_game() {
    // v(S) = |S|² over 3 players: φ_i = v(N)/3 = 3 by symmetry
    let plan = Plan::Exact { players: 3 };
    let v = values_of(&plan, 3, |m| (m.count_ones() as f64).powi(2));
    let phi = solve_plan(&plan, &v, &[9.0], &[0.0], 3);
    for p in phi {
        assert!((p - 3.0).abs() < 1e-12);
    }
}

#[test]
fn paired_sampling_recovers_a_game_without_odd_interactions_of_order_three_or_more() {
    // v(S) = linear + pairwise terms: with every coalition paired with its complement the
    // kernel regression is exact whatever the sample
    let pr = 12;
    let v = |m: u64| {
        let z = |q: usize| (m >> q & 1) as f64;
        (0..pr).map(|q| (q as f64 - 5.0) * 0.1 * z(q)).sum::<f64>()
            + (0..pr - 1).map(|q| 0.3 * z(q) * z(q + 1)).sum::<f64>()
            + 0.2 * z(0) * z(7)
    };
    let full = (1u64 << pr) - 1;
    let exact = exact_values(pr, v);
    let design = Rc::new(KernelDesign::new(pr, 200));
    assert!(!design.sampled.is_empty());
    let plan = Plan::Kernel {
        drawn: Rc::new(design.draw(&mut ChaCha8Rng::seed_from_u64(3))),
        design,
        fit: None,
    };
    let phi = solve_plan(&plan, &values_of(&plan, pr, v), &[v(full)], &[v(0)], pr);
    let err = max_diff(&phi, &exact);
    assert!(err < 1e-9, "{err}");
}

/// Timing harness (run with `cargo test --release -p widedeep --lib solve_timings --
/// --ignored --nocapture`): the symmetric solve of the KernelSHAP regression (n = players − 1,
/// one right-hand side per output) and of the k-additive surrogate (n = its terms, players + 1
/// right-hand sides) through faer, as [`solve`] does, against libtorch's `linalg_cholesky` +
/// `cholesky_solve` on the same systems; prints µs per solve and the largest difference.
#[test]
#[ignore]
fn solve_timings() {
    use std::time::Instant;
    use tch::Tensor;
    /// A symmetric positive definite `[n, n]` matrix (a Gram matrix of pseudo-random rows).
    fn spd(n: usize) -> Vec<f64> {
        let mut state = n as u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let m: Vec<f64> = (0..2 * n * n).map(|_| next()).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..2 * n)
                    .map(|k| m[i * 2 * n + k] * m[j * 2 * n + k])
                    .sum();
            }
        }
        a
    }
    /// µs per call of `f`, over at least 0.2 s.
    fn micros(mut f: impl FnMut() -> f64) -> f64 {
        let mut reps = 1;
        loop {
            let start = Instant::now();
            let sink: f64 = (0..reps).map(|_| f()).sum();
            std::hint::black_box(sink);
            let secs = start.elapsed().as_secs_f64();
            if secs > 0.2 {
                return secs / reps as f64 * 1e6;
            }
            reps *= 2;
        }
    }
    println!("libtorch threads: {}", tch::get_num_threads());
    println!("| system | n | rhs | faer (µs) | libtorch (µs) | max abs diff |");
    println!("|---|---:|---:|---:|---:|---:|");
    let regression = [5, 10, 11, 20, 50].map(|n| ("regression", n, 1));
    let surrogate = [8, 10, 11, 12, 13].map(|pr| ("surrogate", k_additive(pr), pr + 1));
    for (system, n, nrhs) in regression.into_iter().chain(surrogate) {
        let a = spd(n);
        let b: Vec<f64> = (0..n * nrhs).map(|i| (i % 7) as f64 - 3.0).collect();
        let with_faer = || solve(a.clone(), b.clone(), n, nrhs);
        let with_torch = || {
            let trace: f64 = (0..n).map(|i| a[i * n + i].abs()).sum();
            let ridge = Tensor::eye(n as i64, (tch::Kind::Double, tch::Device::Cpu))
                * (1e-12 * trace / n as f64);
            let am = Tensor::from_slice(&a).view([n as i64, n as i64]) + ridge;
            let bm = Tensor::from_slice(&b).view([n as i64, nrhs as i64]);
            let x = bm.cholesky_solve(&am.linalg_cholesky(false), false);
            Vec::<f64>::try_from(x.contiguous().view([-1])).unwrap()
        };
        let diff = max_diff(&with_faer(), &with_torch());
        let t_faer = micros(|| with_faer()[0]);
        let t_torch = micros(|| with_torch()[0]);
        println!("| {system} | {n} | {nrhs} | {t_faer:.1} | {t_torch:.1} | {diff:.1e} |");
    }
}

/// Terms of the 3-additive surrogate on `pr` players.
fn k_additive(pr: usize) -> usize {
    (1..=3).map(|j| binom(pr, j) as usize).sum()
}
