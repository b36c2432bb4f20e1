//! The `widedeep` command: the example experiment files (few rows, one or two epochs), config
//! errors, evaluate/predict/explain on a trained run, and the HTTP server.
use std::path::{Path, PathBuf};
use std::process::Command;
use widedeep_cli::overlay::find_line;
use widedeep_cli::train::train;
use widedeep_cli::CliError;

fn config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/configs")
        .join(name)
}

fn quick(rows: usize, epochs: usize) -> Vec<String> {
    vec![
        format!("data.rows={rows}"),
        format!("training.epochs={epochs}"),
        "training.verbose=0".into(),
        "training.early_stopping.patience=5".into(),
        "explain.rows=5".into(),
        "explain.background=10".into(),
    ]
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_widedeep"))
}

/// Trains `adult.toml` on 3,000 rows: the run directory is complete, the model learns, and
/// training again from the resolved `config.toml` repeats the metrics exactly.
#[test]
fn adult_config_trains_and_its_resolved_config_repeats_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = train(
        &config("adult.toml"),
        Some(&tmp.path().join("run")),
        &quick(3000, 2),
    )
    .unwrap();
    for f in [
        "pipeline/pipeline.json",
        "history.json",
        "metrics.json",
        "config.toml",
        "test_predictions.parquet",
        "background.parquet",
        "explanation.json",
    ] {
        assert!(out.run_dir.join(f).is_file(), "{f} missing");
    }
    assert_eq!(out.epochs, 2);
    let auc = out.test_metrics["auc"];
    assert!(auc > 0.8, "test AUC {auc}");
    let resolved = std::fs::read_to_string(out.run_dir.join("config.toml")).unwrap();
    for key in [
        "embedding_rule",
        "eval_batch_size",
        "hidden_dims",
        "rows = 3000",
    ] {
        assert!(resolved.contains(key), "resolved config lacks {key}");
    }
    let again = train(
        &out.run_dir.join("config.toml"),
        Some(&tmp.path().join("again")),
        &[],
    )
    .unwrap();
    assert_eq!(out.test_metrics, again.test_metrics);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.run_dir.join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["test"]["auc"].as_f64(), Some(auc));

    // evaluate, predict (with a key column) and explain through the binary
    let pipeline = out.run_dir.join("pipeline");
    let data = tmp.path().join("rows.parquet");
    let mut df = widedeep::datasets::adult().unwrap().head(Some(300));
    widedeep_cli::data::write_parquet(&mut df, &data).unwrap();
    let o = bin()
        .args(["evaluate", "--device", "cpu", "--pipeline"])
        .arg(&pipeline)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(m["auc"].as_f64().unwrap() > 0.7 && m["loss"].as_f64().unwrap() > 0.0);

    let preds = tmp.path().join("preds.parquet");
    let o = bin()
        .args(["predict", "--keep", "age", "--pipeline"])
        .arg(&pipeline)
        .arg("--data")
        .arg(&data)
        .arg("--output")
        .arg(&preds)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let p = widedeep::datasets::read_parquet(&preds).unwrap();
    assert_eq!(p.height(), 300);
    let names: Vec<String> = p.get_column_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(names[0], "age");
    assert!(names.len() >= 2, "{names:?}");

    let plots = tmp.path().join("plots");
    let o = bin()
        .args([
            "explain",
            "--rows",
            "20",
            "--method",
            "gradient_shap",
            "--pipeline",
        ])
        .arg(&pipeline)
        .arg("--data")
        .arg(&data)
        .arg("--plots")
        .arg(&plots)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "explanation.json",
        "importance.json",
        "importance.png",
        "beeswarm.png",
    ] {
        assert!(plots.join(f).is_file(), "{f} missing");
    }
    assert!(String::from_utf8_lossy(&o.stdout).lines().count() >= 5);
}

#[test]
fn regression_text_and_image_configs_train() {
    let tmp = tempfile::tempdir().unwrap();
    let ch = train(
        &config("california_housing.toml"),
        Some(&tmp.path().join("ch")),
        &quick(2000, 3),
    )
    .unwrap();
    assert!(ch.test_metrics["r2"] > 0.3, "{:?}", ch.test_metrics);
    let mut o = quick(600, 1);
    o.push("preprocessing.text[0].maxlen=30".into());
    let rv = train(&config("reviews.toml"), Some(&tmp.path().join("rv")), &o).unwrap();
    assert!(rv.test_metrics["accuracy"].is_finite());
    let dg = train(
        &config("digits.toml"),
        Some(&tmp.path().join("dg")),
        &quick(500, 1),
    )
    .unwrap();
    assert!(dg.test_metrics["accuracy"] > 0.3, "{:?}", dg.test_metrics);
    assert!(dg.run_dir.join("pipeline/model.safetensors").is_file());
}

/// Writes `text` as an experiment file and returns the error of training it.
fn config_error(dir: &Path, text: &str) -> (Option<usize>, String, String) {
    let file = dir.join("bad.toml");
    std::fs::write(&file, text).unwrap();
    match train(&file, Some(&dir.join("run")), &[]) {
        Err(CliError::Config {
            line,
            path,
            message,
            file: f,
        }) => {
            assert_eq!(f, file);
            assert!(
                !dir.join("run/pipeline").exists(),
                "trained despite the error"
            );
            (line, path, message)
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn config_errors_name_file_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(config("adult.toml")).unwrap();
    let cases: [(&str, &str, &str, &str); 7] = [
        (
            "[data]\n",
            "[data]\nsplit = 0.3\n",
            "data.split",
            "unknown field",
        ),
        (
            "epochs = 10",
            "epochs = 10\nepoch = 3",
            "training.epoch",
            "unknown",
        ),
        (
            "dropout = 0.1 }",
            "dropout = \"x\" }",
            "model.deeptabular.mlp.dropout",
            "invalid type",
        ),
        (
            "dropout = 0.1 }",
            "dropout = 1.5 }",
            "model.deeptabular.mlp.dropout",
            "[0, 1)",
        ),
        ("lr = 1e-3", "lr = -1.0", "training.lr", "positive"),
        (
            "\"auc\"]",
            "\"auk\"]",
            "training.metrics[1]",
            "unknown variant",
        ),
        (
            "patience = 3 }",
            "patiense = 3 }",
            "training.early_stopping.patiense",
            "unknown",
        ),
    ];
    for (from, to, path, why) in cases {
        let text = good.replacen(from, to, 1);
        let (line, p, message) = config_error(tmp.path(), &text);
        assert_eq!(p, path, "{message}");
        assert!(message.contains(why), "{path}: {message}");
        let line = line.unwrap_or_else(|| panic!("{path}: no line"));
        let key = path.rsplit('.').next().unwrap();
        let key = key.split('[').next().unwrap();
        assert!(
            text.lines().nth(line - 1).unwrap().contains(key),
            "{path}: line {line} is `{}`",
            text.lines().nth(line - 1).unwrap()
        );
    }
    // syntax errors and unknown tables point at the line too
    let (line, _, _) = config_error(tmp.path(), "seed = 1\n[data\n");
    assert_eq!(line, Some(2));
    let (_, p, _) = config_error(tmp.path(), &good.replace("tab_mlp", "tab_mpl"));
    assert_eq!(p, "model.deeptabular.model");
    let (line, p, m) = config_error(tmp.path(), &format!("{good}\n[foo]\nx = 1\n"));
    assert!(p.contains("foo") || m.contains("foo"), "{p}: {m}");
    assert_eq!(line, Some(good.lines().count() + 2));
}

#[test]
fn lines_of_field_paths() {
    let text =
        "seed = 1\n[data]\ndataset = \"adult\"\n\n[model.deeptabular]\nmodel = \"tab_mlp\"\n\
                mlp = { dropout = 2 }\n[[preprocessing.text]]\ntext_col = \"a\"\n\
                [[preprocessing.text]]\ntext_col = \"b\"\nmaxlen = 3 # comment\n";
    assert_eq!(find_line(text, "seed"), Some(1));
    assert_eq!(find_line(text, "data.dataset"), Some(3));
    assert_eq!(find_line(text, "model.deeptabular.mlp.dropout"), Some(7));
    assert_eq!(find_line(text, "preprocessing.text[1].maxlen"), Some(12));
    assert_eq!(find_line(text, "preprocessing.text[0].text_col"), Some(9));
}
