//! Attributions of a trained Wide + TabMlp pipeline on Adult, through the public API.
use crate::common::*;
use widedeep::explain::{plots, Explainer, ExplainerConfig, Explanation, Method, Output};
use widedeep::prelude::*;

fn trained_pipeline() -> (
    Pipeline,
    polars::prelude::DataFrame,
    polars::prelude::DataFrame,
) {
    let (train_df, test_df) = adult_split(3_000, 200);
    let mut prep = adult_preprocessors();
    let train = prep.fit_transform(&train_df).unwrap();
    let mut trainer = wide_tabmlp_trainer(&prep, 7, 2);
    trainer.fit(&train, None).unwrap();
    (Pipeline::new(prep, trainer), train_df, test_df)
}

fn explain(
    pipeline: &Pipeline,
    bg: &polars::prelude::DataFrame,
    rows: &polars::prelude::DataFrame,
    method: Method,
) -> Explanation {
    let config = ExplainerConfig::new(method)
        .background_size(20)
        .verbose(0)
        .seed(1);
    Explainer::for_pipeline(pipeline, bg, &config)
        .unwrap()
        .explain_df(rows)
        .unwrap()
}

/// The string column `name` of `df`, with `null` for the missing values.
fn strings(df: &polars::prelude::DataFrame, name: &str, null: &str) -> Vec<String> {
    let col = df.column(name).unwrap().str().unwrap().clone();
    col.iter().map(|v| v.unwrap_or(null).to_string()).collect()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn adult_pipeline_explained_by_every_method() {
    let (pipeline, train_df, test_df) = trained_pipeline();
    let rows = test_df.head(Some(12));
    let exact = explain(&pipeline, &train_df, &rows, Method::Exact);
    // 8 categorical + 3 continuous columns; the wide columns join them by name, the crossed
    // column is a feature of its own
    assert_eq!(exact.n_features(), 12);
    let edu = exact.feature_index("education").unwrap();
    assert_eq!(exact.groups[edu], ["cat:education", "wide:education"]);
    assert!(exact.feature_index("education-occupation").is_some());
    assert_eq!(exact.output_names, ["logit P(>50K)"]);
    // the values shown are the DataFrame's
    let age = exact.feature_index("age").unwrap();
    let ages: Vec<f64> = rows
        .column("age")
        .unwrap()
        .cast(&polars::prelude::DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(exact.data_value(3, age), Some(ages[3]));
    let educations = strings(&rows, "education", "null");
    assert_eq!(exact.display_value(3, edu), educations[3]);
    // the base value is the mean logit over the background; values add up to the logit
    let logits = pipeline
        .trainer
        .predict_raw(&pipeline.preprocessors.transform(&rows).unwrap())
        .unwrap();
    let logits: Vec<f32> = Vec::try_from(logits.view([-1])).unwrap();
    for (r, logit) in logits.iter().enumerate() {
        assert!((exact.prediction(r, 0) - *logit as f64).abs() < 1e-5);
    }
    assert!(exact.max_additivity_gap() < 1e-6);

    let scale = exact.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let kernel = explain(&pipeline, &train_df, &rows, Method::kernel_shap());
    let err_kernel = max_diff(&kernel.values, &exact.values);
    let perm = explain(
        &pipeline,
        &train_df,
        &rows,
        Method::Permutation { permutations: 50 },
    );
    let err_perm = max_diff(&perm.values, &exact.values);
    let ig = explain(&pipeline, &train_df, &rows, Method::integrated_gradients());
    let gs = explain(&pipeline, &train_df, &rows, Method::gradient_shap());
    eprintln!(
        "Adult, 12 features, largest |φ| {scale:.3}: KernelSHAP (default budget) vs exact \
         {err_kernel:.2e}; permutation (50) vs exact {err_perm:.2e}; IG completeness gap \
         {:.2e}; GradientSHAP additivity gap {:.2e}",
        ig.relative_additivity_gap(),
        gs.relative_additivity_gap()
    );
    assert!(err_kernel < 0.02 * scale, "{err_kernel}");
    assert!(err_perm < 0.1 * scale, "{err_perm}");
    assert!(kernel.max_additivity_gap() < 1e-6 && perm.max_additivity_gap() < 1e-6);
    assert!(ig.relative_additivity_gap() < 0.01);
    assert!(gs.relative_additivity_gap() < 0.1);
    // the methods agree on what matters most
    let top = |e: &Explanation| e.global_importance().top(1)[0].0.clone();
    assert_eq!(top(&kernel), top(&exact));
    assert_eq!(top(&perm), top(&exact));
}

#[test]
fn explanations_export_and_plot() {
    let (pipeline, train_df, test_df) = trained_pipeline();
    let rows = test_df.head(Some(40));
    let config = ExplainerConfig::new(Method::kernel_shap())
        .output(Output::Probability)
        .background(BackgroundKind::KMeans)
        .background_size(10)
        .verbose(0);
    let e = Explainer::for_pipeline(&pipeline, &train_df, &config)
        .unwrap()
        .explain_df(&rows)
        .unwrap();
    assert_eq!(e.output_names, ["P(>50K)"]);
    assert!(e.max_additivity_gap() < 1e-6);
    let df = e.to_dataframe().unwrap();
    assert_eq!(df.height(), 40);
    assert_eq!(df.width(), 12 + 4);
    let back = Explanation::from_json(&e.to_json().unwrap()).unwrap();
    assert_eq!(back.feature_names, e.feature_names);
    assert_eq!(back.display, e.display);
    assert!(max_diff(&back.values, &e.values) < 1e-12);
    assert!(max_diff(&back.base_values, &e.base_values) < 1e-12);
    let dir = tempfile::tempdir().unwrap();
    plots::bar(
        &e.global_importance(),
        dir.path().join("bar.png"),
        &Default::default(),
    )
    .unwrap();
    plots::beeswarm(&e, 0, dir.path().join("swarm.svg"), &Default::default()).unwrap();
    plots::waterfall(&e, 0, 0, dir.path().join("fall.png"), &Default::default()).unwrap();
    for f in ["bar.png", "swarm.svg", "fall.png"] {
        assert!(std::fs::metadata(dir.path().join(f)).unwrap().len() > 1000);
    }
    // without the pipeline's preprocessors there is no explain_df
    let model_only = ExplainerConfig::new(Method::permutation())
        .background_size(5)
        .verbose(0)
        .build(
            pipeline.trainer.model(),
            &pipeline.preprocessors.transform(&rows).unwrap().input,
        )
        .unwrap();
    assert!(model_only.explain_df(&rows).is_err());
}

#[test]
fn text_and_image_values_are_shown_and_exported() {
    let df = digits_frame(48, "note");
    let mut prep = digits_preprocessors(
        "note",
        TargetEncoder::new("y", TargetKind::Binary).positive_class("1"),
    );
    let data = prep.fit_transform(&df).unwrap();
    let cfg = WideDeepConfig::new()
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
                .mlp(MlpConfig::default().hidden_dims([8])),
        )
        .deeptext(
            BasicRnnConfig::new(TextInput::from_meta(&prep.text_meta(0).unwrap(), 0))
                .embed_dim(8)
                .hidden_dim(8)
                .n_layers(1),
        )
        .deepimage(SmallCnnConfig::new(ImageInput::new(0, "image")).channels([4, 8]))
        .seed(3);
    let model = WideDeep::new(&cfg, Device::Cpu).unwrap();
    let tcfg = TrainerConfig::new(prep.objective().unwrap())
        .epochs(1)
        .batch_size(16)
        .verbose(0);
    let mut trainer = Trainer::new(model, tcfg).unwrap();
    trainer.fit(&data, None).unwrap();
    let pipeline = Pipeline::new(prep, trainer);
    let rows = df.head(Some(6));
    let paths = strings(&rows, "image", "");
    for method in [Method::GradientShap { samples: 20 }, Method::Exact] {
        let config = ExplainerConfig::new(method)
            .background_size(8)
            .image_grid([4, 4])
            .verbose(0);
        let ex = Explainer::for_pipeline(&pipeline, &df, &config).unwrap();
        // the features are named after the DataFrame's columns
        assert_eq!(ex.feature_names(), ["x", "note", "image"]);
        let e = ex.explain_df(&rows).unwrap();
        let (note, image) = (
            e.feature_index("note").unwrap(),
            e.feature_index("image").unwrap(),
        );
        // the raw text (null where the DataFrame has none) and the image path
        assert_eq!(e.display_value(0, note), "add zero");
        assert_eq!(e.display_value(3, note), "null");
        assert_eq!(e.display_value(1, image), paths[1]);
        let frame = e.to_dataframe_with_data().unwrap();
        let shown = strings(&frame, "note_shown", "");
        assert_eq!(shown[2], "add two");
        let back = Explanation::from_json(&e.to_json().unwrap()).unwrap();
        assert_eq!(back.display, e.display);
        // without the DataFrame: the text from its tokens, the image's shape
        let input = pipeline.preprocessors.transform(&rows).unwrap().input;
        let e2 = ex.explain(&input).unwrap();
        assert_eq!(e2.display_value(1, note), "add one");
        assert_eq!(e2.display_value(1, image), "image 3×28×28");
        if method.is_gradient() {
            // token values come with their token strings
            let detail = e.detail("note").unwrap();
            let widedeep::explain::DetailKind::Tokens {
                seq_len, tokens, ..
            } = &detail.kind
            else {
                panic!("no token values");
            };
            assert_eq!(tokens.len(), 6 * seq_len);
            assert!(tokens[..*seq_len].iter().any(|t| t == "zero"), "{tokens:?}");
            // the region heat map next to / over the image
            let keep = std::env::var("WIDEDEEP_KEEP_PLOTS").ok();
            let tmp = tempfile::tempdir().unwrap();
            let dir = keep.map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);
            let img = plots::RgbImage::from_tensor(&input.image[0].get(0)).unwrap();
            assert_eq!((img.width, img.height), (28, 28));
            for ext in ["png", "svg"] {
                let path = dir.join(format!("regions.{ext}"));
                plots::image_regions(&e, 0, "image", 0, Some(&img), &path, &Default::default())
                    .unwrap();
                assert!(std::fs::metadata(&path).unwrap().len() > 1000);
            }
            let bare = dir.join("regions_bare.png");
            plots::image_regions(&e, 1, "image", 0, None, &bare, &Default::default()).unwrap();
            assert!(
                plots::image_regions(&e, 0, "note", 0, None, &bare, &Default::default()).is_err()
            );
        } else {
            assert!(e.max_additivity_gap() < 1e-6);
        }
    }
}
