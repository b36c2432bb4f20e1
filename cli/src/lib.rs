//! The `widedeep` command over the library's public API: experiments from a TOML file
//! ([`train`]), evaluation, prediction and explanation of a saved pipeline ([`predict`]), and an
//! HTTP prediction server ([`serve`]).
#![warn(missing_docs)]

pub mod data;
pub mod error;
pub mod experiment;
pub mod loadtest;
pub mod overlay;
pub mod predict;
pub mod report;
pub mod serve;
pub mod train;

pub use error::{CliError, Result};
