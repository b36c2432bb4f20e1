//! Monte-Carlo dropout mode: dropout layers active while everything else (batch norm, auxiliary
//! losses, …) runs in evaluation mode. Used by `Trainer::predict_uncertainty`.
//!
//! Every dropout in the built-in models asks [`dropout_on`] whether to drop; it answers `train`,
//! or `true` while an [`McDropoutGuard`] is alive on the current thread. Custom components that
//! want to take part call [`dropout_on`] the same way.
use std::cell::Cell;

thread_local! {
    static MC_DROPOUT: Cell<bool> = const { Cell::new(false) };
}

/// Whether dropout should be applied: in training, or in Monte-Carlo dropout mode.
pub fn dropout_on(train: bool) -> bool {
    train || MC_DROPOUT.with(Cell::get)
}

/// Turns Monte-Carlo dropout mode on for the current thread until dropped (restores the previous
/// state, so guards nest).
#[derive(Debug)]
pub struct McDropoutGuard {
    previous: bool,
}

impl McDropoutGuard {
    /// Turns Monte-Carlo dropout mode on for the current thread.
    pub fn new() -> Self {
        let previous = MC_DROPOUT.with(|c| c.replace(true));
        Self { previous }
    }
}

impl Default for McDropoutGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for McDropoutGuard {
    fn drop(&mut self) {
        MC_DROPOUT.with(|c| c.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_switches_dropout_on_for_this_thread_only() {
        assert!(!dropout_on(false));
        assert!(dropout_on(true));
        {
            let _g = McDropoutGuard::new();
            assert!(dropout_on(false));
            {
                let _inner = McDropoutGuard::new();
            }
            assert!(dropout_on(false), "inner guard restores the outer state");
            std::thread::spawn(|| assert!(!dropout_on(false)))
                .join()
                .unwrap();
        }
        assert!(!dropout_on(false));
    }
}
