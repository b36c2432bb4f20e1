//! Reading the rows of an experiment: bundled data sets, Parquet and CSV files.
use crate::error::{CliError, Result};
use polars::prelude::*;
use std::path::Path;
use widedeep::datasets;

/// The bundled data sets `[data] dataset = …` may name.
pub const DATASETS: [&str; 6] = [
    "adult",
    "california_housing",
    "womens_ecommerce_reviews",
    "ecoli",
    "mnist5k",
    "digits",
];

/// A bundled data set by name.
pub fn dataset(name: &str) -> Result<DataFrame> {
    Ok(match name {
        "adult" => datasets::adult()?,
        "california_housing" => datasets::california_housing()?,
        "womens_ecommerce_reviews" => datasets::womens_ecommerce_reviews()?,
        "ecoli" => datasets::ecoli()?,
        "mnist5k" => datasets::mnist5k_labels()?,
        "digits" => digits()?,
        other => {
            return Err(CliError::Usage(format!(
                "unknown data set `{other}`; expected one of {}",
                DATASETS.join(", ")
            )))
        }
    })
}

/// Reads a Parquet file (`.parquet`, `.pq`) or a CSV file (`.csv`, header row; columns typed
/// as integers, floats or strings from their values; empty fields are nulls).
pub fn read(path: &Path) -> Result<DataFrame> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "csv" => read_csv(path),
        _ => Ok(datasets::read_parquet(path)?),
    }
}

/// Splits a CSV line on commas outside double quotes (`""` inside quotes is a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (_, '"') => quoted = !quoted,
            (false, ',') => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn read_csv(path: &Path) -> Result<DataFrame> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = split_csv(
        lines
            .next()
            .ok_or_else(|| CliError::Usage(format!("{}: empty CSV file", path.display())))?,
    );
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); header.len()];
    for (i, line) in lines.enumerate() {
        let row = split_csv(line);
        if row.len() != header.len() {
            return Err(CliError::Usage(format!(
                "{}: line {} has {} fields, the header {}",
                path.display(),
                i + 2,
                row.len(),
                header.len()
            )));
        }
        for (col, v) in cells.iter_mut().zip(row) {
            col.push(v);
        }
    }
    let height = cells.first().map_or(0, Vec::len);
    let columns = header
        .iter()
        .zip(cells)
        .map(|(name, values)| csv_column(name.trim(), values))
        .collect();
    DataFrame::new(height, columns).map_err(|e| CliError::polars(path.display().to_string(), e))
}

fn csv_column(name: &str, values: Vec<String>) -> Column {
    let present = || values.iter().filter(|v| !v.is_empty());
    if present().all(|v| v.trim().parse::<i64>().is_ok()) {
        let v: Vec<Option<i64>> = values.iter().map(|v| v.trim().parse().ok()).collect();
        return Column::new(name.into(), v);
    }
    if present().all(|v| v.trim().parse::<f64>().is_ok()) {
        let v: Vec<Option<f64>> = values.iter().map(|v| v.trim().parse().ok()).collect();
        return Column::new(name.into(), v);
    }
    let v: Vec<Option<String>> = values
        .into_iter()
        .map(|v| (!v.is_empty()).then_some(v))
        .collect();
    Column::new(name.into(), v)
}

/// Writes `df` to a Parquet file.
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| CliError::io(path, e))?;
    ParquetWriter::new(file)
        .finish(df)
        .map_err(|e| CliError::polars(format!("writing {}", path.display()), e))?;
    Ok(())
}

/// A seeded sample of `rows` rows of `df` (all of them when it has no more).
pub fn sample(df: &DataFrame, rows: usize, seed: u64) -> Result<DataFrame> {
    if rows >= df.height() {
        return Ok(df.clone());
    }
    let fraction = 1.0 - rows as f64 / df.height() as f64;
    Ok(datasets::train_test_split(df, fraction, seed)?.0)
}

/// mnist5k as a data set whose target needs the image, a text and a tabular column (the
/// `digits` example's recipe): `note` names a number `n` in words, `shift` is a number `t`,
/// `noise` is unrelated, and `high = 1` when digit + n + t ≥ 14.
pub fn digits() -> Result<DataFrame> {
    const WORDS: [&str; 10] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    const PHRASES: [&str; 4] = [
        "the code is {}",
        "{} was written on the back",
        "add {} to it",
        "remember {}",
    ];
    let mut df = datasets::mnist5k_labels()?;
    let digit: Vec<i64> = df
        .column("label")
        .and_then(|c| c.i64().map(|c| c.into_no_null_iter().collect()))
        .map_err(|e| CliError::polars("mnist5k labels", e))?;
    // a small seeded generator (SplitMix64) so the CLI needs no random-number crate
    let mut state: u64 = 2024;
    let mut next = move |n: u64| {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    };
    let (mut notes, mut shift, mut noise, mut high) = (vec![], vec![], vec![], vec![]);
    for &d in &digit {
        let n = next(10) as usize;
        let t = next(10) as i64;
        let phrase = PHRASES[next(PHRASES.len() as u64) as usize];
        notes.push(phrase.replace("{}", WORDS[n]));
        shift.push(t);
        noise.push(next(1 << 20) as f64 / (1u64 << 20) as f64);
        high.push(i64::from(d + n as i64 + t >= 14));
    }
    for c in [
        Column::new("note".into(), notes),
        Column::new("shift".into(), shift),
        Column::new("noise".into(), noise),
        Column::new("high".into(), high),
    ] {
        df.with_column(c)
            .map_err(|e| CliError::polars("building digits", e))?;
    }
    Ok(df)
}
