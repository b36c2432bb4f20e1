//! The calls into `c10d.cpp`, and a stand-in that reports the shim missing when `build.rs`
//! did not find the Gloo headers (`cfg(widedeep_c10d)` unset).
use super::DistributedConfig;
use tch::Tensor;

/// A reduction.
#[derive(Clone, Copy, Debug)]
pub(super) enum Op {
    Sum = 0,
    Max = 1,
}

/// Whether the shim is compiled in.
pub(super) const AVAILABLE: bool = cfg!(widedeep_c10d);

#[cfg(widedeep_c10d)]
mod shim {
    use std::ffi::{c_char, c_void};

    extern "C" {
        pub fn widedeep_c10d_init(
            host: *const c_char,
            port: u16,
            rank: i32,
            world: i32,
            agent_store: i32,
            timeout_ms: i64,
            heartbeat_ms: i64,
            prefix: *const c_char,
            out: *mut *mut c_void,
            err: *mut c_char,
            err_len: usize,
        ) -> i32;
        pub fn widedeep_c10d_free(group: *mut c_void);
        pub fn widedeep_c10d_allreduce(
            group: *mut c_void,
            tensors: *const *mut c_void,
            n: usize,
            op: i32,
            err: *mut c_char,
            err_len: usize,
        ) -> i32;
        pub fn widedeep_c10d_broadcast(
            group: *mut c_void,
            tensors: *const *mut c_void,
            n: usize,
            root: i32,
            err: *mut c_char,
            err_len: usize,
        ) -> i32;
        pub fn widedeep_c10d_allgather(
            group: *mut c_void,
            input: *const c_void,
            out: *mut *mut c_void,
            err: *mut c_char,
            err_len: usize,
        ) -> i32;
        pub fn widedeep_c10d_lost_ranks(
            group: *mut c_void,
            window_ms: i64,
            lost: *mut i32,
            cap: usize,
        ) -> i64;
        pub fn widedeep_c10d_overlap_new(
            group: *mut c_void,
            vars: *const *mut c_void,
            n: usize,
            cap_bytes: i64,
            out: *mut *mut c_void,
            err: *mut c_char,
            err_len: usize,
        ) -> i32;
        pub fn widedeep_c10d_overlap_arm(ov: *mut c_void);
        pub fn widedeep_c10d_overlap_finish(
            ov: *mut c_void,
            launched_early: *mut i64,
            err: *mut c_char,
            err_len: usize,
        ) -> i32;
        pub fn widedeep_c10d_overlap_free(ov: *mut c_void);
    }
}

/// Runs a shim call that writes a message into an error buffer and returns non-zero on failure.
#[cfg(widedeep_c10d)]
fn call(f: impl FnOnce(*mut std::ffi::c_char, usize) -> i32) -> Result<(), String> {
    let mut err = [0 as std::ffi::c_char; 1024];
    if f(err.as_mut_ptr(), err.len()) == 0 {
        return Ok(());
    }
    // SAFETY: the shim NUL-terminates the message within the buffer
    let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
    Err(crate::error::short_torch_message(&msg.to_string_lossy()))
}

/// A joined process group (the shim's `Group`: store, Gloo backend, heartbeat thread).
pub(super) struct Group {
    #[cfg(widedeep_c10d)]
    ptr: *mut std::ffi::c_void,
}

// SAFETY: the shim's group is used from one thread at a time by the trainer; c10d's backend and
// store are themselves thread-safe.
unsafe impl Send for Group {}
unsafe impl Sync for Group {}

#[cfg(widedeep_c10d)]
fn tensor_ptrs(tensors: &[Tensor]) -> Vec<*mut std::ffi::c_void> {
    tensors.iter().map(|t| t.as_ptr() as *mut _).collect()
}

#[cfg(widedeep_c10d)]
impl Group {
    /// Joins (rendezvous through the TCPStore, then Gloo's full mesh).
    pub(super) fn join(cfg: &DistributedConfig) -> Result<Self, String> {
        let host = std::ffi::CString::new(cfg.master_addr.clone())
            .map_err(|_| "MASTER_ADDR contains a NUL byte".to_string())?;
        let prefix = std::ffi::CString::new(format!("widedeep/attempt_{}/", cfg.restart_count))
            .expect("no NUL");
        let mut ptr = std::ptr::null_mut();
        call(|err, len| {
            // SAFETY: the strings live across the call; the shim writes a fresh group pointer
            unsafe {
                shim::widedeep_c10d_init(
                    host.as_ptr(),
                    cfg.master_port,
                    cfg.rank as i32,
                    cfg.world_size as i32,
                    cfg.agent_store as i32,
                    cfg.timeout.as_millis() as i64,
                    cfg.heartbeat.as_millis().max(1) as i64,
                    prefix.as_ptr(),
                    &mut ptr,
                    err,
                    len,
                )
            }
        })?;
        Ok(Self { ptr })
    }

    pub(super) fn all_reduce(&self, tensors: &[Tensor], op: Op) -> Result<(), String> {
        let ptrs = tensor_ptrs(tensors);
        // SAFETY: live contiguous CPU tensors, reduced in place
        call(|err, len| unsafe {
            shim::widedeep_c10d_allreduce(self.ptr, ptrs.as_ptr(), ptrs.len(), op as i32, err, len)
        })
    }

    pub(super) fn broadcast(&self, tensors: &[Tensor], root: usize) -> Result<(), String> {
        let ptrs = tensor_ptrs(tensors);
        // SAFETY: live contiguous CPU tensors, overwritten in place
        call(|err, len| unsafe {
            shim::widedeep_c10d_broadcast(
                self.ptr,
                ptrs.as_ptr(),
                ptrs.len(),
                root as i32,
                err,
                len,
            )
        })
    }

    pub(super) fn all_gather(&self, t: &Tensor) -> Result<Tensor, String> {
        let mut out = std::ptr::null_mut();
        // SAFETY: a live tensor in; a fresh owned tensor out
        call(|err, len| unsafe {
            shim::widedeep_c10d_allgather(self.ptr, t.as_ptr().cast(), &mut out, err, len)
        })?;
        // SAFETY: `new at::Tensor(..)` owned by us from now on
        Ok(unsafe { Tensor::from_ptr(out.cast()) })
    }

    /// The ranks whose heartbeat stopped during `window`; `None` when the store is unreachable.
    pub(super) fn lost_ranks(&self, window: std::time::Duration) -> Option<Vec<usize>> {
        let mut lost = [0i32; 64];
        // SAFETY: writes at most `lost.len()` ranks
        let n = unsafe {
            shim::widedeep_c10d_lost_ranks(
                self.ptr,
                window.as_millis() as i64,
                lost.as_mut_ptr(),
                lost.len(),
            )
        };
        (n >= 0).then(|| {
            lost[..(n as usize).min(lost.len())]
                .iter()
                .map(|&r| r as usize)
                .collect()
        })
    }
}

#[cfg(widedeep_c10d)]
impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `widedeep_c10d_init` and is freed once
        unsafe { shim::widedeep_c10d_free(self.ptr) }
    }
}

/// Gradient averaging overlapped with the backward pass (the shim's `Overlap`: buckets of the
/// trainable variables, hooks on their gradient accumulators).
pub(super) struct Overlap {
    #[cfg(widedeep_c10d)]
    ptr: *mut std::ffi::c_void,
}

// SAFETY: used by the one thread running the training loop; the shim locks its own state
// against the autograd threads that run the hooks.
unsafe impl Send for Overlap {}

#[cfg(widedeep_c10d)]
impl Overlap {
    /// Buckets of at most `cap_bytes` over `vars` (reverse order) and a hook on each.
    pub(super) fn new(group: &Group, vars: &[Tensor], cap_bytes: usize) -> Result<Self, String> {
        let ptrs = tensor_ptrs(vars);
        let mut ptr = std::ptr::null_mut();
        // SAFETY: live variables; the shim keeps its own references to them
        call(|err, len| unsafe {
            shim::widedeep_c10d_overlap_new(
                group.ptr,
                ptrs.as_ptr(),
                ptrs.len(),
                cap_bytes as i64,
                &mut ptr,
                err,
                len,
            )
        })?;
        Ok(Self { ptr })
    }

    /// The next backward pass starts each bucket's all-reduce as soon as it is complete.
    pub(super) fn arm(&self) {
        // SAFETY: a live overlap
        unsafe { shim::widedeep_c10d_overlap_arm(self.ptr) }
    }

    /// Starts what is left, waits, writes the mean gradients back; returns the number of
    /// buckets started during the backward pass.
    pub(super) fn finish(&self) -> Result<i64, String> {
        let mut early = 0i64;
        // SAFETY: a live overlap
        call(|err, len| unsafe {
            shim::widedeep_c10d_overlap_finish(self.ptr, &mut early, err, len)
        })?;
        Ok(early)
    }
}

#[cfg(widedeep_c10d)]
impl Drop for Overlap {
    fn drop(&mut self) {
        // SAFETY: from `widedeep_c10d_overlap_new`, freed once (removes the hooks)
        unsafe { shim::widedeep_c10d_overlap_free(self.ptr) }
    }
}

#[cfg(not(widedeep_c10d))]
impl Overlap {
    pub(super) fn new(_g: &Group, _v: &[Tensor], _cap: usize) -> Result<Self, String> {
        Err(MISSING.into())
    }
    pub(super) fn arm(&self) {}
    pub(super) fn finish(&self) -> Result<i64, String> {
        Err(MISSING.into())
    }
}

#[cfg(not(widedeep_c10d))]
const MISSING: &str = "widedeep was built without its c10d shim: the Gloo headers were not \
                       found (run scripts/setup-libtorch.sh, or set WIDEDEEP_GLOO_INCLUDE)";

#[cfg(not(widedeep_c10d))]
impl Group {
    pub(super) fn join(_cfg: &DistributedConfig) -> Result<Self, String> {
        Err(MISSING.into())
    }
    pub(super) fn all_reduce(&self, _t: &[Tensor], _op: Op) -> Result<(), String> {
        Err(MISSING.into())
    }
    pub(super) fn broadcast(&self, _t: &[Tensor], _root: usize) -> Result<(), String> {
        Err(MISSING.into())
    }
    pub(super) fn all_gather(&self, _t: &Tensor) -> Result<Tensor, String> {
        Err(MISSING.into())
    }
    pub(super) fn lost_ranks(&self, _w: std::time::Duration) -> Option<Vec<usize>> {
        Some(vec![])
    }
}
