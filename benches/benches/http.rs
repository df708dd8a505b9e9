//! `/demo/whoami` guarded by Tollgate against the same route unguarded, over loopback.
//!
//! The server runs on one thread (one core); `wrk` (Debian package `wrk`) loads it from the
//! other core. Run pinned so the two do not share a core:
//!
//! `taskset -c 0 cargo bench -p tollgate-benches --bench http`
//!
//! It prints requests per second for each, their ratio, and the server CPU time per request
//! (from `/proc/thread-self/stat`), whose difference is what the guard adds.

use std::process::Command;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use tollgate::{MemoryStore, NewToken, TokenManager};
use tollgate_axum::{Tollgate, VerifiedToken};
use tollgate_benches::{fill, names};

const SECONDS: u64 = 8;

/// CPU time this thread has used, in seconds (user + system).
fn thread_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

/// Serves `app` on one thread until told to stop; reports the CPU time it used.
fn serve(app: Router) -> (String, mpsc::Sender<()>, mpsc::Receiver<f64>) {
    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (cpu_tx, cpu_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx
                .send(listener.local_addr().unwrap().to_string())
                .unwrap();
            let start = thread_cpu();
            let stop = async move {
                let (tx, rx) = tokio::sync::oneshot::channel();
                std::thread::spawn(move || {
                    let _ = stop_rx.recv();
                    let _ = tx.send(());
                });
                let _ = rx.await;
            };
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .unwrap();
            cpu_tx.send(thread_cpu() - start).unwrap();
        });
    });
    (addr_rx.recv().unwrap(), stop_tx, cpu_rx)
}

/// Loads `url` with wrk for `SECONDS`; returns (requests, requests per second).
fn wrk(url: &str, token: &str) -> (f64, f64) {
    let output = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1", "-c32"])
        .arg(format!("-d{SECONDS}s"))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(url)
        .output()
        .expect("wrk and taskset are installed (apt-get install wrk util-linux)");
    let text = String::from_utf8_lossy(&output.stdout);
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("wrk printed its totals");
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("wrk printed requests per second");
    assert!(
        !text.contains("Non-2xx"),
        "every request succeeded:\n{text}"
    );
    (requests, rps)
}

fn run(name: &str, app: Router, token: &str) -> (f64, f64) {
    let (addr, stop, cpu) = serve(app);
    let url = format!("http://{addr}/demo/whoami");
    // Warm up, then measure.
    let _ = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1", "-c32", "-d1s"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(&url)
        .output();
    let (requests, rps) = wrk(&url, token);
    stop.send(()).unwrap();
    let cpu = cpu.recv().unwrap();
    // The CPU time covers warm-up too; count its requests by the measured rate.
    let per_request = cpu / (requests + rps);
    println!(
        "{name:>10}: {rps:>10.0} requests/s, server CPU {:.2} µs per request",
        per_request * 1e6
    );
    (rps, per_request)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let _runtime = tollgate_benches::enter();
    let manager = Arc::new(TokenManager::new(MemoryStore::new()));
    fill(&manager, "bench", &names(10_000));
    let issued =
        tollgate_benches::block_on(manager.apply("bench", NewToken::new("load client"))).unwrap();
    let token = issued.token.expose_secret().to_owned();
    let tollgate = Tollgate::new(manager);

    let unguarded = Router::new().route(
        "/demo/whoami",
        get(|| async { Json(serde_json_lite("unguarded")) }),
    );
    let guarded = Router::new()
        .route(
            "/demo/whoami",
            get(|token: VerifiedToken| async move { Json(serde_json_lite(token.name())) }),
        )
        .layer(tollgate.layer());

    let (u_rps, u_cpu) = run("unguarded", unguarded, &token);
    let (g_rps, g_cpu) = run("guarded", guarded, &token);
    println!(
        "guarded / unguarded throughput: {:.1}%; CPU the guard adds per request: {:.2} µs",
        100.0 * g_rps / u_rps,
        (g_cpu - u_cpu) * 1e6
    );
    std::thread::sleep(Duration::from_millis(100));
}

/// The same small JSON body for both routes.
fn serde_json_lite(name: &str) -> std::collections::BTreeMap<&'static str, String> {
    std::collections::BTreeMap::from([("name", name.to_owned())])
}
