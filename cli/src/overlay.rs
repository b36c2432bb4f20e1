//! Laying the user's TOML tables over the library's defaults, with errors that name the file,
//! the line and the field path.
//!
//! A section of the experiment file (`[preprocessing.tab]`, `[model.deeptabular]`,
//! `[training]`, …) is merged into the JSON of the library's default configuration for it
//! (the struct's own serde form), deserialized with `serde_path_to_error` (wrong types and bad
//! enum values name their path), serialized again, and every key the user wrote must be found
//! in that result: a key the library's struct does not have is reported as unknown.
use crate::error::{CliError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Keys that name the variant of an internally tagged enum in the library's configs.
const TAGS: [&str; 5] = ["model", "name", "objective", "type", "kind"];

/// Where errors point: the experiment file and its text.
#[derive(Clone, Debug)]
pub struct Source {
    /// The file.
    pub file: PathBuf,
    /// Its text (to find the line of a field path).
    pub text: String,
}

impl Source {
    /// A source for `text` read from `file`.
    pub fn new(file: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            text: text.into(),
        }
    }

    /// A config error at `path` (dotted, with `[i]` for array items).
    pub fn error(&self, path: &str, message: impl Into<String>) -> CliError {
        CliError::Config {
            file: self.file.clone(),
            line: find_line(&self.text, path),
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// Overlays `user` (the TOML of section `path`) on `base` and deserializes the result as
    /// `T`, checking that every user key exists in `T`.
    pub fn resolve<T: DeserializeOwned + Serialize>(
        &self,
        path: &str,
        base: &impl Serialize,
        user: &toml::Value,
    ) -> Result<T> {
        let mut value = to_json(base);
        let user = toml_to_json(user);
        merge(&mut value, &user);
        let out: T = serde_path_to_error::deserialize(value).map_err(|e| {
            let inner = e.path().to_string();
            let full = join(path, &inner);
            self.error(&full, e.into_inner().to_string())
        })?;
        let back = to_json(&out);
        if let Some(unknown) = missing_key(&user, &back, path) {
            return Err(self.error(&unknown, "unknown field"));
        }
        Ok(out)
    }
}

fn join(path: &str, inner: &str) -> String {
    match (path.is_empty(), inner.is_empty() || inner == ".") {
        (_, true) => path.to_string(),
        (true, false) => inner.to_string(),
        (false, false) if inner.starts_with('[') => format!("{path}{inner}"),
        _ => format!("{path}.{inner}"),
    }
}

/// The JSON of a serializable value (the library's configs always serialize).
pub fn to_json(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// TOML → JSON (dates become strings).
pub fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect::<Map<_, _>>(),
        ),
    }
}

/// JSON → TOML, dropping nulls (absent optional fields) and empty tables of them.
pub fn json_to_toml(v: &Value) -> Option<toml::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(a) => toml::Value::Array(a.iter().filter_map(json_to_toml).collect()),
        Value::Object(o) => toml::Value::Table(
            o.iter()
                .filter_map(|(k, v)| json_to_toml(v).map(|v| (k.clone(), v)))
                .collect(),
        ),
    })
}

/// The tag value of an internally tagged enum object, if `o` has one.
fn tag_of(o: &Map<String, Value>) -> Option<(&str, &Value)> {
    TAGS.iter()
        .find_map(|t| o.get(*t).map(|v| (*t, v)))
        .filter(|(_, v)| v.is_string())
}

/// Merges `user` into `base`: objects key by key (recursively), anything else replaced. An
/// object naming another variant of a tagged enum (a different `model`/`name`/… tag, or for an
/// externally tagged enum a different single key) replaces the base object whole.
pub fn merge(base: &mut Value, user: &Value) {
    match (base, user) {
        (Value::Object(b), Value::Object(u)) => {
            let other_variant = match (tag_of(b), tag_of(u)) {
                (Some((bt, bv)), Some((ut, uv))) => bt == ut && bv != uv,
                _ => b.len() == 1 && u.len() == 1 && !b.contains_key(u.keys().next().unwrap()),
            };
            if other_variant {
                *b = u.clone();
                return;
            }
            for (k, v) in u {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        // `kind = "fitted"` for `{ kind = "fitted" }`: a bare string where the default is a
        // tagged enum names the variant
        (Value::Object(b), Value::String(name)) if tag_of(b).is_some() => {
            let tag = tag_of(b).map(|(t, _)| t.to_string()).unwrap_or_default();
            let mut o = Map::new();
            o.insert(tag, Value::String(name.clone()));
            *b = o;
        }
        (b, u) => *b = u.clone(),
    }
}

/// The first key path of `user` that is absent from `resolved` (serde dropped it: not a field).
pub fn missing_key(user: &Value, resolved: &Value, path: &str) -> Option<String> {
    match (user, resolved) {
        (Value::Object(u), Value::Object(r)) => u.iter().find_map(|(k, v)| {
            let p = join(path, k);
            match r.get(k) {
                None => Some(p),
                Some(rv) => missing_key(v, rv, &p),
            }
        }),
        (Value::Object(_), _) | (Value::String(_), Value::Object(_)) => None,
        (Value::Array(u), Value::Array(r)) => u
            .iter()
            .zip(r)
            .enumerate()
            .find_map(|(i, (uv, rv))| missing_key(uv, rv, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// The 1-based line of the key at dotted `path` (`a.b[1].c`) in TOML `text`: table headers
/// (`[a.b]`, `[[a.b]]` counted per array) and dotted keys are followed; a key inside an inline
/// table falls back to the line of the nearest enclosing key found.
pub fn find_line(text: &str, path: &str) -> Option<usize> {
    let target = split_path(path);
    let mut best: Option<(usize, usize)> = None; // (matched segments, line)
    let mut header: Vec<String> = Vec::new();
    let mut array_counts: std::collections::HashMap<String, usize> = Default::default();
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let mut full: Vec<String>;
        if let Some(inner) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            let name = inner.trim().to_string();
            let n = array_counts.entry(name.clone()).or_insert(0);
            header = split_key(&name);
            if let Some(last) = header.last_mut() {
                *last = format!("{last}[{n}]");
            }
            *n += 1;
            full = header.clone();
        } else if let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            header = split_key(inner.trim());
            full = header.clone();
        } else if let Some((key, _)) = line.split_once('=') {
            full = header.clone();
            full.extend(split_key(key.trim()));
        } else {
            continue;
        }
        // `[[a.b]]` headers carry the index on their last segment; compare loosely too
        let matched = common_prefix(&full, &target);
        if matched > 0 && best.is_none_or(|(m, _)| matched > m) {
            best = Some((matched, i + 1));
        }
        full.clear();
    }
    best.map(|(_, line)| line)
}

/// How many leading segments of a key in the file (`a`) match the path (`b`); a key without
/// an index matches the path's `key[i]` (an item of an inline array).
fn common_prefix(a: &[String], b: &[String]) -> usize {
    a.iter()
        .zip(b)
        .take_while(|(x, y)| x == y || y.split('[').next() == Some(x.as_str()))
        .count()
}

fn strip_comment(line: &str) -> &str {
    let mut in_str: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (in_str, c) {
            (None, '"' | '\'') => in_str = Some(c),
            (Some(q), c) if c == q => in_str = None,
            (None, '#') => return &line[..i],
            _ => {}
        }
    }
    line
}

fn split_key(key: &str) -> Vec<String> {
    key.split('.')
        .map(|s| s.trim().trim_matches('"').trim_matches('\'').to_string())
        .collect()
}

/// `a.b[1].c` → `["a", "b[1]", "c"]`.
fn split_path(path: &str) -> Vec<String> {
    path.split('.').map(str::to_string).collect()
}

/// Reads and parses a TOML file, syntax errors naming the file and line.
pub fn read_toml(file: &Path) -> Result<(Source, toml::Table)> {
    let text = std::fs::read_to_string(file).map_err(|e| CliError::io(file, e))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        CliError::Config {
            file: file.to_path_buf(),
            line,
            path: String::new(),
            message: e.message().to_string(),
        }
    })?;
    Ok((Source::new(file, text), table))
}

/// Applies `key.path=value` to `table` (the value parsed as TOML, else taken as a string).
pub fn set_override(table: &mut toml::Table, o: &str) -> Result<()> {
    let bad = |why: &str| CliError::Usage(format!("--set {o}: {why}"));
    let (key, value) = o.split_once('=').ok_or_else(|| bad("expected KEY=VALUE"))?;
    let value = format!("v = {}", value.trim())
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.trim().to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let (last, parents) = parts.split_last().ok_or_else(|| bad("empty key"))?;
    let mut cur = table;
    for p in parents {
        // `text[0]`: an item of an array of tables
        let (name, index) = match p.split_once('[') {
            Some((n, i)) => {
                let i = i
                    .trim_end_matches(']')
                    .parse::<usize>()
                    .map_err(|_| bad(&format!("bad index in `{p}`")))?;
                (n, Some(i))
            }
            None => (*p, None),
        };
        let entry = cur
            .entry(name.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        let entry = match index {
            Some(i) => entry
                .as_array_mut()
                .and_then(|a| a.get_mut(i))
                .ok_or_else(|| bad(&format!("no item {i} in `{name}`")))?,
            None => entry,
        };
        cur = entry
            .as_table_mut()
            .ok_or_else(|| bad(&format!("`{p}` is not a table")))?;
    }
    cur.insert(last.to_string(), value);
    Ok(())
}
