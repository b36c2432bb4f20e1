//! Device selection: CUDA when available, else CPU; `WIDEDEEP_DEVICE` overrides.
use crate::error::{Result, WideDeepError};
use crate::macros::bail;
use tch::Device;

/// Parses `cpu`, `cuda` or `cuda:N`. A CUDA device that is not present is an error.
pub fn parse_device(s: &str) -> Result<Device> {
    let s = s.trim().to_ascii_lowercase();
    let dev = match s.as_str() {
        "cpu" => return Ok(Device::Cpu),
        "cuda" | "gpu" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Device::Cuda(n),
            _ => bail!(WideDeepError::Device(s)),
        },
    };
    match dev {
        Device::Cuda(n) if n < tch::Cuda::device_count() as usize => Ok(dev),
        _ => Err(WideDeepError::Device(s)),
    }
}

/// The default device: `WIDEDEEP_DEVICE` (`cpu`, `cuda`, `cuda:N`) when set, else CUDA 0 when a
/// GPU is available, else CPU.
pub fn default_device() -> Result<Device> {
    match std::env::var("WIDEDEEP_DEVICE") {
        Ok(s) if !s.trim().is_empty() => parse_device(&s),
        _ => Ok(Device::cuda_if_available()),
    }
}

/// Makes glibc's allocator keep freed memory for reuse instead of handing it back to the
/// operating system: blocks up to 32 MiB come from the heap (not from a fresh `mmap` each), and
/// the heap is trimmed only when more than 1 GiB at its top is free.
///
/// By default glibc maps large blocks afresh and trims the heap as soon as a few hundred KiB are
/// free, so every training batch of a transformer pays page faults to zero new pages for its
/// activations and gradients (about 12% of a TabTransformer epoch on the CPU). A [`Trainer`]
/// calls this once when created; `WIDEDEEP_MALLOC_DEFAULTS=1` leaves the allocator alone. Does
/// nothing on other platforms. Returns whether the settings were applied.
///
/// [`Trainer`]: crate::training::Trainer
pub fn keep_freed_host_memory() -> bool {
    static APPLIED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *APPLIED.get_or_init(|| {
        if std::env::var("WIDEDEEP_MALLOC_DEFAULTS").is_ok_and(|v| v.trim() == "1") {
            return false;
        }
        set_malloc_thresholds()
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_malloc_thresholds() -> bool {
    // SAFETY: mallopt only changes allocator parameters; both values are within glibc's bounds
    // (the mmap threshold may be at most 32 MiB on 64-bit targets)
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_malloc_thresholds() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn allocator_thresholds_are_accepted() {
        if std::env::var("WIDEDEEP_MALLOC_DEFAULTS").is_err() {
            assert!(keep_freed_host_memory());
        }
    }

    #[test]
    fn parses_cpu_and_rejects_garbage() {
        assert_eq!(parse_device("CPU").unwrap(), Device::Cpu);
        assert!(matches!(parse_device("tpu"), Err(WideDeepError::Device(_))));
        assert!(matches!(
            parse_device("cuda:x"),
            Err(WideDeepError::Device(_))
        ));
        if !tch::Cuda::is_available() {
            assert!(matches!(
                parse_device("cuda:0"),
                Err(WideDeepError::Device(_))
            ));
        }
    }
}
