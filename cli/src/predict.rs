//! `widedeep evaluate`, `predict` and `explain` over a saved pipeline.
use crate::data;
use crate::error::{CliError, Result};
use crate::experiment::method_of;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use widedeep::prelude::*;
use widedeep::tch::Kind;

/// Loads the pipeline saved in `dir`.
pub fn load(dir: &Path, device: Device) -> Result<Pipeline> {
    Ok(Pipeline::load(dir, device)?)
}

/// The class names of a classifier's target (empty for regression).
pub fn classes(pipeline: &Pipeline) -> Vec<String> {
    match &pipeline.preprocessors.target {
        Some(t) if t.kind() != TargetKind::Regression => t.classes().to_vec(),
        _ => Vec::new(),
    }
}

/// Predictions of the rows of `df`: `prediction` (the class name for classifiers, the value
/// for regression) and, for classifiers, `proba_<class>` per class.
pub fn prediction_frame(pipeline: &Pipeline, df: &DataFrame) -> Result<DataFrame> {
    let classes = classes(pipeline);
    let n = df.height();
    let mut columns = Vec::new();
    if classes.is_empty() {
        let pred = pipeline.predict(df)?;
        let values = tensor_f64(&pred)?;
        columns.push(Column::new("prediction".into(), values));
    } else {
        let proba = pipeline.predict_proba(df)?;
        let k = classes.len();
        let p = tensor_f64(&proba)?;
        if p.len() != n * k {
            return Err(CliError::Usage(format!(
                "the model gave {} probabilities for {n} rows of {k} classes",
                p.len()
            )));
        }
        let labels: Vec<String> = (0..n)
            .map(|i| {
                let row = &p[i * k..(i + 1) * k];
                let best = (0..k)
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0);
                classes[best].clone()
            })
            .collect();
        columns.push(Column::new("prediction".into(), labels));
        for (c, name) in classes.iter().enumerate() {
            let v: Vec<f64> = (0..n).map(|i| p[i * k + c]).collect();
            columns.push(Column::new(format!("proba_{name}").into(), v));
        }
    }
    DataFrame::new(n, columns).map_err(|e| CliError::polars("predictions", e))
}

/// A tensor's values as f64, row-major.
pub fn tensor_f64(t: &widedeep::tch::Tensor) -> Result<Vec<f64>> {
    let flat = t
        .f_to_kind(Kind::Double)
        .and_then(|t| t.f_flatten(0, -1))
        .map_err(|e| CliError::Library(e.into()))?;
    Vec::<f64>::try_from(&flat).map_err(|e| CliError::Library(e.into()))
}

/// `evaluate`: the loss and the pipeline's metrics on `data` (which holds the target).
pub fn evaluate(pipeline: &Pipeline, data_path: &Path) -> Result<BTreeMap<String, f64>> {
    if is_parquet(data_path) {
        Ok(pipeline.evaluate_parquet(data_path, 65_536, None)?)
    } else {
        Ok(pipeline.evaluate(&data::read(data_path)?, None)?)
    }
}

fn is_parquet(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("parquet" | "pq")
    )
}

/// `predict`: writes the predictions of `input` to the Parquet file `output`, the `keep`
/// columns first. Returns the number of rows.
pub fn predict(
    pipeline: &Pipeline,
    input: &Path,
    output: &Path,
    keep: &[String],
    overwrite: bool,
) -> Result<usize> {
    if is_parquet(input) {
        let options = ParquetPredict::default()
            .keep(keep.iter().cloned())
            .overwrite(overwrite);
        let report = pipeline.predict_parquet(input, output, &options)?;
        return Ok(report.rows);
    }
    if output.exists() && !overwrite {
        return Err(CliError::Usage(format!(
            "{} exists; pass --overwrite to replace it",
            output.display()
        )));
    }
    let df = data::read(input)?;
    let preds = prediction_frame(pipeline, &df)?;
    let mut columns = Vec::new();
    for k in keep {
        let c = df.column(k).map_err(|_| {
            CliError::Usage(format!("--keep {k}: no such column in {}", input.display()))
        })?;
        columns.push(c.clone());
    }
    columns.extend(preds.columns().iter().cloned());
    let mut out =
        DataFrame::new(df.height(), columns).map_err(|e| CliError::polars("predictions", e))?;
    data::write_parquet(&mut out, output)?;
    Ok(df.height())
}

/// `explain`: attributions of the rows of `data` (at most `rows`) against `background` rows
/// (default: a sample of `data`); writes `explanation.json`, `importance.json`, and the bar and
/// beeswarm plots (PNG) into `plots`. Returns the global importance, largest first.
pub fn explain(
    pipeline: &Pipeline,
    data_path: &Path,
    background: Option<&Path>,
    method: &str,
    rows: usize,
    plots_dir: &Path,
) -> Result<Vec<(String, f64)>> {
    let method = method_of(method).ok_or_else(|| {
        CliError::Usage(format!(
            "--method {method}: expected gradient_shap, integrated_gradients, kernel_shap or \
             permutation"
        ))
    })?;
    let df = data::read(data_path)?;
    let bg = match background {
        Some(p) => data::read(p)?,
        None => data::sample(&df, 100, 0)?,
    };
    let config = ExplainerConfig::new(method)
        .background_size(bg.height().clamp(1, 100))
        .seed(0);
    let explainer = Explainer::for_pipeline(pipeline, &bg, &config)?;
    let explanation = explainer.explain_df(&df.head(Some(rows.max(1))))?;
    std::fs::create_dir_all(plots_dir).map_err(|e| CliError::io(plots_dir, e))?;
    explanation.save_json(plots_dir.join("explanation.json"))?;
    let importance = explanation.global_importance();
    let ranked = importance.ranked();
    crate::train::write_json(
        &plots_dir.join("importance.json"),
        &ranked.iter().cloned().collect::<BTreeMap<_, _>>(),
    )?;
    let opts = plots::PlotOptions::default();
    plots::bar(&importance, plots_dir.join("importance.png"), &opts)?;
    plots::beeswarm(&explanation, 0, plots_dir.join("beeswarm.png"), &opts)?;
    Ok(ranked)
}
