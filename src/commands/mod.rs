//! One module per `convo` subcommand, plus what they share.

pub(crate) mod admin;
pub(crate) mod devserver;
pub(crate) mod production;
pub(crate) mod serve;
pub(crate) mod settings;
pub(crate) mod templates;

#[cfg(unix)]
use tokio::signal::unix::{SignalKind, signal};

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what `docker stop` sends).
///
/// If a handler cannot be installed the error is logged and that signal is ignored,
/// rather than resolving at once and shutting the server down on startup.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };

    #[cfg(unix)]
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
