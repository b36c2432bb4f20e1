//! Checks shared by the training settings: number ranges and monitored history keys; each
//! error names the field it is about.
use crate::error::Result;
use crate::macros::{bail, ensure};
use std::collections::BTreeMap;

/// Whether `v` is a positive finite number.
pub(crate) fn positive(v: f64) -> bool {
    v > 0.0 && v.is_finite()
}

/// Whether `v` is a finite number ≥ 0.
pub(crate) fn non_negative(v: f64) -> bool {
    v >= 0.0 && v.is_finite()
}

/// Errors on `field` ("must be positive, got …") unless `v` is a positive finite number.
pub(crate) fn check_positive(v: f64, field: impl Into<String>) -> Result<()> {
    ensure!(positive(v), config(field), "must be positive, got {v}");
    Ok(())
}

/// The value of `key` in an epoch record; an error on `field` listing the recorded keys when
/// it is missing.
pub(crate) fn monitored(
    record: &BTreeMap<String, f64>,
    key: &str,
    field: impl Into<String>,
) -> Result<f64> {
    let Some(value) = record.get(key) else {
        bail!(
            config(field),
            "`{key}` is not recorded; available: {}",
            record.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    Ok(*value)
}
