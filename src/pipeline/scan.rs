//! Parquet data larger than memory: a [`ParquetScan`] over one file, a folder or a pattern,
//! read page by page (row-group aligned, with Polars' Parquet reader); preprocessors fitted
//! from it in bounded memory ([`Preprocessors::fit_scan`]); and a [`ScanDataset`] that
//! streams training, validation and evaluation batches from it to
//! [`Trainer::fit_stream`](crate::training::Trainer::fit_stream) and
//! [`Trainer::evaluate_stream`](crate::training::Trainer::evaluate_stream).
use super::parquet::{open, Source};
use super::Preprocessors;
use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure};
use crate::training::stream::{BatchSource, Batches};
use crate::training::Dataset;
use polars::prelude::DataFrame;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use tch::Tensor;
use widedeep_preprocessing::stream::FitChunks;

/// Parquet files read page by page: a file, a folder (its `*.parquet` files in name order) or
/// a pattern whose file name has `*` / `?` wildcards (`data/part-*.parquet`; the folder part
/// is literal). Every file must have the schema of the first (same column names, order and
/// types). Pages follow the files' row groups: consecutive groups merged up to `page_rows`
/// rows, a larger group split into slices (see
/// [`ParquetPredict`](crate::pipeline::ParquetPredict)).
pub struct ParquetScan {
    sources: Vec<Source>,
}

/// One page of a scan: file `file`, its page `page`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PageRef {
    file: usize,
    page: usize,
}

/// Whether `name` matches `pattern` (`*`: any run of characters, `?`: one character).
fn wildcard(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|k| wildcard(rest, &name[k..])),
        Some(('?', rest)) => !name.is_empty() && wildcard(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && wildcard(rest, &name[1..]),
    }
}

/// The files `path` names (see [`ParquetScan`]), sorted by name.
fn resolve(path: &Path) -> Result<Vec<PathBuf>> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (dir, pattern) = if path.is_dir() {
        (path.to_path_buf(), "*.parquet".to_string())
    } else if name.contains(['*', '?']) {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (dir, name)
    } else {
        return Ok(vec![path.to_path_buf()]);
    };
    let pattern: Vec<char> = pattern.chars().collect();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| WideDeepError::io(&dir, e))? {
        let entry = entry.map_err(|e| WideDeepError::io(&dir, e))?;
        let file_name: Vec<char> = entry.file_name().to_string_lossy().chars().collect();
        // hidden files (a writer's temporary files) are never data
        if file_name.first() != Some(&'.') && wildcard(&pattern, &file_name) {
            let p = entry.path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    ensure!(
        !files.is_empty(),
        missing(),
        "no Parquet file matches {}",
        path.display()
    );
    Ok(files)
}

impl ParquetScan {
    /// Opens the files `path` names (see [`ParquetScan`]) and plans their pages of at most
    /// `page_rows` rows. Reads only the files' metadata.
    ///
    /// # Errors
    /// - [`WideDeepError::InvalidConfig`] (`page_rows`): 0;
    /// - [`WideDeepError::Missing`]: no file matches, or a file has no rows;
    /// - [`WideDeepError::Io`]: a file or the folder cannot be read (naming it);
    /// - [`WideDeepError::InputMismatch`]: a file is not readable Parquet (truncated,
    ///   another format), or its schema differs from the first file's (naming both files
    ///   and the first differing column).
    pub fn open(path: impl AsRef<Path>, page_rows: usize) -> Result<Self> {
        ensure!(
            page_rows > 0,
            config("page_rows"),
            "must be at least 1 (got 0)"
        );
        let sources = resolve(path.as_ref())?
            .iter()
            .map(|f| open(f, page_rows))
            .collect::<Result<Vec<_>>>()?;
        let first = &sources[0];
        for s in &sources[1..] {
            let a = first.columns.iter().zip(&first.types);
            let b = s.columns.iter().zip(&s.types);
            if let Some(((ca, ta), (cb, tb))) = a.clone().zip(b.clone()).find(|(x, y)| x != y) {
                bail!(
                    input(s.path().display().to_string()),
                    "its schema differs from {}'s: column `{cb}` ({tb}) where that file has \
                     `{ca}` ({ta})",
                    first.path().display()
                );
            }
            ensure!(
                first.columns.len() == s.columns.len(),
                input(s.path().display().to_string()),
                "its schema differs from {}'s: {} columns instead of {}",
                first.path().display(),
                s.columns.len(),
                first.columns.len()
            );
        }
        Ok(Self { sources })
    }

    /// The files, in reading order.
    pub fn files(&self) -> Vec<&Path> {
        self.sources.iter().map(Source::path).collect()
    }

    /// Rows in all files.
    pub fn rows(&self) -> usize {
        self.sources
            .iter()
            .flat_map(|s| s.pages.iter().map(|p| p.1))
            .sum()
    }

    /// Pages in all files.
    pub fn pages(&self) -> usize {
        self.sources.iter().map(|s| s.pages.len()).sum()
    }

    /// The opened files.
    pub(super) fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Every page, file by file.
    fn page_refs(&self) -> Vec<PageRef> {
        self.sources
            .iter()
            .enumerate()
            .flat_map(|(file, s)| (0..s.pages.len()).map(move |page| PageRef { file, page }))
            .collect()
    }

    /// Reads a page.
    fn read(&self, p: PageRef) -> Result<DataFrame> {
        self.sources[p.file].read(p.page)
    }

    /// The rows of page `p`.
    fn page_len(&self, p: PageRef) -> usize {
        self.sources[p.file].pages[p.page].1
    }

    /// `e`, raised on page `p`, naming the file, the page and the row of the file.
    fn error(&self, p: PageRef, e: WideDeepError) -> WideDeepError {
        self.sources[p.file].page_error(p.page, e)
    }
}

/// One preprocessor being fitted from a scan, with what it has accumulated.
trait ScanFit {
    fn passes(&self) -> usize;
    fn update(&mut self, pass: usize, page: &DataFrame) -> Result<()>;
    fn end_pass(&mut self, pass: usize) -> Result<()>;
    fn finish(self: Box<Self>) -> Result<()>;
}

struct Job<'a, P: FitChunks> {
    prep: &'a mut P,
    partial: P::Partial,
}

impl<'a, P: FitChunks> Job<'a, P> {
    fn boxed(prep: &'a mut P) -> Result<Box<dyn ScanFit + 'a>> {
        let partial = prep.begin()?;
        Ok(Box::new(Self { prep, partial }))
    }
}

impl<P: FitChunks> ScanFit for Job<'_, P> {
    fn passes(&self) -> usize {
        self.prep.passes()
    }
    fn update(&mut self, pass: usize, page: &DataFrame) -> Result<()> {
        // rows are counted from the page; the caller moves them to rows of the file
        Ok(self.prep.update(&mut self.partial, pass, page, 0)?)
    }
    fn end_pass(&mut self, pass: usize) -> Result<()> {
        Ok(self.prep.end_pass(&mut self.partial, pass)?)
    }
    fn finish(self: Box<Self>) -> Result<()> {
        let Self { prep, partial } = *self;
        Ok(prep.finish(partial)?)
    }
}

impl Preprocessors {
    /// Fits every preprocessor from every row of `scan`, page by page, in bounded memory:
    /// what is kept between pages is listed in [`widedeep_preprocessing::stream`] (distinct
    /// values of key columns, exact moments, a bounded sample for medians and quantiles,
    /// word counts, pixel sums; a WordPiece or BPE vocabulary is trained in one more pass,
    /// fed the texts page by page). On data with at most 262,144 non-null values per continuous
    /// column the result equals [`Preprocessors::fit`] on all rows in memory; beyond, medians
    /// and quantile edges come from a uniform sample with the rank error bound stated there.
    /// Pages are read on a worker thread while the previous one is processed. A wide
    /// preprocessor that quantizes a column into quantile bins reads the data twice (the
    /// edges first).
    ///
    /// # Errors
    /// - [`WideDeepError::InvalidConfig`]: a sequence preprocessor is set
    ///   (`preprocessors.seq`: its samples span pages), or both `target` and `multi_target`
    ///   are set;
    /// - those of each preprocessor's `fit`, and bad pages, as
    ///   [`WideDeepError::InputMismatch`] naming the column, the file, the page and the row
    ///   of the file.
    pub fn fit_scan(&mut self, scan: &ParquetScan) -> Result<()> {
        ensure!(
            self.seq.is_none(),
            config("preprocessors.seq"),
            "a sequence preprocessor is not fitted from a scan (its samples span pages)"
        );
        ensure!(
            self.target.is_none() || self.multi_target.is_empty(),
            config("multi_target"),
            "set either `target` or `multi_target`, not both"
        );
        let mut jobs: Vec<Box<dyn ScanFit + '_>> = Vec::new();
        if let Some(p) = &mut self.wide {
            jobs.push(Job::boxed(p)?);
        }
        if let Some(p) = &mut self.tab {
            jobs.push(Job::boxed(p)?);
        }
        if let Some(p) = &mut self.target {
            jobs.push(Job::boxed(p)?);
        }
        for p in &mut self.multi_target {
            jobs.push(Job::boxed(p)?);
        }
        // sub-word vocabularies are trained in one call on the texts as they are read, below
        for p in self.text.iter_mut().filter(|p| !p.trains_subwords()) {
            jobs.push(Job::boxed(p)?);
        }
        for p in &mut self.image {
            jobs.push(Job::boxed(p)?);
        }
        let passes = jobs.iter().map(|j| j.passes()).max().unwrap_or(0);
        let pages = scan.page_refs();
        for pass in 0..passes {
            let active: Vec<usize> = (0..jobs.len())
                .filter(|&j| pass < jobs[j].passes())
                .collect();
            let mut failed = None;
            std::thread::scope(|s| {
                let (tx, rx) = sync_channel::<(PageRef, Result<DataFrame>)>(2);
                let pages = &pages;
                s.spawn(move || {
                    for &p in pages {
                        if tx.send((p, scan.read(p))).is_err() {
                            break;
                        }
                    }
                });
                for (p, page) in rx {
                    let step = page.and_then(|page| {
                        active
                            .iter()
                            .try_for_each(|&j| jobs[j].update(pass, &page))
                            .map_err(|e| scan.error(p, e))
                    });
                    if let Err(e) = step {
                        failed = Some(e);
                        break; // dropping `rx` stops the reader
                    }
                }
            });
            if let Some(e) = failed {
                return Err(e);
            }
            for &j in &active {
                jobs[j].end_pass(pass)?;
            }
        }
        for job in jobs {
            job.finish()?;
        }
        for p in self.text.iter_mut().filter(|p| p.trains_subwords()) {
            let failed = std::sync::Mutex::new(None);
            let texts = PageTexts {
                scan,
                prep: p.clone(),
                pages: pages.clone().into_iter(),
                buf: Vec::new().into_iter(),
                failed: &failed,
            };
            let fitted = p.fit_texts(texts);
            if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
                return Err(e);
            }
            fitted?;
        }
        Ok(())
    }
}

/// The non-null texts of a text preprocessor's column, page after page; a page that cannot be
/// read ends the texts and leaves its error in `failed`.
struct PageTexts<'a> {
    scan: &'a ParquetScan,
    prep: widedeep_preprocessing::TextPreprocessor,
    pages: std::vec::IntoIter<PageRef>,
    buf: std::vec::IntoIter<String>,
    failed: &'a std::sync::Mutex<Option<WideDeepError>>,
}

impl Iterator for PageTexts<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        loop {
            if let Some(t) = self.buf.next() {
                return Some(t);
            }
            let p = self.pages.next()?;
            let texts = self.scan.read(p).and_then(|df| {
                self.prep
                    .texts_of(&df)
                    .map_err(|e| self.scan.error(p, e.into()))
            });
            match texts {
                Ok(texts) => self.buf = texts.into_iter(),
                Err(e) => {
                    if let Ok(mut f) = self.failed.lock() {
                        f.get_or_insert(e);
                    }
                    return None;
                }
            }
        }
    }
}

/// Options of [`Dataset::scan`].
///
/// Shuffling (on by default): every epoch visits the pages in a fresh seeded random order,
/// and rows are permuted within windows of `shuffle_buffer` consecutive rows of that page
/// order (whole pages are added to a window until it holds at least `shuffle_buffer` rows; the
/// rows left over after the last full batch of a window start the next one). Rows of one
/// page therefore stay within one or two windows of each other: with `shuffle_buffer` at
/// least the data set's row count this is a full uniform shuffle, with a smaller buffer
/// it is a shuffle of pages plus a local shuffle of rows — the usual trade of streaming
/// loaders (TensorFlow's `shuffle(buffer_size)`, WebDataset). Write the files in random
/// row order, or with small row groups, when rows of one row group are alike.
///
/// ```
/// use widedeep::pipeline::ScanOptions;
/// let o = ScanOptions::default().shuffle_buffer(100_000).workers(2);
/// assert!(o.shuffle);
/// assert_eq!((o.page_rows, o.shuffle_buffer, o.workers), (65_536, 100_000, 2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanOptions {
    /// The most rows read at once per page (default 65,536).
    pub page_rows: usize,
    /// Whether batches are shuffled (see the type's documentation; default true).
    pub shuffle: bool,
    /// Rows permuted together when shuffling (default 262,144).
    pub shuffle_buffer: usize,
    /// Threads reading and transforming pages ahead of the training loop (default 1).
    pub workers: usize,
    /// Pages each worker prepares ahead (default 2).
    pub prefetch: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            page_rows: 65_536,
            shuffle: true,
            shuffle_buffer: 262_144,
            workers: 1,
            prefetch: 2,
        }
    }
}

impl ScanOptions {
    /// Sets `page_rows`.
    pub fn page_rows(mut self, v: usize) -> Self {
        self.page_rows = v;
        self
    }
    /// Sets `shuffle`.
    pub fn shuffle(mut self, v: bool) -> Self {
        self.shuffle = v;
        self
    }
    /// Sets `shuffle_buffer`.
    pub fn shuffle_buffer(mut self, v: usize) -> Self {
        self.shuffle_buffer = v;
        self
    }
    /// Sets `workers`.
    pub fn workers(mut self, v: usize) -> Self {
        self.workers = v;
        self
    }
    /// Sets `prefetch`.
    pub fn prefetch(mut self, v: usize) -> Self {
        self.prefetch = v;
        self
    }
}

/// Training, validation or evaluation data streamed from Parquet files through fitted
/// preprocessors ([`Dataset::scan`]): a [`BatchSource`] for
/// [`Trainer::fit_stream`](crate::training::Trainer::fit_stream) and
/// [`Trainer::evaluate_stream`](crate::training::Trainer::evaluate_stream). Memory is bounded
/// by the pages in flight (`workers × prefetch`) plus the shuffle buffer.
pub struct ScanDataset {
    scan: Arc<ParquetScan>,
    prep: Arc<Preprocessors>,
    options: ScanOptions,
}

impl Dataset {
    /// Streams the Parquet data `path` names (a file, a folder or a pattern, see
    /// [`ParquetScan`]) through the fitted `prep`, page by page: pages are read and
    /// transformed on `options.workers` threads ahead of the training loop, then cut into
    /// batches (shuffled as [`ScanOptions`] says).
    ///
    /// # Errors
    /// - those of [`ParquetScan::open`];
    /// - [`WideDeepError::InvalidConfig`]: `workers`, `prefetch` or `shuffle_buffer` is 0,
    ///   or a sequence preprocessor is set (`preprocessors.seq`: its samples span pages).
    ///
    /// Reading and transforming errors come with the batches, naming the file, the page
    /// and the row of the file.
    pub fn scan(
        path: impl AsRef<Path>,
        prep: &Preprocessors,
        options: ScanOptions,
    ) -> Result<ScanDataset> {
        for (field, v) in [
            ("workers", options.workers),
            ("prefetch", options.prefetch),
            ("shuffle_buffer", options.shuffle_buffer),
        ] {
            ensure!(v > 0, config(field), "must be at least 1 (got 0)");
        }
        ensure!(
            prep.seq.is_none(),
            config("preprocessors.seq"),
            "a sequence preprocessor builds each sample from earlier rows, which may lie in \
             another page; it cannot stream"
        );
        Ok(ScanDataset {
            scan: Arc::new(ParquetScan::open(path, options.page_rows)?),
            prep: Arc::new(prep.clone()),
            options,
        })
    }
}

impl ScanDataset {
    /// The files read.
    pub fn scan(&self) -> &ParquetScan {
        &self.scan
    }

    /// Page `p` read and transformed (with its target when the preprocessors have one).
    fn page(scan: &ParquetScan, prep: &Preprocessors, p: PageRef) -> Result<Dataset> {
        let df = scan.read(p)?;
        let data = prep.transform(&df).map_err(|e| scan.error(p, e))?;
        if let Some(t) = &prep.target {
            ensure!(
                data.target.is_some(),
                input(t.column()),
                "{} has no target column `{}`",
                scan.sources[p.file].path().display(),
                t.column()
            );
        }
        Ok(data)
    }

    /// The transformed pages in `order`, prepared by the worker threads.
    fn pages(&self, order: Vec<PageRef>) -> impl Iterator<Item = Result<Dataset>> {
        let workers = self.options.workers.min(order.len()).max(1);
        let receivers: Vec<Receiver<Result<Dataset>>> = (0..workers)
            .map(|w| {
                let (tx, rx) = sync_channel(self.options.prefetch);
                let mine: Vec<PageRef> = order.iter().skip(w).step_by(workers).copied().collect();
                let (scan, prep) = (Arc::clone(&self.scan), Arc::clone(&self.prep));
                std::thread::spawn(move || {
                    for p in mine {
                        let _guard = tch::no_grad_guard();
                        if tx.send(Self::page(&scan, &prep, p)).is_err() {
                            break; // the epoch was abandoned
                        }
                    }
                });
                rx
            })
            .collect();
        (0..order.len()).map(move |k| {
            receivers[k % workers].recv().unwrap_or_else(|_| {
                Err(WideDeepError::Missing(
                    "a page worker stopped without a result".into(),
                ))
            })
        })
    }
}

impl ScanDataset {
    /// The pages of epoch `epoch` in reading order (shuffled from `seed` and the epoch when
    /// shuffling is on) and the generator of the row shuffle.
    fn epoch_order(&self, epoch: usize, seed: u64) -> (Vec<PageRef>, Option<ChaCha8Rng>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1 + epoch as u64);
        let mut order = self.scan.page_refs();
        if self.options.shuffle {
            order.shuffle(&mut rng);
        }
        (order, self.options.shuffle.then_some(rng))
    }

    /// Batches of `batch_size` rows over `pages`, then `pad` rows of padding.
    fn rebatch(
        &self,
        pages: Vec<PageRef>,
        batch_size: usize,
        rng: Option<ChaCha8Rng>,
        pad: usize,
    ) -> Rebatch<'_> {
        let window = if rng.is_some() {
            self.options.shuffle_buffer.max(batch_size)
        } else {
            batch_size
        };
        Rebatch {
            pages: Box::new(self.pages(pages)),
            held: Vec::new(),
            held_rows: 0,
            ready: VecDeque::new(),
            rng,
            window,
            batch_size: batch_size as i64,
            state: State::Reading,
            pad,
            pad_source: Vec::new(),
            pad_kept: 0,
        }
    }
}

impl BatchSource for ScanDataset {
    fn rows(&self) -> usize {
        self.scan.rows()
    }

    fn batches(&self, epoch: usize, batch_size: usize, seed: u64) -> Result<Batches<'_>> {
        ensure!(batch_size > 0, config("batch_size"), "must be at least 1");
        let (order, rng) = self.epoch_order(epoch, seed);
        Ok(Box::new(self.rebatch(order, batch_size, rng, 0)))
    }

    /// Rank `rank` reads the pages at positions `rank`, `rank + world`, … of the epoch's page
    /// order (disjoint row groups on every rank), shuffled as in [`batches`](Self::batches),
    /// then repeats its first rows up to [`shard_rows`](Self::shard_rows).
    fn shard(
        &self,
        epoch: usize,
        batch_size: usize,
        seed: u64,
        rank: usize,
        world: usize,
    ) -> Result<(Batches<'_>, usize)> {
        ensure!(batch_size > 0, config("batch_size"), "must be at least 1");
        let (order, rng) = self.epoch_order(epoch, seed);
        ensure!(
            order.len() >= world && rank < world,
            config("page_rows"),
            "{} pages for {world} ranks: every rank needs a page of its own; use smaller pages",
            order.len()
        );
        let mine: Vec<PageRef> = order.iter().skip(rank).step_by(world).copied().collect();
        let real: usize = mine.iter().map(|&p| self.scan.page_len(p)).sum();
        let pad = self.shard_rows(world) - real;
        Ok((Box::new(self.rebatch(mine, batch_size, rng, pad)), real))
    }

    /// The rows of the `ceil(pages / world)` largest pages: no rank's share is larger, so
    /// every rank pads to it (at most about one page of padding per rank; smaller pages pad
    /// less).
    fn shard_rows(&self, world: usize) -> usize {
        let mut sizes: Vec<usize> = self
            .scan
            .page_refs()
            .into_iter()
            .map(|p| self.scan.page_len(p))
            .collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        sizes.iter().take(sizes.len().div_ceil(world.max(1))).sum()
    }
}

#[derive(PartialEq, Eq)]
enum State {
    Reading,
    Exhausted,
    Failed,
}

/// Cuts a stream of pages into batches: pages are gathered until `window` rows, (shuffled,)
/// cut into full batches; the rest starts the next window, or is the last batch.
struct Rebatch<'a> {
    pages: Box<dyn Iterator<Item = Result<Dataset>> + 'a>,
    held: Vec<Dataset>,
    held_rows: usize,
    ready: VecDeque<Dataset>,
    rng: Option<ChaCha8Rng>,
    window: usize,
    batch_size: i64,
    state: State,
    /// Rows of padding still to add after the last page (distributed shards).
    pad: usize,
    /// The first rows read, kept (up to `pad` of them) to pad with.
    pad_source: Vec<Dataset>,
    pad_kept: usize,
}

impl Rebatch<'_> {
    /// Reads pages until a window is full or the pages end; cuts the window into `ready`.
    fn fill(&mut self) -> Result<()> {
        while self.held_rows < self.window {
            match self.pages.next() {
                Some(page) => {
                    let page = page?;
                    if self.pad_kept < self.pad {
                        let keep = (self.pad - self.pad_kept).min(page.len() as usize);
                        self.pad_source.push(page.slice(0, keep as i64));
                        self.pad_kept += keep;
                    }
                    self.held_rows += page.len() as usize;
                    self.held.push(page);
                }
                None => {
                    self.state = State::Exhausted;
                    break;
                }
            }
        }
        if self.held.is_empty() && self.state == State::Exhausted && self.pad > 0 {
            // the real rows ended with a full batch: the padding alone is left
            self.held.push(self.padding()?);
            self.pad = 0;
        }
        if self.held.is_empty() {
            return Ok(());
        }
        let mut all = Dataset::concat(&std::mem::take(&mut self.held))?;
        self.held_rows = 0;
        if let Some(rng) = &mut self.rng {
            let mut perm: Vec<i64> = (0..all.len()).collect();
            perm.shuffle(rng);
            all = all.select(&Tensor::from_slice(&perm));
        }
        if self.state == State::Exhausted && self.pad > 0 {
            // the padding goes last, after the (shuffled) real rows
            all = Dataset::concat(&[all, self.padding()?])?;
            self.pad = 0;
        }
        let n = all.len();
        let full = n / self.batch_size * self.batch_size;
        for start in (0..full).step_by(self.batch_size as usize) {
            self.ready.push_back(all.slice(start, self.batch_size));
        }
        if full < n {
            let rest = all.slice(full, n - full);
            if self.state == State::Exhausted {
                self.ready.push_back(rest);
            } else {
                // a copy, so that this window's memory is freed before the next one is read
                let index = Tensor::arange_start(0, n - full, (tch::Kind::Int64, rest.device()));
                let rest = rest.select(&index);
                self.held_rows = rest.len() as usize;
                self.held.push(rest);
            }
        }
        Ok(())
    }
}

impl Rebatch<'_> {
    /// `pad` rows: the kept first rows, repeated as often as needed.
    fn padding(&self) -> Result<Dataset> {
        ensure!(
            self.pad_kept > 0,
            WideDeepError::Missing("no rows to pad a shard with".into())
        );
        let mut parts = Vec::new();
        let mut left = self.pad;
        while left > 0 {
            for piece in &self.pad_source {
                let take = left.min(piece.len() as usize);
                if take > 0 {
                    parts.push(piece.slice(0, take as i64));
                    left -= take;
                }
            }
        }
        Dataset::concat(&parts)
    }
}

impl Iterator for Rebatch<'_> {
    type Item = Result<Dataset>;

    fn next(&mut self) -> Option<Result<Dataset>> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Some(Ok(b));
            }
            if self.state != State::Reading {
                return None;
            }
            if let Err(e) = self.fill() {
                self.state = State::Failed;
                return Some(Err(e));
            }
        }
    }
}
