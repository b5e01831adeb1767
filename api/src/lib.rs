//! `convo-api`: the front door, HTTP and gRPC, that turns requests into workflow starts,
//! signals, updates and queries.
//!
//! This crate is a placeholder in the workspace graph: it currently contains no code and
//! serves nothing. The `convo api` subcommand does not exist yet.
//!
//! # Planned contents
//! - `Application::build(settings)` exposing its bound ports and `run_until_stopped(shutdown)`,
//!   so tests start the real API on port 0.
//! - `WorkflowGateway`: the port through which handlers reach Temporal (signal-with-start of
//!   `SessionWindowWorkflow`, the free-form send update, closing a window, starting an
//!   `OutboundConversationWorkflow`), with a production implementation over
//!   `temporalio-client` and fakes for handler tests.
//! - `http` (axum) and `grpc` (tonic, on `convo-proto`) routers, one file per resource.
//! - `Error`: the single mapping point to HTTP status codes and `tonic::Status`.
//!
//! It will depend on `convo-workflows`, `convo-proto` and `convo-domain`, never on
//! `convo-worker` or `convo-activities`.
