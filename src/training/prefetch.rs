//! The batches of one epoch, on the model's device, optionally prepared one ahead on a worker
//! thread (row selection, pinned host memory and the host-to-device copy) while the current
//! batch trains.
use crate::training::Dataset;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;
use tch::{Device, Tensor};

/// One epoch's batches of `batch_size` rows of `data` in the order `order` (`[n]` i64 row
/// indices; `None`: the stored order), moved to `device`.
pub struct EpochBatches {
    inner: Inner,
}

enum Inner {
    Plain(Box<Plan>),
    Prefetch {
        rx: Option<Receiver<Dataset>>,
        worker: Option<JoinHandle<()>>,
    },
}

/// Everything needed to build batch `k`; owns shallow copies of the tensors (no data copied).
struct Plan {
    data: Dataset,
    order: Option<Tensor>,
    batch_size: i64,
    device: Device,
    next: i64,
    n: i64,
}

impl Plan {
    fn batch(&mut self) -> Option<Dataset> {
        if self.next >= self.n {
            return None;
        }
        let start = self.next;
        let len = self.batch_size.min(self.n - start);
        self.next += len;
        let rows = match &self.order {
            Some(o) => self.data.select(&o.narrow(0, start, len)),
            None => self.data.slice(start, len),
        };
        Some(move_to(rows, self.device))
    }
}

/// Copies a batch to `device`; from the CPU to CUDA through pinned memory without blocking.
fn move_to(batch: Dataset, device: Device) -> Dataset {
    if batch.device() == device {
        return batch;
    }
    // (lazy image columns keep their decoding information through `to_device`)
    if device.is_cuda() && batch.device() == Device::Cpu && !batch.is_lazy() {
        // `_pin_memory` (not `pin_memory(device)`, whose device argument is deprecated and
        // warns on every call); without a pinned allocator: a plain blocking copy
        let pinned = |t: &Tensor| match t.f_internal_pin_memory(device) {
            Ok(p) => p.to_device_(device, p.kind(), true, false),
            Err(_) => t.to_device(device),
        };
        return Dataset::new(batch.input.map(pinned), batch.target.as_ref().map(pinned))
            .expect("same rows as the source batch");
    }
    batch.to_device(device)
}

impl EpochBatches {
    /// The batches of one epoch; with `prefetch` a worker thread prepares the next batch while
    /// the caller works on the current one. Both ways give the same batches in the same order.
    ///
    /// # Shapes
    /// - `order`: `[n]` i64 row indices of `data` (`n` may differ from `data.len()`: weighted
    ///   draws); every tensor of a batch has `min(batch_size, rows left)` rows
    pub fn new(
        data: &Dataset,
        order: Option<&Tensor>,
        batch_size: usize,
        device: Device,
        prefetch: bool,
    ) -> Self {
        let order = order.map(|o| o.to_device(data.device()));
        let n = order.as_ref().map_or(data.len(), |o| o.size()[0]);
        let mut plan = Plan {
            data: data.slice(0, data.len()),
            order,
            batch_size: batch_size.max(1) as i64,
            device,
            next: 0,
            n,
        };
        if !prefetch {
            return Self {
                inner: Inner::Plain(Box::new(plan)),
            };
        }
        // one batch waits in the channel while the next one is being prepared
        let (tx, rx) = sync_channel::<Dataset>(1);
        let worker = std::thread::spawn(move || {
            while let Some(b) = plan.batch() {
                if tx.send(b).is_err() {
                    break; // the consumer stopped early
                }
            }
        });
        Self {
            inner: Inner::Prefetch {
                rx: Some(rx),
                worker: Some(worker),
            },
        }
    }
}

impl Iterator for EpochBatches {
    type Item = Dataset;

    fn next(&mut self) -> Option<Dataset> {
        match &mut self.inner {
            Inner::Plain(plan) => plan.batch(),
            Inner::Prefetch { rx, .. } => rx.as_ref().and_then(|r| r.recv().ok()),
        }
    }
}

impl Drop for EpochBatches {
    fn drop(&mut self) {
        if let Inner::Prefetch { rx, worker } = &mut self.inner {
            drop(rx.take()); // unblocks a worker waiting to send
            if let Some(w) = worker.take() {
                let _ = w.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelInput;
    use tch::Kind;

    fn data(n: i64) -> Dataset {
        let input = ModelInput {
            cat: Some(Tensor::arange(2 * n, (Kind::Int64, Device::Cpu)).view([n, 2])),
            cont: Some(Tensor::arange(n, (Kind::Float, Device::Cpu)).view([n, 1]) * 0.5),
            text: vec![Tensor::arange(3 * n, (Kind::Int64, Device::Cpu)).view([n, 3])],
            ..Default::default()
        };
        let target = Tensor::arange(n, (Kind::Float, Device::Cpu));
        Dataset::new(input, Some(target)).unwrap()
    }

    fn same(a: &Dataset, b: &Dataset) -> bool {
        a.len() == b.len()
            && a.input
                .tensors()
                .zip(b.input.tensors())
                .all(|(x, y)| x.equal(y))
            && a.target.as_ref().unwrap().equal(b.target.as_ref().unwrap())
    }

    #[test]
    fn prefetch_gives_the_plain_batches_in_order() {
        let d = data(23);
        let order = Tensor::from_slice(&[
            5i64, 3, 22, 0, 1, 7, 9, 11, 2, 4, 6, 8, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
        ]);
        for order in [None, Some(&order)] {
            let plain: Vec<Dataset> = EpochBatches::new(&d, order, 5, Device::Cpu, false).collect();
            let pre: Vec<Dataset> = EpochBatches::new(&d, order, 5, Device::Cpu, true).collect();
            assert_eq!(plain.len(), 5);
            assert_eq!(pre.len(), plain.len());
            assert!(plain.iter().zip(&pre).all(|(a, b)| same(a, b)));
            // and they are the rows of `order`, in batches of 5 (the last one 3)
            let t: Vec<f32> = plain
                .iter()
                .flat_map(|b| Vec::<f32>::try_from(b.target.as_ref().unwrap()).unwrap())
                .collect();
            let expect: Vec<f32> = match order {
                Some(o) => Vec::<i64>::try_from(o)
                    .unwrap()
                    .iter()
                    .map(|&i| i as f32)
                    .collect(),
                None => (0..23).map(|i| i as f32).collect(),
            };
            assert_eq!(t, expect);
        }
    }

    #[test]
    fn stopping_early_ends_the_worker() {
        let d = data(100);
        let mut it = EpochBatches::new(&d, None, 2, Device::Cpu, true);
        assert_eq!(it.next().unwrap().len(), 2);
        drop(it); // must not hang
    }

    #[test]
    fn cuda_prefetch_matches_plain() {
        if !tch::Cuda::is_available() {
            eprintln!("skipped: no CUDA device");
            return;
        }
        let d = data(50);
        let order = Tensor::arange(50, (Kind::Int64, Device::Cpu)).flip([0]);
        let dev = Device::Cuda(0);
        let plain: Vec<Dataset> = EpochBatches::new(&d, Some(&order), 8, dev, false).collect();
        let pre: Vec<Dataset> = EpochBatches::new(&d, Some(&order), 8, dev, true).collect();
        assert!(pre.iter().all(|b| b.device() == dev));
        assert!(plain.iter().zip(&pre).all(|(a, b)| same(a, b)));
    }
}
