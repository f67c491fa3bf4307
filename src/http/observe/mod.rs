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
//! `Content-Length` promises: a body over [`COUNTED_CHUNK`] is wrapped ([`Counted`]) and goes out
//! in pieces of at most that size, each added to `media_sent_bytes_total` as hyper takes it, and
//! its fetch log entry is written when it ends, with the bytes sent and whether it was cut off.
//! hyper takes a piece only when its write buffer (about 400 KiB) has room, so a client that
//! stops reading is counted at most that buffer and one piece past what reached its socket.
//! A smaller body goes to the socket in one write and is counted whole at once, as before: the
//! hot path of small assets allocates nothing more.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use serde::Serialize;
use tracing::Instrument;

use crate::clock::{http_date, unix_ms};
use crate::config::{FetchLogSettings, MetricsSettings};
use crate::metrics::{Metrics, RouteClass};

/// The request ID header, taken from the client when sane and always echoed.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest user agent kept in the fetch log.
const MAX_AGENT: usize = 256;
/// Longest client request ID accepted.
const MAX_REQUEST_ID: usize = 128;
/// The largest piece a download is handed to the connection in, and the largest body counted
/// whole at once (see the module documentation).
pub const COUNTED_CHUNK: usize = 64 * 1024;

/// Metrics, fetch log and the recognition of Meta's fetcher, shared by every request.
pub struct Observer {
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// Recent public fetches per asset.
    pub fetches: FetchLog,
    /// `metrics.meta_user_agents`, in ASCII lower case.
    meta_agents: Box<[Box<[u8]>]>,
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
            meta_agents: settings
                .meta_user_agents
                .iter()
                .map(|a| a.to_ascii_lowercase().into_bytes().into())
                .collect(),
        }
    }

    /// Whether a `User-Agent` is Meta's fetcher's: it contains one of the configured agents,
    /// ignoring ASCII case (`FacebookExternalUA/1.1` is `facebookexternalua`'s).
    pub fn is_meta(&self, user_agent: &str) -> bool {
        let agent = user_agent.as_bytes();
        self.meta_agents
            .iter()
            .any(|needle| contains_ignoring_ascii_case(agent, needle))
    }
}

/// Whether `haystack` contains `needle` (in ASCII lower case), ignoring ASCII case; without
/// allocating, since it runs on every public request.
fn contains_ignoring_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    haystack.len() >= needle.len()
        && (0..=haystack.len() - needle.len()).any(|i| {
            haystack[i].to_ascii_lowercase() == first
                && haystack[i + 1..i + needle.len()].eq_ignore_ascii_case(rest)
        })
}

/// One public fetch of an asset, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Fetch {
    /// When it was answered (IMF-fixdate).
    pub at: String,
    /// The same, in milliseconds since the epoch.
    pub at_unix_ms: u64,
    /// `GET` or `HEAD`.
    pub method: &'static str,
    /// The status answered.
    pub status: u16,
    /// Body bytes sent: handed to the connection, so for a download cut off before its end,
    /// fewer than its length (0 for a 304 or a HEAD).
    pub bytes: u64,
    /// The download ended before its whole body was sent: the client went away or the
    /// connection failed (`bytes` says how far it got).
    pub cut_off: bool,
    /// The client's `User-Agent` (at most 256 characters).
    pub user_agent: Option<String>,
    /// `If-None-Match`, `If-Modified-Since` or `Range` was sent: the client had a copy, or
    /// wanted part of one.
    pub conditional: bool,
    /// The `User-Agent` is Meta's media fetcher's (`metrics.meta_user_agents`).
    pub meta: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    at_unix_ms: u64,
    method: &'static str,
    status: u16,
    bytes: u64,
    cut_off: bool,
    user_agent: Option<Arc<str>>,
    conditional: bool,
    meta: bool,
}

type Ring = Arc<Mutex<VecDeque<Entry>>>;

/// A fetch log entry's destination.
enum Slot {
    /// The asset's ring.
    Ring(Ring),
    /// A path with no ring yet (decoded).
    New(String),
    /// Nowhere: no fetch log, or a path that is not UTF-8.
    Off,
}

/// The last `per_asset` public fetches of each of at most `max_assets` assets, in memory.
///
/// A plain map under a read-write lock rather than a cache crate: a fetch takes the read lock
/// once and hashes the path once, which measured about twice as fast as moka's bookkeeping on
/// the 304 path. Eviction runs only when a new asset needs room: assets idle past the TTL go,
/// then, if still full, the least recently fetched tenth.
pub struct FetchLog {
    per_asset: usize,
    max_assets: usize,
    ttl_ms: u64,
    assets: Option<RwLock<HashMap<Box<str>, Ring, PathHash>>>,
}

/// FNV-1a: a few cycles for a short path, where SipHash costs tens of nanoseconds. Flooding is
/// no concern: only paths of existing assets (which the admin API creates) get an entry.
#[derive(Default, Clone, Copy)]
struct PathHash;

impl std::hash::BuildHasher for PathHash {
    type Hasher = Fnv;

    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl FetchLog {
    /// Sized by settings; `per_asset = 0` keeps nothing.
    pub fn new(settings: &FetchLogSettings) -> Self {
        let max_assets = usize::try_from(settings.max_assets).unwrap_or(usize::MAX);
        Self {
            per_asset: settings.per_asset,
            max_assets,
            ttl_ms: settings.ttl_secs.saturating_mul(1000),
            assets: (settings.per_asset > 0 && max_assets > 0)
                .then(|| RwLock::new(HashMap::default())),
        }
    }

    /// Make room for one more asset.
    fn evict(&self, map: &mut HashMap<Box<str>, Ring, PathHash>, now_ms: u64) {
        let last = |ring: &Ring| {
            ring.lock()
                .expect("fetch ring")
                .back()
                .map_or(0, |e| e.at_unix_ms)
        };
        map.retain(|_, ring| now_ms.saturating_sub(last(ring)) <= self.ttl_ms);
        if map.len() < self.max_assets {
            return;
        }
        let mut by_age: Vec<(u64, Box<str>)> =
            map.iter().map(|(k, r)| (last(r), k.clone())).collect();
        by_age.sort_unstable();
        let drop = (self.max_assets / 10).max(map.len() + 1 - self.max_assets);
        for (_, key) in by_age.into_iter().take(drop) {
            map.remove(&key);
        }
    }

    /// How many fetches are kept per asset.
    pub fn per_asset(&self) -> usize {
        self.per_asset
    }

    /// Where a fetch of the `/media/` URL path `raw` goes, looked up before the answer.
    fn slot(&self, raw: &str) -> Slot {
        let Some(assets) = &self.assets else {
            return Slot::Off;
        };
        // Most paths have nothing to decode: skip the decoder's copy-on-write and UTF-8 check.
        let mut path = if raw.contains('%') {
            match percent_encoding::percent_decode_str(raw).decode_utf8() {
                Ok(path) => path,
                Err(_) => return Slot::Off,
            }
        } else {
            Cow::Borrowed(raw)
        };
        // Assets are kept under the composed (NFC) path: a decomposed spelling is the same
        // asset's fetch.
        let composed = match crate::asset::path::nfc(&path) {
            Cow::Owned(composed) => Some(composed),
            Cow::Borrowed(_) => None,
        };
        if let Some(composed) = composed {
            path = Cow::Owned(composed);
        }
        let found = assets.read().expect("fetch log").get(&*path).cloned();
        match found {
            Some(ring) => Slot::Ring(ring),
            None => Slot::New(path.into_owned()),
        }
    }

    /// Remember a fetch. A path seen for the first time gets an entry only when the answer
    /// shows the asset exists, so probes of random paths fill nothing.
    fn push(&self, slot: Slot, mut entry: Entry, agent: Option<&str>) {
        let ring = match slot {
            Slot::Ring(ring) => ring,
            Slot::New(path) if matches!(entry.status, 200 | 206 | 304 | 403 | 412 | 416) => {
                let Some(assets) = &self.assets else { return };
                let mut map = assets.write().expect("fetch log");
                if let Some(ring) = map.get(path.as_str()) {
                    Arc::clone(ring)
                } else {
                    if map.len() >= self.max_assets {
                        self.evict(&mut map, entry.at_unix_ms);
                    }
                    let ring = Ring::default();
                    map.insert(path.into_boxed_str(), Arc::clone(&ring));
                    ring
                }
            }
            Slot::New(_) | Slot::Off => return,
        };
        let mut ring = ring.lock().expect("fetch ring");
        // The same fetcher asks again and again: share its user agent instead of copying it.
        if let Some(agent) = agent {
            let agent = truncate(agent, MAX_AGENT);
            entry.user_agent = match ring.back().and_then(|e| e.user_agent.as_ref()) {
                Some(last) if **last == *agent => Some(Arc::clone(last)),
                _ => Some(Arc::from(agent)),
            };
        }
        if ring.len() >= self.per_asset {
            ring.pop_front();
        }
        ring.push_back(entry);
    }

    /// The kept fetches of `path`, newest first.
    pub fn get(&self, path: &str) -> Vec<Fetch> {
        let Some(ring) = self
            .assets
            .as_ref()
            .and_then(|a| a.read().expect("fetch log").get(path).cloned())
        else {
            return Vec::new();
        };
        let ring = ring.lock().expect("fetch ring");
        let now_ms = unix_ms();
        if ring
            .back()
            .is_none_or(|e| now_ms.saturating_sub(e.at_unix_ms) > self.ttl_ms)
        {
            return Vec::new();
        }
        ring.iter()
            .rev()
            .map(|e| Fetch {
                at: http_date(e.at_unix_ms / 1000),
                at_unix_ms: e.at_unix_ms,
                method: e.method,
                status: e.status,
                bytes: e.bytes,
                cut_off: e.cut_off,
                user_agent: e.user_agent.as_deref().map(str::to_owned),
                conditional: e.conditional,
                meta: e.meta,
            })
            .collect()
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
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
                RouteClass::Admin => tracing::info_span!("request", request_id = id),
                _ => tracing::debug_span!("request", request_id = id),
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
                response = response.map(|body| {
                    axum::body::Body::new(Counted {
                        inner: body,
                        rest: Bytes::new(),
                        sent: 0,
                        length: bytes,
                        finish: Some(Box::new(finish)),
                    })
                });
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
                tracing::info!(request_id, %method, path, status, latency_us, "request");
            } else {
                tracing::debug!(request_id, %method, path, status, bytes, latency_us, meta, "request");
            }
        }
        if status == 204 || status == 304 {
            // axum gives every empty body `Content-Length: 0`; RFC 9110 §8.6 forbids it on a 204
            // and on a 304 (where it would have to be the 200's length, and a cache that
            // updates its stored headers from the 304 would take the 0).
            response.headers_mut().remove(header::CONTENT_LENGTH);
        }
        response.headers_mut().insert(&X_REQUEST_ID, p.request_id);
        Poll::Ready(Ok(response))
    }
}

/// What a counted download records when it ends.
struct Finish {
    observer: Arc<Observer>,
    slot: Slot,
    entry: Entry,
    agent: Option<HeaderValue>,
    request_id: HeaderValue,
}

/// A download's body, counted as hyper takes it (see the module documentation).
struct Counted {
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
                request_id = request_id.to_str().unwrap_or_default(),
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

/// A client's request ID is kept when it is 1 to 128 characters of letters, digits and
/// `-_.:/+=@`; anything else is replaced, so logs never carry arbitrary bytes.
fn sane_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b))
}

thread_local! {
    /// SplitMix64 state, seeded from the OS once per thread: request IDs must be unique, not
    /// unpredictable, and this is several times cheaper than a cryptographic generator.
    static ID_STATE: Cell<u64> = Cell::new(rand::random());
}

fn splitmix() -> u64 {
    ID_STATE.with(|s| {
        let x = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// A random-looking (v4) UUID.
fn new_request_id() -> HeaderValue {
    let bytes = (u128::from(splitmix()) << 64 | u128::from(splitmix())).to_be_bytes();
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf))
        .expect("a UUID is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked() {
        assert!(sane_request_id(b"abc-123"));
        assert!(sane_request_id(b"f0e1d2c3-b4a5-4968-8776-655443322110"));
        assert!(!sane_request_id(b""));
        assert!(!sane_request_id(b"has space"));
        assert!(!sane_request_id(b"quote\""));
        assert!(!sane_request_id(&[b'a'; 129]));
        let generated = new_request_id();
        assert_eq!(generated.len(), 36);
        assert!(sane_request_id(generated.as_bytes()));
        let parsed = uuid::Uuid::parse_str(generated.to_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(parsed.hyphenated().to_string(), generated.to_str().unwrap());
        assert_ne!(new_request_id(), generated);
    }

    #[test]
    fn meta_agents_match_as_substrings_ignoring_ascii_case() {
        let observer = |agents: &[&str]| {
            Observer::new(
                Arc::new(Metrics::new()),
                &MetricsSettings {
                    meta_user_agents: agents.iter().map(|a| (*a).to_owned()).collect(),
                },
                &FetchLogSettings::default(),
            )
        };
        let default = Observer::new(
            Arc::new(Metrics::new()),
            &MetricsSettings::default(),
            &FetchLogSettings::default(),
        );
        for agent in [
            "facebookexternalua",
            "FacebookExternalUA/1.1",
            "FACEBOOKEXTERNALUA",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "FacebookExternalHit/1.1",
            "WhatsApp/2.23.20.0",
            "whatsapp/2",
            "Mozilla/5.0 (compatible; WHATSAPP)",
        ] {
            assert!(default.is_meta(agent), "{agent}");
        }
        for agent in [
            "",
            "facebookexternal",
            "facebookexternalu",
            "Mozilla/5.0",
            "WhatsAp",
            "curl/8.5.0",
        ] {
            assert!(!default.is_meta(agent), "{agent}");
        }
        // A configured agent in any case matches any case; at the very start and end too.
        let custom = observer(&["MyFetcher", "ÄBot"]);
        assert!(custom.is_meta("myfetcher"));
        assert!(custom.is_meta("x MYFETCHER"));
        assert!(custom.is_meta("MyFetcher/1 y"));
        assert!(!custom.is_meta("MyFetche"));
        assert!(!custom.is_meta("facebookexternalua"));
        // Only ASCII letters fold: non-ASCII must match exactly.
        assert!(custom.is_meta("ÄBot"));
        assert!(custom.is_meta("Äbot"));
        assert!(!custom.is_meta("äbot"));
    }

    fn entry(status: u16) -> Entry {
        Entry {
            at_unix_ms: unix_ms(),
            method: "GET",
            status,
            bytes: 1,
            cut_off: false,
            user_agent: None,
            conditional: false,
            meta: false,
        }
    }

    #[test]
    fn fetch_log_is_bounded_and_skips_unknown_paths() {
        let log = FetchLog::new(&FetchLogSettings {
            per_asset: 3,
            max_assets: 10,
            ttl_secs: 60,
        });
        log.push(log.slot("nope.jpg"), entry(404), Some("x"));
        assert!(log.get("nope.jpg").is_empty());
        for status in [200, 304, 206, 304, 404] {
            log.push(log.slot("a.jpg"), entry(status), Some("WhatsApp/2"));
        }
        let got: Vec<u16> = log.get("a.jpg").iter().map(|f| f.status).collect();
        assert_eq!(got, [404, 304, 206]);
        {
            let map = log.assets.as_ref().unwrap().read().unwrap();
            let ring = map.get("a.jpg").unwrap().lock().unwrap();
            assert!(Arc::ptr_eq(
                ring[0].user_agent.as_ref().unwrap(),
                ring[2].user_agent.as_ref().unwrap()
            ));
        }
        // Room is made by dropping the least recently fetched.
        for i in 0..25 {
            let mut e = entry(200);
            e.at_unix_ms += i;
            log.push(log.slot(&format!("{i}.jpg")), e, None);
        }
        let map = log.assets.as_ref().unwrap().read().unwrap();
        assert!(map.len() <= 10);
        assert!(map.contains_key("24.jpg"));
        assert!(!map.contains_key("0.jpg"));
    }
}
