use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Logs go to stderr, so that stdout carries only what a command reports. The filter comes
/// from `MOS_LOG` (then `RUST_LOG`), in `tracing`'s directive syntax.
pub fn init(format: Format) {
    let filter = std::env::var("MOS_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        Format::Text => builder.init(),
        Format::Json => builder.json().init(),
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM. The handlers are installed here, when it
/// is called, not when the future is first polled: a server polls it only between accepting
/// connections, and a signal that arrived before that would otherwise end the process with the
/// default action, the embedded cluster left running.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let signals = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
    async move {
        match signals {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
                _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
            },
            (int, term) => {
                let error = int.err().or(term.err()).map(|e| e.to_string()).unwrap_or_default();
                tracing::error!(%error, "cannot listen for SIGINT and SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
