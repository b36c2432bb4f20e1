//! TabResnet, TabNet, quantized columns and Tab2Vec on Adult subsamples.
use crate::common::*;
use widedeep::models::TabModelConfig;
use widedeep::pipeline::Tab2Vec;
use widedeep::prelude::*;

/// Tabular preprocessing only (no wide part), with `capital-gain` quantized into bins.
fn tab_preprocessors() -> Preprocessors {
    let cat: Vec<&str> = CAT.into_iter().filter(|c| *c != "capital-gain").collect();
    Preprocessors::new()
        .tab(
            TabPreprocessor::new(
                &cat,
                &["age", "educational-num", "hours-per-week", "capital-gain"],
            )
            .quantize("capital-gain", Quantization::Bins(20)),
        )
        .target(TargetEncoder::new("income", TargetKind::Binary).positive_class(">50K"))
}

/// Trains `model` for `epochs` on 5k Adult rows and returns the trainer and its test scores.
fn fit_on_adult(
    model: impl Into<TabModelConfig>,
    prep: &mut Preprocessors,
    epochs: usize,
    lr: f64,
) -> (Trainer, std::collections::BTreeMap<String, f64>, Dataset) {
    let (train_df, test_df) = adult_split(5_000, 2_000);
    let train = prep.fit_transform(&train_df).unwrap();
    let test = prep.transform(&test_df).unwrap();
    let model = WideDeep::new(
        &WideDeepConfig::new().deeptabular(model).seed(7),
        Device::Cpu,
    )
    .unwrap();
    let config = trainer_config(prep, 7, epochs).lr(lr);
    let mut trainer = Trainer::new(model, config).unwrap();
    trainer.fit(&train, None).unwrap();
    let scores = trainer.evaluate(&test, None).unwrap();
    (trainer, scores, test)
}

#[test]
fn quantized_capital_gain_is_a_categorical_column() {
    let (train_df, _) = adult_split(5_000, 10);
    let mut prep = tab_preprocessors();
    prep.fit(&train_df).unwrap();
    let meta = prep.tab_meta().unwrap();
    let gain = meta.cat.last().unwrap();
    assert_eq!(gain.name, "capital-gain");
    // Most gains are 0: the 20 quantile edges collapse to a few bins.
    let edges = prep
        .tab
        .as_ref()
        .unwrap()
        .bin_edges("capital-gain")
        .unwrap();
    assert!(edges.len() >= 2 && edges.len() < 21, "{edges:?}");
    assert_eq!(gain.cardinality, edges.len());
    assert_eq!(meta.cont, vec!["age", "educational-num", "hours-per-week"]);
}

#[test]
fn tab_resnet_learns_adult() {
    let mut prep = tab_preprocessors();
    let meta = {
        let (train_df, _) = adult_split(5_000, 10);
        prep.fit(&train_df).unwrap();
        prep.tab_meta().unwrap()
    };
    let model = TabResnetConfig::from_meta(&meta)
        .blocks_dims([64, 32, 32])
        .cont_norm(ContNorm::BatchNorm);
    let (trainer, scores, _) = fit_on_adult(model, &mut prep, 4, 1e-3);
    eprintln!("TabResnet, Adult 5k rows, 4 epochs: {scores:?}");
    let losses = trainer.history().series("loss");
    assert!(losses[3] < losses[0], "{losses:?}");
    assert!(
        scores["accuracy"] >= 0.80,
        "accuracy {}",
        scores["accuracy"]
    );
    assert!(scores["auc"] >= 0.85, "AUC {}", scores["auc"]);
}

#[test]
fn tabnet_learns_adult_and_explains_itself() {
    let mut prep = tab_preprocessors();
    let meta = {
        let (train_df, _) = adult_split(5_000, 10);
        prep.fit(&train_df).unwrap();
        prep.tab_meta().unwrap()
    };
    let model = TabNetConfig::from_meta(&meta); // n_steps 3, step_dim = attn_dim = 8
    let (trainer, scores, test) = fit_on_adult(model, &mut prep, 5, 2e-2);
    eprintln!("TabNet, Adult 5k rows, 5 epochs: {scores:?}");
    assert!(
        scores["accuracy"] >= 0.80,
        "accuracy {}",
        scores["accuracy"]
    );
    assert!(scores["auc"] >= 0.85, "AUC {}", scores["auc"]);

    let tabnet = &trainer.model().components()[0];
    let names = tabnet.feature_names();
    assert_eq!(names.len(), meta.cat.len() + meta.cont.len());
    let importance = tabnet.feature_importance(&test.input).unwrap().unwrap();
    assert_eq!(importance.len(), names.len());
    assert!((importance.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(importance.iter().all(|&v| v >= 0.0));
    // The masks of the last forward (the importance pass does not replace them): one per step,
    // [rows, columns], rows summing to 1.
    let _ = trainer.predict_proba(&test).unwrap();
    let masks = tabnet.attention_weights().unwrap();
    assert_eq!(masks.len(), 3);
    for m in masks {
        assert_eq!(m.size(), [2_000, names.len() as i64]);
        let sums = m.sum_dim_intlist(1, false, tch::Kind::Float);
        assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-4);
    }
}

#[test]
fn tabnet_sparsity_loss_is_added_to_the_training_loss() {
    let (train_df, _) = adult_split(1_000, 10);
    let mut prep = tab_preprocessors();
    let train = prep.fit_transform(&train_df).unwrap();
    let meta = prep.tab_meta().unwrap();
    let mut first_loss = Vec::new();
    for lambda in [0.0, 1e-3, 0.5] {
        let cfg = WideDeepConfig::new()
            .deeptabular(TabNetConfig::from_meta(&meta).lambda_sparse(lambda))
            .seed(3);
        let model = WideDeep::new(&cfg, Device::Cpu).unwrap();
        let (_, aux) = model.forward_aux(&train.input, true);
        match aux {
            None => assert_eq!(lambda, 0.0),
            Some(a) => {
                let a = a.double_value(&[]);
                assert!(a > 0.0, "lambda {lambda}: aux {a}");
            }
        }
        let config = trainer_config(&prep, 3, 1).batch_size(256);
        let mut trainer = Trainer::new(model, config).unwrap();
        trainer.fit(&train, None).unwrap();
        first_loss.push(trainer.history().series("loss")[0]);
    }
    // Same seed, same data: the sparsity term makes the reported loss larger.
    assert!(first_loss[2] > first_loss[0] + 1e-3, "{first_loss:?}");
    assert!(first_loss[1] != first_loss[0], "{first_loss:?}");
}

#[test]
fn tabnet_and_tab_resnet_pipelines_save_and_load() {
    let (train_df, test_df) = adult_split(1_000, 200);
    for which in ["tab_resnet", "tab_net"] {
        let mut prep = tab_preprocessors();
        let train = prep.fit_transform(&train_df).unwrap();
        let meta = prep.tab_meta().unwrap();
        let model: TabModelConfig = if which == "tab_net" {
            TabNetConfig::from_meta(&meta)
                .mask_type(MaskType::Entmax15)
                .into()
        } else {
            TabResnetConfig::from_meta(&meta)
                .blocks_dims([16, 8])
                .mlp(MlpConfig::default().hidden_dims([4]))
                .into()
        };
        let model = WideDeep::new(&WideDeepConfig::new().deeptabular(model), Device::Cpu).unwrap();
        let mut trainer = Trainer::new(model, trainer_config(&prep, 1, 1)).unwrap();
        trainer.fit(&train, None).unwrap();
        let pipeline = Pipeline::new(prep, trainer);
        let dir = tempfile::tempdir().unwrap();
        pipeline.save(dir.path().join("p")).unwrap();
        let text = std::fs::read_to_string(dir.path().join("p/pipeline.json")).unwrap();
        assert!(text.contains(&format!("\"model\": \"{which}\"")), "{which}");
        assert!(text.contains("capital-gain"), "the quantization is saved");
        let loaded = Pipeline::load(dir.path().join("p"), Device::Cpu).unwrap();
        let a = pipeline.predict_proba(&test_df).unwrap();
        assert!(a.equal(&loaded.predict_proba(&test_df).unwrap()), "{which}");
    }
}

#[test]
fn tab2vec_gives_the_trained_embedding_rows() {
    let (train_df, test_df) = adult_split(2_000, 50);
    let mut prep = tab_preprocessors();
    let train = prep.fit_transform(&train_df).unwrap();
    let meta = prep.tab_meta().unwrap();
    let model = WideDeep::new(
        &WideDeepConfig::new().deeptabular(TabMlpConfig::from_meta(&meta)),
        Device::Cpu,
    )
    .unwrap();
    let mut trainer = Trainer::new(model, trainer_config(&prep, 2, 1)).unwrap();
    trainer.fit(&train, None).unwrap();
    let pipeline = Pipeline::new(prep, trainer);

    let vectors = Tab2Vec::from_pipeline(&pipeline)
        .unwrap()
        .keep_original(true)
        .transform(&test_df)
        .unwrap();
    let width: usize = meta.cat.iter().map(|c| c.embed_dim).sum::<usize>() + meta.cont.len();
    assert_eq!(vectors.width(), test_df.width() + width);
    assert_eq!(vectors.height(), 50);
    // education is the second categorical column: its vectors are rows of emb_1.
    let tab = pipeline.preprocessors.tab.as_ref().unwrap();
    let codes = tab.transform(&test_df).unwrap().cat;
    let table =
        pipeline.trainer.model().var_store().variables()["deeptabular.embed.emb_1.weight"].copy();
    let education = meta.cat.iter().find(|c| c.name == "education").unwrap();
    for row in 0..50 {
        let code = codes[[row, 1]];
        assert!(code > 0, "a known category");
        for k in 0..education.embed_dim {
            let got = vectors
                .column(&format!("education_emb_{k}"))
                .unwrap()
                .f32()
                .unwrap()
                .get(row)
                .unwrap();
            assert_eq!(got, table.double_value(&[code, k as i64]) as f32);
        }
    }
    // continuous columns keep their (scaled) value, renamed next to the original
    assert!(vectors.column("age_vec").is_ok() && vectors.column("age").is_ok());
}
