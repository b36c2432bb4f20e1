//! Data that arrives batch by batch instead of as one in-memory [`Dataset`]: the contract
//! between [`Trainer::fit_stream`](crate::training::Trainer::fit_stream) and a streamed source
//! such as [`ScanDataset`](crate::pipeline::ScanDataset) (Parquet files larger than memory).
use crate::error::{Result, WideDeepError};
use crate::training::Dataset;

/// The batches of one epoch, in order.
pub type Batches<'a> = Box<dyn Iterator<Item = Result<Dataset>> + 'a>;

/// Training, validation or evaluation data produced batch by batch.
///
/// An implementation yields, for each epoch, every row once: `batch_size` rows per batch but
/// the last, which holds the rest, so that an epoch has `rows().div_ceil(batch_size)` batches
/// (the trainer sizes its schedules from that). The row order may depend on `epoch` and
/// `seed` (a shuffle) but must be a function of them only, so that a run can be repeated and
/// resumed. Each batch carries its target for training and evaluation.
pub trait BatchSource {
    /// Rows in one epoch.
    fn rows(&self) -> usize;

    /// The batches of epoch `epoch` (0-based), `batch_size` rows each but the last; `seed` is
    /// the trainer's seed.
    fn batches(&self, epoch: usize, batch_size: usize, seed: u64) -> Result<Batches<'_>>;

    /// For data-parallel training ([`TrainerConfig::distributed`]): the batches of rank
    /// `rank` of `world` in epoch `epoch` — a share of the rows disjoint from the other
    /// ranks', followed by padding (repeats of its first rows) up to
    /// [`shard_rows`](Self::shard_rows) rows, so that every rank runs the same number of
    /// steps — and how many of its rows (from the start) are real. The trainer leaves the
    /// padding out of the epoch's loss and metrics. The default: this source cannot be split.
    ///
    /// [`TrainerConfig::distributed`]: crate::training::TrainerConfig::distributed
    fn shard(
        &self,
        _epoch: usize,
        _batch_size: usize,
        _seed: u64,
        _rank: usize,
        _world: usize,
    ) -> Result<(Batches<'_>, usize)> {
        Err(WideDeepError::config(
            "distributed",
            "this data source cannot be split between ranks",
        ))
    }

    /// Rows per rank of [`shard`](Self::shard), padding included: the same for every rank
    /// and epoch.
    fn shard_rows(&self, world: usize) -> usize {
        self.rows().div_ceil(world.max(1))
    }
}
