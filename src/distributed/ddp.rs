//! The data-parallel pieces the trainer calls: the start-of-fit broadcast of rank 0's state and
//! the bucketed gradient averaging before each optimizer step (PyTorch DDP's semantics).
use super::{ffi, Distributed};
use crate::error::Result;
use tch::{nn, Tensor};

/// Groups of consecutive tensors (same kind) whose total size stays under `cap` bytes: the
/// flat buckets reduced or broadcast together.
fn buckets(tensors: &[Tensor], cap: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0usize;
    for (i, t) in tensors.iter().enumerate() {
        let size = t.numel() * t.kind().elt_size_in_bytes();
        let new_kind = i > start && tensors[start].kind() != t.kind();
        if i > start && (bytes + size > cap || new_kind) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < tensors.len() {
        out.push(start..tensors.len());
    }
    out
}

fn flat(tensors: &[Tensor]) -> Tensor {
    let views: Vec<Tensor> = tensors.iter().map(|t| t.detach().reshape([-1])).collect();
    Tensor::cat(&views, 0)
}

/// Copies the consecutive slices of `flat` into `tensors` (same shapes as flattened).
fn unflat(flat: &Tensor, tensors: &[Tensor]) {
    let mut at = 0i64;
    for t in tensors {
        let n = t.numel() as i64;
        t.detach()
            .copy_(&flat.narrow(0, at, n).view_as(t).to_device(t.device()));
        at += n;
    }
}

/// Overwrites every variable of `vs` (parameters and buffers, in name order) with rank 0's.
pub(crate) fn broadcast_state(d: &Distributed, vs: &nn::VarStore) -> Result<()> {
    if d.world_size() == 1 {
        return Ok(());
    }
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    // the same variables everywhere, or the broadcast would mix them up
    let shapes: i64 = vars.iter().map(|(_, v)| v.numel() as i64).sum();
    let seen = d.gather_values(&[vars.len() as i64, shapes])?;
    if let Some((r, v)) = seen.iter().enumerate().find(|(_, v)| v != &&seen[0]) {
        return Err(d.error(format!(
            "rank {r}'s model has {} variables of {} values, rank 0's {} of {}: every rank \
             must build the same model",
            v[0], v[1], seen[0][0], seen[0][1]
        )));
    }
    let tensors: Vec<Tensor> = vars.into_iter().map(|(_, v)| v).collect();
    broadcast_flat(d, &tensors)
}

/// Broadcasts `tensors` from rank 0 in flat buckets and copies the results back.
fn broadcast_flat(d: &Distributed, tensors: &[Tensor]) -> Result<()> {
    let cap = (d.config().bucket_mb * 1e6) as usize;
    let groups = buckets(tensors, cap);
    let flats: Vec<Tensor> = groups.iter().map(|g| flat(&tensors[g.clone()])).collect();
    d.broadcast(&flats, 0)?;
    tch::no_grad(|| {
        for (g, f) in groups.iter().zip(&flats) {
            unflat(f, &tensors[g.clone()]);
        }
    });
    Ok(())
}

/// Gradient averaging before each optimizer step, overlapped with the last backward pass of
/// each step where the gradients allow it, and the re-broadcast of rank 0's buffers after it.
pub(crate) struct GradSync {
    /// The shim's buckets and hooks (`None` in a group of one); dropped before `dist`, whose
    /// process group it uses.
    overlap: Option<ffi::Overlap>,
    dist: Distributed,
    /// The variables that are not trained (batch-norm statistics, frozen weights).
    buffers: Vec<Tensor>,
    /// Bytes all-reduced per step: the trainable variables plus a flag per variable.
    bytes: usize,
}

impl std::fmt::Debug for GradSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GradSync")
            .field("dist", &self.dist)
            .field("buffers", &self.buffers.len())
            .finish()
    }
}

impl GradSync {
    /// For the trainable variables `vars` of `vs`: buckets of `bucket_mb` and a hook on each
    /// variable's gradient accumulator.
    pub(crate) fn new(dist: Distributed, vs: &nn::VarStore, vars: &[Tensor]) -> Result<Self> {
        let mut all: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let buffers = all
            .into_iter()
            .map(|(_, v)| v)
            .filter(|v| !vars.iter().any(|t| t.data_ptr() == v.data_ptr()))
            .collect();
        let cap = (dist.config().bucket_mb * 1e6) as usize;
        let overlap = match dist.group() {
            Some(g) if !vars.is_empty() => {
                Some(ffi::Overlap::new(g, vars, cap).map_err(|m| dist.error(m))?)
            }
            _ => None,
        };
        let bytes = vars
            .iter()
            .map(|v| (v.numel() + 1) * v.kind().elt_size_in_bytes())
            .sum();
        Ok(Self {
            overlap,
            dist,
            buffers,
            bytes,
        })
    }

    /// The next backward pass is the last before a step: its buckets start all-reducing as
    /// soon as their gradients are accumulated.
    pub(crate) fn arm(&self) {
        if let Some(o) = &self.overlap {
            o.arm();
        }
    }

    /// Replaces the gradient of every trainable variable by its mean over the ranks (a rank
    /// without a gradient for a variable contributes zeros; a variable without a gradient on
    /// every rank keeps none): waits for the buckets started during the backward pass, starts
    /// and waits for the others.
    pub(crate) fn average(&self) -> Result<()> {
        let Some(o) = &self.overlap else {
            return Ok(());
        };
        let mut early = 0;
        self.dist
            .timed("all-reduce of the gradients", self.bytes, || {
                early = o.finish()?;
                Ok(())
            })?;
        self.dist.count_overlapped(early as u64);
        Ok(())
    }

    /// After an optimizer step: every rank takes rank 0's buffers (DDP's `broadcast_buffers`).
    pub(crate) fn after_step(&self) -> Result<()> {
        if self.dist.world_size() == 1 || self.buffers.is_empty() {
            return Ok(());
        }
        broadcast_flat(&self.dist, &self.buffers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn buckets_respect_the_cap_and_the_kinds() {
        let t = |n: i64, k: Kind| Tensor::zeros([n], (k, tch::Device::Cpu));
        let ts = [
            t(10, Kind::Float),
            t(10, Kind::Float),
            t(30, Kind::Float),
            t(5, Kind::Double),
            t(5, Kind::Double),
        ];
        // 80 bytes cap: 40 + 40, then 120 alone, then the doubles (a new kind)
        assert_eq!(buckets(&ts, 80), vec![0..2, 2..3, 3..5]);
        assert_eq!(buckets(&ts, 1 << 20), vec![0..3, 3..5]);
        assert!(buckets(&[], 10).is_empty());
    }

    #[test]
    fn flat_and_unflat_round_trip() {
        let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2]);
        let b = Tensor::from_slice(&[5.0f32]);
        let f = flat(&[a.shallow_clone(), b.shallow_clone()]);
        assert_eq!(
            Vec::<f32>::try_from(&f).unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0]
        );
        let a2 = a.zeros_like();
        let b2 = b.zeros_like();
        unflat(&(f * 2.0), &[a2.shallow_clone(), b2.shallow_clone()]);
        assert_eq!(
            Vec::<f32>::try_from(a2.view([-1])).unwrap(),
            vec![2.0, 4.0, 6.0, 8.0]
        );
        assert_eq!(Vec::<f32>::try_from(&b2).unwrap(), vec![10.0]);
    }
}
