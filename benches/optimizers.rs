//! Cost of a training step (forward, backward, optimizer step) on the Adult Wide + TabMlp model
//! of `examples/adult.rs` (batch 256): tch's `nn::Optimizer` (libtorch's C++ Adam, which the
//! trainer used before) against `widedeep::training::optim` (the trainer's own Adam and AdamW).
//! Blocks of steps alternate between the two so that load from other processes hits both alike.
//!
//! Run: `cargo bench --bench optimizers -- [--steps 200] [--rounds 5]`
use anyhow::Result;
use std::time::Instant;
use tch::nn::OptimizerConfig;
use tch::Device;
use widedeep::datasets;
use widedeep::prelude::*;
use widedeep::training::{Optimizers, ParamGroup};

#[path = "../examples/common/adult_model.rs"]
mod adult_model;
mod common;
use common::arg;

fn main() -> Result<()> {
    let (steps, rounds) = (arg("--steps", 200), arg("--rounds", 5));
    let df = datasets::adult()?;
    let cat = datasets::adult_columns::CATEGORICAL;
    // the wide columns without capital-gain/-loss
    let wide = &datasets::adult_columns::WIDE[..6];
    let mut prep = Preprocessors::new()
        .wide(WidePreprocessor::new(wide))
        .tab(TabPreprocessor::new(
            &cat,
            &datasets::adult_columns::CONTINUOUS,
        ))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let data = prep.fit_transform(&df.head(Some(256 * 8)))?;
    let batches: Vec<Dataset> = data.batches(256).collect();
    let cfg = adult_model::wide_tabmlp(&prep)?;
    let objective = Objective::Binary;
    let model = WideDeep::new(&cfg, Device::Cpu)?;
    let mut tch_adam = tch::nn::Adam::default().build(model.var_store(), 1e-3)?;
    let params: Vec<(String, tch::Tensor)> = model
        .var_store()
        .trainable_variables()
        .into_iter()
        .enumerate()
        .map(|(i, t)| (format!("p{i}"), t))
        .collect();
    let ours = |opt: Optimizer| {
        Optimizers::new(vec![ParamGroup::new(
            "all",
            opt,
            1e-3,
            0.0,
            params
                .iter()
                .map(|(n, t)| (n.clone(), t.shallow_clone()))
                .collect(),
        )])
    };
    let mut adam = ours(Optimizer::adam());
    let mut adamw = ours(Optimizer::adamw());
    let loss_of = |b: &Dataset| {
        let out = model.forward_t(&b.input, true);
        objective.loss(&out, b.target.as_ref().unwrap())
    };
    let mut times = [0f64; 3];
    for _ in 0..rounds {
        for (k, t) in times.iter_mut().enumerate() {
            let start = Instant::now();
            for s in 0..steps {
                let loss = loss_of(&batches[s % batches.len()]);
                match k {
                    0 => tch_adam.backward_step(&loss),
                    1 | 2 => {
                        let o = if k == 1 { &mut adam } else { &mut adamw };
                        o.zero_grad();
                        loss.backward();
                        o.step();
                    }
                    _ => unreachable!(),
                }
            }
            *t += start.elapsed().as_secs_f64();
        }
    }
    let n = (steps * rounds) as f64;
    println!("| optimizer (training step, batch 256) | ms/step | relative |");
    println!("|---|---:|---:|");
    for (name, t) in [
        "tch nn::Adam (libtorch C++)",
        "widedeep Adam",
        "widedeep AdamW",
    ]
    .iter()
    .zip(times)
    {
        println!("| {name} | {:.3} | {:.2} |", 1e3 * t / n, t / times[0]);
    }
    Ok(())
}
