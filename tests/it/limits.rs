//! The server's patience with clients and its shutdown: the admin API on a listener of its own,
//! slow and oversized request headers, stalled upload bodies, and SIGTERM with a download in
//! flight. Each test talks raw TCP where a well-behaved HTTP client could not misbehave enough.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Backend, Storage, TOKEN, TestServer, fixtures};
use media_origin::config::{AdminBind, Settings};
use reqwest::Method;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_media-origin");

fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Read until the server closes the connection (or `limit` passes); what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn status_line(response: &[u8]) -> String {
    String::from_utf8_lossy(response)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_api_listens_apart_from_the_public_listener() {
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |c| {
        c.server.admin_bind = AdminBind::Addr("127.0.0.1:0".parse().unwrap());
    })
    .await;
    assert_ne!(s.addr, s.admin_addr);
    let body = fixtures::jpeg(5_000, 1);
    s.upload("promo/a.jpg", "image/jpeg", body.clone()).await;

    // The public listener serves the asset and knows nothing of /api, token or not.
    let r = s.get(&s.media("promo/a.jpg")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), body);
    for (method, path) in [
        (Method::GET, "/api/assets"),
        (Method::GET, "/api/assets/promo/a.jpg"),
        (Method::PUT, "/api/assets/promo/b.jpg"),
        (Method::DELETE, "/api/assets/promo/a.jpg"),
        (Method::GET, "/api/policies"),
    ] {
        let r = s
            .client
            .request(method.clone(), s.url(path))
            .bearer_auth(TOKEN)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{method} {path} on the public listener");
        let json: serde_json::Value = r.json().await.unwrap();
        assert_eq!(json["error"]["code"], "not_found");
    }
    // The admin listener does not serve assets.
    let r = s
        .client
        .get(format!("http://{}/media/promo/a.jpg", s.admin_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Both answer health checks.
    for addr in [s.addr, s.admin_addr] {
        let r = s
            .client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Nothing was deleted through the public listener.
    assert_eq!(s.get(&s.media("promo/a.jpg")).await.status(), 200);
}

#[test]
fn by_default_the_admin_api_is_on_loopback_on_its_own_port() {
    let s = Settings::default();
    match s.server.admin_bind {
        AdminBind::Addr(a) => {
            assert!(a.ip().is_loopback(), "{a}");
            assert_ne!(a, s.server.bind);
        }
        AdminBind::Public => panic!("the admin API must not share the public listener by default"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_header_sent_byte_by_byte_is_cut_off_and_holds_nothing() {
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |c| {
        c.server.header_read_timeout_secs = 1;
    })
    .await;
    s.upload("a.jpg", "image/jpeg", fixtures::jpeg(2_000, 1))
        .await;
    // 200 slowloris connections, each trickling its header a byte at a time.
    let request = b"GET /media/a.jpg HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut slow = Vec::new();
    for _ in 0..200 {
        slow.push(tokio::spawn({
            let addr = s.addr;
            async move {
                let mut tcp = TcpStream::connect(addr).await.unwrap();
                let start = Instant::now();
                for b in request {
                    if tcp.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if start.elapsed() > Duration::from_secs(4) {
                        break;
                    }
                }
                let closed = read_until_closed(&mut tcp, Duration::from_secs(5)).await;
                (start.elapsed(), closed)
            }
        }));
    }
    // Meanwhile a normal client is served at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let r = s.get(&s.media("a.jpg")).await;
    assert_eq!(r.status(), 200);
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    for task in slow {
        let (took, closed) = task.await.unwrap();
        let closed = closed.expect("the server closed the slow connection");
        // Cut at the 1 s header timeout (it never got a whole header, so no 200).
        assert!(!status_line(&closed).contains("200"), "{closed:?}");
        assert!(took < Duration::from_secs(3), "cut after {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_and_overcrowded_headers_get_431() {
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |c| {
        c.server.max_header_bytes = 8 * 1024;
    })
    .await;
    s.upload("a.jpg", "image/jpeg", fixtures::jpeg(2_000, 1))
        .await;
    let big = format!(
        "GET /media/a.jpg HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9 * 1024)
    );
    let mut many = String::from("GET /media/a.jpg HTTP/1.1\r\nHost: x\r\n");
    for i in 0..120 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    for request in [big, many] {
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let got = read_until_closed(&mut tcp, Duration::from_secs(5))
            .await
            .expect("an answer");
        assert!(
            status_line(&got).starts_with("HTTP/1.1 431"),
            "{}",
            status_line(&got)
        );
    }
    // A header just under the limit is fine.
    let ok = format!(
        "GET /media/a.jpg HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "a".repeat(7 * 1024)
    );
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(ok.as_bytes()).await.unwrap();
    let got = read_until_closed(&mut tcp, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        status_line(&got).starts_with("HTTP/1.1 200"),
        "{}",
        status_line(&got)
    );
}

async fn stalled_upload_is_cut_and_stores_nothing(backend: Backend) {
    let s = TestServer::start_with(Storage::new(backend).await, |c| {
        c.server.body_idle_timeout_secs = 1;
    })
    .await;
    let old = fixtures::mp4(300_000, 1);
    s.upload("clips/a.mp4", "video/mp4", old.clone()).await;
    let before = s.files();

    // Declare 2 MB, send 200 KB, then nothing.
    let new = fixtures::mp4(2_000_000, 2);
    let mut tcp = TcpStream::connect(s.admin_addr).await.unwrap();
    let head = format!(
        "PUT /api/assets/clips/a.mp4 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: video/mp4\r\nContent-Length: {}\r\n\r\n",
        new.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&new[..200_000]).await.unwrap();
    let start = Instant::now();
    let got = read_until_closed(&mut tcp, Duration::from_secs(10))
        .await
        .expect("the server gave up on the stalled body");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(4), "cut after {took:?}");
    let line = status_line(&got);
    assert!(
        line.is_empty() || line.starts_with("HTTP/1.1 4"),
        "{line}: {}",
        String::from_utf8_lossy(&got)
    );
    // The old version still serves, whole; no temporary is left.
    let r = s.get(&s.media("clips/a.mp4")).await;
    assert_eq!(sha256(&r.bytes().await.unwrap()), sha256(&old));
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.files() != before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.files(), before, "something was left behind");
}

/// The binary with `shutdown_grace_secs = grace`, holding a 15 MB `big.mp4`.
async fn binary_with_big_asset(
    grace: u64,
) -> (tempfile::TempDir, common::Spawned, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = common::spawn_binary(
        Command::new(BIN)
            .current_dir(dir.path())
            .args(["serve", "--storage", "data", "--bind", "127.0.0.1:0"])
            .env("MEDIA_ORIGIN_ADMIN_TOKEN", TOKEN)
            .env(
                "MEDIA_ORIGIN__SERVER__SHUTDOWN_GRACE_SECS",
                grace.to_string(),
            ),
    );
    let body = fixtures::mp4(15_000_000, 3);
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .put(format!("http://{addr}/api/assets/big.mp4"))
        .bearer_auth(TOKEN)
        .header("content-type", "video/mp4")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    (dir, child, addr, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_a_large_download_in_flight_finish_then_exits() {
    let (_dir, mut child, addr, body) = binary_with_big_asset(30).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    // A slow reader: 64 KiB at a time with pauses, so the download spans the SIGTERM.
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.write_all(b"GET /media/big.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let n = tcp.read(&mut buf).await.unwrap();
    got.extend_from_slice(&buf[..n]);

    let term = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No new connections once shutdown has begun.
    assert!(
        client
            .get(format!("http://{addr}/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_err(),
        "a new request was accepted after SIGTERM"
    );
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        match tcp.read(&mut buf).await.unwrap() {
            0 => break,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    let split = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..split]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(got.len() - split, body.len(), "the whole body arrived");
    assert_eq!(sha256(&got[split..]), sha256(&body));
    // Then the process exits, cleanly.
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(term.elapsed() < Duration::from_secs(20), "no exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_cuts_what_is_still_running_at_the_deadline() {
    let (_dir, mut child, addr, _) = binary_with_big_asset(1).await;
    // A client that starts a download and never reads it.
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /media/big.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let term = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            term.elapsed() < Duration::from_secs(10),
            "still running long after the 1 s grace period"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert!(
        term.elapsed() >= Duration::from_millis(900),
        "{:?}",
        term.elapsed()
    );
    drop(tcp);
}

on_both_backends! {
    stalled_upload_is_cut_and_stores_nothing,
}
