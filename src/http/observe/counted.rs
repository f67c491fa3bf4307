//! A download's body, counted as it is handed to the connection.
//!
//! Its own module because it is a body type with its own life cycle, apart from the layer's
//! future: the layer wraps a `/media` body over [`COUNTED_CHUNK`] in a [`Counted`], which hands
//! it to hyper in pieces of at most that size, adds each to `media_sent_bytes_total` as hyper
//! takes it, and writes the fetch log entry once, when the download ends, with the bytes sent
//! and whether it was cut off (an error, an early end or being dropped before its end).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::HeaderValue;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use super::Observer;
use super::fetch_log::{Entry, Slot};

/// The largest piece a download is handed to the connection in, and the largest body counted
/// whole at once (see the module documentation of [`super`]).
pub const COUNTED_CHUNK: usize = 64 * 1024;

/// What a counted download records when it ends.
pub(super) struct Finish {
    pub(super) observer: Arc<Observer>,
    pub(super) slot: Slot,
    pub(super) entry: Entry,
    pub(super) agent: Option<HeaderValue>,
    pub(super) request_id: HeaderValue,
}

/// A download's body, counted as hyper takes it (see the module documentation).
pub(super) struct Counted {
    inner: axum::body::Body,
    /// What is left of the last frame taken from `inner`, to hand out in pieces.
    rest: Bytes,
    sent: u64,
    /// `Content-Length`.
    length: u64,
    /// Taken when the download ends, whole or not.
    finish: Option<Box<Finish>>,
}

impl Counted {
    /// Count `inner`, of `Content-Length` `length`, and record `finish` when it ends.
    pub(super) fn new(inner: axum::body::Body, length: u64, finish: Finish) -> Self {
        Self {
            inner,
            rest: Bytes::new(),
            sent: 0,
            length,
            finish: Some(Box::new(finish)),
        }
    }

    /// The next piece of `rest`, counted.
    fn piece(&mut self) -> Bytes {
        let piece = self.rest.split_to(self.rest.len().min(COUNTED_CHUNK));
        let n = piece.len() as u64;
        self.sent += n;
        if let Some(finish) = &self.finish {
            finish.observer.metrics.media_bytes(n);
        }
        // Written before the client can have the last byte, so whoever reads the fetch log
        // after a whole download finds it.
        if self.sent >= self.length {
            self.end(false);
        }
        piece
    }

    /// Write the fetch log entry, once.
    fn end(&mut self, cut_off: bool) {
        let Some(finish) = self.finish.take() else {
            return;
        };
        let Finish {
            observer,
            slot,
            mut entry,
            agent,
            request_id,
        } = *finish;
        entry.bytes = self.sent;
        entry.cut_off = cut_off;
        if cut_off {
            tracing::debug!(
                request_id = %request_id.to_str().unwrap_or_default(),
                sent = self.sent,
                length = self.length,
                "download cut off before its end"
            );
        }
        if !matches!(slot, Slot::Off) {
            observer
                .fetches
                .push(slot, entry, agent.as_ref().and_then(|a| a.to_str().ok()));
        }
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if !self.rest.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(self.piece()))));
        }
        match std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    self.rest = data;
                    Poll::Ready(Some(Ok(Frame::data(self.piece()))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            Some(Err(e)) => {
                self.end(true);
                Poll::Ready(Some(Err(e)))
            }
            None => {
                let short = self.sent < self.length;
                self.end(short);
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let rest = self.rest.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + rest);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + rest);
        }
        hint
    }
}

impl Drop for Counted {
    /// Dropped before its end: the connection closed or failed.
    fn drop(&mut self) {
        self.end(true);
    }
}
