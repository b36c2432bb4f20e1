//! Model-agnostic Shapley values: KernelSHAP, permutation SHAP and exact enumeration.
//!
//! Players are the features that own input columns. The value of a coalition S for row x is
//! the background-weighted mean of f(x_S, b_{¬S}) over the background rows b (interventional
//! SHAP): the columns of players in S come from x, the others from b. Players whose columns
//! equal those of every background row cannot change the output; they get 0 and take no part
//! in the sampling (as in shap's KernelExplainer).
mod coalitions;
mod eval;
mod kernel;
mod linalg;
mod plan;
mod players;
mod surrogate;

use super::{to_vec_f64, weighted_mean, Attribution, Explainer, Slot};
use crate::error::Result;
use crate::models::ModelInput;
use coalitions::{has, push_complement, words};
use eval::eval_coalitions;
use indicatif::ProgressBar;
use plan::{solve_plan, Planner};
use players::{player_map, varying};
use tch::{Kind, Tensor};

/// The coalition game played: its players (feature indices), each row's value of the full
/// coalition `[n, k]` and the value of the empty one `[k]`.
struct Game {
    players: Vec<usize>,
    preds: Vec<f64>,
    base: Vec<f64>,
}

impl Game {
    /// On the whole model, or (the wide part in closed form, its attributions added to
    /// `values`) on the deep components.
    fn new(ex: &Explainer, x: &ModelInput, preds: &[f64], values: &mut [f64]) -> Game {
        if !ex.splits_wide() {
            return Game {
                players: ex.players(),
                preds: preds.to_vec(),
                base: ex.expected_value(),
            };
        }
        wide_closed_form(ex, x, values);
        let (fx, fb) = tch::no_grad(|| {
            (
                to_vec_f64(&ex.eval_deep(x)),
                to_vec_f64(&ex.eval_deep(ex.background.input())),
            )
        });
        Game {
            players: ex.game_players(),
            preds: fx,
            base: weighted_mean(ex.background.weights(), &fb, ex.n_outputs()),
        }
    }
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
        (to_vec_f64(&wx), to_vec_f64(&expected))
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

/// Shapley values of every row of `x` (`preds`: its linked outputs `[n, k]`) by the
/// explainer's Shapley method.
pub(super) fn attribute(
    ex: &Explainer,
    x: &ModelInput,
    preds: &[f64],
    bar: &ProgressBar,
) -> Result<Attribution> {
    let n = x.batch_size() as usize;
    let (p, k) = (ex.features().len(), ex.n_outputs());
    let mut values = vec![0.0; n * p * k];
    let game = Game::new(ex, x, preds, &mut values);
    let split = ex.splits_wide();
    let (players, base_row) = (&game.players, &game.base);
    let preds = &game.preds[..];
    let np = players.len();
    let wpp = words(np);
    let map = player_map(ex, players, split);
    let vary = varying(ex, x, &map, np);
    let m = ex.background.len();
    let call_rows = ex.rows_per_call(Explainer::elements_per_row(ex.background.input()) * 2);
    let target_pairs = (8 * call_rows / m.max(1)).max(1);

    let varying_of = |r: usize| -> Vec<usize> { (0..np).filter(|&q| vary[r * np + q]).collect() };
    let mut planner = Planner::new(ex.config.method, ex.seed());

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
            let plan = planner.plan(r, pr);
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
                base_row,
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
mod tests;
