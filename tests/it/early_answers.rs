//! Answers sent before the request body was read (401, 413 on an upload) reach clients that
//! send the whole body before they read: the server drains the unread body, within bounds,
//! before it closes (lingering close, RFC 9112 §9.6). Before, it closed with the body unread,
//! the kernel reset the connection, and Python's urllib reported "broken pipe".

use crate::common;

use std::time::{Duration, Instant};

use common::{TOKEN, TestServer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// PUT `size` zero bytes declared as `content_type` to `url` with `token`, the way Python's
/// standard library does it (no `Expect`: the whole body goes before the answer is read);
/// print what came back as JSON: `{"status", "body"}` or `{"error"}`.
const PYTHON_PUT: &str = r#"
import json, sys, urllib.error, urllib.request
url, token, content_type, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
req = urllib.request.Request(url, data=bytes(size), method="PUT",
                             headers={"Content-Type": content_type, "Authorization": "Bearer " + token})
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(json.dumps({"status": r.status, "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode()}))
except Exception as e:
    print(json.dumps({"error": repr(e)}))
"#;

async fn python_put(url: &str, token: &str, content_type: &str, size: usize) -> Value {
    let out = tokio::process::Command::new("python3")
        .args([
            "-c",
            PYTHON_PUT,
            url,
            token,
            content_type,
            &size.to_string(),
        ])
        .output()
        .await
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The status and JSON body Python got.
fn answer(got: &Value) -> (u64, Value) {
    let status = got["status"]
        .as_u64()
        .unwrap_or_else(|| panic!("no answer: {got}"));
    (
        status,
        serde_json::from_str(got["body"].as_str().unwrap()).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_image_over_the_limit_gets_its_413_through_urllib() {
    let s = TestServer::start().await;
    let got = python_put(
        &s.url("/api/assets/promo/big.jpg"),
        TOKEN,
        "image/jpeg",
        6_000_000,
    )
    .await;
    assert_eq!(
        answer(&got),
        (
            413,
            json!({"error": {
                "code": "too_large",
                "message": "the upload is 6000000 bytes; the limit for this type is 5000000 bytes",
            }})
        )
    );
    assert_eq!(s.files(), Vec::<String>::new(), "nothing stored");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_token_gets_its_401_through_urllib() {
    let s = TestServer::start().await;
    // The 401 a client gets when it reads in time.
    let expected = s
        .client
        .put(s.url("/api/assets/promo/big.jpg"))
        .bearer_auth("wrong-token-of-some-length")
        .header("content-type", "image/jpeg")
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(expected.status(), 401);
    let expected: Value = expected.json().await.unwrap();
    assert_eq!(expected["error"]["code"], "unauthorized");
    let got = python_put(
        &s.url("/api/assets/promo/big.jpg"),
        "wrong-token-of-some-length",
        "image/jpeg",
        6_000_000,
    )
    .await;
    assert_eq!(answer(&got), (401, expected));
    assert_eq!(s.files(), Vec::<String>::new(), "nothing stored");
    s.stop().await;
}

/// Read one response with a `Content-Length`: its status and body.
async fn read_response(tcp: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(split) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..split]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap();
            if got.len() >= split + 4 + length {
                let status = head[9..12].parse().unwrap();
                return (status, got[split + 4..split + 4 + length].to_vec());
            }
        }
        let n = tcp.read(&mut buf).await.unwrap();
        assert_ne!(n, 0, "closed before a whole response: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// Once the unread body has been drained to its end, the connection serves the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drained_connection_serves_the_next_request() {
    let s = TestServer::start().await;
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    let body = vec![0u8; 2_000_000];
    tcp.write_all(
        format!(
            "PUT /api/assets/a.jpg HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-xxxxxxxx\r\n\
             Content-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tcp.write_all(&body).await.unwrap();
    let (status, _) = read_response(&mut tcp).await;
    assert_eq!(status, 401);
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (status, body) = read_response(&mut tcp).await;
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"{\"status\":\"ok\"}"[..])
    );
    s.stop().await;
}

/// Read until the server closes; how long that took from `since`.
async fn closed_after(tcp: &mut TcpStream, since: Instant, limit: Duration) -> Duration {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, tcp.read(&mut buf)).await {
            Err(_) => panic!("still open after {limit:?}"),
            Ok(Ok(0) | Err(_)) => return since.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

/// Draining is bounded: a body that stops coming is given up 5 s after its last byte, and one
/// declared longer than the largest upload and a little more is not drained at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn draining_is_bounded() {
    let s = TestServer::start().await;
    let head = |length: u64| {
        format!(
            "PUT /api/assets/a.jpg HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-xxxxxxxx\r\n\
             Content-Type: image/jpeg\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    // 1 MB of a declared 50 MB, then nothing (the connection left open).
    let mut stalls = TcpStream::connect(s.addr).await.unwrap();
    stalls.write_all(head(50_000_000).as_bytes()).await.unwrap();
    stalls.write_all(&vec![0u8; 1_000_000]).await.unwrap();
    let last_byte = Instant::now();
    // 150 MB declared: over the 102 MB drained at most.
    let mut huge = TcpStream::connect(s.addr).await.unwrap();
    huge.write_all(head(150_000_000).as_bytes()).await.unwrap();
    huge.write_all(&[0u8; 1000]).await.unwrap();
    let sent = Instant::now();

    let (status, _) = read_response(&mut huge).await;
    assert_eq!(status, 401);
    let huge_closed = closed_after(&mut huge, sent, Duration::from_secs(2)).await;
    assert!(huge_closed < Duration::from_secs(1), "{huge_closed:?}");

    let (status, _) = read_response(&mut stalls).await;
    assert_eq!(status, 401);
    let stalled_closed = closed_after(&mut stalls, last_byte, Duration::from_secs(10)).await;
    assert!(
        stalled_closed >= Duration::from_millis(4900) && stalled_closed < Duration::from_secs(6),
        "{stalled_closed:?}"
    );
    s.stop().await;
}
