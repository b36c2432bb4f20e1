//! The one integration-test binary (each extra binary would re-link libtorch).
mod bad_input;
mod common;
mod crosscheck;
mod explain;
mod learning;
mod objectives;
mod pipeline_io;
mod readme;
mod rec_cross;
mod rec_retrieval;
mod reproducibility;
mod robustness;
mod text_image;
mod trainer_core;
mod trainer_extras;
mod zoo_attention;
mod zoo_other;
