//! A real S3 protocol server for the tests: s3s-fs (a directory served over the S3 API, with
//! SigV4 request signing checked) on loopback, started in-process on port 0.
//!
//! Faults are injected at the HTTP layer, in front of the S3 service: it can be stopped (every
//! connection dropped, the port refusing) and started again on the same port, and made slow.
//! Every request is logged, so a test can check what the server asked S3 for (unless logging
//! is turned off with [`S3Server::set_logging`], as the benchmark's long-running server does).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const ACCESS_KEY: &str = "AKIDMEDIAORIGINTEST";
pub const SECRET_KEY: &str = "media-origin-test-secret";
pub const BUCKET: &str = "media";

/// One request as S3 saw it.
#[derive(Debug, Clone)]
pub struct S3Request {
    pub method: String,
    /// Path and query, e.g. `/media/assets/a.jpg.json`.
    pub target: String,
    pub range: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct Faults {
    delay: Mutex<Duration>,
    /// When set, requests signed for another region are refused the way AWS refuses them.
    region: Mutex<Option<String>>,
    log: Mutex<Vec<S3Request>>,
    /// Set: requests are not logged (the log would otherwise grow with every request).
    no_log: AtomicBool,
    /// S3 decides a conditional write atomically, and a read returns an object's bytes and
    /// ETag as of one instant. s3s-fs does neither: it checks `If-Match` / `If-None-Match` and
    /// then writes, and it renames the new bytes into place before it saves their ETag, so two
    /// racing conditional writes could both pass, and a read could pair old bytes with the new
    /// ETag. Conditional writes therefore run one at a time and never beside a read.
    consistency: tokio::sync::RwLock<()>,
}

pub struct S3Server {
    pub addr: SocketAddr,
    pub root: tempfile::TempDir,
    service: S3Service,
    faults: Arc<Faults>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl S3Server {
    /// Serve a fresh directory holding one empty bucket, [`BUCKET`].
    pub async fn start() -> Arc<Self> {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Arc::new(Self {
            addr: listener.local_addr().unwrap(),
            root,
            service,
            faults: Arc::default(),
            task: Mutex::new(None),
        });
        server.serve(listener);
        server
    }

    fn serve(&self, listener: TcpListener) {
        let service = self.service.clone();
        let faults = Arc::clone(&self.faults);
        let task = tokio::spawn(async move {
            let conn_builder = ConnBuilder::new(TokioExecutor::new());
            // Connections belong to this task: aborting it drops every one of them.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let _ = socket.set_nodelay(true);
                let service = service.clone();
                let faults = Arc::clone(&faults);
                let handler = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let service = service.clone();
                        let faults = Arc::clone(&faults);
                        async move {
                            let delay = *faults.delay.lock().unwrap();
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            if let Some(refusal) = wrong_region(&faults, &req) {
                                return Ok(refusal);
                            }
                            let method = req.method().to_string();
                            let target = req
                                .uri()
                                .path_and_query()
                                .map_or("/".to_owned(), |p| p.to_string());
                            let range = req
                                .headers()
                                .get("range")
                                .map(|v| v.to_str().unwrap_or("?").to_owned());
                            let conditional = req.method() == hyper::Method::PUT
                                && (req.headers().contains_key("if-match")
                                    || req.headers().contains_key("if-none-match"));
                            let reading =
                                matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD);
                            // Held until the answer is ready (a body streams from a file
                            // already open).
                            let _exclusive = if conditional {
                                Some(faults.consistency.write().await)
                            } else {
                                None
                            };
                            let _shared = if reading {
                                Some(faults.consistency.read().await)
                            } else {
                                None
                            };
                            let response = hyper::service::Service::call(&service, req).await;
                            if let Ok(r) = &response
                                && !faults.no_log.load(Ordering::Relaxed)
                            {
                                faults.log.lock().unwrap().push(S3Request {
                                    method,
                                    target,
                                    range,
                                    status: r.status().as_u16(),
                                });
                            }
                            response
                        }
                    },
                );
                let conn = conn_builder
                    .serve_connection(TokioIo::new(socket), handler)
                    .into_owned();
                conns.spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Stop answering: the listener closes and every open connection is dropped.
    pub async fn stop(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Answer again, on the same port, over the same data.
    pub async fn resume(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// Live in `region`: requests signed for any other region get AWS's answer,
    /// `400 AuthorizationHeaderMalformed` (s3s-fs itself accepts every region).
    pub fn set_region(&self, region: &str) {
        *self.faults.region.lock().unwrap() = Some(region.to_owned());
    }

    /// Hold every request this long before answering it.
    pub fn set_delay(&self, delay: Duration) {
        *self.faults.delay.lock().unwrap() = delay;
    }

    /// Log every request (the default) or none: a server under sustained load, such as the
    /// benchmark's, turns it off so the log does not grow without bound.
    pub fn set_logging(&self, on: bool) {
        self.faults.no_log.store(!on, Ordering::Relaxed);
    }

    pub fn requests(&self) -> Vec<S3Request> {
        self.faults.log.lock().unwrap().clone()
    }

    pub fn clear_requests(&self) {
        self.faults.log.lock().unwrap().clear();
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bucket's directory: every object is a file at its key.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(BUCKET)
    }

    /// Unfinished multipart uploads s3s-fs keeps (its `.upload*` files beside the buckets).
    pub fn pending_multipart_uploads(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload"))
            .collect()
    }
}

/// AWS's answer to a request signed for the wrong region: the credential scope of a SigV4
/// `Authorization` header is `<key>/<date>/<region>/s3/aws4_request`.
fn wrong_region(
    faults: &Faults,
    req: &hyper::Request<hyper::body::Incoming>,
) -> Option<hyper::Response<s3s::Body>> {
    let expected = faults.region.lock().unwrap().clone()?;
    let auth = req.headers().get("authorization")?.to_str().ok()?;
    let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
    let region = scope.split('/').nth(2)?;
    if region == expected {
        return None;
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AuthorizationHeaderMalformed</Code>\
         <Message>The authorization header is malformed; the region '{region}' is wrong; \
         expecting '{expected}'</Message><Region>{expected}</Region></Error>"
    );
    Some(
        hyper::Response::builder()
            .status(400)
            .header("content-type", "application/xml")
            .body(s3s::Body::from(body))
            .unwrap(),
    )
}
