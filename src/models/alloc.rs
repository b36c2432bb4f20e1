//! Model sizes checked before allocation, and builds that cannot panic.
//!
//! The tables whose size comes from the data — the wide table (`wide_dim × pred_dim`), the
//! categorical embedding tables (`cardinality × embed_dim`, an ID-like column reaches 10⁸
//! rows) and text vocabularies — are checked with [`check_table`] before they are allocated:
//! an element count that overflows, or more bytes than the host has available (on the CPU),
//! is a [`WideDeepError::ModelTooLarge`] naming the component and the size asked for. Every
//! component build then runs under [`guarded`], which turns a libtorch allocation failure
//! anywhere else (a huge hidden layer, a GPU out of memory) into the same typed error instead
//! of a panic.
use crate::error::{Result, WideDeepError};
use crate::macros::bail;
use std::cell::Cell;
use std::sync::Once;
use tch::Device;

thread_local! {
    /// Set while [`guarded`] runs: panics on this thread are caught and reported as errors,
    /// so the panic hook stays quiet for them.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// Bytes checked by [`check_table`] since the current model build started.
    static CHECKED: Cell<u128> = const { Cell::new(0) };
    /// The component [`guarded`] is building (`"deeptabular"`, …), for error messages.
    static CURRENT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs (once) a panic hook that stays silent on threads inside [`guarded`] and defers
/// to the previous hook everywhere else.
fn install_quiet_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs the build of `component` (`"wide"`, `"deeptabular"`, `"deeptext_0"`, …): a panic
/// inside it — libtorch failing to allocate a tensor — becomes
/// [`WideDeepError::ModelTooLarge`] with libtorch's message (first line) and, where libtorch
/// says it, the number of bytes asked for.
pub(crate) fn guarded<T>(component: &str, build: impl FnOnce() -> Result<T>) -> Result<T> {
    install_quiet_hook();
    let was_quiet = QUIET.with(|q| q.replace(true));
    let outer = CURRENT.with(|c| c.replace(Some(component.to_string())));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(build));
    CURRENT.with(|c| *c.borrow_mut() = outer);
    QUIET.with(|q| q.set(was_quiet));
    match result {
        Ok(r) => r,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown failure".into());
            Err(WideDeepError::ModelTooLarge {
                component: component.into(),
                requested: requested_bytes(&message)
                    .map(|b| format!("{} ({b} bytes)", human_bytes(b)))
                    .unwrap_or_else(|| "unknown size".into()),
                reason: crate::error::short_torch_message(&message),
            })
        }
    }
}

/// Starts the size accounting of one model build (the sum that [`check_table`] compares with
/// the available memory).
pub(crate) fn start_build() {
    CHECKED.with(|c| c.set(0));
}

/// Checks, before allocating it, an `f32` table of shape `dims` for `component` (`what`
/// describes it, e.g. "embedding of column `user_id`"): its element count must not overflow
/// and, on the CPU, the tables of the model being built must fit in the memory the host has
/// available. Inside [`guarded`], errors name the model's component first
/// (`deeptabular (tab_mlp)`).
pub(crate) fn check_table(component: &str, what: &str, dims: &[i64], device: Device) -> Result<()> {
    let component = match CURRENT.with(|c| c.borrow().clone()) {
        Some(outer) if outer != component => format!("{outer} ({component})"),
        _ => component.to_string(),
    };
    let component = component.as_str();
    let shape = dims
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" × ");
    let too_large = |requested: String, reason: String| WideDeepError::ModelTooLarge {
        component: component.into(),
        requested,
        reason,
    };
    let mut elements: u128 = 1;
    for &d in dims {
        let d = u128::try_from(d).map_err(|_| {
            too_large(
                format!("{what} [{shape}]"),
                "a dimension is negative".into(),
            )
        })?;
        elements = elements.checked_mul(d).ok_or_else(|| {
            too_large(
                format!("{what} [{shape}]"),
                "the element count overflows".into(),
            )
        })?;
    }
    let bytes = elements.saturating_mul(4);
    let total = CHECKED.with(|c| {
        let t = c.get().saturating_add(bytes);
        c.set(t);
        t
    });
    if elements > i64::MAX as u128 {
        bail!(too_large(
            format!("{what} [{shape}] = {elements} elements"),
            "more elements than a tensor can hold".into(),
        ));
    }
    if device == Device::Cpu {
        if let Some(available) = available_memory() {
            if total > available as u128 {
                bail!(too_large(
                    format!("{what} [{shape}] = {}", human_bytes(bytes)),
                    format!(
                        "the model's tables need {} and the host has {} available; \
                         lower the cardinality (group rare values) or the embedding dimension",
                        human_bytes(total),
                        human_bytes(available as u128)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `MemAvailable` of `/proc/meminfo`, in bytes (`None` where it cannot be read).
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The `N` of libtorch's "you tried to allocate N bytes" (CPU) or "Tried to allocate N.NN GiB"
/// (CUDA), in bytes.
fn requested_bytes(message: &str) -> Option<u128> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("tried to allocate ")? + "tried to allocate ".len();
    let mut words = lower[at..].split_whitespace();
    let number: f64 = words.next()?.trim_end_matches(['.', ',']).parse().ok()?;
    let unit = words.next().unwrap_or("bytes");
    let scale: f64 = match unit.trim_end_matches(['.', ',', ')']) {
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => 1.0,
    };
    Some((number * scale) as u128)
}

fn human_bytes(b: u128) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_before_allocating() {
        start_build();
        assert!(check_table("wide", "table", &[1000, 1], Device::Cpu).is_ok());
        let err = check_table(
            "wide",
            "table",
            &[i64::MAX, i64::MAX, i64::MAX],
            Device::Cpu,
        )
        .unwrap_err();
        assert!(
            matches!(&err, WideDeepError::ModelTooLarge { component, reason, .. }
                if component == "wide" && reason.contains("overflows")),
            "{err}"
        );
        start_build();
        let err = check_table(
            "deeptabular",
            "embedding of column `id`",
            &[100_000_001, 600],
            Device::Cpu,
        );
        // 240 GB: more than any test machine has available.
        let err = err.unwrap_err().to_string();
        assert!(err.contains("deeptabular") && err.contains("`id`"), "{err}");
        assert!(err.contains("100000001 × 600"), "{err}");
    }

    #[test]
    fn panics_inside_a_guarded_build_are_errors() {
        let err = guarded("deeptext_0", || -> Result<()> {
            panic!(
                "called `Result::unwrap()` on an `Err` value: Torch(\"[enforce fail at alloc_cpu.cpp:117] \
                 data. DefaultCPUAllocator: not enough memory: you tried to allocate 400000000000 bytes.\\n\
                 frame #0: c10::ThrowEnforceNotMet\")"
            )
        })
        .unwrap_err();
        match err {
            WideDeepError::ModelTooLarge {
                component,
                requested,
                reason,
            } => {
                assert_eq!(component, "deeptext_0");
                assert!(requested.contains("400000000000 bytes"), "{requested}");
                assert!(!reason.contains("frame #0"), "{reason}");
            }
            other => panic!("unexpected {other}"),
        }
        // Nothing lingers: a later build on this thread runs normally.
        assert_eq!(guarded("wide", || Ok(3)).unwrap(), 3);
        assert_eq!(
            requested_bytes("Tried to allocate 2.00 GiB (GPU 0)"),
            Some(2 << 30)
        );
    }
}
