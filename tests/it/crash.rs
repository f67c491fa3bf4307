//! Crashes and failing writes over real storage: the real binary killed with SIGKILL in the
//! middle of many concurrent uploads and restarted over the same storage; a disk that fills up
//! (a small tmpfs) or a file size limit (RLIMIT_FSIZE) in the middle of an upload; and many
//! concurrent replacements and deletions. Whatever happens, every path holds one whole version
//! that was sent to it (or none, after a deletion), records and blobs agree, and nothing
//! temporary is left behind.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use common::{Backend, Storage, TOKEN, TestServer, fixtures};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

const BIN: &str = env!("CARGO_BIN_EXE_media-origin");

fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

// ---- bodies -------------------------------------------------------------------------------------

/// The media kinds the tests upload, with the type they are declared and served as.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Jpeg,
    Png,
    Pdf,
    Mp4,
}

impl Kind {
    fn of(path: &str) -> Self {
        match path.rsplit('.').next() {
            Some("jpg") => Kind::Jpeg,
            Some("png") => Kind::Png,
            Some("pdf") => Kind::Pdf,
            Some("mp4") => Kind::Mp4,
            _ => panic!("no kind for {path}"),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Pdf => "application/pdf",
            Kind::Mp4 => "video/mp4",
        }
    }

    /// Images stay under WhatsApp's 5 MB; documents and videos may pass S3's 5 MiB part size,
    /// which makes the upload a multipart one (object_store's staging file on the local disk).
    fn sizes(self) -> &'static [usize] {
        match self {
            Kind::Jpeg | Kind::Png => &[3_000, 60_000, 400_000, 1_500_000, 3_000_000],
            Kind::Pdf | Kind::Mp4 => &[5_000, 200_000, 900_000, 2_500_000, 6_000_000],
        }
    }
}

/// Pseudo-random filler shared by every body (generating it per body would cost more than
/// uploading it).
static NOISE: LazyLock<Vec<u8>> = LazyLock::new(|| fixtures::noise(10 << 20, 0x5eed));

/// A valid `kind` body of `len` bytes (at least the real file it starts with), distinct for every
/// `tag`: the fixture, then noise from [`NOISE`] at an offset chosen by `tag`.
fn body(kind: Kind, len: usize, tag: u64) -> Vec<u8> {
    let offset = (tag as usize).wrapping_mul(7919) % (1 << 20);
    if let Kind::Mp4 = kind {
        // The noise goes into a `free` box: an MP4 must be whole boxes to the end.
        let mut b = fixtures::mp4(0, tag);
        let more = len.saturating_sub(b.len() + 8).max(8);
        b.extend_from_slice(&u32::try_from(more + 8).unwrap().to_be_bytes());
        b.extend_from_slice(b"free");
        b.extend_from_slice(&NOISE[offset..offset + more]);
        return b;
    }
    let mut b = match kind {
        Kind::Jpeg => fixtures::jpeg(0, tag),
        Kind::Png => fixtures::png(64, tag),
        Kind::Pdf => fixtures::pdf(64, tag),
        Kind::Mp4 => unreachable!("handled above"),
    };
    let head = b.len();
    b.extend_from_slice(&NOISE[offset..offset + len.saturating_sub(head)]);
    b
}

// ---- talking to a server ---------------------------------------------------------------------

/// The HTTP API of a server (in-process or the binary; the admin API on the same port).
#[derive(Clone)]
struct Api {
    client: Client,
    base: String,
}

impl Api {
    fn new(addr: impl std::fmt::Display) -> Self {
        Self {
            client: Client::builder().no_proxy().build().unwrap(),
            base: format!("http://{addr}"),
        }
    }

    fn admin(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/api{path}", self.base))
            .bearer_auth(TOKEN)
    }

    async fn put(&self, path: &str, body: Vec<u8>) -> reqwest::Result<reqwest::Response> {
        self.admin(Method::PUT, &format!("/assets/{path}"))
            .header("content-type", Kind::of(path).content_type())
            .body(body)
            .send()
            .await
    }

    /// Upload and insist it worked; the record.
    async fn upload(&self, path: &str, body: Vec<u8>) -> Value {
        let r = self.put(path, body).await.unwrap();
        let status = r.status();
        let json: Value = r.json().await.unwrap();
        assert!(status.is_success(), "upload of {path}: {status} {json}");
        json
    }

    async fn delete(&self, path: &str) -> StatusCode {
        self.admin(Method::DELETE, &format!("/assets/{path}"))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// The record the admin API shows, `None` on 404.
    async fn record(&self, path: &str) -> Option<Value> {
        let r = self
            .admin(Method::GET, &format!("/assets/{path}"))
            .send()
            .await
            .unwrap();
        match r.status() {
            StatusCode::OK => Some(r.json().await.unwrap()),
            StatusCode::NOT_FOUND => None,
            other => panic!("GET /api/assets/{path}: {other}"),
        }
    }

    /// Every asset the listing shows under `prefix`, following the cursor.
    async fn list(&self, prefix: &str) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("prefix", prefix.to_owned()), ("limit", "7".to_owned())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let page: Value = self
                .admin(Method::GET, "/assets")
                .query(&query)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for asset in page["assets"].as_array().expect("a listing") {
                let path = asset["path"].as_str().unwrap().to_owned();
                assert!(out.insert(path, asset.clone()).is_none(), "listed twice");
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    /// `GET /media/{path}`: the status, the bytes and the headers that describe them.
    async fn media(&self, path: &str) -> (StatusCode, Vec<u8>, reqwest::header::HeaderMap) {
        let r = self
            .client
            .get(format!("{}/media/{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        (status, r.bytes().await.unwrap().to_vec(), headers)
    }
}

/// `Last-Modified` of a record as the admin API shows it, in epoch seconds.
fn last_modified(record: &Value) -> u64 {
    let date = record["last_modified"].as_str().expect("last_modified");
    httpdate::parse_http_date(date)
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What was sent to each path, and which uploads were acknowledged.
#[derive(Default)]
struct Ledger {
    /// Path → SHA-256 of every body sent to it (before the request went out) → its type.
    sent: BTreeMap<String, HashMap<String, &'static str>>,
    /// Path → (`Last-Modified`, SHA-256) of every upload answered with success.
    acked: BTreeMap<String, Vec<(u64, String)>>,
}

impl Ledger {
    fn send(&mut self, path: &str, body: &[u8]) -> String {
        let sha = sha256(body);
        self.sent
            .entry(path.to_owned())
            .or_default()
            .insert(sha.clone(), Kind::of(path).content_type());
        sha
    }

    fn ack(&mut self, path: &str, record: &Value) {
        self.acked.entry(path.to_owned()).or_default().push((
            last_modified(record),
            record["sha256"].as_str().unwrap().into(),
        ));
    }

    fn all_sent(&self) -> HashSet<String> {
        self.sent.values().flat_map(|m| m.keys().cloned()).collect()
    }
}

/// Check one path against what was sent to it, through the API: either absent (404 on the
/// admin API and on `/media`), or one whole body that was sent, served with the record's hash,
/// size and type, and no older than the last acknowledged upload. Returns the live record.
async fn check_path(api: &Api, ledger: &Ledger, path: &str) -> Option<Value> {
    let sent = &ledger.sent[path];
    let acked = ledger.acked.get(path).cloned().unwrap_or_default();
    let (status, bytes, headers) = api.media(path).await;
    let Some(record) = api.record(path).await else {
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{path}: no record, yet served"
        );
        return None;
    };
    let sha = record["sha256"].as_str().unwrap();
    let Some(ty) = sent.get(sha) else {
        panic!("{path} holds {sha}, which was never sent to it");
    };
    assert_eq!(record["content_type"], *ty, "{path}");
    assert_eq!(status, StatusCode::OK, "{path}");
    assert_eq!(
        sha256(&bytes),
        sha,
        "{path}: the bytes served are not the record's"
    );
    assert_eq!(
        bytes.len() as u64,
        record["size"].as_u64().unwrap(),
        "{path}"
    );
    assert_eq!(headers["content-type"], *ty, "{path}");
    assert_eq!(headers["etag"], format!("\"{sha}\""), "{path}");
    // An acknowledged upload is never lost: what is there now is that one or a later one
    // (every change moves Last-Modified forward).
    if let Some((newest, newest_sha)) = acked.iter().max() {
        let now = last_modified(&record);
        assert!(
            now >= *newest,
            "{path}: Last-Modified {now} is older than an acknowledged upload at {newest}"
        );
        if now == *newest {
            assert_eq!(sha, newest_sha, "{path}: two versions at one Last-Modified");
        }
    }
    Some(record)
}

/// The listing under `prefix` shows exactly the live paths, each as its own GET does.
async fn check_listing(api: &Api, prefix: &str, live: &BTreeMap<String, Value>) {
    let listed = api.list(prefix).await;
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        live.keys().collect::<Vec<_>>(),
        "the listing and the per-path GETs disagree"
    );
    for (path, record) in live {
        for field in ["sha256", "size", "content_type", "last_modified"] {
            assert_eq!(listed[path][field], record[field], "{path}: {field}");
        }
    }
}

// ---- looking at the storage itself -----------------------------------------------------------

/// What the storage holds, read from its files.
#[derive(Debug, Default)]
struct Stored {
    /// Asset path → its record file (live or tombstone).
    records: BTreeMap<String, Value>,
    /// SHA-256 → size of every blob (each already checked to hash to its name).
    blobs: BTreeMap<String, u64>,
    /// Anything under `tmp/`, and object_store's staging files (`name#N`) anywhere.
    leftovers: Vec<String>,
}

/// Read every stored object under `root` (the local root, or the S3 bucket's directory) and
/// check what holds whatever happened: every blob hashes to its name and is bytes that were
/// sent, and every live record names a blob of its size. Orphaned blobs (placed, never
/// committed) are allowed: garbage collection removes them after its grace period.
fn scan_storage(root: &Path, sent: &HashSet<String>) -> Stored {
    let mut stored = Stored::default();
    for file in common::files_under(root) {
        if file.starts_with("tmp/") || file.contains('#') {
            stored.leftovers.push(file);
        } else if let Some(path) = file
            .strip_prefix("assets/")
            .and_then(|f| f.strip_suffix(".json"))
        {
            let record: Value = serde_json::from_slice(&std::fs::read(root.join(&file)).unwrap())
                .unwrap_or_else(|e| panic!("record {file} is not whole: {e}"));
            assert_eq!(record["path"], path, "{file}");
            stored.records.insert(path.to_owned(), record);
        } else if let Some(name) = file.strip_prefix("blobs/sha256/") {
            let (dir, sha) = name.split_once('/').unwrap();
            assert_eq!(dir, &sha[..2], "{file}");
            let bytes = std::fs::read(root.join(&file)).unwrap();
            assert_eq!(sha256(&bytes), sha, "blob {file} is not whole");
            assert!(sent.contains(sha), "blob {file} holds bytes nobody sent");
            stored.blobs.insert(sha.to_owned(), bytes.len() as u64);
        } else {
            assert_eq!(file, "policies.json", "unexpected object in the storage");
        }
    }
    for (path, record) in &stored.records {
        if record["deleted"] == true {
            continue;
        }
        let sha = record["sha256"].as_str().unwrap();
        assert_eq!(
            stored.blobs.get(sha),
            Some(&record["size"].as_u64().unwrap()),
            "{path}: the record's blob is missing or of another size"
        );
    }
    stored
}

// ---- the binary ----------------------------------------------------------------------------

/// The binary, killed (SIGKILL) when dropped, so a failing test leaves no server behind.
type Running = common::Spawned;

/// `media-origin serve` over `storage`, configured from the environment alone, with
/// `storage.stale_upload_secs` at `stale_secs`.
fn serve(storage: &Storage, stale_secs: u64) -> (Running, Api) {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(storage.dir.path())
        .env("MEDIA_ORIGIN_ADMIN_TOKEN", TOKEN)
        .env(
            "MEDIA_ORIGIN__STORAGE__STALE_UPLOAD_SECS",
            stale_secs.to_string(),
        );
    match &storage.s3 {
        None => cmd.env("MEDIA_ORIGIN__STORAGE__PATH", storage.dir.path()),
        Some(s3) => cmd
            .env("MEDIA_ORIGIN__STORAGE__BACKEND", "s3")
            .env("MEDIA_ORIGIN__STORAGE__BUCKET", common::s3::BUCKET)
            .env("MEDIA_ORIGIN__STORAGE__ENDPOINT", s3.endpoint())
            .env("MEDIA_ORIGIN__STORAGE__ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", common::s3::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", common::s3::SECRET_KEY),
    };
    let (child, addr) = common::spawn_binary(&mut cmd);
    (child, Api::new(addr))
}

/// Poll `cond` every 20 ms for up to `limit`.
async fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Multipart uploads s3s-fs holds open (its `.upload-<id>.json` files), by upload ID, each
/// with whether it has parts (which s3s-fs keeps as `.upload_id-<id>.part-<n>`).
fn pending_multipart_uploads(s3_root: &Path) -> BTreeMap<String, bool> {
    let mut pending = BTreeMap::new();
    for entry in std::fs::read_dir(s3_root).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix(".upload_id-") {
            let id = rest.split(".part-").next().unwrap().to_owned();
            pending.insert(id, true);
        } else if let Some(id) = name
            .strip_prefix(".upload-")
            .and_then(|n| n.strip_suffix(".json"))
        {
            pending.entry(id.to_owned()).or_insert(false);
        }
    }
    pending
}

// ---- 1. SIGKILL in the middle of concurrent uploads ----------------------------------------------

const CRASH_PATHS: [&str; 6] = [
    "crash/a.jpg",
    "crash/b.png",
    "crash/c.pdf",
    "crash/d.mp4",
    "crash/e.pdf",
    "crash/sub/f.jpg",
];
const CRASH_TASKS: usize = 16;
const CRASH_ROUNDS: usize = 6;

/// Kill the real binary with SIGKILL while 16 clients upload and replace six paths (bodies up to
/// 6 MB, multipart ones in flight), restart it over the same storage, and check every path,
/// the listing, every record and blob, and that the start-up clean-up left nothing temporary.
async fn a_server_killed_mid_upload_restarts_consistent(backend: Backend) {
    let storage = Storage::new(backend).await;
    let root = storage.root();
    let (server, api) = serve(&storage, 1);
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    // A first version of every path: each must hold it or a later one, whatever happens.
    for (i, path) in CRASH_PATHS.iter().enumerate() {
        let b = body(Kind::of(path), 20_000, 1000 + i as u64);
        ledger.lock().unwrap().send(path, &b);
        let record = api.upload(path, b).await;
        ledger.lock().unwrap().ack(path, &record);
    }

    // One upload that never ends: 6 of its 8 MB are sent, so its first 5 MiB are written (a
    // part and its marker on S3, object_store's staging file on the local disk) and stay
    // half done until the kill, whatever the other uploads are doing then.
    let mut stalled = tokio::net::TcpStream::connect(api.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "PUT /api/assets/crash/stalled.pdf HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/pdf\r\nContent-Length: 8000000\r\n\r\n"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled
        .write_all(&body(Kind::Pdf, 8_000_000, 7)[..6_000_000])
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for t in 0..CRASH_TASKS {
        let (api, ledger) = (api.clone(), Arc::clone(&ledger));
        tasks.push(tokio::spawn(async move {
            for r in 0..CRASH_ROUNDS {
                let path = CRASH_PATHS[(t + r) % CRASH_PATHS.len()];
                let kind = Kind::of(path);
                let size = kind.sizes()[(t * 3 + r) % kind.sizes().len()];
                let b = body(kind, size, (t * 100 + r) as u64);
                ledger.lock().unwrap().send(path, &b);
                // Once the server is killed every request fails: the outcome of the ones in
                // flight is unknown, which the checks allow for.
                let Ok(response) = api.put(path, b).await else {
                    return;
                };
                let status = response.status();
                let Ok(record) = response.json::<Value>().await else {
                    return;
                };
                assert!(status.is_success(), "{path}: {status} {record}");
                ledger.lock().unwrap().ack(path, &record);
            }
        }));
    }

    // Kill once replacements have landed and the stalled upload is half written.
    let replaced = || {
        ledger
            .lock()
            .unwrap()
            .acked
            .values()
            .map(|v| v.len() - 1)
            .sum::<usize>()
    };
    let stalled_half_written = || {
        let tmp = root.join("tmp");
        std::fs::read_dir(&tmp).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                match backend {
                    Backend::Local => {
                        name.contains('#') && e.metadata().is_ok_and(|m| m.len() > 1 << 20)
                    }
                    Backend::S3 => name.ends_with(".multipart"),
                }
            })
        })
    };
    eventually(
        "replacements done and the stalled upload half written",
        Duration::from_secs(20),
        || replaced() >= 3 && stalled_half_written(),
    )
    .await;
    drop(server); // SIGKILL
    drop(stalled);
    for task in tasks {
        task.await.unwrap();
    }

    let leftovers = common::files_under(&root)
        .into_iter()
        .filter(|f| f.starts_with("tmp/") || f.contains('#'))
        .count();
    assert!(
        leftovers > 0,
        "the kill left no interrupted upload to clean up"
    );
    let mut marked = BTreeSet::new();
    if let Some(s3) = &storage.s3 {
        // Drop every connection the dead server left open at S3 (so no request of its lands
        // later), and let every temporary object grow older than stale_upload_secs.
        s3.stop().await;
        s3.resume().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for file in common::files_under(&root) {
            if file.starts_with("tmp/") && file.ends_with(".multipart") {
                marked.insert(std::fs::read_to_string(root.join(file)).unwrap());
            }
        }
        assert!(!marked.is_empty(), "the stalled upload's marker is gone");
    }

    let (_server, api) = serve(&storage, 1);
    let ledger = Arc::into_inner(ledger).unwrap().into_inner().unwrap();
    let total_acked: usize = ledger.acked.values().map(Vec::len).sum();
    eprintln!(
        "{backend:?}: killed after {} acknowledged uploads of {} sent; {leftovers} temporary files left",
        total_acked,
        ledger.sent.values().map(HashMap::len).sum::<usize>(),
    );

    let mut live = BTreeMap::new();
    for path in CRASH_PATHS {
        let record = check_path(&api, &ledger, path)
            .await
            .unwrap_or_else(|| panic!("{path} lost its asset"));
        live.insert(path.to_owned(), record);
    }
    assert_eq!(api.record("crash/stalled.pdf").await, None);
    assert_eq!(
        api.media("crash/stalled.pdf").await.0,
        StatusCode::NOT_FOUND
    );
    check_listing(&api, "crash/", &live).await;
    let stored = scan_storage(&root, &ledger.all_sent());
    assert_eq!(stored.leftovers, Vec::<String>::new(), "left after restart");
    for (path, record) in &live {
        assert_eq!(stored.records[path]["sha256"], record["sha256"], "{path}");
    }
    if let Some(s3) = &storage.s3 {
        // Every upload a marker named is aborted. One the server had started but not yet
        // marked when it died cannot be found (object_store cannot list multipart uploads;
        // the bucket lifecycle rule the README asks for is the safety net): such an upload has
        // no parts, since the first part is only sent once the marker is written.
        for (id, has_parts) in pending_multipart_uploads(s3.root.path()) {
            assert!(
                !marked.contains(&id),
                "the marked multipart upload {id} survived the clean-up"
            );
            assert!(
                !has_parts,
                "the multipart upload {id} has parts but no marker"
            );
            eprintln!("a multipart upload started but not yet marked when killed: {id}");
        }
    }

    // And the restarted server takes uploads again.
    let b = body(Kind::Pdf, 10_000, 99_999);
    let sha = sha256(&b);
    assert_eq!(api.upload("crash/c.pdf", b).await["sha256"], sha.as_str());
}

// ---- 3. concurrent replacements and deletions ------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Op {
    /// Upload a body of this size and tag.
    Put(usize, u64),
    Delete,
}

/// Many concurrent replacements and deletions of one path and of others (the same bytes to two
/// paths among them), with readers of the contended path checking every response as it comes:
/// every write is answered, and the end state is consistent record by record, in the listing
/// and on the storage.
async fn concurrent_replacements_and_deletions_stay_consistent(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let api = Api::new(s.addr);
    let root = s.root();
    let mut ledger = Ledger::default();
    let hot = "race/hot.png";
    let initial = ["race/hot.png", "race/a.jpg", "race/b.jpg", "race/c.pdf"];
    for (i, path) in initial.iter().enumerate() {
        let b = body(Kind::of(path), 10_000, 500 + i as u64);
        ledger.send(path, &b);
        let record = api.upload(path, b).await;
        ledger.ack(path, &record);
    }
    // Each path's writes are serialised and each moves Last-Modified a second forward, so the
    // busiest path bounds the run time: six changes on the hot path, three elsewhere.
    let ops: Vec<(&str, Op)> = vec![
        (hot, Op::Put(300_000, 1)),
        (hot, Op::Put(8_000, 2)),
        (hot, Op::Put(8_000, 2)), // the same bytes twice
        (hot, Op::Delete),
        (hot, Op::Put(1_200_000, 3)),
        (hot, Op::Delete),
        (hot, Op::Delete),
        ("race/a.jpg", Op::Put(50_000, 10)),
        ("race/a.jpg", Op::Delete),
        ("race/a.jpg", Op::Put(700_000, 11)),
        ("race/b.jpg", Op::Put(50_000, 10)), // the same bytes as on a.jpg: one shared blob
        ("race/b.jpg", Op::Delete),
        ("race/b.jpg", Op::Delete),
        ("race/c.pdf", Op::Put(5_500_000, 20)), // a multipart upload on S3
        ("race/c.pdf", Op::Put(20_000, 21)),
        ("race/c.pdf", Op::Delete),
        ("race/new.pdf", Op::Delete),
        ("race/new.pdf", Op::Put(40_000, 30)),
        ("race/new.pdf", Op::Put(90_000, 31)),
        ("race/new.pdf", Op::Delete),
    ];
    let mut planned = Vec::new();
    for (path, op) in &ops {
        let b = match op {
            Op::Put(size, tag) => Some(body(Kind::of(path), *size, *tag)),
            Op::Delete => None,
        };
        if let Some(b) = &b {
            ledger.send(path, b);
        }
        planned.push((*path, b));
    }
    let hot_sent: HashSet<String> = ledger.sent[hot].keys().cloned().collect();

    let start = Arc::new(tokio::sync::Barrier::new(planned.len() + 1));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (api, done, hot_sent) = (api.clone(), Arc::clone(&done), hot_sent.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, bytes, headers) = api.media(hot).await;
                match status {
                    StatusCode::OK => {
                        let sha = sha256(&bytes);
                        assert_eq!(headers["etag"], format!("\"{sha}\""), "a torn read");
                        assert!(hot_sent.contains(&sha), "served bytes never sent");
                        seen += 1;
                    }
                    StatusCode::NOT_FOUND => {}
                    other => panic!("GET {hot}: {other}"),
                }
            }
            seen
        }));
    }
    let mut writers = Vec::new();
    for (path, b) in planned {
        let (api, start) = (api.clone(), Arc::clone(&start));
        writers.push(tokio::spawn(async move {
            start.wait().await;
            match b {
                Some(b) => {
                    let r = api.put(path, b).await.unwrap();
                    let status = r.status();
                    let record: Value = r.json().await.unwrap();
                    assert!(status.is_success(), "PUT {path}: {status} {record}");
                    (path, Some(record))
                }
                None => {
                    let status = api.delete(path).await;
                    assert!(
                        matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_FOUND),
                        "DELETE {path}: {status}"
                    );
                    (path, None)
                }
            }
        }));
    }
    start.wait().await;
    for w in writers {
        if let (path, Some(record)) = w.await.unwrap() {
            ledger.ack(path, &record);
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }

    // Every change of a path moved its Last-Modified: two acknowledged uploads share one only
    // when they are one version (the same bytes uploaded over themselves change nothing).
    for (path, acked) in &ledger.acked {
        let seconds: BTreeSet<u64> = acked.iter().map(|(lm, _)| *lm).collect();
        let versions: BTreeSet<&(u64, String)> = acked.iter().collect();
        assert_eq!(seconds.len(), versions.len(), "{path}: {acked:?}");
    }
    let stored = scan_storage(&root, &ledger.all_sent());
    let mut live = BTreeMap::new();
    for path in ledger.sent.keys() {
        match check_path(&api, &ledger, path).await {
            Some(record) => {
                assert_eq!(stored.records[path]["sha256"], record["sha256"], "{path}");
                live.insert(path.clone(), record);
            }
            None => {
                // Absent: only a tombstone is stored, later than every acknowledged upload.
                let tombstone = &stored.records[path];
                assert_eq!(tombstone["deleted"], true, "{path}: {tombstone}");
                let newest = ledger.acked[path].iter().map(|(lm, _)| *lm).max().unwrap();
                assert!(
                    tombstone["last_modified"].as_u64().unwrap() > newest,
                    "{path}: deleted before its last acknowledged upload"
                );
            }
        }
    }
    check_listing(&api, "race/", &live).await;
    assert_eq!(stored.leftovers, Vec::<String>::new(), "temporaries left");
    if let Some(s3) = &s.storage.s3 {
        assert_eq!(s3.pending_multipart_uploads(), Vec::<String>::new());
    }
    s.stop().await;
}

on_both_backends! {
    a_server_killed_mid_upload_restarts_consistent,
    concurrent_replacements_and_deletions_stay_consistent,
}

// ---- 2. a full disk, a file size limit ------------------------------------------------------------

/// A tmpfs of `size` mounted on a fresh directory; unmounted when dropped, also when a test
/// fails.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a server a failed test left running may still hold files open.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Over storage at `root` that cannot take `too_big` bytes in one file: a first version
/// uploads, then uploads too large to write (one written in a single piece, one in parts)
/// fail with `507 insufficient_storage`, the first version keeps serving, and the storage
/// holds exactly what it held before (no temporary or staging file, no stray blob). Then
/// `then_fits` bytes upload to the same path, which needs the space the failures took back.
async fn check_a_write_that_does_not_fit(
    api: &Api,
    root: &Path,
    too_big: &[usize],
    then_fits: usize,
) {
    let path = "docs/terms.pdf";
    let old = body(Kind::Pdf, 150_000, 1);
    let old_sha = sha256(&old);
    api.upload(path, old).await;
    let before = common::files_under(root);

    for (i, &size) in too_big.iter().enumerate() {
        let r = api
            .put(path, body(Kind::Pdf, size, 10 + i as u64))
            .await
            .unwrap();
        let status = r.status();
        assert_eq!(
            r.headers()["content-type"],
            "application/json",
            "{size} bytes"
        );
        let json: Value = r.json().await.unwrap();
        assert_eq!(
            status,
            StatusCode::INSUFFICIENT_STORAGE,
            "{size} bytes: {json}"
        );
        assert_eq!(json["error"]["code"], "insufficient_storage", "{json}");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains("room"), "{message}");
        assert_eq!(
            common::files_under(root),
            before,
            "after {size} bytes failed"
        );
        let (status, bytes, _) = api.media(path).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(sha256(&bytes), old_sha, "the old version must keep serving");
        assert_eq!(api.record(path).await.unwrap()["sha256"], old_sha.as_str());
    }

    let new = body(Kind::Pdf, then_fits, 3);
    let new_sha = sha256(&new);
    assert_eq!(api.upload(path, new).await["sha256"], new_sha.as_str());
    let (_, bytes, _) = api.media(path).await;
    assert_eq!(sha256(&bytes), new_sha);
}

/// The upload sizes: 4.5 MB is written in one piece when the upload ends, 8 MB as a first
/// 5 MiB part and then the rest.
const TOO_BIG: [usize; 2] = [4_500_000, 8_000_000];

/// A disk that fills up mid-upload (ENOSPC, a 4 MiB tmpfs). Falls back to a file size limit
/// where mounting is not allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_fails_the_upload_with_507_and_keeps_the_old_version() {
    let tmpfs = match Tmpfs::mount("4m") {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "cannot mount a tmpfs ({e}); testing a file size limit (EFBIG) instead of ENOSPC"
            );
            return over_a_file_size_limit().await;
        }
    };
    let root = tmpfs.path();
    let storage = Storage::new(Backend::Local).await;
    let s = TestServer::start_with(storage, |c| c.storage.path = root.clone()).await;
    let api = Api::new(s.addr);
    // 3 MB after the failures needs the space the failed uploads had filled.
    check_a_write_that_does_not_fit(&api, &root, &TOO_BIG, 3_000_000).await;
    s.stop().await;
}

/// The same through the binary under `RLIMIT_FSIZE` (`prlimit --fsize`, with `SIGXFSZ`
/// ignored, so a write past the limit fails with EFBIG instead of killing the process).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_size_limit_fails_the_upload_with_507() {
    over_a_file_size_limit().await;
}

async fn over_a_file_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ; exec prlimit --fsize=3000000 -- \"$@\"")
        .args(["sh", BIN, "serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("MEDIA_ORIGIN_ADMIN_TOKEN", TOKEN)
        .env("MEDIA_ORIGIN__STORAGE__PATH", &root);
    let (child, addr) = common::spawn_binary(&mut cmd);
    let _server = child;
    check_a_write_that_does_not_fit(&Api::new(addr), &root, &TOO_BIG, 2_500_000).await;
}
