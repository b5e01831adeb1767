//! Tests of the session state machine: table-driven over `(state, event, now)`, plus property
//! tests that drive it together with a ledger (`props`).

mod billing;
mod compliance;
mod fixtures;
mod gating;
mod lifecycle;
mod modes;
mod props;
mod sim;
