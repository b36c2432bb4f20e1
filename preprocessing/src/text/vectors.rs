//! Embedding matrices from GloVe-format word vectors.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use ndarray::Array2;

use crate::error::{PreprocessingError, Result};
use crate::macros::ensure;

/// Reads a GloVe-format file and builds the `[vocab_size, dim]` matrix for `vocab`.
pub(super) fn embedding_matrix(
    path: &Path,
    vocab: &HashMap<String, u32>,
    vocab_size: usize,
    pad_id: usize,
) -> Result<Array2<f32>> {
    let bad = |reason: String| PreprocessingError::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut dim = 0usize;
    let mut rows: Vec<Option<Vec<f32>>> = vec![None; vocab_size];
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| bad(format!("line {}: {e}", i + 1)))?;
        let mut parts = line.split_ascii_whitespace();
        let Some(word) = parts.next() else { continue };
        let values: std::result::Result<Vec<f32>, _> = parts.map(str::parse::<f32>).collect();
        let values = values.map_err(|e| bad(format!("line {}: {e}", i + 1)))?;
        if dim == 0 {
            ensure!(
                !values.is_empty(),
                bad(format!("line {}: no vector values", i + 1))
            );
            dim = values.len();
        } else {
            ensure!(
                values.len() == dim,
                bad(format!(
                    "line {}: {} values, expected {dim}",
                    i + 1,
                    values.len()
                ))
            );
        }
        if let Some(&id) = vocab.get(word) {
            rows[id as usize] = Some(values);
        }
    }
    ensure!(dim > 0, bad("no word vectors".into()));
    let found: Vec<&Vec<f32>> = rows.iter().flatten().collect();
    let mut mean = vec![0f32; dim];
    for v in &found {
        for (m, x) in mean.iter_mut().zip(v.iter()) {
            *m += x;
        }
    }
    if !found.is_empty() {
        mean.iter_mut().for_each(|m| *m /= found.len() as f32);
    }
    let mut out = Array2::<f32>::zeros((vocab_size, dim));
    for (i, row) in rows.iter().enumerate() {
        if i == pad_id {
            continue;
        }
        let src = row.as_deref().unwrap_or(&mean);
        out.row_mut(i)
            .iter_mut()
            .zip(src)
            .for_each(|(o, &x)| *o = x);
    }
    Ok(out)
}
