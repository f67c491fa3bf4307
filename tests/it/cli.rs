//! The binary as an operator runs it: `media-origin serve` with config file, flags and
//! environment overrides, and a graceful stop on SIGTERM.

use crate::common;

use std::process::{Child, Command};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_media-origin");

/// Start the binary and wait for the address it logs as serving.
fn spawn(cmd: &mut Command) -> (common::Spawned, String) {
    common::spawn_binary(cmd.env_remove("MEDIA_ORIGIN_ADMIN_TOKEN"))
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    panic!("the server did not exit after SIGTERM");
}

#[test]
fn serve_reads_config_flags_and_environment_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[server]\nbind = \"127.0.0.1:1\"\n[cache]\ndefault = \"no-store\"\n[admin]\ntoken = \"from-config-0123456789\"\n",
    )
    .unwrap();
    // The environment overrides the file (bind), the flag overrides the file (storage).
    let (mut child, addr) = spawn(
        Command::new(BIN)
            .current_dir(dir.path())
            .args(["serve", "--storage", "data"])
            .env("MEDIA_ORIGIN__SERVER__BIND", "127.0.0.1:0"),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = client
            .put(format!("http://{addr}/api/assets/a.txt"))
            .bearer_auth("from-config-0123456789")
            .header("content-type", "text/plain")
            .body("hello")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r = client
            .get(format!("http://{addr}/media/a.txt"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["cache-control"], "no-store");
    });
    assert!(dir.path().join("data/assets/a.txt.json").exists());
    sigterm(&child);
    assert!(wait(&mut child).success());
}

#[test]
fn serve_refuses_a_bad_config_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[cache]\ndefault = \"public\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["serve", "--config", "bad.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("accepted forms"), "{err}");
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["serve", "--config", "missing.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}
