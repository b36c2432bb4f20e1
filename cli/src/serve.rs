//! `widedeep serve` (to come).
