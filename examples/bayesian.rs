//! Bayes by Backprop on UCI Adult (bundled): a `BayesianTabMlp` (the reference's default
//! architecture: Bayesian embeddings, Bayesian dense layers 200-100, leaky ReLU, scale-mixture
//! prior) trained by the `BayesianTrainer` (ELBO, two sampled networks per step), beside the
//! deterministic `TabMlp` with the same layers, on the split and tabular columns of
//! `examples/adult.rs` (80% train, 20% test, seed 42).
//!
//! Prints a markdown table of accuracy, ROC AUC and expected calibration error (15 equal-width
//! bins of the predicted class's probability) on the test rows: TabMlp; BayesianTabMlp with
//! the posterior-mean weights (what the reference's `predict_proba` returns); BayesianTabMlp
//! averaged over 30 sampled networks, with the mean per-row spread of p(>50K). Then saves the
//! Bayesian pipeline, loads it back and checks that it predicts the same.
//!
//! The training rows (in training order) and test rows go to `target/widedeep-bayesian/split.json`, which
//! `benches/bayesian_reference.py` reads to train pytorch-widedeep's `BayesianTabMlp` on the
//! same rows; when its `reference.json` is there, its figures are printed too.
//!
//! Run: `cargo run --release --example bayesian`.
use anyhow::Result;
use polars::prelude::*;
use std::path::Path;
use std::time::Instant;
use widedeep::datasets;
use widedeep::datasets::adult_columns::{CATEGORICAL, CONTINUOUS};
use widedeep::prelude::*;
use widedeep::tch::{Kind, Tensor};

const EPOCHS: usize = 5;
const BATCH: usize = 256;
const SAMPLES: usize = 30;

/// Expected calibration error with `bins` equal-width bins of the confidence `max(p, 1 − p)`
/// of binary probabilities `p` against 0/1 labels `y`.
fn ece(p: &[f32], y: &[f32], bins: usize) -> f64 {
    let mut count = vec![0usize; bins];
    let mut conf = vec![0f64; bins];
    let mut correct = vec![0f64; bins];
    for (&p, &y) in p.iter().zip(y) {
        let (c, pred) = if p > 0.5 { (p, 1.0) } else { (1.0 - p, 0.0) };
        // bin i holds confidences in (i/bins, (i+1)/bins]
        let b = ((c as f64 * bins as f64).ceil() as usize).clamp(1, bins) - 1;
        count[b] += 1;
        conf[b] += c as f64;
        correct[b] += (pred == y) as u8 as f64;
    }
    let n = p.len() as f64;
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| (correct[b] - conf[b]).abs() / n)
        .sum()
}

/// Accuracy, AUC and ECE of positive-class probabilities `p` `[N]` against `y` `[N]`.
fn scores(p: &Tensor, y: &Tensor) -> Result<(f64, f64, f64)> {
    let objective = Objective::Binary;
    let acc = Metric::Accuracy.compute(&objective, p, y)?;
    let auc = Metric::Auc.compute(&objective, p, y)?;
    let pv = Vec::<f32>::try_from(p.to_kind(Kind::Float).contiguous())?;
    let yv = Vec::<f32>::try_from(y.to_kind(Kind::Float).contiguous())?;
    Ok((acc, auc, ece(&pv, &yv, 15)))
}

fn main() -> Result<()> {
    let start = Instant::now();
    // one intra-op thread: the fastest setting for models this small (as in the benchmarks)
    widedeep::tch::set_num_threads(1);
    let device = default_device()?;
    let df = datasets::adult()?.with_row_index("row".into(), None)?;
    let (train_df, test_df) = datasets::train_test_split(&df, 0.2, 42)?;
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/widedeep-bayesian");
    std::fs::create_dir_all(&out)?;
    let rows = |d: &DataFrame| -> Result<Vec<u32>> {
        Ok(d.column("row")?.u32()?.into_no_null_iter().collect())
    };
    // the rows in the order trained on (no shuffling: the reference's procedure)
    std::fs::write(
        out.join("split.json"),
        serde_json::to_string(&serde_json::json!({
            "train_rows": rows(&train_df)?,
            "test_rows": rows(&test_df)?,
        }))?,
    )?;
    println!(
        "Adult: {} training rows, {} test rows, device {device:?}; {EPOCHS} epochs, batch \
         {BATCH}, Adam lr 1e-3",
        train_df.height(),
        test_df.height()
    );

    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&CATEGORICAL, &CONTINUOUS))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df)?;
    let test = prep.transform(&test_df)?;
    let y = test.target.as_ref().expect("test target").shallow_clone();

    // the deterministic TabMlp with the same layers
    let t = Instant::now();
    let tab_mlp = WideDeepConfig::new()
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta()?).mlp(
                MlpConfig::default()
                    .hidden_dims([200, 100])
                    .activation(Activation::LeakyRelu),
            ),
        )
        .seed(1);
    let mut det = Trainer::new(
        WideDeep::new(&tab_mlp, device)?,
        TrainerConfig::new(prep.objective()?)
            .epochs(EPOCHS)
            .batch_size(BATCH)
            .lr(1e-3)
            .seed(1)
            .verbose(0),
    )?;
    det.fit(&train, None)?;
    let det_p = det.predict_proba(&test)?.select(1, 1);
    let det_s = t.elapsed().as_secs_f64();

    // BayesianTabMlp with the reference's procedure: no shuffling, two networks per step
    let t = Instant::now();
    let model = BayesianModel::new(
        &BayesianModelConfig::new(
            BayesianTabMlpConfig::from_meta(&prep.tab_meta()?).hidden_dims([200, 100]),
        )
        .seed(1),
        device,
    )?;
    println!(
        "BayesianTabMlp: {} trainable parameters (μ and ρ of every weight)",
        model.n_parameters()
    );
    let mut bayes = BayesianTrainer::new(
        model,
        BayesianTrainerConfig::new(prep.objective()?)
            .optimizer(Optimizer::adam())
            .weight_decay(0.0)
            .lr(1e-3)
            .epochs(EPOCHS)
            .batch_size(BATCH)
            .n_train_samples(2)
            .shuffle(false)
            .seed(1)
            .verbose(0),
    )?;
    bayes.fit(&train, None)?;
    let bayes_s = t.elapsed().as_secs_f64();
    let mean_w = Objective::Binary.scores(&bayes.predict_raw_mean_weights(&test)?);
    let u = bayes.predict_uncertainty(&test, SAMPLES)?;
    let sampled = u.mean.select(1, 1);
    let spread = u.std.select(1, 1).mean(Kind::Double).double_value(&[]);

    println!("\n| model | accuracy | ROC AUC | ECE (15 bins) | mean per-row std of p | fit s |");
    println!("|---|---:|---:|---:|---:|---:|");
    let row = |name: &str, p: &Tensor, std: Option<f64>, secs: Option<f64>| -> Result<()> {
        let (acc, auc, e) = scores(p, &y)?;
        let opt = |v: Option<f64>, d: usize| v.map_or("–".to_string(), |v| format!("{v:.d$}"));
        println!(
            "| {name} | {acc:.4} | {auc:.4} | {e:.4} | {} | {} |",
            opt(std, 4),
            opt(secs, 1)
        );
        Ok(())
    };
    row("TabMlp (deterministic)", &det_p, None, Some(det_s))?;
    row(
        "BayesianTabMlp, posterior-mean weights",
        &mean_w,
        None,
        Some(bayes_s),
    )?;
    row(
        &format!("BayesianTabMlp, mean of {SAMPLES} sampled networks"),
        &sampled,
        Some(spread),
        None,
    )?;
    if let Ok(text) = std::fs::read_to_string(out.join("reference.json")) {
        let r: serde_json::Value = serde_json::from_str(&text)?;
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "| pytorch-widedeep 1.7.0 BayesianTabMlp, posterior-mean weights | {:.4} | {:.4} | \
             {:.4} | – | – |",
            f("accuracy"),
            f("auc"),
            f("ece"),
        );
        println!(
            "| pytorch-widedeep 1.7.0 BayesianTabMlp, mean of {SAMPLES} sampled networks | \
             {:.4} | {:.4} | {:.4} | {:.4} | – |",
            f("sampled_accuracy"),
            f("sampled_auc"),
            f("sampled_ece"),
            f("sampled_std")
        );
    } else {
        println!(
            "\n(run `python benches/bayesian_reference.py` with the bench venv for the \
             reference's figures on the same split)"
        );
    }

    let pipeline = BayesianPipeline::new(prep, bayes);
    let dir = std::env::temp_dir().join("widedeep-bayesian-pipeline");
    pipeline.save(&dir)?;
    let loaded = BayesianPipeline::load(&dir, device)?;
    let same = pipeline
        .predict_proba(&test_df, 5)?
        .equal(&loaded.predict_proba(&test_df, 5)?);
    println!(
        "\nsaved to {} and reloaded: identical 5-sample predictions = {same}; total {:.1}s",
        dir.display(),
        start.elapsed().as_secs_f64()
    );
    anyhow::ensure!(same, "the reloaded pipeline predicts differently");
    Ok(())
}
