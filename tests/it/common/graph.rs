//! A fake of Meta's Graph API Media endpoints (WHATSAPP_MEDIA.md §4), started in-process on
//! loopback port 0: upload (`POST /{version}/{phone_number_id}/media`), retrieve
//! (`GET /{version}/{media_id}`) and delete (`DELETE /{version}/{media_id}`).
//!
//! It checks what Meta checks, in Meta's order, and answers with Meta's error JSON:
//! the version, the bearer token (401, code 190), the phone number (code 100, subcode 33), a
//! `multipart/form-data` body with a boundary, the `messaging_product`, `type` and `file`
//! fields, an optional `ttl_minutes` (60 to 43200, code 100 otherwise), the media type (the file
//! part's own content type must be one of Meta's supported types, else code 100 with Meta's
//! "Param file must be a file with one of the following types" message; the declared `type` and
//! the bytes' signature must agree with it, else code 131053) and the size limit of its kind
//! (code 131053). Uploads are streamed, hashed and counted, never kept; the file part's filename
//! and content type and the `ttl_minutes` sent are recorded.
//!
//! Incoming media (what customers send) is added with [`GraphServer::add_incoming`]: retrieve
//! then answers Meta's `{"messaging_product","url","mime_type","sha256","file_size","id"}`
//! with a URL on a separate download host (its own listener, like Meta's lookaside host), which
//! checks the bearer token (401) and the User-Agent (403 without one, or with one the test
//! refuses), answers 404 once the URL is older than 5 minutes on the fake's [`Clock`], and can
//! be told to lie about the SHA-256, hold the answer, stall or cut the body, and retrieve to
//! answer code 100 or 131052 instead (see [`Incoming`]).
//!
//! Faults are queued with [`GraphServer::push_fault`] and consumed one per upload request,
//! before any check. Every request is logged with the status it got. The access token is never
//! logged or echoed: inspection sees `Authorization` headers redacted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// A token, version and phone number id tests can share.
pub const GRAPH_TOKEN: &str = "EAAGtestGraphAccessToken0123456789";
pub const GRAPH_VERSION: &str = "v23.0";
pub const PHONE_NUMBER_ID: &str = "106540352242922";
/// A second business number, for tests of per-number media IDs.
pub const OTHER_PHONE_NUMBER_ID: &str = "106540352242999";

/// The largest request body read (the largest media, documents, are 100 MB).
pub const BODY_LIMIT: usize = 120 * 1024 * 1024;

/// Meta's supported upload types, in the order its code-100 error lists them (as Meta answers,
/// `audio/opus` included).
pub const SUPPORTED_TYPES: &[&str] = &[
    "audio/aac",
    "audio/mp4",
    "audio/mpeg",
    "audio/amr",
    "audio/ogg",
    "audio/opus",
    "application/vnd.ms-powerpoint",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/pdf",
    "text/plain",
    "application/vnd.ms-excel",
    "image/jpeg",
    "image/png",
    "image/webp",
    "video/mp4",
    "video/3gpp",
];

/// One failure to answer an upload request with, instead of processing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After` (when given) and error code 4,
    /// "(#4) Application request limit reached".
    Http429 { retry_after: Option<u64> },
    /// An error JSON with this code (and subcode) at this HTTP status, e.g. throughput limits
    /// as Meta sends them: `Code { code: 130429, subcode: None, http_status: 400 }` or 80007.
    Code {
        code: i64,
        subcode: Option<i64>,
        http_status: u16,
    },
    /// HTTP 500, code 1, "An unknown error occurred", `is_transient: true`.
    Status500,
    /// HTTP 503, code 2, "Service temporarily unavailable", `is_transient: true`.
    Status503,
    /// Wait this long before reading the request, then process it normally (a client with a
    /// shorter timeout sees a timeout).
    Hang(Duration),
    /// HTTP 200, `application/json`, body `{"id":` (truncated).
    MalformedJson,
    /// Like [`Fault::Code`], with the members Meta adds to some errors: `is_transient` (when
    /// `Some`), `error_user_title` and `error_user_msg`.
    Detailed {
        code: i64,
        subcode: Option<i64>,
        http_status: u16,
        is_transient: Option<bool>,
        user_title: Option<String>,
        user_msg: Option<String>,
    },
}

/// A successful upload as the fake received it.
#[derive(Debug, Clone)]
pub struct ReceivedUpload {
    pub phone_number_id: String,
    pub media_id: String,
    /// The `type` form field, verbatim.
    pub type_field: String,
    /// The `file` part's filename.
    pub filename: String,
    /// The `ttl_minutes` form field, verbatim, when sent.
    pub ttl_minutes: Option<String>,
    /// The `file` part's own `Content-Type`, verbatim.
    pub part_content_type: String,
    /// Bytes received in the `file` part.
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes received.
    pub sha256: String,
    /// Whether the request carried the right `Authorization: Bearer` header (always true for a
    /// recorded upload, which passed the check).
    pub authorization_seen: bool,
    /// The request's headers, in order, names lowercase; `authorization` reads `<redacted>`.
    pub headers: Vec<(String, String)>,
}

impl ReceivedUpload {
    /// The first value of a request header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the fake treats one incoming media ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Incoming {
    /// Served as it is.
    #[default]
    Normal,
    /// Retrieve reports the SHA-256 of other bytes.
    LieSha256,
    /// Retrieve answers this Graph error code (100: no such object; 131052: media download
    /// error) instead.
    LookupError(i64),
    /// The download host waits this long before answering (a test can move the clock
    /// meanwhile).
    Hold(Duration),
    /// The download host sends this many bytes, then nothing more for a minute.
    Stall(usize),
    /// The download host sends this many bytes, then drops the connection.
    Cut(usize),
    /// The download host answers HTTP 503, this many times, then serves.
    Unavailable(usize),
    /// The next `times` download requests arrive `secs` late: the fake's clock moves on by
    /// `secs` as each comes in (past 300, its URL has expired: 404).
    ArriveLate { secs: i64, times: usize },
}

struct IncomingMedia {
    phone_number_id: String,
    bytes: bytes::Bytes,
    mime_type: String,
    behaviour: Incoming,
}

/// One request the download host received.
#[derive(Debug, Clone)]
pub struct DownloadRequest {
    pub media_id: String,
    /// Whether it carried `Authorization: Bearer <token>`.
    pub authorized: bool,
    pub user_agent: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct Shared {
    incoming: HashMap<String, IncomingMedia>,
    downloads: Vec<DownloadRequest>,
    refused_agents: Vec<String>,
    phones: HashSet<String>,
    uploads: Vec<ReceivedUpload>,
    /// media id → index in `uploads`, for live (not deleted) media.
    live: HashMap<String, usize>,
    deleted: Vec<String>,
    faults: VecDeque<Fault>,
    log: Vec<(String, String, u16)>,
    next_id: u64,
    file_size_as_string: bool,
}

struct Inner {
    token: String,
    version: String,
    base_url: String,
    download_url: String,
    clock: media_origin::clock::Clock,
    attempts: AtomicUsize,
    state: Mutex<Shared>,
}

pub struct GraphServer {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: Mutex<Option<JoinHandle<()>>>,
    download_task: Mutex<Option<JoinHandle<()>>>,
}

impl GraphServer {
    /// Serve on `127.0.0.1:0`, accepting `Authorization: Bearer {token}` and paths under
    /// `/{version}` (e.g. `v23.0`). No phone number exists until [`Self::add_phone_number`].
    pub async fn start(token: &str, version: &str) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let download_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let download_addr = download_listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            token: token.to_owned(),
            version: version.to_owned(),
            base_url: format!("http://{addr}"),
            download_url: format!("http://{download_addr}"),
            clock: media_origin::clock::Clock::system(),
            attempts: AtomicUsize::new(0),
            state: Mutex::new(Shared {
                next_id: rand::rng().random_range(100_000_000_000_000..900_000_000_000_000),
                ..Shared::default()
            }),
        });
        let router = Router::new()
            .fallback(dispatch)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(Arc::clone(&inner));
        let download_router = Router::new()
            .fallback(download)
            .with_state(Arc::clone(&inner));
        let download_task = tokio::spawn(serve_router(download_listener, download_router));
        let task = tokio::spawn(serve_router(listener, router));
        Arc::new(Self {
            addr,
            inner,
            task: Mutex::new(Some(task)),
            download_task: Mutex::new(Some(download_task)),
        })
    }

    /// A media ID for `bytes` a customer sent to `phone` as `mime_type`.
    pub fn add_incoming(&self, phone: &str, bytes: Vec<u8>, mime_type: &str) -> String {
        let mut st = self.state();
        st.next_id += 1;
        let id = st.next_id.to_string();
        st.incoming.insert(
            id.clone(),
            IncomingMedia {
                phone_number_id: phone.to_owned(),
                bytes: bytes.into(),
                mime_type: mime_type.to_owned(),
                behaviour: Incoming::Normal,
            },
        );
        id
    }

    /// How the fake treats the incoming media `id` from now on.
    pub fn set_incoming(&self, id: &str, behaviour: Incoming) {
        self.state().incoming.get_mut(id).unwrap().behaviour = behaviour;
    }

    /// The download host refuses requests whose User-Agent contains `agent` (403).
    pub fn refuse_user_agent(&self, agent: &str) {
        self.state().refused_agents.push(agent.to_owned());
    }

    /// Every request the download host received, in order.
    pub fn downloads(&self) -> Vec<DownloadRequest> {
        self.state().downloads.clone()
    }

    /// The clock download URLs are dated and expired by (5 minutes): tests move it.
    pub fn clock(&self) -> &media_origin::clock::Clock {
        &self.inner.clock
    }

    /// Retrieve calls received for media ID `id`.
    pub fn lookups(&self, id: &str) -> usize {
        let path = format!("/{}/{id}", self.inner.version);
        self.state()
            .log
            .iter()
            .filter(|(m, p, _)| m == "GET" && *p == path)
            .count()
    }

    /// A server for [`GRAPH_TOKEN`] and [`GRAPH_VERSION`] that knows [`PHONE_NUMBER_ID`] and
    /// [`OTHER_PHONE_NUMBER_ID`]: what the media-ID tests talk to.
    pub async fn start_default() -> Arc<Self> {
        let g = Self::start(GRAPH_TOKEN, GRAPH_VERSION).await;
        g.add_phone_number(PHONE_NUMBER_ID);
        g.add_phone_number(OTHER_PHONE_NUMBER_ID);
        g
    }

    /// Point a server's `[whatsapp]` settings here, with both numbers (the first the default)
    /// and timeouts short enough for tests.
    pub fn configure(&self, c: &mut media_origin::config::Settings) {
        c.whatsapp.graph_url = self.base_url();
        c.whatsapp.api_version = self.inner.version.clone();
        c.whatsapp.phone_number_ids = vec![PHONE_NUMBER_ID.into(), OTHER_PHONE_NUMBER_ID.into()];
        c.whatsapp.access_token = Some(media_origin::config::Secret::new(&self.inner.token));
        c.whatsapp.timeout_ms = 2000;
        c.whatsapp.retry_budget_ms = 10_000;
    }

    /// `http://127.0.0.1:PORT`, without the version.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// Let uploads to this phone number id succeed.
    pub fn add_phone_number(&self, id: &str) {
        self.state().phones.insert(id.to_owned());
    }

    /// Answer the next upload request with `fault` (faults queue up, one per request).
    pub fn push_fault(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// Queue `fault` for the next `n` upload requests.
    pub fn push_faults(&self, n: usize, fault: Fault) {
        let mut st = self.state();
        for _ in 0..n {
            st.faults.push_back(fault.clone());
        }
    }

    /// Faults queued and not yet consumed.
    pub fn pending_faults(&self) -> usize {
        self.state().faults.len()
    }

    /// Retrieve answers `file_size` as a string (as some Graph versions do) instead of a
    /// number.
    pub fn set_file_size_as_string(&self, as_string: bool) {
        self.state().file_size_as_string = as_string;
    }

    /// Every successful upload, in order (deleted ones included).
    pub fn uploads(&self) -> Vec<ReceivedUpload> {
        self.state().uploads.clone()
    }

    /// Media ids deleted, in order.
    pub fn deleted(&self) -> Vec<String> {
        self.state().deleted.clone()
    }

    /// Every request answered: (method, path without query, status), faulted and failed ones
    /// included. A request abandoned before it was answered is logged with status 0.
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.state().log.clone()
    }

    pub fn clear_requests(&self) {
        self.state().log.clear();
    }

    /// Every `POST /{anything}/{anything}/media` received, faulted or not, whatever the answer.
    pub fn upload_attempts(&self) -> usize {
        self.inner.attempts.load(Ordering::SeqCst)
    }

    /// Stop answering: the listener closes and every open connection is dropped.
    pub async fn stop(&self) {
        if let Some(task) = self.download_task.lock().unwrap().take() {
            task.abort();
        }
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.inner.state.lock().unwrap()
    }
}

impl Drop for GraphServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().unwrap().take() {
            task.abort();
        }
        if let Some(task) = self.download_task.get_mut().unwrap().take() {
            task.abort();
        }
    }
}

/// Logs a request when dropped: with its status once answered, with 0 if abandoned.
struct LogEntry {
    inner: Arc<Inner>,
    method: String,
    path: String,
    status: u16,
}

impl Drop for LogEntry {
    fn drop(&mut self) {
        if let Ok(mut st) = self.inner.state.lock() {
            st.log.push((
                std::mem::take(&mut self.method),
                std::mem::take(&mut self.path),
                self.status,
            ));
        }
    }
}

async fn dispatch(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let mut entry = LogEntry {
        inner: Arc::clone(&inner),
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        status: 0,
    };
    let response = route(&inner, req).await;
    entry.status = response.status().as_u16();
    response
}

async fn route(g: &Arc<Inner>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    match (&method, segments.as_slice()) {
        (&Method::POST, [version, phone, "media"]) => upload(g, version, phone, req).await,
        (&Method::GET | &Method::DELETE, [version, media_id]) if !media_id.is_empty() => {
            let (parts, body) = req.into_parts();
            drain(body).await;
            if let Err(e) = check_version_and_token(g, version, &path, &parts.headers) {
                return e.into_response();
            }
            let verb = if method == Method::GET {
                "get"
            } else {
                "delete"
            };
            let query_phone = parts.uri.query().and_then(|q| {
                q.split('&').find_map(|kv| {
                    kv.strip_prefix("phone_number_id=")
                        .map(|v| v.trim().to_owned())
                })
            });
            let mut st = g.state.lock().unwrap();
            if method == Method::GET
                && let Some(media) = st.incoming.get(*media_id)
            {
                if query_phone
                    .as_ref()
                    .is_some_and(|p| *p != media.phone_number_id)
                {
                    return GraphError::no_object(verb, media_id).into_response();
                }
                return retrieve_incoming(g, media_id, media, st.file_size_as_string);
            }
            let Some(&index) = st.live.get(*media_id) else {
                return GraphError::no_object(verb, media_id).into_response();
            };
            if let Some(p) = query_phone
                && p != st.uploads[index].phone_number_id
            {
                return GraphError::no_object(verb, media_id).into_response();
            }
            if method == Method::DELETE {
                st.live.remove(*media_id);
                st.deleted.push((*media_id).to_owned());
                return json_response(StatusCode::OK, &json!({ "success": true }));
            }
            let u = &st.uploads[index];
            let file_size = if st.file_size_as_string {
                Value::String(u.size.to_string())
            } else {
                Value::from(u.size)
            };
            let body = json!({
                "messaging_product": "whatsapp",
                "url": format!(
                    "{}/whatsapp_business/attachments/?mid={}&ext={}",
                    g.base_url,
                    u.media_id,
                    now_secs()
                ),
                "mime_type": u.type_field,
                "sha256": u.sha256,
                "file_size": file_size,
                "id": u.media_id,
            });
            json_response(StatusCode::OK, &body)
        }
        _ => {
            let (parts, body) = req.into_parts();
            drain(body).await;
            let version = segments.first().copied().unwrap_or("");
            if let Err(e) = check_version_and_token(g, version, &path, &parts.headers) {
                return e.into_response();
            }
            let object = segments.get(1).copied().unwrap_or("");
            GraphError::no_object(&method.as_str().to_ascii_lowercase(), object).into_response()
        }
    }
}

/// Retrieve for incoming media: Meta's answer, with a download URL dated by the fake's clock.
fn retrieve_incoming(
    g: &Inner,
    media_id: &str,
    media: &IncomingMedia,
    file_size_as_string: bool,
) -> Response {
    match media.behaviour {
        Incoming::LookupError(100) => {
            return GraphError::no_object("get", media_id).into_response();
        }
        Incoming::LookupError(code) => return code_error(code, None, 400).into_response(),
        _ => {}
    }
    let sha256 = if media.behaviour == Incoming::LieSha256 {
        hex::encode(Sha256::digest(b"other bytes"))
    } else {
        hex::encode(Sha256::digest(&media.bytes))
    };
    let size = media.bytes.len() as u64;
    let file_size = if file_size_as_string {
        Value::String(size.to_string())
    } else {
        Value::from(size)
    };
    json_response(
        StatusCode::OK,
        &json!({
            "messaging_product": "whatsapp",
            "url": format!(
                "{}/whatsapp_business/attachments/?mid={media_id}&ext={}&hash=ARx{}",
                g.download_url,
                g.clock.now(),
                &sha256[..12]
            ),
            "mime_type": media.mime_type,
            "sha256": sha256,
            "file_size": file_size,
            "id": media_id,
        }),
    )
}

/// The download host: checks the token and User-Agent, expires URLs after 5 minutes, serves
/// the bytes (or misbehaves as told).
async fn download(State(g): State<Arc<Inner>>, req: Request) -> Response {
    let query = req.uri().query().unwrap_or("").to_owned();
    let param = |name: &str| {
        query.split('&').find_map(|kv| {
            kv.strip_prefix(name)
                .and_then(|v| v.strip_prefix('='))
                .map(str::to_owned)
        })
    };
    let media_id = param("mid").unwrap_or_default();
    let issued: u64 = param("ext").and_then(|e| e.parse().ok()).unwrap_or(0);
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {}", g.token).as_str());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (behaviour, bytes, refused) = {
        let st = g.state.lock().unwrap();
        let media = st.incoming.get(&media_id);
        let refused = match &user_agent {
            None => true,
            Some(ua) => ua.trim().is_empty() || st.refused_agents.iter().any(|r| ua.contains(r)),
        };
        (
            media.map(|m| m.behaviour.clone()),
            media.map(|m| m.bytes.clone()),
            refused,
        )
    };
    if let Some(Incoming::Hold(d)) = &behaviour {
        tokio::time::sleep(*d).await;
    }
    if let Some(Incoming::ArriveLate { secs, times }) = &behaviour
        && *times > 0
    {
        g.clock.advance(*secs);
        let mut st = g.state.lock().unwrap();
        if let Some(m) = st.incoming.get_mut(&media_id) {
            m.behaviour = Incoming::ArriveLate {
                secs: *secs,
                times: times - 1,
            };
        }
    }
    let mut unavailable = false;
    if let Some(Incoming::Unavailable(n)) = &behaviour
        && *n > 0
    {
        unavailable = true;
        let mut st = g.state.lock().unwrap();
        if let Some(m) = st.incoming.get_mut(&media_id) {
            m.behaviour = Incoming::Unavailable(n - 1);
        }
    }
    let status = if !authorized {
        StatusCode::UNAUTHORIZED
    } else if refused {
        StatusCode::FORBIDDEN
    } else if bytes.is_none() || g.clock.now() > issued + 300 {
        StatusCode::NOT_FOUND
    } else if unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    g.state.lock().unwrap().downloads.push(DownloadRequest {
        media_id: media_id.clone(),
        authorized,
        user_agent,
        status: status.as_u16(),
    });
    if status != StatusCode::OK {
        return Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(Body::from(
                "<html><body>Sorry, something went wrong.</body></html>",
            ))
            .unwrap();
    }
    let bytes = bytes.unwrap();
    let len = bytes.len();
    let body = match behaviour {
        Some(Incoming::Stall(n)) | Some(Incoming::Cut(n)) => {
            let stall = matches!(behaviour, Some(Incoming::Stall(_)));
            let head = bytes.slice(..n.min(len));
            let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(head) }).chain(
                futures::stream::once(async move {
                    if stall {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Err(std::io::Error::other("connection cut"))
                }),
            );
            Body::from_stream(stream)
        }
        _ => Body::from(bytes),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .body(body)
        .unwrap()
}

/// Serve `router` on `listener` until the task is aborted (connections belong to the task).
async fn serve_router(listener: TcpListener, router: Router) {
    let conn_builder = ConnBuilder::new(TokioExecutor::new());
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let router = router.clone();
        let handler =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                router.clone().oneshot(req.map(Body::new))
            });
        let conn = conn_builder
            .serve_connection(TokioIo::new(socket), handler)
            .into_owned();
        conns.spawn(async move {
            let _ = conn.await;
        });
    }
}

fn check_version_and_token(
    g: &Inner,
    version: &str,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), GraphError> {
    if version != g.version {
        return Err(GraphError::unknown_path(path));
    }
    let expected = format!("Bearer {}", g.token);
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        return Err(GraphError::invalid_token());
    }
    Ok(())
}

/// What the fake keeps of the `file` part while streaming it.
struct FilePart {
    filename: Option<String>,
    content_type: Option<String>,
    size: u64,
    sha256: String,
    /// The first bytes, for the signature.
    head: Vec<u8>,
}

const HEAD_LEN: usize = 64;

async fn upload(g: &Arc<Inner>, version: &str, phone: &str, req: Request) -> Response {
    g.attempts.fetch_add(1, Ordering::SeqCst);
    let fault = g.state.lock().unwrap().faults.pop_front();
    match fault {
        None => {}
        Some(Fault::Hang(d)) => tokio::time::sleep(d).await,
        Some(fault) => {
            drain(req.into_body()).await;
            return fault_response(fault);
        }
    }
    let path = req.uri().path().to_owned();
    if let Err(e) = check_version_and_token(g, version, &path, req.headers()) {
        drain(req.into_body()).await;
        return e.into_response();
    }
    if !g.state.lock().unwrap().phones.contains(phone) {
        drain(req.into_body()).await;
        return GraphError::no_object("post", phone).into_response();
    }
    if !is_multipart_with_boundary(req.headers()) {
        drain(req.into_body()).await;
        return GraphError::param(
            "(#100) Invalid parameter",
            "The request is not multipart/form-data with a boundary: upload the file as a \
             multipart/form-data body.",
        )
        .into_response();
    }
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| {
            let value = if *n == header::AUTHORIZATION {
                "<redacted>".to_owned()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (n.as_str().to_owned(), value)
        })
        .collect();

    let mut multipart = match Multipart::from_request(req, &()).await {
        Ok(m) => m,
        Err(e) => {
            return GraphError::param(
                "(#100) Invalid parameter",
                &format!("The request is not a valid multipart/form-data body: {e}"),
            )
            .into_response();
        }
    };
    let mut product: Option<String> = None;
    let mut type_field: Option<String> = None;
    let mut ttl_minutes: Option<String> = None;
    let mut file: Option<FilePart> = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return multipart_error(&e),
        };
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "messaging_product" | "type" | "ttl_minutes" => {
                let text = match field.text().await {
                    Ok(t) => t,
                    Err(e) => return multipart_error(&e),
                };
                match name.as_str() {
                    "type" => type_field = Some(text),
                    "ttl_minutes" => ttl_minutes = Some(text),
                    _ => product = Some(text),
                }
            }
            "file" => {
                let filename = field.file_name().map(str::to_owned);
                let content_type = field.content_type().map(str::to_owned);
                let mut hasher = Sha256::new();
                let mut size = 0u64;
                let mut head = Vec::with_capacity(HEAD_LEN);
                loop {
                    match field.chunk().await {
                        Ok(Some(chunk)) => {
                            hasher.update(&chunk);
                            size += chunk.len() as u64;
                            if head.len() < HEAD_LEN {
                                let take = (HEAD_LEN - head.len()).min(chunk.len());
                                head.extend_from_slice(&chunk[..take]);
                            }
                        }
                        Ok(None) => break,
                        Err(e) => return multipart_error(&e),
                    }
                }
                file = Some(FilePart {
                    filename,
                    content_type,
                    size,
                    sha256: hex::encode(hasher.finalize()),
                    head,
                });
            }
            _ => loop {
                match field.chunk().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => return multipart_error(&e),
                }
            },
        }
    }

    if product.as_deref() != Some("whatsapp") {
        return GraphError::param(
            "(#100) The parameter messaging_product is required.",
            "The parameter messaging_product is required.",
        )
        .into_response();
    }
    let Some(type_field) = type_field.filter(|t| !t.trim().is_empty()) else {
        return GraphError::param(
            "(#100) The parameter type is required.",
            "The parameter type is required.",
        )
        .into_response();
    };
    let Some(file) = file else {
        return GraphError::param(
            "(#100) The parameter file is required.",
            "The parameter file is required.",
        )
        .into_response();
    };
    let Some(filename) = file.filename.filter(|f| !f.is_empty()) else {
        return GraphError::param(
            "(#100) Param file must be a file upload",
            "The file part has no filename: send it as a file, with a filename.",
        )
        .into_response();
    };
    let Some(part_content_type) = file.content_type.filter(|c| !c.trim().is_empty()) else {
        return GraphError::param(
            "(#100) Param file must be a file upload",
            "The file part has no Content-Type of its own.",
        )
        .into_response();
    };
    // No-Storage numbers: how long Meta keeps the upload, 1 hour to 30 days.
    if let Some(ttl) = &ttl_minutes
        && !ttl
            .trim()
            .parse::<u32>()
            .is_ok_and(|m| (60..=43_200).contains(&m))
    {
        return GraphError::param(
            "(#100) Param ttl_minutes must be an integer between 60 and 43200",
            &format!("ttl_minutes must be between 60 and 43200 minutes; received '{ttl}'."),
        )
        .into_response();
    }

    // The media type: the part's type must be supported, the declared `type` the same, and
    // the bytes what both say.
    let part_type = essence(&part_content_type);
    let declared = essence(&type_field);
    if !SUPPORTED_TYPES.contains(&part_type.as_str()) {
        // As Meta answers it: code 100, the list and the type received, no error_data.
        return GraphError {
            details: None,
            ..GraphError::param(
                &format!(
                    "(#100) Param file must be a file with one of the following types: {}. \
                     Received file of type '{part_type}'.",
                    SUPPORTED_TYPES.join(", ")
                ),
                "",
            )
        }
        .into_response();
    }
    if declared != part_type {
        return GraphError::media(&format!(
            "Uploaded media type does not match the declared type: the type parameter is \
             '{declared}' and the file is of type '{part_type}'."
        ))
        .into_response();
    }
    let sniffed = sniff(&file.head);
    let consistent = match sniffed {
        Some(types) => types.contains(&declared.as_str()),
        None => !SIGNED_TYPES.contains(&declared.as_str()),
    };
    if !consistent {
        let found = sniffed.map_or("unrecognised content", |t| t[0]);
        return GraphError::media(&format!(
            "Uploaded media type does not match the declared type: declared '{declared}', \
             the file content is {found}."
        ))
        .into_response();
    }
    if file.size == 0 {
        return GraphError::media("The uploaded file is empty.").into_response();
    }
    let max = size_limit(&declared, &file.head);
    if file.size > max {
        return GraphError::media(&format!(
            "File size {} bytes exceeds the maximum of {max} bytes for media of type \
             '{declared}'.",
            file.size
        ))
        .into_response();
    }

    let mut st = g.state.lock().unwrap();
    st.next_id += rand::rng().random_range(1..1000);
    let media_id = st.next_id.to_string();
    let index = st.uploads.len();
    st.uploads.push(ReceivedUpload {
        phone_number_id: phone.to_owned(),
        media_id: media_id.clone(),
        type_field,
        filename,
        ttl_minutes,
        part_content_type,
        size: file.size,
        sha256: file.sha256,
        authorization_seen: true,
        headers,
    });
    st.live.insert(media_id.clone(), index);
    json_response(StatusCode::OK, &json!({ "id": media_id }))
}

fn is_multipart_with_boundary(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut params = ct.split(';');
    let is_form = params
        .next()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("multipart/form-data"));
    is_form
        && params.any(|p| {
            let p = p.trim();
            p.len() > "boundary=".len()
                && p.get(..9)
                    .is_some_and(|k| k.eq_ignore_ascii_case("boundary="))
        })
}

fn multipart_error(e: &axum::extract::multipart::MultipartError) -> Response {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        GraphError::media(&format!(
            "File size exceeds the maximum of {BODY_LIMIT} bytes for a request."
        ))
        .into_response()
    } else {
        GraphError::param(
            "(#100) Invalid parameter",
            &format!("The request is not a valid multipart/form-data body: {e}"),
        )
        .into_response()
    }
}

/// `image/JPEG; x=y` → `image/jpeg`.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Types whose files always start with a signature: declared without it, they are refused.
const SIGNED_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "application/pdf",
    "video/mp4",
    "video/3gpp",
    "audio/mp4",
    "audio/ogg",
    "image/webp",
];

/// The types a file's signature allows, the likeliest first; `None` for no known signature.
fn sniff(head: &[u8]) -> Option<&'static [&'static str]> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(&["image/jpeg"])
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(&["image/png"])
    } else if head.starts_with(b"%PDF") {
        Some(&["application/pdf"])
    } else if head.len() >= 8 && &head[4..8] == b"ftyp" {
        Some(&["video/mp4", "video/3gpp", "audio/mp4"])
    } else if head.starts_with(b"OggS") {
        Some(&["audio/ogg", "audio/opus"])
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        Some(&["image/webp"])
    } else {
        None
    }
}

/// Meta's limit for a type (WHATSAPP_MEDIA.md §3; MB = 1,000,000 bytes). A WebP sticker may
/// be 500 KB when animated (a VP8X chunk with the animation flag), 100 KB otherwise.
fn size_limit(declared: &str, head: &[u8]) -> u64 {
    match declared {
        "image/webp" => {
            let animated = head.len() > 20 && &head[12..16] == b"VP8X" && head[20] & 0x02 != 0;
            if animated { 500_000 } else { 100_000 }
        }
        t if t.starts_with("image/") => 5_000_000,
        t if t.starts_with("audio/") || t.starts_with("video/") => 16_000_000,
        _ => 100_000_000,
    }
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::Http429 { retry_after } => GraphError {
            http: StatusCode::TOO_MANY_REQUESTS,
            message: "(#4) Application request limit reached".into(),
            kind: "OAuthException",
            code: 4,
            subcode: None,
            details: None,
            transient: Some(true),
            user: None,
            retry_after,
        }
        .into_response(),
        Fault::Code {
            code,
            subcode,
            http_status,
        } => code_error(code, subcode, http_status).into_response(),
        Fault::Detailed {
            code,
            subcode,
            http_status,
            is_transient,
            user_title,
            user_msg,
        } => GraphError {
            transient: is_transient,
            user: (user_title.is_some() || user_msg.is_some()).then(|| {
                Box::new(UserWords {
                    title: user_title,
                    msg: user_msg,
                })
            }),
            ..code_error(code, subcode, http_status)
        }
        .into_response(),
        Fault::Status500 => GraphError {
            http: StatusCode::INTERNAL_SERVER_ERROR,
            message: "An unknown error occurred".into(),
            kind: "OAuthException",
            code: 1,
            subcode: None,
            details: None,
            transient: Some(true),
            user: None,
            retry_after: None,
        }
        .into_response(),
        Fault::Status503 => GraphError {
            http: StatusCode::SERVICE_UNAVAILABLE,
            message: "Service temporarily unavailable".into(),
            kind: "OAuthException",
            code: 2,
            subcode: None,
            details: None,
            transient: Some(true),
            user: None,
            retry_after: None,
        }
        .into_response(),
        Fault::MalformedJson => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json; charset=UTF-8")
            .body(Body::from(r#"{"id":"#))
            .unwrap(),
        Fault::Hang(_) => unreachable!("a hang delays the request, it does not answer it"),
    }
}

/// The error Meta answers with for `code` (Meta's message for it, and `is_transient` where
/// Meta sets it).
fn code_error(code: i64, subcode: Option<i64>, http_status: u16) -> GraphError {
    let (message, details) = match code {
        1 => ("An unknown error occurred".to_owned(), None),
        2 => ("Service temporarily unavailable".to_owned(), None),
        4 => ("(#4) Application request limit reached".to_owned(), None),
        10 => (
            "(#10) Application does not have permission for this action".to_owned(),
            None,
        ),
        100 => ("(#100) Invalid parameter".to_owned(), None),
        190 => (
            "Invalid OAuth access token - Cannot parse access token".to_owned(),
            None,
        ),
        200 => ("(#200) Permissions error".to_owned(), None),
        80007 => (
            "(#80007) Rate limit hit".to_owned(),
            Some("Rate limit of the WhatsApp Business Account reached."),
        ),
        130429 => (
            "(#130429) Rate limit hit".to_owned(),
            Some("Cloud API message throughput has been reached."),
        ),
        131052 => (
            "(#131052) Media download error".to_owned(),
            Some("Unable to download the media sent by the user."),
        ),
        131053 => (
            "(#131053) Media upload error".to_owned(),
            Some("Media upload failed (injected fault)."),
        ),
        c => (format!("(#{c}) Injected fault"), Some("Injected fault.")),
    };
    GraphError {
        http: StatusCode::from_u16(http_status).unwrap_or(StatusCode::BAD_REQUEST),
        message,
        kind: "OAuthException",
        code,
        subcode,
        details: details.map(str::to_owned),
        transient: matches!(code, 1 | 2 | 4).then_some(true),
        user: None,
        retry_after: None,
    }
}

/// A Graph API error, as Meta writes it.
struct GraphError {
    http: StatusCode,
    message: String,
    kind: &'static str,
    code: i64,
    subcode: Option<i64>,
    /// `error_data.details` (with `messaging_product: whatsapp`).
    details: Option<String>,
    transient: Option<bool>,
    /// `error_user_title` and `error_user_msg`, Meta's words for people.
    user: Option<Box<UserWords>>,
    retry_after: Option<u64>,
}

/// `error_user_title` and `error_user_msg` of a [`GraphError`].
struct UserWords {
    title: Option<String>,
    msg: Option<String>,
}

impl GraphError {
    fn invalid_token() -> Self {
        Self {
            http: StatusCode::UNAUTHORIZED,
            message: "Invalid OAuth access token - Cannot parse access token".into(),
            kind: "OAuthException",
            code: 190,
            subcode: None,
            details: None,
            transient: None,
            user: None,
            retry_after: None,
        }
    }

    fn unknown_path(path: &str) -> Self {
        Self {
            http: StatusCode::BAD_REQUEST,
            message: format!("Unknown path components: {path}"),
            kind: "OAuthException",
            code: 2500,
            subcode: None,
            details: None,
            transient: None,
            user: None,
            retry_after: None,
        }
    }

    /// Code 100, subcode 33: the object does not exist (Meta's type here is
    /// `GraphMethodException`).
    fn no_object(verb: &str, id: &str) -> Self {
        Self {
            http: StatusCode::BAD_REQUEST,
            message: format!(
                "Unsupported {verb} request. Object with ID '{id}' does not exist, cannot be \
                 loaded due to missing permissions, or does not support this operation. Please \
                 read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
            ),
            kind: "GraphMethodException",
            code: 100,
            subcode: Some(33),
            details: None,
            transient: None,
            user: None,
            retry_after: None,
        }
    }

    /// Code 100, an invalid or missing parameter.
    fn param(message: &str, details: &str) -> Self {
        Self {
            http: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "OAuthException",
            code: 100,
            subcode: None,
            details: Some(details.into()),
            transient: None,
            user: None,
            retry_after: None,
        }
    }

    /// Code 131053, a media upload error.
    fn media(details: &str) -> Self {
        Self {
            http: StatusCode::BAD_REQUEST,
            message: "(#131053) Media upload error".into(),
            kind: "OAuthException",
            code: 131053,
            subcode: None,
            details: Some(details.into()),
            transient: None,
            user: None,
            retry_after: None,
        }
    }

    fn into_response(self) -> Response {
        let trace = trace_id();
        let mut error = json!({
            "message": self.message,
            "type": self.kind,
            "code": self.code,
        });
        if let Some(s) = self.subcode {
            error["error_subcode"] = s.into();
        }
        if let Some(t) = self.transient {
            error["is_transient"] = t.into();
        }
        if let Some(words) = self.user {
            if let Some(t) = words.title {
                error["error_user_title"] = t.into();
            }
            if let Some(m) = words.msg {
                error["error_user_msg"] = m.into();
            }
        }
        if let Some(d) = self.details {
            error["error_data"] = json!({ "messaging_product": "whatsapp", "details": d });
        }
        error["fbtrace_id"] = trace.clone().into();
        let mut response = json_response(self.http, &json!({ "error": error }));
        let h = response.headers_mut();
        h.insert("x-fb-trace-id", trace.parse().unwrap());
        if self.http == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                format!(
                    "OAuth \"Facebook Platform\" \"invalid_token\" \"{}\"",
                    self.message
                )
                .parse()
                .unwrap(),
            );
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=UTF-8")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn trace_id() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(27)
        .map(char::from)
        .collect()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Read and discard a request body, so the client always gets to read the answer.
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}
