//! Data-parallel training of Wide + TabMlp on UCI Adult (bundled) over PyTorch's c10d (Gloo),
//! launched by torchrun:
//!
//! ```sh
//! make distributed-demo     # = torchrun --no-python --standalone --nproc-per-node=2 \
//!                           #     target/release/examples/adult_distributed
//! ```
//!
//! Every rank loads the data; rank 0 fits the preprocessors and shares them; each rank trains on
//! its half of every epoch with batch 256 (gradients averaged before every step), so the run
//! takes the steps of one process with batch 512 on the same rows in the same order. Rank 0
//! then prints the test accuracy, the throughput and the communication per step, trains that
//! single process itself and prints `max |weight difference| vs single process` (float
//! rounding only: the model has no dropout, whose masks would differ).
//!
//! Run alone (no torchrun) it is a group of one: the same program, one process. Environment:
//! `WIDEDEEP_DEMO_EPOCHS` (default 3); `WIDEDEEP_DIST_TIMEOUT_S` (default 300).
use anyhow::Result;
use std::time::Instant;
use widedeep::datasets;
use widedeep::datasets::adult_columns::{crossed, CATEGORICAL, CONTINUOUS, WIDE};
use widedeep::prelude::*;

const BATCH_PER_RANK: usize = 256;

fn model_config(prep: &Preprocessors) -> Result<WideDeepConfig> {
    Ok(WideDeepConfig::new()
        .wide(WideConfig::new(prep.wide_dim()?))
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta()?)
                .mlp(MlpConfig::default().hidden_dims([64, 32]).dropout(0.0)),
        )
        .seed(1))
}

fn trainer_config(prep: &Preprocessors, batch: usize, epochs: usize) -> Result<TrainerConfig> {
    Ok(TrainerConfig::new(prep.objective()?)
        .epochs(epochs)
        .batch_size(batch)
        .lr(1e-3)
        .metrics([Metric::Accuracy, Metric::Auc])
        .seed(42)
        .verbose(0))
}

fn main() -> Result<()> {
    let dist = Distributed::from_env()?; // RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from torchrun
    let world = dist.world_size();
    let epochs: usize = std::env::var("WIDEDEEP_DEMO_EPOCHS").map_or(Ok(3), |v| v.parse())?;
    let df = datasets::adult()?;
    let (train_df, test_df) = datasets::train_test_split(&df, 0.2, 42)?;
    // fitted once, on rank 0, and shared
    let prep = dist.on_main_shared(|| {
        let mut prep = Preprocessors::new()
            .wide(WidePreprocessor::new(&WIDE).crossed_cols(crossed()))
            .tab(TabPreprocessor::new(&CATEGORICAL, &CONTINUOUS))
            .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
        prep.fit(&train_df)?;
        Ok(prep)
    })?;
    let train = prep.transform(&train_df)?;
    let test = prep.transform(&test_df)?;
    if dist.is_main() {
        println!(
            "Adult: {} training rows, {} test rows; {world} process(es), batch {BATCH_PER_RANK} \
             per process, {epochs} epochs",
            train.len(),
            test.len()
        );
    }

    // the one line that makes the trainer data-parallel
    let config = trainer_config(&prep, BATCH_PER_RANK, epochs)?.distributed(dist.clone());
    let model = WideDeep::new(&model_config(&prep)?, Device::Cpu)?;
    let mut trainer = Trainer::new(model, config)?;
    let t0 = Instant::now();
    trainer.fit(&train, None)?;
    let seconds = t0.elapsed().as_secs_f64();
    let comm = dist.comm_stats();
    let steps = (train.len() as usize)
        .div_ceil(world)
        .div_ceil(BATCH_PER_RANK)
        * epochs;
    if !dist.is_main() {
        return Ok(()); // rank 0 reports and writes files
    }
    let last = trainer.history().epochs.last().cloned().unwrap_or_default();
    println!(
        "distributed: train loss {:.4}, train AUC {:.4} (over all ranks' rows)",
        last["loss"], last["auc"]
    );
    let acc = trainer.evaluate(&test, None)?["accuracy"];
    println!("test accuracy: {acc:.4}");
    println!(
        "{world} process(es): {steps} steps in {seconds:.2} s = {:.1} steps/s, {:.0} rows/s; \
         per step {:.3} MB communicated, {:.2} ms waiting for communication, {:.1} gradient \
         buckets overlapped with the backward pass",
        steps as f64 / seconds,
        (train.len() as usize * epochs) as f64 / seconds,
        comm.bytes as f64 / steps as f64 / 1e6,
        comm.seconds * 1e3 / steps as f64,
        comm.overlapped_buckets as f64 / steps as f64
    );

    // the same steps in one process: batch world × 256 on the same rows in the same order,
    // with the threads of one rank (torchrun sets OMP_NUM_THREADS=1; on this 2-core machine
    // two threads were slower for this small model)
    let threads = widedeep::tch::get_num_threads();
    let single_cfg = trainer_config(&prep, BATCH_PER_RANK * world, epochs)?;
    let mut single = Trainer::new(
        WideDeep::new(&model_config(&prep)?, Device::Cpu)?,
        single_cfg,
    )?;
    let t0 = Instant::now();
    single.fit(&train, None)?;
    let single_s = t0.elapsed().as_secs_f64();
    println!(
        "1 process ({threads} thread(s)), batch {}: {steps} steps in {single_s:.2} s = {:.1} \
         steps/s, {:.0} rows/s; test accuracy {:.4}",
        BATCH_PER_RANK * world,
        steps as f64 / single_s,
        (train.len() as usize * epochs) as f64 / single_s,
        single.evaluate(&test, None)?["accuracy"]
    );
    let theirs = single.model().var_store().variables();
    let mut max_diff = 0f64;
    for (name, w) in trainer.model().var_store().variables() {
        let d = (&w - &theirs[&name]).abs().max().double_value(&[]);
        max_diff = max_diff.max(d);
    }
    println!("max |weight difference| vs single process: {max_diff:.2e}");
    Ok(())
}
