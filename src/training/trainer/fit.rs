//! The training loop: [`Trainer::fit`], its epochs and batches, early stopping and the progress
//! display.
use super::data_parallel;
use super::optimization::Optimization;
use super::{Trainer, TrainerConfig};
use crate::error::{Result, WideDeepError};
use crate::macros::ensure;
use crate::training::amp;
use crate::training::callbacks::{Callback, EarlyStoppingState, History, TrainState};
use crate::training::checks::monitored;
use crate::training::extras::RowOrder;
use crate::training::grad::GradStep;
use crate::training::prefetch::EpochBatches;
use crate::training::stream::{BatchSource, Batches};
use crate::training::Dataset;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use tch::{nn, Tensor};

/// Everything a running `fit` works with besides the trainer's model, history and
/// early-stopping state. Created by `fit`; its optimizers and schedules go back to the trainer
/// when the run ends (also on an error), for the next `fit`, `save_checkpoint` and `lrs`.
struct FitState {
    /// The optimizers and schedules: the trainer's (from an earlier `fit` or `resume`), or
    /// fresh ones.
    optimization: Optimization,
    /// Clipping, accumulation and fp16 loss scaling of this run (training extras).
    grad: GradStep,
    /// Splits off the validation rows, then shuffles epoch after epoch.
    rng: ChaCha8Rng,
    /// The trainer's callbacks, taken out of it for the run.
    callbacks: Vec<Box<dyn Callback>>,
    /// Batches per epoch.
    n_batches: usize,
}

impl FitState {
    /// Runs the callbacks' hook `f`; returns whether one of them requested a stop.
    fn hooks(
        &mut self,
        trainer: &Trainer,
        epoch: usize,
        batch: usize,
        mut f: impl FnMut(&mut dyn Callback, &mut TrainState) -> Result<()>,
    ) -> Result<bool> {
        if self.callbacks.is_empty() {
            return Ok(false);
        }
        let mut state = TrainState {
            model: &trainer.model,
            history: &trainer.history,
            epoch,
            batch,
            n_batches: self.n_batches,
            optimizers: &self.optimization.optimizers,
            stop: false,
            is_main: trainer
                .config
                .distributed
                .as_ref()
                .is_none_or(|d| d.is_main()),
        };
        for c in self.callbacks.iter_mut() {
            f(c.as_mut(), &mut state)?;
        }
        Ok(state.stop)
    }
}

/// The training data of a run: rows in memory with their row order, or a streamed source.
enum TrainData<'a> {
    Rows(&'a Dataset, RowOrder),
    Stream(&'a dyn BatchSource),
}

/// The validation data of a run.
#[derive(Clone, Copy)]
enum ValData<'a> {
    Rows(&'a Dataset),
    Stream(&'a dyn BatchSource),
}

/// What one epoch accumulates.
#[derive(Default)]
pub(super) struct EpochSums {
    pub(super) loss_sum: f64,
    pub(super) seen: i64,
    pub(super) skipped: usize,
    pub(super) outs: Vec<Tensor>,
    pub(super) targets: Vec<Tensor>,
    stop: bool,
    /// The progress bar, the epoch and the last epoch of this `fit` (for the summary line).
    bar: Option<(ProgressBar, usize, usize)>,
}

/// libtorch's seed for epoch `epoch` (dropout masks): `seed` for the first epoch, then a value
/// derived from `(seed, epoch)` only, so resumed runs draw what uninterrupted ones do.
pub(crate) fn torch_epoch_seed(seed: u64, epoch: usize) -> i64 {
    if epoch == 0 {
        return seed as i64;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64);
    (rand::RngCore::next_u64(&mut rng) >> 1) as i64
}

impl Trainer {
    /// Trains for `config.epochs` epochs. Validation data is `val` when given, else a
    /// `val_split` of `train`, else none. Returns the history (one entry per epoch run, earlier
    /// `fit` calls and resumed epochs included).
    pub fn fit(&mut self, train: &Dataset, val: Option<&Dataset>) -> Result<&History> {
        self.check_data(train, "training")?;
        if let Some(v) = val {
            self.check_data(v, "validation")?;
        }
        if let Some(path) = data_parallel::resume_from(&self.config).map(Path::to_path_buf) {
            self.resume(&path)?; // a restarted run continues from its last epoch
        }
        self.before_fit(train, val)?; // extras: initializers, warm-up
        let cfg = self.config.clone();
        if let Some(d) = &cfg.distributed {
            data_parallel::start(d, &self.model, train, val)?; // same data, rank 0's weights
        }
        let _rng_guard = crate::torch_rng_lock();
        // one generator splits, then shuffles epoch after epoch; it continues across `fit` calls
        // and resumes (its position is saved in checkpoints)
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let split;
        let (train, val) = match (val, cfg.val_split) {
            (Some(v), _) => (train, Some(v)),
            (None, Some(f)) => {
                split = train.split(f, cfg.objective.is_classification(), &mut rng)?;
                (&split.0, Some(&split.1))
            }
            (None, None) => (train, None),
        };
        if let Some(es) = &cfg.early_stopping {
            ensure!(
                val.is_some() || !es.monitor.starts_with("val_"),
                config("early_stopping.monitor"),
                "`{}` needs validation data (pass it or set val_split)",
                es.monitor
            );
        }
        if let Some(pos) = self.shuffle_pos {
            rng.set_word_pos(pos);
        }
        // extras: row order (shuffle or weighted sampler), clipping/accumulation/AMP
        let order = self.row_order(train)?;
        let n_rows = data_parallel::rows_of_rank(&cfg, order.rows(train.len()));
        let n_batches = n_rows.div_ceil(cfg.batch_size);
        self.fit_data(
            &cfg,
            rng,
            TrainData::Rows(train, order),
            val.map(ValData::Rows),
            n_batches,
        )
    }

    /// Trains for `config.epochs` epochs on data streamed batch by batch (for data larger than
    /// memory, e.g. [`ScanDataset`](crate::pipeline::ScanDataset) over Parquet files), with
    /// optional streamed validation data. Everything else is as in [`Trainer::fit`]: the
    /// same steps on the same batches give the same weights (with the source's shuffling
    /// off and the trainer's `shuffle` off, the batches of a stream over the rows of an
    /// in-memory data set are those of `fit`).
    ///
    /// The source decides the row order (its own seeded shuffle; the trainer's `shuffle`
    /// setting does not apply). Not available for streams, with an
    /// [`InvalidConfig`](WideDeepError::InvalidConfig) error naming the setting: a weighted
    /// sampler (`extras.sampler`: it needs every row's weight up front), the warm-up routines
    /// (`extras.finetune`) and `val_split` without validation data (pass validation data).
    ///
    /// Distributed ([`TrainerConfig::distributed`]): every rank passes the same source; each
    /// trains on its share of it ([`BatchSource::shard`]: for a [`ScanDataset`], its own pages
    /// of each epoch's shuffled page order, padded to the same number of steps), with the
    /// gradients averaged as in [`Trainer::fit`]; validation data is evaluated whole on every
    /// rank, so that every rank's record is the same.
    ///
    /// [`ScanDataset`]: crate::pipeline::ScanDataset
    pub fn fit_stream(
        &mut self,
        train: &dyn BatchSource,
        val: Option<&dyn BatchSource>,
    ) -> Result<&History> {
        let cfg = self.config.clone();
        ensure!(
            train.rows() > 0,
            WideDeepError::Missing("the training data has no rows".into())
        );
        ensure!(
            cfg.extras.sampler.is_none(),
            config("extras.sampler"),
            "a weighted sampler needs every row's weight up front; it is not available for \
             streamed data"
        );
        ensure!(
            cfg.extras.finetune.is_none(),
            config("extras.finetune"),
            "the warm-up routines are not available for streamed data"
        );
        ensure!(
            val.is_some() || cfg.val_split.is_none(),
            config("val_split"),
            "streamed data is not split; pass validation data instead"
        );
        if let Some(es) = &cfg.early_stopping {
            ensure!(
                val.is_some() || !es.monitor.starts_with("val_"),
                config("early_stopping.monitor"),
                "`{}` needs validation data",
                es.monitor
            );
        }
        if let Some(path) = data_parallel::resume_from(&self.config).map(Path::to_path_buf) {
            self.resume(&path)?; // a restarted run continues from its last epoch
        }
        self.apply_initializers_once()?;
        let mut n_rows = train.rows();
        if let Some(d) = &cfg.distributed {
            // same data on every rank, rank 0's weights; each rank a padded share of the rows
            data_parallel::start_stream(d, &self.model, train.rows(), val.map(|v| v.rows()))?;
            n_rows = train.shard_rows(d.world_size());
        }
        let _rng_guard = crate::torch_rng_lock();
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let n_batches = n_rows.div_ceil(cfg.batch_size);
        self.fit_data(
            &cfg,
            rng,
            TrainData::Stream(train),
            val.map(ValData::Stream),
            n_batches,
        )
    }

    /// The run shared by `fit` and `fit_stream`, once the data is checked.
    fn fit_data(
        &mut self,
        cfg: &TrainerConfig,
        rng: ChaCha8Rng,
        train: TrainData<'_>,
        val: Option<ValData<'_>>,
        n_batches: usize,
    ) -> Result<&History> {
        let mut grad = GradStep::new(cfg.extras.grad_settings(), self.model.var_store());
        if let Some(d) = &cfg.distributed {
            grad.distributed(d, self.model.var_store())?; // averaged gradients
        }
        let optimization = match self.optimization.take() {
            Some(o) => o,
            None => Optimization::new(&self.model, cfg, n_batches * cfg.epochs.max(1))?,
        };
        if !std::mem::take(&mut self.resumed) {
            self.es_state = EarlyStoppingState::new();
            self.best_weights = None;
        }
        let mut state = FitState {
            optimization,
            grad,
            rng,
            callbacks: std::mem::take(&mut self.callbacks),
            n_batches,
        };
        let result = self.fit_epochs(cfg, &mut state, &train, val);
        let FitState {
            optimization,
            mut callbacks,
            ..
        } = state;
        self.optimization = Some(optimization);
        callbacks.append(&mut self.callbacks);
        self.callbacks = callbacks;
        result?;
        Ok(&self.history)
    }

    /// The epoch loop of `fit`.
    fn fit_epochs(
        &mut self,
        cfg: &TrainerConfig,
        state: &mut FitState,
        train: &TrainData<'_>,
        val: Option<ValData<'_>>,
    ) -> Result<()> {
        let first = self.history.len();
        state.hooks(self, first, 0, |c, s| c.on_train_begin(s))?;
        let epochs = data_parallel::epochs_to_run(cfg, first);
        for _ in 0..epochs {
            let epoch = self.history.len();
            let total = first + epochs;
            let mut sums = self.train_epoch(cfg, state, train, (epoch, total))?;
            self.shuffle_pos = Some(state.rng.get_word_pos());
            let record = self.epoch_record(cfg, &mut sums, val)?;
            let es_stop = self.early_stopping_update(cfg, epoch, &record)?;
            self.history.epochs.push(record.clone());
            state.optimization.on_epoch_end(&record)?;
            let cb_stop = state.hooks(self, epoch, 0, |c, s| c.on_epoch_end(s, &record))?;
            if let Some(path) = data_parallel::checkpoint_to(cfg) {
                self.write_checkpoint(Some(&state.optimization), path)?;
            }
            if es_stop && cfg.verbose > 0 {
                eprintln!(
                    "early stopping after epoch {} (best: epoch {})",
                    epoch + 1,
                    self.es_state.best_epoch + 1
                );
            }
            if data_parallel::any(cfg, es_stop || cb_stop || sums.stop)? {
                break;
            }
        }
        if let Some(weights) = self.best_weights.take() {
            restore(self.model.var_store(), &weights);
        }
        let last = self.history.len().saturating_sub(1);
        state.hooks(self, last, 0, |c, s| c.on_train_end(s))?;
        Ok(())
    }

    /// One pass over the (shuffled) training data with an optimizer step per batch.
    fn train_epoch(
        &mut self,
        cfg: &TrainerConfig,
        state: &mut FitState,
        train: &TrainData<'_>,
        (epoch, total_epochs): (usize, usize),
    ) -> Result<EpochSums> {
        tch::manual_seed(torch_epoch_seed(cfg.seed, epoch));
        let device = self.model.device();
        // distributed: this rank's shard, the first `real` of its rows not padding
        let (batches, real): (Batches<'_>, usize) = match train {
            TrainData::Rows(data, order) => {
                // the stored order, a shuffle (the draws of `Dataset::shuffled`) or weighted
                // draws
                let rows = order.epoch(&mut state.rng);
                let (rows, real) = data_parallel::shard(cfg, rows, order.rows(data.len()));
                let prefetch = cfg.extras.prefetch_on(device);
                let batches =
                    EpochBatches::new(data, rows.as_ref(), cfg.batch_size, device, prefetch);
                // lazy image columns: each batch's images are decoded when it comes up
                let batches = batches.map(move |batch| {
                    if batch.is_lazy() {
                        Ok(batch.materialize()?.to_device(device))
                    } else {
                        Ok(batch)
                    }
                });
                (Box::new(batches), real)
            }
            TrainData::Stream(source) => {
                let (batches, real) = match &cfg.distributed {
                    Some(d) if d.world_size() > 1 => {
                        source.shard(epoch, cfg.batch_size, cfg.seed, d.rank(), d.world_size())?
                    }
                    _ => (source.batches(epoch, cfg.batch_size, cfg.seed)?, usize::MAX),
                };
                let this: &Trainer = self;
                let batches = batches.map(move |batch| {
                    let batch = batch?;
                    this.check_data(&batch, "training")?;
                    Ok(batch.to_device(device))
                });
                (Box::new(batches), real)
            }
        };
        let mut sums = EpochSums {
            stop: state.hooks(self, epoch, 0, |c, s| c.on_epoch_begin(s))?,
            ..Default::default()
        };
        let bar = progress_bar(cfg.verbose, state.n_batches, epoch, total_epochs);
        for (b, batch) in batches.enumerate() {
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    bar.abandon();
                    return Err(e);
                }
            };
            sums.stop |= state.hooks(self, epoch, b, |c, s| c.on_batch_begin(s))?;
            let (lv, out) = match self.train_step(cfg, state, &batch, epoch, b) {
                Ok(x) => x,
                Err(e) => {
                    bar.abandon();
                    return Err(e);
                }
            };
            if lv.is_finite() {
                let target = batch.target.as_ref().expect("checked");
                let real = real.saturating_sub(b * cfg.batch_size);
                let (loss_sum, n, out, target) =
                    data_parallel::unpadded(cfg, lv, &out, target, real);
                sums.loss_sum += loss_sum;
                sums.seen += n;
                if !cfg.metrics.is_empty() {
                    sums.outs.push(out.detach());
                    sums.targets.push(target);
                }
            } else {
                sums.skipped += 1;
            }
            state.optimization.on_batch_end();
            sums.stop |= state.hooks(self, epoch, b, |c, s| c.on_batch_end(s, lv))?;
            bar.inc(1);
            if b % 20 == 0 && sums.seen > 0 {
                bar.set_message(format!("loss {:.4}", sums.loss_sum / sums.seen as f64));
            }
        }
        state
            .grad
            .finish_epoch(&mut state.optimization.optimizers)?;
        sums.bar = Some((bar, epoch, total_epochs));
        Ok(sums)
    }

    /// Forward, loss, backward and optimizer step on one batch; returns the batch loss and the
    /// outputs `[batch, pred_dim]`. A non-finite loss is an error naming the (1-based) epoch and
    /// the batch, or, with `skip_nonfinite_batches`, a skipped batch (no step).
    fn train_step(
        &self,
        cfg: &TrainerConfig,
        state: &mut FitState,
        batch: &Dataset,
        epoch: usize,
        b: usize,
    ) -> Result<(f64, Tensor)> {
        let target = batch.target.as_ref().expect("checked");
        // autocast with mixed precision; the loss is computed in f32
        let (out, aux) = state
            .grad
            .forward(|| self.model.forward_aux(&batch.input, true));
        let (out, aux) = (amp::to_f32(out), aux.map(amp::to_f32));
        let loss = match aux {
            Some(aux) => cfg.objective.loss(&out, target) + aux,
            None => cfg.objective.loss(&out, target),
        };
        let lv = loss.double_value(&[]);
        if !lv.is_finite() {
            ensure!(
                cfg.skip_nonfinite_batches,
                WideDeepError::NonFiniteLoss {
                    epoch: epoch + 1,
                    batch: b,
                    value: lv,
                }
            );
            return Ok((lv, out));
        }
        // clipping, accumulation and loss scaling around the optimizer step
        state
            .grad
            .backward(&loss, &mut state.optimization.optimizers)?;
        Ok((lv, out))
    }

    /// The epoch's record: `loss`, `skipped_batches` (when skipping is on), training metrics and
    /// the validation loss and metrics.
    fn epoch_record(
        &self,
        cfg: &TrainerConfig,
        sums: &mut EpochSums,
        val: Option<ValData<'_>>,
    ) -> Result<BTreeMap<String, f64>> {
        if let Some(d) = &cfg.distributed {
            data_parallel::gather(d, sums)?; // the sums of all ranks
        }
        let mut record = BTreeMap::new();
        let loss = if sums.seen > 0 {
            sums.loss_sum / sums.seen as f64
        } else {
            f64::NAN
        };
        record.insert("loss".to_string(), loss);
        if cfg.skip_nonfinite_batches {
            record.insert("skipped_batches".to_string(), sums.skipped as f64);
        }
        if !sums.outs.is_empty() {
            let scores = cfg.objective.scores(&Tensor::cat(&sums.outs, 0));
            let target = Tensor::cat(&sums.targets, 0);
            self.add_metrics(&mut record, "", &scores, &target)?;
        }
        if let Some(v) = val {
            let (pass, target) = match v {
                ValData::Rows(v) => (
                    data_parallel::validation_pass(self, v)?, // distributed: shared out
                    v.target.as_ref().expect("checked").shallow_clone(),
                ),
                ValData::Stream(v) => self.run_stream(v, "validation")?,
            };
            record.insert("val_loss".to_string(), pass.loss);
            let scores = cfg.objective.scores(&pass.outputs);
            self.add_metrics(&mut record, "val_", &scores, &target)?;
        }
        if let Some((bar, epoch, total)) = sums.bar.take() {
            finish_bar(&bar, cfg.verbose, epoch, total, &summarize(&record));
        }
        Ok(record)
    }

    /// Updates early stopping with the epoch's record; returns whether to stop.
    fn early_stopping_update(
        &mut self,
        cfg: &TrainerConfig,
        epoch: usize,
        record: &BTreeMap<String, f64>,
    ) -> Result<bool> {
        let Some(es) = &cfg.early_stopping else {
            return Ok(false);
        };
        let value = monitored(record, &es.monitor, "early_stopping.monitor")?;
        let (improved, stop) = self.es_state.update(es, epoch, value);
        if improved && es.restore_best_weights {
            self.best_weights = Some(snapshot(self.model.var_store()));
        }
        Ok(stop)
    }
}

fn snapshot(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    vs.variables()
        .into_iter()
        .map(|(k, v)| (k, v.detach().copy()))
        .collect()
}

fn restore(vs: &nn::VarStore, weights: &[(String, Tensor)]) {
    let vars = vs.variables();
    tch::no_grad(|| {
        for (k, w) in weights {
            if let Some(v) = vars.get(k) {
                v.shallow_clone().copy_(w);
            }
        }
    });
}

/// The record as one line: the losses first, then the training metrics, then the validation
/// values.
fn summarize(record: &BTreeMap<String, f64>) -> String {
    let mut keys: Vec<&String> = record.keys().collect();
    keys.sort_by_key(|k| {
        (
            k.starts_with("val_"),
            k.as_str() != "loss" && k.as_str() != "val_loss",
            k.as_str(),
        )
    });
    keys.iter()
        .map(|k| format!("{k} {:.4}", record[*k]))
        .collect::<Vec<_>>()
        .join("  ")
}

/// A progress bar over `n` batches of epoch `epoch` of `epochs` (hidden when `verbose` is 0 or
/// stderr is not a terminal).
pub(crate) fn progress_bar(verbose: u8, n: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if verbose == 0 || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(n as u64);
    let style =
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {elapsed} {msg}")
            .expect("valid template")
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{}/{epochs}", epoch + 1));
    bar
}

/// Ends an epoch's bar with `summary` (a line on stderr when the bar is hidden and `verbose`).
pub(crate) fn finish_bar(
    bar: &ProgressBar,
    verbose: u8,
    epoch: usize,
    epochs: usize,
    summary: &str,
) {
    if verbose == 0 {
        return;
    }
    if bar.is_hidden() {
        eprintln!("epoch {}/{epochs}: {summary}", epoch + 1);
    } else {
        bar.finish_with_message(summary.to_string());
    }
}
