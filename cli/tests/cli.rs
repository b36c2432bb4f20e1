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

// ---------------------------------------------------------------- the HTTP server

/// Sends `raw` on a new connection and reads one response: status and JSON body.
fn http_raw(addr: std::net::SocketAddr, raw: &[u8]) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    // the server may answer (413) and close before reading a large body
    let _ = s.write_all(raw);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                let body = serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap();
                return (status, body);
            }
        }
        let n = s.read(&mut chunk).expect("read");
        assert!(
            n > 0,
            "connection closed without a full response to {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn post(addr: std::net::SocketAddr, path: &str, body: &str) -> (u16, serde_json::Value) {
    let raw = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    http_raw(addr, raw.as_bytes())
}

fn health(addr: std::net::SocketAddr) {
    let (status, body) = http_raw(addr, b"GET /health HTTP/1.1\r\nconnection: close\r\n\r\n");
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}

fn adult_record(df: &widedeep::polars::prelude::DataFrame, row: usize) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    for c in df.columns() {
        let v = c.get(row).unwrap();
        let json = match v {
            widedeep::polars::prelude::AnyValue::String(s) => serde_json::json!(s),
            widedeep::polars::prelude::AnyValue::Int64(i) => serde_json::json!(i),
            widedeep::polars::prelude::AnyValue::Float64(f) => serde_json::json!(f),
            other => serde_json::json!(other.to_string()),
        };
        o.insert(c.name().to_string(), json);
    }
    serde_json::Value::Object(o)
}

/// A tiny generator so the fuzz cases are the same every run.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

#[test]
fn server_answers_predictions_and_survives_malformed_requests() {
    use widedeep_cli::serve::{start, ServeOptions};
    let tmp = tempfile::tempdir().unwrap();
    let mut o = quick(1500, 1);
    o.push("explain.method=\"none\"".into());
    o.push("explain.background=100".into());
    let run = train(&config("adult.toml"), Some(&tmp.path().join("run")), &o).unwrap();
    let mut options = ServeOptions::new(run.run_dir.join("pipeline"));
    options.port = 0;
    options.body_limit = 64 * 1024;
    options.max_wait = std::time::Duration::from_millis(5);
    let server = start(options).unwrap();
    let addr = server.addr;
    health(addr);

    // predictions equal the pipeline's, alone and micro-batched with concurrent requests
    // training rows (from the run's background sample): every category is known
    let df = widedeep::datasets::read_parquet(run.run_dir.join("background.parquet"))
        .unwrap()
        .head(Some(40));
    let pipeline =
        widedeep::prelude::Pipeline::load(run.run_dir.join("pipeline"), widedeep::tch::Device::Cpu)
            .unwrap();
    let expected =
        widedeep_cli::predict::tensor_f64(&pipeline.predict_proba(&df).unwrap()).unwrap();
    let records: Vec<serde_json::Value> = (0..40).map(|i| adult_record(&df, i)).collect();
    let (status, body) = post(addr, "/predict", &serde_json::to_string(&records).unwrap());
    assert_eq!(status, 200, "{body}");
    let probs = body["probabilities"].as_array().unwrap();
    assert_eq!(probs.len(), 40);
    for (i, p) in probs.iter().enumerate() {
        let got = p[1].as_f64().unwrap();
        assert!(
            (got - expected[2 * i + 1]).abs() < 1e-5,
            "row {i}: {got} vs {}",
            expected[2 * i + 1]
        );
    }
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let records = records.clone();
            let expected = expected.clone();
            std::thread::spawn(move || {
                for k in 0..5 {
                    let i = (t * 5 + k) % 40;
                    let (status, body) = post(
                        addr,
                        "/predict",
                        &serde_json::to_string(&[&records[i]]).unwrap(),
                    );
                    assert_eq!(status, 200, "{body}");
                    let got = body["probabilities"][0][1].as_f64().unwrap();
                    assert!((got - expected[2 * i + 1]).abs() < 1e-5);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let (status, meta) = http_raw(addr, b"GET /metadata HTTP/1.1\r\nconnection: close\r\n\r\n");
    assert_eq!(status, 200);
    assert_eq!(
        meta["target"]["classes"],
        serde_json::json!(["<=50K", ">50K"])
    );
    let age = meta["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "age")
        .unwrap();
    assert_eq!(age["role"], "continuous");

    // the named bad inputs: status and the field in the error
    let good = records[0].clone();
    let with = |k: &str, v: serde_json::Value| {
        let mut r = good.clone();
        r[k] = v;
        serde_json::to_string(&[r]).unwrap()
    };
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("education");
    let cases: Vec<(String, u16, Option<&str>)> = vec![
        (
            serde_json::to_string(&[missing]).unwrap(),
            422,
            Some("education"),
        ),
        (with("age", serde_json::json!("old")), 422, Some("age")),
        (
            with("education", serde_json::json!(12)),
            422,
            Some("education"),
        ),
        (
            with("education", serde_json::json!("Wizardry")),
            422,
            Some("education"),
        ),
        (with("age", serde_json::Value::Null), 200, None),
        ("[]".into(), 400, None),
        ("[{\"age\": 3".into(), 400, None),
        ("{\"a\": }".into(), 400, None),
        ("42".into(), 400, None),
        ("[1, 2]".into(), 400, None),
        ("x".repeat(100_000), 413, None),
    ];
    for (body, status, field) in cases {
        let (got, answer) = post(addr, "/predict", &body);
        assert_eq!(got, status, "{answer} for {}", &body[..body.len().min(80)]);
        if let Some(f) = field {
            assert_eq!(answer["field"], f, "{answer}");
        }
        if status != 200 {
            assert!(answer["error"].is_string(), "{answer}");
        }
        health(addr);
    }
    for raw in [
        &b"GET /nope HTTP/1.1\r\n\r\n"[..],
        b"DELETE /predict HTTP/1.1\r\n\r\n",
        b"POST /predict HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
        b"POST /predict HTTP/1.1\r\ncontent-length: nonsense\r\n\r\n",
        b"\r\n\r\n",
    ] {
        let (status, _) = http_raw(addr, raw);
        assert!(
            (400..500).contains(&status),
            "{status} for {:?}",
            String::from_utf8_lossy(raw)
        );
        health(addr);
    }

    // random mutations of a valid body: never a 5xx, never a dropped connection
    let valid = serde_json::to_string(&records[..3]).unwrap();
    let mut rng = SplitMix(7);
    let junk = [
        "{", "}", "[", "]", "\"", ",", ":", "null", "1e999", "-", "\\u0000", "é", "\\",
    ];
    for _ in 0..150 {
        let mut b = valid.clone().into_bytes();
        for _ in 0..1 + rng.next(4) {
            if b.is_empty() {
                b.push(b'[');
            }
            let at = rng.next(b.len());
            match rng.next(3) {
                0 => {
                    b.remove(at);
                }
                1 => b
                    .splice(at..at, junk[rng.next(junk.len())].bytes())
                    .for_each(drop),
                _ => b.truncate(at.max(1)),
            }
        }
        let body = String::from_utf8_lossy(&b).to_string();
        let (status, answer) = post(addr, "/predict", &body);
        assert!(
            status == 200 || (400..500).contains(&status),
            "{status} {answer} for {body}"
        );
        if status != 200 {
            assert!(answer["error"].is_string());
        }
    }
    health(addr);

    // a short load test: concurrent keep-alive clients, no errors
    let one = serde_json::to_string(&[&records[0]]).unwrap();
    let load = widedeep_cli::loadtest::load_test(
        addr,
        "/predict",
        &one,
        8,
        std::time::Duration::from_millis(1500),
    )
    .unwrap();
    assert_eq!(load.errors, 0, "{load:?}");
    assert!(load.requests > 20 && load.p99_ms >= load.p50_ms, "{load:?}");
    server.shutdown();

    // zero intra-op threads is refused before anything starts
    let mut options = ServeOptions::new(run.run_dir.join("pipeline"));
    options.port = 0;
    options.threads = 0;
    let err = start(options).err().expect("threads = 0 must be refused");
    assert!(err.to_string().contains("--threads"), "{err}");

    // with unseen categories allowed, they follow the pipeline's handling (index 0); two
    // intra-op threads on the model thread
    let mut options = ServeOptions::new(run.run_dir.join("pipeline"));
    options.port = 0;
    options.allow_unseen = true;
    options.threads = 2;
    let server = start(options).unwrap();
    let (status, answer) = post(
        server.addr,
        "/predict",
        &with("education", serde_json::json!("Wizardry")),
    );
    assert_eq!(status, 200, "{answer}");
    server.shutdown();
}

/// `widedeep serve` ends cleanly on SIGTERM.
#[test]
fn serve_stops_on_sigterm() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let mut o = quick(800, 1);
    o.push("explain.method=\"none\"".into());
    let run = train(
        &config("california_housing.toml"),
        Some(&tmp.path().join("run")),
        &o,
    )
    .unwrap();
    let mut child = bin()
        .args(["serve", "--port", "0", "--pipeline"])
        .arg(run.run_dir.join("pipeline"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .trim_start_matches("listening on http://")
        .parse()
        .unwrap();
    health(addr);
    let (status, body) = post(
        addr,
        "/predict",
        r#"[{"MedInc": 3.0, "HouseAge": 20, "AveRooms": 5.0, "AveBedrms": 1.0, "Population": 1000, "AveOccup": 3.0, "Latitude": 34.0, "Longitude": -118.0}]"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body["predictions"][0].as_f64().unwrap().is_finite());
    // SAFETY: sending a signal to our own child process
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            start.elapsed().as_secs() < 15,
            "still running after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- the report

/// Opens `page` in headless Chromium: the DOM after load (and the page's own image check)
/// and the browser's log.
fn chromium(page: &Path) -> (String, String) {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (Debian package `chromium`; .ci/run installs it) must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn report_renders_in_a_headless_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = [
        ("adult.toml", 1500, 3, 8), // 3 learning curves, ROC, PR, calibration, bar, beeswarm
        ("california_housing.toml", 800, 3, 7), // 3 curves, 2 regression charts, bar, beeswarm
    ];
    for (file, rows, epochs, images) in runs {
        let run = train(
            &config(file),
            Some(&tmp.path().join(file)),
            &quick(rows, epochs),
        )
        .unwrap();
        let o = bin()
            .args(["report", "--run"])
            .arg(&run.run_dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let page = run.run_dir.join("report.html");
        let html = std::fs::read_to_string(&page).unwrap();
        assert_eq!(html.matches("<img src=\"data:").count(), images, "{file}");
        assert!(!html.contains("src=\"http") && !html.contains("src=\"file"));
        assert_eq!(
            std::fs::read_dir(run.run_dir.join("report"))
                .unwrap()
                .count(),
            images
        );
        if file == "adult.toml" {
            assert!(html.contains("Confusion matrix") && html.contains("ROC AUC (&gt;50K)"));
            // the report's AUC is the trainer's
            let auc = format!("{:.4}", run.test_metrics["auc"]);
            assert!(
                html.matches(&auc).count() >= 2,
                "AUC {auc} twice in the report"
            );
        } else {
            assert!(html.contains("predicted vs actual") || html.contains("predicted_vs_actual"));
        }
        let (dom, log) = chromium(&page);
        assert!(
            dom.contains(&format!("data-images-loaded=\"{images}/{images}\"")),
            "{file}: images did not all load: {}",
            dom.lines().find(|l| l.contains("<body")).unwrap_or("")
        );
        let console_errors: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("CONSOLE") && (l.contains("ERROR") || l.contains("Uncaught")))
            .collect();
        assert!(console_errors.is_empty(), "{file}: {console_errors:?}");
        assert!(!log.contains("Uncaught"), "{file}: {log}");
    }
}
