//! The smaller points of the security review, against the real server (in process, or the
//! binary where start-up is what is tested): one `Authorization` header only.
//!
//! Requests that must reach the server exactly as written go over a raw socket.

mod common;

use std::net::SocketAddr;

use common::{TOKEN, TestServer, fixtures};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer read off a raw socket.
#[derive(Debug)]
struct Raw {
    status: u16,
    /// Header names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Send `head` (request line and header lines, each ending in CRLF; no blank line) to `addr`
/// with `Connection: close`, and read the whole answer.
async fn send(addr: SocketAddr, head: &str) -> Raw {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&out)));
    let text = String::from_utf8(out[..split].to_vec()).unwrap();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut body = out[split + 4..].to_vec();
    if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = unchunk(&body);
    }
    Raw {
        status,
        headers,
        body,
    }
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

fn error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

// ---- Authorization ---------------------------------------------------------------------------

/// Two `Authorization` headers are refused whichever holds the token, with the API's usual 401;
/// one header with the token still passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_authorization_headers_are_refused_whichever_holds_the_token() {
    let s = TestServer::start().await;
    s.upload("a.pdf", "application/pdf", fixtures::pdf(1000, 1))
        .await;
    let good = format!("Authorization: Bearer {TOKEN}\r\n");
    let host = format!("Host: {}\r\n", s.addr);
    let one = send(
        s.addr,
        &format!("GET /api/assets/a.pdf HTTP/1.1\r\n{host}{good}"),
    )
    .await;
    assert_eq!(one.status, 200, "{:?}", String::from_utf8_lossy(&one.body));
    assert_eq!(one.json()["path"], "a.pdf");
    for second in [
        "Authorization: Bearer wrong-token-0123456789\r\n".to_owned(),
        good.clone(),
        "Authorization: Basic dXNlcjpwYXNz\r\n".to_owned(),
        "Authorization: \r\n".to_owned(),
    ] {
        for (first, then) in [(&good, &second), (&second, &good)] {
            for (method, target) in [
                ("GET", "/api/assets/a.pdf"),
                ("DELETE", "/api/assets/a.pdf"),
                ("GET", "/metrics"),
            ] {
                let r = send(
                    s.addr,
                    &format!("{method} {target} HTTP/1.1\r\n{host}{first}{then}"),
                )
                .await;
                let what = format!("{method} {target} with {first:?} then {then:?}");
                assert_eq!(r.status, 401, "{what}");
                assert_eq!(
                    r.json(),
                    error(
                        "unauthorized",
                        "the admin API needs `Authorization: Bearer <token>` with the admin token"
                    ),
                    "{what}"
                );
                assert_eq!(
                    r.header("www-authenticate"),
                    Some("Bearer realm=\"media-origin\""),
                    "{what}"
                );
            }
        }
    }
    // Nothing was deleted by any of them.
    let r = s.get(&s.media("a.pdf")).await;
    assert_eq!(r.status(), 200);
}
