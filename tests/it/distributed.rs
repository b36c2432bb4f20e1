//! Data-parallel training over c10d/Gloo on 127.0.0.1: this test binary starts copies of itself
//! as ranks (the `worker` test below, ignored unless started so), bounded in time.
//!
//! - equality: 2 ranks with batch b against 1 process with batch 2b on the same rows in the
//!   same order give the same parameters (1e-5) after 20 steps, and the same epoch record, for
//!   Wide + TabMlp, FT-Transformer and a GRU text model;
//! - faults: a rank killed (SIGKILL) or frozen (SIGSTOP) mid-epoch makes the other stop with an
//!   error naming it, within the configured timeout.
use crate::common::*;
use polars::prelude::DataFrame;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use widedeep::datasets;
use widedeep::prelude::*;
use widedeep::tch::Tensor;
use widedeep::training::TrainState;

const WORKER: &str = "WIDEDEEP_TEST_DIST_WORKER";
const OUT: &str = "WIDEDEEP_TEST_DIST_OUT";
const FAULT: &str = "WIDEDEEP_TEST_DIST_FAULT";
const CKPT: &str = "WIDEDEEP_TEST_DIST_CHECKPOINT";
const SCAN: &str = "WIDEDEEP_TEST_DIST_SCAN";
/// Rows per rank per step.
const B: usize = 16;
const STEPS: usize = 20;

/// Every `*dropout*` number of a config set to 0 (dropout masks are drawn per process, so
/// they cannot match between one and two processes).
fn no_dropout(cfg: &WideDeepConfig) -> WideDeepConfig {
    fn zero(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k.contains("dropout") && x.is_number() {
                        *x = Value::from(0.0);
                    } else {
                        zero(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(zero),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(cfg).unwrap();
    zero(&mut v);
    serde_json::from_value(v).unwrap()
}

/// Validation rows: an odd count, shared unevenly between the ranks.
const N_VAL: i64 = 161;

/// The data and model of case `kind`: `STEPS · 2B` training rows followed by `N_VAL`
/// validation rows (see [`split`]).
fn case(kind: &str) -> (Dataset, WideDeepConfig) {
    let n = STEPS * 2 * B + N_VAL as usize;
    let (df, mut prep): (DataFrame, Preprocessors) = match kind {
        "text" => {
            let df = datasets::womens_ecommerce_reviews().unwrap().head(Some(n));
            let prep = Preprocessors::new()
                .text(
                    TextPreprocessor::new("Review Text")
                        .vocab(Vocab::Word {
                            min_freq: 2,
                            max_vocab: 500,
                        })
                        .maxlen(20),
                )
                .target(
                    TargetEncoder::new("Recommended IND", TargetKind::Binary).positive_class("1"),
                );
            (df, prep)
        }
        _ => (adult_split(n, 0).0, adult_preprocessors()),
    };
    let data = prep.fit_transform(&df).unwrap();
    let cfg = match kind {
        "wide_tabmlp" | "extras" => WideDeepConfig::new()
            .wide(WideConfig::new(prep.wide_dim().unwrap()))
            .deeptabular(
                TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
                    .mlp(MlpConfig::default().hidden_dims([32, 16])),
            ),
        "batchnorm" => WideDeepConfig::new().deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
                .cont_norm(ContNorm::BatchNorm)
                .mlp(MlpConfig::default().hidden_dims([16]).batchnorm(true)),
        ),
        "ft_transformer" => WideDeepConfig::new().deeptabular(
            FtTransformerConfig::from_meta(&prep.tab_meta().unwrap())
                .input_dim(16)
                .n_heads(2)
                .n_blocks(2),
        ),
        "text" => WideDeepConfig::new().deeptext(
            BasicRnnConfig::new(TextInput::from_meta(&prep.text_meta(0).unwrap(), 0))
                .embed_dim(16)
                .hidden_dim(16)
                .n_layers(1)
                .rnn_type(RnnType::Gru),
        ),
        other => panic!("unknown case {other}"),
    };
    (data, no_dropout(&cfg.seed(7)))
}

fn trainer_for(
    kind: &str,
    batch: usize,
    epochs: usize,
    dist: Option<Distributed>,
) -> (Trainer, Dataset) {
    let (data, cfg) = case(kind);
    (make_trainer(kind, &cfg, batch, epochs, dist), data)
}

/// The trainer of case `kind` for its model `cfg`.
fn make_trainer(
    kind: &str,
    cfg: &WideDeepConfig,
    batch: usize,
    epochs: usize,
    dist: Option<Distributed>,
) -> Trainer {
    let model = WideDeep::new(cfg, Device::Cpu).unwrap();
    let mut config = TrainerConfig::new(Objective::Binary)
        .batch_size(batch)
        .epochs(epochs)
        .lr(3e-3)
        .metrics([Metric::Auc])
        .seed(5)
        .verbose(0);
    if kind == "extras" {
        // weighted draws, 2 batches per step, clipping of the averaged gradients, a schedule
        config = config
            .sampler(WeightedSampler::inverse_class_frequency())
            .accumulate_grad_batches(2)
            .clip_grad_norm(0.05)
            .lr_scheduler(LrScheduler::cosine(2, 1e-4))
            .epochs(2 * epochs);
    }
    if let Some(d) = dist {
        config = config.distributed(d);
    }
    Trainer::new(model, config).unwrap()
}

/// The training and validation rows of a case's data.
fn split(data: &Dataset) -> (Dataset, Dataset) {
    let n = data.len() - N_VAL;
    (data.slice(0, n), data.slice(n, N_VAL))
}

/// A rank, started by the tests below with `RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`
/// and the case in the environment; a no-op otherwise.
#[test]
#[ignore = "a rank of the distributed tests, started by them"]
fn worker() {
    let Ok(kind) = std::env::var(WORKER) else {
        return;
    };
    widedeep::tch::set_num_threads(1);
    let out = PathBuf::from(std::env::var(OUT).unwrap());
    let t0 = Instant::now();
    let result = run_worker(&kind, &out);
    if let Err(e) = result {
        let rank = std::env::var("RANK").unwrap();
        let text = format!("{:.2}\n{e}", t0.elapsed().as_secs_f64());
        std::fs::write(out.join(format!("error{rank}.txt")), text).unwrap();
        std::process::exit(3);
    }
}

/// Kills or freezes this process (the signal) at batch 5 of an epoch, in the first attempt of a
/// torchrun job.
struct Fault(String, usize);

impl Callback for Fault {
    fn on_batch_begin(&mut self, state: &mut TrainState) -> widedeep::Result<()> {
        let first_attempt = std::env::var("TORCHELASTIC_RESTART_COUNT").map_or(true, |c| c == "0");
        if state.batch == 5 && state.epoch == self.1 && first_attempt {
            let pid = std::process::id().to_string();
            let _ = Command::new("kill")
                .args([&format!("-{}", self.0), &pid])
                .status();
            std::thread::sleep(Duration::from_secs(60));
        }
        Ok(())
    }
}

/// Counts the epochs this process trains, into a shared cell.
struct CountEpochs(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Callback for CountEpochs {
    fn on_epoch_begin(&mut self, _state: &mut TrainState) -> widedeep::Result<()> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

fn run_worker(kind: &str, out: &Path) -> widedeep::Result<()> {
    if kind == "stream" {
        return run_stream_worker(out);
    }
    // the data first (the slow part), so that the ranks join at nearly the same time
    let (data, cfg) = case(kind);
    let d = Distributed::from_env()?;
    // rank 0's value reaches every rank
    let shared: Vec<i64> = d.on_main_shared(|| Ok(vec![d.rank() as i64, 42]))?;
    assert_eq!(shared, [0, 42], "rank {}", d.rank());
    let long = std::env::var(FAULT).is_ok() || std::env::var(CKPT).is_ok();
    let epochs = if long { 3 } else { 1 };
    let mut trainer = make_trainer(kind, &cfg, B, epochs, Some(d.clone()));
    if let Ok(path) = std::env::var(CKPT) {
        let cfg = trainer.config().clone().resume_file(path);
        let model = WideDeep::new(trainer.model().config().unwrap(), Device::Cpu)?;
        trainer = Trainer::new(model, cfg)?;
    }
    if let Ok(spec) = std::env::var(FAULT) {
        // rank:signal:epoch
        let parts: Vec<&str> = spec.split(':').collect();
        if d.rank().to_string() == parts[0] {
            let epoch = parts[2].parse().unwrap();
            trainer.add_callback(Box::new(Fault(parts[1].to_string(), epoch)));
        }
    }
    let epochs_run = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    trainer.add_callback(Box::new(CountEpochs(epochs_run.clone())));
    let (mut train, val) = split(&data);
    if std::env::var("WIDEDEEP_TEST_DIST_FEWER_ROWS").is_ok_and(|r| r == d.rank().to_string()) {
        train = train.slice(0, train.len() - 1);
    }
    trainer.fit(&train, Some(&val))?;
    let n = epochs_run.load(std::sync::atomic::Ordering::SeqCst);
    std::fs::write(
        out.join(format!("epochs_run{}.txt", d.rank())),
        n.to_string(),
    )
    .unwrap();
    let stats = d.comm_stats();
    std::fs::write(
        out.join(format!("overlapped{}.txt", d.rank())),
        stats.overlapped_buckets.to_string(),
    )
    .unwrap();
    let vs = trainer.model().var_store();
    vs.save(out.join(format!("rank{}.safetensors", d.rank())))?;
    let rec = &trainer.history().epochs[0];
    std::fs::write(
        out.join(format!("record{}.txt", d.rank())),
        format!(
            "{} {} {} {}",
            rec["loss"], rec["auc"], rec["val_loss"], rec["val_auc"]
        ),
    )
    .unwrap();
    Ok(())
}

/// A rank of the streamed case: the preprocessors fitted from the Parquet folder named by
/// `SCAN` (the same on every rank), then two epochs of `fit_stream` on the rank's pages, with
/// the whole folder as validation data.
fn run_stream_worker(out: &Path) -> widedeep::Result<()> {
    use widedeep::pipeline::{ParquetScan, ScanOptions};
    let dir = PathBuf::from(std::env::var(SCAN).unwrap());
    let mut prep = adult_preprocessors();
    prep.fit_scan(&ParquetScan::open(&dir, 100)?)?;
    let options = ScanOptions::default().page_rows(100).shuffle_buffer(250);
    let train = Dataset::scan(&dir, &prep, options.clone())?;
    let val = Dataset::scan(&dir, &prep, options.shuffle(false))?;
    let d = Distributed::from_env()?;
    let model = WideDeep::new(&no_dropout(&wide_tabmlp_config(&prep, 3)), Device::Cpu)?;
    let config = TrainerConfig::new(prep.objective()?)
        .batch_size(B)
        .epochs(2)
        .metrics([Metric::Auc])
        .seed(5)
        .verbose(0)
        .distributed(d.clone());
    let mut trainer = Trainer::new(model, config)?;
    trainer.fit_stream(&train, Some(&val))?;
    trainer
        .model()
        .var_store()
        .save(out.join(format!("rank{}.safetensors", d.rank())))?;
    let rec = &trainer.history().epochs[1];
    std::fs::write(
        out.join(format!("record{}.txt", d.rank())),
        format!("{} {} {}", rec["loss"], rec["auc"], rec["val_loss"]),
    )
    .unwrap();
    Ok(())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The ranks of one run; killed when dropped (a failed assertion leaves no process behind).
struct Ranks(Vec<Child>);

impl Drop for Ranks {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Ranks {
    fn start(kind: &str, world: usize, out: &Path, env: &[(&str, &str)]) -> Self {
        let exe = std::env::current_exe().unwrap();
        let port = free_port().to_string();
        let children = (0..world)
            .map(|r| {
                let mut c = Command::new(&exe);
                c.args(["distributed::worker", "--exact", "--ignored", "--nocapture"])
                    .env(WORKER, kind)
                    .env(OUT, out)
                    .env("RANK", r.to_string())
                    .env("LOCAL_RANK", r.to_string())
                    .env("WORLD_SIZE", world.to_string())
                    .env("MASTER_ADDR", "127.0.0.1")
                    .env("MASTER_PORT", &port)
                    .env("WIDEDEEP_DIST_TIMEOUT_S", "60")
                    .env_remove("TORCHELASTIC_USE_AGENT_STORE")
                    .stdout(Stdio::null());
                for (k, v) in env {
                    c.env(k, v);
                }
                c.spawn().unwrap()
            })
            .collect();
        Self(children)
    }

    /// Waits for rank `r` to exit, at most `limit`; its exit code.
    fn wait(&mut self, r: usize, limit: Duration) -> Option<i32> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Some(s) = self.0[r].try_wait().unwrap() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

fn params(path: &Path) -> Vec<(String, Tensor)> {
    let mut v = Tensor::read_safetensors(path).unwrap();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn max_diff(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|((ka, ta), (kb, tb))| {
            assert_eq!(ka, kb);
            (ta - tb).abs().max().double_value(&[])
        })
        .fold(0.0, f64::max)
}

/// 2 ranks × batch `B` against 1 process × batch `2B`, same shuffled order, `STEPS` steps:
/// the ranks end equal, and equal to the single process when `single` (not with batch norm,
/// whose batch statistics depend on the batch size).
fn two_ranks_equal_one_process(kind: &str, compare: bool) {
    let dir = tempfile::tempdir().unwrap();
    // the extras case cuts the gradients into ~2 KB buckets, all-reduced as backward fills them
    let env: &[(&str, &str)] = match kind {
        "extras" => &[("WIDEDEEP_DIST_BUCKET_MB", "0.002")],
        _ => &[],
    };
    let mut ranks = Ranks::start(kind, 2, dir.path(), env);
    // the reference meanwhile, in this process
    let (mut single, data) = trainer_for(kind, 2 * B, 1, None);
    let (train, val) = split(&data);
    single.fit(&train, Some(&val)).unwrap();
    for r in 0..2 {
        let code = ranks.wait(r, Duration::from_secs(240));
        let err = std::fs::read_to_string(dir.path().join(format!("error{r}.txt")));
        assert_eq!(code, Some(0), "rank {r} of {kind}: {err:?}");
    }
    let single_vs = dir.path().join("single.safetensors");
    single.model().var_store().save(&single_vs).unwrap();
    let reference = params(&single_vs);
    let rank0 = params(&dir.path().join("rank0.safetensors"));
    let rank1 = params(&dir.path().join("rank1.safetensors"));
    assert_eq!(max_diff(&rank0, &rank1), 0.0, "{kind}: ranks differ");
    let overlapped: u64 = std::fs::read_to_string(dir.path().join("overlapped0.txt"))
        .unwrap()
        .parse()
        .unwrap();
    println!("{kind}: {overlapped} gradient buckets all-reduced during the backward pass");
    if kind == "extras" {
        assert!(
            overlapped > STEPS as u64,
            "{overlapped}: several buckets per step"
        );
    }
    if !compare {
        return;
    }
    let diff = max_diff(&rank0, &reference);
    let moved = max_diff(&rank0, &params_of_untrained(kind, dir.path()));
    println!("{kind}: max |2 ranks - 1 process| = {diff:.2e} (weights moved by {moved:.2e})");
    assert!(diff < 1e-5, "{kind}: {diff}");
    assert!(
        moved > 1e-3,
        "{kind}: training moved the weights by {moved}"
    );
    // the epoch record is computed over both ranks' rows
    let rec = &single.history().epochs[0];
    let text = std::fs::read_to_string(dir.path().join("record0.txt")).unwrap();
    let got: Vec<f64> = text.split(' ').map(|x| x.parse().unwrap()).collect();
    assert!(
        (got[0] - rec["loss"]).abs() < 1e-5,
        "{kind}: loss {got:?} vs {rec:?}"
    );
    assert!(
        (got[1] - rec["auc"]).abs() < 1e-6,
        "{kind}: auc {got:?} vs {rec:?}"
    );
    assert!(
        (got[2] - rec["val_loss"]).abs() < 1e-5,
        "{kind}: {got:?} vs {rec:?}"
    );
    assert!(
        (got[3] - rec["val_auc"]).abs() < 1e-6,
        "{kind}: {got:?} vs {rec:?}"
    );
}

fn params_of_untrained(kind: &str, dir: &Path) -> Vec<(String, Tensor)> {
    let (t, _) = trainer_for(kind, 2 * B, 1, None);
    let path = dir.join("untrained.safetensors");
    t.model().var_store().save(&path).unwrap();
    params(&path)
}

#[test]
fn two_ranks_equal_one_process_wide_tabmlp() {
    two_ranks_equal_one_process("wide_tabmlp", true);
}

#[test]
fn two_ranks_equal_one_process_with_sampler_accumulation_clipping_schedule() {
    two_ranks_equal_one_process("extras", true);
}

#[test]
fn ranks_share_rank_0s_batch_norm_statistics() {
    two_ranks_equal_one_process("batchnorm", false);
}

#[test]
fn two_ranks_equal_one_process_ft_transformer() {
    two_ranks_equal_one_process("ft_transformer", true);
}

#[test]
fn two_ranks_equal_one_process_text() {
    two_ranks_equal_one_process("text", true);
}

/// Two ranks stream disjoint pages of one Parquet folder (`fit_stream`, shuffled): they end
/// with the same weights, and both evaluate the whole validation folder to the same record;
/// that record is what one process computes from rank 0's final weights.
#[test]
fn two_ranks_stream_disjoint_pages_of_a_parquet_folder() {
    use widedeep::pipeline::{ParquetScan, ScanOptions};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let (df, _) = adult_split(1_000, 0);
    for k in 0..2 {
        let mut part = df.slice(k * 500, 500);
        polars::prelude::ParquetWriter::new(
            std::fs::File::create(data.join(format!("part-{k}.parquet"))).unwrap(),
        )
        .with_row_group_size(Some(100))
        .finish(&mut part)
        .unwrap();
    }
    let data_s = data.to_string_lossy().into_owned();
    let mut ranks = Ranks::start("stream", 2, dir.path(), &[(SCAN, &data_s)]);
    for r in 0..2 {
        let code = ranks.wait(r, Duration::from_secs(240));
        let err = std::fs::read_to_string(dir.path().join(format!("error{r}.txt")));
        assert_eq!(code, Some(0), "rank {r}: {err:?}");
    }
    let rank0 = params(&dir.path().join("rank0.safetensors"));
    let rank1 = params(&dir.path().join("rank1.safetensors"));
    assert_eq!(max_diff(&rank0, &rank1), 0.0, "ranks differ");
    let records: Vec<Vec<f64>> = (0..2)
        .map(|r| {
            std::fs::read_to_string(dir.path().join(format!("record{r}.txt")))
                .unwrap()
                .split(' ')
                .map(|x| x.parse().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(records[0], records[1]);
    // the validation loss is that of rank 0's weights on every row
    let mut prep = adult_preprocessors();
    prep.fit_scan(&ParquetScan::open(&data, 100).unwrap())
        .unwrap();
    let mut model = WideDeep::new(&no_dropout(&wide_tabmlp_config(&prep, 3)), Device::Cpu).unwrap();
    model
        .var_store_mut()
        .load(dir.path().join("rank0.safetensors"))
        .unwrap();
    let trainer = Trainer::new(model, TrainerConfig::new(Objective::Binary).verbose(0)).unwrap();
    let val = Dataset::scan(&data, &prep, ScanOptions::default().page_rows(100)).unwrap();
    let loss = trainer.evaluate_stream(&val, Some(&[])).unwrap()["loss"];
    assert!(
        (loss - records[0][2]).abs() < 1e-6,
        "{loss} vs {:?}",
        records[0]
    );
}

/// Rank 1 gets `signal` mid-epoch; rank 0 must stop with an error naming it within `timeout`.
fn lost_rank_is_named(signal: &str, timeout_s: u64, bound_s: f64) {
    let dir = tempfile::tempdir().unwrap();
    let fault = format!("1:{signal}:0");
    let timeout = timeout_s.to_string();
    let mut ranks = Ranks::start(
        "wide_tabmlp",
        2,
        dir.path(),
        &[(FAULT, &fault), ("WIDEDEEP_DIST_TIMEOUT_S", &timeout)],
    );
    let t0 = Instant::now();
    let code = ranks.wait(0, Duration::from_secs(120));
    let waited = t0.elapsed();
    let err = std::fs::read_to_string(dir.path().join("error0.txt")).unwrap_or_default();
    assert_eq!(
        code,
        Some(3),
        "rank 0 must fail, not hang or succeed: {err}"
    );
    assert!(err.contains("lost rank 1"), "{err}");
    let secs: f64 = err.lines().next().unwrap().parse().unwrap();
    println!("SIG{signal}: rank 0 stopped after {secs:.1} s: {err}");
    assert!(secs < bound_s, "{secs} s (total {waited:?})");
}

#[test]
fn a_killed_rank_stops_the_others_with_an_error_naming_it() {
    lost_rank_is_named("KILL", 60, 30.0);
}

#[test]
fn a_frozen_rank_is_named_after_the_timeout() {
    lost_rank_is_named("STOP", 10, 40.0);
}

/// Under `torchrun --max-restarts=1` with a checkpoint file, a job whose rank 1 is killed in
/// its second epoch is restarted, resumes from the checkpoint of the first epoch and ends with
/// the weights of an uninterrupted run.
#[test]
fn torchrun_restart_resumes_to_the_weights_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, restarted) = (dir.path().join("plain"), dir.path().join("restarted"));
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::create_dir_all(&restarted).unwrap();
    // uninterrupted, 3 epochs with a checkpoint file
    let ckpt = plain.join("run.ckpt");
    let ckpt = ckpt.to_str().unwrap();
    let mut ranks = Ranks::start("wide_tabmlp", 2, &plain, &[(CKPT, ckpt)]);
    for r in 0..2 {
        assert_eq!(ranks.wait(r, Duration::from_secs(240)), Some(0), "rank {r}");
    }
    // the same job through torchrun, rank 1 killed in epoch 2 of the first attempt
    let log = std::fs::File::create(dir.path().join("torchrun.log")).unwrap();
    let ckpt = restarted.join("run.ckpt");
    let mut job = Command::new("torchrun")
        .args([
            "--no-python",
            "--standalone",
            "--nproc-per-node=2",
            "--max-restarts=1",
        ])
        .arg(std::env::current_exe().unwrap())
        .args(["distributed::worker", "--exact", "--ignored", "--nocapture"])
        .env(WORKER, "wide_tabmlp")
        .env(OUT, &restarted)
        .env(CKPT, &ckpt)
        .env(FAULT, "1:KILL:1")
        .env("WIDEDEEP_DIST_TIMEOUT_S", "60")
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("torchrun on PATH (the libtorch venv's bin/)");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = job.try_wait().unwrap() {
            break Some(s);
        }
        if t0.elapsed() > Duration::from_secs(300) {
            let _ = job.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(dir.path().join("torchrun.log")).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "torchrun: {status:?}\n{log}"
    );
    assert!(
        log.contains("exitcode: -9"),
        "rank 1 was killed, then restarted:\n{log}"
    );
    for r in 0..2 {
        let a = params(&plain.join(format!("rank{r}.safetensors")));
        let b = params(&restarted.join(format!("rank{r}.safetensors")));
        let diff = max_diff(&a, &b);
        println!("rank {r}: max |restarted - uninterrupted| = {diff:.2e}");
        // the restarted attempt resumed after epoch 1 instead of training again from scratch
        let run = |d: &Path| std::fs::read_to_string(d.join(format!("epochs_run{r}.txt")));
        assert_eq!(run(&plain).unwrap(), "3");
        assert_eq!(
            run(&restarted).unwrap(),
            "2",
            "rank {r} trained the last 2 epochs"
        );
        assert!(diff < 1e-6, "rank {r}: {diff}");
    }
}

/// One process: a run with a checkpoint file stopped after 2 of 3 epochs and started again
/// trains only the third epoch and ends where the uninterrupted run does.
#[test]
fn a_resume_file_continues_a_stopped_run() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("run.ckpt");
    let run = |epochs: usize, resume: Option<&Path>| {
        let (t, data) = trainer_for("wide_tabmlp", 2 * B, epochs, None);
        let mut cfg = t.config().clone().epochs(3);
        if let Some(p) = resume {
            cfg = cfg.resume_file(p);
        }
        let model = WideDeep::new(t.model().config().unwrap(), Device::Cpu).unwrap();
        let mut t = Trainer::new(model, cfg).unwrap();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        t.add_callback(Box::new(CountEpochs(count.clone())));
        // stop after `epochs` epochs, as a killed job would
        t.add_callback(Box::new(StopAfter(epochs)));
        let (train, val) = split(&data);
        t.fit(&train, Some(&val)).unwrap();
        (t, count.load(std::sync::atomic::Ordering::SeqCst))
    };
    let (full, n) = run(3, None);
    assert_eq!(n, 3);
    let (_, n) = run(2, Some(&ckpt));
    assert_eq!(n, 2);
    let (resumed, n) = run(3, Some(&ckpt));
    assert_eq!(n, 1, "only the missing epoch");
    assert_eq!(resumed.history().len(), 3);
    let save = |t: &Trainer, name: &str| {
        let p = dir.path().join(name);
        t.model().var_store().save(&p).unwrap();
        params(&p)
    };
    assert_eq!(
        max_diff(
            &save(&full, "a.safetensors"),
            &save(&resumed, "b.safetensors")
        ),
        0.0
    );
}

/// Requests a stop once `.0` epochs are done.
struct StopAfter(usize);

impl Callback for StopAfter {
    fn on_epoch_end(
        &mut self,
        state: &mut TrainState,
        _record: &std::collections::BTreeMap<String, f64>,
    ) -> widedeep::Result<()> {
        if state.epoch + 1 >= self.0 {
            state.request_stop();
        }
        Ok(())
    }
}

/// Ranks that pass different data to `fit` stop with a typed error, before training.
#[test]
fn ranks_with_different_data_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("WIDEDEEP_TEST_DIST_FEWER_ROWS", "1")];
    let mut ranks = Ranks::start("wide_tabmlp", 2, dir.path(), &env);
    for r in 0..2 {
        assert_eq!(
            ranks.wait(r, Duration::from_secs(120)),
            Some(3),
            "rank {r} must fail"
        );
        let err = std::fs::read_to_string(dir.path().join(format!("error{r}.txt"))).unwrap();
        assert!(err.contains("every rank must pass the same data"), "{err}");
    }
}

/// A group of one trains exactly as no group; settings that cannot run distributed are
/// rejected up front, naming the field.
#[test]
fn a_group_of_one_trains_like_no_group_and_unsupported_settings_are_rejected() {
    let (mut plain, data) = trainer_for("wide_tabmlp", 2 * B, 1, None);
    let one = Distributed::new(DistributedConfig::default()).unwrap();
    let (mut grouped, _) = trainer_for("wide_tabmlp", 2 * B, 1, Some(one.clone()));
    let (train, val) = split(&data);
    plain.fit(&train, Some(&val)).unwrap();
    grouped.fit(&train, Some(&val)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let save = |t: &Trainer, name: &str| {
        let p = dir.path().join(name);
        t.model().var_store().save(&p).unwrap();
        params(&p)
    };
    let (a, b) = (
        save(&plain, "a.safetensors"),
        save(&grouped, "b.safetensors"),
    );
    assert_eq!(max_diff(&a, &b), 0.0);
    assert_eq!(plain.history().epochs, grouped.history().epochs);
    for (cfg, field) in [
        (
            TrainerConfig::default().finetune(FinetuneConfig::default()),
            "finetune",
        ),
        (
            TrainerConfig::default().skip_nonfinite_batches(true),
            "skip_nonfinite_batches",
        ),
    ] {
        assert!(cfg.validate().is_ok());
        let err = cfg
            .distributed(one.clone())
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains(field) && err.contains("distributed"), "{err}");
    }
}
