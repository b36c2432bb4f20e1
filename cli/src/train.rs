//! `widedeep train`: an experiment file → a run directory.
//!
//! The run directory holds `pipeline/` (the fitted pipeline, [`Pipeline::save`]),
//! `history.json` (per-epoch loss and metrics), `metrics.json` (test metrics and timings),
//! `config.toml` (the resolved experiment: every default written out; training on it again
//! repeats the run), `test_predictions.parquet` (targets and predictions of the test rows, for
//! the report), `background.parquet` (training rows for explanations) and, unless
//! `[explain] method = "none"`, `explanation.json` (attributions of test rows).
use crate::data;
use crate::error::{CliError, Result};
use crate::experiment::{method_of, Loaded};
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;
use widedeep::prelude::*;

/// What a training run produced.
#[derive(Debug)]
pub struct TrainOutcome {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Test metrics (`loss` and each metric of the trainer).
    pub test_metrics: std::collections::BTreeMap<String, f64>,
    /// Epochs run.
    pub epochs: usize,
    /// Seconds spent in `fit`.
    pub fit_seconds: f64,
}

/// The device of an experiment's `device` setting.
pub fn device_of(name: &str) -> Result<Device> {
    Ok(if name == "auto" {
        default_device()?
    } else {
        parse_device(name)?
    })
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    std::fs::write(path, text + "\n").map_err(|e| CliError::io(path, e))
}

/// The run directory for `output` (default `runs/<file stem>`), refusing one that holds
/// anything but an earlier run.
fn run_dir(config: &Path, output: Option<&Path>) -> Result<PathBuf> {
    let dir = match output {
        Some(o) => o.to_path_buf(),
        None => {
            let stem = config.file_stem().and_then(|s| s.to_str()).unwrap_or("run");
            PathBuf::from("runs").join(stem)
        }
    };
    if dir.exists() {
        let ours = ["pipeline", "config.toml", "history.json", "metrics.json"];
        let entries = std::fs::read_dir(&dir).map_err(|e| CliError::io(&dir, e))?;
        let mut empty = true;
        for e in entries.flatten() {
            empty = false;
            let name = e.file_name().to_string_lossy().to_string();
            if ours.contains(&name.as_str()) {
                return Ok(dir);
            }
        }
        if !empty {
            return Err(CliError::Usage(format!(
                "{} exists and is not a run directory; choose another --output",
                dir.display()
            )));
        }
    }
    Ok(dir)
}

/// Trains the experiment of `config` and writes the run directory (see the module docs).
///
/// `overrides` are `--set KEY=VALUE` settings laid over the file (see [`Loaded::read_with`]).
pub fn train(config: &Path, output: Option<&Path>, overrides: &[String]) -> Result<TrainOutcome> {
    let loaded = Loaded::read_with(config, overrides)?;
    let dir = run_dir(config, output)?;
    let e = &loaded.experiment;
    let device = device_of(&e.device)?;

    let mut df = match (&e.data.dataset, &e.data.path) {
        (Some(name), _) => data::dataset(name)?,
        (None, Some(p)) => data::read(&loaded.path(p))?,
        (None, None) => unreachable!("checked by Loaded::read"),
    };
    if let Some(rows) = e.data.rows {
        df = data::sample(&df, rows, e.seed)?;
    }
    let (train_df, test_df) = match &e.data.test {
        Some(t) => (df, data::read(&loaded.path(t))?),
        None => widedeep::datasets::train_test_split(&df, e.data.test_fraction, e.seed)?,
    };
    let val_df = e
        .data
        .validation
        .as_ref()
        .map(|v| data::read(&loaded.path(v)))
        .transpose()?;
    eprintln!(
        "{}: {} training rows, {} test rows{}, device {device:?}",
        config.display(),
        train_df.height(),
        test_df.height(),
        val_df
            .as_ref()
            .map(|v| format!(", {} validation rows", v.height()))
            .unwrap_or_default()
    );

    let mut prep = loaded.preprocessors.clone();
    let train = prep.fit_transform(&train_df)?;
    let val = val_df.as_ref().map(|v| prep.transform(v)).transpose()?;
    let model_cfg = loaded.model_config(&prep)?;
    let trainer_cfg = loaded.trainer_config(&prep)?;
    let model =
        WideDeep::new(&model_cfg, device).map_err(|err| loaded.library_error("model", err))?;
    let mut trainer = Trainer::new(model, trainer_cfg.clone())
        .map_err(|err| loaded.library_error("training", err))?;
    std::fs::create_dir_all(&dir).map_err(|err| CliError::io(&dir, err))?;
    let resolved = loaded.resolved_toml(&model_cfg, &trainer_cfg)?;
    let resolved_path = dir.join("config.toml");
    std::fs::write(&resolved_path, resolved).map_err(|err| CliError::io(&resolved_path, err))?;

    let start = Instant::now();
    trainer.fit(&train, val.as_ref())?;
    let fit_seconds = start.elapsed().as_secs_f64();
    let pipeline = Pipeline::new(prep, trainer);
    let test_metrics = pipeline.evaluate(&test_df, None)?;
    eprintln!(
        "test: {}",
        test_metrics
            .iter()
            .map(|(k, v)| format!("{k} {v:.4}"))
            .collect::<Vec<_>>()
            .join("  ")
    );
    pipeline.save(dir.join("pipeline"))?;
    write_json(&dir.join("history.json"), pipeline.history())?;
    let epochs = pipeline.history().len();
    let summary = serde_json::json!({
        "test": test_metrics,
        "epochs": epochs,
        "fit_seconds": fit_seconds,
        "train_rows": train_df.height(),
        "test_rows": test_df.height(),
        "objective": pipeline.trainer.config().objective,
    });
    write_json(&dir.join("metrics.json"), &summary)?;
    write_test_predictions(&pipeline, &test_df, &dir.join("test_predictions.parquet"))?;
    let mut background = data::sample(&train_df, e.explain.background.max(1), e.seed)?;
    data::write_parquet(&mut background, &dir.join("background.parquet"))?;
    if let Some(method) = method_of(&e.explain.method) {
        let rows = test_df.head(Some(e.explain.rows.max(1)));
        let config = ExplainerConfig::new(method)
            .background_size(e.explain.background.max(1))
            .seed(e.seed);
        let explainer = Explainer::for_pipeline(&pipeline, &background, &config)?;
        let explanation = explainer.explain_df(&rows)?;
        explanation.save_json(dir.join("explanation.json"))?;
    }
    eprintln!("run written to {}", dir.display());
    Ok(TrainOutcome {
        run_dir: dir,
        test_metrics,
        epochs,
        fit_seconds,
    })
}

/// Target (encoded as the model sees it: 0/1, class index, value), prediction and, for
/// classifiers, each class's probability (`proba_<class>`) of the rows of `df`.
pub fn write_test_predictions(pipeline: &Pipeline, df: &DataFrame, path: &Path) -> Result<()> {
    let mut out = crate::predict::prediction_frame(pipeline, df)?;
    let target = pipeline
        .preprocessors
        .target
        .as_ref()
        .ok_or_else(|| CliError::Usage("the pipeline has no target encoder".into()))?;
    let encoded = target.transform(df).map_err(WideDeepError::from)?;
    let values: Vec<f64> = match (encoded.as_f32(), encoded.as_i64()) {
        (Some(f), _) => f.iter().map(|&v| f64::from(v)).collect(),
        (_, Some(i)) => i.iter().map(|&v| v as f64).collect(),
        _ => Vec::new(),
    };
    let values = if pipeline.preprocessors.scales_targets() {
        // a scaled regression target: the original column's values
        df.column(target.column())
            .and_then(|c| c.cast(&DataType::Float64))
            .and_then(|c| {
                c.f64()
                    .map(|c| c.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
            })
            .map_err(|e| CliError::polars("reading the target", e))?
    } else {
        values
    };
    out.with_column(Column::new("target".into(), values))
        .map_err(|e| CliError::polars("test predictions", e))?;
    data::write_parquet(&mut out, path)
}
