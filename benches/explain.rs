//! Time to explain 1,000 Adult test predictions with each attribution method (Wide + TabMlp,
//! 12 features), then KernelSHAP on a Wide-only (linear) model whose weights, background,
//! rows, settings, values and timings are written to `target/widedeep-bench/explain_wide.json`
//! for `benches/explain_reference.py`, which runs shap's KernelExplainer on the same model with
//! the same background and `nsamples` and prints the comparison. Prints markdown tables.
//!
//! Run (libtorch set up as in the README; `WIDEDEEP_BENCH_ROWS` changes the 1,000 rows,
//! `WIDEDEEP_BENCH_THREADS` sets libtorch's thread count, as in the README's table: 1, like
//! numpy under shap):
//! `WIDEDEEP_BENCH_THREADS=1 cargo bench --bench explain &&
//! $(bash scripts/setup-bench-env.sh | tail -n 1)/bin/python benches/explain_reference.py`
use std::time::Instant;
use widedeep::datasets;
use widedeep::explain::{Background, Explainer, ExplainerConfig, Method};
use widedeep::prelude::*;
use widedeep::tch::Tensor;

fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::var("WIDEDEEP_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    if let Some(t) = std::env::var("WIDEDEEP_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        tch::set_num_threads(t);
    }
    let device = default_device()?;
    let df = datasets::adult()?;
    let (train_df, test_df) = datasets::train_test_split(&df, 0.2, 42)?;
    let explain_df = test_df.head(Some(rows));

    // ---- Wide + TabMlp, 12 features (11 columns + one crossed column)
    // the categorical columns but race and native-country
    let cat: Vec<&str> = datasets::adult_columns::CATEGORICAL
        .into_iter()
        .filter(|c| !matches!(*c, "race" | "native-country"))
        .collect();
    let cont = datasets::adult_columns::CONTINUOUS;
    let mut prep = Preprocessors::new()
        .wide(
            WidePreprocessor::new(&["education", "relationship", "occupation", "gender"])
                .crossed_cols(vec![vec!["education".into(), "occupation".into()]]),
        )
        .tab(TabPreprocessor::new(&cat, &cont))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let train = prep.fit_transform(&train_df)?;
    let model = WideDeepConfig::new()
        .wide(WideConfig::new(prep.wide_dim()?))
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta()?)
                .cont_norm(ContNorm::BatchNorm)
                .mlp(MlpConfig::default().hidden_dims([64, 32])),
        )
        .seed(1);
    let model = WideDeep::new(&model, device)?;
    let config = TrainerConfig::new(prep.objective()?)
        .epochs(2)
        .batch_size(256)
        .verbose(0)
        .seed(1);
    let mut trainer = Trainer::new(model, config)?;
    trainer.fit(&train, None)?;
    let pipeline = Pipeline::new(prep, trainer);

    println!(
        "Explaining {rows} Adult test rows, Wide + TabMlp (12 features), device {device:?}, {} \
         threads\n",
        tch::get_num_threads()
    );
    println!("| method | settings | background | time (s) | rows/s | relative additivity gap |");
    println!("|---|---|---|---:|---:|---:|");
    // WIDEDEEP_BENCH_ONLY_KERNEL=1: only the KernelSHAP comparison with shap below
    let only_kernel = std::env::var("WIDEDEEP_BENCH_ONLY_KERNEL").is_ok_and(|v| v == "1");
    let runs = [
        (
            "Integrated gradients",
            Method::integrated_gradients(),
            "50 Gauss–Legendre steps",
            BackgroundKind::Sample,
            100,
        ),
        (
            "GradientSHAP",
            Method::gradient_shap(),
            "200 samples",
            BackgroundKind::Sample,
            100,
        ),
        (
            "KernelSHAP",
            Method::kernel_shap(),
            "2·P + 2048 coalitions",
            BackgroundKind::KMeans,
            20,
        ),
        (
            "Permutation SHAP",
            Method::permutation(),
            "10 permutations",
            BackgroundKind::KMeans,
            20,
        ),
        (
            "Exact Shapley",
            Method::Exact,
            "all 2^P coalitions",
            BackgroundKind::KMeans,
            20,
        ),
    ];
    for (name, method, settings, kind, size) in runs {
        if only_kernel {
            break;
        }
        let cfg = ExplainerConfig::new(method)
            .background(kind)
            .background_size(size)
            .verbose(0);
        let explainer = Explainer::for_pipeline(&pipeline, &train_df, &cfg)?;
        let start = Instant::now();
        let e = explainer.explain_df(&explain_df)?;
        let secs = start.elapsed().as_secs_f64();
        let bg = match kind {
            BackgroundKind::Sample => format!("{size} sampled rows"),
            BackgroundKind::KMeans => format!("k-means, {size}"),
        };
        println!(
            "| {name} | {settings} | {bg} | {secs:.2} | {:.0} | {:.1e} |",
            rows as f64 / secs,
            e.relative_additivity_gap()
        );
    }

    // ---- Wide-only (linear) model: KernelSHAP against shap's KernelExplainer
    let wide_cols = datasets::adult_columns::WIDE;
    let crossed = datasets::adult_columns::crossed();
    let mut wprep = Preprocessors::new()
        .wide(WidePreprocessor::new(&wide_cols).crossed_cols(crossed))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    let wtrain = wprep.fit_transform(&train_df)?;
    let wmodel = WideDeep::new(
        &WideDeepConfig::new()
            .wide(WideConfig::new(wprep.wide_dim()?))
            .seed(2),
        device,
    )?;
    let wconfig = TrainerConfig::new(wprep.objective()?)
        .epochs(1)
        .batch_size(256)
        .verbose(0)
        .seed(2);
    let mut wtrainer = Trainer::new(wmodel, wconfig)?;
    wtrainer.fit(&wtrain, None)?;
    let wpipe = Pipeline::new(wprep, wtrainer);
    let model = wpipe.trainer.model();
    let background_size = 50;
    let bg_data = wpipe.preprocessors.transform(&train_df)?.input;
    let background = Background::sample(&bg_data, background_size, 7)?;
    let x = wpipe.preprocessors.transform(&explain_df)?.input;
    let to_i64 = |t: &Tensor| -> Vec<i64> {
        Vec::try_from(t.to_device(Device::Cpu).contiguous().view([-1])).unwrap_or_default()
    };
    let to_f32 = |t: &Tensor| -> Vec<f32> {
        Vec::try_from(t.to_device(Device::Cpu).contiguous().view([-1])).unwrap_or_default()
    };
    let wide = model.wide().expect("a wide model");
    let mut runs_json = Vec::new();
    println!(
        "\nKernelSHAP on a Wide-only model (10 players), {rows} rows, background {background_size} \
         rows:\n"
    );
    println!("| nsamples | black box (s) | rows/s | wide part in closed form (default) (s) |");
    println!("|---:|---:|---:|---:|");
    for nsamples in [200usize, 2048] {
        let run = |closed: bool| -> anyhow::Result<(f64, Vec<f64>)> {
            let cfg = ExplainerConfig::new(Method::KernelShap { samples: nsamples })
                .wide_closed_form(closed)
                .verbose(0);
            let bg = Background::weighted(
                background.input().map(|t| t.shallow_clone()),
                vec![1.0; background.len()],
            )?;
            let explainer = Explainer::with_background(model, bg, None, &cfg)?;
            let start = Instant::now();
            let e = explainer.explain(&x)?;
            Ok((start.elapsed().as_secs_f64(), e.values))
        };
        let (black_box, values) = run(false)?;
        let (closed, closed_values) = run(true)?;
        println!(
            "| {nsamples} | {black_box:.2} | {:.0} | {closed:.3} |",
            rows as f64 / black_box
        );
        runs_json.push(serde_json::json!({
            "nsamples": nsamples,
            "seconds": black_box,
            "values": values,
            "closed_form_seconds": closed,
            "closed_form_values": closed_values,
        }));
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/widedeep-bench");
    std::fs::create_dir_all(&out)?;
    let n_wide = x.wide.as_ref().map_or(0, |t| t.size()[1]);
    let json = serde_json::json!({
        "n_players": n_wide,
        "weight": to_f32(wide.weight()),
        "bias": to_f32(wide.bias())[0],
        "background": to_i64(background.input().wide.as_ref().expect("wide input")),
        "rows": to_i64(x.wide.as_ref().expect("wide input")),
        "threads": tch::get_num_threads(),
        "runs": runs_json,
    });
    let path = out.join("explain_wide.json");
    std::fs::write(&path, serde_json::to_string(&json)?)?;
    println!(
        "\nwrote {}; compare with shap: python benches/explain_reference.py",
        path.display()
    );
    Ok(())
}
