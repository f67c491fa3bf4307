//! Uploads through the admin API against a real server: what is refused (with the exact status
//! and error code, and with storage left exactly as it was), what is accepted and how it is
//! stored and served, multipart forms, interrupted uploads, concurrent replacements, and a large
//! document that is written to storage in several parts.
//!
//! "Nothing stored" is always proved on disk: the list of every file under the storage root is
//! the same before and after, and the public URL still answers 404 or the old bytes.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Backend, TOKEN, TestServer, fixtures};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---- helpers ------------------------------------------------------------------------------

const IMAGE_MAX: usize = 5_000_000;
const STATIC_STICKER_MAX: usize = 100_000;

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn gif(len: usize) -> Vec<u8> {
    let mut v = b"GIF89a\x01\x00\x01\x00\x80\x00\x00".to_vec();
    v.extend(fixtures::noise(len.saturating_sub(v.len()), 99));
    v
}

/// Assert an error answer: exact status and code; returns the message.
async fn expect_error(r: Response, status: u16, code: &str) -> String {
    let got = r.status().as_u16();
    let text = r.text().await.unwrap();
    error_body(got, &text, status, code)
}

fn error_body(got: u16, text: &str, status: u16, code: &str) -> String {
    let body: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {got} {text:?}"));
    assert_eq!(
        (got, body["error"]["code"].as_str().unwrap_or("<none>")),
        (status, code),
        "unexpected answer: {body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "error without a message: {body}");
    message.to_owned()
}

/// The public URL of `path` answers 404 (`None`) or exactly `bytes`.
async fn assert_serves(s: &TestServer, path: &str, bytes: Option<&[u8]>) {
    let r = s.get(&s.media(path)).await;
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    match bytes {
        None => assert_eq!(status, 404, "{path} should not exist"),
        Some(want) => {
            assert_eq!(status, 200, "{path} should be served");
            assert_eq!(body.len(), want.len(), "{path}: wrong length");
            assert!(body == want, "{path}: served bytes differ from the upload");
        }
    }
}

/// The admin record of `path`.
async fn record(s: &TestServer, path: &str) -> Value {
    let r = s
        .admin(Method::GET, &format!("/assets/{path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "no record for {path}");
    r.json().await.unwrap()
}

/// The parts of a record that say which bytes a path holds (the links name the server's port,
/// which changes on restart).
fn identity(rec: &Value) -> Value {
    let keys = [
        "path",
        "sha256",
        "size",
        "content_type",
        "last_modified",
        "uploaded_at",
        "filename",
        "cache_override",
    ];
    keys.iter()
        .map(|k| (k.to_string(), rec[k].clone()))
        .collect()
}

/// `PUT /api/assets/{path}` without any `Content-Type` header.
async fn put_untyped(s: &TestServer, path: &str, body: Vec<u8>) -> Response {
    s.admin(Method::PUT, &format!("/assets/{path}"))
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn post_form(s: &TestServer, form: Form) -> Response {
    s.admin(Method::POST, "/assets")
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// `POST /api/assets` with a hand-written multipart body.
async fn post_raw_form(s: &TestServer, boundary: &str, body: Vec<u8>) -> Response {
    s.admin(Method::POST, "/assets")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

fn file_part(bytes: Vec<u8>, name: &str, mime: Option<&str>) -> Part {
    let part = Part::bytes(bytes).file_name(name.to_owned());
    match mime {
        Some(m) => part.mime_str(m).unwrap(),
        None => part,
    }
}

fn files_under(s: &TestServer, dir: &str) -> Vec<String> {
    s.files()
        .into_iter()
        .filter(|f| f.starts_with(dir))
        .collect()
}

/// An HTTP/1.1 answer read off a raw socket.
struct RawResponse {
    status: u16,
    body: String,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Read one response (head, then `Content-Length` bytes of body) from `tcp`.
async fn read_response(tcp: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = tcp.read(&mut chunk).await.expect("reading the response");
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = tcp.read(&mut chunk).await.expect("reading the body");
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    RawResponse {
        status,
        body: String::from_utf8_lossy(&buf[head_end..]).into_owned(),
    }
}

fn request_head(s: &TestServer, method: &str, target: &str, headers: &str) -> String {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n{headers}Connection: close\r\n\r\n",
        s.addr
    )
}

/// Send a request exactly as written (no client-side URL normalisation, which would resolve
/// `..` and `%2e%2e` before they reached the server).
async fn raw_request(
    s: &TestServer,
    method: &str,
    target: &str,
    ctype: Option<&str>,
    body: &[u8],
) -> RawResponse {
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    let ctype = ctype.map_or(String::new(), |t| format!("Content-Type: {t}\r\n"));
    let head = request_head(
        s,
        method,
        target,
        &format!("{ctype}Content-Length: {}\r\n", body.len()),
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        // The server may answer (and close) before reading the body: the write then fails
        // with EPIPE or ECONNRESET, and the answer is still there to read.
        let _ = tcp.write_all(body).await;
        read_response(&mut tcp).await
    })
    .await
    .expect("an answer within 10 s")
}

/// Open a `PUT` declaring `declared_len` bytes and send only `sent`; the caller closes the
/// socket (drops it) to cut the upload off.
async fn start_put(
    s: &TestServer,
    path: &str,
    ctype: &str,
    declared_len: usize,
    sent: &[u8],
) -> TcpStream {
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    let head = request_head(
        s,
        "PUT",
        &format!("/api/assets/{path}"),
        &format!("Content-Type: {ctype}\r\nContent-Length: {declared_len}\r\n"),
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(sent).await.unwrap();
    tcp.flush().await.unwrap();
    tcp
}

/// Poll until `cond` holds (or fail after 10 s).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Storage after a restart may additionally hold the policies file; nothing else.
fn same_ignoring_policies(before: &[String], after: &[String]) -> bool {
    let strip = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter(|f| f.as_str() != "policies.json")
            .cloned()
            .collect()
    };
    strip(before) == strip(after)
}

// ---- 1. rejections ------------------------------------------------------------------------

async fn unsupported_declared_type_is_415_and_stores_nothing(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let before = s.files();
    let msg = expect_error(
        s.put("promo/anim.gif", "image/gif", gif(2_000)).await,
        415,
        "unsupported_media_type",
    )
    .await;
    assert!(msg.contains("image/gif"), "{msg}");
    // The same refusal whatever the case and parameters of the header.
    expect_error(
        s.put("promo/anim.gif", "Image/GIF; charset=binary", gif(2_000))
            .await,
        415,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(s.files(), before);
    assert_serves(&s, "promo/anim.gif", None).await;
}

async fn declared_type_that_contradicts_the_bytes_is_422(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let before = s.files();
    let cases: [(&str, &str, Vec<u8>, &str); 3] = [
        ("a.jpg", "image/jpeg", fixtures::png(3_000, 1), "image/png"),
        (
            "b.jpg",
            "image/jpeg",
            fixtures::webp(3_000, 2),
            "image/webp",
        ),
        (
            "c.pdf",
            "application/pdf",
            fixtures::text(3_000),
            "text/plain",
        ),
    ];
    for (path, declared, bytes, actual) in cases {
        let msg = expect_error(
            s.put(path, declared, bytes).await,
            422,
            "content_type_mismatch",
        )
        .await;
        assert!(
            msg.contains(declared) && msg.contains(actual),
            "{path}: the message should name {declared} and {actual}: {msg}"
        );
        assert_serves(&s, path, None).await;
    }
    assert_eq!(s.files(), before);
}

async fn oversize_with_content_length_is_413_before_the_body_is_read(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let before = s.files();

    // Only the head is sent: the answer must come without waiting for a single body byte.
    for (ctype, len) in [
        ("image/jpeg", IMAGE_MAX + 1),
        ("video/mp4", 16_000_001),
        ("image/webp", 500_001),
        // No usable declared type: the largest size of any kind applies.
        ("application/octet-stream", 100_000_001),
    ] {
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        let head = request_head(
            &s,
            "PUT",
            "/api/assets/big.bin",
            &format!("Content-Type: {ctype}\r\nContent-Length: {len}\r\n"),
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), read_response(&mut tcp))
            .await
            .unwrap_or_else(|_| panic!("{ctype}: no 413 before the body was sent"));
        let msg = error_body(r.status, &r.body, 413, "too_large");
        assert!(msg.contains(&len.to_string()), "{msg}");
    }

    // A client that sends the whole oversized body anyway still gets the 413. The server
    // answers without reading the body and closes the connection, so the client's write may
    // fail with EPIPE/ECONNRESET; the answer is still there to read. (A raw socket, because
    // hyper's client drops the early answer when its body write fails: reqwest sees a
    // BrokenPipe error for about half of these requests.)
    for _ in 0..3 {
        let r = raw_request(
            &s,
            "PUT",
            "/api/assets/big.jpg",
            Some("image/jpeg"),
            &fixtures::jpeg(IMAGE_MAX + 1, 3),
        )
        .await;
        error_body(r.status, &r.body, 413, "too_large");
    }

    assert_eq!(s.files(), before);
    assert_serves(&s, "big.jpg", None).await;
    assert_serves(&s, "big.bin", None).await;
}

async fn oversize_streamed_without_length_or_type_is_413(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let before = s.files();
    for declared in [None, Some("image/jpeg")] {
        let bytes = fixtures::jpeg(IMAGE_MAX + 1, 4);
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
        let mut req = s
            .admin(Method::PUT, "/assets/streamed.jpg")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)));
        if let Some(t) = declared {
            req = req.header("content-type", t);
        }
        let r = req.send().await.unwrap();
        let msg = expect_error(r, 413, "too_large").await;
        assert!(msg.contains("5000000"), "{declared:?}: {msg}");
        assert_eq!(s.files(), before, "{declared:?}");
    }
    assert_serves(&s, "streamed.jpg", None).await;
}

async fn static_sticker_over_100_kb_is_413(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let before = s.files();
    let msg = expect_error(
        s.put(
            "stickers/big.webp",
            "image/webp",
            fixtures::webp(STATIC_STICKER_MAX + 1, 5),
        )
        .await,
        413,
        "too_large",
    )
    .await;
    assert!(msg.contains("100000"), "{msg}");
    expect_error(
        put_untyped(
            &s,
            "stickers/big.webp",
            fixtures::webp(STATIC_STICKER_MAX + 1, 5),
        )
        .await,
        413,
        "too_large",
    )
    .await;
    assert_eq!(s.files(), before);
    assert_serves(&s, "stickers/big.webp", None).await;

    // Exactly at the limit is fine.
    let ok = fixtures::webp(STATIC_STICKER_MAX, 6);
    let rec = s.upload("stickers/ok.webp", "image/webp", ok.clone()).await;
    assert_eq!(rec["kind"], "sticker");
    assert_eq!(rec["content_type"], "image/webp");
    assert_serves(&s, "stickers/ok.webp", Some(&ok)).await;
}

async fn empty_body_is_422(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let before = s.files();
    expect_error(
        s.put("empty.jpg", "image/jpeg", Vec::new()).await,
        422,
        "invalid_media",
    )
    .await;
    expect_error(
        put_untyped(&s, "empty.jpg", Vec::new()).await,
        422,
        "invalid_media",
    )
    .await;
    assert_eq!(s.files(), before);
    assert_serves(&s, "empty.jpg", None).await;
}

async fn unrecognised_binary_without_type_is_415(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let before = s.files();
    for declared in [None, Some("application/octet-stream")] {
        let body = fixtures::noise(10_000, 7);
        let r = match declared {
            None => put_untyped(&s, "blob.bin", body).await,
            Some(t) => s.put("blob.bin", t, body).await,
        };
        expect_error(r, 415, "unrecognized_media").await;
    }
    assert_eq!(s.files(), before);
    assert_serves(&s, "blob.bin", None).await;
}

async fn invalid_paths_are_400_and_store_nothing(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let before = s.files();
    let long = "a".repeat(300);
    let targets = [
        "/api/assets/..".to_owned(),
        "/api/assets/../x.jpg".to_owned(),
        "/api/assets/a/../../x.jpg".to_owned(),
        "/api/assets/%2e%2e/x.jpg".to_owned(),
        "/api/assets/a/%2E%2E/%2e%2e/x.jpg".to_owned(),
        "/api/assets/..%2fx.jpg".to_owned(),
        "/api/assets/a//b.jpg".to_owned(),
        "/api/assets/a/".to_owned(),
        "/api/assets/a%5c..%5cb.jpg".to_owned(),
        "/api/assets/%2fetc/x.jpg".to_owned(),
        "/api/assets/a%00b.jpg".to_owned(),
        "/api/assets/%252e%252e/x.jpg".to_owned(),
        format!("/api/assets/{long}.jpg"),
        format!("/api/assets/promo/{long}/x.jpg"),
    ];
    let body = fixtures::jpeg(2_000, 8);
    for target in &targets {
        let r = raw_request(&s, "PUT", target, Some("image/jpeg"), &body).await;
        error_body(r.status, &r.body, 400, "invalid_path");
        assert_eq!(s.files(), before, "{target} stored something");
    }
}

async fn invalid_cache_query_is_400(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let before = s.files();
    for query in [
        "cache=forever",
        "cache=max-age%3D-1",
        "cache=max-age%3Dsoon",
        "cache=no-cache%2Cprivate",
        "cache=",
    ] {
        let r = s
            .admin(Method::PUT, &format!("/assets/a.jpg?{query}"))
            .header("content-type", "image/jpeg")
            .body(fixtures::jpeg(2_000, 9))
            .send()
            .await
            .unwrap();
        expect_error(r, 400, "invalid_policy").await;
        assert_eq!(s.files(), before, "{query}");
    }
    // An unknown query parameter is refused too rather than ignored.
    let r = s
        .admin(Method::PUT, "/assets/a.jpg?cahce=no-cache")
        .header("content-type", "image/jpeg")
        .body(fixtures::jpeg(2_000, 9))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_query").await;
    assert_eq!(s.files(), before);
    assert_serves(&s, "a.jpg", None).await;
}

async fn rejected_replacement_keeps_the_old_asset(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let old = fixtures::jpeg(20_000, 10);
    s.upload("promo/banner.jpg", "image/jpeg", old.clone())
        .await;
    let old_record = record(&s, "promo/banner.jpg").await;
    let before = s.files();

    // (query, declared type, body, status, code)
    type Attempt<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let attempts: Vec<Attempt> = vec![
        (
            "",
            Some("image/gif"),
            gif(3_000),
            415,
            "unsupported_media_type",
        ),
        (
            "",
            Some("image/jpeg"),
            fixtures::png(3_000, 11),
            422,
            "content_type_mismatch",
        ),
        ("", Some("image/jpeg"), Vec::new(), 422, "invalid_media"),
        (
            "",
            None,
            fixtures::noise(3_000, 7),
            415,
            "unrecognized_media",
        ),
        (
            "",
            Some("image/jpeg"),
            fixtures::jpeg(IMAGE_MAX + 1, 12),
            413,
            "too_large",
        ),
        (
            "?cache=sometimes",
            Some("image/jpeg"),
            fixtures::jpeg(3_000, 13),
            400,
            "invalid_policy",
        ),
    ];
    for (query, declared, body, want_status, code) in attempts {
        let target = format!("/api/assets/promo/banner.jpg{query}");
        let r = raw_request(&s, "PUT", &target, declared, &body).await;
        error_body(r.status, &r.body, want_status, code);
        assert_eq!(s.files(), before, "{code}");
        assert_serves(&s, "promo/banner.jpg", Some(&old)).await;
    }
    // An oversized replacement streamed without a length, refused once past the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = fixtures::jpeg(IMAGE_MAX + 1, 15)
        .chunks(256 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let r = s
        .admin(Method::PUT, "/assets/promo/banner.jpg")
        .header("content-type", "image/jpeg")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    expect_error(r, 413, "too_large").await;
    assert_eq!(s.files(), before);
    // A rejected form upload to the same path changes nothing either.
    let form = Form::new().text("path", "promo/banner.jpg").part(
        "file",
        file_part(fixtures::webp(3_000, 14), "banner.jpg", Some("image/jpeg")),
    );
    expect_error(post_form(&s, form).await, 422, "content_type_mismatch").await;
    assert_eq!(s.files(), before);

    assert_eq!(record(&s, "promo/banner.jpg").await, old_record);
    assert_serves(&s, "promo/banner.jpg", Some(&old)).await;
}

// ---- 2. accepted uploads ------------------------------------------------------------------

async fn put_creates_with_201_and_replaces_with_200(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let first = fixtures::jpeg(10_000, 20);
    let r = s.put("promo/a.jpg", "image/jpeg", first.clone()).await;
    assert_eq!(r.status(), 201);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["sha256"], sha256(&first));
    assert_eq!(rec["size"], first.len());
    assert_eq!(rec["etag"], format!("\"{}\"", sha256(&first)));
    assert_serves(&s, "promo/a.jpg", Some(&first)).await;

    let second = fixtures::jpeg(12_345, 21);
    let r = s.put("promo/a.jpg", "image/jpeg", second.clone()).await;
    assert_eq!(r.status(), 200);
    let rec2: Value = r.json().await.unwrap();
    assert_eq!(rec2["sha256"], sha256(&second));
    assert_eq!(rec2["size"], second.len());
    assert_ne!(rec2["link"], rec["link"], "new bytes need a new link");
    assert_serves(&s, "promo/a.jpg", Some(&second)).await;

    let r = s.get(&s.media("promo/a.jpg")).await;
    assert_eq!(
        r.headers()["etag"].to_str().unwrap(),
        format!("\"{}\"", sha256(&second))
    );
    assert_eq!(r.headers()["content-type"], "image/jpeg");

    // After a delete, the path is new again.
    let r = s
        .admin(Method::DELETE, "/assets/promo/a.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        s.put("promo/a.jpg", "image/jpeg", first.clone())
            .await
            .status(),
        201
    );
    assert_serves(&s, "promo/a.jpg", Some(&first)).await;
}

async fn missing_content_type_is_taken_from_the_bytes_and_extension(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let cases = [
        ("logo.png", fixtures::png(4_000, 30), "image/png", "image"),
        (
            "photo.JPG",
            fixtures::jpeg(4_000, 31),
            "image/jpeg",
            "image",
        ),
        ("clip.mp4", fixtures::mp4(4_000, 32), "video/mp4", "video"),
        // The same ISO-BMFF bytes named .m4a are audio.
        ("voice.m4a", fixtures::m4a(4_000, 32), "audio/mp4", "audio"),
        ("note.txt", fixtures::text(4_000), "text/plain", "document"),
        // The bytes decide: a PNG named .jpg is still a PNG.
        (
            "misnamed.jpg",
            fixtures::png(4_000, 33),
            "image/png",
            "image",
        ),
    ];
    for (path, bytes, ctype, kind) in cases {
        let r = put_untyped(&s, path, bytes.clone()).await;
        assert_eq!(r.status(), 201, "{path}");
        let rec: Value = r.json().await.unwrap();
        assert_eq!(rec["content_type"], ctype, "{path}");
        assert_eq!(rec["kind"], kind, "{path}");
        let r = s.get(&s.media(path)).await;
        assert_eq!(r.headers()["content-type"], ctype, "{path}");
        assert_eq!(r.bytes().await.unwrap(), bytes, "{path}");
    }
}

async fn ogg_opus_is_stored_and_served_as_audio_ogg_codecs_opus(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    for (path, declared) in [
        ("voice/a.ogg", Some("audio/ogg")),
        ("voice/b.opus", Some("audio/opus")),
        ("voice/c.ogg", Some("audio/ogg; codecs=opus")),
        ("voice/d.ogg", None),
    ] {
        let bytes = fixtures::ogg_opus(8_000, 40);
        let r = match declared {
            Some(t) => s.put(path, t, bytes.clone()).await,
            None => put_untyped(&s, path, bytes.clone()).await,
        };
        assert_eq!(r.status(), 201, "{path}");
        let rec: Value = r.json().await.unwrap();
        assert_eq!(rec["content_type"], "audio/ogg; codecs=opus", "{path}");
        assert_eq!(rec["kind"], "audio", "{path}");
        assert_eq!(rec["message"]["type"], "audio", "{path}");
        for method in [Method::GET, Method::HEAD] {
            let r = s
                .client
                .request(method.clone(), s.media(path))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(
                r.headers()["content-type"].to_str().unwrap(),
                "audio/ogg; codecs=opus",
                "{method} {path}"
            );
        }
        assert_serves(&s, path, Some(&bytes)).await;
    }
}

async fn pdf_is_a_document_sent_with_its_file_name(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let bytes = fixtures::pdf(30_000, 50);
    let rec = s
        .upload("legal/terms.pdf", "application/pdf", bytes.clone())
        .await;
    assert_eq!(rec["kind"], "document");
    assert_eq!(rec["content_type"], "application/pdf");
    assert_eq!(rec["filename"], "terms.pdf");
    let link = rec["link"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/media/legal/terms.pdf?v=", s.base)),
        "{link}"
    );
    assert_eq!(
        rec["message"],
        json!({"type": "document", "document": {"link": link, "filename": "terms.pdf"}})
    );
    assert_serves(&s, "legal/terms.pdf", Some(&bytes)).await;

    // Other kinds carry no file name.
    let rec = s
        .upload("legal/seal.png", "image/png", fixtures::png(2_000, 51))
        .await;
    assert_eq!(
        rec["message"],
        json!({"type": "image", "image": {"link": rec["link"]}})
    );
}

async fn exactly_at_the_size_limit_is_accepted(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let bytes = fixtures::jpeg(IMAGE_MAX, 60);
    let r = s.put("big/exact.jpg", "image/jpeg", bytes.clone()).await;
    assert_eq!(r.status(), 201);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["size"], IMAGE_MAX);
    assert_eq!(rec["sha256"], sha256(&bytes));
    assert_serves(&s, "big/exact.jpg", Some(&bytes)).await;

    // Also when streamed with neither length nor type, so the limit is only known from the
    // bytes.
    let bytes = fixtures::jpeg(IMAGE_MAX, 61);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(100_000).map(|c| Ok(c.to_vec())).collect();
    let r = s
        .admin(Method::PUT, "/assets/big/streamed.jpg")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["content_type"], "image/jpeg");
    assert_eq!(rec["size"], IMAGE_MAX);
    assert_serves(&s, "big/streamed.jpg", Some(&bytes)).await;
}

/// UTF-8 text longer than the sniffing window (64 KiB) is a document like any other.
async fn utf8_text_longer_than_the_sniff_window_is_a_document(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    // Two-byte characters that happen to end exactly at byte 65536.
    let text = "é".repeat(40_000).into_bytes();
    assert_eq!(text[65_535], 0xA9);
    let rec = s
        .upload("notes/aligned.txt", "text/plain", text.clone())
        .await;
    assert_eq!(rec["content_type"], "text/plain");
    assert_eq!(rec["kind"], "document");
    assert_serves(&s, "notes/aligned.txt", Some(&text)).await;
}

/// The same, but with a character straddling the end of the sniffing window: the server
/// decides the type from the first 64 KiB as if the upload ended there, so the cut character
/// looks like invalid UTF-8 and the text is refused as binary.
async fn utf8_text_with_a_character_across_the_sniff_window_is_a_document(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let mut text = b"x".to_vec();
    text.extend("é".repeat(40_000).as_bytes());
    assert_eq!(
        text[65_535], 0xC3,
        "the first byte of a character ends the window"
    );
    let r = s.put("notes/a.txt", "text/plain", text.clone()).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = put_untyped(&s, "notes/b.txt", text.clone()).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // Chinese text: three-byte characters.
    let zh = "条款和条件适用。".repeat(3_000).into_bytes();
    assert!(std::str::from_utf8(&zh[..65_536]).is_err());
    let r = s.put("notes/zh.txt", "text/plain", zh.clone()).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    assert_serves(&s, "notes/a.txt", Some(&text)).await;
    assert_serves(&s, "notes/zh.txt", Some(&zh)).await;
}

// ---- 3. multipart forms -------------------------------------------------------------------

async fn form_upload_with_path(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let bytes = fixtures::pdf(20_000, 70);
    let form = Form::new().text("path", "legal/terms.pdf").part(
        "file",
        file_part(bytes.clone(), "Terms v2.pdf", Some("application/pdf")),
    );
    let r = post_form(&s, form).await;
    assert_eq!(r.status(), 201);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["path"], "legal/terms.pdf");
    assert_eq!(rec["content_type"], "application/pdf");
    assert_eq!(rec["sha256"], sha256(&bytes));
    // The document is sent under the name the file was uploaded with.
    assert_eq!(rec["filename"], "Terms v2.pdf");
    assert_eq!(rec["message"]["document"]["filename"], "Terms v2.pdf");
    assert_serves(&s, "legal/terms.pdf", Some(&bytes)).await;

    // A second form upload to the same path replaces it.
    let bytes2 = fixtures::pdf(21_000, 71);
    let form = Form::new()
        .text("path", "legal/terms.pdf")
        .part("file", file_part(bytes2.clone(), "terms.pdf", None));
    assert_eq!(post_form(&s, form).await.status(), 200);
    assert_serves(&s, "legal/terms.pdf", Some(&bytes2)).await;
}

async fn form_upload_with_folder_keeps_the_file_name(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let bytes = fixtures::jpeg(9_000, 72);
    let form = Form::new().text("folder", "promo/2024").part(
        "file",
        file_part(bytes.clone(), "banner.jpg", Some("image/jpeg")),
    );
    let r = post_form(&s, form).await;
    assert_eq!(r.status(), 201);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["path"], "promo/2024/banner.jpg");
    assert_eq!(rec["filename"], "banner.jpg");
    assert_serves(&s, "promo/2024/banner.jpg", Some(&bytes)).await;

    // Surrounding slashes of the folder, and directories in the client's file name, are dropped.
    let bytes = fixtures::png(9_000, 73);
    let form = Form::new().text("folder", "/promo/").part(
        "file",
        file_part(bytes.clone(), "C:\\Users\\me\\logo.png", None),
    );
    let r = post_form(&s, form).await;
    assert_eq!(r.status(), 201);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["path"], "promo/logo.png");
    assert_eq!(rec["content_type"], "image/png");
    assert_serves(&s, "promo/logo.png", Some(&bytes)).await;
}

async fn form_upload_with_cache(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let bytes = fixtures::jpeg(9_000, 74);
    let form = Form::new()
        .text("path", "promo/sale.jpg")
        .text("cache", "max-age=600")
        .part(
            "file",
            file_part(bytes.clone(), "sale.jpg", Some("image/jpeg")),
        );
    let r = post_form(&s, form).await;
    assert_eq!(r.status(), 201);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["cache_control"], "max-age=600");
    assert_eq!(rec["cache_override"], "max-age=600");
    assert_eq!(rec["policy_source"], "asset");
    let r = s.get(&s.media("promo/sale.jpg")).await;
    assert_eq!(r.headers()["cache-control"], "max-age=600");
    assert_eq!(r.bytes().await.unwrap(), bytes);

    // Same through PUT's query.
    let r = s
        .admin(Method::PUT, "/assets/promo/sale2.jpg?cache=no-store")
        .header("content-type", "image/jpeg")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["cache_control"], "no-store");
    assert_eq!(rec["policy_source"], "asset");
}

async fn form_field_order_does_not_matter(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let a = fixtures::jpeg(7_000, 75);
    let file_first = Form::new()
        .part("file", file_part(a.clone(), "a.jpg", Some("image/jpeg")))
        .text("path", "order/a.jpg")
        .text("cache", "no-cache");
    let r = post_form(&s, file_first).await;
    assert_eq!(r.status(), 201);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["cache_control"], "no-cache");
    assert_eq!(rec["policy_source"], "asset");
    assert_serves(&s, "order/a.jpg", Some(&a)).await;

    let b = fixtures::jpeg(7_001, 76);
    let file_last = Form::new()
        .text("cache", "no-cache")
        .text("path", "order/b.jpg")
        .part("file", file_part(b.clone(), "b.jpg", Some("image/jpeg")));
    assert_eq!(post_form(&s, file_last).await.status(), 201);
    assert_serves(&s, "order/b.jpg", Some(&b)).await;

    let c = fixtures::jpeg(7_002, 77);
    let file_between = Form::new()
        .text("folder", "order")
        .part("file", file_part(c.clone(), "c.jpg", Some("image/jpeg")))
        .text("cache", "private");
    assert_eq!(post_form(&s, file_between).await.status(), 201);
    assert_serves(&s, "order/c.jpg", Some(&c)).await;
}

async fn invalid_forms_are_400_and_store_nothing(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let jpeg = || file_part(fixtures::jpeg(6_000, 78), "x.jpg", Some("image/jpeg"));
    let cases: Vec<(&str, Form, &str)> = vec![
        (
            "no file",
            Form::new().text("path", "f/x.jpg"),
            "invalid_form",
        ),
        (
            "no file, only folder",
            Form::new().text("folder", "f"),
            "invalid_form",
        ),
        (
            "path and folder, file first",
            Form::new()
                .part("file", jpeg())
                .text("path", "f/x.jpg")
                .text("folder", "f"),
            "invalid_form",
        ),
        (
            "path and folder, file last",
            Form::new()
                .text("path", "f/x.jpg")
                .text("folder", "f")
                .part("file", jpeg()),
            "invalid_form",
        ),
        (
            "neither path nor folder",
            Form::new().part("file", jpeg()),
            "invalid_form",
        ),
        (
            "unknown field after the file",
            Form::new()
                .text("path", "f/x.jpg")
                .part("file", jpeg())
                .text("colour", "blue"),
            "invalid_form",
        ),
        (
            "unknown field before the file",
            Form::new()
                .text("title", "x")
                .text("path", "f/x.jpg")
                .part("file", jpeg()),
            "invalid_form",
        ),
        (
            "two files",
            Form::new()
                .text("path", "f/x.jpg")
                .part("file", jpeg())
                .part("file", jpeg()),
            "invalid_form",
        ),
        (
            "folder with a file part without a name",
            Form::new()
                .text("folder", "f")
                .part("file", Part::bytes(fixtures::jpeg(6_000, 78))),
            "invalid_form",
        ),
        (
            "path escaping the root",
            Form::new().part("file", jpeg()).text("path", "../x.jpg"),
            "invalid_path",
        ),
        (
            "folder escaping the root",
            Form::new().part("file", jpeg()).text("folder", "a/../.."),
            "invalid_path",
        ),
        (
            "invalid cache",
            Form::new()
                .part("file", jpeg())
                .text("path", "f/x.jpg")
                .text("cache", "max-age=forever"),
            "invalid_policy",
        ),
        (
            "oversized text field",
            Form::new()
                .text("path", "a".repeat(5_000))
                .part("file", jpeg()),
            "invalid_form",
        ),
    ];
    let before = s.files();
    for (what, form, code) in cases {
        expect_error(post_form(&s, form).await, 400, code).await;
        assert_eq!(s.files(), before, "{what}: storage changed");
    }
    assert_serves(&s, "f/x.jpg", None).await;
    assert_serves(&s, "x.jpg", None).await;
}

/// A text field sent twice is refused, naming it, rather than one of its values kept in
/// silence, as a second `file` part is; before or after the file, which is then discarded
/// (a large one too, staged as a multipart write on S3).
async fn repeated_form_fields_are_400_and_store_nothing(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let small = || file_part(fixtures::jpeg(6_000, 79), "x.jpg", Some("image/jpeg"));
    // Past the first part of a multipart write (5 MiB).
    let large = || file_part(fixtures::pdf(6_000_000, 80), "x.pdf", None);
    let repeats: [(&str, &str, &str); 4] = [
        ("path", "f/x.jpg", "f/y.jpg"),
        ("folder", "f", "g"),
        ("cache", "no-cache", "no-store"),
        ("whatsapp", "false", "false"),
    ];
    let before = s.files();
    for (field, first, second) in repeats {
        // Exactly one of `path` and `folder`, whichever is not repeated.
        let with_place = |form: Form| match field {
            "path" | "folder" => form,
            _ => form.text("path", "f/x.jpg"),
        };
        let forms = [
            (
                "before the file",
                with_place(Form::new().text(field, first).text(field, second))
                    .part("file", small()),
            ),
            (
                "around the file",
                with_place(Form::new().text(field, first))
                    .part("file", small())
                    .text(field, second),
            ),
            (
                "after a large file",
                with_place(Form::new())
                    .part("file", large())
                    .text(field, first)
                    .text(field, second),
            ),
        ];
        for (what, form) in forms {
            let message = expect_error(post_form(&s, form).await, 400, "invalid_form").await;
            assert!(
                message.contains(&format!("{field:?}")),
                "{field} {what}: {message}"
            );
            assert_eq!(s.files(), before, "{field} {what}: storage changed");
            if backend == Backend::S3 {
                assert!(s.storage.s3().pending_multipart_uploads().is_empty());
            }
        }
    }
    for p in ["f/x.jpg", "f/y.jpg", "f/x.pdf", "g/x.jpg", "g/x.pdf"] {
        assert_serves(&s, p, None).await;
    }
    // Each once: stored.
    let form = Form::new()
        .text("folder", "f")
        .text("cache", "no-cache")
        .text("whatsapp", "false")
        .part("file", small());
    assert_eq!(post_form(&s, form).await.status(), 201);
}

async fn malformed_multipart_is_400_and_leaves_nothing(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let part_head = |boundary: &str, ctype: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\ndocs/x.pdf\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.pdf\"\r\n\
             Content-Type: {ctype}\r\n\r\n"
        )
        .into_bytes()
    };
    let complete = |boundary: &str, data: &[u8]| {
        let mut body = part_head(boundary, "application/pdf");
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        body
    };

    // A well-formed hand-written form works, so the failures below are about the framing.
    let ok = fixtures::pdf(5_000, 80);
    let r = post_raw_form(&s, "XyZ", complete("XyZ", &ok)).await;
    assert_eq!(r.status(), 201);
    assert_serves(&s, "docs/x.pdf", Some(&ok)).await;
    let r = s
        .admin(Method::DELETE, "/assets/docs/x.pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let before_bad = s.files();

    let small = fixtures::pdf(5_000, 81);
    let large = fixtures::pdf(9_000_000, 82); // past the first part of a multipart write
    let truncated = |data: &[u8]| {
        let mut body = part_head("XyZ", "application/pdf");
        body.extend_from_slice(data);
        body
    };
    // A body cut inside the file part fails while the file streams to storage, hence
    // `upload_interrupted` (the store's "the body could not be read to its end").
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "wrong boundary",
            "AbC",
            complete("XyZ", &small),
            "malformed_multipart",
        ),
        (
            "truncated in a small file part",
            "XyZ",
            truncated(&small),
            "upload_interrupted",
        ),
        (
            "truncated in a large file part",
            "XyZ",
            truncated(&large),
            "upload_interrupted",
        ),
        (
            "truncated in a text field",
            "XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\ndocs/x".to_vec(),
            "malformed_multipart",
        ),
        (
            "no parts at all",
            "XyZ",
            b"garbage".to_vec(),
            "malformed_multipart",
        ),
        (
            "truncated in a text field after a complete file part",
            "XyZ",
            [
                complete("XyZ", &small)
                    .strip_suffix(b"--\r\n".as_slice())
                    .unwrap(),
                b"\r\nContent-Disposition: form-data; name=\"cache\"\r\n\r\nno-ca",
            ]
            .concat(),
            "malformed_multipart",
        ),
    ];
    for (what, boundary, body, code) in cases {
        let r = post_raw_form(&s, boundary, body).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        error_body(status, &text, 400, code);
        assert_eq!(
            s.files(),
            before_bad,
            "{what}: storage changed (tmp leftovers?)"
        );
    }

    // Not multipart at all.
    let r = s
        .admin(Method::POST, "/assets")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "malformed_multipart").await;
    let r = s
        .admin(Method::POST, "/assets")
        .header("content-type", "multipart/form-data")
        .body(complete("XyZ", &small))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "malformed_multipart").await;

    assert_serves(&s, "docs/x.pdf", None).await;
    let s = s.restart().await;
    assert!(same_ignoring_policies(&before_bad, &s.files()));
    assert!(
        files_under(&s, "assets/")
            .iter()
            .all(|f| f == "assets/docs/x.pdf.json")
    );
}

async fn rejected_file_in_a_form_stores_nothing(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let before = s.files();
    let cases: Vec<(Form, u16, &str)> = vec![
        (
            Form::new()
                .text("path", "f/a.gif")
                .part("file", file_part(gif(3_000), "a.gif", Some("image/gif"))),
            415,
            "unsupported_media_type",
        ),
        (
            // Sniffed, not declared: still refused.
            Form::new()
                .text("path", "f/a.gif")
                .part("file", file_part(gif(3_000), "a.gif", None)),
            415,
            "unsupported_media_type",
        ),
        (
            Form::new()
                .part(
                    "file",
                    file_part(fixtures::png(3_000, 83), "a.jpg", Some("image/jpeg")),
                )
                .text("path", "f/a.jpg"),
            422,
            "content_type_mismatch",
        ),
        (
            Form::new().text("folder", "f").part(
                "file",
                file_part(Vec::new(), "empty.pdf", Some("application/pdf")),
            ),
            422,
            "invalid_media",
        ),
        (
            Form::new().text("path", "f/big.jpg").part(
                "file",
                file_part(fixtures::jpeg(IMAGE_MAX + 1, 84), "big.jpg", None),
            ),
            413,
            "too_large",
        ),
        (
            Form::new().text("path", "f/s.webp").part(
                "file",
                file_part(fixtures::webp(STATIC_STICKER_MAX + 1, 85), "s.webp", None),
            ),
            413,
            "too_large",
        ),
    ];
    for (form, status, code) in cases {
        expect_error(post_form(&s, form).await, status, code).await;
        assert_eq!(s.files(), before, "{code}: storage changed");
    }
    for p in ["f/a.gif", "f/a.jpg", "f/empty.pdf", "f/big.jpg", "f/s.webp"] {
        assert_serves(&s, p, None).await;
    }
}

// ---- 4. interrupted uploads ---------------------------------------------------------------

async fn upload_cut_off_mid_body_leaves_nothing(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let before = s.files();

    // Small cut: 100 KB of a declared 2 MB.
    let bytes = fixtures::jpeg(2_000_000, 90);
    let tcp = start_put(
        &s,
        "cut/a.jpg",
        "image/jpeg",
        bytes.len(),
        &bytes[..100_000],
    )
    .await;
    drop(tcp);

    // Large cut: 9 MB of a declared 20 MB PDF, so storage has begun a multipart write.
    let big = fixtures::pdf(20_000_000, 91);
    let tcp = start_put(
        &s,
        "cut/b.pdf",
        "application/pdf",
        big.len(),
        &big[..9_000_000],
    )
    .await;
    eventually("the upload is being written to tmp/", || {
        !files_under(&s, "tmp/").is_empty()
    })
    .await;
    drop(tcp);
    // The server cleans up on its own, without waiting for a restart.
    eventually("the interrupted upload is cleaned up", || {
        s.files() == before
    })
    .await;

    // A form cut off inside its file part, past the first part of the storage write.
    let form_head = b"--XyZ\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\ncut/c.pdf\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.pdf\"\r\n\
        Content-Type: application/pdf\r\n\r\n";
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    let head = request_head(
        &s,
        "POST",
        "/api/assets",
        &format!(
            "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n",
            form_head.len() + big.len() + 9
        ),
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(form_head).await.unwrap();
    tcp.write_all(&big[..9_000_000]).await.unwrap();
    eventually("the form upload is being written to tmp/", || {
        !files_under(&s, "tmp/").is_empty()
    })
    .await;
    drop(tcp);
    eventually("the interrupted form upload is cleaned up", || {
        s.files() == before
    })
    .await;

    for p in ["cut/a.jpg", "cut/b.pdf", "cut/c.pdf"] {
        assert_serves(&s, p, None).await;
        let r = s
            .admin(Method::GET, &format!("/assets/{p}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    assert!(files_under(&s, "assets/").is_empty());
    assert!(files_under(&s, "blobs/").is_empty());

    let s = s.restart().await;
    let after = s.files();
    assert!(same_ignoring_policies(&before, &after), "{after:?}");
    assert!(files_under(&s, "tmp/").is_empty());
    for p in ["cut/a.jpg", "cut/b.pdf", "cut/c.pdf"] {
        assert_serves(&s, p, None).await;
    }
}

async fn replacement_cut_off_mid_body_keeps_the_old_asset(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let old = fixtures::pdf(50_000, 92);
    s.upload("docs/menu.pdf", "application/pdf", old.clone())
        .await;
    let old_record = identity(&record(&s, "docs/menu.pdf").await);
    let before = s.files();

    let new = fixtures::pdf(12_000_000, 93);
    let tcp = start_put(
        &s,
        "docs/menu.pdf",
        "application/pdf",
        new.len(),
        &new[..9_000_000],
    )
    .await;
    eventually("the replacement is being written to tmp/", || {
        !files_under(&s, "tmp/").is_empty()
    })
    .await;
    // Mid-upload, the old asset is still what is served.
    assert_serves(&s, "docs/menu.pdf", Some(&old)).await;
    drop(tcp);
    eventually("the interrupted replacement is cleaned up", || {
        s.files() == before
    })
    .await;
    assert_serves(&s, "docs/menu.pdf", Some(&old)).await;
    assert_eq!(identity(&record(&s, "docs/menu.pdf").await), old_record);

    let small = start_put(
        &s,
        "docs/menu.pdf",
        "application/pdf",
        2_000_000,
        &new[..100_000],
    )
    .await;
    drop(small);

    let s = s.restart().await;
    assert!(
        same_ignoring_policies(&before, &s.files()),
        "{:?}",
        s.files()
    );
    assert_serves(&s, "docs/menu.pdf", Some(&old)).await;
    assert_eq!(identity(&record(&s, "docs/menu.pdf").await), old_record);
}

// ---- 5. concurrency -----------------------------------------------------------------------

async fn concurrent_puts_to_one_path_leave_exactly_one_complete_upload(backend: Backend) {
    // Commits to one path are serialised and each waits for a later second (Last-Modified
    // must move forward without running ahead of Date), so this takes about 16 s.
    let s = TestServer::start_on(backend).await;
    let bodies: Vec<Vec<u8>> = (0..16)
        .map(|i| fixtures::jpeg(40_000 + i * 1_111, 100 + i as u64))
        .collect();
    let hashes: Vec<String> = bodies.iter().map(|b| sha256(b)).collect();

    let results = futures::future::join_all(
        bodies
            .iter()
            .map(|b| s.put("race/one.jpg", "image/jpeg", b.clone())),
    )
    .await;
    let mut statuses: Vec<u16> = results.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert!(
        statuses.iter().all(|&st| st == 200 || st == 201),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&st| st == 201).count(),
        1,
        "exactly one upload created the path: {statuses:?}"
    );
    for r in results {
        let rec: Value = r.json().await.unwrap();
        assert!(hashes.contains(&rec["sha256"].as_str().unwrap().to_owned()));
    }

    let rec = record(&s, "race/one.jpg").await;
    let r = s.get(&s.media("race/one.jpg")).await;
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let body = r.bytes().await.unwrap();
    let got = sha256(&body);
    let i = hashes
        .iter()
        .position(|h| *h == got)
        .expect("the served body is one of the uploads, in full");
    assert_eq!(body.len(), bodies[i].len());
    assert_eq!(rec["sha256"], got);
    assert_eq!(rec["size"], body.len());
    assert_eq!(etag, format!("\"{got}\""));

    // One record; every upload's blob (kept for the grace period); nothing in flight.
    assert_eq!(files_under(&s, "assets/"), vec!["assets/race/one.jpg.json"]);
    assert_eq!(files_under(&s, "blobs/").len(), 16);
    assert!(files_under(&s, "tmp/").is_empty());
}

async fn readers_during_replacements_see_complete_bodies_matching_their_etag(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let bodies: Vec<Vec<u8>> = (0..10)
        .map(|i| fixtures::jpeg(150_000 + i * 37_001, 200 + i as u64))
        .collect();
    let hashes: Arc<Vec<String>> = Arc::new(bodies.iter().map(|b| sha256(b)).collect());
    s.upload("live/hero.jpg", "image/jpeg", bodies[0].clone())
        .await;

    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (client, url) = (s.client.clone(), s.media("live/hero.jpg"));
            let (done, hashes) = (Arc::clone(&done), Arc::clone(&hashes));
            tokio::spawn(async move {
                let mut reads = 0u32;
                let mut seen = std::collections::HashSet::new();
                loop {
                    let last = done.load(Ordering::SeqCst);
                    let r = client.get(&url).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
                    let len: usize = r.headers()["content-length"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    let body = r.bytes().await.unwrap();
                    let got = sha256(&body);
                    assert_eq!(body.len(), len, "short body");
                    assert_eq!(etag, format!("\"{got}\""), "body does not match its ETag");
                    assert!(hashes.contains(&got), "a body that was never uploaded");
                    seen.insert(got);
                    reads += 1;
                    if last {
                        return (reads, seen.len());
                    }
                }
            })
        })
        .collect();

    for (i, b) in bodies.iter().enumerate().skip(1) {
        let r = s.put("live/hero.jpg", "image/jpeg", b.clone()).await;
        assert_eq!(r.status(), 200, "replacement {i}");
    }
    done.store(true, Ordering::SeqCst);
    let mut total = 0;
    for r in readers {
        let (reads, _distinct) = r.await.unwrap();
        total += reads;
    }
    assert!(total >= 3, "the readers ran");
    // After the last replacement returned, everyone sees it.
    assert_serves(&s, "live/hero.jpg", Some(bodies.last().unwrap())).await;
}

/// After a replacement has been answered, the next GET on the same server serves it, even
/// when GETs that started before the replacement (on a cold record cache, as after a restart
/// or once the cache TTL ran out) finish after it.
async fn a_replacement_is_served_by_the_next_get_despite_racing_readers(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let n = 60;
    for i in 0..n {
        s.upload(
            &format!("hot/{i}.jpg"),
            "image/jpeg",
            fixtures::jpeg(1_000, i),
        )
        .await;
    }
    let s = s.restart().await; // every record cache entry is cold
    for i in 0..n {
        let path = format!("hot/{i}.jpg");
        let new = fixtures::jpeg(1_001, 1_000 + i);
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (client, url) = (s.client.clone(), s.media(&path));
                tokio::spawn(async move { client.get(&url).send().await.unwrap().status() })
            })
            .collect();
        let r = s.put(&path, "image/jpeg", new.clone()).await;
        assert_eq!(r.status(), 200);
        let rec: Value = r.json().await.unwrap();
        for r in readers {
            assert_eq!(r.await.unwrap(), 200);
        }
        let r = s.get(&s.media(&path)).await;
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(
            etag,
            format!("\"{}\"", rec["sha256"].as_str().unwrap()),
            "replacement {i} of {n}: a GET after the PUT's 200 served the previous version"
        );
        assert_eq!(r.bytes().await.unwrap(), new);
    }
}

// ---- 6. a large document ------------------------------------------------------------------

async fn twenty_megabyte_document_round_trips(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let bytes = fixtures::pdf(20_000_000, 300);
    let want = sha256(&bytes);
    let r = s
        .put("docs/catalogue.pdf", "application/pdf", bytes.clone())
        .await;
    assert_eq!(r.status(), 201);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["size"], 20_000_000);
    assert_eq!(rec["sha256"], want);
    assert_eq!(rec["kind"], "document");

    let r = s.get(&s.media("docs/catalogue.pdf")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "20000000");
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), 20_000_000);
    assert_eq!(sha256(&body), want);
    let blob = s.root().join(format!("blobs/sha256/{}/{want}", &want[..2]));
    assert_eq!(std::fs::metadata(&blob).unwrap().len(), 20_000_000);
    assert!(files_under(&s, "tmp/").is_empty());

    // The same through a form.
    let bytes = fixtures::pdf(17_000_000, 301);
    let form = Form::new().text("path", "docs/catalogue-2.pdf").part(
        "file",
        file_part(bytes.clone(), "catalogue-2.pdf", Some("application/pdf")),
    );
    let r = post_form(&s, form).await;
    assert_eq!(r.status(), 201);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["sha256"], sha256(&bytes));
    let body = s
        .get(&s.media("docs/catalogue-2.pdf"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256(&body), sha256(&bytes));
}

/// Sizes at and just past the multipart write's part sizes (5 MiB now, 8 MiB before) land
/// byte-exact.
async fn documents_around_the_storage_part_size_round_trip(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    const MIB: usize = 1024 * 1024;
    for (i, len) in [5 * MIB - 1, 5 * MIB, 5 * MIB + 1, 8 * MIB, 10 * MIB + 1]
        .into_iter()
        .enumerate()
    {
        let path = format!("parts/{len}.pdf");
        let bytes = fixtures::pdf(len, 400 + i as u64);
        let rec = s.upload(&path, "application/pdf", bytes.clone()).await;
        assert_eq!(rec["size"], len);
        assert_eq!(rec["sha256"], sha256(&bytes));
        assert_serves(&s, &path, Some(&bytes)).await;
    }
    assert!(files_under(&s, "tmp/").is_empty());
}

/// Uploading what a path already holds (the same bytes, stored as the same type) is a no-op:
/// 200 with the record as it was, the same `Last-Modified` and `link`, nothing written. A sync
/// script that uploads everything again must not make Meta download everything again.
async fn the_same_bytes_again_change_nothing(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let bytes = fixtures::jpeg(10_000, 30);
    let r = s.put("promo/a.jpg", "image/jpeg", bytes.clone()).await;
    assert_eq!(r.status(), 201);
    let first: Value = r.json().await.unwrap();
    let record_file = s.root().join("assets/promo/a.jpg.json");
    let stored = std::fs::read(&record_file).unwrap();
    let files = s.files();
    // A later second, so that anything rewritten would show it.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // By PUT, with the type declared or taken from the bytes, and by form: 200, the record
    // exactly as it was, and storage as it was.
    let again = [
        s.put("promo/a.jpg", "image/jpeg", bytes.clone()).await,
        put_untyped(&s, "promo/a.jpg", bytes.clone()).await,
        post_form(
            &s,
            Form::new().text("path", "promo/a.jpg").part(
                "file",
                file_part(bytes.clone(), "a.jpg", Some("image/jpeg")),
            ),
        )
        .await,
    ];
    for r in again {
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), first);
        assert_eq!(std::fs::read(&record_file).unwrap(), stored);
        assert_eq!(s.files(), files);
    }
    assert_eq!(record(&s, "promo/a.jpg").await, first);
    let r = s.get(&s.media("promo/a.jpg")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["last-modified"],
        first["last_modified"].as_str().unwrap()
    );
    assert_eq!(r.headers()["cache-control"], "max-age=86400");
    assert_eq!(r.bytes().await.unwrap(), bytes);

    // What the upload asks for besides the bytes still applies, as a PATCH would: an override
    // in `?cache=`, a form's file name. The version stays.
    let r = s
        .admin(Method::PUT, "/assets/promo/a.jpg?cache=no-store")
        .header("content-type", "image/jpeg")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cached: Value = r.json().await.unwrap();
    assert_eq!(
        (
            &cached["cache_override"],
            &cached["cache_control"],
            &cached["policy_source"]
        ),
        (&json!("no-store"), &json!("no-store"), &json!("asset"))
    );
    for key in ["last_modified", "uploaded_at", "link", "etag", "message"] {
        assert_eq!(cached[key], first[key], "{key}");
    }
    let r = s.get(&s.media("promo/a.jpg")).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(
        r.headers()["last-modified"],
        first["last_modified"].as_str().unwrap()
    );
    // Without `?cache=` the override is kept, as by any upload.
    let r = s.put("promo/a.jpg", "image/jpeg", bytes.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), cached);

    let doc = fixtures::pdf(5_000, 31);
    let form = |name: &str| {
        Form::new().text("path", "legal/terms.pdf").part(
            "file",
            file_part(doc.clone(), name, Some("application/pdf")),
        )
    };
    let r = post_form(&s, form("Terms.pdf")).await;
    assert_eq!(r.status(), 201);
    let terms: Value = r.json().await.unwrap();
    let r = post_form(&s, form("Terms 2026.pdf")).await;
    assert_eq!(r.status(), 200);
    let renamed: Value = r.json().await.unwrap();
    assert_eq!(renamed["message"]["document"]["filename"], "Terms 2026.pdf");
    assert_eq!(renamed["link"], terms["link"]);
    assert_eq!(renamed["last_modified"], terms["last_modified"]);
    // A PUT names no file: the record keeps the name it has.
    let r = s
        .put("legal/terms.pdf", "application/pdf", doc.clone())
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), renamed);

    // The same bytes stored as another type are another version: served differently, so a
    // new Last-Modified and link.
    let clip = fixtures::mp4(50_000, 32);
    let r = s.put("promo/clip", "video/mp4", clip.clone()).await;
    assert_eq!(r.status(), 201);
    let mp4: Value = r.json().await.unwrap();
    let r = s.put("promo/clip", "video/3gpp", clip.clone()).await;
    assert_eq!(r.status(), 200);
    let three_gpp: Value = r.json().await.unwrap();
    assert_eq!(three_gpp["content_type"], "video/3gpp");
    assert_eq!(three_gpp["sha256"], mp4["sha256"]);
    assert_ne!(three_gpp["last_modified"], mp4["last_modified"]);
    assert_ne!(three_gpp["link"], mp4["link"]);
    // Other bytes, of course, too; and after a delete the same bytes are a new asset.
    let r = s
        .put("promo/a.jpg", "image/jpeg", fixtures::jpeg(10_000, 33))
        .await;
    assert_eq!(r.status(), 200);
    let other: Value = r.json().await.unwrap();
    assert_ne!(other["link"], first["link"]);
    let r = s
        .admin(Method::DELETE, "/assets/promo/a.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s.put("promo/a.jpg", "image/jpeg", bytes.clone()).await;
    assert_eq!(r.status(), 201);
    let back: Value = r.json().await.unwrap();
    assert_ne!(back["last_modified"], first["last_modified"]);
    assert_ne!(back["link"], first["link"]);
}

on_both_backends! {
    the_same_bytes_again_change_nothing,
    unsupported_declared_type_is_415_and_stores_nothing,
    declared_type_that_contradicts_the_bytes_is_422,
    oversize_with_content_length_is_413_before_the_body_is_read,
    oversize_streamed_without_length_or_type_is_413,
    static_sticker_over_100_kb_is_413,
    empty_body_is_422,
    unrecognised_binary_without_type_is_415,
    invalid_paths_are_400_and_store_nothing,
    invalid_cache_query_is_400,
    rejected_replacement_keeps_the_old_asset,
    put_creates_with_201_and_replaces_with_200,
    missing_content_type_is_taken_from_the_bytes_and_extension,
    ogg_opus_is_stored_and_served_as_audio_ogg_codecs_opus,
    pdf_is_a_document_sent_with_its_file_name,
    exactly_at_the_size_limit_is_accepted,
    utf8_text_longer_than_the_sniff_window_is_a_document,
    utf8_text_with_a_character_across_the_sniff_window_is_a_document,
    form_upload_with_path,
    form_upload_with_folder_keeps_the_file_name,
    form_upload_with_cache,
    form_field_order_does_not_matter,
    invalid_forms_are_400_and_store_nothing,
    repeated_form_fields_are_400_and_store_nothing,
    malformed_multipart_is_400_and_leaves_nothing,
    rejected_file_in_a_form_stores_nothing,
    upload_cut_off_mid_body_leaves_nothing,
    replacement_cut_off_mid_body_keeps_the_old_asset,
    concurrent_puts_to_one_path_leave_exactly_one_complete_upload,
    readers_during_replacements_see_complete_bodies_matching_their_etag,
    a_replacement_is_served_by_the_next_get_despite_racing_readers,
    twenty_megabyte_document_round_trips,
    documents_around_the_storage_part_size_round_trip,
}
