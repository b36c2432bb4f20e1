//! Saving and loading whole pipelines.
use crate::common::*;
use widedeep::prelude::*;

#[test]
fn save_load_round_trip_predicts_identically() {
    let (train_df, test_df) = adult_split(2_000, 500);
    let mut prep = adult_preprocessors();
    let train = prep.fit_transform(&train_df).unwrap();
    let mut trainer = wide_tabmlp_trainer(&prep, 5, 1);
    trainer.fit(&train, None).unwrap();
    let pipeline = Pipeline::new(prep, trainer);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("adult");
    pipeline.save(&dir).unwrap();
    for f in ["pipeline.json", "model.safetensors", "history.json"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    // saving again replaces the directory and leaves no temporary folders
    pipeline.save(&dir).unwrap();
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert_eq!(names, vec!["adult".to_string()]);

    let loaded = Pipeline::load(&dir, Device::Cpu).unwrap();
    let a = pipeline.predict_proba(&test_df).unwrap();
    let b = loaded.predict_proba(&test_df).unwrap();
    assert_eq!(a.size(), [500, 2]);
    assert!(a.equal(&b), "reloaded predictions differ");
    assert_eq!(loaded.history(), pipeline.history());
    // prediction data need not carry the target column
    let no_target = test_df.drop("income").unwrap();
    assert!(pipeline
        .predict(&no_target)
        .unwrap()
        .equal(&loaded.predict(&test_df).unwrap()));
}

#[test]
fn damaged_pipeline_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Pipeline::load(tmp.path(), Device::Cpu).unwrap_err();
    assert!(matches!(err, WideDeepError::BadPipeline { .. }), "{err}");
    assert!(err.to_string().contains("pipeline.json"), "{err}");
    std::fs::write(tmp.path().join("pipeline.json"), "{ not json").unwrap();
    assert!(matches!(
        Pipeline::load(tmp.path(), Device::Cpu),
        Err(WideDeepError::BadPipeline { .. })
    ));
}

#[test]
fn a_custom_component_model_refuses_to_save_and_leaves_nothing() {
    let (train_df, _) = adult_split(200, 10);
    let mut prep = adult_preprocessors();
    prep.fit(&train_df).unwrap();
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let tab = {
        // building layers draws from libtorch's global generator
        let _rng = widedeep::torch_rng_lock();
        TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
            .build(&(vs.root() / "mine"))
            .unwrap()
    };
    let model = WideDeep::from_components(vs, None, vec![Box::new(tab)], None, 1).unwrap();
    let trainer = Trainer::new(model, TrainerConfig::new(Objective::Binary).verbose(0)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("custom");
    assert!(Pipeline::new(prep, trainer).save(&dir).is_err());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// Pipelines saved by the build at commit 32be886 (tests/fixtures/pipelines/README.md) load
/// and predict what they predicted then.
#[test]
fn pipelines_saved_by_an_earlier_build_load_and_predict_identically() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipelines");
    let adult = {
        let df = widedeep::datasets::adult().unwrap();
        widedeep::datasets::train_test_split(&df, 0.2, 3).unwrap().1
    };
    let california = {
        let df = widedeep::datasets::california_housing().unwrap();
        widedeep::datasets::train_test_split(&df, 0.2, 3).unwrap().1
    };
    let reviews = {
        let df = widedeep::datasets::womens_ecommerce_reviews().unwrap();
        widedeep::datasets::train_test_split(&df, 0.2, 3).unwrap().1
    };
    for (name, test, proba) in [
        ("adult_wide_tabmlp", adult, true),
        ("california_tabtransformer", california, false),
        ("reviews_tabmlp_gru", reviews, true),
    ] {
        let pipeline = Pipeline::load(root.join(name), Device::Cpu)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let rows = test.head(Some(64));
        let got = if proba {
            pipeline.predict_proba(&rows).unwrap()
        } else {
            pipeline.predict(&rows).unwrap()
        };
        let got = Vec::<f64>::try_from(got.to_kind(tch::Kind::Double).view([-1])).unwrap();
        let text = std::fs::read_to_string(root.join(format!("{name}.expected.json"))).unwrap();
        let expected: Vec<f64> = serde_json::from_str(&text).unwrap();
        assert_eq!(got.len(), expected.len(), "{name}");
        // identical on this machine; 1e-5 leaves room for other CPUs' f32 kernels
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!((g - e).abs() <= 1e-5, "{name}[{i}]: {g} vs {e}");
        }
    }
}
