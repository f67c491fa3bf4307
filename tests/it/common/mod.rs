//! Test harness: the real server on port 0 over a temporary storage directory or a real S3
//! protocol server's bucket, a reqwest client, and small media fixtures with real magic bytes.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod graph;
pub mod media;
pub mod s3;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use media_origin::Server;
use media_origin::config::{self, Secret, Settings};
use reqwest::{Client, Method, RequestBuilder, Response};
pub use s3::S3Server;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "test-admin-token";

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    S3,
}

/// Generate, for each named `async fn(Backend)`, one test per backend: `local::<name>` and
/// `s3::<name>`. One suite, two backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::common::Backend::Local).await
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::common::Backend::S3).await
                }
            )*
        }
    };
}

/// Where a test's assets live; outlives servers, so restarts and second instances share it.
pub struct Storage {
    pub backend: Backend,
    /// Local: the storage root. S3: the admin token file's directory.
    pub dir: tempfile::TempDir,
    pub s3: Option<Arc<S3Server>>,
}

impl Storage {
    pub async fn new(backend: Backend) -> Arc<Self> {
        let s3 = match backend {
            Backend::Local => None,
            Backend::S3 => Some(S3Server::start().await),
        };
        Arc::new(Self {
            backend,
            dir: tempfile::tempdir().unwrap(),
            s3,
        })
    }

    /// The directory whose files are the stored objects, by key: the local root, or the
    /// S3 server's bucket directory.
    pub fn root(&self) -> PathBuf {
        match &self.s3 {
            Some(s3) => s3.bucket_dir(),
            None => self.dir.path().to_owned(),
        }
    }

    pub fn s3(&self) -> &S3Server {
        self.s3.as_deref().expect("an S3 test")
    }

    /// Point `settings` at this storage.
    pub fn configure(&self, settings: &mut Settings) {
        settings.storage.path = self.dir.path().to_owned();
        if let Some(s3) = &self.s3 {
            let st = &mut settings.storage;
            st.backend = config::Backend::S3;
            st.bucket = Some(s3::BUCKET.into());
            st.region = Some("us-east-1".into());
            st.endpoint = Some(s3.endpoint());
            st.allow_http = true;
            st.access_key_id = Some(s3::ACCESS_KEY.into());
            st.secret_access_key = Some(Secret::new(s3::SECRET_KEY));
        }
    }
}

/// A running server. `stop` shuts it down gracefully; the storage directory outlives it so a
/// test can start another server over the same data.
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    /// Where the admin API is (the same as `addr` unless the test gave it a listener).
    pub admin_addr: std::net::SocketAddr,
    pub base: String,
    pub storage: Arc<Storage>,
    pub client: Client,
    /// The clock media-ID expiry is judged by: `clock.advance(secs)` moves it.
    pub clock: media_origin::clock::Clock,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server on the local backend.
    pub async fn start() -> Self {
        Self::start_on(Backend::Local).await
    }

    pub async fn start_on(backend: Backend) -> Self {
        Self::start_with(Storage::new(backend).await, |_| {}).await
    }

    pub async fn start_with(storage: Arc<Storage>, customize: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = Settings::default();
        settings.server.bind = "127.0.0.1:0".parse().unwrap();
        // One listener for both, so a test reaches /media and /api at one address (tests of
        // the separate admin listener set an address here).
        settings.server.admin_bind = config::AdminBind::Public;
        storage.configure(&mut settings);
        settings.admin.token = Some(Secret::new(TOKEN));
        customize(&mut settings);
        settings.validate().unwrap();
        let clock = media_origin::clock::Clock::system();
        let server = Server::bind_with_clock(&settings, clock.clone())
            .await
            .expect("server binds");
        let addr = server.local_addr();
        let admin_addr = server.admin_addr();
        let base = server.public_base().to_owned();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Self {
            addr,
            admin_addr,
            base,
            storage,
            client: Client::builder().no_proxy().build().unwrap(),
            clock,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// A new server over the same storage directory (after `stop`).
    pub async fn restart(self) -> Self {
        let storage = Arc::clone(&self.storage);
        self.stop().await;
        Self::start_with(storage, |_| {}).await
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    /// The directory whose files are the stored objects (see [`Storage::root`]).
    pub fn root(&self) -> PathBuf {
        self.storage.root()
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    pub fn media(&self, path: &str) -> String {
        self.url(&format!("/media/{path}"))
    }

    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("http://{}/api{path}", self.admin_addr))
            .bearer_auth(TOKEN)
    }

    /// `POST /api/assets` with a multipart form.
    pub async fn post_form(&self, form: reqwest::multipart::Form) -> reqwest::Response {
        self.admin(Method::POST, "/assets")
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// An admin request without a body, answered with JSON (whatever the status).
    pub async fn admin_json(&self, method: Method, path: &str) -> serde_json::Value {
        self.admin(method, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `PUT /api/assets/{path}` with a declared type.
    pub async fn put(&self, path: &str, content_type: &str, body: Vec<u8>) -> Response {
        self.admin(Method::PUT, &format!("/assets/{path}"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Upload and insist it worked; returns the asset record.
    pub async fn upload(&self, path: &str, content_type: &str, body: Vec<u8>) -> serde_json::Value {
        let r = self.put(path, content_type, body).await;
        let status = r.status();
        let json: serde_json::Value = r.json().await.unwrap();
        assert!(
            status.is_success(),
            "upload of {path} failed: {status} {json}"
        );
        json
    }

    pub async fn get(&self, url: &str) -> Response {
        self.client.get(url).send().await.unwrap()
    }

    /// Every file under the storage root, relative, sorted: what a failure must not change.
    pub fn files(&self) -> Vec<String> {
        files_under(&self.root())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// Media fixtures: valid headers followed by a deterministic pseudo-random payload.
pub mod fixtures {
    pub fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn pad(mut head: Vec<u8>, len: usize, seed: u64) -> Vec<u8> {
        let more = len.saturating_sub(head.len());
        head.extend(noise(more, seed));
        head
    }

    /// A real 16x16 baseline JPEG (made by ffmpeg, tests/fixtures/tiny.jpg), then noise after
    /// its end-of-image marker up to `len` (never shorter than the image itself).
    pub fn jpeg(len: usize, seed: u64) -> Vec<u8> {
        pad(
            include_bytes!("../../fixtures/tiny.jpg").to_vec(),
            len,
            seed,
        )
    }

    pub fn png(len: usize, seed: u64) -> Vec<u8> {
        let mut v = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        v.extend_from_slice(&13u32.to_be_bytes());
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&640u32.to_be_bytes());
        v.extend_from_slice(&480u32.to_be_bytes());
        v.extend_from_slice(&[8, 2, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
        pad(v, len, seed)
    }

    pub fn pdf(len: usize, seed: u64) -> Vec<u8> {
        pad(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec(), len, seed)
    }

    /// A real H.264 + AAC-LC MP4 (made by ffmpeg, tests/fixtures/h264_aac.mp4), grown to
    /// `len` with a `free` box of noise at its end (never shorter than the clip itself).
    pub fn mp4(len: usize, seed: u64) -> Vec<u8> {
        with_free_box(include_bytes!("../../fixtures/h264_aac.mp4"), len, seed)
    }

    /// A real AAC-LC M4A (made by ffmpeg, tests/fixtures/aac.m4a), grown like [`mp4`].
    pub fn m4a(len: usize, seed: u64) -> Vec<u8> {
        with_free_box(include_bytes!("../../fixtures/aac.m4a"), len, seed)
    }

    fn with_free_box(base: &[u8], len: usize, seed: u64) -> Vec<u8> {
        let mut v = base.to_vec();
        let more = len.saturating_sub(v.len());
        if more >= 8 {
            v.extend_from_slice(&u32::try_from(more).expect("fixture size").to_be_bytes());
            v.extend_from_slice(b"free");
            v.extend(noise(more - 8, seed));
        }
        v
    }

    /// A static 512x512 VP8X WebP.
    pub fn webp(len: usize, seed: u64) -> Vec<u8> {
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&((len as u32).saturating_sub(8)).to_le_bytes());
        v.extend_from_slice(b"WEBPVP8X");
        v.extend_from_slice(&10u32.to_le_bytes());
        v.extend_from_slice(&[0, 0, 0, 0]);
        v.extend_from_slice(&[0xFF, 0x01, 0x00, 0xFF, 0x01, 0x00]); // 511 = 512 - 1, both axes
        pad(v, len, seed)
    }

    pub fn text(len: usize) -> Vec<u8> {
        b"Terms and conditions apply. "
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect()
    }

    /// Mono Ogg Opus: one page holding the OpusHead packet.
    pub fn ogg_opus(len: usize, seed: u64) -> Vec<u8> {
        let mut v = b"OggS\0\x02".to_vec();
        v.extend_from_slice(&[0; 8]); // granule
        v.extend_from_slice(&[1, 0, 0, 0]); // serial
        v.extend_from_slice(&[0; 4]); // sequence
        v.extend_from_slice(&[0; 4]); // crc
        v.extend_from_slice(&[1, 19]); // one segment of 19 bytes
        v.extend_from_slice(b"OpusHead\x01\x01\x38\x01\x80\xbb\0\0\0\0\0");
        pad(v, len, seed)
    }
}

impl TestServer {
    /// Send `METHOD target` exactly as written (no client-side URL normalisation, which would
    /// resolve `%2e%2e` before it reached the server) and return the status and body.
    pub async fn raw(&self, method: &str, target: &str, extra_headers: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\n{extra_headers}Connection: close\r\n\r\n",
            self.addr
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tcp.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        (status, text)
    }
}

/// Start the real binary (`cmd` names it and its arguments) and wait for the address it logs as
/// serving. Its stderr is read on a thread for the rest of its life.
/// A spawned server process, killed when dropped: a test that fails half-way must not leave
/// its server running (and holding its port and CPU) after the test binary exits.
pub struct Spawned(std::process::Child);

impl std::ops::Deref for Spawned {
    type Target = std::process::Child;

    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // Both fail harmlessly when the test already stopped and reaped it.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spawn_binary(cmd: &mut std::process::Command) -> (Spawned, String) {
    let (child, addr, _) = spawn_binary_logged(cmd);
    (child, addr)
}

/// Every line the binary writes to stderr, kept as it arrives.
pub type Logs = Arc<std::sync::Mutex<Vec<String>>>;

/// [`spawn_binary`], keeping the log (text, or JSON lines). `RUST_LOG` is `info` unless the
/// command sets it.
pub fn spawn_binary_logged(cmd: &mut std::process::Command) -> (Spawned, String, Logs) {
    use std::io::{BufRead, BufReader};
    if !cmd.get_envs().any(|(k, _)| k == "RUST_LOG") {
        cmd.env("RUST_LOG", "info");
    }
    // The admin API on the one port the test reads from the log, unless the test says.
    if !cmd
        .get_envs()
        .any(|(k, _)| k == "MEDIA_ORIGIN__SERVER__ADMIN_BIND")
    {
        cmd.env("MEDIA_ORIGIN__SERVER__ADMIN_BIND", "public");
    }
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let logs: Logs = Arc::default();
    let kept = Arc::clone(&logs);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("addr=").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap().to_owned());
            }
            // `log.format = "json"`: the `serving` line's `addr` field.
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "serving"
                && let Some(addr) = v["addr"].as_str()
            {
                let _ = tx.send(addr.to_owned());
            }
            kept.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the server logs its address");
    (Spawned(child), addr, logs)
}
