//! A multimodal data set built from mnist5k whose target needs all three modalities.
//!
//! Each of the 5,000 rows has
//! * `image`: an mnist5k digit image (path), showing the digit `d`;
//! * `note`: a short text naming a number `n` in words, e.g. "the code is seven" (drawn
//!   uniformly from 0–9 with a seeded generator, in one of four phrasings);
//! * `shift`: a tabular integer `t` (uniform 0–9, seeded), plus an unrelated `noise` column;
//! * target `high = 1 if d + n + t ≥ 14 else 0` (the sum ranges over 0–27; the classes are
//!   about balanced).
//!
//! `d`, `n` and `t` are independent, so each modality alone only shifts the odds (a model
//! that sees one of them perfectly is right about 70% of the time); predicting the target
//! needs the digit, the number word and the tabular value together. The example trains an
//! image-only (small CNN), a text-only (GRU) and a tabular-only (TabMlp) model and the fused
//! model (all three joined by an MLP head) on the same 80/20 split and prints the test accuracy
//! of each. It then explains the fused model with GradientSHAP (mean |value| per column) and
//! writes `target/widedeep-digits/image_regions.{png,svg}` (the image's regions of one
//! prediction), `note_tokens.html` (its note's tokens) and `importance.png`.
//!
//! Run: `cargo run --release --example digits`
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use widedeep::datasets;
use widedeep::prelude::*;

const WORDS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const PHRASES: [&str; 4] = [
    "the code is {}",
    "{} was written on the back",
    "add {} to it",
    "remember {}",
];

/// The multimodal frame described in the header.
fn digits_frame() -> widedeep::Result<DataFrame> {
    let mut df = datasets::mnist5k_labels()?;
    let digit: Vec<i64> = df.column("label")?.i64()?.into_no_null_iter().collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2024);
    let mut notes = Vec::with_capacity(digit.len());
    let mut shift = Vec::with_capacity(digit.len());
    let mut noise = Vec::with_capacity(digit.len());
    let mut high = Vec::with_capacity(digit.len());
    for &d in &digit {
        let n = rng.random_range(0..10usize);
        let t = rng.random_range(0..10i64);
        let phrase = PHRASES[rng.random_range(0..PHRASES.len())];
        notes.push(phrase.replace("{}", WORDS[n]));
        shift.push(t);
        noise.push(rng.random::<f64>());
        high.push(i64::from(d + n as i64 + t >= 14));
    }
    df.with_column(Column::new("note".into(), notes))?;
    df.with_column(Column::new("shift".into(), shift))?;
    df.with_column(Column::new("noise".into(), noise))?;
    df.with_column(Column::new("high".into(), high))?;
    Ok(df)
}

#[derive(Clone, Copy, PartialEq)]
enum Use {
    Image,
    Text,
    Tab,
    All,
}

fn run(which: Use, train: &DataFrame, test: &DataFrame) -> widedeep::Result<(f64, Pipeline)> {
    let image = matches!(which, Use::Image | Use::All);
    let text = matches!(which, Use::Text | Use::All);
    let tab = matches!(which, Use::Tab | Use::All);
    let mut prep = Preprocessors::new()
        .target(TargetEncoder::new("high", TargetKind::Binary).positive_class("1"));
    if tab {
        prep = prep.tab(TabPreprocessor::new(&["shift"], &["noise"]));
    }
    if text {
        prep = prep.text(
            TextPreprocessor::new("note")
                .vocab(Vocab::Word {
                    min_freq: 1,
                    max_vocab: 100,
                })
                .maxlen(6),
        );
    }
    if image {
        prep = prep.image(
            ImagePreprocessor::from_paths("image", datasets::mnist5k_dir())
                .size(28, 28)
                .normalization(Normalization::Fitted),
        );
    }
    let data = prep.fit_transform(train)?;
    let mut model = WideDeepConfig::new()
        .head(MlpConfig::default().hidden_dims([64, 32]).dropout(0.0))
        .seed(11);
    if tab {
        model = model.deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta()?)
                .mlp(MlpConfig::default().hidden_dims([32]).dropout(0.0)),
        );
    }
    if text {
        model = model.deeptext(
            BasicRnnConfig::new(TextInput::from_meta(&prep.text_meta(0)?, 0))
                .embed_dim(16)
                .hidden_dim(32)
                .n_layers(1)
                .rnn_type(RnnType::Gru)
                .pooling(RnnPooling::Mean),
        );
    }
    if image {
        model = model.deepimage(
            SmallCnnConfig::new(ImageInput::from_meta(&prep.image_meta(0)?, 0))
                .channels([16, 32, 64])
                .head(MlpConfig::default().hidden_dims([32]).dropout(0.0)),
        );
    }
    let model = WideDeep::new(&model, default_device()?)?;
    let config = TrainerConfig::new(prep.objective()?)
        .epochs(15)
        .batch_size(64)
        .lr(2e-3)
        .seed(11)
        .val_split(0.1)
        .metrics([Metric::Accuracy])
        .early_stopping(EarlyStopping::default().monitor("val_accuracy").patience(4))
        .verbose(0);
    let mut trainer = Trainer::new(model, config)?;
    trainer.fit(&data, None)?;
    let pipeline = Pipeline::new(prep, trainer);
    let acc = pipeline.evaluate(test, Some(&[Metric::Accuracy]))?["accuracy"];
    Ok((acc, pipeline))
}

/// GradientSHAP attributions of the fused model on 200 test rows: the importance of each
/// column, and plots of one prediction (the image's regions, the note's tokens).
fn explain(pipeline: &Pipeline, train: &DataFrame, test: &DataFrame) -> widedeep::Result<()> {
    use widedeep::explain::{plots, Explainer, ExplainerConfig, Method};
    let config = ExplainerConfig::new(Method::gradient_shap())
        .background_size(50)
        .image_grid([4, 4])
        .verbose(0);
    let explainer = Explainer::for_pipeline(pipeline, train, &config)?;
    let rows = test.head(Some(200));
    let e = explainer.explain_df(&rows)?;
    println!("\nfused model, mean |GradientSHAP value| per column (200 test rows, logit scale):");
    for (feature, score) in e.global_importance().ranked() {
        println!("  {feature:<8} {score:.3}");
    }
    let out = std::path::Path::new("target/widedeep-digits");
    let row = 0;
    println!(
        "row {row}: image {}, note \"{}\", shift {}",
        e.display_value(row, e.feature_index("image").unwrap_or(0)),
        e.display_value(row, e.feature_index("note").unwrap_or(0)),
        e.display_value(row, e.feature_index("shift").unwrap_or(0)),
    );
    let input = pipeline.preprocessors.transform(&rows.head(Some(1)))?.input;
    let image = plots::RgbImage::from_tensor(&input.image[0].get(0))?;
    plots::image_regions(
        &e,
        row,
        "image",
        0,
        Some(&image),
        out.join("image_regions.png"),
        &Default::default(),
    )?;
    plots::image_regions(
        &e,
        row,
        "image",
        0,
        Some(&image),
        out.join("image_regions.svg"),
        &Default::default(),
    )?;
    let pad = pipeline.preprocessors.text_meta(0)?.pad_id;
    plots::write_text_html(
        &e,
        row,
        "note",
        0,
        None,
        Some(pad),
        out.join("note_tokens.html"),
    )?;
    plots::bar(
        &e.global_importance(),
        out.join("importance.png"),
        &Default::default(),
    )?;
    println!("plots written to {}", out.display());
    Ok(())
}

fn main() -> widedeep::Result<()> {
    let df = digits_frame()?;
    let (train, test) = datasets::train_test_split(&df, 0.2, 3)?;
    println!(
        "digits: {} train / {} test rows; target = (digit + number in the note + shift ≥ 14)\n",
        train.height(),
        test.height()
    );
    println!("| model | test accuracy |\n|---|---:|");
    let mut accs = Vec::new();
    let mut fused = None;
    for (name, which) in [
        ("image only (small CNN)", Use::Image),
        ("text only (GRU)", Use::Text),
        ("tabular only (TabMlp)", Use::Tab),
        ("image + text + tabular (fused, MLP head)", Use::All),
    ] {
        let (acc, pipeline) = run(which, &train, &test)?;
        println!("| {name} | {acc:.4} |");
        accs.push(acc);
        if which == Use::All {
            fused = Some(pipeline);
        }
    }
    let best_single = accs[..3].iter().copied().fold(0.0, f64::max);
    println!(
        "\nfused accuracy {:.4} vs best single modality {best_single:.4}: {}",
        accs[3],
        if accs[3] > best_single {
            "the fused model wins"
        } else {
            "the fused model does NOT win"
        }
    );
    if let Some(pipeline) = &fused {
        explain(pipeline, &train, &test)?;
    }
    Ok(())
}
