//! The trainer's side of data-parallel training (see [`crate::distributed`]): what `fit` checks
//! and broadcasts when it starts, each rank's shard of an epoch, and the epoch's sums gathered
//! over the ranks so that every rank computes the same record from all rows; and restartable
//! runs (`TrainerConfig::resume_file`: resume at start, checkpoint after every epoch).
use super::fit::EpochSums;
use super::predict::Pass;
use super::{Trainer, TrainerConfig};
use crate::distributed::{broadcast_state, shard_rows, Distributed};
use crate::error::Result;
use crate::macros::ensure;
use crate::models::WideDeep;
use crate::training::Dataset;
use std::path::Path;
use tch::Tensor;

/// The checkpoint to resume from as `fit` starts: the config's `resume_file`, when it exists.
pub(super) fn resume_from(cfg: &TrainerConfig) -> Option<&Path> {
    cfg.resume_file.as_deref().filter(|p| p.is_file())
}

/// Epochs this `fit` runs after `done` epochs: `epochs`, or with a `resume_file` those still
/// missing to reach `epochs`.
pub(super) fn epochs_to_run(cfg: &TrainerConfig, done: usize) -> usize {
    match cfg.resume_file {
        Some(_) => cfg.epochs.saturating_sub(done),
        None => cfg.epochs,
    }
}

/// Where this process writes the checkpoint after each epoch: the `resume_file`, on rank 0.
pub(super) fn checkpoint_to(cfg: &TrainerConfig) -> Option<&Path> {
    let main = cfg.distributed.as_ref().is_none_or(Distributed::is_main);
    cfg.resume_file.as_deref().filter(|_| main)
}

/// The settings that cannot run distributed, rejected up front.
pub(super) fn check_supported(cfg: &TrainerConfig) -> Result<()> {
    ensure!(
        cfg.extras.finetune.is_none(),
        config("finetune"),
        "warm-up routines are not supported in distributed training (warm up in one process, \
         save, then train distributed from the saved weights)"
    );
    ensure!(
        !cfg.skip_nonfinite_batches,
        config("skip_nonfinite_batches"),
        "not supported in distributed training (a rank skipping a step alone would leave the \
         others waiting)"
    );
    Ok(())
}

/// When `fit` starts: checks that every rank has the same number of training and validation
/// rows, then gives every rank rank 0's parameters and buffers.
pub(super) fn start(
    d: &Distributed,
    model: &WideDeep,
    train: &Dataset,
    val: Option<&Dataset>,
) -> Result<()> {
    let mine = [train.len(), val.map_or(-1, Dataset::len)];
    let all = d.gather_values(&mine)?;
    if let Some((r, v)) = all.iter().enumerate().find(|(_, v)| v.as_slice() != mine) {
        return Err(d.error(format!(
            "rank {r} has {} training and {} validation rows, this rank {} and {}: every rank \
             must pass the same data to fit",
            v[0], v[1], mine[0], mine[1]
        )));
    }
    broadcast_state(d, model.var_store())
}

/// When `fit_stream` starts: checks that every rank streams the same number of training and
/// validation rows, then gives every rank rank 0's parameters and buffers.
pub(super) fn start_stream(
    d: &Distributed,
    model: &WideDeep,
    train_rows: usize,
    val_rows: Option<usize>,
) -> Result<()> {
    let mine = [train_rows as i64, val_rows.map_or(-1, |v| v as i64)];
    let all = d.gather_values(&mine)?;
    if let Some((r, v)) = all.iter().enumerate().find(|(_, v)| v.as_slice() != mine) {
        return Err(d.error(format!(
            "rank {r} streams {} training and {} validation rows, this rank {} and {}: every \
             rank must pass the same data to fit_stream",
            v[0], v[1], mine[0], mine[1]
        )));
    }
    broadcast_state(d, model.var_store())
}

/// Rows one rank trains on per epoch, for `n` rows in the epoch.
pub(super) fn rows_of_rank(cfg: &TrainerConfig, n: usize) -> usize {
    match &cfg.distributed {
        Some(d) => crate::distributed::rows_per_rank(n, d.world_size()),
        None => n,
    }
}

/// This rank's rows of an epoch whose order is `rows` (`None`: stored order) over `n` rows,
/// and how many of them (from the start) are not padding.
pub(super) fn shard(
    cfg: &TrainerConfig,
    rows: Option<Tensor>,
    n: usize,
) -> (Option<Tensor>, usize) {
    match &cfg.distributed {
        Some(d) if d.world_size() > 1 => {
            let (mine, real) = shard_rows(rows.as_ref(), n, d.rank(), d.world_size());
            (Some(mine), real)
        }
        _ => (rows, usize::MAX),
    }
}

/// The part of a batch that is not padding (`real` rows from its start): its loss times its
/// rows (`lv` is the batch's mean loss; a batch holding padding has its loss recomputed on the
/// real rows, without auxiliary terms), its row count, outputs and targets.
///
/// # Shapes
/// - `out`: `[b, pred_dim]`, `target`: `[b]` or `[b, k]`; the returned tensors have
///   `min(b, real)` rows
pub(super) fn unpadded(
    cfg: &TrainerConfig,
    lv: f64,
    out: &Tensor,
    target: &Tensor,
    real: usize,
) -> (f64, i64, Tensor, Tensor) {
    let b = out.size()[0];
    if real >= b as usize {
        return (
            lv * b as f64,
            b,
            out.shallow_clone(),
            target.shallow_clone(),
        );
    }
    let r = real as i64;
    let (o, t) = (out.narrow(0, 0, r), target.narrow(0, 0, r));
    let sum = if r == 0 {
        0.0
    } else {
        tch::no_grad(|| cfg.objective.loss(&o, &t).double_value(&[])) * r as f64
    };
    (sum, r, o, t)
}

/// Replaces this rank's epoch sums by those of all ranks: loss sums, rows and skipped batches
/// summed; outputs and targets concatenated in rank order (all-gathered, so every metric is
/// computed on every row, and identically on every rank).
pub(super) fn gather(d: &Distributed, sums: &mut EpochSums) -> Result<()> {
    if d.world_size() == 1 {
        return Ok(());
    }
    let totals = Tensor::from_slice(&[sums.loss_sum, sums.seen as f64, sums.skipped as f64]);
    d.all_reduce_sum(std::slice::from_ref(&totals))?;
    let t = Vec::<f64>::try_from(&totals)?;
    sums.loss_sum = t[0];
    sums.seen = t[1] as i64;
    sums.skipped = t[2] as usize;
    if !sums.outs.is_empty() {
        let outs = gather_rows(d, &Tensor::cat(&sums.outs, 0))?;
        let targets = gather_rows(d, &Tensor::cat(&sums.targets, 0))?;
        sums.outs = vec![outs];
        sums.targets = vec![targets];
    }
    Ok(())
}

/// Every rank's rows of `t` (any count per rank), concatenated in rank order.
///
/// # Shapes
/// - `t`: `[n_rank, …]`; returns `[Σ n_rank, …]`
fn gather_rows(d: &Distributed, t: &Tensor) -> Result<Tensor> {
    let n = t.size()[0];
    let counts: Vec<i64> = d.gather_values(&[n])?.into_iter().map(|v| v[0]).collect();
    let max = counts.iter().copied().max().unwrap_or(0);
    let mut shape = t.size();
    shape[0] = max - n;
    let padded = Tensor::cat(
        &[
            t.shallow_clone(),
            Tensor::zeros(shape.as_slice(), (t.kind(), t.device())),
        ],
        0,
    );
    let all = d.all_gather(&padded)?;
    let parts: Vec<Tensor> = counts
        .iter()
        .enumerate()
        .map(|(r, &c)| all.narrow(0, r as i64 * max, c))
        .collect();
    Ok(Tensor::cat(&parts, 0))
}

/// Whether `flag` holds on any rank (a stop requested by one rank's callback stops all).
pub(super) fn any(cfg: &TrainerConfig, flag: bool) -> Result<bool> {
    match &cfg.distributed {
        Some(d) => d.any(flag),
        None => Ok(flag),
    }
}

/// The validation pass of an epoch: distributed, each rank runs its contiguous share of the
/// rows (`ceil(n / W)`, the last ranks fewer or none) and the outputs are all-gathered in rank
/// order, so every rank gets the outputs of all rows in their order and the same loss.
pub(super) fn validation_pass(trainer: &Trainer, val: &Dataset) -> Result<Pass> {
    let d = match &trainer.config.distributed {
        Some(d) if d.world_size() > 1 => d,
        _ => return trainer.run(val, true),
    };
    let n = val.len();
    let w = d.world_size() as i64;
    let per = (n + w - 1) / w;
    let start = (d.rank() as i64 * per).min(n);
    let len = per.min(n - start);
    let pass = trainer.run(&val.slice(start, len), true)?;
    let loss = Tensor::from_slice(&[pass.loss * len as f64]);
    d.all_reduce_sum(std::slice::from_ref(&loss))?;
    Ok(Pass {
        outputs: gather_rows(d, &pass.outputs)?,
        loss: loss.double_value(&[0]) / n.max(1) as f64,
    })
}
