//! The FT-Transformer rows of the `low_labels` comparison, both sides on the same rows:
//! contrastive–denoising pretraining on every Adult training row (labels unused), then
//! fine-tuning on 1% and 5% of the training labels, against the same FT-Transformer trained
//! from scratch on the same rows; three seeds. Ours: `examples/common/low_labels_cd.rs`; the
//! reference: `benches/low_labels_cd_reference.py` (pytorch-widedeep 1.7.0's
//! `ContrastiveDenoisingTrainer` then `Trainer`, the same settings), given the same row
//! indices as JSON. Split: every fifth Adult row is a test row (the suite's split); the
//! labelled rows are the first 1% / 5% of the training rows shuffled by the seed.
//!
//! Run: `cargo bench --bench low_labels_cd` (reference side with the bench venv, as `make
//! bench`). Environment: `LOW_LABELS_SEEDS` (default `1,2,3`), `LOW_LABELS_SIDE` (`both`,
//! `ours`, `reference`), `WIDEDEEP_BENCH_VENV` (default `~/.cache/widedeep/bench-venv`).
#[path = "../examples/common/low_labels_cd.rs"]
mod low_labels_cd;

use anyhow::Result;
use polars::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use widedeep::datasets;
use widedeep::prelude::*;

const FRACTIONS: [f64; 2] = [0.01, 0.05];

fn venv_python() -> Option<PathBuf> {
    let dir = std::env::var("WIDEDEEP_BENCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/widedeep/bench-venv")
        });
    let py = dir.join("bin/python");
    py.exists().then_some(py)
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

fn main() -> Result<()> {
    let seeds: Vec<u64> = std::env::var("LOW_LABELS_SEEDS")
        .unwrap_or_else(|_| "1,2,3".into())
        .split(',')
        .map(|s| anyhow::Context::context(s.trim().parse::<u64>(), "LOW_LABELS_SEEDS"))
        .collect::<Result<_>>()?;
    let side = std::env::var("LOW_LABELS_SIDE").unwrap_or_else(|_| "both".into());
    // one intra-op thread on both sides (as the suite): on this shared 2-core machine more
    // threads only contend
    tch::set_num_threads(1);
    let df = datasets::adult()?;
    let n = df.height();
    let is_test: BooleanChunked = (0..n).map(|i| i % 5 == 0).collect();
    let (train_df, test_df) = (df.filter(&!&is_test)?, df.filter(&is_test)?);
    let train_rows: Vec<usize> = (0..n).filter(|i| i % 5 != 0).collect();
    let test_rows: Vec<usize> = (0..n).filter(|i| i % 5 == 0).collect();
    let out_dir = PathBuf::from("target/low_labels_cd");
    std::fs::create_dir_all(&out_dir)?;
    let device = default_device()?;
    let prep = low_labels_cd::fitted_preprocessors(&train_df)?;
    let train = prep.transform(&train_df)?;
    let test = prep.transform(&test_df)?;
    // (fraction, seed) → [ours scratch, ours pretrained, reference scratch, reference pretrained]
    let mut table: BTreeMap<(String, u64), [f64; 4]> = BTreeMap::new();
    for &seed in &seeds {
        let mut order: Vec<usize> = (0..train_rows.len()).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let labelled: BTreeMap<String, Vec<usize>> = FRACTIONS
            .iter()
            .map(|&f| {
                let k = (f * train_rows.len() as f64).round() as usize;
                (format!("{f}"), order[..k].to_vec())
            })
            .collect();
        let file = out_dir.join(format!("rows_seed{seed}.json"));
        std::fs::write(
            &file,
            serde_json::to_string(&serde_json::json!({
                "train_rows": train_rows, "test_rows": test_rows,
                "labelled": labelled, "seed": seed,
            }))?,
        )?;
        if side != "reference" {
            let t = Instant::now();
            let pre = low_labels_cd::pretrain(&prep, &train, seed, device)?;
            let pre_s = t.elapsed().as_secs_f64();
            for (f, rows) in &labelled {
                let t = Instant::now();
                let (s, p) = low_labels_cd::compare_with(&prep, &pre, &train, &test, rows, seed)?;
                eprintln!(
                    "ours seed {seed} {f}: scratch {s:.4} pretrained {p:.4} (pretraining {pre_s:.0} s, fine-tuning {:.0} s)",
                    t.elapsed().as_secs_f64()
                );
                let e = table.entry((f.clone(), seed)).or_insert([f64::NAN; 4]);
                e[0] = s;
                e[1] = p;
            }
        }
        if side != "ours" {
            let Some(py) = venv_python() else {
                eprintln!("no bench venv: reference side skipped");
                continue;
            };
            let t = Instant::now();
            let out = Command::new(py)
                .arg("benches/low_labels_cd_reference.py")
                .arg("--rows")
                .arg(&file)
                .arg("--data-dir")
                .arg(datasets::datasets_dir())
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "reference failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let res: BTreeMap<String, [f64; 2]> = serde_json::from_slice(
                out.stdout
                    .split(|&b| b == b'\n')
                    .rfind(|l| !l.is_empty())
                    .unwrap_or(&[]),
            )?;
            for (f, [s, p]) in res {
                eprintln!(
                    "reference seed {seed} {f}: scratch {s:.4} pretrained {p:.4} ({:.0} s in all)",
                    t.elapsed().as_secs_f64()
                );
                let e = table.entry((f, seed)).or_insert([f64::NAN; 4]);
                e[2] = s;
                e[3] = p;
            }
        }
    }
    println!("| labels | seed | widedeep scratch | widedeep pretrained | reference scratch | reference pretrained |");
    println!("|---|---|---|---|---|---|");
    for ((f, seed), v) in &table {
        println!(
            "| {:.0}% | {seed} | {:.4} | {:.4} | {:.4} | {:.4} |",
            f.parse::<f64>()? * 100.0,
            v[0],
            v[1],
            v[2],
            v[3]
        );
    }
    for f in FRACTIONS {
        let key = format!("{f}");
        let col = |i: usize| -> Vec<f64> {
            table
                .iter()
                .filter(|((k, _), _)| *k == key)
                .map(|(_, v)| v[i])
                .collect()
        };
        let cells: Vec<String> = (0..4)
            .map(|i| {
                let (m, s) = mean_sd(&col(i));
                format!("{m:.4} ± {s:.4}")
            })
            .collect();
        println!("| {:.0}% | mean ± sd | {} |", f * 100.0, cells.join(" | "));
    }
    Ok(())
}
