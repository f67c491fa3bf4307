//! What every request leaves behind: an `X-Request-Id`, a count in the metrics, a log event
//! and, for `/media`, an entry in the asset's fetch log.
//!
//! One layer does it all, around every route (see [`super::finish`]), because each layer costs
//! the public path a boxed future. Per request it takes a request ID (the client's, when sane,
//! else a new UUID), a few atomic increments, and for `/media` one push into a bounded ring.
//! Public requests are logged at DEBUG (a broadcast brings tens of thousands a second), admin
//! requests at INFO.
//!
//! A download's bytes are counted as they are handed to the connection, not as its
//! `Content-Length` promises: a body over [`COUNTED_CHUNK`] is wrapped (see [`counted`]) and goes
//! out in pieces of at most that size, each added to `media_sent_bytes_total` as hyper takes it,
//! and its fetch log entry is written when it ends, with the bytes sent and whether it was cut
//! off. hyper takes a piece only when its write buffer (about 400 KiB) has room, so a client that
//! stops reading is counted at most that buffer and one piece past what reached its socket.
//! A smaller body goes to the socket in one write and is counted whole at once, as before: the
//! hot path of small assets allocates nothing more.
//!
//! This module is the layer itself ([`Observe`], its future) and the state it shares
//! ([`Observer`]); the parts it uses live beside it: [`request_id`] (taking or making the ID),
//! [`agents`] (recognising Meta's fetcher), [`fetch_log`] (the per-asset fetch log) and
//! [`counted`] (the counted download body).

mod agents;
mod counted;
mod fetch_log;
mod request_id;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use tracing::Instrument;

use crate::clock::unix_ms;
use crate::config::{FetchLogSettings, MetricsSettings};
use crate::metrics::{Metrics, RouteClass};

use agents::MetaAgents;
use counted::{Counted, Finish};
use fetch_log::{Entry, Slot};
use request_id::{new_request_id, sane_request_id};

pub use counted::COUNTED_CHUNK;
pub use fetch_log::{Fetch, FetchLog};
pub use request_id::X_REQUEST_ID;

/// Metrics, fetch log and the recognition of Meta's fetcher, shared by every request.
pub struct Observer {
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// Recent public fetches per asset.
    pub fetches: FetchLog,
    /// `metrics.meta_user_agents`.
    meta_agents: MetaAgents,
}

impl Observer {
    /// From settings, counting into `metrics`.
    pub fn new(
        metrics: Arc<Metrics>,
        settings: &MetricsSettings,
        fetch_log: &FetchLogSettings,
    ) -> Self {
        Self {
            metrics,
            fetches: FetchLog::new(fetch_log),
            meta_agents: MetaAgents::new(&settings.meta_user_agents),
        }
    }

    /// Whether a `User-Agent` is Meta's fetcher's: it contains one of the configured agents,
    /// ignoring ASCII case (`FacebookExternalUA/1.1` is `facebookexternalua`'s).
    pub fn is_meta(&self, user_agent: &str) -> bool {
        self.meta_agents.matches(user_agent)
    }
}

/// See the module documentation. Wraps a whole application rather than being a router layer:
/// a layer on an axum router costs each request a boxed service clone and a boxed future.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    observer: Arc<Observer>,
}

impl<S> Observe<S> {
    /// Observe what `inner` answers.
    pub fn new(inner: S, observer: Arc<Observer>) -> Self {
        Self { inner, observer }
    }
}

/// What is known of a request before its answer.
struct Pending {
    observer: Arc<Observer>,
    route: RouteClass,
    request_id: HeaderValue,
    /// Set for `/media` GET and HEAD only.
    media: Option<MediaRequest>,
}

struct MediaRequest {
    method: &'static str,
    agent: Option<HeaderValue>,
    conditional: bool,
    meta: bool,
    slot: Slot,
}

impl<S, B> tower::Service<axum::http::Request<B>> for Observe<S>
where
    S: tower::Service<axum::http::Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let route = RouteClass::of(req.uri().path());
        let seen = Seen::of(req.headers());
        let request_id = seen
            .request_id
            .filter(|v| sane_request_id(v.as_bytes()))
            .cloned()
            .unwrap_or_else(new_request_id);
        // Public requests are logged at DEBUG: when that is off (the default), no span, no log
        // fields, nothing formatted.
        let logged = route == RouteClass::Admin || tracing::enabled!(tracing::Level::DEBUG);
        let span = if logged {
            let id = request_id.to_str().unwrap_or_default();
            match route {
                RouteClass::Admin => tracing::info_span!("request", request_id = %id),
                _ => tracing::debug_span!("request", request_id = %id),
            }
        } else {
            tracing::Span::none()
        };
        let method = req.method();
        let media = (route == RouteClass::Media
            && (*method == Method::GET || *method == Method::HEAD))
            .then(|| MediaRequest {
                method: if *method == Method::GET {
                    "GET"
                } else {
                    "HEAD"
                },
                agent: seen.agent.cloned(),
                conditional: seen.conditional,
                meta: seen
                    .agent
                    .and_then(|a| a.to_str().ok())
                    .is_some_and(|a| self.observer.is_meta(a)),
                slot: self
                    .observer
                    .fetches
                    .slot(req.uri().path().strip_prefix("/media/").unwrap_or_default()),
            });
        let log = logged.then(|| {
            Box::new(RequestLog {
                method: req.method().clone(),
                uri: req.uri().clone(),
                started: Instant::now(),
            })
        });
        ObserveFuture {
            inner: self.inner.call(req).instrument(span),
            pending: Some(Pending {
                observer: Arc::clone(&self.observer),
                route,
                request_id,
                media,
            }),
            log,
        }
    }
}

/// The request headers the layer reads, found in one pass over the header map: cheaper than a
/// hashed lookup for each when, as usual, a request has a handful of headers.
struct Seen<'a> {
    /// The first `X-Request-Id`.
    request_id: Option<&'a HeaderValue>,
    /// The first `User-Agent`.
    agent: Option<&'a HeaderValue>,
    /// `If-None-Match`, `If-Modified-Since` or `Range` is there.
    conditional: bool,
}

impl<'a> Seen<'a> {
    fn of(headers: &'a axum::http::HeaderMap) -> Self {
        let mut seen = Seen {
            request_id: None,
            agent: None,
            conditional: false,
        };
        for (name, value) in headers {
            if *name == header::USER_AGENT {
                seen.agent.get_or_insert(value);
            } else if *name == header::IF_NONE_MATCH
                || *name == header::IF_MODIFIED_SINCE
                || *name == header::RANGE
            {
                seen.conditional = true;
            } else if *name == X_REQUEST_ID {
                seen.request_id.get_or_insert(value);
            }
        }
        seen
    }
}

/// What a logged request's log event needs from the request (boxed: most are not logged, and
/// the future stays small).
struct RequestLog {
    method: Method,
    uri: axum::http::Uri,
    started: Instant,
}

pin_project_lite::pin_project! {
    /// [`Observe`]'s future.
    pub struct ObserveFuture<F> {
        #[pin]
        inner: tracing::instrument::Instrumented<F>,
        pending: Option<Pending>,
        log: Option<Box<RequestLog>>,
    }
}

impl<F> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = std::task::ready!(this.inner.poll(cx));
        let Some(p) = this.pending.take() else {
            return Poll::Ready(Ok(response));
        };
        let status = response.status().as_u16();
        let metrics = &p.observer.metrics;
        metrics.request(p.route, status);
        let mut bytes = 0;
        let meta = p.media.as_ref().is_some_and(|m| m.meta);
        if let Some(m) = p.media {
            if m.meta {
                metrics.meta_request(status);
            }
            let logged = status != 400 && status != 405;
            let entry = Entry {
                at_unix_ms: unix_ms(),
                method: m.method,
                status,
                bytes: 0,
                cut_off: false,
                user_agent: None,
                conditional: m.conditional,
                meta: m.meta,
            };
            if m.method == "GET" && (status == 200 || status == 206) {
                bytes = response
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(0);
            }
            if bytes > COUNTED_CHUNK as u64 {
                // Counted as it is sent; the fetch log entry is written when it ends.
                let finish = Finish {
                    observer: Arc::clone(&p.observer),
                    slot: if logged { m.slot } else { Slot::Off },
                    entry,
                    agent: m.agent,
                    request_id: p.request_id.clone(),
                };
                response =
                    response.map(|body| axum::body::Body::new(Counted::new(body, bytes, finish)));
            } else {
                metrics.media_bytes(bytes);
                if logged && !matches!(m.slot, Slot::Off) {
                    let entry = Entry { bytes, ..entry };
                    let agent = m.agent.as_ref().and_then(|a| a.to_str().ok());
                    p.observer.fetches.push(m.slot, entry, agent);
                }
            }
        }
        if let Some(log) = this.log.take() {
            let RequestLog {
                method,
                uri,
                started,
            } = *log;
            // The path only: a query may hold a link's signature.
            let path = uri.path();
            let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let request_id = p.request_id.to_str().unwrap_or_default();
            if p.route == RouteClass::Admin {
                tracing::info!(%request_id, %method, %path, status, latency_us, "request");
            } else {
                tracing::debug!(%request_id, %method, %path, status, bytes, latency_us, meta, "request");
            }
        }
        if takes_no_length(status) {
            response.headers_mut().remove(header::CONTENT_LENGTH);
        }
        response.headers_mut().insert(&X_REQUEST_ID, p.request_id);
        Poll::Ready(Ok(response))
    }
}

/// Whether an answer of `status` is sent without `Content-Length`: axum gives every empty body
/// `Content-Length: 0`, which RFC 9110 §8.6 forbids on a 204 and on a 304 (where it would have
/// to be the 200's length, and a cache that updates its stored headers from the 304 would take
/// the 0). This layer removes it from every answer; `/media`'s answers never get it.
pub(crate) fn takes_no_length(status: u16) -> bool {
    status == 204 || status == 304
}
