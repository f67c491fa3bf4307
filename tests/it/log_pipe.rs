//! The log destination cannot stop or slow serving: the real binary with its stdout and stderr
//! on one pipe that is closed after the first lines (`serve 2>&1 | head -1`), or that nobody
//! reads once they are read (`serve 2>&1 | less`, left alone). Before, the first panicked the
//! request tasks (and the server, when the main task logged) with "failed printing to stderr",
//! and the second stopped every request once the pipe's 64 KiB were full.

use crate::common;

use std::io::{BufRead, BufReader, PipeReader};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use common::{TOKEN, fixtures};

const BIN: &str = env!("CARGO_BIN_EXE_media-origin");

/// The server process, killed if a test fails half-way.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// SIGTERM, then its exit status and how long it took to exit.
    fn terminate(&mut self) -> (ExitStatus, Duration) {
        let start = Instant::now();
        Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return (status, start.elapsed());
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Start the binary with stdout and stderr on one pipe, logging every request (public ones at
/// DEBUG); read the pipe up to the line with the address and hand back the rest of it.
fn start(dir: &std::path::Path) -> (Server, String, BufReader<PipeReader>) {
    let (reader, writer) = std::io::pipe().unwrap();
    let child = {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(dir)
            .args(["serve", "--storage", "data", "--bind", "127.0.0.1:0"])
            .env("MEDIA_ORIGIN_ADMIN_TOKEN", TOKEN)
            .env("MEDIA_ORIGIN__SERVER__ADMIN_BIND", "public")
            .env("RUST_LOG", "info,media_origin=debug")
            .stdin(std::process::Stdio::null())
            .stdout(writer.try_clone().unwrap())
            .stderr(writer);
        cmd.spawn().unwrap()
        // The command, and with it this process's copies of the pipe's write end, goes here.
    };
    let server = Server(child);
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert_ne!(reader.read_line(&mut line).unwrap(), 0, "no address logged");
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    (server, addr, reader)
}

/// `count` rounds of an upload, a download and a health check, each answered within a second.
async fn serve_requests(addr: &str, count: usize) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let body = fixtures::jpeg(2_000, 5);
    for i in 0..count {
        let r = client
            .put(format!("http://{addr}/api/assets/promo/{}.jpg", i % 5))
            .bearer_auth(TOKEN)
            .header("content-type", "image/jpeg")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload {i}: {e}"));
        assert!(r.status().is_success(), "upload {i}: {}", r.status());
        let r = client
            .get(format!("http://{addr}/media/promo/{}.jpg", i % 5))
            .send()
            .await
            .unwrap_or_else(|e| panic!("download {i}: {e}"));
        assert_eq!(r.status(), 200, "download {i}");
        assert_eq!(r.bytes().await.unwrap(), body, "download {i}");
        let r = client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("health check {i}: {e}"));
        assert_eq!(r.status(), 200, "health check {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closed_log_pipe_neither_stops_nor_kills_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr, reader) = start(dir.path());
    // `| head -1`: the reader goes away.
    drop(reader);
    serve_requests(&addr, 50).await;
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "the server exited when its log pipe closed"
    );
    // And it stops as asked, cleanly (before, it exited 101 after a panic).
    let (status, _) = server.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_log_pipe_does_not_slow_serving() {
    let dir = tempfile::tempdir().unwrap();
    // Kept open and never read again: the pipe fills (64 KiB, a few hundred lines).
    let (mut server, addr, _unread) = start(dir.path());
    let start = Instant::now();
    // ~5 log lines a round: 3000 lines, several times what the pipe holds.
    serve_requests(&addr, 600).await;
    eprintln!("600 rounds in {:?}", start.elapsed());
    assert!(server.0.try_wait().unwrap().is_none());
    // Stopping does not hang on the full pipe either: the last lines get a second.
    let (status, took) = server.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(took < Duration::from_secs(3), "took {took:?} to exit");
}
