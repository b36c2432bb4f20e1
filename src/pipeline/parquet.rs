//! Prediction and evaluation straight from Parquet files, page by page, so that memory is
//! bounded by one page of rows rather than by the file (see [`ParquetPredict`]).
use super::{unused_sibling, Pipeline};
use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure};
use crate::training::trainer::{check_finite_record, check_finite_rows};
use crate::training::Metric;
use polars::io::parquet::metadata::FileMetadataRef;
use polars::prelude::{
    Column, DataFrame, IntoColumn, NamedFrom, ParquetReader, ParquetWriter, SerReader, Series,
};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};
use widedeep_preprocessing::PreprocessingError;

/// Options of [`Pipeline::predict_parquet`].
///
/// The input is read in pages of consecutive rows with Polars' own Parquet reader:
/// consecutive row groups are merged into one page while they fit in `batch_rows`, and a row
/// group larger than `batch_rows` is split into equal slices of at most `batch_rows` rows
/// (decoded slice by slice), so pages follow the file's row groups where they can. Each page
/// goes through the preprocessors and the model exactly as [`Pipeline::predict`] and
/// [`Pipeline::predict_proba`] would process it.
///
/// ```
/// use widedeep::pipeline::ParquetPredict;
/// let options = ParquetPredict::default().batch_rows(10_000).keep(["id"]).overwrite(true);
/// assert_eq!(options.batch_rows, 10_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParquetPredict {
    /// The most rows held in memory at once (one page; default 65 536).
    pub batch_rows: usize,
    /// Input columns copied to the output before the predictions, in this order (an id, a
    /// key); none by default.
    pub keep: Vec<String>,
    /// Whether an existing output file may be replaced (default false: an existing output is
    /// an error and is left untouched).
    pub overwrite: bool,
}

impl Default for ParquetPredict {
    fn default() -> Self {
        Self {
            batch_rows: 65_536,
            keep: Vec::new(),
            overwrite: false,
        }
    }
}

impl ParquetPredict {
    /// Sets `batch_rows`.
    pub fn batch_rows(mut self, v: usize) -> Self {
        self.batch_rows = v;
        self
    }
    /// Sets `keep`, the input columns copied to the output.
    pub fn keep<S: Into<String>>(mut self, v: impl IntoIterator<Item = S>) -> Self {
        self.keep = v.into_iter().map(Into::into).collect();
        self
    }
    /// Sets `overwrite`.
    pub fn overwrite(mut self, v: bool) -> Self {
        self.overwrite = v;
        self
    }
}

/// What [`Pipeline::predict_parquet`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParquetPredictReport {
    /// Rows written (the input's rows).
    pub rows: usize,
    /// Pages processed (each one write to the output).
    pub pages: usize,
    /// The output file.
    pub output: PathBuf,
}

/// A Parquet file opened for reading page by page.
pub(super) struct Source {
    path: PathBuf,
    metadata: FileMetadataRef,
    pub(super) columns: Vec<String>,
    /// The Arrow type of each column, in `columns` order (to compare files' schemas).
    pub(super) types: Vec<String>,
    /// `(first row, rows)` of each page.
    pub(super) pages: Vec<(usize, usize)>,
}

/// Pages over row groups of `groups` rows each: consecutive groups merged while they fit in
/// `batch_rows`, a larger group split into equal slices of at most `batch_rows`.
fn plan_pages(groups: &[usize], batch_rows: usize) -> Vec<(usize, usize)> {
    let mut pages = Vec::new();
    let (mut start, mut len) = (0usize, 0usize);
    for &n in groups.iter().filter(|&&n| n > 0) {
        if len > 0 && len + n > batch_rows {
            pages.push((start, len));
            start += len;
            len = 0;
        }
        if n > batch_rows {
            let k = n.div_ceil(batch_rows);
            for i in 0..k {
                let part = n / k + usize::from(i < n % k);
                pages.push((start, part));
                start += part;
            }
        } else {
            len += n;
        }
    }
    if len > 0 {
        pages.push((start, len));
    }
    pages
}

/// Opens `path` and plans its pages.
pub(super) fn open(path: &Path, batch_rows: usize) -> Result<Source> {
    ensure!(
        batch_rows > 0,
        config("batch_rows"),
        "must be at least 1 (got 0)"
    );
    let file = File::open(path).map_err(|e| WideDeepError::io(path, e))?;
    let unreadable = |e: polars::prelude::PolarsError| WideDeepError::InputMismatch {
        input: path.display().to_string(),
        reason: format!("not a readable Parquet file: {e}"),
    };
    let mut reader = ParquetReader::new(file);
    let schema = reader.schema().map_err(unreadable)?;
    let columns = schema.iter_names().map(|n| n.to_string()).collect();
    let types = schema
        .iter_values()
        .map(|f| format!("{:?}", f.dtype()))
        .collect();
    let metadata = reader.get_metadata().map_err(unreadable)?.clone();
    let groups: Vec<usize> = metadata.row_groups.iter().map(|g| g.num_rows()).collect();
    let pages = plan_pages(&groups, batch_rows);
    ensure!(
        !pages.is_empty(),
        missing(),
        "{} has no rows",
        path.display()
    );
    Ok(Source {
        path: path.to_path_buf(),
        metadata,
        columns,
        types,
        pages,
    })
}

/// The column a preprocessing error names.
fn column_of(e: &PreprocessingError) -> Option<&str> {
    use PreprocessingError as P;
    match e {
        P::NonFinite { column, .. }
        | P::OutOfRange { column, .. }
        | P::InvalidUtf8 { column, .. }
        | P::NullValue { column, .. }
        | P::BadImage { column, .. }
        | P::MissingColumn { column }
        | P::WrongType { column, .. }
        | P::AllNull { column }
        | P::DtypeChanged { column, .. }
        | P::UnknownClass { column, .. } => Some(column),
        _ => None,
    }
}

impl Source {
    /// The file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Where page `i` is: file, page number and row range.
    fn at(&self, i: usize) -> String {
        let (start, len) = self.pages[i];
        format!(
            "{}, page {} of {} (rows {start}..{})",
            self.path.display(),
            i + 1,
            self.pages.len(),
            start + len
        )
    }

    /// `e`, raised on page `i`, with the file, the page and its row range: data errors become
    /// [`WideDeepError::InputMismatch`] naming the column (a row number in the message is the
    /// row of the file, counted from 0); a non-finite model output stays
    /// [`WideDeepError::NonFiniteResult`].
    pub(super) fn page_error(&self, i: usize, e: WideDeepError) -> WideDeepError {
        let at = self.at(i);
        match e {
            WideDeepError::Preprocessing(p) => {
                let p = p.offset_rows(self.pages[i].0);
                let column = column_of(&p);
                WideDeepError::InputMismatch {
                    input: column.map_or_else(|| self.path.display().to_string(), String::from),
                    reason: format!("{at}: {p} (row of the file)"),
                }
            }
            WideDeepError::Polars(p) => WideDeepError::InputMismatch {
                input: self.path.display().to_string(),
                reason: format!("{at}: {p}"),
            },
            WideDeepError::InputMismatch { input, reason } => WideDeepError::InputMismatch {
                input,
                reason: format!("{at}: {reason}"),
            },
            WideDeepError::NonFiniteResult {
                what,
                value,
                reason,
            } => WideDeepError::NonFiniteResult {
                what: format!("{what} (counted from the page's first row) in {at}"),
                value,
                reason,
            },
            other => other,
        }
    }

    /// Reads page `i`.
    pub(super) fn read(&self, i: usize) -> Result<DataFrame> {
        let (start, len) = self.pages[i];
        let file = File::open(&self.path).map_err(|e| WideDeepError::io(&self.path, e))?;
        let mut reader = ParquetReader::new(file).with_slice(Some((start, len)));
        reader.set_metadata(self.metadata.clone());
        reader
            .finish()
            .map_err(|e| self.page_error(i, WideDeepError::Polars(e)))
    }
}

/// The tensor `t` (`[N]` or `[N, k]`) as columns named `name` (`[N]`) or `name_{j}`.
fn tensor_columns(t: &Tensor, name: &str) -> Result<Vec<Column>> {
    let t = t.to_device(tch::Device::Cpu);
    let parts: Vec<(String, Tensor)> = match t.dim() {
        1 => vec![(name.to_string(), t)],
        2 => (0..t.size()[1])
            .map(|j| (format!("{name}_{j}"), t.select(1, j)))
            .collect(),
        d => bail!(
            input(name),
            "a {d}-dimensional prediction cannot be written as columns"
        ),
    };
    parts
        .into_iter()
        .map(|(col, t)| {
            let series = if t.kind() == Kind::Int64 {
                Series::new(col.as_str().into(), Vec::<i64>::try_from(t.contiguous())?)
            } else {
                let v = Vec::<f32>::try_from(t.to_kind(Kind::Float).contiguous())?;
                Series::new(col.as_str().into(), v)
            };
            Ok(series.into_column())
        })
        .collect()
}

impl Pipeline {
    /// A page-by-page pass needs every row on its own: a sequence preprocessor builds samples
    /// from the rows before them, which another page may hold.
    fn check_pageable(&self) -> Result<()> {
        ensure!(
            self.preprocessors.seq.is_none(),
            config("preprocessors.seq"),
            "a sequence preprocessor builds each sample from earlier rows, which may lie in \
             another page; predict on a DataFrame instead"
        );
        Ok(())
    }

    /// The raw model outputs of page `i` of `source`, and its encoded target when the page
    /// has the target column.
    ///
    /// # Shapes
    /// - returns `[rows, pred_dim]` f32 on the CPU, and the target `[rows]` (`[rows, T]`)
    fn page_outputs(
        &self,
        source: &Source,
        i: usize,
    ) -> Result<(DataFrame, Tensor, Option<Tensor>)> {
        let page = source.read(i)?;
        let (raw, target) = (|| -> Result<(Tensor, Option<Tensor>)> {
            let data = self.preprocessors.transform(&page)?;
            Ok((self.trainer.predict_raw(&data)?, data.target))
        })()
        .map_err(|e| source.page_error(i, e))?;
        Ok((page, raw, target))
    }

    /// Predicts on the Parquet file `input` and writes the predictions to the Parquet file
    /// `output`, page by page: at most `options.batch_rows` rows are in memory at once (see
    /// [`ParquetPredict`] for how pages follow the row groups). The predictions are those of
    /// [`Pipeline::predict`] / [`Pipeline::predict_proba`] on each page; on the whole file
    /// they agree to float rounding (the model's matrix products may round differently for
    /// batches of different sizes), class predictions exactly but at exact ties.
    ///
    /// The output has one row per input row, in order, with the columns:
    /// - the `options.keep` columns, copied from the input;
    /// - `prediction`: what [`Pipeline::predict`] returns — the class index (i64) for a
    ///   classifier, the value (f32, in the target's units when the target was scaled) for a
    ///   regression; a prediction of several columns (quantiles, multi-target) is written as
    ///   `prediction_0`, `prediction_1`, …;
    /// - for a single-target classifier whose encoder knows its classes, `prediction_label`:
    ///   the class label (string form, as in [`TargetEncoder::classes`]);
    /// - for a classifier, `proba_<class>` per class, in class order: the probabilities of
    ///   [`Pipeline::predict_proba`] (`<class>` is the encoder's class label, or the index
    ///   when the labels are unknown). A multi-target model writes no probabilities.
    ///
    /// The file is written to a temporary file beside `output` (`.<name>.tmp-<pid>-<n>`),
    /// renamed to `output` only once every page has succeeded: an error at any page leaves
    /// neither an output nor a temporary file. An existing `output` is an error unless
    /// `options.overwrite` is set.
    ///
    /// # Errors
    /// - [`WideDeepError::InvalidConfig`]: `batch_rows` is 0 (`batch_rows`), `output` exists
    ///   without `overwrite` (`overwrite`) or is a directory or the input (`output`), a kept
    ///   column is listed twice or clashes with an output column (`keep`), a sequence
    ///   preprocessor is set (`preprocessors.seq`: its samples span pages);
    /// - [`WideDeepError::Io`]: `input` cannot be opened, `output` cannot be written (naming
    ///   the path);
    /// - [`WideDeepError::InputMismatch`]: `input` is not readable Parquet, lacks a kept
    ///   column, or a page's data is bad (a preprocessing error: the input is the column, and
    ///   the reason names the file, the page and its row range);
    /// - [`WideDeepError::NonFiniteResult`]: the model overflows on a row (naming the page);
    /// - [`WideDeepError::Missing`]: `input` has no rows.
    ///
    /// [`TargetEncoder::classes`]: widedeep_preprocessing::TargetEncoder::classes
    pub fn predict_parquet(
        &self,
        input: impl AsRef<Path>,
        output: impl AsRef<Path>,
        options: &ParquetPredict,
    ) -> Result<ParquetPredictReport> {
        let (input, output) = (input.as_ref(), output.as_ref());
        self.check_pageable()?;
        match std::fs::symlink_metadata(output) {
            Ok(m) if m.is_dir() => bail!(
                config("output"),
                "{} is a directory, not a file",
                output.display()
            ),
            Ok(_) if !options.overwrite => bail!(
                config("overwrite"),
                "{} exists; set `overwrite(true)` to replace it",
                output.display()
            ),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!(WideDeepError::io(output, e)),
        }
        if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize()) {
            ensure!(
                a != b,
                config("output"),
                "{} is the input file; write the predictions elsewhere",
                output.display()
            );
        }
        let source = open(input, options.batch_rows)?;
        for (i, k) in options.keep.iter().enumerate() {
            ensure!(
                source.columns.contains(k),
                input(k.as_str()),
                "{} has no column `{k}` to keep",
                input.display()
            );
            ensure!(
                !options.keep[..i].contains(k),
                config("keep"),
                "column `{k}` is listed twice"
            );
        }
        let name = output
            .file_name()
            .ok_or_else(|| {
                WideDeepError::config("output", format!("{} has no file name", output.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let parent = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = unused_sibling(&parent, &name, "tmp");
        let written = self
            .write_predictions(&source, &tmp, output, options)
            .and_then(|rows| {
                std::fs::rename(&tmp, output)
                    .map_err(|e| WideDeepError::io(output, e))
                    .map(|_| rows)
            });
        match written {
            Ok(rows) => Ok(ParquetPredictReport {
                rows,
                pages: source.pages.len(),
                output: output.to_path_buf(),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Writes the predictions of every page of `source` to `tmp`; returns the rows written.
    fn write_predictions(
        &self,
        source: &Source,
        tmp: &Path,
        output: &Path,
        options: &ParquetPredict,
    ) -> Result<usize> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .map_err(|e| WideDeepError::io(tmp, e))?;
        let sync = file.try_clone().map_err(|e| WideDeepError::io(tmp, e))?;
        let write_error = |e: polars::prelude::PolarsError| {
            WideDeepError::io(
                output,
                std::io::Error::other(format!("writing Parquet: {e}")),
            )
        };
        let mut pages = (0..source.pages.len()).map(|i| self.prediction_page(source, i, options));
        let first = pages.next().expect("a source has at least one page")?;
        let mut rows = first.height();
        let mut writer = ParquetWriter::new(file)
            .batched(first.schema())
            .map_err(write_error)?;
        writer.write_batch(&first).map_err(write_error)?;
        drop(first);
        for page in pages {
            let page = page?;
            rows += page.height();
            writer.write_batch(&page).map_err(write_error)?;
        }
        writer.finish().map_err(write_error)?;
        drop(writer);
        sync.sync_all().map_err(|e| WideDeepError::io(tmp, e))?;
        Ok(rows)
    }

    /// The output rows of page `i`: kept columns, predictions, probabilities.
    fn prediction_page(
        &self,
        source: &Source,
        i: usize,
        options: &ParquetPredict,
    ) -> Result<DataFrame> {
        let (page, raw, _) = self.page_outputs(source, i)?;
        let objective = &self.trainer.config().objective;
        let mut pred = objective.predict(&raw);
        if self.preprocessors.scales_targets() {
            pred = self.preprocessors.unscale(objective, &pred, false)?;
            check_finite_rows(&pred).map_err(|e| source.page_error(i, e))?;
        }
        let mut columns = options
            .keep
            .iter()
            .map(|k| page.column(k).cloned())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| source.page_error(i, WideDeepError::Polars(e)))?;
        drop(page);
        columns.extend(tensor_columns(&pred, "prediction")?);
        let encoder = self
            .preprocessors
            .target
            .as_ref()
            .filter(|e| e.n_classes() > 0);
        if let Some(enc) = encoder.filter(|_| pred.dim() == 1 && pred.kind() == Kind::Int64) {
            let labels: Vec<Option<&str>> = Vec::<i64>::try_from(pred.contiguous())?
                .into_iter()
                .map(|c| usize::try_from(c).ok().and_then(|c| enc.label_of(c)))
                .collect();
            columns.push(Series::new("prediction_label".into(), labels).into_column());
        }
        if let Ok(proba) = objective.predict_proba(&raw) {
            if proba.dim() == 2 {
                let n_classes = proba.size()[1];
                for j in 0..n_classes {
                    let class = match encoder {
                        Some(enc) if enc.n_classes() as i64 == n_classes => {
                            enc.classes()[j as usize].clone()
                        }
                        _ => j.to_string(),
                    };
                    let v = Vec::<f32>::try_from(proba.select(1, j).contiguous())?;
                    columns.push(Series::new(format!("proba_{class}").into(), v).into_column());
                }
            }
        }
        for (k, c) in columns.iter().enumerate() {
            ensure!(
                !columns[..k].iter().any(|o| o.name() == c.name()),
                config("keep"),
                "the output column `{}` appears twice (a kept column clashes with a \
                 prediction column, or two classes share a label)",
                c.name()
            );
        }
        let mut df = DataFrame::new(raw.size()[0] as usize, columns)?;
        df.align_chunks_par();
        Ok(df)
    }

    /// Loss and metrics of [`Pipeline::evaluate`] on the Parquet file `input`, which must hold
    /// the target column, reading at most `batch_rows` rows at a time.
    ///
    /// The model outputs and targets of every page are kept (`rows × pred_dim` numbers, not
    /// the input columns) and the loss and metrics are computed once over all of them, as
    /// [`Pipeline::evaluate`] does on the whole frame: ROC AUC and the other metrics are exact,
    /// not averages over pages.
    ///
    /// # Errors
    /// As [`Pipeline::predict_parquet`], plus [`WideDeepError::Missing`] when a page lacks the
    /// target column.
    pub fn evaluate_parquet(
        &self,
        input: impl AsRef<Path>,
        batch_rows: usize,
        metrics: Option<&[Metric]>,
    ) -> Result<BTreeMap<String, f64>> {
        self.check_pageable()?;
        let source = open(input.as_ref(), batch_rows)?;
        let mut outputs = Vec::with_capacity(source.pages.len());
        let mut targets = Vec::with_capacity(source.pages.len());
        for i in 0..source.pages.len() {
            let (_, raw, target) = self.page_outputs(&source, i)?;
            let target = target.ok_or_else(|| {
                WideDeepError::Missing(format!(
                    "{}: no target column to evaluate against",
                    source.at(i)
                ))
            })?;
            outputs.push(raw);
            targets.push(target);
        }
        self.evaluate_outputs(
            &Tensor::cat(&outputs, 0),
            &Tensor::cat(&targets, 0),
            metrics,
        )
    }

    /// The record of [`Pipeline::evaluate`] from the raw outputs of every row and their
    /// targets: the loss averaged over evaluation batches as the trainer does, the metrics
    /// over all rows (in the target's units for a scaled regression target).
    ///
    /// # Shapes
    /// - `outputs`: `[N, pred_dim]`; `target`: `[N]` (`[N, T]` multi-target)
    fn evaluate_outputs(
        &self,
        outputs: &Tensor,
        target: &Tensor,
        metrics: Option<&[Metric]>,
    ) -> Result<BTreeMap<String, f64>> {
        let config = self.trainer.config();
        let objective = &config.objective;
        objective.check_target(target)?;
        let n = outputs.size()[0];
        let step = config.eval_batch_size.max(1) as i64;
        let mut loss_sum = 0f64;
        for start in (0..n).step_by(step as usize) {
            let len = step.min(n - start);
            let loss = objective.loss(
                &outputs.narrow(0, start, len),
                &target.narrow(0, start, len),
            );
            loss_sum += loss.double_value(&[]) * len as f64;
        }
        let mut record = BTreeMap::from([("loss".to_string(), loss_sum / n.max(1) as f64)]);
        let metrics = metrics.unwrap_or(&config.metrics);
        let scores = objective.scores(outputs);
        for m in metrics {
            record.extend(m.compute_named(objective, &scores, target)?);
        }
        if self.preprocessors.scales_targets() {
            let scores = self.preprocessors.unscale(objective, &scores, true)?;
            let target = self.preprocessors.unscale(objective, target, false)?;
            for m in metrics {
                if matches!(m, Metric::R2 | Metric::Rmse | Metric::Mae) {
                    record.extend(m.compute_named(objective, &scores, &target)?);
                }
            }
        }
        check_finite_record(&record)?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::plan_pages;

    #[test]
    fn pages_follow_row_groups() {
        // small groups merge while they fit
        assert_eq!(plan_pages(&[3, 3, 3], 6), vec![(0, 6), (6, 3)]);
        // a large group is split into equal slices of at most batch_rows
        assert_eq!(plan_pages(&[10], 4), vec![(0, 4), (4, 3), (7, 3)]);
        // a pending page is closed before a large group; empty groups are skipped
        assert_eq!(
            plan_pages(&[2, 0, 9, 1], 4),
            vec![(0, 2), (2, 3), (5, 3), (8, 3), (11, 1)]
        );
        assert_eq!(plan_pages(&[5, 5], 100), vec![(0, 10)]);
        assert!(plan_pages(&[0], 3).is_empty());
    }
}
