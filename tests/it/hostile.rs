//! Hostile requests against the real server: path traversal in every encoding, oversized heads
//! and bodies, malformed multipart and JSON, invalid policies, malformed `Range` and `If-*`
//! headers, unrouted methods, and every shape of a bad bearer token.
//!
//! Each request gets the exact status it must get, and the JSON error body
//! (`{"error":{"code":...,"message":...}}`) wherever the application answers; a request hyper
//! refuses before routing gets hyper's bare status. After each group, storage is proved
//! unchanged: every file under the storage root is the same, sentinel files planted next to
//! (and in) the storage root are untouched, and a known asset still serves its exact bytes.
//!
//! Requests go over a raw socket, written byte for byte: no client normalises `..` or `%2e`,
//! re-encodes a target or refuses a header value before it reaches the server.

use crate::common;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use common::{Backend, Storage, TOKEN, TestServer, files_under, fixtures};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The asset every group checks is still served, byte for byte.
const ASSET: &str = "promo/banner.jpg";
/// Written into the sentinel files: no response may ever contain it.
const MARKER: &str = "HOSTILE-SENTINEL-7f3a9c";
/// `Allow` of the public route.
const PUBLIC_ALLOW: &str = "GET,HEAD";

// ---- raw HTTP/1.1 -------------------------------------------------------------------------

/// A request written byte for byte.
#[derive(Clone)]
struct Req {
    head: Vec<u8>,
    body: Vec<u8>,
    /// `Content-Length` to declare; the body's length when it is not empty and this is unset.
    length: Option<String>,
    /// Shut the write half down after the body (a client that stops mid-body).
    half_close: bool,
}

impl Req {
    fn new(method: &str, target: impl AsRef<[u8]>) -> Self {
        let mut head = method.as_bytes().to_vec();
        head.push(b' ');
        head.extend_from_slice(target.as_ref());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        Self {
            head,
            body: Vec::new(),
            length: None,
            half_close: false,
        }
    }

    fn get(target: impl AsRef<[u8]>) -> Self {
        Self::new("GET", target)
    }

    fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.head.extend_from_slice(name.as_bytes());
        self.head.extend_from_slice(b": ");
        self.head.extend_from_slice(value.as_ref());
        self.head.extend_from_slice(b"\r\n");
        self
    }

    fn auth(self) -> Self {
        self.header("Authorization", format!("Bearer {TOKEN}"))
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("Content-Type", "application/json").body(body)
    }

    fn length(mut self, length: impl ToString) -> Self {
        self.length = Some(length.to_string());
        self
    }

    fn half_close(mut self) -> Self {
        self.half_close = true;
        self
    }

    fn bytes(&self, s: &TestServer) -> Vec<u8> {
        let mut out = self.head.clone();
        out.extend_from_slice(format!("Host: {}\r\n", s.addr).as_bytes());
        let length = self
            .length
            .clone()
            .or_else(|| (!self.body.is_empty()).then(|| self.body.len().to_string()));
        if let Some(length) = length {
            out.extend_from_slice(format!("Content-Length: {length}\r\n").as_bytes());
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out
    }

    /// Send and read the answer; panics without one within 10 s.
    async fn send(&self, s: &TestServer) -> Answer {
        let what = String::from_utf8_lossy(&self.head[..self.head.len().min(120)]).into_owned();
        self.try_send(s, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no answer within 10 s to {what:?}"))
    }

    /// Send and read the answer; `None` when none came within `wait` (or the server closed
    /// the connection without one).
    async fn try_send(&self, s: &TestServer, wait: Duration) -> Option<Answer> {
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        let head = self.bytes(s);
        let body = self.body.clone();
        let half_close = self.half_close;
        let is_head = self.head.starts_with(b"HEAD ");
        let exchange = async move {
            // The server may answer (and close) before reading everything: a failed write is
            // expected then, and the answer is still there to read.
            if tcp.write_all(&head).await.is_ok() && tcp.write_all(&body).await.is_ok() {
                let _ = tcp.flush().await;
            }
            if half_close {
                let _ = tcp.shutdown().await;
            }
            let mut out = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            // Until the answer is whole: the server may keep the connection open a while
            // after it, to drain a body it did not read (lingering close).
            while is_head || !complete(&out) {
                match tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.extend_from_slice(&chunk[..n]),
                }
            }
            out
        };
        let out = tokio::time::timeout(wait, exchange).await.ok()?;
        (!out.is_empty()).then(|| Answer::parse(&out))
    }
}

/// Whether `raw` holds a whole response with a body: all of its `Content-Length`, or its last
/// chunk.
fn complete(raw: &[u8]) -> bool {
    let Some(end) = find(raw, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let rest = &raw[end + 4..];
    if head.contains("\r\ntransfer-encoding: chunked") {
        return rest.ends_with(b"0\r\n\r\n");
    }
    head.split("\r\n")
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|len| rest.len() >= len)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A response read off a raw socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn parse(raw: &[u8]) -> Self {
        let end = find(raw, b"\r\n\r\n").unwrap_or_else(|| {
            panic!(
                "no complete response head in {:?}",
                String::from_utf8_lossy(raw)
            )
        });
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            })
            .collect();
        let rest = &raw[end + 4..];
        let mut answer = Self {
            status,
            headers,
            body: Vec::new(),
        };
        answer.body = if answer
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            dechunk(rest)
        } else if let Some(len) = answer.header("content-length") {
            let len: usize = len.parse().unwrap();
            rest[..len.min(rest.len())].to_vec()
        } else {
            rest.to_vec()
        };
        answer
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {} {:?}", self.status, self.text()))
    }

    /// Assert an application error: exact status, JSON `{"error":{"code","message"}}` with
    /// this code and a message; returns the message.
    fn error(&self, status: u16, code: &str, what: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "{what}: wrong status; body {:?}",
            self.text()
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{what}: error body is not JSON: {:?}",
            self.text()
        );
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "{what}: error without a message: {body}"
        );
        message.to_owned()
    }
}

/// Decode a chunked body (enough for what the server sends).
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(rest, b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        rest = &rest[line_end + 2..];
        if size == 0 || rest.len() < size {
            out.extend_from_slice(&rest[..size.min(rest.len())]);
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[(size + 2).min(rest.len())..];
    }
    out
}

/// A body in chunked framing, in chunks of `chunk` bytes.
fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

// ---- the site under attack ----------------------------------------------------------------

/// A server holding one known asset, with sentinel files planted where a climbing path would
/// land: next to the storage root (outside it) and at the top of the storage root (outside the
/// record namespace `assets/`). `secret.jpg.json` is a copy of a real record, so a path that
/// reached it would be served 200 with the asset's bytes.
struct Site {
    s: TestServer,
    asset: Vec<u8>,
    record: Value,
    /// `s.files()` once the site is set up.
    files: Vec<String>,
    /// The directory holding the storage root: the local root's parent, or the S3 server's
    /// directory of buckets.
    outside: PathBuf,
    /// Every file under `outside` with its bytes and modification time.
    outside_state: Vec<(String, Vec<u8>, SystemTime)>,
    /// Keeps the local root's parent alive.
    _outer: Option<tempfile::TempDir>,
}

/// Every file under `dir` with its bytes and modification time, except those under the storage
/// root `root` (which `s.files()` covers) and the S3 server's metadata files of the objects in
/// its bucket (`.bucket-*`: it writes them beside the bucket, and leaves them behind when an
/// object is deleted).
fn snapshot(dir: &std::path::Path, root: &std::path::Path) -> Vec<(String, Vec<u8>, SystemTime)> {
    let inside = format!("{}/", root.strip_prefix(dir).unwrap().display());
    files_under(dir)
        .into_iter()
        .filter(|f| !f.starts_with(&inside) && !f.starts_with(".bucket-"))
        .map(|f| {
            let p = dir.join(&f);
            let bytes = std::fs::read(&p).unwrap();
            let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
            (f, bytes, mtime)
        })
        .collect()
}

impl Site {
    async fn start(backend: Backend) -> Self {
        let (storage, outer) = match backend {
            Backend::Local => {
                let outer = tempfile::tempdir().unwrap();
                let storage = std::sync::Arc::new(Storage {
                    backend,
                    dir: tempfile::tempdir_in(outer.path()).unwrap(),
                    s3: None,
                });
                (storage, Some(outer))
            }
            Backend::S3 => (Storage::new(backend).await, None),
        };
        let s = TestServer::start_with(storage, |_| {}).await;
        let asset = fixtures::jpeg(10_000, 42);
        let record = s.upload(ASSET, "image/jpeg", asset.clone()).await;
        let root = s.root();
        let outside = root.parent().unwrap().to_owned();
        let record_file = std::fs::read(root.join(format!("assets/{ASSET}.json"))).unwrap();
        std::fs::write(outside.join("secret.txt"), MARKER).unwrap();
        std::fs::write(outside.join("secret.jpg.json"), &record_file).unwrap();
        std::fs::write(root.join("secret.jpg.json"), &record_file).unwrap();
        let files = s.files();
        let outside_state = snapshot(&outside, &root);
        Self {
            s,
            asset,
            record,
            files,
            outside,
            outside_state,
            _outer: outer,
        }
    }

    /// Storage exactly as set up, the sentinels untouched, the asset served byte for byte.
    async fn assert_intact(&self, group: &str) {
        assert_eq!(self.s.files(), self.files, "{group}: storage changed");
        let now = snapshot(&self.outside, &self.s.root());
        assert!(
            now == self.outside_state,
            "{group}: files next to the storage root changed: {:?} (were {:?})",
            now.iter().map(|f| &f.0).collect::<Vec<_>>(),
            self.outside_state.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        let r = Req::get(format!("/media/{ASSET}")).send(&self.s).await;
        assert_eq!(r.status, 200, "{group}: the known asset is gone");
        assert!(
            r.body == self.asset,
            "{group}: the known asset's bytes differ"
        );
        let rec = Req::get(format!("/api/assets/{ASSET}"))
            .auth()
            .send(&self.s)
            .await
            .json();
        for key in ["sha256", "size", "last_modified", "cache_override"] {
            assert_eq!(rec[key], self.record[key], "{group}: record {key} changed");
        }
        let policies = Req::get("/api/policies").auth().send(&self.s).await.json();
        assert_eq!(
            policies["folders"],
            json!([]),
            "{group}: a folder policy appeared"
        );
    }

    /// No answer may carry the sentinel's bytes or climb to a 2xx.
    fn assert_refused(&self, r: &Answer, what: &str) {
        assert!(
            !(200..300).contains(&r.status),
            "{what}: answered {} {:?}",
            r.status,
            r.text()
        );
        assert!(
            find(&r.body, MARKER.as_bytes()).is_none() && find(&r.body, b"root:").is_none(),
            "{what}: the answer leaks a file: {:?}",
            r.text()
        );
    }
}

// ---- 1. path traversal --------------------------------------------------------------------

/// What a hostile path must get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// 400 `invalid_path` from the application.
    InvalidPath,
    /// The path is valid (nothing climbs): 404 `not_found`, no such asset.
    NoAsset,
    /// Refused by hyper before routing: this status, no body.
    Hyper(u16),
}

/// Path tails (after `/media/` or `/api/assets/`) and what each must get. The sentinel
/// `secret.jpg.json` sits one level above `assets/` and `secret.txt` one level above the root.
fn hostile_tails() -> Vec<(Vec<u8>, Expect)> {
    use Expect::*;
    // A segment one byte over MAX_SEGMENT_LEN (200), and one of 200 bytes that is 600 as
    // stored (`é` is stored as `%C3%A9`): a 400, not a storage failure.
    let long_segment = format!("promo/{}.jpg", "a".repeat(197));
    let long_stored_segment = format!("promo/{}", "%C3%A9".repeat(100));
    let long_path = format!("{}x.jpg", "a/".repeat(450)); // 905 bytes
    // 460 bytes of UTF-8, 1380 as stored: past S3's key limit once encoded.
    let long_stored_path = format!("{}x.jpg", "%C3%A9/".repeat(152));
    let very_long_path = format!("{}x.jpg", "abcdefgh/".repeat(500)); // 4.5 KB
    let mut tails: Vec<(String, Expect)> = vec![
        // Plain dot segments.
        ("..".into(), InvalidPath),
        ("../secret.jpg".into(), InvalidPath),
        ("../../secret.txt".into(), InvalidPath),
        ("promo/../../secret.jpg".into(), InvalidPath),
        ("promo/../banner.jpg".into(), InvalidPath),
        (".".into(), InvalidPath),
        ("./secret.jpg".into(), InvalidPath),
        ("promo/./banner.jpg".into(), InvalidPath),
        // Percent-encoded dots, any case, mixed.
        ("%2e%2e/secret.jpg".into(), InvalidPath),
        ("%2E%2E/secret.jpg".into(), InvalidPath),
        ("%2e%2E/%2E%2e/secret.txt".into(), InvalidPath),
        (".%2e/secret.jpg".into(), InvalidPath),
        ("%2e./secret.jpg".into(), InvalidPath),
        ("promo/%2e/banner.jpg".into(), InvalidPath),
        // Encoded separators.
        ("..%2fsecret.jpg".into(), InvalidPath),
        ("..%2f..%2fsecret.txt".into(), InvalidPath),
        ("%2e%2e%2fsecret.jpg".into(), InvalidPath),
        ("%2e%2e%2f%2e%2e%2fsecret.txt".into(), InvalidPath),
        ("promo%2f..%2f..%2fsecret.jpg".into(), InvalidPath),
        ("%2fetc%2fpasswd".into(), InvalidPath),
        ("promo%2f%2fbanner.jpg".into(), InvalidPath),
        // Double encoding: decoded once, the leftover `%` is refused, never decoded again.
        ("%252e%252e/secret.jpg".into(), InvalidPath),
        ("%252e%252e%252fsecret.jpg".into(), InvalidPath),
        ("..%252fsecret.jpg".into(), InvalidPath),
        ("%25252e%25252e/secret.jpg".into(), InvalidPath),
        ("%uff0e%uff0e/secret.jpg".into(), InvalidPath), // IIS-style %u
        // Backslashes, encoded.
        ("..%5csecret.jpg".into(), InvalidPath),
        ("..%5c..%5csecret.txt".into(), InvalidPath),
        ("promo%5c..%5c..%5csecret.jpg".into(), InvalidPath),
        ("%5c%5cserver%5cshare%5csecret.jpg".into(), InvalidPath),
        ("%255c..%255csecret.jpg".into(), InvalidPath),
        // Overlong and invalid UTF-8 for '.', '/' and '\'.
        ("%c0%ae%c0%ae/secret.jpg".into(), InvalidPath),
        ("%c0%ae%c0%ae%c0%afsecret.jpg".into(), InvalidPath),
        ("%e0%80%ae%e0%80%ae/secret.jpg".into(), InvalidPath),
        ("%f0%80%80%ae%f0%80%80%ae/secret.jpg".into(), InvalidPath),
        ("%c0%2e%c0%2e/secret.jpg".into(), InvalidPath),
        ("..%c0%afsecret.jpg".into(), InvalidPath),
        ("..%c1%9csecret.jpg".into(), InvalidPath),
        // Look-alikes are ordinary names: canonical composition (NFC) keeps them, nothing is
        // folded to ASCII, nothing climbs.
        ("%ef%bc%8e%ef%bc%8e/secret.jpg".into(), NoAsset), // FULLWIDTH FULL STOP
        ("%e2%80%a4%e2%80%a4/secret.jpg".into(), NoAsset), // ONE DOT LEADER
        ("%2e%cc%81%2e/secret.jpg".into(), NoAsset),       // '.', COMBINING ACUTE, '.'
        // Invisible and direction-changing characters make a name show as another.
        ("promo/banner.jpg%e2%80%8b".into(), InvalidPath), // ZERO WIDTH SPACE
        ("promo/invoice%e2%80%aeexe.pdf".into(), InvalidPath), // RIGHT-TO-LEFT OVERRIDE
        ("%ef%bb%bfsecret.jpg".into(), InvalidPath),       // BYTE ORDER MARK
        ("..%e2%80%8e/secret.jpg".into(), InvalidPath),    // '..', LEFT-TO-RIGHT MARK
        // NUL and other control characters (and header injection).
        ("secret.jpg%00.jpg".into(), InvalidPath),
        ("%00".into(), InvalidPath),
        ("promo/banner.jpg%00".into(), InvalidPath),
        ("..%00/secret.jpg".into(), InvalidPath),
        ("a%0d%0aSet-Cookie:%20x=y.jpg".into(), InvalidPath),
        ("a%0aLocation:%20x.jpg".into(), InvalidPath),
        ("a%7f.jpg".into(), InvalidPath),
        ("a%c2%85.jpg".into(), InvalidPath), // NEL
        // Absolute paths.
        ("/etc/passwd".into(), InvalidPath),
        ("//etc/passwd".into(), InvalidPath),
        ("/../secret.jpg".into(), InvalidPath),
        // Windows drive letters, UNC and wildcards.
        ("C:/windows/win.ini".into(), InvalidPath),
        ("c%3a%5cwindows%5cwin.ini".into(), InvalidPath),
        ("C%3A/secret.jpg".into(), InvalidPath),
        ("promo/banner.jpg::$DATA".into(), InvalidPath),
        ("promo/*.jpg".into(), InvalidPath),
        ("promo/banner.jpg%3f".into(), InvalidPath),
        ("promo/banner.jpg%23".into(), InvalidPath),
        ("promo/%3c%3e%7c%22.jpg".into(), InvalidPath),
        // Empty segments and trailing slashes.
        ("promo/".into(), InvalidPath),
        ("promo//banner.jpg".into(), InvalidPath),
        ("promo/banner.jpg/".into(), InvalidPath),
        // A folder that would collide with the record layout.
        ("promo/banner.jpg.json/x.jpg".into(), InvalidPath),
        // Over the limits of src/store/path.rs.
        (long_segment, InvalidPath),
        (long_stored_segment, InvalidPath),
        (long_path, InvalidPath),
        (long_stored_path, InvalidPath),
        (very_long_path, InvalidPath),
    ];
    // Written raw: bytes a URI may not hold. hyper passes a raw backslash and raw non-ASCII
    // bytes through as they are (the path gate judges them) and refuses DEL itself (400, no
    // body).
    let raw: Vec<(Vec<u8>, Expect)> = vec![
        (b"..\\secret.jpg".to_vec(), InvalidPath),
        (b"promo\\..\\..\\secret.jpg".to_vec(), InvalidPath),
        (b"\\\\server\\share\\secret.jpg".to_vec(), InvalidPath),
        (b"C:\\windows\\win.ini".to_vec(), InvalidPath),
        ("caf\u{e9}/../secret.jpg".as_bytes().to_vec(), InvalidPath),
        (b"caf\xe9/x.jpg".to_vec(), Hyper(400)), // Latin-1: not UTF-8
        (b"a\x7f.jpg".to_vec(), Hyper(400)),
    ];
    tails.sort_by(|a, b| a.0.cmp(&b.0));
    tails
        .into_iter()
        .map(|(t, e)| (t.into_bytes(), e))
        .chain(raw)
        .collect()
}

fn target(prefix: &str, tail: &[u8]) -> Vec<u8> {
    [prefix.as_bytes(), tail].concat()
}

fn check(site: &Site, r: &Answer, expect: Expect, what: &str) {
    site.assert_refused(r, what);
    match expect {
        Expect::InvalidPath => {
            r.error(400, "invalid_path", what);
        }
        Expect::NoAsset => {
            r.error(404, "not_found", what);
        }
        Expect::Hyper(status) => {
            assert_eq!(r.status, status, "{what}: {:?}", r.text());
            assert!(r.body.is_empty(), "{what}: {:?}", r.text());
        }
    }
}

/// A HEAD answer carries no body to check the code of: the status alone.
fn check_head(site: &Site, r: &Answer, expect: Expect, what: &str) {
    site.assert_refused(r, what);
    let status = match expect {
        Expect::InvalidPath => 400,
        Expect::NoAsset => 404,
        Expect::Hyper(s) => s,
    };
    assert_eq!(r.status, status, "{what}");
    assert!(r.body.is_empty(), "{what}: a HEAD answer with a body");
}

async fn traversal_on_public_get_and_head_reads_nothing_outside(backend: Backend) {
    let site = Site::start(backend).await;
    let s = &site.s;
    // Controls: decoding happens once, so an encoded ordinary character still names the asset.
    for ok in ["/media/promo/banner.jpg", "/media/promo/banner%2ejpg"] {
        let r = Req::get(ok).send(s).await;
        assert_eq!((r.status, r.body == site.asset), (200, true), "{ok}");
    }
    for (tail, expect) in hostile_tails() {
        let t = target("/media/", &tail);
        let what = format!("GET {}", String::from_utf8_lossy(&t));
        check(&site, &Req::get(&t).send(s).await, expect, &what);
        let what = format!("HEAD {}", String::from_utf8_lossy(&t));
        check_head(&site, &Req::new("HEAD", &t).send(s).await, expect, &what);
    }
    // Targets the router cannot match: 404 from the fallback, JSON like every other error.
    for t in [
        "//etc/passwd",
        "/media",
        "/media/",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/media%2fpromo%2fbanner.jpg",
        "/media%2f..%2fsecret.jpg",
        "/MEDIA/promo/banner.jpg",
        "*",
    ] {
        let r = Req::get(t).send(s).await;
        site.assert_refused(&r, t);
        r.error(404, "not_found", t);
    }
    // The absolute form: the path is checked exactly as in origin form.
    for t in [
        "http://evil.example/media/../secret.jpg",
        "http://evil.example/media/%2e%2e/secret.jpg",
    ] {
        let r = Req::get(t).send(s).await;
        site.assert_refused(&r, t);
        r.error(400, "invalid_path", t);
    }
    // A request-target over any URI length hyper parses: refused before routing (414; 431 if
    // the head limit trips first, both answered by hyper without a body).
    let huge = format!("/media/{}", "a/".repeat(40_000));
    let r = Req::get(&huge).send(s).await;
    site.assert_refused(&r, "70 KB target");
    assert!(
        [414, 431].contains(&r.status) && r.body.is_empty(),
        "70 KB target: {} {:?}",
        r.status,
        r.text()
    );
    site.assert_intact("public traversal").await;
}

async fn traversal_on_admin_routes_writes_and_reads_nothing_outside(backend: Backend) {
    let site = Site::start(backend).await;
    let s = &site.s;
    let jpeg = fixtures::jpeg(2_000, 9);
    let policy = br#"{"cache_control":"no-store"}"#.to_vec();
    for (tail, expect) in hostile_tails() {
        let t = target("/api/assets/", &tail);
        let shown = String::from_utf8_lossy(&t).into_owned();
        let mut requests = vec![
            Req::get(&t).auth(),
            Req::new("DELETE", &t).auth(),
            Req::new("PATCH", &t).auth().json(policy.clone()),
        ];
        // A look-alike name is a valid path: uploading to it would rightly succeed.
        if expect != Expect::NoAsset {
            requests.push(
                Req::new("PUT", &t)
                    .auth()
                    .header("Content-Type", "image/jpeg")
                    .body(jpeg.clone()),
            );
            requests.push(Req::new("PUT", &t).auth().body(jpeg.clone()));
        }
        for req in requests {
            let method = String::from_utf8_lossy(
                &req.head[..req.head.iter().position(|&b| b == b' ').unwrap()],
            )
            .into_owned();
            let r = req.send(s).await;
            check(&site, &r, expect, &format!("{method} {shown}"));
        }
        // Folder rules: the same gate, except that surrounding slashes are trimmed by design
        // (`/promo/` means `promo`; after the one decoding, so `%2F` too: `%2Fetc%2Fpasswd` is
        // the folder `etc/passwd`) and a look-alike is a valid folder name: setting a rule for
        // those would rightly succeed.
        let decoded: Vec<u8> = percent_encoding::percent_decode(&tail).collect();
        if decoded.starts_with(b"/") || decoded.ends_with(b"/") || expect == Expect::NoAsset {
            continue;
        }
        let t = target("/api/policies/", &tail);
        let shown = String::from_utf8_lossy(&t).into_owned();
        let r = Req::new("PUT", &t)
            .auth()
            .json(policy.clone())
            .send(s)
            .await;
        check(&site, &r, expect, &format!("PUT {shown}"));
        let r = Req::new("DELETE", &t).auth().send(s).await;
        check(&site, &r, expect, &format!("DELETE {shown}"));
    }
    // Paths inside JSON and forms, and listing prefixes, go through the same gate.
    for path in [
        "../secret.jpg",
        "promo/../../secret.txt",
        "/etc/passwd",
        "..\\secret.jpg",
        "C:\\windows\\win.ini",
        "%2e%2e/secret.jpg",
        "a\u{0}b.jpg",
        "promo/",
        "",
    ] {
        let body = json!({"path": path}).to_string();
        let r = Req::new("POST", "/api/whatsapp/media")
            .auth()
            .json(body)
            .send(s)
            .await;
        site.assert_refused(&r, path);
        r.error(400, "invalid_path", &format!("whatsapp/media {path:?}"));
    }
    for prefix in [
        "..%2f",
        "%2e%2e%2f",
        "..",
        "..%5c",
        "promo%2f..%2f..",
        "%252e%252e",
    ] {
        let t = format!("/api/assets?prefix={prefix}");
        let r = Req::get(&t).auth().send(s).await;
        site.assert_refused(&r, &t);
        r.error(400, "invalid_path", &t);
    }
    site.assert_intact("admin traversal").await;

    // A form's file name loses everything up to its last separator: `folder` plus a climbing
    // file name lands inside the folder, and a bare `..` is refused.
    for (filename, expect) in [
        ("..", Some(400)),
        ("../..", Some(400)),
        ("..\\..", Some(400)),
        ("../../secret.jpg", None),
        ("..\\..\\secret.jpg", None),
    ] {
        let body = form_body(&[
            Part::text("folder", "promo"),
            Part::file("file", filename, "image/jpeg", &jpeg),
        ]);
        let r = post_form(s, body).await;
        match expect {
            Some(status) => {
                r.error(
                    status,
                    "invalid_path",
                    &format!("form file name {filename:?}"),
                );
            }
            None => {
                assert!(
                    matches!(r.status, 200 | 201),
                    "{filename:?}: {} {:?}",
                    r.status,
                    r.text()
                );
                assert_eq!(r.json()["path"], "promo/secret.jpg", "{filename:?}");
            }
        }
    }
    let stored: Vec<String> = s
        .files()
        .into_iter()
        .filter(|f| !site.files.contains(f))
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored.contains(&"assets/promo/secret.jpg.json".to_owned()));
    assert!(stored.iter().any(|f| f.starts_with("blobs/sha256/")));
    for sentinel in ["secret.txt", "secret.jpg.json"] {
        let now = std::fs::read(site.outside.join(sentinel)).unwrap();
        let then = &site
            .outside_state
            .iter()
            .find(|f| f.0 == sentinel)
            .unwrap()
            .1;
        assert!(now == *then, "{sentinel} changed");
    }
}

// ---- 2. oversized heads -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_are_431() {
    let s = TestServer::start().await;
    let asset = fixtures::jpeg(1_000, 3);
    s.upload(ASSET, "image/jpeg", asset.clone()).await;
    let target = format!("/media/{ASSET}");

    // Ordinary heads are fine.
    let mut req = Req::get(&target).header("X-Big", "v".repeat(4 * 1024));
    for i in 0..20 {
        req = req.header(&format!("X-Header-{i}"), "v".repeat(100));
    }
    let r = req.send(&s).await;
    assert_eq!((r.status, r.body == asset), (200, true));

    let mut failures = Vec::new();
    // One header of 100 KB.
    let big = "v".repeat(100 * 1024);
    for (what, req) in [
        (
            "public GET, X-Big 100 KB",
            Req::get(&target).header("X-Big", &big),
        ),
        (
            "public GET, Cookie 100 KB",
            Req::get(&target).header("Cookie", &big),
        ),
        (
            "admin GET, Authorization 100 KB",
            Req::get("/api/policies").header("Authorization", format!("Bearer {big}")),
        ),
    ] {
        let r = req.send(&s).await;
        if r.status != 431 {
            failures.push(format!("{what}: {} (expected 431)", r.status));
        }
    }
    // 200 and 1000 headers.
    for count in [200, 1000] {
        let mut req = Req::get(&target);
        for i in 0..count {
            req = req.header(&format!("X-Header-{i}"), "v");
        }
        let r = req.send(&s).await;
        if r.status != 431 {
            failures.push(format!("{count} headers: {} (expected 431)", r.status));
        }
    }
    // The server still serves.
    let r = Req::get(&target).send(&s).await;
    assert_eq!((r.status, r.body == asset), (200, true));
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---- 3. oversized bodies ------------------------------------------------------------------

async fn oversized_bodies_are_413_and_store_nothing(backend: Backend) {
    let site = Site::start(backend).await;
    let s = &site.s;
    let quick = Duration::from_secs(3);

    // Content-Length over the limit: 413 before a single body byte is sent.
    for (ctype, length, limit) in [
        ("image/jpeg", 5_000_001u64, "5000000"),
        ("image/webp", 500_001, "500000"),
        ("video/mp4", 16_000_001, "16000000"),
        ("application/pdf", 100_000_001, "100000000"),
        ("application/octet-stream", 100_000_001, "100000000"),
        ("image/jpeg", 1_000_000_000_000_000, "5000000"),
    ] {
        let what = format!("PUT {ctype} Content-Length {length}");
        let r = Req::new("PUT", "/api/assets/promo/big.jpg")
            .auth()
            .header("Content-Type", ctype)
            .length(length)
            .try_send(s, quick)
            .await
            .unwrap_or_else(|| panic!("{what}: no answer before the body"));
        let msg = r.error(413, "too_large", &what);
        assert!(
            msg.contains(&length.to_string()) && msg.contains(limit),
            "{what}: {msg}"
        );
    }
    // Without the token, the 401 comes first, whatever the declared length: limits are for
    // those who may upload.
    for (method, target, length) in [
        ("PUT", "/api/assets/promo/big.jpg", 100_000_001),
        ("POST", "/api/assets", 200_000_000),
        ("PATCH", "/api/assets/promo/big.jpg", 100_000),
        ("PUT", "/api/policies/promo", 100_000),
    ] {
        let r = Req::new(method, target)
            .header("Content-Type", "image/jpeg")
            .length(length)
            .try_send(s, quick)
            .await
            .unwrap_or_else(|| panic!("{method} {target}: no answer before the body"));
        r.error(
            401,
            "unauthorized",
            &format!("{method} {target} without the token"),
        );
    }
    // A body streamed past its kind's limit (chunked, so no length is known up front): 413
    // once the limit is crossed, and the staged bytes are gone.
    for (path, ctype, body) in [
        (
            "promo/streamed.webp",
            "image/webp",
            fixtures::webp(100_001, 5),
        ),
        (
            "promo/streamed.jpg",
            "image/jpeg",
            fixtures::jpeg(5_000_001, 6),
        ),
    ] {
        let what = format!("chunked PUT {ctype} of {} bytes", body.len());
        let r = Req::new("PUT", format!("/api/assets/{path}"))
            .auth()
            .header("Content-Type", ctype)
            .header("Transfer-Encoding", "chunked")
            .body(chunked(&body, 16 * 1024))
            .send(s)
            .await;
        r.error(413, "too_large", &what);
    }
    // A Content-Length the framing cannot hold: hyper refuses the head (400, no body).
    for (what, req) in [
        (
            "Content-Length over u64",
            Req::new("PUT", "/api/assets/promo/x.jpg")
                .auth()
                .header("Content-Type", "image/jpeg")
                .length("99999999999999999999999"),
        ),
        (
            "negative Content-Length",
            Req::new("PUT", "/api/assets/promo/x.jpg")
                .auth()
                .header("Content-Type", "image/jpeg")
                .length("-1"),
        ),
        (
            "two different Content-Lengths",
            Req::new("PUT", "/api/assets/promo/x.jpg")
                .auth()
                .header("Content-Type", "image/jpeg")
                .header("Content-Length", "10")
                .length("20"),
        ),
    ] {
        let r = req.send(s).await;
        assert_eq!((r.status, r.body.len()), (400, 0), "{what}: {:?}", r.text());
    }
    // Framing meant to smuggle: Transfer-Encoding beside Content-Length, or a coding that is
    // not chunked last.
    for (what, te) in [
        ("gzip after chunked", "chunked, gzip"),
        ("an unknown coding", "xchunked"),
    ] {
        let r = Req::new("PUT", "/api/assets/promo/smuggled.webp")
            .auth()
            .header("Content-Type", "image/webp")
            .header("Transfer-Encoding", te)
            .body(chunked(&fixtures::webp(2_000, 8), 512))
            .send(s)
            .await;
        assert_eq!((r.status, r.body.len()), (400, 0), "{what}: {:?}", r.text());
    }
    // Content-Length beside Transfer-Encoding: the body is framed by the chunked coding alone,
    // and the connection is closed after the answer (RFC 9112 §6.3), so what a front proxy
    // trusting Content-Length would take for a body can never be answered as a second request.
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    let host = s.addr;
    let pipelined = format!(
        "GET /media/{ASSET} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
         GET /media/promo/smuggled.jpg HTTP/1.1\r\nHost: {host}\r\n\r\n"
    );
    tcp.write_all(pipelined.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out))
        .await
        .expect("the connection is closed after a Content-Length + Transfer-Encoding request")
        .unwrap();
    let answers = String::from_utf8_lossy(&out).matches("HTTP/1.1 ").count();
    let first = Answer::parse(&out);
    assert_eq!((first.status, answers), (200, 1), "{:?}", first.text());
    assert!(first.body == site.asset);
    // The same before-the-body refusal for the other routes that buffer or stream a body:
    // a multipart form and a JSON document over any size the server accepts.
    let form_req = Req::new("POST", "/api/assets")
        .auth()
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .length(200_000_000);
    let json_req = Req::new("PUT", "/api/policies/promo")
        .auth()
        .header("Content-Type", "application/json")
        .length(200_000_000);
    let (form, json_put) = tokio::join!(form_req.try_send(s, quick), json_req.try_send(s, quick));
    let mut missing = Vec::new();
    for (what, r) in [
        ("POST /api/assets, Content-Length 200 MB", form),
        ("PUT /api/policies/promo, Content-Length 200 MB", json_put),
    ] {
        match r {
            Some(r) => {
                r.error(413, "too_large", what);
            }
            None => missing.push(format!(
                "{what}: no answer within 3 s (expected 413 before the body)"
            )),
        }
    }
    // A form whose file part streams past its kind's limit.
    let body = form_body(&[
        Part::text("path", "promo/big.webp"),
        Part::file(
            "file",
            "big.webp",
            "image/webp",
            &fixtures::webp(100_001, 7),
        ),
    ]);
    post_form(s, body)
        .await
        .error(413, "too_large", "form file over the limit");

    site.assert_intact("oversized bodies").await;
    assert!(missing.is_empty(), "{missing:#?}");
}

// ---- 4. malformed multipart ---------------------------------------------------------------

const BOUNDARY: &str = "HostileBoundary42";

enum Part<'a> {
    Text(&'a str, String),
    File(&'a str, &'a str, &'a str, &'a [u8]),
}

impl<'a> Part<'a> {
    fn text(name: &'a str, value: impl Into<String>) -> Self {
        Part::Text(name, value.into())
    }

    fn file(name: &'a str, filename: &'a str, ctype: &'a str, bytes: &'a [u8]) -> Self {
        Part::File(name, filename, ctype, bytes)
    }
}

fn form_body(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => {
                out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                );
                out.extend_from_slice(value.as_bytes());
            }
            Part::File(name, filename, ctype, bytes) => {
                out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; \
                         filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(bytes);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

fn form_request(body: Vec<u8>) -> Req {
    Req::new("POST", "/api/assets")
        .auth()
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
}

async fn post_form(s: &TestServer, body: Vec<u8>) -> Answer {
    form_request(body).send(s).await
}

async fn malformed_multipart_is_400_and_stores_nothing(backend: Backend) {
    let site = Site::start(backend).await;
    let s = &site.s;
    let jpeg = fixtures::jpeg(3_000, 11);
    let complete = form_body(&[
        Part::text("path", "promo/new.jpg"),
        Part::file("file", "new.jpg", "image/jpeg", &jpeg),
    ]);
    let without_close = complete
        .strip_suffix(format!("--{BOUNDARY}--\r\n").as_bytes())
        .unwrap()
        .to_vec();
    // The text part, then the head of the file part, and the body ends there.
    let part_head_only = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\npromo/new.jpg\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"new.jpg\"\r\n\
         Content-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();

    let with_type = |ctype: &str, body: Vec<u8>| {
        Req::new("POST", "/api/assets")
            .auth()
            .header("Content-Type", ctype)
            .body(body)
    };
    let many_parts: Vec<Part<'_>> = (0..2000).map(|_| Part::text("cache", "no-store")).collect();
    let cases: Vec<(&str, Req, u16, &str)> = vec![
        (
            "no boundary parameter",
            with_type("multipart/form-data", complete.clone()),
            400,
            "malformed_multipart",
        ),
        (
            "empty boundary",
            with_type("multipart/form-data; boundary=", complete.clone()),
            400,
            "malformed_multipart",
        ),
        (
            "wrong boundary",
            with_type("multipart/form-data; boundary=Other", complete.clone()),
            400,
            "malformed_multipart",
        ),
        (
            "not form-data",
            with_type(
                &format!("multipart/mixed; boundary={BOUNDARY}"),
                complete.clone(),
            ),
            400,
            "malformed_multipart",
        ),
        (
            "no Content-Type",
            Req::new("POST", "/api/assets")
                .auth()
                .body(complete.clone()),
            400,
            "malformed_multipart",
        ),
        (
            "empty body",
            form_request(Vec::new()),
            400,
            "malformed_multipart",
        ),
        (
            "garbage body",
            form_request(b"garbage".to_vec()),
            400,
            "malformed_multipart",
        ),
        (
            "no closing delimiter",
            form_request(without_close.clone()),
            400,
            "upload_interrupted",
        ),
        (
            "a part head and nothing after it",
            form_request(part_head_only.clone()),
            400,
            "upload_interrupted",
        ),
        (
            "no file part",
            form_request(form_body(&[Part::text("path", "promo/new.jpg")])),
            400,
            "invalid_form",
        ),
        (
            "two file parts",
            form_request(form_body(&[
                Part::text("path", "promo/new.jpg"),
                Part::file("file", "a.jpg", "image/jpeg", &jpeg),
                Part::file("file", "b.jpg", "image/jpeg", &jpeg),
            ])),
            400,
            "invalid_form",
        ),
        (
            "a 1 MB text field",
            form_request(form_body(&[
                Part::text("path", "a".repeat(1024 * 1024)),
                Part::file("file", "new.jpg", "image/jpeg", &jpeg),
            ])),
            400,
            "invalid_form",
        ),
        (
            "a 1 MB text field after the file",
            form_request(form_body(&[
                Part::file("file", "new.jpg", "image/jpeg", &jpeg),
                Part::text("cache", "x".repeat(1024 * 1024)),
            ])),
            400,
            "invalid_form",
        ),
        (
            "an unknown field",
            form_request(form_body(&[
                Part::text("path", "promo/new.jpg"),
                Part::text("../../secret", "x"),
                Part::file("file", "new.jpg", "image/jpeg", &jpeg),
            ])),
            400,
            "invalid_form",
        ),
        (
            "a part without Content-Disposition",
            form_request(
                [
                    format!("--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\npromo/new.jpg\r\n")
                        .into_bytes(),
                    complete.clone(),
                ]
                .concat(),
            ),
            400,
            "invalid_form",
        ),
        (
            "2000 text parts and no file",
            form_request(form_body(&many_parts)),
            400,
            "invalid_form",
        ),
        (
            "path and folder both",
            form_request(form_body(&[
                Part::text("path", "promo/new.jpg"),
                Part::text("folder", "promo"),
                Part::file("file", "new.jpg", "image/jpeg", &jpeg),
            ])),
            400,
            "invalid_form",
        ),
        (
            "whatsapp not a boolean",
            form_request(form_body(&[
                Part::text("path", "promo/new.jpg"),
                Part::text("whatsapp", "yes"),
                Part::file("file", "new.jpg", "image/jpeg", &jpeg),
            ])),
            400,
            "invalid_form",
        ),
        (
            "a text field that is not UTF-8",
            form_request(
                [
                    format!(
                        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n"
                    )
                    .into_bytes(),
                    b"promo/\xff\xfe.jpg\r\n".to_vec(),
                    form_body(&[Part::file("file", "new.jpg", "image/jpeg", &jpeg)]),
                ]
                .concat(),
            ),
            400,
            "invalid_form",
        ),
    ];
    for (what, req, status, code) in cases {
        let r = req.send(s).await;
        r.error(status, code, what);
        assert_eq!(s.files(), site.files, "{what}: storage changed");
    }

    // Truncated: the head promises more than is sent, then the client stops sending. The
    // server must notice the early end and store nothing; it answers 400 when it still can.
    for (what, sent) in [
        (
            "truncated inside the file part",
            complete[..complete.len() - 500].to_vec(),
        ),
        ("truncated inside a text field", complete[..60].to_vec()),
        ("truncated before any part", Vec::new()),
    ] {
        let r = form_request(sent)
            .length(complete.len() + 10_000)
            .half_close()
            .send(s)
            .await;
        let code = r.json()["error"]["code"].as_str().unwrap_or("").to_owned();
        assert!(
            r.status == 400
                && ["upload_interrupted", "malformed_multipart"].contains(&code.as_str()),
            "{what}: {} {:?}",
            r.status,
            r.text()
        );
        assert_eq!(s.files(), site.files, "{what}: storage changed");
    }
    site.assert_intact("malformed multipart").await;
    // The well-formed form works, so the failures above were about the framing.
    let r = post_form(s, complete).await;
    assert_eq!(r.status, 201, "{:?}", r.text());
    let r = Req::get("/media/promo/new.jpg").send(s).await;
    assert_eq!((r.status, r.body == jpeg), (200, true));
    // So does a part with a 100 KB header line: framing, not size, is checked there.
    let r = form_request(
        [
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"path\"\r\n\
                 X-Pad: {}\r\n\r\npromo/padded.jpg\r\n",
                "p".repeat(100 * 1024)
            )
            .into_bytes(),
            form_body(&[Part::file("file", "new.jpg", "image/jpeg", &jpeg)]),
        ]
        .concat(),
    )
    .send(s)
    .await;
    assert_eq!(r.status, 201, "{:?}", r.text());
}

// ---- 5. invalid JSON ----------------------------------------------------------------------

async fn invalid_json_is_refused_with_json_errors(backend: Backend) {
    let site = Site::start(backend).await;
    let s = &site.s;
    let nested = format!(
        "{{\"cache_control\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let bad_bodies: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"cache_control=no-store".to_vec()),
        ("empty", Vec::new()),
        ("truncated", br#"{"cache_control": "no-st"#.to_vec()),
        (
            "trailing garbage",
            br#"{"cache_control": "no-store"} x"#.to_vec(),
        ),
        ("a string", br#""no-store""#.to_vec()),
        ("an array", br#"[{"cache_control": "no-store"}]"#.to_vec()),
        ("null", b"null".to_vec()),
        ("a number", br#"{"cache_control": 5}"#.to_vec()),
        ("a boolean", br#"{"cache_control": true}"#.to_vec()),
        (
            "an object",
            br#"{"cache_control": {"max-age": 5}}"#.to_vec(),
        ),
        (
            "an array value",
            br#"{"cache_control": ["no-store"]}"#.to_vec(),
        ),
        (
            "an unknown field",
            br#"{"cache_control": "no-store", "x": 1}"#.to_vec(),
        ),
        (
            "only an unknown field",
            br#"{"cache": "no-store"}"#.to_vec(),
        ),
        ("no fields", b"{}".to_vec()),
        (
            "not UTF-8",
            b"{\"cache_control\": \"no-\xff\xfe\"}".to_vec(),
        ),
        (
            "a byte order mark",
            b"\xef\xbb\xbf{\"cache_control\": \"no-store\"}".to_vec(),
        ),
        ("10,000 levels of nesting", nested.into_bytes()),
    ];
    let asset_route = format!("/api/assets/{ASSET}");
    for (what, body) in &bad_bodies {
        let r = Req::new("PUT", "/api/policies/promo")
            .auth()
            .json(body.clone())
            .send(s)
            .await;
        r.error(400, "invalid_json", &format!("PUT policies, {what}"));
        let r = Req::new("PATCH", &asset_route)
            .auth()
            .json(body.clone())
            .send(s)
            .await;
        r.error(400, "invalid_json", &format!("PATCH asset, {what}"));
    }
    // `null` clears an override but is no folder rule.
    let r = Req::new("PUT", "/api/policies/promo")
        .auth()
        .json(br#"{"cache_control": null}"#.to_vec())
        .send(s)
        .await;
    r.error(400, "invalid_json", "PUT policies, null");

    let media_bodies: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"path=promo/banner.jpg".to_vec()),
        ("empty", Vec::new()),
        ("no fields", b"{}".to_vec()),
        ("a number path", br#"{"path": 5}"#.to_vec()),
        ("a null path", br#"{"path": null}"#.to_vec()),
        (
            "force not a boolean",
            br#"{"path": "promo/banner.jpg", "force": "yes"}"#.to_vec(),
        ),
        (
            "a number phone",
            br#"{"path": "promo/banner.jpg", "phone_number_id": 106540352242922}"#.to_vec(),
        ),
        (
            "an unknown field",
            br#"{"path": "promo/banner.jpg", "x": 1}"#.to_vec(),
        ),
        ("an array", br#"["promo/banner.jpg"]"#.to_vec()),
    ];
    for (what, body) in &media_bodies {
        let r = Req::new("POST", "/api/whatsapp/media")
            .auth()
            .json(body.clone())
            .send(s)
            .await;
        r.error(400, "invalid_json", &format!("whatsapp/media, {what}"));
    }
    let refresh_bodies: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"prefix=promo".to_vec()),
        ("empty", Vec::new()),
        ("a number prefix", br#"{"prefix": 5}"#.to_vec()),
        (
            "negative seconds",
            br#"{"expiring_within_secs": -1}"#.to_vec(),
        ),
        (
            "fractional seconds",
            br#"{"expiring_within_secs": 1.5}"#.to_vec(),
        ),
        (
            "seconds over u64",
            br#"{"expiring_within_secs": 99999999999999999999999}"#.to_vec(),
        ),
        (
            "an unknown field",
            br#"{"prefix": "promo/", "x": 1}"#.to_vec(),
        ),
    ];
    for (what, body) in &refresh_bodies {
        let r = Req::new("POST", "/api/whatsapp/refresh")
            .auth()
            .json(body.clone())
            .send(s)
            .await;
        r.error(400, "invalid_json", &format!("whatsapp/refresh, {what}"));
    }

    // A JSON document under another type, or under none: 415, with the JSON error body.
    let mut wrong_type = Vec::new();
    let routes: [(&str, &str, &[u8]); 4] = [
        (
            "PUT",
            "/api/policies/promo",
            br#"{"cache_control": "no-store"}"#,
        ),
        (
            "PATCH",
            asset_route.as_str(),
            br#"{"cache_control": "no-store"}"#,
        ),
        (
            "POST",
            "/api/whatsapp/media",
            br#"{"path": "promo/banner.jpg"}"#,
        ),
        ("POST", "/api/whatsapp/refresh", br#"{"prefix": "promo/"}"#),
    ];
    for (method, route, body) in routes {
        for ctype in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("application/jsonx"),
        ] {
            let mut req = Req::new(method, route).auth();
            if let Some(t) = ctype {
                req = req.header("Content-Type", t);
            }
            let r = req.body(body.to_vec()).send(s).await;
            let what = format!("{method} {route} as {ctype:?}");
            let got = r.json();
            assert!(
                got["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{what}: {got}"
            );
            if (r.status, got["error"]["code"].as_str()) != (415, Some("unsupported_media_type")) {
                wrong_type.push(format!(
                    "{what}: {} {} (expected 415 unsupported_media_type)",
                    r.status, got["error"]["code"]
                ));
            }
        }
    }
    site.assert_intact("invalid JSON").await;
    assert!(wrong_type.is_empty(), "{wrong_type:#?}");
}

// ---- 6. invalid policies ------------------------------------------------------------------

fn assert_lists_accepted_forms(message: &str, what: &str) {
    for form in ["max-age=N", "no-cache", "no-store", "private"] {
        assert!(
            message.contains(form),
            "{what}: {form} not named in {message:?}"
        );
    }
}

async fn invalid_policies_are_400_with_the_accepted_forms(backend: Backend) {
    let site = Site::start(backend).await;
    let s = &site.s;
    let jpeg = fixtures::jpeg(2_000, 21);
    let bad = [
        "max-age=-1",
        "max-age=abc",
        "max-age=99999999999999999999",
        "max-age=18446744073709551616",
        "max-age=2147483649",
        "max-age=",
        "max-age",
        "max-age=1.5",
        "max-age=+5",
        "max-age=0x10",
        "max-age = 5",
        "max-age=5s",
        "public, no-store",
        "no-cache, private",
        "no-cache,",
        "public",
        "immutable",
        "no-cache=\"Set-Cookie\"",
        "s-maxage=5",
        "",
        "   ",
        "max-age=\u{665}",        // ARABIC-INDIC DIGIT FIVE
        "max-age=\u{ff15}",       // FULLWIDTH DIGIT FIVE
        "\u{ff4e}\u{ff4f}-cache", // FULLWIDTH no
        "no\u{2010}cache",        // HYPHEN
        "no-cach\u{e9}",
        "priv\u{0430}te", // CYRILLIC a
        "no-cache\u{0}",
        "max-age=5\r\nSet-Cookie: x=y",
    ];
    let asset_route = format!("/api/assets/{ASSET}");
    for policy in bad {
        let what = format!("{policy:?}");
        let body = json!({"cache_control": policy}).to_string();
        let r = Req::new("PUT", "/api/policies/promo")
            .auth()
            .json(body.clone())
            .send(s)
            .await;
        assert_lists_accepted_forms(
            &r.error(400, "invalid_policy", &format!("PUT policies {what}")),
            &what,
        );
        let r = Req::new("PATCH", &asset_route)
            .auth()
            .json(body)
            .send(s)
            .await;
        assert_lists_accepted_forms(
            &r.error(400, "invalid_policy", &format!("PATCH {what}")),
            &what,
        );
        let query =
            percent_encoding::utf8_percent_encode(policy, percent_encoding::NON_ALPHANUMERIC);
        let r = Req::new("PUT", format!("{asset_route}?cache={query}"))
            .auth()
            .header("Content-Type", "image/jpeg")
            .body(jpeg.clone())
            .send(s)
            .await;
        assert_lists_accepted_forms(
            &r.error(400, "invalid_policy", &format!("PUT ?cache={what}")),
            &what,
        );
        // A form's empty `cache` field means "no override", so only the others are refused.
        if !policy.is_empty() {
            let r = post_form(
                s,
                form_body(&[
                    Part::text("path", "promo/new.jpg"),
                    Part::text("cache", policy),
                    Part::file("file", "new.jpg", "image/jpeg", &jpeg),
                ]),
            )
            .await;
            assert_lists_accepted_forms(
                &r.error(400, "invalid_policy", &format!("form cache {what}")),
                &what,
            );
        }
        assert_eq!(s.files(), site.files, "{what}: storage changed");
    }
    site.assert_intact("invalid policies").await;
}

// ---- 7. malformed Range and If-* headers --------------------------------------------------

async fn malformed_ranges_are_ignored(backend: Backend) {
    let site = Site::start(backend).await;
    let s = &site.s;
    let len = site.asset.len();
    let target = format!("/media/{ASSET}");
    let get = |range: &[u8]| Req::get(&target).header("Range", range);

    let thousand: String = (0..1000)
        .map(|i| format!("{}-{}", i * 2, i * 2))
        .collect::<Vec<_>>()
        .join(",");
    // Malformed, another unit, or several ranges: the whole body, 200, no Content-Range.
    let whole: Vec<Vec<u8>> = [
        "bytes=",
        "bytes",
        "bytes=a-b",
        "bytes=5-1",
        "bytes=--1",
        "bytes=-",
        "bytes=1-2-3",
        "bytes=+1-2",
        "bytes=0x10-0x20",
        "bytes=1 -2",
        "bytes = 0-1",
        "bytes=0-1;x",
        "items=0-1",
        "none",
        "=0-1",
        "0-1",
        "bytes=0-1,2-3",
        "bytes=0-1, bytes=2-3",
        "bytes=99999999999999999999-",
        "bytes=-99999999999999999999",
        "bytes=99999999999999999999-99999999999999999999",
        &thousand,
    ]
    .iter()
    .map(|r| r.as_bytes().to_vec())
    .chain([b"bytes=0-\xff".to_vec(), b"bytes=\xc3\xa9-1".to_vec()])
    .collect();
    for range in &whole {
        let what = format!("Range {:?}", String::from_utf8_lossy(range));
        let r = get(range).send(s).await;
        assert_eq!(r.status, 200, "{what}");
        assert_eq!(
            r.header("content-length"),
            Some(len.to_string().as_str()),
            "{what}"
        );
        assert!(r.header("content-range").is_none(), "{what}");
        assert!(r.body == site.asset, "{what}: not the whole body");
    }
    // Two Range fields: joined as one list of two ranges, so ignored too.
    let r = Req::get(&target)
        .header("Range", "bytes=0-1")
        .header("Range", "bytes=2-3")
        .send(s)
        .await;
    assert_eq!(
        (r.status, r.body == site.asset),
        (200, true),
        "two Range fields"
    );

    // Well-formed odd shapes: one range, clamped, or unsatisfiable.
    let last = len - 1;
    let partial: Vec<(String, usize, usize)> = vec![
        ("bytes=0-1,".into(), 0, 1),
        ("bytes=,0-1".into(), 0, 1),
        (" bytes=0-1 ".into(), 0, 1),
        ("BYTES=0-1".into(), 0, 1),
        ("bytes=0-99999999999999999999".into(), 0, last),
        ("bytes=10-18446744073709551615".into(), 10, last),
        (format!("bytes=-{}", len * 10), 0, last),
        (format!("bytes={last}-"), last, last),
        ("bytes=-1".into(), last, last),
    ];
    for (range, start, end) in &partial {
        let what = format!("Range {range:?}");
        let r = get(range.as_bytes()).send(s).await;
        assert_eq!(r.status, 206, "{what}: {:?}", r.text());
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/{len}").as_str()),
            "{what}"
        );
        assert!(r.body == site.asset[*start..=*end], "{what}: wrong bytes");
    }
    for range in [
        format!("bytes={len}-"),
        "bytes=18446744073709551615-".into(),
        "bytes=-0".into(),
        format!("bytes={len}-{}", len + 5),
    ] {
        let what = format!("Range {range:?}");
        let r = get(range.as_bytes()).send(s).await;
        r.error(416, "range_not_satisfiable", &what);
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes */{len}").as_str()),
            "{what}"
        );
        assert!(
            r.header("cache-control").is_none(),
            "{what}: a 416 must not be cacheable"
        );
    }
    // If-Range that is not a strong match (or not valid at all): the range is ignored.
    let etag = site.record["etag"].as_str().unwrap().to_owned();
    for if_range in [
        b"garbage".to_vec(),
        b"W/".to_vec(),
        format!("W/{etag}").into_bytes(),
        etag.trim_matches('"').as_bytes().to_vec(),
        b"\"unterminated".to_vec(),
        b"Sun, 06 Nov 1994 08:49:37 GMT".to_vec(),
        b"\xff\xfe".to_vec(),
    ] {
        let what = format!("If-Range {:?}", String::from_utf8_lossy(&if_range));
        let r = get(b"bytes=0-1")
            .header("If-Range", &if_range)
            .send(s)
            .await;
        assert_eq!((r.status, r.body == site.asset), (200, true), "{what}");
    }
    // HEAD ignores Range entirely.
    for range in ["bytes=0-1", "bytes=a-b", "bytes=99999-"] {
        let r = Req::new("HEAD", &target)
            .header("Range", range)
            .send(s)
            .await;
        assert_eq!(r.status, 200, "HEAD Range {range:?}");
        assert_eq!(r.header("content-length"), Some(len.to_string().as_str()));
        assert!(r.body.is_empty());
    }
    site.assert_intact("malformed ranges").await;
}

async fn malformed_validators_follow_rfc_9110(backend: Backend) {
    let site = Site::start(backend).await;
    let s = &site.s;
    let target = format!("/media/{ASSET}");
    let etag = site.record["etag"].as_str().unwrap().to_owned();
    let bare = etag.trim_matches('"').to_owned();
    let lm = site.record["last_modified"].as_str().unwrap().to_owned();
    let malformed_tags: Vec<Vec<u8>> = vec![
        bare.clone().into_bytes(),        // unquoted, the right tag
        b"abc".to_vec(),                  // unquoted
        format!("\"{bare}").into_bytes(), // unterminated
        format!("{bare}\"").into_bytes(), // no opening quote
        b"W/".to_vec(),                   // W/ alone
        b"W".to_vec(),
        format!("w/{etag}").into_bytes(),      // lowercase w
        format!("W/ {etag}").into_bytes(),     // space after W/
        format!("{etag} {etag}").into_bytes(), // no comma
        format!("{etag}x").into_bytes(),
        format!("*, {etag}").into_bytes(), // * in a list
        b"**".to_vec(),
        b"\"a b\"".to_vec(), // space inside
        b"".to_vec(),
        b",".to_vec(),
        [format!("{etag}, ").as_bytes(), b"\xff"].concat(),
        // obs-text inside quotes is a valid tag, but a value that is not visible ASCII is read
        // as "" (src/http/public.rs, header_value), which is malformed.
        [b"\"".as_slice(), b"\xff\xfe", b"\""].concat(),
    ];
    let get = || Req::get(&target);
    let full = |r: &Answer, what: &str| {
        assert_eq!(r.status, 200, "{what}: {:?}", r.text());
        assert!(r.body == site.asset, "{what}: not the whole body");
        assert_eq!(r.header("etag"), Some(etag.as_str()), "{what}");
    };
    for tag in &malformed_tags {
        let shown = String::from_utf8_lossy(tag);
        // A malformed If-None-Match counts as absent: the whole body.
        full(
            &get().header("If-None-Match", tag).send(s).await,
            &format!("If-None-Match {shown:?}"),
        );
        // Counted as absent, it leaves If-Modified-Since in force (src/http/conditional.rs,
        // step 4: "only when If-None-Match is absent").
        let r = get()
            .header("If-None-Match", tag)
            .header("If-Modified-Since", &lm)
            .send(s)
            .await;
        assert_eq!(
            (r.status, r.body.len()),
            (304, 0),
            "If-None-Match {shown:?} with If-Modified-Since"
        );
        // A malformed If-Match can never be true: 412.
        let r = get().header("If-Match", tag).send(s).await;
        r.error(412, "precondition_failed", &format!("If-Match {shown:?}"));
    }
    // Well-formed lists with odd but legal shapes still match.
    for ok in [
        format!(" {etag} "),
        format!(",,{etag},,"),
        format!("\"x\", W/{etag}"),
        format!("\"a,b\", {etag}"),
    ] {
        let r = get().header("If-None-Match", &ok).send(s).await;
        assert_eq!((r.status, r.body.len()), (304, 0), "If-None-Match {ok:?}");
    }
    // Malformed dates are ignored: If-Modified-Since and If-Unmodified-Since alike.
    let long = "Sun, 06 Nov 1994 08:49:37 GMT ".repeat(100);
    let dates: Vec<Vec<u8>> = [
        "yesterday",
        "0",
        "-1",
        "1763722800",
        "Sun, 06 Nov 1994 25:61:00 GMT",
        "Sun, 31 Feb 2026 08:49:37 GMT",
        "Mon, 06 Nov 1994 08:49:37 GMT", // wrong weekday
        "Thu, 01 Jan 1960 00:00:00 GMT", // before the epoch
        "Sun, 06 Nov 99999 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 PST",
        "2026-11-06T08:49:37Z",
        &format!("{lm}, {lm}"),
        &format!("{lm}x"),
        "",
        &long,
    ]
    .iter()
    .map(|d| d.as_bytes().to_vec())
    .chain([b"Sun, 06 Nov 1994 08:49:37 \xff".to_vec()])
    .collect();
    for date in &dates {
        let shown = String::from_utf8_lossy(date);
        full(
            &get().header("If-Modified-Since", date).send(s).await,
            &format!("If-Modified-Since {shown:?}"),
        );
        full(
            &get().header("If-Unmodified-Since", date).send(s).await,
            &format!("If-Unmodified-Since {shown:?}"),
        );
    }
    // Sanity: the valid forms still decide.
    let r = get().header("If-Modified-Since", &lm).send(s).await;
    assert_eq!((r.status, r.body.len()), (304, 0));
    let r = get().header("If-Match", &etag).send(s).await;
    full(&r, "If-Match with the right tag");
    // Everything at once, all malformed: nothing applies but the malformed If-Match.
    let r = get()
        .header("If-Match", "nope")
        .header("If-None-Match", "nope")
        .header("If-Modified-Since", "nope")
        .header("If-Unmodified-Since", "nope")
        .header("Range", "nope")
        .header("If-Range", "nope")
        .send(s)
        .await;
    r.error(412, "precondition_failed", "all malformed");
    let r = get()
        .header("If-None-Match", "nope")
        .header("If-Modified-Since", "nope")
        .header("If-Unmodified-Since", "nope")
        .header("Range", "nope")
        .header("If-Range", "nope")
        .send(s)
        .await;
    full(&r, "all malformed but If-Match");
    site.assert_intact("malformed validators").await;
}

// ---- 8. methods ---------------------------------------------------------------------------

fn allow_set(r: &Answer) -> Vec<String> {
    let mut v: Vec<String> = r
        .header("allow")
        .unwrap_or_else(|| panic!("no Allow header: {} {:?}", r.status, r.text()))
        .split(',')
        .map(|m| m.trim().to_owned())
        .collect();
    v.sort();
    v
}

async fn unrouted_methods_are_405_with_allow(backend: Backend) {
    let site = Site::start(backend).await;
    let s = &site.s;
    let jpeg = fixtures::jpeg(2_000, 31);
    let public = format!("/media/{ASSET}");
    for method in [
        "POST", "PUT", "DELETE", "PATCH", "TRACE", "OPTIONS", "FOO", "get", "PROPFIND", "MKCOL",
    ] {
        for with_auth in [false, true] {
            let mut req = Req::new(method, &public)
                .header("Content-Type", "image/jpeg")
                .body(jpeg.clone());
            if with_auth {
                req = req.auth();
            }
            let r = req.send(s).await;
            let what = format!("{method} {public} (auth: {with_auth})");
            r.error(405, "method_not_allowed", &what);
            assert_eq!(r.header("allow"), Some(PUBLIC_ALLOW), "{what}");
            assert!(
                find(&r.body, TOKEN.as_bytes()).is_none(),
                "{what}: echoes the request"
            );
        }
    }
    // Admin routes: without the token, the 401 comes first (nothing about the route is told);
    // with it, 405 and the route's methods. The token is never echoed back.
    let admin: [(&str, &[&str], &[&str]); 6] = [
        (
            "/api/assets/promo/banner.jpg",
            &["DELETE", "GET", "HEAD", "PATCH", "PUT"],
            &["POST", "TRACE", "OPTIONS", "FOO"],
        ),
        (
            "/api/assets",
            &["GET", "HEAD", "POST"],
            &["PUT", "DELETE", "PATCH", "TRACE", "FOO"],
        ),
        (
            "/api/policies",
            &["GET", "HEAD"],
            &["PUT", "POST", "DELETE", "TRACE"],
        ),
        (
            "/api/policies/promo",
            &["DELETE", "PUT"],
            &["GET", "POST", "PATCH", "TRACE"],
        ),
        (
            "/api/whatsapp/media",
            &["POST"],
            &["GET", "PUT", "DELETE", "TRACE"],
        ),
        (
            "/api/whatsapp/refresh",
            &["POST"],
            &["GET", "PATCH", "OPTIONS"],
        ),
    ];
    for (route, allowed, refused) in admin {
        for method in refused {
            let req = Req::new(method, route)
                .header("Content-Type", "image/jpeg")
                .body(jpeg.clone());
            let what = format!("{method} {route} without the token");
            let r = req.clone().send(s).await;
            r.error(401, "unauthorized", &what);
            assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer realm=\"media-origin\""),
                "{what}"
            );
            let what = format!("{method} {route}");
            let r = req.auth().send(s).await;
            r.error(405, "method_not_allowed", &what);
            assert_eq!(allow_set(&r), *allowed, "{what}");
            assert!(
                find(&r.body, TOKEN.as_bytes()).is_none(),
                "{what}: echoes the request"
            );
        }
    }
    // Method tokens that are not tokens: hyper refuses them before routing.
    for (what, req) in [
        ("method with a slash", Req::new("GE/T", &public)),
        ("method with a NUL", Req::new("GE\0T", &public)),
        ("method with a colon", Req::new("GE:T", &public)),
        ("empty method", Req::new("", &public)),
    ] {
        let r = req.send(s).await;
        assert_eq!((r.status, r.body.len()), (400, 0), "{what}: {:?}", r.text());
    }
    // CONNECT: nothing is routed for it, whatever its target.
    for t in ["evil.example:443", "127.0.0.1:22"] {
        let r = Req::new("CONNECT", t).send(s).await;
        site.assert_refused(&r, t);
        r.error(404, "not_found", &format!("CONNECT {t}"));
    }
    let r = Req::new("CONNECT", &public).send(s).await;
    r.error(405, "method_not_allowed", "CONNECT origin-form");
    assert_eq!(r.header("allow"), Some(PUBLIC_ALLOW));
    site.assert_intact("methods").await;
}

// ---- 9. authentication --------------------------------------------------------------------

/// A request body and its type.
type Body<'a> = (&'a str, Vec<u8>);

async fn every_auth_failure_gets_the_same_401(backend: Backend) {
    let site = Site::start(backend).await;
    let s = &site.s;
    let jpeg = fixtures::jpeg(2_000, 41);
    let policy = br#"{"cache_control":"no-store"}"#.to_vec();
    let routes: Vec<(&str, String, Option<Body<'_>>)> = vec![
        ("GET", "/api/assets".into(), None),
        ("GET", "/api/assets?prefix=promo/".into(), None),
        (
            "POST",
            "/api/assets".into(),
            Some((
                "multipart/form-data; boundary=HostileBoundary42",
                form_body(&[
                    Part::text("path", "promo/new.jpg"),
                    Part::file("file", "new.jpg", "image/jpeg", &jpeg),
                ]),
            )),
        ),
        ("GET", format!("/api/assets/{ASSET}"), None),
        ("HEAD", format!("/api/assets/{ASSET}"), None),
        (
            "PUT",
            "/api/assets/promo/new.jpg".into(),
            Some(("image/jpeg", jpeg.clone())),
        ),
        (
            "PUT",
            format!("/api/assets/{ASSET}?cache=no-store"),
            Some(("image/jpeg", jpeg.clone())),
        ),
        (
            "PATCH",
            format!("/api/assets/{ASSET}"),
            Some(("application/json", policy.clone())),
        ),
        ("DELETE", format!("/api/assets/{ASSET}"), None),
        ("GET", "/api/policies".into(), None),
        (
            "PUT",
            "/api/policies/promo".into(),
            Some(("application/json", policy.clone())),
        ),
        ("DELETE", "/api/policies/promo".into(), None),
        (
            "POST",
            "/api/whatsapp/media".into(),
            Some((
                "application/json",
                br#"{"path":"promo/banner.jpg"}"#.to_vec(),
            )),
        ),
        (
            "POST",
            "/api/whatsapp/refresh".into(),
            Some(("application/json", b"{}".to_vec())),
        ),
        // Hostile paths are not even looked at before the token is.
        ("GET", "/api/assets/../secret.jpg".into(), None),
    ];
    let long = "t".repeat(10 * 1024);
    let credentials: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("none", vec![]),
        ("wrong token", vec![b"Bearer wrong-token".to_vec()]),
        (
            "wrong token of the right length",
            vec![format!("Bearer {}", "x".repeat(TOKEN.len())).into_bytes()],
        ),
        (
            "the token with one more character",
            vec![format!("Bearer {TOKEN}x").into_bytes()],
        ),
        (
            "a prefix of the token",
            vec![format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]).into_bytes()],
        ),
        (
            "the token in upper case",
            vec![format!("Bearer {}", TOKEN.to_uppercase()).into_bytes()],
        ),
        ("Bearer alone", vec![b"Bearer".to_vec()]),
        ("Bearer and a space", vec![b"Bearer ".to_vec()]),
        ("Bearer and spaces", vec![b"Bearer     ".to_vec()]),
        (
            "bearer, extra spaces, wrong token",
            vec![b"bearer  token".to_vec()],
        ),
        (
            "Basic with the token",
            vec![format!("Basic {TOKEN}").into_bytes()],
        ),
        (
            "Basic base64",
            vec![b"Basic YWRtaW46dGVzdC1hZG1pbi10b2tlbg==".to_vec()],
        ),
        (
            "Digest",
            vec![format!("Digest username=\"admin\", response=\"{TOKEN}\"").into_bytes()],
        ),
        ("the token alone", vec![TOKEN.as_bytes().to_vec()]),
        (
            "token without a space",
            vec![format!("Bearer{TOKEN}").into_bytes()],
        ),
        (
            "tab instead of space",
            vec![format!("Bearer\t{TOKEN}x").into_bytes()],
        ),
        ("a 10 KB token", vec![format!("Bearer {long}").into_bytes()]),
        (
            "non-ASCII token",
            vec![format!("Bearer {TOKEN}\u{e9}").into_bytes()],
        ),
        (
            "raw non-UTF-8 bytes",
            vec![[b"Bearer ".as_slice(), TOKEN.as_bytes(), b"\xff"].concat()],
        ),
        (
            "quoted token",
            vec![format!("Bearer \"{TOKEN}\"").into_bytes()],
        ),
        (
            "two schemes",
            vec![format!("Basic x, Bearer {TOKEN}x").into_bytes()],
        ),
        (
            "wrong then right",
            vec![
                b"Bearer wrong-token".to_vec(),
                format!("Bearer {TOKEN}").into_bytes(),
            ],
        ),
    ];
    let mut first_body: Option<Vec<u8>> = None;
    for (method, route, body) in &routes {
        for (what, values) in &credentials {
            let mut req = Req::new(method, route);
            for v in values {
                req = req.header("Authorization", v);
            }
            if let Some((ctype, bytes)) = body {
                req = req.header("Content-Type", ctype).body(bytes.clone());
            }
            let r = req.send(s).await;
            let what = format!("{method} {route}, {what}");
            assert_eq!(r.status, 401, "{what}: {:?}", r.text());
            assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer realm=\"media-origin\""),
                "{what}"
            );
            if *method == "HEAD" {
                assert!(r.body.is_empty(), "{what}");
                continue;
            }
            r.error(401, "unauthorized", &what);
            assert!(
                find(&r.body, TOKEN.as_bytes()).is_none(),
                "{what}: the body names the token"
            );
            match &first_body {
                None => first_body = Some(r.body.clone()),
                Some(b) => assert!(*b == r.body, "{what}: another body: {:?}", r.text()),
            }
        }
    }
    // A token in the query string is not a credential here.
    let r = Req::get(format!("/api/assets?access_token={TOKEN}"))
        .send(s)
        .await;
    assert_eq!(r.status, 401);
    site.assert_intact("authentication").await;
    // The scheme is case-insensitive and RFC 6750 allows several spaces: these are accepted.
    for value in [format!("bearer {TOKEN}"), format!("BEARER  {TOKEN}")] {
        let r = Req::get("/api/policies")
            .header("Authorization", &value)
            .send(s)
            .await;
        assert_eq!(r.status, 200, "{value:?}");
    }
}

/// Medians of the time to a 401 for a wrong token of the token's length, one of another
/// length and no header at all: they stay within 3x (or 2 ms) of each other. Requests are
/// interleaved on one keep-alive connection each, so drift of the machine hits all three alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_take_the_same_time_whatever_the_token() {
    let s = TestServer::start().await;
    let url = s.url("/api/policies");
    let variants: [Option<String>; 3] = [
        Some(format!("Bearer {}", "x".repeat(TOKEN.len()))),
        Some(format!("Bearer {}", "x".repeat(TOKEN.len() * 8 + 3))),
        None,
    ];
    let clients: Vec<reqwest::Client> = (0..3)
        .map(|_| reqwest::Client::builder().no_proxy().build().unwrap())
        .collect();
    let mut samples: [Vec<Duration>; 3] = Default::default();
    // Warm up every connection.
    for (i, v) in variants.iter().enumerate() {
        for _ in 0..10 {
            let mut req = clients[i].get(&url);
            if let Some(v) = v {
                req = req.header("authorization", v);
            }
            assert_eq!(req.send().await.unwrap().status(), 401);
        }
    }
    for round in 0..200 {
        for k in 0..3 {
            // Rotate the order so no variant always goes first.
            let i = (round + k) % 3;
            let mut req = clients[i].get(&url);
            if let Some(v) = &variants[i] {
                req = req.header("authorization", v);
            }
            let t = Instant::now();
            let r = req.send().await.unwrap();
            let _ = r.bytes().await.unwrap();
            samples[i].push(t.elapsed());
        }
    }
    let medians: Vec<Duration> = samples
        .iter_mut()
        .map(|v| {
            v.sort();
            v[v.len() / 2]
        })
        .collect();
    for a in &medians {
        for b in &medians {
            let (lo, hi) = if a < b { (*a, *b) } else { (*b, *a) };
            assert!(
                hi <= lo * 3 || hi - lo <= Duration::from_millis(2),
                "medians differ too much: {medians:?} (right length, other length, none)"
            );
        }
    }
}

on_both_backends! {
    traversal_on_public_get_and_head_reads_nothing_outside,
    traversal_on_admin_routes_writes_and_reads_nothing_outside,
    oversized_bodies_are_413_and_store_nothing,
    malformed_multipart_is_400_and_stores_nothing,
    invalid_json_is_refused_with_json_errors,
    invalid_policies_are_400_with_the_accepted_forms,
    malformed_ranges_are_ignored,
    malformed_validators_follow_rfc_9110,
    unrouted_methods_are_405_with_allow,
    every_auth_failure_gets_the_same_401,
}
