//! Women's e-commerce clothing reviews: does the customer recommend the item
//! (`Recommended IND`)? The review text plus the tabular columns (age, feedback count,
//! division / department / class) in one `WideDeep` model, against each modality
//! alone, all on the same 80/20 split. Prints the held-out AUC and accuracy of each.
//!
//! Text: a word vocabulary trained on the training reviews (min_freq 5, maxlen 80, left padding
//! as in the reference) and a GRU with attention pooling. Tabular: TabMlp. Fusion: additive
//! (each component's output is projected to the logit and the projections are summed, the
//! reference's default), so the fused model is the text model plus a tabular correction,
//! trained with a smaller learning rate for the tabular component (`component_lr`).
//!
//! Run: `cargo run --release --example reviews`
use widedeep::datasets;
use widedeep::prelude::*;

const CAT: [&str; 3] = ["Division Name", "Department Name", "Class Name"];
const CONT: [&str; 2] = ["Age", "Positive Feedback Count"];
const TARGET: &str = "Recommended IND";

#[derive(Clone, Copy, PartialEq)]
enum Modality {
    Tab,
    Text,
    Fused,
}

fn run(
    which: Modality,
    train: &polars::prelude::DataFrame,
    test: &polars::prelude::DataFrame,
) -> widedeep::Result<(f64, f64)> {
    let mut prep = Preprocessors::new()
        .target(TargetEncoder::new(TARGET, TargetKind::Binary).positive_class("1"));
    if which != Modality::Text {
        prep = prep.tab(TabPreprocessor::new(&CAT, &CONT));
    }
    if which != Modality::Tab {
        prep = prep.text(TextPreprocessor::new("Review Text"));
    }
    let data = prep.fit_transform(train)?;
    let mut model = WideDeepConfig::new().seed(7);
    if which != Modality::Text {
        model = model.deeptabular(
            TabMlpConfig::from_meta(&prep.tab_meta()?)
                .mlp(MlpConfig::default().hidden_dims([32, 16]).dropout(0.2)),
        );
    }
    if which != Modality::Tab {
        model = model.deeptext(
            AttentiveRnnConfig::new(TextInput::from_meta(&prep.text_meta(0)?, 0))
                .embed_dim(64)
                .hidden_dim(64)
                .n_layers(1)
                .rnn_type(RnnType::Gru)
                .embed_dropout(0.2),
        );
    }
    let model = WideDeep::new(&model, default_device()?)?;
    let mut config = TrainerConfig::new(prep.objective()?)
        .epochs(4)
        .batch_size(64)
        .lr(2e-3)
        .seed(7)
        .val_split(0.1)
        .metrics([Metric::Auc])
        .early_stopping(EarlyStopping::default().monitor("val_auc").patience(1))
        .verbose(0);
    if which == Modality::Fused {
        // the weak tabular signal is a correction on top of the text: a smaller step size
        // keeps it from overfitting before the text part has converged
        config = config.component_lr("deeptabular", 5e-4);
    }
    let mut trainer = Trainer::new(model, config)?;
    trainer.fit(&data, None)?;
    let pipeline = Pipeline::new(prep, trainer);
    let scores = pipeline.evaluate(test, Some(&[Metric::Auc, Metric::Accuracy]))?;
    Ok((scores["auc"], scores["accuracy"]))
}

fn main() -> widedeep::Result<()> {
    let df = datasets::womens_ecommerce_reviews()?;
    let (train, test) = datasets::train_test_split(&df, 0.2, 42)?;
    println!(
        "reviews: {} train / {} test rows, target `{TARGET}`\n",
        train.height(),
        test.height()
    );
    println!("| model | test AUC | test accuracy |\n|---|---:|---:|");
    let mut results = Vec::new();
    for (name, which) in [
        ("tabular only (TabMlp)", Modality::Tab),
        ("text only (attentive GRU)", Modality::Text),
        ("tabular + text (fused, additive)", Modality::Fused),
    ] {
        let (auc, acc) = run(which, &train, &test)?;
        println!("| {name} | {auc:.4} | {acc:.4} |");
        results.push(auc);
    }
    let best_single = results[0].max(results[1]);
    println!(
        "\nfused AUC {:.4} vs best single modality {best_single:.4}: {}",
        results[2],
        if results[2] > best_single {
            "the fused model wins"
        } else {
            "the fused model does NOT win"
        }
    );
    Ok(())
}
