//! Accepting connections and shutting down: the public listener and the admin listener, each
//! a plain accept loop over hyper, with the limits a server on the public internet needs.
//!
//! `axum::serve` has no knobs for slow clients or header sizes, so connections are served here
//! with hyper-util directly: a client that trickles its header (slowloris) is cut after
//! `header_read_timeout` (on a coarse timer, see [`coarse_timer`]), a header over `max_header_bytes` or 100 fields gets 431, and an upload
//! body that stalls is cut by the admin router's idle timeout (see [`crate::http::admin_router`]).
//! None of them holds a thread: each connection is a task.
//!
//! Slow readers: every connection's socket is wrapped in [`SendTimeout`], so a response that
//! makes no write progress for `send_timeout` (a client that asked for a large asset and reads
//! slowly or not at all) fails, and its connection, body stream, storage file and buffers are
//! dropped. And each listener holds at most `max_connections` at once: at the limit the accept
//! loop stops accepting, so new connections wait in the kernel's queue until one closes instead
//! of `accept` failing in a loop once the process runs out of file descriptors (see
//! [`derived_max_connections`] for the default).
//!
//! Early answers: a request body the application answers without reading (a 401, 413 or 415
//! on an upload) is drained for a bounded time and amount before hyper closes, so that clients
//! that send the whole body before they read get the answer (see [`linger`]).
//!
//! On shutdown the listeners close at once, every connection is told to finish its current
//! request and close, and whatever is still running after the grace period is dropped.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1::Builder;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

pub mod coarse_timer;
pub mod linger;
pub mod sendfile;
use coarse_timer::CoarseTimer;
pub use linger::LingeringBody;
use sendfile::SendfileIo;

/// How patient the server is with clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole request header must arrive within this.
    pub header_read_timeout: Duration,
    /// The largest request header, in bytes.
    pub max_header_bytes: usize,
    /// How long requests in flight may run after shutdown begins.
    pub shutdown_grace: Duration,
    /// A response whose writes make no progress for this long is cut.
    pub send_timeout: Duration,
}

/// Connections the admin listener holds at once (the public listener's limit is
/// `server.max_connections`).
pub const ADMIN_MAX_CONNECTIONS: usize = 32;
/// File descriptors kept for the process itself: standard streams, listeners, the runtime's
/// epoll and wakers, uploads' temporary files, garbage collection, S3's connection pool.
pub const RESERVED_FDS: u64 = 64;
/// File descriptors one connection may hold: its socket, and the blob file (local disk) or the
/// storage connection (S3) a download streams from.
pub const FDS_PER_CONNECTION: u64 = 2;

/// The default `server.max_connections` under an open-files limit (`RLIMIT_NOFILE`) of
/// `nofile`: what is left after [`RESERVED_FDS`] and the admin listener's
/// [`ADMIN_MAX_CONNECTIONS`] connections, at [`FDS_PER_CONNECTION`] per connection:
/// `(nofile - 64 - 2 × 32) / 2`, at least 1. 256 gives 64, 1024 gives 448, 65536 gives 32704.
/// No limit (`None`) gives [`Semaphore::MAX_PERMITS`].
pub fn derived_max_connections(nofile: Option<u64>) -> usize {
    let Some(nofile) = nofile else {
        return Semaphore::MAX_PERMITS;
    };
    let admin = FDS_PER_CONNECTION * ADMIN_MAX_CONNECTIONS as u64;
    let left = nofile.saturating_sub(RESERVED_FDS + admin) / FDS_PER_CONNECTION;
    usize::try_from(left)
        .unwrap_or(usize::MAX)
        .clamp(1, Semaphore::MAX_PERMITS)
}

/// The process's soft limit on open files (`RLIMIT_NOFILE`); `None` when unlimited.
pub fn open_files_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// One listener and the application it serves.
pub struct Endpoint {
    /// What the logs call it.
    pub name: &'static str,
    /// The bound socket.
    pub listener: TcpListener,
    /// The routes served there.
    pub app: crate::http::App,
    /// The most connections it holds at once; more wait, not accepted, until one closes.
    pub max_connections: usize,
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
        .timer(CoarseTimer::start())
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
            limits.send_timeout,
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

/// How often "connection limit reached" may be logged, per listener.
const LIMIT_WARNING_INTERVAL: Duration = Duration::from_secs(60);

async fn accept_loop(
    endpoint: Endpoint,
    builder: Arc<Builder>,
    graceful: Arc<GracefulShutdown>,
    stop: CancellationToken,
    send_timeout: Duration,
) {
    let Endpoint {
        name,
        listener,
        app,
        max_connections,
    } = endpoint;
    let slots = Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS)));
    let mut warned: Option<Instant> = None;
    loop {
        // A free slot first: at the limit nothing is accepted, and new connections wait in the
        // kernel's queue (their requests unanswered, not refused) until a connection closes.
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if warned.is_none_or(|at| at.elapsed() >= LIMIT_WARNING_INTERVAL) {
                    tracing::warn!(
                        listener = %name,
                        max_connections,
                        "connection limit reached: new connections wait until one closes"
                    );
                    warned = Some(Instant::now());
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    slot = Arc::clone(&slots).acquire_owned() => {
                        slot.expect("the semaphore is never closed")
                    }
                }
            }
        };
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
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            LingeringBody::wrap,
        ));
        let io = TokioIo::new(SendTimeout::new(SendfileIo::new(tcp), send_timeout));
        let connection = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            // The slot is held until the connection is gone.
            let _slot = slot;
            if let Err(e) = connection.await {
                tracing::debug!(listener = %name, %peer, error = %e, cause = std::error::Error::source(&e).map(ToString::to_string), "connection ended with an error");
            }
        });
    }
    tracing::debug!(listener = %name, "stopped accepting");
}

pin_project_lite::pin_project! {
    /// A connection's IO whose writes must make progress: when a write (or flush) cannot go
    /// through, a deadline `timeout` away is armed, any write that goes through disarms it, and
    /// once it passes every write fails with [`io::ErrorKind::TimedOut`], which ends the
    /// connection. It sits under hyper, so it covers every response, whatever its body.
    pub struct SendTimeout<T> {
        #[pin]
        io: T,
        timeout: Duration,
        // Made on the first blocked write, then reset: most connections never block.
        deadline: Option<Pin<Box<Sleep>>>,
        armed: bool,
    }
}

impl<T> SendTimeout<T> {
    /// Wrap `io`; its writes fail after `timeout` without progress.
    pub fn new(io: T, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            deadline: None,
            armed: false,
        }
    }

    /// Run one write-side operation under the deadline.
    fn guard<R>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        let this = self.project();
        let poll = op(this.io, cx);
        if poll.is_ready() {
            *this.armed = false;
            return poll;
        }
        let timeout = *this.timeout;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if !*this.armed {
            deadline.as_mut().reset(Instant::now() + timeout);
            *this.armed = true;
        }
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing for {} s (server.send_timeout_secs)",
                    timeout.as_secs_f64()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead> AsyncRead for SendTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for SendTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.guard(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.guard(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.guard(cx, |io, cx| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.guard(cx, |io, cx| io.poll_shutdown(cx))
    }
}

/// The address a listener is bound to, for logs.
pub fn describe(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|e| format!("unknown ({e})"), |a: SocketAddr| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn max_connections_leave_room_for_the_process_and_the_admin_listener() {
        assert_eq!(derived_max_connections(Some(256)), 64);
        assert_eq!(derived_max_connections(Some(1024)), 448);
        assert_eq!(derived_max_connections(Some(65_536)), 32_704);
        // Below the reserve there is still one connection to serve.
        assert_eq!(derived_max_connections(Some(100)), 1);
        assert_eq!(derived_max_connections(Some(0)), 1);
        assert_eq!(derived_max_connections(None), Semaphore::MAX_PERMITS);
        assert_eq!(
            derived_max_connections(Some(u64::MAX)),
            Semaphore::MAX_PERMITS
        );
    }

    /// Within `expected` and 150 ms more (a loaded test machine).
    fn took(start: Instant, expected: Duration) {
        let took = start.elapsed();
        assert!(
            took >= expected && took < expected + Duration::from_millis(150),
            "took {took:?}, expected {expected:?}"
        );
    }

    #[tokio::test]
    async fn a_write_without_progress_fails_after_the_timeout_and_progress_resets_it() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut io = SendTimeout::new(near, Duration::from_millis(300));
        io.write_all(&[7; 1024]).await.unwrap();
        // The pipe is full: the next write waits. Reading 1 byte at 250 ms is progress...
        let start = Instant::now();
        let reader = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let mut one = [0u8; 1];
            far.read_exact(&mut one).await.unwrap();
            far
        });
        io.write_all(&[8]).await.unwrap();
        took(start, Duration::from_millis(250));
        let _far = reader.await.unwrap();
        // ... and the deadline starts again at the next blocked write: 300 ms, not 50.
        let start = Instant::now();
        let e = io.write_all(&[9]).await.unwrap_err();
        took(start, Duration::from_millis(300));
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            e.to_string(),
            "the client read nothing for 0.3 s (server.send_timeout_secs)"
        );
    }

    #[tokio::test]
    async fn writes_that_go_through_never_time_out() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut io = SendTimeout::new(near, Duration::from_millis(100));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            far.read_to_end(&mut got).await.unwrap();
            got
        });
        // 1 s of writing in all, with pauses close to the timeout.
        for i in 0..10u8 {
            tokio::time::sleep(Duration::from_millis(95)).await;
            io.write_all(&[i; 64]).await.unwrap();
        }
        io.shutdown().await.unwrap();
        drop(io);
        assert_eq!(reader.await.unwrap().len(), 640);
    }
}
