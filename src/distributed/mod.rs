//! Data-parallel training across processes on PyTorch's own distributed engine, c10d, as
//! shipped in the libtorch we link: a `TCPStore` rendezvous and a `ProcessGroupGloo`, bound by
//! a small C++ shim (`c10d.cpp`, compiled by `build.rs` when the Gloo headers are found; see
//! `scripts/setup-libtorch.sh`). No collective is written here: all-reduce, broadcast and
//! all-gather are libtorch's.
//!
//! A program becomes data-parallel with one line, and is launched by PyTorch's `torchrun`:
//!
//! ```no_run
//! # use widedeep::prelude::*;
//! # fn main() -> widedeep::Result<()> {
//! let dist = Distributed::from_env()?; // RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, …
//! let config = TrainerConfig::new(Objective::Binary).distributed(dist.clone());
//! # Ok(()) }
//! ```
//!
//! Without `WORLD_SIZE` (or with `WORLD_SIZE=1`) [`Distributed::from_env`] gives a group of one
//! process, in which every collective is the identity: the same program runs alone. Nothing is
//! turned on by the environment alone; the trainer is distributed only through
//! [`TrainerConfig::distributed`](crate::training::TrainerConfig::distributed).
//!
//! What the trainer does with it (PyTorch `DistributedDataParallel` + `DistributedSampler`):
//! rank 0's parameters and buffers are broadcast when `fit` starts; before every optimizer step
//! the gradients are averaged by all-reduce in flat buckets of [`DistributedConfig::bucket_mb`];
//! buffers (batch-norm statistics) are re-broadcast from rank 0 after every step; each epoch
//! every rank trains on its shard of the epoch's row order (see [`shard_rows`]); loss and
//! metrics are computed over the rows of all ranks. Failures: a lost rank makes the others stop
//! with [`WideDeepError::Distributed`] naming it, within [`DistributedConfig::timeout`].
use crate::error::{Result, WideDeepError};
use serde::{de::DeserializeOwned, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tch::{Device, Tensor};

mod ddp;
mod ffi;
#[cfg(test)]
mod tests;

pub(crate) use ddp::{broadcast_state, GradSync};

/// The communication backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// Gloo: CPU tensors over TCP (CUDA tensors are copied to the host around each collective).
    #[default]
    Gloo,
    /// NCCL on CUDA devices: not built into this crate (it needs the CUDA headers); asking for
    /// it is an error.
    Nccl,
}

/// Where and how a process joins its group: torchrun's environment, a timeout, the backend.
#[derive(Clone, Debug, PartialEq)]
pub struct DistributedConfig {
    /// This process's rank in `0..world_size` (`RANK`).
    pub rank: usize,
    /// Processes in the group (`WORLD_SIZE`).
    pub world_size: usize,
    /// The rank on this machine (`LOCAL_RANK`): the GPU index with NCCL.
    pub local_rank: usize,
    /// Host of the rendezvous store (`MASTER_ADDR`).
    pub master_addr: String,
    /// Port of the rendezvous store (`MASTER_PORT`).
    pub master_port: u16,
    /// Every rank is a client of a store hosted by torchrun's agent
    /// (`TORCHELASTIC_USE_AGENT_STORE=True`); otherwise rank 0 hosts it.
    pub agent_store: bool,
    /// torchrun's restart count (`TORCHELASTIC_RESTART_COUNT`): keys of earlier attempts in a
    /// surviving store are not reused.
    pub restart_count: usize,
    /// Longest wait for the rendezvous and for any collective; a rank that does not answer
    /// within it is reported lost (`WIDEDEEP_DIST_TIMEOUT_S`, default 300 s).
    pub timeout: Duration,
    /// Interval of each rank's heartbeat in the store, used to name lost ranks.
    pub heartbeat: Duration,
    /// Size of the flat gradient buckets all-reduced together, in MB (PyTorch's default 25;
    /// `WIDEDEEP_DIST_BUCKET_MB`).
    pub bucket_mb: f64,
    /// The backend.
    pub backend: Backend,
}

impl Default for DistributedConfig {
    fn default() -> Self {
        Self {
            rank: 0,
            world_size: 1,
            local_rank: 0,
            master_addr: "127.0.0.1".into(),
            master_port: 29500,
            agent_store: false,
            restart_count: 0,
            timeout: Duration::from_secs(300),
            heartbeat: Duration::from_millis(500),
            bucket_mb: 25.0,
            backend: Backend::Gloo,
        }
    }
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Result<Option<T>> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().map(Some).map_err(|_| {
            WideDeepError::config(
                format!("env {name}"),
                format!("cannot parse `{v}` as a {}", std::any::type_name::<T>()),
            )
        }),
        Err(_) => Ok(None),
    }
}

impl DistributedConfig {
    /// Reads torchrun's environment: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`,
    /// `MASTER_PORT`, `TORCHELASTIC_USE_AGENT_STORE`, `TORCHELASTIC_RESTART_COUNT`, plus
    /// `WIDEDEEP_DIST_TIMEOUT_S` (seconds) and `WIDEDEEP_DIST_BUCKET_MB`. Absent variables take
    /// the defaults (one process).
    pub fn from_env() -> Result<Self> {
        let d = Self::default();
        let timeout = env_parse::<f64>("WIDEDEEP_DIST_TIMEOUT_S")?
            .map(|s| {
                if s.is_finite() && s > 0.0 {
                    Ok(Duration::from_secs_f64(s))
                } else {
                    Err(WideDeepError::config(
                        "env WIDEDEEP_DIST_TIMEOUT_S",
                        format!("must be a positive number of seconds, got {s}"),
                    ))
                }
            })
            .transpose()?;
        let cfg = Self {
            rank: env_parse("RANK")?.unwrap_or(d.rank),
            world_size: env_parse("WORLD_SIZE")?.unwrap_or(d.world_size),
            local_rank: env_parse("LOCAL_RANK")?.unwrap_or(d.local_rank),
            master_addr: std::env::var("MASTER_ADDR").unwrap_or(d.master_addr),
            master_port: env_parse("MASTER_PORT")?.unwrap_or(d.master_port),
            agent_store: std::env::var("TORCHELASTIC_USE_AGENT_STORE")
                .is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
            restart_count: env_parse("TORCHELASTIC_RESTART_COUNT")?.unwrap_or(0),
            timeout: timeout.unwrap_or(d.timeout),
            bucket_mb: env_parse("WIDEDEEP_DIST_BUCKET_MB")?.unwrap_or(d.bucket_mb),
            ..d
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the values; errors name the field.
    pub fn validate(&self) -> Result<()> {
        crate::macros::ensure!(
            self.world_size >= 1,
            config("distributed.world_size"),
            "must be ≥ 1"
        );
        crate::macros::ensure!(
            self.rank < self.world_size,
            config("distributed.rank"),
            "{} is not below world_size {}",
            self.rank,
            self.world_size
        );
        crate::macros::ensure!(
            !self.timeout.is_zero() && !self.heartbeat.is_zero(),
            config("distributed.timeout"),
            "timeout and heartbeat must be positive"
        );
        crate::macros::ensure!(
            self.bucket_mb.is_finite() && self.bucket_mb > 0.0,
            config("distributed.bucket_mb"),
            "must be positive, got {}",
            self.bucket_mb
        );
        Ok(())
    }
}

/// This process's membership of a data-parallel group (cheap to clone: shared).
///
/// Created by [`Distributed::from_env`] or [`Distributed::new`]; handed to the trainer with
/// [`TrainerConfig::distributed`](crate::training::TrainerConfig::distributed). The group is
/// left when the last clone is dropped.
#[derive(Clone)]
pub struct Distributed {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: DistributedConfig,
    /// The joined group; `None` for a group of one.
    group: Option<ffi::Group>,
    /// Collectives run, bytes they carried (this rank's side) and nanoseconds spent in them.
    calls: AtomicU64,
    bytes: AtomicU64,
    nanos: AtomicU64,
    /// Gradient buckets whose all-reduce started during a backward pass.
    early: AtomicU64,
}

/// Communication of one rank so far: what [`Distributed::comm_stats`] returns.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CommStats {
    /// Collective calls (one call may carry several buckets).
    pub calls: u64,
    /// Bytes handed to the collectives by this rank (all-reduced, broadcast or gathered).
    pub bytes: u64,
    /// Seconds spent waiting for the collectives (communication and synchronisation); for
    /// the gradients, only the wait left after the backward pass.
    pub seconds: f64,
    /// Gradient buckets whose all-reduce started during the backward pass (overlapped with it).
    pub overlapped_buckets: u64,
}

impl std::fmt::Debug for Distributed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distributed")
            .field("rank", &self.rank())
            .field("world_size", &self.world_size())
            .field("backend", &self.inner.cfg.backend)
            .finish()
    }
}

impl PartialEq for Distributed {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Distributed {
    /// Joins the group described by torchrun's environment ([`DistributedConfig::from_env`]).
    pub fn from_env() -> Result<Self> {
        Self::new(DistributedConfig::from_env()?)
    }

    /// Joins the group `cfg` describes: blocks until all `world_size` ranks have joined (at
    /// most `cfg.timeout`). A world of one joins nothing.
    pub fn new(cfg: DistributedConfig) -> Result<Self> {
        cfg.validate()?;
        if cfg.backend == Backend::Nccl {
            return Err(WideDeepError::Distributed {
                rank: cfg.rank,
                world_size: cfg.world_size,
                lost_ranks: vec![],
                reason: "the NCCL backend is not built into widedeep (it needs the CUDA \
                         headers); use Backend::Gloo"
                    .into(),
            });
        }
        let group = if cfg.world_size > 1 {
            Some(
                ffi::Group::join(&cfg).map_err(|reason| WideDeepError::Distributed {
                    rank: cfg.rank,
                    world_size: cfg.world_size,
                    lost_ranks: vec![],
                    reason: format!(
                        "cannot join the group at {}:{}: {reason}",
                        cfg.master_addr, cfg.master_port
                    ),
                })?,
            )
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(Inner {
                cfg,
                group,
                calls: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                nanos: AtomicU64::new(0),
                early: AtomicU64::new(0),
            }),
        })
    }

    /// Whether this binary was built with the c10d shim (the Gloo headers were found).
    pub fn available() -> bool {
        ffi::AVAILABLE
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.inner.cfg.rank
    }
    /// The number of processes.
    pub fn world_size(&self) -> usize {
        self.inner.cfg.world_size
    }
    /// The rank on this machine.
    pub fn local_rank(&self) -> usize {
        self.inner.cfg.local_rank
    }
    /// Whether this is rank 0, the one that writes files (checkpoints, pipelines, plots).
    pub fn is_main(&self) -> bool {
        self.rank() == 0
    }
    /// The collectives run by this rank so far (calls, bytes, seconds).
    pub fn comm_stats(&self) -> CommStats {
        let i = &self.inner;
        CommStats {
            calls: i.calls.load(Ordering::Relaxed),
            bytes: i.bytes.load(Ordering::Relaxed),
            seconds: i.nanos.load(Ordering::Relaxed) as f64 * 1e-9,
            overlapped_buckets: i.early.load(Ordering::Relaxed),
        }
    }

    /// The settings the group was joined with.
    pub fn config(&self) -> &DistributedConfig {
        &self.inner.cfg
    }

    /// The error of a failed collective `what`: names the ranks whose heartbeat stopped (or
    /// the store's host when the store is gone).
    fn failure(&self, what: &str, message: String) -> WideDeepError {
        let cfg = &self.inner.cfg;
        let lost = match &self.inner.group {
            Some(g) => g.lost_ranks(cfg.heartbeat * 3),
            None => Some(vec![]),
        };
        let (lost_ranks, who) = match lost {
            Some(l) if !l.is_empty() => {
                let names: Vec<String> = l.iter().map(|r| r.to_string()).collect();
                let who = format!("lost rank {}", names.join(", "));
                (l, who)
            }
            Some(_) => (vec![], "no rank reported lost".to_string()),
            None if !cfg.agent_store => (
                vec![0],
                "lost rank 0 (the host of the rendezvous store is unreachable)".into(),
            ),
            None => (
                vec![],
                "the rendezvous store of torchrun's agent is unreachable".into(),
            ),
        };
        WideDeepError::Distributed {
            rank: cfg.rank,
            world_size: cfg.world_size,
            lost_ranks,
            reason: format!("{what} failed ({who}): {message}"),
        }
    }

    /// The joined group (`None` for a group of one).
    fn group(&self) -> Option<&ffi::Group> {
        self.inner.group.as_ref()
    }

    /// Adds `n` gradient buckets started during a backward pass to the statistics.
    fn count_overlapped(&self, n: u64) {
        self.inner.early.fetch_add(n, Ordering::Relaxed);
    }

    /// Runs the communication `f` carrying `bytes`, counted in [`Distributed::comm_stats`];
    /// maps its failure to an error naming the lost ranks.
    fn timed(
        &self,
        what: &str,
        bytes: usize,
        f: impl FnOnce() -> std::result::Result<(), String>,
    ) -> Result<()> {
        let t0 = std::time::Instant::now();
        let result = f();
        let i = &self.inner;
        i.nanos
            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        i.calls.fetch_add(1, Ordering::Relaxed);
        i.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        result.map_err(|m| self.failure(what, m))
    }

    /// Runs `f` on the group (a no-op `Ok` for a group of one), mapping failures.
    fn collective(
        &self,
        what: &str,
        tensors: &[Tensor],
        f: impl FnOnce(&ffi::Group) -> std::result::Result<(), String>,
    ) -> Result<()> {
        let Some(g) = &self.inner.group else {
            return Ok(());
        };
        let bytes: usize = tensors
            .iter()
            .map(|t| t.numel() * t.kind().elt_size_in_bytes())
            .sum();
        self.timed(what, bytes, || f(g))
    }

    /// Sums each tensor over the ranks, in place. The tensors are copied through the host when
    /// they are not contiguous CPU tensors.
    ///
    /// # Shapes
    /// - `tensors`: any shapes, the same on every rank (kept)
    pub fn all_reduce_sum(&self, tensors: &[Tensor]) -> Result<()> {
        self.reduce(tensors, ffi::Op::Sum)
    }

    /// The element-wise maximum of each tensor over the ranks, in place.
    ///
    /// # Shapes
    /// - `tensors`: any shapes, the same on every rank (kept)
    pub fn all_reduce_max(&self, tensors: &[Tensor]) -> Result<()> {
        self.reduce(tensors, ffi::Op::Max)
    }

    fn reduce(&self, tensors: &[Tensor], op: ffi::Op) -> Result<()> {
        let host = on_host(tensors);
        self.collective("all-reduce", &host, |g| g.all_reduce(&host, op))?;
        copy_back(tensors, &host);
        Ok(())
    }

    /// Overwrites each tensor with rank `root`'s.
    ///
    /// # Shapes
    /// - `tensors`: any shapes, the same on every rank (kept)
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> Result<()> {
        let host = on_host(tensors);
        self.collective("broadcast", &host, |g| g.broadcast(&host, root))?;
        copy_back(tensors, &host);
        Ok(())
    }

    /// Every rank's `t` concatenated along dim 0 in rank order, on `t`'s device.
    ///
    /// # Shapes
    /// - `t`: `[n, …]`, the same shape and kind on every rank; returns `[world_size · n, …]`
    pub fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        let host = t.to_device(Device::Cpu).contiguous();
        let mut out = None;
        self.collective("all-gather", std::slice::from_ref(&host), |g| {
            out = Some(g.all_gather(&host)?);
            Ok(())
        })?;
        Ok(match out {
            Some(o) => o.to_device(t.device()),
            None => t.shallow_clone(),
        })
    }

    /// Whether `flag` is true on any rank.
    pub fn any(&self, flag: bool) -> Result<bool> {
        let t = Tensor::from_slice(&[flag as i32]);
        self.all_reduce_max(std::slice::from_ref(&t))?;
        Ok(t.int64_value(&[0]) != 0)
    }

    /// Every rank's values of `v` (`world_size` rows of `v.len()`), e.g. to check that all
    /// ranks loaded the same data.
    pub fn gather_values(&self, v: &[i64]) -> Result<Vec<Vec<i64>>> {
        let all = self.all_gather(&Tensor::from_slice(v))?;
        let flat = Vec::<i64>::try_from(&all)?;
        Ok(flat.chunks(v.len().max(1)).map(<[i64]>::to_vec).collect())
    }

    /// Runs `f` on rank 0 only and gives every rank its result (sent as JSON): preprocessors
    /// fitted once and shared, for example. An error of `f` on rank 0 is returned there, and the
    /// other ranks get an error saying rank 0 failed.
    pub fn on_main_shared<T: Serialize + DeserializeOwned>(
        &self,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        if self.world_size() == 1 {
            return f();
        }
        let (value, bytes) = if self.is_main() {
            match f().and_then(|v| Ok((serde_json::to_vec(&v)?, v))) {
                Ok((bytes, v)) => (Some(Ok(v)), bytes),
                Err(e) => (Some(Err(e)), Vec::new()),
            }
        } else {
            (None, Vec::new())
        };
        let failed = matches!(value, Some(Err(_)));
        let len = Tensor::from_slice(&[if failed { -1 } else { bytes.len() as i64 }]);
        self.broadcast(std::slice::from_ref(&len), 0)?;
        let len = len.int64_value(&[0]);
        if let Some(v) = value {
            if len >= 0 {
                self.broadcast(&[Tensor::from_slice(&bytes)], 0)?;
            }
            return v;
        }
        if len < 0 {
            return Err(self.error("rank 0 failed to compute the shared value".into()));
        }
        let buf = Tensor::zeros([len], (tch::Kind::Uint8, Device::Cpu));
        self.broadcast(std::slice::from_ref(&buf), 0)?;
        Ok(serde_json::from_slice(&Vec::<u8>::try_from(&buf)?)?)
    }

    /// A typed error from this rank (not a communication failure).
    pub(crate) fn error(&self, reason: String) -> WideDeepError {
        WideDeepError::Distributed {
            rank: self.rank(),
            world_size: self.world_size(),
            lost_ranks: vec![],
            reason,
        }
    }
}

/// Contiguous CPU versions of `tensors` (the same tensors when they already are).
fn on_host(tensors: &[Tensor]) -> Vec<Tensor> {
    tensors
        .iter()
        .map(|t| {
            if t.device() == Device::Cpu && t.is_contiguous() {
                t.shallow_clone()
            } else {
                t.to_device(Device::Cpu).contiguous()
            }
        })
        .collect()
}

/// Copies the host results back where `on_host` had to copy.
fn copy_back(tensors: &[Tensor], host: &[Tensor]) {
    tch::no_grad(|| {
        for (t, h) in tensors.iter().zip(host) {
            if t.data_ptr() != h.data_ptr() {
                t.shallow_clone().copy_(h);
            }
        }
    });
}

/// The rows of one rank in an epoch of `n` rows (DistributedSampler's semantics, without
/// `drop_last`): the epoch's order `order` (`None`: `0..n`) is padded by repeating its first
/// rows up to `ceil(n / w) · w`, and rank `r` takes positions `r, r + w, r + 2w, …`. Returns
/// the rank's rows and how many of them, counted from the start, are not padding (padding sits
/// at the end of each rank's list).
///
/// # Shapes
/// - `order`: `[n]` i64; returns `[ceil(n / w)]` i64
pub fn shard_rows(order: Option<&Tensor>, n: usize, rank: usize, world: usize) -> (Tensor, usize) {
    let per = n.div_ceil(world);
    let positions: Vec<i64> = (0..per)
        .map(|i| ((rank + i * world) % n.max(1)) as i64)
        .collect();
    let pos = Tensor::from_slice(&positions);
    let rows = match order {
        Some(o) => o.index_select(0, &pos.to_device(o.device())),
        None => pos,
    };
    let real = n.saturating_sub(rank).div_ceil(world);
    (rows, real)
}

/// Rows per rank for an epoch of `n` rows: `ceil(n / world)`.
pub fn rows_per_rank(n: usize, world: usize) -> usize {
    n.div_ceil(world.max(1))
}
