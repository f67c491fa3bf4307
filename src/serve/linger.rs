//! Lingering close (RFC 9112 §9.6, what nginx's `lingering_close` does): an answer sent before
//! the request body was read must reach a client that writes its whole body before it reads.
//!
//! The server answers some requests without reading their body: a 401 for an upload without
//! the token, a 413 for a declared length over the limit, a 415 for a type it refuses, a 413
//! once an upload streams past its kind's limit. hyper then stops reading, and closes the
//! connection with the rest of the body unread in the socket; the kernel answers that with a
//! reset, and a client still writing (Python's urllib, reqwest, curl without `Expect`) fails
//! with "broken pipe" or "connection reset" before it ever reads the answer.
//!
//! So every request body goes through [`LingeringBody`]: when the application drops it before
//! its end, the rest is read and thrown away on a task of its own, while hyper sends the
//! answer, for at most [`LINGER_TOTAL`], [`LINGER_IDLE`] without a byte, and [`LINGER_BYTES`]
//! (the largest upload and a little more). A body drained to its end leaves the connection
//! usable for the next request; at any bound the drain gives up and hyper closes, as before.
//! A body declared longer than [`LINGER_BYTES`] is not drained at all, nor one the client has
//! not started to send because it waits for `100 Continue` (hyper then sends none: the client
//! gets the final answer instead, as RFC 9110 §10.1.1 intends), nor one the application gave up
//! waiting for (dropped while it waited, nothing having come for [`STALLED`]: an upload cut by
//! `server.body_idle_timeout_secs`), since that client is not sending.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_LENGTH, EXPECT};
use tokio::time::Instant;

/// Draining stops when no byte has come for this long.
pub const LINGER_IDLE: Duration = Duration::from_secs(5);
/// Draining stops after this long in all.
pub const LINGER_TOTAL: Duration = Duration::from_secs(30);
/// The most of a body drained: the largest upload (the largest media and multipart framing)
/// and 1 MiB more.
pub const LINGER_BYTES: u64 = crate::http::MAX_UPLOAD_BODY + 1024 * 1024;
/// A body dropped while the application waited for it, nothing having come for this long, is
/// a stalled one: it is not drained.
pub const STALLED: Duration = Duration::from_secs(1);

/// A request body that, dropped before its end, is drained (see the module doc).
pub struct LingeringBody {
    inner: Option<Incoming>,
    /// Bytes the application read.
    read: u64,
    /// The application polled it at least once (so a `100 Continue` went out, if asked for).
    polled: bool,
    /// The last poll found nothing yet: the application was waiting for the client.
    waiting: bool,
    /// When a byte last came (or the application first asked for one).
    last_progress: Option<Instant>,
    /// The client waits for `100 Continue` before it sends the body.
    expects_continue: bool,
    /// The declared `Content-Length`.
    declared: Option<u64>,
}

impl LingeringBody {
    /// Wrap the body of `req`.
    pub fn wrap(req: hyper::Request<Incoming>) -> hyper::Request<Self> {
        // A request without a body (most GETs) is never drained: its headers need no lookup.
        let empty = req.body().is_end_stream();
        let expects_continue = !empty
            && req
                .headers()
                .get(EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let declared = if empty {
            Some(0)
        } else {
            req.headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
        };
        req.map(|inner| Self {
            inner: Some(inner),
            read: 0,
            polled: false,
            waiting: false,
            last_progress: None,
            expects_continue,
            declared,
        })
    }
}

impl Body for LingeringBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if !self.polled {
            self.polled = true;
            self.last_progress = Some(Instant::now());
        }
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        self.waiting = polled.is_pending();
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.read += data.len() as u64;
            self.last_progress = Some(Instant::now());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint)
    }
}

impl Drop for LingeringBody {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let stalled = self.waiting && self.last_progress.is_some_and(|t| t.elapsed() >= STALLED);
        if inner.is_end_stream()
            || (self.expects_continue && !self.polled)
            || self.declared.is_some_and(|d| d > LINGER_BYTES)
            || stalled
        {
            return;
        }
        let budget = LINGER_BYTES.saturating_sub(self.read);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain(inner, budget));
        }
    }
}

/// Read and discard `body` until its end, or until a bound (see the module doc).
async fn drain(mut body: Incoming, mut budget: u64) {
    let end = Instant::now() + LINGER_TOTAL;
    let outcome = loop {
        let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
        match tokio::time::timeout_at(end.min(Instant::now() + LINGER_IDLE), next).await {
            Err(_) => break "timed out",
            Ok(None) => break "drained",
            Ok(Some(Err(_))) => break "the client went away",
            Ok(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                if len > budget {
                    break "too long";
                }
                budget -= len;
            }
        }
    };
    tracing::debug!(%outcome, "unread request body discarded");
}
