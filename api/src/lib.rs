//! `convo-api`: convo's front door. An application layer ([`App`]) with one async function per
//! API operation, and two transports over it: HTTP ([`http::router`]) and gRPC
//! ([`grpc::routes`], [`grpc::serve`]), served together by [`Transports`].
//!
//! The application layer reaches the workflows only through a [`convo_client::Gateway`]
//! ([`convo_client::Sessions`] over Temporal, or a fake in a handler test: [`App::over`]), and
//! the database only through the store, so the gRPC transport calls exactly the same functions
//! with the same errors. It links no Temporal SDK crate of its own.
//!
//! # Serving
//! ```no_run
//! # async fn run(sessions: convo_client::Sessions) -> std::io::Result<()> {
//! use convo_api::{App, AppSettings};
//! let app = App::new(sessions, AppSettings::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! convo_api::http::serve(listener, app, std::future::pending()).await
//! # }
//! ```
#![warn(missing_docs)]

pub mod app;
pub mod error;
pub mod grpc;
pub mod http;
mod transports;

pub use app::{App, AppSettings, Caller, WorkspaceAdmin, WorkspaceId};
pub use error::ApiError;
pub use http::{router, serve};
pub use transports::{TransportError, Transports};
