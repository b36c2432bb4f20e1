//! Tests of the schedulers: PyTorch's values, state round trips, validation.
use super::*;

fn epochs(cfg: &LrScheduler, base: f64, n: usize) -> Vec<f64> {
    let mut s = Scheduler::new(cfg, base, 100, "s").unwrap();
    let rec = BTreeMap::new();
    let mut v = vec![s.lr()];
    for _ in 1..n {
        s.on_epoch_end(&rec, "s").unwrap();
        v.push(s.lr());
    }
    v
}

fn batches(cfg: &LrScheduler, base: f64, total: usize, n: usize) -> Vec<f64> {
    let mut s = Scheduler::new(cfg, base, total, "s").unwrap();
    let mut v = vec![s.lr()];
    for _ in 1..n {
        s.on_batch_end();
        v.push(s.lr());
    }
    v
}

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 + 1e-9 * w.abs(),
            "step {i}: {g} vs {w}\n{got:?}\n{want:?}"
        );
    }
}

#[test]
fn step_multistep_exponential_closed_forms() {
    close(
        &epochs(&LrScheduler::step(2, 0.5), 1.0, 6),
        &[1.0, 1.0, 0.5, 0.5, 0.25, 0.25],
    );
    close(
        &epochs(&LrScheduler::multi_step([1, 4], 0.1), 1.0, 6),
        &[1.0, 0.1, 0.1, 0.1, 0.01, 0.01],
    );
    close(
        &epochs(&LrScheduler::exponential(0.9), 0.1, 4),
        &[0.1, 0.09, 0.081, 0.0729],
    );
}

// The values below are PyTorch 2.11's, printed by `tests/fixtures/scheduler_reference.py`.
#[test]
fn cosine_schedules_match_pytorch() {
    close(
        &epochs(&LrScheduler::cosine(4, 0.01), 0.1, 7),
        &[
            0.1,
            0.08681980515339464,
            0.05500000000000001,
            0.023180194846605363,
            0.01,
            0.023180194846605363,
            0.05500000000000002,
        ],
    );
    close(
        &epochs(&LrScheduler::cosine_warm_restarts(2, 2, 0.0), 1.0, 9),
        &[
            1.0,
            0.5,
            1.0,
            0.8535533905932737,
            0.5,
            0.14644660940672627,
            1.0,
            0.9619397662556434,
            0.8535533905932737,
        ],
    );
}

#[test]
fn one_cycle_matches_pytorch() {
    close(
        &batches(&LrScheduler::one_cycle(Some(1.0)), 0.1, 10, 10),
        &[
            0.040000000000000036,
            0.52,
            1.0,
            0.9504846320134737,
            0.8117456539497631,
            0.6112620219362893,
            0.38874197806371075,
            0.18825834605023697,
            0.049519367986526286,
            4e-06,
        ],
    );
    let three = LrScheduler::OneCycle {
        max_lr: Some(1.0),
        total_steps: Some(10),
        pct_start: 0.3,
        anneal_strategy: Anneal::Linear,
        div_factor: 10.0,
        final_div_factor: 100.0,
        three_phase: true,
    };
    close(
        &batches(&three, 0.1, 999, 10),
        &[
            0.1, 0.55, 1.0, 0.55, 0.1, 0.0802, 0.0604, 0.0406, 0.0208, 0.001,
        ],
    );
}

#[test]
fn cyclic_matches_pytorch() {
    let tri2 = LrScheduler::Cyclic {
        base_lr: Some(0.1),
        max_lr: 1.0,
        step_size_up: 2,
        step_size_down: Some(3),
        mode: CyclicMode::Triangular2,
        gamma: 1.0,
    };
    close(
        &batches(&tri2, 0.5, 10, 11),
        &[0.1, 0.55, 1.0, 0.7, 0.4, 0.1, 0.325, 0.55, 0.4, 0.25, 0.1],
    );
    let exp = LrScheduler::Cyclic {
        base_lr: None,
        max_lr: 1.0,
        step_size_up: 2,
        step_size_down: None,
        mode: CyclicMode::ExpRange,
        gamma: 0.9,
    };
    close(
        &batches(&exp, 0.2, 10, 6),
        &[0.2, 0.56, 0.848, 0.4916, 0.2, 0.436196],
    );
}

#[test]
fn reduce_on_plateau_matches_pytorch() {
    let cfg = LrScheduler::ReduceOnPlateau {
        monitor: Some("val_loss".into()),
        mode: Mode::Auto,
        factor: 0.5,
        patience: 1,
        threshold: 0.01,
        threshold_mode: ThresholdMode::Rel,
        cooldown: 1,
        min_lr: 0.03,
        eps: 1e-8,
    };
    let mut s = Scheduler::new(&cfg, 0.2, 1, "lr_scheduler").unwrap();
    let losses = [
        1.0, 0.9, 0.895, 0.895, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9,
    ];
    let mut lrs = Vec::new();
    for l in losses {
        s.on_epoch_end(
            &BTreeMap::from([("val_loss".to_string(), l)]),
            "lr_scheduler",
        )
        .unwrap();
        lrs.push(s.lr());
    }
    close(
        &lrs,
        &[
            0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.03, 0.03, 0.03,
        ],
    );
    let e = s
        .on_epoch_end(&BTreeMap::from([("loss".to_string(), 1.0)]), "lr_scheduler")
        .unwrap_err();
    assert!(e.to_string().contains("lr_scheduler.monitor"), "{e}");
}

#[test]
fn warmup_then_inner_schedule() {
    let cfg = LrScheduler::warmup(3, false, Some(LrScheduler::step(2, 0.1)));
    close(
        &epochs(&cfg, 0.9, 8),
        &[0.3, 0.5, 0.7, 0.9, 0.9, 0.09, 0.09, 0.009],
    );
    // per-batch warm-up hands over to a per-batch schedule
    let cfg = LrScheduler::warmup(2, true, Some(LrScheduler::one_cycle(None)));
    let v = batches(&cfg, 1.0, 10, 4);
    close(&v, &[1.0 / 3.0, 2.0 / 3.0, 0.04, 0.52]);
}

#[test]
fn state_round_trips_and_validation_names_fields() {
    let mut s = Scheduler::new(&LrScheduler::cosine_warm_restarts(3, 2, 0.0), 1.0, 1, "x").unwrap();
    for _ in 0..4 {
        s.on_epoch_end(&BTreeMap::new(), "x").unwrap();
    }
    let json = serde_json::to_string(&s).unwrap();
    let mut r: Scheduler = serde_json::from_str(&json).unwrap();
    assert_eq!(r, s);
    s.on_epoch_end(&BTreeMap::new(), "x").unwrap();
    r.on_epoch_end(&BTreeMap::new(), "x").unwrap();
    assert_eq!(r.lr(), s.lr());
    let e = Scheduler::new(
        &LrScheduler::step(0, 0.1),
        1.0,
        1,
        "component_lr_scheduler.wide",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("component_lr_scheduler.wide.step_size"),
        "{e}"
    );
    let e = LrScheduler::warmup(2, false, Some(LrScheduler::exponential(-1.0)))
        .validate("lr_scheduler")
        .unwrap_err();
    assert!(e.to_string().contains("lr_scheduler.then.gamma"), "{e}");
}
