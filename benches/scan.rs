//! Training from Parquet larger than memory (`make bench-scan`): Adult ×20 (≈1M rows) and
//! Adult ×200 (≈10M rows) as Parquet folders in a temporary directory, then for each, in a
//! fresh process so that its peak memory is its own:
//!
//! - **streamed**: `Preprocessors::fit_scan` + one epoch of Wide + TabMlp with
//!   `Trainer::fit_stream` over `Dataset::scan` (shuffled, default options);
//! - **in memory**: every file read into one DataFrame, `Preprocessors::fit`, `transform`,
//!   one epoch of the same model with `Trainer::fit` (shuffled);
//!
//! and pytorch-widedeep 1.7.0's chunked fit (`ChunkWidePreprocessor` +
//! `ChunkTabPreprocessor`, `partial_fit` over `pandas.read_csv(chunksize=…)`, the
//! `load_from_folder` route) on the ×20 data as CSV, beside our `fit_scan` of the same rows.
//! Then two bad-data checks on the ×200 folder: a null target and a string in a numeric column
//! at row 7,000,000.
//!
//! `cargo bench --bench scan -- [--small 20] [--large 200] [--batch 1024] [--threads 2]
//! [--no-reference]`
#[path = "../examples/common/adult_model.rs"]
mod adult_model;
mod common;

use anyhow::{bail, Context, Result};
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use widedeep::datasets::{self, adult_columns};
use widedeep::pipeline::{ParquetScan, ScanOptions};
use widedeep::prelude::*;

/// Rows per file written (one Adult copy is 48,842 rows; files of two copies).
const COPIES_PER_FILE: usize = 2;

fn preprocessors() -> Preprocessors {
    Preprocessors::new()
        .wide(WidePreprocessor::new(&adult_columns::WIDE).crossed_cols(adult_columns::crossed()))
        .tab(TabPreprocessor::new(
            &adult_columns::CATEGORICAL,
            &adult_columns::CONTINUOUS,
        ))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"))
}

fn trainer(prep: &Preprocessors, batch: usize) -> Result<Trainer> {
    let model = WideDeep::new(&adult_model::wide_tabmlp(prep)?, Device::Cpu)?;
    Ok(Trainer::new(
        model,
        TrainerConfig::new(prep.objective()?)
            .epochs(1)
            .batch_size(batch)
            .seed(1)
            .verbose(0),
    )?)
}

/// Peak resident memory of this process so far, in MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Writes `copies` copies of Adult as `copies / COPIES_PER_FILE` Parquet files in `dir` (row
/// groups of 65,536 rows), unless a complete set is there.
fn generate(dir: &Path, copies: usize) -> Result<()> {
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let adult = datasets::adult()?;
    let mut block = adult.clone();
    for _ in 1..COPIES_PER_FILE {
        block.vstack_mut(&adult)?;
    }
    block.rechunk_mut_par();
    for k in 0..copies / COPIES_PER_FILE {
        let file = std::fs::File::create(dir.join(format!("part-{k:04}.parquet")))?;
        ParquetWriter::new(file)
            .with_row_group_size(Some(65_536))
            .finish(&mut block.clone())?;
    }
    std::fs::write(done, "")?;
    Ok(())
}

/// One measurement in this (child) process; prints one JSON line.
fn child(mode: &str, dir: &Path, batch: usize) -> Result<()> {
    let t = Instant::now();
    let mut prep = preprocessors();
    let mut fit_rss = f64::NAN;
    let (fit_s, epoch_s, rows) = match mode {
        "stream" => {
            prep.fit_scan(&ParquetScan::open(dir, 65_536)?)?;
            let fit_s = t.elapsed().as_secs_f64();
            fit_rss = peak_rss_mib();
            let data = Dataset::scan(dir, &prep, ScanOptions::default())?;
            let mut trainer = trainer(&prep, batch)?;
            let t = Instant::now();
            trainer.fit_stream(&data, None)?;
            (fit_s, t.elapsed().as_secs_f64(), data.scan().rows())
        }
        "memory" => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
                .collect();
            files.sort();
            let mut df = DataFrame::empty();
            for f in &files {
                let part = ParquetReader::new(std::fs::File::open(f)?).finish()?;
                if df.width() == 0 {
                    df = part;
                } else {
                    df.vstack_mut_owned(part)?;
                }
            }
            df.rechunk_mut_par();
            prep.fit(&df)?;
            let data = prep.transform(&df)?;
            let rows = df.height();
            drop(df);
            let fit_s = t.elapsed().as_secs_f64();
            let mut trainer = trainer(&prep, batch)?;
            let t = Instant::now();
            trainer.fit(&data, None)?;
            (fit_s, t.elapsed().as_secs_f64(), rows)
        }
        "bad" => {
            let t = Instant::now();
            let fitted = ParquetScan::open(dir, 65_536).and_then(|scan| prep.fit_scan(&scan));
            let err = match fitted {
                Err(e) => e.to_string(),
                Ok(()) => bail!("the bad data was accepted"),
            };
            println!(
                "{}",
                serde_json::json!({"error": err, "seconds": t.elapsed().as_secs_f64()})
            );
            return Ok(());
        }
        other => bail!("unknown mode {other}"),
    };
    println!(
        "{}",
        serde_json::json!({
            "rows": rows, "fit_s": fit_s, "epoch_s": epoch_s, "rss_mib": peak_rss_mib(),
            "fit_rss_mib": fit_rss
        })
    );
    Ok(())
}

/// Runs `mode` on `dir` in a fresh process; its JSON line.
fn measure(mode: &str, dir: &Path, batch: usize, threads: usize) -> Result<serde_json::Value> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(["--child", mode, "--batch", &batch.to_string()])
        .arg("--dir")
        .arg(dir)
        .env("WIDEDEEP_SCAN_THREADS", threads.to_string());
    common::reference_json(&mut cmd, mode)
}

/// A copy of `good` (links to its files) in which the file holding row `row` is rewritten by
/// `spoil(frame, row within the file)`.
fn spoiled(
    good: &Path,
    out: &Path,
    row: usize,
    spoil: impl Fn(&mut DataFrame, usize) -> Result<()>,
) -> Result<String> {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(good)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    let mut first = 0usize;
    let mut spoilt = String::new();
    for f in &files {
        let name = f.file_name().context("file name")?;
        let rows = ParquetReader::new(std::fs::File::open(f)?).num_rows()?;
        if (first..first + rows).contains(&row) {
            let mut df = ParquetReader::new(std::fs::File::open(f)?).finish()?;
            spoil(&mut df, row - first)?;
            ParquetWriter::new(std::fs::File::create(out.join(name))?)
                .with_row_group_size(Some(65_536))
                .finish(&mut df)?;
            spoilt = format!("{} row {}", name.to_string_lossy(), row - first);
        } else {
            std::os::unix::fs::symlink(f, out.join(name))?;
        }
        first += rows;
    }
    Ok(spoilt)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let batch = common::arg("--batch", 1024);
    if let Some(i) = args.iter().position(|a| a == "--child") {
        if let Ok(n) = std::env::var("WIDEDEEP_SCAN_THREADS") {
            tch::set_num_threads(n.parse()?);
        }
        let dir = args
            .iter()
            .position(|a| a == "--dir")
            .and_then(|j| args.get(j + 1))
            .context("--dir")?;
        return child(&args[i + 1], Path::new(dir), batch);
    }
    let (small, large) = (common::arg("--small", 20), common::arg("--large", 200));
    let threads = common::arg("--threads", 2);
    let root = std::env::temp_dir().join("widedeep-scan-bench");
    let t = Instant::now();
    let dirs = [
        (small, root.join(format!("adult-x{small}"))),
        (large, root.join(format!("adult-x{large}"))),
    ];
    for (copies, dir) in &dirs {
        generate(dir, *copies)?;
    }
    eprintln!(
        "data ready in {:.0} s under {}",
        t.elapsed().as_secs_f64(),
        root.display()
    );

    println!(
        "| data | rows | way | fit s | epoch s | epoch rows/s | peak RSS MiB |\n|---|---:|---|---:|---:|---:|---:|"
    );
    let reference = !args.iter().any(|a| a == "--no-reference");
    // (copies, mode) → the child's JSON
    let mut runs = Vec::new();
    for (copies, dir) in &dirs {
        for (mode, way) in [
            ("stream", "streamed (`fit_scan` + `fit_stream`)"),
            ("memory", "in memory (`fit` + `fit`)"),
        ] {
            let m = measure(mode, dir, batch, threads)?;
            let rows = m["rows"].as_f64().unwrap_or(f64::NAN);
            let epoch = m["epoch_s"].as_f64().unwrap_or(f64::NAN);
            println!(
                "| Adult ×{copies} | {rows:.0} | {way} | {:.1} | {epoch:.1} | {:.0} | {:.0} |",
                m["fit_s"].as_f64().unwrap_or(f64::NAN),
                rows / epoch,
                m["rss_mib"].as_f64().unwrap_or(f64::NAN),
            );
            runs.push(((*copies, mode), m));
        }
        if reference && *copies == small {
            // the reference's chunked fit on the same rows as CSV
            let venv = common::bench_venv()?;
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scan_reference.py");
            let r = common::reference_json(
                Command::new(venv.join("bin/python"))
                    .arg(script)
                    .arg(dir)
                    .arg(root.join(format!("adult-x{copies}.csv"))),
                "chunked fit",
            )?;
            println!(
                "| Adult ×{copies} | {} | pytorch-widedeep: `ChunkWidePreprocessor` + `ChunkTabPreprocessor` `partial_fit` over CSV chunks of {} rows | {:.1} | | | |",
                r["rows"],
                r["chunk_rows"],
                r["fit_s"].as_f64().unwrap_or(f64::NAN)
            );
            runs.push(((*copies, "reference"), r));
        }
    }
    let get = |copies: usize, mode: &str, key: &str| {
        runs.iter()
            .find(|((c, m), _)| *c == copies && *m == mode)
            .and_then(|(_, v)| v[key].as_f64())
            .unwrap_or(f64::NAN)
    };
    println!();
    for (copies, _) in &dirs {
        let rate = |mode: &str| get(*copies, mode, "rows") / get(*copies, mode, "epoch_s");
        println!(
            "- Adult ×{copies}: streamed epoch at {:.0}% of the in-memory rows/s; in-memory peak \
             RSS {:.1}× the streamed one",
            100.0 * rate("stream") / rate("memory"),
            get(*copies, "memory", "rss_mib") / get(*copies, "stream", "rss_mib")
        );
    }
    println!(
        "- streamed peak RSS, Adult ×{large} vs ×{small}: {:+.1}% (after `fit_scan`: {:.0} and \
         {:.0} MiB)",
        100.0 * (get(large, "stream", "rss_mib") / get(small, "stream", "rss_mib") - 1.0),
        get(large, "stream", "fit_rss_mib"),
        get(small, "stream", "fit_rss_mib")
    );
    if reference {
        println!(
            "- preprocessing fit, Adult ×{small}: `fit_scan` {:.0}× faster than the reference's \
             chunked fit",
            get(small, "reference", "fit_s") / get(small, "stream", "fit_s")
        );
    }

    // bad data at row 7,000,000 of the large set (at 70% of its rows when it is smaller)
    let (_, large_dir) = &dirs[1];
    let large_rows = ParquetScan::open(large_dir, 65_536)?.rows();
    let row = if large_rows > 7_000_000 {
        7_000_000
    } else {
        large_rows * 7 / 10
    };
    println!("\n| bad data at row {row} of Adult ×{large} | where | error | seconds |\n|---|---|---|---:|");
    let null_dir = root.join("bad-null");
    let at = spoiled(large_dir, &null_dir, row, |df, r| {
        let mut income: Vec<Option<String>> = df
            .column("income")?
            .str()?
            .iter()
            .map(|s| s.map(str::to_owned))
            .collect();
        income[r] = None;
        df.with_column(Column::new("income".into(), income))?;
        Ok(())
    })?;
    let m = measure("bad", &null_dir, batch, threads)?;
    println!(
        "| null target | {at} | {} | {:.1} |",
        m["error"].as_str().unwrap_or("?"),
        m["seconds"].as_f64().unwrap_or(f64::NAN)
    );
    let str_dir = root.join("bad-string");
    let at = spoiled(large_dir, &str_dir, row, |df, r| {
        let mut age: Vec<Option<String>> = df
            .column("age")?
            .cast(&DataType::String)?
            .str()?
            .iter()
            .map(|s| s.map(str::to_owned))
            .collect();
        age[r] = Some("forty".into());
        df.with_column(Column::new("age".into(), age))?;
        Ok(())
    })?;
    let m = measure("bad", &str_dir, batch, threads)?;
    println!(
        "| string in numeric `age` | {at} | {} | {:.1} |",
        m["error"].as_str().unwrap_or("?"),
        m["seconds"].as_f64().unwrap_or(f64::NAN)
    );
    for d in [null_dir, str_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(())
}
