//! The smaller points of the security review, against the real server (in process, or the
//! binary where start-up is what is tested): one `Authorization` header only; `Host` as
//! RFC 9112 §3.2 says, and the admin listener answering only to its own names (DNS rebinding).
//!
//! Requests that must reach the server exactly as written go over a raw socket.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{Storage, TOKEN, TestServer, fixtures};
use media_origin::config::AdminBind;
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

// ---- Host ------------------------------------------------------------------------------------

const MISSING_HOST: &str = "an HTTP/1.1 request must have a Host header";
const TWO_HOSTS: &str = "the request has more than one Host header";
const BAD_HOST: &str = "the Host header is not a host name, with an optional :port";

fn misdirected(name: &str) -> Value {
    error(
        "misdirected_request",
        &format!(
            "the admin API does not answer to the name {name:?}: it answers only to its bind \
             address, localhost, 127.0.0.1, [::1] and the names in admin.allowed_hosts, so that \
             a web page cannot reach it through DNS rebinding; if {name:?} is a name of this \
             server, add it to admin.allowed_hosts (MEDIA_ORIGIN__ADMIN__ALLOWED_HOSTS)"
        ),
    )
}

/// The RFC 9112 §3.2 refusals at `addr`, on `target`.
async fn assert_host_rules(addr: SocketAddr, target: &str, valid_host: &str) {
    let cases = [
        (format!("GET {target} HTTP/1.1\r\n"), MISSING_HOST),
        (
            format!("GET {target} HTTP/1.1\r\nHost: {valid_host}\r\nHost: {valid_host}\r\n"),
            TWO_HOSTS,
        ),
        (
            format!("GET {target} HTTP/1.1\r\nHost: {valid_host}\r\nHost: other.example\r\n"),
            TWO_HOSTS,
        ),
        (
            format!("GET {target} HTTP/1.0\r\nHost: {valid_host}\r\nHost: {valid_host}\r\n"),
            TWO_HOSTS,
        ),
        (format!("GET {target} HTTP/1.1\r\nHost: \r\n"), BAD_HOST),
        (
            format!("GET {target} HTTP/1.1\r\nHost: user@{valid_host}\r\n"),
            BAD_HOST,
        ),
        (format!("GET {target} HTTP/1.1\r\nHost: a b\r\n"), BAD_HOST),
        (
            format!("GET {target} HTTP/1.1\r\nHost: localhost:99999\r\n"),
            BAD_HOST,
        ),
    ];
    for (head, message) in cases {
        let r = send(addr, &head).await;
        assert_eq!(r.status, 400, "{head:?}");
        assert_eq!(r.json(), error("invalid_host", message), "{head:?}");
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{head:?}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert!(r.header("x-request-id").is_some(), "{head:?}");
    }
    // HTTP/1.0 may come without Host; one valid Host passes.
    let r = send(addr, &format!("GET {target} HTTP/1.0\r\n")).await;
    assert_eq!(r.status, 200, "HTTP/1.0 without Host");
    let r = send(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: {valid_host}\r\n"),
    )
    .await;
    assert_eq!(r.status, 200, "one Host");
}

/// The public listener (and a shared one) refuses HTTP/1.1 without Host and two Hosts with 400,
/// but answers any one name: Meta's fetcher and a CDN use the public name.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_host_or_with_two_the_answer_is_400_on_every_listener() {
    // Apart: the public listener and the admin listener.
    let s = TestServer::start_with(Storage::new(common::Backend::Local).await, |c| {
        c.server.admin_bind = AdminBind::Addr("127.0.0.1:0".parse().unwrap());
    })
    .await;
    s.upload("a.pdf", "application/pdf", fixtures::pdf(1000, 1))
        .await;
    for target in ["/media/a.pdf", "/healthz"] {
        assert_host_rules(s.addr, target, "media.example.com").await;
    }
    let admin_host = s.admin_addr.to_string();
    for target in ["/metrics", "/healthz", "/api/openapi.json"] {
        assert_host_rules(s.admin_addr, target, &admin_host).await;
    }
    // Authenticated or not, the Host check comes first.
    let r = send(
        s.admin_addr,
        &format!("GET /api/assets/a.pdf HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), error("invalid_host", MISSING_HOST));
    // Shared: the same rules.
    let shared = TestServer::start().await;
    shared
        .upload("a.pdf", "application/pdf", fixtures::pdf(1000, 1))
        .await;
    for target in ["/media/a.pdf", "/api/openapi.json"] {
        assert_host_rules(shared.addr, target, "media.example.com").await;
    }
    // The refusals are counted like every answer.
    let metrics = send(
        s.admin_addr,
        &format!("GET /metrics HTTP/1.1\r\nHost: {admin_host}\r\n"),
    )
    .await;
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.lines()
            .any(|l| l == "media_origin_http_requests_total{route=\"media\",status=\"400\"} 8"),
        "{text}"
    );
}

/// The admin listener answers only to its bind address and the loopback names (with its port
/// or none) and to `admin.allowed_hosts`: a page whose name was rebound to 127.0.0.1 gets 421
/// with the setting to change, for `/metrics`, the API description, the page and the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_listener_answers_only_to_its_own_names() {
    let s = TestServer::start_with(Storage::new(common::Backend::Local).await, |c| {
        c.server.admin_bind = AdminBind::Addr("127.0.0.1:0".parse().unwrap());
        c.admin.allowed_hosts = vec!["Admin.Example.com".into(), "proxy.internal:9443".into()];
    })
    .await;
    let port = s.admin_addr.port();
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let targets = [
        ("/metrics", ""),
        ("/api/openapi.json", ""),
        ("/admin", ""),
        ("/healthz", ""),
        ("/api/policies", auth.as_str()),
    ];
    for name in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".into(),
        format!("localhost:{port}"),
        "LocalHost".into(),
        format!("[::1]:{port}"),
        "[::1]".into(),
        "admin.example.com".into(),
        format!("ADMIN.example.com:{port}"),
        "proxy.internal:9443".into(),
    ] {
        for (target, extra) in &targets {
            let r = send(
                s.admin_addr,
                &format!("GET {target} HTTP/1.1\r\nHost: {name}\r\n{extra}"),
            )
            .await;
            assert_eq!(r.status, 200, "{target} as {name}");
        }
    }
    for name in [
        format!("evil.example:{port}"),
        "evil.example".into(),
        format!("localhost:{}", port.wrapping_add(1).max(1)),
        format!("127.0.0.2:{port}"),
        "proxy.internal".into(),
        format!("proxy.internal:{port}"),
        "admin.example.com:9443".into(),
        format!("localhost.evil.example:{port}"),
    ] {
        for (target, extra) in &targets {
            let r = send(
                s.admin_addr,
                &format!("GET {target} HTTP/1.1\r\nHost: {name}\r\n{extra}"),
            )
            .await;
            assert_eq!(r.status, 421, "{target} as {name}");
            assert_eq!(r.json(), misdirected(&name), "{target} as {name}");
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        }
    }
    // An absolute-form target names the host instead of Host (RFC 9112 §3.2.2).
    let r = send(
        s.admin_addr,
        &format!("GET http://evil.example:{port}/metrics HTTP/1.1\r\nHost: localhost:{port}\r\n"),
    )
    .await;
    assert_eq!(r.status, 421);
    assert_eq!(r.json(), misdirected(&format!("evil.example:{port}")));
    // The public listener answers to any name.
    let r = send(s.addr, "GET /healthz HTTP/1.1\r\nHost: evil.example\r\n").await;
    assert_eq!(r.status, 200);
}

/// On a shared listener (`admin_bind = "public"`) any name reaches everything by default (the
/// admin routes there need the token); with `admin.allowed_hosts` set, the admin routes answer
/// only to those names and the loopback ones, `/media` and health to any.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_listener_limits_admin_routes_only_when_told_to() {
    let open = TestServer::start().await;
    open.upload("a.pdf", "application/pdf", fixtures::pdf(1000, 1))
        .await;
    for target in ["/api/openapi.json", "/media/a.pdf", "/admin"] {
        let r = send(
            open.addr,
            &format!("GET {target} HTTP/1.1\r\nHost: anything.example\r\n"),
        )
        .await;
        assert_eq!(r.status, 200, "{target}");
    }

    let storage = Storage::new(common::Backend::Local).await;
    let s = TestServer::start_with(Arc::clone(&storage), |c| {
        c.admin.allowed_hosts = vec!["admin.example.com".into()];
    })
    .await;
    s.upload("a.pdf", "application/pdf", fixtures::pdf(1000, 1))
        .await;
    for target in ["/media/a.pdf", "/healthz", "/readyz"] {
        let r = send(
            s.addr,
            &format!("GET {target} HTTP/1.1\r\nHost: cdn.example\r\n"),
        )
        .await;
        assert_eq!(r.status, 200, "{target}");
    }
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    for (target, extra) in [
        ("/api/openapi.json", ""),
        ("/admin", ""),
        ("/metrics", auth.as_str()),
        ("/api/assets/a.pdf", auth.as_str()),
    ] {
        let r = send(
            s.addr,
            &format!("GET {target} HTTP/1.1\r\nHost: cdn.example\r\n{extra}"),
        )
        .await;
        assert_eq!(r.status, 421, "{target}");
        assert_eq!(r.json(), misdirected("cdn.example"), "{target}");
        for name in [
            "admin.example.com".to_owned(),
            s.addr.to_string(),
            "localhost".into(),
        ] {
            let r = send(
                s.addr,
                &format!("GET {target} HTTP/1.1\r\nHost: {name}\r\n{extra}"),
            )
            .await;
            assert_eq!(r.status, 200, "{target} as {name}");
        }
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_media-origin");

/// `media-origin serve` in a fresh directory, configured by `env`.
fn serve_command(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    cmd.current_dir(dir)
        .args(["serve", "--storage", "data"])
        .env_remove("MEDIA_ORIGIN_ADMIN_TOKEN")
        .env("MEDIA_ORIGIN__SERVER__BIND", "127.0.0.1:0")
        // One listener on a free port, unless the test says otherwise (not 127.0.0.1:8081).
        .env("MEDIA_ORIGIN__SERVER__ADMIN_BIND", "public")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The binary takes `admin.allowed_hosts` from the environment (a comma-separated list) for
/// its own admin listener, and refuses to start on an entry that is no host name.
#[test]
fn admin_allowed_hosts_is_configured_and_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve_command(
        dir.path(),
        &[
            ("MEDIA_ORIGIN_ADMIN_TOKEN", TOKEN),
            (
                "MEDIA_ORIGIN__ADMIN__ALLOWED_HOSTS",
                "admin.example.com, a b",
            ),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "media-origin: invalid configuration: admin.allowed_hosts: \"a b\" is not a host name \
         or address, with an optional :port\n"
    );

    let (_child, _addr, logs) = common::spawn_binary_logged(&mut serve_command(
        dir.path(),
        &[
            ("MEDIA_ORIGIN_ADMIN_TOKEN", TOKEN),
            ("MEDIA_ORIGIN__SERVER__ADMIN_BIND", "127.0.0.1:0"),
            (
                "MEDIA_ORIGIN__ADMIN__ALLOWED_HOSTS",
                "Admin.Example.com, ops.internal:9000",
            ),
        ],
    ));
    // The "serving" line names the admin listener; the log keeps it just after the address
    // is handed over.
    let started = std::time::Instant::now();
    let admin: SocketAddr = loop {
        let found = logs.lock().unwrap().iter().find_map(|l| {
            let rest = l.split("admin=").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        });
        if let Some(admin) = found {
            break admin;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the admin listener is not logged: {:?}",
            logs.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for (name, status) in [
            ("admin.example.com", 200),
            ("ops.internal:9000", 200),
            (&*format!("localhost:{}", admin.port()), 200),
            ("evil.example", 421),
            ("ops.internal", 421),
        ] {
            let r = send(admin, &format!("GET /metrics HTTP/1.1\r\nHost: {name}\r\n")).await;
            assert_eq!(r.status, status, "{name}");
            if status == 421 {
                assert_eq!(r.json(), misdirected(name));
            }
        }
    });
}

// ---- the admin token and file modes ----------------------------------------------------------

/// Run `cmd`, which must exit by itself within 20 s (a server that starts instead is killed
/// and the test fails); its exit code and the last line of its stderr.
fn refused(cmd: &mut std::process::Command) -> (Option<i32>, String) {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the server started instead of refusing to");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    (status.code(), last)
}

fn short_token_error(chars: usize) -> String {
    format!(
        "media-origin: invalid configuration: admin.token (MEDIA_ORIGIN_ADMIN_TOKEN): the admin \
         token must be at least 16 characters; this one has {chars} (make one with `openssl rand \
         -hex 32`)"
    )
}

/// A configured admin token under 16 characters stops the start with the rule, from the
/// environment or the config file; 16 is enough.
#[test]
fn an_admin_token_under_16_characters_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    for token in ["0123456789", "0123456789abcde", "ééééééééééééééé"] {
        let (code, line) = refused(&mut serve_command(
            dir.path(),
            &[("MEDIA_ORIGIN_ADMIN_TOKEN", token)],
        ));
        assert_eq!(code, Some(2), "{token}");
        assert_eq!(line, short_token_error(token.chars().count()), "{token}");
    }
    std::fs::write(
        dir.path().join("config.toml"),
        "[admin]\ntoken = \"ten-chars!\"\n",
    )
    .unwrap();
    let (code, line) = refused(&mut serve_command(dir.path(), &[]));
    assert_eq!(code, Some(2));
    assert_eq!(line, short_token_error(10));
    assert!(!dir.path().join("data").exists(), "nothing is created");

    std::fs::remove_file(dir.path().join("config.toml")).unwrap();
    let sixteen = "0123456789abcdef";
    let (_child, addr) = common::spawn_binary(&mut serve_command(
        dir.path(),
        &[("MEDIA_ORIGIN_ADMIN_TOKEN", sixteen)],
    ));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(send(
        addr.parse().unwrap(),
        &format!(
            "GET /api/policies HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {sixteen}\r\n"
        ),
    ));
    assert_eq!(r.status, 200);
}

/// A token file group or others may read is refused at start with the command that fixes it;
/// once it is 0600 the server starts and takes its token. A short token in it is refused too.
#[cfg(unix)]
#[test]
fn a_token_file_others_can_read_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let file = dir.path().join("data/.admin-token");
    let token = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    std::fs::write(&file, format!("{token}\n")).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o620] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let (code, line) = refused(&mut serve_command(dir.path(), &[]));
        assert_eq!(code, Some(1), "{mode:o}");
        assert_eq!(
            line,
            format!(
                "media-origin: the admin token file data/.admin-token is open to group or others \
                 (mode {mode:04o}), and whoever reads it holds the admin API: run `chmod 600 \
                 data/.admin-token` (or set MEDIA_ORIGIN_ADMIN_TOKEN), then start again"
            )
        );
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("{token}\n")
        );
    }

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (mut child, addr) = common::spawn_binary(&mut serve_command(dir.path(), &[]));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(send(
        addr.parse().unwrap(),
        &format!("GET /api/policies HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n"),
    ));
    assert_eq!(r.status, 200);
    child.kill().unwrap();
    child.wait().unwrap();

    std::fs::write(&file, "short-token\n").unwrap();
    let (code, line) = refused(&mut serve_command(dir.path(), &[]));
    assert_eq!(code, Some(1));
    assert_eq!(
        line,
        "media-origin: the admin token file data/.admin-token: the admin token must be at least \
         16 characters; this one has 11 (make one with `openssl rand -hex 32`)"
    );
}

/// A fresh local storage directory is created 0700, and everything the server writes in it
/// (records, blobs, folders, the generated token file) is its user's alone.
#[cfg(unix)]
#[test]
fn local_storage_is_created_0700_and_written_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (_child, addr) = common::spawn_binary(&mut serve_command(dir.path(), &[]));
    let root = dir.path().join("data");
    let token = std::fs::read_to_string(root.join(".admin-token")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        for (path, body) in [
            ("a.pdf", fixtures::pdf(3000, 1)),
            ("promo/2026/b.pdf", fixtures::pdf(3000, 2)),
        ] {
            let r = client
                .put(format!("http://{addr}/api/assets/{path}"))
                .bearer_auth(token.trim())
                .header("content-type", "application/pdf")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
        let r = client
            .put(format!("http://{addr}/api/policies/promo"))
            .bearer_auth(token.trim())
            .json(&json!({"cache_control": "no-cache"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    });
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&root), 0o700);
    let mut stack = vec![root.clone()];
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                assert_eq!(mode(&p), 0o700, "{}", p.display());
                stack.push(p.clone());
                dirs.push(p);
            } else {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
                files.push(
                    p.strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    files.sort();
    // Two records, two blobs, the folder policies and the token file, nothing left out.
    assert!(files.contains(&"assets/a.pdf.json".to_owned()), "{files:?}");
    assert!(
        files.contains(&"assets/promo/2026/b.pdf.json".to_owned()),
        "{files:?}"
    );
    assert!(files.contains(&".admin-token".to_owned()), "{files:?}");
    assert_eq!(
        files.iter().filter(|f| f.starts_with("blobs/")).count(),
        2,
        "{files:?}"
    );
    assert!(dirs.len() >= 4, "{dirs:?}");
}

// ---- bytes sent --------------------------------------------------------------------------------

/// `media_origin_media_sent_bytes_total`, read from `/metrics` (the shared listener needs the
/// token there).
async fn sent_bytes(s: &TestServer) -> u64 {
    let text = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("media_origin_media_sent_bytes_total "))
        .unwrap_or_else(|| panic!("no media_sent_bytes_total in\n{text}"))
        .parse()
        .unwrap()
}

/// The fetch log of `path`, newest first, waiting up to 10 s until it has `n` entries.
async fn fetches(s: &TestServer, path: &str, n: usize) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let log = s
            .admin_json(reqwest::Method::GET, &format!("/fetches/{path}"))
            .await;
        let fetches = log["fetches"].as_array().unwrap().clone();
        if fetches.len() >= n {
            return fetches;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{path}: {} fetches after 10 s, want {n}: {log}",
            fetches.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A client that reads the first 64 KiB of a 16 MiB asset and hangs up is counted, in the
/// metric and the fetch log, for what was sent (bounded by the socket buffers), not for the
/// whole body, and its entry says it was cut off; whole downloads and ranges count whole.
async fn an_aborted_download_counts_the_bytes_sent_not_its_length(backend: common::Backend) {
    const LEN: usize = 16 * 1024 * 1024;
    const READ: usize = 64 * 1024;
    let s = TestServer::start_on(backend).await;
    let body = fixtures::pdf(LEN, 7);
    s.upload("big.pdf", "application/pdf", body.clone()).await;
    assert_eq!(sent_bytes(&s).await, 0);

    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(
        format!(
            "GET /media/big.pdf HTTP/1.1\r\nHost: {}\r\nUser-Agent: half-reader/1\r\n\r\n",
            s.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0; 16 * 1024];
    while got.len() < READ {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let head = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&got[head..], &body[..got.len() - head]);
    drop(tcp);

    let log = fetches(&s, "big.pdf", 1).await;
    let entry = &log[0];
    let sent = entry["bytes"].as_u64().unwrap();
    assert_eq!(entry["status"], 200, "{entry}");
    assert_eq!(entry["cut_off"], true, "{entry}");
    assert_eq!(entry["user_agent"], "half-reader/1", "{entry}");
    assert!(
        sent >= (got.len() - head) as u64 && sent < LEN as u64,
        "{sent} bytes counted for {} read of {LEN}",
        got.len() - head
    );
    assert_eq!(sent_bytes(&s).await, sent);

    // A whole download, and a range read to its end, count whole and are not cut off.
    let r = s.get(&s.media("big.pdf")).await;
    assert_eq!(r.bytes().await.unwrap().len(), LEN);
    let r = s
        .client
        .get(s.media("big.pdf"))
        .header("range", "bytes=1000-1049575")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), body[1000..1049576]);
    let log = fetches(&s, "big.pdf", 3).await;
    let summary: Vec<(u64, u64, bool)> = log
        .iter()
        .map(|f| {
            (
                f["status"].as_u64().unwrap(),
                f["bytes"].as_u64().unwrap(),
                f["cut_off"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (206, 1_048_576, false),
            (200, LEN as u64, false),
            (200, sent, true)
        ]
    );
    assert_eq!(sent_bytes(&s).await, sent + LEN as u64 + 1_048_576);
    // A small asset goes in one write, counted whole as before; HEAD counts nothing.
    s.upload("small.pdf", "application/pdf", fixtures::pdf(5000, 3))
        .await;
    assert_eq!(
        s.get(&s.media("small.pdf"))
            .await
            .bytes()
            .await
            .unwrap()
            .len(),
        5000
    );
    let r = s.client.head(s.media("small.pdf")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let log = fetches(&s, "small.pdf", 2).await;
    assert_eq!(
        (log[0]["bytes"].as_u64(), log[0]["cut_off"].as_bool()),
        (Some(0), Some(false))
    );
    assert_eq!(
        (log[1]["bytes"].as_u64(), log[1]["cut_off"].as_bool()),
        (Some(5000), Some(false))
    );
    assert_eq!(sent_bytes(&s).await, sent + LEN as u64 + 1_048_576 + 5000);
}

// ---- names ---------------------------------------------------------------------------------

/// The invisible and direction-changing characters a path may not hold.
const INVISIBLE: [char; 19] = [
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}',
    '\u{FEFF}', '\u{2028}', '\u{2029}',
];

fn invisible_error(c: char) -> Value {
    error(
        "invalid_path",
        &format!(
            "the path contains U+{:04X}, an invisible or direction-changing character: \
             bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), \
             zero-width characters (U+200B-U+200D, U+2060), the byte order mark (U+FEFF) and \
             line or paragraph separators (U+2028, U+2029) are not allowed, as they make a name \
             display as something it is not",
            u32::from(c)
        ),
    )
}

/// Every byte of `s` as `%XX`.
fn encoded(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// `café` and `menü` typed decomposed or precomposed are one asset each: uploaded one way,
/// fetched, replaced, listed, logged and deleted the other, stored once under the composed name.
async fn a_name_typed_two_ways_is_one_asset(backend: common::Backend) {
    use reqwest::Method;
    let s = TestServer::start_on(backend).await;
    let (nfd, nfc) = ("promo/cafe\u{301}.pdf", "promo/caf\u{e9}.pdf");
    let first = fixtures::pdf(2000, 1);
    let r = s.put(&encoded(nfd), "application/pdf", first.clone()).await;
    assert_eq!(r.status(), 201);
    let record: Value = r.json().await.unwrap();
    assert_eq!(record["path"], nfc);
    assert_eq!(
        record["url"],
        format!("{}/media/promo/caf%C3%A9.pdf", s.base)
    );
    for url in ["promo/caf%C3%A9.pdf", "promo/cafe%CC%81.pdf"] {
        let r = s.get(&s.media(url)).await;
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(r.bytes().await.unwrap(), first, "{url}");
    }
    // Replacing through the other spelling replaces the same asset.
    let second = fixtures::pdf(3000, 2);
    let r = s
        .put(&encoded(nfc), "application/pdf", second.clone())
        .await;
    assert_eq!(r.status(), 200);
    for url in ["promo/caf%C3%A9.pdf", "promo/cafe%CC%81.pdf"] {
        assert_eq!(s.get(&s.media(url)).await.bytes().await.unwrap(), second);
    }
    let list = s.admin_json(Method::GET, "/assets?prefix=promo/").await;
    let paths: Vec<&str> = list["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, [nfc]);
    // Every fetch is in the composed name's fetch log, whichever spelling it used.
    let log = fetches(&s, "promo/cafe%CC%81.pdf", 4).await;
    assert_eq!(log.len(), 4, "{log:?}");
    // The reverse: uploaded composed, read and deleted decomposed.
    let (nfc2, nfd2) = ("men\u{fc}.pdf", "menu\u{308}.pdf");
    assert_eq!(
        s.upload(&encoded(nfc2), "application/pdf", first.clone())
            .await["path"],
        nfc2
    );
    let got = s
        .admin_json(Method::GET, &format!("/assets/{}", encoded(nfd2)))
        .await;
    assert_eq!(got["path"], nfc2);
    assert_eq!(
        s.get(&s.media(&encoded(nfd2))).await.bytes().await.unwrap(),
        first
    );
    let r = s
        .admin(Method::DELETE, &format!("/assets/{}", encoded(nfd2)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(s.get(&s.media(&encoded(nfc2))).await.status(), 404);
    // Stored once, under the composed name only.
    let files = s.files();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("assets/promo/caf%C3%A9.pdf.json")),
        "{files:?}"
    );
    assert!(
        !files
            .iter()
            .any(|f| f.contains("%CC%81") || f.contains("%CC%88")),
        "{files:?}"
    );
}

/// A name with an invisible or direction-changing character is refused with 400 wherever a
/// path enters: a raw upload, a form upload's file name, a folder rule, the public URL.
/// Nothing is stored.
async fn names_with_bidi_or_invisible_characters_are_refused(backend: common::Backend) {
    use reqwest::Method;
    let s = TestServer::start_on(backend).await;
    s.upload("docs/ok.pdf", "application/pdf", fixtures::pdf(1000, 1))
        .await;
    let before = s.files();
    for c in INVISIBLE {
        // invoice<RLO>exe.pdf would show as invoicefdp.exe under a WhatsApp document.
        let name = format!("invoice{c}exe.pdf");
        let r = s
            .put(
                &format!("docs/{}", encoded(&name)),
                "application/pdf",
                fixtures::pdf(1000, 2),
            )
            .await;
        assert_eq!(r.status(), 400, "U+{:04X}", u32::from(c));
        assert_eq!(r.json::<Value>().await.unwrap(), invisible_error(c));
        let form = reqwest::multipart::Form::new().text("folder", "docs").part(
            "file",
            reqwest::multipart::Part::bytes(fixtures::pdf(1000, 3))
                .file_name(name.clone())
                .mime_str("application/pdf")
                .unwrap(),
        );
        let r = s
            .admin(Method::POST, "/assets")
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap(), invisible_error(c));
        let r = s
            .admin(
                Method::PUT,
                &format!("/policies/{}", encoded(&format!("promo{c}"))),
            )
            .json(&json!({"cache_control": "no-store"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap(), invisible_error(c));
        let r = s.get(&s.media(&format!("docs/{}", encoded(&name)))).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap(), invisible_error(c));
    }
    assert_eq!(s.files(), before);
    let policies = s.admin_json(Method::GET, "/policies").await;
    assert_eq!(policies["folders"], json!([]), "{policies}");
}

on_both_backends!(
    an_aborted_download_counts_the_bytes_sent_not_its_length,
    a_name_typed_two_ways_is_one_asset,
    names_with_bidi_or_invisible_characters_are_refused,
);
