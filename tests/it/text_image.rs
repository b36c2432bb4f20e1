//! Text and image pathways through preprocessors, models, trainer and pipeline.
use crate::common::*;
use polars::prelude::*;
use widedeep::datasets;
use widedeep::models::{Backbone, ImageModelConfig};
use widedeep::prelude::*;
use widedeep::tch::{Kind, Tensor};

const TAB_CAT: [&str; 3] = ["Division Name", "Department Name", "Class Name"];
const TAB_CONT: [&str; 2] = ["Age", "Positive Feedback Count"];

fn reviews(n_train: usize, n_test: usize) -> (DataFrame, DataFrame) {
    let df = datasets::womens_ecommerce_reviews().unwrap();
    let (a, b) = datasets::train_test_split(&df, 0.2, 5).unwrap();
    (a.head(Some(n_train)), b.head(Some(n_test)))
}

fn review_prep(with_text: bool) -> Preprocessors {
    let mut p = Preprocessors::new()
        .tab(TabPreprocessor::new(&TAB_CAT, &TAB_CONT))
        .target(TargetEncoder::new("Recommended IND", TargetKind::Binary).positive_class("1"));
    if with_text {
        p = p.text(
            TextPreprocessor::new("Review Text")
                .vocab(Vocab::Word {
                    min_freq: 3,
                    max_vocab: 5000,
                })
                .maxlen(60),
        );
    }
    p
}

fn fit_auc(
    prep: &mut Preprocessors,
    model: WideDeepConfig,
    train: &DataFrame,
    test: &DataFrame,
) -> f64 {
    let data = prep.fit_transform(train).unwrap();
    let model = WideDeep::new(&model, Device::Cpu).unwrap();
    let cfg = TrainerConfig::new(prep.objective().unwrap())
        .epochs(3)
        .batch_size(64)
        .lr(3e-3)
        .metrics([Metric::Auc])
        .seed(3)
        .verbose(0);
    let mut trainer = Trainer::new(model, cfg).unwrap();
    trainer.fit(&data, None).unwrap();
    trainer
        .evaluate(&prep.transform(test).unwrap(), None)
        .unwrap()["auc"]
}

#[test]
fn text_plus_tab_beats_tab_alone_on_reviews() {
    let (train, test) = reviews(3000, 1000);
    let mut tab_prep = review_prep(false);
    tab_prep.fit(&train).unwrap();
    let tab_model = WideDeepConfig::new()
        .deeptabular(
            TabMlpConfig::from_meta(&tab_prep.tab_meta().unwrap())
                .mlp(MlpConfig::default().hidden_dims([16, 8])),
        )
        .seed(3);
    let tab_auc = fit_auc(&mut tab_prep, tab_model, &train, &test);

    let mut prep = review_prep(true);
    prep.fit(&train).unwrap();
    let text = TextInput::from_meta(&prep.text_meta(0).unwrap(), 0);
    let model = WideDeepConfig::new()
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
                .mlp(MlpConfig::default().hidden_dims([16, 8])),
        )
        .deeptext(
            BasicRnnConfig::new(text)
                .embed_dim(16)
                .hidden_dim(16)
                .n_layers(1)
                .rnn_type(RnnType::Gru),
        )
        .seed(3);
    let both_auc = fit_auc(&mut prep, model, &train, &test);
    println!("reviews AUC: tab {tab_auc:.4}, tab + text {both_auc:.4}");
    assert!(
        both_auc > tab_auc + 0.05,
        "tab {tab_auc} vs tab+text {both_auc}"
    );
}

/// A small multimodal frame: mnist5k images, a text and a tabular column.
fn digits(n: usize) -> DataFrame {
    digits_frame(n, "text")
}

fn digit_prep() -> Preprocessors {
    digits_preprocessors("text", TargetEncoder::new("y", TargetKind::Multiclass))
}

fn digit_model(prep: &Preprocessors) -> WideDeepConfig {
    WideDeepConfig::new()
        .deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta().unwrap())
                .mlp(MlpConfig::default().hidden_dims([8])),
        )
        .deeptext(
            AttentiveRnnConfig::new(TextInput::from_meta(&prep.text_meta(0).unwrap(), 0))
                .embed_dim(8)
                .hidden_dim(8)
                .n_layers(1),
        )
        .deepimage(
            SmallCnnConfig::new(ImageInput::from_meta(&prep.image_meta(0).unwrap(), 0))
                .channels([4, 8]),
        )
        .pred_dim(2)
        .seed(9)
}

#[test]
fn tab_text_image_pipeline_trains_saves_and_reloads() {
    let df = digits(96);
    let mut prep = digit_prep();
    let data = prep.fit_transform(&df).unwrap();
    assert_eq!(data.input.text[0].size(), [96, 4]);
    assert_eq!(data.input.image[0].size(), [96, 3, 28, 28]);
    for fusion in [None, Some(AttentionFusionConfig::new(8))] {
        let mut cfg = digit_model(&prep);
        cfg.attention_fusion = fusion.clone();
        if fusion.is_some() {
            cfg.head = Some(MlpConfig::default().hidden_dims([6]));
        }
        let model = WideDeep::new(&cfg, Device::Cpu).unwrap();
        let tcfg = TrainerConfig::new(prep.objective().unwrap())
            .epochs(1)
            .batch_size(32)
            .component_lr("deepimage_0", 1e-2)
            .verbose(0);
        let mut trainer = Trainer::new(model, tcfg).unwrap();
        trainer.fit(&data, None).unwrap();
        if fusion.is_some() {
            let w = trainer.model().fusion_weights().unwrap();
            assert_eq!(w.size()[1], 3);
            let sums = w.sum_dim_intlist(1, false, Kind::Float);
            assert!(sums.allclose(&Tensor::ones_like(&sums), 1e-5, 1e-5, false));
        }
        let pipeline = Pipeline::new(prep.clone(), trainer);
        let before = pipeline.predict_proba(&df).unwrap();
        let dir = tempfile::tempdir().unwrap();
        pipeline.save(dir.path().join("p")).unwrap();
        assert!(dir.path().join("p/text_0_tokenizer.json").is_file());
        let loaded = Pipeline::load(dir.path().join("p"), Device::Cpu).unwrap();
        let after = loaded.predict_proba(&df).unwrap();
        assert!(before.allclose(&after, 1e-6, 1e-6, false));
        // attention weights of the text model are exposed after a forward pass
        let w = loaded.trainer.model().components()[1]
            .attention_weights()
            .unwrap();
        assert_eq!(w[0].size(), [96, 4]);
    }
}

#[test]
fn component_learning_rates_apply_per_group() {
    let df = digits(64);
    let mut prep = digit_prep();
    let data = prep.fit_transform(&df).unwrap();
    let model = WideDeep::new(&digit_model(&prep), Device::Cpu).unwrap();
    let groups: Vec<String> = model.param_groups().into_iter().map(|(n, _)| n).collect();
    for g in ["wide", "deeptabular", "head", "deeptext_0", "deepimage_0"] {
        assert!(groups.iter().any(|n| n == g), "{groups:?}");
    }
    let snapshot = |m: &WideDeep, prefix: &str| -> Vec<Tensor> {
        let mut v: Vec<(String, Tensor)> = m
            .var_store()
            .variables()
            .into_iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into_iter().map(|(_, t)| t.detach().copy()).collect()
    };
    let text_before = snapshot(&model, "deeptext_0.rnn");
    let tab_before = snapshot(&model, "deeptabular.mlp");
    let cfg = TrainerConfig::new(prep.objective().unwrap())
        .epochs(1)
        .batch_size(16)
        .lr(1e-2)
        .component_lr("deeptext_0", 1e-30)
        .verbose(0);
    let mut trainer = Trainer::new(model, cfg).unwrap();
    trainer.fit(&data, None).unwrap();
    let moved = |a: &[Tensor], b: &[Tensor]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs().max().double_value(&[]))
            .fold(0.0, f64::max)
    };
    let text_after = snapshot(trainer.model(), "deeptext_0.rnn");
    let tab_after = snapshot(trainer.model(), "deeptabular.mlp");
    assert!(
        moved(&text_before, &text_after) < 1e-20,
        "text weights moved"
    );
    assert!(
        moved(&tab_before, &tab_after) > 1e-4,
        "tab weights did not move"
    );
    // unknown groups and bad values are typed errors
    let model = WideDeep::new(&digit_model(&prep), Device::Cpu).unwrap();
    let err = Trainer::new(
        model,
        TrainerConfig::new(prep.objective().unwrap()).component_lr("deeptext_7", 1e-3),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("component_lr.deeptext_7"), "{err}");
    let model = WideDeep::new(&digit_model(&prep), Device::Cpu).unwrap();
    let err = Trainer::new(
        model,
        TrainerConfig::new(prep.objective().unwrap()).component_lr("head", -1.0),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("component_lr.head"), "{err}");
}

#[test]
fn bad_text_and_image_inputs_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = datasets::mnist5k_dir().join("images/0000.png");
    std::fs::copy(&src, dir.path().join("ok.png")).unwrap();
    std::fs::write(dir.path().join("corrupt.png"), b"\x89PNG\r\n\x1a\n broken").unwrap();
    let frame = |files: &[&str], texts: &[Option<&str>]| {
        df!(
            "img" => files,
            "t" => texts,
            "y" => vec![1i64; files.len()],
        )
        .unwrap()
    };
    let prep = || {
        Preprocessors::new()
            .text(TextPreprocessor::new("t").vocab(Vocab::Word {
                min_freq: 1,
                max_vocab: 10,
            }))
            .image(ImagePreprocessor::from_paths("img", dir.path()).size(64, 64))
            .target(TargetEncoder::new("y", TargetKind::Regression))
    };
    // a 28×28 image smaller than the 64×64 crop is scaled up; a null text is all padding
    let ok = frame(&["ok.png", "ok.png"], &[Some("fine text"), None]);
    let mut p = prep();
    let data = p.fit_transform(&ok).unwrap();
    assert_eq!(data.input.image[0].size(), [2, 3, 64, 64]);
    let text = Vec::<i64>::try_from(data.input.text[0].get(1)).unwrap();
    assert!(text.iter().all(|&t| t == 0));
    // missing file: the error names it
    let missing = frame(&["ok.png", "gone.png"], &[Some("a"), Some("b")]);
    let err = p.transform(&missing).unwrap_err().to_string();
    assert!(err.contains("gone.png"), "{err}");
    let corrupt = frame(&["corrupt.png"], &[Some("a")]);
    let err = p.transform(&corrupt).unwrap_err().to_string();
    assert!(err.contains("corrupt.png"), "{err}");
    // opt-in: mean images (≈ 0 once normalised), counted
    let mut lenient = prep();
    lenient.image[0] = ImagePreprocessor::from_paths("img", dir.path())
        .size(64, 64)
        .on_error(OnError::Zero);
    lenient.fit(&ok).unwrap();
    let d = lenient.transform(&missing).unwrap();
    assert_eq!(d.input.image[0].kind(), Kind::Uint8);
    let input = ImageInput::from_meta(&lenient.image_meta(0).unwrap(), 0);
    let normalised = input.prepare(&d.input);
    let max = normalised.get(1).abs().max().double_value(&[]);
    assert!(max < 0.01, "{max}");
    // a text model fed ids beyond its vocabulary is an input error, not a panic
    let cfg = WideDeepConfig::new().deeptext(
        BasicRnnConfig::new(TextInput {
            vocab_size: 2,
            ..TextInput::from_meta(&p.text_meta(0).unwrap(), 0)
        })
        .n_layers(1),
    );
    let model = WideDeep::new(&cfg, Device::Cpu).unwrap();
    let err = model.check_input(&data.input).unwrap_err().to_string();
    assert!(err.contains("text[0]"), "{err}");
    // an image model without image input
    let cfg = WideDeepConfig::new().deepimage(ImageModelConfig::from(BackboneConfig::new(
        ImageInput::new(1, "second"),
        Backbone::Resnet18,
    )));
    let model = WideDeep::new(&cfg, Device::Cpu).unwrap();
    let err = model.check_input(&data.input).unwrap_err().to_string();
    assert!(err.contains("second"), "{err}");
}

#[test]
fn images_decoded_per_batch_train_and_predict_like_in_memory_images() {
    let df = digits(80);
    let mut prep = digit_prep();
    prep.fit(&df).unwrap();
    let in_memory = prep.transform(&df).unwrap();
    let lazy = prep.transform_lazy(&df).unwrap();
    assert!(lazy.is_lazy() && !in_memory.is_lazy());
    assert_eq!(in_memory.input.image[0].kind(), Kind::Uint8);
    // the lazy column holds one image's worth of memory, not 80
    assert_eq!(lazy.input.image[0].size(), [80, 3, 28, 28]);
    assert_eq!(lazy.input.image[0].stride()[0], 0);
    let train = |data: &Dataset| {
        let model = WideDeep::new(&digit_model(&prep), Device::Cpu).unwrap();
        let cfg = TrainerConfig::new(prep.objective().unwrap())
            .epochs(2)
            .batch_size(16)
            .eval_batch_size(24)
            .val_split(0.25)
            .metrics([Metric::Accuracy])
            .seed(4)
            .verbose(0);
        let mut trainer = Trainer::new(model, cfg).unwrap();
        trainer.fit(data, None).unwrap();
        let history = trainer.history().clone();
        (trainer.predict_proba(data).unwrap(), history, trainer)
    };
    let (p_mem, h_mem, _) = train(&in_memory);
    let (p_lazy, h_lazy, trainer) = train(&lazy);
    assert_eq!(h_mem, h_lazy, "history differs");
    assert!(
        p_mem.equal(&p_lazy),
        "lazy and in-memory predictions differ"
    );
    // a missing file surfaces as an error naming it, from the batch that needs it
    let mut broken = df.clone();
    let mut paths: Vec<String> = broken
        .column("image")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|p| p.unwrap().to_string())
        .collect();
    paths[70] = "no_such_digit.png".into();
    broken
        .with_column(Column::new("image".into(), paths))
        .unwrap();
    let data = prep.transform_lazy(&broken).unwrap();
    let err = trainer.predict(&data).unwrap_err().to_string();
    assert!(err.contains("no_such_digit.png"), "{err}");
}
