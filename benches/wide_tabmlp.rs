//! Side-by-side benchmark: Wide + TabMlp on Adult, widedeep vs pytorch-widedeep 1.7.0 (same
//! libtorch 2.11.0, same columns, split, hyper-parameters and batch size), printing a markdown
//! table of preprocessing time, seconds per epoch, inference rows/s, peak memory and test
//! accuracy/AUC with the ratios.
//!
//! Run: `make bench-wide-tabmlp` (installs the reference into its own venv via
//! scripts/setup-bench-env.sh), or `cargo bench --bench wide_tabmlp` with `WIDEDEEP_BENCH_PYTHON`
//! pointing at a python that has pytorch-widedeep. `WIDEDEEP_BENCH_REPLICATE=21` stacks Adult 21×
//! (~1M rows) for the scaling run.
use anyhow::{Context, Result};
use polars::prelude::*;
use std::process::Command;
use std::time::Instant;
use widedeep::datasets;
use widedeep::prelude::*;

const WIDE: [&str; 8] = [
    "education",
    "relationship",
    "workclass",
    "occupation",
    "native-country",
    "gender",
    "capital-gain",
    "capital-loss",
];
const CAT: [&str; 10] = [
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "native-country",
    "capital-gain",
    "capital-loss",
];
const CONT: [&str; 3] = ["age", "educational-num", "hours-per-week"];

#[derive(serde::Deserialize, Debug)]
struct Figures {
    #[serde(rename = "impl")]
    name: String,
    prep_s: f64,
    epoch_s: f64,
    #[serde(default)]
    epoch_macs: f64,
    infer_rows_s: f64,
    peak_mb: f64,
    accuracy: f64,
    auc: f64,
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn ours(epochs: usize, batch: usize, replicate: usize) -> Result<Figures> {
    let adult = datasets::adult()?;
    let mut df = adult.clone();
    for _ in 1..replicate {
        df.vstack_mut(&adult)?;
    }
    df.rechunk_mut();
    // the same split as the reference script: every fifth row is a test row
    let is_test: BooleanChunked = (0..df.height()).map(|i| i % 5 == 0).collect();
    let test_df = df.filter(&is_test)?;
    let train_df = df.filter(&!&is_test)?;

    let t = Instant::now();
    let crossed = vec![
        vec!["education".to_string(), "occupation".to_string()],
        vec!["native-country".to_string(), "occupation".to_string()],
    ];
    let mut prep = Preprocessors::new()
        .wide(WidePreprocessor::new(&WIDE).crossed_cols(crossed))
        .tab(TabPreprocessor::new(&CAT, &CONT))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df)?;
    let test = prep.transform(&test_df)?;
    let prep_s = t.elapsed().as_secs_f64();

    let model = WideDeepConfig::new()
        .wide(WideConfig::new(prep.wide_dim()?))
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta()?)
                .cont_norm(ContNorm::BatchNorm)
                .mlp(MlpConfig::default().hidden_dims([64, 32]).dropout(0.1)),
        );
    let model = WideDeep::new(&model, Device::Cpu)?;
    let config = TrainerConfig::new(Objective::Binary)
        .epochs(epochs)
        .batch_size(batch)
        .verbose(0);
    let mut trainer = Trainer::new(model, config)?;
    // multiply-adds of one epoch: the MLP's dense layers and the projection, forward plus a
    // backward of about twice the forward (the embedding and wide lookups are gathers, no MACs)
    let width: i64 = prep
        .tab_meta()?
        .cat
        .iter()
        .map(|c| c.embed_dim as i64)
        .sum::<i64>()
        + CONT.len() as i64;
    let forward_macs = (width * 64 + 64 * 32 + 32) as f64;
    let epoch_macs = 3.0 * forward_macs * train.len() as f64;
    let t = Instant::now();
    trainer.fit(&train, None)?;
    let epoch_s = t.elapsed().as_secs_f64() / epochs as f64;

    let t = Instant::now();
    let proba = trainer.predict_proba(&test)?;
    let infer_rows_s = test.len() as f64 / t.elapsed().as_secs_f64();
    let (p, y) = (
        proba.select(1, 1),
        test.target.as_ref().context("test target")?,
    );
    let objective = Objective::Binary;
    Ok(Figures {
        name: format!("widedeep {}", env!("CARGO_PKG_VERSION")),
        prep_s,
        epoch_s,
        epoch_macs,
        infer_rows_s,
        peak_mb: peak_rss_mb(),
        accuracy: Metric::Accuracy.compute(&objective, &p, y)?,
        auc: Metric::Auc.compute(&objective, &p, y)?,
    })
}

/// Measured f32 matmul throughput of this machine (FLOP/s) on 1024×1024 products.
fn matmul_flops() -> f64 {
    let a = tch::Tensor::randn([1024, 1024], (tch::Kind::Float, Device::Cpu));
    let _ = a.matmul(&a); // warm-up
    let reps = 20;
    let t = Instant::now();
    for _ in 0..reps {
        let _ = a.matmul(&a);
    }
    2.0 * 1024f64.powi(3) * reps as f64 / t.elapsed().as_secs_f64()
}

fn reference(
    python: &str,
    epochs: usize,
    batch: usize,
    replicate: usize,
    workers: usize,
) -> Result<Figures> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/reference/wide_tabmlp.py"
    );
    let data = datasets::datasets_dir().join("adult.parquet");
    let out = Command::new(python)
        .arg(script)
        .arg("--data")
        .arg(&data)
        .args([
            "--epochs",
            &epochs.to_string(),
            "--batch-size",
            &batch.to_string(),
        ])
        .args([
            "--num-workers",
            &workers.to_string(),
            "--replicate",
            &replicate.to_string(),
        ])
        .output()
        .with_context(|| format!("running {python} {script}"))?;
    anyhow::ensure!(
        out.status.success(),
        "reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let json = line
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("no JSON from the reference")?;
    Ok(serde_json::from_str(json)?)
}

fn main() -> Result<()> {
    let replicate: usize = std::env::var("WIDEDEEP_BENCH_REPLICATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let epochs = if replicate > 1 { 1 } else { 5 };
    let batch = 256;
    let python = std::env::var("WIDEDEEP_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    let ours = ours(epochs, batch, replicate)?;
    let refs = [
        (0, reference(&python, epochs, batch, replicate, 0)?),
        (
            threads,
            reference(&python, epochs, batch, replicate, threads)?,
        ),
    ];
    println!(
        "Adult ×{replicate} ({} rows), Wide + TabMlp [64, 32], batch {batch}, {epochs} epoch(s), {threads} CPU threads\n",
        48_842 * replicate
    );
    println!("| implementation | preprocessing s | s/epoch | inference rows/s | peak MB | test accuracy | test AUC |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let row = |label: &str, f: &Figures| {
        println!(
            "| {label} | {:.3} | {:.3} | {:.0} | {:.0} | {:.4} | {:.4} |",
            f.prep_s, f.epoch_s, f.infer_rows_s, f.peak_mb, f.accuracy, f.auc
        )
    };
    row(&ours.name, &ours);
    for (w, r) in &refs {
        row(&format!("{} (num_workers={w})", r.name), r);
    }
    let flops = matmul_flops();
    let bound = 2.0 * ours.epoch_macs / flops;
    println!(
        "\nFLOP lower bound of a TabMlp epoch: {:.2e} multiply-adds at {:.1} GFLOP/s (1024² matmul) = {:.4} s; measured {:.3} s ({:.0}× the bound: the batches are small, so per-op overhead, not arithmetic, dominates)",
        ours.epoch_macs,
        flops / 1e9,
        bound,
        ours.epoch_s,
        ours.epoch_s / bound
    );
    let (_, fastest) = &refs[0];
    println!(
        "\nratios vs the reference at num_workers=0: preprocessing {:.1}×, epoch {:.1}×, inference {:.1}×, peak memory {:.2}×, accuracy {:+.4}",
        fastest.prep_s / ours.prep_s,
        fastest.epoch_s / ours.epoch_s,
        ours.infer_rows_s / fastest.infer_rows_s,
        ours.peak_mb / fastest.peak_mb,
        ours.accuracy - fastest.accuracy
    );
    Ok(())
}
