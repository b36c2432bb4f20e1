//! The one integration-test binary (each extra binary would re-link libtorch).
mod bad_input;
mod common;
mod learning;
mod pipeline_io;
mod readme;
mod reproducibility;
mod zoo_attention;
