//! `convo-proto`: convo's own wire format, and nothing else yet.
//!
//! This crate is a placeholder in the workspace graph so that the crates that will depend on
//! it (`convo-api`, `convo-tests`) have a fixed place to point at. It currently contains no
//! code and no `.proto` files.
//!
//! # Planned contents
//! - `proto/convo/v1/*.proto`: the public gRPC API (session windows, outbound conversations,
//!   shared messages), compiled with `protox` + `tonic-prost-build` so that no `protoc` is
//!   needed, or checked in as generated code with a bootstrap test (console-api style).
//! - `convert`: `TryFrom<pb::X>` for `convo_domain` types and `From<domain::Y>` for the wire
//!   types, the single place where wire messages meet domain types.
//! - `client` / `server` features gating the generated stubs.
//!
//! Temporal's own protocol is *not* here: the official SDK crates carry its messages, and
//! `convo-devserver` generates the server stubs it needs itself.

#![warn(missing_docs)]
