//! Helpers shared by the hand-rolled benchmark programs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The value after `name` on the command line (`--steps 200`), else `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median wall time of `runs` calls of `f`.
pub fn median_of<F: FnMut()>(runs: usize, mut f: F) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// The reference's venv (pytorch-widedeep 1.7.0), installed on first use by
/// `scripts/setup-bench-env.sh`; its path.
pub fn bench_venv() -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-bench-env.sh");
    let out = Command::new("bash").arg(script).output()?;
    if !out.status.success() {
        anyhow::bail!(
            "setting up the reference venv failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .context("no venv path")?
        .trim()
        .to_string();
    Ok(path.into())
}

/// Runs a reference script (`cmd`, built by the caller) and parses the last line of its standard
/// output that starts with `{` as JSON; a failure carries the script's standard error.
pub fn reference_json(cmd: &mut Command, what: &str) -> anyhow::Result<serde_json::Value> {
    use anyhow::Context;
    let out = cmd.output().context("running the reference script")?;
    if !out.status.success() {
        anyhow::bail!(
            "reference {what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("no JSON line from the reference")?;
    Ok(serde_json::from_str(line)?)
}
