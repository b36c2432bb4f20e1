//! `widedeep serve`: an HTTP/1.1 prediction server over a saved pipeline.
//!
//! * `POST /predict` with a JSON array of records (`[{"age": 39, "education": "Bachelors"}]`)
//!   → `{"predictions": [...], "probabilities": [[...]], "classes": [...]}` (no
//!   `probabilities` for regression);
//! * `POST /explain` → `{"features": [...], "attributions": [[...]], "base_values": [...],
//!   "predictions": [...]}` (GradientSHAP against the run's `background.parquet`);
//! * `GET /health` → `{"status": "ok"}`; `GET /metadata` → the expected columns with their
//!   types, roles and (for categorical columns) categories, and the target's classes.
//!
//! Every request is checked against the pipeline's columns before it reaches the model: a
//! missing column, a value of the wrong type, an unseen category, an empty list, malformed
//! JSON, a body over the limit or an unknown route is a 4xx answer with a JSON `error` naming
//! the field (and the record). A null follows the pipeline's null handling.
//!
//! Requests are micro-batched: one worker thread owns the pipeline and joins the records of
//! the requests that arrive within `max_wait` of the first one (up to `max_batch` rows) into one
//! forward pass. The server is plain HTTP/1.1 with keep-alive over tokio's `TcpListener`
//! (see the README for why not axum); SIGTERM and SIGINT stop it gracefully: it stops
//! accepting, finishes the requests in flight, and returns.
use crate::error::{CliError, Result};
use crate::predict::{classes, tensor_f64};
use polars::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use widedeep::prelude::*;

/// Settings of [`serve`].
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The pipeline directory.
    pub pipeline: PathBuf,
    /// Background rows for `/explain` (default: `background.parquet` beside the pipeline
    /// directory, as `widedeep train` writes it).
    pub background: Option<PathBuf>,
    /// Address to bind (default `127.0.0.1`).
    pub host: String,
    /// Port (0: any free port; the bound address is printed and returned).
    pub port: u16,
    /// The most rows joined into one forward pass.
    pub max_batch: usize,
    /// How long the first request of a batch waits for others.
    pub max_wait: Duration,
    /// The largest accepted request body, in bytes.
    pub body_limit: usize,
    /// The device of the model.
    pub device: Device,
    /// Accept categories the pipeline did not see in training (they take the unseen index, as
    /// in `Pipeline::predict`) instead of answering 422.
    pub allow_unseen: bool,
    /// libtorch intra-op threads of the model thread (default 1). The HTTP runtime's two
    /// threads parse JSON and build the frames while the model thread runs the forward pass, so
    /// parallelism comes from the pipelining of requests; more intra-op threads compete with
    /// them for the cores (measured in the README's `make bench-serve` section).
    pub threads: usize,
}

impl ServeOptions {
    /// Defaults for the pipeline in `dir`: 127.0.0.1:8080, batches of up to 1,024 rows
    /// gathered for at most 2 ms, bodies up to 4 MiB, CPU, one intra-op thread.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            pipeline: dir.into(),
            background: None,
            host: "127.0.0.1".into(),
            port: 8080,
            max_batch: 1024,
            max_wait: Duration::from_millis(2),
            body_limit: 4 << 20,
            device: Device::Cpu,
            allow_unseen: false,
            threads: 1,
        }
    }
}

/// A 4xx/5xx answer: status and JSON body.
#[derive(Debug)]
struct ApiError {
    status: u16,
    body: Value,
}

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "error": message.into() }),
        }
    }
    fn field(status: u16, record: usize, field: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "error": message.into(), "field": field, "record": record }),
        }
    }
}

/// What the column expects.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Int,
    Float,
    Str,
    Bool,
}

impl Kind {
    fn of(dtype: &DataType) -> Self {
        match dtype {
            d if d.is_integer() => Kind::Int,
            d if d.is_float() => Kind::Float,
            DataType::Boolean => Kind::Bool,
            _ => Kind::Str,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Int => "integer",
            Kind::Float => "number",
            Kind::Str => "string",
            Kind::Bool => "boolean",
        }
    }
}

/// One expected input column.
#[derive(Clone, Debug)]
struct Expected {
    name: String,
    kind: Kind,
    role: &'static str,
    /// Known categories (checked when present).
    categories: Option<BTreeSet<String>>,
}

/// The input contract of a pipeline: its columns in order.
#[derive(Clone, Debug)]
struct Schema {
    columns: Vec<Expected>,
    check_categories: bool,
    metadata: Value,
}

fn schema_of(pipeline: &Pipeline, background: Option<&DataFrame>, allow_unseen: bool) -> Schema {
    let p = &pipeline.preprocessors;
    let mut roles: Vec<(String, &'static str)> = Vec::new();
    let mut add = |name: &str, role: &'static str| {
        if !roles.iter().any(|(n, _)| n == name) {
            roles.push((name.to_string(), role));
        }
    };
    if let Some(t) = &p.tab {
        t.cat_cols().iter().for_each(|c| add(c, "categorical"));
        t.continuous_cols()
            .iter()
            .for_each(|c| add(c, "continuous"));
    }
    if let Some(w) = &p.wide {
        w.wide_cols().iter().for_each(|c| add(c, "wide"));
    }
    p.text.iter().for_each(|t| add(t.column(), "text"));
    p.image.iter().for_each(|i| add(i.column(), "image"));
    let mut columns = Vec::new();
    for (name, role) in roles {
        let dtype = background
            .and_then(|b| b.column(&name).ok())
            .map(|c| c.dtype().clone());
        let kind = match (&dtype, role) {
            (Some(d), _) => Kind::of(d),
            (None, "continuous") => Kind::Float,
            (None, _) => Kind::Str,
        };
        let mut categories: Option<BTreeSet<String>> = None;
        if let Some(t) = &p.tab {
            if t.cat_cols().contains(&name) && t.bin_edges(&name).is_none() {
                let mut set = BTreeSet::new();
                let mut i = 1;
                while let Some(c) = t.category_of(&name, i) {
                    set.insert(c.to_string());
                    i += 1;
                }
                categories = Some(set);
            }
        }
        if let Some(w) = &p.wide {
            if role == "wide" && w.bin_edges(&name).is_none() {
                let mut set = BTreeSet::new();
                for i in 1..=w.wide_dim() as i64 {
                    if let Some((f, v)) = w.feature_of(i) {
                        if f == name {
                            set.insert(v);
                        }
                    }
                }
                categories = Some(set);
            }
        }
        columns.push(Expected {
            name,
            kind,
            role,
            categories,
        });
    }
    let target = p.target.as_ref().map(|t| {
        json!({ "column": t.column(), "kind": format!("{:?}", t.kind()).to_lowercase(),
                "classes": classes(pipeline) })
    });
    let metadata = json!({
        "columns": columns.iter().map(|c| {
            let mut o = json!({ "name": c.name, "type": c.kind.name(), "role": c.role });
            if let Some(cats) = &c.categories {
                o["categories"] = json!(cats);
            }
            o
        }).collect::<Vec<_>>(),
        "target": target,
        "objective": pipeline.trainer.config().objective,
        "history_epochs": pipeline.history().len(),
    });
    Schema {
        columns,
        check_categories: !allow_unseen,
        metadata,
    }
}

/// Parses the body as records and builds the DataFrame the pipeline expects.
fn records_frame(schema: &Schema, body: &[u8]) -> std::result::Result<DataFrame, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(400, format!("malformed JSON: {e}")))?;
    let records = match value {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("records") {
            Some(Value::Array(a)) => a.clone(),
            _ => vec![Value::Object(o)],
        },
        _ => return Err(ApiError::new(400, "expected a JSON array of records")),
    };
    if records.is_empty() {
        return Err(ApiError::new(400, "empty list of records"));
    }
    let mut columns = Vec::with_capacity(schema.columns.len());
    for c in &schema.columns {
        let mut ints: Vec<Option<i64>> = Vec::new();
        let mut floats: Vec<Option<f64>> = Vec::new();
        let mut strs: Vec<Option<String>> = Vec::new();
        let mut bools: Vec<Option<bool>> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let Value::Object(r) = r else {
                return Err(ApiError::new(
                    400,
                    format!("record {i} is not a JSON object"),
                ));
            };
            let v = r.get(&c.name).ok_or_else(|| {
                ApiError::field(422, i, &c.name, format!("missing field `{}`", c.name))
            })?;
            let wrong = || {
                ApiError::field(
                    422,
                    i,
                    &c.name,
                    format!("field `{}`: expected a {}, got {v}", c.name, c.kind.name()),
                )
            };
            match (c.kind, v) {
                (Kind::Int, Value::Null) => ints.push(None),
                (Kind::Int, Value::Number(n)) => ints.push(Some(n.as_i64().ok_or_else(wrong)?)),
                (Kind::Float, Value::Null) => floats.push(None),
                (Kind::Float, Value::Number(n)) => floats.push(n.as_f64()),
                // JSON has no NaN: "NaN" is accepted and follows the pipeline's null handling
                (Kind::Float, Value::String(s)) if s.eq_ignore_ascii_case("nan") => {
                    floats.push(Some(f64::NAN))
                }
                (Kind::Str, Value::Null) => strs.push(None),
                (Kind::Str, Value::String(s)) => strs.push(Some(s.clone())),
                (Kind::Bool, Value::Null) => bools.push(None),
                (Kind::Bool, Value::Bool(b)) => bools.push(Some(*b)),
                _ => return Err(wrong()),
            }
            if let Some(cats) = c.categories.as_ref().filter(|_| schema.check_categories) {
                let text = match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                };
                if let Some(t) = text.filter(|t| !cats.contains(t)) {
                    return Err(ApiError::field(
                        422,
                        i,
                        &c.name,
                        format!("field `{}`: unseen category `{t}`", c.name),
                    ));
                }
            }
        }
        let name = c.name.as_str().into();
        columns.push(match c.kind {
            Kind::Int => Column::new(name, ints),
            Kind::Float => Column::new(name, floats),
            Kind::Str => Column::new(name, strs),
            Kind::Bool => Column::new(name, bools),
        });
    }
    DataFrame::new(records.len(), columns)
        .map_err(|e| ApiError::new(400, format!("building the rows: {e}")))
}

/// A job for the model thread.
struct Job {
    explain: bool,
    df: DataFrame,
    reply: tokio::sync::oneshot::Sender<std::result::Result<Value, ApiError>>,
}

/// The model's answer for the rows of `df`, one JSON value per row.
fn predict_rows(pipeline: &Pipeline, classes: &[String], df: &DataFrame) -> Result<Vec<Value>> {
    if classes.is_empty() {
        let pred = tensor_f64(&pipeline.predict(df)?)?;
        return Ok(pred
            .into_iter()
            .map(|p| json!({ "prediction": p }))
            .collect());
    }
    let proba = tensor_f64(&pipeline.predict_proba(df)?)?;
    let k = classes.len();
    if proba.len() != df.height() * k {
        return Err(CliError::Usage("unexpected probability shape".into()));
    }
    Ok(proba
        .chunks(k)
        .map(|row| {
            let best = (0..k)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(0);
            json!({ "prediction": classes[best], "probabilities": row })
        })
        .collect())
}

fn batch_answer(rows: Vec<Value>, classes: &[String]) -> Value {
    let predictions: Vec<Value> = rows.iter().map(|r| r["prediction"].clone()).collect();
    let mut out = json!({ "predictions": predictions });
    if !classes.is_empty() {
        let p: Vec<Value> = rows.iter().map(|r| r["probabilities"].clone()).collect();
        out["probabilities"] = Value::Array(p);
        out["classes"] = json!(classes);
    }
    out
}

fn explain_rows(
    pipeline: &Pipeline,
    background: Option<&DataFrame>,
    df: &DataFrame,
) -> std::result::Result<Value, ApiError> {
    let bg = background.ok_or_else(|| {
        ApiError::new(
            503,
            "no background rows to explain against: start the server with --background",
        )
    })?;
    let config = ExplainerConfig::new(Method::gradient_shap())
        .background_size(bg.height().clamp(1, 100))
        .seed(0);
    let e = Explainer::for_pipeline(pipeline, bg, &config)
        .and_then(|x| x.explain_df(df))
        .map_err(|e| ApiError::new(422, e.to_string()))?;
    let attributions: Vec<Value> = (0..e.n_rows)
        .map(|r| {
            let o: Map<String, Value> = e
                .feature_names
                .iter()
                .enumerate()
                .map(|(f, name)| (name.clone(), json!(e.value(r, f, 0))))
                .collect();
            Value::Object(o)
        })
        .collect();
    Ok(json!({
        "output": e.output_names.first(),
        "features": e.feature_names,
        "attributions": attributions,
        "base_values": (0..e.n_rows).map(|r| e.base_value(r, 0)).collect::<Vec<_>>(),
        "predictions": (0..e.n_rows).map(|r| e.prediction(r, 0)).collect::<Vec<_>>(),
    }))
}

/// The model thread: owns the pipeline; joins predict jobs into batches.
fn model_loop(
    pipeline: Pipeline,
    background: Option<DataFrame>,
    jobs: mpsc::Receiver<Job>,
    max_batch: usize,
    max_wait: Duration,
) {
    let classes = classes(&pipeline);
    let mut pending: Option<Job> = None;
    loop {
        let first = match pending.take() {
            Some(j) => j,
            None => match jobs.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        if first.explain {
            let answer = explain_rows(&pipeline, background.as_ref(), &first.df);
            let _ = first.reply.send(answer);
            continue;
        }
        let deadline = Instant::now() + max_wait;
        let mut batch = vec![first];
        let mut rows: usize = batch[0].df.height();
        while rows < max_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            match jobs.recv_timeout(left) {
                Ok(j) if j.explain => {
                    pending = Some(j);
                    break;
                }
                Ok(j) => {
                    rows += j.df.height();
                    batch.push(j);
                }
                Err(_) => break,
            }
        }
        run_batch(&pipeline, &classes, batch);
    }
}

fn run_batch(pipeline: &Pipeline, classes: &[String], batch: Vec<Job>) {
    let joined = if batch.len() == 1 {
        Ok(batch[0].df.clone())
    } else {
        let mut df = batch[0].df.clone();
        batch[1..]
            .iter()
            .try_for_each(|j| df.vstack_mut(&j.df).map(|_| ()))
            .map(|_| df)
    };
    if let Ok(df) = joined {
        if let Ok(rows) = predict_rows(pipeline, classes, &df) {
            let mut rows = rows.into_iter();
            for j in batch {
                let part: Vec<Value> = rows.by_ref().take(j.df.height()).collect();
                let _ = j.reply.send(Ok(batch_answer(part, classes)));
            }
            return;
        }
    }
    // a failing batch: answer each request on its own so one bad request fails alone
    for j in batch {
        let answer = predict_rows(pipeline, classes, &j.df)
            .map(|rows| batch_answer(rows, classes))
            .map_err(|e| ApiError::new(422, e.to_string()));
        let _ = j.reply.send(answer);
    }
}

/// Set by SIGTERM / SIGINT.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
}

/// A running server (see [`start`]).
pub struct ServerHandle {
    /// The bound address.
    pub addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// Stops accepting, lets requests in flight finish, and waits for the server to end.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Waits until the server ends (after SIGTERM/SIGINT).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Shared {
    schema: Schema,
    jobs: mpsc::Sender<Job>,
    body_limit: usize,
    in_flight: AtomicUsize,
}

/// Loads the pipeline, binds the address and serves in background threads; returns once the
/// server accepts connections. SIGTERM / SIGINT (or [`ServerHandle::shutdown`]) stop it.
pub fn start(options: ServeOptions) -> Result<ServerHandle> {
    let bg_path = options.background.clone().or_else(|| {
        let p = options.pipeline.parent()?.join("background.parquet");
        p.is_file().then_some(p)
    });
    let background = bg_path.as_deref().map(crate::data::read).transpose()?;
    // the pipeline lives on the model thread; its schema comes back over a channel
    let (schema_tx, schema_rx) = mpsc::channel::<Result<Schema>>();
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    let dir = options.pipeline.clone();
    let device = options.device;
    let (max_batch, max_wait) = (options.max_batch.max(1), options.max_wait);
    let allow_unseen = options.allow_unseen;
    if options.threads == 0 {
        return Err(CliError::Usage("--threads must be ≥ 1".into()));
    }
    let threads = i32::try_from(options.threads).unwrap_or(i32::MAX);
    std::thread::Builder::new()
        .name("widedeep-model".into())
        .spawn(move || {
            // only this thread runs libtorch operators
            tch::set_num_threads(threads);
            let pipeline = match Pipeline::load(&dir, device) {
                Ok(p) => p,
                Err(e) => {
                    let _ = schema_tx.send(Err(e.into()));
                    return;
                }
            };
            let schema = schema_of(&pipeline, background.as_ref(), allow_unseen);
            let _ = schema_tx.send(Ok(schema));
            model_loop(pipeline, background, jobs_rx, max_batch, max_wait);
        })
        .map_err(|e| CliError::io(&options.pipeline, e))?;
    let schema = schema_rx
        .recv()
        .map_err(|_| CliError::Usage("the model thread ended while loading".into()))??;
    let addr = format!("{}:{}", options.host, options.port);
    let std_listener =
        std::net::TcpListener::bind(&addr).map_err(|e| CliError::io(PathBuf::from(&addr), e))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| CliError::io(PathBuf::from(&addr), e))?;
    let local = std_listener
        .local_addr()
        .map_err(|e| CliError::io(PathBuf::from(&addr), e))?;
    let shared = Arc::new(Shared {
        schema,
        jobs: jobs_tx,
        body_limit: options.body_limit,
        in_flight: AtomicUsize::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = stop.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::io(PathBuf::from(&addr), e))?;
    let thread = std::thread::Builder::new()
        .name("widedeep-http".into())
        .spawn(move || {
            runtime.block_on(accept_loop(std_listener, shared, stop_flag));
        })
        .map_err(|e| CliError::io(PathBuf::from(&addr), e))?;
    Ok(ServerHandle {
        addr: local,
        stop,
        thread: Some(thread),
    })
}

/// `widedeep serve`: starts the server, prints its address and serves until SIGTERM/SIGINT.
pub fn serve(options: ServeOptions) -> Result<()> {
    install_signal_handlers();
    let handle = start(options)?;
    println!("listening on http://{}", handle.addr);
    handle.wait();
    eprintln!("stopped");
    Ok(())
}

async fn accept_loop(listener: std::net::TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    let stopping = || stop.load(Ordering::SeqCst) || STOP.load(Ordering::SeqCst);
    while !stopping() {
        if let Ok(Ok((stream, _))) =
            tokio::time::timeout(Duration::from_millis(50), listener.accept()).await
        {
            let shared = shared.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let _ = connection(stream, shared, stop).await;
            });
        }
    }
    drop(listener);
    // finish the requests in flight (at most 10 s)
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads into `buf` once; `Ok(0)` at end of stream.
async fn read_some(stream: &TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

const MAX_HEAD: usize = 16 * 1024;

/// One keep-alive connection: request after request until close, error or shutdown.
async fn connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // the head
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if buf.len() > MAX_HEAD {
                let e = ApiError::new(431, "request head too large");
                return respond(&stream, e.status, &e.body, true).await;
            }
            let idle = tokio::time::timeout(Duration::from_secs(30), read_some(&stream, &mut buf));
            match idle.await {
                Ok(Ok(0)) | Err(_) => return Ok(()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
            }
        };
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = request(&stream, &shared, &mut buf, head_end).await;
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        let keep_alive = result?;
        if !keep_alive || stop.load(Ordering::SeqCst) || STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
    }
}

/// Handles the request whose head is `buf[..head_end]`; returns whether to keep the connection.
async fn request(
    stream: &TcpStream,
    shared: &Shared,
    buf: &mut Vec<u8>,
    head_end: usize,
) -> std::io::Result<bool> {
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut parts = lines.next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut length: Option<usize> = None;
    let mut close = false;
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "content-length" => length = v.parse().ok().or(Some(usize::MAX)),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                "transfer-encoding" => chunked = true,
                _ => {}
            }
        }
    }
    if method.is_empty() || target.is_empty() {
        let e = ApiError::new(400, "malformed request line");
        respond(stream, e.status, &e.body, true).await?;
        return Ok(false);
    }
    if chunked {
        let e = ApiError::new(411, "send the body with a Content-Length");
        respond(stream, e.status, &e.body, true).await?;
        return Ok(false);
    }
    let length = length.unwrap_or(0);
    if length > shared.body_limit {
        let e = ApiError::new(
            413,
            format!(
                "body of {length} bytes over the limit of {} bytes",
                shared.body_limit
            ),
        );
        respond(stream, e.status, &e.body, true).await?;
        return Ok(false);
    }
    while buf.len() < head_end + length {
        let read = tokio::time::timeout(Duration::from_secs(30), read_some(stream, buf)).await;
        match read {
            Ok(Ok(0)) | Err(_) => return Ok(false),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
    let body: Vec<u8> = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    let path = target.split('?').next().unwrap_or("");
    let answer = route(shared, method, path, &body).await;
    let (status, value) = match answer {
        Ok(v) => (200, v),
        Err(e) => (e.status, e.body),
    };
    respond(stream, status, &value, close).await?;
    Ok(!close)
}

async fn route(
    shared: &Shared,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::result::Result<Value, ApiError> {
    match (method, path) {
        ("GET", "/health") => Ok(json!({ "status": "ok" })),
        ("GET", "/metadata") => Ok(shared.schema.metadata.clone()),
        ("POST", "/predict") | ("POST", "/explain") => {
            let df = records_frame(&shared.schema, body)?;
            let (tx, rx) = tokio::sync::oneshot::channel();
            let job = Job {
                explain: path == "/explain",
                df,
                reply: tx,
            };
            shared
                .jobs
                .send(job)
                .map_err(|_| ApiError::new(503, "the model thread has stopped"))?;
            rx.await
                .map_err(|_| ApiError::new(500, "the model thread dropped the request"))?
        }
        (_, "/health" | "/metadata" | "/predict" | "/explain") => Err(ApiError::new(
            405,
            format!("method {method} not allowed on {path}"),
        )),
        _ => Err(ApiError::new(404, format!("no route {path}"))),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

async fn respond(
    stream: &TcpStream,
    status: u16,
    body: &Value,
    close: bool,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(body).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n",
        reason(status),
        body.len(),
        if close { "connection: close\r\n" } else { "" }
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    write_all(stream, &out).await
}

/// Options for the pipeline in `pipeline` from the command's flags.
pub fn options_from(
    pipeline: &Path,
    port: u16,
    max_batch: usize,
    max_wait_ms: u64,
    body_limit: usize,
    device: Device,
    background: Option<&Path>,
) -> ServeOptions {
    let mut o = ServeOptions::new(pipeline);
    o.port = port;
    o.max_batch = max_batch;
    o.max_wait = Duration::from_millis(max_wait_ms);
    o.body_limit = body_limit;
    o.device = device;
    o.background = background.map(Path::to_path_buf);
    o
}
