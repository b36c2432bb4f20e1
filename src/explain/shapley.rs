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
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::rc::Rc;
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

// ---- coalitions as bitsets: `words(n)` u64 per coalition, bit q set = player q present ----

/// u64 words of a coalition over `n` players.
fn words(n: usize) -> usize {
    n.div_ceil(64).max(1)
}

fn has(m: &[u64], q: usize) -> bool {
    m[q >> 6] >> (q & 63) & 1 == 1
}

fn put(m: &mut [u64], q: usize) {
    m[q >> 6] |= 1u64 << (q & 63);
}

/// Appends the complement of `m` within `n` players to `out`.
fn push_complement(m: &[u64], n: usize, out: &mut Vec<u64>) {
    for (w, &v) in m.iter().enumerate() {
        let bits = n.saturating_sub(64 * w).min(64);
        let full = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        out.push(!v & full);
    }
}

/// Coalitions (flattened bitsets of `words` u64 each) with a weight each (KernelSHAP).
#[derive(Clone, Debug, Default)]
struct Coalitions {
    words: usize,
    masks: Vec<u64>,
    weights: Vec<f64>,
}

impl Coalitions {
    fn new(players: usize) -> Self {
        Coalitions {
            words: words(players),
            ..Default::default()
        }
    }
    fn len(&self) -> usize {
        self.masks.len() / self.words
    }
    fn get(&self, i: usize) -> &[u64] {
        &self.masks[i * self.words..(i + 1) * self.words]
    }
}

/// Open-addressing table from coalition keys to evaluation indices, cleared in O(1) by
/// stamping (the evaluations of one explained row and background row are deduplicated at a
/// time). With `direct` (keys below 2^16) the key is the slot itself.
#[derive(Default)]
struct DedupeTable {
    keys: Vec<u64>,
    vals: Vec<u32>,
    stamps: Vec<u32>,
    now: u32,
    shift: u32,
    direct: bool,
}

impl DedupeTable {
    /// A table for keys of `bits` bits.
    fn for_bits(bits: usize) -> Self {
        DedupeTable {
            direct: bits <= 16,
            ..Default::default()
        }
    }

    /// Starts a new round for up to `n` distinct keys.
    fn reset(&mut self, n: usize) {
        if self.direct {
            if self.stamps.is_empty() {
                self.vals = vec![0; 1 << 16];
                self.stamps = vec![0; 1 << 16];
            }
            self.now = self.now.wrapping_add(1);
            if self.now == 0 {
                self.stamps.iter_mut().for_each(|s| *s = 0);
                self.now = 1;
            }
            return;
        }
        let size = (2 * n).next_power_of_two().max(16);
        if size > self.keys.len() {
            self.keys = vec![0; size];
            self.vals = vec![0; size];
            self.stamps = vec![0; size];
            self.now = 0;
        }
        self.shift = 64 - size.trailing_zeros();
        self.now = self.now.wrapping_add(1);
        if self.now == 0 {
            self.stamps.iter_mut().for_each(|s| *s = 0);
            self.now = 1;
        }
    }

    /// The value stored for `key` this round, or `fresh()` stored for it.
    fn get_or_insert(&mut self, key: u64, fresh: impl FnOnce() -> u32) -> u32 {
        if self.direct {
            let at = key as usize;
            if self.stamps[at] != self.now {
                self.stamps[at] = self.now;
                self.vals[at] = fresh();
            }
            return self.vals[at];
        }
        let mask = (1usize << (64 - self.shift)) - 1;
        let mut at = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize;
        loop {
            if self.stamps[at] != self.now {
                let v = fresh();
                self.stamps[at] = self.now;
                self.keys[at] = key;
                self.vals[at] = v;
                return v;
            }
            if self.keys[at] == key {
                return self.vals[at];
            }
            at = (at + 1) & mask;
        }
    }
}

/// One input's columns on the CPU, for building mixed rows without tensor round trips.
enum HostCols {
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl HostCols {
    fn of(t: &Tensor) -> Option<HostCols> {
        let flat = t.to_device(Device::Cpu).contiguous().view([-1]);
        match t.kind() {
            Kind::Int64 => Vec::try_from(&flat).ok().map(HostCols::I64),
            Kind::Float => Vec::try_from(&flat).ok().map(HostCols::F32),
            Kind::Double => Vec::try_from(&flat).ok().map(HostCols::F64),
            _ => None,
        }
    }
}

/// The mixed rows `[evals, c]` of one tabular input: for each evaluation (row, background row,
/// pair), column j from the row where its player is in the pair's coalition, else from the
/// background row (`players: None`: every column from the row).
fn mix_host(
    xc: &HostCols,
    bc: &HostCols,
    c: usize,
    players: Option<&[i64]>,
    evals: &[(u32, u32, u32)],
    masks: &[u64],
    wpp: usize,
) -> Option<Tensor> {
    fn go<T: Copy + tch::kind::Element>(
        xv: &[T],
        bv: &[T],
        c: usize,
        players: Option<&[i64]>,
        evals: &[(u32, u32, u32)],
        masks: &[u64],
        wpp: usize,
    ) -> Tensor {
        let mut out = Vec::with_capacity(evals.len() * c);
        for &(r, b, i) in evals {
            let xr = &xv[r as usize * c..(r as usize + 1) * c];
            match players {
                None => out.extend_from_slice(xr),
                Some(players) => {
                    let br = &bv[b as usize * c..(b as usize + 1) * c];
                    let mask = &masks[i as usize * wpp..(i as usize + 1) * wpp];
                    for j in 0..c {
                        let q = players[j] as usize;
                        out.push(if has(mask, q) { xr[j] } else { br[j] });
                    }
                }
            }
        }
        Tensor::from_slice(&out).view([evals.len() as i64, c as i64])
    }
    Some(match (xc, bc) {
        (HostCols::I64(x), HostCols::I64(b)) => go(x, b, c, players, evals, masks, wpp),
        (HostCols::F32(x), HostCols::F32(b)) => go(x, b, c, players, evals, masks, wpp),
        (HostCols::F64(x), HostCols::F64(b)) => go(x, b, c, players, evals, masks, wpp),
        _ => return None,
    })
}

/// Background-weighted mean (linked) outputs `[pairs, k]` for coalitions: pair i takes the
/// columns of the players in coalition `masks[i·w..(i+1)·w]` (`w = words(n_players)`) from
/// row `rows[i]` of `x`, the rest from each background row.
///
/// Mixed rows that are identical are evaluated once: for row r and background row m only the
/// players whose columns differ between them matter, so coalitions that agree on those give
/// the same input (with categorical data most background rows share many values with the
/// explained row). Exact; it only skips repeated model calls. Wide, categorical and
/// continuous inputs are mixed on the host in one pass; text and image inputs by `where` on
/// the model's device.
fn eval_coalitions(
    ex: &Explainer,
    x: &ModelInput,
    map: &PlayerMap,
    rows: &[i64],
    masks: &[u64],
    n_players: usize,
) -> Vec<f64> {
    let pairs = rows.len();
    let k = ex.n_outputs();
    if pairs == 0 {
        return Vec::new();
    }
    let wpp = words(n_players);
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
    let mut evals: Vec<(u32, u32, u32)> = Vec::new();
    let mut index = vec![0u32; pairs * m];
    let mut table = DedupeTable::for_bits(n_players);
    let mut start = 0;
    while start < pairs {
        let r = rows[start];
        let mut end = start;
        while end < pairs && rows[end] == r {
            end += 1;
        }
        for mm in 0..m {
            if dedupe {
                let d = diff[r as usize * m + mm];
                table.reset(end - start);
                for i in start..end {
                    let key = masks[i] & d;
                    index[i * m + mm] = table.get_or_insert(key, || {
                        evals.push((r as u32, mm as u32, i as u32));
                        (evals.len() - 1) as u32
                    });
                }
            } else {
                for i in start..end {
                    index[i * m + mm] = evals.len() as u32;
                    evals.push((r as u32, mm as u32, i as u32));
                }
            }
        }
        start = end;
    }

    let per_row = Explainer::elements_per_row(bg) * 2;
    let call_rows = ex.rows_per_call(per_row);
    let host = |t: &Option<Tensor>| t.as_ref().and_then(HostCols::of);
    let (xw, xc, xn) = (host(&x.wide), host(&x.cat), host(&x.cont));
    let (bw, bc, bn) = (host(&bg.wide), host(&bg.cat), host(&bg.cont));
    let idx = |v: &[i64]| Tensor::from_slice(v).to_device(device);
    let mut f = Vec::with_capacity(evals.len() * k);
    tch::no_grad(|| {
        for chunk in evals.chunks(call_rows) {
            let e = chunk.len() as i64;
            let r = || idx(&chunk.iter().map(|c| c.0 as i64).collect::<Vec<_>>());
            let b = || idx(&chunk.iter().map(|c| c.1 as i64).collect::<Vec<_>>());
            // a column's mixed rows: on the host when both sides are plain numbers, else by
            // `where` on the device
            let mix_cols = |xt: &Option<Tensor>,
                            bt: &Option<Tensor>,
                            xh: &Option<HostCols>,
                            bh: &Option<HostCols>,
                            players: Option<&[i64]>|
             -> Option<Tensor> {
                let (xt, bt) = (xt.as_ref()?, bt.as_ref()?);
                let c = xt.size()[1] as usize;
                if let (Some(xh), Some(bh)) = (xh, bh) {
                    if let Some(t) = mix_host(xh, bh, c, players, chunk, masks, wpp) {
                        return Some(t.to_device(device));
                    }
                }
                let xr = xt.index_select(0, &r());
                let Some(players) = players else {
                    return Some(xr);
                };
                let sm: Vec<bool> = chunk
                    .iter()
                    .flat_map(|&(_, _, i)| {
                        let mask = &masks[i as usize * wpp..(i as usize + 1) * wpp];
                        players.iter().map(move |&q| has(mask, q as usize))
                    })
                    .collect();
                let sm = Tensor::from_slice(&sm)
                    .view([e, c as i64])
                    .to_device(device);
                Some(xr.where_self(&sm, &bt.index_select(0, &b())))
            };
            let mix_whole = |xs: &[Tensor], bs: &[Tensor], players: &[usize]| -> Vec<Tensor> {
                xs.iter()
                    .zip(bs)
                    .zip(players)
                    .map(|((xt, bt), &q)| {
                        let mut shape = vec![e];
                        shape.extend(std::iter::repeat_n(1, xt.dim() - 1));
                        let sm: Vec<bool> = chunk
                            .iter()
                            .map(|&(_, _, i)| has(&masks[i as usize * wpp..], q))
                            .collect();
                        let sm = Tensor::from_slice(&sm)
                            .view(shape.as_slice())
                            .to_device(device);
                        xt.index_select(0, &r())
                            .where_self(&sm, &bt.index_select(0, &b()))
                    })
                    .collect()
            };
            // deep-only game: the wide columns are not players, they keep the row's values
            let wide_players = (!map.deep_only).then_some(map.wide.as_slice());
            let mixed = ModelInput {
                wide: mix_cols(&x.wide, &bg.wide, &xw, &bw, wide_players),
                cat: mix_cols(&x.cat, &bg.cat, &xc, &bc, Some(&map.cat)),
                cont: mix_cols(&x.cont, &bg.cont, &xn, &bn, Some(&map.cont)),
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
    for (i, o_row) in out.chunks_mut(k).enumerate() {
        let ids = &index[i * m..(i + 1) * m];
        if k == 1 {
            o_row[0] = ids
                .iter()
                .zip(weights)
                .map(|(&id, w)| w * f[id as usize])
                .sum();
        } else {
            for (&id, w) in ids.iter().zip(weights) {
                let at = id as usize * k;
                for (o, v) in o_row.iter_mut().enumerate() {
                    *v += w * f[at + o];
                }
            }
        }
    }
    out
}

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
struct KernelDesign {
    players: usize,
    enumerated: Coalitions,
    sampled: Vec<SampledSize>,
    /// The enumerated coalitions' part of the k-additive surrogate's normal matrix (lower
    /// triangle), shared by every draw, per order k (index k − 1).
    surrogate_normal: [std::cell::OnceCell<Vec<f64>>; 3],
}

#[derive(Debug)]
struct SampledSize {
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

fn binom(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Calls `f` with every subset of `offset..offset + n` of size `k` (a bitset of `words` u64),
/// always holding the players in `always`.
fn for_each_subset(
    n: usize,
    k: usize,
    offset: usize,
    words: usize,
    always: &[usize],
    mut f: impl FnMut(&[u64]),
) {
    let mut idx: Vec<usize> = (0..k).collect();
    let mut mask = vec![0u64; words];
    loop {
        mask.iter_mut().for_each(|m| *m = 0);
        for &q in always {
            put(&mut mask, q);
        }
        for &i in &idx {
            put(&mut mask, offset + i);
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

impl KernelDesign {
    fn new(pr: usize, budget: usize) -> KernelDesign {
        let w = words(pr);
        let mut enumerated = Coalitions::new(pr);
        let mut sampled = Vec::new();
        let all = if pr < 63 { (1u64 << pr) - 2 } else { u64::MAX };
        let kernel = |s: usize| (pr - 1) as f64 / (binom(pr, s) * s as f64 * (pr - s) as f64);
        if (budget as u64) >= all {
            for s in 1..pr {
                let kw = kernel(s);
                for_each_subset(pr, s, 0, w, &[], |m| {
                    enumerated.masks.extend_from_slice(m);
                    enumerated.weights.push(kw);
                });
            }
            return KernelDesign {
                players: pr,
                enumerated,
                sampled,
                surrogate_normal: Default::default(),
            };
        }
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
        let mut left = left.max(0.0) as usize;
        if full < n_sizes && left >= 2 {
            // the budget left, shared equally by the remaining sizes (the regression's leverage
            // scores are the same for every size: Musco & Witter, Leverage SHAP, 2025); a size
            // that cannot use its share passes the rest on
            let sizes: Vec<usize> = (full + 1..=n_sizes).collect();
            let capacity = |s: usize| (count(s) / 2.0).min(1e15) as usize; // pairs available
            let mut draws = vec![0usize; sizes.len()];
            let mut open: Vec<usize> = (0..sizes.len()).collect();
            while left >= 2 && !open.is_empty() {
                let open_sizes = open.len() as f64;
                let budget_now = left;
                let mut spent = 0;
                for &i in &open {
                    let s = sizes[i];
                    let share = budget_now as f64 / open_sizes;
                    let want = ((share / 2.0).floor() as usize).min(capacity(s) - draws[i]);
                    draws[i] += want;
                    spent += 2 * want;
                }
                if spent == 0 {
                    // shares below one pair: one pair each to the smallest open sizes
                    for &i in &open {
                        if left >= 2 && draws[i] < capacity(sizes[i]) {
                            draws[i] += 1;
                            left -= 2;
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
                let total_pairs = capacity(s);
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
        KernelDesign {
            players: pr,
            enumerated,
            sampled,
            surrogate_normal: Default::default(),
        }
    }

    /// One row's draw of the sampled sizes: `draws` distinct complementary pairs per size.
    fn draw(&self, rng: &mut ChaCha8Rng) -> Coalitions {
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

/// What one row needs evaluated and how to turn the values into Shapley values.
enum Plan {
    /// Nothing to evaluate: φ = 0 except `single` (the one varying player) which gets
    /// f(x) − base.
    Trivial {
        single: Option<usize>,
    },
    /// The design's enumerated coalitions, then the row's draw; `fit` when the values are
    /// read through a k-additive surrogate.
    Kernel {
        design: Rc<KernelDesign>,
        drawn: Rc<Coalitions>,
        fit: Option<Rc<SurrogateFit>>,
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
    /// Appends the coalitions to evaluate (bitsets over the `pr` varying players,
    /// `words(pr)` u64 each) to `out`; returns how many.
    fn coalitions(&self, pr: usize, out: &mut Vec<u64>) -> usize {
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

/// The coalitions of a KernelSHAP plan with their weights: the design's enumerated ones, then
/// the row's draw (the order of the values `v`).
fn kernel_coalitions<'a>(
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
fn kernel_regression(
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

/// Number of interaction terms of a k-additive game on `pr` players (orders 1..=k).
fn k_additive_terms(pr: usize, order: usize) -> usize {
    (1..=order).map(|j| binom(pr, j) as usize).sum()
}

/// KernelSHAP draws per number of players: row r uses draw r mod `KERNEL_DRAWS`, so that the
/// surrogate's factorization is shared by the rows of one draw.
const KERNEL_DRAWS: usize = 16;

/// Largest number of terms of the k-additive surrogate (13 players with order 3): its normal
/// equations cost O(terms³) per explained row.
const SURROGATE_MAX_TERMS: usize = 400;

/// The interaction order of the k-additive surrogate fitted to a sample of `coalitions`
/// coalitions on `pr` players, or `None` for the plain additive regression: order 3 when its
/// terms number at most half the coalitions (so that the fit is well determined) and at most
/// `SURROGATE_MAX_TERMS`. (Order 2 alone gains nothing: paired sampling already recovers games
/// without odd interactions of order ≥ 3.)
fn surrogate_order(pr: usize, coalitions: usize) -> Option<usize> {
    let terms = k_additive_terms(pr, 3);
    (terms <= SURROGATE_MAX_TERMS && 2 * terms <= coalitions).then_some(3)
}

/// Cholesky factor (lower, row-major) of the symmetric positive semi-definite `a` (n × n),
/// with a tiny ridge; pivots that vanish in rounding are clamped to it.
fn cholesky(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    let trace: f64 = (0..n).map(|i| a[i * n + i].abs()).sum::<f64>().max(1e-300);
    let ridge = 1e-12 * trace / n as f64;
    for i in 0..n {
        a[i * n + i] += ridge;
    }
    let mut row_j = vec![0.0; n];
    for j in 0..n {
        row_j.copy_from_slice(&a[j * n..(j + 1) * n]);
        let d = (row_j[j] - row_j[..j].iter().map(|x| x * x).sum::<f64>())
            .max(ridge)
            .sqrt();
        a[j * n + j] = d;
        row_j[j] = d;
        for i in j + 1..n {
            let row_i = &mut a[i * n..(i + 1) * n];
            let dot: f64 = row_i[..j].iter().zip(&row_j[..j]).map(|(x, y)| x * y).sum();
            row_i[j] = (row_i[j] - dot) / d;
        }
    }
    a
}

/// Solves `l lᵀ x = b` in place (`b`: n × nrhs, row-major) with the factor of [`cholesky`].
fn cholesky_solve(l: &[f64], b: &mut [f64], n: usize, nrhs: usize) {
    for i in 0..n {
        for c in 0..i {
            let f = l[i * n + c];
            for o in 0..nrhs {
                b[i * nrhs + o] -= f * b[c * nrhs + o];
            }
        }
        for o in 0..nrhs {
            b[i * nrhs + o] /= l[i * n + i];
        }
    }
    for i in (0..n).rev() {
        for o in 0..nrhs {
            b[i * nrhs + o] /= l[i * n + i];
        }
        for c in 0..i {
            let f = l[i * n + c];
            for o in 0..nrhs {
                b[c * nrhs + o] -= f * b[i * nrhs + o];
            }
        }
    }
}

/// The interaction terms of a k-additive game on `pr` players (orders 1..=k, k ≤ 3):
/// singletons 0..pr, then pairs, then triples, each in lexicographic order.
#[derive(Debug)]
struct Terms {
    order: usize,
    /// Term index of pair (i, j), i < j, at `i * pr + j`.
    pair: Vec<usize>,
    /// Term index of triple (i, j, l), i < j < l, at `(i * pr + j) * pr + l`.
    triple: Vec<usize>,
    /// Players of each term (the first `len` entries).
    members: Vec<([usize; 3], usize)>,
}

impl Terms {
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
struct SurrogateFit {
    /// `[S, pr]`: coalition s's contribution to φ per unit of v(S) − base.
    r: Vec<f64>,
    /// `[pr]`: φ per unit of f(x) − base.
    g: Vec<f64>,
}

impl SurrogateFit {
    fn new(design: &KernelDesign, drawn: &Coalitions, pr: usize, order: usize) -> Self {
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
        let chol = cholesky(a, nt);
        // u = A⁻¹ 1 and Z = A⁻¹ Shᵀ (Sh: [pr, nt], Sh_iT = 1/|T| for i ∈ T), solved together
        let nrhs = pr + 1;
        let mut z = vec![0.0; nt * nrhs];
        for (t, (m, len)) in terms.members.iter().enumerate() {
            for &i in &m[..*len] {
                z[t * nrhs + i] = 1.0 / *len as f64;
            }
            z[t * nrhs + pr] = 1.0;
        }
        cholesky_solve(&chol, &mut z, nt, nrhs);
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
    fn shapley(&self, v: &[f64], delta: &[f64], base: &[f64], pr: usize) -> Vec<f64> {
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
    let wpp = words(np);
    let map = player_map(ex, &players, split);
    let vary = varying(ex, x, &map, np);
    let m = ex.background.len();
    let call_rows = ex.rows_per_call(Explainer::elements_per_row(ex.background.input()) * 2);
    let target_pairs = (8 * call_rows / m.max(1)).max(1);

    let varying_of = |r: usize| -> Vec<usize> { (0..np).filter(|&q| vary[r * np + q]).collect() };
    // one KernelSHAP design per number of varying players
    let mut designs: HashMap<usize, Rc<KernelDesign>> = HashMap::new();
    type Draw = (Rc<Coalitions>, Option<Rc<SurrogateFit>>);
    let mut draws: HashMap<(usize, usize), Draw> = HashMap::new();
    let row_seed = |r: usize| ex.seed() ^ (r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut plan_for = |r: usize, pr: usize| -> Plan {
        if pr <= 1 {
            return Plan::Trivial {
                single: (pr == 1).then_some(0),
            };
        }
        let mut rng = ChaCha8Rng::seed_from_u64(row_seed(r));
        match ex.config.method {
            Method::KernelShap { samples } => {
                let budget = if samples == 0 { 2 * pr + 2048 } else { samples };
                let design = designs
                    .entry(pr)
                    .or_insert_with(|| Rc::new(KernelDesign::new(pr, budget)))
                    .clone();
                // draws (and surrogate factorizations) are shared by rows r ≡ d mod KERNEL_DRAWS
                let d = r % KERNEL_DRAWS;
                let (drawn, fit) = draws
                    .entry((pr, d))
                    .or_insert_with(|| {
                        let drawn = design.draw(&mut ChaCha8Rng::seed_from_u64(row_seed(d)));
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
    let mut local = Vec::new();
    while r0 < n {
        // a block of rows whose coalitions fill a few model calls
        let mut block = Vec::new(); // (plan, varying players, number of coalitions)
        let mut rows = Vec::new();
        let mut masks: Vec<u64> = Vec::new(); // over all np players, wpp words each
        let mut r = r0;
        while r < n && (r == r0 || rows.len() < target_pairs) {
            let vr = varying_of(r);
            let pr = vr.len();
            let plan = plan_for(r, pr);
            local.clear();
            let count = plan.coalitions(pr, &mut local);
            let lw = words(pr);
            let identity = pr == np;
            for c in local.chunks(lw) {
                if identity {
                    masks.extend_from_slice(c);
                } else {
                    // players that do not vary are "present" (either side gives the same)
                    let at = masks.len();
                    push_complement(&vec![0u64; wpp], np, &mut masks);
                    for (i, &q) in vr.iter().enumerate() {
                        if !has(c, i) {
                            masks[at + (q >> 6)] &= !(1u64 << (q & 63));
                        }
                    }
                }
                rows.push((r - r0) as i64);
            }
            block.push((plan, vr, count));
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
            let set: HashMap<u64, f64> =
                masks.iter().copied().zip(weights.iter().copied()).collect();
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
        let exact_plan = Plan::Exact { players: pr };
        let exact = solve_plan(
            &exact_plan,
            &values_of(&exact_plan, pr, v),
            &[v(full)],
            &[v(0)],
            pr,
        );
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
        let err = |phi: &[f64]| {
            phi.iter()
                .zip(&exact)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
        };
        let phi = solve_plan(&plan, &values, &[v(full)], &[v(0)], pr);
        assert!(err(&phi) < 1e-9, "{}", err(&phi));
        let delta = [v(full) - v(0)];
        let plain = kernel_regression(&design, &drawn, &values, &delta, &[v(0)], pr);
        assert!(err(&plain) > 1e-4, "{}", err(&plain));
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
        let exact_plan = Plan::Exact { players: pr };
        let exact = solve_plan(
            &exact_plan,
            &values_of(&exact_plan, pr, v),
            &[v(full)],
            &[v(0)],
            pr,
        );
        let design = Rc::new(KernelDesign::new(pr, 200));
        assert!(!design.sampled.is_empty());
        let plan = Plan::Kernel {
            drawn: Rc::new(design.draw(&mut ChaCha8Rng::seed_from_u64(3))),
            design,
            fit: None,
        };
        let phi = solve_plan(&plan, &values_of(&plan, pr, v), &[v(full)], &[v(0)], pr);
        let err = phi
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-9, "{err}");
    }
}
