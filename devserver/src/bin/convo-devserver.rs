//! `convo-devserver`: the devserver as a drop-in for `temporal server start-dev` and the Java
//! test server, for SDK harnesses that launch an existing binary.

use convo_devserver::{DevServer, launch};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let launch = match launch::parse(&args) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("convo-devserver: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if launch.help {
        println!("{}", launch::USAGE);
        return std::process::ExitCode::SUCCESS;
    }
    let filter = launch.log_level.clone().unwrap_or_else(|| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr);
    if launch.log_format.as_deref() == Some("json") {
        builder.json().init();
    } else {
        builder.init();
    }
    for note in &launch.notes {
        tracing::warn!("{note}");
    }
    let handle = match DevServer::start(launch.config).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("convo-devserver: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("convo devserver listening on {}", handle.addr());
    wait_for_signal().await;
    handle.shutdown().await;
    std::process::ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
