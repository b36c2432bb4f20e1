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

/// The data and model of case `kind`: `STEPS · 2B` training rows.
fn case(kind: &str) -> (Dataset, WideDeepConfig) {
    let n = STEPS * 2 * B;
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
    let model = WideDeep::new(&cfg, Device::Cpu).unwrap();
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
    (Trainer::new(model, config).unwrap(), data)
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

/// Kills or freezes this process at batch 5 of the first epoch.
struct Fault(String);

impl Callback for Fault {
    fn on_batch_begin(&mut self, state: &mut TrainState) -> widedeep::Result<()> {
        if state.batch == 5 {
            let pid = std::process::id().to_string();
            let _ = Command::new("kill")
                .args([&format!("-{}", self.0), &pid])
                .status();
            std::thread::sleep(Duration::from_secs(60));
        }
        Ok(())
    }
}

fn run_worker(kind: &str, out: &Path) -> widedeep::Result<()> {
    let d = Distributed::from_env()?;
    // rank 0's value reaches every rank
    let shared: Vec<i64> = d.on_main_shared(|| Ok(vec![d.rank() as i64, 42]))?;
    assert_eq!(shared, [0, 42], "rank {}", d.rank());
    let epochs = if std::env::var(FAULT).is_ok() { 3 } else { 1 };
    let (mut trainer, data) = trainer_for(kind, B, epochs, Some(d.clone()));
    if let Ok(spec) = std::env::var(FAULT) {
        let (rank, signal) = spec.split_once(':').unwrap();
        if d.rank().to_string() == rank {
            trainer.add_callback(Box::new(Fault(signal.to_string())));
        }
    }
    trainer.fit(&data, None)?;
    let vs = trainer.model().var_store();
    vs.save(out.join(format!("rank{}.safetensors", d.rank())))?;
    let rec = &trainer.history().epochs[0];
    std::fs::write(
        out.join(format!("record{}.txt", d.rank())),
        format!("{} {}", rec["loss"], rec["auc"]),
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
    let mut ranks = Ranks::start(kind, 2, dir.path(), &[]);
    // the reference meanwhile, in this process
    let (mut single, data) = trainer_for(kind, 2 * B, 1, None);
    single.fit(&data, None).unwrap();
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

/// Rank 1 gets `signal` mid-epoch; rank 0 must stop with an error naming it within `timeout`.
fn lost_rank_is_named(signal: &str, timeout_s: u64, bound_s: f64) {
    let dir = tempfile::tempdir().unwrap();
    let fault = format!("1:{signal}");
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
    lost_rank_is_named("STOP", 4, 30.0);
}
