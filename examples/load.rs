//! A load generator for media-origin (`bench/load.sh` runs it end to end): `--conns` keep-alive
//! HTTP/1.1 connections (one task and one TCP connection each, so the count is exact) fetch
//! assets round-robin for `--duration` seconds while `--uploaders` tasks PUT new assets through
//! the admin API. Every response is checked: status 200, `Content-Length` equal to the expected
//! size and to the bytes received, the SHA-256 of the body equal to the expected hash, and the
//! `ETag` equal to `"<sha256>"` (and `Content-Type` to the record's, when the record was read).
//!
//! ```sh
//! ulimit -n 65536
//! cargo run --release --example load -- --url http://127.0.0.1:8080 --token "$TOKEN" \
//!     --asset promo/banner.jpg=<sha256>:<size> --prefix load/assets/ \
//!     --conns 1000 --duration 30 --uploaders 2 --churn load/churn.jpg
//! ```
//!
//! Assets to read: `--asset PATH=SHA256:SIZE` (hash and size computed by the caller, the strongest
//! check: the server's own record plays no part), `--asset PATH` (hash, size and type from the
//! admin API's record at start), and `--prefix P` (every asset whose path starts with P, from the
//! admin API). With `--churn PATH`, one more task replaces PATH over and over with two
//! alternating versions (one under and one over the blob memory's object limit) while the
//! readers fetch it too: each response must then be exactly one of the two versions, with the
//! `ETag`, `Content-Type` and `Content-Length` of that version.
//!
//! Uploads go to `--upload-prefix<N>.jpg` (a JPEG header and random bytes, `--upload-min-kb` to
//! `--upload-max-kb`); each must answer 200/201 with a record whose `sha256` and `size` match
//! what was sent, and is then fetched once through `/media` and checked like the reads.
//!
//! The clock starts once every connection is open and has answered one checked request. After
//! the duration, requests in flight finish and count. Connections are never closed by the
//! generator during the run: a connection the server closes is reopened and counted as a
//! reconnect; the number of open connections is sampled every 50 ms (its minimum is reported).
//! Exit status: 0 when every request was correct, no connection was lost (`--max-reconnects`)
//! and all connections stayed open; 1 otherwise; 2 when the run could not start.
//!
//! It needs one file descriptor per connection: raise the limit first (`ulimit -n 65536`).
//! The hyper client used here (`hyper::client::conn::http1`) is the one reqwest already brings
//! into the build (hyper's `client` feature).

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};

/// A real 16x16 JPEG made by ffmpeg (the upload gate reads its frame header); random bytes
/// follow its end-of-image marker (as bench/corpus.py writes).
const JPEG_HEAD: &[u8] = include_bytes!("../tests/fixtures/tiny.jpg");

/// Characters escaped in a path segment of a request URI.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/');

#[derive(Parser, Debug)]
#[command(
    about = "Load test for media-origin: many keep-alive connections reading assets (every body checked) while uploads go on"
)]
struct Args {
    /// The server's base URL (http only), where /media is served.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The admin API's base URL, when it has its own listener (default: --url).
    #[arg(long)]
    admin_url: Option<String>,
    /// The admin bearer token (needed for uploads, --churn, --prefix and --asset without a hash).
    #[arg(long, env = "MEDIA_ORIGIN_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// An asset to read: PATH=SHA256:SIZE, PATH=SHA256, or PATH (then from its record). Repeatable.
    #[arg(long = "asset", value_name = "PATH[=SHA256[:SIZE]]")]
    assets: Vec<String>,
    /// Also read every asset whose path starts with this (listed through the admin API).
    #[arg(long)]
    prefix: Option<String>,
    /// Keep-alive connections reading assets, one task each.
    #[arg(long, default_value_t = 1000)]
    conns: usize,
    /// Seconds of load, from the moment every connection is open.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Tasks uploading new assets meanwhile, each on its own keep-alive connection.
    #[arg(long, default_value_t = 2)]
    uploaders: usize,
    /// Uploads go to this prefix followed by a sequence number and `.jpg`.
    #[arg(long, default_value = "load/up-")]
    upload_prefix: String,
    /// Smallest upload, KiB.
    #[arg(long, default_value_t = 16)]
    upload_min_kb: usize,
    /// Largest upload, KiB.
    #[arg(long, default_value_t = 1024)]
    upload_max_kb: usize,
    /// Replace this path continuously with two alternating versions, read by the readers too.
    #[arg(long)]
    churn: Option<String>,
    /// One request, from sending it to the last byte of the answer, seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Opening one connection, seconds.
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
    /// Connections being opened (and warmed up) at once, before the run.
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// Reconnects tolerated before the run counts as failed.
    #[arg(long, default_value_t = 0)]
    max_reconnects: u64,
    /// A progress line on stderr every this many seconds (0: none).
    #[arg(long, default_value_t = 5.0)]
    progress: f64,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

// --- request bodies -----------------------------------------------------------------------------

/// A request body sent in one frame, with its exact length (so hyper sends `Content-Length`).
struct Full(Option<Bytes>);

impl Body for Full {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

// --- what is expected ---------------------------------------------------------------------------

/// One version of an asset's bytes.
#[derive(Debug, Clone)]
struct Version {
    sha256: String,
    size: Option<u64>,
    content_type: Option<String>,
}

impl Version {
    fn of(bytes: &[u8], content_type: &str) -> Self {
        Version {
            sha256: hex::encode(Sha256::digest(bytes)),
            size: Some(bytes.len() as u64),
            content_type: Some(content_type.to_owned()),
        }
    }
}

/// An asset the readers fetch, and the versions a correct answer may carry.
#[derive(Debug, Clone)]
struct Asset {
    path: String,
    /// Origin-form request target: `/<base>/media/<path>`.
    uri: String,
    versions: Vec<Version>,
}

/// Where the server is.
#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    /// The URL's path, without a trailing slash ("" for none).
    base: String,
}

impl Target {
    async fn parse(url: &str) -> Result<Self, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("{url}: only http:// URLs are supported"));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{url}: no host"))?
            .clone();
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((authority.host(), port))
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: the host has no address"))?;
        Ok(Target {
            addr,
            host: HeaderValue::from_str(authority.as_str()).map_err(|e| format!("{url}: {e}"))?,
            base: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    fn media_uri(&self, path: &str) -> String {
        format!("{}/media/{}", self.base, encode_path(path))
    }

    fn api_uri(&self, rest: &str) -> String {
        format!("{}/api/{rest}", self.base)
    }
}

fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

// --- counters -----------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The TCP connection could not be opened.
    Connect,
    /// The connection failed during a request (reset, closed early, unparseable answer).
    Io,
    /// A status other than the expected one.
    Status,
    /// `Content-Length` missing or not the expected size, or not the bytes received.
    Length,
    /// The body is not any expected version's bytes: corruption.
    Hash,
    /// `ETag` or `Content-Type` not those of the version the body is.
    Header,
    /// No complete answer within --timeout.
    Timeout,
    /// An upload's record does not describe what was sent.
    Record,
}

const KINDS: [(Kind, &str); 8] = [
    (Kind::Connect, "connect"),
    (Kind::Io, "io"),
    (Kind::Status, "status"),
    (Kind::Length, "length"),
    (Kind::Hash, "hash"),
    (Kind::Header, "header"),
    (Kind::Timeout, "timeout"),
    (Kind::Record, "record"),
];

impl Kind {
    fn index(self) -> usize {
        KINDS.iter().position(|(k, _)| *k == self).expect("listed")
    }

    /// Whether the connection cannot be used after this.
    fn breaks_connection(self) -> bool {
        matches!(self, Kind::Io | Kind::Timeout | Kind::Connect)
    }
}

#[derive(Debug)]
struct Failure {
    kind: Kind,
    detail: String,
}

impl Failure {
    fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Failure {
            kind,
            detail: detail.into(),
        }
    }
}

#[derive(Default)]
struct Errors([AtomicU64; KINDS.len()]);

impl Errors {
    fn total(&self) -> u64 {
        self.0.iter().map(|a| a.load(Relaxed)).sum()
    }

    fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (kind, name) in KINDS {
            m.insert(name.into(), self.0[kind.index()].load(Relaxed).into());
        }
        Value::Object(m)
    }

    fn line(&self) -> String {
        KINDS
            .iter()
            .map(|(kind, name)| format!("{name} {}", self.0[kind.index()].load(Relaxed)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Read,
    Upload,
    Churn,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Warmup => "warm-up",
            Phase::Read => "read",
            Phase::Upload => "upload",
            Phase::Churn => "churn",
        }
    }
}

/// Everything the tasks share.
struct Shared {
    target: Target,
    admin: Target,
    token: Option<HeaderValue>,
    assets: Vec<Asset>,
    per_asset: Vec<AtomicU64>,
    timeout: Duration,
    connect_timeout: Duration,
    duration: Duration,
    /// Set when the clock starts.
    start: OnceLock<Instant>,
    /// Open reader connections.
    open: AtomicI64,
    /// Open uploader, churner and set-up connections.
    open_other: AtomicI64,
    reads: AtomicU64,
    read_bytes: AtomicU64,
    read_errors: Errors,
    warmup_errors: Errors,
    reconnects: AtomicU64,
    uploads: AtomicU64,
    upload_bytes: AtomicU64,
    uploads_verified: AtomicU64,
    upload_errors: Errors,
    upload_reconnects: AtomicU64,
    upload_seq: AtomicU64,
    churn_puts: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Shared {
    fn new(
        target: Target,
        admin: Target,
        token: Option<HeaderValue>,
        args: &Args,
        assets: Vec<Asset>,
    ) -> Self {
        Shared {
            target,
            admin,
            token,
            per_asset: assets.iter().map(|_| AtomicU64::new(0)).collect(),
            assets,
            timeout: Duration::from_secs_f64(args.timeout),
            connect_timeout: Duration::from_secs_f64(args.connect_timeout),
            duration: Duration::from_secs_f64(args.duration),
            start: OnceLock::new(),
            open: AtomicI64::new(0),
            open_other: AtomicI64::new(0),
            reads: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
            read_errors: Errors::default(),
            warmup_errors: Errors::default(),
            reconnects: AtomicU64::new(0),
            uploads: AtomicU64::new(0),
            upload_bytes: AtomicU64::new(0),
            uploads_verified: AtomicU64::new(0),
            upload_errors: Errors::default(),
            upload_reconnects: AtomicU64::new(0),
            upload_seq: AtomicU64::new(0),
            churn_puts: AtomicU64::new(0),
            samples: Mutex::new(Vec::new()),
        }
    }

    /// When the run ends (None before the start).
    fn deadline(&self) -> Option<Instant> {
        self.start.get().map(|s| *s + self.duration)
    }

    fn fail(&self, phase: Phase, f: Failure) {
        let errors = match phase {
            Phase::Warmup => &self.warmup_errors,
            Phase::Read => &self.read_errors,
            Phase::Upload | Phase::Churn => &self.upload_errors,
        };
        errors.0[f.kind.index()].fetch_add(1, Relaxed);
        let mut samples = self.samples.lock().expect("not poisoned");
        if samples.len() < 30 {
            let at = self
                .start
                .get()
                .map(|s| format!("t={:.3}s", s.elapsed().as_secs_f64()))
                .unwrap_or_else(|| "before the start".into());
            samples.push(format!(
                "{} {} ({at}): {}",
                phase.name(),
                KINDS[f.kind.index()].1,
                f.detail
            ));
        }
    }

    fn running(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() < d)
    }

    fn open_counter(&self, role: Role) -> &AtomicI64 {
        match role {
            Role::Reader => &self.open,
            Role::Other => &self.open_other,
        }
    }
}

/// Whose connection: the readers' are the ones that must stay open.
#[derive(Clone, Copy)]
enum Role {
    Reader,
    Other,
}

/// Decrements the open-connection count when the connection task ends, however it ends.
struct OpenGuard(Arc<Shared>, Role);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open_counter(self.1).fetch_sub(1, Relaxed);
    }
}

// --- HTTP ---------------------------------------------------------------------------------------

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let _ = write!(s, ": {c}");
        cur = c.source();
    }
    s
}

async fn connect(
    shared: &Arc<Shared>,
    target: &Target,
    role: Role,
) -> Result<SendRequest<Full>, Failure> {
    let tcp = tokio::time::timeout(shared.connect_timeout, TcpStream::connect(target.addr))
        .await
        .map_err(|_| Failure::new(Kind::Connect, format!("{}: timed out", target.addr)))?
        .map_err(|e| Failure::new(Kind::Connect, format!("{}: {e}", target.addr)))?;
    tcp.set_nodelay(true)
        .map_err(|e| Failure::new(Kind::Connect, format!("TCP_NODELAY: {e}")))?;
    // hyper's read buffer grows to ~400 KB on large bodies; 1,000 of those would be most of
    // the generator's memory for no gain.
    let (sender, conn) = http1::Builder::new()
        .max_buf_size(64 * 1024)
        .handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| Failure::new(Kind::Connect, format!("handshake: {}", chain(&e))))?;
    shared.open_counter(role).fetch_add(1, Relaxed);
    let guard = OpenGuard(Arc::clone(shared), role);
    tokio::spawn(async move {
        let _guard = guard;
        // An error here is also the error of the request in flight, which reports it.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Reads a body to its end: its length and SHA-256.
async fn drain(mut body: Incoming) -> Result<(u64, [u8; 32]), hyper::Error> {
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            len += data.len() as u64;
            hasher.update(&data);
        }
    }
    Ok((len, hasher.finalize().into()))
}

/// Reads a (small) body into memory.
async fn read_all(mut body: Incoming) -> Result<Vec<u8>, hyper::Error> {
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// GET an asset and check the answer against its expected versions; the bytes received.
async fn fetch(s: &mut SendRequest<Full>, target: &Target, asset: &Asset) -> Result<u64, Failure> {
    let req = Request::get(asset.uri.as_str())
        .header(header::HOST, target.host.clone())
        .body(Full(None))
        .expect("a valid request");
    let resp = s.send_request(req).await.map_err(|e| {
        Failure::new(
            Kind::Io,
            format!(
                "GET {}: sending/reading the head: {}",
                asset.path,
                chain(&e)
            ),
        )
    })?;
    let status = resp.status();
    let header = |name: header::HeaderName| {
        resp.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let content_length = header(header::CONTENT_LENGTH);
    let etag = header(header::ETAG);
    let content_type = header(header::CONTENT_TYPE);
    let (len, digest) = drain(resp.into_body()).await.map_err(|e| {
        Failure::new(
            Kind::Io,
            format!("GET {}: reading the body: {}", asset.path, chain(&e)),
        )
    })?;
    if status != StatusCode::OK {
        return Err(Failure::new(
            Kind::Status,
            format!("GET {}: {status} ({len} bytes of body)", asset.path),
        ));
    }
    let sha = hex::encode(digest);
    let Some(version) = asset.versions.iter().find(|v| v.sha256 == sha) else {
        let want = asset
            .versions
            .iter()
            .map(|v| format!("{} ({} B)", v.sha256, v.size.unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(" or ");
        return Err(Failure::new(
            Kind::Hash,
            format!(
                "GET {}: body of {len} bytes has sha256 {sha}, expected {want}; Content-Length {content_length:?}, ETag {etag:?}",
                asset.path
            ),
        ));
    };
    let declared = content_length
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok());
    if declared != Some(len) || version.size.is_some_and(|size| size != len) {
        return Err(Failure::new(
            Kind::Length,
            format!(
                "GET {}: Content-Length {content_length:?}, body {len} bytes, expected {:?}",
                asset.path, version.size
            ),
        ));
    }
    let want_etag = format!("\"{}\"", version.sha256);
    if etag.as_deref() != Some(want_etag.as_str()) {
        return Err(Failure::new(
            Kind::Header,
            format!(
                "GET {}: ETag {etag:?} for a body with sha256 {sha}",
                asset.path
            ),
        ));
    }
    if let Some(want) = &version.content_type
        && content_type.as_deref() != Some(want.as_str())
    {
        return Err(Failure::new(
            Kind::Header,
            format!(
                "GET {}: Content-Type {content_type:?}, expected {want:?}",
                asset.path
            ),
        ));
    }
    Ok(len)
}

/// An admin API request; the status and the JSON body (Null when not JSON).
async fn api(
    s: &mut SendRequest<Full>,
    shared: &Shared,
    method: Method,
    rest: &str,
    content_type: Option<&str>,
    body: Option<Bytes>,
) -> Result<(StatusCode, Value), Failure> {
    let token = shared
        .token
        .clone()
        .ok_or_else(|| Failure::new(Kind::Status, "no admin token (--token)"))?;
    let mut req = Request::builder()
        .method(method.clone())
        .uri(shared.admin.api_uri(rest))
        .header(header::HOST, shared.admin.host.clone())
        .header(header::AUTHORIZATION, token);
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let req = req.body(Full(body)).expect("a valid request");
    let resp = s.send_request(req).await.map_err(|e| {
        Failure::new(
            Kind::Io,
            format!(
                "{method} /api/{rest}: sending/reading the head: {}",
                chain(&e)
            ),
        )
    })?;
    let status = resp.status();
    let bytes = read_all(resp.into_body()).await.map_err(|e| {
        Failure::new(
            Kind::Io,
            format!("{method} /api/{rest}: reading the body: {}", chain(&e)),
        )
    })?;
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        Value::String(String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned())
    });
    Ok((status, value))
}

/// PUT bytes at a path and check the record answered describes them.
async fn put_asset(
    s: &mut SendRequest<Full>,
    shared: &Shared,
    path: &str,
    version: &Version,
    body: Bytes,
) -> Result<(), Failure> {
    let rest = format!("assets/{}", encode_path(path));
    let (status, record) = api(
        s,
        shared,
        Method::PUT,
        &rest,
        version.content_type.as_deref(),
        Some(body),
    )
    .await?;
    if status != StatusCode::CREATED && status != StatusCode::OK {
        return Err(Failure::new(
            Kind::Status,
            format!("PUT {path}: {status}: {record}"),
        ));
    }
    let sha = record.get("sha256").and_then(Value::as_str);
    let size = record.get("size").and_then(Value::as_u64);
    if sha != Some(version.sha256.as_str()) || size != version.size {
        return Err(Failure::new(
            Kind::Record,
            format!(
                "PUT {path}: record says sha256 {sha:?} size {size:?}, sent {} ({:?} B)",
                version.sha256, version.size
            ),
        ));
    }
    Ok(())
}

/// A JPEG of `size` bytes: the header and random bytes.
fn jpeg(rng: &mut impl RngCore, size: usize) -> Bytes {
    let mut v = vec![0u8; size.max(JPEG_HEAD.len())];
    v[..JPEG_HEAD.len()].copy_from_slice(JPEG_HEAD);
    rng.fill_bytes(&mut v[JPEG_HEAD.len()..]);
    Bytes::from(v)
}

// --- tasks --------------------------------------------------------------------------------------

/// Latencies in microseconds, with the asset index (u32::MAX for uploads).
type Latencies = Vec<(u32, u32)>;

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

async fn wait_start(start: &mut watch::Receiver<bool>) {
    // An error means main has gone; then there is nothing to wait for.
    let _ = start.wait_for(|s| *s).await;
}

/// One reader: one connection, GETs round-robin over the assets until the deadline.
async fn reader(
    id: usize,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<()>,
    mut start: watch::Receiver<bool>,
) -> Latencies {
    let n = shared.assets.len();
    let mut next = id % n;
    let mut sender = {
        let _permit = gate.acquire().await.expect("never closed");
        match connect(&shared, &shared.target, Role::Reader).await {
            Ok(mut s) => {
                let asset = &shared.assets[next];
                next = (next + 1) % n;
                let warm = async {
                    s.ready()
                        .await
                        .map_err(|e| Failure::new(Kind::Io, chain(&e)))?;
                    fetch(&mut s, &shared.target, asset).await
                };
                match tokio::time::timeout(shared.timeout, warm).await {
                    Ok(Ok(_)) => Some(s),
                    Ok(Err(f)) => {
                        let keep = !f.kind.breaks_connection();
                        shared.fail(Phase::Warmup, f);
                        keep.then_some(s)
                    }
                    Err(_) => {
                        shared.fail(
                            Phase::Warmup,
                            Failure::new(Kind::Timeout, format!("GET {}", asset.path)),
                        );
                        None
                    }
                }
            }
            Err(f) => {
                shared.fail(Phase::Warmup, f);
                None
            }
        }
    };
    let _ = ready.send(());
    drop(ready);
    wait_start(&mut start).await;
    let deadline = shared.deadline().expect("set before the start");
    let mut latencies = Vec::with_capacity(8192);
    while Instant::now() < deadline {
        let usable = match sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            // Closed by the server, broken by an error, or never opened: every connection
            // opened after the start is a reconnect.
            sender = None;
            shared.reconnects.fetch_add(1, Relaxed);
            match connect(&shared, &shared.target, Role::Reader).await {
                Ok(s) => sender = Some(s),
                Err(f) => {
                    shared.fail(Phase::Read, f);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            continue;
        }
        let s = sender.as_mut().expect("usable");
        let asset = &shared.assets[next];
        let index = next;
        next = (next + 1) % n;
        let t0 = Instant::now();
        match tokio::time::timeout(shared.timeout, fetch(s, &shared.target, asset)).await {
            Ok(Ok(len)) => {
                latencies.push((index as u32, micros(t0.elapsed())));
                shared.reads.fetch_add(1, Relaxed);
                shared.read_bytes.fetch_add(len, Relaxed);
                shared.per_asset[index].fetch_add(1, Relaxed);
            }
            Ok(Err(f)) => {
                if f.kind.breaks_connection() {
                    sender = None;
                }
                shared.fail(Phase::Read, f);
            }
            Err(_) => {
                sender = None;
                shared.fail(
                    Phase::Read,
                    Failure::new(
                        Kind::Timeout,
                        format!(
                            "GET {}: no complete answer in {:?}",
                            asset.path, shared.timeout
                        ),
                    ),
                );
            }
        }
    }
    latencies
}

/// An uploader's or the churner's connection to the admin API, reopened when lost.
async fn admin_conn(
    shared: &Arc<Shared>,
    sender: &mut Option<SendRequest<Full>>,
    phase: Phase,
) -> bool {
    if let Some(s) = sender.as_mut() {
        if s.ready().await.is_ok() {
            return true;
        }
        shared.upload_reconnects.fetch_add(1, Relaxed);
    }
    *sender = None;
    match connect(shared, &shared.admin, Role::Other).await {
        Ok(s) => {
            *sender = Some(s);
            true
        }
        Err(f) => {
            shared.fail(phase, f);
            tokio::time::sleep(Duration::from_millis(100)).await;
            false
        }
    }
}

/// One uploader: PUT new assets back to back until the deadline, each then read back once.
async fn uploader(
    id: usize,
    shared: Arc<Shared>,
    sizes: (usize, usize),
    prefix: String,
    ready: mpsc::UnboundedSender<()>,
    mut start: watch::Receiver<bool>,
) -> Latencies {
    let mut rng = StdRng::seed_from_u64(0x10ad_0000 + id as u64);
    let mut sender = None;
    let _ = ready.send(());
    drop(ready);
    wait_start(&mut start).await;
    let mut latencies = Vec::new();
    while shared.running() {
        if !admin_conn(&shared, &mut sender, Phase::Upload).await {
            continue;
        }
        let s = sender.as_mut().expect("connected");
        let seq = shared.upload_seq.fetch_add(1, Relaxed);
        let path = format!("{prefix}{seq}.jpg");
        let size = rng.random_range(sizes.0..=sizes.1);
        let body = jpeg(&mut rng, size);
        let version = Version::of(&body, "image/jpeg");
        let t0 = Instant::now();
        let put = tokio::time::timeout(
            shared.timeout,
            put_asset(s, &shared, &path, &version, body.clone()),
        )
        .await;
        match put {
            Ok(Ok(())) => {
                latencies.push((u32::MAX, micros(t0.elapsed())));
                shared.uploads.fetch_add(1, Relaxed);
                shared.upload_bytes.fetch_add(body.len() as u64, Relaxed);
            }
            Ok(Err(f)) => {
                if f.kind.breaks_connection() {
                    sender = None;
                }
                shared.fail(Phase::Upload, f);
                continue;
            }
            Err(_) => {
                sender = None;
                shared.fail(
                    Phase::Upload,
                    Failure::new(Kind::Timeout, format!("PUT {path}")),
                );
                continue;
            }
        }
        // Read it back through /media (on the admin connection when it is the public one).
        let asset = Asset {
            uri: shared.target.media_uri(&path),
            path,
            versions: vec![version],
        };
        if shared.admin.addr != shared.target.addr {
            // Separate listeners: read back on a connection of its own.
            match connect(&shared, &shared.target, Role::Other).await {
                Ok(mut r) => {
                    let _ = r.ready().await;
                    check_back(&shared, &mut r, &asset).await;
                }
                Err(f) => shared.fail(Phase::Upload, f),
            }
        } else if !check_back(&shared, s, &asset).await {
            sender = None;
        }
    }
    latencies
}

/// GET an uploaded asset once; false when the connection is no longer usable.
async fn check_back(shared: &Shared, s: &mut SendRequest<Full>, asset: &Asset) -> bool {
    match tokio::time::timeout(shared.timeout, fetch(s, &shared.target, asset)).await {
        Ok(Ok(_)) => {
            shared.uploads_verified.fetch_add(1, Relaxed);
            true
        }
        Ok(Err(f)) => {
            let keep = !f.kind.breaks_connection();
            shared.fail(Phase::Upload, f);
            keep
        }
        Err(_) => {
            shared.fail(
                Phase::Upload,
                Failure::new(
                    Kind::Timeout,
                    format!("GET {} after its upload", asset.path),
                ),
            );
            false
        }
    }
}

/// Replaces the churn path with its two versions in turn until the deadline.
async fn churner(
    shared: Arc<Shared>,
    path: String,
    versions: [(Version, Bytes); 2],
    ready: mpsc::UnboundedSender<()>,
    mut start: watch::Receiver<bool>,
) -> Latencies {
    let mut sender = None;
    let _ = ready.send(());
    drop(ready);
    wait_start(&mut start).await;
    let mut latencies = Vec::new();
    let mut turn = 1; // version 0 is in place already
    while shared.running() {
        if !admin_conn(&shared, &mut sender, Phase::Churn).await {
            continue;
        }
        let s = sender.as_mut().expect("connected");
        let (version, body) = &versions[turn % 2];
        let t0 = Instant::now();
        match tokio::time::timeout(
            shared.timeout,
            put_asset(s, &shared, &path, version, body.clone()),
        )
        .await
        {
            Ok(Ok(())) => {
                latencies.push((u32::MAX, micros(t0.elapsed())));
                shared.churn_puts.fetch_add(1, Relaxed);
                turn += 1;
            }
            Ok(Err(f)) => {
                if f.kind.breaks_connection() {
                    sender = None;
                }
                shared.fail(Phase::Churn, f);
            }
            Err(_) => {
                sender = None;
                shared.fail(
                    Phase::Churn,
                    Failure::new(Kind::Timeout, format!("PUT {path}")),
                );
            }
        }
    }
    latencies
}

// --- set-up -------------------------------------------------------------------------------------

/// The assets named on the command line and under --prefix, with what each must be.
async fn resolve_assets(args: &Args, shared: &Arc<Shared>) -> Result<Vec<Asset>, String> {
    let mut wanted: Vec<(String, Option<Version>)> = Vec::new();
    for spec in &args.assets {
        let (path, version) = match spec.split_once('=') {
            None => (spec.clone(), None),
            Some((path, rest)) => {
                let (sha, size) = match rest.split_once(':') {
                    Some((sha, size)) => (
                        sha,
                        Some(
                            size.parse::<u64>()
                                .map_err(|e| format!("--asset {spec}: size: {e}"))?,
                        ),
                    ),
                    None => (rest, None),
                };
                let sha = sha.to_ascii_lowercase();
                if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("--asset {spec}: not a SHA-256 in hex"));
                }
                (
                    path.to_owned(),
                    Some(Version {
                        sha256: sha,
                        size,
                        content_type: None,
                    }),
                )
            }
        };
        wanted.push((path, version));
    }
    let needs_api = args.prefix.is_some() || wanted.iter().any(|(_, v)| v.is_none());
    let mut records: HashMap<String, Version> = HashMap::new();
    if needs_api {
        let mut s = connect(shared, &shared.admin, Role::Other)
            .await
            .map_err(|f| format!("admin API: {}", f.detail))?;
        let record_version = |r: &Value| -> Option<(String, Version)> {
            Some((
                r.get("path")?.as_str()?.to_owned(),
                Version {
                    sha256: r.get("sha256")?.as_str()?.to_owned(),
                    size: Some(r.get("size")?.as_u64()?),
                    content_type: Some(r.get("content_type")?.as_str()?.to_owned()),
                },
            ))
        };
        if let Some(prefix) = &args.prefix {
            let mut cursor: Option<String> = None;
            loop {
                let mut rest = format!(
                    "assets?limit=1000&prefix={}",
                    utf8_percent_encode(prefix, SEGMENT)
                );
                if let Some(c) = &cursor {
                    let _ = write!(rest, "&cursor={}", utf8_percent_encode(c, SEGMENT));
                }
                let _ = s.ready().await;
                let (status, page) = api(&mut s, shared, Method::GET, &rest, None, None)
                    .await
                    .map_err(|f| f.detail)?;
                if status != StatusCode::OK {
                    return Err(format!("GET /api/{rest}: {status}: {page}"));
                }
                for r in page
                    .get("assets")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let (path, v) =
                        record_version(r).ok_or_else(|| format!("unexpected record {r}"))?;
                    if !wanted.iter().any(|(p, _)| *p == path) {
                        wanted.push((path.clone(), None));
                    }
                    records.insert(path, v);
                }
                cursor = page
                    .get("next_cursor")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if cursor.is_none() {
                    break;
                }
            }
        }
        for (path, v) in &wanted {
            if v.is_some() || records.contains_key(path) {
                continue;
            }
            let rest = format!("assets/{}", encode_path(path));
            let _ = s.ready().await;
            let (status, r) = api(&mut s, shared, Method::GET, &rest, None, None)
                .await
                .map_err(|f| f.detail)?;
            if status != StatusCode::OK {
                return Err(format!("GET /api/{rest}: {status}: {r}"));
            }
            let (_, version) =
                record_version(&r).ok_or_else(|| format!("unexpected record {r}"))?;
            records.insert(path.clone(), version);
        }
    }
    let mut assets = Vec::new();
    for (path, given) in wanted {
        let version = match (given, records.get(&path)) {
            (Some(given), Some(record)) => {
                if record.sha256 != given.sha256 {
                    return Err(format!(
                        "{path}: the server's record says sha256 {}, --asset says {}",
                        record.sha256, given.sha256
                    ));
                }
                Version {
                    size: given.size.or(record.size),
                    ..record.clone()
                }
            }
            (Some(given), None) => given,
            (None, Some(record)) => record.clone(),
            (None, None) => unreachable!("every path without a hash was looked up"),
        };
        assets.push(Asset {
            uri: shared.target.media_uri(&path),
            path,
            versions: vec![version],
        });
    }
    Ok(assets)
}

fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

/// (CPU seconds, peak RSS in KiB) of this process.
fn self_usage() -> (f64, u64) {
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(") ")?.1.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the command.
            Some((f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?) as f64 / 100.0)
        })
        .unwrap_or(0.0);
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0);
    (cpu, hwm)
}

/// The q-quantile (0..=1) of sorted values.
fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

fn lat_json(sorted: &[u32]) -> Value {
    json!({
        "count": sorted.len(),
        "p50_ms": ms(quantile(sorted, 0.5)),
        "p90_ms": ms(quantile(sorted, 0.9)),
        "p99_ms": ms(quantile(sorted, 0.99)),
        "p999_ms": ms(quantile(sorted, 0.999)),
        "max_ms": ms(sorted.last().copied().unwrap_or(0)),
    })
}

fn lat_line(sorted: &[u32]) -> String {
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        ms(quantile(sorted, 0.5)),
        ms(quantile(sorted, 0.9)),
        ms(quantile(sorted, 0.99)),
        ms(quantile(sorted, 0.999)),
        ms(sorted.last().copied().unwrap_or(0)),
    )
}

// --- main ---------------------------------------------------------------------------------------

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("load: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    if args.conns == 0 || args.duration <= 0.0 || args.timeout <= 0.0 {
        return Err("--conns, --duration and --timeout must be positive".into());
    }
    if args.upload_min_kb == 0 || args.upload_min_kb > args.upload_max_kb {
        return Err("need 0 < --upload-min-kb <= --upload-max-kb".into());
    }
    let fds_needed = (args.conns + args.uploaders + 64) as u64;
    if let Some(limit) = open_files_limit()
        && limit < fds_needed
    {
        return Err(format!(
            "the open files limit is {limit}, {fds_needed} needed for {} connections: raise it first (ulimit -n 65536)",
            args.conns
        ));
    }
    let target = Target::parse(&args.url).await?;
    let admin = match &args.admin_url {
        Some(u) => Target::parse(u).await?,
        None => target.clone(),
    };
    let token = match &args.token {
        Some(t) => Some(
            HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|_| "--token: not a valid header value")?,
        ),
        None => None,
    };
    if token.is_none() && (args.uploaders > 0 || args.churn.is_some()) {
        return Err(
            "uploads and --churn need the admin token (--token or MEDIA_ORIGIN_ADMIN_TOKEN)".into(),
        );
    }
    // For the set-up requests (listing records, the churn path's first version).
    let probe = Arc::new(Shared::new(
        target.clone(),
        admin.clone(),
        token.clone(),
        &args,
        Vec::new(),
    ));
    let mut assets = resolve_assets(&args, &probe).await?;

    // The churn path: two versions, the second over the blob memory's 1 MiB object limit, so
    // one is served from memory and the other streamed from storage. Version 0 goes in now.
    let mut churn = None;
    if let Some(path) = &args.churn {
        let mut rng = StdRng::seed_from_u64(0xc4u64 << 32);
        let a = jpeg(&mut rng, 200_000);
        let b = jpeg(&mut rng, 1_500_000);
        let versions = [
            (Version::of(&a, "image/jpeg"), a),
            (Version::of(&b, "image/jpeg"), b),
        ];
        let mut s = connect(&probe, &probe.admin, Role::Other)
            .await
            .map_err(|f| format!("admin API: {}", f.detail))?;
        put_asset(&mut s, &probe, path, &versions[0].0, versions[0].1.clone())
            .await
            .map_err(|f| format!("--churn: {}", f.detail))?;
        assets.push(Asset {
            uri: probe.target.media_uri(path),
            path: path.clone(),
            versions: vec![versions[0].0.clone(), versions[1].0.clone()],
        });
        churn = Some((path.clone(), versions));
    }
    if assets.is_empty() {
        return Err("no assets to read: give --asset or --prefix".into());
    }
    let shared = Arc::new(Shared::new(target, admin, token, &args, assets));

    eprintln!(
        "[load] {} connections to {} reading {} assets, {} uploaders{}, {:.0} s",
        args.conns,
        shared.target.addr,
        shared.assets.len(),
        args.uploaders,
        if churn.is_some() {
            " and one churner"
        } else {
            ""
        },
        args.duration
    );

    // Open every connection (a checked GET on each), then start the clock.
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let (start_tx, start_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let setup_started = Instant::now();
    let mut readers = tokio::task::JoinSet::new();
    for id in 0..args.conns {
        readers.spawn(reader(
            id,
            Arc::clone(&shared),
            Arc::clone(&gate),
            ready_tx.clone(),
            start_rx.clone(),
        ));
    }
    let mut writers = tokio::task::JoinSet::new();
    let sizes = (args.upload_min_kb * 1024, args.upload_max_kb * 1024);
    for id in 0..args.uploaders {
        writers.spawn(uploader(
            id,
            Arc::clone(&shared),
            sizes,
            args.upload_prefix.clone(),
            ready_tx.clone(),
            start_rx.clone(),
        ));
    }
    let mut churn_task = None;
    if let Some((path, versions)) = churn {
        churn_task = Some(tokio::spawn(churner(
            Arc::clone(&shared),
            path,
            versions,
            ready_tx.clone(),
            start_rx.clone(),
        )));
    }
    drop(ready_tx);
    while ready_rx.recv().await.is_some() {}
    let setup = setup_started.elapsed();
    let open_at_start = shared.open.load(Relaxed);
    eprintln!(
        "[load] {open_at_start} connections open and checked in {:.2} s; {} warm-up errors",
        setup.as_secs_f64(),
        shared.warmup_errors.total()
    );

    let start = Instant::now();
    shared.start.set(start).expect("set once");
    let _ = start_tx.send(true);

    // Sample the open connections (readers only: uploaders' come and go on errors) and report.
    let monitor = {
        let shared = Arc::clone(&shared);
        let every = Duration::from_secs_f64(args.progress.max(0.0));
        let conns = args.conns as i64;
        tokio::spawn(async move {
            let mut min_open = i64::MAX;
            let mut max_open = 0;
            let mut last_print = Instant::now();
            let mut last_reads = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            while shared.running() {
                tick.tick().await;
                if !shared.running() {
                    break;
                }
                let open = shared.open.load(Relaxed);
                // Uploaders' connections are counted too; subtract at most theirs.
                min_open = min_open.min(open);
                max_open = max_open.max(open);
                if !every.is_zero() && last_print.elapsed() >= every {
                    let reads = shared.reads.load(Relaxed);
                    let dt = last_print.elapsed().as_secs_f64();
                    eprintln!(
                        "[load] t={:>5.1}s reads {reads} ({:.0}/s now), {:.0} MB, uploads {}, churn {}, errors {}, open {open}/{conns}, reconnects {}",
                        start.elapsed().as_secs_f64(),
                        (reads - last_reads) as f64 / dt,
                        shared.read_bytes.load(Relaxed) as f64 / 1e6,
                        shared.uploads.load(Relaxed),
                        shared.churn_puts.load(Relaxed),
                        shared.read_errors.total() + shared.upload_errors.total(),
                        shared.reconnects.load(Relaxed) + shared.upload_reconnects.load(Relaxed),
                    );
                    last_print = Instant::now();
                    last_reads = reads;
                }
            }
            (min_open, max_open)
        })
    };

    let mut read_lat: Latencies = Vec::new();
    while let Some(r) = readers.join_next().await {
        read_lat.extend(r.map_err(|e| format!("a reader task failed: {e}"))?);
    }
    let read_elapsed = start.elapsed();
    let mut upload_lat: Vec<u32> = Vec::new();
    while let Some(r) = writers.join_next().await {
        upload_lat.extend(
            r.map_err(|e| format!("an uploader task failed: {e}"))?
                .into_iter()
                .map(|(_, us)| us),
        );
    }
    let mut churn_lat: Vec<u32> = Vec::new();
    if let Some(t) = churn_task {
        churn_lat.extend(
            t.await
                .map_err(|e| format!("the churn task failed: {e}"))?
                .into_iter()
                .map(|(_, us)| us),
        );
    }
    let (min_open, max_open) = monitor.await.map_err(|e| format!("monitor: {e}"))?;
    let (cpu, hwm_kb) = self_usage();

    // --- figures --------------------------------------------------------------------------
    let secs = read_elapsed.as_secs_f64();
    let reads = shared.reads.load(Relaxed);
    let read_bytes = shared.read_bytes.load(Relaxed);
    let mut all: Vec<u32> = read_lat.iter().map(|&(_, us)| us).collect();
    all.sort_unstable();
    upload_lat.sort_unstable();
    churn_lat.sort_unstable();
    let mut by_asset: Vec<Vec<u32>> = vec![Vec::new(); shared.assets.len()];
    for &(i, us) in &read_lat {
        by_asset[i as usize].push(us);
    }
    let reconnects = shared.reconnects.load(Relaxed);
    let upload_reconnects = shared.upload_reconnects.load(Relaxed);
    let read_errors = shared.read_errors.total();
    let upload_errors = shared.upload_errors.total();
    let warmup_errors = shared.warmup_errors.total();
    let uploads = shared.uploads.load(Relaxed);
    let upload_bytes = shared.upload_bytes.load(Relaxed);
    let churn_puts = shared.churn_puts.load(Relaxed);
    let held = open_at_start >= args.conns as i64 && min_open >= args.conns as i64;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "load test: {} keep-alive connections, {:.1} s measured, {} uploaders{}",
        args.conns,
        secs,
        args.uploaders,
        if args.churn.is_some() {
            ", churn on"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "  connections:  {open_at_start} open and checked before the start (in {:.2} s); open during the run min {min_open} max {max_open}; reconnects {reconnects} (readers), {upload_reconnects} (uploaders)",
        setup.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  reads:        {reads} verified responses, {:.0} req/s, {:.1} MB ({:.1} MB/s)",
        reads as f64 / secs,
        read_bytes as f64 / 1e6,
        read_bytes as f64 / 1e6 / secs
    );
    let _ = writeln!(out, "  latency:      {}", lat_line(&all));
    for (i, asset) in shared.assets.iter().enumerate() {
        let mut l = std::mem::take(&mut by_asset[i]);
        l.sort_unstable();
        let size = asset
            .versions
            .iter()
            .map(|v| v.size.map_or("?".to_owned(), |s| s.to_string()))
            .collect::<Vec<_>>()
            .join("|");
        let _ = writeln!(
            out,
            "    {:<28} {:>9} B  {:>8} reads  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            asset.path,
            size,
            shared.per_asset[i].load(Relaxed),
            ms(quantile(&l, 0.5)),
            ms(quantile(&l, 0.99)),
            ms(l.last().copied().unwrap_or(0))
        );
        by_asset[i] = l;
    }
    let _ = writeln!(
        out,
        "  uploads:      {uploads} new assets ({:.1} MB, {:.1}/s), {} read back and verified; PUT {}",
        upload_bytes as f64 / 1e6,
        uploads as f64 / secs,
        shared.uploads_verified.load(Relaxed),
        lat_line(&upload_lat)
    );
    if args.churn.is_some() {
        let _ = writeln!(
            out,
            "  churn:        {churn_puts} replacements of {} ({:.1}/s); PUT {}",
            args.churn.as_deref().unwrap_or(""),
            churn_puts as f64 / secs,
            lat_line(&churn_lat)
        );
    }
    let _ = writeln!(
        out,
        "  read errors:  {read_errors} ({})",
        shared.read_errors.line()
    );
    let _ = writeln!(
        out,
        "  upload errors: {upload_errors} ({})",
        shared.upload_errors.line()
    );
    let _ = writeln!(
        out,
        "  warm-up errors: {warmup_errors} ({})",
        shared.warmup_errors.line()
    );
    let _ = writeln!(
        out,
        "  load generator: {cpu:.1} s CPU ({:.0}% of one core), peak RSS {:.1} MB",
        100.0 * cpu / secs,
        hwm_kb as f64 / 1024.0
    );
    let samples = shared.samples.lock().expect("not poisoned").clone();
    if !samples.is_empty() {
        let _ = writeln!(out, "  first errors:");
        for s in &samples {
            let _ = writeln!(out, "    {s}");
        }
    }
    let mut problems = Vec::new();
    if read_errors + upload_errors + warmup_errors > 0 {
        problems.push(format!(
            "{} errors",
            read_errors + upload_errors + warmup_errors
        ));
    }
    if reconnects + upload_reconnects > args.max_reconnects {
        problems.push(format!(
            "{} reconnects (at most {} allowed)",
            reconnects + upload_reconnects,
            args.max_reconnects
        ));
    }
    if !held {
        problems.push(format!(
            "connections not all held: {open_at_start} at the start, min {min_open} of {}",
            args.conns
        ));
        if open_at_start < args.conns as i64 && setup.as_secs_f64() > 5.0 {
            problems.push(format!(
                "the set-up took {:.1} s: the server closes a keep-alive connection that stays idle for its header_read_timeout_secs (10 s by default); lower --conns or raise --connect-concurrency",
                setup.as_secs_f64()
            ));
        }
    }
    if reads == 0 {
        problems.push("no reads completed".into());
    }
    if args.uploaders > 0 && uploads == 0 {
        problems.push("no uploads completed".into());
    }
    let pass = problems.is_empty();
    let _ = writeln!(
        out,
        "  result:       {}",
        if pass {
            "PASS".to_owned()
        } else {
            format!("FAIL: {}", problems.join("; "))
        }
    );
    print!("{out}");

    if let Some(path) = &args.json {
        let assets: Vec<Value> = shared
            .assets
            .iter()
            .enumerate()
            .map(|(i, a)| {
                json!({
                    "path": a.path,
                    "sizes": a.versions.iter().map(|v| v.size).collect::<Vec<_>>(),
                    "reads": shared.per_asset[i].load(Relaxed),
                    "latency": lat_json(&by_asset[i]),
                })
            })
            .collect();
        let doc = json!({
            "pass": pass,
            "problems": problems,
            "conns": args.conns,
            "duration_s": secs,
            "setup_s": setup.as_secs_f64(),
            "open_at_start": open_at_start,
            "open_min": min_open,
            "open_max": max_open,
            "reconnects": reconnects,
            "upload_reconnects": upload_reconnects,
            "reads": reads,
            "read_bytes": read_bytes,
            "reads_per_s": reads as f64 / secs,
            "read_mb_per_s": read_bytes as f64 / 1e6 / secs,
            "latency": lat_json(&all),
            "assets": assets,
            "uploads": uploads,
            "upload_bytes": upload_bytes,
            "uploads_verified": shared.uploads_verified.load(Relaxed),
            "upload_latency": lat_json(&upload_lat),
            "churn_puts": churn_puts,
            "churn_latency": lat_json(&churn_lat),
            "read_errors": shared.read_errors.to_json(),
            "upload_errors": shared.upload_errors.to_json(),
            "warmup_errors": shared.warmup_errors.to_json(),
            "error_samples": samples,
            "generator_cpu_s": cpu,
            "generator_peak_rss_kb": hwm_kb,
        });
        std::fs::write(
            path,
            serde_json::to_string_pretty(&doc).expect("JSON") + "\n",
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(pass)
}
