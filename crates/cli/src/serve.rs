//! `tollgate serve`: the management API and a guarded demo API over HTTP.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tollgate::{Context, DeleteOptions, ListOptions, NewToken, TokenManager};
use tollgate_axum::Tollgate;

use crate::Failure;
use crate::api::{ADMIN_SCOPE, DEFAULT_OWNER, router};
use crate::backend::local_actor;
use crate::output::write_stdout;

/// How often coalesced `last_used_at` times are written.
const LAST_USED_FLUSH: Duration = Duration::from_secs(10);
/// The name of the admin token issued on first start.
const BOOTSTRAP_NAME: &str = "tollgate-admin";

pub(crate) async fn serve(manager: TokenManager, addr: SocketAddr) -> Result<(), Failure> {
    init_logging();
    let manager = Arc::new(manager);
    // Listen first: a server that cannot listen must not spend the one-time admin token.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::usage("cannot_listen", format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::usage("cannot_listen", format!("cannot listen on {addr}: {e}")))?;
    let shutdown = shutdown_signal()?;
    bootstrap_admin(&manager).await?;
    // Only a convenience: a server whose standard output nobody reads still serves.
    if let Err(err) = write_stdout(&format!("Tollgate listening on http://{local}\n")) {
        tracing::debug!(%err, "cannot write to standard output");
    }
    tracing::info!(%local, "serving");

    let tollgate = Tollgate::new(manager.clone()).with_realm("tollgate");
    let flusher = tollgate.spawn_last_used_flusher(LAST_USED_FLUSH);
    // With the peer address, so that the audit log says where each request came from.
    let app = router(manager, tollgate).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    // Whatever ended the server, record the uses seen so far.
    let flushed = flusher.shutdown().await;
    served.map_err(|e| Failure::system("server_failed", format!("the server failed: {e}")))?;
    flushed?;
    tracing::info!("stopped");
    Ok(())
}

/// On first start with an empty store, issues one admin token and prints it once. If it
/// cannot be printed, the token is deleted again, so that the next start issues one.
///
/// The audit log records both as the person who started the server (`user@host`, as the CLI
/// records its changes on a store): they receive the secret.
async fn bootstrap_admin(manager: &TokenManager) -> Result<(), Failure> {
    let ctx = Context::new(local_actor());
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
        .acting(&ctx)
        .apply(
            DEFAULT_OWNER,
            NewToken::new(BOOTSTRAP_NAME)
                .description("Issued by `tollgate serve` on first start")
                .scopes([ADMIN_SCOPE]),
        )
        .await?;
    let text = zeroize::Zeroizing::new(format!(
        "The store was empty: issued the admin token {BOOTSTRAP_NAME:?} (id {}, scope {ADMIN_SCOPE}).\n\
         Keep it now; it is not stored and will not be shown again:\n\n    {}\n\n",
        issued.record.id,
        issued.token.expose_secret()
    ));
    let Err(err) = write_stdout(&text) else {
        return Ok(());
    };
    // Nobody saw the secret: take the token back (forced, since it is the only admin token).
    let id = issued.record.id;
    let undone = manager
        .acting(&ctx)
        .delete_with(DEFAULT_OWNER, id, DeleteOptions::default().force(true))
        .await;
    Err(Failure::system(
        "output_error",
        match undone {
            Ok(()) => format!(
                "the admin token could not be written to standard output ({err}), so it was deleted again; the next start issues a new one"
            ),
            Err(undo) => format!(
                "the admin token (id {id}) could not be written to standard output ({err}), and deleting it failed too ({}); delete it with `tollgate delete {id} --yes --force`, then start again",
                undo.report()
            ),
        },
    ))
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
    let fail = |e: std::io::Error| {
        Failure::system(
            "internal_error",
            format!("cannot install signal handlers: {e}"),
        )
    };
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
