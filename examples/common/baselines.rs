//! Classical baselines from linfa on the same preprocessed columns the deep models see, so the
//! examples' tables show what the deep models add: logistic regression (binary targets) and
//! ordinary least squares (regression), on the one-hot encoded categorical codes and the
//! imputed, scaled continuous columns of the fitted `TabPreprocessor`.
//!
//! Included by the examples with `#[path = "common/baselines.rs"] mod baselines;`.
#![allow(dead_code)]

use anyhow::{anyhow, Result};
use linfa::traits::{Fit as _, Predict as _};
use linfa_linear::LinearRegression;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use std::time::Instant;
use widedeep::polars::prelude::DataFrame;
use widedeep::prelude::*;
use widedeep::preprocessing::TabData;
use widedeep::training::metrics::{binary_auc, r2, rmse};

/// Test metrics of a baseline, and its fit time in seconds.
pub struct Baseline {
    pub name: &'static str,
    /// `(metric name, value)` on the test rows, in print order.
    pub scores: Vec<(&'static str, f64)>,
    pub fit_secs: f64,
}

impl std::fmt::Display for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:", self.name)?;
        for (k, v) in &self.scores {
            write!(f, " test {k} {v:.4}")?;
        }
        write!(f, "  (fit in {:.1}s)", self.fit_secs)
    }
}

/// `[n_rows, Σ (cardinality − 1) + n_cont]`: each categorical code one-hot encoded (code 0,
/// null/unseen, is the all-zero reference), then the continuous columns.
fn design(tab: &TabData, cardinalities: &[usize]) -> Array2<f64> {
    let n = tab.cat.nrows();
    let width: usize = cardinalities.iter().map(|c| c - 1).sum::<usize>() + tab.cont.ncols();
    let mut x = Array2::<f64>::zeros((n, width));
    for r in 0..n {
        let mut offset = 0;
        for (j, &card) in cardinalities.iter().enumerate() {
            let code = tab.cat[[r, j]];
            if code > 0 && (code as usize) < card {
                x[[r, offset + code as usize - 1]] = 1.0;
            }
            offset += card - 1;
        }
        for (k, v) in tab.cont.row(r).iter().enumerate() {
            x[[r, offset + k]] = f64::from(*v);
        }
    }
    x
}

/// The design matrix and the `f32` target of `df` through the fitted preprocessors.
fn xy(prep: &Preprocessors, df: &DataFrame) -> Result<(Array2<f64>, Vec<f32>)> {
    let tab = prep
        .tab
        .as_ref()
        .ok_or_else(|| anyhow!("no tabular preprocessor"))?
        .transform(df)?;
    let cards: Vec<usize> = prep.tab_meta()?.cat.iter().map(|c| c.cardinality).collect();
    let target = prep
        .target
        .as_ref()
        .ok_or_else(|| anyhow!("no target encoder"))?
        .transform(df)?;
    let y = target
        .as_f32()
        .ok_or_else(|| anyhow!("the baselines need a binary or regression target"))?
        .to_vec();
    Ok((design(&tab, &cards), y))
}

/// L2-regularised logistic regression (linfa-logistic, L-BFGS) on the fitted `prep`'s tabular
/// columns: test accuracy and ROC AUC.
pub fn logistic_regression(
    prep: &Preprocessors,
    train: &DataFrame,
    test: &DataFrame,
) -> Result<Baseline> {
    let (x, y) = xy(prep, train)?;
    let labels: Array1<usize> = y.iter().map(|&v| (v > 0.5) as usize).collect();
    let start = Instant::now();
    let model = LogisticRegression::default()
        .alpha(1e-4)
        .max_iterations(100)
        .fit(&linfa::Dataset::new(x, labels))?;
    let fit_secs = start.elapsed().as_secs_f64();
    let (xt, yt) = xy(prep, test)?;
    // linfa's "positive" class is the more frequent one: orient to P(label 1)
    let flip = model.labels().pos.class != 1;
    let p: Vec<f32> = model
        .predict_probabilities(&xt)
        .iter()
        .map(|&v| if flip { 1.0 - v } else { v } as f32)
        .collect();
    let truth: Vec<i64> = yt.iter().map(|&v| (v > 0.5) as i64).collect();
    let accuracy = p
        .iter()
        .zip(&truth)
        .filter(|(p, t)| ((**p > 0.5) as i64) == **t)
        .count() as f64
        / truth.len() as f64;
    Ok(Baseline {
        name: "logistic regression (linfa)",
        scores: vec![("accuracy", accuracy), ("AUC", binary_auc(&p, &truth))],
        fit_secs,
    })
}

/// Ordinary least squares (linfa-linear) on the fitted `prep`'s tabular columns: test R² and
/// RMSE.
pub fn linear_regression(
    prep: &Preprocessors,
    train: &DataFrame,
    test: &DataFrame,
) -> Result<Baseline> {
    let (x, y) = xy(prep, train)?;
    let y: Array1<f64> = y.iter().map(|&v| f64::from(v)).collect();
    let start = Instant::now();
    let model = LinearRegression::default().fit(&linfa::Dataset::new(x, y))?;
    let fit_secs = start.elapsed().as_secs_f64();
    let (xt, yt) = xy(prep, test)?;
    let p: Vec<f32> = model.predict(&xt).iter().map(|&v| v as f32).collect();
    Ok(Baseline {
        name: "linear regression (linfa)",
        scores: vec![("R2", r2(&p, &yt)), ("RMSE", rmse(&p, &yt))],
        fit_secs,
    })
}
