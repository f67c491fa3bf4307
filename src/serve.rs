//! Accepting connections and shutting down: the public listener and the admin listener, each
//! a plain accept loop over hyper, with the limits a server on the public internet needs.
//!
//! `axum::serve` has no knobs for slow clients or header sizes, so connections are served here
//! with hyper-util directly: a client that trickles its header (slowloris) is cut after
//! `header_read_timeout`, a header over `max_header_bytes` or 100 fields gets 431, and an upload
//! body that stalls is cut by the admin router's idle timeout (see [`crate::http::admin_router`]).
//! None of them holds a thread: each connection is a task.
//!
//! On shutdown the listeners close at once, every connection is told to finish its current
//! request and close, and whatever is still running after the grace period is dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How patient the server is with clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole request header must arrive within this.
    pub header_read_timeout: Duration,
    /// The largest request header, in bytes.
    pub max_header_bytes: usize,
    /// How long requests in flight may run after shutdown begins.
    pub shutdown_grace: Duration,
}

/// One listener and the application it serves.
pub struct Endpoint {
    /// What the logs call it.
    pub name: &'static str,
    /// The bound socket.
    pub listener: TcpListener,
    /// The routes served there.
    pub app: crate::http::App,
}

/// Serve every endpoint until `shutdown` completes, then drain within the grace period.
pub async fn run(
    endpoints: Vec<Endpoint>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // HTTP/1.1: what Meta's fetcher, CDNs and TLS proxies speak to an origin.
    let mut builder = Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes);
    let builder = Arc::new(builder);
    let graceful = Arc::new(GracefulShutdown::new());
    let stop = CancellationToken::new();
    let mut loops = tokio::task::JoinSet::new();
    for endpoint in endpoints {
        loops.spawn(accept_loop(
            endpoint,
            Arc::clone(&builder),
            Arc::clone(&graceful),
            stop.clone(),
        ));
    }
    shutdown.await;
    stop.cancel();
    while loops.join_next().await.is_some() {}
    let graceful = Arc::into_inner(graceful).expect("the accept loops have ended");
    let open = graceful.count();
    if open > 0 {
        tracing::info!(
            connections = open,
            grace_secs = limits.shutdown_grace.as_secs_f64(),
            "waiting for requests in flight"
        );
    }
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = limits.shutdown_grace.as_secs_f64(),
            "requests still in flight at the end of the grace period were cut off"
        );
    }
    Ok(())
}

async fn accept_loop(
    endpoint: Endpoint,
    builder: Arc<Builder>,
    graceful: Arc<GracefulShutdown>,
    stop: CancellationToken,
) {
    let Endpoint {
        name,
        listener,
        app,
    } = endpoint;
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Small responses must not wait on Nagle's algorithm and delayed ACKs.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(listener = name, %peer, error = %e, "connection ended with an error");
            }
        });
    }
    tracing::debug!(listener = name, "stopped accepting");
}

/// The address a listener is bound to, for logs.
pub fn describe(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|e| format!("unknown ({e})"), |a: SocketAddr| a.to_string())
}
