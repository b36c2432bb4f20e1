//! The recommender models side by side with pytorch-widedeep 1.7.0 on MovieLens 100k's CTR task
//! (`movielens_fm.py`'s): every rating with its user's age, gender and occupation and its movie's
//! genres, label = rating ≥ 4; each user's last interaction by time is the test row and the one
//! before it the validation row. Both sides read the same split (our side writes it as Parquet
//! for the reference), embed the six categorical columns with 16 dimensions, add a wide part
//! over the same columns, and train with Adam (lr 1e-3), batch 256, the same epochs and
//! libtorch threads, validating every epoch. Prints one markdown table: test AUC and log-loss
//! and seconds per epoch of each model on both sides.
//!
//! Run: `cargo bench --bench recsys -- [--epochs 3] [--threads 1] [--models deepfm,dcn] [--bf16]`
//! (`--bf16`: our side trains in bf16 autocast, which the reference does not offer)
//! (libtorch set up as in the README; MovieLens is fetched on first use, see
//! `datasets::movielens100k`; `WIDEDEEP_BENCH_VENV` moves the reference venv).
use anyhow::{Context, Result};
use std::path::Path;
use std::process::Command;
use widedeep::datasets;
use widedeep::polars::prelude::ParquetWriter;
use widedeep::prelude::Precision;

mod common;
use common::{bench_venv, reference_json};
#[path = "../examples/common/movielens.rs"]
mod movielens;
use movielens::{Run, BATCH, CTR_CAT, EMBED, LR, SEED};

/// The models compared, in table order, with the reference's hyper-parameters (its names).
fn models() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    use serde_json::json;
    let mlp = json!({"mlp_hidden_dims": [64, 32], "mlp_dropout": 0.1});
    let with = |extra: serde_json::Value| {
        let mut v = mlp.clone();
        for (k, x) in extra.as_object().expect("an object") {
            v[k] = x.clone();
        }
        v
    };
    vec![
        ("wide", "Wide", json!({})),
        (
            "deepfm",
            "DeepFM",
            with(json!({"num_factors": EMBED, "reduce_sum": true})),
        ),
        (
            "deepffm",
            "DeepFFM",
            with(json!({"num_factors": 8, "reduce_sum": true})),
        ),
        (
            "xdeepfm",
            "xDeepFM",
            with(json!({"input_dim": EMBED, "cin_layer_dims": [32, 16], "reduce_sum": true})),
        ),
        (
            "autoint_plus",
            "AutoInt+",
            with(json!({"input_dim": EMBED, "num_heads": 4, "num_layers": 2,
                        "structure": "parallel", "gated": true})),
        ),
        ("dcn", "DCN", with(json!({"n_cross_layers": 3}))),
        (
            "dcnv2",
            "DCN-V2",
            with(json!({"num_cross_layers": 2, "structure": "parallel"})),
        ),
        (
            "gdcn",
            "GDCN",
            with(json!({"num_cross_layers": 3, "structure": "parallel"})),
        ),
    ]
}

fn reference(
    dir: &Path,
    venv: &Path,
    name: &str,
    params: &serde_json::Value,
    epochs: usize,
    threads: usize,
) -> Result<Run> {
    let mut params = params.clone();
    params["cat_cols"] = serde_json::json!(CTR_CAT);
    params["target"] = "label".into();
    params["embed_dim"] = EMBED.into();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/recsys_reference.py");
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg(script)
        .arg(dir)
        .arg(name)
        .arg(params.to_string())
        .args([epochs, BATCH].map(|v| v.to_string()))
        .arg(LR.to_string())
        .args([threads as u64, SEED].map(|v| v.to_string()));
    let v = reference_json(&mut cmd, name)?;
    let get = |k: &str| v[k].as_f64().with_context(|| format!("reference `{k}`"));
    Ok(Run {
        epoch_s: get("epoch_s")?,
        auc: get("auc")?,
        logloss: get("logloss")?,
    })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let epochs: usize = value("--epochs").map_or(Ok(3), |v| v.parse())?;
    let threads: usize = value("--threads").map_or(Ok(1), |v| v.parse())?;
    let wanted: Option<Vec<&str>> = value("--models").map(|v| v.split(',').collect());
    // our side in bf16 autocast (the reference has no such option: a different comparison)
    let precision = if args.iter().any(|a| a == "--bf16") {
        Precision::Bf16
    } else {
        Precision::Fp32
    };
    tch::set_num_threads(threads as i32);

    let ml = datasets::movielens100k()?;
    let df = movielens::ctr_frame(&ml)?;
    let (mut split, report) = movielens::ctr_split(&df)?;
    let dir = tempfile::tempdir()?;
    for (name, frame) in ["train", "valid", "test"].iter().zip(split.iter_mut()) {
        let file = std::fs::File::create(dir.path().join(format!("{name}.parquet")))?;
        ParquetWriter::new(file).finish(frame)?;
    }
    let venv = bench_venv()?;
    println!(
        "MovieLens 100k CTR ({report}), 6 categorical columns embedded with {EMBED} \
         dimensions + a wide part, batch {BATCH}, Adam lr {LR}, {epochs} epochs, {threads} \
         libtorch thread(s), our side in {precision:?}\n"
    );
    println!(
        "| model | AUC ours | AUC reference | Δ AUC | log-loss ours | log-loss reference | s/epoch ours | s/epoch reference | speed-up |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, label, params) in models() {
        if wanted.as_ref().is_some_and(|w| !w.contains(&name)) {
            continue;
        }
        eprintln!("{label}: widedeep");
        let a = movielens::train_ctr(name, &split, epochs, precision)?;
        eprintln!("{label}: pytorch-widedeep");
        let b = reference(dir.path(), &venv, name, &params, epochs, threads)?;
        println!(
            "| {label} | {:.4} | {:.4} | {:+.4} | {:.4} | {:.4} | {:.3} | {:.3} | {:.1}× |",
            a.auc,
            b.auc,
            a.auc - b.auc,
            a.logloss,
            b.logloss,
            a.epoch_s,
            b.epoch_s,
            b.epoch_s / a.epoch_s
        );
    }
    Ok(())
}
