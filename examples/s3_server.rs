//! A standalone loopback S3 server for the benchmark (`bench/compare.sh`): the tests' own
//! implementation (s3s-fs serving a temporary directory, SigV4 signatures checked), run until
//! killed.
//!
//! ```sh
//! cargo run --release --example s3_server
//! # http://127.0.0.1:40123        <- first line on stdout: the endpoint
//! ```
//!
//! Credentials and bucket are the tests' constants, printed on the following lines as
//! `bucket=...`, `access_key_id=...`, `secret_access_key=...`, `root=...`. The data lives in a
//! fresh directory under `$TMPDIR`, removed on SIGINT or SIGTERM. Requests are not logged in
//! memory (the tests' server logs every one; under benchmark load that log would grow without
//! bound).

use std::io::Write;

#[path = "../tests/it/common/s3.rs"]
#[allow(dead_code)] // the fault-injection part of the tests' server is not used here
mod s3;

#[tokio::main]
async fn main() {
    if let Some(arg) = std::env::args().nth(1) {
        eprintln!(
            "s3_server: takes no arguments (got {arg:?}); it listens on a free loopback port and prints the endpoint"
        );
        std::process::exit(2);
    }
    let server = s3::S3Server::start().await;
    server.set_logging(false);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", server.endpoint()).unwrap();
    writeln!(out, "bucket={}", s3::BUCKET).unwrap();
    writeln!(out, "access_key_id={}", s3::ACCESS_KEY).unwrap();
    writeln!(out, "secret_access_key={}", s3::SECRET_KEY).unwrap();
    writeln!(out, "root={}", server.root.path().display()).unwrap();
    out.flush().unwrap();
    drop(out);

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.stop().await;
    // Dropping the last reference removes the temporary directory.
    drop(server);
}
