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

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let shown = String::from_utf8(out.stdout).unwrap();
    let head = Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned());
    let commit = head.unwrap_or_else(|| "unknown (built outside a git checkout)".to_owned());
    assert_eq!(
        shown,
        format!(
            "media-origin {} (commit {commit})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// What a start-up's environment gets wrong is said at start, by name: a `MEDIA_ORIGIN_`
/// variable with single underscores (which sets nothing), a `RUST_LOG` that is not a filter
/// (which used to silence every line), an `http://` public base URL.
#[test]
fn start_warns_about_variables_that_set_nothing_a_bad_rust_log_and_an_http_base_url() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, logs) = common::spawn_binary_logged(
        Command::new(BIN)
            .current_dir(dir.path())
            .args(["serve", "--storage", "data", "--bind", "127.0.0.1:0"])
            .env_remove("MEDIA_ORIGIN_ADMIN_TOKEN")
            .env("MEDIA_ORIGIN_SERVER_BIND", "0.0.0.0:9999")
            .env("MEDIA_ORIGIN_ADMIN_TOKEN_FILE", "/tmp/x")
            .env(
                "MEDIA_ORIGIN__SERVER__PUBLIC_BASE_URL",
                "http://media.example.com",
            )
            .env("RUST_LOG", "inof"),
    );
    // The server still logs at the default level (it logged its address) and serves.
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let lines = logs.lock().unwrap().clone();
    let warned = |text: &str| {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(" WARN ") && l.contains(text)),
            "no WARN line with {text:?} in:\n{}",
            lines.join("\n")
        );
    };
    warned(
        "MEDIA_ORIGIN_SERVER_BIND sets nothing: settings take double underscores; \
         MEDIA_ORIGIN__SERVER__BIND sets server.bind",
    );
    warned(
        "MEDIA_ORIGIN_ADMIN_TOKEN_FILE sets nothing: settings take double underscores; \
         MEDIA_ORIGIN__ADMIN__TOKEN_FILE sets admin.token_file",
    );
    warned("RUST_LOG=\"inof\" is not a log filter");
    warned("logging with the default, info,tower_http=warn,object_store=warn");
    warned(
        "server.public_base_url \"http://media.example.com\" is http://: Meta fetches media \
         over HTTPS",
    );
    sigterm(&child);
    assert!(wait(&mut child).success());
}
