//! The `convo` package's library: the composition roots the binary's subcommands run, kept
//! here so tests start exactly what `convo serve` starts.
//!
//! - [`node`]: the one composition root: a worker, the APIs, or both, over a store and a
//!   Temporal.
//! - [`serve`]: the all-in-one stack (devserver, store, sandbox, and a [`Node`] with both).
//! - [`config`]: layered configuration (defaults, TOML, `CONVO_…` env, flags).

#![warn(missing_docs)]

pub mod config;
pub mod node;
pub mod serve;

pub use node::{ApiParts, Node, NodeParts, WorkerParts};
pub use serve::{ServeConfig, Stack};
