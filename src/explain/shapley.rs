//! Model-agnostic Shapley values: KernelSHAP, permutation SHAP and exact enumeration.
//!
//! Players are the features that own input columns. The value of a coalition S for row x is
//! the background-weighted mean of f(x_S, b_{¬S}) over the background rows b (interventional
//! SHAP): the columns of players in S come from x, the others from b. Players whose columns
//! equal those of every background row cannot change the output; they get 0 and take no part
//! in the sampling (as in shap's KernelExplainer).
use super::{Attribution, Explainer, Method, Slot};
use crate::error::Result;
use crate::models::ModelInput;
use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// Player index of every input column, per input.
struct PlayerMap {
    /// The game covers the deep components only: the wide columns are not players (their
    /// attributions are taken in closed form) and stay at the explained row's values.
    deep_only: bool,
    wide: Vec<i64>,
    cat: Vec<i64>,
    cont: Vec<i64>,
    text: Vec<usize>,
    image: Vec<usize>,
}

fn player_map(ex: &Explainer, players: &[usize], deep_only: bool) -> PlayerMap {
    let l = ex.layout();
    let mut map = PlayerMap {
        deep_only,
        wide: vec![0; l.wide],
        cat: vec![0; l.cat],
        cont: vec![0; l.cont],
        text: vec![0; l.text],
        image: vec![0; l.image],
    };
    for (q, &f) in players.iter().enumerate() {
        for slot in &ex.features()[f].slots {
            match *slot {
                Slot::Wide(_) if deep_only => {}
                Slot::Wide(j) => map.wide[j] = q as i64,
                Slot::Cat(j) => map.cat[j] = q as i64,
                Slot::Cont(j) => map.cont[j] = q as i64,
                Slot::Text(j) => map.text[j] = q,
                Slot::Image(j) => map.image[j] = q,
            }
        }
    }
    map
}

/// `[n, P]` (row-major): whether player q's columns in row r differ from some background row.
fn varying(ex: &Explainer, x: &ModelInput, map: &PlayerMap, n_players: usize) -> Vec<bool> {
    let n = x.batch_size() as usize;
    let bg = ex.background.input();
    let mut out = vec![false; n * n_players];
    tch::no_grad(|| {
        let mut mark = |differs: Tensor, q: usize| {
            let d: Vec<bool> =
                Vec::<bool>::try_from(differs.to_device(Device::Cpu)).unwrap_or_default();
            for (r, v) in d.into_iter().enumerate() {
                if v {
                    out[r * n_players + q] = true;
                }
            }
        };
        let no_wide = None;
        let columns = [
            (
                if map.deep_only { &no_wide } else { &x.wide },
                &bg.wide,
                &map.wide,
            ),
            (&x.cat, &bg.cat, &map.cat),
            (&x.cont, &bg.cont, &map.cont),
        ];
        for (xt, bt, players) in columns {
            if let (Some(xt), Some(bt)) = (xt, bt) {
                for (j, &q) in players.iter().enumerate() {
                    let xc = xt.select(1, j as i64).unsqueeze(1); // [n, 1]
                    let bc = bt.select(1, j as i64).unsqueeze(0); // [1, M]
                    mark(xc.ne_tensor(&bc).any_dim(1, false), q as usize);
                }
            }
        }
        let whole = [
            (&x.text, &bg.text, &map.text),
            (&x.image, &bg.image, &map.image),
        ];
        for (xs, bs, players) in whole {
            for ((xt, bt), &q) in xs.iter().zip(bs.iter()).zip(players.iter()) {
                let xf = xt.flatten(1, -1);
                let mut any = Tensor::zeros([xf.size()[0]], (Kind::Bool, xf.device()));
                for m in 0..bt.size()[0] {
                    let bm = bt.get(m).flatten(0, -1).unsqueeze(0);
                    any = any.logical_or(&xf.ne_tensor(&bm).any_dim(1, false));
                }
                mark(any, q);
            }
        }
    });
    out
}

/// `[nb, M]` player bitmasks: bit q of entry (r, m) is set when player q's columns differ
/// between row r of `x` and background row m (wide columns count only when they are players).
fn differences(ex: &Explainer, x: &ModelInput, map: &PlayerMap) -> Vec<u64> {
    let nb = x.batch_size() as usize;
    let bg = ex.background.input();
    let m = bg.batch_size() as usize;
    let mut bits = vec![0u64; nb * m];
    tch::no_grad(|| {
        let no_wide = None;
        let columns = [
            (
                if map.deep_only { &no_wide } else { &x.wide },
                &bg.wide,
                &map.wide,
            ),
            (&x.cat, &bg.cat, &map.cat),
            (&x.cont, &bg.cont, &map.cont),
        ];
        for (xt, bt, players) in columns {
            if let (Some(xt), Some(bt)) = (xt, bt) {
                let c = players.len();
                // [nb, M, c]
                let ne = xt.unsqueeze(1).ne_tensor(&bt.unsqueeze(0));
                let ne: Vec<bool> =
                    Vec::try_from(ne.to_device(Device::Cpu).flatten(0, -1)).unwrap_or_default();
                for (i, chunk) in ne.chunks(c.max(1)).enumerate() {
                    for (j, &d) in chunk.iter().enumerate() {
                        if d {
                            bits[i] |= 1u64 << players[j];
                        }
                    }
                }
            }
        }
        let whole = [
            (&x.text, &bg.text, &map.text),
            (&x.image, &bg.image, &map.image),
        ];
        for (xs, bs, players) in whole {
            for ((xt, bt), &q) in xs.iter().zip(bs.iter()).zip(players.iter()) {
                let xf = xt.flatten(1, -1);
                for mm in 0..m {
                    let bm = bt.get(mm as i64).flatten(0, -1).unsqueeze(0);
                    let d: Vec<bool> =
                        Vec::try_from(xf.ne_tensor(&bm).any_dim(1, false).to_device(Device::Cpu))
                            .unwrap_or_default();
                    for (r, v) in d.into_iter().enumerate() {
                        if v {
                            bits[r * m + mm] |= 1u64 << q;
                        }
                    }
                }
            }
        }
    });
    bits
}

/// Background-weighted mean (linked) outputs `[pairs, k]` for coalitions: pair i takes the
/// columns of the players set in `masks[i·P..(i+1)·P]` from row `rows[i]` of `x`, the rest
/// from each background row.
///
/// Mixed rows that are identical are evaluated once: for row r and background row m only the
/// players whose columns differ between them matter, so coalitions that agree on those give
/// the same input (with categorical data most background rows share many values with the
/// explained row). Exact; it only skips repeated model calls.
fn eval_coalitions(
    ex: &Explainer,
    x: &ModelInput,
    map: &PlayerMap,
    rows: &[i64],
    masks: &[bool],
    n_players: usize,
) -> Vec<f64> {
    let pairs = rows.len();
    let k = ex.n_outputs();
    if pairs == 0 {
        return Vec::new();
    }
    let device = ex.model.device();
    let bg = ex.background.input();
    let m = bg.batch_size() as usize;
    let weights = ex.background.weights();

    // the distinct evaluations (row, background row, representative pair) and, for every
    // pair and background row, which of them it needs
    let dedupe = n_players <= 64;
    let diff = if dedupe {
        differences(ex, x, map)
    } else {
        Vec::new()
    };
    let mut evals: Vec<(i64, i64, i64)> = Vec::new();
    let mut index = vec![0u32; pairs * m];
    let mut table: Vec<u32> = Vec::new();
    let mut start = 0;
    while start < pairs {
        let r = rows[start];
        let mut end = start;
        while end < pairs && rows[end] == r {
            end += 1;
        }
        let bits: Vec<u64> = (start..end)
            .filter(|_| dedupe)
            .map(|i| {
                masks[i * n_players..(i + 1) * n_players]
                    .iter()
                    .enumerate()
                    .fold(0u64, |b, (q, &on)| if on { b | 1 << q } else { b })
            })
            .collect();
        for mm in 0..m {
            let d = if dedupe {
                diff[r as usize * m + mm]
            } else {
                u64::MAX
            };
            let positions: Vec<u32> = (0..64).filter(|q| d >> q & 1 == 1).collect();
            if dedupe && positions.len() <= 20 {
                table.clear();
                table.resize(1 << positions.len(), u32::MAX);
                for (i, &b) in (start..end).zip(&bits) {
                    let key = positions
                        .iter()
                        .enumerate()
                        .fold(0usize, |acc, (t, &q)| acc | (((b >> q) & 1) as usize) << t);
                    if table[key] == u32::MAX {
                        table[key] = evals.len() as u32;
                        evals.push((r, mm as i64, i as i64));
                    }
                    index[i * m + mm] = table[key];
                }
            } else {
                for i in start..end {
                    index[i * m + mm] = evals.len() as u32;
                    evals.push((r, mm as i64, i as i64));
                }
            }
        }
        start = end;
    }

    let per_row = Explainer::elements_per_row(bg) * 2;
    let call_rows = ex.rows_per_call(per_row);
    let idx = |v: &[i64]| Tensor::from_slice(v).to_device(device);
    let (pw, pc, pn) = (idx(&map.wide), idx(&map.cat), idx(&map.cont));
    let all_masks = Tensor::from_slice(masks)
        .view([pairs as i64, n_players as i64])
        .to_device(device);
    let mut f = Vec::with_capacity(evals.len() * k);
    tch::no_grad(|| {
        for chunk in evals.chunks(call_rows) {
            let e = chunk.len() as i64;
            let r = idx(&chunk.iter().map(|c| c.0).collect::<Vec<_>>());
            let b = idx(&chunk.iter().map(|c| c.1).collect::<Vec<_>>());
            let mask =
                all_masks.index_select(0, &idx(&chunk.iter().map(|c| c.2).collect::<Vec<_>>()));
            let mix_cols =
                |xt: &Option<Tensor>, bt: &Option<Tensor>, players: &Tensor| match (xt, bt) {
                    (Some(xt), Some(bt)) => {
                        let sm = mask.index_select(1, players);
                        Some(
                            xt.index_select(0, &r)
                                .where_self(&sm, &bt.index_select(0, &b)),
                        )
                    }
                    _ => None,
                };
            let mix_whole = |xs: &[Tensor], bs: &[Tensor], players: &[usize]| -> Vec<Tensor> {
                xs.iter()
                    .zip(bs)
                    .zip(players)
                    .map(|((xt, bt), &q)| {
                        let mut shape = vec![e];
                        shape.extend(std::iter::repeat_n(1, xt.dim() - 1));
                        let sm = mask.select(1, q as i64).view(shape.as_slice());
                        xt.index_select(0, &r)
                            .where_self(&sm, &bt.index_select(0, &b))
                    })
                    .collect()
            };
            let wide = if map.deep_only {
                // not players: the explained row's own wide values
                x.wide.as_ref().map(|xt| xt.index_select(0, &r))
            } else {
                mix_cols(&x.wide, &bg.wide, &pw)
            };
            let mixed = ModelInput {
                wide,
                cat: mix_cols(&x.cat, &bg.cat, &pc),
                cont: mix_cols(&x.cont, &bg.cont, &pn),
                text: mix_whole(&x.text, &bg.text, &map.text),
                image: mix_whole(&x.image, &bg.image, &map.image),
            };
            let raw = if map.deep_only {
                ex.deep_output(&mixed)
            } else {
                ex.model.forward_t(&mixed, false)
            };
            f.extend(super::to_vec_f64(&ex.link(&raw)));
        }
    });
    let mut out = vec![0.0; pairs * k];
    for i in 0..pairs {
        for (mm, w) in weights.iter().enumerate() {
            let at = index[i * m + mm] as usize * k;
            for o in 0..k {
                out[i * k + o] += w * f[at + o];
            }
        }
    }
    out
}

/// What one row needs evaluated and how to turn the values into Shapley values.
enum Plan {
    /// Nothing to evaluate: φ = 0 except `single` (the one varying player) which gets
    /// f(x) − base.
    Trivial {
        single: Option<usize>,
    },
    Kernel {
        masks: Vec<Vec<bool>>,
        weights: Vec<f64>,
    },
    Permutation {
        orders: Vec<Vec<usize>>,
    },
    /// All coalitions of `players` players.
    Exact {
        players: usize,
    },
}

impl Plan {
    /// The coalitions to evaluate, as masks over the varying players.
    fn coalitions(&self) -> Vec<Vec<bool>> {
        match self {
            Plan::Trivial { .. } => Vec::new(),
            Plan::Kernel { masks, .. } => masks.clone(),
            Plan::Permutation { orders } => {
                let pr = orders.first().map_or(0, Vec::len);
                let mut out = Vec::with_capacity(orders.len() * 2 * pr.saturating_sub(1));
                for order in orders {
                    let mut fwd = vec![false; pr];
                    for &q in &order[..pr - 1] {
                        fwd[q] = true;
                        out.push(fwd.clone());
                    }
                    let mut bwd = vec![true; pr];
                    for &q in &order[..pr - 1] {
                        bwd[q] = false;
                        out.push(bwd.clone());
                    }
                }
                out
            }
            Plan::Exact { players } => {
                let pr = *players;
                (1..(1u64 << pr) - 1)
                    .map(|bits| (0..pr).map(|i| bits >> i & 1 == 1).collect())
                    .collect()
            }
        }
    }
}

fn binom(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Calls `f` with every subset of `0..n` of size `k` (as a mask).
fn for_each_subset(n: usize, k: usize, mut f: impl FnMut(&[bool])) {
    let mut idx: Vec<usize> = (0..k).collect();
    let mut mask = vec![false; n];
    loop {
        mask.iter_mut().for_each(|m| *m = false);
        for &i in &idx {
            mask[i] = true;
        }
        f(&mask);
        // the rightmost index that can still move right
        let mut i = k;
        while i > 0 && idx[i - 1] == n - k + i - 1 {
            i -= 1;
        }
        if i == 0 {
            return;
        }
        idx[i - 1] += 1;
        for j in i..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// `count` distinct subsets of `0..n` of size `k`, uniformly without replacement.
fn distinct_subsets(n: usize, k: usize, count: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<bool>> {
    let total = binom(n, k);
    if total <= (4 * count).max(10_000) as f64 {
        // few enough to list: a random selection of all of them
        let mut all = Vec::new();
        for_each_subset(n, k, |m| all.push(m.to_vec()));
        all.shuffle(rng);
        all.truncate(count);
        return all;
    }
    let mut seen = std::collections::HashSet::new();
    let mut order: Vec<usize> = (0..n).collect();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        order.shuffle(rng);
        let mut m = vec![false; n];
        for &i in &order[..k] {
            m[i] = true;
        }
        if seen.insert(m.clone()) {
            out.push(m);
        }
    }
    out
}

/// KernelSHAP coalitions over `pr` players with a budget of `budget` evaluations: sizes whose
/// subsets (with their complements) fit in the remaining budget are enumerated with their
/// exact kernel weight, from the smallest and largest sizes inwards (as shap does); the budget
/// left is shared among the other sizes in proportion to their kernel mass, and each draws
/// that many distinct subsets (with their complements), which share the size's mass equally
/// (sampling stratified by size and without replacement, where shap samples with replacement).
fn kernel_plan(pr: usize, budget: usize, rng: &mut ChaCha8Rng) -> (Vec<Vec<bool>>, Vec<f64>) {
    let mut masks = Vec::new();
    let mut weights = Vec::new();
    let all = if pr < 63 { (1u64 << pr) - 2 } else { u64::MAX };
    let kernel = |s: usize| (pr - 1) as f64 / (binom(pr, s) * s as f64 * (pr - s) as f64);
    if (budget as u64) >= all {
        for s in 1..pr {
            let w = kernel(s);
            for_each_subset(pr, s, |m| {
                masks.push(m.to_vec());
                weights.push(w);
            });
        }
        return (masks, weights);
    }
    let n_sizes = pr / 2; // sizes 1..=n_sizes, each paired with pr − s (except s = pr/2 for even pr)
    let paired = |s: usize| 2 * s != pr;
    let mut size_weight: Vec<f64> = (1..=n_sizes)
        .map(|s| {
            let w = (pr - 1) as f64 / (s * (pr - s)) as f64;
            if paired(s) {
                2.0 * w
            } else {
                w
            }
        })
        .collect();
    let total: f64 = size_weight.iter().sum();
    size_weight.iter_mut().for_each(|w| *w /= total);
    let mut left = budget as f64;
    let mut remaining = size_weight.clone();
    let mut full = 0;
    for s in 1..=n_sizes {
        let count = binom(pr, s) * if paired(s) { 2.0 } else { 1.0 };
        if left * remaining[s - 1] / count < 1.0 - 1e-8 {
            break;
        }
        full += 1;
        left -= count;
        if remaining[s - 1] < 1.0 {
            let scale = 1.0 - remaining[s - 1];
            remaining.iter_mut().for_each(|w| *w /= scale);
        }
        let w = size_weight[s - 1] / count;
        for_each_subset(pr, s, |m| {
            masks.push(m.to_vec());
            weights.push(w);
            if paired(s) {
                masks.push(m.iter().map(|b| !b).collect());
                weights.push(w);
            }
        });
    }
    let mut left = left.max(0.0) as usize;
    if full < n_sizes && left > 0 {
        // the budget left, shared by the remaining sizes in proportion to their kernel mass;
        // a size that cannot use its share passes the rest on
        let sizes: Vec<usize> = (full + 1..=n_sizes).collect();
        let per_draw = |s: usize| if paired(s) { 2 } else { 1 };
        let capacity = |s: usize| binom(pr, s).min(1e15) as usize; // draws available
        let mut draws = vec![0usize; sizes.len()];
        let mut open: Vec<usize> = (0..sizes.len()).collect();
        while left > 0 && !open.is_empty() {
            let mass: f64 = open.iter().map(|&i| size_weight[sizes[i] - 1]).sum();
            let budget_now = left;
            let mut spent = 0;
            for &i in &open {
                let s = sizes[i];
                let share = budget_now as f64 * size_weight[s - 1] / mass;
                let want =
                    ((share / per_draw(s) as f64).floor() as usize).min(capacity(s) - draws[i]);
                draws[i] += want;
                spent += want * per_draw(s);
            }
            if spent == 0 {
                // shares below one draw: give the rest to the heaviest open sizes, one draw each
                for &i in &open {
                    let s = sizes[i];
                    if left >= per_draw(s) && draws[i] < capacity(s) {
                        draws[i] += 1;
                        left -= per_draw(s);
                    }
                }
                break;
            }
            left -= spent;
            open.retain(|&i| draws[i] < capacity(sizes[i]));
        }
        for (i, &s) in sizes.iter().enumerate() {
            if draws[i] == 0 {
                continue;
            }
            // each side (size s, and pr − s when paired) carries the kernel mass of its size
            let w = size_weight[s - 1] / (per_draw(s) * draws[i]) as f64;
            for m in distinct_subsets(pr, s, draws[i], rng) {
                if paired(s) {
                    masks.push(m.iter().map(|b| !b).collect());
                    weights.push(w);
                }
                masks.push(m);
                weights.push(w);
            }
        }
    }
    (masks, weights)
}

/// Solves the symmetric system `a x = b` (n × n, `nrhs` right-hand sides, row-major) by
/// Gaussian elimination with partial pivoting; a tiny ridge keeps singular systems solvable.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize, nrhs: usize) -> Vec<f64> {
    let trace: f64 = (0..n).map(|i| a[i * n + i].abs()).sum::<f64>().max(1e-300);
    for i in 0..n {
        a[i * n + i] += 1e-12 * trace / n as f64;
    }
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))
            .unwrap_or(col);
        if piv != col {
            for j in 0..n {
                a.swap(col * n + j, piv * n + j);
            }
            for j in 0..nrhs {
                b.swap(col * nrhs + j, piv * nrhs + j);
            }
        }
        let d = a[col * n + col];
        if d.abs() < 1e-300 {
            continue;
        }
        for i in col + 1..n {
            let f = a[i * n + col] / d;
            if f == 0.0 {
                continue;
            }
            for j in col..n {
                a[i * n + j] -= f * a[col * n + j];
            }
            for j in 0..nrhs {
                b[i * nrhs + j] -= f * b[col * nrhs + j];
            }
        }
    }
    let mut x = vec![0.0; n * nrhs];
    for i in (0..n).rev() {
        let d = a[i * n + i];
        for j in 0..nrhs {
            let mut s = b[i * nrhs + j];
            for c in i + 1..n {
                s -= a[i * n + c] * x[c * nrhs + j];
            }
            x[i * nrhs + j] = if d.abs() < 1e-300 { 0.0 } else { s / d };
        }
    }
    x
}

/// Shapley values `[pr, k]` of one row from its plan and coalition values `v` (`[S, k]`, in
/// plan order); `fx` and `base` are `[k]`.
fn solve_plan(plan: &Plan, v: &[f64], fx: &[f64], base: &[f64], pr: usize) -> Vec<f64> {
    let k = fx.len();
    let delta: Vec<f64> = fx.iter().zip(base).map(|(f, b)| f - b).collect();
    let mut phi = vec![0.0; pr * k];
    match plan {
        Plan::Trivial { single } => {
            if let Some(q) = single {
                phi[q * k..(q + 1) * k].copy_from_slice(&delta);
            }
        }
        Plan::Kernel { masks, weights, .. } => {
            // eliminate the last player through the efficiency constraint
            let last = pr - 1;
            let nv = pr - 1;
            let mut a = vec![0.0; nv * nv];
            let mut rhs = vec![0.0; nv * k];
            for (s, (mask, &w)) in masks.iter().zip(weights).enumerate() {
                let zl = if mask[last] { 1.0 } else { 0.0 };
                let xrow: Vec<f64> = (0..nv)
                    .map(|j| if mask[j] { 1.0 } else { 0.0 } - zl)
                    .collect();
                for i in 0..nv {
                    if xrow[i] == 0.0 {
                        continue;
                    }
                    for j in 0..nv {
                        a[i * nv + j] += w * xrow[i] * xrow[j];
                    }
                    for o in 0..k {
                        let y = v[s * k + o] - base[o] - zl * delta[o];
                        rhs[i * k + o] += w * xrow[i] * y;
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

/// Adds each wide column's exact attribution `w[x_j] − Σ_m weight_m · w[b_mj]` (the wide part
/// is additive in its columns) to its feature.
fn wide_closed_form(ex: &Explainer, x: &ModelInput, values: &mut [f64]) {
    let (Some(wide), Some(xw), Some(bw)) = (
        ex.model.wide(),
        x.wide.as_ref(),
        ex.background.input().wide.as_ref(),
    ) else {
        return;
    };
    let (p, k) = (ex.features().len(), ex.n_outputs());
    let (n, c) = (xw.size()[0], xw.size()[1]);
    let m = bw.size()[0];
    let (wx, expected) = tch::no_grad(|| {
        let table = wide.weight().to_kind(Kind::Double);
        let wx = table.index_select(0, &xw.flatten(0, -1)).view([n, c, -1]);
        let wb = table.index_select(0, &bw.flatten(0, -1)).view([m, c, -1]);
        let weights = Tensor::from_slice(ex.background.weights())
            .to_device(wb.device())
            .view([m, 1, 1]);
        let expected = (wb * weights).sum_dim_intlist(0, false, Kind::Double);
        (super::to_vec_f64(&wx), super::to_vec_f64(&expected))
    });
    for (f, feature) in ex.features().iter().enumerate() {
        for slot in &feature.slots {
            if let Slot::Wide(j) = *slot {
                for r in 0..n as usize {
                    for o in 0..k {
                        values[(r * p + f) * k + o] +=
                            wx[(r * c as usize + j) * k + o] - expected[j * k + o];
                    }
                }
            }
        }
    }
}

pub(super) fn attribute(
    ex: &Explainer,
    x: &ModelInput,
    preds: &[f64],
    bar: &ProgressBar,
) -> Result<Attribution> {
    let n = x.batch_size() as usize;
    let (p, k) = (ex.features().len(), ex.n_outputs());
    let split = ex.splits_wide();
    let mut values = vec![0.0; n * p * k];
    // the game: on the whole model, or (wide part in closed form) on the deep components
    let (players, game_preds, base_row) = if split {
        wide_closed_form(ex, x, &mut values);
        let players: Vec<usize> = (0..p)
            .filter(|&j| {
                ex.features()[j]
                    .slots
                    .iter()
                    .any(|s| !matches!(s, Slot::Wide(_)))
            })
            .collect();
        let (fx, fb) = tch::no_grad(|| {
            (
                super::to_vec_f64(&ex.eval_deep(x)),
                super::to_vec_f64(&ex.eval_deep(ex.background.input())),
            )
        });
        let mut base = vec![0.0; k];
        for (i, w) in ex.background.weights().iter().enumerate() {
            for o in 0..k {
                base[o] += w * fb[i * k + o];
            }
        }
        (players, fx, base)
    } else {
        (ex.players(), preds.to_vec(), ex.expected_value())
    };
    let preds = &game_preds[..];
    let np = players.len();
    let map = player_map(ex, &players, split);
    let vary = varying(ex, x, &map, np);
    let m = ex.background.len();
    let call_rows = ex.rows_per_call(Explainer::elements_per_row(ex.background.input()) * 2);
    let target_pairs = (8 * call_rows / m.max(1)).max(1);

    let varying_of = |r: usize| -> Vec<usize> { (0..np).filter(|&q| vary[r * np + q]).collect() };
    let plan_for = |r: usize, pr: usize| -> Plan {
        if pr <= 1 {
            return Plan::Trivial {
                single: (pr == 1).then_some(0),
            };
        }
        let mut rng =
            ChaCha8Rng::seed_from_u64(ex.seed() ^ (r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        match ex.config.method {
            Method::KernelShap { samples } => {
                let budget = if samples == 0 { 2 * pr + 2048 } else { samples };
                let (masks, weights) = kernel_plan(pr, budget, &mut rng);
                Plan::Kernel { masks, weights }
            }
            Method::Permutation { permutations } => {
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
    };

    let mut r0 = 0;
    if np == 0 {
        bar.inc(n as u64);
        r0 = n;
    }
    while r0 < n {
        // a block of rows whose coalitions fill a few model calls
        let mut block = Vec::new(); // (plan, varying players, number of coalitions)
        let mut rows = Vec::new();
        let mut masks = Vec::new();
        let mut r = r0;
        while r < n && (r == r0 || rows.len() < target_pairs) {
            let vr = varying_of(r);
            let plan = plan_for(r, vr.len());
            let coalitions = plan.coalitions();
            for c in &coalitions {
                let mut full = vec![true; np];
                for (i, &q) in vr.iter().enumerate() {
                    full[q] = c[i];
                }
                masks.extend(full);
                rows.push((r - r0) as i64);
            }
            block.push((plan, vr, coalitions.len()));
            r += 1;
        }
        let xb = x.map(|t| t.narrow(0, r0 as i64, (r - r0) as i64));
        let v = eval_coalitions(ex, &xb, &map, &rows, &masks, np);
        let mut offset = 0;
        for (i, (plan, vr, count)) in block.iter().enumerate() {
            let row = r0 + i;
            let phi = solve_plan(
                plan,
                &v[offset * k..(offset + count) * k],
                &preds[row * k..(row + 1) * k],
                &base_row,
                vr.len(),
            );
            offset += count;
            for (i, &q) in vr.iter().enumerate() {
                let f = players[q];
                for o in 0..k {
                    values[(row * p + f) * k + o] += phi[i * k + o];
                }
            }
        }
        bar.inc((r - r0) as u64);
        r0 = r;
    }
    let full_base = ex.expected_value();
    let base = (0..n).flat_map(|_| full_base.iter().copied()).collect();
    Ok(Attribution {
        values,
        base,
        details: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_enumerated_once_each() {
        for (n, k) in [(5, 2), (6, 3), (4, 1), (4, 3), (3, 0)] {
            let mut seen = std::collections::HashSet::new();
            for_each_subset(n, k, |m| {
                assert_eq!(m.iter().filter(|b| **b).count(), k);
                assert!(seen.insert(m.to_vec()));
            });
            assert_eq!(seen.len() as f64, binom(n, k));
        }
    }

    #[test]
    fn kernel_plan_enumerates_everything_when_the_budget_allows() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (masks, weights) = kernel_plan(5, 100, &mut rng);
        assert_eq!(masks.len(), 30);
        assert!(weights.iter().all(|w| *w > 0.0));
        // partial budget: the number of coalitions respects it
        let (masks, weights) = kernel_plan(12, 500, &mut rng);
        assert!(masks.len() <= 500, "{}", masks.len());
        assert_eq!(masks.len(), weights.len());
    }

    #[test]
    fn solver_solves() {
        let a = vec![4.0, 1.0, 1.0, 3.0];
        let b = vec![1.0, 2.0];
        let x = solve(a, b, 2, 1);
        assert!((4.0 * x[0] + x[1] - 1.0).abs() < 1e-9);
        assert!((x[0] + 3.0 * x[1] - 2.0).abs() < 1e-9);
    }

    #[test]
    fn exact_plan_on_a_known_game() {
        // v(S) = |S|² over 3 players: φ_i = v(N)/3 = 3 by symmetry
        let plan = Plan::Exact { players: 3 };
        let coal = plan.coalitions();
        let v: Vec<f64> = coal
            .iter()
            .map(|m| (m.iter().filter(|b| **b).count() as f64).powi(2))
            .collect();
        let phi = solve_plan(&plan, &v, &[9.0], &[0.0], 3);
        for p in phi {
            assert!((p - 3.0).abs() < 1e-12);
        }
    }
}
