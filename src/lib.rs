//! The `convo` package's library: the composition roots the binary's subcommands run, kept
//! here so tests start exactly what `convo serve` starts.
//!
//! - [`serve`]: the all-in-one stack (devserver, store, sandbox, worker, HTTP and gRPC APIs).
//! - [`config`]: layered configuration (defaults, TOML, `CONVO_…` env, flags).

#![warn(missing_docs)]

pub mod config;
pub mod serve;

pub use serve::{ServeConfig, Stack};
