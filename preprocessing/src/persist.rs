//! JSON save/load shared by all preprocessors.

use std::fs::{self, File};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Result;
use crate::macros::bail;

/// Serializes `value` as pretty JSON to `path` atomically: the JSON is written to a temporary
/// file in the same directory, flushed, then renamed over `path`. On any failure the temporary
/// file is removed and `path` is left untouched.
pub(crate) fn save_json<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    // Serialize first, so a serialization error never touches the disk.
    let json = serde_json::to_vec_pretty(value)?;
    let tmp = temp_path(path)?;
    let written = write_and_sync(&tmp, &json).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        bail!(e);
    }
    Ok(())
}

/// Reads a value saved by [`save_json`].
pub(crate) fn load_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let reader = BufReader::new(File::open(path)?);
    Ok(serde_json::from_reader(reader)?)
}

fn write_and_sync(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// A fresh temporary path next to `path` (same directory, hence same filesystem, so the final
/// rename is atomic).
fn temp_path(path: &Path) -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let file_name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{}` has no file name", path.display()),
        )
    })?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp_name = format!(
        ".{}.{}-{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        n
    );
    Ok(match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(tmp_name),
        _ => PathBuf::from(tmp_name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_no_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.json");
        save_json(&vec![1, 2, 3], &path).unwrap();
        let back: Vec<i32> = load_json(&path).unwrap();
        assert_eq!(back, vec![1, 2, 3]);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary file left behind");
    }

    #[test]
    fn failed_save_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // The target is an existing directory: the rename fails.
        let path = dir.path().join("sub");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), b"x").unwrap();
        assert!(save_json(&1, &path).is_err());
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary file left behind");
        assert!(path.join("keep").exists());
    }
}
