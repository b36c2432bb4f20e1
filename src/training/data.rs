//! Data sets of whole column tensors, batched by slicing (no per-row objects); image columns
//! may instead be decoded batch by batch ([`Dataset::with_lazy_images`]).
use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure};
use crate::models::{ModelInput, SeqInput};
use rand::seq::SliceRandom;
use rand::Rng;
use std::sync::{mpsc, Arc};
use tch::{Device, Kind, Tensor};
use widedeep_preprocessing::{
    ImageData, ImageRows, SequenceData, TabData, TargetData, TextData, WideData,
};

/// Model inputs for `len()` rows plus an optional target: `[N]` f32 (binary, regression) or
/// i64 (multiclass), or `[N, T]` for a multi-target objective (build it with
/// [`stack_targets`]).
///
/// Image columns are held in memory as `u8` (see [`Dataset::from_parts`]) or, for data whose
/// images do not fit in memory, decoded per batch from their files or bytes
/// ([`Dataset::with_lazy_images`]): then `input.image[i]` is only a zero-stride placeholder of
/// the right shape and the pixels exist in the batches of [`Dataset::try_batches`] (which the
/// trainer uses), decoded on a worker thread `prefetch` batches ahead.
#[derive(Debug)]
pub struct Dataset {
    /// The model inputs, every tensor with `len()` rows.
    pub input: ModelInput,
    /// The target, `[N]` or `[N, T]` (see the type's documentation); `None` for prediction.
    pub target: Option<Tensor>,
    /// Input columns that were entirely null (or NaN) in the DataFrame this data set was
    /// transformed from (by [`Preprocessors::transform`](crate::pipeline::Preprocessors::transform)):
    /// they carry no information for any row. Empty otherwise.
    pub all_null: Vec<String>,
    len: i64,
    /// Per image column: `Some` when it is decoded per batch.
    lazy: Vec<Option<LazyImages>>,
    prefetch: usize,
}

/// An image column decoded per batch: the source and the source row of each dataset row.
#[derive(Clone, Debug)]
struct LazyImages {
    source: Arc<ImageRows>,
    rows: Vec<usize>,
}

/// A `u8` `[n, 3, h, w]` tensor that takes the memory of one image.
fn placeholder(n: i64, (w, h): (u32, u32), device: Device) -> Tensor {
    Tensor::zeros([1, 3, h as i64, w as i64], (Kind::Uint8, device))
        .expand([n, 3, h as i64, w as i64], false)
}

fn image_tensor(im: &ImageData) -> Tensor {
    let shape: Vec<i64> = im.pixels.shape().iter().map(|&d| d as i64).collect();
    let t = match im.pixels.as_slice() {
        Some(s) => Tensor::from_slice(s),
        None => Tensor::from_slice(&im.pixels.iter().copied().collect::<Vec<u8>>()),
    };
    t.view(shape.as_slice())
}

impl Dataset {
    /// Wraps tensors whose first dimensions all equal the row count.
    ///
    /// # Shapes
    /// - `input`: tensors of `N` rows each (see [`ModelInput`])
    /// - `target`: `[N]` or `[N, T]`, f32, f64 or i64
    pub fn new(input: ModelInput, target: Option<Tensor>) -> Result<Self> {
        let len = input.batch_size();
        ensure!(
            input.tensors().next().is_some(),
            missing(),
            "a Dataset needs at least one input tensor"
        );
        for (name, t) in named(&input)
            .into_iter()
            .chain(target.iter().map(|t| ("target".to_string(), t)))
        {
            ensure!(
                t.size().first() == Some(&len),
                input(name),
                "has {:?} rows, expected {len}",
                t.size().first()
            );
        }
        if let Some(t) = &target {
            ensure!(
                (1..=2).contains(&t.dim()),
                input("target"),
                "must be [N] or [N, T], got shape {:?}",
                t.size()
            );
            ensure!(
                matches!(t.kind(), Kind::Float | Kind::Double | Kind::Int64),
                input("target"),
                "must be f32, f64 or i64, got {:?}",
                t.kind()
            );
        }
        let lazy = vec![None; input.image.len()];
        Ok(Self {
            input,
            target,
            all_null: Vec::new(),
            len,
            lazy,
            prefetch: 2,
        })
    }

    /// Adds an image column decoded per batch from `source` (rows in the order of this data
    /// set, e.g. `ImagePreprocessor::rows` of the same DataFrame) as `input.image[len]`;
    /// returns its index. Training, evaluation and prediction through the [`Trainer`] then
    /// decode each batch's images on a worker thread while the previous batch runs, and give
    /// the same results as the in-memory images of `transform`.
    ///
    /// [`Trainer`]: crate::training::Trainer
    pub fn with_lazy_images(&mut self, source: ImageRows) -> Result<usize> {
        ensure!(
            source.len() as i64 == self.len,
            input(format!("image[{}]", self.input.image.len())),
            "has {} rows, expected {}",
            source.len(),
            self.len
        );
        let size = source.output_size();
        self.input
            .image
            .push(placeholder(self.len, size, self.device()));
        self.lazy.push(Some(LazyImages {
            source: Arc::new(source),
            rows: (0..self.len as usize).collect(),
        }));
        Ok(self.input.image.len() - 1)
    }

    /// How many batches of lazy images are decoded ahead of the one in use (default 2).
    pub fn set_prefetch(&mut self, batches: usize) {
        self.prefetch = batches.max(1);
    }

    /// This data set with its lazy image columns decoded (all rows in one go, on this
    /// thread); a shallow copy when nothing is lazy. For batches, prefer
    /// [`Dataset::try_batches`], which decodes ahead on a worker thread.
    pub fn materialize(&self) -> Result<Dataset> {
        if !self.is_lazy() {
            return Ok(self.slice(0, self.len));
        }
        match self.try_batches(self.len.max(1)).next() {
            Some(batch) => batch,
            None => Ok(self.slice(0, self.len)),
        }
    }

    /// Whether some image column is decoded per batch.
    pub fn is_lazy(&self) -> bool {
        self.lazy.iter().any(Option::is_some)
    }

    /// A data set with `input` and rows `rows` of the lazy columns (same structure as self).
    fn with_parts(
        &self,
        input: ModelInput,
        target: Option<Tensor>,
        len: i64,
        pick: impl Fn(&[usize]) -> Vec<usize>,
    ) -> Dataset {
        let mut input = input;
        let lazy: Vec<Option<LazyImages>> = self
            .lazy
            .iter()
            .map(|l| {
                l.as_ref().map(|l| LazyImages {
                    source: l.source.clone(),
                    rows: pick(&l.rows),
                })
            })
            .collect();
        for (i, l) in lazy.iter().enumerate() {
            if let Some(l) = l {
                let device = input.image[i].device();
                input.image[i] = placeholder(len, l.source.output_size(), device);
            }
        }
        Dataset {
            input,
            target,
            all_null: self.all_null.clone(),
            len,
            lazy,
            prefetch: self.prefetch,
        }
    }

    /// `input` with the lazy columns skipped by `f` (their placeholders are rebuilt).
    fn map_input(&self, f: impl Fn(&Tensor) -> Tensor) -> ModelInput {
        ModelInput {
            wide: self.input.wide.as_ref().map(&f),
            cat: self.input.cat.as_ref().map(&f),
            cont: self.input.cont.as_ref().map(&f),
            text: self.input.text.iter().map(&f).collect(),
            image: self
                .input
                .image
                .iter()
                .zip(&self.lazy)
                .map(|(t, l)| match l {
                    Some(_) => t.shallow_clone(),
                    None => f(t),
                })
                .collect(),
            seq: self.input.seq.as_ref().map(|s| s.map(&f)),
        }
    }

    /// Builds tensors from preprocessor outputs (on the CPU).
    ///
    /// # Shapes
    /// - the result holds `input.wide` `[N, n_wide]` i64, `input.cat` `[N, n_cat]` i64,
    ///   `input.cont` `[N, n_cont]` f32 (each when present) and the target `[N]`
    pub fn from_arrays(
        wide: Option<&WideData>,
        tab: Option<&TabData>,
        target: Option<&TargetData>,
    ) -> Result<Self> {
        Self::from_parts(wide, tab, &[], &[], target)
    }

    /// Builds tensors from preprocessor outputs, text and image columns included (on the
    /// CPU).
    ///
    /// # Shapes
    /// - as [`Dataset::from_arrays`], and `texts[i]` becomes `input.text[i]` `[N, maxlen]` i64,
    ///   `images[i]` becomes `input.image[i]` `[N, 3, H, W]` u8 (normalised per batch by the
    ///   image model)
    pub fn from_parts(
        wide: Option<&WideData>,
        tab: Option<&TabData>,
        texts: &[TextData],
        images: &[ImageData],
        target: Option<&TargetData>,
    ) -> Result<Self> {
        Self::from_all(None, wide, tab, texts, images, target)
    }

    /// Builds tensors from the behaviour sequences of a `SequencePreprocessor` and the
    /// outputs of the other preprocessors on its [`SequenceData::frame`] (rows aligned with
    /// the samples), on the CPU.
    ///
    /// # Shapes
    /// - as [`Dataset::from_arrays`] with `N = seq.n_samples()`, and `input.seq`:
    ///   `items` `[N, L]` i64, `target_item` `[N]` i64, `actions` `[N, L]` i64 (with an action
    ///   column), `others[i]` `[N, L]` i64 (see [`SeqInput`])
    pub fn from_sequences(
        seq: &SequenceData,
        wide: Option<&WideData>,
        tab: Option<&TabData>,
        target: Option<&TargetData>,
    ) -> Result<Self> {
        Self::from_all(Some(seq), wide, tab, &[], &[], target)
    }

    /// [`Dataset::from_parts`] with optional behaviour sequences.
    pub(crate) fn from_all(
        seq: Option<&SequenceData>,
        wide: Option<&WideData>,
        tab: Option<&TabData>,
        texts: &[TextData],
        images: &[ImageData],
        target: Option<&TargetData>,
    ) -> Result<Self> {
        let mut input = ModelInput {
            text: texts.iter().map(|t| array_i64(&t.ids)).collect(),
            image: images.iter().map(image_tensor).collect(),
            seq: seq.map(seq_input),
            ..Default::default()
        };
        if let Some(w) = wide {
            input.wide = Some(array_i64(&w.indices));
        }
        if let Some(t) = tab {
            if t.cat.ncols() > 0 {
                input.cat = Some(array_i64(&t.cat));
            }
            if t.cont.ncols() > 0 {
                let (n, k) = t.cont.dim();
                let cont = match t.cont.as_slice() {
                    Some(s) => Tensor::from_slice(s),
                    None => Tensor::from_slice(&t.cont.iter().copied().collect::<Vec<f32>>()),
                };
                input.cont = Some(cont.view([n as i64, k as i64]));
            }
        }
        Self::new(input, target.map(target_tensor))
    }

    /// Like [`Dataset::from_parts`], but the image columns are decoded per batch from
    /// `images` (`ImagePreprocessor::rows`) instead of held in memory; see
    /// [`Dataset::with_lazy_images`].
    pub fn from_parts_lazy(
        wide: Option<&WideData>,
        tab: Option<&TabData>,
        texts: &[TextData],
        images: Vec<ImageRows>,
        target: Option<&TargetData>,
    ) -> Result<Self> {
        let mut ds = Self::from_parts(wide, tab, texts, &[], target);
        if let (Err(WideDeepError::Missing(_)), Some(first)) = (&ds, images.first()) {
            // images only: start from the first column's placeholder
            let input = ModelInput {
                image: vec![placeholder(
                    first.len() as i64,
                    first.output_size(),
                    Device::Cpu,
                )],
                ..Default::default()
            };
            let mut d = Self::new(input, target.map(target_tensor))?;
            d.input.image.clear();
            d.lazy.clear();
            ds = Ok(d);
        }
        let mut ds = ds?;
        for rows in images {
            ds.with_lazy_images(rows)?;
        }
        Ok(ds)
    }

    /// Number of rows.
    pub fn len(&self) -> i64 {
        self.len
    }

    /// Whether the data set has no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The rows at `index`, in that order.
    ///
    /// # Shapes
    /// - `index`: `[k]` i64 row indices; returns a data set of `k` rows
    pub fn select(&self, index: &Tensor) -> Dataset {
        let index = index.to_device(self.device());
        let picked: Vec<usize> = if self.is_lazy() {
            Vec::<i64>::try_from(index.to_device(Device::Cpu).to_kind(Kind::Int64).view([-1]))
                .unwrap_or_default()
                .into_iter()
                .map(|i| i as usize)
                .collect()
        } else {
            Vec::new()
        };
        self.with_parts(
            self.map_input(|t| t.index_select(0, &index)),
            self.target.as_ref().map(|t| t.index_select(0, &index)),
            index.size()[0],
            |rows| picked.iter().map(|&i| rows[i]).collect(),
        )
    }

    /// The rows of `parts` one after the other (copied), for data sets with the same inputs
    /// (e.g. the transformed pages of one file).
    ///
    /// Errors: [`WideDeepError::Missing`] for no part; [`WideDeepError::InputMismatch`] when
    /// the parts' inputs or targets differ in kind or shape, or a part has lazy image
    /// columns.
    pub fn concat(parts: &[Dataset]) -> Result<Dataset> {
        let Some(first) = parts.first() else {
            bail!(WideDeepError::Missing("no data set to concatenate".into()));
        };
        if parts.len() == 1 {
            return Ok(first.slice(0, first.len));
        }
        ensure!(
            !parts.iter().any(Dataset::is_lazy),
            input("image"),
            "data sets with lazy image columns cannot be concatenated"
        );
        let columns: Vec<Vec<&Tensor>> =
            parts.iter().map(|d| d.input.tensors().collect()).collect();
        ensure!(
            columns.iter().all(|c| c.len() == columns[0].len())
                && parts
                    .iter()
                    .all(|d| d.target.is_some() == first.target.is_some()),
            input("input"),
            "the data sets to concatenate have different inputs"
        );
        let (next, failed) = (std::cell::Cell::new(0), std::cell::RefCell::new(None));
        let input = first.input.map(|t| {
            let j = next.get();
            next.set(j + 1);
            let column: Vec<&Tensor> = columns.iter().map(|c| c[j]).collect();
            Tensor::f_cat(&column, 0).unwrap_or_else(|e| {
                failed.borrow_mut().get_or_insert(e);
                t.shallow_clone()
            })
        });
        let target = match &first.target {
            Some(_) => {
                let ts: Vec<&Tensor> = parts.iter().filter_map(|d| d.target.as_ref()).collect();
                Some(
                    Tensor::f_cat(&ts, 0).map_err(|e| WideDeepError::InputMismatch {
                        input: "target".into(),
                        reason: format!("cannot concatenate: {e}"),
                    })?,
                )
            }
            None => None,
        };
        if let Some(e) = failed.into_inner() {
            bail!(input("input"), "cannot concatenate: {e}");
        }
        Dataset::new(input, target)
    }

    /// Rows `start..start + len` (cut at the end) without copying.
    pub fn slice(&self, start: i64, len: i64) -> Dataset {
        let len = len.min(self.len - start);
        self.with_parts(
            self.map_input(|t| t.narrow(0, start, len)),
            self.target.as_ref().map(|t| t.narrow(0, start, len)),
            len,
            |rows| rows[start as usize..(start + len) as usize].to_vec(),
        )
    }

    /// Copies every tensor to `device` (lazy image columns stay lazy).
    pub fn to_device(&self, device: Device) -> Dataset {
        let mut out = self.with_parts(
            self.map_input(|t| t.to_device(device)),
            self.target.as_ref().map(|t| t.to_device(device)),
            self.len,
            |rows| rows.to_vec(),
        );
        for (i, l) in self.lazy.iter().enumerate() {
            if let Some(l) = l {
                out.input.image[i] = placeholder(self.len, l.source.output_size(), device);
            }
        }
        out
    }

    /// The device of the (first) input tensor; the CPU for a data set without tensors.
    pub fn device(&self) -> Device {
        self.input
            .tensors()
            .next()
            .map(|t| t.device())
            .unwrap_or(Device::Cpu)
    }

    /// Consecutive batches of `batch_size` rows (the last one may be smaller). For a data set
    /// with lazy image columns the batches hold only their placeholders: use
    /// [`Dataset::try_batches`].
    ///
    /// # Shapes
    /// - every tensor of a batch has `min(batch_size, rows left)` rows
    pub fn batches(&self, batch_size: i64) -> impl Iterator<Item = Dataset> + '_ {
        (0..self.len)
            .step_by(batch_size.max(1) as usize)
            .map(move |s| self.slice(s, batch_size))
    }

    /// Consecutive batches of `batch_size` rows with every input materialised: lazy image
    /// columns are decoded on a worker thread that stays `prefetch` batches ahead. A file that
    /// cannot be decoded is an error item naming it.
    ///
    /// # Shapes
    /// - every tensor of a batch has `min(batch_size, rows left)` rows; lazy image columns
    ///   become `[rows, 3, H, W]` u8
    pub fn try_batches(&self, batch_size: i64) -> Box<dyn Iterator<Item = Result<Dataset>> + '_> {
        let batch_size = batch_size.max(1);
        if !self.is_lazy() {
            return Box::new(self.batches(batch_size).map(Ok));
        }
        let starts: Vec<i64> = (0..self.len).step_by(batch_size as usize).collect();
        let jobs: Vec<Vec<DecodeJob>> = starts
            .iter()
            .map(|&s| {
                let e = (s + batch_size).min(self.len) as usize;
                self.lazy
                    .iter()
                    .enumerate()
                    .filter_map(|(i, l)| {
                        l.as_ref()
                            .map(|l| (i, l.source.clone(), l.rows[s as usize..e].to_vec()))
                    })
                    .collect()
            })
            .collect();
        let (tx, rx) = mpsc::sync_channel::<Decoded>(self.prefetch);
        let handle = std::thread::spawn(move || {
            for job in jobs {
                let decoded: Result<Vec<(usize, Tensor)>> = job
                    .into_iter()
                    .map(|(i, source, rows)| Ok((i, image_tensor(&source.decode(&rows)?))))
                    .collect();
                let failed = decoded.is_err();
                if tx.send(decoded).is_err() || failed {
                    break;
                }
            }
        });
        Box::new(LazyBatches {
            data: self,
            starts: starts.into_iter(),
            batch_size,
            rx: Some(rx),
            handle: Some(handle),
        })
    }

    /// A copy with the rows in a random order drawn from `rng`.
    pub fn shuffled(&self, rng: &mut impl Rng) -> Dataset {
        let mut idx: Vec<i64> = (0..self.len).collect();
        idx.shuffle(rng);
        self.select(&Tensor::from_slice(&idx))
    }

    /// Splits off a validation part of `fraction` of the rows, drawn at random from `rng`.
    /// With `stratify` the class proportions of the target are kept in both parts.
    pub fn split(
        &self,
        fraction: f64,
        stratify: bool,
        rng: &mut impl Rng,
    ) -> Result<(Dataset, Dataset)> {
        ensure!(
            fraction > 0.0 && fraction < 1.0,
            config("val_split"),
            "must be in (0, 1), got {fraction}"
        );
        let groups: Vec<Vec<i64>> = match (&self.target, stratify) {
            // one label per row; multi-target data is split without stratification
            (Some(t), true) if t.dim() == 1 => {
                let labels =
                    Vec::<i64>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Int64).view([-1]))?;
                let mut by_class: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
                for (i, l) in labels.into_iter().enumerate() {
                    by_class.entry(l).or_default().push(i as i64);
                }
                by_class.into_values().collect()
            }
            _ => vec![(0..self.len).collect()],
        };
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for mut g in groups {
            g.shuffle(rng);
            let n_val = (g.len() as f64 * fraction).round() as usize;
            val.extend_from_slice(&g[..n_val]);
            train.extend_from_slice(&g[n_val..]);
        }
        ensure!(
            !train.is_empty() && !val.is_empty(),
            config("val_split"),
            "{fraction} of {} rows leaves one part empty",
            self.len
        );
        train.sort_unstable();
        val.sort_unstable();
        Ok((
            self.select(&Tensor::from_slice(&train)),
            self.select(&Tensor::from_slice(&val)),
        ))
    }
}

/// A data set without a target (for prediction); an error when `input` holds no tensor or its
/// tensors disagree on the row count.
impl TryFrom<ModelInput> for Dataset {
    type Error = WideDeepError;

    fn try_from(input: ModelInput) -> Result<Self> {
        Self::new(input, None)
    }
}

/// Stacks per-target columns into the `[N, T]` f32 target of a multi-target objective
/// (column `i` = `columns[i]`; i64 class labels become exact f32 values).
///
/// # Shapes
/// - `columns`: `T` columns of `N` values each; returns `[N, T]` f32
///
/// ```
/// use widedeep::preprocessing::TargetData;
/// let t = widedeep::training::data::stack_targets(&[
///     TargetData::F32(vec![1.5, 2.0]),
///     TargetData::I64(vec![2, 0]),
/// ])
/// .unwrap();
/// assert_eq!(t.size(), [2, 2]);
/// ```
pub fn stack_targets(columns: &[TargetData]) -> Result<Tensor> {
    let Some(first) = columns.first() else {
        bail!(missing(), "stack_targets needs at least one column");
    };
    let n = first.len();
    let mut cols = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        ensure!(
            c.len() == n,
            input(format!("target[{i}]")),
            "has {} rows, target[0] has {n}",
            c.len()
        );
        let t = match c {
            TargetData::F32(v) => Tensor::from_slice(v),
            TargetData::I64(v) => {
                if let Some(big) = v.iter().find(|x| x.unsigned_abs() > 1 << 24) {
                    bail!(
                        input(format!("target[{i}]")),
                        "class label {big} is not exact in f32"
                    );
                }
                Tensor::from_slice(v).to_kind(Kind::Float)
            }
        };
        cols.push(t);
    }
    Ok(Tensor::stack(&cols, 1))
}

/// One lazy image column of one batch: column index, source, source rows.
type DecodeJob = (usize, Arc<ImageRows>, Vec<usize>);
/// The decoded image tensors of one batch, by column index.
type Decoded = Result<Vec<(usize, Tensor)>>;

/// Batches of a data set with lazy image columns (see [`Dataset::try_batches`]).
struct LazyBatches<'a> {
    data: &'a Dataset,
    starts: std::vec::IntoIter<i64>,
    batch_size: i64,
    rx: Option<mpsc::Receiver<Decoded>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Iterator for LazyBatches<'_> {
    type Item = Result<Dataset>;
    fn next(&mut self) -> Option<Self::Item> {
        let start = self.starts.next()?;
        let decoded = match self.rx.as_ref()?.recv() {
            Ok(d) => d,
            Err(_) => Err(WideDeepError::Missing(
                "the image decoding thread stopped".into(),
            )),
        };
        let mut batch = self.data.slice(start, self.batch_size);
        match decoded {
            Ok(images) => {
                for (i, t) in images {
                    batch.input.image[i] = t;
                    batch.lazy[i] = None;
                }
                Some(Ok(batch))
            }
            Err(e) => {
                self.starts = Vec::new().into_iter();
                Some(Err(e))
            }
        }
    }
}

impl Drop for LazyBatches<'_> {
    fn drop(&mut self) {
        // dropping the receiver makes the worker's next send fail, so it stops
        drop(self.rx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A target column as a tensor: `[N]` f32 or i64.
fn target_tensor(t: &TargetData) -> Tensor {
    match t {
        TargetData::F32(v) => Tensor::from_slice(v),
        TargetData::I64(v) => Tensor::from_slice(v),
    }
}

/// The tensors of behaviour sequences: `[N, L]` histories, `[N]` target items.
fn seq_input(s: &SequenceData) -> SeqInput {
    SeqInput {
        items: array_i64(&s.items),
        target_item: Tensor::from_slice(&s.target_item.to_vec()),
        actions: s.actions.as_ref().map(array_i64),
        others: s.others.iter().map(array_i64).collect(),
    }
}

/// `[n, k]` i64 from an `n × k` array.
fn array_i64(a: &ndarray::Array2<i64>) -> Tensor {
    let (n, k) = a.dim();
    let t = match a.as_slice() {
        Some(s) => Tensor::from_slice(s),
        None => Tensor::from_slice(&a.iter().copied().collect::<Vec<i64>>()),
    };
    t.view([n as i64, k as i64])
}

/// Every input tensor with its name in errors (`wide`, `cat`, `text[0]`, …).
fn named(input: &ModelInput) -> Vec<(String, &Tensor)> {
    let mut v = Vec::new();
    if let Some(t) = &input.wide {
        v.push(("wide".to_string(), t));
    }
    if let Some(t) = &input.cat {
        v.push(("cat".to_string(), t));
    }
    if let Some(t) = &input.cont {
        v.push(("cont".to_string(), t));
    }
    v.extend(
        input
            .text
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("text[{i}]"), t)),
    );
    v.extend(
        input
            .image
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("image[{i}]"), t)),
    );
    if let Some(seq) = &input.seq {
        v.extend(seq.named());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ds(n: i64) -> Dataset {
        let input = ModelInput {
            cont: Some(Tensor::arange(n, (Kind::Float, Device::Cpu)).view([n, 1])),
            ..Default::default()
        };
        let target = Tensor::from_slice(
            &(0..n)
                .map(|i| (i % 4 == 0) as i64 as f32)
                .collect::<Vec<_>>(),
        );
        Dataset::new(input, Some(target)).unwrap()
    }

    #[test]
    fn batches_cover_all_rows_once() {
        let d = ds(10);
        let sizes: Vec<i64> = d.batches(4).map(|b| b.len()).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let s = d.shuffled(&mut rng);
        let mut v = Vec::<f32>::try_from(s.input.cont.unwrap().view([-1])).unwrap();
        v.sort_by(f32::total_cmp);
        assert_eq!(v, (0..10).map(|i| i as f32).collect::<Vec<_>>());
    }

    #[test]
    fn stratified_split_keeps_class_shares() {
        let d = ds(100); // 25 positives
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (tr, va) = d.split(0.2, true, &mut rng).unwrap();
        assert_eq!((tr.len(), va.len()), (80, 20));
        let pos = |d: &Dataset| {
            d.target
                .as_ref()
                .unwrap()
                .sum(Kind::Float)
                .double_value(&[])
        };
        assert_eq!((pos(&tr), pos(&va)), (20.0, 5.0));
        assert!(d.split(1.5, true, &mut rng).is_err());
    }

    #[test]
    fn multi_target_columns_stack_with_named_errors() {
        let t = stack_targets(&[
            TargetData::F32(vec![0.5, 1.0, 2.0]),
            TargetData::I64(vec![2, 0, 1]),
        ])
        .unwrap();
        assert_eq!(t.size(), [3, 2]);
        assert_eq!(t.double_value(&[0, 1]), 2.0);
        let err =
            stack_targets(&[TargetData::F32(vec![0.5]), TargetData::I64(vec![1, 2])]).unwrap_err();
        assert!(err.to_string().contains("target[1]"), "{err}");
        assert!(stack_targets(&[]).is_err());
        // a [N, T] target fits a Dataset; [N, T, 1] and bool targets do not
        let input = || ModelInput {
            cont: Some(Tensor::zeros([3, 1], (Kind::Float, Device::Cpu))),
            ..Default::default()
        };
        let d = Dataset::new(input(), Some(t)).unwrap();
        // stratifying a multi-target split falls back to a plain split
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let (a, b) = d.split(0.34, true, &mut rng).unwrap();
        assert_eq!(a.len() + b.len(), 3);
        let err = Dataset::new(
            input(),
            Some(Tensor::zeros([3, 2, 1], (Kind::Float, Device::Cpu))),
        )
        .unwrap_err();
        assert!(err.to_string().contains("[N, T]"), "{err}");
        let err =
            Dataset::new(input(), Some(Tensor::zeros([3], (Kind::Bool, Device::Cpu)))).unwrap_err();
        assert!(err.to_string().contains("f32"), "{err}");
    }

    #[test]
    fn mismatched_rows_are_rejected() {
        let input = ModelInput {
            cont: Some(Tensor::zeros([3, 1], (Kind::Float, Device::Cpu))),
            ..Default::default()
        };
        let err =
            Dataset::new(input, Some(Tensor::zeros([4], (Kind::Float, Device::Cpu)))).unwrap_err();
        assert!(err.to_string().contains("target"), "{err}");
    }
}
