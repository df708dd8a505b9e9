//! `tollgate serve`: the management API and a guarded demo API over HTTP.

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tollgate::{ListOptions, NewToken, TokenManager};
use tollgate_axum::Tollgate;

use crate::Failure;
use crate::api::{ADMIN_SCOPE, DEFAULT_OWNER, router};

/// How often coalesced `last_used_at` times are written.
const LAST_USED_FLUSH: Duration = Duration::from_secs(10);
/// The name of the admin token issued on first start.
const BOOTSTRAP_NAME: &str = "tollgate-admin";

pub(crate) async fn serve(manager: TokenManager, addr: SocketAddr) -> Result<(), Failure> {
    init_logging();
    let manager = Arc::new(manager);
    bootstrap_admin(&manager).await?;
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::Usage(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::Usage(format!("cannot listen on {addr}: {e}")))?;
    println!("Tollgate listening on http://{local}");
    let _ = std::io::stdout().flush();
    tracing::info!(%local, "serving");

    let tollgate = Tollgate::new(manager.clone()).with_realm("tollgate");
    let flusher = tollgate.spawn_last_used_flusher(LAST_USED_FLUSH);
    let served = axum::serve(listener, router(manager, tollgate))
        .with_graceful_shutdown(shutdown)
        .await;
    // Whatever ended the server, record the uses seen so far.
    let flushed = flusher.shutdown().await;
    served.map_err(|e| Failure::Store(format!("the server failed: {e}")))?;
    flushed?;
    tracing::info!("stopped");
    Ok(())
}

/// On first start with an empty store, issues one admin token and prints it once.
async fn bootstrap_admin(manager: &TokenManager) -> Result<(), Failure> {
    let page = manager
        .list(
            DEFAULT_OWNER,
            ListOptions {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await?;
    if !page.items.is_empty() {
        return Ok(());
    }
    let issued = manager
        .apply(
            DEFAULT_OWNER,
            NewToken::new(BOOTSTRAP_NAME)
                .description("Issued by `tollgate serve` on first start")
                .scopes([ADMIN_SCOPE]),
        )
        .await?;
    println!(
        "The store was empty: issued the admin token {BOOTSTRAP_NAME:?} (id {}, scope {ADMIN_SCOPE}).",
        issued.record.id
    );
    println!("Keep it now; it is not stored and will not be shown again:");
    println!();
    println!("    {}", issued.token.expose_secret());
    println!();
    Ok(())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, before
/// the server announces itself, so an early signal is never lost.
fn shutdown_signal() -> Result<impl Future<Output = ()>, Failure> {
    let fail = |e: std::io::Error| Failure::Store(format!("cannot install signal handlers: {e}"));
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).map_err(fail)?,
            signal(SignalKind::terminate()).map_err(fail)?,
        )
    };
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
}
