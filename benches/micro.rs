//! Criterion micro-benchmarks, so that regressions show: the preprocessors' fit and transform
//! on Adult (48,842 rows) and on 2,000 reviews, and one training step (one batch of 256 rows:
//! forward, loss, backward, optimizer step, through `Trainer::fit` of one epoch on a trainer
//! that keeps training) of Wide + TabMlp and of
//! TabTransformer on one libtorch thread.
//!
//! Run: `cargo bench --bench micro` (criterion keeps the previous run under target/criterion and
//! reports the change); `cargo bench --bench micro -- tabmlp` runs a subset.
use criterion::{criterion_group, criterion_main, Criterion};
use widedeep::datasets;
use widedeep::prelude::*;

/// The categorical columns without capital-gain/-loss.
const CAT: &[&str] = datasets::adult_columns::CATEGORICAL.split_at(8).0;
const CONT: [&str; 3] = datasets::adult_columns::CONTINUOUS;

fn preprocessing(c: &mut Criterion) {
    let adult = datasets::adult().expect("bundled Adult");
    let reviews = datasets::womens_ecommerce_reviews()
        .expect("bundled reviews")
        .head(Some(2000));
    let mut g = c.benchmark_group("preprocessing");
    g.sample_size(20);
    g.bench_function("tab_fit_adult", |b| {
        b.iter(|| {
            TabPreprocessor::new(CAT, &CONT)
                .fit(&adult)
                .map(|_| ())
                .expect("fit")
        })
    });
    let mut tab = TabPreprocessor::new(CAT, &CONT);
    tab.fit(&adult).expect("fit");
    g.bench_function("tab_transform_adult", |b| {
        b.iter(|| tab.transform(&adult).expect("transform"))
    });
    let crossed = vec![vec!["education".to_string(), "occupation".to_string()]];
    g.bench_function("wide_fit_transform_adult", |b| {
        b.iter(|| {
            WidePreprocessor::new(CAT)
                .crossed_cols(crossed.clone())
                .fit_transform(&adult)
                .expect("fit_transform")
        })
    });
    g.bench_function("text_fit_transform_2000_reviews", |b| {
        b.iter(|| {
            TextPreprocessor::new("Review Text")
                .fit_transform(&reviews)
                .expect("fit_transform")
        })
    });
    g.finish();
}

/// One batch of 256 Adult rows and a model config for it.
fn step_setup(attention: bool) -> (WideDeepConfig, Dataset) {
    let batch = datasets::adult().expect("bundled Adult").head(Some(256));
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(CAT, &CONT))
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"));
    if !attention {
        prep = prep.wide(WidePreprocessor::new(CAT));
    }
    let data = prep.fit_transform(&batch).expect("preprocess");
    let meta = prep.tab_meta().expect("tab meta");
    let model = if attention {
        // the suite's TabTransformer: 32-wide tokens, 8 heads, 4 blocks, MLP 64-32
        let mut c = TabTransformerConfig::from_meta(&meta).n_blocks(4);
        c.mlp = Some(MlpConfig::default().hidden_dims([64, 32]).dropout(0.1));
        WideDeepConfig::new().deeptabular(c)
    } else {
        WideDeepConfig::new()
            .wide(WideConfig::new(prep.wide_dim().expect("wide dim")))
            .deeptabular(
                TabMlpConfig::from_meta(&meta)
                    .mlp(MlpConfig::default().hidden_dims([64, 32]).dropout(0.1)),
            )
    };
    (model, data)
}

fn training_step(c: &mut Criterion) {
    tch::set_num_threads(1);
    let mut g = c.benchmark_group("train_step_256");
    for (name, attention) in [("wide_tabmlp", false), ("tab_transformer", true)] {
        let (model_cfg, data) = step_setup(attention);
        let config = TrainerConfig::new(Objective::Binary)
            .epochs(1)
            .batch_size(256)
            .verbose(0);
        let model = WideDeep::new(&model_cfg, Device::Cpu).expect("model");
        let mut trainer = Trainer::new(model, config).expect("trainer");
        // each `fit` of one epoch over one batch is one optimizer step (plus fit's fixed cost)
        g.bench_function(name, |b| {
            b.iter(|| trainer.fit(&data, None).map(|_| ()).expect("fit"))
        });
    }
    g.finish();
}

criterion_group!(benches, preprocessing, training_step);
criterion_main!(benches);
