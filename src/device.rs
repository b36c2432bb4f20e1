//! Device selection: CUDA when available, else CPU; `WIDEDEEP_DEVICE` overrides.
use crate::error::{Result, WideDeepError};
use tch::Device;

/// Parses `cpu`, `cuda` or `cuda:N`. A CUDA device that is not present is an error.
pub fn parse_device(s: &str) -> Result<Device> {
    let s = s.trim().to_ascii_lowercase();
    let dev = match s.as_str() {
        "cpu" => return Ok(Device::Cpu),
        "cuda" | "gpu" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Device::Cuda(n),
            _ => return Err(WideDeepError::Device(s)),
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

#[cfg(test)]
mod tests {
    use super::*;

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
