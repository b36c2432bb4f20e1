//! Evaluating coalitions: the background-weighted mean model output when the players of a
//! coalition take the explained row's columns and the others a background row's, with
//! repeated mixed rows evaluated once.
use super::coalitions::{has, words};
use super::players::{differences, PlayerMap};
use crate::explain::Explainer;
use crate::models::ModelInput;
use tch::{Device, Kind, Tensor};

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
        } else {
            let size = (2 * n).next_power_of_two().max(16);
            if size > self.keys.len() {
                self.keys = vec![0; size];
                self.vals = vec![0; size];
                self.stamps = vec![0; size];
                self.now = 0;
            }
            self.shift = 64 - size.trailing_zeros();
        }
        // a new stamp; when the stamps wrap around, old ones are cleared
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
pub(super) fn eval_coalitions(
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
                // behaviour sequences are not players: each row keeps its own
                seq: x.seq.as_ref().map(|s| s.map(|t| t.index_select(0, &r()))),
            };
            let raw = if map.deep_only {
                ex.deep_output(&mixed)
            } else {
                ex.model.forward_t(&mixed, false)
            };
            f.extend(crate::explain::to_vec_f64(&ex.link(&raw)));
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
