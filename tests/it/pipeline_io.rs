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
        let pipeline =
            Pipeline::load(root.join(name), Device::Cpu).unwrap_or_else(|e| panic!("{name}: {e}"));
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

/// A small fitted pipeline (Adult, Wide + TabMlp, one epoch) and its test rows.
fn small_pipeline() -> (Pipeline, polars::prelude::DataFrame) {
    let (train_df, test_df) = adult_split(600, 50);
    let mut prep = adult_preprocessors();
    let train = prep.fit_transform(&train_df).unwrap();
    let mut trainer = wide_tabmlp_trainer(&prep, 3, 1);
    trainer.fit(&train, None).unwrap();
    (Pipeline::new(prep, trainer), test_df)
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    names.sort();
    names
}

#[test]
fn save_never_replaces_what_is_not_a_pipeline() {
    let (pipeline, _) = small_pipeline();
    let tmp = tempfile::tempdir().unwrap();
    // a directory of the user's files
    let dir = tmp.path().join("work");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    std::fs::write(dir.join("sub/data.csv"), "a,b\n1,2\n").unwrap();
    let err = pipeline.save(&dir).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/data.csv")).unwrap(),
        "a,b\n1,2\n"
    );
    // a regular file
    let file = tmp.path().join("model.bin");
    std::fs::write(&file, b"precious").unwrap();
    let err = pipeline.save(&file).unwrap_err();
    assert!(err.to_string().contains("model.bin"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    // no leftovers next to them
    assert_eq!(names_in(tmp.path()), ["model.bin", "work"]);
    // a pipeline directory with a file of the user's added is not replaced either
    let p = tmp.path().join("p");
    pipeline.save(&p).unwrap();
    std::fs::write(p.join("README.txt"), "about this model").unwrap();
    let err = pipeline.save(&p).unwrap_err();
    assert!(err.to_string().contains("README.txt"), "{err}");
    assert!(p.join("README.txt").is_file());
    std::fs::remove_file(p.join("README.txt")).unwrap();
    // an existing empty directory and an earlier pipeline are fine
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    pipeline.save(&empty).unwrap();
    pipeline.save(&p).unwrap();
    assert_eq!(
        names_in(&p),
        ["history.json", "model.safetensors", "pipeline.json"]
    );
    assert_eq!(names_in(tmp.path()), ["empty", "model.bin", "p", "work"]);
    // a pipeline.json that is not ours does not make a directory replaceable
    let fake = tmp.path().join("fake");
    std::fs::create_dir(&fake).unwrap();
    std::fs::write(fake.join("pipeline.json"), "{\"name\": \"someone else's\"}").unwrap();
    assert!(pipeline.save(&fake).is_err());
    assert!(fake.join("pipeline.json").is_file());
}

/// Edits `pipeline.json` of `dir` as JSON, dropping its checksums (as a user editing the
/// file on purpose would).
fn edit_manifest(dir: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("pipeline.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("checksums");
    edit(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn damaged_or_edited_pipelines_give_clear_errors() {
    let (pipeline, test_df) = small_pipeline();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let fresh = || {
        pipeline.save(&dir).unwrap();
    };
    // a flipped byte in the weights: the checksum catches it (it would load and predict NaN)
    fresh();
    let w = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x7f;
    std::fs::write(&w, bytes).unwrap();
    let err = Pipeline::load(&dir, Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, WideDeepError::BadPipeline { reason, .. } if reason.contains("model.safetensors") && reason.contains("checksum")),
        "{err}"
    );
    // a changed number in pipeline.json: caught by its own checksum
    fresh();
    let m = dir.join("pipeline.json");
    let text = std::fs::read_to_string(&m).unwrap();
    let edited = text.replacen("\"seed\": 3", "\"seed\": 4", 1);
    assert_ne!(edited, text);
    std::fs::write(&m, edited).unwrap();
    let err = Pipeline::load(&dir, Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("pipeline.json"), "{err}");
    // whitespace does not matter
    fresh();
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(&m, text.replace("\n", "\n  ")).unwrap();
    let reloaded = Pipeline::load(&dir, Device::Cpu).unwrap();
    assert!(reloaded
        .predict_proba(&test_df)
        .unwrap()
        .equal(&pipeline.predict_proba(&test_df).unwrap()));
    // deliberately edited (checksums removed): a weight shape mismatch names the tensor and
    // both shapes, without libtorch's backtrace
    fresh();
    edit_manifest(&dir, |v| {
        let w = &mut v["model"]["wide"]["wide_dim"];
        *w = serde_json::json!(w.as_i64().unwrap() + 1);
    });
    let err = Pipeline::load(&dir, Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`wide.weight`"), "{msg}");
    assert!(msg.contains("the model expects"), "{msg}");
    assert!(!msg.contains("frame #"), "{msg}");
    // a huge size: a typed error naming the component and the size, not a panic
    fresh();
    edit_manifest(&dir, |v| {
        v["model"]["wide"]["wide_dim"] = serde_json::json!(100_000_000_000i64);
    });
    let err = Pipeline::load(&dir, Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, WideDeepError::ModelTooLarge { component, requested, .. }
            if component == "wide" && requested.contains("100000000001")),
        "{err}"
    );
    fresh();
    edit_manifest(&dir, |v| {
        v["model"]["deeptabular"]["cat_embed"][0]["cardinality"] =
            serde_json::json!(100_000_001u64);
        v["model"]["deeptabular"]["cat_embed"][0]["embed_dim"] = serde_json::json!(600);
    });
    let err = Pipeline::load(&dir, Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, WideDeepError::ModelTooLarge { component, requested, .. }
            if component.starts_with("deeptabular") && requested.contains("100000001 × 600")),
        "{err}"
    );
}

#[test]
fn building_a_model_too_large_is_an_error_not_a_panic() {
    let err = WideDeep::new(
        &WideDeepConfig::new().wide(WideConfig::new(100_000_000_000)),
        Device::Cpu,
    )
    .unwrap_err();
    assert!(
        matches!(&err, WideDeepError::ModelTooLarge { component, .. } if component == "wide"),
        "{err}"
    );
    // an ID-like column with 10⁸ values and the default embedding rule
    let meta = widedeep::preprocessing::TabMeta {
        cat: vec![widedeep::preprocessing::CatColumnMeta {
            name: "user_id".into(),
            cardinality: 100_000_001,
            embed_dim: widedeep::preprocessing::embed_dim(100_000_001, EmbeddingRule::default()),
        }],
        cont: vec![],
    };
    let err = WideDeep::new(
        &WideDeepConfig::new().deeptabular(TabMlpConfig::from_meta(&meta)),
        Device::Cpu,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("deeptabular") && msg.contains("`user_id`"),
        "{msg}"
    );
    // a hidden layer too large for libtorch: caught while building
    let err = WideDeep::new(
        &WideDeepConfig::new().wide(WideConfig::new(10)).deeptabular(
            TabMlpConfig::from_meta(&widedeep::preprocessing::TabMeta {
                cat: vec![],
                cont: vec!["x".into()],
            })
            .mlp(MlpConfig::default().hidden_dims([1 << 40, 1 << 30])),
        ),
        Device::Cpu,
    )
    .unwrap_err();
    assert!(
        matches!(&err, WideDeepError::ModelTooLarge { component, requested, .. }
            if component == "deeptabular" && requested.contains("bytes")),
        "{err}"
    );
}
